"""End to end: `abkit readout` -> papermill notebook -> self-contained HTML.

One module-scoped run executes two experiments in parallel (a good one and
one whose data has a column of strings where a metric needs numbers); the
tests below inspect what it wrote. Each papermill run takes a few seconds.
"""
from __future__ import annotations

import ast
import html
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml

import abkit
from abkit.errors import AbkitError, SpecError
from abkit.readout import run_readouts
from abkit.readout.runner import TEMPLATE_NOTEBOOK

ROOT = Path(__file__).resolve().parent.parent

# A parameter that would break naive string templating of code.
TRICKY = 'He said "ship it",\nthen \'left\'"); import os; os.system("touch pwned")  # \\ and {braces} \u2603'
XSS = "<script>alert(1)</script>"
ODD_METRIC = 'csat <1-5> "survey" $mean$'

METRICS = [
    {"name": "refund_rate", "type": "ratio", "numerator": "refunds", "denominator": "orders",
     "covariates": ["pre_refunds", "pre_orders"], "better": "lower", "primary": True},
    {"name": "refund_amount", "type": "mean", "column": "refund_amount", "covariate": "pre_refund_amount",
     "better": "lower"},
    {"name": "time_to_refund_hours", "type": "mean", "column": "time_to_refund_hours", "dropna": True,
     "better": "lower"},
    {"name": ODD_METRIC, "type": "ratio", "numerator": "csat_sum", "denominator": "csat_responses"},
    {"name": "repeat_purchase_30d", "type": "proportion", "column": "repeat_purchase_30d"},
    {"name": "abuse_loss_per_order", "type": "ratio", "numerator": "abuse_loss", "denominator": "orders",
     "better": "lower", "guardrail": True},
]


def frame(n: int = 4000, seed: int = 7) -> pd.DataFrame:
    """Buyers; treatment halves the refund probability (a clear, significant win)."""
    rng = np.random.default_rng(seed)
    treat = rng.random(n) < 0.5
    orders = rng.poisson(2, n) + 1
    pre_orders = rng.poisson(2, n) + 1
    refunds = rng.binomial(orders, np.where(treat, 0.05, 0.10))
    responses = rng.binomial(1, 0.3, n)
    return pd.DataFrame({
        "buyer_id": np.arange(n),
        "variant": pd.Categorical(np.where(treat, "treatment", "control")),
        "orders": orders, "refunds": refunds,
        "refund_amount": refunds * rng.gamma(2.0, 15.0, n),
        "time_to_refund_hours": np.where(refunds > 0, rng.gamma(2.0, 24.0, n), np.nan),
        "csat_sum": responses * rng.integers(1, 6, n), "csat_responses": responses,
        "repeat_purchase_30d": rng.integers(0, 2, n),
        "abuse_loss": rng.gamma(0.2, 2.0, n),
        "pre_orders": pre_orders, "pre_refunds": rng.binomial(pre_orders, 0.1),
        "pre_refund_amount": rng.gamma(1.0, 10.0, n),
    })


