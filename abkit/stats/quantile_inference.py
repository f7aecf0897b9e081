"""Quantiles (p50, p90 time to refund) and their standard errors, with ties and clustered rows.

Quantiles are not smooth functions of means, so they cannot come from the
moments; these estimators take the values (and, when the rows are not the
randomization units, the unit of each row) of one arm.

**Point estimate: the mid-distribution quantile** (Parzen 2004, "Quantile
probability and statistical data modeling", Statist. Sci. 19; Ma, Genton
and Parzen 2011, "Asymptotic properties of sample quantiles of discrete
distributions", Ann. Inst. Stat. Math. 63). With distinct values
``u_1 < ... < u_K`` of an arm, ``p_j`` the share of its rows equal to
``u_j`` and ``F`` the empirical CDF, the *mid-distribution function* at the
support points is ``F_mid(u_j) = F(u_j) - p_j / 2``; ``F_mid`` is
interpolated linearly between them and the quantile is its inverse,
``Q(q) = u_j + (q - F_mid(u_j)) / (F_mid(u_{j+1}) - F_mid(u_j)) (u_{j+1} - u_j)``
(``u_1`` below ``F_mid(u_1)``, ``u_K`` above ``F_mid(u_K)``). Without ties
this is Hyndman and Fan's (1996) definition 5 (numpy ``method="hazen"``).
Why not the usual sample quantile: on tied data (integer days to refund,
hours rounded) the usual quantile sticks to a support point, its sampling
distribution is degenerate (it does not become normal; Ma et al. 2011) and
the order-statistic interval below collapses to one value: standard error
0, a zero-width interval and p = 0 whenever two arms' medians are
different integers. The mid-distribution quantile moves continuously with
the data: it is asymptotically normal for discrete distributions (Ma et al.
2011) and equals the usual quantile, up to one spacing, for continuous
data. On tied data it reports e.g. a median of 3.4 days rather than 3: the
quantile of the interpolated distribution, the same number for both arms
when their distributions are the same.

**Variance: the order-statistic delta method with clusters** (Deng,
Knoblich and Lu 2018, "Applying the Delta Method in Metric Analytics: A
Practical Guide with Novel Ideas", KDD, Section 4 on quantile metrics),
applied to ``F_mid``. Bahadur's representation holds for the mid-quantile:
``Q(q) - xi ~= (q - F_mid,n(xi)) / f_mid(xi)``, with ``f_mid`` the slope of
``F_mid`` at ``xi``: for ``xi`` between support points ``u_j`` and ``u_{j+1}``
the gradient of ``Q`` with respect to the empirical masses is that of
``F_mid,n(xi)`` times ``-1 / f_mid`` (differentiate the interpolation
formula above at ``q = F_mid(xi)``). ``F_mid,n(xi)`` is the mean of a per-row
score,

    s(y) = 1[y < u_j] + (1 + w) / 2 1[y = u_j] + w / 2 1[y = u_{j+1}],   w = (xi - u_j) / (u_{j+1} - u_j),

(for continuous data ``s(y) = 1[y <= xi]`` up to one row). The density is
avoided with the order-statistic interval: if ``F_mid,n(xi)`` has standard
deviation ``sigma``, then

    [Q(q - z sigma), Q(q + z sigma)]

is an asymptotic ``1 - alpha`` interval for ``xi`` (``z = z_{1-alpha/2}``),
so its half-length over ``z`` estimates ``sigma / f_mid(xi)``, the standard
error of ``Q(q)``. With i.i.d. rows ``sigma^2 = Var(s) / N`` (``q (1 - q) / N``
without ties). When rows are clustered in units (refunds within buyers, the
unit of randomization) the scores are correlated within a unit, and
``F_mid,n(xi) = sum_i S_i / sum_i N_i`` (``S_i`` = the sum of unit i's scores,
``N_i`` its rows) is a ratio of unit-level means. Its variance is the
delta-method ratio variance over the ``n`` units,

    sigma^2 = Var_i(S_i - F N_i) / (n Nbar^2)         (sample variance, ddof = 1)

evaluated at ``xi = Q(q)``. Independent arms give the effect ``Q_t - Q_c``
the variance ``se_t^2 + se_c^2``, and the relative effect ``(Q_t - Q_c) / |Q_c|`` the
delta-method standard error ``sqrt(se_t^2 / Q_c^2 + Q_t^2 se_c^2 / Q_c^4)`` and
Fieller's interval (:func:`abkit.stats.two_sample.fieller_relative`, as for the moment
metrics: it excludes 0 exactly when the absolute interval does).

**Bootstrap by unit.** Resample the units of each arm with replacement
(Efron and Tibshirani 1993, ch. 6; resampling clusters: Davison and Hinkley
1997, Section 3.8), keep all rows of a drawn unit, and recompute the
mid-distribution quantile: each draw weighs the arm's rows by the number of
times their unit was drawn. The standard deviation of the draws is the
standard error. Seeded.

**Refused.** A quantile inside the point mass of the smallest (largest)
value, ``q < p_1 / 2`` (``q > 1 - p_K / 2``), e.g. the p10 of hours to refund
when 30% of refunds take 0 hours, does not move with the sample: its
standard error is 0 and no test or interval can be built on it. abkit
raises :class:`abkit.DataError` (compare the share of rows at that value
with a Proportion instead, or choose another ``q``), as for a constant arm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import AbkitError, DataError
from .distributions import norm_isf, norm_sf
from .two_sample import fieller_relative

__all__ = [
    "QuantileEstimate",
    "cluster_ecdf_variance",
    "cluster_score_variance",
    "difference",
    "mid_cdf_scores",
    "mid_quantile",
    "mid_support",
    "quantile_bootstrap",
    "quantile_delta",
    "weighted_mid_quantiles",
]


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
    ecdf_se: float = np.nan  # sd of F_mid,n(xi) (delta method only)


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


def cluster_score_variance(scores: np.ndarray, codes: np.ndarray, n_units: int) -> float:
    """Delta-method variance of the row mean ``sum S_i / sum N_i`` of per-row ``scores`` over units.

    ``S_i`` sums unit i's scores and ``N_i`` counts its rows (Deng et al.
    2018): ``Var_i(S_i - F N_i) / (n Nbar^2)``, sample variance with ddof 1.
    """
    below = np.bincount(codes, weights=np.asarray(scores, dtype=np.float64), minlength=n_units)
    rows = np.bincount(codes, minlength=n_units).astype(np.float64)
    F = below.sum() / rows.sum()
    resid = below - F * rows
    nbar = rows.mean()
    return float(resid.var(ddof=1) / (n_units * nbar * nbar))


def cluster_ecdf_variance(values: np.ndarray, codes: np.ndarray, n_units: int, xi: float) -> float:
    """Delta-method variance of ``F_n(xi) = sum S_i / sum N_i`` over units (Deng et al. 2018).

    ``S_i`` counts unit i's rows with value ``<= xi`` and ``N_i`` its rows.
    """
    return cluster_score_variance((values <= xi).astype(np.float64), codes, n_units)


def mid_support(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(support, mid_cdf, starts)`` of sorted values: the distinct values ``u_j``, ``F_mid(u_j) = F(u_j) -
    p_j / 2`` and the position of each value's first row."""
    xs = np.asarray(sorted_values, dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], xs.size]
    return xs[starts], (starts + ends) / (2.0 * xs.size), starts


