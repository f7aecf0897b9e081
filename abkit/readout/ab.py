"""A/B readout analyses beyond the metric table: health checks, cumulative effect, segments.

Each function takes the validated spec (:class:`abkit.spec.ExperimentSpec`)
and works through the public API (:func:`abkit.moments`, :func:`abkit.analyze`),
so what the readout shows is what an analyst gets in a notebook:

* :func:`balance` - pre-period balance: per column the standardized mean
  difference and a Welch t-test (``abkit.analyze`` on the pre-period columns),
  plus a joint chi-square test of all columns (Hotelling-type Wald test of the
  difference in mean vectors, from the moments' covariance matrices);
* :func:`sample_size` - units reached vs planned (``planned_units``) and vs
  needed for the planned MDE (``mde``, ``power``), and the days run so far;
* :func:`dropped_units` - every unit left out of some number, and why;
* :func:`cumulative` - the primary metric's effect on all units exposed up to
  each day (daily moments, added up: ``abkit.moments(..., by=date)``);
* :func:`segments` - the primary metric per segment value with Holm/BH
  across segments and Cochran's Q test of heterogeneity;
* :func:`maturity_of` - for metrics with a maturity window (``window:``) and
  time-to-event metrics, how many units' windows had closed by ``data_end``
  (:func:`abkit.maturity.maturity`);
* :func:`time_to_event` - every time-to-event metric's Kaplan-Meier curves,
  restricted means, shares and medians (:func:`abkit.analyze_time_to_event`);
* :func:`always_valid_design`, :func:`always_valid_path` - for a sequential
  spec (``sequential: true``): the mixture fixed in advance (tuned to
  ``planned_units``) and every metric's always-valid path over the daily
  looks (for the chart; the verdict reads the current look's always-valid
  interval and p-value: valid at any look, and with an effect that changes
  over time (novelty, outcomes still accruing) it covers today's average
  effect, which an intersection of the past looks' intervals would not).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..analysis import analyze, moments
from ..errors import AbkitError
from ..maturity import maturity, parse_window, window_text
from ..metrics import Mean
from ..results import ExperimentResult
from ..stats.distributions import chi2_sf
from ..verdict import BALANCE_ALARM, DaysEstimate, days_to_detect

__all__ = [
    "Balance",
    "SampleSize",
    "Segments",
    "balance",
    "sample_size",
    "dropped_units",
    "days_elapsed",
    "cumulative",
    "segments",
    "always_valid_design",
    "always_valid_path",
    "maturity_of",
    "time_to_event",
    "SMD_FLAG",
    "MAX_SEGMENTS",
]

SMD_FLAG = 0.1
"""|standardized mean difference| above which a pre-period column is flagged (Austin 2009's rule of thumb)."""
MAX_SEGMENTS = 25
"""At most this many values per segment column are shown (the largest); the rest are counted."""


# =========================================================================== balance
@dataclass(frozen=True)
class Balance:
    """Pre-period balance between each treatment arm and control."""

    table: pd.DataFrame  # column, variant, control_mean, treatment_mean, smd, p_value
    joint: pd.DataFrame  # variant, chi2, df, p_value (one joint test per treatment arm)
    p_value: float  # joint p-value over all arms (Bonferroni across arms)
    columns: tuple[str, ...]
    error: str | None = None

    @property
    def alarm(self) -> bool:
        return bool(np.isfinite(self.p_value) and self.p_value < BALANCE_ALARM)

    @property
    def flagged(self) -> list[str]:
        """Columns with |SMD| above :data:`SMD_FLAG` in some arm."""
        if self.table.empty:
            return []
        return sorted(set(self.table.loc[self.table.smd.abs() > SMD_FLAG, "column"]))


def balance(spec, data=None) -> Balance:
    """Compare the pre-period columns (``spec.balance_columns``) between arms; see the module doc.

    Returns a :class:`Balance` with an ``error`` (and NaN p-value) instead of
    raising when the columns cannot be compared (e.g. missing values).
    """
    cols = tuple(spec.balance_columns)
    empty = pd.DataFrame(columns=["column", "variant", "control_mean", "treatment_mean", "smd", "p_value"])
    if not cols:
        return Balance(empty, pd.DataFrame(columns=["variant", "chi2", "df", "p_value"]), math.nan, cols)
    data = spec.open_data() if data is None else data
    metrics = [Mean(c, name=c) for c in cols]
    try:
        ms = moments(data, metrics, variant=spec.variant, joint=[cols])  # the joint test reads every pair
        res = analyze(ms, metrics, variant=spec.variant, control=spec.control, alpha=spec.alpha)
        block = ms.block_for(cols, False)
    except AbkitError as exc:
        return Balance(
            empty, pd.DataFrame(columns=["variant", "chi2", "df", "p_value"]), math.nan, cols, error=str(exc)
        )
    c = block.group_index(spec.control)
    rows, joint = [], []
    for arm in res.treatments:
        t = block.group_index(arm)
        var_c = np.diag(block.covariance(spec.control))
        var_t = np.diag(block.covariance(arm))
        pooled = np.sqrt((var_c + var_t) / 2.0)
        diff = block.mean[t] - block.mean[c]
        with np.errstate(invalid="ignore", divide="ignore"):
            smd = np.where(pooled > 0, diff / pooled, 0.0)
        for j, col in enumerate(cols):
            r = res.row(col, arm)
            rows.append(
                {
                    "column": col,
                    "variant": arm,
                    "control_mean": r["control_value"],
                    "treatment_mean": r["treatment_value"],
                    "smd": float(smd[j]),
                    "p_value": r["p_value"],
                }
            )
        S = block.covariance(spec.control) / block.n[c] + block.covariance(arm) / block.n[t]
        keep = np.diag(S) > 0
        if keep.any():
            Sk = S[np.ix_(keep, keep)]
            dk = diff[keep]
            stat = float(dk @ np.linalg.pinv(Sk, hermitian=True) @ dk)
            df = int(np.linalg.matrix_rank(Sk, hermitian=True))
            p = float(chi2_sf(stat, df)) if df > 0 else math.nan
        else:
            stat, df, p = 0.0, 0, math.nan
        joint.append({"variant": arm, "chi2": stat, "df": df, "p_value": p})
    joint_df = pd.DataFrame(joint)
    ps = joint_df.p_value.dropna()
    p_all = float(min(1.0, ps.min() * len(ps))) if len(ps) else math.nan
    return Balance(pd.DataFrame(rows), joint_df, p_all, cols)


# =========================================================================== sample size and days
def days_elapsed(spec, data=None) -> tuple[float | None, str]:
    """Days the test has run: from the ``date`` column (first to last exposure day, inclusive) when the
    spec names one, else from ``start`` and ``end``; ``(None, why)`` when unknown."""
    if spec.date:
        from ..sources import read_columns

        try:
            dates = pd.to_datetime(read_columns(spec.open_data() if data is None else data, [spec.date])[spec.date])
        except Exception as exc:  # noqa: BLE001 - a bad date column only removes this number
            return None, f"the date column '{spec.date}' could not be read as dates ({type(exc).__name__})"
        dates = dates.dropna()
        if len(dates):
            days = (dates.max().normalize() - dates.min().normalize()).days + 1
            return float(days), f"first to last exposure in column '{spec.date}'"
    if spec.start and spec.end:
        return float((spec.end - spec.start).days + 1), "the spec's start and end dates"
    return None, "no date column and no start/end dates in the spec"


@dataclass(frozen=True)
class SampleSize:
    units: int
    planned_units: int | None
    needed: DaysEstimate | None  # for the planned MDE (spec.mde), from the observed variance
    mde: float | None
    power: float
    days: float | None
    days_source: str
    sequential: bool = False  # units needed for the always-valid interval (a sequential readout)

    @property
    def reached_share(self) -> float | None:
        return self.units / self.planned_units if self.planned_units else None


def sample_size(
    spec, result: ExperimentResult, days: float | None = None, days_source: str = "", sequential=None
) -> SampleSize:
    """Units reached vs planned, and vs needed to detect ``spec.mde`` with ``spec.power``.

    ``sequential``: the :class:`abkit.sequential.AlwaysValid` design of an
    always-valid result (the units needed are then those at which the
    always-valid interval would detect the MDE: :func:`abkit.verdict.days_to_detect`);
    default: the result's own (``result.sequential``, mixture read from its rows).
    """
    units = int(sum(result.srm.observed))
    seq = getattr(result, "sequential", False) if sequential is None else sequential
    needed = None
    if spec.mde:
        # the least powered comparison decides (several arms)
        ests = [
            days_to_detect(
                result.row(spec.primary.name, arm),
                spec.mde,
                days or 1.0,
                alpha=spec.alpha,
                power=spec.power,
                units_now=units,
                sequential=seq,
            )
            for arm in result.treatments
        ]
        ests = [e for e in ests if math.isfinite(e.units_needed)]
        if ests:
            needed = max(ests, key=lambda e: e.units_needed)
            if days is None:
                needed = dataclasses.replace(needed, days_total=None, days_more=None)
    return SampleSize(
        units, spec.planned_units, needed, spec.mde, spec.power, days, days_source, seq is not None and seq is not False
    )


def dropped_units(
    result: ExperimentResult, spec, extra: Sequence[tuple[str, int]] = (), maturity: dict | None = None
) -> pd.DataFrame:
    """Units left out of some number, and why: rows without an arm, per-metric missing values, ``extra``.

    ``maturity`` (:func:`maturity_of`): a windowed metric's units whose window
    had not closed by the data's end are their own line, apart from units
    with a missing value.
    """
    total = int(sum(result.srm.observed)) + int(result.missing_variant)
    rows = []
    if result.missing_variant:
        rows.append((f"no arm in column '{result.variant}': left out of everything", result.missing_variant))
    by_metric = result.dropped_units()
    maturity = maturity or {}
    for m in spec.metrics:
        d = int(by_metric.get(m.name, 0))
        mat = maturity.get(m.name) if not getattr(m, "is_time_to_event", False) else None
        if mat is not None and d:
            open_ = min(d, mat.total_left_out)
            rows.append(
                (
                    f"exposed on or after {mat.first_immature_day:%b %d}: its {window_text(mat.window)} window "
                    f"had not closed by the data's end, left out of {m.name}",
                    open_,
                )
            )
            d -= open_
        if d:
            cols = tuple(m.columns)  # name the columns only when they are not just the metric's name
            what = "" if cols == (m.name,) else f" ({', '.join(cols)} missing)"
            rows.append((f"no value for {m.name}{what}: left out of that metric", d))
    rows += [(why, int(n)) for why, n in extra if n]
    return pd.DataFrame(
        {
            "reason": [r for r, _ in rows],
            "units": [n for _, n in rows],
            "share": [n / total if total else math.nan for _, n in rows],
        }
    )


# =========================================================================== maturity and time to event
def maturity_of(spec, data=None) -> dict:
    """Metric name -> :class:`abkit.maturity.Maturity`, for every metric with a window and every time-to-event
    metric (its horizon as the window: units followed for the whole horizon), when the spec has a ``date``
    column and ``data_end``; empty otherwise. One count query per distinct window."""
    if not (spec.date and spec.data_end is not None):
        return {}
    wanted = {}
    for m in spec.metrics:
        if m.is_time_to_event:
            seconds = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}[m.time_unit]
            wanted[m.name] = pd.Timedelta(seconds=m.time_horizon * seconds)
        elif m.window is not None:
            wanted[m.name] = parse_window(m.window)
    if not wanted:
        return {}
    data = spec.open_data() if data is None else data
    counted = {w: maturity(data, spec.variant, spec.date, w, spec.data_end) for w in set(wanted.values())}
    return {name: counted[w] for name, w in wanted.items()}


