"""Power of the two-sample t-test: means, ratio metrics, CUPED, relative (ratio-test) margins.

Pure, vectorized functions (numpy float64 in, frozen result objects out; no
I/O). Every input may be a scalar or a numpy array; arrays broadcast against
each other and the result fields are arrays of the broadcast shape. A grid
of 10,000 scenarios is solved in one vectorized pass (no Python loop over
scenarios; see ``benchmarks/bench_power.py``).

Notation: ``n_c`` units in control, ``n_t = k n_c`` in each treatment arm
(``k`` = ``ratio``), ``sigma`` the unit-level standard deviation of the
outcome, ``delta`` the true effect (treatment minus control) and ``alpha'``
the per-comparison significance level (``alpha`` split over the
comparisons, see :mod:`abkit.stats.design_effects`; clusters there too).
The other closed forms: :mod:`abkit.stats.proportion_power`,
:mod:`abkit.stats.panel_power`, :mod:`abkit.stats.enrollment` (duration).

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
    :func:`abkit.stats.two_sample.fieller_relative`), and the (bounded) Fieller
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
"""

from __future__ import annotations

import numpy as np
from scipy import special

from ..errors import AbkitError
from .design_effects import _cluster, comparison_alpha
from .distributions import nct_sf, t_isf
from .power_inputs import (
    _arr,
    _check_alternative,
    _check_margin,
    _check_n,
    _check_power,
    _check_ratio,
    _check_vr,
    _out,
    _positive,
    _require,
)
from .power_results import MDEResult, PowerResult, SampleSizeResult, _relative, _sample_size_result
from .root_finding import expand_bracket_up, find_root


def t_power(noncentrality, df, alpha, tails: int = 2):
    """Power of a t-test: ``P(reject)`` for a noncentral t statistic.

    ``tails=1``: ``P(T > t_{1-alpha})`` (``noncentrality`` oriented towards
    the alternative, so >= 0 when the alternative is true); ``tails=2``: both
    tails at ``alpha / 2`` each. Survival functions only (the lower tail is
    ``P(T_{df,-lambda} > t)`` by symmetry), so no cancellation or NaN.
    """
    nc, df, alpha = (np.asarray(a, dtype=np.float64) for a in (noncentrality, df, alpha))
    crit = t_isf(alpha / tails, df)
    p = nct_sf(crit, df, nc)
    if tails == 2:
        p = p + nct_sf(crit, df, -nc)
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
    d, k, m, de, alpha_c, power, g = (
        np.asarray(a, dtype=np.float64) for a in np.broadcast_arrays(d, k, m, de, alpha_c, power, g)
    )
    shape = d.shape
    d, k, m, de, alpha_c, power, g = (a.ravel() for a in (d, k, m, de, alpha_c, power, g))
    v = g * g + 1.0 / k  # n_c x Var(contrast) / sd'^2 (1 + 1/k for the difference)

    def f(n1, i):
        nc, df = _nc_df(n1, d[i], k[i], m[i], de[i], g[i])
        return t_power(nc, df, alpha_c[i], tails) - power[i]

    za = special.ndtri(1 - alpha_c / tails)
    z = za + special.ndtri(power)
    n0 = de * z * z * v / (d * d)
    n_min = 2.0 * m * np.maximum(1.0, 1.0 / k)  # two units (clusters) per arm: df >= 2
    idx = np.arange(d.size)
    # The normal approximation n0 undershoots the t-test's n by about
    # z_alpha^2 (1 + 1/k) / 4 units (Guenther 1981): bracket tightly around it.
    # (_expand_up widens the bracket when a ratio contrast needs more.)
    lo = np.maximum(n_min, n0)
    f_lo = f(lo, idx)
    redo = np.flatnonzero(f_lo >= 0)
    lo[redo] = n_min[redo]
    f_lo[redo] = f(lo[redo], redo)
    n = n_min.copy()  # where even the minimum design is powerful enough
    todo = np.flatnonzero(f_lo < 0)
    if todo.size:

        def f_todo(x, i):
            return f(x, todo[i])

        hi = np.maximum(n0 + m * (0.5 * za * za * np.maximum(v, 1.0 + 1.0 / k) + 2.0), 1.5 * lo)[todo]
        lo_, f_lo_, hi, f_hi = expand_bracket_up(f_todo, lo[todo], f_lo[todo], hi, 2.0)
        n[todo] = find_root(f_todo, lo_, hi, f_lo_, f_hi)
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
    crit = t_isf(alpha_c / tails, df)
    guess = crit + special.ndtri(power) * np.sqrt(1.0 + crit * crit / (2.0 * df))
    lo = np.maximum(guess - 0.02 * (1.0 + 10.0 / df), 0.0)
    f_lo = f(lo, np.arange(df.size))
    low = np.flatnonzero(f_lo >= 0)
    lo[low] = 0.0  # power at nc = 0 is <= alpha < power
    f_lo[low] = f(lo[low], low)
    lo, f_lo, hi, f_hi = expand_bracket_up(f, lo, f_lo, np.maximum(guess + 0.02 * (1.0 + 10.0 / df), lo + 0.01), 1.5)
    return find_root(f, lo, hi, f_lo, f_hi).reshape(shape)


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
        _require(
            shift > 0,
            what,
            effect,
            "with alternative='larger' tests for an increase: pass a positive effect"
            + (" (or one above -margin)" if np.any(margin > 0) else "")
            + ", or alternative='smaller'",
        )
        return shift
    shift = margin - effect
    _require(
        shift > 0,
        what,
        effect,
        "with alternative='smaller' tests for a decrease: pass a negative effect"
        + (" (or one below +margin)" if np.any(margin > 0) else "")
        + ", or alternative='larger'",
    )
    return shift


