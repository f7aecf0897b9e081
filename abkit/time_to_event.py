"""Time-to-event metrics with censoring: counts by arm and time, where the data lies, then the effects.

:class:`abkit.TimeToEvent` keeps every unit: one whose event (a refund, a
resolved contact) has not happened by the end of its observation is
censored there. Kaplan-Meier, restricted means and their variances need only
**event and removal counts by arm and time** (:class:`abkit.stats.survival.EventTable`),
so this module aggregates those and nothing else:

* in memory (pandas, pyarrow) with numpy: exact times, or times rounded up
  to the metric's ``resolution`` when it has one (then identical to the
  engines to the last digit);
* pushed down (parquet/CSV paths through DuckDB, DuckDB relations, Spark,
  Polars) with one narwhals ``group_by(arm, time bin, event)`` query: times
  are rounded up to ``resolution`` inside the engine (``ceil(T / r - 1e-9)``
  bins, the same IEEE arithmetic as numpy) and only the counts per arm x bin
  x event come back; without a resolution, one group per distinct time.

Durations are truncated at the horizon (a unit followed beyond it counts as
censored there), which leaves the curve on ``[0, horizon]`` unchanged and
bounds the number of bins by ``horizon / resolution``. CUPED needs, besides
the counts, only per-bin sums of the (shifted) covariates and their
co-moments per arm, computed in the same query: :func:`abkit.stats.survival.pseudo_moments`
turns them into the exact moments of the pseudo-observation column, and
:func:`abkit.stats.two_sample.compare` (CUPED, Lin, Welch, Fieller, always-valid)
runs on them unchanged. Rows that are events of randomized units
(``unit=``) are clustered: their influence is summed per unit, in memory
(an engine returns just the needed columns for that).

Counts of disjoint sets of units (partitions, files, enrolment cohorts read
at the same time) add up: ``event_counts(part1, m) + event_counts(part2, m)``.

Entry points: :func:`event_counts` (the aggregation), :func:`event_rows`
(what :func:`abkit.analyze` reports for the metric),
:func:`analyze_time_to_event` (every effect, the curves, a plot and a
sentence), :func:`pseudo_observations` (the per-unit column).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import AbkitError, DataError, missing_column
from .metrics import Mean, TimeToEvent
from .moments import Moments
from .stats import survival as sv
from .stats.checks import normalise_allocation, srm_test
from .stats.distributions import norm_isf
from .stats.two_sample import compare

__all__ = [
    "EventCounts",
    "ArmEvents",
    "GroupedEventCounts",
    "event_counts",
    "event_counts_by",
    "estimability",
    "event_rows",
    "analyze_time_to_event",
    "TimeToEventResult",
    "pseudo_observations",
    "effect_sentence",
    "share_sentence",
]

_EPS_BINS = 1e-9  # a time within 1e-9 bins above a bin edge counts on the edge (float division noise)


# --------------------------------------------------------------------------- counts
@dataclass(frozen=True, eq=False)
class ArmEvents:
    """One arm's counts: the event table (truncated at the horizon) and the covariate pieces CUPED needs.

    ``event_sums[k]`` / ``removed_sums[k]`` are sums of ``x - shift`` over the
    units with an event / all units leaving at ``table.time[k]``;
    ``covariate_mean`` and ``covariate_comoment`` the arm's covariate mean
    and centred co-moments. ``rows`` counts every row of the arm, ``dropped``
    those dropped for missing values (``dropna=True``), ``units`` the
    randomization units analysed (rows, or distinct ``unit`` values).
    ``clusters`` holds, for clustered metrics only, the arm's rows:
    ``(durations, events, unit codes, covariates)``.
    """

    table: sv.EventTable
    rows: int
    dropped: int
    units: int
    covariate_mean: np.ndarray
    covariate_comoment: np.ndarray
    event_sums: np.ndarray
    removed_sums: np.ndarray
    clusters: tuple | None = None


@dataclass(frozen=True, eq=False)
class EventCounts:
    """Counts of one :class:`abkit.TimeToEvent` metric per arm (see :func:`event_counts`)."""

    metric: TimeToEvent
    variant: str
    arms: dict
    shift: np.ndarray
    missing_variant: int = 0
    integrity: object = None
    engine: str = "memory"

    @property
    def covariates(self) -> tuple[str, ...]:
        return tuple(c.numerator for c in self.metric.covariates)

    def merge(self, other: EventCounts) -> EventCounts:
        """The counts of the union of two **disjoint** sets of units (partitions, files, enrolment cohorts).

        Both must come from the same metric and be read at the same data
        end: two reads of the same units at different times do not add up
        (a unit censored in the first may have its event in the second).
        Covariate sums are re-centred on one shift and co-moments merged
        with Chan, Golub and LeVeque's update. Clustered counts (``unit=``)
        keep rows, whose units could straddle the parts, and do not merge.
        """
        if other.metric != self.metric or other.variant != self.variant:
            raise AbkitError(
                "cannot merge event counts of different metrics or variant columns; count both parts "
                "with the same TimeToEvent metric"
            )
        if any(e.clusters is not None for c in (self, other) for e in c.arms.values()):
            raise AbkitError(
                f"metric '{self.metric.name}' is clustered by '{self.metric.unit}': a unit's rows may "
                "sit in both parts, so counts do not add up; count the combined data"
            )
        shift = self.shift
        arms = dict(self.arms)
        for label, b in other.arms.items():
            b = _reshift(b, other.shift, shift)
            a = arms.get(label)
            arms[label] = b if a is None else _merge_arm(_reshift(a, self.shift, shift), b)
        return EventCounts(
            self.metric,
            self.variant,
            arms,
            shift,
            self.missing_variant + other.missing_variant,
            None,
            self.engine if self.engine == other.engine else "merged",
        )

    __add__ = merge

    def __repr__(self) -> str:
        parts = ", ".join(f"{a!r}: {e.table!r}" for a, e in self.arms.items())
        return f"EventCounts({self.metric.name!r}, {self.engine}: {parts})"


def _reshift(e: ArmEvents, old: np.ndarray, new: np.ndarray) -> ArmEvents:
    """The same counts with covariate sums relative to the shift ``new`` instead of ``old``."""
    delta = np.asarray(old, dtype=np.float64) - np.asarray(new, dtype=np.float64)
    if not delta.size or not np.any(delta):
        return e
    return ArmEvents(
        e.table,
        e.rows,
        e.dropped,
        e.units,
        e.covariate_mean,
        e.covariate_comoment,
        e.event_sums + np.outer(e.table.events, delta),
        e.removed_sums + np.outer(e.table.removed, delta),
    )


def _merge_arm(a: ArmEvents, b: ArmEvents) -> ArmEvents:
    """Two disjoint parts of one arm (same covariate shift)."""
    table = a.table + b.table
    p = a.covariate_mean.size
    Sd, Sm = np.zeros((table.time.size, p)), np.zeros((table.time.size, p))
    for part in (a, b):
        pos = np.searchsorted(table.time, part.table.time)
        np.add.at(Sd, pos, part.event_sums)
        np.add.at(Sm, pos, part.removed_sums)
    na, nb = float(a.table.n), float(b.table.n)
    n = na + nb
    d = b.covariate_mean - a.covariate_mean
    mean = a.covariate_mean + d * (nb / n if n else 0.0)
    com = a.covariate_comoment + b.covariate_comoment + (na * nb / n if n else 0.0) * np.outer(d, d)
    return ArmEvents(table, a.rows + b.rows, a.dropped + b.dropped, a.units + b.units, mean, com, Sd, Sm)


def _grid_index(T: np.ndarray, resolution: float | None) -> np.ndarray:
    """Bin index ``ceil(T / r - 1e-9)`` (what the engines compute), or the times themselves."""
    return T if resolution is None else np.ceil(T / resolution - _EPS_BINS)


def _truncate(key: np.ndarray, E: np.ndarray, metric: TimeToEvent) -> tuple[np.ndarray, np.ndarray]:
    """Times beyond the horizon become censorings at the horizon (bins: compared as bin numbers)."""
    limit = metric.horizon if metric.resolution is None else round(metric.horizon / metric.resolution)
    over = key > limit
    if over.any():
        key = np.where(over, limit, key)
        E = np.where(over, 0.0, E)
    return key, E


def _times(key: np.ndarray, metric: TimeToEvent) -> np.ndarray:
    return key if metric.resolution is None else key * metric.resolution


def _grid_time(metric: TimeToEvent, t: float, what: str = "time") -> float:
    """``t`` as the grid writes it: ``k * resolution`` (the same float product as the bins), so a time on the
    grid compares equal to its bin; a time off the grid is refused (its share would mix two bins)."""
    r = metric.resolution
    if r is None:
        return float(t)
    k = round(t / r)
    if abs(t / r - k) > 1e-9 * max(1.0, abs(k)):
        raise AbkitError(
            f"metric '{metric.name}': {what} {t:g} is not a multiple of its resolution {r:g} "
            f"{metric.time_unit}; ask for a time on the bins"
        )
    return float(np.float64(k) * r)


def _check_values(metric: TimeToEvent, T, E, X, arm_ok) -> np.ndarray:
    """Validity mask of rows with an arm; raises on bad values (named), or drops missing ones with dropna."""
    names = [metric.duration, metric.event, *(c.numerator for c in metric.covariates)]
    missing = [~np.isfinite(v) for v in (T, E, *X)]
    for name, miss in zip(names, missing):
        if arm_ok.any() and miss[arm_ok].all():
            raise DataError(
                f"column '{name}' is entirely missing for metric '{metric.name}' ({int(arm_ok.sum()):,} "
                "rows, all null/NaN); check how it was produced"
            )
        if miss[arm_ok].any() and not metric.dropna:
            raise DataError(
                f"column '{name}' has {int(miss[arm_ok].sum()):,} missing or infinite values (metric "
                f"'{metric.name}'); fill or remove them, or declare the metric with dropna=True to "
                "drop those rows (they are counted and reported)"
            )
    ok = arm_ok.copy()
    for miss in missing:
        ok &= ~miss
    _check_ranges(metric, T[ok], E[ok])
    return ok


def _check_ranges(metric: TimeToEvent, T: np.ndarray, E: np.ndarray) -> None:
    if T.size and T.min() < 0:
        raise DataError(
            f"column '{metric.duration}' has {int((T < 0).sum()):,} negative durations (smallest "
            f"{T.min():g}) for metric '{metric.name}'; a time to event is >= 0: check the start and "
            "end timestamps (an event before the start?)"
        )
    bad = (E != 0) & (E != 1)
    if bad.any():
        raise DataError(
            f"column '{metric.event}' must be 0 (censored) or 1 (event) for metric '{metric.name}'; "
            f"{int(bad.sum()):,} rows hold other values (e.g. {E[bad][0]:g})"
        )


def _arm_events(metric, T, E, X, shift, rows, dropped, units, clusters=None) -> ArmEvents:
    """One arm's :class:`ArmEvents` from its valid rows (times already on the grid and truncated)."""
    grid, inv = np.unique(T, return_inverse=True)
    K, p = grid.size, len(X)
    table = sv.EventTable(
        grid, np.bincount(inv, weights=E, minlength=K), np.bincount(inv, minlength=K).astype(np.float64)
    )
    mean, com = np.zeros(p), np.zeros((p, p))
    Sd, Sm = np.zeros((K, p)), np.zeros((K, p))
    if p and T.size:
        M = np.column_stack(X) - shift
        for j in range(p):
            Sd[:, j] = np.bincount(inv, weights=E * M[:, j], minlength=K)
            Sm[:, j] = np.bincount(inv, weights=M[:, j], minlength=K)
        centre = M.mean(axis=0)
        C = M - centre
        mean, com = shift + centre, C.T @ C
    return ArmEvents(table, int(rows), int(dropped), int(units), mean, com, Sd, Sm, clusters)


