"""Time to event (issue 17): calibration with heavy censoring, early reads, clustered rows, CUPED and power.

The truth is analytic (:func:`abkit.simulate.time_to_refund_truth`: a refund share ``pi``, exponential delays
with a gamma buyer frailty, so restricted means, shares by a time and medians have closed forms). Heavy
censoring: the data are read 14 days after the start of a 28-day enrolment (buyers scanned after day 14 are
not in the data, the others are followed 0-14 days) with an 8%/day dropout, so more than half of the buyers
are censored before the 10-day horizon and only about 5% are still followed at it.

* Fast: one large early read where the naive refund rate and the "dropna" mean time to refund are far from
  the truth while the censoring-aware reads contain it; power of the restricted-mean test through
  ``abkit.power.simulate_power`` on the pseudo-observation column against direct simulation.
* Slow (the calibration suite, recorded in ``benchmarks/CALIBRATION.md``): A/A false-positive rate and
  coverage of the restricted-mean difference (plain and CUPED), of the share refunded by 3 days and of the
  median difference; bias and coverage at an early read against the naive rate; clustered rows (refunds of
  buyers) covered only with the clustered variance.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import abkit
from abkit import simulate
from abkit.stats import survival as sv

ALPHA = 0.05
HEAVY = {"read_day": 14, "dropout_per_day": 0.08}
HORIZON = 10.0


def metric(**kw):
    return abkit.TimeToEvent("days_to_refund", "refunded", horizon=kw.pop("horizon", HORIZON), **kw)


# --------------------------------------------------------------------------- fast
def test_an_early_read_biases_the_naive_rate_and_mean_but_not_the_censoring_aware_reads():
    # Read 10 days into the test: instant-ish refunds in treatment (hazard ratio 1.5), the same eventual refund
    # share (85%) in both arms. Buyers were followed 0-10 days, so the naive "refunded so far" rate counts the
    # faster arm's refunds more completely, and the mean time over refunded buyers sees only fast refunds.
    df = simulate.time_to_refund(150_000, hazard_ratio=1.5, read_day=10, seed=21)
    truth = simulate.time_to_refund_truth(7.0, 3.0, hazard_ratio=1.5)
    naive = abkit.analyze(df, abkit.Proportion("refunded", name="naive_rate")).row("naive_rate")
    assert naive["p_value"] < 1e-6 and naive["ci_lower"] > 0.02  # "instant refunds raised the refund rate"
    assert truth["treatment"]["refund_share"] == truth["control"]["refund_share"]  # ... which they did not
    dropna = (
        abkit.analyze(df.assign(t=df.days_to_refund.where(df.refunded == 1)), abkit.Mean("t", dropna=True))
        .to_frame()
        .iloc[0]
    )
    true_mean_control = 2.0 / truth["control"]["rate"]  # E[delay | refunded], Lomax k = 2
    assert dropna["control_value"] < 0.5 * true_mean_control  # only the fast refunds are seen yet
    res = abkit.analyze_time_to_event(df, metric(horizon=7.0))
    rmst = res.to_frame().iloc[0]
    true_rmst = truth["treatment"]["rmst"] - truth["control"]["rmst"]
    assert rmst["ci_lower"] < true_rmst < rmst["ci_upper"]
    for arm, value in (("control", rmst["control_value"]), ("treatment", rmst["treatment_value"])):
        assert value == pytest.approx(truth[arm]["rmst"], abs=4 * rmst["se"])
    share = res.share_with_event(3.0).iloc[0]
    true_share = truth["treatment"]["share_by"] - truth["control"]["share_by"]
    assert share["ci_lower"] < true_share < share["ci_upper"]


def test_power_through_simulate_power_on_the_pseudo_observations_matches_direct_simulation():
    # simulate_power takes Mean, Proportion, Ratio and Quantile metrics; a time-to-event metric enters as the
    # Mean of its pseudo-observation column, with an additive effect (a shift of the restricted mean).
    history = simulate.time_to_refund(20_000, read_day=20, seed=22)
    m = metric()
    frame = abkit.time_to_event.pseudo_observations(history, m, name="pseudo")
    truth = simulate.time_to_refund_truth(HORIZON, hazard_ratio=1.12)
    shift = truth["treatment"]["rmst"] - truth["control"]["rmst"]
    n = 2000
    planned = abkit.power.simulate_power(
        frame, abkit.Mean("pseudo", better="lower"), effect=shift, relative=False, n_per_arm=n, n_sims=400, seed=1
    )
    hits = 0
    reps = 200
    for s in range(reps):
        df = simulate.time_to_refund(2 * n, hazard_ratio=1.12, read_day=20, seed=1000 + s)
        hits += abkit.analyze(df, m).to_frame().iloc[0]["p_value"] < ALPHA
    direct = hits / reps
    se = np.sqrt(planned.power * (1 - planned.power) / reps + planned.power * (1 - planned.power) / 400)
    assert abs(direct - planned.power) < 3.5 * se, (direct, planned.power)
    assert 0.3 < direct < 0.95


# --------------------------------------------------------------------------- slow: calibration
def _run(reps, seed, hazard_ratio, n=3000, share_at=3.0, **sim):
    """Per experiment: the restricted-mean rows (plain, CUPED), the share by ``share_at``, the median difference.

    The rows of :func:`abkit.analyze_time_to_event` are those of :func:`abkit.analyze` (test_survival.py).
    """
    metrics = [metric(name="plain"), metric(name="cuped", covariate="pre_refund_days")]
    out = []
    for r in range(reps):
        df = simulate.time_to_refund(n, hazard_ratio=hazard_ratio, seed=seed + r, **sim)
        results = [abkit.analyze_time_to_event(df, m) for m in metrics]
        row = {m.name: res.rows[0] for m, res in zip(metrics, results)}
        row["share"] = results[0].share_with_event(share_at).iloc[0].to_dict()
        row["median"] = results[0].medians().iloc[0].to_dict()
        row["censored_before_horizon"] = float(((df.refunded == 0) & (df.days_to_refund < HORIZON)).mean())
        out.append(row)
    return out


def _covers(rows, key, truth):
    lo = np.array([r[key]["ci_lower"] for r in rows])
    hi = np.array([r[key]["ci_upper"] for r in rows])
    return float(np.mean((lo <= truth) & (truth <= hi)))


@pytest.mark.slow
def test_aa_false_positive_rate_and_coverage_with_heavy_censoring():
    from calibration_log import record

    reps = 2000
    aa = _run(reps, 30_000, 1.0, **HEAVY)
    censored = np.mean([r["censored_before_horizon"] for r in aa])
    assert censored > 0.5, censored  # heavy censoring, as claimed
    labels = {
        "plain": "restricted mean, pseudo-observations",
        "cuped": "restricted mean + CUPED",
        "share": "share refunded by day 3",
        "median": "median difference (MOVER)",
    }
    ok = []
    for key, label in labels.items():
        fpr = float(np.mean([r[key]["p_value"] < ALPHA for r in aa]))
        ok.append(
            record(
                f"tte/aa/{key}",
                section="Time to event",
                test="test_survival_calibration.py::test_aa_false_positive_rate_and_coverage_with_heavy_censoring",
                metric="time to refund",
                method=label,
                statistic="false-positive rate",
                value=fpr,
                nominal=ALPHA,
                reps=reps,
                note=f"A/A, about 1,500 buyers in the data, {censored:.0%} censored before the 10-day "
                "horizon, about 5% still followed at it",
            )
        )
    truth = simulate.time_to_refund_truth(HORIZON, 3.0, hazard_ratio=1.3)
    ab = _run(reps, 40_000, 1.3, **HEAVY)
    targets = {
        "plain": truth["treatment"]["rmst"] - truth["control"]["rmst"],
        "cuped": truth["treatment"]["rmst"] - truth["control"]["rmst"],
        "share": truth["treatment"]["share_by"] - truth["control"]["share_by"],
        "median": truth["treatment"]["median"] - truth["control"]["median"],
    }
    for key, target in targets.items():
        cov = _covers(ab, key, target)
        ok.append(
            record(
                f"tte/coverage/{key}",
                section="Time to event",
                test="test_survival_calibration.py::test_aa_false_positive_rate_and_coverage_with_heavy_censoring",
                metric="time to refund",
                method=labels[key],
                statistic="coverage",
                value=cov,
                nominal=1 - ALPHA,
                reps=reps,
                note="hazard ratio 1.3, heavy censoring; truth from time_to_refund_truth",
            )
        )
    se_plain = np.mean([r["plain"]["se"] for r in ab])
    se_cuped = np.mean([r["cuped"]["se"] for r in ab])
    sd_plain = np.std([r["plain"]["effect"] for r in ab])
    sd_cuped = np.std([r["cuped"]["effect"] for r in ab])
    print(
        f"[tte] mean se plain {se_plain:.4f} (sd of estimates {sd_plain:.4f}), CUPED {se_cuped:.4f} (sd {sd_cuped:.4f})"
    )
    assert se_cuped < se_plain and sd_cuped < sd_plain
    assert se_plain == pytest.approx(sd_plain, rel=0.08) and se_cuped == pytest.approx(sd_cuped, rel=0.08)
    assert all(ok)


@pytest.mark.slow
def test_early_reads_naive_rate_is_biased_censoring_aware_reads_are_not():
    from calibration_log import record

    reps = 1000
    truth = simulate.time_to_refund_truth(7.0, 3.0, hazard_ratio=1.5)
    naive_rej, naive_eff, share_eff, share_cov, rmst_cov = [], [], [], [], []
    for r in range(reps):
        df = simulate.time_to_refund(2000, hazard_ratio=1.5, read_day=10, seed=50_000 + r)
        naive = abkit.analyze(df, abkit.Proportion("refunded", name="naive")).row("naive")
        naive_rej.append(naive["p_value"] < ALPHA)
        naive_eff.append(naive["effect"])
        res = abkit.analyze_time_to_event(df, metric(horizon=7.0))
        share = res.share_with_event(3.0).iloc[0]
        target = truth["treatment"]["share_by"] - truth["control"]["share_by"]
        share_eff.append(share["effect"] - target)
        share_cov.append(share["ci_lower"] <= target <= share["ci_upper"])
        row = res.to_frame().iloc[0]
        t_rmst = truth["treatment"]["rmst"] - truth["control"]["rmst"]
        rmst_cov.append(row["ci_lower"] <= t_rmst <= row["ci_upper"])
    # the eventual refund share is the same in both arms: the naive rate "finds" an effect
    print(
        f"[tte] early read: naive refund-rate difference {np.mean(naive_eff):+.4f} (truth 0), rejects "
        f"{np.mean(naive_rej):.0%}; share-by-3-days bias {np.mean(share_eff):+.5f}"
    )
    assert np.mean(naive_rej) > 0.5 and np.mean(naive_eff) > 10 * np.std(naive_eff) / np.sqrt(reps)
    assert abs(np.mean(share_eff)) < 3 * np.std(share_eff) / np.sqrt(reps)
    ok = [
        record(
            f"tte/early/{key}",
            section="Time to event",
            test="test_survival_calibration.py::test_early_reads_naive_rate_is_biased_censoring_aware_reads_are_not",
            metric="time to refund, read on day 10",
            method=label,
            statistic="coverage",
            value=float(np.mean(v)),
            nominal=1 - ALPHA,
            reps=reps,
            note="early read: the naive refund rate rejects a true null in "
            f"{np.mean(naive_rej):.0%} of the experiments",
        )
        for key, label, v in (
            ("share", "share refunded by day 3", share_cov),
            ("rmst", "restricted mean to 7 days", rmst_cov),
        )
    ]
    assert all(ok)


def refunds_by_buyer(n_buyers, seed, hazard_ratio, lam=0.25, k=1.0, cens=14.0):
    """Refund rows of buyers (1 + Poisson(1.5) returns each), delays sharing the buyer's gamma frailty."""
    rng = np.random.default_rng(seed)
    arm = np.where(rng.random(n_buyers) < 0.5, "control", "treatment")
    frail = rng.gamma(k, 1 / k, n_buyers)
    count = 1 + rng.poisson(1.5, n_buyers)
    buyer = np.repeat(np.arange(n_buyers), count)
    rate = lam * frail[buyer] * np.where(arm[buyer] == "treatment", hazard_ratio, 1.0)
    delay = rng.exponential(1.0, buyer.size) / rate
    follow = np.repeat(rng.uniform(2.0, 2 * cens, n_buyers), count)
    return pd.DataFrame(
        {
            "buyer_id": buyer,
            "variant": arm[buyer],
            "days": np.minimum(delay, follow),
            "refunded": (delay <= follow).astype(int),
        }
    )


