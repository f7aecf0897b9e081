"""Rollout readouts (``kind: did``): the panel, the estimates and the HTML of a difference-in-differences page.

A rollout launched unit by unit (market by market, week by week) is not
randomized: its impact is estimated by comparing how the outcome changed in
launched units with how it changed in comparable units that had not (yet)
launched. The readout notebook (``abkit/templates/did_readout.ipynb``) calls
:mod:`abkit.did` directly; this module holds the small steps around it:

* :func:`load_panel` - one row per unit x period with the analysis outcome
  (``log`` of the rate by default, so effects are relative changes), each
  unit's launch period, and the rows dropped and why;
* :func:`effect` - an aggregated effect on the analysis scale -> a relative
  change with its confidence interval;
* :func:`pretrend_test` - the joint test that the event-study coefficients
  before launch are all zero (Callaway & Sant'Anna dynamic aggregation,
  influence-function covariance, Hotelling ``F(q, G - q)`` with G units);
* :func:`robustness` - placebo launch dates, the other control group, TWFE
  for comparison (with the Goodman-Bacon warning) and wild cluster bootstrap
  p-values;
* the HTML pieces (every user string escaped) and the charts.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import DataError
from ..results import format_p, format_pct
from ..verdict import COLOURS, Verdict
from .render import _e, _text_block, figure_data_uri

__all__ = ["Panel", "Effect", "Check", "Robustness", "load_panel", "effect", "pretrend_test", "robustness",
           "secondary_effects", "plural", "header_html", "details_html", "verdict_html", "effects_html", "trends_html",
           "event_study_html", "robustness_html", "methodology_html", "summary", "plot_trends",
           "plot_event_study", "decision_rule_text", "FIRST", "LAUNCHED"]

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
    period_labels: dict | None = None     # numeric period -> original label, when time was a date

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

    df = read_columns(spec.data, list(spec.columns)).copy()
    n_rows = len(df)
    if n_rows == 0:
        raise DataError(f"the data file '{spec.data}' has no rows")
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
            raise DataError(f"column '{time}' must hold period numbers (e.g. week 1..52) or dates; got values "
                            f"like {tcol.iloc[0]!r}") from None
        uniq = np.sort(tdates.unique())
        tnum = pd.Series(np.searchsorted(uniq, tdates.to_numpy()) + 1.0, index=df.index)
        labels = {float(i + 1): pd.Timestamp(u).date().isoformat() for i, u in enumerate(uniq)}
    df[time] = tnum
    if df.duplicated([unit, time]).any():
        n = int(df.duplicated([unit, time]).sum())
        raise DataError(f"{n} rows repeat a ({unit}, {time}) pair; a rollout panel has one row per {unit} and "
                        f"{time}. Aggregate first (abkit.did.aggregate_panel)")
    if spec.first_treated:
        raw = df[spec.first_treated]
        if labels is not None and not pd.api.types.is_numeric_dtype(raw.dtype):
            uniq_dates = np.array([pd.Timestamp(v) for v in labels.values()], dtype="datetime64[ns]")
            dates = pd.to_datetime(raw)
            first = pd.Series(np.where(dates.isna(), np.nan,
                                       np.searchsorted(uniq_dates, dates.to_numpy()) + 1.0), index=df.index)
        else:
            first = pd.to_numeric(raw, errors="coerce").astype("float64")
            nonnum = raw.notna() & first.isna()
            if nonnum.any():
                raise DataError(f"column '{spec.first_treated}' must hold the launch period (a number like "
                                f"{df[time].iloc[0]:g}) or be empty for never-launched units; got "
                                f"{raw[nonnum].iloc[0]!r}")
        first = first.where(first > 0)      # 0 = never launched, as in R did
        spread = first.groupby(df[unit]).agg(lambda s: s.nunique(dropna=False))
        if (spread > 1).any():
            bad_units = list(spread[spread > 1].index[:5])
            raise DataError(f"column '{spec.first_treated}' must be the same in every row of a {unit} (its launch "
                            f"period); it varies for {bad_units}")
    else:
        d = pd.to_numeric(df[spec.treatment], errors="coerce")
        if not d.dropna().isin([0, 1]).all() or d.isna().any():
            raise DataError(f"column '{spec.treatment}' must hold 0 (not launched) or 1 (launched) in every row")
        first_by_unit = df[time].where(d == 1).groupby(df[unit]).min()
        first = df[unit].map(first_by_unit).astype("float64")
        switched_off = (d == 0) & (df[time] >= first)
        if switched_off.any():
            units = list(df.loc[switched_off, unit].unique()[:5])
            raise DataError(f"column '{spec.treatment}' switches back to 0 after launch for {units}; a rollout "
                            "needs launched units to stay launched")
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
    keep = [c for c in dict.fromkeys([unit, time, *( [spec.cluster] if spec.cluster else []), *spec.covariates,
                                      FIRST, LAUNCHED, *y.values()])]
    frame = df[keep].sort_values([unit, time], ignore_index=True)
    return Panel(frame=frame, unit=unit, time=time, y=y, scale=spec.scale, dropped=dropped, n_rows=n_rows,
                 period_labels=labels)


# =========================================================================== effects
@dataclass(frozen=True)
class Effect:
    """An aggregated DiD effect on the analysis scale and as a relative change of the outcome."""

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
    baseline: float          # level scale: counterfactual mean of the launched unit-periods (for relative changes)
    alpha: float
    label: str = ""

    @property
    def significant(self) -> bool:
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


def effect(agg, panel: Panel, outcome, *, label: str = "") -> Effect:
    """An :class:`abkit.did.AggregateResult` (or DiD result) -> :class:`Effect` with relative changes.

    ``log`` scale: the effect on log(outcome) ``b`` is the relative change
    ``exp(b) - 1``, and so are its CI bounds (exact, the transform is monotone).
    ``level`` scale: relative change = effect / counterfactual mean of the
    launched unit-periods (their observed mean minus the effect), and the CI
    bounds likewise (treating that mean as known; a close approximation when
    the panel is large).
    """
    est, lo, hi = float(agg.estimate), float(agg.ci_lower), float(agg.ci_upper)
    boot = getattr(agg, "boot_p_value", None)
    if boot is None:
        boot = getattr(agg, "wild_p_value", math.nan)
    base = _baseline(panel, panel.column(outcome.name), est) if panel.scale == "level" else math.nan
    proto = Effect(outcome.name, outcome.better, panel.scale, est, float(agg.se), lo, hi, float(agg.p_value),
                   float(boot), 0.0, 0.0, 0.0, base, float(agg.alpha), label)
    r, rl, rh = proto.relative([est, lo, hi])
    return Effect(outcome.name, outcome.better, panel.scale, est, float(agg.se), lo, hi, float(agg.p_value),
                  float(boot), float(r), float(min(rl, rh)), float(max(rl, rh)), base, float(agg.alpha), label)


def pretrend_test(cs, leads: int, lags: int = 0):
    """Joint test that the dynamic (event-time) effects before launch are all zero, within ``-leads..-1``.

    Uses the Callaway & Sant'Anna dynamic aggregation of ``cs`` (a
    :class:`abkit.did.StaggeredResult`): ``W = b' V^+ b`` over the pre-launch
    event times, ``V`` the influence-function covariance, referred to
    Hotelling's ``F(q, G - q)`` with ``G`` the number of units (the same
    small-sample correction as :func:`abkit.did.event_study`), since with
    a few dozen markets the chi-square reference over-rejects. Returns an
    :class:`abkit.did.PretrendTest` (NaN when there are no pre-launch event times).
    """
    from .. import did
    from ..stats import did as core

    agg = core.aggregate_att_gt(cs.cells, "dynamic", min_e=-leads, max_e=max(lags, 0))
    pre = [i for i, e in enumerate(agg.labels) if e < 0 and np.isfinite(agg.se[i]) and agg.se[i] > 0]
    if not pre:
        return did.PretrendTest(np.nan, 0.0, np.nan, np.nan, np.nan, "no pre-launch event times")
    n = cs.cells.n_units
    b = agg.att[pre]
    V = agg.inf[:, pre].T @ agg.inf[:, pre] / n / n
    W, F, df2, p = core.wald_test(b, V, n)
    return did.PretrendTest(statistic=F, df1=float(len(pre)), df2=df2, p_value=p, wald=W,
                            method=f"Wald on the {len(pre)} pre-launch event-time effects, influence-function "
                                   f"covariance, Hotelling F(q, G-q) with G={n} units")


def secondary_effects(panel: Panel, spec) -> list[tuple[object, Effect | None, str | None]]:
    """(outcome, effect or None, error text or None) for each secondary outcome, same design as the primary."""
    from .. import did

    out = []
    for o in spec.secondary:
        try:
            cs = did.staggered(panel.frame, panel.column(o.name), panel.unit, panel.time, FIRST,
                               control_group=spec.control_group, method=spec.method,
                               covariates=list(spec.covariates) or None, alpha=spec.alpha)
            out.append((o, effect(cs.aggregate("simple"), panel, o), None))
        except Exception as exc:  # noqa: BLE001 - one secondary outcome must not sink the readout
            out.append((o, None, f"{type(exc).__name__}: {exc}"))
    return out


# =========================================================================== robustness
@dataclass(frozen=True)
class Check:
    """One row of the robustness table."""

    name: str
    detail: str
    effect: Effect | None
    wild_p: float = math.nan
    verdict: str = ""            # plain words: "passes", "fails", "consistent", "differs", ...
    good: bool | None = None     # colours the verdict: True green, False red, None grey
    error: str | None = None


@dataclass(frozen=True)
class Robustness:
    checks: tuple[Check, ...]
    twfe: object | None = None             # abkit.did.DiDResult
    twfe_warning: str | None = None        # the Goodman-Bacon warning, when it applies
    bacon: pd.DataFrame | None = None      # by kind of comparison: weight, estimate
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def placebo_p_values(self) -> list[float]:
        """The smaller of the analytic and wild bootstrap p-values of each placebo that could be estimated."""
        out = []
        for c in self.checks:
            if c.name.startswith("Placebo") and c.effect is not None:
                out.append(min(c.effect.p_value, c.wild_p) if math.isfinite(c.wild_p) else c.effect.p_value)
        return out


def _consistent(main: Effect, other: Effect) -> tuple[str, bool]:
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
    checks: list[Check] = [Check("Main estimate", f"Callaway & Sant'Anna ({_METHOD_WORDS[spec.method]}), "
                                 f"{_control_words(spec.control_group, panel)} as controls", main,
                                 main.bootstrap_p, "", None)]
    other = "not_yet_treated" if spec.control_group == "never_treated" else "never_treated"
    try:
        cs2 = did.staggered(panel.frame, y, panel.unit, panel.time, FIRST, control_group=other,
                            method=spec.method, covariates=list(spec.covariates) or None, alpha=alpha)
        e2 = effect(cs2.aggregate("simple"), panel, o)
        words, good = _consistent(main, e2)
        checks.append(Check("Other control group", f"{_control_words(other, panel)} as controls", e2, e2.bootstrap_p,
                            words, good))
    except Exception as exc:  # noqa: BLE001 - e.g. no never-treated units: report, do not fail
        checks.append(Check("Other control group", f"{_control_words(other, panel)} as controls", None,
                            error=_short(exc)))
    cluster = spec.cluster or panel.unit
    twfe_res, warning_text, bacon = None, None, None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            twfe_res = did.twfe(panel.frame, y, LAUNCHED, panel.unit, panel.time, cluster=cluster,
                                covariates=list(spec.covariates) or None, alpha=alpha)
        flagged = [str(w.message) for w in caught if issubclass(w.category, did.DiDWarning)]
        if twfe_res.bacon is not None:
            bacon = twfe_res.bacon.by_kind()
        if flagged:
            units = plural(panel.unit)
            fw = twfe_res.bacon.forbidden_weight if twfe_res.bacon is not None else math.nan
            share = f"{fw:.0%} of its weight" if math.isfinite(fw) else "part of its weight"
            warning_text = (f"The TWFE regression puts {share} on comparisons that use already-launched {units} "
                            f"as controls, and those comparisons disagree with the clean ones by more than one "
                            "standard error: a sign that the effect changes over time since launch. The TWFE "
                            "number is therefore biased here (Goodman-Bacon 2021); the main estimate never makes "
                            "such comparisons.")
        e3 = effect(twfe_res, panel, o)
        words, good = _consistent(main, e3)
        if warning_text:
            words, good = "biased by staggered launches (see below)", None
        checks.append(Check("Two-way fixed effects", "classic TWFE regression, for comparison", e3,
                            twfe_res.wild_p_value, words, good))
    except Exception as exc:  # noqa: BLE001
        checks.append(Check("Two-way fixed effects", "classic TWFE regression, for comparison", None,
                            error=_short(exc)))
    tw = plural(panel.time)
    for s in spec.placebo_shifts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", did.DiDWarning)
                pl = did.placebo(panel.frame, y, panel.unit, panel.time, FIRST, shift=s, cluster=cluster,
                                 alpha=alpha)
            ep = effect(pl, panel, o)
            wild = pl.wild_p_value
            worst = min(ep.p_value, wild) if math.isfinite(wild) else ep.p_value
            ok = worst >= alpha
            checks.append(Check(f"Placebo launch {s} {tw} early", f"fake launch {s} {tw} before the real one, "
                                f"pre-launch data only; should show no effect", ep, wild,
                                "passes: no fake effect" if ok else "fails: a fake effect before launch", ok))
        except Exception as exc:  # noqa: BLE001
            checks.append(Check(f"Placebo launch {s} {tw} early", "fake launch date", None, error=_short(exc)))
    return Robustness(tuple(checks), twfe_res, warning_text, bacon)


def _short(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 240 else text[:237] + "..."


# =========================================================================== charts
def plot_trends(panel: Panel, outcome, ax=None):
    """Average outcome per launch cohort over time, each indexed to its own level before the first launch.

    On the log scale the cohort mean of log(outcome) is shown as
    ``100 exp(m_t - m_pre)``; on the level scale as ``100 m_t / m_pre``.
    Under parallel trends the lines move together until a cohort launches.
    """
    import matplotlib.pyplot as plt

    f = panel.frame
    col = panel.column(outcome.name)
    cohorts = panel.cohorts
    first_launch = min(cohorts) if cohorts else f[panel.time].max() + 1
    lab = f[FIRST].map(lambda v: "never launched" if not np.isfinite(v)
                       else f"launched in {panel.time} {panel.period_label(v)}")
    g = f.assign(cohort=lab).groupby(["cohort", panel.time], sort=True)[col].mean().reset_index()
    if ax is None:
        _, ax = plt.subplots(figsize=(8.6, 3.9))
    palette = ["#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#cf222e", "#0550ae", "#6639ba"]
    order = sorted(g.cohort.unique(), key=lambda c: (c != "never launched", c))
    launch_of = {f"launched in {panel.time} {panel.period_label(k)}": k for k in cohorts}
    for i, c in enumerate(order):
        part = g[g.cohort == c]
        pre = part[part[panel.time] < first_launch][col]
        base = pre.mean() if len(pre) else part[col].iloc[0]
        idx = 100 * np.exp(part[col] - base) if panel.scale == "log" else 100 * part[col] / base
        never = c == "never launched"
        colour = "black" if never else palette[(i - 1) % len(palette)]
        n_units = int(f.loc[lab == c, panel.unit].nunique())
        ax.plot(part[panel.time], idx, color=colour, lw=2.4 if never else 1.5,
                label=f"{c} ({n_units} {plural(panel.unit) if n_units != 1 else panel.unit})")
        if c in launch_of:
            ax.axvline(launch_of[c], color=colour, lw=1, ls=":")
    ax.axhline(100, color="#8c959f", lw=0.6)
    ax.set_xlabel(panel.time, parse_math=False)
    ax.set_ylabel(f"{outcome.name}, indexed", parse_math=False)
    ax.set_title(f"{outcome.name} by launch cohort (average before the first launch = 100); dotted: launch",
                 loc="left", fontsize=10, parse_math=False)
    leg = ax.legend(fontsize=8, frameon=False, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    for t in leg.get_texts():
        t.set_parse_math(False)
    ax.grid(alpha=0.25)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if panel.period_labels:
        ticks = ax.get_xticks()
        ax.set_xticks(ticks, [panel.period_label(t) if t in panel.period_labels else "" for t in ticks])
    ax.figure.tight_layout()
    return ax


def plot_event_study(dynamic, main: Effect, panel: Panel, ax=None):
    """Relative effect by periods since launch: points with pointwise CIs, shaded uniform (sup-t) band."""
    import matplotlib.pyplot as plt

    t = dynamic.table
    x = t["event_time"].to_numpy(dtype=float)
    est = main.relative(t["estimate"]) * 100
    lo, hi = main.relative(t["ci_lower"]) * 100, main.relative(t["ci_upper"]) * 100
    blo, bhi = main.relative(t["band_lower"]) * 100, main.relative(t["band_upper"]) * 100
    if ax is None:
        _, ax = plt.subplots(figsize=(8.6, 3.9))
    level = f"{1 - dynamic.alpha:.0%}"
    if np.isfinite(blo).any():
        ax.fill_between(x, blo, bhi, color=_BLUE, alpha=0.13, lw=0, label=f"{level} uniform band (all periods at once)")
    pre = x < 0
    for mask, colour, name in ((pre, _GREY, "before launch"), (~pre, _BLUE, "after launch")):
        if mask.any():
            ax.errorbar(x[mask], est[mask], yerr=[est[mask] - lo[mask], hi[mask] - est[mask]], fmt="o",
                        color=colour, capsize=2.5, ms=4.5, lw=1.2, label=f"{name}: effect with {level} CI")
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(-0.5, color="#8c959f", lw=1, ls=":")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"{plural(panel.time)} since launch (0 = launch {panel.time})", parse_math=False)
    ax.set_ylabel(f"change in {main.outcome} (%)", parse_math=False)
    ax.set_title(f"Effect on {main.outcome} by {panel.time} since launch", loc="left", fontsize=10,
                 parse_math=False)
    leg = ax.legend(fontsize=8, frameon=False, loc="upper right" if main.rel < 0 else "lower right")
    for tx in leg.get_texts():
        tx.set_parse_math(False)
    ax.grid(alpha=0.25)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.figure.tight_layout()
    return ax


# =========================================================================== HTML
_METHOD_WORDS = {"dr": "doubly robust", "reg": "outcome regression", "ipw": "inverse probability weighting"}
_WORD_COLOUR = {"better": _GREEN, "worse": _RED, "neutral": _GREY}


def _where(panel: Panel) -> str:
    return f"launched {plural(panel.unit)}"


def decision_rule_text(spec) -> str:
    o = spec.outcome
    return (f"Worked if {o.name} moved in the good direction ({o.better} is better) with p < {spec.alpha:g} "
            f"(analytic and bootstrap). Made it worse if it moved significantly the other way. Invalid if the "
            f"joint pre-trend test rejects (p < {spec.alpha:g}). Otherwise no detectable impact.")


def _dates(spec) -> str | None:
    if spec.start and spec.end:
        return f"{spec.start.isoformat()} to {spec.end.isoformat()}"
    if spec.start:
        return f"from {spec.start.isoformat()}"
    if spec.end:
        return f"until {spec.end.isoformat()}"
    return None


def header_html(spec, panel: Panel | None = None) -> str:
    """Compact title block: name, owner, dates, primary outcome and hypothesis (the verdict follows)."""
    bits = []
    if spec.owner:
        bits.append(f"<span><b>Owner</b> {_e(spec.owner)}</span>")
    dates = _dates(spec)
    if dates:
        bits.append(f"<span><b>Dates</b> {_e(dates)}</span>")
    o = spec.outcome
    bits.append(f"<span><b>Primary outcome</b> {_e(f'{o.name} ({o.definition}; {o.better} is better)')}</span>")
    parts = ['<header class="abkit-header">',
             '<div class="abkit-kicker">Rollout readout &middot; difference-in-differences</div>',
             f"<h1>{_e(spec.name)}</h1>", f'<p class="abkit-sub">{"".join(bits)}</p>']
    if spec.hypothesis and spec.hypothesis.strip():
        parts.append(f'<div class="abkit-note"><b>Hypothesis.</b> {_text_block(spec.hypothesis)}</div>')
    parts.append("</header>")
    return "\n".join(parts)


def details_html(spec, panel: Panel) -> str:
    """The rollout: units and launch cohorts, periods observed, outcomes, comparison, what changed."""
    rows: list[tuple[str, str]] = []
    units, tw = plural(panel.unit), plural(panel.time)
    cohorts = panel.cohorts
    waves = ", ".join(f"{n} in {panel.time} {panel.period_label(k)}" for k, n in cohorts.items())
    launched = sum(cohorts.values())
    never = f"; {panel.n_never} never launched" if panel.n_never else "; none never launched"
    rows.append(("Rollout", _e(f"{panel.n_units} {units}: {launched} launched ({waves}){never}")))
    periods = panel.periods
    if len(periods):
        rows.append(("Observed", _e(f"{len(periods)} {tw}, {panel.period_label(periods[0])} to "
                                    f"{panel.period_label(periods[-1])}")))
    o = spec.outcome
    rows.append(("Primary outcome", _e(f"{o.name} ({o.definition}; {o.better} is better)")))
    if spec.secondary:
        rows.append(("Also reported", "<br>".join(_e(f"{s.name} ({s.definition}; {s.better} is better)")
                                                  for s in spec.secondary)))
    rows.append(("Comparison", _e(f"launched {units} vs {_control_words(spec.control_group, panel)} "
                                  f"(Callaway & Sant'Anna difference-in-differences, {_METHOD_WORDS[spec.method]})")))
    meta = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    desc = ""
    if spec.description and spec.description.strip():
        desc = f'<div class="abkit-description"><b>What changed.</b> {_text_block(spec.description)}</div>'
    return f'<section class="abkit-section"><h2>The rollout</h2><dl class="abkit-meta">{meta}</dl>{desc}</section>'


def _control_words(group: str, panel: Panel) -> str:
    units = plural(panel.unit)
    return f"never-launched {units}" if group == "never_treated" else f"not-yet-launched {units}"


def verdict_html(verdict: Verdict, main: Effect, spec=None) -> str:
    """The decision first: label, the estimated impact in one sentence, the reasons and the decision rule."""
    colour = COLOURS.get(verdict.label, _GREY)
    reasons = "".join(f"<li>{_e(r)}</li>" for r in verdict.reasons)
    rule = (f'<p class="abkit-rule"><b>Decision rule.</b> {_e(decision_rule_text(spec))}</p>'
            if spec is not None else "")
    return ('<section class="abkit-section" id="abkit-verdict"><h2>Verdict</h2><div class="abkit-verdicts">'
            f'<div class="abkit-verdict" style="border-left-color:{colour}">'
            f'<div class="abkit-verdict-top"><span class="abkit-label" style="background:{colour}">'
            f'{_e(verdict.display_label)}</span><span class="abkit-arm">{_e(main.outcome)}</span></div>'
            f'<p class="abkit-headline">{_e(verdict.headline)}</p>'
            f'<ul class="abkit-reasons">{reasons}</ul></div></div>{rule}</section>')


def _effect_cells(e: Effect) -> list[str]:
    colour = _WORD_COLOUR[e.outcome_word]
    return [f'<span style="color:{colour};font-weight:600">{format_pct(e.rel, 1)}</span>',
            f"[{format_pct(e.rel_ci_lower, 1)}, {format_pct(e.rel_ci_upper, 1)}]",
            format_p(e.p_value), format_p(e.bootstrap_p)]


def effects_html(main: Effect, secondary: Sequence = (), outcomes=None, *, dropped: dict | None = None) -> str:
    """The outcome table: relative change with CI, p-value and bootstrap p-value per outcome."""
    level = f"{1 - main.alpha:.0%}"
    head = ["Outcome", "Change", f"{level} CI", "p-value", "bootstrap p"]
    rows = []
    defs = {o.name: o for o in (outcomes or ())}

    def name_cell(name, better, primary):
        d = defs.get(name)
        definition = f"{_e(d.definition)}; " if d is not None else ""
        tag = " <small>(primary)</small>" if primary else ""
        return f"<b>{_e(name)}</b>{tag}<br><small>{definition}{_e(better)} is better</small>"

    rows.append([name_cell(main.outcome, main.better, True), *_effect_cells(main)])
    for o, e, err in secondary:
        if e is None:
            rows.append([name_cell(o.name, o.better, False), f'<span class="abkit-muted">not estimable: '
                         f"{_e(err)}</span>", "", "", ""])
        else:
            rows.append([name_cell(o.name, o.better, False), *_effect_cells(e)])
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    table = ('<div class="abkit-table-wrap"><table class="abkit-table"><thead><tr>'
             + "".join(f"<th>{h}</th>" for h in head) + f"</tr></thead><tbody>{body}</tbody></table></div>")
    legend = (f'<p class="abkit-muted">Average change in launched units after launch, relative to what the '
              f"comparison units imply they would have done without it. Change in "
              f'<span style="color:{_GREEN};font-weight:600">green</span> = significantly better, '
              f'<span style="color:{_RED};font-weight:600">red</span> = significantly worse (p &lt; '
              f"{main.alpha:g}), grey = no significant change. The bootstrap p-value (multiplier bootstrap over "
              "units) does not rely on a large number of units.</p>")
    notes = ""
    if dropped:
        items = [f"{_e(k)}: " + ", ".join(f"{n:,} rows with {_e(r)}" for r, n in v.items())
                 for k, v in dropped.items() if v]
        if items:
            notes = f'<p class="abkit-muted">Rows left out: {"; ".join(items)}.</p>'
    return f'<section class="abkit-section"><h2>Estimated impact</h2>{legend}{table}{notes}</section>'


def _figure(fig, alt: str, title: str, caption: str) -> str:
    return (f'<section class="abkit-section abkit-chart"><h2>{title}</h2><p class="abkit-muted">{caption}</p>'
            f'<figure class="abkit-figure"><img src="{figure_data_uri(fig)}" alt="{_e(alt)}"></figure></section>')


def trends_html(fig, panel: Panel, outcome, pretrend, dynamic, main: Effect) -> str:
    """Parallel-trends evidence: raw trends chart, the pre-launch coefficients and the joint pre-trend test."""
    tw = plural(panel.time)
    t = dynamic.table
    pre = t[t.event_time < 0]
    rows = "".join(
        f"<tr><td>{int(r.event_time)}</td><td>{format_pct(main.relative([r.estimate])[0], 2)}</td>"
        f"<td>[{format_pct(main.relative([r.ci_lower])[0], 2)}, {format_pct(main.relative([r.ci_upper])[0], 2)}]</td>"
        f"<td>{format_p(r.p_value)}</td></tr>" for r in pre.itertuples())
    table = ('<div class="abkit-table-wrap"><table class="abkit-table abkit-narrow"><thead><tr>'
             f"<th>{_e(tw)} before launch</th><th>Effect</th><th>{1 - main.alpha:.0%} CI</th><th>p-value</th>"
             f"</tr></thead><tbody>{rows}</tbody></table></div>") if len(pre) else ""
    p = pretrend.p_value
    if not np.isfinite(p):
        banner = ('<div class="abkit-banner abkit-banner-warn">No pre-launch periods: parallel trends cannot be '
                  "checked.</div>")
    elif p < main.alpha:
        banner = ('<div class="abkit-banner abkit-banner-bad" role="alert"><strong class="abkit-banner-title">'
                  "&#9888; Pre-trends fail: do not trust the estimate.</strong><br>Before launch, launched and "
                  f"comparison units already moved differently (joint test of the {int(pretrend.df1)} pre-launch "
                  f"effects: F = {pretrend.statistic:.2f}, p = {format_p(p)}). The comparison units do not show "
                  "what would have happened without the launch.</div>")
    else:
        banner = ('<div class="abkit-banner abkit-banner-ok">&#10003; No sign of diverging trends before launch '
                  f"(joint test of the {int(pretrend.df1)} pre-launch effects: F = {pretrend.statistic:.2f}, "
                  f"p = {format_p(p)}). This supports, but cannot prove, that the comparison units show what "
                  "would have happened without the launch.</div>")
    alt = (f"Chart of {outcome.name} over time for each launch cohort and the never-launched {plural(panel.unit)}, "
           "indexed to 100 before the first launch")
    chart = (f'<figure class="abkit-figure"><img src="{figure_data_uri(fig)}" alt="{_e(alt)}"></figure>')
    return ('<section class="abkit-section"><h2>Parallel trends: were launched and comparison units alike '
            'before launch?</h2>'
            f'<p class="abkit-muted">Difference-in-differences assumes that, without the launch, launched units '
            f"would have followed the same trend as the comparison units. The chart shows each cohort's "
            f"{_e(outcome.name)} indexed to its own average before the first launch; the lines should move "
            f"together until a cohort launches.</p>{chart}{banner}{table}</section>")


def event_study_html(fig, dynamic, main: Effect, panel: Panel) -> str:
    t = dynamic.table
    post = t[t.event_time >= 0]
    parts = [f"{int(r.event_time)}: {format_pct(main.relative([r.estimate])[0], 1)}" for r in post.itertuples()]
    alt = (f"Event-study chart of the change in {main.outcome} by {plural(panel.time)} since launch: "
           + "; ".join(parts))
    crit = dynamic.critical_value
    crit_text = f" (critical value {crit:.2f} instead of {1.96:.2f})" if np.isfinite(crit) else ""
    return _figure(fig, alt, f"Effect by {_e(panel.time)} since launch",
                   f"Each dot compares launched units with comparison units the same number of "
                   f"{_e(plural(panel.time))} after (right of the dotted line) or before (left) their launch. "
                   f"Bars: {1 - main.alpha:.0%} confidence interval of each dot. Shaded: the uniform band, which "
                   f"covers all dots at once with {1 - main.alpha:.0%} confidence{crit_text}; a dot whose band "
                   "excludes zero is a real effect even after looking at every period. Before launch the dots "
                   "compare each period with the one before.")


def robustness_html(rob: Robustness, main: Effect, panel: Panel) -> str:
    level = f"{1 - main.alpha:.0%}"
    head = ["Check", "What it does", "Change", f"{level} CI", "p-value", "wild / bootstrap p", "Reading"]
    rows = []
    for c in rob.checks:
        if c.effect is None:
            rows.append([f"<b>{_e(c.name)}</b>", _e(c.detail), f'<span class="abkit-muted">not available: '
                         f"{_e(c.error or '')}</span>", "", "", "", ""])
            continue
        e = c.effect
        colour = {True: _GREEN, False: _RED, None: _GREY}[c.good]
        reading = f'<span style="color:{colour};font-weight:600">{_e(c.verdict)}</span>' if c.verdict else ""
        rows.append([f"<b>{_e(c.name)}</b>", _e(c.detail), format_pct(e.rel, 1),
                     f"[{format_pct(e.rel_ci_lower, 1)}, {format_pct(e.rel_ci_upper, 1)}]", format_p(e.p_value),
                     format_p(c.wild_p), reading])
    body = "".join("<tr>" + "".join(f"<td>{x}</td>" for x in r) + "</tr>" for r in rows)
    table = ('<div class="abkit-table-wrap"><table class="abkit-table abkit-left"><thead><tr>'
             + "".join(f"<th>{h}</th>" for h in head) + f"</tr></thead><tbody>{body}</tbody></table></div>")
    n = panel.n_units
    wild_note = (f"With only {n} {_e(plural(panel.unit))}, p-values that assume many units can be too small; the "
                 "wild cluster bootstrap p-value (Rademacher weights, restricted; for TWFE and placebos) and the "
                 "multiplier bootstrap p-value (for Callaway & Sant'Anna) hold up with few clusters.")
    extra = ""
    if rob.twfe_warning:
        extra += ('<div class="abkit-banner abkit-banner-warn"><b>Goodman-Bacon warning.</b> '
                  f"{_e(rob.twfe_warning)}</div>")
    if rob.bacon is not None and len(rob.bacon):
        brows = "".join(f"<tr><td>{_e(r.kind)}</td><td>{r.weight:.0%}</td><td>{format_pct(main.relative([r.estimate])[0], 1)}</td></tr>"
                        for r in rob.bacon.itertuples())
        extra += ('<h3>Goodman-Bacon decomposition of the TWFE estimate</h3><div class="abkit-table-wrap">'
                  '<table class="abkit-table abkit-left abkit-narrow"><thead><tr><th>Comparison</th><th>Weight</th>'
                  f"<th>Average change</th></tr></thead><tbody>{brows}</tbody></table></div>"
                  '<p class="abkit-muted">"Later vs earlier treated" comparisons use already-launched units as '
                  "controls; when the effect grows after launch they pull the TWFE estimate away from the truth. "
                  "The main estimate never makes such comparisons.</p>")
    return (f'<section class="abkit-section"><h2>Robustness</h2><p class="abkit-muted">The same question asked '
            f"in other ways. The verdict rests on the main estimate; these checks say how much to trust it. "
            f"{wild_note}</p>{table}{extra}</section>")


def methodology_html(spec, panel: Panel, cs=None) -> str:
    tw, units = plural(panel.time), plural(panel.unit)
    scale = ("Outcomes are analysed on the log scale, so every effect is a relative change (exp(b) - 1) and each "
             f"{_e(panel.unit)} counts equally whatever its size; parallel trends are assumed for the logarithm "
             "(i.e. proportional changes), which suits rates with seasonal swings."
             if spec.scale == "log" else
             "Outcomes are analysed in levels; relative changes divide by the launched units' counterfactual "
             "average (their observed average minus the effect).")
    items = [
        "Estimator: Callaway and Sant'Anna (2021, Journal of Econometrics) group-time average treatment effects "
        f"ATT(g, t), {_METHOD_WORDS[spec.method]} (Sant'Anna and Zhao 2020), with "
        f"{_e(_control_words(spec.control_group, panel))} as the comparison, aggregated over all launched "
        f"{_e(units)} and {_e(tw)} after launch (each launched {_e(panel.unit)}-{_e(panel.time)} weighs the same). "
        "It never uses already-launched units as controls, so it stays unbiased when effects grow over time.",
        scale,
        "Uncertainty: influence-function standard errors clustered by unit (as R did::att_gt / aggte); the "
        "bootstrap p-value is a multiplier (wild) bootstrap over units.",
        f"Parallel trends: the dynamic aggregation by {_e(panel.time)} since launch, within "
        f"-{spec.leads}..{spec.lags}; before launch it compares each {_e(panel.time)} with the previous one "
        "(R did's varying base period). The joint pre-trend test is a Wald test of all pre-launch effects with "
        "Hotelling's F small-sample correction. The uniform band uses the sup-t critical value (Montiel Olea "
        "and Plagborg-Moller 2019) from a multiplier bootstrap.",
        f"Robustness: placebo launches {', '.join(str(s) for s in spec.placebo_shifts)} {_e(tw)} early (TWFE "
        "on pre-launch data only); the other comparison group; and a two-way fixed effects regression with "
        "cluster-robust (CRV1) errors and the wild cluster restricted bootstrap (Cameron, Gelbach and Miller "
        "2008), whose bias under staggered launches is diagnosed with the Goodman-Bacon (2021) decomposition.",
    ]
    if spec.covariates:
        items.append(f"Covariates (values in the base period): {_e(', '.join(spec.covariates))}.")
    dropped = dict(cs.dropped) if cs is not None else {}
    if dropped:
        items.append("Left out by the estimator: " + _e(", ".join(f"{k}: {v:,}" for k, v in dropped.items())) + ".")
    glossary = [
        ("Difference-in-differences", "the change in launched units minus the change in comparison units over "
                                      "the same period."),
        ("Cohort", f"the {_e(units)} that launched in the same {_e(panel.time)}."),
        ("Parallel trends", "the assumption that launched units would have moved like the comparison units "
                            "without the launch; checked, never proven, by the pre-launch effects."),
        ("Confidence interval (CI)", f"the range of effects compatible with the data at {1 - spec.alpha:.0%} "
                                     "confidence."),
        ("Placebo", "the same analysis with a fake launch date; it should find nothing."),
        ("TWFE", "two-way fixed effects regression, the classic DiD regression; biased with staggered launches "
                 "when effects change over time."),
    ]
    gl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in glossary)
    from .. import __version__
    import datetime as _dt
    from pathlib import Path

    src = Path(spec.source).name if spec.source else "(none)"
    footer = (f'<p class="abkit-footer">Generated by abkit {_e(__version__)} on '
              f"{_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} from spec {_e(src)} and data "
              f"{_e(spec.data_path.name)} ({panel.n_rows:,} rows, alpha {spec.alpha:g}). The executed notebook "
              "with all code is readout.ipynb next to this page.</p>")
    return ('<section class="abkit-section abkit-method"><h2>Methodology</h2><ul>'
            + "".join(f"<li>{i}</li>" for i in items) + '</ul><h3>Glossary</h3><dl class="abkit-glossary">'
            + gl + "</dl></section>" + footer)


def summary(spec, verdict: Verdict, main: Effect) -> dict:
    """Plain JSON data for the portfolio page (same shape as the A/B summary)."""
    def fin(x):
        return float(x) if x is not None and math.isfinite(x) else None

    return {"name": spec.name, "kind": "did", "primary": spec.outcome.name, "better": spec.outcome.better,
            "alpha": spec.alpha,
            "arms": [{"variant": "rollout", "label": verdict.display_label, "headline": verdict.headline,
                      "colour": verdict.colour, "rel_effect": fin(main.rel), "rel_ci_lower": fin(main.rel_ci_lower),
                      "rel_ci_upper": fin(main.rel_ci_upper), "p_value": fin(main.p_value)}]}
