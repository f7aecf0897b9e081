"""End to end: `abkit readout` -> papermill notebooks -> self-contained HTML pages and the portfolio page.

One batch run (:func:`batch`, cached for the whole test session and shared
with tests/test_browser.py) executes, in parallel, in one `abkit readout`
call: every sample spec of specs/ (A/B, interim A/B, 3-arm A/B with SRM,
DiD rollout), a hostile A/B experiment (an XSS name, code-like text, a date
column, segments, margins) and a broken one (a column of strings where a
metric needs numbers). The tests below inspect what it wrote. Each papermill
run takes a few seconds.
"""

from __future__ import annotations

import ast
import atexit
import functools
import html
import math
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import markupsafe
import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from markupsafe import escape

import abkit
from abkit import portfolio
from abkit.errors import AbkitError, SpecError
from abkit.formatting import format_pct
from abkit.readout import run_readouts
from abkit.readout.programme_pages import PAGES_LOCK_NAME
from abkit.readout.runner import LOCK_NAME, OWNER_NAME, TEMPLATE_FOR_KIND, TEMPLATE_NOTEBOOK

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SPECS = sorted((ROOT / "specs").glob("*.yaml"))
MAX_PAGE_BYTES = 2 * 1024 * 1024

# A parameter that would break naive string templating of code.
TRICKY = 'He said "ship it",\nthen \'left\'"); import os; os.system("touch pwned")  # \\ and {braces} \u2603'
XSS = "<script>alert(1)</script>"
ODD_METRIC = 'csat <1-5> "survey" $mean$'
GOOD_NAME = f'Instant "refunds" {XSS}'

METRICS = [
    {
        "name": "refund_rate",
        "type": "ratio",
        "numerator": "refunds",
        "denominator": "orders",
        "covariates": ["pre_refunds", "pre_orders"],
        "better": "lower",
        "primary": True,
    },
    {
        "name": "refund_amount",
        "type": "mean",
        "column": "refund_amount",
        "covariate": "pre_refund_amount",
        "better": "lower",
    },
    {
        "name": "time_to_refund_hours",
        "type": "mean",
        "column": "time_to_refund_hours",
        "dropna": True,
        "better": "lower",
    },
    {"name": ODD_METRIC, "type": "ratio", "numerator": "csat_sum", "denominator": "csat_responses"},
    {"name": "repeat_purchase_30d", "type": "proportion", "column": "repeat_purchase_30d"},
    {
        "name": "abuse_loss_per_order",
        "type": "ratio",
        "numerator": "abuse_loss",
        "denominator": "orders",
        "better": "lower",
        "guardrail": True,
        "margin": 0.5,
    },
]


def frame(n: int = 4000, seed: int = 7) -> pd.DataFrame:
    """Buyers; treatment halves the refund probability (a clear, significant win)."""
    rng = np.random.default_rng(seed)
    treat = rng.random(n) < 0.5
    orders = rng.poisson(2, n) + 1
    pre_orders = rng.poisson(2, n) + 1
    refunds = rng.binomial(orders, np.where(treat, 0.05, 0.10))
    responses = rng.binomial(1, 0.3, n)
    markets = np.array(["DE", "FR", XSS])
    return pd.DataFrame(
        {
            "buyer_id": np.arange(n),
            "variant": pd.Categorical(np.where(treat, "treatment", "control")),
            "orders": orders,
            "refunds": refunds,
            "refund_amount": refunds * rng.gamma(2.0, 15.0, n),
            "time_to_refund_hours": np.where(refunds > 0, rng.gamma(2.0, 24.0, n), np.nan),
            "csat_sum": responses * rng.integers(1, 6, n),
            "csat_responses": responses,
            "repeat_purchase_30d": rng.integers(0, 2, n),
            "abuse_loss": rng.gamma(0.2, 2.0, n),
            "pre_orders": pre_orders,
            "pre_refunds": rng.binomial(pre_orders, 0.1),
            "pre_refund_amount": rng.gamma(1.0, 10.0, n),
            "exposure_date": (pd.Timestamp("2026-09-01") + pd.to_timedelta(rng.integers(0, 10, n), unit="D")).date,
            "market": markets[rng.integers(0, 3, n)],
        }
    )


