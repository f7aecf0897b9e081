"""Push-down: compute the moments inside the engine where the data lives.

Parquet/CSV paths are aggregated by DuckDB (the embedded default engine);
DuckDB relations, Spark DataFrames and Polars lazy frames are aggregated by
their own engine. The aggregation is written once, as narwhals
expressions, and narwhals translates it for each engine, so every engine
runs the same definition of every metric's moments. Only the aggregated
numbers (a few per arm) come back; rows never become a pandas DataFrame.

The query, for each block of columns (see :mod:`abkit.moments`) and each
group (arm, or segment x arm), computes in one scan

    n      = count of valid rows
    S_i    = sum (x_i - K_i)
    P_ij   = sum (x_i - K_i)(x_j - K_j)

with shifts ``K`` taken from the first rows of the data (the "shifted
data" algorithm: Chan, Golub and LeVeque 1983, "Algorithms for computing
the sample variance: analysis and recommendations"). Then
``mean_i = K_i + S_i / n`` and ``C_ij = P_ij - S_i S_j / n``; because the
shifts are close to the means, the subtraction loses no digits even for
refund totals around 1e12, and the result equals the in-memory path to
about 1e-12 relative.

Rows with a missing value are never silently used: for a ``dropna`` block
a validity mask selects complete rows and the dropped rows are counted
per group in the same scan; for other blocks the scan counts missing and
non-finite values, and any makes a :class:`abkit.DataError`. The same scan
takes the smallest value of the columns that must not be negative (ratio
denominators and numerators, see :attr:`abkit.Metric.nonnegative_columns`).
With ``unit=`` a second query checks that every unit has one row in one arm
(:func:`abkit.integrity.check_lazy`). Engine errors met while reading a file
(a corrupt parquet file, a CSV file that is not UTF-8) become
:class:`abkit.DataError` naming the file and the fix.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data_paths import check_data_path
from .errors import DataError, missing_column
from .moments import Moments, MomentSet

__all__ = ["is_lazy", "to_lazy", "aggregate_lazy", "read_columns_lazy", "quantile_lazy", "table", "TableRef",
           "spark_session"]

_SAMPLE_ROWS = 10_000


def _module_of(obj) -> str:
    return type(obj).__module__.split(".")[0]


def is_lazy(data) -> bool:
    """True for data the push-down path handles: paths, DuckDB, Spark, Polars, narwhals lazy frames."""
    if isinstance(data, (str, os.PathLike)):
        return True
    mod = _module_of(data)
    if mod in ("duckdb", "pyspark", "polars", "sqlframe"):
        return True
    import narwhals as nw

    return isinstance(data, nw.LazyFrame)


def table(name: str, engine: str = "duckdb", database: str | None = None, session=None, conf=None):
    """A warehouse table as a lazy source, aggregated where it lives.

    ``engine="duckdb"``: table ``name`` (``schema.table`` allowed) of the DuckDB
    database file ``database``, opened read-only (in-memory when omitted).
    ``engine="spark"``: ``session.table(name)`` (``db.table`` allowed) in the
    given SparkSession, else the active one, else a new one built with the
    settings ``conf`` (a mapping such as ``{"spark.master": "local[2]"}``;
    cluster defaults come from ``spark-defaults.conf`` as for any Spark job).
    """
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"table name must be non-empty text, got {name!r}")
    if engine == "duckdb":
        import duckdb

        if database is not None and not Path(database).exists():
            raise DataError(f"DuckDB database file '{database}' does not exist; check the path")
        try:
            con = duckdb.connect(str(database) if database else ":memory:", read_only=bool(database))
        except duckdb.Error as exc:
            hint = ("a parquet or CSV file is not a database: name it as the data itself"
                    if str(database).lower().endswith((".parquet", ".pq", ".csv", ".csv.gz")) else
                    "is it a DuckDB database file, and not open for writing in another process?")
            raise DataError(f"could not open DuckDB database '{database}': {str(exc).splitlines()[0]} ({hint})"
                            ) from None
        try:
            return con.table(name)
        except duckdb.Error:
            rows = con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                               "ORDER BY 1, 2").fetchall()
            names = [t if s == "main" else f"{s}.{t}" for s, t in rows]
            listing = ", ".join(names[:40]) or "none"
            raise DataError(f"DuckDB table '{name}' not found in {database or 'the in-memory database'}; "
                            f"tables there: {listing}") from None
    if engine == "spark":
        if session is None:
            session = spark_session(conf)
        try:
            return session.table(name)
        except Exception as exc:  # AnalysisException: TABLE_OR_VIEW_NOT_FOUND
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"Spark table '{name}' not found: {first}. Check the name (db.table) and that "
                            "the session's catalog is the warehouse's (spark.sql.catalogImplementation, "
                            "spark.sql.warehouse.dir)") from None
    raise DataError(f"engine={engine!r} is not known; use 'duckdb' or 'spark'")


def spark_session(conf=None):
    """The active SparkSession, or a new one with the settings ``conf`` (mapping of Spark keys)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise DataError("engine 'spark' needs pyspark: pip install 'abkit[spark]' (and Java 17)") from None
    session = SparkSession.getActiveSession()
    if session is not None:
        return session
    builder = SparkSession.builder.appName("abkit")
    for key, value in dict(conf or {}).items():
        builder = builder.config(str(key), value if isinstance(value, (bool, int, float)) else str(value))
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


