"""Randomization inference over the assignment of units to treatment (which units launched, and when).

Under Fisher's sharp null of no effect on any unit the outcomes are what they are whatever the
assignment, so giving the observed treatment paths (launch periods) to other units and
re-estimating yields the null distribution of the estimate, provided every assignment that keeps
the cohort sizes was as likely as the one observed (units exchangeable). The test does not rest on
a cluster-robust variance, which is what breaks down with very few treated clusters: with one
treated market among 20, CRV1 t(G - 1) rejects a true null about 60% of the time at the 5% level
and the wild cluster bootstrap almost never (MacKinnon & Webb 2017, "Wild bootstrap inference for
wildly different cluster sizes", J. Applied Econometrics; 2018, "The wild bootstrap for few
(treated) clusters", Econometrics Journal). Randomization inference for DiD with few policy
changes: Conley & Taber (2011, REStat); its limits: MacKinnon & Webb (2020, "Randomization
inference for difference-in-differences with few treated clusters", J. Econometrics 218) - exact
when units are exchangeable, over- or under-rejecting when the treated units are much larger or
noisier than the others.

* Assignments: permutations of the units' treatment labels (cohorts, or whole treatment paths)
  that keep the number of units per label. There are ``n! / prod_k n_k!`` distinct ones
  (:func:`count_assignments`); when that is at most ``reps`` all are enumerated (exact), else
  ``reps`` are drawn at random (seeded) besides the observed one (:func:`assignments`).
* Two-sided p-value on ``|estimate|``: exact, ``#{a : |T_a| >= |T_obs|} / A`` over all ``A``
  assignments (the observed one included); by random draws, ``(1 + #{b : |T_b| >= |T_obs|}) /
  (B + 1)`` (:func:`randomization_p_value`). The smallest attainable p-value is ``1 / A``: with one
  launched unit among 20 it is 0.05, so such a test can never reject at 5%.
* :func:`twfe_coefficients`: the TWFE coefficient of every assignment at once; the fixed-effect
  projection of the outcome is computed once and the projected treatment columns of a block of
  assignments with one wide projection (Frisch-Waugh-Lovell).
* :func:`twfe_coefficients_balanced`: the same on a balanced unweighted panel in ``O(A n)``: the
  numerator ``D_a' r`` is a sum of per-unit path totals of the residual ``r``, and the denominator
  ``D~_a' D~_a`` does not change when whole unit paths are permuted (row, column and grand totals
  of ``D`` are kept), less the covariate part ``(Z~' D_a)' (Z~' Z~)^{-1} (Z~' D_a)``, again a sum of
  per-unit path totals.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ..errors import DataError
from .fixed_effects import FixedEffects

__all__ = [
    "count_assignments",
    "assignments",
    "randomization_p_value",
    "twfe_coefficients",
    "twfe_coefficients_balanced",
    "ENUMERATION_LIMIT",
]

ENUMERATION_LIMIT = 1_000_000
"""Largest number of distinct assignments ever enumerated (beyond it, random draws)."""

_BLOCK_CELLS = 20_000_000
"""Largest ``rows x assignments`` block of projected treatment columns held at once."""


def count_assignments(labels: np.ndarray) -> int:
    """Distinct assignments of ``labels`` to units that keep the count of each label: ``n! / prod n_k!``."""
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    total, left = 1, int(counts.sum())
    for c in counts:
        total *= math.comb(left, int(c))
        left -= int(c)
    return total


def _enumerate(codes: np.ndarray) -> np.ndarray:
    """All distinct arrangements of the integer ``codes`` (each ``0..K-1``): an ``(A, n)`` array."""
    n = codes.size
    counts = np.bincount(codes)
    rows = [np.full(n, -1, dtype=np.int64)]
    for k, c in enumerate(counts[:-1]):
        grown = []
        for row in rows:  # a loop over assignments, never over data rows
            free = np.flatnonzero(row < 0)
            for chosen in itertools.combinations(free, int(c)):
                new = row.copy()
                new[list(chosen)] = k
                grown.append(new)
        rows = grown
    out = np.array(rows)
    out[out < 0] = counts.size - 1
    return out


def assignments(labels: np.ndarray, reps: int = 9999, seed=0) -> tuple[np.ndarray, bool]:
    """Assignments of ``labels`` to the units: ``(index array (A, n), exact)``.

    Row ``a`` gives, for each unit ``i``, the position ``j`` whose label unit ``i`` receives
    (``labels[index[a]]`` is the permuted label vector). Exact (every distinct assignment once,
    the observed one among them) when there are at most ``reps`` of them; otherwise the observed
    assignment first and ``reps`` seeded random permutations.
    """
    labels = np.asarray(labels)
    n = labels.size
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 1:
        raise DataError(f"reps must be a positive whole number of assignments; got {reps!r}")
    uniq, codes = np.unique(labels, return_inverse=True)
    codes = codes.ravel()
    total = count_assignments(labels)
    if total <= min(reps, ENUMERATION_LIMIT):
        arrangement = _enumerate(codes)  # (A, n) label codes
        # turn label codes into positions: the j-th unit with code k gets the j-th position holding k
        slots = [np.flatnonzero(codes == k) for k in range(uniq.size)]
        index = np.empty_like(arrangement)
        for k, pos in enumerate(slots):  # a loop over labels
            mask = arrangement == k
            index[mask] = np.tile(pos, arrangement.shape[0])
        return index, True
    rng = np.random.default_rng(seed)
    kind = np.int32 if n < 2**31 else np.int64  # half the memory of (reps + 1) x n positions
    index = np.empty((int(reps) + 1, n), dtype=kind)
    index[:] = np.arange(n, dtype=kind)
    rng.permuted(index, axis=1, out=index)
    index[0] = np.arange(n, dtype=kind)  # the observed assignment
    return index, False


def randomization_p_value(observed: float, null: np.ndarray, exact: bool) -> float:
    """Two-sided p-value of ``observed`` against the estimates of the other assignments.

    ``null``: the estimates of all assignments, the observed one first (random draws) or among
    them (exact). Ties count against the observed (``>=``, with a relative tolerance of 1e-12).
    """
    null = np.asarray(null, dtype=np.float64)
    null = null[np.isfinite(null)]
    if null.size == 0 or not np.isfinite(observed):
        return math.nan
    hits = np.abs(null) >= abs(observed) * (1 - 1e-12)
    if exact:
        return float(hits.mean())
    return float((1 + hits[1:].sum()) / null.size)  # null[0] is the observed assignment


def twfe_coefficients(
    y: np.ndarray, fe: FixedEffects, treatment_of_row, n_assign: int, Z: np.ndarray | None = None
) -> np.ndarray:
    """The TWFE coefficient of ``y`` on the treatment of each of ``n_assign`` assignments.

    ``treatment_of_row(start, stop)`` returns the ``(N, stop - start)`` treatment columns of
    assignments ``start..stop-1``; ``fe``: the (weighted) unit and period fixed effects; ``Z``:
    other regressors (covariates) or None. By Frisch-Waugh-Lovell, with ``M`` the projection off
    the fixed effects and ``Z~ = M Z``, ``beta_a = d_a' W r / d_a' W d_a`` with ``r`` the residual
    of ``M y`` on ``Z~`` and ``d_a`` that of ``M D_a``: ``M y`` once, ``M D`` for a block of
    assignments in one wide projection.
    """
    w = fe.w
    yt = fe.resid(y)
    if Z is not None:
        Zt = fe.resid(Z)
        ZWZ = np.linalg.pinv(Zt.T @ (w[:, None] * Zt), hermitian=True)

        def off_z(M):
            return M - Zt @ (ZWZ @ (Zt.T @ (w[:, None] * M)))

        yt = off_z(yt[:, None])[:, 0]
    out = np.empty(n_assign)
    step = max(1, _BLOCK_CELLS // max(y.size, 1))
    for start in range(0, n_assign, step):  # blocks of assignments, never rows
        stop = min(n_assign, start + step)
        Dt = fe.resid(np.asarray(treatment_of_row(start, stop), dtype=np.float64))
        if Dt.ndim == 1:
            Dt = Dt[:, None]
        if Z is not None:
            Dt = off_z(Dt)
        den = (w[:, None] * Dt * Dt).sum(axis=0)
        num = (w[:, None] * Dt).T @ yt
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:stop] = np.where(den > 1e-12 * max(float(den.max(initial=0.0)), 1e-300), num / den, np.nan)
    return out


def twfe_coefficients_balanced(
    Y: np.ndarray, paths: np.ndarray, assigned: np.ndarray, X: np.ndarray | None = None
) -> np.ndarray:
    """TWFE coefficients of a balanced, unweighted ``(n, T)`` panel for every assignment of treatment paths.

    ``paths``: ``(K, T)`` distinct treatment paths; ``assigned``: ``(A, n)`` the path of each unit in
    each assignment; ``X``: ``(n, T, p)`` covariates or None. With ``~`` the two-way demeaning and
    ``r`` the residual of ``Y~`` on ``X~``: ``beta_a = D_a' r / (D~_a' D~_a - c_a' (X~'X~)^{-1} c_a)``,
    ``c_a = X~' D_a`` (Frisch-Waugh-Lovell; ``M`` is symmetric and idempotent, so ``D~' r = D' r``).
    """
    n, T = Y.shape

    def within(M):
        return M - M.mean(axis=1, keepdims=True) - M.mean(axis=0, keepdims=True) + M.mean(axis=(0, 1), keepdims=True)

    r = within(Y)
    units = np.arange(n)[None, :]
    if X is not None:
        Xt = within(X)  # (n, T, p)
        Zm = Xt.reshape(n * T, -1)
        ZZ = np.linalg.pinv(Zm.T @ Zm, hermitian=True)
        r = (r.ravel() - Zm @ (ZZ @ (Zm.T @ r.ravel()))).reshape(n, T)
    num = (r @ paths.T)[units, assigned].sum(axis=1)  # (A,)
    D0 = paths[assigned[0]]
    den = np.full(assigned.shape[0], float(np.sum(within(D0) ** 2)))
    if X is not None:
        per_path = np.einsum("ntp,kt->nkp", Xt, paths)  # (n, K, p): X~' D by unit and path
        c = per_path[units, assigned].sum(axis=1)  # (A, p)
        den = den - np.einsum("ap,pq,aq->a", c, ZZ, c)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-12 * max(float(np.max(np.abs(den), initial=0.0)), 1e-300), num / den, np.nan)
