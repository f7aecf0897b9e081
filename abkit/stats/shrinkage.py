"""Empirical-Bayes shrinkage across a portfolio of experiments: the winner's curse corrected.

Shipped experiments are chosen *because* their estimates were large, so their
estimates overstate their true effects (Lee and Shen 2018, "Winner's curse:
bias estimation for total effects of features in online controlled
experiments", KDD; Azevedo, Deng, Montiel Olea, Rao and Weyl 2020, "A/B
testing with fat tails", J. Polit. Econ. 128). Shrinking every estimate
towards what experiments on the same KPI typically achieve removes most of
that overstatement, whatever rule picked the winners (measured below).

**Model** (normal-normal, Efron and Morris 1975): experiment ``i`` on one KPI
reports an estimate ``y_i`` with a known standard error ``s_i``, and

    y_i | theta_i ~ N(theta_i, s_i^2),      theta_i ~ N(mu, tau^2)

(``theta_i`` its true effect; ``mu`` and ``tau`` the mean and spread of true
effects across the portfolio, the *prior*). Marginally
``y_i ~ N(mu, v_i)``, ``v_i = s_i^2 + tau^2``.

**Fit of the prior: REML** (Viechtbauer 2005, "Bias and efficiency of
meta-analytic variance estimators in the random-effects model", J. Educ.
Behav. Stat. 30). With ``w_i = 1 / v_i`` and
``mu_hat(tau^2) = sum w_i y_i / sum w_i`` the restricted log-likelihood is

    l_R(tau^2) = -1/2 [ sum log v_i + log sum w_i + sum w_i (y_i - mu_hat)^2 ]

(up to a constant). It is maximised over ``tau^2 >= 0`` by Fisher scoring,
``tau^2 <- tau^2 + (sum w_i^2 r_i^2 - tr P) / tr(P^2)`` with
``r_i = y_i - mu_hat``, ``tr P = sum w - sum w^2 / sum w`` and
``tr(P^2) = sum w^2 - 2 sum w^3 / sum w + (sum w^2 / sum w)^2``, started at
the DerSimonian-Laird estimate, with step halving, and truncated at 0 (the
boundary is the maximum when the score at 0 is negative: the estimates
scatter no more than their standard errors explain). Its standard error is
``sqrt(2 / tr(P^2))`` (inverse REML information), and
``mu_hat`` has standard error ``1 / sqrt(sum w)``. :class:`PriorFit` reports both.

**Posterior, with the prior's estimation uncertainty** (``method="bayes"``,
the default). Given ``(mu, tau)``, ``theta_i`` is normal with mean
``y_i - B_i (y_i - mu)`` and variance ``s_i^2 (1 - B_i)``,
``B_i = s_i^2 / (s_i^2 + tau^2)`` (the shrinkage factor). Plugging the fitted
``mu, tau`` in gives intervals that are too narrow when there are few
experiments, because ``tau`` is poorly known (Morris 1983, "Parametric
empirical Bayes inference: theory and applications", JASA 78, whose
adjusted intervals approximate the integration done here). abkit integrates
both hyperparameters out:

* ``mu`` has a flat prior and is integrated analytically: given ``tau``,
  ``mu ~ N(mu_hat(tau^2), 1 / sum w)``, so
  ``theta_i | tau, y ~ N(y_i - B_i (y_i - mu_hat), s_i^2 (1 - B_i) + B_i^2 / sum w)``
  and ``Cov(theta_i, theta_j | tau, y) = B_i B_j / sum w`` (the shared ``mu``);
* ``tau^2`` has a flat prior on ``[0, inf)`` (Morris 1983; Morris and Tang
  2011, "Estimating random effects via adjustment for density
  maximization", Stat. Sci. 26), so the posterior of ``tau^2`` is
  proportional to ``exp(l_R(tau^2))``: the REML likelihood *is* the
  likelihood of ``tau^2`` with ``mu`` integrated out. With equal standard
  errors ``V`` this posterior makes the shrinkage factor ``B`` a gamma
  variable truncated to ``(0, 1]``, with mean about ``(k - 3) V / S``
  (``S = sum (y_i - ybar)^2``): Stein's unbiased estimate of ``B``, and
  Morris's (1983) closed forms, which the tests check. The posterior is
  proper with at least :data:`MIN_EXPERIMENTS` (4) experiments (``l_R``
  falls as ``tau^-(k-1)``). The integral over ``tau`` is a quadrature on a
  fine grid in ``log tau`` (trapezoid rule, with the mass below the grid's
  first node put at ``tau = 0`` and the ``tau^-(k-1)`` tail beyond its last
  node added in closed form).

  Why not a flat prior on ``tau`` (Gelman 2006, "Prior distributions for
  variance parameters in hierarchical models", Bayesian Anal. 1)? It puts
  more mass near ``tau = 0``, so it shrinks more; on simulated portfolios
  its intervals under-covered when the true spread is small next to the
  standard errors (93% for nominal 95% with 100 experiments, tau = 0.005,
  SEs 0.005-0.02), where the flat prior on ``tau^2`` covered 95.5%.

The posterior of each ``theta_i`` is then a mixture of normals: ``shrunk`` is
its mean, ``shrunk_lower``/``shrunk_upper`` its equal-tailed quantiles (the
mixture's CDF inverted by safeguarded Newton steps, :func:`normal_mixture_quantile`).
A weighted sum of true effects (e.g. the total impact of the shipped experiments, :meth:`Shrinkage.total`) is a
mixture of normals too, with the covariance above, so the total's interval is
exact under the model rather than a sum of intervals.

``method="plugin"`` conditions on the REML ``tau^2`` instead (``mu`` still
integrated): the classic empirical-Bayes plug-in, kept to show what the
integration buys (its intervals under-cover with a handful of experiments;
tested).

**Calibration** (``tests/test_portfolio_calibration.py``; portfolios of
``k`` experiments, true lifts ``N(0.002, tau^2)``, SEs ``U(0.005, 0.02)``,
shipped when ``y / s > 1.96``; 1,000 portfolios per row): the 95% intervals
cover 0.950-0.980 of the true lifts (k = 20 and 50, tau = 0.005-0.02; more
than 95% when the spread is small next to the SEs); the shrunk lifts' root
mean square error is 18-63% below the raw one; of the shipped winners' mean
overstatement, 72-82% is removed with 20 experiments and 88-94% with 50
(the rest is the price of estimating the prior); the interval of the
shipped total covers 0.93-0.97 where the naive sum's covers 0.16-0.73. With
fat-tailed true effects (a few large, most near zero) the mean overstatement
is still removed but the shipped winners' intervals cover only about 81%:
the normal prior pulls the real outliers in too far (Azevedo et al. 2020).

Everything is in the units of the estimates (abkit uses relative lifts, so
experiments on populations of different size are comparable). The
experiments are taken as independent: the arms of one multi-arm test share a
control, which this ignores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from ..errors import DataError

__all__ = [
    "MIN_EXPERIMENTS",
    "PriorFit",
    "Shrinkage",
    "check_inputs",
    "reml_log_likelihood",
    "reml_tau2",
    "dersimonian_laird_tau2",
    "weighted_mean",
    "fit_prior",
    "shrink",
    "normal_mixture_quantile",
]

MIN_EXPERIMENTS = 4
"""Fewest experiments on one KPI for which the spread of true effects can be estimated: with the flat prior on
``tau^2`` the posterior is proper from 4 on (the REML likelihood falls as ``tau^-(k-1)``)."""

_GRID_NODES = 801  # log-tau grid of the posterior of tau
_GRID_LOW, _GRID_HIGH = 1e-4, 1e4  # grid from 1e-4 x the smallest SE to 1e4 x the scale of the data
_BISECTION_STEPS = 64  # halves the bracket (18 sds wide) to 1e-18 of it


# --------------------------------------------------------------------------- inputs
def check_inputs(estimate, se, what: str = "experiments") -> tuple[np.ndarray, np.ndarray]:
    """``(y, s)`` as float64 arrays, or :class:`abkit.DataError` naming the first bad value.

    Needs finite estimates, finite positive standard errors, equal lengths and
    at least :data:`MIN_EXPERIMENTS` of them.
    """
    y = np.asarray(estimate, dtype=float).reshape(-1)
    s = np.asarray(se, dtype=float).reshape(-1)
    if y.shape != s.shape:
        raise DataError(
            f"estimate and se must have the same length; got {y.size} estimates and {s.size} standard errors"
        )
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise DataError(
            f"estimate number {bad[0]} is {float(y[bad[0]])!r}; every estimate must be a finite number "
            f"({bad.size} are not). Drop those {what} first."
        )
    bad = np.flatnonzero(~(np.isfinite(s) & (s > 0)))
    if bad.size:
        raise DataError(
            f"standard error number {bad[0]} is {float(s[bad[0]])!r}; every standard error must be a "
            f"finite number > 0 ({bad.size} are not). An experiment without a standard error "
            "cannot be weighed: drop it or compute its standard error."
        )
    if y.size < MIN_EXPERIMENTS:
        raise DataError(
            f"shrinkage needs at least {MIN_EXPERIMENTS} {what} on the same KPI to estimate how "
            f"much true effects vary; got {y.size}. Report the raw estimates until there are "
            f"{MIN_EXPERIMENTS} or more (10 or more give a usefully precise prior)."
        )
    return y, s


# --------------------------------------------------------------------------- the fit of the prior
def weighted_mean(y: np.ndarray, s: np.ndarray, tau2) -> tuple[np.ndarray, np.ndarray]:
    """``(mu_hat, se(mu_hat))`` for each ``tau2``: ``sum w y / sum w`` and ``1 / sqrt(sum w)``, ``w = 1/(s^2+tau2)``."""
    t2 = np.asarray(tau2, dtype=float)[..., None]
    w = 1.0 / (s * s + t2)
    sw = w.sum(axis=-1)
    return (w * y).sum(axis=-1) / sw, 1.0 / np.sqrt(sw)


def reml_log_likelihood(tau2, y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``l_R(tau^2)`` of the module docstring (without its constant), vectorised over ``tau2``."""
    t2 = np.asarray(tau2, dtype=float)[..., None]
    v = s * s + t2
    w = 1.0 / v
    sw = w.sum(axis=-1)
    mu = (w * y).sum(axis=-1) / sw
    r = y - mu[..., None]
    return -0.5 * (np.log(v).sum(axis=-1) + np.log(sw) + (w * r * r).sum(axis=-1))


