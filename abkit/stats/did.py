"""Difference-in-differences estimators: pure numpy functions of small panels.

No pandas, no I/O, no plotting: the functions here take float64 arrays and
integer codes (``0..L-1``) and return arrays or small frozen dataclasses.
:mod:`abkit.did` turns data frames into these arrays and the results into
result objects.

Fixed effects (absorbed, never as dummy matrices)
--------------------------------------------------
:class:`FixedEffects` projects columns off one or two sets of fixed effects
(unit ``a``, period ``b``) with observation weights ``w``. For two sets the
projection is *exact* for any (unbalanced) panel by the Frisch-Waugh-Lovell
theorem on the small dimension: with ``M_A`` the within-unit (weighted)
demeaning and ``D_B`` the period indicators,

    M v = M_A v - M_A D_B d,    S d = D_B' W M_A v,
    S = D_B' W M_A D_B = diag(W_b) - C' diag(1 / W_a) C,

where ``C[a, b]`` is the total weight of cell ``(a, b)``. ``S`` is only
``T x T`` (the smaller of the two dimensions), so the cost is one pass over
the rows plus a ``T x T`` pseudo-inverse; ``rank(S) = T - (number of
connected components)`` gives the number of absorbed period parameters.
For a balanced unweighted panel this equals the one-step two-way
demeaning ``y - ybar_a - ybar_b + ybar``, which is then used directly.
Group sums are ``np.bincount`` passes over contiguous columns (no sparse
matrices, no dummies) for the handful of columns of a regression. (When
both dimensions exceed :data:`EXACT_LIMIT` levels, alternating projections
are used instead, to a tolerance of 1e-12; Guimaraes & Portugal 2010,
Gaure 2013.)

Cluster-robust variance (CRV1)
------------------------------
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

Wild cluster bootstrap (WCR)
----------------------------
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

Callaway & Sant'Anna (2021)
---------------------------
:func:`att_gt` and :func:`aggregate_att_gt` implement the group-time ATTs of
Callaway & Sant'Anna (2021, "Difference-in-Differences with multiple time
periods", J. Econometrics 225) for balanced panels, as R ``did`` does: for
each cell ``(g, t)`` the two-period estimator on ``dY = Y_t - Y_base`` (base
``g - 1 - anticipation`` for post periods; the previous period ("varying")
or ``g - 1`` ("universal") for pre periods) compares the cohort ``g`` with
the never-treated or the not-yet-treated units, by

* ``reg``: outcome regression (Heckman, Ichimura & Todd 1997),
* ``ipw``: normalised (Hajek) inverse probability weighting with a logit
  propensity score (Abadie 2005),
* ``dr``: the doubly robust estimator of Sant'Anna & Zhao (2020, "Doubly
  robust difference-in-differences estimators", J. Econometrics 219), eq.
  (3.1), logit propensity score and OLS outcome regression on the
  controls, with the influence function of their Proposition 3.1 including
  the estimation effects of both nuisance models (this is
  ``DRDID::drdid_panel``, what R ``did::att_gt(est_method = "dr")`` calls).

Standard errors come from the influence functions, ``se = sqrt(mean(psi^2) / n)``;
aggregations (simple, group, dynamic/event time, calendar) add the influence
function of the estimated cohort shares (the "wif" term of R did, applied
to the cell effects in ``O(n)`` without forming its ``n x cells`` matrix).
Without covariates the three estimators coincide and all cells are
computed by cohort blocks of a panel sorted by cohort (no per-cell logit or
regression): 10,000 units x 100 periods x 8 cohorts (792 cells) take about
0.15 s. R ``did`` drops the periods from the last cohort's launch on when
there are no never-treated units and ``control_group="notyettreated"``; so
does :func:`abkit.did.staggered` (and it says so in ``notes``).

With few units (20 markets is the normal case for a rollout) three things
change, in :mod:`abkit.did` (each checked by simulation in ``tests/test_did.py``):
CIs and p-values use ``t(G - 1)``; the uniform band uses the sup-t critical
value of a multivariate ``t(G - 1)`` (:func:`sup_t_critical_t`) rather than the
Rademacher multiplier bootstrap, whose band under-covers with 20 units; and the
pre-trend test is the joint Wald test of the event-time effects in a window of
leads (by default the 4 periods before launch, :data:`abkit.did.PRETREND_LEADS`;
never all pre-period cells, whose covariance is singular when they
outnumber the units), with the cluster-jackknife covariance
(:func:`dynamic_leave_one_out`, :func:`jackknife_vcov`) and Hotelling's
``F(q, G - q)`` (:func:`wald_test`).

Goodman-Bacon (2021)
--------------------
:func:`bacon_decomposition`: on a balanced panel with an absorbing binary
treatment, the TWFE coefficient is a weighted average of all 2x2 DiDs
between timing groups (Goodman-Bacon 2021, "Difference-in-differences with
variation in treatment timing", J. Econometrics 225, Theorem 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import linalg, sparse, stats

from ..errors import DataError

__all__ = [
    "EXACT_LIMIT", "FixedEffects", "LinearFit", "WildTest", "fit_linear", "wild_cluster_test",
    "wild_weights", "logit", "did_panel_2x2", "att_gt", "AttGt", "aggregate_att_gt", "Aggregation",
    "multiplier_bootstrap", "sup_t_critical", "sup_t_critical_t", "dynamic_leave_one_out", "jackknife_vcov",
    "bacon_decomposition", "Bacon", "codes_of",
]

EXACT_LIMIT = 5_000
"""Largest size of the smaller fixed-effect dimension solved exactly (else alternating projections)."""


def codes_of(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Factorize ``values``: integer codes 0..L-1 and the sorted unique labels."""
    labels, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64).ravel(), labels


def _indicator(codes: np.ndarray, n_levels: int) -> sparse.csr_matrix:
    n = codes.size
    return sparse.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, n_levels))


_NARROW = 16
"""Up to this many columns, per-level sums use one ``np.bincount`` per column (one pass, no
sparse matrix); wider blocks (the wild bootstrap's ``N x G`` residual matrix) use a sparse product."""


