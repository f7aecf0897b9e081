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
    S_i    = sum (x_i - K_i)                 for every column
    P_ij   = sum (x_i - K_i)(x_j - K_j)      for the declared pairs only

with shifts ``K`` taken from the first rows of the data (the "shifted
data" algorithm: Chan, Golub and LeVeque 1983, "Algorithms for computing
the sample variance: analysis and recommendations"). The pairs are the
union of the metrics' :attr:`abkit.Metric.covariance_blocks` (a ratio with
CUPED: the 10 pairs of its 4 columns), each column is centred once however
many metrics read it, so the query grows linearly with the number of
metrics. Then the moments hold the shift ``K_i``, the offset
``S_i / n = mean_i - K_i`` and ``C_ij = P_ij - S_i S_j / n``; because the
shifts are close to the means, nothing loses digits even for refund totals
or timestamps around 1e12, and the result equals the in-memory path to
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
from typing import TYPE_CHECKING

import numpy as np

from .columns import entirely_missing_error, negative_value_error
from .data_paths import check_data_path
from .errors import DataError, missing_column
from .integrity import check_lazy
from .moments import Moments, MomentSet, declared_pairs

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "TableRef",
    "aggregate_lazy",
    "frame_relation",
    "is_lazy",
    "quantile_lazy",
    "read_columns_lazy",
    "spark_session",
    "table",
    "to_lazy",
]

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
            hint = (
                "a parquet or CSV file is not a database: name it as the data itself"
                if str(database).lower().endswith((".parquet", ".pq", ".csv", ".csv.gz"))
                else "is it a DuckDB database file, and not open for writing in another process?"
            )
            raise DataError(
                f"could not open DuckDB database '{database}': {str(exc).splitlines()[0]} ({hint})"
            ) from None
        try:
            return con.table(name)
        except duckdb.Error:
            rows = con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables ORDER BY 1, 2"
            ).fetchall()
            names = [t if s == "main" else f"{s}.{t}" for s, t in rows]
            listing = ", ".join(names[:40]) or "none"
            raise DataError(
                f"DuckDB table '{name}' not found in {database or 'the in-memory database'}; tables there: {listing}"
            ) from None
    if engine == "spark":
        if session is None:
            session = spark_session(conf)
        try:
            return session.table(name)
        except Exception as exc:  # AnalysisException: TABLE_OR_VIEW_NOT_FOUND
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(
                f"Spark table '{name}' not found: {first}. Check the name (db.table) and that "
                "the session's catalog is the warehouse's (spark.sql.catalogImplementation, "
                "spark.sql.warehouse.dir)"
            ) from None
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
    database: str | None = None  # DuckDB database file (absolute path)
    conf: tuple = ()  # Spark settings as ((key, value), ...), used when no session is running

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
        out: dict[str, object] = {"engine": self.engine, "table": self.table}
        if self.database is not None:
            out["database"] = self.database
        if self.conf:
            out["conf"] = dict(self.conf)
        return out

    def columns(self) -> list[str]:
        """Column names, from the table's schema only."""
        return list(to_lazy(self.open()).collect_schema().names())


_FRAMES_DB: list[duckdb.DuckDBPyConnection] = []


def _frames_database():
    """The in-memory DuckDB database that scans in-memory frames and data files (created on first use; each
    relation gets its own cursor, which is cheap, where a new database per read cost ~20 ms, measured)."""
    if not _FRAMES_DB:
        import duckdb

        _FRAMES_DB.append(duckdb.connect(":memory:"))
    return _FRAMES_DB[0]


def frame_relation(frame, columns: Sequence[str]):
    """A DuckDB relation over ``columns`` of an in-memory pandas DataFrame or pyarrow Table / RecordBatch.

    DuckDB scans pandas' numpy buffers and Arrow buffers in place (no copy)
    and aggregates them on every core; :func:`abkit.sources.aggregate` sends
    large frames here (see ``abkit.sources.ENGINE_MIN_ROWS``).
    """
    import pandas as pd
    import pyarrow as pa

    con = _frames_database().cursor()  # a cursor of one in-memory database: ~10 us, where connect() takes ~50 ms
    if isinstance(frame, pd.DataFrame):
        return con.from_df(frame[list(columns)])
    if isinstance(frame, pa.RecordBatch):
        frame = pa.Table.from_batches([frame])
    return con.from_arrow(frame.select(list(columns)))  # the relation keeps its connection alive


