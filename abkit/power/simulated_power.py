"""Simulation power: resample the history, inject a known effect, run abkit's own analysis.

:func:`simulate_power` checks the closed forms of a plan and answers where
there is none (quantiles); :func:`power_curve` draws the power against the
true effect for a plan or a simulation.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from .._html import Html, bold, esc
from ..aggregation import resolve_caps
from ..errors import AbkitError, DataError, missing_column
from ..metrics import Metric, Quantile
from ..moments import MomentSet
from ..quantile import quantile_rows
from ..sources import _to_float, aggregate, read_columns
from ..stats.monte_carlo import monte_carlo_ci
from ..stats.power_inputs import ALTERNATIVES
from ..stats.quantile_inference import mid_quantile
from ..stats.two_sample import compare
from .metric_design import MetricDesign, estimate_design
from .planning import PowerPlan, check_days, closed_form_power, enrolled_units
from .result_display import finish_axes, fmt_int, fmt_num, fmt_pct, table_html

__all__ = ["CI_METHOD", "DEFAULT_SIMS", "DEFAULT_SIMS_QUANTILE", "SimulatedPower", "power_curve", "simulate_power"]

_KEY = "__abkit_simulated_arm__"
_MAX_ROWS = 2_000_000  # rows per simulated batch (bounds memory: ~16 MB per column)
DEFAULT_SIMS = 1000
DEFAULT_SIMS_QUANTILE = 400
CI_METHOD = "Clopper-Pearson"


@dataclass(frozen=True, eq=False)
class SimulatedPower:
    """Empirical power from resampled experiments, with its Monte Carlo interval.

    One scenario (an effect and a sample size) or a grid of them:
    :meth:`to_frame` has one row per scenario. For a single scenario
    ``power``, ``ci_lower``, ``ci_upper``, ``n_sims`` and ``closed_form``
    are floats; for a grid, numpy arrays in the row order of
    :meth:`to_frame`.

    Columns of :meth:`to_frame`: ``metric``, ``effect`` (as given),
    ``relative_effect``, ``absolute_effect``, ``days`` (when sized by
    duration), ``n_control``, ``n_treatment``, ``n_sims``, ``rejections``,
    ``power`` (= rejections / n_sims), ``ci_lower`` / ``ci_upper``
    (Clopper-Pearson interval at ``ci_level``), ``mc_se`` (the binomial
    standard error), ``closed_form`` (the plan's formula at the same units
    and effect; NaN for quantiles), ``wrong_direction`` (share of the
    rejections whose estimate has the opposite sign of the true effect),
    ``failed`` (simulated tests the estimator could not analyse, e.g. a
    ratio whose denominator summed to 0 in an arm; counted as not
    rejecting), ``alpha``, ``alternative``, ``injection``, ``method``.
    """

    metric: str
    kind: str
    rows: tuple[dict, ...]
    baseline: float
    relative: bool
    injection: str
    injection_rule: str
    alpha: float
    alternative: str
    ratio: float
    seed: int | None
    ci_level: float
    method: str
    history_units: int
    design: MetricDesign | None = None
    note: str = ""
    draws: tuple = ()  # per scenario: (p-values, estimates) of the simulated tests, in test order

    # ---------------------------------------------------------------- values
    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.rows))

    def _col(self, name: str):
        v = np.array([r[name] for r in self.rows], dtype=np.float64)
        return float(v[0]) if v.size == 1 else v

    @property
    def power(self):
        return self._col("power")

    @property
    def ci_lower(self):
        return self._col("ci_lower")

    @property
    def ci_upper(self):
        return self._col("ci_upper")

    @property
    def n_sims(self):
        v = self._col("n_sims")
        return int(v) if np.ndim(v) == 0 else v.astype(np.int64)

    @property
    def closed_form(self):
        return self._col("closed_form")

    @property
    def ci_method(self) -> str:
        return CI_METHOD

    @property
    def p_values(self):
        """Two-sided p-values of the simulated tests (NaN: not analysable), one array per scenario
        (the array itself for a single scenario). Under an A/A (effect 0) they should be uniform."""
        out = [d[0] for d in self.draws]
        return out[0] if len(out) == 1 else out

    @property
    def estimates(self):
        """Estimated absolute effects of the simulated tests, as :attr:`p_values`."""
        out = [d[1] for d in self.draws]
        return out[0] if len(out) == 1 else out

    # ---------------------------------------------------------------- text
    def _effect_text(self, r: dict) -> str:
        if self.relative:
            return f"{r['relative_effect']:+.1%}"
        return f"{r['absolute_effect']:+.4g}"

    def summary(self) -> str:
        head = (
            f"Simulated power of '{self.metric}' ({self.method}; alpha {self.alpha:g}, {self.alternative}): "
            f"units resampled from {self.history_units:,} in the history, {self.injection_rule}; "
            f"{self.ci_level:.0%} {CI_METHOD} Monte Carlo intervals."
        )
        lines = [head]
        for r in self.rows:
            when = f", {int(r['days'])} days" if "days" in r and np.isfinite(r.get("days", np.nan)) else ""
            cf = f"; closed form {fmt_pct(r['closed_form'], 1)}" if np.isfinite(r["closed_form"]) else ""
            fail = f"; {r['failed']} failed" if r["failed"] else ""
            lines.append(
                f"  effect {self._effect_text(r)}, {r['n_control']:,} + {r['n_treatment']:,} units{when}: "
                f"power {fmt_pct(r['power'], 1)} [{fmt_pct(r['ci_lower'], 1)}, {fmt_pct(r['ci_upper'], 1)}] "
                f"({r['rejections']}/{r['n_sims']}){cf}{fail}"
            )
        if self.note:
            lines.append("  note: " + self.note)
        return "\n".join(lines)

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        frame = self.to_frame()
        cols = [
            c
            for c in (
                "effect",
                "days",
                "n_control",
                "n_treatment",
                "n_sims",
                "power",
                "ci_lower",
                "ci_upper",
                "closed_form",
                "failed",
            )
            if c in frame.columns
        ]
        fmt = {
            "n_control": fmt_int,
            "n_treatment": fmt_int,
            "n_sims": fmt_int,
            "failed": fmt_int,
            "days": fmt_int,
            "power": lambda v: fmt_pct(v, 1),
            "ci_lower": lambda v: fmt_pct(v, 1),
            "ci_upper": lambda v: fmt_pct(v, 1),
            "closed_form": lambda v: fmt_pct(v, 1),
            "effect": (lambda v: fmt_pct(v, 1)) if self.relative else fmt_num,
        }
        caption = Html(
            f"{bold('Simulated power')} of {esc(self.metric)} ({esc(self.method)}): "
            f"{esc(self.injection_rule)}; {self.ci_level:.0%} {CI_METHOD} Monte Carlo intervals."
        )
        return table_html(frame[cols], fmt, caption=caption)

    # ---------------------------------------------------------------- plot
    def plot(self, ax=None, closed_form: bool = True):
        """Simulated power with its Monte Carlo interval (points), and the closed form (line).

        Against the effect when several effects were simulated (one series
        per sample size), else against the units (or days). Returns the Axes.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7.5, 4.2))
        f = self.to_frame()
        colours = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
        by_days = "days" in f.columns
        size_key = "days" if by_days else "n_control"
        several_effects = f.effect.nunique() > 1
        scale = 100.0 if self.relative else 1.0
        xcol = "relative_effect" if self.relative else "absolute_effect"
        groups = f.groupby(size_key, sort=True) if several_effects else f.groupby("effect", sort=True)
        for j, (key, g) in enumerate(groups):
            c = colours[j % len(colours)]
            if several_effects:
                x = scale * g[xcol].to_numpy()
                label = f"{int(key)} days" if by_days else f"{int(key):,} units in control"
            else:
                x = g[size_key].to_numpy(dtype=float)
                label = f"effect {self._effect_text(g.iloc[0].to_dict())}"
            y = 100 * g.power.to_numpy()
            err = np.vstack([y - 100 * g.ci_lower.to_numpy(), 100 * g.ci_upper.to_numpy() - y])
            ax.errorbar(x, y, yerr=err, fmt="o", color=c, ms=5, capsize=3, lw=1.2, label=f"simulated, {label}")
            if closed_form and self.design is not None and np.isfinite(g.closed_form.to_numpy()).any():
                if several_effects:
                    lo, hi = min(0.0, g[xcol].min()), max(0.0, g[xcol].max())
                    grid = np.linspace(lo, hi, 81)
                    delta = grid * self.baseline if self.relative else grid
                    n_c, n_t = float(g.n_control.iloc[0]), float(g.n_treatment.iloc[0])
                    cf, _ = closed_form_power(
                        self.design,
                        delta,
                        n_c,
                        alpha=self.alpha,
                        ratio=n_t / n_c,
                        alternative=self.alternative,
                        arms=2,
                        correction=None,
                    )
                    ax.plot(scale * grid, 100 * cf, "-", color=c, lw=1.2, alpha=0.8, label=f"closed form, {label}")
                else:
                    ax.plot(
                        x,
                        100 * g.closed_form.to_numpy(),
                        "-",
                        color=c,
                        lw=1.2,
                        alpha=0.8,
                        label=f"closed form, {label}",
                    )
        ax.axhline(100 * self.alpha, color="#57606a", lw=0.8, ls=":")
        if several_effects:
            ax.set_xlabel(
                "true effect, relative to baseline (%)" if self.relative else f"true effect on {self.metric} (absolute)"
            )
        else:
            ax.set_xlabel("experiment duration (days)" if by_days else "units in the control arm")
        ax.set_ylabel("power: share of simulated tests\nthat reject (%)")
        n = int(f.n_sims.iloc[0])
        ax.set_title(
            f"Simulated power of {self.metric}: {n:,} resampled tests per point\n"
            f"(bars: {self.ci_level:.0%} {CI_METHOD} Monte Carlo intervals)",
            loc="left",
            fontsize=10,
        )
        ax.set_ylim(0, 100)
        finish_axes(ax)
        return ax


