"""The pages' HTML comes from Jinja2 templates (templates/html/pages), autoescaped and neutralised."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from markupsafe import Markup

from abkit.readout.pages import TEMPLATES_ENV, neutral, render_page
from abkit.readout.templates import templates_dir

ABKIT = Path(sys.executable).with_name("abkit")


def test_every_value_is_escaped_and_bidi_controls_are_neutralised():
    html = render_page(
        "section_error.html.j2",
        title="<script>alert(1)</script>",
        error_type="DataError",
        error="col \u202eexe.gnp & \x1b[31mred",
    )
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\u202e" not in html and "&lt;U+202E&gt;exe.gnp &amp;" in html
    assert "\x1b" not in html and "&lt;U+001B&gt;[31mred" in html
    assert isinstance(html, Markup)
    assert neutral(Markup("<b>\u202e</b>")) == Markup("<b>\u202e</b>")  # rendered markup passes
    assert neutral("line one\nline two\ttab") == "line one\nline two\ttab"


def test_an_analysts_template_edit_changes_the_page_with_no_python_change(tmp_path, monkeypatch):
    mine = tmp_path / "my_templates"
    shutil.copytree(templates_dir(), mine)
    page = mine / "html" / "pages" / "data_snapshot.html.j2"
    page.write_text(
        page.read_text(encoding="utf-8").replace(
            "Computed from one snapshot of the data", "Source signed off by Returns analytics"
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv(TEMPLATES_ENV, str(mine))
    assert "Source signed off by Returns analytics: x.parquet" in render_page(
        "data_snapshot.html.j2", description="x.parquet"
    )
    # and through `abkit readout --templates DIR`, in the kernel
    rng = np.random.default_rng(1)
    n = 2000
    treat = rng.random(n) < 0.5
    pd.DataFrame(
        {
            "variant": np.where(treat, "treatment", "control"),
            "orders": rng.poisson(2, n) + 1,
            "refunds": rng.binomial(1, 0.1, n),
        }
    ).to_parquet(tmp_path / "d.parquet")
    spec = tmp_path / "emails.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "E-mails",
                "data": "d.parquet",
                "metrics": [
                    {
                        "name": "refund_rate",
                        "type": "ratio",
                        "numerator": "refunds",
                        "denominator": "orders",
                        "primary": True,
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [str(ABKIT), "readout", str(spec), "--out", str(tmp_path / "out"), "--templates", str(mine), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "out" / "emails" / "readout.html").read_text(encoding="utf-8")
    assert "Source signed off by Returns analytics" in html
    assert "Computed from one snapshot of the data" not in html


# --------------------------------------------------------------------------- every section of a real readout
RLO = "\u202e"  # right-to-left override: "evil\u202egnp.exe" reads "evilexe.png"
TEMPLATE_TEXT = "{{ 7 * 7 }} {% if true %}yes{% endif %} {# note #}"
LONG_VALUE = "Nordrhein-Westfalen " + "and surroundings " * 17  # 300 characters


def _readout(tmp_path, name=f"Refunds {RLO}gnp.exe", arms=("control", "treatment"), segment_values=None):
    """An A/B readout computed in-process: spec, result, verdicts and the health checks, as the notebook does."""
    import abkit
    import abkit.verdict
    from abkit.readout import ab
    from abkit.spec import load_spec

    rng = np.random.default_rng(5)
    n = 3000
    treat = rng.random(n) < 0.5
    values = segment_values or ["DE", "FR", f"NL{RLO}xe"]
    pd.DataFrame(
        {
            "buyer_id": np.arange(n),
            "variant": np.where(treat, arms[1], arms[0]),
            "orders": rng.poisson(2, n) + 1,
            "refunds": rng.binomial(1, np.where(treat, 0.08, 0.1)),
            "pre_orders": rng.poisson(2, n) + 1,
            "exposure_date": (pd.Timestamp("2026-09-01") + pd.to_timedelta(rng.integers(0, 8, n), unit="D")).date,
            "market": np.array(values)[rng.integers(0, len(values), n)],
        }
    ).to_parquet(tmp_path / "d.parquet")
    raw = {
        "name": name,
        "owner": f"Team {RLO}A {TEMPLATE_TEXT}",
        "description": f"What {RLO}changed {TEMPLATE_TEXT}",
        "hypothesis": f"Because {RLO}x {TEMPLATE_TEXT}",
        "data": "d.parquet",
        "control": arms[0],
        "mde": 0.1,
        "date": "exposure_date",
        "segments": ["market"],
        "unit": "buyer_id",
        "metrics": [
            {
                "name": f"refund{RLO}_rate {{{{ x }}}}",
                "type": "ratio",
                "numerator": "refunds",
                "denominator": "orders",
                "covariate": "pre_orders",
                "better": "lower",
                "primary": True,
            }
        ],
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    spec = load_spec(path)
    data = spec.open_data()
    result = abkit.analyze(
        data, spec.build_metrics(), variant=spec.variant, control=spec.control, alpha=spec.alpha, unit=spec.unit
    )
    balance = ab.balance(spec, data)
    days, source = ab.days_elapsed(spec, data)
    size = ab.sample_size(spec, result, days, source)
    verdicts = abkit.verdict.decide(
        result, primary=spec.primary.name, mde=spec.mde, power=spec.power, days_elapsed=days, balance_p=balance.p_value
    )
    return spec, result, verdicts, balance, size, ab.dropped_units(result, spec), data


def _every_section(tmp_path, **kwargs) -> dict:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from abkit.readout import ab, render

    spec, result, verdicts, balance, size, dropped, data = _readout(tmp_path, **kwargs)
    render.configure_matplotlib()
    over_time, missing = ab.cumulative(spec, result=result)
    seg = ab.segments(spec, "market", result)
    figs = [result.plot().figure, render.plot_cumulative(over_time, spec).figure, render.plot_segments(seg).figure]
    pages = {
        "header": render.header_html(spec),
        "verdict": render.verdict_html(verdicts, result, spec),
        "details": render.details_html(spec),
        "health": render.health_html(result, balance, size, dropped),
        "srm": render.srm_html(result),
        "metrics": render.metrics_html(result, spec),
        "chart": render.chart_html(result, figs[0]),
        "cumulative": render.cumulative_html(figs[1], over_time, spec),
        "segments": render.segments_section_html([render.segments_html(seg, figs[2], spec)], spec),
        "methodology": render.methodology_html(spec, result),
    }
    plt.close("all")
    return {"pages": pages, "spec": spec, "result": result, "seg": seg, "figs": figs}


def visible(markup: str) -> str:
    """The text a reader sees: tags dropped, entities resolved, runs of white space as one space."""
    import html
    import re

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def test_bidi_overrides_and_template_syntax_in_user_text_print_literally_in_every_section(tmp_path):
    """A right-to-left override in a name, an owner, a metric, a segment value... is shown as a visible mark in
    every section and every alt text (it would display the text reversed), and ``{{ }}`` / ``{% %}`` in user text
    are printed as written (data is never a template)."""
    import base64
    import re

    out = _every_section(tmp_path)
    for section, page in out["pages"].items():
        assert RLO not in page, section
        for alt in re.findall(r'alt="([^"]*)"', page):
            assert RLO not in alt and "&lt;U+202E&gt;" in alt, section
    text = {k: visible(v) for k, v in out["pages"].items()}
    assert "Refunds <U+202E>gnp.exe" in text["header"] and "Team <U+202E>A" in text["header"]
    assert "NL<U+202E>xe" in text["segments"] and "refund<U+202E>_rate" in text["metrics"]
    for section in ("header", "details"):
        assert TEMPLATE_TEXT in text[section] and "49" not in text[section], section
    assert "refund<U+202E>_rate {{ x }}" in text["methodology"]
    # and the charts' labels: matplotlib draws the mark, not a reversal
    labels = [t.get_text() for t in out["figs"][2].axes[0].get_yticklabels()]
    assert any("NL<U+202E>xe" in t for t in labels) and not any(RLO in t for t in labels)
    texts = [
        t.get_text()
        for fig in out["figs"]
        for ax in fig.axes
        for t in (
            *ax.get_yticklabels(),
            ax.title,
            ax.xaxis.label,
            ax.yaxis.label,
            *(ax.get_legend().get_texts() if ax.get_legend() else ()),
        )
    ]
    assert any("refund<U+202E>_rate" in t for t in texts) and not any(RLO in t for t in texts)
    svg = [
        base64.b64decode(src.split(",", 1)[1])
        for src in re.findall(r'src="(data:image/svg\+xml;base64,[^"]+)"', "".join(out["pages"].values()))
    ]
    assert svg and all(b"<script" not in s and b"http" not in s.replace(b"http://www.w3.org/", b"") for s in svg)


def test_a_template_edit_changes_the_verdict_with_no_python_change(tmp_path, monkeypatch):
    from abkit.readout import render

    spec, result, verdicts, *_ = _readout(tmp_path, name="E-mails")
    before = render.verdict_html(verdicts, result, spec)
    assert "Decision rule." in before and "Signed off by" not in before
    mine = tmp_path / "my_templates"
    shutil.copytree(templates_dir(), mine)
    page = mine / "html" / "pages" / "verdict.html.j2"
    page.write_text(
        page.read_text(encoding="utf-8").replace(
            '<p class="abkit-headline">{{ card.headline }}</p>',
            '<p class="abkit-headline">{{ card.headline }}</p>'
            '<p class="abkit-muted">Signed off by Returns analytics.</p>',
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv(TEMPLATES_ENV, str(mine))
    after = render.verdict_html(verdicts, result, spec)
    assert after.count("Signed off by Returns analytics.") == len(verdicts) == 1
    assert after.replace('<p class="abkit-muted">Signed off by Returns analytics.</p>', "") == before


def test_a_300_character_segment_value_does_not_shrink_the_forest_plot(tmp_path):
    """The chart cuts long labels (the table shows them whole): the image stays as wide as the figure, instead of
    widening by the label's length and being scaled down to a thumbnail on the page."""
    import base64
    import io
    import re

    from PIL import Image

    out = _every_section(tmp_path, name="Regions", segment_values=["DE", LONG_VALUE])
    fig = out["figs"][2]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert max(len(t) for t in labels) <= 60 and any(
        t.startswith("Nordrhein-Westfalen and") and "\u2026" in t for t in labels
    )
    segment_page = out["pages"]["segments"]
    assert LONG_VALUE.strip() in visible(segment_page)  # the table: the value in full
    src = re.search(r'<div class="abkit-segment">.*?src="data:image/(png|svg\+xml);base64,([^"]+)"', segment_page, re.S)
    from abkit.readout.render import figure_data_uri

    png = Image.open(io.BytesIO(base64.b64decode(figure_data_uri(fig).split(",", 1)[1])))
    assert png.width <= 1.25 * fig.get_figwidth() * fig.dpi, png.size  # not 2,000+ pixels of label
    assert src is not None


