"""Two-period difference-in-differences on panel data with covariates (Sant'Anna & Zhao 2020):
outcome regression, normalised inverse probability weighting and the doubly robust estimator,
each with its influence function (``DRDID::reg_did_panel``, ``std_ipw_did_panel``, ``drdid_panel``).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import DataError

__all__ = ["logit", "did_panel_2x2"]


# --------------------------------------------------------------------------
# Two-period DiD estimators with influence functions (panel data)
# --------------------------------------------------------------------------
def logit(D: np.ndarray, X: np.ndarray, w: np.ndarray, tol: float = 1e-10, maxiter: int = 100):
    """Weighted logistic regression by Newton-Raphson; returns ``(p_hat, (X'WX/n)^{-1})``.

    ``W = w p (1 - p)``; the second value is ``n`` times the model-based
    covariance of the coefficients (R's ``vcov(glm) * n``).
    """
    n, k = X.shape
    beta = np.zeros(k)
    ybar = np.clip(np.average(D, weights=w), 1e-6, 1 - 1e-6)
    beta[0] = math.log(ybar / (1 - ybar)) if np.allclose(X[:, 0], 1.0) else 0.0
    for _ in range(maxiter):
        eta = X @ beta
        p = 1.0 / (1.0 + np.exp(-eta))
        Wd = w * p * (1 - p)
        Hs = X.T @ (Wd[:, None] * X)
        grad = X.T @ (w * (D - p))
        try:
            step = np.linalg.solve(Hs, grad)
        except np.linalg.LinAlgError:
            raise DataError("the propensity score model is singular (a covariate has no variation "
                            "among the units of one group-time cell); drop it") from None
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            break
    p = 1.0 / (1.0 + np.exp(-(X @ beta)))
    Wd = w * p * (1 - p)
    info = X.T @ (Wd[:, None] * X) / n
    return p, np.linalg.inv(info)


def did_panel_2x2(dy: np.ndarray, D: np.ndarray, X: np.ndarray, method: str = "dr",
                  w: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """ATT and its influence function for a two-period panel (``dy = Y_post - Y_pre``).

    ``D``: 1 for the treated cohort, 0 for the comparison units; ``X``:
    covariates including an intercept column; ``w``: unit weights (normalised
    to mean 1). Returns ``(att, psi)`` with ``Var(att) ~ mean(psi^2) / n``.
    See the module docstring for the estimators; formulas (``n`` units,
    ``w1 = w D``, ``w0`` the control weights, ``eta_a = mean(w_a r) / mean(w_a)``):

    * ``reg``: ``r = dy - X b_ols(controls)`` and ``w0 = w D`` (treated
      weights: the regression prediction is averaged over the treated);
      ``att = mean(w1 dy)/mean(w1) - mean(w1 X b)/mean(w1)``.
    * ``ipw``: ``w0 = w p (1 - D)/(1 - p)``, ``att = eta_1(dy) - eta_0(dy)``.
    * ``dr``: both: ``att = eta_1(dy - X b) - eta_0(dy - X b)``.
    """
    n = dy.size
    w = np.ones(n) if w is None else w / np.mean(w)
    w1 = w * D
    m1 = np.mean(w1)
    need_ps = method in ("dr", "ipw")
    need_or = method in ("dr", "reg")
    if need_or:
        c = (1 - D) * w
        XtX = X.T @ (c[:, None] * X)
        try:
            b = np.linalg.solve(XtX, X.T @ (c * dy))
        except np.linalg.LinAlgError:
            raise DataError("the outcome regression is singular among the comparison units of a "
                            "group-time cell (too few comparison units for the covariates)") from None
        fitted = X @ b
        # asymptotic linear representation of the OLS coefficients
        lin_or = (c * (dy - fitted))[:, None] * X @ np.linalg.inv(XtX / n)
    if need_ps:
        p, Hps = logit(D, X, w)
        p = np.minimum(p, 1 - 1e-6)
        lin_ps = (w * (D - p))[:, None] * X @ Hps
        w0 = w * p * (1 - D) / (1 - p)
        m0 = np.mean(w0)
    if method == "reg":
        att_t = w1 * dy
        att_c = w1 * fitted
        eta1 = np.mean(att_t) / m1
        eta0 = np.mean(att_c) / m1
        inf_t = (att_t - w1 * eta1) / m1
        M1 = np.mean(w1[:, None] * X, axis=0)
        inf_c = (att_c - w1 * eta0 + lin_or @ M1) / m1
        return float(eta1 - eta0), inf_t - inf_c
    if method == "ipw":
        att_t = w1 * dy
        att_c = w0 * dy
        eta1 = np.mean(att_t) / m1
        eta0 = np.mean(att_c) / m0
        inf_t = (att_t - w1 * eta1) / m1
        M2 = np.mean((w0 * (dy - eta0))[:, None] * X, axis=0)
        inf_c = (att_c - w0 * eta0 + lin_ps @ M2) / m0
        return float(eta1 - eta0), inf_t - inf_c
    if method == "dr":
        r = dy - fitted
        att_t = w1 * r
        att_c = w0 * r
        eta1 = np.mean(att_t) / m1
        eta0 = np.mean(att_c) / m0
        M1 = np.mean(w1[:, None] * X, axis=0)
        inf_t = (att_t - w1 * eta1 - lin_or @ M1) / m1
        M2 = np.mean((w0 * (r - eta0))[:, None] * X, axis=0)
        M3 = np.mean(w0[:, None] * X, axis=0)
        inf_c = (att_c - w0 * eta0 + lin_ps @ M2 - lin_or @ M3) / m0
        return float(eta1 - eta0), inf_t - inf_c
    raise DataError(f"unknown method '{method}'; use 'dr', 'ipw' or 'reg'")