@dataclass(frozen=True)
class TableRef:
    """A table named by a spec (``data: {engine, table, database, conf}``): what to open, not an open handle.

    :meth:`open` gives the lazy source (:func:`table`); :attr:`label` names it for people.
    """

    engine: str
    table: str
    database: str | None = None       # DuckDB database file (absolute path)
    conf: tuple = ()                   # Spark settings as ((key, value), ...), used when no session is running

    def open(self):
        """The lazy source: a DuckDB relation or a Spark DataFrame."""
        return table(self.table, engine=self.engine, database=self.database, conf=dict(self.conf))

    @property
    def label(self) -> str:
        if self.engine == "duckdb":
            where = f" in {Path(self.database).name}" if self.database else ""
            return f"DuckDB table {self.table}{where}"
        return f"Spark table {self.table}"

    def to_dict(self) -> dict:
        out = {"engine": self.engine, "table": self.table}
        if self.database is not None:
            out["database"] = self.database
        if self.conf:
            out["conf"] = dict(self.conf)
        return out

    def columns(self) -> list[str]:
        """Column names, from the table's schema only."""
        return list(to_lazy(self.open()).collect_schema().names())


def _read_path(path: Path):
    """A DuckDB relation over a parquet file / directory / glob or a CSV file."""
    import duckdb

    text = str(path)
    has_glob = any(ch in text for ch in "*?[")
    if not has_glob and not path.exists():
        raise DataError(f"data file '{path}' does not exist; check the path (relative paths are "
                        f"taken from {Path.cwd()})")
    if not has_glob:
        check_data_path(path)   # no device or pipe; a folder: no home directory, huge tree or symlink loop
    con = duckdb.connect()
    lower = text.lower()
    try:
        if path.is_dir():
            rel = con.read_parquet(os.path.join(text, "**", "*.parquet"), hive_partitioning=True)
        elif lower.endswith((".parquet", ".pq")) or (has_glob and "parquet" in lower):
            rel = con.read_parquet(text)
        elif lower.endswith((".csv", ".csv.gz", ".tsv")):
            rel = con.read_csv(text)
        else:
            raise DataError(f"data file '{path}' has an unknown type; use .parquet or .csv")
        first_row = rel.limit(1).fetchall()  # fail here, with the file's name, if it is unreadable
    except duckdb.Error as exc:
        raise engine_error(exc, path) from None
    if not first_row:
        raise DataError(f"data file '{path}' has no rows (only a header or an empty schema); check the export "
                        "that wrote it")
    return rel  # the relation keeps its connection alive


