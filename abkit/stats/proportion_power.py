"""Power of the two-proportion z-test: sample size, power and MDE of a proportion.

Notation as in :mod:`abkit.stats.t_test_power` (``n_c``, ``k``, ``alpha'``).

Proportions
===========

**The test the readout runs (default, ``pooled=False``).** abkit analyses a
proportion as the mean of a 0/1 outcome (:func:`abkit.stats.two_sample.compare`):
the effect ``p_t - p_c`` over its *unpooled* standard error
``sqrt(p_c q_c / n_c + p_t q_t / n_t)`` (``q = 1 - p``; Welch's t, the
normal in large samples). Its power uses that variance under both
hypotheses:

    V0 = V1 = p_c q_c + p_t q_t / k   (variance x n_c)
    power = Phi( sqrt(n_c) |delta| / sqrt(V1) - z_{1-alpha'/s} )  [+ other tail if strict]
    n_c = (z_{1-alpha'/s} + z_{power})^2 V1 / delta^2      (one tail)

(``s`` = 1 or 2 tails, ``delta = p_t - p_c``). This is the unpooled
("Wald") z-test of Fleiss, Levin and Paik (2003, *Statistical Methods for
Rates and Proportions*, 3rd ed., ch. 4) and what statsmodels'
``NormalIndPower`` gives with the effect size ``delta sqrt((1 + 1/k) / V1)``.

**R's ``power.prop.test`` (``pooled=True``).** The z-test with the pooled
variance under H0 and no continuity correction (``prop.test(correct =
FALSE)``); with ``k = 1`` it is R's ``power.prop.test`` (R Core Team,
``stats``):

    power = Phi( (sqrt(n) |p_t - p_c| - z_{1-alpha'/s} sqrt(2 pbar qbar))
                 / sqrt(p_c q_c + p_t q_t) )  [+ other tail if strict]

(``pbar = (p_c + p_t)/2``). For unequal allocation the natural
generalization (Fleiss, Levin and Paik 2003, ch. 4):

    pbar = (p_c + k p_t) / (1 + k)
    V0 = pbar qbar (1 + 1/k)          (variance x n_c under H0, pooled)
    V1 = p_c q_c + p_t q_t / k        (variance x n_c under H1)
    power = Phi( (sqrt(n_c) delta - z sqrt(V0)) / sqrt(V1) )
    n_c = (z_{1-alpha'/s} sqrt(V0) + z_{power} sqrt(V1))^2 / delta^2      (one tail)

The two agree with equal arms and nearby proportions; with unequal
allocation they differ (``k = 4``, ``p_c = 0.10``, ``p_t = 0.15``: the
pooled ``V0`` is 1.23 times ``V1``), and a plan should size the test the
readout will run.

``strict=True`` (the default here, like the t-test and R's
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
"""

from __future__ import annotations

import numpy as np
from scipy import special

from ..errors import AbkitError
from .design_effects import _cluster, comparison_alpha
from .power_inputs import (
    _arr,
    _check_alternative,
    _check_margin,
    _check_n,
    _check_power,
    _check_ratio,
    _fmt,
    _out,
    _require,
)
from .power_results import MDEResult, PowerResult, SampleSizeResult, _sample_size_result
from .root_finding import find_root
from .t_test_power import _contrast, _oriented


def _check_p(p, name: str, closed: bool) -> np.ndarray:
    a = _arr(p, name)
    if closed:
        _require((a >= 0) & (a <= 1), name, a, "must be a probability in [0, 1]")
    else:
        _require((a > 0) & (a < 1), name, a, "must be a probability strictly between 0 and 1")
    return a


def _prop_variances(pc, pt, k, margin, g=1.0, pooled=False):
    """(V0, V1) = n_control x variance of the contrast ``p_t - g p_c`` under H0 and H1: unpooled under both
    (the readout's test), or pooled under H0 with ``pooled`` (R's power.prop.test; never with a margin);
    ``g = 1`` (the difference) unless a relative margin makes it the ratio test."""
    v1 = g * g * pc * (1.0 - pc) + pt * (1.0 - pt) / k
    if not pooled:
        return v1, v1
    pbar = (pc + k * pt) / (1.0 + k)
    v0 = np.where(margin > 0, v1, pbar * (1.0 - pbar) * (1.0 + 1.0 / k))
    return v0, v1


