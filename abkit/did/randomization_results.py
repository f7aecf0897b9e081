"""The result of a randomization test over the assignment of units to treatment."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .result_tables import _fmt_p, _table_html


@dataclass(frozen=True)
class RandomizationTest:
    """Randomization inference: the estimate against its distribution over re-assignments of the treatment.

    ``p_value``: two-sided, ``|estimate|`` against the estimates of every assignment of the
    observed treatment paths to the units that keeps the cohort sizes (``exact``: all
    ``n_assignments`` of them) or of ``n_assignments - 1`` seeded random ones besides the observed
    one; ``min_p_value`` is the smallest p-value the design allows (``1 / total_assignments``
    when exact). See :mod:`abkit.stats.randomization_inference`.
    """

    estimator: str
    outcome: str
    estimate: float
    p_value: float
    alpha: float
    exact: bool
    n_assignments: int  # assignments evaluated, the observed one included
    total_assignments: int  # distinct assignments that keep the cohort sizes
    n_units: int
    n_treated: int
    seed: object = 0
    n_failed: int = 0  # assignments whose estimate could not be computed (left out)
    null_estimates: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def min_p_value(self) -> float:
        """The smallest attainable p-value: ``1 / total`` when exact, ``1 / n_assignments`` by random draws."""
        return 1.0 / self.total_assignments if self.exact else 1.0 / self.n_assignments

    @property
    def can_reject(self) -> bool:
        """Whether this design can give a p-value below ``alpha`` at all."""
        return self.min_p_value < self.alpha

    @property
    def significant(self) -> bool:
        return bool(math.isfinite(self.p_value) and self.p_value < self.alpha)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "metric": self.outcome,
                    "method": f"randomization test ({self.estimator})",
                    "effect": self.estimate,
                    "p_value": self.p_value,
                    "exact": self.exact,
                    "n_assignments": self.n_assignments,
                    "total_assignments": self.total_assignments,
                    "min_p_value": self.min_p_value,
                    "n_units": self.n_units,
                    "n_treated": self.n_treated,
                }
            ]
        )

    def summary(self) -> str:
        how = (
            f"exact over all {self.total_assignments:,} assignments"
            if self.exact
            else f"{self.n_assignments - 1:,} random assignments of {self.total_assignments:,} (seed {self.seed})"
        )
        s = (
            f"randomization test ({self.estimator}) on {self.outcome}: {self.estimate:.5g}, "
            f"p = {_fmt_p(self.p_value)} ({how} of the {self.n_treated} treated units' timing among "
            f"{self.n_units} units; smallest possible p = {self.min_p_value:.3g})"
        )
        if not self.can_reject:
            s += (
                f". With this few units the test cannot reach p < {self.alpha:g}: no significance test can "
                "confirm an effect here; use a synthetic control (abkit.did.synthetic) and judgement"
            )
        if self.n_failed:
            s += f"; {self.n_failed} assignment(s) could not be estimated and are left out"
        return s

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return _table_html(self.to_frame(), f"Randomization test: {self.outcome}", [self.summary()])
