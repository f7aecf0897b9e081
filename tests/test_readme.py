"""Every Python example in README.md runs as written on a fresh clone.

The ```python blocks are executed in order, one namespace per ``###``
section (a reader copies a section into a fresh notebook), in a temporary
working directory where ``data/``, ``specs/`` and ``templates/`` are reachable as in a clone
(symlinks to the repository's), so nothing is written into the repository.
A block is skipped only when the line before it is an HTML comment
``<!-- not run: reason -->`` (it needs something a clone does not have,
e.g. a warehouse table); the skips are listed in :data:`EXPECTED_SKIPS` so a
new one is a deliberate change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

EXPECTED_SKIPS = {"Data where it lives: DuckDB and Spark": 1}
"""Section -> number of blocks marked ``<!-- not run: ... -->`` in it."""


def _check_tour(ns: dict, text: str) -> None:
    """The sentence after the first example says what it prints (``text``: the README, whitespace collapsed)."""
    result = ns["result"]
    quoted = "refund_rate [treatment vs control]: 0.06903 -> 0.06379, -7.58% [-9.50%, -5.62%], p <0.001"
    assert quoted in text and quoted in str(result), str(result)
    assert "refund amount down 7.4% (p < 0.001)" in text
    amount = result.row("refund_amount")
    assert f"{-amount['rel_effect']:.1%}" == "7.4%" and result.decision_p(amount) < 0.001
    rate = result.row("refund_rate")
    assert rate["rel_ci_lower"] < -0.06 < rate["rel_ci_upper"]  # "the truth is inside the interval"
    significant = {r["metric"] for r in result.rows if result.decision_p(r) < result.alpha}
    assert significant == {"refund_rate", "refund_amount", "refund_amount_lin"}  # nothing else moves


def _check_did(ns: dict, text: str) -> None:
    """The DiD comments: print(cs) reports the pre-trend test of -4..-1, and .pretrend() is that test."""
    cs = ns["cs"]
    assert "pre-trend test of event times -4..-1" in str(cs)
    assert cs.aggregate("dynamic", reps=0).pretrend() == cs.pretrend
    assert "pre-trend test of the 4 periods before launch" in text


def _check_survival(ns: dict, text: str) -> None:
    """The time-to-event tour quotes the start of what res.sentence() prints."""
    quoted = "refunds arrive 0.60 days sooner on average within the first 14 days"
    assert quoted in text and ns["res"].sentence().startswith(quoted + ", 95% CI"), ns["res"].sentence()


CHECKS = {
    "Analyse an A/B test in a notebook": _check_tour,
    "Rollouts: difference-in-differences": _check_did,
    "Time to refund with censoring": _check_survival,
}
"""Section -> a check, after the section ran, that the prose around its blocks matches what they print."""

_SKIP = re.compile(r"<!--\s*not run:\s*(?P<reason>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    section: str
    line: int  # 1-based line of the opening fence
    source: str
    skip: str | None  # the reason, for a block marked "not run"


def readme_blocks(text: str) -> list[Block]:
    """The ```python blocks of a Markdown text, with their section and skip marker."""
    blocks: list[Block] = []
    section = "(top)"
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^(`{3,})(\S*)\s*$", line)
        if fence:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == fence.group(1)), None)
            assert end is not None, f"README.md line {i + 1}: unclosed code fence"
            if fence.group(2) == "python":
                prev = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
                m = _SKIP.match(prev.strip())
                blocks.append(
                    Block(section, i + 1, "\n".join(lines[i + 1 : end]) + "\n", m.group("reason") if m else None)
                )
            i = end + 1
            continue
        heading = re.match(r"^(#{2,3})\s+(.*\S)\s*$", line)
        if heading:
            section = heading.group(2)
        i += 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
SECTIONS = list(dict.fromkeys(b.section for b in BLOCKS))


def test_the_readme_has_examples_and_only_the_expected_skips():
    assert len(BLOCKS) >= 6 and "A tour" not in SECTIONS
    skips: dict[str, int] = {}
    for b in BLOCKS:
        if b.skip is not None:
            assert len(b.skip) >= 10, f"README.md line {b.line}: say why the block is not run"
            skips[b.section] = skips.get(b.section, 0) + 1
    assert skips == EXPECTED_SKIPS


