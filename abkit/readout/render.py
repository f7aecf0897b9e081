"""The A/B readout page: what each section says (Python) and how it is laid out (Jinja2 templates).

Each section has a ``*_context`` function that takes abkit objects (an
:class:`abkit.spec.ExperimentSpec`, an :class:`abkit.ExperimentResult`, the
verdicts of :func:`abkit.verdict.decide`, the checks of
:mod:`abkit.readout.ab`) and returns plain data: numbers already formatted,
sentences in words, user strings as they are. Its ``*_html`` twin renders
that data with a template of ``templates/html/pages/`` (:func:`render_page`),
which escapes every value and neutralises bidi and control characters, so no
HTML is written here and no escaping can be forgotten; an analyst changes a
page by editing a template (``abkit readout --templates DIR``). The readout
notebook (``templates/ab_readout.ipynb``) is a sequence of short calls to the
``*_html`` functions, so what the page shows is testable without a kernel.
The page order is: a compact header (name, owner, dates, primary metric,
hypothesis), the verdict with the decision rule, details, health checks,
metrics, charts, methodology and glossary.

Charts are embedded as ``data:`` URIs (:func:`chart_image`): SVG, sharp at
any zoom and in print, unless the SVG would be heavier than the PNG (a chart
of thousands of points), then PNG.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..formatting import (
    ABSOLUTE,
    POINTS,
    RELATIVE_TO_SIZE,
    arm_labels,
    change_scale,
    format_number,
    format_p,
    format_pct,
    format_relative,
    interval_text,
    short_label,
    signed_interval,
)
from ..metrics import TimeToEvent
from ..plots import style_axes
from ..results import ExperimentResult
from ..stats.checks import SRM_ALARM
from ..verdict import (
    BALANCE_ALARM,
    COLOURS,
    DUPLICATE_ALARM,
    LEAK_ALARM,
    Verdict,
    change_words,
    ci_label,
    missingness_checks,
    p_label,
    p_text,
)
from .pages import render_page
from .templates import html_template_dir

__all__ = [
    "configure_matplotlib",
    "header_html",
    "verdict_html",
    "details_html",
    "srm_html",
    "health_html",
    "metrics_html",
    "chart_html",
    "figure_data_uri",
    "chart_alt",
    "cumulative_html",
    "plot_cumulative",
    "segments_html",
    "segments_section_html",
    "plot_segments",
    "methodology_html",
    "summary",
    "decision_rule_text",
    "section_error_html",
    "data_snapshot_html",
    "sequential_html",
    "plot_always_valid",
    "interval_text",
    "chart_image",
    "figure_svg_uri",
    "CHART_FORMAT",
    "SVG_MAX_MARKS",
    "chart_marks",
    "header_context",
    "verdict_context",
    "details_context",
    "srm_context",
    "health_context",
    "metrics_context",
    "chart_context",
    "cumulative_context",
    "sequential_context",
    "segments_context",
    "segments_section_context",
    "methodology_context",
    "footer_context",
    "plot_time_to_event",
    "time_to_event_context",
    "time_to_event_html",
    "event_words",
    "maturity_notes",
]

CSS_PATH = html_template_dir() / "abkit" / "abkit.css"
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

_CORRECTION_WORDS = {"holm": "Holm", "bh": "Benjamini-Hochberg"}
_TYPE_WORDS = {"mean": "mean", "proportion": "proportion", "ratio": "ratio", "time_to_event": "time to event"}
_OUTCOME_COLOURS = {"better": "#1a7f37", "worse": "#cf222e", "neutral": "#57606a"}


def _text(value: str | None) -> str | None:
    """A user paragraph (hypothesis, description) without its surrounding blank space; None when empty."""
    return value.strip() if value and value.strip() else None


def _finite(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def section_error_html(title: str, exc: BaseException) -> str:
    """A section that could not be computed: a visible warning instead of a missing section."""
    return render_page("section_error.html.j2", title=title, error_type=type(exc).__name__, error=str(exc))


def data_snapshot_html(snapshot) -> str:
    """The line under the page naming the data it was computed from (:class:`abkit.snapshot.DataSnapshot`)."""
    return render_page("data_snapshot.html.j2", description=snapshot.describe())


# --------------------------------------------------------------------------- matplotlib and charts
def configure_matplotlib(dpi: int = 110) -> None:
    """Inline PNG figures, crisp enough for a laptop, with labels taken literally.

    ``text.parse_math`` is switched off so a metric called e.g. ``$ refunded``
    is drawn as written instead of being parsed as TeX. SVG output draws text
    as paths (nothing depends on the reader's fonts) and carries no date, so
    the same chart gives the same bytes.
    """
    import matplotlib

    matplotlib.rcParams.update(
        {
            "figure.dpi": dpi,
            "savefig.dpi": dpi,
            "text.parse_math": False,
            "font.size": 10,
            "axes.titlesize": 11,
            "figure.facecolor": "white",
            "savefig.facecolor": "white",
            "svg.fonttype": "path",
            "svg.hashsalt": "abkit",
        }
    )
    try:  # inside IPython: emit image/png only (embedded as data: URIs in the HTML)
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
    except Exception:  # noqa: BLE001 - outside a kernel there is nothing to configure
        pass


def figure_data_uri(fig, dpi: int | None = None) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI (nothing to fetch, nothing to lose)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi or fig.dpi, bbox_inches="tight", facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_SVG_NOISE = re.compile(rb"<\?xml[^>]*>|<!DOCTYPE[^>]*>|<metadata>.*?</metadata>|<!--.*?-->", re.DOTALL)
# coordinates (|x| >= 1 point) to 2 decimals; numbers below 1 (a glyph's scale, 0.015625) are left exact
_SVG_DECIMALS = re.compile(rb"(?<![\w#.])-?[1-9]\d*\.\d{3,}")


def _svg_number(match) -> bytes:
    return (b"%.2f" % float(match.group())).rstrip(b"0").rstrip(b".")


def figure_svg_uri(fig) -> str:
    """A matplotlib figure as a ``data:image/svg+xml;base64,...`` URI: vector, sharp at any zoom and in print.

    Text is drawn as paths (``svg.fonttype: path``), so the chart looks the
    same whatever fonts the reader has. Matplotlib's file is made smaller
    without changing the drawing: no XML declaration, metadata or comments
    (which repeat the labels), coordinates in points to 2 decimals (1/7200
    inch; scale factors below 1 stay exact) and no indentation. Its width and height are the pixels of the PNG
    of the same figure (inches x ``fig.dpi``), so it takes the same room on the
    page. Shown with ``<img>``, an SVG runs no script and loads nothing.
    """
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "abkit"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", facecolor="white", metadata={"Date": None, "Creator": None})
    svg = _SVG_NOISE.sub(b"", buf.getvalue())
    # the size a PNG of the figure has on the page (inches x dpi pixels; matplotlib writes points, 1/72 inch)
    scale = (fig.dpi or 72) / 72
    svg = re.sub(
        rb'(<svg\b[^>]*?\s(?:width|height)=")([\d.]+)pt"',
        lambda m: m.group(1) + b"%.0f" % (float(m.group(2)) * scale) + b'"',
        svg,
        count=1,
    )
    svg = re.sub(
        rb'(<svg\b[^>]*?\s(?:width|height)=")([\d.]+)pt"',
        lambda m: m.group(1) + b"%.0f" % (float(m.group(2)) * scale) + b'"',
        svg,
        count=1,
    )
    svg = _SVG_DECIMALS.sub(_svg_number, svg)
    svg = re.sub(rb">\s+<", b"><", re.sub(rb"\s*\n\s*", b" ", svg)).strip()
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


CHART_FORMAT = "auto"
"""How :func:`chart_image` embeds charts: ``"svg"``, ``"png"``, or ``"auto"``: SVG unless the chart has more
than :data:`SVG_MAX_MARKS` data marks (an SVG file grows with every mark, a PNG with its pixels), then PNG.
The environment variable ``ABKIT_CHART_FORMAT`` sets it for a run (kernels inherit it), e.g. ``png`` for
mail clients that do not show SVG."""

SVG_MAX_MARKS = 1500
"""Above this many data marks (line vertices, markers, bars; :func:`chart_marks`) an SVG chart is heavier
than its PNG (about 40 bytes per mark against 40-60 KB for a 7.5-inch PNG at 110 dpi, measured)."""


def chart_marks(fig) -> int:
    """How many data marks ``fig`` draws: the vertices of its lines, each marker or shape of its collections
    (path vertices x offsets), the vertices of its patches; text and ticks count for little."""
    from matplotlib.collections import Collection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    marks = 0
    for artist in fig.findobj(lambda a: isinstance(a, (Line2D, Collection, Patch)) and a.get_visible()):
        if isinstance(artist, Line2D):
            marks += np.size(artist.get_xdata())
        elif isinstance(artist, Collection):
            vertices = [len(np.asarray(path.vertices)) for path in artist.get_paths()]
            offsets = len(np.atleast_2d(artist.get_offsets()))
            marks += max(offsets, len(vertices)) * (max(vertices) if vertices else 1) if offsets else sum(vertices)
        else:
            marks += len(artist.get_path().vertices)
    return int(marks)


def chart_image(fig, alt: str, fmt: str | None = None) -> dict:
    """A chart for a page template: ``{"src": data: URI, "alt": text alternative}`` (see :data:`CHART_FORMAT`).

    The figure is drawn once, in the format chosen before drawing (a second drawing to compare file
    sizes took about a third of a readout's chart time).
    """
    import os

    fmt = fmt or os.environ.get("ABKIT_CHART_FORMAT") or CHART_FORMAT
    if fmt not in ("svg", "png", "auto"):
        from ..errors import SpecError

        raise SpecError(f"chart format {fmt!r}: use 'svg', 'png' or 'auto' (ABKIT_CHART_FORMAT)")
    if fmt == "auto":
        fmt = "svg" if chart_marks(fig) <= SVG_MAX_MARKS else "png"
    return {"src": figure_svg_uri(fig) if fmt == "svg" else figure_data_uri(fig), "alt": alt}


# --------------------------------------------------------------------------- header
def _dates(spec) -> str | None:
    if spec.start and spec.end:
        days = (spec.end - spec.start).days + 1
        return f"{spec.start.isoformat()} to {spec.end.isoformat()} ({days} days)"
    if spec.start:
        return f"from {spec.start.isoformat()}"
    if spec.end:
        return f"until {spec.end.isoformat()}"
    return None


def _metric_line(m) -> str:
    direction = f"{m.better} is better"
    return f"{m.name} ({m.definition}; {direction})"


def _guard_words(g) -> str:
    if g.margin is None:
        return f"{g.name} (must not get significantly worse)"
    return f"{g.name} (may get at most {g.margin:.1%} worse)"


def decision_rule_text(spec) -> str:
    """The decision rule of :func:`abkit.verdict.decide`, in words, for this spec."""
    seq = bool(getattr(spec, "sequential", False))
    sig = f"{'always-valid ' if seq else ''}p < {spec.alpha:g}"
    if spec.correction:
        sig += f" after {_CORRECTION_WORDS[spec.correction]} adjustment across all metrics and arms"
    p = spec.primary
    guards = [_guard_words(g) for g in spec.guardrails]
    guard_txt = f" and every guardrail holds: {'; '.join(guards)}" if guards else ""
    worse_txt = " or a guardrail is clearly breached" if guards else ""
    more = (
        f" (with the days still needed to detect a {spec.mde:.1%} change with {spec.power:.0%} power"
        f"{' on the always-valid interval' if seq else ''})"
        if spec.mde
        else ""
    )
    if seq:
        more += (
            ". The test is read while it runs: p-values and intervals are always valid, so it may stop as "
            "soon as the primary metric's interval excludes zero"
        )
    return (
        f"Ship an arm if {p.name} moved in the good direction ({p.better} is better) with {sig}"
        f"{guard_txt}. Do not ship if {p.name} got significantly worse{worse_txt}. Invalid if the "
        f"sample-ratio check fails (p < {SRM_ALARM:g}) or the arms differed before the test (balance p < "
        f"{BALANCE_ALARM:g}). Otherwise inconclusive{more}."
    )


def header_context(spec, kicker: str = "A/B test readout") -> dict:
    """The title block (``header.html.j2``): kicker, name, facts (owner, dates, primary metric), hypothesis."""
    facts = []
    if spec.owner:
        facts.append(("Owner", spec.owner))
    dates = _dates(spec)
    if dates:
        facts.append(("Dates", dates))
    facts.append(("Primary metric", _metric_line(spec.primary)))
    return {"kicker": kicker, "name": spec.name, "facts": facts, "hypothesis": _text(spec.hypothesis)}


def header_html(spec, kicker: str = "A/B test readout") -> str:
    """Compact title block: name, owner, dates, primary metric and hypothesis (the verdict follows)."""
    return render_page("header.html.j2", **header_context(spec, kicker))


def details_context(spec) -> dict:
    """What was tested (``details.html.j2``): arms and planned split, metrics' roles, the plan, what changed."""
    rows: list[tuple[str, list[str]]] = []
    alloc = spec.planned_allocation
    if isinstance(alloc, dict):
        total = sum(alloc.values())
        names = arm_labels(alloc)
        rows.append(("Arms (planned split)", [", ".join(f"{names[a]} {v / total:.0%}" for a, v in alloc.items())]))
    else:
        rows.append(("Control arm", [str(spec.control)]))
    rows.append(("Primary metric", [_metric_line(spec.primary)]))
    if spec.guardrails:
        rows.append(("Guardrails", [_guard_words(g) for g in spec.guardrails]))
    others = [m for m in spec.metrics if not m.primary and not m.guardrail]
    if others:
        rows.append(("Other metrics", [", ".join(m.name for m in others)]))
    plan = []
    if spec.mde:
        plan.append(f"detect a {spec.mde:.1%} change in {spec.primary.name} with {spec.power:.0%} power")
    if spec.planned_units:
        plan.append(f"{spec.planned_units:,} units in total")
    if plan:
        rows.append(("Plan", ["; ".join(plan)]))
    rows.append(
        (
            "Significance",
            [
                f"alpha {spec.alpha:g}"
                + (f", {_CORRECTION_WORDS[spec.correction]} correction" if spec.correction else "")
            ],
        )
    )
    return {
        "title": "The test",
        "rows": rows,
        "description_title": "What changed.",
        "description": _text(spec.description),
    }


def details_html(spec) -> str:
    """What was tested: arms and planned split, metrics' roles, the plan (MDE, power, units), what changed."""
    return render_page("details.html.j2", **details_context(spec))


# --------------------------------------------------------------------------- verdict
def verdict_context(verdicts: Sequence[Verdict], result: ExperimentResult | None = None, spec=None) -> dict:
    """The verdict cards (``verdict.html.j2``): label, colour, "arm vs control", headline and reasons per arm.

    Arms whose names differ only in whitespace are shown quoted with the
    whitespace visible (:func:`abkit.formatting.arm_labels`).
    """
    names = arm_labels([*result.arms, *(v.variant for v in verdicts)]) if result is not None else {}
    cards = []
    for v in verdicts:
        arm = names.get(v.variant, str(v.variant))
        cards.append(
            {
                "label": v.display_label,
                "colour": COLOURS.get(v.label, "#57606a"),
                "arm": f"{arm} vs {names[result.control]}" if result is not None else arm,
                "headline": v.headline,
                "reasons": list(v.reasons) + _event_reasons(result, v.variant),
                "timing": None,
            }
        )
    return {
        "title": "Verdict",
        "cards": cards,
        "empty": "No treatment arm to decide on.",
        "rule_title": "Decision rule.",
        "rule": decision_rule_text(spec) if spec is not None else None,
    }


def event_words(metric) -> str:
    """What a time-to-event metric counts, in the plural: ``time_to_refund`` -> ``"refunds"`` (the name after
    "time to"), else ``"events"``."""
    name = str(metric.name).replace("_", " ").strip()
    m = re.match(r"(?i)(?:time|days|hours) (?:to|until) (?:the |a )?(.+)", name)
    if not m:
        return "events"
    noun = m.group(1).strip()
    return noun if noun.endswith("s") else noun + "s"


def _event_reasons(result: ExperimentResult | None, arm) -> list[str]:
    """One plain-words line per time-to-event metric for this arm (its restricted-mean effect), e.g. "time_to_refund:
    refunds arrive 2.2 days sooner on average within the first 30 days, 95% CI 1.9 to 2.4"."""
    if result is None:
        return []
    from ..time_to_event import effect_sentence

    out = []
    for metric in result.metrics:
        if not isinstance(metric, TimeToEvent):
            continue
        r = next((r for r in result.rows if r["metric"] == metric.name and r["variant"] == arm), None)
        if r is None:
            continue
        lo, hi = r.get("ci_lower_fixed", r["ci_lower"]), r.get("ci_upper_fixed", r["ci_upper"])
        if getattr(result, "sequential", False):
            lo, hi = r["ci_lower"], r["ci_upper"]
        words = effect_sentence(
            r["effect"],
            lo,
            hi,
            metric.horizon,
            time_unit=metric.time_unit,
            events=event_words(metric),
            level=1 - result.alpha,
        )
        out.append(
            f"{metric.name}: {words}{' (always-valid interval)' if getattr(result, 'sequential', False) else ''}"
        )
    return out


def verdict_html(verdicts: Sequence[Verdict], result: ExperimentResult | None = None, spec=None) -> str:
    """The decision, first: one card per treatment arm with its label, headline and reasons.

    With ``spec`` the decision rule follows the cards.
    """
    return render_page("verdict.html.j2", **verdict_context(verdicts, result, spec))


# --------------------------------------------------------------------------- health checks
def srm_context(result: ExperimentResult) -> dict:
    """The sample-ratio check: the test in words, units and shares per arm, and the arms whose names differ only
    in whitespace (``lookalike``, shown quoted with the whitespace visible: likely one arm written two ways)."""
    srm = result.srm
    names = arm_labels(srm.arms)
    return {
        "mismatch": bool(srm.mismatch),
        "threshold": f"{srm.threshold:g}",
        "lookalike": [names[a] for a in srm.arms if names[a] != str(a)],
        "stat": f"chi-square = {format_number(srm.chi2, 3)} on {srm.df} df, {p_text(srm.p_value)}",
        "rows": [
            {"arm": names[a], "units": f"{o:,}", "observed": f"{s:.2%}", "planned": f"{e:.2%}"}
            for a, o, s, e in zip(srm.arms, srm.observed, srm.observed_share, srm.expected_share)
        ],
    }


def srm_html(result: ExperimentResult) -> str:
    """The sample-ratio-mismatch check as its own section (a loud red banner when it fails)."""
    missing = f"{result.missing_variant:,}" if result.missing_variant else None
    return render_page("ab_srm.html.j2", srm=srm_context(result), missing_variant=missing)


def _size_context(size) -> dict | None:
    if size is None:
        return None
    planned = needed = None
    if size.planned_units:
        share = size.reached_share
        planned = {
            "ok": share >= 1,
            "text": f"{size.units:,} units of the {size.planned_units:,} planned ({share:.0%}).",
        }
    if size.mde:
        n = size.needed
        if n is not None:
            enough = n.factor <= 1
            av = " on the always-valid interval" if getattr(size, "sequential", False) else ""
            txt = (
                f"To detect a {size.mde:.1%} change in the primary metric with {size.power:.0%} power{av}, the "
                f"observed variance calls for about {n.units_needed:,.0f} units; the test has {size.units:,} "
                f"({size.units / n.units_needed:.0%})."
            )
            if n.days_total is not None and size.days:
                txt += (
                    f" At the rate so far ({size.units / size.days:,.0f} units a day over {size.days:.0f} days) "
                    f"that takes {n.days_total} days in total" + ("." if enough else f", {n.days_more} more.")
                )
        else:  # a planned relative MDE but no estimate (e.g. the primary's control value is near zero)
            enough = False
            txt = (
                f"No estimate of the units needed for a {size.mde:.1%} change: the primary metric has no usable "
                "relative lift yet (its control value is not distinguishable from zero, or its variance is "
                "unknown)."
            )
        needed = {"ok": enough, "text": txt}
    method = None
    if size.needed is not None:
        method = (
            getattr(size.needed, "words", "") or "from the planned MDE and power, with the variance observed so far"
        )
    return {
        "planned": planned,
        "needed": needed,
        "days": f"{size.days:.0f}" if size.days else None,
        "days_source": size.days_source,
        "method": method,
    }


def _smd_text(smd: float) -> str:
    """A standardized mean difference, signed, 3 decimals; ``0.000`` (not ``-0.000``) when it rounds to zero."""
    if smd is None or not math.isfinite(smd):
        return "n/a"
    return "0.000" if round(smd, 3) == 0 else f"{smd:+.3f}"


def _balance_context(bal, names: dict) -> dict | None:
    from .ab import SMD_FLAG

    if bal is None:
        return None
    out = {
        "error": bal.error,
        "columns": list(bal.columns),
        "smd_flag": f"{SMD_FLAG:g}",
        "balance_alarm": f"{BALANCE_ALARM:g}",
        "alarm": False,
        "flagged": None,
        "several": False,
        "rows": [],
        "joint": "",
    }
    if bal.error or not bal.columns:
        return out
    out["several"] = bal.table.variant.nunique() > 1
    out["rows"] = [
        {
            "column": r.column,
            "arm": names.get(r.variant, str(r.variant)),
            "control": format_number(r.control_mean),
            "treatment": format_number(r.treatment_mean),
            "smd": _smd_text(r.smd),
            "flag": bool(abs(r.smd) > SMD_FLAG),
            "p": format_p(r.p_value),
        }
        for r in bal.table.itertuples()
    ]
    out["joint"] = "; ".join(
        f"{names.get(j.variant, j.variant)}: chi-square {j.chi2:.2f} on {j.df} df, {p_text(j.p_value)}"
        for j in bal.joint.itertuples()
    )
    out["alarm"] = bool(bal.alarm)
    out["flagged"] = ", ".join(bal.flagged) or None
    return out


def _dropped_context(dropped) -> list[dict] | None:
    if dropped is None:
        return None
    return [
        {"reason": r.reason, "units": f"{r.units:,}", "share": format_pct(r.share, 1, sign=False)}
        for r in dropped.itertuples()
    ]


def _missingness_context(result: ExperimentResult, names: dict) -> dict | None:
    """Differential missingness: does the share of units with a value of a dropna metric differ by arm?"""
    checks = missingness_checks(result)
    if not checks:
        return None
    control = names.get(result.control, result.control)
    return {
        "threshold": f"{checks[0].threshold:g}",
        "flagged": [{"metric": c.metric, "sentence": c.sentence(control)} for c in checks if c.flagged],
        "rows": [
            {
                "metric": c.metric,
                "arm": names.get(c.variant, str(c.variant)),
                "control": format_pct(c.share_control, 1, sign=False),
                "treatment": format_pct(c.share_treatment, 1, sign=False),
                "p": format_p(c.p_value),
                "flagged": bool(c.flagged),
            }
            for c in checks
        ],
    }


def _integrity_context(integrity) -> dict | None:
    """Unit integrity (``analyze(..., unit=...)``): a red banner for a material leak or duplication."""
    if integrity is None:
        return None
    return {
        "clean": bool(integrity.clean),
        "units": f"{integrity.units:,}",
        "unit": integrity.unit,
        "material": bool(integrity.leak_share > LEAK_ALARM or integrity.duplicate_share > DUPLICATE_ALARM),
        "problems": [] if integrity.clean else list(integrity.problems()),
        "leak_alarm": f"{LEAK_ALARM:.0%}",
        "duplicate_alarm": f"{DUPLICATE_ALARM:.0%}",
    }


def health_context(result: ExperimentResult, balance=None, size=None, dropped=None) -> dict:
    """Every health check's data for ``ab_health.html.j2`` (a check that was not run is None)."""
    names = arm_labels(result.arms)
    return {
        "srm": srm_context(result),
        "integrity": _integrity_context(getattr(result, "integrity", None)),
        "size": _size_context(size),
        "balance": _balance_context(balance, names),
        "dropped": _dropped_context(dropped),
        "missingness": _missingness_context(result, names),
    }


def health_html(result: ExperimentResult, balance=None, size=None, dropped=None) -> str:
    """Health checks: sample ratio, unit integrity, sample size vs plan, pre-period balance, units left out and why."""
    return render_page("ab_health.html.j2", **health_context(result, balance, size, dropped))


# --------------------------------------------------------------------------- metrics
def maturity_notes(spec, maturity: dict | None) -> list[str]:
    """One sentence per metric with a maturity window or a time to event: how many units were mature (see
    :func:`abkit.readout.ab.maturity_of`)."""
    if spec is None or not maturity:
        return []
    unit = "units" if not getattr(spec, "unit", None) else f"units ({spec.unit})"
    out = []
    for m in spec.metrics:
        mat = maturity.get(m.name)
        if mat is None:
            continue
        if m.is_time_to_event:
            out.append(f"{m.name} (every unit counts, censoring-aware): {mat.sentence(unit, censored=True)}.")
        else:
            out.append(f"{m.name} (mature units only): {mat.sentence(unit)}.")
    return out


def metrics_context(result: ExperimentResult, spec=None, maturity: dict | None = None) -> dict:
    """The metric table (``ab_metrics.html.j2``): a header, one row of formatted cells per metric and arm.

    ``maturity`` (:func:`abkit.readout.ab.maturity_of`): the windowed and
    time-to-event metrics' mature-unit counts, stated under the table.
    """
    seq = bool(getattr(result, "sequential", False))
    sig = f"{'always-valid ' if seq else ''}p < {result.alpha:g}"
    if result.correction:
        sig += f" after {_CORRECTION_WORDS.get(result.correction, result.correction)} adjustment"
    roles, kinds = {}, {}
    if spec is not None:
        for m in spec.metrics:
            roles[m.name] = (
                "primary"
                if m.primary
                else (f"guardrail, margin {m.margin:.1%}" if m.margin is not None else "guardrail")
                if m.guardrail
                else ""
            )
            if m.is_time_to_event:
                kinds[m.name] = (
                    f"mean {m.time_unit} within the first {m.time_horizon:g}, censoring-aware (Kaplan-Meier)"
                )
            elif m.window is not None:
                from ..maturity import window_text

                kinds[m.name] = f"mature units only ({window_text(m.window)} window)"
    skewed = {(c.metric, c.variant) for c in missingness_checks(result) if c.flagged}
    corr = result.correction is not None
    level = f"{1 - result.alpha:.0%}{' always-valid' if seq else ''}"
    several = len(result.treatments) > 1
    names = arm_labels(result.arms)
    p_head = "Always-valid p" if seq else "p-value"
    p_heads = [[p_head, "(unadjusted)"], p_label(result)] if corr else [p_head]
    head = [
        "Metric",
        *(["Arm"] if several else []),
        "Control",
        "Treatment",
        ["Abs. effect", f"[{level} CI]"],
        ["Rel. lift", f"[{level} CI]"],
        *p_heads,
        ["Units", "control / treatment"],
    ]
    rows = []
    for r in result.rows:
        effect, ci = interval_text(r["effect"], r["ci_lower"], r["ci_upper"])
        rows.append(
            {
                "metric": r["metric"],
                "role": roles.get(r["metric"], ""),
                "better": r["better"],
                "kind": kinds.get(r["metric"]),
                "skewed": (r["metric"], r["variant"]) in skewed,
                "arm": names.get(r["variant"], str(r["variant"])),
                "control": format_number(r["control_value"]),
                "treatment": format_number(r["treatment_value"]),
                "effect": effect,
                "effect_ci": ci,
                "rel": format_relative(r, 2, near_zero="n/a*"),
                "outcome": result.outcome(r),
                "rel_ci": f"[{format_pct(r['rel_ci_lower'], 2)}, {format_pct(r['rel_ci_upper'], 2)}]",
                "p": format_p(r["p_value"]),
                "p_adjusted": format_p(r.get("p_value_adjusted", np.nan)),
                "units": f"{r['n_control']:,} / {r['n_treatment']:,}",
            }
        )
    removed = [
        (r["metric"], format_pct(r["variance_reduction"], 0, sign=False))
        for r in result.rows
        if r.get("variance_reduction") is not None
        and np.isfinite(r["variance_reduction"])
        and r["variance_reduction"] > 0
        and (not several or r["variant"] == result.treatments[0])
    ]
    return {
        "significance": sig,
        "legend_extra": _relative_legend(result),
        "sequential": seq,
        "head": head,
        "rows": rows,
        "several": several,
        "corrected": corr,
        "variance_removed": removed,
        "maturity": maturity_notes(spec, maturity),
    }


def metrics_html(result: ExperimentResult, spec=None, maturity: dict | None = None) -> str:
    """The metric table: arm values, absolute and relative effect with CIs, p-values, coloured by outcome.

    With a correction the table names both p-values ("unadjusted" and e.g.
    "Holm-adjusted p"; colours and verdicts use the adjusted one); a
    sequential result's intervals and p-values are labelled always-valid.
    A metric measured on a different mix of units in each arm
    (:func:`abkit.verdict.missingness_checks`) is flagged in its row.
    """
    return render_page("ab_metrics.html.j2", **metrics_context(result, spec, maturity))


def _relative_legend(result: ExperimentResult) -> str:
    """Words (plain text) for the metric table's legend when a row's relative lift is not ``treatment /
    control - 1`` of a positive control value; empty otherwise, so ordinary readouts read as before."""
    scales = {change_scale(r) for r in result.rows}
    kinds = {m.name: getattr(m, "kind", None) for m in result.metrics}
    words = ""
    if RELATIVE_TO_SIZE in scales:
        words += (
            ' A relative lift marked "of |control|" is the change as a share of the size of a negative '
            "control value, (treatment - control) / |control|: positive means the value went up, as for any "
            "other metric."
        )
    if ABSOLUTE in scales:
        words += (
            " n/a* = control's value is not distinguishable from zero, so the data bound no relative "
            "change: read the absolute effect."
        )
    if any(kinds.get(r["metric"]) == "nps" for r in result.rows):
        words += " NPS effects are in NPS points (the absolute effect)."
    return words


def chart_context(result: ExperimentResult, fig) -> dict:
    """The lift chart's section (``ab_chart.html.j2``): its heading words and the embedded chart."""
    seq = bool(getattr(result, "sequential", False))
    return {
        "level": f"{1 - result.alpha:.0%}",
        "kind": "always-valid intervals" if seq else "confidence intervals",
        "sequential": seq,
        "control": arm_labels(result.arms)[result.control],
        "chart": chart_image(fig, chart_alt(result)),
    }


def chart_html(result: ExperimentResult, fig) -> str:
    """The lift chart (``result.plot().figure``) with its heading and caption, as one printable block."""
    return render_page("ab_chart.html.j2", **chart_context(result, fig))


def chart_alt(result: ExperimentResult) -> str:
    """Text alternative of the lift chart (for screen readers and text-only mail clients)."""
    several = len(result.treatments) > 1
    names = arm_labels(result.arms)
    parts = []
    for r in result.rows:
        label = f"{r['metric']} ({names[r['variant']]})" if several else str(r["metric"])
        parts.append(
            f"{label}: {format_relative(r, 1, near_zero='relative lift n/a (control near zero)')} "
            f"[{format_pct(r['rel_ci_lower'], 1)}, {format_pct(r['rel_ci_upper'], 1)}]"
        )
    return (
        f"Chart of the relative lift of each metric vs {names[result.control]} with {1 - result.alpha:.0%} "
        "confidence intervals: " + "; ".join(parts)
    )


# --------------------------------------------------------------------------- cumulative
_ARM_COLOURS = ["#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df"]


def _frame_arm_labels(frame, spec) -> dict:
    return arm_labels([spec.control, *dict.fromkeys(frame["variant"])])


def plot_cumulative(frame, spec, ax=None):
    """Relative lift of the primary metric on all units exposed up to each day, with its CI band."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8.6, 3.4))
    names = _frame_arm_labels(frame, spec)
    for i, (arm, part) in enumerate(frame.groupby("variant", sort=False)):
        c = _ARM_COLOURS[i % len(_ARM_COLOURS)]
        label = f"{short_label(names[arm])} vs {short_label(names[spec.control])}"
        ax.fill_between(part["date"], part["rel_ci_lower"] * 100, part["rel_ci_upper"] * 100, color=c, alpha=0.15, lw=0)
        ax.plot(part["date"], part["rel_effect"] * 100, color=c, lw=2, marker="o", ms=3, label=label)
    ax.axhline(0, color="black", lw=0.8)
    if spec.mde:
        good = -1 if spec.primary.better == "lower" else 1
        ax.axhline(good * spec.mde * 100, color="#8c959f", lw=1, ls="--", label=f"planned MDE ({spec.mde:.1%})")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    metric = short_label(spec.primary.name)
    ax.set_ylabel(f"{metric}: relative lift (%{_size_words(frame)})", parse_math=False)
    ax.set_title(
        f"Cumulative effect on {metric} ({1 - spec.alpha:.0%} CI shaded)", loc="left", fontsize=10, parse_math=False
    )
    leg = ax.legend(fontsize=8, frameon=False)
    for t in leg.get_texts():
        t.set_parse_math(False)
    style_axes(ax, alpha=0.25, tight=False)
    ax.figure.autofmt_xdate()
    ax.figure.tight_layout()
    return ax


def cumulative_context(fig, frame, spec, missing: int = 0) -> dict:
    """The effect-over-time section (``ab_cumulative.html.j2``): the date column, the chart and its alt text."""
    names = _frame_arm_labels(frame, spec)
    last = frame.groupby("variant", sort=False).tail(1)
    alt = f"Chart of the cumulative relative lift of {spec.primary.name} by exposure date; final: " + "; ".join(
        f"{names[r.variant]}: {format_relative(r._asdict(), 1)} [{format_pct(r.rel_ci_lower, 1)}, "
        f"{format_pct(r.rel_ci_upper, 1)}]"
        for r in last.itertuples()
    )
    window = getattr(spec.primary, "window", None)
    if window is not None:
        from ..maturity import first_immature_day, window_text

        window = {
            "length": window_text(window),
            "metric": spec.primary.name,
            "last": f"{first_immature_day(window, spec.data_end) - _dt.timedelta(days=1):%b %d}",
        }
    censored = None
    if getattr(spec.primary, "is_time_to_event", False):
        end = getattr(spec, "data_end", None)
        censored = {
            "metric": spec.primary.name,
            "events": event_words(spec.primary),
            "end": f"{end:%b %d}" if end is not None else None,
        }
    return {
        "date": spec.date,
        "sequential": bool(getattr(spec, "sequential", False)),
        "missing": f"{missing:,}" if missing else None,
        "chart": chart_image(fig, alt),
        "window": window,
        "censored": censored,
    }


def cumulative_html(fig, frame, spec, missing: int = 0) -> str:
    """The fixed-horizon cumulative effect by exposure day, with its caption.

    For a sequential spec the readout shows :func:`sequential_html` instead
    (its always-valid path replaces this chart); called anyway, the caption
    says the intervals are fixed-horizon and points to the always-valid ones.
    """
    return render_page("ab_cumulative.html.j2", **cumulative_context(fig, frame, spec, missing))


def _size_words(frame) -> str:
    """``" of |control|"`` for a chart axis when some relative lift in ``frame`` is relative to the size of a
    negative control value (a ``control_value`` column), else empty."""
    if "control_value" not in getattr(frame, "columns", ()):
        return ""
    rows = frame.to_dict("records")
    return " of |control|" if any(change_scale(r) == RELATIVE_TO_SIZE for r in rows) else ""


def _finite_or_nan(values) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(a), a, np.nan)


def plot_always_valid(path, spec, result: ExperimentResult | None = None):
    """The primary metric's always-valid path: one panel per treatment arm.

    Per daily look: the estimate, that look's always-valid interval (shaded;
    the last one is what the verdict reads) and the naive fixed-horizon
    interval (dashed, for comparison). Unbounded relative intervals (early
    looks) are left blank.
    """
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import pandas as pd

    df = path.frame[path.frame["metric"] == spec.primary.name]
    arms = list(dict.fromkeys(df["variant"]))
    if not arms:
        from ..errors import AbkitError

        raise AbkitError(f"the always-valid path has no look with data for {spec.primary.name}")
    names = arm_labels([path.control, *arms])
    fig, axes = plt.subplots(len(arms), 1, figsize=(8.6, 4.0 * len(arms)), squeeze=False)
    level = f"{1 - path.alpha:.0%}"
    dates = True
    for i, (ax, arm) in enumerate(zip(axes[:, 0], arms)):
        g = df[df["variant"] == arm]
        try:
            x = pd.to_datetime(g["day"]).to_numpy()
        except (TypeError, ValueError):
            x, dates = np.arange(len(g)), False
        c = _ARM_COLOURS[i % len(_ARM_COLOURS)]
        lo, hi = g["rel_ci_lower"].to_numpy(dtype=float), g["rel_ci_upper"].to_numpy(dtype=float)
        ax.fill_between(
            x,
            _finite_or_nan(lo) * 100,
            _finite_or_nan(hi) * 100,
            color=c,
            alpha=0.18,
            lw=0,
            label=f"always-valid {level} interval of each look (the last: the verdict's)",
        )
        ax.plot(
            x,
            _finite_or_nan(g["rel_ci_lower_fixed"]) * 100,
            color="#57606a",
            ls="--",
            lw=1,
            label=f"naive {level} CI (one planned look only)",
        )
        ax.plot(x, _finite_or_nan(g["rel_ci_upper_fixed"]) * 100, color="#57606a", ls="--", lw=1)
        ax.plot(x, g["rel_effect"].to_numpy(dtype=float) * 100, color=c, lw=2, marker="o", ms=3, label="estimate")
        ax.axhline(0, color="black", lw=0.8)
        if spec.mde:
            good = -1 if spec.primary.better == "lower" else 1
            ax.axhline(good * spec.mde * 100, color="#8c959f", lw=1, ls=":", label=f"planned MDE ({spec.mde:.1%})")
        allowed = np.nonzero(g["stop_allowed"].to_numpy(dtype=bool))[0]
        if allowed.size:
            ax.axvline(x[allowed[0]], color="#1a7f37", lw=1.2, ls=":")
        # y range: the later looks (the first ones are very wide and would flatten the rest; they run off the
        # chart instead), the current intervals, zero and the MDE
        late = slice(min(len(g) - 1, len(g) // 4), None)
        focus = [
            _finite_or_nan(lo[-1:]) * 100,
            _finite_or_nan(hi[-1:]) * 100,
            g["rel_effect"].to_numpy(dtype=float) * 100,
            _finite_or_nan(g["rel_ci_lower_fixed"].to_numpy()[late]) * 100,
            _finite_or_nan(g["rel_ci_upper_fixed"].to_numpy()[late]) * 100,
            np.array([0.0] + ([(-1 if spec.primary.better == "lower" else 1) * spec.mde * 100] if spec.mde else [])),
        ]
        finite = np.concatenate([v[np.isfinite(v)] for v in focus])
        if finite.size:
            span = max(finite.max() - finite.min(), 1.0)
            ax.set_ylim(finite.min() - 0.35 * span, finite.max() + 0.35 * span)
        if dates:
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
        ax.set_ylabel(f"{short_label(spec.primary.name)}: relative lift (%)", parse_math=False)
        ax.set_title(
            f"{short_label(spec.primary.name)} [{short_label(names[arm])} vs "
            f"{short_label(names[path.control])}]: always-valid path, one look a day",
            loc="left",
            fontsize=10,
            parse_math=False,
        )
        leg = ax.legend(fontsize=7.5, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
        for t in leg.get_texts():
            t.set_parse_math(False)
        style_axes(ax, alpha=0.25, tight=False)
    if dates:
        fig.autofmt_xdate()
    fig.tight_layout()
    return axes[0, 0]


def sequential_context(fig, path, spec, result: ExperimentResult | None = None) -> dict:
    """The always-valid section (``ab_sequential.html.j2``): per arm, may the test stop, since when, its p-value
    and interval in words, and the chart."""
    rows = path.stopping()
    rows = rows[rows["metric"] == spec.primary.name]
    names = arm_labels([path.control, *(result.arms if result is not None else ()), *rows["variant"]])
    arms = []
    for r in rows.itertuples():
        if result is not None:
            row = result.row(spec.primary.name, r.variant)
            p, label = result.decision_p(row), p_label(result)
            stop = result.outcome(row) != "neutral"
            ci = change_words(result, row)[1]  # relative, or points / absolute units (NPS, control near zero)
        else:
            p, label, stop, ci = r.p_value_running, "always-valid p", bool(r.stop_allowed), None
        first_stop = str(r.first_stop_day)[:10] if r.first_stop_day is not None else None
        state = "stop" if stop else ("lost" if first_stop is not None and result is not None else "running")
        naive = str(r.first_naive_significant_day)[:10] if r.first_naive_significant_day is not None else None
        arms.append(
            {
                "arm": names[r.variant],
                "state": state,
                "since": first_stop,
                "ci_words": f" ({ci_label(result)}: {ci})" if ci and result is not None else "",
                "p": p_text(p, label),
                "naive_day": naive,
            }
        )
    looks = int(path.frame["day"].nunique())
    alt = (
        f"Chart of the {spec.primary.name} effect at each of {looks} daily looks with its always-valid "
        "interval and the naive fixed-horizon interval"
    )
    return {"date": spec.date, "arms": arms, "chart": chart_image(fig, alt)}


def sequential_html(fig, path, spec, result: ExperimentResult | None = None) -> str:
    """The always-valid path of the primary metric and whether stopping is allowed.

    With ``result`` (the always-valid result the verdict reads: the current
    look) the sentences quote its p-value and interval, so the section and the
    verdict give the same numbers; an earlier look whose interval excluded no
    change while today's does not is named (an early effect that did not hold).
    """
    return render_page("ab_sequential.html.j2", **sequential_context(fig, path, spec, result))


# --------------------------------------------------------------------------- segments
def plot_segments(seg, ax=None):
    """Forest plot of the primary metric's relative lift per segment value (and arm), overall as a band.

    Segment values and arms longer than :data:`abkit.formatting.LABEL_WIDTH`
    characters are cut with an ellipsis on the chart (the table beside it
    shows them whole), so one long value cannot squeeze the plot.
    """
    import matplotlib.pyplot as plt

    t = seg.table
    several = t.variant.nunique() > 1
    names = arm_labels([*dict.fromkeys(t.variant), *seg.overall])
    n = len(t)
    if ax is None:
        _, ax = plt.subplots(figsize=(8.6, 0.42 * n + 1.3))
    y = np.arange(n)[::-1]
    labels = []
    for yi, r in zip(y, t.itertuples()):
        colour = _OUTCOME_COLOURS[r.outcome]
        ax.plot([r.rel_ci_lower * 100, r.rel_ci_upper * 100], [yi, yi], color=colour, lw=2.2, solid_capstyle="round")
        ax.plot([r.rel_effect * 100], [yi], "o", color=colour, ms=6)
        labels.append(
            short_label(r.segment)
            + (f" ({short_label(names[r.variant], 20)})" if several else "")
            + f"  n={r.n_control + r.n_treatment:,}"
        )
    for i, (arm, (rel, lo, hi)) in enumerate(seg.overall.items()):
        if not several or i == 0:
            ax.axvspan(lo * 100, hi * 100, color="#0969da", alpha=0.08, lw=0)
            kind = ", fixed-horizon CI" if getattr(seg, "fixed_horizon", False) else ""
            ax.axvline(
                rel * 100,
                color="#0969da",
                lw=1,
                ls="--",
                label=(
                    f"all units ({short_label(names[arm], 20)}{kind})"
                    if several
                    else f"all units{' (fixed-horizon CI)' if kind else ''}"
                ),
            )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y)
    for text in ax.set_yticklabels(labels):
        text.set_parse_math(False)
    ax.set_ylim(-0.7, n - 0.3)
    kind = "fixed-horizon confidence interval" if getattr(seg, "fixed_horizon", False) else "confidence interval"
    ax.set_xlabel(f"relative lift (%{_size_words(t)}), with {kind}", parse_math=False)
    ax.set_title(short_label(seg.column), loc="left", fontsize=10, parse_math=False)
    leg = ax.legend(fontsize=8, frameon=False, loc="best")
    for tx in leg.get_texts():
        tx.set_parse_math(False)
    style_axes(ax, "x")
    return ax


def segments_context(seg, fig, spec) -> dict:
    """One segment breakdown (``ab_segment.html.j2``): table rows, Cochran's Q per arm, notes and the chart."""
    t = seg.table
    several = t.variant.nunique() > 1 if len(t) else False
    names = arm_labels(list(dict.fromkeys(t.variant))) if len(t) else {}
    rows = [
        {
            "segment": r.segment,
            "arm": names.get(r.variant, str(r.variant)),
            "units": f"{r.n_control:,} / {r.n_treatment:,}",
            "rel": format_relative(r._asdict(), 1),
            "outcome": r.outcome,
            "ci": f"[{format_pct(r.rel_ci_lower, 1)}, {format_pct(r.rel_ci_upper, 1)}]",
            "p": format_p(r.p_value),
            "p_adjusted": format_p(r.p_value_adjusted),
            "reason": None,
        }
        for r in t.itertuples()
    ]
    missing_rows = getattr(seg, "not_estimable", None)
    if missing_rows is not None and len(missing_rows):
        names = {**arm_labels(list(dict.fromkeys([*t.variant, *missing_rows.variant]))), **names}
        rows += [
            {
                "segment": r.segment,
                "arm": names.get(r.variant, str(r.variant)),
                "units": f"{r.n_control:,} / {r.n_treatment:,}",
                "reason": r.reason,
            }
            for r in missing_rows.itertuples()
        ]
        order = {v: i for i, v in enumerate(sorted(dict.fromkeys([*t.segment, *missing_rows.segment]), key=str))}
        rows.sort(key=lambda r: order[r["segment"]])  # stable: each segment's arms stay in order
        several = several or missing_rows.variant.nunique() > 1
    het = [
        {
            "arm": names.get(h.variant, str(h.variant)),
            "q": f"{h.q:.2f}",
            "df": h.df,
            "p": p_text(h.p_value),
            "i2": f"{h.i2:.0%}",
            "differs": bool(h.p_value < spec.alpha),
        }
        for h in seg.heterogeneity.itertuples()
        if np.isfinite(h.q)
    ]
    notes = []
    if seg.missing:
        notes.append(f"{seg.missing:,} units without a value in this column are left out.")
    for segment, covariates, kept in getattr(seg, "unadjusted", ()):
        rest = (
            f"it is adjusted for {' and '.join(kept)} only"
            if kept
            else "its effect is the plain difference between the arms"
        )
        notes.append(
            f"{segment}: not adjusted for {' and '.join(covariates)}, whose denominator is 0 for every unit "
            f"there (no pre-period); {rest}."
        )
    if seg.hidden:
        notes.append(
            f"Only the {len(t) if not several else t.segment.nunique()} largest values are shown; "
            f"{seg.hidden} smaller ones are not."
        )
    alt = f"Forest plot of the relative lift of {spec.primary.name} by {seg.column}: " + "; ".join(
        f"{r.segment}: {format_relative(r._asdict(), 1)}" for r in t.itertuples()
    )
    fixed = " (fixed-horizon)" if getattr(seg, "fixed_horizon", False) else ""
    return {
        "column": seg.column,
        "several": several,
        "rows": rows,
        "heterogeneity": het,
        "notes": notes,
        "ci_head": f"{1 - spec.alpha:.0%} CI{fixed}",
        "correction": _CORRECTION_WORDS.get(seg.correction, seg.correction),
        "chart": chart_image(fig, alt) if fig is not None else None,
    }


def segments_html(seg, fig, spec) -> str:
    """Segment breakdown of the primary metric: forest plot, table with adjusted p-values, Cochran's Q."""
    return render_page("ab_segment.html.j2", **segments_context(seg, fig, spec))


def segments_section_context(parts: Sequence[str], spec) -> dict:
    """The segments section (``ab_segments.html.j2``): its words and the breakdowns (rendered pages)."""
    return {
        "primary": spec.primary.name,
        "correction": _CORRECTION_WORDS.get(spec.correction or "holm"),
        "sequential": bool(getattr(spec, "sequential", False)),
        "parts": list(parts),
    }


def segments_section_html(parts: Sequence[str], spec) -> str:
    return render_page("ab_segments.html.j2", **segments_section_context(parts, spec))


# --------------------------------------------------------------------------- time to event
def plot_time_to_event(tte, spec=None, ax=None, points: int = 150):
    """Kaplan-Meier curves by arm (share with the event by each time) with pointwise bands, to the horizon.

    Each curve is drawn through its exact values at ``points`` evenly spaced
    times (the Kaplan-Meier step function read there, joined by lines), so
    the chart stays a light SVG however many distinct event times there are
    (tens of thousands at minute resolution); the numbers use every time.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8.6, 3.8))
    metric = tte.metric
    frame = tte.curves()
    names = arm_labels(tte.arms)
    grid = np.linspace(0.0, metric.horizon, points + 1)
    colours = ["#57606a", *_ARM_COLOURS]
    for i, arm in enumerate(tte.arms):
        f = frame[frame["arm"] == arm]
        at = np.searchsorted(f["time"].to_numpy(), grid, side="right") - 1
        ok = at >= 0
        x = grid[ok]
        y, lo, hi = (f[c].to_numpy()[at[ok]] * 100 for c in ("share_with_event", "share_ci_lower", "share_ci_upper"))
        c = colours[i % len(colours)]
        ax.fill_between(x[::3], lo[::3], hi[::3], color=c, alpha=0.2, lw=0)  # bands: every third point
        ax.plot(x, y, color=c, lw=2, label=f"{short_label(names[arm])} (n={tte.counts.arms[arm].units:,})")
    noun = event_words(metric)
    ax.set_xlim(0, metric.horizon)
    ax.set_ylim(0, 100)
    ax.set_xlabel(f"{metric.time_unit} since the start", parse_math=False)
    ax.set_ylabel(f"% with {'the event' if noun == 'events' else 'a ' + noun.removesuffix('s')}", parse_math=False)
    ax.set_title(
        f"{short_label(metric.name)}: Kaplan-Meier by arm ({1 - tte.alpha:.0%} pointwise bands)",
        loc="left",
        fontsize=10,
        parse_math=False,
    )
    leg = ax.legend(fontsize=8, frameon=False, loc="lower right")
    for t in leg.get_texts():
        t.set_parse_math(False)
    style_axes(ax, alpha=0.25, tight=False)
    ax.figure.tight_layout()
    return ax


def _share_time(tte) -> float:
    """A time to read the share with the event at: the control arm's median rounded to a whole time unit (on
    the grid of a binned metric), else a sixth of the horizon."""
    km = tte.kaplan_meier(tte.control)
    below = np.flatnonzero(km.survival <= 0.5)
    at = float(np.ceil(km.time[below[0]])) if below.size else max(1.0, round(tte.metric.horizon / 6))
    at = min(max(at, 1.0), tte.metric.horizon)
    r = tte.metric.resolution
    return float(np.ceil(at / r) * r) if r else at


def time_to_event_context(fig, tte, spec=None, maturity: dict | None = None) -> dict:
    """One time-to-event metric's section (``ab_time_to_event.html.j2``): the effect in words, the share with
    the event by a time, medians, the Kaplan-Meier chart, and how many units were followed the whole horizon."""
    from ..time_to_event import share_sentence

    metric = tte.metric
    events = event_words(metric)
    noun = events[:-1] if events.endswith("s") else events
    names = arm_labels(tte.arms)
    level = 1 - tte.alpha
    unit = metric.time_unit
    at = _share_time(tte)
    shares = tte.share_with_event(at)
    medians = tte.medians()
    several = len(tte.treatments) > 1
    arms = []
    for arm in tte.treatments:
        s = shares[shares["variant"] == arm].iloc[0]
        md = medians[medians["variant"] == arm].iloc[0]
        share = share_sentence(
            s["control_value"],
            s["treatment_value"],
            s["ci_lower"],
            s["ci_upper"],
            at,
            time_unit=unit,
            events=f"with {'the event' if events == 'events' else 'a ' + noun}",
            level=level,
        )
        if np.isfinite(md["effect"]):
            est, lo, hi = signed_interval(md["effect"], md["ci_lower"], md["ci_upper"])
            median = (
                f"median {format_number(md['control_value'], 3)} {unit} in {names[tte.control]}, "
                f"{format_number(md['treatment_value'], 3)} in {names[arm]} (difference {est}, "
                f"{level:.0%} CI {lo} to {hi})"
            )
        else:
            median = f"the median is not reached within {metric.horizon:g} {unit} in some arm"
        arms.append(
            {
                "arm": f"{names[arm]} vs {names[tte.control]}" if several else None,
                "sentence": tte.sentence(arm, events=events),
                "share": share,
                "median": median,
            }
        )
    counts = []
    for arm in tte.arms:
        km = tte.kaplan_meier(arm)
        counts.append(
            {
                "arm": names[arm],
                "units": f"{tte.counts.arms[arm].units:,}",
                "events": f"{int(km.events.sum()):,}",
                "censored": f"{int((km.removed - km.events).sum()):,}",
            }
        )
    mat = (maturity or {}).get(metric.name)
    who = "units" if spec is None or not getattr(spec, "unit", None) else f"units ({spec.unit})"
    alt = (
        f"Kaplan-Meier chart of the share of {names[tte.control]} and treatment units with the event by each "
        f"time up to {metric.horizon:g} {unit}, with {level:.0%} pointwise bands. "
        + " ".join(a["sentence"] + "." for a in arms)
    )
    return {
        "name": metric.name,
        "events": events,
        "horizon": f"{metric.horizon:g}",
        "unit": unit,
        "level": f"{level:.0%}",
        "arms": arms,
        "counts": counts,
        "followed": mat.sentence(who, censored=True) if mat is not None else None,
        "chart": chart_image(fig, alt),
    }


def time_to_event_html(fig, tte, spec=None, maturity: dict | None = None) -> str:
    """A time-to-event metric: its effect in plain words and its Kaplan-Meier curves by arm with bands."""
    return render_page("ab_time_to_event.html.j2", **time_to_event_context(fig, tte, spec, maturity))


# --------------------------------------------------------------------------- methodology
def footer_context(spec, data_word: str = "data", details: str | None = None) -> dict:
    """The line at the foot of a page (``macros.html.j2`` footer): version, time, spec and data."""
    from .. import __version__

    return {
        "version": __version__,
        "when": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "source": Path(spec.source).name if spec.source else "(none)",
        "data_word": data_word,
        "data_label": spec.data_label,
        "details": details,
    }


def methodology_context(spec, result: ExperimentResult | None = None) -> dict:
    """What the methodology section (``ab_methodology.html.j2``) needs to say which methods this readout used."""
    kinds = {m.type for m in spec.metrics}
    built = spec.build_metrics()
    seq = bool(getattr(spec, "sequential", False))
    margin_of_size = False
    if any(g.margin is not None for g in spec.guardrails) and result is not None:
        guard_rows = [r for r in result.rows if r["metric"] in {g.name for g in spec.guardrails}]
        margin_of_size = any(change_scale(r) in (RELATIVE_TO_SIZE, ABSOLUTE) for r in guard_rows)
    definitions = []
    for m, metric in zip(spec.metrics, built):
        role = (
            "primary"
            if m.primary
            else (f"guardrail (margin {m.margin:.1%})" if m.margin is not None else "guardrail")
            if m.guardrail
            else "secondary"
        )
        definitions.append(
            {
                "name": m.name,
                "role": role,
                "type": _TYPE_WORDS[m.type],
                "definition": m.definition,
                "covariates": ", ".join(str(c) for c in metric.covariates) if m.covariates else None,
                "better": m.better,
                "description": m.description or "",
            }
        )
    n_units = f"{sum(result.srm.observed):,} units, " if result is not None else ""
    events = [m for m in spec.metrics if m.is_time_to_event]
    windows = [m for m in spec.metrics if m.window is not None and not m.is_time_to_event]
    return {
        "means": bool(kinds & {"mean", "proportion"}),
        "ratios": "ratio" in kinds,
        "events": ", ".join(m.name for m in events) or None,
        "windows": ", ".join(f"{m.name} ({m.window})" for m in windows) or None,
        "data_end": spec.data_end.isoformat() if getattr(spec, "data_end", None) is not None else None,
        "cuped": ", ".join(m.name for m in built if m.method == "cuped") or None,
        "lin": ", ".join(m.name for m in built if m.method == "lin") or None,
        "sequential": seq,
        "date": spec.date,
        "tuned": f"the planned {spec.planned_units:,} units" if spec.planned_units else "the units analysed",
        "correction": spec.correction,
        "margins": any(g.margin is not None for g in spec.guardrails),
        "margin_of_size": margin_of_size,
        "level": f"{1 - spec.alpha:.0%}",
        "half_alpha": f"{spec.alpha / 2:g}",
        "alpha": f"{spec.alpha:g}",
        "srm_alarm": f"{SRM_ALARM:g}",
        "balance_alarm": f"{BALANCE_ALARM:g}",
        "unit": getattr(spec, "unit", None),
        "leak_alarm": f"{LEAK_ALARM:.0%}",
        "duplicate_alarm": f"{DUPLICATE_ALARM:.0%}",
        "mde": f"{spec.mde:.1%}" if spec.mde else None,
        "power": f"{spec.power:.0%}",
        "segments": bool(spec.segments),
        "dropna": ", ".join(m.name for m in spec.metrics if m.dropna) or None,
        "definitions": definitions,
        "footer": footer_context(spec, details=f"{n_units}alpha {spec.alpha:g}"),
    }


def methodology_html(spec, result: ExperimentResult | None = None) -> str:
    """How the numbers were computed, with references, the metric definitions and a short glossary."""
    return render_page("ab_methodology.html.j2", **methodology_context(spec, result))


# --------------------------------------------------------------------------- summary for the runner
def summary(spec, result: ExperimentResult, verdicts: Sequence[Verdict]) -> dict:
    """Plain JSON data the runner reads back from the executed notebook (portfolio page)."""
    arms = []
    kind = getattr(result.metric(spec.primary.name), "kind", None)
    for v in verdicts:
        row = result.row(spec.primary.name, v.variant)
        arms.append(
            {
                "variant": str(v.variant),
                "label": v.display_label,
                "headline": v.headline,
                "colour": v.colour,
                "rel_effect": _finite(row["rel_effect"]),
                "rel_ci_lower": _finite(row["rel_ci_lower"]),
                "rel_ci_upper": _finite(row["rel_ci_upper"]),
                "p_value": _finite(result.decision_p(row)),
                "p_label": p_label(result),
            }
        )
        text = _portfolio_change(row, kind, result)
        if text:  # an NPS (points), a negative or near-zero control value: the words, not a bare percentage
            arms[-1]["text"] = text
    return {
        "name": spec.name,
        "kind": "ab",
        "primary": spec.primary.name,
        "better": spec.primary.better,
        "alpha": spec.alpha,
        "srm_mismatch": bool(result.srm.mismatch),
        "arms": arms,
    }


def _portfolio_change(row: dict, kind: str | None, result: ExperimentResult) -> str | None:
    """The portfolio page's change for a primary metric that is not read as ``treatment / control - 1`` of a
    positive control value (None otherwise): NPS points, "% of |control|", or the absolute effect."""
    scale = change_scale(row, kind)
    p = p_text(result.decision_p(row), p_label(result))
    if scale == POINTS:
        e, lo, hi = signed_interval(row["effect"], row["ci_lower"], row["ci_upper"])
        return f"{e} points [{lo}, {hi}] {p}"
    if scale == ABSOLUTE:
        e, lo, hi = signed_interval(row["effect"], row["ci_lower"], row["ci_upper"])
        return f"{e} [{lo}, {hi}] (absolute: control near zero) {p}"
    if scale == RELATIVE_TO_SIZE:
        return (
            f"{format_pct(row['rel_effect'], 2)} of |control| [{format_pct(row['rel_ci_lower'])}, "
            f"{format_pct(row['rel_ci_upper'])}] {p}"
        )
    return None
