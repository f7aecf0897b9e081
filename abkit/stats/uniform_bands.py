"""Critical values of uniform (simultaneous, sup-t) confidence bands."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sup_t_critical", "sup_t_critical_t"]


def sup_t_critical(tstats: np.ndarray, alpha: float = 0.05) -> float:
    """Critical value of the sup-t uniform band: the 1 - alpha quantile of ``max_k |t_k|``."""
    return float(np.quantile(np.max(np.abs(tstats), axis=1), 1 - alpha))


_T_DRAW_CELLS = 20_000_000
"""Largest ``draws x k`` block of normal draws of :func:`sup_t_critical_t` held at once."""


def sup_t_critical_t(corr: np.ndarray, df: float, draws: int = 100_000, alpha: float = 0.05, seed=0) -> float:
    """Sup-t critical value from a multivariate t: the 1 - alpha quantile of ``max_k |T_k|``.

    ``T = Z / sqrt(chi2_df / df)`` with ``Z ~ N(0, corr)`` (``df = inf``: the
    normal), so the band ``estimate_k +- c se_k`` covers all ``k`` at once
    (Montiel Olea & Plagborg-Moller 2019, "Simultaneous confidence bands:
    theory, implementation, and an application to SVARs", J. Applied
    Econometrics). With ``G`` clusters, ``df = G - 1`` carries the small-sample
    t reference of each coefficient over to the band. ``draws`` seeded draws;
    a singular ``corr`` (perfectly correlated rows) is handled by its
    eigen-decomposition.
    """
    k = corr.shape[0]
    if k == 0:
        return math.nan
    rng = np.random.default_rng(seed)
    try:
        L = np.linalg.cholesky(corr + 1e-12 * np.eye(k))
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh((corr + corr.T) / 2)
        L = vecs * np.sqrt(np.maximum(vals, 0.0))
    step = max(1, min(draws, _T_DRAW_CELLS // k))
    sup = np.empty(draws)
    for start in range(0, draws, step):  # blocks of draws (never rows), bounded memory
        b = min(step, draws - start)
        z = rng.standard_normal((b, k)) @ L.T
        if np.isfinite(df):
            z = z / np.sqrt(rng.chisquare(df, size=(b, 1)) / df)
        sup[start : start + b] = np.max(np.abs(z), axis=1)
    return float(np.quantile(sup, 1 - alpha))
