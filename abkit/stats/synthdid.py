"""Synthetic control, synthetic difference-in-differences and DiD as weighted double differences.

Pure numpy: float64 arrays in, arrays and small frozen dataclasses out (no
pandas, no plotting). :mod:`abkit.did.one_market` (``abkit.did.synthetic``) turns long panels into the
matrices used here and the results into result objects.

The estimators (Arkhangelsky, Athey, Hirshberg, Imbens & Wager 2021,
"Synthetic Difference-in-Differences", AER 111(12), 4088-4118)
-----------------------------------------------------------------
``Y`` is the ``N x T`` outcome matrix, rows ``0..N0-1`` the comparison
(control) units, the other ``N1`` rows the treated units; columns
``0..T0-1`` the pre-periods, the other ``T1`` the post-periods. With unit
weights ``omega`` (on the controls, on the simplex) and time weights
``lambda`` (on the pre-periods, on the simplex)::

    tau = [ybar_tr,post - sum_t lambda_t ybar_tr,t] - sum_i omega_i [ybar_i,post - sum_t lambda_t Y_it]

(``ybar_tr`` the mean over treated units, ``ybar_.,post`` the mean over the
post-periods). The three methods differ only in the weights:

* ``"sdid"``: ``omega`` minimizes ``||omega_0 + Y_co,pre' omega - ybar_tr,pre||^2 / T0 + zeta_omega^2 ||omega||^2``
  (with an intercept ``omega_0``) and ``lambda`` minimizes
  ``||lambda_0 + Y_co,pre lambda - ybar_co,post||^2 / N0 + zeta_lambda^2 ||lambda||^2``,
  with ``zeta_omega = (N1 T1)^(1/4) sigma``, ``zeta_lambda = 1e-6 sigma`` and
  ``sigma`` = the standard deviation of the first differences of the controls'
  pre-period outcomes (:func:`noise_level`; paper eq. (2)-(4), Algorithm 1).
* ``"sc"`` (synthetic control, Abadie, Diamond & Hainmueller 2010): ``omega``
  without intercept and an infinitesimal ridge ``zeta_omega = 1e-6 sigma``;
  ``lambda = 0`` (no pre-period term).
* ``"did"``: uniform ``omega = 1/N0`` and ``lambda = 1/T0``.

The weights are computed exactly as R's ``synthdid`` package
(synth-inference/synthdid, ``synthdid_estimate``, ``sc_estimate``,
``did_estimate``): Frank-Wolfe on the simplex with exact line search
(:func:`simplex_ridge_fw`), started from uniform weights, stopped after
``max_iter_pre_sparsify = 100`` steps, *sparsified* (weights at most a quarter
of the largest set to 0, the rest renormalized), then restarted from the
sparse weights for at most ``max_iter = 10000`` steps. A run stops early once
a step lowers the objective ``zeta^2 ||x||^2 + ||A x - b||^2 / n`` by no more
than ``min_decrease^2`` (``min_decrease = 1e-5 sigma``; the decrease of the
first step is never tested). Time-varying covariates (R's ``X``) are handled
by :func:`covariate_weights`: Frank-Wolfe steps for the weights alternate with
``1/t`` gradient steps for the coefficients ``beta``, and the estimate is
computed on ``Y - X beta``.

Everything is batched: :func:`solve` estimates ``B`` problems (e.g. the
placebo replications, each with its own controls and treated units) at once,
the Frank-Wolfe iterations running as a few vectorized operations on ``B x k``
arrays (the Gram matrix ``A'A + eta I`` is formed once per problem, so a step
costs ``O(k)``, not ``O(n k)``).

Inference (paper Section 5; R ``vcov.synthdid_estimate``)
-----------------------------------------------------------
* :func:`placebo_se` (Algorithm 4): ``reps`` times, pick ``N1`` controls at
  random as pseudo-treated, re-estimate on the controls alone (weights
  re-solved from the estimate's weights, the regularization kept), and
  report ``sqrt((r - 1) / r) sd(tau_b)``. The only choice with one treated unit.
  With ``N1 = 1`` there are only ``N0`` distinct placebo problems, so they are
  solved once and the replications drawn from them.
* :func:`bootstrap_se` (Algorithm 2): resample units with replacement (draws
  without a treated or without a control unit are redrawn).
* :func:`jackknife_se` (Algorithm 3, fixed weights): leave one unit out,
  ``omega`` renormalized, ``lambda`` kept; ``sqrt((n - 1) / n * (n - 1) var(tau_-i))``.
  Undefined with one treated unit or one control with positive weight.
* :func:`rmspe_p_value`: Abadie, Diamond & Hainmueller's (2010) in-space
  placebo test, the rank of the treated unit's post/pre RMSPE ratio among
  the placebo units'.
* :func:`conformal`: Chernozhukov, Wuthrich & Zhu (2021), "An exact and
  robust conformal inference method for counterfactual and synthetic
  controls", JASA 116(536): per post-period intervals and a test of no
  effect, by refitting the unit weights under the null on all periods and
  ranking the residuals (moving-block permutations).

Staggered adoption (Arkhangelsky et al. 2021, Appendix A; Clarke, Pailanir,
Athey & Imbens 2023, "Synthetic difference-in-differences estimation", Stata
J.): :func:`staggered` estimates each adoption cohort against the
never-treated units and averages with weights ``N1_a T1_a / sum_a N1_a T1_a``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

from ..errors import DataError

__all__ = [
    "METHODS",
    "BatchFit",
    "CohortSpec",
    "ConformalResult",
    "Fit",
    "Problems",
    "Regularization",
    "Replications",
    "StaggeredFit",
    "block_problems",
    "bootstrap_se",
    "cohort_specs",
    "conformal",
    "covariate_weights",
    "fit",
    "jackknife_se",
    "noise_level",
    "normal_inference",
    "placebo_problems",
    "placebo_se",
    "regularization",
    "rmspe_p_value",
    "simplex_ridge_fw",
    "solve",
    "sparsify",
    "staggered",
    "staggered_bootstrap_se",
    "staggered_jackknife_se",
    "staggered_placebo_se",
]

METHODS = ("sdid", "sc", "did")

_BIG = 1e300  # gradient of a column that may not enter (padding, excluded units): never the minimum
_REFRESH = 64  # Frank-Wolfe: recompute the running scalars exactly every so many steps


# --------------------------------------------------------------------------
# Regularization (R synthdid's defaults)
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Regularization:
    """The tuning of one estimate, as R synthdid's ``opts``.

    ``zeta_omega`` / ``zeta_lambda``: ridge penalties of the unit / time
    weights; ``min_decrease``: the stopping rule of Frank-Wolfe;
    ``omega_intercept`` / ``lambda_intercept``: fit the weights up to a
    constant; ``update_omega`` / ``update_lambda``: solve for the weights
    (False: keep the given ones, e.g. uniform for DiD). Replications
    (placebo, bootstrap) keep these values, as synthdid does.
    """

    method: str
    noise_level: float
    zeta_omega: float
    zeta_lambda: float
    min_decrease: float
    omega_intercept: bool
    lambda_intercept: bool
    update_omega: bool
    update_lambda: bool
    max_iter: int = 10_000
    max_iter_pre_sparsify: int = 100
    sparsify: bool = True


def noise_level(y_control_pre: np.ndarray) -> float:
    """``sigma``: the standard deviation (``ddof = 1``) of all first differences ``Y_i,t+1 - Y_i,t``
    of the controls' pre-period outcomes (R synthdid: ``sd(apply(Y[1:N0, 1:T0], 1, diff))``)."""
    d = np.diff(np.asarray(y_control_pre, dtype=np.float64), axis=1)
    if d.size < 2:
        raise DataError(
            "the noise level needs at least two first differences of the comparison units' "
            "pre-launch outcomes: give at least 2 pre-launch periods (3 or more are advisable)"
        )
    return float(np.std(d, ddof=1))


