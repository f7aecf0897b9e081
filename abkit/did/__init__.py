"""Difference-in-differences for non-randomized rollouts (a refund policy launched market by market).

    >>> import abkit, abkit.did as did
    >>> panel = abkit.simulate.rollout_panel(effects={"contact_rate": -0.08}, seed=1)
    >>> panel["launched"] = (panel.week >= panel.launch_week.fillna(10**6)).astype(float)
    >>> did.twfe(panel, ("contacts", "orders"), "launched", "market", "week")   # doctest: +SKIP
    >>> es = did.event_study(panel, ("contacts", "orders"), "market", "week", "launch_week")
    >>> es.plot()                                                               # doctest: +SKIP
    >>> panel["contact_rate"] = panel.contacts / panel.orders
    >>> cs = did.staggered(panel, "contact_rate", "market", "week", "launch_week")
    >>> cs.aggregate("dynamic").to_frame()                                      # doctest: +SKIP

Estimators (formulas and references in :mod:`abkit.stats.callaway_santanna`,
:mod:`abkit.stats.fixed_effects` and their neighbours):

* :func:`two_by_two` - classic DiD regression ``y ~ treated + post + treated:post (+ X)``.
* :func:`twfe` - two-way fixed effects ``y ~ D | unit + time`` (fixed effects absorbed).
* :func:`event_study` - leads and lags of the launch (binned endpoints), joint
  pre-trend test, pointwise and uniform (sup-t) bands.
* :func:`staggered` - Callaway & Sant'Anna (2021) ATT(g, t), with the simple,
  dynamic, group and calendar aggregations.
* :func:`placebo`, :func:`bacon` - diagnostics; :func:`aggregate_panel` builds
  unit x period panels from buyer- or order-level rows (in DuckDB / Spark for
  files and tables: only the panel comes back).

Inference. Cluster-robust (CRV1) standard errors, clustered by unit unless
``cluster=`` says otherwise, with the small-sample factor
``G/(G-1) (N-1)/(N-K)`` and t(G-1) reference (as Stata, statsmodels and R
fixest; ``K`` follows fixest's rule for fixed effects nested in clusters).
Few clusters (20 markets) are the normal case here, so with fewer than
:data:`WILD_AUTO_CLUSTERS` clusters the wild cluster restricted bootstrap
p-value and confidence interval are reported too (``wild_p_value``,
``wild_ci_lower``, ``wild_ci_upper``; Rademacher or Webb weights, seeded).
For :func:`staggered` (influence-function SEs, clustered by unit), fewer
than :data:`WILD_AUTO_CLUSTERS` units switch CIs to ``t(G - 1)``, the uniform
band to a multivariate-t sup-t band, and the pre-trend test
(:meth:`StaggeredResult.pretrend_test`, :meth:`AggregateResult.pretrend`; by
default the :data:`PRETREND_LEADS` = 4 periods before launch, ``leads=`` to
change) to a jackknife covariance with Hotelling's F.

Few treated clusters. With fewer than :data:`FEW_TREATED_CLUSTERS` treated (or
untreated) clusters, cluster-robust and wild bootstrap p-values are unreliable
(one launched market of 20: CRV1 rejects a true null 60% of the time, the wild
bootstrap never): every estimator then warns (:class:`FewTreatedClustersWarning`)
and sets ``few_treated_clusters`` on its result, and :func:`randomization_test`
(or ``staggered(...).randomization_test()``) tests over which units were treated
instead. A synthetic control (``abkit.did.synthetic``) is the estimator for one
treated market.

Never-treated units: ``first_treated`` missing (or +inf); 0 only when 0 is not a
period of the panel; an ambiguous 0 or negative value is an error
(:func:`classify_first_treated`, one rule for every estimator and the readout).

Ratio outcomes. ``outcome=("contacts", "orders")`` analyses the unit-period
ratio ``contacts / orders`` weighted by ``orders`` (unless ``weights=`` is
given): the estimate is then the effect on the pooled ratio
``sum contacts / sum orders`` of the treated cells, i.e. per order, not per
market-week; unweighted analysis of the ratio would give every market-week
the same say whatever its size.
"""

from .diagnostics import (
    FEW_TREATED_CLUSTERS,
    WILD_AUTO_CLUSTERS,
    DiDWarning,
    FewTreatedClustersWarning,
)
from .one_market import DetectableEffect, SyntheticResult, detectable_effect, synthetic
from .panel import classify_first_treated
from .panel_rows import aggregate_panel
from .randomization import randomization_test
from .randomization_results import RandomizationTest
from .regression_estimators import bacon, event_study, placebo, twfe, two_by_two
from .regression_results import BaconResult, DiDResult, EventStudyResult, PretrendTest
from .staggered_estimator import staggered
from .staggered_results import (
    PRETREND_LEADS,
    AggregateResult,
    StaggeredResult,
    WindowAverage,
)

__all__ = [
    "DiDWarning",
    "WILD_AUTO_CLUSTERS",
    "PRETREND_LEADS",
    "DiDResult",
    "EventStudyResult",
    "StaggeredResult",
    "AggregateResult",
    "WindowAverage",
    "BaconResult",
    "PretrendTest",
    "aggregate_panel",
    "two_by_two",
    "twfe",
    "event_study",
    "staggered",
    "placebo",
    "bacon",
    "FEW_TREATED_CLUSTERS",
    "FewTreatedClustersWarning",
    "RandomizationTest",
    "randomization_test",
    "classify_first_treated",
    "synthetic",
    "SyntheticResult",
    "detectable_effect",
    "DetectableEffect",
]
