"""Least squares on fixed-effect-projected data with cluster-robust (CRV1) or HC1 variance;
Wald tests with the Hotelling small-sample correction; the cluster jackknife.

For OLS/WLS on the projected design ``X~`` with residuals ``e``,

    V = c (X~'WX~)^{-1} [sum_g s_g s_g'] (X~'WX~)^{-1},  s_g = sum_{i in g} w_i x~_i e_i,
    c = G / (G - 1) * (N - 1) / (N - K),

the CRV1 small-sample correction of Stata's ``regress, vce(cluster)``,
statsmodels' ``cov_type="cluster"`` and R fixest's default
``ssc(adj = TRUE, cluster.adj = TRUE, fixef.K = "nested")``: ``K`` counts the
non-absorbed coefficients plus the absorbed fixed-effect parameters of every
fixed-effect dimension that is *not* nested in the clusters (with unit
fixed effects and clustering by unit, ``K = k + T``: the ``T - 1`` free
period effects plus the one parameter the unit effects share with the
intercept). Inference uses Student's t with ``G - 1`` degrees of freedom
(Cameron & Miller 2015,
"A Practitioner's Guide to Cluster-Robust Inference", J. Human Resources).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, stats

from ..errors import DataError
from .fixed_effects import NARROW_COLUMNS, FixedEffects, group_sums, indicator_matrix

__all__ = ["LinearFit", "cluster_sums", "fit_linear", "t_test", "quadratic_form_inverse", "wald_test", "jackknife_vcov"]


@dataclass(frozen=True)
class LinearFit:
    """A (weighted) least-squares fit on fixed-effect-projected data."""

    coef: np.ndarray
    vcov: np.ndarray
    df: float  # degrees of freedom of the t reference distribution
    n_obs: int
    n_clusters: int  # 0 when heteroskedasticity-robust (HC1)
    k: int  # K of the small-sample correction
    correction: float  # the small-sample factor c
    resid: np.ndarray  # residuals in the sqrt(w)-scaled space
    Xt: np.ndarray  # sqrt(w) M X  (projected, scaled design)
    yt: np.ndarray  # sqrt(w) M y
    cluster: np.ndarray | None
    vcov_type: str

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.maximum(np.diag(self.vcov), 0.0))


def cluster_sums(codes: np.ndarray, n_levels: int, M: np.ndarray) -> np.ndarray:
    """Per-cluster column sums of ``M`` (rows = clusters)."""
    M2 = M[:, None] if M.ndim == 1 else M
    ind = indicator_matrix(codes, n_levels) if M2.shape[1] > NARROW_COLUMNS else None
    return group_sums(codes, n_levels, M2, None, ind)


def fit_linear(
    y: np.ndarray, X: np.ndarray, fe: FixedEffects, cluster: np.ndarray | None, names: list[str] | None = None
) -> LinearFit:
    """WLS of ``y`` on ``X`` with the fixed effects of ``fe`` absorbed; CRV1 (or HC1) variance.

    ``cluster``: integer codes ``0..G-1`` or None (HC1: ``c = N / (N - K)``,
    t with ``N - K`` degrees of freedom).
    """
    n = y.size
    sw = np.sqrt(fe.w)
    yt = sw * fe.resid(y)
    Xt = sw[:, None] * fe.resid(X)
    H = Xt.T @ Xt
    k = X.shape[1]
    norms = np.sqrt(np.diag(H))
    scale = np.sqrt(np.sum(X * X * fe.w[:, None], axis=0))  # size of each column before projection
    flat_mask = norms <= 1e-9 * np.maximum(scale, 1e-300)
    vals = np.linalg.eigvalsh(H / np.outer(norms, norms)) if not flat_mask.any() else np.zeros(1)
    if flat_mask.any() or vals.min() <= 1e-11:
        bad = names or [f"x{i}" for i in range(k)]
        flat = [b for b, f in zip(bad, flat_mask) if f]
        what = (
            f"column(s) {flat} have no variation left after removing the fixed effects"
            if flat
            else f"the regressors {bad} are collinear with each other or the fixed effects"
        )
        raise DataError(f"cannot estimate the model: {what}; drop or change them")
    Hinv = np.linalg.inv(H)
    coef = Hinv @ (Xt.T @ yt)
    e = yt - Xt @ coef
    K = k + fe.dof(cluster)
    if cluster is not None:
        G = int(cluster.max()) + 1
        if G < 2:
            raise DataError("cluster-robust standard errors need at least 2 clusters; got 1")
        S = cluster_sums(cluster, G, Xt * e[:, None])
        c = G / (G - 1) * (n - 1) / max(n - K, 1)
        meat = S.T @ S
        df = G - 1
        vtype = "CRV1"
    else:
        G = 0
        c = n / max(n - K, 1)
        S = Xt * e[:, None]
        meat = S.T @ S
        df = max(n - K, 1)
        vtype = "HC1"
    V = c * Hinv @ meat @ Hinv
    return LinearFit(
        coef=coef,
        vcov=(V + V.T) / 2,
        df=float(df),
        n_obs=n,
        n_clusters=G,
        k=K,
        correction=c,
        resid=e,
        Xt=Xt,
        yt=yt,
        cluster=cluster,
        vcov_type=vtype,
    )


def t_test(estimate: float, se: float, df: float, alpha: float = 0.05, null: float = 0.0):
    """Two-sided p-value and CI from Student's t (survival function)."""
    if not (np.isfinite(se) and se > 0):
        return np.nan, np.nan, np.nan
    q = stats.t.isf(alpha / 2, df)
    p = 2 * stats.t.sf(abs(estimate - null) / se, df)
    return float(min(p, 1.0)), estimate - q * se, estimate + q * se


