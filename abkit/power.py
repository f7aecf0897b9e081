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
needed for given effects. :meth:`PowerPlan.plot` draws the MDE by duration
(``kind="mde"``) or the power by true effect (``kind="power"``, also
:func:`power_curve`). With a relative non-inferiority ``margin``
(guardrails) it reports the power of the rule the readout applies, the
ratio test of ``a_t - (1 +/- m) a_c`` (see :mod:`abkit.stats.power`).

By simulation: :func:`simulate_power` resamples units of the history,
injects a known effect into the treatment arm, runs abkit's own estimator
on every simulated test (all of them aggregated in one pass) and reports
the empirical power with its Monte Carlo (Clopper-Pearson) interval. It
checks the closed forms and answers where there is none (quantiles).

    >>> import abkit
    >>> from abkit import power
    >>> hist = abkit.simulate.ab_data(20_000, seed=3)
    >>> p = power.plan(hist, abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"),
    ...                                   name="refund_rate", better="lower"),
    ...                daily_units=4_000, population=60_000)
    >>> p.to_frame()  # doctest: +SKIP
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from ._html import Html, bold, esc, frame_table
from .errors import AbkitError, DataError, missing_column
from .metrics import Metric
from .moments import MomentSet
from .plots import style_axes
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
    monte_carlo_ci,
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
    "SampleSizeResult", "SimulatedPower", "comparison_alpha", "days_needed", "design_effect", "estimate_design",
    "always_valid_alpha", "fit_population", "mde_mean", "mde_panel", "mde_proportion", "mde_ratio", "monte_carlo_ci",
    "panel_covariance", "panel_variance", "plan", "power_curve", "power_mean", "power_panel", "power_proportion",
    "power_ratio", "ratio_variance", "sample_size_mean", "sample_size_panel", "sample_size_proportion",
    "sample_size_ratio", "simulate_power", "t_power", "uniques_after",
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
    """One metric or a list, checked as :func:`abkit.analyze` checks them."""
    from .analysis import _check_metrics

    return _check_metrics(metric)


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
    quantiles = [m.name for m in metrics if m.kind == "quantile"]
    if quantiles:
        raise AbkitError(f"metric(s) {quantiles} are quantiles, which have no closed-form power; use "
                         "abkit.power.simulate_power (resampling the history)")
    events = [m.name for m in metrics if m.kind == "time_to_event"]
    if events:   # issue 17: their moments would be the event indicator's, not the restricted mean's
        raise AbkitError(f"metric(s) {events} are times to event; plan them with abkit.power.simulate_power on "
                         "their pseudo-observations: a Mean of abkit.time_to_event.pseudo_observations(history, "
                         "metric), with relative=False")
    if not isinstance(data, MomentSet) and any(getattr(m, "needs_cap", False) for m in metrics):
        from .quantile import resolve_caps

        metrics = resolve_caps(data, metrics)      # winsorizing caps from this history, as analyze does
    if isinstance(data, MomentSet):
        ms = data
        if ms.by:
            raise AbkitError("these moments are split by segment; plan one segment with moments.segment(value)")
    elif variant is None:
        columns = [c for m in metrics for c in m.source_columns]
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
def _table_html(df: pd.DataFrame, formats: dict, **kwargs) -> str:
    return frame_table(df, lambda c, v: formats[c](v) if c in formats else str(v), **kwargs)


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
    sequential: bool = False      # planned for always-valid intervals (see plan(sequential=))

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
        if self.sequential:
            s += f", read with always-valid intervals (as a fixed test at alpha {always_valid_alpha(self.alpha):.2g})"
        if self.arms > 2:
            s += f", {self.arms} arms ({self.correction or 'no'} correction)"
        if self.ratio != 1:
            s += f", treatment/control = {self.ratio:g}"
        return s

    def _test(self) -> str:
        """The test without the power: alpha, sidedness, arms, allocation."""
        return self._setting().split(", ", 1)[1] if ", " in self._setting() else self._setting()

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
        caption = Html(f"{bold('Power plan')}: {esc(self._setting())}; traffic: {esc(self.traffic)}")
        parts = [_table_html(self.designs()[["metric", "baseline", "sd", "variance_reduction", "n_units"]],
                             {"baseline": _num, "sd": _num, "variance_reduction": lambda v: _pct(v, 1),
                              "n_units": _int}, caption=caption)]
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

    # ---------------------------------------------------------------- power curve
    def _good(self, d: MetricDesign, alternative: str) -> float:
        """+1 / -1: the direction of a 'good' change of this metric under this plan's test."""
        if alternative == "larger":
            return 1.0
        if alternative == "smaller":
            return -1.0
        return 1.0 if d.better == "higher" else -1.0

    def power_curve(self, days: int | None = None, *, metric=None, effects=None) -> pd.DataFrame:
        """Closed-form power against the size of the true change, at one of the plan's durations.

        One row per metric x effect: ``change`` is the relative change in
        the metric's good direction (0.05 = 5% better; the direction of
        ``alternative`` for a one-sided plan), ``relative_effect`` the signed
        change, ``power`` the power with CUPED (the metric's covariates) and
        ``power_unadjusted`` without. The formulas are the plan's (t-test
        with the delta-method sd, or R's ``power.prop.test``), at the units
        per arm enrolled after ``days`` (default: the longest duration).
        ``effects`` are the changes (default 0 to 2.5 times the largest MDE
        at that duration).
        """
        if self.margin > 0:
            raise AbkitError("power_curve() is for plans without a non-inferiority margin; this plan's "
                             "to_frame() has the power to show non-inferiority by duration")
        frame = self.to_frame()
        listed = sorted(int(x) for x in frame.days.unique())
        day = listed[-1] if days is None else days
        if isinstance(day, bool) or not isinstance(day, (int, np.integer)) or int(day) not in listed:
            raise AbkitError(f"days={days!r} is not one of this plan's durations {listed}; pick one, or plan "
                             f"again with days=[..., {days}]")
        day = int(day)
        names = [d.metric for d in self.metrics]
        wanted = names if metric is None else ([metric] if isinstance(metric, str) else list(metric))
        unknown = [m for m in wanted if m not in names]
        if unknown:
            raise AbkitError(f"metric {unknown[0]!r} is not in this plan; metrics: {names}")
        at = frame[frame.days == day].set_index("metric")
        if effects is None:
            top = float(np.nanmax([abs(at.loc[m, "relative_mde"]) for m in wanted] + [np.nan]))
            top = top if np.isfinite(top) and top > 0 else 0.2
            grid = np.linspace(0.0, 2.5 * top, 61)
        else:
            grid = np.atleast_1d(np.asarray(effects, dtype=np.float64))
            if grid.ndim != 1 or not np.all(np.isfinite(grid)):
                raise AbkitError(f"effects={effects!r} must be finite relative changes, e.g. [0.02, 0.05]")
        rows = []
        correction = self.correction or "bonferroni"
        for d in self.metrics:
            if d.metric not in wanted:
                continue
            r = at.loc[d.metric]
            n_c, alt = float(r.n_control), str(r.alternative)
            rel = self._good(d, alt) * grid
            common = {"alpha": self.alpha, "ratio": self.ratio, "alternative": alt, "arms": self.arms,
                      "correction": correction}
            adj, raw = _closed_form_power(d, rel * d.baseline, n_c, **common)
            for e, rr, pa_, pr in zip(grid, rel, adj, raw):
                rows.append({"metric": d.metric, "days": day, "n_control": n_c, "n_treatment": n_c * self.ratio,
                             "change": float(e), "relative_effect": float(rr), "power": float(pa_),
                             "power_unadjusted": float(pr), "mde": abs(float(r.relative_mde)),
                             "alternative": alt})
        return pd.DataFrame(rows)

    # ---------------------------------------------------------------- plot
    def plot(self, kind: str = "mde", ax=None, *, days: int | None = None, metric=None, effects=None,
             simulated=None):
        """Plot the plan; returns the matplotlib Axes.

        * ``kind="mde"`` (default): the relative MDE (%) against the
          experiment's duration, one line per metric (dashed: the same
          metric without CUPED);
        * ``kind="power"``: the power against the size of the true change
          after ``days`` (see :meth:`power_curve`), one line per metric
          (dashed: without CUPED), the planned power as a horizontal line and
          each metric's MDE marked. ``simulated`` (a :class:`SimulatedPower`,
          or a list of them) overlays simulated powers with their Monte Carlo
          intervals.
        """
        import matplotlib.pyplot as plt

        if not isinstance(kind, str):           # plot(ax): the old signature
            kind, ax = "mde", kind
        if kind not in ("mde", "power"):
            raise AbkitError(f"kind={kind!r} is not known; use 'mde' (MDE by duration) or 'power' (power by "
                             "true effect)")
        if ax is None:
            _, ax = plt.subplots(figsize=(7.5, 4.2))
        colours = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
        if kind == "power":
            return self._plot_power(ax, colours, days, metric, effects, simulated)
        frame = self.to_frame()
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
        _finish_axes(ax)
        return ax

    def _plot_power(self, ax, colours, days, metric, effects, simulated):
        curve = self.power_curve(days, metric=metric, effects=effects)
        day = int(curve.days.iloc[0])
        for j, d in enumerate(self.metrics):
            rows = curve[curve.metric == d.metric]
            if not len(rows):
                continue
            c = colours[j % len(colours)]
            ax.plot(100 * rows.change, 100 * rows.power, "-", color=c, lw=2,
                    label=d.metric + (" (CUPED)" if d.covariates else ""))
            if d.covariates:
                ax.plot(100 * rows.change, 100 * rows.power_unadjusted, "--", color=c, lw=1.2,
                        label=f"{d.metric} (no CUPED)")
            mde = float(rows.mde.iloc[0])
            if np.isfinite(mde) and rows.change.min() <= mde <= rows.change.max():
                ax.plot([100 * mde], [100 * self.power], "o", color=c, ms=6)
                # upper left of the point: above this (rising) curve
                ax.annotate(f"MDE {mde:.1%}", (100 * mde, 100 * self.power), textcoords="offset points",
                            xytext=(-5, 5), ha="right", fontsize=8, color=c, bbox=_LABEL_BOX)
        ax.axhline(100 * self.power, color="#57606a", lw=0.8, ls=":")
        ax.annotate(f"planned power {self.power:.0%}", (1.0, 100 * self.power), xycoords=("axes fraction", "data"),
                    textcoords="offset points", xytext=(-2, -12), ha="right", fontsize=8, color="#57606a",
                    bbox=_LABEL_BOX)
        sims = [] if simulated is None else (list(simulated) if isinstance(simulated, (list, tuple))
                                             else [simulated])
        for k, sim in enumerate(sims):
            f = sim.to_frame()
            des = next((d for d in self.metrics if d.metric == sim.metric), None)
            good = self._good(des, str(f.alternative.iloc[0])) if des is not None else 1.0
            x = 100 * good * f.relative_effect.to_numpy()
            y = 100 * f.power.to_numpy()
            err = np.vstack([y - 100 * f.ci_lower.to_numpy(), 100 * f.ci_upper.to_numpy() - y])
            ax.errorbar(x, y, yerr=err, fmt="s", color="black", ms=5, capsize=3, lw=1.2, zorder=5,
                        label=(f"simulated, {sim.metric} ({int(f.n_sims.iloc[0]):,} tests per point, "
                               f"{sim.ci_level:.0%} CI)") if k == 0 else None)
        n_c = float(curve.n_control.iloc[0])
        ax.set_xlabel("true change in the metric's good direction (relative to baseline, %)")
        ax.set_ylabel("power: chance the test detects it (%)")
        ax.set_title(f"Power by true effect after {day} days ({n_c:,.0f} units in control; {self._test()})",
                     loc="left", fontsize=10)
        ax.set_ylim(0, 100)
        ax.set_xlim(left=min(0.0, ax.get_xlim()[0]))
        _finish_axes(ax, "lower right")          # rising curves leave the lower right empty
        return ax