def time_to_event(spec, data=None, result: ExperimentResult | None = None) -> list:
    """Every time-to-event metric of the spec: :func:`abkit.analyze_time_to_event` (curves, restricted means,
    shares by a time, medians), in spec order."""
    from ..time_to_event import analyze_time_to_event

    metrics = [m for m in spec.build_metrics() if m.kind == "time_to_event"]
    if not metrics:
        return []
    data = spec.open_data() if data is None else data
    return [
        analyze_time_to_event(data, m, variant=spec.variant, control=spec.control, alpha=spec.alpha) for m in metrics
    ]


# =========================================================================== cumulative
def cumulative(spec, data=None, metric=None, result: ExperimentResult | None = None) -> tuple[pd.DataFrame, int]:
    """The primary metric's effect on all units exposed up to each day: ``(frame, units without a date)``.

    Daily moments (``abkit.moments(data, [metric], by=spec.date)``) are added
    up day by day and analysed; the frame has one row per day and treatment
    arm: ``date, variant, n, rel_effect, rel_ci_lower, rel_ci_upper, p_value, control_value``.
    Days on which an arm has no units yet are skipped.
    """
    if not spec.date:
        raise AbkitError("the spec names no date column (add `date: <column>`)")
    data = spec.open_data() if data is None else data
    metric = metric or next(m for m in spec.build_metrics() if m.name == spec.primary.name)
    if metric.kind == "time_to_event":
        return _cumulative_time_to_event(spec, data, metric)
    ms = moments(data, [metric], variant=spec.variant, by=spec.date)
    days = sorted(ms.segments, key=lambda d: pd.Timestamp(d))
    running = None
    out = []
    for d in days:
        part = ms.segment(d)
        running = part if running is None else running + part
        try:
            res = analyze(running, [metric], variant=spec.variant, control=spec.control, alpha=spec.alpha)
        except AbkitError:
            continue
        out += [_cumulative_row(d, arm, res.row(metric.name, arm)) for arm in res.treatments]
    no_arm = int(result.missing_variant) if result is not None else 0
    return pd.DataFrame(out), max(0, int(ms.missing_variant) - no_arm)


