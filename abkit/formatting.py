"""Numbers and short phrases for tables, sentences and charts: plain text, no HTML, no abkit imports.

The lowest layer of the words: :mod:`abkit.results`, :mod:`abkit.plots`,
:mod:`abkit.verdict`, :mod:`abkit.segments` and the readouts import from
here, so none of them has to import another for a formatter.

How a change is read (:func:`change_scale`): in NPS *points* for an NPS; as a
*relative* lift ``(treatment - control) / |control|`` when its confidence
interval is bounded (for a negative control value the lift is relative to
the control value's size, so its sign is the sign of the absolute effect);
in the metric's *absolute* units when the control value is not
distinguishable from zero (Fieller's interval of the lift is unbounded: the
data do not bound a relative change, see :mod:`abkit.stats.two_sample`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Iterable

__all__ = [
    "format_p",
    "p_text",
    "interval_text",
    "format_pct",
    "format_number",
    "format_points",
    "signed_interval",
    "change_scale",
    "format_relative",
    "RELATIVE",
    "RELATIVE_TO_SIZE",
    "ABSOLUTE",
    "POINTS",
    "visible_controls",
    "short_label",
    "arm_labels",
    "LABEL_WIDTH",
]

RELATIVE = "relative"
"""A relative lift ``treatment / control - 1`` (positive control value, bounded interval)."""
RELATIVE_TO_SIZE = "relative to size"
"""A relative lift ``(treatment - control) / |control|`` of a negative control value (bounded interval)."""
ABSOLUTE = "absolute"
"""The absolute effect: the control value is not distinguishable from zero (no bounded relative lift)."""
POINTS = "points"
"""NPS points (an NPS is read in points whatever its sign)."""


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def format_p(p: float) -> str:
    """A p-value for a table cell: ``0.041``, ``<0.001``, ``n/a``."""
    if not _finite(p):
        return "n/a"
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}"


def p_text(p: float | None, label: str = "p") -> str:
    """A p-value in a sentence: ``"p = 0.041"``, ``"p < 0.001"``, ``"Holm-adjusted p = 0.876"``.

    Three decimals (the tables' ``format_p``), and "< 0.001" below that: never
    ``p = <0.001`` nor a number like ``5.19e-33`` that only suggests precision.
    """
    if p is None or not _finite(p):
        return f"{label} n/a"
    if p < 0.001:
        return f"{label} < 0.001"
    return f"{label} = {p:.3f}"


def _fixed(x: float, decimals: int, sign: bool = False) -> str:
    """``x`` with ``decimals`` decimals and thousands separators; never ``-0.000``; ``+`` with ``sign``."""
    if not _finite(x):
        return "n/a"
    if round(x, decimals) == 0:
        x = 0.0
    return f"{x:+,.{decimals}f}" if sign else f"{x:,.{decimals}f}"


def _decimals_for(lo: float, hi: float, digits: int = 3) -> int | None:
    """Decimals that show an interval's width with about ``digits`` significant digits (None: no finite width)."""
    if not (_finite(lo) and _finite(hi)):
        return None
    width = abs(hi - lo)
    if width == 0:
        width = max(abs(lo), abs(hi))
    if width == 0:
        return 0
    return int(min(12, max(0, digits - 1 - math.floor(math.log10(width)))))


def interval_text(estimate: float, lower: float, upper: float) -> tuple[str, str]:
    """``(estimate, "[lower, upper]")`` with one number of decimals for all three, chosen from the width.

    ``[-0.00707, -0.000928]`` becomes ``[-0.00707, -0.00093]``: the interval's
    width is shown to about 3 significant digits and both bounds (and the
    estimate) get the same decimals, so they line up and compare at a glance.
    """
    d = _decimals_for(lower, upper)
    if d is None:
        return format_number(estimate, 3), f"[{format_number(lower, 3)}, {format_number(upper, 3)}]"
    return _fixed(estimate, d), f"[{_fixed(lower, d)}, {_fixed(upper, d)}]"


def signed_interval(estimate: float, lower: float, upper: float) -> tuple[str, str, str]:
    """An absolute change and its bounds for a sentence, signed, with one number of decimals for all three.

    ``(0.03731, 0.0124, 0.0622)`` -> ``("+0.0373", "+0.0124", "+0.0622")``
    (decimals from the interval's width, as :func:`interval_text`).
    """
    d = _decimals_for(lower, upper)
    if d is None:
        d = _decimals_for(estimate, estimate) or 0
        lo = _fixed(lower, d, sign=True)
        hi = _fixed(upper, d, sign=True)
        return _fixed(estimate, d, sign=True), lo, hi
    return _fixed(estimate, d, sign=True), _fixed(lower, d, sign=True), _fixed(upper, d, sign=True)


def format_pct(x: float, digits: int = 1, sign: bool = True) -> str:
    """A share or relative change in percent: ``+4.1%`` (``sign=False``: ``4.1%``); ``n/a`` when not finite."""
    if not _finite(x):
        return "n/a"
    return f"{x * 100:+.{digits}f}%" if sign else f"{x * 100:.{digits}f}%"


def format_number(x: float, sig: int = 4) -> str:
    """Round to ``sig`` significant digits, with thousands separators for big numbers."""
    if not _finite(x):
        return "n/a"
    if x == 0:
        return "0"
    mag = int(math.floor(math.log10(abs(x))))
    if mag >= sig - 1:
        return f"{x:,.0f}"
    decimals = max(sig - 1 - mag, 0)
    return f"{x:,.{decimals}f}"


def format_points(x: float, digits: int = 2) -> str:
    """A signed change in NPS points: ``+1.25``, ``-0.27`` (``n/a`` when not finite)."""
    if not _finite(x):
        return "n/a"
    return f"{x:+.{digits}f}"


_points = format_points  # the former private name


def change_scale(row: dict, kind: str | None = None) -> str:
    """How the change of one result row is read in words: :data:`POINTS`, :data:`RELATIVE`,
    :data:`RELATIVE_TO_SIZE` or :data:`ABSOLUTE` (module docstring).

    ``kind`` is the metric's kind (``"nps"`` reads in points). A row whose
    relative lift or either bound of its relative interval is not finite is
    read in absolute units: its control value is not distinguishable from
    zero at the result's level (Fieller), or is zero.
    """
    if kind == "nps":
        return POINTS
    if not all(_finite(row.get(k)) for k in ("rel_effect", "rel_ci_lower", "rel_ci_upper")):
        return ABSOLUTE
    return RELATIVE_TO_SIZE if float(row.get("control_value", 0.0)) < 0 else RELATIVE


def format_relative(row: dict, digits: int = 2, near_zero: str = "n/a") -> str:
    """A row's relative lift for a table cell: ``+4.12%``; ``+40.88% of |control|`` for a negative control
    value; ``near_zero`` when the control value is not distinguishable from zero (:func:`change_scale`)."""
    scale = change_scale(row)
    if scale == ABSOLUTE:
        return near_zero
    return format_pct(row["rel_effect"], digits) + (" of |control|" if scale == RELATIVE_TO_SIZE else "")


# --------------------------------------------------------------------------- user strings shown to people
_INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def visible_controls(text: str) -> str:
    """``text`` with bidirectional controls and control characters shown as ``<U+202E>`` marks.

    Bidi override and isolate characters (U+202A-U+202E, U+2066-U+2069,
    U+200E/U+200F, U+061C) would display a name reversed ("evil\u202egnp.exe"
    reads "evilexe.png"), and C0/C1 control characters (other than tab, newline
    and carriage return, which a page shows as white space) act on a terminal
    or vanish; as visible marks they can be seen and
    reported. Every string a page or a chart shows goes through this (the
    pages' template engine applies it to every printed value).
    """
    return _INVISIBLE.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)


