"""Rollout readouts (``kind: did``): the panel, the estimates and the HTML of a difference-in-differences page.

A rollout launched unit by unit (market by market, week by week) is not
randomized: its impact is estimated by comparing how the outcome changed in
launched units with how it changed in comparable units that had not (yet)
launched. The readout notebook (``abkit/templates/did_readout.ipynb``) calls
:mod:`abkit.did` directly (``did.staggered``, ``aggregate``,
``AggregateResult.pretrend``); this module holds the small steps around it:

* :func:`load_panel` - one row per unit x period with the analysis outcome
  (``log`` of the rate by default, so effects are relative changes), each
  unit's launch period, and the rows dropped and why;
* :func:`staggered` - the spec's Callaway & Sant'Anna design for one outcome,
  with a universal base period (:data:`BASE_PERIOD`);
* :func:`effect` - an aggregated effect on the analysis scale -> a relative
  change with its confidence interval; :func:`timing` - the effect early
  after launch and later;
* :func:`secondary_effects` - the other outcomes, each with its pre-trend test;
* :func:`robustness` - placebo launch dates, the other control group, TWFE
  for comparison (with the Goodman-Bacon decomposition) and wild cluster
  bootstrap p-values;
* the charts, and what each section of the page says (``*_context``: plain data) with its
  ``*_html`` twin rendering a template of ``templates/html/pages/rollout_*.html.j2`` (or the
  shared header, verdict and details templates), which escapes every value.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..did.diagnostics import FEW_TREATED_CLUSTERS
from ..did.panel import classify_first_treated
from ..errors import DataError
from ..formatting import short_label
from ..plots import style_axes
from ..results import format_p, format_pct
from ..verdict import COLOURS, Verdict, p_text
from .pages import render_page
from .render import _text, chart_image

__all__ = [
    "Panel",
    "Effect",
    "Check",
    "Robustness",
    "Timing",
    "BASE_PERIOD",
    "load_panel",
    "staggered",
    "effect",
    "pretrend_of",
    "timing",
    "timing_text",
    "robustness",
    "secondary_effects",
    "plural",
    "header_html",
    "details_html",
    "verdict_html",
    "effects_html",
    "trends_html",
    "event_study_html",
    "robustness_html",
    "methodology_html",
    "summary",
    "plot_trends",
    "plot_event_study",
    "decision_rule_text",
    "FIRST",
    "LAUNCHED",
    "RANDOMIZATION_REPS",
    "few_treated_words",
    "few_treated_method_text",
    "header_context",
    "details_context",
    "verdict_context",
    "effects_context",
    "trends_context",
    "event_study_context",
    "robustness_context",
    "methodology_context",
]

FIRST = "first_treated_period"
LAUNCHED = "launched"
_GREEN, _RED, _GREY, _BLUE = "#1a7f37", "#cf222e", "#57606a", "#0969da"


def plural(column: str) -> str:
    """A readable plural of a unit/period column name: ``market`` -> ``markets``, ``store_id`` -> ``stores``."""
    word = str(column)
    for suffix in ("_id", "_code", "_key"):
        if word.lower().endswith(suffix) and len(word) > len(suffix):
            word = word[: -len(suffix)]
    word = word.replace("_", " ").strip() or "unit"
    return word if word.endswith("s") else word + "s"


# =========================================================================== panel
@dataclass(frozen=True)
class Panel:
    """Unit x period rows ready for :mod:`abkit.did`.

    ``frame`` holds the unit and time columns (time as numbers), the cluster
    and covariate columns, ``first_treated_period`` (NaN = never launched),
    ``launched`` (0/1) and one analysis column per outcome (``y[name]``).
    ``dropped[name]`` counts the rows an outcome cannot use, by reason.
    """

    frame: pd.DataFrame
    unit: str
    time: str
    y: dict
    scale: str
    dropped: dict
    n_rows: int
    period_labels: dict | None = None  # numeric period -> original label, when time was a date

    @property
    def first(self) -> str:
        return FIRST

    @property
    def launched(self) -> str:
        return LAUNCHED

    @property
    def n_units(self) -> int:
        return int(self.frame[self.unit].nunique())

    @property
    def periods(self) -> np.ndarray:
        return np.sort(self.frame[self.time].unique())

    @property
    def cohorts(self) -> dict:
        """Launch period -> number of units launched then."""
        per_unit = self.frame.groupby(self.unit, sort=False)[FIRST].first()
        counts = per_unit.dropna().value_counts().sort_index()
        return {(int(k) if float(k).is_integer() else float(k)): int(v) for k, v in counts.items()}

    @property
    def n_never(self) -> int:
        return int(self.frame.groupby(self.unit, sort=False)[FIRST].first().isna().sum())

    def period_label(self, t) -> str:
        if self.period_labels is not None and t in self.period_labels:
            return str(self.period_labels[t])
        return f"{int(t)}" if float(t).is_integer() else f"{t:g}"

    def column(self, outcome: str) -> str:
        """The analysis column of an outcome."""
        return self.y[outcome]


def _analysis_name(outcome: str, scale: str, taken: set) -> str:
    name = f"log {outcome}" if scale == "log" else outcome
    while name in taken:
        name += " (outcome)"
    return name


def load_panel(spec) -> Panel:
    """Read the spec's columns and build the :class:`Panel` (see the module doc)."""
    from ..sources import read_columns

    df = read_columns(spec.open_data(), list(spec.columns)).copy()
    n_rows = len(df)
    if n_rows == 0:
        raise DataError(f"the data ({spec.data_label}) has no rows")
    unit, time = spec.unit, spec.time
    bad = df[unit].isna() | df[time].isna()
    if bad.any():
        df = df[~bad].copy()
    labels = None
    tcol = df[time]
    if pd.api.types.is_numeric_dtype(tcol.dtype) and not pd.api.types.is_bool_dtype(tcol.dtype):
        tnum = tcol.astype("float64")
    else:
        try:
            tdates = pd.to_datetime(tcol)
        except (TypeError, ValueError):
            raise DataError(
                f"column '{time}' must hold period numbers (e.g. week 1..52) or dates; got values like {tcol.iloc[0]!r}"
            ) from None
        uniq = np.sort(tdates.unique())
        tnum = pd.Series(np.searchsorted(uniq, tdates.to_numpy()) + 1.0, index=df.index)
        labels = {float(i + 1): pd.Timestamp(u).date().isoformat() for i, u in enumerate(uniq)}
    df[time] = tnum
    if df.duplicated([unit, time]).any():
        n = int(df.duplicated([unit, time]).sum())
        raise DataError(
            f"{n} rows repeat a ({unit}, {time}) pair; a rollout panel has one row per {unit} and "
            f"{time}. Aggregate first (abkit.did.aggregate_panel)"
        )
    if spec.first_treated:
        raw = df[spec.first_treated]
        if labels is not None and not pd.api.types.is_numeric_dtype(raw.dtype):
            uniq_dates = np.array([pd.Timestamp(v) for v in labels.values()], dtype="datetime64[ns]")
            dates = pd.to_datetime(raw)
            first = pd.Series(
                np.where(dates.isna(), np.nan, np.searchsorted(uniq_dates, dates.to_numpy()) + 1.0), index=df.index
            )
        else:
            first = pd.to_numeric(raw, errors="coerce").astype("float64")
            nonnum = raw.notna() & first.isna()
            if nonnum.any():
                raise DataError(
                    f"column '{spec.first_treated}' must hold the launch period (a number like "
                    f"{df[time].iloc[0]:g}) or be empty for never-launched units; got "
                    f"{raw[nonnum].iloc[0]!r}"
                )
        # the one never-treated rule of abkit.did: missing = never; 0 only when 0 is not a period; refuse ambiguity
        first = pd.Series(
            classify_first_treated(
                first.to_numpy(dtype=np.float64, na_value=np.nan),
                np.sort(df[time].unique()),
                spec.first_treated,
                time,
                units=df[unit].to_numpy(),
            ),
            index=df.index,
        )
        first = first.where(np.isfinite(first))  # NaN = never launched in the Panel
        spread = first.groupby(df[unit]).agg(lambda s: s.nunique(dropna=False))
        if (spread > 1).any():
            bad_units = list(spread[spread > 1].index[:5])
            raise DataError(
                f"column '{spec.first_treated}' must be the same in every row of a {unit} (its launch "
                f"period); it varies for {bad_units}"
            )
    else:
        d = pd.to_numeric(df[spec.treatment], errors="coerce")
        if not d.dropna().isin([0, 1]).all() or d.isna().any():
            raise DataError(f"column '{spec.treatment}' must hold 0 (not launched) or 1 (launched) in every row")
        first_by_unit = df[time].where(d == 1).groupby(df[unit]).min()
        first = df[unit].map(first_by_unit).astype("float64")
        switched_off = (d == 0) & (df[time] >= first)
        if switched_off.any():
            units = list(df.loc[switched_off, unit].unique()[:5])
            raise DataError(
                f"column '{spec.treatment}' switches back to 0 after launch for {units}; a rollout "
                "needs launched units to stay launched"
            )
    df[FIRST] = first.to_numpy()
    df[LAUNCHED] = (df[time] >= df[FIRST].fillna(np.inf)).astype("float64")
    y, dropped = {}, {}
    taken = set(df.columns)
    for o in spec.outcomes:
        reasons: dict[str, int] = {}
        if bad.any():
            reasons[f"missing {unit} or {time}"] = int(bad.sum())
        if o.is_ratio:
            num = pd.to_numeric(df[o.numerator], errors="coerce").astype("float64")
            den = pd.to_numeric(df[o.denominator], errors="coerce").astype("float64")
            miss = num.isna() | den.isna()
            if miss.any():
                reasons[f"missing {o.numerator} or {o.denominator}"] = int(miss.sum())
            zero = ~miss & (den <= 0)
            if zero.any():
                reasons[f"{o.denominator} <= 0"] = int(zero.sum())
            val = (num / den.where(den > 0)).astype("float64")
        else:
            val = pd.to_numeric(df[o.column], errors="coerce").astype("float64")
            miss = val.isna()
            if miss.any():
                reasons[f"missing {o.column}"] = int(miss.sum())
        if spec.scale == "log":
            nonpos = val.notna() & (val <= 0)
            if nonpos.any():
                reasons[f"{o.name} <= 0 (no logarithm; use scale: level)"] = int(nonpos.sum())
            val = np.log(val.where(val > 0))
        name = _analysis_name(o.name, spec.scale, taken)
        taken.add(name)
        df[name] = val.to_numpy()
        y[o.name] = name
        dropped[o.name] = reasons
    keep = [
        c
        for c in dict.fromkeys(
            [unit, time, *([spec.cluster] if spec.cluster else []), *spec.covariates, FIRST, LAUNCHED, *y.values()]
        )
    ]
    frame = df[keep].sort_values([unit, time], ignore_index=True)
    return Panel(
        frame=frame, unit=unit, time=time, y=y, scale=spec.scale, dropped=dropped, n_rows=n_rows, period_labels=labels
    )