def group_sums(codes: np.ndarray, n_levels: int, M: np.ndarray, w: np.ndarray | None = None,
               indicator: sparse.csr_matrix | None = None) -> np.ndarray:
    """Per-level column sums of ``w * M``: an ``(n_levels, k)`` array (``(n_levels,)`` for a vector)."""
    one = M.ndim == 1
    M2 = M[:, None] if one else M
    k = M2.shape[1]
    if k <= _NARROW or indicator is None:
        out = np.empty((n_levels, k))
        for j in range(k):                     # loop over columns, never rows
            col = M2[:, j] if w is None else M2[:, j] * w
            out[:, j] = np.bincount(codes, weights=col, minlength=n_levels)
    else:
        out = np.asarray(indicator.T @ (M2 if w is None else M2 * w[:, None]))
    return out[:, 0] if one else out


# --------------------------------------------------------------------------
# Fixed effects
# --------------------------------------------------------------------------
_DENSE_CELLS = 20_000_000
"""Largest ``L_A x L_B`` for which the cell-weight matrix ``C`` is kept dense."""


class FixedEffects:
    """Weighted projection off zero, one or two sets of fixed effects.

    ``codes``: a list of integer code arrays (each ``0..L-1``, one entry per
    row); ``weights``: positive observation weights or None. Group sums are
    one ``np.bincount`` pass per column; the two-way projection is exact (see
    the module docstring) with a ``L_B x L_B`` pseudo-inverse, ``L_B`` the
    smaller dimension.
    """

    def __init__(self, codes: list[np.ndarray], n: int, weights: np.ndarray | None = None,
                 tol: float = 1e-12, maxiter: int = 100_000):
        if len(codes) > 2:
            raise DataError(f"at most two fixed-effect dimensions are supported; got {len(codes)}")
        self.n = int(n)
        self.weighted = weights is not None
        self.w = np.ones(self.n) if weights is None else np.asarray(weights, dtype=np.float64)
        self.codes = [np.asarray(c, dtype=np.intp) for c in codes]
        self.levels = [int(c.max()) + 1 if c.size else 0 for c in self.codes]
        self.tol, self.maxiter = tol, maxiter
        self._Dcache: dict[int, sparse.csr_matrix] = {}
        self._W = [np.bincount(c, weights=self.w if self.weighted else None, minlength=L).astype(np.float64)
                   for c, L in zip(self.codes, self.levels)]
        for W in self._W:
            if np.any(W <= 0):
                raise DataError("a fixed-effect level has no observations with positive weight")
        self.exact = True
        self._balanced = False
        self.rank = sum(self.levels) if len(codes) < 2 else None
        if len(codes) == 2:
            # order so that the second dimension (B) is the smaller one
            self._order = (1, 0) if self.levels[1] > self.levels[0] else (0, 1)
            ia, ib = self._order
            LA, LB = self.levels[ia], self.levels[ib]
            if LB > EXACT_LIMIT:
                self.exact = False
                self.rank = LA + LB - 1  # assumes a connected panel
            else:
                cell = self.codes[ia] * LB + self.codes[ib]
                if LA * LB <= _DENSE_CELLS:
                    C = np.bincount(cell, weights=self.w if self.weighted else None,
                                    minlength=LA * LB).astype(np.float64).reshape(LA, LB)
                    S = np.diag(self._W[ib]) - C.T @ (C / self._W[ia][:, None])
                else:
                    C = sparse.csr_matrix((self.w, (self.codes[ia], self.codes[ib])), shape=(LA, LB))
                    S = np.diag(self._W[ib]) - np.asarray((C.T @ sparse.diags(1.0 / self._W[ia]) @ C).todense())
                vals, vecs = np.linalg.eigh((S + S.T) / 2)
                keep = vals > vals.max() * 1e-10 if vals.size and vals.max() > 0 else np.zeros(vals.size, bool)
                self._S_pinv = (vecs[:, keep] / vals[keep]) @ vecs[:, keep].T
                self._C = C
                self.rank = LA + int(keep.sum())
                self.components = LB - int(keep.sum())
                # every cell observed once without weights: the projection is the classic two-way demeaning
                self._balanced = (not self.weighted and isinstance(C, np.ndarray) and self.n == LA * LB
                                  and bool(np.all(C == 1.0)))

    @property
    def n_dims(self) -> int:
        return len(self.codes)

    def _ind(self, i: int) -> sparse.csr_matrix:
        if i not in self._Dcache:
            self._Dcache[i] = _indicator(self.codes[i], self.levels[i])
        return self._Dcache[i]

    def sums(self, i: int, M: np.ndarray, weighted: bool = True) -> np.ndarray:
        """Per-level (weighted) column sums of ``M`` in dimension ``i``."""
        w = self.w if (weighted and self.weighted) else None
        ind = self._ind(i) if M.ndim == 2 and M.shape[1] > _NARROW else None
        return group_sums(self.codes[i], self.levels[i], M, w, ind)

    def _demean_one(self, i: int, M: np.ndarray) -> np.ndarray:
        means = self.sums(i, M) / self._W[i][:, None]
        return M - means[self.codes[i]]

    def _mean_of(self, i: int, v: np.ndarray) -> np.ndarray:
        """Per-level weighted means of a contiguous vector (one bincount)."""
        wv = v * self.w if self.weighted else v
        return np.bincount(self.codes[i], weights=wv, minlength=self.levels[i]) / self._W[i]

    def _resid_col(self, v: np.ndarray) -> np.ndarray:
        """The projection of one contiguous column: a few bincount passes and gathers, no 2-D temporaries."""
        if self.n_dims == 1:
            return v - self._mean_of(0, v)[self.codes[0]]
        ia, ib = self._order
        if self._balanced:
            return v - self._mean_of(ia, v)[self.codes[ia]] - self._mean_of(ib, v)[self.codes[ib]] + v.mean()
        if self.exact:
            r = v - self._mean_of(ia, v)[self.codes[ia]]
            wr = r * self.w if self.weighted else r
            d = self._S_pinv @ np.bincount(self.codes[ib], weights=wr, minlength=self.levels[ib])
            back = np.asarray(self._C @ d).ravel() / self._W[ia]
            return r - d[self.codes[ib]] + back[self.codes[ia]]
        out = v.copy()
        scale = max(float(np.abs(v).max(initial=0.0)), 1e-300)
        for _ in range(self.maxiter):
            prev = out
            out = out - self._mean_of(0, out)[self.codes[0]]
            out = out - self._mean_of(1, out)[self.codes[1]]
            if np.max(np.abs(out - prev), initial=0.0) / scale < self.tol:
                return out
        raise DataError(f"alternating projections did not converge to {self.tol} in "
                        f"{self.maxiter} iterations; the panel may be poorly connected")

    def resid(self, M: np.ndarray) -> np.ndarray:
        """Residuals of the weighted projection of the columns of ``M`` on the fixed effects.

        Narrow blocks (the regression's outcome and regressors) go column by
        column through contiguous vectors; wide blocks (the wild bootstrap's
        ``N x G`` matrix) through sparse indicator products.
        """
        M = np.asarray(M, dtype=np.float64)
        one = M.ndim == 1
        if one:
            M = M[:, None]
        if self.n_dims == 0:
            out = M.copy()
        elif M.shape[1] <= _NARROW:
            out = np.empty(M.shape, order="F")
            for j in range(M.shape[1]):                       # loop over columns, never rows
                out[:, j] = self._resid_col(np.ascontiguousarray(M[:, j]))
        elif self.n_dims == 1:
            out = self._demean_one(0, M)
        elif self.exact:
            ia, ib = self._order
            r = self._demean_one(ia, M)
            d = self._S_pinv @ self.sums(ib, r)                        # (LB, k)
            back = np.asarray(self._C @ d) / self._W[ia][:, None]      # (LA, k)
            out = r - d[self.codes[ib]] + back[self.codes[ia]]
        else:
            out = np.column_stack([self._resid_col(np.ascontiguousarray(M[:, j])) for j in range(M.shape[1])])
        return out[:, 0] if one else out

    def nested_in(self, cluster: np.ndarray | None) -> list[bool]:
        """Whether each fixed-effect dimension is nested in the clusters (every level in one cluster)."""
        if cluster is None:
            return [False] * self.n_dims
        out = []
        for c, L in zip(self.codes, self.levels):
            lo = np.full(L, np.iinfo(np.int64).max)
            hi = np.full(L, -1)
            np.minimum.at(lo, c, cluster)
            np.maximum.at(hi, c, cluster)
            out.append(bool(np.all(lo == hi)))
        return out

    def dof(self, cluster: np.ndarray | None) -> int:
        """Absorbed parameters counted in K, as R fixest's ``fixef.K = "nested"``.

        The rank of the fixed-effect space, less ``L - 1`` for every dimension
        with ``L`` levels that is nested in the clusters (its within-cluster
        variation is already accounted for by ``G / (G - 1)``; one parameter
        stays for the level it shares with the intercept).
        """
        if self.n_dims == 0:
            return 0
        nested = self.nested_in(cluster)
        total = int(self.rank)
        for i, is_nested in enumerate(nested):
            if is_nested:
                total -= self.levels[i] - 1
        return max(total, 0)


