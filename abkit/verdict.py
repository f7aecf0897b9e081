"""The decision rule: one documented function turns a result into a verdict.

Rule (per treatment arm, evaluated in this order):

1. **Invalid**: the sample-ratio-mismatch test fails (p < 0.001). The
   split of units is implausible under the planned allocation, so the
   assignment or logging is broken and no effect can be trusted.
2. **Do not ship**: the primary metric moved significantly in the wrong
   direction, or a guardrail metric did.
3. **Ship**: the primary metric moved significantly in the right direction
   and no guardrail got significantly worse.
4. **Inconclusive**: otherwise; the data cannot tell the arm from control.

"Significantly" means the decision p-value (Holm/BH-adjusted when the
analysis asked for a correction) is below alpha; the good direction is the
metric's ``better``.
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from .results import ExperimentResult, format_p, format_pct

__all__ = ["Verdict", "decide"]

COLOURS = {"Ship": "#1a7f37", "Do not ship": "#cf222e", "Inconclusive": "#9a6700", "Invalid": "#8250df"}


@dataclass(frozen=True)
class Verdict:
    """A decision for one treatment arm, in plain words."""

    variant: Hashable
    label: str          # Ship / Do not ship / Inconclusive / Invalid
    headline: str       # one sentence a leader can read
    reasons: tuple[str, ...]

    @property
    def colour(self) -> str:
        return COLOURS[self.label]


def _direction_words(row: dict) -> str:
    return "up" if row["effect"] > 0 else "down"


def decide(result: ExperimentResult, primary: str, guardrails: Sequence[str] = ()) -> list[Verdict]:
    """Verdicts (one per treatment arm) from the primary metric and guardrails."""
    result.metric(primary)
    verdicts = []
    for arm in result.treatments:
        row = result.row(primary, arm)
        p = result.decision_p(row)
        lift = (f"{primary} {_direction_words(row)} {format_pct(abs(row['rel_effect']), 1, sign=False)} "
                f"({1 - result.alpha:.0%} CI {format_pct(row['rel_ci_lower'])} to "
                f"{format_pct(row['rel_ci_upper'])}, p {format_p(p)})")
        reasons = [lift]
        bad_guards = [g for g in guardrails if result.outcome(result.row(g, arm)) == "worse"]
        for g in bad_guards:
            gr = result.row(g, arm)
            reasons.append(f"guardrail {g} got worse: {format_pct(gr['rel_effect'])} "
                           f"(p {format_p(result.decision_p(gr))})")
        outcome = result.outcome(row)
        if result.srm.mismatch:
            label = "Invalid"
            headline = (f"Do not trust these numbers: the split of units between arms is not the planned "
                        f"one (sample ratio mismatch, p {format_p(result.srm.p_value)}). Fix the "
                        "assignment or logging and rerun.")
            reasons.insert(0, result.srm.summary())
        elif outcome == "worse" or bad_guards:
            label = "Do not ship"
            why = (f"{primary} got worse" if outcome == "worse"
                   else f"guardrail{'s' if len(bad_guards) > 1 else ''} {', '.join(bad_guards)} got worse")
            headline = f"{arm} should not ship: {why}."
        elif outcome == "better":
            label = "Ship"
            moved = "lowered" if row["effect"] < 0 else "raised"
            headline = (f"{arm} {moved} {primary} by {format_pct(abs(row['rel_effect']), 1, sign=False)} "
                        f"({row['better']} is better), and no guardrail got worse.")
        else:
            label = "Inconclusive"
            headline = (f"No detectable effect of {arm} on {primary}: the change is between "
                        f"{format_pct(row['rel_ci_lower'])} and {format_pct(row['rel_ci_upper'])}.")
        verdicts.append(Verdict(arm, label, headline, tuple(reasons)))
    return verdicts
