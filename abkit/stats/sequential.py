"""Sequential inference: always-valid confidence sequences and group-sequential boundaries.

Two designs, two different promises.

**Always valid (continuous monitoring).** A *confidence sequence* (CS) is a
sequence of intervals ``C_n`` that contain the true effect *at every look
simultaneously* with probability ``1 - alpha``, so the experiment may be
looked at daily and stopped whenever the CS excludes zero (Howard, Ramdas,
McAuliffe and Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic
confidence sequences", Ann. Statist. 49; Johari, Koomen, Pekelis and Walsh
2017, "Peeking at A/B tests: why it matters, and what to do about it", KDD,
and Johari et al. 2022, Oper. Res. 70).

Let ``S`` be a Gaussian martingale with variance process (intrinsic time)
``I``. Mixing the likelihood ratio ``exp(lambda S - lambda^2 I / 2)`` over
``lambda ~ N(0, 1/rho)`` gives the nonnegative martingale (Robbins 1970)

    M = sqrt(rho / (I + rho)) exp(S^2 / (2 (I + rho)))

and Ville's inequality ``P(sup M >= 1/alpha) <= alpha`` gives the two-sided
*normal-mixture boundary* of Howard et al. (2021, eq. (14)),

    |S| < sqrt((I + rho) log((I + rho) / (rho alpha^2)))     for all I.

abkit applies it to an effect estimate ``theta_hat`` that is asymptotically
normal with variance ``V`` (a difference in means, a delta-method ratio, a
CUPED or Lin estimate: all are averages of per-unit influence values up to
``o_p(n^-1/2)``). On the information scale ``I = 1/V``, ``S = I (theta_hat -
theta)``; writing the mixing distribution on the *effect* scale,
``theta ~ N(0, tau^2)`` with ``tau^2 = 1/rho``, the boundary becomes the
always-valid interval

    theta_hat +/- sqrt( V (V + tau^2) / tau^2 * ( log((V + tau^2) / V) + 2 log(1/alpha) ) )

and the mixture likelihood ratio against ``theta = 0`` is the mSPRT
statistic of Johari et al. (2017, eq. (6) with a normal mixture)

    Lambda = sqrt(V / (V + tau^2)) exp( tau^2 theta_hat^2 / (2 V (V + tau^2)) ).

The always-valid p-value is ``min(1, 1 / Lambda)``: the smallest alpha at
which the CS excludes 0 (at one look; Johari et al. report its running
minimum over looks, which :func:`abkit.sequential.monitor` also gives).
With a plug-in variance the guarantee is asymptotic, exactly as for the
fixed-horizon CI: this is the *asymptotic confidence sequence* of
Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas (2024, "Time-uniform central
limit theory and asymptotic confidence sequences", Ann. Statist. 52,
Theorem 2.2), whose boundary is the one above with ``V = sigma^2 / n``.

*Relative lift (Fieller).* The always-valid interval of ``r = t / c - 1``
(``t``, ``c`` the arm values, ``d = t - c`` the effect) is Fieller's
construction (see :mod:`abkit.stats.ab`) on top of the confidence
sequence: ``r`` is in the set while the always-valid test of the linear
contrast ``D(r) = d - r c = t - (1 + r) c = 0`` does not reject, i.e.
``|d - r c| <= h(V(r))`` with ``V(r) = Var(d - r c) = V_d - 2 r K + r^2 C``
(``K = Cov(d, c)``, ``C = Var(c)``) and ``h`` the half-width above. Each
contrast ``D(r)`` is mixed with the variance ``tau^2(r) = tau^2 V(r) / V_d``
(the effect's ``tau^2`` at ``r = 0``). Then ``tau^2(r) / V(r)`` does not
depend on ``r``, ``h(V(r)) = k sqrt(V(r))`` with the single factor
``k = h(V_d) / sqrt(V_d) = sqrt((1 + V_d / tau^2) (log(1 + tau^2 / V_d) +
2 log(1/alpha)))``, and the set is Fieller's interval with ``q = k``, in
closed form (:func:`always_valid_relative_interval`). For abkit's default
tuning this is no approximation: the planned-size rule gives every contrast
``tau^2(r) = x V_planned(r)``, proportional to ``V(r)`` by construction.
With a ``tau`` given on the effect scale it is a choice: a fixed ``tau^2``
for every contrast makes ``h`` grow like ``V(r)`` in the tails and the set
is then never bounded (far rays, at lifts of thousands of percent), while
scaling the mixture with the contrast's variance keeps one interval, valid
at every ``r`` (each ``tau^2(r)`` is fixed in advance up to the same
plug-in of per-unit variances as the default rule), and its coverage is
tested by simulation. Either way the relative interval excludes 0 exactly
when the effect's always-valid interval does (at ``r = 0`` the inequality
is the effect's), and it is unbounded, reported as ``(-inf, inf)``, when
``c^2 <= k^2 C``.

*Choice of the mixing variance.* ``tau^2`` must be fixed in advance (not
re-tuned at every look). The boundary at intrinsic time ``m`` is narrowest
for ``rho`` with ``x = m / rho`` solving ``x = log(1 + x) + 2 log(1/alpha)``
(set the derivative of ``(m + rho) log((m + rho) / (rho alpha^2))`` in
``rho`` to zero; Howard et al. 2021, Section 3.5, give the approximation
``x ~= 2 log(1/alpha) + log(1 + 2 log(1/alpha))``). On the effect scale:
``tau^2 = x V_planned``, the variance the estimate will have at the planned
sample size; abkit estimates it as ``V_now n_now / n_planned`` (per-unit
variance over planned units; :func:`mixing_variance`). ``x = 8.20`` for
``alpha = 0.05``; at the planned size the always-valid half-width is then
``sqrt((1 + x) V) = 3.03 sd`` instead of 1.96, and being wrong about the
planned size by a factor 10 costs only ~7% of width.

**Group-sequential (a planned number of looks).** With ``K`` planned looks
at information fractions ``t_1 < ... < t_K``, the Lan-DeMets (1983,
"Discrete sequential boundaries for clinical trials", Biometrika 70)
alpha-spending approach chooses symmetric z boundaries ``b_k`` so that the
probability of first crossing ``|Z_k| >= b_k`` at look ``k`` under the null
equals ``alpha(t_k) - alpha(t_{k-1})``. Crossing probabilities are computed
by the recursive numerical integration of Armitage, McPherson and Rowe
(1969, JRSS A 132): with ``S_k = Z_k sqrt(t_k)`` a Brownian motion,

    f_1(s) = phi(s / sqrt(t_1)) / sqrt(t_1)
    f_k(s) = int_{|u| < c_{k-1}} f_{k-1}(u) phi((s - u) / sqrt(d_k)) / sqrt(d_k) du,
    d_k = t_k - t_{k-1},  c_k = b_k sqrt(t_k),

integrated with Simpson's rule on a fine grid (Jennison and Turnbull 2000,
"Group Sequential Methods", ch. 19). Spending functions, with alpha/2 per
side (the two-sided convention of R's ``gsDesign`` and ``ldbounds``):

* O'Brien-Fleming type: ``alpha(t) = 2 (2 - 2 Phi(z_{1 - alpha/4} / sqrt(t)))``
  in total, i.e. ``2 - 2 Phi(z_{1-alpha/4} / sqrt t)`` per side;
* Pocock type: ``alpha(t) = alpha log(1 + (e - 1) t)``.

For 5 equally spaced looks at alpha = 0.05 they give 4.8769, 3.3570,
2.6803, 2.2898, 2.0310 (O'Brien-Fleming type) and 2.4380, 2.4268, 2.4102,
2.3966, 2.3860 (Pocock type), the published values the tests check.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import optimize, stats

from ..errors import AbkitError

__all__ = [
    "optimal_mixing_ratio", "mixing_variance", "always_valid_half_width", "always_valid_interval",
    "always_valid_radius_factor", "always_valid_relative_interval", "always_valid_p_value",
    "log_mixture_likelihood_ratio", "spending_function", "SPENDING",
    "group_sequential_z", "crossing_probabilities",
]


# --------------------------------------------------------------------------- always valid
def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise AbkitError(f"alpha={alpha!r} must be between 0 and 1 (e.g. 0.05)")
    return alpha


def optimal_mixing_ratio(alpha: float = 0.05) -> float:
    """``x = tau^2 / V`` at which the normal-mixture boundary is narrowest.

    Solves ``x = log(1 + x) + 2 log(1/alpha)`` (Howard et al. 2021, Sec. 3.5);
    ``x = 8.20`` at alpha = 0.05. The right side is increasing and concave in
    ``x`` with slope below 1, so the fixed point is unique.
    """
    alpha = _check_alpha(alpha)
    c = 2.0 * np.log(1.0 / alpha)
    return float(optimize.brentq(lambda x: np.log1p(x) + c - x, c, 10.0 * c + 10.0, xtol=1e-14))


def mixing_variance(variance, n, planned_n, alpha: float = 0.05):
    """Mixing variance ``tau^2`` tuned so the CS is narrowest at ``planned_n`` units.

    ``tau^2 = x(alpha) * V_planned`` with ``V_planned = V n / planned_n`` (the
    effect's variance scales as 1/n: ``V n`` estimates the per-unit variance).
    Arrays broadcast.
    """
    x = optimal_mixing_ratio(alpha)
    variance, n, planned_n = (np.asarray(a, dtype=np.float64) for a in (variance, n, planned_n))
    if np.any(planned_n <= 0):
        raise AbkitError(f"planned_n={planned_n!r} must be a positive number of units")
    return x * variance * n / planned_n


def always_valid_half_width(variance, tau2, alpha: float = 0.05):
    """Half-width of the normal-mixture confidence sequence for an effect of variance ``V``.

    ``sqrt(V (V + tau^2) / tau^2 * (log((V + tau^2) / V) + 2 log(1/alpha)))``;
    zero variance gives a zero half-width. Vectorized.
    """
    alpha = _check_alpha(alpha)
    V = np.asarray(variance, dtype=np.float64)
    t2 = np.asarray(tau2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log1p(t2 / V)  # log((V + tau^2) / V)
        hw = np.sqrt(V * (V + t2) / t2 * (ratio + 2.0 * np.log(1.0 / alpha)))
    return np.where(V == 0.0, 0.0, hw)


def always_valid_radius_factor(variance, tau2, alpha: float = 0.05):
    """``k = h(V) / sqrt(V) = sqrt((1 + V / tau^2) (log(1 + tau^2 / V) + 2 log(1/alpha)))``. Vectorized.

    The always-valid half-width in standard errors; it depends on ``V`` and
    ``tau^2`` only through ``tau^2 / V``. Zero variance gives 0 (the
    half-width is 0).
    """
    alpha = _check_alpha(alpha)
    V = np.asarray(variance, dtype=np.float64)
    t2 = np.asarray(tau2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.sqrt((1.0 + V / t2) * (np.log1p(t2 / V) + 2.0 * np.log(1.0 / alpha)))
    return np.where(V == 0.0, 0.0, k)


def always_valid_relative_interval(effect, control, var_effect, cov_effect_control, var_control, tau2,
                                   alpha: float = 0.05):
    """Always-valid Fieller interval ``(lower, upper)`` of ``r = treatment / control - 1``. Vectorized.

    ``effect = t - c``, ``control = c``, ``var_effect = Var(t - c)``,
    ``cov_effect_control = Cov(t - c, c)``, ``var_control = Var(c)``, and
    ``tau2`` the effect's mixing variance (as in :func:`always_valid_interval`).
    Fieller's interval (:func:`abkit.stats.ab.fieller_relative`) with the
    critical value ``k`` of :func:`always_valid_radius_factor`; the mixture of
    each contrast ``t - (1 + r) c`` scales with its variance (module
    docstring). ``(-inf, inf)`` when the set is unbounded (``c^2 <= k^2 Var(c)``).
    """
    from .ab import fieller_relative

    k = always_valid_radius_factor(var_effect, tau2, alpha)
    return fieller_relative(effect, control, var_effect, cov_effect_control, var_control, k)


def log_mixture_likelihood_ratio(effect, variance, tau2, null: float = 0.0):
    """``log Lambda`` of the normal-mixture SPRT of ``effect = null`` (Johari et al. 2017).

    ``log Lambda = 0.5 log(V / (V + tau^2)) + tau^2 (effect - null)^2 / (2 V (V + tau^2))``.
    """
    d = np.asarray(effect, dtype=np.float64) - null
    V = np.asarray(variance, dtype=np.float64)
    t2 = np.asarray(tau2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -0.5 * np.log1p(t2 / V) + t2 * d * d / (2.0 * V * (V + t2))


def always_valid_p_value(effect, variance, tau2):
    """Always-valid p-value ``min(1, 1/Lambda)`` of ``effect = 0`` at one look.

    Computed on the log scale (``exp(-max(log Lambda, 0))``), so it does not
    overflow; a zero variance gives 0 for a non-zero effect and 1 otherwise.
    """
    llr = log_mixture_likelihood_ratio(effect, variance, tau2)
    p = np.exp(-np.maximum(llr, 0.0))
    e = np.asarray(effect, dtype=np.float64)
    V = np.asarray(variance, dtype=np.float64)
    return np.where(V == 0.0, np.where(e == 0.0, 1.0, 0.0), p)


def always_valid_interval(effect, variance, tau2, alpha: float = 0.05):
    """``(lower, upper, p_value)`` of the normal-mixture confidence sequence. Vectorized.

    The interval excludes 0 exactly when the p-value is below ``alpha``.
    """
    e = np.asarray(effect, dtype=np.float64)
    hw = always_valid_half_width(variance, tau2, alpha)
    return e - hw, e + hw, always_valid_p_value(e, variance, tau2)


# --------------------------------------------------------------------------- group sequential
def _obrien_fleming(alpha_side: float) -> Callable:
    z = stats.norm.isf(alpha_side / 2.0)

    def spend(t):
        t = np.asarray(t, dtype=np.float64)
        with np.errstate(divide="ignore"):
            return np.where(t > 0, 2.0 * stats.norm.sf(z / np.sqrt(np.maximum(t, 1e-300))), 0.0)

    return spend


def _pocock(alpha_side: float) -> Callable:
    def spend(t):
        return alpha_side * np.log1p((np.e - 1.0) * np.asarray(t, dtype=np.float64))

    return spend


SPENDING = {"obrien_fleming": _obrien_fleming, "pocock": _pocock}


def spending_function(spending: str, alpha: float = 0.05) -> Callable:
    """Cumulative alpha spent *per side* at information fraction ``t`` (two-sided ``alpha``).

    ``"obrien_fleming"``: ``2 - 2 Phi(z_{1-alpha/4} / sqrt t)``;
    ``"pocock"``: ``(alpha/2) log(1 + (e - 1) t)`` (Lan and DeMets 1983).
    Both equal ``alpha/2`` at ``t = 1``.
    """
    alpha = _check_alpha(alpha)
    try:
        make = SPENDING[spending]
    except KeyError:
        raise AbkitError(f"spending={spending!r} is not known; use one of {sorted(SPENDING)}") from None
    return make(alpha / 2.0)


def _check_fractions(t) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64).ravel()
    if t.size == 0 or not np.all(np.isfinite(t)) or np.any(t <= 0) or np.any(t > 1) or np.any(np.diff(t) <= 0):
        raise AbkitError(
            f"information_fractions={t.tolist()} must be strictly increasing and in (0, 1], "
            "e.g. [0.2, 0.4, 0.6, 0.8, 1.0]"
        )
    return t


class _Integrator:
    """The Armitage-McPherson-Rowe recursion for a Brownian motion ``S_t`` with drift.

    ``S_t ~ N(drift t, t)``; the sub-density of ``S_k`` on the continuation
    region ``|s| < c_k`` is carried on a Simpson grid of ``points`` nodes.
    """

    def __init__(self, t: np.ndarray, drift: float = 0.0, points: int = 501):
        self.t = t
        self.drift = float(drift)
        self.points = points | 1  # Simpson needs an odd number of nodes
        self.grid = None  # nodes of the current continuation region
        self.weights = None  # Simpson weights times the sub-density at the nodes

    def crossing(self, k: int, c: float) -> tuple[float, float]:
        """P(first exit at look k above +c) and (below -c), given the region so far."""
        t, mu = self.t, self.drift
        if k == 0:
            sd = np.sqrt(t[0])
            return float(stats.norm.sf((c - mu * t[0]) / sd)), float(stats.norm.cdf((-c - mu * t[0]) / sd))
        sd = np.sqrt(t[k] - t[k - 1])
        m = self.grid + mu * (t[k] - t[k - 1])
        up = stats.norm.sf((c - m) / sd)
        down = stats.norm.cdf((-c - m) / sd)
        return float(self.weights @ up), float(self.weights @ down)

    def advance(self, k: int, c: float) -> None:
        """Condition on no exit at look k (``|S_k| < c``) and move the density there."""
        t, mu = self.t, self.drift
        # Nodes at most a quarter of the next increment's sd apart, so the
        # Gaussian kernel of the next step is resolved (capped for memory).
        step = np.sqrt(t[k + 1] - t[k]) if k + 1 < len(t) else 1.0
        points = int(min(max(self.points, 8.0 * c / step), 4001)) | 1
        nodes = np.linspace(-c, c, points)
        h = nodes[1] - nodes[0]
        simpson = np.ones(points)
        simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
        simpson *= h / 3.0
        if k == 0:
            dens = stats.norm.pdf(nodes, loc=mu * t[0], scale=np.sqrt(t[0]))
        else:
            sd = np.sqrt(t[k] - t[k - 1])
            u = (nodes[:, None] - (self.grid + mu * (t[k] - t[k - 1]))[None, :]) / sd
            dens = np.exp(-0.5 * u * u) @ self.weights / (sd * np.sqrt(2.0 * np.pi))
        self.grid, self.weights = nodes, simpson * dens


def group_sequential_z(information_fractions, alpha: float = 0.05, spending: str = "obrien_fleming",
                       points: int = 501) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided symmetric Lan-DeMets boundaries on the z scale.

    Returns ``(z, spent)``: ``z[k]`` is the critical |Z| at look ``k`` and
    ``spent[k]`` the cumulative two-sided alpha spent through look ``k``.
    Each boundary solves ``P(first exit at look k, either side) =
    2 (a(t_k) - a(t_{k-1}))`` with ``a`` the per-side spending function,
    by Brent's method on the crossing probability of the recursive
    integration (see the module docstring). A look that spends nothing gets
    an infinite boundary.
    """
    t = _check_fractions(information_fractions)
    alpha = _check_alpha(alpha)
    spend = spending_function(spending, alpha)
    cumulative = 2.0 * spend(t)
    target = np.diff(np.concatenate(([0.0], cumulative)))
    walk = _Integrator(t, 0.0, points)
    z = np.empty(len(t))
    for k in range(len(t)):
        root_t = np.sqrt(t[k])
        if target[k] <= 1e-15:
            z[k] = np.inf
            c = 40.0 * root_t  # no exit: the region is effectively unbounded
        else:
            def excess(b, k=k, root_t=root_t):
                up, down = walk.crossing(k, b * root_t)
                return up + down - target[k]

            z[k] = optimize.brentq(excess, 1e-6, 40.0, xtol=1e-12, rtol=1e-14)
            c = z[k] * root_t
        walk.advance(k, c)
    return z, cumulative


def crossing_probabilities(z, information_fractions, drift: float = 0.0, points: int = 501) -> np.ndarray:
    """Probability of first crossing ``|Z_k| >= z[k]`` at each look (either side).

    ``drift`` is the mean of ``Z`` at full information (``E Z_k = drift
    sqrt(t_k)``); ``drift = 0`` gives the alpha actually spent, a positive
    drift the power of the design. Same recursion as :func:`group_sequential_z`.
    """
    t = _check_fractions(information_fractions)
    z = np.asarray(z, dtype=np.float64).ravel()
    if z.shape != t.shape:
        raise AbkitError(f"{len(z)} boundaries for {len(t)} information fractions; give one per look")
    walk = _Integrator(t, drift, points)
    out = np.empty(len(t))
    for k in range(len(t)):
        c = min(z[k], 40.0) * np.sqrt(t[k])
        up, down = walk.crossing(k, c)
        out[k] = up + down
        walk.advance(k, c)
    return out
