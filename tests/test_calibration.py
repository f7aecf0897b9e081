"""Calibration by simulation with known truth: A/A false-positive rates and
CI coverage, on heavy-tailed data, for every metric type with and without
variance reduction.

Each scenario simulates 10,000 independent experiments (1,000 buyers per
arm), aggregates all of them in one pass with ``by="sim"`` and runs the
production estimator on each. With 10,000 experiments the Monte Carlo
standard error of a rate near 0.05 is 0.0022, so the acceptance bands
[0.04, 0.06] and [0.94, 0.96] are about 4.5 standard errors wide on each
side: a correct method passes, and a variance that is 10% too small or too
large fails.
"""

import numpy as np
import pandas as pd
import pytest
from calibration_log import record
from scipy import stats

import abkit
from abkit.stats.two_sample import compare

pytestmark = pytest.mark.slow

N_SIMS = 10_000
N_PER_ARM = 1_000
TRUE = {"mean": 2.0, "proportion": 0.02, "ratio_rel": 0.10}
P_BASE = 0.10  # E[refund probability]


def simulate(seed: int, effect: bool) -> pd.DataFrame:
    """Buyers of N_SIMS experiments; the truth is known exactly (see TRUE).

    y: lognormal (sigma ~ 1, heavy right tail), correlated with pre through a
    buyer frailty; conv: 0/1 with a correlated pre-period; refunds/orders:
    orders overdispersed, refund probability per buyer independent of orders
    with mean P_BASE, so that the population ratio is P_BASE (control) and
    P_BASE * (1 + 0.10) (treatment).
    """
    rng = np.random.default_rng(seed)
    n = N_SIMS * 2 * N_PER_ARM
    sim = np.repeat(np.arange(N_SIMS, dtype=np.int32), 2 * N_PER_ARM)
    treat = np.tile(np.repeat(np.array([0, 1], dtype=np.int8), N_PER_ARM), N_SIMS)
    f = rng.normal(0, 0.7, n)
    y = np.exp(1.0 + f + rng.normal(0, 0.7, n))
    pre = np.exp(1.0 + f + rng.normal(0, 0.7, n))
    u = stats.norm.cdf(f / 0.7)
    conv = (rng.random(n) < 0.2 + 0.2 * u).astype(np.float64)
    pre_conv = (rng.random(n) < 0.2 + 0.2 * u).astype(np.float64)
    g = rng.normal(0, 1, n)
    p_ref = 0.05 + 0.10 * stats.norm.cdf(g)  # mean exactly 0.10, independent of orders
    nb_p = 1.0 / (1.0 + np.exp(0.5 + 0.6 * f))
    orders = 1 + rng.negative_binomial(2, nb_p)
    pre_orders = 1 + rng.negative_binomial(2, nb_p)
    if effect:
        y = y + TRUE["mean"] * treat
        conv = (rng.random(n) < 0.2 + 0.2 * u + TRUE["proportion"] * treat).astype(np.float64)
        refunds = rng.binomial(orders, p_ref * (1 + TRUE["ratio_rel"] * treat))
    else:
        refunds = rng.binomial(orders, p_ref)
    pre_refunds = rng.binomial(pre_orders, p_ref)
    return pd.DataFrame(
        {
            "sim": sim,
            "variant": pd.Categorical.from_codes(treat, ["control", "treatment"]),
            "y": y,
            "pre": pre,
            "conv": conv,
            "pre_conv": pre_conv,
            "orders": orders,
            "refunds": refunds,
            "pre_orders": pre_orders,
            "pre_refunds": pre_refunds,
        }
    )


METRICS = {
    "mean": abkit.Mean("y", name="mean"),
    "mean_cuped": abkit.Mean("y", "pre", name="mean_cuped"),
    "mean_lin": abkit.Mean("y", ["pre", "pre_conv"], name="mean_lin"),
    "proportion": abkit.Proportion("conv", name="proportion"),
    "proportion_cuped": abkit.Proportion("conv", "pre_conv", name="proportion_cuped"),
    "ratio": abkit.Ratio("refunds", "orders", name="ratio"),
    "ratio_cuped": abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"), name="ratio_cuped"),
}


def true_effect(name: str) -> float:
    if name.startswith("mean"):
        return TRUE["mean"]
    if name.startswith("proportion"):
        return TRUE["proportion"]
    return P_BASE * TRUE["ratio_rel"]


def run(seed: int, effect: bool) -> dict:
    df = simulate(seed, effect)
    ms = abkit.moments(df, list(METRICS.values()), by="sim")
    block = ms.blocks[next(iter(ms.blocks))]
    out = {}
    for name, metric in METRICS.items():
        res = [compare(block, metric, (s, "control"), (s, "treatment")) for s in range(N_SIMS)]
        lo = np.array([r.ci_lower for r in res])
        hi = np.array([r.ci_upper for r in res])
        p = np.array([r.p_value for r in res])
        truth = true_effect(name) if effect else 0.0
        out[name] = {"reject": float(np.mean(p < 0.05)), "cover": float(np.mean((lo <= truth) & (truth <= hi)))}
    return out


@pytest.fixture(scope="module")
def aa():
    return run(seed=101, effect=False)


@pytest.fixture(scope="module")
def ab():
    return run(seed=202, effect=True)


@pytest.mark.parametrize("name", list(METRICS))
def test_aa_false_positive_rate(aa, name):
    rate = aa[name]["reject"]
    print(f"A/A false-positive rate {name}: {rate:.4f}")
    assert 0.04 <= rate <= 0.06, f"{name}: false-positive rate {rate:.4f} outside [0.04, 0.06]"
    assert record(
        f"calibration/aa/{name}",
        section="A/B, fixed horizon",
        test="test_calibration.py::test_aa_false_positive_rate",
        metric=name,
        method=f"{METRICS[name].method_label}, {N_PER_ARM:,} buyers per arm",
        statistic="false-positive rate",
        value=rate,
        nominal=0.05,
        reps=N_SIMS,
    )


@pytest.mark.parametrize("name", list(METRICS))
def test_ci_coverage_of_true_effect(ab, name):
    cover = ab[name]["cover"]
    print(f"95% CI coverage {name}: {cover:.4f}")
    assert 0.94 <= cover <= 0.96, f"{name}: coverage {cover:.4f} outside [0.94, 0.96]"
    assert record(
        f"calibration/ab/{name}",
        section="A/B, fixed horizon",
        test="test_calibration.py::test_ci_coverage_of_true_effect",
        metric=name,
        method=f"{METRICS[name].method_label}, {N_PER_ARM:,} buyers per arm",
        statistic="coverage of the true effect (A/B)",
        value=cover,
        nominal=0.95,
        reps=N_SIMS,
    )