def _cumulative_row(day, arm, r) -> dict:
    return {
        "date": pd.Timestamp(day),
        "variant": arm,
        "n": r["n_control"] + r["n_treatment"],
        "rel_effect": r["rel_effect"],
        "rel_ci_lower": r["rel_ci_lower"],
        "rel_ci_upper": r["rel_ci_upper"],
        "p_value": r["p_value"],
        "control_value": r["control_value"],
    }


def _cumulative_time_to_event(spec, data, metric) -> tuple[pd.DataFrame, int]:
    """:func:`cumulative` for a time-to-event primary metric: event counts by exposure day, added up.

    One grouped count (:func:`abkit.time_to_event.event_counts_by`, ``by=spec.date``); the counts of the
    units exposed up to each day are the sum of the days' counts (disjoint units), analysed as
    :func:`abkit.analyze` does (restricted-mean difference on pseudo-observations). Each unit keeps its
    follow-up **as recorded at the data's end**: a point is the effect on the cohorts exposed by that day,
    not the estimate as it would have read on that day (that needs each unit's clock start, to censor its
    events after the day; a duration column does not carry it). Days on which an arm is not estimable yet
    (:func:`abkit.time_to_event.estimability`) are skipped. Clustered metrics (``unit=``) do not add up.
    """
    from ..time_to_event import estimability, event_counts_by, event_rows

    if metric.unit:
        raise AbkitError(
            f"the primary metric '{metric.name}' is clustered by '{metric.unit}': its counts by exposure day "
            "do not add up, so the effect over time is not drawn; abkit.analyze_time_to_event on the units "
            "exposed up to a day reads one point"
        )
    grouped = event_counts_by(data, metric, spec.date, variant=spec.variant)
    running = None
    out = []
    for day in sorted(grouped.counts, key=lambda d: pd.Timestamp(d)):
        part = grouped.counts[day]
        running = part if running is None else running + part
        if estimability(running, spec.control) is not None:
            continue
        ready = [a for a in running.arms if a != spec.control and estimability(running, a) is None]
        if not ready:
            continue
        rows = event_rows(
            None, metric, spec.variant, spec.control, ready, spec.alpha, [spec.control, *ready], counts=running
        )
        out += [_cumulative_row(day, r["variant"], r) for r, _ in rows]
    return pd.DataFrame(out), grouped.missing


