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
from abkit.stats.quantile_inference import (
    cluster_ecdf_variance,
    difference,
    mid_quantile,
    mid_support,
    quantile_bootstrap,
    quantile_delta,
    weighted_mid_quantiles,
)
from abkit.stats.two_sample import linearize


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
        assert est.value == pytest.approx(np.quantile(x, q, method="hazen"), rel=1e-12)  # no ties: definition 5
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


def test_weighted_mid_quantiles_and_seeded_bootstrap():
    xs = np.array([1.0, 2.0, 3.0, 4.0])
    w = np.array([[1, 1, 1, 1], [0, 0, 1, 3], [5, 0, 0, 1]], dtype=float)
    # by hand: F_mid = (cum - w/2) / total at the points with weight, interpolated; weight 0 = not in the support
    #   [1,1,1,1]: F_mid = .125 .375 .625 .875 -> 2.5;  [0,0,1,3]: 3 at 1/8, 4 at 5/8 -> 3 + (3/8)/(1/2) = 3.75
    #   [5,0,0,1]: 1 at 5/12, 4 at 11/12 -> 1 + 3 (1/12)/(1/2) = 1.5
    np.testing.assert_allclose(weighted_mid_quantiles(xs, w, 0.5), [2.5, 3.75, 1.5], rtol=1e-12)
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
    # relative CI: Fieller's set {r : (Q_t - (1 + r) Q_c)^2 <= z^2 (se_t^2 + (1 + r)^2 se_c^2)},
    # its ends by root-finding
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
    boot = abkit.quantile_effect(df, "hours", 0.9, unit="buyer_id", method="bootstrap", n_boot=400, seed=3, name="p90")
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
    metrics = [
        abkit.Mean("refund_amount", "pre_refund_amount"),
        abkit.Quantile("time_to_refund_hours", 0.9, dropna=True, better="lower"),
        abkit.Ratio("refunds", "orders", name="refund_rate"),
    ]
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
        abkit.quantile_effect(df, "time_to_refund_hours", 0.5).to_frame().effect.iloc[0]
    )
    ms = abkit.moments(df, [metrics[0]])
    with pytest.raises(abkit.AbkitError, match="quantiles, which cannot be computed from moments"):
        abkit.analyze(ms, metrics)
    with pytest.raises(abkit.AbkitError, match="quantiles, which cannot be computed from moments"):
        abkit.moments(df, metrics)


@pytest.mark.parametrize("tied", [False, True])
def test_windowed_bootstrap_equals_the_full_weighted_quantile(tied):
    """The bootstrap sums weights only near the quantile; check it against all rows (continuous and tied)."""
    from abkit.stats.quantile_inference import _codes

    df = refunds(n_buyers=600, seed=6)
    x, cl = df.hours.to_numpy(), df.buyer_id.to_numpy()
    if tied:
        x = np.round(x / 24.0)  # whole days
    codes, U = _codes(cl, x.size)
    order = np.argsort(x, kind="stable")
    support, _, starts = mid_support(x[order])
    for q in (0.02, 0.5, 0.9, 0.995):
        if tied and q == 0.02:
            continue  # in the point mass of the first day: refused (tested below)
        _, draws = quantile_bootstrap(x, q, cl, n_boot=300, seed=9)
        rng = np.random.default_rng(9)  # the same unit draws, weighted over every row
        picks = rng.integers(0, U, size=(300, U))
        counts = np.stack([np.bincount(p, minlength=U) for p in picks]).astype(float)
        per_point = np.add.reduceat(counts[:, codes[order]], starts, axis=1)
        np.testing.assert_allclose(draws, weighted_mid_quantiles(support, per_point, q), rtol=1e-12)


# --------------------------------------------------------------------------- ties (issue 12.6)
def parzen_mid_quantile(support, pmf, q):
    """The mid-distribution quantile of a distribution on ``support`` with probabilities ``pmf``, from its
    definition (Parzen 2004): F_mid(u_j) = F(u_j) - p_j / 2, interpolated linearly, inverted."""
    F = np.cumsum(pmf)
    fmid = F - np.asarray(pmf) / 2
    for j in range(len(support) - 1):
        if fmid[j] <= q <= fmid[j + 1]:
            return support[j] + (q - fmid[j]) / (fmid[j + 1] - fmid[j]) * (support[j + 1] - support[j])
    return support[0] if q < fmid[0] else support[-1]


