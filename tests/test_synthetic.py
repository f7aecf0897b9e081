"""Synthetic control, synthetic DiD and DiD on one-market launches (abkit.did.synthetic, abkit.stats.synthdid).

Proof against independent references:

* the published California Proposition 99 results (Arkhangelsky et al. 2021,
  Table 1 and Appendix; R synthdid): estimates and unit/time weights;
* azcausal (a Python port of R synthdid) on Proposition 99 and on simulated
  panels: estimates and weights to 1e-9;
* a plain, unbatched transcription of R's ``fw.step`` / ``sc.weight.fw`` /
  ``sc.weight.fw.covariates`` written here (direct matrix products, no Gram
  matrices, one problem at a time);
* closed forms (jackknife with fixed weights, DiD conformal residuals,
  cohort-weighted staggered averages).

Calibration on simulated factor-model panels (coverage, bias) is in
``tests/test_synthetic_calibration.py`` (slow).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import abkit
from abkit.did import detectable_effect, synthetic
from abkit.errors import AbkitError, DataError
from abkit.stats import synthdid as core

REF = Path(__file__).resolve().parents[1] / "data" / "reference"


@pytest.fixture(scope="module")
def prop99() -> pd.DataFrame:
    return pd.read_csv(REF / "california_prop99.csv")


@pytest.fixture(scope="module")
def prop99_fits(prop99):
    return {
        m: synthetic(prop99, "packs_per_capita", "state", "year", "treated", method=m, reps=50, seed=1)
        for m in ("sdid", "sc", "did")
    }


@pytest.fixture(scope="module")
def market_panel() -> pd.DataFrame:
    p = abkit.simulate.one_market_panel(n_markets=20, n_weeks=60, launch_week=45, seed=11)
    p["contact_rate"] = p["contacts"] / p["orders"]
    return p


@pytest.fixture(scope="module")
def three_launched() -> pd.DataFrame:
    q = abkit.simulate.rollout_panel(n_markets=16, n_weeks=36, cohorts={26: 3}, effects={"contact_rate": -0.1}, seed=3)
    q["launched"] = (q["week"] >= q["launch_week"].fillna(10**6).astype(float)).astype(int)
    q["contact_rate"] = q["contacts"] / q["orders"]
    return q


def _matrix(df, y, unit="state", time="year", treat="treated"):
    """Controls first, the block design's Y, N0, T0 (independent of abkit's preparation)."""
    wide = df.pivot(index=unit, columns=time, values=y)
    d = df.pivot(index=unit, columns=time, values=treat)
    treated = d.max(axis=1) > 0
    Y = np.vstack([wide[~treated].to_numpy(), wide[treated].to_numpy()])
    T0 = int((d[treated].max(axis=0) == 0).sum())
    return Y, int((~treated).sum()), T0, list(wide.index[~treated])


# --------------------------------------------------------------------------
# A plain transcription of R synthdid's solver (one problem, direct products)
# --------------------------------------------------------------------------
def r_fw_step(A, x, b, eta):
    Ax = A @ x
    half_grad = (Ax - b) @ A + eta * x
    i = int(np.argmin(half_grad))
    d = -x.copy()
    d[i] = 1 - x[i]
    if np.all(d == 0):
        return x
    d_err = A[:, i] - Ax
    step = -(half_grad @ d) / (d_err @ d_err + eta * (d @ d))
    return x + min(1.0, max(0.0, step)) * d


def r_sc_weight_fw(Y, zeta, intercept, x, min_decrease, max_iter):
    if intercept:
        Y = Y - Y.mean(axis=0)
    A, b = Y[:, :-1], Y[:, -1]
    n = Y.shape[0]
    eta = n * zeta**2
    vals = []
    t = 0
    while t < max_iter and (t < 2 or vals[-2] - vals[-1] > min_decrease**2):
        t += 1
        x = r_fw_step(A, x, b, eta)
        err = Y @ np.r_[x, -1.0]
        vals.append(zeta**2 * (x @ x) + err @ err / n)
    return x


def r_sparsify(v):
    v = v.copy()
    v[v <= v.max() / 4] = 0
    return v / v.sum()


def r_collapsed(Y, N0, T0):
    top = np.c_[Y[:N0, :T0], Y[:N0, T0:].mean(axis=1)]
    bottom = np.r_[Y[N0:, :T0].mean(axis=0), Y[N0:, T0:].mean()]
    return np.vstack([top, bottom])


def r_estimate(Y, N0, T0, method):
    """R's synthdid_estimate / sc_estimate / did_estimate without covariates, transcribed directly."""
    N, T = Y.shape
    noise = np.std(np.diff(Y[:N0, :T0], axis=1), ddof=1)
    eta_omega = 1e-6 if method == "sc" else ((N - N0) * (T - T0)) ** 0.25
    zo, zl, md = eta_omega * noise, 1e-6 * noise, 1e-5 * noise
    Yc = r_collapsed(Y, N0, T0)
    if method == "did":
        lam, om = np.full(T0, 1 / T0), np.full(N0, 1 / N0)
    else:
        if method == "sc":
            lam = np.zeros(T0)
        else:
            lam = r_sc_weight_fw(Yc[:N0], zl, True, np.full(T0, 1 / T0), md, 100)
            lam = r_sc_weight_fw(Yc[:N0], zl, True, r_sparsify(lam), md, 10_000)
        om = r_sc_weight_fw(Yc[:, :T0].T, zo, method == "sdid", np.full(N0, 1 / N0), md, 100)
        om = r_sc_weight_fw(Yc[:, :T0].T, zo, method == "sdid", r_sparsify(om), md, 10_000)
    N1, T1 = N - N0, T - T0
    tau = np.r_[-om, np.full(N1, 1 / N1)] @ Y @ np.r_[-lam, np.full(T1, 1 / T1)]
    return tau, om, lam