# =========================================================================== effects
@dataclass(frozen=True)
class Effect:
    """An aggregated DiD effect on the analysis scale and as a relative change of the outcome.

    ``df``: degrees of freedom of the t reference of the CI and p-value
    (``inf`` = normal); ``pretrend_p``: the outcome's joint pre-trend test
    (NaN when not computed).
    """

    outcome: str
    better: str
    scale: str
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    p_value: float
    bootstrap_p: float
    rel: float
    rel_ci_lower: float
    rel_ci_upper: float
    baseline: float  # level scale: counterfactual mean of the launched unit-periods (for relative changes)
    alpha: float
    label: str = ""
    df: float = math.inf
    pretrend_p: float = math.nan
    few_treated: str | None = None  # e.g. "only 1 launched market": the p-values above are unreliable
    randomization_p: float = math.nan  # randomization test over which units launched (run when few_treated)
    randomization_words: str = ""  # how it was computed, for the reasons ("exact over all 27 ...")

    @property
    def significant(self) -> bool:
        """p below alpha; with few treated units also the randomization test's p (the usual p-values are not
        to be trusted then: :data:`abkit.did.FEW_TREATED_CLUSTERS`)."""
        if self.few_treated:
            return bool(self.p_value < self.alpha and self.randomization_p < self.alpha)
        return bool(self.p_value < self.alpha)

    @property
    def outcome_word(self) -> str:
        """'better' / 'worse' / 'neutral' given the direction that is good."""
        if not self.significant:
            return "neutral"
        good = (self.rel > 0) == (self.better == "higher")
        return "better" if good else "worse"

    def relative(self, values):
        """Analysis-scale values (effects, CI bounds) -> relative changes."""
        v = np.asarray(values, dtype=float)
        if self.scale == "log":
            return np.expm1(v)
        return v / self.baseline if self.baseline else np.full_like(v, np.nan)


def _baseline(panel: Panel, column: str, estimate: float) -> float:
    """Counterfactual mean of the launched unit-periods: their mean minus the effect (level scale)."""
    f = panel.frame
    post = (f[LAUNCHED] == 1) & f[column].notna()
    if not post.any():
        return math.nan
    return float(f.loc[post, column].mean() - estimate)


RANDOMIZATION_REPS = 1999
"""Random assignments of the readout's randomization test when they are too many to enumerate."""


