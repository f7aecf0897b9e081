"""One-market launch readouts (``kind: synthetic``): the numbers and words of the page.

(Named ``market_launch`` because module basenames are unique in abkit: the estimator is
:mod:`abkit.did.one_market`.)

A change launched in one market first (or in a few at once) is read against
a *synthetic twin*: a weighted mix of the markets that did not launch (and,
for synthetic difference-in-differences, of the weeks before launch), chosen
so that it tracks the launched market before launch. After launch the twin
shows what the market would have done without the change; the gap is the
effect (:func:`abkit.did.synthetic`, exactly R ``synthdid``). The readout
notebook (``templates/one_market_readout.ipynb``) calls
:func:`abkit.did.synthetic` and :func:`abkit.verdict.decide_one_market`;
this module holds the steps around them and what the page says:

* :func:`load_panel` - the unit x period panel of the spec (the panel of
  ``kind: did`` readouts, :func:`abkit.readout.rollout.load_panel`, on the
  outcome's own scale: a ratio outcome is the unit-period ratio);
* :func:`estimate` - the spec's estimator on one outcome; :func:`other_estimators`
  - the primary outcome read by synthetic DiD, synthetic control and plain
  DiD side by side (Arkhangelsky et al. 2021, Table 1); :func:`secondary_effects`;
* the figures (:func:`plot_paths`, :func:`plot_placebo`, :func:`plot_fit`);
* the sections of the page: ``*_context`` computes the numbers and the words
  (plain data), ``*_html`` renders them with a Jinja2 template (autoescaped,
  :func:`abkit.readout.pages.render_page`): the title block, verdict card and
  launch details use the templates every readout uses (``header``,
  ``verdict``, ``details``), the rest ``one_market_*.html.j2``, all with the
  shared ``macros.html.j2`` (charts, tables, tones, glossary, footer);
* :func:`summary` - the index page's row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import norm

from ..did import SyntheticResult, synthetic
from ..did.one_market import FIT_GOOD, FIT_POOR
from ..errors import AbkitError
from ..formatting import format_number, format_p, format_pct, interval_text, p_text
from ..spec import RolloutSpec
from ..verdict import COLOURS, Verdict
from .pages import render_page
from .render import chart_image, footer_context
from .rollout import Panel, plural
from .rollout import load_panel as _rollout_panel

__all__ = [
    "Estimate",
    "load_panel",
    "estimate",
    "other_estimators",
    "secondary_effects",
    "plot_paths",
    "plot_placebo",
    "plot_fit",
    "header_context",
    "header_html",
    "verdict_context",
    "verdict_html",
    "launch_context",
    "launch_html",
    "paths_context",
    "paths_html",
    "impact_context",
    "impact_html",
    "weights_context",
    "weights_html",
    "placebo_context",
    "placebo_html",
    "fit_context",
    "fit_html",
    "methodology_context",
    "methodology_html",
    "decision_rule_text",
    "summary",
    "METHOD_WORDS",
    "TOP_WEIGHTS",
]

METHOD_WORDS = {
    "sdid": "synthetic difference-in-differences",
    "sc": "synthetic control",
    "did": "difference-in-differences (every comparison market and week weighted equally)",
}
TOP_WEIGHTS = 10
"""Comparison units listed one by one in the weights table; the rest are summed into one row."""
_RED, _GREY = "#cf222e", "#57606a"


# =========================================================================== panel and estimates
def _panel_spec(spec) -> RolloutSpec:
    """The spec as :func:`abkit.readout.rollout.load_panel` reads a panel: level scale, no cluster."""
    return RolloutSpec(
        name=spec.name,
        data=spec.data,
        unit=spec.unit,
        time=spec.time,
        outcome=spec.outcome,
        first_treated=spec.first_treated,
        treatment=spec.treatment,
        secondary=spec.secondary,
        covariates=tuple(spec.covariates),
        alpha=spec.alpha,
        scale="level",
        source=spec.source,
    )


def load_panel(spec) -> Panel:
    """One row per unit and period: the outcomes on their own scale (a ratio outcome as the unit-period
    ratio ``numerator / denominator``), the covariates, each unit's launch period and a 0/1 ``launched``.

    Periods given as dates become 1, 2, ... (``panel.period_label`` gives the date back); whole-number
    periods stay whole numbers (week 79, not 79.0). Rows an outcome cannot use keep a missing value, which
    :func:`abkit.did.synthetic` refuses with the unit and period named (a synthetic comparison needs every
    unit in every period).
    """
    panel = _rollout_panel(_panel_spec(spec))
    t = panel.frame[panel.time]
    if np.isfinite(t).all() and (t == np.round(t)).all() and (np.abs(t) < 2**53).all():
        frame = panel.frame.assign(**{panel.time: t.astype("int64")})
        panel = replace(panel, frame=frame)
    return panel


def estimate(panel: Panel, spec, outcome=None, method: str | None = None) -> SyntheticResult:
    """:func:`abkit.did.synthetic` on one outcome (default: the primary) with the spec's design.

    ``method`` defaults to the spec's (``sdid`` or ``sc``; ``did`` gives the unweighted DiD for comparison);
    inference, replications, seed, alpha and covariates are the spec's.
    """
    outcome = spec.outcome if outcome is None else outcome
    return synthetic(
        panel.frame,
        panel.column(outcome.name),
        panel.unit,
        panel.time,
        panel.launched,
        method=method or spec.method,
        covariates=list(spec.covariates) or None,
        inference=spec.inference,
        reps=spec.replications,
        alpha=spec.alpha,
        seed=spec.seed,
    )


@dataclass(frozen=True)
class Estimate:
    """One estimator's reading of an outcome for the tables: the result, or why there is none."""

    method: str
    result: SyntheticResult | None
    error: str | None = None
    chosen: bool = False


