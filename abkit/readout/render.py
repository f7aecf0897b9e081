"""HTML pieces of a readout: header, verdict, SRM check, metric table, chart, methodology.

Each function takes abkit objects (an :class:`abkit.spec.ExperimentSpec`,
an :class:`abkit.ExperimentResult`, the verdicts of
:func:`abkit.verdict.decide`) and returns an HTML string in which every
user-supplied string (experiment and metric names, descriptions, arm labels)
is escaped with :func:`html.escape`. The readout notebook
(``abkit/templates/ab_readout.ipynb``) is a sequence of short calls to
these functions, so what the page shows is testable without a kernel.
"""
from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..results import ExperimentResult, format_number, format_p, format_pct, results_table_html
from ..stats.checks import SRM_ALARM
from ..verdict import COLOURS, Verdict

__all__ = [
    "configure_matplotlib", "header_html", "verdict_html", "srm_html", "metrics_html", "chart_html", "figure_data_uri",
    "chart_alt", "methodology_html", "summary", "portfolio_html", "page_css", "decision_rule_text",
]

CSS_PATH = Path(__file__).resolve().parent.parent / "templates" / "html" / "abkit" / "abkit.css"
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
       "form-action 'none'")

_CORRECTION_WORDS = {"holm": "Holm", "bh": "Benjamini-Hochberg"}
_TYPE_WORDS = {"mean": "mean", "proportion": "proportion", "ratio": "ratio"}


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


# --------------------------------------------------------------------------- matplotlib
def configure_matplotlib(dpi: int = 120) -> None:
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


def decision_rule_text(spec) -> str:
    """The decision rule of :func:`abkit.verdict.decide`, in words, for this spec."""
    sig = f"p < {spec.alpha:g}"
    if spec.correction:
        sig += f" after {_CORRECTION_WORDS[spec.correction]} adjustment across all metrics and arms"
    guards = ", ".join(g.name for g in spec.guardrails)
    guard_txt = f" and no guardrail ({guards}) got significantly worse" if guards else ""
    worse_txt = f" or a guardrail ({guards})" if guards else ""
    p = spec.primary
    return (f"Ship an arm if {p.name} moved in the good direction ({p.better} is better) with {sig}"
            f"{guard_txt}. Do not ship if {p.name}{worse_txt} got significantly worse. Invalid if the "
            f"sample-ratio check fails (p < {SRM_ALARM:g}). Otherwise inconclusive.")