def few_treated_words(agg, panel: Panel) -> str | None:
    """'only 1 launched market' / 'only 3 never-launched markets' when a result flags few treated clusters."""
    if not getattr(agg, "few_treated_clusters", False):
        return None
    units = plural(panel.unit)
    parts = []
    for n, what in (
        (getattr(agg, "n_treated_clusters", 0), "launched"),
        (getattr(agg, "n_untreated_clusters", 0), "never-launched"),
    ):
        if n < FEW_TREATED_CLUSTERS:
            parts.append(f"{n} {what} {units if n != 1 else panel.unit}")
    return "only " + " and ".join(parts) if parts else None


def effect(agg, panel: Panel, outcome, *, label: str = "", pretrend=None) -> Effect:
    """An :class:`abkit.did.AggregateResult` (or DiD result, or window average) -> :class:`Effect`.

    ``log`` scale: the effect on log(outcome) ``b`` is the relative change
    ``exp(b) - 1``, and so are its CI bounds (exact, the transform is monotone).
    ``level`` scale: relative change = effect / counterfactual mean of the
    launched unit-periods (their observed mean minus the effect), and the CI
    bounds likewise (treating that mean as known; a close approximation when
    the panel is large). ``pretrend``: the outcome's
    :class:`abkit.did.PretrendTest`, whose p-value is kept. With few launched
    (or never-launched) units (``agg.few_treated_clusters``) the effect carries
    ``few_treated`` and, for a Callaway & Sant'Anna aggregation, the p-value of
    its randomization test over which units launched (exact when the
    assignments number at most :data:`RANDOMIZATION_REPS`, else that many
    seeded draws); :attr:`Effect.significant` then needs both.
    """
    est, lo, hi = float(agg.estimate), float(agg.ci_lower), float(agg.ci_upper)
    boot: float | None = getattr(agg, "boot_p_value", None)
    if boot is None:
        boot = getattr(agg, "wild_p_value", math.nan)
    df = float(getattr(agg, "df", math.inf))
    pre_p = float(pretrend.p_value) if pretrend is not None else math.nan
    base = _baseline(panel, panel.column(outcome.name), est) if panel.scale == "level" else math.nan
    proto = Effect(
        outcome.name,
        outcome.better,
        panel.scale,
        est,
        float(agg.se),
        lo,
        hi,
        float(agg.p_value),
        float(boot),
        0.0,
        0.0,
        0.0,
        base,
        float(agg.alpha),
        label,
        df,
        pre_p,
    )
    r, rl, rh = proto.relative([est, lo, hi])
    few = few_treated_words(agg, panel)
    ri_p, ri_words = math.nan, ""
    if few and hasattr(agg, "randomization_test"):
        ri = agg.randomization_test(reps=RANDOMIZATION_REPS, seed=0)
        ri_p = float(ri.p_value)
        ri_words = (
            f"exact over all {ri.total_assignments:,} ways to choose which {plural(panel.unit)} launched "
            if ri.exact
            else f"{ri.n_assignments - 1:,} random choices of which {plural(panel.unit)} launched "
        )
        ri_words += f"(smallest possible p {ri.min_p_value:.2g})"
    return Effect(
        outcome.name,
        outcome.better,
        panel.scale,
        est,
        float(agg.se),
        lo,
        hi,
        float(agg.p_value),
        float(boot),
        float(r),
        float(min(rl, rh)),
        float(max(rl, rh)),
        base,
        float(agg.alpha),
        label,
        df,
        pre_p,
        few,
        ri_p,
        ri_words,
    )


BASE_PERIOD = "universal"
"""Base period of the readout's Callaway & Sant'Anna estimates: every event time, before and after launch,
is measured against the period before launch, so the event-study plot compares like with like (Roth 2024,
"Interpreting event-studies from recent difference-in-differences methods"). The overall effect does not
depend on it."""


def staggered(panel: Panel, spec, outcome, control_group: str | None = None):
    """The Callaway & Sant'Anna estimate of one outcome with the spec's design (universal base period)."""
    from .. import did

    return did.staggered(
        panel.frame,
        panel.column(outcome.name),
        panel.unit,
        panel.time,
        FIRST,
        control_group=control_group or spec.control_group,
        method=spec.method,
        covariates=list(spec.covariates) or None,
        base_period=BASE_PERIOD,
        alpha=spec.alpha,
    )


def pretrend_of(dynamic):
    """The joint pre-trend test of a dynamic aggregation's pre-launch rows, or a NaN test naming why not."""
    from .. import did
    from ..errors import AbkitError

    try:
        return dynamic.pretrend()
    except AbkitError as exc:
        return did.PretrendTest(np.nan, 0.0, np.nan, np.nan, np.nan, _short(exc))


def secondary_effects(panel: Panel, spec) -> list[tuple[object, Effect | None, str | None]]:
    """(outcome, effect or None, error text or None) per secondary outcome: the primary's design and pre-trend test."""
    out: list[tuple[object, Effect | None, str | None]] = []
    for o in spec.secondary:
        try:
            cs = staggered(panel, spec, o)
            dyn = cs.aggregate("dynamic", min_e=-spec.leads, max_e=spec.lags, reps=0)
            out.append((o, effect(cs.aggregate("simple"), panel, o, pretrend=pretrend_of(dyn)), None))
        except Exception as exc:  # noqa: BLE001 - one secondary outcome must not sink the readout
            out.append((o, None, _short(exc)))
    return out


@dataclass(frozen=True)
class Timing:
    """The effect early after launch and later on: averages of the event-time effects over two windows."""

    early: Effect
    late: Effect
    early_periods: tuple[int, int]
    late_periods: tuple[int, int]


def timing(dynamic, panel: Panel, outcome) -> Timing | None:
    """Early (first third of the post-launch window, e.g. weeks 0-3 of 0-12) vs later effect, or None.

    Each is the average of the event-time effects in its window
    (:meth:`abkit.did.AggregateResult.average`, with its CI); shown to say
    whether the effect built up after launch, which the overall average
    hides. None with fewer than 3 post-launch periods.
    """
    t = dynamic.table
    ref = t["reference"].astype(bool) if "reference" in t else pd.Series(False, index=t.index)
    post = t.loc[(t.event_time >= 0) & ~ref, "event_time"]
    if len(post) < 3:
        return None
    last = int(post.max())
    k = max(1, round((last + 1) / 3))
    early = effect(dynamic.average(0, k - 1), panel, outcome, label=f"0-{k - 1}")
    late = effect(dynamic.average(k, last), panel, outcome, label=f"{k}-{last}")
    return Timing(early, late, (0, k - 1), (k, last))


