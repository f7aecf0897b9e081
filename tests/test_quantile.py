"""Quantile effects: the order-statistic delta method against asymptotic theory, the
ratio delta method and a cluster bootstrap; the API and its errors. Coverage in
simulation is in test_calibration_extra.py."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import abkit
from abkit.metrics import Statistic
from abkit.moments import Moments
from abkit.stats.ab import linearize
from abkit.stats.quantile_inference import (
    cluster_ecdf_variance,
    difference,
    quantile_bootstrap,
    quantile_delta,
    weighted_quantiles,
)


def refunds(n_buyers=3000, seed=0, effect=0.0, sd_buyer=0.6, sd_refund=0.7):
    """Refund-level rows, randomized by buyer: buyers with more refunds are also slower (correlated)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0, sd_buyer, n_buyers)
    k = 1 + rng.poisson(1.5 * np.exp(0.5 * a - 0.125))
    arm = np.where(rng.random(n_buyers) < 0.5, "control", "treatment")
    buyer = np.repeat(np.arange(n_buyers), k)
    hours = np.exp(3.5 + a[buyer] + rng.normal(0, sd_refund, buyer.size))
    hours = hours * np.where(arm[buyer] == "treatment", 1 + effect, 1.0)
    return pd.DataFrame({"buyer_id": buyer, "variant": arm[buyer], "hours": hours})


def test_iid_delta_se_matches_the_asymptotic_formula():
    rng = np.random.default_rng(1)
    n = 200_000
    x = rng.normal(size=n)
    for q in (0.5, 0.9):
        est = quantile_delta(x, q)
        theory = np.sqrt(q * (1 - q) / n) / stats.norm.pdf(stats.norm.ppf(q))
        assert est.se == pytest.approx(theory, rel=0.03)
        assert est.value == pytest.approx(np.quantile(x, q), rel=1e-12)
        assert est.ecdf_se == pytest.approx(np.sqrt(q * (1 - q) / n), rel=1e-3)


def test_cluster_ecdf_variance_is_the_ratio_delta_method():
    df = refunds()
    x = df.hours.to_numpy()
    codes = df.buyer_id.to_numpy()
    xi = np.quantile(x, 0.9)
    S = np.bincount(codes, weights=(x <= xi).astype(float))
    N = np.bincount(codes).astype(float)
    m = Moments.from_arrays(np.zeros(len(S), dtype=np.int64), np.column_stack([S, N]), ["all"], ["S", "N"])
    _, V, _ = linearize(m, "all", [Statistic("S", "N")])
    assert cluster_ecdf_variance(x, codes, len(S), xi) == pytest.approx(V[0, 0], rel=1e-10)


def test_cluster_delta_se_agrees_with_cluster_bootstrap_and_exceeds_iid():
    df = refunds(n_buyers=3000, seed=2)
    x, buyer = df.hours.to_numpy(), df.buyer_id.to_numpy()
    for q in (0.5, 0.9):
        delta = quantile_delta(x, q, clusters=buyer)
        boot, draws = quantile_bootstrap(x, q, clusters=buyer, n_boot=2000, seed=5)
        print(q, delta.se, boot.se, quantile_delta(x, q).se)
        assert draws.shape == (2000,)
        assert delta.se == pytest.approx(boot.se, rel=0.10), (q, delta.se, boot.se)
        iid = quantile_delta(x, q)
        assert iid.se < 0.85 * delta.se  # ignoring the buyers understates the uncertainty
        assert delta.n_units == df.buyer_id.nunique() and delta.n_rows == len(df)
        assert delta.ci_lower < delta.value < delta.ci_upper


