"""What a power calculation needs to know about each metric, estimated from history (or A/A) data.

:func:`estimate_design` reads the data through the same sources -> moments
path as :func:`abkit.analyze` and returns, per metric, a
:class:`MetricDesign`: the baseline, the unit-level (delta-method) standard
deviation and the share of its variance CUPED / regression adjustment
removes.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from ..aggregation import check_metrics, resolve_caps
from ..errors import AbkitError, DataError, missing_column
from ..moments import MomentSet
from ..sources import aggregate, read_columns
from ..stats.two_sample import check_binary, linearize

__all__ = ["MetricDesign", "estimate_design"]

_ALL = "__abkit_all_units__"


@dataclass(frozen=True)
class MetricDesign:
    """What a power calculation needs to know about one metric, estimated from data.

    ``sd`` is the unit-level standard deviation of the (linearized) metric,
    pooled within arms: for a ratio ``Y/X`` the delta-method
    ``sqrt((s_Y^2 - 2 R s_XY + R^2 s_X^2) / mu_X^2)``. ``variance_reduction``
    is the squared correlation (R^2 for several covariates) between the
    linearized metric and its linearized covariate(s): the share of the
    variance CUPED / regression adjustment removes.
    """

    metric: str
    kind: str
    better: str
    baseline: float
    sd: float
    variance_reduction: float
    n_units: int
    covariates: tuple[str, ...]

    @property
    def sd_adjusted(self) -> float:
        return self.sd * float(np.sqrt(1.0 - self.variance_reduction))


def _one_group(data, columns: Sequence[str]):
    """The metric columns of ``data`` plus a constant arm column (no variant: one population)."""
    columns = list(dict.fromkeys(columns))
    if isinstance(data, pd.DataFrame):
        have = [str(c) for c in data.columns]
        for c in columns:
            if c not in have:
                raise missing_column(c, have)
        frame = pd.DataFrame({c: data[c] for c in columns})
    elif isinstance(data, (pa.Table, pa.RecordBatch)):
        have = list(data.schema.names)
        for c in columns:
            if c not in have:
                raise missing_column(c, have)
        table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
        table = table.select(columns)
        const = pa.DictionaryArray.from_arrays(pa.array(np.zeros(table.num_rows, dtype=np.int32)), pa.array(["all"]))
        return table.append_column(_ALL, const)
    else:
        frame = read_columns(data, columns)
    frame[_ALL] = pd.Categorical.from_codes(np.zeros(len(frame), dtype=np.int8), categories=["all"])
    return frame


def estimate_design(
    data, metric, variant: str | None = None, control: Hashable = "control", cuped: bool = True
) -> list[MetricDesign]:
    """Baseline, unit-level sd and CUPED variance reduction of each metric, from data.

    ``data`` is anything :func:`abkit.analyze` reads (DataFrame, pyarrow
    Table, parquet/CSV path) or a :class:`abkit.MomentSet`. Without
    ``variant`` every row is one population (historical data); with it
    (A/A or past A/B data) covariances are pooled within arms and the
    baseline is the ``control`` arm's value (all arms pooled if there is no
    such arm).
    """
    metrics = check_metrics(metric)
    quantiles = [m.name for m in metrics if m.kind == "quantile"]
    if quantiles:
        raise AbkitError(
            f"metric(s) {quantiles} are quantiles, which have no closed-form power; use "
            "abkit.power.simulate_power (resampling the history)"
        )
    events = [m.name for m in metrics if m.kind == "time_to_event"]
    if events:  # issue 17: their moments would be the event indicator's, not the restricted mean's
        raise AbkitError(
            f"metric(s) {events} are times to event; plan them with abkit.power.simulate_power on "
            "their pseudo-observations: a Mean of abkit.time_to_event.pseudo_observations(history, "
            "metric), with relative=False"
        )
    if not isinstance(data, MomentSet) and any(getattr(m, "needs_cap", False) for m in metrics):
        metrics = resolve_caps(data, metrics)  # winsorizing caps from this history, as analyze does
    if isinstance(data, MomentSet):
        ms = data
        if ms.by:
            raise AbkitError("these moments are split by segment; plan one segment with moments.segment(value)")
    elif variant is None:
        columns = [c for m in metrics for c in m.source_columns]
        ms = aggregate(_one_group(data, columns), metrics, variant=_ALL)
    else:
        ms = aggregate(data, metrics, variant=variant)
    out = []
    for m in metrics:
        block = ms.block_for(m.columns, m.dropna)
        if m.kind == "proportion":
            check_binary(block, m.target.numerator, m.name)
        statistics = (m.target, *m.covariates)
        groups = [g for g, n in zip(block.groups, block.n) if n >= 2]
        if not groups:
            raise DataError(f"metric '{m.name}': fewer than 2 units with data; cannot estimate a variance")
        S = np.zeros((len(statistics), len(statistics)))
        dof = 0.0
        for g in groups:
            _, V, n = linearize(block, g, statistics)
            S += (n - 1.0) * V * n  # V * n = unit-level covariance of the linearized statistics
            dof += n - 1.0
        S /= dof
        if control in groups and len(groups) > 1:
            values, _, _ = linearize(block, control, statistics)
        else:
            values, _, _ = linearize(block.pooled(groups), "pooled", statistics)
        var = float(S[0, 0])
        if not (var > 0 and np.isfinite(var)):
            raise DataError(
                f"metric '{m.name}' has no variance in the data (sd = {np.sqrt(max(var, 0)):.3g}); "
                "a power calculation needs a varying metric"
            )
        vr = 0.0
        if cuped and m.covariates:
            sxx, sxy = S[1:, 1:], S[1:, 0]
            vr = float(sxy @ np.linalg.pinv(sxx, rcond=1e-12, hermitian=True) @ sxy / var)
            vr = min(max(vr, 0.0), 1.0 - 1e-12)
        out.append(
            MetricDesign(
                metric=m.name,
                kind=m.kind,
                better=m.better,
                baseline=float(values[0]),
                sd=float(np.sqrt(var)),
                variance_reduction=vr,
                n_units=int(sum(block.n[block.group_index(g)] for g in groups)),
                covariates=tuple(str(c) for c in m.covariates) if cuped else (),
            )
        )
    return out
