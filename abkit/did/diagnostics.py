"""Warnings and thresholds shared by the DiD estimators, and the few-treated-clusters check."""

from __future__ import annotations

import warnings

import numpy as np

WILD_AUTO_CLUSTERS = 50
"""With fewer clusters than this, the wild cluster bootstrap runs by default (``wild=None``)."""

FEW_TREATED_CLUSTERS = 5
"""Fewer treated (or untreated) clusters than this: cluster-robust and wild bootstrap inference are unreliable.

Simulated null rejection rates at the 5% level (``tests/test_did_edges.py`` checks the first
rows; 20 markets x 20 weeks, one launch week, unit and week effects, heteroskedastic AR(1) noise,
1,000 panels): with 1, 2, 3, 4, 5, 6, 8 launched markets, TWFE's CRV1 t(G - 1) test rejects
60%, 25%, 13%, 9%, 9%, 6%, 5% of the time; the wild cluster restricted bootstrap 0%, 0%, 3%, 6%,
6%, 5%, 5%; Callaway & Sant'Anna with t(G - 1) 62%, 22%, 15%, 11%, 10%, 7%, 6% (its multiplier
bootstrap more). Few *untreated* clusters fail the same way (15 to 18 launched of 20: CRV1 7%,
9%, 11%, 21%). MacKinnon & Webb (2017, J. Applied Econometrics; 2018, Econometrics Journal) show
why: the cluster-robust variance estimates the treated clusters' variance from a handful of
residuals. Below the threshold abkit warns (:class:`FewTreatedClustersWarning`), sets
``few_treated_clusters`` on the result and offers :func:`abkit.did.randomization_test`; 5 to 7
treated clusters still over-reject somewhat (7-10% with Callaway & Sant'Anna here)."""


class DiDWarning(UserWarning):
    """A DiD design or estimator choice that can mislead (e.g. TWFE on staggered launches)."""


class FewTreatedClustersWarning(DiDWarning):
    """Too few treated (or untreated) clusters for cluster-robust or wild bootstrap inference."""


def treated_cluster_counts(cluster: np.ndarray | None, treated_rows: np.ndarray) -> tuple[int, int]:
    """``(treated, untreated)`` clusters: clusters with at least one treated row, and the others.

    ``cluster``: integer codes per row (None: no clusters, ``(0, 0)``); ``treated_rows``: a boolean
    per row (a treated unit, or a treated unit-period).
    """
    if cluster is None:
        return 0, 0
    G = int(cluster.max()) + 1 if cluster.size else 0
    hit = np.bincount(cluster[np.asarray(treated_rows, bool)], minlength=G) > 0
    return int(hit.sum()), int(G - hit.sum())


def few_treated_message(
    n_treated: int,
    n_untreated: int,
    *,
    treated: str = "treated",
    untreated: str = "untreated",
    clusters: str = "clusters",
) -> str | None:
    """The warning text when either count is below :data:`FEW_TREATED_CLUSTERS`, else None.

    No untreated cluster at all (every cluster treated at some time: staggered timing, compared
    across cohorts) is not flagged on that side; one to four are.
    """
    if n_treated + n_untreated == 0:
        return None
    few = [
        f"{n} {what} {clusters if n != 1 else clusters.rstrip('s')}"
        for n, what in ((n_treated, treated), (n_untreated, untreated))
        if n < FEW_TREATED_CLUSTERS and (n > 0 or what == treated)
    ]
    if not few:
        return None
    return (
        f"Only {' and '.join(few)}: with fewer than {FEW_TREATED_CLUSTERS}, cluster-robust and wild bootstrap "
        "p-values and confidence intervals are unreliable (MacKinnon & Webb 2017, 2018; with 1 launched market "
        "of 20, CRV1 rejects a true null 60% of the time at 5% and the wild bootstrap never). Use "
        "abkit.did.randomization_test (randomization inference over which units were treated) as the test, "
        "and compare with a synthetic control (abkit.did.synthetic)."
    )


def warn_few_treated(message: str | None, stacklevel: int = 3) -> None:
    if message:
        warnings.warn(message, FewTreatedClustersWarning, stacklevel=stacklevel)
