"""Test plans from history: the MDE by duration, the days per target effect, guardrail power.

:func:`plan` estimates each metric's design inputs from the data
(:func:`abkit.power.metric_design.estimate_design`) and runs the closed
forms of :mod:`abkit.stats.t_test_power` and
:mod:`abkit.stats.proportion_power` over the durations the traffic model of
:mod:`abkit.stats.enrollment` allows; :class:`PowerPlan` holds the tables,
the text and the charts.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .._html import Html, bold, esc
from ..errors import AbkitError
from ..stats.confidence_sequences import (
    always_valid_radius_factor,
    optimal_mixing_ratio,
)
from ..stats.enrollment import days_needed, uniques_after
from ..stats.power_inputs import ALTERNATIVES
from ..stats.proportion_power import (
    mde_proportion,
    power_proportion,
    sample_size_proportion,
)
from ..stats.t_test_power import mde_mean, power_mean, sample_size_mean
from .metric_design import MetricDesign, estimate_design
from .result_display import LABEL_BOX, finish_axes, fmt_int, fmt_num, fmt_pct, table_html

__all__ = ["DEFAULT_DAYS", "DEFAULT_MDES", "PowerPlan", "always_valid_alpha", "plan", "readout_level"]

DEFAULT_DAYS = (7, 14, 21, 28, 35, 42, 56)
DEFAULT_MDES = (0.01, 0.02, 0.03, 0.05, 0.10)


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
    sequential: bool = False  # planned for always-valid intervals (see plan(sequential=))
    test_level: float = float("nan")  # the level the formulas ran at: readout_level(alpha, ...) (see plan)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.duration_rows))

    def sample_sizes(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.sample_size_rows))

    def designs(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "metric": d.metric,
                    "kind": d.kind,
                    "better": d.better,
                    "baseline": d.baseline,
                    "sd": d.sd,
                    "variance_reduction": d.variance_reduction,
                    "sd_adjusted": d.sd_adjusted,
                    "n_units": d.n_units,
                    "covariates": ", ".join(d.covariates),
                }
                for d in self.metrics
            ]
        )

    # ---------------------------------------------------------------- text
    def _setting(self) -> str:
        alt = {"two-sided": "two-sided", "larger": "one-sided (increase)", "smaller": "one-sided (decrease)"}
        if self.margin > 0:
            interval = "always-valid interval" if self.sequential else "interval"
            how = (
                f"one-sided non-inferiority at {self.test_level:.2g} (the bad side of the readout's two-sided "
                f"{1 - self.alpha:.0%} {interval}), margin {self.margin:.1%} in each metric's bad direction"
            )
        else:
            how = alt.get(self.alternative, self.alternative)
        s = f"{self.power:.0%} power, alpha {self.alpha:g}{': ' if self.margin > 0 else ' '}{how}"
        if self.sequential and self.margin == 0:
            s += f", read with always-valid intervals (as a fixed test at alpha {self.test_level:.2g})"
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
            cuped = f", CUPED removes {d.variance_reduction:.0%} of the variance" if d.covariates else ""
            line = f"  {d.metric}: baseline {fmt_num(d.baseline)}, sd {fmt_num(d.sd)}{cuped}."
            if self.margin > 0:
                ok = rows[rows.power_noninferiority >= self.power]
                line += f" Non-inferiority at a {self.margin:.1%} margin: " + (
                    f"{int(ok.days.iloc[0])} days ({fmt_int(ok.units.iloc[0])} units)."
                    if len(ok)
                    else f"not reached within {int(rows.days.max())} days."
                )
            else:
                last = rows.iloc[-1]
                first = rows.iloc[0]
                line += (
                    f" MDE {fmt_pct(abs(first.relative_mde))} after {int(first.days)} days, "
                    f"{fmt_pct(abs(last.relative_mde))} after {int(last.days)} days."
                )
                s = sizes[sizes.metric == d.metric]
                feasible = s[s.days_needed.notna()] if len(s) else s
                if len(feasible):
                    r = feasible.iloc[0]
                    line += (
                        f" Smallest listed effect the traffic supports: {fmt_pct(abs(r.relative_mde), 1)}, "
                        f"{fmt_int(r.total)} units in {fmt_int(r.days_needed)} days."
                    )
                elif len(s):
                    line += (
                        f" None of the listed effects (down to {fmt_pct(s.relative_mde.abs().max(), 1)}) "
                        "is reachable with this traffic."
                    )
            lines.append(line)
        return "\n".join(lines)

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        caption = Html(f"{bold('Power plan')}: {esc(self._setting())}; traffic: {esc(self.traffic)}")
        parts = [
            table_html(
                self.designs()[["metric", "baseline", "sd", "variance_reduction", "n_units"]],
                {"baseline": fmt_num, "sd": fmt_num, "variance_reduction": lambda v: fmt_pct(v, 1), "n_units": fmt_int},
                caption=caption,
            )
        ]
        frame = self.to_frame()
        cols = ["metric", "days", "units", "n_control", "n_treatment", "relative_mde", "relative_mde_unadjusted"]
        if self.margin > 0:
            cols.append("power_noninferiority")
        parts.append(
            table_html(
                frame[cols],
                {
                    "units": fmt_int,
                    "n_control": fmt_int,
                    "n_treatment": fmt_int,
                    "relative_mde": lambda v: fmt_pct(v),
                    "relative_mde_unadjusted": lambda v: fmt_pct(v),
                    "power_noninferiority": lambda v: fmt_pct(v, 1),
                },
            )
        )
        sizes = self.sample_sizes()
        if len(sizes):
            parts.append(
                table_html(
                    sizes[["metric", "relative_mde", "n_control", "n_treatment", "total", "days_needed"]],
                    {
                        "relative_mde": lambda v: fmt_pct(v, 1),
                        "n_control": fmt_num,
                        "n_treatment": fmt_num,
                        "total": fmt_int,
                        "days_needed": fmt_int,
                    },
                )
            )
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
        with the delta-method sd, or the unpooled two-proportion z-test), at
        the plan's test level (:func:`readout_level`; the always-valid level
        for a sequential plan) and the units per arm enrolled after ``days``
        (default: the longest duration).
        ``effects`` are the changes (default 0 to 2.5 times the largest MDE
        at that duration).
        """
        if self.margin > 0:
            raise AbkitError(
                "power_curve() is for plans without a non-inferiority margin; this plan's "
                "to_frame() has the power to show non-inferiority by duration"
            )
        frame = self.to_frame()
        listed = sorted(int(x) for x in frame.days.unique())
        day = listed[-1] if days is None else days
        if isinstance(day, bool) or not isinstance(day, (int, np.integer)) or int(day) not in listed:
            raise AbkitError(
                f"days={days!r} is not one of this plan's durations {listed}; pick one, or plan "
                f"again with days=[..., {days}]"
            )
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
            level = self.test_level if np.isfinite(self.test_level) else self.alpha
            common = {
                "alpha": level,
                "ratio": self.ratio,
                "alternative": alt,
                "arms": self.arms,
                "correction": correction,
            }
            adj, raw = closed_form_power(d, rel * d.baseline, n_c, **common)
            for e, rr, pa_, pr in zip(grid, rel, adj, raw):
                rows.append(
                    {
                        "metric": d.metric,
                        "days": day,
                        "n_control": n_c,
                        "n_treatment": n_c * self.ratio,
                        "change": float(e),
                        "relative_effect": float(rr),
                        "power": float(pa_),
                        "power_unadjusted": float(pr),
                        "mde": abs(float(r.relative_mde)),
                        "alternative": alt,
                    }
                )
        return pd.DataFrame(rows)

    # ---------------------------------------------------------------- plot
    def plot(self, kind: str = "mde", ax=None, *, days: int | None = None, metric=None, effects=None, simulated=None):
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

        if not isinstance(kind, str):  # plot(ax): the old signature
            kind, ax = "mde", kind
        if kind not in ("mde", "power"):
            raise AbkitError(
                f"kind={kind!r} is not known; use 'mde' (MDE by duration) or 'power' (power by true effect)"
            )
        if ax is None:
            _, ax = plt.subplots(figsize=(7.5, 4.2))
        colours = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
        if kind == "power":
            return self._plot_power(ax, colours, days, metric, effects, simulated)
        frame = self.to_frame()
        for j, d in enumerate(self.metrics):
            rows = frame[frame.metric == d.metric]
            c = colours[j % len(colours)]
            ax.plot(
                rows.days,
                100 * rows.relative_mde.abs(),
                "o-",
                color=c,
                lw=2,
                ms=4,
                label=d.metric + (" (CUPED)" if d.covariates else ""),
            )
            if d.covariates:
                ax.plot(
                    rows.days,
                    100 * rows.relative_mde_unadjusted.abs(),
                    "--",
                    color=c,
                    lw=1.2,
                    label=f"{d.metric} (no CUPED)",
                )
        ax.set_xlabel("experiment duration (days)")
        what = "smallest true effect showing non-inferiority" if self.margin > 0 else "minimum detectable effect"
        ax.set_ylabel(f"{what}\n(relative to baseline, %)")
        ax.set_title(f"MDE by duration: {self._setting()}", loc="left", fontsize=10)
        ax.set_ylim(bottom=0)
        finish_axes(ax)
        return ax

    def _plot_power(self, ax, colours, days, metric, effects, simulated):
        curve = self.power_curve(days, metric=metric, effects=effects)
        day = int(curve.days.iloc[0])
        for j, d in enumerate(self.metrics):
            rows = curve[curve.metric == d.metric]
            if not len(rows):
                continue
            c = colours[j % len(colours)]
            ax.plot(
                100 * rows.change,
                100 * rows.power,
                "-",
                color=c,
                lw=2,
                label=d.metric + (" (CUPED)" if d.covariates else ""),
            )
            if d.covariates:
                ax.plot(
                    100 * rows.change,
                    100 * rows.power_unadjusted,
                    "--",
                    color=c,
                    lw=1.2,
                    label=f"{d.metric} (no CUPED)",
                )
            mde = float(rows.mde.iloc[0])
            if np.isfinite(mde) and rows.change.min() <= mde <= rows.change.max():
                ax.plot([100 * mde], [100 * self.power], "o", color=c, ms=6)
                # upper left of the point: above this (rising) curve
                ax.annotate(
                    f"MDE {mde:.1%}",
                    (100 * mde, 100 * self.power),
                    textcoords="offset points",
                    xytext=(-5, 5),
                    ha="right",
                    fontsize=8,
                    color=c,
                    bbox=LABEL_BOX,
                )
        ax.axhline(100 * self.power, color="#57606a", lw=0.8, ls=":")
        ax.annotate(
            f"planned power {self.power:.0%}",
            (1.0, 100 * self.power),
            xycoords=("axes fraction", "data"),
            textcoords="offset points",
            xytext=(-2, -12),
            ha="right",
            fontsize=8,
            color="#57606a",
            bbox=LABEL_BOX,
        )
        sims = [] if simulated is None else (list(simulated) if isinstance(simulated, (list, tuple)) else [simulated])
        for k, sim in enumerate(sims):
            f = sim.to_frame()
            des = next((d for d in self.metrics if d.metric == sim.metric), None)
            good = self._good(des, str(f.alternative.iloc[0])) if des is not None else 1.0
            x = 100 * good * f.relative_effect.to_numpy()
            y = 100 * f.power.to_numpy()
            err = np.vstack([y - 100 * f.ci_lower.to_numpy(), 100 * f.ci_upper.to_numpy() - y])
            ax.errorbar(
                x,
                y,
                yerr=err,
                fmt="s",
                color="black",
                ms=5,
                capsize=3,
                lw=1.2,
                zorder=5,
                label=(f"simulated, {sim.metric} ({int(f.n_sims.iloc[0]):,} tests per point, {sim.ci_level:.0%} CI)")
                if k == 0
                else None,
            )
        n_c = float(curve.n_control.iloc[0])
        ax.set_xlabel("true change in the metric's good direction (relative to baseline, %)")
        ax.set_ylabel("power: chance the test detects it (%)")
        ax.set_title(
            f"Power by true effect after {day} days ({n_c:,.0f} units in control; {self._test()})",
            loc="left",
            fontsize=10,
        )
        ax.set_ylim(0, 100)
        ax.set_xlim(left=min(0.0, ax.get_xlim()[0]))
        finish_axes(ax, "lower right")  # rising curves leave the lower right empty
        return ax


