"""Two-sample effects from moments: means, proportions, ratios, CUPED, Lin.

Every estimator here has the same shape. For the arm ``a`` the metric is a
vector of *statistics* ``s_a = (target, covariate_1, ..., covariate_p)``,
each a smooth function of per-unit column means (a mean, or a ratio of two
means). Their joint sampling covariance follows from the delta method on
the column covariance ``Sigma_a`` of the arm (Deng, Knoblich and Lu 2018,
"Applying the Delta Method in Metric Analytics: A Practical Guide with
Novel Ideas", KDD):

    V_a = J_a Sigma_a J_a^T / n_a,          J_a = d s / d (column means)

**Unadjusted.** effect = s_t[0] - s_c[0], Var = V_t[0,0] + V_c[0,0]
(unpooled / Welch variance; for a ratio this is the delta-method variance
of Deng et al. 2018).

**CUPED** (Deng, Xu, Kohavi and Walker 2013, "Improving the Sensitivity of
Online Controlled Experiments by Utilizing Pre-Experiment Data", WSDM):
one slope ``theta`` shared by the arms,

    theta = W_xx^{-1} W_xy,   W = sum_a (n_a - 1) n_a V_a   (pooled within-arm
                                                         unit-level co-moments)
    adjusted_a = s_a[0] - theta^T (s_a[1:] - s_pool[1:])

For a Mean with a pre-period covariate this is exactly the treatment
coefficient of OLS ``y ~ treat + x`` (pooled within-arm slope).

**Regression adjustment** (Lin 2013, "Agnostic notes on regression
adjustments to experimental data", Ann. Appl. Stat. 7): one slope vector
per arm, ``theta_a = V_a,xx^{-1} V_a,xy``, equivalent to OLS
``y ~ treat * (x - xbar)``:

    adjusted_a = s_a[0] - theta_a^T (s_a[1:] - s_pool[1:])

**Variance.** Each adjusted value is linear in the arms' statistics
(``s_pool`` is the unit-weighted mean of the arms' covariate statistics),
so with the slopes treated as known an estimate has a gradient
``g_a = (lambda_a, gamma_a)`` with respect to each arm's statistics and

    Var = sum_a g_a^T V_a g_a

For CUPED with two arms this is ``Var(ybar_t - theta xbar_t) +
Var(ybar_c - theta xbar_c)``, the CUPED variance of Deng et al. For Lin it
also counts the sampling variance of the covariate centre ``s_pool``
(``(theta_t - theta_c)^T Var(xbar) (theta_t - theta_c)``): the variance of
the population average effect (Negi and Wooldridge 2021). The HC standard
error of the interacted OLS leaves that term out and is too small when the
slopes differ between arms (shown by simulation in the tests).

**Relative lift** ``r = (adj_t - adj_c) / |adj_c|``: ``adj_t / adj_c - 1``
when the control value is positive; when it is negative (an NPS below zero,
a net amount, a margin) the change as a share of the control value's *size*,
so ``r`` always has the sign of the absolute effect ("up" is positive). The
textbook ``t / c - 1`` flips sign with ``c``: an NPS going from -14.8 to -6.9
(up 7.9 points) would read as -53%. A relative change is only defined
against a positive reference (Tornqvist, Vartia and Vartia 1985, "How should
relative changes be measured?", Am. Stat. 39); dividing by the reference's
absolute value is the convention of financial reporting for a change from a
loss, and abkit says so wherever it shows such a lift ("% of |control|").
The estimate and its standard error ``rel_se`` are the delta method's, with
gradient ``s (g_t / adj_c - adj_t g_c / adj_c^2)``, ``s = sign(adj_c)`` (for
two unadjusted arms: ``Var(r) = Var_t / adj_c^2 + adj_t^2 Var_c / adj_c^4``,
unchanged by ``s``); ``rel_se`` feeds the Bayesian columns and the
days-to-detect estimates. The *confidence interval* is Fieller's (Fieller
1954, "Some problems in interval estimation", JRSS B 16; Hirschberg and Lye
2010, "A geometric comparison of the delta and Fieller confidence
intervals", Am. Stat. 64): with ``rho = adj_t / adj_c`` the set of ratios
that the t test of the linear contrast ``adj_t - rho adj_c = 0`` does not
reject,

    {rho : (adj_t - rho adj_c)^2 <= q^2 (A - 2 rho B + rho^2 C)},
    A = Var(adj_t) = sum_a g_t^T V_a g_t,  B = Cov(adj_t, adj_c) = sum_a g_t^T V_a g_c,
    C = Var(adj_c) = sum_a g_c^T V_a g_c,

with ``q`` the critical value of the absolute CI (the Welch t quantile
below), mapped to ``r = s (rho - 1)`` (for a negative control value the
interval is mirrored). abkit solves it in ``r`` directly, with ``d = adj_t -
adj_c``, ``V_d = Var(d)``, ``K = Cov(d, adj_c) = B - C``
(:func:`fieller_relative`):

    r^2 (adj_c^2 - q^2 C) - 2 s r (d adj_c - q^2 K) + (d^2 - q^2 V_d) <= 0.

It is a bounded interval exactly when ``adj_c^2 > q^2 C`` (the control
value is significantly different from zero, so its sign is known at that
level and mirroring is well defined). Otherwise the set is unbounded (two
rays, or the whole line) and abkit reports its convex hull ``(-inf, +inf)``,
shown as "n/a": no finite interval for the lift exists at that confidence
level, whatever the p-value of the effect says. **Near zero** means exactly
this: a control value not distinguishable from zero at the analysis' level.
The point estimate ``r`` is kept (its sign is right), but the readouts, the
verdicts and the guardrail rules then read the change in the metric's
absolute units, a relative guardrail margin cannot be checked, and the
Bayesian reading, which rests on a normal approximation of ``r`` that fails
there, is not given (:mod:`abkit.verdict`, :mod:`abkit.stats.bayes`). A
control value of exactly 0 has no relative lift (NaN). Why Fieller and not
``r +/- q rel_se``: (1) at ``r = 0`` the inequality *is* the
absolute test (``d^2 <= q^2 V_d``), so a bounded relative CI excludes 0
exactly when the absolute CI does, which the symmetric delta-method CI need
not (it can call a lift significant whose effect is not, and vice versa);
(2) it is asymmetric, following the skew of a ratio; (3) its coverage is
that of the test of a linear contrast (exact for normal estimates with known
variances; abkit uses the t quantile with the difference's Welch df, which
keeps (1) and costs under 0.2 points of coverage even at 8-10 units per arm),
while the delta-method CI under-covers when ``|adj_c| / SE(adj_c)`` is small
(an NPS of about 5 points with a standard error of 4: 91% for a 95% CI;
a mean 3 standard errors from zero with a lift of +100%: 92%; Fieller: 95%,
``tests/test_fieller.py``).
CUPED and Lin need nothing special: ``A, B, C`` come from the same
gradients, so the covariance the shared slope and covariate centre put
between the adjusted arm values is counted.

**Inference.** Each variance is a sum of per-arm pieces ``v_t + v_c``;
CIs and two-sided p-values use Student's t with Welch-Satterthwaite
degrees of freedom ``(v_t + v_c)^2 / (v_t^2/(n_t-1) + v_c^2/(n_c-1))``,
which is the Welch test for means and tends to the normal for large n.
P-values use the survival function, so tiny values do not underflow.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from ..errors import DataError
from ..metrics import Metric, Statistic
from ..moments import Moments

__all__ = ["Comparison", "compare", "fieller_relative", "linearize", "statistic_origins", "t_inference"]


@dataclass(frozen=True)
class Comparison:
    """One metric, one treatment arm against control."""

    control_value: float
    treatment_value: float
    effect: float
    se: float
    ci_lower: float
    ci_upper: float
    p_value: float
    df: float
    rel_effect: float
    rel_se: float
    rel_ci_lower: float
    rel_ci_upper: float
    n_control: float
    n_treatment: float
    variance_reduction: float
    theta: tuple[float, ...] = ()
    control_se: float = np.nan  # SE of control_value (Fieller: bounded iff |control| > q control_se)
    cov_effect_control: float = np.nan  # Cov(effect, control_value), for Fieller intervals at other levels


def linearize(
    moments: Moments, group: Hashable, statistics: Sequence[Statistic], relative: bool = False
) -> tuple[np.ndarray, np.ndarray, float]:
    """Values of ``statistics`` in ``group`` and their delta-method covariance.

    Returns ``(values, V, n)`` where ``V = J Sigma J^T / n`` is the sampling
    covariance of the statistics (Sigma the sample covariance of the columns
    the statistics read, ddof = 1). With ``relative`` the value of a mean
    statistic is its offset from the column's shift (``mean - K``, see
    :mod:`abkit.moments`), which keeps every digit of values far from zero;
    :func:`statistic_origins` gives the shifts back.
    """
    g = moments.group_index(group)
    n = float(moments.n[g])
    columns = list(dict.fromkeys(c for s in statistics for c in s.columns))
    idx = [moments.column_index(c) for c in columns]
    local = {c: i for i, c in enumerate(columns)}
    mean = moments.mean[g, idx]
    values = np.empty(len(statistics))
    J = np.zeros((len(statistics), len(columns)))
    for i, s in enumerate(statistics):
        pos = [local[c] for c in s.columns]
        values[i], grad = s.value_and_gradient(mean[pos])
        if relative and s.denominator is None:
            values[i] = moments.offset[g, idx[pos[0]]]
        elif s.denominator is not None:
            # A denominator's mean is shift + offset, with the offset a sum of n shifted values over n: where
            # it is zero within that sum's rounding bound (n ulps of |shift| + |offset|; every unit had 0,
            # e.g. new buyers' pre-period orders) the ratio is undefined whatever the shift the moments were
            # taken with, not a finite number made of rounding (33 ulps at n = 2,000 through DuckDB, seen).
            d = idx[pos[-1]]
            scale = abs(moments.shift[d]) + abs(moments.offset[g, d])
            if abs(mean[pos[-1]]) <= max(n, 16.0) * np.finfo(float).eps * scale:
                values[i] = np.nan
        J[i, pos] = grad
    sigma = moments.comoment_matrix(g, idx) / max(n - 1.0, 1.0)
    V = J @ sigma @ J.T / max(n, 1.0)
    return values, V, n


def statistic_origins(moments: Moments, statistics: Sequence[Statistic]) -> np.ndarray:
    """What :func:`linearize` with ``relative=True`` subtracted: the column shift of a mean, 0 for a ratio."""
    return np.array(
        [moments.shift[moments.column_index(s.numerator)] if s.denominator is None else 0.0 for s in statistics]
    )


def t_inference(estimate: float, pieces: Sequence[float], sizes: Sequence[float], alpha: float):
    """SE, CI and two-sided p-value with Welch-Satterthwaite degrees of freedom.

    ``pieces`` are the variance contributions of independent samples (arms)
    of ``sizes`` units: ``df = (sum v)^2 / sum(v^2 / (n - 1))``.
    """
    var = float(sum(pieces))
    se = float(np.sqrt(max(var, 0.0)))
    if not np.isfinite(estimate) or not np.isfinite(se):
        return se, np.nan, np.nan, np.nan, np.nan
    if se == 0.0:
        # Every arm is constant: the difference is known exactly.
        return 0.0, estimate, estimate, (1.0 if estimate == 0.0 else 0.0), np.inf
    denom = sum(v**2 / max(m - 1.0, 1.0) for v, m in zip(pieces, sizes))
    df = var**2 / denom if denom > 0 else np.inf
    # scipy's Student t ufuncs directly (stats.t.isf / stats.t.sf call these same
    # functions after ~0.1 ms of argument checking, which dominated simulation runs)
    q = -special.stdtrit(df, alpha / 2.0)
    p = 2.0 * special.stdtr(df, -abs(estimate) / se)
    return se, estimate - q * se, estimate + q * se, float(min(p, 1.0)), float(df)


def fieller_relative(effect, control, var_effect, cov_effect_control, var_control, q):
    """Fieller's interval ``(lower, upper)`` for the relative lift ``r = (t - c) / |c|``. Vectorized.

    ``effect = t - c`` and ``control = c`` are the estimates, ``var_effect =
    Var(t - c)``, ``cov_effect_control = Cov(t - c, c)``, ``var_control =
    Var(c)``; ``q`` the critical value (the one of the effect's CI). For the
    ratio ``u = t / c - 1`` the interval is the set of ``u`` with

        (effect - u control)^2 <= q^2 (var_effect - 2 u cov_effect_control + u^2 var_control)

    i.e. ``u^2 a - 2 u b + c0 <= 0`` with ``a = control^2 - q^2 var_control``,
    ``b = effect control - q^2 cov_effect_control``, ``c0 = effect^2 - q^2
    var_effect``: the roots ``(b -/+ sqrt(b^2 - a c0)) / a`` when ``a > 0``
    (computed without cancellation); ``r = sign(c) u``, so for a negative
    control value the interval is mirrored (``b`` taken with the sign of
    ``c``). When ``a <= 0`` the set is unbounded (two rays or the whole line)
    and the result is its convex hull ``(-inf, inf)``; NaN inputs give NaN. A
    bounded interval contains 0 exactly when ``effect^2 <= q^2 var_effect``.
    See the module docstring for why abkit uses it.
    """
    d, c, vd, k, vc, q = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (effect, control, var_effect, cov_effect_control, var_control, q))
    )
    q2 = q * q
    a = c * c - q2 * vc
    b = np.where(c < 0.0, -1.0, 1.0) * (d * c - q2 * k)  # the roots of r = sign(c) u: mirrored for c < 0
    c0 = d * d - q2 * vd
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # with a > 0 the quadratic is <= 0 at the estimate r = d / |c|, so b^2 - a c0 >= 0 up to rounding
        root = np.sqrt(np.maximum(b * b - a * c0, 0.0))
        s = b + np.copysign(root, b)  # |s| = |b| + root: no cancellation
        far = s / a  # the root farther from 0 (on the side of b)
        near = np.where(s != 0.0, c0 / s, 0.0)  # product of the roots is c0 / a
        lo, hi = np.minimum(far, near), np.maximum(far, near)
    valid = np.isfinite(a) & np.isfinite(b) & np.isfinite(c0)
    ok = valid & (a > 0.0)
    lo = np.where(ok, lo, np.where(valid, -np.inf, np.nan))
    hi = np.where(ok, hi, np.where(valid, np.inf, np.nan))
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def _fieller_scalar(d: float, c: float, vd: float, k: float, vc: float, q: float) -> tuple[float, float]:
    """:func:`fieller_relative` for Python floats (the same arithmetic, without numpy's per-call cost)."""
    q2 = q * q
    a = c * c - q2 * vc
    b = (d * c - q2 * k) * (-1.0 if c < 0.0 else 1.0)
    c0 = d * d - q2 * vd
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(c0)):
        return math.nan, math.nan
    if not a > 0.0:  # unbounded: the convex hull of the set
        return -math.inf, math.inf
    s = b + math.copysign(math.sqrt(max(b * b - a * c0, 0.0)), b)
    far, near = s / a, (c0 / s if s != 0.0 else 0.0)
    return (far, near) if far <= near else (near, far)


def _solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A^{-1} b, with a zero slope for covariates that have no variance."""
    if A.shape == (1, 1):  # one covariate: what pinv gives, without an eigendecomposition
        a = float(A[0, 0])
        return np.array([float(b[0]) / a]) if a > 0.0 else np.zeros(1)
    return np.linalg.pinv(A, rcond=1e-12, hermitian=True) @ b


def compare(
    moments: Moments,
    metric: Metric,
    control: Hashable,
    treatment: Hashable,
    alpha: float = 0.05,
    arms: Sequence[Hashable] | None = None,
) -> Comparison:
    """Effect of ``treatment`` vs ``control`` on ``metric`` from ``moments``.

    ``arms`` are the arms whose units estimate the CUPED slope and the
    covariate centre (default: the two compared). :func:`abkit.analyze`
    passes every arm of the experiment, so the adjusted control value is the
    same in every comparison and the slope uses all the data, as in the
    regression ``y ~ arm + x`` (CUPED) or ``y ~ arm * (x - xbar)`` (Lin).

    Every adjusted arm value is linear in the arms' statistics,
    ``adj_x = s_x[0] - theta_x^T (s_x[1:] - sum_a w_a s_a[1:])``, so the
    effect and the relative lift have gradients ``(lambda_a, gamma_a)`` per
    arm and variance ``sum_a [lambda_a, gamma_a] V_a [lambda_a, gamma_a]^T``.
    """
    arms = [control, treatment] if arms is None else list(arms)
    for arm in (control, treatment):
        if arm not in arms:
            arms.append(arm)
    statistics = (metric.target, *metric.covariates)
    for arm in arms:
        n = moments.n[moments.group_index(arm)]
        if n < 2:
            raise DataError(
                f"arm '{arm}' has {int(n)} unit(s) with data for metric '{metric.name}'; "
                "at least 2 per arm are needed to estimate a variance"
            )
    p = len(metric.covariates)
    if p and metric.method == "lin":
        # slopes per arm: an arm needs more units than slopes + intercept, or the fit is exact and the
        # adjusted value is noise amplified by an ill-conditioned solve
        few = [a for a in arms if moments.n[moments.group_index(a)] < p + 2]
        if few:
            n_few = int(moments.n[moments.group_index(few[0])])
            raise DataError(
                f"metric '{metric.name}': regression adjustment (Lin) on {p} covariates fits {p} slopes per arm and "
                f"needs at least {p + 2} units in every arm; arm '{few[0]}' has {n_few}. Use fewer covariates "
                "(or method='cuped', one pooled slope), or wait for more data"
            )
    # values relative to the columns' shifts: effects are differences of offsets (digits far from zero kept)
    lin = {a: linearize(moments, a, statistics, relative=True) for a in arms}
    origin = statistic_origins(moments, statistics)
    for a in arms:
        for stat, value in zip(statistics, lin[a][0]):
            if not np.isfinite(value):
                role = "metric" if stat is metric.target else "covariate"
                raise DataError(
                    f"metric '{metric.name}': the {role} {stat} is undefined in arm {a!r} because "
                    f"'{stat.denominator}' sums to zero there; check the column, or use a denominator "
                    "that is positive for some units of every arm"
                )
    n = {a: lin[a][2] for a in arms}
    theta = {a: np.zeros(p) for a in arms}
    if p:
        if metric.method == "cuped":
            W = sum((n[a] - 1.0) * n[a] * lin[a][1] for a in arms)
            shared = _solve(W[1:, 1:], W[1:, 0])
            theta = {a: shared for a in arms}
        else:  # "lin": slopes per arm
            theta = {a: _solve(lin[a][1][1:, 1:], lin[a][1][1:, 0]) for a in arms}
        centre = linearize(moments.pooled(arms), "pooled", statistics, relative=True)[0][1:]
    else:
        centre = np.zeros(0)
    total = sum(n.values())
    weight = {a: n[a] / total for a in arms}

    def adjusted(x):
        """Value of arm x's adjusted mean and its gradient (lambda_a, gamma_a) per arm."""
        s = lin[x][0]
        value = s[0] - theta[x] @ (s[1:] - centre)
        grad = {
            a: np.concatenate(([1.0 if a == x else 0.0], weight[a] * theta[x] - (theta[x] if a == x else 0.0)))
            for a in arms
        }
        return float(value), grad

    def variance_pieces(grad):
        return [max(float(grad[a] @ lin[a][1] @ grad[a]), 0.0) for a in arms]

    t_offset, g_t = adjusted(treatment)
    c_offset, g_c = adjusted(control)
    a_t, a_c = float(origin[0] + t_offset), float(origin[0] + c_offset)
    sizes = [n[a] for a in arms]
    effect = t_offset - c_offset
    pieces = variance_pieces({a: g_t[a] - g_c[a] for a in arms})
    se, lo, hi, pval, df = t_inference(effect, pieces, sizes, alpha)
    raw = lin[treatment][1][0, 0] + lin[control][1][0, 0]
    vr = (1.0 - sum(pieces) / raw if raw > 0 else 0.0) if p else np.nan
    # Var(a_c) and Cov(effect, a_c) for Fieller's relative CI (module docstring)
    var_c = cov_dc = 0.0
    for a in arms:
        u = lin[a][1] @ g_c[a]
        var_c += float(g_c[a] @ u)
        cov_dc += float((g_t[a] - g_c[a]) @ u)
    var_c = max(var_c, 0.0)
    if a_c != 0.0 and np.isfinite(a_c):
        rel = (a_t - a_c) / abs(a_c)  # the sign of the effect, also for a negative control value (docstring)
        # gradient of s (a_t / a_c - 1), s = sign(a_c): the sign does not change the variance
        rel_pieces = variance_pieces({a: g_t[a] / a_c - a_t / a_c**2 * g_c[a] for a in arms})
        rel_se = float(np.sqrt(sum(rel_pieces)))
    else:
        rel = rel_se = np.nan
    if np.isfinite(a_c) and not np.isnan(df):
        # Fieller, with the absolute CI's critical value: both CIs exclude 0 together (module docstring);
        # a control value of exactly 0 gives the unbounded (-inf, inf)
        q = -float(special.stdtrit(df, alpha / 2.0))
        rel_lo, rel_hi = _fieller_scalar(float(effect), a_c, se * se, cov_dc, var_c, q)
    else:  # no variance (t_inference gave up) or no control value: no interval
        rel_lo = rel_hi = np.nan
    return Comparison(
        control_value=a_c,
        treatment_value=a_t,
        effect=float(effect),
        se=se,
        ci_lower=float(lo),
        ci_upper=float(hi),
        p_value=float(pval),
        df=float(df),
        rel_effect=float(rel),
        rel_se=float(rel_se),
        rel_ci_lower=float(rel_lo),
        rel_ci_upper=float(rel_hi),
        n_control=n[control],
        n_treatment=n[treatment],
        variance_reduction=float(vr),
        theta=tuple(float(x) for x in theta[treatment]),
        control_se=float(np.sqrt(var_c)),
        cov_effect_control=float(cov_dc),
    )


def check_binary(moments: Moments, column: str, metric_name: str) -> None:
    """Raise unless ``column`` holds only 0 and 1 in every group.

    Uses the moments alone: for values in [0, 1], sum x^2 <= sum x with
    equality only for 0/1 data, i.e. the centred second moment equals
    ``n p (1 - p)``.
    """
    j = moments.column_index(column)
    for g, label in enumerate(moments.groups):
        n = moments.n[g]
        if n == 0:
            continue
        p = moments.mean[g, j]
        m2 = moments.comoment_matrix(g, [j])[0, 0]
        if not (-1e-12 <= p <= 1 + 1e-12) or abs(m2 - n * p * (1 - p)) > 1e-8 * max(n, 1.0):
            raise DataError(
                f"metric '{metric_name}': column '{column}' must hold only 0 and 1 for a Proportion "
                f"(arm {label!r} has mean {p:.4g} and variance {m2 / max(n - 1, 1):.4g}); "
                "use abkit.Mean for non-binary columns"
            )