def dersimonian_laird_tau2(y: np.ndarray, s: np.ndarray) -> float:
    """DerSimonian and Laird (1986) moment estimate.

    ``max(0, (Q - (k-1)) / (sum w - sum w^2 / sum w))`` with ``w = 1/s^2``.
    """
    w = 1.0 / (s * s)
    mu = float(np.sum(w * y) / np.sum(w))
    q = float(np.sum(w * (y - mu) ** 2))
    denom = float(np.sum(w) - np.sum(w * w) / np.sum(w))
    return max(0.0, (q - (y.size - 1)) / denom) if denom > 0 else 0.0


def _reml_pieces(y, s, tau2):
    w = 1.0 / (s * s + tau2)
    sw, sw2, sw3 = w.sum(), (w * w).sum(), (w**3).sum()
    mu = float((w * y).sum() / sw)
    r = y - mu
    tr_p = sw - sw2 / sw
    tr_pp = sw2 - 2.0 * sw3 / sw + (sw2 / sw) ** 2
    score2 = float((w * w * r * r).sum() - tr_p)  # twice the score d l_R / d tau^2
    return score2, float(tr_pp)


def reml_tau2(y: np.ndarray, s: np.ndarray, *, tol: float = 1e-12, max_iter: int = 500) -> tuple[float, bool, int]:
    """``(tau2, converged, iterations)``: the REML estimate of the prior variance (Fisher scoring, see module doc)."""
    tau2 = dersimonian_laird_tau2(y, s)
    ll = float(reml_log_likelihood(tau2, y, s))
    scale = float(np.mean(s * s))
    for it in range(1, max_iter + 1):
        score2, tr_pp = _reml_pieces(y, s, tau2)
        if tau2 == 0.0 and score2 <= 0.0:
            return 0.0, True, it  # the boundary is the maximum: l_R decreases from tau^2 = 0
        step = score2 / tr_pp
        new = max(0.0, tau2 + step)
        new_ll = float(reml_log_likelihood(new, y, s))
        halvings = 0
        while new_ll < ll - 1e-15 * abs(ll) and halvings < 60:  # step halving keeps every step uphill
            step *= 0.5
            new = max(0.0, tau2 + step)
            new_ll = float(reml_log_likelihood(new, y, s))
            halvings += 1
        if abs(new - tau2) <= tol * (tau2 + scale):
            return new, True, it
        tau2, ll = new, new_ll
    return tau2, False, max_iter


