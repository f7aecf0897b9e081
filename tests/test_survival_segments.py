"""A time-to-event primary metric by segment and over time (the readout's "By <segment>" and "Effect over time").

Checked against independent computations: each segment's effect, SE and p-value equal
``abkit.analyze_time_to_event`` on that segment's rows alone (to 1e-12); Cochran's Q and its p-value
equal a hand computation (inverse-variance weights, scipy's chi-square); each cumulative point equals
``analyze_time_to_event`` on the units exposed up to that day, the last one the full analysis; segments
too small to estimate are refused with the reason; and a readout with a time-to-event primary shows both
sections (no section error).
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

import abkit
from abkit.readout import ab, render
from abkit.time_to_event import analyze_time_to_event, event_counts, event_counts_by

ROOT = Path(__file__).resolve().parent.parent
KEYS = ["effect", "se", "ci_lower", "ci_upper", "p_value", "control_value", "treatment_value", "rel_effect"]


def frame(n=6000, seed=3, arms=("control", "treatment")) -> pd.DataFrame:
    """Exponential times with a segment-dependent effect, uniform censoring, a covariate and exposure days."""
    rng = np.random.default_rng(seed)
    arm = rng.choice(np.array(arms), n)
    market = rng.choice(np.array(["DE", "FR", "UK", "NL"]), n, p=[0.4, 0.3, 0.2, 0.1])
    frail = rng.gamma(2.0, 0.5, n)
    hr = np.where(arm == "control", 1.0, np.where(market == "NL", 1.8, 1.3))
    t = rng.exponential(1.0, n) / (0.1 * frail * hr)
    c = rng.uniform(5, 45, n)
    return pd.DataFrame(
        {
            "variant": arm,
            "market": market,
            "day": pd.Timestamp("2026-09-01") + pd.to_timedelta(rng.integers(0, 10, n), unit="D"),
            "days": np.minimum(t, c),
            "refunded": (t <= c).astype(int),
            "pre_days": np.minimum(rng.exponential(1.0, n) / (0.1 * frail), 30),
        }
    )


def metric(covariate=None, resolution=None):
    return abkit.TimeToEvent("days", "refunded", horizon=20, name="ttr", covariate=covariate, resolution=resolution)


def assert_rows_equal(a: dict, b: dict, tol=1e-12):
    for k in KEYS:
        assert a[k] == pytest.approx(b[k], rel=tol, abs=tol), k
    assert (a["n_control"], a["n_treatment"]) == (b["n_control"], b["n_treatment"])


# --------------------------------------------------------------------------- segments
@pytest.mark.parametrize("covariate", [None, "pre_days"])
@pytest.mark.parametrize("resolution", [None, 0.25])
def test_each_segment_is_the_analysis_of_its_own_rows(covariate, resolution):
    df = frame(arms=("control", "treatment", "faster"))
    m = metric(covariate, resolution)
    seg = abkit.analyze_segments(df, m, by="market", correction="holm")
    rows = seg.to_frame()
    assert sorted(rows.market.unique()) == ["DE", "FR", "NL", "UK"] and not seg.not_estimable
    for r in rows.to_dict("records"):
        alone = analyze_time_to_event(df[df.market == r["market"]], m).to_frame()
        assert_rows_equal(r, alone[alone.variant == r["variant"]].iloc[0].to_dict())
    # Holm over the 8 segment x arm comparisons, by hand
    p = rows.p_value.to_numpy()
    order = np.argsort(p)
    holm = np.maximum.accumulate(np.minimum(1.0, (len(p) - np.arange(len(p))) * p[order]))
    assert rows.p_value_adjusted.to_numpy()[order] == pytest.approx(holm, rel=1e-12)
    # the overall result is abkit.analyze on all the rows
    full = abkit.analyze(df, m)
    assert seg.overall.row("ttr", "treatment")["effect"] == full.row("ttr", "treatment")["effect"]


def test_grouped_counts_are_the_counts_of_each_subset_in_memory_and_from_a_file(tmp_path):
    df = frame()
    df.loc[df.index[:7], "market"] = None  # rows without a segment: counted, left out
    m = metric("pre_days")
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    for data in (df, path):
        grouped = event_counts_by(data, m, "market")
        assert grouped.missing == 7
        for value, counts in grouped.counts.items():
            alone = event_counts(df[df.market == value], m)
            for arm, ev in alone.arms.items():
                got = counts.arms[arm]
                np.testing.assert_array_equal(got.table.time, ev.table.time)
                np.testing.assert_array_equal(got.table.events, ev.table.events)
                np.testing.assert_array_equal(got.table.removed, ev.table.removed)
                np.testing.assert_allclose(got.covariate_mean, ev.covariate_mean, rtol=1e-13)
                np.testing.assert_allclose(got.covariate_comoment, ev.covariate_comoment, rtol=1e-10)
                assert (got.rows, got.dropped, got.units) == (ev.rows, ev.dropped, ev.units)


def test_clustered_rows_by_segment_and_a_unit_in_two_segments():
    rng = np.random.default_rng(1)
    df = frame(1500)
    df["buyer"] = np.arange(len(df))
    extra = df.sample(600, random_state=2).assign(days=lambda d: d.days * rng.uniform(0.5, 1.5, len(d)))
    rows = pd.concat([df, extra], ignore_index=True)  # buyers with two refunds, same market and arm
    m = abkit.TimeToEvent("days", "refunded", horizon=20, name="ttr", unit="buyer")
    seg = abkit.analyze_segments(rows, m, by="market", correction=None)
    for r in seg.to_frame().to_dict("records"):
        alone = analyze_time_to_event(rows[rows.market == r["market"]], m).rows[0]
        assert_rows_equal(r, alone)
    moved = rows.copy()
    moved.loc[len(df), "market"] = "XX" if moved.loc[len(df), "market"] != "XX" else "YY"
    with pytest.raises(abkit.DataError, match="appears in several values of market"):
        abkit.analyze_segments(moved, m, by="market")


def test_cochran_q_is_the_hand_computation():
    df = frame(seed=5)
    seg = abkit.analyze_segments(df, metric(), by="market")
    rows = seg.to_frame()
    d, v = rows.effect.to_numpy(), rows.se.to_numpy() ** 2
    w = 1 / v
    pooled = (w * d).sum() / w.sum()
    q = (w * (d - pooled) ** 2).sum()
    (test,) = seg.heterogeneity().to_dict("records")
    assert test["Q"] == pytest.approx(q, rel=1e-12)
    assert test["df"] == 3
    assert test["p_value"] == pytest.approx(stats.chi2.sf(q, 3), rel=1e-10)
    assert test["i2"] == pytest.approx(max(0.0, (q - 3) / q), rel=1e-12)
    assert test["p_value"] < 0.05  # the simulated effect differs in NL: the test finds it


def test_segments_too_small_to_estimate_are_shown_with_the_reason_never_a_number():
    df = frame(2000)
    tiny = pd.DataFrame(
        {
            "variant": ["control", "control", "treatment"],  # one treated unit
            "market": "LU",
            "day": pd.Timestamp("2026-09-02"),
            "days": [3.0, 25.0, 4.0],
            "refunded": [1, 0, 1],
            "pre_days": 1.0,
        }
    )
    quiet = pd.DataFrame(
        {
            "variant": ["control"] * 3 + ["treatment"] * 3,  # no refund in treatment before the horizon
            "market": "BE",
            "day": pd.Timestamp("2026-09-02"),
            "days": [2.0, 6.0, 30.0, 25.0, 30.0, 22.0],
            "refunded": [1, 1, 0, 0, 0, 1],
            "pre_days": 1.0,
        }
    )
    early = pd.DataFrame(
        {
            "variant": ["control"] * 3 + ["treatment"] * 3,  # everyone in control refunded early: nobody at risk
            "market": "AT",
            "day": pd.Timestamp("2026-09-02"),
            "days": [2.0, 3.0, 4.0, 2.0, 30.0, 22.0],
            "refunded": [1, 1, 1, 1, 0, 0],
            "pre_days": 1.0,
        }
    )
    data = pd.concat([df, tiny, quiet, early], ignore_index=True)
    seg = abkit.analyze_segments(data, metric(), by="market")
    reasons = {r["market"]: r["reason"] for r in seg.not_estimable}
    assert reasons == {
        "LU": "arm 'treatment' has 1 unit with data (at least 2 are needed)",
        "BE": "no event in arm 'treatment' within the 20 days horizon",
        "AT": "nobody in arm 'control' is still at risk at the 20 days horizon",
    }
    assert set(seg.to_frame().market) == {"DE", "FR", "UK", "NL"}  # no number for them
    assert len(seg.heterogeneity()) == 1 and seg.heterogeneity().n_segments.item() == 4
    assert "Not estimable: AT (ttr, treatment): nobody in arm" in seg._repr_html_()
    assert "not estimable: 3 segment x metric x arm cell(s)" in seg.summary()
    # in the readout: a row that says so, in the table, not on the chart
    result = abkit.analyze(data, metric())
    shown = ab.segments(_Spec(), "market", result, data=data, metric=metric())
    assert len(shown.table) == 4 and len(shown.not_estimable) == 3
    ctx = render.segments_context(shown, None, _Spec())
    text = render.segments_html(shown, None, _Spec())
    assert [r["segment"] for r in ctx["rows"]] == ["AT", "BE", "DE", "FR", "LU", "NL", "UK"]
    assert "not estimable: no event in arm &#39;treatment&#39; within the 20 days horizon" in text


class _Primary:
    name = "ttr"
    better = "lower"
    is_time_to_event = True
    time_unit = "days"


class _Spec:
    """The few spec fields the segment and cumulative readout functions read."""

    variant, control, alpha, correction, date, mde = "variant", "control", 0.05, None, "day", None
    primary = _Primary()
    data_end = pd.Timestamp("2026-10-01").date()
    sequential = False


def test_a_segment_of_one_arm_only_is_not_estimable():
    df = frame(1500)
    only = df[df.market == "NL"].assign(market="SE", variant="control")
    seg = abkit.analyze_segments(pd.concat([df, only]), metric(), by="market")
    assert [(r["market"], r["reason"]) for r in seg.not_estimable] == [
        ("SE", "arm 'treatment' has 0 units with data (at least 2 are needed)")
    ]


def test_time_to_event_segments_refuse_moments_and_mixed_metrics():
    df = frame(500)
    with pytest.raises(abkit.AbkitError, match="no moments"):
        abkit.analyze_segments(abkit.moments(df, [abkit.Mean("days")], by="market"), metric(), by="market")
    with pytest.raises(abkit.AbkitError, match="on their own"):
        abkit.analyze_segments(df, [metric(), abkit.Mean("pre_days")], by="market")


# --------------------------------------------------------------------------- effect over time
def test_cumulative_points_are_the_analysis_of_the_units_exposed_so_far():
    df = frame()
    m = metric("pre_days")
    over, missing = ab.cumulative(_Spec(), data=df, metric=m)
    assert missing == 0 and len(over) == df.day.nunique()
    for day in (over.date.iloc[0], over.date.iloc[4]):
        alone = analyze_time_to_event(df[df.day <= day], m).rows[0]
        got = over[over.date == day].iloc[0]
        assert got.rel_effect == pytest.approx(alone["rel_effect"], rel=1e-12)
        assert got.rel_ci_lower == pytest.approx(alone["rel_ci_lower"], rel=1e-12)
        assert got.p_value == pytest.approx(alone["p_value"], rel=1e-10)
        assert got.n == alone["n_control"] + alone["n_treatment"]
    last = over.iloc[-1]
    full = abkit.analyze(df, m).row("ttr", "treatment")
    for k in ("rel_effect", "rel_ci_lower", "rel_ci_upper", "p_value", "control_value"):
        assert last[k] == pytest.approx(full[k], rel=1e-12), k


def test_cumulative_skips_days_an_arm_cannot_be_estimated_and_counts_rows_without_a_date():
    df = frame(3000)
    first = df.day.min()
    df = df[~((df.day == first) & (df.variant == "treatment"))].copy()  # day 1: control only
    df.loc[df.index[:5], "day"] = pd.NaT
    over, missing = ab.cumulative(_Spec(), data=df, metric=metric())
    assert missing == 5
    assert over.date.min() > first and len(over) == df.day.nunique() - 1
    fig = render.plot_cumulative(over, _Spec()).figure
    words = render.cumulative_html(fig, over, _Spec(), missing)
    assert "not the estimate as it would have read on that day" in words and "Oct 01" in words


def test_clustered_primary_over_time_is_refused_in_words():
    m = abkit.TimeToEvent("days", "refunded", horizon=20, name="ttr", unit="buyer")
    with pytest.raises(abkit.AbkitError, match="clustered by 'buyer'"):
        ab.cumulative(_Spec(), data=frame(200).assign(buyer=range(200)), metric=m)


# --------------------------------------------------------------------------- the readout
def test_readout_with_a_time_to_event_primary_shows_both_sections(tmp_path):
    raw = yaml.safe_load((ROOT / "specs" / "instant_refunds.yaml").read_text(encoding="utf-8"))
    raw["data"] = str((ROOT / "data" / "aftersales_ab.parquet").resolve())
    for m in raw["metrics"]:
        m.pop("primary", None)
        if m["name"] == "time_to_refund":
            m["primary"] = True
    spec_path = tmp_path / "tte_primary.yaml"
    spec_path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    script = Path(sys.executable).with_name("abkit")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "abkit.cli"]
    proc = subprocess.run(
        [*cmd, "readout", str(spec_path), "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (tmp_path / "out" / "tte_primary" / "readout.html").read_text(encoding="utf-8")
    text = re.sub(r"<style.*?</style>", " ", text, flags=re.S)
    words = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))
    assert "could not be computed" not in words
    assert "Effect over time" in words and "not the estimate as it would have read on that day" in words
    for column in ("market", "buyer_type", "category"):
        assert f"By {column}" in words
    assert words.count("Cochran's Q =") == 3
    # the market table's DE row is the analysis of the DE buyers alone
    spec = abkit.load_spec(spec_path)
    m = next(x for x in spec.build_metrics() if x.name == "time_to_refund")
    data = pd.read_parquet(raw["data"])
    alone = analyze_time_to_event(data[data.market == "DE"], m).rows[0]
    lift = f"{100 * alone['rel_effect']:+.1f}%".replace("-", "\u2212")
    de = re.search(r" DE 5,900 / 6,144 (\S+) ", words)
    assert de and de.group(1).replace("-", "\u2212") == lift
