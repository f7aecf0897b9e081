"""Time to event (issue 17): Kaplan-Meier, Greenwood, restricted means and pseudo-observations against
independent implementations (statsmodels SurvfuncRight, scipy.stats.ecdf, weighted KM derivatives by finite
differences, leave-one-out jackknife), the data path (numpy vs DuckDB, timestamps, clustered rows), the
analyze hook and the errors. Published figures (R survRM2) and lifelines: test_survival_reference.py;
calibration (A/A, coverage, early reads, CUPED): test_survival_calibration.py."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats
from statsmodels.duration.survfunc import SurvfuncRight

import abkit
from abkit import simulate
from abkit.moments import Moments
from abkit.stats import survival as sv
from abkit.time_to_event import event_counts, pseudo_block, pseudo_observations


def censored(n=300, seed=0, scale=10.0, cens=15.0, ties=False):
    """Exponential event times, uniform censoring (about half censored); integer days with ``ties``."""
    rng = np.random.default_rng(seed)
    t = rng.exponential(scale, n)
    c = rng.uniform(0, cens * 2, n)
    if ties:
        t, c = np.ceil(t), np.ceil(c)
    return np.minimum(t, c), (t <= c).astype(float)


def two_arms(n=2000, seed=0, hr=1.0, covariate=False):
    rng = np.random.default_rng(seed)
    arm = np.where(rng.random(n) < 0.5, "control", "treatment")
    frail = rng.gamma(2.0, 0.5, n)
    rate = 0.1 * frail * np.where(arm == "treatment", hr, 1.0)
    t = rng.exponential(1.0, n) / rate
    c = rng.uniform(0, 40, n)
    df = pd.DataFrame({"variant": arm, "days": np.minimum(t, c), "refunded": (t <= c).astype(int)})
    if covariate:
        df["pre_days"] = np.minimum(rng.exponential(1.0, n) / (0.1 * frail), 30)
        df["pre_orders"] = rng.poisson(3 * frail)
    return df


# --------------------------------------------------------------------------- Kaplan-Meier and Greenwood
@pytest.mark.parametrize("seed,ties", [(0, False), (1, True), (2, True)])
def test_kaplan_meier_and_greenwood_equal_statsmodels(seed, ties):
    t, e = censored(seed=seed, ties=ties)
    km = sv.kaplan_meier(sv.EventTable.from_durations(t, e))
    ref = SurvfuncRight(t, e)
    ev = km.events > 0
    np.testing.assert_allclose(km.time[ev], ref.surv_times, rtol=0, atol=0)
    np.testing.assert_allclose(km.survival[ev], ref.surv_prob, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(np.sqrt(km.variance[ev]), ref.surv_prob_se, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(km.at_risk[ev], ref.n_risk, rtol=0)
    np.testing.assert_allclose(km.events[ev], ref.n_events, rtol=0)


@pytest.mark.parametrize("transform,method", [("log-log", "log-log"), ("linear", "linear")])
def test_pointwise_bands_equal_scipy_ecdf(transform, method):
    t, e = censored(n=250, seed=3, ties=True)
    km = sv.kaplan_meier(sv.EventTable.from_durations(t, e))
    ref = stats.ecdf(stats.CensoredData(uncensored=t[e == 1], right=t[e == 0]))
    ci = ref.sf.confidence_interval(0.95, method=method)
    ev = (km.events > 0) & (km.survival > 0)
    x = km.time[ev]
    lo, hi = km.band(0.05, transform)
    np.testing.assert_allclose(ref.sf.evaluate(x), km.survival[ev], rtol=1e-13)
    np.testing.assert_allclose(lo[ev], np.nan_to_num(ci.low.evaluate(x), nan=0.0), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(hi[ev], np.nan_to_num(ci.high.evaluate(x), nan=1.0), rtol=1e-10, atol=1e-13)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # statsmodels evaluates log(-log 0)
@pytest.mark.parametrize("transform,method", [("log-log", "cloglog"), ("linear", "linear"), ("log", "log")])
@pytest.mark.parametrize("seed", [0, 4, 5])
def test_median_and_brookmeyer_crowley_interval_equal_statsmodels(transform, method, seed):
    t, e = censored(n=400, seed=seed, scale=8.0, cens=25.0)
    km = sv.kaplan_meier(sv.EventTable.from_durations(t, e))
    ref = SurvfuncRight(t, e)
    value, lo, hi = sv.quantile_time(km, 0.5, 0.05, transform)
    assert value == ref.quantile(0.5)
    assert (lo, hi) == tuple(float(x) for x in ref.quantile_ci(0.5, alpha=0.05, method=method))
    v25, lo25, hi25 = sv.quantile_time(km, 0.25, 0.1, transform)
    assert v25 == ref.quantile(0.25)
    assert (lo25, hi25) == tuple(float(x) for x in ref.quantile_ci(0.25, alpha=0.1, method=method))


def test_median_not_reached_is_nan_not_a_number():
    t = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    e = np.array([1, 0, 0, 0, 0, 0.0])
    value, lo, hi = sv.quantile_time(sv.kaplan_meier(sv.EventTable.from_durations(t, e)), 0.5)
    assert np.isnan(value)


# --------------------------------------------------------------------------- restricted mean and its variance
def _weighted_rmst(t, e, w, tau):
    """RMST of statsmodels' frequency-weighted KM, integrated independently of abkit."""
    sf = SurvfuncRight(t, e, freq_weights=w)
    times = np.concatenate(([0.0], sf.surv_times[sf.surv_times < tau], [tau]))
    heights = np.concatenate(([1.0], sf.surv_prob[sf.surv_times < tau]))
    return float(np.sum(np.diff(times) * heights))


