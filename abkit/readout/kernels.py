"""The readout kernels' environment: thread limits for a batch (``--jobs N``), and imports warmed meanwhile.

Each readout runs in its own kernel process, and numpy's BLAS (OpenBLAS, MKL,
Accelerate) and OpenMP code start one thread per core in every process by
default: with N kernels at once on C cores that is N x C busy threads on C
cores, and the batch gets slower than running the readouts one by one
(threads time-slice, evict each other's caches and spin-wait). The runner
gives each kernel ``max(1, C // N)`` threads through the environment
variables these libraries read when they load (before numpy is imported in
the kernel). Limits the user set in the environment are kept. One readout at
a time (``--jobs 1``) changes nothing.

While a kernel starts and runs its notebook, the runner's own process waits;
:func:`warm_imports` uses that time to import what the runner needs only
after the kernel, in a background thread, so that on a machine with a free
core it is off the readout's critical path: nbconvert for the HTML export
(about 0.3 s of CPU) and the page code of summary.md, the store's rows,
history.html and the index and programme pages (the verdict's wording,
matplotlib for the programme page's forest plots: about 0.8 s). The runner
imports them where it uses them, so a Ctrl-C that comes before the warm-up
is done waits for it (an import in progress in another thread is finished,
not repeated) and still writes the index. After the imports it compiles what
the first export and the first pages compile (nbconvert's and the pages'
Jinja2 templates, the CSS selectors nbconvert's HTML clean-up uses: about
0.5 s of a readout's first export, measured), through the runner's
``warm_up`` callable.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Mapping

__all__ = ["THREAD_VARIABLES", "WARM_MODULES", "kernel_environment", "threads_per_kernel", "warm_imports"]

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on (containers, taskset)
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_kernel(jobs: int, cores: int | None = None) -> int | None:
    """``max(1, cores // jobs)`` when several kernels run at once; ``None`` (no limit) for one job."""
    if jobs <= 1:
        return None
    return max(1, (cores or _cores()) // jobs)


def kernel_environment(env: Mapping[str, str] | None, threads: int | None) -> dict[str, str]:
    """``env`` (default: this process's) with each BLAS/OpenMP thread limit set to ``threads`` unless set already."""
    out = dict(os.environ if env is None else env)
    if threads:
        for name in THREAD_VARIABLES:
            out.setdefault(name, str(int(threads)))
    return out


WARM_MODULES = (
    "nbconvert.exporters.html",
    "abkit.readout.digest",
    "abkit.readout.records",
    "abkit.readout.programme_pages",
    "abkit.portfolio",
    "matplotlib.figure",
)
_WARMING: list[threading.Thread] = []
_WARM_LOCK = threading.Lock()


def _warm_quietly(names, then) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - a warm-up only; the real import reports any problem later
            continue
    if then is not None:
        try:
            then()
        except Exception:  # noqa: BLE001, S110 - a warm-up only; the real call reports any problem later
            pass


def warm_imports(names=WARM_MODULES, then: Callable[[], object] | None = None) -> threading.Thread:
    """Import ``names``, then call ``then`` (first-use work: compiling templates), in one daemon thread
    started once per process; returns the thread."""
    with _WARM_LOCK:
        if not _WARMING:
            thread = threading.Thread(
                target=_warm_quietly, args=(tuple(names), then), name="abkit-warm-imports", daemon=True
            )
            thread.start()
            _WARMING.append(thread)
        return _WARMING[0]
