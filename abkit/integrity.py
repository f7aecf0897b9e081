"""Unit integrity: is every randomization unit in exactly one arm, exactly once?

The estimators assume one row per randomization unit (buyer) and that each
unit saw one arm. Two data problems break that silently:

* an **assignment leak**: the same unit appears in more than one arm
  (cross-device identities merged after assignment, a re-randomization, a
  join on the wrong key). Its rows land in several arms, the arms are no
  longer independent samples and the effect is diluted;
* **duplicated units**: a unit has several rows (a join fan-out, a double
  load). Its rows are correlated, so the variance, which treats rows as
  independent units, is too small, and the unit weighs more than the others.

``abkit.analyze(data, metrics, unit="buyer_id")`` (and
``abkit.moments(..., unit=...)``) runs the check on the data it aggregates
and puts the counts in ``result.integrity`` (an :class:`Integrity`), shown in
the result's summary and HTML and in the readout's health checks; the A/B
verdict (:func:`abkit.verdict.decide`) calls a readout *Invalid* when more
than :data:`abkit.verdict.LEAK_ALARM` of the units leaked or
:data:`abkit.verdict.DUPLICATE_ALARM` are duplicated.

abkit does **not** drop or re-assign leaked or duplicated rows: it cannot
know which arm or which copy is right, so the rows are analysed as they are
and the problem is reported; ``Integrity.examples`` lists a few leaked unit
ids to start the investigation.

How it is computed (one pass, no Python loop over rows):

* in memory (pandas / Arrow): the unit column is coded as integers (its
  values directly when they are integers in a compact range, else a hash
  factorization); ``np.bincount`` gives the rows per unit; every unit gets
  one representative arm code by a scatter, and a unit leaked exactly when
  one of its rows' arm differs from its representative;
* in an engine (parquet/CSV through DuckDB, DuckDB relations, Spark): one
  narwhals aggregation ``GROUP BY unit`` of the row count and the smallest
  and largest arm label (a unit leaked exactly when they differ), summed
  into one row.

Exact duplicate rows (equal in the unit, the arm and every column the
analysis reads) can only occur among the units with several rows, so they
are counted only when such units exist, on those units' rows alone: clean
data pays nothing for this count.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from .columns import key_codes, plain
from .errors import DataError

__all__ = ["MAX_EXAMPLES", "Integrity", "check_frame", "check_lazy"]

MAX_EXAMPLES = 5
"""At most this many leaked unit ids are kept in :attr:`Integrity.examples`."""


@dataclass(frozen=True)
class Integrity:
    """Counts of the unit-integrity check (see the module doc).

    Attributes
    ----------
    unit : the unit id column.
    rows : rows with an arm (the rows analysed).
    units : distinct unit ids among them.
    missing_unit : rows with an arm but no unit id (not checked).
    leaked_units : units that appear in more than one arm.
    leaked_rows : the rows of those units.
    duplicated_units : units with more than one row (in one arm or several).
    extra_rows : rows beyond the first of each unit (``rows - missing_unit - units``).
    duplicate_rows : rows equal to an earlier row in the unit, the arm and
        every column the analysis reads (a subset of ``extra_rows``).
    examples : up to :data:`MAX_EXAMPLES` leaked unit ids.
    """

    unit: str
    rows: int
    units: int
    missing_unit: int = 0
    leaked_units: int = 0
    leaked_rows: int = 0
    duplicated_units: int = 0
    extra_rows: int = 0
    duplicate_rows: int = 0
    examples: tuple = ()

    @property
    def leak_share(self) -> float:
        """Share of the units that appear in more than one arm."""
        return self.leaked_units / self.units if self.units else 0.0

    @property
    def duplicate_share(self) -> float:
        """Share of the units that have more than one row."""
        return self.duplicated_units / self.units if self.units else 0.0

    @property
    def clean(self) -> bool:
        """True when every row has a unit id and every unit has one row in one arm."""
        return not (self.leaked_units or self.duplicated_units or self.missing_unit)

    def problems(self) -> list[str]:
        """One plain sentence per problem found (empty when :attr:`clean`)."""
        out = []
        if self.leaked_units:
            ex = ", ".join(repr(x) for x in self.examples)
            out.append(
                f"assignment leak: {self.leaked_units:,} of {self.units:,} units ({self.leak_share:.2%}) "
                f"appear in more than one arm ({self.leaked_rows:,} rows{'; e.g. ' + ex if ex else ''}); "
                "their rows are analysed in every arm they appear in. Fix the assignment or drop these "
                f"units (one arm per '{self.unit}')"
            )
        if self.duplicated_units:
            exact = f", {self.duplicate_rows:,} of them exact copies of another row" if self.duplicate_rows else ""
            out.append(
                f"duplicated units: {self.duplicated_units:,} units ({self.duplicate_share:.2%}) have more "
                f"than one row ({self.extra_rows:,} extra rows{exact}); the analysis expects one row "
                f"per '{self.unit}': aggregate the rows per unit or remove the copies"
            )
        if self.missing_unit:
            out.append(f"{self.missing_unit:,} rows have no '{self.unit}' and could not be checked")
        return out

    def summary(self) -> str:
        if self.clean:
            return f"unit integrity: {self.units:,} units in '{self.unit}', each in one arm with one row"
        return f"unit integrity ('{self.unit}'): " + "; ".join(self.problems())

    def to_dict(self) -> dict:
        return {
            "unit": self.unit,
            "rows": self.rows,
            "units": self.units,
            "missing_unit": self.missing_unit,
            "leaked_units": self.leaked_units,
            "leaked_rows": self.leaked_rows,
            "duplicated_units": self.duplicated_units,
            "extra_rows": self.extra_rows,
            "duplicate_rows": self.duplicate_rows,
            "examples": list(self.examples),
        }

    def __str__(self) -> str:
        return self.summary()


# --------------------------------------------------------------------------- in memory
def _unit_codes(batch, column: str) -> tuple[np.ndarray, int, Callable[[np.ndarray], np.ndarray]]:
    """Integer codes of the unit column (-1 = missing), the number of codes, and codes -> ids."""
    import pandas as pd  # here, not at import: `abkit readout` starts its kernels without loading pandas
    import pyarrow as pa

    if isinstance(batch, pd.DataFrame):
        s = batch[column]
        if isinstance(s, pd.DataFrame):
            raise DataError(f"column '{column}' appears more than once in the data; rename the duplicates")
        values = (
            s.to_numpy(dtype=np.int64)
            if pd.api.types.is_integer_dtype(s.dtype) and not s.hasnans and s.dtype.kind == "i"
            else None
        )
    else:
        col = (
            batch.column(column) if isinstance(batch, pa.Table) else batch.column(batch.schema.get_field_index(column))
        )
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        values = (
            col.to_numpy(zero_copy_only=False) if pa.types.is_signed_integer(col.type) and not col.null_count else None
        )
        s = values if values is not None else pd.Series(col.to_pandas())
    if values is not None and values.size:
        lo, hi = int(values.min()), int(values.max())
        if hi - lo <= 4 * values.size + 1024:  # compact integer ids: the ids are the codes
            return values.astype(np.int64, copy=False) - lo, hi - lo + 1, (lambda i, lo=lo: np.asarray(i) + lo)
    codes, uniques = pd.factorize(s, sort=False)
    return codes.astype(np.int64, copy=False), len(uniques), (lambda i, u=uniques: np.asarray(u.take(i)))


def _duplicate_rows(batch, rows: np.ndarray, columns: Sequence[str]) -> int:
    """Rows among ``rows`` (positions) equal to an earlier one of them in every column of ``columns``."""
    import pandas as pd

    if rows.size < 2:
        return 0
    if isinstance(batch, pd.DataFrame):
        sub = batch.iloc[rows][list(columns)]
    else:
        sub = batch.select(list(columns)).take(rows).to_pandas()
    return int(sub.duplicated().sum())


def check_frame(batch, unit: str, arm_codes: np.ndarray, columns: Sequence[str]) -> Integrity:
    """The integrity of an in-memory batch (pandas DataFrame or pyarrow Table / RecordBatch).

    ``arm_codes`` are the rows' arm codes (``-1`` = no arm: not counted);
    ``columns`` the columns compared to find exact duplicate rows (the unit,
    the variant and the metric columns).
    """
    u, n_codes, label = _unit_codes(batch, unit)
    a = np.asarray(arm_codes, dtype=np.int64)
    has_arm = a >= 0
    missing_unit = int(np.count_nonzero(has_arm & (u < 0)))
    ok = has_arm & (u >= 0)
    everything = bool(ok.all())
    positions = None if everything else np.flatnonzero(ok)
    if not everything:
        u, a = u[positions], a[positions]
    rows = int(u.size)
    count = np.bincount(u, minlength=n_codes) if rows else np.zeros(n_codes, dtype=np.int64)
    units = int(np.count_nonzero(count))
    # One representative arm per unit (whichever row the scatter keeps): a unit
    # leaked exactly when one of its rows is in another arm than its representative.
    representative = np.full(n_codes, -1, dtype=np.int64)
    representative[u] = a
    crossed = a != representative[u]
    leaked_units = leaked_rows = 0
    examples: tuple = ()
    if crossed.any():
        leaked = np.zeros(n_codes, dtype=bool)
        leaked[u[crossed]] = True
        leaked_units = int(np.count_nonzero(leaked))
        leaked_rows = int(count[leaked].sum())
        ids = label(np.flatnonzero(leaked))
        try:
            ids = np.sort(ids)  # the smallest ids, as the engines report them
        except TypeError:  # ids of mixed types: keep the order of appearance
            pass
        examples = tuple(plain(x) for x in ids[:MAX_EXAMPLES])
    several = count > 1
    duplicated_units = int(np.count_nonzero(several))
    duplicate_rows = 0
    if duplicated_units:
        in_dup = np.flatnonzero(several[u])
        where = in_dup if positions is None else positions[in_dup]
        duplicate_rows = _duplicate_rows(batch, where, list(dict.fromkeys(columns)))
    return Integrity(
        unit=unit,
        rows=rows + missing_unit,
        units=units,
        missing_unit=missing_unit,
        leaked_units=leaked_units,
        leaked_rows=leaked_rows,
        duplicated_units=duplicated_units,
        extra_rows=rows - units,
        duplicate_rows=duplicate_rows,
        examples=examples,
    )


# --------------------------------------------------------------------------- in an engine
def check_lazy(lf, unit: str, variant: str, columns: Sequence[str], keys: Sequence[str] = ()) -> Integrity:
    """The integrity of a narwhals LazyFrame, computed by its engine (see the module doc).

    Rows with a missing ``variant`` (or a missing segment key in ``keys``)
    are not counted, as in the analysis.
    """
    import narwhals as nw

    has_arm = ~nw.col(variant).is_null()
    for k in keys:
        has_arm = has_arm & ~nw.col(k).is_null()
    base = lf.filter(has_arm)
    arm = nw.col(variant).cast(nw.String)
    per_unit = base.group_by(unit).agg(nw.len().alias("__rows"), arm.min().alias("__amin"), arm.max().alias("__amax"))
    known = ~nw.col(unit).is_null()
    leaked = known & (nw.col("__amin") != nw.col("__amax"))
    several = known & (nw.col("__rows") > 1)
    zero = nw.lit(0, nw.Int64)
    totals = (
        per_unit.select(
            nw.col("__rows").sum().alias("rows"),
            nw.when(known).then(nw.lit(1, nw.Int64)).otherwise(zero).sum().alias("units"),
            nw.when(~known).then(nw.col("__rows")).otherwise(zero).sum().alias("missing_unit"),
            nw.when(leaked).then(nw.lit(1, nw.Int64)).otherwise(zero).sum().alias("leaked_units"),
            nw.when(leaked).then(nw.col("__rows")).otherwise(zero).sum().alias("leaked_rows"),
            nw.when(several).then(nw.lit(1, nw.Int64)).otherwise(zero).sum().alias("duplicated_units"),
            nw.when(several).then(nw.col("__rows")).otherwise(zero).sum().alias("rows_of_duplicated"),
        )
        .collect()
        .to_arrow()
        .to_pylist()
    )
    t = {k: int(v or 0) for k, v in (totals[0] if totals else {}).items()}
    rows, units, missing = t.get("rows", 0), t.get("units", 0), t.get("missing_unit", 0)
    examples: tuple = ()
    if t.get("leaked_units"):
        ids = per_unit.filter(leaked).select(unit).sort(unit).head(MAX_EXAMPLES).collect().to_arrow()
        examples = tuple(ids.column(0).to_pylist())
    duplicate_rows = 0
    if t.get("duplicated_units"):
        dup_ids = per_unit.filter(several).select(unit)
        cols = list(dict.fromkeys([unit, variant, *columns]))
        distinct = (
            base.join(dup_ids, on=unit, how="inner")
            .select(*cols)
            .unique()
            .select(nw.len().alias("n"))
            .collect()
            .to_arrow()
            .column(0)[0]
            .as_py()
        )
        duplicate_rows = t["rows_of_duplicated"] - int(distinct or 0)
    return Integrity(
        unit=unit,
        rows=rows,
        units=units,
        missing_unit=missing,
        leaked_units=t.get("leaked_units", 0),
        leaked_rows=t.get("leaked_rows", 0),
        duplicated_units=t.get("duplicated_units", 0),
        extra_rows=rows - missing - units,
        duplicate_rows=duplicate_rows,
        examples=examples,
    )


def arm_codes_for(batch, variant: str, keys_codes: np.ndarray, by: Sequence[Hashable]) -> np.ndarray:
    """Arm codes of a batch: the group codes themselves without segments, else the variant's own codes
    (a unit in two segments is not a leak), missing wherever a key is missing."""
    if not by:
        return keys_codes
    codes, _ = key_codes(batch, variant)
    return np.where(keys_codes >= 0, codes, -1)
