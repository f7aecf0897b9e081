"""A/B estimators against independent references: scipy, statsmodels, bootstrap,
a hand-rolled numerical delta method."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.multitest import multipletests

import abkit
from abkit.stats.multiple import adjust


def _buyers(n=30_000, seed=7, effect=0.0, slope_t=0.6, slope_c=0.6):
    """Heavy-tailed buyer data with a correlated pre-period (test-local generator)."""
    rng = np.random.default_rng(seed)
    t = rng.random(n) < 0.4  # unequal allocation on purpose
    frailty = rng.normal(0, 0.8, n)
    pre = np.exp(2 + frailty + rng.normal(0, 0.6, n))
    pre2 = rng.gamma(2.0, 1.0, n) + 0.3 * frailty
    slope = np.where(t, slope_t, slope_c)
    y = slope * pre + 0.5 * pre2 + np.exp(1.5 + 0.5 * frailty + rng.normal(0, 0.8, n)) + effect * t
    nb_p = 1.0 / (1.0 + np.exp(0.7 + 0.5 * frailty) / 2.0)  # NB(2, p): mean 2 (1 - p) / p
    orders = 1 + rng.negative_binomial(2, nb_p, n)
    p_ref = np.clip(0.08 * np.exp(0.3 * frailty), 0, 0.9)
    refunds = rng.binomial(orders, p_ref * np.where(t, 1 + effect, 1.0))
    pre_orders = 1 + rng.negative_binomial(2, nb_p, n)
    pre_refunds = rng.binomial(pre_orders, p_ref)
    conv = (rng.random(n) < 0.3 + 0.05 * np.tanh(frailty)).astype(int)
    return pd.DataFrame(
        {
            "variant": np.where(t, "treatment", "control"),
            "treat": t.astype(int),
            "y": y,
            "pre": pre,
            "pre2": pre2,
            "orders": orders,
            "refunds": refunds,
            "pre_orders": pre_orders,
            "pre_refunds": pre_refunds,
            "conv": conv,
        }
    )


@pytest.fixture(scope="module")
def buyers():
    return _buyers()


def test_mean_is_welch_t_test(buyers):
    res = abkit.analyze(buyers, [abkit.Mean("y")]).row("y")
    t = buyers[buyers.treat == 1].y
    c = buyers[buyers.treat == 0].y
    ref = stats.ttest_ind(t, c, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert res["effect"] == pytest.approx(t.mean() - c.mean(), rel=1e-12)
    assert res["p_value"] == pytest.approx(ref.pvalue, rel=1e-8)
    assert res["ci_lower"] == pytest.approx(ci.low, rel=1e-9)
    assert res["ci_upper"] == pytest.approx(ci.high, rel=1e-9)
    assert res["df"] == pytest.approx(ref.df, rel=1e-9)


def test_proportion_matches_statsmodels_wald(buyers):
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

    res = abkit.analyze(buyers, [abkit.Proportion("conv")]).row("conv")
    t = buyers[buyers.treat == 1].conv
    c = buyers[buyers.treat == 0].conv
    ref = test_proportions_2indep(t.sum(), len(t), c.sum(), len(c), method="wald", compare="diff")
    lo, hi = confint_proportions_2indep(t.sum(), len(t), c.sum(), len(c), method="wald", compare="diff")
    # statsmodels' Wald uses p(1-p)/n (ddof=0) and the normal; we use ddof=1 and
    # Welch's t, which differ by O(1/n).
    assert res["effect"] == pytest.approx(ref.diff, rel=1e-12)
    assert res["p_value"] == pytest.approx(ref.pvalue, rel=2e-3)
    assert res["ci_lower"] == pytest.approx(lo, rel=2e-3)
    assert res["ci_upper"] == pytest.approx(hi, rel=2e-3)


def test_proportion_rejects_non_binary(buyers):
    with pytest.raises(abkit.DataError, match="'orders' must hold only 0 and 1"):
        abkit.analyze(buyers, [abkit.Proportion("orders")])


def test_cuped_matches_ols_with_centred_covariate(buyers):
    res = abkit.analyze(buyers, [abkit.Mean("y", "pre")]).row("y")
    df = buyers.assign(prec=buyers.pre - buyers.pre.mean())
    fit = smf.ols("y ~ treat + prec", df).fit(cov_type="HC1")
    se = fit.bse["treat"]
    assert abs(res["effect"] - fit.params["treat"]) < 0.01 * se
    assert res["se"] == pytest.approx(se, rel=0.02)
    assert res["variance_reduction"] > 0.3  # the covariate is strongly predictive


def test_lin_regression_adjustment_matches_interacted_ols():
    # heterogeneous slopes, so that Lin's interacted form differs from CUPED
    df = _buyers(slope_t=0.7, slope_c=0.55, effect=1.0)
    res = abkit.analyze(df, [abkit.Mean("y", ["pre", "pre2"])]).row("y")
    d = df.assign(prec=df.pre - df.pre.mean(), pre2c=df.pre2 - df.pre2.mean())
    fit = smf.ols("y ~ treat * (prec + pre2c)", d).fit(cov_type="HC2")
    se = fit.bse["treat"]
    assert abs(res["effect"] - fit.params["treat"]) < 0.01 * se
    assert res["se"] == pytest.approx(se, rel=0.02)
    assert "Lin" in res["method"]


def test_lin_with_one_covariate_when_asked(buyers):
    res = abkit.analyze(buyers, [abkit.Mean("y", "pre", method="lin")]).row("y")
    d = buyers.assign(prec=buyers.pre - buyers.pre.mean())
    fit = smf.ols("y ~ treat * prec", d).fit(cov_type="HC2")
    assert abs(res["effect"] - fit.params["treat"]) < 0.01 * fit.bse["treat"]
    assert res["se"] == pytest.approx(fit.bse["treat"], rel=0.02)


def _bootstrap(df, fn, B, seed):
    """Resample buyers within each arm (stratified), B times, vectorised per draw."""
    rng = np.random.default_rng(seed)
    arms = {a: g.reset_index(drop=True) for a, g in df.groupby("variant")}
    out = np.empty(B)
    for b in range(B):
        draw = {a: g.iloc[rng.integers(0, len(g), len(g))] for a, g in arms.items()}
        out[b] = fn(draw["control"], draw["treatment"])
    return out


def test_ratio_delta_method_se_matches_bootstrap():
    df = _buyers(n=8_000, seed=11)

    def ratio_diff(c, t):
        return t.refunds.sum() / t.orders.sum() - c.refunds.sum() / c.orders.sum()

    B = 2000
    boot = _bootstrap(df, ratio_diff, B, seed=5)
    res = abkit.analyze(df, [abkit.Ratio("refunds", "orders")]).row("refunds/orders")
    # Monte Carlo s.e. of a bootstrap SD is about SD / sqrt(2B) (1.6% here); allow 3 of them.
    assert res["se"] == pytest.approx(boot.std(ddof=1), rel=3 / np.sqrt(2 * B))
    assert res["effect"] == pytest.approx(ratio_diff(df[df.treat == 0], df[df.treat == 1]), rel=1e-12)


def test_ratio_cuped_se_matches_bootstrap_of_whole_procedure():
    df = _buyers(n=8_000, seed=12)
    metric = abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"))

    def cuped(c, t):
        both = pd.concat([c, t])
        return abkit.analyze(both, [metric]).row(metric.name)["effect"]

    B = 1000
    boot = _bootstrap(df, cuped, B, seed=6)
    res = abkit.analyze(df, [metric]).row(metric.name)
    assert res["se"] == pytest.approx(boot.std(ddof=1), rel=3 / np.sqrt(2 * B))
    unadjusted = abkit.analyze(df, [abkit.Ratio("refunds", "orders")]).row("refunds/orders")
    assert res["se"] < unadjusted["se"]
    assert res["variance_reduction"] == pytest.approx(1 - res["se"] ** 2 / unadjusted["se"] ** 2, rel=1e-6)


def _numeric_delta(f, arms_cols):
    """Independent delta method: numerical gradient of f w.r.t. every arm's column means."""
    means = np.concatenate([x.mean(0) for x in arms_cols])
    covs = [np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1]) / len(x) for x in arms_cols]
    V = np.zeros((len(means), len(means)))
    i = 0
    for cv in covs:
        k = cv.shape[0]
        V[i : i + k, i : i + k] = cv
        i += k
    h = 1e-6 * np.maximum(np.abs(means), 1e-3)
    grad = np.array([(f(means + h * e) - f(means - h * e)) / (2 * h[j]) for j, e in enumerate(np.eye(len(means)))])
    return f(means), float(np.sqrt(grad @ V @ grad))


