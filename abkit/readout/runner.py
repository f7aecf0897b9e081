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
      index.html                 portfolio: one row per experiment
      <slug>/readout.ipynb       executed notebook (kept, partially run, on failure)
      <slug>/readout.html        the readout page
      <slug>/error.txt           only when the experiment failed

Every file is written atomically (temporary file in the same directory, then
``os.replace``), so a reader never sees half a page. Experiments are
isolated: one that fails does not stop the others.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import time
import traceback
import unicodedata
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AbkitError, ReadoutError, SpecError
from ..spec import ExperimentSpec, load_spec
from . import render
from .templates import html_template_dir, notebook_for, templates_dir

__all__ = ["ReadoutOutcome", "run_readouts", "validate_specs", "execute_readout", "export_html", "slugify",
           "TEMPLATE_NOTEBOOK", "HTML_TEMPLATE_DIR"]

TEMPLATES = templates_dir()                 # top-level templates/ (abkit/templates in the wheel)
TEMPLATE_FOR_KIND = {kind: notebook_for(kind) for kind in ("ab", "did", "power")}
TEMPLATE_NOTEBOOK = TEMPLATE_FOR_KIND["ab"]
HTML_TEMPLATE_DIR = html_template_dir()     # holds the nbconvert template directory 'abkit'
HTML_TEMPLATE_NAME = "abkit"

NOTEBOOK_NAME = "readout.ipynb"
HTML_NAME = "readout.html"
ERROR_NAME = "error.txt"
INDEX_NAME = "index.html"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_MAX_SLUG = 80


@dataclass(frozen=True)
class ReadoutOutcome:
    """What happened to one experiment."""

    spec_path: Path
    name: str
    slug: str
    folder: Path
    status: str                                  # "ok" or "failed"
    notebook: Path | None = None                 # readout.ipynb (also kept when execution failed)
    html: Path | None = None                     # readout.html, when status == "ok"
    error_file: Path | None = None               # error.txt, when status == "failed"
    error: str | None = None                     # one-line error, when status == "failed"
    primary: str | None = None
    verdicts: tuple[dict, ...] = field(default_factory=tuple)  # per arm: variant, label, headline, lift...
    seconds: float = 0.0

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


def _unique_slugs(paths: Sequence[Path], specs: Sequence[ExperimentSpec]) -> list[str]:
    out: list[str] = []
    used: set[str] = set()
    for p, s in zip(paths, specs):
        base = slugify(p.stem, fallback=slugify(s.name))
        slug, k = base, 2
        while slug in used:
            slug, k = f"{base}-{k}", k + 1
        used.add(slug)
        out.append(slug)
    return out