def other_estimators(panel: Panel, spec, main: SyntheticResult) -> tuple[Estimate, ...]:
    """The primary outcome by synthetic DiD, synthetic control and plain DiD (the spec's choice is ``main``).

    The three differ in what they weight (Arkhangelsky et al. 2021): SDID weights comparison markets and
    pre-launch weeks, SC markets only (and matches levels), DiD neither. When they disagree, the weighted
    ones are the more credible: DiD assumes the launched market would have followed the plain average.
    """
    out = []
    for method in ("sdid", "sc", "did"):
        if method == spec.method:
            out.append(Estimate(method, main, chosen=True))
            continue
        try:
            out.append(Estimate(method, estimate(panel, spec, method=method)))
        except AbkitError as exc:
            out.append(Estimate(method, None, str(exc)))
    return tuple(out)


def secondary_effects(panel: Panel, spec) -> list[tuple]:
    """``(outcome, result or None, error or None)`` for each secondary outcome, read with the spec's method."""
    out: list[tuple] = []
    for o in spec.secondary:
        try:
            out.append((o, estimate(panel, spec, o), None))
        except AbkitError as exc:
            out.append((o, None, str(exc)))
    return out


# =========================================================================== words
def _names(units: Sequence) -> str:
    names = [str(u) for u in units]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _where(result: SyntheticResult) -> str:
    return _names(result.launched_units)


def _period(panel: Panel, value) -> str:
    try:
        return panel.period_label(float(value))
    except (TypeError, ValueError):
        return str(value)


def _launch_words(result: SyntheticResult, panel: Panel) -> str:
    """'DE in week 79' / 'DE and FR in week 79' / staggered: 'DE in week 40; FR and IT in week 52'."""
    if result.cohorts is not None:
        return "; ".join(
            f"{r.launched.replace(', ', ' and ')} in {panel.time} {_period(panel, r.launch_period)}"
            for r in result.cohorts.itertuples()
        )
    return f"{_where(result)} in {panel.time} {_period(panel, result.launch_period)}"


def _outcome_words(o) -> str:
    what = f"{o.description.strip()} " if getattr(o, "description", None) and o.description.strip() else ""
    return (
        f"{o.name}: {what}({o.definition}; {o.better} is better)"
        if what
        else f"{o.name} ({o.definition}; {o.better} is better)"
    )


def _dates(spec) -> str | None:
    if spec.start and spec.end:
        return f"{spec.start.isoformat()} to {spec.end.isoformat()}"
    if spec.start:
        return f"from {spec.start.isoformat()}"
    if spec.end:
        return f"until {spec.end.isoformat()}"
    return None


def _small(x: float) -> str:
    """A number that may be tiny (synthetic control's zeta is 1e-6 x the noise level): 9.43e-09, not 0.00000000943."""
    return f"{x:.3g}" if x and abs(x) < 1e-3 else format_number(x, 3)


