"""Time to event with censoring: Kaplan-Meier, Greenwood, restricted means, pseudo-observations.

Pure functions of **event and at-risk counts** (one :class:`EventTable` per
arm): the distinct times ``t_1 < ... < t_K`` at which units leave follow-up,
the events ``d_k`` and the units removed ``m_k`` (events plus censorings) at
each. The at-risk counts are ``Y_k = sum_{j >= k} m_j`` (a unit censored at
``t_k`` is at risk at ``t_k``: events come first at ties). Nothing here
reads data; :mod:`abkit.time_to_event` builds the tables in memory or in the
engine, where the data lies.

**Kaplan-Meier and Greenwood** (Kaplan and Meier 1958; Greenwood 1926)::

    S(t) = prod_{t_k <= t} (1 - d_k / Y_k)
    Var S(t) = S(t)^2 sum_{t_k <= t} d_k / (Y_k (Y_k - d_k))

(a term with ``Y_k = d_k`` makes ``S = 0`` from ``t_k`` on; its variance is
reported as 0). Pointwise intervals: ``"log-log"`` (the default: inside
``[0, 1]``, Kalbfleisch and Prentice 1980; lifelines' and scipy's
``"log-log"``), ``S^{exp(+-z sigma / log S)}`` with ``sigma^2 = Var S / S^2``;
``"linear"`` ``S +- z sd``; ``"log"`` ``S exp(+-z sigma)`` (R's default).

**Restricted mean time to event** up to the horizon ``tau`` (Royston and
Parmar 2013, "Restricted mean survival time: an alternative to the hazard
ratio", BMC Med Res Methodol 13:152; Uno et al. 2014, J Clin Oncol 32:2380)::

    RMST(tau) = int_0^tau S(u) du = E[min(T, tau)]
    Var RMST = sum_{t_k <= tau} A_k^2 d_k / (Y_k (Y_k - d_k)),   A_k = int_{t_k}^tau S(u) du

the Greenwood plug-in of R's survRM2 (``rmst1``); ``tau - RMST`` is the
restricted mean time lost (RMTL). Contrasts as in survRM2: the difference
with ``Var = V_1 + V_0``; the ratios of RMST and of RMTL on the log scale
(``Var log r = V_1 / mu_1^2 + V_0 / mu_0^2``).

**Share with the event by t** ``F(t) = 1 - S(t)`` with Greenwood's variance;
**quantiles** (the median) as the first event time with ``S(t) <= 1 - q``
and the interval of Brookmeyer and Crowley (1982, Biometrics 38:29) in the
form of SAS and statsmodels' ``quantile_ci``: the event times whose
``|g(S(t_k)) - g(1 - q)| <= z g'(S) sd(S)`` (``g`` the transform), from the
first of them to the event time after the last. The **median difference**
combines the two arms' Brookmeyer-Crowley intervals by MOVER (the method of
variance estimates recovery, Zou and Donner 2008, Stat Med 27:1693): with
estimates ``m_1, m_0`` and limits ``l, u``,

    L = m_1 - m_0 - sqrt((m_1 - l_1)^2 + (u_0 - m_0)^2)
    U = m_1 - m_0 + sqrt((u_1 - m_1)^2 + (m_0 - l_0)^2)

No density of the event times is estimated, the interval follows the
asymmetry of each arm's, and its p-value is the largest ``alpha`` whose
interval still contains 0 (found by bisection: the intervals are nested).

**Influence functions and pseudo-observations.** Give unit ``i`` a weight
``w_i`` (``d_k = sum_i w_i dN_ik``, ``Y_k = sum_i w_i Y_ik``, with ``dN_ik``
its event at ``t_k`` and ``Y_ik`` whether it is at risk there). Since
``log S(t) = sum_{t_k <= t} log(1 - d_k / Y_k)``, the derivative of ``S(t)``
at ``w = 1`` is

    dS(t)/dw_i = -S(t) sum_{t_k <= t} (dN_ik - Y_ik d_k / Y_k) / (Y_k - d_k)

so for ``theta = RMST(tau)`` (``a_k = A_k``) or ``theta = S(t)`` (``a_k =
S(t) 1[t_k <= t]``), with ``c_k = a_k / (Y_k - d_k)`` (0 when ``Y_k = d_k``),
``g_k = c_k d_k / Y_k`` and ``G_k = sum_{j <= k} g_j``, unit ``i`` with
observed time ``T_i = t_{k(i)}`` and event indicator ``delta_i`` has

    U_i = d theta / d w_i = G_{k(i)} - delta_i c_{k(i)}.

This is **one vectorized pass**: the per-time increments ``g_k`` are
cumulated once (``np.cumsum`` over the ``K`` times) and looked up per unit
by its time index (``G[k]``, ``c[k]``); there is no loop over units.
Two identities hold **exactly** (not only asymptotically):

* ``sum_i U_i = sum_k G_k m_k - sum_k c_k d_k = 0`` (KM does not change when
  all weights are scaled), so the **infinitesimal-jackknife pseudo-
  observations** ``phi_i = theta + n U_i`` have arm mean ``theta``: the KM
  restricted mean, to rounding;
* ``sum_i U_i^2 = sum_k a_k^2 d_k / (Y_k (Y_k - d_k))``: the cross terms of
  two times vanish (a unit at risk at the later time had no event at the
  earlier one, and ``sum_{i at risk} (dN_ik - d_k / Y_k) = 0``), and each
  time contributes ``d_k (Y_k - d_k) / Y_k`` before the ``c_k^2``. So the
  sample variance of the pseudo-observations gives ``Var(mean phi) =
  s^2 / n = n / (n - 1) x Greenwood``: the Greenwood variance with the
  usual degrees-of-freedom factor, a relative difference of ``1 / (n - 1)``.

Why the infinitesimal jackknife and not the leave-one-out jackknife
(Andersen and Perme 2010, "Pseudo-observations in survival analysis", Stat
Methods Med Res 19:71): both give asymptotically the same pseudo-values
(they differ by ``O_p(1/n)`` per unit), but the infinitesimal version is
one pass instead of ``n`` Kaplan-Meier fits, its mean and variance are the
KM estimate and Greenwood's exactly (above), and it needs only the counts
per time plus each unit's time and event, so engines can compute what
CUPED needs from per-time sums (:func:`pseudo_moments`). The pseudo-values
are computed **within each arm** (the arm's own KM), so each arm mean is
that arm's KM restricted mean; CUPED, Lin, the always-valid intervals and
every other moment-based method of :mod:`abkit.stats.two_sample` then apply to the
column unchanged (Andersen, Hansen and Klein 2004, Lifetime Data Anal
10:335, for restricted-mean regression on pseudo-values). The pseudo-values
of an arm are not independent (each involves the whole arm's curve), but
each is its unit's influence function plus ``O_p(1/n)``, so smooth
estimators of their moments (a CUPED slope, an adjusted mean) have the
asymptotic law they would have on the i.i.d. influence functions (Overgaard,
Parner and Pedersen 2017, Ann Stat 45:1988); the calibration suite checks
the false-positive rate and coverage. Valid under independent censoring, as
Kaplan-Meier itself.

**Clustered rows** (rows are events, e.g. refunds, of randomized units,
e.g. buyers): the unit's influence is the sum of its rows',
``U_u = sum_{i in u} U_i``, and ``Var theta = sum_u U_u^2`` (the robust
variance of a clustered Kaplan-Meier functional; Williams 1995, Lifetime
Data Anal 1:171); :func:`cluster_influence` sums them with one
``np.bincount``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import AbkitError, DataError
from .distributions import norm_isf, norm_sf

__all__ = [
    "EventTable",
    "KaplanMeier",
    "Estimate",
    "kaplan_meier",
    "survival_band",
    "restricted_mean",
    "survival_at",
    "restricted_mean_coefficients",
    "survival_coefficients",
    "influence",
    "pseudo_observations",
    "cluster_influence",
    "pseudo_moments",
    "quantile_time",
    "difference",
    "log_ratio",
    "mover_difference",
    "median_difference",
    "TRANSFORMS",
]

TRANSFORMS = ("log-log", "linear", "log")


# --------------------------------------------------------------------------- tables
@dataclass(frozen=True, eq=False)
class EventTable:
    """Event and removal counts of one group at its distinct times (the sufficient statistics of KM).

    ``time`` strictly increasing and >= 0; ``events[k]`` = events at
    ``time[k]``; ``removed[k]`` = units that leave the risk set at
    ``time[k]`` (events plus censorings), ``removed >= events >= 0``.
    Counts may be weighted (non-integer). Tables of disjoint units add up
    (:meth:`merge`, ``+``).
    """

    time: np.ndarray
    events: np.ndarray
    removed: np.ndarray

    def __post_init__(self) -> None:
        t = np.asarray(self.time, dtype=np.float64)
        d = np.asarray(self.events, dtype=np.float64)
        m = np.asarray(self.removed, dtype=np.float64)
        if not (t.ndim == d.ndim == m.ndim == 1 and t.size == d.size == m.size):
            raise AbkitError("an event table needs time, events and removed arrays of one length")
        if t.size and (not np.all(np.isfinite(t)) or t[0] < 0 or np.any(np.diff(t) <= 0)):
            raise AbkitError("event table times must be finite, >= 0 and strictly increasing")
        if np.any(d < 0) or np.any(m < d) or not np.all(np.isfinite(m)):
            raise AbkitError("event table counts must satisfy 0 <= events <= removed")
        object.__setattr__(self, "time", t)
        object.__setattr__(self, "events", d)
        object.__setattr__(self, "removed", m)

    @classmethod
    def from_durations(cls, durations, events) -> EventTable:
        """The table of observed times ``durations`` (>= 0) with event indicators ``events`` (0/1)."""
        t = np.asarray(durations, dtype=np.float64).ravel()
        e = np.asarray(events, dtype=np.float64).ravel()
        if t.size != e.size:
            raise AbkitError(f"{t.size} durations but {e.size} event indicators; give one of each per unit")
        if t.size and (not np.all(np.isfinite(t)) or t.min() < 0):
            raise DataError("durations must be finite and >= 0")
        if np.any((e != 0) & (e != 1)):
            raise DataError("event indicators must be 0 (censored) or 1 (event)")
        grid, index = np.unique(t, return_inverse=True)
        return cls(
            grid,
            np.bincount(index, weights=e, minlength=grid.size),
            np.bincount(index, minlength=grid.size).astype(np.float64),
        )

    @cached_property
    def at_risk(self) -> np.ndarray:
        """``Y_k``: units still followed just before ``time[k]``."""
        return np.cumsum(self.removed[::-1])[::-1]

    @cached_property
    def _greenwood(self) -> np.ndarray:
        return _compute_greenwood_terms(self)

    @cached_property
    def kaplan_meier(self) -> KaplanMeier:
        """The Kaplan-Meier estimate of this table (computed once; :func:`kaplan_meier`)."""
        return _kaplan_meier(self)

    @property
    def n(self) -> float:
        return float(self.removed.sum())

    @property
    def last_time(self) -> float:
        return float(self.time[-1]) if self.time.size else 0.0

    def merge(self, other: EventTable) -> EventTable:
        """The table of the union of two disjoint sets of units."""
        grid = np.union1d(self.time, other.time)
        d, m = np.zeros(grid.size), np.zeros(grid.size)
        for t in (self, other):
            pos = np.searchsorted(grid, t.time)
            np.add.at(d, pos, t.events)
            np.add.at(m, pos, t.removed)
        return EventTable(grid, d, m)

    __add__ = merge

    def truncated(self, horizon: float) -> EventTable:
        """Units followed beyond ``horizon`` censored at ``horizon``: KM on ``[0, horizon]`` is unchanged."""
        keep = self.time <= horizon
        if keep.all():
            return self
        beyond = float(self.removed[~keep].sum())
        t, d, m = self.time[keep], self.events[keep], self.removed[keep]
        if t.size and t[-1] == horizon:
            m = m.copy()
            m[-1] += beyond
        else:
            t, d, m = np.append(t, horizon), np.append(d, 0.0), np.append(m, beyond)
        return EventTable(t, d, m)

    def index_of(self, durations) -> np.ndarray:
        """Position of each duration in :attr:`time` (every duration must be one of the times)."""
        x = np.asarray(durations, dtype=np.float64)
        pos = np.searchsorted(self.time, x)
        ok = (pos < self.time.size) & (self.time[np.minimum(pos, self.time.size - 1)] == x)
        if not np.all(ok):
            raise AbkitError("durations that are not times of this event table; build the table from them")
        return pos

    def __repr__(self) -> str:
        return (
            f"EventTable({self.time.size} times, n={self.n:g}, events={self.events.sum():g}, "
            f"last time {self.last_time:g})"
        )


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its variance."""

    value: float
    variance: float

    @property
    def se(self) -> float:
        return float(np.sqrt(self.variance)) if np.isfinite(self.variance) and self.variance >= 0 else np.nan


