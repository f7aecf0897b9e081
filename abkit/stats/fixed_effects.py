"""Absorbed fixed effects: the weighted projection off one or two sets of fixed effects.

Pure numpy (no pandas, no I/O): integer codes ``0..L-1`` and float64 arrays in, arrays out.

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
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from ..errors import DataError

__all__ = ["EXACT_LIMIT", "NARROW_COLUMNS", "FixedEffects", "codes_of", "group_sums", "indicator_matrix"]


EXACT_LIMIT = 5_000
"""Largest size of the smaller fixed-effect dimension solved exactly (else alternating projections)."""


def codes_of(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Factorize ``values``: integer codes 0..L-1 and the sorted unique labels."""
    labels, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64).ravel(), labels


def indicator_matrix(codes: np.ndarray, n_levels: int) -> sparse.csr_matrix:
    n = codes.size
    return sparse.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, n_levels))


NARROW_COLUMNS = 16
"""Up to this many columns, per-level sums use one ``np.bincount`` per column (one pass, no
sparse matrix); wider blocks (the wild bootstrap's ``N x G`` residual matrix) use a sparse product."""


def group_sums(
    codes: np.ndarray,
    n_levels: int,
    M: np.ndarray,
    w: np.ndarray | None = None,
    indicator: sparse.csr_matrix | None = None,
) -> np.ndarray:
    """Per-level column sums of ``w * M``: an ``(n_levels, k)`` array (``(n_levels,)`` for a vector)."""
    one = M.ndim == 1
    M2 = M[:, None] if one else M
    k = M2.shape[1]
    if k <= NARROW_COLUMNS or indicator is None:
        out = np.empty((n_levels, k))
        for j in range(k):  # loop over columns, never rows
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

    def __init__(
        self,
        codes: list[np.ndarray],
        n: int,
        weights: np.ndarray | None = None,
        tol: float = 1e-12,
        maxiter: int = 100_000,
    ):
        if len(codes) > 2:
            raise DataError(f"at most two fixed-effect dimensions are supported; got {len(codes)}")
        self.n = int(n)
        self.weighted = weights is not None
        self.w = np.ones(self.n) if weights is None else np.asarray(weights, dtype=np.float64)
        self.codes = [np.asarray(c, dtype=np.intp) for c in codes]
        self.levels = [int(c.max()) + 1 if c.size else 0 for c in self.codes]
        self.tol, self.maxiter = tol, maxiter
        self._Dcache: dict[int, sparse.csr_matrix] = {}
        self._W = [
            np.bincount(c, weights=self.w if self.weighted else None, minlength=L).astype(np.float64)
            for c, L in zip(self.codes, self.levels)
        ]
        for W in self._W:
            if np.any(W <= 0):
                raise DataError("a fixed-effect level has no observations with positive weight")
        self.exact = True
        self._balanced = False
        self.rank = sum(self.levels)  # zero or one dimension; two dimensions: set below
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
                    C = (
                        np.bincount(cell, weights=self.w if self.weighted else None, minlength=LA * LB)
                        .astype(np.float64)
                        .reshape(LA, LB)
                    )
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
                self._balanced = (
                    not self.weighted and isinstance(C, np.ndarray) and self.n == LA * LB and bool(np.all(C == 1.0))
                )

    @property
    def n_dims(self) -> int:
        return len(self.codes)

    def _ind(self, i: int) -> sparse.csr_matrix:
        if i not in self._Dcache:
            self._Dcache[i] = indicator_matrix(self.codes[i], self.levels[i])
        return self._Dcache[i]

    def sums(self, i: int, M: np.ndarray, weighted: bool = True) -> np.ndarray:
        """Per-level (weighted) column sums of ``M`` in dimension ``i``."""
        w = self.w if (weighted and self.weighted) else None
        ind = self._ind(i) if M.ndim == 2 and M.shape[1] > NARROW_COLUMNS else None
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
        raise DataError(
            f"alternating projections did not converge to {self.tol} in "
            f"{self.maxiter} iterations; the panel may be poorly connected"
        )

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
        elif M.shape[1] <= NARROW_COLUMNS:
            out = np.empty(M.shape, order="F")
            for j in range(M.shape[1]):  # loop over columns, never rows
                out[:, j] = self._resid_col(np.ascontiguousarray(M[:, j]))
        elif self.n_dims == 1:
            out = self._demean_one(0, M)
        elif self.exact:
            ia, ib = self._order
            r = self._demean_one(ia, M)
            d = self._S_pinv @ self.sums(ib, r)  # (LB, k)
            back = np.asarray(self._C @ d) / self._W[ia][:, None]  # (LA, k)
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
