"""Readouts: render results as HTML and run papermill notebooks for many experiments.

* :mod:`abkit.readout.render` - the sections of an A/B readout (header,
  verdict, health checks, metric table, charts, methodology) as data for the
  page templates of ``templates/html/pages/`` (:mod:`abkit.readout.pages`), and
  the portfolio page.
* :mod:`abkit.readout.ab` - the A/B health checks, cumulative effect and segments.
* :mod:`abkit.readout.rollout` - the difference-in-differences readout: panel,
  effects, pre-trend test, robustness, its sections for the page templates.
* :mod:`abkit.readout.runner` - :func:`run_readouts`: spec files -> executed
  notebooks -> self-contained HTML pages (what ``abkit readout`` runs).
"""
from __future__ import annotations

from .runner import ReadoutOutcome, export_html, run_readouts, slugify, validate_specs


def __getattr__(name: str):
    # render (results, plots: pandas, scipy.stats, matplotlib) loads on first use, not with the runner
    if name == "render":
        import importlib

        return importlib.import_module(".render", __name__)
    raise AttributeError(f"module 'abkit.readout' has no attribute {name!r}")

__all__ = ["ReadoutOutcome", "export_html", "render", "run_readouts", "slugify", "validate_specs"]
