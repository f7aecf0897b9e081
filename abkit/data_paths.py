"""Is a data path safe to read? A quick look before any engine opens it.

A spec names its data with a path, and spec files come from many authors:
``data: /usr`` or a home directory would make a reader walk a huge tree, a
folder with a symbolic link to its own parent sends a walker that follows
links round for ever, and ``/dev/zero`` or a named pipe never ends. The
check here costs at most :data:`MAX_ENTRIES` directory entries and refuses
those cases with a :class:`abkit.DataError` naming the path and the fix:

* a file must be a regular file (after following its links): no device, pipe or socket;
* a folder is read as a parquet dataset (every ``*.parquet`` file below it, other files such as a
  README ignored, as :func:`abkit.engines.to_lazy` reads it). It must not be the file-system root,
  a home directory or a folder above one; it must hold at most :data:`MAX_ENTRIES` entries within
  :data:`MAX_DEPTH` levels, no symbolic link back to itself or a folder above it, and at least one
  ``.parquet`` file.

Symbolic links to folders are not followed (DuckDB's ``**`` does not follow them either), so the
walk itself cannot loop.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import DataError

__all__ = ["MAX_DEPTH", "MAX_ENTRIES", "check_data_path"]

MAX_ENTRIES = 10_000  # files and folders looked at below a data folder
MAX_DEPTH = 12  # folder levels (hive partitions are rarely deeper than 3)


def check_data_path(path: str | os.PathLike) -> Path:
    """Refuse a data path that cannot be read safely and quickly; return it resolved (links followed)."""
    p = Path(path)
    try:
        resolved = p.resolve(strict=True)
        info = resolved.stat()
    except FileNotFoundError:
        raise DataError(f"data path '{p}' does not exist; check the path") from None
    except (RuntimeError, OSError) as exc:  # RuntimeError: "Symlink loop" (Python < 3.13), OSError: ELOOP
        raise DataError(
            f"data path '{p}' cannot be resolved ({exc.__class__.__name__}: {exc}); a symbolic link "
            "loop? Point `data` at the file or folder itself"
        ) from None
    if stat.S_ISDIR(info.st_mode):
        _check_folder(p, resolved)
    elif not stat.S_ISREG(info.st_mode):
        kind = (
            "a named pipe"
            if stat.S_ISFIFO(info.st_mode)
            else "a device"
            if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
            else "a socket"
            if stat.S_ISSOCK(info.st_mode)
            else "not a regular file"
        )
        raise DataError(
            f"data path '{p}' is {kind}, not a data file; point `data` at a parquet or CSV file, or a "
            "folder of parquet files"
        )
    return resolved


def _homes() -> list[Path]:
    out = []
    for text in (os.path.expanduser("~"), os.environ.get("HOME")):
        if text and text != "~":
            try:
                out.append(Path(text).resolve())
            except (RuntimeError, OSError):
                pass
    return out


def _check_folder(shown: Path, folder: Path) -> None:
    fix = "point `data` at the folder that holds only the dataset's parquet files (or at one file)"
    if folder == Path(folder.anchor):
        raise DataError(f"data folder '{shown}' is the root of the file system; {fix}")
    for home in _homes():
        if folder == home or folder in home.parents:
            what = "a home directory" if folder == home else f"a folder above the home directory {home}"
            raise DataError(f"data folder '{shown}' is {what}: abkit would read every parquet file below it; {fix}")
    entries = parquet_files = 0
    stack: list[tuple[Path, int]] = [(folder, 0)]
    while stack:
        current, depth = stack.pop()
        try:
            with os.scandir(current) as listing:
                for entry in listing:
                    entries += 1
                    if entries > MAX_ENTRIES:
                        raise DataError(
                            f"data folder '{shown}' holds more than {MAX_ENTRIES:,} files and folders "
                            f"(is it a dataset?); {fix}, or combine the files"
                        )
                    if entry.is_symlink():
                        _check_link(shown, folder, Path(entry.path))
                        if entry.name.lower().endswith((".parquet", ".pq")) and entry.is_file():
                            parquet_files += 1
                    elif entry.is_dir(follow_symlinks=False):
                        if depth + 1 > MAX_DEPTH:
                            raise DataError(
                                f"data folder '{shown}' is nested more than {MAX_DEPTH} levels deep "
                                f"(at '{entry.path}'); {fix}"
                            )
                        stack.append((Path(entry.path), depth + 1))
                    elif entry.name.lower().endswith(".parquet"):
                        parquet_files += 1
        except PermissionError:
            raise DataError(f"data folder '{shown}': no permission to read '{current}'; {fix}") from None
    if parquet_files == 0:
        raise DataError(
            f"data folder '{shown}' holds no .parquet file; a data folder is read as a parquet dataset "
            "(every *.parquet below it). Point `data` at a parquet or CSV file, or at the dataset's folder"
        )


def _check_link(shown: Path, folder: Path, link: Path) -> None:
    """A link inside a data folder must not lead back to the folder or above it (a loop for a walker that follows)."""
    try:
        target = link.resolve(strict=True)
    except FileNotFoundError:
        return  # a dangling link: ignored, as by the engine
    except (RuntimeError, OSError):
        raise DataError(
            f"data folder '{shown}' holds a symbolic link loop at '{link}'; remove the link or point "
            "`data` at the dataset's own folder"
        ) from None
    if target.is_dir() and (target == folder or target in folder.parents):
        raise DataError(
            f"data folder '{shown}' holds a symbolic link loop: '{link}' leads back to '{target}'; "
            "remove the link or point `data` at the dataset's own folder"
        )
