"""Readouts: render results as HTML and run papermill notebooks for many experiments.

* :mod:`abkit.readout.render` - the sections of an A/B readout (header,
  verdict, health checks, metric table, charts, methodology) as data for the
  page templates of ``templates/html/pages/`` (:mod:`abkit.readout.pages`).
* :mod:`abkit.readout.ab` - the A/B health checks, cumulative effect and segments.
* :mod:`abkit.readout.rollout` - the difference-in-differences readout: panel,
  effects, pre-trend test, robustness, its sections for the page templates.
* :mod:`abkit.readout.runner` - :func:`run_readouts`: spec files -> executed
  notebooks -> self-contained HTML pages (what ``abkit readout`` runs), each
  readout's rows recorded in the results store.
* :mod:`abkit.readout.records` - a readout's results as rows of the results store.
* :mod:`abkit.readout.programme_pages` - index.html, programme.html and each
  experiment's history.html, built from the results store.
* :mod:`abkit.readout.digest` - summary.md's five lines and the impact in business terms.
* :mod:`abkit.readout.pdf` - readout.pdf through headless Chromium.
"""

from __future__ import annotations

import importlib

__all__ = ["ReadoutOutcome", "export_html", "render", "run_readouts", "slugify", "validate_specs"]

_FROM_RUNNER = ("ReadoutOutcome", "export_html", "run_readouts", "slugify", "validate_specs")


def __getattr__(name: str):
    # Loaded on first use: the runner starts its kernels before it loads the page code (pandas, matplotlib,
    # the verdict's statistics), and `abkit readout` should not pay for the A/B sections' module up front.
    if name == "render":
        return importlib.import_module(".render", __name__)
    if name in _FROM_RUNNER:
        return getattr(importlib.import_module(".runner", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
