"""Sequential inference: group-sequential boundaries against published values and
Monte Carlo, the normal-mixture confidence sequence against its definition
(numerical mixture integral, Gaussian random walks), and the analyze / monitor
integration."""

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats

import abkit
from abkit.sequential import AlwaysValid, group_sequential_bounds, monitor
from abkit.stats.confidence_sequences import (
    always_valid_half_width,
    always_valid_interval,
    always_valid_p_value,
    log_mixture_likelihood_ratio,
    mixing_variance,
    optimal_mixing_ratio,
)
from abkit.stats.group_sequential import crossing_probabilities, spending_function

# R gsDesign / ldbounds, 5 equally spaced looks, two-sided alpha = 0.05 (alpha/2 per side).
PUBLISHED = {
    "obrien_fleming": [4.8769, 3.3570, 2.6803, 2.2898, 2.0310],
    "pocock": [2.4380, 2.4268, 2.4102, 2.3966, 2.3860],
}


@pytest.mark.parametrize("spending", list(PUBLISHED))
def test_group_sequential_bounds_match_published_values(spending):
    b = group_sequential_bounds(5, alpha=0.05, spending=spending)
    np.testing.assert_allclose(b.z, PUBLISHED[spending], atol=5e-5)
    assert np.round(np.asarray(b), 4).tolist() == PUBLISHED[spending]
    # the boundaries spend exactly the spending function, look by look
    spent = crossing_probabilities(b.z, b.information_fractions)
    np.testing.assert_allclose(
        np.cumsum(spent), 2 * spending_function(spending)(b.information_fractions), rtol=1e-8, atol=1e-14
    )
    assert b.alpha_spent[-1] == pytest.approx(0.05, rel=1e-12)


def test_one_look_is_the_fixed_sample_test():
    for spending in PUBLISHED:
        assert group_sequential_bounds(1, spending=spending).z[0] == pytest.approx(stats.norm.isf(0.025), rel=1e-9)


@pytest.mark.parametrize(
    "spending,fractions",
    [
        ("obrien_fleming", [0.25, 0.5, 0.75, 1.0]),
        ("pocock", [0.1, 0.35, 0.5, 0.9, 1.0]),
        ("obrien_fleming", [0.3, 0.31, 0.7, 1.0]),
    ],
)
def test_boundaries_hold_alpha_by_monte_carlo(spending, fractions):
    """Independent check of the recursive integration: simulate Brownian motion at the looks."""
    b = group_sequential_bounds(len(fractions), spending=spending, information_fractions=fractions)
    rng = np.random.default_rng(11)
    n = 400_000
    t = np.asarray(fractions)
    S = np.cumsum(rng.normal(size=(n, len(t))) * np.sqrt(np.diff(np.concatenate(([0.0], t)))), axis=1)
    Z = S / np.sqrt(t)
    crossed = (np.abs(Z) >= b.z).any(axis=1)
    se = np.sqrt(0.05 * 0.95 / n)
    assert abs(crossed.mean() - 0.05) < 4 * se, crossed.mean()
    first = np.argmax(np.abs(Z) >= b.z, axis=1)[crossed]
    mc = np.bincount(first, minlength=len(t)) / n
    np.testing.assert_allclose(mc, crossing_probabilities(b.z, t), atol=4 * se)
    # power under a drift, same comparison
    drift = 2.5
    Zd = (S + drift * t) / np.sqrt(t)
    assert b.power(drift) == pytest.approx((np.abs(Zd) >= b.z).any(axis=1).mean(), abs=4 * np.sqrt(0.25 / n))


def test_group_sequential_errors_and_helpers():
    with pytest.raises(abkit.AbkitError, match="spending='haybittle' is not known"):
        group_sequential_bounds(3, spending="haybittle")
    with pytest.raises(abkit.AbkitError, match="strictly increasing"):
        group_sequential_bounds(3, information_fractions=[0.5, 0.4, 1.0])
    with pytest.raises(abkit.AbkitError, match="one per look"):
        group_sequential_bounds(3, information_fractions=[0.5, 1.0])
    b = group_sequential_bounds(5)
    assert b.first_crossing([1.0, 2.0, 2.7, 0.0, 0.0]) == 3
    assert b.first_crossing([1.0, 2.0]) is None
    frame = b.to_frame()
    assert list(frame.columns) == ["look", "information_fraction", "z_boundary", "nominal_p", "alpha_spent"]
    np.testing.assert_allclose(frame.nominal_p, 2 * stats.norm.sf(b.z))