_LABEL_BOX = {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85}


def _finish_axes(ax, legend_loc: str = "best") -> None:
    """Grid, legend (user text drawn literally), no top/right spines, tight layout."""
    legend = ax.legend(fontsize=8, frameon=False, loc=legend_loc)
    texts = [*legend.get_texts(), ax.xaxis.label, ax.yaxis.label, *(ax.get_children())]
    for text in texts:
        if hasattr(text, "set_parse_math"):
            text.set_parse_math(False)
    style_axes(ax)


def _closed_form_power(des: MetricDesign, delta, n_control, *, alpha, ratio, alternative, arms=2,
                       correction="bonferroni"):
    """The plan's closed-form power at absolute effects ``delta``: (with CUPED, without).

    Proportions without covariates: R's ``power.prop.test`` (NaN where the
    treatment proportion leaves (0, 1)); everything else the t-test with the
    (delta-method) unit sd and the design's variance reduction.
    """
    delta = np.atleast_1d(np.asarray(delta, dtype=np.float64))
    common = {"alpha": alpha, "ratio": ratio, "alternative": alternative, "arms": arms, "correction": correction}
    if des.kind == "proportion" and not des.covariates:
        pt = des.baseline + delta
        ok = (pt > 0) & (pt < 1)
        out = np.full(delta.shape, np.nan)
        if ok.any():
            out[ok] = power_proportion(des.baseline, pt[ok], n_control, **common).power
        return out, out
    adj = np.atleast_1d(power_mean(des.sd, delta, n_control, variance_reduction=des.variance_reduction,
                                   **common).power)
    raw = np.atleast_1d(power_mean(des.sd, delta, n_control, **common).power) if des.variance_reduction else adj
    return adj, raw


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


