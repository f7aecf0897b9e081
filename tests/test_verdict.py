"""The decision rules (abkit.verdict): every branch, the guardrail margins and the "more days" arithmetic.

Results are built directly from rows with known intervals, so each rule is
checked on its boundary; the days-needed estimate is checked against
statsmodels' power solver (an independent implementation). No kernel; fast.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import abkit
from abkit.results import ExperimentResult
from abkit.stats.checks import srm_test
from abkit.verdict import (
    BALANCE_ALARM, COLOURS, days_to_detect, days_to_show_margin, decide, decide_rollout, guardrail_status,
)

Z = stats.norm.isf(0.025)


def row(metric, rel, rel_se, better="lower", arm="treatment", n=(10_000, 10_000), baseline=0.1):
    lo, hi = rel - Z * rel_se, rel + Z * rel_se
    p = float(2 * stats.norm.sf(abs(rel) / rel_se))
    return {"metric": metric, "variant": arm, "control_value": baseline, "treatment_value": baseline * (1 + rel),
            "effect": baseline * rel, "ci_lower": baseline * lo, "ci_upper": baseline * hi, "rel_effect": rel,
            "rel_ci_lower": lo, "rel_ci_upper": hi, "p_value": p, "n_control": n[0], "n_treatment": n[1],
            "method": "test", "se": baseline * rel_se, "rel_se": rel_se, "df": np.inf, "variance_reduction": 0.0,
            "dropped_control": 0, "dropped_treatment": 0, "better": better}


def result(*rows, counts=(10_000, 10_000), arms=("control", "treatment"), alpha=0.05):
    names = list(dict.fromkeys(r["metric"] for r in rows))
    metrics = tuple(abkit.Mean(n, name=n) for n in names)
    srm = srm_test(dict(zip(arms, counts)))
    return ExperimentResult(rows=tuple(rows), metrics=metrics, arms=arms, control="control", alpha=alpha,
                            correction=None, srm=srm)


# --------------------------------------------------------------------------- A/B labels
def test_ship_when_primary_better_and_guardrails_hold():
    res = result(row("contact_rate", -0.06, 0.02), row("abuse", 0.0, 0.01))
    (v,) = decide(res, "contact_rate", {"abuse": 0.02})
    assert v.label == "Ship" and v.display_label == "Ship" and v.colour == COLOURS["Ship"]
    assert "lowered contact_rate by 6.0%" in v.headline and "every guardrail held" in v.headline


def test_do_not_ship_when_primary_worse():
    (v,) = decide(result(row("contact_rate", +0.06, 0.02)), "contact_rate")
    assert v.label == "Do not ship" and "contact_rate got worse" in v.headline


def test_higher_is_better_flips_the_direction():
    (v,) = decide(result(row("csat", +0.05, 0.01, better="higher")), "csat")
    assert v.label == "Ship" and "raised csat" in v.headline
    (v,) = decide(result(row("csat", -0.05, 0.01, better="higher")), "csat")
    assert v.label == "Do not ship"


def test_guardrail_without_margin_breaks_only_when_significantly_worse():
    res = result(row("p", -0.06, 0.02), row("g", +0.03, 0.02))            # worse but not significant
    assert decide(res, "p", ["g"])[0].label == "Ship"
    res = result(row("p", -0.06, 0.02), row("g", +0.05, 0.02))            # significantly worse
    v = decide(res, "p", ["g"])[0]
    assert v.label == "Do not ship" and "guardrail g was breached" in v.headline


@pytest.mark.parametrize("better, rel, se, margin, status", [
    # lower is better: the upper bound must be <= margin
    ("lower", 0.00, 0.01, 0.02, "ok"),           # CI [-1.96%, +1.96%] within +2%
    ("lower", 0.00, 0.0103, 0.02, "unclear"),    # upper bound +2.02% > 2%
    ("lower", 0.05, 0.01, 0.02, "breached"),     # lower bound +3.04% > 2%
    ("lower", 0.039, 0.01, 0.02, "unclear"),     # lower bound +1.94%, just inside the margin
    # higher is better: the lower bound must be >= -margin
    ("higher", 0.00, 0.01, 0.02, "ok"),
    ("higher", -0.05, 0.01, 0.02, "breached"),
    ("higher", -0.02, 0.01, 0.02, "unclear"),
    ("lower", -0.30, 0.40, 0.10, "unclear"),     # very noisy: cannot show non-inferiority
])
def test_guardrail_margin_rule(better, rel, se, margin, status):
    res = result(row("g", rel, se, better=better))
    got, text = guardrail_status(res, res.row("g"), margin)
    assert got == status, text
    assert f"{margin:.1%}" in text


def test_unclear_guardrail_makes_a_winner_inconclusive_and_says_how_long():
    res = result(row("p", -0.06, 0.02), row("g", -0.10, 0.15))   # bound +19.4% > 10% margin
    (v,) = decide(res, "p", {"g": 0.10}, days_elapsed=14)
    assert v.label == "Inconclusive" and v.days_more is not None and v.days_more > 0
    # se needed = (0.10 - (-0.10)) / z; days scale by (se / se_needed)^2
    expected = math.ceil(14 * (0.15 / (0.20 / Z)) ** 2 - 1e-9) - 14
    assert v.days_more == expected and v.display_label == f"Inconclusive (need {expected} more days)"
    assert "to show g stays within its margin" in v.headline


def test_invalid_beats_everything():
    res = result(row("p", -0.10, 0.02), counts=(10_000, 11_000))
    (v,) = decide(res, "p")
    assert v.label == "Invalid" and v.note == "sample ratio mismatch" and "sample ratio" in v.headline
    res = result(row("p", -0.10, 0.02))
    (v,) = decide(res, "p", balance_p=BALANCE_ALARM / 2)
    assert v.label == "Invalid" and "before the test" in v.headline
    assert decide(res, "p", balance_p=0.02)[0].label == "Ship"       # only the alarm level invalidates


def test_inconclusive_needs_more_days_for_the_planned_mde():
    r = row("p", -0.01, 0.02, n=(5_000, 5_000))
    (v,) = decide(result(r, counts=(5_000, 5_000)), "p", mde=0.03, power=0.8, days_elapsed=10)
    assert v.label == "Inconclusive" and v.note.startswith("need ") and v.note.endswith("more days")
    est = days_to_detect(r, 0.03, 10, alpha=0.05, power=0.8)
    assert v.days_more == est.days_more and est.days_total == 10 + est.days_more
    assert f"{est.days_total} in total" in v.headline


def test_already_powered_means_the_effect_is_small():
    r = row("p", -0.001, 0.005)
    (v,) = decide(result(r), "p", mde=0.05, days_elapsed=28)
    assert v.label == "Inconclusive" and v.note is None and "probably smaller" in v.headline


def test_days_to_detect_matches_statsmodels():
    """Units needed for the MDE vs statsmodels' t-test power solver, from the sd backed out of the SE."""
    from statsmodels.stats.power import TTestIndPower

    r = row("p", -0.01, 0.02, n=(4_000, 6_000))
    est = days_to_detect(r, 0.04, days_elapsed=7, alpha=0.05, power=0.8)
    sd = 0.02 / math.sqrt(1 / 4_000 + 1 / 6_000)
    n_c = TTestIndPower().solve_power(effect_size=0.04 / sd, alpha=0.05, power=0.8, ratio=1.5)
    assert est.factor == pytest.approx(n_c / 4_000, rel=1e-4)
    assert est.units_needed == pytest.approx(n_c / 4_000 * 10_000, rel=1e-4)
    assert est.days_total == math.ceil(7 * n_c / 4_000 - 1e-9)
    # and the closed form the docstring quotes (normal approximation) agrees to within a day
    z = stats.norm.isf(0.025) + stats.norm.ppf(0.8)
    assert abs(est.days_total - 7 * (z * 0.02 / 0.04) ** 2) < 1


