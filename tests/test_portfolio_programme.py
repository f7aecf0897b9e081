"""The programme view (abkit.portfolio.programme) and impact in business terms (abkit.business_impact):
totals recomputed by hand from the store's rows, the business arithmetic and its words, the forest plot."""

import math

import matplotlib
import numpy as np
import pytest
from scipy import stats

matplotlib.use("Agg")

import abkit  # noqa: E402
from abkit import portfolio  # noqa: E402
from abkit.business_impact import ImpactSpec, impact_sentence, impact_weight, round_about, yearly_impact  # noqa: E402
from abkit.stats import shrinkage  # noqa: E402

IMPACT = {
    "impact_volume": 12_000_000,
    "impact_per": "orders",
    "impact_unit": "contacts",
    "impact_value": 4.5,
    "impact_currency": "EUR",
}


def _portfolio(tmp_path, k=12, seed=3):
    """k A/B tests on contact_rate (primary, with an impact volume) and csat (secondary); plus rows to exclude."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(k):
        se = rng.uniform(0.008, 0.02)
        est = rng.normal(-0.01, 0.01) + rng.normal(0, se)
        verdict = "Ship" if est / se < -1.96 else "Inconclusive"
        rows.append(
            [
                {
                    "experiment": f"Test {i}",
                    "slug": f"test-{i}",
                    "kind": "ab",
                    "metric": "contact_rate",
                    "variant": "treatment",
                    "better": "lower",
                    "is_primary": True,
                    "control_value": 0.12 + 0.001 * i,
                    "rel_effect": est,
                    "rel_se": se,
                    "rel_ci_lower": est - 1.96 * se,
                    "rel_ci_upper": est + 1.96 * se,
                    "verdict": verdict,
                    "owner": "Returns team" if i % 2 else "CS team",
                    **IMPACT,
                },
                {
                    "experiment": f"Test {i}",
                    "slug": f"test-{i}",
                    "kind": "ab",
                    "metric": "csat",
                    "variant": "treatment",
                    "better": "higher",
                    "is_primary": False,
                    "control_value": 4.1,
                    "rel_effect": rng.normal(0, 0.01),
                    "rel_se": 0.01,
                    "verdict": verdict,
                    "owner": "Returns team" if i % 2 else "CS team",
                },
            ]
        )
    for r in rows:
        portfolio.record(tmp_path, r)
    # left out: an Invalid readout, a failed one, a test plan, an estimate without a standard error
    portfolio.record(
        tmp_path,
        [
            {
                "experiment": "SRM",
                "slug": "srm",
                "kind": "ab",
                "metric": "contact_rate",
                "rel_effect": -0.5,
                "rel_se": 0.01,
                "verdict": "Invalid",
                "is_primary": True,
            }
        ],
    )
    portfolio.record(
        tmp_path,
        [
            {
                "experiment": "Broken",
                "slug": "broken",
                "kind": "ab",
                "metric": "contact_rate",
                "status": "failed",
                "error": "boom",
                "is_primary": True,
            }
        ],
    )
    portfolio.record(
        tmp_path,
        [
            {
                "experiment": "Plan",
                "slug": "plan",
                "kind": "power",
                "metric": "contact_rate",
                "variant": "plan",
                "verdict": "Run 28 days",
                "is_primary": True,
            }
        ],
    )
    portfolio.record(
        tmp_path,
        [
            {
                "experiment": "Quantile",
                "slug": "q",
                "kind": "ab",
                "metric": "contact_rate",
                "rel_effect": -0.02,
                "verdict": "Ship",
                "is_primary": True,
            }
        ],
    )
    return portfolio.load(tmp_path)


def test_programme_totals_are_the_sums_they_claim(tmp_path):
    frame = _portfolio(tmp_path)
    prog = portfolio.programme(tmp_path)
    assert prog.summary["metric"].tolist() == ["contact_rate", "csat"]  # primary KPIs first
    row = prog.kpi("contact_rate")
    use = frame[(frame.metric == "contact_rate") & frame.slug.str.startswith("test-")]
    shipped = (use.verdict == "Ship").to_numpy()
    y, s = use.rel_effect.to_numpy(), use.rel_se.to_numpy()
    assert row["experiments"] == 12 and row["shipped"] == shipped.sum() > 0
    assert row["win_rate"] == pytest.approx(shipped.mean())
    assert row["excluded"] == 4
    assert sorted(prog.excluded["reason"]) == sorted(
        [
            "verdict Invalid: its numbers cannot be trusted",
            "readout failed",
            "not an A/B test, rollout or one-market launch",
            "no relative effect with a standard error",
        ]
    )
    z = stats.norm.ppf(0.975)
    assert row["naive_total"] == pytest.approx(y[shipped].sum(), rel=1e-12)
    assert row["naive_upper"] - row["naive_total"] == pytest.approx(z * math.sqrt(np.sum(s[shipped] ** 2)))
    fit = shrinkage.shrink(y, s)  # the prior is fitted on all 12, not the shipped
    tot = fit.total(shipped.astype(float))
    assert row["shrunk_total"] == pytest.approx(tot["shrunk"], rel=1e-12)
    assert (row["shrunk_lower"], row["shrunk_upper"]) == pytest.approx((tot["shrunk_lower"], tot["shrunk_upper"]))
    assert row["shrunk_total"] == pytest.approx(fit.shrunk[shipped].sum(), rel=1e-12)
    # lower is better: the naive sum claims more improvement (more negative) than the corrected one
    assert row["naive_total"] < row["shrunk_total"] < 0 and row["overstatement"] == pytest.approx(
        row["shrunk_total"] - row["naive_total"]
    )
    assert row["prior_mean"] == pytest.approx(fit.prior.mean) and row["prior_sd"] == pytest.approx(fit.prior.tau)
    exp = prog.experiments[prog.experiments.metric == "contact_rate"]
    np.testing.assert_allclose(exp["shrunk"], fit.shrunk)
    assert exp["shipped"].tolist() == shipped.tolist()


def test_business_totals_are_volume_times_baseline_times_lift(tmp_path):
    frame = _portfolio(tmp_path)
    prog = portfolio.programme(tmp_path)
    row = prog.kpi("contact_rate")
    use = frame[(frame.metric == "contact_rate") & frame.slug.str.startswith("test-")]
    shipped = (use.verdict == "Ship").to_numpy()
    weight = np.where(shipped, 12_000_000 * use.control_value.to_numpy(), 0.0)  # contacts a year per unit lift
    y, s = use.rel_effect.to_numpy(), use.rel_se.to_numpy()
    assert row["impact_unit"] == "contacts" and row["impact_experiments"] == shipped.sum()
    assert row["impact_naive"] == pytest.approx(weight @ y, rel=1e-12)
    assert row["impact_naive"] < 0  # fewer contacts
    tot = shrinkage.shrink(y, s).total(weight)
    assert row["impact_shrunk"] == pytest.approx(tot["shrunk"], rel=1e-12)
    # money: each contact costs EUR 4.50, so fewer contacts are a gain
    assert row["currency"] == "EUR"
    assert row["money_naive"] == pytest.approx(-4.5 * row["impact_naive"], rel=1e-12)
    assert row["money_shrunk"] == pytest.approx(-4.5 * row["impact_shrunk"], rel=1e-12)
    assert row["money_shrunk_lower"] == pytest.approx(-4.5 * row["impact_shrunk_upper"], rel=1e-9)
    assert np.isnan(prog.kpi("csat")["impact_naive"])  # no volume declared for csat
    words = prog.sentences()["contact_rate"]
    assert words.startswith(
        f"contact_rate: {shipped.sum()} of 12 experiments shipped (win rate "
        f"{shipped.mean():.0%}). Their measured lifts add up to "
    )
    assert "corrected for the winner's curse" in words and "In business terms, corrected: about " in words
    assert "fewer contacts a year (95% CI " in words and "saving about EUR " in words


def test_programme_filters_and_too_few_experiments(tmp_path):
    _portfolio(tmp_path, k=5)
    prog = portfolio.programme(tmp_path, owner="Returns team")  # 2 of the 5 experiments
    row = prog.kpi("contact_rate")
    assert row["experiments"] == 2 and np.isnan(row["shrunk_total"])
    assert "needs at least 4" in row["note"]
    assert "needs at least 4" in prog.sentences()["contact_rate"] or row["shipped"] == 0
    assert portfolio.programme(tmp_path, metrics="csat").summary["metric"].tolist() == ["csat"]
    assert portfolio.programme(tmp_path, primary_only=True).summary["metric"].tolist() == ["contact_rate"]
    with pytest.raises(abkit.DataError, match="no readout measured 'nps'"):
        portfolio.programme(tmp_path, metrics=["nps"])
    with pytest.raises(abkit.DataError, match="no KPI 'nps'"):
        prog.kpi("nps")
    # "shipped" is a choice of labels
    none = portfolio.programme(tmp_path, shipped=("Launched",)).kpi("contact_rate")
    assert none["shipped"] == 0 and none["naive_total"] == 0 and none["shrunk_total"] == 0


def test_forest_plot_is_labelled(tmp_path):
    _portfolio(tmp_path)
    prog = portfolio.programme(tmp_path)
    ax = prog.plot("contact_rate")
    shipped = prog.experiments[(prog.experiments.metric == "contact_rate") & prog.experiments.shipped]
    assert [t.get_text() for t in ax.get_yticklabels()] == shipped["experiment"].tolist()
    assert ax.get_title(loc="left").startswith("contact_rate: shipped experiments, as measured and corrected")
    assert "relative lift (%)" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "as measured",
        "corrected for the winner's curse",
        "portfolio mean lift",
    ]
    # every shipped experiment: a raw and a shrunk interval at its estimates (in %)
    segments = [ln.get_xdata() for ln in ax.get_lines() if len(ln.get_xdata()) == 2]
    assert any(
        np.allclose(sorted(seg), 100 * np.array([shipped["shrunk_lower"].iloc[0], shipped["shrunk_upper"].iloc[0]]))
        for seg in segments
    )
    import matplotlib.pyplot as plt

    plt.close(ax.figure)
    empty = prog.plot("csat", shipped_only=True) if prog.kpi("csat")["shipped"] == 0 else None
    if empty is not None:
        plt.close(empty.figure)


# --------------------------------------------------------------------------- business impact
def test_yearly_impact_carries_the_interval_through():
    impact = ImpactSpec.from_dict({"volume": 12_000_000, "per": "orders", "unit": "contacts", "value": 4.50})
    out = yearly_impact(-0.0015, -0.0025, -0.0005, impact, better="lower")
    assert (out.change, out.lower, out.upper) == pytest.approx((-18_000, -30_000, -6_000))
    assert (out.money, out.money_lower, out.money_upper) == pytest.approx((81_000, 27_000, 135_000))
    assert out.sentence() == (
        "about 18,000 fewer contacts a year (95% CI 6,000 to 30,000), saving about EUR 81,000 "
        "a year (95% CI EUR 27,000 to EUR 135,000)"
    )
    worse = yearly_impact(0.0015, 0.0005, 0.0025, impact, better="lower")
    assert worse.sentence() == (
        "about 18,000 more contacts a year (95% CI 6,000 to 30,000), costing about EUR "
        "81,000 a year (95% CI EUR 27,000 to EUR 135,000)"
    )
    unclear = yearly_impact(-0.0005, -0.0025, 0.0015, impact, better="lower")
    assert unclear.sentence() == (
        "about 6,000 fewer contacts a year (95% CI from 30,000 fewer to 18,000 more), "
        "saving about EUR 27,000 a year (95% CI from a loss of EUR 81,000 to a gain of "
        "EUR 135,000)"
    )
    gain = yearly_impact(
        0.0015,
        0.0005,
        0.0025,
        {"volume": 1e6, "per": "buyers", "unit": "repeat buyers", "value": 12},
        better="higher",
        level=0.9,
    )
    assert gain.sentence() == (
        "about 1,500 more repeat buyers a year (90% CI 500 to 2,500), worth about EUR 18,000 "
        "a year (90% CI EUR 6,000 to EUR 30,000)"
    )
    no_value = yearly_impact(0.0015, 0.0005, 0.0025, {"volume": 1e6, "unit": "repeat buyers"}, better="higher")
    assert no_value.money is None
    assert no_value.sentence() == "about 1,500 more repeat buyers a year (95% CI 500 to 2,500)"
    # the relative form gives the same point: volume * control * lift == volume * effect when lift = effect / control
    assert impact_weight(12_000_000, 0.12) * (-0.0015 / 0.12) == pytest.approx(out.change)


def test_rounding_and_words_at_the_edges():
    assert round_about([18_340, 6_120, 30_550]) == ([18_000, 6_000, 31_000], 0)
    assert round_about([1_234, 1_100, 1_370]) == ([1_200, 1_100, 1_400], 0)
    assert round_about([120, -30_000, 30_000])[0] == [100, -30_000, 30_000]  # no finer than a tenth of the interval
    assert round_about([0.0123, 0.01, 0.015]) == ([0.012, 0.01, 0.015], 3)
    assert impact_sentence(float("nan"), 0, 1, unit="contacts").startswith("the change in contacts a year cannot")
    assert impact_sentence(10, -30_000, 30_000, unit="contacts") == (
        "no change in contacts a year to speak of (95% CI from 30,000 fewer to 30,000 more)"
    )


def test_impact_spec_validation():
    assert ImpactSpec.from_dict(None) is None
    spec = ImpactSpec.from_dict({"volume": 5, "unit": "refunds"})
    assert spec.per == "units" and spec.value is None and spec.currency == "EUR"
    assert ImpactSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(abkit.SpecError, match=r"impact.volum: unknown key 'volum'. Did you mean 'volume'\?"):
        ImpactSpec.from_dict({"volum": 5, "volume": 5, "unit": "refunds"})
    with pytest.raises(abkit.SpecError, match="impact.volume: expected a number above 0, got -5"):
        ImpactSpec.from_dict({"volume": -5, "unit": "refunds"})
    with pytest.raises(abkit.SpecError, match="impact.unit: required"):
        ImpactSpec.from_dict({"volume": 5})
    with pytest.raises(abkit.SpecError, match="expected a mapping"):
        ImpactSpec.from_dict(12)
    spec, problems = ImpactSpec.parse({"volume": True, "unit": ""}, where="impact")
    assert spec is None and [w for w, _ in problems] == ["impact.volume", "impact.unit"]


def test_overview_lists_each_experiment_and_arm_once(tmp_path):
    def arm(slug, variant, verdict, **kw):
        return {
            "experiment": slug.upper(),
            "slug": slug,
            "kind": "ab",
            "metric": "refund_rate",
            "variant": variant,
            "is_primary": True,
            "verdict": verdict,
            "rel_effect": -0.03,
            "owner": "Returns team",
            **kw,
        }

    portfolio.record(
        tmp_path,
        [
            arm("a", "chatbot", "Inconclusive"),
            arm("a", "chatbot_plus", "Inconclusive"),
            {**arm("a", "chatbot", None), "metric": "csat", "is_primary": False},
        ],
        run_time="2026-10-01",
    )
    portfolio.record(
        tmp_path,
        [
            arm("a", "chatbot", "Ship"),
            arm("a", "chatbot_plus", "Do not ship"),
            {**arm("a", "chatbot", None), "metric": "csat", "is_primary": False},
        ],
        run_time="2026-10-08",
    )
    portfolio.record(
        tmp_path,
        [
            {
                "experiment": "B",
                "slug": "b",
                "kind": "ab",
                "status": "failed",
                "error": "boom",
                "metric": "contact_rate",
                "is_primary": True,
                "owner": "CS team",
            }
        ],
        run_time="2026-10-09",
    )
    portfolio.record(
        tmp_path,
        [arm("c", "rollout", "Worked", kind="did", metric="contact_rate", owner="CS team")],
        run_time="2026-09-01",
    )
    page = portfolio.overview(tmp_path)
    assert list(page.columns) == portfolio.OVERVIEW_COLUMNS
    assert page[["slug", "variant", "verdict", "runs"]].values.tolist() == [
        ["b", None, None, 1],
        ["a", "chatbot", "Ship", 2],
        ["a", "chatbot_plus", "Do not ship", 2],
        ["c", "rollout", "Worked", 1],
    ]  # newest first; the latest run's verdicts
    assert page.set_index("slug").loc["b", "status"] == "failed"
    assert portfolio.overview(tmp_path, owner="CS team")["slug"].tolist() == ["b", "c"]
    assert portfolio.overview(tmp_path, metric="refund_rate")["slug"].tolist() == ["a", "a"]  # the KPI targeted
    assert portfolio.overview(tmp_path, verdict="Ship")["variant"].tolist() == ["chatbot"]
    assert portfolio.overview(portfolio.load(tmp_path)).equals(page)


def test_impact_of_a_result_row():
    from abkit.business_impact import impact_of

    df = abkit.simulate.ab_data(20_000, effects={"contact_rate": -0.1}, seed=2)
    result = abkit.analyze(df, [abkit.Ratio("contacts", "orders", name="contact_rate", better="lower")])
    row = result.row("contact_rate")
    out = impact_of(row, {"volume": 12_000_000, "per": "orders", "unit": "contacts", "value": 4.5})
    assert out.change == pytest.approx(12_000_000 * row["effect"])
    assert (out.lower, out.upper) == pytest.approx((12_000_000 * row["ci_lower"], 12_000_000 * row["ci_upper"]))
    assert out.money == pytest.approx(-4.5 * out.change) and out.level == 0.95
    assert out.sentence().startswith("about ") and " fewer contacts a year (95% CI " in out.sentence()
    assert impact_of(row, None) is None


def test_programme_of_an_empty_or_failed_store(tmp_path):
    import duckdb

    duckdb.connect(str(tmp_path / "abkit.duckdb")).close()
    empty = portfolio.programme(tmp_path)
    assert empty.summary.empty and empty.experiments.empty and portfolio.overview(tmp_path).empty
    portfolio.record(
        tmp_path,
        [
            {
                "experiment": "F",
                "slug": "f",
                "kind": "ab",
                "status": "failed",
                "error": "x",
                "metric": "contact_rate",
                "is_primary": True,
            }
        ],
    )
    prog = portfolio.programme(tmp_path)
    row = prog.kpi("contact_rate")
    assert row["experiments"] == 0 and row["excluded"] == 1 and np.isnan(row["win_rate"])
    assert prog.sentences()["contact_rate"] == (
        "contact_rate: no readout with a usable estimate (1 left out: failed, Invalid, plans or no standard error)."
    )


def test_impact_weight_keeps_the_sign_of_the_effect_for_a_negative_baseline():
    """rel_effect is relative to |control| (abkit.stats.two_sample): weight x rel = volume x the absolute effect."""
    control, effect = -0.148, 0.079  # an NPS-like net score going up by 7.9 points
    rel = effect / abs(control)
    assert rel > 0
    assert impact_weight(1_000_000, control) * rel == pytest.approx(1_000_000 * effect)