def mid_quantile(sorted_values: np.ndarray, q):
    """Mid-distribution quantile(s) ``q`` of sorted values (module docstring). Vectorized over ``q``.

    Without ties it equals ``np.quantile(x, q, method="hazen")``.
    """
    support, fmid, _ = mid_support(sorted_values)
    out = np.interp(q, fmid, support)
    return float(out) if np.ndim(out) == 0 else out


def mid_cdf_scores(values: np.ndarray, support: np.ndarray, xi: float) -> np.ndarray:
    """Per-row scores whose mean is ``F_mid,n(xi)``, the interpolated mid-distribution function at ``xi``.

    ``1[y < u_j] + (1 + w)/2 1[y = u_j] + w/2 1[y = u_{j+1}]`` for
    ``u_j <= xi < u_{j+1}``, ``w = (xi - u_j) / (u_{j+1} - u_j)``; at or beyond
    the last support point ``1[y < u_K] + 1/2 1[y = u_K]``, before the first
    ``1/2 1[y = u_1]``.
    """
    values = np.asarray(values, dtype=np.float64)
    j = int(np.searchsorted(support, xi, side="right")) - 1
    if j < 0:
        return 0.5 * (values == support[0])
    if j >= support.size - 1:
        return (values < support[-1]) + 0.5 * (values == support[-1])
    lo, hi = support[j], support[j + 1]
    w = (xi - lo) / (hi - lo)
    return (values < lo) + 0.5 * (1.0 + w) * (values == lo) + 0.5 * w * (values == hi)


def _no_spread(values: np.ndarray, support: np.ndarray, fmid: np.ndarray, q: float, value: float) -> DataError:
    """The refusal when the quantile sits in a point mass at the edge of the data (standard error 0)."""
    n = values.size
    if support.size == 1:
        return DataError(
            f"all {n:,} values are {value:g}: a quantile of a constant has no standard error; "
            "there is nothing to compare"
        )
    first = value <= support[0]
    share = float(np.mean(values == (support[0] if first else support[-1])))
    ok = (fmid[0], fmid[-1])
    return DataError(
        f"the q={q:g} quantile ({value:g}) lies in the point mass at the {'smallest' if first else 'largest'} "
        f"value, which holds {share:.1%} of the rows: there the quantile does not move with the sample, so it has "
        f"no standard error and no test; compare the share of rows at {value:g} (a Proportion) instead, or "
        f"choose q between {ok[0]:.3g} and {ok[1]:.3g}"
    )