def abkit_command() -> list[str]:
    script = Path(sys.executable).with_name("abkit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "abkit.cli"]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*abkit_command(), *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@functools.cache
def batch() -> dict:
    """Run every readout of this module once per test session (also used by tests/test_browser.py)."""
    base = Path(tempfile.mkdtemp(prefix="abkit-readout-"))
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    (base / "data").mkdir()
    (base / "specs").mkdir()
    frame().to_parquet(base / "data" / "good.parquet")
    bad = frame(seed=8)
    bad.loc[::7, "refund_amount"] = None  # gaps in a metric without dropna: only the run can tell
    bad.to_parquet(base / "data" / "bad.parquet")

    good_spec = {
        "name": GOOD_NAME,
        "owner": "Returns team",
        "description": f"Refund early. {XSS}",
        "hypothesis": TRICKY,
        "start": "2026-09-01",
        "end": "2026-09-28",
        "data": "../data/good.parquet",
        "mde": 0.2,
        "planned_units": 4000,
        "date": "exposure_date",
        "segments": ["market"],
        "unit": "buyer_id",
        "metrics": METRICS,
    }
    bad_spec = {"name": "Broken refund amounts", "data": "../data/bad.parquet", "metrics": METRICS}
    good_path = base / "specs" / "good_exp.yaml"
    bad_path = base / "specs" / "bad_exp.yaml"
    good_path.write_text(yaml.safe_dump(good_spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    bad_path.write_text(yaml.safe_dump(bad_spec, sort_keys=False), encoding="utf-8")

    out = base / "reports"
    proc = run_cli(
        "readout", str(good_path), str(bad_path), *map(str, SAMPLE_SPECS), "--out", str(out), "--jobs", "3", cwd=base
    )
    return {
        "base": base,
        "out": out,
        "proc": proc,
        "good": out / "good_exp",
        "bad": out / "bad_exp",
        "samples": {p.stem: out / p.stem for p in SAMPLE_SPECS},
    }


@pytest.fixture(scope="module")
def run():
    return batch()


def page(run, folder: str = "good") -> str:
    path = run[folder] if folder in ("good", "bad") else run["samples"][folder]
    return (path / "readout.html").read_text(encoding="utf-8")


def summary_of(run, folder: str) -> dict:
    nb = nbformat.read(run["samples"][folder] / "readout.ipynb", as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", ()):
            if "abkit" in (out.get("metadata") or {}):
                return out["metadata"]["abkit"]
    raise AssertionError("no summary in the notebook")


def visible_text(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


# --------------------------------------------------------------------------- the command
def test_exit_code_and_messages(run):
    proc = run["proc"]
    assert proc.returncode == 1, proc.stderr
    written = proc.stdout.strip().splitlines()
    assert str(run["good"].resolve() / "readout.html") in written
    assert len(written) == 1 + len(SAMPLE_SPECS)  # every experiment but the broken one
    assert "FAILED Broken refund amounts" in proc.stderr and "1 of" in proc.stderr
    assert "refund_amount" in proc.stderr and "error.txt" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_failure_is_isolated(run):
    good, bad = run["good"], run["bad"]
    assert (good / "readout.html").exists() and (good / "readout.ipynb").exists()
    assert not (good / "error.txt").exists()
    assert not (bad / "readout.html").exists()
    error = (bad / "error.txt").read_text(encoding="utf-8")
    assert "Broken refund amounts" in error and "refund_amount" in error and "missing (null) values" in error
    assert "\x1b[" not in error  # ANSI colours stripped
    # the partially executed notebook is kept, with the error in it
    nb = nbformat.read(bad / "readout.ipynb", as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", ()) if o.get("output_type") == "error"]
    assert errors and errors[0]["ename"] == "DataError"
    # no temporary files left behind (the folder's owner mark and lock file stay)
    assert not [
        p for p in run["out"].rglob(".*") if p.is_file() and p.name not in (OWNER_NAME, LOCK_NAME, PAGES_LOCK_NAME)
    ]


def test_index_page(run):
    index = (run["out"] / "index.html").read_text(encoding="utf-8")
    assert str(markupsafe.escape(GOOD_NAME)) in index and XSS not in index
    assert 'href="good_exp/readout.html"' in index
    assert 'href="bad_exp/error.txt"' in index and "FAILED" in index
    for stem in run["samples"]:
        assert f'href="{stem}/readout.html"' in index
    assert ">Ship<" in index and ">Worked<" in index and ">Invalid (sample ratio mismatch)<" in index
    assert re.search(r">Inconclusive \(need \d+ more days?\)<", index)
    assert "Rollout (DiD)" in index and "A/B test" in index and "Power plan" in index
    assert re.search(r">Run \d+ days<", index) and re.search(r"MDE \d+\.\d% in \d+ days", index)
    assert "refund_rate" in index and "contact_rate" in index and "%" in index  # primary metric lifts
    assert not re.search(r"<(script|link)[^>]*(src|href)\s*=\s*[\"']?\s*(https?:)?//", index)
    # built from the results store: every experiment, its history page, the programme; links only to files
    for folder in [run["good"], run["bad"], *run["samples"].values()]:
        assert f'href="{folder.name}/history.html"' in index and (folder / "history.html").is_file()
    assert 'href="programme.html"' in index and "<script" not in index.lower()
    for href in re.findall(r'href="([^"]+)"', index):
        assert href.startswith("data:") or (run["out"] / href).is_file(), href


def test_the_store_holds_every_readout_the_pages_show(run):
    stored = portfolio.load(run["out"])
    folders = {run["good"].name, run["bad"].name, *(f.name for f in run["samples"].values())}
    assert set(stored["slug"]) == folders and stored.groupby("slug")["run_id"].nunique().eq(1).all()
    failed = stored[stored["status"] == "failed"]
    assert set(failed["slug"]) == {"bad_exp"} and len(failed) == 1 and "refund_amount" in failed["error"].iloc[0]
    for name, folder in run["samples"].items():
        rows = stored[stored["slug"] == name]
        summary = summary_of(run, name)
        assert len(rows) == len(summary["rows"]) and (rows["status"] == "ok").all(), name
        assert rows["data_fingerprint"].eq(summary["data_snapshot"]["fingerprint"]).all(), name
        assert rows["is_primary"].sum() == len(summary["arms"]), name  # one primary row per arm
        assert (folder / "readout.html").is_file()
    good = stored[stored["slug"] == "good_exp"]
    assert good["experiment"].eq(GOOD_NAME).all() and len(good) == len(METRICS)


def test_every_readout_has_its_five_lines(run):
    for folder in [run["good"], run["bad"], *run["samples"].values()]:
        lines = (folder / "summary.md").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 5 and all(line.strip() for line in lines), folder.name
        target = Path(lines[4].split(": ", 1)[1])
        assert target.is_file() and target.parent == folder, lines[4]
    good = (run["good"] / "summary.md").read_text(encoding="utf-8").splitlines()
    assert good[0].startswith(f"{GOOD_NAME}: Ship") and good[1].startswith("Primary metric refund_rate")
    assert good[2].startswith("Guardrails: ") and "abuse_loss_per_order" in good[2]
    assert good[3].startswith("Health: no sample ratio mismatch")
    rollout = (run["samples"]["refund_policy_rollout"] / "summary.md").read_text(encoding="utf-8").splitlines()
    assert rollout[0].startswith("Refund-policy rollout: Worked.") and "pre-trend test p" in rollout[3]


def test_programme_page_of_the_batch(run):
    text = visible_text((run["out"] / "programme.html").read_text(encoding="utf-8"))
    prog = portfolio.programme(run["out"])
    contact = prog.kpi("contact_rate")
    assert contact["experiments"] >= 4 and contact["shipped"] >= 2  # the sample programme
    assert np.isfinite(contact["shrunk_total"])
    assert f"Corrected for the winner's curse: {format_pct(contact['shrunk_total'])}" in text
    assert prog.sentences()["contact_rate"] in text


# --------------------------------------------------------------------------- the A/B page
def test_page_shows_every_section_in_order(run):
    text = page(run)
    for m in METRICS:  # nbconvert re-serializes the page: text keeps <, >, & escaped, quotes become plain
        assert html.escape(m["name"], quote=False) in text, m["name"]
    assert ODD_METRIC not in text  # only ever escaped
    marks = [
        "A/B test readout",
        ">Verdict<",
        ">Ship<",
        "Decision rule.",
        ">The test<",
        ">Health checks<",
        "Sample ratio check passed",
        ">Unit integrity<",
        "Every one of the 4,000 units (buyer_id) is in one arm",
        ">Sample size<",
        ">Pre-period balance<",
        ">Units left out<",
        ">Metrics<",
        'class="abkit-table abkit-metrics"',
        ">Relative lift with 95% confidence intervals<",
        ">Effect over time<",
        ">Segments<",
        ">By market<",
        "Cochran's Q =",
        ">Methodology<",
        ">Glossary<",
    ]
    order = [text.index(s) for s in marks]
    assert order == sorted(order), [m for m, _ in sorted(zip(marks, order), key=lambda t: t[1])]
    assert "CUPED" in text and "Deng" in text and "Welch" in text
    assert "4,000 units of the 4,000 planned (100%)" in text
    assert "no value for time_to_refund_hours: left out of that metric" in text  # dropped units and why
    assert "(time_to_refund_hours missing)" not in text  # said once, not twice
    assert "guardrail, margin 50.0%" in text


def test_page_hides_code(run):
    for folder in ("good", "refund_policy_rollout"):
        text = page(run, folder)
        for code in (
            "abkit.analyze(",
            "render.header_html",
            "import abkit",
            "ExperimentSpec.from_dict",
            "did.staggered(",
            "spec = {",
            "jp-InputArea",
            "jp-InputPrompt",
            "In&nbsp;[",
            "Out[",
            "simple aggregation of ATT",
            "A/B result:",
        ):  # nor the printed output of audit cells
            assert code not in text, (folder, code)


def test_page_loads_nothing_from_the_network(run):
    pages = [page(run)] + [(p / "readout.html").read_text(encoding="utf-8") for p in run["samples"].values()]
    for text in pages:
        assert not re.search(
            r"<(script|link|img|iframe|source|embed)[^>]*(src|href)\s*=\s*[\"']?\s*(https?:)?//", text, re.I
        )
        assert "<script" not in text.lower()  # no require.js, MathJax, widgets...
        assert not re.search(r"url\(\s*[\"']?\s*(https?:)?//", text) and "@import" not in text
        assert "Content-Security-Policy" in text and "default-src 'none'" in text
        images = re.findall(r"<img\b[^>]*>", text)
        assert images and all(
            re.search(r'src="data:image/(png|svg\+xml);base64,[A-Za-z0-9+/=\s]{1000,}"', i) for i in images
        )
        assert all("alt=" in i for i in images)


def test_pages_are_small(run):
    for p in [run["good"], *run["samples"].values()]:
        size = (p / "readout.html").stat().st_size
        print(f"{p.name}/readout.html: {size / 1024:.0f} KiB")
        assert size < MAX_PAGE_BYTES, (p.name, size)


def test_user_strings_are_escaped(run):
    text = page(run)
    assert XSS not in text
    assert html.escape(XSS) in text
    title = re.search(r"<title>(.*?)</title>", text, re.S).group(1)
    assert "<" not in title and html.unescape(title) == GOOD_NAME
    h1 = re.search(r"<h1>(.*?)</h1>", text, re.S).group(1)
    assert html.unescape(h1) == GOOD_NAME
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in re.search(r">By market<.*?</table>", text, re.S).group(0)


def test_parameters_arrive_as_data(run):
    """The kernel gets the spec's path as a literal and reads the spec itself: quotes, newlines and
    code-like text in it survive unchanged and are never code."""
    nb = nbformat.read(run["good"] / "readout.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    tree = ast.parse(injected[0].source)
    assert all(isinstance(node, ast.Assign) for node in tree.body)  # assignments of literals only
    assert [t.id for node in tree.body for t in node.targets] == ["spec_path", "data_checked"]
    assert ast.literal_eval(tree.body[1].value) is True  # the runner checked the data just before
    spec_path = Path(ast.literal_eval(tree.body[0].value))
    assert spec_path.is_absolute()
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    assert spec["hypothesis"] == TRICKY
    assert spec["name"] == GOOD_NAME
    # and the kernel saw the same string: the header it rendered holds it, escaped
    outputs = "".join(o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", ()))
    assert str(escape(TRICKY)) in outputs  # the page templates' escaping (markupsafe)
    assert html.escape(TRICKY, quote=False) in page(run)
    assert not (run["base"] / "pwned").exists() and not (run["good"] / "pwned").exists()


def test_notebook_keeps_the_code_for_auditors(run):
    nb = nbformat.read(run["good"] / "readout.ipynb", as_version=4)
    source = "\n".join(c.source for c in nb.cells)
    assert "abkit.analyze(" in source and "abkit.verdict.decide(" in source
    nb = nbformat.read(run["samples"]["refund_policy_rollout"] / "readout.ipynb", as_version=4)
    source = "\n".join(c.source for c in nb.cells)
    assert "did.staggered(" in source and "abkit.verdict.decide_rollout(" in source
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", ()))
    assert "simple aggregation of ATT(g,t)" in printed and "pre-trend test" in printed
    for template in TEMPLATE_FOR_KIND.values():
        tnb = nbformat.read(template, as_version=4)
        params = [c for c in tnb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1
        code = [ln for ln in params[0].source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        assert [ln.split("=")[0].strip() for ln in code] == ["spec_path", "spec", "data_checked"]  # test_templates.py
        assert all(not c.outputs for c in tnb.cells if c.cell_type == "code")  # templates are stored clean
    assert TEMPLATE_FOR_KIND["ab"] == TEMPLATE_NOTEBOOK


# --------------------------------------------------------------------------- the sample readouts
def test_sample_ab_verdicts(run):
    chatbot = summary_of(run, "chatbot_3arm")
    assert [a["label"] for a in chatbot["arms"]] == ["Invalid (sample ratio mismatch)"] * 2
    assert "Sample ratio mismatch: do not trust" in page(run, "chatbot_3arm")
    full = summary_of(run, "instant_refunds")
    assert [a["label"] for a in full["arms"]] == ["Ship"]
    interim = summary_of(run, "instant_refunds_interim")
    (arm,) = interim["arms"]
    assert re.fullmatch(r"Inconclusive \(need \d+ more days?\)", arm["label"]), arm["label"]
    text = visible_text(page(run, "instant_refunds_interim"))
    assert "units of the 40,000 planned" in text and "Days run: 12" in text


def test_sample_ab_health_checks_and_segments(run):
    text = visible_text(page(run, "instant_refunds"))
    assert "The arms looked alike before the test" in text and "pre_abuse_loss" in text
    assert "40,000 units of the 40,000 planned (100%)" in text
    assert "Every one of the 40,000 units (buyer_id) is in one arm, with one row" in text  # spec `unit:`
    for column in ("market", "buyer_type", "category"):
        assert f"By {column}" in text
    assert text.count("Cochran's Q =") == 3  # one heterogeneity test per breakdown
    assert "Effect over time" in text and "exposure_date" in text


def test_sample_did_readout(run):
    text = page(run, "refund_policy_rollout")
    marks = [
        "Rollout readout",
        ">Verdict<",
        ">Worked<",
        "Decision rule.",
        ">The rollout<",
        ">Estimated impact<",
        ">Parallel trends",
        "pre-launch effects",
        ">Effect by week since launch<",
        ">Robustness<",
        "Placebo launch 4 weeks early",
        "Goodman-Bacon",
        ">Methodology<",
        ">Glossary<",
    ]
    order = [text.index(s) for s in marks]
    assert order == sorted(order), [m for m, _ in sorted(zip(marks, order), key=lambda t: t[1])]
    words = visible_text(text)
    assert re.search(
        r"The launch cut contact_rate by \d+\.\d% \(95% CI \d+\.\d% to \d+\.\d%\) on average in "
        r"launched markets\.",
        words,
    ), words[:2000]
    assert "No sign of diverging trends before launch" in words
    assert "passes: no fake effect" in words
    assert "refund_rate" in words and "time_to_refund_hours" in words  # secondary outcomes


def test_sample_did_estimate_covers_the_truth(run):
    """The true average effect on log contact rate over all launched market-weeks lies in the reported CI."""
    panel = pd.read_parquet(ROOT / "data" / "rollout_panel.parquet")
    tau = panel.attrs["true_effects"]["contact_rate"]
    last = int(panel.week.max())
    logs = [
        math.log1p(tau[w - g])
        for g in panel.groupby("market").launch_week.first().dropna().astype(int)
        for w in range(g, last + 1)
    ]
    truth = math.expm1(float(np.mean(logs)))
    (arm,) = summary_of(run, "refund_policy_rollout")["arms"]
    assert arm["label"] == "Worked"
    assert arm["rel_ci_lower"] <= truth <= arm["rel_ci_upper"], (truth, arm)


def test_sample_power_plan(run):
    text = page(run, "refund_emails_plan")
    marks = [
        "Test plan",
        ">Recommendation<",
        ">Run ",
        "How this was decided.",
        ">The plan<",
        ">Assumptions, from the history<",
        ">What the test can detect, by duration<",
        ">Minimum detectable effect by duration<",
        "<h2>Guardrails</h2>",
        ">Methodology<",
    ]
    order = [text.index(s) for s in marks]
    assert order == sorted(order), [m for m, _ in sorted(zip(marks, order), key=lambda t: t[1])]
    (arm,) = summary_of(run, "refund_emails_plan")["arms"]
    words = visible_text(text)
    assert re.search(
        r"Run the test for \d+ days \([\d,]+ units\) to detect a 10\.0% change in contact_rate "
        r"with 80% power\.",
        words,
    )
    assert arm["label"].startswith("Run ") and "power to show it stays within its 3.0% margin" in words


def test_power_command(tmp_path):
    import json

    plan = ROOT / "specs" / "refund_emails_plan.yaml"
    proc = run_cli("power", str(plan), "--json")
    assert proc.returncode == 0, proc.stderr
    (out,) = json.loads(proc.stdout)
    rec = out["recommendation"]
    assert rec["feasible"] and rec["label"] == f"Run {rec['days']} days" and rec["mde"] == pytest.approx(0.10)
    assert {r["metric"] for r in out["mde_by_duration"]} == {"contact_rate", "csat"}
    assert list(out["guardrails"]) == ["repeat_purchase_30d"]
    text = run_cli("power", str(plan))
    assert text.returncode == 0 and rec["headline"] in text.stdout
    wrong = run_cli("power", str(ROOT / "specs" / "instant_refunds.yaml"))
    assert wrong.returncode == 2 and "needs kind: power specs" in wrong.stderr and "Traceback" not in wrong.stderr


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
    assert not out.exists()  # nothing ran, nothing written


def test_single_problem_is_one_line(tmp_path):
    frame(50).to_parquet(tmp_path / "d.parquet")
    spec = tmp_path / "one.yaml"
    spec.write_text(
        yaml.safe_dump({"name": "x", "data": "d.parquet", "alpha": 2, "metrics": METRICS}), encoding="utf-8"
    )
    proc = run_cli("validate", str(spec))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "alpha:" in proc.stderr


def test_validate_names_every_kind():
    proc = run_cli("validate", *map(str, SAMPLE_SPECS))
    assert proc.returncode == 0, proc.stderr
    assert "kind did" in proc.stdout and "kind ab" in proc.stdout and "kind power" in proc.stdout


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
    (folder / "readout.pdf").write_text("old PDF", encoding="utf-8")
    (folder / "summary.md").write_text("old: Ship", encoding="utf-8")
    outcome = execute_readout(path, load_spec(path), folder, kernel_name="no-such-kernel-abkit")
    assert not outcome.ok and "no-such-kernel-abkit" in outcome.error
    assert not (folder / "readout.html").exists() and not (folder / "readout.pdf").exists()
    assert "no-such-kernel-abkit" in (folder / "error.txt").read_text(encoding="utf-8")
    assert (folder / "summary.md").read_text(encoding="utf-8").startswith("x: readout FAILED.")
    kept = sorted(p.name for p in folder.iterdir() if p.name not in (OWNER_NAME, LOCK_NAME))
    assert kept in (
        ["error.txt", "history.html", "summary.md"],
        ["error.txt", "history.html", "readout.ipynb", "summary.md"],
    )
    stored = portfolio.load(tmp_path / "out")  # one failed row, no result
    assert stored["status"].tolist() == ["failed"] and "no-such-kernel-abkit" in stored.loc[0, "error"]


def test_sequential_readout_shows_the_always_valid_path(run):
    """`sequential: true` (the interim sample): every CI is always valid, and the readout shows the
    path of the primary metric with the stop decision and what a naive daily test would have done."""
    text = visible_text(page(run, "instant_refunds_interim"))
    assert "Safe to look daily: the always-valid interval" in text
    assert "always-valid" in text and ("stopping was allowed" in text or "keep the test running" in text)
    spec = abkit.load_spec(Path(__file__).parents[1] / "specs" / "instant_refunds_interim.yaml")
    assert spec.sequential and abkit.ExperimentSpec.from_dict(spec.to_dict()).sequential
    assert not abkit.load_spec(Path(__file__).parents[1] / "specs" / "instant_refunds.yaml").sequential