def _memory_columns(data, metric: TimeToEvent, variant: str, extra: Sequence[str] = ()) -> dict:
    """The metric's arrays of an in-memory batch: arm codes and labels, T, E, covariates (derived evaluated)."""
    from .sources import _derived, _key_codes, _to_float

    have = [str(c) for c in (data.columns if isinstance(data, pd.DataFrame) else data.schema.names)]
    for c in [variant, *metric.source_columns, *extra]:
        if c not in have:
            raise missing_column(c, have)
    made = {d.name: d for d in metric.derived}

    def values(c):
        return _derived(data, made[c]) if c in made else _to_float(data, c)

    codes, labels = _key_codes(data, variant)
    return {
        "codes": np.asarray(codes, dtype=np.int64),
        "labels": labels,
        "T": values(metric.duration),
        "E": values(metric.event),
        "X": [values(c.numerator) for c in metric.covariates],
    }


def _unit_codes(metric: TimeToEvent, unit_values, codes: np.ndarray, arm_ok: np.ndarray, by=None) -> np.ndarray:
    """Codes of the unit column (clustered metrics); a unit in several arms (or ``by`` values) is refused."""
    unit_codes, uniq = pd.factorize(pd.Series(unit_values), sort=False)
    if (unit_codes[arm_ok] < 0).any():
        raise DataError(
            f"column '{metric.unit}' (the unit of metric '{metric.name}') has missing values; "
            "every row needs its randomization unit"
        )
    checks = [(codes, "arms", f"randomization must be by '{metric.unit}': check unit= and the variant column")]
    if by is not None:
        keys, column = by
        checks.append((keys, f"values of {column}", f"a segment must be a property of the unit '{metric.unit}'"))
    for key, where, fix in checks:
        pairs = pd.DataFrame({"u": unit_codes[arm_ok], "a": key[arm_ok]}).drop_duplicates()
        twice = pairs["u"].duplicated(keep=False)
        if twice.any():
            example = uniq[pairs.loc[twice, "u"].iloc[0]]
            raise DataError(f"unit {example!r} of column '{metric.unit}' appears in several {where}; {fix}")
    return np.asarray(unit_codes, dtype=np.int64)


def _counts_from_arrays(
    metric, variant, codes, labels, T, E, X, unit_values=None, engine="memory", integrity=None
) -> EventCounts:
    arm_ok = codes >= 0
    missing_variant = int((~arm_ok).sum())
    if not arm_ok.any():
        raise DataError(f"the data has no rows with a value in '{variant}'; check the data and the variant column")
    ok = _check_values(metric, T, E, X, arm_ok)
    key, E2 = _truncate(_grid_index(T, metric.resolution), E, metric)
    times = _times(key, metric)
    p = len(X)
    shift = np.array([float(np.mean(x[ok])) if ok.any() else 0.0 for x in X]) if p else np.zeros(0)
    unit_codes = None if unit_values is None else _unit_codes(metric, unit_values, codes, arm_ok)
    arms = {}
    counts = np.bincount(codes[arm_ok], minlength=len(labels))
    for g, label in enumerate(labels):
        if counts[g] == 0:
            continue
        in_arm = codes == g
        sel = in_arm & ok
        Xg = [x[sel] for x in X]
        clusters, units = None, int(sel.sum())
        if unit_codes is not None:
            local, n_units = pd.factorize(unit_codes[sel], sort=False)
            units = len(n_units)
            clusters = (times[sel], E2[sel], np.asarray(local, dtype=np.int64), Xg)
        arms[label] = _arm_events(
            metric, times[sel], E2[sel], Xg, shift, counts[g], int((in_arm & ~ok).sum()), units, clusters
        )
    return EventCounts(metric, variant, arms, shift, missing_variant, integrity, engine)


