"""The HTML of the pages: Jinja2 templates in ``templates/html/pages/``, autoescaped.

(The engine itself is :mod:`abkit._html`, one layer down, so that the result
tables of JupyterLab use it too; this module is the readouts' name for it.)

Python computes the numbers and the words (``abkit.readout.render``,
``rollout``, ``plan``, ``abkit.verdict``); the templates lay them out. Every
``{{ value }}`` is escaped by the template engine (autoescaping is on for
every template, whatever its file name), so escaping is not a call someone
can forget; only :class:`markupsafe.Markup` (a rendered fragment, or markup
built from already-escaped parts) passes through as it is.

Every printed string is also *neutralised* (:func:`neutral`): bidirectional
override and isolate characters (U+202A-U+202E, U+2066-U+2069, U+200E/U+200F,
U+061C), which would display a name reversed ("evil\u202egnp.exe"), and C0/C1
control characters other than tab, newline and carriage return are shown as visible
``<U+202E>`` marks instead of acting on the text.

Where the templates come from: an analyst's own copies first, when the
readout runs with ``abkit readout --templates DIR`` (the runner passes
``DIR`` to the kernel as ``ABKIT_TEMPLATES``) and ``DIR/html/pages/`` holds
the file; the shipped ones otherwise. So a page can be changed by editing a
template, with no Python change.
"""

from __future__ import annotations

from .._html import PAGES_SUBDIR, TEMPLATES_ENV, environment, neutral
from .._html import render as render_page

__all__ = ["render_page", "neutral", "environment", "PAGES_SUBDIR", "TEMPLATES_ENV"]