def r_covariate_weights(Yc, Xc, zl, zo, md, lam_int, om_int, upd_l, upd_o, lam, om, max_iter):
    """R's sc.weight.fw.covariates, transcribed (Xc: (C, N0+1, T0+1))."""
    N0, T0 = Yc.shape[0] - 1, Yc.shape[1] - 1
    beta = np.zeros(Xc.shape[0])

    def update(Yb, lam, om):
        Yl = Yb[:N0] - Yb[:N0].mean(axis=0) if lam_int else Yb[:N0]
        if upd_l:
            lam = r_fw_step(Yl[:, :T0], lam, Yl[:, T0], N0 * zl**2)
        err_l = Yl @ np.r_[lam, -1]
        Yo = Yb[:, :T0].T
        Yo = Yo - Yo.mean(axis=0) if om_int else Yo
        if upd_o:
            om = r_fw_step(Yo[:, :N0], om, Yo[:, N0], T0 * zo**2)
        err_o = Yo @ np.r_[om, -1]
        val = zo**2 * om @ om + zl**2 * lam @ lam + err_o @ err_o / T0 + err_l @ err_l / N0
        return lam, om, err_l, err_o, val

    lam, om, el, eo, _ = update(Yc - np.tensordot(beta, Xc, 1), lam, om)
    vals = []
    t = 0
    while t < max_iter and (t < 2 or vals[-2] - vals[-1] > md**2):
        t += 1
        grad = -np.array([el @ Xi[:N0] @ np.r_[lam, -1] / N0 + eo @ Xi[:, :T0].T @ np.r_[om, -1] / T0 for Xi in Xc])
        beta = beta - grad / t
        lam, om, el, eo, val = update(Yc - np.tensordot(beta, Xc, 1), lam, om)
        vals.append(val)
    return lam, om, beta


# --------------------------------------------------------------------------
# Published California Proposition 99 results
# --------------------------------------------------------------------------
def test_prop99_reproduces_the_published_estimates(prop99_fits):
    # Arkhangelsky et al. (2021), Table 1: SDID -15.60, SC -19.62, DiD -27.35
    assert round(prop99_fits["sdid"].estimate, 2) == -15.60
    assert round(prop99_fits["sc"].estimate, 2) == -19.62
    assert round(prop99_fits["did"].estimate, 2) == -27.35


def test_prop99_reproduces_the_published_weights(prop99_fits):
    sdid, sc, did = prop99_fits["sdid"], prop99_fits["sc"], prop99_fits["did"]
    lam = sdid.time_weights
    assert lam.round(3).to_dict() == {**{y: 0.0 for y in range(1970, 1986)}, 1986: 0.366, 1987: 0.206, 1988: 0.427}
    top = sdid.unit_weights.sort_values(ascending=False).round(3).iloc[:4].to_dict()
    assert top == {"Nevada": 0.124, "New Hampshire": 0.105, "Connecticut": 0.078, "Delaware": 0.070}
    assert (sdid.unit_weights > 0).sum() == 28
    sc_w = sc.unit_weights[sc.unit_weights > 0].round(3).to_dict()
    assert sc_w == {
        "Colorado": 0.013,
        "Connecticut": 0.104,
        "Delaware": 0.004,
        "Montana": 0.232,
        "Nevada": 0.204,
        "New Hampshire": 0.045,
        "Utah": 0.396,
    }
    assert sc.time_weights is None
    assert np.allclose(did.unit_weights, 1 / 38) and np.allclose(did.time_weights, 1 / 19)
    for r in prop99_fits.values():
        assert math.isclose(r.unit_weights.sum(), 1.0, rel_tol=1e-12)
        assert r.n_control == 38 and r.n_pre == 19 and r.n_post == 12 and r.launched_units == ("California",)


@pytest.mark.parametrize("method", ["sdid", "sc", "did"])
def test_prop99_equals_a_plain_transcription_of_r_synthdid(prop99, prop99_fits, method):
    Y, N0, T0, controls = _matrix(prop99, "packs_per_capita")
    tau, om, lam = r_estimate(Y, N0, T0, method)
    res = prop99_fits[method]
    assert res.estimate == pytest.approx(tau, abs=1e-10)
    np.testing.assert_allclose(res.unit_weights.reindex(controls).to_numpy(), om, atol=1e-10)
    if method != "sc":
        np.testing.assert_allclose(res.time_weights.to_numpy(), lam, atol=1e-10)


