"""Plots of results (matplotlib, imported lazily)."""
from __future__ import annotations

import numpy as np

__all__ = ["plot_lifts"]

_COLOURS = {"better": "#1a7f37", "worse": "#cf222e", "neutral": "#57606a"}


def plot_lifts(result, ax=None, variant=None):
    """Forest plot: relative lift and its CI per metric (and arm), coloured by outcome.

    Green = significantly better, red = significantly worse (given each
    metric's good direction), grey = not significant.
    """
    import matplotlib.pyplot as plt

    rows = [r for r in result.rows if variant is None or r["variant"] == variant]
    several = len(result.treatments) > 1 and variant is None
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.55 * len(rows) + 1.4))
    labels, y = [], np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows):
        colour = _COLOURS[result.outcome(r)]
        lo, hi, mid = r["rel_ci_lower"] * 100, r["rel_ci_upper"] * 100, r["rel_effect"] * 100
        ax.plot([lo, hi], [yi, yi], color=colour, lw=2.5, solid_capstyle="round")
        ax.plot([mid], [yi], "o", color=colour, ms=7)
        ax.annotate(f"{mid:+.1f}%", (mid, yi), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize=8, color=colour)
        arrow = "\u2191" if r["better"] == "higher" else "\u2193"
        labels.append(f"{r['metric']} ({arrow} better)" + (f"\n{r['variant']}" if several else ""))
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y)
    for text in ax.set_yticklabels(labels):
        text.set_parse_math(False)  # user text: a '$' is a dollar, not mathtext
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(f"relative lift vs {result.control} (%), with {1 - result.alpha:.0%} confidence interval",
                  parse_math=False)
    ax.set_title("Relative lift per metric", loc="left", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.figure.tight_layout()
    return ax