def _fit_ratio(result: SyntheticResult) -> float:
    """The launched unit's pre-launch RMSPE over the median of the placebo units' (NaN without placebos)."""
    pl = result.placebo
    if pl is None or "pre_rmspe" not in pl or len(pl) < 2:
        return math.nan
    typical = float(np.median(pl.loc[~pl["launched"], "pre_rmspe"]))
    return result.pre_rmspe / typical if typical > 0 else math.inf


def decision_rule_text(spec) -> str:
    """The rule of :func:`abkit.verdict.decide_one_market`, in the words of the page."""
    return (
        f"Worked if {spec.outcome.name} moved against its synthetic twin in the good direction "
        f"({spec.outcome.better} is better) with p < {spec.alpha:g}; made it worse if it moved significantly "
        "the other way; otherwise no detectable impact. Inconclusive instead when the twin did not track the "
        f"launched market before launch (a pre-launch miss over {FIT_POOR:g} times the typical comparison "
        f"market's), or tracked it only fairly (over {FIT_GOOD:g} times) and the placebo rank test does not "
        "confirm the effect."
    )


# =========================================================================== figures
def _titled(ax, title: str, colour: str = "black"):
    ax.set_title(title, loc="left", fontsize=11, color=colour)
    return ax


def plot_paths(result: SyntheticResult, panel: Panel):
    """The launched market and its synthetic twin, period by period, the launch marked (a matplotlib Axes)."""
    ax = result.plot("paths")
    ax.set_ylabel(result.outcome)
    ax.set_xlabel(panel.time)
    if result.paths is not None and 0 < result.n_pre < len(result.paths):
        periods = result.paths.index.to_numpy(dtype=float)
        launch = (periods[result.n_pre - 1] + periods[result.n_pre]) / 2  # where the launch line is drawn
        ax.axvspan(launch, periods[-1], color="#0969da", alpha=0.06, lw=0)
    return _titled(ax, f"{result.outcome}: {_where(result)} and its synthetic twin")


def plot_placebo(result: SyntheticResult, panel: Panel):
    """The placebo distribution: the same estimate for comparison markets given a pretend launch (grey),
    the launched market's (red). None when there are no placebo runs (as many launched as comparison units)."""
    if result.placebo is None or len(result.placebo) < 2:
        return None
    ax = result.plot("placebo")
    ax.set_xlabel(f"estimated effect on {result.outcome}")
    ax.set_ylabel("placebo runs" if len(result.launched_units) > 1 else f"comparison {plural(panel.unit)}")
    return _titled(ax, f"Pretend launches elsewhere vs the real one in {_where(result)}")


def plot_fit(result: SyntheticResult, panel: Panel):
    """The gap between the launched market and its twin, before and after launch, with the pre-launch RMSPE."""
    ax = result.plot("fit")
    ax.set_xlabel(panel.time)
    colour = _RED if result.fit_quality == "poor" else "black"
    return _titled(ax, f"Pre-launch fit: {result.fit_quality} (RMSPE {format_number(result.pre_rmspe, 3)})", colour)


# =========================================================================== sections
def header_context(spec, panel: Panel | None = None) -> dict:
    """The title block (``header.html.j2``): kind of readout and method, name, owner, dates, primary outcome,
    hypothesis."""
    facts = []
    if spec.owner:
        facts.append(("Owner", spec.owner))
    dates = _dates(spec)
    if dates:
        facts.append(("Dates", dates))
    facts.append(("Primary outcome", _outcome_words(spec.outcome)))
    hypothesis = spec.hypothesis.strip() if spec.hypothesis and spec.hypothesis.strip() else None
    kicker = f"One-market launch readout \u00b7 {METHOD_WORDS[spec.method]}"
    return {"kicker": kicker, "name": spec.name, "facts": facts, "hypothesis": hypothesis}


def header_html(spec, panel: Panel | None = None) -> str:
    """The title block: kind of readout and method, name, owner, dates, primary outcome, hypothesis."""
    return render_page("header.html.j2", **header_context(spec, panel))