@dataclass(frozen=True)
class PriorFit:
    """The fitted prior ``theta ~ N(mean, tau^2)`` of a portfolio (REML; see the module docstring).

    ``mean_se``: standard error of ``mean`` given ``tau2``; ``tau2_se``: the
    REML information's standard error of ``tau2`` (a rough guide near 0; the
    posterior interval ``tau_lower, tau_upper`` of :class:`Shrinkage` is the
    honest statement of how well the spread is known).
    """

    mean: float
    mean_se: float
    tau2: float
    tau2_se: float
    n: int
    converged: bool
    iterations: int
    method: str = "REML (Fisher scoring)"

    @property
    def tau(self) -> float:
        return math.sqrt(self.tau2)

    def describe(self) -> str:
        return (
            f"prior N({self.mean:.4g}, {self.tau:.4g}^2) fitted by {self.method} on {self.n} experiments "
            f"(mean s.e. {self.mean_se:.3g}, tau^2 s.e. {self.tau2_se:.3g})"
        )


def fit_prior(estimate, se) -> PriorFit:
    """REML fit of the prior ``N(mu, tau^2)`` of true effects from estimates with known, unequal standard errors."""
    y, s = check_inputs(estimate, se)
    tau2, converged, iterations = reml_tau2(y, s)
    mu, mu_se = weighted_mean(y, s, tau2)
    _, tr_pp = _reml_pieces(y, s, tau2)
    return PriorFit(
        float(mu),
        float(mu_se),
        float(tau2),
        math.sqrt(2.0 / tr_pp) if tr_pp > 0 else math.nan,
        int(y.size),
        converged,
        iterations,
    )