def _read_path(path: Path):
    """A DuckDB relation over a parquet file / directory / glob or a CSV file."""
    import duckdb

    text = str(path)
    has_glob = any(ch in text for ch in "*?[")
    if not has_glob and not path.exists():
        raise DataError(
            f"data file '{path}' does not exist; check the path (relative paths are taken from {Path.cwd()})"
        )
    if not has_glob:
        check_data_path(path)  # no device or pipe; a folder: no home directory, huge tree or symlink loop
    con = _frames_database().cursor()
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
        raise DataError(
            f"data file '{path}' has no rows (only a header or an empty schema); check the export that wrote it"
        )
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


def _check_columns(lf, keys: Sequence[str], raw: Sequence[str], what: str):
    """Raise when a column is missing or ``raw`` has a column that is not numeric; the frame's schema."""
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
    return schema


def _valid(col: str):
    import narwhals as nw

    return ~nw.col(col).is_null() & nw.col(col).is_finite()


def aggregate_lazy(
    data,
    metrics,
    variant: str,
    by: tuple[str, ...],
    blocks,
    *,
    unit: str | None = None,
    nonnegative: dict | None = None,
) -> MomentSet:
    """Moments of ``blocks`` per (segment x) arm, in one aggregation query run by the engine.

    ``blocks`` is the plan ``[(columns, dropna, covariance blocks)]`` of
    :func:`abkit.sources.aggregate`: only the declared column pairs are
    multiplied. ``nonnegative`` (column -> [(metric, role)]) names the columns
    whose smallest value is checked. With ``unit`` a second query checks unit
    integrity (:func:`abkit.integrity.check_lazy`).

    The one query returns, per group, the count, the shifted sums and
    products, the number of rows with a null in a column that must not have
    one, and the smallest finite value of the columns that must not be
    negative. Only when these show a problem does a second query count the
    nulls, finite and negative values column by column, to name the column.
    """
    import narwhals as nw

    what = f"'{data}'" if isinstance(data, (str, os.PathLike)) else "data"
    lf = to_lazy(data)
    keys = (*by, variant)
    derived = {d.name: d for m in metrics for d in m.derived}
    raw = list(dict.fromkeys(c for m in metrics for c in m.source_columns))
    reads = [c for m in metrics for d in m.derived for c in d.reads]  # e.g. a window's exposure date
    schema = _check_columns(lf, (*keys, *([unit] if unit else []), *reads), raw, what)
    integrity = None
    if unit is not None:
        with _reading(data):
            integrity = check_lazy(lf, unit, variant, raw, by)
    value_cols = list(dict.fromkeys(c for cols, _, _ in blocks for c in cols))
    nonnegative = dict(nonnegative or {})

    # Every value column gets a plain internal name (__v0, __v1, ...): derived
    # names such as "min(refund_amount, 400)" are not valid identifiers in
    # every engine (Spark reads the dot as a struct field).
    safe = {c: f"__v{i}" for i, c in enumerate(value_cols)}
    # An integer column that must not be negative has its smallest value taken as an integer: the same
    # number, and cheaper than over its float copy (DuckDB, 10M rows x 10 columns: 0.03 s of 0.5 s, measured).
    as_read = {c: f"__i{i}" for i, c in enumerate(nonnegative) if c not in derived and schema[c].is_integer()}
    extra = [c for c in dict.fromkeys(reads) if c not in raw and c not in keys]  # read by derived columns, as is
    lf = lf.select(
        *keys,
        *(nw.col(c).cast(nw.Float64) for c in raw),
        *(nw.col(c) for c in extra),
        *(nw.col(c).alias(a) for c, a in as_read.items()),
    )
    lf = lf.select(
        *keys,
        *((derived[c].expr if c in derived else nw.col(c)).cast(nw.Float64).alias(safe[c]) for c in value_cols),
        *(nw.col(a) for a in as_read.values()),
    )
    with _reading(data):
        shift = _shifts(lf, [safe[c] for c in value_cols])
    shift = {c: shift[safe[c]] for c in value_cols}

    # The reduction: per group the count, the sum of each centred column and
    # the sum of the product of two centred columns for the declared pairs
    # alone. A centred column is ``x - K`` (masked to 0 outside a dropna
    # block's complete rows); it is written inside each sum (terms of
    # :func:`_reduce`), which engines evaluate faster than a projection of
    # hundreds of centred columns (Spark local mode: 3x faster, measured).
    stage = [nw.col(k) for k in keys] + [nw.col(safe[c]) for c in value_cols] + [nw.col(a) for a in as_read.values()]
    reductions: list[tuple] = [("__rows", ("len",))]
    pairs_of = []
    for b, (cols, dropna, cov_blocks) in enumerate(blocks):
        pairs = declared_pairs(cols, cov_blocks)
        pairs_of.append(pairs)
        centred: list[tuple] = [("sub", ("col", safe[c]), shift[c]) if shift[c] else ("col", safe[c]) for c in cols]
        if dropna:
            mask = _valid(safe[cols[0]])
            for c in cols[1:]:
                mask = mask & _valid(safe[c])
            stage.append(mask.cast(nw.Float64).alias(f"__ok{b}"))
            reductions.append((f"__n{b}", ("sum", ("col", f"__ok{b}"))))
            centred = [("mask", f"__ok{b}", term) for term in centred]
        else:
            reductions.append((f"__n{b}", ("len",)))
        # metric by metric: its columns' sums, then the pairs no earlier metric declared
        position = {c: i for i, c in enumerate(cols)}
        declared = set(pairs)
        done: set[tuple[object, int]] = set()
        for clique in [*(cov_blocks or ()), cols]:
            idx = sorted({position[c] for c in clique})
            for i in idx:
                if ("s", i) not in done:
                    done.add(("s", i))
                    reductions.append((f"__s{b}_{i}", ("sum", centred[i])))
            for x, i in enumerate(idx):
                for j in idx[x:]:
                    if (i, j) in declared and (i, j) not in done:
                        done.add((i, j))
                        reductions.append((f"__p{b}_{i}_{j}", ("sum", ("mul", centred[i], centred[j]))))
    # Nulls are skipped by sums, so each column that must have a value gets its count of values (a null
    # there: fewer values than rows); NaN and infinity propagate into the sums and are caught from them.
    # The columns that must not be negative get their smallest value (nulls skipped, NaN sorts above every
    # number): only when one is negative does the second query look closer (-inf in a dropped row is fine).
    # Both are plain aggregates, not a per-row flag or least() over every column: on 10M rows x 14 columns
    # those row-wise expressions cost DuckDB half again the time of the sums (0.71 s against 0.45 s,
    # measured; 0.53 s as aggregates), and widened Spark's generated row code past its JIT limit.
    strict = list(dict.fromkeys(c for cols, dropna, _ in blocks if not dropna for c in cols))
    reductions += [(f"__values_{safe[c]}", ("count", ("col", safe[c]))) for c in strict]
    reductions += [(f"__min_{safe[c]}", ("min", ("col", as_read.get(c, safe[c])))) for c in nonnegative]

    out = _reduce(lf.select(*stage), keys, reductions, data)
    groups = _groups(out, keys, variant)
    idx = groups[1]
    n_groups = len(out["__rows"])
    least = [out[f"__min_{safe[c]}"][g] for c in nonnegative for g in range(n_groups)]
    suspicious = (
        any(out[f"__values_{safe[c]}"][g] < out["__rows"][g] for c in strict for g in idx)
        or any(dropna and sum(out[f"__n{b}"][g] or 0 for g in idx) == 0 for b, (_, dropna, _) in enumerate(blocks))
        or any(v is not None and v < 0 for v in least)
    )
    nulls = dict.fromkeys(value_cols, 0)
    if suspicious:
        nulls = _column_problems(lf, keys, blocks, value_cols, safe, nonnegative, metrics, data)
    ms = _to_momentset(out, groups, blocks, pairs_of, shift, metrics, variant, by, nulls)
    if integrity is not None:
        ms = MomentSet(ms.blocks, ms.variant, ms.by, ms.rows, ms.missing_variant, integrity=integrity)
    return ms


