"""Unit x period panels from buyer- or order-level rows, aggregated where the data lives."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError, missing_column
from .panel import _as_list, _val


# --------------------------------------------------------------------------
# Panels from buyer- or order-level rows
# --------------------------------------------------------------------------
def aggregate_panel(data, unit: str, time: str, sums: Sequence[str], first: Sequence[str] = ()) -> pd.DataFrame:
    """Per unit x period sums of ``sums`` (plus ``n_rows``) from buyer- or order-level rows.

    ``data``: what :func:`abkit.analyze` accepts - a pandas DataFrame or a
    pyarrow Table (aggregated in memory), or a parquet/CSV path, a DuckDB
    relation, a Spark DataFrame or a Polars lazy frame (aggregated by that
    engine through :func:`abkit.engines.to_lazy`: the rows never leave it,
    only one row per unit-period comes back). The aggregation is one
    narwhals ``group_by(unit, time)`` query, the same expressions for every
    engine: the sums (as float64), the row count, and per column of
    ``first`` its smallest and largest value and its missing count.

    ``first``: columns constant within a unit-period (e.g. the launch
    period), carried over (an error if they vary, or are missing in only
    some of the rows). Missing or infinite values in ``sums`` are an error
    (fill them or drop the rows first); rows with a missing unit or period
    are dropped and counted in ``attrs["dropped_rows"]``. The result, sorted
    by unit and period, feeds every estimator here, e.g.
    ``outcome=("contacts", "orders")`` for the contact rate per order.
    """
    import narwhals as nw
    import pyarrow as pa

    from .. import engines

    sums, first = _as_list(sums), _as_list(first)
    if not sums:
        raise DataError("aggregate_panel needs at least one column in sums=[...], e.g. ['contacts', 'orders']")
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, (pd.DataFrame, pa.Table)):
        frame, lazy, what = nw.from_native(data, eager_only=True), False, "data"
    elif engines.is_lazy(data):
        frame, lazy = engines.to_lazy(data), True
        what = f"'{data}'" if isinstance(data, (str, os.PathLike)) else "data"
    else:
        raise DataError(
            f"cannot aggregate data of type {type(data).__name__}; pass a pandas DataFrame, a pyarrow "
            "Table, a path to a parquet/CSV file, or a DuckDB relation / Spark DataFrame"
        )
    schema = frame.collect_schema()
    names = list(schema.names())
    for c in dict.fromkeys([unit, time, *sums, *first]):
        if c not in names:
            raise missing_column(c, names, what=what)
    for c in sums:
        dt = schema[c]
        if not (dt.is_numeric() or dt == nw.Boolean):
            raise DataError(f"column '{c}' is not numeric (type {dt}); convert it to numbers before aggregating")
    bad = [f"__abkit_bad_{i}" for i in range(len(sums))]
    nul = [f"__abkit_null_{j}" for j in range(len(first))]
    value = {c: nw.col(c).cast(nw.Float64) for c in sums}
    frame = frame.with_columns(
        *[(~value[c].is_finite().fill_null(False)).cast(nw.Int64).alias(b) for c, b in zip(sums, bad)],
        *[nw.col(c).is_null().cast(nw.Int64).alias(m) for c, m in zip(first, nul)],
        *[value[c].alias(c) for c in sums],
    )
    query = frame.group_by(unit, time, drop_null_keys=False).agg(
        *[nw.col(c).sum() for c in sums],
        nw.len().alias("__abkit_rows"),
        *[nw.col(b).sum() for b in bad],
        *[
            e
            for j, c in enumerate(first)
            for e in (
                nw.col(c).min().alias(f"__abkit_min_{j}"),
                nw.col(c).max().alias(f"__abkit_max_{j}"),
                nw.col(nul[j]).sum(),
            )
        ],
    )
    out = (engines._collect(query, data) if lazy else query).to_pandas()  # one row per unit-period
    keymiss = (out[unit].isna() | out[time].isna()).to_numpy()
    n_rows = pd.to_numeric(out["__abkit_rows"]).to_numpy(dtype=np.int64)
    dropped = int(n_rows[keymiss].sum())
    out = out.loc[~keymiss]
    n_rows = n_rows[~keymiss]
    for c, b in zip(sums, bad):
        nbad = int(pd.to_numeric(out[b]).sum())
        if nbad:
            raise DataError(
                f"column '{c}' has {nbad:,} missing or infinite values; fill them (e.g. 0 "
                "contacts) or drop those rows before aggregating"
            )
    result = pd.DataFrame({unit: out[unit].to_numpy(), time: out[time].to_numpy()})
    for c in sums:
        result[c] = pd.to_numeric(out[c]).to_numpy(dtype=np.float64)
    result["n_rows"] = n_rows
    for j, c in enumerate(first):
        lo, hi = out[f"__abkit_min_{j}"], out[f"__abkit_max_{j}"]
        nulls = pd.to_numeric(out[nul[j]]).to_numpy(dtype=np.int64)
        some_missing = (nulls > 0) & (nulls < n_rows)
        differ = (lo.notna() & hi.notna() & (lo != hi)).to_numpy(dtype=bool)
        varying = some_missing | differ
        if varying.any():
            i = int(np.argmax(varying))
            raise DataError(
                f"column '{c}' varies within {int(varying.sum())} unit-period(s), e.g. {unit}="
                f"{_val(out[unit].iloc[i])} in {time}={_val(out[time].iloc[i])}; it must be constant "
                "(or missing in every row) within each unit and period to be carried over"
            )
        v = lo.astype(object).where(lo.notna(), np.nan)
        if schema[c].is_numeric():
            v = pd.to_numeric(v).astype(np.float64)
        result[c] = v.to_numpy()
    result = result.sort_values([unit, time], ignore_index=True)
    result.attrs["dropped_rows"] = dropped
    return result
