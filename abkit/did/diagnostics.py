"""Warnings and thresholds shared by the DiD estimators."""
from __future__ import annotations

WILD_AUTO_CLUSTERS = 50
"""With fewer clusters than this, the wild cluster bootstrap runs by default (``wild=None``)."""


class DiDWarning(UserWarning):
    """A DiD design or estimator choice that can mislead (e.g. TWFE on staggered launches)."""