def test_days_to_show_margin_gives_up_when_the_estimate_is_beyond_the_margin():
    assert days_to_show_margin(row("g", 0.05, 0.02), 0.02, 10).days_total is None
    assert days_to_show_margin(row("g", 0.0, 0.005), 0.02, 10).days_more == 0


def test_every_arm_gets_its_own_verdict():
    arms = ("control", "a", "b")
    res = result(row("p", -0.08, 0.02, arm="a"), row("p", 0.0, 0.02, arm="b"), arms=arms,
                 counts=(10_000, 10_000, 10_000))
    va, vb = decide(res, "p")
    assert (va.variant, va.label) == ("a", "Ship") and (vb.variant, vb.label) == ("b", "Inconclusive")


def test_unknown_metric_names_are_errors():
    res = result(row("p", -0.08, 0.02))
    with pytest.raises(abkit.AbkitError, match="no metric named 'nope'"):
        decide(res, "nope")
    with pytest.raises(abkit.AbkitError, match="guard"):
        decide(res, "p", ["guard"])


# --------------------------------------------------------------------------- rollouts
def test_rollout_worked_headline_in_plain_words():
    v = decide_rollout("contact rate", "lower", -0.061, -0.090, -0.032, 0.0004, 0.41, bootstrap_p=0.002,
                       where="launched markets")
    assert v.label == "Worked" and v.colour == COLOURS["Worked"]
    assert v.headline == ("The launch cut contact rate by 6.1% (95% CI 3.2% to 9.0%) on average in launched "
                          "markets.")
    assert any("pre-trend test p 0.410" in r for r in v.reasons)


def test_rollout_made_it_worse_and_no_impact():
    v = decide_rollout("contact rate", "lower", 0.05, 0.02, 0.08, 0.001, 0.5)
    assert v.label == "Made it worse" and "raised contact rate by 5.0%" in v.headline
    v = decide_rollout("refund speed", "higher", -0.05, -0.08, -0.02, 0.001, 0.5)
    assert v.label == "Made it worse"
    v = decide_rollout("contact rate", "lower", -0.02, -0.06, 0.02, 0.3, 0.5)
    assert v.label == "No detectable impact" and "between -6.0% and +2.0%" in v.headline


def test_rollout_pretrends_invalidate_first():
    v = decide_rollout("contact rate", "lower", -0.061, -0.090, -0.032, 0.0001, 0.01)
    assert v.label == "Invalid" and v.display_label == "Invalid (pre-trends fail)"
    assert "drifting apart before launch" in v.headline
    # no pre-period: nothing to invalidate, said in the reasons
    v = decide_rollout("contact rate", "lower", -0.061, -0.090, -0.032, 0.0001, float("nan"))
    assert v.label == "Worked" and any("no pre-launch periods" in r for r in v.reasons)


def test_rollout_needs_the_bootstrap_to_agree_with_few_units():
    v = decide_rollout("contact rate", "lower", -0.061, -0.090, -0.032, 0.01, 0.4, bootstrap_p=0.09)
    assert v.label == "No detectable impact" and any("bootstrap" in r for r in v.reasons)


def test_rollout_failed_placebo_is_a_caution_not_a_label():
    v = decide_rollout("contact rate", "lower", -0.061, -0.090, -0.032, 0.001, 0.4, placebo_p=[0.5, 0.01])
    assert v.label == "Worked" and any("1 of 2 placebo" in r for r in v.reasons)
