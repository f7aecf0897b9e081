"""The files a readout run writes: their names, and writing them so that a reader never sees half a file.

The names live here, in a module that imports nothing heavy, so that the runner can check folders and
start the kernels before it loads the page code (pandas, matplotlib, the verdict's statistics).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = [
    "HISTORY_NAME",
    "INDEX_NAME",
    "PAGES_LOCK_NAME",
    "PROGRAMME_NAME",
    "SUMMARY_NAME",
    "atomic_write_text",
]

SUMMARY_NAME = "summary.md"  # <slug>/summary.md: five plain-text lines (abkit.readout.digest)
INDEX_NAME = "index.html"  # the portfolio page (abkit.readout.programme_pages)
PROGRAMME_NAME = "programme.html"  # per KPI, what the shipped experiments delivered
HISTORY_NAME = "history.html"  # <slug>/history.html: every readout of one experiment
PAGES_LOCK_NAME = ".abkit-pages.lock"  # held while the index and programme pages are rebuilt


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, mode 0644; the temporary file goes on any error."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