def _scale(effect, margin, baseline, relative: bool, what: str = "mde"):
    """Absolute effect and margin; relative ones are fractions of ``baseline``."""
    if relative:
        if baseline is None:
            raise AbkitError(
                f"relative=True needs baseline= (the control mean) to turn the relative {what} into an absolute one"
            )
        b = _arr(baseline, "baseline")
        _require(b != 0, "baseline", b, "must not be 0 for a relative effect")
        return effect * b, margin * np.abs(b), b
    return effect, margin, (np.nan if baseline is None else _arr(baseline, "baseline"))


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


def sample_size_mean(
    sd,
    mde,
    alpha=0.05,
    power=0.8,
    ratio=1.0,
    alternative="two-sided",
    variance_reduction=0.0,
    *,
    baseline=None,
    relative=False,
    margin=0.0,
    arms=2,
    correction="bonferroni",
    cluster_size=None,
    icc=0.0,
    cluster_cv=0.0,
) -> SampleSizeResult:
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
    return _sample_size_result(
        n1,
        k,
        eff,
        base,
        pw,
        alpha,
        alpha_c,
        alternative,
        arms,
        mg_abs,
        s,
        vr,
        de,
        m if clustered else None,
        _t_method(clustered, arms, correction, ratio_test),
    )


def power_mean(
    sd,
    mde,
    n_control,
    alpha=0.05,
    ratio=1.0,
    alternative="two-sided",
    variance_reduction=0.0,
    *,
    baseline=None,
    relative=False,
    margin=0.0,
    arms=2,
    correction="bonferroni",
    cluster_size=None,
    icc=0.0,
    cluster_cv=0.0,
) -> PowerResult:
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
    _require(
        df > 0,
        "n_control",
        n1,
        "is too small: the t-test needs n_control + n_treatment > 2 (units, or clusters for a cluster design)",
    )
    nc, _ = _nc_df(n1, shift / sd_adj, k, m, de, g)
    p = t_power(nc, df, alpha_c, tails)
    return PowerResult(
        power=_out(p),
        mde=_out(eff),
        relative_mde=_out(_relative(eff, base)),
        n_control=_out(n1),
        n_treatment=_out(n2),
        alpha=_out(alpha),
        alpha_per_comparison=_out(alpha_c),
        alternative=alternative,
        ratio=_out(k),
        arms=int(arms),
        margin=_out(mg_abs),
        baseline=_out(base),
        sd=_out(s),
        variance_reduction=_out(vr),
        design_effect=_out(de),
        method=_t_method(clustered, arms, correction, ratio_test),
    )