LABEL_WIDTH = 40
"""Characters of a user string shown in a chart label (a segment value, an arm, a metric name): longer ones
are cut with an ellipsis so that one 300-character value cannot squeeze the chart; the tables show them whole."""


def short_label(value, width: int = LABEL_WIDTH) -> str:
    """A user string for a chart: controls made visible (:func:`visible_controls`), runs of whitespace shown
    as one space, and cut to ``width`` characters with an ellipsis (``"a very long segm…"``)."""
    text = " ".join(visible_controls(str(value)).split()) or repr(str(value))
    return text if len(text) <= width else text[: max(width - 1, 1)].rstrip() + "\u2026"


_SPACE_MARKS = {" ": "\u2423", "\t": "\u21e5", "\n": "\u21b5", "\r": "\u21b5"}


def _visible_whitespace(text: str) -> str:
    marked = "".join(_SPACE_MARKS.get(c, f"<U+{ord(c):04X}>") if c.isspace() else c for c in text)
    return f'"{marked}"'


def arm_labels(arms: Iterable[Hashable]) -> dict:
    """How each arm is named on a page: ``str(arm)``, except for arms whose names differ only in whitespace.

    A page collapses runs of whitespace and drops it at the ends, so arms
    ``"control"`` and ``"control "`` would both read "control" ("control vs
    control"). Those are shown quoted with their whitespace made visible
    (``"control"`` and ``"control\u2423"``: U+2423 for a space, U+21E5 for a
    tab, ``<U+00A0>`` for other spaces), so the reader sees two arms and why.
    """
    arms = list(dict.fromkeys(arms))
    plain = {a: str(a) for a in arms}
    groups: dict[str, list] = {}
    for a in arms:
        groups.setdefault(" ".join(plain[a].split()), []).append(a)
    out = {}
    for a in arms:
        clash = len(groups[" ".join(plain[a].split())]) > 1
        out[a] = _visible_whitespace(plain[a]) if clash else plain[a]
    return out