def test_relative_lift_matches_independent_delta_method(buyers):
    res = abkit.analyze(buyers, [abkit.Ratio("refunds", "orders", name="rr"), abkit.Mean("y")])
    c = buyers[buyers.treat == 0]
    t = buyers[buyers.treat == 1]
    # ratio: (R_t / R_c) - 1 with R = mean(num) / mean(den)
    est, se = _numeric_delta(
        lambda m: (m[2] / m[3]) / (m[0] / m[1]) - 1,
        [c[["refunds", "orders"]].to_numpy(float), t[["refunds", "orders"]].to_numpy(float)],
    )
    row = res.row("rr")
    z = stats.t.isf(0.025, row["df"])
    assert row["rel_effect"] == pytest.approx(est, rel=1e-9)
    assert row["rel_se"] == pytest.approx(se, rel=1e-4)
    # the relative CI is Fieller's (checked against root-finding in tests/test_fieller.py); with a control
    # value this far from zero it is the delta-method interval to first order
    assert row["rel_ci_lower"] == pytest.approx(est - z * se, abs=0.05 * z * se)
    est, se = _numeric_delta(lambda m: m[1] / m[0] - 1, [c[["y"]].to_numpy(), t[["y"]].to_numpy()])
    assert res.row("y")["rel_se"] == pytest.approx(se, rel=1e-4)


