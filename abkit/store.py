"""The results store: every readout's numbers kept in one DuckDB file next to the pages.

``abkit readout ... --out reports`` appends the results of each experiment it
reads out to ``reports/abkit.duckdb`` (:data:`STORE_NAME`), table ``readouts``
(:data:`TABLE`): one row per experiment x metric x arm x readout run, with
the columns of :data:`COLUMNS`. History is kept (a rerun appends; nothing is
updated or deleted); the view ``latest`` (:data:`LATEST_VIEW`) holds the rows
of the most recent readout of each experiment (``slug``, the experiment's
folder), whichever process wrote it.

**Concurrent writers.** DuckDB lets one process at a time open a file for
writing. :func:`record` opens the file, writes all its rows in one
transaction (all or nothing) and closes it again, so the lock is held for
milliseconds; a process that finds the file locked waits and retries, with
exponential backoff (20 ms doubling to 250 ms, jittered so waiting processes do
not retry in step), until ``timeout`` (default :data:`DEFAULT_TIMEOUT`, 5
minutes). Threads of one process take turns through a per-file lock first.
When the lock cannot be had in time, :func:`record` raises
:class:`abkit.errors.StoreError` naming the process that holds it: never
a silent skip. Readers (:func:`load`) wait the same way.

**Schema versions.** The table ``abkit_schema`` records the schema version
(:data:`SCHEMA_VERSION`) each abkit that wrote the file migrated it to. A
store written by an older abkit is upgraded on the next write by adding the
columns it lacks (old rows get NULL there); a store written by a newer
abkit is read (unknown columns kept) but not written to.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import random
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import DataError, StoreError

if TYPE_CHECKING:  # pandas is imported where used: `abkit readout` starts its kernel before it needs pandas
    import pandas as pd

__all__ = [
    "STORE_NAME",
    "TABLE",
    "LATEST_VIEW",
    "SCHEMA_VERSION",
    "COLUMNS",
    "COLUMN_DOCS",
    "DEFAULT_TIMEOUT",
    "store_path",
    "record",
    "load",
    "latest",
    "latest_rows",
    "history",
    "new_run_id",
]

STORE_NAME = "abkit.duckdb"
TABLE = "readouts"
LATEST_VIEW = "latest"
SCHEMA_TABLE = "abkit_schema"
SCHEMA_VERSION = 2  # 1: the first table; 2: data_fingerprint, change_scale, p_label
DEFAULT_TIMEOUT = 300.0

# name, DuckDB type, meaning. Order = column order of the table.
_SCHEMA: tuple[tuple[str, str, str], ...] = (
    ("record_seq", "BIGINT", "order of the write into the store (1, 2, ...); set by record()"),
    ("position", "INTEGER", "the row's position among the rows written together (keeps the spec's metric order)"),
    ("run_id", "VARCHAR", "one readout of one experiment (all its rows share it)"),
    ("run_time", "TIMESTAMP", "when the readout ran (UTC)"),
    ("recorded_at", "TIMESTAMP", "when the rows were written (UTC); set by record()"),
    ("abkit_version", "VARCHAR", "the abkit that produced the numbers"),
    ("experiment", "VARCHAR", "experiment name (the spec's name)"),
    ("slug", "VARCHAR", "the experiment's folder under the output folder: its identity in the store"),
    ("kind", "VARCHAR", "ab | did | power"),
    ("owner", "VARCHAR", "team or person owning the experiment"),
    ("spec_path", "VARCHAR", "the spec file read out"),
    ("data_start", "DATE", "first day of the data window"),
    ("data_end", "DATE", "last day of the data window"),
    ("data_fingerprint", "VARCHAR", "fingerprint of the data snapshot the readout was computed from (abkit.snapshot)"),
    ("status", "VARCHAR", "ok | failed"),
    ("error", "VARCHAR", "one-line error of a failed readout"),
    ("metric", "VARCHAR", "metric (or DiD outcome) name"),
    ("variant", "VARCHAR", "treatment arm ('rollout' for DiD, 'plan' for a power plan)"),
    ("control", "VARCHAR", "control arm"),
    ("is_primary", "BOOLEAN", "the metric the verdict rests on"),
    ("is_guardrail", "BOOLEAN", "a guardrail metric"),
    ("better", "VARCHAR", "higher | lower: the metric's good direction"),
    ("margin", "DOUBLE", "guardrail non-inferiority margin (relative)"),
    ("control_value", "DOUBLE", "the metric in control (DiD: counterfactual baseline)"),
    ("treatment_value", "DOUBLE", "the metric in the treatment arm"),
    ("effect", "DOUBLE", "absolute effect, treatment - control (DiD: on the analysis scale)"),
    ("ci_lower", "DOUBLE", "lower bound of the effect's interval"),
    ("ci_upper", "DOUBLE", "upper bound of the effect's interval"),
    ("se", "DOUBLE", "standard error of the effect"),
    ("rel_effect", "DOUBLE", "relative effect (0.02 = +2%)"),
    ("rel_ci_lower", "DOUBLE", "lower bound of the relative effect's interval"),
    ("rel_ci_upper", "DOUBLE", "upper bound of the relative effect's interval"),
    ("rel_se", "DOUBLE", "standard error of the relative effect (what shrinkage weighs)"),
    (
        "change_scale",
        "VARCHAR",
        "how the readout reads the change: relative | relative to size | absolute | points "
        "(abkit.formatting.change_scale)",
    ),
    ("p_value", "DOUBLE", "p-value"),
    ("p_value_adjusted", "DOUBLE", "multiplicity-adjusted p-value (when a correction was asked for)"),
    ("p_label", "VARCHAR", "what the p-value the decision used is: p, Holm-adjusted p, always-valid p..."),
    ("alpha", "DOUBLE", "significance level; intervals are 1 - alpha"),
    ("sequential", "BOOLEAN", "intervals and p-values are always valid (sequential test)"),
    ("n_control", "BIGINT", "units in control"),
    ("n_treatment", "BIGINT", "units in the treatment arm"),
    ("unit", "VARCHAR", "what a unit is (the randomization-unit column)"),
    ("method", "VARCHAR", "estimation method"),
    ("verdict", "VARCHAR", "the arm's verdict label: Ship, Do not ship, Inconclusive, Invalid, Worked, ..."),
    ("verdict_note", "VARCHAR", "the label's parenthesis, e.g. 'need 9 more days'"),
    ("headline", "VARCHAR", "the verdict's one-sentence headline"),
    ("impact_volume", "DOUBLE", "yearly volume behind the primary metric (business impact)"),
    ("impact_per", "VARCHAR", "what the volume counts (orders, buyers)"),
    ("impact_unit", "VARCHAR", "what the metric counts per volume unit (contacts, refunds)"),
    ("impact_value", "DOUBLE", "money per impact unit"),
    ("impact_currency", "VARCHAR", "currency of impact_value"),
)
COLUMNS: tuple[str, ...] = tuple(c for c, _, _ in _SCHEMA)
COLUMN_DOCS: dict[str, str] = {c: doc for c, _, doc in _SCHEMA}
_TYPES: dict[str, str] = {c: t for c, t, _ in _SCHEMA}
_REQUIRED = ("run_id", "run_time", "experiment", "slug", "kind", "status")
_SET_BY_STORE = ("record_seq", "position", "recorded_at")

_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


# --------------------------------------------------------------------------- paths and locks
def store_path(target: str | os.PathLike) -> Path:
    """``target/abkit.duckdb`` for a folder, ``target`` itself for a ``.duckdb`` file (existing or not)."""
    p = Path(target)
    if p.suffix.lower() in (".duckdb", ".db") or p.is_file():
        return p
    return p / STORE_NAME


def new_run_id() -> str:
    """A fresh readout-run id (UUID4, 32 hex digits)."""
    return uuid.uuid4().hex


def _process_lock(path: Path) -> threading.Lock:
    key = str(path.resolve())
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.Lock())


def _is_lock_conflict(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("could not set" in text or "conflicting" in text)


def _connect(path: Path, *, read_only: bool, timeout: float):
    """Open ``path``, waiting (backoff with jitter) while another process holds its lock; StoreError after
    ``timeout``."""
    import duckdb

    deadline = time.monotonic() + float(timeout)
    delay, attempts = 0.02, 0
    jitter = random.Random()  # not a statistical draw: only spreads the retries of waiting processes
    while True:
        attempts += 1
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.ConnectionException as exc:
            # this process already has the file open with the other configuration (an analyst's session)
            if read_only and "different configuration" in str(exc):
                return duckdb.connect(str(path), read_only=False)
            raise StoreError(f"cannot open the results store '{path}': {exc}") from exc
        except duckdb.IOException as exc:
            if not _is_lock_conflict(exc):
                raise StoreError(f"cannot open the results store '{path}': {exc}") from exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                holder = str(exc).split("Conflicting lock is held in", 1)[-1].split(". See also")[0].strip()
                raise StoreError(
                    f"the results store '{path}' stayed locked for {timeout:g} s ({attempts} attempts); the lock "
                    f"is held by {holder or 'another process'}. A process keeps the file open (a long-running "
                    "write, or a DuckDB session an analyst left open on it): close it and rerun, or pass a longer "
                    "timeout. Nothing was written by this call."
                ) from exc
            time.sleep(min(delay * (0.5 + jitter.random()), remaining))  # the last try is at the deadline
            delay = min(delay * 2.0, 0.25)


# --------------------------------------------------------------------------- schema
def _table_columns(con, name: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND schema_name = 'main' ORDER BY column_index",
        [name],
    ).fetchall()
    return [r[0] for r in rows]


def _stored_version(con) -> int | None:
    if not _table_columns(con, SCHEMA_TABLE):
        return None
    row = con.execute(f"SELECT max(version) FROM {SCHEMA_TABLE}").fetchall()[0]
    return int(row[0]) if row and row[0] is not None else None


def _create_view(con) -> None:
    con.execute(
        f"CREATE OR REPLACE VIEW {LATEST_VIEW} AS SELECT * EXCLUDE (_rank) FROM ("
        f"SELECT *, dense_rank() OVER (PARTITION BY slug ORDER BY record_seq DESC, run_time DESC, run_id DESC) "
        f"AS _rank FROM {TABLE}) WHERE _rank = 1"
    )


def _ensure_schema(con, path: Path) -> None:
    """Create the table, schema record and view, or bring an older store up to :data:`SCHEMA_VERSION`."""
    from . import __version__

    version = _stored_version(con)
    if version is not None and version > SCHEMA_VERSION:
        raise StoreError(
            f"the results store '{path}' has schema version {version}, written by a newer abkit; "
            f"this abkit ({__version__}) writes version {SCHEMA_VERSION}. Upgrade abkit to write to it "
            "(reading with abkit.portfolio.load works)."
        )
    if version == SCHEMA_VERSION:
        return  # created or migrated to this version already
    have = _table_columns(con, TABLE)
    if not have:
        cols = ", ".join(f"{c} {_TYPES[c]}" for c in COLUMNS)
        con.execute(f"CREATE TABLE {TABLE} ({cols})")
    else:
        for c in COLUMNS:
            if c not in have:
                con.execute(f"ALTER TABLE {TABLE} ADD COLUMN {c} {_TYPES[c]}")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (version INTEGER, migrated_at TIMESTAMP, abkit_version VARCHAR)"
    )
    con.execute(f"INSERT INTO {SCHEMA_TABLE} VALUES (?, ?, ?)", [SCHEMA_VERSION, _utc_now(), __version__])
    _create_view(con)  # re-created so that it lists the columns added


# --------------------------------------------------------------------------- values
def _utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(tzinfo=None)


def _as_timestamp(value, column: str) -> _dt.datetime | None:
    import pandas as pd

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"column '{column}': {value!r} is not a date-time; give a datetime or an ISO 8601 "
            "string such as '2026-09-28T14:05:00+00:00'"
        ) from exc
    if ts is pd.NaT:
        return None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_pydatetime()


def _as_date(value, column: str) -> _dt.date | None:
    import pandas as pd

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        return value
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataError(f"column '{column}': {value!r} is not a date; give a date or 'YYYY-MM-DD'") from exc
    return None if ts is pd.NaT else ts.date()


def _as_float(value, column: str) -> float | None:
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"column '{column}': {value!r} is not a number") from exc
    return x if math.isfinite(x) else None


def _as_int(value, column: str) -> int | None:
    x = _as_float(value, column)
    if x is None:
        return None
    if x != int(x):
        raise DataError(f"column '{column}': {value!r} is not a whole number")
    return int(x)


def _as_bool(value, column: str) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise DataError(f"column '{column}': {value!r} is not true/false")


def _as_text(value, column: str) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


_CONVERT = {
    "DOUBLE": _as_float,
    "BIGINT": _as_int,
    "INTEGER": _as_int,
    "BOOLEAN": _as_bool,
    "VARCHAR": _as_text,
    "DATE": _as_date,
    "TIMESTAMP": _as_timestamp,
}


def _normalise(rows, fill: Mapping, run_id: str | None, run_time) -> list[dict]:
    """Rows (dicts or a DataFrame) -> dicts with every column, typed; unknown columns and missing keys refused."""
    import pandas as pd

    from . import __version__

    if isinstance(rows, pd.DataFrame):
        rows = rows.to_dict(orient="records")
    elif isinstance(rows, Mapping):
        rows = [rows]
    rows = list(rows)
    if not rows:
        raise DataError("no rows to record; pass the rows a readout produced (abkit.readout.records)")
    unknown = sorted({k for r in rows for k in r} - set(COLUMNS) | (set(fill) - set(COLUMNS)))
    if unknown:
        import difflib

        hints = [
            f"{u} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(u, COLUMNS, n=1)) else u for u in unknown
        ]
        raise DataError(
            f"unknown column(s) for the results store: {', '.join(hints)}; the store's columns are {', '.join(COLUMNS)}"
        )
    set_by_store = sorted(({k for r in rows for k in r if r[k] is not None} | set(fill)) & set(_SET_BY_STORE))
    if set_by_store:
        raise DataError(f"column(s) {', '.join(set_by_store)} are set by the store when it writes; leave them out")
    run_time_default = run_time if run_time is not None else _utc_now()
    out = []
    for i, raw in enumerate(rows):
        row = dict(raw)
        for k, v in fill.items():
            if row.get(k) is None:
                row[k] = v
        if row.get("run_id") is None:
            row["run_id"] = run_id
        if row.get("run_time") is None:
            row["run_time"] = run_time_default
        if row.get("abkit_version") is None:
            row["abkit_version"] = __version__
        if row.get("status") is None:
            row["status"] = "ok"
        typed = {c: _CONVERT[_TYPES[c]](row.get(c), c) for c in COLUMNS}
        missing = [c for c in _REQUIRED if typed[c] in (None, "")]
        if missing:
            raise DataError(
                f"row {i} has no {', '.join(missing)}; every row needs {', '.join(_REQUIRED)} "
                "(pass e.g. record(out, rows, slug='instant-refunds'))"
            )
        if typed["status"] not in ("ok", "failed"):
            raise DataError(f"row {i}: status {typed['status']!r} must be 'ok' or 'failed'")
        out.append(typed)
    return out


def _arrow_table(rows: list[dict], record_seq: int, recorded_at: _dt.datetime):
    import pyarrow as pa

    types = {
        "DOUBLE": pa.float64(),
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
        "BOOLEAN": pa.bool_(),
        "VARCHAR": pa.string(),
        "DATE": pa.date32(),
        "TIMESTAMP": pa.timestamp("us"),
    }
    data = {}
    for c in COLUMNS:
        values: list
        if c == "record_seq":
            values = [record_seq] * len(rows)
        elif c == "position":
            values = list(range(len(rows)))
        elif c == "recorded_at":
            values = [recorded_at] * len(rows)
        else:
            values = [r[c] for r in rows]
        data[c] = pa.array(values, type=types[_TYPES[c]])
    return pa.table(data)


# --------------------------------------------------------------------------- write
def record(
    target: str | os.PathLike,
    rows: Iterable[Mapping] | pd.DataFrame,
    *,
    run_id: str | None = None,
    run_time=None,
    timeout: float = DEFAULT_TIMEOUT,
    **fill,
) -> int:
    """Append ``rows`` to the store at ``target`` (a folder, created if needed: ``<target>/abkit.duckdb``; or a
    ``.duckdb`` file).

    ``rows``: dicts (or a DataFrame) with columns of :data:`COLUMNS`, e.g.
    from :mod:`abkit.readout.records`. Keyword arguments named after columns
    (``slug=``, ``spec_path=``...) fill that column where a row has no value;
    ``run_id`` (default: one new id for the call) and ``run_time`` (default:
    now, UTC) likewise. Every row needs ``run_id, run_time, experiment,
    slug, kind, status``. All rows are written in one transaction, or none
    (a :class:`abkit.errors.StoreError` says why). Waits up to ``timeout``
    seconds for another process's lock (see the module docstring). Returns
    the number of rows written.
    """
    unknown_fill = set(fill) - set(COLUMNS)
    if unknown_fill:
        raise DataError(
            f"unknown keyword(s) {sorted(unknown_fill)}; record() takes run_id, run_time, timeout and "
            f"column names: {', '.join(COLUMNS)}"
        )
    typed = _normalise(rows, fill, run_id or new_run_id(), run_time)
    path = store_path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder of the results store '{path}': {exc}") from exc
    with _process_lock(path):
        con = _connect(path, read_only=False, timeout=timeout)
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                _ensure_schema(con, path)
                seq = int(con.execute(f"SELECT coalesce(max(record_seq), 0) + 1 FROM {TABLE}").fetchall()[0][0])
                incoming = _arrow_table(typed, seq, _utc_now())
                con.register("_abkit_incoming", incoming)
                cols = ", ".join(COLUMNS)
                con.execute(f"INSERT INTO {TABLE} ({cols}) SELECT {cols} FROM _abkit_incoming")
                con.unregister("_abkit_incoming")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        except StoreError:
            raise
        except Exception as exc:  # any database failure: nothing was written, say so loudly
            raise StoreError(
                f"writing {len(typed)} row(s) to the results store '{path}' failed, nothing was "
                f"written: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            con.close()
    return len(typed)


# --------------------------------------------------------------------------- read
def _empty_frame() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=_PANDAS_DTYPES[_TYPES[c]]) for c in COLUMNS})


_PANDAS_DTYPES = {
    "DOUBLE": "float64",
    "BIGINT": "Int64",
    "INTEGER": "Int64",
    "BOOLEAN": "boolean",
    "VARCHAR": "object",
    "DATE": "datetime64[us]",
    "TIMESTAMP": "datetime64[us]",
}


def _read(target, query: str, timeout: float) -> pd.DataFrame:
    path = store_path(target)
    if not path.exists():
        raise StoreError(
            f"no results store at '{path}'; `abkit readout ... --out {path.parent}` creates it "
            "(or pass the folder or .duckdb file a readout wrote)"
        )
    with _process_lock(path):
        con = _connect(path, read_only=True, timeout=timeout)
        try:
            if not _table_columns(con, TABLE):
                return _empty_frame()
            frame = con.execute(query).df()
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"reading the results store '{path}' failed: {type(exc).__name__}: {exc}") from exc
        finally:
            con.close()
    for c in COLUMNS:  # a store written by an older abkit: its missing columns are empty
        if c not in frame.columns:
            frame[c] = None
        frame[c] = _typed_column(frame[c], _TYPES[c])
    extra = [c for c in frame.columns if c not in COLUMNS]
    return frame[[*COLUMNS, *extra]]


def _typed_column(col: pd.Series, sql_type: str) -> pd.Series:
    """One dtype per column whatever the values (all NULL or not): text as object with None for missing."""
    import pandas as pd

    if sql_type == "VARCHAR":
        out = col.astype(object)
        return out.where(pd.notna(out), None)
    return col.astype(_PANDAS_DTYPES[sql_type])


def load(target: str | os.PathLike, *, timeout: float = DEFAULT_TIMEOUT) -> pd.DataFrame:
    """Every row ever recorded in the store at ``target`` (folder or ``.duckdb`` file), in the order written."""
    return _read(target, f"SELECT * FROM {TABLE} ORDER BY record_seq, position", timeout)


def latest_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the most recent run of each experiment (``slug``) in a frame from :func:`load`.

    The same rule as the store's ``latest`` view: highest ``record_seq``,
    then latest ``run_time``, then highest ``run_id``.
    """
    if frame.empty:
        return frame.copy()
    key = frame[["slug", "record_seq", "run_time", "run_id"]].copy()
    key["_pos"] = np.arange(len(frame))
    top = key.sort_values(
        ["slug", "record_seq", "run_time", "run_id"], ascending=[True, False, False, False], kind="stable"
    ).drop_duplicates("slug")
    chosen = set(zip(top["slug"], top["record_seq"], top["run_time"], top["run_id"]))
    keep = [
        (s, q, t, r) in chosen
        for s, q, t, r in zip(frame["slug"], frame["record_seq"], frame["run_time"], frame["run_id"])
    ]
    return frame.loc[keep].reset_index(drop=True)