@pytest.mark.parametrize("ties", [False, True])
def test_greenwood_rmst_variance_is_the_sum_of_squared_weight_derivatives(ties):
    # An independent route to the variance: differentiate statsmodels' weighted Kaplan-Meier with respect to
    # each unit's weight (central differences) and sum the squares; abkit's closed form must agree.
    t, e = censored(n=60, seed=7, ties=ties)
    tau = 12.0
    est = sv.restricted_mean(sv.EventTable.from_durations(t, e), tau)
    assert est.value == pytest.approx(_weighted_rmst(t, e, np.ones(t.size), tau), rel=1e-13)
    h = 1e-6
    deriv = np.empty(t.size)
    for i in range(t.size):
        up, down = np.ones(t.size), np.ones(t.size)
        up[i] += h
        down[i] -= h
        deriv[i] = (_weighted_rmst(t, e, up, tau) - _weighted_rmst(t, e, down, tau)) / (2 * h)
    assert np.sum(deriv**2) == pytest.approx(est.variance, rel=1e-6)
    value, A = sv.restricted_mean_coefficients(sv.EventTable.from_durations(t, e), tau)
    U = sv.influence(sv.EventTable.from_durations(t, e), A, t, e)
    np.testing.assert_allclose(U, deriv, rtol=1e-5, atol=1e-8)


def test_rmst_is_the_mean_of_restricted_times_without_censoring():
    rng = np.random.default_rng(11)
    t = rng.exponential(5.0, 500)
    est = sv.restricted_mean(sv.EventTable.from_durations(t, np.ones(t.size)), 6.0)
    x = np.minimum(t, 6.0)
    assert est.value == pytest.approx(x.mean(), rel=1e-13)
    # without censoring Greenwood's variance is the plug-in variance of the mean, sum (x - xbar)^2 / n^2
    assert est.variance == pytest.approx(np.sum((x - x.mean()) ** 2) / x.size**2, rel=1e-10)


def test_horizon_beyond_follow_up_is_refused_unless_the_curve_reached_zero():
    t, e = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 0.0])
    with pytest.raises(abkit.DataError, match="beyond the longest follow-up"):
        sv.restricted_mean(sv.EventTable.from_durations(t, e), 5.0)
    all_events = sv.restricted_mean(sv.EventTable.from_durations(t, np.ones(3)), 5.0)
    assert all_events.value == pytest.approx(2.0)  # mean of 1, 2, 3: the curve is 0 after 3