def _reduce(stage, keys: Sequence[str], reductions: Sequence[tuple], source) -> dict:
    """Group ``stage`` by ``keys`` and compute ``reductions``; a dict of columns (one row per group).

    A reduction is ``(alias, term)`` with ``term`` one of ``("len",)``,
    ``("sum", x)``, ``("min", x)``; ``x`` is ``("col", name)`` (a column of
    ``stage``), ``("sub", x, K)`` (``x - K``), ``("mask", name, x)``
    (``x`` where column ``name`` is 1, else 0) or ``("mul", x, y)``. The
    first reduction must be ``("__rows", ("len",))``. DuckDB and Spark
    receive them as one SQL statement over the stage (building hundreds of
    aggregate expressions one by one through their Python APIs costs
    seconds, growing with the square of their number); other engines go
    through narwhals expressions. Spark runs it with generated code small
    enough for the JVM to compile (:func:`_jit_sized_codegen`).
    """
    import narwhals as nw

    native = stage.to_native()
    module = _module_of(native)
    if module in ("duckdb", "pyspark"):
        quote = '"' if module == "duckdb" else "`"

        def name(c):
            text = quote + str(c).replace(quote, quote * 2) + quote
            return text if module == "duckdb" else text.replace("{", "{{").replace("}", "}}")

        group = ", ".join(name(k) for k in keys)
        select = ", ".join([group, *(f"{_sql_term(term, name)} AS {name(alias)}" for alias, term in reductions)])
        if module == "duckdb":
            # aggregate(), not query(): query() re-reads the statement text in Python (0.02 s for these
            # hundreds of terms, measured)
            result = native.aggregate(select, group)
        else:
            result = native.sparkSession.sql(f"SELECT {select} FROM {{stage}} GROUP BY {group}", stage=native)
            with _jit_sized_codegen(native.sparkSession):
                return _collect(nw.from_native(result).lazy(), source).to_arrow().to_pydict()
        frame = nw.from_native(result)
    else:
        frame = stage.group_by(*keys).agg(*(_nw_term(term).alias(alias) for alias, term in reductions))
    return _collect(frame.lazy(), source).to_arrow().to_pydict()


