"""The normal, Student t and chi-square tail functions the A/B path needs, from ``scipy.special``.

``scipy.stats`` computes these with the same special functions (its
``norm``, ``t`` and ``chi2`` call ``ndtr``, ``ndtri``, ``stdtr``, ``stdtrit``
and ``chdtrc``, so the values are identical to the last bit), but importing
it costs about 0.4 s of CPU in every process that imports it, once per
readout kernel: the readout's statistics import this module instead, and
``scipy.stats`` is loaded only where a distribution it alone has is needed
(the DiD estimators, the F and beta distributions).

Formulas (Abramowitz and Stegun 26.2, 26.4, 26.7): with ``Phi`` the standard
normal distribution function (``ndtr``),

    norm_sf(x) = Phi(-x),   norm_isf(q) = -Phi^{-1}(q),
    t_sf(x, df) = T_df(-x),  t_isf(q, df) = -T_df^{-1}(q),
    chi2_sf(x, df) = Q(df / 2, x / 2)  (the regularized upper incomplete gamma function),
    nct_sf(x, df, nc) = P(T'_{df,nc} > x)  (the noncentral t; Boost's algorithm, as scipy.stats.nct.sf).

Survival functions are computed directly, never as ``1 - cdf`` (no
cancellation in the tails). Arguments broadcast like numpy ufuncs; a scalar
in gives a numpy float64 out, as ``scipy.stats`` does.
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["chi2_sf", "nct_sf", "norm_cdf", "norm_isf", "norm_pdf", "norm_ppf", "norm_sf", "t_isf", "t_sf"]

_SQRT_2PI = np.sqrt(2.0 * np.pi)


def norm_cdf(x):
    """``P(Z <= x)`` for a standard normal ``Z``."""
    return special.ndtr(x)


def norm_sf(x):
    """``P(Z > x) = Phi(-x)``."""
    return special.ndtr(np.negative(x))


def norm_ppf(q):
    """The ``q`` quantile, ``Phi^{-1}(q)``."""
    return special.ndtri(q)


def norm_isf(q):
    """The upper ``q`` quantile, ``x`` with ``P(Z > x) = q``: ``-Phi^{-1}(q)`` (1.96 at 0.025)."""
    return np.negative(special.ndtri(q))


def norm_pdf(x):
    """The standard normal density ``exp(-x^2 / 2) / sqrt(2 pi)``."""
    x = np.asarray(x, dtype=float)
    return np.exp(-(x**2) / 2.0) / _SQRT_2PI


def t_sf(x, df):
    """``P(T > x)`` for Student's t with ``df`` degrees of freedom (``df = inf``: the normal)."""
    return special.stdtr(df, np.negative(x))


def t_isf(q, df):
    """The upper ``q`` quantile of Student's t with ``df`` degrees of freedom (``q = 0``: ``inf``)."""
    q, df = np.broadcast_arrays(np.asarray(q, dtype=float), np.asarray(df, dtype=float))
    out = np.negative(special.stdtrit(df, q))
    return np.where((q == 0.0) & (df > 0.0), np.inf, out)[()]


def chi2_sf(x, df):
    """``P(X > x)`` for a chi-square ``X`` with ``df > 0`` degrees of freedom (1 for ``x <= 0``; else NaN)."""
    x, df = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(df, dtype=float))
    return np.where(df > 0.0, special.chdtrc(df, np.maximum(x, 0.0)), np.nan)[()]


def nct_sf(x, df, nc):
    """``P(T > x)`` for the noncentral t with ``df`` degrees of freedom and noncentrality ``nc``.

    The survival function ``scipy.stats.nct.sf`` computes (Boost's noncentral t,
    clipped to [0, 1]), from the ufunc it calls; a scipy without that ufunc
    gets ``scipy.stats.nct.sf`` itself.
    """
    try:
        from scipy.special._ufuncs import _nct_sf
    except ImportError:  # pragma: no cover - a scipy that moved it: the public (slower to import) function
        from scipy import stats

        return stats.nct.sf(x, df, nc)
    with np.errstate(over="ignore"):
        return np.clip(_nct_sf(x, df, nc), 0.0, 1.0)[()]
