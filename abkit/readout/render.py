"""HTML pieces of an A/B readout: header, verdict, health checks, metric table, charts, methodology.

Each function takes abkit objects (an :class:`abkit.spec.ExperimentSpec`,
an :class:`abkit.ExperimentResult`, the verdicts of
:func:`abkit.verdict.decide`, the checks of :mod:`abkit.readout.ab`) and
returns an HTML string in which every user-supplied string (experiment and
metric names, descriptions, arm labels, segment values) is escaped with
:func:`html.escape`. The readout notebook (``abkit/templates/ab_readout.ipynb``)
is a sequence of short calls to these functions, so what the page shows is
testable without a kernel. The page order is: a compact header (name, owner,
dates, primary metric, hypothesis), the verdict with the decision rule,
details, health checks, metrics, charts, methodology and glossary.
"""
from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..formatting import (
    ABSOLUTE, POINTS, RELATIVE_TO_SIZE, change_scale, format_number, format_p, format_pct, format_relative,
    interval_text, signed_interval,
)
from ..plots import style_axes
from ..results import ExperimentResult
from ..stats.checks import SRM_ALARM
from ..verdict import (
    BALANCE_ALARM, COLOURS, DUPLICATE_ALARM, LEAK_ALARM, Verdict, change_words, ci_label, missingness_checks,
    p_label, p_text,
)
from .pages import render_page
from .templates import html_template_dir

__all__ = [
    "configure_matplotlib", "header_html", "verdict_html", "details_html", "srm_html", "health_html",
    "metrics_html", "chart_html", "figure_data_uri", "chart_alt", "cumulative_html", "plot_cumulative",
    "segments_html", "segments_section_html", "plot_segments", "methodology_html", "summary",
    "decision_rule_text", "section_error_html", "data_snapshot_html", "sequential_html", "plot_always_valid", "interval_text",
]

CSS_PATH = html_template_dir() / "abkit" / "abkit.css"
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
       "form-action 'none'")

_CORRECTION_WORDS = {"holm": "Holm", "bh": "Benjamini-Hochberg"}
_TYPE_WORDS = {"mean": "mean", "proportion": "proportion", "ratio": "ratio"}
_OUTCOME_COLOURS = {"better": "#1a7f37", "worse": "#cf222e", "neutral": "#57606a"}


def _e(value) -> str:
    """Escape any value for HTML text and attributes."""
    return html.escape(str(value), quote=True)


def _text_block(value: str | None, css: str = "abkit-text") -> str:
    """A user paragraph; newlines are kept by CSS (white-space: pre-line), not by markup."""
    if not value or not value.strip():
        return ""
    return f'<p class="{css}">{_e(value.strip())}</p>'


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


# --------------------------------------------------------------------------- matplotlib
def configure_matplotlib(dpi: int = 110) -> None:
    """Inline PNG figures, crisp enough for a laptop, with labels taken literally.

    ``text.parse_math`` is switched off so a metric called e.g. ``$ refunded``
    is drawn as written instead of being parsed as TeX.
    """
    import matplotlib

    matplotlib.rcParams.update({
        "figure.dpi": dpi, "savefig.dpi": dpi, "text.parse_math": False, "font.size": 10,
        "axes.titlesize": 11, "figure.facecolor": "white", "savefig.facecolor": "white",
    })
    try:  # inside IPython: emit image/png only (embedded as data: URIs in the HTML)
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
    except Exception:  # noqa: BLE001 - outside a kernel there is nothing to configure
        pass


def figure_data_uri(fig, dpi: int | None = None) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI (nothing to fetch, nothing to lose)."""
    import base64
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi or fig.dpi, bbox_inches="tight", facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


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
    more = (f" (with the days still needed to detect a {spec.mde:.1%} change with {spec.power:.0%} power"
            f"{' on the always-valid interval' if seq else ''})" if spec.mde else "")
    if seq:
        more += (". The test is read while it runs: p-values and intervals are always valid, so it may stop as "
                 "soon as the primary metric's interval excludes zero")
    return (f"Ship an arm if {p.name} moved in the good direction ({p.better} is better) with {sig}"
            f"{guard_txt}. Do not ship if {p.name} got significantly worse{worse_txt}. Invalid if the "
            f"sample-ratio check fails (p < {SRM_ALARM:g}) or the arms differed before the test (balance p < "
            f"{BALANCE_ALARM:g}). Otherwise inconclusive{more}.")


def header_html(spec, kicker: str = "A/B test readout") -> str:
    """Compact title block: name, owner, dates, primary metric and hypothesis (the verdict follows)."""
    bits = []
    if spec.owner:
        bits.append(f"<span><b>Owner</b> {_e(spec.owner)}</span>")
    dates = _dates(spec)
    if dates:
        bits.append(f"<span><b>Dates</b> {_e(dates)}</span>")
    bits.append(f"<span><b>Primary metric</b> {_e(_metric_line(spec.primary))}</span>")
    parts = [
        '<header class="abkit-header">',
        f'<div class="abkit-kicker">{_e(kicker)}</div>',
        f"<h1>{_e(spec.name)}</h1>",
        f'<p class="abkit-sub">{"".join(bits)}</p>',
    ]
    if spec.hypothesis and spec.hypothesis.strip():
        parts.append(f'<div class="abkit-note"><b>Hypothesis.</b> {_text_block(spec.hypothesis)}</div>')
    parts.append("</header>")
    return "\n".join(parts)


def details_html(spec) -> str:
    """What was tested: arms and planned split, metrics' roles, the plan (MDE, power, units), what changed."""
    rows: list[tuple[str, str]] = []
    alloc = spec.planned_allocation
    if isinstance(alloc, dict):
        total = sum(alloc.values())
        arms = ", ".join(f"{_e(a)} {v / total:.0%}" for a, v in alloc.items())
        rows.append(("Arms (planned split)", arms))
    else:
        rows.append(("Control arm", _e(spec.control)))
    rows.append(("Primary metric", _e(_metric_line(spec.primary))))
    if spec.guardrails:
        rows.append(("Guardrails", "<br>".join(_e(_guard_words(g)) for g in spec.guardrails)))
    others = [m for m in spec.metrics if not m.primary and not m.guardrail]
    if others:
        rows.append(("Other metrics", _e(", ".join(m.name for m in others))))
    plan = []
    if spec.mde:
        plan.append(f"detect a {spec.mde:.1%} change in {spec.primary.name} with {spec.power:.0%} power")
    if spec.planned_units:
        plan.append(f"{spec.planned_units:,} units in total")
    if plan:
        rows.append(("Plan", _e("; ".join(plan))))
    rows.append(("Significance", _e(f"alpha {spec.alpha:g}" + (f", {_CORRECTION_WORDS[spec.correction]} "
                                                                 "correction" if spec.correction else ""))))
    meta = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    desc = ""
    if spec.description and spec.description.strip():
        desc = f'<div class="abkit-description"><b>What changed.</b> {_text_block(spec.description)}</div>'
    return f'<section class="abkit-section"><h2>The test</h2><dl class="abkit-meta">{meta}</dl>{desc}</section>'