_HUGE_METHOD_KEY = "spark.sql.codegen.hugeMethodLimit"
_HOTSPOT_HUGE_METHOD_BYTES = 8000


@contextmanager
def _jit_sized_codegen(session):
    """Run a Spark query with whole-stage code generation only where the JIT compiles the generated code.

    The HotSpot JVM does not compile a method of more than 8,000 bytes of
    bytecode (``-XX:+DontCompileHugeMethods``, the default): such a method
    runs in the bytecode interpreter, tens of times slower. Spark keeps a
    whole-stage generated method up to ``spark.sql.codegen.hugeMethodLimit``
    (default 65,535 bytes, the class-file limit) and its documentation
    advises 8,000 on HotSpot. The push-down's one aggregation statement has
    hundreds of sums (and had, in the same stage, an any-null flag and a
    ``least`` over every column): past about 20 metrics its generated method
    passed 8 KB, and 40 metrics took 13x the CPU time of 5 (issue 16.1,
    benchmarks/README.md; 5.7x with the limit). Above the limit Spark runs
    the stage through its per-operator generated code instead, whose
    methods are split small: linear, and the same sums of the same rows.

    The session's setting is lowered to 8,000 for this query only (a lower
    setting of the user's is kept) and restored afterwards, unset if it was
    unset.
    """
    try:
        explicit = session.conf.get(_HUGE_METHOD_KEY, None)
        current = int(session.conf.get(_HUGE_METHOD_KEY))
    except Exception:  # a session that does not expose the setting: run as configured
        yield
        return
    if current <= _HOTSPOT_HUGE_METHOD_BYTES:
        yield
        return
    session.conf.set(_HUGE_METHOD_KEY, str(_HOTSPOT_HUGE_METHOD_BYTES))
    try:
        yield
    finally:
        if explicit is None:
            session.conf.unset(_HUGE_METHOD_KEY)
        else:
            session.conf.set(_HUGE_METHOD_KEY, explicit)


