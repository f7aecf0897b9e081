"""Difference-in-differences against independent references.

* R ``did`` (Callaway & Sant'Anna): every ATT(g,t) and the simple, group,
  dynamic and calendar aggregations with analytic SEs on mpdta, for
  never-treated and not-yet-treated controls, DR, IPW and outcome
  regression with ``~lpop`` (reference CSVs in ``data/reference/``, produced
  with R did; published figures). Scenarios the reference files lack
  (not-yet-treated with ``~lpop``; no never-treated units) against csdid,
  the Python port of R did, when it is installed.
* R fixest's published TWFE on mpdta; statsmodels OLS with explicit dummies
  and cluster-robust SEs (mpdta, and a 500 x 60 unbalanced weighted
  rollout panel); pyfixest (a test dependency).
* Mathematical identities: the Goodman-Bacon decomposition, the exact
  fixed-effect projection vs alternating projections, the fast wild
  bootstrap vs brute-force refits.
* Simulation with known truth (abkit.simulate.rollout_panel): CI coverage,
  pre-trend test size (TWFE event study; Callaway & Sant'Anna leads with the
  jackknife and Hotelling's F) and power against a planted pre-trend, the
  small-sample t(G-1) CIs and multivariate-t uniform band with 20 markets,
  wild bootstrap size with 20 clusters. The larger calibration suite is
  ``tests/test_did_calibration.py``; the slow simulations here are marked
  ``slow``.
* ``aggregate_panel`` from order-level rows in DuckDB (parquet path, relation;
  only the panel is collected) and in memory (pandas, Arrow), back to the panel.
* Errors that name the column and the offending value.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import abkit
import abkit.did as did
from abkit.errors import AbkitError, ColumnNotFoundError, DataError
from abkit.stats.callaway_santanna import aggregate_att_gt
from abkit.stats.cluster_robust import fit_linear
from abkit.stats.fixed_effects import FixedEffects
from abkit.stats.wild_bootstrap import wild_cluster_test

DATA = Path(__file__).parents[1] / "data" / "reference"  # mpdta and R did reference figures


@pytest.fixture(scope="module")
def mpdta():
    df = pd.read_csv(DATA / "mpdta.csv")
    df["treated"] = ((df["first.treat"] > 0) & (df["year"] >= df["first.treat"])).astype(float)
    return df


@pytest.fixture(scope="module")
def ref_attgt():
    return pd.read_csv(DATA / "mpdta_ref_attgt.csv")


@pytest.fixture(scope="module")
def ref_aggte():
    return pd.read_csv(DATA / "mpdta_ref_aggte.csv")


SCENARIOS = {
    "mpdta_nev_dr": dict(control_group="never_treated", method="dr"),
    "mpdta_nyt_dr": dict(control_group="not_yet_treated", method="dr"),
    "mpdta_nev_reg_cov": dict(control_group="never_treated", method="reg", covariates=["lpop"]),
    "mpdta_nev_ipw": dict(control_group="never_treated", method="ipw"),
}


def _cs(mpdta, scenario):
    return did.staggered(mpdta, "lemp", "countyreal", "year", "first.treat", **SCENARIOS[scenario])


def _log_rate_panel(seed, **kwargs):
    p = abkit.simulate.rollout_panel(seed=seed, **kwargs)
    p["log_contact_rate"] = np.log(p["contacts"] / p["orders"])
    return p


# --------------------------------------------------------------------------
# Callaway & Sant'Anna vs R did
# --------------------------------------------------------------------------
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_att_gt_matches_r_did(mpdta, ref_attgt, scenario):
    res = _cs(mpdta, scenario).att_gt
    ref = ref_attgt[ref_attgt.scenario == scenario]
    merged = res.merge(ref, left_on=["group", "time"], right_on=["group", "t"], suffixes=("", "_r"))
    assert len(merged) == len(ref) == len(res) == 12
    np.testing.assert_allclose(merged["att"], merged["att_r"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(merged["se"], merged["se_r"], rtol=1e-7)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("kind", ["simple", "group", "dynamic", "calendar"])
def test_aggregations_match_r_did(mpdta, ref_aggte, scenario, kind):
    agg = _cs(mpdta, scenario).aggregate(kind)
    ref = ref_aggte[(ref_aggte.scenario == scenario) & (ref_aggte.type == kind)]
    assert agg.estimate == pytest.approx(ref.overall_att.iloc[0], abs=1e-10)
    assert agg.se == pytest.approx(ref.overall_se.iloc[0], rel=1e-7)  # includes the share ("wif") term
    if kind != "simple":
        tab = agg.to_frame()
        assert tab.iloc[:, 0].tolist() == ref.egt.astype(int).tolist()
        np.testing.assert_allclose(tab["estimate"], ref.att_egt, atol=1e-10)
        np.testing.assert_allclose(tab["se"], ref.se_egt, rtol=1e-7)


def test_reference_covers_every_scenario_the_issue_names(ref_attgt, ref_aggte):
    """Never-treated AND not-yet-treated controls, DR AND outcome regression with ~lpop (and IPW): every
    ATT(g,t) and all four aggregations, for each scenario of the R did reference files on mpdta."""
    for scenario in SCENARIOS:
        assert (ref_attgt.scenario == scenario).sum() == 12
        kinds = set(ref_aggte.loc[ref_aggte.scenario == scenario, "type"])
        assert kinds == {"simple", "group", "dynamic", "calendar"}, scenario
    assert set(SCENARIOS) == {s for s in ref_attgt.scenario.unique() if s.startswith("mpdta")}


CSDID_SCENARIOS = {
    "mpdta_nev_dr_cov": dict(control_group="never_treated", method="dr", covariates=["lpop"]),
    "mpdta_nyt_dr_cov": dict(control_group="not_yet_treated", method="dr", covariates=["lpop"]),
    "mpdta_nyt_reg_cov": dict(control_group="not_yet_treated", method="reg", covariates=["lpop"]),
    "mpdta_nyt_ipw_cov": dict(control_group="not_yet_treated", method="ipw", covariates=["lpop"]),
    "mpdta_nonever_nyt_dr": dict(control_group="not_yet_treated", method="dr"),
    "mpdta_nonever_nyt_reg_cov": dict(control_group="not_yet_treated", method="reg", covariates=["lpop"]),
}


@pytest.mark.parametrize("scenario", list(CSDID_SCENARIOS))
def test_scenarios_beyond_r_reference_match_csdid_figures(mpdta, scenario):
    """ATT(g,t) and all four aggregations (analytic SEs) against csdid's figures stored in
    data/reference/mpdta_csdid_*.csv: not-yet-treated controls with ~lpop for DR, outcome regression
    and IPW; never-treated DR with ~lpop; and mpdta without its never-treated counties (R did then uses
    the last cohort, 2007, as the comparison and drops 2007)."""
    ref = pd.read_csv(DATA / "mpdta_csdid_attgt.csv")
    ref = ref[ref.scenario == scenario]
    agg_ref = pd.read_csv(DATA / "mpdta_csdid_aggte.csv")
    agg_ref = agg_ref[agg_ref.scenario == scenario]
    d = mpdta[mpdta["first.treat"] > 0] if "nonever" in scenario else mpdta
    res = did.staggered(d, "lemp", "countyreal", "year", "first.treat", **CSDID_SCENARIOS[scenario])
    tab = res.att_gt
    assert tab[["group", "time"]].to_numpy().tolist() == ref[["group", "t"]].to_numpy().tolist()
    np.testing.assert_allclose(tab["att"], ref["att"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(tab["se"], ref["se"], rtol=1e-8)
    for kind in ("simple", "group", "dynamic", "calendar"):
        agg = res.aggregate(kind, reps=0)
        r = agg_ref[agg_ref.type == kind]
        assert agg.estimate == pytest.approx(r.overall_att.iloc[0], abs=1e-10), kind
        assert agg.se == pytest.approx(r.overall_se.iloc[0], rel=1e-8), kind
        if kind != "simple":
            t = agg.to_frame()
            assert t.iloc[:, 0].tolist() == r.egt.astype(int).tolist(), kind
            np.testing.assert_allclose(t["estimate"], r.att_egt, atol=1e-10)
            np.testing.assert_allclose(t["se"], r.se_egt, rtol=1e-8)


@pytest.mark.parametrize("method", ["dr", "reg", "ipw"])
@pytest.mark.parametrize("data", ["all units", "no never-treated units"])
def test_not_yet_treated_with_covariates_matches_csdid(mpdta, method, data):
    """The same scenarios against a live csdid (the Python port of R did) when it is installed (it is not a
    test dependency): keeps the stored csdid figures honest."""
    csdid = pytest.importorskip("csdid.att_gt")
    import contextlib
    import io

    d = mpdta if data == "all units" else mpdta[mpdta["first.treat"] > 0]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = csdid.ATTgt(
            yname="lemp",
            gname="first.treat",
            idname="countyreal",
            tname="year",
            data=d,
            control_group="notyettreated",
            xformla="~lpop",
        ).fit(est_method=method, bstrap=False)
        ref_dyn = ref.aggte(typec="dynamic", bstrap=False).atte
    res = did.staggered(
        d,
        "lemp",
        "countyreal",
        "year",
        "first.treat",
        control_group="not_yet_treated",
        method=method,
        covariates=["lpop"],
    )
    np.testing.assert_allclose(res.att_gt["att"], ref.results["att"], atol=1e-10)
    np.testing.assert_allclose(res.att_gt["se"], ref.results["se"], rtol=1e-8)
    dyn = res.aggregate("dynamic", reps=0)
    assert dyn.estimate == pytest.approx(ref_dyn["overall_att"], abs=1e-10)
    assert dyn.se == pytest.approx(ref_dyn["overall_se"], rel=1e-8)
    if data != "all units":
        assert len(res.att_gt) == 6 and res.att_gt["time"].max() == 2006 and res.notes
        assert "periods from 2007 on" in " ".join(res.dropped)


def test_published_mpdta_figures(mpdta):
    """Callaway & Sant'Anna (2021) / R did documentation: never treated, DR, no covariates."""
    res = did.staggered(mpdta, "lemp", "countyreal", "year", "first.treat")
    published = {
        "simple": (-0.0400, 0.0120),
        "group": (-0.0310, 0.0124),
        "dynamic": (-0.0772, 0.0200),
        "calendar": (-0.0417, 0.0160),
    }
    for kind, (att, se) in published.items():
        agg = res.aggregate(kind)
        assert round(agg.estimate, 4) == att, kind
        assert round(agg.se, 4) == se, kind