# --------------------------------------------------------------------------- verdict
def verdict_html(verdicts: Sequence[Verdict], result: ExperimentResult | None = None, spec=None) -> str:
    """The decision, first: one card per treatment arm with its label, headline and reasons.

    With ``spec`` the decision rule follows the cards.
    """
    control = f" vs {_e(result.control)}" if result is not None else ""
    cards = []
    for v in verdicts:
        colour = COLOURS.get(v.label, "#57606a")
        reasons = "".join(f"<li>{_e(r)}</li>" for r in v.reasons)
        cards.append(
            f'<div class="abkit-verdict" style="border-left-color:{colour}">'
            f'<div class="abkit-verdict-top"><span class="abkit-label" style="background:{colour}">'
            f'{_e(v.display_label)}</span><span class="abkit-arm">{_e(v.variant)}{control}</span></div>'
            f'<p class="abkit-headline">{_e(v.headline)}</p>'
            f'<ul class="abkit-reasons">{reasons}</ul></div>'
        )
    if not cards:
        cards.append('<p class="abkit-muted">No treatment arm to decide on.</p>')
    rule = (f'<p class="abkit-rule"><b>Decision rule.</b> {_e(decision_rule_text(spec))}</p>'
            if spec is not None else "")
    return ('<section class="abkit-section" id="abkit-verdict"><h2>Verdict</h2><div class="abkit-verdicts">'
            + "".join(cards) + f"</div>{rule}</section>")


# --------------------------------------------------------------------------- health checks
def _srm_block(result: ExperimentResult) -> str:
    srm = result.srm
    rows = "".join(
        f"<tr><td>{_e(a)}</td><td>{o:,}</td><td>{s:.2%}</td><td>{e:.2%}</td></tr>"
        for a, o, s, e in zip(srm.arms, srm.observed, srm.observed_share, srm.expected_share)
    )
    table = ('<div class="abkit-table-wrap"><table class="abkit-table abkit-narrow abkit-srm"><thead><tr>'
             "<th>Arm</th><th>Units</th><th>Observed share</th><th>Planned share</th></tr></thead>"
             f"<tbody>{rows}</tbody></table></div>")
    stat = f"chi-square = {format_number(srm.chi2, 3)} on {srm.df} df, {p_text(srm.p_value)}"
    if srm.mismatch:
        banner = (
            '<div class="abkit-banner abkit-banner-bad" role="alert">'
            '<strong class="abkit-banner-title">&#9888; Sample ratio mismatch: do not trust the results '
            "below.</strong><br>"
            f"The units are not split between the arms as planned ({_e(stat)}, alarm threshold "
            f"p &lt; {srm.threshold:g}). Assignment or logging is broken for some units, so the arms are no "
            "longer comparable and every effect in this readout may be biased. Find and fix the cause "
            "(e.g. redirects, bot filtering, crashes in one arm, late triggering), then rerun.</div>"
        )
    else:
        banner = (
            '<div class="abkit-banner abkit-banner-ok">&#10003; Sample ratio check passed: the units are split '
            f"as planned ({_e(stat)}).</div>"
        )
    return banner + table


def srm_html(result: ExperimentResult) -> str:
    """The sample-ratio-mismatch check as its own section (a loud red banner when it fails)."""
    extra = ""
    if result.missing_variant:
        extra = f'<p class="abkit-muted">{result.missing_variant:,} rows without an arm were left out.</p>'
    return f'<section class="abkit-section"><h2>Health check: sample ratio</h2>{_srm_block(result)}{extra}</section>'


def _size_block(size) -> str:
    if size is None:
        return ""
    parts = []
    if size.planned_units:
        share = size.reached_share
        cls = "abkit-banner-ok" if share >= 1 else "abkit-banner-warn"
        mark = "&#10003;" if share >= 1 else "&#9888;"
        parts.append(f'<div class="abkit-banner {cls}">{mark} {size.units:,} units of the {size.planned_units:,} '
                     f"planned ({share:.0%}).</div>")
    if size.mde:
        n = size.needed
        if n is not None:
            enough = n.factor <= 1
            av = " on the always-valid interval" if getattr(size, "sequential", False) else ""
            txt = (f"To detect a {size.mde:.1%} change in the primary metric with {size.power:.0%} power{av}, the "
                   f"observed variance calls for about {n.units_needed:,.0f} units; the test has {size.units:,} "
                   f"({size.units / n.units_needed:.0%}).")
            if n.days_total is not None and size.days:
                txt += (f" At the rate so far ({size.units / size.days:,.0f} units a day over {size.days:.0f} days) "
                        f"that takes {n.days_total} days in total" + ("." if enough else f", {n.days_more} more."))
        else:   # a planned relative MDE but no estimate (e.g. the primary's control value is near zero)
            enough = False
            txt = (f"No estimate of the units needed for a {size.mde:.1%} change: the primary metric has no usable "
                   "relative lift yet (its control value is not distinguishable from zero, or its variance is "
                   "unknown).")
        cls = "abkit-banner-ok" if enough else "abkit-banner-warn"
        parts.append(f'<div class="abkit-banner {cls}">{"&#10003;" if enough else "&#9888;"} {_e(txt)}</div>')
    if not parts:
        return ('<p class="abkit-muted">No sample-size plan in the spec (add <code>planned_units</code> or '
                "<code>mde</code>) to check whether the test ran long enough.</p>")
    how = f" Days run: {size.days:.0f} ({_e(size.days_source)})." if size.days else ""
    words = (getattr(size.needed, "words", "") or "from the planned MDE and power, with the variance observed so "
             "far") if size.needed is not None else ""
    method = f" Units needed: {_e(words)}." if size.needed is not None else ""
    return "".join(parts) + f'<p class="abkit-muted">{how}{method}</p>'


def _smd_text(smd: float) -> str:
    """A standardized mean difference, signed, 3 decimals; ``0.000`` (not ``-0.000``) when it rounds to zero."""
    if smd is None or not math.isfinite(smd):
        return "n/a"
    return "0.000" if round(smd, 3) == 0 else f"{smd:+.3f}"


