"""A readout for people who do not open HTML: five plain-text lines, and the impact in business terms.

**summary.md.** Every readout writes ``<slug>/summary.md`` next to its page:
five lines of plain text (no markup) to paste into a chat or an e-mail::

    Instant refunds for low-value returns: Ship. Refunds per order fell 6.2% ...
    Primary metric refund_rate (treatment vs control): -6.2% (95% CI -9.0% to -3.4%), p < 0.001.
    Guardrails: repeat_purchase_30d within its 2.0% margin (+0.3%, 95% CI -1.2% to +1.8%); ...
    Health: no sample ratio mismatch (p = 0.43); pre-period balance fine (p = 0.62); 40,000 units ...
    Full readout: /srv/reports/instant_refunds/readout.html

The template computes the first four (:func:`ab_lines`, :func:`rollout_lines`,
:func:`plan_lines`: it holds the result, the verdicts and the checks) and
attaches them to the verdict output's metadata (``digest``); whoever writes
the page (``abkit readout``, ``abkit export``) adds the link and writes the
file (:func:`summary_text`), since only it knows where the page is.

**Impact in business terms.** When the spec declares ``impact:``
(:class:`abkit.business_impact.ImpactSpec`, read as ``getattr(spec,
"impact", None)``), the primary effect of each arm is turned into units and
money a year (:func:`ab_impacts`, :func:`rollout_impact`) and shown under
the verdict (:func:`impact_html`) and in the primary-effect line:
"about 18,000 fewer contacts a year (95% CI 6,000 to 30,000), saving about
EUR 81,000 a year (95% CI EUR 27,000 to EUR 135,000)". The interval is the
readout's own interval of the absolute effect times the yearly volume
(:func:`abkit.business_impact.yearly_impact`). No sentence for an Invalid
arm (its numbers cannot be trusted) nor for a rollout on the log scale
(it estimates no baseline level to turn a relative change into units).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from ..business_impact import ImpactSpec, YearlyImpact, impact_of, yearly_impact
from ..formatting import ABSOLUTE, POINTS, change_scale, format_number, format_pct, p_text
from ..verdict import ci_label, guardrail_status, p_label
from .files import SUMMARY_NAME
from .pages import render_page

__all__ = [
    "ab_lines",
    "rollout_lines",
    "plan_lines",
    "summary_text",
    "failed_summary_text",
    "ab_impacts",
    "synthetic_impact",
    "rollout_impact",
    "impact_html",
    "ArmImpact",
    "SUMMARY_NAME",
]


@dataclass(frozen=True)
class ArmImpact:
    """The yearly impact of one treatment arm (``impact`` None: not computed, ``why`` says why)."""

    variant: str
    impact: YearlyImpact | None
    why: str | None = None

    def sentence(self) -> str:
        return self.impact.sentence() if self.impact is not None else (self.why or "")


# --------------------------------------------------------------------------- impact
def _impact_spec(spec) -> ImpactSpec | None:
    return ImpactSpec.coerce(getattr(spec, "impact", None))


def ab_impacts(spec, result, verdicts: Sequence = ()) -> list[ArmImpact]:
    """Per treatment arm, the primary metric's effect in units (and money) a year; [] without ``impact:``.

    Uses :func:`abkit.business_impact.impact_of` on the primary row of each
    arm, with the result's own interval (always-valid for a sequential
    result). An arm whose verdict is Invalid gets no number.
    """
    impact = _impact_spec(spec)
    if impact is None:
        return []
    labels = {str(v.variant): v.label for v in verdicts}
    out = []
    for arm in result.treatments:
        row = result.row(spec.primary.name, arm)
        if labels.get(str(arm)) == "Invalid":
            out.append(
                ArmImpact(str(arm), None, "not computed: the readout is Invalid, so its numbers cannot be trusted")
            )
            continue
        if not all(_finite(row.get(k)) for k in ("effect", "ci_lower", "ci_upper")):
            out.append(ArmImpact(str(arm), None, "not computed: the effect has no finite interval"))
            continue
        out.append(ArmImpact(str(arm), impact_of(row, impact, alpha=result.alpha)))
    return out


def rollout_impact(spec, main, verdict=None) -> ArmImpact | None:
    """The rollout's primary effect in units (and money) a year: ``volume * baseline * [rel, CI]``; None without
    ``impact:``.

    ``main`` is the :class:`abkit.readout.rollout.Effect` of the primary
    outcome; its ``baseline`` (the counterfactual level, estimated on the
    level scale only) turns the relative change into units per ``per``.
    """
    impact = _impact_spec(spec)
    if impact is None:
        return None
    if verdict is not None and verdict.label == "Invalid":
        return ArmImpact("rollout", None, "not computed: the readout is Invalid, so its numbers cannot be trusted")
    base = main.baseline
    if not _finite(base):
        return ArmImpact(
            "rollout",
            None,
            "not computed: a rollout on the log scale estimates no baseline level "
            "to turn its relative change into units (use scale: level)",
        )
    rel = (main.rel, main.rel_ci_lower, main.rel_ci_upper)
    if not all(_finite(x) for x in rel):
        return ArmImpact("rollout", None, "not computed: the effect has no finite interval")
    change, lo, hi = (float(base) * float(x) for x in rel)
    return ArmImpact("rollout", yearly_impact(change, lo, hi, impact, better=main.better, level=1.0 - main.alpha))


def synthetic_impact(spec, result, verdict=None) -> ArmImpact | None:
    """A one-market launch's primary effect in units (and money) a year; None without ``impact:``.

    ``result`` is an :class:`abkit.did.SyntheticResult`: its estimate and interval are the average
    change of the outcome in the launched market against its synthetic twin, in the outcome's own units
    per ``per`` (e.g. contacts per order), so the yearly change is ``volume * [estimate, CI]`` with the
    launched market's own volume. Not computed for an Invalid readout, nor on a poor pre-launch fit (the
    verdict claims no effect then).
    """
    impact = _impact_spec(spec)
    if impact is None:
        return None
    if verdict is not None and verdict.label == "Invalid":
        return ArmImpact("launch", None, "not computed: the readout is Invalid, so its numbers cannot be trusted")
    if getattr(result, "fit_quality", None) == "poor":
        return ArmImpact(
            "launch", None, "not computed: the synthetic twin did not track the market before launch (poor fit)"
        )
    est = (result.estimate, result.ci_lower, result.ci_upper)
    if not all(_finite(x) for x in est):
        return ArmImpact("launch", None, "not computed: the effect has no finite interval")
    change, lo, hi = (float(x) for x in est)
    better = spec.outcome.better
    return ArmImpact("launch", yearly_impact(change, lo, hi, impact, better=better, level=1.0 - result.alpha))


def impact_html(spec, impacts: Sequence[ArmImpact] | ArmImpact | None) -> Markup:
    """The impact in business terms under the verdict (``templates/html/pages/business_impact.html.j2``);
    empty without ``impact:``."""
    impact = _impact_spec(spec)
    if isinstance(impacts, ArmImpact):
        impacts = [impacts]
    items = list(impacts or ())
    if impact is None or not items:
        return Markup("")
    scope = f"{format_number(impact.volume, 3)} {impact.per} a year"
    return render_page(
        "business_impact.html.j2",
        scope=scope,
        several=len(items) > 1,
        items=[{"variant": i.variant, "sentence": i.sentence(), "ok": i.impact is not None} for i in items],
    )


# --------------------------------------------------------------------------- the five lines
def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _effect_words(result, row: dict) -> str:
    """``-6.2% (95% CI -9.0% to -3.4%), p < 0.001``; absolute units when no relative lift is bounded."""
    ci = ci_label(result)
    p = p_text(result.decision_p(row), p_label(result))
    scale = change_scale(row)
    if scale == ABSOLUTE or scale == POINTS:
        unit = " points" if scale == POINTS else " (absolute; the control value is too close to 0 for a % change)"
        return (
            f"{format_number(row['effect'], 3)}{unit} ({ci} {format_number(row['ci_lower'], 3)} to "
            f"{format_number(row['ci_upper'], 3)}), {p}"
        )
    of = " of |control|" if float(row.get("control_value", 0.0)) < 0 else ""
    return (
        f"{format_pct(row['rel_effect'])}{of} ({ci} {format_pct(row['rel_ci_lower'])} to "
        f"{format_pct(row['rel_ci_upper'])}), {p}"
    )


def ab_lines(spec, result, verdicts: Sequence, *, balance=None, size=None) -> list[str]:
    """The first four lines of an A/B readout's summary.md: verdict, primary effect, guardrails, health.

    ``balance``: :func:`abkit.readout.ab.balance`; ``size``: :func:`abkit.readout.ab.sample_size`.
    """
    several = len(verdicts) > 1
    if several:
        verdict = "; ".join(f"{v.variant}: {v.display_label} ({v.headline})" for v in verdicts)
    else:
        verdict = f"{verdicts[0].display_label}. {verdicts[0].headline}" if verdicts else "no treatment arm"
    lines = [f"{spec.name}: {verdict}"]
    impacts = {i.variant: i for i in ab_impacts(spec, result, verdicts)}
    effects = []
    for arm in result.treatments:
        row = result.row(spec.primary.name, arm)
        text = (f"{arm}: " if several else "") + _effect_words(result, row)
        if str(arm) in impacts and impacts[str(arm)].impact is not None:
            text += f"; {impacts[str(arm)].sentence()}"
        effects.append(text)
    lines.append(
        f"Primary metric {spec.primary.name} ({', '.join(map(str, result.treatments))} vs "
        f"{result.control}): " + "; ".join(effects) + "."
    )
    guards = []
    for g in getattr(spec, "guardrails", ()):
        for arm in result.treatments:
            status, words = guardrail_status(result, result.row(g.name, arm), g.margin)
            mark = {"ok": "", "breached": "BREACHED: ", "unclear": "UNCLEAR: "}[status]
            guards.append(f"{mark}{(str(arm) + ' ') if several else ''}{words}")
    lines.append("Guardrails: " + ("; ".join(guards) if guards else "none declared") + ".")
    lines.append("Health: " + "; ".join(_ab_health(result, balance, size)) + ".")
    return [_one_line(x) for x in lines]


def _ab_health(result, balance, size) -> list[str]:
    srm = result.srm
    out = [("SAMPLE RATIO MISMATCH" if srm.mismatch else "no sample ratio mismatch") + f" ({p_text(srm.p_value)})"]
    if balance is not None and balance.columns:
        if balance.error:
            out.append("pre-period balance not checked (" + balance.error + ")")
        elif _finite(balance.p_value):
            out.append(
                ("PRE-PERIOD IMBALANCE" if balance.alarm else "pre-period balance fine")
                + f" ({p_text(balance.p_value)})"
            )
    integrity = getattr(result, "integrity", None)
    if integrity is not None:
        out.append(
            "every unit in one arm, once"
            if integrity.clean
            else "unit-integrity problems: " + "; ".join(integrity.problems())
        )
    if size is not None:
        text = f"{size.units:,} units"
        if size.planned_units:
            text += f" ({size.units / size.planned_units:.0%} of the {size.planned_units:,} planned)"
        if size.days is not None:
            text += f" in {size.days:.0f} days"
        out.append(text)
    return out


def rollout_lines(spec, verdict, main, *, pretrend=None, checks=None, panel=None) -> list[str]:
    """The first four lines of a rollout (DiD) readout's summary.md.

    ``pretrend``: the event study's pre-trend test (``p_value``); ``checks``:
    :func:`abkit.readout.rollout.robustness` (placebo launch dates); ``panel``
    for the count of launched units.
    """
    level = f"{1 - main.alpha:.0%} CI"
    lines = [f"{spec.name}: {verdict.display_label}. {verdict.headline}"]
    effect = (
        f"Primary outcome {main.outcome}: {format_pct(main.rel)} ({level} {format_pct(main.rel_ci_lower)} to "
        f"{format_pct(main.rel_ci_upper)}), {p_text(main.p_value)}"
    )
    if _finite(main.bootstrap_p):
        effect += f", {p_text(main.bootstrap_p, 'wild bootstrap p')}"
    impact = rollout_impact(spec, main, verdict)
    if impact is not None and impact.impact is not None:
        effect += f"; {impact.sentence()}"
    lines.append(effect + ".")
    lines.append("Guardrails: none (a rollout readout has an outcome and secondary outcomes, no guardrails).")
    health = []
    p_pre = getattr(pretrend, "p_value", None)
    health.append(f"pre-trend test {p_text(p_pre)}" if _finite(p_pre) else "no pre-launch periods to test")
    placebos = list(checks.placebo_p_values) if checks is not None else []
    if placebos:
        failing = sum(1 for p in placebos if _finite(p) and p < main.alpha)
        health.append(
            f"{failing} of {len(placebos)} placebo launch dates show an effect"
            if failing
            else f"no placebo launch date shows an effect ({len(placebos)} tried)"
        )
    if panel is not None:
        from .rollout import plural

        try:
            frame = panel.frame
            launched = frame.loc[frame[panel.first].notna(), panel.unit].nunique()
            health.append(
                f"{launched} launched and {frame[panel.unit].nunique() - launched} comparison {plural(panel.unit)}"
            )
        except (KeyError, AttributeError):  # an unusual panel: the count is a nicety
            pass
    lines.append("Health: " + "; ".join(health) + ".")
    return [_one_line(x) for x in lines]


def synthetic_lines(spec, verdict, result) -> list[str]:
    """The first four lines of a one-market launch readout's summary.md (``result`` an
    :class:`abkit.did.SyntheticResult`): verdict, the effect against the synthetic twin, no guardrails,
    the pre-launch fit and the comparison markets."""
    level = f"{1 - result.alpha:.0%} CI"
    lines = [f"{spec.name}: {verdict.display_label}. {verdict.headline}"]
    launched = ", ".join(str(u) for u in result.launched_units)
    if _finite(result.relative_effect):
        size = (
            f"{format_pct(result.relative_effect)} ({level} {format_pct(result.rel_ci_lower)} to "
            f"{format_pct(result.rel_ci_upper)})"
        )
    else:
        size = (
            f"{format_number(result.estimate)} ({level} {format_number(result.ci_lower)} to "
            f"{format_number(result.ci_upper)})"
        )
    effect = (
        f"Primary outcome {result.outcome} in {launched} against its synthetic twin: {size}, "
        f"{p_text(result.p_value)} ({result.method}, {result.inference} inference)"
    )
    impact = synthetic_impact(spec, result, verdict)
    if impact is not None and impact.impact is not None:
        effect += f"; {impact.sentence()}"
    lines.append(effect + ".")
    lines.append("Guardrails: none (a one-market readout has an outcome, no guardrails).")
    from .rollout import plural

    lines.append(
        f"Health: pre-launch fit {result.fit_quality} (RMSPE {format_number(result.pre_rmspe)}); "
        f"{result.n_control} comparison {plural(result.unit)}, {result.n_pre} periods before launch."
    )
    return [_one_line(x) for x in lines]


def plan_lines(spec, recommendation) -> list[str]:
    """The first four lines of a test plan's summary.md."""
    lines = [f"{spec.name}: {recommendation.label}. {recommendation.headline}"]
    mde = recommendation.mde
    what = (
        f"detects a {format_pct(mde, 1, sign=False)} change in {spec.primary.name} with {spec.power:.0%} power"
        if _finite(mde)
        else f"no detectable change computed for {spec.primary.name}"
    )
    days = f" after {recommendation.days} days" if recommendation.days else ""
    units = f" ({recommendation.units:,.0f} units)" if _finite(recommendation.units) else ""
    lines.append(f"Primary metric {spec.primary.name}: the test {what}{days}{units}.")
    guards = [
        f"{g.name}" + (f" (margin {g.margin:.1%})" if g.margin is not None else "")
        for g in getattr(spec, "guardrails", ())
    ]
    lines.append("Guardrails: " + (", ".join(guards) + " (powered in the plan)" if guards else "none declared") + ".")
    lines.append("Health: a plan from history; no test data yet.")
    return [_one_line(x) for x in lines]


def summary_text(lines: Sequence[str], link: str) -> str:
    """summary.md: the template's four lines and ``Full readout: <link>``, one per line."""
    body = [_one_line(x) for x in lines][:4]
    body += [""] * (4 - len(body))
    return "\n".join([*body, f"Full readout: {link}"]) + "\n"


def failed_summary_text(name: str, error: str, link: str) -> str:
    """summary.md of a readout that failed: what failed, and where the details are."""
    return (
        "\n".join(
            [
                f"{name}: readout FAILED. No verdict.",
                f"Error: {_one_line(error)}",
                "Guardrails: not computed.",
                "Health: not computed.",
                f"Details: {link}",
            ]
        )
        + "\n"
    )
