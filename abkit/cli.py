"""The ``abkit`` command.

    abkit readout SPEC.yaml [SPEC.yaml ...] --out reports/ [--jobs N] [--root DIR] [--templates DIR] [--force] [--pdf]
    abkit export READOUT.ipynb [--html PAGE.html | --out reports/ [--pdf] [--force]]
    abkit validate SPEC.yaml [SPEC.yaml ...]
    abkit power PLAN.yaml [PLAN.yaml ...] [--json]
    abkit schema [--out FILE]
    abkit --version

``readout`` runs the notebook of each spec's kind (``ab``, ``did``, ``power``).
``export`` turns a notebook executed by plain papermill into the same page; with
``--out DIR`` it also records the notebook's results in ``DIR/abkit.duckdb`` and
rebuilds ``DIR/index.html`` and ``DIR/programme.html``, as ``abkit readout --out DIR`` does.
``power`` prints the recommendation of ``kind: power`` specs (how many days,
what MDE) without running a notebook; ``--json`` prints the whole plan as JSON.
``schema`` prints the JSON Schema of the spec format (all three kinds), for
editors that validate and complete YAML files.

Names and messages from spec files are printed with control and bidi
characters escaped (``\x1b``, ``\u202e``): a spec cannot drive the terminal.

Exit codes: 0 all readouts produced; 1 some experiments failed (named on
stderr, details in their error.txt), a readout could not be recorded in the
results store or printed to PDF (its page is written), or a plan could not be computed; 2
invalid specs or usage (one clean message, no traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import __version__
from .errors import AbkitError
from .spec.problems import printable

__all__ = ["build_parser", "main"]


def _jobs(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="abkit",
        description="Experimentation toolkit for e-commerce aftersales: readouts from experiment specs.",
    )
    parser.add_argument("--version", action="version", version=f"abkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    ro = sub.add_parser(
        "readout",
        help="run one readout notebook per spec and export HTML",
        description="Validate every spec, then execute one readout notebook per spec "
        "and export it to a self-contained HTML page under --out.",
    )
    ro.add_argument("specs", nargs="+", metavar="SPEC.yaml", help="experiment spec files")
    ro.add_argument(
        "--out",
        "-o",
        default="reports",
        metavar="DIR",
        help="output folder (default: reports); one sub-folder per experiment plus index.html",
    )
    ro.add_argument(
        "--jobs", "-j", type=_jobs, default=1, metavar="N", help="run N experiments in parallel (default: 1)"
    )
    ro.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")
    ro.add_argument(
        "--root",
        metavar="DIR",
        default=None,
        help="each experiment's identity (and folder) is its spec's path below DIR, e.g. "
        "teamA/refunds; default: the spec's `id:`, else its file name",
    )
    ro.add_argument(
        "--force",
        action="store_true",
        help="write into folders (and an index.html) abkit did not write or another experiment owns",
    )
    ro.add_argument(
        "--templates",
        metavar="DIR",
        default=None,
        help="your own copies of the template notebooks (ab_readout.ipynb, did_readout.ipynb, "
        "power_plan.ipynb; optionally html/abkit); default: the ones shipped with abkit",
    )
    ro.add_argument(
        "--pdf",
        action="store_true",
        help="also print each page to readout.pdf with headless Chromium (must be installed)",
    )

    ex = sub.add_parser(
        "export",
        help="turn an executed readout notebook into the self-contained HTML page",
        description="Export a readout notebook executed by plain papermill (e.g. papermill "
        "templates/ab_readout.ipynb out.ipynb -p spec_path spec.yaml) to the same "
        "HTML page `abkit readout` writes: code hidden, images embedded.",
    )
    ex.add_argument("notebook", metavar="READOUT.ipynb", help="an executed readout notebook")
    where = ex.add_mutually_exclusive_group()
    where.add_argument(
        "--html",
        metavar="PAGE.html",
        default=None,
        help="where to write the page (default: next to the notebook, same name, .html)",
    )
    where.add_argument(
        "--out",
        "-o",
        metavar="DIR",
        default=None,
        help="publish into a reports folder as `abkit readout --out DIR` does: DIR/<experiment>/"
        "readout.html, the results in DIR/abkit.duckdb, DIR/index.html and programme.html",
    )
    ex.add_argument("--pdf", action="store_true", help="with --out: also print the page to readout.pdf (Chromium)")
    ex.add_argument(
        "--force", action="store_true", help="with --out: write into a folder (or index.html) abkit did not write"
    )
    ex.add_argument("--title", default=None, help="page title (default: the notebook's file name)")
    ex.add_argument(
        "--templates",
        metavar="DIR",
        default=None,
        help="a folder with your own html/abkit page template (default: the shipped one)",
    )

    va = sub.add_parser("validate", help="check spec files (and their data columns) without running anything")
    va.add_argument("specs", nargs="+", metavar="SPEC.yaml", help="experiment spec files")

    pw = sub.add_parser(
        "power",
        help="plan a test from a kind: power spec: how many days, what MDE",
        description="Compute the test plan of each kind: power spec (abkit.power.plan on its "
        "history) and print the recommendation, or the whole plan with --json.",
    )
    pw.add_argument("specs", nargs="+", metavar="PLAN.yaml", help="kind: power spec files")
    pw.add_argument("--json", action="store_true", help="print the plans as JSON (a list, one object per spec)")

    sc = sub.add_parser(
        "schema",
        help="print the JSON Schema of spec files (for editors)",
        description="Print the JSON Schema of the spec format (kinds ab, did and power, chosen by "
        "`kind`), for editors that validate and complete YAML files.",
    )
    sc.add_argument("--out", "-o", metavar="FILE", help="write it to FILE instead of printing it")
    return parser


def _readout(args) -> int:
    from .readout.runner import INDEX_NAME, run_readouts

    outcomes = run_readouts(
        args.specs,
        args.out,
        jobs=args.jobs,
        progress=not args.no_progress,
        templates=args.templates,
        root=args.root,
        force=args.force,
        pdf=args.pdf,
    )
    for o in outcomes:
        if o.ok:
            print(printable(o.html))
            if o.pdf is not None:
                print(printable(o.pdf))
    stopped = [o for o in outcomes if o.status in ("interrupted", "not run")]
    failed = [o for o in outcomes if o.status == "failed"]
    if outcomes:
        print(f"index: {printable(outcomes[0].folder.parent / INDEX_NAME)}", file=sys.stderr)
    unkept = _report_side_problems(outcomes)
    if stopped:
        finished = sum(o.ok for o in outcomes)
        print(
            f"abkit: interrupted: {finished} of {len(outcomes)} readouts finished; "
            f"{len(stopped)} stopped or not run (their folders keep any earlier page)",
            file=sys.stderr,
        )
        # The index is written and the kernels are gone; do not wait for worker threads still unwinding
        # their dead kernels' clients (the interpreter would join them at exit, for many seconds).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    if failed:
        print(f"abkit: {len(failed)} of {len(outcomes)} readouts failed:", file=sys.stderr)
        for o in failed:
            where = f" (details: {printable(o.error_file)})" if o.error_file else ""
            print(
                f"  FAILED {printable(o.name)} [{printable(o.spec_path)}]: {printable(o.error)}{where}", file=sys.stderr
            )
        return 1
    return 1 if unkept else 0


def _report_side_problems(outcomes) -> int:
    """Name every readout whose results are not in the store or whose PDF was not printed; how many."""
    problems = 0
    for o in outcomes:
        if o.store_error:
            problems += 1
            print(
                f"abkit: results store: {printable(o.name)} [{printable(o.slug)}] not recorded: "
                f"{printable(o.store_error)}",
                file=sys.stderr,
            )
        if o.pdf_error:
            problems += 1
            print(f"abkit: pdf: {printable(o.name)} [{printable(o.slug)}]: {printable(o.pdf_error)}", file=sys.stderr)
    return problems


def _export(args) -> int:
    from pathlib import Path

    from .errors import ReadoutError
    from .readout.runner import _read_summary, export_html

    notebook = Path(args.notebook)
    if not notebook.is_file():
        raise ReadoutError(f"notebook not found: {notebook}; pass the notebook papermill wrote")
    if args.out is not None:
        from .readout.runner import INDEX_NAME, publish_notebook

        outcome = publish_notebook(notebook, args.out, force=args.force, pdf=args.pdf, templates=args.templates)
        print(printable(outcome.html))
        if outcome.pdf is not None:
            print(printable(outcome.pdf))
        print(f"index: {printable(outcome.folder.parent / INDEX_NAME)}", file=sys.stderr)
        return 1 if _report_side_problems([outcome]) else 0
    if args.pdf or args.force:
        raise ReadoutError("--pdf and --force go with --out DIR (publishing into a reports folder)")
    page = Path(args.html) if args.html else notebook.with_suffix(".html")
    print(printable(export_html(notebook, page, title=args.title or notebook.stem, templates=args.templates)))
    lines = (_read_summary(notebook) or {}).get("digest")
    if lines:  # the five lines to paste into a chat, next to the page
        from .readout.digest import summary_text
        from .readout.files import atomic_write_text

        written = atomic_write_text(page.with_name(page.stem + ".summary.md"), summary_text(lines, str(page.resolve())))
        print(f"summary: {printable(written)}", file=sys.stderr)
    return 0


def _validate(args) -> int:
    from .engines import TableRef
    from .readout.runner import validate_specs

    for path, spec in validate_specs(args.specs):
        what = "outcomes" if spec.kind in ("did", "synthetic") else "metrics"  # panels: outcome + secondary
        data = printable(spec.data_label) + (
            " (columns checked when the analysis runs)"
            if isinstance(spec.data, TableRef) and spec.data.engine == "spark"
            else ""
        )
        print(
            f"ok: {printable(path)} ({printable(spec.name)}; kind {spec.kind}; {len(spec.metrics)} {what}, primary "
            f"{printable(spec.primary.name)}; data: {data})"
        )
    return 0


def _schema(args) -> int:
    import json

    from .spec import spec_json_schema

    text = json.dumps(spec_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _power(args) -> int:
    import json

    from .readout import plan as planning
    from .readout.runner import validate_specs

    specs = validate_specs(args.specs)
    wrong = [str(p) for p, s in specs if s.kind != "power"]
    if wrong:
        raise AbkitError(
            f"abkit power needs kind: power specs; not a test plan: {printable(', '.join(wrong))}. Add "
            "`kind: power` with the traffic (daily_units) and a target `mde`, or use abkit readout"
        )
    out, failed = [], []
    for path, spec in specs:
        try:
            bundle = planning.make_plan(spec)
            rec = planning.recommend(spec, bundle)
        except AbkitError as exc:
            failed.append(f"{printable(path)}: {printable(exc)}")
            continue
        if args.json:
            out.append(planning.to_json(spec, bundle, rec))
        else:
            print(f"{printable(spec.name)} [{printable(path)}]\n  {printable(rec.label)}: {printable(rec.headline)}")
            for r in rec.reasons:
                print(f"  - {printable(r)}")
    if args.json:
        print(json.dumps(out, indent=2, allow_nan=False))
    for f in failed:
        print(f"abkit: plan failed: {f}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "readout":
            return _readout(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "power":
            return _power(args)
        if args.command == "export":
            return _export(args)
        if args.command == "schema":
            return _schema(args)
        parser.error(f"unknown command {args.command!r}")
    except AbkitError as exc:
        print(f"abkit: error: {printable(exc, keep_newlines=True)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("abkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `abkit power --json ... | head`: the reader left, nothing is wrong
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


def run() -> NoReturn:
    """The ``abkit`` command: :func:`main`, then the process ends without tearing down its modules.

    Once a readout has written its pages, everything is on disk, and an
    ordinary interpreter exit would still spend 0.3-0.4 s freeing the
    objects of pandas, matplotlib, nbconvert and the rest one by one
    (measured: a third of a second of a 4-second readout). So what any exit
    does first is done here: threads still running are waited for (at most
    10 s; a finished batch has shut its worker pool down, and after Ctrl-C
    :func:`_readout` has ended the process already), the exit handlers run
    (logging flushed, temporary folders removed) and the output streams are
    flushed; then the process ends with ``os._exit``. Calling :func:`main`
    from Python (tests, notebooks) does not do this.
    """
    import atexit
    import contextlib
    import threading
    import time

    code = main()
    deadline = time.monotonic() + 10.0
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe (`abkit ... | head`): nothing left to say
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
