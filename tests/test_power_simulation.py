"""Simulation power (``abkit.power.simulate_power``) against the closed forms, and the power curves.

The truth here is the closed-form power of ``abkit.power`` (itself checked
against statsmodels and R in test_power.py): at the sample size that
``plan()`` computes for 80% power on the ``abkit.simulate.ab_data`` history,
resampling that history, injecting the effect and running abkit's own
estimator must reject in 80% of the simulated tests, within 3 Monte Carlo
standard errors (1,000 tests: +-3.8 points). Each check also shows that a
plausible wrong closed form (CUPED's variance reduction ignored, the
treatment arm's variance left unscaled) lands outside that band, so the band
is tight enough to matter. A/A simulations (effect 0) must reject at alpha.
"""

import math
import time

import numpy as np
import pandas as pd
import pytest

import abkit
from abkit import power as P
from abkit.errors import AbkitError
from abkit.power.simulated_power import _Injector

N_SIMS = 1000
TARGET = 0.8


def band(p, n=N_SIMS, k=3.0):
    return k * math.sqrt(p * (1 - p) / n)


@pytest.fixture(scope="module")
def history():
    return abkit.simulate.ab_data(20_000, seed=3)  # no effects: one population


METRICS = {
    # name: (metric, relative effect for 80% power at a few thousand units per arm)
    "mean": (abkit.Mean("refund_amount", name="amount"), 0.25),
    "mean_cuped": (abkit.Mean("refund_amount", "pre_refund_amount", name="amount_cuped"), 0.25),
    "proportion": (abkit.Proportion("repeat_purchase_30d", name="repeat"), 0.10),
    "ratio": (abkit.Ratio("refunds", "orders", name="refund_rate"), 0.15),
    "ratio_cuped": (
        abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"), name="refund_rate_cuped"),
        0.15,
    ),
}


def planned_n(history, metric, rel):
    """Units per arm plan() asks for to detect ``rel`` with 80% power (its own variance reduction)."""
    p = P.plan(history, metric, mdes=[rel], daily_units=1_000, days=[7])
    sizes = p.sample_sizes()
    return float(sizes.n_control.iloc[0]), p.designs().iloc[0]


# ------------------------------------------------------------------ agreement with the closed forms
@pytest.mark.parametrize("name", list(METRICS))
def test_simulated_power_matches_the_closed_form_at_the_planned_sample_size(history, name):
    metric, rel = METRICS[name]
    n, design = planned_n(history, metric, rel)
    t = time.perf_counter()
    sim = P.simulate_power(history, metric, rel, n_per_arm=n, injection="add", n_sims=N_SIMS, seed=11)
    took = time.perf_counter() - t
    print(
        f"{name}: n={math.ceil(n):,}/arm, simulated {sim.power:.3f} [{sim.ci_lower:.3f}, {sim.ci_upper:.3f}], "
        f"closed form {sim.closed_form:.3f}, {took:.2f} s"
    )
    assert sim.n_sims == N_SIMS and sim.to_frame().failed.iloc[0] == 0
    # the closed form at the rounded-up n is the planned power (the plan's design = the resampled population's)
    assert sim.closed_form == pytest.approx(TARGET, abs=0.002)
    assert abs(sim.power - TARGET) <= band(TARGET), (name, sim.power)
    assert sim.ci_lower <= sim.power <= sim.ci_upper
    if design.variance_reduction > 0:
        # sensitivity: a closed form without CUPED would predict a power outside the band
        unadjusted = P.power_mean(design.sd, rel * design.baseline, math.ceil(n)).power
        assert abs(sim.power - unadjusted) > band(TARGET), (name, unadjusted)


