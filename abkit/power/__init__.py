"""``abkit.power``: how many buyers, how many days, what can we detect?

This package is the facade; it re-exports the public API from the modules
that do one job each:

* :mod:`abkit.power.planning` -- :func:`plan` (and :class:`PowerPlan`):
  from historical (or A/A) data, each metric's baseline, unit-level
  (delta-method) standard deviation and CUPED variance reduction
  (:mod:`abkit.power.metric_design`, :func:`estimate_design`), then the MDE
  by experiment duration and the duration needed for given effects;
  :meth:`PowerPlan.plot` draws the MDE by duration (``kind="mde"``) or the
  power by true effect (``kind="power"``). Guardrails with a relative
  non-inferiority ``margin`` get the power of the rule the readout applies
  (the bad-side bound of its two-sided ``1 - alpha`` Fieller interval within
  the margin: the one-sided ratio test of ``a_t - (1 +/- m) a_c`` at
  ``alpha / 2``); ``sequential=True`` plans a test read with always-valid
  intervals.
* :mod:`abkit.power.simulated_power` -- :func:`simulate_power`: resamples
  units of the history, injects a known effect, runs abkit's own estimator
  on every simulated test and reports the empirical power with its Monte
  Carlo (Clopper-Pearson) interval; :func:`power_curve`.

The closed forms are pure math in :mod:`abkit.stats` and re-exported here:

* means: :func:`sample_size_mean`, :func:`mde_mean`, :func:`power_mean`
  (two-sample t-test, exactly statsmodels' ``TTestIndPower``) and ratio
  metrics: :func:`sample_size_ratio`, :func:`mde_ratio`,
  :func:`power_ratio` (delta method) -- :mod:`abkit.stats.t_test_power`;
* proportions: :func:`sample_size_proportion`, :func:`mde_proportion`,
  :func:`power_proportion` (the two-proportion z-test the readout runs,
  unpooled; ``pooled=True`` is R's ``power.prop.test``) --
  :mod:`abkit.stats.proportion_power`;
* panels / DiD rollouts: :func:`sample_size_panel`, :func:`mde_panel`,
  :func:`power_panel`, :func:`panel_variance` (Burlig, Preonas and Woerman
  2020; McKenzie 2012) -- :mod:`abkit.stats.panel_power`;
* design helpers: :func:`design_effect` (cluster randomization),
  :func:`comparison_alpha` (several arms) -- :mod:`abkit.stats.design_effects`;
  :func:`days_needed`, :func:`uniques_after`, :func:`fit_population`
  (duration with repeat visitors) -- :mod:`abkit.stats.enrollment`;
  :func:`monte_carlo_ci` -- :mod:`abkit.stats.monte_carlo`.

    >>> import abkit
    >>> from abkit import power
    >>> hist = abkit.simulate.ab_data(20_000, seed=3)
    >>> p = power.plan(hist, abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"),
    ...                                   name="refund_rate", better="lower"),
    ...                daily_units=4_000, population=60_000)
    >>> p.to_frame()  # doctest: +SKIP
"""

from __future__ import annotations

from ..did.one_market import DetectableEffect, detectable_effect  # one-market launches (synthetic DiD)
from ..stats.design_effects import CORRECTIONS, comparison_alpha, design_effect
from ..stats.enrollment import days_needed, fit_population, uniques_after
from ..stats.monte_carlo import monte_carlo_ci
from ..stats.panel_power import (
    PanelVariance,
    mde_panel,
    panel_covariance,
    panel_variance,
    power_panel,
    sample_size_panel,
)
from ..stats.power_inputs import ALTERNATIVES
from ..stats.power_results import MDEResult, PowerResult, SampleSizeResult
from ..stats.proportion_power import mde_proportion, power_proportion, sample_size_proportion
from ..stats.t_test_power import (
    mde_mean,
    mde_ratio,
    power_mean,
    power_ratio,
    ratio_variance,
    sample_size_mean,
    sample_size_ratio,
    t_power,
)
from .metric_design import MetricDesign, estimate_design
from .planning import (  # noqa: F401 (constants)
    DEFAULT_DAYS,
    DEFAULT_MDES,
    PowerPlan,
    always_valid_alpha,
    plan,
    readout_level,
)
from .simulated_power import (  # noqa: F401 (CI_METHOD, DEFAULT_SIMS*: public constants, as before the split)
    CI_METHOD,
    DEFAULT_SIMS,
    DEFAULT_SIMS_QUANTILE,
    SimulatedPower,
    power_curve,
    simulate_power,
)

__all__ = [
    "ALTERNATIVES",
    "CORRECTIONS",
    "MDEResult",
    "MetricDesign",
    "PanelVariance",
    "PowerPlan",
    "PowerResult",
    "SampleSizeResult",
    "SimulatedPower",
    "comparison_alpha",
    "days_needed",
    "design_effect",
    "estimate_design",
    "always_valid_alpha",
    "fit_population",
    "mde_mean",
    "mde_panel",
    "mde_proportion",
    "mde_ratio",
    "monte_carlo_ci",
    "panel_covariance",
    "panel_variance",
    "plan",
    "power_curve",
    "power_mean",
    "power_panel",
    "power_proportion",
    "power_ratio",
    "ratio_variance",
    "sample_size_mean",
    "sample_size_panel",
    "sample_size_proportion",
    "sample_size_ratio",
    "simulate_power",
    "t_power",
    "uniques_after",
    "detectable_effect",
    "DetectableEffect",
    "readout_level",
]
# also public as before the split (module constants, not in __all__): DEFAULT_DAYS, DEFAULT_MDES, DEFAULT_SIMS,
# DEFAULT_SIMS_QUANTILE, CI_METHOD
