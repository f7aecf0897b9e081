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

from . import render
from .runner import ReadoutOutcome, export_html, run_readouts, slugify, validate_specs

__all__ = ["ReadoutOutcome", "export_html", "render", "run_readouts", "slugify", "validate_specs"]
