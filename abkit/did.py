"""Difference-in-differences for non-randomized rollouts (a refund policy launched market by market).

    >>> import abkit, abkit.did as did
    >>> panel = abkit.simulate.rollout_panel(effects={"contact_rate": -0.08}, seed=1)
    >>> panel["launched"] = (panel.week >= panel.launch_week.fillna(10**6)).astype(float)
    >>> did.twfe(panel, ("contacts", "orders"), "launched", "market", "week")   # doctest: +SKIP
    >>> es = did.event_study(panel, ("contacts", "orders"), "market", "week", "launch_week")
    >>> es.plot()                                                               # doctest: +SKIP
    >>> panel["contact_rate"] = panel.contacts / panel.orders
    >>> cs = did.staggered(panel, "contact_rate", "market", "week", "launch_week")
    >>> cs.aggregate("dynamic").to_frame()                                      # doctest: +SKIP

Estimators (formulas and references in :mod:`abkit.stats.did`):

* :func:`two_by_two` - classic DiD regression ``y ~ treated + post + treated:post (+ X)``.
* :func:`twfe` - two-way fixed effects ``y ~ D | unit + time`` (fixed effects absorbed).
* :func:`event_study` - leads and lags of the launch (binned endpoints), joint
  pre-trend test, pointwise and uniform (sup-t) bands.
* :func:`staggered` - Callaway & Sant'Anna (2021) ATT(g, t), with the simple,
  dynamic, group and calendar aggregations.
* :func:`placebo`, :func:`bacon` - diagnostics; :func:`aggregate_panel` builds
  unit x period panels from buyer- or order-level rows (in DuckDB / Spark for
  files and tables: only the panel comes back).

Inference. Cluster-robust (CRV1) standard errors, clustered by unit unless
``cluster=`` says otherwise, with the small-sample factor
``G/(G-1) (N-1)/(N-K)`` and t(G-1) reference (as Stata, statsmodels and R
fixest; ``K`` follows fixest's rule for fixed effects nested in clusters).
Few clusters (20 markets) are the normal case here, so with fewer than
:data:`WILD_AUTO_CLUSTERS` clusters the wild cluster restricted bootstrap
p-value and confidence interval are reported too (``wild_p_value``,
``wild_ci_lower``, ``wild_ci_upper``; Rademacher or Webb weights, seeded).
For :func:`staggered` (influence-function SEs, clustered by unit), fewer
than :data:`WILD_AUTO_CLUSTERS` units switch CIs to ``t(G - 1)``, the uniform
band to a multivariate-t sup-t band, and the pre-trend test
(:meth:`StaggeredResult.pretrend_test`, :meth:`AggregateResult.pretrend`; by
default the :data:`PRETREND_LEADS` = 4 periods before launch, ``leads=`` to
change) to a jackknife covariance with Hotelling's F.

Ratio outcomes. ``outcome=("contacts", "orders")`` analyses the unit-period
ratio ``contacts / orders`` weighted by ``orders`` (unless ``weights=`` is
given): the estimate is then the effect on the pooled ratio
``sum contacts / sum orders`` of the treated cells, i.e. per order, not per
market-week; unweighted analysis of the ratio would give every market-week
the same say whatever its size.
"""
from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ._html import bold, frame_table
from .errors import DataError, missing_column
from .plots import style_axes
from .sources import read_columns
from .stats import did as core

__all__ = [
    "DiDWarning", "WILD_AUTO_CLUSTERS", "PRETREND_LEADS", "DiDResult", "EventStudyResult", "StaggeredResult",
    "AggregateResult", "WindowAverage", "BaconResult", "PretrendTest", "aggregate_panel", "two_by_two", "twfe",
    "event_study", "staggered", "placebo", "bacon",
]

WILD_AUTO_CLUSTERS = 50
"""With fewer clusters than this, the wild cluster bootstrap runs by default (``wild=None``)."""


class DiDWarning(UserWarning):
    """A DiD design or estimator choice that can mislead (e.g. TWFE on staggered launches)."""


# --------------------------------------------------------------------------
# Data preparation
# --------------------------------------------------------------------------
def _fmt(x, digits=4) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}"


def _fmt_p(p) -> str:
    if p is None or not np.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _val(v) -> str:
    """A data value for an error message: 8019, 2005.5, 'M01' (no numpy reprs)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return repr(v) if isinstance(v, str) else str(v)


def _as_list(x) -> list[str]:
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    return list(x)


def _outcome_columns(outcome) -> tuple[list[str], str]:
    if isinstance(outcome, str):
        return [outcome], outcome
    if isinstance(outcome, (tuple, list)) and len(outcome) == 2 and all(isinstance(c, str) for c in outcome):
        return list(outcome), f"{outcome[0]}/{outcome[1]}"
    raise DataError(f"outcome must be a column name or a (numerator, denominator) pair of column names; "
                    f"got {outcome!r}")


def _numeric(df: pd.DataFrame, col: str) -> np.ndarray:
    s = df[col]
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64").to_numpy()
    if not pd.api.types.is_numeric_dtype(s.dtype):
        conv = pd.to_numeric(s, errors="coerce")
        bad = s[conv.isna() & s.notna()]
        if len(bad):
            raise DataError(f"column '{col}' is not numeric (dtype {s.dtype}; e.g. value {bad.iloc[0]!r} in "
                            f"{len(bad):,} rows); convert it to numbers before the analysis")
        s = conv
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


@dataclass
class _Frame:
    """The cleaned long frame: arrays, with the count of dropped rows by reason."""

    y: np.ndarray
    w: np.ndarray | None
    cols: dict
    keys: dict
    dropped: dict
    outcome_name: str
    n_rows_in: int
    extra: dict = field(default_factory=dict)


def _prepare(data, outcome, numeric: Sequence[str], keys: Sequence[str], weights: str | None,
             extra: Sequence[str] = ()) -> _Frame:
    """Read and clean the columns; ``extra`` columns are returned as is (missing values allowed)."""
    out_cols, name = _outcome_columns(outcome)
    numeric = [c for c in dict.fromkeys(numeric) if c is not None]
    keys = [c for c in dict.fromkeys(keys) if c is not None]
    extra = [c for c in dict.fromkeys(extra) if c is not None]
    wanted = list(dict.fromkeys([*out_cols, *numeric, *keys, *extra, *([weights] if weights else [])]))
    df = read_columns(data, wanted)
    n_in = len(df)
    if n_in == 0:
        raise DataError("the data has no rows")
    arrays = {c: _numeric(df, c) for c in dict.fromkeys([*out_cols, *numeric, *([weights] if weights else [])])}
    keep = np.ones(n_in, bool)
    dropped: dict[str, int] = {}
    for c, a in arrays.items():
        bad = ~np.isfinite(a) & keep
        if bad.any():
            dropped[f"missing {c}"] = int(bad.sum())
            keep &= ~bad
    for c in keys:
        bad = df[c].isna().to_numpy() & keep
        if bad.any():
            dropped[f"missing {c}"] = int(bad.sum())
            keep &= ~bad
    if len(out_cols) == 2:
        den = arrays[out_cols[1]]
        bad = keep & (den <= 0)
        if bad.any():
            dropped[f"{out_cols[1]} <= 0"] = int(bad.sum())
            keep &= ~bad
    w = None
    if weights:
        wv = arrays[weights]
        bad = keep & (wv <= 0)
        if bad.any():
            dropped[f"{weights} <= 0"] = int(bad.sum())
            keep &= ~bad
    if not keep.any():
        raise DataError(f"no rows left after dropping rows with missing values ({dropped}); check the data")
    arrays = {c: a[keep] for c, a in arrays.items()}
    if len(out_cols) == 2:
        y = arrays[out_cols[0]] / arrays[out_cols[1]]
        w = arrays[out_cols[1]] if not weights else arrays[weights]
    else:
        y = arrays[out_cols[0]]
        if weights:
            w = arrays[weights]
    keyvals = {c: df[c].to_numpy()[keep] for c in keys}
    extras = {}
    for c in extra:
        s = df[c]
        if s.dtype.kind in "mM":
            raise DataError(f"column '{c}' holds dates; it must hold the first treated period in the units of "
                            "the period column (e.g. a week number), 0 or missing if never treated")
        v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = s.notna().to_numpy() & ~np.isfinite(v)
        if bad.any():
            raise DataError(f"column '{c}' must hold a period number (or 0 / missing for never treated); "
                            f"got e.g. {s[bad].iloc[0]!r}")
        extras[c] = v[keep]
    return _Frame(y=y, w=w, cols=arrays, keys=keyvals, dropped=dropped, outcome_name=name, n_rows_in=n_in,
                  extra=extras)


def _time_numeric(values: np.ndarray, col: str) -> np.ndarray:
    if np.asarray(values).dtype.kind in "mM":
        raise DataError(f"column '{col}' holds dates or durations; this estimator measures event time in periods, "
                        f"so give it period numbers, e.g. weeks since the start: "
                        f"(df['{col}'] - df['{col}'].min()).dt.days // 7")
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"column '{col}' must hold numbers (e.g. week or year numbers) for this "
                        f"estimator; got values like {values[0]!r}. Map the periods to integers first") from None


def _first_treated_per_unit(ucode: np.ndarray, n_units: int, first: np.ndarray, col: str,
                            ulab: np.ndarray | None = None, unit: str | None = None) -> np.ndarray:
    """One first-treated period per unit (0 = never); must be constant within unit."""
    f = np.where(np.isfinite(first), first, 0.0)
    lo = np.full(n_units, np.inf)
    hi = np.full(n_units, -np.inf)
    np.minimum.at(lo, ucode, f)
    np.maximum.at(hi, ucode, f)
    if np.any(lo != hi):
        i = int(np.argmax(lo != hi))
        shown = "" if ulab is None else f", e.g. {unit}={_val(ulab[i])} has {lo[i]:g} and {hi[i]:g}"
        raise DataError(f"column '{col}' must be constant within each unit (the unit's first treated "
                        f"period, 0 or missing if never treated); {int((lo != hi).sum())} unit(s) have "
                        f"several values{shown} (missing counts as 0)")
    return lo


def _first_from_treatment(ucode, tvals, D, n_units, col, ulab=None, unit=None) -> np.ndarray:
    """First period with D = 1 per unit (inf = never); raises unless treatment is absorbing."""
    first = np.full(n_units, np.inf)
    on = D > 0.5
    np.minimum.at(first, ucode[on], tvals[on])
    bad = (~on) & (tvals >= first[ucode])
    if bad.any():
        i = int(np.argmax(bad))
        eg = "" if ulab is None else (f", e.g. {unit}={_val(ulab[ucode[i]])} is on from {first[ucode[i]]:g} but off "
                                      f"in {tvals[i]:g}")
        raise DataError(f"treatment column '{col}' switches off again after it switched on in "
                        f"{len(np.unique(ucode[bad]))} unit(s){eg}; an event study / staggered analysis needs "
                        "an absorbing treatment (once launched, always launched)")
    return first


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..L-1 and the sorted labels.

    Integer ids with a compact range (unit numbers, periods) are coded by a
    presence table (two passes, no hashing, no sort); anything else by hash
    factorization and a sort of the labels only.
    """
    values = np.asarray(values)
    if values.dtype.kind in "iu" and values.size:
        lo, hi = int(values.min()), int(values.max())
        if hi - lo <= 4 * values.size + 1024:
            shifted = (values - lo).astype(np.intp, copy=False)
            present = np.bincount(shifted, minlength=hi - lo + 1) > 0
            remap = np.cumsum(present) - 1
            return remap[shifted], np.nonzero(present)[0].astype(values.dtype) + lo
    try:
        codes, labels = pd.factorize(values, sort=True)
    except TypeError:
        return core.codes_of(values)
    return codes.astype(np.intp, copy=False), np.asarray(labels)