def closed_form_power(
    des: MetricDesign, delta, n_control, *, alpha, ratio, alternative, arms=2, correction="bonferroni"
):
    """The plan's closed-form power at absolute effects ``delta``: (with CUPED, without).

    Proportions without covariates: the unpooled two-proportion z-test the
    readout runs (NaN where the treatment proportion leaves (0, 1)); everything
    else the t-test with the (delta-method) unit sd and the design's variance
    reduction.
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
    adj = np.atleast_1d(power_mean(des.sd, delta, n_control, variance_reduction=des.variance_reduction, **common).power)
    raw = np.atleast_1d(power_mean(des.sd, delta, n_control, **common).power) if des.variance_reduction else adj
    return adj, raw


def check_days(days) -> np.ndarray:
    d = np.asarray(list(days) if not np.isscalar(days) else [days])
    if d.size == 0 or d.dtype.kind not in "iuf" or np.any(d <= 0) or np.any(d != np.round(d)):
        raise AbkitError(f"days={days!r} must be positive whole numbers of days, e.g. (7, 14, 28)")
    return np.unique(d.astype(np.int64))


def enrolled_units(days: np.ndarray, daily_units, population, uniques_by_day, traffic_share):
    if uniques_by_day is not None:
        if daily_units is not None or population is not None:
            raise AbkitError("give either uniques_by_day or daily_units (with population), not both")
        u = np.asarray(uniques_by_day, dtype=np.float64)
        if u.ndim != 1 or u.size == 0 or np.any(np.diff(u) < 0) or not np.all(np.isfinite(u)):
            raise AbkitError("uniques_by_day must be a non-decreasing 1-d curve: unique units after day 1, 2, ...")
        if days.max() > u.size:
            raise AbkitError(
                f"days go up to {days.max()} but uniques_by_day covers {u.size} days; extend the curve or shorten days="
            )
        share = float(traffic_share)
        return share * u[days - 1], f"uniques_by_day curve ({fmt_int(u[-1])} after {u.size} days)" + (
            f", {share:.0%} of traffic" if share != 1 else ""
        )
    if daily_units is None:
        raise AbkitError(
            "plan() needs the traffic: daily_units= (eligible units a day, with population= for "
            "repeat visitors) or uniques_by_day= (cumulative unique units by day)"
        )
    units = np.asarray(uniques_after(days, daily_units, population, traffic_share), dtype=np.float64)
    text = f"{fmt_int(daily_units)} eligible units a day"
    if population is not None:
        text += f" from a population of {fmt_int(population)} (repeat visitors)"
    if traffic_share != 1:
        text += f", {traffic_share:.0%} of traffic in the test"
    return units, text


def always_valid_alpha(alpha: float = 0.05) -> float:
    """The fixed-horizon level whose critical value is the always-valid half-width, in standard errors.

    With the normal mixture tuned to the planned size (:class:`abkit.sequential.AlwaysValid`
    ``(planned_n=n)``: ``tau^2 = x V`` with ``x`` from
    :func:`abkit.stats.confidence_sequences.optimal_mixing_ratio`), the always-valid interval at
    the planned size is ``estimate +/- k se`` with the constant
    ``k = sqrt((1 + 1/x) (log(1 + x) + 2 log(1/alpha)))`` (Howard et al. 2021), so
    power, MDE and sample size of an always-valid test at that size are the
    fixed-horizon ones at level ``2 Phi(-k)`` (normal approximation).
    ``always_valid_alpha(0.05)`` is about 0.0024 (``k`` about 3.03, not 1.96).
    """
    k = float(always_valid_radius_factor(1.0, optimal_mixing_ratio(float(alpha)), float(alpha)))
    return float(2.0 * stats.norm.sf(k))


def readout_level(alpha: float = 0.05, *, sequential: bool = False, guardrail: bool = False) -> float:
    """The level of the test the readout applies, for the closed forms: one rule for every plan.

    * A primary or secondary metric: the two-sided test at ``alpha``
      (the readout's ``1 - alpha`` interval excludes 0), or, read with
      always-valid intervals (``sequential``), at :func:`always_valid_alpha`
      ``(alpha)``, whose critical value is the always-valid half-width at the
      planned size.
    * A guardrail with a non-inferiority margin (``guardrail``): the readout
      calls it ok when the bad-side bound of that same two-sided interval is
      within the margin (:func:`abkit.verdict.guardrail_status`), i.e. the
      one-sided test at half that level: ``alpha / 2``, or
      ``always_valid_alpha(alpha) / 2``.

    :func:`plan` applies it (``alpha`` is the readout's alpha), and so does
    the ``abkit power`` spec runner (:mod:`abkit.readout.plan`), which calls
    :func:`plan`.
    """
    level = always_valid_alpha(alpha) if sequential else float(alpha)
    return level / 2.0 if guardrail else level


def plan(
    data,
    metric,
    *,
    variant: str | None = None,
    control: Hashable = "control",
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    alternative: str | None = None,
    arms: int = 2,
    correction: str | None = "bonferroni",
    days=DEFAULT_DAYS,
    daily_units=None,
    population=None,
    uniques_by_day=None,
    traffic_share: float = 1.0,
    mdes=DEFAULT_MDES,
    margin: float = 0.0,
    cuped: bool = True,
    sequential: bool = False,
) -> PowerPlan:
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
    estimated ``variance_reduction``; proportions without covariates the
    two-proportion z-test with unpooled variances (:func:`mde_proportion`),
    the test the readout runs. Effects are in the metric's good direction
    (``better``), which matters only for proportions and one-sided tests.
    Every formula runs at the level of the test the readout applies,
    :func:`readout_level` (guardrails at ``alpha / 2``, sequential tests at
    the always-valid level).

    Parameters
    ----------
    data : DataFrame, pyarrow Table, parquet/CSV path, or a MomentSet.
    metric : an :class:`abkit.Mean`, :class:`abkit.Proportion` or
        :class:`abkit.Ratio`, or a list of them. Covariates are used for CUPED.
    variant, control : the arm column and control arm of A/A or past A/B
        data (default None: all rows are one population).
    alpha : the readout's significance level (its two-sided ``1 - alpha``
        intervals); the formulas run at :func:`readout_level` ``(alpha)``.
    power, ratio, arms, correction : as in :func:`sample_size_mean`.
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
        ``p q`` per arm for proportions. The readout's interval is two-sided
        at ``1 - alpha``, so its bad-side bound is a one-sided test at
        ``alpha / 2``: the plan runs there (:func:`readout_level`; with
        ``sequential``, at half the always-valid level), the same rule as
        the ``abkit power`` spec runner.
    cuped : use the metrics' covariates (default True).
    sequential : plan for a test read with always-valid intervals
        (``analyze(sequential=AlwaysValid(planned_n=...))``, spec
        ``sequential: true``), the mixture tuned to each row's units: every
        formula then runs at :func:`always_valid_alpha` ``(alpha)`` (about
        0.0024 for alpha = 0.05; half that for a guardrail), the level whose
        fixed-horizon critical value equals the always-valid half-width in
        standard errors. This is the power of the final look (a little
        conservative: the test may also stop earlier). Give the readout the
        planned units as ``planned_n`` (spec: ``planned_units``).

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
        raise AbkitError(
            "a non-inferiority margin needs a one-sided test; leave alternative=None to follow "
            "each metric's better= direction"
        )
    d = check_days(days)
    units, traffic = enrolled_units(d, daily_units, population, uniques_by_day, traffic_share)
    share_c = 1.0 / (1.0 + (arms - 1) * float(ratio))
    n_c = units * share_c
    mdes = np.atleast_1d(np.asarray(mdes, dtype=np.float64)) if mdes is not None else np.array([])
    if np.any(mdes <= 0) or not np.all(np.isfinite(mdes)):
        raise AbkitError(
            f"mdes={mdes.tolist()} must be positive relative effects (e.g. 0.02 for 2%); the "
            "direction follows each metric's better="
        )
    if not isinstance(sequential, bool):
        raise AbkitError(f"sequential={sequential!r} must be True or False")
    level = readout_level(alpha, sequential=sequential, guardrail=margin > 0)  # the readout's test
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
        tiny = n_c * (1 + ratio) < 3  # too few units for a t-test
        nn = np.where(tiny, np.nan, n_c)
        ok = ~tiny
        mde_abs = np.full(d.shape, np.nan)
        mde_raw = np.full(d.shape, np.nan)
        power_ni = np.full(d.shape, np.nan)
        if ok.any():
            if proportion:
                r = mde_proportion(
                    des.baseline,
                    nn[ok],
                    power=power,
                    alternative=alt,
                    direction="increase" if good > 0 else "decrease",
                    margin=margin,
                    relative_margin=True,
                    unreachable="nan",
                    **common,
                )
                mde_abs[ok] = r.mde
                mde_raw[ok] = r.mde
                if margin > 0:
                    power_ni[ok] = power_proportion(
                        des.baseline,
                        des.baseline,
                        nn[ok],
                        alternative=alt,
                        margin=margin,
                        relative_margin=True,
                        **common,
                    ).power
            else:
                kw = dict(
                    power=power, alternative=alt, baseline=des.baseline, margin=margin, relative_margin=True, **common
                )
                mde_abs[ok] = mde_mean(des.sd, nn[ok], variance_reduction=des.variance_reduction, **kw).mde
                mde_raw[ok] = mde_mean(des.sd, nn[ok], **kw).mde
                if margin > 0:
                    power_ni[ok] = power_mean(
                        des.sd,
                        0.0,
                        nn[ok],
                        alternative=alt,
                        baseline=des.baseline,
                        relative=True,
                        margin=margin,
                        variance_reduction=des.variance_reduction,
                        **common,
                    ).power
            if alt == "two-sided" and not proportion:
                mde_abs, mde_raw = good * mde_abs, good * mde_raw
        for j, day in enumerate(d):
            row = {
                "metric": des.metric,
                "days": int(day),
                "units": float(units[j]),
                "n_control": float(n_c[j]),
                "n_treatment": float(n_c[j] * ratio),
                "mde": float(mde_abs[j]),
                "relative_mde": float(mde_abs[j] / des.baseline),
                "relative_mde_unadjusted": float(mde_raw[j] / des.baseline),
                "baseline": des.baseline,
                "sd": des.sd,
                "variance_reduction": des.variance_reduction,
                "alternative": alt,
                "method": (
                    "two-proportion z-test, unpooled (the readout's test)"
                    if proportion
                    else ("t-test, delta method" if des.kind == "ratio" else "t-test")
                    + (" + CUPED" if des.covariates else "")
                )
                + (
                    f"; non-inferiority: ratio test of a_t - (1 {'+' if alt == 'smaller' else '-'} m) a_c "
                    "(the readout's Fieller rule)"
                    if margin > 0
                    else ""
                ),
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
                res = sample_size_proportion(
                    des.baseline,
                    des.baseline * (1 + eff),
                    power=power,
                    alternative=alt,
                    margin=margin,
                    relative_margin=True,
                    **common,
                )
            else:
                res = sample_size_mean(
                    des.sd,
                    eff,
                    power=power,
                    alternative=alt,
                    variance_reduction=des.variance_reduction,
                    baseline=des.baseline,
                    relative=True,
                    margin=margin,
                    **common,
                )
            try:
                need = days_needed(
                    res.total,
                    daily_units,
                    population=population,
                    uniques_by_day=uniques_by_day,
                    traffic_share=traffic_share,
                )
            except AbkitError:
                need = None
            size_rows.append(
                {
                    "metric": des.metric,
                    "relative_mde": eff,
                    "mde": eff * des.baseline,
                    "n_control": float(res.n_control),
                    "n_treatment": float(res.n_treatment),
                    "total": int(res.total),
                    "days_needed": float("nan") if need is None else int(need),
                    "margin": margin,
                    "alternative": alt,
                }
            )
    return PowerPlan(
        metrics=tuple(designs),
        duration_rows=tuple(rows),
        sample_size_rows=tuple(size_rows),
        alpha=float(alpha),
        power=float(power),
        alternative=alt_used if margin > 0 else (alternative or "two-sided"),
        arms=int(arms),
        ratio=float(ratio),
        correction=correction if arms > 2 else None,
        margin=margin,
        traffic=traffic,
        sequential=sequential,
        test_level=float(level),
    )