def _greenwood_terms(table: EventTable) -> tuple[np.ndarray, np.ndarray]:
    """``(Y, d / (Y (Y - d)))``, the term 0 where ``Y = d`` (S drops to 0 there); cached on the table."""
    return table.at_risk, table._greenwood


def _compute_greenwood_terms(table: EventTable) -> np.ndarray:
    Y = table.at_risk
    d = table.events
    free = Y - d
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(free > 0, d / (Y * np.where(free > 0, free, 1.0)), 0.0)


@dataclass(frozen=True, eq=False)
class KaplanMeier:
    """The Kaplan-Meier estimate of one group at each time of its :class:`EventTable`."""

    time: np.ndarray
    survival: np.ndarray
    variance: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    removed: np.ndarray

    def at(self, t: float) -> Estimate:
        """``S(t)`` and Greenwood's variance (``S = 1``, variance 0 before the first time)."""
        k = int(np.searchsorted(self.time, t, side="right")) - 1
        if k < 0:
            return Estimate(1.0, 0.0)
        return Estimate(float(self.survival[k]), float(self.variance[k]))

    def band(self, alpha: float = 0.05, transform: str = "log-log") -> tuple[np.ndarray, np.ndarray]:
        """Pointwise ``1 - alpha`` limits of ``S`` at each time (see the module doc for the transforms)."""
        return survival_band(self.survival, self.variance, alpha, transform)


