"""Sources: turn the user's data into the moments the metrics need.

Accepted data:

* a pandas ``DataFrame`` or a pyarrow ``Table`` / ``RecordBatch``: aggregated
  in memory by one vectorized numpy kernel,
  :meth:`abkit.moments.Moments.from_arrays`, applied chunk by chunk and
  merged exactly;
* a path (``str`` / ``os.PathLike``) to a parquet file, a directory of
  parquet files, or a CSV file; a DuckDB relation; a Spark DataFrame; a
  Polars lazy frame: aggregated inside the engine (see :mod:`abkit.engines`),
  so rows never leave it. Files go through DuckDB.

Both paths give the same numbers (tested to 1e-9 relative).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from .columns import entirely_missing_error, key_codes, negative_value_error, plain
from .engines import (
    aggregate_lazy,
    frame_relation,
    is_lazy,
    quantile_lazy,
    read_columns_lazy,
)
from .errors import DataError, missing_column
from .integrity import arm_codes_for, check_frame
from .metrics import Metric
from .moments import Moments, MomentSet

# Kept under their old names for callers of this module.
_key_codes, _plain = key_codes, plain

__all__ = ["aggregate", "quantile", "read_columns"]

# Rows per chunk of the in-memory kernel: bounds the temporary matrix to
# about 128 MB whatever the number of columns.
_CHUNK_CELLS = 1 << 24

ENGINE_MIN_ROWS = 500_000
"""In-memory frames with at least this many rows are aggregated by DuckDB.

