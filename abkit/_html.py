"""The result tables of ``_repr_html_`` (JupyterLab): one caption, one table, notes below.

Every cell, header, caption and note is plain text and escaped here with
:func:`html.escape`; only :class:`Html` (markup whose user text the caller
has escaped already) is inserted as it is.
"""
from __future__ import annotations

import html
from collections.abc import Callable, Iterable

MUTED = "color:#57606a"
ALERT = "color:#cf222e;font-weight:700"


class Html(str):
    """Markup inserted as it is (its user text already escaped); ``colspan`` for a cell spanning columns."""

    colspan: int = 1

    def __new__(cls, markup: str = "", colspan: int = 1):
        self = super().__new__(cls, markup)
        self.colspan = colspan
        return self


def esc(text) -> str:
    """``text`` as HTML: an :class:`Html` as it is, anything else as ``str()``, escaped."""
    return text if isinstance(text, Html) else html.escape(str(text))


def bold(text) -> Html:
    return Html(f"<b>{esc(text)}</b>")


def _td(cell) -> str:
    span = getattr(cell, "colspan", 1)
    return f"<td colspan={span}>{esc(cell)}</td>" if span > 1 else f"<td>{esc(cell)}</td>"


def html_table(head: Iterable, rows: Iterable[Iterable], *, caption=None, notes: Iterable = ()) -> str:
    """A ``<table class="abkit-table">``: ``head`` the column names, ``rows`` the formatted cells.

    ``caption`` (if any) is a paragraph above the table; each of ``notes`` a
    grey paragraph below it, or a ``(text, css style)`` pair (e.g. ``ALERT``).
    """
    out = [] if caption is None else [f"<p>{esc(caption)}</p>"]
    out.append('<table class="abkit-table"><thead><tr>')
    out += [f"<th>{esc(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    out += ["<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in rows]
    out.append("</tbody></table>")
    for note in notes:
        text, style = note if isinstance(note, tuple) else (note, MUTED)
        out.append(f'<p style="{style}">{esc(text)}</p>')
    return "\n".join(out)


def frame_table(df, cell: Callable[[object, object], str] = lambda column, value: str(value), **kwargs) -> str:
    """:func:`html_table` of a DataFrame: its columns, each value formatted by ``cell(column, value)``."""
    rows = ([cell(c, v) for c, v in zip(df.columns, row)] for row in df.itertuples(index=False))
    return html_table(df.columns, rows, **kwargs)