def event_counts(data, metric: TimeToEvent, variant: str = "variant", *, check_unit: str | None = None) -> EventCounts:
    """Event and removal counts per arm (and time) of one :class:`abkit.TimeToEvent` metric.

    ``data``: a pandas DataFrame or pyarrow Table (numpy, in memory), or a
    parquet/CSV path, DuckDB relation, Spark or Polars frame (one aggregation
    query in the engine; see the module doc). ``check_unit`` runs the
    unit-integrity check (:mod:`abkit.integrity`) on that id column.
    Rows with a missing variant are counted (``missing_variant``); missing
    durations, events or covariates are an error unless the metric says
    ``dropna=True`` (then dropped and counted per arm); negative durations and
    events other than 0/1 are errors naming the column.
    """
    if not isinstance(metric, TimeToEvent):
        raise AbkitError(f"{metric!r} is not a TimeToEvent metric")
    if isinstance(data, (pd.DataFrame, pa.Table, pa.RecordBatch)):
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        extra = [c for c in (metric.unit, check_unit) if c]
        cols = _memory_columns(data, metric, variant, extra)
        if len(cols["codes"]) == 0:
            raise DataError("the data has no rows (an empty table); check the query or file that produced it")
        integrity = None
        if check_unit is not None:
            from .integrity import check_frame

            integrity = check_frame(data, check_unit, cols["codes"], [check_unit, variant, *metric.source_columns])
        units = None
        if metric.unit:
            s = data[metric.unit] if isinstance(data, pd.DataFrame) else data.column(metric.unit).to_pandas()
            units = s.to_numpy()
        return _counts_from_arrays(
            metric, variant, cols["codes"], cols["labels"], cols["T"], cols["E"], cols["X"], units, "memory", integrity
        )
    from .engines import is_lazy

    if not is_lazy(data):
        raise DataError(
            f"cannot read data of type {type(data).__name__}; pass a pandas DataFrame, a pyarrow Table, "
            "a path to a parquet/CSV file, or a DuckDB relation / Spark DataFrame"
        )
    return _lazy_counts(data, metric, variant, check_unit)


@dataclass(frozen=True, eq=False)
class GroupedEventCounts:
    """:class:`EventCounts` of one metric per value of key column(s) ``by`` (see :func:`event_counts_by`).

    ``counts`` maps each value (a tuple for several columns) to its counts;
    ``missing`` counts rows with an arm but no value in ``by`` (left out).
    """

    metric: TimeToEvent
    by: tuple[str, ...]
    counts: dict
    missing: int = 0
    missing_variant: int = 0


def event_counts_by(data, metric: TimeToEvent, by: str | Sequence[str], variant: str = "variant") -> GroupedEventCounts:
    """Event counts of ``metric`` per value of ``by`` (a segment, an exposure date) and arm, in one pass.

    The same counts as :func:`event_counts` on each value's subset of the
    rows (same validation, truncation and bins), computed together: the rows
    are keyed by (value, arm, time) once, ``np.unique`` on that key gives
    every cell, and one ``bincount`` per quantity gives the events, removals
    and covariate sums of every cell; covariate means and centred co-moments
    come from per-group bincounts (two passes, as in memory). Each value's
    :class:`EventCounts` then holds the cells of its groups (contiguous after
    the sort). Values' counts are of disjoint sets of units, so they add up
    (``+``) to the counts of their union, e.g. the units exposed up to a date.
    Covariate sums are relative to one shift (the mean over all rows), so a
    value's effects equal those of ``event_counts`` on its subset to rounding.

    Data in an engine (a path, DuckDB, Spark) is read for the needed columns
    only (the variant, ``by``, the metric's columns) and counted in memory.
    Clustered metrics (``unit=``): a unit must have one value of ``by``.
    """
    if not isinstance(metric, TimeToEvent):
        raise AbkitError(f"{metric!r} is not a TimeToEvent metric")
    by = (by,) if isinstance(by, str) else tuple(by)
    if not by:
        raise AbkitError("by= needs a key column, e.g. by='market'")
    need = [variant, *by, *metric.source_columns, *([metric.unit] if metric.unit else [])]
    if not isinstance(data, (pd.DataFrame, pa.Table, pa.RecordBatch)):
        from .engines import is_lazy

        if not is_lazy(data):
            raise DataError(
                f"cannot read data of type {type(data).__name__}; pass a pandas DataFrame, a pyarrow Table, "
                "a path to a parquet/CSV file, or a DuckDB relation / Spark DataFrame"
            )
        from .sources import read_columns

        data = read_columns(data, list(dict.fromkeys(need)))
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    from .sources import _group_codes

    cols = _memory_columns(data, metric, variant, [*by, *([metric.unit] if metric.unit else [])])
    codes, labels, T, E, X = cols["codes"], cols["labels"], cols["T"], cols["E"], cols["X"]
    if len(codes) == 0:
        raise DataError("the data has no rows (an empty table); check the query or file that produced it")
    arm_ok = codes >= 0
    if not arm_ok.any():
        raise DataError(f"the data has no rows with a value in '{variant}'; check the data and the variant column")
    keys, key_labels = _group_codes(data, list(by))
    ok = _check_values(metric, T, E, X, arm_ok)
    bins, E2 = _truncate(_grid_index(T, metric.resolution), E, metric)
    times = _times(bins, metric)
    p = len(X)
    shift = np.array([float(np.mean(x[ok])) if ok.any() else 0.0 for x in X]) if p else np.zeros(0)
    unit_codes = None
    if metric.unit:
        s = data[metric.unit] if isinstance(data, pd.DataFrame) else data.column(metric.unit).to_pandas()
        unit_codes = _unit_codes(metric, s.to_numpy(), codes, arm_ok & (keys >= 0), (keys, "/".join(by)))
    A, V = len(labels), len(key_labels)
    G = A * V
    keyed = arm_ok & (keys >= 0)
    group = np.where(keyed, keys * A + codes, -1)
    rows = np.bincount(group[keyed], minlength=G)
    use = keyed & ok
    g, t, e = group[use], times[use], E2[use]
    n = np.bincount(g, minlength=G)
    # one key per (group, time): the cells, sorted by group then time
    grid, at = np.unique(t, return_inverse=True)
    cells, inv = np.unique(g * max(grid.size, 1) + at, return_inverse=True)
    cell_group, cell_time = cells // max(grid.size, 1), grid[cells % max(grid.size, 1)]
    d = np.bincount(inv, weights=e, minlength=cells.size)
    m = np.bincount(inv, minlength=cells.size).astype(np.float64)
    bounds = np.searchsorted(cell_group, np.arange(G + 1))
    Sd, Sm = np.zeros((cells.size, p)), np.zeros((cells.size, p))
    mean, com = np.zeros((G, p)), np.zeros((G, p, p))
    if p:
        M = np.column_stack([x[use] for x in X]) - shift
        safe_n = np.where(n > 0, n, 1)
        centre = np.column_stack([np.bincount(g, weights=M[:, j], minlength=G) / safe_n for j in range(p)])
        C = M - centre[g]
        for j in range(p):
            Sd[:, j] = np.bincount(inv, weights=e * M[:, j], minlength=cells.size)
            Sm[:, j] = np.bincount(inv, weights=M[:, j], minlength=cells.size)
            for k in range(j, p):
                com[:, j, k] = com[:, k, j] = np.bincount(g, weights=C[:, j] * C[:, k], minlength=G)
        mean = shift + centre
    slices = None
    if unit_codes is not None:  # clustered: each group's rows, once sorted by group
        order = np.argsort(g, kind="stable")
        row_bounds = np.searchsorted(g[order], np.arange(G + 1))
        slices = (order, row_bounds, unit_codes[use])
        X_used = [x[use] for x in X]
    counts = {}
    for v, value in enumerate(key_labels):
        arms = {}
        for a, label in enumerate(labels):
            gi = v * A + a
            if rows[gi] == 0:
                continue
            lo, hi = bounds[gi], bounds[gi + 1]
            units, clusters = int(n[gi]), None
            if slices is not None:
                order, row_bounds, units_used = slices
                idx = order[row_bounds[gi] : row_bounds[gi + 1]]
                local, uniq = pd.factorize(units_used[idx], sort=False)
                units = len(uniq)
                clusters = (t[idx], e[idx], np.asarray(local, dtype=np.int64), [x[idx] for x in X_used])
            arms[label] = ArmEvents(
                sv.EventTable(cell_time[lo:hi], d[lo:hi], m[lo:hi]),
                int(rows[gi]),
                int(rows[gi] - n[gi]),
                units,
                mean[gi],
                com[gi],
                Sd[lo:hi],
                Sm[lo:hi],
                clusters,
            )
        if arms:
            counts[value] = EventCounts(metric, variant, arms, shift, 0, None, "memory")
    return GroupedEventCounts(metric, by, counts, int((arm_ok & (keys < 0)).sum()), int((~arm_ok).sum()))


