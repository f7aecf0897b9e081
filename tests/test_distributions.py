"""abkit.stats.distributions: the tail functions of the A/B path equal scipy.stats' to the last bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from abkit.stats import distributions as d

X = np.array([-np.inf, -40, -8.3, -1.96, -0.5, 0.0, 1e-300, 0.3, 1.96, 5.0, 38.0, 39.0, np.inf, np.nan])
Q = np.array([0.0, 1e-300, 1e-20, 0.001, 0.025, 0.5, 0.975, 1 - 1e-16, 1.0, np.nan, -0.1, 1.1])
DF = np.array([0.5, 1.0, 2.0, 3.7, 30.0, 1e6, 0.0, -1.0, np.nan])


def same(a, b) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


@pytest.mark.parametrize(
    ("ours", "theirs", "grid"),
    [
        (d.norm_sf, stats.norm.sf, X),
        (d.norm_cdf, stats.norm.cdf, X),
        (d.norm_pdf, stats.norm.pdf, X),
        (d.norm_isf, stats.norm.isf, Q),
        (d.norm_ppf, stats.norm.ppf, Q),
    ],
)
def test_normal_functions_equal_scipy_stats(ours, theirs, grid):
    assert same(ours(grid), theirs(grid))
    assert type(ours(0.3)) is type(theirs(0.3)) is np.float64


def test_t_and_chi2_equal_scipy_stats_including_the_edges():
    x, df = np.meshgrid(X, np.append(DF, np.inf))
    q, dq = np.meshgrid(Q, np.append(DF, np.inf))
    assert same(d.t_sf(x, df), stats.t.sf(x, df))  # df = inf: the normal
    assert same(d.t_isf(q, dq), stats.t.isf(q, dq))  # q = 0: +inf, q = 1: -inf, bad q or df: NaN
    x, df = np.meshgrid(X, DF)
    assert same(d.chi2_sf(x, df), stats.chi2.sf(x, df))  # x <= 0: 1; df <= 0: NaN
    assert d.t_isf(0.025, 10) == stats.t.isf(0.025, 10) and type(d.chi2_sf(3.0, 2)) is np.float64


def test_noncentral_t_equals_scipy_stats():
    x = np.linspace(-5, 40, 46)
    df = np.array([1.0, 2.5, 10.0, 100.0, 1e5])[:, None]
    nc = np.array([-3.0, 0.0, 0.5, 2.0, 10.0, 30.0])[:, None, None]
    assert same(d.nct_sf(x, df, nc), stats.nct.sf(x, df, nc))