def verdict_context(verdict: Verdict, result: SyntheticResult, spec) -> dict:
    """The verdict card (``verdict.html.j2``): label, the effect in one sentence, the reasons, the rule."""
    card = {
        "label": verdict.display_label,
        "colour": COLOURS.get(verdict.label, _GREY),
        "arm": result.outcome,
        "headline": verdict.headline,
        "reasons": list(verdict.reasons),
        "timing": None,
    }
    return {
        "title": "Verdict",
        "cards": [card],
        "empty": "",
        "rule_title": "Decision rule.",
        "rule": decision_rule_text(spec),
    }


def verdict_html(verdict: Verdict, result: SyntheticResult, spec) -> str:
    """The decision first: label, the effect in one sentence, the reasons and the decision rule."""
    return render_page("verdict.html.j2", **verdict_context(verdict, result, spec))


def launch_context(spec, panel: Panel, result: SyntheticResult) -> dict:
    """The launch (``details.html.j2``): who launched when, the comparison pool and how much of it the twin
    uses, the periods, the outcomes, the method."""
    units, tw = plural(panel.unit), plural(panel.time)
    used = int((result.unit_weights > 0).sum())
    rows: list[tuple[str, str | list[str]]] = [
        ("Launched", _launch_words(result, panel)),
        (
            "Comparison",
            f"{result.n_control} never-launched {units}; the synthetic twin is a weighted mix of "
            f"{used} of them (see below)",
        ),
    ]
    periods = panel.periods
    if len(periods):
        rows.append(
            (
                "Observed",
                f"{len(periods)} {tw}, {_period(panel, periods[0])} to {_period(panel, periods[-1])}"
                f": {result.n_pre} before launch, {result.n_post} after",
            )
        )
    rows.append(("Primary outcome", _outcome_words(spec.outcome)))
    if spec.secondary:
        rows.append(("Also reported", [_outcome_words(o) for o in spec.secondary]))
    how = {
        "placebo": f"placebo launches ({result.reps} replications, seed {result.seed})",
        "bootstrap": f"bootstrap over {units} ({result.reps} replications, seed {result.seed})",
        "jackknife": f"jackknife over {units}",
        "conformal": "conformal inference",
    }.get(result.inference, result.inference)
    rows.append(("Method", f"{METHOD_WORDS[result.method]}; uncertainty from {how}"))
    if result.covariates:
        rows.append(("Adjusted for", ", ".join(result.covariates) + " (time-varying covariates)"))
    description = spec.description.strip() if spec.description and spec.description.strip() else None
    return {"title": "The launch", "rows": rows, "description_title": "What changed.", "description": description}


def launch_html(spec, panel: Panel, result: SyntheticResult) -> str:
    """The launch: who launched when, the comparison pool and how much of it the twin uses, the periods."""
    return render_page("details.html.j2", **launch_context(spec, panel, result))


def paths_context(fig, result: SyntheticResult, panel: Panel) -> dict:
    """The launched market against its synthetic twin, with the launch marked (``one_market_figure.html.j2``)."""
    where, units = _where(result), plural(panel.unit)
    caption = (
        f"The solid line is {where}; the dashed line is its synthetic twin: the weighted mix of comparison "
        f"{units} (below) that best tracks {where} before launch"
        + ("" if result.method == "sc" else ", shifted to its level just before launch")
        + f". After launch (shaded) the twin shows what {where} would have done without the change; the gap "
        "between the lines is the effect."
    )
    alt = (
        f"Line chart of {result.outcome} by {panel.time} for {where} and its synthetic twin; launch in "
        f"{panel.time} {_period(panel, result.launch_period)}; average gap after launch "
        f"{format_number(result.estimate, 3)} ({format_pct(result.relative_effect, 1)})."
    )
    banner = None
    if result.fit_quality == "poor":
        banner = {
            "kind": "bad",
            "title": "Poor pre-launch fit.",
            "text": "The twin did not track the market before launch: read the gap after launch with care "
            "(see the pre-launch fit below).",
        }
    return {
        "title": f"{where} against its synthetic twin",
        "caption": caption,
        "chart": chart_image(fig, alt),
        "banner": banner,
        "after": [],
    }


def paths_html(fig, result: SyntheticResult, panel: Panel) -> str:
    """The launched market against its synthetic twin, with the launch marked."""
    return render_page("one_market_figure.html.j2", **paths_context(fig, result, panel))


