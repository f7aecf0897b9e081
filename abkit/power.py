"""``abkit.power``: how many buyers, how many days, what can we detect?

Closed forms (pure math in :mod:`abkit.stats.power`, re-exported here):

* means: :func:`sample_size_mean`, :func:`mde_mean`, :func:`power_mean`
  (two-sample t-test, exactly statsmodels' ``TTestIndPower``);
* proportions: :func:`sample_size_proportion`, :func:`mde_proportion`,
  :func:`power_proportion` (R's ``power.prop.test``);
* ratio metrics: :func:`sample_size_ratio`, :func:`mde_ratio`,
  :func:`power_ratio` (delta method);
* panels / DiD rollouts: :func:`sample_size_panel`, :func:`mde_panel`,
  :func:`power_panel`, :func:`panel_variance` (Burlig, Preonas and Woerman
  2020; McKenzie 2012);
* design helpers: :func:`design_effect` (cluster randomization),
  :func:`comparison_alpha` (several arms), :func:`days_needed`,
  :func:`uniques_after`, :func:`fit_population` (duration with repeat visitors).

From data: :func:`plan` reads historical (or A/A) data through the same
sources -> moments path as :func:`abkit.analyze`, estimates each metric's
baseline, unit-level (delta-method) standard deviation and CUPED variance
reduction, and tabulates the MDE by experiment duration and the duration
needed for given effects.

    >>> import abkit
    >>> from abkit import power
    >>> hist = abkit.simulate.ab_data(20_000, seed=3)
    >>> p = power.plan(hist, abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"),
    ...                                   name="refund_rate", better="lower"),
    ...                daily_units=4_000, population=60_000)
    >>> p.to_frame()  # doctest: +SKIP
"""
from __future__ import annotations

import html
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import AbkitError, DataError, missing_column
from .metrics import Metric
from .moments import MomentSet
from .sources import aggregate, read_columns
from .stats.ab import check_binary, linearize
from .stats.power import (
    ALTERNATIVES,
    CORRECTIONS,
    MDEResult,
    PanelVariance,
    PowerResult,
    SampleSizeResult,
    comparison_alpha,
    days_needed,
    design_effect,
    fit_population,
    mde_mean,
    mde_panel,
    mde_proportion,
    mde_ratio,
    panel_covariance,
    panel_variance,
    power_mean,
    power_panel,
    power_proportion,
    power_ratio,
    ratio_variance,
    sample_size_mean,
    sample_size_panel,
    sample_size_proportion,
    sample_size_ratio,
    t_power,
    uniques_after,
)

__all__ = [
    "ALTERNATIVES", "CORRECTIONS", "MDEResult", "MetricDesign", "PanelVariance", "PowerPlan", "PowerResult",
    "SampleSizeResult", "comparison_alpha", "days_needed", "design_effect", "estimate_design", "fit_population",
    "mde_mean", "mde_panel", "mde_proportion", "mde_ratio", "panel_covariance", "panel_variance", "plan",
    "power_mean", "power_panel", "power_proportion", "power_ratio", "ratio_variance", "sample_size_mean",
    "sample_size_panel", "sample_size_proportion", "sample_size_ratio", "t_power", "uniques_after",
]

DEFAULT_DAYS = (7, 14, 21, 28, 35, 42, 56)
DEFAULT_MDES = (0.01, 0.02, 0.03, 0.05, 0.10)
_ALL = "__abkit_all_units__"


# =========================================================================
# data -> per-metric design inputs
# =========================================================================
@dataclass(frozen=True)
class MetricDesign:
    """What a power calculation needs to know about one metric, estimated from data.

    ``sd`` is the unit-level standard deviation of the (linearized) metric,
    pooled within arms: for a ratio ``Y/X`` the delta-method
    ``sqrt((s_Y^2 - 2 R s_XY + R^2 s_X^2) / mu_X^2)``. ``variance_reduction``
    is the squared correlation (R^2 for several covariates) between the
    linearized metric and its linearized covariate(s): the share of the
    variance CUPED / regression adjustment removes.
    """

    metric: str
    kind: str
    better: str
    baseline: float
    sd: float
    variance_reduction: float
    n_units: int
    covariates: tuple[str, ...]

    @property
    def sd_adjusted(self) -> float:
        return self.sd * float(np.sqrt(1.0 - self.variance_reduction))