# --------------------------------------------------------------------------
# azcausal (Python port of R synthdid)
# --------------------------------------------------------------------------
def _azcausal(df, y, unit, time, treat):
    pytest.importorskip("azcausal")
    import warnings

    from azcausal.core.frame import CausalDataFrame
    from azcausal.estimators.panel.did import DID
    from azcausal.estimators.panel.sdid import SDID

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = (
            CausalDataFrame(df[[unit, time, y, treat]].copy())
            .setup(outcome=y, time=time, unit=unit, intervention=treat)
            .to_panel()
        )
        fit = SDID().fit(panel)
        did = DID().fit(panel)
    return fit.effect.value, fit.effect["omega"], fit.effect["lambd"], did.effect.value


@pytest.mark.parametrize("case", ["prop99", "one_market", "three_launched"])
def test_matches_azcausal(case, prop99, market_panel, three_launched):
    df, y, unit, time, treat = {
        "prop99": (prop99, "packs_per_capita", "state", "year", "treated"),
        "one_market": (market_panel, "contact_rate", "market", "week", "launched"),
        "three_launched": (three_launched, "contact_rate", "market", "week", "launched"),
    }[case]
    est, omega, lam, did = _azcausal(df, y, unit, time, treat)
    res = synthetic(df, y, unit, time, treat, reps=2)
    assert res.estimate == pytest.approx(est, abs=1e-9 * max(1.0, abs(est)))
    np.testing.assert_allclose(res.unit_weights.to_numpy(), omega.reindex(res.unit_weights.index).to_numpy(), atol=1e-9)
    np.testing.assert_allclose(res.time_weights.to_numpy(), lam.reindex(res.time_weights.index).to_numpy(), atol=1e-9)
    assert synthetic(df, y, unit, time, treat, method="did", reps=2).estimate == pytest.approx(did, abs=1e-12)


@pytest.mark.parametrize("method", ["sdid", "sc"])
def test_simulated_panels_equal_the_plain_transcription(market_panel, three_launched, method):
    for df in (market_panel, three_launched):
        Y, N0, T0, controls = _matrix(df, "contact_rate", "market", "week", "launched")
        tau, om, _ = r_estimate(Y, N0, T0, method)
        res = synthetic(df, "contact_rate", "market", "week", "launched", method=method, reps=2)
        assert res.estimate == pytest.approx(tau, abs=1e-10)
        np.testing.assert_allclose(res.unit_weights.reindex(controls).to_numpy(), om, atol=1e-9)


def test_frank_wolfe_batch_equals_one_problem_at_a_time():
    """The batched solver (lockstep, shrinking working set, column trimming) gives each problem's own answer."""
    rng = np.random.default_rng(4)
    B, n, k = 7, 12, 9
    A = rng.normal(size=(B, n, k))
    b = rng.normal(size=(B, n))
    allowed = rng.random((B, k)) > 0.3
    allowed[:, 0] = True
    allowed[3, 5:] = False  # padding at the end: trimmed when problem 3 is left
    x0 = allowed / allowed.sum(axis=1, keepdims=True)
    md = np.r_[1e-3, 1e-2, 1e-4, 1e-3, 1e-1, 1e-5, 1e-3]
    x, steps = core.simplex_ridge_fw(A, b, 0.5, x0, allowed=allowed, min_decrease=md, max_iter=500)
    for j in range(B):
        cols = np.nonzero(allowed[j])[0]
        ref = r_sc_weight_fw(np.c_[A[j][:, cols], b[j]], math.sqrt(0.5 / n), False, x0[j, cols], md[j], 500)
        np.testing.assert_allclose(x[j, cols], ref, atol=1e-12)
        assert (x[j, ~allowed[j]] == 0).all()
        xs, s1 = core.simplex_ridge_fw(
            A[j : j + 1], b[j : j + 1], 0.5, x0[j : j + 1], allowed=allowed[j : j + 1], min_decrease=md[j], max_iter=500
        )
        np.testing.assert_allclose(xs[0], x[j], atol=1e-12)
        assert s1[0] == steps[j]
    assert len(set(steps.tolist())) > 1  # problems stopped at different steps


def test_affine_invariance_and_large_levels(prop99, prop99_fits):
    """SDID is invariant to a*Y + b and SC to a*Y (the regularization scales with the noise level): the same
    weights and a*estimate, also at levels 1e8 where sums of squares lose digits."""
    for a, b in ((1e4, 1e6), (1e-3, 0.0), (1e3, 1e8)):
        df = prop99.assign(y=prop99["packs_per_capita"] * a + b)
        res = synthetic(df, "y", "state", "year", "treated", reps=2)
        ref = prop99_fits["sdid"]
        assert res.estimate / a == pytest.approx(ref.estimate, abs=1e-9)
        np.testing.assert_allclose(res.unit_weights, ref.unit_weights, atol=1e-11)
        np.testing.assert_allclose(res.time_weights, ref.time_weights, atol=1e-10)
    sc = synthetic(
        prop99.assign(y=prop99["packs_per_capita"] * 1e4), "y", "state", "year", "treated", method="sc", reps=2
    )
    assert sc.estimate / 1e4 == pytest.approx(prop99_fits["sc"].estimate, abs=1e-9)


