"""Multiple-testing control for a family of p-values.

* Holm (1979), "A simple sequentially rejective multiple test procedure",
  Scand. J. Statist. 6: controls the family-wise error rate under any
  dependence. Adjusted p_(i) = max_{j<=i} min(1, (m - j + 1) p_(j)).
* Benjamini and Hochberg (1995), "Controlling the false discovery rate",
  JRSS B 57: controls the false discovery rate for independent or
  positively dependent tests. Adjusted p_(i) = min_{j>=i} min(1, m p_(j) / j).

Both return adjusted p-values in the input order; NaN p-values are left
out of the family and stay NaN.
"""

from __future__ import annotations

import numpy as np

from ..errors import AbkitError

__all__ = ["adjust", "holm", "benjamini_hochberg", "CORRECTIONS"]


def holm(p_values) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error rate)."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    stepped = (m - np.arange(m)) * q[order]
    adj = np.minimum(np.maximum.accumulate(stepped), 1.0)
    res = np.empty(m)
    res[order] = adj
    out[ok] = res
    return out


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (false discovery rate)."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    scaled = q[order] * m / np.arange(1, m + 1)
    adj = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    res = np.empty(m)
    res[order] = adj
    out[ok] = res
    return out


CORRECTIONS = {"holm": holm, "bh": benjamini_hochberg}


def adjust(p_values, method: str) -> np.ndarray:
    """Adjust p-values with ``method`` = ``"holm"`` or ``"bh"``."""
    try:
        fn = CORRECTIONS[method]
    except KeyError:
        raise AbkitError(f"correction={method!r} is not known; use one of {sorted(CORRECTIONS)} or None") from None
    return fn(p_values)