def test_arms_whose_names_differ_only_in_whitespace_are_told_apart(tmp_path):
    """Arms "control" and "control " read "control vs control" on a page (HTML collapses white space): they are
    shown quoted with the space visible, and the health checks say so."""
    out = _every_section(tmp_path, name="Spaces", arms=("control", "control "))
    verdict = visible(out["pages"]["verdict"])
    assert "control vs control" not in verdict
    assert '"control\u2423" vs "control"' in verdict
    health = visible(out["pages"]["health"])
    assert "differ only in white space" in health and '"control\u2423"' in health
    assert '"control\u2423"' in visible(out["pages"]["chart"]) or '"control"' in visible(out["pages"]["chart"])


def test_the_browser_tab_title_neutralises_bidi_controls(tmp_path):
    import nbformat

    from abkit.readout.runner import export_html

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("x")]
    nbformat.write(nb, tmp_path / "r.ipynb")
    export_html(tmp_path / "r.ipynb", tmp_path / "r.html", title=f"Refunds {RLO}gnp.exe <b>")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    title = text[text.index("<title>") : text.index("</title>")]
    assert RLO not in title and "Refunds &lt;U+202E&gt;gnp.exe &lt;b&gt;" in title


def test_rollout_and_plan_pages_neutralise_bidi_controls_too(tmp_path):
    """The shared header, details and verdict templates and the plan's and rollout's own sections print a
    right-to-left override in a spec's strings as a visible mark."""
    import abkit.verdict
    from abkit.readout import plan, rollout
    from abkit.spec import load_spec

    root = Path(__file__).resolve().parent.parent
    pages = []
    for stem in ("refund_policy_rollout", "refund_emails_plan"):
        raw = yaml.safe_load((root / "specs" / f"{stem}.yaml").read_text(encoding="utf-8"))
        raw.update(
            name=f"Policy {RLO}gnp.exe",
            owner=f"Team {RLO}A",
            description=f"What {RLO}x",
            hypothesis=f"Why {RLO}y {TEMPLATE_TEXT}",
            data=str(root / "data" / Path(raw["data"]).name),
        )
        path = tmp_path / f"{stem}.yaml"
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        spec = load_spec(path)
        if spec.kind == "did":
            panel = rollout.load_panel(spec)
            main = rollout.Effect(
                spec.outcome.name,
                "lower",
                "log",
                -0.1,
                0.02,
                -0.14,
                -0.06,
                1e-4,
                1e-3,
                -0.095,
                -0.13,
                -0.058,
                float("nan"),
                0.05,
            )
            verdict = abkit.verdict.decide_rollout(
                spec.outcome.name,
                "lower",
                main.rel,
                main.rel_ci_lower,
                main.rel_ci_upper,
                main.p_value,
                0.5,
                alpha=0.05,
                where=f"launched {RLO}markets",
            )
            pages += [
                rollout.header_html(spec, panel),
                rollout.details_html(spec, panel),
                rollout.verdict_html(verdict, main, spec, None, panel),
            ]
        else:
            bundle = plan.make_plan(spec)
            rec = plan.recommend(spec, bundle)
            pages += [
                plan.header_html(spec),
                plan.details_html(spec, bundle),
                plan.recommendation_html(rec, spec),
                plan.methodology_html(spec),
            ]
    text = visible("".join(pages))
    assert all(RLO not in p for p in pages)
    assert text.count("Policy <U+202E>gnp.exe") == 2 and "launched <U+202E>markets" in text
    assert f"Why <U+202E>y {TEMPLATE_TEXT}" in text


