"""Run readouts: spec files -> executed notebooks -> self-contained HTML pages.

:func:`run_readouts` validates every spec first (nothing runs if any is
invalid), then for each experiment executes the template of its kind
(``templates/ab_readout.ipynb`` for ``kind: ab``, ``templates/did_readout.ipynb``
for ``kind: did``, ``templates/power_plan.ipynb`` for ``kind: power``; or an
analyst's own copies with ``templates=``) with papermill, passing the spec's
path as the ``spec_path`` parameter exactly as a scheduler running plain
papermill would, and exports the executed notebook to HTML with the ``abkit``
nbconvert template (code and prompts hidden, no external resources). Layout of ``out_dir``::

    out_dir/
      abkit.duckdb               the results store: every readout's rows, ever (abkit.store)
      index.html                 portfolio: every experiment in the store, its latest readout
      programme.html             per KPI: what the shipped experiments delivered, corrected
      <slug>/readout.ipynb       executed notebook (kept, partially run, on failure)
      <slug>/readout.html        the readout page
      <slug>/summary.md          five plain-text lines to paste into a chat or an e-mail
      <slug>/readout.pdf         the page printed by headless Chromium (only with pdf=True)
      <slug>/history.html        every readout of the experiment the store holds
      <slug>/error.txt           only when the experiment failed
      <slug>/.abkit-experiment.json   which experiment owns the folder

Every file is written atomically (temporary file in the same directory, then
``os.replace``), so a reader never sees half a page. Experiments are
isolated: one that fails does not stop the others.

What a run guarantees:

* **Identity.** Each experiment has a stable identity: the spec's ``id:``,
  else its path relative to ``root`` (``--root``) when one is declared, else
  its file name without ``.yaml``. Its folder is that identity made safe
  (:func:`slugify`). Two specs of one batch with one identity are refused
  before anything runs, whatever the argument order; a folder another
  experiment owns (another spec file with the same name) is never written:
  the run refuses with the fix (an ``id:``, ``--root``) unless ``force``.
* **Nothing foreign overwritten.** A folder or ``index.html`` that abkit did
  not write is refused unless ``force``.
* **One run per experiment at a time.** A lock on the folder; a second
  process reading out the same experiment into the same ``out_dir`` fails
  that experiment with a clear message instead of interleaving files.
* **The store holds what the pages show.** A readout's rows (the template
  attaches them to its verdict output, :mod:`abkit.readout.records`) are
  recorded in ``out_dir/abkit.duckdb`` (:func:`abkit.store.record`) after its
  page is written, and a failed readout's one row after its error.txt: the
  store never claims a result no page shows, and a readout that was stopped
  records nothing. A store that cannot be written is reported
  (``ReadoutOutcome.store_error``; the command exits 1), never silent, and
  never costs the pages already written. ``index.html`` and
  ``programme.html`` are rebuilt from the store at the end of every run,
  whichever process wrote it (:mod:`abkit.readout.programme_pages`).
* **A clean stop.** Ctrl-C (SIGINT) cancels the readouts not yet started,
  shuts the running kernels down, removes temporary files, writes the index
  and returns within seconds; readouts that did not finish keep their
  previous page, and the index shows what is on disk. Temporary files a
  killed run (SIGKILL) left behind are swept by the next run of that
  experiment.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
import traceback
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .. import store
from ..errors import AbkitError, ReadoutError, SpecError
from ..spec import AnySpec, load_spec
from .files import HISTORY_NAME, INDEX_NAME, PROGRAMME_NAME, SUMMARY_NAME
from .files import atomic_write_text as _atomic_write_text
from .kernels import kernel_environment, threads_per_kernel, warm_imports
from .pages import TEMPLATES_ENV
from .pdf import PDF_NAME, find_chromium, print_pdf
from .templates import html_template_dir, notebook_for, templates_dir

__all__ = [
    "ReadoutOutcome",
    "run_readouts",
    "validate_specs",
    "execute_readout",
    "export_html",
    "slugify",
    "experiment_identity",
    "publish_notebook",
    "TEMPLATE_NOTEBOOK",
    "HTML_TEMPLATE_DIR",
]

TEMPLATES = templates_dir()  # top-level templates/ (abkit/templates in the wheel)
TEMPLATE_FOR_KIND = {kind: notebook_for(kind) for kind in ("ab", "did", "power")}
TEMPLATE_NOTEBOOK = TEMPLATE_FOR_KIND["ab"]
HTML_TEMPLATE_DIR = html_template_dir()  # holds the nbconvert template directory 'abkit'
HTML_TEMPLATE_NAME = "abkit"

NOTEBOOK_NAME = "readout.ipynb"
HTML_NAME = "readout.html"
ERROR_NAME = "error.txt"
OWNER_NAME = ".abkit-experiment.json"  # which experiment owns a folder
LOCK_NAME = ".abkit.lock"  # held while a readout of the folder runs
#: Files abkit writes into an experiment's folder (anything else there is the user's).
ABKIT_FILES = frozenset(
    {NOTEBOOK_NAME, HTML_NAME, ERROR_NAME, OWNER_NAME, LOCK_NAME, SUMMARY_NAME, PDF_NAME, HISTORY_NAME}
)
#: Marks pages abkit wrote (an index.html without it is the user's and is never overwritten silently).
GENERATOR_MARK = '<meta name="generator" content="abkit">'

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_MAX_SLUG = 80
_STOPPED_STORE_TIMEOUT = 5.0  # after Ctrl-C the pages wait at most this long for the store


@dataclass(frozen=True)
class ReadoutOutcome:
    """What happened to one experiment."""

    spec_path: Path
    name: str
    slug: str
    folder: Path
    status: str  # "ok", "failed", "interrupted" (stopped mid-run), "not run"
    notebook: Path | None = None  # readout.ipynb (also kept when execution failed)
    html: Path | None = None  # readout.html, when status == "ok"
    error_file: Path | None = None  # error.txt, when status == "failed"
    error: str | None = None  # one-line error, when status == "failed"
    primary: str | None = None
    verdicts: tuple[dict, ...] = field(default_factory=tuple)  # per arm: variant, label, headline, lift...
    seconds: float = 0.0
    kind: str | None = None
    owner: str | None = None
    summary_file: Path | None = None  # summary.md (five plain-text lines)
    pdf: Path | None = None  # readout.pdf, when asked for and printed
    pdf_error: str | None = None  # why the PDF was not printed (the page is fine)
    recorded: int = 0  # rows written to the results store
    store_error: str | None = None  # why this readout is not (fully) in the results store

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# --------------------------------------------------------------------------- helpers
def slugify(text: str, fallback: str = "experiment") -> str:
    """Folder name from a spec file stem or experiment name: only ``[a-z0-9_-]``, never empty.

    >>> slugify("Instant Refunds (v2)")
    'instant-refunds-v2'
    >>> slugify("../../etc/x")
    'etc-x'
    """
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9_-]+", "-", ascii_text.lower())
    slug = re.sub(r"-{2,}", "-", slug).strip("-_")[:_MAX_SLUG].strip("-_")
    return slug or fallback


def experiment_identity(spec_path: str | os.PathLike, spec, root: str | os.PathLike | None = None) -> str:
    """The experiment's stable identity: ``id:`` of the spec, else its path relative to ``root``, else its stem.

    >>> experiment_identity("specs/teamA/refunds.yaml", None, root="specs")
    'teamA/refunds'
    """
    explicit = getattr(spec, "id", None)
    if explicit:
        return str(explicit)
    path = Path(spec_path)
    if root is None:
        return path.stem
    rel = os.path.relpath(path.resolve(), Path(root).resolve())
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise SpecError(
            f"spec '{spec_path}' is not under the root '{root}'; pass the folder that holds all "
            "the specs as --root, or give the spec an `id:`"
        )
    return Path(rel).with_suffix("").as_posix()


def _folders(out_dir: Path, paths: Sequence[Path], specs: Sequence, root) -> list[tuple[str, Path]]:
    """(identity, folder) per spec; two specs of the batch with one folder are refused, naming both."""
    seen: dict[str, tuple[Path, str]] = {}
    result, clashes = [], []
    for path, spec in zip(paths, specs):
        identity = experiment_identity(path, spec, root)
        slug = slugify(identity, fallback=slugify(spec.name))
        if slug in seen:
            other, other_id = seen[slug]
            clashes.append(
                f"'{other}' and '{path}' would both write {out_dir / slug}"
                + (
                    f" (identity {identity!r})"
                    if other_id == identity
                    else f" (identities {other_id!r} and {identity!r})"
                )
            )
        seen[slug] = (path, identity)
        result.append((identity, _safe_folder(out_dir, slug)))
    if clashes:
        raise SpecError(
            "two specs of this run would write the same folder; nothing was run:\n  "
            + "\n  ".join(clashes)
            + "\nGive each an `id:` (e.g. id: team-a-refunds), or pass "
            "--root DIR so that their paths below DIR tell them apart."
        )
    return result


def _owner(folder: Path) -> dict | None:
    try:
        return json.loads((folder / OWNER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _check_folder(folder: Path, identity: str, spec_path: Path, force: bool) -> str | None:
    """Why this run may not write ``folder`` (None: it may)."""
    if force or not folder.exists():
        return None
    owner = _owner(folder)
    if owner is not None:
        theirs = Path(str(owner.get("spec", "")))
        if owner.get("identity") != identity:
            return (
                f"{folder} belongs to experiment {owner.get('identity')!r} (spec {theirs}), not {identity!r}; "
                "use another --out, or --force to take the folder over"
            )
        if theirs != spec_path.resolve() and theirs.is_file():
            return (
                f"{folder} belongs to the spec {theirs}, another file with the same name as {spec_path}; "
                "give the specs `id:`s (e.g. id: team-a-refunds) or pass --root DIR so their paths tell "
                "them apart, or --force to take the folder over"
            )
        return None
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in ABKIT_FILES and not p.name.startswith("."))
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        return (
            f"{folder} exists and holds files abkit did not write ({shown}); move them, use another --out, "
            "or --force to write there anyway"
        )
    return None


def _check_index(out_dir: Path, force: bool) -> None:
    """An ``index.html`` or ``programme.html`` abkit did not write is refused (unless ``force``)."""
    for name, what in ((INDEX_NAME, "the portfolio page"), (PROGRAMME_NAME, "the programme page")):
        page = out_dir / name
        if force or not page.exists():
            continue
        try:
            head = page.read_text(encoding="utf-8", errors="replace")[:4096]
        except OSError as exc:
            raise ReadoutError(f"cannot read {page}: {exc}") from exc
        if GENERATOR_MARK not in head:
            raise ReadoutError(
                f"{page} was not written by abkit; abkit would replace it with {what}. "
                "Move it, use another --out, or pass --force"
            )


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder/.abkit.lock`` (flock) for one readout; a second process fails at once, by name."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReadoutError(
                f"another abkit readout is writing {folder} right now; wait for it to finish "
                "(each experiment is read out by one process at a time)"
            ) from None
        yield
    finally:
        os.close(fd)


def _sweep(folder: Path) -> None:
    """Remove temporary files a killed run left behind (we hold the folder's lock, so none is in use)."""
    for pattern in (".readout.*.ipynb", ".kernel.stderr", ".*.tmp"):
        for stale in folder.glob(pattern):
            stale.unlink(missing_ok=True)


def _safe_folder(out_dir: Path, slug: str) -> Path:
    """``out_dir/slug``, refusing anything that would resolve outside ``out_dir``."""
    if not re.fullmatch(r"[a-z0-9_-]+", slug):
        raise ReadoutError(f"unsafe output folder name {slug!r}; only a-z, 0-9, '_' and '-' are allowed")
    folder = (out_dir / slug).resolve()
    if folder.parent != out_dir:
        raise ReadoutError(
            f"output folder '{out_dir / slug}' resolves to '{folder}', outside '{out_dir}' "
            "(a symlink?); remove it or choose another --out"
        )
    return folder


def _clean(text: str) -> str:
    return _ANSI.sub("", text)


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --------------------------------------------------------------------------- validation
def validate_specs(spec_paths: Iterable[str | os.PathLike]) -> list[tuple[Path, AnySpec]]:
    """Load and validate every spec; raise one :class:`SpecError` listing every bad file."""
    paths = [Path(p) for p in spec_paths]
    if not paths:
        raise SpecError("no spec files given; pass one or more YAML files, e.g. specs/*.yaml")
    good, bad = [], []
    for p in paths:
        try:
            good.append((p, load_spec(p)))
        except SpecError as exc:
            bad.append(str(exc))
    if len(paths) == 1 and bad:
        raise SpecError(bad[0])
    if bad:
        head = f"{len(bad)} of {len(paths)} spec files are invalid; nothing was run. Fix them and rerun."
        raise SpecError(head + "\n" + "\n".join(bad))
    return good


# --------------------------------------------------------------------------- one experiment
_EXPORTERS: dict[str, Any] = {}  # nbconvert HTMLExporter per template folder
_EXPORT_LOCK = threading.Lock()


def _page_html(nb, title: str, templates: str | os.PathLike | None = None) -> str:
    """The readout page of an executed notebook ``nb``: nbconvert's HTMLExporter with the ``abkit`` template.

    One exporter per template folder per process (its Jinja2 templates are compiled once), used by one
    thread at a time.
    """
    from nbconvert import HTMLExporter

    key = str(html_template_dir(templates))
    with _EXPORT_LOCK:
        exporter = _EXPORTERS.get(key)
        if exporter is None:
            exporter = _EXPORTERS[key] = HTMLExporter(
                template_name=HTML_TEMPLATE_NAME,
                extra_template_basedirs=[key],
                exclude_input=True,
                exclude_input_prompt=True,
                exclude_output_prompt=True,
            )
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body


def export_html(
    notebook_path: str | os.PathLike,
    html_path: str | os.PathLike,
    title: str,
    templates: str | os.PathLike | None = None,
) -> Path:
    """Executed notebook -> self-contained HTML page (code and prompts hidden, no external resources).

    ``templates``: a folder with your own ``html/abkit`` nbconvert template (default: the shipped one).
    """
    import nbformat

    nb = nbformat.read(str(notebook_path), as_version=4)
    html_path = Path(html_path)
    _atomic_write_text(html_path, _page_html(nb, title, templates))
    return html_path


def _warm_up(templates: str | None = None) -> None:
    """What the first page of a run compiles, done while the first kernel works (see
    :mod:`abkit.readout.kernels`): the exporter's templates and CSS selectors, the store pages' templates."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells.append(
        nbformat.v4.new_code_cell(
            # an entity and an image: the HTML clean-up's first entity fills a table (0.05 s, measured)
            outputs=[nbformat.v4.new_output("display_data", data={"text/html": '<p>&amp;&nbsp;</p><img src="data:,">'})]
        )
    )
    _page_html(nb, "warm-up", templates or None)
    from . import programme_pages

    programme_pages.compile_templates()


def _read_summary(notebook_path: Path) -> dict | None:
    """The summary the notebook attached to its verdict output (``render.summary``)."""
    import nbformat

    nb = nbformat.read(str(notebook_path), as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", ()):
            meta = out.get("metadata") or {}
            if "abkit" in meta:
                return dict(meta["abkit"])
    return None


_KERNEL_MANAGER = None
_KERNELS: set = set()  # kernel processes (Popen) started by readouts of this process
_KERNELS_LOCK = threading.Lock()


def _stop_kernels(grace: float = 1.0) -> None:
    """Terminate every readout kernel this process started (their process groups), then kill stragglers."""
    with _KERNELS_LOCK:
        procs = [p for p in _KERNELS if p.poll() is None]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in procs:
            with contextlib.suppress(OSError):
                os.killpg(p.pid, sig)  # kernels run in their own session: pgid == pid
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(p.poll() is None for p in procs):
            time.sleep(0.05)
        procs = [p for p in procs if p.poll() is None]
        if not procs:
            break


def _kernel_manager_class():
    """An AsyncKernelManager whose kernel writes its stderr to a file (``stderr_path``), not to our terminal.

    A kernel being shut down after a failed cell logs tracebacks of its own
    (tornado / zmq callbacks); they are noise next to the one-line error the
    command prints. The runner keeps the file's tail in error.txt when the
    readout fails and deletes it otherwise.
    """
    global _KERNEL_MANAGER
    if _KERNEL_MANAGER is None:
        from jupyter_client.manager import AsyncKernelManager
        from traitlets import Int, Unicode

        class ReadoutKernelManager(AsyncKernelManager):
            stderr_path = Unicode("", help="file for the kernel's stderr (empty: inherit)").tag(config=True)
            templates = Unicode("", help="the analyst's own templates folder (--templates)").tag(config=True)
            blas_threads = Int(0, help="BLAS/OpenMP threads of the kernel (0: no limit)").tag(config=True)

            async def _async_launch_kernel(self, kernel_cmd, **kw):
                if self.blas_threads:  # --jobs N: kernels share the cores (see kernels)
                    kw["env"] = kernel_environment(kw.get("env"), self.blas_threads)
                if self.templates:  # the kernel's pages read the analyst's page templates first
                    kw["env"] = {**(kw.get("env") or os.environ), TEMPLATES_ENV: self.templates}
                if not self.stderr_path or "stderr" in kw:
                    await super()._async_launch_kernel(kernel_cmd, **kw)
                else:
                    with open(self.stderr_path, "ab") as fh:  # the child keeps its own copy of the descriptor
                        kw["stderr"] = fh
                        await super()._async_launch_kernel(kernel_cmd, **kw)
                # the page code's imports and first-use compiling, while the kernel works
                warm_imports(then=functools.partial(_warm_up, self.templates or None))
                proc = getattr(self.provisioner, "process", None)
                if proc is not None:
                    with _KERNELS_LOCK:
                        for done in [p for p in _KERNELS if p.poll() is not None]:
                            _KERNELS.discard(done)
                        _KERNELS.add(proc)

        _KERNEL_MANAGER = ReadoutKernelManager
    return _KERNEL_MANAGER


_ENGINE_NAME = "abkit"
_ENGINE: list[Any] = []


def _papermill_engine() -> str:
    """papermill's nbclient engine, saving the notebook once at the end instead of at every cell's start and end.

    papermill writes the whole notebook to the output file before and after
    each cell (``request_save_on_cell_execute``) so that one can watch a long
    run; the runner writes to a temporary file nobody watches, and those 32
    writes of a growing notebook took 0.24 s of a readout's critical path
    (measured). The runner runs papermill with ``request_save_on_cell_execute=
    False``: papermill still writes the notebook at the end and when a cell
    raises; when the run stops otherwise (a cell timeout, a kernel that died)
    this engine writes the cells run so far to ``partial_path``, so the
    partially executed notebook is kept for debugging as before. Registered
    once per process as papermill engine ``abkit``; returns its name.
    """
    if not _ENGINE:
        from papermill.engines import NBClientEngine, papermill_engines
        from papermill.iorw import write_ipynb

        class ReadoutEngine(NBClientEngine):
            @classmethod
            def execute_managed_notebook(cls, nb_man, kernel_name, partial_path=None, **kwargs):
                try:
                    return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)
                except BaseException:
                    if partial_path:
                        with contextlib.suppress(Exception):
                            write_ipynb(nb_man.nb, partial_path)
                    raise

        papermill_engines.register(_ENGINE_NAME, ReadoutEngine)
        _ENGINE.append(ReadoutEngine)
    return _ENGINE_NAME


def _kernel_config(
    stderr_path: Path | None = None, templates: str | os.PathLike | None = None, blas_threads: int | None = None
):
    """Kernel settings: stderr to ``stderr_path``; CurveZMQ encryption when jupyter_client and pyzmq support it.

    Without encryption the kernel talks plain TCP on localhost.
    """
    from traitlets.config import Config

    cfg = Config()
    # Once the last cell has run, every output is in the notebook and the kernel has nothing left to do:
    # it is stopped at once instead of being asked to exit and waited for (its interpreter's teardown and
    # IPython's history write took 0.3-0.9 s of each readout, measured). A Spark JVM the notebook started
    # exits with it (PySpark's gateway ends when its Python parent's pipe closes).
    cfg.NotebookClient.shutdown_kernel = "immediate"
    if stderr_path is not None or templates is not None:
        cfg.NotebookClient.kernel_manager_class = _kernel_manager_class()
    if stderr_path is not None:
        cfg.ReadoutKernelManager.stderr_path = str(stderr_path)
    if templates is not None:
        cfg.ReadoutKernelManager.templates = str(Path(templates).resolve())
    if blas_threads:
        cfg.ReadoutKernelManager.blas_threads = int(blas_threads)
    try:
        import zmq
        from jupyter_client.manager import KernelManager

        if zmq.has("curve") and KernelManager.class_traits().get("transport_encryption") is not None:
            cfg.KernelManager.transport_encryption = "auto"
    except Exception:  # noqa: BLE001 - encryption is a nicety, never a reason to fail
        pass
    return cfg


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _error_report(spec_path: Path, spec: AnySpec, step: str, exc: BaseException) -> tuple[str, str]:
    """(one-line error, full text for error.txt)."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        line = f"{exc.ename}: {exc.evalue}"
        where = f"{step} (cell {exc.exec_count})"
        detail = _clean("\n".join(exc.traceback))
    else:
        line = f"{type(exc).__name__}: {exc}"
        where = step
        detail = _clean("".join(traceback.format_exception(exc)))
    text = f"Readout failed: {spec.name}\nSpec: {spec_path}\nStep: {where}\nError: {_clean(line)}\n\n{detail}\n"
    return _one_line(_clean(line)), text


def _outcome_base(spec_path, spec, folder: Path) -> dict:
    return dict(
        spec_path=Path(spec_path),
        name=spec.name,
        slug=folder.name,
        folder=folder,
        primary=spec.primary.name,
        kind=getattr(spec, "kind", None),
        owner=getattr(spec, "owner", None),
    )


def _utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def execute_readout(
    spec_path: Path,
    spec: AnySpec,
    folder: Path,
    *,
    kernel_name: str = "python3",
    cell_timeout: int | None = 1800,
    template: Path | None = None,
    templates: str | os.PathLike | None = None,
    identity: str | None = None,
    stop: threading.Event | None = None,
    pdf: bool = False,
    chromium: str | None = None,
    store_timeout: float = store.DEFAULT_TIMEOUT,
    blas_threads: int | None = None,
    data_checked: bool = False,
) -> ReadoutOutcome:
    """Run one experiment into ``folder``; never raises for the experiment's own failures.

    The notebook is the template of the spec's kind in ``templates`` (default: the shipped
    :data:`TEMPLATE_FOR_KIND`) unless ``template`` names one notebook. It gets the spec's path as
    its ``spec_path`` parameter, as plain papermill would (and ``data_checked=True`` when ``data_checked``
    says the spec was checked against its data just before, as :func:`run_readouts` does, and the
    template takes the parameter: the notebook then skips that scan). The folder is locked for the run, swept
    of a killed run's temporary files and marked as the experiment's (``identity``). When ``stop``
    is set while the notebook runs (Ctrl-C; the caller shuts the kernel down), the outcome is
    ``interrupted``, the folder keeps its previous page and nothing is recorded.

    After the page: ``summary.md``; ``readout.pdf`` when ``pdf`` (headless Chromium, ``chromium``
    or :func:`abkit.readout.pdf.find_chromium`); the notebook's rows recorded in the results store
    of ``folder``'s parent (waiting up to ``store_timeout`` seconds for its lock); ``history.html``.
    A failed readout records one row (:func:`abkit.readout.records.failed_rows`) after its error.txt.
    """
    base = _outcome_base(spec_path, spec, folder)
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with _folder_lock(folder):
            _sweep(folder)
            _atomic_write_text(
                folder / OWNER_NAME,
                json.dumps(
                    {
                        "identity": identity or Path(spec_path).stem,
                        "spec": str(Path(spec_path).resolve()),
                        "name": spec.name,
                        "written_by": "abkit readout",
                    },
                    indent=1,
                )
                + "\n",
            )
            return _execute(
                spec_path,
                spec,
                folder,
                base,
                started,
                kernel_name=kernel_name,
                cell_timeout=cell_timeout,
                template=template or notebook_for(spec.kind, templates),
                templates=templates,
                stop=stop,
                pdf=pdf,
                chromium=chromium,
                store_timeout=store_timeout,
                blas_threads=blas_threads,
                data_checked=data_checked,
            )
    except ReadoutError as exc:  # the folder is another process's right now: touch nothing in it, record nothing
        return ReadoutOutcome(**base, status="failed", error=_one_line(str(exc)), seconds=time.perf_counter() - started)


def _data_checked(template: Path) -> dict:
    """``{"data_checked": True}`` for a template that takes the parameter (the shipped ones do; an analyst's
    older copy may not, and papermill would warn of an unknown parameter)."""
    try:
        declares = "data_checked" in Path(template).read_text(encoding="utf-8")
    except OSError:
        declares = False
    return {"data_checked": True} if declares else {}


def _execute(
    spec_path,
    spec,
    folder: Path,
    base: dict,
    started: float,
    *,
    kernel_name,
    cell_timeout,
    template,
    templates,
    stop,
    pdf,
    chromium,
    store_timeout,
    blas_threads=None,
    data_checked=False,
) -> ReadoutOutcome:
    import papermill

    notebook, html_file, error_file = folder / NOTEBOOK_NAME, folder / HTML_NAME, folder / ERROR_NAME
    run_id, run_time = store.new_run_id(), _utc_now()
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".readout.", suffix=".ipynb")
    os.close(fd)
    tmp = Path(tmp_name)
    kernel_log = folder / ".kernel.stderr"
    kernel_log.unlink(missing_ok=True)
    step = "executing the notebook"
    try:
        papermill.execute_notebook(
            str(template),
            str(tmp),
            parameters={
                "spec_path": str(Path(spec_path).resolve()),
                **(_data_checked(template) if data_checked else {}),
            },
            kernel_name=kernel_name,
            engine_name=_papermill_engine(),
            request_save_on_cell_execute=False,  # written once at the end (see _papermill_engine)
            partial_path=str(tmp),
            # The kernel starts in the experiment's folder (nbclient's resources path). Not papermill's cwd=,
            # which os.chdir()s the whole process: with --jobs > 1 threads would race on the working directory.
            resources={"metadata": {"path": str(folder)}},
            log_output=False,
            progress_bar=False,
            execution_timeout=cell_timeout,
            config=_kernel_config(kernel_log, templates, blas_threads),
            # The kernel's own log (e.g. "KeyboardInterrupt caught in kernel" while it is shut down
            # after a failed cell) is noise on the terminal; the notebook records the real error.
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt
        os.chmod(tmp, 0o644)
        os.replace(tmp, notebook)
        step = "exporting HTML"
        export_html(notebook, html_file, title=spec.name, templates=templates)  # replaces the page atomically
        error_file.unlink(missing_ok=True)  # a previous run's error no longer applies
    except BaseException as exc:  # noqa: BLE001 - isolate each experiment; the error is reported, not lost
        if (stop is not None and stop.is_set()) or isinstance(exc, KeyboardInterrupt):
            # Stopped by the user: this run's files go, the previous page (if any) stays as it was.
            return _previous_outcome(base, status="interrupted", seconds=time.perf_counter() - started)
        if not isinstance(exc, Exception):
            raise
        if tmp.exists() and tmp.stat().st_size > 0:
            os.chmod(tmp, 0o644)
            os.replace(tmp, notebook)  # keep the partially executed notebook for debugging
        elif step == "executing the notebook":
            notebook.unlink(missing_ok=True)  # no notebook from this run: do not leave an older one
        for stale in (html_file, folder / PDF_NAME):  # never leave a previous run's page next to this run's error
            stale.unlink(missing_ok=True)
        line, text = _error_report(spec_path, spec, step, exc)
        kernel_said = _clean(_tail(kernel_log))
        if kernel_said:
            text += f"\nThe kernel's own log (last lines):\n{kernel_said}\n"
        _atomic_write_text(error_file, text)
        from . import digest, records

        _atomic_write_text(folder / SUMMARY_NAME, digest.failed_summary_text(spec.name, line, str(error_file)))
        kept = _keep(folder, records.failed_rows(spec, line), run_id, run_time, spec_path, store_timeout, templates)
        return ReadoutOutcome(
            **base,
            status="failed",
            notebook=notebook if notebook.exists() else None,
            error_file=error_file,
            error=line,
            seconds=time.perf_counter() - started,
            summary_file=folder / SUMMARY_NAME,
            **kept,
        )
    finally:
        tmp.unlink(missing_ok=True)
        kernel_log.unlink(missing_ok=True)
    summary = _read_summary(notebook) or {}
    extra = _after_page(
        spec_path,
        spec,
        folder,
        summary,
        run_id,
        run_time,
        pdf=pdf,
        chromium=chromium,
        store_timeout=store_timeout,
        templates=templates,
    )
    return ReadoutOutcome(
        **base,
        status="ok",
        notebook=notebook,
        html=html_file,
        verdicts=tuple(summary.get("arms", ())),
        seconds=time.perf_counter() - started,
        **extra,
    )


def _summary_lines(spec, summary: dict) -> list[str]:
    """summary.md's four lines from an older template's summary (no ``digest`` in its metadata)."""
    arms = summary.get("arms") or []
    verdict = "; ".join(f"{a.get('variant')}: {a.get('label')} ({a.get('headline')})" for a in arms) or "n/a"
    return [
        f"{spec.name}: {verdict}",
        f"Primary metric {spec.primary.name}: see the page.",
        "Guardrails: see the page.",
        "Health: see the page.",
    ]


def _after_page(
    spec_path,
    spec,
    folder: Path,
    summary: dict,
    run_id: str,
    run_time,
    *,
    pdf: bool,
    chromium: str | None,
    store_timeout: float,
    templates,
) -> dict:
    """What follows a page: summary.md, readout.pdf, the store's rows, history.html (outcome fields)."""
    from . import digest

    html_file = folder / HTML_NAME
    extra: dict = {
        "summary_file": _atomic_write_text(
            folder / SUMMARY_NAME,
            digest.summary_text(summary.get("digest") or _summary_lines(spec, summary), str(html_file)),
        )
    }
    if pdf:
        try:
            extra["pdf"] = print_pdf(html_file, folder / PDF_NAME, chromium=chromium)
        except ReadoutError as exc:
            (folder / PDF_NAME).unlink(missing_ok=True)  # an older PDF would contradict the new page
            extra["pdf_error"] = _one_line(str(exc))
    else:
        (folder / PDF_NAME).unlink(missing_ok=True)
    rows = summary.get("rows")
    if not rows:
        extra["store_error"] = (
            "the notebook attached no results-store rows to its verdict output (a template "
            "copied from an older abkit? copy the shipped one again); nothing recorded"
        )
        return extra
    extra.update(_keep(folder, rows, run_id, run_time, spec_path, store_timeout, templates))
    return extra


def _keep(folder: Path, rows, run_id: str, run_time, spec_path, timeout: float, templates) -> dict:
    """Record ``rows`` in the store of ``folder``'s parent, then write the experiment's history page."""
    from . import programme_pages

    try:
        n = store.record(
            folder.parent,
            rows,
            run_id=run_id,
            run_time=run_time,
            slug=folder.name,
            spec_path=str(Path(spec_path).resolve()),
            timeout=timeout,
        )
    except AbkitError as exc:  # StoreError (locked, unwritable, newer schema) or rows it refused
        return {"store_error": _one_line(str(exc), 600)}
    try:
        programme_pages.write_history(folder.parent, folder.name, timeout=timeout, templates=templates)
    except Exception as exc:  # noqa: BLE001 - the page and the rows are kept; the missing history is reported
        return {
            "recorded": n,
            "store_error": _one_line(f"recorded, but history.html was not written: {type(exc).__name__}: {exc}", 600),
        }
    return {"recorded": n}


def _previous_outcome(base: dict, status: str, seconds: float = 0.0) -> ReadoutOutcome:
    """An experiment this run did not finish: what its folder shows from an earlier run, if anything."""
    folder: Path = base["folder"]
    notebook, page, error_file = folder / NOTEBOOK_NAME, folder / HTML_NAME, folder / ERROR_NAME
    note = "stopped before it finished" if status == "interrupted" else "not run (the run was stopped)"
    if page.is_file() and notebook.is_file():
        summary = _read_summary(notebook) or {}
        return ReadoutOutcome(
            **base,
            status=status,
            notebook=notebook,
            html=page,
            seconds=seconds,
            verdicts=tuple(summary.get("arms", ())),
            error=f"{note}; the page is an earlier run's",
        )
    if error_file.is_file():
        return ReadoutOutcome(
            **base,
            status=status,
            error_file=error_file,
            seconds=seconds,
            error=f"{note}; error.txt is an earlier run's",
        )
    return ReadoutOutcome(**base, status=status, error=note, seconds=seconds)


# --------------------------------------------------------------------------- many experiments
@contextlib.contextmanager
def _page_templates(templates) -> Iterator[None]:
    """The analyst's page templates (``--templates DIR``) for the pages this process renders, then as before."""
    if templates is None:
        yield
        return
    before = os.environ.get(TEMPLATES_ENV)
    os.environ[TEMPLATES_ENV] = str(Path(templates).resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(TEMPLATES_ENV, None)
        else:
            os.environ[TEMPLATES_ENV] = before


def write_pages(
    out_dir: str | os.PathLike,
    outcomes: Sequence[ReadoutOutcome] = (),
    *,
    timeout: float = store.DEFAULT_TIMEOUT,
    templates=None,
) -> Path:
    """``index.html`` and ``programme.html`` of ``out_dir`` from its results store (see
    :func:`abkit.readout.programme_pages.write_pages`); returns the index's path."""
    from . import programme_pages

    index, _, _ = programme_pages.write_pages(Path(out_dir), outcomes, timeout=timeout, templates=templates)
    return index


def run_readouts(
    spec_paths: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    jobs: int = 1,
    *,
    progress: bool = True,
    kernel_name: str = "python3",
    cell_timeout: int | None = 1800,
    templates: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    force: bool = False,
    pdf: bool = False,
    store_timeout: float = store.DEFAULT_TIMEOUT,
) -> list[ReadoutOutcome]:
    """Validate all specs, then produce one readout per spec under ``out_dir``; see the module doc.

    ``templates``: a folder with your own copies of the template notebooks (``ab_readout.ipynb``,
    ``did_readout.ipynb``, ``power_plan.ipynb``; optionally ``html/abkit``); default: the shipped ones.
    ``root``: the folder the specs' identities are relative to (:func:`experiment_identity`).
    ``force``: write into folders (and an ``index.html``) abkit did not write or another experiment owns.
    ``pdf``: also print each page to ``readout.pdf`` with headless Chromium (:mod:`abkit.readout.pdf`;
    without Chromium nothing runs). ``store_timeout``: how long a readout waits for the results store's
    lock when another process is writing it.

    Raises :class:`abkit.SpecError` / :class:`abkit.ReadoutError` (nothing run) if any spec is invalid or
    any folder may not be written. Returns one :class:`ReadoutOutcome` per spec, in the order given;
    failures are reported there (and in ``<slug>/error.txt``), not raised. Ctrl-C stops the batch
    cleanly (see the module doc) and then raises ``KeyboardInterrupt`` only if nothing could be
    reported; otherwise the outcomes say ``interrupted`` / ``not run``.
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise AbkitError(f"jobs={jobs!r} must be a whole number >= 1")
    validated = validate_specs(spec_paths)
    paths = [p.absolute() for p, _ in validated]  # before any thread runs: relative paths read once, here
    specs = [s for _, s in validated]
    for kind in sorted({s.kind for s in specs}):
        notebook_for(kind, templates)  # a missing template fails the batch before anything runs
    chromium = find_chromium() if pdf else None  # so does --pdf without Chromium
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReadoutError(f"cannot create output folder '{out}': {exc}") from exc
    out = out.resolve()
    _check_index(out, force)
    plan = _folders(out, paths, specs, root)
    refused = [
        why
        for (identity, folder), path in zip(plan, paths)
        if (why := _check_folder(folder, identity, path, force)) is not None
    ]
    if refused:
        raise ReadoutError("nothing was run; these folders are not this run's to write:\n  " + "\n  ".join(refused))

    from tqdm import tqdm

    stop = threading.Event()
    outcomes: list[ReadoutOutcome | None] = [None] * len(specs)
    bar = tqdm(total=len(specs), desc="readouts", unit="exp", file=sys.stderr, disable=not progress, dynamic_ncols=True)

    def base(i: int) -> dict:
        return _outcome_base(paths[i], specs[i], plan[i][1])

    def one(i: int) -> ReadoutOutcome:
        if stop.is_set():
            return _previous_outcome(base(i), status="not run")
        try:
            return execute_readout(
                paths[i],
                specs[i],
                plan[i][1],
                kernel_name=kernel_name,
                cell_timeout=cell_timeout,
                templates=templates,
                identity=plan[i][0],
                stop=stop,
                pdf=pdf,
                chromium=chromium,
                store_timeout=store_timeout,
                blas_threads=threads_per_kernel(min(jobs, len(specs))),
                data_checked=True,  # validate_specs checked every spec against its data above
            )
        except Exception as exc:  # noqa: BLE001 - e.g. the folder is not writable: fail this one only
            return ReadoutOutcome(**base(i), status="failed", error=_one_line(f"{type(exc).__name__}: {exc}"))

    def done(i: int, outcome: ReadoutOutcome) -> None:
        outcomes[i] = outcome
        bar.set_postfix_str(f"{outcome.slug}: {outcome.status}", refresh=False)
        bar.update(1)

    with _page_templates(templates):  # the pages this process renders use the analyst's templates too
        # Every readout runs in a worker thread (each drives its own kernel process), so that the main
        # thread stays free to take Ctrl-C at once, at any --jobs.
        pool = ThreadPoolExecutor(max_workers=min(jobs, len(specs)), thread_name_prefix="abkit-readout")
        futures = {pool.submit(one, i): i for i in range(len(specs))}
        try:
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                for fut in finished:
                    done(futures[fut], fut.result())
        except KeyboardInterrupt:
            stop.set()
            for fut in futures:
                fut.cancel()  # queued readouts never start
            _stop_kernels()  # running ones end now: their kernels are shut down
            deadline = time.monotonic() + 2
            for fut, i in futures.items():
                if outcomes[i] is not None:
                    continue
                try:
                    outcome = None if fut.cancelled() else fut.result(timeout=max(0.0, deadline - time.monotonic()))
                except BaseException:  # noqa: BLE001 - a second Ctrl-C or a straggler: report what is on disk
                    outcome = None
                if outcome is None:  # its thread is still unwinding: its temporary files go now
                    _sweep(plan[i][1])
                outcomes[i] = outcome or _previous_outcome(
                    base(i), status="not run" if fut.cancelled() else "interrupted"
                )
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            bar.close()
        # The store may be locked by another run; after Ctrl-C the pages wait only briefly for it.
        read_out = [o for o in outcomes if o is not None]  # every slot is filled above
        write_pages(
            out, read_out, templates=templates, timeout=_STOPPED_STORE_TIMEOUT if stop.is_set() else store_timeout
        )
    return read_out


# --------------------------------------------------------------------------- a notebook run by plain papermill
def _papermill_failure(nb) -> str | None:
    """Why an executed notebook did not run to the end (None: it did)."""
    for cell in nb.cells:
        for out in cell.get("outputs", ()):
            if out.get("output_type") == "error":
                return f"a cell raised {out.get('ename')}: {_one_line(_clean(str(out.get('evalue'))), 200)}"
    if (nb.metadata.get("papermill") or {}).get("exception"):
        return "papermill recorded an exception"
    return None


def publish_notebook(
    notebook: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    force: bool = False,
    pdf: bool = False,
    templates: str | os.PathLike | None = None,
    store_timeout: float = store.DEFAULT_TIMEOUT,
) -> ReadoutOutcome:
    """Put a readout notebook executed by plain papermill into ``out_dir`` as ``abkit readout`` would have.

    ``abkit export NB.ipynb --out DIR``. The experiment's folder is ``DIR/<slug>`` (its identity:
    the spec's ``id:``, else the spec file's name, from the notebook's ``spec_path`` parameter),
    with ``readout.ipynb`` (a copy), ``readout.html``, ``summary.md``, ``readout.pdf`` (``pdf``),
    ``history.html``; the notebook's rows are recorded in ``DIR/abkit.duckdb`` and ``index.html``
    and ``programme.html`` rebuilt, with the runner's guarantees (folder lock, owner marks, nothing
    foreign overwritten without ``force``). A notebook that did not run to the end is refused
    (:class:`abkit.ReadoutError`): nothing is recorded that no page shows.
    """
    import nbformat

    source = Path(notebook)
    if not source.is_file():
        raise ReadoutError(f"notebook not found: {source}; pass the notebook papermill wrote")
    nb = nbformat.read(str(source), as_version=4)
    failure = _papermill_failure(nb)
    if failure:
        raise ReadoutError(
            f"{source} did not run to the end ({failure}); fix the cause and run it again: a "
            "failed notebook is not published or recorded"
        )
    summary = _read_summary(source)
    if not summary:
        raise ReadoutError(
            f"{source} is not an executed abkit readout (no verdict summary in its outputs); run "
            "one of the templates (templates/ab_readout.ipynb, ...) with papermill first"
        )
    params = (nb.metadata.get("papermill") or {}).get("parameters") or {}
    spec_path = params.get("spec_path") or ""
    name = str(summary.get("name") or source.stem)
    spec = None
    if spec_path:
        with contextlib.suppress(SpecError, OSError):
            spec = load_spec(spec_path, check_data=False)
    if spec is not None:
        identity = experiment_identity(spec_path, spec)
    elif spec_path:
        identity = Path(spec_path).stem
    else:
        raw = params.get("spec")
        given = raw if isinstance(raw, dict) else {}
        identity = str(given.get("id") or name)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReadoutError(f"cannot create output folder '{out}': {exc}") from exc
    out = out.resolve()
    _check_index(out, force)
    chromium = find_chromium() if pdf else None
    folder = _safe_folder(out, slugify(identity, fallback=slugify(name)))
    anchor = Path(spec_path) if spec_path else source
    why = _check_folder(folder, identity, anchor, force)
    if why:
        raise ReadoutError(f"nothing was published: {why}")
    kind = str(summary.get("kind") or getattr(spec, "kind", "ab"))
    primary = str(summary.get("primary") or "")
    shown = SimpleNamespace(name=name, primary=SimpleNamespace(name=primary))
    base: dict = dict(
        spec_path=anchor,
        name=name,
        slug=folder.name,
        folder=folder,
        primary=primary,
        kind=kind,
        owner=getattr(spec, "owner", None),
    )
    started = time.perf_counter()
    ended = (nb.metadata.get("papermill") or {}).get("end_time")
    run_time = _dt.datetime.fromisoformat(ended) if isinstance(ended, str) and ended else _utc_now()
    folder.mkdir(exist_ok=True)
    with _folder_lock(folder), _page_templates(templates):
        _sweep(folder)
        _atomic_write_text(
            folder / OWNER_NAME,
            json.dumps(
                {"identity": identity, "spec": str(anchor.resolve()), "name": name, "written_by": "abkit export"},
                indent=1,
            )
            + "\n",
        )
        target = folder / NOTEBOOK_NAME
        if source.resolve() != target:
            _atomic_write_text(target, source.read_text(encoding="utf-8"))
        export_html(target, folder / HTML_NAME, title=name, templates=templates)
        (folder / ERROR_NAME).unlink(missing_ok=True)
        extra = _after_page(
            anchor,
            shown,
            folder,
            summary,
            store.new_run_id(),
            run_time,
            pdf=pdf,
            chromium=chromium,
            store_timeout=store_timeout,
            templates=templates,
        )
        outcome = ReadoutOutcome(
            **base,
            status="ok",
            notebook=target,
            html=folder / HTML_NAME,
            verdicts=tuple(summary.get("arms", ())),
            seconds=time.perf_counter() - started,
            **extra,
        )
        write_pages(out, [outcome], templates=templates, timeout=store_timeout)
    return outcome