def quantile_delta(values, q: float, clusters=None, alpha: float = 0.05) -> QuantileEstimate:
    """Mid-distribution quantile ``q`` of ``values`` with the cluster-aware order-statistic delta method.

    ``clusters`` gives each row's randomization unit (``None``: every row is
    a unit). See the module docstring for the formulas; a quantile in the
    point mass at the edge of the data (standard error 0) is refused with
    :class:`abkit.DataError`.
    """
    values, clusters = _check(values, q, clusters)
    codes, n_units = _codes(clusters, values.size)
    if n_units < 2:
        raise DataError(f"{n_units} unit(s): a quantile's standard error needs at least 2 units")
    support, fmid, _ = mid_support(np.sort(values))
    value = float(np.interp(q, fmid, support))
    sigma = np.sqrt(cluster_score_variance(mid_cdf_scores(values, support, value), codes, n_units))
    z = norm_isf(alpha / 2.0)
    lo_p, hi_p = max(q - z * sigma, 0.0), min(q + z * sigma, 1.0)
    lo, hi = np.interp([lo_p, hi_p], fmid, support)
    # The half-length over the probability span actually used (the span is
    # narrower than 2 z sigma only when it hits 0 or 1).
    se = float((hi - lo) / ((hi_p - lo_p) / sigma)) if sigma > 0 else 0.0
    if not se > 0.0:
        raise _no_spread(values, support, fmid, q, value)
    return QuantileEstimate(
        q=float(q),
        value=value,
        se=se,
        ci_lower=float(lo),
        ci_upper=float(hi),
        n_units=int(n_units),
        n_rows=int(values.size),
        ecdf_se=float(sigma),
    )


def weighted_mid_quantiles(support: np.ndarray, weights: np.ndarray, q: float) -> np.ndarray:
    """Mid-distribution quantile ``q`` under each row of ``weights`` (shape (draws, support points)).

    Points with weight 0 are not in that draw's support (the bootstrap's
    weighted empirical distribution); one value per draw.
    """
    w = np.asarray(weights, dtype=np.float64)
    below = np.zeros(w.shape[0])
    return _window_mid_quantiles(support, w, below, below + w.sum(axis=1), q)


def _window_mid_quantiles(support, w, below, total, q):
    """Mid-quantiles on a window of the support; NaN where the answer needs a point outside the window.

    ``below`` / ``total``: each draw's weight below the window and in all.
    A quantile left of the window's first point with weight is that point
    when no weight lies below the window (the flat end of ``F_mid``), else it
    needs the points below: NaN; likewise on the right.
    """
    cum = below[:, None] + np.cumsum(w, axis=1)
    target = (q * total)[:, None]
    fmid2 = 2.0 * cum - w  # 2 T F_mid at each point
    valid = w > 0
    left = valid & (fmid2 <= 2.0 * target)
    right = valid & (fmid2 > 2.0 * target)
    K = support.size
    has_l, has_r = left.any(axis=1), right.any(axis=1)
    jl = np.where(has_l, K - 1 - np.argmax(left[:, ::-1], axis=1), 0)
    jr = np.where(has_r, np.argmax(right, axis=1), K - 1)
    rows = np.arange(w.shape[0])
    fl, fr = fmid2[rows, jl], fmid2[rows, jr]
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = support[jl] + (2.0 * target[:, 0] - fl) / (fr - fl) * (support[jr] - support[jl])
    out = np.where(has_l & has_r, inner, np.where(has_r, support[jr], support[jl]))
    miss = (~has_l & (below > 0)) | (~has_r & (cum[:, -1] < total))
    return np.where(miss, np.nan, out)


