"""Enrollment over time: unique units after d days with repeat visitors, and the days a sample size needs.

Duration
========

``n`` units must be enrolled. With ``V`` eligible visitors a day out of a
population of ``N`` buyers who each visit independently with daily
probability ``q = V / N``, the number of unique buyers after ``d`` days is
``U(d) = N (1 - (1 - q)^d)`` (repeat visitors make uniques accrue slower
than traffic), so ``d = ceil( log(1 - n / (s N)) / log(1 - q) )`` where ``s``
is the share of traffic in the experiment. Without ``N`` every visitor is
new (``U(d) = V d``); an explicit cumulative ``uniques_by_day`` curve can
be given instead.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import AbkitError
from .power_inputs import _arr, _ceil, _fmt, _int_out, _out, _positive, _require


def _traffic(daily_units, population, traffic_share):
    V = _positive(daily_units, "daily_units", " (eligible units a day)")
    s = _arr(traffic_share, "traffic_share")
    _require((s > 0) & (s <= 1), "traffic_share", s, "must be in (0, 1] (share of eligible traffic in the test)")
    if population is None:
        return V, None, s
    N = _positive(population, "population", " (eligible buyers who may visit)")
    _require(N >= V, "population", N, "must be >= daily_units (each buyer visits at most once a day)")
    return V, N, s


def uniques_after(days, daily_units, population=None, traffic_share=1.0):
    """Unique units enrolled after ``days`` days.

    ``s N (1 - (1 - V/N)^d)`` when each of ``population`` = N buyers visits
    independently with daily probability ``V / N`` (``V`` = ``daily_units``);
    ``s V d`` without a population (every visitor new). ``s`` = ``traffic_share``.
    """
    d = _arr(days, "days")
    _require(d >= 0, "days", d, "must be >= 0")
    V, N, s = _traffic(daily_units, population, traffic_share)
    if N is None:
        return _out(s * V * d)
    q = V / N
    safe_q = np.where(q < 1, q, 0.5)  # q = 1: everybody visits every day
    share = np.where(q < 1, -np.expm1(d * np.log1p(-safe_q)), (d > 0).astype(np.float64))
    return _out(s * N * share)


def days_needed(n_units, daily_units=None, *, population=None, uniques_by_day=None, traffic_share=1.0):
    """Days until ``n_units`` unique units (all arms together) are enrolled (integer, rounded up).

    Either ``daily_units`` (eligible visitors a day) with an optional
    ``population`` for repeat visitors (see :func:`uniques_after`), or an
    explicit cumulative curve ``uniques_by_day`` (element ``d - 1`` = unique
    eligible units after ``d`` days).
    """
    n = _positive(n_units, "n_units")
    if uniques_by_day is not None:
        if daily_units is not None or population is not None:
            raise AbkitError("give either uniques_by_day or daily_units (with population), not both")
        u = _arr(uniques_by_day, "uniques_by_day")
        if u.ndim != 1 or u.size == 0:
            raise AbkitError("uniques_by_day must be a 1-d curve: unique eligible units after day 1, 2, ...")
        if np.any(np.diff(u) < 0):
            raise AbkitError("uniques_by_day must be cumulative (non-decreasing)")
        s = float(_arr(traffic_share, "traffic_share")) if np.ndim(traffic_share) == 0 else None
        if s is None or not 0 < s <= 1:
            raise AbkitError(f"traffic_share={traffic_share!r} must be a number in (0, 1] with uniques_by_day")
        enrolled = s * u
        _require(
            n <= enrolled[-1],
            "n_units",
            n,
            f"is more than the curve ever reaches ({_fmt(enrolled[-1])} "
            f"units in the experiment after {u.size} days); extend uniques_by_day or raise traffic_share",
        )
        return _int_out(np.searchsorted(enrolled, n * (1.0 - 1e-12), side="left") + 1)
    if daily_units is None:
        raise AbkitError("days_needed needs daily_units= (eligible units a day) or uniques_by_day=")
    V, N, s = _traffic(daily_units, population, traffic_share)
    if N is None:
        return _int_out(_ceil(n / (s * V)))
    _require(
        n < s * N,
        "n_units",
        n,
        "is not below the number of eligible buyers in the experiment "
        "(traffic_share x population); the test can never enroll that many: raise traffic_share or "
        "lower the sample size",
    )
    q = V / N
    with np.errstate(divide="ignore"):
        d = np.where(q < 1, np.log1p(-n / (s * N)) / np.log1p(-np.minimum(q, 1 - 1e-16)), 1.0)
    return _int_out(np.maximum(_ceil(d), 1))


def fit_population(daily_units, uniques, days):
    """The population ``N`` that makes ``uniques_after(days, daily_units, N) = uniques``.

    E.g. 10,000 visitors a day and 52,000 unique buyers in a week: the
    repeat-visit model of :func:`uniques_after` with N = fit_population(10_000,
    52_000, 7). Needs ``uniques < daily_units x days`` (some repeat visits).
    """
    V = float(_positive(daily_units, "daily_units"))
    U = float(_positive(uniques, "uniques"))
    d = float(_positive(days, "days"))
    if U >= V * d:
        raise AbkitError(
            f"uniques={U:g} must be below daily_units x days = {V * d:g} for a finite population "
            "(without repeat visits use population=None)"
        )
    if U < V:
        raise AbkitError(f"uniques={U:g} must be at least daily_units={V:g} (the first day's visitors)")
    from scipy.optimize import brentq

    def g(N):
        return N * -math.expm1(d * math.log1p(-V / N)) - U

    hi = 2.0 * max(U, V)
    while g(hi) < 0:
        hi *= 2.0
    return float(brentq(g, max(U, V) * (1 + 1e-12), hi, xtol=1e-9, rtol=1e-14))
