"""The Bayesian reading: posterior against numerical integration, P(better) and
expected loss against posterior draws, the learned prior against statsmodels'
DerSimonian-Laird, and the analyze integration."""

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import abkit
from abkit.stats.bayes import NormalPrior, expected_loss, posterior, prior_from_history, prob_better


def test_posterior_matches_numerical_integration():
    prior = NormalPrior(mean=0.01, sd=0.04)
    for est, se in [(0.03, 0.02), (-0.1, 0.05), (0.0, 0.2)]:

        def dens(r, est=est, se=se):
            return stats.norm.pdf(r, prior.mean, prior.sd) * stats.norm.pdf(est, r, se)

        z, _ = integrate.quad(dens, -1, 1, epsabs=1e-14, epsrel=1e-12, points=[est, prior.mean])
        m1, _ = integrate.quad(lambda r: r * dens(r), -1, 1, epsabs=1e-14, epsrel=1e-12, points=[est, prior.mean])
        m2, _ = integrate.quad(lambda r: r * r * dens(r), -1, 1, epsabs=1e-14, epsrel=1e-12, points=[est, prior.mean])
        mean, sd = posterior(est, se, prior)
        assert mean == pytest.approx(m1 / z, rel=1e-7, abs=1e-12)
        assert sd == pytest.approx(np.sqrt(m2 / z - (m1 / z) ** 2), rel=1e-6)


def test_probability_and_expected_loss_match_posterior_draws():
    rng = np.random.default_rng(0)
    m, s = 0.012, 0.02
    draws = rng.normal(m, s, 2_000_000)
    assert prob_better(m, s, "higher") == pytest.approx(np.mean(draws > 0), abs=2e-3)
    assert prob_better(m, s, "lower") == pytest.approx(np.mean(draws < 0), abs=2e-3)
    assert expected_loss(m, s, "higher") == pytest.approx(np.mean(np.maximum(-draws, 0)), rel=5e-3)
    assert expected_loss(m, s, "higher", "control") == pytest.approx(np.mean(np.maximum(draws, 0)), rel=5e-3)
    assert expected_loss(m, s, "lower") == pytest.approx(np.mean(np.maximum(draws, 0)), rel=5e-3)


def test_prior_from_history_matches_statsmodels_dersimonian_laird():
    from statsmodels.stats.meta_analysis import combine_effects

    rng = np.random.default_rng(1)
    k = 300
    se = rng.uniform(0.01, 0.04, k)
    y = rng.normal(0, 0.03, k) + rng.normal(0, se)
    prior = prior_from_history(y, se)
    ref = combine_effects(y, se**2, method_re="dl")
    assert prior.sd == pytest.approx(np.sqrt(ref.tau2), rel=1e-8)
    assert prior.sd == pytest.approx(0.03, rel=0.15)
    assert prior.mean == 0.0 and prior_from_history(y, se, centre=True).mean == pytest.approx(
        np.sum(y / se**2) / np.sum(1 / se**2)
    )
    with pytest.raises(abkit.AbkitError, match="at least 3"):
        prior_from_history([0.1, 0.2], [0.1, 0.1])


def test_analyze_bayesian_columns():
    rng = np.random.default_rng(2)
    n = 20_000
    df = pd.DataFrame({"variant": rng.choice(["control", "treatment"], n), "x": rng.lognormal(1, 1, n)})
    df.loc[df.variant == "treatment", "x"] *= 1.04
    plain = abkit.analyze(df, [abkit.Mean("x"), abkit.Mean("x", name="x_low", better="lower")])
    assert plain.prior is None
    with pytest.raises(abkit.AbkitError, match="bayesian=True"):
        plain.bayes()
    res = abkit.analyze(df, [abkit.Mean("x"), abkit.Mean("x", name="x_low", better="lower")], bayesian=0.03)
    b = res.bayes().set_index("metric")
    m, s = posterior(b.loc["x", "rel_effect"], b.loc["x", "rel_se"], NormalPrior(sd=0.03))
    assert b.loc["x", "post_rel_effect"] == pytest.approx(m)
    assert b.loc["x", "prob_better"] == pytest.approx(stats.norm.cdf(m / s))
    assert b.loc["x_low", "prob_better"] == pytest.approx(1 - b.loc["x", "prob_better"])
    assert b.loc["x", "expected_loss"] == pytest.approx(b.loc["x_low", "expected_loss_control"])
    assert b.loc["x", "prior_sd"] == 0.03
    # the frequentist columns are untouched
    pd.testing.assert_frame_equal(res.to_frame()[plain.to_frame().columns], plain.to_frame())
    assert "P(better)" in res._repr_html_()
    with pytest.raises(abkit.AbkitError, match="bayesian='yes'"):
        abkit.analyze(df, [abkit.Mean("x")], bayesian="yes")
    with pytest.raises(abkit.AbkitError, match="prior sd=-1"):
        NormalPrior(sd=-1)


def test_prob_better_follows_the_effect_for_a_negative_control_value():
    """A net amount around -5 that treatment raises by 0.5: P(better) near 1 and a tiny expected loss when higher
    is better, near 0 when lower is better (with t / c - 1 both were the other way round)."""
    rng = np.random.default_rng(3)
    n = 20_000
    arm = rng.choice(["control", "treatment"], n)
    df = pd.DataFrame({"variant": arm, "net": rng.normal(-5.0, 4.0, n) + 0.5 * (arm == "treatment")})
    res = abkit.analyze(df, [abkit.Mean("net"), abkit.Mean("net", name="net_low", better="lower")], bayesian=True)
    b = res.to_frame().set_index("metric")
    assert b.loc["net", "control_value"] < 0 and b.loc["net", "effect"] > 0 and b.loc["net", "p_value"] < 0.001
    assert b.loc["net", "rel_effect"] > 0 and b.loc["net", "post_rel_effect"] > 0
    assert b.loc["net", "prob_better"] > 0.99 and b.loc["net_low", "prob_better"] < 0.01
    assert b.loc["net", "expected_loss"] < b.loc["net", "expected_loss_control"]
    # P(better) agrees with the sign of the effect in every arm of many small random tests
    for seed in range(30):
        r = np.random.default_rng(seed)
        m = 400
        a = r.choice(["control", "treatment"], m)
        shift = r.normal(0, 1.0)
        d = pd.DataFrame({"variant": a, "v": r.normal(-8.0, 3.0, m) + shift * (a == "treatment")})
        row = abkit.analyze(d, [abkit.Mean("v")], bayesian=True).row("v")
        assert (row["prob_better"] > 0.5) == (row["effect"] > 0)


def test_no_bayesian_reading_when_the_control_value_is_not_distinguishable_from_zero():
    """Control mean 0.02 +/- 0.07: the relative lift has no bounded interval and its normal approximation
    fails, so the Bayesian columns are NaN (a refusal) and the pages say why, never "nan%"."""
    import re

    rng = np.random.default_rng(5)
    n = 4_000
    arm = np.repeat(["control", "treatment"], n // 2)
    z = rng.normal(0, 1, n)
    df = pd.DataFrame({"variant": arm, "y": 3.0 * z + np.where(arm == "treatment", 1.0, 0.02)})
    res = abkit.analyze(df, [abkit.Mean("y")], bayesian=True)
    row = res.row("y")
    assert not np.isfinite(row["rel_ci_lower"]) and row["p_value"] < 1e-10
    for k in ("prob_better", "expected_loss", "expected_loss_control", "post_rel_effect"):
        assert np.isnan(row[k])
    html = res._repr_html_()
    assert "not distinguishable from zero" in html and not re.search(r"\bnan\b", html, re.IGNORECASE)
