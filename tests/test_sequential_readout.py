"""Sequential (always-valid) readouts say one thing, in every number on the page.

Unit level (no kernel): the verdict reads the current look's always-valid
interval and p-value, which covers today's average effect even when the
effect changes over time (novelty), where the intersection of the past looks'
intervals does not (simulated). Page level (the shared batch of
tests/test_readout.py): the interim sample readout quotes one always-valid
p-value, shows no fixed-horizon "Effect over time" chart, counts the days
still needed for the always-valid interval (checked against an independent
computation), and describes the always-valid method; every A/B page formats
p-values, intervals and the sample-ratio check the same way; the full sample
reads time to refund with censoring (no "different mix of buyers" caution).
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import abkit
from abkit.readout import ab, render
from abkit.sequential import AlwaysValid, monitor
from abkit.verdict import decide, p_text

ROOT = Path(__file__).resolve().parent.parent


def daily(n=12_000, days=10, lift=0.0, seed=0) -> pd.DataFrame:
    """Buyers exposed over ``days`` days; ``lift`` multiplies the treatment's refund probability."""
    rng = np.random.default_rng(seed)
    treat = rng.random(n) < 0.5
    orders = rng.poisson(2, n) + 1
    refunds = rng.binomial(orders, np.where(treat, 0.1 * (1 + lift), 0.1))
    return pd.DataFrame(
        {
            "variant": np.where(treat, "treatment", "control"),
            "orders": orders,
            "refunds": refunds,
            "amount": refunds * rng.gamma(2.0, 15.0, n),
            "day": (pd.Timestamp("2026-09-01") + pd.to_timedelta(rng.integers(0, days, n), unit="D")).date,
        }
    )


METRICS = [abkit.Ratio("refunds", "orders", name="refund_rate", better="lower"), abkit.Mean("amount", better="lower")]


def path_and_result(df, planned=20_000, correction=None):
    design = AlwaysValid(planned_n=planned)
    res = abkit.analyze(df, METRICS, correction=correction, sequential=design)
    path = monitor(df, METRICS, by="day", planned_n=planned)
    return res, path


# --------------------------------------------------------------------------- what the verdict reads
@pytest.mark.parametrize("lift, seed", [(0.0, 1), (-0.15, 3)])
def test_the_current_look_is_the_paths_last_look(lift, seed):
    """All units dated: the analysis and the path's last look are the same always-valid numbers, and the
    verdict quotes them."""
    res, path = path_and_result(daily(lift=lift, seed=seed))
    f = path.frame
    for r in res.rows:
        last = f[(f.metric == r["metric"]) & (f.variant == r["variant"])].iloc[-1]
        for k in ("p_value", "ci_lower", "ci_upper", "rel_ci_lower", "rel_ci_upper"):
            assert r[k] == pytest.approx(last[k], rel=1e-9, abs=1e-12), k
        assert (r["ci_lower"] > 0 or r["ci_upper"] < 0) == (r["p_value"] < res.alpha)
    (v,) = decide(res, "refund_rate")
    assert p_text(res.row("refund_rate")["p_value"], "always-valid p") in v.reasons[0]


def _novelty(rng, n=20_000, days=28, novelty=0.8):
    v = rng.choice(["control", "treatment"], n)
    day = rng.integers(1, days + 1, n)
    effect = np.where(day <= 7, novelty, 0.0)  # only the first week's cohorts react
    y = 20 + np.where(v == "treatment", effect, 0.0) + rng.normal(0, 10, n)
    return pd.DataFrame({"variant": v, "day": day, "y": y}), effect[v == "treatment"].mean()


