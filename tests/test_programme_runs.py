"""The results store behind `abkit readout` and `abkit export`, end to end (issue 14).

- Two `abkit readout` processes into one folder at once: both experiments in the store, on the index and
  with a history page, whichever process wrote the index last.
- The store never claims a result no page shows: a failed readout records its one failed row after its
  error.txt; a store that cannot be written is reported (exit 1), and the pages are kept.
- `abkit readout --pdf`: readout.pdf printed by headless Chromium, inspected as images (pdftoppm) and text
  (pdftotext): the verdict on page one, no chart cut across two pages; a clear refusal without Chromium.
- summary.md: five plain-text lines, the last a link to the page.
- `abkit export NB.ipynb --out DIR`: a notebook run by plain papermill joins the folder's store and pages.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml

from abkit import portfolio, store
from abkit.readout.templates import notebook_for

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ABKIT = BIN / "abkit"
CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
POPPLER = all(shutil.which(t) for t in ("pdftoppm", "pdftotext", "pdfinfo", "pdfimages"))
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _data(path: Path, n: int = 3000, seed: int = 0, effect: float = 0.7, broken: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    treat = rng.random(n) < 0.5
    orders = rng.poisson(2, n) + 1
    refunds = rng.binomial(orders, np.where(treat, 0.10 * effect, 0.10))
    frame = pd.DataFrame(
        {
            "variant": np.where(treat, "treatment", "control"),
            "orders": orders,
            "refunds": refunds,
            "contacts": rng.binomial(orders, 0.12),
        }
    )
    if broken:  # gaps in a metric without dropna: only the run can tell
        frame["refunds"] = frame["refunds"].astype(float)
        frame.loc[::7, "refunds"] = np.nan
    frame.to_parquet(path)
    return path


def _spec(path: Path, data: Path, name: str, owner: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = {
        "name": name,
        "owner": owner,
        "data": str(data),
        "start": "2026-10-01",
        "end": "2026-10-21",
        "metrics": [
            {
                "name": "refund_rate",
                "type": "ratio",
                "numerator": "refunds",
                "denominator": "orders",
                "better": "lower",
                "primary": True,
            },
            {
                "name": "contact_rate",
                "type": "ratio",
                "numerator": "contacts",
                "denominator": "orders",
                "better": "lower",
                "guardrail": True,
            },
        ],
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def _cli(*args, cwd, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(ABKIT), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600, env=env)


def _hrefs_exist(folder: Path, page: Path) -> None:
    for href in re.findall(r'href="([^"]+)"', page.read_text(encoding="utf-8")):
        assert href.startswith("data:") or (folder / href).is_file(), (page.name, href)


# --------------------------------------------------------------------------- two processes, one folder
def test_two_concurrent_readouts_into_one_folder_keep_both(tmp_path):
    a = _spec(
        tmp_path / "specs" / "label.yaml", _data(tmp_path / "a.parquet", seed=1), "Label in the app", "Returns team"
    )
    b = _spec(tmp_path / "specs" / "tracker.yaml", _data(tmp_path / "b.parquet", seed=2), "Refund tracker", "CS team")
    c = _spec(tmp_path / "specs" / "reminder.yaml", _data(tmp_path / "c.parquet", seed=6), "Reminder", "CS team")
    d = _spec(tmp_path / "specs" / "chat.yaml", _data(tmp_path / "d.parquet", seed=7), "Chat", "Returns team")
    out = tmp_path / "reports"
    # The first process reads three specs out with --jobs 2, given as relative paths (papermill moves the
    # process's working folder while a notebook runs: a path resolved then pointed into another experiment's
    # folder); the second, at the same time, one more.
    jobs = [["specs/label.yaml", "specs/reminder.yaml", "specs/chat.yaml", "--jobs", "2"], [str(b)]]
    procs = [
        subprocess.Popen(
            [str(ABKIT), "readout", *args, "--out", str(out), "--no-progress"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in jobs
    ]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err
    assert c.is_file() and d.is_file()
    frame = portfolio.load(out)
    assert set(frame["slug"]) == {"label", "tracker", "reminder", "chat"} and (frame["status"] == "ok").all()
    assert frame.groupby("slug")["run_id"].nunique().tolist() == [1, 1, 1, 1]
    assert set(frame["metric"]) == {"refund_rate", "contact_rate"} and frame["data_fingerprint"].notna().all()
    index = (out / "index.html").read_text(encoding="utf-8")
    for name, slug in (("Label in the app", "label"), ("Refund tracker", "tracker")):
        assert f'<a href="{slug}/readout.html">{name}</a>' in index  # whichever process wrote it last
        assert f'href="{slug}/history.html"' in index and (out / slug / "history.html").is_file()
        lines = (out / slug / "summary.md").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 5 and lines[0].startswith(f"{name}: ")
        assert lines[4] == f"Full readout: {out.resolve() / slug / 'readout.html'}"
    for page in (out / "index.html", out / "programme.html"):
        _hrefs_exist(out, page)
    # a later run of one of them appends to its history; the latest readout is the one shown
    again = _cli("readout", a, "--out", out, "--no-progress", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    frame = portfolio.load(out)
    assert frame.groupby("slug")["run_id"].nunique().to_dict() == {"chat": 1, "label": 2, "reminder": 1, "tracker": 1}
    assert "(2 readouts)" in (out / "index.html").read_text(encoding="utf-8")
    history = (out / "label" / "history.html").read_text(encoding="utf-8")
    assert len(re.findall(r"<tr>\s*<td><small>", history)) == 2


def test_the_rows_recorded_are_the_notebooks_own(tmp_path):
    spec = _spec(tmp_path / "label.yaml", _data(tmp_path / "a.parquet", seed=3), "Label", "Returns team")
    done = _cli("readout", spec, "--out", tmp_path / "out", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    nb = nbformat.read(tmp_path / "out" / "label" / "readout.ipynb", as_version=4)
    meta = next(
        o["metadata"]["abkit"] for c in nb.cells for o in c.get("outputs", ()) if "abkit" in (o.get("metadata") or {})
    )
    frame = portfolio.load(tmp_path / "out")
    assert len(frame) == len(meta["rows"]) == 2
    for row, stored in zip(meta["rows"], frame.to_dict(orient="records")):
        for column in ("metric", "variant", "verdict", "headline", "rel_effect", "rel_ci_lower", "p_value", "owner"):
            assert stored[column] == row[column], column
    assert (frame["data_fingerprint"] == meta["data_snapshot"]["fingerprint"]).all()
    assert (frame["slug"] == "label").all() and frame["spec_path"].eq(str(spec.resolve())).all()


# --------------------------------------------------------------------------- failures and the store
def test_a_failed_readout_records_one_failed_row_and_no_result(tmp_path):
    spec = _spec(tmp_path / "broken.yaml", _data(tmp_path / "x.parquet", broken=True), "Broken", "Returns team")
    done = _cli("readout", spec, "--out", tmp_path / "out", "--no-progress", cwd=tmp_path)
    assert done.returncode == 1
    frame = portfolio.load(tmp_path / "out")
    assert len(frame) == 1 and frame.loc[0, "status"] == "failed" and pd.isna(frame.loc[0, "rel_effect"])
    assert "refunds" in frame.loc[0, "error"]
    folder = tmp_path / "out" / "broken"
    assert not (folder / "readout.html").exists() and (folder / "error.txt").is_file()
    assert (folder / "summary.md").read_text(encoding="utf-8").startswith("Broken: readout FAILED.")
    assert "FAILED" in (folder / "history.html").read_text(encoding="utf-8")
    index = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert 'href="broken/error.txt"' in index


def test_a_store_that_cannot_be_written_is_reported_and_the_page_kept(tmp_path):
    out = tmp_path / "out"
    portfolio.record(out, [{"experiment": "Old", "slug": "old", "kind": "ab", "metric": "refund_rate"}])
    con = duckdb.connect(str(out / "abkit.duckdb"))
    con.execute(f"INSERT INTO abkit_schema VALUES ({store.SCHEMA_VERSION + 1}, now(), '99.0')")  # a newer abkit's
    con.close()
    spec = _spec(tmp_path / "label.yaml", _data(tmp_path / "a.parquet"), "Label", "Returns team")
    done = _cli("readout", spec, "--out", out, "--no-progress", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "results store: Label [label] not recorded" in done.stderr and "newer abkit" in done.stderr
    assert "Traceback" not in done.stderr
    assert (out / "label" / "readout.html").is_file() and (out / "label" / "summary.md").is_file()
    assert set(portfolio.load(out)["slug"]) == {"old"}  # nothing written...
    index = (out / "index.html").read_text(encoding="utf-8")
    assert 'href="label/readout.html"' in index and "not in the results store" in index  # ...and said so


# --------------------------------------------------------------------------- PDF
needs_pdf_tools = pytest.mark.skipif(
    (CHROMIUM is None or not POPPLER) and not IN_CI,
    reason="needs chromium and poppler-utils (apt-get install chromium poppler-utils)",
)


@needs_pdf_tools
def test_readout_pdf_keeps_the_verdict_on_page_one_and_charts_whole(tmp_path):
    spec = _spec(
        tmp_path / "label.yaml", _data(tmp_path / "a.parquet", seed=4, effect=0.6), "Label in the app", "Returns team"
    )
    # Charts as PNG: where the pages break is the figures' CSS, the same for either format, and raster images
    # are what pdfimages can see (an SVG chart prints as vector paths; the default, checked in test_pages.py).
    env = {**os.environ, "ABKIT_CHART_FORMAT": "png"}
    done = _cli("readout", spec, "--out", tmp_path / "out", "--no-progress", "--pdf", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "out" / "label"
    pdf = folder / "readout.pdf"
    assert str(pdf.resolve()) in done.stdout.splitlines() and pdf.read_bytes()[:5] == b"%PDF-"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert "A4" in info and 2 <= pages <= 12
    # every page rendered as an image: none blank
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(tmp_path / "page")], check=True)
    from PIL import Image

    pngs = sorted(tmp_path.glob("page-*.png"))
    assert len(pngs) == pages
    for png in pngs:
        pixels = np.asarray(Image.open(png).convert("L"))
        assert (pixels < 200).mean() > 0.002, png.name
    # page one: the name, the verdict label in its colour and the headline
    meta = next(
        o["metadata"]["abkit"]
        for c in nbformat.read(folder / "readout.ipynb", as_version=4).cells
        for o in c.get("outputs", ())
        if "abkit" in (o.get("metadata") or {})
    )
    arm = meta["arms"][0]
    first = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = " ".join(first.split())
    assert "Label in the app" in flat and "Verdict" in flat and arm["label"] in flat
    assert " ".join(arm["headline"].split()) in flat
    rgb = np.asarray(Image.open(pngs[0]).convert("RGB")).astype(int)
    colour = np.array([int(arm["colour"][i : i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(rgb - colour).max(axis=2) <= 16).sum() > 100, "the verdict label's colour is not on page one"
    # no chart cut across two pages: each image object is drawn on one page only
    listed = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages_of: dict[str, set] = {}
    for line in listed.splitlines()[2:]:
        cols = line.split()
        if len(cols) > 12 and cols[2] == "image":
            pages_of.setdefault(cols[11], set()).add(cols[0])
    assert pages_of, "no chart in the PDF"
    assert all(len(p) == 1 for p in pages_of.values()), pages_of
    # the history page links the PDF
    assert 'href="readout.pdf"' in (folder / "history.html").read_text(encoding="utf-8")


def test_readout_pdf_without_chromium_says_how_to_get_it_and_runs_nothing(tmp_path):
    spec = _spec(tmp_path / "label.yaml", _data(tmp_path / "a.parquet"), "Label", "Returns team")
    env = {**os.environ, "ABKIT_CHROMIUM": str(tmp_path / "no-such-chromium")}
    done = _cli("readout", spec, "--out", tmp_path / "out", "--no-progress", "--pdf", cwd=tmp_path, env=env)
    assert done.returncode == 2 and "ABKIT_CHROMIUM" in done.stderr and "not an executable" in done.stderr
    assert not (tmp_path / "out" / "label").exists()
    env = {**os.environ, "PATH": str(tmp_path)}  # nothing on the PATH either
    done = _cli("readout", spec, "--out", tmp_path / "out", "--no-progress", "--pdf", cwd=tmp_path, env=env)
    assert done.returncode == 2 and "apt-get install chromium" in done.stderr and "Traceback" not in done.stderr


# --------------------------------------------------------------------------- plain papermill
def test_export_out_records_a_papermill_run_into_the_folder(tmp_path):
    import papermill

    spec = _spec(
        tmp_path / "specs" / "tracker.yaml", _data(tmp_path / "a.parquet", seed=5), "Refund tracker", "CS team"
    )
    nb = tmp_path / "runs" / "tracker-2026-10-22.ipynb"
    nb.parent.mkdir()
    papermill.execute_notebook(
        str(notebook_for("ab")),
        str(nb),
        parameters={"spec_path": str(spec)},
        cwd=str(tmp_path),
        progress_bar=False,
        log_output=False,
    )
    out = tmp_path / "reports"
    done = _cli("export", nb, "--out", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    folder = out / "tracker"  # the spec's identity, as abkit readout names it
    assert done.stdout.strip() == str(folder / "readout.html")
    assert (folder / "readout.ipynb").is_file() and (folder / "summary.md").is_file()
    frame = portfolio.load(out)
    assert set(frame["slug"]) == {"tracker"} and len(frame) == 2
    assert json.loads((folder / ".abkit-experiment.json").read_text())["written_by"] == "abkit export"
    index = (out / "index.html").read_text(encoding="utf-8")
    assert '<a href="tracker/readout.html">Refund tracker</a>' in index and 'href="tracker/history.html"' in index
    # a notebook that did not run to the end is refused: nothing recorded
    broken = nbformat.read(nb, as_version=4)
    broken.cells[-1].outputs.append(
        nbformat.v4.new_output("error", ename="DataChangedError", evalue="changed", traceback=[])
    )
    bad = tmp_path / "runs" / "bad.ipynb"
    nbformat.write(broken, bad)
    refused = _cli("export", bad, "--out", out, cwd=tmp_path)
    assert refused.returncode == 2 and "did not run to the end" in refused.stderr
    assert "DataChangedError" in refused.stderr
    assert len(portfolio.load(out)) == 2
    # without --out, the page and its five lines next to the notebook, as before
    plain = _cli("export", nb, cwd=tmp_path)
    assert plain.returncode == 0 and plain.stdout.strip() == str(nb.with_suffix(".html"))
    assert len(nb.with_name(nb.stem + ".summary.md").read_text(encoding="utf-8").splitlines()) == 5