def _as_set(value) -> set | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {value}
    return {str(v) for v in value}


def latest(
    source: str | os.PathLike | pd.DataFrame,
    *,
    kind=None,
    owner=None,
    metric=None,
    verdict=None,
    status=None,
    experiment=None,
    primary_only: bool = False,
    since=None,
    until=None,
    timeout: float = DEFAULT_TIMEOUT,
) -> pd.DataFrame:
    """The latest readout of every experiment, optionally filtered: what the portfolio page lists.

    ``source``: a store (folder or ``.duckdb`` file; read through the view
    ``latest``) or a frame from :func:`load` (its latest rows are taken).
    Filters (each a value or a list of values, None = all): ``kind``
    (``ab``, ``did``, ``power``), ``owner``, ``metric``, ``verdict`` (the
    label: ``Ship``, ``Inconclusive``...), ``status`` (``ok``, ``failed``),
    ``experiment`` (name or slug); ``primary_only`` keeps the primary
    metric's rows; ``since``/``until`` keep readouts whose ``run_time`` is in
    that range (inclusive; a date or date-time, UTC unless it says its zone). Filters apply to the latest readout: an
    experiment whose latest verdict is Inconclusive is not listed under
    ``verdict="Ship"`` because an older run said Ship.
    """
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        frame = latest_rows(source)
    else:
        frame = _read(source, f"SELECT * FROM {LATEST_VIEW} ORDER BY record_seq, position", timeout)
    keep = np.ones(len(frame), dtype=bool)
    for column, wanted in (
        ("kind", kind),
        ("owner", owner),
        ("metric", metric),
        ("verdict", verdict),
        ("status", status),
    ):
        values = _as_set(wanted)
        if values is not None:
            keep &= frame[column].astype(object).isin(values).to_numpy()
    names = _as_set(experiment)
    if names is not None:
        keep &= (frame["experiment"].astype(object).isin(names) | frame["slug"].astype(object).isin(names)).to_numpy()
    if primary_only:
        keep &= frame["is_primary"].fillna(False).astype(bool).to_numpy()
    times = pd.to_datetime(frame["run_time"])
    if since is not None:
        keep &= (times >= _as_timestamp(since, "since")).to_numpy()
    if until is not None:
        keep &= (times <= _as_timestamp(until, "until")).to_numpy()
    return frame.loc[keep].reset_index(drop=True)


def history(
    source: str | os.PathLike | pd.DataFrame, experiment: str, *, timeout: float = DEFAULT_TIMEOUT
) -> pd.DataFrame:
    """Every recorded run of one experiment (by slug or name), oldest first: its history page's rows."""
    import pandas as pd

    frame = source if isinstance(source, pd.DataFrame) else load(source, timeout=timeout)
    mask = (frame["slug"] == experiment) | (frame["experiment"] == experiment)
    if not mask.any():
        known = sorted(set(frame["slug"].dropna().astype(str)))
        raise DataError(
            f"no experiment '{experiment}' in the results store; experiments (slugs): "
            f"{', '.join(known[:30]) or '(none)'}"
        )
    return frame.loc[mask].reset_index(drop=True)