def test_event_tables_add_up_and_truncate_without_changing_the_curve():
    t, e = censored(n=200, seed=8, ties=True)
    whole = sv.EventTable.from_durations(t, e)
    parts = sv.EventTable.from_durations(t[:70], e[:70]) + sv.EventTable.from_durations(t[70:], e[70:])
    np.testing.assert_array_equal(parts.time, whole.time)
    np.testing.assert_array_equal(parts.events, whole.events)
    np.testing.assert_array_equal(parts.removed, whole.removed)
    cut = whole.truncated(10.0)
    assert cut.last_time == 10.0 and cut.n == whole.n
    assert sv.restricted_mean(cut, 10.0).value == sv.restricted_mean(whole, 10.0).value
    assert sv.restricted_mean(cut, 10.0).variance == pytest.approx(sv.restricted_mean(whole, 10.0).variance, rel=1e-14)


# --------------------------------------------------------------------------- pseudo-observations
@pytest.mark.parametrize("ties", [False, True])
def test_pseudo_observations_mean_is_the_km_rmst_and_variance_is_greenwood(ties):
    t, e = censored(n=500, seed=9, ties=ties)
    table = sv.EventTable.from_durations(t, e)
    value, A = sv.restricted_mean_coefficients(table, 14.0)
    phi = sv.pseudo_observations(value, sv.influence(table, A, t, e))
    est = sv.restricted_mean(table, 14.0)
    assert phi.mean() == pytest.approx(est.value, rel=1e-13)  # exact, not asymptotic
    n = t.size
    assert phi.var(ddof=1) / n == pytest.approx(n / (n - 1) * est.variance, rel=1e-11)
    # share with the event by t: the same identities
    S, a = sv.survival_coefficients(table, 6.0)
    phi_s = sv.pseudo_observations(S, sv.influence(table, a, t, e))
    assert phi_s.mean() == pytest.approx(S, rel=1e-13)
    assert phi_s.var(ddof=1) / n == pytest.approx(n / (n - 1) * sv.survival_at(table, 6.0).variance, rel=1e-11)


def test_infinitesimal_jackknife_pseudo_values_approximate_the_leave_one_out_jackknife():
    # Andersen and Perme's jackknife pseudo-value n theta - (n - 1) theta_(-i), by brute force (n KM fits)
    t, e = censored(n=200, seed=10)
    tau = 12.0
    table = sv.EventTable.from_durations(t, e)
    value, A = sv.restricted_mean_coefficients(table, tau)
    ij = sv.pseudo_observations(value, sv.influence(table, A, t, e))
    n = t.size
    jk = np.empty(n)
    for i in range(n):
        keep = np.arange(n) != i
        jk[i] = n * value - (n - 1) * sv.restricted_mean(sv.EventTable.from_durations(t[keep], e[keep]), tau).value
    assert np.corrcoef(ij, jk)[0, 1] > 0.999
    assert np.max(np.abs(ij - jk)) < 0.05 * np.std(jk)  # O(1/n) per unit
    assert abs(ij.mean() - jk.mean()) < 0.01 * np.std(jk) / np.sqrt(n)


@pytest.mark.parametrize("resolution", [None, 0.5])
def test_pseudo_moments_from_per_time_sums_equal_the_column_moments(resolution):
    df = two_arms(n=3000, seed=1, covariate=True)
    m = abkit.TimeToEvent("days", "refunded", horizon=20, covariate=["pre_days", "pre_orders"], resolution=resolution)
    counts = event_counts(df, m)
    block = pseudo_block(counts, ["control", "treatment"])
    frame = pseudo_observations(df, m)
    direct = Moments.from_arrays(
        pd.factorize(frame["variant"])[0],
        frame[[f"{m.name} pseudo", "pre_days", "pre_orders"]].to_numpy(),
        list(pd.factorize(frame["variant"])[1]),
        ["p", "a", "b"],
    )
    for arm in ("control", "treatment"):
        g, h = block.group_index(arm), direct.group_index(arm)
        np.testing.assert_allclose(block.mean[g], direct.mean[h], rtol=1e-12)
        np.testing.assert_allclose(block.comoment[g], direct.comoment[h], rtol=1e-9, atol=1e-9)