def test_dr_with_covariate_matches_did_readme(mpdta):
    """R did's README / "Getting started" output of att_gt(yname="lemp", ..., xformla=~lpop)
    (doubly robust, never treated): ATT(g,t) printed to 4 decimals."""
    published = [
        -0.0145,
        -0.0764,
        -0.1404,
        -0.1069,
        -0.0005,
        -0.0062,
        0.0010,
        -0.0413,
        0.0267,
        -0.0046,
        -0.0284,
        -0.0288,
    ]
    res = did.staggered(mpdta, "lemp", "countyreal", "year", "first.treat", covariates=["lpop"])
    np.testing.assert_array_equal(res.att_gt["att"].round(4).to_numpy(), published)
    # no covariates: DR = IPW = (unconditional) DiD exactly
    a = did.staggered(mpdta, "lemp", "countyreal", "year", "first.treat", method="dr").att_gt
    b = did.staggered(mpdta, "lemp", "countyreal", "year", "first.treat", method="reg").att_gt
    np.testing.assert_allclose(a["att"], b["att"], atol=1e-12)


def test_cs_post_cell_is_plain_2x2_difference(mpdta):
    """ATT(2004, 2006), no covariates = (mean dY cohort 2004) - (mean dY never treated), dY = Y_2006 - Y_2003."""
    wide = mpdta.pivot(index="countyreal", columns="year", values="lemp")
    g = mpdta.groupby("countyreal")["first.treat"].first()
    dy = wide[2006] - wide[2003]
    expected = dy[g == 2004].mean() - dy[g == 0].mean()
    att = did.staggered(mpdta, "lemp", "countyreal", "year", "first.treat").att_gt
    got = att[(att.group == 2004) & (att.time == 2006)]["att"].iloc[0]
    assert got == pytest.approx(expected, abs=1e-14)


def test_universal_base_period(mpdta):
    res = did.staggered(mpdta, "lemp", "countyreal", "year", "first.treat", base_period="universal")
    tab = res.att_gt
    ref_cells = tab[tab.time == tab.group - 1]
    assert (ref_cells["att"] == 0).all() and ref_cells["se"].isna().all()
    post = tab[tab.post]
    varying = did.staggered(mpdta, "lemp", "countyreal", "year", "first.treat").att_gt
    np.testing.assert_allclose(post["att"].to_numpy(), varying[varying.post]["att"].to_numpy(), atol=1e-12)


def test_universal_base_reference_row_has_no_band_and_no_warnings(mpdta):
    """The reference period e = -1 is 0 by construction: no SE, CI, band or p-value, and it is left out of the
    sup-t band (its SE of 0 used to make the band NaN, with warnings), for both band methods."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = _log_rate_panel(4, effects={"contact_rate": -0.1})
    cases = [
        (mpdta, ("lemp", "countyreal", "year", "first.treat")),
        (p, ("log_contact_rate", "market", "week", "launch_week")),
    ]
    for data, args in cases:
        res = did.staggered(data, *args, base_period="universal")
        for small in (True, False):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                agg = res.aggregate("dynamic", min_e=-6, max_e=8, small_sample=small, reps=499, band_draws=5000)
                ax = agg.plot()
            tab = agg.to_frame().set_index("event_time")
            assert tab.loc[-1, "reference"] and tab["reference"].sum() == 1
            assert tab.loc[-1, "estimate"] == 0
            inference = ["se", "ci_lower", "ci_upper", "band_lower", "band_upper", "p_value"]
            assert tab.loc[[-1], inference].isna().all().all()
            rest = tab.drop(index=-1)
            assert np.isfinite(agg.critical_value) and agg.critical_value > (2.0 if small else 1.96)
            assert np.isfinite(rest[["se", "band_lower", "band_upper", "p_value"]].to_numpy()).all()
            assert (rest.band_lower < rest.ci_lower).all() and (rest.band_upper > rest.ci_upper).all()
            assert "reference period" in " ".join(t.get_text() for t in ax.get_legend().get_texts())
            plt.close("all")
    # the varying base has no reference row
    vary = did.staggered(p, "log_contact_rate", "market", "week", "launch_week").aggregate("dynamic", max_e=4)
    assert not vary.table["reference"].any()
    # the TWFE event study marks its reference the same way
    es = did.event_study(p, "log_contact_rate", "market", "week", "launch_week", wild=False, band_draws=2000)
    t = es.to_frame().set_index("event_time")
    assert t.loc[-1, "reference"] and np.isnan(t.loc[-1, "band_lower"]) and not t.drop(index=-1).reference.any()


# --------------------------------------------------------------------------
# The Callaway & Sant'Anna pre-trend test
# --------------------------------------------------------------------------
def _panel_with_drift(seed, drift=0.0, **kwargs):
    """The 20-market rollout, log contact rate, plus a linear pre-launch drift: ``drift * (e + 1)`` for e < 0."""
    p = _log_rate_panel(seed, **kwargs)
    e = (p.week - p.launch_week).astype("float").to_numpy()
    before = np.isfinite(e) & (e < 0)
    p["y"] = p["log_contact_rate"] + np.where(before, drift * (e + 1), 0.0)
    return p


def test_pretrend_test_is_the_wald_test_of_the_leads():
    """By hand: the Wald statistic of the dynamic leads with the influence-function covariance; Hotelling F; the
    jackknife covariance from leave-one-market-out refits; the public routes agree; q >= G is refused."""
    from scipy import stats

    p = _panel_with_drift(3)
    cs = did.staggered(p, "y", "market", "week", "launch_week", base_period="universal")
    dyn = cs.aggregate("dynamic", min_e=-6, max_e=12)
    pt = dyn.pretrend()
    assert pt == cs.pretrend_test(leads=6)
    assert pt.event_times == (-6.0, -5.0, -4.0, -3.0, -2.0) and pt.df1 == 5 and pt.df2 == 15 and pt.n_clusters == 20
    # influence-function version, by hand
    agg = aggregate_att_gt(cs.cells, "dynamic", min_e=-6, max_e=0)
    rows = np.isin(agg.labels, [-6, -5, -4, -3, -2])
    b, psi = agg.att[rows], agg.inf[:, rows]
    V = psi.T @ psi / 20**2
    W = b @ np.linalg.solve(V, b)
    inf_pt = cs.pretrend_test(leads=6, vcov="influence")
    assert inf_pt.wald == pytest.approx(W, rel=1e-10)
    assert inf_pt.statistic == pytest.approx(W * 15 / (5 * 19), rel=1e-10)
    assert inf_pt.p_value == pytest.approx(stats.f.sf(W * 15 / (5 * 19), 5, 15), rel=1e-10)
    # jackknife version, by hand: refit on the other 19 markets through the public API
    markets = sorted(p.market.unique())
    loo = []
    for m in markets:
        r = did.staggered(p[p.market != m], "y", "market", "week", "launch_week", base_period="universal")
        t = r.aggregate("dynamic", min_e=-6, max_e=0, reps=0).to_frame().set_index("event_time")
        loo.append(t.loc[[-6, -5, -4, -3, -2], "estimate"].to_numpy())
    loo = np.array(loo)
    d = loo - loo.mean(axis=0)
    VJ = 19 / 20 * d.T @ d
    assert pt.wald == pytest.approx(b @ np.linalg.solve(VJ, b), rel=1e-8)
    assert "jackknife" in pt.method and "jackknife" in pt.summary()
    # the varying base with one lead fewer tests the same periods: the same statistic
    vary = did.staggered(p, "y", "market", "week", "launch_week").pretrend_test(leads=5)
    assert vary.event_times == (-5.0, -4.0, -3.0, -2.0, -1.0)
    assert vary.wald == pytest.approx(pt.wald, rel=1e-8) and vary.p_value == pytest.approx(pt.p_value, rel=1e-8)
    # more leads than units: refused, naming the fix
    with pytest.raises(DataError, match=r"25 pre-launch event times .* there are 20 units.*at most 19"):
        cs.pretrend_test(leads=26)
    with pytest.raises(DataError, match="vcov"):
        cs.pretrend_test(vcov="robust")
    with pytest.raises(DataError, match="'dynamic' aggregation"):
        cs.aggregate("simple").pretrend()
    assert not np.isfinite(cs.pretrend_test(leads=1).p_value)  # only the reference: nothing to test
    # the default (4 leads) feeds summary(); the old all-cells test had 84 cells for 20 markets
    assert cs.pretrend.df1 == 3 and "pre-trend test of event times -4..-2" in cs.summary()


@pytest.fixture(scope="module")
def readme_cs():
    """The README's rollout: contacts per order on the sample panel (20 markets x 52 weeks), not-yet-treated."""
    panel = Path(__file__).parents[1] / "data" / "rollout_panel.parquet"
    return did.staggered(
        panel,
        outcome=("contacts", "orders"),
        unit="market",
        time="week",
        first_treated="launch_week",
        control_group="not_yet_treated",
        method="dr",
    )