def test_mid_quantile_is_parzens_and_hazens_without_ties():
    rng = np.random.default_rng(3)
    x = rng.lognormal(size=999)
    np.testing.assert_allclose(
        mid_quantile(np.sort(x), [0.1, 0.5, 0.9]), np.quantile(x, [0.1, 0.5, 0.9], method="hazen"), rtol=1e-12
    )
    days = rng.poisson(3, 5_000)
    u, c = np.unique(days, return_counts=True)
    for q in (0.05, 0.3, 0.5, 0.77, 0.9):
        assert mid_quantile(np.sort(days), q) == pytest.approx(parzen_mid_quantile(u, c / c.sum(), q), rel=1e-12)
    assert mid_quantile(np.array([1.0, 1, 2, 2, 2, 3]), 0.5) == pytest.approx(1.8)  # 1 + (1/2 - 1/6) / (5/12)


def test_tied_data_no_longer_give_a_zero_standard_error():
    """Issue 12.6: on whole days the median of each arm stuck to a whole day and its order-statistic interval
    collapsed: SE 0, a zero-width interval and p = 0 when the medians were different days (Poisson(2) vs
    Poisson(3): effect 1 [1, 1], p = 0), p = 1 with the interval [0, 0] when they were the same (Poisson(2.8)
    vs Poisson(3.2)), by the delta method and the bootstrap alike."""
    rng = np.random.default_rng(8)
    n = 3_000
    for lc, lt in ((2.0, 3.0), (2.8, 3.2)):
        df = pd.DataFrame(
            {
                "variant": np.repeat(["control", "treatment"], n),
                "days": np.concatenate([rng.poisson(lc, n), rng.poisson(lt, n)]).astype(float),
            }
        )
        rows = {}
        for method in ("delta", "bootstrap"):
            row = rows[method] = abkit.quantile_effect(df, "days", 0.5, method=method, n_boot=2000).to_frame().iloc[0]
            assert row.se > 0.03 and row.ci_upper - row.ci_lower > 0.1, row
            assert row.p_value == pytest.approx(2 * stats.norm.sf(abs(row.effect) / row.se), rel=1e-9)
            assert 0 < row.p_value < 1e-6 and row.ci_lower < row.effect < row.ci_upper  # real changes
            # the estimate is each arm's mid-distribution quantile, between the whole days
            assert row.control_value == pytest.approx(mid_quantile(np.sort(df.days[:n].to_numpy()), 0.5))
            assert row.control_value == pytest.approx(discrete_truth(lc, 0.5), abs=4 * row.se)
            assert row.treatment_value == pytest.approx(discrete_truth(lt, 0.5), abs=4 * row.se)
        assert rows["bootstrap"].se == pytest.approx(rows["delta"].se, rel=0.12)


def test_a_quantile_in_an_edge_point_mass_is_refused():
    """p10 of hours when 30% of rows are 0 hours: the quantile does not move with the sample (SE 0); refused
    with the reason and what to do, naming the metric and the arm."""
    rng = np.random.default_rng(2)
    n = 2_000
    hours = np.where(rng.random(2 * n) < 0.3, 0.0, np.round(rng.exponential(20, 2 * n)))
    df = pd.DataFrame({"variant": np.repeat(["control", "treatment"], n), "hours": hours})
    for method in ("delta", "bootstrap"):
        with pytest.raises(
            abkit.DataError,
            match=r"metric 'hours p10'.*arm 'control'.*point mass at the smallest "
            r"value, which holds 3\d\.\d% of the rows.*a Proportion",
        ):
            abkit.quantile_effect(df, "hours", 0.1, method=method, n_boot=200)
    assert abkit.quantile_effect(df, "hours", 0.5).to_frame().se.iloc[0] > 0  # inside the data: fine
    with pytest.raises(abkit.DataError, match="all 50 values are 4"):
        quantile_delta(np.full(50, 4.0), 0.5)


def discrete_truth(lam: float, q: float, sd_buyer: float = 0.0) -> float:
    """Mid-distribution quantile of Poisson(lam exp(a)) days, a ~ N(0, sd_buyer^2) (Gauss-Hermite)."""
    k = np.arange(80)
    if sd_buyer == 0:
        pmf = stats.poisson.pmf(k, lam)
    else:
        z, w = np.polynomial.hermite_e.hermegauss(80)
        pmf = (w[:, None] * stats.poisson.pmf(k[None, :], lam * np.exp(sd_buyer * z)[:, None])).sum(0) / w.sum()
    return parzen_mid_quantile(k.astype(float), pmf / pmf.sum(), q)


