"""Calibration at scale (issue 8): at least 10,000 simulated A/A experiments per metric type and method.

Every scenario here runs 10,000 seeded A/A experiments (no true effect),
measures the false-positive rate at alpha = 0.05 and the coverage of the 95%
confidence interval of the relative lift (true value 0), and records both
with their Monte Carlo bands through ``tests/calibration_log.py`` (which
writes ``benchmarks/CALIBRATION.md``). A test fails when the +-4 MC SE band
excludes the nominal level; for always-valid inference, which is
conservative by design, when the false-positive rate is significantly above
alpha or the coverage significantly below 95%.

What runs where (each method at >= 10,000 experiments, or said why not):

===========================================  ==========================================================
Mean, Proportion, Ratio; plain, CUPED, Lin   ``test_calibration.py``: 10,000 A/A (and 10,000 A/B for
                                             coverage of a true effect), recorded from there
Mean capped (winsorized), Ratio + Lin        here, fixed horizon, 10,000 A/A
Always-valid (``analyze(sequential=...)``)   here: 10,000 A/A experiments, each analysed at 7 looks
                                             (Mean + CUPED, Proportion, Ratio + CUPED); the naive
                                             repeated fixed-horizon test on the same looks as contrast
                                             (``test_calibration_extra.py`` runs 1,000 more through
                                             ``abkit.sequential.monitor`` with 21 daily looks)
Quantiles, delta method                      here: 10,000 A/A, p50 and p90, buyer-level rows (iid) and
                                             refund-level rows randomized by buyer (cluster delta method)
Quantiles, bootstrap                         not at 10,000: one cluster bootstrap with 400 draws costs
                                             about 40 ms, so 10,000 experiments would take 7 minutes; its
                                             coverage is measured on 1,100 experiments in
                                             ``test_calibration_extra.py`` (MC SE 0.0066, recorded)
NPS, plain and CUPED                         here, 10,000 A/A (``test_calibration_extra.py``: 4,000 with
                                             a true effect)
DiD placebo (TWFE, CRV1)                     ``test_did_calibration.py``: 20,000 placebo panels,
                                             recorded from there (and C&S coverage, 8,000 panels)
===========================================  ==========================================================

Speed: the experiments of a scenario are simulated together and aggregated
in one pass with ``abkit.moments(..., by=[sim, look])``; each experiment is
then analysed by the production estimator (:func:`abkit.stats.two_sample.compare`,
:func:`abkit.sequential.always_valid_rows`, :func:`abkit.stats.quantile_inference.quantile_delta`),
and the first experiments also through the public ``abkit.analyze``, which
must give the same numbers (so the simulation tests what analysts run).
About two to three minutes on two cores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from calibration_log import passes, record
from scipy import stats

import abkit
from abkit.sequential import AlwaysValid, always_valid_rows
from abkit.stats.confidence_sequences import always_valid_relative_interval
from abkit.stats.quantile_inference import difference, quantile_delta
from abkit.stats.two_sample import compare

pytestmark = pytest.mark.slow

ALPHA = 0.05
N_SIMS = 10_000
CHUNK = 2_000  # experiments simulated and aggregated at a time (bounded memory)
HERE = "test_calibration_scale.py"


def rates(p_values, rel_lo, rel_hi) -> tuple[float, float]:
    """False-positive rate and coverage of 0 by the relative CI."""
    p, lo, hi = (np.asarray(a, dtype=float) for a in (p_values, rel_lo, rel_hi))
    return float(np.mean(p < ALPHA)), float(np.mean((lo <= 0) & (0 <= hi)))


def check(key, *, test, section, metric, method, fpr, cover, reps=N_SIMS, fpr_side="two", cover_side="two", note=""):
    """Record both figures and assert each band is consistent with its nominal level."""
    test = f"{HERE}::{test}"
    ok_f = record(
        f"scale/{key}/fpr",
        section=section,
        test=test,
        metric=metric,
        method=method,
        statistic="false-positive rate",
        value=fpr,
        nominal=ALPHA,
        reps=reps,
        side=fpr_side,
        note=note,
    )
    ok_c = record(
        f"scale/{key}/coverage",
        section=section,
        test=test,
        metric=metric,
        method=method,
        statistic="coverage of the relative CI",
        value=cover,
        nominal=1 - ALPHA,
        reps=reps,
        side=cover_side,
        note=note,
    )
    assert ok_f, f"{metric} / {method}: false-positive rate {fpr:.4f} is inconsistent with {ALPHA}"
    assert ok_c, f"{metric} / {method}: coverage {cover:.4f} is inconsistent with {1 - ALPHA}"


# =========================================================================== A/B: sequential + fixed horizon
LOOKS, PER_LOOK = 7, 100  # 7 looks, 100 new buyers each: 700 buyers per experiment at the end
PLANNED = LOOKS * PER_LOOK
CAP = 25.0  # winsorizing cap (about the 98th percentile of y)
SEQ_METRICS = [
    abkit.Mean("y", "pre", name="mean_cuped"),
    abkit.Proportion("conv", name="proportion"),
    abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"), name="ratio_cuped"),
]
FIXED_METRICS = [
    abkit.Mean("y", "pre", cap=CAP, name="mean_capped_cuped"),
    abkit.Ratio("refunds", "orders", covariates=[("pre_refunds", "pre_orders"), "pre"], name="ratio_lin"),
]


def buyers(rng, sims: np.ndarray) -> pd.DataFrame:
    """PER_LOOK new buyers per look and experiment, each in control or treatment by a fair coin.

    y heavy-tailed (lognormal, sigma 1) with a correlated pre-period; conv 0/1; orders overdispersed
    (1 + negative binomial), refunds binomial with a buyer-level refund probability.
    """
    n = len(sims) * LOOKS * PER_LOOK
    f = rng.normal(0, 0.7, n)
    orders = 1 + rng.negative_binomial(2, 1 / (1 + np.exp(0.5 + 0.6 * f)))
    pre_orders = 1 + rng.negative_binomial(2, 1 / (1 + np.exp(0.5 + 0.6 * f)))
    p_ref = 0.05 + 0.1 * stats.norm.cdf(rng.normal(size=n))
    return pd.DataFrame(
        {
            "sim": np.repeat(sims, LOOKS * PER_LOOK),
            "look": np.tile(np.repeat(np.arange(LOOKS), PER_LOOK), len(sims)),
            "variant": pd.Categorical.from_codes((rng.random(n) < 0.5).astype(np.int8), ["control", "treatment"]),
            "y": np.exp(1 + f + rng.normal(0, 0.7, n)),
            "pre": np.exp(1 + f + rng.normal(0, 0.7, n)),
            "conv": (rng.random(n) < 0.2 + 0.2 * stats.norm.cdf(f / 0.7)).astype(float),
            "orders": orders,
            "refunds": rng.binomial(orders, p_ref),
            "pre_orders": pre_orders,
            "pre_refunds": rng.binomial(pre_orders, p_ref),
        }
    )


def rows_of(c, metric) -> dict:
    """The fields of an ``analyze`` row that :func:`always_valid_rows` reads."""
    return {
        "metric": metric.name,
        "effect": c.effect,
        "se": c.se,
        "rel_effect": c.rel_effect,
        "rel_se": c.rel_se,
        "control_value": c.control_value,
        "ci_lower": c.ci_lower,
        "ci_upper": c.ci_upper,
        "rel_ci_lower": c.rel_ci_lower,
        "rel_ci_upper": c.rel_ci_upper,
        "p_value": c.p_value,
        "method": metric.method_label,
    }


@pytest.fixture(scope="module")
def ab_runs():
    """Per metric: p-values and relative CIs at every look (always-valid and fixed-horizon)."""
    rng = np.random.default_rng(2026)
    design = AlwaysValid(planned_n=PLANNED)
    out = {
        m.name: {k: np.empty((N_SIMS, LOOKS)) for k in ("p", "lo", "hi", "p_fixed", "lo_fixed", "hi_fixed")}
        for m in SEQ_METRICS
    }
    out.update({m.name: {k: np.empty(N_SIMS) for k in ("p", "lo", "hi")} for m in FIXED_METRICS})
    checked = 0
    for start in range(0, N_SIMS, CHUNK):
        sims = np.arange(start, min(start + CHUNK, N_SIMS))
        df = buyers(rng, sims)
        (block,) = abkit.moments(df, SEQ_METRICS + FIXED_METRICS, by=["sim", "look"]).blocks.values()
        arms = ("control", "treatment")
        labels = [(int(s), a) for s in sims for a in arms]
        cum = None
        for look in range(LOOKS):
            part = block.select(groups=[(int(s), look, a) for s in sims for a in arms])
            part = part.relabel(labels)
            cum = part if cum is None else cum.merge(part)
            for m in SEQ_METRICS:
                comps = [compare(cum, m, (int(s), "control"), (int(s), "treatment"), ALPHA) for s in sims]
                valid = always_valid_rows([rows_of(c, m) for c in comps], design, ALPHA, (look + 1) * PER_LOOK)
                r = out[m.name]
                r["p"][sims, look] = [v["p_value"] for v in valid]
                # the relative interval analyze reports: the always-valid Fieller interval with the rows' tau
                r["lo"][sims, look], r["hi"][sims, look] = always_valid_relative_interval(
                    [c.effect for c in comps],
                    [c.control_value for c in comps],
                    [c.se**2 for c in comps],
                    [c.cov_effect_control for c in comps],
                    [c.control_se**2 for c in comps],
                    [v["tau"] ** 2 for v in valid],
                    ALPHA,
                )
                r["p_fixed"][sims, look] = [c.p_value for c in comps]
                r["lo_fixed"][sims, look] = [c.rel_ci_lower for c in comps]
                r["hi_fixed"][sims, look] = [c.rel_ci_upper for c in comps]
        for m in FIXED_METRICS:
            comps = [compare(cum, m, (int(s), "control"), (int(s), "treatment"), ALPHA) for s in sims]
            out[m.name]["p"][sims] = [c.p_value for c in comps]
            out[m.name]["lo"][sims] = [c.rel_ci_lower for c in comps]
            out[m.name]["hi"][sims] = [c.rel_ci_upper for c in comps]
        # the public path gives the same numbers: analyze(..., sequential=AlwaysValid(planned_n)) on the
        # rows seen up to a look, and the fixed-horizon analysis of the capped mean and the Lin ratio
        if checked < 3:
            for s, look in ((sims[0], 2), (sims[1], LOOKS - 1), (sims[2], 0)):
                rows = df[(df.sim == s) & (df.look <= look)]
                res = abkit.analyze(rows, SEQ_METRICS, sequential=design).to_frame().set_index("metric")
                for m in SEQ_METRICS:
                    assert res.loc[m.name, "p_value"] == pytest.approx(out[m.name]["p"][s, look], rel=1e-9, abs=1e-12)
                    assert res.loc[m.name, "rel_ci_lower"] == pytest.approx(out[m.name]["lo"][s, look], rel=1e-9)
                    assert res.loc[m.name, "p_value_fixed"] == pytest.approx(
                        out[m.name]["p_fixed"][s, look], rel=1e-9, abs=1e-12
                    )
                    assert "always-valid" in res.loc[m.name, "method"]
                checked += 1
            res = abkit.analyze(df[df.sim == sims[0]], FIXED_METRICS).to_frame().set_index("metric")
            for m in FIXED_METRICS:
                assert res.loc[m.name, "p_value"] == pytest.approx(out[m.name]["p"][sims[0]], rel=1e-9, abs=1e-12)
            assert "capped at 25" in res.loc["mean_capped_cuped", "method"]
            assert "Lin" in res.loc["ratio_lin", "method"]
    return out


@pytest.mark.parametrize("name", [m.name for m in SEQ_METRICS])
def test_always_valid_keeps_alpha_over_seven_looks(ab_runs, name):
    r = ab_runs[name]
    fpr = float(np.mean((r["p"] <= ALPHA).any(axis=1)))  # stopped wrongly at some look
    cover = float(np.mean(((r["lo"] <= 0) & (0 <= r["hi"])).all(axis=1)))  # every look's interval holds 0
    check(
        f"always_valid/{name}",
        test="test_always_valid_keeps_alpha_over_seven_looks",
        section="A/B, always-valid (sequential)",
        metric=name,
        method=f"always-valid (normal mixture, planned n = {PLANNED}), any of {LOOKS} looks",
        fpr=fpr,
        cover=cover,
        fpr_side="at most",
        cover_side="at least",
        note=f"always-valid: a false positive is a rejection at any of {LOOKS} looks; coverage means the "
        "relative CI held 0 at every look (time-uniform)",
    )
    # the contrast that shows the test has teeth: the naive fixed-horizon test peeks its way past alpha
    naive = float(np.mean((r["p_fixed"] < ALPHA).any(axis=1)))
    record(
        f"scale/always_valid/{name}/naive",
        section="A/B, always-valid (sequential)",
        test=f"{HERE}::test_always_valid_keeps_alpha_over_seven_looks",
        metric=name,
        method=f"naive fixed-horizon test repeated at {LOOKS} looks (contrast, expected above alpha)",
        statistic="false-positive rate",
        value=naive,
        nominal=ALPHA,
        reps=N_SIMS,
        side="at least",
        note="the naive row is a contrast: repeated fixed-horizon tests must exceed alpha",
    )
    assert not passes(naive, ALPHA, N_SIMS, "at most"), f"naive repeated test {naive:.4f} not above alpha"


def m_method(name: str) -> str:
    return next(m.method_label for m in SEQ_METRICS + FIXED_METRICS if m.name == name)


@pytest.mark.parametrize("name", [m.name for m in SEQ_METRICS])
def test_fixed_horizon_at_the_final_look(ab_runs, name):
    r = ab_runs[name]
    fpr, cover = rates(r["p_fixed"][:, -1], r["lo_fixed"][:, -1], r["hi_fixed"][:, -1])
    check(
        f"final_look/{name}",
        test="test_fixed_horizon_at_the_final_look",
        section="A/B, fixed horizon",
        metric=name,
        method=f"{m_method(name)}, fixed horizon, {PLANNED} buyers",
        fpr=fpr,
        cover=cover,
    )


@pytest.mark.parametrize("name", [m.name for m in FIXED_METRICS])
def test_capped_mean_and_ratio_lin(ab_runs, name):
    r = ab_runs[name]
    fpr, cover = rates(r["p"], r["lo"], r["hi"])
    method = {
        "mean_capped_cuped": f"Welch + CUPED, capped at {CAP:g}",
        "ratio_lin": "delta + Lin (pre-period ratio and pre-period mean)",
    }[name]
    check(
        f"fixed/{name}",
        test="test_capped_mean_and_ratio_lin",
        section="A/B, fixed horizon",
        metric=name,
        method=f"{method}, {PLANNED} buyers",
        fpr=fpr,
        cover=cover,
    )


# =========================================================================== quantiles (delta method)
MU, SD_BUYER, SD_REFUND, RATE = 3.5, 0.6, 0.7, 1.5  # as in test_calibration_extra.py
Q_BUYERS = 2_000


@pytest.fixture(scope="module")
def quantile_runs():
    """A/A: time to refund per buyer (iid rows) and per refund (rows clustered by buyer)."""
    rng = np.random.default_rng(808)
    keys = ["iid_50", "iid_90", "cluster_50", "cluster_90"]
    out = {k: {"p": np.empty(N_SIMS), "lo": np.empty(N_SIMS), "hi": np.empty(N_SIMS)} for k in keys}
    for s in range(N_SIMS):
        treat = rng.random(Q_BUYERS) < 0.5
        y = np.exp(MU + 0.9 * rng.normal(size=Q_BUYERS))
        a = rng.normal(0, SD_BUYER, Q_BUYERS)
        buyer = np.repeat(np.arange(Q_BUYERS), 1 + rng.poisson(RATE * np.exp(0.5 * a)))
        hours = np.exp(MU + a[buyer] + rng.normal(0, SD_REFUND, buyer.size))
        t = treat[buyer]
        for q in (0.5, 0.9):
            iid = difference(quantile_delta(y[treat], q), quantile_delta(y[~treat], q))
            cl = difference(quantile_delta(hours[t], q, buyer[t]), quantile_delta(hours[~t], q, buyer[~t]))
            for key, d in ((f"iid_{q * 100:.0f}", iid), (f"cluster_{q * 100:.0f}", cl)):
                r = out[key]
                r["p"][s], r["lo"][s], r["hi"][s] = d["p_value"], d["rel_ci_lower"], d["rel_ci_upper"]
        if s < 2:  # the public path: abkit.analyze with Quantile metrics gives the same numbers
            refunds = pd.DataFrame({"buyer": buyer, "variant": np.where(t, "treatment", "control"), "hours": hours})
            res = abkit.analyze(refunds, [abkit.Quantile("hours", 0.9, unit="buyer", name="p90")]).row("p90")
            assert res["p_value"] == pytest.approx(out["cluster_90"]["p"][s], rel=1e-9, abs=1e-12)
            one_row_each = pd.DataFrame({"variant": np.where(treat, "treatment", "control"), "y": y})
            res = abkit.analyze(one_row_each, [abkit.Quantile("y", 0.5, name="p50")]).row("p50")
            assert res["rel_ci_lower"] == pytest.approx(out["iid_50"]["lo"][s], rel=1e-9)
    return out


@pytest.mark.parametrize("key", ["iid_50", "iid_90", "cluster_50", "cluster_90"])
def test_quantile_delta_method(quantile_runs, key):
    rows, q = key.split("_")
    fpr, cover = rates(quantile_runs[key]["p"], quantile_runs[key]["lo"], quantile_runs[key]["hi"])
    method = (
        "delta method, one row per buyer" if rows == "iid" else "cluster delta method, refund rows randomized by buyer"
    )
    check(
        f"quantile/{key}",
        test="test_quantile_delta_method",
        section="Quantiles",
        metric=f"time to refund p{q}",
        method=f"{method}, {Q_BUYERS:,} buyers",
        fpr=fpr,
        cover=cover,
        note="bootstrap quantile CIs: 1,100 experiments only (40 ms each), see test_calibration_extra.py",
    )


# =========================================================================== NPS
NPS_PER_ARM = 600


@pytest.fixture(scope="module")
def nps_runs():
    """A/A: 0-10 scores Binomial(10, s), s ~ Beta(4, 0.8) (NPS about 42); 70% answer; a pre-period score for half.

    The NPS level matters for the *relative* CI: with s ~ Beta(2, 0.8) (as in test_calibration_extra.py)
    the NPS is about 5 points with a standard error of about 4 per arm, so "NPS up 30%" is not a
    meaningful number and its delta-method interval covers only about 91% (measured: 0.910 plain,
    0.935 with CUPED, 10,000 experiments); the absolute interval (in points) stays calibrated there.
    Here the control NPS is about 10 standard errors from zero, as in a real survey readout.
    """
    rng = np.random.default_rng(909)
    metrics = [abkit.NPS("nps_score", name="nps"), abkit.NPS("nps_score", "pre_nps", name="nps_cuped")]
    out = {m.name: {"p": np.empty(N_SIMS), "lo": np.empty(N_SIMS), "hi": np.empty(N_SIMS)} for m in metrics}
    for start in range(0, N_SIMS, CHUNK):
        sims = np.arange(start, min(start + CHUNK, N_SIMS))
        n = len(sims) * 2 * NPS_PER_ARM
        sat = rng.beta(4.0, 0.8, n)
        df = pd.DataFrame(
            {
                "sim": np.repeat(sims, 2 * NPS_PER_ARM),
                "variant": np.tile(np.repeat(["control", "treatment"], NPS_PER_ARM), len(sims)),
                "nps_score": np.where(rng.random(n) < 0.7, rng.binomial(10, sat), np.nan),
                "pre_nps": np.where(rng.random(n) < 0.5, rng.binomial(10, sat), np.nan),
            }
        )
        ms = abkit.moments(df, metrics, by="sim")
        for m in metrics:
            block = ms.block_for(m.columns, True)
            comps = [compare(block, m, (int(s), "control"), (int(s), "treatment"), ALPHA) for s in sims]
            out[m.name]["p"][sims] = [c.p_value for c in comps]
            out[m.name]["lo"][sims] = [c.rel_ci_lower for c in comps]
            out[m.name]["hi"][sims] = [c.rel_ci_upper for c in comps]
        if start == 0:
            res = abkit.analyze(df[df.sim == 0], metrics).to_frame().set_index("metric")
            for m in metrics:
                assert res.loc[m.name, "p_value"] == pytest.approx(out[m.name]["p"][0], rel=1e-9, abs=1e-12)
    return out


@pytest.mark.parametrize("name", ["nps", "nps_cuped"])
def test_nps(nps_runs, name):
    fpr, cover = rates(nps_runs[name]["p"], nps_runs[name]["lo"], nps_runs[name]["hi"])
    method = "multinomial delta method" + (" + CUPED on the pre-period score" if name == "nps_cuped" else "")
    check(
        f"nps/{name}",
        test="test_nps",
        section="NPS",
        metric=name,
        method=f"{method}, {NPS_PER_ARM} buyers per arm (70% respond)",
        fpr=fpr,
        cover=cover,
    )