# =========================================================================== segments
@dataclass(frozen=True)
class Segments:
    """The primary metric by the values of one segment column."""

    column: str
    table: pd.DataFrame  # segment, variant, n_control, n_treatment, rel_effect, rel_ci_lower, rel_ci_upper,
    # rel_se, p_value, p_value_adjusted, better, control_value, effect, outcome
    heterogeneity: pd.DataFrame  # variant, q, df, p_value, i2
    correction: str
    missing: int  # units without a value in the column (left out)
    hidden: int  # segment values not shown (beyond MAX_SEGMENTS)
    overall: dict  # variant -> (rel_effect, rel_ci_lower, rel_ci_upper)
    fixed_horizon: bool = False  # True for a sequential result: rows and `overall` are fixed-horizon CIs
    not_estimable: pd.DataFrame | None = None  # segment, variant, n_control, n_treatment, reason (time to event)
    unadjusted: tuple = ()  # (segment, dropped covariates, kept ones): a denominator 0 for every unit there


def segments(spec, column: str, result: ExperimentResult, data=None, metric=None) -> Segments:
    """Primary-metric effect per value of ``column``, from :func:`abkit.analyze_segments`.

    p-values are adjusted across every segment x arm of this column with the
    spec's ``correction`` (Holm when the spec has none); heterogeneity is
    Cochran's Q on the segment effects (the joint test of the treatment x
    segment interactions). The ``MAX_SEGMENTS`` largest segments are shown.
    """
    from ..segments import analyze_segments

    data = spec.open_data() if data is None else data
    metric = metric or next(m for m in spec.build_metrics() if m.name == spec.primary.name)
    correction = spec.correction or "holm"
    if metric.kind == "time_to_event":  # grouped event counts (abkit.time_to_event.event_counts_by)
        seg = analyze_segments(
            data,
            [metric],
            by=column,
            variant=spec.variant,
            control=spec.control,
            alpha=spec.alpha,
            correction=correction,
        )
        missing = seg.no_segment
    else:
        ms = moments(data, [metric], variant=spec.variant, by=column)
        seg = analyze_segments(ms, [metric], by=column, control=spec.control, alpha=spec.alpha, correction=correction)
        missing = max(0, int(ms.missing_variant) - int(result.missing_variant))
    frame = seg.to_frame()
    not_estimable = pd.DataFrame(
        list(seg.not_estimable), columns=[column, "metric", "variant", "n_control", "n_treatment", "reason"]
    )
    counted = pd.concat([frame, not_estimable]) if len(not_estimable) else frame
    sizes = counted.groupby(column, sort=False)[["n_control", "n_treatment"]].sum().sum(axis=1)
    shown = sorted(sizes.sort_values(ascending=False).index[:MAX_SEGMENTS], key=str)
    hidden = max(0, len(sizes) - MAX_SEGMENTS)
    table = frame[frame[column].isin(shown)].rename(columns={column: "segment"})
    table = table[
        [
            "segment",
            "variant",
            "n_control",
            "n_treatment",
            "rel_effect",
            "rel_ci_lower",
            "rel_ci_upper",
            "rel_se",
            "p_value",
            "p_value_adjusted",
            "better",
            "control_value",
            "effect",
        ]
    ].reset_index(drop=True)
    sig = table["p_value_adjusted"] < spec.alpha
    good = (table["effect"] > 0) == (table["better"] == "higher")  # the effect's sign (a lift may be n/a)
    table["outcome"] = np.where(sig, np.where(good, "better", "worse"), "neutral")
    het = seg.heterogeneity().rename(columns={"Q": "q"})[["variant", "q", "df", "p_value", "i2"]]
    # Segment intervals are fixed-horizon (abkit.analyze_segments has no always-valid mode): for a sequential
    # result the all-units band behind them is the fixed-horizon interval at this look too, so they compare.
    fixed = bool(getattr(result, "sequential", False))
    lo_key, hi_key = ("rel_ci_lower_fixed", "rel_ci_upper_fixed") if fixed else ("rel_ci_lower", "rel_ci_upper")
    overall = {}
    for arm in result.treatments:
        r = result.row(metric.name, arm)
        overall[arm] = (r["rel_effect"], r.get(lo_key, r["rel_ci_lower"]), r.get(hi_key, r["rel_ci_upper"]))
    unestimated = not_estimable[not_estimable[column].isin(shown)].rename(columns={column: "segment"})
    return Segments(
        column,
        table,
        het,
        correction,
        missing,
        hidden,
        overall,
        fixed,
        unestimated[["segment", "variant", "n_control", "n_treatment", "reason"]].reset_index(drop=True),
        tuple((u[column], u["covariates"], u["kept"]) for u in seg.unadjusted if u[column] in shown),
    )


