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
  unit x period panels from buyer- or order-level rows.

Inference. Cluster-robust (CRV1) standard errors, clustered by unit unless
``cluster=`` says otherwise, with the small-sample factor
``G/(G-1) (N-1)/(N-K)`` and t(G-1) reference (as Stata, statsmodels and R
fixest; ``K`` follows fixest's rule for fixed effects nested in clusters).
Few clusters (20 markets) are the normal case here, so with fewer than
:data:`WILD_AUTO_CLUSTERS` clusters the wild cluster restricted bootstrap
p-value and confidence interval are reported too (``wild_p_value``,
``wild_ci_lower``, ``wild_ci_upper``; Rademacher or Webb weights, seeded).

Ratio outcomes. ``outcome=("contacts", "orders")`` analyses the unit-period
ratio ``contacts / orders`` weighted by ``orders`` (unless ``weights=`` is
given): the estimate is then the effect on the pooled ratio
``sum contacts / sum orders`` of the treated cells, i.e. per order, not per
market-week; unweighted analysis of the ratio would give every market-week
the same say whatever its size.
"""
from __future__ import annotations

import functools
import html
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .errors import DataError
from .sources import read_columns
from .stats import did as core

__all__ = [
    "DiDWarning", "WILD_AUTO_CLUSTERS", "DiDResult", "EventStudyResult", "StaggeredResult",
    "AggregateResult", "BaconResult", "PretrendTest", "aggregate_panel", "two_by_two", "twfe",
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
    """Joint test that all pre-launch effects are zero."""

    statistic: float        # F (Hotelling-corrected) or chi-square
    df1: float
    df2: float
    p_value: float
    wald: float
    method: str
    wild_p_value: float = np.nan

    def summary(self) -> str:
        ref = f"F({self.df1:g}, {self.df2:g})" if np.isfinite(self.df2) else f"chi2({self.df1:g})"
        wp = f", wild bootstrap p = {_fmt_p(self.wild_p_value)}" if np.isfinite(self.wild_p_value) else ""
        return f"pre-trend test: {ref} = {self.statistic:.3f}, p = {_fmt_p(self.p_value)}{wp} ({self.method})"


def _table_html(df: pd.DataFrame, title: str, notes: Sequence[str] = ()) -> str:
    e = html.escape
    out = [f"<p><b>{e(title)}</b></p>", '<table class="abkit-table"><thead><tr>']
    out += [f"<th>{e(str(c))}</th>" for c in df.columns]
    out.append("</tr></thead><tbody>")
    for row in df.itertuples(index=False):
        cells = []
        for c, v in zip(df.columns, row):
            if isinstance(v, (float, np.floating)):
                cells.append(_fmt_p(v) if "p_value" in str(c) else _fmt(v))
            else:
                cells.append(e(str(v)))
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    for n in notes:
        out.append(f'<p style="color:#57606a">{e(n)}</p>')
    return "\n".join(out)


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
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.figure.tight_layout()
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


def _event_plot(table: pd.DataFrame, label: str, title: str, ax=None, alpha: float = 0.05):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.2))
    x = table[label].to_numpy(dtype=float)
    est = table["estimate"].to_numpy(dtype=float)
    if "band_lower" in table and np.isfinite(table["band_lower"]).any():
        ax.fill_between(x, table["band_lower"], table["band_upper"], color="#0969da", alpha=0.15,
                        step=None, label=f"{1 - alpha:.0%} uniform band")
    ax.errorbar(x, est, yerr=[est - table["ci_lower"], table["ci_upper"] - est], fmt="o", color="#0969da",
                capsize=3, ms=5, label=f"{1 - alpha:.0%} pointwise CI")
    ax.axhline(0, color="black", lw=0.8)
    if label == "event_time":
        ax.axvline(-0.5, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("periods since launch")
    else:
        ax.set_xlabel(label)
    ax.set_ylabel("effect")
    ax.set_title(title, loc="left", fontsize=11)
    ax.legend(fontsize=8, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.figure.tight_layout()
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
        return _event_plot(self.table, "event_time", f"Event study: {self.outcome}", ax, self.alpha)

    def plot_trends(self, ax=None):
        if self.trends is None:
            raise DataError("this result has no trend data to plot")
        return _plot_trends(self.trends, self.outcome, ax)


_AGG_LABEL = {"dynamic": "event_time", "group": "group", "calendar": "time", "simple": "label"}


@dataclass(frozen=True)
class AggregateResult:
    """An aggregation of Callaway & Sant'Anna ATT(g, t): overall effect and per-row effects."""

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

    def to_frame(self) -> pd.DataFrame:
        """One row per event time / group / calendar period (empty for ``simple``)."""
        return self.table.copy()

    def summary(self) -> str:
        return (f"{self.kind} aggregation of ATT(g,t) on {self.outcome}: {self.estimate:.5g} (SE {self.se:.4g}), "
                f"{1 - self.alpha:.0%} CI [{self.ci_lower:.4g}, {self.ci_upper:.4g}], p = {_fmt_p(self.p_value)}; "
                f"multiplier bootstrap ({self.boot_weights}) p = {_fmt_p(self.boot_p_value)}")

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return _table_html(self.table, self.summary())

    def plot(self, ax=None):
        if self.table.empty:
            raise DataError("the 'simple' aggregation has a single number; nothing to plot")
        return _event_plot(self.table, _AGG_LABEL[self.kind], f"{self.kind} effects: {self.outcome}", ax,
                           self.alpha)


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

    @functools.cached_property
    def pretrend(self) -> PretrendTest:
        """Wald test that all pre-period ATT(g, t) are zero (influence-function covariance, chi-square(q)).

        Computed on first use: with many cohorts and periods the ``q x q``
        covariance of the pre-period cells costs more than the estimates.
        """
        cells = self.cells
        pre = np.nonzero((cells.time < cells.group) & np.isfinite(cells.se))[0]
        if not pre.size:
            return PretrendTest(np.nan, 0.0, np.nan, np.nan, np.nan, "no pre-period cells")
        n = cells.n_units
        A = cells.inf[:, pre]
        W, _, _, pw = core.wald_test(cells.att[pre], A.T @ A / n / n, 0)
        return PretrendTest(statistic=W, df1=float(pre.size), df2=np.inf, p_value=pw, wald=W,
                            method="Wald on pre-period ATT(g,t), influence-function covariance")

    def aggregate(self, kind: str = "simple", *, min_e: float = -np.inf, max_e: float = np.inf,
                  balance_e: int | None = None, alpha: float | None = None, reps: int = 999,
                  weights: str = "rademacher", seed=0) -> AggregateResult:
        """Aggregate ATT(g, t): ``"simple" | "dynamic" | "group" | "calendar"``.

        Analytic SEs from influence functions (as R ``did::aggte``, including
        the estimated cohort shares); the uniform band over the rows and the
        bootstrap p-value of the overall effect use a multiplier (wild)
        bootstrap with ``weights`` per unit, ``reps`` draws and ``seed``
        (``reps=0``: analytic inference only, band and bootstrap p-value NaN).
        """
        alpha = self.alpha if alpha is None else alpha
        if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 0:
            raise DataError(f"reps must be a non-negative integer (0 = no bootstrap); got {reps!r}")
        agg = core.aggregate_att_gt(self.cells, kind, min_e=min_e, max_e=max_e, balance_e=balance_e)
        z = stats.norm.isf(alpha / 2)
        est, se = agg.overall_att, agg.overall_se
        p = float(2 * stats.norm.sf(abs(est) / se)) if se > 0 else np.nan
        k = agg.att.size
        inf = np.column_stack([agg.overall_inf, agg.inf]) if k else agg.overall_inf[:, None]
        ses = np.concatenate([[se], agg.se])
        if reps:
            tb = core.multiplier_bootstrap(inf, ses, reps=reps, weights=weights, seed=seed)
            boot_p = float(np.mean(np.abs(tb[:, 0]) >= abs(est) / se))
            crit = core.sup_t_critical(tb[:, 1:], alpha) if k else np.nan
        else:
            boot_p, crit = np.nan, np.nan
        label = _AGG_LABEL[kind]
        table = pd.DataFrame({
            label: agg.labels, "estimate": agg.att, "se": agg.se,
            "ci_lower": agg.att - z * agg.se, "ci_upper": agg.att + z * agg.se,
            "band_lower": agg.att - crit * agg.se, "band_upper": agg.att + crit * agg.se,
            "p_value": 2 * stats.norm.sf(np.abs(agg.att) / agg.se),
        })
        if k and np.all(agg.labels == np.round(agg.labels)):
            table[label] = table[label].astype(np.int64)
        return AggregateResult(kind=kind, outcome=self.outcome, estimate=est, se=se, ci_lower=est - z * se,
                               ci_upper=est + z * se, p_value=p, alpha=alpha, table=table,
                               critical_value=crit, boot_p_value=boot_p, boot_weights=weights, reps=reps,
                               n_units=self.n_units)

    def to_frame(self) -> pd.DataFrame:
        """The ATT(g, t) table."""
        return self.att_gt.copy()

    def summary(self) -> str:
        s = self.aggregate("simple")
        return "\n".join([f"Callaway-Sant'Anna ({self.method}, {self.control_group} controls, "
                          f"{self.base_period} base period) on {self.outcome}: {len(self.att_gt)} ATT(g,t) "
                          f"cells, {self.n_units} units", s.summary(), self.pretrend.summary(), *self.notes])

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return _table_html(self.att_gt, f"ATT(g,t): {self.outcome} ({self.method}, {self.control_group})",
                           [self.pretrend.summary(), *self.notes])

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

    ``data`` is anything :func:`abkit.sources.read_columns` accepts (DataFrame,
    pyarrow Table, parquet/CSV path); only the needed columns are read.
    ``first``: columns constant within a unit-period (e.g. the launch
    period), carried over (an error if they vary). Missing values in
    ``sums`` are an error (fill them or drop the rows first); rows with a
    missing unit or period are dropped and counted in ``attrs["dropped_rows"]``.
    The result feeds every estimator here, e.g. ``outcome=("contacts", "orders")``.
    """
    sums, first = _as_list(sums), _as_list(first)
    if not sums:
        raise DataError("aggregate_panel needs at least one column in sums=[...], e.g. ['contacts', 'orders']")
    df = read_columns(data, list(dict.fromkeys([unit, time, *sums, *first])))
    keymiss = df[unit].isna().to_numpy() | df[time].isna().to_numpy()
    if keymiss.any():
        df = df[~keymiss]
    for c in sums:
        v = _numeric(df, c)
        nbad = int((~np.isfinite(v)).sum())
        if nbad:
            raise DataError(f"column '{c}' has {nbad:,} missing or infinite values; fill them (e.g. 0 "
                            "contacts) or drop those rows before aggregating")
        df = df.assign(**{c: v})
    g = df.groupby([unit, time], sort=True, observed=True)
    out = g[sums].sum()
    out["n_rows"] = g.size()
    for c in first:
        lo, hi = g[c].min(), g[c].max()
        varying = (lo != hi) & lo.notna()
        if varying.any():
            raise DataError(f"column '{c}' varies within {int(varying.sum())} unit-period(s); it must be "
                            "constant within each unit and period to be carried over")
        out[c] = g[c].first()
    out = out.reset_index()
    out.attrs["dropped_rows"] = int(keymiss.sum())
    return out


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
    rng = np.random.default_rng(seed)
    corr = V / np.outer(se, se)
    L = np.linalg.cholesky(corr + 1e-12 * np.eye(ne))
    z = rng.standard_normal((band_draws, ne)) @ L.T
    if np.isfinite(df):
        z = z / np.sqrt(rng.chisquare(df, size=(band_draws, 1)) / df)
    crit = core.sup_t_critical(z, alpha)
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
                                wild_p_value=pre_wild)
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
    ref = pd.DataFrame([{"event_time": -1, "estimate": 0.0, "se": np.nan, "ci_lower": 0.0, "ci_upper": 0.0,
                         "band_lower": 0.0, "band_upper": 0.0, "p_value": np.nan, "wild_p_value": np.nan,
                         "wild_ci_lower": np.nan, "wild_ci_upper": np.nan, "n_obs": int((ever & (ec == -1)).sum())}])
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
    Use ``result.aggregate("simple" | "dynamic" | "group" | "calendar")``.
    The pre-trend test (``result.pretrend``, computed on first use) is the
    Wald test of all pre-period ATT(g, t) = 0 with the influence-function
    covariance, chi-square(q). Calibration (95% CI coverage, variance of the
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
    return StaggeredResult(outcome=fr.outcome_name, method=method, control_group=control_group,
                           base_period=base_period, att_gt=tab, alpha=alpha,
                           n_units=int(keep_units.sum()), n_periods=int(est_periods.size), cells=cells,
                           trends=trends, dropped=dropped, notes=tuple(notes))


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