@pytest.mark.slow
def test_clustered_rows_need_the_clustered_variance():
    from calibration_log import record

    reps, tau, hr, lam, k = 1500, 10.0, 1.3, 0.25, 1.0

    def rmst(rate):  # Lomax k = 1: int_0^tau (1 + rate t)^-1 dt
        return np.log1p(rate * tau) / rate

    target = rmst(lam * hr) - rmst(lam)
    clustered, naive = [], []
    m_c = abkit.TimeToEvent("days", "refunded", horizon=tau, unit="buyer_id")
    m_n = abkit.TimeToEvent("days", "refunded", horizon=tau)
    for r in range(reps):
        df = refunds_by_buyer(800, 60_000 + r, hr, lam, k)
        for m, store in ((m_c, clustered), (m_n, naive)):
            row = abkit.analyze(df, m).to_frame().iloc[0]
            store.append(row["ci_lower"] <= target <= row["ci_upper"])
    print(f"[tte] clustered rows: coverage clustered {np.mean(clustered):.3f}, row-level {np.mean(naive):.3f}")
    assert np.mean(naive) < 0.92  # ignoring the buyers under-covers
    assert record(
        "tte/cluster/rmst",
        section="Time to event",
        test="test_survival_calibration.py::test_clustered_rows_need_the_clustered_variance",
        metric="time to refund (refund rows, buyer randomization)",
        method="clustered pseudo-observations",
        statistic="coverage",
        value=float(np.mean(clustered)),
        nominal=1 - ALPHA,
        reps=reps,
        note=f"row-level variance (ignoring buyers) covers {np.mean(naive):.1%}",
    )


