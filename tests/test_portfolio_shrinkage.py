"""Empirical-Bayes shrinkage (abkit.stats.shrinkage, abkit.portfolio.shrink) against independent computations.

* the REML estimate of tau^2 against a direct numerical maximisation of the
  REML likelihood written in matrix form (log|V| + log|X'V^-1 X| + y'Py);
* the DerSimonian-Laird estimate and the random-effects mean against statsmodels;
* the posterior (means, interval bounds, the posterior of a weighted sum) against
  a brute-force double integral over (mu, tau) of the textbook normal-normal
  posterior, with scipy.integrate: no REML identity, no grid, no mixture code shared;
* the plug-in method against its closed form; errors at the edges.

The calibration on simulated portfolios is in test_portfolio_calibration.py.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats

import abkit
from abkit import portfolio
from abkit.stats import shrinkage

SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])  # Rubin (1981), the eight schools
SCHOOLS_SE = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def _matrix_reml(tau2, y, s):
    """-2 x REML log-likelihood (up to a constant), from the matrices: log|V| + log|X'V^-1X| + y'Py."""
    v = np.diag(s * s + tau2)
    vi = np.linalg.inv(v)
    x = np.ones((y.size, 1))
    xvx = x.T @ vi @ x
    p = vi - vi @ x @ np.linalg.inv(xvx) @ x.T @ vi
    return float(np.linalg.slogdet(v)[1] + np.linalg.slogdet(xvx)[1] + y @ p @ y)


def _heterogeneous(seed=1, k=12):
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.01, 0.04, k)
    y = rng.normal(0.01, 0.03, k) + rng.normal(0, s)
    return y, s


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reml_tau2_matches_direct_maximisation(seed):
    y, s = _heterogeneous(seed)
    tau2, converged, _ = shrinkage.reml_tau2(y, s)
    ref = optimize.minimize_scalar(
        _matrix_reml, bounds=(0.0, 1.0), args=(y, s), method="bounded", options={"xatol": 1e-14}
    )
    assert converged and tau2 > 0
    assert tau2 == pytest.approx(ref.x, rel=1e-5)
    assert _matrix_reml(tau2, y, s) <= ref.fun + 1e-10  # at least as high a likelihood
    # the same likelihood up to a constant: differences agree
    a, b = 0.3 * tau2, 2.0 * tau2
    mine = -2 * (shrinkage.reml_log_likelihood(a, y, s) - shrinkage.reml_log_likelihood(b, y, s))
    assert mine == pytest.approx(_matrix_reml(a, y, s) - _matrix_reml(b, y, s), rel=1e-10)


def test_reml_tau2_is_zero_at_the_boundary():
    # the eight schools scatter less than their standard errors explain: REML (and Paule-Mandel) give tau^2 = 0
    from statsmodels.stats.meta_analysis import combine_effects

    fit = shrinkage.fit_prior(SCHOOLS_Y, SCHOOLS_SE)
    assert fit.tau2 == 0.0 and fit.converged
    grid = np.linspace(0, 400, 4001)
    assert np.argmin([_matrix_reml(t, SCHOOLS_Y, SCHOOLS_SE) for t in grid]) == 0
    ref = combine_effects(SCHOOLS_Y, SCHOOLS_SE**2, method_re="pm")
    assert ref.tau2 == 0
    assert fit.mean == pytest.approx(ref.mean_effect_re, rel=1e-12)  # 7.69, the precision-weighted mean
    assert fit.mean_se == pytest.approx(ref.sd_eff_w_re, rel=1e-12)  # 4.07


def test_dersimonian_laird_and_random_effects_mean_match_statsmodels():
    from statsmodels.stats.meta_analysis import combine_effects

    y, s = _heterogeneous(4, k=30)
    ref = combine_effects(y, s**2, method_re="dl")
    tau2 = shrinkage.dersimonian_laird_tau2(y, s)
    assert ref.tau2 > 0 and tau2 == pytest.approx(ref.tau2, rel=1e-10)
    mu, mu_se = shrinkage.weighted_mean(y, s, tau2)
    assert mu == pytest.approx(ref.mean_effect_re, rel=1e-10)
    assert mu_se == pytest.approx(ref.sd_eff_w_re, rel=1e-10)


# --------------------------------------------------------------------------- posterior vs a double integral
def _log_lik(mu, tau, y, s):
    v = s * s + tau * tau
    return float(np.sum(-0.5 * np.log(v) - 0.5 * (y - mu) ** 2 / v))


def _conditional(mu, tau, y, s):
    """The textbook normal-normal posterior of theta given (mu, tau): precision-weighted mean and variance."""
    t2, s2 = tau * tau, s * s
    return (t2 * y + s2 * mu) / (t2 + s2), t2 * s2 / (t2 + s2)


class _Grid:
    """E[g(theta) | y] with flat priors on mu and tau^2, as a double sum over a fine (mu, log tau) grid.

    Nothing is integrated analytically: the joint posterior of (mu, tau) is the product of the k marginal
    normal densities N(y_i; mu, s_i^2 + tau^2), evaluated on the grid (mu spans 12 conditional sds of mu
    around the data at each tau; log tau spans 1e-7 to 1e5 of the largest se); theta given (mu, tau) is
    the textbook conditional normal.
    """

    def __init__(self, y, s, n_mu=1601, n_tau=801):
        smax = float(s.max())
        t = np.linspace(math.log(1e-7 * smax), math.log(1e5 * smax), n_tau)
        u = np.linspace(-12, 12, n_mu)
        tau = np.exp(t)[:, None]
        half = np.sqrt(smax**2 + tau**2)
        mu = float(np.mean(y)) + u[None, :] * half  # (tau, mu)
        log_l = np.zeros(mu.shape)
        for yi, si in zip(y, s):
            v = si**2 + tau**2
            log_l += -0.5 * np.log(v) - 0.5 * (yi - mu) ** 2 / v
        # prior density of tau: 2 tau (flat on tau^2); Jacobian of (t, u) -> (tau, mu): tau * half
        w = np.exp(log_l - log_l.max()) * tau * tau * half
        self.w = w / w.sum()
        self.y, self.s, self.mu, self.t2 = y, s, mu, tau**2

    def _m_v(self, i):
        return _conditional(self.mu, np.sqrt(self.t2), self.y[i], self.s[i])

    def mean(self, i):
        return float(np.sum(self.w * self._m_v(i)[0]))

    def cdf(self, i, q):
        m, v = self._m_v(i)
        return float(np.sum(self.w * stats.norm.cdf(q, m, np.sqrt(v))))

    def cdf_sum(self, a, q):
        m_sum, v_sum = 0.0, 0.0
        for i in np.flatnonzero(a):
            m, v = self._m_v(i)
            m_sum, v_sum = m_sum + a[i] * m, v_sum + a[i] ** 2 * v
        return float(np.sum(self.w * stats.norm.cdf(q, m_sum, np.sqrt(v_sum))))


def _cases():
    four = (np.array([0.031, -0.004, 0.012, 0.05]), np.array([0.010, 0.008, 0.015, 0.02]))
    return {"schools": (SCHOOLS_Y, SCHOOLS_SE), "four": four, "twelve": _heterogeneous(7)}


@pytest.mark.parametrize("case", ["schools", "four", "twelve"])
def test_posterior_matches_double_integral(case):
    # few experiments ("four": the posterior of tau has a heavy tail, tau^-2) and unequal standard errors
    y, s = _cases()[case]
    fit = shrinkage.shrink(y, s, level=0.9)
    ref = _Grid(y, s)
    for i in range(y.size):
        assert fit.shrunk[i] == pytest.approx(ref.mean(i), rel=2e-5, abs=1e-6 * s.max())
        assert ref.cdf(i, fit.shrunk_lower[i]) == pytest.approx(0.05, abs=3e-5)
        assert ref.cdf(i, fit.shrunk_upper[i]) == pytest.approx(0.95, abs=3e-5)
    # a weighted sum (experiments 0 and 2 shipped, weights as volumes): its posterior interval
    a = np.zeros(y.size)
    a[0], a[2] = 2.0, 0.5
    tot = fit.total(a)
    assert tot["shrunk"] == pytest.approx(2.0 * fit.shrunk[0] + 0.5 * fit.shrunk[2], rel=1e-12)
    assert ref.cdf_sum(a, tot["shrunk_lower"]) == pytest.approx(0.05, abs=3e-5)
    assert ref.cdf_sum(a, tot["shrunk_upper"]) == pytest.approx(0.95, abs=3e-5)
    assert tot["naive"] == pytest.approx(a @ y)
    assert tot["naive_upper"] - tot["naive"] == pytest.approx(stats.norm.ppf(0.95) * math.sqrt(a * a @ s**2))
    # dropping the shared-mu covariance (B_i B_j / sum w) from the sum's variance would fail here
    b, m, sw = fit._conditional()
    wrong_var = (a * a * s**2 * (1 - b)).sum(axis=1) + ((b * a) ** 2).sum(axis=1) / sw
    wrong_hi = shrinkage.normal_mixture_quantile(0.95, fit._weights, (m @ a)[:, None], np.sqrt(wrong_var)[:, None])[0]
    assert abs(ref.cdf_sum(a, wrong_hi) - 0.95) > 5e-4


@pytest.mark.slow
@pytest.mark.parametrize("case", ["schools", "four"])
def test_posterior_matches_adaptive_quadrature(case):
    """The same check with scipy's adaptive dblquad over (mu in R, tau in [0, inf)), prior density of tau
    proportional to tau (flat on tau^2): slow, no grid at all."""
    y, s = _cases()[case]
    fit = shrinkage.shrink(y, s, level=0.9)
    shift = _log_lik(float(np.sum(y / s**2) / np.sum(1 / s**2)), 0.0, y, s)

    def expect(g):
        def f(mu, tau):
            return math.exp(_log_lik(mu, tau, y, s) - shift) * tau * g(mu, tau)

        low = lambda tau: float(y.min() - 12 * math.sqrt(s.max() ** 2 + tau * tau))  # noqa: E731
        high = lambda tau: float(y.max() + 12 * math.sqrt(s.max() ** 2 + tau * tau))  # noqa: E731
        return integrate.dblquad(f, 0.0, np.inf, low, high, epsabs=1e-13, epsrel=1e-9)[0]

    z = expect(lambda mu, tau: 1.0)
    mean0 = expect(lambda mu, tau: _conditional(mu, tau, y, s)[0][0]) / z

    def cdf0(q):
        def g(mu, tau):
            m, v = _conditional(mu, tau, y, s)
            return stats.norm.cdf(q, m[0], math.sqrt(v[0])) if v[0] > 0 else float(q >= m[0])

        return expect(g) / z

    assert fit.shrunk[0] == pytest.approx(mean0, rel=2e-5)
    assert cdf0(fit.shrunk_upper[0]) == pytest.approx(0.95, abs=2e-5)


@pytest.mark.parametrize("k, spread", [(4, 0.5), (6, 1.0), (10, 2.0), (25, 1.5)])
def test_equal_standard_errors_match_morris_closed_form(k, spread):
    """Equal SEs V: with flat priors on mu and tau^2, B = V / (V + tau^2) is Gamma((k-3)/2, S/(2V)) truncated
    to (0, 1] (Morris 1983), so with P the regularized lower incomplete gamma function, a = (k-3)/2 and
    lam = S / (2V): E[B] = (a / lam) P(a+1, lam) / P(a, lam), E[B^2] = a (a+1) / lam^2 P(a+2, lam) / P(a, lam),
    E[theta_i] = y_i - E[B] (y_i - ybar) and Var(theta_i) = V (1 - E[B]) + V E[B] / k + Var(B) (y_i - ybar)^2."""
    from scipy.special import gammainc

    rng = np.random.default_rng(k)
    v = 0.01**2
    y = rng.normal(0.0, spread * 0.01, k)
    fit = shrinkage.shrink(y, np.full(k, 0.01))
    a, lam = (k - 3) / 2, np.sum((y - y.mean()) ** 2) / (2 * v)
    e_b = a / lam * gammainc(a + 1, lam) / gammainc(a, lam)
    e_b2 = a * (a + 1) / lam**2 * gammainc(a + 2, lam) / gammainc(a, lam)
    mean = y - e_b * (y - y.mean())
    var = v * (1 - e_b) + v * e_b / k + (e_b2 - e_b**2) * (y - y.mean()) ** 2
    np.testing.assert_allclose(fit.shrinkage, e_b, rtol=2e-6)
    np.testing.assert_allclose(fit.shrunk, mean, rtol=2e-6, atol=1e-9)
    np.testing.assert_allclose(fit.shrunk_sd, np.sqrt(var), rtol=2e-6)
    # Stein: for many experiments E[B | y] is close to the unbiased (k - 3) V / S
    if k == 25:
        assert e_b == pytest.approx(min(1.0, (k - 3) * v / np.sum((y - y.mean()) ** 2)), rel=0.05)


def test_shrinkage_pulls_noisier_experiments_harder():
    fit = shrinkage.shrink(SCHOOLS_Y, SCHOOLS_SE)
    assert np.all(np.abs(fit.shrunk - fit.prior_mean) < np.abs(SCHOOLS_Y - fit.prior_mean))
    assert fit.shrinkage[7] > fit.shrinkage[4]  # se 18 vs 9
    assert 0 < fit.tau_lower < fit.tau_median < fit.tau_upper


def test_plugin_is_the_closed_form_at_the_reml_tau2():
    y, s = _heterogeneous(5)
    fit = shrinkage.shrink(y, s, method="plugin", level=0.95)
    tau2 = shrinkage.reml_tau2(y, s)[0]
    w = 1 / (s**2 + tau2)
    mu = np.sum(w * y) / np.sum(w)
    b = s**2 / (s**2 + tau2)
    sd = np.sqrt(s**2 * (1 - b) + b**2 / np.sum(w))
    np.testing.assert_allclose(fit.shrunk, y - b * (y - mu), rtol=1e-12)
    np.testing.assert_allclose(fit.shrunk_upper, fit.shrunk + stats.norm.ppf(0.975) * sd, rtol=1e-9)
    # integrating over tau widens the intervals (the prior's spread is uncertain)
    bayes = shrinkage.shrink(y, s)
    assert np.all(bayes.shrunk_upper - bayes.shrunk_lower > fit.shrunk_upper - fit.shrunk_lower)


def test_mixture_quantile_matches_root_finding():
    rng = np.random.default_rng(6)
    w = rng.dirichlet(np.ones(5))
    means, sds = rng.normal(0, 1, (5, 3)), rng.uniform(0.01, 2, (5, 3))
    for p in (1e-6, 0.025, 0.5, 0.975):
        q = shrinkage.normal_mixture_quantile(p, w, means, sds)
        for j in range(3):
            ref = optimize.brentq(
                lambda x, j=j, p=p: float(w @ stats.norm.cdf(x, means[:, j], sds[:, j])) - p, -50, 50, xtol=1e-14
            )
            assert q[j] == pytest.approx(ref, abs=1e-9)


# --------------------------------------------------------------------------- the facade and its errors
def test_portfolio_shrink_frame():
    est = pd.Series([0.031, -0.004, 0.012, 0.05], index=["chatbot", "emails", "labels", "refunds"])
    se = pd.Series([0.010, 0.008, 0.015, 0.02], index=est.index)
    out = portfolio.shrink(est, se)
    assert list(out.columns[:5]) == ["estimate", "se", "shrunk", "shrunk_lower", "shrunk_upper"]
    assert list(out.index) == list(est.index)
    np.testing.assert_allclose(out["shrunk"], shrinkage.shrink(est, se).shrunk)
    assert out.attrs["prior"]["experiments"] == 4 and out.attrs["prior"]["tau_lower"] <= out.attrs["prior"]["tau_upper"]
    assert ((out["shrunk_lower"] < out["shrunk"]) & (out["shrunk"] < out["shrunk_upper"])).all()


def test_errors_name_the_problem():
    with pytest.raises(abkit.DataError, match="at least 4 experiments.*got 3"):
        portfolio.shrink([0.01, 0.02, 0.03], [0.01, 0.01, 0.01])
    with pytest.raises(abkit.DataError, match="standard error number 1 is 0.0"):
        portfolio.shrink([0.01, 0.02, 0.03, 0.0], [0.01, 0.0, 0.01, 0.01])
    with pytest.raises(abkit.DataError, match="standard error number 2 is -0.01"):
        portfolio.shrink([0.01, 0.02, 0.03, 0.0], [0.01, 0.01, -0.01, 0.01])
    with pytest.raises(abkit.DataError, match="estimate number 0 is nan"):
        portfolio.shrink([np.nan, 0.02, 0.03, 0.0], [0.01, 0.01, 0.01, 0.01])
    with pytest.raises(abkit.DataError, match="same length"):
        portfolio.shrink([0.01, 0.02, 0.03, 0.0], [0.01, 0.01])
    with pytest.raises(abkit.DataError, match="method="):
        portfolio.shrink([0.01, 0.02, 0.03, 0.0], [0.01, 0.01, 0.01, 0.01], method="morris")
    fit = shrinkage.shrink([0.01, 0.02, 0.03, 0.0], [0.01, 0.01, 0.01, 0.01])
    with pytest.raises(abkit.DataError, match="4 finite numbers"):
        fit.total([1.0, 0.0])


def test_identical_estimates_are_not_spread_out():
    fit = shrinkage.shrink([0.02, 0.02, 0.02, 0.02], [0.01, 0.01, 0.01, 0.01])
    assert fit.prior.tau2 == 0
    np.testing.assert_allclose(fit.shrunk, 0.02, rtol=1e-9)
    assert np.all(fit.shrunk_upper - fit.shrunk_lower < 2 * stats.norm.ppf(0.975) * 0.01)