def regularization(
    y_control_pre: np.ndarray,
    n_treated: int,
    n_post: int,
    method: str = "sdid",
    *,
    eta_omega: float | None = None,
    eta_lambda: float = 1e-6,
    max_iter: int = 10_000,
    max_iter_pre_sparsify: int = 100,
    sparsify: bool = True,
) -> Regularization:
    """R synthdid's defaults for ``method`` (``synthdid_estimate``, ``sc_estimate``, ``did_estimate``).

    ``sigma = noise_level(y_control_pre)``; ``"sdid"``: ``eta_omega = (N1 T1)^(1/4)``,
    ``zeta_omega = eta_omega sigma``, ``zeta_lambda = eta_lambda sigma`` (``1e-6 sigma``),
    both intercepts; ``"sc"``: ``eta_omega = 1e-6``, no intercept, ``lambda = 0``
    fixed; ``"did"``: uniform weights, nothing solved. Always
    ``min_decrease = 1e-5 sigma``.
    """
    if method not in METHODS:
        raise DataError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    sigma = noise_level(y_control_pre)
    if eta_omega is None:
        eta_omega = 1e-6 if method == "sc" else (n_treated * n_post) ** 0.25
    return Regularization(
        method=method,
        noise_level=sigma,
        zeta_omega=eta_omega * sigma,
        zeta_lambda=eta_lambda * sigma,
        min_decrease=1e-5 * sigma,
        omega_intercept=method == "sdid",
        lambda_intercept=method == "sdid",
        update_omega=method in ("sdid", "sc"),
        update_lambda=method == "sdid",
        max_iter=int(max_iter),
        max_iter_pre_sparsify=int(max_iter_pre_sparsify),
        sparsify=bool(sparsify),
    )


# --------------------------------------------------------------------------
# Frank-Wolfe on the simplex (batched)
# --------------------------------------------------------------------------
def sparsify(x: np.ndarray) -> np.ndarray:
    """R synthdid's ``sparsify_function``: ``x[x <= max(x) / 4] = 0``, then ``x / sum(x)`` (per row)."""
    x = np.array(x, dtype=np.float64, copy=True)
    top = x.max(axis=-1, keepdims=True)
    x[x <= top / 4] = 0.0
    return x / x.sum(axis=-1, keepdims=True)