def _metric_list(metric) -> list[Metric]:
    metrics = [metric] if isinstance(metric, Metric) else list(metric)
    if not metrics:
        raise AbkitError("no metric given; pass e.g. abkit.Ratio('refunds', 'orders', name='refund_rate')")
    for m in metrics:
        if not isinstance(m, Metric):
            raise AbkitError(f"{m!r} is not a metric; use abkit.Mean, abkit.Proportion or abkit.Ratio")
    names = [m.name for m in metrics]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AbkitError(f"metric name(s) {dupes} used twice; give each metric a distinct name=")
    return metrics


def _one_group(data, columns: Sequence[str]):
    """The metric columns of ``data`` plus a constant arm column (no variant: one population)."""
    columns = list(dict.fromkeys(columns))
    if isinstance(data, pd.DataFrame):
        have = [str(c) for c in data.columns]
        for c in columns:
            if c not in have:
                raise missing_column(c, have)
        frame = pd.DataFrame({c: data[c] for c in columns})
    elif isinstance(data, (pa.Table, pa.RecordBatch)):
        have = list(data.schema.names)
        for c in columns:
            if c not in have:
                raise missing_column(c, have)
        table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
        table = table.select(columns)
        const = pa.DictionaryArray.from_arrays(pa.array(np.zeros(table.num_rows, dtype=np.int32)), pa.array(["all"]))
        return table.append_column(_ALL, const)
    else:
        frame = read_columns(data, columns)
    frame[_ALL] = pd.Categorical.from_codes(np.zeros(len(frame), dtype=np.int8), categories=["all"])
    return frame


def estimate_design(data, metric, variant: str | None = None, control: Hashable = "control",
                    cuped: bool = True) -> list[MetricDesign]:
    """Baseline, unit-level sd and CUPED variance reduction of each metric, from data.

    ``data`` is anything :func:`abkit.analyze` reads (DataFrame, pyarrow
    Table, parquet/CSV path) or a :class:`abkit.MomentSet`. Without
    ``variant`` every row is one population (historical data); with it
    (A/A or past A/B data) covariances are pooled within arms and the
    baseline is the ``control`` arm's value (all arms pooled if there is no
    such arm).
    """
    metrics = _metric_list(metric)
    if isinstance(data, MomentSet):
        ms = data
        if ms.by:
            raise AbkitError("these moments are split by segment; plan one segment with moments.segment(value)")
    elif variant is None:
        columns = [c for m in metrics for c in m.columns]
        ms = aggregate(_one_group(data, columns), metrics, variant=_ALL)
    else:
        ms = aggregate(data, metrics, variant=variant)
    out = []
    for m in metrics:
        block = ms.block_for(m.columns, m.dropna)
        if m.kind == "proportion":
            check_binary(block, m.target.numerator, m.name)
        statistics = (m.target, *m.covariates)
        groups = [g for g, n in zip(block.groups, block.n) if n >= 2]
        if not groups:
            raise DataError(f"metric '{m.name}': fewer than 2 units with data; cannot estimate a variance")
        S = np.zeros((len(statistics), len(statistics)))
        dof = 0.0
        for g in groups:
            _, V, n = linearize(block, g, statistics)
            S += (n - 1.0) * V * n          # V * n = unit-level covariance of the linearized statistics
            dof += n - 1.0
        S /= dof
        if control in groups and len(groups) > 1:
            values, _, _ = linearize(block, control, statistics)
        else:
            values, _, _ = linearize(block.pooled(groups), "pooled", statistics)
        var = float(S[0, 0])
        if not (var > 0 and np.isfinite(var)):
            raise DataError(f"metric '{m.name}' has no variance in the data (sd = {np.sqrt(max(var, 0)):.3g}); "
                            "a power calculation needs a varying metric")
        vr = 0.0
        if cuped and m.covariates:
            sxx, sxy = S[1:, 1:], S[1:, 0]
            vr = float(sxy @ np.linalg.pinv(sxx, rcond=1e-12, hermitian=True) @ sxy / var)
            vr = min(max(vr, 0.0), 1.0 - 1e-12)
        out.append(MetricDesign(
            metric=m.name, kind=m.kind, better=m.better, baseline=float(values[0]), sd=float(np.sqrt(var)),
            variance_reduction=vr, n_units=int(sum(block.n[block.group_index(g)] for g in groups)),
            covariates=tuple(str(c) for c in m.covariates) if cuped else (),
        ))
    return out


