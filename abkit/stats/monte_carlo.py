"""The Monte Carlo error of a simulated power (or of any simulated rejection rate).

:func:`abkit.power.simulate_power` estimates power as the share ``k / S`` of
``S`` simulated tests that reject. Its uncertainty is binomial:
:func:`monte_carlo_ci` gives the exact Clopper-Pearson (1934) interval

    lower = Beta_{alpha/2}(k, S - k + 1),   upper = Beta_{1-alpha/2}(k + 1, S - k)

(quantiles of Beta distributions; ``lower = 0`` when ``k = 0``, ``upper = 1``
when ``k = S``), which never covers less than its level, and the standard
error ``sqrt(p (1 - p) / S)``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..errors import AbkitError
from .power_inputs import _arr, _out, _require


def monte_carlo_ci(rejections, n_sims, level: float = 0.95):
    """Exact Clopper-Pearson interval for a rejection rate ``rejections / n_sims``.

    Returns ``(lower, upper)`` (floats, or arrays for array input). ``level``
    is the coverage (default 0.95); the interval is conservative: its
    coverage is at least ``level`` for every true power (Clopper and Pearson
    1934, "The use of confidence or fiducial limits illustrated in the case
    of the binomial", Biometrika 26).

    >>> monte_carlo_ci(800, 1000)  # doctest: +ELLIPSIS
    (0.77..., 0.82...)
    """
    k = _arr(rejections, "rejections")
    n = _arr(n_sims, "n_sims")
    _require(n >= 1, "n_sims", n, "must be >= 1 (simulated tests)")
    _require((k >= 0) & (k <= n) & (k == np.round(k)), "rejections", k, "must be a whole number between 0 and n_sims")
    lv = float(_arr(level, "level"))
    if not 0.0 < lv < 1.0:
        raise AbkitError(f"level={lv!r} must be in (0, 1), e.g. 0.95")
    a = 1.0 - lv
    with np.errstate(invalid="ignore"):
        lo = np.where(k > 0, stats.beta.ppf(a / 2.0, np.maximum(k, 1e-300), n - k + 1.0), 0.0)
        hi = np.where(k < n, stats.beta.ppf(1.0 - a / 2.0, k + 1.0, np.maximum(n - k, 1e-300)), 1.0)
    return _out(lo), _out(hi)