def quadratic_form_inverse(b: np.ndarray, V: np.ndarray) -> float:
    """``b' V^+ b``: by Cholesky when ``V`` is well conditioned (``O(q^3 / 3)``), else the pseudo-inverse."""
    d = np.sqrt(np.maximum(np.diag(V), 0.0))
    if np.all(d > 0):
        R = V / np.outer(d, d)  # correlation scale
        try:
            L = np.linalg.cholesky(R)
            if np.min(np.diag(L)) ** 2 > 1e-10:
                z = linalg.solve_triangular(L, b / d, lower=True)
                return float(z @ z)
        except np.linalg.LinAlgError:
            pass
    return float(b @ np.linalg.pinv(V, hermitian=True) @ b)


def wald_test(b: np.ndarray, V: np.ndarray, n_clusters: int) -> tuple[float, float, float, float]:
    """Cluster-robust Wald test of ``b = 0`` with the Hotelling T^2 small-sample correction.

    ``W = b' V^{-1} b``; with ``G`` clusters and ``q`` restrictions
    ``F = W (G - q) / (q (G - 1))`` is referred to ``F(q, G - q)`` (the
    Hotelling T^2 distribution of a cluster-robust Wald statistic; Cameron &
    Miller 2015, sec. VII.C; Pustejovsky & Tipton 2018). Without clusters
    (``n_clusters = 0``), ``W`` is referred to chi-square(q).
    Returns ``(W, F_or_W, df1, p_value)``; df2 is ``G - q``.
    """
    q = b.size
    W = quadratic_form_inverse(b, V)
    if n_clusters and n_clusters > q:
        G = n_clusters
        F = W * (G - q) / (q * (G - 1))
        return W, F, float(G - q), float(stats.f.sf(F, q, G - q))
    return W, W, np.inf, float(stats.chi2.sf(W, q))


def jackknife_vcov(leave_one_out: np.ndarray) -> np.ndarray:
    """Cluster jackknife (CV3) covariance ``(G - 1)/G sum_g (b_(g) - bbar)(b_(g) - bbar)'``.

    ``leave_one_out``: ``(G, k)`` estimates, row ``g`` without cluster ``g``
    (MacKinnon, Nielsen & Webb 2023, "Cluster-robust inference: a guide to
    empirical practice", J. Econometrics, sec. 3.3). For a difference of
    group means it equals ``s_1^2/n_1 + s_0^2/n_0`` with unbiased ``s^2``, where
    the plug-in (influence-function) variance has ``(n_g - 1)/n_g`` in each
    term: with five comparison units their part is 20% too small.
    """
    G = leave_one_out.shape[0]
    d = leave_one_out - leave_one_out.mean(axis=0)
    V = (G - 1) / G * (d.T @ d)
    return (V + V.T) / 2