# --------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------
def test_placebo_se_is_synthdids_formula_and_seeded(prop99, prop99_fits):
    res = prop99_fits["sdid"]
    r = res.replicates
    assert r.size == 50 and res.inference == "placebo"
    assert res.se == pytest.approx(math.sqrt(49 / 50) * np.std(r, ddof=1), rel=1e-14)
    again = synthetic(prop99, "packs_per_capita", "state", "year", "treated", reps=50, seed=1)
    assert again.se == res.se and (again.replicates == r).all()
    other = synthetic(prop99, "packs_per_capita", "state", "year", "treated", reps=50, seed=2)
    assert other.se != res.se
    z = 1.959963984540054
    assert res.ci_lower == pytest.approx(res.estimate - z * res.se) and res.ci_upper == pytest.approx(
        res.estimate + z * res.se
    )
    from scipy import stats

    assert res.p_value == pytest.approx(2 * stats.norm.sf(abs(res.estimate / res.se)))


def test_placebo_replications_are_r_placebo_problems(prop99):
    """Each replication = synthdid_estimate on the controls with one control as launched, weights restarted
    from the estimate's (omega renormalized), the estimate's regularization kept (R placebo_se)."""
    Y, N0, T0, controls = _matrix(prop99, "packs_per_capita")
    fit = core.fit(Y, N0, T0, "sdid")
    rep = core.placebo_se(Y, fit, reps=30, seed=7)
    reg = fit.reg
    for j in (0, 9, 30):
        keep = np.delete(np.arange(N0), j)
        Yj = np.vstack([Y[keep], Y[j]])
        Yc = r_collapsed(Yj, N0 - 1, T0)
        lam = r_sc_weight_fw(Yc[: N0 - 1], reg.zeta_lambda, True, fit.lam.copy(), reg.min_decrease, 100)
        lam = r_sc_weight_fw(Yc[: N0 - 1], reg.zeta_lambda, True, r_sparsify(lam), reg.min_decrease, 10_000)
        om0 = fit.omega[keep] / fit.omega[keep].sum()
        om = r_sc_weight_fw(Yc[:, :T0].T, reg.zeta_omega, True, om0, reg.min_decrease, 100)
        om = r_sc_weight_fw(Yc[:, :T0].T, reg.zeta_omega, True, r_sparsify(om), reg.min_decrease, 10_000)
        tau = np.r_[-om, 1.0] @ Yj @ np.r_[-lam, np.full(Y.shape[1] - T0, 1 / (Y.shape[1] - T0))]
        assert rep.fits.estimate[j] == pytest.approx(tau, abs=1e-9)
    assert set(rep.draws.tolist()) <= set(range(N0)) and rep.estimates.size == 30


def test_placebo_with_several_launched_units_solves_each_draw(three_launched):
    Y, N0, T0, _ = _matrix(three_launched, "contact_rate", "market", "week", "launched")
    fit = core.fit(Y, N0, T0, "sdid")
    rep = core.placebo_se(Y, fit, reps=5, seed=3)
    for b in range(5):
        ctl, tr = rep.fits.omega[b], rep.pseudo_treated[b]
        keep = np.setdiff1d(np.arange(N0), tr)
        pr = core.block_problems(N0, N0 - 3, T0, Y.shape[1])
        one = core.solve(
            np.vstack([Y[keep], Y[tr]]), pr, fit.reg, omega_init=fit.omega[keep][None], lambda_init=fit.lam[None]
        )
        assert one.estimate[0] == pytest.approx(rep.estimates[b], abs=1e-10)
        assert ctl.shape[0] == N0 - 3


def test_jackknife_is_the_fixed_weight_leave_one_out_formula(three_launched):
    res = synthetic(three_launched, "contact_rate", "market", "week", "launched", inference="jackknife")
    Y, N0, T0, controls = _matrix(three_launched, "contact_rate", "market", "week", "launched")
    om = res.unit_weights.reindex(controls).to_numpy()
    lam = res.time_weights.to_numpy()
    N, T = Y.shape
    u = []
    for i in range(N):
        keep = np.delete(np.arange(N), i)
        c = keep[keep < N0]
        t = keep[keep >= N0]
        w = om[c] / om[c].sum()
        u.append(np.r_[-w, np.full(t.size, 1 / t.size)] @ Y[np.r_[c, t]] @ np.r_[-lam, np.full(T - T0, 1 / (T - T0))])
    u = np.array(u)
    assert res.se == pytest.approx(math.sqrt((N - 1) / N * (N - 1) * np.var(u, ddof=1)), rel=1e-10)
    assert res.inference == "jackknife"


def test_bootstrap_is_seeded_and_refused_with_one_launched_unit(three_launched, market_panel):
    a = synthetic(three_launched, "contact_rate", "market", "week", "launched", inference="bootstrap", reps=20, seed=5)
    b = synthetic(three_launched, "contact_rate", "market", "week", "launched", inference="bootstrap", reps=20, seed=5)
    assert a.se == b.se and a.se > 0 and a.replicates.size == 20
    assert a.se == pytest.approx(math.sqrt(19 / 20) * np.std(a.replicates, ddof=1))
    for how in ("bootstrap", "jackknife"):
        with pytest.raises(DataError, match="at least two launched units.*inference='placebo'"):
            synthetic(market_panel, "contact_rate", "market", "week", "launched", inference=how)


