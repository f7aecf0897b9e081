"""HTML from Jinja2 templates: the engine of the readout pages and of the ``_repr_html_`` result tables.

Every page fragment abkit shows is a template in ``templates/html/pages/``
rendered by :func:`render` (the readouts reach it through
:func:`abkit.readout.pages.render_page`). Autoescaping is on for every
template, so every ``{{ value }}`` is escaped by the engine and escaping is not
a call someone can forget; only :class:`markupsafe.Markup` (a rendered
fragment) passes as it is. Every printed string is also neutralised
(:func:`neutral`): bidi controls and control characters are shown as visible
``<U+202E>`` marks (:func:`abkit.formatting.visible_controls`).

Where the templates come from: the folder named by the environment variable
``ABKIT_TEMPLATES`` first (``abkit readout --templates DIR`` sets it for the
kernel) when ``DIR/html/pages/`` holds the file, the shipped ``templates/``
otherwise (``abkit/templates`` in a wheel, the checkout's top-level folder).

The result tables of JupyterLab (``_repr_html_``) are :func:`html_table`: a
caption, one table and notes below, laid out by ``table.html.j2``. A cell is
any value (shown as ``str()``) or a :class:`Cell` (bold lead words, a small
second line, a colour by outcome, a column span); the template writes the
markup, with inline styles because a notebook has no abkit style sheet.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from markupsafe import Markup, escape

from .errors import AbkitError
from .formatting import visible_controls

__all__ = [
    "render",
    "environment",
    "neutral",
    "Cell",
    "bold",
    "html_table",
    "frame_table",
    "Html",
    "esc",
    "MUTED",
    "ALERT",
    "PAGES_SUBDIR",
    "TEMPLATES_ENV",
]

PAGES_SUBDIR = Path("html") / "pages"
TEMPLATES_ENV = "ABKIT_TEMPLATES"  # the runner's --templates DIR, as the kernel sees it

MUTED = "muted"
"""A grey note under a result table."""
ALERT = "alert"
"""A red, bold note under a result table (a failed check)."""


def neutral(value):
    """``value`` with bidi controls and control characters made visible (``<U+202E>``); Markup unchanged."""
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return visible_controls(value)


def shipped_pages() -> Path:
    """The shipped page templates: ``abkit/templates/html/pages`` in a wheel, ``templates/html/pages`` in a checkout."""
    package = Path(__file__).resolve().parent
    for base in (package / "templates", package.parent / "templates"):
        if (base / PAGES_SUBDIR).is_dir():
            return base / PAGES_SUBDIR
    raise AbkitError(
        f"the page templates (templates/{PAGES_SUBDIR.as_posix()}) were not found next to the abkit "
        f"package ({package}); reinstall abkit"
    )


def _folders() -> tuple[str, ...]:
    shipped = shipped_pages()
    own = os.environ.get(TEMPLATES_ENV)
    if own and (Path(own) / PAGES_SUBDIR).is_dir() and (Path(own) / PAGES_SUBDIR).resolve() != shipped.resolve():
        return (str(Path(own) / PAGES_SUBDIR), str(shipped))
    return (str(shipped),)


@lru_cache(maxsize=4)
def _environment(folders: tuple[str, ...]):
    import jinja2  # on first use: `import abkit` stays light

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(list(folders)),
        autoescape=True,  # every template, whatever its name
        finalize=neutral,  # every {{ value }}: bidi and control characters neutralised
        undefined=jinja2.StrictUndefined,  # a misspelt name in a template fails loudly, not as ""
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def environment():
    """The page environment (an analyst's own templates first, see the module doc)."""
    return _environment(_folders())


def render(template: str, /, **context) -> Markup:
    """Render ``templates/html/pages/<template>`` with ``context``; the result is safe markup."""
    return Markup(environment().get_template(template).render(**context))


# --------------------------------------------------------------------------- result tables
@dataclass(frozen=True)
class Cell:
    """A table cell, caption or note with some structure, for ``table.html.j2``.

    ``strong``: bold words before ``text``; ``note``: a small second line;
    ``tone``: ``"better"`` / ``"worse"`` / ``"neutral"`` colours ``text`` as the
    readouts do; ``colspan``: the columns the cell spans.
    """

    text: object = ""
    strong: object = None
    note: object = None
    tone: str | None = None
    colspan: int = 1

    def __html__(self) -> str:
        return str(render("table.html.j2", part=_cell(self)))

    __str__ = __html__


def bold(text) -> Cell:
    """``text`` in bold (a caption's or cell's lead words)."""
    return Cell(strong=str(text))


class Html(Markup):
    """Markup inserted as it is. Legacy: new code passes plain values or :class:`Cell` (no HTML in Python)."""

    colspan: int = 1

    def __new__(cls, markup: str = "", colspan: int = 1):
        self = super().__new__(cls, markup)
        self.colspan = colspan
        return self


def esc(text) -> Markup:
    """``text`` escaped (legacy, for :class:`Html`); :class:`Cell` and Markup as they are."""
    return escape(text)


def _cell(value) -> dict:
    """A cell as plain data for the template: text parts, or markup (:class:`Html`) to insert as it is."""
    if isinstance(value, Cell):
        return {
            "text": "" if value.text is None else str(value.text),
            "strong": value.strong,
            "note": value.note,
            "tone": value.tone,
            "colspan": value.colspan,
            "markup": None,
        }
    if isinstance(value, Markup):
        return {
            "text": "",
            "strong": None,
            "note": None,
            "tone": None,
            "colspan": getattr(value, "colspan", 1),
            "markup": value,
        }
    return {"text": str(value), "strong": None, "note": None, "tone": None, "colspan": 1, "markup": None}


def html_table(head: Iterable, rows: Iterable[Iterable], *, caption=None, notes: Iterable = ()) -> str:
    """A ``<table class="abkit-table">``: ``head`` the column names, ``rows`` the formatted cells.

    ``caption`` (if any) is a paragraph above the table; each of ``notes`` a
    grey paragraph below it, or a ``(text, kind)`` pair with ``kind``
    :data:`ALERT` (red) or :data:`MUTED` (grey).
    """
    notes_data = []
    for note in notes:
        text, kind = note if isinstance(note, tuple) else (note, MUTED)
        notes_data.append({**_cell(text), "kind": kind})
    return str(
        render(
            "table.html.j2",
            caption=None if caption is None else _cell(caption),
            head=[_cell(h) for h in head],
            rows=[[_cell(c) for c in row] for row in rows],
            notes=notes_data,
        )
    )


def frame_table(df, cell: Callable[[object, object], object] = lambda column, value: str(value), **kwargs) -> str:
    """:func:`html_table` of a DataFrame: its columns, each value formatted by ``cell(column, value)``."""
    rows = ([cell(c, v) for c, v in zip(df.columns, row)] for row in df.itertuples(index=False))
    return html_table(df.columns, rows, **kwargs)