def _check_pooled(pooled, margin) -> bool:
    if not isinstance(pooled, (bool, np.bool_)):
        raise AbkitError(
            f"pooled={pooled!r} must be False (the unpooled z-test abkit.analyze runs, default) or "
            "True (the pooled variance under H0 of R's power.prop.test)"
        )
    if pooled and np.any(np.asarray(margin) > 0):
        raise AbkitError(
            "pooled=True is R's power.prop.test, a test of equal proportions; a non-inferiority "
            "margin is tested with unpooled variances (leave pooled=False)"
        )
    return bool(pooled)


def _prop_power(n1, shift, v0, v1, de, z, tails, strict):
    s = np.sqrt(n1 / de)
    sd0, sd1 = np.sqrt(v0), np.sqrt(v1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = special.ndtr((s * shift - z * sd0) / sd1)
        if strict and tails == 2:
            p = p + special.ndtr(-(s * shift + z * sd0) / sd1)
    return p


def _prop_method(
    strict: bool, tails: int, margin, clustered, arms, correction, ratio_test: str = "", pooled: bool = False
) -> str:
    if ratio_test:
        base = "two-proportion z-test, unpooled variance, " + ratio_test
    elif np.any(np.asarray(margin) > 0):
        base = "two-proportion z-test, unpooled variance (non-inferiority, Blackwelder 1982)"
    elif pooled:
        base = "two-proportion z-test, pooled variance, no continuity correction (R power.prop.test"
        base += ", strict=TRUE)" if strict and tails == 2 else ")"
    else:
        base = "two-proportion z-test, unpooled variance (the test abkit.analyze runs)"
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
        raise AbkitError(
            f"relative_margin={relative_margin!r} must be True (margin a fraction of p_control: "
            "the ratio test) or False (margin in probability units: the difference test)"
        )
    mg = _check_margin(margin, tails)
    g, label = _contrast(mg, alternative, bool(relative_margin))
    return (mg * pc if relative_margin else mg), g, label


def sample_size_proportion(
    p_control,
    p_treatment,
    alpha=0.05,
    power=0.8,
    ratio=1.0,
    alternative="two-sided",
    *,
    strict=True,
    pooled=False,
    margin=0.0,
    relative_margin=False,
    arms=2,
    correction="bonferroni",
    cluster_size=None,
    icc=0.0,
    cluster_cv=0.0,
) -> SampleSizeResult:
    """Units per arm to detect ``p_control -> p_treatment`` with the two-proportion z-test.

    By default the z-test with unpooled variances, the test
    :func:`abkit.analyze` runs on a proportion (module docstring).
    ``pooled=True`` pools the variance under H0: R's
    ``power.prop.test(p1=p_control, p2=p_treatment, power=power,
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
    >>> round(sample_size_proportion(0.5, 0.75, power=0.9, pooled=True).n_control, 4)  # R documents n = 76.7
    76.7069
    >>> round(sample_size_proportion(0.5, 0.75, power=0.9).n_control, 4)  # the unpooled test abkit runs
    73.5519
    """
    tails = _check_alternative(alternative)
    alpha_c = comparison_alpha(alpha, arms, correction)
    pw = _check_power(power, alpha_c)
    pc = _check_p(p_control, "p_control", closed=False)
    pt = _check_p(p_treatment, "p_treatment", closed=True)
    k = _check_ratio(ratio)
    mg_abs, g, ratio_test = _prop_margin(margin, pc, tails, alternative, relative_margin)
    pooled = _check_pooled(pooled, mg_abs)
    shift = _prop_shift(pc, pt, mg_abs, alternative)
    m, de, clustered = _cluster(cluster_size, icc, cluster_cv)
    v0, v1 = _prop_variances(pc, pt, k, mg_abs, g, pooled)
    z = special.ndtri(1.0 - alpha_c / tails)
    zb = special.ndtri(pw)
    n1 = de * (z * np.sqrt(v0) + zb * np.sqrt(v1)) ** 2 / (shift * shift)
    if strict and tails == 2:
        n1 = _refine_strict(n1, shift, v0, v1, de, z, pw)
    return _sample_size_result(
        n1,
        k,
        pt - pc,
        pc,
        pw,
        alpha,
        alpha_c,
        alternative,
        arms,
        mg_abs,
        np.nan,
        np.float64(0.0),
        de,
        m if clustered else None,
        _prop_method(strict, tails, mg_abs, clustered, arms, correction, ratio_test, pooled),
    )


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
    return find_root(f, lo, hi, f_lo, f_hi).reshape(shape)


def power_proportion(
    p_control,
    p_treatment,
    n_control,
    alpha=0.05,
    ratio=1.0,
    alternative="two-sided",
    *,
    strict=True,
    pooled=False,
    margin=0.0,
    relative_margin=False,
    arms=2,
    correction="bonferroni",
    cluster_size=None,
    icc=0.0,
    cluster_cv=0.0,
) -> PowerResult:
    """Power of the two-proportion z-test: unpooled variances (the test :func:`abkit.analyze` runs), or with
    ``pooled=True`` R's ``power.prop.test(n=n_control, p1, p2)`` (for ratio 1).

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
    pooled = _check_pooled(pooled, mg_abs)
    m, de, clustered = _cluster(cluster_size, icc, cluster_cv)
    if alternative == "two-sided":
        shift = np.abs(pt - pc)
    elif alternative == "larger":
        shift = pt - pc + mg_abs
    else:
        shift = pc - pt + mg_abs
    v0, v1 = _prop_variances(pc, pt, k, mg_abs, g, pooled)
    z = special.ndtri(1.0 - alpha_c / tails)
    p = _prop_power(n1, shift, v0, v1, de, z, tails, strict)
    eff = pt - pc
    return PowerResult(
        power=_out(p),
        mde=_out(eff),
        relative_mde=_out(eff / pc),
        n_control=_out(n1),
        n_treatment=_out(n1 * k),
        alpha=_out(alpha),
        alpha_per_comparison=_out(alpha_c),
        alternative=alternative,
        ratio=_out(k),
        arms=int(arms),
        margin=_out(mg_abs),
        baseline=_out(pc),
        sd=np.nan,
        variance_reduction=0.0,
        design_effect=_out(de),
        method=_prop_method(strict, tails, mg_abs, clustered, arms, correction, ratio_test, pooled),
    )


def mde_proportion(
    p_control,
    n_control,
    alpha=0.05,
    power=0.8,
    ratio=1.0,
    alternative="two-sided",
    *,
    direction=None,
    strict=True,
    pooled=False,
    margin=0.0,
    relative_margin=False,
    arms=2,
    correction="bonferroni",
    cluster_size=None,
    icc=0.0,
    cluster_cv=0.0,
    unreachable="raise",
) -> MDEResult:
    """Smallest change of a proportion detectable with probability ``power``.

    Solves the power equation of :func:`power_proportion` (unpooled, or
    ``pooled=True``) for ``p_treatment`` (R's ``power.prop.test(n, p1,
    power)`` solves ``p2`` the same way, pooled). ``direction`` is ``"increase"`` or ``"decrease"``; by default
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
    pooled = _check_pooled(pooled, mg_abs)
    m, de, clustered = _cluster(cluster_size, icc, cluster_cv)
    natural = {"two-sided": "increase", "larger": "increase", "smaller": "decrease"}[alternative]
    direction = natural if direction is None else direction
    if direction not in ("increase", "decrease"):
        raise AbkitError(f"direction={direction!r} must be 'increase' or 'decrease'")
    if tails == 1 and direction != natural:
        raise AbkitError(
            f"direction={direction!r} contradicts alternative={alternative!r}; "
            f"alternative='larger' looks for an increase, 'smaller' for a decrease"
        )
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
        v0, v1 = _prop_variances(pc_[i], pt, k_[i], mg_[i], g_[i], pooled)
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
            f"{_fmt(power_at(t_max[j : j + 1], np.array([j]))[0])}); increase n_control or lower power"
        )
    # just above the null boundary (t = -margin) the power is <= alpha < target
    lo = -mg_ + 1e-12 * np.maximum(1.0, mg_)
    f_lo = f(lo, idx)
    t_flat = np.full(pc_.size, np.nan)
    ok = np.flatnonzero(reach)
    if ok.size:

        def g(x, i):
            return f(x, ok[i])

        t_flat[ok] = find_root(g, lo[ok], t_max[ok], f_lo[ok], f_hi[ok])
    t = t_flat.reshape(shape)
    eff = sign * t
    pt = pc + eff
    note = "" if np.all(reach) else "NaN where no p_treatment in [0, 1] reaches the power"
    return MDEResult(
        mde=_out(eff),
        relative_mde=_out(eff / pc),
        treatment_value=_out(pt),
        power=_out(pw),
        n_control=_out(n1),
        n_treatment=_out(n1 * k),
        alpha=_out(alpha),
        alpha_per_comparison=_out(alpha_c),
        alternative=alternative,
        ratio=_out(k),
        arms=int(arms),
        margin=_out(mg_abs),
        baseline=_out(pc),
        sd=np.nan,
        variance_reduction=0.0,
        design_effect=_out(de),
        method=_prop_method(strict, tails, mg_abs, clustered, arms, correction, ratio_test, pooled),
        note=note,
    )
