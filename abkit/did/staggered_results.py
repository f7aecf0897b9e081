"""Result objects of the Callaway & Sant'Anna estimator: ATT(g, t), aggregations, window averages."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import DataError
from ..stats.callaway_santanna import (
    AttGt,
    aggregate_att_gt,
    att_gt,
    dynamic_leave_one_out,
)
from ..stats.cluster_robust import jackknife_vcov, quadratic_form_inverse, wald_test
from ..stats.randomization_inference import (
    assignments,
    count_assignments,
    randomization_p_value,
)
from ..stats.uniform_bands import sup_t_critical, sup_t_critical_t
from ..stats.wild_bootstrap import multiplier_bootstrap
from .diagnostics import WILD_AUTO_CLUSTERS
from .event_charts import _event_plot, _plot_trends
from .randomization_results import RandomizationTest
from .regression_results import PretrendTest
from .result_tables import _fmt_p, _table_html

_AGG_LABEL = {"dynamic": "event_time", "group": "group", "calendar": "time", "simple": "label"}


def _two_sided_p(tstat, df: float):
    """Two-sided p-values from t(df), or the normal when ``df`` is infinite (survival functions)."""
    tstat = np.abs(np.asarray(tstat, dtype=np.float64))
    return 2 * (stats.t.sf(tstat, df) if np.isfinite(df) else stats.norm.sf(tstat))


def _critical(alpha: float, df: float) -> float:
    return float(stats.t.isf(alpha / 2, df) if np.isfinite(df) else stats.norm.isf(alpha / 2))


@dataclass(frozen=True)
class WindowAverage:
    """The average of the event-time (or group / calendar) effects over a window of rows, with its inference."""

    kind: str
    outcome: str
    first: float
    last: float
    labels: tuple
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    p_value: float
    alpha: float
    df: float

    def summary(self) -> str:
        what = "event times" if self.kind == "dynamic" else _AGG_LABEL[self.kind]
        return (
            f"average {self.kind} effect over {what} {self.first:g}..{self.last:g} on {self.outcome}: "
            f"{self.estimate:.5g} (SE {self.se:.4g}), {1 - self.alpha:.0%} CI [{self.ci_lower:.4g}, "
            f"{self.ci_upper:.4g}], p = {_fmt_p(self.p_value)}"
        )

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()


@dataclass(frozen=True)
class AggregateResult:
    """An aggregation of Callaway & Sant'Anna ATT(g, t): overall effect and per-row effects.

    ``df``: degrees of freedom of the t reference of every CI and p-value
    (``inf`` = normal); ``critical_value``: of the uniform (sup-t) band over
    the rows that are estimated (a universal base period's reference row,
    fixed at 0, has no standard error, CI or band; ``reference`` marks it).
    """

    kind: str
    outcome: str
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    p_value: float
    alpha: float
    table: pd.DataFrame
    critical_value: float
    boot_p_value: float
    boot_weights: str
    reps: int
    n_units: int
    df: float = math.inf
    inference: str = ""
    influence: np.ndarray | None = field(default=None, repr=False, compare=False)  # (n, 1 + rows): overall, rows
    source: StaggeredResult | None = field(default=None, repr=False, compare=False)
    min_e: float = -math.inf  # the ``min_e`` asked for (``-inf``: none): the default window of :meth:`pretrend`
    max_e: float = math.inf  # the ``max_e`` asked for
    n_treated_clusters: int = 0  # launched units (the units are the clusters)
    n_untreated_clusters: int = 0  # never-treated units
    few_treated_clusters: bool = False  # fewer than FEW_TREATED_CLUSTERS of either: the p-values are unreliable

    def to_frame(self) -> pd.DataFrame:
        """One row per event time / group / calendar period (empty for ``simple``)."""
        return self.table.copy()

    def summary(self) -> str:
        ref = f"t({self.df:g})" if np.isfinite(self.df) else "normal"
        s = (
            f"{self.kind} aggregation of ATT(g,t) on {self.outcome}: {self.estimate:.5g} (SE {self.se:.4g}), "
            f"{1 - self.alpha:.0%} CI [{self.ci_lower:.4g}, {self.ci_upper:.4g}], p = {_fmt_p(self.p_value)} "
            f"({ref} reference, {self.n_units} units); multiplier bootstrap ({self.boot_weights}) "
            f"p = {_fmt_p(self.boot_p_value)}"
        )
        if self.few_treated_clusters:
            s += (
                f". Unreliable: only {self.n_treated_clusters} launched and {self.n_untreated_clusters} "
                "never-treated units; test with .randomization_test()"
            )
        return s

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        notes = [self.inference] if self.inference else []
        return _table_html(self.table, self.summary(), notes)

    def plot(self, ax=None):
        if self.table.empty:
            raise DataError("the 'simple' aggregation has a single number; nothing to plot")
        by = {"dynamic": "periods since launch", "group": "launch cohort", "calendar": "period"}[self.kind]
        return _event_plot(
            self.table,
            _AGG_LABEL[self.kind],
            f"Effect on {self.outcome} by {by} (Callaway-Sant'Anna, {self.kind} aggregation)",
            ax,
            self.alpha,
            self.outcome,
        )

    def pretrend(self, leads: float | None = None, *, vcov: str = "auto") -> PretrendTest:
        """Joint test that the pre-launch event-time effects ``theta(e)``, ``-leads <= e < 0``, are zero.

        ``leads``: the window tested, in periods before launch. Default
        (``None``): the pre-launch event times this aggregation shows when it
        was built with ``min_e`` (``aggregate("dynamic", min_e=-6).pretrend()``
        tests ``-6..-1``), otherwise :data:`PRETREND_LEADS` (4: event times
        ``-4..-1``), the test :attr:`StaggeredResult.pretrend` and
        ``print(result)`` report. Every pre-launch event time of a long panel
        is usually too many: the test needs fewer event times than units
        (``q >= G`` is an error naming the longest window that works).
        A universal base period's reference ``e = -1`` (0 by construction)
        is not tested. The covariance (jackknife with fewer than
        :data:`WILD_AUTO_CLUSTERS` units), Hotelling's ``F(q, G - q)`` and
        ``vcov`` are those of :meth:`StaggeredResult.pretrend_test`, which
        this calls; the effects tested are those of the unbalanced dynamic
        aggregation (``balance_e`` is not applied).
        """
        if self.kind != "dynamic":
            raise DataError(
                f"pretrend() tests the pre-launch rows of a 'dynamic' aggregation; this one is "
                f"'{self.kind}': use result.aggregate('dynamic').pretrend()"
            )
        if self.source is None:
            raise DataError(
                "this aggregation does not carry its ATT(g, t); build it with staggered(...).aggregate('dynamic')"
            )
        if leads is None:
            pre = self.table["event_time"][self.table["event_time"] < 0]
            if np.isfinite(self.min_e):
                leads = float(-pre.min()) if len(pre) else 0.0
            else:
                leads = PRETREND_LEADS
        return self.source._pretrend_test(leads, vcov, ".pretrend")

    def randomization_test(self, *, reps: int = 9999, seed=0) -> RandomizationTest:
        """Randomization inference for this aggregation's overall effect (:meth:`StaggeredResult.randomization_test`
        with this ``kind`` and event-time window)."""
        if self.source is None:
            raise DataError("this aggregation does not carry its ATT(g, t); build it with staggered(...).aggregate()")
        lo = self.min_e if np.isfinite(self.min_e) else -np.inf
        return self.source.randomization_test(
            self.kind, reps=reps, seed=seed, min_e=lo, max_e=self.max_e, alpha=self.alpha
        )

    def average(self, first: float, last: float) -> WindowAverage:
        """The mean of the row effects with label in ``first..last`` (e.g. event times 0..3), with its CI.

        A linear combination of the rows: its influence function is the same
        combination of theirs (which include the estimated cohort shares), so
        ``se = sqrt(mean(psi^2) / n)``; the reference (``df``) is that of the
        aggregation. Reference rows are left out.
        """
        if self.table.empty or self.influence is None:
            raise DataError("average() needs the rows of a 'dynamic', 'group' or 'calendar' aggregation")
        label = _AGG_LABEL[self.kind]
        lab = self.table[label].to_numpy(dtype=float)
        ref = self.table["reference"].to_numpy(dtype=bool) if "reference" in self.table else np.zeros(lab.size, bool)
        rows = (lab >= first) & (lab <= last) & ~ref
        if not rows.any():
            raise DataError(
                f"no {label} in {first:g}..{last:g}; the aggregation has {label} {', '.join(f'{v:g}' for v in lab)}"
            )
        a = rows / rows.sum()
        est = float(a @ self.table["estimate"].to_numpy(dtype=float))
        psi = self.influence[:, 1:] @ a
        n = psi.size
        se = float(np.sqrt(np.mean(psi**2) / n))
        c = _critical(self.alpha, self.df)
        p = float(_two_sided_p(est / se, self.df)) if se > 0 else np.nan
        return WindowAverage(
            self.kind,
            self.outcome,
            float(lab[rows].min()),
            float(lab[rows].max()),
            tuple(lab[rows].tolist()),
            est,
            se,
            est - c * se,
            est + c * se,
            p,
            self.alpha,
            self.df,
        )


@dataclass(frozen=True)
class _CsData:
    """What :meth:`StaggeredResult.pretrend_test` needs to re-estimate the ATT(g, t) without a unit."""

    Y: np.ndarray
    periods: np.ndarray
    G: np.ndarray
    X: np.ndarray | None
    control_group: str
    method: str
    base_period: str
    anticipation: int
    weights: np.ndarray | None = None
    trim_level: float = 0.995


PRETREND_LEADS = 4
"""Default pre-launch window of :meth:`StaggeredResult.pretrend_test`, :attr:`StaggeredResult.pretrend` (in the
summary) and :meth:`AggregateResult.pretrend` without ``min_e`` (as ``event_study``'s ``leads``)."""


@dataclass(frozen=True)
class StaggeredResult:
    """Callaway & Sant'Anna (2021) group-time ATTs; :meth:`aggregate` summarises them."""

    outcome: str
    method: str
    control_group: str
    base_period: str
    att_gt: pd.DataFrame
    alpha: float
    n_units: int
    n_periods: int
    cells: AttGt
    trends: pd.DataFrame | None = None
    dropped: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    data: _CsData | None = field(default=None, repr=False, compare=False)
    df: float = math.inf  # t reference of the ATT(g, t) CIs and p-values (inf = normal)
    weights: str | None = None  # the unit-weights column, if any
    n_treated_clusters: int = 0  # launched units (the units are the clusters)
    n_untreated_clusters: int = 0  # never-treated units
    few_treated_clusters: bool = False  # fewer than FEW_TREATED_CLUSTERS of either: the p-values are unreliable

    @functools.cached_property
    def pretrend(self) -> PretrendTest:
        """:meth:`pretrend_test` with its defaults: event times ``-4..-1``, jackknife with fewer than 50 units.

        Computed on first use.
        """
        return self.pretrend_test()

    def pretrend_test(self, leads: float = PRETREND_LEADS, *, vcov: str = "auto") -> PretrendTest:
        """Joint test that the event-time effects before launch, ``theta(e)`` for ``-leads <= e < 0``, are zero.

        Why these and not every pre-period ATT(g, t): a rollout with many
        weeks has dozens of pre-period cells (84 with three cohorts over 52
        weeks) but only as many independent units as markets; a covariance
        of more coefficients than units is singular and its Wald test
        meaningless. The event-time effects of the dynamic aggregation within
        a window of ``leads`` periods are few (``q``), comparable with the
        event-study plot, and pool the cohorts.

        * ``W = b' V^{-1} b`` over the ``q`` pre-launch event times (a
          universal base period's reference ``e = -1`` is 0 by construction
          and left out; with the varying base ``-leads..-1`` tests the same
          periods as ``-(leads + 1)..-2`` with the universal one, and the
          Wald statistic is the same).
        * ``V``: with fewer than :data:`WILD_AUTO_CLUSTERS` units
          (``vcov="auto"``), the cluster jackknife (CV3): the event-time
          effects re-estimated without each unit in turn
          (:func:`abkit.stats.cluster_robust.jackknife_vcov`), which does not share the
          downward bias of the influence-function variance when a comparison
          group has a handful of units; otherwise (or ``vcov="influence"``)
          the influence functions of the aggregation.
        * Reference: Hotelling's ``F = W (G - q) / (q (G - 1))`` on
          ``F(q, G - q)``, ``G`` the number of units (the clusters), which
          accounts for estimating ``V`` from ``G`` clusters. ``q >= G``
          is refused with an error: ``V`` would be singular.
        * Few launched units (``few_treated_clusters``; ``vcov="auto"``) or
          ``vcov="randomization"``: no covariance estimate is to be trusted
          then (with one launched unit the jackknife cannot leave it out and
          the influence-function variance ignores its noise, so the test
          above rejects almost always), and the p-value is that of a
          randomization test of ``W`` (influence-function ``V``) over the
          assignments of the launch timing to the units
          (:meth:`randomization_test`; exact when there are at most 1,999,
          else 1,999 seeded draws). ``df2`` is then NaN.

        Calibration (``tests/test_did.py``): under parallel trends, with 20
        markets (5 never treated, three cohorts of 5) and 5 leads tested, the
        test rejects 4.7-5% of the time at the 5% level for both comparison
        groups; with the influence-function covariance instead of the
        jackknife it rejects 6-9% of the time, and with the chi-square
        reference instead of Hotelling's F 16-35%.
        """
        return self._pretrend_test(leads, vcov, "pretrend_test")

    def _pretrend_test(self, leads, vcov: str, call: str) -> PretrendTest:
        """:meth:`pretrend_test`; ``call`` names the method in the error that suggests a shorter window."""
        if vcov not in ("auto", "jackknife", "influence", "randomization"):
            raise DataError(f"vcov must be 'auto', 'jackknife', 'influence' or 'randomization'; got {vcov!r}")
        if isinstance(leads, bool) or not isinstance(leads, (int, float, np.integer, np.floating)) or leads < 0:
            hint = " (the covariance is chosen with vcov=..., a keyword argument)" if isinstance(leads, str) else ""
            raise DataError(f"leads must be a non-negative number of periods before launch; got {leads!r}{hint}")
        cells = self.cells
        agg = aggregate_att_gt(cells, "dynamic", min_e=-float(leads), max_e=0.0)
        pre = (agg.labels < 0) & ~agg.is_reference & np.isfinite(agg.se) & (agg.se > 0)
        G = self.n_units
        if not pre.any():
            return PretrendTest(
                np.nan,
                0.0,
                np.nan,
                np.nan,
                np.nan,
                f"no pre-launch event time within {leads:g} periods before launch",
                n_clusters=G,
            )
        ev = agg.labels[pre]
        q = int(pre.sum())
        if q >= G:
            n = G - 1 + (1 if self.base_period == "universal" else 0)
            how = (
                f".pretrend(leads={n}) (on the staggered result: pretrend_test(leads={n}))"
                if call == ".pretrend"
                else f"{call}(leads={n})"
            )
            raise DataError(
                f"the pre-trend test of {q} pre-launch event times ({ev.min():g}..{ev.max():g}) needs "
                f"fewer event times than units, and there are {G} units: their {q} x {q} covariance "
                f"would be singular. Test a shorter window, at most {G - 1} event times: {how} "
                f"(fewer give more power; the summary reports leads={PRETREND_LEADS})"
            )
        b = agg.att[pre]
        V_inf = agg.inf[:, pre].T @ agg.inf[:, pre] / cells.n_units**2
        how = "influence functions"
        V = V_inf
        # a linear drift delta per period moves theta(e) by delta (e - e_ref) (universal base: against the
        # reference e_ref = -1 - anticipation) or by delta (varying base: period-on-period changes)
        pattern = (
            (ev + 1.0 + self.data.anticipation if self.data is not None else ev + 1.0)
            if self.base_period == "universal"
            else np.ones(q)
        )
        if vcov == "randomization" or (vcov == "auto" and self.few_treated_clusters):
            return self._randomization_pretrend(float(leads), ev, b, V_inf, pattern)
        if vcov == "jackknife" or (vcov == "auto" and G < WILD_AUTO_CLUSTERS):
            d = self.data
            try:
                if d is None:
                    raise DataError("the result does not carry its panel")
                loo = dynamic_leave_one_out(
                    d.Y,
                    d.periods,
                    d.G,
                    ev,
                    d.X,
                    control_group=d.control_group,
                    method=d.method,
                    base_period=d.base_period,
                    anticipation=d.anticipation,
                    weights=d.weights,
                    trim_level=d.trim_level,
                )
                V = jackknife_vcov(loo)
                how = "the cluster jackknife (each unit left out in turn)"
            except (DataError, np.linalg.LinAlgError) as exc:
                if vcov == "jackknife":
                    raise DataError(f"the jackknife pre-trend test is not available: {exc}") from None
                how = f"influence functions (no jackknife: {exc})"
        W, F, df2, p = wald_test(b, V, G)
        return PretrendTest(
            statistic=F,
            df1=float(q),
            df2=df2,
            p_value=p,
            wald=W,
            method=f"Wald test of the {q} pre-launch event-time effects, covariance from {how}, "
            f"Hotelling F(q, G-q) with G={G} units",
            event_times=tuple(float(e) for e in ev),
            n_clusters=G,
            estimates=b,
            vcov=V,
            trend_pattern=pattern,
        )

    def _randomization_pretrend(self, leads: float, ev, b, V_inf, pattern, reps: int = 1999, seed=0) -> PretrendTest:
        """The pre-trend Wald statistic (influence-function covariance) against its randomization distribution."""
        d = self.data
        if d is None:
            raise DataError("the randomization pre-trend test needs the panel; run did.staggered(...) again")
        W_obs = quadratic_form_inverse(b, V_inf)
        index, exact = assignments(d.G, reps, seed)
        stats_null = np.full(index.shape[0], np.nan)
        for a in range(index.shape[0]):  # a loop over assignments (re-estimations), never rows
            try:
                cells = att_gt(
                    d.Y,
                    d.periods,
                    d.G[index[a]],
                    d.X,
                    control_group=d.control_group,
                    method=d.method,
                    base_period=d.base_period,
                    anticipation=d.anticipation,
                    weights=d.weights,
                    trim_level=d.trim_level,
                    event_window=(-leads, 0.0),
                )
                agg = aggregate_att_gt(cells, "dynamic", min_e=-leads, max_e=0.0)
            except DataError:
                continue
            rows = np.isin(agg.labels, ev)
            if rows.sum() != ev.size:
                continue
            Pm = agg.inf[:, rows]
            stats_null[a] = quadratic_form_inverse(agg.att[rows], Pm.T @ Pm / cells.n_units**2)
        p = randomization_p_value(W_obs, stats_null, exact)
        total = count_assignments(d.G)
        how = (
            f"exact over all {total:,} assignments"
            if exact
            else f"{index.shape[0] - 1:,} random assignments of {total:,}"
        )
        q = int(ev.size)
        return PretrendTest(
            statistic=W_obs,
            df1=float(q),
            df2=np.nan,
            p_value=p,
            wald=W_obs,
            method=f"randomization test of the Wald statistic of the {q} pre-launch event-time "
            f"effects over which units launched ({how}; few launched units: no covariance "
            "estimate is reliable)",
            event_times=tuple(float(e) for e in ev),
            n_clusters=self.n_units,
            estimates=b,
            vcov=V_inf,
            trend_pattern=pattern,
        )

    def _pretrend_text(self) -> str:
        try:
            return self.pretrend.summary()
        except DataError as exc:
            return f"pre-trend test: not run ({exc})"

    def aggregate(
        self,
        kind: str = "simple",
        *,
        min_e: float = -np.inf,
        max_e: float = np.inf,
        balance_e: int | None = None,
        alpha: float | None = None,
        reps: int = 999,
        weights: str = "rademacher",
        seed=0,
        small_sample: bool | None = None,
        band_draws: int = 100_000,
    ) -> AggregateResult:
        """Aggregate ATT(g, t): ``"simple" | "dynamic" | "group" | "calendar"``.

        Standard errors from influence functions (as R ``did::aggte``,
        including the estimated cohort shares). Inference with few units:
        with ``small_sample`` (default: fewer than :data:`WILD_AUTO_CLUSTERS`
        units; the units are the clusters) CIs and p-values use Student's
        ``t(G - 1)`` and the uniform band the sup-t critical value of a
        multivariate ``t(G - 1)`` with the influence-function correlation of
        the rows (``band_draws`` seeded draws); otherwise the normal and, as
        R did, a multiplier bootstrap band. With 20 markets (simulated, 5 never
        launched), the multiplier bootstrap band covers all 19 event times of
        a ``-6..12`` window only 74-85% of the time, the multivariate-t band
        89-93% (still a little short of 95%: the variance estimate has fewer
        effective degrees of freedom than ``G - 1`` when a comparison group
        has few units), and the ``t(19)`` pointwise CIs 94-95% (normal: 93%);
        see ``tests/test_did.py``.

        The bootstrap p-value of the overall effect is a multiplier (wild)
        bootstrap with ``weights`` per unit, ``reps`` draws and ``seed``
        (``reps=0``: none; then without ``small_sample`` no band either).
        A universal base period's reference row (``e = -1``) is 0 by
        construction: it has no standard error, CI, band or p-value and is
        left out of the band (``reference`` column).
        """
        alpha = self.alpha if alpha is None else alpha
        if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 0:
            raise DataError(f"reps must be a non-negative integer (0 = no bootstrap); got {reps!r}")
        agg = aggregate_att_gt(self.cells, kind, min_e=min_e, max_e=max_e, balance_e=balance_e)
        G = self.n_units
        if small_sample is None:
            small_sample = G < WILD_AUTO_CLUSTERS
        df = float(G - 1) if small_sample and G > 1 else math.inf
        c = _critical(alpha, df)
        est, se = agg.overall_att, agg.overall_se
        p = float(_two_sided_p(est / se, df)) if se > 0 else np.nan
        k = agg.att.size
        ref = agg.is_reference
        est_rows = ~ref & np.isfinite(agg.se) & (agg.se > 0)
        se_rows = np.where(est_rows, agg.se, np.nan)
        boot_p, crit = np.nan, np.nan
        if reps:
            cols = np.nonzero(est_rows)[0]
            inf = np.column_stack([agg.overall_inf, agg.inf[:, cols]])
            tb = multiplier_bootstrap(inf, np.concatenate([[se], agg.se[cols]]), reps=reps, weights=weights, seed=seed)
            boot_p = float(np.mean(np.abs(tb[:, 0]) >= abs(est) / se))
            if cols.size and not small_sample:
                crit = sup_t_critical(tb[:, 1:], alpha)
        if small_sample and est_rows.any():
            Pm = agg.inf[:, est_rows]
            V = Pm.T @ Pm
            d = np.sqrt(np.diag(V))
            crit = sup_t_critical_t(V / np.outer(d, d), df, band_draws, alpha, seed)
        label = _AGG_LABEL[kind]
        with np.errstate(invalid="ignore", divide="ignore"):
            table = pd.DataFrame(
                {
                    label: agg.labels,
                    "estimate": agg.att,
                    "se": se_rows,
                    "ci_lower": agg.att - c * se_rows,
                    "ci_upper": agg.att + c * se_rows,
                    "band_lower": agg.att - crit * se_rows,
                    "band_upper": agg.att + crit * se_rows,
                    "p_value": _two_sided_p(agg.att / se_rows, df),
                }
            )
        if kind == "dynamic":
            table["reference"] = ref
        if k and np.all(agg.labels == np.round(agg.labels)):
            table[label] = table[label].astype(np.int64)
        if small_sample:
            inference = (
                f"t({G - 1}) reference for CIs and p-values and a multivariate-t sup-t band ({G} units, the clusters)"
            )
        else:
            inference = f"normal reference; multiplier bootstrap ({weights}) sup-t band"
        return AggregateResult(
            kind=kind,
            outcome=self.outcome,
            estimate=est,
            se=se,
            ci_lower=est - c * se,
            ci_upper=est + c * se,
            p_value=p,
            alpha=alpha,
            table=table,
            critical_value=crit,
            boot_p_value=boot_p,
            boot_weights=weights,
            reps=reps,
            n_units=self.n_units,
            df=df,
            inference=inference,
            influence=np.column_stack([agg.overall_inf, agg.inf]),
            source=self,
            min_e=float(min_e),
            max_e=float(max_e),
            n_treated_clusters=self.n_treated_clusters,
            n_untreated_clusters=self.n_untreated_clusters,
            few_treated_clusters=self.few_treated_clusters,
        )

    def randomization_test(
        self,
        kind: str = "simple",
        *,
        reps: int = 9999,
        seed=0,
        min_e: float = -np.inf,
        max_e: float = np.inf,
        alpha: float | None = None,
    ) -> RandomizationTest:
        """Randomization inference for the overall ``kind`` aggregation over the assignment of launch timing.

        The units' first-treated periods (their cohorts, never treated included) are re-assigned to
        the units in every way that keeps the cohort sizes (all of them when there are at most
        ``reps``, else ``reps`` seeded random ones), the ATT(g, t) re-estimated with this result's
        design (control group, method, covariates, weights, base period, trimming) and aggregated;
        the p-value compares ``|estimate|`` with those (:mod:`abkit.stats.randomization_inference`).
        The test for few treated units, where the influence-function and bootstrap p-values are
        unreliable (see :data:`abkit.did.diagnostics.FEW_TREATED_CLUSTERS`); valid when the units are
        exchangeable (MacKinnon & Webb 2020). Assignments that cannot be estimated (e.g. a
        propensity score without overlap) are left out and counted.
        """
        d = self.data
        if d is None:
            raise DataError("this result does not carry its panel; run did.staggered(...) again")
        alpha = self.alpha if alpha is None else alpha
        index, exact = assignments(d.G, reps, seed)
        est = np.full(index.shape[0], np.nan)
        for a in range(index.shape[0]):  # a loop over assignments (re-estimations), never rows
            G = d.G[index[a]]
            try:
                cells = att_gt(
                    d.Y,
                    d.periods,
                    G,
                    d.X,
                    control_group=d.control_group,
                    method=d.method,
                    base_period=d.base_period,
                    anticipation=d.anticipation,
                    weights=d.weights,
                    trim_level=d.trim_level,
                )
                est[a] = aggregate_att_gt(cells, kind, min_e=min_e, max_e=max_e).overall_att
            except DataError:
                pass  # left out and counted below
        observed = aggregate_att_gt(self.cells, kind, min_e=min_e, max_e=max_e).overall_att
        failed = int(np.sum(~np.isfinite(est)))
        name = f"Callaway-Sant'Anna, {kind} aggregation"
        return RandomizationTest(
            name,
            self.outcome,
            float(observed),
            randomization_p_value(observed, est, exact),
            alpha,
            exact,
            int(index.shape[0]),
            count_assignments(d.G),
            self.n_units,
            int(np.isfinite(d.G).sum()),
            seed,
            failed,
            est,
        )

    def to_frame(self) -> pd.DataFrame:
        """The ATT(g, t) table."""
        return self.att_gt.copy()

    def summary(self) -> str:
        s = self.aggregate("simple")
        return "\n".join(
            [
                f"Callaway-Sant'Anna ({self.method}, {self.control_group} controls, "
                f"{self.base_period} base period) on {self.outcome}: {len(self.att_gt)} ATT(g,t) "
                f"cells, {self.n_units} units",
                s.summary(),
                self._pretrend_text(),
                *self.notes,
            ]
        )

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    @property
    def cell_reference(self) -> str:
        """How the ATT(g, t) CIs and p-values are computed: 't(19) reference ...' or 'normal reference ...'."""
        if np.isfinite(self.df):
            return (
                f"ATT(g,t) CIs and p-values: t({self.df:g}) reference ({self.n_units} units, the clusters), "
                "as the aggregations"
            )
        return f"ATT(g,t) CIs and p-values: normal reference ({self.n_units} units), as the aggregations"

    def _repr_html_(self) -> str:
        return _table_html(
            self.att_gt,
            f"ATT(g,t): {self.outcome} ({self.method}, {self.control_group})",
            [self.cell_reference, self._pretrend_text(), *self.notes],
        )

    def plot(self, ax=None, **aggregate_kwargs):
        """Event-study plot of the dynamic aggregation with its uniform band."""
        return self.aggregate("dynamic", **aggregate_kwargs).plot(ax)

    def plot_trends(self, ax=None):
        if self.trends is None:
            raise DataError("this result has no trend data to plot")
        return _plot_trends(self.trends, self.outcome, ax)