# --------------------------------------------------------------------------- the confidence sequence
def test_mixture_likelihood_ratio_is_the_normal_mixture_integral():
    """Lambda = int N(effect; theta, V) / N(effect; 0, V) dN(theta; 0, tau^2), by quadrature."""
    for effect, V, tau2 in [(0.3, 0.01, 0.05), (-1.2, 0.4, 0.1), (0.0, 2.0, 1.0)]:

        def integrand(theta, effect=effect, V=V, tau2=tau2):
            return (
                stats.norm.pdf(effect, theta, np.sqrt(V))
                / stats.norm.pdf(effect, 0, np.sqrt(V))
                * stats.norm.pdf(theta, 0, np.sqrt(tau2))
            )

        ref, _ = integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-11)
        assert np.exp(log_mixture_likelihood_ratio(effect, V, tau2)) == pytest.approx(ref, rel=1e-8)


def test_interval_and_p_value_agree():
    V, tau2, alpha = 0.04, 0.3, 0.05
    hw = float(always_valid_half_width(V, tau2, alpha))
    # at the boundary the p-value is exactly alpha; inside it is larger, outside smaller
    assert always_valid_p_value(hw, V, tau2) == pytest.approx(alpha, rel=1e-10)
    assert always_valid_p_value(0.99 * hw, V, tau2) > alpha > always_valid_p_value(1.01 * hw, V, tau2)
    lo, hi, p = always_valid_interval(np.array([0.5 * hw, 2 * hw]), V, tau2, alpha)
    assert (lo < 0).tolist() == [True, False] and (p < alpha).tolist() == [False, True]
    # wider than the fixed-horizon interval
    assert hw > stats.norm.isf(alpha / 2) * np.sqrt(V)
    # zero variance: a point, p 0 or 1
    lo, hi, p = always_valid_interval([0.0, 1.0], 0.0, 0.1)
    assert lo.tolist() == [0.0, 1.0] and hi.tolist() == [0.0, 1.0] and p.tolist() == [1.0, 0.0]


def test_mixing_ratio_minimises_the_width_at_the_planned_size():
    for alpha in (0.05, 0.01, 0.1):
        x = optimal_mixing_ratio(alpha)
        V_plan = 0.37
        best = optimize.minimize_scalar(
            lambda t2, a=alpha: float(always_valid_half_width(0.37, t2, a)),
            bounds=(1e-3, 100),
            method="bounded",
            options={"xatol": 1e-10},
        )
        assert best.x == pytest.approx(x * V_plan, rel=1e-4)
        # Howard et al.'s closed-form approximation is close
        c = 2 * np.log(1 / alpha)
        assert x == pytest.approx(c + np.log(1 + c), rel=0.05)
    assert optimal_mixing_ratio(0.05) == pytest.approx(8.21, abs=0.01)
    # at the planned size the half-width is sqrt((1 + x) V)
    assert float(always_valid_half_width(0.37, mixing_variance(0.37, 100, 100), 0.05)) == pytest.approx(
        np.sqrt((1 + optimal_mixing_ratio(0.05)) * 0.37), rel=1e-10
    )


def test_confidence_sequence_is_time_uniform_on_gaussian_walks():
    """P(the CS ever misses the truth over 500 looks) <= alpha; the naive CI misses far more often."""
    rng = np.random.default_rng(3)
    paths, looks, sigma, alpha = 20_000, 500, 2.0, 0.05
    x = rng.normal(0.7, sigma, size=(paths, looks)).astype(np.float64)
    n = np.arange(1, looks + 1)
    mean = np.cumsum(x, axis=1) / n
    V = sigma**2 / n
    tau2 = mixing_variance(V[-1], looks, looks, alpha)  # tuned to the last look
    lo, hi, _ = always_valid_interval(mean, V, tau2, alpha)
    miss = ((lo > 0.7) | (hi < 0.7)).any(axis=1).mean()
    naive = (np.abs(mean - 0.7) > stats.norm.isf(alpha / 2) * np.sqrt(V)).any(axis=1).mean()
    se = np.sqrt(alpha * (1 - alpha) / paths)
    print(f"Gaussian walks, {looks} looks: always-valid miss rate {miss:.4f}, naive {naive:.4f}")
    assert miss <= alpha + 3 * se
    assert naive > 0.3


