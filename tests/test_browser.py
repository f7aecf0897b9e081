"""The readouts as a person sees them: every page opened in headless Chromium.

Uses the batch of tests/test_readout.py (one `abkit readout` run of every
sample spec plus a hostile A/B experiment). For each page:

* **no console output at all**: the pages carry no script, so any console
  line Chromium logs (``--enable-logging=stderr``: an uncaught error, a
  Content-Security-Policy violation from an attempted network request...) is
  a failure; a negative control proves the detector sees both kinds;
* **the verdict is in the first 1280x800 viewport**: a copy of the page with
  a measuring script (the only change; the real page forbids scripts) reports
  the verdict's bounding boxes through ``--dump-dom``, and a 1280x800
  screenshot must contain the verdict label's colour;
* the page fits a laptop screen (no horizontal scrolling at 1280 px), the
  experiment name is shown as text (an XSS name included), and the page prints.

The index and programme pages (and a history page) built from the results store get the same console
check; the programme page must show its first KPI's label and headline in the first viewport, and the
index's filters (radio buttons and CSS rules) must show exactly the experiments of the value picked.
The hostile name is text on the index and history pages, and the programme page prints.

Screenshots are kept in ``$ABKIT_SCREENSHOTS`` (default: a temporary folder,
printed). Without Chromium the tests are skipped locally; in CI (``CI=true``)
they fail instead: ``.ci/run`` installs Debian's ``chromium``.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from test_readout import GOOD_NAME, XSS, batch, summary_of

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
VIEWPORT = (1280, 800)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]

if CHROMIUM is None:
    if IN_CI:
        pytest.fail(
            "chromium is not installed but CI=true: the browser tests must run in CI "
            "(.ci/run installs it: apt-get install -y chromium)",
            pytrace=False,
        )
    pytestmark = pytest.mark.skip(reason="chromium not installed (apt-get install chromium); runs in CI")

MEASURE = """<script>
(function () {
  function box(sel) {
    var el = document.querySelector(sel);
    if (!el) return "none";
    var r = el.getBoundingClientRect();
    return [r.top, r.bottom, r.left, r.right].map(Math.round).join(",");
  }
  function measure() {
    var b = document.body, label = document.querySelector(".abkit-verdict .abkit-label");
    b.setAttribute("data-verdict", box(".abkit-verdict"));
    b.setAttribute("data-label", box(".abkit-verdict .abkit-label"));
    b.setAttribute("data-headline", box(".abkit-verdict .abkit-headline"));
    b.setAttribute("data-label-text", label ? label.textContent : "");
    b.setAttribute("data-h1", (document.querySelector("h1") || {}).textContent || "");
    b.setAttribute("data-viewport", window.innerWidth + "," + window.innerHeight);
    b.setAttribute("data-scroll-width", document.documentElement.scrollWidth);
  }
  measure();
  window.addEventListener("load", measure);
})();
</script>"""


def chromium(target: str, *extra: str, window=VIEWPORT, timeout: int = 120) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="abkit-chromium-")
    try:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}", *extra, target],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def console_lines(stderr: str) -> list[str]:
    """Every console message Chromium logged (``...:CONSOLE...``), plus uncaught errors however logged."""
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]


def measure(page: Path, workdir: Path) -> dict:
    """Bounding boxes etc. of the rendered page, through a measuring copy and --dump-dom."""
    text = page.read_text(encoding="utf-8")
    text, n = re.subn(r"<meta\b[^>]*Content-Security-Policy[^>]*>", "", text)
    assert n == 1, "the page has no Content-Security-Policy to lift for measuring"
    copy = workdir / f"measure-{page.parent.name}.html"
    copy.write_text(text.replace("</body>", MEASURE + "</body>", 1), encoding="utf-8")
    proc = chromium(copy.as_uri(), "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    attrs = _body_data(proc.stdout)
    assert "verdict" in attrs, "the measuring script did not run"
    return attrs


def _body_data(dom: str) -> dict:
    """The data-* attributes of <body> (a real HTML parser: attribute values may hold '<' and '>')."""
    from html.parser import HTMLParser

    found: dict = {}

    class Body(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "body" and not found:
                found.update({k[5:]: v or "" for k, v in attrs if k.startswith("data-")})

    Body(convert_charrefs=True).feed(dom)
    return found


def colour_pixels(png: Path, colour: str, tol: int = 12) -> int:
    from PIL import Image

    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(rgb - target).max(axis=2) <= tol).sum())


@pytest.fixture(scope="module")
def pages():
    run = batch()
    out = {"good_exp": run["good"] / "readout.html"}
    out.update({name: folder / "readout.html" for name, folder in run["samples"].items()})
    missing = [k for k, p in out.items() if not p.exists()]
    assert not missing, f"readouts not produced: {missing}; see tests/test_readout.py"
    assert {"refund_policy_rollout", "refund_tracker_germany"} <= set(out)  # the DiD and one-market pages too
    return out


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = Path(os.environ.get("ABKIT_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


# --------------------------------------------------------------------------- the detector works
def test_console_detector_catches_errors_and_network_attempts(tmp_path):
    csp = '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:">'
    blocked = tmp_path / "blocked.html"
    blocked.write_text(
        f"<!DOCTYPE html><html><head>{csp}</head><body><img src='https://example.com/x.png'><p>x</p></body></html>",
        encoding="utf-8",
    )
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!DOCTYPE html><html><body><script>console.error('boom'); notAFunction();</script></body></html>",
        encoding="utf-8",
    )
    lines = console_lines(chromium(blocked.as_uri(), "--dump-dom").stderr)
    assert any("Content Security Policy" in ln and "example.com" in ln for ln in lines), lines
    lines = console_lines(chromium(broken.as_uri(), "--dump-dom").stderr)
    assert any("boom" in ln for ln in lines) and any("Uncaught" in ln for ln in lines), lines


# --------------------------------------------------------------------------- every page
def test_pages_log_nothing_to_the_console(pages):
    for name, page in pages.items():
        proc = chromium(page.as_uri(), "--dump-dom")
        assert proc.returncode == 0, (name, proc.stderr[-2000:])
        assert "abkit-verdict" in proc.stdout, name  # the page did render
        assert console_lines(proc.stderr) == [], (name, console_lines(proc.stderr))


def test_verdict_is_visible_in_the_first_viewport(pages, tmp_path, shots):
    run = batch()
    for name, page in pages.items():
        m = measure(page, tmp_path)
        assert m["viewport"].split(",")[0] == str(VIEWPORT[0]), m
        top, bottom, left, right = map(int, m["label"].split(","))
        assert 0 <= top and bottom <= VIEWPORT[1] and 0 <= left and right <= VIEWPORT[0], (name, m)
        _head_top, head_bottom, *_ = map(int, m["headline"].split(","))
        assert head_bottom <= VIEWPORT[1], (name, "the verdict sentence is below the fold", m)
        assert int(m["scroll-width"]) <= VIEWPORT[0], (name, "horizontal scrolling on a laptop", m)
        # and a person would see it: the screenshot holds the label's colour
        png = shots / f"{name}.png"
        proc = chromium(page.as_uri(), f"--screenshot={png}")
        assert proc.returncode == 0 and png.exists(), proc.stderr[-2000:]
        if name != "good_exp":
            colour = summary_of(run, name)["arms"][0]["colour"]
            assert colour_pixels(png, colour) > 400, (name, colour)
            assert m["label-text"] == summary_of(run, name)["arms"][0]["label"]


def test_hostile_name_is_shown_as_text(pages, tmp_path):
    m = measure(pages["good_exp"], tmp_path)
    assert m["h1"] == GOOD_NAME  # the <script> is text on the page, not an element
    proc = chromium(pages["good_exp"].as_uri(), "--dump-dom")
    assert XSS not in proc.stdout and html.escape(XSS, quote=False) in proc.stdout
    assert console_lines(proc.stderr) == []


def test_full_page_screenshots_and_print(pages, shots):
    for name, page in pages.items():
        png = shots / f"{name}-full.png"
        proc = chromium(page.as_uri(), f"--screenshot={png}", window=(1280, 6000))
        assert proc.returncode == 0 and png.exists() and png.stat().st_size > 10_000, name
    pdf = shots / "refund_policy_rollout.pdf"
    proc = chromium(pages["refund_policy_rollout"].as_uri(), f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert proc.returncode == 0 and pdf.exists(), proc.stderr[-2000:]
    data = pdf.read_bytes()
    n_pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert data.startswith(b"%PDF") and 2 <= n_pages <= 12, n_pages


# --------------------------------------------------------------------------- index and programme pages
VISIBLE_ROWS = """<script>
(function () {
  function measure() {
    var rows = document.querySelectorAll("tr.abkit-exp"), shown = [];
    for (var i = 0; i < rows.length; i++) {
      var cell = rows[i].querySelector("td"), link = cell.querySelector("a");
      if (rows[i].offsetParent !== null) shown.push((link ? link.textContent : cell.firstChild.textContent).trim());
    }
    document.body.setAttribute("data-shown", shown.join("|"));
    document.body.setAttribute("data-scroll-width", document.documentElement.scrollWidth);
  }
  measure();
  window.addEventListener("load", measure);
})();
</script>"""


@pytest.fixture(scope="module")
def portfolio_pages():
    run = batch()
    out = {
        "index": run["out"] / "index.html",
        "programme": run["out"] / "programme.html",
        "history": run["good"] / "history.html",
    }
    assert all(p.exists() for p in out.values()), out
    return out


def test_portfolio_pages_log_nothing_to_the_console(portfolio_pages):
    for name, page in portfolio_pages.items():
        proc = chromium(page.as_uri(), "--dump-dom")
        assert proc.returncode == 0, (name, proc.stderr[-2000:])
        assert "abkit-page" in proc.stdout, name
        assert console_lines(proc.stderr) == [], (name, console_lines(proc.stderr))


def test_programme_page_leads_with_its_headline_in_the_first_viewport(portfolio_pages, tmp_path, shots):
    page = portfolio_pages["programme"]
    m = measure(page, tmp_path)
    top, bottom, left, right = map(int, m["label"].split(","))
    assert 0 <= top and bottom <= VIEWPORT[1] and 0 <= left and right <= VIEWPORT[0], m
    assert int(m["headline"].split(",")[1]) <= VIEWPORT[1], ("the programme's headline is below the fold", m)
    assert int(m["scroll-width"]) <= VIEWPORT[0], m
    assert m["label-text"].endswith("shipped") and m["h1"].startswith("Programme")
    png = shots / "programme.png"
    proc = chromium(page.as_uri(), f"--screenshot={png}")
    assert proc.returncode == 0 and png.exists(), proc.stderr[-2000:]
    assert colour_pixels(png, "#1a7f37") > 400  # the green "N of M shipped" label
    full = shots / "programme-full.png"
    assert chromium(page.as_uri(), f"--screenshot={full}", window=(1280, 6000)).returncode == 0


def _with_filter(page: Path, workdir: Path, option_id: str | None) -> dict:
    """The index as a reader sees it after picking ``option_id`` (None: as opened): which rows show."""
    text = page.read_text(encoding="utf-8")
    text, n = re.subn(r"<meta\b[^>]*Content-Security-Policy[^>]*>", "", text)
    assert n == 1
    if option_id is not None:  # the reader's click: that radio button checked, its group's "All" not
        group = option_id.rsplit("-", 1)[0]
        text = text.replace(f'id="{group}-all" checked', f'id="{group}-all"')
        text = text.replace(f'id="{option_id}">', f'id="{option_id}" checked>')
    copy = workdir / f"index-{option_id}.html"
    copy.write_text(text.replace("</body>", VISIBLE_ROWS + "</body>", 1), encoding="utf-8")
    proc = chromium(copy.as_uri(), "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return _body_data(proc.stdout)


def test_index_filters_work_without_a_script(portfolio_pages, tmp_path):
    from abkit import portfolio
    from abkit.readout import programme_pages

    run = batch()
    page = portfolio_pages["index"]
    ctx = programme_pages.index_context(run["out"], portfolio.load(run["out"]))
    names = [e["name"] for e in ctx["entries"]]
    everything = _with_filter(page, tmp_path, None)
    assert everything["shown"].split("|") == names
    assert int(everything["scroll-width"]) <= VIEWPORT[0]
    groups = {g["key"]: g for g in ctx["filters"]}
    picks = [
        groups["team"]["options"][0],
        groups["kpi"]["options"][0],
        next(o for o in groups["verdict"]["options"] if o["label"] == "Ship"),
    ]
    for option in picks:
        expected = [e["name"] for e in ctx["entries"] if option["id"] in e["classes"].split()]
        seen = _with_filter(page, tmp_path, option["id"])
        assert seen["shown"].split("|") == expected and len(expected) == option["count"], option


def test_portfolio_pages_show_a_hostile_name_as_text_and_print(portfolio_pages, shots):
    """The readouts' last two checks, on the store's pages: an experiment named with a <script> is text on the
    index and its history page, and the programme page prints (a PDF of a few pages)."""
    for name in ("index", "history"):
        proc = chromium(portfolio_pages[name].as_uri(), "--dump-dom")
        assert proc.returncode == 0, (name, proc.stderr[-2000:])
        assert XSS not in proc.stdout and html.escape(XSS, quote=False) in proc.stdout, name
        assert console_lines(proc.stderr) == [], (name, console_lines(proc.stderr))
    pdf = shots / "programme.pdf"
    proc = chromium(portfolio_pages["programme"].as_uri(), f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert proc.returncode == 0 and pdf.exists(), proc.stderr[-2000:]
    data = pdf.read_bytes()
    n_pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert data.startswith(b"%PDF") and 1 <= n_pages <= 12, n_pages
