"""The pages built from the results store (abkit.readout.programme_pages): index.html, programme.html and
<slug>/history.html, from stores written directly (no notebook runs: fast).

What they must do: list every experiment the store holds (whatever wrote it), the latest readout of each;
link only to files that exist; filter by team, KPI and verdict without a script; show per KPI the programme's
totals, naive and corrected, with the numbers abkit.portfolio.programme computes; say so instead of a shrunk
number with fewer than 4 experiments; escape every user string.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from abkit import portfolio
from abkit.formatting import format_pct
from abkit.readout import programme_pages as pp
from abkit.readout.runner import GENERATOR_MARK

XSS = "<script>alert(1)</script>"


def _row(
    slug,
    *,
    metric="contact_rate",
    rel=-0.05,
    se=0.02,
    verdict="Ship",
    owner="Returns team",
    kind="ab",
    primary=True,
    variant="treatment",
    **kw,
):
    row = {
        "experiment": kw.pop("experiment", slug.replace("-", " ").title()),
        "slug": slug,
        "kind": kind,
        "owner": owner,
        "metric": metric,
        "variant": variant,
        "control": "control",
        "is_primary": primary,
        "better": "lower",
        "control_value": 0.12,
        "treatment_value": 0.12 * (1 + rel),
        "effect": 0.12 * rel,
        "ci_lower": 0.12 * (rel - 1.96 * se),
        "ci_upper": 0.12 * (rel + 1.96 * se),
        "rel_effect": rel,
        "rel_ci_lower": rel - 1.96 * se,
        "rel_ci_upper": rel + 1.96 * se,
        "rel_se": se,
        "p_value": 0.01,
        "alpha": 0.05,
        "verdict": verdict,
        "headline": f"{slug} headline",
    }
    row.update(kw)
    return row


def _page(folder: Path, slug: str, name: str = "readout.html") -> None:
    (folder / slug).mkdir(parents=True, exist_ok=True)
    (folder / slug / name).write_text("<html>page</html>", encoding="utf-8")


# Six contact-rate experiments (four shipped), one refund-rate pair, a failed readout and a plan.
LIFTS = {
    "a": (-0.09, 0.03, "Ship"),
    "b": (-0.07, 0.03, "Ship"),
    "c": (-0.01, 0.03, "Inconclusive"),
    "d": (0.02, 0.03, "Inconclusive"),
    "e": (-0.08, 0.035, "Ship"),
    "f": (-0.065, 0.03, "Ship"),
}


@pytest.fixture
def store(tmp_path):
    out = tmp_path / "reports"
    for slug, (rel, se, verdict) in LIFTS.items():
        impact = (
            {
                "impact_volume": 4e6,
                "impact_per": "orders",
                "impact_unit": "contacts",
                "impact_value": 4.5,
                "impact_currency": "EUR",
            }
            if slug in ("a", "b")
            else {}
        )
        owner = "CS team" if slug in ("c", "e") else "Returns team"
        portfolio.record(
            out,
            [
                _row(slug, rel=rel, se=se, verdict=verdict, owner=owner, **impact),
                _row(
                    slug, metric="csat", rel=0.01, se=0.01, verdict=verdict, owner=owner, primary=False, better="higher"
                ),
            ],
        )
        _page(out, slug)
    portfolio.record(out, [_row("g", metric="refund_rate", rel=-0.04, se=0.01), _row("h", metric="refund_rate")])
    _page(out, "g")  # h's page is gone (removed by someone)
    portfolio.record(
        out,
        [
            {
                "experiment": "Broken",
                "slug": "broken",
                "kind": "ab",
                "status": "failed",
                "error": "DataError: column 'orders' not found",
                "metric": "contact_rate",
                "is_primary": True,
                "owner": "CS team",
            }
        ],
    )
    _page(out, "broken", "error.txt")
    portfolio.record(
        out,
        [
            {
                "experiment": "Plan",
                "slug": "plan",
                "kind": "power",
                "metric": "contact_rate",
                "variant": "plan",
                "is_primary": True,
                "verdict": "Run 28 days",
                "verdict_note": "MDE 6.0% in 28 days",
                "headline": "Run it 28 days.",
            }
        ],
    )
    _page(out, "plan")
    return out


def _hrefs(text: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]+)"', text)]


def test_the_index_lists_every_experiment_once_and_links_only_to_files_that_exist(store):
    pp.write_history(store, "a")
    index, programme, problem = pp.write_pages(store)
    assert problem is None and index == store / "index.html" and programme.is_file()
    text = index.read_text(encoding="utf-8")
    assert GENERATOR_MARK in text[:4096] and "Content-Security-Policy" in text
    assert "<script" not in text.lower()
    for slug in ("A", "B", "C", "D", "E", "F", "G", "H"):
        assert text.count(f">{slug}<") == 1, slug  # the experiment's name, once
    assert text.count('class="abkit-exp ') == 10  # 8 + the failed one + the plan
    for href in _hrefs(text):
        assert href.startswith("data:") or (store / href).is_file(), href
    assert 'href="a/readout.html"' in text and 'href="a/history.html"' in text and 'href="b/history.html"' not in text
    assert ">H<" in text and 'href="h/readout.html"' not in text and "its page is not in the folder" in text
    assert 'href="broken/error.txt"' in text and "FAILED" in text and "column &#39;orders&#39; not found" in text
    assert ">Run 28 days<" in text and "MDE 6.0% in 28 days" in text
    assert 'href="programme.html"' in text
    assert f"{format_pct(-0.09, 2)}" in text and f"[{format_pct(-0.09 - 1.96 * 0.03)}, " in text


def test_the_index_filters_by_team_kpi_and_verdict_with_css_alone(store):
    pp.write_pages(store)
    text = (store / "index.html").read_text(encoding="utf-8")
    ctx = pp.index_context(store, portfolio.load(store))
    groups = {g["key"]: {o["label"]: o for o in g["options"]} for g in ctx["filters"]}
    assert set(groups["team"]) == {"Returns team", "CS team", "(no owner)"}
    assert set(groups["kpi"]) == {"contact_rate", "refund_rate"}
    assert list(groups["verdict"]) == ["Ship", "Inconclusive", "Test plan", "Failed"]  # the readouts' order
    assert groups["verdict"]["Ship"]["count"] == 6 and groups["team"]["CS team"]["count"] == 3
    for key, options in groups.items():
        for label, option in options.items():
            ident = option["id"]
            assert re.fullmatch(r"abkit-[a-z]+-\d+", ident)
            assert f'id="{ident}"' in text and f'for="{ident}"' in text
            assert f"#{ident}:checked ~ .abkit-table-wrap tr.abkit-exp:not(.{ident}) {{ display: none; }}" in text
            rows = re.findall(r'<tr class="abkit-exp ([^"]+)">', text)
            assert sum(ident in r.split() for r in rows) == option["count"], (key, label)
    # each group has an "All" option, checked, so everything shows until a reader picks
    assert text.count('type="radio"') == sum(len(o) + 1 for o in groups.values())
    assert len(re.findall(r'id="abkit-[a-z]+-all" checked', text)) == 3


def test_the_programme_page_shows_the_numbers_the_library_computes(store):
    pp.write_pages(store)
    text = (store / "programme.html").read_text(encoding="utf-8")
    words = html.unescape(re.sub(r"<[^>]+>", " ", text))
    prog = portfolio.programme(store)
    row = prog.kpi("contact_rate")
    assert row["experiments"] == 6 and row["shipped"] == 4
    corrected = (
        f"{format_pct(row['shrunk_total'])} (95% CI {format_pct(row['shrunk_lower'])} to "
        f"{format_pct(row['shrunk_upper'])})"
    )
    naive = (
        f"{format_pct(row['naive_total'])} (95% CI {format_pct(row['naive_lower'])} to "
        f"{format_pct(row['naive_upper'])})"
    )
    assert f"Corrected for the winner's curse: {corrected}" in words
    assert naive in words and "4 of 6 shipped" in words and "win rate 67%" in words
    assert prog.sentences()["contact_rate"] in words
    # business terms: the two shipped experiments with a yearly volume, measured and corrected
    assert "2 of the 4 shipped declare a yearly volume" in words
    assert "In business terms, corrected (2 of the 4 shipped declare a yearly volume): about" in words
    assert "fewer contacts a year" in words and "EUR" in words
    # refund_rate has two experiments: a measured total, and words instead of a shrunk number
    rr = prog.kpi("refund_rate")
    assert rr["experiments"] == 2 and rr["shrunk_total"] != rr["shrunk_total"]  # NaN
    assert "Too few experiments (2) to correct for the winner's curse: it needs at least 4" in words
    assert "not computed: 2 experiments on refund_rate, the correction needs at least 4" in words
    # the forest plots (KPIs with two or more shipped experiments), embedded as vector charts and described
    imgs = re.findall(r'<img src="(data:image/svg\+xml;base64,[^"]+)" alt="([^"]+)"', text)
    assert len(imgs) == 2 and all(len(src) > 5000 for src, _ in imgs)
    assert "as measured (grey) and corrected for the winner&#39;s curse (blue)" in imgs[0][1]
    assert "Why two numbers." in words and "csat" in words  # the other metrics' table
    assert "<script" not in text.lower() and GENERATOR_MARK in text[:4096]
    for href in _hrefs(text):
        assert href.startswith("data:") or (store / href).is_file(), href


def test_history_page_lists_every_readout_newest_first(store):
    portfolio.record(store, [_row("a", rel=-0.03, verdict="Inconclusive", data_fingerprint="abc123def456")])
    page = pp.write_history(store, "a")
    text = page.read_text(encoding="utf-8")
    rows = re.findall(r"<tr>\s*<td><small>[^<]+</small>", text)
    assert len(rows) == 2
    assert text.index(">Inconclusive<") < text.index(">Ship<")  # newest first
    assert "snapshot abc123def456" in text and "latest" in text
    assert 'href="readout.html"' in text and 'href="error.txt"' not in text
    assert 'href="../index.html"' in text and 'href="../programme.html"' in text


def test_user_strings_are_escaped_on_every_page(tmp_path):
    out = tmp_path / "r"
    portfolio.record(out, [_row("x", experiment=XSS, owner=XSS, metric=XSS, headline=XSS)])
    _page(out, "x")
    pp.write_history(out, "x")
    pp.write_pages(out)
    for name in ("index.html", "programme.html", "x/history.html"):
        text = (out / name).read_text(encoding="utf-8")
        assert XSS not in text and html.escape(XSS) in text, name


def test_a_store_that_cannot_be_read_still_gives_an_index_of_this_runs_readouts(tmp_path):
    from abkit.readout.runner import ReadoutOutcome

    out = tmp_path / "r"
    out.mkdir()
    (out / "abkit.duckdb").write_bytes(b"not a database at all" * 100)
    _page(out, "exp")
    done = ReadoutOutcome(
        spec_path=tmp_path / "exp.yaml",
        name="Exp",
        slug="exp",
        folder=out / "exp",
        status="ok",
        html=out / "exp" / "readout.html",
        primary="contact_rate",
        kind="ab",
        verdicts=(
            {
                "variant": "treatment",
                "label": "Ship",
                "colour": "#1a7f37",
                "headline": "h",
                "rel_effect": -0.05,
                "rel_ci_lower": -0.08,
                "rel_ci_upper": -0.02,
                "p_value": 0.001,
            },
        ),
        store_error="cannot open the results store",
    )
    stopped = ReadoutOutcome(
        spec_path=tmp_path / "s.yaml",
        name="Stopped",
        slug="stopped",
        folder=out / "stopped",
        status="interrupted",
        error="stopped before it finished",
        primary="contact_rate",
    )
    index, programme, problem = pp.write_pages(out, [done, stopped], timeout=0.5)
    assert problem and "abkit.duckdb" in problem
    text = index.read_text(encoding="utf-8")
    assert "The results store could not be read" in text
    assert 'href="exp/readout.html"' in text and ">Ship<" in text and "not in the results store" in text
    assert "NOT FINISHED" in text and ">Stopped<" in text
    assert "The programme could not be built from the results store: cannot open" in programme.read_text("utf-8")


def test_an_empty_folder_says_so(tmp_path):
    index, programme, problem = pp.write_pages(tmp_path)
    assert problem is None
    assert "No experiment has been read out into this folder yet" in index.read_text(encoding="utf-8")
    assert "No readout with a usable estimate yet" in programme.read_text(encoding="utf-8")
