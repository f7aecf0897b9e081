"""The decision rules (abkit.verdict): every branch, the guardrail margins and the "more days" arithmetic.

Results are built directly from rows with known intervals, so each rule is
checked on its boundary; the days-needed estimate is checked against
statsmodels' power solver (an independent implementation). No kernel; fast.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import abkit
from abkit.results import ExperimentResult
from abkit.stats.checks import srm_test
from abkit.verdict import (
    BALANCE_ALARM,
    COLOURS,
    days_to_detect,
    days_to_show_margin,
    decide,
    decide_rollout,
    guardrail_status,
    missingness_checks,
    missingness_test,
    p_label,
    p_text,
    srm_sentence,
)

Z = stats.norm.isf(0.025)


def row(metric, rel, rel_se, better="lower", arm="treatment", n=(10_000, 10_000), baseline=0.1):
    lo, hi = rel - Z * rel_se, rel + Z * rel_se
    p = float(2 * stats.norm.sf(abs(rel) / rel_se))
    return {
        "metric": metric,
        "variant": arm,
        "control_value": baseline,
        "treatment_value": baseline * (1 + rel),
        "effect": baseline * rel,
        "ci_lower": baseline * lo,
        "ci_upper": baseline * hi,
        "rel_effect": rel,
        "rel_ci_lower": lo,
        "rel_ci_upper": hi,
        "p_value": p,
        "n_control": n[0],
        "n_treatment": n[1],
        "method": "test",
        "se": baseline * rel_se,
        "rel_se": rel_se,
        "df": np.inf,
        "variance_reduction": 0.0,
        "dropped_control": 0,
        "dropped_treatment": 0,
        "better": better,
    }


def result(*rows, counts=(10_000, 10_000), arms=("control", "treatment"), alpha=0.05):
    names = list(dict.fromkeys(r["metric"] for r in rows))
    metrics = tuple(abkit.Mean(n, name=n) for n in names)
    srm = srm_test(dict(zip(arms, counts)))
    return ExperimentResult(
        rows=tuple(rows), metrics=metrics, arms=arms, control="control", alpha=alpha, correction=None, srm=srm
    )


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
    res = result(row("p", -0.06, 0.02), row("g", +0.03, 0.02))  # worse but not significant
    assert decide(res, "p", ["g"])[0].label == "Ship"
    res = result(row("p", -0.06, 0.02), row("g", +0.05, 0.02))  # significantly worse
    v = decide(res, "p", ["g"])[0]
    assert v.label == "Do not ship" and "guardrail g was breached" in v.headline


@pytest.mark.parametrize(
    "better, rel, se, margin, status",
    [
        # lower is better: the upper bound must be <= margin
        ("lower", 0.00, 0.01, 0.02, "ok"),  # CI [-1.96%, +1.96%] within +2%
        ("lower", 0.00, 0.0103, 0.02, "unclear"),  # upper bound +2.02% > 2%
        ("lower", 0.05, 0.01, 0.02, "breached"),  # lower bound +3.04% > 2%
        ("lower", 0.039, 0.01, 0.02, "unclear"),  # lower bound +1.94%, just inside the margin
        # higher is better: the lower bound must be >= -margin
        ("higher", 0.00, 0.01, 0.02, "ok"),
        ("higher", -0.05, 0.01, 0.02, "breached"),
        ("higher", -0.02, 0.01, 0.02, "unclear"),
        ("lower", -0.30, 0.40, 0.10, "unclear"),  # very noisy: cannot show non-inferiority
    ],
)
def test_guardrail_margin_rule(better, rel, se, margin, status):
    res = result(row("g", rel, se, better=better))
    got, text = guardrail_status(res, res.row("g"), margin)
    assert got == status, text
    assert f"{margin:.1%}" in text


def test_unclear_guardrail_makes_a_winner_inconclusive_and_says_how_long():
    res = result(row("p", -0.06, 0.02), row("g", -0.10, 0.15))  # bound +19.4% > 10% margin
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
    assert decide(res, "p", balance_p=0.02)[0].label == "Ship"  # only the alarm level invalidates


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
    res = result(
        row("p", -0.08, 0.02, arm="a"), row("p", 0.0, 0.02, arm="b"), arms=arms, counts=(10_000, 10_000, 10_000)
    )
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
    v = decide_rollout(
        "contact rate", "lower", -0.061, -0.090, -0.032, 0.0004, 0.41, bootstrap_p=0.002, where="launched markets"
    )
    assert v.label == "Worked" and v.colour == COLOURS["Worked"]
    assert v.headline == ("The launch cut contact rate by 6.1% (95% CI 3.2% to 9.0%) on average in launched markets.")
    assert any("pre-trend test p = 0.410" in r for r in v.reasons)
    assert any("p < 0.001" in r and "bootstrap p = 0.002" in r for r in v.reasons)


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


# --------------------------------------------------------------------------- words for p-values
def test_p_values_read_as_sentences():
    assert p_text(0.0412) == "p = 0.041" and p_text(5.19e-33) == "p < 0.001" and p_text(0.001) == "p = 0.001"
    assert p_text(float("nan")) == "p n/a" and p_text(None, "always-valid p") == "always-valid p n/a"
    assert p_text(0.8756, "Holm-adjusted p") == "Holm-adjusted p = 0.876"
    res = result(row("p", -0.10, 0.02))
    assert p_label(res) == "p"
    from dataclasses import replace

    assert p_label(replace(res, correction="holm")) == "Holm-adjusted p"
    assert p_label(replace(res, correction="bh", sequential=True)) == "Benjamini-Hochberg-adjusted always-valid p"


def test_verdict_texts_have_no_p_equals_less_than_and_no_shouting():
    res = result(row("p", -0.10, 0.02), counts=(10_000, 11_000))  # SRM p ~ 1e-11
    (v,) = decide(res, "p")
    text = " ".join([v.headline, *v.reasons])
    assert "p = <" not in text and "p <0" not in text and "e-" not in text
    assert "SAMPLE RATIO MISMATCH" not in text and "Sample ratio mismatch: control 10,000 units" in text
    assert "p < 0.001" in text
    assert srm_sentence(res.srm).startswith("Sample ratio mismatch: ")


def test_adjusted_p_values_are_labelled_in_the_verdict():
    from dataclasses import replace

    r = {**row("p", -0.10, 0.02), "p_value_adjusted": 0.876}
    (v,) = decide(replace(result(r), correction="holm"), "p")
    assert "Holm-adjusted p = 0.876" in v.reasons[0]


# --------------------------------------------------------------------------- always-valid days
def _av_half_width(V, tau2, alpha):
    """The normal-mixture boundary, written out (Howard et al. 2021, eq. (14) on the effect scale)."""
    return math.sqrt(V * (V + tau2) / tau2 * (math.log((V + tau2) / V) + 2 * math.log(1 / alpha)))


def _independent_days(rel_se, units_now, planned_n, mde, days_elapsed, alpha=0.05, power=0.8):
    """Days until the always-valid interval detects ``mde`` with ``power``: brentq on n, from first principles."""
    from scipy import optimize

    c = 2 * math.log(1 / alpha)
    x = optimize.brentq(lambda x: math.log1p(x) + c - x, c, 10 * c + 10)  # tau^2 / V at the planned size
    V = rel_se**2
    tau2 = x * V * units_now / planned_n
    zp = stats.norm.ppf(power)

    def gap(n):
        v = V * units_now / n
        return _av_half_width(v, tau2, alpha) + zp * math.sqrt(v) - mde

    n = optimize.brentq(gap, units_now * 1e-6, units_now * 1e6, xtol=1e-6)
    return math.ceil(days_elapsed * n / units_now - 1e-9), n


@pytest.mark.parametrize(
    "rel_se, planned, mde", [(0.035, 40_000, 0.065), (0.02, 10_000, 0.03), (0.01, 80_000, 0.05), (0.05, 20_000, 0.2)]
)
def test_always_valid_days_match_an_independent_computation(rel_se, planned, mde):
    from abkit.sequential import AlwaysValid

    units = 24_000
    r = row("p", -0.01, rel_se, n=(units // 2, units // 2))
    days_total, n_needed = _independent_days(rel_se, units, planned, mde, 12)
    est = days_to_detect(r, mde, 12, units_now=units, sequential=AlwaysValid(planned_n=planned))
    assert est.days_total == days_total and est.days_more == max(0, days_total - 12)
    assert est.units_needed == pytest.approx(n_needed, rel=1e-6)
    fixed = days_to_detect(r, mde, 12, units_now=units)
    assert est.units_needed > fixed.units_needed  # the always-valid interval is wider
    # True (the mixture read from an always-valid row's effect-scale tau) agrees with the explicit design
    from abkit.stats.confidence_sequences import optimal_mixing_ratio

    tau = math.sqrt(optimal_mixing_ratio(0.05) * r["se"] ** 2 * units / planned)
    same = days_to_detect({**r, "tau": tau}, mde, 12, units_now=units, sequential=True)
    assert same.units_needed == pytest.approx(est.units_needed, rel=1e-9)


def test_always_valid_days_give_the_planned_power():
    """At the units found, a true lift of mde puts the always-valid interval clear of 0 with probability power."""
    from abkit.sequential import AlwaysValid
    from abkit.stats.confidence_sequences import always_valid_half_width, optimal_mixing_ratio

    units, rel_se, mde, planned = 20_000, 0.03, 0.05, 30_000
    r = row("p", 0.0, rel_se, n=(units // 2, units // 2))
    est = days_to_detect(r, mde, 10, units_now=units, power=0.9, sequential=AlwaysValid(planned_n=planned))
    V = rel_se**2 * units / est.units_needed
    tau2 = optimal_mixing_ratio(0.05) * rel_se**2 * units / planned
    h = float(always_valid_half_width(V, tau2, 0.05))
    assert stats.norm.cdf((mde - h) / math.sqrt(V)) == pytest.approx(0.9, abs=1e-6)


def test_sequential_verdict_counts_days_for_the_always_valid_interval():
    from dataclasses import replace

    from abkit.sequential import AlwaysValid

    r = row("p", -0.01, 0.03, n=(6_000, 6_000))
    res = result(r, counts=(6_000, 6_000))
    (fixed,) = decide(res, "p", mde=0.065, days_elapsed=12)
    (seq,) = decide(
        replace(res, sequential=True), "p", mde=0.065, days_elapsed=12, sequential=AlwaysValid(planned_n=20_000)
    )
    est = days_to_detect(r, 0.065, 12, units_now=12_000, sequential=AlwaysValid(planned_n=20_000))
    assert seq.days_more == est.days_more > fixed.days_more
    assert "always-valid CI" in seq.reasons[0] and "always-valid p" in seq.reasons[0]
    assert "on the always-valid interval" in seq.headline


def test_always_valid_margin_days():
    from abkit.sequential import AlwaysValid
    from abkit.stats.confidence_sequences import always_valid_half_width, optimal_mixing_ratio

    r = row("g", 0.0, 0.02, n=(5_000, 5_000))
    est = days_to_show_margin(r, 0.05, 10, units_now=10_000, sequential=AlwaysValid(planned_n=10_000))
    fixed = days_to_show_margin(r, 0.05, 10, units_now=10_000)
    V = 0.02**2 * 10_000 / est.units_needed
    h = float(always_valid_half_width(V, optimal_mixing_ratio(0.05) * 0.02**2, 0.05))
    assert h == pytest.approx(0.05, rel=1e-6) and est.days_total > fixed.days_total


# --------------------------------------------------------------------------- differential missingness
def test_missingness_test_is_the_2x2_chi_square():
    z, p = missingness_test(3285, 19_980, 3091, 20_020)
    chi2, p_chi, _, _ = stats.chi2_contingency([[3285, 19_980 - 3285], [3091, 20_020 - 3091]], correction=False)
    assert z**2 == pytest.approx(chi2) and p == pytest.approx(p_chi) and z < 0
    assert missingness_test(10, 10, 20, 20) == (0.0, 1.0)  # everybody has a value


def _dropna_result(p_control, p_treatment, n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    arm = rng.random(n) < 0.5
    has = rng.random(n) < np.where(arm, p_treatment, p_control)
    import pandas as pd

    df = pd.DataFrame(
        {
            "variant": np.where(arm, "treatment", "control"),
            "y": rng.normal(size=n),
            "t": np.where(has, rng.gamma(2.0, 24.0, n), np.nan),
        }
    )
    return abkit.analyze(df, [abkit.Mean("y"), abkit.Mean("t", dropna=True, better="lower")])


def test_missingness_is_flagged_when_the_treatment_changes_who_has_a_value():
    res = _dropna_result(0.16, 0.14)
    (check,) = missingness_checks(res)
    assert check.metric == "t" and check.flagged and check.p_value < 1e-4
    assert check.share_control == pytest.approx(0.16, abs=0.01)
    assert check.share_treatment == pytest.approx(0.14, abs=0.01)
    (v,) = decide(res, "y")
    caution = [r for r in v.reasons if r.startswith("caution: t is measured on a different mix")]
    assert caution and caution[0].endswith("read its effect with care") and v.label != "Invalid"
    # the same data without a difference in who has a value: no flag, no caution
    res = _dropna_result(0.16, 0.16, seed=3)
    (check,) = missingness_checks(res)
    assert not check.flagged
    assert not any("different mix" in r for r in decide(res, "y")[0].reasons)
    assert missingness_checks(result(row("p", 0.0, 0.02))) == []  # no dropna metric, nothing to check


@pytest.mark.parametrize("threshold", [0.05, 0.001])
def test_missingness_false_flag_rate_in_a_a_data(threshold):
    """Equal shares in both arms: the check flags at its threshold's rate (the z-test is calibrated)."""
    rng = np.random.default_rng(11)
    sims, n = 40_000, 8_000
    with_c = rng.binomial(n, 0.16, sims)
    with_t = rng.binomial(n, 0.16, sims)
    p = np.array([missingness_test(int(a), n, int(b), n)[1] for a, b in zip(with_c, with_t)])
    rate = float(np.mean(p < threshold))
    se = math.sqrt(threshold * (1 - threshold) / sims)
    assert abs(rate - threshold) < 4 * se + 1e-4, (rate, threshold)