# --------------------------------------------------------------------------
# OLS / WLS with cluster-robust variance
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class LinearFit:
    """A (weighted) least-squares fit on fixed-effect-projected data."""

    coef: np.ndarray
    vcov: np.ndarray
    df: float                  # degrees of freedom of the t reference distribution
    n_obs: int
    n_clusters: int            # 0 when heteroskedasticity-robust (HC1)
    k: int                     # K of the small-sample correction
    correction: float          # the small-sample factor c
    resid: np.ndarray          # residuals in the sqrt(w)-scaled space
    Xt: np.ndarray             # sqrt(w) M X  (projected, scaled design)
    yt: np.ndarray             # sqrt(w) M y
    cluster: np.ndarray | None
    vcov_type: str

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.maximum(np.diag(self.vcov), 0.0))


def _cluster_sums(codes: np.ndarray, n_levels: int, M: np.ndarray) -> np.ndarray:
    """Per-cluster column sums of ``M`` (rows = clusters)."""
    M2 = M[:, None] if M.ndim == 1 else M
    ind = _indicator(codes, n_levels) if M2.shape[1] > _NARROW else None
    return group_sums(codes, n_levels, M2, None, ind)


def fit_linear(y: np.ndarray, X: np.ndarray, fe: FixedEffects, cluster: np.ndarray | None,
               names: list[str] | None = None) -> LinearFit:
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
    scale = np.sqrt(np.sum(X * X * fe.w[:, None], axis=0))       # size of each column before projection
    flat_mask = norms <= 1e-9 * np.maximum(scale, 1e-300)
    vals = np.linalg.eigvalsh(H / np.outer(norms, norms)) if not flat_mask.any() else np.zeros(1)
    if flat_mask.any() or vals.min() <= 1e-11:
        bad = names or [f"x{i}" for i in range(k)]
        flat = [b for b, f in zip(bad, flat_mask) if f]
        what = (f"column(s) {flat} have no variation left after removing the fixed effects"
                if flat else f"the regressors {bad} are collinear with each other or the fixed effects")
        raise DataError(f"cannot estimate the model: {what}; drop or change them")
    Hinv = np.linalg.inv(H)
    coef = Hinv @ (Xt.T @ yt)
    e = yt - Xt @ coef
    K = k + fe.dof(cluster)
    if cluster is not None:
        G = int(cluster.max()) + 1
        if G < 2:
            raise DataError("cluster-robust standard errors need at least 2 clusters; got 1")
        S = _cluster_sums(cluster, G, Xt * e[:, None])
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
    return LinearFit(coef=coef, vcov=(V + V.T) / 2, df=float(df), n_obs=n, n_clusters=G, k=K,
                     correction=c, resid=e, Xt=Xt, yt=yt, cluster=cluster, vcov_type=vtype)