# --------------------------------------------------------------------------- analyze / monitor
def _daily(seed=1, days=10, per_day=600, effect=0.0):
    rng = np.random.default_rng(seed)
    n = days * per_day
    f = rng.normal(0, 0.6, n)
    arm = rng.choice(["control", "treatment"], n)
    orders = 1 + rng.poisson(np.exp(0.5 + 0.4 * f))
    return pd.DataFrame(
        {
            "day": np.repeat(pd.date_range("2026-09-01", periods=days).date, per_day),
            "variant": arm,
            "y": np.exp(1 + f + rng.normal(0, 0.7, n)) + effect * (arm == "treatment"),
            "pre": np.exp(1 + f + rng.normal(0, 0.7, n)),
            "conv": (rng.random(n) < 0.3).astype(float),
            "orders": orders,
            "refunds": rng.binomial(orders, 0.1),
            "pre_orders": 1 + rng.poisson(np.exp(0.5 + 0.4 * f)),
        }
    ).assign(pre_refunds=lambda d: rng.binomial(d.pre_orders, 0.1))


METRICS = [
    abkit.Mean("y", "pre"),
    abkit.Proportion("conv"),
    abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"), name="refund_rate"),
]


def test_analyze_sequential_keeps_estimates_and_widens_intervals():
    df = _daily(effect=0.4)
    fixed = abkit.analyze(df, METRICS).to_frame()
    now = AlwaysValid(planned_n=len(df))  # the last look of the plan: tuned to the units analysed
    res = abkit.analyze(df, METRICS, sequential=now)
    seq = res.to_frame()
    assert res.sequential and not abkit.analyze(df, METRICS).sequential
    assert "always valid" in res._repr_html_().lower() or "always-valid" in res._repr_html_().lower()
    assert all(m.endswith(" + always-valid") for m in seq.method)
    for col in ["effect", "se", "rel_effect", "control_value", "treatment_value"]:
        np.testing.assert_allclose(seq[col], fixed[col], rtol=1e-12)
    np.testing.assert_allclose(seq.ci_lower_fixed, fixed.ci_lower, rtol=1e-12)
    np.testing.assert_allclose(seq.p_value_fixed, fixed.p_value, rtol=1e-12)
    assert (seq.ci_lower < seq.ci_lower_fixed).all() and (seq.ci_upper > seq.ci_upper_fixed).all()
    assert (seq.p_value >= fixed.p_value).all()
    # at the planned size: half-width = sqrt((1 + x) V)
    x = optimal_mixing_ratio(0.05)
    np.testing.assert_allclose((seq.ci_upper - seq.ci_lower) / 2, np.sqrt((1 + x) * seq.se**2), rtol=1e-10)
    # a planned size moves the tuning but not the estimate
    planned = abkit.analyze(df, METRICS, sequential=AlwaysValid(planned_n=10 * len(df))).to_frame()
    np.testing.assert_allclose(planned.tau**2, x * seq.se**2 / 10, rtol=1e-10)
    # the correction applies to the always-valid p-values
    corr = abkit.analyze(df, METRICS, sequential=now, correction="holm").to_frame()
    from statsmodels.stats.multitest import multipletests

    np.testing.assert_allclose(corr.p_value_adjusted, multipletests(seq.p_value, method="holm")[1])


def test_monitor_inputs_agree_and_last_look_is_the_full_analysis():
    df = _daily(effect=0.3)
    days = sorted(df.day.unique())
    daily = [abkit.moments(df[df.day == d], METRICS) for d in days]
    n = len(df)
    by_list = monitor(daily, METRICS, labels=days, planned_n=n).to_frame()
    by_set = monitor(abkit.moments(df, METRICS, by="day"), METRICS, planned_n=n).to_frame()
    by_raw = monitor(df, METRICS, by="day", planned_n=n).to_frame()
    snapshots, acc = [], None
    for m in daily:
        acc = m if acc is None else acc + m
        snapshots.append(acc)
    by_snap = monitor(snapshots, METRICS, labels=days, cumulative=True, planned_n=n).to_frame()
    num = ["effect", "ci_lower", "ci_upper", "p_value", "p_value_fixed", "rel_ci_upper"]
    for other in (by_set, by_raw, by_snap):
        np.testing.assert_allclose(other[num].to_numpy(float), by_list[num].to_numpy(float), rtol=1e-9)
        assert other.day.tolist() == by_list.day.tolist()
    last = by_list[by_list.day == days[-1]]
    full = abkit.analyze(df, METRICS, sequential=AlwaysValid(planned_n=len(df))).to_frame()
    np.testing.assert_allclose(last.effect, full.effect, rtol=1e-10)
    np.testing.assert_allclose(last.ci_lower, full.ci_lower, rtol=1e-10)
    # the running minimum and the stopping flag
    for _, g in by_list.groupby(["metric", "variant"]):
        assert (np.diff(g.p_value_running) <= 0).all()
        assert (g.stop_allowed == (g.p_value_running <= 0.05)).all()
        np.testing.assert_allclose(g.p_value_running, np.minimum.accumulate(g.p_value))