def test_missingness_false_flag_rate_through_analyze():
    """A/A data through abkit.analyze (the dropped counts per arm): about alpha of the tests flag."""
    flags = [missingness_checks(_dropna_result(0.2, 0.2, n=2_000, seed=s))[0].flagged for s in range(300)]
    rate = float(np.mean(flags))
    assert abs(rate - 0.05) < 4 * math.sqrt(0.05 * 0.95 / 300), rate


def test_missingness_skips_row_level_quantiles():
    """A Quantile with unit= counts units with a value but rows dropped: no unit-level share to compare, so
    no check (a reviewer found '50.7% of buyers have a value' where 91.8% had)."""
    import pandas as pd

    from abkit.verdict import missingness_checks

    rng = np.random.default_rng(3)
    buyers = np.repeat(np.arange(3000), rng.integers(1, 5, 3000))
    arm = np.where(buyers % 2 == 0, "control", "treatment")
    x = rng.gamma(2.0, 20.0, buyers.size)
    x[rng.random(buyers.size) < 0.3] = np.nan
    df = pd.DataFrame({"variant": arm, "buyer_id": buyers, "hours": x, "y": rng.random(buyers.size)})
    q = abkit.Quantile("hours", 0.5, unit="buyer_id", dropna=True)
    res = abkit.analyze(df, [q, abkit.Mean("y")])
    assert missingness_checks(res) == []
    assert res.row(q.name)["dropped_control"] > 0  # there was something to (wrongly) compare


