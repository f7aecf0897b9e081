"""The data a list of metrics needs, below every facade: checked metrics, winsorizing caps, moments.

* :func:`check_metrics` -- one metric or a list, checked once for every
  facade (:func:`abkit.analyze`, :func:`abkit.power.plan`,
  :func:`abkit.sequential.monitor`, :func:`abkit.analyze_segments`);
* :func:`resolve_caps` -- the winsorizing caps of ``Mean(..., winsorize=q)``
  metrics, computed from the data (one quantile pass per cap column);
* :func:`moments` (``abkit.moments``) -- the moments the metrics need, caps
  first.

The facades import this module; it imports only the layers below
(:mod:`abkit.metrics`, :mod:`abkit.sources`), never a facade.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import AbkitError, DataError
from .metrics import Mean, Metric
from .moments import MomentSet
from .sources import aggregate
from .sources import quantile as sources_quantile

__all__ = ["check_metrics", "moments", "resolve_caps"]


def check_metrics(metrics) -> list[Metric]:
    """One metric or a list of them, as a list: at least one, each a :class:`abkit.Metric`, names distinct."""
    if isinstance(metrics, Metric):
        metrics = [metrics]
    if isinstance(metrics, (str, bytes)):
        raise AbkitError(f"{metrics!r} is not a metric; use abkit.Mean, abkit.Proportion or abkit.Ratio")
    metrics = list(metrics)
    if not metrics:
        raise AbkitError("no metrics given; pass e.g. [abkit.Mean('refund_amount')]")
    for m in metrics:
        if not isinstance(m, Metric):
            raise AbkitError(f"{m!r} is not a metric; use abkit.Mean, abkit.Proportion or abkit.Ratio")
    names = [m.name for m in metrics]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AbkitError(f"metric name(s) {dupes} used twice; give each metric a distinct name=")
    return metrics


def resolve_caps(data, metrics: Sequence[Metric]) -> list[Metric]:
    """Fix the winsorizing caps of ``Mean(..., winsorize=q)`` metrics from ``data``.

    Each cap is the ``q``-quantile (linear interpolation) of the metric's
    ``cap_from`` column over all rows with a value, every arm pooled. Reads
    only the cap columns, once. Other metrics are returned unchanged.
    """
    metrics = list(metrics)
    todo = [m for m in metrics if isinstance(m, Mean) and m.needs_cap]
    if not todo:
        return metrics
    caps = {}
    for m in todo:
        source = m.option("cap_from")
        cap = sources_quantile(data, source, m.option("winsorize"))
        if not np.isfinite(cap):
            raise DataError(
                f"column '{source}' has no values to compute the cap of metric '{m.name}' "
                f"(winsorize={m.option('winsorize')}); give cap= or another cap_from="
            )
        caps[m.name] = cap
    return [m.with_cap(caps[m.name]) if m in todo else m for m in metrics]


def moments(
    data,
    metrics: Sequence[Metric] | Metric,
    variant: str = "variant",
    by: str | Sequence[str] | None = None,
    *,
    unit: str | None = None,
    joint: Sequence[Sequence[str]] | None = None,
) -> MomentSet:
    """Aggregate ``data`` into the moments ``metrics`` need (see :func:`abkit.sources.aggregate`).

    Moment sets over disjoint rows add up: ``abkit.moments(day1, m) + abkit.moments(day2, m)``
    equals the moments of both days, and :func:`abkit.analyze` accepts either.
    With ``unit=`` (the randomization-unit id column) the unit-integrity check
    runs too (``.integrity``; see :mod:`abkit.integrity`). The moments hold the
    co-moments of the column pairs the metrics declare; ``joint`` adds column
    sets whose full covariance is needed too (e.g. a joint balance test).

    Winsorized means (``Mean(..., winsorize=q)``) get their cap from this
    ``data`` first; quantile metrics have no moments and are an error.
    """
    metrics = [metrics] if isinstance(metrics, Metric) else list(metrics)
    quantiles = [m.name for m in metrics if getattr(m, "kind", None) == "quantile"]
    if quantiles:
        raise AbkitError(
            f"metric(s) {quantiles} are quantiles, which cannot be computed from moments; "
            "pass the data to abkit.analyze (or use abkit.quantile_effect)"
        )
    events = [m.name for m in metrics if getattr(m, "kind", None) == "time_to_event"]
    if events:
        raise AbkitError(
            f"metric(s) {events} are time-to-event metrics, which need event counts by time, not "
            "moments; pass the data to abkit.analyze (or use abkit.time_to_event.event_counts)"
        )
    if any(getattr(m, "needs_cap", False) for m in metrics):
        metrics = resolve_caps(data, metrics)
    return aggregate(data, metrics, variant=variant, by=by, unit=unit, joint=joint)