def simplex_ridge_fw(
    A: np.ndarray,
    b: np.ndarray,
    eta,
    x0: np.ndarray,
    *,
    n_rows=None,
    allowed=None,
    min_decrease,
    max_iter: int,
    pre_sparsify: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Frank-Wolfe for ``min ||A x - b||^2 + eta ||x||^2`` over the simplex, for ``B`` problems at once.

    ``A`` is ``(B, n, k)``, ``b`` ``(B, n)``, ``x0`` ``(B, k)`` (a start on the
    simplex); ``eta``, ``n_rows`` (the number of real rows of each problem;
    padding rows of ``A`` and ``b`` must be 0) and ``min_decrease`` are
    scalars or ``(B,)``; ``allowed`` ``(B, k)`` marks the columns a problem may
    use (padding and excluded units are False and have ``x0 = 0``).

    Each step is R synthdid's ``fw.step``: with the half gradient
    ``g = A'(A x - b) + eta x`` move towards the vertex ``e_i``,
    ``i = argmin g``, by the exact line search
    ``s = clip(-g'd / (||A d||^2 + eta ||d||^2), 0, 1)``, ``d = e_i - x``. A
    problem stops after step ``t >= 2`` once that step lowered
    ``(||A x - b||^2 + eta ||x||^2) / n_rows`` by no more than
    ``min_decrease^2`` (R's ``vals[t - 1] - vals[t] > min.decrease^2``), or
    after ``max_iter`` steps. With ``pre_sparsify = m`` this is R's two-pass
    scheme: ``m`` steps from ``x0``, :func:`sparsify`, then up to
    ``max_iter`` steps from the sparse weights.

    Implementation: with ``H = A'A + eta I`` and ``c = A'b`` (formed once),
    ``g = H x - c`` is updated as ``(1 - s) g + s (H_i - c)``, and
    ``x'g``, ``x'c`` as running scalars (recomputed exactly every 64 steps),
    so a step costs ``O(k)`` per problem, all problems in a few numpy calls.
    The decrease is ``-(2 s g'd + s^2 d'Hd)``, computed from the step itself
    rather than as a difference of two objective values. Returns ``x`` and
    the number of steps of the (last) pass per problem.
    """
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    B, n, k = A.shape
    eta = np.broadcast_to(np.asarray(eta, dtype=np.float64), (B,))
    n_rows = np.broadcast_to(np.asarray(n if n_rows is None else n_rows, dtype=np.float64), (B,))
    md = np.broadcast_to(np.asarray(min_decrease, dtype=np.float64), (B,))
    allowed = np.ones((B, k), bool) if allowed is None else np.asarray(allowed, bool)
    x = np.array(x0, dtype=np.float64, copy=True)
    steps = np.zeros(B, np.int64)
    if B == 0:
        return x, steps
    At = A.transpose(0, 2, 1)
    H = At @ A  # (B, k, k)
    c = np.ascontiguousarray((At @ b[:, :, None])[:, :, 0])
    diag = np.arange(k)
    H[:, diag, diag] += eta[:, None]
    hdiag = H[:, diag, diag].copy()
    rows = H - c[:, None, :]  # rows[b, i] = H_i - c: g after a full step to e_i
    blocked = ~allowed
    if blocked.any():
        rows[np.broadcast_to(blocked[:, None, :], rows.shape)] = _BIG
    width = np.where(allowed.any(axis=1), k - np.argmax(allowed[:, ::-1], axis=1), 1)  # last allowed column + 1
    threshold = md * md * n_rows
    for i, m in enumerate((pre_sparsify, max_iter)):
        if m is None:
            continue
        if i == 1 and pre_sparsify is not None:
            x = sparsify(x)
        if m <= 0:
            continue
        g = (H @ x[:, :, None])[:, :, 0] - c
        g[blocked] = _BIG
        if B == 1:
            steps[0] = _fw_single(rows[0], hdiag[0], c[0], x[0], g[0], float(threshold[0]), int(m))
        else:
            _fw_batch(rows, hdiag, c, x, g, threshold, int(m), steps, width)
    return x, steps


def _fw_single(rows, hdiag, c, x, g, threshold: float, max_iter: int, t_start: int = 1) -> int:
    """One problem: the loop of :func:`simplex_ridge_fw` with Python scalars (x, g updated in place),
    from step ``t_start`` on; returns the number of steps taken in all."""
    hd = hdiag.tolist()
    cl = c.tolist()
    xg = float(x @ np.where(g < _BIG, g, 0.0))
    v = float(c @ x)
    for t in range(t_start, max_iter + 1):
        i = int(g.argmin())
        gi = g.item(i)
        ci = cl[i]
        u = xg + v  # x'Hx
        gd = gi - xg  # g'd, d = e_i - x
        p = gi + ci  # (Hx)_i
        h = hd[i] - 2.0 * p + u  # d'Hd
        s = -gd / h if h > 0.0 else 0.0
        s = 0.0 if not s > 0.0 else min(s, 1.0)
        if s > 0.0:
            om = 1.0 - s
            g *= om
            g += s * rows[i]
            x *= om
            x[i] += s
            u = u + s * (2.0 * (p - u) + s * h)
            v = v + s * (ci - v)
            if t % _REFRESH == 0:
                xg = float(x @ g)
                v = float(c @ x)
            else:
                xg = u - v
        decrease = -s * (2.0 * gd + s * h)
        if t >= 2 and not decrease > threshold:
            return t
    return max_iter


def _fw_batch(rows, hdiag, c, x, g, threshold, max_iter: int, steps, width) -> None:
    """All problems of :func:`simplex_ridge_fw` in lockstep; finished ones leave the working set (which is
    then also trimmed to the columns its problems may use); the last two finish in :func:`_fw_single`."""
    B, k = x.shape
    live = np.arange(B)  # working-set position -> problem
    W_rows = rows.reshape(B * k, k)
    W_q = np.stack([c.ravel(), hdiag.ravel()], axis=1)  # (B k, 2): c_i, H_ii, gathered together
    W_x, W_g, W_cc, W_thr, W_w = x, g, c, -threshold, width
    kw = k
    xg = np.einsum("bk,bk->b", W_x, np.where(W_g < _BIG, W_g, 0.0))
    v = np.einsum("bk,bk->b", W_cc, W_x)
    base = np.arange(B) * k
    active = np.ones(B, bool)
    t_done = np.full(B, max_iter, np.int64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for t in range(1, max_iter + 1):
            i = W_g.argmin(axis=1)
            flat = base + i
            gi = W_g.ravel()[flat]
            q = W_q[flat]
            ci = q[:, 0]
            u = xg + v
            gd = gi - xg
            p = gi + ci
            h = q[:, 1] - (p + p) + u
            s = np.fmin(np.fmax(gd / -h, 0.0), 1.0)
            s *= active
            s2 = s[:, None]
            row = W_rows[flat]
            row -= W_g
            row *= s2
            W_g += row
            W_x *= 1.0 - s2
            W_x.ravel()[flat] += s
            sh = s * h
            u += s * ((p - u) * 2.0 + sh)
            v += s * (ci - v)
            if t % _REFRESH == 0:
                xg = np.einsum("bk,bk->b", W_x, W_g)
                v = np.einsum("bk,bk->b", W_cc, W_x)
            else:
                xg = u - v
            if t < 2:
                continue
            stop = s * (gd + gd + sh) >= W_thr  # this step lowered the objective too little
            if not stop.any(where=active):
                continue
            stop &= active
            t_done[live[stop]] = t
            active &= ~stop
            n_active = int(active.sum())
            if n_active == 0:
                break
            if n_active <= 2 and t < max_iter:
                # one or two problems left: finish each with the scalar loop
                for j in np.nonzero(active)[0]:
                    xj, gj = W_x[j].copy(), W_g[j].copy()
                    t_done[live[j]] = _fw_single(
                        W_rows.reshape(-1, kw, kw)[j],
                        W_q[j * kw : (j + 1) * kw, 1],
                        W_cc[j],
                        xj,
                        gj,
                        float(-W_thr[j]),
                        max_iter,
                        t + 1,
                    )
                    W_x[j] = xj
                break
            if n_active <= 0.6 * active.size and active.size > 4:
                # write back, shrink the working set to the problems (and the columns) still in use
                x[live, :kw] = W_x
                keep = np.nonzero(active)[0]
                live = live[keep]
                kb = keep.size
                k_new = int(W_w[keep].max())
                W_rows = W_rows.reshape(-1, kw, kw)[keep][:, :k_new, :k_new].reshape(kb * k_new, k_new)
                W_q = W_q.reshape(-1, kw, 2)[keep][:, :k_new].reshape(kb * k_new, 2)
                W_cc = np.ascontiguousarray(W_cc[keep][:, :k_new])
                W_x = np.ascontiguousarray(W_x[keep][:, :k_new])
                W_g = np.ascontiguousarray(W_g[keep][:, :k_new])
                W_thr, W_w = W_thr[keep], W_w[keep]
                xg, v = xg[keep], v[keep]
                kw = k_new
                base = np.arange(kb) * kw
                active = np.ones(kb, bool)
    x[live, :kw] = W_x
    steps[:] = t_done


# --------------------------------------------------------------------------
# Batches of estimation problems on one panel
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Problems:
    """``B`` estimation problems on one ``N x T`` panel.

    Problem ``b`` compares the mean of the units ``treated[b]`` with a weighted
    mix of the units ``controls[b]`` (``-1`` pads both; repeated indices count
    repeatedly, as in a bootstrap draw); its pre-periods are
    ``0..pre_end[b] - 1`` and its post-periods ``pre_end[b]..post_end[b] - 1``.
    """

    controls: np.ndarray
    treated: np.ndarray
    pre_end: np.ndarray
    post_end: np.ndarray

    @property
    def size(self) -> int:
        return int(self.controls.shape[0])


def block_problems(n_units: int, n_control: int, n_pre: int, n_periods: int) -> Problems:
    """The one problem of a block design: rows ``0..N0-1`` controls, the rest treated, launch at ``T0``."""
    return Problems(
        controls=np.arange(n_control)[None, :],
        treated=np.arange(n_control, n_units)[None, :],
        pre_end=np.array([n_pre]),
        post_end=np.array([n_periods]),
    )


def _pad_rows(rows: list[np.ndarray]) -> np.ndarray:
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), max(width, 1)), -1, dtype=np.int64)
    for j, r in enumerate(rows):
        out[j, : len(r)] = r
    return out


@dataclass
class _Collapsed:
    """R synthdid's ``collapsed.form`` of every problem, padded to common sizes.

    ``Yc[b]`` is ``(K + 1) x (P + 1)``: rows = the controls then the treated
    mean, columns = the pre-periods then the post-period mean; ``row_ok``
    ``(B, K)`` and ``pre_ok`` ``(B, P)`` mark the real controls and pre-periods.
    """

    Yc: np.ndarray
    Xc: np.ndarray | None  # (B, C, K + 1, P + 1)
    row_ok: np.ndarray
    pre_ok: np.ndarray
    n_control: np.ndarray
    n_pre: np.ndarray
    paths_control: np.ndarray  # (B, K, T) control rows (0 for padding)
    path_treated: np.ndarray  # (B, T) treated mean
    xpaths_control: np.ndarray | None  # (B, C, K, T)
    xpath_treated: np.ndarray | None  # (B, C, T)


def _collapse(Y: np.ndarray, pr: Problems, X: np.ndarray | None = None) -> _Collapsed:
    T = Y.shape[1]
    ctl = pr.controls
    row_ok = ctl >= 0
    tr_ok = pr.treated >= 0
    n_tr = tr_ok.sum(axis=1)
    pre_end = pr.pre_end.astype(np.int64)
    post_end = pr.post_end.astype(np.int64)
    P = int(pre_end.max())
    pre_ok = np.arange(P)[None, :] < pre_end[:, None]
    n_post = (post_end - pre_end).astype(np.float64)

    def one(Z):  # Z (N, T) -> collapsed (B, K+1, P+1), paths
        Zz = np.vstack([Z, np.zeros((1, T))])  # index -1 -> the zero row
        rows = Zz[ctl]  # (B, K, T)
        trm = Zz[pr.treated].sum(axis=1) / n_tr[:, None]
        cs = np.concatenate([np.zeros(rows.shape[:2] + (1,)), np.cumsum(rows, axis=2)], axis=2)
        bidx = np.arange(ctl.shape[0])
        post_c = (cs[bidx, :, post_end] - cs[bidx, :, pre_end]) / n_post[:, None]
        cst = np.concatenate([np.zeros((trm.shape[0], 1)), np.cumsum(trm, axis=1)], axis=1)
        post_t = (cst[bidx, post_end] - cst[bidx, pre_end]) / n_post
        out = np.zeros((ctl.shape[0], ctl.shape[1] + 1, P + 1))
        out[:, :-1, :P] = rows[:, :, :P] * pre_ok[:, None, :]
        out[:, :-1, P] = post_c
        out[:, -1, :P] = trm[:, :P] * pre_ok
        out[:, -1, P] = post_t
        out[:, :-1, :] *= row_ok[:, :, None]
        return out, rows * row_ok[:, :, None], trm

    Yc, prow, ptr = one(Y)
    Xc = xrows = xtr = None
    if X is not None and X.shape[2]:
        parts = [one(X[:, :, j]) for j in range(X.shape[2])]
        Xc = np.stack([p[0] for p in parts], axis=1)
        xrows = np.stack([p[1] for p in parts], axis=1)
        xtr = np.stack([p[2] for p in parts], axis=1)
    return _Collapsed(
        Yc=Yc,
        Xc=Xc,
        row_ok=row_ok,
        pre_ok=pre_ok,
        n_control=row_ok.sum(axis=1).astype(np.float64),
        n_pre=pre_end.astype(np.float64),
        paths_control=prow,
        path_treated=ptr,
        xpaths_control=xrows,
        xpath_treated=xtr,
    )


def _uniform(mask: np.ndarray) -> np.ndarray:
    return mask / mask.sum(axis=1, keepdims=True)


def _normalized_init(init, mask: np.ndarray) -> np.ndarray:
    """R's ``sum_normalize``: the given start weights on ``mask`` scaled to sum 1 (uniform if they sum to 0)."""
    if init is None:
        return _uniform(mask)
    x = np.where(mask, np.asarray(init, dtype=np.float64), 0.0)
    total = x.sum(axis=1, keepdims=True)
    return np.where(total > 0, x / np.where(total > 0, total, 1.0), _uniform(mask))


def _center(A: np.ndarray, b: np.ndarray, row_mask: np.ndarray, n: np.ndarray):
    """Subtract the column means over the real rows (``row_mask`` (B, n)) from ``A`` (B, n, k) and ``b`` (B, n)."""
    A = A - (A.sum(axis=1) / n[:, None])[:, None, :]
    b = b - (b.sum(axis=1) / n)[:, None]
    A *= row_mask[:, :, None]
    b *= row_mask
    return A, b


def _weight_problems(col: _Collapsed, reg: Regularization):
    """The time-weight (``lambda``) and unit-weight (``omega``) least-squares problems of every problem."""
    Yc = col.Yc
    K1, P1 = Yc.shape[1:]
    K, P = K1 - 1, P1 - 1
    lam = (Yc[:, :K, :P], Yc[:, :K, P])  # rows: controls; columns: pre-periods
    if reg.lambda_intercept:
        lam = _center(lam[0], lam[1], col.row_ok, col.n_control)
    om = (Yc[:, :K, :P].transpose(0, 2, 1), Yc[:, K, :P])  # rows: pre-periods; columns: controls
    if reg.omega_intercept:
        om = _center(om[0], om[1], col.pre_ok, col.n_pre)
    return lam, om


def _run_fw(problems: list, reg: Regularization, min_decrease: np.ndarray):
    """Solve several kinds of simplex problems (each ``(A, b, zeta, x0, allowed, n_rows)``) in one batch,
    with R's two passes (``max_iter_pre_sparsify`` steps, :func:`sparsify`, ``max_iter`` steps)."""
    if not problems:
        return []
    n = max(p[0].shape[1] for p in problems)
    k = max(p[0].shape[2] for p in problems)
    Bs = [p[0].shape[0] for p in problems]
    A = np.zeros((sum(Bs), n, k))
    b = np.zeros((sum(Bs), n))
    x0 = np.zeros((sum(Bs), k))
    allowed = np.zeros((sum(Bs), k), bool)
    eta = np.zeros(sum(Bs))
    n_rows = np.zeros(sum(Bs))
    md = np.zeros(sum(Bs))
    at = 0
    for (Ap, bp, zeta, xp, okp, nr), Bp in zip(problems, Bs):
        sl = slice(at, at + Bp)
        A[sl, : Ap.shape[1], : Ap.shape[2]] = Ap
        b[sl, : bp.shape[1]] = bp
        x0[sl, : xp.shape[1]] = xp
        allowed[sl, : okp.shape[1]] = okp
        eta[sl] = nr * zeta**2
        n_rows[sl] = nr
        md[sl] = min_decrease
        at += Bp
    x, _ = simplex_ridge_fw(
        A,
        b,
        eta,
        x0,
        n_rows=n_rows,
        allowed=allowed,
        min_decrease=md,
        max_iter=reg.max_iter,
        pre_sparsify=reg.max_iter_pre_sparsify if reg.sparsify else None,
    )
    out, at = [], 0
    for (_Ap, _bp, _z, xp, _ok, _nr), Bp in zip(problems, Bs):
        out.append(x[at : at + Bp, : xp.shape[1]])
        at += Bp
    return out


@dataclass(frozen=True)
class BatchFit:
    """The estimates of a :class:`Problems` batch: ``estimate (B,)``, ``omega (B, K)`` (on ``controls``),
    ``lam (B, P)`` (on the pre-periods), ``beta (B, C)``, and the gap paths ``gap (B, T)``
    (treated minus synthetic, NaN after ``post_end``) with their pre/post RMSPE."""

    estimate: np.ndarray
    omega: np.ndarray
    lam: np.ndarray
    beta: np.ndarray
    gap: np.ndarray
    pre_rmspe: np.ndarray
    post_rmspe: np.ndarray


def _per_problem(value, B: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (B,)).copy()


def solve(
    Y: np.ndarray,
    problems: Problems,
    reg: Regularization,
    *,
    X: np.ndarray | None = None,
    omega_init=None,
    lambda_init=None,
    zeta_omega=None,
    zeta_lambda=None,
    min_decrease=None,
) -> BatchFit:
    """Estimate every problem of ``problems`` (weights, then the weighted double difference).

    ``reg`` gives the method's flags and the default penalties; ``zeta_omega``,
    ``zeta_lambda``, ``min_decrease`` (scalars or ``(B,)``) override them per
    problem (staggered cohorts). ``omega_init`` ``(B, K)`` / ``lambda_init``
    ``(B, P)``: start weights (R's ``weights``), renormalized on each problem's
    controls / pre-periods; with ``update_* = False`` they are used as given
    (uniform when None; ``lambda = 0`` for ``"sc"``). ``X`` ``(N, T, C)``:
    time-varying covariates (:func:`covariate_weights`).
    """
    B = problems.size
    col = _collapse(Y, problems, X)
    K, P = col.row_ok.shape[1], col.pre_ok.shape[1]
    zo = _per_problem(reg.zeta_omega if zeta_omega is None else zeta_omega, B)
    zl = _per_problem(reg.zeta_lambda if zeta_lambda is None else zeta_lambda, B)
    md = _per_problem(reg.min_decrease if min_decrease is None else min_decrease, B)
    omega0 = _normalized_init(omega_init, col.row_ok)
    if reg.method == "sc" and not reg.update_lambda:
        lambda0 = np.zeros((B, P)) if lambda_init is None else np.where(col.pre_ok, lambda_init, 0.0)
    else:
        lambda0 = _normalized_init(lambda_init, col.pre_ok)
    C = 0 if col.Xc is None else col.Xc.shape[1]
    if C:
        lam, omega, beta = covariate_weights(col, reg, zo, zl, md, lambda0, omega0)
    else:
        beta = np.zeros((B, 0))
        (lA, lb), (oA, ob) = _weight_problems(col, reg)
        kinds = []
        if reg.update_lambda:
            kinds.append((lA, lb, zl, lambda0, col.pre_ok, col.n_control))
        if reg.update_omega:
            kinds.append((oA, ob, zo, omega0, col.row_ok, col.n_pre))
        solved = _run_fw(kinds, reg, md)
        lam = solved.pop(0) if reg.update_lambda else lambda0
        omega = solved.pop(0) if reg.update_omega else omega0
    Yc = col.Yc
    path_tr = col.path_treated
    paths_co = col.paths_control
    if C:
        # _collapse fills the covariate forms whenever there is a covariate
        assert col.Xc is not None and col.xpath_treated is not None and col.xpaths_control is not None
        Yc = Yc - np.einsum("bc,bcij->bij", beta, col.Xc)
        path_tr = path_tr - np.einsum("bc,bct->bt", beta, col.xpath_treated)
        paths_co = paths_co - np.einsum("bc,bckt->bkt", beta, col.xpaths_control)
    # tau = [ybar_tr,post - lambda' ybar_tr,pre] - omega' [ybar_co,post - Y_co,pre lambda]
    treated_part = Yc[:, K, P] - np.einsum("bp,bp->b", lam, Yc[:, K, :P])
    control_part = Yc[:, :K, P] - np.einsum("bkp,bp->bk", Yc[:, :K, :P], lam)
    estimate = treated_part - np.einsum("bk,bk->b", omega, control_part)
    # gap paths: treated - (omega' controls + c), c the lambda-weighted pre-period gap (0 for SC)
    raw_gap = path_tr - np.einsum("bk,bkt->bt", omega, paths_co)
    offset = np.einsum("bp,bp->b", lam, raw_gap[:, :P])
    gap = raw_gap - offset[:, None]
    T = Y.shape[1]
    t = np.arange(T)[None, :]
    pre = t < problems.pre_end[:, None]
    post = (t >= problems.pre_end[:, None]) & (t < problems.post_end[:, None])
    gap = np.where(pre | post, gap, np.nan)
    sq = np.where(pre | post, gap, 0.0) ** 2
    pre_rmspe = np.sqrt((sq * pre).sum(axis=1) / pre.sum(axis=1))
    post_rmspe = np.sqrt((sq * post).sum(axis=1) / post.sum(axis=1))
    return BatchFit(
        estimate=estimate, omega=omega, lam=lam, beta=beta, gap=gap, pre_rmspe=pre_rmspe, post_rmspe=post_rmspe
    )


def _fw_step(A, x, b, eta, allowed):
    """One R ``fw.step`` per problem (direct form, for the covariate solver where ``A`` changes every step)."""
    Ax = (A @ x[:, :, None])[:, :, 0]
    half_grad = ((Ax - b)[:, None, :] @ A)[:, 0, :] + eta[:, None] * x
    i = np.where(allowed, half_grad, np.inf).argmin(axis=1)
    bidx = np.arange(x.shape[0])
    d = -x
    d[bidx, i] += 1.0
    d_err = A[bidx, :, i] - Ax
    denom = (d_err * d_err).sum(axis=1) + eta * (d * d).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = -(half_grad * d).sum(axis=1) / denom
    step = np.where(denom > 0, np.clip(step, 0.0, 1.0), 0.0)
    return x + step[:, None] * d


def covariate_weights(
    col: _Collapsed, reg: Regularization, zeta_omega, zeta_lambda, min_decrease, lambda0: np.ndarray, omega0: np.ndarray
):
    """Weights and covariate coefficients together: R synthdid's ``sc.weight.fw.covariates``.

    On the collapsed forms ``Yc``, ``Xc``: with ``Y(beta) = Yc - sum_c beta_c Xc_c``,
    each iteration ``t`` takes a gradient step ``beta -= (1/t) grad`` of
    ``zeta_omega^2 ||omega||^2 + zeta_lambda^2 ||lambda||^2 + ||e_omega||^2 / T0 + ||e_lambda||^2 / N0``
    (the errors of the two weight regressions on ``Y(beta)``), then one
    Frank-Wolfe step for ``lambda`` and for ``omega`` (those being updated);
    it stops when the objective falls by no more than ``min_decrease^2``
    (after the second iteration) or after ``max_iter`` iterations. No
    sparsification (as in synthdid with covariates). The regressions are
    linear in ``beta``, so their (centred) design matrices are formed once
    for ``Y`` and each covariate. Returns ``(lambda, omega, beta)``.
    """
    Yc, Xc = col.Yc, col.Xc
    if Xc is None:
        raise DataError("covariate_weights needs covariates: the collapsed problems hold none (X was None or empty)")
    B, C, K1, P1 = Xc.shape
    K, P = K1 - 1, P1 - 1
    zo2 = np.broadcast_to(np.asarray(zeta_omega, dtype=np.float64) ** 2, (B,))
    zl2 = np.broadcast_to(np.asarray(zeta_lambda, dtype=np.float64) ** 2, (B,))
    n_c, n_p = col.n_control, col.n_pre
    md2 = np.asarray(min_decrease) ** 2

    def designs(Z):  # Z (B, K+1, P+1) -> the two regressions' (A, b)
        lA, lb = Z[:, :K, :P], Z[:, :K, P]
        if reg.lambda_intercept:
            lA, lb = _center(lA, lb, col.row_ok, n_c)
        oA, ob = Z[:, :K, :P].transpose(0, 2, 1), Z[:, K, :P]
        if reg.omega_intercept:
            oA, ob = _center(oA, ob, col.pre_ok, n_p)
        return np.ascontiguousarray(lA), lb, np.ascontiguousarray(oA), ob

    lAY, lbY, oAY, obY = designs(Yc)
    xd = [designs(Xc[:, c]) for c in range(C)]
    lAX = np.stack([d[0] for d in xd], axis=1).reshape(B, C, K * P)
    lbX = np.stack([d[1] for d in xd], axis=1)
    oAX = np.stack([d[2] for d in xd], axis=1).reshape(B, C, P * K)
    obX = np.stack([d[3] for d in xd], axis=1)
    XcK = Xc[:, :, :K, :]  # X[1:N0, ] (uncentred, as in R's gradient)
    XcP = Xc[:, :, :, :P]  # X[, 1:T0]

    def update(beta, lam, om):
        bb = beta[:, None, :]
        lA = lAY - (bb @ lAX).reshape(B, K, P)
        lb = lbY - (bb @ lbX)[:, 0]
        if reg.update_lambda:
            lam = _fw_step(lA, lam, lb, n_c * zl2, col.pre_ok)
        err_l = (lA @ lam[:, :, None])[:, :, 0] - lb
        oA = oAY - (bb @ oAX).reshape(B, P, K)
        ob = obY - (bb @ obX)[:, 0]
        if reg.update_omega:
            om = _fw_step(oA, om, ob, n_p * zo2, col.row_ok)
        err_o = (oA @ om[:, :, None])[:, :, 0] - ob
        val = (
            zo2 * (om * om).sum(axis=1)
            + zl2 * (lam * lam).sum(axis=1)
            + (err_o * err_o).sum(axis=1) / n_p
            + (err_l * err_l).sum(axis=1) / n_c
        )
        return lam, om, err_l, err_o, val

    beta = np.zeros((B, C))
    lam, om, err_l, err_o, _ = update(beta, lambda0, omega0)
    active = np.ones(B, bool)
    prev = np.full(B, np.inf)
    lam_m1 = np.empty((B, P + 1))
    om_m1 = np.empty((B, K + 1))
    lam_m1[:, P] = -1.0
    om_m1[:, K] = -1.0
    for t in range(1, reg.max_iter + 1):
        lam_m1[:, :P] = lam
        om_m1[:, :K] = om
        x_l = (XcK @ lam_m1[:, None, :, None])[..., 0]  # (B, C, K)
        x_o = (om_m1[:, None, None, :] @ XcP)[:, :, 0, :]  # (B, C, P)
        grad = -((x_l @ err_l[:, :, None])[..., 0] / n_c[:, None] + (x_o @ err_o[:, :, None])[..., 0] / n_p[:, None])
        new_beta = beta - grad / t
        n_lam, n_om, n_el, n_eo, val = update(new_beta, lam, om)
        if active.all():
            beta, lam, om, err_l, err_o = new_beta, n_lam, n_om, n_el, n_eo
        else:
            keep = active[:, None]
            beta = np.where(keep, new_beta, beta)
            lam, om = np.where(keep, n_lam, lam), np.where(keep, n_om, om)
            err_l, err_o = np.where(keep, n_el, err_l), np.where(keep, n_eo, err_o)
        if t >= 2:
            active &= (prev - val) > md2
            if not active.any():
                break
        prev = np.where(active, val, prev)
    return lam, om, beta


# --------------------------------------------------------------------------
# One block-design estimate
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Fit:
    """One estimate on a block design (controls = rows ``0..N0-1``, launch at period ``T0``)."""

    estimate: float
    omega: np.ndarray  # (N0,) unit weights
    lam: np.ndarray  # (T0,) time weights (0 for SC)
    beta: np.ndarray  # (C,) covariate coefficients
    reg: Regularization
    gap: np.ndarray  # (T,) treated mean minus synthetic (incl. the lambda-weighted pre-period offset)
    pre_rmspe: float
    post_rmspe: float
    n_control: int
    n_pre: int


def fit(
    Y: np.ndarray,
    n_control: int,
    n_pre: int,
    method: str = "sdid",
    *,
    X: np.ndarray | None = None,
    reg: Regularization | None = None,
) -> Fit:
    """The ``method`` estimate on ``Y`` (controls first, launch at ``n_pre``), R synthdid's defaults unless ``reg``."""
    Y = np.asarray(Y, dtype=np.float64)
    N, T = Y.shape
    if reg is None:
        reg = regularization(Y[:n_control, :n_pre], N - n_control, T - n_pre, method)
    res = solve(Y, block_problems(N, n_control, n_pre, T), reg, X=X)
    return Fit(
        estimate=float(res.estimate[0]),
        omega=res.omega[0, :n_control].copy(),
        lam=res.lam[0, :n_pre].copy(),
        beta=res.beta[0].copy(),
        reg=reg,
        gap=res.gap[0].copy(),
        pre_rmspe=float(res.pre_rmspe[0]),
        post_rmspe=float(res.post_rmspe[0]),
        n_control=n_control,
        n_pre=n_pre,
    )


def normal_inference(estimate: float, se: float, alpha: float = 0.05) -> tuple[float, float, float]:
    """``(ci_lower, ci_upper, p_value)`` from ``estimate +- z_(1 - alpha/2) se`` and ``2 norm.sf(|estimate / se|)``
    (as synthdid's ``summary``); NaN when ``se`` is not a positive number."""
    if not (np.isfinite(se) and se > 0):
        return np.nan, np.nan, np.nan
    z = stats.norm.isf(alpha / 2)
    return estimate - z * se, estimate + z * se, float(2 * stats.norm.sf(abs(estimate / se)))


def _replication_se(values: np.ndarray) -> float:
    """``sqrt((r - 1) / r) sd(values)`` (R synthdid's placebo and bootstrap SE)."""
    r = values.size
    return float(math.sqrt((r - 1) / r) * np.std(values, ddof=1)) if r > 1 else np.nan


# --------------------------------------------------------------------------
# Placebo, bootstrap and jackknife variance (R synthdid's vcov)
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Replications:
    """Replicate estimates and the standard error they give.

    ``fits`` holds the distinct placebo problems that were solved (for one
    treated unit: control ``j`` as the pseudo-treated unit against the other
    controls, ``j = 0..N0-1``; otherwise one per replication) and
    ``draws`` the index into ``fits`` of each replication.
    """

    method: str
    se: float
    estimates: np.ndarray
    fits: BatchFit | None = None
    draws: np.ndarray | None = None
    pseudo_treated: list = field(default_factory=list)


def placebo_problems(n_control: int, n_treated: int, n_pre: int, n_periods: int, permutations: np.ndarray) -> Problems:
    """Placebo problems from permutations of the controls ``(reps, N0)``: the last ``N1`` entries of each
    are pseudo-treated, the others (in index order) the controls."""
    perm = np.asarray(permutations)
    ctl = np.sort(perm[:, : n_control - n_treated], axis=1)
    tr = perm[:, n_control - n_treated :]
    reps = perm.shape[0]
    return Problems(controls=ctl, treated=tr, pre_end=np.full(reps, n_pre), post_end=np.full(reps, n_periods))


def placebo_se(Y: np.ndarray, est: Fit, *, reps: int = 200, seed=None, X: np.ndarray | None = None) -> Replications:
    """Algorithm 4 of Arkhangelsky et al. (R ``placebo_se``): ``reps`` placebo launches among the controls.

    Each replication permutes the controls, treats the last ``N1`` of them as
    launched and re-estimates on the controls only, starting from the
    estimate's weights (``omega`` restricted to the remaining controls and
    renormalized, ``lambda`` as is) with the estimate's regularization. With
    one treated unit the ``N0`` possible placebo problems are solved once and
    the replications drawn from them (the same draws as solving each). Needs
    more controls than treated units.
    """
    Y = np.asarray(Y, dtype=np.float64)
    N, T = Y.shape
    N0, T0 = est.n_control, est.n_pre
    N1 = N - N0
    if N0 <= N1:
        raise DataError(
            f"placebo inference needs more comparison units than launched units; there are {N0} "
            f"comparison and {N1} launched units"
        )
    rng = np.random.default_rng(seed)
    perms = rng.permuted(np.tile(np.arange(N0), (reps, 1)), axis=1)
    Yc = Y[:N0]
    Xc = None if X is None else X[:N0]
    if N1 == 1:
        pr = placebo_problems(N0, 1, T0, T, np.array([np.r_[np.delete(np.arange(N0), j), j] for j in range(N0)]))
        draws = perms[:, -1]
        pseudo = [[j] for j in range(N0)]
    else:
        pr = placebo_problems(N0, N1, T0, T, perms)
        draws = np.arange(reps)
        pseudo = [list(p) for p in perms[:, N0 - N1 :]]
    omega0 = np.where(pr.controls >= 0, est.omega[np.maximum(pr.controls, 0)], 0.0)
    lambda0 = np.broadcast_to(est.lam, (pr.size, T0))
    res = solve(Yc, pr, est.reg, X=Xc, omega_init=omega0, lambda_init=lambda0)
    values = res.estimate[draws]
    return Replications(
        method="placebo", se=_replication_se(values), estimates=values, fits=res, draws=draws, pseudo_treated=pseudo
    )


def bootstrap_se(Y: np.ndarray, est: Fit, *, reps: int = 200, seed=None, X: np.ndarray | None = None) -> Replications:
    """Algorithm 2 (R ``bootstrap_se``): resample all units with replacement, re-estimate.

    Draws without a treated or without a control unit are discarded and
    redrawn; weights restart from the estimate's (``omega`` of the drawn
    controls, renormalized). Undefined with one treated unit.
    """
    Y = np.asarray(Y, dtype=np.float64)
    N, T = Y.shape
    N0, T0 = est.n_control, est.n_pre
    if N - N0 < 2:
        raise DataError(
            "bootstrap inference needs at least two launched units (a resample of one launched unit "
            "has no variation to measure); with one launched unit use inference='placebo'"
        )
    rng = np.random.default_rng(seed)
    draws: list[np.ndarray] = []
    while len(draws) < reps:
        cand = np.sort(rng.integers(0, N, size=(max(2 * (reps - len(draws)), 16), N)), axis=1)
        ok = (cand[:, 0] < N0) & (cand[:, -1] >= N0)
        draws.extend(cand[ok][: reps - len(draws)])
    ctl = _pad_rows([d[d < N0] for d in draws])
    tr = _pad_rows([d[d >= N0] for d in draws])
    pr = Problems(controls=ctl, treated=tr, pre_end=np.full(reps, T0), post_end=np.full(reps, T))
    omega0 = np.where(ctl >= 0, est.omega[np.maximum(ctl, 0)], 0.0)
    res = solve(Y, pr, est.reg, X=X, omega_init=omega0, lambda_init=np.broadcast_to(est.lam, (reps, T0)))
    return Replications(method="bootstrap", se=_replication_se(res.estimate), estimates=res.estimate)


def jackknife_se(Y: np.ndarray, est: Fit, *, X: np.ndarray | None = None) -> Replications:
    """Algorithm 3 (R ``jackknife_se``, fixed weights): leave each unit out, keep ``lambda``, renormalize ``omega``.

    ``se = sqrt((n - 1) / n * (n - 1) var(tau_-i))`` over the ``n = N`` units.
    Undefined with one treated unit, or when only one control has a positive
    weight (R returns NA; here a :class:`~abkit.errors.DataError`).
    """
    Y = np.asarray(Y, dtype=np.float64)
    N, T = Y.shape
    N0, T0 = est.n_control, est.n_pre
    if N - N0 < 2:
        raise DataError(
            "jackknife inference needs at least two launched units (leaving out the only launched "
            "unit leaves nothing to estimate); with one launched unit use inference='placebo'"
        )
    if int((est.omega != 0).sum()) == 1:
        raise DataError(
            "jackknife inference is undefined when one comparison unit carries all the weight "
            "(leaving it out leaves no synthetic comparison); use inference='placebo' or 'bootstrap'"
        )
    keep = [np.delete(np.arange(N), i) for i in range(N)]
    ctl = _pad_rows([k[k < N0] for k in keep])
    tr = _pad_rows([k[k >= N0] for k in keep])
    pr = Problems(controls=ctl, treated=tr, pre_end=np.full(N, T0), post_end=np.full(N, T))
    omega0 = np.where(ctl >= 0, est.omega[np.maximum(ctl, 0)], 0.0)
    fixed = replace(est.reg, update_omega=False, update_lambda=False)
    res = solve(Y, pr, fixed, X=X, omega_init=omega0, lambda_init=np.broadcast_to(est.lam, (N, T0)))
    u = res.estimate
    se = float(math.sqrt((N - 1) / N * (N - 1) * np.var(u, ddof=1)))
    return Replications(method="jackknife", se=se, estimates=u)


def rmspe_p_value(treated_ratio: float, placebo_ratios: np.ndarray) -> float:
    """Abadie, Diamond & Hainmueller (2010): ``(1 + #{placebo ratio >= treated ratio}) / (1 + n_placebo)``,
    the treated unit ranked among all units by the ratio of post- to pre-launch RMSPE."""
    r = np.asarray(placebo_ratios, dtype=np.float64)
    r = r[np.isfinite(r)]
    if not np.isfinite(treated_ratio) or r.size == 0:
        return np.nan
    return float((1 + np.count_nonzero(r >= treated_ratio)) / (1 + r.size))


# --------------------------------------------------------------------------
# Conformal inference (Chernozhukov, Wuthrich & Zhu 2021)
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class ConformalResult:
    """Conformal intervals for the effect of every post-period and for a constant effect.

    ``ci_lower[j]``, ``ci_upper[j]``: the values ``theta`` of the effect in
    post-period ``j`` that the test does not reject at level ``alpha``
    (``-inf``/``inf`` when no value can be rejected: fewer than ``1 / alpha``
    periods, or an interval wider than the searched range); ``p_value[j]``:
    the test of no effect in that period. ``p_value_joint``: the test of no
    effect in any post-period; ``constant_ci``: the interval for an effect
    constant over the post-periods. Interval ends are located to within
    ``resolution`` (in outcome units) and reported at the outer end.
    """

    effect: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    p_value: np.ndarray
    p_value_joint: float
    constant_ci: tuple[float, float]
    alpha: float
    resolution: float


def _unit_residuals(Z: np.ndarray, z: np.ndarray, row_ok: np.ndarray, reg: Regularization) -> np.ndarray:
    """Residuals ``z - omega_0 - Z omega`` of the method's unit-weight fit on all (real) rows, per problem.

    SDID: intercept and ridge ``zeta_omega``; SC: no intercept, ridge
    ``zeta_omega``; DiD: uniform weights and an intercept. ``Z`` (B, n, K),
    ``z`` (B, n), padding rows 0 and ``row_ok`` False.
    """
    B, _, K = Z.shape
    n_rows = row_ok.sum(axis=1).astype(np.float64)
    if reg.method == "did":
        e = (z - Z.mean(axis=2)) * row_ok
        return (e - (e.sum(axis=1) / n_rows)[:, None]) * row_ok
    A, b = (Z, z) if reg.method == "sc" else _center(Z, z, row_ok, n_rows)
    omega = _run_fw(
        [(A, b, np.full(B, reg.zeta_omega), np.full((B, K), 1.0 / K), np.ones((B, K), bool), n_rows)],
        reg,
        np.full(B, reg.min_decrease),
    )[0]
    return (b - (A @ omega[:, :, None])[:, :, 0]) * row_ok


def _block_statistic(u: np.ndarray, n_post: int) -> np.ndarray:
    """p-values of CWZ's test with ``S(u) = sum_post |u_t|`` and the ``T`` moving-block (cyclic) permutations."""
    a = np.abs(u)
    T = a.shape[1]
    cs = np.concatenate([np.zeros((a.shape[0], 1)), np.cumsum(np.concatenate([a, a], axis=1), axis=1)], axis=1)
    j = np.arange(T)
    start = T - n_post + j  # the post block shifted by j (cyclically)
    s_j = cs[:, start + n_post] - cs[:, start]
    s0 = s_j[:, :1]
    return (s_j >= s0 - 1e-12 * np.maximum(1.0, np.abs(s0))).mean(axis=1)


def conformal(Y: np.ndarray, est: Fit, alpha: float = 0.05) -> ConformalResult:
    """Chernozhukov, Wuthrich & Zhu (2021) conformal inference on the post-launch path.

    For the hypothesis "the effect in post-period ``t`` is ``theta``": subtract
    ``theta`` from the treated outcome in ``t``, refit the method's unit
    weights (:func:`_unit_residuals`) on the pre-periods plus ``t``, and rank
    ``|u_t|`` among all ``|u_s|``: ``p = #{s: |u_s| >= |u_t|} / (T0 + 1)``. The
    interval is the set of ``theta`` not rejected (``p > alpha``), found by a
    bracketing search around the estimated gap. The joint test of no effect
    (and the interval for a constant effect) refits on all periods under the
    null and compares ``S = sum_post |u_t|`` with its ``T`` cyclic (moving
    block) shifts. Exact under exchangeable residuals, approximately valid
    under stationarity and weak dependence.
    """
    Y = np.asarray(Y, dtype=np.float64)
    T = Y.shape[1]
    N0, T0 = est.n_control, est.n_pre
    T1 = T - T0
    ytr = Y[N0:].mean(axis=0)
    Yco = Y[:N0].T  # (T, N0)
    gap = est.gap
    scale = max(est.pre_rmspe, est.reg.noise_level, 1e-12 * max(1.0, float(np.abs(ytr).max())))
    centers = np.r_[gap[T0:], est.estimate]  # T1 period targets, then the constant effect
    n_targets = T1 + 1

    def pvalues(target: np.ndarray, theta: np.ndarray) -> np.ndarray:
        B = target.size
        Z = np.zeros((B, T, N0))
        z = np.zeros((B, T))
        ok = np.zeros((B, T), bool)
        period = target < T1
        # per-period tests: rows = pre-periods + the tested period (last)
        if period.any():
            bi = np.nonzero(period)[0]
            rows = np.c_[np.tile(np.arange(T0), (bi.size, 1)), T0 + target[bi]]
            Z[bi, : T0 + 1] = Yco[rows]
            z[bi, : T0 + 1] = ytr[rows]
            z[bi, T0] -= theta[bi]
            ok[bi, : T0 + 1] = True
        if (~period).any():
            bi = np.nonzero(~period)[0]
            Z[bi] = Yco
            z[bi] = ytr
            z[bi, T0:] -= theta[bi][:, None]
            ok[bi] = True
        u = _unit_residuals(Z, z, ok, est.reg)
        p = np.empty(B)
        if period.any():
            bi = np.nonzero(period)[0]
            a = np.abs(u[bi, : T0 + 1])
            last = a[:, -1:]
            p[bi] = (a >= last - 1e-12 * np.maximum(1.0, last)).mean(axis=1)
        if (~period).any():
            bi = np.nonzero(~period)[0]
            p[bi] = _block_statistic(u[bi], T1)
        return p

    # stage 1: theta = 0, the estimate, and offsets of 0.5..32 noise scales on both sides
    offsets = scale * np.array([0.5, 1, 2, 4, 8, 16, 32], dtype=np.float64)
    tgt = np.arange(n_targets)
    grid = np.c_[centers[:, None] - offsets[::-1], centers[:, None], centers[:, None] + offsets]  # (targets, 15)
    thetas = np.c_[np.zeros(n_targets), grid]
    p = pvalues(np.repeat(tgt, thetas.shape[1]), thetas.ravel()).reshape(thetas.shape)
    p_zero = p[:, 0]
    accepted = p[:, 1:] > alpha
    mid = offsets.size
    bounds = np.empty((n_targets, 2, 2))  # target, side (lower, upper), (inner accepted, outer rejected)
    for side, cols in ((0, np.arange(mid, -1, -1)), (1, np.arange(mid, 2 * mid + 1))):
        acc = accepted[:, cols]
        # first rejection walking outwards from the estimate
        rej = ~acc
        first = np.where(rej.any(axis=1), rej.argmax(axis=1), -1)
        for j in range(n_targets):
            if first[j] == -1:
                bounds[j, side] = (grid[j, cols[-1]], np.inf if side else -np.inf)
            elif first[j] == 0:
                bounds[j, side] = (np.nan, np.nan)  # the estimate itself is rejected
            else:
                bounds[j, side] = (grid[j, cols[first[j] - 1]], grid[j, cols[first[j]]])
    # stages 2-3: 8 points inside every finite bracket
    for _ in range(2):
        finite = np.isfinite(bounds[:, :, 1]) & np.isfinite(bounds[:, :, 0])
        idx = np.argwhere(finite)
        if idx.size == 0:
            break
        inner, outer = bounds[idx[:, 0], idx[:, 1], 0], bounds[idx[:, 0], idx[:, 1], 1]
        frac = np.arange(1, 9) / 9.0
        pts = inner[:, None] + (outer - inner)[:, None] * frac[None, :]
        pp = pvalues(np.repeat(idx[:, 0], 8), pts.ravel()).reshape(pts.shape)
        acc = pp > alpha
        rej = ~acc
        first = np.where(rej.any(axis=1), rej.argmax(axis=1), 8)
        for r, (j, side) in enumerate(idx):
            lo_in = inner[r] if first[r] == 0 else pts[r, first[r] - 1]
            hi_out = outer[r] if first[r] == 8 else pts[r, first[r]]
            bounds[j, side] = (lo_in, hi_out)
    lower, upper = bounds[:, 0, 1], bounds[:, 1, 1]
    # intervals that cannot reject anything are the whole line
    if 1.0 / (T0 + 1) > alpha:
        lower[:T1], upper[:T1] = -np.inf, np.inf
    if 1.0 / T > alpha:
        lower[T1], upper[T1] = -np.inf, np.inf
    width = np.abs(bounds[:, :, 1] - bounds[:, :, 0])
    resolution = float(np.nanmax(np.where(np.isfinite(width), width, np.nan))) if np.isfinite(width).any() else np.nan
    return ConformalResult(
        effect=gap[T0:].copy(),
        ci_lower=lower[:T1].copy(),
        ci_upper=upper[:T1].copy(),
        p_value=p_zero[:T1].copy(),
        p_value_joint=float(p_zero[T1]),
        constant_ci=(float(lower[T1]), float(upper[T1])),
        alpha=alpha,
        resolution=resolution,
    )


# --------------------------------------------------------------------------
# Staggered adoption (Arkhangelsky et al. 2021, Appendix A; Clarke et al. 2023)
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class CohortSpec:
    """One adoption cohort: its first treated period (index), treated units (indices) and regularization."""

    start: int
    treated: np.ndarray
    reg: Regularization


@dataclass(frozen=True)
class StaggeredFit:
    """Per-cohort estimates against the never-treated units and their weighted average.

    ``weights[a] = N1_a T1_a / sum_b N1_b T1_b`` (treated units times
    post-periods); ``estimate = sum_a weights[a] estimates[a]``. ``fits``
    holds the per-cohort weights and gap paths (one problem per cohort, in
    ``cohorts`` order, controls = ``never``).
    """

    estimate: float
    cohorts: list
    never: np.ndarray
    weights: np.ndarray
    estimates: np.ndarray
    fits: BatchFit


def cohort_specs(Y: np.ndarray, first: np.ndarray, method: str) -> tuple[list[CohortSpec], np.ndarray]:
    """The cohorts of a staggered design (``first[i]`` = index of unit i's first treated period, -1 never)."""
    Y = np.asarray(Y, dtype=np.float64)
    T = Y.shape[1]
    never = np.nonzero(first < 0)[0]
    specs = []
    for start in np.unique(first[first >= 0]):
        tr = np.nonzero(first == start)[0]
        specs.append(
            CohortSpec(
                start=int(start), treated=tr, reg=regularization(Y[never, :start], tr.size, T - int(start), method)
            )
        )
    return specs, never


def _cohort_weights(n_treated: np.ndarray, n_post: np.ndarray) -> np.ndarray:
    w = n_treated.astype(np.float64) * n_post
    return w / w.sum()


def _cohort_problems(specs, controls_list, treated_list, T):
    return Problems(
        controls=_pad_rows(controls_list),
        treated=_pad_rows(treated_list),
        pre_end=np.array([s.start for s in specs]),
        post_end=np.full(len(specs), T),
    )


def _solve_cohorts(
    Y, specs, controls_list, treated_list, X=None, omega_init=None, lambda_init=None, fixed: bool = False
) -> BatchFit:
    T = Y.shape[1]
    pr = _cohort_problems(specs, controls_list, treated_list, T)
    reg = specs[0].reg
    if fixed:
        reg = replace(reg, update_omega=False, update_lambda=False)
    lam0 = None
    if lambda_init is not None:
        P = int(pr.pre_end.max())
        lam0 = np.zeros((pr.size, P))
        for j, lam in enumerate(lambda_init):
            lam0[j, : lam.size] = lam
    om0 = None if omega_init is None else _pad_weights(omega_init, pr.controls.shape[1])
    return solve(
        Y,
        pr,
        reg,
        X=X,
        omega_init=om0,
        lambda_init=lam0,
        zeta_omega=np.array([s.reg.zeta_omega for s in specs]),
        zeta_lambda=np.array([s.reg.zeta_lambda for s in specs]),
        min_decrease=np.array([s.reg.min_decrease for s in specs]),
    )


def _pad_weights(rows, width: int) -> np.ndarray:
    out = np.zeros((len(rows), width))
    for j, r in enumerate(rows):
        out[j, : len(r)] = r
    return out


def staggered(
    Y: np.ndarray, specs: list[CohortSpec], never: np.ndarray, *, X: np.ndarray | None = None
) -> StaggeredFit:
    """Estimate each cohort ``a`` on the never-treated units plus its own units, pre-periods ``< start_a``,
    post-periods ``>= start_a`` (later cohorts left out), then average with ``N1_a T1_a`` weights."""
    Y = np.asarray(Y, dtype=np.float64)
    T = Y.shape[1]
    res = _solve_cohorts(Y, specs, [never] * len(specs), [s.treated for s in specs], X=X)
    w = _cohort_weights(np.array([s.treated.size for s in specs]), np.array([T - s.start for s in specs]))
    return StaggeredFit(
        estimate=float(w @ res.estimate), cohorts=specs, never=never, weights=w, estimates=res.estimate.copy(), fits=res
    )


def _cohort_omega(fit: StaggeredFit, a: int, controls: np.ndarray) -> np.ndarray:
    """Cohort ``a``'s unit weights on ``controls`` (indices of units, a subset of ``never`` with repeats)."""
    pos = np.searchsorted(fit.never, controls)
    return fit.fits.omega[a, pos]


def staggered_placebo_se(
    Y: np.ndarray, fit: StaggeredFit, *, reps: int = 200, seed=None, X: np.ndarray | None = None
) -> Replications:
    """Placebo SE for staggered adoption (Clarke et al. 2023, Algorithm 4 generalized; Stata ``sdid``):
    ``N1`` never-treated units drawn at random get the launched units' adoption periods (cohort sizes
    kept), every cohort is re-estimated on the remaining never-treated units, and the average is formed
    with the original cohort weights."""
    Y = np.asarray(Y, dtype=np.float64)
    never = fit.never
    sizes = [s.treated.size for s in fit.cohorts]
    n_tr = sum(sizes)
    if never.size <= n_tr:
        raise DataError(
            f"placebo inference needs more never-launched units than launched units; there are "
            f"{never.size} never-launched and {n_tr} launched units"
        )
    rng = np.random.default_rng(seed)
    perms = rng.permuted(np.tile(never, (reps, 1)), axis=1)
    bounds = np.cumsum([0, *sizes])
    specs, ctl, trs, om0, lam0 = [], [], [], [], []
    for r in range(reps):
        controls = np.sort(perms[r, : never.size - n_tr])
        pseudo = perms[r, never.size - n_tr :]
        for a, spec in enumerate(fit.cohorts):
            specs.append(spec)
            ctl.append(controls)
            trs.append(pseudo[bounds[a] : bounds[a + 1]])
            om0.append(_cohort_omega(fit, a, controls))
            lam0.append(fit.fits.lam[a, : spec.start])
    res = _solve_cohorts(Y, specs, ctl, trs, X=X, omega_init=om0, lambda_init=lam0)
    values = res.estimate.reshape(reps, len(fit.cohorts)) @ fit.weights
    return Replications(method="placebo", se=_replication_se(values), estimates=values, fits=res, draws=np.arange(reps))


def staggered_bootstrap_se(
    Y: np.ndarray, fit: StaggeredFit, *, reps: int = 200, seed=None, X: np.ndarray | None = None
) -> Replications:
    """Bootstrap SE for staggered adoption (Clarke et al. 2023, Algorithm 2): resample units, re-estimate
    the cohorts present in the draw, re-weight by the drawn cohort sizes (draws without a never-treated or
    without a launched unit are redrawn)."""
    Y = np.asarray(Y, dtype=np.float64)
    N, T = Y.shape
    cohort_of = np.full(N, -1)
    for a, s in enumerate(fit.cohorts):
        cohort_of[s.treated] = a
    if sum(s.treated.size for s in fit.cohorts) < 2:
        raise DataError("bootstrap inference needs at least two launched units; use inference='placebo'")
    rng = np.random.default_rng(seed)
    specs, ctl, trs, om0, lam0, owner, n1, t1 = [], [], [], [], [], [], [], []
    got = 0
    while got < reps:
        draw = np.sort(rng.integers(0, N, N))
        coh = cohort_of[draw]
        if not ((coh < 0).any() and (coh >= 0).any()):
            continue
        controls = draw[coh < 0]
        for a, spec in enumerate(fit.cohorts):
            tr = draw[coh == a]
            if tr.size == 0:
                continue
            specs.append(spec)
            ctl.append(controls)
            trs.append(tr)
            om0.append(_cohort_omega(fit, a, controls))
            lam0.append(fit.fits.lam[a, : spec.start])
            owner.append(got)
            n1.append(tr.size)
            t1.append(T - spec.start)
        got += 1
    res = _solve_cohorts(Y, specs, ctl, trs, X=X, omega_init=om0, lambda_init=lam0)
    owner_index = np.asarray(owner)
    w = np.asarray(n1, dtype=np.float64) * np.asarray(t1)
    values = np.bincount(owner_index, weights=w * res.estimate, minlength=reps) / np.bincount(
        owner_index, weights=w, minlength=reps
    )
    return Replications(method="bootstrap", se=_replication_se(values), estimates=values)


def staggered_jackknife_se(Y: np.ndarray, fit: StaggeredFit, *, X: np.ndarray | None = None) -> Replications:
    """Jackknife SE for staggered adoption (fixed weights, Clarke et al. 2023 Algorithm 3): leave each unit
    out, renormalize the cohorts' unit weights, keep the time weights, re-weight the cohorts. Needs at
    least two launched units in every cohort."""
    Y = np.asarray(Y, dtype=np.float64)
    N, T = Y.shape
    small = [s.start for s in fit.cohorts if s.treated.size < 2]
    if small:
        raise DataError(
            f"jackknife inference needs at least two launched units in every launch cohort; the "
            f"cohort(s) launching at period index {small} have one; use inference='placebo'"
        )
    for a in range(len(fit.cohorts)):
        if int((fit.fits.omega[a, : fit.never.size] != 0).sum()) == 1:
            raise DataError(
                "jackknife inference is undefined when one comparison unit carries all the weight of "
                "a cohort; use inference='placebo' or 'bootstrap'"
            )
    specs, ctl, trs, om0, lam0, owner, n1, t1 = [], [], [], [], [], [], [], []
    for i in range(N):
        controls = fit.never[fit.never != i]
        for a, spec in enumerate(fit.cohorts):
            tr = spec.treated[spec.treated != i]
            specs.append(spec)
            ctl.append(controls)
            trs.append(tr)
            om0.append(_cohort_omega(fit, a, controls))
            lam0.append(fit.fits.lam[a, : spec.start])
            owner.append(i)
            n1.append(tr.size)
            t1.append(T - spec.start)
    res = _solve_cohorts(Y, specs, ctl, trs, X=X, omega_init=om0, lambda_init=lam0, fixed=True)
    owner_index = np.asarray(owner)
    w = np.asarray(n1, dtype=np.float64) * np.asarray(t1)
    u = np.bincount(owner_index, weights=w * res.estimate, minlength=N) / np.bincount(
        owner_index, weights=w, minlength=N
    )
    se = float(math.sqrt((N - 1) / N * (N - 1) * np.var(u, ddof=1)))
    return Replications(method="jackknife", se=se, estimates=u)