def always_valid_alpha(alpha: float = 0.05) -> float:
    """The fixed-horizon level whose critical value is the always-valid half-width, in standard errors.

    With the normal mixture tuned to the planned size (:class:`abkit.sequential.AlwaysValid`
    ``(planned_n=n)``: ``tau^2 = x V`` with ``x`` from
    :func:`abkit.stats.sequential.optimal_mixing_ratio`), the always-valid interval at
    the planned size is ``estimate +/- k se`` with the constant
    ``k = sqrt((1 + 1/x) (log(1 + x) + 2 log(1/alpha)))`` (Howard et al. 2021), so
    power, MDE and sample size of an always-valid test at that size are the
    fixed-horizon ones at level ``2 Phi(-k)`` (normal approximation).
    ``always_valid_alpha(0.05)`` is about 0.0024 (``k`` about 3.03, not 1.96).
    """
    from scipy import stats as _stats

    from .stats.sequential import always_valid_radius_factor, optimal_mixing_ratio

    k = float(always_valid_radius_factor(1.0, optimal_mixing_ratio(float(alpha)), float(alpha)))
    return float(2.0 * _stats.norm.sf(k))


def plan(data, metric, *, variant: str | None = None, control: Hashable = "control", alpha: float = 0.05,
         power: float = 0.8, ratio: float = 1.0, alternative: str | None = None, arms: int = 2,
         correction: str | None = "bonferroni", days=DEFAULT_DAYS, daily_units=None, population=None,
         uniques_by_day=None, traffic_share: float = 1.0, mdes=DEFAULT_MDES, margin: float = 0.0,
         cuped: bool = True, sequential: bool = False) -> PowerPlan:
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
        non-inferiority when the true effect is 0. It is the power of the
        rule the readout applies (:func:`abkit.verdict.guardrail_status`:
        the bad-side bound of the Fieller interval of ``r = a_t / a_c - 1``
        within the margin), i.e. of the one-sided test of the contrast
        ``a_t - (1 + m) a_c`` (lower is better) or ``a_t - (1 - m) a_c``
        (higher is better), whose variance is ``sigma^2 / n_t + (1 +/- m)^2
        sigma^2 / n_c``, not ``sigma^2 (1/n_t + 1/n_c)``: the ratio test of
        :func:`power_mean` (``relative=True``) and :func:`power_proportion`
        (``relative_margin=True``), with CUPED's adjusted sd for means and
        ``p q`` per arm for proportions. (The readout's interval is
        two-sided at ``1 - alpha``, so plan at ``alpha / 2`` to match it, as
        the ``abkit power`` spec runner does.)
    cuped : use the metrics' covariates (default True).
    sequential : plan for a test read with always-valid intervals
        (``analyze(sequential=AlwaysValid(planned_n=...))``, spec
        ``sequential: true``), the mixture tuned to each row's units: every
        formula then runs at :func:`always_valid_alpha` ``(alpha)`` (about
        0.0025 for alpha = 0.05), the level whose fixed-horizon critical value
        equals the always-valid half-width in standard errors. This is the
        power of the final look (a little conservative: the test may also
        stop earlier).

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
    if not isinstance(sequential, bool):
        raise AbkitError(f"sequential={sequential!r} must be True or False")
    level = always_valid_alpha(alpha) if sequential else alpha    # the always-valid half-width's level
    common = dict(alpha=level, ratio=ratio, arms=arms, correction=correction)
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
                                   margin=margin, relative_margin=True, unreachable="nan", **common)
                mde_abs[ok] = r.mde
                mde_raw[ok] = r.mde
                if margin > 0:
                    power_ni[ok] = power_proportion(des.baseline, des.baseline, nn[ok], alternative=alt,
                                                    margin=margin, relative_margin=True, **common).power
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
                "method": ("proportion (R power.prop.test)" if proportion else
                           ("t-test, delta method" if des.kind == "ratio" else "t-test")
                           + (" + CUPED" if des.covariates else ""))
                          + (f"; non-inferiority: ratio test of a_t - (1 {'+' if alt == 'smaller' else '-'} m) a_c "
                             "(the readout's Fieller rule)" if margin > 0 else ""),
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
                                             alternative=alt, margin=margin, relative_margin=True, **common)
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
        traffic=traffic, sequential=sequential,
    )


