"""One readout vs a trivial papermill notebook, and a --jobs batch, in one run (before/after with --baseline).

Times, each the best of ``--repeat`` runs, in the same process one after
the other:

* ``papermill`` executing a two-cell notebook (``x = 1``; ``print(x + 1)``):
  the floor every notebook readout pays (kernel start, papermill);
* the same notebook with a first cell importing what a readout's kernel
  must (:data:`LIBRARIES`): the floor plus the imports, before any work;
* ``abkit readout specs/instant_refunds.yaml``, end to end (spec checks,
  kernel, the notebook's analysis and charts, HTML export, index page);
* ``abkit readout --jobs 2`` of two specs (the batch path);
* with ``--baseline DIR``: the same two readouts with another abkit checkout
  first on ``PYTHONPATH`` (e.g. the code before a change).

Each checkout's ``abkit`` is compiled to bytecode first (``compileall``), as it
is after a first run on any machine; this one sets ``PYTHONDONTWRITEBYTECODE``,
which would otherwise make every run compile abkit's modules again.

Each figure is wall-clock seconds and the CPU seconds of the command and its
children (user + system), because on a shared machine the wall clock of a
two-process pipeline grows with other people's load while the CPU seconds do
not much; the load average is printed around the runs.

    python benchmarks/bench_readout.py --baseline /path/to/other/checkout
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TRIVIAL = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {"tags": ["parameters"]},
            "outputs": [],
            "source": ["x = 1"],
        },
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": ["print(x + 1)"]},
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


LIBRARIES = "import pandas, scipy.special, duckdb, pydantic\nimport matplotlib.pyplot as plt"
"""What a readout's kernel must import before it computes anything (pandas for the result tables, scipy's
special functions for the t and normal tails, DuckDB for the data, pydantic for the spec, matplotlib for the
charts): a notebook doing only this is a floor no readout can go under."""


def with_first_cell(notebook: dict, source: str) -> dict:
    """``notebook`` with ``source`` as its first code cell after the parameters."""
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": [source]}
    return {**notebook, "cells": [notebook["cells"][0], cell, *notebook["cells"][1:]]}


def load() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg())


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the command and its children) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def best(cmd: list[str], env: dict, repeat: int) -> tuple[float, float]:
    runs = [timed(cmd, env) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def readout_cmd(specs: list[str], out: Path, jobs: int = 1) -> list[str]:
    # -P: the working directory is not put first on sys.path, so PYTHONPATH decides which checkout runs (with
    # plain -m a checkout's own abkit/ in the working directory would shadow the --baseline one)
    return [
        sys.executable,
        "-P",
        "-m",
        "abkit.cli",
        "readout",
        *specs,
        "--out",
        str(out),
        "--force",
        "--no-progress",
        "--jobs",
        str(jobs),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline", help="another abkit checkout, timed the same way (before/after)")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    one = [str(ROOT / "specs" / "instant_refunds.yaml")]
    two = [*one, str(ROOT / "specs" / "chatbot_3arm.yaml")]
    print(f"{time.strftime('%Y-%m-%d %H:%M')}; {os.cpu_count()} cores; {load()}")
    figures: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        nb = tmp / "trivial.ipynb"
        nb.write_text(json.dumps(TRIVIAL))
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        papermill = [sys.executable, "-m", "papermill", "--no-progress-bar", "--log-level", "WARNING"]
        figures["trivial papermill notebook"] = best([*papermill, str(nb), str(tmp / "out.ipynb")], env, args.repeat)
        imports = tmp / "imports.ipynb"
        imports.write_text(json.dumps(with_first_cell(TRIVIAL, LIBRARIES)))
        figures["papermill notebook importing the libraries"] = best(
            [*papermill, str(imports), str(tmp / "out.ipynb")], env, args.repeat
        )
        checkouts = [("this tree", str(ROOT))]
        if args.baseline:
            checkouts.append(("baseline", str(Path(args.baseline).resolve())))
        for _, path in checkouts:  # bytecode, as every run after the first has it (see the module doc)
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(path) / "abkit")], check=True)
        for label, path in checkouts:
            env = dict(os.environ, PYTHONPATH=path)
            figures[f"readout, 1 spec ({label})"] = best(readout_cmd(one, tmp / f"one_{label}"), env, args.repeat)
            figures[f"readout --jobs 2, 2 specs ({label})"] = best(
                readout_cmd(two, tmp / f"two_{label}", 2), env, args.repeat
            )
    floor = figures["trivial papermill notebook"]
    for name, (wall, cpu) in figures.items():
        print(
            f"   {name:42s}: {wall:6.2f} s wall ({wall / floor[0]:4.1f}x)   {cpu:6.2f} s CPU ({cpu / floor[1]:4.1f}x)"
        )
    print(f"   ({load()})")
    if args.json:
        Path(args.json).write_text(json.dumps({k: {"wall": w, "cpu": c} for k, (w, c) in figures.items()}, indent=1))


if __name__ == "__main__":
    main()
