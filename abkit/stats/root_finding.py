"""Vectorized bracketing root finder for the power equations (one pass over a grid of scenarios).

Regula falsi with the Illinois modification (Dowell and Jarratt 1971,
"The 'Pegasus' method for computing the root of an equation", BIT 12; the
Illinois variant halves the retained end's value when the same end moves
twice), falling back to bisection when the secant leaves the bracket. Each
element of an array of increasing functions is solved at once; only the
unconverged elements are evaluated again.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RTOL = 1e-12


def find_root(
    f: Callable,
    lo: np.ndarray,
    hi: np.ndarray,
    f_lo: np.ndarray,
    f_hi: np.ndarray,
    rtol: float = RTOL,
    ftol: float = 1e-14,
    maxiter: int = 200,
) -> np.ndarray:
    """Root of increasing functions, elementwise, on brackets ``f(lo) < 0 <= f(hi)``.

    ``f(x, i)`` evaluates the functions of elements ``i`` (flat indices) at
    ``x``. Regula falsi with the Illinois modification (halve the retained
    end's value when the same end moves twice), falling back to bisection
    when the secant leaves the bracket; only unconverged elements are
    evaluated.
    """
    lo, hi, f_lo, f_hi = (np.array(a, dtype=np.float64) for a in (lo, hi, f_lo, f_hi))
    n = lo.size
    out = np.where(f_hi == 0, hi, np.nan)
    side = np.zeros(n, dtype=np.int8)
    active = ~(f_hi == 0)
    for _ in range(maxiter):
        i = np.flatnonzero(active)
        if i.size == 0:
            break
        a, b, fa, fb = lo[i], hi[i], f_lo[i], f_hi[i]
        with np.errstate(invalid="ignore", divide="ignore"):
            x = b - fb * (b - a) / (fb - fa)
        bad = ~((x > a) & (x < b))
        x[bad] = 0.5 * (a[bad] + b[bad])
        fx = f(x, i)
        left = fx < 0
        same = side[i] == np.where(left, -1, 1)
        li, ri = i[left], i[~left]
        lo[li], f_lo[li] = x[left], fx[left]
        hi[ri], f_hi[ri] = x[~left], fx[~left]
        f_hi[i[same & left]] *= 0.5
        f_lo[i[same & ~left]] *= 0.5
        side[i] = np.where(left, -1, 1)
        # converged: the bracket is tiny, or the equation holds to 1e-14 (the
        # precision of a probability near 1: the answer cannot get more exact)
        done = (hi[i] - lo[i] <= rtol * np.abs(x)) | (np.abs(fx) <= ftol)
        out[i[done]] = x[done]
        active[i[done]] = False
    rest = np.flatnonzero(active)
    out[rest] = 0.5 * (lo[rest] + hi[rest])
    return out


def expand_bracket_up(
    f: Callable, lo: np.ndarray, f_lo: np.ndarray, hi: np.ndarray, factor: float = 2.0, limit: int = 80
):
    """Move ``hi`` up (the old ``hi`` becoming ``lo``) until ``f(hi) >= 0``.

    Returns ``lo, f_lo, hi, f_hi`` (new arrays).
    """
    lo, f_lo, hi = lo.copy(), f_lo.copy(), hi.copy()
    f_hi = f(hi, np.arange(hi.size))
    for _ in range(limit):
        need = np.flatnonzero(f_hi < 0)
        if need.size == 0:
            break
        lo[need], f_lo[need] = hi[need], f_hi[need]
        hi[need] = hi[need] * factor
        f_hi[need] = f(hi[need], need)
    return lo, f_lo, hi, f_hi