def test_placebo_needs_more_controls_than_launched():
    rng = np.random.default_rng(0)
    rows = [(u, t, rng.normal() + (u >= 2) * (t >= 6), int(u >= 2 and t >= 6)) for u in range(5) for t in range(10)]
    df = pd.DataFrame(rows, columns=["u", "t", "y", "d"])
    with pytest.raises(DataError, match="more comparison units than launched units"):
        synthetic(df, "y", "u", "t", "d", inference="placebo")
    res = synthetic(df, "y", "u", "t", "d", reps=20)  # default: bootstrap, placebo impossible
    assert res.inference == "bootstrap" and res.placebo is None and res.fit_quality == "not assessed"


def test_rmspe_permutation_p_value(prop99_fits):
    res = prop99_fits["sc"]
    pl = res.placebo
    assert pl["launched"].iloc[0] and pl.shape[0] == 39  # California + one row per comparison state
    ratio = pl["post_rmspe"] / pl["pre_rmspe"]
    np.testing.assert_allclose(pl["rmspe_ratio"], ratio)
    expected = (1 + (ratio.iloc[1:] >= ratio.iloc[0]).sum()) / 39
    assert res.permutation_p_value == pytest.approx(expected)
    assert core.rmspe_p_value(2.0, np.array([1.0, 3.0, 2.0, np.nan])) == pytest.approx(3 / 4)
    # the placebo states are SC fits of each state on the other 37
    Y, N0, T0, controls = _matrix(pd.read_csv(REF / "california_prop99.csv"), "packs_per_capita")
    j = controls.index("Utah")
    keep = np.delete(np.arange(N0), j)
    tau, _, _ = r_estimate(np.vstack([Y[keep], Y[j]]), N0 - 1, T0, "sc")
    row = pl.loc[pl["state"] == "Utah"].iloc[0]
    assert abs(row["estimate"] - tau) < 0.05  # regularization of the original fit kept (R placebo), so close


# --------------------------------------------------------------------------
# Conformal inference
# --------------------------------------------------------------------------
def test_conformal_did_p_values_equal_the_closed_form(prop99):
    res = synthetic(prop99, "packs_per_capita", "state", "year", "treated", method="did", inference="conformal", reps=2)
    Y, N0, T0, _ = _matrix(prop99, "packs_per_capita")
    ytr, yco = Y[N0:].mean(axis=0), Y[:N0].mean(axis=0)
    T = Y.shape[1]
    for j in range(T - T0):
        rows = np.r_[np.arange(T0), T0 + j]
        e = ytr[rows] - yco[rows]
        u = np.abs(e - e.mean())
        assert res.conformal["p_value"].iloc[j] == pytest.approx(np.mean(u >= u[-1] - 1e-12))
    # joint test: all periods, moving blocks
    e = ytr - yco
    u = np.abs(e - e.mean())
    s = [np.roll(u, -k)[T0:].sum() for k in range(T)]
    assert res.p_value == pytest.approx(np.mean(np.array(s) >= s[0] - 1e-9))
    assert res.conformal_p_value == res.p_value and np.isnan(res.se)


def test_conformal_intervals_bracket_the_tested_values(prop99):
    res = synthetic(prop99, "packs_per_capita", "state", "year", "treated", conformal=True, reps=20)
    cf = res.conformal
    assert list(cf.index) == list(range(1989, 2001))
    assert (cf["ci_lower"] < cf["effect"]).all() and (cf["effect"] < cf["ci_upper"]).all()
    assert ((cf["p_value"] >= 1 / 20) & (cf["p_value"] <= 1)).all()
    # a period whose interval excludes 0 has a small p-value for 0 and vice versa
    excl = (cf["ci_upper"] < 0) | (cf["ci_lower"] > 0)
    assert (cf.loc[excl, "p_value"] <= 0.05 + 1e-12).all()
    assert res.inference == "placebo"  # conformal=True adds the path only
    assert np.isfinite(res.conformal_p_value) and 1 / 31 <= res.conformal_p_value <= 1


# --------------------------------------------------------------------------
# Ratio outcomes, covariates, staggered launches
# --------------------------------------------------------------------------
def test_ratio_outcome_is_the_cell_ratio(market_panel):
    a = synthetic(market_panel, ("contacts", "orders"), "market", "week", "launched", reps=20)
    b = synthetic(market_panel, "contact_rate", "market", "week", "launched", reps=20)
    assert a.estimate == b.estimate and a.se == b.se and a.outcome == "contacts/orders"
    assert a.counterfactual > 0 and a.relative_effect == pytest.approx(a.estimate / a.counterfactual)