def t_test(estimate: float, se: float, df: float, alpha: float = 0.05, null: float = 0.0):
    """Two-sided p-value and CI from Student's t (survival function)."""
    if not (np.isfinite(se) and se > 0):
        return np.nan, np.nan, np.nan
    q = stats.t.isf(alpha / 2, df)
    p = 2 * stats.t.sf(abs(estimate - null) / se, df)
    return float(min(p, 1.0)), estimate - q * se, estimate + q * se


def _quad_inv(b: np.ndarray, V: np.ndarray) -> float:
    """``b' V^+ b``: by Cholesky when ``V`` is well conditioned (``O(q^3 / 3)``), else the pseudo-inverse."""
    d = np.sqrt(np.maximum(np.diag(V), 0.0))
    if np.all(d > 0):
        R = V / np.outer(d, d)                               # correlation scale
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
    W = _quad_inv(b, V)
    if n_clusters and n_clusters > q:
        G = n_clusters
        F = W * (G - q) / (q * (G - 1))
        return W, F, float(G - q), float(stats.f.sf(F, q, G - q))
    return W, W, np.inf, float(stats.chi2.sf(W, q))


# --------------------------------------------------------------------------
# Wild cluster bootstrap
# --------------------------------------------------------------------------
_WEBB = np.array([-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)])


def wild_weights(n_clusters: int, reps: int, kind: str = "rademacher", seed=0) -> tuple[np.ndarray, bool]:
    """Cluster weights ``(G, B)``; Rademacher with ``2^G <= reps`` enumerates all sign vectors.

    Returns ``(V, enumerated)``.
    """
    G = int(n_clusters)
    if kind == "rademacher":
        if G <= 20 and 2 ** G <= reps:
            grid = ((np.arange(2 ** G)[None, :] >> np.arange(G)[:, None]) & 1).astype(np.float64)
            return 2.0 * grid - 1.0, True
        rng = np.random.default_rng(seed)
        return rng.integers(0, 2, size=(G, reps)).astype(np.float64) * 2.0 - 1.0, False
    if kind == "webb":
        rng = np.random.default_rng(seed)
        return _WEBB[rng.integers(0, 6, size=(G, reps))], False
    raise DataError(f"unknown wild bootstrap weights '{kind}'; use 'rademacher' or 'webb'")


@dataclass(frozen=True)
class WildTest:
    """Wild cluster (restricted) bootstrap test of ``beta_J = beta_0``."""

    statistic: float      # observed |t| (q = 1) or Wald W (q > 1), CRV1
    p_value: float
    ci_lower: float       # NaN for q > 1
    ci_upper: float
    reps: int
    weights: str
    enumerated: bool
    n_clusters: int


def wild_cluster_test(fit: LinearFit, fe: FixedEffects, J, beta0=None, reps: int = 9999,
                      weights: str = "rademacher", seed=0, alpha: float = 0.05,
                      ci: bool = True) -> WildTest:
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
        raise DataError(f"the wild cluster bootstrap with {G:,} clusters and {N:,} rows is too large; with "
                        "this many clusters the analytic CRV1 inference is reliable (wild=False)")
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
    U1 = MZ(XJ)                                   # (N, q)
    Ind = _indicator(cl, G)                       # (N, G)
    sw = np.sqrt(fe.w)

    def Qmat(u: np.ndarray) -> np.ndarray:
        # Q = sqrt(w) M_w (u 1_g / sqrt(w)): the projected per-cluster residual columns
        raw = Ind.multiply(u[:, None]).toarray()
        if fe.n_dims:
            raw = sw[:, None] * fe.resid(raw / sw[:, None])
        return raw

    V, enumerated = wild_weights(G, reps, weights, seed)
    B = V.shape[1]
    A = Hinv[J, :]                                 # (q, k)
    Zrows = Xt @ A.T                               # (N, q): z_i = x~_i' a_j
    IndT = Ind.T.tocsr()

    def pieces(Q: np.ndarray):
        S = Xt.T @ Q                               # (k, G)
        num = A @ S                                # (q, G): beta*_J - b_r,J = num v
        HhA = np.stack([np.asarray(IndT @ (Zrows[:, [j]] * Xt)) for j in range(q)])   # (q, G, k)
        R = np.stack([np.asarray(IndT @ (Zrows[:, [j]] * Q)) for j in range(q)])      # (q, G, G)
        R = R - HhA @ (Hinv @ S)                   # (q, G, G)
        return num @ V, np.einsum("jhg,gb->jhb", R, V)   # (q, B), (q, G, B)

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
    Vb = c * np.einsum("jhb,lhb->bjl", rb, rb)     # (B, q, q)
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


@dataclass(frozen=True)
class AttGt:
    """Group-time ATTs with their influence functions (``n_units x n_cells``)."""

    group: np.ndarray
    time: np.ndarray
    base: np.ndarray
    att: np.ndarray
    se: np.ndarray
    inf: np.ndarray
    n_units: int
    n_treated: np.ndarray
    n_control: np.ndarray
    unit_group: np.ndarray    # first-treated period per unit (0 = never)
    unit_weights: np.ndarray


def _cells(periods: np.ndarray, G: np.ndarray, base_period: str, anticipation: int,
           event_window: tuple[float, float] | None = None):
    """The (g, t) cells in R did's order: ``(g, t index, base index, is the universal reference)``.

    ``event_window = (lo, hi)`` keeps only the cells with ``lo <= t - g <= hi``.
    """
    T = periods.size
    lo, hi = (-np.inf, np.inf) if event_window is None else event_window
    out = []
    for g in np.unique(G[G > 0]):                      # loop over cohorts x periods, never rows
        pre_idx = np.nonzero(periods + anticipation < g)[0]
        if pre_idx.size == 0:
            continue
        gbase = int(pre_idx[-1])
        for ti in range(1 if base_period == "varying" else 0, T):
            if not lo <= periods[ti] - g <= hi:
                continue
            post = bool(periods[ti] >= g)
            bi = gbase if (post or base_period == "universal") else ti - 1
            out.append((float(g), ti, bi, base_period == "universal" and ti == gbase))
    return out