def header_html(spec) -> str:
    """Title block: name, owner, dates, arms, primary metric, decision rule, hypothesis, description."""
    rows: list[tuple[str, str]] = []
    if spec.owner:
        rows.append(("Owner", _e(spec.owner)))
    dates = _dates(spec)
    if dates:
        rows.append(("Dates", _e(dates)))
    alloc = spec.planned_allocation
    if isinstance(alloc, dict):
        total = sum(alloc.values())
        arms = ", ".join(f"{_e(a)} {v / total:.0%}" for a, v in alloc.items())
        rows.append(("Arms (planned split)", arms))
    else:
        rows.append(("Control arm", _e(spec.control)))
    rows.append(("Primary metric", _e(_metric_line(spec.primary))))
    if spec.guardrails:
        rows.append(("Guardrails", "<br>".join(_e(_metric_line(g)) for g in spec.guardrails)))
    rows.append(("Decision rule", _e(decision_rule_text(spec))))
    meta = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    parts = [
        '<header class="abkit-header">',
        '<div class="abkit-kicker">A/B test readout</div>',
        f"<h1>{_e(spec.name)}</h1>",
        f'<dl class="abkit-meta">{meta}</dl>',
    ]
    if spec.hypothesis and spec.hypothesis.strip():
        parts.append(f'<div class="abkit-note"><b>Hypothesis.</b> {_text_block(spec.hypothesis)}</div>')
    if spec.description and spec.description.strip():
        parts.append(f'<div class="abkit-description"><b>What changed.</b> {_text_block(spec.description)}</div>')
    parts.append("</header>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- verdict
def verdict_html(verdicts: Sequence[Verdict], result: ExperimentResult | None = None) -> str:
    """The decision, first: one card per treatment arm with its label, headline and reasons."""
    control = f" vs {_e(result.control)}" if result is not None else ""
    cards = []
    for v in verdicts:
        colour = COLOURS.get(v.label, "#57606a")
        reasons = "".join(f"<li>{_e(r)}</li>" for r in v.reasons)
        cards.append(
            f'<div class="abkit-verdict" style="border-left-color:{colour}">'
            f'<div class="abkit-verdict-top"><span class="abkit-label" style="background:{colour}">'
            f'{_e(v.label)}</span><span class="abkit-arm">{_e(v.variant)}{control}</span></div>'
            f'<p class="abkit-headline">{_e(v.headline)}</p>'
            f'<ul class="abkit-reasons">{reasons}</ul></div>'
        )
    if not cards:
        cards.append('<p class="abkit-muted">No treatment arm to decide on.</p>')
    return '<section class="abkit-section"><h2>Verdict</h2><div class="abkit-verdicts">' + "".join(cards) + \
        "</div></section>"


# --------------------------------------------------------------------------- SRM
def srm_html(result: ExperimentResult) -> str:
    """The sample-ratio-mismatch check: a loud red banner when it fails, a quiet note when it passes."""
    srm = result.srm
    rows = "".join(
        f"<tr><td>{_e(a)}</td><td>{o:,}</td><td>{s:.2%}</td><td>{e:.2%}</td></tr>"
        for a, o, s, e in zip(srm.arms, srm.observed, srm.observed_share, srm.expected_share)
    )
    table = ('<div class="abkit-table-wrap"><table class="abkit-table abkit-srm"><thead><tr><th>Arm</th>'
             "<th>Units</th><th>Observed share</th><th>Planned share</th></tr></thead>"
             f"<tbody>{rows}</tbody></table></div>")
    stat = f"chi-square = {format_number(srm.chi2, 3)} on {srm.df} df, p = {srm.p_value:.3g}"
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
    extra = ""
    if result.missing_variant:
        extra = f'<p class="abkit-muted">{result.missing_variant:,} rows without an arm were left out.</p>'
    return f'<section class="abkit-section"><h2>Health check: sample ratio</h2>{banner}{table}{extra}</section>'


# --------------------------------------------------------------------------- metrics
def metrics_html(result: ExperimentResult) -> str:
    """The metric table (``result._repr_html_()``) with a legend."""
    sig = f"p &lt; {result.alpha:g}"
    if result.correction:
        sig += f" after {_CORRECTION_WORDS.get(result.correction, _e(result.correction))} adjustment"
    legend = (f'<p class="abkit-muted">One row per metric and arm. Relative lift in '
              f'<span style="color:#1a7f37;font-weight:600">green</span> = significantly better, '
              f'<span style="color:#cf222e;font-weight:600">red</span> = significantly worse ({sig}), '
              "grey = no significant difference. Values are per buyer (means) or per unit of the "
              "denominator (ratios); CI = confidence interval.</p>")
    dropped = [f"{_e(str(m))}: {d:,} units without a value left out"
               for m, d in result.dropped_units().items() if d]
    note = f'<p class="abkit-muted">{"; ".join(dropped)}.</p>' if dropped else ""
    return ('<section class="abkit-section"><h2>Metrics</h2>' + legend +
            f'<div class="abkit-table-wrap">{results_table_html(result, notes=False)}</div>{note}</section>')


def figure_data_uri(fig, dpi: int | None = None) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI (nothing to fetch, nothing to lose)."""
    import base64
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi or fig.dpi, bbox_inches="tight", facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def chart_html(result: ExperimentResult, fig) -> str:
    """The lift chart (``result.plot().figure``) with its heading and caption, as one printable block."""
    return ('<section class="abkit-section abkit-chart"><h2>Relative lift with '
            f"{1 - result.alpha:.0%} confidence intervals</h2>"
            f'<p class="abkit-muted">Dots are the relative change of each arm vs {_e(result.control)}; bars '
            "their confidence intervals; green = significantly better, red = significantly worse, grey = "
            "no significant change. The bars are not adjusted for multiple testing.</p>"
            f'<figure class="abkit-figure"><img src="{figure_data_uri(fig)}" alt="{_e(chart_alt(result))}">'
            "</figure></section>")


def chart_alt(result: ExperimentResult) -> str:
    """Text alternative of the lift chart (for screen readers and text-only mail clients)."""
    several = len(result.treatments) > 1
    parts = []
    for r in result.rows:
        label = f"{r['metric']} ({r['variant']})" if several else str(r["metric"])
        parts.append(f"{label}: {format_pct(r['rel_effect'], 1)} [{format_pct(r['rel_ci_lower'], 1)}, "
                     f"{format_pct(r['rel_ci_upper'], 1)}]")
    return (f"Chart of the relative lift of each metric vs {result.control} with {1 - result.alpha:.0%} "
            "confidence intervals: " + "; ".join(parts))


# --------------------------------------------------------------------------- methodology
def methodology_html(spec, result: ExperimentResult | None = None) -> str:
    """How the numbers were computed, with references, plus the metric definitions."""
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
    items.append("Confidence intervals and two-sided p-values use Student's t with Welch-Satterthwaite "
                 "degrees of freedom; relative lifts (treatment / control - 1) get their intervals from the "
                 "delta method.")
    if spec.correction:
        ref = ("Holm 1979: controls the chance of any false positive" if spec.correction == "holm"
               else "Benjamini and Hochberg 1995: controls the expected share of false positives")
        items.append(f"Multiple testing: p-values are adjusted across every metric x arm comparison ({ref}); "
                     "decisions use the adjusted p-values.")
    items.append(f"Sample ratio mismatch: chi-square goodness-of-fit test of units per arm against the planned "
                 f"split, alarm at p &lt; {SRM_ALARM:g} (Fabijan et al. 2019, KDD).")
    drops = [m.name for m in spec.metrics if m.dropna]
    if drops:
        items.append(f"Buyers with a missing value are left out of: {_e(', '.join(drops))} (counted in the "
                     "metric table).")
    items.append(f"Decision rule: {_e(decision_rule_text(spec))}")

    defs = []
    for m, metric in zip(spec.metrics, built):
        covs = ", ".join(str(c) for c in metric.covariates) or "&ndash;"   # a ratio's (num, den) pair as num / den
        role = "primary" if m.primary else "guardrail" if m.guardrail else "secondary"
        defs.append(f"<tr><td><b>{_e(m.name)}</b></td><td>{_e(role)}</td><td>{_e(_TYPE_WORDS[m.type])}</td>"
                    f"<td><code>{_e(m.definition)}</code></td><td>{_e(covs) if m.covariates else covs}</td>"
                    f"<td>{_e(m.better)}</td><td>{_e(m.description or '')}</td></tr>")
    table = ('<div class="abkit-table-wrap"><table class="abkit-table abkit-left"><thead><tr><th>Metric</th>'
             "<th>Role</th><th>Type</th><th>Definition</th><th>Pre-period covariates</th><th>Better</th>"
             f"<th>Description</th></tr></thead><tbody>{''.join(defs)}</tbody></table></div>")
    from .. import __version__

    src = Path(spec.source).name if spec.source else "(none)"
    n_units = f"{sum(result.srm.observed):,} units, " if result is not None else ""
    footer = (f'<p class="abkit-footer">Generated by abkit {_e(__version__)} on '
              f"{_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} from spec {_e(src)} and data "
              f"{_e(spec.data_path.name)} ({n_units}alpha {spec.alpha:g}). The executed notebook with all code "
              "is readout.ipynb next to this page.</p>")
    return ('<section class="abkit-section abkit-method"><h2>Methodology</h2><ul>' +
            "".join(f"<li>{i}</li>" for i in items) + "</ul><h3>Metric definitions</h3>" + table +
            "</section>" + footer)


# --------------------------------------------------------------------------- summary for the runner
def summary(spec, result: ExperimentResult, verdicts: Sequence[Verdict]) -> dict:
    """Plain JSON data the runner reads back from the executed notebook (portfolio page)."""
    arms = []
    for v in verdicts:
        row = result.row(spec.primary.name, v.variant)
        arms.append({
            "variant": str(v.variant), "label": v.label, "headline": v.headline, "colour": v.colour,
            "rel_effect": _finite(row["rel_effect"]), "rel_ci_lower": _finite(row["rel_ci_lower"]),
            "rel_ci_upper": _finite(row["rel_ci_upper"]), "p_value": _finite(result.decision_p(row)),
        })
    return {"name": spec.name, "primary": spec.primary.name, "better": spec.primary.better,
            "alpha": spec.alpha, "srm_mismatch": bool(result.srm.mismatch), "arms": arms}


# --------------------------------------------------------------------------- portfolio page
def page_css() -> str:
    """The house style sheet shared by readouts and the portfolio page."""
    return CSS_PATH.read_text(encoding="utf-8")


def portfolio_html(entries: Iterable[dict], title: str = "Experiment readouts") -> str:
    """A self-contained index page: one row per experiment.

    Each entry: ``name``, ``href`` (relative link to readout.html or
    error.txt), ``ok`` (bool), ``arms`` (the ``summary()["arms"]`` list),
    ``primary``, ``owner``, ``error``.
    """
    rows = []
    for e in entries:
        name = f'<a href="{_e(e["href"])}">{_e(e["name"])}</a>' if e.get("href") else _e(e["name"])
        owner = f'<br><small>{_e(e["owner"])}</small>' if e.get("owner") else ""
        if not e.get("ok"):
            err = _e(e.get("error") or "unknown error")
            status = (f'<span class="abkit-status-failed">FAILED</span> &ndash; <a href="{_e(e["href"])}">'
                      f"error.txt</a><br><small>{err}</small>")
            rows.append(f"<tr><td>{name}{owner}</td><td>{status}</td><td>&ndash;</td></tr>")
            continue
        verdicts, lifts = [], []
        for a in e.get("arms", ()):
            verdicts.append(f'<span class="abkit-pill" style="background:{_e(a["colour"])}">{_e(a["label"])}</span>'
                            f"{_e(a['variant'])}")
            ci = ""
            if a.get("rel_ci_lower") is not None and a.get("rel_ci_upper") is not None:
                ci = f" <small>[{format_pct(a['rel_ci_lower'])}, {format_pct(a['rel_ci_upper'])}]</small>"
            rel = format_pct(a["rel_effect"], 2) if a.get("rel_effect") is not None else "n/a"
            p = f" <small>p {format_p(a['p_value'])}</small>" if a.get("p_value") is not None else ""
            lifts.append(f"{_e(a['variant'])}: <b>{rel}</b>{ci}{p}")
        primary = f'<small>{_e(e.get("primary", ""))}</small><br>' if e.get("primary") else ""
        rows.append(f"<tr><td>{name}{owner}</td><td>{'<br>'.join(verdicts) or '&ndash;'}</td>"
                    f"<td>{primary}{'<br>'.join(lifts) or '&ndash;'}</td></tr>")
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        f"<title>{_e(title)}</title>\n"
        '<link rel="icon" href="data:,">\n'
        f'<style type="text/css">\n{page_css()}</style>\n</head>\n'
        '<body class="abkit-body">\n<main class="abkit-page">\n'
        f'<div class="abkit-kicker">abkit</div><h1>{_e(title)}</h1>\n'
        f'<p class="abkit-muted">Generated {now}. Click an experiment for its full readout.</p>\n'
        '<div class="abkit-table-wrap"><table class="abkit-table abkit-left"><thead><tr><th>Experiment</th>'
        "<th>Verdict per arm</th><th>Primary metric: relative lift [CI]</th></tr></thead><tbody>\n"
        + "\n".join(rows) +
        "\n</tbody></table></div>\n</main>\n</body>\n</html>\n"
    )