def test_covariates_equal_r_covariate_solver():
    rng = np.random.default_rng(21)
    N0, N1, T0, T1 = 9, 2, 8, 4
    N, T = N0 + N1, T0 + T1
    X = rng.normal(size=(N, T, 2))
    Y = rng.normal(size=(N, T)).cumsum(axis=1) + X @ np.array([1.5, -0.7])
    for method in ("sdid", "sc", "did"):
        fit = core.fit(Y, N0, T0, method, X=X, reg=replace_iter(core.regularization(Y[:N0, :T0], N1, T1, method)))
        reg = fit.reg
        Yc = r_collapsed(Y, N0, T0)
        Xc = np.stack([r_collapsed(X[:, :, c], N0, T0) for c in range(2)])
        lam0 = np.zeros(T0) if method == "sc" else np.full(T0, 1 / T0)
        lam, om, beta = r_covariate_weights(
            Yc,
            Xc,
            reg.zeta_lambda,
            reg.zeta_omega,
            reg.min_decrease,
            reg.lambda_intercept,
            reg.omega_intercept,
            reg.update_lambda,
            reg.update_omega,
            lam0,
            np.full(N0, 1 / N0),
            reg.max_iter,
        )
        np.testing.assert_allclose(fit.beta, beta, atol=1e-10)
        np.testing.assert_allclose(fit.omega, om, atol=1e-10)
        np.testing.assert_allclose(fit.lam, lam, atol=1e-10)
        Yb = Y - X @ beta
        tau = np.r_[-om, np.full(N1, 1 / N1)] @ Yb @ np.r_[-lam, np.full(T1, 1 / T1)]
        assert fit.estimate == pytest.approx(tau, abs=1e-10)


def replace_iter(reg):
    from dataclasses import replace

    return replace(reg, max_iter=300)


def test_covariates_remove_a_confounder():
    """Y = factor structure + 2 x_it + tau D, with x trending up in the launched unit only: the launched unit's
    outcome drifts for a reason the controls do not share; adjusting for x removes that drift."""
    rng = np.random.default_rng(8)
    N0, T0, T1 = 10, 16, 4
    N, T = N0 + 1, T0 + T1
    x = rng.normal(size=(N, T)) * 0.3
    x[-1] += np.linspace(0, 4, T)
    y = 10 + rng.normal(size=(N, 1)) + np.linspace(0, 1, T) + 2 * x + 0.1 * rng.normal(size=(N, T))
    y[-1, T0:] += 1.0
    rows = [(i, t, y[i, t], x[i, t], int(i == N - 1 and t >= T0)) for i in range(N) for t in range(T)]
    df = pd.DataFrame(rows, columns=["u", "t", "y", "x", "d"])
    plain = synthetic(df, "y", "u", "t", "d", reps=20)
    adjusted = synthetic(df, "y", "u", "t", "d", covariates="x", reps=20)
    assert abs(plain.estimate - 1.0) > 1.0
    assert abs(adjusted.estimate - 1.0) < 0.3 and adjusted.beta.index.tolist() == ["x"]
    assert adjusted.beta["x"] == pytest.approx(2.0, abs=0.4)


def _staggered_panel():
    q = abkit.simulate.rollout_panel(
        n_markets=18, n_weeks=40, cohorts={24: 2, 32: 3}, seed=9, effects={"contact_rate": -0.1}
    )
    q["launched"] = (q["week"] >= q["launch_week"].fillna(10**6).astype(float)).astype(int)
    q["contact_rate"] = q["contacts"] / q["orders"]
    return q


def test_staggered_is_the_weighted_average_of_cohort_fits():
    q = _staggered_panel()
    res = synthetic(q, "contact_rate", "market", "week", "launched", reps=20)
    coh = res.cohorts
    assert coh["launch_period"].tolist() == [24, 32] and coh["n_launched"].tolist() == [2, 3]
    w = np.array([2 * 17, 3 * 9], dtype=float)
    np.testing.assert_allclose(coh["weight"], w / w.sum())
    never = q.loc[q["launch_week"].isna(), "market"].unique()
    ests = []
    for start in (24, 32):
        mk = q.loc[q["launch_week"] == start, "market"].unique()
        sub = q[q["market"].isin(list(never) + list(mk))]
        one = synthetic(sub, "contact_rate", "market", "week", "launched", reps=2)
        ests.append(one.estimate)
        cr = res.cohort_results[start]
        np.testing.assert_allclose(cr.unit_weights.to_numpy(), one.unit_weights.to_numpy(), atol=1e-12)
        assert cr.estimate == pytest.approx(one.estimate, abs=1e-12)
    np.testing.assert_allclose(coh["estimate"], ests, atol=1e-12)
    assert res.estimate == pytest.approx(float(w @ ests / w.sum()), abs=1e-12)
    assert res.se > 0 and res.inference == "placebo" and res.unit_weights.sum() == pytest.approx(1.0)
    boot = synthetic(q, "contact_rate", "market", "week", "launched", inference="bootstrap", reps=20, seed=2)
    assert boot.se > 0 and boot.estimate == res.estimate
    jk = synthetic(q, "contact_rate", "market", "week", "launched", inference="jackknife")
    assert jk.se > 0
    for kind in ("paths", "weights", "placebo", "fit"):
        assert res.plot(kind).get_title(loc="left")
    with pytest.raises(DataError, match="single launch date"):
        synthetic(q, "contact_rate", "market", "week", "launched", inference="conformal")


def test_staggered_jackknife_needs_two_units_per_cohort():
    q = abkit.simulate.rollout_panel(n_markets=14, n_weeks=30, cohorts={18: 1, 24: 2}, seed=4)
    q["launched"] = (q["week"] >= q["launch_week"].fillna(10**6).astype(float)).astype(int)
    with pytest.raises(DataError, match="at least two launched units in every launch cohort"):
        synthetic(q, ("contacts", "orders"), "market", "week", "launched", inference="jackknife")


