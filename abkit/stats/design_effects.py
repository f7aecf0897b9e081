"""Design effects on power: several arms (per-comparison alpha) and cluster randomization.

Several arms
============

``arms - 1`` treatment arms, each compared with the control: the
family-wise ``alpha`` is split Bonferroni-wise, ``alpha' = alpha / (arms - 1)``
(the default), or Sidak-wise, ``alpha' = 1 - (1 - alpha)^(1/(arms - 1))``
(exact for independent comparisons, valid for the positively correlated
comparisons against a shared control; Sidak 1967). Bonferroni is the
default because it is what a Holm-corrected analysis (``abkit.analyze(...,
correction="holm")``) needs at worst: Holm rejects everything Bonferroni
rejects, so each comparison has at least the planned power. Dunnett's
(1955) test, which uses the correlation ``k / (1 + k)`` between comparisons
sharing a control, is less conservative (for 3 treatment arms at alpha
0.05 two-sided about 2.35 instead of 2.39 standard errors); Dunnett also
showed that ``k = 1 / sqrt(arms - 1)`` (a larger control) minimizes the total.

Cluster randomization
=====================

Randomizing sellers, warehouses or markets of mean size ``m`` (units per
cluster) with intra-cluster correlation ``ICC`` and coefficient of
variation ``cv`` of the cluster sizes (population sd / mean) inflates the
variance of an arm mean by the design effect (Eldridge, Ashby and Kerry
2006, "Sample size for cluster randomized trials: effect of coefficient of
variation of cluster size and analysis method", Int. J. Epidemiol. 35)

    DE = 1 + ((cv^2 + 1) m - 1) ICC

so ``n_units = n_iid x DE`` and ``n_clusters = n_units / m``. For means the
t-test then uses ``df = n_clusters_c + n_clusters_t - 2`` (the cluster-level
analysis; Donner and Klar 2000, *Design and Analysis of Cluster
Randomization Trials*), which matters with few clusters. Proportions use
the normal approximation, so ``n_units`` is exactly R's ``n x DE``.
"""

from __future__ import annotations

import numpy as np

from ..errors import AbkitError
from .power_inputs import _arr, _out, _require

CORRECTIONS = ("bonferroni", "sidak", None)


def comparison_alpha(alpha, arms: int = 2, correction: str | None = "bonferroni"):
    """The per-comparison level that keeps the family-wise level ``alpha`` over ``arms - 1``
    comparisons with control: Bonferroni ``alpha / (arms - 1)`` or Sidak
    ``1 - (1 - alpha)^(1 / (arms - 1))``; ``correction=None`` keeps ``alpha``."""
    a = _arr(alpha, "alpha")
    _require((a > 0) & (a < 0.5), "alpha", a, "must be in (0, 0.5), e.g. 0.05")
    if isinstance(arms, bool) or not isinstance(arms, (int, np.integer)) or arms < 2:
        raise AbkitError(f"arms={arms!r} must be an integer >= 2 (control plus treatment arms)")
    if correction not in CORRECTIONS:
        raise AbkitError(f"correction={correction!r} is not known; use 'bonferroni', 'sidak' or None")
    k = int(arms) - 1
    if k == 1 or correction is None:
        return a
    if correction == "bonferroni":
        return a / k
    return -np.expm1(np.log1p(-a) / k)


def design_effect(cluster_size, icc, cv=0.0):
    """Variance inflation of cluster randomization (Eldridge, Ashby and Kerry 2006).

    ``DE = 1 + ((cv^2 + 1) m - 1) ICC`` with ``m`` the mean cluster size and
    ``cv`` the coefficient of variation of cluster sizes (sd with ddof 0 over
    the mean; 0 for equal clusters, where this is Kish's ``1 + (m - 1) ICC``).
    """
    m = _arr(cluster_size, "cluster_size")
    _require(m >= 1, "cluster_size", m, "must be >= 1 (mean number of units per cluster)")
    rho = _arr(icc, "icc")
    _require((rho >= 0) & (rho <= 1), "icc", rho, "must be in [0, 1] (intra-cluster correlation)")
    c = _arr(cv, "cluster_cv" if not isinstance(cv, str) else "cv")
    _require(c >= 0, "cluster_cv", c, "must be >= 0 (sd of cluster sizes / mean size)")
    return _out(1.0 + ((c * c + 1.0) * m - 1.0) * rho)


def _cluster(cluster_size, icc, cluster_cv):
    """(m, DE, clustered?) from the cluster arguments."""
    if cluster_size is None:
        if np.any(np.asarray(icc) != 0) or np.any(np.asarray(cluster_cv) != 0):
            raise AbkitError(
                "icc / cluster_cv given without cluster_size; pass cluster_size= (mean "
                "units per cluster) for a cluster-randomized design"
            )
        return np.float64(1.0), np.float64(1.0), False
    m = _arr(cluster_size, "cluster_size")
    de = np.asarray(design_effect(m, icc, cluster_cv), dtype=np.float64)
    return m, de, True