def test_analyze_equals_a_mean_of_the_pseudo_column_with_cuped_lin_and_always_valid():
    df = two_arms(n=4000, seed=2, hr=1.2, covariate=True)
    always_valid = abkit.sequential.AlwaysValid(planned_n=len(df))
    for cov, seq in (
        (None, False),
        ("pre_days", False),
        (["pre_days", "pre_orders"], False),
        ("pre_days", always_valid),
    ):
        m = abkit.TimeToEvent("days", "refunded", horizon=25, name="ttr", covariate=cov)
        frame = pseudo_observations(df, m)
        ref = abkit.analyze(frame, abkit.Mean("ttr pseudo", cov, name="ttr", better="lower"), sequential=seq)
        got = abkit.analyze(df, m, sequential=seq)
        cols = [
            "control_value",
            "treatment_value",
            "effect",
            "ci_lower",
            "ci_upper",
            "p_value",
            "rel_ci_lower",
            "rel_ci_upper",
            "se",
            "variance_reduction",
        ]
        a, b = got.to_frame().iloc[0], ref.to_frame().iloc[0]
        for c in cols:
            assert a[c] == pytest.approx(b[c], rel=1e-9, abs=1e-12, nan_ok=True), (cov, seq, c)


def test_analyze_rows_are_the_restricted_means_with_greenwood_variance():
    df = two_arms(n=3000, seed=3, hr=1.3)
    m = abkit.TimeToEvent("days", "refunded", horizon=20, name="ttr")
    row = abkit.analyze(df, [m]).row("ttr")
    est = {}
    for arm in ("control", "treatment"):
        s = df[df.variant == arm]
        est[arm] = (sv.restricted_mean(sv.EventTable.from_durations(s.days, s.refunded), 20.0), len(s))
    assert row["control_value"] == pytest.approx(est["control"][0].value, rel=1e-12)
    assert row["treatment_value"] == pytest.approx(est["treatment"][0].value, rel=1e-12)
    assert row["effect"] == pytest.approx(est["treatment"][0].value - est["control"][0].value, rel=1e-10)
    expected = sum(n / (n - 1) * e.variance for e, n in est.values())
    assert row["se"] ** 2 == pytest.approx(expected, rel=1e-10)
    assert row["rel_effect"] == pytest.approx(est["treatment"][0].value / est["control"][0].value - 1, rel=1e-10)
    assert row["n_control"] + row["n_treatment"] == len(df)
    assert row["at_risk_control"] == int(((df.variant == "control") & (df.days >= 20)).sum())


def test_cuped_on_pseudo_observations_reduces_the_variance():
    df = simulate.time_to_refund(40_000, hazard_ratio=1.2, seed=4)
    plain = abkit.analyze(df, abkit.TimeToEvent("days_to_refund", "refunded", horizon=30)).to_frame().iloc[0]
    cuped = (
        abkit.analyze(df, abkit.TimeToEvent("days_to_refund", "refunded", horizon=30, covariate="pre_refund_days"))
        .to_frame()
        .iloc[0]
    )
    assert cuped["variance_reduction"] > 0.05
    assert cuped["se"] < plain["se"] * 0.98
    assert cuped["se"] == pytest.approx(plain["se"] * np.sqrt(1 - cuped["variance_reduction"]), rel=0.01)


# --------------------------------------------------------------------------- data path
@pytest.fixture(scope="module")
def refunds_df():
    return simulate.time_to_refund(20_000, hazard_ratio=1.25, dropout_per_day=0.01, read_day=40, seed=5)


def test_timestamps_give_the_same_durations_as_the_columns(refunds_df, tmp_path):
    df = refunds_df
    end = df.attrs["data_end"]
    nodrop = simulate.time_to_refund(5_000, hazard_ratio=1.25, read_day=40, seed=6)
    cols = abkit.TimeToEvent("days_to_refund", "refunded", horizon=10, name="x")
    stamps = abkit.TimeToEvent.from_timestamps(
        "exposure_time", "refund_time", nodrop.attrs["data_end"], horizon=10, name="x"
    )
    a = abkit.analyze(nodrop, cols).to_frame().iloc[0]
    b = abkit.analyze(nodrop, stamps).to_frame().iloc[0]
    assert a["effect"] == pytest.approx(b["effect"], rel=1e-12) and a["se"] == pytest.approx(b["se"], rel=1e-12)
    path = tmp_path / "r.parquet"
    nodrop.to_parquet(path)
    c = abkit.analyze(str(path), stamps).to_frame().iloc[0]
    assert c["effect"] == pytest.approx(b["effect"], rel=1e-9) and c["se"] == pytest.approx(b["se"], rel=1e-9)
    d = abkit.analyze(pa.Table.from_pandas(nodrop), stamps).to_frame().iloc[0]
    assert d["effect"] == pytest.approx(b["effect"], rel=1e-12)
    # an event stamped after the read is censored at the read
    early = abkit.TimeToEvent.from_timestamps("exposure_time", "refund_time", "2026-09-10", horizon=5, name="e")
    counts = event_counts(nodrop[nodrop.exposure_time < "2026-09-05"], early)
    assert max(a.table.last_time for a in counts.arms.values()) <= 5.0
    assert end  # the sample's read time is recorded


