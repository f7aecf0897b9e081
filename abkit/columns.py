"""Column helpers shared by the aggregation paths (low layer: imports only :mod:`abkit.errors`).

:mod:`abkit.sources` (in memory), :mod:`abkit.engines` (push-down) and
:mod:`abkit.integrity` (one row per unit) all read key columns and all
report the same data problems. The pieces they share live here, below all
three, so that none of them imports another one back:

* :func:`key_codes` factorizes a key column (variant, segment) of an
  in-memory batch into integer codes and plain Python labels;
* :func:`negative_value_error` and :func:`entirely_missing_error` build the
  :class:`abkit.DataError` for a negative value in a column that must not
  be negative and for a column without any value, with one wording on
  every path.
"""

from __future__ import annotations

import numpy as np

from .errors import DataError

__all__ = ["entirely_missing_error", "key_codes", "negative_value_error", "plain"]


def plain(v):
    """numpy scalars -> Python scalars, so labels compare and print plainly."""
    return v.item() if hasattr(v, "item") else v


def key_codes(batch, column: str) -> tuple[np.ndarray, list]:
    """Factorize a key column (variant, segment) of a pandas DataFrame or pyarrow Table / RecordBatch.

    Returns ``(codes, labels)``: ``codes[i]`` is row i's position in
    ``labels`` (``-1`` where the key is missing); labels are in the order of
    first appearance, or the categories' order for a categorical column.
    """
    import pandas as pd
    import pyarrow as pa

    if isinstance(batch, pd.DataFrame):
        s = batch[column]
        if isinstance(s.dtype, pd.CategoricalDtype):
            return s.cat.codes.to_numpy(), [plain(v) for v in s.cat.categories]
        codes, uniques = pd.factorize(s, sort=False)
        return codes, [plain(v) for v in uniques]
    col = batch.column(column) if isinstance(batch, pa.Table) else batch.column(batch.schema.get_field_index(column))
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if not pa.types.is_dictionary(col.type):
        col = col.dictionary_encode()
    codes = col.indices.to_numpy(zero_copy_only=False)
    if col.null_count:
        codes = np.where(col.is_valid().to_numpy(zero_copy_only=False), codes, -1)
    return np.asarray(codes, dtype=np.int64), [plain(v) for v in col.dictionary.to_pylist()]


def negative_value_error(column: str, smallest: float, count: int | None, users) -> DataError:
    """The error for a negative value in a column that must not be negative.

    ``users`` lists ``(metric name, role)`` with role ``"denominator"`` or
    ``"numerator"`` (see :attr:`abkit.Metric.nonnegative_columns`).
    """
    name, role = users[0]
    how_many = f"{count:,} negative value{'s' if count != 1 else ''}" if count else "negative values"
    if role == "denominator":
        fix = (
            "a denominator counts orders, responses or other exposures, so it can never be negative: fix "
            "the data (e.g. cancellations booked as negative rows must be netted per unit first)"
        )
    else:
        fix = (
            "fix the data (e.g. reversals booked as negative rows must be netted per unit first), or, if "
            "this numerator may be negative (a net amount), declare the metric with "
            "abkit.Ratio(..., nonnegative=False) (spec: `nonnegative: false`)"
        )
    return DataError(
        f"column '{column}' has {how_many} (smallest {smallest:g}) but is the {role} of metric "
        f"'{name}', which must not be negative; {fix}"
    )


def entirely_missing_error(column: str, rows: int | None, metric: str) -> DataError:
    """The error for a column with no value at all (e.g. a pre-period column whose join failed)."""
    where = f"all {rows:,} rows are" if rows else "every row is"
    return DataError(
        f"column '{column}' is entirely missing: {where} null/NaN (used by metric '{metric}'), so no unit has a "
        "value to analyse. Check how the column was produced (a failed pre-period join?), or remove it from "
        "the metric"
    )