def survival_band(S, var, alpha: float = 0.05, transform: str = "log-log") -> tuple[np.ndarray, np.ndarray]:
    """Pointwise limits for survival probabilities ``S`` with variances ``var`` (vectorized)."""
    if transform not in TRANSFORMS:
        raise AbkitError(f"transform={transform!r} is not known; use one of {', '.join(TRANSFORMS)}")
    S = np.asarray(S, dtype=np.float64)
    sd = np.sqrt(np.maximum(np.asarray(var, dtype=np.float64), 0.0))
    z = norm_isf(alpha / 2.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if transform == "linear":
            lo, hi = S - z * sd, S + z * sd
        elif transform == "log":
            sigma = sd / S
            lo, hi = S * np.exp(-z * sigma), S * np.exp(z * sigma)
        else:
            sigma = sd / S
            logS = np.log(S)
            spread = np.where(logS < 0, z * sigma / np.abs(logS), 0.0)
            lo, hi = S ** np.exp(spread), S ** np.exp(-spread)
    lo = np.where(S >= 1.0, 1.0, np.where(S <= 0.0, 0.0, lo))
    hi = np.where(S >= 1.0, 1.0, np.where(S <= 0.0, 0.0, hi))
    return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)


def kaplan_meier(table: EventTable) -> KaplanMeier:
    """Kaplan-Meier survival and Greenwood variance at every time of ``table`` (cached on the table)."""
    return table.kaplan_meier