def test_cuped_variance_reduction_from_plan_predicts_the_simulated_cuped_power(history):
    """Point 4 of the issue: plan()'s estimated variance_reduction, used in the closed form, matches the
    power of the real CUPED analysis on resampled tests, at a grid of sizes around the planned one."""
    metric, rel = METRICS["ratio_cuped"]
    n, design = planned_n(history, metric, rel)
    assert 0.15 < design.variance_reduction < 0.35
    sizes = [0.5 * n, n]
    sim = P.simulate_power(history, metric, rel, n_per_arm=sizes, injection="add", n_sims=N_SIMS, seed=5)
    f = sim.to_frame()
    expected = P.power_mean(
        design.sd,
        rel * design.baseline,
        f.n_control.to_numpy(dtype=float),
        variance_reduction=design.variance_reduction,
    ).power
    np.testing.assert_allclose(f.closed_form, expected, rtol=1e-9)
    for got, want in zip(f.power, expected):
        assert abs(got - want) <= band(want), (got, want)


@pytest.mark.parametrize("rel", [0.25, -0.25])
def test_multiplied_effects_scale_the_treatment_variance_and_the_simulation_sees_it(history, rel):
    """Multiplying the outcome by 1 + e multiplies the treatment arm's sd by 1 + e. The equal-variance
    closed form misses it (by ~9 points here); the closed form with the treatment sd scaled agrees."""
    metric = abkit.Mean("refund_amount", name="amount")
    n, design = planned_n(history, metric, abs(rel))
    sim = P.simulate_power(history, metric, rel, n_per_arm=n, n_sims=N_SIMS, seed=7)
    assert sim.to_frame().injection.iloc[0] == "multiply" and "sd" in sim.note
    n_c = math.ceil(n)
    # equal arms: the Welch statistic equals the pooled t with the average variance
    sd_eff = design.sd * math.sqrt((1 + (1 + rel) ** 2) / 2)
    scaled = P.power_mean(sd_eff, rel * design.baseline, n_c).power
    print(
        f"rel {rel:+.0%}: simulated {sim.power:.3f}, equal-variance closed form {sim.closed_form:.3f}, "
        f"scaled-variance closed form {scaled:.3f}"
    )
    assert abs(sim.power - scaled) <= band(scaled)
    assert abs(sim.power - sim.closed_form) > band(TARGET)
    assert (sim.power < sim.closed_form) == (rel > 0)


def test_one_sided_power_matches_the_closed_form(history):
    metric, rel = METRICS["ratio_cuped"]
    _, design = planned_n(history, metric, rel)
    n = P.sample_size_mean(
        design.sd,
        -rel,
        alternative="smaller",
        baseline=design.baseline,
        relative=True,
        variance_reduction=design.variance_reduction,
    ).n_control
    sim = P.simulate_power(
        history, metric, -rel, n_per_arm=n, injection="add", alternative="smaller", n_sims=N_SIMS, seed=3
    )
    assert sim.closed_form == pytest.approx(TARGET, abs=0.002)
    assert abs(sim.power - TARGET) <= band(TARGET)


# ------------------------------------------------------------------ A/A: the size of the test
@pytest.mark.parametrize("name", ["mean_cuped", "proportion", "ratio_cuped"])
def test_aa_rejection_rate_is_alpha(history, name):
    metric, _ = METRICS[name]
    sim = P.simulate_power(history, metric, 0.0, n_per_arm=3_000, n_sims=N_SIMS, seed=21)
    print(f"A/A {name}: {sim.power:.4f} [{sim.ci_lower:.4f}, {sim.ci_upper:.4f}]")
    assert abs(sim.power - 0.05) <= band(0.05)
    assert sim.closed_form == pytest.approx(0.05)
    # the whole p-value distribution is uniform, not just its 5% tail
    from scipy import stats

    assert stats.kstest(sim.p_values, "uniform").pvalue > 0.001
    assert np.isnan(sim.to_frame().wrong_direction.iloc[0])


def test_aa_one_sided_rejection_rate_is_alpha(history):
    sim = P.simulate_power(
        history, METRICS["ratio"][0], 0.0, n_per_arm=3_000, alternative="larger", alpha=0.1, n_sims=N_SIMS, seed=4
    )
    assert abs(sim.power - 0.1) <= band(0.1)


