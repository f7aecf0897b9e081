"""Group-sequential boundaries: a planned number of looks, Lan-DeMets alpha spending.

The other sequential design, always-valid confidence sequences for continuous
monitoring, is in :mod:`abkit.stats.confidence_sequences`; the facade is
:mod:`abkit.sequential` (:func:`abkit.sequential.group_sequential_bounds`).

With ``K`` planned looks
at information fractions ``t_1 < ... < t_K``, the Lan-DeMets (1983,
"Discrete sequential boundaries for clinical trials", Biometrika 70)
alpha-spending approach chooses symmetric z boundaries ``b_k`` so that the
probability of first crossing ``|Z_k| >= b_k`` at look ``k`` under the null
equals ``alpha(t_k) - alpha(t_{k-1})``. Crossing probabilities are computed
by the recursive numerical integration of Armitage, McPherson and Rowe
(1969, JRSS A 132): with ``S_k = Z_k sqrt(t_k)`` a Brownian motion,

    f_1(s) = phi(s / sqrt(t_1)) / sqrt(t_1)
    f_k(s) = int_{|u| < c_{k-1}} f_{k-1}(u) phi((s - u) / sqrt(d_k)) / sqrt(d_k) du,
    d_k = t_k - t_{k-1},  c_k = b_k sqrt(t_k),

integrated with Simpson's rule on a fine grid (Jennison and Turnbull 2000,
"Group Sequential Methods", ch. 19). Spending functions, with alpha/2 per
side (the two-sided convention of R's ``gsDesign`` and ``ldbounds``):

* O'Brien-Fleming type: ``alpha(t) = 2 (2 - 2 Phi(z_{1 - alpha/4} / sqrt(t)))``
  in total, i.e. ``2 - 2 Phi(z_{1-alpha/4} / sqrt t)`` per side;
* Pocock type: ``alpha(t) = alpha log(1 + (e - 1) t)``.

For 5 equally spaced looks at alpha = 0.05 they give 4.8769, 3.3570,
2.6803, 2.2898, 2.0310 (O'Brien-Fleming type) and 2.4380, 2.4268, 2.4102,
2.3966, 2.3860 (Pocock type), the published values the tests check.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import optimize, stats

from ..errors import AbkitError
from .confidence_sequences import _check_alpha  # one alpha check for both sequential designs

__all__ = ["spending_function", "SPENDING", "group_sequential_z", "crossing_probabilities"]


def _obrien_fleming(alpha_side: float) -> Callable:
    z = stats.norm.isf(alpha_side / 2.0)

    def spend(t):
        t = np.asarray(t, dtype=np.float64)
        with np.errstate(divide="ignore"):
            return np.where(t > 0, 2.0 * stats.norm.sf(z / np.sqrt(np.maximum(t, 1e-300))), 0.0)

    return spend


def _pocock(alpha_side: float) -> Callable:
    def spend(t):
        return alpha_side * np.log1p((np.e - 1.0) * np.asarray(t, dtype=np.float64))

    return spend


SPENDING = {"obrien_fleming": _obrien_fleming, "pocock": _pocock}


def spending_function(spending: str, alpha: float = 0.05) -> Callable:
    """Cumulative alpha spent *per side* at information fraction ``t`` (two-sided ``alpha``).

    ``"obrien_fleming"``: ``2 - 2 Phi(z_{1-alpha/4} / sqrt t)``;
    ``"pocock"``: ``(alpha/2) log(1 + (e - 1) t)`` (Lan and DeMets 1983).
    Both equal ``alpha/2`` at ``t = 1``.
    """
    alpha = _check_alpha(alpha)
    try:
        make = SPENDING[spending]
    except KeyError:
        raise AbkitError(f"spending={spending!r} is not known; use one of {sorted(SPENDING)}") from None
    return make(alpha / 2.0)


def _check_fractions(t) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64).ravel()
    if t.size == 0 or not np.all(np.isfinite(t)) or np.any(t <= 0) or np.any(t > 1) or np.any(np.diff(t) <= 0):
        raise AbkitError(
            f"information_fractions={t.tolist()} must be strictly increasing and in (0, 1], "
            "e.g. [0.2, 0.4, 0.6, 0.8, 1.0]"
        )
    return t


class _Integrator:
    """The Armitage-McPherson-Rowe recursion for a Brownian motion ``S_t`` with drift.

    ``S_t ~ N(drift t, t)``; the sub-density of ``S_k`` on the continuation
    region ``|s| < c_k`` is carried on a Simpson grid of ``points`` nodes.
    """

    def __init__(self, t: np.ndarray, drift: float = 0.0, points: int = 501):
        self.t = t
        self.drift = float(drift)
        self.points = points | 1  # Simpson needs an odd number of nodes
        self.grid: np.ndarray | None = None  # nodes of the current continuation region
        self.weights: np.ndarray | None = None  # Simpson weights times the sub-density at the nodes

    def _region(self) -> tuple[np.ndarray, np.ndarray]:
        """The nodes and weights of the continuation region (set by :meth:`advance` at the previous look)."""
        if self.grid is None or self.weights is None:
            raise AbkitError("the continuation region is only known after advance() at the previous look")
        return self.grid, self.weights

    def crossing(self, k: int, c: float) -> tuple[float, float]:
        """P(first exit at look k above +c) and (below -c), given the region so far."""
        t, mu = self.t, self.drift
        if k == 0:
            sd = np.sqrt(t[0])
            return float(stats.norm.sf((c - mu * t[0]) / sd)), float(stats.norm.cdf((-c - mu * t[0]) / sd))
        grid, weights = self._region()
        sd = np.sqrt(t[k] - t[k - 1])
        m = grid + mu * (t[k] - t[k - 1])
        up = stats.norm.sf((c - m) / sd)
        down = stats.norm.cdf((-c - m) / sd)
        return float(weights @ up), float(weights @ down)

    def advance(self, k: int, c: float) -> None:
        """Condition on no exit at look k (``|S_k| < c``) and move the density there."""
        t, mu = self.t, self.drift
        # Nodes at most a quarter of the next increment's sd apart, so the
        # Gaussian kernel of the next step is resolved (capped for memory).
        step = np.sqrt(t[k + 1] - t[k]) if k + 1 < len(t) else 1.0
        points = int(min(max(self.points, 8.0 * c / step), 4001)) | 1
        nodes = np.linspace(-c, c, points)
        h = nodes[1] - nodes[0]
        simpson = np.ones(points)
        simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
        simpson *= h / 3.0
        if k == 0:
            dens = stats.norm.pdf(nodes, loc=mu * t[0], scale=np.sqrt(t[0]))
        else:
            grid, weights = self._region()
            sd = np.sqrt(t[k] - t[k - 1])
            u = (nodes[:, None] - (grid + mu * (t[k] - t[k - 1]))[None, :]) / sd
            dens = np.exp(-0.5 * u * u) @ weights / (sd * np.sqrt(2.0 * np.pi))
        self.grid, self.weights = nodes, simpson * dens


def group_sequential_z(
    information_fractions, alpha: float = 0.05, spending: str = "obrien_fleming", points: int = 501
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided symmetric Lan-DeMets boundaries on the z scale.

    Returns ``(z, spent)``: ``z[k]`` is the critical |Z| at look ``k`` and
    ``spent[k]`` the cumulative two-sided alpha spent through look ``k``.
    Each boundary solves ``P(first exit at look k, either side) =
    2 (a(t_k) - a(t_{k-1}))`` with ``a`` the per-side spending function,
    by Brent's method on the crossing probability of the recursive
    integration (see the module docstring). A look that spends nothing gets
    an infinite boundary.
    """
    t = _check_fractions(information_fractions)
    alpha = _check_alpha(alpha)
    spend = spending_function(spending, alpha)
    cumulative = 2.0 * spend(t)
    target = np.diff(np.concatenate(([0.0], cumulative)))
    walk = _Integrator(t, 0.0, points)
    z = np.empty(len(t))
    for k in range(len(t)):
        root_t = np.sqrt(t[k])
        if target[k] <= 1e-15:
            z[k] = np.inf
            c = 40.0 * root_t  # no exit: the region is effectively unbounded
        else:

            def excess(b, k=k, root_t=root_t):
                up, down = walk.crossing(k, b * root_t)
                return up + down - target[k]

            z[k] = optimize.brentq(excess, 1e-6, 40.0, xtol=1e-12, rtol=1e-14)
            c = z[k] * root_t
        walk.advance(k, c)
    return z, cumulative


def crossing_probabilities(z, information_fractions, drift: float = 0.0, points: int = 501) -> np.ndarray:
    """Probability of first crossing ``|Z_k| >= z[k]`` at each look (either side).

    ``drift`` is the mean of ``Z`` at full information (``E Z_k = drift
    sqrt(t_k)``); ``drift = 0`` gives the alpha actually spent, a positive
    drift the power of the design. Same recursion as :func:`group_sequential_z`.
    """
    t = _check_fractions(information_fractions)
    z = np.asarray(z, dtype=np.float64).ravel()
    if z.shape != t.shape:
        raise AbkitError(f"{len(z)} boundaries for {len(t)} information fractions; give one per look")
    walk = _Integrator(t, drift, points)
    out = np.empty(len(t))
    for k in range(len(t)):
        c = min(z[k], 40.0) * np.sqrt(t[k])
        up, down = walk.crossing(k, c)
        out[k] = up + down
        walk.advance(k, c)
    return out