@pytest.mark.slow
def test_greenwood_rmst_difference_covers_at_small_samples():
    # the unadjusted survRM2-style interval (restricted_means) on 150 units per arm, heavy censoring
    from calibration_log import record

    reps = 4000
    truth = simulate.time_to_refund_truth(HORIZON, hazard_ratio=1.3)
    target = truth["treatment"]["rmst"] - truth["control"]["rmst"]
    hit = []
    for r in range(reps):
        df = simulate.time_to_refund(530, hazard_ratio=1.3, seed=70_000 + r, read_day=16, dropout_per_day=0.04)
        est = {}
        for arm in ("control", "treatment"):
            s = df[df.variant == arm]
            est[arm] = sv.restricted_mean(
                sv.EventTable.from_durations(s.days_to_refund, s.refunded).truncated(HORIZON), HORIZON
            )
        d = sv.difference(est["treatment"], est["control"], ALPHA)
        hit.append(d["ci_lower"] <= target <= d["ci_upper"])
    assert record(
        "tte/small/greenwood",
        section="Time to event",
        test="test_survival_calibration.py::test_greenwood_rmst_difference_covers_at_small_samples",
        metric="time to refund",
        method="Greenwood restricted-mean difference (survRM2)",
        statistic="coverage",
        value=float(np.mean(hit)),
        nominal=1 - ALPHA,
        reps=reps,
        note="about 150 buyers per arm in the data (read on day 16, 4%/day dropout)",
    )
    assert stats.binomtest(int(np.sum(hit)), reps, 0.95).pvalue > 1e-4