@pytest.mark.parametrize("covariate", [None, "pre_refund_days"])
def test_duckdb_push_down_equals_numpy_with_a_resolution(refunds_df, tmp_path, covariate):
    import duckdb

    m = abkit.TimeToEvent("days_to_refund", "refunded", horizon=30, resolution=1 / 24, covariate=covariate)
    mem = abkit.analyze(refunds_df, m).to_frame().iloc[0]
    path = tmp_path / "r.parquet"
    refunds_df.to_parquet(path)
    con = duckdb.connect()
    for source in (str(path), con.read_parquet(str(path))):
        got = abkit.analyze(source, m).to_frame().iloc[0]
        for c in ("control_value", "treatment_value", "effect", "se", "ci_lower", "p_value", "variance_reduction"):
            assert got[c] == pytest.approx(mem[c], rel=1e-10, abs=1e-14, nan_ok=True), c
    counts = event_counts(str(path), m)
    assert counts.engine == "duckdb"
    assert all(a.table.time.size <= 30 * 24 + 1 for a in counts.arms.values())  # bins, not rows


def test_binning_moves_the_restricted_mean_by_less_than_the_resolution(refunds_df):
    exact = abkit.analyze(refunds_df, abkit.TimeToEvent("days_to_refund", "refunded", horizon=30)).to_frame().iloc[0]
    for r in (1.0, 0.25, 1 / 24):
        binned = (
            abkit.analyze(refunds_df, abkit.TimeToEvent("days_to_refund", "refunded", horizon=30, resolution=r))
            .to_frame()
            .iloc[0]
        )
        assert 0 <= binned["control_value"] - exact["control_value"] <= r  # times are rounded up
        assert abs(binned["effect"] - exact["effect"]) <= r / 4


def test_exact_times_in_duckdb_equal_numpy_on_integer_days(tmp_path):
    t, e = censored(n=3000, seed=12, ties=True)
    df = pd.DataFrame({"variant": np.where(np.arange(t.size) % 2, "treatment", "control"), "t": t, "e": e})
    path = tmp_path / "x.parquet"
    df.to_parquet(path)
    m = abkit.TimeToEvent("t", "e", horizon=15)
    a, b = abkit.analyze(df, m).to_frame().iloc[0], abkit.analyze(str(path), m).to_frame().iloc[0]
    assert a["effect"] == pytest.approx(b["effect"], rel=1e-13) and a["se"] == pytest.approx(b["se"], rel=1e-12)


def test_clustered_rows_count_each_buyer_once():
    # Duplicating every row within its buyer leaves the curve unchanged; the clustered analysis gives exactly
    # the standard error of the original data, the row-level one a too-small one.
    df = two_arms(n=1500, seed=13, hr=1.2)
    df["buyer_id"] = np.arange(len(df))
    twice = pd.concat([df, df], ignore_index=True)
    base = abkit.analyze(df, abkit.TimeToEvent("days", "refunded", horizon=20)).to_frame().iloc[0]
    clustered = (
        abkit.analyze(twice, abkit.TimeToEvent("days", "refunded", horizon=20, unit="buyer_id")).to_frame().iloc[0]
    )
    naive = abkit.analyze(twice, abkit.TimeToEvent("days", "refunded", horizon=20)).to_frame().iloc[0]
    assert clustered["effect"] == pytest.approx(base["effect"], rel=1e-12)
    assert clustered["se"] == pytest.approx(base["se"], rel=1e-10)
    assert clustered["n_control"] == base["n_control"]
    assert naive["se"] == pytest.approx(base["se"] / np.sqrt(2), rel=0.01)  # what ignoring the clusters claims
    with pytest.raises(abkit.DataError, match="several arms"):
        bad = twice.copy()
        bad.loc[0, "variant"] = "treatment" if bad.loc[1500, "variant"] == "control" else "control"
        abkit.analyze(bad, abkit.TimeToEvent("days", "refunded", horizon=20, unit="buyer_id"))