# --------------------------------------------------------------------------
# Bad input: clear refusals naming the column and value
# --------------------------------------------------------------------------
def _small(n_units=6, n_periods=8, launch=5):
    rows = [
        (f"m{u}", t, 1.0 + 0.1 * u + 0.05 * t + 0.01 * ((u * 7 + t * 3) % 5), int(u == 0 and t >= launch))
        for u in range(n_units)
        for t in range(n_periods)
    ]
    return pd.DataFrame(rows, columns=["market", "week", "y", "d"])


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda d: d.drop(index=3), r"unbalanced.*market='m0' in week=3"),
        (lambda d: pd.concat([d, d.iloc[[10]]]), r"appear more than once.*market='m1' in week=2"),
        (
            lambda d: d.assign(d=np.where((d.market == "m0") & (d.week == 7), 0, d.d)),
            r"switches off again.*market='m0' is launched from week=5 but not in week=7",
        ),
        (lambda d: d.assign(d=np.where(d.market == "m0", 1, 0)), r"launched in the first period.*market='m0'"),
        (lambda d: d.assign(y=d.y.astype(object).where(d.index != 4, "n/a")), r"column 'y' is not numeric.*'n/a'"),
        (lambda d: d.assign(y=d.y.where(d.index != 4, np.nan)), r"column 'y' has 1 missing.*market='m0' in week=4"),
        (lambda d: d.assign(d=d.d * 2), r"column 'd' must be 0 .* or 1 .*got e.g. 2"),
        (lambda d: d.assign(d=0), r"no unit is ever launched"),
        (lambda d: d[d.market.isin(["m0", "m1"])], r"at least 2 never-launched comparison units; the data has 1"),
        (lambda d: d.assign(week=d.week.map(lambda w: f"W{w}")), r"column 'week' must hold period numbers or dates"),
        (lambda d: d.rename(columns={"y": "yy"}), r"column 'y' not found"),
        (lambda d: d.assign(d=np.where((d.market == "m0") & (d.week >= 1), 1, 0)), r"at least 2 pre-launch periods"),
    ],
)
def test_bad_input_is_refused_clearly(mutate, pattern):
    df = mutate(_small())
    with pytest.raises(AbkitError, match=pattern):
        synthetic(df, "y", "market", "week", "d", reps=5)


def test_bad_arguments_and_ratio_denominators():
    df = _small().assign(orders=10.0, contacts=3.0)
    with pytest.raises(DataError, match="method must be one of sdid, sc, did; got 'synth'"):
        synthetic(df, "y", "market", "week", "d", method="synth")
    with pytest.raises(DataError, match="inference must be one of"):
        synthetic(df, "y", "market", "week", "d", inference="wild")
    with pytest.raises(DataError, match="reps must be an integer >= 2"):
        synthetic(df, "y", "market", "week", "d", reps=1)
    bad = df.assign(orders=np.where((df.market == "m2") & (df.week == 1), 0.0, df.orders))
    with pytest.raises(DataError, match=r"column 'orders' is 0 or negative in 1 unit-period.*market='m2' in week=1"):
        synthetic(bad, ("contacts", "orders"), "market", "week", "d", reps=5)
    with pytest.raises(DataError, match="conformal inference is not available with covariates"):
        synthetic(
            df.assign(x=df.y * 0.5 + df.week), "y", "market", "week", "d", covariates="x", inference="conformal", reps=5
        )


# --------------------------------------------------------------------------
# The result object: numbers and figures for the readout
# --------------------------------------------------------------------------
def test_result_carries_what_the_readout_needs(prop99_fits):
    res = prop99_fits["sdid"]
    paths = res.paths
    assert list(paths.columns) == ["treated", "synthetic", "gap", "post", "time_weight"]
    assert paths.index.name == "year" and paths["post"].sum() == 12
    assert paths.loc[paths["post"], "gap"].mean() == pytest.approx(res.estimate, abs=1e-10)
    assert res.counterfactual == pytest.approx(paths.loc[paths["post"], "synthetic"].mean())
    assert res.pre_rmspe == pytest.approx(np.sqrt((paths.loc[~paths["post"], "gap"] ** 2).mean()))
    top = res.top_weights()
    assert len(top) == 11 and top.index[-1] == "other 28 units" and top.sum() == pytest.approx(1.0)
    assert top.index[0] == "Nevada"
    d = res.to_dict()
    for key in (
        "effect",
        "ci_lower",
        "ci_upper",
        "rel_effect",
        "rel_ci_lower",
        "rel_ci_upper",
        "counterfactual",
        "pre_rmspe",
        "fit_quality",
        "fit_message",
        "top_weights",
        "permutation_p_value",
        "launch_period",
    ):
        assert key in d
    assert d["launch_period"] == 1989 and d["fit_quality"] == "good" and isinstance(d["effect"], float)
    row = res.to_frame()
    assert row.shape == (1, 19) and row["rel_effect"].iloc[0] == pytest.approx(res.estimate / res.counterfactual)
    assert "California vs 38 comparison units" in str(res) and "Good pre-launch fit" in str(res)
    html = res._repr_html_()
    assert "<table" in html and "synthetic difference-in-differences" in html