# =========================================================================
# simulation power: resample the history, inject a known effect, analyse
# =========================================================================
_KEY = "__abkit_simulated_arm__"
_MAX_ROWS = 2_000_000          # rows per simulated batch (bounds memory: ~16 MB per column)
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
    draws: tuple = ()            # per scenario: (p-values, estimates) of the simulated tests, in test order

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
        head = (f"Simulated power of '{self.metric}' ({self.method}; alpha {self.alpha:g}, {self.alternative}): "
                f"units resampled from {self.history_units:,} in the history, {self.injection_rule}; "
                f"{self.ci_level:.0%} {CI_METHOD} Monte Carlo intervals.")
        lines = [head]
        for r in self.rows:
            when = f", {int(r['days'])} days" if "days" in r and np.isfinite(r.get("days", np.nan)) else ""
            cf = f"; closed form {_pct(r['closed_form'], 1)}" if np.isfinite(r["closed_form"]) else ""
            fail = f"; {r['failed']} failed" if r["failed"] else ""
            lines.append(f"  effect {self._effect_text(r)}, {r['n_control']:,} + {r['n_treatment']:,} units{when}: "
                         f"power {_pct(r['power'], 1)} [{_pct(r['ci_lower'], 1)}, {_pct(r['ci_upper'], 1)}] "
                         f"({r['rejections']}/{r['n_sims']}){cf}{fail}")
        if self.note:
            lines.append("  note: " + self.note)
        return "\n".join(lines)

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        frame = self.to_frame()
        cols = [c for c in ("effect", "days", "n_control", "n_treatment", "n_sims", "power", "ci_lower",
                            "ci_upper", "closed_form", "failed") if c in frame.columns]
        fmt = {"n_control": _int, "n_treatment": _int, "n_sims": _int, "failed": _int, "days": _int,
               "power": lambda v: _pct(v, 1), "ci_lower": lambda v: _pct(v, 1), "ci_upper": lambda v: _pct(v, 1),
               "closed_form": lambda v: _pct(v, 1),
               "effect": (lambda v: _pct(v, 1)) if self.relative else _num}
        caption = Html(f"{bold('Simulated power')} of {esc(self.metric)} ({esc(self.method)}): "
                       f"{esc(self.injection_rule)}; {self.ci_level:.0%} {CI_METHOD} Monte Carlo intervals.")
        return _table_html(frame[cols], fmt, caption=caption)

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
                label = (f"{int(key)} days" if by_days else f"{int(key):,} units in control")
            else:
                x = g[size_key].to_numpy(dtype=float)
                label = f"effect {self._effect_text(g.iloc[0].to_dict())}"
            y = 100 * g.power.to_numpy()
            err = np.vstack([y - 100 * g.ci_lower.to_numpy(), 100 * g.ci_upper.to_numpy() - y])
            ax.errorbar(x, y, yerr=err, fmt="o", color=c, ms=5, capsize=3, lw=1.2,
                        label=f"simulated, {label}")
            if closed_form and self.design is not None and np.isfinite(g.closed_form.to_numpy()).any():
                if several_effects:
                    lo, hi = min(0.0, g[xcol].min()), max(0.0, g[xcol].max())
                    grid = np.linspace(lo, hi, 81)
                    delta = grid * self.baseline if self.relative else grid
                    n_c, n_t = float(g.n_control.iloc[0]), float(g.n_treatment.iloc[0])
                    cf, _ = _closed_form_power(self.design, delta, n_c, alpha=self.alpha, ratio=n_t / n_c,
                                               alternative=self.alternative, arms=2, correction=None)
                    ax.plot(scale * grid, 100 * cf, "-", color=c, lw=1.2, alpha=0.8, label=f"closed form, {label}")
                else:
                    ax.plot(x, 100 * g.closed_form.to_numpy(), "-", color=c, lw=1.2, alpha=0.8,
                            label=f"closed form, {label}")
        ax.axhline(100 * self.alpha, color="#57606a", lw=0.8, ls=":")
        if several_effects:
            ax.set_xlabel("true effect, relative to baseline (%)" if self.relative
                          else f"true effect on {self.metric} (absolute)")
        else:
            ax.set_xlabel("experiment duration (days)" if by_days else "units in the control arm")
        ax.set_ylabel("power: share of simulated tests\nthat reject (%)")
        n = int(f.n_sims.iloc[0])
        ax.set_title(f"Simulated power of {self.metric}: {n:,} resampled tests per point\n"
                     f"(bars: {self.ci_level:.0%} {CI_METHOD} Monte Carlo intervals)", loc="left", fontsize=10)
        ax.set_ylim(0, 100)
        _finish_axes(ax)
        return ax