def _kaplan_meier(table: EventTable) -> KaplanMeier:
    Y, terms = _greenwood_terms(table)
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(Y > 0, table.events / np.where(Y > 0, Y, 1.0), 0.0)
    S = np.cumprod(1.0 - hazard)
    var = np.where(S > 0, S * S * np.cumsum(terms), 0.0)
    return KaplanMeier(table.time, S, var, Y, table.events, table.removed)


# --------------------------------------------------------------------------- functionals
def _check_horizon(table: EventTable, horizon: float, S: np.ndarray) -> None:
    if not (np.isfinite(horizon) and horizon > 0):
        raise AbkitError(f"horizon={horizon!r} must be a positive number (the time up to which to average)")
    if table.time.size == 0:
        raise DataError("no units to estimate a survival curve from")
    if table.last_time < horizon and S[-1] > 0:
        raise DataError(
            f"the horizon {horizon:g} is beyond the longest follow-up ({table.last_time:g}), so the "
            "survival curve is unknown up to it"
        )


def restricted_mean_coefficients(table: EventTable, horizon: float) -> tuple[float, np.ndarray]:
    """``(RMST(horizon), A)`` with ``A_k = int_{t_k}^{horizon} S(u) du`` (0 for ``t_k >= horizon``)."""
    km = kaplan_meier(table)
    _check_horizon(table, horizon, km.survival)
    inside = table.time < horizon
    t, S = table.time[inside], km.survival[inside]
    # piece j of [0, horizon]: [0, t_1) at S = 1, then [t_k, t_{k+1}) at S_k, the last [t_K, horizon)
    widths = np.diff(np.concatenate(([0.0], t, [horizon])))
    heights = np.concatenate(([1.0], S))
    areas = widths * heights
    tail = np.cumsum(areas[::-1])[::-1]  # tail[j] = sum of pieces j.. = area from the start of piece j
    A = np.zeros(table.time.size)
    A[inside] = tail[1:]
    return float(areas.sum()), A