@pytest.fixture
def clone_dir(tmp_path, monkeypatch):
    """A working directory that looks like the root of a fresh clone (data/, specs/), writable, outside the repo."""
    for name in ("data", "specs", "templates"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("section", SECTIONS)
def test_readme_section_runs(section, clone_dir):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    blocks = [b for b in BLOCKS if b.section == section]
    if all(b.skip is not None for b in blocks):
        pytest.skip("; ".join(b.skip for b in blocks))
    namespace: dict = {"__name__": "__readme__"}
    try:
        for b in blocks:
            if b.skip is not None:
                continue
            code = compile("\n" * b.line + b.source, str(README), "exec")  # tracebacks give README lines
            try:
                exec(code, namespace)  # noqa: S102 - the README's own examples
            except Exception as exc:  # noqa: BLE001 - any error of an example fails the test, naming its line
                pytest.fail(f"README.md block at line {b.line} ({section}) raised {type(exc).__name__}: {exc}")
    finally:
        plt.close("all")
    if section in CHECKS:
        CHECKS[section](namespace, " ".join(README.read_text(encoding="utf-8").split()))
    # examples write into their own working folder, never through the links into the repository
    assert all((clone_dir / name).is_symlink() for name in ("data", "specs", "templates"))


# --------------------------------------------------------------------------
# Small promises the README makes about the API
# --------------------------------------------------------------------------
def test_covariates_keyword_is_accepted_in_either_spelling():
    """``Mean(covariate=)`` and ``Ratio(covariates=)`` in the README; the other spelling is an alias, and giving
    both is an AbkitError naming the keyword (not a bare TypeError)."""
    import abkit

    df = abkit.simulate.ab_data(4_000, seed=5)
    ratio = [
        abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"), name="a"),
        abkit.Ratio("refunds", "orders", covariate=("pre_refunds", "pre_orders"), name="b"),
    ]
    mean = [
        abkit.Mean("refund_amount", covariate="pre_refund_amount", name="c"),
        abkit.Mean("refund_amount", covariates="pre_refund_amount", name="d"),
        abkit.Mean("refund_amount", covariates=["pre_refund_amount", "pre_orders"], name="e"),
        abkit.Mean("refund_amount", ["pre_refund_amount", "pre_orders"], name="f"),
    ]
    rows = abkit.analyze(df, ratio + mean).to_frame().set_index("metric")
    for x, y in (("a", "b"), ("c", "d"), ("e", "f")):
        assert rows.loc[x, "effect"] == rows.loc[y, "effect"] and rows.loc[x, "se"] == rows.loc[y, "se"]
    assert rows.loc["b", "method"] == "delta + CUPED" and rows.loc["d", "variance_reduction"] > 0
    assert abkit.Proportion("repeat_purchase_30d", covariates="pre_repeat_purchase_30d").covariates
    assert abkit.NPS("nps_score", covariates="pre_nps").covariates
    with pytest.raises(abkit.AbkitError, match=r"covariates given twice.*give them once, as covariates="):
        abkit.Ratio("refunds", "orders", ("pre_refunds", "pre_orders"), covariate=("pre_refunds", "pre_orders"))
    with pytest.raises(abkit.AbkitError, match=r"give them once, as covariate="):
        abkit.Mean("refund_amount", "pre_refund_amount", covariates="pre_orders")


def test_nps_summary_leads_with_points():
    """The README: NPS is reported in points. The text summary says the change in points (with its CI) first and
    the relative lift after it, in brackets; other metrics keep the relative lift."""
    import abkit
    from abkit.results import ExperimentResult

    df = abkit.simulate.ab_data(20_000, seed=6)
    res = abkit.analyze(df, [abkit.NPS("nps_score"), abkit.Ratio("refunds", "orders", name="refund_rate")])
    row = res.row("nps_score")
    line = next(ln for ln in str(res).splitlines() if ln.strip().startswith("nps_score"))
    assert (
        f"{row['effect']:+.2f} points [{row['ci_lower']:+.2f}, {row['ci_upper']:+.2f}] "
        f"({row['rel_effect'] * 100:+.2f}% relative)"
    ) in line
    other = next(ln for ln in str(res).splitlines() if ln.strip().startswith("refund_rate"))
    assert "points" not in other and "%" in other
    assert ExperimentResult.summary.__doc__ and ExperimentResult.metric.__doc__