def _att_gt_unconditional(Y, periods, G, cells, control_group, anticipation, w):
    """All cells without covariates: ATT = difference of the weighted mean changes.

    Without covariates the ``reg``, ``ipw`` and ``dr`` estimators coincide
    (the propensity score is the cohort share, the outcome regression the
    comparison mean), with influence function (zero outside the cell)
    ``psi_i = n [D_i w_i (dY_i - mu_1) / W_1 - C_i w_i (dY_i - mu_0) / W_0]``,
    ``W_1, W_0`` the total weights of the cohort and of its comparison units.

    Units are sorted by cohort (never treated last) once, so that every
    cell's cohort is one contiguous block of rows and its comparison units
    one or two blocks (the never treated, plus for not-yet-treated controls
    the later cohorts). Cells that share the cohort and the comparison
    blocks (all cells of a cohort with never-treated controls) are computed
    together as one ``rows x cells`` block, written straight into the
    callers' unit order: the Python loop runs over cohorts x comparison
    sets, never over units or single cells, and each unit's influence is
    touched only in the cells it belongs to.
    """
    n = Y.shape[0]
    C = len(cells)
    key = np.where(G > 0, G, np.inf)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    Ys = Y[order]
    ws = w[order]
    never_start = int(np.searchsorted(ks, np.inf, side="left"))
    att = np.zeros(C)
    inf = np.zeros((n, C), order="F")
    n_tr = np.zeros(C, dtype=np.int64)
    n_co = np.zeros(C, dtype=np.int64)
    blocks: dict[tuple, list[int]] = {}
    for j, (g, ti, bi, is_ref) in enumerate(cells):      # group the cells by (cohort rows, comparison rows)
        if is_ref:
            continue
        a, b = int(np.searchsorted(ks, g, "left")), int(np.searchsorted(ks, g, "right"))
        if control_group == "never_treated":
            spans = ((never_start, n),)
        else:
            h = int(np.searchsorted(ks, periods[max(ti, bi)] + anticipation, "right"))
            spans = ((h, n),) if h >= b else ((h, a), (b, n))      # later cohorts and never, minus g
        spans = tuple((lo, hi) for lo, hi in spans if hi > lo)
        if not spans:
            raise DataError(f"no comparison units for cohort {g:g} in period {periods[ti]:g} with "
                            f"control_group='{control_group}'; use 'not_yet_treated' or drop the cell")
        blocks.setdefault((a, b, spans), []).append(j)
    ti_all = np.array([c[1] for c in cells], dtype=np.intp)
    bi_all = np.array([c[2] for c in cells], dtype=np.intp)
    for (a, b, spans), js in blocks.items():              # one vectorized block per cohort x comparison set
        js = np.asarray(js, dtype=np.intp)
        tcol, bcol = ti_all[js], bi_all[js]
        YT = Ys[a:b]
        dT = YT[:, tcol] - YT[:, bcol]                    # (cohort rows, cells)
        wT = ws[a:b]
        W1 = wT.sum()
        mu1 = (wT @ dT) / W1
        parts = []
        W0 = 0.0
        s0 = np.zeros(js.size)
        for lo, hi in spans:
            YC = Ys[lo:hi]
            dC = YC[:, tcol] - YC[:, bcol]
            wC = ws[lo:hi]
            W0 += wC.sum()
            s0 += wC @ dC
            parts.append((lo, hi, wC, dC))
        mu0 = s0 / W0
        att[js] = mu1 - mu0
        # written straight into the callers' unit order (rows order[a:b] of the sorted panel)
        inf[np.ix_(order[a:b], js)] = (n / W1) * wT[:, None] * (dT - mu1[None, :])
        for lo, hi, wC, dC in parts:
            inf[np.ix_(order[lo:hi], js)] = (-n / W0) * wC[:, None] * (dC - mu0[None, :])
        n_tr[js] = b - a
        n_co[js] = sum(hi - lo for lo, hi in spans)
    return att, inf, n_tr, n_co


def att_gt(Y: np.ndarray, periods: np.ndarray, G: np.ndarray, X: np.ndarray | None = None,
           control_group: str = "never_treated", method: str = "dr", base_period: str = "varying",
           anticipation: int = 0, weights: np.ndarray | None = None,
           event_window: tuple[float, float] | None = None) -> AttGt:
    """Callaway & Sant'Anna (2021) ATT(g, t) on a balanced panel.

    ``Y``: ``(n_units, T)`` outcomes at the sorted ``periods``; ``G``:
    first-treated period per unit (0 = never treated; units treated in or
    before the first period must have been removed); ``X``: ``(n_units, T, p)``
    covariates or None (the covariates of the base period enter each cell).
    ``control_group``: ``"never_treated"`` (``G == 0``) or ``"not_yet_treated"``
    (``G == 0`` or ``G > max(t, base) + anticipation``, excluding ``g``).
    The influence function of each cell is scaled by ``n / n_cell`` and set to
    zero outside the cell, as in R did, so ``se = sqrt(mean(psi^2)/n)``.
    Without covariates all cells are computed at once (``reg = ipw = dr``,
    see :func:`_att_gt_unconditional`); with covariates cell by cell with
    :func:`did_panel_2x2`. ``event_window = (lo, hi)``: estimate only the cells
    with event time ``lo <= t - g <= hi`` (the event-time aggregation of those
    event times is unchanged; used by the leave-one-unit-out refits of the
    pre-trend test).
    """
    n, T = Y.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    G = np.asarray(G, dtype=np.float64)
    cells = _cells(periods, G, base_period, anticipation, event_window)
    if not cells and event_window is not None:
        raise DataError(f"no group-time cell has an event time in {event_window[0]:g}..{event_window[1]:g}")
    if not cells:
        raise DataError("no group-time cell can be estimated: every treated cohort starts in the first "
                        "period, so it has no pre-treatment period")
    if X is None:
        att, inf, n_tr, n_co = _att_gt_unconditional(Y, periods, G, cells, control_group, anticipation, w)
    else:
        C = len(cells)
        att = np.zeros(C)
        inf = np.zeros((n, C))
        n_tr = np.zeros(C, dtype=np.int64)
        n_co = np.zeros(C, dtype=np.int64)
        never = G == 0
        for j, (g, ti, bi, is_ref) in enumerate(cells):       # loop over cells, not rows
            if is_ref:
                continue
            if control_group == "never_treated":
                ctrl = never
            else:
                horizon = periods[max(ti, bi)] + anticipation
                ctrl = never | ((G > horizon) & (G != g))
            treat = G == g
            sel = treat | ctrl
            n1 = int(sel.sum())
            if not ctrl.any():
                raise DataError(f"no comparison units for cohort {g:g} in period {periods[ti]:g} with "
                                f"control_group='{control_group}'; use 'not_yet_treated' or drop the cell")
            dy = Y[sel, ti] - Y[sel, bi]
            D = treat[sel].astype(np.float64)
            Xc = np.column_stack([np.ones(n1), X[sel, bi, :]])
            att[j], psi = did_panel_2x2(dy, D, Xc, method, w[sel])
            inf[sel, j] = (n / n1) * psi
            n_tr[j], n_co[j] = int(treat.sum()), int(ctrl.sum())
    se = np.sqrt(np.einsum("nc,nc->c", inf, inf) / n / n)
    se[~np.any(inf != 0, axis=0)] = np.nan
    return AttGt(group=np.array([c[0] for c in cells]), time=periods[[c[1] for c in cells]].astype(np.float64),
                 base=periods[[c[2] for c in cells]].astype(np.float64), att=att, se=se, inf=inf,
                 n_units=n, n_treated=n_tr, n_control=n_co, unit_group=G, unit_weights=w)