def power_curve(plan_or_simulation, days: int | None = None, *, metric=None, effects=None, simulated=None, ax=None):
    """Power against the true effect, as a matplotlib Axes.

    ``plan_or_simulation`` is a :class:`PowerPlan` (the closed form after
    ``days``, optionally with ``simulated`` points overlaid; see
    :meth:`PowerPlan.plot` with ``kind="power"``) or a
    :class:`SimulatedPower` (its points and Monte Carlo intervals, with the
    closed-form line).
    """
    if isinstance(plan_or_simulation, PowerPlan):
        return plan_or_simulation.plot("power", ax, days=days, metric=metric, effects=effects, simulated=simulated)
    if isinstance(plan_or_simulation, SimulatedPower):
        return plan_or_simulation.plot(ax)
    raise AbkitError(
        f"power_curve() takes a PowerPlan (abkit.power.plan) or a SimulatedPower "
        f"(abkit.power.simulate_power), not {type(plan_or_simulation).__name__}"
    )


# ------------------------------------------------------------------ helpers
def _one_metric(metric) -> Metric:
    if isinstance(metric, (list, tuple)):
        if len(metric) != 1:
            raise AbkitError(f"simulate_power() takes one metric, got {len(metric)}; call it once per metric")
        metric = metric[0]
    if not isinstance(metric, Metric):
        raise AbkitError(f"{metric!r} is not a metric; use abkit.Mean, abkit.Proportion, abkit.Ratio or abkit.Quantile")
    if metric.kind not in ("mean", "proportion", "ratio", "quantile"):
        raise AbkitError(
            f"metric '{metric.name}' is a {metric.kind.upper()} metric; simulate_power injects "
            "effects into Mean, Proportion, Ratio and Quantile metrics only"
        )
    return metric


