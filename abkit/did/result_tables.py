"""Numbers and tables of the DiD result objects (text and notebook HTML tables)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._html import bold, frame_table


def _fmt(x, digits=4) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}"


def _fmt_p(p) -> str:
    if p is None or not np.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _cell(column, value) -> str:
    if isinstance(value, (float, np.floating)):
        return _fmt_p(value) if "p_value" in str(column) else _fmt(value)
    return str(value)


def _table_html(df: pd.DataFrame, title: str, notes: Sequence[str] = ()) -> str:
    return frame_table(df, _cell, caption=bold(title), notes=notes)