DuckDB scans pandas and Arrow buffers without copying and runs on every
core; below this size the numpy kernel wins (no query to plan and bind,
whose cost grows with the number of metrics: measured on 2 cores, the two
break even between 300,000 and 1,000,000 rows for 5 to 40 CUPED ratio
metrics). Both give the same moments (tested to 1e-9). Set it to
``float("inf")`` to keep every frame on the numpy kernel, or to 0 to send
every eligible frame to DuckDB.
"""


def _available_columns(data) -> list[str]:
    if isinstance(data, pd.DataFrame):
        return [str(c) for c in data.columns]
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        return list(data.schema.names)
    raise TypeError(type(data))


def _batches(data, columns: Sequence[str]) -> Iterator:
    """Yield the in-memory object holding ``columns`` (one batch; kept as an
    iterator so a chunked in-memory source can be added without changing callers)."""
    if isinstance(data, (pd.DataFrame, pa.Table, pa.RecordBatch)):
        have = _available_columns(data)
        for c in columns:
            if c not in have:
                raise missing_column(c, have)
        yield data
        return
    raise DataError(
        f"cannot read data of type {type(data).__name__}; pass a pandas DataFrame, a pyarrow "
        "Table, a path to a parquet/CSV file, or a DuckDB relation / Spark DataFrame"
    )


def _to_float(batch, column: str) -> np.ndarray:
    """One column as a float64 numpy array; nulls become NaN."""
    if isinstance(batch, pd.DataFrame):
        s = batch[column]
        if isinstance(s, pd.DataFrame):
            raise DataError(f"column '{column}' appears more than once in the data; rename the duplicates")
        if s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(s.dtype):
            try:
                return pd.to_numeric(s, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
            except (ValueError, TypeError):
                bad = s[pd.to_numeric(s, errors="coerce").isna() & s.notna()]
                example = bad.iloc[0] if len(bad) else "?"
                raise DataError(
                    f"column '{column}' is not numeric (dtype {s.dtype}; e.g. value {example!r} in "
                    f"{len(bad):,} rows); convert it to numbers before analysis"
                ) from None
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            raise DataError(f"column '{column}' holds dates ({s.dtype}); metrics need numbers")
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    col = batch.column(column) if isinstance(batch, pa.Table) else batch.column(batch.schema.get_field_index(column))
    t = col.type
    if not (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
        or pa.types.is_null(t)
    ):
        raise DataError(f"column '{column}' is not numeric (type {t}); convert it to numbers before analysis")
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_boolean(t) or pa.types.is_decimal(t) or pa.types.is_null(t):
        col = col.cast(pa.float64())
    arr = col.to_numpy(zero_copy_only=False)
    return np.asarray(arr, dtype=np.float64)


def _derived(batch, d) -> np.ndarray:
    """Evaluate a :class:`abkit.metrics.Derived` column on an in-memory batch (narwhals)."""
    import narwhals as nw

    if isinstance(batch, pa.RecordBatch):
        batch = pa.Table.from_batches([batch])
    frame = nw.from_native(batch, eager_only=True)
    out = frame.select(d.expr.alias(d.name))[d.name].to_numpy()
    return np.asarray(out, dtype=np.float64)


def _num_rows(batch) -> int:
    return len(batch) if isinstance(batch, pd.DataFrame) else batch.num_rows


def _blocks_for(metrics: Sequence[Metric], joint=None) -> list[tuple[tuple[str, ...], bool, tuple]]:
    """The aggregation plan: ``(columns, dropna, covariance blocks)`` per block of moments.

    One block for all metrics that keep every row, holding the co-moments of
    the pairs the metrics declare (:attr:`abkit.Metric.covariance_blocks`,
    plus the ``joint`` column sets); one block per dropna metric.
    """
    shared: dict[str, None] = {}
    shared_pairs: dict[tuple[str, ...], None] = {}
    own: dict[tuple[str, ...], dict] = {}
    for m in metrics:
        if m.dropna:
            own.setdefault(m.columns, {}).update(dict.fromkeys(m.covariance_blocks))
        else:
            for c in m.columns:
                shared[c] = None
            shared_pairs.update(dict.fromkeys(m.covariance_blocks))
    for cols in joint or ():
        cols = tuple(cols)
        outside = [c for c in cols if c not in shared]
        if outside:
            raise DataError(
                f"joint={list(cols)}: column '{outside[0]}' is not a column of a metric that keeps every "
                f"row (dropna=False); joint column sets must come from those metrics: {list(shared)}"
            )
        shared_pairs[cols] = None
    blocks = [(tuple(shared), False, tuple(shared_pairs))] if shared else []
    return blocks + [(cols, True, tuple(pairs)) for cols, pairs in own.items()]


def aggregate(
    data,
    metrics: Sequence[Metric] | Metric,
    variant: str = "variant",
    by: str | Sequence[str] | None = None,
    *,
    unit: str | None = None,
    joint: Sequence[Sequence[str]] | None = None,
) -> MomentSet:
    """Aggregate ``data`` into the per-arm moments ``metrics`` need, in one pass.

    Parameters
    ----------
    data : DataFrame, pyarrow Table, or parquet/CSV path (see module doc).
    metrics : the metrics to be analysed.
    variant : the column holding each unit's arm.
    by : optional segment column(s); groups become ``(segment..., arm)``.
    unit : optional randomization-unit id column (e.g. ``"buyer_id"``):
        check that every unit has one row in one arm (assignment leaks,
        duplicated units, exact duplicate rows); the counts are in
        ``MomentSet.integrity`` (see :mod:`abkit.integrity`).
    joint : extra column sets (of metrics with ``dropna=False``) whose full
        covariance is needed besides each metric's own (e.g. a joint
        balance test of several pre-period columns). By default the moments
        hold only the column pairs the metrics declare
        (:attr:`abkit.Metric.covariance_blocks`).

    Rows with a missing variant are dropped and counted
    (``MomentSet.missing_variant``). A metric with missing or infinite values
    raises :class:`abkit.DataError` unless it was declared ``dropna=True``,
    in which case the incomplete rows are dropped and counted per arm; a
    column with no value at all is an error either way. Columns that must not
    be negative (every ratio denominator, and a :class:`abkit.Ratio`'s
    numerator unless ``nonnegative=False``; see
    :attr:`abkit.Metric.nonnegative_columns`) are checked: a negative value
    raises :class:`abkit.DataError` naming the column and the value.
    """
    if isinstance(metrics, Metric):
        metrics = [metrics]
    metrics = list(metrics)
    if not metrics:
        raise DataError("no metrics given; pass e.g. [abkit.Mean('refund_amount')]")
    by = (by,) if isinstance(by, str) else tuple(by or ())
    keys = (*by, variant)
    blocks = _blocks_for(metrics, joint)
    value_cols = list(dict.fromkeys(c for cols, _, _ in blocks for c in cols))
    derived = {d.name: d for m in metrics for d in m.derived}
    raw_cols = list(dict.fromkeys(c for m in metrics for c in m.source_columns))
    overlap = [c for c in raw_cols if c in keys]
    if overlap:
        raise DataError(
            f"column '{overlap[0]}' is used both as a metric column and as the "
            f"variant/segment column; use different columns"
        )
    if unit is not None and (unit in keys or unit in raw_cols):
        raise DataError(
            f"unit='{unit}' is also the variant, a segment or a metric column; give the column "
            "holding each row's randomization-unit id (e.g. buyer_id)"
        )
    nonnegative = nonnegative_columns(metrics)
    reads = [c for m in metrics for d in m.derived for c in d.reads]  # e.g. a window's exposure date
    needed = list(dict.fromkeys([*keys, *raw_cols, *reads, *([unit] if unit else [])]))

    if not isinstance(data, (pd.DataFrame, pa.Table, pa.RecordBatch)):
        if is_lazy(data):
            return aggregate_lazy(data, metrics, variant, by, blocks, unit=unit, nonnegative=nonnegative)
    elif unit is None and _engine_wins(data, needed, keys, raw_cols):
        try:
            ms = aggregate_lazy(frame_relation(data, needed), metrics, variant, by, blocks, nonnegative=nonnegative)
        except DataError:
            pass  # bad data: the numpy kernel below finds the same problem and words it for a frame
        else:
            return _in_frame_order(ms, data, keys)

    moments: dict = {}
    rows: dict = {}
    missing_variant = 0
    total_rows = 0
    integrity = None
    for batch in _batches(data, needed):
        nrows = _num_rows(batch)
        total_rows += nrows
        if nrows == 0:
            continue
        codes, labels = _group_codes(batch, keys)
        if unit is not None:
            integrity = check_frame(batch, unit, arm_codes_for(batch, variant, codes, by), [unit, *keys, *raw_cols])
        valid = codes >= 0
        missing_variant += int(nrows - valid.sum())
        if not valid.all():
            codes = codes[valid]
        groups = labels
        counts = np.bincount(codes, minlength=len(groups))
        for g, c in zip(groups, counts):
            if c:
                rows[g] = rows.get(g, 0) + int(c)
        for d in derived.values():  # type-check the inputs of derived columns
            for c in d.inputs:
                _to_float(batch, c)
        arrays = {c: _derived(batch, derived[c]) if c in derived else _to_float(batch, c) for c in value_cols}
        if not valid.all():
            arrays = {c: a[valid] for c, a in arrays.items()}
        for cols, dropna, pairs in blocks:
            key = (cols, dropna)
            m = _block_moments(arrays, cols, dropna, codes, groups, metrics, pairs)
            moments[key] = m if key not in moments else moments[key].merge(m)
        for c, users in nonnegative.items():
            _check_nonnegative(arrays[c], c, users)

    if total_rows == 0:
        raise DataError("the data has no rows (an empty table); check the query or file that produced it")
    if not rows:
        raise DataError(
            f"the data has no rows with a value in '{variant}' (all {total_rows:,} rows have it "
            "missing); check the data and the variant column"
        )
    return MomentSet(moments, variant, by, rows, missing_variant, integrity=integrity)


def _engine_wins(data, needed: Sequence[str], keys: Sequence[str], raw: Sequence[str]) -> bool:
    """True when DuckDB should aggregate this in-memory frame: large, and of types it reads as the numpy kernel does.

    Keys must be strings, integers, booleans or categories of those, and
    metric columns numbers or booleans, so that labels and values are the
    same on both paths (object columns, dates and floats as keys stay on the
    numpy kernel, which converts or refuses them with its own messages).
    """
    if _num_rows(data) < ENGINE_MIN_ROWS:
        return False
    try:
        import duckdb  # noqa: F401
    except ImportError:  # pragma: no cover - duckdb is a dependency
        return False
    have = _available_columns(data)
    if any(c not in have for c in needed) or len(set(have)) != len(have):
        return False
    if isinstance(data, pd.DataFrame):
        for c in keys:
            dtype = data[c].dtype
            if isinstance(dtype, pd.CategoricalDtype):
                dtype = dtype.categories.dtype
            if not (pd.api.types.is_string_dtype(dtype) and dtype != object) and not (  # noqa: E721
                pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
            ):
                return False
        for c in raw:
            dtype = data[c].dtype
            if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)) or isinstance(
                dtype, pd.CategoricalDtype
            ):
                return False
        return True
    schema = data.schema
    for c in keys:
        t = schema.field(c).type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if not (
            pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t) or pa.types.is_boolean(t)
        ):
            return False
    for c in raw:
        t = schema.field(c).type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
            return False
    return True


def _label_ranks(batch, column: str, present) -> dict:
    """Label -> position in the order the numpy kernel gives (:func:`abkit.columns.key_codes`).

    Categories (dictionary) order for a categorical column, else the order of
    first appearance: the first 65,536 rows give most labels, the position of
    the first row of any other label present is looked up.
    """
    head = 1 << 16
    if isinstance(batch, pd.DataFrame):
        s = batch[column]
        if isinstance(s.dtype, pd.CategoricalDtype):
            return {plain(v): i for i, v in enumerate(s.cat.categories)}
        seen = [plain(v) for v in pd.unique(s.iloc[:head].dropna())]
        ranks = {v: i for i, v in enumerate(seen)}
        rest = [v for v in present if v not in ranks]
        first = {v: int(np.argmax((s == v).to_numpy(dtype=bool, na_value=False))) for v in rest}
    else:
        col = (
            batch.column(column) if isinstance(batch, pa.Table) else batch.column(batch.schema.get_field_index(column))
        )
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        if pa.types.is_dictionary(col.type):
            return {plain(v): i for i, v in enumerate(col.dictionary.to_pylist())}
        import pyarrow.compute as pc

        seen = [v for v in col.slice(0, head).drop_null().unique().to_pylist()]
        ranks = {v: i for i, v in enumerate(seen)}
        rest = [v for v in present if v not in ranks]
        first = {v: pc.index(col, v).as_py() for v in rest}
    for v in sorted(rest, key=lambda v: first[v]):
        ranks[v] = len(ranks)
    return ranks


def _in_frame_order(ms: MomentSet, batch, keys: Sequence[str]) -> MomentSet:
    """``ms`` with its groups in the numpy kernel's order (by key codes, keys in ``(by..., variant)`` order)."""
    labels = list(ms.rows)
    as_tuple = [g if len(keys) > 1 else (g,) for g in labels]
    ranks = [_label_ranks(batch, k, {t[i] for t in as_tuple}) for i, k in enumerate(keys)]
    order = [
        labels[x] for x in sorted(range(len(labels)), key=lambda x: tuple(r[v] for r, v in zip(ranks, as_tuple[x])))
    ]
    if order == labels:
        return ms
    blocks = {k: m.select(groups=[g for g in order if g in m._group_positions]) for k, m in ms.blocks.items()}
    return MomentSet(blocks, ms.variant, ms.by, {g: ms.rows[g] for g in order}, ms.missing_variant, ms.integrity)