def test_aggregate_pretrend_defaults_to_the_window_the_summary_reports(readme_cs):
    """An unwindowed dynamic aggregation shows every event time (-38..32 here, 38 leads for 20 markets): its
    pretrend() tests the 4 leads print(cs) reports, not all 38 (a singular covariance); leads= picks another
    window; an aggregation built with min_e tests the window it shows."""
    cs = readme_cs
    dyn = cs.aggregate("dynamic", reps=0)
    assert dyn.table.event_time.min() == -38 and did.PRETREND_LEADS == 4
    pt = dyn.pretrend()
    assert pt == cs.pretrend == cs.pretrend_test()
    assert pt.event_times == (-4.0, -3.0, -2.0, -1.0) and pt.df1 == 4 and pt.df2 == 16
    assert "pre-trend test of event times -4..-1" in str(cs) and pt.summary() in cs.summary()
    assert str(pt) == repr(pt) == pt.summary()
    eight = dyn.pretrend(leads=8)
    assert eight == cs.pretrend_test(leads=8) and eight.event_times == tuple(float(e) for e in range(-8, 0))
    windowed = cs.aggregate("dynamic", min_e=-6, max_e=12, reps=0)
    assert windowed.pretrend() == cs.pretrend_test(leads=6)
    assert windowed.pretrend(leads=2).event_times == (-2.0, -1.0)
    assert dyn.pretrend(vcov="influence") == cs.pretrend_test(vcov="influence")
    with pytest.raises(DataError, match=r"got 'jackknife' \(the covariance is chosen with vcov="):
        dyn.pretrend("jackknife")


@pytest.mark.parametrize("route", ["aggregate", "staggered"])
def test_pretrend_window_error_names_a_call_that_exists(readme_cs, route):
    """Too many leads for the units: the error suggests the longest window as a call on the same object (first),
    and that call runs."""
    import re

    obj = readme_cs.aggregate("dynamic", reps=0) if route == "aggregate" else readme_cs
    test = obj.pretrend if route == "aggregate" else obj.pretrend_test
    with pytest.raises(DataError, match="needs fewer event times than units") as err:
        test(leads=30)
    m = re.search(r"(\.pretrend|pretrend_test)\(leads=(\d+)\)", str(err.value))
    assert m, str(err.value)
    assert route == "aggregate" or ".pretrend(" not in str(err.value)  # the aggregation's call comes first
    suggested = getattr(obj, m.group(1).lstrip("."))(leads=int(m.group(2)))
    assert suggested.df1 == 19 and np.isfinite(suggested.p_value)