def test_weighted_quantiles_and_seeded_bootstrap():
    xs = np.array([1.0, 2.0, 3.0, 4.0])
    w = np.array([[1, 1, 1, 1], [0, 0, 1, 3], [5, 0, 0, 1]], dtype=float)
    assert weighted_quantiles(xs, w, 0.5).tolist() == [2.0, 4.0, 1.0]
    x = np.random.default_rng(0).lognormal(size=500)
    a = quantile_bootstrap(x, 0.9, n_boot=200, seed=1)[1]
    b = quantile_bootstrap(x, 0.9, n_boot=200, seed=1)[1]
    c = quantile_bootstrap(x, 0.9, n_boot=200, seed=2)[1]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_difference_and_relative_effect():
    t = quantile_delta(np.random.default_rng(1).lognormal(0.1, 1, 4000), 0.5)
    c = quantile_delta(np.random.default_rng(2).lognormal(0.0, 1, 4000), 0.5)
    d = difference(t, c)
    assert d["effect"] == pytest.approx(t.value - c.value)
    assert d["se"] == pytest.approx(np.hypot(t.se, c.se))
    assert d["rel_effect"] == pytest.approx(t.value / c.value - 1)
    # relative se: delta method of Q_t / Q_c, checked against a numerical gradient
    def f(a, b):
        return a / b - 1

    h = 1e-6
    ga = (f(t.value + h, c.value) - f(t.value - h, c.value)) / (2 * h)
    gb = (f(t.value, c.value + h) - f(t.value, c.value - h)) / (2 * h)
    assert d["rel_se"] == pytest.approx(np.sqrt(ga**2 * t.se**2 + gb**2 * c.se**2), rel=1e-6)
    assert d["p_value"] == pytest.approx(2 * stats.norm.sf(abs(d["effect"]) / d["se"]))
    # relative CI: Fieller's set {r : (Q_t - (1 + r) Q_c)^2 <= z^2 (se_t^2 + (1 + r)^2 se_c^2)}, its ends by root-finding
    from scipy.optimize import brentq

    z = stats.norm.isf(0.025)

    def g(r):
        return (t.value - (1 + r) * c.value) ** 2 - z**2 * (t.se**2 + (1 + r) ** 2 * c.se**2)

    rel = d["rel_effect"]
    assert d["rel_ci_lower"] == pytest.approx(brentq(g, rel - 1.0, rel), abs=1e-10)
    assert d["rel_ci_upper"] == pytest.approx(brentq(g, rel, rel + 1.0), abs=1e-10)
    assert (d["rel_ci_lower"] > 0) == (d["ci_lower"] > 0) and (d["rel_ci_upper"] < 0) == (d["ci_upper"] < 0)


def test_quantile_effect_on_refund_rows():
    df = refunds(effect=0.2, seed=3)
    res = abkit.quantile_effect(df, "hours", [0.5, 0.9], unit="buyer_id", better="lower")
    out = res.to_frame()
    assert out.metric.tolist() == ["hours p50", "hours p90"]
    for q, row in zip((0.5, 0.9), out.itertuples()):
        c = quantile_delta(df.hours[df.variant == "control"], q, df.buyer_id[df.variant == "control"])
        t = quantile_delta(df.hours[df.variant == "treatment"], q, df.buyer_id[df.variant == "treatment"])
        assert row.control_value == pytest.approx(c.value) and row.treatment_value == pytest.approx(t.value)
        assert row.se == pytest.approx(np.hypot(c.se, t.se))
        assert row.n_control == df[df.variant == "control"].buyer_id.nunique()
        assert "cluster delta" in row.method
        assert row.rel_ci_lower < 0.2 < row.rel_ci_upper or abs(row.rel_effect - 0.2) < 4 * row.rel_se
    assert res.srm.observed == tuple(df.drop_duplicates("buyer_id").variant.value_counts()[["control", "treatment"]])
    boot = abkit.quantile_effect(df, "hours", 0.9, unit="buyer_id", method="bootstrap", n_boot=400, seed=3,
                                 name="p90")
    again = abkit.quantile_effect(df, "hours", 0.9, unit="buyer_id", method="bootstrap", n_boot=400, seed=3)
    assert boot.to_frame().se.iloc[0] == again.to_frame().se.iloc[0]
    assert boot.to_frame().metric.iloc[0] == "p90" and "bootstrap by buyer_id" in boot.to_frame().method.iloc[0]


