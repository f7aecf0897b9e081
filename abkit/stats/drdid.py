"""Two-period difference-in-differences on panel data with covariates (Sant'Anna & Zhao 2020):
outcome regression, normalised inverse probability weighting and the doubly robust estimator,
each with its influence function (``DRDID::reg_did_panel``, ``std_ipw_did_panel``, ``drdid_panel``).

Propensity-score trimming, as DRDID (and so R ``did``) does: the fitted score is capped at
``1 - 1e-6`` and comparison units with ``p >= trim_level`` (default :data:`TRIM_LEVEL` = 0.995)
get weight zero in the IPW and doubly robust estimators (treated units are never trimmed). A
comparison unit with ``p`` near 1 looks almost exactly like a treated unit; its weight
``p / (1 - p)`` (199 at 0.995, 10^6 at the cap) would otherwise let a handful of units set the
counterfactual. The influence function keeps DRDID's form with the trimmed weights; the logit's
information matrix uses all units and the capped scores. As R ``did``'s overlap check, a cell in
which any unit's score reaches :data:`OVERLAP_LIMIT` (0.999) is not estimated
(:class:`OverlapError`, a :class:`~abkit.errors.DataError`): treated and comparison units barely
overlap in the covariates, and trimming would leave an estimate resting on a few units.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import DataError

__all__ = ["TRIM_LEVEL", "OVERLAP_LIMIT", "OverlapError", "logit", "did_panel_2x2"]

TRIM_LEVEL = 0.995
"""DRDID's (and R did's) default: comparison units with propensity score at or above it get weight zero."""

OVERLAP_LIMIT = 0.999
"""R did's overlap check: a cell whose fitted propensity score reaches this for any unit is not estimated."""


class OverlapError(DataError):
    """The propensity score of a cell reaches :data:`OVERLAP_LIMIT`: treated and comparison units barely overlap."""


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
            raise DataError(
                "the propensity score model is singular (a covariate has no variation "
                "among the units of one group-time cell); drop it"
            ) from None
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            break
    p = 1.0 / (1.0 + np.exp(-(X @ beta)))
    Wd = w * p * (1 - p)
    info = X.T @ (Wd[:, None] * X) / n
    return p, np.linalg.inv(info)


def did_panel_2x2(
    dy: np.ndarray,
    D: np.ndarray,
    X: np.ndarray,
    method: str = "dr",
    w: np.ndarray | None = None,
    trim_level: float = TRIM_LEVEL,
) -> tuple[float, np.ndarray, int]:
    """ATT and its influence function for a two-period panel (``dy = Y_post - Y_pre``).

    ``D``: 1 for the treated cohort, 0 for the comparison units; ``X``:
    covariates including an intercept column; ``w``: unit weights (normalised
    to mean 1). Returns ``(att, psi, n_trimmed)`` with ``Var(att) ~ mean(psi^2) / n``
    and ``n_trimmed`` the comparison units given weight zero by the trimming.
    Formulas (``n`` units, ``w1 = w D``, ``w0`` the control weights,
    ``eta_a = mean(w_a r) / mean(w_a)``, ``p`` the logit propensity score capped
    at ``1 - 1e-6``, ``k = 1{D = 1 or p < trim_level}``):

    * ``reg``: ``r = dy - X b_ols(controls)`` and ``w0 = w D`` (treated
      weights: the regression prediction is averaged over the treated);
      ``att = mean(w1 dy)/mean(w1) - mean(w1 X b)/mean(w1)``; no trimming.
    * ``ipw``: ``w1 = k w D``, ``w0 = k w p (1 - D)/(1 - p)``,
      ``att = eta_1(dy) - eta_0(dy)`` (``DRDID::std_ipw_did_panel``).
    * ``dr``: both: ``att = eta_1(dy - X b) - eta_0(dy - X b)`` (``DRDID::drdid_panel``,
      Sant'Anna & Zhao 2020, eq. 3.1).
    """
    if not (isinstance(trim_level, (int, float, np.floating)) and 0 < trim_level <= 1):
        raise DataError(f"trim_level must be a number in (0, 1] (1 = no trimming); got {trim_level!r}")
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
            raise DataError(
                "the outcome regression is singular among the comparison units of a "
                "group-time cell (too few comparison units for the covariates)"
            ) from None
        fitted = X @ b
        # asymptotic linear representation of the OLS coefficients
        lin_or = (c * (dy - fitted))[:, None] * X @ np.linalg.inv(XtX / n)
    n_trimmed = 0
    if need_ps:
        p, _ = logit(D, X, w)
        if p.max() >= OVERLAP_LIMIT:
            raise OverlapError(
                f"the propensity score of a unit reaches {p.max():.4f} (R did's overlap check: "
                f">= {OVERLAP_LIMIT:g}); treated and comparison units barely overlap in the "
                "covariates"
            )
        p = np.minimum(p, 1 - 1e-6)
        # information at the capped scores, over all units (as DRDID)
        Hps = np.linalg.inv(X.T @ ((w * p * (1 - p))[:, None] * X) / n)
        lin_ps = (w * (D - p))[:, None] * X @ Hps
        kept = (D == 1) | (p < trim_level)
        n_trimmed = int(np.sum(~kept))
        w1 = w1 * kept
        m1 = np.mean(w1)
        w0 = kept * w * p * (1 - D) / (1 - p)
        m0 = np.mean(w0)
        if not m0 > 0:
            raise DataError(
                f"every comparison unit of a group-time cell has a propensity score at or above "
                f"trim_level={trim_level:g}: the comparison units are unlike the treated ones in "
                "their covariates. Use method='reg', fewer covariates, or trim_level=1 (no trimming)"
            )
    if method == "reg":
        att_t = w1 * dy
        att_c = w1 * fitted
        eta1 = np.mean(att_t) / m1
        eta0 = np.mean(att_c) / m1
        inf_t = (att_t - w1 * eta1) / m1
        M1 = np.mean(w1[:, None] * X, axis=0)
        inf_c = (att_c - w1 * eta0 + lin_or @ M1) / m1
        return float(eta1 - eta0), inf_t - inf_c, n_trimmed
    if method == "ipw":
        att_t = w1 * dy
        att_c = w0 * dy
        eta1 = np.mean(att_t) / m1
        eta0 = np.mean(att_c) / m0
        inf_t = (att_t - w1 * eta1) / m1
        M2 = np.mean((w0 * (dy - eta0))[:, None] * X, axis=0)
        inf_c = (att_c - w0 * eta0 + lin_ps @ M2) / m0
        return float(eta1 - eta0), inf_t - inf_c, n_trimmed
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
        return float(eta1 - eta0), inf_t - inf_c, n_trimmed
    raise DataError(f"unknown method '{method}'; use 'dr', 'ipw' or 'reg'")