def discrete_runs(sims: int, seed: int, boot_sims: int = 0, per_arm: int = 600, buyers: int = 300):
    """A/A and A/B (days x 1.15 in rate) on whole days: ``per_arm`` rows of one buyer each (Poisson(3)),
    and the refunds of ``buyers`` buyers per arm, clustered (Poisson(3 e^a) days, a ~ N(0, 0.4^2),
    1 + Poisson(1.5) refunds per buyer). Returns the rates and the number of experiments of each."""
    rng = np.random.default_rng(seed)
    out = {
        k: []
        for k in (
            "iid_fpr_50",
            "iid_fpr_90",
            "iid_cover_50",
            "iid_cover_90",
            "cluster_fpr_90",
            "cluster_cover_90",
            "boot_fpr_50",
            "boot_cover_50",
        )
    }
    truth = {q: discrete_truth(3.0 * 1.15, q) - discrete_truth(3.0, q) for q in (0.5, 0.9)}
    truth_cl = discrete_truth(3.0 * 1.15, 0.9, 0.4) - discrete_truth(3.0, 0.9, 0.4)
    for s in range(sims):
        c, a0, t = (rng.poisson(3.0, per_arm), rng.poisson(3.0, per_arm), rng.poisson(3.45, per_arm))
        for q in (0.5, 0.9):
            qc = quantile_delta(c, q)
            out[f"iid_fpr_{q * 100:.0f}"].append(difference(quantile_delta(a0, q), qc)["p_value"] < 0.05)
            d = difference(quantile_delta(t, q), qc)
            out[f"iid_cover_{q * 100:.0f}"].append(d["ci_lower"] <= truth[q] <= d["ci_upper"])
        arms = []
        for rate in (1.0, 1.0, 1.15):
            a = rng.normal(0, 0.4, buyers)
            buyer = np.repeat(np.arange(buyers), 1 + rng.poisson(1.5, buyers))
            arms.append((rng.poisson(3.0 * rate * np.exp(a[buyer])).astype(float), buyer))
        cc = quantile_delta(*arms[0][:1], 0.9, arms[0][1])
        out["cluster_fpr_90"].append(difference(quantile_delta(arms[1][0], 0.9, arms[1][1]), cc)["p_value"] < 0.05)
        d = difference(quantile_delta(arms[2][0], 0.9, arms[2][1]), cc)
        out["cluster_cover_90"].append(d["ci_lower"] <= truth_cl <= d["ci_upper"])
        if s < boot_sims:
            bc = quantile_bootstrap(c, 0.5, n_boot=400, seed=s)[0]
            out["boot_fpr_50"].append(
                difference(quantile_bootstrap(a0, 0.5, n_boot=400, seed=s)[0], bc)["p_value"] < 0.05
            )
            d = difference(quantile_bootstrap(t, 0.5, n_boot=400, seed=s)[0], bc)
            out["boot_cover_50"].append(d["ci_lower"] <= truth[0.5] <= d["ci_upper"])
    return {k: float(np.mean(v)) for k, v in out.items() if v}, {k: len(v) for k, v in out.items() if v}


def test_quantiles_on_whole_days_are_calibrated():
    """A/A false-positive rate and coverage of the true difference of mid-quantiles on discrete data (the
    medians and p90s of Poisson days sit on a few whole days), within 4 Monte Carlo standard errors; the
    10,000-experiment run (1,500 buyers per arm; clustered: 3,000) is the slow test below (recorded in
    benchmarks/CALIBRATION.md)."""
    rates, reps = discrete_runs(600, seed=41, boot_sims=150)
    for key, value in rates.items():
        nominal = 0.05 if "fpr" in key else 0.95
        se = np.sqrt(nominal * (1 - nominal) / reps[key])
        print(f"{key}: {value:.4f} ({reps[key]} experiments)")
        assert abs(value - nominal) <= 4 * se, (key, value)


@pytest.mark.slow
def test_quantiles_on_whole_days_calibration_at_scale():
    from calibration_log import record

    rates, reps = discrete_runs(10_000, seed=42, boot_sims=2_000, per_arm=1_500, buyers=3_000)
    labels = {
        "iid": "delta method, 1,500 buyers per arm (one row each)",
        "cluster": "cluster delta method, the refunds of 3,000 buyers per arm",
        "boot": "bootstrap (400 draws), 1,500 buyers per arm (one row each)",
    }
    ok = True
    for key, value in rates.items():
        kind, stat, q = key.split("_")
        fpr = stat == "fpr"
        ok &= record(
            f"quantile_ties/{key}",
            section="Quantiles",
            test="test_quantile.py::test_quantiles_on_whole_days_calibration_at_scale",
            metric=f"days to refund p{q}, whole days (Poisson)",
            method=f"mid-distribution quantile, {labels[kind]}",
            statistic="false-positive rate" if fpr else "coverage of the true difference",
            value=value,
            nominal=0.05 if fpr else 0.95,
            reps=reps[key],
            note="whole-day data (Poisson days), where the usual sample quantile gave SE 0 (issue 12.6). "
            "Smaller samples fall a little short at the p90 (about 6-10% of rows per day there): 94.3% "
            "coverage with 600 buyers per arm (95.2% at 1,500); clustered refunds of 750 buyers per "
            "arm 93.8% (false-positive rate 0.066): the delta and bootstrap SEs are both 4% below the "
            "true sd there, 0.4% at 3,000 buyers",
        )
    assert ok
