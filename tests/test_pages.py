"""The pages' HTML comes from Jinja2 templates (templates/html/pages), autoescaped and neutralised."""
from __future__ import annotations

import shutil
import sys
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from markupsafe import Markup

from abkit.readout.pages import TEMPLATES_ENV, neutral, render_page
from abkit.readout.templates import templates_dir

ABKIT = Path(sys.executable).with_name("abkit")


def test_every_value_is_escaped_and_bidi_controls_are_neutralised():
    html = render_page("section_error.html.j2", title="<script>alert(1)</script>", error_type="DataError",
                       error="col \u202eexe.gnp & \x1b[31mred")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\u202e" not in html and "&lt;U+202E&gt;exe.gnp &amp;" in html
    assert "\x1b" not in html and "&lt;U+001B&gt;[31mred" in html
    assert isinstance(html, Markup)
    assert neutral(Markup("<b>\u202e</b>")) == Markup("<b>\u202e</b>")          # rendered markup passes
    assert neutral("line one\nline two\ttab") == "line one\nline two\ttab"


def test_an_analysts_template_edit_changes_the_page_with_no_python_change(tmp_path, monkeypatch):
    mine = tmp_path / "my_templates"
    shutil.copytree(templates_dir(), mine)
    page = mine / "html" / "pages" / "data_snapshot.html.j2"
    page.write_text(page.read_text(encoding="utf-8").replace("Computed from one snapshot of the data",
                                                             "Source signed off by Returns analytics"),
                    encoding="utf-8")
    monkeypatch.setenv(TEMPLATES_ENV, str(mine))
    assert "Source signed off by Returns analytics: x.parquet" in render_page("data_snapshot.html.j2",
                                                                             description="x.parquet")
    # and through `abkit readout --templates DIR`, in the kernel
    rng = np.random.default_rng(1)
    n = 2000
    treat = rng.random(n) < 0.5
    pd.DataFrame({"variant": np.where(treat, "treatment", "control"), "orders": rng.poisson(2, n) + 1,
                  "refunds": rng.binomial(1, 0.1, n)}).to_parquet(tmp_path / "d.parquet")
    spec = tmp_path / "emails.yaml"
    spec.write_text(yaml.safe_dump({"name": "E-mails", "data": "d.parquet", "metrics": [
        {"name": "refund_rate", "type": "ratio", "numerator": "refunds", "denominator": "orders",
         "primary": True}]}), encoding="utf-8")
    done = subprocess.run([str(ABKIT), "readout", str(spec), "--out", str(tmp_path / "out"), "--templates",
                           str(mine), "--no-progress"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "out" / "emails" / "readout.html").read_text(encoding="utf-8")
    assert "Source signed off by Returns analytics" in html
    assert "Computed from one snapshot of the data" not in html
