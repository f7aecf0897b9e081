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
    p = abkit.simulate.rollout_panel(n_markets=n_markets, n_weeks=n_weeks, cohorts=cohorts or {10: 5, 20: 5},
                                     effects={"contact_rate": -0.1}, seed=seed)
    p["log_rate"] = np.log(p["contacts"] / p["orders"])
    p["size"] = np.log(p.groupby("market")["orders"].transform("mean"))      # a unit-level covariate
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
    p["launch_week"] -= 1                                    # 0, 9, 19; never-treated stay missing
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
    r_did = p.assign(launch_week=p.launch_week.fillna(0))                    # weeks 1..30, 0 = never
    from_zero = p.assign(week=p.week - 1, launch_week=p.launch_week - 1)     # weeks 0..29, NaN = never
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
    b = did.staggered(p.assign(launch_week=p.launch_week.fillna(np.inf)), "log_rate", "market", "week",
                      "launch_week").aggregate("simple", reps=0)
    assert a.estimate == b.estimate and a.se == b.se
    with pytest.raises(DataError) as exc:
        did.staggered(p.assign(launch_week=p.launch_week.fillna(-np.inf)), "log_rate", "market", "week",
                      "launch_week")
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

    p = original.assign(week=original.week - 20, launch_week=original.launch_week - 20)   # first wave: week 0
    with pytest.raises(DataError, match="'launch_week' is 0 for 5 units, and 0 is also a period"):
        panel_of(p)
    with pytest.raises(DataError, match="negative for 5 units"):                          # -1 as a 'never' code
        panel_of(original.assign(launch_week=original.launch_week.fillna(-1)))
    shifted = panel_of(p.assign(week=p.week + 25, launch_week=p.launch_week + 25))
    assert shifted.cohorts == {25: 5, 35: 5, 45: 5} and shifted.n_never == 5
    assert panel_of(original.assign(launch_week=original.launch_week.fillna(0))).n_never == 5   # R did's 0