def engine_error(exc: BaseException, source) -> DataError:
    """A DuckDB error while reading ``source`` as a :class:`abkit.DataError` naming the file and the fix."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    where = f"'{source}'" if isinstance(source, (str, os.PathLike)) else "the data"
    if "not utf-8 encoded" in text.lower() or "invalid unicode" in text.lower():
        found = re.search(r"CSV Error on Line:\s*(\d+)", text)
        line = f" (first bad byte on line {found.group(1)})" if found else ""
        name = Path(str(source)).name if isinstance(source, (str, os.PathLike)) else "data.csv"
        return DataError(
            f"could not read {where}: the file is not UTF-8 encoded{line}. Re-encode it to UTF-8, e.g. "
            f"`iconv -f latin1 -t utf-8 {name} > utf8_{name}` (use the file's real encoding: latin1, cp1252, "
            "...), or read it with pandas.read_csv(path, encoding=...) and pass the DataFrame"
        )
    suffix = Path(str(source)).suffix if isinstance(source, (str, os.PathLike)) else ""
    return DataError(f"could not read {where}: {first}. Is it a valid, non-empty {suffix or 'data'} file?")


def _is_duckdb_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb")


@contextmanager
def _reading(source):
    """DuckDB errors raised while a query runs (a bad byte deep in a CSV file) become DataErrors naming the file."""
    try:
        yield
    except Exception as exc:
        if _is_duckdb_error(exc):
            raise engine_error(exc, source) from None
        raise


def _collect(frame, source):
    """``frame.collect()`` inside :func:`_reading`."""
    with _reading(source):
        return frame.collect()


def to_lazy(data):
    """The narwhals LazyFrame for a path or a lazy native frame."""
    import narwhals as nw

    if isinstance(data, (str, os.PathLike)):
        data = _read_path(Path(data))
    if isinstance(data, nw.LazyFrame):
        return data
    try:
        return nw.from_native(data)
    except TypeError as exc:
        raise DataError(f"cannot aggregate data of type {type(data).__name__}: {exc}") from None


def _check_columns(lf, keys: Sequence[str], raw: Sequence[str], what: str) -> None:
    import narwhals as nw

    schema = lf.collect_schema()
    names = list(schema.names())
    for c in [*keys, *raw]:
        if c not in names:
            raise missing_column(c, names, what=what)
    for c in raw:
        dtype = schema[c]
        if not (dtype.is_numeric() or dtype == nw.Boolean or isinstance(dtype, nw.Unknown)):
            raise DataError(f"column '{c}' is not numeric (type {dtype}); convert it to numbers before analysis")


def _valid(col: str):
    import narwhals as nw

    return ~nw.col(col).is_null() & nw.col(col).is_finite()


def aggregate_lazy(data, metrics, variant: str, by: tuple[str, ...], blocks, *, unit: str | None = None,
                   nonnegative: dict | None = None) -> MomentSet:
    """Moments of ``blocks`` per (segment x) arm, in one aggregation query run by the engine.

    With ``unit`` a second query checks unit integrity (:func:`abkit.integrity.check_lazy`);
    ``nonnegative`` (column -> [(metric, role)]) adds the smallest value and the
    count of negative values of those columns to the aggregation.
    """
    import narwhals as nw

    what = f"'{data}'" if isinstance(data, (str, os.PathLike)) else "data"
    lf = to_lazy(data)
    keys = (*by, variant)
    derived = {d.name: d for m in metrics for d in m.derived}
    raw = list(dict.fromkeys(c for m in metrics for c in m.source_columns))
    reads = [c for m in metrics for d in m.derived for c in d.reads]   # e.g. a window's exposure date
    _check_columns(lf, (*keys, *([unit] if unit else []), *reads), raw, what)
    integrity = None
    if unit is not None:
        from .integrity import check_lazy

        with _reading(data):
            integrity = check_lazy(lf, unit, variant, raw, by)
    value_cols = list(dict.fromkeys(c for cols, _ in blocks for c in cols))
    nonnegative = dict(nonnegative or {})

    # Every value column gets a plain internal name (__v0, __v1, ...): derived
    # names such as "min(refund_amount, 400)" are not valid identifiers in
    # every engine (Spark reads the dot as a struct field).
    safe = {c: f"__v{i}" for i, c in enumerate(value_cols)}
    lf = lf.with_columns(*(nw.col(c).cast(nw.Float64) for c in raw))
    lf = lf.select(*keys, *((derived[c].expr if c in derived else nw.col(c)).cast(nw.Float64).alias(safe[c])
                            for c in value_cols))
    with _reading(data):
        shift = _shifts(lf, [safe[c] for c in value_cols])
    shift = {c: shift[safe[c]] for c in value_cols}

    aggs = [nw.len().alias("__rows")]
    for b, (cols, dropna) in enumerate(blocks):
        if dropna:
            mask = _valid(safe[cols[0]])
            for c in cols[1:]:
                mask = mask & _valid(safe[c])
            aggs.append(mask.cast(nw.Float64).sum().alias(f"__n{b}"))

            def masked(expr, mask=mask):
                return nw.when(mask).then(expr).otherwise(nw.lit(0.0))
        else:
            aggs.append(nw.len().alias(f"__n{b}"))

            def masked(expr):
                return expr
        centred = [nw.col(safe[c]) - nw.lit(shift[c]) for c in cols]
        for i in range(len(cols)):
            aggs.append(masked(centred[i]).sum().alias(f"__s{b}_{i}"))
            for j in range(i, len(cols)):
                aggs.append(masked(centred[i] * centred[j]).sum().alias(f"__p{b}_{i}_{j}"))
    # Nulls are skipped by SQL sums, so count them (a cheap COUNT per column);
    # NaN and infinity propagate into the sums and are caught from them.
    for c in value_cols:
        aggs.append(nw.col(safe[c]).count().alias(f"__count_{safe[c]}"))
    # Columns of dropna blocks: count the finite values, so that a column with
    # no value at all is named (instead of an arm "without units").
    for c in dict.fromkeys(c for cols, dropna in blocks if dropna for c in cols):
        aggs.append(_valid(safe[c]).cast(nw.Float64).sum().alias(f"__finite_{safe[c]}"))
    for c in nonnegative:
        x = nw.col(safe[c])
        aggs.append(nw.when(x.is_finite()).then(x).min().alias(f"__min_{safe[c]}"))
        aggs.append((x < 0).cast(nw.Float64).sum().alias(f"__neg_{safe[c]}"))

    out = _collect(lf.group_by(*keys).agg(*aggs), data).to_arrow().to_pydict()
    ms = _to_momentset(out, keys, blocks, shift, metrics, variant, by, safe)
    for c, users in nonnegative.items():
        mins = [v for v in out[f"__min_{safe[c]}"] if v is not None and np.isfinite(v)]
        if mins and min(mins) < 0:
            from .sources import negative_value_error

            count = int(sum(v or 0 for v in out[f"__neg_{safe[c]}"]))
            raise negative_value_error(c, float(min(mins)), count, users)
    if integrity is not None:
        ms = MomentSet(ms.blocks, ms.variant, ms.by, ms.rows, ms.missing_variant, integrity=integrity)
    return ms


def _shifts(lf, value_cols) -> dict:
    """Per-column shift: the mean of the finite values among the first rows (0 if none)."""
    head = lf.select(*value_cols).head(_SAMPLE_ROWS).collect().to_arrow()
    shift = {}
    for c in value_cols:
        x = np.asarray(head.column(c).to_numpy(zero_copy_only=False), dtype=np.float64)
        x = x[np.isfinite(x)]
        shift[c] = float(x.mean()) if x.size else 0.0
    return shift


def _label(values):
    return values[0] if len(values) == 1 else tuple(values)


def _to_momentset(out: dict, keys, blocks, shift, metrics, variant, by, alias) -> MomentSet:
    n_groups = len(out["__rows"])
    if n_groups == 0:
        raise DataError("the data has no rows (an empty table); check the query or file that produced it")
    labels, valid_rows = [], []
    missing_variant = 0
    for g in range(n_groups):
        key_values = [out[k][g] for k in keys]
        if any(v is None for v in key_values):
            missing_variant += int(out["__rows"][g])
            continue
        labels.append(_label(key_values))
        valid_rows.append(g)
    order = sorted(range(len(labels)), key=lambda i: tuple(str(x) for x in np.atleast_1d(labels[i])))
    labels = [labels[i] for i in order]
    idx = [valid_rows[i] for i in order]
    if not labels:
        raise DataError(f"the data has no rows with a value in '{variant}'; check the data and the variant column")
    rows = {lab: int(out["__rows"][g]) for lab, g in zip(labels, idx)}

    moments = {}
    total = sum(rows.values())
    for cols, dropna in blocks:
        for c in cols:
            finite = out.get(f"__finite_{alias[c]}") if dropna else None
            nulls = total - sum(int(out[f"__count_{alias[c]}"][g] or 0) for g in idx)
            if (finite is not None and sum(float(finite[g] or 0.0) for g in idx) == 0) or nulls == total:
                from .sources import entirely_missing_error

                users = [m.name for m in metrics if c in m.columns and m.dropna == dropna]
                raise entirely_missing_error(c, total, users[0] if users else c)
    for b, (cols, dropna) in enumerate(blocks):
        k = len(cols)
        G = len(labels)
        n = np.array([float(out[f"__n{b}"][g] or 0.0) for g in idx])
        S = np.zeros((G, k))
        P = np.zeros((G, k, k))
        for i in range(k):
            S[:, i] = [float(out[f"__s{b}_{i}"][g] or 0.0) for g in idx]
            for j in range(i, k):
                P[:, i, j] = P[:, j, i] = [float(out[f"__p{b}_{i}_{j}"][g] or 0.0) for g in idx]
        safe = np.where(n > 0, n, 1.0)
        d = S / safe[:, None]
        K = np.array([shift[c] for c in cols])
        mean = np.where(n[:, None] > 0, K + d, 0.0)
        com = P - S[:, :, None] * d[:, None, :]
        if not dropna:
            for i, c in enumerate(cols):
                nulls = sum(rows[lab] - int(out[f"__count_{alias[c]}"][g]) for lab, g in zip(labels, idx))
                if nulls or not (np.isfinite(S[:, i]).all() and np.isfinite(P[:, i, i]).all()):
                    users = [m.name for m in metrics if c in m.columns and not m.dropna]
                    what = f"{nulls:,} missing (null)" if nulls else "missing (NaN) or infinite"
                    raise DataError(
                        f"column '{c}' has {what} values (used by metric '{users[0] if users else c}'); "
                        "fill or remove them, or declare the metric with dropna=True to drop those units "
                        "(they are counted and reported)"
                    )
        dropped = np.array([rows[lab] for lab in labels], dtype=float) - n if dropna else np.zeros(G)
        moments[(tuple(cols), bool(dropna))] = Moments(tuple(labels), tuple(cols), n, mean, com, dropped)
    return MomentSet(moments, variant, tuple(by), rows, missing_variant)


def read_columns_lazy(data, columns: Sequence[str]):
    """Just ``columns`` of a lazy source, collected into pandas (for small results only)."""
    lf = to_lazy(data)
    what = f"'{data}'" if isinstance(data, (str, os.PathLike)) else "data"
    names = list(lf.collect_schema().names())
    for c in columns:
        if c not in names:
            raise missing_column(c, names, what=what)
    return _collect(lf.select(*columns), data).to_pandas()


def quantile_lazy(data, column: str, q: float) -> float:
    """The ``q``-quantile (linear interpolation) of the finite values of ``column``, in the engine."""
    import narwhals as nw

    lf = to_lazy(data)
    what = f"'{data}'" if isinstance(data, (str, os.PathLike)) else "data"
    _check_columns(lf, (), (column,), what)
    c = nw.col(column).cast(nw.Float64)
    out = _collect(lf.filter(~c.is_null() & c.is_finite())
                   .select(c.quantile(q, interpolation="linear").alias("q")), data).to_arrow()
    value = out.column("q")[0].as_py() if out.num_rows else None
    return float("nan") if value is None else float(value)