# ------------------------------------------------------------------ quantiles (no closed form)
def test_quantile_power_is_sensible_and_monotone_in_the_effect(history):
    metric = abkit.Quantile("time_to_refund_hours", 0.9, dropna=True, name="p90 hours")
    t = time.perf_counter()
    sim = P.simulate_power(history, metric, [0.0, 0.1, 0.2, 0.3], n_per_arm=4_000, n_sims=200, seed=2)
    print(f"quantile: {time.perf_counter() - t:.2f} s\n{sim}")
    f = sim.to_frame()
    assert f.closed_form.isna().all() and (f.failed == 0).all()
    assert np.all(np.diff(f.power) >= 0) and f.power.iloc[-1] > 0.5
    assert f.power.iloc[0] <= 0.05 + band(0.05, 200)
    assert "same relative amount" in sim.injection_rule
    # the history's p90 is the baseline; every treatment quantile moves by the same factor
    values = history.time_to_refund_hours.dropna()
    assert sim.baseline == pytest.approx(np.quantile(values, 0.9, method="hazen"))  # the mid-quantile (no ties)


def test_quantile_default_simulations_are_fewer_and_say_so(history):
    metric = abkit.Quantile("time_to_refund_hours", 0.5, dropna=True)
    sim = P.simulate_power(history, metric, 0.2, n_per_arm=300, seed=1)
    assert sim.n_sims == P.DEFAULT_SIMS_QUANTILE and "400 simulations" in sim.note


def test_clustered_quantile_resamples_whole_units():
    """Refund-level rows, buyer-level randomization: buyers are drawn with all their rows."""
    rng = np.random.default_rng(0)
    buyers = 3_000
    k = 1 + rng.poisson(1.5, buyers)
    frailty = rng.normal(0, 0.8, buyers)
    rows = pd.DataFrame(
        {
            "buyer_id": np.repeat(np.arange(buyers), k),
            "hours": np.exp(3 + np.repeat(frailty, k) + rng.normal(0, 0.5, k.sum())),
        }
    )
    metric = abkit.Quantile("hours", 0.5, unit="buyer_id")
    sim = P.simulate_power(rows, metric, [0.0, 0.15], n_per_arm=1_000, n_sims=150, seed=3)
    f = sim.to_frame()
    assert sim.history_units == buyers and (f.failed == 0).all()
    assert f.power.iloc[0] <= 0.05 + band(0.05, 150) and f.power.iloc[1] > f.power.iloc[0] + 0.2


# ------------------------------------------------------------------ seeds, sizes, the result object
def test_seeded_determinism_and_common_random_numbers(history):
    metric = METRICS["ratio_cuped"][0]
    a = P.simulate_power(history, metric, [0.0, 0.1], n_per_arm=800, n_sims=100, seed=9).to_frame()
    b = P.simulate_power(history, metric, [0.0, 0.1], n_per_arm=800, n_sims=100, seed=9).to_frame()
    pd.testing.assert_frame_equal(a, b)
    c = P.simulate_power(history, metric, [0.1], n_per_arm=800, n_sims=100, seed=9).to_frame()
    pd.testing.assert_frame_equal(a.iloc[[1]].reset_index(drop=True), c)  # independent of the grid
    d = P.simulate_power(history, metric, [0.0, 0.1], n_per_arm=800, n_sims=100, seed=10).to_frame()
    assert not a.rejections.equals(d.rejections)
    # batches of 7 tests (the memory bound) instead of all 100 at once: the same tests
    e = P.simulate_power(history, metric, [0.0, 0.1], n_per_arm=800, n_sims=100, seed=9, max_rows=1_600 * 7).to_frame()
    pd.testing.assert_frame_equal(a, e)


def test_more_simulations_extend_the_same_sequence(history):
    metric = METRICS["proportion"][0]
    few = P.simulate_power(history, metric, 0.2, n_per_arm=300, n_sims=40, seed=2, max_rows=6_000)
    many = P.simulate_power(history, metric, 0.2, n_per_arm=300, n_sims=80, seed=2)
    np.testing.assert_array_equal(few.p_values, many.p_values[:40])  # the first 40 of 80 are the 40
    assert not np.array_equal(few.p_values, many.p_values[40:])


