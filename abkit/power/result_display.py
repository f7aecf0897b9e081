"""How power results print: numbers, percentages, HTML tables and chart finishing (no math here)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._html import frame_table
from ..plots import style_axes
from ..results import format_number

LABEL_BOX = {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85}


def table_html(df: pd.DataFrame, formats: dict, **kwargs) -> str:
    return frame_table(df, lambda c, v: formats[c](v) if c in formats else str(v), **kwargs)


def fmt_pct(x, digits=2) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x * 100:.{digits}f}%"


def fmt_num(x, sig=4) -> str:
    return format_number(x, sig)


def fmt_int(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{int(x):,}"


def finish_axes(ax, legend_loc: str = "best") -> None:
    """Grid, legend (user text drawn literally), no top/right spines, tight layout."""
    legend = ax.legend(fontsize=8, frameon=False, loc=legend_loc)
    texts = [*legend.get_texts(), ax.xaxis.label, ax.yaxis.label, *(ax.get_children())]
    for text in texts:
        if hasattr(text, "set_parse_math"):
            text.set_parse_math(False)
    style_axes(ax)