# --------------------------------------------------------------------------- negative and near-zero control values
def _net_amounts(shift, n=40_000, mean=-5.0, sd=4.0, seed=0):
    """Net amounts per buyer (refunds minus purchases: negative on average) with a treatment shift."""
    rng = np.random.default_rng(seed)
    arm = np.repeat(["control", "treatment"], n // 2)
    z = rng.normal(0, 1, n)
    z[: n // 2] -= z[: n // 2].mean()
    z[n // 2 :] -= z[n // 2 :].mean()
    return pd.DataFrame({"variant": arm, "net": mean + sd * z + shift * (arm == "treatment")})


def test_guardrail_margin_on_a_negative_control_value_reads_the_effect_not_its_mirror():
    """Higher is better, control -5.0: treatment at -5.3 is 6% (of the size) worse and breaches a 2% margin;
    at -4.7 it is 6% better and holds. With t / c - 1 the two were swapped."""
    worse = abkit.analyze(_net_amounts(-0.3), [abkit.Mean("net")])
    status, text = guardrail_status(worse, worse.row("net"), 0.02)
    assert worse.row("net")["rel_effect"] == pytest.approx(-0.06, rel=1e-9)
    assert status == "breached", text
    assert "i.e. by 0.100 (2.0% of the size of its negative control value -5.000)" in text
    assert "-6.0% of the size of control's value -5.000" in text
    better = abkit.analyze(_net_amounts(+0.3), [abkit.Mean("net")])
    assert guardrail_status(better, better.row("net"), 0.02)[0] == "ok"
    both = abkit.analyze(_net_amounts(+0.3).assign(g=_net_amounts(-0.3).net), [abkit.Mean("net"), abkit.Mean("g")])
    (v,) = decide(both, "net", {"g": 0.02})
    assert v.label == "Do not ship" and "guardrail g was breached" in v.headline
    (v,) = decide(both, "g")
    assert v.label == "Do not ship" and v.reasons[0].startswith("g down 6.0% of the size of control's value -5.000")


def test_a_primary_near_zero_is_read_in_absolute_units():
    """Control mean 0.01 +/- 0.03 (not distinguishable from 0), treatment +0.20: the headline gives the absolute
    change and says why, never a relative number like +1900%; no days are estimated for a relative MDE."""
    df = _net_amounts(0.19, mean=0.01, sd=3.0)
    res = abkit.analyze(df, [abkit.Mean("net")])
    row = res.row("net")
    assert row["p_value"] < 1e-8 and not np.isfinite(row["rel_ci_upper"])
    (v,) = decide(res, "net", mde=0.05, days_elapsed=14)
    assert v.label == "Ship" and v.headline == "treatment raised net by 0.190 (higher is better)."
    assert "not distinguishable from zero, so the change is given in absolute units" in v.reasons[0]
    assert not re.search(r"\d%", v.headline + v.reasons[0].replace("95% CI", ""))
    assert days_to_detect(row, 0.05, 14).days_more is None
    from abkit.readout import ab as readout_ab
    from abkit.readout import render

    size = readout_ab.SampleSize(
        units=40_000, planned_units=None, needed=None, mde=0.05, power=0.8, days=14, days_source="test"
    )
    page = render.health_html(res, size=size)
    assert "No estimate of the units needed for a 5.0% change" in page and "No sample-size plan" not in page


def test_a_relative_margin_is_not_judged_on_a_guardrail_near_zero():
    """A 2% margin on a guardrail whose control value cannot be told from 0 is meaningless: unclear (never ok, so
    no Ship), with the reason and what to do; no days estimate; without a margin the usual rule applies."""
    df = _net_amounts(0.0, mean=0.01, sd=3.0).assign(p=_net_amounts(0.3, seed=1).net)
    res = abkit.analyze(df, [abkit.Mean("p"), abkit.Mean("net")])
    status, text = guardrail_status(res, res.row("net"), 0.02)
    assert status == "unclear"
    assert "is not distinguishable from zero, so its relative margin (2.0%) cannot be checked" in text
    assert "without a margin" in text
    (v,) = decide(res, "p", {"net": 0.02}, days_elapsed=14)
    assert v.label == "Inconclusive" and v.days_more is None
    assert days_to_show_margin(res.row("net"), 0.02, 14).days_more is None
    assert decide(res, "p", ["net"])[0].label == "Ship"