# --------------------------------------------------------------------------- mixtures of normals
def normal_mixture_quantile(prob, weights: np.ndarray, means: np.ndarray, sds: np.ndarray) -> np.ndarray:
    """Quantiles of mixtures of normals, one mixture per column.

    ``weights``: ``(G,)`` summing to 1; ``means`` and ``sds``: ``(G, m)``.
    Returns ``(m,)`` values ``x`` with ``sum_g weights_g Phi((x - means_gj) / sds_gj) = prob``:
    Newton steps on the CDF (increasing, with the mixture density as
    derivative) from the normal with the mixture's mean and sd, kept inside a
    bracket that shrinks at every step (bisection whenever Newton would leave
    it), until the CDF is within ``1e-12 min(prob, 1 - prob)`` of ``prob`` or
    the bracket is 1e-13 of the spread wide.
    """
    p = float(prob)
    w = weights[:, None]
    lo = (means - 9.0 * sds).min(axis=0)
    hi = (means + 9.0 * sds).max(axis=0)
    mean = (w * means).sum(axis=0)
    sd = np.sqrt(np.maximum((w * (sds * sds + means * means)).sum(axis=0) - mean * mean, 0.0))
    x = np.clip(mean + float(special.ndtri(p)) * sd, lo, hi)
    width = hi - lo
    tol = 1e-12 * min(p, 1.0 - p)  # relative to the tail's probability: tail quantiles are exact too
    for _ in range(_BISECTION_STEPS):
        z = (x - means) / sds
        f = (w * special.ndtr(z)).sum(axis=0) - p
        dens = (w * np.exp(-0.5 * z * z) / sds).sum(axis=0) / math.sqrt(2.0 * math.pi)
        lo = np.where(f < 0, x, lo)
        hi = np.where(f < 0, hi, x)
        done = (np.abs(f) < tol) | (hi - lo < 1e-13 * width)
        if np.all(done):
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = x - f / dens
        inside = np.isfinite(newton) & (newton >= lo) & (newton <= hi)
        x = np.where(done, x, np.where(inside, newton, 0.5 * (lo + hi)))
    return x