def quantile_bootstrap(
    values, q: float, clusters=None, alpha: float = 0.05, n_boot: int = 2000, seed=None
) -> tuple[QuantileEstimate, np.ndarray]:
    """Mid-distribution quantile ``q`` with a bootstrap over units (clusters); returns the estimate and the draws.

    The interval is ``value +/- z se`` with ``se`` the standard deviation of
    the draws (normal-theory bootstrap interval, consistent with the delta
    method's). ``seed`` makes the draws reproducible. A quantile whose draws
    do not vary (a point mass at the edge of the data) is refused, as in
    :func:`quantile_delta`.
    """
    values, clusters = _check(values, q, clusters)
    if int(n_boot) < 50:
        raise AbkitError(f"n_boot={n_boot!r} is too small for a standard error; use 1000 or more")
    rng = np.random.default_rng(seed)
    codes, n_units = _codes(clusters, values.size)
    order = np.argsort(values, kind="stable")
    xs, unit_of_sorted = values[order], codes[order]
    N = xs.size
    support, fmid, starts = mid_support(xs)
    K = support.size
    value = float(np.interp(q, fmid, support))
    # Only support points near the quantile can bracket a draw's quantile: carry the rows below a window as
    # per-unit counts (one matrix-vector product) and sum weights per support point inside the window only; a
    # draw whose quantile needs a point outside the window (a > 8 sd move of F_mid) is recomputed over all.
    sigma = np.sqrt(cluster_score_variance(mid_cdf_scores(values, support, value), codes, n_units))
    point_of_row = np.repeat(np.arange(K), np.diff(np.r_[starts, N]))
    r_lo = int(np.clip(np.floor(N * (q - 8.0 * sigma)) - 1, 0, N - 1))
    r_hi = int(np.clip(np.ceil(N * (q + 8.0 * sigma)) + 1, r_lo + 1, N))
    k_lo = max(int(point_of_row[r_lo]) - 1, 0)
    k_hi = min(int(point_of_row[r_hi - 1]) + 2, K)  # exclusive
    row_lo, row_hi = int(starts[k_lo]), (int(starts[k_hi]) if k_hi < K else N)
    below_units = np.bincount(unit_of_sorted[:row_lo], minlength=n_units).astype(np.float64)
    rows_per_unit = np.bincount(codes, minlength=n_units).astype(np.float64)
    window_units = unit_of_sorted[row_lo:row_hi]
    window_starts = starts[k_lo:k_hi] - row_lo
    window_support = support[k_lo:k_hi]
    draws = np.empty(int(n_boot))
    chunk = max(1, min(int(n_boot), (1 << 22) // max(row_hi - row_lo + n_units, 1)))
    for start in range(0, int(n_boot), chunk):
        b = min(chunk, int(n_boot) - start)
        picks = rng.integers(0, n_units, size=(b, n_units))
        counts = (
            np.bincount((picks + n_units * np.arange(b)[:, None]).ravel(), minlength=b * n_units)
            .reshape(b, n_units)
            .astype(np.float64)
        )
        total = counts @ rows_per_unit
        w = np.add.reduceat(counts[:, window_units], window_starts, axis=1)
        out = _window_mid_quantiles(window_support, w, counts @ below_units, total, q)
        miss = np.isnan(out)
        if miss.any():
            full = np.add.reduceat(counts[miss][:, unit_of_sorted], starts, axis=1)
            out[miss] = weighted_mid_quantiles(support, full, q)
        draws[start : start + b] = out
    se = float(draws.std(ddof=1))
    if not se > 0.0:
        raise _no_spread(values, support, fmid, q, value)
    z = norm_isf(alpha / 2.0)
    est = QuantileEstimate(
        q=float(q),
        value=value,
        se=se,
        ci_lower=value - z * se,
        ci_upper=value + z * se,
        n_units=int(n_units),
        n_rows=int(values.size),
    )
    return est, draws


def difference(treatment: QuantileEstimate, control: QuantileEstimate, alpha: float = 0.05) -> dict:
    """Absolute and relative effect of independent arms, normal CIs (Fieller's for the relative effect),
    two-sided p-value (``norm.sf``)."""
    z = norm_isf(alpha / 2.0)
    qt, qc = treatment.value, control.value
    effect = qt - qc
    se = float(np.hypot(treatment.se, control.se))
    if se > 0:
        p = float(min(2.0 * norm_sf(abs(effect) / se), 1.0))
    else:
        p = 1.0 if effect == 0 else 0.0
    if qc != 0.0:
        rel = effect / abs(qc)  # the relative lift of abkit.stats.two_sample: the effect's sign also for qc < 0
        rel_se = float(np.sqrt(treatment.se**2 / qc**2 + qt**2 * control.se**2 / qc**4))
    else:
        rel = rel_se = np.nan
    # Fieller's interval, as for moment metrics (abkit.stats.two_sample): independent arms, so
    # Var(qt - qc) = se^2 and Cov(qt - qc, qc) = -Var(qc)
    rel_lo, rel_hi = (
        fieller_relative(effect, qc, se * se, -(control.se**2), control.se**2, z)
        if np.isfinite(qc)
        else (np.nan, np.nan)
    )
    return {
        "effect": effect,
        "se": se,
        "ci_lower": effect - z * se,
        "ci_upper": effect + z * se,
        "p_value": p,
        "rel_effect": rel,
        "rel_se": rel_se,
        "rel_ci_lower": rel_lo,
        "rel_ci_upper": rel_hi,
    }