def test_quantile_errors_and_missing_values():
    df = refunds(seed=4)
    bad = df.copy()
    two = int(df.buyer_id.value_counts().loc[lambda c: c >= 2].index.min())
    row = df.index[df.buyer_id == two][0]
    bad.loc[row, "variant"] = "treatment" if bad.loc[row, "variant"] == "control" else "control"
    with pytest.raises(abkit.DataError, match=rf"unit {two} of column 'buyer_id' appears in several arms"):
        abkit.quantile_effect(bad, "hours", 0.5, unit="buyer_id")
    gaps = df.assign(hours=df.hours.where(df.index % 10 != 0))
    with pytest.raises(abkit.DataError, match="column 'hours' has .* missing"):
        abkit.analyze(gaps, [abkit.Quantile("hours", 0.5)])
    res = abkit.quantile_effect(gaps, "hours", 0.5)  # dropna=True by default here
    row = res.to_frame().iloc[0]
    dropped = gaps.hours.isna().groupby(gaps.variant).sum()
    assert row.dropped_control == dropped["control"] and row.dropped_treatment == dropped["treatment"]
    with pytest.raises(abkit.AbkitError, match="q=1.5 must be strictly between 0 and 1"):
        abkit.Quantile("hours", 1.5)
    with pytest.raises(abkit.AbkitError, match="method='jackknife'"):
        abkit.Quantile("hours", 0.5, method="jackknife")
    with pytest.raises(abkit.ColumnNotFoundError, match="column 'hour' not found"):
        abkit.quantile_effect(df, "hour", 0.5)


def test_analyze_mixes_quantiles_with_moment_metrics():
    df = abkit.simulate.ab_data(20_000, effects={"refund_rate": -0.05}, seed=5)
    metrics = [abkit.Mean("refund_amount", "pre_refund_amount"),
               abkit.Quantile("time_to_refund_hours", 0.9, dropna=True, better="lower"),
               abkit.Ratio("refunds", "orders", name="refund_rate")]
    res = abkit.analyze(df, metrics, correction="holm", sequential=abkit.sequential.AlwaysValid(planned_n=len(df)))
    out = res.to_frame()
    assert out.metric.tolist() == ["refund_amount", "time_to_refund_hours p90", "refund_rate"]
    alone = abkit.quantile_effect(df, "time_to_refund_hours", 0.9).to_frame().iloc[0]
    q = out.iloc[1]
    assert q.effect == pytest.approx(alone.effect) and q.ci_lower_fixed == pytest.approx(alone.ci_lower)
    assert q.method.endswith("+ always-valid") and q.ci_lower < alone.ci_lower
    assert q.dropped_control == df[df.variant == "control"].time_to_refund_hours.isna().sum()
    only = abkit.analyze(df, [abkit.Quantile("time_to_refund_hours", 0.5, dropna=True)]).to_frame()
    assert only.effect.iloc[0] == pytest.approx(
        abkit.quantile_effect(df, "time_to_refund_hours", 0.5).to_frame().effect.iloc[0])
    ms = abkit.moments(df, [metrics[0]])
    with pytest.raises(abkit.AbkitError, match="quantiles, which cannot be computed from moments"):
        abkit.analyze(ms, metrics)
    with pytest.raises(abkit.AbkitError, match="quantiles, which cannot be computed from moments"):
        abkit.moments(df, metrics)


def test_windowed_bootstrap_equals_the_full_weighted_quantile():
    """The bootstrap accumulates weights only near the quantile; check it against all rows."""
    from abkit.stats.quantile_inference import _codes

    df = refunds(n_buyers=600, seed=6)
    x, cl = df.hours.to_numpy(), df.buyer_id.to_numpy()
    codes, U = _codes(cl, x.size)
    order = np.argsort(x, kind="stable")
    for q in (0.02, 0.5, 0.9, 0.995):
        _, draws = quantile_bootstrap(x, q, cl, n_boot=300, seed=9)
        rng = np.random.default_rng(9)  # the same unit draws, weighted over every row
        picks = rng.integers(0, U, size=(300, U))
        counts = np.stack([np.bincount(p, minlength=U) for p in picks]).astype(float)
        np.testing.assert_array_equal(draws, weighted_quantiles(x[order], counts[:, codes[order]], q))