def power_curve(plan_or_simulation, days: int | None = None, *, metric=None, effects=None, simulated=None,
                ax=None):
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
    raise AbkitError(f"power_curve() takes a PowerPlan (abkit.power.plan) or a SimulatedPower "
                     f"(abkit.power.simulate_power), not {type(plan_or_simulation).__name__}")


# ------------------------------------------------------------------ helpers
def _one_metric(metric) -> Metric:
    if isinstance(metric, (list, tuple)):
        if len(metric) != 1:
            raise AbkitError(f"simulate_power() takes one metric, got {len(metric)}; call it once per metric")
        metric = metric[0]
    if not isinstance(metric, Metric):
        raise AbkitError(f"{metric!r} is not a metric; use abkit.Mean, abkit.Proportion, abkit.Ratio or "
                         "abkit.Quantile")
    if metric.kind not in ("mean", "proportion", "ratio", "quantile"):
        raise AbkitError(f"metric '{metric.name}' is a {metric.kind.upper()} metric; simulate_power injects "
                         "effects into Mean, Proportion, Ratio and Quantile metrics only")
    return metric


def _sim_count(n_sims, quantile: bool) -> int:
    if n_sims is None:
        return DEFAULT_SIMS_QUANTILE if quantile else DEFAULT_SIMS
    if isinstance(n_sims, bool) or not isinstance(n_sims, (int, np.integer)) or n_sims < 10:
        raise AbkitError(f"n_sims={n_sims!r} must be a whole number >= 10 (simulated tests per scenario; "
                         "1000 gives a Monte Carlo standard error of 1.3 points at 80% power)")
    return int(n_sims)