@pytest.mark.slow
def test_current_look_covers_todays_effect_when_the_effect_fades():
    """A novelty effect (week-1 cohorts only): the current look's always-valid interval covers today's
    average effect at the nominal rate; the intersection of all looks' intervals (a reading the readout
    once used) does not, because the looks estimate different effects."""
    rng = np.random.default_rng(9)
    sims, n = 150, 20_000
    cover_look = cover_intersection = 0
    for _ in range(sims):
        df, truth = _novelty(rng, n)
        res = abkit.analyze(df, [abkit.Mean("y")], sequential=AlwaysValid(planned_n=n))
        f = monitor(df, [abkit.Mean("y")], by="day", planned_n=n).frame
        r = res.rows[0]
        cover_look += r["ci_lower"] <= truth <= r["ci_upper"]
        lo, hi = max(f.ci_lower.max(), r["ci_lower"]), min(f.ci_upper.min(), r["ci_upper"])
        cover_intersection += lo <= truth <= hi
    assert cover_look / sims >= 0.95 - 3 * math.sqrt(0.05 * 0.95 / sims), cover_look / sims
    assert cover_intersection / sims < 0.85, cover_intersection / sims


def test_always_valid_design_is_fixed_by_the_plan():
    assert ab.always_valid_design(SimpleNamespace(sequential=False, planned_units=40_000)) is None
    assert ab.always_valid_design(SimpleNamespace(sequential=True, planned_units=40_000)).planned_n == 40_000
    with pytest.raises(abkit.AbkitError, match=r"planned_n=|planned_units"):  # no mixture without a plan
        ab.always_valid_design(SimpleNamespace(sequential=True, planned_units=None))


# --------------------------------------------------------------------------- render pieces
def test_interval_text_uses_one_number_of_decimals():
    assert render.interval_text(-0.0040, -0.00707, -0.000928) == ("-0.00400", "[-0.00707, -0.00093]")
    assert render.interval_text(-0.70, -3.10, 1.69) == ("-0.70", "[-3.10, 1.69]")
    assert render.interval_text(-0.00001, -0.0202, 0.0153) == ("0.0000", "[-0.0202, 0.0153]")  # no -0.0000
    assert render.interval_text(1234.5, -600.2, 3100.7) == ("1,234", "[-600, 3,101]")
    assert render.interval_text(1.0, -math.inf, math.inf)[1] == "[n/a, n/a]"


# --------------------------------------------------------------------------- the pages
@pytest.fixture(scope="module")
def run():
    from test_readout import batch

    return batch()


def words(run, folder: str) -> str:
    path = run["samples"][folder] / "readout.html"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"<style.*?</style>", " ", text, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))


def section(text: str, title: str, next_title: str) -> str:
    return text[text.index(title) : text.index(next_title, text.index(title))]


def test_interim_page_says_one_always_valid_p_value(run):
    text = words(run, "instant_refunds_interim")
    verdict = section(text, " Verdict ", "Decision rule.")
    daily_part = section(text, "Safe to look daily", " Segments ")
    p_verdict = re.search(r"always-valid p = (\d\.\d{3})", verdict).group(1)
    assert set(re.findall(r"always-valid p = (\d\.\d{3})", daily_part)) == {p_verdict}
    metrics = section(text, " Metrics ", "Relative lift with")
    assert re.search(rf"refund_rate primary .*? {p_verdict} ", metrics)
    ci = re.search(r"95% always-valid CI (\S+) to (\S+),", verdict).groups()
    assert f"95% always-valid CI: {ci[0]} to {ci[1]}" in daily_part


def test_interim_page_gives_no_contradicting_advice(run):
    text = words(run, "instant_refunds_interim")
    assert " Effect over time " not in text and "decide at the planned end" not in text
    assert "may stop as soon as the interval excludes zero" in text
    assert "Safe to look daily: the always-valid interval" in text


def test_interim_page_counts_days_for_the_always_valid_interval(run):
    """'need N more days' = the days at which the always-valid interval detects the MDE, recomputed here."""
    from test_verdict import _independent_days

    spec = abkit.load_spec(ROOT / "specs" / "instant_refunds_interim.yaml")
    res = abkit.analyze(
        spec.open_data(),
        spec.build_metrics(),
        variant=spec.variant,
        control=spec.control,
        alpha=spec.alpha,
        sequential=AlwaysValid(planned_n=spec.planned_units),
    )
    row = res.row(spec.primary.name)
    units = int(sum(res.srm.observed))
    days, _ = ab.days_elapsed(spec)
    total, n_needed = _independent_days(
        row["rel_se"], units, spec.planned_units, spec.mde, days, alpha=spec.alpha, power=spec.power
    )
    text = words(run, "instant_refunds_interim")
    more = total - int(days)
    assert f"Inconclusive (need {more} more days)" in text
    assert (
        f"about {more} more days ({total} in total) to detect a 6.5% change with 80% power on the always-valid"
    ) in text
    assert f"calls for about {n_needed:,.0f} units" in text
    assert "Units needed: from the planned MDE and power, for the always-valid interval" in text
    fixed = ab.sample_size(
        spec, abkit.analyze(spec.open_data(), spec.build_metrics(), variant=spec.variant, control=spec.control), days
    )
    assert fixed.needed.days_total < total  # a fixed-horizon count would have said fewer


