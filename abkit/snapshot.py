"""Pin the data a readout reads, so that one page never mixes two versions of it.

A readout reads its data source several times (the analysis, the balance
check, the days run, the effect over time, the segments). If a scheduled
export replaces the file meanwhile, those sections would describe different
data. :func:`pin` records the source before the first read: for each file,
its size, modification time, inode and a content fingerprint (SHA-256 of the
whole file up to 8 MB; above that, of the parquet footer, which holds every
row group's offsets and column statistics, or of the first and last MB of
other files). :meth:`DataSnapshot.verify` re-reads those stamps after the
last read and raises :class:`DataChangedError` naming the file and what
changed, so the readout fails clearly instead of publishing a page that
contradicts itself. The snapshot's :meth:`~DataSnapshot.describe` line and
:meth:`~DataSnapshot.to_dict` go on the page and into the results store.

A DuckDB database is pinned the same way (its file and write-ahead log); a
Spark table by the files its scan reads (``DataFrame.inputFiles()``), stamped
when they are local.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

__all__ = ["DataSnapshot", "DataChangedError", "FileStamp", "pin"]

_WHOLE_FILE = 8 * 1024 * 1024  # hash files up to this size in full
_EDGE = 1024 * 1024  # otherwise the first and last MB (and a parquet file's footer)
_DATA_SUFFIXES = (".parquet", ".pq", ".csv", ".tsv", ".gz", ".duckdb", ".db", ".wal")


class DataChangedError(DataError):
    """The data a readout was reading changed while it ran."""


@dataclass(frozen=True)
class FileStamp:
    path: str
    size: int
    mtime_ns: int
    inode: int
    fingerprint: str

    def differs(self, other: FileStamp | None) -> str | None:
        if other is None:
            return "it was removed"
        for what, a, b in (
            ("its size", self.size, other.size),
            ("its content", self.fingerprint, other.fingerprint),
            ("it was replaced (another file now has its name)", self.inode, other.inode),
            ("its modification time", self.mtime_ns, other.mtime_ns),
        ):
            if a != b:
                return what if what.startswith("it was") else f"{what} changed"
        return None


def _fingerprint(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        if size <= _WHOLE_FILE:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        else:
            digest.update(fh.read(_EDGE))
            tail_start = size - _EDGE
            if path.suffix.lower() in (".parquet", ".pq"):
                fh.seek(size - 8)
                footer = int.from_bytes(fh.read(4), "little")
                tail_start = max(0, min(tail_start, size - 8 - footer))
            fh.seek(tail_start)
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _stamp(path: Path) -> FileStamp | None:
    try:
        st = path.stat()
        return FileStamp(str(path), st.st_size, st.st_mtime_ns, st.st_ino, _fingerprint(path, st.st_size))
    except OSError:
        return None


def _files_of(path: Path) -> list[Path]:
    """The files a read of ``path`` touches: the file, or a directory's data files (sorted)."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _DATA_SUFFIXES)
    text = str(path)
    if any(ch in text for ch in "*?["):
        import glob

        return sorted(Path(p) for p in glob.glob(text, recursive=True) if os.path.isfile(p))
    return [path]


@dataclass(frozen=True)
class DataSnapshot:
    """What a readout read: the source, the stamps of its files, when it was pinned."""

    source: str
    files: tuple[FileStamp, ...]
    taken_at: str
    note: str = ""

    @property
    def fingerprint(self) -> str:
        """One short hash of every file's stamp: equal snapshots, equal fingerprints."""
        digest = hashlib.sha256()
        for f in self.files:
            digest.update(f"{f.path}\0{f.size}\0{f.fingerprint}\n".encode())
        return digest.hexdigest()[:12]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def verify(self) -> None:
        """Raise :class:`DataChangedError` if any file changed since :func:`pin`."""
        for before in self.files:
            why = before.differs(_stamp(Path(before.path)))
            if why:
                raise DataChangedError(
                    f"the data changed while the readout ran: {before.path} ({why} after "
                    f"{self.taken_at}); sections of the page would describe different data, so no page was "
                    "written. Rerun the readout when the job writing the data has finished (or point the spec "
                    "at a file that is replaced atomically, once, before readouts start)"
                )

    def describe(self) -> str:
        """One line for the page: the source, its size, its newest modification time, the fingerprint."""
        if not self.files:
            return f"{self.source} ({self.note or 'not pinned'}), read {self.taken_at}"
        newest = max(f.mtime_ns for f in self.files)
        when = _dt.datetime.fromtimestamp(newest / 1e9).strftime("%Y-%m-%d %H:%M")
        count = f"{len(self.files)} files, " if len(self.files) > 1 else ""
        return (
            f"{self.source} ({count}{_size(self.total_bytes)}, modified {when}; "
            f"fingerprint {self.fingerprint}), read {self.taken_at}"
        )

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "fingerprint": self.fingerprint,
            "bytes": self.total_bytes,
            "files": len(self.files),
            "taken_at": self.taken_at,
            "note": self.note,
        }


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _spark_files(ref) -> tuple[list[Path], str]:
    try:
        frame = ref.open()
        files = frame.inputFiles()
    except Exception as exc:  # noqa: BLE001 - pinning is best effort for remote catalogs; said on the page
        return [], f"Spark table not pinned: {type(exc).__name__}"
    local = [Path(f[len("file:") :]) for f in files if f.startswith("file:")]
    if len(local) < len(files):
        return local, f"{len(files) - len(local)} of {len(files)} files not local: not pinned"
    return local, ""


def pin(data) -> DataSnapshot:
    """A :class:`DataSnapshot` of a readout's data: a path (file, directory, glob) or a spec's table reference."""
    taken = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    engine = getattr(data, "engine", None)
    if engine == "duckdb":
        db = getattr(data, "database", None)
        files = [Path(db), Path(str(db) + ".wal")] if db else []
        stamps = tuple(s for s in map(_stamp, files) if s is not None)
        return DataSnapshot(f"DuckDB table {data.table}", stamps, taken, "" if db else "in-memory DuckDB: not pinned")
    if engine == "spark":
        files, note = _spark_files(data)
        return DataSnapshot(
            f"Spark table {data.table}", tuple(s for s in map(_stamp, files) if s is not None), taken, note
        )
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        stamps = tuple(s for s in map(_stamp, _files_of(path)) if s is not None)
        if not stamps:
            raise DataError(f"data '{path}' has no files to read; check the path")
        return DataSnapshot(str(path), stamps, taken)
    return DataSnapshot(type(data).__name__, (), taken, "in-memory data: not pinned")