def test_three_arms_and_the_mixed_analyze_call():
    rng = np.random.default_rng(14)
    df = two_arms(n=3000, seed=14, hr=1.2)
    df["variant"] = rng.choice(["control", "b", "c"], len(df))
    df["orders"] = rng.poisson(2, len(df)) + 1
    df["refunds"] = rng.binomial(df["orders"], 0.2)
    res = abkit.analyze(
        df,
        [
            abkit.Ratio("refunds", "orders", name="refund_rate"),
            abkit.TimeToEvent("days", "refunded", horizon=20, name="ttr"),
        ],
        correction="holm",
    )
    frame = res.to_frame()
    assert list(frame.metric) == ["refund_rate", "refund_rate", "ttr", "ttr"]
    only = abkit.analyze(df, abkit.TimeToEvent("days", "refunded", horizon=20, name="ttr")).to_frame()
    np.testing.assert_allclose(frame[frame.metric == "ttr"].effect.to_numpy(), only.effect.to_numpy(), rtol=1e-12)
    assert res.srm.observed == tuple(int((df.variant == a).sum()) for a in res.arms)


def test_missing_values_errors_and_dropna_counts():
    df = two_arms(n=500, seed=15)
    df.loc[[3, 10, 11], "days"] = np.nan
    m = abkit.TimeToEvent("days", "refunded", horizon=20)
    with pytest.raises(abkit.DataError, match="'days' has 3 missing"):
        abkit.analyze(df, m)
    row = abkit.analyze(df, abkit.TimeToEvent("days", "refunded", horizon=20, dropna=True)).to_frame().iloc[0]
    assert row["dropped_control"] + row["dropped_treatment"] == 3
    assert row["n_control"] + row["n_treatment"] == 497


@pytest.mark.parametrize(
    "change,match",
    [
        (lambda d: d.assign(days=d.days - 100), "negative durations"),
        (lambda d: d.assign(refunded=d.refunded * 2), "must be 0 .censored. or 1"),
    ],
)
def test_bad_values_are_refused_in_memory_and_in_duckdb(change, match, tmp_path):
    df = change(two_arms(n=300, seed=16))
    m = abkit.TimeToEvent("days", "refunded", horizon=10)
    with pytest.raises(abkit.DataError, match=match):
        abkit.analyze(df, m)
    path = tmp_path / "bad.parquet"
    df.to_parquet(path)
    with pytest.raises(abkit.DataError, match=match):
        abkit.analyze(str(path), m)


def test_metric_declaration_errors():
    with pytest.raises(abkit.AbkitError, match="horizon= is required"):
        abkit.TimeToEvent("days", "refunded")
    with pytest.raises(abkit.AbkitError, match="not a multiple of resolution"):
        abkit.TimeToEvent("days", "refunded", horizon=10, resolution=3)
    with pytest.raises(abkit.AbkitError, match="same column"):
        abkit.TimeToEvent("days", "days", horizon=10)
    with pytest.raises(abkit.AbkitError, match="data_end"):
        abkit.TimeToEvent.from_timestamps("a", "b", "not a date", horizon=10)
    m = abkit.TimeToEvent("days", "refunded", horizon=30, covariate="pre_days")
    assert "CUPED" in m.method_label and m.columns == ("refunded", "days", "pre_days")
    df = two_arms(n=400, seed=17, covariate=True)
    with pytest.raises(abkit.AbkitError, match="time-to-event"):
        abkit.moments(df, m)
    with pytest.raises(abkit.AbkitError, match="times to event"):
        abkit.analyze(abkit.moments(df, abkit.Mean("days")), [m])


def test_horizon_beyond_the_data_says_how_long_each_arm_was_followed():
    df = two_arms(n=400, seed=18)
    df["days"] = np.minimum(df["days"], 12.0)
    df.loc[df.days >= 12.0, "refunded"] = 0
    with pytest.raises(abkit.DataError, match=r"followed for at most 12 days.*horizon 30 days"):
        abkit.analyze(df, abkit.TimeToEvent("days", "refunded", horizon=30))