def test_proportion_injection_moves_the_expected_proportion_by_the_effect(history):
    """With 1 + 1 units the 'test' is just two draws: the treatment share of 1s is p + delta on average."""
    metric = METRICS["proportion"][0]
    p = history.repeat_purchase_30d.mean()
    inj = _Injector(metric, "flip", p)
    rng = np.random.default_rng(0)
    y = (rng.random((1, 400_000)) < p).astype(float)
    for delta in (0.05, -0.05):
        out = inj.apply({"repeat_purchase_30d": y}, slice(200_000, None), delta, rng.random((1, 200_000)))
        treated = out["repeat_purchase_30d"][0, 200_000:]
        assert treated.mean() == pytest.approx(y[0, 200_000:].mean() + delta, abs=0.004)
        assert np.array_equal(out["repeat_purchase_30d"][0, :200_000], y[0, :200_000])


def test_ratio_additive_injection_leaves_the_linearized_values_unchanged(history):
    metric = METRICS["ratio"][0]
    R = history.refunds.sum() / history.orders.sum()
    inj = _Injector(metric, "add", R)
    cols = {"refunds": history.refunds.to_numpy(float)[None, :], "orders": history.orders.to_numpy(float)[None, :]}
    out = inj.apply(cols, slice(0, None), 0.01, None)
    new_R = out["refunds"].sum() / out["orders"].sum()
    assert new_R == pytest.approx(R + 0.01)
    lin_old = cols["refunds"] - R * cols["orders"]
    lin_new = out["refunds"] - new_R * cols["orders"]
    np.testing.assert_allclose(lin_new, lin_old, atol=1e-12)


def test_days_give_the_plans_units(history):
    metric = METRICS["ratio"][0]
    p = P.plan(history, metric, days=[7, 14], daily_units=400, population=5_000)
    sim = P.simulate_power(history, metric, 0.1, days=[7, 14], daily_units=400, population=5_000, n_sims=50)
    f, plan_rows = sim.to_frame(), p.to_frame()
    assert list(f.days) == [7, 14]
    np.testing.assert_allclose(f.n_control + f.n_treatment, plan_rows.units, atol=1.0)


def test_result_object_and_monte_carlo_interval(history):
    from statsmodels.stats.proportion import proportion_confint

    sim = P.simulate_power(history, METRICS["ratio"][0], [0.0, 0.2], n_per_arm=[500, 1_000], n_sims=60, seed=1)
    f = sim.to_frame()
    assert len(f) == 4 and isinstance(sim.power, np.ndarray) and sim.power.shape == (4,)
    for r in f.itertuples():
        lo, hi = proportion_confint(r.rejections, r.n_sims, alpha=0.05, method="beta")
        assert (r.ci_lower, r.ci_upper) == pytest.approx((lo, hi), abs=1e-9)
        assert r.mc_se == pytest.approx(math.sqrt(r.power * (1 - r.power) / r.n_sims))
    assert P.monte_carlo_ci(0, 50)[0] == 0.0 and P.monte_carlo_ci(50, 50)[1] == 1.0
    assert "Clopper-Pearson" in repr(sim) and "<table" in sim._repr_html_()
    one = P.simulate_power(history, METRICS["ratio"][0], 0.2, n_per_arm=500, n_sims=20)
    assert isinstance(one.power, float) and isinstance(one.n_sims, int)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda h: P.simulate_power(h, abkit.NPS("nps_score"), 0.1, n_per_arm=100), "NPS metric"),
        (lambda h: P.simulate_power(h, METRICS["ratio"][0], 0.1), "n_per_arm="),
        (lambda h: P.simulate_power(h, METRICS["ratio"][0], 0.1, n_per_arm=100, days=7, daily_units=10), "n_per_arm="),
        (lambda h: P.simulate_power(h, METRICS["proportion"][0], 2.0, n_per_arm=100), r"outside \[0, 1\]"),
        (lambda h: P.simulate_power(h, METRICS["ratio"][0], 0.1, n_per_arm=100, n_sims=5), "n_sims=5"),
        (lambda h: P.simulate_power(h, METRICS["ratio"][0], 0.1, n_per_arm=100, injection="shift"), "injection="),
        (
            lambda h: P.simulate_power(abkit.moments(h, METRICS["ratio"][0]), METRICS["ratio"][0], 0.1, n_per_arm=100),
            "unit-level data",
        ),
        (
            lambda h: P.simulate_power(h, METRICS["ratio"][0], 0.1, n_per_arm=100, variant="variant", control="ctl"),
            "control arm 'ctl' not found",
        ),
        (lambda h: P.simulate_power(h, abkit.Mean("nope"), 0.1, n_per_arm=100), "column 'nope' not found"),
    ],
)
def test_errors_name_the_fix(history, call, match):
    with pytest.raises(AbkitError, match=match):
        call(history)