@pytest.mark.parametrize("method,sm", [("holm", "holm"), ("bh", "fdr_bh")])
def test_multiple_testing_matches_statsmodels(method, sm):
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.uniform(0, 1, 30), rng.uniform(0, 0.01, 10), [0.02, 0.02, 1.0]])
    np.testing.assert_allclose(adjust(p, method), multipletests(p, method=sm)[1], rtol=1e-12)


def test_correction_adds_adjusted_p_values_over_all_comparisons():
    rng = np.random.default_rng(2)
    n = 9000
    df = pd.DataFrame(
        {"variant": rng.choice(["control", "a", "b"], n), "x": rng.normal(size=n), "y": rng.normal(size=n)}
    )
    res = abkit.analyze(df, [abkit.Mean("x"), abkit.Mean("y")], correction="holm").to_frame()
    assert len(res) == 4 and set(res.variant) == {"a", "b"}
    np.testing.assert_allclose(res.p_value_adjusted, multipletests(res.p_value, method="holm")[1])
    bh = abkit.analyze(df, [abkit.Mean("x"), abkit.Mean("y")], correction="BH").to_frame()  # any case
    np.testing.assert_allclose(bh.p_value_adjusted, multipletests(bh.p_value, method="fdr_bh")[1])


def test_srm_matches_scipy_chisquare():
    rng = np.random.default_rng(4)
    df = pd.DataFrame(
        {"variant": rng.choice(["control", "treatment"], 10_000, p=[0.48, 0.52]), "x": rng.normal(size=10_000)}
    )
    res = abkit.analyze(df, [abkit.Mean("x")], allocation={"control": 0.5, "treatment": 0.5})
    counts = df.variant.value_counts()[["control", "treatment"]].to_numpy()
    ref = stats.chisquare(counts, f_exp=[counts.sum() / 2] * 2)
    assert res.srm.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert res.srm.mismatch
    uneven = abkit.analyze(df, [abkit.Mean("x")], allocation=[0.48, 0.52])
    assert not uneven.srm.mismatch


def test_to_frame_has_the_design_columns(buyers):
    df = abkit.analyze(buyers, [abkit.Mean("y", "pre")]).to_frame()
    expected = [
        "metric",
        "variant",
        "control_value",
        "treatment_value",
        "effect",
        "ci_lower",
        "ci_upper",
        "rel_effect",
        "rel_ci_lower",
        "rel_ci_upper",
        "p_value",
        "n_control",
        "n_treatment",
        "method",
    ]
    assert list(df.columns[: len(expected)]) == expected
    assert "variance_reduction" in df.columns