def _balance_block(bal) -> str:
    from .ab import SMD_FLAG

    if bal is None:
        return ""
    if bal.error:
        return (f'<div class="abkit-banner abkit-banner-warn">&#9888; The pre-period balance check could not run: '
                f"{_e(bal.error)}</div>")
    if not bal.columns:
        return ('<p class="abkit-muted">No pre-period columns to compare (the metrics use no covariates and the '
                "spec lists no <code>balance</code> columns).</p>")
    several = bal.table.variant.nunique() > 1
    rows = []
    for r in bal.table.itertuples():
        flag = abs(r.smd) > SMD_FLAG
        smd = f'<span style="color:{"#cf222e" if flag else "inherit"};font-weight:{600 if flag else 400}">{_smd_text(r.smd)}</span>'
        arm = f"<td>{_e(r.variant)}</td>" if several else ""
        rows.append(f"<tr><td>{_e(r.column)}</td>{arm}<td>{format_number(r.control_mean)}</td>"
                    f"<td>{format_number(r.treatment_mean)}</td><td>{smd}</td><td>{format_p(r.p_value)}</td></tr>")
    arm_head = "<th>Arm</th>" if several else ""
    table = ('<div class="abkit-table-wrap"><table class="abkit-table abkit-narrow"><thead><tr><th>Pre-period '
             f"column</th>{arm_head}<th>Control</th><th>Treatment</th><th>Std. mean diff.</th><th>p-value</th>"
             f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
    joint = "; ".join(f"{_e(j.variant)}: chi-square {j.chi2:.2f} on {j.df} df, {p_text(j.p_value)}"
                      for j in bal.joint.itertuples())
    if bal.alarm:
        banner = ('<div class="abkit-banner abkit-banner-bad" role="alert"><strong class="abkit-banner-title">'
                  "&#9888; The arms differed before the test.</strong><br>"
                  f"Joint test of the pre-period columns: {joint} (alarm at p &lt; {BALANCE_ALARM:g}). The "
                  "assignment is not random with respect to past behaviour; do not trust the effects.</div>")
    elif bal.flagged:
        banner = ('<div class="abkit-banner abkit-banner-warn">&#9888; Small pre-period differences in '
                  f"{_e(', '.join(bal.flagged))} (|std. mean diff.| &gt; {SMD_FLAG:g}), but the joint test does not "
                  f"flag them ({joint}). CUPED adjusts the effects for these columns.</div>")
    else:
        banner = ('<div class="abkit-banner abkit-banner-ok">&#10003; The arms looked alike before the test '
                  f"(joint test: {joint}; every |std. mean diff.| &le; {SMD_FLAG:g}).</div>")
    return banner + table


def _dropped_block(dropped) -> str:
    if dropped is None:
        return ""
    if len(dropped) == 0:
        return '<p class="abkit-muted">&#10003; No unit was left out of any number.</p>'
    rows = "".join(f"<tr><td>{_e(r.reason)}</td><td>{r.units:,}</td><td>{format_pct(r.share, 1, sign=False)}</td></tr>"
                   for r in dropped.itertuples())
    return ('<div class="abkit-table-wrap"><table class="abkit-table abkit-left abkit-narrow"><thead><tr>'
            f"<th>Left out</th><th>Units</th><th>Share of all units</th></tr></thead><tbody>{rows}</tbody>"
            "</table></div>")


def _missingness_block(result: ExperimentResult) -> str:
    """Differential missingness: does the share of units with a value of a dropna metric differ by arm?"""
    checks = missingness_checks(result)
    if not checks:
        return ""
    rows = []
    for c in checks:
        arm = f"<td>{_e(c.variant)}</td>"        # always: the arm is the (left-aligned) second column
        mark = ('<span style="color:#9a6700;font-weight:600">&#9888; differs</span>' if c.flagged
                else "&#10003; similar")
        rows.append(f"<tr><td>{_e(c.metric)}</td>{arm}<td>{format_pct(c.share_control, 1, sign=False)}</td>"
                    f"<td>{format_pct(c.share_treatment, 1, sign=False)}</td><td>{format_p(c.p_value)}</td>"
                    f"<td>{mark}</td></tr>")
    head = ("<th>Metric</th><th>Arm</th><th>Control: share with a value</th>"
            "<th>Arm: share with a value</th><th>p-value</th><th></th>")
    table = ('<div class="abkit-table-wrap"><table class="abkit-table abkit-narrow"><thead><tr>'
             f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
    flagged = [c for c in checks if c.flagged]
    threshold = checks[0].threshold
    if flagged:
        items = "".join(f"<li><b>{_e(c.metric)}</b>: {_e(c.sentence(result.control))}.</li>" for c in flagged)
        banner = ('<div class="abkit-banner abkit-banner-warn">&#9888; <b>Measured on a different mix of buyers in '
                  f"each arm.</b><ul>{items}</ul>The change affected who has a value, so the metric's effect mixes "
                  "who is measured with what changed for them: read its effect with care (it is not an effect on "
                  f"all buyers). Flagged when the shares differ at p &lt; {threshold:g}.</div>")
    else:
        banner = ('<p class="abkit-muted">&#10003; The metrics that leave buyers without a value out have a similar '
                  f"share of buyers with a value in every arm (no difference at p &lt; {threshold:g}), so they "
                  "compare like with like.</p>")
    return banner + table


def _integrity_block(integrity) -> str:
    """Unit integrity (``analyze(..., unit=...)``): a red banner for a material leak or duplication."""
    if integrity is None:
        return ""
    if integrity.clean:
        return ('<div class="abkit-banner abkit-banner-ok">&#10003; Every one of the '
                f"{integrity.units:,} units ({_e(integrity.unit)}) is in one arm, with one row.</div>")
    material = integrity.leak_share > LEAK_ALARM or integrity.duplicate_share > DUPLICATE_ALARM
    items = "".join(f"<li>{_e(p)}.</li>" for p in integrity.problems())
    if material:
        return ('<div class="abkit-banner abkit-banner-bad" role="alert"><strong class="abkit-banner-title">'
                "&#9888; Units are not in exactly one arm exactly once: do not trust the results below."
                f"</strong><ul>{items}</ul>Alarm when more than {LEAK_ALARM:.0%} of the units are in several arms "
                f"or more than {DUPLICATE_ALARM:.0%} have several rows.</div>")
    return (f'<div class="abkit-banner abkit-banner-warn">&#9888; Small unit-integrity problems (below the '
            f"{LEAK_ALARM:.0%} alarm):<ul>{items}</ul></div>")


def health_html(result: ExperimentResult, balance=None, size=None, dropped=None) -> str:
    """Health checks: sample ratio, unit integrity, sample size vs plan, pre-period balance, units left out and why."""
    parts = ['<section class="abkit-section"><h2>Health checks</h2>',
             "<h3>Sample ratio</h3>", _srm_block(result)]
    if getattr(result, "integrity", None) is not None:
        parts += ["<h3>Unit integrity</h3>", _integrity_block(result.integrity)]
    if size is not None:
        parts += ["<h3>Sample size</h3>", _size_block(size)]
    if balance is not None:
        parts += ["<h3>Pre-period balance</h3>", _balance_block(balance)]
    if dropped is not None:
        parts += ["<h3>Units left out</h3>", _dropped_block(dropped)]
    missing = _missingness_block(result)
    if missing:
        parts += ["<h3>Who has a value</h3>", missing]
    parts.append("</section>")
    return "".join(parts)


# --------------------------------------------------------------------------- metrics
def metrics_html(result: ExperimentResult, spec=None) -> str:
    """The metric table: arm values, absolute and relative effect with CIs, p-values, coloured by outcome.

    With a correction the table names both p-values ("unadjusted" and e.g.
    "Holm-adjusted p"; colours and verdicts use the adjusted one); a
    sequential result's intervals and p-values are labelled always-valid.
    A metric measured on a different mix of units in each arm
    (:func:`abkit.verdict.missingness_checks`) is flagged in its row.
    """
    seq = bool(getattr(result, "sequential", False))
    sig = f"{'always-valid ' if seq else ''}p &lt; {result.alpha:g}"
    if result.correction:
        sig += f" after {_CORRECTION_WORDS.get(result.correction, _e(result.correction))} adjustment"
    legend = (f'<p class="abkit-muted">One row per metric and arm. Relative lift in '
              f'<span style="color:#1a7f37;font-weight:600">green</span> = significantly better, '
              f'<span style="color:#cf222e;font-weight:600">red</span> = significantly worse ({sig}), '
              "grey = no significant difference; what counts as better depends on the metric "
              "(for contact rate and time to refund, lower is better). Values are per buyer (means) or per unit "
              f"of the denominator (ratios); CI = confidence interval.{_e(_relative_legend(result))}</p>")
    if seq:
        legend += ('<p class="abkit-muted">Intervals and p-values are <b>always valid</b>: correct however often '
                   "the test is looked at, so it may stop as soon as an interval excludes zero. They are "
                   "wider than fixed-horizon intervals, which are only valid at one planned look.</p>")
    roles = {}
    if spec is not None:
        for m in spec.metrics:
            roles[m.name] = ("primary" if m.primary else
                             (f"guardrail, margin {m.margin:.1%}" if m.margin is not None else "guardrail")
                             if m.guardrail else "")
    skewed = {(c.metric, c.variant) for c in missingness_checks(result) if c.flagged}
    corr = result.correction is not None
    level = f"{1 - result.alpha:.0%}{' always-valid' if seq else ''}"
    several = len(result.treatments) > 1
    p_head = "Always-valid p" if seq else "p-value"
    p_heads = ([f"{p_head}<br>(unadjusted)", _e(p_label(result))] if corr else [p_head])
    head = ["Metric", *(["Arm"] if several else []), "Control", "Treatment", f"Abs. effect<br>[{level} CI]",
            f"Rel. lift<br>[{level} CI]", *p_heads, "Units<br>control / treatment"]
    body = []
    for r in result.rows:
        colour = _OUTCOME_COLOURS[result.outcome(r)]
        role = roles.get(r["metric"], "")
        tag = f' <span class="abkit-tag">{_e(role)}</span>' if role else ""
        warn = ('<br><small style="color:#9a6700;font-weight:600">&#9888; measured on a different mix of buyers: '
                "read with care</small>" if (r["metric"], r["variant"]) in skewed else "")
        cells = [f"<b>{_e(r['metric'])}</b>{tag}<br><small>{_e(r['better'])} is better</small>{warn}"]
        if several:
            cells.append(_e(r["variant"]))
        effect, ci = interval_text(r["effect"], r["ci_lower"], r["ci_upper"])
        cells += [
            format_number(r["control_value"]), format_number(r["treatment_value"]),
            f"{effect}<small class=\"abkit-ci\">{ci}</small>",
            f'<span style="color:{colour};font-weight:600">{_e(format_relative(r, 2, near_zero="n/a*"))}</span>'
            f"<small class=\"abkit-ci\">[{format_pct(r['rel_ci_lower'], 2)}, {format_pct(r['rel_ci_upper'], 2)}]</small>",
            format_p(r["p_value"]),
        ]
        if corr:
            cells.append(format_p(r.get("p_value_adjusted", np.nan)))
        cells.append(f"{r['n_control']:,} / {r['n_treatment']:,}")
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    table = ('<table class="abkit-table abkit-metrics"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head)
             + "</tr></thead><tbody>" + "".join(body) + "</tbody></table>")
    vr = [f"{_e(r['metric'])} {format_pct(r['variance_reduction'], 0, sign=False)}" for r in result.rows
          if r.get("variance_reduction") is not None and np.isfinite(r["variance_reduction"])
          and r["variance_reduction"] > 0 and (not several or r["variant"] == result.treatments[0])]
    note = (f'<p class="abkit-muted">Variance removed by CUPED / regression adjustment: {", ".join(vr)}.</p>'
            if vr else "")
    return ('<section class="abkit-section"><h2>Metrics</h2>' + legend +
            f'<div class="abkit-table-wrap">{table}</div>{note}</section>')


def _relative_legend(result: ExperimentResult) -> str:
    """Words (plain text) for the metric table's legend when a row's relative lift is not ``treatment /
    control - 1`` of a positive control value; empty otherwise, so ordinary readouts read as before."""
    scales = {change_scale(r) for r in result.rows}
    kinds = {m.name: getattr(m, "kind", None) for m in result.metrics}
    words = ""
    if RELATIVE_TO_SIZE in scales:
        words += (" A relative lift marked \"of |control|\" is the change as a share of the size of a negative "
                  "control value, (treatment - control) / |control|: positive means the value went up, as for any "
                  "other metric.")
    if ABSOLUTE in scales:
        words += (" n/a* = control's value is not distinguishable from zero, so the data bound no relative "
                  "change: read the absolute effect.")
    if any(kinds.get(r["metric"]) == "nps" for r in result.rows):
        words += " NPS effects are in NPS points (the absolute effect)."
    return words


def chart_html(result: ExperimentResult, fig) -> str:
    """The lift chart (``result.plot().figure``) with its heading and caption, as one printable block."""
    seq = bool(getattr(result, "sequential", False))
    kind = "always-valid intervals" if seq else "confidence intervals"
    extra = (" The intervals are always valid (the same as in the table), so they may be read at any look."
             if seq else "")
    return ('<section class="abkit-section abkit-chart"><h2>Relative lift with '
            f"{1 - result.alpha:.0%} {kind}</h2>"
            f'<p class="abkit-muted">Dots are the relative change of each arm vs {_e(result.control)}; bars '
            f"their {kind}; green = significantly better, red = significantly worse, grey = "
            f"no significant change. The bars are not adjusted for multiple testing.{extra}</p>"
            f'<figure class="abkit-figure"><img src="{figure_data_uri(fig)}" alt="{_e(chart_alt(result))}">'
            "</figure></section>")


def chart_alt(result: ExperimentResult) -> str:
    """Text alternative of the lift chart (for screen readers and text-only mail clients)."""
    several = len(result.treatments) > 1
    parts = []
    for r in result.rows:
        label = f"{r['metric']} ({r['variant']})" if several else str(r["metric"])
        parts.append(f"{label}: {format_relative(r, 1, near_zero='relative lift n/a (control near zero)')} "
                     f"[{format_pct(r['rel_ci_lower'], 1)}, {format_pct(r['rel_ci_upper'], 1)}]")
    return (f"Chart of the relative lift of each metric vs {result.control} with {1 - result.alpha:.0%} "
            "confidence intervals: " + "; ".join(parts))


# --------------------------------------------------------------------------- cumulative
_ARM_COLOURS = ["#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df"]


def plot_cumulative(frame, spec, ax=None):
    """Relative lift of the primary metric on all units exposed up to each day, with its CI band."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8.6, 3.4))
    for i, (arm, part) in enumerate(frame.groupby("variant", sort=False)):
        c = _ARM_COLOURS[i % len(_ARM_COLOURS)]
        label = f"{arm} vs {spec.control}"
        ax.fill_between(part["date"], part["rel_ci_lower"] * 100, part["rel_ci_upper"] * 100, color=c, alpha=0.15,
                        lw=0)
        ax.plot(part["date"], part["rel_effect"] * 100, color=c, lw=2, marker="o", ms=3, label=label)
    ax.axhline(0, color="black", lw=0.8)
    if spec.mde:
        good = -1 if spec.primary.better == "lower" else 1
        ax.axhline(good * spec.mde * 100, color="#8c959f", lw=1, ls="--", label=f"planned MDE ({spec.mde:.1%})")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    ax.set_ylabel(f"{spec.primary.name}: relative lift (%{_size_words(frame)})", parse_math=False)
    ax.set_title(f"Cumulative effect on {spec.primary.name} ({1 - spec.alpha:.0%} CI shaded)", loc="left",
                 fontsize=10, parse_math=False)
    leg = ax.legend(fontsize=8, frameon=False)
    for t in leg.get_texts():
        t.set_parse_math(False)
    style_axes(ax, alpha=0.25, tight=False)
    ax.figure.autofmt_xdate()
    ax.figure.tight_layout()
    return ax


def cumulative_html(fig, frame, spec, missing: int = 0) -> str:
    """The fixed-horizon cumulative effect by exposure day, with its caption.

    For a sequential spec the readout shows :func:`sequential_html` instead
    (its always-valid path replaces this chart); called anyway, the caption
    says the intervals are fixed-horizon and points to the always-valid ones.
    """
    last = frame.groupby("variant", sort=False).tail(1)
    alt = (f"Chart of the cumulative relative lift of {spec.primary.name} by exposure date; final: "
           + "; ".join(f"{r.variant}: {format_relative(r._asdict(), 1)} [{format_pct(r.rel_ci_lower, 1)}, "
                       f"{format_pct(r.rel_ci_upper, 1)}]" for r in last.itertuples()))
    miss = (f" {missing:,} units without a value in <code>{_e(spec.date)}</code> are not in this chart."
            if missing else "")
    if getattr(spec, "sequential", False):
        advice = ("These bands are fixed-horizon intervals, valid for one planned look only; this test is read "
                  "with the always-valid intervals shown with the verdict, and those decide when it may stop.")
    else:
        advice = ("Do not stop the test the first time the band leaves zero: decide at the planned end (or read "
                  "the test with always-valid intervals, <code>sequential: true</code>, to look daily).")
    return ('<section class="abkit-section abkit-chart"><h2>Effect over time</h2>'
            f'<p class="abkit-muted">Each point is the effect on all units exposed up to that day (column '
            f"<code>{_e(spec.date)}</code>). The interval narrows as units accrue; an estimate that settles is a "
            f"good sign, one that still drifts suggests novelty or learning effects. {advice}{miss}</p>"
            f'<figure class="abkit-figure"><img src="{figure_data_uri(fig)}" alt="{_e(alt)}"></figure></section>')


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
        ax.fill_between(x, _finite_or_nan(lo) * 100, _finite_or_nan(hi) * 100, color=c, alpha=0.18, lw=0,
                        label=f"always-valid {level} interval of each look (the last: the verdict's)")
        ax.plot(x, _finite_or_nan(g["rel_ci_lower_fixed"]) * 100, color="#57606a", ls="--", lw=1,
                label=f"naive {level} CI (one planned look only)")
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
        focus = [_finite_or_nan(lo[-1:]) * 100, _finite_or_nan(hi[-1:]) * 100,
                 g["rel_effect"].to_numpy(dtype=float) * 100,
                 _finite_or_nan(g["rel_ci_lower_fixed"].to_numpy()[late]) * 100,
                 _finite_or_nan(g["rel_ci_upper_fixed"].to_numpy()[late]) * 100,
                 np.array([0.0] + ([(-1 if spec.primary.better == "lower" else 1) * spec.mde * 100]
                                   if spec.mde else []))]
        finite = np.concatenate([v[np.isfinite(v)] for v in focus])
        if finite.size:
            span = max(finite.max() - finite.min(), 1.0)
            ax.set_ylim(finite.min() - 0.35 * span, finite.max() + 0.35 * span)
        if dates:
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
        ax.set_ylabel(f"{spec.primary.name}: relative lift (%)", parse_math=False)
        ax.set_title(f"{spec.primary.name} [{arm} vs {path.control}]: always-valid path, one look a day",
                     loc="left", fontsize=10, parse_math=False)
        leg = ax.legend(fontsize=7.5, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
        for t in leg.get_texts():
            t.set_parse_math(False)
        style_axes(ax, alpha=0.25, tight=False)
    if dates:
        fig.autofmt_xdate()
    fig.tight_layout()
    return axes[0, 0]


def sequential_html(fig, path, spec, result: ExperimentResult | None = None) -> str:
    """The always-valid path of the primary metric and whether stopping is allowed.

    With ``result`` (the always-valid result the verdict reads: the current
    look) the sentences quote its p-value and interval, so the section and the
    verdict give the same numbers; an earlier look whose interval excluded no
    change while today's does not is named (an early effect that did not hold).
    """
    rows = path.stopping()
    rows = rows[rows["metric"] == spec.primary.name]
    sentences = []
    for r in rows.itertuples():
        arm = _e(str(r.variant))
        if result is not None:
            row = result.row(spec.primary.name, r.variant)
            p, label = result.decision_p(row), p_label(result)
            stop = result.outcome(row) != "neutral"
            ci = change_words(result, row)[1]   # relative, or points / absolute units (NPS, control near zero)
        else:
            p, label, stop, ci = r.p_value_running, "always-valid p", bool(r.stop_allowed), None
        ci_words = f" ({ci_label(result)}: {ci})" if ci else ""
        if stop:
            since = (f" since {_e(str(r.first_stop_day)[:10])}" if r.first_stop_day is not None else "")
            sentences.append(f"<b>{arm}</b>: the always-valid interval has excluded no change{since}"
                             f"{_e(ci_words)}, {_e(p_text(p, label))}: the test may stop.")
        elif r.first_stop_day is not None and result is not None:
            sentences.append(f"<b>{arm}</b>: the always-valid interval excluded no change on "
                             f"{_e(str(r.first_stop_day)[:10])}, but today's includes it{_e(ci_words)}, "
                             f"{_e(p_text(p, label))}: the early effect has not held (a novelty effect, or outcomes "
                             "still accruing); keep the test running.")
        else:
            naive = (f" A naive daily test would have declared a winner on "
                     f"{_e(str(r.first_naive_significant_day)[:10])}: that is the peeking error this "
                     "interval prevents." if r.first_naive_significant_day is not None else "")
            sentences.append(f"<b>{arm}</b>: not yet: the always-valid interval still includes no change"
                             f"{_e(ci_words)}, {_e(p_text(p, label))}; keep the test running.{naive}")
    looks = int(path.frame["day"].nunique())
    alt = (f"Chart of the {spec.primary.name} effect at each of {looks} daily looks with its always-valid "
           "interval and the naive fixed-horizon interval")
    return ('<section class="abkit-section abkit-chart"><h2>Safe to look daily: the always-valid interval</h2>'
            '<p class="abkit-muted">This test is read while it runs, with <b>always-valid</b> confidence '
            "intervals and p-values (normal-mixture confidence sequences, Howard et al. 2021; mixture sequential "
            "probability ratio test, Johari et al. 2017): they stay correct however often the results are looked "
            "at, so the test may stop as soon as the interval excludes zero. Each point is one daily look at all "
            f"buyers exposed up to that day (column <code>{_e(spec.date)}</code>). The shaded band is each look's "
            "always-valid interval; the verdict and the metric table use the latest look's interval and p-value "
            "(valid at any look; if the effect changes over time, it covers today's average effect). The dashed "
            "lines are the naive fixed-horizon interval, for comparison only: it is "
            "valid at one planned look, not when the test is looked at daily, which is why this readout shows no "
            "fixed-horizon effect-over-time chart.</p>"
            f'<p>{" ".join(sentences)}</p>'
            f'<figure class="abkit-figure"><img src="{figure_data_uri(fig)}" alt="{_e(alt)}"></figure></section>')


# --------------------------------------------------------------------------- segments
def plot_segments(seg, ax=None):
    """Forest plot of the primary metric's relative lift per segment value (and arm), overall as a band."""
    import matplotlib.pyplot as plt

    t = seg.table
    several = t.variant.nunique() > 1
    n = len(t)
    if ax is None:
        _, ax = plt.subplots(figsize=(8.6, 0.42 * n + 1.3))
    y = np.arange(n)[::-1]
    labels = []
    for yi, r in zip(y, t.itertuples()):
        colour = _OUTCOME_COLOURS[r.outcome]
        ax.plot([r.rel_ci_lower * 100, r.rel_ci_upper * 100], [yi, yi], color=colour, lw=2.2, solid_capstyle="round")
        ax.plot([r.rel_effect * 100], [yi], "o", color=colour, ms=6)
        labels.append(f"{r.segment}" + (f" ({r.variant})" if several else "") + f"  n={r.n_control + r.n_treatment:,}")
    for i, (arm, (rel, lo, hi)) in enumerate(seg.overall.items()):
        if not several or i == 0:
            ax.axvspan(lo * 100, hi * 100, color="#0969da", alpha=0.08, lw=0)
            kind = ", fixed-horizon CI" if getattr(seg, "fixed_horizon", False) else ""
            ax.axvline(rel * 100, color="#0969da", lw=1, ls="--",
                       label=f"all units ({arm}{kind})" if several else f"all units{' (fixed-horizon CI)' if kind else ''}")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y)
    for text in ax.set_yticklabels(labels):
        text.set_parse_math(False)
    ax.set_ylim(-0.7, n - 0.3)
    kind = "fixed-horizon confidence interval" if getattr(seg, "fixed_horizon", False) else "confidence interval"
    ax.set_xlabel(f"relative lift (%{_size_words(t)}), with {kind}", parse_math=False)
    ax.set_title(f"{seg.column}", loc="left", fontsize=10, parse_math=False)
    leg = ax.legend(fontsize=8, frameon=False, loc="best")
    for tx in leg.get_texts():
        tx.set_parse_math(False)
    style_axes(ax, "x")
    return ax


def segments_html(seg, fig, spec) -> str:
    """Segment breakdown of the primary metric: forest plot, table with adjusted p-values, Cochran's Q."""
    t = seg.table
    corr = _CORRECTION_WORDS.get(seg.correction, seg.correction)
    several = t.variant.nunique() > 1 if len(t) else False
    rows = []
    for r in t.itertuples():
        colour = _OUTCOME_COLOURS[r.outcome]
        arm = f"<td>{_e(r.variant)}</td>" if several else ""
        rel = _e(format_relative(r._asdict(), 1))
        rows.append(f"<tr><td>{_e(r.segment)}</td>{arm}<td>{r.n_control:,} / {r.n_treatment:,}</td>"
                    f'<td><span style="color:{colour};font-weight:600">{rel}</span></td>'
                    f"<td>[{format_pct(r.rel_ci_lower, 1)}, {format_pct(r.rel_ci_upper, 1)}]</td>"
                    f"<td>{format_p(r.p_value)}</td><td>{format_p(r.p_value_adjusted)}</td></tr>")
    fixed = " (fixed-horizon)" if getattr(seg, "fixed_horizon", False) else ""
    head = (f"<th>{_e(seg.column)}</th>" + ("<th>Arm</th>" if several else "") + "<th>Units (C / T)</th>"
            f"<th>Rel. lift</th><th>{1 - spec.alpha:.0%} CI{fixed}</th><th>p-value<br>(unadjusted)</th>"
            f"<th>{_e(corr)}-adjusted p</th>")
    table = (f'<div class="abkit-table-wrap"><table class="abkit-table abkit-narrow"><thead><tr>{head}</tr></thead>'
             f"<tbody>{''.join(rows)}</tbody></table></div>")
    het = []
    for h in seg.heterogeneity.itertuples():
        if not np.isfinite(h.q):
            continue
        arm = f" ({_e(h.variant)})" if several else ""
        verdict = ("the effect differs between segments" if h.p_value < spec.alpha else
                   "no evidence that the effect differs between segments")
        het.append(f"Cochran's Q{arm} = {h.q:.2f} on {h.df} df, {p_text(h.p_value)}, "
                   f"I&sup2; = {h.i2:.0%}: {verdict}.")
    notes = []
    if seg.missing:
        notes.append(f"{seg.missing:,} units without a value in this column are left out.")
    if seg.hidden:
        notes.append(f"Only the {len(t) if not several else t.segment.nunique()} largest values are shown; "
                     f"{seg.hidden} smaller ones are not.")
    alt = (f"Forest plot of the relative lift of {spec.primary.name} by {seg.column}: "
           + "; ".join(f"{r.segment}: {format_relative(r._asdict(), 1)}" for r in t.itertuples()))
    img = f'<figure class="abkit-figure"><img src="{figure_data_uri(fig)}" alt="{_e(alt)}"></figure>' if fig else ""
    return (f'<div class="abkit-segment"><h3>By {_e(seg.column)}</h3>{img}{table}'
            f'<p class="abkit-muted">{" ".join(het)} {" ".join(_e(n) for n in notes)}</p></div>')


def segments_section_html(parts: Sequence[str], spec) -> str:
    corr = _CORRECTION_WORDS.get(spec.correction or "holm")
    seq = ("" if not getattr(spec, "sequential", False) else
           " Unlike the verdict's, these intervals are <b>fixed-horizon</b> intervals at this look (valid for one "
           "look, not for daily peeking), and so is the all-units band behind them, so that segments and the "
           "whole compare on the same footing; they describe the data so far and are not a reason to stop.")
    return ('<section class="abkit-section abkit-chart"><h2>Segments</h2>'
            f'<p class="abkit-muted">The primary metric ({_e(spec.primary.name)}) in each segment. Segment '
            f"p-values are adjusted ({_e(corr)}) across the segments of each breakdown, and Cochran's Q tests "
            "whether the effect really differs between segments. Segments are for understanding, not for "
            f"picking winners: a segment that looks different is a hypothesis for the next test.{seq}</p>"
            + "".join(parts) + "</section>")


# --------------------------------------------------------------------------- methodology
def methodology_html(spec, result: ExperimentResult | None = None) -> str:
    """How the numbers were computed, with references, the metric definitions and a short glossary."""
    kinds = {m.type for m in spec.metrics}
    built = spec.build_metrics()
    one_cov = [m.name for m in built if m.method == "cuped"]
    lin = [m.name for m in built if m.method == "lin"]
    items = []
    if kinds & {"mean", "proportion"}:
        items.append("Means and proportions: difference between arms with the unpooled (Welch) variance.")
    if "ratio" in kinds:
        items.append("Ratio metrics (e.g. refunds per order) are ratios of per-buyer totals; their variance "
                     "comes from the delta method, because the buyer, not the order, is the randomized unit "
                     "(Deng, Knoblich and Lu 2018, KDD).")
    if one_cov:
        items.append(f"CUPED variance reduction with pre-period data (Deng, Xu, Kohavi and Walker 2013, WSDM) "
                     f"for: {_e(', '.join(one_cov))}. It removes the part of the outcome predicted by the "
                     "same buyer's behaviour before the test; the estimate stays unbiased.")
    if lin:
        items.append(f"Regression adjustment on several pre-period covariates with separate slopes per arm "
                     f"(Lin 2013, Annals of Applied Statistics) for: {_e(', '.join(lin))}.")
    seq = bool(getattr(spec, "sequential", False))
    if seq:
        tuned = (f"the planned {spec.planned_units:,} units" if spec.planned_units else "the units analysed")
        items.append(
            "This test is read while it runs, so every interval and p-value is <b>always valid</b>: a "
            "confidence sequence that holds at every look at once, not only at a planned end (Robbins 1970; "
            "Howard, Ramdas, McAuliffe and Sekhon 2021, Annals of Statistics; in the asymptotic form of "
            "Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas 2024, Annals of Statistics, so it applies to the "
            "same estimates as above, CUPED and ratios included). Each estimate's interval is the normal-mixture "
            "boundary: estimate &plusmn; sqrt(V (V + &tau;&sup2;) / &tau;&sup2; &times; (log((V + &tau;&sup2;) / V) "
            "+ 2 log(1/&alpha;))), with V its variance; the p-value is the mixture sequential probability ratio "
            f"test's, 1/&Lambda; (Johari, Koomen, Pekelis and Walsh 2017, KDD). The mixture &tau;&sup2; is fixed "
            f"before the data are seen, tuned so the interval is narrowest at {_e(tuned)}. The relative lift's "
            "interval is Fieller's construction on the same boundary.")
        if spec.date:
            items.append(
                f"Looks: one a day (column <code>{_e(spec.date)}</code>), each on all buyers exposed so far. The "
                "verdict reads the latest look's always-valid interval and p-value; they agree (the interval "
                "excludes zero exactly when the p-value is below alpha) and stay valid however often the test is "
                "looked at, so it may stop as soon as the primary metric's interval excludes zero. Not the "
                "intersection of all looks' intervals: when the effect changes over time (a novelty effect, "
                "outcomes still accruing), the latest interval still covers today's average effect "
                "(Waudby-Smith et al. 2024), an intersection of past looks need not. They are wider than "
                "fixed-horizon (Student t) intervals, which are shown only for comparison on the daily chart and "
                "kept in the notebook.")
    else:
        items.append("Confidence intervals and two-sided p-values use Student's t with Welch-Satterthwaite "
                     "degrees of freedom; relative lifts ((treatment - control) / |control|, i.e. treatment / "
                     "control - 1 for a positive control value) get Fieller's interval (Fieller 1954), which "
                     "excludes zero exactly when the absolute effect's interval does, and which is unbounded (n/a) "
                     "when control's value cannot be told apart from zero.")
    if spec.correction:
        ref = ("Holm 1979: controls the chance of any false positive" if spec.correction == "holm"
               else "Benjamini and Hochberg 1995: controls the expected share of false positives")
        items.append(f"Multiple testing: p-values are adjusted across every metric x arm comparison ({ref}); "
                     "decisions use the adjusted p-values.")
    if any(g.margin is not None for g in spec.guardrails):
        guard_rows = ([r for r in result.rows if r["metric"] in {g.name for g in spec.guardrails}]
                      if result is not None else [])
        size = (" A margin is a share of the size of the control value, so for a negative control value (a net "
                "amount) it allows that share of its absolute value; a guardrail whose control value cannot be "
                "told apart from zero has no relative margin to check and stays unclear."
                if any(change_scale(r) in (RELATIVE_TO_SIZE, ABSOLUTE) for r in guard_rows) else "")
        items.append("Guardrails with a margin are non-inferiority tests: a guardrail holds when the bad-side "
                     f"bound of its {1 - spec.alpha:.0%} interval is within the margin (a one-sided test at "
                     f"{spec.alpha / 2:g}); it is breached when the whole interval is beyond the margin.{size}")
    items.append(f"Sample ratio mismatch: chi-square goodness-of-fit test of units per arm against the planned "
                 f"split, alarm at p &lt; {SRM_ALARM:g} (Fabijan et al. 2019, KDD). Pre-period balance: "
                 "standardized mean differences and Welch tests per column, and a joint chi-square test of all "
                 f"columns (alarm at p &lt; {BALANCE_ALARM:g}).")
    if getattr(spec, "unit", None):
        items.append(f"Unit integrity: every {_e(spec.unit)} must have one row in one arm; units in several arms "
                     f"(an assignment leak) or with several rows are counted, and more than {LEAK_ALARM:.0%} "
                     f"leaked or {DUPLICATE_ALARM:.0%} duplicated units make the readout Invalid. Their rows are "
                     "analysed as they are.")
    if spec.mde and seq:
        items.append(f"Days still needed: the units at which the always-valid interval would detect a "
                     f"{spec.mde:.1%} change with {spec.power:.0%} power, i.e. its half-width plus "
                     f"z<sub>{spec.power:.0%}</sub> standard errors equals the change, with the variance scaling as "
                     "1 / units from what is observed so far and the same mixture &tau;&sup2; (found by "
                     "bisection), at the average daily accrual so far. Always-valid intervals are wider, so this "
                     "is more than a fixed-horizon power calculation asks for.")
    elif spec.mde:
        items.append(f"Days still needed: the units to detect a {spec.mde:.1%} change with {spec.power:.0%} "
                     "power (two-sided two-sample t-test) given the variance observed so far, at the average "
                     "daily accrual so far.")
    if spec.segments:
        items.append("Segments: the primary metric analysed within each segment value; p-values adjusted across "
                     "segments; heterogeneity by Cochran's Q (Cochran 1954) with I&sup2; (Higgins and Thompson "
                     "2002)." + (" Segment intervals are fixed-horizon intervals at this look, and the all-units "
                                 "band behind them too." if seq else ""))
    drops = [m.name for m in spec.metrics if m.dropna]
    if drops:
        alpha_txt = f"{spec.alpha:g}"
        items.append(f"Buyers with a missing value are left out of: {_e(', '.join(drops))} (counted under "
                     "Health checks). Because leaving buyers out is only harmless when the change does not affect "
                     "who has a value, the share of buyers with a value is compared between each treatment arm "
                     "and control (two-proportion z-test); when it differs at p &lt; "
                     f"{alpha_txt} (the readout's own significance level: a caution on one metric, not the 0.001 "
                     "alarm that invalidates a whole readout), the metric is flagged as measured on a different mix "
                     "of buyers and the verdict lists it as a caution.")

    defs = []
    for m, metric in zip(spec.metrics, built):
        covs = ", ".join(str(c) for c in metric.covariates) or "&ndash;"   # a ratio's (num, den) pair as num / den
        role = ("primary" if m.primary else
                (f"guardrail (margin {m.margin:.1%})" if m.margin is not None else "guardrail")
                if m.guardrail else "secondary")
        defs.append(f"<tr><td><b>{_e(m.name)}</b></td><td>{_e(role)}</td><td>{_e(_TYPE_WORDS[m.type])}</td>"
                    f"<td><code>{_e(m.definition)}</code></td><td>{_e(covs) if m.covariates else covs}</td>"
                    f"<td>{_e(m.better)}</td><td>{_e(m.description or '')}</td></tr>")
    table = ('<div class="abkit-table-wrap"><table class="abkit-table abkit-left"><thead><tr><th>Metric</th>'
             "<th>Role</th><th>Type</th><th>Definition</th><th>Pre-period covariates</th><th>Better</th>"
             f"<th>Description</th></tr></thead><tbody>{''.join(defs)}</tbody></table></div>")
    glossary = [
        ("Relative lift", "(treatment - control) / |control|: +2% means the treatment's value is 2% above "
                          "control's (for a negative control value, such as an NPS below zero, 2% of its size: "
                          "+ is always up); n/a when control's value cannot be told apart from zero."),
        ("Confidence interval (CI)", f"the range of true effects compatible with the data at "
                                     f"{1 - spec.alpha:.0%} confidence."),
        ("p-value", "how surprising the difference would be if the change did nothing; below "
                    f"{spec.alpha:g} counts as significant."),
        ("CUPED", "a variance reduction that uses each buyer's behaviour before the test; same answer, "
                  "narrower intervals."),
        ("Guardrail", "a metric that must not get worse (beyond its margin) for the change to ship."),
        ("Sample ratio mismatch", "the arms did not get the planned share of units: a sign of broken "
                                  "assignment or logging."),
        ("MDE", "minimum detectable effect: the smallest change the test is planned to detect reliably."),
    ]
    if seq:
        glossary.insert(2, ("Always-valid interval", "a confidence interval that stays correct however often the "
                                                     "results are looked at, so the test may stop as soon as it "
                                                     "excludes zero; wider than a fixed-horizon one."))
    gl = "".join(f"<dt>{k}</dt><dd>{_e(v)}</dd>" for k, v in glossary)
    from .. import __version__

    src = Path(spec.source).name if spec.source else "(none)"
    n_units = f"{sum(result.srm.observed):,} units, " if result is not None else ""
    footer = (f'<p class="abkit-footer">Generated by abkit {_e(__version__)} on '
              f"{_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} from spec {_e(src)} and data "
              f"{_e(spec.data_label)} ({n_units}alpha {spec.alpha:g}). The executed notebook with all code "
              "is readout.ipynb next to this page.</p>")
    return ('<section class="abkit-section abkit-method"><h2>Methodology</h2><ul>' +
            "".join(f"<li>{i}</li>" for i in items) + "</ul><h3>Metric definitions</h3>" + table +
            f'<h3>Glossary</h3><dl class="abkit-glossary">{gl}</dl></section>' + footer)


# --------------------------------------------------------------------------- summary for the runner
def summary(spec, result: ExperimentResult, verdicts: Sequence[Verdict]) -> dict:
    """Plain JSON data the runner reads back from the executed notebook (portfolio page)."""
    arms = []
    kind = getattr(result.metric(spec.primary.name), "kind", None)
    for v in verdicts:
        row = result.row(spec.primary.name, v.variant)
        arms.append({
            "variant": str(v.variant), "label": v.display_label, "headline": v.headline, "colour": v.colour,
            "rel_effect": _finite(row["rel_effect"]), "rel_ci_lower": _finite(row["rel_ci_lower"]),
            "rel_ci_upper": _finite(row["rel_ci_upper"]), "p_value": _finite(result.decision_p(row)),
            "p_label": p_label(result),
        })
        text = _portfolio_change(row, kind, result)
        if text:   # an NPS (points), a negative or near-zero control value: the words, not a bare percentage
            arms[-1]["text"] = text
    return {"name": spec.name, "kind": "ab", "primary": spec.primary.name, "better": spec.primary.better,
            "alpha": spec.alpha, "srm_mismatch": bool(result.srm.mismatch), "arms": arms}


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
        return (f"{format_pct(row['rel_effect'], 2)} of |control| [{format_pct(row['rel_ci_lower'])}, "
                f"{format_pct(row['rel_ci_upper'])}] {p}")
    return None
