"""The HTML of the pages: Jinja2 templates in ``templates/html/pages/``, autoescaped.

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

import os
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from ..formatting import visible_controls
from .templates import templates_dir

__all__ = ["render_page", "neutral", "environment", "PAGES_SUBDIR", "TEMPLATES_ENV"]

PAGES_SUBDIR = Path("html") / "pages"
TEMPLATES_ENV = "ABKIT_TEMPLATES"         # the runner's --templates DIR, as the kernel sees it

def neutral(value):
    """``value`` with bidi controls and control characters made visible (``<U+202E>``); Markup unchanged.

    (:func:`abkit.formatting.visible_controls`, which the charts' labels use too.)
    """
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return visible_controls(value)


def _folders() -> tuple[str, ...]:
    shipped = templates_dir() / PAGES_SUBDIR
    own = os.environ.get(TEMPLATES_ENV)
    if own and (Path(own) / PAGES_SUBDIR).is_dir() and (Path(own) / PAGES_SUBDIR).resolve() != shipped.resolve():
        return (str(Path(own) / PAGES_SUBDIR), str(shipped))
    return (str(shipped),)


@lru_cache(maxsize=4)
def _environment(folders: tuple[str, ...]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(list(folders)),
        autoescape=True,                       # every template, whatever its name
        finalize=neutral,                      # every {{ value }}: bidi and control characters neutralised
        undefined=jinja2.StrictUndefined,      # a misspelt name in a template fails loudly, not as ""
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    return env


def environment() -> jinja2.Environment:
    """The page environment (an analyst's own templates first, see the module doc)."""
    return _environment(_folders())


def render_page(template: str, /, **context) -> Markup:
    """Render ``templates/html/pages/<name>`` with ``context``; the result is safe markup."""
    return Markup(environment().get_template(template).render(**context))