@dataclass(frozen=True)
class Aggregation:
    """An aggregation of ATT(g, t): per-row effects and the overall effect, with influence functions."""

    kind: str
    labels: np.ndarray        # event time / group / calendar period (empty for "simple")
    att: np.ndarray
    se: np.ndarray
    inf: np.ndarray           # (n, rows)
    overall_att: float
    overall_se: float
    overall_inf: np.ndarray   # (n,)
    reference: np.ndarray | None = None   # per row: the universal base period's reference (0 by construction)

    @property
    def is_reference(self) -> np.ndarray:
        """Rows fixed at 0 by construction (``e = -1 - anticipation`` with a universal base period)."""
        return np.zeros(self.att.size, bool) if self.reference is None else self.reference


def _wif(keep: np.ndarray, pg: np.ndarray, w: np.ndarray, unit_group: np.ndarray,
         cell_group: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``wif @ a``: the estimated weights' influence function applied to the cell effects ``a``.

    With ``s = sum_j pg_j`` over the kept cells and ``ind_ij = w_i 1{G_i = g_j} - pg_j``, the
    influence function of the weights ``pg_j / s`` is ``wif_ij = ind_ij / s - (sum_k ind_ik) pg_j / s^2``
    (R did's "wif"). Its product with ``a`` needs, per unit, only the sum of ``a`` and the number
    of kept cells of the unit's own group: ``O(n + cells)``, no ``n x cells`` matrix.
    """
    pk, gk = pg[keep], cell_group[keep]
    s = pk.sum()
    pa = float(pk @ a)
    groups, inv = np.unique(gk, return_inverse=True)
    A = np.bincount(inv.ravel(), weights=a, minlength=groups.size)
    m = np.bincount(inv.ravel(), minlength=groups.size).astype(np.float64)
    pos = np.minimum(np.searchsorted(groups, unit_group), groups.size - 1)
    hit = groups[pos] == unit_group
    ind_a = w * np.where(hit, A[pos], 0.0) - pa
    ind_sum = w * np.where(hit, m[pos], 0.0) - s
    return ind_a / s - ind_sum * (pa / s ** 2)


def _combine(att, inf, keep, wts, wif: bool = False, pg=None, w=None, ug=None, cg=None):
    """Weighted combination of cells ``keep``: the estimate and its influence function (plus, with
    ``wif``, the influence of the estimated weights)."""
    est = float(att[keep] @ wts)
    psi = inf[:, keep] @ wts
    if wif:
        psi = psi + _wif(keep, pg, w, ug, cg, att[keep])
    return est, psi


def aggregate_att_gt(res: AttGt, kind: str = "simple", min_e: float = -np.inf, max_e: float = np.inf,
                     balance_e: int | None = None) -> Aggregation:
    """Aggregate ATT(g, t) as R ``did::aggte`` (Callaway & Sant'Anna 2021, sec. 3).

    Cohort shares ``pg = mean(w 1{G = g})``;

    * ``simple``: post cells (``t >= g``), weights ``pg``;
    * ``group``: ``theta(g)`` = mean over the post cells of ``g``; overall =
      ``sum_g pg theta(g) / sum pg``;
    * ``dynamic``: ``theta(e)`` = ``pg``-weighted mean of cells with
      ``t - g = e``; overall = mean of ``theta(e)`` over ``e >= 0``;
    * ``calendar``: ``theta(t)`` = ``pg``-weighted mean of post cells in
      period ``t``; overall = mean over ``t``.

    Influence functions are the weighted cell influence functions plus the
    influence of the estimated shares (``_wif``) wherever the weights are
    estimated shares; ``se = sqrt(mean(psi^2) / n)``.
    """
    n = res.n_units
    w = res.unit_weights
    ug = res.unit_group
    cg, ct, att, inf = res.group, res.time, res.att, res.inf
    glist = np.unique(cg)
    pg_by_group = np.array([np.mean(w * (ug == g)) for g in glist])
    pgg = pg_by_group[np.searchsorted(glist, cg)]
    e_all = ct - cg
    post = (cg <= ct) & (ct <= cg + max_e)

    def se_of(psi):
        return float(np.sqrt(np.mean(psi ** 2) / n))

    labels, atts, psis = [], [], []
    if kind == "simple":
        keep = np.nonzero(post)[0]
        wts = pgg[keep] / pgg[keep].sum()
        est, psi = _combine(att, inf, keep, wts, True, pgg, w, ug, cg)
        return Aggregation(kind, np.array([]), np.array([]), np.array([]), np.zeros((n, 0)), est,
                           se_of(psi), psi)
    if kind == "group":
        for g in glist:
            keep = np.nonzero((cg == g) & post)[0]
            if keep.size == 0:
                continue
            wts = pgg[keep] / pgg[keep].sum()
            est, psi = _combine(att, inf, keep, wts)
            labels.append(g), atts.append(est), psis.append(psi)
        A = np.array(atts)
        Pm = np.column_stack(psis)
        pgl = pg_by_group[np.searchsorted(glist, np.array(labels))]
        idx = np.arange(len(labels))
        wts = pgl / pgl.sum()
        est, psi = _combine(A, Pm, idx, wts, True, pgl, w, ug, np.array(labels))
    elif kind == "dynamic":
        if balance_e is not None:
            # keep cohorts observed for at least balance_e periods after treatment
            last = ct.max()
            ok_groups = glist[glist + balance_e <= last]
            mask = np.isin(cg, ok_groups) & (e_all <= balance_e)
        else:
            mask = np.ones(cg.size, bool)
        mask &= (e_all >= min_e) & (e_all <= max_e)
        is_ref_cell = res.time == res.base          # the universal base period's reference cells
        refs = []
        for e in np.unique(e_all[mask]):
            keep = np.nonzero(mask & (e_all == e))[0]
            wts = pgg[keep] / pgg[keep].sum()
            est, psi = _combine(att, inf, keep, wts, True, pgg, w, ug, cg)
            labels.append(e), atts.append(est), psis.append(psi)
            refs.append(bool(np.all(is_ref_cell[keep])))
        A = np.array(atts)
        Pm = np.column_stack(psis)
        idx = np.nonzero(np.array(labels) >= 0)[0]
        if idx.size == 0:
            raise DataError("no post-treatment event time in the requested window")
        est, psi = _combine(A, Pm, idx, np.full(idx.size, 1.0 / idx.size))
    elif kind == "calendar":
        for t in np.unique(ct[ct >= cg.min()]):
            keep = np.nonzero((ct == t) & post)[0]
            if keep.size == 0:
                continue
            wts = pgg[keep] / pgg[keep].sum()
            est, psi = _combine(att, inf, keep, wts, True, pgg, w, ug, cg)
            labels.append(t), atts.append(est), psis.append(psi)
        A = np.array(atts)
        Pm = np.column_stack(psis)
        idx = np.arange(len(labels))
        est, psi = _combine(A, Pm, idx, np.full(idx.size, 1.0 / idx.size))
    else:
        raise DataError(f"unknown aggregation '{kind}'; use 'simple', 'group', 'dynamic' or 'calendar'")
    se_rows = np.sqrt(np.mean(Pm ** 2, axis=0) / n)
    reference = np.array(refs, bool) if kind == "dynamic" else np.zeros(len(labels), bool)
    return Aggregation(kind, np.array(labels, dtype=np.float64), A, se_rows, Pm, est, se_of(psi), psi, reference)


def multiplier_bootstrap(inf: np.ndarray, se: np.ndarray, reps: int = 999, weights: str = "rademacher",
                         seed=0, cluster: np.ndarray | None = None) -> np.ndarray:
    """Bootstrap t statistics ``(reps, k)`` of estimates with influence functions ``inf`` (n x k).

    ``theta*_b - theta = mean(v_i psi_i)`` with i.i.d. multiplier weights
    ``v`` (Rademacher or Webb) per unit, or per cluster with the influence
    functions summed within clusters (Callaway & Sant'Anna 2021, Algorithm 1);
    the statistics are standardised by the analytic ``se``.
    """
    n = inf.shape[0]
    if cluster is not None:
        G = int(cluster.max()) + 1
        inf = _cluster_sums(cluster, G, inf)
    m = inf.shape[0]
    if weights not in ("rademacher", "webb"):
        raise DataError(f"unknown multiplier weights '{weights}'; use 'rademacher' or 'webb'")
    rng = np.random.default_rng(seed)
    out = np.empty((reps, inf.shape[1]))
    step = max(1, 2_000_000 // max(m, 1))
    for start in range(0, reps, step):       # chunks of draws (not rows), bounded memory
        b = min(step, reps - start)
        if weights == "webb":
            v = _WEBB[rng.integers(0, 6, size=(m, b))]
        else:
            v = rng.integers(0, 2, size=(m, b)) * 2.0 - 1.0
        out[start:start + b] = (v.T @ inf) / n
    return out / se[None, :]


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
    for start in range(0, draws, step):         # blocks of draws (never rows), bounded memory
        b = min(step, draws - start)
        z = rng.standard_normal((b, k)) @ L.T
        if np.isfinite(df):
            z = z / np.sqrt(rng.chisquare(df, size=(b, 1)) / df)
        sup[start:start + b] = np.max(np.abs(z), axis=1)
    return float(np.quantile(sup, 1 - alpha))


def dynamic_leave_one_out(Y: np.ndarray, periods: np.ndarray, G: np.ndarray, event_times: np.ndarray,
                          X: np.ndarray | None = None, *, control_group: str = "never_treated",
                          method: str = "dr", base_period: str = "varying", anticipation: int = 0,
                          weights: np.ndarray | None = None) -> np.ndarray:
    """Event-time effects ``theta(e)``, ``e`` in ``event_times``, re-estimated without each unit in turn.

    Returns an ``(n_units, k)`` array: row ``i`` is the dynamic aggregation
    of :func:`att_gt` on all units but ``i`` (the leave-one-cluster-out
    estimates behind the cluster jackknife, :func:`jackknife_vcov`). Only the
    cells with event times in the window are re-estimated (``event_window``),
    so ``n`` refits cost about ``n`` times the cells of the window. Raises
    :class:`~abkit.errors.DataError` when leaving a unit out removes an event
    time or the comparison group.
    """
    n = Y.shape[0]
    ev = np.asarray(event_times, dtype=np.float64)
    lo, hi = float(ev.min()), max(float(ev.max()), 0.0)     # the dynamic aggregation needs e = 0
    out = np.empty((n, ev.size))
    keep = np.ones(n, bool)
    for i in range(n):                               # loop over units (the clusters): n refits
        keep[i] = False
        cells = att_gt(Y[keep], periods, G[keep], None if X is None else X[keep], control_group=control_group,
                       method=method, base_period=base_period, anticipation=anticipation,
                       weights=None if weights is None else weights[keep], event_window=(lo, hi))
        agg = aggregate_att_gt(cells, "dynamic", min_e=lo, max_e=hi)
        pos = np.searchsorted(agg.labels, ev)
        if np.any(pos >= agg.labels.size) or np.any(agg.labels[np.minimum(pos, agg.labels.size - 1)] != ev):
            raise DataError(f"without unit {i} some event time in {lo:g}..{hi:g} has no cohort left")
        out[i] = agg.att[pos]
        keep[i] = True
    return out


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


# --------------------------------------------------------------------------
# Goodman-Bacon decomposition
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Bacon:
    """The 2x2 comparisons of the Goodman-Bacon decomposition."""

    treated: np.ndarray       # timing (first-treated period) of the treated group; inf = never
    control: np.ndarray       # timing of the comparison group; inf = never, -inf = always
    kind: np.ndarray          # "treated vs never", "earlier vs later", "later vs earlier", ...
    estimate: np.ndarray
    weight: np.ndarray
    twfe: float               # the TWFE coefficient the weights reproduce


def bacon_decomposition(Y: np.ndarray, periods: np.ndarray, first: np.ndarray) -> Bacon:
    """Goodman-Bacon (2021) decomposition of the TWFE DiD coefficient.

    ``Y``: balanced ``(n_units, T)`` outcomes; ``first``: first treated period
    per unit (``inf`` for never treated; ``<= periods[0]`` = always treated).
    Timing groups ``k`` with shares ``n_k`` and treated fraction of periods
    ``Dbar_k``; for every pair ``k`` earlier than ``l`` (the never treated have
    ``Dbar = 0``, the always treated ``Dbar = 1``), with ``n_kl = n_k / (n_k + n_l)``:

    * ``k`` vs ``l`` before ``l`` is treated, weight
      ``((n_k + n_l)(1 - Dbar_l))^2 n_kl (1 - n_kl) (Dbar_k - Dbar_l)(1 - Dbar_k) / (1 - Dbar_l)^2``;
    * ``l`` vs ``k`` after ``k`` is treated, weight
      ``((n_k + n_l) Dbar_k)^2 n_kl (1 - n_kl) Dbar_l (Dbar_k - Dbar_l) / Dbar_k^2``,

    each divided by the variance of the two-way demeaned treatment
    ``V^D = mean(D~^2)`` (Theorem 1). The weights sum to one and
    ``sum(weight * estimate)`` equals the TWFE coefficient exactly.
    """
    n, T = Y.shape
    # every unit of a timing group has the same treatment path, so all of it is computed per group;
    # the only pass over the outcomes is one (groups x units) @ (units x T) product
    timing = np.where(first <= periods[0], -np.inf, np.where(first > periods[-1], np.inf, first))
    tk, inv = np.unique(timing, return_inverse=True)
    inv = inv.ravel()
    ng = np.bincount(inv, minlength=tk.size).astype(np.float64)
    share = ng / n
    onehot = (inv[None, :] == np.arange(tk.size)[:, None]).astype(np.float64)
    ybar = (onehot @ Y) / ng[:, None]                                # (groups, T)
    Dg = (periods[None, :] >= tk[:, None]).astype(np.float64)       # (groups, T)
    Dbar = Dg.mean(axis=1)
    col = share @ Dg
    Dt = Dg - Dbar[:, None] - col[None, :] + share @ Dbar            # two-way demeaned treatment
    SDD = float(ng @ np.sum(Dt ** 2, axis=1))
    VD = SDD / (n * T)
    if VD <= 1e-15:
        raise DataError("the treatment does not vary within units and periods; nothing to decompose")
    beta = float(np.sum(Dt * ybar * ng[:, None]) / SDD)
    out = []
    for a in range(tk.size):
        for b in range(tk.size):
            if not Dbar[a] > Dbar[b]:
                continue
            k, l = a, b            # k treated earlier (larger Dbar)
            nk, nl = share[k], share[l]
            nkl = nk / (nk + nl)
            # (1) k treated, l control, window before l's treatment
            if Dbar[k] < 1 and Dbar[l] < 1:
                win = periods < tk[l]
                pre = win & (periods < tk[k])
                postk = win & (periods >= tk[k])
                if pre.any() and postk.any():
                    est = ((ybar[k, postk].mean() - ybar[k, pre].mean())
                           - (ybar[l, postk].mean() - ybar[l, pre].mean()))
                    wt = (((nk + nl) * (1 - Dbar[l])) ** 2 * nkl * (1 - nkl)
                          * (Dbar[k] - Dbar[l]) * (1 - Dbar[k]) / (1 - Dbar[l]) ** 2) / VD
                    kind = "treated vs never treated" if np.isposinf(tk[l]) else "earlier vs later treated"
                    out.append((tk[k], tk[l], kind, est, wt))
            # (2) l treated, k (already treated) control, window after k's treatment
            if Dbar[l] > 0:
                win = periods >= tk[k]
                pre = win & (periods < tk[l])
                postl = win & (periods >= tk[l])
                if pre.any() and postl.any():
                    est = ((ybar[l, postl].mean() - ybar[l, pre].mean())
                           - (ybar[k, postl].mean() - ybar[k, pre].mean()))
                    wt = (((nk + nl) * Dbar[k]) ** 2 * nkl * (1 - nkl)
                          * Dbar[l] * (Dbar[k] - Dbar[l]) / Dbar[k] ** 2) / VD
                    kind = ("later vs always treated" if np.isneginf(tk[k])
                            else "later vs earlier treated")
                    out.append((tk[l], tk[k], kind, est, wt))
    if not out:
        raise DataError("no 2x2 comparison exists (a single timing group)")
    return Bacon(treated=np.array([o[0] for o in out], dtype=np.float64),
                 control=np.array([o[1] for o in out], dtype=np.float64),
                 kind=np.array([o[2] for o in out], dtype=object),
                 estimate=np.array([o[3] for o in out]), weight=np.array([o[4] for o in out]), twfe=beta)