def mde_mean(
    sd,
    n_control,
    alpha=0.05,
    power=0.8,
    ratio=1.0,
    alternative="two-sided",
    variance_reduction=0.0,
    *,
    baseline=None,
    margin=0.0,
    relative_margin=False,
    arms=2,
    correction="bonferroni",
    cluster_size=None,
    icc=0.0,
    cluster_cv=0.0,
) -> MDEResult:
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
    _require(
        df > 0,
        "n_control",
        n1,
        "is too small: the t-test needs n_control + n_treatment > 2 (units, or clusters for a cluster design)",
    )
    nc = _solve_nc_t(df, alpha_c, pw, tails)
    shift = nc * sd_adj * np.sqrt(de * (1.0 / n2 + g * g / n1))
    eff = mg_abs - shift if alternative == "smaller" else shift - mg_abs
    return MDEResult(
        mde=_out(eff),
        relative_mde=_out(_relative(eff, base)),
        treatment_value=_out(base + eff),
        power=_out(pw),
        n_control=_out(n1),
        n_treatment=_out(n2),
        alpha=_out(alpha),
        alpha_per_comparison=_out(alpha_c),
        alternative=alternative,
        ratio=_out(k),
        arms=int(arms),
        margin=_out(mg_abs),
        baseline=_out(base),
        sd=_out(s),
        variance_reduction=_out(vr),
        design_effect=_out(de),
        method=_t_method(clustered, arms, correction, ratio_test),
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
    _require(
        v > 0,
        "covariance",
        cxy,
        "gives a delta-method variance <= 0 for the ratio; the variances and covariance must come "
        "from the same units (|covariance| <= sqrt(numerator_var * denominator_var))",
    )
    return _out(r), _out(v)


def _ratio_sd(numerator_mean, denominator_mean, numerator_var, denominator_var, covariance):
    r, v = ratio_variance(numerator_mean, denominator_mean, numerator_var, denominator_var, covariance)
    return np.asarray(r), np.sqrt(np.asarray(v))


def sample_size_ratio(
    numerator_mean,
    denominator_mean,
    numerator_var,
    denominator_var,
    covariance,
    mde,
    alpha=0.05,
    power=0.8,
    ratio=1.0,
    alternative="two-sided",
    variance_reduction=0.0,
    *,
    relative=False,
    margin=0.0,
    arms=2,
    correction="bonferroni",
    cluster_size=None,
    icc=0.0,
    cluster_cv=0.0,
) -> SampleSizeResult:
    """Units per arm for a ratio metric (e.g. refunds / orders per buyer), by the delta method.

    The moments are per unit (buyer) in the control arm: means, variances and
    the covariance of the numerator and denominator columns. The unit sd is
    ``sqrt(ratio_variance(...))`` and the baseline the ratio ``R``; then as
    :func:`sample_size_mean` (``relative=True`` makes ``mde`` a fraction of ``R``).
    """
    r, sd = _ratio_sd(numerator_mean, denominator_mean, numerator_var, denominator_var, covariance)
    res = sample_size_mean(
        sd,
        mde,
        alpha,
        power,
        ratio,
        alternative,
        variance_reduction,
        baseline=r,
        relative=relative,
        margin=margin,
        arms=arms,
        correction=correction,
        cluster_size=cluster_size,
        icc=icc,
        cluster_cv=cluster_cv,
    )
    return _renamed(res, "ratio metric (delta method): ")


def power_ratio(
    numerator_mean,
    denominator_mean,
    numerator_var,
    denominator_var,
    covariance,
    mde,
    n_control,
    alpha=0.05,
    ratio=1.0,
    alternative="two-sided",
    variance_reduction=0.0,
    *,
    relative=False,
    margin=0.0,
    arms=2,
    correction="bonferroni",
    cluster_size=None,
    icc=0.0,
    cluster_cv=0.0,
) -> PowerResult:
    """Power for a ratio metric at the true effect ``mde`` (see :func:`sample_size_ratio`)."""
    r, sd = _ratio_sd(numerator_mean, denominator_mean, numerator_var, denominator_var, covariance)
    res = power_mean(
        sd,
        mde,
        n_control,
        alpha,
        ratio,
        alternative,
        variance_reduction,
        baseline=r,
        relative=relative,
        margin=margin,
        arms=arms,
        correction=correction,
        cluster_size=cluster_size,
        icc=icc,
        cluster_cv=cluster_cv,
    )
    return _renamed(res, "ratio metric (delta method): ")


def mde_ratio(
    numerator_mean,
    denominator_mean,
    numerator_var,
    denominator_var,
    covariance,
    n_control,
    alpha=0.05,
    power=0.8,
    ratio=1.0,
    alternative="two-sided",
    variance_reduction=0.0,
    *,
    margin=0.0,
    relative_margin=False,
    arms=2,
    correction="bonferroni",
    cluster_size=None,
    icc=0.0,
    cluster_cv=0.0,
) -> MDEResult:
    """Minimum detectable change of a ratio metric, absolute and relative to ``R``."""
    r, sd = _ratio_sd(numerator_mean, denominator_mean, numerator_var, denominator_var, covariance)
    res = mde_mean(
        sd,
        n_control,
        alpha,
        power,
        ratio,
        alternative,
        variance_reduction,
        baseline=r,
        margin=margin,
        relative_margin=relative_margin,
        arms=arms,
        correction=correction,
        cluster_size=cluster_size,
        icc=icc,
        cluster_cv=cluster_cv,
    )
    return _renamed(res, "ratio metric (delta method): ")


def _renamed(res, prefix: str):
    from dataclasses import replace

    return replace(res, method=prefix + res.method)