def test_variant_resamples_the_control_arm_only():
    past = abkit.simulate.ab_data(8_000, seed=5, effects={"refund_rate": 0.3})
    metric = abkit.Ratio("refunds", "orders", name="refund_rate")
    sim = P.simulate_power(past, metric, 0.0, n_per_arm=200, n_sims=20, variant="variant")
    control = past[past.variant == "control"]
    assert sim.history_units == len(control)
    assert sim.baseline == pytest.approx(control.refunds.sum() / control.orders.sum())


# ------------------------------------------------------------------ plots
def test_power_curves_are_labelled(history):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = METRICS["ratio_cuped"][0]
    plan = P.plan(history, metric, daily_units=1_000, days=[7, 14, 28])
    ax = plan.plot()  # MDE by duration (unchanged default)
    assert ax.get_xlabel() == "experiment duration (days)" and "minimum detectable" in ax.get_ylabel()
    assert ax.get_title(loc="left").startswith("MDE by duration")
    plt.close(ax.figure)

    curve = plan.power_curve(14)
    at = curve.iloc[(curve.change - curve.mde).abs().argmin()]
    exact = plan.power_curve(14, effects=[float(at.mde)])
    assert exact.power.iloc[0] == pytest.approx(plan.power, abs=1e-6)  # the MDE is where power = 80%
    assert curve.power.iloc[0] == pytest.approx(0.05) and curve.power.is_monotonic_increasing
    assert (curve.power >= curve.power_unadjusted - 1e-12).all()

    sim = P.simulate_power(history, metric, [0.05, 0.1, 0.15], days=14, daily_units=1_000, n_sims=100, seed=1)
    ax = plan.plot("power", days=14, simulated=sim)
    assert "true change" in ax.get_xlabel() and "power" in ax.get_ylabel()
    assert ax.get_title(loc="left").startswith("Power by true effect after 14 days")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(s.startswith("simulated") for s in labels) and any("CUPED" in s for s in labels)
    plt.close(ax.figure)

    ax = P.power_curve(sim)
    assert "relative to baseline" in ax.get_xlabel() and "Simulated power" in ax.get_title(loc="left")
    assert any(line.get_label().startswith("closed form") for line in ax.get_lines())
    plt.close(ax.figure)
    ax = P.power_curve(plan, 28)
    assert "28 days" in ax.get_title(loc="left")
    plt.close(ax.figure)
    with pytest.raises(AbkitError, match="not one of this plan's durations"):
        plan.power_curve(10)
    with pytest.raises(AbkitError, match="kind="):
        plan.plot("pie")


# ------------------------------------------------------------------ heavier: tighter bands
@pytest.mark.slow
@pytest.mark.parametrize("name", list(METRICS))
def test_agreement_with_4000_simulations(history, name):
    metric, rel = METRICS[name]
    n, _ = planned_n(history, metric, rel)
    sim = P.simulate_power(history, metric, rel, n_per_arm=n, injection="add", n_sims=4000, seed=99)
    print(f"{name}: {sim.power:.4f} [{sim.ci_lower:.4f}, {sim.ci_upper:.4f}] vs {sim.closed_form:.4f}")
    assert abs(sim.power - sim.closed_form) <= band(sim.closed_form, 4000)