def abkit_command() -> list[str]:
    script = Path(sys.executable).with_name("abkit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "abkit.cli"]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*abkit_command(), *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("readout")
    (base / "data").mkdir()
    (base / "specs").mkdir()
    frame().to_parquet(base / "data" / "good.parquet")
    bad = frame(seed=8)
    bad["refund_amount"] = [f"{x:.2f} EUR" for x in bad["refund_amount"]]   # strings where numbers belong
    bad.to_parquet(base / "data" / "bad.parquet")

    good_spec = {"name": f'Instant "refunds" {XSS}', "owner": "Returns team", "description": f"Refund early. {XSS}",
                 "hypothesis": TRICKY, "start": "2026-09-01", "end": "2026-09-28",
                 "data": "../data/good.parquet", "metrics": METRICS}
    bad_spec = {"name": "Broken refund amounts", "data": "../data/bad.parquet", "metrics": METRICS}
    good_path = base / "specs" / "good_exp.yaml"
    bad_path = base / "specs" / "bad_exp.yaml"
    good_path.write_text(yaml.safe_dump(good_spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    bad_path.write_text(yaml.safe_dump(bad_spec, sort_keys=False), encoding="utf-8")

    out = base / "reports"
    proc = run_cli("readout", str(good_path), str(bad_path), "--out", str(out), "--jobs", "2", cwd=base)
    return {"base": base, "out": out, "proc": proc, "good": out / "good_exp", "bad": out / "bad_exp"}


def page(run) -> str:
    return (run["good"] / "readout.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- the command
def test_exit_code_and_messages(run):
    proc = run["proc"]
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.strip().splitlines() == [str(run["good"].resolve() / "readout.html")]
    assert "FAILED Broken refund amounts" in proc.stderr
    assert "refund_amount" in proc.stderr and "error.txt" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_failure_is_isolated(run):
    good, bad = run["good"], run["bad"]
    assert (good / "readout.html").exists() and (good / "readout.ipynb").exists()
    assert not (good / "error.txt").exists()
    assert not (bad / "readout.html").exists()
    error = (bad / "error.txt").read_text(encoding="utf-8")
    assert "Broken refund amounts" in error and "refund_amount" in error and "not numeric" in error
    assert "\x1b[" not in error                                   # ANSI colours stripped
    # the partially executed notebook is kept, with the error in it
    nb = nbformat.read(bad / "readout.ipynb", as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", ()) if o.get("output_type") == "error"]
    assert errors and errors[0]["ename"] == "DataError"
    # no temporary files left behind
    assert not [p for p in run["out"].rglob(".*") if p.is_file()]


def test_index_page(run):
    index = (run["out"] / "index.html").read_text(encoding="utf-8")
    assert html.escape(f'Instant "refunds" {XSS}') in index and XSS not in index
    assert 'href="good_exp/readout.html"' in index
    assert 'href="bad_exp/error.txt"' in index and "FAILED" in index
    assert ">Ship<" in index                                      # the good arm's verdict label
    assert "refund_rate" in index and "%" in index                 # primary metric relative lift
    assert not re.search(r"<(script|link)[^>]*(src|href)\s*=\s*[\"']?\s*(https?:)?//", index)


# --------------------------------------------------------------------------- the page
def test_page_shows_every_metric_and_the_verdict(run):
    text = page(run)
    for m in METRICS:   # nbconvert re-serializes the page: text keeps <, >, & escaped, quotes become plain
        assert html.escape(m["name"], quote=False) in text, m["name"]
    assert ODD_METRIC not in text                                 # only ever escaped
    order = [text.index(s) for s in ("A/B test readout", ">Verdict<", ">Ship<", "Sample ratio check passed",
                                     "<table class=\"abkit-table\">", "data:image/png;base64,", ">Methodology<")]
    assert order == sorted(order), "sections out of order"
    assert "CUPED" in text and "Deng" in text and "Welch" in text


def test_page_hides_code(run):
    text = page(run)
    for code in ("abkit.analyze(", "render.header_html", "import abkit", "ExperimentSpec.from_dict",
                 "spec = {", "jp-InputArea", "jp-InputPrompt", "In&nbsp;[", "Out["):
        assert code not in text, code


def test_page_loads_nothing_from_the_network(run):
    text = page(run)
    assert not re.search(r"<(script|link|img|iframe|source|embed)[^>]*(src|href)\s*=\s*[\"']?\s*(https?:)?//",
                         text, re.I)
    assert "<script" not in text.lower()                            # no require.js, MathJax, widgets...
    assert not re.search(r"url\(\s*[\"']?\s*(https?:)?//", text) and "@import" not in text
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    images = re.findall(r"<img\b[^>]*>", text)
    assert images and all(re.search(r'src="data:image/png;base64,[A-Za-z0-9+/=\s]{1000,}"', i) for i in images)
    assert all("alt=" in i for i in images)


def test_user_strings_are_escaped(run):
    text = page(run)
    assert XSS not in text
    assert html.escape(XSS) in text
    title = re.search(r"<title>(.*?)</title>", text, re.S).group(1)
    assert "<" not in title and html.unescape(title) == f'Instant "refunds" {XSS}'


def test_parameters_arrive_as_data(run):
    """The spec reaches the kernel as a literal: quotes, newlines and code-like text survive unchanged."""
    nb = nbformat.read(run["good"] / "readout.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    tree = ast.parse(injected[0].source)
    assert all(isinstance(node, ast.Assign) for node in tree.body)   # assignments of literals only
    spec = ast.literal_eval(tree.body[0].value)
    assert spec["hypothesis"] == TRICKY
    assert spec["name"] == f'Instant "refunds" {XSS}'
    # and the kernel saw the same string: the header it rendered holds it, escaped
    outputs = "".join(o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", ()))
    assert html.escape(TRICKY) in outputs
    assert html.escape(TRICKY, quote=False) in page(run)
    assert not (run["base"] / "pwned").exists() and not (run["good"] / "pwned").exists()


def test_notebook_keeps_the_code_for_auditors(run):
    nb = nbformat.read(run["good"] / "readout.ipynb", as_version=4)
    source = "\n".join(c.source for c in nb.cells)
    assert "abkit.analyze(" in source and "abkit.verdict.decide(" in source
    template = nbformat.read(TEMPLATE_NOTEBOOK, as_version=4)
    params = [c for c in template.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    code = [ln for ln in params[0].source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert code == ["spec = {}"]


# --------------------------------------------------------------------------- failures before running
def test_invalid_spec_exits_2_with_one_clean_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata: nowhere.parquet\nmetrics: []\nalpah: 0.1\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = run_cli("readout", str(bad), "--out", str(out))
    assert proc.returncode == 2
    assert proc.stderr.startswith("abkit: error: ")
    assert "Traceback" not in proc.stderr
    assert "alpah" in proc.stderr and "Did you mean 'alpha'?" in proc.stderr
    assert not out.exists()                                           # nothing ran, nothing written


def test_single_problem_is_one_line(tmp_path):
    frame(50).to_parquet(tmp_path / "d.parquet")
    spec = tmp_path / "one.yaml"
    spec.write_text(yaml.safe_dump({"name": "x", "data": "d.parquet", "alpha": 2, "metrics": METRICS}),
                    encoding="utf-8")
    proc = run_cli("validate", str(spec))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "alpha:" in proc.stderr


def test_version_and_usage():
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"abkit {abkit.__version__}"
    proc = run_cli("readout", "x.yaml", "--jobs", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_run_readouts_rejects_bad_input(tmp_path):
    with pytest.raises(AbkitError, match="jobs"):
        run_readouts([tmp_path / "x.yaml"], tmp_path, jobs=0)
    with pytest.raises(SpecError, match="spec file not found"):
        run_readouts([tmp_path / "x.yaml"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- the sample specs (make demo)
SAMPLES = [ROOT / "data" / "aftersales_ab.parquet", ROOT / "data" / "aftersales_ab_3arm_srm.parquet"]


@pytest.mark.skipif(not all(p.exists() for p in SAMPLES), reason="sample data not generated yet (make data)")
def test_sample_specs(tmp_path):
    outcomes = run_readouts(sorted((ROOT / "specs").glob("*.yaml")), tmp_path, jobs=2, progress=False)
    by_slug = {o.slug: o for o in outcomes}
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    chatbot = by_slug["chatbot_3arm"]
    assert [v["label"] for v in chatbot.verdicts] == ["Invalid", "Invalid"]
    text = chatbot.html.read_text(encoding="utf-8")
    assert "Sample ratio mismatch: do not trust" in text
    assert {v["label"] for v in by_slug["instant_refunds"].verdicts} <= {"Ship", "Do not ship", "Inconclusive"}


def test_failed_rerun_replaces_old_outputs(tmp_path):
    """A failure never leaves an earlier run's page next to the new error (no kernel needed)."""
    from abkit.readout.runner import execute_readout
    from abkit.spec import load_spec

    frame(100).to_parquet(tmp_path / "d.parquet")
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "data": "d.parquet", "metrics": METRICS}), encoding="utf-8")
    folder = tmp_path / "out" / "exp"
    folder.mkdir(parents=True)
    (folder / "readout.html").write_text("old page", encoding="utf-8")
    outcome = execute_readout(path, load_spec(path), folder, kernel_name="no-such-kernel-abkit")
    assert not outcome.ok and "no-such-kernel-abkit" in outcome.error
    assert not (folder / "readout.html").exists()
    assert "no-such-kernel-abkit" in (folder / "error.txt").read_text(encoding="utf-8")
    assert sorted(p.name for p in folder.iterdir()) in (["error.txt"], ["error.txt", "readout.ipynb"])