def _sizes(n_per_arm, days, ratio, daily_units, population, uniques_by_day, traffic_share):
    """[(n_control, n_treatment, days or None)] from n_per_arm or from days and the traffic."""
    if (n_per_arm is None) == (days is None):
        raise AbkitError("give the size of the simulated tests: n_per_arm= (units in control; each treatment "
                         "arm gets ratio x that) or days= with the traffic (daily_units=, population=)")
    k = float(ratio)
    if n_per_arm is not None:
        n = np.atleast_1d(np.asarray(n_per_arm, dtype=np.float64))
        if n.ndim != 1 or not np.all(np.isfinite(n)) or np.any(n < 2):
            raise AbkitError(f"n_per_arm={n_per_arm!r} must be numbers >= 2 (units in the control arm)")
        n_c = np.ceil(n * (1 - 1e-12)).astype(np.int64)
        return [(int(c), max(round(c * k), 2), None) for c in dict.fromkeys(n_c.tolist())]
    d = _days(days)
    units, _ = _enrolled(d, daily_units, population, uniques_by_day, traffic_share)
    out = []
    for day, u in zip(d, units):
        n_c = round(float(u) / (1.0 + k))
        n_t = round(float(u) * k / (1.0 + k))
        if n_c < 2 or n_t < 2:
            raise AbkitError(f"after {int(day)} days only {u:.0f} units are enrolled; a simulated test needs at "
                             "least 2 per arm: use more days")
        out.append((n_c, n_t, int(day)))
    return out