# ------------------------------------------------------------------ the test-plan readout
ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
PLAN_SPEC = ROOT / "specs" / "refund_emails_plan.yaml"


@pytest.fixture(scope="module")
def sample_plan():
    from abkit.readout import plan as planning
    from abkit.spec import load_spec

    spec = load_spec(PLAN_SPEC)
    bundle = planning.make_plan(spec)
    return spec, bundle, planning.recommend(spec, bundle)


def test_readout_simulation_check_of_the_recommendation(sample_plan):
    import json

    from abkit.readout import plan as planning

    spec, bundle, rec = sample_plan
    assert planning.simulation_count(spec) == 0  # off unless asked
    assert planning.simulation_count(spec, 300) == 300
    with pytest.raises(AbkitError, match="simulate="):
        planning.simulation_count(spec, -1)
    assert planning.simulation_check(spec, bundle, rec, 0) is None
    sim = planning.simulation_check(spec, bundle, rec, 300)
    r = sim.to_frame().iloc[0]
    row = bundle.main.to_frame().query("metric == @spec.primary.name and days == @rec.days").iloc[0]
    assert r.n_control == math.ceil(row.n_control) and r.relative_effect == pytest.approx(-rec.mde)
    history = pd.read_parquet(spec.data_path, columns=[spec.variant])
    assert sim.history_units == int((history[spec.variant] == spec.control).sum())  # the control arm only
    text = planning.simulation_text(sim, spec, rec)
    assert text.startswith(f"Simulation check: in 300 simulated {rec.days}-day tests")
    assert f"{rec.mde:.1%} decrease in contact_rate" in text
    html = planning.recommendation_html(rec, spec, sim)
    assert "Simulation check" in html
    fig = planning.power_curve_figure(bundle, spec, rec, sim)
    page = planning.power_curve_html(fig, bundle, spec, rec, sim)
    assert "Power by the size of the true change" in page and "Monte Carlo interval" in page
    assert 'alt="Chart of the power by the size of the true change after' in page
    assert "Simulation check (abkit.power.simulate_power, seed 0): 300 tests" in planning.methodology_html(spec, sim)
    out = planning.to_json(spec, bundle, rec, sim)
    json.dumps(out)
    assert out["simulation"]["rows"][0]["n_sims"] == 300 and "simulation" not in planning.to_json(spec, bundle, rec)


def test_readout_power_curve_without_simulation(sample_plan):
    from abkit.readout import plan as planning

    spec, bundle, rec = sample_plan
    fig = planning.power_curve_figure(bundle, spec, rec)
    page = planning.power_curve_html(fig, bundle, spec, rec)
    assert "Simulation check" not in page
    # the alt text lists the primary metric's power at the target change: the planned power
    assert f"a {rec.mde:.1%} change detected with {spec.power:.0%} power" in page


@pytest.mark.slow
def test_power_plan_notebook_with_the_simulation_check(tmp_path):
    """The template run as `abkit readout` runs it, plus the notebook parameter simulate=200."""
    import papermill

    from abkit.readout.runner import TEMPLATE_FOR_KIND, export_html
    from abkit.spec import load_spec

    spec = load_spec(PLAN_SPEC)
    nb, page = tmp_path / "readout.ipynb", tmp_path / "readout.html"
    papermill.execute_notebook(
        str(TEMPLATE_FOR_KIND["power"]),
        str(nb),
        parameters={"spec": {**spec.to_dict(), "simulate": 200}},
        cwd=str(tmp_path),
        progress_bar=False,
        log_output=False,
    )
    export_html(nb, page, title=spec.name)
    text = page.read_text(encoding="utf-8")
    order = [
        text.index(s)
        for s in (
            "Simulation check: in 200 simulated",
            ">What the test can detect, by duration<",
            ">Power by the size of the true change<",
            ">Minimum detectable effect by duration<",
        )
    ]
    assert order == sorted(order)
