"""Difference-in-differences at the edges (issue 12): the right answer or a clear refusal, never a silent
wrong number.

* Never-treated coding: one rule (``abkit.did.panel.classify_first_treated``) for ``staggered``,
  ``event_study``, ``placebo``, ``bacon``, TWFE's launch diagnostics and the rollout readout.
* Propensity-score trimming in the IPW and doubly robust Callaway & Sant'Anna cells, against the
  DRDID formulas (``drdid_panel``, ``std_ipw_did_panel``) written out here and csdid's figures.
* Few treated clusters: a warning and a field in every result, randomization inference over the
  assignment of units to treatment, and a readout verdict that never says "Worked" on CRV1 / wild
  bootstrap evidence alone.
* Unit weights in ``staggered`` against csdid with ``weights_name`` on mpdta.
* Smaller traps: 2x2 on repeated unit observations without clustering, the t reference of the
  ATT(g, t) cells, infinite first-treated values in messages.

Each test reproduces its case and fails on the code before the fix.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import abkit
import abkit.did as did
from abkit.errors import DataError
from abkit.readout import rollout
from abkit.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "reference"


def _panel(cohorts=None, n_weeks=30, seed=3, n_markets=20):
    p = abkit.simulate.rollout_panel(
        n_markets=n_markets,
        n_weeks=n_weeks,
        cohorts=cohorts or {10: 5, 20: 5},
        effects={"contact_rate": -0.1},
        seed=seed,
    )
    p["log_rate"] = np.log(p["contacts"] / p["orders"])
    p["size"] = np.log(p.groupby("market")["orders"].transform("mean"))  # a unit-level covariate
    p["launch_week"] = p["launch_week"].astype("float64")
    return p


# --------------------------------------------------------------------------
# 2. Never-treated coding
# --------------------------------------------------------------------------
def test_a_week_zero_launch_is_refused_not_a_never_treated_control():
    """Weeks numbered from 0 ((date - min) // 7, as the README suggested): a market launched in week 0 has
    launch_week 0. The old code read every 0 as 'never treated' and used those markets as controls; now the
    ambiguity is an error naming the column and the fix, in every estimator and in the readout."""
    p = _panel(cohorts={1: 3, 10: 5, 20: 5})
    p["week"] -= 1
    p["launch_week"] -= 1  # 0, 9, 19; never-treated stay missing
    assert (p.launch_week == 0).any() and (p.week == 0).any()
    calls = {
        "staggered": lambda: did.staggered(p, "log_rate", "market", "week", "launch_week"),
        "event_study": lambda: did.event_study(p, "log_rate", "market", "week", "launch_week", wild=False),
        "placebo": lambda: did.placebo(p, "log_rate", "market", "week", "launch_week", wild=False),
        "bacon": lambda: did.bacon(p, "log_rate", "market", "week", first_treated="launch_week"),
    }
    for name, call in calls.items():
        with pytest.raises(DataError, match=r"'launch_week' is 0 for 3 units, and 0 is also a period") as exc:
            call()
        assert "missing (NaN / None)" in str(exc.value), name


def test_never_treated_coded_missing_with_weeks_from_zero_equals_r_did_coding():
    """Missing = never whatever the period numbering; 0 = never when 0 is not a period (R did, mpdta)."""
    p = _panel()
    r_did = p.assign(launch_week=p.launch_week.fillna(0))  # weeks 1..30, 0 = never
    from_zero = p.assign(week=p.week - 1, launch_week=p.launch_week - 1)  # weeks 0..29, NaN = never
    a = did.staggered(r_did, "log_rate", "market", "week", "launch_week").aggregate("dynamic", reps=0)
    b = did.staggered(from_zero, "log_rate", "market", "week", "launch_week").aggregate("dynamic", reps=0)
    assert a.estimate == pytest.approx(b.estimate, abs=1e-12) and a.se == pytest.approx(b.se, rel=1e-12)
    np.testing.assert_array_equal(a.table.event_time, b.table.event_time)


@pytest.mark.parametrize("covariates", [None, ["size"]])
def test_negative_periods_are_periods_with_and_without_covariates(covariates):
    """Periods -14..15 (weeks around a reference date) with cohorts launched in weeks -5 and 5: every path
    gives the estimates of the same panel numbered 1..30. The old code treated a negative launch week as
    'never treated' without covariates and dropped those units from the comparison with covariates."""
    p = _panel()
    shifted = p.assign(week=p.week - 15, launch_week=p.launch_week - 15)
    kw = dict(covariates=covariates, method="dr")
    a = did.staggered(p, "log_rate", "market", "week", "launch_week", **kw)
    b = did.staggered(shifted, "log_rate", "market", "week", "launch_week", **kw)
    np.testing.assert_allclose(a.att_gt.att, b.att_gt.att, atol=1e-12)
    np.testing.assert_array_equal(a.att_gt.group - 15, b.att_gt.group)
    assert b.aggregate("simple").estimate == pytest.approx(a.aggregate("simple").estimate, abs=1e-12)
    ea = did.event_study(p, "log_rate", "market", "week", "launch_week", wild=False)
    eb = did.event_study(shifted, "log_rate", "market", "week", "launch_week", wild=False)
    np.testing.assert_allclose(ea.table.estimate, eb.table.estimate, atol=1e-12)


def test_negative_first_treated_with_nonnegative_periods_is_refused_on_every_path():
    """launch_week = -1 as a 'never' code with weeks 1..30: the old code read it as never treated without
    covariates but dropped those markets from the comparison group with covariates (two answers, no word)."""
    p = _panel()
    p["launch_week"] = p["launch_week"].fillna(-1)
    for cov in (None, ["size"]):
        with pytest.raises(DataError, match=r"negative for 10 units \(e.g. -1\) while every period"):
            did.staggered(p, "log_rate", "market", "week", "launch_week", covariates=cov)
    with pytest.raises(DataError, match="negative"):
        did.event_study(p, "log_rate", "market", "week", "launch_week", wild=False)


def test_infinite_first_treated_values():
    """+inf is 'treated at infinity' = never treated; -inf is refused in plain words (the old message showed
    the numpy repr np.float64(inf) and refused both)."""
    p = _panel()
    a = did.staggered(p, "log_rate", "market", "week", "launch_week").aggregate("simple", reps=0)
    b = did.staggered(
        p.assign(launch_week=p.launch_week.fillna(np.inf)), "log_rate", "market", "week", "launch_week"
    ).aggregate("simple", reps=0)
    assert a.estimate == b.estimate and a.se == b.se
    with pytest.raises(DataError) as exc:
        did.staggered(p.assign(launch_week=p.launch_week.fillna(-np.inf)), "log_rate", "market", "week", "launch_week")
    assert "-inf for 10 units" in str(exc.value) and "np.float64" not in str(exc.value)
    bad = p.assign(launch_week=p.launch_week.astype(object).where(p.launch_week.notna(), "never"))
    with pytest.raises(DataError, match=r"must hold a period number .*got e.g. 'never'"):
        did.staggered(bad, "log_rate", "market", "week", "launch_week")


def test_twfe_launch_diagnostics_use_the_same_rule():
    """TWFE's raw trends by cohort: a cohort launched in week -5 is 'launched -5', not 'never treated'."""
    p = _panel()
    p["week"] -= 15
    p["launch_week"] -= 15
    p["launched"] = (p.week >= p.launch_week.fillna(np.inf)).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", did.DiDWarning)
        res = did.twfe(p, "log_rate", "launched", "market", "week", wild=False)
    cohorts = set(res.trends.cohort.astype(str))
    assert cohorts == {"launched -5", "launched 5", "never treated"}


def test_readout_panel_uses_the_same_rule(tmp_path):
    """The rollout readout reads launch periods with the estimators' rule (it used to map every value <= 0 to
    'never launched')."""
    spec = load_spec(ROOT / "specs" / "refund_policy_rollout.yaml")
    original = pd.read_parquet(ROOT / "data" / "rollout_panel.parquet")
    path = tmp_path / "panel.parquet"

    def panel_of(frame):
        frame.to_parquet(path)
        return rollout.load_panel(replace(spec, data=str(path)))

    p = original.assign(week=original.week - 20, launch_week=original.launch_week - 20)  # first wave: week 0
    with pytest.raises(DataError, match="'launch_week' is 0 for 5 units, and 0 is also a period"):
        panel_of(p)
    with pytest.raises(DataError, match="negative for 5 units"):  # -1 as a 'never' code
        panel_of(original.assign(launch_week=original.launch_week.fillna(-1)))
    shifted = panel_of(p.assign(week=p.week + 25, launch_week=p.launch_week + 25))
    assert shifted.cohorts == {25: 5, 35: 5, 45: 5} and shifted.n_never == 5
    assert panel_of(original.assign(launch_week=original.launch_week.fillna(0))).n_never == 5  # R did's 0


# --------------------------------------------------------------------------
# 3. Propensity-score trimming (DRDID)
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trim_panel():
    """data/reference/trim_panel.csv: 10 comparison units with logit scores in [0.995, 0.999)."""
    return pd.read_csv(DATA / "trim_panel.csv")


def _drdid_reference(dy, D, x, method, trim_level=0.995):
    """DRDID::drdid_panel / std_ipw_did_panel (no weights), written out from the DRDID source with statsmodels'
    logit and OLS: the ATT and se = sd(IF) sqrt(n - 1) / n."""
    import statsmodels.api as sm

    n = dy.size
    X = sm.add_constant(x)
    ps = np.minimum(sm.Logit(D, X).fit(disp=0, tol=1e-12).predict(X), 1 - 1e-6)
    keep = np.where(D == 1, True, ps < trim_level)
    w_treat, w_cont = keep * D, keep * ps * (1 - D) / (1 - ps)
    score_ps = (D - ps)[:, None] * X
    hess_ps = np.linalg.inv(X.T @ ((ps * (1 - ps))[:, None] * X)) * n
    lin_ps = score_ps @ hess_ps
    if method == "ipw":
        eta_t, eta_c = np.mean(w_treat * dy) / np.mean(w_treat), np.mean(w_cont * dy) / np.mean(w_cont)
        inf_t = (w_treat * dy - w_treat * eta_t) / np.mean(w_treat)
        m2 = np.mean((w_cont * (dy - eta_c))[:, None] * X, axis=0)
        inf_c = (w_cont * dy - w_cont * eta_c + lin_ps @ m2) / np.mean(w_cont)
    else:
        ols = sm.OLS(dy[D == 0], X[D == 0]).fit()
        out = X @ ols.params
        r = dy - out
        eta_t, eta_c = np.mean(w_treat * r) / np.mean(w_treat), np.mean(w_cont * r) / np.mean(w_cont)
        wx = (1 - D)[:, None] * X
        lin_ols = ((1 - D) * r)[:, None] * X @ np.linalg.inv(wx.T @ X / n)
        inf_t = (w_treat * r - w_treat * eta_t - lin_ols @ np.mean(w_treat[:, None] * X, axis=0)) / np.mean(w_treat)
        m2 = np.mean((w_cont * (r - eta_c))[:, None] * X, axis=0)
        m3 = np.mean(w_cont[:, None] * X, axis=0)
        inf_c = (w_cont * r - w_cont * eta_c + lin_ps @ m2 - lin_ols @ m3) / np.mean(w_cont)
    inf = inf_t - inf_c
    return eta_t - eta_c, np.std(inf, ddof=1) * np.sqrt(n - 1) / n, int((~keep).sum())


@pytest.mark.parametrize("method", ["dr", "ipw"])
def test_trimming_matches_the_drdid_formulas_where_it_binds(trim_panel, method):
    """10 comparison units have propensity scores in [0.995, 0.999): DRDID gives them weight zero. Before the fix
    abkit kept them (weights p / (1 - p) of 200-500) and its DR ATT of the post cell was 2.06 where DRDID's is
    2.66 (IPW: 1.36 vs 2.79)."""
    res = did.staggered(trim_panel, "y", "id", "period", "first_treated", method=method, covariates=["x"])
    wide = trim_panel.pivot(index="id", columns="period", values="y")
    unit = trim_panel.groupby("id").first()
    D = (unit.first_treated > 0).to_numpy(dtype=float)
    x = unit.x.to_numpy()
    for (t, base), row in zip([(2, 1), (3, 2)], res.att_gt.itertuples()):
        att, se, n_trim = _drdid_reference((wide[t] - wide[base]).to_numpy(), D, x, method)
        assert n_trim == 10 and row.n_trimmed == 10
        assert row.att == pytest.approx(att, abs=1e-8) and row.se == pytest.approx(se, rel=1e-6)
    untrimmed = did.staggered(
        trim_panel, "y", "id", "period", "first_treated", method=method, covariates=["x"], trim_level=1.0
    )
    assert (untrimmed.att_gt.n_trimmed == 0).all()
    att1, _, _ = _drdid_reference((wide[3] - wide[2]).to_numpy(), D, x, method, trim_level=1.0)
    assert untrimmed.att_gt.att.iloc[1] == pytest.approx(att1, abs=1e-8)
    assert abs(untrimmed.att_gt.att.iloc[1] - res.att_gt.att.iloc[1]) > 0.5  # trimming matters here
    assert any("Propensity-score trimming" in n for n in res.notes)


@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
def test_trimming_matches_csdid_figures(trim_panel, method):
    """ATT(g, t) and the four aggregations against csdid 0.4.3 (data/reference/make_csdid_weights_trim.py)."""
    _check_against_csdid(
        did.staggered(trim_panel, "y", "id", "period", "first_treated", method=method, covariates=["x"]),
        f"trim_nev_{method}_cov",
    )


def test_no_overlap_is_refused_as_r_did_does(trim_panel):
    """A score of 0.999 or more (R did's overlap check) is refused rather than estimated on a few units."""
    far = trim_panel.assign(x=np.where(trim_panel.x > 4.55, trim_panel.x + 1.5, trim_panel.x))
    with pytest.raises(DataError, match=r"cohort 3 in period 2: .*overlap check.*method='reg'"):
        did.staggered(far, "y", "id", "period", "first_treated", method="dr", covariates=["x"])
    did.staggered(far, "y", "id", "period", "first_treated", method="reg", covariates=["x"])  # no score: fine
    with pytest.raises(DataError, match="trim_level must be a number in"):
        did.staggered(trim_panel, "y", "id", "period", "first_treated", covariates=["x"], trim_level=0)


def test_without_covariates_a_cell_whose_controls_would_all_be_trimmed_is_refused():
    """Without covariates the score is the cohort's share of the cell; at 0.995 or more DRDID trims every
    comparison unit (R did returns NaN): a clear error, and method='reg' still estimates it."""
    rng = np.random.default_rng(1)
    n, T = 401, 3
    first = np.r_[0.0, np.full(n - 1, 3.0)]
    frame = pd.DataFrame(
        {
            "id": np.repeat(np.arange(n), T),
            "t": np.tile(np.arange(1, T + 1), n),
            "g": np.repeat(first, T),
            "y": rng.normal(size=n * T),
        }
    )
    with pytest.raises(DataError, match=r"cohort 3 in period .*0\.25% of the cell's weight.*trim_level"):
        did.staggered(frame, "y", "id", "t", "g", method="dr")
    assert np.isfinite(did.staggered(frame, "y", "id", "t", "g", method="reg").att_gt.att).all()


# --------------------------------------------------------------------------
# 8. Unit weights in staggered
# --------------------------------------------------------------------------
def _check_against_csdid(res, scenario):
    ref = pd.read_csv(DATA / "csdid_weights_trim_attgt.csv")
    ref = ref[ref.scenario == scenario]
    assert len(ref) == len(res.att_gt) > 0
    np.testing.assert_array_equal(res.att_gt.group, ref.group)
    np.testing.assert_array_equal(res.att_gt.time, ref.t)
    np.testing.assert_allclose(res.att_gt.att, ref.att, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.att_gt.se, ref.se, rtol=1e-8)
    agg = pd.read_csv(DATA / "csdid_weights_trim_aggte.csv")
    for kind in ("simple", "group", "dynamic", "calendar"):
        r = agg[(agg.scenario == scenario) & (agg.type == kind)]
        a = res.aggregate(kind, reps=0)
        assert a.estimate == pytest.approx(r.overall_att.iloc[0], abs=1e-10), kind
        assert a.se == pytest.approx(r.overall_se.iloc[0], rel=1e-8), kind
        if kind != "simple":
            np.testing.assert_array_equal(a.table.iloc[:, 0], r.egt.astype(int))
            np.testing.assert_allclose(a.table.estimate, r.att_egt, atol=1e-10)
            np.testing.assert_allclose(a.table.se, r.se_egt, rtol=1e-8)


@pytest.fixture(scope="module")
def mpdta():
    df = pd.read_csv(DATA / "mpdta.csv")
    df["pop"] = np.exp(df["lpop"])  # county population: unit weights that vary 1,000-fold
    return df


WEIGHTED = {
    "mpdta_w_nev_dr": dict(),
    "mpdta_w_nyt_dr": dict(control_group="not_yet_treated"),
    "mpdta_w_nev_dr_cov": dict(covariates=["lpop"]),
    "mpdta_w_nyt_ipw_cov": dict(control_group="not_yet_treated", method="ipw", covariates=["lpop"]),
    "mpdta_w_nev_reg_cov": dict(method="reg", covariates=["lpop"]),
}


@pytest.mark.parametrize("scenario", list(WEIGHTED))
def test_staggered_unit_weights_match_csdid(mpdta, scenario):
    """staggered(weights="pop") against csdid's ATTgt(weights_name="pop") (R did's weightsname) on mpdta: every
    ATT(g, t), its SE and all four aggregations. Before the fix staggered had no weights at all."""
    res = did.staggered(mpdta, "lemp", "countyreal", "year", "first.treat", weights="pop", **WEIGHTED[scenario])
    _check_against_csdid(res, scenario)
    assert res.weights == "pop"


def test_unit_weights_must_be_constant_within_unit_and_equal_weights_change_nothing(mpdta):
    plain = did.staggered(mpdta, "lemp", "countyreal", "year", "first.treat").aggregate("dynamic", reps=0)
    equal = did.staggered(mpdta.assign(one=3.0), "lemp", "countyreal", "year", "first.treat", weights="one").aggregate(
        "dynamic", reps=0
    )
    assert equal.estimate == pytest.approx(plain.estimate, abs=1e-14) and equal.se == pytest.approx(plain.se)
    varying = mpdta.assign(w=mpdta["pop"] * (1 + 0.1 * (mpdta.year - 2003)))
    with pytest.raises(DataError, match=r"weights column 'w' must be constant within each unit.*countyreal="):
        did.staggered(varying, "lemp", "countyreal", "year", "first.treat", weights="w")


def test_weighted_pretrend_jackknife_refits_use_the_weights():
    """The leave-one-unit-out refits behind the pre-trend test carry the unit weights: each row of the jackknife
    equals staggered() on the panel without that unit, with its weights."""
    from abkit.stats.callaway_santanna import dynamic_leave_one_out

    p = _panel()
    p["w"] = p.groupby("market")["orders"].transform("mean")
    res = did.staggered(p, "log_rate", "market", "week", "launch_week", weights="w", base_period="universal")
    d = res.data
    ev = np.array([-4.0, -3.0, -2.0])
    loo = dynamic_leave_one_out(
        d.Y,
        d.periods,
        d.G,
        ev,
        control_group=d.control_group,
        method=d.method,
        base_period=d.base_period,
        weights=d.weights,
    )
    first_market = sorted(p.market.unique())[0]
    without = did.staggered(
        p[p.market != first_market], "log_rate", "market", "week", "launch_week", weights="w", base_period="universal"
    ).aggregate("dynamic", min_e=-4, max_e=0, reps=0)
    tab = without.table.set_index("event_time")
    np.testing.assert_allclose(loo[0], tab.loc[[-4, -3, -2], "estimate"].to_numpy(), atol=1e-12)
    assert np.isfinite(res.pretrend.p_value)


# --------------------------------------------------------------------------
# 9. Smaller traps
# --------------------------------------------------------------------------
def test_att_gt_cells_use_the_reference_of_the_aggregations(mpdta):
    """With 20 markets the aggregations use t(19); the ATT(g, t) cells used the normal (narrower intervals for
    the cells than for their averages). Now both use t(G - 1) below 50 units and the normal above, labelled."""
    from scipy import stats

    res = did.staggered(_panel(), "log_rate", "market", "week", "launch_week")
    cells = res.att_gt
    assert res.df == 19 and (cells.df == 19).all()
    np.testing.assert_allclose((cells.ci_upper - cells.att) / cells.se, stats.t.isf(0.025, 19), rtol=1e-12)
    np.testing.assert_allclose(cells.p_value, 2 * stats.t.sf(np.abs(cells.att / cells.se), 19), rtol=1e-12)
    assert res.aggregate("dynamic", reps=0).df == res.df
    assert "t(19) reference" in res._repr_html_()
    big = did.staggered(mpdta, "lemp", "countyreal", "year", "first.treat")  # 500 counties: R did's normal
    assert (
        np.isinf(big.df)
        and big.att_gt.ci_upper.sub(big.att_gt.att)
        .div(big.att_gt.se)
        .round(6)
        .eq(round(stats.norm.isf(0.025), 6))
        .all()
    )
    assert "normal reference" in big.cell_reference


def test_two_by_two_on_a_panel_without_unit_or_cluster_warns():
    """Markets observed before and after, analysed without unit=: HC1 treats the 40 rows of 20 markets as 40
    independent observations; its SE is three times the cluster-robust one here (market levels cancel in the
    difference), and can as well be too small. The old code said nothing."""
    p = _panel(n_weeks=20, cohorts={11: 10})
    two = p[p.week.isin([5, 15])].assign(
        tr=lambda d: d.launch_week.notna().astype(int), post=lambda d: (d.week == 15).astype(int)
    )
    with pytest.warns(did.DiDWarning, match=r"without unit= or cluster=: every one of the 40 rows"):
        hc1 = did.two_by_two(two, "log_rate", "tr", "post")
    assert hc1.vcov_type == "HC1" and any("HC1" in n for n in hc1.notes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", did.DiDWarning)
        crv = did.two_by_two(two, "log_rate", "tr", "post", unit="market", wild=False)
    assert crv.vcov_type == "CRV1" and abs(np.log(crv.se / hc1.se)) > np.log(2)


def test_values_in_messages_are_plain_text():
    """Data values in errors print as 2 or 'W1', never np.float64(2.0) / np.str_('W1') (numpy 2 reprs)."""
    p = _panel(n_weeks=20, cohorts={11: 10})
    p["tr"] = p.launch_week.notna().astype(float) * 2
    p["post"] = (p.week >= 11).astype(int)
    with pytest.raises(DataError) as exc:
        did.two_by_two(p, "log_rate", "tr", "post", unit="market")
    assert "found e.g. 2)" in str(exc.value) and "np." not in str(exc.value)
    p["wk"] = "W" + p.week.astype(str)
    with pytest.raises(DataError) as exc:
        did.staggered(p, "log_rate", "market", "wk", "launch_week")
    assert "got values like 'W1'" in str(exc.value) and "np." not in str(exc.value)


# --------------------------------------------------------------------------
# 7. Few treated clusters
# --------------------------------------------------------------------------
def _one_market(n_markets=27, launched=1, effect=-0.1, seed=2):
    p = abkit.simulate.rollout_panel(
        n_markets=n_markets, n_weeks=30, cohorts={15: launched}, effects={"contact_rate": effect}, seed=seed
    )
    p["log_rate"] = np.log(p["contacts"] / p["orders"])
    p["launch_week"] = p["launch_week"].astype("float64")
    p["launched"] = (p.week >= p.launch_week.fillna(np.inf)).astype(float)
    p["post"] = (p.week >= 15).astype(int)
    p["tr"] = p.launch_week.notna().astype(int)
    return p


def test_few_treated_clusters_are_flagged_in_every_result():
    """One treated market among 27 (a one-state policy): TWFE's CRV1 p is tiny and the wild bootstrap's large,
    and neither result said that both are unreliable. Now every estimator warns and sets the field."""
    p = _one_market()
    calls = {
        "twfe": lambda: did.twfe(p, "log_rate", "launched", "market", "week"),
        "two_by_two": lambda: did.two_by_two(p, "log_rate", "tr", "post", unit="market", wild=False),
        "event_study": lambda: did.event_study(p, "log_rate", "market", "week", "launch_week", wild=False),
        "placebo": lambda: did.placebo(p, "log_rate", "market", "week", "launch_week", wild=False),
        "staggered": lambda: did.staggered(p, "log_rate", "market", "week", "launch_week"),
    }
    for name, call in calls.items():
        with pytest.warns(did.FewTreatedClustersWarning, match=r"Only 1 (treated cluster|launched unit):"):
            res = call()
        assert res.few_treated_clusters and res.n_treated_clusters == 1, name
        text = " ".join(res.notes)
        assert "randomization_test" in text and "abkit.did.synthetic" in text, name
    tw = did.twfe(p, "log_rate", "launched", "market", "week")
    assert tw.p_value < 0.001 and tw.wild_p_value > 0.05  # the two disagree: neither is to be trusted
    assert bool(tw.to_frame().few_treated_clusters.iloc[0])
    agg = did.staggered(p, "log_rate", "market", "week", "launch_week").aggregate("simple")
    assert agg.few_treated_clusters and "Unreliable: only 1 launched" in agg.summary()
    many = _one_market(launched=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", did.FewTreatedClustersWarning)
        assert not did.twfe(many, "log_rate", "launched", "market", "week", wild=False).few_treated_clusters
        assert not did.staggered(many, "log_rate", "market", "week", "launch_week").few_treated_clusters
    almost_all = _one_market(n_markets=12, launched=10)  # 2 never-treated markets: the same failure
    with pytest.warns(did.FewTreatedClustersWarning, match="2 untreated clusters"):
        assert did.twfe(almost_all, "log_rate", "launched", "market", "week", wild=False).few_treated_clusters


def test_randomization_test_enumerates_every_assignment_when_few():
    """1 launched market of 27: the 27 assignments of the launch to one market, each estimate equal to did.twfe
    with that market launched; p = share of |estimates| >= the observed."""
    p = _one_market(effect=-0.3)
    ri = did.randomization_test(p, "log_rate", "market", "week", "launch_week")
    assert ri.exact and ri.n_assignments == ri.total_assignments == 27 and ri.min_p_value == pytest.approx(1 / 27)
    markets = sorted(p.market.unique())
    first_launch = p.groupby("market").launch_week.first()
    brute = []
    for m in markets:
        q = p.assign(launched=((p.market == m) & (p.week >= 15)).astype(float))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", did.DiDWarning)
            brute.append(did.twfe(q, "log_rate", "launched", "market", "week", wild=False).estimate)
    np.testing.assert_allclose(np.sort(ri.null_estimates), np.sort(brute), atol=1e-12)
    observed = brute[markets.index(first_launch.dropna().index[0])]
    assert ri.estimate == pytest.approx(observed, abs=1e-12)
    assert ri.p_value == pytest.approx(np.mean(np.abs(brute) >= abs(observed) * (1 - 1e-12)))
    assert ri.p_value == pytest.approx(1 / 27) and ri.significant  # the largest of the 27
    same = did.randomization_test(p, "log_rate", "market", "week", treatment="launched")
    assert same.p_value == ri.p_value and same.estimate == pytest.approx(ri.estimate, abs=1e-12)
    few20 = did.randomization_test(_one_market(n_markets=20, effect=-0.3), "log_rate", "market", "week", "launch_week")
    assert few20.p_value == pytest.approx(0.05) and not few20.can_reject and "cannot reach" in few20.summary()


def test_staggered_randomization_test_matches_brute_force_refits():
    p = _one_market(n_markets=12, launched=2, effect=-0.3)
    res = did.staggered(p, "log_rate", "market", "week", "launch_week")
    ri = res.randomization_test()
    assert ri.exact and ri.total_assignments == 66  # C(12, 2)
    import itertools

    markets = sorted(p.market.unique())
    brute = []
    for pair in itertools.combinations(markets, 2):
        q = p.assign(launch_week=np.where(p.market.isin(pair), 15.0, np.nan))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", did.DiDWarning)
            brute.append(
                did.staggered(q, "log_rate", "market", "week", "launch_week").aggregate("simple", reps=0).estimate
            )
    np.testing.assert_allclose(np.sort(ri.null_estimates), np.sort(brute), atol=1e-12)
    assert ri.p_value == pytest.approx(np.mean(np.abs(brute) >= abs(ri.estimate) * (1 - 1e-12)))
    via_function = did.randomization_test(p, "log_rate", "market", "week", "launch_week", estimator="staggered")
    assert via_function.p_value == ri.p_value


def test_staggered_randomization_test_without_first_treated_is_a_clear_error():
    """Found by mypy (issue 15.6): first_treated=None reached did.staggered and failed with a bare KeyError."""
    p = _one_market(n_markets=12, launched=2)
    with pytest.raises(DataError, match="estimator='staggered' needs first_treated="):
        did.randomization_test(p, "log_rate", "market", "week", estimator="staggered")
    with pytest.raises(DataError, match="not treatment="):
        did.randomization_test(p, "log_rate", "market", "week", treatment="launched", estimator="staggered")


def test_randomization_draws_are_seeded_and_count_the_observed_assignment():
    from abkit.stats.randomization_inference import assignments, count_assignments

    labels = np.array([3.0, 3.0, 5.0, np.inf, np.inf, np.inf])
    assert count_assignments(labels) == 60  # 6! / (2! 1! 3!)
    idx, exact = assignments(labels, reps=100)
    assert exact and idx.shape == (60, 6) and len({tuple(labels[r]) for r in idx}) == 60
    p = _one_market(n_markets=20, launched=4, effect=-0.05)
    a = did.randomization_test(p, "log_rate", "market", "week", "launch_week", reps=499, seed=7)
    b = did.randomization_test(p, "log_rate", "market", "week", "launch_week", reps=499, seed=7)
    assert not a.exact and a.n_assignments == 500 and a.total_assignments == 4845
    assert a.p_value == b.p_value
    hits = np.sum(np.abs(a.null_estimates[1:]) >= abs(a.estimate) * (1 - 1e-12))
    assert a.p_value == pytest.approx((1 + hits) / 500)


def _null_panels(rng, G, T, G1):
    sd = np.exp(rng.normal(0, 0.3, G))
    z = rng.standard_normal((G, T))
    e = np.empty((G, T))
    e[:, 0] = z[:, 0]
    for j in range(1, T):  # a loop over periods, not rows
        e[:, j] = 0.6 * e[:, j - 1] + 0.8 * z[:, j]
    y = rng.normal(size=G)[:, None] + 0.1 * np.arange(T)[None, :] + sd[:, None] * e
    first = np.full(G, np.nan)
    first[rng.permutation(G)[:G1]] = T // 2
    return pd.DataFrame(
        {
            "unit": np.repeat(np.arange(G), T),
            "t": np.tile(np.arange(1, T + 1), G),
            "first": np.repeat(first, T),
            "y": y.ravel(),
        }
    )


@pytest.mark.slow
def test_randomization_test_holds_its_size_where_crv1_fails():
    """Null panels (no effect), 2 launched units of 20: the CRV1 t(19) test of TWFE rejects far more than 5%
    (the case of issue 12 point 7); the exact randomization test (190 assignments) rejects about 5%.
    400 panels: MC SE of a 5% rate 0.011 (measured: CRV1 0.22, randomization 0.05 on 200 panels)."""
    rng = np.random.default_rng(11)
    crv1 = ri = 0
    R = 400
    for _ in range(R):
        d = _null_panels(rng, 20, 20, 2)
        d["D"] = (d.t >= d["first"].fillna(np.inf)).astype(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", did.DiDWarning)
            crv1 += did.twfe(d, "y", "D", "unit", "t", wild=False).p_value < 0.05
        ri += did.randomization_test(d, "y", "unit", "t", "first").p_value < 0.05
    print(f"null rejection at 5%: CRV1 {crv1 / R:.3f}, randomization {ri / R:.3f}")
    assert crv1 / R > 0.15 and ri / R <= 0.075


def test_pretrend_test_with_one_launched_unit_is_a_randomization_test():
    """One launched market of 27 and parallel trends: the covariance-based pre-trend test rejects almost always
    (the jackknife cannot leave out the only launched unit; the influence-function variance ignores its noise),
    so the old readout called such rollouts Invalid. With few launched units the default test is a
    randomization test of the same Wald statistic; 30 null panels: it rejects as rarely as it should."""
    rng = np.random.default_rng(5)
    old = new = 0
    for _ in range(30):
        d = _null_panels(rng, 27, 20, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", did.DiDWarning)
            res = did.staggered(d, "y", "unit", "t", "first", base_period="universal")
        old += res.pretrend_test(vcov="influence").p_value < 0.05
        test = res.pretrend_test()
        assert np.isnan(test.df2) and "randomization test" in test.method and "Wald W" in test.summary()
        new += test.p_value < 0.05
    assert old >= 24 and new <= 5


@pytest.mark.parametrize("design", ["balanced with a covariate", "weighted ratio", "unbalanced"])
def test_randomization_twfe_paths_match_brute_force_refits(design):
    """Both computations of the assignments' TWFE coefficients (the O(A n) one for balanced unweighted panels and
    the projection of blocks of assignments otherwise) against did.twfe refitted for every assignment."""
    import itertools

    p = _one_market(n_markets=9, launched=2, effect=-0.2)
    p["x"] = np.random.default_rng(0).normal(size=len(p))
    kw, outcome = {}, "log_rate"
    if design == "balanced with a covariate":
        kw = dict(covariates=["x"])
    elif design == "weighted ratio":
        outcome = ("contacts", "orders")
    else:
        p = p.drop(index=p.index[[3, 40, 41, 100]])
    ri = did.randomization_test(p, outcome, "market", "week", "launch_week", **kw)
    assert ri.exact and ri.n_assignments == 36  # C(9, 2)
    brute = []
    for pair in itertools.combinations(sorted(p.market.unique()), 2):
        q = p.assign(launched=(p.market.isin(pair) & (p.week >= 15)).astype(float))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", did.DiDWarning)
            brute.append(did.twfe(q, outcome, "launched", "market", "week", wild=False, **kw).estimate)
    np.testing.assert_allclose(np.sort(ri.null_estimates), np.sort(brute), atol=1e-11)


def test_every_unit_treated_at_some_time_is_not_a_few_untreated_alarm(mpdta):
    """mpdta without its never-treated counties: TWFE compares cohorts launched at different times; no cluster
    is never treated, which is not the few-untreated-clusters failure (and 191 treated counties are plenty)."""
    d = mpdta[mpdta["first.treat"] > 0].assign(D=lambda x: (x.year >= x["first.treat"]).astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", did.DiDWarning)
        warnings.simplefilter("error", did.FewTreatedClustersWarning)
        res = did.twfe(d, "lemp", "D", "countyreal", "year", wild=False)
    assert not res.few_treated_clusters and res.n_untreated_clusters == 0