def _lazy_counts(data, metric: TimeToEvent, variant: str, check_unit: str | None) -> EventCounts:
    """The push-down path: a validation query per arm, then one group-by (arm, time bin, event) query."""
    import narwhals as nw

    from .engines import _collect, _reading, _shifts, to_lazy

    what = f"'{data}'" if isinstance(data, (str, os.PathLike)) else "data"
    lf = to_lazy(data)
    names = list(lf.collect_schema().names())
    for c in [variant, *metric.source_columns, *(c for c in (metric.unit, check_unit) if c)]:
        if c not in names:
            raise missing_column(c, names, what=what)
    integrity = None
    if check_unit is not None:
        from .integrity import check_lazy

        with _reading(data):
            integrity = check_lazy(lf, check_unit, variant, list(metric.source_columns))
    made = {d.name: d for d in metric.derived}

    def expr(c):
        return (made[c].expr if c in made else nw.col(c)).cast(nw.Float64)

    covs = [c.numerator for c in metric.covariates]
    safe = {c: f"__x{j}" for j, c in enumerate(covs)}
    base = lf.select(
        nw.col(variant).alias("__arm"),
        expr(metric.duration).alias("__dur"),
        expr(metric.event).alias("__event"),
        *(expr(c).alias(safe[c]) for c in covs),
        *([nw.col(metric.unit).alias("__unit")] if metric.unit else []),
    )
    engine = type(data).__module__.split(".")[0] if not isinstance(data, (str, os.PathLike)) else "duckdb"
    if metric.unit:
        # clustered rows: the unit's influence is a sum over its rows, so the rows come back (only these columns)
        with _reading(data):
            frame = _collect(base, data).to_pandas()
        codes, labels = pd.factorize(frame["__arm"], sort=False)
        return _counts_from_arrays(
            metric,
            variant,
            np.asarray(codes, dtype=np.int64),
            [_plain(v) for v in labels],
            frame["__dur"].to_numpy(np.float64, na_value=np.nan),
            frame["__event"].to_numpy(np.float64, na_value=np.nan),
            [frame[safe[c]].to_numpy(np.float64, na_value=np.nan) for c in covs],
            frame["__unit"].to_numpy(),
            engine,
            integrity,
        )

    def valid(c):
        return ~nw.col(c).is_null() & nw.col(c).is_finite()

    value_cols = ["__dur", "__event", *safe.values()]
    complete = valid("__dur")
    for c in value_cols[1:]:
        complete = complete & valid(c)
    checks = [nw.len().alias("rows"), complete.cast(nw.Float64).sum().alias("complete")]
    for j, c in enumerate(value_cols):
        checks.append((~valid(c)).cast(nw.Float64).sum().alias(f"missing{j}"))
    checks += [
        nw.when(complete).then(nw.col("__dur")).otherwise(None).min().alias("tmin"),
        (complete & (nw.col("__dur") < 0)).cast(nw.Float64).sum().alias("negative"),
        (complete & (nw.col("__event") != 0) & (nw.col("__event") != 1)).cast(nw.Float64).sum().alias("bad_event"),
    ]
    with _reading(data):
        summary = _collect(base.group_by("__arm").agg(*checks), data).to_arrow().to_pydict()
    labels_all = summary["__arm"]
    if not labels_all:
        raise DataError("the data has no rows (an empty table); check the query or file that produced it")
    missing_variant = int(sum(r for a, r in zip(labels_all, summary["rows"]) if a is None))
    arm_rows = {_plain(a): int(r) for a, r in zip(labels_all, summary["rows"]) if a is not None}
    if not arm_rows:
        raise DataError(f"the data has no rows with a value in '{variant}'; check the data and the variant column")
    with_arm = [i for i, a in enumerate(labels_all) if a is not None]
    col_names = [metric.duration, metric.event, *covs]
    total = sum(arm_rows.values())
    for j, name in enumerate(col_names):
        miss = int(sum(summary[f"missing{j}"][i] or 0 for i in with_arm))
        if miss == total:
            raise DataError(
                f"column '{name}' is entirely missing for metric '{metric.name}' ({total:,} rows, all "
                "null/NaN); check how it was produced"
            )
        if miss and not metric.dropna:
            raise DataError(
                f"column '{name}' has {miss:,} missing or infinite values (metric '{metric.name}'); fill "
                "or remove them, or declare the metric with dropna=True to drop those rows (they are "
                "counted and reported)"
            )
    negative = int(sum(summary["negative"][i] or 0 for i in with_arm))
    if negative:
        smallest = min(summary["tmin"][i] for i in with_arm if summary["tmin"][i] is not None)
        _check_ranges(metric, np.array([smallest]), np.zeros(1))
    bad = int(sum(summary["bad_event"][i] or 0 for i in with_arm))
    if bad:
        raise DataError(
            f"column '{metric.event}' must be 0 (censored) or 1 (event) for metric '{metric.name}'; "
            f"{bad:,} rows hold other values"
        )
    dropped = {
        _plain(labels_all[i]): arm_rows[_plain(labels_all[i])] - int(summary["complete"][i] or 0) for i in with_arm
    }

    rows = base.filter(complete & ~nw.col("__arm").is_null())
    with _reading(data):
        shift = _shifts(rows, list(safe.values())) if covs else {}
    K = np.array([shift[safe[c]] for c in covs])
    T = nw.col("__dur")
    key = T if metric.resolution is None else (T / metric.resolution - _EPS_BINS).ceil()
    limit = metric.horizon if metric.resolution is None else float(round(metric.horizon / metric.resolution))
    over = key > limit
    rows = rows.with_columns(
        nw.when(over).then(nw.lit(limit)).otherwise(key).alias("__bin"),
        nw.when(over).then(nw.lit(0.0)).otherwise(nw.col("__event")).alias("__status"),
    )
    centred = [nw.col(safe[c]) - nw.lit(float(k)) for c, k in zip(covs, K)]
    aggs = [nw.len().alias("__n")]
    for i, x in enumerate(centred):
        aggs.append(x.sum().alias(f"__s{i}"))
        for j in range(i, len(centred)):
            aggs.append((x * centred[j]).sum().alias(f"__p{i}_{j}"))
    with _reading(data):
        out = _collect(rows.group_by("__arm", "__bin", "__status").agg(*aggs), data).to_arrow().to_pydict()
    return _assemble(metric, variant, out, covs, K, arm_rows, dropped, missing_variant, integrity, engine)


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def _assemble(metric, variant, out, covs, K, arm_rows, dropped, missing_variant, integrity, engine) -> EventCounts:
    """:class:`EventCounts` from the engine's rows (arm, bin, event) -> count and covariate sums."""
    p = len(covs)
    arm = np.array([_plain(a) for a in out["__arm"]], dtype=object)
    key = np.array(out["__bin"], dtype=np.float64)
    E = np.array(out["__status"], dtype=np.float64)
    n = np.array(out["__n"], dtype=np.float64)
    S = np.array([out[f"__s{i}"] for i in range(p)], dtype=np.float64).T.reshape(len(n), p)
    P = np.zeros((len(n), p, p))
    for i in range(p):
        for j in range(i, p):
            P[:, i, j] = P[:, j, i] = np.array(out[f"__p{i}_{j}"], dtype=np.float64)
    arms = {}
    for label in sorted(arm_rows, key=str):
        sel = arm == label
        if not sel.any():
            arms[label] = ArmEvents(
                sv.EventTable(np.zeros(0), np.zeros(0), np.zeros(0)),
                arm_rows[label],
                dropped[label],
                0,
                np.zeros(p),
                np.zeros((p, p)),
                np.zeros((0, p)),
                np.zeros((0, p)),
            )
            continue
        times = _times(key[sel], metric)
        grid, inv = np.unique(times, return_inverse=True)
        Kn = grid.size
        ev = E[sel] == 1
        d = np.bincount(inv, weights=np.where(ev, n[sel], 0.0), minlength=Kn)
        m = np.bincount(inv, weights=n[sel], minlength=Kn)
        Sd, Sm = np.zeros((Kn, p)), np.zeros((Kn, p))
        for j in range(p):
            Sd[:, j] = np.bincount(inv, weights=np.where(ev, S[sel, j], 0.0), minlength=Kn)
            Sm[:, j] = np.bincount(inv, weights=S[sel, j], minlength=Kn)
        units = float(n[sel].sum())
        mean, com = np.zeros(p), np.zeros((p, p))
        if p:
            s_tot = S[sel].sum(axis=0)
            centre = s_tot / units
            mean = K + centre
            com = P[sel].sum(axis=0) - np.outer(s_tot, centre)
        arms[label] = ArmEvents(
            sv.EventTable(grid, d, m), arm_rows[label], dropped[label], int(units), mean, com, Sd, Sm
        )
    return EventCounts(metric, variant, arms, K, missing_variant, integrity, engine)


