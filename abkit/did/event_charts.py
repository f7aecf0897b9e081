"""Charts of the DiD results: raw trends by launch cohort, event-study effects with bands."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..plots import style_axes


def _plot_trends(trends: pd.DataFrame, outcome: str, ax=None, launches: Sequence[float] = ()):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.2))
    for cohort, part in trends.groupby("cohort", sort=True, observed=True):
        style = dict(color="black", lw=2.2) if cohort in ("never treated", "control") else dict(lw=1.6)
        ax.plot(part["time"], part["mean"], label=str(cohort), **style)
    for t in launches:
        ax.axvline(t, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("period")
    ax.set_ylabel(f"mean {outcome}")
    ax.set_title(f"Raw trends of {outcome} by launch cohort", loc="left", fontsize=11)
    ax.legend(fontsize=8, frameon=False)
    style_axes(ax, grid=None)
    return ax


def _event_plot(table: pd.DataFrame, label: str, title: str, ax=None, alpha: float = 0.05, outcome: str = ""):
    """Estimates with pointwise CIs and the uniform band; reference rows (fixed at 0) as hollow points.

    The band is drawn separately before and after launch (and never through
    the reference period, which has no uncertainty by construction). The
    y axis is the effect in the units of ``outcome`` (a difference of the
    outcome as analysed: of the rate for ``("contacts", "orders")``, in log
    points for a log outcome), never a percentage.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.2))
    x = table[label].to_numpy(dtype=float)
    est = table["estimate"].to_numpy(dtype=float)
    ref = table["reference"].to_numpy(dtype=bool) if "reference" in table else np.zeros(x.size, bool)
    est_rows = ~ref & np.isfinite(table["ci_lower"].to_numpy(dtype=float))
    if "band_lower" in table:
        blo, bhi = table["band_lower"].to_numpy(dtype=float), table["band_upper"].to_numpy(dtype=float)
        segments = (x < 0, x >= 0) if label == "event_time" else (np.ones(x.size, bool),)
        first = True
        for seg in segments:
            m = seg & est_rows & np.isfinite(blo) & np.isfinite(bhi)
            if m.any():
                ax.fill_between(
                    x[m],
                    blo[m],
                    bhi[m],
                    color="#0969da",
                    alpha=0.15,
                    lw=0,
                    label=f"{1 - alpha:.0%} uniform band" if first else None,
                )
                first = False
    lo, hi = table["ci_lower"].to_numpy(dtype=float), table["ci_upper"].to_numpy(dtype=float)
    ax.errorbar(
        x[est_rows],
        est[est_rows],
        yerr=[est[est_rows] - lo[est_rows], hi[est_rows] - est[est_rows]],
        fmt="o",
        color="#0969da",
        capsize=3,
        ms=5,
        label=f"{1 - alpha:.0%} pointwise CI",
    )
    if ref.any():
        ax.plot(x[ref], est[ref], "o", ms=6, mfc="white", color="#0969da", label="reference period (0 by construction)")
    ax.axhline(0, color="black", lw=0.8)
    if label == "event_time":
        from matplotlib.ticker import MaxNLocator

        ax.axvline(-0.5, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("periods since launch")
        if np.all(x == np.round(x)):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.set_xlabel({"group": "launch cohort (first treated period)", "time": "period"}.get(label, label))
    ax.set_ylabel(f"change in {outcome} (absolute)" if outcome else "effect", parse_math=False)
    ax.set_title(title, loc="left", fontsize=11, parse_math=False)
    ax.legend(fontsize=8, frameon=False)
    style_axes(ax, grid=None)
    return ax