def test_did_plots_say_what_the_effect_is_in(readme_cs):
    """The y axis names the outcome and that the effect is an absolute change of it (not %); titles say what is
    plotted against what."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = readme_cs.aggregate("dynamic", min_e=-6, max_e=12, reps=0).plot()
    assert ax.get_ylabel() == "change in contacts/orders (absolute)"
    assert ax.get_xlabel() == "periods since launch"
    assert ax.get_title(loc="left") == (
        "Effect on contacts/orders by periods since launch (Callaway-Sant'Anna, dynamic aggregation)"
    )
    ax = readme_cs.aggregate("group", reps=0).plot()
    assert ax.get_xlabel() == "launch cohort (first treated period)" and "by launch cohort" in ax.get_title(loc="left")
    p = _log_rate_panel(1)
    es = did.event_study(p, "log_contact_rate", "market", "week", "launch_week", wild=False, band_draws=2000)
    ax = es.plot()
    assert ax.get_ylabel() == "change in log_contact_rate (absolute)"
    assert ax.get_title(loc="left") == "TWFE event study: effect on log_contact_rate by periods since launch"
    plt.close("all")


@pytest.mark.slow
@pytest.mark.parametrize("control_group", ["never_treated", "not_yet_treated"])
def test_pretrend_test_size_under_parallel_trends(control_group):
    """Size at 5% with 20 markets (5 never launched, cohorts of 5 at weeks 20, 30, 40), parallel trends exact
    on the log scale, 5 leads tested. R = 300: MC SE sqrt(.05 x .95 / 300) = 1.26 points, the band is 5% +-
    3 MC SE. Measured: 4.7-5% for both comparison groups (R = 300 and 400). The chi-square reference of the
    same Wald statistic (no small-sample correction) rejects about 16-17% of the time: far outside the band."""
    from scipy import stats

    R = 300
    rej, chi2 = [], []
    for s in range(R):
        p = _panel_with_drift(30_000 + s)
        cs = did.staggered(
            p, "y", "market", "week", "launch_week", control_group=control_group, base_period="universal"
        )
        pt = cs.pretrend_test(leads=6)
        rej.append(pt.p_value < 0.05)
        chi2.append(stats.chi2.sf(pt.wald, pt.df1) < 0.05)
    size = np.mean(rej)
    print(control_group, "size", size, "chi-square reference", np.mean(chi2))
    assert 0.012 <= size <= 0.088, size
    assert np.mean(chi2) > 0.15


@pytest.mark.slow
def test_pretrend_test_rejects_a_planted_pre_trend():
    """Launched markets drift by 3% a week relative to the never-launched ones before launch (never-treated
    controls): the test rejects in at least 70% of R = 100 panels (measured 86%, MC SE 3.5 points); a 5% drift
    is caught on one seeded panel. ``detectable_trend`` is a useful but optimistic guide: at the drift it
    reports for 80% power (about 2.5% a week here) the test rejects about 65% of the time."""
    rej = [
        did.staggered(
            _panel_with_drift(40_000 + s, drift=0.03), "y", "market", "week", "launch_week", base_period="universal"
        )
        .pretrend_test(leads=6)
        .p_value
        < 0.05
        for s in range(100)
    ]
    assert np.mean(rej) >= 0.70, np.mean(rej)
    cs = did.staggered(_panel_with_drift(5, drift=0.05), "y", "market", "week", "launch_week", base_period="universal")
    pt = cs.aggregate("dynamic", min_e=-6, max_e=12).pretrend()
    assert pt.p_value < 0.01
    null = did.staggered(
        _panel_with_drift(5), "y", "market", "week", "launch_week", base_period="universal"
    ).pretrend_test(leads=6)
    assert 0.005 < null.detectable_trend(0.8) < 0.06  # varies with the estimated covariance
    assert null.detectable_trend(0.9) > null.detectable_trend(0.8) > null.detectable_trend(0.5)


@pytest.mark.slow
def test_small_sample_inference_with_20_markets():
    """20 markets, effect -10% from launch on, event times -6..12 (19 rows). t(19) pointwise 95% CIs cover
    93-97% on average (measured 94%; the normal: about 93%), and the multivariate-t(19) sup-t band covers all
    19 rows at least 85% of the time (measured 89% here, 91-93% at R = 300 on other seeds: a little short of
    95%); the Rademacher multiplier bootstrap band of R did, which ``small_sample=False`` keeps, covers less
    (measured 74-85%). R = 200; MC SE of a coverage near 0.9: 2.1 points."""
    truth = np.log1p(-0.10)
    point, band, boot_band = [], [], []
    for s in range(200):
        p = _log_rate_panel(50_000 + s, effects={"contact_rate": -0.10})
        cs = did.staggered(p, "log_contact_rate", "market", "week", "launch_week")
        a = cs.aggregate("dynamic", min_e=-6, max_e=12, reps=0, band_draws=10_000, seed=s)
        t = a.to_frame()
        tr = np.where(t.event_time >= 0, truth, 0.0)
        point.append(((t.ci_lower <= tr) & (tr <= t.ci_upper)).mean())
        band.append(bool(((t.band_lower <= tr) & (tr <= t.band_upper)).all()))
        b = cs.aggregate("dynamic", min_e=-6, max_e=12, reps=499, small_sample=False, seed=s).to_frame()
        boot_band.append(bool(((b.band_lower <= tr) & (tr <= b.band_upper)).all()))
    print("pointwise", np.mean(point), "band", np.mean(band), "bootstrap band", np.mean(boot_band))
    assert 0.93 <= np.mean(point) <= 0.97
    assert np.mean(band) >= 0.85
    assert np.mean(boot_band) < np.mean(band)


def test_window_average_is_the_mean_of_event_time_effects():
    p = _log_rate_panel(6, effects={"contact_rate": [-0.02, -0.04, -0.06, -0.08, -0.10]})
    cs = did.staggered(p, "log_contact_rate", "market", "week", "launch_week", base_period="universal")
    dyn = cs.aggregate("dynamic", min_e=-6, max_e=12)
    t = dyn.to_frame().set_index("event_time")
    w = dyn.average(0, 3)
    assert w.estimate == pytest.approx(t.loc[0:3, "estimate"].mean(), abs=1e-14)
    assert w.labels == (0.0, 1.0, 2.0, 3.0) and w.df == 19
    one = dyn.average(2, 2)
    assert one.se == pytest.approx(t.loc[2, "se"], rel=1e-12) and one.ci_lower == pytest.approx(t.loc[2, "ci_lower"])
    # the average over all post-launch event times is the dynamic overall effect (same influence function)
    allpost = dyn.average(0, 12)
    assert allpost.estimate == pytest.approx(dyn.estimate, abs=1e-14) and allpost.se == pytest.approx(dyn.se, rel=1e-12)
    assert dyn.average(-6, -1).labels == (-6.0, -5.0, -4.0, -3.0, -2.0)  # the reference row is left out
    with pytest.raises(DataError, match="no event_time in 20..30"):
        dyn.average(20, 30)


def test_uniform_band_is_seeded_and_wider_than_pointwise(mpdta):
    res = did.staggered(mpdta, "lemp", "countyreal", "year", "first.treat")
    a = res.aggregate("dynamic", seed=3, reps=2000)
    b = res.aggregate("dynamic", seed=3, reps=2000)
    c = res.aggregate("dynamic", seed=4, reps=2000, weights="webb")
    assert a.critical_value == b.critical_value
    k = len(a.table)
    from scipy import stats

    assert 1.96 < a.critical_value < stats.norm.isf(0.025 / k)  # between pointwise and Bonferroni
    assert abs(c.critical_value - a.critical_value) < 0.25
    assert (a.table.band_lower <= a.table.ci_lower).all()
    assert 0 <= a.boot_p_value <= 1 and a.boot_p_value < 0.01


def test_staggered_recovers_simulated_dynamic_effects():
    tau = [-0.02, -0.04, -0.06, -0.08, -0.10]
    p = _log_rate_panel(11, effects={"contact_rate": tau}, n_markets=40)
    for control in ("never_treated", "not_yet_treated"):
        res = did.staggered(p, "log_contact_rate", "market", "week", "launch_week", control_group=control)
        dyn = res.aggregate("dynamic").to_frame().set_index("event_time")
        truth = np.log1p(np.array(tau + [tau[-1]] * 40))
        for e in range(0, 8):
            assert abs(dyn.loc[e, "estimate"] - truth[e]) < 4 * dyn.loc[e, "se"], (control, e)
        pre = dyn.loc[-10:-2]
        assert (np.abs(pre["estimate"]) < 4 * pre["se"]).all()


# --------------------------------------------------------------------------
# TWFE and 2x2 regressions
# --------------------------------------------------------------------------
def test_twfe_matches_published_fixest(mpdta):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", did.DiDWarning)
        res = did.twfe(mpdta, "lemp", "treated", "countyreal", "year")
    assert round(res.estimate, 6) == -0.036549
    assert round(res.se, 6) == 0.013265
    assert res.n_clusters == 500 and res.df == 499
    assert res.wild is None  # 500 clusters: analytic inference only by default


def _dummy_ols(df, formula, cluster, weights=None):
    model = smf.wls(formula, df, weights=weights) if weights is not None else smf.ols(formula, df)
    return model.fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(df[cluster])[0]})


def test_twfe_unbalanced_weighted_matches_dummy_ols(mpdta):
    rng = np.random.default_rng(5)
    df = mpdta.sample(frac=0.85, random_state=2).reset_index(drop=True)
    df["w"] = rng.uniform(0.3, 3.0, len(df))
    df["x"] = rng.normal(size=len(df)) + 0.2 * df["treated"]
    df["state"] = df["countyreal"] // 1000
    ref = _dummy_ols(df, "lemp ~ treated + x + C(countyreal) + C(year)", "state", df["w"])
    res = did.twfe(df, "lemp", "treated", "countyreal", "year", cluster="state", covariates=["x"], weights="w")
    assert res.estimate == pytest.approx(ref.params["treated"], rel=1e-9)
    # statsmodels counts every dummy in K; fixest (and abkit) drop the FE nested in the clusters
    n, k_sm = len(df), ref.df_model + 1
    fe = FixedEffects([pd.factorize(df.countyreal)[0], pd.factorize(df.year)[0]], n)
    k_abkit = 2 + fe.dof(pd.factorize(df.state)[0])
    assert k_abkit == 2 + 5  # county nested in state: 4 free year FE + 1
    scale = np.sqrt((n - k_sm) / (n - k_abkit))
    assert res.se == pytest.approx(ref.bse["treated"] * scale, rel=1e-8)
    x = res.coefficients.set_index("term").loc["x"]
    assert x.estimate == pytest.approx(ref.params["x"], rel=1e-9)


def test_twfe_matches_pyfixest_when_available(mpdta):
    pf = pytest.importorskip("pyfixest")
    rng = np.random.default_rng(9)
    df = mpdta.sample(frac=0.8, random_state=3).reset_index(drop=True)
    df["w"] = rng.uniform(0.5, 2, len(df))
    df["x"] = rng.normal(size=len(df))
    df["rc"] = rng.integers(0, 40, len(df))
    for cluster in ("countyreal", "rc", "year"):
        ref = pf.feols(
            "lemp ~ treated + x | countyreal + year", data=df, weights="w", vcov={"CRV1": cluster}, fixef_rm="none"
        )
        res = did.twfe(
            df, "lemp", "treated", "countyreal", "year", cluster=cluster, covariates=["x"], weights="w", wild=False
        )
        assert res.estimate == pytest.approx(ref.coef()["treated"], rel=1e-8)
        assert res.se == pytest.approx(ref.se()["treated"], rel=1e-6)  # pyfixest demeans to 1e-8
        assert res.p_value == pytest.approx(ref.pvalue()["treated"], rel=1e-5)


@pytest.fixture(scope="module")
def big_panel():
    """A rollout panel of 500 markets x 60 weeks (30,000 rows), four launch cohorts, effects growing
    with event time; 5% of the market-weeks dropped at random (unbalanced), a time-varying covariate,
    WLS weights (orders) and a coarser cluster (50 regions, markets nested in them)."""
    p = abkit.simulate.rollout_panel(
        n_markets=500,
        n_weeks=60,
        cohorts={15: 100, 25: 100, 40: 100, 50: 100},
        effects={"contact_rate": lambda e: -0.05 - 0.004 * e},
        seed=42,
    )
    rng = np.random.default_rng(1)
    p = p[rng.random(len(p)) > 0.05].reset_index(drop=True)
    p["log_contact_rate"] = np.log(p["contacts"] / p["orders"])
    p["launched"] = (p["week"] >= p["launch_week"].fillna(10**6)).astype(float)
    p["log_orders"] = np.log(p["orders"])
    p["region"] = pd.factorize(p["market"])[0] % 50
    return p


def _within_unit(df, cols, unit, w):
    """Weighted within-unit demeaning (the one-way projection that removes the unit dummies exactly)."""
    ww = df[w]
    means = (
        df[cols].mul(ww, axis=0).groupby(df[unit]).transform("sum").div(ww.groupby(df[unit]).transform("sum"), axis=0)
    )
    return df[cols] - means


def test_twfe_large_panel_matches_statsmodels(big_panel):
    """500 x 60 unbalanced weighted panel: abkit's exact two-way projection vs statsmodels WLS with explicit
    week dummies, the 500 market dummies removed by the within-market transformation (Frisch-Waugh-Lovell:
    same coefficients, residuals and cluster scores as with explicit market dummies; the dense version with
    all 560 dummies is the slow test below)."""
    p = big_panel
    weeks = pd.get_dummies(p["week"], prefix="wk", drop_first=True, dtype=float)
    X = pd.concat([p[["launched", "log_orders"]], weeks], axis=1)
    frame = pd.concat([p[["market", "orders", "log_contact_rate"]], X], axis=1)
    cols = ["log_contact_rate", *X.columns]
    dm = _within_unit(frame, cols, "market", "orders")
    n, T, G = len(p), p["week"].nunique(), p["market"].nunique()
    for cluster in ("market", "region"):
        ref = sm.WLS(dm["log_contact_rate"], dm[X.columns], weights=p["orders"]).fit(
            cov_type="cluster", cov_kwds={"groups": pd.factorize(p[cluster])[0]}
        )
        res = did.twfe(
            p,
            "log_contact_rate",
            "launched",
            "market",
            "week",
            cluster=cluster,
            covariates=["log_orders"],
            weights="orders",
            wild=False,
        )
        assert res.n_obs == n and res.n_units == G and res.n_periods == T
        assert res.estimate == pytest.approx(ref.params["launched"], rel=1e-9)
        # statsmodels counts K = 2 + (T - 1) regressors; fixest (and abkit) K = k + T when the market
        # effects are nested in the clusters (T - 1 week effects + 1 for the intercept)
        k_sm, k_fixest = 2 + (T - 1), 2 + T
        assert res.se == pytest.approx(ref.bse["launched"] * np.sqrt((n - k_sm) / (n - k_fixest)), rel=1e-8)
        cov = res.coefficients.set_index("term").loc["log_orders"]
        assert cov.estimate == pytest.approx(ref.params["log_orders"], rel=1e-9)
        assert res.df == p[cluster].nunique() - 1


@pytest.mark.slow
def test_twfe_large_panel_matches_explicit_dummy_ols(big_panel):
    """The same 500 x 60 panel with all 500 market and 59 week dummies built explicitly (28,500 x 561 dense
    design, statsmodels WLS, cluster-robust by market)."""
    p = big_panel
    markets = pd.get_dummies(p["market"], prefix="m", dtype=float)
    weeks = pd.get_dummies(p["week"], prefix="wk", drop_first=True, dtype=float)
    X = pd.concat([p[["launched", "log_orders"]], markets, weeks], axis=1)
    ref = sm.WLS(p["log_contact_rate"], X, weights=p["orders"]).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(p["market"])[0]}
    )
    res = did.twfe(
        p, "log_contact_rate", "launched", "market", "week", covariates=["log_orders"], weights="orders", wild=False
    )
    n, T = len(p), p["week"].nunique()
    assert ref.df_model + 1 == X.shape[1]  # full rank: 2 + 500 + 59
    assert res.estimate == pytest.approx(ref.params["launched"], rel=1e-8)
    k_sm, k_fixest = X.shape[1], 2 + T
    assert res.se == pytest.approx(ref.bse["launched"] * np.sqrt((n - k_sm) / (n - k_fixest)), rel=1e-7)


def test_twfe_large_panel_matches_pyfixest(big_panel):
    pf = pytest.importorskip("pyfixest")
    p = big_panel
    for cluster in ("market", "region", "week"):
        ref = pf.feols(
            "log_contact_rate ~ launched + log_orders | market + week",
            data=p,
            weights="orders",
            vcov={"CRV1": cluster},
            fixef_rm="none",
        )
        res = did.twfe(
            p,
            "log_contact_rate",
            "launched",
            "market",
            "week",
            cluster=cluster,
            covariates=["log_orders"],
            weights="orders",
            wild=False,
        )
        assert res.estimate == pytest.approx(ref.coef()["launched"], rel=1e-7), cluster
        assert res.se == pytest.approx(ref.se()["launched"], rel=1e-6), cluster
        assert res.p_value == pytest.approx(ref.pvalue()["launched"], rel=1e-5, abs=1e-12), cluster


def test_exact_projection_equals_alternating_projections():
    rng = np.random.default_rng(0)
    n = 3000
    a = rng.integers(0, 150, n)
    b = rng.integers(0, 30, n)
    w = rng.uniform(0.2, 5, n)
    M = rng.normal(size=(n, 3)) + a[:, None] * 0.01 + b[:, None] * 0.1
    exact = FixedEffects([a, b], n, w)
    assert exact.exact
    slow = FixedEffects([a, b], n, w)
    slow.exact = False
    np.testing.assert_allclose(exact.resid(M), slow.resid(M), atol=1e-9)
    # residuals are weighted-orthogonal to every fixed effect
    r = exact.resid(M)
    for codes in (a, b):
        sums = np.array([np.bincount(codes, weights=w * r[:, j]) for j in range(3)])
        assert np.abs(sums).max() < 1e-9


def test_two_by_two_matches_statsmodels_cluster(mpdta):
    df = mpdta[mpdta.year.isin([2005, 2007])].copy()
    df["tr"] = (df["first.treat"] == 2007).astype(int)
    df["post"] = (df.year == 2007).astype(int)
    ref = smf.ols("lemp ~ tr * post + lpop", df).fit(
        cov_type="cluster", cov_kwds={"groups": df["countyreal"]}, use_t=True
    )  # t(G-1) as Stata
    res = did.two_by_two(df, "lemp", "tr", "post", unit="countyreal", covariates=["lpop"])
    assert res.estimate == pytest.approx(ref.params["tr:post"], rel=1e-10)
    # CRV1 with G/(G-1) (N-1)/(N-K), K = 5 including the intercept: statsmodels' default
    assert res.se == pytest.approx(ref.bse["tr:post"], rel=1e-10)
    assert res.p_value == pytest.approx(ref.pvalues["tr:post"], rel=1e-8)  # t(G-1)
    lo, hi = ref.conf_int().loc["tr:post"]
    assert (res.ci_lower, res.ci_upper) == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))
    # no unit / cluster: HC1
    hc1 = smf.ols("lemp ~ tr * post", df).fit(cov_type="HC1")
    with pytest.warns(did.DiDWarning, match="HC1"):
        r2 = did.two_by_two(df, "lemp", "tr", "post")
    assert r2.vcov_type == "HC1" and r2.se == pytest.approx(hc1.bse["tr:post"], rel=1e-10)


def test_weighted_two_by_two_matches_statsmodels_wls():
    p = abkit.simulate.rollout_panel(n_weeks=20, cohorts={11: 10}, effects={"contact_rate": -0.1}, seed=4)
    p["tr"] = p.launch_week.notna().astype(int)
    p["post"] = (p.week >= 11).astype(int)
    p["rate"] = p.contacts / p.orders
    ref = smf.wls("rate ~ tr * post", p, weights=p.orders).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(p.market)[0]}
    )
    res = did.two_by_two(p, ("contacts", "orders"), "tr", "post", unit="market", wild=False)
    assert res.estimate == pytest.approx(ref.params["tr:post"], rel=1e-10)
    assert res.se == pytest.approx(ref.bse["tr:post"], rel=1e-9)
    same = did.two_by_two(p, "rate", "tr", "post", unit="market", weights="orders", wild=False)
    assert same.estimate == res.estimate and same.se == res.se
    # the weighted 2x2 is the DiD of pooled ratios sum(contacts)/sum(orders)
    s = p.groupby(["tr", "post"])[["contacts", "orders"]].sum()
    r = s.contacts / s.orders
    assert res.estimate == pytest.approx((r[1, 1] - r[1, 0]) - (r[0, 1] - r[0, 0]), rel=1e-10)


def test_aggregate_panel_from_order_level_rows(tmp_path):
    p = abkit.simulate.rollout_panel(
        n_markets=12, n_weeks=16, cohorts={6: 3, 10: 3}, effects={"contact_rate": -0.1}, seed=8
    )
    rng = np.random.default_rng(1)
    # explode each market-week into 1..5 "order batches", splitting the counts at random
    k = rng.integers(1, 6, len(p))
    rows = p.loc[p.index.repeat(k)].reset_index(drop=True)
    share = rng.dirichlet(np.ones(5), len(p))
    parts_o, parts_c = [], []
    for i, (o, c, m) in enumerate(zip(p.orders, p.contacts, k)):  # test-data construction only
        sh = share[i, :m] / share[i, :m].sum()
        parts_o.append(rng.multinomial(o, sh)), parts_c.append(rng.multinomial(c, sh))
    rows["orders"] = np.concatenate(parts_o)
    rows["contacts"] = np.concatenate(parts_c)
    path = tmp_path / "orders.parquet"
    rows.to_parquet(path)
    panel = did.aggregate_panel(path, "market", "week", sums=["contacts", "orders"], first=["launch_week"])
    back = panel.merge(p, on=["market", "week"], suffixes=("", "_orig"))
    assert len(back) == len(p)
    assert (back.contacts == back.contacts_orig).all() and (back.orders == back.orders_orig).all()
    assert panel.n_rows.sum() == len(rows)
    a = did.event_study(
        panel, ("contacts", "orders"), "market", "week", "launch_week", leads=3, lags=4, wild=False, band_draws=1000
    )
    b = did.event_study(
        p, ("contacts", "orders"), "market", "week", "launch_week", leads=3, lags=4, wild=False, band_draws=1000
    )
    np.testing.assert_allclose(a.table.estimate, b.table.estimate, atol=1e-13)


def _order_rows(p: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    """Fake order-level rows: each market-week split into 1..8 batches of its orders, contacts and refunds."""
    rng = np.random.default_rng(seed)
    k = rng.integers(1, 9, len(p))
    rows = p.loc[p.index.repeat(k), ["market", "week", "launch_week"]].reset_index(drop=True)
    for col in ("orders", "contacts", "refunds"):
        parts = [rng.multinomial(n, rng.dirichlet(np.ones(m))) for n, m in zip(p[col], k)]  # test data only
        rows[col] = np.concatenate(parts)
    return rows


@pytest.mark.parametrize("source", ["parquet path", "duckdb relation", "pandas", "arrow"])
def test_aggregate_panel_from_order_rows_in_every_engine(tmp_path, monkeypatch, source):
    """Order-level rows -> market x week sums through the same sources path as analyze: lazy sources are
    aggregated by DuckDB (one group_by query; only one row per market-week comes back, nothing is read
    into pandas), in-memory ones by narwhals on the frame; the panel equals the one the rows came from,
    and the estimators give the same answer on it."""
    import duckdb
    import pyarrow as pa

    import abkit.engines

    p = abkit.simulate.rollout_panel(
        n_markets=12, n_weeks=30, cohorts={10: 4, 20: 4}, effects={"contact_rate": -0.1}, seed=8
    )
    rows = _order_rows(p)
    lost = pd.DataFrame(
        {
            "market": [None] * 3,
            "week": [3, 4, 5],
            "launch_week": [pd.NA] * 3,
            "orders": [5, 6, 7],
            "contacts": [1, 1, 1],
            "refunds": [0, 0, 0],
        }
    )
    rows = pd.concat([rows, lost.astype(rows.dtypes.to_dict())], ignore_index=True)  # no market: dropped
    path = tmp_path / "orders.parquet"
    rows.to_parquet(path)
    data = {
        "parquet path": str(path),
        "duckdb relation": duckdb.connect().read_parquet(str(path)),
        "pandas": rows,
        "arrow": pa.Table.from_pandas(rows),
    }[source]

    def no_rows(*a, **k):
        raise AssertionError("aggregate_panel must not read the rows into pandas")

    collected = []
    real_collect = abkit.engines._collect

    def counting_collect(frame, src):
        out = real_collect(frame, src)
        collected.append(len(out))
        return out

    import abkit.did.panel
    import abkit.sources

    monkeypatch.setattr(abkit.did.panel, "read_columns", no_rows)  # where the DiD estimators read rows
    monkeypatch.setattr(abkit.sources, "read_columns", no_rows)
    monkeypatch.setattr(abkit.engines, "_collect", counting_collect)
    panel = did.aggregate_panel(data, "market", "week", sums=["contacts", "orders", "refunds"], first=["launch_week"])
    monkeypatch.undo()
    if source in ("parquet path", "duckdb relation"):
        assert collected == [len(p) + 3]  # the market-weeks, and the 3 weeks of the rows without a market
    else:
        assert collected == []
    assert list(panel.columns) == ["market", "week", "contacts", "orders", "refunds", "n_rows", "launch_week"]
    assert panel.attrs["dropped_rows"] == 3 and int(panel.n_rows.sum()) == len(rows) - 3
    assert panel[["market", "week"]].equals(p[["market", "week"]].sort_values(["market", "week"], ignore_index=True))
    back = panel.merge(p, on=["market", "week"], suffixes=("", "_orig"))
    assert len(back) == len(p)
    for col in ("contacts", "orders", "refunds"):
        np.testing.assert_array_equal(back[col].to_numpy(), back[f"{col}_orig"].to_numpy(dtype=float))
    np.testing.assert_array_equal(back.launch_week.fillna(0).to_numpy(), back.launch_week_orig.fillna(0).to_numpy())
    a = did.staggered(panel, ("contacts", "orders"), "market", "week", "launch_week").aggregate("simple", reps=0)
    b = did.staggered(p, ("contacts", "orders"), "market", "week", "launch_week").aggregate("simple", reps=0)
    assert a.estimate == pytest.approx(b.estimate, abs=1e-13) and a.se == pytest.approx(b.se, rel=1e-10)


def test_aggregate_panel_errors(tmp_path):
    import duckdb

    rows = _order_rows(abkit.simulate.rollout_panel(n_markets=6, n_weeks=12, cohorts={6: 3}, seed=2))
    path = tmp_path / "rows.parquet"
    for data in (rows, path):
        bad = rows.copy()
        bad.loc[5, "contacts"] = np.nan
        bad.to_parquet(path)
        with pytest.raises(DataError, match=r"column 'contacts' has 1 missing"):
            did.aggregate_panel(bad if data is rows else path, "market", "week", ["contacts", "orders"])
        bad = rows.copy()
        split = bad.duplicated(["market", "week"], keep=False)  # market-weeks with several rows
        i, j = np.nonzero(split.to_numpy())[0][[0, -1]]
        bad.loc[i, "launch_week"] = 99 if pd.isna(bad.loc[i, "launch_week"]) else pd.NA  # varies in one
        bad.loc[j, "launch_week"] = 99 if pd.isna(bad.loc[j, "launch_week"]) else pd.NA  # and another
        bad.to_parquet(path)
        with pytest.raises(DataError, match=r"'launch_week' varies within 2 unit-period"):
            did.aggregate_panel(bad if data is rows else path, "market", "week", ["orders"], first=["launch_week"])
    with pytest.raises(ColumnNotFoundError, match="'order'.*Did you mean 'orders'"):
        did.aggregate_panel(rows, "market", "week", ["order"])
    rel = duckdb.connect().from_df(rows.assign(orders=rows.orders.astype(str)))
    with pytest.raises(DataError, match="'orders' is not numeric"):
        did.aggregate_panel(rel, "market", "week", ["orders"])
    with pytest.raises(DataError, match="at least one column"):
        did.aggregate_panel(rows, "market", "week", [])


# --------------------------------------------------------------------------
# Wild cluster bootstrap
# --------------------------------------------------------------------------
def _small_panel(G=8, T=6, seed=0):
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(G), T)
    t = np.tile(np.arange(T), G)
    treated_units = rng.permutation(G)[: G // 2]
    D = (np.isin(u, treated_units) & (t >= T // 2)).astype(float)
    x = rng.normal(size=G * T)
    y = 0.3 * x + rng.normal(size=G)[u] + 0.2 * t + rng.standard_t(4, G * T) * (1 + u % 3)
    return y, np.column_stack([D, x]), u, t


@pytest.mark.parametrize(
    "design", ["balanced, cluster=unit", "unbalanced weighted, cluster=unit", "unbalanced weighted, cluster=period"]
)
def test_wild_bootstrap_equals_brute_force_refits(design):
    """Enumerated Rademacher WCR vs refitting the full TWFE model for each of the 2^G draws
    (also with WLS weights, an unbalanced panel and clusters in which the unit FE are not nested)."""
    y, X, u, t = _small_panel()
    w = None
    if design != "balanced, cluster=unit":
        rng = np.random.default_rng(4)
        keep = rng.random(y.size) < 0.85
        y, X, u, t = y[keep], X[keep], u[keep], t[keep]
        w = rng.uniform(0.3, 3.0, y.size)
    cl = t if design.endswith("period") else u
    G = int(cl.max()) + 1
    fe = FixedEffects([u, t], y.size, w)
    fit = fit_linear(y, X, fe, cl)
    wt = wild_cluster_test(fit, fe, 0, reps=9999, ci=False)
    assert wt.enumerated and wt.reps == 2**G
    # brute force: restricted fit (beta_D = 0) with FE, then y* = fitted_r + v_g u_r, full refit each time
    fit_r = fit_linear(y, X[:, 1:], fe, cl)
    ur = fit_r.resid / np.sqrt(fe.w)  # back from the sqrt(w)-scaled space
    fitted_r = y - ur
    t_obs = abs(fit.coef[0] / fit.se[0])
    stats_ = []
    for s in range(2**G):  # 2^G refits: the brute-force reference
        v = np.where((s >> np.arange(G)) & 1, 1.0, -1.0)
        f = fit_linear(fitted_r + v[cl] * ur, X, fe, cl)
        stats_.append(abs(f.coef[0] / f.se[0]))
    p_brute = np.mean(np.array(stats_) >= t_obs - 1e-12)
    assert wt.p_value == pytest.approx(p_brute, abs=1e-12)


def test_wild_ci_inverts_the_test_and_joint_test_runs():
    y, X, u, t = _small_panel(G=20, T=8, seed=3)
    fe = FixedEffects([u, t], y.size)
    fit = fit_linear(y, X, fe, u)
    wt = wild_cluster_test(fit, fe, 0, reps=1999, seed=2)
    assert wt.ci_lower < fit.coef[0] < wt.ci_upper
    for b0 in (wt.ci_lower, wt.ci_upper):
        inside = wild_cluster_test(
            fit, fe, 0, beta0=b0 + (1e-4 if b0 == wt.ci_lower else -1e-4), reps=1999, seed=2, ci=False
        )
        outside = wild_cluster_test(
            fit, fe, 0, beta0=b0 + (-1e-4 if b0 == wt.ci_lower else 1e-4), reps=1999, seed=2, ci=False
        )
        assert inside.p_value > 0.05 >= outside.p_value
    joint = wild_cluster_test(fit, fe, [0, 1], reps=999, seed=1, ci=False)
    assert 0 <= joint.p_value <= 1 and joint.statistic > 0
    webb = wild_cluster_test(fit, fe, 0, reps=1999, weights="webb", seed=2)
    assert abs(webb.p_value - wt.p_value) < 0.05


def test_wild_agrees_with_crv1_with_many_clusters():
    rng = np.random.default_rng(12)
    G, T = 200, 6
    u = np.repeat(np.arange(G), T)
    t = np.tile(np.arange(T), G)
    D = ((u < 90) & (t >= 3)).astype(float)
    y = 0.08 * D + rng.normal(size=G)[u] + rng.normal(size=G * T)
    df = pd.DataFrame({"y": y, "D": D, "u": u, "t": t})
    res = did.twfe(df, "y", "D", "u", "t", wild=True, wild_reps=4999, seed=1)
    assert abs(res.wild_p_value - res.p_value) < 0.02
    assert res.wild_ci_lower == pytest.approx(res.ci_lower, abs=0.1 * res.se)
    assert res.wild_ci_upper == pytest.approx(res.ci_upper, abs=0.1 * res.se)


@pytest.mark.slow
def test_wild_bootstrap_size_with_20_clusters():
    """Null true, 20 markets, AR(1) market noise: the WCR rejects ~5%; with only 3 treated markets CRV1
    over-rejects while the WCR does not (MacKinnon & Webb 2017)."""

    def rates(n_treated, reps, seed0):
        crv, wild = [], []
        for s in range(reps):
            p = _log_rate_panel(seed0 + s, n_weeks=30, cohorts={15: n_treated})
            p["D"] = (p.week >= p.launch_week.fillna(999)).astype(float)
            r = did.twfe(p, "log_contact_rate", "D", "market", "week", wild=True, wild_reps=399, seed=s)
            crv.append(r.p_value < 0.05), wild.append(r.wild_p_value < 0.05)
        return np.mean(crv), np.mean(wild)

    crv, wild = rates(10, 500, 9000)
    assert 0.03 <= wild <= 0.075 and 0.03 <= crv <= 0.075
    crv3, wild3 = rates(3, 200, 20000)
    assert crv3 > 0.08 and wild3 < 0.07


# --------------------------------------------------------------------------
# Event study
# --------------------------------------------------------------------------
def test_event_study_matches_dummy_regression():
    p = _log_rate_panel(2, n_weeks=24, cohorts={10: 5, 15: 5}, effects={"contact_rate": -0.1})
    res = did.event_study(
        p, "log_contact_rate", "market", "week", "launch_week", leads=3, lags=4, wild=False, band_draws=1000
    )
    # independent construction of the binned event dummies and a dummy-variable OLS
    e = (p.week - p.launch_week).astype("float").clip(-3, 4)
    names = []
    for k in (-3, -2, 0, 1, 2, 3, 4):
        nm = f"e_{k + 10}"
        p[nm] = (e == k).fillna(False).astype(float)
        names.append(nm)
    ref = _dummy_ols(p, "log_contact_rate ~ " + " + ".join(names) + " + C(market) + C(week)", "market")
    tab = res.table.set_index("event_time")
    for k, nm in zip((-3, -2, 0, 1, 2, 3, 4), names):
        assert tab.loc[k, "estimate"] == pytest.approx(ref.params[nm], abs=1e-10)
    n = len(p)
    k_sm, k_abkit = ref.df_model + 1, 7 + (24 - 1) + 1
    np.testing.assert_allclose(
        tab.loc[[-3, -2, 0, 1, 2, 3, 4], "se"].to_numpy(),
        ref.bse[names].to_numpy() * np.sqrt((n - k_sm) / (n - k_abkit)),
        rtol=1e-8,
    )
    assert tab.loc[-1, "estimate"] == 0 and np.isnan(tab.loc[-1, "se"])


def test_event_study_coverage_and_pretrend_size():
    """Known truth: log contact rate shifts by log(1 + tau) from launch on; parallel trends hold."""
    tau = -0.10
    truth = np.log1p(tau)
    cover, uniform, pre_rej = [], [], []
    for s in range(150):
        p = _log_rate_panel(100 + s, effects={"contact_rate": tau})
        res = did.event_study(
            p, "log_contact_rate", "market", "week", "launch_week", wild=False, band_draws=4000, seed=s
        )
        post = res.table[res.table.event_time >= 0]
        cover.extend(((post.ci_lower <= truth) & (truth <= post.ci_upper)).tolist())
        uniform.append(bool(((post.band_lower <= truth) & (truth <= post.band_upper)).all()))
        pre_rej.append(res.pretrend.p_value < 0.05)
        if s == 0:
            assert res.estimate == pytest.approx(truth, abs=4 * res.se)
    assert 0.92 <= np.mean(cover) <= 0.98  # pointwise 95% CIs (t(19), CRV1)
    assert np.mean(uniform) >= 0.92  # sup-t band covers all post coefficients at once
    assert 0.01 <= np.mean(pre_rej) <= 0.10  # pre-trend Wald test size at 5%


def test_event_study_wild_and_pretrend_detects_violation():
    p = _log_rate_panel(7)
    # a diverging pre-trend in the launched markets: +1% per week before launch
    e = (p.week - p.launch_week).astype("float")
    drift = np.where(e.notna() & (e < 0), 0.01 * np.maximum(e.fillna(0), -12), 0.0)
    p["bad"] = p["log_contact_rate"] + drift
    res = did.event_study(p, "bad", "market", "week", "launch_week", wild_reps=999)
    assert res.n_clusters == 20
    assert res.pretrend.p_value < 0.01 and res.pretrend.wild_p_value < 0.05
    assert res.table.wild_p_value.notna().sum() == len(res.table) - 1
    with pytest.raises(DataError, match="absorbing"):
        q = p.copy()
        q["D"] = ((q.week % 2) == 0).astype(float)
        did.event_study(q, "bad", "market", "week", treatment="D")


# --------------------------------------------------------------------------
# Goodman-Bacon and the TWFE warning
# --------------------------------------------------------------------------
@pytest.mark.parametrize("setup", ["with_never_treated", "with_always_treated"])
def test_bacon_decomposition_identity(setup):
    p = _log_rate_panel(
        3, n_weeks=30, cohorts={8: 5, 15: 5, 22: 5}, effects={"contact_rate": lambda e: -0.05 - 0.01 * e}
    )
    if setup == "with_always_treated":
        p["launch_week"] = p["launch_week"].fillna(1)  # the never treated become always treated
    p["D"] = (p.week >= p.launch_week.fillna(999)).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", did.DiDWarning)
        tw = did.twfe(p, "log_contact_rate", "D", "market", "week", wild=False)
    b = did.bacon(p, "log_contact_rate", "market", "week", treatment="D")
    comp = b.to_frame()
    assert comp.weight.sum() == pytest.approx(1.0, abs=1e-12)
    assert (comp.weight >= 0).all()
    assert (comp.weight * comp.estimate).sum() == pytest.approx(tw.estimate, abs=1e-12)
    assert b.twfe == pytest.approx(tw.estimate, abs=1e-12)
    b2 = did.bacon(p, "log_contact_rate", "market", "week", first_treated="launch_week")
    np.testing.assert_allclose(b2.to_frame().weight, comp.weight)


def test_twfe_warns_on_staggered_heterogeneous_effects():
    ramp = {"contact_rate": lambda e: -0.30 * np.minimum(1, (e + 1) / 10)}
    p = _log_rate_panel(5, cohorts={10: 5, 25: 5, 40: 5}, effects=ramp)
    p["D"] = (p.week >= p.launch_week.fillna(999)).astype(float)
    with pytest.warns(did.DiDWarning, match="staggered"):
        res = did.twfe(p, "log_contact_rate", "D", "market", "week", wild=False)
    assert res.bacon is not None and res.bacon.forbidden_weight > 0.05
    # one launch cohort: no warning
    q = _log_rate_panel(5, cohorts={26: 10}, effects=ramp)
    q["D"] = (q.week >= q.launch_week.fillna(999)).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("error", did.DiDWarning)
        single = did.twfe(q, "log_contact_rate", "D", "market", "week", wild=False)
    assert single.bacon is None


def test_placebo():
    p = _log_rate_panel(21, effects={"contact_rate": -0.10})
    res = did.placebo(p, "log_contact_rate", "market", "week", "launch_week", shift=4, wild_reps=999)
    assert res.p_value > 0.01 and res.wild_p_value > 0.01  # no pre-trend: fake launch has no effect
    launched = p.launch_week.notna()
    assert sum(res.dropped.values()) == int((launched & (p.week >= p.launch_week)).sum())
    e = (p.week - p.launch_week).astype("float")
    p["bad"] = p["log_contact_rate"] + np.where(e.notna() & (e >= -4) & (e < 0), -0.05, 0.0)  # anticipation
    bad = did.placebo(p, "bad", "market", "week", "launch_week", shift=4, wild_reps=999)
    assert bad.p_value < 0.01 and bad.estimate < 0


# --------------------------------------------------------------------------
# Results, plots, errors
# --------------------------------------------------------------------------
def test_result_objects_and_plots(mpdta):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = _log_rate_panel(1, effects={"contact_rate": -0.1})
    p["D"] = (p.week >= p.launch_week.fillna(999)).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", did.DiDWarning)
        tw = did.twfe(p, ("contacts", "orders"), "D", "market", "week", wild_reps=499)
    f = tw.to_frame()
    assert {"effect", "se", "ci_lower", "ci_upper", "p_value", "wild_p_value", "n_clusters"} <= set(f.columns)
    assert "<table" in tw._repr_html_() and "contacts/orders" in tw._repr_html_()
    assert tw.plot_trends() is not None
    es = did.event_study(p, ("contacts", "orders"), "market", "week", "launch_week", wild=False, band_draws=2000)
    assert list(es.to_frame().columns[:8]) == [
        "event_time",
        "estimate",
        "se",
        "ci_lower",
        "ci_upper",
        "band_lower",
        "band_upper",
        "p_value",
    ]
    assert es.plot() is not None and es.plot_trends() is not None and "<table" in es._repr_html_()
    cs = did.staggered(mpdta, "lemp", "countyreal", "year", "first.treat")
    assert list(cs.att_gt.columns[:4]) == ["group", "time", "att", "se"]
    for kind in ("dynamic", "group", "calendar"):
        assert cs.aggregate(kind).plot() is not None
    assert cs.plot_trends() is not None and "<table" in cs._repr_html_()
    assert cs.aggregate("simple").to_frame().empty and "simple" in repr(cs.aggregate("simple"))
    assert "Goodman-Bacon" in tw.bacon._repr_html_() if tw.bacon else True
    plt.close("all")


def test_errors_name_the_problem(mpdta):
    with pytest.raises(ColumnNotFoundError, match="first_treat"):
        did.staggered(mpdta, "lemp", "countyreal", "year", "first_treat")
    with pytest.raises(DataError, match="0 and 1"):
        did.two_by_two(mpdta, "lemp", "first.treat", "treated")
    nevless = mpdta[mpdta["first.treat"] > 0]
    with pytest.raises(DataError, match="not_yet_treated"):
        did.staggered(nevless, "lemp", "countyreal", "year", "first.treat")
    with pytest.raises(AbkitError, match="control_group"):
        did.staggered(mpdta, "lemp", "countyreal", "year", "first.treat", control_group="never")
    bad = mpdta.copy()
    bad.loc[bad.index[:3], "lemp"] = np.nan
    res = did.staggered(bad, "lemp", "countyreal", "year", "first.treat")
    # the first three rows are county 8001 in 2003-2005: 3 rows and 1 (now incomplete) unit dropped
    assert res.dropped == {"missing lemp": 3, "units not observed in every period": 1}
    assert res.n_units == 499
    with pytest.raises(DataError, match="constant within each unit"):
        b2 = mpdta.copy()
        b2.loc[b2.index[0], "first.treat"] = 2006
        did.staggered(b2, "lemp", "countyreal", "year", "first.treat")


def test_errors_name_columns_and_values(mpdta):
    """Data problems raise an AbkitError that names the column(s), shows an offending value and says what
    to do; never a pandas KeyError or a silent NaN."""
    dup = pd.concat([mpdta, mpdta.iloc[[7]]], ignore_index=True)  # county 8019 twice in 2005
    for fn in (
        lambda d: did.staggered(d, "lemp", "countyreal", "year", "first.treat"),
        lambda d: did.bacon(d, "lemp", "countyreal", "year", first_treated="first.treat"),
    ):
        with pytest.raises(
            DataError,
            match=r"\('countyreal', 'year'\) pair\(s\) appear more than once, e\.g\. "
            r"countyreal=8019 in year=2005 \(2 rows\).*aggregate_panel",
        ):
            fn(dup)
    # TWFE accepts several rows per unit-period (e.g. orders within a market-week) and says so
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", did.DiDWarning)
        tw = did.twfe(dup, "lemp", "treated", "countyreal", "year")
    assert any("several rows" in n for n in tw.notes) and tw.bacon is None and tw.n_obs == 2501
    # a swapped-in duplicate that keeps the row count (one unit-period twice, another missing) is no panel
    swap = mpdta.copy()
    swap.loc[swap.index[1], "year"] = 2003
    with pytest.raises(DataError, match="more than once"):
        did.bacon(swap, "lemp", "countyreal", "year", first_treated="first.treat")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", did.DiDWarning)
        assert did.twfe(swap, "lemp", "treated", "countyreal", "year").bacon is None
    vary = mpdta.copy()
    vary.loc[vary.index[1], "first.treat"] = 2004
    with pytest.raises(
        DataError,
        match=r"'first.treat' must be constant within each unit.*countyreal=8001 has "
        r"2004 and 2007",
    ):
        did.staggered(vary, "lemp", "countyreal", "year", "first.treat")
    with pytest.raises(DataError, match="constant within each unit"):
        did.event_study(vary, "lemp", "countyreal", "year", "first.treat", wild=False)
    text = mpdta.astype({"lemp": str})
    text.loc[text.index[4], "lemp"] = "n/a"
    with pytest.raises(DataError, match=r"column 'lemp' is not numeric .*'n/a'"):
        did.staggered(text, "lemp", "countyreal", "year", "first.treat")
    with pytest.raises(DataError, match=r"column 'lemp' is not numeric"):
        did.twfe(text, "lemp", "treated", "countyreal", "year")
    dates = mpdta.assign(year=pd.to_datetime(mpdta["year"].astype(str) + "-01-01"))
    with pytest.raises(DataError, match=r"column 'year' holds dates"):
        did.staggered(dates, "lemp", "countyreal", "year", "first.treat")
    with pytest.raises(DataError, match=r"column 'first.treat' holds dates"):
        did.staggered(
            mpdta.assign(**{"first.treat": pd.to_datetime("2006-01-01")}), "lemp", "countyreal", "year", "first.treat"
        )
    off = mpdta.copy()
    off.loc[(off.countyreal == 8001) & (off.year == 2007), "treated"] = 1.0
    off.loc[(off.countyreal == 8001) & (off.year == 2006), "treated"] = 1.0
    off.loc[(off.countyreal == 8001) & (off.year == 2007), "treated"] = 0.0
    with pytest.raises(DataError, match=r"switches off again .*countyreal=8001 is on from 2006 but off in 2007"):
        did.event_study(off, "lemp", "countyreal", "year", treatment="treated", wild=False)
    with pytest.raises(DataError, match="anticipation"):
        did.staggered(mpdta, "lemp", "countyreal", "year", "first.treat", anticipation=-1)
    with pytest.raises(DataError, match="shift"):
        did.placebo(mpdta, "lemp", "countyreal", "year", "first.treat", shift=1.5)
    cs = did.staggered(mpdta, "lemp", "countyreal", "year", "first.treat")
    with pytest.raises(DataError, match="reps"):
        cs.aggregate("simple", reps=-1)
    with pytest.raises(DataError, match="unknown aggregation 'event'"):
        cs.aggregate("event")
    nb = cs.aggregate("dynamic", reps=0)
    assert np.isnan(nb.boot_p_value) and np.isnan(nb.critical_value) and nb.table["band_lower"].isna().all()
    assert (nb.table["estimate"] == cs.aggregate("dynamic").table["estimate"]).all()


def test_module_basenames_are_unique_and_stats_never_imports_upwards():
    """Issue 15: a facade and its math do not share a file name (the old did.py / stats/did.py), and the DiD
    math in abkit/stats imports nothing above it (no facade, no pandas, no plotting)."""
    import ast

    pkg = Path(abkit.__file__).parent
    names = [p.stem for p in pkg.rglob("*.py") if p.name != "__init__.py"]
    did_stats = [
        "fixed_effects",
        "cluster_robust",
        "wild_bootstrap",
        "uniform_bands",
        "drdid",
        "callaway_santanna",
        "goodman_bacon",
        "randomization_inference",
    ]
    ours = [p.stem for p in (pkg / "did").glob("*.py") if p.name != "__init__.py"] + did_stats
    dupes = sorted({n for n in ours if names.count(n) != 1})
    assert not dupes, f"DiD module basenames used twice (or missing) in abkit/: {dupes}"
    assert "did" not in names  # abkit/did/ is the package; no did.py anywhere
    allowed_above = {"errors"}  # the one module above stats/ that stats may use
    for mod in did_stats:
        bad = []
        for node in ast.walk(ast.parse((pkg / "stats" / f"{mod}.py").read_text())):
            if isinstance(node, ast.Import):
                bad += [a.name for a in node.names if a.name.split(".")[0] in ("pandas", "matplotlib", "abkit")]
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0 and (node.module or "").split(".")[0] in ("pandas", "matplotlib", "abkit"):
                    bad.append(node.module)
                elif node.level >= 2:
                    targets = [node.module] if node.module else [a.name for a in node.names]
                    bad += [t for t in targets if t.split(".")[0] not in allowed_above]
        assert not bad, f"abkit/stats/{mod}.py imports {bad}"
