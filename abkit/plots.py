"""Plots of results (matplotlib, imported lazily).

Forest plots draw relative lifts ``(treatment - control) / |control|``
(:mod:`abkit.stats.two_sample`), so a dot right of zero is always an increase, also
for a negative control value (its row says "% of |control|"). A row whose
control value is not distinguishable from zero has no bounded relative lift:
its unbounded interval is drawn dotted and labelled, and the row gives the
absolute effect instead of a relative number. This module imports no result
class (the results import it): the formatters come from :mod:`abkit.formatting`.
"""

from __future__ import annotations

import numpy as np

from .formatting import (
    ABSOLUTE,
    RELATIVE_TO_SIZE,
    arm_labels,
    change_scale,
    format_number,
    p_text,
    short_label,
    signed_interval,
)

__all__ = ["plot_lifts", "plot_sequential_path", "plot_segments", "style_axes"]

_COLOURS = {"better": "#1a7f37", "worse": "#cf222e", "neutral": "#57606a"}


def _reach(values) -> float:
    """How far an unbounded interval is drawn: 1.3x the largest finite |value| (10 if none)."""
    v = np.abs(np.asarray([x for x in values if x is not None], dtype=np.float64))
    v = v[np.isfinite(v)]
    return 1.3 * float(v.max()) if v.size and v.max() > 0 else 10.0


def _interval(ax, lo, hi, y, colour, reach, lw=2.5):
    """A CI bar at height y; an unbounded end (Fieller: the control value is not distinguishable from 0)
    is drawn dotted to the edge and labelled, rather than vanishing (which would read as precision)."""
    if np.isfinite(lo) and np.isfinite(hi):
        ax.plot([lo, hi], [y, y], color=colour, lw=lw, solid_capstyle="round")
        return
    if np.isnan(lo) or np.isnan(hi):
        return
    a, b = max(lo, -reach), min(hi, reach)
    ax.plot([a, b], [y, y], color=colour, lw=lw * 0.6, ls=":")
    ax.annotate(
        "CI unbounded",
        (b if not np.isfinite(hi) else a, y),
        textcoords="offset points",
        xytext=(0, -11),
        ha="right" if not np.isfinite(hi) else "left",
        fontsize=7,
        color=colour,
    )


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
    names = arm_labels(getattr(result, "arms", ()))  # arms differing only in white space: told apart
    reach = _reach(
        [
            100 * r[k]
            for r in rows
            if change_scale(r) != ABSOLUTE
            for k in ("rel_ci_lower", "rel_ci_upper", "rel_effect")
        ]
    )
    kinds = {m.name: getattr(m, "kind", None) for m in getattr(result, "metrics", ())}
    for yi, r in zip(y, rows):
        colour = _COLOURS[result.outcome(r)]
        lo, hi, mid = r["rel_ci_lower"] * 100, r["rel_ci_upper"] * 100, r["rel_effect"] * 100
        scale = change_scale(r)
        _interval(ax, lo, hi, yi, colour, reach)
        arrow = "\u2191" if r["better"] == "higher" else "\u2193"
        label = f"{short_label(r['metric'])} ({arrow} better)" + (
            f"\n{short_label(names.get(r['variant'], r['variant']))}" if several else ""
        )
        points = kinds.get(r["metric"]) == "nps"
        unit = " points" if points else ""
        if scale == ABSOLUTE:
            # no bounded relative lift: no dot at a meaningless relative number; the absolute effect instead
            e, elo, ehi = signed_interval(r["effect"], r["ci_lower"], r["ci_upper"])
            ax.annotate(
                f"relative lift n/a (control \u2248 0); effect {e}{unit} [{elo}, {ehi}]",
                (0, yi),
                textcoords="offset points",
                xytext=(4, 7),
                ha="left",
                fontsize=8,
                color=colour,
            )
        else:
            ax.plot([mid], [yi], "o", color=colour, ms=7)
            text = f"{mid:+.1f}%"
            if points:
                text += f" ({r['effect']:+.1f} points)"
            ax.annotate(
                text, (mid, yi), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8, color=colour
            )
            if scale == RELATIVE_TO_SIZE:
                label += f"\n% of |control| = {format_number(abs(r['control_value']))}"
        labels.append(label)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y)
    for text in ax.set_yticklabels(labels):
        text.set_parse_math(False)  # user text: a '$' is a dollar, not mathtext
    ax.set_ylim(-0.7, len(rows) - 0.3)
    kind = "always-valid confidence interval" if getattr(result, "sequential", False) else "confidence interval"
    size = " of |control|" if any(change_scale(r) == RELATIVE_TO_SIZE for r in rows) else ""
    control = short_label(names.get(result.control, result.control))
    ax.set_xlabel(f"relative lift vs {control} (%{size}), with {1 - result.alpha:.0%} {kind}", parse_math=False)
    ax.set_title("Relative lift per metric", loc="left", fontsize=11)
    style_axes(ax, "x")
    return ax


