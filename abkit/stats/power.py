"""Design and power: sample size, minimum detectable effect (MDE), power, duration.

Pure, vectorized functions (numpy float64 in, frozen result objects out; no
I/O). Every input may be a scalar or a numpy array; arrays broadcast against
each other and the result fields are arrays of the broadcast shape. A grid
of 10,000 scenarios is solved in one vectorized pass (no Python loop over
scenarios; see ``benchmarks/bench_power.py``).

Notation: ``n_c`` units in control, ``n_t = k n_c`` in each treatment arm
(``k`` = ``ratio``), ``sigma`` the unit-level standard deviation of the
outcome, ``delta`` the true effect (treatment minus control) and ``alpha'``
the per-comparison significance level (``alpha`` split over the
comparisons, see *Several arms*).

Means (and ratio metrics, panels, clusters): the two-sample t-test
====================================================================

Exactly statsmodels' ``TTestIndPower`` (Cohen 1988, ch. 2): with the effect
size ``d = delta / sigma'`` and ``n_eff = n_c n_t / (n_c + n_t)``, the t
statistic follows a noncentral t with ``df = n_c + n_t - 2`` degrees of
freedom and noncentrality ``lambda = d sqrt(n_eff)``, so

    one-sided ("larger"):   power = P(T_{df,lambda} > t_{1-alpha', df})
    one-sided ("smaller"):  power = P(T_{df,lambda} < t_{alpha', df})
    two-sided:              power = P(T_{df,lambda} > t_{1-alpha'/2, df})
                                  + P(T_{df,lambda} < -t_{1-alpha'/2, df})

(the two-sided power counts rejections in both tails, as statsmodels does).
Survival functions are used for both tails (the lower tail as
``P(T_{df,-lambda} > t)``), so no ``1 - cdf`` cancellation and no NaN far in
the tails. Sample size and MDE are the exact roots of these equations,
found by a vectorized bracketing solver (regula falsi with the Illinois
modification, Dowell and Jarratt 1971) started from the normal
approximation ``n_c = (z_{1-alpha'} + z_{power})^2 (1 + 1/k) sigma'^2 / delta^2``
and iterated to a relative precision of 1e-12.

* **CUPED / regression adjustment** (Deng, Xu, Kohavi and Walker 2013):
  ``sigma' = sigma sqrt(1 - rho^2)``, where ``rho^2`` (``variance_reduction``)
  is the squared correlation of the (linearized) metric with its pre-period
  covariate, or the R^2 on several covariates (Lin 2013). The one degree of
  freedom spent on the slope is ignored (negligible at A/B sample sizes),
  so ``variance_reduction=0`` is exactly ``TTestIndPower``.
* **Relative MDE**: with ``relative=True`` the effect (and the margin) are
  fractions of ``baseline`` (the control mean): ``delta = mde x baseline``.
* **Non-inferiority** (guardrails): a ``margin = m > 0`` needs a one-sided
  alternative (``"larger"``: higher is better, ``"smaller"``: lower is
  better). The power is computed at the true effect ``mde`` (usually 0, "no
  real change"). How the margin is given decides the test:

  - *Absolute margin* (``relative=False``; ``relative_margin=False`` in
    :func:`mde_mean`): the difference test ``H0: delta <= -m`` against
    ``H1: delta > -m`` (``"larger"``) or ``H0: delta >= m`` against
    ``H1: delta < m`` (``"smaller"``), i.e. the t-test above with the
    shifted effect ``delta + m`` (resp. ``m - delta``) and the variance
    ``sigma'^2 (1/n_c + 1/n_t)``.
  - *Relative margin* (``relative=True`` in :func:`sample_size_mean` /
    :func:`power_mean`, ``relative_margin=True`` in :func:`mde_mean` and in
    the proportion functions; what :func:`abkit.power.plan` uses for
    guardrails): the **ratio test** of ``r = mu_t / mu_c - 1``,
    ``H0: r >= m`` against ``H1: r < m`` (``"smaller"``) or ``H0: r <= -m``
    against ``H1: r > -m`` (``"larger"``). This is the rule the readout
    applies: a guardrail is "ok" when the bad-side bound of the Fieller
    (1954, "Some problems in interval estimation", J. R. Stat. Soc. B 16)
    interval for ``r`` is within the margin
    (:func:`abkit.verdict.guardrail_status`,
    :func:`abkit.stats.ab.fieller_relative`), and the (bounded) Fieller
    upper bound is ``<= m`` exactly when the one-sided t-test (at the interval's
    ``alpha / 2``) of the linear contrast ``C = a_t - (1 + m) a_c`` rejects
    ``C >= 0`` (lower bound ``>= -m``: ``a_t - (1 - m) a_c`` shown ``> 0``).
    With ``g = 1 + s m`` (``s = +1`` for ``"smaller"``, the bad direction
    up; ``s = -1`` for ``"larger"``)::

        E[C]   = mu_t - g mu_c = mu_c (r - s m)
        Var(C) = sigma_t^2 / n_t + g^2 sigma_c^2 / n_c

    so the power is the noncentral t above (same ``df``) with
    ``lambda = shift / (sigma' sqrt(DE (1/n_t + g^2/n_c)))``, ``shift =
    m |mu_c| - delta`` (``"smaller"``) or ``delta + m |mu_c|``
    (``"larger"``), equal unit variances ``sigma_t = sigma_c = sigma'``
    (CUPED-adjusted); the normal start of the solver is ``n_c = (z_{1-alpha'}
    + z_{power})^2 (g^2 + 1/k) sigma'^2 / shift^2``. The difference test's
    variance ``sigma'^2 (1/n_t + 1/n_c)`` would overstate the power of a
    lower-is-better guardrail (``g > 1``: refund rate 10%, m = 10%, planned
    80%, true 76%) and understate a higher-is-better one (``g < 1``), and
    miss the sample size by a factor of about ``(1/k + 1) / (1/k + g^2)``.
    (``mu_c > 0`` is assumed, as for any relative margin.) Panels / DiD
    (:func:`power_panel` etc.) turn a relative margin into an absolute one
    and keep the difference test: their readout has no ratio rule.
* **Ratio metrics** (refunds / orders per buyer; Deng, Knoblich and Lu 2018):
  the unit-level variance of the linearized ratio ``R = mu_Y / mu_X`` is

      sigma_R^2 = (s_Y^2 - 2 R s_XY + R^2 s_X^2) / mu_X^2,

  and the mean formulas apply with ``sigma = sigma_R``, ``baseline = R``.
  The two arms are assumed to share the control arm's unit variance, as in
  ``TTestIndPower``.

Proportions: R's ``power.prop.test``
====================================

The two-proportion z-test with the pooled variance under H0 and no
continuity correction (``prop.test(correct = FALSE)``). With ``k = 1`` this
is R's ``power.prop.test`` (R Core Team, ``stats``):

    power = Phi( (sqrt(n) |p_t - p_c| - z_{1-alpha'/s} sqrt(2 pbar qbar))
                 / sqrt(p_c q_c + p_t q_t) )  [+ other tail if strict]

(``s`` = 1 or 2 tails, ``pbar = (p_c + p_t)/2``, ``q = 1 - p``). For unequal
allocation the natural generalization (Fleiss, Levin and Paik 2003,
*Statistical Methods for Rates and Proportions*, 3rd ed., ch. 4) is used:

    pbar = (p_c + k p_t) / (1 + k)
    V0 = pbar qbar (1 + 1/k)          (variance x n_c under H0, pooled)
    V1 = p_c q_c + p_t q_t / k        (variance x n_c under H1)
    power = Phi( (sqrt(n_c) delta - z sqrt(V0)) / sqrt(V1) )
    n_c = (z_{1-alpha'/s} sqrt(V0) + z_{power} sqrt(V1))^2 / delta^2      (one tail)

``strict=True`` (the default here, like the t-test above and R's
``strict = TRUE``) adds the probability of rejecting in the wrong
direction, ``Phi(-(sqrt(n_c) delta + z sqrt(V0)) / sqrt(V1))``, and solves
``n_c`` by root-finding; ``strict=False`` is R's default (one tail, closed
form). The two differ only when the power is close to alpha.
Non-inferiority margins for proportions use the unpooled variance under both
hypotheses (``V0 = V1``; Blackwelder 1982, "Proving the null hypothesis in
clinical trials", Control. Clin. Trials 3), because the pooled estimate is
not the variance under a shifted null. An absolute ``margin`` (probability
units) is the difference test, ``V0 = V1 = p_c q_c + p_t q_t / k``; with
``relative_margin=True`` the margin is a fraction ``m`` of ``p_c`` and the
test is the ratio test of the means (above, the readout's Fieller rule):
the contrast ``p_t - g p_c`` with ``g = 1 + s m`` and

    V0 = V1 = g^2 p_c q_c + p_t q_t / k,
    shift = m p_c - (p_t - p_c)  ("smaller")  or  (p_t - p_c) + m p_c  ("larger"),
    power = Phi( sqrt(n_c / DE) shift / sqrt(V1) - z_{1-alpha'} ),

with ``p_t`` the treatment proportion at the true effect.

Several arms
============

``arms - 1`` treatment arms, each compared with the control: the
family-wise ``alpha`` is split Bonferroni-wise, ``alpha' = alpha / (arms - 1)``
(the default), or Sidak-wise, ``alpha' = 1 - (1 - alpha)^(1/(arms - 1))``
(exact for independent comparisons, valid for the positively correlated
comparisons against a shared control; Sidak 1967). Bonferroni is the
default because it is what a Holm-corrected analysis (``abkit.analyze(...,
correction="holm")``) needs at worst: Holm rejects everything Bonferroni
rejects, so each comparison has at least the planned power. Dunnett's
(1955) test, which uses the correlation ``k / (1 + k)`` between comparisons
sharing a control, is less conservative (for 3 treatment arms at alpha
0.05 two-sided about 2.35 instead of 2.39 standard errors); Dunnett also
showed that ``k = 1 / sqrt(arms - 1)`` (a larger control) minimizes the total.

Cluster randomization
=====================

Randomizing sellers, warehouses or markets of mean size ``m`` (units per
cluster) with intra-cluster correlation ``ICC`` and coefficient of
variation ``cv`` of the cluster sizes (population sd / mean) inflates the
variance of an arm mean by the design effect (Eldridge, Ashby and Kerry
2006, "Sample size for cluster randomized trials: effect of coefficient of
variation of cluster size and analysis method", Int. J. Epidemiol. 35)

    DE = 1 + ((cv^2 + 1) m - 1) ICC

so ``n_units = n_iid x DE`` and ``n_clusters = n_units / m``. For means the
t-test then uses ``df = n_clusters_c + n_clusters_t - 2`` (the cluster-level
analysis; Donner and Klar 2000, *Design and Analysis of Cluster
Randomization Trials*), which matters with few clusters. Proportions use
the normal approximation, so ``n_units`` is exactly R's ``n x DE``.

Panels and difference-in-differences
====================================

Units (markets) observed ``m`` periods before and ``r`` periods after a
simultaneous launch, a share ``P`` of the ``J`` units treated. Let ``Sigma``
(``(m + r) x (m + r)``) be the covariance of one unit's outcomes over the
periods after removing common period effects. The estimators are
differences in means, between arms, of per-unit contrasts (Frison and
Pocock 1992, Stat. Med. 11; McKenzie 2012, "Beyond baseline and follow-up:
the case for more T in experiments", J. Dev. Econ. 99):

    POST:   c_i = ybar_post,i                        v = Var(ybar_post)
    DiD:    c_i = ybar_post,i - ybar_pre,i           v = a' Sigma a
    ANCOVA: c_i = ybar_post,i - theta ybar_pre,i     v = Var(ybar_post) - Cov(ybar_post, ybar_pre)^2 / Var(ybar_pre)

``Var(tau_hat) = v (1/n_c + 1/n_t) = v / (P (1 - P) J)``. For the DiD this is
Burlig, Preonas and Woerman's (2020, "Panel data and experimental design",
J. Dev. Econ. 144) serial-correlation-robust formula (they state it as an MDE
with t quantiles; here the exact noncentral t is used):

    v_DiD = (1/m + 1/r) sigma^2 + (m-1)/m psi_B + (r-1)/r psi_A - 2 psi_X

with ``psi_B`` / ``psi_A`` the average covariance between distinct pre / post
periods and ``psi_X`` the average pre-post covariance. With the
equicorrelated (constant-correlation ``rho``) ``Sigma = sigma^2 ((1 - rho) I
+ rho 1 1')``, McKenzie's (2012) factors follow:
``v_POST = sigma^2 (1 + (r-1) rho) / r``, ``v_DiD = v_POST + sigma^2 (1 + (m-1)
rho) / m - 2 rho sigma^2``, ``v_ANCOVA = v_POST - sigma^2 m rho^2 / (1 + (m-1)
rho)``. ``panel_covariance`` also builds a unit effect plus AR(1) noise,
``Sigma_ts = sigma^2 (rho + (1 - rho) phi^|t-s|)``, or takes any ``Sigma``.
Power is then the two-sample t-test on the ``c_i`` with ``df = J - 2``
(exact for normal outcomes; analysing the collapsed pre/post contrasts is
what makes inference robust to serial correlation, Bertrand, Duflo and
Mullainathan 2004). ANCOVA's estimated slope costs one further degree of
freedom, ignored here.

Simulation power: the Monte Carlo interval
==========================================

:func:`abkit.power.simulate_power` estimates power as the share ``k / S`` of
``S`` simulated tests that reject. Its uncertainty is binomial:
:func:`monte_carlo_ci` gives the exact Clopper-Pearson (1934) interval

    lower = Beta_{alpha/2}(k, S - k + 1),   upper = Beta_{1-alpha/2}(k + 1, S - k)

(quantiles of Beta distributions; ``lower = 0`` when ``k = 0``, ``upper = 1``
when ``k = S``), which never covers less than its level, and the standard
error ``sqrt(p (1 - p) / S)``.

Duration
========

``n`` units must be enrolled. With ``V`` eligible visitors a day out of a
population of ``N`` buyers who each visit independently with daily
probability ``q = V / N``, the number of unique buyers after ``d`` days is
``U(d) = N (1 - (1 - q)^d)`` (repeat visitors make uniques accrue slower
than traffic), so ``d = ceil( log(1 - n / (s N)) / log(1 - q) )`` where ``s``
is the share of traffic in the experiment. Without ``N`` every visitor is
new (``U(d) = V d``); an explicit cumulative ``uniques_by_day`` curve can
be given instead.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
from scipy import special, stats

from ..errors import AbkitError

__all__ = [
    "ALTERNATIVES", "CORRECTIONS", "MDEResult", "PanelVariance", "PowerResult", "SampleSizeResult",
    "comparison_alpha", "days_needed", "design_effect", "fit_population", "mde_mean", "mde_panel",
    "mde_proportion", "mde_ratio", "monte_carlo_ci", "panel_covariance", "panel_variance", "power_mean",
    "power_panel", "power_proportion", "power_ratio", "ratio_variance", "sample_size_mean", "sample_size_panel",
    "sample_size_proportion", "sample_size_ratio", "t_power", "uniques_after",
]

ALTERNATIVES = ("two-sided", "larger", "smaller")
CORRECTIONS = ("bonferroni", "sidak", None)
_RTOL = 1e-12


# =========================================================================
# validation
# =========================================================================
def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return repr(v)


def _arr(x, name: str) -> np.ndarray:
    """``x`` as a float64 array, or an AbkitError naming ``name``."""
    if isinstance(x, bool) or isinstance(x, str) or x is None:
        raise AbkitError(f"{name}={x!r} must be a number (or a numpy array of numbers)")
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise AbkitError(f"{name}={x!r} must be a number (or a numpy array of numbers)") from None
    if not np.all(np.isfinite(a)):
        bad = a[~np.isfinite(a)].flat[0]
        raise AbkitError(f"{name} must be finite; got {_fmt(bad)}")
    return a


def _require(ok, name: str, a, what: str) -> None:
    """Raise unless every element of ``ok`` holds; the message shows the first bad value."""
    ok = np.asarray(ok)
    if not np.all(ok):
        a = np.broadcast_to(np.asarray(a), ok.shape)
        raise AbkitError(f"{name}={_fmt(a[~ok].flat[0])} {what}")


def _check_alternative(alternative: str) -> int:
    if alternative not in ALTERNATIVES:
        raise AbkitError(f"alternative={alternative!r} is not known; use one of 'two-sided', 'larger' "
                         "(treatment > control) or 'smaller' (statsmodels' words)")
    return 2 if alternative == "two-sided" else 1


def comparison_alpha(alpha, arms: int = 2, correction: str | None = "bonferroni"):
    """The per-comparison level that keeps the family-wise level ``alpha`` over ``arms - 1``
    comparisons with control: Bonferroni ``alpha / (arms - 1)`` or Sidak
    ``1 - (1 - alpha)^(1 / (arms - 1))``; ``correction=None`` keeps ``alpha``."""
    a = _arr(alpha, "alpha")
    _require((a > 0) & (a < 0.5), "alpha", a, "must be in (0, 0.5), e.g. 0.05")
    if isinstance(arms, bool) or not isinstance(arms, (int, np.integer)) or arms < 2:
        raise AbkitError(f"arms={arms!r} must be an integer >= 2 (control plus treatment arms)")
    if correction not in CORRECTIONS:
        raise AbkitError(f"correction={correction!r} is not known; use 'bonferroni', 'sidak' or None")
    k = int(arms) - 1
    if k == 1 or correction is None:
        return a
    if correction == "bonferroni":
        return a / k
    return -np.expm1(np.log1p(-a) / k)


def _check_power(power, alpha_c) -> np.ndarray:
    p = _arr(power, "power")
    _require((p > alpha_c) & (p < 1), "power", p,
             f"must be in (alpha, 1) = ({_fmt(float(np.max(alpha_c)))}, 1) (per-comparison alpha), e.g. 0.8")
    return p


def _positive(x, name: str, hint: str = "") -> np.ndarray:
    a = _arr(x, name)
    _require(a > 0, name, a, "must be > 0" + hint)
    return a


def _check_ratio(ratio) -> np.ndarray:
    return _positive(ratio, "ratio", " (n_treatment / n_control, e.g. 1 for equal arms)")


def _check_vr(variance_reduction) -> np.ndarray:
    v = _arr(variance_reduction, "variance_reduction")
    _require((v >= 0) & (v < 1), "variance_reduction", v,
             "must be in [0, 1): it is rho^2, the share of variance CUPED removes")
    return v


def _check_margin(margin, tails: int) -> np.ndarray:
    m = _arr(margin, "margin")
    _require(m >= 0, "margin", m, "must be >= 0: a non-inferiority margin is the size of the "
             "tolerated degradation (the direction comes from alternative)")
    if tails == 2 and np.any(m > 0):
        raise AbkitError(f"margin={_fmt(float(np.max(m)))} needs a one-sided test: use "
                         "alternative='larger' (higher is better) or 'smaller' (lower is better)")
    return m


def _check_n(n, name: str = "n_control") -> np.ndarray:
    a = _arr(n, name)
    _require(a > 0, name, a, "must be > 0 (units in the control arm)")
    return a


def design_effect(cluster_size, icc, cv=0.0):
    """Variance inflation of cluster randomization (Eldridge, Ashby and Kerry 2006).

    ``DE = 1 + ((cv^2 + 1) m - 1) ICC`` with ``m`` the mean cluster size and
    ``cv`` the coefficient of variation of cluster sizes (sd with ddof 0 over
    the mean; 0 for equal clusters, where this is Kish's ``1 + (m - 1) ICC``).
    """
    m = _arr(cluster_size, "cluster_size")
    _require(m >= 1, "cluster_size", m, "must be >= 1 (mean number of units per cluster)")
    rho = _arr(icc, "icc")
    _require((rho >= 0) & (rho <= 1), "icc", rho, "must be in [0, 1] (intra-cluster correlation)")
    c = _arr(cv, "cluster_cv" if not isinstance(cv, str) else "cv")
    _require(c >= 0, "cluster_cv", c, "must be >= 0 (sd of cluster sizes / mean size)")
    return _out(1.0 + ((c * c + 1.0) * m - 1.0) * rho)


def _cluster(cluster_size, icc, cluster_cv):
    """(m, DE, clustered?) from the cluster arguments."""
    if cluster_size is None:
        if np.any(np.asarray(icc) != 0) or np.any(np.asarray(cluster_cv) != 0):
            raise AbkitError("icc / cluster_cv given without cluster_size; pass cluster_size= (mean "
                             "units per cluster) for a cluster-randomized design")
        return np.float64(1.0), np.float64(1.0), False
    m = _arr(cluster_size, "cluster_size")
    de = np.asarray(design_effect(m, icc, cluster_cv), dtype=np.float64)
    return m, de, True


def _out(x):
    """0-d arrays become Python floats; arrays stay arrays."""
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


def _ceil(n) -> np.ndarray:
    # Guard against 100.00000000001 -> 101 from the root finder's last digits.
    n = np.asarray(n, dtype=np.float64)
    return np.ceil(n * (1.0 - 1e-10))


def _int_out(x):
    x = np.asarray(x)
    if x.ndim == 0:
        return int(x) if np.isfinite(x) else None
    return np.where(np.isfinite(x), x, -1).astype(np.int64)


# =========================================================================
# vectorized root finding
# =========================================================================
def _find_root(f: Callable, lo: np.ndarray, hi: np.ndarray, f_lo: np.ndarray, f_hi: np.ndarray,
               rtol: float = _RTOL, ftol: float = 1e-14, maxiter: int = 200) -> np.ndarray:
    """Root of increasing functions, elementwise, on brackets ``f(lo) < 0 <= f(hi)``.

    ``f(x, i)`` evaluates the functions of elements ``i`` (flat indices) at
    ``x``. Regula falsi with the Illinois modification (halve the retained
    end's value when the same end moves twice), falling back to bisection
    when the secant leaves the bracket; only unconverged elements are
    evaluated.
    """
    lo, hi, f_lo, f_hi = (np.array(a, dtype=np.float64) for a in (lo, hi, f_lo, f_hi))
    n = lo.size
    out = np.where(f_hi == 0, hi, np.nan)
    side = np.zeros(n, dtype=np.int8)
    active = ~(f_hi == 0)
    for _ in range(maxiter):
        i = np.flatnonzero(active)
        if i.size == 0:
            break
        a, b, fa, fb = lo[i], hi[i], f_lo[i], f_hi[i]
        with np.errstate(invalid="ignore", divide="ignore"):
            x = b - fb * (b - a) / (fb - fa)
        bad = ~((x > a) & (x < b))
        x[bad] = 0.5 * (a[bad] + b[bad])
        fx = f(x, i)
        left = fx < 0
        same = side[i] == np.where(left, -1, 1)
        li, ri = i[left], i[~left]
        lo[li], f_lo[li] = x[left], fx[left]
        hi[ri], f_hi[ri] = x[~left], fx[~left]
        f_hi[i[same & left]] *= 0.5
        f_lo[i[same & ~left]] *= 0.5
        side[i] = np.where(left, -1, 1)
        # converged: the bracket is tiny, or the equation holds to 1e-14 (the
        # precision of a probability near 1: the answer cannot get more exact)
        done = (hi[i] - lo[i] <= rtol * np.abs(x)) | (np.abs(fx) <= ftol)
        out[i[done]] = x[done]
        active[i[done]] = False
    rest = np.flatnonzero(active)
    out[rest] = 0.5 * (lo[rest] + hi[rest])
    return out


def _expand_up(f: Callable, lo: np.ndarray, f_lo: np.ndarray, hi: np.ndarray, factor: float = 2.0,
               limit: int = 80):
    """Move ``hi`` up (the old ``hi`` becoming ``lo``) until ``f(hi) >= 0``.

    Returns ``lo, f_lo, hi, f_hi`` (new arrays).
    """
    lo, f_lo, hi = lo.copy(), f_lo.copy(), hi.copy()
    f_hi = f(hi, np.arange(hi.size))
    for _ in range(limit):
        need = np.flatnonzero(f_hi < 0)
        if need.size == 0:
            break
        lo[need], f_lo[need] = hi[need], f_hi[need]
        hi[need] = hi[need] * factor
        f_hi[need] = f(hi[need], need)
    return lo, f_lo, hi, f_hi


# =========================================================================
# the t-test engine
# =========================================================================
def t_power(noncentrality, df, alpha, tails: int = 2):
    """Power of a t-test: ``P(reject)`` for a noncentral t statistic.

    ``tails=1``: ``P(T > t_{1-alpha})`` (``noncentrality`` oriented towards
    the alternative, so >= 0 when the alternative is true); ``tails=2``: both
    tails at ``alpha / 2`` each. Survival functions only (the lower tail is
    ``P(T_{df,-lambda} > t)`` by symmetry), so no cancellation or NaN.
    """
    nc, df, alpha = (np.asarray(a, dtype=np.float64) for a in (noncentrality, df, alpha))
    crit = stats.t.isf(alpha / tails, df)
    p = stats.nct.sf(crit, df, nc)
    if tails == 2:
        p = p + stats.nct.sf(crit, df, -nc)
    return p


def _nc_df(n1, d, k, m, de, g=1.0):
    """Noncentrality and degrees of freedom of the t-test with ``n1`` control units.

    The estimate is ``a_t - g a_c`` (``g = 1``: the difference; ``g = 1 + s m``:
    the ratio test of a relative margin), variance ``sd'^2 DE (1/n2 + g^2/n1)``;
    ``d`` is its mean in units of ``sd'``.
    """
    n2 = n1 * k
    return d * np.sqrt(n1 * n2 / ((n1 + g * g * n2) * de)), (n1 + n2) / m - 2.0


def _solve_n_t(d, k, m, de, alpha_c, power, tails, g=1.0):
    """Control-arm size for which the t-test reaches ``power`` (elementwise); ``d > 0``.

    ``g`` is the control arm's coefficient in the tested contrast (see :func:`_nc_df`).
    """
    d, k, m, de, alpha_c, power, g = (np.asarray(a, dtype=np.float64) for a in
                                      np.broadcast_arrays(d, k, m, de, alpha_c, power, g))
    shape = d.shape
    d, k, m, de, alpha_c, power, g = (a.ravel() for a in (d, k, m, de, alpha_c, power, g))
    v = g * g + 1.0 / k                    # n_c x Var(contrast) / sd'^2 (1 + 1/k for the difference)

    def f(n1, i):
        nc, df = _nc_df(n1, d[i], k[i], m[i], de[i], g[i])
        return t_power(nc, df, alpha_c[i], tails) - power[i]

    za = special.ndtri(1 - alpha_c / tails)
    z = za + special.ndtri(power)
    n0 = de * z * z * v / (d * d)
    n_min = 2.0 * m * np.maximum(1.0, 1.0 / k)   # two units (clusters) per arm: df >= 2
    idx = np.arange(d.size)
    # The normal approximation n0 undershoots the t-test's n by about
    # z_alpha^2 (1 + 1/k) / 4 units (Guenther 1981): bracket tightly around it.
    # (_expand_up widens the bracket when a ratio contrast needs more.)
    lo = np.maximum(n_min, n0)
    f_lo = f(lo, idx)
    redo = np.flatnonzero(f_lo >= 0)
    lo[redo] = n_min[redo]
    f_lo[redo] = f(lo[redo], redo)
    n = n_min.copy()                       # where even the minimum design is powerful enough
    todo = np.flatnonzero(f_lo < 0)
    if todo.size:
        def f_todo(x, i):
            return f(x, todo[i])

        hi = np.maximum(n0 + m * (0.5 * za * za * np.maximum(v, 1.0 + 1.0 / k) + 2.0), 1.5 * lo)[todo]
        lo_, f_lo_, hi, f_hi = _expand_up(f_todo, lo[todo], f_lo[todo], hi, 2.0)
        n[todo] = _find_root(f_todo, lo_, hi, f_lo_, f_hi)
    return n.reshape(shape)


def _solve_nc_t(df, alpha_c, power, tails):
    """Noncentrality at which the t-test reaches ``power`` (elementwise)."""
    arrs = np.broadcast_arrays(df, alpha_c, power)
    shape = arrs[0].shape
    df, alpha_c, power = (np.asarray(a, dtype=np.float64).ravel().copy() for a in arrs)

    def f(nc, i):
        return t_power(nc, df[i], alpha_c[i], tails) - power[i]

    # Start from lambda ~ t_crit + z_power sqrt(1 + t_crit^2 / (2 df)) (the normal
    # approximation to the noncentral t) and bracket it tightly.
    crit = stats.t.isf(alpha_c / tails, df)
    guess = crit + special.ndtri(power) * np.sqrt(1.0 + crit * crit / (2.0 * df))
    lo = np.maximum(guess - 0.02 * (1.0 + 10.0 / df), 0.0)
    f_lo = f(lo, np.arange(df.size))
    low = np.flatnonzero(f_lo >= 0)
    lo[low] = 0.0                    # power at nc = 0 is <= alpha < power
    f_lo[low] = f(lo[low], low)
    lo, f_lo, hi, f_hi = _expand_up(f, lo, f_lo, np.maximum(guess + 0.02 * (1.0 + 10.0 / df), lo + 0.01), 1.5)
    return _find_root(f, lo, hi, f_lo, f_hi).reshape(shape)


# =========================================================================
# results
# =========================================================================
def _num(v, digits: int = 4) -> str:
    """Large counts in full with thousands separators (247,204 rather than 2.472e+05), else ``digits`` figures."""
    v = float(v)
    return f"{v:,.0f}" if 1e4 <= abs(v) < 1e15 else f"{v:.{digits}g}"


def _show(x, digits: int = 4) -> str:
    if x is None:
        return "None"
    a = np.asarray(x)
    if a.ndim == 0:
        v = a.item()
        if isinstance(v, float):
            return _num(v, digits) if np.isfinite(v) else "nan"
        return repr(v)
    if a.size == 0:
        return "[]"
    if a.dtype.kind in "fiu":
        finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
        if finite.size == 0:
            return f"array{a.shape} of nan"
        lo, hi = finite.min(), finite.max()
        return f"array{a.shape} {_num(lo, digits)}..{_num(hi, digits)}"
    return f"array{a.shape}"


_NEUTRAL = {"margin": 0.0, "arms": 2, "design_effect": 1.0, "variance_reduction": 0.0}


def _neutral(result, key, value) -> bool:
    """Fields left out of the repr when they hold their do-nothing value."""
    a = np.asarray(value)
    if a.dtype.kind == "f" and a.size and np.all(np.isnan(a)):
        return True
    if key == "alpha_per_comparison":
        return bool(np.all(a == np.asarray(result.alpha)))
    return key in _NEUTRAL and a.ndim == 0 and a.item() == _NEUTRAL[key]


class _Result:
    """Shared behaviour: a readable repr and a tidy frame."""

    _headline: tuple[str, ...] = ()

    def _items(self):
        return [(f.name, getattr(self, f.name)) for f in fields(self)]  # type: ignore[arg-type]

    def __repr__(self) -> str:
        head = ", ".join(f"{k}={_show(getattr(self, k))}" for k in self._headline)
        skip = set(self._headline) | {"method", "note"}
        parts = []
        for k, v in self._items():
            if k in skip or v is None or _neutral(self, k, v):
                continue
            parts.append(f"{k}={_show(v)}")
        note = f"; note: {self.note}" if getattr(self, "note", "") else ""
        return f"{type(self).__name__}({head}; {', '.join(parts)}; {self.method}{note})"

    def to_dict(self) -> dict:
        return dict(self._items())

    def to_frame(self):
        """One row per scenario (array inputs are flattened in C order)."""
        import pandas as pd

        items = {k: v for k, v in self._items() if k != "note"}
        shape = np.broadcast_shapes(*(np.shape(v) for v in items.values() if not isinstance(v, str)
                                      and v is not None))
        cols = {}
        for k, v in items.items():
            if v is None:
                continue
            cols[k] = np.broadcast_to(np.asarray(v), shape).ravel() if shape else [v]
        return pd.DataFrame(cols)


@dataclass(frozen=True, repr=False, eq=False)
class SampleSizeResult(_Result):
    """Units needed per arm (exact floats) and the rounded-up total.

    ``total = ceil(n_control) + (arms - 1) ceil(n_treatment)``. For a
    cluster-randomized design ``n_*`` count units, ``n_clusters_*`` clusters
    and ``total_clusters`` rounds clusters up per arm.
    """

    n_control: float | np.ndarray
    n_treatment: float | np.ndarray
    total: int | np.ndarray
    mde: float | np.ndarray
    relative_mde: float | np.ndarray
    power: float | np.ndarray
    alpha: float | np.ndarray
    alpha_per_comparison: float | np.ndarray
    alternative: str
    ratio: float | np.ndarray
    arms: int
    margin: float | np.ndarray
    baseline: float | np.ndarray
    sd: float | np.ndarray                 # as given (before CUPED: the adjusted sd is sd * sqrt(1 - variance_reduction))
    variance_reduction: float | np.ndarray
    design_effect: float | np.ndarray
    n_clusters_control: float | np.ndarray | None
    n_clusters_treatment: float | np.ndarray | None
    total_clusters: int | np.ndarray | None
    method: str
    note: str = ""

    _headline = ("n_control", "n_treatment", "total")

    @property
    def per_arm(self):
        """The larger arm size, rounded up (convenient for equal allocation)."""
        return _int_out(_ceil(np.maximum(self.n_control, self.n_treatment)))


@dataclass(frozen=True, repr=False, eq=False)
class PowerResult(_Result):
    """Power of the design at the given effect."""

    power: float | np.ndarray
    mde: float | np.ndarray
    relative_mde: float | np.ndarray
    n_control: float | np.ndarray
    n_treatment: float | np.ndarray
    alpha: float | np.ndarray
    alpha_per_comparison: float | np.ndarray
    alternative: str
    ratio: float | np.ndarray
    arms: int
    margin: float | np.ndarray
    baseline: float | np.ndarray
    sd: float | np.ndarray
    variance_reduction: float | np.ndarray
    design_effect: float | np.ndarray
    method: str
    note: str = ""

    _headline = ("power",)


@dataclass(frozen=True, repr=False, eq=False)
class MDEResult(_Result):
    """Minimum detectable effect (absolute, and relative to the baseline when known).

    For a two-sided test ``mde`` is the magnitude (means are symmetric);
    proportions report the direction solved (``treatment_value``). With a
    non-inferiority ``margin`` it is the smallest true effect at which
    non-inferiority is shown with the target power (may be negative).
    """

    mde: float | np.ndarray
    relative_mde: float | np.ndarray
    treatment_value: float | np.ndarray
    power: float | np.ndarray
    n_control: float | np.ndarray
    n_treatment: float | np.ndarray
    alpha: float | np.ndarray
    alpha_per_comparison: float | np.ndarray
    alternative: str
    ratio: float | np.ndarray
    arms: int
    margin: float | np.ndarray
    baseline: float | np.ndarray
    sd: float | np.ndarray
    variance_reduction: float | np.ndarray
    design_effect: float | np.ndarray
    method: str
    note: str = ""

    _headline = ("mde", "relative_mde")


# =========================================================================
# means
# =========================================================================
_RATIO_TEST = "ratio test of a_t - (1 {sign} m) a_c for the relative margin (the readout's Fieller rule)"


def _t_method(clustered: bool, arms: int, correction, ratio_test: str = "") -> str:
    base = "two-sample t-test (noncentral t, as statsmodels TTestIndPower)"
    if ratio_test:
        base += ", " + ratio_test
    if clustered:
        base += ", cluster-randomized (design effect, df from clusters)"
    if arms > 2 and correction:
        base += f", {correction} over {arms - 1} comparisons"
    return base


def _oriented(effect, margin, alternative: str, what: str = "mde"):
    """The shift from the null boundary, towards the alternative (must be > 0)."""
    if alternative == "two-sided":
        _require(effect != 0, what, effect, "must not be 0 (no effect cannot be detected)")
        return np.abs(effect)
    if alternative == "larger":
        shift = effect + margin
        _require(shift > 0, what, effect,
                 "with alternative='larger' tests for an increase: pass a positive effect"
                 + (" (or one above -margin)" if np.any(margin > 0) else "") + ", or alternative='smaller'")
        return shift
    shift = margin - effect
    _require(shift > 0, what, effect,
             "with alternative='smaller' tests for a decrease: pass a negative effect"
             + (" (or one below +margin)" if np.any(margin > 0) else "") + ", or alternative='larger'")
    return shift


def _scale(effect, margin, baseline, relative: bool, what: str = "mde"):
    """Absolute effect and margin; relative ones are fractions of ``baseline``."""
    if relative:
        if baseline is None:
            raise AbkitError(f"relative=True needs baseline= (the control mean) to turn the relative "
                             f"{what} into an absolute one")
        b = _arr(baseline, "baseline")
        _require(b != 0, "baseline", b, "must not be 0 for a relative effect")
        return effect * b, margin * np.abs(b), b
    return effect, margin, (np.nan if baseline is None else _arr(baseline, "baseline"))


def _relative(effect, baseline):
    with np.errstate(divide="ignore", invalid="ignore"):
        return effect / baseline


def _contrast(margin, alternative: str, relative: bool):
    """``(g, label)``: the control arm's coefficient in the tested contrast ``a_t - g a_c``.

    A relative non-inferiority margin ``m`` (a fraction of the control
    value) is tested as the ratio test the readout applies (the Fieller
    bound of ``r = a_t / a_c - 1`` within the margin): ``g = 1 + m`` when
    the bad direction is up (``alternative="smaller"``, lower is better),
    ``g = 1 - m`` when it is down (``"larger"``). Absolute margins, and no
    margin, test the difference: ``g = 1``. ``label`` names the ratio test
    for the results' ``method`` ("" for the difference).
    """
    m = np.asarray(margin, dtype=np.float64)
    if not relative or alternative == "two-sided" or not np.any(m > 0):
        return np.float64(1.0), ""
    if alternative == "smaller":
        return 1.0 + m, _RATIO_TEST.format(sign="+")
    return 1.0 - m, _RATIO_TEST.format(sign="-")


def sample_size_mean(sd, mde, alpha=0.05, power=0.8, ratio=1.0, alternative="two-sided",
                     variance_reduction=0.0, *, baseline=None, relative=False, margin=0.0,
                     arms=2, correction="bonferroni", cluster_size=None, icc=0.0,
                     cluster_cv=0.0) -> SampleSizeResult:
    """Units per arm to detect a difference in means ``mde`` with a two-sample t-test.

    Solves statsmodels' ``TTestIndPower().solve_power(effect_size=mde/sd',
    nobs1=None, ...)`` exactly (see the module docstring), with
    ``sd' = sd sqrt(1 - variance_reduction)``.

    Parameters
    ----------
    sd : unit-level standard deviation of the outcome (control arm).
    mde : the true effect to detect (treatment - control), absolute, or a
        fraction of ``baseline`` with ``relative=True``. Negative for
        ``alternative="smaller"``. With a ``margin`` it may be 0.
    alpha : family-wise significance level (split over ``arms - 1`` comparisons).
    power : target power, in (alpha, 1).
    ratio : ``n_treatment / n_control`` (per treatment arm).
    alternative : ``"two-sided"``, ``"larger"`` or ``"smaller"``.
    variance_reduction : CUPED's rho^2 in [0, 1).
    baseline, relative : control mean; with ``relative=True`` ``mde`` and
        ``margin`` are fractions of it (results also report ``relative_mde``
        whenever ``baseline`` is given).
    margin : non-inferiority margin (> 0, one-sided tests only). Absolute
        (``relative=False``): the difference test of ``a_t - a_c`` against
        ``-/+ margin``. Relative (``relative=True``): the ratio test of
        ``r = a_t / a_c - 1`` against ``-/+ margin``, i.e. of the contrast
        ``a_t - (1 + s m) a_c`` (``s = +1`` for ``"smaller"``, ``-1`` for
        ``"larger"``) with variance ``sd'^2 (1/n_t + (1 + s m)^2 / n_c)``:
        the power of the rule the readout applies to a guardrail (its
        Fieller 1954 bound within the margin). See the module docstring.
    arms, correction : number of arms including control; ``"bonferroni"``,
        ``"sidak"`` or None.
    cluster_size, icc, cluster_cv : cluster randomization (mean units per
        cluster, intra-cluster correlation, CV of cluster sizes).

    Examples
    --------
    >>> sample_size_mean(sd=1.0, mde=0.2).n_control  # doctest: +ELLIPSIS
    393.40...
    """
    tails = _check_alternative(alternative)
    alpha_c = comparison_alpha(alpha, arms, correction)
    pw = _check_power(power, alpha_c)
    s = _positive(sd, "sd", " (unit-level standard deviation)")
    k = _check_ratio(ratio)
    vr = _check_vr(variance_reduction)
    mg = _check_margin(margin, tails)
    eff, mg_abs, base = _scale(_arr(mde, "mde"), mg, baseline, relative)
    shift = _oriented(eff, mg_abs, alternative)
    g, ratio_test = _contrast(mg, alternative, relative)
    m, de, clustered = _cluster(cluster_size, icc, cluster_cv)
    sd_adj = s * np.sqrt(1.0 - vr)
    n1 = _solve_n_t(shift / sd_adj, k, m, de, alpha_c, pw, tails, g)
    return _sample_size_result(n1, k, eff, base, pw, alpha, alpha_c, alternative, arms, mg_abs, s, vr,
                               de, m if clustered else None, _t_method(clustered, arms, correction, ratio_test))


def _sample_size_result(n1, k, eff, base, pw, alpha, alpha_c, alternative, arms, margin, sd, vr, de, m,
                        method, note="") -> SampleSizeResult:
    n1 = np.asarray(n1, dtype=np.float64)
    n2 = n1 * k
    total = _ceil(n1) + (arms - 1) * _ceil(n2)
    if m is not None:
        kc, kt = n1 / m, n2 / m
        tc = _int_out(_ceil(kc) + (arms - 1) * _ceil(kt))
        kc, kt = _out(kc), _out(kt)
    else:
        kc = kt = tc = None
    return SampleSizeResult(
        n_control=_out(n1), n_treatment=_out(n2), total=_int_out(total), mde=_out(eff),
        relative_mde=_out(_relative(eff, base)), power=_out(pw), alpha=_out(alpha),
        alpha_per_comparison=_out(alpha_c), alternative=alternative, ratio=_out(k), arms=int(arms),
        margin=_out(margin), baseline=_out(base), sd=_out(sd), variance_reduction=_out(vr),
        design_effect=_out(de), n_clusters_control=kc, n_clusters_treatment=kt, total_clusters=tc,
        method=method, note=note,
    )


def power_mean(sd, mde, n_control, alpha=0.05, ratio=1.0, alternative="two-sided",
               variance_reduction=0.0, *, baseline=None, relative=False, margin=0.0, arms=2,
               correction="bonferroni", cluster_size=None, icc=0.0, cluster_cv=0.0) -> PowerResult:
    """Power of the two-sample t-test with ``n_control`` units in control and
    ``ratio x n_control`` in each treatment arm, at the true effect ``mde``.

    Equals statsmodels' ``TTestIndPower().power(mde / sd', n_control, alpha,
    ratio=ratio, alternative=alternative)`` (arguments as in
    :func:`sample_size_mean`). With a ``margin``, the probability of showing
    non-inferiority when the true effect is ``mde``: for an absolute margin
    the difference test, ``lambda = shift / (sd' sqrt(DE (1/n_t + 1/n_c)))``;
    for a relative one (``relative=True``) the ratio test the readout
    applies (Fieller bound of ``r = a_t / a_c - 1`` within the margin, i.e.
    the t-test of ``a_t - (1 + s m) a_c``), ``lambda = shift / (sd'
    sqrt(DE (1/n_t + (1 + s m)^2 / n_c)))`` with ``s = +1`` for
    ``"smaller"`` and ``-1`` for ``"larger"``; ``shift = m |baseline| -
    delta`` (``"smaller"``) or ``delta + m |baseline|`` (``"larger"``).
    """
    tails = _check_alternative(alternative)
    alpha_c = comparison_alpha(alpha, arms, correction)
    s = _positive(sd, "sd", " (unit-level standard deviation)")
    n1 = _check_n(n_control)
    k = _check_ratio(ratio)
    vr = _check_vr(variance_reduction)
    mg = _check_margin(margin, tails)
    eff, mg_abs, base = _scale(_arr(mde, "mde"), mg, baseline, relative)
    g, ratio_test = _contrast(mg, alternative, relative)
    m, de, clustered = _cluster(cluster_size, icc, cluster_cv)
    sd_adj = s * np.sqrt(1.0 - vr)
    if alternative == "two-sided":
        shift = np.abs(eff)
    elif alternative == "larger":
        shift = eff + mg_abs
    else:
        shift = mg_abs - eff
    n2 = n1 * k
    df = (n1 + n2) / m - 2.0
    _require(df > 0, "n_control", n1, "is too small: the t-test needs n_control + n_treatment > 2 "
             "(units, or clusters for a cluster design)")
    nc, _ = _nc_df(n1, shift / sd_adj, k, m, de, g)
    p = t_power(nc, df, alpha_c, tails)
    return PowerResult(
        power=_out(p), mde=_out(eff), relative_mde=_out(_relative(eff, base)), n_control=_out(n1),
        n_treatment=_out(n2), alpha=_out(alpha), alpha_per_comparison=_out(alpha_c), alternative=alternative,
        ratio=_out(k), arms=int(arms), margin=_out(mg_abs), baseline=_out(base), sd=_out(s),
        variance_reduction=_out(vr), design_effect=_out(de),
        method=_t_method(clustered, arms, correction, ratio_test),
    )


def mde_mean(sd, n_control, alpha=0.05, power=0.8, ratio=1.0, alternative="two-sided",
             variance_reduction=0.0, *, baseline=None, margin=0.0, relative_margin=False, arms=2,
             correction="bonferroni", cluster_size=None, icc=0.0, cluster_cv=0.0) -> MDEResult:
    """Smallest true effect the two-sample t-test detects with probability ``power``.

    The root ``d`` of ``TTestIndPower().power(d, n_control, alpha, ratio,
    alternative) = power`` times ``sd'``; positive for ``"two-sided"`` (a
    magnitude) and ``"larger"``, negative for ``"smaller"``. ``relative_mde``
    is reported when ``baseline`` is given. With a non-inferiority
    ``margin`` (a fraction of ``baseline`` if ``relative_margin``) it is the
    smallest true effect (``"larger"``; largest for ``"smaller"``) at which
    non-inferiority is shown with the target power. An absolute margin is
    the difference test; a relative one (``relative_margin=True``) the
    ratio test the readout applies to guardrails (Fieller bound within the
    margin: the t-test of ``a_t - (1 + s m) a_c``, ``s = +1`` for
    ``"smaller"``, ``-1`` for ``"larger"``), so
    ``shift = lambda sd' sqrt(DE (1/n_t + (1 + s m)^2 / n_c))`` and the
    effect is ``m |baseline| - shift`` (``"smaller"``) or ``shift - m
    |baseline|`` (``"larger"``).
    """
    tails = _check_alternative(alternative)
    alpha_c = comparison_alpha(alpha, arms, correction)
    pw = _check_power(power, alpha_c)
    s = _positive(sd, "sd", " (unit-level standard deviation)")
    n1 = _check_n(n_control)
    k = _check_ratio(ratio)
    vr = _check_vr(variance_reduction)
    mg = _check_margin(margin, tails)
    _, mg_abs, base = _scale(np.float64(0.0), mg, baseline, relative_margin, "margin")
    g, ratio_test = _contrast(mg, alternative, relative_margin)
    m, de, clustered = _cluster(cluster_size, icc, cluster_cv)
    sd_adj = s * np.sqrt(1.0 - vr)
    n2 = n1 * k
    df = (n1 + n2) / m - 2.0
    _require(df > 0, "n_control", n1, "is too small: the t-test needs n_control + n_treatment > 2 "
             "(units, or clusters for a cluster design)")
    nc = _solve_nc_t(df, alpha_c, pw, tails)
    shift = nc * sd_adj * np.sqrt(de * (1.0 / n2 + g * g / n1))
    eff = mg_abs - shift if alternative == "smaller" else shift - mg_abs
    return MDEResult(
        mde=_out(eff), relative_mde=_out(_relative(eff, base)),
        treatment_value=_out(base + eff), power=_out(pw), n_control=_out(n1), n_treatment=_out(n2),
        alpha=_out(alpha), alpha_per_comparison=_out(alpha_c), alternative=alternative, ratio=_out(k),
        arms=int(arms), margin=_out(mg_abs), baseline=_out(base), sd=_out(s), variance_reduction=_out(vr),
        design_effect=_out(de), method=_t_method(clustered, arms, correction, ratio_test),
    )


# =========================================================================
# ratio metrics
# =========================================================================
def ratio_variance(numerator_mean, denominator_mean, numerator_var, denominator_var, covariance):
    """Unit-level variance of the linearized ratio ``R = mu_Y / mu_X`` (delta method).

    ``(s_Y^2 - 2 R s_XY + R^2 s_X^2) / mu_X^2`` (Deng, Knoblich and Lu 2018):
    ``Var(Ybar / Xbar) ~= ratio_variance / n``. Returns ``(R, variance)``.
    """
    my = _arr(numerator_mean, "numerator_mean")
    mx = _arr(denominator_mean, "denominator_mean")
    _require(mx != 0, "denominator_mean", mx, "must not be 0 (the ratio is undefined)")
    vy = _arr(numerator_var, "numerator_var")
    _require(vy >= 0, "numerator_var", vy, "must be >= 0")
    vx = _arr(denominator_var, "denominator_var")
    _require(vx >= 0, "denominator_var", vx, "must be >= 0")
    cxy = _arr(covariance, "covariance")
    r = my / mx
    v = (vy - 2.0 * r * cxy + r * r * vx) / (mx * mx)
    _require(v > 0, "covariance", cxy,
             "gives a delta-method variance <= 0 for the ratio; the variances and covariance must come "
             "from the same units (|covariance| <= sqrt(numerator_var * denominator_var))")
    return _out(r), _out(v)


def _ratio_sd(numerator_mean, denominator_mean, numerator_var, denominator_var, covariance):
    r, v = ratio_variance(numerator_mean, denominator_mean, numerator_var, denominator_var, covariance)
    return np.asarray(r), np.sqrt(np.asarray(v))


def sample_size_ratio(numerator_mean, denominator_mean, numerator_var, denominator_var, covariance, mde,
                      alpha=0.05, power=0.8, ratio=1.0, alternative="two-sided", variance_reduction=0.0, *,
                      relative=False, margin=0.0, arms=2, correction="bonferroni", cluster_size=None,
                      icc=0.0, cluster_cv=0.0) -> SampleSizeResult:
    """Units per arm for a ratio metric (e.g. refunds / orders per buyer), by the delta method.

    The moments are per unit (buyer) in the control arm: means, variances and
    the covariance of the numerator and denominator columns. The unit sd is
    ``sqrt(ratio_variance(...))`` and the baseline the ratio ``R``; then as
    :func:`sample_size_mean` (``relative=True`` makes ``mde`` a fraction of ``R``).
    """
    r, sd = _ratio_sd(numerator_mean, denominator_mean, numerator_var, denominator_var, covariance)
    res = sample_size_mean(sd, mde, alpha, power, ratio, alternative, variance_reduction, baseline=r,
                           relative=relative, margin=margin, arms=arms, correction=correction,
                           cluster_size=cluster_size, icc=icc, cluster_cv=cluster_cv)
    return _renamed(res, "ratio metric (delta method): ")


def power_ratio(numerator_mean, denominator_mean, numerator_var, denominator_var, covariance, mde, n_control,
                alpha=0.05, ratio=1.0, alternative="two-sided", variance_reduction=0.0, *, relative=False,
                margin=0.0, arms=2, correction="bonferroni", cluster_size=None, icc=0.0,
                cluster_cv=0.0) -> PowerResult:
    """Power for a ratio metric at the true effect ``mde`` (see :func:`sample_size_ratio`)."""
    r, sd = _ratio_sd(numerator_mean, denominator_mean, numerator_var, denominator_var, covariance)
    res = power_mean(sd, mde, n_control, alpha, ratio, alternative, variance_reduction, baseline=r,
                     relative=relative, margin=margin, arms=arms, correction=correction,
                     cluster_size=cluster_size, icc=icc, cluster_cv=cluster_cv)
    return _renamed(res, "ratio metric (delta method): ")


def mde_ratio(numerator_mean, denominator_mean, numerator_var, denominator_var, covariance, n_control,
              alpha=0.05, power=0.8, ratio=1.0, alternative="two-sided", variance_reduction=0.0, *,
              margin=0.0, relative_margin=False, arms=2, correction="bonferroni", cluster_size=None, icc=0.0,
              cluster_cv=0.0) -> MDEResult:
    """Minimum detectable change of a ratio metric, absolute and relative to ``R``."""
    r, sd = _ratio_sd(numerator_mean, denominator_mean, numerator_var, denominator_var, covariance)
    res = mde_mean(sd, n_control, alpha, power, ratio, alternative, variance_reduction, baseline=r,
                   margin=margin, relative_margin=relative_margin, arms=arms, correction=correction,
                   cluster_size=cluster_size, icc=icc, cluster_cv=cluster_cv)
    return _renamed(res, "ratio metric (delta method): ")


def _renamed(res, prefix: str):
    from dataclasses import replace

    return replace(res, method=prefix + res.method)


# =========================================================================
# proportions
# =========================================================================
def _check_p(p, name: str, closed: bool) -> np.ndarray:
    a = _arr(p, name)
    if closed:
        _require((a >= 0) & (a <= 1), name, a, "must be a probability in [0, 1]")
    else:
        _require((a > 0) & (a < 1), name, a, "must be a probability strictly between 0 and 1")
    return a


def _prop_variances(pc, pt, k, margin, g=1.0):
    """(V0, V1) = n_control x variance of the contrast ``p_t - g p_c`` under H0 (pooled; unpooled with a
    margin) and H1; ``g = 1`` (the difference) unless a relative margin makes it the ratio test."""
    v1 = g * g * pc * (1.0 - pc) + pt * (1.0 - pt) / k
    pbar = (pc + k * pt) / (1.0 + k)
    v0 = np.where(margin > 0, v1, pbar * (1.0 - pbar) * (1.0 + 1.0 / k))
    return v0, v1


def _prop_power(n1, shift, v0, v1, de, z, tails, strict):
    s = np.sqrt(n1 / de)
    sd0, sd1 = np.sqrt(v0), np.sqrt(v1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = special.ndtr((s * shift - z * sd0) / sd1)
        if strict and tails == 2:
            p = p + special.ndtr(-(s * shift + z * sd0) / sd1)
    return p


def _prop_method(strict: bool, tails: int, margin, clustered, arms, correction, ratio_test: str = "") -> str:
    if ratio_test:
        base = "two-proportion z-test, unpooled variance, " + ratio_test
    elif np.any(np.asarray(margin) > 0):
        base = "two-proportion z-test, unpooled variance (non-inferiority, Blackwelder 1982)"
    else:
        base = "two-proportion z-test, pooled variance, no continuity correction (R power.prop.test"
        base += (", strict=TRUE)" if strict and tails == 2 else ")")
    if clustered:
        base += ", cluster-randomized (design effect)"
    if arms > 2 and correction:
        base += f", {correction} over {arms - 1} comparisons"
    return base


def _prop_shift(pc, pt, margin, alternative):
    return _oriented(pt - pc, margin, alternative, "p_treatment - p_control")


def _prop_margin(margin, pc, tails, alternative, relative_margin):
    """``(absolute margin, g, ratio-test label)`` of the proportion functions."""
    if not isinstance(relative_margin, (bool, np.bool_)):
        raise AbkitError(f"relative_margin={relative_margin!r} must be True (margin a fraction of p_control: "
                         "the ratio test) or False (margin in probability units: the difference test)")
    mg = _check_margin(margin, tails)
    g, label = _contrast(mg, alternative, bool(relative_margin))
    return (mg * pc if relative_margin else mg), g, label


def sample_size_proportion(p_control, p_treatment, alpha=0.05, power=0.8, ratio=1.0, alternative="two-sided",
                           *, strict=True, margin=0.0, relative_margin=False, arms=2, correction="bonferroni",
                           cluster_size=None, icc=0.0, cluster_cv=0.0) -> SampleSizeResult:
    """Units per arm to detect ``p_control -> p_treatment`` with the two-proportion z-test.

    R's ``power.prop.test(p1=p_control, p2=p_treatment, power=power,
    sig.level=alpha)`` for ``ratio=1`` (``strict=False`` is R's default, one
    tail in closed form; ``strict=True``, the default here, also counts the
    other tail), generalized to unequal allocation as in the module
    docstring. ``margin`` makes it a non-inferiority test with unpooled
    variances. Cluster arguments multiply the units by the design effect.

    ``margin`` is absolute (probability units; the difference test
    ``p_t - p_c`` against ``-/+ margin``, Blackwelder 1982) unless
    ``relative_margin=True``: then it is a fraction ``m`` of ``p_control``
    and the test is the ratio test the readout applies to a guardrail (the
    Fieller 1954 bound of ``r = p_t / p_c - 1`` within ``-/+ m``, i.e. the
    z-test of ``p_t - (1 + s m) p_c`` with ``s = +1`` for ``"smaller"``,
    ``-1`` for ``"larger"``), variance ``(1 + s m)^2 p_c q_c / n_c + p_t
    q_t / n_t`` under both hypotheses. Results report the absolute margin.

    Examples
    --------
    >>> round(sample_size_proportion(0.5, 0.75, power=0.9).n_control, 4)  # R documents n = 76.7
    76.7069
    """
    tails = _check_alternative(alternative)
    alpha_c = comparison_alpha(alpha, arms, correction)
    pw = _check_power(power, alpha_c)
    pc = _check_p(p_control, "p_control", closed=False)
    pt = _check_p(p_treatment, "p_treatment", closed=True)
    k = _check_ratio(ratio)
    mg_abs, g, ratio_test = _prop_margin(margin, pc, tails, alternative, relative_margin)
    shift = _prop_shift(pc, pt, mg_abs, alternative)
    m, de, clustered = _cluster(cluster_size, icc, cluster_cv)
    v0, v1 = _prop_variances(pc, pt, k, mg_abs, g)
    z = special.ndtri(1.0 - alpha_c / tails)
    zb = special.ndtri(pw)
    n1 = de * (z * np.sqrt(v0) + zb * np.sqrt(v1)) ** 2 / (shift * shift)
    if strict and tails == 2:
        n1 = _refine_strict(n1, shift, v0, v1, de, z, pw)
    return _sample_size_result(n1, k, pt - pc, pc, pw, alpha, alpha_c, alternative, arms, mg_abs, np.nan,
                               np.float64(0.0), de, m if clustered else None,
                               _prop_method(strict, tails, mg_abs, clustered, arms, correction, ratio_test))


def _refine_strict(n_closed, shift, v0, v1, de, z, pw):
    """Root of the two-tailed power equation below the one-tail closed form."""
    arrs = np.broadcast_arrays(n_closed, shift, v0, v1, de, z, pw)
    shape = arrs[0].shape
    n_closed, shift, v0, v1, de, z, pw = (np.asarray(a, dtype=np.float64).ravel() for a in arrs)

    def f(n, i):
        return _prop_power(n, shift[i], v0[i], v1[i], de[i], z[i], 2, True) - pw[i]

    idx = np.arange(n_closed.size)
    hi = n_closed.copy()
    f_hi = f(hi, idx)
    lo = 0.5 * hi
    f_lo = f(lo, idx)
    for _ in range(60):
        need = np.flatnonzero(f_lo >= 0)
        if need.size == 0:
            break
        hi[need], f_hi[need] = lo[need], f_lo[need]
        lo[need] = 0.5 * lo[need]
        f_lo[need] = f(lo[need], need)
    return _find_root(f, lo, hi, f_lo, f_hi).reshape(shape)


def power_proportion(p_control, p_treatment, n_control, alpha=0.05, ratio=1.0, alternative="two-sided", *,
                     strict=True, margin=0.0, relative_margin=False, arms=2, correction="bonferroni",
                     cluster_size=None, icc=0.0, cluster_cv=0.0) -> PowerResult:
    """Power of the two-proportion z-test (R's ``power.prop.test(n=n_control, p1, p2)`` for ratio 1).

    ``margin`` is absolute (probability units; the difference test
    ``p_t - p_c`` against ``-/+ margin``, Blackwelder 1982) unless
    ``relative_margin=True``: then it is a fraction ``m`` of ``p_control``
    and the test is the ratio test the readout applies to a guardrail (the
    Fieller 1954 bound of ``r = p_t / p_c - 1`` within ``-/+ m``, i.e. the
    z-test of ``p_t - (1 + s m) p_c`` with ``s = +1`` for ``"smaller"``,
    ``-1`` for ``"larger"``), variance ``(1 + s m)^2 p_c q_c / n_c + p_t
    q_t / n_t`` under both hypotheses. Results report the absolute margin.
    The power is ``Phi(sqrt(n_c / DE) shift / sqrt(V) - z_{1-alpha'})`` with
    ``shift = m_abs - (p_t - p_c)`` (``"smaller"``) or ``p_t - p_c + m_abs``
    (``"larger"``), ``m_abs = m p_c`` for a relative margin, and ``V = n_c
    Var(contrast)``.
    """
    tails = _check_alternative(alternative)
    alpha_c = comparison_alpha(alpha, arms, correction)
    pc = _check_p(p_control, "p_control", closed=False)
    pt = _check_p(p_treatment, "p_treatment", closed=True)
    n1 = _check_n(n_control)
    k = _check_ratio(ratio)
    mg_abs, g, ratio_test = _prop_margin(margin, pc, tails, alternative, relative_margin)
    m, de, clustered = _cluster(cluster_size, icc, cluster_cv)
    if alternative == "two-sided":
        shift = np.abs(pt - pc)
    elif alternative == "larger":
        shift = pt - pc + mg_abs
    else:
        shift = pc - pt + mg_abs
    v0, v1 = _prop_variances(pc, pt, k, mg_abs, g)
    z = special.ndtri(1.0 - alpha_c / tails)
    p = _prop_power(n1, shift, v0, v1, de, z, tails, strict)
    eff = pt - pc
    return PowerResult(
        power=_out(p), mde=_out(eff), relative_mde=_out(eff / pc), n_control=_out(n1), n_treatment=_out(n1 * k),
        alpha=_out(alpha), alpha_per_comparison=_out(alpha_c), alternative=alternative, ratio=_out(k),
        arms=int(arms), margin=_out(mg_abs), baseline=_out(pc), sd=np.nan, variance_reduction=0.0,
        design_effect=_out(de), method=_prop_method(strict, tails, mg_abs, clustered, arms, correction, ratio_test),
    )


def mde_proportion(p_control, n_control, alpha=0.05, power=0.8, ratio=1.0, alternative="two-sided", *,
                   direction=None, strict=True, margin=0.0, relative_margin=False, arms=2, correction="bonferroni",
                   cluster_size=None, icc=0.0, cluster_cv=0.0, unreachable="raise") -> MDEResult:
    """Smallest change of a proportion detectable with probability ``power``.

    Solves the power equation of :func:`power_proportion` for
    ``p_treatment`` (R's ``power.prop.test(n, p1, power)`` solves ``p2`` the
    same way). ``direction`` is ``"increase"`` or ``"decrease"``; by default
    it follows ``alternative`` (``"two-sided"``: increase; the two
    directions differ because the variance depends on p). When no
    ``p_treatment`` in [0, 1] reaches the power, ``unreachable="raise"``
    raises :class:`AbkitError`; ``"nan"`` returns NaN there (for grids).

    ``margin`` is absolute (probability units; the difference test
    ``p_t - p_c`` against ``-/+ margin``, Blackwelder 1982) unless
    ``relative_margin=True``: then it is a fraction ``m`` of ``p_control``
    and the test is the ratio test the readout applies to a guardrail (the
    Fieller 1954 bound of ``r = p_t / p_c - 1`` within ``-/+ m``, i.e. the
    z-test of ``p_t - (1 + s m) p_c`` with ``s = +1`` for ``"smaller"``,
    ``-1`` for ``"larger"``), variance ``(1 + s m)^2 p_c q_c / n_c + p_t
    q_t / n_t`` under both hypotheses. Results report the absolute margin.
    With a margin the result is the smallest true change (in the
    alternative's direction; it may be a degradation smaller than the
    margin) at which non-inferiority is shown with the target power.
    """
    tails = _check_alternative(alternative)
    alpha_c = comparison_alpha(alpha, arms, correction)
    pw = _check_power(power, alpha_c)
    pc = _check_p(p_control, "p_control", closed=False)
    n1 = _check_n(n_control)
    k = _check_ratio(ratio)
    mg_abs, g_c, ratio_test = _prop_margin(margin, pc, tails, alternative, relative_margin)
    m, de, clustered = _cluster(cluster_size, icc, cluster_cv)
    natural = {"two-sided": "increase", "larger": "increase", "smaller": "decrease"}[alternative]
    direction = natural if direction is None else direction
    if direction not in ("increase", "decrease"):
        raise AbkitError(f"direction={direction!r} must be 'increase' or 'decrease'")
    if tails == 1 and direction != natural:
        raise AbkitError(f"direction={direction!r} contradicts alternative={alternative!r}; "
                         f"alternative='larger' looks for an increase, 'smaller' for a decrease")
    if unreachable not in ("raise", "nan"):
        raise AbkitError(f"unreachable={unreachable!r} must be 'raise' or 'nan'")
    sign = 1.0 if direction == "increase" else -1.0
    z = special.ndtri(1.0 - alpha_c / tails)
    arrs = np.broadcast_arrays(pc, n1, k, mg_abs, de, z, pw, g_c)
    shape = arrs[0].shape
    pc_, n1_, k_, mg_, de_, z_, pw_, g_ = (np.asarray(a, dtype=np.float64).ravel() for a in arrs)

    # t = the change in the chosen direction; power increases with t on (-margin, t_max].
    def power_at(t, i):
        pt = pc_[i] + sign * t
        v0, v1 = _prop_variances(pc_[i], pt, k_[i], mg_[i], g_[i])
        return _prop_power(n1_[i], t + mg_[i], v0, v1, de_[i], z_[i], tails, strict)

    def f(t, i):
        return power_at(t, i) - pw_[i]

    idx = np.arange(pc_.size)
    t_max = np.where(sign > 0, 1.0 - pc_, pc_)
    f_hi = f(t_max, idx)
    reach = f_hi >= 0
    if not np.all(reach) and unreachable == "raise":
        j = int(np.flatnonzero(~reach)[0])
        raise AbkitError(
            f"no p_treatment in [0, 1] reaches power {_fmt(pw_[j])} with n_control={_fmt(n1_[j])} and "
            f"p_control={_fmt(pc_[j])} (at p_treatment={_fmt(pc_[j] + sign * t_max[j])} the power is "
            f"{_fmt(power_at(t_max[j:j + 1], np.array([j]))[0])}); increase n_control or lower power")
    # just above the null boundary (t = -margin) the power is <= alpha < target
    lo = -mg_ + 1e-12 * np.maximum(1.0, mg_)
    f_lo = f(lo, idx)
    t = np.full(pc_.size, np.nan)
    ok = np.flatnonzero(reach)
    if ok.size:
        def g(x, i):
            return f(x, ok[i])
        t[ok] = _find_root(g, lo[ok], t_max[ok], f_lo[ok], f_hi[ok])
    t = t.reshape(shape)
    eff = sign * t
    pt = pc + eff
    note = "" if np.all(reach) else "NaN where no p_treatment in [0, 1] reaches the power"
    return MDEResult(
        mde=_out(eff), relative_mde=_out(eff / pc), treatment_value=_out(pt), power=_out(pw),
        n_control=_out(n1), n_treatment=_out(n1 * k), alpha=_out(alpha), alpha_per_comparison=_out(alpha_c),
        alternative=alternative, ratio=_out(k), arms=int(arms), margin=_out(mg_abs), baseline=_out(pc), sd=np.nan,
        variance_reduction=0.0, design_effect=_out(de),
        method=_prop_method(strict, tails, mg_abs, clustered, arms, correction, ratio_test), note=note,
    )


# =========================================================================
# panels / difference-in-differences
# =========================================================================
@dataclass(frozen=True, repr=False, eq=False)
class PanelVariance:
    """Per-unit variance of each estimator's contrast (``Var(tau_hat) = v (1/n_c + 1/n_t)``).

    ``did`` is Burlig, Preonas and Woerman's (2020) formula, ``post`` and
    ``ancova`` McKenzie's (2012); ``psi_pre``, ``psi_post`` and ``psi_cross``
    are BPW's average covariances between distinct pre periods, distinct post
    periods and pre-post pairs, ``sigma2`` the average variance.
    """

    pre_periods: int
    post_periods: int
    post: float
    did: float
    ancova: float
    sigma2: float
    psi_pre: float
    psi_post: float
    psi_cross: float
    covariance: np.ndarray

    def __repr__(self) -> str:
        return (f"PanelVariance(pre_periods={self.pre_periods}, post_periods={self.post_periods}: "
                f"post={self.post:.4g}, did={self.did:.4g}, ancova={self.ancova:.4g}; sigma2={self.sigma2:.4g}, "
                f"psi_pre={self.psi_pre:.4g}, psi_post={self.psi_post:.4g}, psi_cross={self.psi_cross:.4g})")

    def of(self, estimator: str) -> float:
        if estimator not in ("did", "ancova", "post"):
            raise AbkitError(f"estimator={estimator!r} must be 'did', 'ancova' or 'post'")
        return getattr(self, estimator)


def _periods(pre_periods, post_periods) -> tuple[int, int]:
    for name, v, least in (("pre_periods", pre_periods, 0), ("post_periods", post_periods, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
            raise AbkitError(f"{name}={v!r} must be an integer >= {least}")
    return int(pre_periods), int(post_periods)


def panel_covariance(pre_periods: int, post_periods: int, sd=1.0, rho=0.0, ar1=0.0) -> np.ndarray:
    """Covariance of one unit's outcomes over ``pre + post`` periods (pre first).

    ``Sigma_ts = sd^2 (rho + (1 - rho) ar1^|t - s|)``: a persistent unit
    component (share ``rho`` of the variance) plus stationary AR(1) noise
    (autocorrelation ``ar1``). ``ar1 = 0`` is McKenzie's equicorrelated case
    (constant correlation ``rho`` between any two periods).
    """
    m, r = _periods(pre_periods, post_periods)
    s = float(_positive(sd, "sd"))
    rho_ = float(_arr(rho, "rho"))
    if not 0.0 <= rho_ <= 1.0:
        raise AbkitError(f"rho={rho_!r} must be in [0, 1] (share of variance from the persistent unit effect)")
    phi = float(_arr(ar1, "ar1"))
    if not -1.0 < phi < 1.0:
        raise AbkitError(f"ar1={phi!r} must be in (-1, 1) (AR(1) autocorrelation of the noise)")
    t = np.arange(m + r)
    lag = np.abs(t[:, None] - t[None, :])
    return s * s * (rho_ + (1.0 - rho_) * np.power(phi, lag))


def panel_variance(pre_periods: int, post_periods: int, sd=1.0, rho=0.0, ar1=0.0,
                   covariance=None) -> PanelVariance:
    """Per-unit contrast variances of POST, DiD and ANCOVA (see the module docstring).

    Give ``covariance`` (``(pre + post)`` square, pre periods first), or
    ``sd``, ``rho`` and ``ar1`` for :func:`panel_covariance`.
    """
    m, r = _periods(pre_periods, post_periods)
    if covariance is None:
        S = panel_covariance(m, r, sd, rho, ar1)
    else:
        S = _arr(covariance, "covariance")
        if S.shape != (m + r, m + r):
            raise AbkitError(f"covariance has shape {S.shape}; it must be ({m + r}, {m + r}) for "
                             f"{m} pre and {r} post periods (pre periods first)")
        if not np.allclose(S, S.T, rtol=1e-10, atol=1e-12 * np.abs(S).max()):
            raise AbkitError("covariance must be symmetric")
        if np.linalg.eigvalsh(S).min() < -1e-10 * np.abs(S).max():
            raise AbkitError("covariance must be positive semi-definite")
    w_post = np.r_[np.zeros(m), np.full(r, 1.0 / r)]
    v_post = float(w_post @ S @ w_post)
    if m == 0:
        v_did = v_anc = np.nan
        psi_b = psi_x = np.nan
    else:
        w_pre = np.r_[np.full(m, 1.0 / m), np.zeros(r)]
        v_pre = float(w_pre @ S @ w_pre)
        c = float(w_post @ S @ w_pre)
        a = w_post - w_pre
        v_did = float(a @ S @ a)
        v_anc = v_post - (c * c / v_pre if v_pre > 0 else 0.0)
        pre = S[:m, :m]
        psi_b = float((pre.sum() - np.trace(pre)) / (m * (m - 1))) if m > 1 else 0.0
        psi_x = float(S[:m, m:].mean())
    post = S[m:, m:]
    psi_a = float((post.sum() - np.trace(post)) / (r * (r - 1))) if r > 1 else 0.0
    return PanelVariance(m, r, v_post, v_did, float(v_anc), float(np.trace(S) / (m + r)), psi_b, psi_a, psi_x, S)


def _panel(sd, pre_periods, post_periods, rho, ar1, covariance, estimator, treated_share):
    pv = panel_variance(pre_periods, post_periods, sd, rho, ar1, covariance)
    v = pv.of(estimator)
    if not np.isfinite(v):
        raise AbkitError(f"estimator={estimator!r} needs pre_periods >= 1")
    P = _arr(treated_share, "treated_share")
    _require((P > 0) & (P < 1), "treated_share", P, "must be in (0, 1) (share of units treated)")
    return np.sqrt(v), P / (1.0 - P), pv


def _panel_method(estimator: str, pv: PanelVariance) -> str:
    label = {"did": "difference-in-differences (Burlig, Preonas & Woerman 2020)",
             "ancova": "ANCOVA on the pre-period mean (McKenzie 2012)",
             "post": "post-period means only (McKenzie 2012)"}[estimator]
    return (f"panel, {pv.pre_periods} pre / {pv.post_periods} post periods, {label}; two-sample t-test on "
            "per-unit contrasts, df = units - 2")


def _panel_rename(res, estimator, pv):
    from dataclasses import replace

    return replace(res, method=_panel_method(estimator, pv))


def _panel_absolute(mde, margin, baseline, relative: bool, alternative: str):
    """``(mde, margin)`` in the outcome's units: a panel keeps the difference test for a relative margin
    (``m x |baseline|``; the DiD readout has no Fieller ratio rule), so the mean functions get absolute ones."""
    if not relative:
        return mde, margin
    mg = _check_margin(margin, _check_alternative(alternative))
    eff, mg_abs, _ = _scale(_arr(mde, "mde"), mg, baseline, True)
    return eff, mg_abs


def sample_size_panel(sd, mde, pre_periods, post_periods, alpha=0.05, power=0.8, alternative="two-sided", *,
                      rho=0.0, ar1=0.0, covariance=None, estimator="did", treated_share=0.5, baseline=None,
                      relative=False, margin=0.0) -> SampleSizeResult:
    """Units (markets) needed for a panel experiment with serially correlated outcomes.

    ``n_control`` untreated and ``n_treatment`` treated units; the per-unit
    contrast variance comes from :func:`panel_variance` (``sd``/``rho``/``ar1``
    or ``covariance``) and the power from the t-test on the contrasts. A
    margin (relative ones as ``margin x |baseline|``) is the difference test.
    """
    sd_c, k, pv = _panel(sd, pre_periods, post_periods, rho, ar1, covariance, estimator, treated_share)
    mde, margin = _panel_absolute(mde, margin, baseline, relative, alternative)
    res = sample_size_mean(sd_c, mde, alpha, power, k, alternative, baseline=baseline, margin=margin)
    return _panel_rename(res, estimator, pv)


def power_panel(sd, mde, n_units, pre_periods, post_periods, alpha=0.05, alternative="two-sided", *, rho=0.0,
                ar1=0.0, covariance=None, estimator="did", treated_share=0.5, baseline=None, relative=False,
                margin=0.0) -> PowerResult:
    """Power of a panel design with ``n_units`` units, a share ``treated_share`` treated."""
    sd_c, k, pv = _panel(sd, pre_periods, post_periods, rho, ar1, covariance, estimator, treated_share)
    J = _positive(n_units, "n_units")
    mde, margin = _panel_absolute(mde, margin, baseline, relative, alternative)
    res = power_mean(sd_c, mde, J / (1.0 + k), alpha, k, alternative, baseline=baseline, margin=margin)
    return _panel_rename(res, estimator, pv)


def mde_panel(sd, n_units, pre_periods, post_periods, alpha=0.05, power=0.8, alternative="two-sided", *,
              rho=0.0, ar1=0.0, covariance=None, estimator="did", treated_share=0.5, baseline=None,
              margin=0.0) -> MDEResult:
    """Minimum detectable effect of a panel design with ``n_units`` units."""
    sd_c, k, pv = _panel(sd, pre_periods, post_periods, rho, ar1, covariance, estimator, treated_share)
    J = _positive(n_units, "n_units")
    res = mde_mean(sd_c, J / (1.0 + k), alpha, power, k, alternative, baseline=baseline, margin=margin)
    return _panel_rename(res, estimator, pv)


# =========================================================================
# duration
# =========================================================================
def _traffic(daily_units, population, traffic_share):
    V = _positive(daily_units, "daily_units", " (eligible units a day)")
    s = _arr(traffic_share, "traffic_share")
    _require((s > 0) & (s <= 1), "traffic_share", s, "must be in (0, 1] (share of eligible traffic in the test)")
    if population is None:
        return V, None, s
    N = _positive(population, "population", " (eligible buyers who may visit)")
    _require(N >= V, "population", N, "must be >= daily_units (each buyer visits at most once a day)")
    return V, N, s


def uniques_after(days, daily_units, population=None, traffic_share=1.0):
    """Unique units enrolled after ``days`` days.

    ``s N (1 - (1 - V/N)^d)`` when each of ``population`` = N buyers visits
    independently with daily probability ``V / N`` (``V`` = ``daily_units``);
    ``s V d`` without a population (every visitor new). ``s`` = ``traffic_share``.
    """
    d = _arr(days, "days")
    _require(d >= 0, "days", d, "must be >= 0")
    V, N, s = _traffic(daily_units, population, traffic_share)
    if N is None:
        return _out(s * V * d)
    q = V / N
    safe_q = np.where(q < 1, q, 0.5)          # q = 1: everybody visits every day
    share = np.where(q < 1, -np.expm1(d * np.log1p(-safe_q)), (d > 0).astype(np.float64))
    return _out(s * N * share)


def days_needed(n_units, daily_units=None, *, population=None, uniques_by_day=None, traffic_share=1.0):
    """Days until ``n_units`` unique units (all arms together) are enrolled (integer, rounded up).

    Either ``daily_units`` (eligible visitors a day) with an optional
    ``population`` for repeat visitors (see :func:`uniques_after`), or an
    explicit cumulative curve ``uniques_by_day`` (element ``d - 1`` = unique
    eligible units after ``d`` days).
    """
    n = _positive(n_units, "n_units")
    if uniques_by_day is not None:
        if daily_units is not None or population is not None:
            raise AbkitError("give either uniques_by_day or daily_units (with population), not both")
        u = _arr(uniques_by_day, "uniques_by_day")
        if u.ndim != 1 or u.size == 0:
            raise AbkitError("uniques_by_day must be a 1-d curve: unique eligible units after day 1, 2, ...")
        if np.any(np.diff(u) < 0):
            raise AbkitError("uniques_by_day must be cumulative (non-decreasing)")
        s = float(_arr(traffic_share, "traffic_share")) if np.ndim(traffic_share) == 0 else None
        if s is None or not 0 < s <= 1:
            raise AbkitError(f"traffic_share={traffic_share!r} must be a number in (0, 1] with uniques_by_day")
        enrolled = s * u
        _require(n <= enrolled[-1], "n_units", n, f"is more than the curve ever reaches ({_fmt(enrolled[-1])} "
                 f"units in the experiment after {u.size} days); extend uniques_by_day or raise traffic_share")
        return _int_out(np.searchsorted(enrolled, n * (1.0 - 1e-12), side="left") + 1)
    if daily_units is None:
        raise AbkitError("days_needed needs daily_units= (eligible units a day) or uniques_by_day=")
    V, N, s = _traffic(daily_units, population, traffic_share)
    if N is None:
        return _int_out(_ceil(n / (s * V)))
    _require(n < s * N, "n_units", n, "is not below the number of eligible buyers in the experiment "
             "(traffic_share x population); the test can never enroll that many: raise traffic_share or "
             "lower the sample size")
    q = V / N
    with np.errstate(divide="ignore"):
        d = np.where(q < 1, np.log1p(-n / (s * N)) / np.log1p(-np.minimum(q, 1 - 1e-16)), 1.0)
    return _int_out(np.maximum(_ceil(d), 1))


def fit_population(daily_units, uniques, days):
    """The population ``N`` that makes ``uniques_after(days, daily_units, N) = uniques``.

    E.g. 10,000 visitors a day and 52,000 unique buyers in a week: the
    repeat-visit model of :func:`uniques_after` with N = fit_population(10_000,
    52_000, 7). Needs ``uniques < daily_units x days`` (some repeat visits).
    """
    V = float(_positive(daily_units, "daily_units"))
    U = float(_positive(uniques, "uniques"))
    d = float(_positive(days, "days"))
    if U >= V * d:
        raise AbkitError(f"uniques={U:g} must be below daily_units x days = {V * d:g} for a finite population "
                         "(without repeat visits use population=None)")
    if U < V:
        raise AbkitError(f"uniques={U:g} must be at least daily_units={V:g} (the first day's visitors)")
    from scipy.optimize import brentq

    def g(N):
        return N * -math.expm1(d * math.log1p(-V / N)) - U

    hi = 2.0 * max(U, V)
    while g(hi) < 0:
        hi *= 2.0
    return float(brentq(g, max(U, V) * (1 + 1e-12), hi, xtol=1e-9, rtol=1e-14))


# =========================================================================
# Monte Carlo error of a simulated power
# =========================================================================
def monte_carlo_ci(rejections, n_sims, level: float = 0.95):
    """Exact Clopper-Pearson interval for a rejection rate ``rejections / n_sims``.

    Returns ``(lower, upper)`` (floats, or arrays for array input). ``level``
    is the coverage (default 0.95); the interval is conservative: its
    coverage is at least ``level`` for every true power (Clopper and Pearson
    1934, "The use of confidence or fiducial limits illustrated in the case
    of the binomial", Biometrika 26).

    >>> monte_carlo_ci(800, 1000)  # doctest: +ELLIPSIS
    (0.77..., 0.82...)
    """
    k = _arr(rejections, "rejections")
    n = _arr(n_sims, "n_sims")
    _require(n >= 1, "n_sims", n, "must be >= 1 (simulated tests)")
    _require((k >= 0) & (k <= n) & (k == np.round(k)), "rejections", k,
             "must be a whole number between 0 and n_sims")
    lv = float(_arr(level, "level"))
    if not 0.0 < lv < 1.0:
        raise AbkitError(f"level={lv!r} must be in (0, 1), e.g. 0.95")
    a = 1.0 - lv
    with np.errstate(invalid="ignore"):
        lo = np.where(k > 0, stats.beta.ppf(a / 2.0, np.maximum(k, 1e-300), n - k + 1.0), 0.0)
        hi = np.where(k < n, stats.beta.ppf(1.0 - a / 2.0, k + 1.0, np.maximum(n - k, 1e-300)), 1.0)
    return _out(lo), _out(hi)