def _sim_count(n_sims, quantile: bool) -> int:
    if n_sims is None:
        return DEFAULT_SIMS_QUANTILE if quantile else DEFAULT_SIMS
    if isinstance(n_sims, bool) or not isinstance(n_sims, (int, np.integer)) or n_sims < 10:
        raise AbkitError(
            f"n_sims={n_sims!r} must be a whole number >= 10 (simulated tests per scenario; "
            "1000 gives a Monte Carlo standard error of 1.3 points at 80% power)"
        )
    return int(n_sims)


def _sizes(n_per_arm, days, ratio, daily_units, population, uniques_by_day, traffic_share):
    """[(n_control, n_treatment, days or None)] from n_per_arm or from days and the traffic."""
    if (n_per_arm is None) == (days is None):
        raise AbkitError(
            "give the size of the simulated tests: n_per_arm= (units in control; each treatment "
            "arm gets ratio x that) or days= with the traffic (daily_units=, population=)"
        )
    k = float(ratio)
    if n_per_arm is not None:
        n = np.atleast_1d(np.asarray(n_per_arm, dtype=np.float64))
        if n.ndim != 1 or not np.all(np.isfinite(n)) or np.any(n < 2):
            raise AbkitError(f"n_per_arm={n_per_arm!r} must be numbers >= 2 (units in the control arm)")
        n_c = np.ceil(n * (1 - 1e-12)).astype(np.int64)
        return [(int(c), max(round(c * k), 2), None) for c in dict.fromkeys(n_c.tolist())]
    d = check_days(days)
    units, _ = enrolled_units(d, daily_units, population, uniques_by_day, traffic_share)
    out = []
    for day, u in zip(d, units):
        n_c = round(float(u) / (1.0 + k))
        n_t = round(float(u) * k / (1.0 + k))
        if n_c < 2 or n_t < 2:
            raise AbkitError(
                f"after {int(day)} days only {u:.0f} units are enrolled; a simulated test needs at "
                "least 2 per arm: use more days"
            )
        out.append((n_c, n_t, int(day)))
    return out