# --------------------------------------------------------------------------- the result object
def test_result_tables_curves_plot_and_words():
    import matplotlib

    matplotlib.use("Agg")
    df = simulate.time_to_refund(6_000, hazard_ratio=1.4, seed=19)
    m = abkit.TimeToEvent("days_to_refund", "refunded", horizon=30, name="time to refund")
    res = abkit.analyze_time_to_event(df, m)
    assert res.to_frame().iloc[0]["effect"] == pytest.approx(abkit.analyze(df, m).to_frame().iloc[0]["effect"])
    rm = res.restricted_means()
    assert set(rm.measure) == {"rmst", "rmtl", "rmst difference", "rmst ratio", "rmtl ratio"}
    ratio = rm[rm.measure == "rmst ratio"].iloc[0]
    arms = rm[rm.measure == "rmst"].set_index("arm").estimate
    assert ratio.estimate == pytest.approx(arms["treatment"] / arms["control"], rel=1e-12)
    curves = res.curves()
    assert set(curves.arm) == {"control", "treatment"}
    first = curves.groupby("arm").first()
    assert (first.time == 0).all() and (first.survival == 1).all()
    assert ((curves.ci_lower <= curves.survival + 1e-12) & (curves.survival <= curves.ci_upper + 1e-12)).all()
    np.testing.assert_allclose(curves.share_with_event, 1 - curves.survival)
    share = res.share_with_event(3)
    truth = simulate.time_to_refund_truth(30, 3, hazard_ratio=1.4)
    assert (
        share.iloc[0]["ci_lower"]
        < truth["treatment"]["share_by"] - truth["control"]["share_by"]
        < share.iloc[0]["ci_upper"]
    )
    med = res.medians().iloc[0]
    assert med.ci_lower < med.effect < med.ci_upper and med.p_value < 0.05
    ax = res.plot()
    assert ax.get_xlabel() == "days since start" and "share with the event" in ax.get_ylabel()
    assert len(ax.get_legend().get_texts()) == 2
    words = res.sentence()
    assert words.startswith("refunds arrive ") and "sooner on average within the first 30 days, 95% CI" in words


def test_sentences_are_computed_from_the_numbers():
    assert (
        abkit.time_to_event.effect_sentence(-1.8, -2.4, -1.2, 30)
        == "refunds arrive 1.8 days sooner on average within the first 30 days, 95% CI 1.2 to 2.4"
    )
    assert (
        abkit.time_to_event.effect_sentence(0.4, -0.2, 1.1, 14, time_unit="hours", events="answers")
        == "answers arrive 0.4 hours later on average within the first 14 hours, 95% CI 0.2 sooner to 1.1 later"
    )
    assert (
        abkit.time_to_event.share_sentence(0.41, 0.452, 0.031, 0.053, 3)
        == "the share refunded within 3 days rises from 41.0% to 45.2% (+4.2 points, 95% CI +3.1 to +5.3)"
    )


def test_median_difference_p_value_agrees_with_its_interval():
    for seed in range(6):
        a, ea = censored(n=300, seed=100 + seed, scale=8.0, cens=30)
        b, eb = censored(n=300, seed=200 + seed, scale=8.0 + seed, cens=30)
        out = sv.median_difference(
            sv.kaplan_meier(sv.EventTable.from_durations(b, eb)), sv.kaplan_meier(sv.EventTable.from_durations(a, ea))
        )
        outside = not (out["ci_lower"] <= 0 <= out["ci_upper"])
        assert outside == (out["p_value"] < 0.05), out


def test_other_entry_points_refuse_a_time_to_event_metric_rather_than_read_its_event_indicator():
    df = two_arms(n=600, seed=20)
    df["market"] = np.where(np.arange(len(df)) % 2, "DE", "FR")
    df["day"] = np.arange(len(df)) % 7
    m = abkit.TimeToEvent("days", "refunded", horizon=10)
    # abkit.analyze_segments analyses time-to-event metrics by segment now: tests/test_survival_segments.py
    with pytest.raises(abkit.AbkitError, match="time-to-event"):
        abkit.sequential.monitor(df, [m], by="day")
    with pytest.raises(abkit.AbkitError, match="times to event; plan them with abkit.power.simulate_power"):
        abkit.power.plan(df, m, daily_units=100)
    with pytest.raises(abkit.AbkitError, match="simulate_power injects effects into Mean"):
        abkit.power.simulate_power(df, m, effect=0.1, n_per_arm=100, n_sims=10)
    history = pseudo_observations(df, m, variant=None, name="pseudo")
    assert list(history.columns) == ["pseudo"] and len(history) == len(df)
    whole = sv.restricted_mean(sv.EventTable.from_durations(df.days, df.refunded), 10.0)
    assert history.pseudo.mean() == pytest.approx(whole.value, rel=1e-12)


