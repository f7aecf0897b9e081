"""Quantiles (p50, p90 time to refund) and their standard errors, with clustered rows.

Quantiles are not smooth functions of means, so they cannot come from the
moments; these estimators take the values (and, when the rows are not the
randomization units, the unit of each row) of one arm.

**Point estimate.** The sample quantile ``Q(q)`` with linear interpolation
between order statistics (Hyndman and Fan 1996, definition 7; numpy's
default), over the rows of the arm: with refund-level rows, "p90 time to
refund" is the 90th percentile over refunds.

**Variance: the order-statistic delta method with clusters** (Deng,
Knoblich and Lu 2018, "Applying the Delta Method in Metric Analytics: A
Practical Guide with Novel Ideas", KDD, Section 4 on quantile metrics).
Bahadur's representation ties the sample quantile to the empirical CDF at
the true quantile ``xi``: ``Q(q) - xi ~= (q - F_n(xi)) / f(xi)``. The density
``f(xi)`` is avoided with the order-statistic interval: if ``F_n(xi)`` has
standard deviation ``sigma``, then

    [Q(q - z sigma), Q(q + z sigma)]

is an asymptotic ``1 - alpha`` interval for ``xi`` (``z = z_{1-alpha/2}``),
so its half-length over ``z`` estimates ``sigma / f(xi)``, the standard
error of ``Q(q)``. With i.i.d. rows ``sigma^2 = q (1 - q) / N``. When rows
are clustered in units (refunds within buyers, the unit of randomization)
the indicators ``1[y <= xi]`` are correlated within a unit, and
``F_n(xi) = sum_i S_i / sum_i N_i`` (``S_i`` = unit i's rows at or below
``xi``, ``N_i`` its rows) is a ratio of unit-level means. Its variance is the
delta-method ratio variance over the ``n`` units,

    sigma^2 = Var_i(S_i - F N_i) / (n Nbar^2)         (sample variance, ddof = 1)

evaluated at ``xi = Q(q)``. Independent arms give the effect ``Q_t - Q_c``
the variance ``se_t^2 + se_c^2``, and the relative effect ``Q_t / Q_c - 1`` the
delta-method standard error ``sqrt(se_t^2 / Q_c^2 + Q_t^2 se_c^2 / Q_c^4)`` and
Fieller's interval (:func:`abkit.stats.ab.fieller_relative`, as for the moment
metrics: it excludes 0 exactly when the absolute interval does).

**Bootstrap by unit.** Resample the units of each arm with replacement
(Efron and Tibshirani 1993, ch. 6; resampling clusters: Davison and Hinkley
1997, Section 3.8), keep all rows of a drawn unit, and recompute the
quantile: each draw is a weighted quantile of the arm's rows with weight
= the number of times the row's unit was drawn (inverse-CDF definition).
The standard deviation of the draws is the standard error. Seeded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..errors import AbkitError, DataError
from .ab import fieller_relative

__all__ = ["QuantileEstimate", "quantile_delta", "quantile_bootstrap", "cluster_ecdf_variance",
           "weighted_quantiles", "difference"]


@dataclass(frozen=True)
class QuantileEstimate:
    """A quantile of one arm, its standard error and its (1 - alpha) interval."""

    q: float
    value: float
    se: float
    ci_lower: float
    ci_upper: float
    n_units: int
    n_rows: int
    ecdf_se: float = np.nan  # sd of F_n(xi) (delta method only)


def _check(values: np.ndarray, q: float, clusters) -> tuple[np.ndarray, np.ndarray | None]:
    if not 0.0 < q < 1.0:
        raise AbkitError(f"q={q!r} must be strictly between 0 and 1 (e.g. 0.5 for the median, 0.9 for p90)")
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size < 2:
        raise DataError(f"{values.size} value(s): a quantile's standard error needs at least 2")
    if not np.all(np.isfinite(values)):
        raise DataError("values must be finite; drop or fill missing values first")
    if clusters is not None:
        clusters = np.asarray(clusters).ravel()
        if clusters.shape != values.shape:
            raise AbkitError(f"{clusters.size} cluster codes for {values.size} values; give one per row")
    return values, clusters


def _codes(clusters, n: int) -> tuple[np.ndarray, int]:
    """Dense integer codes 0..G-1 of the cluster labels (each row its own unit when None)."""
    if clusters is None:
        return np.arange(n), n
    if clusters.dtype.kind in "iu":
        uniq, codes = np.unique(clusters, return_inverse=True)
    else:
        import pandas as pd

        codes, uniq = pd.factorize(clusters, sort=False)
    return np.asarray(codes, dtype=np.int64), len(uniq)


def cluster_ecdf_variance(values: np.ndarray, codes: np.ndarray, n_units: int, xi: float) -> float:
    """Delta-method variance of ``F_n(xi) = sum S_i / sum N_i`` over units (Deng et al. 2018).

    ``S_i`` counts unit i's rows with value ``<= xi`` and ``N_i`` its rows.
    """
    below = np.bincount(codes, weights=(values <= xi).astype(np.float64), minlength=n_units)
    rows = np.bincount(codes, minlength=n_units).astype(np.float64)
    F = below.sum() / rows.sum()
    resid = below - F * rows
    nbar = rows.mean()
    return float(resid.var(ddof=1) / (n_units * nbar * nbar))


def quantile_delta(values, q: float, clusters=None, alpha: float = 0.05) -> QuantileEstimate:
    """Quantile ``q`` of ``values`` with the cluster-aware order-statistic delta method.

    ``clusters`` gives each row's randomization unit (``None``: every row is
    a unit). See the module docstring for the formulas.
    """
    values, clusters = _check(values, q, clusters)
    codes, n_units = _codes(clusters, values.size)
    if n_units < 2:
        raise DataError(f"{n_units} unit(s): a quantile's standard error needs at least 2 units")
    xs = np.sort(values)
    value = float(np.quantile(xs, q))
    sigma = np.sqrt(cluster_ecdf_variance(values, codes, n_units, value))
    z = stats.norm.isf(alpha / 2.0)
    lo_p, hi_p = max(q - z * sigma, 0.0), min(q + z * sigma, 1.0)
    lo, hi = np.quantile(xs, [lo_p, hi_p])
    # The half-length over the probability span actually used (the span is
    # narrower than 2 z sigma only when it hits 0 or 1).
    span = (hi_p - lo_p) / sigma if sigma > 0 else 2.0 * z
    se = float((hi - lo) / span) if sigma > 0 else 0.0
    return QuantileEstimate(q=float(q), value=value, se=se, ci_lower=float(lo), ci_upper=float(hi),
                            n_units=int(n_units), n_rows=int(values.size), ecdf_se=float(sigma))


def weighted_quantiles(sorted_values: np.ndarray, weights: np.ndarray, q: float) -> np.ndarray:
    """Inverse-CDF quantile ``q`` of ``sorted_values`` under each row of ``weights``.

    ``weights`` has shape (draws, rows); returns one quantile per draw: the
    smallest value whose cumulative weight reaches ``q`` times the total.
    """
    cum = np.cumsum(weights, axis=1)
    target = q * cum[:, -1:]
    idx = np.minimum((cum < target).sum(axis=1), sorted_values.size - 1)
    return sorted_values[idx]


def quantile_bootstrap(values, q: float, clusters=None, alpha: float = 0.05, n_boot: int = 2000,
                       seed=None) -> tuple[QuantileEstimate, np.ndarray]:
    """Quantile ``q`` with a bootstrap over units (clusters); returns the estimate and the draws.

    The interval is ``value +/- z se`` with ``se`` the standard deviation of
    the draws (normal-theory bootstrap interval, consistent with the delta
    method's). ``seed`` makes the draws reproducible.
    """
    values, clusters = _check(values, q, clusters)
    if int(n_boot) < 50:
        raise AbkitError(f"n_boot={n_boot!r} is too small for a standard error; use 1000 or more")
    rng = np.random.default_rng(seed)
    codes, n_units = _codes(clusters, values.size)
    order = np.argsort(values, kind="stable")
    xs, unit_of_sorted = values[order], codes[order]
    N = xs.size
    value = float(np.quantile(xs, q))
    # Only rows near the quantile can be a draw's quantile: carry the rows
    # below a window as per-unit counts (one matrix-vector product) and
    # accumulate weights inside the window only; a draw that lands outside
    # the window (a > 8 sd move of F_n) is recomputed over all rows.
    sigma = np.sqrt(cluster_ecdf_variance(values, codes, n_units, value))
    lo = int(np.clip(np.floor(N * (q - 8.0 * sigma)) - 1, 0, N - 1))
    hi = int(np.clip(np.ceil(N * (q + 8.0 * sigma)) + 1, lo + 1, N))
    below = np.bincount(unit_of_sorted[:lo], minlength=n_units).astype(np.float64)
    rows = np.bincount(codes, minlength=n_units).astype(np.float64)
    window_units = unit_of_sorted[lo:hi]
    draws = np.empty(int(n_boot))
    chunk = max(1, min(int(n_boot), (1 << 22) // max(hi - lo + n_units, 1)))
    for start in range(0, int(n_boot), chunk):
        b = min(chunk, int(n_boot) - start)
        picks = rng.integers(0, n_units, size=(b, n_units))
        counts = np.bincount((picks + n_units * np.arange(b)[:, None]).ravel(),
                             minlength=b * n_units).reshape(b, n_units).astype(np.float64)
        target = q * (counts @ rows)
        cum = (counts @ below)[:, None] + np.cumsum(counts[:, window_units], axis=1)
        idx = lo + (cum < target[:, None]).sum(axis=1)
        out = xs[np.minimum(idx, N - 1)]
        miss = (cum[:, 0] - counts[np.arange(b), window_units[0]] >= target) | (cum[:, -1] < target)
        if miss.any():
            out[miss] = weighted_quantiles(xs, counts[miss][:, unit_of_sorted], q)
        draws[start:start + b] = out
    se = float(draws.std(ddof=1))
    z = stats.norm.isf(alpha / 2.0)
    est = QuantileEstimate(q=float(q), value=value, se=se, ci_lower=value - z * se, ci_upper=value + z * se,
                           n_units=int(n_units), n_rows=int(values.size))
    return est, draws


def difference(treatment: QuantileEstimate, control: QuantileEstimate, alpha: float = 0.05) -> dict:
    """Absolute and relative effect of independent arms, normal CIs (Fieller's for the relative effect),
    two-sided p-value (``norm.sf``)."""
    z = stats.norm.isf(alpha / 2.0)
    qt, qc = treatment.value, control.value
    effect = qt - qc
    se = float(np.hypot(treatment.se, control.se))
    if se > 0:
        p = float(min(2.0 * stats.norm.sf(abs(effect) / se), 1.0))
    else:
        p = 1.0 if effect == 0 else 0.0
    if qc != 0.0:
        rel = qt / qc - 1.0
        rel_se = float(np.sqrt(treatment.se**2 / qc**2 + qt**2 * control.se**2 / qc**4))
    else:
        rel = rel_se = np.nan
    # Fieller's interval, as for moment metrics (abkit.stats.ab): independent arms, so
    # Var(qt - qc) = se^2 and Cov(qt - qc, qc) = -Var(qc)
    rel_lo, rel_hi = fieller_relative(effect, qc, se * se, -control.se**2, control.se**2, z) if np.isfinite(qc) \
        else (np.nan, np.nan)
    return {"effect": effect, "se": se, "ci_lower": effect - z * se, "ci_upper": effect + z * se, "p_value": p,
            "rel_effect": rel, "rel_se": rel_se, "rel_ci_lower": rel_lo, "rel_ci_upper": rel_hi}