def nonnegative_columns(metrics: Sequence[Metric]) -> dict[str, list[tuple[str, str]]]:
    """Column -> [(metric name, role)] for every column that must not be negative.

    Roles are ``"denominator"`` (every ratio denominator: a count or an
    exposure such as orders) and ``"numerator"`` (the numerator of a
    :class:`abkit.Ratio` declared ``nonnegative=True``, the default: refunds,
    contacts, returns). See :attr:`abkit.Metric.nonnegative_columns`.
    """
    out: dict[str, list[tuple[str, str]]] = {}
    for m in metrics:
        for c, role in m.nonnegative_columns:
            out.setdefault(c, []).append((m.name, role))
    return out


def _check_nonnegative(values: np.ndarray, column: str, users) -> None:
    """Raise when ``values`` (NaN / infinite values ignored: the missing-value checks own them) has a negative."""
    if values.size == 0:
        return
    smallest = float(values.min())
    if not np.isfinite(smallest):
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return
        smallest = float(finite.min())
    if smallest < 0:
        raise negative_value_error(column, smallest, int(np.count_nonzero(values < 0)), users)


def _group_codes(batch, keys: Sequence[str]) -> tuple[np.ndarray, list]:
    """Combined codes of the key columns; labels are the arm, or (segment..., arm) tuples."""
    codes, labels = _key_codes(batch, keys[0])
    if len(keys) == 1:
        return codes.astype(np.int64, copy=False), labels
    combined = codes.astype(np.int64)
    combined_labels: list[tuple] = [(lab,) for lab in labels]
    for key in keys[1:]:
        c, lab = _key_codes(batch, key)
        missing = (combined < 0) | (c < 0)
        combined = combined * len(lab) + c
        combined[missing] = -1
        combined_labels = [(*a, b) for a in combined_labels for b in lab]
    used = np.unique(combined[combined >= 0])
    remap = np.full(len(combined_labels), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    out = np.where(combined >= 0, remap[np.maximum(combined, 0)], -1)
    return out, [combined_labels[i] for i in used]


def _block_moments(arrays, cols, dropna, codes, groups, metrics, pairs=None) -> Moments:
    values = [arrays[c] for c in cols]
    # A finite sum proves a column has no NaN/inf without a full isnan pass.
    bad = [c for c, v in zip(cols, values) if not np.isfinite(v.sum())]
    bad = [c for c in bad if not np.isfinite(arrays[c]).all()]
    G = len(groups)
    dropped = np.zeros(G)
    if bad:
        for c in bad:
            v = arrays[c]
            if v.size and np.isnan(v).all():
                users = [m.name for m in metrics if c in m.columns and m.dropna == dropna]
                raise entirely_missing_error(c, v.size, users[0] if users else c)
        if not dropna:
            c = bad[0]
            v = arrays[c]
            n_nan, n_inf = int(np.isnan(v).sum()), int(np.isinf(v).sum())
            users = [m.name for m in metrics if c in m.columns and not m.dropna]
            what = " and ".join(
                p
                for p in (f"{n_nan:,} missing (NaN/null)" if n_nan else "", f"{n_inf:,} infinite" if n_inf else "")
                if p
            )
            raise DataError(
                f"column '{c}' has {what} values out of {len(v):,} rows (used by metric "
                f"'{users[0] if users else c}'); fill or remove them, or declare the metric with "
                "dropna=True to drop those units (they are counted and reported)"
            )
        keep = np.ones(len(codes), dtype=bool)
        for c in bad:
            keep &= np.isfinite(arrays[c])
        dropped = np.bincount(codes[~keep], minlength=G).astype(np.float64)[:G]
        codes = codes[keep]
        values = [v[keep] for v in values]
    return _moments_chunked(codes, values, groups, cols, dropped, pairs)


def _moments_chunked(codes, values, groups, cols, dropped, pairs=None) -> Moments:
    n = len(codes)
    k = max(len(values), 1)
    step = max(1 << 16, _CHUNK_CELLS // k)
    out = None
    for start in range(0, max(n, 1), step):
        stop = min(start + step, n)
        chunk = codes[start:stop]
        # the chunk's rows in group order, gathered straight into a column-major matrix (one pass per column)
        order = np.argsort(chunk, kind="stable") if len(groups) > 1 else None
        X = np.empty((stop - start, len(values)), dtype=np.float64, order="F")
        for j, v in enumerate(values):
            if order is None:
                X[:, j] = v[start:stop]
            else:
                np.take(v[start:stop], order, out=X[:, j])
        m = Moments.from_arrays(
            chunk if order is None else chunk[order], X, groups, cols, blocks=pairs, sorted_codes=order is not None
        )
        out = m if out is None else out.merge(m)
    assert out is not None
    return out._replace(dropped=np.asarray(dropped, dtype=np.float64))


def read_columns(data, columns: Iterable[str]) -> pd.DataFrame:
    """Read just ``columns`` of ``data`` into a DataFrame (for small frames: DiD panels, plots)."""
    columns = list(columns)
    if not isinstance(data, (pd.DataFrame, pa.Table, pa.RecordBatch)) and is_lazy(data):
        return read_columns_lazy(data, columns)
    parts = []
    for batch in _batches(data, columns):
        if isinstance(batch, pd.DataFrame):
            parts.append(batch[columns])
        else:
            parts.append(batch.select(columns).to_pandas() if hasattr(batch, "select") else batch.to_pandas())
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def quantile(data, column: str, q: float) -> float:
    """The ``q``-quantile (linear interpolation) of the finite values of ``column``.

    Pushed down to the engine for paths, DuckDB and Spark (only one number
    comes back); NaN when the column has no finite value.
    """
    if not isinstance(data, (pd.DataFrame, pa.Table, pa.RecordBatch)) and is_lazy(data):
        return quantile_lazy(data, column, q)
    values = np.concatenate([_to_float(b, column) for b in _batches(data, [column])])
    values = values[np.isfinite(values)]
    return float(np.quantile(values, q)) if values.size else float("nan")
