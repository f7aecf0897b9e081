"""The rollout (DiD) readout's pieces on the sample data, without papermill: what the page says and draws.

The sample ``data/rollout_panel.parquet`` knows its truth (``data/README.md``):
contact rate -2%, -4%, -6%, -8% in the first four weeks after launch and -10%
from then on; refund rate -5%; time to refund -10%; parallel trends exact on
the log scale. The end-to-end run (``abkit readout``) is in
``tests/test_readout.py``; here each step of ``abkit/templates/did_readout.ipynb``
runs in-process, so failures point at the function that is wrong.
"""

from __future__ import annotations

import html
import math
import re
import warnings
from dataclasses import replace
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import abkit.did as did  # noqa: E402
import abkit.verdict  # noqa: E402
from abkit.errors import DataError  # noqa: E402
from abkit.readout import rollout  # noqa: E402
from abkit.spec import load_spec  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "refund_policy_rollout.yaml"


def visible(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


@pytest.fixture(scope="module")
def spec():
    return load_spec(SPEC)


@pytest.fixture(scope="module")
def readout(spec):
    """The template's steps, with every warning an error (no NaN bands, no 0/0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", did.DiDWarning)  # TWFE's Goodman-Bacon warning is reported
        panel = rollout.load_panel(spec)
        o = spec.outcome
        cs = rollout.staggered(panel, spec, o)
        overall = cs.aggregate("simple")
        dynamic = cs.aggregate("dynamic", min_e=-spec.leads, max_e=spec.lags)
        pretrend = dynamic.pretrend()
        main = rollout.effect(overall, panel, o, pretrend=pretrend)
        timing = rollout.timing(dynamic, panel, o)
        checks = rollout.robustness(panel, spec, main)
        secondary = rollout.secondary_effects(panel, spec)
        trends_fig = rollout.plot_trends(panel, o).figure
        event_fig = rollout.plot_event_study(dynamic, main, panel).figure
    yield dict(
        panel=panel,
        cs=cs,
        overall=overall,
        dynamic=dynamic,
        pretrend=pretrend,
        main=main,
        timing=timing,
        checks=checks,
        secondary=secondary,
        trends_fig=trends_fig,
        event_fig=event_fig,
    )
    plt.close("all")


def truth_of(metric: str, events) -> float:
    """The true relative effect averaged (on the log scale) over the given event times."""
    tau = pd.read_parquet(ROOT / "data" / "rollout_panel.parquet").attrs["true_effects"][metric]
    return math.expm1(float(np.mean([math.log1p(tau[e]) for e in events])))


def test_main_estimate_and_its_timing_cover_the_truth(readout):
    main, tm, panel = readout["main"], readout["timing"], readout["panel"]
    launches = panel.cohorts  # {20: 5, 30: 5, 40: 5}
    last = int(panel.periods.max())
    truth = truth_of("contact_rate", [w - g for g in launches for w in range(g, last + 1)])
    assert main.rel_ci_lower <= truth <= main.rel_ci_upper and main.rel < 0
    assert main.df == 19 and main.significant and main.outcome_word == "better"
    assert tm.early_periods == (0, 3) and tm.late_periods == (4, 12)
    assert tm.early.rel_ci_lower <= truth_of("contact_rate", range(0, 4)) <= tm.early.rel_ci_upper
    assert tm.late.rel_ci_lower <= truth_of("contact_rate", range(4, 13)) <= tm.late.rel_ci_upper
    text = rollout.timing_text(tm, panel)
    assert re.fullmatch(
        r"Over time: -\d+\.\d% in weeks 0\u20133 after launch \(95% CI -\d+\.\d% to [+-]\d+\.\d%\); "
        r"-\d+\.\d% in weeks 4\u201312 after launch \(95% CI -\d+\.\d% to -\d+\.\d%\)\.",
        text,
    ), text


def test_secondary_outcomes_cover_their_truth_and_carry_a_pretrend_test(readout):
    truth = {"refund_rate": -0.05, "time_to_refund_hours": -0.10}
    for o, e, err in readout["secondary"]:
        assert err is None and e is not None
        assert e.rel_ci_lower <= truth[o.name] <= e.rel_ci_upper, (o.name, e)
        assert 0.05 < e.pretrend_p < 1


def test_pretrend_is_the_public_test_of_the_leads_shown(readout, spec):
    pt, cs = readout["pretrend"], readout["cs"]
    assert pt == cs.pretrend_test(leads=spec.leads)
    assert pt.event_times == tuple(float(e) for e in range(-spec.leads, -1))  # -6..-2; -1 is the reference
    assert (pt.df1, pt.df2) == (5, 15) and "jackknife" in pt.method and pt.p_value > 0.05
    assert readout["main"].pretrend_p == pt.p_value
    page = rollout.trends_html(
        readout["trends_fig"], readout["panel"], spec.outcome, pt, readout["dynamic"], readout["main"]
    )
    words = visible(page)
    assert "No sign of diverging trends before launch" in words
    assert "over the 5 weeks before launch (weeks -6 to -2, each against week -1)" in words
    assert f"F(5, 15) = {pt.statistic:.2f}, p = {pt.p_value:.3f}" in words
    assert re.search(r"it could miss a steady drift of about \d\.\d% a week before launch", words)
    assert "0 (reference)" in words and "nan" not in words.lower()
    # one row per pre-launch week, rounded to one decimal
    rows = re.findall(r"<tr><td>(-\d+)</td><td>([^<]+)</td>", page)
    assert [int(r[0]) for r in rows] == list(range(-spec.leads, 0))
    assert all(re.fullmatch(r"[+-]\d+\.\d%", v) for _, v in rows[:-1]) and rows[-1][1] == "0 (reference)"


def test_event_study_chart_and_caption(readout, spec):
    fig, dyn = readout["event_fig"], readout["dynamic"]
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("reference (0 by construction)" in t for t in legend) and any("uniform band" in t for t in legend)
    assert ax.get_xlabel() == "weeks since launch (0 = launch week)" and "(%)" in ax.get_ylabel()
    t = dyn.to_frame()
    assert t["reference"].sum() == 1 and t.loc[t.reference, "event_time"].item() == -1
    assert np.isfinite(dyn.critical_value) and dyn.critical_value > 2.09  # wider than t(19) pointwise
    words = visible(rollout.event_study_html(fig, dyn, readout["main"], readout["panel"], readout["timing"]))
    assert f"it uses {dyn.critical_value:.2f} standard errors instead of 2.09" in words
    assert "the hollow reference point: 0 by construction" in words and "Over time:" in words


def test_trends_chart_is_the_raw_difference_in_differences(readout, spec):
    """One line per launch cohort, relative to the never-launched markets: flat around 100 before launch (the
    model's parallel trends), about 10% lower well after it."""
    ax = readout["trends_fig"].axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    assert sorted(lines) == [f"launched in week {w} (5 markets)" for w in (20, 30, 40)]
    assert "relative to the never-launched markets" in ax.get_title(loc="left")
    for w, ln in zip((20, 30, 40), (lines[f"launched in week {w} (5 markets)"] for w in (20, 30, 40))):
        x, y = np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float)
        assert abs(np.mean(np.log(y[x < 20] / 100))) < 1e-12  # indexed (geometric mean) before the first launch
        assert abs(np.mean(y[(x >= w - 8) & (x < w)]) - 100) < 6  # no drift before its launch
        assert np.mean(y[x >= w + 4]) < 95  # the effect once ramped up
    # without never-launched units: each cohort's own level, indexed
    panel = readout["panel"]
    launched = replace(panel, frame=panel.frame[panel.frame[rollout.FIRST].notna()].reset_index(drop=True))
    ax2 = rollout.plot_trends(launched, spec.outcome)
    assert (
        "by launch cohort" in ax2.get_title(loc="left")
        and len([ln for ln in ax2.get_lines() if not ln.get_label().startswith("_")]) == 3
    )
    plt.close("all")


def test_effects_table(readout, spec):
    words = visible(
        rollout.effects_html(
            readout["main"],
            readout["secondary"],
            spec.outcomes,
            dropped=readout["panel"].dropped,
            panel=readout["panel"],
        )
    )
    assert "pre-trend p" in words and "Student's t with 19 degrees of freedom" in words
    assert "Customer-service contacts per order; contacts / orders; lower is better" in words
    assert "does not rely on a large number of units" not in words


def test_robustness_reads_correctly(readout):
    checks = {c.name: c for c in readout["checks"].checks}
    assert set(checks) == {
        "Main estimate",
        "Other control group",
        "Two-way fixed effects",
        "Placebo launch 4 weeks early",
        "Placebo launch 8 weeks early",
    }
    other, tw = checks["Other control group"], checks["Two-way fixed effects"]
    assert other.effect.rel < 0 and other.verdict == "consistent with the main estimate"
    assert tw.effect.rel < 0 and math.isfinite(tw.wild_p)
    assert tw.verdict.startswith("consistent with the main estimate") and tw.good is None
    for name in ("Placebo launch 4 weeks early", "Placebo launch 8 weeks early"):
        c = checks[name]
        assert c.good and c.verdict == "passes: no fake effect" and c.wild_p > 0.05 and c.effect.p_value > 0.05
    page = visible(rollout.robustness_html(readout["checks"], readout["main"], readout["panel"]))
    assert "Goodman-Bacon note." in page and "read its number as a comparison only" in page
    assert "therefore biased" not in page
    bacon = readout["checks"].bacon
    assert bacon.weight.sum() == pytest.approx(1.0) and "later vs earlier treated" in set(bacon.kind)


def test_verdict_box_says_worked_and_how_it_developed(readout, spec):
    main, panel = readout["main"], readout["panel"]
    v = abkit.verdict.decide_rollout(
        spec.outcome.name,
        spec.outcome.better,
        main.rel,
        main.rel_ci_lower,
        main.rel_ci_upper,
        main.p_value,
        readout["pretrend"].p_value,
        alpha=spec.alpha,
        bootstrap_p=main.bootstrap_p,
        placebo_p=readout["checks"].placebo_p_values,
        where="launched markets",
    )
    assert v.label == "Worked"
    words = visible(rollout.verdict_html(v, main, spec, readout["timing"], panel))
    assert re.search(r"The launch cut contact_rate by \d\.\d% \(95% CI \d\.\d% to \d+\.\d%\)", words)
    assert "Over time: " in words and "Decision rule." in words


def test_planted_pre_trend_makes_the_readout_invalid(spec, tmp_path):
    """Launched markets' contact rate drifts 4% a week relative to the rest before launch: the pre-trend test
    fails, the page says so, and the verdict is Invalid."""
    p = pd.read_parquet(ROOT / "data" / "rollout_panel.parquet")
    e = (p.week - p.launch_week).astype("float").to_numpy()
    drift = np.where(np.isfinite(e) & (e < 0), np.exp(0.04 * (e + 1)), 1.0)
    p["contacts"] = np.round(p["contacts"] * drift).astype("int64")
    path = tmp_path / "drift.parquet"
    p.to_parquet(path)
    bad = replace(spec, data=str(path))
    panel = rollout.load_panel(bad)
    cs = rollout.staggered(panel, bad, bad.outcome)
    dyn = cs.aggregate("dynamic", min_e=-bad.leads, max_e=bad.lags, reps=0)
    pt = dyn.pretrend()
    assert pt.p_value < 0.01
    main = rollout.effect(cs.aggregate("simple", reps=0), panel, bad.outcome, pretrend=pt)
    words = visible(
        rollout.trends_html(rollout.plot_trends(panel, bad.outcome).figure, panel, bad.outcome, pt, dyn, main)
    )
    assert "Pre-trends fail: do not trust the estimate." in words
    v = abkit.verdict.decide_rollout(
        bad.outcome.name,
        bad.outcome.better,
        main.rel,
        main.rel_ci_lower,
        main.rel_ci_upper,
        main.p_value,
        pt.p_value,
        alpha=bad.alpha,
    )
    assert v.label == "Invalid"
    plt.close("all")


def test_too_many_leads_is_a_clear_error(readout, spec):
    cs = readout["cs"]
    dyn = cs.aggregate("dynamic", min_e=-25, max_e=4, reps=0)
    with pytest.raises(DataError, match=r"24 pre-launch event times .* 20 units.*pretrend_test\(leads=20\)"):
        dyn.pretrend()
    nan_test = rollout.pretrend_of(dyn)  # secondary outcomes: reported, not fatal
    assert not math.isfinite(nan_test.p_value) and "20 units" in nan_test.method
    words = visible(
        rollout.trends_html(readout["trends_fig"], readout["panel"], spec.outcome, nan_test, dyn, readout["main"])
    )
    assert "The pre-trend test could not be run" in words


def _readout_verdict(spec, frame, tmp_path):
    """The template's steps on ``frame``: panel, main effect (with its randomization test when few units
    launched), robustness and the verdict, as abkit/templates/did_readout.ipynb calls them."""
    path = tmp_path / "panel.parquet"
    frame.to_parquet(path)
    sp = replace(spec, data=str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", did.DiDWarning)
        panel = rollout.load_panel(sp)
        cs = rollout.staggered(panel, sp, sp.outcome)
        dyn = cs.aggregate("dynamic", min_e=-sp.leads, max_e=sp.lags, reps=0)
        pretrend = dyn.pretrend()
        main = rollout.effect(cs.aggregate("simple"), panel, sp.outcome, pretrend=pretrend)
        checks = rollout.robustness(panel, sp, main)
    _readout_verdict.robustness = checks
    v = abkit.verdict.decide_rollout(
        sp.outcome.name,
        sp.outcome.better,
        main.rel,
        main.rel_ci_lower,
        main.rel_ci_upper,
        main.p_value,
        pretrend.p_value,
        alpha=sp.alpha,
        bootstrap_p=main.bootstrap_p,
        placebo_p=checks.placebo_p_values,
        where=f"launched {rollout.plural(panel.unit)}",
        few_treated=main.few_treated,
        randomization_p=main.randomization_p,
        randomization_how=main.randomization_words,
    )
    return sp, panel, cs, main, v


def test_one_launched_market_is_never_worked_on_cluster_robust_evidence(spec, tmp_path):
    """One market of 20 launches and its contact rate falls 25%: the analytic and bootstrap p-values are tiny,
    and the old readout said "Worked". With one launched market of 20 no test over which market launched can
    reach p < 0.05, so the verdict is Inconclusive and says why, pointing to a synthetic control."""
    frame = abkit.simulate.rollout_panel(n_markets=20, cohorts={30: 1}, effects={"contact_rate": -0.25}, seed=3)
    sp, panel, cs, main, v = _readout_verdict(spec, frame, tmp_path)
    rob = _readout_verdict.robustness
    without_rule = abkit.verdict.decide_rollout(
        sp.outcome.name,
        sp.outcome.better,
        main.rel,
        main.rel_ci_lower,
        main.rel_ci_upper,
        main.p_value,
        0.5,
        alpha=sp.alpha,
        bootstrap_p=main.bootstrap_p,
    )
    assert without_rule.label == "Worked"  # what the p-values alone would have said
    assert main.p_value < 0.001 and main.few_treated == "only 1 launched market"
    assert main.randomization_p == pytest.approx(0.05) and not main.significant
    assert v.label == "Inconclusive" and v.display_label == "Inconclusive (1 launched market)"
    assert "Not established" in v.headline
    reasons = " ".join(v.reasons)
    assert "randomization p = 0.050" in reasons and "abkit.did.synthetic" in reasons
    page = visible(rollout.verdict_html(v, main, sp, None, panel))
    assert "the randomization test over which units launched decides instead" in page
    method = visible(rollout.methodology_html(sp, panel, cs))
    assert "Few units: 1 launched and 19 never-launched markets" in method
    placebos = [c for c in rob.checks if c.name.startswith("Placebo")]
    assert placebos and all(math.isfinite(c.randomization_p) and "randomization p" in c.verdict for c in placebos)
    assert rob.placebo_p_values == [c.randomization_p for c in placebos]


def test_one_launched_market_of_27_can_work_on_the_randomization_test(spec, tmp_path):
    """With 27 markets the exact randomization test can reach 1/27 = 0.037: a launched market whose fall is the
    largest of all 27 possible choices is "Worked", on that test's evidence (and says so)."""
    frame = abkit.simulate.rollout_panel(n_markets=27, cohorts={30: 1}, effects={"contact_rate": -0.4}, seed=3)
    _, _, _, main, v = _readout_verdict(spec, frame, tmp_path)
    assert main.few_treated == "only 1 launched market" and main.randomization_p == pytest.approx(1 / 27)
    assert v.label == "Worked" and "randomization p = 0.037" in v.headline
    assert "exact over all 27 ways to choose which markets launched" in " ".join(v.reasons)


def test_sample_rollout_is_not_few_treated(readout):
    """The sample rollout (15 launched, 5 never-launched markets) keeps its readout: no flag, no randomization."""
    main = readout["main"]
    assert main.few_treated is None and math.isnan(main.randomization_p)
    assert not readout["cs"].few_treated_clusters
