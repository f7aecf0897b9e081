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
``y ~ treat * (x - xbar)``. Treating the slopes as known, the estimate is
``(s_t[0] - beta^T s_t[1:]) - (s_c[0] - beta^T s_c[1:])`` up to a constant
with ``beta = w_c theta_t + w_t theta_c`` (``w_a = n_a / (n_t + n_c)``),
so for either method

    Var_a = V_a[0,0] - 2 beta^T V_a[1:,0] + beta^T V_a[1:,1:] beta

(``beta = theta`` for CUPED). This includes the variance contributed by
centring on the sample mean of the covariates (Negi and Wooldridge 2021).

**Relative lift** ``r = adj_t / adj_c - 1`` by the delta method:
``Var(r) = Var_t / adj_c^2 + adj_t^2 Var_c / adj_c^4``.

**Inference.** Each variance is a sum of per-arm pieces ``v_t + v_c``;
CIs and two-sided p-values use Student's t with Welch-Satterthwaite
degrees of freedom ``(v_t + v_c)^2 / (v_t^2/(n_t-1) + v_c^2/(n_c-1))``,
which is the Welch test for means and tends to the normal for large n.
P-values use the survival function, so tiny values do not underflow.
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..errors import DataError
from ..metrics import Metric, Statistic
from ..moments import Moments

__all__ = ["Comparison", "compare", "linearize", "t_inference"]


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


def linearize(moments: Moments, group: Hashable, statistics: Sequence[Statistic]) -> tuple[np.ndarray, np.ndarray, float]:
    """Values of ``statistics`` in ``group`` and their delta-method covariance.

    Returns ``(values, V, n)`` where ``V = J Sigma J^T / n`` is the sampling
    covariance of the statistics (Sigma the sample covariance of the columns,
    ddof = 1).
    """
    g = moments.group_index(group)
    n = float(moments.n[g])
    mean = moments.mean[g]
    k = len(moments.columns)
    values = np.empty(len(statistics))
    J = np.zeros((len(statistics), k))
    for i, s in enumerate(statistics):
        idx = [moments.column_index(c) for c in s.columns]
        values[i], grad = s.value_and_gradient(mean[idx])
        J[i, idx] = grad
    sigma = moments.comoment[g] / max(n - 1.0, 1.0)
    V = J @ sigma @ J.T / max(n, 1.0)
    return values, V, n


def t_inference(estimate: float, v_t: float, v_c: float, n_t: float, n_c: float, alpha: float):
    """SE, CI and two-sided p-value with Welch-Satterthwaite degrees of freedom."""
    var = v_t + v_c
    se = float(np.sqrt(max(var, 0.0)))
    if not np.isfinite(estimate) or not np.isfinite(se):
        return se, np.nan, np.nan, np.nan, np.nan
    if se == 0.0:
        # Both arms constant: the difference is known exactly.
        return 0.0, estimate, estimate, (1.0 if estimate == 0.0 else 0.0), np.inf
    denom = v_t**2 / max(n_t - 1.0, 1.0) + v_c**2 / max(n_c - 1.0, 1.0)
    df = var**2 / denom if denom > 0 else np.inf
    q = stats.t.isf(alpha / 2.0, df)
    p = 2.0 * stats.t.sf(abs(estimate) / se, df)
    return se, estimate - q * se, estimate + q * se, float(min(p, 1.0)), float(df)


def _solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A^{-1} b, with a zero slope for covariates that have no variance."""
    return np.linalg.pinv(A, rcond=1e-12, hermitian=True) @ b


def compare(moments: Moments, metric: Metric, control: Hashable, treatment: Hashable, alpha: float = 0.05) -> Comparison:
    """Effect of ``treatment`` vs ``control`` on ``metric`` from ``moments``."""
    statistics = (metric.target, *metric.covariates)
    for arm in (control, treatment):
        n = moments.n[moments.group_index(arm)]
        if n < 2:
            raise DataError(
                f"arm '{arm}' has {int(n)} unit(s) with data for metric '{metric.name}'; "
                "at least 2 per arm are needed to estimate a variance"
            )
    s_t, V_t, n_t = linearize(moments, treatment, statistics)
    s_c, V_c, n_c = linearize(moments, control, statistics)
    raw_t, raw_c = V_t[0, 0], V_c[0, 0]
    theta: tuple[float, ...] = ()
    if metric.covariates:
        pooled = moments.pooled([control, treatment])
        s_p, _, _ = linearize(pooled, "pooled", statistics)
        if metric.method == "cuped":
            W = (n_t - 1.0) * n_t * V_t + (n_c - 1.0) * n_c * V_c
            th_t = th_c = _solve(W[1:, 1:], W[1:, 0])
        else:  # "lin": slopes per arm
            th_t = _solve(V_t[1:, 1:], V_t[1:, 0])
            th_c = _solve(V_c[1:, 1:], V_c[1:, 0])
        w_t = n_t / (n_t + n_c)
        beta = (1.0 - w_t) * th_t + w_t * th_c
        a_t = s_t[0] - th_t @ (s_t[1:] - s_p[1:])
        a_c = s_c[0] - th_c @ (s_c[1:] - s_p[1:])
        v_t = V_t[0, 0] - 2.0 * beta @ V_t[1:, 0] + beta @ V_t[1:, 1:] @ beta
        v_c = V_c[0, 0] - 2.0 * beta @ V_c[1:, 0] + beta @ V_c[1:, 1:] @ beta
        v_t, v_c = max(v_t, 0.0), max(v_c, 0.0)
        vr = 1.0 - (v_t + v_c) / (raw_t + raw_c) if raw_t + raw_c > 0 else 0.0
        theta = tuple(float(x) for x in beta)
    else:
        a_t, a_c, v_t, v_c = s_t[0], s_c[0], raw_t, raw_c
        vr = np.nan
    effect = float(a_t - a_c)
    se, lo, hi, p, df = t_inference(effect, v_t, v_c, n_t, n_c, alpha)
    if a_c != 0.0 and np.isfinite(a_c):
        rel = float(a_t / a_c - 1.0)
        rv_t, rv_c = v_t / a_c**2, a_t**2 * v_c / a_c**4
        rel_se, rel_lo, rel_hi, _, _ = t_inference(rel, rv_t, rv_c, n_t, n_c, alpha)
    else:
        rel = rel_se = rel_lo = rel_hi = np.nan
    return Comparison(
        control_value=float(a_c), treatment_value=float(a_t), effect=effect, se=se,
        ci_lower=float(lo), ci_upper=float(hi), p_value=float(p), df=float(df),
        rel_effect=rel, rel_se=float(rel_se), rel_ci_lower=float(rel_lo), rel_ci_upper=float(rel_hi),
        n_control=n_c, n_treatment=n_t, variance_reduction=float(vr), theta=theta,
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
        m2 = moments.comoment[g, j, j]
        if not (-1e-12 <= p <= 1 + 1e-12) or abs(m2 - n * p * (1 - p)) > 1e-8 * max(n, 1.0):
            raise DataError(
                f"metric '{metric_name}': column '{column}' must hold only 0 and 1 for a Proportion "
                f"(arm {label!r} has mean {p:.4g} and variance {m2 / max(n - 1, 1):.4g}); "
                "use abkit.Mean for non-binary columns"
            )
