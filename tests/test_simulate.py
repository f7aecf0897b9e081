"""Tests of abkit.simulate: determinism, schema, invariants, and known truth.

The truth checks are independent of abkit's estimators: ratio-of-sums per
arm with a textbook delta-method standard error written out here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from abkit import simulate as sim
from abkit.errors import AbkitError

AB_COLUMNS = {
    "buyer_id": "int64",
    "variant": "category",
    "orders": "int64",
    "returns": "int64",
    "refunds": "int64",
    "refund_amount": "float64",
    "time_to_refund_hours": "float64",
    "contacts": "int64",
    "csat_sum": "int64",
    "csat_responses": "int64",
    "nps_score": "float64",
    "repeat_purchase_30d": "int64",
    "abuse_loss": "float64",
    "pre_orders": "int64",
    "pre_returns": "int64",
    "pre_refunds": "int64",
    "pre_refund_amount": "float64",
    "pre_contacts": "int64",
    "pre_csat_sum": "int64",
    "pre_csat_responses": "int64",
    "pre_repeat_purchase_30d": "int64",
    "pre_abuse_loss": "float64",
    "exposure_date": "datetime64[us]",
    "market": "category",
    "category": "category",
    "buyer_type": "category",
}
PRE_COLUMNS = [c for c in AB_COLUMNS if c.startswith("pre_")]
EFFECTS = {"refund_rate": -0.06, "contact_rate": -0.08, "time_to_refund_hours": -0.05, "csat": 0.01}
Z = 4.0  # tolerance in standard errors for the known-truth checks


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    return sim.ab_data(400_000, effects=EFFECTS, seed=11)


def ratio_and_var(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """Ratio of sums and its delta-method variance (units iid)."""
    r = num.sum() / den.sum()
    resid = num - r * den
    n = num.size
    return r, resid.var(ddof=1) * n / den.sum() ** 2


def arm_ratio(df: pd.DataFrame, arm: str, num: str, den: str) -> tuple[float, float]:
    d = df[df["variant"] == arm]
    return ratio_and_var(d[num].to_numpy(float), d[den].to_numpy(float))


def rel_effect_z(df, num, den, truth, treatment="treatment", control="control") -> float:
    rt, vt = arm_ratio(df, treatment, num, den)
    rc, vc = arm_ratio(df, control, num, den)
    se_log = np.sqrt(vt / rt**2 + vc / rc**2)
    return (np.log(rt / rc) - np.log1p(truth)) / se_log


# ---------------------------------------------------------------- ab_data ---


def test_same_seed_same_frame_and_different_seed_differs():
    a = sim.ab_data(5_000, effects=EFFECTS, seed=7)
    b = sim.ab_data(5_000, effects=EFFECTS, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs == b.attrs
    c = sim.ab_data(5_000, effects=EFFECTS, seed=8)
    assert not a["orders"].equals(c["orders"])


def test_multi_block_generation_is_deterministic():
    # more than one 2**18-buyer block, generated in threads
    a = sim.ab_data(300_000, seed=3)
    b = sim.ab_data(300_000, seed=3)
    assert a.equals(b)  # NaN-aware, exact; much faster than assert_frame_equal here


def test_columns_and_dtypes():
    df = sim.ab_data(2_000, arms=("ctl", "b", "c"), seed=1)
    assert list(df.columns) == list(AB_COLUMNS)
    kinds = {c: "datetime64" if str(t).startswith("datetime64") else str(t) for c, t in df.dtypes.items()}
    assert kinds == {c: t.split("[")[0] for c, t in AB_COLUMNS.items()}
    assert list(df["variant"].cat.categories) == ["ctl", "b", "c"]
    assert df["buyer_id"].is_unique
    assert len(df) == 2_000


def test_invariants(big):
    df = big
    for p in ("", "pre_"):
        orders, returns, refunds = df[p + "orders"], df[p + "returns"], df[p + "refunds"]
        assert (returns <= orders).all() and (refunds <= returns).all() and (refunds >= 0).all()
        resp, csum, contacts = df[p + "csat_responses"], df[p + "csat_sum"], df[p + "contacts"]
        assert (resp <= contacts).all() and (resp >= 0).all()
        assert (csum >= resp).all() and (csum <= 5 * resp).all()
        amount = df[p + "refund_amount"]
        assert ((amount > 0) == (refunds > 0)).all()
        assert (df[p + "abuse_loss"] >= 0).all()
        assert set(np.unique(df[p + "repeat_purchase_30d"])) <= {0, 1}
    assert (df["orders"] >= 1).all()
    assert (df["pre_orders"] >= 0).all() and (df["pre_orders"] >= 1).mean() > 0.8
    ttr = df["time_to_refund_hours"]
    assert (ttr.isna() == (df["refunds"] == 0)).all()
    assert (ttr.dropna() > 0).all()
    nps = df["nps_score"].dropna()
    assert ((nps >= 0) & (nps <= 10) & (nps == np.round(nps))).all()
    assert abs(df["nps_score"].notna().mean() - 0.3) < 0.005
    assert (df["abuse_loss"] == 0).mean() > 0.98  # mostly zero, rare heavy losses


def test_time_to_refund_shape(big):
    ttr = big.loc[big["variant"] == "control", "time_to_refund_hours"].dropna()
    p50, p90 = ttr.quantile([0.5, 0.9])
    assert 40 < p50 < 60 and 120 < p90 < 180


def test_allocation_shares():
    n = 200_000
    df = sim.ab_data(n, allocation=(0.2, 0.8), seed=5)
    share = (df["variant"] == "treatment").mean()
    assert abs(share - 0.8) < Z * np.sqrt(0.8 * 0.2 / n)
    assert df.attrs["assignment_probabilities"] == pytest.approx([0.2, 0.8])


def test_srm_inflates_treatment_share():
    n = 200_000
    df = sim.ab_data(n, srm=0.02, seed=6)
    share = (df["variant"] == "treatment").mean()
    assert abs(share - 0.52) < Z * np.sqrt(0.52 * 0.48 / n)
    assert df.attrs["allocation"] == [0.5, 0.5]
    # three arms: control loses 3 points, shared by the others in proportion to allocation
    df3 = sim.ab_data(n, arms=("control", "a", "b"), allocation=(0.5, 0.25, 0.25), srm=0.03, seed=6)
    expected = np.array([0.47, 0.265, 0.265])
    assert df3.attrs["assignment_probabilities"] == pytest.approx(expected)
    shares = df3["variant"].value_counts(normalize=True).reindex(["control", "a", "b"]).to_numpy()
    assert np.all(np.abs(shares - expected) < Z * np.sqrt(expected * (1 - expected) / n))


def test_pre_post_correlation(big):
    for col in ("orders", "refunds", "contacts", "refund_amount"):
        r = np.corrcoef(big[col], big["pre_" + col])[0, 1]
        assert 0.4 <= r <= 0.8, (col, r)


def test_known_relative_effects_on_ratio_metrics(big):
    for metric, truth in (
        ("refund_rate", -0.06),
        ("contact_rate", -0.08),
        ("csat", 0.01),
        ("return_rate", 0.0),
        ("abuse_loss", 0.0),
    ):
        d = sim.AB_METRICS[metric]
        assert abs(rel_effect_z(big, d.numerator, d.denominator, truth)) < Z, metric


def test_known_relative_effect_on_time_to_refund(big):
    g = big.groupby("variant", observed=True)["time_to_refund_hours"]
    mean, var, n = g.mean(), g.var(), g.count()
    se_log = np.sqrt((var / n / mean**2).sum())
    z = (np.log(mean["treatment"] / mean["control"]) - np.log1p(-0.05)) / se_log
    assert abs(z) < Z


def test_true_values_match_large_sample(big):
    """The analytic population values, checked arm by arm against the sample."""
    tv = sim.true_values(EFFECTS)
    assert list(tv.columns) == ["control", "treatment"]
    for arm in ("control", "treatment"):
        d = big[big["variant"] == arm]
        for metric, md in sim.AB_METRICS.items():
            if md.kind == "ratio":
                est, var = ratio_and_var(d[md.numerator].to_numpy(float), d[md.denominator].to_numpy(float))
                se = np.sqrt(var)
            else:
                x = d[md.numerator].dropna()
                est, se = x.mean(), x.std() / np.sqrt(len(x))
            assert abs(est - tv.loc[metric, arm]) < Z * se, (arm, metric, est, tv.loc[metric, arm])
        s = d["nps_score"].dropna()
        promoter, detractor = (s >= 9).astype(float), (s <= 6).astype(float)
        nps = 100 * (promoter.mean() - detractor.mean())
        se = 100 * np.sqrt((promoter - detractor).var() / len(s))
        assert abs(nps - tv.loc["nps", arm]) < Z * se


def test_attrs_hold_true_effects_and_values(big):
    te = big.attrs["true_effects"]
    assert set(te) == {"treatment"}
    for k, v in EFFECTS.items():
        assert te["treatment"][k] == v
    # not configured: implied by the mechanism (fewer refunds -> less refund money)
    assert te["treatment"]["refund_amount"] == pytest.approx(-0.06, abs=1e-12)
    assert te["treatment"]["orders"] == 0.0
    tv = sim.true_values(EFFECTS)
    for arm in ("control", "treatment"):
        for metric, value in big.attrs["true_values"][arm].items():
            assert value == pytest.approx(tv.loc[metric, arm], rel=1e-14)


@pytest.mark.parametrize(
    "effects",
    [
        {"return_rate": -0.1, "refund_rate": -0.02},
        {"return_rate": 0.2, "contact_rate": 0.0, "refund_amount": 0.05},
        {"orders": 0.1, "refund_amount": -0.03, "abuse_loss": -0.3},
        {"csat": -0.05, "repeat_purchase_30d": 0.05, "time_to_refund_hours": 0.1},
        {"csat": 0.2},
    ],
)
def test_configured_effects_are_exact_in_population_values(effects):
    tv = sim.true_values(effects)
    for metric, e in effects.items():
        assert tv.loc[metric, "treatment"] / tv.loc[metric, "control"] - 1 == pytest.approx(e, abs=1e-12)


def test_implied_effects_follow_the_mechanism():
    te = sim.true_effects({"return_rate": 0.1})["treatment"]
    assert te["refund_rate"] == pytest.approx(0.1)  # refunds per return unchanged
    assert 0 < te["contact_rate"] < 0.1  # return-driven contacts only
    assert te["refund_amount"] == pytest.approx(0.1)
    assert te["csat"] == 0.0 and te["orders"] == 0.0
    te = sim.true_effects({"orders": 0.2})["treatment"]
    assert te["refund_rate"] == 0.0 and te["contact_rate"] == 0.0
    assert te["refund_amount"] == pytest.approx(0.2)


def test_per_arm_effects_and_true_effects():
    eff = {"b": {"contact_rate": -0.05}, "c": {"contact_rate": -0.1, "csat": 0.02}}
    df = sim.ab_data(1_000, arms=("a", "b", "c"), effects=eff, seed=2)
    te = df.attrs["true_effects"]
    assert set(te) == {"b", "c"}
    assert te["b"]["contact_rate"] == -0.05 and te["b"]["csat"] == 0.0
    assert te["c"]["contact_rate"] == -0.1 and te["c"]["csat"] == 0.02


def test_effects_never_touch_pre_period():
    strong = {
        "orders": 0.3,
        "return_rate": 0.3,
        "refund_rate": -0.4,
        "contact_rate": -0.5,
        "refund_amount": 0.5,
        "csat": -0.2,
        "repeat_purchase_30d": 0.1,
        "abuse_loss": 2.0,
    }
    a = sim.ab_data(50_000, effects=strong, seed=9)
    b = sim.ab_data(50_000, seed=9)
    cols = ["buyer_id", "variant"] + PRE_COLUMNS
    pd.testing.assert_frame_equal(a[cols], b[cols])
    assert not a["orders"].equals(b["orders"])


def test_no_leak_into_pre_period_in_distribution(big):
    # pre-period ratios do not differ by arm (randomization + no effect)
    for num, den in (("pre_refunds", "pre_orders"), ("pre_contacts", "pre_orders")):
        assert abs(rel_effect_z(big, num, den, 0.0)) < Z


def test_unknown_effect_name_raises_with_valid_names():
    with pytest.raises(AbkitError) as info:
        sim.ab_data(100, effects={"refund_rat": -0.05})
    msg = str(info.value)
    assert "refund_rat" in msg and "refund_rate" in msg and "contact_rate" in msg
    assert isinstance(info.value, ValueError)
    with pytest.raises(AbkitError, match="bogus"):
        sim.ab_data(100, arms=("c", "t"), effects={"t": {"bogus": 0.1}})
    with pytest.raises(AbkitError, match="unknown effect metric 'nps'"):
        sim.true_values({"nps": 0.1})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(effects={"return_rate": 0.5}), "return_rate"),
        (dict(effects={"csat": 0.3}), "csat"),
        (dict(effects={"refund_rate": -1.0}), "refund_rate"),
        (dict(effects={"control": {"csat": 0.01}}), "control arm"),
        (dict(srm=0.5), "srm"),
        (dict(allocation=(0.5, 0.0)), "allocation"),
        (dict(arms=("only",)), "arms"),
        (dict(arms=("a", "a")), "unique"),
        (dict(seed=-1), "seed"),
    ],
)
def test_invalid_arguments_raise(kwargs, match):
    with pytest.raises(AbkitError, match=match):
        sim.ab_data(100, **kwargs)


# ----------------------------------------------------------- rollout_panel ---


def test_panel_shape_columns_and_cohorts():
    df = sim.rollout_panel(seed=1)
    assert df.shape == (20 * 52, 7)
    assert list(df.columns) == [
        "market",
        "week",
        "launch_week",
        "orders",
        "contacts",
        "refunds",
        "time_to_refund_hours",
    ]
    assert str(df["launch_week"].dtype) == "Int64"
    assert df["week"].dtype == np.int64 and df["orders"].dtype == np.int64
    assert sorted(df["market"].unique()) == [f"M{i:02d}" for i in range(1, 21)]
    assert (df.groupby("market")["week"].apply(list) == [list(range(1, 53))] * 20).all()
    per_market = df.groupby("market")["launch_week"].agg(["first", "nunique"])
    assert (per_market["nunique"] <= 1).all()  # constant within market
    counts = per_market["first"].value_counts(dropna=False)
    assert counts.loc[20] == 5 and counts.loc[30] == 5 and counts.loc[40] == 5
    assert per_market["first"].isna().sum() == 5  # never treated: <NA>
    assert df.attrs["cohorts"] == {"20": 5, "30": 5, "40": 5}
    assert (df["refunds"] <= df["orders"]).all()
    assert (df["time_to_refund_hours"].isna() == (df["refunds"] == 0)).all()


def test_panel_custom_cohorts_and_determinism():
    a = sim.rollout_panel(12, 30, cohorts={10: 4, 20: 2}, seed=4)
    b = sim.rollout_panel(12, 30, cohorts={10: 4, 20: 2}, seed=4)
    pd.testing.assert_frame_equal(a, b)
    first = a.groupby("market")["launch_week"].first()
    assert (first == 10).sum() == 4 and (first == 20).sum() == 2 and first.isna().sum() == 6


def test_panel_zero_effect_before_launch_and_known_effect_after():
    ramp = lambda e: -0.10 * np.minimum(1.0, (e + 1) / 5)  # noqa: E731
    eff = {"contact_rate": ramp, "refund_rate": [-0.02, -0.05], "time_to_refund_hours": -0.1}
    treated_df = sim.rollout_panel(seed=3, effects=eff)
    base = sim.rollout_panel(seed=3)
    lw = treated_df["launch_week"]
    treated = (lw.notna() & (treated_df["week"] >= lw.fillna(10**6))).to_numpy(bool)
    # untreated market-weeks (pre-launch and never-treated) are identical with or without effects
    pd.testing.assert_frame_equal(treated_df[~treated], base[~treated])
    pd.testing.assert_frame_equal(treated_df[["orders"]], base[["orders"]])
    te = treated_df.attrs["true_effects"]
    assert len(te["contact_rate"]) == 52 - 20 + 1
    assert te["contact_rate"][:6] == pytest.approx(list(ramp(np.arange(6))))
    assert te["refund_rate"][:3] == [-0.02, -0.05, -0.05]
    assert set(te["time_to_refund_hours"]) == {-0.1}
    # effect on the treated cells (same latent draws as `base`, so noise mostly cancels)
    t = treated_df[treated]
    b = base[treated]
    assert t["contacts"].sum() / b["contacts"].sum() - 1 == pytest.approx(-0.09, abs=0.02)
    assert t["refunds"].sum() / b["refunds"].sum() - 1 == pytest.approx(-0.05, abs=0.02)
    ttr_ratio = (t["time_to_refund_hours"] / b["time_to_refund_hours"]).median()
    assert ttr_ratio == pytest.approx(0.9, abs=0.03)
    levels = treated_df.attrs["true_att_levels"]["contact_rate"]
    assert len(levels) == len(te["contact_rate"]) and all(x < 0 for x in levels)


def test_panel_invalid_arguments():
    with pytest.raises(AbkitError, match="valid metrics"):
        sim.rollout_panel(effects={"orders": 0.1})
    with pytest.raises(AbkitError, match="n_markets"):
        sim.rollout_panel(cohorts={20: 15, 30: 10})
    with pytest.raises(AbkitError, match="week"):
        sim.rollout_panel(cohorts={60: 2})


# ------------------------------------------------------------------- CLI ---


def test_write_samples_cli(tmp_path, capsys):
    assert sim.main(["--write-samples", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    names = sorted(os.listdir(tmp_path))
    assert names == [
        "aftersales_ab.parquet",
        "aftersales_ab_3arm_srm.parquet",
        "aftersales_ab_interim.parquet",
        "one_market_panel.parquet",
        "programme_app_label.parquet",
        "programme_dropoff_reminder.parquet",
        "programme_refund_tracker.parquet",
        "rollout_panel.parquet",
    ]
    assert "aftersales_ab.parquet" in out
    total = sum(os.path.getsize(tmp_path / n) for n in names)
    assert total < 5_000_000
    ab = pd.read_parquet(tmp_path / "aftersales_ab.parquet")
    assert len(ab) == 40_000 and ab.attrs["true_effects"]["treatment"]["refund_rate"] == -0.06
    three = pd.read_parquet(tmp_path / "aftersales_ab_3arm_srm.parquet")
    assert list(three["variant"].cat.categories) == ["control", "chatbot", "chatbot_plus"]
    assert three.attrs["srm"] == 0.03
    panel = pd.read_parquet(tmp_path / "rollout_panel.parquet")
    assert str(panel["launch_week"].dtype) == "Int64" and len(panel) == 20 * 52
    interim = pd.read_parquet(tmp_path / "aftersales_ab_interim.parquet")
    assert interim["exposure_date"].max() < pd.Timestamp("2026-09-13")
    assert interim["buyer_id"].isin(ab["buyer_id"]).all()
    one = pd.read_parquet(tmp_path / "one_market_panel.parquet")
    assert len(one) == 30 * 104 and one.attrs["launched_market"] == "DE" and one.attrs["true_effect"] == -0.10
    assert one.loc[one.launched == 1, "market"].unique().tolist() == ["DE"] and one.week[one.launched == 1].min() == 79
    committed = pd.read_parquet(Path(__file__).resolve().parent.parent / "data" / "one_market_panel.parquet")
    pd.testing.assert_frame_equal(one, committed)  # data/ holds exactly what write_samples makes
    # the demo programme's small contact-rate tests: few columns, the truth kept, a few hundred KB in all
    label = pd.read_parquet(tmp_path / "programme_app_label.parquet")
    assert list(label.columns) == list(sim.PROGRAMME_COLUMNS) and len(label) == 30_000
    assert label.attrs["true_effects"]["treatment"]["contact_rate"] == -0.05
    assert sum(os.path.getsize(tmp_path / n) for n in names if n.startswith("programme_")) < 400_000
    # the committed files hold what the generator writes
    data = Path(__file__).resolve().parent.parent / "data"
    for name in names:
        if name.startswith("programme_"):
            pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / name), pd.read_parquet(data / name))


def test_exposure_dates_and_segments_are_independent_of_arm_and_outcomes():
    df = sim.ab_data(200_000, effects={"refund_rate": -0.1}, seed=5, start="2026-01-05", days=14)
    assert df["exposure_date"].min() == pd.Timestamp("2026-01-05")
    assert df["exposure_date"].max() <= pd.Timestamp("2026-01-18")
    assert ((df["buyer_type"] == "new") == (df["pre_orders"] == 0)).all()
    # the outcome columns are those of a frame made without looking at these columns
    base = sim.ab_data(2_000, seed=5)
    same = sim.ab_data(2_000, seed=5, start="2030-01-01", days=3)
    assert base.drop(columns=["exposure_date"]).equals(same.drop(columns=["exposure_date"]))
    # market shares do not differ by arm beyond chance (chi-square)
    from scipy.stats import chi2_contingency

    table = pd.crosstab(df["market"], df["variant"])
    assert chi2_contingency(table).pvalue > 0.001
