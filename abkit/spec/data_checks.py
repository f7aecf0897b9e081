"""A spec against its data: the columns it names exist and hold what the analysis needs.

Checked before any notebook runs, reading the data the way the analysis
reads it (:func:`abkit.engines.to_lazy`: DuckDB over a file or a folder of
parquet files, or the table in its engine), and only what is cheap: the
schema, the distinct arms (at most 21), and one count per metric column.

* every named column exists (the closest name suggested, the available ones listed);
* metric, outcome, covariate and balance columns hold numbers (or true/false), with a hint
  when a CSV file separated by ';' holds numbers with a decimal comma;
* a metric column is not entirely missing;
* the control label is one of the variant column's values, and an A/B test's data holds more
  than one arm;
* the path itself is safe to read (:func:`abkit.data_paths.check_data_path`).

Column fields are collected from the document as written (not from the
validated models), so a missing column is reported together with every
other problem of the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data_paths import check_data_path
from ..engines import TableRef
from ..errors import AbkitError
from .problems import Problems, printable, suggest

__all__ = ["CSV_SUFFIXES", "PARQUET_SUFFIXES", "NamedColumn", "check_data", "data_columns", "named_columns"]

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")
ARMS_SHOWN = 20


@dataclass(frozen=True)
class NamedColumn:
    """One column a spec names: where (``metrics[1].covariate``), which, and whether it must hold numbers."""

    where: str
    column: str
    numeric: bool = False


# --------------------------------------------------------------------------- the columns a spec names
def _names(raw: Mapping, key: str, where: str, numeric: bool = False) -> list[NamedColumn]:
    """The column(s) under ``key``: one name, a list of names, or (covariates) [numerator, denominator] pairs."""
    value = raw.get(key)
    at = f"{where}.{key}" if where else key
    if isinstance(value, str) and value.strip():
        return [NamedColumn(at, value, numeric)]
    out = []
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, str) and item.strip():
                out.append(NamedColumn(f"{at}[{i}]", item, numeric))
            elif isinstance(item, list):
                out += [
                    NamedColumn(f"{at}[{i}][{j}]", c, numeric)
                    for j, c in enumerate(item)
                    if isinstance(c, str) and c.strip()
                ]
    return out


def _metric_columns(metrics: Any) -> list[NamedColumn]:
    out = []
    for i, m in enumerate(metrics if isinstance(metrics, list) else ()):
        if isinstance(m, Mapping):
            for key in ("column", "numerator", "denominator", "covariate", "covariates", "duration", "event"):
                out += _names(m, key, f"metrics[{i}]", numeric=True)
            for key in ("start", "end"):  # time_to_event timestamps
                out += _names(m, key, f"metrics[{i}]")
    return out


def _outcome_columns(outcome: Any, where: str) -> list[NamedColumn]:
    if isinstance(outcome, str):
        outcome = {"column": outcome}
    if not isinstance(outcome, Mapping):
        return []
    return [c for key in ("column", "numerator", "denominator") for c in _names(outcome, key, where, numeric=True)]


def named_columns(raw: Mapping, kind: str) -> list[NamedColumn]:
    """Every column the document names, with its field; read leniently from the document as written."""
    if kind in ("did", "synthetic"):
        out = [c for key in ("unit", "time", "first_treated", "treatment", "cluster") for c in _names(raw, key, "")]
        out += _outcome_columns(raw.get("outcome"), "outcome")
        secondary = raw.get("secondary")
        for i, o in enumerate(secondary if isinstance(secondary, list) else ()):
            out += _outcome_columns(o, f"secondary[{i}]")
        return out + _names(raw, "covariates", "", numeric=True)
    if kind == "power":
        return _names(raw, "variant", "") + _metric_columns(raw.get("metrics"))
    variant = raw.get("variant", "variant")
    out = [NamedColumn("variant", variant if isinstance(variant, str) and variant.strip() else "variant")]
    for key in ("date", "unit", "segments"):
        out += _names(raw, key, "")
    out += _names(raw, "balance", "", numeric=True)
    return out + _metric_columns(raw.get("metrics"))


# --------------------------------------------------------------------------- reading the data's schema
def data_columns(path: str | os.PathLike) -> list[str]:
    """Column names of a parquet file / folder or CSV file, read as the analysis reads it (schema only)."""
    from ..engines import to_lazy

    return list(to_lazy(Path(path)).collect_schema().names())


def check_data(
    data: str | TableRef,
    raw_data: Any,
    named: list[NamedColumn],
    problems: Problems,
    *,
    arm: tuple[str, Any] | None = None,
    two_arms: bool = False,
) -> None:
    """The data exists and holds every named column with usable values (see the module doc).

    ``arm``: (variant column, control label) to look up; ``two_arms``: the data must hold more than one arm.
    """
    if isinstance(data, TableRef):
        _check_table(data, raw_data, named, problems, arm, two_arms)
        return
    p = Path(data)
    if not p.exists() and not p.is_symlink():
        if raw_data != data:
            problems.add(
                "data",
                f"file '{printable(raw_data)}' (resolved to '{printable(data)}') does not exist; fix "
                "the path (a relative path is taken from the spec file's directory)",
            )
        else:
            problems.add("data", f"file '{printable(data)}' does not exist; fix the path")
        return
    name = p.name.lower()
    if not (p.is_dir() or name.endswith(PARQUET_SUFFIXES + CSV_SUFFIXES)):
        problems.add(
            "data",
            f"'{printable(raw_data)}' is not a parquet (.parquet, .pq, or a folder of them) or CSV "
            "(.csv, .csv.gz, .tsv) file; convert it or point `data` at one",
        )
        return
    try:
        check_data_path(p)
    except AbkitError as exc:
        problems.add("data", str(exc))
        return
    from ..engines import to_lazy

    what = f"data file '{printable(p.name)}'"
    try:
        lf = to_lazy(p)
        available = list(lf.collect_schema().names())
    except AbkitError as exc:  # worded by the engine: the file and the fix
        problems.add("data", str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - an engine error not worded yet: still one clear problem
        problems.add(
            "data",
            f"could not read the schema of '{printable(data)}': {type(exc).__name__}: {exc}. Is it "
            "a valid parquet/CSV file?",
        )
        return
    hint = _separator_hint(p, available)
    if _need_columns(named, available, what, problems, hint):
        _check_contents(lf, p, what, named, arm, two_arms, problems)


def _separator_hint(path: Path, available: list[str]) -> str:
    """For a CSV file read as one column named 'a;b;c': say how to read it."""
    if len(available) == 1 and ";" in available[0]:
        return (
            f" The file seems to be separated by ';' (one column named '{printable(available[0][:60])}'): export "
            "it with ',' between fields, or read it with pandas.read_csv(path, sep=';') and pass the DataFrame"
        )
    return ""


def _need_columns(
    named: list[NamedColumn], available: list[str], what: str, problems: Problems, hint: str = ""
) -> bool:
    """Record every named column missing from ``available``; True if none is."""
    listing = ", ".join(printable(c) for c in available[:40]) + (", ..." if len(available) > 40 else "")
    ok = True
    for c in named:
        if c.column not in available:
            ok = False
            problems.add(
                c.where,
                f"column '{printable(c.column)}' not found in {what}.{suggest(c.column, available)}"
                f" Available columns: {listing}{hint}",
            )
    return ok


_DECIMAL_COMMA = re.compile(r"^\s*-?\d+,\d+\s*$")


def _check_contents(lf, source, what: str, named: list[NamedColumn], arm, two_arms: bool, problems: Problems) -> None:
    """Numbers in the numeric columns, not all missing; the control label among the variant's values."""
    import narwhals as nw

    from ..engines import _collect

    try:
        schema = lf.collect_schema()
        numeric: dict[str, str] = {}
        for c in named:
            dtype = schema[c.column]
            if not c.numeric:
                continue
            if dtype.is_numeric() or dtype == nw.Boolean:
                numeric.setdefault(c.column, c.where)
            else:
                problems.add(
                    c.where,
                    f"column '{printable(c.column)}' of {what} holds {dtype}, not numbers; a metric "
                    "needs numeric (or true/false) values: convert the column or name another one"
                    + _decimal_comma_hint(lf, source, c.column),
                )

        def valid(col: str):
            x = nw.col(col)
            return ((~x.is_null() & x.is_finite()) if schema[col].is_float() else ~x.is_null()).cast(nw.Int64)

        counts = [nw.len().alias("__rows"), *(valid(col).sum().alias(f"__{i}") for i, col in enumerate(numeric))]
        if arm is None:  # one row: the rows and, per numeric column, its values
            rows = _collect(lf.select(*counts), source).to_arrow().to_pylist() if numeric else []
            values: list[Any] = []
        else:  # one row per arm (the first 21), in the same scan
            variant, control = arm
            rows = (
                _collect(
                    lf.filter(~nw.col(variant).is_null()).group_by(variant).agg(*counts).head(ARMS_SHOWN + 1), source
                )
                .to_arrow()
                .to_pylist()
            )
            values = [r[variant] for r in rows]
        if numeric and (arm is None or len(rows) <= ARMS_SHOWN):
            keys = ["__rows", *(f"__{i}" for i in range(len(numeric)))]
            total = {key: sum(r[key] or 0 for r in rows) for key in keys}
            for i, (col, where) in enumerate(numeric.items()):
                if not total[f"__{i}"]:
                    problems.add(
                        where,
                        f"column '{printable(col)}' of {what} has no value at all (all "
                        f"{total['__rows']:,} rows are missing); fix the export that wrote it, or "
                        "name another column",
                    )
    except AbkitError as exc:
        problems.add("data", str(exc))
        return
    if arm is None:
        return
    shown = ", ".join(printable(repr(v)) for v in sorted(values, key=str)[:ARMS_SHOWN])
    shown += ", ..." if len(values) > ARMS_SHOWN else ""
    if control not in values:
        if any(str(v) == str(control) for v in values):
            hint = (
                " The column holds numbers: write the label unquoted."
                if isinstance(control, str)
                else " The column holds text: quote the label."
            )
        else:
            hint = suggest(control, [str(v) for v in values])
        problems.add(
            "control",
            f"arm {printable(repr(control))} is not a value of column '{printable(variant)}' in "
            f"{what}; values there: {shown}. Set `control:` to the control arm's label.{hint}",
        )
    if two_arms and len(values) < 2:
        problems.add(
            "variant",
            f"column '{printable(variant)}' of {what} holds one arm only ({shown or 'no value'}); "
            "an A/B test needs the control and at least one treatment arm. Check the export (did "
            "a filter keep one arm?) or `variant:`",
        )