def timing_text(tm: Timing | None, panel: Panel) -> str:
    """One plain sentence: the effect in the first periods after launch and later."""
    if tm is None:
        return ""
    tw = plural(panel.time)
    level = f"{1 - tm.early.alpha:.0%} CI"

    def part(e: Effect, lo: int, hi: int) -> str:
        span = f"{panel.time} {lo}" if lo == hi else f"{tw} {lo}\u2013{hi}"
        return (
            f"{format_pct(e.rel, 1)} in {span} after launch ({level} {format_pct(e.rel_ci_lower, 1)} to "
            f"{format_pct(e.rel_ci_upper, 1)})"
        )

    return f"Over time: {part(tm.early, *tm.early_periods)}; {part(tm.late, *tm.late_periods)}."


# =========================================================================== robustness
@dataclass(frozen=True)
class Check:
    """One row of the robustness table."""

    name: str
    detail: str
    effect: Effect | None
    wild_p: float = math.nan
    verdict: str = ""  # plain words: "passes", "fails", "consistent", "differs", ...
    good: bool | None = None  # colours the verdict: True green, False red, None grey
    error: str | None = None
    randomization_p: float = math.nan  # few launched units: the placebo's randomization test decides


@dataclass(frozen=True)
class Robustness:
    checks: tuple[Check, ...]
    twfe: object | None = None  # abkit.did.DiDResult
    twfe_warning: str | None = None  # the Goodman-Bacon warning, when it applies
    bacon: pd.DataFrame | None = None  # by kind of comparison: weight, estimate
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def placebo_p_values(self) -> list[float]:
        """The smaller of the analytic and wild bootstrap p-values of each placebo that could be estimated (with
        few launched units, its randomization test's p-value instead)."""
        out = []
        for c in self.checks:
            if c.name.startswith("Placebo") and c.effect is not None:
                if math.isfinite(c.randomization_p):
                    out.append(c.randomization_p)
                else:
                    out.append(min(c.effect.p_value, c.wild_p) if math.isfinite(c.wild_p) else c.effect.p_value)
        return out


def _consistent(main: Effect, other: Effect) -> tuple[str, bool | None]:
    inside = main.ci_lower <= other.estimate <= main.ci_upper
    same_sign = (other.estimate > 0) == (main.estimate > 0)
    if inside:
        return "consistent with the main estimate", True
    if same_sign:
        return "same direction, different size", None
    return "different direction: treat the main estimate with caution", False


def robustness(panel: Panel, spec, main: Effect) -> Robustness:
    """Placebo launch dates, the other control group, and TWFE with wild cluster bootstrap p-values."""
    from .. import did

    y = panel.column(spec.outcome.name)
    o = spec.outcome
    alpha = spec.alpha
    checks: list[Check] = [
        Check(
            "Main estimate",
            f"Callaway & Sant'Anna ({_METHOD_WORDS[spec.method]}), "
            f"{_control_words(spec.control_group, panel)} as controls",
            main,
            main.bootstrap_p,
            "",
            None,
        )
    ]
    other = "not_yet_treated" if spec.control_group == "never_treated" else "never_treated"
    try:
        cs2 = staggered(panel, spec, o, control_group=other)
        e2 = effect(cs2.aggregate("simple"), panel, o)
        words, good = _consistent(main, e2)
        checks.append(
            Check("Other control group", f"{_control_words(other, panel)} as controls", e2, e2.bootstrap_p, words, good)
        )
    except Exception as exc:  # noqa: BLE001 - e.g. no never-treated units: report, do not fail
        checks.append(
            Check("Other control group", f"{_control_words(other, panel)} as controls", None, error=_short(exc))
        )
    cluster = spec.cluster or panel.unit
    twfe_res, warning_text, bacon = None, None, None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            twfe_res = did.twfe(
                panel.frame,
                y,
                LAUNCHED,
                panel.unit,
                panel.time,
                cluster=cluster,
                covariates=list(spec.covariates) or None,
                alpha=alpha,
            )
        flagged = [str(w.message) for w in caught if issubclass(w.category, did.DiDWarning)]
        if twfe_res.bacon is not None:
            bacon = twfe_res.bacon.by_kind()
        units, tw = plural(panel.unit), plural(panel.time)
        if flagged:
            fw = twfe_res.bacon.forbidden_weight if twfe_res.bacon is not None else math.nan
            share = f"{fw:.0%} of its weight" if math.isfinite(fw) else "part of its weight"
            warning_text = (
                f"The TWFE regression puts {share} on comparisons that use already-launched {units} "
                f"as controls, and those comparisons disagree with the clean ones by more than the "
                f"TWFE standard error. Such comparisons are biased when the effect changes with time "
                f"since launch (Goodman-Bacon 2021), and TWFE also weights {units} and {tw} "
                "differently from the main estimate: read its number as a comparison only. The main "
                "estimate never uses already-launched units as controls."
            )
        e3 = effect(twfe_res, panel, o)
        words, good = _consistent(main, e3)
        if warning_text:
            words, good = f"{words}; see the note below", None
        checks.append(
            Check(
                "Two-way fixed effects",
                "classic TWFE regression, for comparison",
                e3,
                twfe_res.wild_p_value,
                words,
                good,
            )
        )
    except Exception as exc:  # noqa: BLE001
        checks.append(
            Check("Two-way fixed effects", "classic TWFE regression, for comparison", None, error=_short(exc))
        )
    tw = plural(panel.time)
    for s in spec.placebo_shifts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", did.DiDWarning)
                pl = did.placebo(panel.frame, y, panel.unit, panel.time, FIRST, shift=s, cluster=cluster, alpha=alpha)
            ep = effect(pl, panel, o)
            wild = pl.wild_p_value
            worst = min(ep.p_value, wild) if math.isfinite(wild) else ep.p_value
            ri_p = math.nan
            if main.few_treated:  # the p-values above are unreliable: test over which units launched
                ri_p = _placebo_randomization_p(panel, y, s, alpha)
                worst = ri_p
            ok = worst >= alpha
            words = "passes: no fake effect" if ok else "fails: a fake effect before launch"
            if math.isfinite(ri_p):
                words += f" (randomization p = {format_p(ri_p)})"
            checks.append(
                Check(
                    f"Placebo launch {s} {tw} early",
                    f"fake launch {s} {tw} before the real one, pre-launch data only; should show no effect",
                    ep,
                    wild,
                    words,
                    ok,
                    randomization_p=ri_p,
                )
            )
        except Exception as exc:  # noqa: BLE001
            checks.append(Check(f"Placebo launch {s} {tw} early", "fake launch date", None, error=_short(exc)))
    return Robustness(tuple(checks), twfe_res, warning_text, bacon)


