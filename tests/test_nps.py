"""NPS (multinomial delta method, CUPED with a pre-period score) and winsorized
(capped) means, against closed forms, OLS, a bootstrap and hand-capped columns."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import statsmodels.formula.api as smf

import abkit


def survey(n=20_000, seed=0, shift=0.0):
    """Buyers; 30% answered the post-period survey, 25% a pre-period one (correlated with the post)."""
    rng = np.random.default_rng(seed)
    arm = np.where(rng.random(n) < 0.5, "control", "treatment")
    s = rng.beta(2.0, 0.8, n)
    s_post = np.clip(s + shift * (arm == "treatment"), 0, 1)
    score = rng.binomial(10, s_post).astype(float)
    pre = rng.binomial(10, s).astype(float)
    return pd.DataFrame(
        {
            "variant": arm,
            "nps_score": np.where(rng.random(n) < 0.3, score, np.nan),
            "pre_nps": np.where(rng.random(n) < 0.25, pre, np.nan),
        }
    )


def _nps_points(x):
    x = x[~np.isnan(x)]
    return 100 * (np.mean(x >= 9) - np.mean(x <= 6))


def test_nps_is_promoters_minus_detractors_with_the_multinomial_variance():
    df = survey()
    row = abkit.analyze(df, [abkit.NPS("nps_score")]).row("nps_score")
    c = df.nps_score[df.variant == "control"].to_numpy()
    t = df.nps_score[df.variant == "treatment"].to_numpy()
    assert row["control_value"] == pytest.approx(_nps_points(c), rel=1e-12)
    assert row["effect"] == pytest.approx(_nps_points(t) - _nps_points(c), rel=1e-10)

    def multinomial_var(x):
        x = x[~np.isnan(x)]
        n = x.size
        pp, pd_ = np.mean(x >= 9), np.mean(x <= 6)
        return 100**2 * (pp + pd_ - (pp - pd_) ** 2) / n * n / (n - 1)  # sample variance: n / (n - 1)

    assert row["se"] ** 2 == pytest.approx(multinomial_var(c) + multinomial_var(t), rel=1e-10)
    assert row["n_control"] == np.sum(~np.isnan(c))
    assert row["dropped_control"] == np.sum(np.isnan(c))
    assert "multinomial" in row["method"]


def test_nps_se_matches_bootstrap():
    df = survey(n=8_000, seed=1)
    resp = {a: g.nps_score.dropna().to_numpy() for a, g in df.groupby("variant")}
    rng = np.random.default_rng(2)
    B = 2000
    boot = np.empty(B)
    for b in range(B):
        draws = {a: x[rng.integers(0, x.size, x.size)] for a, x in resp.items()}
        boot[b] = _nps_points(draws["treatment"]) - _nps_points(draws["control"])
    se = abkit.analyze(df, [abkit.NPS("nps_score")]).row("nps_score")["se"]
    # Monte Carlo s.e. of a bootstrap SD ~ SD / sqrt(2B) (1.6%); allow 3 of them
    assert se == pytest.approx(boot.std(ddof=1), rel=3 / np.sqrt(2 * B))


def test_nps_cuped_matches_ols_with_the_pre_period_score():
    df = survey(n=60_000, seed=3, shift=0.05)
    row = abkit.analyze(df, [abkit.NPS("nps_score", "pre_nps")]).row("nps_score")
    plain = abkit.analyze(df, [abkit.NPS("nps_score")]).row("nps_score")
    d = df.dropna(subset=["nps_score"]).copy()
    d["y"] = np.select([d.nps_score >= 9, d.nps_score <= 6], [100.0, -100.0], 0.0)
    d["treat"] = (d.variant == "treatment").astype(int)
    surveyed = d.pre_nps.notna()
    d["pre_score"] = np.where(surveyed, np.select([d.pre_nps >= 9, d.pre_nps <= 6], [100.0, -100.0], 0.0), 0.0)
    d["surveyed"] = surveyed.astype(float)
    d["pre_score"] -= d.pre_score.mean()
    d["surveyed"] -= d.surveyed.mean()
    fit = smf.ols("y ~ treat + pre_score + surveyed", d).fit(cov_type="HC1")
    se = fit.bse["treat"]
    assert abs(row["effect"] - fit.params["treat"]) < 0.01 * se
    assert row["se"] == pytest.approx(se, rel=0.02)
    assert row["n_control"] == plain["n_control"]  # unsurveyed pre-period keeps the respondent
    assert row["se"] < plain["se"] and row["variance_reduction"] > 0.05
    assert row["method"] == "Welch (multinomial) + CUPED"


def test_nps_scores_on_every_engine_and_invalid_scores():
    df = survey(n=6_000, seed=4)
    ref = abkit.analyze(df, [abkit.NPS("nps_score")]).row("nps_score")
    table = pa.Table.from_pandas(df, preserve_index=False)  # NaN -> null
    assert abkit.analyze(table, [abkit.NPS("nps_score")]).row("nps_score")["effect"] == pytest.approx(ref["effect"])
    with_nan = pa.table(
        {"variant": df.variant.to_numpy(), "nps_score": pa.array(df.nps_score.to_numpy(), from_pandas=False)}
    )  # NaN stays NaN
    assert abkit.analyze(with_nan, [abkit.NPS("nps_score")]).row("nps_score")["effect"] == pytest.approx(ref["effect"])
    odd = df.copy()
    odd.loc[odd.nps_score.notna().idxmax(), "nps_score"] = 11.0  # out of range: counted as missing
    row = abkit.analyze(odd, [abkit.NPS("nps_score")]).row("nps_score")
    assert row["dropped_control"] + row["dropped_treatment"] == ref["dropped_control"] + ref["dropped_treatment"] + 1
    with pytest.raises(abkit.DataError, match=r"column 'nps\(nps_score\)' has .* missing"):
        abkit.analyze(df, [abkit.NPS("nps_score", dropna=False)])


# --------------------------------------------------------------------------- winsorizing
def amounts(n=30_000, seed=5):
    rng = np.random.default_rng(seed)
    f = rng.normal(0, 1, n)
    return pd.DataFrame(
        {
            "variant": np.where(rng.random(n) < 0.5, "control", "treatment"),
            "amount": np.exp(2 + f + rng.normal(0, 1.2, n)),
            "pre_amount": np.exp(2 + f + rng.normal(0, 1.2, n)),
            "orders": rng.poisson(3, n).astype(float),
        }
    )


def test_winsorize_caps_at_the_pre_period_quantile():
    df = amounts()
    res = abkit.analyze(df, [abkit.Mean("amount", "pre_amount", winsorize=0.99, name="capped")])
    row = res.row("capped")
    cap = np.quantile(df.pre_amount, 0.99)
    assert row["cap"] == pytest.approx(cap, rel=1e-12)
    manual = df.assign(a=np.minimum(df.amount, cap), p=np.minimum(df.pre_amount, cap))
    ref = abkit.analyze(manual, [abkit.Mean("a", "p")]).row("a")
    for k in ("effect", "se", "ci_lower", "p_value", "variance_reduction"):
        assert row[k] == pytest.approx(ref[k], rel=1e-10)
    assert "capped at" in row["method"] and "p99 of pre_amount" in row["method"]
    uncapped = abkit.analyze(df, [abkit.Mean("amount", "pre_amount")]).row("amount")
    assert row["se"] < 0.8 * uncapped["se"]  # the point of capping heavy tails


def test_winsorize_without_covariate_uses_the_pooled_outcome_and_lin_caps_only_the_outcome():
    df = amounts()
    row = abkit.analyze(df, [abkit.Mean("amount", winsorize=0.95)]).row("amount")
    assert row["cap"] == pytest.approx(np.quantile(df.amount, 0.95), rel=1e-12)
    lin = abkit.analyze(
        df, [abkit.Mean("amount", ["pre_amount", "orders"], winsorize=0.99, cap_from="pre_amount")]
    ).row("amount")
    cap = np.quantile(df.pre_amount, 0.99)
    ref = abkit.analyze(df.assign(a=np.minimum(df.amount, cap)), [abkit.Mean("a", ["pre_amount", "orders"])]).row("a")
    assert lin["effect"] == pytest.approx(ref["effect"], rel=1e-10)


def test_fixed_cap_moments_merge_across_days_and_keep_missing_values():
    df = amounts().assign(day=lambda d: np.arange(len(d)) % 3)
    df.loc[::50, "amount"] = np.nan
    metric = abkit.Mean("amount", "pre_amount", cap=500.0, dropna=True)
    days = [abkit.moments(df[df.day == d], [metric]) for d in range(3)]
    merged = days[0] + days[1] + days[2]
    whole = abkit.analyze(df, [metric]).row("amount")
    assert abkit.analyze(merged, [metric]).row("amount")["effect"] == pytest.approx(whole["effect"], rel=1e-10)
    assert whole["dropped_control"] + whole["dropped_treatment"] == df.amount.isna().sum()
    # caps from the data cannot come from moments
    with pytest.raises(abkit.AbkitError, match="winsorize at a quantile of the data"):
        abkit.analyze(merged, [abkit.Mean("amount", "pre_amount", winsorize=0.99, dropna=True)])
    # different caps are different columns: moments do not silently mix them
    other = abkit.moments(df[df.day == 0], [abkit.Mean("amount", "pre_amount", cap=400.0, dropna=True)])
    with pytest.raises(abkit.AbkitError, match="cannot merge"):
        days[0] + other


def test_winsorize_argument_errors():
    with pytest.raises(abkit.AbkitError, match="winsorize=1.5 must be a quantile level"):
        abkit.Mean("amount", winsorize=1.5)
    with pytest.raises(abkit.AbkitError, match="cap=inf must be a finite number"):
        abkit.Mean("amount", cap=float("inf"))
    with pytest.raises(abkit.AbkitError, match="cap_from='pre' needs winsorize"):
        abkit.Mean("amount", cap_from="pre")
    m = abkit.Mean("amount", "pre_amount", winsorize=0.99)
    assert m.needs_cap and "capped at p99 of pre_amount" in repr(m)
    assert m != abkit.Mean("amount", "pre_amount")


# --------------------------------------------------------------------------- negative NPS (issue 12.1)
def negative_nps(n=10_000, control=(2520, 4000), treatment=(2810, 3500)):
    """Exact counts of promoters and detractors per arm of n respondents; by default control NPS -14.8
    (25.20% promoters, 40.00% detractors), treatment -6.9 (28.10%, 35.00%)."""

    def arm(name, promoters, detractors):
        scores = np.r_[np.full(promoters, 10.0), np.full(detractors, 3.0), np.full(n - promoters - detractors, 7.0)]
        return pd.DataFrame({"variant": name, "nps": scores})

    return pd.concat([arm("control", *control), arm("treatment", *treatment)], ignore_index=True)


def test_negative_nps_moves_up_in_points_everywhere():
    """NPS -14.8 -> -6.9 (+7.9 points, p < 1e-7): the relative lift, P(better), expected loss, the verdict, the
    forest plot and the portfolio entry all say "up". With t / c - 1 it read -53%, P(better) 0.0001."""
    import matplotlib

    matplotlib.use("Agg")
    from abkit.readout import render
    from abkit.verdict import decide

    res = abkit.analyze(negative_nps(), [abkit.NPS("nps")], bayesian=True)
    row = res.row("nps")
    assert row["control_value"] == pytest.approx(-14.8, abs=1e-9)
    assert row["effect"] == pytest.approx(7.9, abs=1e-9) and row["p_value"] < 1e-7
    # the relative lift is relative to the control value's size: +7.9 / 14.8, with the sign of the effect
    assert row["rel_effect"] == pytest.approx(7.9 / 14.8, rel=1e-12)
    assert 0 < row["rel_ci_lower"] < row["rel_effect"] < row["rel_ci_upper"]
    assert row["prob_better"] > 0.999 and row["expected_loss"] < 1e-4 < row["expected_loss_control"]
    (v,) = decide(res, "nps")
    assert v.label == "Ship"
    assert v.headline.startswith("treatment raised nps by 7.9 points (higher is better)")
    assert v.reasons[0].startswith("nps up 7.9 points (95% CI +") and "points, p < 0.001)" in v.reasons[0]
    assert "-53" not in v.headline + " ".join(v.reasons)
    line = next(ln for ln in str(res).splitlines() if ln.strip().startswith("nps"))
    assert "+7.90 points" in line and "+53.38% of |control|" in line
    ax = res.plot()
    dots = [ln for ln in ax.lines if ln.get_marker() == "o"]
    assert len(dots) == 1 and dots[0].get_xdata()[0] == pytest.approx(100 * 7.9 / 14.8)
    assert any("% of |control|" in t.get_text() for t in ax.get_yticklabels())
    matplotlib.pyplot.close(ax.figure)
    spec = type(
        "Spec", (), {"primary": type("P", (), {"name": "nps", "better": "higher"})(), "name": "x", "alpha": 0.05}
    )()
    entry = render.summary(spec, res, [v])["arms"][0]
    assert entry["rel_effect"] > 0 and entry["text"].startswith("+7.9") and "points" in entry["text"]
    page = render.metrics_html(res)
    assert "+53.38% of |control|" in page and "NPS effects are in NPS points" in page


def test_nps_guardrail_margin_on_a_negative_nps_is_relative_to_its_size():
    """A 2% margin on an NPS of -14.8 allows 0.296 points; a drop of 2 points (13.5% of its size) breaches it
    (with t / c - 1 the drop read as +13.5% and the guardrail was "within its margin")."""
    from abkit.verdict import guardrail_status

    # 100,000 respondents per arm; treatment 25.2% promoters, 42.0% detractors: NPS -16.8, two points worse
    worse = negative_nps(100_000, control=(25_200, 40_000), treatment=(25_200, 42_000))
    res = abkit.analyze(worse, [abkit.NPS("nps")])
    row = res.row("nps")
    assert row["control_value"] == pytest.approx(-14.8) and row["effect"] == pytest.approx(-2.0)
    assert row["rel_effect"] < 0 and row["rel_ci_upper"] < -0.02
    status, text = guardrail_status(res, row, 0.02)
    assert status == "breached"
    assert "i.e. by 0.296 points (2.0% of the size of its negative control value -14.80)" in text
    assert "-2.0 points" in text