# --------------------------------------------------------------------------- pseudo-observations -> moments
def _functional(table: sv.EventTable, metric: TimeToEvent, share_at: float | None):
    """``(value, a)`` of the restricted mean (``share_at=None``) or of the share with the event by ``share_at``."""
    if share_at is None:
        return sv.restricted_mean_coefficients(table, _grid_time(metric, metric.horizon))
    value, a = sv.survival_coefficients(table, _grid_time(metric, share_at))
    return 1.0 - value, -a


def _check_arm(counts: EventCounts, arm, share_at) -> ArmEvents:
    m = counts.metric
    if arm not in counts.arms:
        raise DataError(
            f"arm {arm!r} not found in column '{counts.variant}' for metric '{m.name}'; arms present: "
            f"{list(counts.arms)}"
        )
    ev = counts.arms[arm]
    if ev.units < 2:
        why = f": all its {ev.dropped:,} rows have a missing value (dropna=True drops them)" if ev.dropped else ""
        raise DataError(
            f"arm {arm!r} has {ev.units} unit(s) with data for metric '{m.name}'{why}; at least 2 are needed"
        )
    table = ev.table
    S_last = sv.kaplan_meier(table).survival[-1]
    need = _grid_time(m, m.horizon if share_at is None else share_at)
    if table.last_time < need and S_last > 0:
        raise DataError(
            f"metric '{m.name}': arm {arm!r} is followed for at most {table.last_time:g} {m.time_unit}, less than the "
            f"{'horizon' if share_at is None else 'time'} {need:g} {m.time_unit}, so its curve up to there is "
            f"unknown; use a shorter horizon (at most {table.last_time:g}) or wait for the data to mature"
        )
    return ev


def pseudo_block(counts: EventCounts, arms: Sequence[Hashable], share_at: float | None = None) -> Moments:
    """Moments of ``(pseudo-observation, covariates)`` per arm: what :func:`abkit.stats.two_sample.compare` needs.

    Each arm's pseudo-observations are those of its own Kaplan-Meier curve
    (:mod:`abkit.stats.survival`), so each arm mean is the arm's restricted
    mean (or share with the event by ``share_at``). Clustered metrics sum the
    rows' influence per unit and average the covariates per unit.
    """
    metric = counts.metric
    p = len(metric.covariates)
    n, means, coms = [], [], []
    for arm in arms:
        ev = _check_arm(counts, arm, share_at)
        value, a = _functional(ev.table, metric, share_at)
        if ev.clusters is None:
            mean, C = sv.pseudo_moments(
                ev.table,
                a,
                value,
                ev.covariate_mean,
                ev.covariate_comoment,
                ev.event_sums,
                ev.removed_sums,
                counts.shift,
            )
            n.append(ev.table.n)
        else:
            T, E, codes, X = ev.clusters
            U = sv.cluster_influence(sv.influence(ev.table, a, T, E), codes, ev.units)
            rows_per_unit = np.bincount(codes, minlength=ev.units).astype(np.float64)
            cols = [sv.pseudo_observations(value, U)]
            cols += [np.bincount(codes, weights=x, minlength=ev.units) / rows_per_unit for x in X]
            M = Moments.from_arrays(
                np.zeros(ev.units, dtype=np.int64), np.column_stack(cols), ["arm"], [str(i) for i in range(1 + p)]
            )
            mean, C = M.mean[0], M.comoment[0]
            n.append(float(ev.units))
        means.append(mean)
        coms.append(C)
    columns = (_PSEUDO, *(c.numerator for c in metric.covariates))
    dropped = np.array([counts.arms[a].dropped for a in arms], dtype=np.float64)
    return Moments(
        tuple(arms),
        columns,
        np.array(n),
        np.array(means).reshape(len(arms), 1 + p),
        np.array(coms).reshape(len(arms), 1 + p, 1 + p),
        dropped,
    )


_PSEUDO = "__pseudo"


def _pseudo_metric(metric: TimeToEvent) -> Mean:
    covs = [c.numerator for c in metric.covariates]
    return Mean(_PSEUDO, covs or None, metric.name, better=metric.better, method=metric.method)


def event_rows(
    data,
    metric: TimeToEvent,
    variant: str,
    control: Hashable,
    treatments: Sequence[Hashable],
    alpha: float = 0.05,
    arms: Sequence[Hashable] | None = None,
    *,
    counts: EventCounts | None = None,
    share_at: float | None = None,
) -> list[tuple[dict, tuple]]:
    """The :func:`abkit.analyze` rows of one time-to-event metric, each with its Fieller pieces.

    ``control_value`` / ``treatment_value`` are the arms' restricted means to
    the horizon (or shares with the event by ``share_at``), ``effect`` their
    difference with CUPED / Lin when the metric has covariates; the
    inference is :func:`abkit.stats.two_sample.compare`'s on the pseudo-observation
    moments (Welch t; the variance is ``n / (n - 1)`` times Greenwood's, see
    :mod:`abkit.stats.survival`). Returns ``[(row, (Var control, Cov(effect,
    control)))]``; ``counts`` reuses an aggregation.
    """
    counts = counts if counts is not None else event_counts(data, metric, variant)
    arms = list(arms) if arms is not None else [control, *treatments]
    block = pseudo_block(counts, arms, share_at)
    target = _pseudo_metric(metric)
    name = metric.name if share_at is None else f"{metric.name}: share by {share_at:g} {metric.time_unit}"
    method = (
        metric.method_label
        if share_at is None
        else metric.method_label.replace(f"restricted mean to {metric.horizon:g}", f"share by {share_at:g}")
    )
    # a shorter time to the event means a larger share with it by any time: the good direction flips
    better = metric.better if share_at is None else {"lower": "higher", "higher": "lower"}[metric.better]
    until = _grid_time(metric, metric.horizon if share_at is None else share_at)
    out = []
    for arm in treatments:
        c = compare(block, target, control, arm, alpha, arms=arms)
        ctl, trt = counts.arms[control], counts.arms[arm]
        row = {
            "metric": name,
            "variant": arm,
            "control_value": c.control_value,
            "treatment_value": c.treatment_value,
            "effect": c.effect,
            "ci_lower": c.ci_lower,
            "ci_upper": c.ci_upper,
            "rel_effect": c.rel_effect,
            "rel_ci_lower": c.rel_ci_lower,
            "rel_ci_upper": c.rel_ci_upper,
            "p_value": c.p_value,
            "n_control": int(ctl.units),
            "n_treatment": int(trt.units),
            "method": method,
            "se": c.se,
            "rel_se": c.rel_se,
            "df": c.df,
            "variance_reduction": c.variance_reduction,
            "dropped_control": int(ctl.dropped),
            "dropped_treatment": int(trt.dropped),
            "better": better,
            "horizon": metric.horizon if share_at is None else share_at,
            "at_risk_control": _at_risk(ctl.table, until),
            "at_risk_treatment": _at_risk(trt.table, until),
        }
        out.append((row, (c.control_se**2, c.cov_effect_control)))
    return out