def _cohorts(first_unit: np.ndarray, ucode: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Per-row cohort codes and labels ("launched 20", ..., "never treated" last) from per-unit timing."""
    f = np.where(np.isfinite(first_unit) & (first_unit > 0), first_unit, np.inf)
    levels, ucoh = np.unique(f, return_inverse=True)          # per unit, not per row
    labels = [f"launched {int(v) if float(v).is_integer() else v}" if np.isfinite(v) else "never treated"
              for v in levels]
    return ucoh.ravel()[ucode], labels


def _trends(y, w, cohort_codes: np.ndarray, cohort_labels: Sequence[str], tvals, tcodes=None) -> pd.DataFrame:
    """Weighted mean outcome per cohort x period (for the raw-trends plot); one bincount pass.

    ``tcodes``: optional ``(codes, labels)`` of ``tvals`` already computed by the caller.
    """
    tcode, tlab = _codes(tvals) if tcodes is None else tcodes
    T, L = tlab.size, len(cohort_labels)
    cell = cohort_codes * T + tcode
    ww = np.ones_like(y) if w is None else w
    sw = np.bincount(cell, weights=ww, minlength=L * T)
    swy = np.bincount(cell, weights=ww * y, minlength=L * T)
    cnt = np.bincount(cell, minlength=L * T)
    idx = np.nonzero(cnt)[0]
    cohort = pd.Categorical.from_codes(idx // T, categories=list(cohort_labels))
    return pd.DataFrame({"cohort": cohort, "time": tlab[idx % T], "mean": swy[idx] / sw[idx], "n": cnt[idx]})


def _unit_period_counts(ucode, tcode, n_units, T, unit, time, ulab, tlab, *, error: bool) -> np.ndarray:
    """Rows per (unit, period) ``(n_units, T)``; with ``error`` a repeated unit-period is an AbkitError."""
    counts = np.bincount(ucode * T + tcode, minlength=n_units * T).reshape(n_units, T)
    if error and counts.max(initial=0) > 1:
        i, j = np.unravel_index(int(np.argmax(counts)), counts.shape)
        raise DataError(f"{int((counts > 1).sum()):,} ('{unit}', '{time}') pair(s) appear more than once, e.g. "
                        f"{unit}={_val(ulab[i])} in {time}={_val(tlab[j])} ({int(counts[i, j])} rows); this estimator "
                        "needs one row per unit and period: aggregate first (abkit.did.aggregate_panel) or drop "
                        "the duplicates")
    return counts


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class PretrendTest:
    """Joint test that the pre-launch effects are zero.

    ``statistic`` is Hotelling's ``F = W (G - q) / (q (G - 1))`` referred to
    ``F(df1 = q, df2 = G - q)`` with ``G`` clusters, or the Wald ``W``
    referred to chi-square(q) when ``df2`` is infinite; ``event_times`` are
    the tested event times (for a binned TWFE event study the first one
    stands for its end bin).
    """

    statistic: float        # F (Hotelling-corrected) or chi-square
    df1: float
    df2: float
    p_value: float
    wald: float
    method: str
    wild_p_value: float = np.nan
    event_times: tuple = ()
    n_clusters: int = 0
    estimates: np.ndarray | None = field(default=None, repr=False, compare=False)
    vcov: np.ndarray | None = field(default=None, repr=False, compare=False)
    trend_pattern: np.ndarray | None = field(default=None, repr=False, compare=False)

    def detectable_trend(self, power: float = 0.8, alpha: float = 0.05) -> float:
        """The linear pre-launch drift per period that this test detects with probability ``power``.

        A drift of ``delta`` per period (on the analysis scale) shifts the
        tested coefficients by ``delta * s`` (``s = trend_pattern``: ``e + 1``
        for effects measured against ``e = -1``, 1 for period-on-period
        changes), so the Wald noncentrality is ``lambda = delta^2 s' V^{-1} s``
        and the power is ``P(F(q, G - q; lambda) > F_crit)`` (Hotelling's
        noncentral F; chi-square without clusters), with ``V`` the estimated
        covariance. A test that passes says little about drifts smaller
        than this (Roth 2022, "Pretest with caution: event-study estimates
        after testing for parallel trends", AER: Insights). An approximate,
        optimistic guide with few units: the covariance is treated as known
        up to Hotelling's correction, and in simulations with 20 markets the
        test detects the drift reported for 80% power about 65% of the time.
        NaN when the test has no covariance (e.g. the TWFE event study).
        """
        if self.vcov is None or self.trend_pattern is None or not np.isfinite(self.p_value):
            return np.nan
        q, df2 = int(self.df1), self.df2
        if np.isfinite(df2):
            crit = stats.f.isf(alpha, q, df2)

            def pw(lam):
                return stats.ncf.sf(crit, q, df2, lam)
        else:
            crit = stats.chi2.isf(alpha, q)

            def pw(lam):
                return stats.ncx2.sf(crit, q, lam)
        hi = 1.0
        while pw(hi) < power and hi < 1e8:
            hi *= 2.0
        from scipy.optimize import brentq

        lam = brentq(lambda x: pw(x) - power, 1e-12, hi, xtol=1e-10)
        k = core._quad_inv(np.asarray(self.trend_pattern, dtype=np.float64), self.vcov)
        return float(math.sqrt(lam / k)) if k > 0 else np.nan

    def summary(self) -> str:
        if not np.isfinite(self.p_value):
            return f"pre-trend test: not available ({self.method})"
        ref = f"F({self.df1:g}, {self.df2:g})" if np.isfinite(self.df2) else f"chi2({self.df1:g})"
        wp = f", wild bootstrap p = {_fmt_p(self.wild_p_value)}" if np.isfinite(self.wild_p_value) else ""
        ev = ""
        if self.event_times:
            lo, hi = min(self.event_times), max(self.event_times)
            ev = f" of event times {lo:g}..{hi:g}" if lo != hi else f" of event time {lo:g}"
        return (f"pre-trend test{ev}: {ref} = {self.statistic:.3f}, p = {_fmt_p(self.p_value)}{wp} "
                f"({self.method})")

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()


def _cell(column, value) -> str:
    if isinstance(value, (float, np.floating)):
        return _fmt_p(value) if "p_value" in str(column) else _fmt(value)
    return str(value)


def _table_html(df: pd.DataFrame, title: str, notes: Sequence[str] = ()) -> str:
    return frame_table(df, _cell, caption=bold(title), notes=notes)


def _plot_trends(trends: pd.DataFrame, outcome: str, ax=None, launches: Sequence[float] = ()):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.2))
    for cohort, part in trends.groupby("cohort", sort=True, observed=True):
        style = dict(color="black", lw=2.2) if cohort in ("never treated", "control") else dict(lw=1.6)
        ax.plot(part["time"], part["mean"], label=str(cohort), **style)
    for t in launches:
        ax.axvline(t, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("period")
    ax.set_ylabel(f"mean {outcome}")
    ax.set_title(f"Raw trends of {outcome} by launch cohort", loc="left", fontsize=11)
    ax.legend(fontsize=8, frameon=False)
    style_axes(ax, grid=None)
    return ax


@dataclass(frozen=True)
class DiDResult:
    """A single DiD coefficient (2x2, TWFE or placebo) with cluster-robust and wild-bootstrap inference."""

    method: str
    outcome: str
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    p_value: float
    df: float
    alpha: float
    n_obs: int
    n_units: int
    n_periods: int
    n_clusters: int
    vcov_type: str
    small_sample: str
    coefficients: pd.DataFrame
    wild: core.WildTest | None = None
    bacon: BaconResult | None = None
    trends: pd.DataFrame | None = None
    dropped: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def wild_p_value(self) -> float:
        return self.wild.p_value if self.wild else np.nan

    @property
    def wild_ci_lower(self) -> float:
        return self.wild.ci_lower if self.wild else np.nan

    @property
    def wild_ci_upper(self) -> float:
        return self.wild.ci_upper if self.wild else np.nan

    def to_frame(self) -> pd.DataFrame:
        """One tidy row: the effect, its CRV1 inference and the wild bootstrap inference."""
        return pd.DataFrame([{
            "metric": self.outcome, "method": self.method, "effect": self.estimate, "se": self.se,
            "ci_lower": self.ci_lower, "ci_upper": self.ci_upper, "p_value": self.p_value,
            "wild_p_value": self.wild_p_value, "wild_ci_lower": self.wild_ci_lower,
            "wild_ci_upper": self.wild_ci_upper, "df": self.df, "n_obs": self.n_obs,
            "n_units": self.n_units, "n_periods": self.n_periods, "n_clusters": self.n_clusters,
            "vcov": self.vcov_type, "dropped_rows": int(sum(self.dropped.values())),
        }])

    def summary(self) -> str:
        lvl = f"{1 - self.alpha:.0%}"
        s = (f"{self.method} DiD on {self.outcome}: {self.estimate:.6g} (SE {self.se:.5g}, {self.vcov_type}, "
             f"{self.n_clusters} clusters), {lvl} CI [{self.ci_lower:.5g}, {self.ci_upper:.5g}], "
             f"p = {_fmt_p(self.p_value)}")
        if self.wild:
            s += (f"; wild cluster bootstrap ({self.wild.weights}, {self.wild.reps} draws): "
                  f"p = {_fmt_p(self.wild.p_value)}, CI [{self.wild.ci_lower:.5g}, {self.wild.ci_upper:.5g}]")
        return "\n".join([s, *self.notes])

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        notes = [self.small_sample, *self.notes]
        if self.dropped:
            notes.append("dropped rows: " + ", ".join(f"{k}: {v:,}" for k, v in self.dropped.items()))
        return _table_html(self.to_frame().drop(columns=["vcov"]), f"{self.method} DiD: {self.outcome}", notes)

    def plot_trends(self, ax=None):
        """Raw trends: mean outcome per launch cohort (or treated/control group) and period."""
        if self.trends is None:
            raise DataError("this result has no trend data to plot")
        return _plot_trends(self.trends, self.outcome, ax)

    plot = plot_trends


@dataclass(frozen=True)
class BaconResult:
    """Goodman-Bacon (2021) decomposition: the 2x2 comparisons behind a TWFE estimate."""

    comparisons: pd.DataFrame     # treated, control, kind, estimate, weight
    twfe: float

    def to_frame(self) -> pd.DataFrame:
        return self.comparisons.copy()

    def by_kind(self) -> pd.DataFrame:
        """Total weight and weighted-average estimate per kind of comparison."""
        c = self.comparisons.assign(we=self.comparisons.weight * self.comparisons.estimate)
        g = c.groupby("kind", sort=False)[["weight", "we"]].sum()
        return pd.DataFrame({"weight": g["weight"], "estimate": g["we"] / g["weight"]}).reset_index()

    @property
    def forbidden_weight(self) -> float:
        """Weight on comparisons that use already-treated units as controls."""
        k = self.comparisons.kind
        return float(self.comparisons.weight[k.isin(["later vs earlier treated", "later vs always treated"])].sum())

    def _repr_html_(self) -> str:
        return _table_html(self.by_kind(), f"Goodman-Bacon decomposition (TWFE = {self.twfe:.6g})")

    def plot(self, ax=None):
        """Scatter of 2x2 estimates against their weights, by kind of comparison."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 4))
        for kind, part in self.comparisons.groupby("kind"):
            ax.scatter(part["weight"], part["estimate"], label=kind, s=30)
        ax.axhline(self.twfe, color="black", lw=0.8, ls="--", label="TWFE")
        ax.set_xlabel("weight")
        ax.set_ylabel("2x2 DiD estimate")
        ax.legend(fontsize=8, frameon=False)
        ax.set_title("Goodman-Bacon decomposition", loc="left", fontsize=11)
        ax.figure.tight_layout()
        return ax


def _event_plot(table: pd.DataFrame, label: str, title: str, ax=None, alpha: float = 0.05, outcome: str = ""):
    """Estimates with pointwise CIs and the uniform band; reference rows (fixed at 0) as hollow points.

    The band is drawn separately before and after launch (and never through
    the reference period, which has no uncertainty by construction). The
    y axis is the effect in the units of ``outcome`` (a difference of the
    outcome as analysed: of the rate for ``("contacts", "orders")``, in log
    points for a log outcome), never a percentage.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.2))
    x = table[label].to_numpy(dtype=float)
    est = table["estimate"].to_numpy(dtype=float)
    ref = table["reference"].to_numpy(dtype=bool) if "reference" in table else np.zeros(x.size, bool)
    est_rows = ~ref & np.isfinite(table["ci_lower"].to_numpy(dtype=float))
    if "band_lower" in table:
        blo, bhi = table["band_lower"].to_numpy(dtype=float), table["band_upper"].to_numpy(dtype=float)
        segments = (x < 0, x >= 0) if label == "event_time" else (np.ones(x.size, bool),)
        first = True
        for seg in segments:
            m = seg & est_rows & np.isfinite(blo) & np.isfinite(bhi)
            if m.any():
                ax.fill_between(x[m], blo[m], bhi[m], color="#0969da", alpha=0.15, lw=0,
                                label=f"{1 - alpha:.0%} uniform band" if first else None)
                first = False
    lo, hi = table["ci_lower"].to_numpy(dtype=float), table["ci_upper"].to_numpy(dtype=float)
    ax.errorbar(x[est_rows], est[est_rows], yerr=[est[est_rows] - lo[est_rows], hi[est_rows] - est[est_rows]],
                fmt="o", color="#0969da", capsize=3, ms=5, label=f"{1 - alpha:.0%} pointwise CI")
    if ref.any():
        ax.plot(x[ref], est[ref], "o", ms=6, mfc="white", color="#0969da", label="reference period (0 by construction)")
    ax.axhline(0, color="black", lw=0.8)
    if label == "event_time":
        from matplotlib.ticker import MaxNLocator

        ax.axvline(-0.5, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("periods since launch")
        if np.all(x == np.round(x)):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.set_xlabel({"group": "launch cohort (first treated period)", "time": "period"}.get(label, label))
    ax.set_ylabel(f"change in {outcome} (absolute)" if outcome else "effect", parse_math=False)
    ax.set_title(title, loc="left", fontsize=11, parse_math=False)
    ax.legend(fontsize=8, frameon=False)
    style_axes(ax, grid=None)
    return ax


@dataclass(frozen=True)
class EventStudyResult:
    """Event-time effects (leads and lags of the launch) with pointwise and uniform bands."""

    outcome: str
    method: str
    table: pd.DataFrame          # event_time, estimate, se, ci_lower, ci_upper, band_lower, band_upper, p_value, ...
    pretrend: PretrendTest
    estimate: float              # average of the post-launch event-time effects
    se: float
    ci_lower: float
    ci_upper: float
    p_value: float
    alpha: float
    critical_value: float        # sup-t critical value of the uniform band
    n_obs: int
    n_units: int
    n_clusters: int
    trends: pd.DataFrame | None = None
    dropped: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """One row per event time (the reference period has estimate 0 and no SE)."""
        return self.table.copy()

    def summary(self) -> str:
        return "\n".join([f"event study ({self.method}) on {self.outcome}: average post-launch effect "
                          f"{self.estimate:.5g} (SE {self.se:.4g}), p = {_fmt_p(self.p_value)}",
                          self.pretrend.summary(), *self.notes])

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return _table_html(self.table, f"Event study ({self.method}): {self.outcome}",
                           [self.pretrend.summary(), f"uniform band critical value {self.critical_value:.3f}",
                            *self.notes])

    def plot(self, ax=None):
        """Event-study plot: estimates, pointwise CIs and the uniform (simultaneous) band."""
        return _event_plot(self.table, "event_time",
                           f"{self.method}: effect on {self.outcome} by periods since launch", ax,
                           self.alpha, self.outcome)

    def plot_trends(self, ax=None):
        if self.trends is None:
            raise DataError("this result has no trend data to plot")
        return _plot_trends(self.trends, self.outcome, ax)


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
        return (f"average {self.kind} effect over {what} {self.first:g}..{self.last:g} on {self.outcome}: "
                f"{self.estimate:.5g} (SE {self.se:.4g}), {1 - self.alpha:.0%} CI [{self.ci_lower:.4g}, "
                f"{self.ci_upper:.4g}], p = {_fmt_p(self.p_value)}")

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
    influence: np.ndarray | None = field(default=None, repr=False, compare=False)   # (n, 1 + rows): overall, rows
    source: StaggeredResult | None = field(default=None, repr=False, compare=False)
    min_e: float = -math.inf     # the ``min_e`` asked for (``-inf``: none): the default window of :meth:`pretrend`

    def to_frame(self) -> pd.DataFrame:
        """One row per event time / group / calendar period (empty for ``simple``)."""
        return self.table.copy()

    def summary(self) -> str:
        ref = f"t({self.df:g})" if np.isfinite(self.df) else "normal"
        return (f"{self.kind} aggregation of ATT(g,t) on {self.outcome}: {self.estimate:.5g} (SE {self.se:.4g}), "
                f"{1 - self.alpha:.0%} CI [{self.ci_lower:.4g}, {self.ci_upper:.4g}], p = {_fmt_p(self.p_value)} "
                f"({ref} reference, {self.n_units} units); multiplier bootstrap ({self.boot_weights}) "
                f"p = {_fmt_p(self.boot_p_value)}")

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
        return _event_plot(self.table, _AGG_LABEL[self.kind],
                           f"Effect on {self.outcome} by {by} (Callaway-Sant'Anna, {self.kind} aggregation)", ax,
                           self.alpha, self.outcome)

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
            raise DataError(f"pretrend() tests the pre-launch rows of a 'dynamic' aggregation; this one is "
                            f"'{self.kind}': use result.aggregate('dynamic').pretrend()")
        if self.source is None:
            raise DataError("this aggregation does not carry its ATT(g, t); build it with "
                            "staggered(...).aggregate('dynamic')")
        if leads is None:
            pre = self.table["event_time"][self.table["event_time"] < 0]
            if np.isfinite(self.min_e):
                leads = float(-pre.min()) if len(pre) else 0.0
            else:
                leads = PRETREND_LEADS
        return self.source._pretrend_test(leads, vcov, ".pretrend")

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
            raise DataError(f"no {label} in {first:g}..{last:g}; the aggregation has {label} "
                            f"{', '.join(f'{v:g}' for v in lab)}")
        a = rows / rows.sum()
        est = float(a @ self.table["estimate"].to_numpy(dtype=float))
        psi = self.influence[:, 1:] @ a
        n = psi.size
        se = float(np.sqrt(np.mean(psi ** 2) / n))
        c = _critical(self.alpha, self.df)
        p = float(_two_sided_p(est / se, self.df)) if se > 0 else np.nan
        return WindowAverage(self.kind, self.outcome, float(lab[rows].min()), float(lab[rows].max()),
                             tuple(lab[rows].tolist()), est, se, est - c * se, est + c * se, p, self.alpha, self.df)


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
    cells: core.AttGt
    trends: pd.DataFrame | None = None
    dropped: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    data: _CsData | None = field(default=None, repr=False, compare=False)

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
          (:func:`abkit.stats.did.jackknife_vcov`), which does not share the
          downward bias of the influence-function variance when a comparison
          group has a handful of units; otherwise (or ``vcov="influence"``)
          the influence functions of the aggregation.
        * Reference: Hotelling's ``F = W (G - q) / (q (G - 1))`` on
          ``F(q, G - q)``, ``G`` the number of units (the clusters), which
          accounts for estimating ``V`` from ``G`` clusters. ``q >= G``
          is refused with an error: ``V`` would be singular.

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
        if vcov not in ("auto", "jackknife", "influence"):
            raise DataError(f"vcov must be 'auto', 'jackknife' or 'influence'; got {vcov!r}")
        if isinstance(leads, bool) or not isinstance(leads, (int, float, np.integer, np.floating)) or leads < 0:
            hint = " (the covariance is chosen with vcov=..., a keyword argument)" if isinstance(leads, str) else ""
            raise DataError(f"leads must be a non-negative number of periods before launch; got {leads!r}{hint}")
        cells = self.cells
        agg = core.aggregate_att_gt(cells, "dynamic", min_e=-float(leads), max_e=0.0)
        pre = (agg.labels < 0) & ~agg.is_reference & np.isfinite(agg.se) & (agg.se > 0)
        G = self.n_units
        if not pre.any():
            return PretrendTest(np.nan, 0.0, np.nan, np.nan, np.nan,
                                f"no pre-launch event time within {leads:g} periods before launch", n_clusters=G)
        ev = agg.labels[pre]
        q = int(pre.sum())
        if q >= G:
            n = G - 1 + (1 if self.base_period == "universal" else 0)
            how = (f".pretrend(leads={n}) (on the staggered result: pretrend_test(leads={n}))"
                   if call == ".pretrend" else f"{call}(leads={n})")
            raise DataError(f"the pre-trend test of {q} pre-launch event times ({ev.min():g}..{ev.max():g}) needs "
                            f"fewer event times than units, and there are {G} units: their {q} x {q} covariance "
                            f"would be singular. Test a shorter window, at most {G - 1} event times: {how} "
                            f"(fewer give more power; the summary reports leads={PRETREND_LEADS})")
        b = agg.att[pre]
        V_inf = agg.inf[:, pre].T @ agg.inf[:, pre] / cells.n_units ** 2
        how = "influence functions"
        V = V_inf
        if vcov == "jackknife" or (vcov == "auto" and G < WILD_AUTO_CLUSTERS):
            d = self.data
            try:
                if d is None:
                    raise DataError("the result does not carry its panel")
                loo = core.dynamic_leave_one_out(d.Y, d.periods, d.G, ev, d.X, control_group=d.control_group,
                                                 method=d.method, base_period=d.base_period,
                                                 anticipation=d.anticipation)
                V = core.jackknife_vcov(loo)
                how = "the cluster jackknife (each unit left out in turn)"
            except (DataError, np.linalg.LinAlgError) as exc:
                if vcov == "jackknife":
                    raise DataError(f"the jackknife pre-trend test is not available: {exc}") from None
                how = f"influence functions (no jackknife: {exc})"
        W, F, df2, p = core.wald_test(b, V, G)
        # a linear drift delta per period moves theta(e) by delta (e - e_ref) (universal base: against the
        # reference e_ref = -1 - anticipation) or by delta (varying base: period-on-period changes)
        pattern = (ev + 1.0 + self.data.anticipation if self.data is not None else ev + 1.0) \
            if self.base_period == "universal" else np.ones(q)
        return PretrendTest(statistic=F, df1=float(q), df2=df2, p_value=p, wald=W,
                            method=f"Wald test of the {q} pre-launch event-time effects, covariance from {how}, "
                                   f"Hotelling F(q, G-q) with G={G} units",
                            event_times=tuple(float(e) for e in ev), n_clusters=G, estimates=b, vcov=V,
                            trend_pattern=pattern)

    def _pretrend_text(self) -> str:
        try:
            return self.pretrend.summary()
        except DataError as exc:
            return f"pre-trend test: not run ({exc})"

    def aggregate(self, kind: str = "simple", *, min_e: float = -np.inf, max_e: float = np.inf,
                  balance_e: int | None = None, alpha: float | None = None, reps: int = 999,
                  weights: str = "rademacher", seed=0, small_sample: bool | None = None,
                  band_draws: int = 100_000) -> AggregateResult:
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
        agg = core.aggregate_att_gt(self.cells, kind, min_e=min_e, max_e=max_e, balance_e=balance_e)
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
            tb = core.multiplier_bootstrap(inf, np.concatenate([[se], agg.se[cols]]), reps=reps, weights=weights,
                                           seed=seed)
            boot_p = float(np.mean(np.abs(tb[:, 0]) >= abs(est) / se))
            if cols.size and not small_sample:
                crit = core.sup_t_critical(tb[:, 1:], alpha)
        if small_sample and est_rows.any():
            Pm = agg.inf[:, est_rows]
            V = Pm.T @ Pm
            d = np.sqrt(np.diag(V))
            crit = core.sup_t_critical_t(V / np.outer(d, d), df, band_draws, alpha, seed)
        label = _AGG_LABEL[kind]
        with np.errstate(invalid="ignore", divide="ignore"):
            table = pd.DataFrame({
                label: agg.labels, "estimate": agg.att, "se": se_rows,
                "ci_lower": agg.att - c * se_rows, "ci_upper": agg.att + c * se_rows,
                "band_lower": agg.att - crit * se_rows, "band_upper": agg.att + crit * se_rows,
                "p_value": _two_sided_p(agg.att / se_rows, df),
            })
        if kind == "dynamic":
            table["reference"] = ref
        if k and np.all(agg.labels == np.round(agg.labels)):
            table[label] = table[label].astype(np.int64)
        if small_sample:
            inference = (f"t({G - 1}) reference for CIs and p-values and a multivariate-t sup-t band "
                         f"({G} units, the clusters)")
        else:
            inference = f"normal reference; multiplier bootstrap ({weights}) sup-t band"
        return AggregateResult(kind=kind, outcome=self.outcome, estimate=est, se=se, ci_lower=est - c * se,
                               ci_upper=est + c * se, p_value=p, alpha=alpha, table=table,
                               critical_value=crit, boot_p_value=boot_p, boot_weights=weights, reps=reps,
                               n_units=self.n_units, df=df, inference=inference,
                               influence=np.column_stack([agg.overall_inf, agg.inf]), source=self,
                               min_e=float(min_e))

    def to_frame(self) -> pd.DataFrame:
        """The ATT(g, t) table."""
        return self.att_gt.copy()

    def summary(self) -> str:
        s = self.aggregate("simple")
        return "\n".join([f"Callaway-Sant'Anna ({self.method}, {self.control_group} controls, "
                          f"{self.base_period} base period) on {self.outcome}: {len(self.att_gt)} ATT(g,t) "
                          f"cells, {self.n_units} units", s.summary(), self._pretrend_text(), *self.notes])

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return _table_html(self.att_gt, f"ATT(g,t): {self.outcome} ({self.method}, {self.control_group})",
                           [self._pretrend_text(), *self.notes])

    def plot(self, ax=None, **aggregate_kwargs):
        """Event-study plot of the dynamic aggregation with its uniform band."""
        return self.aggregate("dynamic", **aggregate_kwargs).plot(ax)

    def plot_trends(self, ax=None):
        if self.trends is None:
            raise DataError("this result has no trend data to plot")
        return _plot_trends(self.trends, self.outcome, ax)


# --------------------------------------------------------------------------
# Panels from buyer- or order-level rows
# --------------------------------------------------------------------------
def aggregate_panel(data, unit: str, time: str, sums: Sequence[str], first: Sequence[str] = ()) -> pd.DataFrame:
    """Per unit x period sums of ``sums`` (plus ``n_rows``) from buyer- or order-level rows.

    ``data``: what :func:`abkit.analyze` accepts - a pandas DataFrame or a
    pyarrow Table (aggregated in memory), or a parquet/CSV path, a DuckDB
    relation, a Spark DataFrame or a Polars lazy frame (aggregated by that
    engine through :func:`abkit.engines.to_lazy`: the rows never leave it,
    only one row per unit-period comes back). The aggregation is one
    narwhals ``group_by(unit, time)`` query, the same expressions for every
    engine: the sums (as float64), the row count, and per column of
    ``first`` its smallest and largest value and its missing count.

    ``first``: columns constant within a unit-period (e.g. the launch
    period), carried over (an error if they vary, or are missing in only
    some of the rows). Missing or infinite values in ``sums`` are an error
    (fill them or drop the rows first); rows with a missing unit or period
    are dropped and counted in ``attrs["dropped_rows"]``. The result, sorted
    by unit and period, feeds every estimator here, e.g.
    ``outcome=("contacts", "orders")`` for the contact rate per order.
    """
    import narwhals as nw
    import pyarrow as pa

    from . import engines

    sums, first = _as_list(sums), _as_list(first)
    if not sums:
        raise DataError("aggregate_panel needs at least one column in sums=[...], e.g. ['contacts', 'orders']")
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, (pd.DataFrame, pa.Table)):
        frame, lazy, what = nw.from_native(data, eager_only=True), False, "data"
    elif engines.is_lazy(data):
        frame, lazy = engines.to_lazy(data), True
        what = f"'{data}'" if isinstance(data, (str, os.PathLike)) else "data"
    else:
        raise DataError(f"cannot aggregate data of type {type(data).__name__}; pass a pandas DataFrame, a pyarrow "
                        "Table, a path to a parquet/CSV file, or a DuckDB relation / Spark DataFrame")
    schema = frame.collect_schema()
    names = list(schema.names())
    for c in dict.fromkeys([unit, time, *sums, *first]):
        if c not in names:
            raise missing_column(c, names, what=what)
    for c in sums:
        dt = schema[c]
        if not (dt.is_numeric() or dt == nw.Boolean):
            raise DataError(f"column '{c}' is not numeric (type {dt}); convert it to numbers before aggregating")
    bad = [f"__abkit_bad_{i}" for i in range(len(sums))]
    nul = [f"__abkit_null_{j}" for j in range(len(first))]
    value = {c: nw.col(c).cast(nw.Float64) for c in sums}
    frame = frame.with_columns(
        *[(~value[c].is_finite().fill_null(False)).cast(nw.Int64).alias(b) for c, b in zip(sums, bad)],
        *[nw.col(c).is_null().cast(nw.Int64).alias(m) for c, m in zip(first, nul)],
        *[value[c].alias(c) for c in sums],
    )
    query = frame.group_by(unit, time, drop_null_keys=False).agg(
        *[nw.col(c).sum() for c in sums], nw.len().alias("__abkit_rows"),
        *[nw.col(b).sum() for b in bad],
        *[e for j, c in enumerate(first) for e in (nw.col(c).min().alias(f"__abkit_min_{j}"),
                                                   nw.col(c).max().alias(f"__abkit_max_{j}"),
                                                   nw.col(nul[j]).sum())],
    )
    out = (engines._collect(query, data) if lazy else query).to_pandas()   # one row per unit-period
    keymiss = (out[unit].isna() | out[time].isna()).to_numpy()
    n_rows = pd.to_numeric(out["__abkit_rows"]).to_numpy(dtype=np.int64)
    dropped = int(n_rows[keymiss].sum())
    out = out.loc[~keymiss]
    n_rows = n_rows[~keymiss]
    for c, b in zip(sums, bad):
        nbad = int(pd.to_numeric(out[b]).sum())
        if nbad:
            raise DataError(f"column '{c}' has {nbad:,} missing or infinite values; fill them (e.g. 0 "
                            "contacts) or drop those rows before aggregating")
    result = pd.DataFrame({unit: out[unit].to_numpy(), time: out[time].to_numpy()})
    for c in sums:
        result[c] = pd.to_numeric(out[c]).to_numpy(dtype=np.float64)
    result["n_rows"] = n_rows
    for j, c in enumerate(first):
        lo, hi = out[f"__abkit_min_{j}"], out[f"__abkit_max_{j}"]
        nulls = pd.to_numeric(out[nul[j]]).to_numpy(dtype=np.int64)
        some_missing = (nulls > 0) & (nulls < n_rows)
        differ = (lo.notna() & hi.notna() & (lo != hi)).to_numpy(dtype=bool)
        varying = some_missing | differ
        if varying.any():
            i = int(np.argmax(varying))
            raise DataError(f"column '{c}' varies within {int(varying.sum())} unit-period(s), e.g. {unit}="
                            f"{_val(out[unit].iloc[i])} in {time}={_val(out[time].iloc[i])}; it must be constant "
                            "(or missing in every row) within each unit and period to be carried over")
        v = lo.astype(object).where(lo.notna(), np.nan)
        if schema[c].is_numeric():
            v = pd.to_numeric(v).astype(np.float64)
        result[c] = v.to_numpy()
    result = result.sort_values([unit, time], ignore_index=True)
    result.attrs["dropped_rows"] = dropped
    return result


# --------------------------------------------------------------------------
# Shared regression path
# --------------------------------------------------------------------------
def _regress(y, X, names, fe, cluster, alpha, wild, wild_reps, wild_weights, seed, target=0):
    fit = core.fit_linear(y, X, fe, cluster, names)
    se = fit.se
    rows = []
    for i, nm in enumerate(names):
        p, lo, hi = core.t_test(fit.coef[i], se[i], fit.df, alpha)
        rows.append({"term": nm, "estimate": fit.coef[i], "se": se[i], "ci_lower": lo, "ci_upper": hi,
                     "p_value": p})
    coefs = pd.DataFrame(rows)
    if wild is None:
        wild = cluster is not None and fit.n_clusters < WILD_AUTO_CLUSTERS
    wt = None
    if wild:
        if cluster is None:
            raise DataError("wild=True needs clusters (unit= or cluster=)")
        wt = core.wild_cluster_test(fit, fe, target, reps=wild_reps, weights=wild_weights, seed=seed, alpha=alpha)
    return fit, coefs, wt


def _small_sample_text(fit) -> str:
    if fit.vcov_type == "CRV1":
        return (f"CRV1: G/(G-1)*(N-1)/(N-K) with G={fit.n_clusters}, N={fit.n_obs}, K={fit.k} "
                f"(fixest's K for fixed effects nested in clusters); t({fit.n_clusters - 1}) reference")
    return f"HC1: N/(N-K) with N={fit.n_obs}, K={fit.k}; t({fit.n_obs - fit.k}) reference"


def _cluster_codes(keys: dict, cluster: str | None, unit: str | None, unit_codes=None):
    """Cluster codes (``cluster``, else ``unit``; None without either); reuses ``unit_codes`` when given."""
    col = cluster or unit
    if col is None:
        return None
    if col == unit and unit_codes is not None:
        return unit_codes
    codes, _ = _codes(keys[col])
    return codes


# --------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------
def two_by_two(data, outcome, treated: str, post: str, unit: str | None = None,
               covariates: Sequence[str] | None = None, cluster: str | None = None, *,
               weights: str | None = None, alpha: float = 0.05, wild: bool | None = None,
               wild_reps: int = 9999, wild_weights: str = "rademacher", seed=0) -> DiDResult:
    """Classic DiD regression ``y = a + b1 treated + b2 post + beta treated*post + X'g + e``.

    ``treated`` and ``post`` are 0/1 columns; ``beta`` is the estimate. With
    ``outcome=(num, den)`` the ratio is analysed with weights ``den``.
    Standard errors are cluster-robust (CRV1: ``G/(G-1) (N-1)/(N-K)``, ``K``
    counting the intercept; t(G-1)), clustered by ``cluster``, else by
    ``unit``; with neither, heteroskedasticity-robust HC1 with t(N-K).
    Equal to statsmodels ``OLS(...).fit(cov_type="cluster")`` and Stata
    ``regress ..., vce(cluster)``. With fewer than 50 clusters (or
    ``wild=True``) the wild cluster restricted bootstrap p-value and CI are
    added (``wild_weights`` 'rademacher' or 'webb', ``wild_reps`` draws, ``seed``).
    """
    covariates = _as_list(covariates)
    fr = _prepare(data, outcome, [treated, post, *covariates], [unit, cluster], weights)
    Tr, Po = fr.cols[treated], fr.cols[post]
    for c, v in ((treated, Tr), (post, Po)):
        if not np.all((v == 0) | (v == 1)):
            raise DataError(f"column '{c}' must hold only 0 and 1 (found e.g. {v[(v != 0) & (v != 1)][0]!r})")
    n = fr.y.size
    X = np.column_stack([Tr * Po, np.ones(n), Tr, Po, *[fr.cols[c] for c in covariates]])
    names = [f"{treated}:{post}", "intercept", treated, post, *covariates]
    fe = core.FixedEffects([], n, fr.w)
    cl = _cluster_codes(fr.keys, cluster, unit)
    fit, coefs, wt = _regress(fr.y, X, names, fe, cl, alpha, wild, wild_reps, wild_weights, seed)
    row = coefs.iloc[0]
    trends = _trends(fr.y, fr.w, Tr.astype(np.intp), ["control", "treated"], Po)
    n_units = len(np.unique(fr.keys[unit])) if unit else n
    return DiDResult(method="2x2", outcome=fr.outcome_name, estimate=float(row.estimate), se=float(row.se),
                     ci_lower=float(row.ci_lower), ci_upper=float(row.ci_upper), p_value=float(row.p_value),
                     df=fit.df, alpha=alpha, n_obs=n, n_units=n_units, n_periods=2, n_clusters=fit.n_clusters,
                     vcov_type=fit.vcov_type, small_sample=_small_sample_text(fit), coefficients=coefs,
                     wild=wt, trends=trends, dropped=fr.dropped)


def _bacon_from_arrays(y, ucode, tcode, tlabels, first_unit) -> BaconResult | None:
    """The decomposition if the panel has exactly one row per unit and period, else None."""
    n_units, T = int(ucode.max()) + 1, int(tcode.max()) + 1
    if y.size != n_units * T:
        return None
    counts = np.bincount(ucode * T + tcode, minlength=n_units * T)
    if counts.min() != 1:               # same size, but a repeated unit-period hides a missing one
        return None
    Y = np.empty((n_units, T))
    Y[ucode, tcode] = y
    b = core.bacon_decomposition(Y, tlabels.astype(np.float64), first_unit)
    comp = pd.DataFrame({"treated": b.treated, "control": b.control, "kind": b.kind,
                         "estimate": b.estimate, "weight": b.weight})
    return BaconResult(comparisons=comp, twfe=b.twfe)


def twfe(data, outcome, treatment: str, unit: str, time: str, cluster: str | None = None, *,
         covariates: Sequence[str] | None = None, weights: str | None = None, alpha: float = 0.05,
         wild: bool | None = None, wild_reps: int = 9999, wild_weights: str = "rademacher",
         seed=0) -> DiDResult:
    """Two-way fixed effects ``y_it = a_i + l_t + beta D_it + X_it'g + e_it``; returns ``beta``.

    The unit and period fixed effects are absorbed (exact projection, any
    unbalanced panel; see :class:`abkit.stats.did.FixedEffects`), never built
    as dummies. SEs are CRV1 clustered by ``cluster`` (default ``unit``) with
    R fixest's small-sample correction; matches ``fixest::feols(y ~ D | unit + time,
    cluster = ~unit)``. ``weights`` (or ``outcome=(num, den)``) gives WLS.

    On staggered launches the TWFE coefficient is a weighted average of all
    2x2 comparisons, including "later vs earlier treated" ones that use
    already-treated units as controls; with effects that change over time
    those comparisons are biased and can even flip the sign (Goodman-Bacon
    2021; de Chaisemartin & D'Haultfoeuille 2020). On a balanced panel
    without covariates or weights the decomposition is computed
    (``result.bacon``) and a :class:`DiDWarning` is issued when those
    comparisons carry at least 5% of the weight and their average differs
    from the clean comparisons by more than one standard error: use
    :func:`staggered` instead.
    """
    covariates = _as_list(covariates)
    fr = _prepare(data, outcome, [treatment, *covariates], [unit, time, cluster], weights)
    ucode, ulab = _codes(fr.keys[unit])
    tcode, tlab = _codes(fr.keys[time])
    n = fr.y.size
    D = fr.cols[treatment]
    fe = core.FixedEffects([ucode, tcode], n, fr.w)
    cl = _cluster_codes(fr.keys, cluster, unit, ucode)
    X = np.column_stack([D, *[fr.cols[c] for c in covariates]])
    names = [treatment, *covariates]
    fit, coefs, wt = _regress(fr.y, X, names, fe, cl, alpha, wild, wild_reps, wild_weights, seed)
    row = coefs.iloc[0]
    notes: list[str] = []
    bacon_res = None
    trends = None
    binary = np.all((D == 0) | (D == 1))
    per_cell = np.bincount(ucode * tlab.size + tcode, minlength=ulab.size * tlab.size)
    if per_cell.max(initial=0) > 1:
        notes.append(f"{int((per_cell > 1).sum()):,} ('{unit}', '{time}') pairs have several rows: each row is one "
                     "observation of the regression (e.g. orders within a market-week). For a unit x period "
                     "panel, aggregate first with abkit.did.aggregate_panel.")
    try:
        tnum = tlab.astype(np.float64)
    except (TypeError, ValueError):
        tnum = None
        notes.append(f"column '{time}' is not numeric, so launch timing is not analysed (no raw trends, no "
                     "Goodman-Bacon check); use period numbers for these diagnostics.")
    if binary and tnum is not None:
        try:
            first = _first_from_treatment(ucode, tnum[tcode], D, ulab.size, treatment)
        except DataError:
            first = None
        if first is not None:
            trends = _trends(fr.y, fr.w, *_cohorts(first, ucode), tnum[tcode], (tcode, tnum))
            launches = np.unique(first[np.isfinite(first) & (first > tnum[0])])
            if launches.size >= 2:
                if not covariates and fr.w is None:
                    bacon_res = _bacon_from_arrays(fr.y, ucode, tcode, tnum, first)
                if bacon_res is not None:
                    kinds = bacon_res.by_kind().set_index("kind")
                    bad = [k for k in ("later vs earlier treated", "later vs always treated") if k in kinds.index]
                    good = [k for k in kinds.index if k not in bad]
                    fw = bacon_res.forbidden_weight
                    if bad and good:
                        def avg(ks):
                            return float((kinds.loc[ks, "weight"] * kinds.loc[ks, "estimate"]).sum()
                                         / kinds.loc[ks, "weight"].sum())
                        gap = avg(bad) - avg(good)
                        if fw >= 0.05 and abs(gap) > float(row.se):
                            msg = (f"TWFE on staggered launches ({launches.size} launch cohorts): {fw:.0%} of the "
                                   f"weight is on comparisons that use already-launched units as controls, and "
                                   f"their average 2x2 estimate differs from the clean comparisons by {gap:.4g} "
                                   f"(> 1 SE = {float(row.se):.4g}), a sign of effects that vary over time or "
                                   "cohort. The TWFE coefficient is biased; use abkit.did.staggered (Callaway & "
                                   "Sant'Anna). See result.bacon for the Goodman-Bacon decomposition.")
                            warnings.warn(msg, DiDWarning, stacklevel=2)
                            notes.append(msg)
                else:
                    msg = (f"TWFE on staggered launches ({launches.size} launch cohorts): with effects that vary "
                           "over time the coefficient can be biased (Goodman-Bacon 2021); compare with "
                           "abkit.did.staggered.")
                    notes.append(msg)
    return DiDResult(method="TWFE", outcome=fr.outcome_name, estimate=float(row.estimate), se=float(row.se),
                     ci_lower=float(row.ci_lower), ci_upper=float(row.ci_upper), p_value=float(row.p_value),
                     df=fit.df, alpha=alpha, n_obs=n, n_units=ulab.size, n_periods=tlab.size,
                     n_clusters=fit.n_clusters, vcov_type=fit.vcov_type, small_sample=_small_sample_text(fit),
                     coefficients=coefs, wild=wt, bacon=bacon_res, trends=trends, dropped=fr.dropped,
                     notes=tuple(notes))


def bacon(data, outcome, unit: str, time: str, *, treatment: str | None = None,
          first_treated: str | None = None) -> BaconResult:
    """Goodman-Bacon (2021) decomposition of the TWFE coefficient (balanced panel, no covariates).

    Give either a 0/1 absorbing ``treatment`` column or ``first_treated``
    (first treated period per unit, 0 or missing if never treated).
    """
    if (treatment is None) == (first_treated is None):
        raise DataError("pass exactly one of treatment= (a 0/1 column) or first_treated= (launch period)")
    fr = _prepare(data, outcome, [treatment] if treatment else [], [unit, time], None, extra=[first_treated])
    ucode, ulab, tcode, tlab, tnum, first = _unit_first(fr, unit, time, first_treated, treatment)
    _unit_period_counts(ucode, tcode, ulab.size, tlab.size, unit, time, ulab, tlab, error=True)
    res = _bacon_from_arrays(fr.y, ucode, tcode, tnum, first)
    if res is None:
        raise DataError("the Goodman-Bacon decomposition needs a balanced panel (every unit in every period); "
                        f"the data has {fr.y.size:,} rows for {ulab.size} units x {tlab.size} periods")
    return res


# --------------------------------------------------------------------------
# Event study
# --------------------------------------------------------------------------
def _unit_first(fr: _Frame, unit, time, first_treated, treatment):
    ucode, ulab = _codes(fr.keys[unit])
    tcode, tlab = _codes(fr.keys[time])
    tnum = _time_numeric(tlab, time)
    if (treatment is None) == (first_treated is None):
        raise DataError("pass exactly one of first_treated= (launch period per unit, 0 or missing if never "
                        "launched) or treatment= (a 0/1 absorbing treatment column)")
    if treatment:
        first = _first_from_treatment(ucode, tnum[tcode], fr.cols[treatment], ulab.size, treatment, ulab, unit)
    else:
        f = _first_treated_per_unit(ucode, ulab.size, fr.extra[first_treated], first_treated, ulab, unit)
        first = np.where(f > 0, f, np.inf)
    return ucode, ulab, tcode, tlab, tnum, first


def event_study(data, outcome, unit: str, time: str, first_treated: str | None = None, *,
                treatment: str | None = None, leads: int = 4, lags: int = 8, bin_endpoints: bool = True,
                covariates: Sequence[str] | None = None, cluster: str | None = None,
                weights: str | None = None, alpha: float = 0.05, wild: bool | None = None,
                wild_reps: int = 9999, wild_weights: str = "rademacher", band_draws: int = 100_000,
                seed=0) -> EventStudyResult:
    """Dynamic TWFE event study: effects at event times ``-leads..lags`` relative to launch.

    ``y_it = a_i + l_t + sum_{e != -1} beta_e 1{t - g_i = e} + X'g + e_it``,
    reference period ``e = -1``; never-launched units have no event dummies.
    With ``bin_endpoints`` (default) event times beyond the window are pooled
    into the end bins ``e <= -leads`` and ``e >= lags`` (Schmidheiny &
    Siegloch 2023), otherwise they are dropped from the sample.
    Event time is measured in the units of ``time`` (``t - first_treated``).

    * Pointwise CIs: CRV1 (clustered by ``cluster``, default ``unit``), t(G-1).
    * Uniform band: sup-t (Montiel Olea & Plagborg-Moller 2019): the critical
      value is the ``1 - alpha`` quantile of ``max_e |T_e|`` with ``T``
      multivariate t(G-1) with the CRV1 correlation of the estimates
      (``band_draws`` draws, ``seed``).
    * Pre-trend test: joint Wald test of all leads ``beta_e = 0, e <= -2``,
      Hotelling-corrected ``F(q, G-q)``; with few clusters also the wild
      cluster bootstrap p-value of the same Wald statistic.
    * ``estimate``: the average of the post-launch ``beta_e`` (``e = 0..lags``).

    With staggered launches and effects that differ across cohorts the
    coefficients mix cohorts (Sun & Abraham 2021); :func:`staggered` then
    gives clean event-time effects (``aggregate("dynamic")``).
    """
    covariates = _as_list(covariates)
    if leads < 2 or lags < 0:
        raise DataError(f"leads must be >= 2 (e = -1 is the reference) and lags >= 0; got leads={leads}, lags={lags}")
    fr = _prepare(data, outcome, [*( [treatment] if treatment else []), *covariates],
                  [unit, time, cluster], weights, extra=[first_treated])
    ucode, ulab, tcode, tlab, tnum, first = _unit_first(fr, unit, time, first_treated, treatment)
    t = tnum[tcode]
    g = first[ucode]
    ever = np.isfinite(g)
    e = np.where(ever, t - g, 0.0)
    keep = np.ones(t.size, bool)
    if not bin_endpoints:
        keep = ~ever | ((e >= -leads) & (e <= lags))
    ec = np.clip(e, -leads, lags)
    etimes = [k for k in range(-leads, lags + 1) if k != -1]
    X = np.column_stack([(ever & (ec == k)).astype(np.float64) for k in etimes])
    present = X[keep].sum(axis=0) > 0
    etimes = [k for k, p in zip(etimes, present) if p]
    X = X[:, present]
    if not any(k >= 0 for k in etimes):
        raise DataError("no launched unit is observed at or after its launch; nothing to estimate")
    y = fr.y[keep]
    w = fr.w[keep] if fr.w is not None else None
    X = X[keep]
    if covariates:
        X = np.column_stack([X, *[fr.cols[c][keep] for c in covariates]])
    uc, _ = _codes(ucode[keep])
    tc, _ = _codes(tcode[keep])
    fe = core.FixedEffects([uc, tc], y.size, w)
    keys = {k: v[keep] for k, v in fr.keys.items()}
    cl = _cluster_codes(keys, cluster, unit, uc)
    names = [f"e{k:+d}" for k in etimes] + covariates
    fit = core.fit_linear(y, X, fe, cl, names)
    ne = len(etimes)
    b, V, se = fit.coef[:ne], fit.vcov[:ne, :ne], fit.se[:ne]
    G = fit.n_clusters
    df = fit.df
    # uniform band: sup-t over all displayed event times
    crit = core.sup_t_critical_t(V / np.outer(se, se), df, band_draws, alpha, seed)
    q = stats.t.isf(alpha / 2, df)
    pvals = 2 * stats.t.sf(np.abs(b) / se, df)
    if wild is None:
        wild = cl is not None and G < WILD_AUTO_CLUSTERS
    pre_idx = [i for i, k in enumerate(etimes) if k <= -2]
    post_idx = [i for i, k in enumerate(etimes) if k >= 0]
    wild_p = np.full(ne, np.nan)
    wild_lo = np.full(ne, np.nan)
    wild_hi = np.full(ne, np.nan)
    pre_wild = np.nan
    if wild:
        for i in range(ne):
            wt = core.wild_cluster_test(fit, fe, i, reps=wild_reps, weights=wild_weights, seed=seed, alpha=alpha)
            wild_p[i], wild_lo[i], wild_hi[i] = wt.p_value, wt.ci_lower, wt.ci_upper
        if pre_idx:
            pre_wild = core.wild_cluster_test(fit, fe, pre_idx, reps=wild_reps, weights=wild_weights,
                                              seed=seed, alpha=alpha, ci=False).p_value
    if pre_idx:
        W, F, df2, pw = core.wald_test(b[pre_idx], V[np.ix_(pre_idx, pre_idx)], G)
        pretrend = PretrendTest(statistic=F, df1=float(len(pre_idx)), df2=df2, p_value=pw, wald=W,
                                method="CRV1 Wald, Hotelling T2 F(q, G-q)" if G else "HC1 Wald, chi-square",
                                wild_p_value=pre_wild, event_times=tuple(float(etimes[i]) for i in pre_idx),
                                n_clusters=G)
    else:
        pretrend = PretrendTest(np.nan, 0.0, np.nan, np.nan, np.nan, "no pre-launch event times")
    # average post effect
    a = np.zeros(ne)
    a[post_idx] = 1.0 / len(post_idx)
    avg = float(a @ b)
    avg_se = float(math.sqrt(a @ V @ a))
    avg_p, avg_lo, avg_hi = core.t_test(avg, avg_se, df, alpha)
    # per-event-time cell counts
    counts = {k: int(((X[:, i] > 0)).sum()) for i, k in enumerate(etimes)}
    rows = pd.DataFrame({
        "event_time": etimes, "estimate": b, "se": se, "ci_lower": b - q * se, "ci_upper": b + q * se,
        "band_lower": b - crit * se, "band_upper": b + crit * se, "p_value": pvals,
        "wild_p_value": wild_p, "wild_ci_lower": wild_lo, "wild_ci_upper": wild_hi,
        "n_obs": [counts[k] for k in etimes],
    })
    rows["reference"] = False
    ref = pd.DataFrame([{"event_time": -1, "estimate": 0.0, "se": np.nan, "ci_lower": np.nan, "ci_upper": np.nan,
                         "band_lower": np.nan, "band_upper": np.nan, "p_value": np.nan, "wild_p_value": np.nan,
                         "wild_ci_lower": np.nan, "wild_ci_upper": np.nan, "n_obs": int((ever & (ec == -1)).sum()),
                         "reference": True}])
    table = pd.concat([rows, ref], ignore_index=True).sort_values("event_time", ignore_index=True)
    if bin_endpoints:
        table["binned"] = (table.event_time == -leads) | (table.event_time == lags)
    trends = _trends(fr.y, fr.w, *_cohorts(first, ucode), t)
    notes = []
    launches = np.unique(first[np.isfinite(first)])
    if launches.size >= 2:
        notes.append(f"{launches.size} launch cohorts: with effects that differ by cohort the TWFE event-time "
                     "coefficients mix cohorts (Sun & Abraham 2021); compare with staggered(...).aggregate('dynamic').")
    dropped = dict(fr.dropped)
    if not keep.all():
        dropped["outside the event window"] = int((~keep).sum())
    return EventStudyResult(outcome=fr.outcome_name, method="TWFE event study", table=table, pretrend=pretrend,
                            estimate=avg, se=avg_se, ci_lower=avg_lo, ci_upper=avg_hi, p_value=avg_p, alpha=alpha,
                            critical_value=crit, n_obs=int(y.size), n_units=ulab.size, n_clusters=G,
                            trends=trends, dropped=dropped, notes=tuple(notes))


# --------------------------------------------------------------------------
# Staggered adoption: Callaway & Sant'Anna
# --------------------------------------------------------------------------
def staggered(data, outcome, unit: str, time: str, first_treated: str,
              control_group: str = "never_treated", method: str = "dr",
              covariates: Sequence[str] | None = None, *, base_period: str = "varying",
              anticipation: int = 0, alpha: float = 0.05) -> StaggeredResult:
    """Callaway & Sant'Anna (2021) group-time average treatment effects ATT(g, t).

    ``first_treated``: the first treated period of each unit (constant within
    unit); 0 or missing = never treated. Units first treated after the last
    period count as never treated; units treated in or before the first
    period (no pre-period) are dropped and counted, as are units not observed
    in every period (the estimator needs a balanced panel), as in R ``did``.

    One row per unit and period: a repeated (unit, period) pair, a
    ``first_treated`` that varies within a unit, dates instead of period
    numbers, or a non-numeric outcome are errors naming the column and an
    offending value.

    ``control_group``: ``"never_treated"`` or ``"not_yet_treated"`` (without
    never-treated units, as R ``did``: the last cohort is only a comparison
    group and the periods from its launch on are dropped, see ``notes``);
    ``method``: ``"dr"`` (doubly robust, Sant'Anna & Zhao 2020), ``"ipw"`` or
    ``"reg"``; ``covariates``: pre-treatment covariates (the base-period
    values enter each cell's propensity score and outcome regression);
    ``base_period``: ``"varying"`` (pre-period cells compare consecutive
    periods) or ``"universal"`` (all cells against ``g - 1``).

    Reproduces R ``did::att_gt`` / ``aggte`` (analytic SEs) to machine
    precision on mpdta (and csdid on scenarios R's reference files lack).
    Use ``result.aggregate("simple" | "dynamic" | "group" | "calendar")``;
    with fewer than :data:`WILD_AUTO_CLUSTERS` units its CIs use ``t(G - 1)``
    (see :meth:`StaggeredResult.aggregate`). The pre-trend test,
    ``result.pretrend_test(leads=...)`` or
    ``result.aggregate("dynamic").pretrend(leads=...)`` (default 4 leads, as
    ``result.pretrend`` and the summary), is the
    joint test of the pre-launch event-time effects within ``leads`` periods
    of launch, Hotelling ``F(q, G - q)``, with a jackknife covariance when
    units are few (see :meth:`StaggeredResult.pretrend_test`; ``q >= G`` is
    refused). ``base_period="universal"`` measures every event time against
    ``g - 1`` (pre and post effects are then comparable on one plot; Roth
    2024): the reference ``e = -1`` is 0 by construction and has no band.
    Calibration (95% CI coverage, variance of the
    estimates) is checked by simulation in ``tests/test_did_calibration.py``.
    Ratio outcomes: pass the unit-period ratio as a column (unit weights are
    not varied over time by this estimator).
    """
    if control_group not in ("never_treated", "not_yet_treated"):
        raise DataError(f"control_group must be 'never_treated' or 'not_yet_treated'; got {control_group!r}")
    if method not in ("dr", "ipw", "reg"):
        raise DataError(f"method must be 'dr', 'ipw' or 'reg'; got {method!r}")
    if base_period not in ("varying", "universal"):
        raise DataError(f"base_period must be 'varying' or 'universal'; got {base_period!r}")
    if isinstance(anticipation, bool) or not isinstance(anticipation, (int, np.integer)) or anticipation < 0:
        raise DataError(f"anticipation must be a non-negative whole number of periods; got {anticipation!r}")
    covariates = _as_list(covariates)
    fr = _prepare(data, outcome, covariates, [unit, time], None, extra=[first_treated])
    ft = fr.extra[first_treated]
    ucode, ulab = _codes(fr.keys[unit])
    tcode, tlab = _codes(fr.keys[time])
    periods = _time_numeric(tlab, time)
    n_units, T = ulab.size, tlab.size
    G = _first_treated_per_unit(ucode, n_units, ft, first_treated, ulab, unit)
    G = np.where(G > periods[-1], 0.0, G)
    dropped = dict(fr.dropped)
    counts = _unit_period_counts(ucode, tcode, n_units, T, unit, time, ulab, tlab, error=True)
    complete = counts.all(axis=1)
    always = (G > 0) & (G <= periods[0] + anticipation)
    keep_units = complete & ~always
    if (~complete).any():
        dropped["units not observed in every period"] = int((~complete).sum())
    if (always & complete).any():
        dropped["units treated in the first period"] = int((always & complete).sum())
    if keep_units.sum() < 2:
        raise DataError(f"fewer than 2 units are left after dropping incomplete and always-treated units "
                        f"({dropped}); staggered() needs a balanced panel of '{unit}' x '{time}'")
    Y = np.full((n_units, T), np.nan)
    Y[ucode, tcode] = fr.y
    Xc = None
    if covariates:
        Xc = np.full((n_units, T, len(covariates)), np.nan)
        for j, c in enumerate(covariates):
            Xc[ucode, tcode, j] = fr.cols[c]
        Xc = Xc[keep_units]
    Y, Gk = Y[keep_units], G[keep_units]
    notes: list[str] = []
    est_periods = periods
    if not np.any(Gk == 0):
        if control_group == "never_treated":
            raise DataError(f"no never-treated units (every unit has a '{first_treated}' within the data): use "
                            "control_group='not_yet_treated'")
        # as R did: without never-treated units the last cohort is the comparison group, and the periods
        # from its launch (less anticipation) on, which have no comparison units, are dropped
        last = float(Gk.max())
        in_window = periods < last - anticipation
        if not np.any(periods + anticipation < Gk[Gk < last].min(initial=np.inf)):
            raise DataError(f"no never-treated units, and no cohort launched before the last one ({last:g}) has a "
                            "pre-launch period: nothing can be estimated")
        dropped[f"periods from {last - anticipation:g} on (no never-treated units: the last cohort, "
                f"launched {last:g}, is the comparison)"] = int(keep_units.sum() * (~in_window).sum())
        notes.append(f"No never-treated units: as R did, the last launch cohort ({last:g}) serves only as a "
                     f"not-yet-treated comparison, and periods from {last - anticipation:g} on are not used.")
        Y = Y[:, in_window]
        if Xc is not None:
            Xc = Xc[:, in_window]
        est_periods = periods[in_window]
        Gk = np.where(Gk == last, 0.0, Gk)
    cells = core.att_gt(Y, est_periods, Gk, Xc, control_group=control_group, method=method,
                        base_period=base_period, anticipation=anticipation)
    z = stats.norm.isf(alpha / 2)

    def whole(a):
        return a.astype(np.int64) if np.all(a == np.round(a)) else a

    tab = pd.DataFrame({
        "group": whole(cells.group), "time": whole(cells.time), "att": cells.att, "se": cells.se,
        "ci_lower": cells.att - z * cells.se, "ci_upper": cells.att + z * cells.se,
        "p_value": 2 * stats.norm.sf(np.abs(cells.att) / cells.se),
        "base_period": whole(cells.base), "post": cells.time >= cells.group,
        "n_treated": cells.n_treated, "n_control": cells.n_control,
    })
    in_panel = keep_units[ucode]
    trends = _trends(fr.y[in_panel], None, *_cohorts(G, ucode[in_panel]), periods[tcode[in_panel]])
    data = _CsData(Y=Y, periods=est_periods, G=Gk, X=Xc, control_group=control_group, method=method,
                   base_period=base_period, anticipation=anticipation)
    return StaggeredResult(outcome=fr.outcome_name, method=method, control_group=control_group,
                           base_period=base_period, att_gt=tab, alpha=alpha,
                           n_units=int(keep_units.sum()), n_periods=int(est_periods.size), cells=cells,
                           trends=trends, dropped=dropped, notes=tuple(notes), data=data)


# --------------------------------------------------------------------------
# Placebo
# --------------------------------------------------------------------------
def placebo(data, outcome, unit: str, time: str, first_treated: str | None = None, *,
            treatment: str | None = None, shift: int = 4, cluster: str | None = None,
            weights: str | None = None, alpha: float = 0.05, wild: bool | None = None,
            wild_reps: int = 9999, wild_weights: str = "rademacher", seed=0) -> DiDResult:
    """Placebo test: a fake launch ``shift`` periods early, estimated on pre-launch data only.

    Every launched unit keeps only its periods before the real launch; its
    fake treatment switches on at ``launch - shift``; never-launched units
    keep all periods. The TWFE estimate of the fake effect should be zero
    under parallel trends (a significant placebo effect is evidence of
    diverging pre-trends or anticipation). Inference as :func:`twfe` (CRV1,
    and the wild cluster bootstrap with fewer than 50 clusters); the fake
    launches are not run through TWFE's staggered-launch diagnostics. Size
    and variance are checked by simulation in ``tests/test_did_calibration.py``.
    """
    if isinstance(shift, bool) or not isinstance(shift, (int, np.integer)) or shift < 1:
        raise DataError(f"shift must be a positive whole number of periods; got {shift!r}")
    fr = _prepare(data, outcome, [treatment] if treatment else [], [unit, time, cluster], weights,
                  extra=[first_treated])
    ucode, ulab, tcode, tlab, tnum, first = _unit_first(fr, unit, time, first_treated, treatment)
    t = tnum[tcode]
    g = first[ucode]
    keep = ~np.isfinite(g) | (t < g)
    D = (np.isfinite(g) & (t >= g - shift)).astype(np.float64)[keep]
    if D.sum() == 0 or (np.isfinite(g) & keep & (t < g - shift)).sum() == 0:
        raise DataError(f"no launched unit has periods both before and after its fake launch (shift={shift}); "
                        "use a smaller shift")
    y = fr.y[keep]
    w = fr.w[keep] if fr.w is not None else None
    uc, _ = _codes(ucode[keep])
    tc, tl = _codes(t[keep])
    fe = core.FixedEffects([uc, tc], y.size, w)
    cl = _cluster_codes({k: v[keep] for k, v in fr.keys.items()}, cluster, unit, uc)
    name = f"placebo {treatment or first_treated} - {shift}"
    fit, coefs, wt = _regress(y, D[:, None], [name], fe, cl, alpha, wild, wild_reps, wild_weights, seed)
    row = coefs.iloc[0]
    dropped = {**fr.dropped, "post-launch rows (placebo uses pre-launch data)": int((~keep).sum())}
    return DiDResult(method=f"placebo (fake launch {shift} periods early)", outcome=fr.outcome_name,
                     estimate=float(row.estimate), se=float(row.se), ci_lower=float(row.ci_lower),
                     ci_upper=float(row.ci_upper), p_value=float(row.p_value), df=fit.df, alpha=alpha,
                     n_obs=int(y.size), n_units=ulab.size, n_periods=tl.size, n_clusters=fit.n_clusters,
                     vcov_type=fit.vcov_type, small_sample=_small_sample_text(fit), coefficients=coefs, wild=wt,
                     dropped=dropped)


from .synthetic import synthetic  # noqa: F401  (abkit.did.synthetic: one-market launches, see abkit.synthetic)