def survival_coefficients(table: EventTable, t: float) -> tuple[float, np.ndarray]:
    """``(S(t), a)`` with ``a_k = S(t) 1[t_k <= t]``: the coefficients of ``S(t)``'s influence function."""
    km = kaplan_meier(table)
    value = km.at(t).value
    return value, np.where(table.time <= t, value, 0.0)


def _greenwood_of(table: EventTable, a: np.ndarray) -> float:
    _, terms = _greenwood_terms(table)
    return float(np.sum(a * a * terms))


def restricted_mean(table: EventTable, horizon: float) -> Estimate:
    """Restricted mean time to event up to ``horizon`` and its Greenwood variance (survRM2's ``rmst1``)."""
    value, A = restricted_mean_coefficients(table, horizon)
    return Estimate(value, _greenwood_of(table, A))


def survival_at(table: EventTable, t: float) -> Estimate:
    """``S(t)`` and its Greenwood variance."""
    km = kaplan_meier(table)
    return km.at(t)


def _increments(table: EventTable, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(c, G)``: ``c_k = a_k / (Y_k - d_k)`` (0 where ``Y_k = d_k``), ``G = cumsum(c d / Y)``."""
    Y = table.at_risk
    free = Y - table.events
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(free > 0, a / np.where(free > 0, free, 1.0), 0.0)
        g = np.where(Y > 0, c * table.events / np.where(Y > 0, Y, 1.0), 0.0)
    return c, np.cumsum(g)


def influence(table: EventTable, a: np.ndarray, durations, events) -> np.ndarray:
    """``U_i = d theta / d w_i = G_{k(i)} - delta_i c_{k(i)}`` for every unit (module doc). Vectorized.

    ``a`` are the functional's coefficients (:func:`restricted_mean_coefficients`,
    :func:`survival_coefficients`); ``durations`` must be times of ``table``.
    """
    c, G = _increments(table, np.asarray(a, dtype=np.float64))
    k = table.index_of(durations)
    return G[k] - np.asarray(events, dtype=np.float64) * c[k]


def pseudo_observations(value: float, U: np.ndarray) -> np.ndarray:
    """Infinitesimal-jackknife pseudo-observations ``theta + n U_i`` (``n`` = number of ``U``'s)."""
    U = np.asarray(U, dtype=np.float64)
    return value + U.size * U


def cluster_influence(U: np.ndarray, codes: np.ndarray, n_clusters: int | None = None) -> np.ndarray:
    """Per-cluster sums of row influences (``codes`` 0..G-1): ``Var theta = sum_u (sum_{i in u} U_i)^2``."""
    codes = np.asarray(codes, dtype=np.int64)
    return np.bincount(
        codes,
        weights=np.asarray(U, dtype=np.float64),
        minlength=int(n_clusters if n_clusters is not None else codes.max() + 1),
    )


def pseudo_moments(
    table: EventTable,
    a: np.ndarray,
    value: float,
    covariate_mean=None,
    covariate_comoment=None,
    event_sums=None,
    removed_sums=None,
    shift=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and centred co-moments of ``(phi, x_1..x_p)`` over one arm, from counts and per-time sums only.

    ``phi = value + n U`` are the pseudo-observations (module doc). Returns
    ``(mean, comoment)`` as in :class:`abkit.moments.Moments`: ``mean =
    (value, xbar)`` and

        C_phiphi = n^2 sum_k a_k^2 d_k / (Y_k (Y_k - d_k))           (= n^2 sum_i U_i^2, exactly)
        C_phix   = n sum_i (x_i - xbar) U_i
                 = n sum_k [G_k (Sm_k - (xbar - K) m_k) - c_k (Sd_k - (xbar - K) d_k)]
        C_xx     = covariate_comoment

    where ``Sd_k = sum_{i: T_i = t_k, event} (x_i - K)`` and ``Sm_k = sum_{i: T_i
    = t_k} (x_i - K)`` (``event_sums``, ``removed_sums``: shape ``(K, p)``) are
    sums of the covariates shifted by ``shift`` (``K``, close to the mean, so
    no digits are lost), computed by the engine in the same group-by as the
    counts. Equal to the moments of the pseudo-observation column itself
    (tested to 1e-9 relative).
    """
    n = table.n
    a = np.asarray(a, dtype=np.float64)
    p = 0 if covariate_mean is None else int(np.size(covariate_mean))
    mean = np.empty(1 + p)
    mean[0] = value
    C = np.zeros((1 + p, 1 + p))
    C[0, 0] = n * n * _greenwood_of(table, a)
    if p:
        xbar = np.asarray(covariate_mean, dtype=np.float64).reshape(p)
        K = np.zeros(p) if shift is None else np.asarray(shift, dtype=np.float64).reshape(p)
        Sd = np.asarray(event_sums, dtype=np.float64).reshape(table.time.size, p)
        Sm = np.asarray(removed_sums, dtype=np.float64).reshape(table.time.size, p)
        c, G = _increments(table, a)
        off = xbar - K
        cross = G @ (Sm - np.outer(table.removed, off)) - c @ (Sd - np.outer(table.events, off))
        mean[1:] = xbar
        C[0, 1:] = C[1:, 0] = n * cross
        C[1:, 1:] = np.asarray(covariate_comoment, dtype=np.float64).reshape(p, p)
    return mean, C


# --------------------------------------------------------------------------- quantiles
def _transform(name: str):
    if name == "log-log":
        return (lambda x: np.log(-np.log(x))), (lambda x: -1.0 / (x * np.log(x)))
    if name == "linear":
        return (lambda x: x), (lambda x: np.ones_like(x))
    if name == "log":
        return np.log, (lambda x: 1.0 / x)
    raise AbkitError(f"transform={name!r} is not known; use one of {', '.join(TRANSFORMS)}")


def quantile_time(
    km: KaplanMeier, q: float = 0.5, alpha: float = 0.05, transform: str = "log-log"
) -> tuple[float, float, float]:
    """``(t_q, lower, upper)``: the first event time with ``S <= 1 - q`` and its Brookmeyer-Crowley interval.

    NaN when the curve never falls to ``1 - q`` (not reached); an upper limit
    of ``inf`` when the test does not reject up to the last event time. The
    interval inverts, at each event time, the z test of ``S(t) = 1 - q`` on
    the transformed scale (statsmodels' ``SurvfuncRight.quantile_ci``;
    ``"log-log"`` is its ``"cloglog"``).
    """
    if not 0.0 < q < 1.0:
        raise AbkitError(f"q={q!r} must be strictly between 0 and 1 (0.5 for the median)")
    ev = km.events > 0
    t, S, var = km.time[ev], km.survival[ev], km.variance[ev]
    reached = np.flatnonzero(S <= 1.0 - q)
    value = float(t[reached[0]]) if reached.size else np.nan
    g, gprime = _transform(transform)
    z = norm_isf(alpha / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (g(S) - g(1.0 - q)) / (gprime(S) * np.sqrt(var))
    inside = np.flatnonzero(np.abs(r) <= z)
    if inside.size == 0:
        return value, np.nan, np.nan
    lower = float(t[inside[0]])
    upper = np.inf if inside[-1] == t.size - 1 else float(t[inside[-1] + 1])
    return value, lower, upper


# --------------------------------------------------------------------------- contrasts
def difference(treatment: Estimate, control: Estimate, alpha: float = 0.05) -> dict:
    """Difference of two independent estimates with a normal interval and two-sided p-value."""
    effect = treatment.value - control.value
    se = float(np.sqrt(treatment.variance + control.variance))
    z = norm_isf(alpha / 2.0)
    if not np.isfinite(se):
        p = lo = hi = np.nan
    elif se == 0.0:
        p, lo, hi = (1.0 if effect == 0 else 0.0), effect, effect
    else:
        p = float(2.0 * norm_sf(abs(effect) / se))
        lo, hi = effect - z * se, effect + z * se
    return {"effect": float(effect), "se": se, "ci_lower": float(lo), "ci_upper": float(hi), "p_value": p}


def log_ratio(treatment: Estimate, control: Estimate, alpha: float = 0.05) -> dict:
    """Ratio ``treatment / control`` with the delta-method interval on the log scale (survRM2's ratios)."""
    if not (treatment.value > 0 and control.value > 0):
        return {"ratio": np.nan, "ci_lower": np.nan, "ci_upper": np.nan, "p_value": np.nan, "se_log": np.nan}
    log_r = np.log(treatment.value / control.value)
    se = float(np.sqrt(treatment.variance / treatment.value**2 + control.variance / control.value**2))
    z = norm_isf(alpha / 2.0)
    p = float(2.0 * norm_sf(abs(log_r) / se)) if se > 0 else (1.0 if log_r == 0 else 0.0)
    return {
        "ratio": float(np.exp(log_r)),
        "ci_lower": float(np.exp(log_r - z * se)),
        "ci_upper": float(np.exp(log_r + z * se)),
        "p_value": p,
        "se_log": se,
    }


def mover_difference(est1: float, lo1: float, hi1: float, est0: float, lo0: float, hi0: float) -> tuple[float, float]:
    """MOVER interval for ``est1 - est0`` from each estimate's own interval (Zou and Donner 2008)."""
    d = est1 - est0
    with np.errstate(invalid="ignore"):
        lower = d - np.sqrt((est1 - lo1) ** 2 + (hi0 - est0) ** 2)
        upper = d + np.sqrt((hi1 - est1) ** 2 + (est0 - lo0) ** 2)
    return float(lower), float(upper)


def median_difference(
    km1: KaplanMeier, km0: KaplanMeier, alpha: float = 0.05, q: float = 0.5, transform: str = "log-log"
) -> dict:
    """Difference of the ``q``-quantiles (medians) of two arms: MOVER on Brookmeyer-Crowley intervals.

    Returns ``effect, ci_lower, ci_upper, p_value`` and each arm's
    ``(value, lower, upper)``. NaN when an arm's quantile is not reached; an
    infinite limit when an arm's interval is open. The p-value is the largest
    level whose interval contains 0, by bisection on ``log alpha``.
    """
    m1, l1, u1 = quantile_time(km1, q, alpha, transform)
    m0, l0, u0 = quantile_time(km0, q, alpha, transform)
    out: dict[str, object] = {"treatment": (m1, l1, u1), "control": (m0, l0, u0)}
    if not (np.isfinite(m1) and np.isfinite(m0)):
        out.update(effect=np.nan, ci_lower=np.nan, ci_upper=np.nan, p_value=np.nan)
        return out
    lo, hi = mover_difference(m1, l1, u1, m0, l0, u0)
    out.update(effect=float(m1 - m0), ci_lower=lo, ci_upper=hi)

    def contains_zero(level: float) -> bool:
        a1, b1, c1 = quantile_time(km1, q, level, transform)
        a0, b0, c0 = quantile_time(km0, q, level, transform)
        if np.isnan(b1) or np.isnan(b0):  # no time is compatible at this level: the interval is empty
            return False
        low, high = mover_difference(a1, b1, c1, a0, b0, c0)
        return bool(low <= 0.0 <= high)

    if m1 == m0:
        out["p_value"] = 1.0
    elif not contains_zero(1e-12):
        out["p_value"] = 0.0
    else:
        a, b = np.log(1e-12), 0.0  # contains 0 at exp(a), not (or barely) at exp(b)
        for _ in range(60):
            mid = 0.5 * (a + b)
            a, b = (mid, b) if contains_zero(float(np.exp(mid))) else (a, mid)
        out["p_value"] = float(np.exp(a))
    return out