# --------------------------------------------------------------------------- the posterior
@dataclass(frozen=True)
class Shrinkage:
    """Shrunk estimates of a portfolio's experiments (see the module docstring).

    Arrays are in the order of the inputs: ``estimate``, ``se`` (the raw
    estimates), ``shrunk`` (posterior mean), ``shrunk_sd``, ``shrunk_lower``,
    ``shrunk_upper`` (equal-tailed ``level`` posterior interval) and
    ``shrinkage`` (posterior mean of ``B_i``: 0 = kept as measured, 1 =
    pulled all the way to the portfolio mean). ``prior`` is the REML fit;
    ``prior_mean`` and ``tau_median``, ``tau_lower``, ``tau_upper`` summarise
    the posterior of the hyperparameters the intervals integrate over.
    """

    estimate: np.ndarray
    se: np.ndarray
    shrunk: np.ndarray
    shrunk_sd: np.ndarray
    shrunk_lower: np.ndarray
    shrunk_upper: np.ndarray
    shrinkage: np.ndarray
    prior: PriorFit
    prior_mean: float
    tau_median: float
    tau_lower: float
    tau_upper: float
    level: float
    method: str
    _tau2: np.ndarray = field(repr=False)  # grid nodes of tau^2
    _weights: np.ndarray = field(repr=False)  # posterior weights of the nodes

    def _conditional(self):
        """Per node ``g``: ``B`` (G, k), ``m`` (G, k) = E[theta | tau_g, y], ``sum w`` (G,)."""
        y, s = self.estimate, self.se
        t2 = self._tau2[:, None]
        b = (s * s) / (s * s + t2)
        mu, mu_se = weighted_mean(y, s, self._tau2)
        m = y - b * (y - mu[:, None])
        return b, m, 1.0 / mu_se**2

    def total(self, weights=None, level: float | None = None) -> dict:
        """Posterior of ``sum_i weights_i theta_i`` (default all weights 1), and the naive sum of the raw estimates.

        Given ``tau``: mean ``sum a_i m_i``, variance
        ``sum a_i^2 s_i^2 (1 - B_i) + (sum a_i B_i)^2 / sum w`` (the shared
        ``mu``); mixed over the posterior of ``tau``. The naive total is
        ``sum a_i y_i`` with the normal interval ``+/- z sqrt(sum a_i^2 s_i^2)``
        (independent experiments). Weights of 0 leave experiments out of the
        sum (they still informed the prior). Returns a dict with ``naive,
        naive_lower, naive_upper, shrunk, shrunk_sd, shrunk_lower, shrunk_upper``.
        """
        level = self.level if level is None else float(level)
        a = np.ones_like(self.estimate) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
        if a.shape != self.estimate.shape or not np.all(np.isfinite(a)):
            raise DataError(f"weights must be {self.estimate.size} finite numbers, one per experiment; got {a!r}")
        b, m, sw = self._conditional()
        s2 = self.se**2
        means = (m * a).sum(axis=1)
        var = (a * a * s2 * (1.0 - b)).sum(axis=1) + (b * a).sum(axis=1) ** 2 / sw
        sds = np.sqrt(np.maximum(var, 0.0))
        p = self._weights
        mean = float(p @ means)
        sd = math.sqrt(max(float(p @ (sds**2 + means**2)) - mean**2, 0.0))
        tail = (1.0 - level) / 2.0
        if sd == 0.0:
            lo = hi = mean
        else:
            sds_safe = np.where(sds > 0, sds, sd * 1e-12)
            lo = float(normal_mixture_quantile(tail, p, means[:, None], sds_safe[:, None])[0])
            hi = float(normal_mixture_quantile(1.0 - tail, p, means[:, None], sds_safe[:, None])[0])
        naive = float(a @ self.estimate)
        naive_sd = math.sqrt(float(a * a @ s2))
        z = float(special.ndtri(1.0 - tail))
        return {
            "naive": naive,
            "naive_lower": naive - z * naive_sd,
            "naive_upper": naive + z * naive_sd,
            "naive_sd": naive_sd,
            "shrunk": mean,
            "shrunk_sd": sd,
            "shrunk_lower": lo,
            "shrunk_upper": hi,
        }