def _effect_row(name: str, result: SyntheticResult, better: str, chosen: bool = False) -> dict:
    est, ci = interval_text(result.estimate, result.ci_lower, result.ci_upper)
    significant = math.isfinite(result.p_value) and result.p_value < result.alpha
    good = (result.estimate > 0) == (better == "higher")
    trusted = result.fit_quality != "poor"  # as the verdict: no claim on a poor pre-launch fit
    outcome = ("better" if good else "worse") if significant and trusted else "neutral"
    rel = (
        (
            format_pct(result.relative_effect, 1),
            f"[{format_pct(result.rel_ci_lower, 1)}, {format_pct(result.rel_ci_upper, 1)}]",
        )
        if math.isfinite(result.relative_effect)
        else ("n/a", "")
    )
    return {
        "name": name,
        "chosen": chosen,
        "error": None,
        "effect": est,
        "ci": ci,
        "change": rel[0],
        "change_ci": rel[1],
        "outcome": outcome,
        "p": format_p(result.p_value),
        "rank_p": format_p(result.permutation_p_value),
        "twin": format_number(result.counterfactual, 4),
        "fit": result.fit_quality + ("" if trusted else ": not trusted"),
    }


def impact_context(
    result: SyntheticResult, spec, estimators: Sequence[Estimate] = (), secondary: Sequence = ()
) -> dict:
    """The estimate with its interval in the outcome's units and in percent; the other estimators; the
    secondary outcomes (``one_market_impact.html.j2``)."""
    level = f"{1 - result.alpha:.0%}"
    where = _where(result)
    est, ci = interval_text(result.estimate, result.ci_lower, result.ci_upper)
    key = [
        ("Effect", est, f"in {spec.outcome.name} ({spec.outcome.definition}); {level} CI {ci}"),
        (
            "Change",
            format_pct(result.relative_effect, 1) if math.isfinite(result.relative_effect) else "n/a",
            f"{level} CI [{format_pct(result.rel_ci_lower, 1)}, {format_pct(result.rel_ci_upper, 1)}]"
            if math.isfinite(result.relative_effect)
            else "the twin's level is not positive",
        ),
        (
            "Twin vs market after launch",
            f"{format_number(result.counterfactual, 4)} \u2192 "
            f"{format_number(result.counterfactual + result.estimate, 4)}",
            f"average over {result.n_post} {plural(spec.time)}",
        ),
        ("p-value", format_p(result.p_value), f"{result.inference} inference"),
    ]
    rows = []
    for e in estimators:
        name = METHOD_WORDS[e.method].split(" (")[0]
        if e.result is None:
            rows.append({"name": name, "chosen": e.chosen, "error": e.error})
        else:
            rows.append(_effect_row(name, e.result, spec.outcome.better, e.chosen))
    second = []
    for o, r, err in secondary:
        if r is None:
            second.append({"name": o.name, "definition": _outcome_words(o), "error": err})
        else:
            second.append({**_effect_row(o.name, r, o.better), "definition": _outcome_words(o)})
    legend = (
        f"The average gap between {where} and its synthetic twin over the {result.n_post} "
        f"{plural(spec.time)} after launch, in {spec.outcome.name}'s own units and in percent of the twin's "
        f"level. Green = significantly better, red = significantly worse (p < {result.alpha:g}), grey = not "
        "significant (the effect may be zero or too small to detect; the interval shows what is ruled out) "
        "or not trusted: on a poor pre-launch fit no effect is claimed."
    )
    compare = (
        "The same data read three ways (Arkhangelsky et al. 2021): synthetic DiD weights comparison "
        f"{plural(spec.unit)} and pre-launch {plural(spec.time)}, synthetic control weights {plural(spec.unit)} "
        "only, plain DiD weights nothing and assumes the launched market would have followed the average "
        "one. When they disagree, trust the weighted ones, and the one with the better pre-launch fit. "
        "Rank p: the placebo rank test (Abadie et al. 2010)."
    )
    return {"key": key, "legend": legend, "rows": rows, "compare": compare, "level": level, "secondary": second}


def impact_html(result: SyntheticResult, spec, estimators: Sequence[Estimate] = (), secondary: Sequence = ()) -> str:
    """The estimate with its interval in the outcome's units and in percent; the other estimators; the
    secondary outcomes."""
    return render_page("one_market_impact.html.j2", **impact_context(result, spec, estimators, secondary))