def _sql_term(term, name) -> str:
    kind = term[0]
    if kind == "col":
        return name(term[1])
    if kind == "sub":
        return f"({_sql_term(term[1], name)} - CAST('{float(term[2])!r}' AS DOUBLE))"
    if kind == "mask":
        return f"CASE WHEN {name(term[1])} > 0 THEN {_sql_term(term[2], name)} ELSE CAST(0 AS DOUBLE) END"
    if kind == "mul":
        return f"({_sql_term(term[1], name)} * {_sql_term(term[2], name)})"
    if kind == "len":
        return "count(*)"
    return f"{kind}({_sql_term(term[1], name)})"  # sum, min, count (the non-null values)


def _nw_term(term):
    import narwhals as nw

    kind = term[0]
    if kind == "col":
        return nw.col(term[1])
    if kind == "sub":
        return _nw_term(term[1]) - nw.lit(float(term[2]))
    if kind == "mask":
        return nw.when(nw.col(term[1]) > 0).then(_nw_term(term[2])).otherwise(nw.lit(0.0))
    if kind == "mul":
        return _nw_term(term[1]) * _nw_term(term[2])
    if kind == "len":
        return nw.len()
    return getattr(_nw_term(term[1]), kind)()  # sum, min, count (the non-null values)


def _column_problems(lf, keys, blocks, value_cols, safe, nonnegative, metrics, source) -> dict:
    """Column by column: raise the error that names a column with no value or a negative value.

    Run only when the main query saw a null, an empty dropna block or a
    negative value. Returns the nulls per column (over the rows with an arm)
    for the missing-value message of :func:`_block_from_sums`.
    """
    import narwhals as nw

    reductions: list[tuple] = [("__rows", ("len",))]
    stage = [nw.col(k) for k in keys]
    for c in value_cols:
        x = nw.col(safe[c])
        stage += [
            x.is_null().cast(nw.Float64).alias(f"__null_{safe[c]}"),
            (~x.is_null() & x.is_finite()).cast(nw.Float64).alias(f"__finite_{safe[c]}"),
        ]
        reductions += [
            (f"__null_{safe[c]}", ("sum", ("col", f"__null_{safe[c]}"))),
            (f"__finite_{safe[c]}", ("sum", ("col", f"__finite_{safe[c]}"))),
        ]
    for c in nonnegative:
        x = nw.col(safe[c])
        stage += [
            nw.when(x.is_finite()).then(x).alias(f"__fin_{safe[c]}"),
            (x.is_finite() & (x < 0)).cast(nw.Float64).alias(f"__neg_{safe[c]}"),
        ]
        reductions += [
            (f"__min_{safe[c]}", ("min", ("col", f"__fin_{safe[c]}"))),
            (f"__neg_{safe[c]}", ("sum", ("col", f"__neg_{safe[c]}"))),
        ]
    out = _reduce(lf.select(*stage), keys, reductions, source)
    valid = [g for g in range(len(out["__rows"])) if all(out[k][g] is not None for k in keys)]
    total = sum(int(out["__rows"][g]) for g in valid)

    def over(name, groups=valid):
        return sum(float(out[name][g] or 0.0) for g in groups)

    for cols, dropna, _ in blocks:
        for c in cols:
            if (dropna and over(f"__finite_{safe[c]}") == 0) or over(f"__null_{safe[c]}") == total:
                users = [m.name for m in metrics if c in m.columns and m.dropna == dropna]
                raise entirely_missing_error(c, total, users[0] if users else c)
    everything = range(len(out["__rows"]))
    for c, users in nonnegative.items():
        mins = [v for v in out[f"__min_{safe[c]}"] if v is not None and np.isfinite(v)]
        if mins and min(mins) < 0:
            raise negative_value_error(c, float(min(mins)), int(over(f"__neg_{safe[c]}", everything)), users)
    return {c: int(over(f"__null_{safe[c]}")) for c in value_cols}