def test_missing_column_error_names_it_and_lists_available(buyers):
    with pytest.raises(
        abkit.AbkitError,
        match=r"column 'refund' not found.*available: variant, treat.*"
        r"Did you mean 'refunds'",
    ):
        abkit.analyze(buyers, [abkit.Ratio("refund", "orders")])


def test_control_not_present_and_single_arm():
    df = pd.DataFrame({"variant": ["a", "b"] * 5, "x": np.arange(10.0)})
    with pytest.raises(abkit.DataError, match="control arm 'control' not found.*arms present: \\['a', 'b'\\]"):
        abkit.analyze(df, [abkit.Mean("x")])
    with pytest.raises(abkit.DataError, match="only one arm"):
        abkit.analyze(df.assign(variant="a"), [abkit.Mean("x")], control="a")


def test_non_numeric_column_is_a_clear_error():
    df = pd.DataFrame({"variant": ["control", "treatment"] * 5, "x": ["1", "2", "oops"] + ["3"] * 7})
    with pytest.raises(abkit.DataError, match="column 'x' is not numeric.*'oops'"):
        abkit.analyze(df, [abkit.Mean("x")])


def test_shift_scale_and_swap_properties(buyers):
    base = abkit.analyze(buyers, [abkit.Mean("y", "pre")]).row("y")
    shifted = abkit.analyze(buyers.assign(y=buyers.y + 1000.0), [abkit.Mean("y", "pre")]).row("y")
    scaled = abkit.analyze(buyers.assign(y=buyers.y * 3.0), [abkit.Mean("y", "pre")]).row("y")
    swapped = abkit.analyze(buyers, [abkit.Mean("y", "pre")], control="treatment").row("y", "control")
    assert shifted["effect"] == pytest.approx(base["effect"], rel=1e-9)
    assert shifted["se"] == pytest.approx(base["se"], rel=1e-9)
    assert scaled["effect"] == pytest.approx(3 * base["effect"], rel=1e-9)
    assert swapped["effect"] == pytest.approx(-base["effect"], rel=1e-9)
    assert swapped["p_value"] == pytest.approx(base["p_value"], rel=1e-9)


def test_recovers_the_known_truth_of_the_simulator():
    """abkit.simulate knows the population value of each metric per arm; the
    CUPED estimates of the effect must be within 4 standard errors of it."""
    effects = {"refund_rate": -0.06, "contact_rate": -0.08, "refund_amount": 0.05}
    df = abkit.simulate.ab_data(300_000, effects=effects, seed=99)
    truth = abkit.simulate.true_values(effects)
    res = abkit.analyze(
        df,
        [
            abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"), name="refund_rate"),
            abkit.Ratio("contacts", "orders", covariates=("pre_contacts", "pre_orders"), name="contact_rate"),
            abkit.Mean("refund_amount", "pre_refund_amount"),
        ],
    )
    for name in ["refund_rate", "contact_rate", "refund_amount"]:
        row = res.row(name)
        true_effect = truth.loc[name, "treatment"] - truth.loc[name, "control"]
        assert abs(row["effect"] - true_effect) < 4 * row["se"], (name, row["effect"], true_effect, row["se"])
        assert row["variance_reduction"] > 0.1


def test_lin_se_is_the_sampling_sd_when_slopes_differ():
    """With very different slopes per arm, the SE of Lin's estimator must
    include the variability of the covariate centre: checked against the
    actual spread of the estimate over 400 simulated experiments. (The HC
    SE of the interacted OLS is ~30% too small here.)"""
    est, se = [], []
    for s in range(400):
        df = _buyers(n=5_000, seed=5_000 + s, slope_t=1.2, slope_c=0.3, effect=1.0)
        row = abkit.analyze(df, [abkit.Mean("y", ["pre", "pre2"])]).row("y")
        est.append(row["effect"])
        se.append(row["se"])
    sd = np.std(est, ddof=1)
    # Monte Carlo s.e. of an SD from 400 draws is ~3.5%; allow 3 of them.
    assert np.sqrt(np.mean(np.square(se))) == pytest.approx(sd, rel=0.105)