def _at_risk(table: sv.EventTable, t: float) -> int:
    """Units still followed (without the event) at ``t``."""
    return int(table.removed[table.time >= t].sum())


def estimability(counts: EventCounts, arm: Hashable) -> str | None:
    """Why ``arm``'s restricted mean cannot be estimated from ``counts`` (a segment, a cohort), or None.

    Not estimable: no unit or a single one in the arm; no event before the
    horizon (the curve stays at 1 and Greenwood's variance is 0: an interval
    of zero width, not an estimate); nobody still at risk at the horizon
    (the end of the curve rests on no unit, or is not observed at all).
    """
    m = counts.metric
    ev = counts.arms.get(arm)
    units = 0 if ev is None else int(ev.units)
    if ev is None or units < 2:
        return f"arm {arm!r} has {units} unit{'s' if units != 1 else ''} with data (at least 2 are needed)"
    horizon = _grid_time(m, m.horizon)
    if not float(ev.table.events.sum()) > 0:
        return f"no event in arm {arm!r} within the {horizon:g} {m.time_unit} horizon"
    if _at_risk(ev.table, horizon) == 0:
        return f"nobody in arm {arm!r} is still at risk at the {horizon:g} {m.time_unit} horizon"
    return None


def time_to_event_part(
    data,
    metrics: Sequence[TimeToEvent],
    variant: str,
    control: Hashable,
    alpha: float,
    allocation=None,
    unit: str | None = None,
) -> dict:
    """What :func:`abkit.analyze` needs when its metrics are time-to-event (and quantile) ones only.

    One aggregation per metric; the arms, the sample-ratio check (units per
    arm of the first metric), rows without a variant and the integrity check
    (``unit=``) come from them. Returns a dict with ``arms``, ``srm``,
    ``missing_variant``, ``units`` (analysed, all arms), ``integrity`` and
    ``rows`` (metric name -> :func:`event_rows` output).
    """
    counts = [event_counts(data, m, variant, check_unit=unit if i == 0 else None) for i, m in enumerate(metrics)]
    first = counts[0]
    present = list(first.arms)
    if control not in present:
        raise DataError(
            f"control arm {control!r} not found in column '{variant}'; arms present: {present}. Pass "
            "control= with one of them"
        )
    if len(present) < 2:
        raise DataError(
            f"only one arm ({present[0]!r}) in column '{variant}'; an experiment needs at least a "
            "control and a treatment"
        )
    arms = [control] + [a for a in present if a != control]
    if allocation is not None and not isinstance(allocation, Mapping):
        allocation = dict(zip(arms, normalise_allocation(arms, allocation)))
    observed = {a: (first.arms[a].rows if first.metric.unit is None else first.arms[a].units) for a in arms}
    rows = {
        m.name: event_rows(data, m, variant, control, arms[1:], alpha, arms, counts=c) for m, c in zip(metrics, counts)
    }
    return {
        "arms": arms,
        "srm": srm_test(observed, allocation),
        "missing_variant": first.missing_variant,
        "units": float(sum(observed.values())),
        "integrity": first.integrity,
        "rows": rows,
    }


# --------------------------------------------------------------------------- per-unit pseudo-observations
def pseudo_observations(
    data,
    metric: TimeToEvent,
    variant: str | None = "variant",
    *,
    share_at: float | None = None,
    name: str | None = None,
) -> pd.DataFrame:
    """Each unit's pseudo-observation: a column whose arm mean is the arm's restricted mean, exactly.

    Returns a DataFrame with the variant, the pseudo-observation (column
    ``name``, default ``"<metric> pseudo"``) and the metric's covariates: one
    row per input row with an arm and complete values (its index kept), or
    one per unit for clustered metrics (``unit=``, covariates averaged).
    ``abkit.analyze(frame, abkit.Mean(name, covariate=...))`` then gives the
    same effect, CI and p-value as ``abkit.analyze(data, metric)`` (CUPED,
    Lin, ``sequential=AlwaysValid(planned_n=...)`` included). With ``share_at`` the pseudo-values of
    the share with the event by that time. ``variant=None``: one population
    (a history to plan with: ``abkit.power.simulate_power(frame,
    abkit.Mean(name), effect=..., relative=False)``). Definition and proofs:
    :mod:`abkit.stats.survival` (infinitesimal jackknife, within arm). In
    memory (an engine's data is read for the needed columns only).
    """
    name = name or f"{metric.name} pseudo"
    one_group = variant is None
    group_columns: list[str] = [] if variant is None else [variant]
    if not isinstance(data, (pd.DataFrame, pa.Table)):
        from .sources import read_columns

        data = read_columns(data, [*group_columns, *metric.source_columns, *([metric.unit] if metric.unit else [])])
    if isinstance(data, pa.Table):
        data = data.to_pandas()
    if variant is None:
        variant = "__all"
        data = data.assign(**{variant: "all"})
    cols = _memory_columns(data, metric, variant, [metric.unit] if metric.unit else [])
    codes, labels = cols["codes"], cols["labels"]
    ok = _check_values(metric, cols["T"], cols["E"], cols["X"], codes >= 0)
    key, E = _truncate(_grid_index(cols["T"], metric.resolution), cols["E"], metric)
    T = _times(key, metric)
    covs = [c.numerator for c in metric.covariates]
    parts = []
    for g, label in enumerate(labels):
        sel = ok & (codes == g)
        if not sel.any():
            continue
        table = sv.EventTable.from_durations(T[sel], E[sel])
        value, a = _functional(table, metric, share_at)
        U = sv.influence(table, a, T[sel], E[sel])
        if metric.unit is None:
            frame = pd.DataFrame({variant: label, name: sv.pseudo_observations(value, U)}, index=data.index[sel])
            for c, x in zip(covs, cols["X"]):
                frame[c] = x[sel]
        else:
            ids = data[metric.unit].to_numpy()[sel]
            codes_u, uniq = pd.factorize(pd.Series(ids), sort=False)
            Uu = sv.cluster_influence(U, codes_u, len(uniq))
            frame = pd.DataFrame({variant: label, metric.unit: uniq, name: sv.pseudo_observations(value, Uu)})
            per = np.bincount(codes_u, minlength=len(uniq)).astype(np.float64)
            for c, x in zip(covs, cols["X"]):
                frame[c] = np.bincount(codes_u, weights=x[sel], minlength=len(uniq)) / per
        parts.append(frame)
    out = pd.concat(parts) if len(parts) > 1 else parts[0]
    if metric.unit is None:  # the input's row order
        out = out.loc[data.index[ok]] if data.index.is_unique else out.sort_index(kind="stable")
    return out.drop(columns=variant) if one_group else out