def test_interim_methodology_describes_always_valid_intervals(run):
    text = words(run, "instant_refunds_interim")
    method = section(text, " Methodology ", " Metric definitions ")
    for must in (
        "always valid",
        "Howard",
        "Johari",
        "Robbins 1970",
        "Waudby-Smith",
        "planned 40,000 units",
        "the latest look's always-valid interval and p-value",
        "covers today's average effect",
        "found by bisection",
    ):
        assert must in method, must
    assert "Student's t with Welch-Satterthwaite degrees of freedom; relative lifts" not in method
    segments = section(text, " Segments ", " Methodology ")
    assert "fixed-horizon" in segments and "95% CI (fixed-horizon)" in segments


def test_pages_format_numbers_one_way(run):
    for folder in ("instant_refunds", "instant_refunds_interim", "chatbot_3arm"):
        text = words(run, folder)
        assert "p = <" not in text and "p <0" not in text, folder
        assert "SAMPLE RATIO MISMATCH" not in text and not re.search(r"p = \d\.\d+e-\d+", text), folder
        assert not re.search(r"(?<![\d.])-0\.0+(?![0-9])", text), folder  # no negative zero
        assert "Units needed: abkit" not in text, folder
        assert not re.search(r"chi-square = [\d.,]+ on \d+ df, p = \d\.\d(?!\d)", text), folder  # p = 0.4
        metrics = section(text, " Metrics ", "Relative lift with")
        for lo, hi in re.findall(r"\[(-?[\d,]*\.?\d+), (-?[\d,]*\.?\d+)\](?!%)", metrics):
            d = [len(x.split(".")[1]) if "." in x else 0 for x in (lo, hi)]
            assert d[0] == d[1], (folder, lo, hi)


def test_three_arm_page_names_adjusted_p_values(run):
    text = words(run, "chatbot_3arm")
    verdict = section(text, " Verdict ", "Decision rule.")
    assert len(re.findall(r"Holm-adjusted p = \d\.\d{3}", verdict)) == 2
    assert "Sample ratio mismatch: control 9,008 units" in verdict and "chi-square test p < 0.001" in verdict
    assert "p-value (unadjusted)" in text and "Holm-adjusted p" in section(text, " Metrics ", "Relative lift with")
    index = (run["out"] / "index.html").read_text(encoding="utf-8")
    assert len(re.findall(r"Holm-adjusted p = \d\.\d{3}", index)) == 2
    assert "always-valid p = " in index


def test_full_page_reads_time_to_refund_with_censoring_instead_of_a_dropna_mean(run):
    # issue 17: the sample spec's time to refund is a censoring-aware time-to-event metric over every buyer, so
    # the "different mix of buyers" caution of the old dropna mean is gone (tests/test_maturity.py shows the
    # same data's dropna mean still flagged); the verdict says the effect in words
    text = words(run, "instant_refunds")
    assert "different mix" not in text
    verdict = section(text, " Verdict ", "Decision rule.")
    assert (
        "time_to_refund: refunds arrive 2.15 days sooner on average within the first 30 days, 95% CI 1.94 to 2.36"
    ) in verdict
    assert "time_to_refund: when refunds arrive" in text and "Kaplan-Meier" in text
    metrics = section(text, " Metrics ", "Relative lift with")
    assert "time_to_refund lower is better mean days within the first 30, censoring-aware" in metrics
    assert "could be followed for the full 30 days" in metrics and "contact_rate (mature units only)" in metrics
    interim = words(run, "instant_refunds_interim")
    assert "Who has a value" in interim and "different mix" not in section(interim, " Verdict ", "Decision rule.")
