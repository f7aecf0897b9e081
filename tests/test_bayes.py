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
        m2, _ = integrate.quad(lambda r: r * r * dens(r), -1, 1, epsabs=1e-14, epsrel=1e-12,
                               points=[est, prior.mean])
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
        np.sum(y / se**2) / np.sum(1 / se**2))
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