def test_several_arms_share_one_cuped_slope_and_control_value():
    rng = np.random.default_rng(8)
    n = 30_000
    arm = rng.choice(["control", "a", "b"], n)
    x = rng.lognormal(1, 0.8, n)
    y = 0.7 * x + rng.lognormal(1, 0.8, n) + np.select([arm == "a", arm == "b"], [0.3, -0.2], 0.0)
    df = pd.DataFrame({"variant": arm, "x": x, "y": y})
    res = abkit.analyze(df, [abkit.Mean("y", "x")])
    ra, rb = res.row("y", "a"), res.row("y", "b")
    assert ra["control_value"] == rb["control_value"]
    d = df.assign(xc=df.x - df.x.mean())
    fit = smf.ols("y ~ C(variant, Treatment('control')) + xc", d).fit(cov_type="HC1")
    for arm_name, row in (("a", ra), ("b", rb)):
        key = f"C(variant, Treatment('control'))[T.{arm_name}]"
        assert abs(row["effect"] - fit.params[key]) < 0.01 * fit.bse[key]
        assert row["se"] == pytest.approx(fit.bse[key], rel=0.02)
    assert ra["control_value"] == pytest.approx(fit.params["Intercept"], rel=1e-9)


# --------------------------------------------------------------------------- covariate spellings (issue 12.9)
def test_one_covariate_spelling_per_meaning(buyers):
    """A tuple is one covariate (two columns: their ratio), a list is several covariates. The two spellings
    that used to mean different things on a Mean and a Ratio are refused with both correct spellings."""
    from abkit.metrics import Statistic

    pair, two = (Statistic("pre_refunds", "pre_orders"),), (Statistic("pre_refunds"), Statistic("pre_orders"))
    assert abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders")).covariates == pair
    assert abkit.Ratio("refunds", "orders", covariates=[("pre_refunds", "pre_orders")]).covariates == pair
    assert abkit.Mean("y", covariates=[("pre_refunds", "pre_orders")]).covariates == pair
    assert abkit.Mean("y", covariates=["pre_refunds", "pre_orders"]).covariates == two
    assert abkit.Ratio("refunds", "orders", covariates=[("pre_refunds",), ("pre_orders",)]).covariates == two
    assert abkit.Ratio("refunds", "orders", covariates=["pre", "pre2", "pre_orders"]).covariates == tuple(
        Statistic(c) for c in ("pre", "pre2", "pre_orders")
    )
    with pytest.raises(abkit.AbkitError) as err:
        abkit.Ratio("refunds", "orders", covariates=["pre_refunds", "pre_orders"], name="refund_rate")
    msg = str(err.value)
    assert msg.startswith("Ratio 'refund_rate': covariates=['pre_refunds', 'pre_orders'] is ambiguous")
    assert "covariates=('pre_refunds', 'pre_orders') for one covariate, the pre-period ratio" in msg
    assert "covariates=[('pre_refunds',), ('pre_orders',)] for two covariates" in msg
    with pytest.raises(abkit.AbkitError) as err:
        abkit.Mean("y", ("pre_refunds", "pre_orders"))
    msg = str(err.value)
    assert "covariates=[('pre_refunds', 'pre_orders')] for one covariate" in msg
    assert "covariates=['pre_refunds', 'pre_orders'] for two covariates" in msg
    # the unambiguous spellings give the same numbers as before
    a = (
        abkit.analyze(
            buyers,
            [
                abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"), name="a"),
                abkit.Ratio("refunds", "orders", covariates=[("pre_refunds", "pre_orders")], name="b"),
            ],
        )
        .to_frame()
        .set_index("metric")
    )
    assert a.loc["a", "effect"] == a.loc["b", "effect"] and a.loc["a", "se"] == a.loc["b", "se"]


def test_spec_covariates_keep_their_meaning():
    """The spec format (YAML has no tuples): on a ratio `covariates: [num, den]` stays the pre-period ratio; a
    nested pair `[[num, den]]` is one ratio covariate on a mean too (it used to become two covariates)."""
    from abkit.metrics import Statistic
    from abkit.spec import MetricSpec

    ratio = MetricSpec(
        name="r", type="ratio", numerator="refunds", denominator="orders", covariates=("pre_refunds", "pre_orders")
    ).build()
    assert ratio.covariates == (Statistic("pre_refunds", "pre_orders"),) and ratio.method == "cuped"
    mean = MetricSpec(name="m", type="mean", column="y", covariates=(("pre_refunds", "pre_orders"),)).build()
    assert mean.covariates == (Statistic("pre_refunds", "pre_orders"),)
    two = MetricSpec(name="m2", type="mean", column="y", covariates=("pre", "pre2")).build()
    assert two.covariates == (Statistic("pre"), Statistic("pre2")) and two.method == "lin"