def _history(data, metric: Metric, variant, control, unit):
    """The resampling population: the metric's columns (control arm only when ``variant`` is given)."""
    if isinstance(data, MomentSet):
        raise AbkitError("simulate_power() resamples units, so it needs the unit-level data (a DataFrame, "
                         "pyarrow Table or parquet/CSV path), not moments")
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
            raise DataError(f"control arm {control!r} not found in column '{variant}'; arms present: {arms}. "
                            "Pass control= with one of them (only the control arm is resampled)")
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
        elif self.kind == "quantile":
            self.column, self.denominator = metric.column, None
        else:
            self.column, self.denominator = metric.option("column", metric.target.numerator), None

    def rule(self) -> str:
        col, den = self.column, self.denominator
        if self.kind == "proportion":
            return (f"effect injected by setting a random share (p_t - p) / (1 - p) of the treatment units' 0s of "
                    f"'{col}' to 1 (p / p_t share of 1s to 0 for a decrease), so its expected proportion moves "
                    "by exactly the effect")
        if self.injection == "multiply":
            what = {"mean": f"'{col}'", "ratio": f"the numerator '{col}'", "quantile": f"'{col}'"}[self.kind]
            extra = " (every quantile moves by the same relative amount)" if self.kind == "quantile" else ""
            return f"effect injected by multiplying {what} of every treatment unit by (1 + relative effect){extra}"
        if self.kind == "ratio":
            return (f"effect injected by adding effect x '{den}' to the numerator '{col}' of every treatment unit "
                    "(the ratio moves by the effect; the units' linearized values do not change)")
        extra = " (every quantile moves by the effect)" if self.kind == "quantile" else ""
        return f"effect injected by adding the effect to '{col}' of every treatment unit{extra}"

    def check(self, delta: float) -> None:
        name = self.metric.name
        if self.kind == "proportion":
            pt = self.baseline + delta
            if not 0.0 <= pt <= 1.0:
                raise AbkitError(f"metric '{name}': the effect moves the proportion from {self.baseline:.4g} to "
                                 f"{pt:.4g}, outside [0, 1]; use a smaller effect")
        elif self.injection == "multiply" and delta != 0 and self.baseline == 0:
            raise AbkitError(f"metric '{name}' has baseline 0 in the history, so it cannot be multiplied into an "
                             "effect; use relative=False (an additive effect)")

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
    from .stats.ab import compare

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


def _analyse_quantile(values: np.ndarray, metric: Metric, n_c: int, alpha: float, units=None, counts=None):
    """The real quantile estimator (:func:`abkit.quantile.quantile_rows`) on one simulated test."""
    from .quantile import quantile_rows

    if units is None:
        arm = np.repeat(np.array([0, 1], dtype=np.int8), [n_c, values.size - n_c])
        frame = pd.DataFrame({_KEY: arm, metric.column: values})
    else:
        arm = np.repeat((np.arange(counts.size) >= n_c).astype(np.int8), counts)
        frame = pd.DataFrame({_KEY: arm, metric.column: values, metric.unit: units})
    (row,) = quantile_rows(frame, metric, _KEY, 0, [1], alpha)
    return row["p_value"], row["effect"]