def _decimal_comma_hint(lf, source, column: str) -> str:
    """For text such as '1,5' in a CSV file separated by ';': how to read it."""
    name = str(source).lower()
    if not name.endswith(CSV_SUFFIXES):
        return ""
    try:
        import narwhals as nw

        sample = (
            lf.select(nw.col(column))
            .filter(~nw.col(column).is_null())
            .head(20)
            .collect()
            .to_arrow()
            .column(0)
            .to_pylist()
        )
        with open(source, "rb") as fh:
            header = fh.readline(4096).decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - a hint, never a reason to fail
        return ""
    if ";" in header and sample and all(isinstance(v, str) and _DECIMAL_COMMA.match(v) for v in sample):
        return (
            f". The file is separated by ';' and writes numbers with a decimal comma ({printable(sample[0])}), "
            "which is read as text: export it with a decimal point, or read it with "
            "pandas.read_csv(path, sep=';', decimal=',') and pass the DataFrame"
        )
    return ""


def _check_table(ref: TableRef, raw_data: Any, named, problems: Problems, arm, two_arms: bool) -> None:
    """The table exists and has the named columns. A DuckDB file is opened (read-only, schema only); a
    Spark table is checked only in a running SparkSession (the analysis checks it otherwise)."""
    if ref.engine == "duckdb":
        raw_db = raw_data.get("database") if isinstance(raw_data, Mapping) else None
        database = ref.database
        if database is None:  # the spec model requires it for duckdb
            problems.add("data.database", "required key missing; add `database:` (the DuckDB database file)")
            return
        if not Path(database).exists():
            shown = (
                f"'{printable(raw_db)}' (resolved to '{printable(database)}')"
                if raw_db != database
                else f"'{printable(database)}'"
            )
            problems.add(
                "data.database",
                f"DuckDB database file {shown} does not exist; fix the path (a relative "
                "path is taken from the spec file's directory)",
            )
            return
        try:
            check_data_path(database)
        except AbkitError as exc:
            problems.add("data.database", str(exc))
            return
    if ref.engine == "spark":
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            problems.add("data.engine", "engine 'spark' needs pyspark: pip install 'abkit[spark]' (and Java 17)")
            return
        if SparkSession.getActiveSession() is None:
            return
    try:
        from ..engines import to_lazy

        lf = to_lazy(ref.open())
        available = list(lf.collect_schema().names())
    except AbkitError as exc:
        problems.add("data.database" if str(exc).startswith("could not open") else "data.table", str(exc))
        return
    if _need_columns(named, available, ref.label, problems):
        _check_contents(lf, ref.label, ref.label, named, arm, two_arms, problems)