def test_lin_chosen_for_several_covariates_says_so_in_method(buyers):
    res = abkit.analyze(
        buyers,
        [
            abkit.Mean("y", ["pre", "pre2"], name="auto"),
            abkit.Mean("y", ["pre", "pre2"], name="asked", method="lin"),
            abkit.Mean("y", ["pre", "pre2"], name="pooled", method="cuped"),
        ],
    )
    f = res.to_frame().set_index("metric")
    assert f.loc["auto", "method"] == (
        "Welch + regression adjustment (Lin: slopes per arm, the default for 2 "
        "covariates; method='cuped' for one pooled slope)"
    )
    assert f.loc["asked", "method"] == "Welch + regression adjustment (Lin)"
    assert f.loc["pooled", "method"] == "Welch + CUPED"
    assert f.loc["auto", "effect"] == f.loc["asked", "effect"] != f.loc["pooled", "effect"]
    capped = abkit.analyze(buyers, [abkit.Mean("y", ["pre", "pre2"], winsorize=0.99, cap_from="pre")]).rows[0]
    assert "the default for 2 covariates" in capped["method"]


# --------------------------------------------------------------------------- what print(result) shows
def test_summary_counts_rows_without_an_arm_and_prints_arms_as_written():
    """Integer arm labels in a column with a missing arm (read as floats) print as 0 and 1, not [0, 1.0]; the rows
    without an arm and the units dropped for a missing value are in print(result) and the HTML table."""
    rng = np.random.default_rng(3)
    n = 2_000
    arm = rng.integers(0, 2, n).astype(float)
    arm[:9] = np.nan
    y = rng.normal(10, 2, n)
    y[10:15] = np.nan
    df = pd.DataFrame({"variant": arm, "y": y})
    res = abkit.analyze(df, [abkit.Mean("y", dropna=True)], control=0)
    assert res.arms == (0, 1) and all(type(a) is int for a in res.arms) and res.control == 0
    text = str(res)
    assert "arms [0, 1] (control 0)" in text and "1.0" not in text
    assert "y [1 vs 0]" in text
    assert "9 rows without a value in 'variant' (no arm) were left out of every number" in text
    assert "y: 5 units dropped for missing values" in text
    html = res._repr_html_()
    assert "9 rows without a value in &#39;variant&#39;" in html  # escaped by the table template
    assert abkit.analyze(df, [abkit.Mean("y", dropna=True)], control=0.0).arms == (0, 1)
    # genuinely fractional labels stay as they are
    frac = df.assign(variant=df.variant.map({0.0: 0.5, 1.0: 1.5}))
    assert abkit.analyze(frac, [abkit.Mean("y", dropna=True)], control=0.5).arms == (0.5, 1.5)
    quant = abkit.analyze(df.dropna(subset=["y"]), [abkit.Quantile("y", 0.5)], control=0)
    assert quant.arms == (0, 1) and "1.0" not in str(quant)


# --------------------------------------------------------------------------- layering (issue 15.5)
def test_formatters_sit_below_results_and_plots_import_no_result_module():
    """plots <-> results was an import circle (plots imported results' p_text; results imports plots for
    .plot()). The formatters live in abkit.formatting, which imports nothing from abkit; plots, results,
    verdict and segments import them from there, and plots imports no result module, not even lazily."""
    import ast
    import pathlib

    root = pathlib.Path(abkit.__file__).parent

    def imported(path):
        out = set()
        for node in ast.walk(ast.parse((root / path).read_text())):
            if isinstance(node, ast.ImportFrom):
                out.add(("." * node.level) + (node.module or ""))
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
        return out

    assert not {m for m in imported("formatting.py") if m.startswith(".") or m.startswith("abkit")}
    plots = imported("plots.py")
    assert not plots & {".results", ".segments", ".verdict", ".analysis", ".sequential"}, plots
    for module in ("results.py", "plots.py", "verdict.py", "segments.py"):
        assert ".formatting" in imported(module), module
    from abkit import formatting, results

    assert results.format_pct is formatting.format_pct and results.p_text is formatting.p_text  # old imports work