def _shifts(lf, value_cols) -> dict:
    """Per-column shift K: the mean of the finite values among the first rows; 0 where centring buys nothing.

    Sums of ``(x - K)(y - L)`` keep the digits that raw sums of ``x y`` lose
    to cancellation when a mean is large against the spread: the variance
    from raw sums loses about ``log10(1 + mean^2 / var)`` digits. Where the
    first rows' mean is within one standard deviation of zero (0/1 flags up to a rate of 1/2,
    counts such as refunds per buyer, skewed amounts) that is under a third
    of a digit, so K = 0 and the engine skips the subtraction in every sum
    (DuckDB, 10M rows x 14 columns: a few hundredths of a second of ~0.5 s).
    """
    head = lf.select(*value_cols).head(_SAMPLE_ROWS).collect().to_arrow()
    shift = {}
    for c in value_cols:
        x = np.asarray(head.column(c).to_numpy(zero_copy_only=False), dtype=np.float64)
        x = x[np.isfinite(x)]
        shift[c] = float(x.mean()) if x.size and x.mean() ** 2 > x.var() else 0.0
    return shift


def _label(values):
    return values[0] if len(values) == 1 else tuple(values)


def _groups(out: dict, keys, variant) -> tuple:
    """``(labels, rows of out, rows per label, rows with a missing key)``, labels sorted by their text."""
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
    return labels, idx, rows, missing_variant


def _to_momentset(out: dict, groups, blocks, pairs_of, shift, metrics, variant, by, nulls) -> MomentSet:
    labels, idx, rows, missing_variant = groups

    def column(name):
        """One aggregate over the valid groups, nulls (sums over no row) as 0."""
        values = out[name]
        return np.array([values[g] if values[g] is not None else 0.0 for g in idx], dtype=np.float64)

    moments = {}
    with np.errstate(invalid="ignore", over="ignore"):  # NaN / inf in the sums are reported just below
        for b, ((cols, dropna, _), pairs) in enumerate(zip(blocks, pairs_of)):
            moments[(tuple(cols), bool(dropna))] = _block_from_sums(
                column, b, cols, dropna, pairs, shift, labels, rows, nulls, metrics
            )
    return MomentSet(moments, variant, tuple(by), rows, missing_variant)


def _block_from_sums(column, b, cols, dropna, pairs, shift, labels, rows, nulls, metrics) -> Moments:
    """One block's :class:`Moments` from the shifted sums of the query (module doc)."""
    k = len(cols)
    G = len(labels)
    n = column(f"__n{b}")
    S = np.column_stack([column(f"__s{b}_{i}") for i in range(k)]) if k else np.zeros((G, 0))
    P = np.column_stack([column(f"__p{b}_{i}_{j}") for i, j in pairs]) if pairs else np.zeros((G, 0))
    safe = np.where(n > 0, n, 1.0)
    d = S / safe[:, None]
    ii = np.array([p[0] for p in pairs], dtype=np.intp)
    jj = np.array([p[1] for p in pairs], dtype=np.intp)
    pair_comoment = P - S[:, ii] * d[:, jj]
    offset = np.where(n[:, None] > 0, d, 0.0)
    K = np.array([shift[c] for c in cols])
    if not dropna:
        diagonal = {i: x for x, (i, j) in enumerate(pairs) if i == j}
        for i, c in enumerate(cols):
            missing = nulls.get(c, 0)
            if missing or not (np.isfinite(S[:, i]).all() and np.isfinite(P[:, diagonal[i]]).all()):
                users = [m.name for m in metrics if c in m.columns and not m.dropna]
                what = f"{missing:,} missing (null)" if missing else "missing (NaN) or infinite"
                raise DataError(
                    f"column '{c}' has {what} values (used by metric '{users[0] if users else c}'); "
                    "fill or remove them, or declare the metric with dropna=True to drop those units "
                    "(they are counted and reported)"
                )
    dropped = np.array([rows[lab] for lab in labels], dtype=float) - n if dropna else np.zeros(G)
    return Moments(
        tuple(labels), tuple(cols), n, dropped=dropped, shift=K, offset=offset, pairs=pairs, pair_comoment=pair_comoment
    )


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
    out = _collect(
        lf.filter(~c.is_null() & c.is_finite()).select(c.quantile(q, interpolation="linear").alias("q")), data
    ).to_arrow()
    value = out.column("q")[0].as_py() if out.num_rows else None
    return float("nan") if value is None else float(value)