def _tau_grid(y: np.ndarray, s: np.ndarray, method: str, tau2_hat: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``tau^2`` and normalised posterior weights (flat prior on tau^2; see the module docstring)."""
    if method == "plugin":
        return np.array([tau2_hat]), np.array([1.0])
    k = y.size
    scale = max(float(np.max(s)), float(np.std(y)), float(np.max(np.abs(y - np.median(y)))))
    t_lo = math.log(_GRID_LOW * float(np.min(s)))
    t_hi = math.log(_GRID_HIGH * scale)
    t = np.linspace(t_lo, t_hi, _GRID_NODES)
    dt = t[1] - t[0]
    tau = np.exp(t)
    # flat prior on tau^2, i.e. density ∝ tau on tau, so p(log tau | y) ∝ exp(l_R(tau^2)) * tau^2
    log_dens = reml_log_likelihood(tau * tau, y, s) + 2.0 * t
    trap = np.full(t.size, dt)
    trap[[0, -1]] = dt / 2.0
    log_w = log_dens + np.log(trap)
    # mass on [0, tau_1]: the likelihood is flat there (tau_1^2 << s_min^2), so about L(0) tau_1^2 / 2
    ll0 = float(reml_log_likelihood(0.0, y, s))
    log_w0 = ll0 + 2.0 * t[0] - math.log(2.0)
    # tail beyond tau_G: L ~ C tau^-(k-1), so the integral of L tau is L(tau_G) tau_G^2 / (k - 3)
    log_tail = log_dens[-1] - math.log(k - 3.0)
    nodes = np.concatenate(([0.0], tau * tau, [tau[-1] ** 2]))
    log_all = np.concatenate(([log_w0], log_w, [log_tail]))
    w = np.exp(log_all - log_all.max())
    keep = w > 1e-16  # nodes that cannot move any result are dropped (at most 1e-13 of the mass)
    return nodes[keep], w[keep] / w[keep].sum()


def shrink(estimate, se, *, level: float = 0.95, method: str = "bayes") -> Shrinkage:
    """Posterior means and intervals of true effects under the fitted normal prior (see the module docstring).

    ``method``: ``"bayes"`` (default: ``mu`` and ``tau`` integrated over their
    posterior) or ``"plugin"`` (``tau^2`` fixed at its REML estimate).
    """
    if method not in ("bayes", "plugin"):
        raise DataError(
            f"method={method!r} is not known; use 'bayes' (the prior's uncertainty integrated "
            "out) or 'plugin' (REML tau^2 plugged in)"
        )
    if not 0.0 < float(level) < 1.0:
        raise DataError(f"level={level!r} must be between 0 and 1, e.g. 0.95")
    y, s = check_inputs(estimate, se)
    prior = fit_prior(y, s)
    nodes, p = _tau_grid(y, s, method, prior.tau2)
    t2 = nodes[:, None]
    b = (s * s) / (s * s + t2)
    mu, mu_se = weighted_mean(y, s, nodes)
    m = y - b * (y - mu[:, None])
    v = s * s * (1.0 - b) + b * b * (mu_se**2)[:, None]
    sd_g = np.sqrt(v)
    mean = p @ m
    sd = np.sqrt(np.maximum(p @ (v + m * m) - mean * mean, 0.0))
    tail = (1.0 - float(level)) / 2.0
    lower = normal_mixture_quantile(tail, p, m, sd_g)
    upper = normal_mixture_quantile(1.0 - tail, p, m, sd_g)
    tau_nodes = np.sqrt(nodes)
    cdf = np.cumsum(p)

    def tau_q(q: float) -> float:
        return float(tau_nodes[min(int(np.searchsorted(cdf, q)), tau_nodes.size - 1)])

    return Shrinkage(
        estimate=y,
        se=s,
        shrunk=mean,
        shrunk_sd=sd,
        shrunk_lower=lower,
        shrunk_upper=upper,
        shrinkage=p @ b,
        prior=prior,
        prior_mean=float(p @ mu),
        tau_median=tau_q(0.5),
        tau_lower=tau_q(tail),
        tau_upper=tau_q(1.0 - tail),
        level=float(level),
        method=method,
        _tau2=nodes,
        _weights=p,
    )