def test_monitor_skips_days_without_enough_units_and_reports_stopping():
    df = _daily(effect=3.0, days=6)
    first = df.day.min()
    df = df[~((df.day == first) & (df.variant == "treatment"))]
    path = monitor(df, [abkit.Mean("y", "pre")], by="day", planned_n=len(df))
    assert path.skipped == (first,)
    assert first not in set(path.to_frame().day)
    st = path.stopping()
    assert bool(st.stop_allowed.iloc[0]) and st.first_stop_day.iloc[0] is not None
    assert "stopping allowed" in path.summary()
    assert "<table" in path._repr_html_()
    import matplotlib

    matplotlib.use("Agg")
    ax = path.plot()
    assert ax.get_title(loc="left").startswith("y [treatment")
    with pytest.raises(abkit.AbkitError, match="quantile"):
        monitor(df, [abkit.Quantile("y", 0.5)], by="day", planned_n=len(df))
    with pytest.raises(abkit.AbkitError, match="by='<date column>'"):
        monitor(df, [abkit.Mean("y")], planned_n=len(df))


def test_sequential_option_errors():
    df = _daily(days=2)
    with pytest.raises(abkit.AbkitError, match="sequential='yes'"):
        abkit.analyze(df, [abkit.Mean("y")], sequential="yes")
    with pytest.raises(abkit.AbkitError, match="planned_n=-5"):
        AlwaysValid(planned_n=-5)


def test_always_valid_needs_a_planned_size_fixed_before_the_data():
    """Issue 12.5: sequential=True used to tune the mixture to the units analysed at every look (estimate
    +/- 3.03 se at every look, a repeated fixed test whose false-positive rate grows with the looks). Now the
    planned size (or tau) is required, with a message naming the parameter, in analyze and in monitor."""
    df = _daily(days=3)
    m = [abkit.Mean("y")]
    with pytest.raises(abkit.AbkitError, match=r"sequential=True: .*AlwaysValid\(planned_n="):
        abkit.analyze(df, m, sequential=True)
    with pytest.raises(abkit.AbkitError, match=r"planned_n=.*or tau="):
        AlwaysValid()
    with pytest.raises(abkit.AbkitError, match=r"monitor\(\) needs planned_n="):
        monitor(df, m, by="day")
    with pytest.raises(abkit.AbkitError, match="tau has no value for metric 'y'"):
        abkit.analyze(df, m, sequential=AlwaysValid(tau={"other": 1.0}))
    # what is given is used, and said: the page text names the planned size
    res = abkit.analyze(df, m, sequential=AlwaysValid(planned_n=5_000))
    assert "tuned to the planned 5,000 units" in res.sequential_note and "units analysed" not in res.sequential_note


# --------------------------------------------------------------------------- hundreds of looks (issue 12.5)
def _many_looks(sims: int, looks: int, per_look: int, seed: int, p: float = 0.2, alpha: float = 0.05):
    """A/A conversion tests (p = 0.2), ``per_look`` new buyers per arm at each of ``looks`` looks, every look
    read with the always-valid p-value of abkit's rule (the mixture tuned to the planned size,
    ``mixing_variance``), with the re-tuned rule ``sequential=True`` used to apply (``tau^2 = x V_now``) and with
    the naive fixed-horizon test. Returns the share of experiments that ever rejected, per rule, and the last
    look's inputs (for the cross-check against the production path)."""
    rng = np.random.default_rng(seed)
    planned = 2 * per_look * looks
    x = optimal_mixing_ratio(alpha)
    sc, st = np.zeros(sims), np.zeros(sims)
    ever = {"planned": np.zeros(sims, bool), "retuned": np.zeros(sims, bool), "naive": np.zeros(sims, bool)}
    for k in range(1, looks + 1):
        sc += rng.binomial(per_look, p, sims)
        st += rng.binomial(per_look, p, sims)
        n = per_look * k
        pc, pt = sc / n, st / n
        V = pc * (1 - pc) / (n - 1) + pt * (1 - pt) / (n - 1)  # Welch variance of the 0/1 means (ddof 1)
        d = pt - pc
        ok = V > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            ever["planned"] |= ok & (always_valid_p_value(d, V, mixing_variance(V, 2 * n, planned, alpha)) <= alpha)
            ever["retuned"] |= ok & (always_valid_p_value(d, V, x * V) <= alpha)
            ever["naive"] |= ok & (np.abs(d) / np.sqrt(V) > stats.norm.isf(alpha / 2))
    return {k: float(v.mean()) for k, v in ever.items()}, (pc, pt, n, planned)