def _history(data, metric: Metric, variant, control, unit):
    """The resampling population: the metric's columns (control arm only when ``variant`` is given)."""
    if isinstance(data, MomentSet):
        raise AbkitError(
            "simulate_power() resamples units, so it needs the unit-level data (a DataFrame, "
            "pyarrow Table or parquet/CSV path), not moments"
        )
    cols = list(metric.source_columns) + ([unit] if unit else []) + ([variant] if variant else [])
    cols = list(dict.fromkeys(cols))
    if isinstance(data, pd.DataFrame):
        have = [str(c) for c in data.columns]
        for c in cols:
            if c not in have:
                raise missing_column(c, have)
        frame = data[cols]
    else:
        frame = read_columns(data, cols)
    if variant:
        arms = list(pd.unique(frame[variant].dropna()))
        if control not in arms:
            raise DataError(
                f"control arm {control!r} not found in column '{variant}'; arms present: {arms}. "
                "Pass control= with one of them (only the control arm is resampled)"
            )
        frame = frame[(frame[variant] == control).to_numpy()]
    frame = frame.reset_index(drop=True)
    if len(frame) < 2:
        raise DataError(f"the history has {len(frame)} unit(s); resampling needs at least 2")
    return frame


def _decisions(p, est, alternative: str, alpha: float) -> np.ndarray:
    """Rejections of the (two-sided) p-values ``p`` as the test ``alternative`` at level ``alpha``."""
    p = np.asarray(p, dtype=np.float64)
    est = np.asarray(est, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        if alternative == "two-sided":
            return p < alpha
        half = p / 2.0 < alpha
        return half & (est > 0) if alternative == "larger" else half & (est < 0)


class _Injector:
    """The effect injection rule of one metric (see :func:`simulate_power`)."""

    def __init__(self, metric: Metric, injection: str, baseline: float):
        self.metric, self.injection, self.baseline = metric, injection, baseline
        self.kind = metric.kind
        if self.kind == "ratio":
            self.column, self.denominator = metric.target.numerator, metric.target.denominator
        elif isinstance(metric, Quantile):  # kind "quantile"
            self.column, self.denominator = metric.column, None
        else:
            self.column, self.denominator = metric.option("column", metric.target.numerator), None

    def rule(self) -> str:
        col, den = self.column, self.denominator
        if self.kind == "proportion":
            return (
                f"effect injected by setting a random share (p_t - p) / (1 - p) of the treatment units' 0s of "
                f"'{col}' to 1 (p / p_t share of 1s to 0 for a decrease), so its expected proportion moves "
                "by exactly the effect"
            )
        if self.injection == "multiply":
            what = {"mean": f"'{col}'", "ratio": f"the numerator '{col}'", "quantile": f"'{col}'"}[self.kind]
            extra = " (every quantile moves by the same relative amount)" if self.kind == "quantile" else ""
            return f"effect injected by multiplying {what} of every treatment unit by (1 + relative effect){extra}"
        if self.kind == "ratio":
            return (
                f"effect injected by adding effect x '{den}' to the numerator '{col}' of every treatment unit "
                "(the ratio moves by the effect; the units' linearized values do not change)"
            )
        extra = " (every quantile moves by the effect)" if self.kind == "quantile" else ""
        return f"effect injected by adding the effect to '{col}' of every treatment unit{extra}"

    def check(self, delta: float) -> None:
        name = self.metric.name
        if self.kind == "proportion":
            pt = self.baseline + delta
            if not 0.0 <= pt <= 1.0:
                raise AbkitError(
                    f"metric '{name}': the effect moves the proportion from {self.baseline:.4g} to "
                    f"{pt:.4g}, outside [0, 1]; use a smaller effect"
                )
        elif self.injection == "multiply" and delta != 0 and self.baseline == 0:
            raise AbkitError(
                f"metric '{name}' has baseline 0 in the history, so it cannot be multiplied into an "
                "effect; use relative=False (an additive effect)"
            )

    def apply(self, cols: dict, treat: slice, delta: float, uniform) -> dict:
        """Columns (2-d: simulations x units) with the effect injected into the ``treat`` units."""
        if delta == 0:
            return cols
        out = dict(cols)
        y = cols[self.column].copy()
        t = y[:, treat]
        if self.kind == "proportion":
            p = self.baseline
            if delta > 0:
                flip = (t == 0) & (uniform < delta / (1.0 - p))
                t[flip] = 1.0
            else:
                flip = (t == 1) & (uniform < -delta / p)
                t[flip] = 0.0
        elif self.injection == "multiply":
            t *= 1.0 + delta / self.baseline
        elif self.kind == "ratio":
            t += delta * cols[self.denominator][:, treat]
        else:
            t += delta
        y[:, treat] = t
        out[self.column] = y
        return out


def _group_array(n_c: int, n_t: int, b: int) -> pa.DictionaryArray:
    """Group codes of ``b`` simulated tests laid out one after the other: 2j control, 2j + 1 treatment."""
    codes = np.repeat(np.arange(2 * b, dtype=np.int32), np.tile(np.array([n_c, n_t]), b))
    return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(np.arange(2 * b, dtype=np.int64)))