def _weight_rows(result: SyntheticResult, panel: Panel) -> list[dict]:
    """The :data:`TOP_WEIGHTS` largest positive weights, then the other positive ones summed in one row."""
    w = result.unit_weights[result.unit_weights > 0].sort_values(ascending=False, kind="stable")
    total = float(w.sum()) or 1.0

    def row(name, weight, rest=False):
        return {
            "name": name,
            "weight": format_pct(weight / total, 1, sign=False),
            "bar": round(100 * weight / total, 1),
            "rest": rest,
        }

    rows = [row(str(k), float(v)) for k, v in w.iloc[:TOP_WEIGHTS].items()]
    rest = w.iloc[TOP_WEIGHTS:]
    if len(rest):
        rows.append(
            row(f"other {len(rest)} {plural(panel.unit) if len(rest) > 1 else panel.unit}", float(rest.sum()), True)
        )
    return rows


def weights_context(result: SyntheticResult, panel: Panel) -> dict:
    """The comparison units behind the twin (``one_market_weights.html.j2``): the top ten weights, the rest
    summed; SDID's time weights."""
    units, tw = plural(panel.unit), plural(panel.time)
    used = int((result.unit_weights > 0).sum())
    top_share = float(result.unit_weights.sort_values(ascending=False).iloc[:3].sum() / result.unit_weights.sum())
    words = [
        f"{used} of the {result.n_control} comparison {units} have a weight (the others none); the three "
        f"largest carry {format_pct(top_share, 0, sign=False)} of the twin."
    ]
    if result.time_weights is not None:
        tw_pos = result.time_weights[result.time_weights > 0]
        late = result.time_weights.iloc[-max(1, len(result.time_weights) // 4) :].sum()
        words.append(
            f"Synthetic DiD also weights the {tw} before launch, to set the twin's level: "
            f"{len(tw_pos)} of the {result.n_pre} {tw} have a weight, "
            f"{format_pct(float(late), 0, sign=False)} of it on the last quarter of them "
            f"({_period(panel, result.time_weights.index[-max(1, len(result.time_weights) // 4)])} to "
            f"{_period(panel, result.time_weights.index[-1])})."
        )
    elif result.method == "sc":
        words.append(
            f"Synthetic control weights {units} only: the twin must match the market's level and path by itself."
        )
    if result.cohorts is not None:
        words.append("With several launch dates these are the weights averaged over the launch cohorts.")
    caption = f"A concentrated twin rests on few {units}: a shock in one of them after launch moves the estimate." + (
        f" The {units} below the top {TOP_WEIGHTS} are summed in the last row." if used > TOP_WEIGHTS else ""
    )
    return {
        "title": f"Comparison {units} behind the twin",
        "unit": panel.unit.replace("_", " ").capitalize(),
        "rows": _weight_rows(result, panel),
        "words": words,
        "caption": caption,
    }


def weights_html(result: SyntheticResult, panel: Panel) -> str:
    """The comparison units behind the twin: the top ten weights, the rest summed; SDID's time weights."""
    return render_page("one_market_weights.html.j2", **weights_context(result, panel))


def placebo_context(fig, result: SyntheticResult, panel: Panel) -> dict:
    """The placebo distribution with the launched market marked, and the placebo rank test
    (``one_market_figure.html.j2``)."""
    where, units = _where(result), plural(panel.unit)
    title = "Placebo launches: is the effect unusual?"
    if fig is None or result.placebo is None:
        return {
            "title": title,
            "chart": None,
            "banner": None,
            "after": [],
            "caption": f"No placebo runs: there are not more comparison {units} than launched ones, so the "
            f"uncertainty comes from {result.inference} inference.",
        }
    pl = result.placebo
    others = pl.loc[~pl["launched"], "estimate"].to_numpy()
    as_large = int(np.sum(np.abs(others) >= abs(result.estimate)))
    single = len(result.launched_units) == 1
    if single:
        caption = (
            f"Each grey bar counts comparison {units} given a pretend launch in {panel.time} "
            f"{_period(panel, result.launch_period)} and read exactly like {where}: they did not launch, so "
            f"their 'effects' show how large a gap arises by chance. The red line is {where}. "
            f"{as_large} of {len(others)} pretend launches gave an effect at least as large as {where}'s."
        )
    else:
        caption = (
            f"Each grey bar counts placebo runs: the launch given to as many comparison {units} at random "
            f"and read the same way. The red line is the real launch. {as_large} of {len(others)} runs gave "
            "an effect at least as large."
        )
    after = []
    if math.isfinite(result.permutation_p_value):
        ranked = plural(panel.unit) if single else "runs"
        rank = round(result.permutation_p_value * len(pl))
        after.append(
            f"Placebo rank test (Abadie, Diamond & Hainmueller 2010): ranked by their miss after launch "
            f"relative to their miss before, {where} comes {rank} of {len(pl)} {ranked} "
            f"({p_text(result.permutation_p_value)}; with {len(pl)} {ranked} it cannot go below "
            f"{format_p(1 / len(pl))})."
        )
    if result.inference == "placebo":
        after.append(
            f"The spread of these pretend effects gives the standard error of the estimate "
            f"({format_number(result.se, 3)}) and so its interval (Arkhangelsky et al. 2021, placebo "
            "variance)."
        )
    alt = (
        f"Histogram of {len(others)} placebo estimates of the effect on {result.outcome}, with {where}'s "
        f"estimate {format_number(result.estimate, 3)} marked; {as_large} placebo estimates are at least as "
        "large in size."
    )
    return {"title": title, "caption": caption, "chart": chart_image(fig, alt), "banner": None, "after": after}


def placebo_html(fig, result: SyntheticResult, panel: Panel) -> str:
    """The placebo distribution with the launched market marked, and the placebo rank test."""
    return render_page("one_market_figure.html.j2", **placebo_context(fig, result, panel))


def fit_context(fig, result: SyntheticResult, panel: Panel) -> dict:
    """The pre-launch fit (RMSPE), in numbers and words, with a plain warning when it is poor
    (``one_market_figure.html.j2``)."""
    where, units = _where(result), plural(panel.unit)
    ratio = _fit_ratio(result)
    kind = {"good": "ok", "fair": "warn", "poor": "bad"}.get(result.fit_quality, "warn")
    banner: dict[str, str | None]
    if result.fit_quality == "poor":
        level = float(result.paths["treated"][~result.paths["post"]].mean()) if result.paths is not None else math.nan
        of_level = (
            f", {format_pct(result.pre_rmspe / abs(level), 0, sign=False)} of {where}'s level"
            if math.isfinite(level) and level
            else ""
        )
        times = f", {ratio:.1f} times the typical miss for the comparison {units}" if math.isfinite(ratio) else ""
        helps = (
            "more history before launch, other comparison "
            + units
            + ", a less noisy outcome"
            + (
                ", or synthetic DiD (method: sdid), which also matches the level just before launch"
                if result.method == "sc"
                else ""
            )
        )
        text = (
            f"Before launch the synthetic twin did not follow {where} closely: it missed by "
            f"{format_number(result.pre_rmspe, 3)} on average (RMSPE){of_level}{times}. So after launch it is "
            "not a reliable picture of what would have happened without the change, and the verdict cannot be "
            f"'Worked'. What can help: {helps}."
        )
        banner = {"kind": kind, "title": "Poor pre-launch fit.", "text": text}
    else:
        banner = {"kind": kind, "title": None, "text": result.fit_message}
    caption = (
        f"The gap between {where} and its twin, {panel.time} by {panel.time}. Before launch it should stay "
        f"near zero; the grey band is its typical size (the root mean squared prediction error, RMSPE). The "
        f"fit is good when the RMSPE is at most {FIT_GOOD:g} times the median RMSPE of the comparison "
        f"{units}' own twins, poor above {FIT_POOR:g} times."
    )
    after = []
    if math.isfinite(ratio):
        after.append(
            f"Pre-launch RMSPE {format_number(result.pre_rmspe, 3)}: {ratio:.1f} times the median of the "
            f"comparison {units}' twins; after launch {format_number(result.post_rmspe, 3)}."
        )
    alt = (
        f"Line chart of the gap between {where} and its synthetic twin by {panel.time}; pre-launch RMSPE "
        f"{format_number(result.pre_rmspe, 3)}, fit {result.fit_quality}."
    )
    return {
        "title": "Pre-launch fit: did the twin track the market?",
        "caption": caption,
        "chart": chart_image(fig, alt) if fig is not None else None,
        "banner": banner,
        "after": after,
    }


def fit_html(fig, result: SyntheticResult, panel: Panel) -> str:
    """The pre-launch fit (RMSPE), in numbers and words, with a plain warning when it is poor."""
    return render_page("one_market_figure.html.j2", **fit_context(fig, result, panel))


def methodology_context(spec, panel: Panel, result: SyntheticResult) -> dict:
    """How the numbers were computed, the glossary and the footer (``one_market_methodology.html.j2``)."""
    units, tw = plural(panel.unit), plural(panel.time)
    items = [
        (
            f"Estimator: {METHOD_WORDS[result.method]} (abkit.did.synthetic, exactly R synthdid: its "
            "regularization, Frank-Wolfe solver, sparsification and stopping rule; Arkhangelsky, Athey, Hirshberg, "
            "Imbens & Wager 2021, AER; synthetic control: Abadie, Diamond & Hainmueller 2010)."
        ),
        (
            f"The effect is the average gap between {_where(result)} and the twin over the {result.n_post} "
            f"{tw} after launch; in percent, that gap over the twin's average level after launch "
            f"({format_number(result.counterfactual, 4)}), the interval divided by the same level."
        ),
        (
            f"Uncertainty: {result.inference}"
            + (
                f", {result.reps} replications with seed {result.seed}"
                if result.inference in ("placebo", "bootstrap")
                else ""
            )
            + (
                f"; the {1 - result.alpha:.0%} interval is the estimate \u00b1 {norm.isf(result.alpha / 2):.2f} "
                "standard errors"
                if result.inference != "conformal"
                else ""
            )
            + (
                ". With one launched market the placebo variance (Algorithm 4 of Arkhangelsky et al.) gives every "
                "comparison market a pretend launch and takes the spread of their estimates."
                if result.inference == "placebo"
                else "."
            )
        ),
        (
            f"Noise level of the {panel.time}-to-{panel.time} changes {format_number(result.noise_level, 3)}; "
            "regularization of the "
            f"unit weights zeta = {_small(result.zeta_omega)} (synthdid's default)."
        ),
    ]
    if result.covariates:
        items.append(f"Time-varying covariates adjusted for as synthdid's X: {', '.join(result.covariates)}.")
    items.extend(result.notes)
    glossary = [
        ("Synthetic twin", f"a weighted mix of comparison {units} that tracks the launched market before launch."),
        ("Weights", f"each comparison {panel.unit}'s share in the twin; they add up to 100%."),
        (
            "RMSPE",
            "root mean squared prediction error: the typical size of the gap between the market and its "
            "twin before launch.",
        ),
        ("Placebo launch", f"the same analysis for a {panel.unit} that did not launch; it should find nothing."),
        (
            "Placebo rank test",
            "how extreme the launched market's miss after launch (relative to its miss before) is among all markets.",
        ),
    ]
    return {
        "items": items,
        "glossary": glossary,
        "footer": footer_context(spec, details=f"{panel.n_rows:,} rows, alpha {spec.alpha:g}"),
    }


def methodology_html(spec, panel: Panel, result: SyntheticResult) -> str:
    """How the numbers were computed, the glossary and the footer."""
    return render_page("one_market_methodology.html.j2", **methodology_context(spec, panel, result))


def summary(spec, verdict: Verdict, result: SyntheticResult) -> dict:
    """Plain JSON data for the portfolio page (the shape of the A/B and rollout summaries)."""

    def fin(x):
        return float(x) if x is not None and math.isfinite(x) else None

    return {
        "name": spec.name,
        "kind": spec.kind,
        "primary": spec.outcome.name,
        "better": spec.outcome.better,
        "alpha": spec.alpha,
        "method": result.method,
        "launched": [str(u) for u in result.launched_units],
        "arms": [
            {
                "variant": "launch",
                "label": verdict.display_label,
                "headline": verdict.headline,
                "colour": verdict.colour,
                "rel_effect": fin(result.relative_effect),
                "rel_ci_lower": fin(result.rel_ci_lower),
                "rel_ci_upper": fin(result.rel_ci_upper),
                "p_value": fin(result.p_value),
                "effect": fin(result.estimate),
                "ci_lower": fin(result.ci_lower),
                "ci_upper": fin(result.ci_upper),
                "fit": result.fit_quality,
            }
        ],
    }
