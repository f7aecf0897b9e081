"""Wild cluster restricted bootstrap tests (WCR) and the multiplier bootstrap of influence functions.

:func:`wild_cluster_test` imposes the null ``beta_J = beta_0`` (restricted
residuals ``u_r``), draws cluster weights ``v_g`` (Rademacher, or Webb's
six-point distribution), and rebuilds ``y* = X b_r + v_g u_r``; the
bootstrap statistic is the CRV1 t (or Wald) statistic of ``y*``
(Cameron, Gelbach & Miller 2008, "Bootstrap-based improvements for inference
with clustered errors", REStat; Webb 2023, Canadian J. Econ.; MacKinnon &
Webb 2017). Everything is linear in ``v``, so all ``B`` draws are a few
``G x G`` by ``G x B`` matrix products (the idea of Roodman, MacKinnon,
Nielsen & Webb 2019, "Fast and wild", Stata J.): with ``Q = M [u_r 1_g]``
(``N x G``; ``M`` the fixed-effect projection, so fixed effects need not be
nested in the clusters), the bootstrap coefficient is
``beta* - b_r = H^{-1} X~'Q v`` and the bootstrap score of cluster ``h`` is
``X~_h' Q_h v - H_h H^{-1} X~'Q v``. Restricted residuals are affine in
``beta_0``, so the confidence interval is found by inverting the test over
``beta_0`` at the cost of ``O(B)`` per trial value. With Rademacher weights
and ``2^G <= B`` all ``2^G`` sign vectors are enumerated (exact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .cluster_robust import LinearFit, cluster_sums
from .fixed_effects import FixedEffects, indicator_matrix

__all__ = ["WEBB_POINTS", "WildTest", "multiplier_bootstrap", "wild_cluster_test", "wild_weights"]


WEBB_POINTS = np.array([-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)])


def wild_weights(n_clusters: int, reps: int, kind: str = "rademacher", seed=0) -> tuple[np.ndarray, bool]:
    """Cluster weights ``(G, B)``; Rademacher with ``2^G <= reps`` enumerates all sign vectors.

    Returns ``(V, enumerated)``.
    """
    G = int(n_clusters)
    if kind == "rademacher":
        if G <= 20 and 2**G <= reps:
            grid = ((np.arange(2**G)[None, :] >> np.arange(G)[:, None]) & 1).astype(np.float64)
            return 2.0 * grid - 1.0, True
        rng = np.random.default_rng(seed)
        return rng.integers(0, 2, size=(G, reps)).astype(np.float64) * 2.0 - 1.0, False
    if kind == "webb":
        rng = np.random.default_rng(seed)
        return WEBB_POINTS[rng.integers(0, 6, size=(G, reps))], False
    raise DataError(f"unknown wild bootstrap weights '{kind}'; use 'rademacher' or 'webb'")


@dataclass(frozen=True)
class WildTest:
    """Wild cluster (restricted) bootstrap test of ``beta_J = beta_0``."""

    statistic: float  # observed |t| (q = 1) or Wald W (q > 1), CRV1
    p_value: float
    ci_lower: float  # NaN for q > 1
    ci_upper: float
    reps: int
    weights: str
    enumerated: bool
    n_clusters: int


def wild_cluster_test(
    fit: LinearFit,
    fe: FixedEffects,
    J,
    beta0=None,
    reps: int = 9999,
    weights: str = "rademacher",
    seed=0,
    alpha: float = 0.05,
    ci: bool = True,
) -> WildTest:
    """WCR bootstrap p-value (and, for one coefficient, the CI by test inversion).

    ``fit`` must be clustered. ``J``: index or indices of the tested
    coefficients; ``beta0``: the null values (default 0).
    """
    if fit.cluster is None:
        raise DataError("the wild cluster bootstrap needs clusters; pass cluster=...")
    J = np.atleast_1d(np.asarray(J, dtype=np.int64))
    q = J.size
    beta0 = np.zeros(q) if beta0 is None else np.atleast_1d(np.asarray(beta0, dtype=np.float64))
    Xt, yt, cl = fit.Xt, fit.yt, fit.cluster
    N, k = Xt.shape
    G = fit.n_clusters
    if N * G > 50_000_000:
        raise DataError(
            f"the wild cluster bootstrap with {G:,} clusters and {N:,} rows is too large; with "
            "this many clusters the analytic CRV1 inference is reliable (wild=False)"
        )
    c = fit.correction
    H = Xt.T @ Xt
    Hinv = np.linalg.inv(H)
    others = np.setdiff1d(np.arange(k), J)
    Z = Xt[:, others]
    XJ = Xt[:, J]
    # restricted residuals, affine in beta0: u_r = u0 - M_Z XJ beta0
    if others.size:
        ZtZinv = np.linalg.pinv(Z.T @ Z, hermitian=True)
        MZ = lambda v: v - Z @ (ZtZinv @ (Z.T @ v))  # noqa: E731
    else:
        MZ = lambda v: v  # noqa: E731
    u0 = MZ(yt)
    U1 = MZ(XJ)  # (N, q)
    Ind = indicator_matrix(cl, G)  # (N, G)
    sw = np.sqrt(fe.w)

    def Qmat(u: np.ndarray) -> np.ndarray:
        # Q = sqrt(w) M_w (u 1_g / sqrt(w)): the projected per-cluster residual columns
        raw = Ind.multiply(u[:, None]).toarray()
        if fe.n_dims:
            raw = sw[:, None] * fe.resid(raw / sw[:, None])
        return raw

    V, enumerated = wild_weights(G, reps, weights, seed)
    B = V.shape[1]
    A = Hinv[J, :]  # (q, k)
    Zrows = Xt @ A.T  # (N, q): z_i = x~_i' a_j
    IndT = Ind.T.tocsr()

    def pieces(Q: np.ndarray):
        S = Xt.T @ Q  # (k, G)
        num = A @ S  # (q, G): beta*_J - b_r,J = num v
        HhA = np.stack([np.asarray(IndT @ (Zrows[:, [j]] * Xt)) for j in range(q)])  # (q, G, k)
        R = np.stack([np.asarray(IndT @ (Zrows[:, [j]] * Q)) for j in range(q)])  # (q, G, G)
        R = R - HhA @ (Hinv @ S)  # (q, G, G)
        return num @ V, np.einsum("jhg,gb->jhb", R, V)  # (q, B), (q, G, B)

    n0, r0 = pieces(Qmat(u0))
    # observed statistic
    bJ = fit.coef[J]
    VJ = fit.vcov[np.ix_(J, J)]
    if q == 1:
        se = math.sqrt(VJ[0, 0])
        stat = abs(bJ[0] - beta0[0]) / se
        n1, r1 = pieces(Qmat(U1[:, 0]))
        a0, a1 = n0[0], n1[0]
        # per draw: sum_h (r0 - b r1)^2 = P0 - 2 b P01 + b^2 P1
        P0 = (r0[0] ** 2).sum(axis=0)
        P01 = (r0[0] * r1[0]).sum(axis=0)
        P1 = (r1[0] ** 2).sum(axis=0)

        def pval(b: float) -> float:
            num = a0 - b * a1
            den = np.sqrt(np.maximum(c * (P0 - 2 * b * P01 + b * b * P1), 1e-300))
            t_obs = abs(bJ[0] - b) / se
            return float(np.mean(np.abs(num / den) >= t_obs - 1e-12 * max(t_obs, 1.0)))

        p = pval(beta0[0])
        lo = hi = np.nan
        if ci:
            lo, hi = _invert(pval, float(bJ[0]), se, alpha)
        return WildTest(float(stat), p, lo, hi, B, weights, enumerated, G)
    # joint test (beta0 fixed): bootstrap Wald statistics
    Wobs = float((bJ - beta0) @ np.linalg.pinv(VJ, hermitian=True) @ (bJ - beta0))
    if np.any(beta0 != 0):
        nb, rb = pieces(Qmat(u0 - U1 @ beta0))
    else:
        nb, rb = n0, r0
    Vb = c * np.einsum("jhb,lhb->bjl", rb, rb)  # (B, q, q)
    Wb = np.einsum("jb,bj->b", nb, np.linalg.solve(Vb + 1e-300 * np.eye(q), nb.T[:, :, None])[:, :, 0])
    p = float(np.mean(Wb >= Wobs * (1 - 1e-12)))
    return WildTest(Wobs, p, np.nan, np.nan, B, weights, enumerated, G)


def _invert(pval, est: float, se: float, alpha: float) -> tuple[float, float]:
    """Endpoints of {b : p(b) > alpha} around ``est`` by bracketing and bisection."""
    out = []
    for sign in (-1.0, 1.0):
        inner, step = est, 2.0 * se
        outer = est + sign * step
        tries = 0
        while pval(outer) > alpha and tries < 60:
            inner, step = outer, step * 2.0
            outer = est + sign * step
            tries += 1
        if tries == 60:
            out.append(sign * np.inf)
            continue
        for _ in range(60):
            mid = 0.5 * (inner + outer)
            if pval(mid) > alpha:
                inner = mid
            else:
                outer = mid
            if abs(outer - inner) <= 1e-7 * se:
                break
        out.append(0.5 * (inner + outer))
    return out[0], out[1]


def multiplier_bootstrap(
    inf: np.ndarray,
    se: np.ndarray,
    reps: int = 999,
    weights: str = "rademacher",
    seed=0,
    cluster: np.ndarray | None = None,
) -> np.ndarray:
    """Bootstrap t statistics ``(reps, k)`` of estimates with influence functions ``inf`` (n x k).

    ``theta*_b - theta = mean(v_i psi_i)`` with i.i.d. multiplier weights
    ``v`` (Rademacher or Webb) per unit, or per cluster with the influence
    functions summed within clusters (Callaway & Sant'Anna 2021, Algorithm 1);
    the statistics are standardised by the analytic ``se``.
    """
    n = inf.shape[0]
    if cluster is not None:
        G = int(cluster.max()) + 1
        inf = cluster_sums(cluster, G, inf)
    m = inf.shape[0]
    if weights not in ("rademacher", "webb"):
        raise DataError(f"unknown multiplier weights '{weights}'; use 'rademacher' or 'webb'")
    rng = np.random.default_rng(seed)
    out = np.empty((reps, inf.shape[1]))
    step = max(1, 2_000_000 // max(m, 1))
    for start in range(0, reps, step):  # chunks of draws (not rows), bounded memory
        b = min(step, reps - start)
        if weights == "webb":
            v = WEBB_POINTS[rng.integers(0, 6, size=(m, b))]
        else:
            v = rng.integers(0, 2, size=(m, b)) * 2.0 - 1.0
        out[start : start + b] = (v.T @ inf) / n
    return out / se[None, :]
