"""``readout.pdf`` next to a page, printed by headless Chromium (``abkit readout --pdf``).

The page is printed as a browser prints it, with the print rules of the house
style sheet (``templates/html/abkit/abkit.css``, ``@media print``: the
verdict on page one, charts and tables never split across pages). Chromium
runs headless with no network, no extensions, no GPU and a fresh profile in
a temporary folder that is removed afterwards; the PDF is written to a
temporary file and moved into place, so a reader never sees half a PDF.

Chromium is found as ``$ABKIT_CHROMIUM``, else ``chromium``,
``chromium-browser``, ``google-chrome`` or ``google-chrome-stable`` on the
``PATH``. Without it, :func:`find_chromium` raises
:class:`abkit.errors.ReadoutError` saying how to install it (``abkit
readout --pdf`` checks before any readout runs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import ReadoutError

__all__ = ["find_chromium", "print_pdf", "CHROMIUM_FLAGS", "CHROMIUM_ENV", "PDF_NAME"]

PDF_NAME = "readout.pdf"
CHROMIUM_ENV = "ABKIT_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
    "--no-pdf-header-footer",
)


def find_chromium() -> str:
    """The Chromium executable to print with; :class:`ReadoutError` with the fix when there is none."""
    own = os.environ.get(CHROMIUM_ENV)
    if own:
        found = shutil.which(own)
        if found is None:
            raise ReadoutError(f"{CHROMIUM_ENV}={own!r} is not an executable; point it at Chromium or unset it")
        return found
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise ReadoutError(
        "--pdf prints the pages with headless Chromium, which was not found (looked for "
        f"{', '.join(CHROMIUM_NAMES)} on the PATH, and ${CHROMIUM_ENV}). Install it (Debian/Ubuntu: "
        "apt-get install chromium) or set ABKIT_CHROMIUM=/path/to/chrome, or run without --pdf"
    )


def print_pdf(
    page: str | os.PathLike,
    pdf: str | os.PathLike | None = None,
    *,
    chromium: str | None = None,
    timeout: float = 180.0,
) -> Path:
    """Print ``page`` (an HTML file) to ``pdf`` (default: ``readout.pdf`` next to it); returns the PDF's path.

    Raises :class:`ReadoutError` naming what went wrong (Chromium missing,
    failed, timed out, or wrote no PDF); a previous PDF is left as it was.
    """
    page = Path(page).resolve()
    target = Path(pdf) if pdf is not None else page.with_name(PDF_NAME)
    exe = chromium or find_chromium()
    profile = tempfile.mkdtemp(prefix="abkit-chromium-")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        try:
            proc = subprocess.run(
                [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={tmp}", page.as_uri()],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise ReadoutError(f"printing {page} to PDF took more than {timeout:g} s; Chromium was stopped") from None
        except OSError as exc:
            raise ReadoutError(f"cannot start Chromium ({exe}) to print {page}: {exc}") from exc
        written = Path(tmp)
        if proc.returncode != 0 or written.stat().st_size == 0 or not written.read_bytes()[:5] == b"%PDF-":
            said = " ".join((proc.stderr or "").strip().splitlines()[-3:])
            raise ReadoutError(
                f"Chromium could not print {page} to PDF (exit code {proc.returncode})" + (f": {said}" if said else "")
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        return target
    finally:
        Path(tmp).unlink(missing_ok=True)
        shutil.rmtree(profile, ignore_errors=True)