def _safe_folder(out_dir: Path, slug: str) -> Path:
    """``out_dir/slug``, refusing anything that would resolve outside ``out_dir``."""
    if not re.fullmatch(r"[a-z0-9_-]+", slug):
        raise ReadoutError(f"unsafe output folder name {slug!r}; only a-z, 0-9, '_' and '-' are allowed")
    folder = (out_dir / slug).resolve()
    if folder.parent != out_dir:
        raise ReadoutError(f"output folder '{out_dir / slug}' resolves to '{folder}', outside '{out_dir}' "
                           "(a symlink?); remove it or choose another --out")
    return folder


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _clean(text: str) -> str:
    return _ANSI.sub("", text)


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --------------------------------------------------------------------------- validation
def validate_specs(spec_paths: Iterable[str | os.PathLike]) -> list[tuple[Path, ExperimentSpec]]:
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
def export_html(notebook_path: str | os.PathLike, html_path: str | os.PathLike, title: str,
                templates: str | os.PathLike | None = None) -> Path:
    """Executed notebook -> self-contained HTML page (code and prompts hidden, no external resources).

    ``templates``: a folder with your own ``html/abkit`` nbconvert template (default: the shipped one).
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook_path), as_version=4)
    exporter = HTMLExporter(
        template_name=HTML_TEMPLATE_NAME,
        extra_template_basedirs=[str(html_template_dir(templates))],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    html_path = Path(html_path)
    _atomic_write_text(html_path, body)
    return html_path


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
        from traitlets import Unicode

        class ReadoutKernelManager(AsyncKernelManager):
            stderr_path = Unicode("", help="file for the kernel's stderr (empty: inherit)").tag(config=True)

            async def _async_launch_kernel(self, kernel_cmd, **kw):
                if not self.stderr_path or "stderr" in kw:
                    return await super()._async_launch_kernel(kernel_cmd, **kw)
                with open(self.stderr_path, "ab") as fh:   # the child keeps its own copy of the descriptor
                    kw["stderr"] = fh
                    return await super()._async_launch_kernel(kernel_cmd, **kw)

        _KERNEL_MANAGER = ReadoutKernelManager
    return _KERNEL_MANAGER


def _kernel_config(stderr_path: Path | None = None):
    """Kernel settings: stderr to ``stderr_path``; CurveZMQ encryption when jupyter_client and pyzmq support it.

    Without encryption the kernel talks plain TCP on localhost.
    """
    from traitlets.config import Config

    cfg = Config()
    if stderr_path is not None:
        cfg.NotebookClient.kernel_manager_class = _kernel_manager_class()
        cfg.ReadoutKernelManager.stderr_path = str(stderr_path)
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


def _error_report(spec_path: Path, spec: ExperimentSpec, step: str, exc: BaseException) -> tuple[str, str]:
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
    text = (f"Readout failed: {spec.name}\n"
            f"Spec: {spec_path}\n"
            f"Step: {where}\n"
            f"Error: {_clean(line)}\n\n"
            f"{detail}\n")
    return _one_line(_clean(line)), text


def execute_readout(spec_path: Path, spec: ExperimentSpec, folder: Path, *, kernel_name: str = "python3",
                    cell_timeout: int | None = 1800, template: Path | None = None,
                    templates: str | os.PathLike | None = None) -> ReadoutOutcome:
    """Run one experiment into ``folder``; never raises for the experiment's own failures.

    The notebook is the template of the spec's kind in ``templates`` (default: the shipped
    :data:`TEMPLATE_FOR_KIND`) unless ``template`` names one notebook. It gets the spec's path as
    its ``spec_path`` parameter, as plain papermill would.
    """
    import papermill

    template = template or notebook_for(spec.kind, templates)

    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    notebook, html_file, error_file = folder / NOTEBOOK_NAME, folder / HTML_NAME, folder / ERROR_NAME
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".readout.", suffix=".ipynb")
    os.close(fd)
    tmp = Path(tmp_name)
    kernel_log = folder / ".kernel.stderr"
    kernel_log.unlink(missing_ok=True)
    step = "executing the notebook"
    base = dict(spec_path=spec_path, name=spec.name, slug=folder.name, folder=folder, primary=spec.primary.name)
    try:
        papermill.execute_notebook(
            str(template), str(tmp),
            parameters={"spec_path": str(Path(spec_path).resolve())},
            kernel_name=kernel_name,
            cwd=str(folder),
            log_output=False,
            progress_bar=False,
            execution_timeout=cell_timeout,
            config=_kernel_config(kernel_log),
            # The kernel's own log (e.g. "KeyboardInterrupt caught in kernel" while it is shut down
            # after a failed cell) is noise on the terminal; the notebook records the real error.
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
        os.chmod(tmp, 0o644)
        os.replace(tmp, notebook)
        step = "exporting HTML"
        export_html(notebook, html_file, title=spec.name, templates=templates)   # replaces the previous page atomically
        error_file.unlink(missing_ok=True)                  # a previous run's error no longer applies
        summary = _read_summary(notebook) or {}
        return ReadoutOutcome(**base, status="ok", notebook=notebook, html=html_file,
                              verdicts=tuple(summary.get("arms", ())),
                              seconds=time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - isolate each experiment; the error is reported, not lost
        if tmp.exists() and tmp.stat().st_size > 0:
            os.chmod(tmp, 0o644)
            os.replace(tmp, notebook)  # keep the partially executed notebook for debugging
        elif step == "executing the notebook":
            notebook.unlink(missing_ok=True)  # no notebook from this run: do not leave an older one
        html_file.unlink(missing_ok=True)     # never leave a previous run's page next to this run's error
        line, text = _error_report(spec_path, spec, step, exc)
        kernel_said = _clean(_tail(kernel_log))
        if kernel_said:
            text += f"\nThe kernel's own log (last lines):\n{kernel_said}\n"
        _atomic_write_text(error_file, text)
        return ReadoutOutcome(**base, status="failed", notebook=notebook if notebook.exists() else None,
                              error_file=error_file, error=line, seconds=time.perf_counter() - started)
    finally:
        tmp.unlink(missing_ok=True)
        kernel_log.unlink(missing_ok=True)


# --------------------------------------------------------------------------- many experiments
def _write_index(out_dir: Path, outcomes: Sequence[ReadoutOutcome], specs: Sequence[ExperimentSpec]) -> Path:
    entries = []
    for o, s in zip(outcomes, specs):
        target = HTML_NAME if o.ok else ERROR_NAME
        entries.append({"name": o.name, "owner": s.owner, "ok": o.ok, "href": f"{o.slug}/{target}", "kind": s.kind,
                        "arms": list(o.verdicts), "primary": o.primary, "error": o.error})
    path = out_dir / INDEX_NAME
    _atomic_write_text(path, render.portfolio_html(entries))
    return path


def run_readouts(spec_paths: Iterable[str | os.PathLike], out_dir: str | os.PathLike, jobs: int = 1, *,
                 progress: bool = True, kernel_name: str = "python3",
                 cell_timeout: int | None = 1800,
                 templates: str | os.PathLike | None = None) -> list[ReadoutOutcome]:
    """Validate all specs, then produce one readout per spec under ``out_dir``; see the module doc.

    ``templates``: a folder with your own copies of the template notebooks (``ab_readout.ipynb``,
    ``did_readout.ipynb``, ``power_plan.ipynb``; optionally ``html/abkit``); default: the shipped ones.

    Raises :class:`abkit.SpecError` (nothing run) if any spec is invalid.
    Returns one :class:`ReadoutOutcome` per spec, in the order given;
    failures are reported there (and in ``<slug>/error.txt``), not raised.
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise AbkitError(f"jobs={jobs!r} must be a whole number >= 1")
    validated = validate_specs(spec_paths)
    paths = [p for p, _ in validated]
    specs = [s for _, s in validated]
    for kind in sorted({s.kind for s in specs}):
        notebook_for(kind, templates)        # a missing template fails the batch before anything runs
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReadoutError(f"cannot create output folder '{out}': {exc}") from exc
    out = out.resolve()
    folders = [_safe_folder(out, slug) for slug in _unique_slugs(paths, specs)]

    from tqdm import tqdm

    outcomes: list[ReadoutOutcome | None] = [None] * len(specs)
    bar = tqdm(total=len(specs), desc="readouts", unit="exp", file=sys.stderr, disable=not progress,
               dynamic_ncols=True)
    try:
        def one(i: int) -> ReadoutOutcome:
            try:
                return execute_readout(paths[i], specs[i], folders[i], kernel_name=kernel_name,
                                       cell_timeout=cell_timeout, templates=templates)
            except Exception as exc:  # noqa: BLE001 - e.g. the folder is not writable: fail this one only
                return ReadoutOutcome(spec_path=paths[i], name=specs[i].name, slug=folders[i].name,
                                      folder=folders[i], status="failed", primary=specs[i].primary.name,
                                      error=_one_line(f"{type(exc).__name__}: {exc}"))

        def done(i: int, outcome: ReadoutOutcome) -> None:
            outcomes[i] = outcome
            bar.set_postfix_str(f"{outcome.slug}: {outcome.status}", refresh=False)
            bar.update(1)

        if jobs == 1 or len(specs) == 1:
            for i in range(len(specs)):
                done(i, one(i))
        else:
            # Threads suffice: each papermill run drives its own kernel process.
            with ThreadPoolExecutor(max_workers=min(jobs, len(specs)), thread_name_prefix="abkit-readout") as pool:
                futures = {pool.submit(one, i): i for i in range(len(specs))}
                for fut in as_completed(futures):
                    done(futures[fut], fut.result())
    finally:
        bar.close()
    _write_index(out, outcomes, specs)
    return list(outcomes)