def test_spark_push_down_equals_numpy(spark, tmp_path):
    df = simulate.time_to_refund(8_000, hazard_ratio=1.3, read_day=40, seed=23)
    path = tmp_path / "r.parquet"
    df.assign(variant=df.variant.astype(str)).to_parquet(path)
    sdf = spark.read.parquet(str(path))
    for m in (
        abkit.TimeToEvent("days_to_refund", "refunded", horizon=20, resolution=1 / 24, covariate="pre_refund_days"),
        abkit.TimeToEvent.from_timestamps(
            "exposure_time", "refund_time", df.attrs["data_end"], horizon=20, resolution=1 / 24
        ),
    ):
        mem = abkit.analyze(df, m).to_frame().iloc[0]
        got = abkit.analyze(sdf, m).to_frame().iloc[0]
        for c in ("control_value", "treatment_value", "effect", "se", "variance_reduction"):
            assert got[c] == pytest.approx(mem[c], rel=1e-9, abs=1e-12, nan_ok=True), c


def test_counts_of_disjoint_parts_add_up_to_the_counts_of_the_whole(tmp_path):
    df = two_arms(n=3000, seed=24, hr=1.2, covariate=True)
    m = abkit.TimeToEvent("days", "refunded", horizon=20, covariate=["pre_days", "pre_orders"], resolution=0.25)
    path = tmp_path / "second.parquet"
    df.iloc[1000:].to_parquet(path)
    parts = event_counts(df.iloc[:1000], m) + event_counts(str(path), m)  # shifts differ: re-centred
    whole = abkit.analyze_time_to_event(df, m).to_frame().iloc[0]
    added = abkit.analyze_time_to_event(parts, m).to_frame().iloc[0]
    for c in ("control_value", "treatment_value", "effect", "se", "variance_reduction", "n_control"):
        assert added[c] == pytest.approx(whole[c], rel=1e-10), c
    with pytest.raises(abkit.AbkitError, match="different metrics"):
        event_counts(df, m) + event_counts(df, abkit.TimeToEvent("days", "refunded", horizon=10))


def test_times_on_a_binned_grid_compare_equal_to_their_bins():
    # k * r in floating point may land just above or below k r; the horizon and the "share by" times are written
    # as the grid writes them, so a bin at exactly the asked time is counted (and an off-grid time is refused)
    df = two_arms(n=4000, seed=25, hr=1.2)
    df["days"] = np.round(df["days"] * 10) / 10
    assert 23 * 0.1 > 2.3  # the float trap: bin 23 of 0.1 lies above 2.3
    for r, at, horizon in ((0.1, 0.7, 3.0), (0.1, 2.3, 3.0), (1 / 3, 2.0, 10.0), (0.05, 1.15, 1.5)):
        m = abkit.TimeToEvent("days", "refunded", horizon=horizon, resolution=r)
        res = abkit.analyze_time_to_event(df, m)
        share = res.share_with_event(at).iloc[0]
        ctl = df[df.variant == "control"]
        key = np.ceil(ctl.days.to_numpy() / r - 1e-9)
        k_at = round(at / r)
        # KM share by `at` on the binned times, computed on the integer bin numbers
        table = sv.EventTable.from_durations(key, np.where(key <= round(horizon / r), ctl.refunded, 0))
        expected = 1 - sv.kaplan_meier(table).at(k_at).value
        assert share.control_value == pytest.approx(expected, rel=1e-12), (r, at)
    with pytest.raises(abkit.AbkitError, match="not a multiple of its resolution"):
        abkit.analyze_time_to_event(
            df, abkit.TimeToEvent("days", "refunded", horizon=6, resolution=0.5)
        ).share_with_event(1.25)