# =========================================================================== always valid (sequential specs)
def always_valid_design(spec):
    """The always-valid design of a sequential spec, or None when the spec is not sequential.

    The mixture must be fixed before the data are seen (Howard et al. 2021,
    Sec. 3.5): it is tuned to the planned size
    (:class:`abkit.sequential.AlwaysValid` ``(planned_n=planned_units)``), the
    same at every look; a sequential spec without ``planned_units`` is refused
    (by the spec check, and here with the same message).
    """
    if not getattr(spec, "sequential", False):
        return None
    from ..sequential import AlwaysValid

    return AlwaysValid(planned_n=spec.planned_units)


def always_valid_path(spec, data=None, design=None):
    """Every moment-based metric's always-valid path over the daily looks (:func:`abkit.sequential.monitor`).

    A look per exposure day (``spec.date``) on all units exposed up to that
    day, with the mixture of ``design`` (default :func:`always_valid_design`:
    the planned size). Quantile metrics have no moments and are left out.
    """
    from ..sequential import monitor

    if not spec.date:
        raise AbkitError("the spec names no date column (add `date: <column>`): no daily looks to follow")
    design = design if design is not None else always_valid_design(spec)
    data = spec.open_data() if data is None else data
    metrics = [m for m in spec.build_metrics() if m.kind not in ("quantile", "time_to_event")]
    if not metrics:
        raise AbkitError(
            "no metric with moments to follow look by look (quantile and time-to-event metrics need the values)"
        )
    return monitor(
        data,
        metrics,
        by=spec.date,
        variant=spec.variant,
        control=spec.control,
        alpha=spec.alpha,
        planned_n=getattr(design, "planned_n", None),
        tau=getattr(design, "tau", None),
    )