def test_always_valid_keeps_alpha_over_hundreds_of_looks():
    """Issue 12.5: 500 looks (a daily look for well over a year, or hourly for three weeks), 4,000 A/A tests.
    The planned-size mixture keeps the false-positive rate at or below alpha; the re-tuned mixture of the old
    sequential=True has climbed to about alpha and keeps climbing with more looks; the naive test is useless.
    The simulation uses the functions the production path composes; checked against it at the last look."""
    rates, (pc, pt, n, planned) = _many_looks(4_000, 500, 20, seed=12)
    se = np.sqrt(0.05 * 0.95 / 4_000)
    print(
        f"500 looks: planned-size mixture {rates['planned']:.4f}, re-tuned {rates['retuned']:.4f}, "
        f"naive {rates['naive']:.4f}"
    )
    assert rates["planned"] <= 0.05
    assert rates["retuned"] - rates["planned"] > 6 * se  # about three times as many false positives
    assert rates["naive"] > 0.3
    # the production path gives these p-values: always_valid_rows and abkit.analyze on the same moments
    from abkit.moments import Moments
    from abkit.sequential import always_valid_rows
    from abkit.stats.two_sample import compare

    design = AlwaysValid(planned_n=planned)
    rows, expected = [], []
    for c, t in zip(pc[:20], pt[:20]):
        m = Moments(
            ("control", "treatment"),
            ("conv",),
            np.array([n, n], float),
            np.array([[c], [t]]),
            np.array([[[n * c * (1 - c)]], [[n * t * (1 - t)]]]),
        )
        comp = compare(m, abkit.Proportion("conv"), "control", "treatment")
        V = c * (1 - c) / (n - 1) + t * (1 - t) / (n - 1)
        assert comp.se**2 == pytest.approx(V, rel=1e-12)
        expected.append(always_valid_p_value(t - c, V, mixing_variance(V, 2 * n, planned)))
        rows.append(
            {
                "metric": "conv",
                "effect": comp.effect,
                "se": comp.se,
                "rel_effect": comp.rel_effect,
                "rel_se": comp.rel_se,
                "control_value": comp.control_value,
                "ci_lower": comp.ci_lower,
                "ci_upper": comp.ci_upper,
                "rel_ci_lower": comp.rel_ci_lower,
                "rel_ci_upper": comp.rel_ci_upper,
                "p_value": comp.p_value,
                "method": "proportion",
            }
        )
        if len(rows) == 1:
            ms = abkit.MomentSet({(("conv",), False): m}, "variant", rows={"control": n, "treatment": n})
            public = abkit.analyze(ms, [abkit.Proportion("conv")], sequential=design).rows[0]
            assert public["p_value"] == pytest.approx(expected[0], rel=1e-10)
    got = [r["p_value"] for r in always_valid_rows(rows, design, 0.05, 2 * n)]
    np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.slow
def test_always_valid_keeps_alpha_over_hundreds_of_looks_at_scale():
    """10,000 A/A tests, 500 and 2,000 looks: the planned-size mixture stays at or below alpha (recorded in
    benchmarks/CALIBRATION.md); the re-tuned mixture of the old sequential=True reaches alpha at 500 looks and
    exceeds it at 2,000 (0.05 and 0.07 in this run), as the law of the iterated logarithm says it must."""
    from calibration_log import record

    ok, se = True, np.sqrt(0.05 * 0.95 / 10_000)
    for looks, per_look in ((500, 20), (2_000, 5)):
        rates, _ = _many_looks(10_000, looks, per_look, seed=looks)
        ok &= record(
            f"seq_many_looks/{looks}",
            section="A/B, always-valid (sequential)",
            test="test_sequential.py::test_always_valid_keeps_alpha_over_hundreds_of_looks_at_scale",
            metric="conversion (proportion)",
            method=f"mixture tuned to the planned size (AlwaysValid(planned_n)), {looks} looks",
            statistic="false-positive rate",
            value=rates["planned"],
            nominal=0.05,
            reps=10_000,
            side="at most",
            note="A/A, 0/1 outcomes, the always-valid p-value read at every look; the "
            "mixture re-tuned at every look (the old sequential=True, refused now) "
            "gave 0.051 at 500 looks and 0.072 at 2,000",
        )
        if looks == 2_000:
            assert rates["retuned"] > 0.05 + 4 * se, rates
    assert ok