# =========================================================================
# the plan
# =========================================================================
def _table_html(df: pd.DataFrame, formats: dict) -> str:
    e = html.escape
    out = ['<table class="abkit-table">', "<thead><tr>"]
    out += [f"<th>{e(str(c))}</th>" for c in df.columns]
    out.append("</tr></thead><tbody>")
    for _, row in df.iterrows():
        cells = []
        for c in df.columns:
            v = row[c]
            f = formats.get(c)
            cells.append(e(f(v) if f else str(v)))
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _pct(x, digits=2) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x * 100:.{digits}f}%"


def _num(x, sig=4) -> str:
    from .results import format_number

    return format_number(x, sig)


def _int(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{int(x):,}"


@dataclass(frozen=True)
class PowerPlan:
    """A power plan: per-metric design inputs, the MDE by duration, the duration per effect.

    * :meth:`to_frame` -- one row per metric x duration: units enrolled, per
      arm, the MDE (absolute and relative) with and without CUPED, and with a
      non-inferiority margin the power to show non-inferiority;
    * :meth:`sample_sizes` -- one row per metric x target relative effect: units
      per arm and days needed;
    * :meth:`designs` -- baseline, sd and variance reduction per metric;
    * :meth:`plot` -- relative MDE against duration; :meth:`summary`.
    """

    metrics: tuple[MetricDesign, ...]
    duration_rows: tuple[dict, ...]
    sample_size_rows: tuple[dict, ...]
    alpha: float
    power: float
    alternative: str
    arms: int
    ratio: float
    correction: str | None
    margin: float
    traffic: str

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.duration_rows))

    def sample_sizes(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.sample_size_rows))

    def designs(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "metric": d.metric, "kind": d.kind, "better": d.better, "baseline": d.baseline, "sd": d.sd,
            "variance_reduction": d.variance_reduction, "sd_adjusted": d.sd_adjusted, "n_units": d.n_units,
            "covariates": ", ".join(d.covariates),
        } for d in self.metrics])

    # ---------------------------------------------------------------- text
    def _setting(self) -> str:
        alt = {"two-sided": "two-sided", "larger": "one-sided (increase)", "smaller": "one-sided (decrease)"}
        if self.margin > 0:
            how = f"one-sided non-inferiority, margin {self.margin:.1%} in each metric's bad direction"
        else:
            how = alt.get(self.alternative, self.alternative)
        s = f"{self.power:.0%} power, alpha {self.alpha:g} {how}"
        if self.arms > 2:
            s += f", {self.arms} arms ({self.correction or 'no'} correction)"
        if self.ratio != 1:
            s += f", treatment/control = {self.ratio:g}"
        return s

    def summary(self) -> str:
        lines = [f"Power plan ({self._setting()}); traffic: {self.traffic}"]
        frame = self.to_frame()
        sizes = self.sample_sizes()
        for d in self.metrics:
            rows = frame[frame.metric == d.metric]
            cuped = (f", CUPED removes {d.variance_reduction:.0%} of the variance"
                     if d.covariates else "")
            line = f"  {d.metric}: baseline {_num(d.baseline)}, sd {_num(d.sd)}{cuped}."
            if self.margin > 0:
                ok = rows[rows.power_noninferiority >= self.power]
                line += (f" Non-inferiority at a {self.margin:.1%} margin: "
                         + (f"{int(ok.days.iloc[0])} days ({_int(ok.units.iloc[0])} units)."
                            if len(ok) else f"not reached within {int(rows.days.max())} days."))
            else:
                last = rows.iloc[-1]
                first = rows.iloc[0]
                line += (f" MDE {_pct(abs(first.relative_mde))} after {int(first.days)} days, "
                         f"{_pct(abs(last.relative_mde))} after {int(last.days)} days.")
                s = sizes[sizes.metric == d.metric]
                feasible = s[s.days_needed.notna()] if len(s) else s
                if len(feasible):
                    r = feasible.iloc[0]
                    line += (f" Smallest listed effect the traffic supports: {_pct(abs(r.relative_mde), 1)}, "
                             f"{_int(r.total)} units in {_int(r.days_needed)} days.")
                elif len(s):
                    line += (f" None of the listed effects (down to {_pct(s.relative_mde.abs().max(), 1)}) "
                             "is reachable with this traffic.")
            lines.append(line)
        return "\n".join(lines)

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        e = html.escape
        parts = [f"<p><b>Power plan</b>: {e(self._setting())}; traffic: {e(self.traffic)}</p>"]
        parts.append(_table_html(self.designs()[["metric", "baseline", "sd", "variance_reduction", "n_units"]],
                                 {"baseline": _num, "sd": _num, "variance_reduction": lambda v: _pct(v, 1),
                                  "n_units": _int}))
        frame = self.to_frame()
        cols = ["metric", "days", "units", "n_control", "n_treatment", "relative_mde", "relative_mde_unadjusted"]
        if self.margin > 0:
            cols.append("power_noninferiority")
        parts.append(_table_html(frame[cols], {
            "units": _int, "n_control": _int, "n_treatment": _int,
            "relative_mde": lambda v: _pct(v), "relative_mde_unadjusted": lambda v: _pct(v),
            "power_noninferiority": lambda v: _pct(v, 1)}))
        sizes = self.sample_sizes()
        if len(sizes):
            parts.append(_table_html(sizes[["metric", "relative_mde", "n_control", "n_treatment", "total",
                                            "days_needed"]],
                                     {"relative_mde": lambda v: _pct(v, 1), "n_control": _num, "n_treatment": _num,
                                      "total": _int, "days_needed": _int}))
        return "\n".join(parts)

    # ---------------------------------------------------------------- plot
    def plot(self, ax=None):
        """Relative MDE (%) against experiment duration, one line per metric
        (dashed: the same metric without CUPED)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7.5, 4.2))
        frame = self.to_frame()
        colours = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
        for j, d in enumerate(self.metrics):
            rows = frame[frame.metric == d.metric]
            c = colours[j % len(colours)]
            ax.plot(rows.days, 100 * rows.relative_mde.abs(), "o-", color=c, lw=2, ms=4,
                    label=d.metric + (" (CUPED)" if d.covariates else ""))
            if d.covariates:
                ax.plot(rows.days, 100 * rows.relative_mde_unadjusted.abs(), "--", color=c, lw=1.2,
                        label=f"{d.metric} (no CUPED)")
        ax.set_xlabel("experiment duration (days)")
        what = "smallest true effect showing non-inferiority" if self.margin > 0 else "minimum detectable effect"
        ax.set_ylabel(f"{what}\n(relative to baseline, %)")
        ax.set_title(f"MDE by duration: {self._setting()}", loc="left", fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, frameon=False)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.figure.tight_layout()
        return ax


def _days(days) -> np.ndarray:
    d = np.asarray(list(days) if not np.isscalar(days) else [days])
    if d.size == 0 or d.dtype.kind not in "iuf" or np.any(d <= 0) or np.any(d != np.round(d)):
        raise AbkitError(f"days={days!r} must be positive whole numbers of days, e.g. (7, 14, 28)")
    return np.unique(d.astype(np.int64))


def _enrolled(days: np.ndarray, daily_units, population, uniques_by_day, traffic_share):
    if uniques_by_day is not None:
        if daily_units is not None or population is not None:
            raise AbkitError("give either uniques_by_day or daily_units (with population), not both")
        u = np.asarray(uniques_by_day, dtype=np.float64)
        if u.ndim != 1 or u.size == 0 or np.any(np.diff(u) < 0) or not np.all(np.isfinite(u)):
            raise AbkitError("uniques_by_day must be a non-decreasing 1-d curve: unique units after day 1, 2, ...")
        if days.max() > u.size:
            raise AbkitError(f"days go up to {days.max()} but uniques_by_day covers {u.size} days; extend the "
                             "curve or shorten days=")
        share = float(traffic_share)
        return share * u[days - 1], f"uniques_by_day curve ({_int(u[-1])} after {u.size} days)" + (
            f", {share:.0%} of traffic" if share != 1 else "")
    if daily_units is None:
        raise AbkitError("plan() needs the traffic: daily_units= (eligible units a day, with population= for "
                         "repeat visitors) or uniques_by_day= (cumulative unique units by day)")
    units = np.asarray(uniques_after(days, daily_units, population, traffic_share), dtype=np.float64)
    text = f"{_int(daily_units)} eligible units a day"
    if population is not None:
        text += f" from a population of {_int(population)} (repeat visitors)"
    if traffic_share != 1:
        text += f", {traffic_share:.0%} of traffic in the test"
    return units, text


def plan(data, metric, *, variant: str | None = None, control: Hashable = "control", alpha: float = 0.05,
         power: float = 0.8, ratio: float = 1.0, alternative: str | None = None, arms: int = 2,
         correction: str | None = "bonferroni", days=DEFAULT_DAYS, daily_units=None, population=None,
         uniques_by_day=None, traffic_share: float = 1.0, mdes=DEFAULT_MDES, margin: float = 0.0,
         cuped: bool = True) -> PowerPlan:
    """Plan an experiment from historical (or A/A) data.

    Reads ``data`` through the same sources -> moments path as
    :func:`abkit.analyze` (:func:`estimate_design`), then for every metric:

    * the MDE after each of ``days`` (units enrolled from the traffic model
      of :func:`uniques_after`, split ``1 : ratio : ratio ...`` over the
      arms), with and without CUPED;
    * for each relative effect in ``mdes``, the units per arm and the days
      needed (:func:`days_needed`).

    Means and ratio metrics use the t-test formulas (:func:`mde_mean`,
    :func:`sample_size_mean`) with the delta-method unit sd and the
    estimated ``variance_reduction``; proportions without covariates use
    R's ``power.prop.test`` formulas. Effects are in the metric's good
    direction (``better``), which matters only for proportions and
    one-sided tests.

    Parameters
    ----------
    data : DataFrame, pyarrow Table, parquet/CSV path, or a MomentSet.
    metric : an :class:`abkit.Mean`, :class:`abkit.Proportion` or
        :class:`abkit.Ratio`, or a list of them. Covariates are used for CUPED.
    variant, control : the arm column and control arm of A/A or past A/B
        data (default None: all rows are one population).
    alpha, power, ratio, arms, correction : as in :func:`sample_size_mean`.
    alternative : ``"two-sided"`` (default), ``"larger"`` or ``"smaller"``;
        with a ``margin`` it follows each metric's ``better``.
    days : durations to tabulate (days).
    daily_units, population, uniques_by_day, traffic_share : the traffic
        (see :func:`days_needed`).
    mdes : relative effects (e.g. 0.02 = 2%) to size the test for.
    margin : relative non-inferiority margin (guardrails, e.g. 0.02: may not
        get worse by more than 2%); the table then reports the power to show
        non-inferiority when the true effect is 0.
    cuped : use the metrics' covariates (default True).

    Notes
    -----
    The unit-level variance is estimated over the window the data covers;
    per-buyer metrics accumulate over time, so use history of the length the
    experiment will run (or check the plan for the nearest duration).
    """
    designs = estimate_design(data, metric, variant=variant, control=control, cuped=cuped)
    margin = float(margin)
    if margin < 0 or not np.isfinite(margin):
        raise AbkitError(f"margin={margin!r} must be >= 0 (a relative non-inferiority margin, e.g. 0.02)")
    if alternative is not None and alternative not in ALTERNATIVES:
        raise AbkitError(f"alternative={alternative!r} is not known; use 'two-sided', 'larger' or 'smaller'")
    if margin > 0 and alternative == "two-sided":
        raise AbkitError("a non-inferiority margin needs a one-sided test; leave alternative=None to follow "
                         "each metric's better= direction")
    d = _days(days)
    units, traffic = _enrolled(d, daily_units, population, uniques_by_day, traffic_share)
    share_c = 1.0 / (1.0 + (arms - 1) * float(ratio))
    n_c = units * share_c
    mdes = np.atleast_1d(np.asarray(mdes, dtype=np.float64)) if mdes is not None else np.array([])
    if np.any(mdes <= 0) or not np.all(np.isfinite(mdes)):
        raise AbkitError(f"mdes={mdes.tolist()} must be positive relative effects (e.g. 0.02 for 2%); the "
                         "direction follows each metric's better=")
    common = dict(alpha=alpha, ratio=ratio, arms=arms, correction=correction)
    rows, size_rows = [], []
    alt_used = alternative or "two-sided"
    for des in designs:
        alt = alternative or "two-sided"
        if margin > 0 and alternative is None:
            alt = "larger" if des.better == "higher" else "smaller"
        good = 1.0 if des.better == "higher" else -1.0
        if alt != "two-sided":
            good = 1.0 if alt == "larger" else -1.0
        alt_used = alt
        proportion = des.kind == "proportion" and not des.covariates
        tiny = n_c * (1 + ratio) < 3          # too few units for a t-test
        nn = np.where(tiny, np.nan, n_c)
        ok = ~tiny
        mde_abs = np.full(d.shape, np.nan)
        mde_raw = np.full(d.shape, np.nan)
        power_ni = np.full(d.shape, np.nan)
        if ok.any():
            if proportion:
                r = mde_proportion(des.baseline, nn[ok], power=power, alternative=alt,
                                   direction="increase" if good > 0 else "decrease",
                                   margin=margin * des.baseline, unreachable="nan", **common)
                mde_abs[ok] = r.mde
                mde_raw[ok] = r.mde
                if margin > 0:
                    power_ni[ok] = power_proportion(des.baseline, des.baseline, nn[ok], alternative=alt,
                                                    margin=margin * des.baseline, **common).power
            else:
                kw = dict(power=power, alternative=alt, baseline=des.baseline, margin=margin,
                          relative_margin=True, **common)
                mde_abs[ok] = mde_mean(des.sd, nn[ok], variance_reduction=des.variance_reduction, **kw).mde
                mde_raw[ok] = mde_mean(des.sd, nn[ok], **kw).mde
                if margin > 0:
                    power_ni[ok] = power_mean(des.sd, 0.0, nn[ok], alternative=alt, baseline=des.baseline,
                                              relative=True, margin=margin,
                                              variance_reduction=des.variance_reduction, **common).power
            if alt == "two-sided" and not proportion:
                mde_abs, mde_raw = good * mde_abs, good * mde_raw
        for j, day in enumerate(d):
            row = {
                "metric": des.metric, "days": int(day), "units": float(units[j]),
                "n_control": float(n_c[j]), "n_treatment": float(n_c[j] * ratio),
                "mde": float(mde_abs[j]), "relative_mde": float(mde_abs[j] / des.baseline),
                "relative_mde_unadjusted": float(mde_raw[j] / des.baseline),
                "baseline": des.baseline, "sd": des.sd, "variance_reduction": des.variance_reduction,
                "alternative": alt,
                "method": "proportion (R power.prop.test)" if proportion else
                          ("t-test, delta method" if des.kind == "ratio" else "t-test")
                          + (" + CUPED" if des.covariates else ""),
            }
            if margin > 0:
                row["margin"] = margin
                row["power_noninferiority"] = float(power_ni[j])
            rows.append(row)
        # sample sizes for the target effects (or the margin, with true effect 0)
        targets = [0.0] if margin > 0 else [float(x) for x in mdes]
        for rel in targets:
            eff = good * rel if rel else 0.0
            if proportion:
                res = sample_size_proportion(des.baseline, des.baseline * (1 + eff), power=power,
                                             alternative=alt, margin=margin * des.baseline, **common)
            else:
                res = sample_size_mean(des.sd, eff, power=power, alternative=alt,
                                       variance_reduction=des.variance_reduction, baseline=des.baseline,
                                       relative=True, margin=margin, **common)
            try:
                need = days_needed(res.total, daily_units, population=population, uniques_by_day=uniques_by_day,
                                   traffic_share=traffic_share)
            except AbkitError:
                need = None
            size_rows.append({
                "metric": des.metric, "relative_mde": eff, "mde": eff * des.baseline,
                "n_control": float(res.n_control), "n_treatment": float(res.n_treatment), "total": int(res.total),
                "days_needed": float("nan") if need is None else int(need), "margin": margin, "alternative": alt,
            })
    return PowerPlan(
        metrics=tuple(designs), duration_rows=tuple(rows), sample_size_rows=tuple(size_rows),
        alpha=float(alpha), power=float(power), alternative=alt_used if margin > 0 else (alternative or "two-sided"),
        arms=int(arms), ratio=float(ratio), correction=correction if arms > 2 else None, margin=margin,
        traffic=traffic,
    )