# --------------------------------------------------------------------------- words
def _decimals(lo: float, hi: float, digits: int = 2) -> int:
    from .formatting import _decimals_for

    d = _decimals_for(lo, hi, digits)
    return 1 if d is None else d


def effect_sentence(
    effect: float,
    ci_lower: float,
    ci_upper: float,
    horizon: float,
    *,
    time_unit: str = "days",
    events: str = "refunds",
    level: float = 0.95,
) -> str:
    """The restricted-mean effect in words, e.g. ``"refunds arrive 1.8 days sooner on average within the first
    30 days, 95% CI 1.2 to 2.4"``.

    ``effect`` is the difference of restricted mean times to event
    (treatment - control; negative = sooner). Numbers get the decimals that
    show the interval's width to 2 significant digits. An interval that
    spans 0 reads ``"95% CI 0.9 sooner to 0.3 later"``.
    """
    if not all(np.isfinite(x) for x in (effect, ci_lower, ci_upper)):
        return f"{events}: the effect on the mean time within the first {horizon:g} {time_unit} is not available"
    d = _decimals(ci_lower, ci_upper)

    def num(x):
        return f"{abs(x):,.{d}f}"

    head = (
        f"{events} arrive {num(effect)} {time_unit} {'sooner' if effect < 0 else 'later'} on average"
        if round(effect, d) != 0
        else f"{events} arrive at the same time on average"
    )
    head += f" within the first {horizon:g} {time_unit}"
    if ci_upper < 0 or ci_lower > 0:
        lo, hi = sorted((abs(ci_lower), abs(ci_upper)))
        ci = f"{num(lo)} to {num(hi)}"
    else:
        ci = f"{num(ci_lower)} sooner to {num(ci_upper)} later"
    return f"{head}, {level:.0%} CI {ci}"


def share_sentence(
    control: float,
    treatment: float,
    ci_lower: float,
    ci_upper: float,
    at: float,
    *,
    time_unit: str = "days",
    events: str = "refunded",
    level: float = 0.95,
) -> str:
    """The change in the share with the event by ``at`` in words, in percentage points.

    ``"the share refunded within 3 days rises from 41.0% to 45.2% (+4.2 points, 95% CI +3.1 to +5.3)"``.
    """
    effect = treatment - control
    if not all(np.isfinite(x) for x in (control, treatment, ci_lower, ci_upper)):
        return f"the share {events} within {at:g} {time_unit} is not available"
    d = _decimals(100 * ci_lower, 100 * ci_upper)
    verb = "rises" if effect > 0 else "falls" if effect < 0 else "stays"
    return (
        f"the share {events} within {at:g} {time_unit} {verb} from {100 * control:.{d}f}% to "
        f"{100 * treatment:.{d}f}% ({100 * effect:+.{d}f} points, {level:.0%} CI {100 * ci_lower:+.{d}f} to "
        f"{100 * ci_upper:+.{d}f})"
    )