def _analyse_moments(cols: dict, metric: Metric, groups: pa.DictionaryArray, b: int, alpha: float):
    """The real estimator on ``b`` simulated tests: one aggregation (abkit's moments), one compare each."""
    table = pa.table({_KEY: groups, **{c: pa.array(a.ravel()) for c, a in cols.items()}})
    block = aggregate(table, [metric], variant=_KEY).block_for(metric.columns, metric.dropna)
    p, est = np.full(b, np.nan), np.full(b, np.nan)
    errors = []
    for j in range(b):
        try:
            c = compare(block, metric, 2 * j, 2 * j + 1, alpha)
        except AbkitError as exc:
            errors.append(exc)
            continue
        p[j], est[j] = c.p_value, c.effect
    return p, est, errors


def _analyse_quantile(values: np.ndarray, metric: Quantile, n_c: int, alpha: float, units=None, counts=None):
    """The real quantile estimator (:func:`abkit.quantile.quantile_rows`) on one simulated test."""
    if units is None:
        arm = np.repeat(np.array([0, 1], dtype=np.int8), [n_c, values.size - n_c])
        frame = pd.DataFrame({_KEY: arm, metric.column: values})
    else:
        arm = np.repeat((np.arange(counts.size) >= n_c).astype(np.int8), counts)
        frame = pd.DataFrame({_KEY: arm, metric.column: values, metric.unit: units})
    (row,) = quantile_rows(frame, metric, _KEY, 0, [1], alpha)
    return row["p_value"], row["effect"]


