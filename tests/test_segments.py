"""Effects by segment: per-segment results equal analysing the segment's rows,
Cochran's Q equals the OLS interaction Wald test (statsmodels), Holm/BH match
statsmodels, the overall result equals the whole-data analysis."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.stats.multitest import multipletests

import abkit
from abkit.segments import cochran_q


def buyers(n=24_000, seed=0, effects=None):
    rng = np.random.default_rng(seed)
    market = rng.choice(["DE", "FR", "IT", "ES"], n, p=[0.4, 0.3, 0.2, 0.1])
    new = rng.random(n) < 0.35
    t = rng.random(n) < 0.5
    effects = effects or {"DE": 0.0, "FR": 0.0, "IT": 0.0, "ES": 0.0}
    lift = np.vectorize(effects.get)(market)
    pre = rng.lognormal(2, 0.8, n)
    y = 0.5 * pre + rng.lognormal(1.5, 0.9, n) * (1 + 0.5 * new) + lift * t
    orders = 1 + rng.poisson(2, n)
    return pd.DataFrame(
        {
            "variant": np.where(t, "treatment", "control"),
            "treat": t.astype(int),
            "market": market,
            "buyer_type": np.where(new, "new", "repeat"),
            "y": y,
            "pre": pre,
            "orders": orders,
            "refunds": rng.binomial(orders, 0.1 + 0.02 * new),
        }
    )


def test_cochran_q_equals_the_ols_interaction_wald_test():
    df = buyers(effects={"DE": 0.0, "FR": 0.8, "IT": -0.5, "ES": 1.5}, seed=1)
    res = abkit.analyze_segments(df, [abkit.Mean("y")], by="market")
    test = res.heterogeneity().iloc[0]
    fit = smf.ols("y ~ C(market) * treat", df).fit(cov_type="HC2")
    names = [p for p in fit.params.index if ":treat" in p]
    wald = fit.wald_test(", ".join(f"{p} = 0" for p in names), use_f=False, scalar=True)
    assert test.Q == pytest.approx(float(wald.statistic), rel=1e-8)
    assert test.p_value == pytest.approx(float(wald.pvalue), rel=1e-6)
    assert test.df == 3 and test.n_segments == 4
    assert test.p_value < 0.01  # the effects do differ


def test_segment_rows_equal_the_segment_analysis_and_overall_equals_whole():
    df = buyers(seed=2)
    metrics = [abkit.Mean("y", "pre"), abkit.Ratio("refunds", "orders", name="refund_rate")]
    res = abkit.analyze_segments(df, metrics, by="market", correction="bh")
    out = res.to_frame()
    assert list(out.columns[:3]) == ["market", "metric", "variant"]
    assert sorted(out.market.unique()) == ["DE", "ES", "FR", "IT"]
    for seg in ["DE", "ES"]:
        ref = abkit.analyze(df[df.market == seg], metrics).to_frame()
        mine = res.segment(seg)
        for col in ["effect", "se", "ci_lower", "p_value", "rel_effect", "variance_reduction"]:
            np.testing.assert_allclose(mine[col].to_numpy(), ref[col].to_numpy(), rtol=1e-9)
    whole = abkit.analyze(df, metrics).to_frame()
    np.testing.assert_allclose(res.overall.to_frame().effect, whole.effect, rtol=1e-9)
    np.testing.assert_allclose(out.p_value_adjusted, multipletests(out.p_value, method="fdr_bh")[1], rtol=1e-12)
    holm = abkit.analyze_segments(df, metrics, by="market").to_frame()
    np.testing.assert_allclose(holm.p_value_adjusted, multipletests(holm.p_value, method="holm")[1], rtol=1e-12)
    # the pooled inverse-variance effect of the heterogeneity table is close to the overall effect
    t = res.heterogeneity().set_index("metric").loc["y"]
    assert t.pooled_effect == pytest.approx(res.overall.row("y")["effect"], abs=3 * t.pooled_se)


def test_several_segment_columns_moments_input_and_skipped_segments():
    df = buyers(seed=3)
    metrics = [abkit.Mean("y")]
    df = pd.concat(
        [
            df,
            pd.DataFrame(
                {
                    "variant": ["control"] * 3,
                    "treat": 0,
                    "market": "NL",
                    "buyer_type": "new",
                    "y": [1.0, 2.0, 3.0],
                    "pre": 1.0,
                    "orders": 1,
                    "refunds": 0,
                }
            ),
        ]
    )
    res = abkit.analyze_segments(df, metrics, by=["market", "buyer_type"], correction=None)
    out = res.to_frame()
    assert list(out.columns[:4]) == ["market", "buyer_type", "metric", "variant"]
    assert len(out) == 8 and ("NL", "new") in [s for s, _ in res.skipped]
    assert "p_value_adjusted" not in out.columns
    ms = abkit.moments(df, metrics, by=["market", "buyer_type"])
    again = abkit.analyze_segments(ms, metrics, by=["market", "buyer_type"], correction=None).to_frame()
    np.testing.assert_allclose(again.effect, out.effect, rtol=1e-12)
    with pytest.raises(abkit.AbkitError, match=r"split by \['market', 'buyer_type'\], not \['market'\]"):
        abkit.analyze_segments(ms, metrics, by="market")
    assert "heterogeneity" in res.summary() and "<table" in res._repr_html_()
    import matplotlib

    matplotlib.use("Agg")
    ax = res.plot()
    assert "heterogeneity: Q =" in ax.get_title(loc="left")


def test_cochran_q_by_hand():
    d, v = np.array([1.0, 2.0, 4.0]), np.array([0.5, 1.0, 2.0])
    w = 1 / v
    pooled = np.sum(w * d) / np.sum(w)
    q = cochran_q(d, v)
    assert q["pooled_effect"] == pytest.approx(pooled)
    assert q["Q"] == pytest.approx(np.sum(w * (d - pooled) ** 2))
    assert q["i2"] == pytest.approx(max(0.0, (q["Q"] - 2) / q["Q"]))
    assert np.isnan(cochran_q([1.0], [0.1])["Q"])


def test_segment_lifts_of_a_negative_or_near_zero_control_value():
    """Net amounts: negative in DE and FR, about zero in IT. Treatment raises DE and lowers FR: each segment's
    lift has the sign of its effect (t / c - 1 flipped both), the forest plot draws DE right of zero and FR left,
    and IT, whose control value cannot be told from zero, gets no relative dot but a label saying so."""
    import matplotlib

    matplotlib.use("Agg")
    rng = np.random.default_rng(2)
    n = 30_000
    market = rng.choice(["DE", "FR", "IT"], n)
    t = rng.random(n) < 0.5
    base = pd.Series(market).map({"DE": -5.0, "FR": -5.0, "IT": 0.0}).to_numpy()
    shift = pd.Series(market).map({"DE": 1.0, "FR": -1.0, "IT": 0.5}).to_numpy()
    df = pd.DataFrame(
        {
            "variant": np.where(t, "treatment", "control"),
            "market": market,
            "net": base + rng.normal(0, 3.0, n) + shift * t,
        }
    )
    seg = abkit.analyze_segments(df, [abkit.Mean("net")], by="market")
    f = seg.to_frame().set_index("market")
    assert f.loc["DE", "rel_effect"] > 0 < f.loc["DE", "rel_ci_lower"]
    assert f.loc["FR", "rel_effect"] < 0 > f.loc["FR", "rel_ci_upper"]
    assert np.sign(f.rel_effect).equals(np.sign(f.effect))
    assert not np.isfinite(f.loc["IT", "rel_ci_lower"])
    ax = seg.plot()
    squares = [ln.get_xdata()[0] for ln in ax.lines if ln.get_marker() == "s"]
    assert len(squares) == 2 and min(squares) < 0 < max(squares)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert any(lb.startswith("IT") and "relative lift n/a (control \u2248 0)" in lb for lb in labels)
    assert "n/a (control \u2248 0)" in seg._repr_html_()
    matplotlib.pyplot.close(ax.figure)


def _new_and_repeat_buyers(n=6000, seed=3):
    """Repeat buyers (with a pre-period) first, then new buyers whose pre-period columns are all 0."""
    rng = np.random.default_rng(seed)
    new = np.arange(n) >= n * 2 // 3
    orders = rng.poisson(2, n) + 1
    pre_orders = np.where(new, 0, rng.poisson(6, n) + 1)
    return pd.DataFrame(
        {
            "variant": np.where(rng.random(n) < 0.5, "treatment", "control"),
            "buyer_type": np.where(new, "new", "repeat"),
            "orders": orders,
            "refunds": rng.binomial(orders, 0.1),
            "pre_orders": pre_orders,
            "pre_refunds": rng.binomial(pre_orders, 0.1),
        }
    )


@pytest.mark.parametrize("engine", ["numpy", "duckdb"])
def test_a_segment_without_a_pre_period_is_estimated_unadjusted(engine, tmp_path):
    # New buyers have pre_orders = 0: the CUPED covariate pre_refunds / pre_orders is undefined in every arm
    # of that segment, so its effect is the unadjusted one (a note says so); the other segment stays CUPED.
    # The push-down's moments are shifted by the first rows' means (repeat buyers here): the zero sum must
    # be seen as zero, not as rounding noise of the shift that gave a finite "covariate".
    df = _new_and_repeat_buyers()
    data = df if engine == "numpy" else tmp_path / "b.parquet"
    if engine == "duckdb":
        df.to_parquet(data)
    cuped = abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"), name="refund_rate")
    plain = abkit.Ratio("refunds", "orders", name="refund_rate")
    seg = abkit.analyze_segments(data, [cuped], by="buyer_type")
    assert [(u["buyer_type"], u["covariates"], u["kept"]) for u in seg.unadjusted] == [
        ("new", ("pre_refunds / pre_orders",), ())
    ]
    rows = seg.to_frame().set_index("buyer_type")
    cols = ["effect", "se", "ci_lower", "ci_upper", "p_value"]
    want_new = abkit.analyze(df[df.buyer_type == "new"], [plain]).to_frame().iloc[0]
    want_repeat = abkit.analyze(df[df.buyer_type == "repeat"], [cuped]).to_frame().iloc[0]
    np.testing.assert_allclose(rows.loc["new", cols].astype(float), want_new[cols].astype(float), rtol=1e-9)
    np.testing.assert_allclose(rows.loc["repeat", cols].astype(float), want_repeat[cols].astype(float), rtol=1e-9)
    # on its own, the segment's CUPED metric is refused, by the in-memory path and the push-down alike
    new_only = df[df.buyer_type == "new"]
    with pytest.raises(abkit.DataError, match="'pre_orders' sums to zero"):
        abkit.analyze(new_only, [cuped])
    new_only.to_parquet(tmp_path / "new.parquet")
    with pytest.raises(abkit.DataError, match="'pre_orders' sums to zero"):
        abkit.analyze(tmp_path / "new.parquet", [cuped])


def test_a_windowed_metric_and_a_kept_covariate_in_a_segment_without_a_pre_period():
    # dropna metrics (a window makes one) keep their complete cases when the covariate goes; of two covariates
    # (Lin by default) the one left is CUPED, as a metric declared with it alone would be
    df = _new_and_repeat_buyers()
    rng = np.random.default_rng(5)
    df["pre_spend"] = rng.gamma(2.0, 30.0, len(df))
    df.loc[rng.random(len(df)) < 0.1, "refunds"] = np.nan  # rows the dropna metric leaves out
    cols = ["effect", "se", "p_value"]
    new = df[df.buyer_type == "new"]

    dropna = abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"), name="r", dropna=True)
    seg = abkit.analyze_segments(df, [dropna], by="buyer_type")
    want = abkit.analyze(new, [abkit.Ratio("refunds", "orders", name="r", dropna=True)]).to_frame().iloc[0]
    got = seg.to_frame().set_index("buyer_type").loc["new"]
    np.testing.assert_allclose(got[cols].astype(float), want[cols].astype(float), rtol=1e-9)
    assert got["n_control"] + got["n_treatment"] == new.refunds.notna().sum()

    two = abkit.Ratio("refunds", "orders", covariates=["pre_spend", ("pre_refunds", "pre_orders")], name="r")
    assert two.method == "lin"
    seg = abkit.analyze_segments(df.fillna({"refunds": 0}), [two], by="buyer_type")
    assert [(u["covariates"], u["kept"]) for u in seg.unadjusted] == [(("pre_refunds / pre_orders",), ("pre_spend",))]
    one = abkit.Ratio("refunds", "orders", covariates=["pre_spend"], name="r")
    want = abkit.analyze(new.fillna({"refunds": 0}), [one]).to_frame().iloc[0]
    got = seg.to_frame().set_index("buyer_type").loc["new"]
    np.testing.assert_allclose(got[cols].astype(float), want[cols].astype(float), rtol=1e-9)