def test_plots_are_labelled(prop99_fits):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    res = prop99_fits["sdid"]
    try:
        ax = res.plot("paths")
        assert (
            "California" in ax.get_title(loc="left")
            and ax.get_xlabel() == "year"
            and ax.get_ylabel() == "packs_per_capita"
        )
        assert len(ax.lines) >= 3  # launched, twin, launch line
        ax = res.plot("weights")
        assert [t.get_text() for t in ax.get_yticklabels()][0] == "Nevada"
        assert ax.get_yticklabels()[-1].get_text() == "other 28 units"
        ax = res.plot("placebo")
        assert "Placebo" in ax.get_title(loc="left") and ax.get_legend() is not None
        ax = res.plot("fit")
        assert ax.get_title(loc="left") == "Pre-launch fit: good"
        with pytest.raises(DataError, match="plot kind must be one of"):
            res.plot("bars")
    finally:
        plt.close("all")


def test_poor_pre_launch_fit_is_flagged():
    """A launched unit far outside the comparison units (twice the largest) cannot be matched by SC."""
    rng = np.random.default_rng(2)
    N0, T = 12, 20
    y = 5 + rng.normal(size=(N0, 1)) + np.sin(np.arange(T) / 3) * rng.uniform(0.5, 1.5, (N0, 1))
    y = y + 0.1 * rng.normal(size=(N0, T))
    treated = 3 * y.max(axis=0) + np.linspace(0, 5, T)
    Y = np.vstack([y, treated])
    rows = [(i, t, Y[i, t], int(i == N0 and t >= 15)) for i in range(N0 + 1) for t in range(T)]
    df = pd.DataFrame(rows, columns=["u", "t", "y", "d"])
    res = synthetic(df, "y", "u", "t", "d", method="sc", reps=20)
    assert res.fit_quality == "poor" and res.fit_message.startswith("Warning, poor pre-launch fit")
    assert "ALERT" not in res._repr_html_() and "#cf222e" in res._repr_html_()


def test_did_namespace_exposes_synthetic():
    import abkit.did

    assert abkit.did.synthetic is synthetic


# --------------------------------------------------------------------------
# Planning: detectable effect by placebo launches in time
# --------------------------------------------------------------------------
def test_detectable_effect_is_the_placebo_in_time_spread(market_panel):
    hist = market_panel[market_panel["week"] < 45]
    de = detectable_effect(
        hist, ("contacts", "orders"), "market", "week", market="DE", post_periods=(4, 8), min_pre=20, max_dates=None
    )
    t = de.table
    assert t["post_periods"].tolist() == [4, 8]
    assert t["n_launch_dates"].tolist() == [44 - 20 - 4 + 1, 44 - 20 - 8 + 1]
    from scipy import stats

    z = stats.norm.isf(0.025) + stats.norm.ppf(0.8)
    for L, row in zip((4, 8), t.itertuples()):
        e = de.estimates.loc[de.estimates["post_periods"] == L, "estimate"]
        assert row.rmse == pytest.approx(np.sqrt(np.mean(e**2)))
        assert row.mde == pytest.approx(z * row.rmse)
    # one pretend launch = an SDID fit on the history cut at launch + L, DE 'launched' at the pretend date
    one = de.estimates.iloc[3]
    start = int(one["launch_period"])
    cut = hist[hist["week"] < start + 4].assign(d=lambda x: ((x.market == "DE") & (x.week >= start)).astype(int))
    ref = synthetic(cut, ("contacts", "orders"), "market", "week", "d", reps=2)
    assert one["estimate"] == pytest.approx(ref.estimate, abs=1e-12)
    assert "DE" in str(de)
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    try:
        assert "DE" in de.plot().get_title(loc="left")
    finally:
        plt.close("all")
    few = detectable_effect(
        hist, ("contacts", "orders"), "market", "week", market="DE", post_periods=(4,), min_pre=20, max_dates=5
    )
    dates = few.estimates["launch_period"].to_numpy()
    assert len(dates) == 5 and dates.max() == 41 and dates.min() == 21  # evenly spaced, the latest included
    with pytest.raises(DataError, match="too short"):
        detectable_effect(hist, ("contacts", "orders"), "market", "week", market="DE", post_periods=(40,))
    with pytest.raises(DataError, match="not found in column 'market'"):
        detectable_effect(hist, ("contacts", "orders"), "market", "week", market="XX")


# --------------------------------------------------------------------------
# Sample data
# --------------------------------------------------------------------------
def test_one_market_panel_is_seeded_and_knows_its_truth():
    a = abkit.simulate.one_market_panel(n_markets=12, n_weeks=30, launch_week=20, seed=4)
    b = abkit.simulate.one_market_panel(n_markets=12, n_weeks=30, launch_week=20, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert a.shape == (360, 5) and a.attrs["launched_market"] == "DE"
    assert a.loc[a["launched"] == 1, "market"].unique().tolist() == ["DE"]
    assert a.loc[a["launched"] == 1, "week"].min() == 20
    assert a.attrs["true_att"] == pytest.approx(a.attrs["true_effect"] * a.attrs["counterfactual"])
    with pytest.raises(abkit.simulate.SimulationError, match="launch_week"):
        abkit.simulate.one_market_panel(launch_week=1)