def _placebo_randomization_p(panel: Panel, y: str, shift: int, alpha: float) -> float:
    """The randomization test of a placebo launch ``shift`` periods early (TWFE on pre-launch rows, as
    :func:`abkit.did.placebo`), over which units launched."""
    from .. import did

    f = panel.frame
    first = f[FIRST].to_numpy(dtype=np.float64)
    t = f[panel.time].to_numpy(dtype=np.float64)
    keep = ~np.isfinite(first) | (t < first)
    # periods renumbered from shift + 1 (TWFE does not depend on the numbering), so that fake launch periods
    # before the data stay positive (treated throughout) rather than reading as 0 or negative codes
    offset = shift + 1 - float(np.nanmin(t))
    pre = pd.DataFrame(
        {
            "unit": f[panel.unit].to_numpy()[keep],
            "period": (t + offset)[keep],
            "y": f[y].to_numpy()[keep],
            "fake_first": (first - shift + offset)[keep],
        }
    )
    return float(
        did.randomization_test(pre, "y", "unit", "period", "fake_first", reps=RANDOMIZATION_REPS, alpha=alpha).p_value
    )


def _short(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 240 else text[:237] + "..."


# =========================================================================== charts
_PALETTE = ["#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#cf222e", "#0550ae", "#6639ba"]


def _cohort_labels(panel: Panel) -> pd.Series:
    f = panel.frame
    return f[FIRST].map(
        lambda v: "never launched" if not np.isfinite(v) else f"launched in {panel.time} {panel.period_label(v)}"
    )


def plot_trends(panel: Panel, outcome, ax=None):
    """Each launch cohort's outcome relative to the never-launched units, over time (the raw DiD).

    With never-launched units: the cohort mean minus the never-launched
    mean, period by period (of log(outcome) on the log scale, shown as
    ``100 exp(gap_t - gap_pre)``; in levels as ``gap_t - gap_pre``, in the
    outcome's units), ``gap_pre`` its average before the first launch.
    Seasonality common to all units cancels, so under parallel trends each
    line stays flat until its cohort launches, and the step after launch is
    the effect. Without never-launched units, each cohort's own outcome
    indexed to 100 before the first launch.
    """
    import matplotlib.pyplot as plt

    f = panel.frame
    col = panel.column(outcome.name)
    cohorts = panel.cohorts
    first_launch = min(cohorts) if cohorts else f[panel.time].max() + 1
    lab = _cohort_labels(panel)
    means = f.assign(cohort=lab).groupby(["cohort", panel.time], sort=True)[col].mean().unstack("cohort")
    launch_of = {f"launched in {panel.time} {panel.period_label(k)}": k for k in cohorts}
    relative = "never launched" in means.columns and bool(launch_of)
    log = panel.scale == "log"
    if ax is None:
        _, ax = plt.subplots(figsize=(8.6, 4.1))
    units = short_label(plural(panel.unit), 30)
    pre = np.asarray(means.index < first_launch)
    order = sorted(means.columns, key=lambda c: (c != "never launched", launch_of.get(c, 0), c))
    for i, c in enumerate(order):
        n_units = int(f.loc[lab == c, panel.unit].nunique())
        name = short_label(f"{c} ({n_units} {units if n_units != 1 else panel.unit})", 60)
        if relative:
            if c == "never launched":
                continue
            gap = means[c] - means["never launched"]
            base = gap[pre].mean() if pre.any() else gap.iloc[0]
            yv = 100 * np.exp(gap - base) if log else gap - base
        else:
            base = means[c][pre].mean() if pre.any() else means[c].dropna().iloc[0]
            yv = 100 * np.exp(means[c] - base) if log else 100 * means[c] / base
        never = c == "never launched"
        colour = "black" if never else _PALETTE[i % len(_PALETTE)]
        ax.plot(means.index, yv, color=colour, lw=2.4 if never else 1.6, label=name)
        if c in launch_of:
            ax.axvline(launch_of[c], color=colour, lw=1, ls=":")
    flat = 100 if (log or not relative) else 0
    ax.axhline(flat, color="#57606a", lw=0.8)
    if pre.any():
        ax.axvspan(means.index.min() - 0.5, first_launch - 0.5, color="#8c959f", alpha=0.08, lw=0)
    ax.set_xlabel(short_label(panel.time), parse_math=False)
    first_txt = short_label(f"{panel.time} {panel.period_label(first_launch)}")
    if relative:
        ylabel = f"vs never-launched {units} (= 100 before)" if log else f"minus never-launched {units}, change"
        title = f"{short_label(outcome.name)} of each launch cohort relative to the never-launched {units}"
    else:
        ylabel = f"{short_label(outcome.name)}, indexed (= 100 before)"
        title = f"{short_label(outcome.name)} by launch cohort (average before {first_txt} = 100)"
    ax.set_ylabel(ylabel, parse_math=False)
    ax.set_title(title, loc="left", fontsize=10, parse_math=False)
    leg = ax.legend(fontsize=8, frameon=False, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    for t in leg.get_texts():
        t.set_parse_math(False)
    style_axes(ax, alpha=0.25, tight=False)
    if panel.period_labels:
        ticks = ax.get_xticks()
        ax.set_xticks(ticks, [panel.period_label(t) if t in panel.period_labels else "" for t in ticks])
    ax.figure.tight_layout()
    return ax


def plot_event_study(dynamic, main: Effect, panel: Panel, ax=None):
    """Relative effect by periods since launch: points with pointwise CIs, shaded uniform (sup-t) band.

    The reference period (the one before launch, 0 by construction with a
    universal base period) is a hollow point without a bar, and the band is
    drawn separately before and after launch, never through it.
    """
    import matplotlib.pyplot as plt

    t = dynamic.table
    x = t["event_time"].to_numpy(dtype=float)
    ref = t["reference"].to_numpy(dtype=bool) if "reference" in t else np.zeros(x.size, bool)
    est = main.relative(t["estimate"]) * 100
    lo, hi = main.relative(t["ci_lower"]) * 100, main.relative(t["ci_upper"]) * 100
    blo, bhi = main.relative(t["band_lower"]) * 100, main.relative(t["band_upper"]) * 100
    if ax is None:
        _, ax = plt.subplots(figsize=(8.6, 4.1))
    level = f"{1 - dynamic.alpha:.0%}"
    time, times = short_label(panel.time, 30), short_label(plural(panel.time), 30)  # column names, as shown
    shown = ~ref & np.isfinite(lo) & np.isfinite(hi)
    first = True
    for seg in (x < 0, x >= 0):
        m = seg & shown & np.isfinite(blo) & np.isfinite(bhi)
        if m.any():
            ax.fill_between(
                x[m],
                blo[m],
                bhi[m],
                color=_BLUE,
                alpha=0.13,
                lw=0,
                label=f"{level} uniform band (all {times} at once)" if first else None,
            )
            first = False
    for mask, colour, name in ((shown & (x < 0), _GREY, "before launch"), (shown & (x >= 0), _BLUE, "after launch")):
        if mask.any():
            ax.errorbar(
                x[mask],
                est[mask],
                yerr=[est[mask] - lo[mask], hi[mask] - est[mask]],
                fmt="o",
                color=colour,
                capsize=2.5,
                ms=4.5,
                lw=1.2,
                label=f"{name}: effect with {level} CI",
            )
    if ref.any():
        ax.plot(
            x[ref],
            np.zeros(int(ref.sum())),
            "o",
            ms=6,
            mfc="white",
            mec=_GREY,
            mew=1.4,
            label=f"{time} before launch: the reference (0 by construction)",
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(-0.5, color="#8c959f", lw=1, ls=":")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"{times} since launch (0 = launch {time})", parse_math=False)
    ax.set_ylabel(f"change in {short_label(main.outcome)} (%)", parse_math=False)
    ax.set_title(
        f"Effect on {short_label(main.outcome)} by {time} since launch, against the {time} before launch",
        loc="left",
        fontsize=9.5,
        parse_math=False,
    )
    leg = ax.legend(fontsize=8, frameon=False, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    for tx in leg.get_texts():
        tx.set_parse_math(False)
    style_axes(ax, alpha=0.25)
    return ax


# =========================================================================== HTML
_METHOD_WORDS = {"dr": "doubly robust", "reg": "outcome regression", "ipw": "inverse probability weighting"}


def _where(panel: Panel) -> str:
    return f"launched {plural(panel.unit)}"


def decision_rule_text(spec, few_treated: str | None = None) -> str:
    o = spec.outcome
    text = (
        f"Worked if {o.name} moved in the good direction ({o.better} is better) with p < {spec.alpha:g} "
        f"(analytic and bootstrap). Made it worse if it moved significantly the other way. Invalid if the "
        f"joint pre-trend test rejects (p < {spec.alpha:g}). Otherwise no detectable impact."
    )
    if few_treated:
        text += (
            f" With fewer than {FEW_TREATED_CLUSTERS} launched or never-launched units ({few_treated} here) "
            "those p-values are unreliable: the randomization test over which units launched decides instead, "
            "and an effect it does not confirm is Inconclusive."
        )
    return text


def _dates(spec) -> str | None:
    if spec.start and spec.end:
        return f"{spec.start.isoformat()} to {spec.end.isoformat()}"
    if spec.start:
        return f"from {spec.start.isoformat()}"
    if spec.end:
        return f"until {spec.end.isoformat()}"
    return None


def header_context(spec, panel: Panel | None = None) -> dict:
    """The title block (``header.html.j2``): name, owner, dates, primary outcome and hypothesis."""
    facts = []
    if spec.owner:
        facts.append(("Owner", spec.owner))
    dates = _dates(spec)
    if dates:
        facts.append(("Dates", dates))
    facts.append(("Primary outcome", _outcome_words(spec.outcome)))
    return {
        "kicker": "Rollout readout \u00b7 difference-in-differences",
        "name": spec.name,
        "facts": facts,
        "hypothesis": _text(spec.hypothesis),
    }


def header_html(spec, panel: Panel | None = None) -> str:
    """Compact title block: name, owner, dates, primary outcome and hypothesis (the verdict follows)."""
    return render_page("header.html.j2", **header_context(spec, panel))


def details_context(spec, panel: Panel) -> dict:
    """The rollout (``details.html.j2``): units and launch cohorts, periods observed, outcomes, comparison."""
    rows: list[tuple[str, list[str]]] = []
    units, tw = plural(panel.unit), plural(panel.time)
    cohorts = panel.cohorts
    waves = ", ".join(f"{n} in {panel.time} {panel.period_label(k)}" for k, n in cohorts.items())
    launched = sum(cohorts.values())
    never = f"; {panel.n_never} never launched" if panel.n_never else "; none never launched"
    rows.append(("Rollout", [f"{panel.n_units} {units}: {launched} launched ({waves}){never}"]))
    periods = panel.periods
    if len(periods):
        rows.append(
            (
                "Observed",
                [f"{len(periods)} {tw}, {panel.period_label(periods[0])} to {panel.period_label(periods[-1])}"],
            )
        )
    rows.append(("Primary outcome", [_outcome_words(spec.outcome)]))
    if spec.secondary:
        rows.append(("Also reported", [_outcome_words(s) for s in spec.secondary]))
    rows.append(
        (
            "Comparison",
            [
                f"launched {units} vs {_control_words(spec.control_group, panel)} "
                f"(Callaway & Sant'Anna difference-in-differences, {_METHOD_WORDS[spec.method]})"
            ],
        )
    )
    return {
        "title": "The rollout",
        "rows": rows,
        "description_title": "What changed.",
        "description": _text(spec.description),
    }


def details_html(spec, panel: Panel) -> str:
    """The rollout: units and launch cohorts, periods observed, outcomes, comparison, what changed."""
    return render_page("details.html.j2", **details_context(spec, panel))


def _control_words(group: str, panel: Panel) -> str:
    units = plural(panel.unit)
    return f"never-launched {units}" if group == "never_treated" else f"not-yet-launched {units}"


def _outcome_words(o) -> str:
    """'contact_rate: Customer-service contacts per order (contacts / orders; lower is better)'."""
    what = f"{o.description.strip()} " if getattr(o, "description", None) and o.description.strip() else ""
    return (
        f"{o.name}: {what}({o.definition}; {o.better} is better)"
        if what
        else f"{o.name} ({o.definition}; {o.better} is better)"
    )


def verdict_context(
    verdict: Verdict, main: Effect, spec=None, timing: Timing | None = None, panel: Panel | None = None
) -> dict:
    """The verdict card (``verdict.html.j2``): label, headline, reasons, the effect over time, the rule."""
    over_time = (
        timing_text(timing, panel) if timing is not None and panel is not None and verdict.label != "Invalid" else None
    )
    card = {
        "label": verdict.display_label,
        "colour": COLOURS.get(verdict.label, _GREY),
        "arm": main.outcome,
        "headline": verdict.headline,
        "reasons": list(verdict.reasons),
        "timing": over_time,
    }
    return {
        "title": "Verdict",
        "cards": [card],
        "empty": "",
        "rule_title": "Decision rule.",
        "rule": decision_rule_text(spec, main.few_treated) if spec is not None else None,
    }


def verdict_html(
    verdict: Verdict, main: Effect, spec=None, timing: Timing | None = None, panel: Panel | None = None
) -> str:
    """The decision first: label, the estimated impact in one sentence, the reasons, how the effect developed
    after launch (``timing``) and the decision rule."""
    return render_page("verdict.html.j2", **verdict_context(verdict, main, spec, timing, panel))


def _effect_cells(e: Effect) -> dict:
    pre = e.pretrend_p
    return {
        "rel": format_pct(e.rel, 1),
        "outcome": e.outcome_word,
        "ci": f"[{format_pct(e.rel_ci_lower, 1)}, {format_pct(e.rel_ci_upper, 1)}]",
        "p": format_p(e.p_value),
        "bootstrap_p": format_p(e.bootstrap_p),
        "pretrend": format_p(pre),
        "pretrend_fails": bool(math.isfinite(pre) and pre < e.alpha),
        "error": None,
    }


def _reference_words(df: float, panel: Panel) -> str:
    if math.isfinite(df):
        return (
            f"With {panel.n_units} {plural(panel.unit)}, p-values and CIs use Student's t with {df:g} "
            "degrees of freedom"
        )
    return "P-values and CIs use the normal distribution"


def effects_context(
    main: Effect, secondary: Sequence = (), outcomes=None, *, dropped: dict | None = None, panel: Panel | None = None
) -> dict:
    """The outcome table (``rollout_effects.html.j2``): one row per outcome, rows left out and why."""
    defs = {o.name: o for o in (outcomes or ())}

    def name_cells(name, better, primary) -> dict:
        d = defs.get(name)
        what = (
            d.description.strip()
            if d is not None and getattr(d, "description", None) and d.description.strip()
            else None
        )
        return {
            "name": name,
            "primary": primary,
            "what": what,
            "better": better,
            "definition": d.definition if d is not None else None,
        }

    rows = [{**name_cells(main.outcome, main.better, True), **_effect_cells(main)}]
    for o, e, err in secondary:
        if e is None:
            rows.append({**name_cells(o.name, o.better, False), "error": err})
        else:
            rows.append({**name_cells(o.name, o.better, False), **_effect_cells(e)})
    left_out = [(k, [(r, f"{n:,}") for r, n in v.items()]) for k, v in (dropped or {}).items() if v]
    return {
        "alpha": f"{main.alpha:g}",
        "level": f"{1 - main.alpha:.0%}",
        "rows": rows,
        "left_out": left_out,
        "reference": _reference_words(main.df, panel) if panel is not None else None,
    }


def effects_html(
    main: Effect, secondary: Sequence = (), outcomes=None, *, dropped: dict | None = None, panel: Panel | None = None
) -> str:
    """The outcome table: relative change with CI, p-value, bootstrap p-value and pre-trend p per outcome."""
    return render_page(
        "rollout_effects.html.j2", **effects_context(main, secondary, outcomes, dropped=dropped, panel=panel)
    )


def _pretrend_words(pretrend, panel: Panel, universal: bool = True) -> str:
    """'the 5 weeks before launch (weeks -6 to -2, each against week -1)'."""
    tw = plural(panel.time)
    against = f"each against {panel.time} -1" if universal else f"each against the {panel.time} before it"
    ev = sorted(pretrend.event_times)
    q = len(ev)
    if not q:
        return f"the {tw} before launch"
    span = f"{panel.time} {ev[0]:g}" if q == 1 else f"{tw} {ev[0]:g} to {ev[-1]:g}"
    return f"the {q} {tw if q != 1 else panel.time} before launch ({span}, {against})"


def trends_context(fig, panel: Panel, outcome, pretrend, dynamic, main: Effect) -> dict:
    """Parallel-trends evidence (``rollout_trends.html.j2``): the test in words, the pre-launch effects, the chart."""
    tw, units = plural(panel.time), plural(panel.unit)
    t = dynamic.table
    pre = t[t.event_time < 0]
    universal = "reference" in t and bool(t["reference"].any())
    rows: list[dict[str, object]] = []
    for r in pre.itertuples():
        if bool(getattr(r, "reference", False)):
            rows.append({"event_time": int(r.event_time), "reference": True})
            continue
        rel = main.relative([r.estimate, r.ci_lower, r.ci_upper])
        rows.append(
            {
                "event_time": int(r.event_time),
                "reference": False,
                "change": format_pct(rel[0], 1),
                "ci": f"[{format_pct(rel[1], 1)}, {format_pct(rel[2], 1)}]",
                "p": format_p(r.p_value),
            }
        )
    p = pretrend.p_value
    if np.isnan(pretrend.df2) and np.isfinite(p):  # few launched units: a randomization test
        test = f"Wald statistic {pretrend.statistic:.2f}, randomization {p_text(p)} over which {units} launched"
    else:
        test = (
            f"F({pretrend.df1:g}, {pretrend.df2:g}) = {pretrend.statistic:.2f}, {p_text(p)}"
            if np.isfinite(pretrend.df2)
            else f"chi-square({pretrend.df1:g}) = {pretrend.statistic:.2f}, {p_text(p)}"
        )
    state = "not run" if not np.isfinite(p) else ("fails" if p < main.alpha else "holds")
    drift = None
    if state == "holds":
        d_raw = pretrend.detectable_trend(0.8, main.alpha) if hasattr(pretrend, "detectable_trend") else math.nan
        if np.isfinite(d_raw):
            d = float(main.relative([d_raw])[0]) if main.scale == "log" else float(d_raw / main.baseline)
            if np.isfinite(d):
                drift = format_pct(abs(d), 1, sign=False)
    never = panel.n_never > 0 and bool(panel.cohorts)
    alt = (
        f"Chart of {outcome.name} for each launch cohort relative to the never-launched {units}, indexed to "
        f"the {tw} before the first launch"
        if never
        else f"Chart of {outcome.name} over time for each launch cohort, indexed to the {tw} before the first launch"
    )
    return {
        "units": units,
        "unit": panel.unit,
        "time": panel.time,
        "periods": tw,
        "outcome": outcome.name,
        "never": never,
        "first_launch": (f"{panel.time} {panel.period_label(min(panel.cohorts))}" if panel.cohorts else ""),
        "test_state": state,
        "method": pretrend.method,
        "window": _pretrend_words(pretrend, panel, universal),
        "test": test,
        "drift": drift,
        "n_units": panel.n_units,
        "against": f"{panel.time} -1" if universal else f"the {panel.time} before",
        "level": f"{1 - main.alpha:.0%}",
        "rows": rows,
        "chart": chart_image(fig, alt),
    }


def trends_html(fig, panel: Panel, outcome, pretrend, dynamic, main: Effect) -> str:
    """Parallel-trends evidence: the raw DiD chart, the joint pre-trend test and the pre-launch effects."""
    return render_page("rollout_trends.html.j2", **trends_context(fig, panel, outcome, pretrend, dynamic, main))


def event_study_context(fig, dynamic, main: Effect, panel: Panel, timing: Timing | None = None) -> dict:
    """The event study (``rollout_event_study.html.j2``): its caption's numbers and the chart."""
    t = dynamic.table
    ref = t["reference"].astype(bool) if "reference" in t else pd.Series(False, index=t.index)
    post = t[(t.event_time >= 0) & ~ref]
    parts = [f"{int(r.event_time)}: {format_pct(main.relative([r.estimate])[0], 1)}" for r in post.itertuples()]
    alt = f"Event-study chart of the change in {main.outcome} by {plural(panel.time)} since launch: " + "; ".join(parts)
    crit = dynamic.critical_value
    df = getattr(dynamic, "df", math.inf)
    finite = bool(np.isfinite(crit))
    return {
        "time": panel.time,
        "units": plural(panel.unit),
        "periods": plural(panel.time),
        "level": f"{1 - main.alpha:.0%}",
        "critical": f"{crit:.2f}" if finite else None,
        "pointwise": f"{stats_t_isf(main.alpha, df):.2f}",
        "over_time": timing_text(timing, panel) if timing is not None else None,
        "chart": chart_image(fig, alt),
    }


def event_study_html(fig, dynamic, main: Effect, panel: Panel, timing: Timing | None = None) -> str:
    return render_page("rollout_event_study.html.j2", **event_study_context(fig, dynamic, main, panel, timing))


def stats_t_isf(alpha: float, df: float) -> float:
    """The two-sided pointwise critical value: t(df), or the normal for ``df = inf``."""
    from scipy import stats

    return float(stats.t.isf(alpha / 2, df) if math.isfinite(df) else stats.norm.isf(alpha / 2))


_GOOD_WORD = {True: "better", False: "worse", None: "neutral"}


def robustness_context(rob: Robustness, main: Effect, panel: Panel) -> dict:
    """The robustness section (``rollout_robustness.html.j2``): one row per check, the Goodman-Bacon parts."""
    checks = []
    for c in rob.checks:
        row = {"name": c.name, "detail": c.detail, "error": None}
        if c.effect is None:
            row["error"] = c.error or ""
        else:
            e = c.effect
            row.update(
                {
                    "change": format_pct(e.rel, 1),
                    "ci": f"[{format_pct(e.rel_ci_lower, 1)}, {format_pct(e.rel_ci_upper, 1)}]",
                    "p": format_p(e.p_value),
                    "wild_p": format_p(c.wild_p),
                    "reading": c.verdict or None,
                    "outcome": _GOOD_WORD[c.good],
                }
            )
        checks.append(row)
    bacon = []
    if rob.bacon is not None and len(rob.bacon):
        bacon = [
            {"kind": r.kind, "weight": f"{r.weight:.0%}", "change": format_pct(main.relative([r.estimate])[0], 1)}
            for r in rob.bacon.itertuples()
        ]
    return {
        "level": f"{1 - main.alpha:.0%}",
        "alpha": f"{main.alpha:g}",
        "n_units": panel.n_units,
        "units": plural(panel.unit),
        "df": panel.n_units - 1,
        "checks": checks,
        "twfe_warning": rob.twfe_warning,
        "bacon": bacon,
    }


def robustness_html(rob: Robustness, main: Effect, panel: Panel) -> str:
    return render_page("rollout_robustness.html.j2", **robustness_context(rob, main, panel))


def methodology_context(spec, panel: Panel, cs=None) -> dict:
    """What the methodology section (``rollout_methodology.html.j2``) needs to describe this rollout's analysis."""
    from .render import footer_context

    n = panel.n_units
    dropped = dict(cs.dropped) if cs is not None else {}
    few = few_treated_method_text(cs, panel) if cs is not None and getattr(cs, "few_treated_clusters", False) else None
    return {
        "method": _METHOD_WORDS[spec.method],
        "comparison": _control_words(spec.control_group, panel),
        "units": plural(panel.unit),
        "unit": panel.unit,
        "periods": plural(panel.time),
        "time": panel.time,
        "log_scale": spec.scale == "log",
        "n_units": n,
        "df": n - 1,
        "window": f"{-spec.leads}..{spec.lags}",
        "pre_window": f"{-spec.leads}..-2",
        "placebo_shifts": ", ".join(str(s) for s in spec.placebo_shifts),
        "few_treated": few,
        "covariates": ", ".join(spec.covariates) or None,
        "left_out": [(k, f"{v:,}") for k, v in dropped.items()],
        "level": f"{1 - spec.alpha:.0%}",
        "footer": footer_context(spec, details=f"{panel.n_rows:,} rows, alpha {spec.alpha:g}"),
    }


def methodology_html(spec, panel: Panel, cs=None) -> str:
    return render_page("rollout_methodology.html.j2", **methodology_context(spec, panel, cs))


def few_treated_method_text(cs, panel: Panel) -> str:
    """The methodology item for a rollout with too few launched (or never-launched) units."""
    units = plural(panel.unit)
    return (
        f"Few units: {cs.n_treated_clusters} launched and {cs.n_untreated_clusters} never-launched {units}. "
        f"With fewer than {FEW_TREATED_CLUSTERS} of either, cluster-robust and bootstrap p-values are unreliable "
        "(MacKinnon and Webb 2017, 2018; in simulations with 1 launched market of 20 the usual test rejects a "
        "true null 60% of the time). The verdict therefore rests on a randomization test: the launch dates are "
        f"given to other {units} in every way that keeps the cohort sizes (or in {RANDOMIZATION_REPS:,} random "
        "ways), and the p-value is the share of those with an effect at least as large as the one observed. "
        f"It assumes the {units} are alike apart from the launch, and with one launched {panel.unit} among G it "
        "cannot go below 1/G. A synthetic control (abkit.did.synthetic) is the estimator to compare with."
    )


def summary(spec, verdict: Verdict, main: Effect) -> dict:
    """Plain JSON data for the portfolio page (same shape as the A/B summary)."""

    def fin(x):
        return float(x) if x is not None and math.isfinite(x) else None

    return {
        "name": spec.name,
        "kind": "did",
        "primary": spec.outcome.name,
        "better": spec.outcome.better,
        "alpha": spec.alpha,
        "arms": [
            {
                "variant": "rollout",
                "label": verdict.display_label,
                "headline": verdict.headline,
                "colour": verdict.colour,
                "rel_effect": fin(main.rel),
                "rel_ci_lower": fin(main.rel_ci_lower),
                "rel_ci_upper": fin(main.rel_ci_upper),
                "p_value": fin(main.p_value),
            }
        ],
    }