def test_charts_are_svg_unless_the_png_is_lighter():
    """A line chart is embedded as SVG (vector: sharp at any zoom), sized as its PNG would be; a scatter of
    thousands of points stays PNG, which is then the lighter file."""
    import base64
    import io
    import re

    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from PIL import Image

    from abkit.readout.render import SVG_MAX_MARKS, chart_image, chart_marks, configure_matplotlib, figure_data_uri

    configure_matplotlib()
    fig, ax = plt.subplots(figsize=(8.6, 3.4))
    x = np.arange(30)
    ax.fill_between(x, x - 3, x + 3, alpha=0.2)
    ax.plot(x, x, "o-", label="treatment vs control")
    ax.legend()
    line = chart_image(fig, "a line")
    assert line["src"].startswith("data:image/svg+xml;base64,") and line["alt"] == "a line"
    svg = base64.b64decode(line["src"].split(",", 1)[1])
    assert svg.startswith(b"<svg") and b"<script" not in svg and b"<!--" not in svg
    png = Image.open(io.BytesIO(base64.b64decode(figure_data_uri(fig).split(",", 1)[1])))
    width, height = (int(v) for v in re.search(rb'width="(\d+)" height="(\d+)"', svg).groups())
    assert abs(width - png.width) <= 2 and abs(height - png.height) <= 2  # the same room on the page
    assert len(line["src"]) < len(figure_data_uri(fig))
    fig2, ax2 = plt.subplots()
    rng = np.random.default_rng(0)
    ax2.scatter(rng.random(20_000), rng.random(20_000), s=2)
    assert chart_image(fig2, "dots")["src"].startswith("data:image/png;base64,")
    # each chart is drawn once, in the format chosen from its marks before drawing
    assert chart_marks(fig) < SVG_MAX_MARKS < 20_000 <= chart_marks(fig2)
    saved = []
    for f in (fig, fig2):
        f.savefig = lambda *a, _save=f.savefig, **k: saved.append(k.get("format")) or _save(*a, **k)
        chart_image(f, "once")
    assert saved == ["svg", "png"]
    plt.close("all")


def test_chart_format_can_be_set_for_a_run(monkeypatch):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import pytest

    from abkit.readout.render import chart_image

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    monkeypatch.setenv("ABKIT_CHART_FORMAT", "png")  # e.g. for mail clients that show no SVG
    assert chart_image(fig, "a line")["src"].startswith("data:image/png;base64,")
    assert chart_image(fig, "a line", "svg")["src"].startswith("data:image/svg+xml;base64,")  # an explicit format wins
    monkeypatch.setenv("ABKIT_CHART_FORMAT", "gif")
    from abkit.errors import SpecError

    with pytest.raises(SpecError, match="ABKIT_CHART_FORMAT"):
        chart_image(fig, "a line")
    plt.close("all")