def style_axes(ax, grid: str | None = "both", *, alpha: float = 0.3, tight: bool = True) -> None:
    """The house style of an Axes (or several, of one figure).

    A light grid (``grid``: ``"both"``, ``"x"``, ``"y"``, or None for no
    grid; ``alpha`` its opacity), no top and right spines and, with
    ``tight``, a tight layout of the figure.
    """
    axes = np.atleast_1d(ax).ravel()
    for a in axes:
        if grid:
            a.grid(axis=grid, alpha=alpha)
        for side in ("top", "right"):
            a.spines[side].set_visible(False)
    if tight:
        axes[0].figure.tight_layout()


def _grid(n_panels: int, ax, width: float = 7.5, height: float = 3.0):
    import matplotlib.pyplot as plt

    if ax is not None:
        axes = np.atleast_1d(ax).ravel()
        if len(axes) < n_panels:
            from .errors import AbkitError

            raise AbkitError(f"{n_panels} panels to draw but {len(axes)} axes given; pass ax=None")
        return axes
    _, axes = plt.subplots(n_panels, 1, figsize=(width, height * n_panels), squeeze=False)
    return axes.ravel()


def _select(df, metric, variant):
    """Rows of ``metric`` / ``variant`` (None: all) and their (metric, variant) pairs in order; an
    AbkitError when nothing is left."""
    if metric is not None:
        df = df[df.metric == metric]
    if variant is not None:
        df = df[df.variant == variant]
    pairs = list(dict.fromkeys(zip(df.metric, df.variant)))
    if not pairs:
        from .errors import AbkitError

        raise AbkitError(f"nothing to plot for metric={metric!r}, variant={variant!r}")
    return df, pairs


def plot_sequential_path(path, metric=None, variant=None, relative=False, ax=None):
    """Estimate per day with its always-valid interval (shaded) and the naive CI (dashed).

    One panel per metric x arm; a vertical line marks the first day stopping
    was allowed (the always-valid interval excluded zero).
    """
    df = path.frame
    df, pairs = _select(df, metric, variant)
    axes = _grid(len(pairs), ax)
    pre = "rel_" if relative else ""
    scale = 100.0 if relative else 1.0
    numeric_days = None
    for a, (m, v) in zip(axes, pairs):
        g = df[(df.metric == m) & (df.variant == v)]
        x = g["day"].to_numpy()
        if numeric_days is None:
            numeric_days = np.issubdtype(np.asarray(x).dtype, np.number) or np.issubdtype(
                np.asarray(x).dtype, np.datetime64
            )
        xs = x if numeric_days else np.arange(len(x))
        est = g[f"{pre}effect"].to_numpy() * scale
        a.fill_between(
            xs,
            g[f"{pre}ci_lower"] * scale,
            g[f"{pre}ci_upper"] * scale,
            color="#0969da",
            alpha=0.18,
            lw=0,
            label=f"always-valid {1 - path.alpha:.0%} interval",
        )
        a.plot(
            xs,
            g[f"{pre}ci_lower_fixed"] * scale,
            color="#57606a",
            ls="--",
            lw=1,
            label=f"naive {1 - path.alpha:.0%} CI (one look only)",
        )
        a.plot(xs, g[f"{pre}ci_upper_fixed"] * scale, color="#57606a", ls="--", lw=1)
        a.plot(xs, est, color="#0969da", lw=2, marker="o", ms=3, label="estimate")
        a.axhline(0, color="black", lw=0.8)
        allowed = np.nonzero(g["stop_allowed"].to_numpy())[0]
        if allowed.size:
            a.axvline(xs[allowed[0]], color="#1a7f37", lw=1.2, ls=":")
            a.annotate(
                f"stopping allowed ({x[allowed[0]]})",
                (xs[allowed[0]], 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -12),
                textcoords="offset points",
                fontsize=8,
                color="#1a7f37",
            )
        if not numeric_days:
            a.set_xticks(xs)
            a.set_xticklabels([str(d) for d in x], rotation=45, ha="right", fontsize=8)
        a.set_title(
            f"{short_label(m)} [{short_label(v)} vs {short_label(path.control)}]",
            loc="left",
            fontsize=10,
            parse_math=False,
        )
        a.set_ylabel("relative lift (%)" if relative else "effect", parse_math=False)
    axes[0].legend(fontsize=8, loc="best", frameon=False)
    axes[len(pairs) - 1].set_xlabel("look (day)")
    style_axes(axes[: len(pairs)])
    return axes[0] if len(pairs) == 1 else axes[: len(pairs)]