def simulate_power(data, metric, effect, n_per_arm=None, *, days=None, relative: bool = True,
                   injection: str | None = None, n_sims: int | None = None, alpha: float = 0.05,
                   alternative: str = "two-sided", ratio: float = 1.0, seed: int | None = 0,
                   variant: str | None = None, control: Hashable = "control", daily_units=None, population=None,
                   uniques_by_day=None, traffic_share: float = 1.0, ci_level: float = 0.95,
                   max_rows: int = _MAX_ROWS) -> SimulatedPower:
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
    :func:`abkit.stats.ab.compare` (what :func:`abkit.analyze` runs) gives
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
            raise DataError(f"column '{metric.column}' has {int((~finite).sum()):,} missing or infinite values in "
                            f"the history (metric '{metric.name}'); declare the metric with dropna=True")
        if finite.sum() < 2:
            raise DataError(f"column '{metric.column}' has fewer than 2 values in the history")
        baseline = float(np.quantile(v[finite], metric.q))
    else:
        if getattr(metric, "needs_cap", False):
            from .quantile import resolve_caps

            (metric,) = resolve_caps(hist, [metric])
        (design,) = estimate_design(hist, metric)
        baseline = design.baseline
    if relative and baseline == 0 and np.any(effects != 0):
        raise AbkitError(f"metric '{metric.name}' has baseline 0 in the history, so a relative effect is 0 too; "
                         "give the effect in the metric's units with relative=False")
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
        object.__setattr__(analysed, "options",
                           tuple(sorted({**dict(metric.options), "nonnegative": False}.items())))

    # the resampling frame: numeric columns (and, for clustered quantiles, the rows of each unit)
    source = [c for c in metric.source_columns]
    from .sources import _to_float

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
    entropy = np.random.SeedSequence(seed).entropy       # drawn once when seed is None
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
            gens = [np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(n_c, n_t, done + j)))
                    for j in range(b)]
            idx = np.stack([g.integers(0, n_units, size=n_tot) for g in gens])
            uniform = np.stack([g.random(n_t) for g in gens]) if metric.kind == "proportion" else None
            if not quantile:
                cols = {c: a[idx] for c, a in arrays.items()}
                if groups is None or len(groups) != b * n_tot:
                    groups = _group_array(n_c, n_t, b)
                for i, dl in enumerate(deltas):
                    injected = inj.apply(cols, slice(n_c, None), float(dl), uniform)
                    p, est, errs = _analyse_moments(injected, analysed, groups, b, alpha)
                    p_all[i, done:done + b], est_all[i, done:done + b] = p, est
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
                raise failures[0]            # nothing could be analysed: a setup problem, not bad luck
            done += b
        for i, e in enumerate(effects):
            rej = _decisions(p_all[i], est_all[i], alternative, alpha)
            k = int(rej.sum())
            failed = int(np.isnan(p_all[i]).sum())
            lo, hi = monte_carlo_ci(k, sims, ci_level)
            pw = k / sims
            dl = float(deltas[i])
            wrong = (float(np.mean(np.sign(est_all[i][rej]) != np.sign(dl))) if (k and dl != 0) else np.nan)
            cf = np.nan
            if design is not None:
                cf = float(_closed_form_power(design, dl, float(n_c), alpha=alpha, ratio=n_t / n_c,
                                              alternative=alternative, arms=2, correction=None)[0][0])
            row = {"metric": metric.name, "effect": float(e), "relative_effect": float(rel_effects[i]),
                   "absolute_effect": dl}
            if day is not None:
                row["days"] = day
            row.update({"n_control": n_c, "n_treatment": n_t, "n_sims": sims, "rejections": k, "power": pw,
                        "ci_lower": float(lo), "ci_upper": float(hi), "mc_se": float(np.sqrt(pw * (1 - pw) / sims)),
                        "closed_form": cf, "wrong_direction": wrong, "failed": failed, "alpha": alpha,
                        "alternative": alternative, "injection": injection, "method": metric.method_label})
            rows.append(row)
            draws.append((p_all[i].copy(), est_all[i].copy()))
    notes = []
    if quantile and n_sims is None:
        notes.append(f"quantile metrics are analysed one simulated test at a time, so {sims} simulations by "
                     "default (Monte Carlo standard error up to 2.5 points); pass n_sims= for more")
    if injection == "multiply" and metric.kind in ("mean", "ratio") and np.any(deltas != 0):
        notes.append("a multiplied outcome also scales the treatment arm's sd by (1 + effect); the closed form "
                     "assumes equal variances, so it overstates the power of increases and understates that of "
                     "decreases a little (injection='add' keeps the variances equal)")
    if analysed is not metric:
        notes.append("a decrease added as effect x denominator makes some numerators negative; they are "
                     "analysed as they are (injection='multiply' keeps numerators >= 0)")
    if metric.option("cap") is not None:
        notes.append(f"outcome capped at {metric.option('cap'):.6g} (from the history) after the injection")
    return SimulatedPower(
        metric=metric.name, kind=metric.kind, rows=tuple(rows), baseline=float(baseline), relative=bool(relative),
        injection=injection, injection_rule=inj.rule(), alpha=alpha, alternative=alternative, ratio=float(ratio),
        seed=seed, ci_level=float(ci_level), method=metric.method_label, history_units=int(n_units),
        design=design, note="; ".join(notes), draws=tuple(draws),
    )


from .did.one_market import DetectableEffect, detectable_effect  # noqa: F401  issue 13.7
