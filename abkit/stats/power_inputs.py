"""Argument checks and output shapes shared by the closed-form power modules.

The power math (:mod:`abkit.stats.t_test_power`,
:mod:`abkit.stats.proportion_power`, :mod:`abkit.stats.panel_power`,
:mod:`abkit.stats.design_effects`, :mod:`abkit.stats.enrollment`,
:mod:`abkit.stats.monte_carlo`) takes scalars or numpy arrays that broadcast
against each other; every input is checked here with a message that names
the argument and its first bad value, and results come back as Python
floats for scalar input and arrays otherwise.
"""

from __future__ import annotations

import numpy as np

from ..errors import AbkitError

ALTERNATIVES = ("two-sided", "larger", "smaller")


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return repr(v)


def _arr(x, name: str) -> np.ndarray:
    """``x`` as a float64 array, or an AbkitError naming ``name``."""
    if isinstance(x, bool) or isinstance(x, str) or x is None:
        raise AbkitError(f"{name}={x!r} must be a number (or a numpy array of numbers)")
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise AbkitError(f"{name}={x!r} must be a number (or a numpy array of numbers)") from None
    if not np.all(np.isfinite(a)):
        bad = a[~np.isfinite(a)].flat[0]
        raise AbkitError(f"{name} must be finite; got {_fmt(bad)}")
    return a


def _require(ok, name: str, a, what: str) -> None:
    """Raise unless every element of ``ok`` holds; the message shows the first bad value."""
    ok = np.asarray(ok)
    if not np.all(ok):
        a = np.broadcast_to(np.asarray(a), ok.shape)
        raise AbkitError(f"{name}={_fmt(a[~ok].flat[0])} {what}")


def _check_alternative(alternative: str) -> int:
    if alternative not in ALTERNATIVES:
        raise AbkitError(
            f"alternative={alternative!r} is not known; use one of 'two-sided', 'larger' "
            "(treatment > control) or 'smaller' (statsmodels' words)"
        )
    return 2 if alternative == "two-sided" else 1


def _check_power(power, alpha_c) -> np.ndarray:
    p = _arr(power, "power")
    _require(
        (p > alpha_c) & (p < 1),
        "power",
        p,
        f"must be in (alpha, 1) = ({_fmt(float(np.max(alpha_c)))}, 1) (per-comparison alpha), e.g. 0.8",
    )
    return p


def _positive(x, name: str, hint: str = "") -> np.ndarray:
    a = _arr(x, name)
    _require(a > 0, name, a, "must be > 0" + hint)
    return a


def _check_ratio(ratio) -> np.ndarray:
    return _positive(ratio, "ratio", " (n_treatment / n_control, e.g. 1 for equal arms)")


def _check_vr(variance_reduction) -> np.ndarray:
    v = _arr(variance_reduction, "variance_reduction")
    _require(
        (v >= 0) & (v < 1),
        "variance_reduction",
        v,
        "must be in [0, 1): it is rho^2, the share of variance CUPED removes",
    )
    return v


def _check_margin(margin, tails: int) -> np.ndarray:
    m = _arr(margin, "margin")
    _require(
        m >= 0,
        "margin",
        m,
        "must be >= 0: a non-inferiority margin is the size of the "
        "tolerated degradation (the direction comes from alternative)",
    )
    if tails == 2 and np.any(m > 0):
        raise AbkitError(
            f"margin={_fmt(float(np.max(m)))} needs a one-sided test: use "
            "alternative='larger' (higher is better) or 'smaller' (lower is better)"
        )
    return m


def _check_n(n, name: str = "n_control") -> np.ndarray:
    a = _arr(n, name)
    _require(a > 0, name, a, "must be > 0 (units in the control arm)")
    return a


def _out(x):
    """0-d arrays become Python floats; arrays stay arrays."""
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


def _ceil(n) -> np.ndarray:
    # Guard against 100.00000000001 -> 101 from the root finder's last digits.
    n = np.asarray(n, dtype=np.float64)
    return np.ceil(n * (1.0 - 1e-10))


def _int_out(x):
    x = np.asarray(x)
    if x.ndim == 0:
        return int(x) if np.isfinite(x) else None
    return np.where(np.isfinite(x), x, -1).astype(np.int64)