# --------------------------------------------------------------------------- the result
@dataclass(frozen=True, eq=False)
class TimeToEventResult:
    """Every effect of one time-to-event metric: restricted means, shares by a time, medians, the curves.

    ``rows`` / :meth:`to_frame` are what :func:`abkit.analyze` reports (the
    restricted-mean difference on the pseudo-observation moments, with
    CUPED/Lin when the metric has covariates). The other tables are
    unadjusted Kaplan-Meier estimates: :meth:`restricted_means` (per arm, and
    the difference, the ratio and the ratio of restricted mean time lost
    with Greenwood variances and normal intervals: R survRM2's ``rmst2``),
    :meth:`share_with_event` (the share with the event by a time;
    pseudo-observation rows like :meth:`to_frame`), :meth:`medians`
    (Brookmeyer-Crowley per arm, MOVER difference), :meth:`curves` (the
    Kaplan-Meier curves with pointwise bands, one row per arm x time),
    :meth:`plot`, and :meth:`sentence` (the verdict in words).
    """

    metric: TimeToEvent
    counts: EventCounts
    arms: tuple
    control: Hashable
    alpha: float
    rows: tuple = field(default=())
    transform: str = "log-log"

    @property
    def treatments(self) -> tuple:
        return self.arms[1:]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.rows))

    def kaplan_meier(self, arm: Hashable) -> sv.KaplanMeier:
        return sv.kaplan_meier(self.counts.arms[arm].table)

    def restricted_means(self) -> pd.DataFrame:
        """Per arm restricted mean and restricted mean time lost, then each treatment's three contrasts.

        Columns ``arm, measure, estimate, se, ci_lower, ci_upper, p_value``;
        ``measure`` is ``rmst``, ``rmtl``, ``rmst difference``, ``rmst
        ratio``, ``rmtl ratio`` (unadjusted, as R survRM2 prints them).
        """
        tau, z_alpha = _grid_time(self.metric, self.metric.horizon), self.alpha
        est = {a: sv.restricted_mean(self.counts.arms[a].table, tau) for a in self.arms}
        z = norm_isf(z_alpha / 2)
        out = []
        for a in self.arms:
            e = est[a]
            out.append(
                {
                    "arm": a,
                    "measure": "rmst",
                    "estimate": e.value,
                    "se": e.se,
                    "ci_lower": e.value - z * e.se,
                    "ci_upper": e.value + z * e.se,
                    "p_value": np.nan,
                }
            )
            out.append(
                {
                    "arm": a,
                    "measure": "rmtl",
                    "estimate": tau - e.value,
                    "se": e.se,
                    "ci_lower": tau - e.value - z * e.se,
                    "ci_upper": tau - e.value + z * e.se,
                    "p_value": np.nan,
                }
            )
        c = est[self.control]
        for a in self.treatments:
            t = est[a]
            diff = sv.difference(t, c, z_alpha)
            ratio = sv.log_ratio(t, c, z_alpha)
            lost = sv.log_ratio(sv.Estimate(tau - t.value, t.variance), sv.Estimate(tau - c.value, c.variance), z_alpha)
            out.append(
                {
                    "arm": a,
                    "measure": "rmst difference",
                    "estimate": diff["effect"],
                    "se": diff["se"],
                    "ci_lower": diff["ci_lower"],
                    "ci_upper": diff["ci_upper"],
                    "p_value": diff["p_value"],
                }
            )
            for label, r in (("rmst ratio", ratio), ("rmtl ratio", lost)):
                out.append(
                    {
                        "arm": a,
                        "measure": label,
                        "estimate": r["ratio"],
                        "se": r["se_log"],
                        "ci_lower": r["ci_lower"],
                        "ci_upper": r["ci_upper"],
                        "p_value": r["p_value"],
                    }
                )
        return pd.DataFrame(out)

    def share_with_event(self, at: float) -> pd.DataFrame:
        """Share with the event by ``at`` per arm and its difference (rows as :meth:`to_frame`, CUPED if set)."""
        if not (np.isfinite(at) and 0 < at <= self.metric.horizon):
            raise AbkitError(f"at={at!r} must be in (0, horizon={self.metric.horizon:g}] {self.metric.time_unit}")
        rows = event_rows(
            None,
            self.metric,
            self.counts.variant,
            self.control,
            self.treatments,
            self.alpha,
            self.arms,
            counts=self.counts,
            share_at=float(at),
        )
        return pd.DataFrame([r for r, _ in rows])

    def medians(self, q: float = 0.5) -> pd.DataFrame:
        """Per treatment: each arm's ``q``-quantile time (median) with its Brookmeyer-Crowley interval, and the
        difference with its MOVER interval and p-value. NaN where a curve does not fall to ``1 - q`` by the
        horizon (the median is not reached)."""
        out = []
        km_c = self.kaplan_meier(self.control)
        for a in self.treatments:
            m = sv.median_difference(self.kaplan_meier(a), km_c, self.alpha, q, self.transform)
            out.append(
                {
                    "variant": a,
                    "q": q,
                    "control_value": m["control"][0],
                    "control_ci_lower": m["control"][1],
                    "control_ci_upper": m["control"][2],
                    "treatment_value": m["treatment"][0],
                    "treatment_ci_lower": m["treatment"][1],
                    "treatment_ci_upper": m["treatment"][2],
                    "effect": m["effect"],
                    "ci_lower": m["ci_lower"],
                    "ci_upper": m["ci_upper"],
                    "p_value": m["p_value"],
                }
            )
        return pd.DataFrame(out)

    def curves(self, alpha: float | None = None, transform: str | None = None) -> pd.DataFrame:
        """Kaplan-Meier curves by arm, one row per arm x time (starting at 0), with pointwise bands.

        Columns ``arm, time, survival, ci_lower, ci_upper, share_with_event,
        share_ci_lower, share_ci_upper, at_risk, events, censored``; ``at_risk``
        is the number still followed just before ``time``.
        """
        alpha = self.alpha if alpha is None else alpha
        transform = transform or self.transform
        parts = []
        for a in self.arms:
            km = self.kaplan_meier(a)
            lo, hi = km.band(alpha, transform)
            frame = pd.DataFrame(
                {
                    "arm": a,
                    "time": np.concatenate(([0.0], km.time)),
                    "survival": np.concatenate(([1.0], km.survival)),
                    "ci_lower": np.concatenate(([1.0], lo)),
                    "ci_upper": np.concatenate(([1.0], hi)),
                    "at_risk": np.concatenate(([km.at_risk[0] if km.at_risk.size else 0.0], km.at_risk)),
                    "events": np.concatenate(([0.0], km.events)),
                    "censored": np.concatenate(([0.0], km.removed - km.events)),
                }
            )
            if km.time.size and km.time[0] == 0.0:  # events at time 0: the curve starts below 1
                frame = frame.iloc[1:]
            parts.append(frame)
        out = pd.concat(parts, ignore_index=True)
        out["share_with_event"] = 1.0 - out["survival"]
        out["share_ci_lower"] = 1.0 - out["ci_upper"]
        out["share_ci_upper"] = 1.0 - out["ci_lower"]
        return out

    def plot(self, ax=None, kind: str = "share", band: bool = True, events: str = "event"):
        """Kaplan-Meier curves by arm with their pointwise bands, up to the horizon.

        ``kind="share"`` draws the share with the event (``1 - S``, e.g.
        "share refunded"), ``"survival"`` the share still waiting.
        """
        import matplotlib.pyplot as plt

        from .plots import style_axes

        if kind not in ("share", "survival"):
            raise AbkitError(f"kind={kind!r} must be 'share' or 'survival'")
        if ax is None:
            _, ax = plt.subplots(figsize=(7.5, 4.2))
        frame = self.curves()
        colours = ["#57606a", "#0969da", "#bf3989", "#1a7f37", "#9a6700"]
        for i, a in enumerate(self.arms):
            f = frame[frame["arm"] == a]
            col = colours[i % len(colours)]
            y, lo, hi = (
                ("share_with_event", "share_ci_lower", "share_ci_upper")
                if kind == "share"
                else ("survival", "ci_lower", "ci_upper")
            )
            x = np.append(f["time"].to_numpy(), self.metric.horizon)
            ys = np.append(f[y].to_numpy(), f[y].to_numpy()[-1])
            label = f"{a} (n={self.counts.arms[a].units:,})"
            ax.step(x, ys, where="post", color=col, lw=2, label=label)
            if band:
                ax.fill_between(
                    x,
                    np.append(f[lo].to_numpy(), f[lo].to_numpy()[-1]),
                    np.append(f[hi].to_numpy(), f[hi].to_numpy()[-1]),
                    step="post",
                    color=col,
                    alpha=0.18,
                    lw=0,
                )
        unit = self.metric.time_unit
        ax.set_xlim(0, self.metric.horizon)
        ax.set_ylim(0, 1)
        ax.set_xlabel(f"{unit} since start", parse_math=False)
        ax.set_ylabel(
            f"share with the {events}" if kind == "share" else f"share without the {events} yet", parse_math=False
        )
        level = f"{1 - self.alpha:.0%}"
        ax.set_title(f"{self.metric.name}: Kaplan-Meier by arm, {level} pointwise bands", loc="left", fontsize=11)
        legend = ax.legend(loc="lower right" if kind == "share" else "upper right", frameon=False)
        for text in legend.get_texts():
            text.set_parse_math(False)
        style_axes(ax, "both")
        return ax

    def sentence(self, variant: Hashable | None = None, *, events: str = "refunds") -> str:
        """The restricted-mean effect in words (:func:`effect_sentence`) for one treatment arm."""
        variant = self.treatments[0] if variant is None else variant
        r = next((r for r in self.rows if r["variant"] == variant), None)
        if r is None:
            raise AbkitError(f"no arm {variant!r}; arms: {list(self.treatments)}")
        return effect_sentence(
            r["effect"],
            r["ci_lower"],
            r["ci_upper"],
            self.metric.horizon,
            time_unit=self.metric.time_unit,
            events=events,
            level=1 - self.alpha,
        )

    def __repr__(self) -> str:
        from .formatting import p_text

        lines = [f"Time to event: {self.metric!r}, arms {list(self.arms)} (control {self.control!r})"]
        for r in self.rows:
            lines.append(
                f"  [{r['variant']} vs {self.control}] restricted mean {r['control_value']:.4g} -> "
                f"{r['treatment_value']:.4g} {self.metric.time_unit}, difference {r['effect']:+.4g} "
                f"[{r['ci_lower']:+.4g}, {r['ci_upper']:+.4g}], {p_text(r['p_value'])}"
            )
        return "\n".join(lines)


def analyze_time_to_event(
    data,
    metric: TimeToEvent,
    variant: str = "variant",
    control: Hashable = "control",
    alpha: float = 0.05,
    *,
    transform: str = "log-log",
) -> TimeToEventResult:
    """Every effect of one :class:`abkit.TimeToEvent` metric, its curves, a plot and words.

    One aggregation (:func:`event_counts`: numpy in memory, or pushed down to
    the engine; ``data`` may also be those :class:`EventCounts`, e.g. parts
    added up with ``+``); every table of the result is computed from them.
    ``transform`` is the scale of the pointwise bands and median intervals
    (``"log-log"``, ``"linear"`` or ``"log"``).
    """
    if not isinstance(metric, TimeToEvent):
        raise AbkitError(f"{metric!r} is not a TimeToEvent metric; build one with abkit.TimeToEvent(...)")
    if not (0.0 < float(alpha) < 0.5):
        raise AbkitError(f"alpha={alpha!r} must be between 0 and 0.5 (e.g. 0.05)")
    if transform not in sv.TRANSFORMS:
        raise AbkitError(f"transform={transform!r} is not known; use one of {', '.join(sv.TRANSFORMS)}")
    if isinstance(data, EventCounts):
        if data.metric != metric:
            raise AbkitError(f"these event counts are of metric {data.metric!r}, not {metric!r}")
        counts = data
    else:
        counts = event_counts(data, metric, variant)
    present = list(counts.arms)
    if control not in present:
        raise DataError(
            f"control arm {control!r} not found in column '{variant}'; arms present: {present}. Pass "
            "control= with one of them"
        )
    if len(present) < 2:
        raise DataError(
            f"only one arm ({present[0]!r}) in column '{variant}'; an experiment needs at least a "
            "control and a treatment"
        )
    arms = [control] + [a for a in present if a != control]
    rows = event_rows(data, metric, variant, control, arms[1:], alpha, arms, counts=counts)
    return TimeToEventResult(metric, counts, tuple(arms), control, float(alpha), tuple(r for r, _ in rows), transform)
