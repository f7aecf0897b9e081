"""Health checks of an experiment's data.

Sample ratio mismatch (SRM): a chi-square goodness-of-fit test of the
observed units per arm against the planned allocation (Fabijan et al. 2019,
"Diagnosing Sample Ratio Mismatch in Online Controlled Experiments", KDD).
A p-value below 0.001 is the conventional alarm: the assignment or the
logging is broken and the effects cannot be trusted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import AbkitError
from .distributions import chi2_sf

__all__ = ["SRMResult", "srm_test", "SRM_ALARM"]

SRM_ALARM = 0.001


@dataclass(frozen=True)
class SRMResult:
    """Outcome of the sample-ratio-mismatch test."""

    arms: tuple
    observed: tuple[int, ...]
    expected_share: tuple[float, ...]
    chi2: float
    df: int
    p_value: float
    threshold: float = SRM_ALARM

    @property
    def mismatch(self) -> bool:
        """True when the split is implausible under the planned allocation (p < threshold)."""
        return bool(self.p_value < self.threshold)

    @property
    def observed_share(self) -> tuple[float, ...]:
        total = sum(self.observed)
        return tuple(o / total for o in self.observed)

    def summary(self) -> str:
        obs = ", ".join(
            f"{a}: {o:,} ({s:.2%} vs {e:.2%} planned)"
            for a, o, s, e in zip(self.arms, self.observed, self.observed_share, self.expected_share)
        )
        verdict = "Sample ratio mismatch" if self.mismatch else "no sample ratio mismatch"
        p = "p < 0.001" if self.p_value < 0.001 else f"p = {self.p_value:.3g}"
        return f"{verdict} (chi-square {p}); {obs}"


def normalise_allocation(arms: Sequence, allocation) -> np.ndarray:
    """Planned shares per arm, in the order of ``arms``, summing to one.

    ``allocation`` may be None (equal split), a mapping arm -> weight, or a
    sequence of weights in the order of ``arms``.
    """
    k = len(arms)
    if allocation is None:
        return np.full(k, 1.0 / k)
    if isinstance(allocation, Mapping):
        unknown = [a for a in allocation if a not in arms]
        missing = [a for a in arms if a not in allocation]
        if unknown or missing:
            raise AbkitError(
                f"allocation names arms {list(allocation)} but the data has arms {list(arms)}"
                + (f"; unknown: {unknown}" if unknown else "")
                + (f"; missing: {missing}" if missing else "")
            )
        w = np.array([float(allocation[a]) for a in arms])
    else:
        w = np.asarray(list(allocation), dtype=float)
        if w.size != k:
            raise AbkitError(f"allocation has {w.size} shares but the data has {k} arms {list(arms)}")
    if np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise AbkitError(f"allocation shares must be positive numbers, got {w.tolist()}")
    return w / w.sum()


def srm_test(observed: Mapping, allocation=None, threshold: float = SRM_ALARM) -> SRMResult:
    """Chi-square test of observed units per arm against the planned allocation.

    ``chi2 = sum_a (O_a - E_a)^2 / E_a`` with ``E_a = N * share_a``, on
    ``arms - 1`` degrees of freedom; the p-value is the chi-square survival
    function (no ``1 - cdf`` underflow).
    """
    arms = tuple(observed)
    counts = np.array([observed[a] for a in arms], dtype=float)
    shares = normalise_allocation(arms, allocation)
    if len(arms) < 2:
        return SRMResult(arms, tuple(int(c) for c in counts), tuple(shares), 0.0, 0, 1.0, threshold)
    expected = counts.sum() * shares
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    df = len(arms) - 1
    p = float(chi2_sf(chi2, df))
    return SRMResult(arms, tuple(int(c) for c in counts), tuple(float(s) for s in shares), chi2, df, p, threshold)