def plot_segments(result, metric=None, variant=None, relative=True, ax=None):
    """Forest plot: per metric x arm, each segment's effect and CI, the overall effect, Cochran's Q.

    Colours follow the (multiplicity-adjusted) decision in each segment:
    green better, red worse, grey not significant.
    """
    df = result.to_frame()
    df, pairs = _select(df, metric, variant)
    n_seg = len(result.segments)
    axes = _grid(len(pairs), ax, height=0.42 * (n_seg + 1) + 1.4)
    pre, scale = ("rel_", 100.0) if relative else ("", 1.0)
    tests = {(t["metric"], t["variant"]): t for t in result.tests}
    overall = {(r["metric"], r["variant"]): r for r in result.overall.rows}
    for a, (m, v) in zip(axes, pairs):
        g = df[(df.metric == m) & (df.variant == v)]
        y = np.arange(len(g))[::-1] + 1.0
        labels = []
        records = g.to_dict("records")
        # relative: a segment whose control value is not distinguishable from 0 has no relative lift to draw
        no_rel = [relative and change_scale(r) == ABSOLUTE for r in records]
        reach = _reach(
            [
                r[f"{pre}{k}"] * scale
                for r, skip in zip(records, no_rel)
                if not skip
                for k in ("ci_lower", "ci_upper", "effect")
            ]
        )
        for yi, r, skip in zip(y, records, no_rel):
            p = r.get("p_value_adjusted", r["p_value"])
            up = r["effect"] > 0
            good = up if r["better"] == "higher" else not up
            colour = _COLOURS["neutral" if not p < result.alpha else ("better" if good else "worse")]
            _interval(a, r[f"{pre}ci_lower"] * scale, r[f"{pre}ci_upper"] * scale, yi, colour, reach, lw=2.2)
            if not skip:
                a.plot([r[f"{pre}effect"] * scale], [yi], "s", color=colour, ms=6)
            seg = short_label(", ".join(str(r[b]) for b in result.by))
            labels.append(
                f"{seg}  (n={r['n_control'] + r['n_treatment']:,})"
                + ("\nrelative lift n/a (control \u2248 0)" if skip else "")
            )
        o = overall.get((m, v))
        ticks = list(y)
        if o is not None:
            mid, lo, hi = o[f"{pre}effect"] * scale, o[f"{pre}ci_lower"] * scale, o[f"{pre}ci_upper"] * scale
            if np.isfinite(lo) and np.isfinite(hi):
                a.fill([lo, mid, hi, mid], [0, 0.25, 0, -0.25], color="black")
            else:
                _interval(a, lo, hi, 0.0, "black", reach)
            a.axvline(mid, color="black", lw=0.8, ls=":")
            ticks.append(0.0)
            labels.append("overall")
        a.axvline(0, color="black", lw=0.8)
        a.set_yticks(ticks)
        for text in a.set_yticklabels(labels):
            text.set_parse_math(False)
        t = tests.get((m, v))
        het = (
            f"heterogeneity: Q = {t['Q']:.1f}, df = {t['df']}, {p_text(t['p_value'])}"
            if t is not None and np.isfinite(t["Q"])
            else ""
        )
        a.set_title(
            f"{short_label(m)} [{short_label(v)} vs {short_label(result.control)}] by "
            f"{short_label(', '.join(result.by))}\n{het}",
            loc="left",
            fontsize=10,
            parse_math=False,
        )
        a.set_xlabel(("relative lift (%)" if relative else "effect") + f", {1 - result.alpha:.0%} CI", parse_math=False)
    style_axes(axes[: len(pairs)], "x")
    return axes[0] if len(pairs) == 1 else axes[: len(pairs)]