def simulate_power(
    data,
    metric,
    effect,
    n_per_arm=None,
    *,
    days=None,
    relative: bool = True,
    injection: str | None = None,
    n_sims: int | None = None,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    ratio: float = 1.0,
    seed: int | None = 0,
    variant: str | None = None,
    control: Hashable = "control",
    daily_units=None,
    population=None,
    uniques_by_day=None,
    traffic_share: float = 1.0,
    ci_level: float = 0.95,
    max_rows: int = _MAX_ROWS,
) -> SimulatedPower:
    """Empirical power by simulation: resample the history, inject a known effect, run the real analysis.

    For each scenario (effect x sample size) ``n_sims`` experiments are
    simulated. Each draws ``n_control + n_treatment`` units **with
    replacement** from the history (a bootstrap: the history is the
    population; whole units, so a ratio's numerator and denominator and
    every CUPED covariate travel together), gives the first ``n_control``
    to control and the rest to treatment, injects the effect into the
    treatment units, and analyses the test with abkit's own estimator: the
    moments of all simulated tests of a batch are aggregated in one pass
    (:func:`abkit.sources.aggregate`, one group per test and arm) and
    :func:`abkit.stats.two_sample.compare` (what :func:`abkit.analyze` runs) gives
    each test's p-value; quantiles go through
    :func:`abkit.quantile.quantile_rows` one test at a time (slower:
    ``n_sims`` defaults to 400 for them instead of 1000). The power is the
    share of tests that reject (two-sided: ``p < alpha``, both directions
    counted as in the closed forms; one-sided: ``p / 2 < alpha`` with the
    estimate in the alternative's direction). Its interval is the exact
    Clopper-Pearson binomial interval (:func:`monte_carlo_ci`): the Monte
    Carlo error, not a statement about the history.

    **Effect injection** (``delta`` = the absolute effect; with
    ``relative=True`` ``effect`` is a fraction of the history's baseline
    and ``delta = effect x baseline``):

    * Mean: ``injection="multiply"`` (default for ``relative=True``)
      multiplies the outcome of every treatment unit by ``1 + effect``;
      ``"add"`` (default for ``relative=False``) adds ``delta``. A
      multiplied outcome also has its sd multiplied by ``1 + effect``, which
      the closed forms (equal arm variances) do not know: for an increase
      they overstate the power a little, for a decrease they understate it.
    * Proportion: a random share ``delta / (1 - p)`` of the treatment units
      with 0 become 1 (for a decrease a share ``-delta / p`` of the 1s
      become 0), so the expected proportion is exactly ``p + delta``.
    * Ratio: ``"multiply"`` multiplies the numerator of every treatment unit
      by ``1 + effect``; ``"add"`` adds ``delta x denominator`` to it (the
      ratio moves by ``delta`` and each unit's linearized value
      ``num - R den`` is unchanged; for a decrease some numerators become
      negative, which the simulated analysis accepts).
    * Quantile: ``"multiply"`` multiplies the outcome by ``1 + effect``
      (every quantile moves by the same relative amount); ``"add"`` adds
      ``delta`` (every quantile moves by ``delta``).

    Winsorized Means are capped at the cap computed from the history
    (fixed for all simulated tests), after the injection.

    Parameters
    ----------
    data : the history, one row per unit (DataFrame, pyarrow Table,
        parquet/CSV path). Quantile metrics with ``unit=`` may have several
        rows per unit; whole units are resampled.
    metric : one :class:`abkit.Mean`, :class:`abkit.Proportion`,
        :class:`abkit.Ratio` (with or without CUPED covariates) or
        :class:`abkit.Quantile`.
    effect : the true effect (signed: negative is a decrease), or a list of
        them for a power curve. Relative (0.05 = +5%) unless ``relative=False``.
    n_per_arm : units in the control arm (each treatment arm gets ``ratio``
        x as many; rounded up), or a list of sizes. Or instead:
    days : experiment duration(s), turned into units with the traffic
        (``daily_units``, ``population``, ``uniques_by_day``,
        ``traffic_share``) exactly as in :func:`plan`.
    injection : ``"multiply"`` or ``"add"`` (see above); ignored for
        proportions.
    n_sims : simulated tests per scenario (default 1000; 400 for quantiles).
    alpha, alternative, ratio : the test (``alternative`` is
        ``"two-sided"``, ``"larger"`` or ``"smaller"``, as in the closed forms).
    seed : reproducible draws. Simulated test ``j`` of a sample size draws
        its units from its own generator (``seed``, the arm sizes, ``j``), so
        every effect of a grid sees the same resampled tests (common random
        numbers: a smoother curve), and neither ``n_sims`` (more tests extend
        the same sequence) nor the batching changes a test.
    variant, control : with a past A/B (or A/A) test as history, only the
        ``control`` arm's units are resampled.
    ci_level : level of the Monte Carlo interval (default 0.95).
    max_rows : rows per simulated batch (memory bound).

    Returns
    -------
    :class:`SimulatedPower` with ``power``, ``ci_lower``, ``ci_upper``,
    ``n_sims``, ``closed_form``, ``to_frame()`` and ``plot()``.

    Examples
    --------
    >>> hist = abkit.simulate.ab_data(20_000, seed=3)                          # doctest: +SKIP
    >>> m = abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"))  # doctest: +SKIP
    >>> simulate_power(hist, m, effect=0.10, n_per_arm=9_000).power            # doctest: +SKIP
    """
    metric = _one_metric(metric)
    quantile = metric.kind == "quantile"
    if alternative not in ALTERNATIVES:
        raise AbkitError(f"alternative={alternative!r} is not known; use 'two-sided', 'larger' or 'smaller'")
    if not (0.0 < float(alpha) < 0.5):
        raise AbkitError(f"alpha={alpha!r} must be between 0 and 0.5 (e.g. 0.05)")
    alpha = float(alpha)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.integer, np.floating)) or not ratio > 0:
        raise AbkitError(f"ratio={ratio!r} must be > 0 (n_treatment / n_control, e.g. 1 for equal arms)")
    if injection is None:
        injection = "multiply" if relative else "add"
    if injection not in ("multiply", "add"):
        raise AbkitError(f"injection={injection!r} is not known; use 'multiply' or 'add'")
    if metric.kind == "proportion":
        injection = "flip"
    sims = _sim_count(n_sims, quantile)
    effects = np.atleast_1d(np.asarray(effect, dtype=np.float64))
    if effects.ndim != 1 or effects.size == 0 or not np.all(np.isfinite(effects)):
        raise AbkitError(f"effect={effect!r} must be a finite number or a list of them (e.g. 0.05 for +5%)")
    if relative and injection == "multiply" and np.any(effects <= -1):
        raise AbkitError(f"effect={effects.min():g} is -100% or less; a relative effect must be > -1")
    sizes = _sizes(n_per_arm, days, ratio, daily_units, population, uniques_by_day, traffic_share)
    if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or max_rows < 1000:
        raise AbkitError(f"max_rows={max_rows!r} must be a whole number >= 1000")
    unit = metric.unit if quantile else None

    hist = _history(data, metric, variant, control, unit)
    design = None
    if quantile:
        v = hist[metric.column].to_numpy(dtype=np.float64, na_value=np.nan)
        finite = np.isfinite(v)
        if not finite.all() and not metric.dropna:
            raise DataError(
                f"column '{metric.column}' has {int((~finite).sum()):,} missing or infinite values in "
                f"the history (metric '{metric.name}'); declare the metric with dropna=True"
            )
        if finite.sum() < 2:
            raise DataError(f"column '{metric.column}' has fewer than 2 values in the history")
        baseline = mid_quantile(np.sort(v[finite]), metric.q)  # the quantile the analysis estimates
    else:
        if getattr(metric, "needs_cap", False):
            (metric,) = resolve_caps(hist, [metric])
        (design,) = estimate_design(hist, metric)
        baseline = design.baseline
    if relative and baseline == 0 and np.any(effects != 0):
        raise AbkitError(
            f"metric '{metric.name}' has baseline 0 in the history, so a relative effect is 0 too; "
            "give the effect in the metric's units with relative=False"
        )
    deltas = effects * baseline if relative else effects
    rel_effects = effects if relative else (effects / baseline if baseline != 0 else np.full(effects.shape, np.nan))
    inj = _Injector(metric, injection, baseline)
    for dl in deltas:
        inj.check(float(dl))
    analysed = metric
    if metric.kind == "ratio" and injection == "add" and np.any(deltas < 0) and metric.option("nonnegative", False):
        # num + delta x den can dip below 0 for a decrease: a modelling device (it keeps the arms' variances
        # equal), so the estimator runs without the data guard against negative numerators
        import copy

        analysed = copy.copy(metric)
        object.__setattr__(analysed, "options", tuple(sorted({**dict(metric.options), "nonnegative": False}.items())))

    # the resampling frame: numeric columns (and, for clustered quantiles, the rows of each unit)
    source = [c for c in metric.source_columns]
    arrays = {c: _to_float(hist, c) for c in source}
    if unit is not None:
        codes, uniq = pd.factorize(hist[unit], sort=False)
        if (codes < 0).any():
            raise DataError(f"column '{unit}' (the unit of metric '{metric.name}') has missing values")
        order = np.argsort(codes, kind="stable")
        arrays = {c: a[order] for c, a in arrays.items()}
        counts_all = np.bincount(codes, minlength=len(uniq))
        starts = np.concatenate(([0], np.cumsum(counts_all)[:-1]))
        n_units = len(uniq)
    else:
        n_units = len(hist)

    rows, draws = [], []
    entropy = np.random.SeedSequence(seed).entropy  # drawn once when seed is None
    for n_c, n_t, day in sizes:
        n_tot = n_c + n_t
        p_all = np.full((effects.size, sims), np.nan)
        est_all = np.full((effects.size, sims), np.nan)
        failures: list = []
        batch = max(1, min(sims, int(max_rows) // n_tot)) if not quantile else max(1, min(sims, 64))
        done = 0
        groups = None
        while done < sims:
            b = min(batch, sims - done)
            # one generator per simulated test (seed, size, test number): the draws do not depend on the
            # batching, on n_sims (more tests extend the same sequence) or on the other scenarios of a grid
            gens = [
                np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(n_c, n_t, done + j))) for j in range(b)
            ]
            idx = np.stack([g.integers(0, n_units, size=n_tot) for g in gens])
            uniform = np.stack([g.random(n_t) for g in gens]) if metric.kind == "proportion" else None
            if not quantile:
                cols = {c: a[idx] for c, a in arrays.items()}
                if groups is None or len(groups) != b * n_tot:
                    groups = _group_array(n_c, n_t, b)
                for i, dl in enumerate(deltas):
                    injected = inj.apply(cols, slice(n_c, None), float(dl), uniform)
                    p, est, errs = _analyse_moments(injected, analysed, groups, b, alpha)
                    p_all[i, done : done + b], est_all[i, done : done + b] = p, est
                    failures += errs
            else:
                for j in range(b):
                    if unit is None:
                        values = arrays[metric.column][idx[j]][None, :]
                        counts = units = None
                        treat = slice(n_c, None)
                    else:
                        counts = counts_all[idx[j]]
                        total = int(counts.sum())
                        first = np.repeat(starts[idx[j]] - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
                        rows_j = first + np.arange(total)
                        values = arrays[metric.column][rows_j][None, :]
                        units = np.repeat(np.arange(n_tot), counts)
                        treat = slice(int(counts[:n_c].sum()), None)
                    for i, dl in enumerate(deltas):
                        y = inj.apply({metric.column: values}, treat, float(dl), None)[metric.column][0]
                        try:
                            p, est = _analyse_quantile(y, metric, n_c, alpha, units, counts)
                        except AbkitError as exc:
                            failures.append(exc)
                            continue
                        p_all[i, done + j], est_all[i, done + j] = p, est
            if done == 0 and failures and np.all(np.isnan(p_all[:, :b])):
                raise failures[0]  # nothing could be analysed: a setup problem, not bad luck
            done += b
        for i, e in enumerate(effects):
            rej = _decisions(p_all[i], est_all[i], alternative, alpha)
            k = int(rej.sum())
            failed = int(np.isnan(p_all[i]).sum())
            lo, hi = monte_carlo_ci(k, sims, ci_level)
            pw = k / sims
            dl = float(deltas[i])
            wrong = float(np.mean(np.sign(est_all[i][rej]) != np.sign(dl))) if (k and dl != 0) else np.nan
            cf = np.nan
            if design is not None:
                cf = float(
                    closed_form_power(
                        design,
                        dl,
                        float(n_c),
                        alpha=alpha,
                        ratio=n_t / n_c,
                        alternative=alternative,
                        arms=2,
                        correction=None,
                    )[0][0]
                )
            row = {
                "metric": metric.name,
                "effect": float(e),
                "relative_effect": float(rel_effects[i]),
                "absolute_effect": dl,
            }
            if day is not None:
                row["days"] = day
            row.update(
                {
                    "n_control": n_c,
                    "n_treatment": n_t,
                    "n_sims": sims,
                    "rejections": k,
                    "power": pw,
                    "ci_lower": float(lo),
                    "ci_upper": float(hi),
                    "mc_se": float(np.sqrt(pw * (1 - pw) / sims)),
                    "closed_form": cf,
                    "wrong_direction": wrong,
                    "failed": failed,
                    "alpha": alpha,
                    "alternative": alternative,
                    "injection": injection,
                    "method": metric.method_label,
                }
            )
            rows.append(row)
            draws.append((p_all[i].copy(), est_all[i].copy()))
    notes = []
    if quantile and n_sims is None:
        notes.append(
            f"quantile metrics are analysed one simulated test at a time, so {sims} simulations by "
            "default (Monte Carlo standard error up to 2.5 points); pass n_sims= for more"
        )
    if injection == "multiply" and metric.kind in ("mean", "ratio") and np.any(deltas != 0):
        notes.append(
            "a multiplied outcome also scales the treatment arm's sd by (1 + effect); the closed form "
            "assumes equal variances, so it overstates the power of increases and understates that of "
            "decreases a little (injection='add' keeps the variances equal)"
        )
    if analysed is not metric:
        notes.append(
            "a decrease added as effect x denominator makes some numerators negative; they are "
            "analysed as they are (injection='multiply' keeps numerators >= 0)"
        )
    if metric.option("cap") is not None:
        notes.append(f"outcome capped at {metric.option('cap'):.6g} (from the history) after the injection")
    return SimulatedPower(
        metric=metric.name,
        kind=metric.kind,
        rows=tuple(rows),
        baseline=float(baseline),
        relative=bool(relative),
        injection=injection,
        injection_rule=inj.rule(),
        alpha=alpha,
        alternative=alternative,
        ratio=float(ratio),
        seed=seed,
        ci_level=float(ci_level),
        method=metric.method_label,
        history_units=int(n_units),
        design=design,
        note="; ".join(notes),
        draws=tuple(draws),
    )
