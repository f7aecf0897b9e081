"""Time to event against published output and lifelines.

* R survRM2's documented output (vignette "Comparing two survival curves using the restricted mean
  survival time", Uno 2017, section 3.1: ``rmst2(time, status, arm, tau = 10)`` on the 312 randomized
  patients of the Mayo Clinic PBC trial, ``data/reference/pbc312.csv``), to the printed 3 decimals.
* lifelines 0.30 (``KaplanMeierFitter``: survival, 95% log-log band, median and its interval,
  ``restricted_mean_survival_time``), computed by ``data/reference/make_survival_reference.py`` in a
  separate virtualenv (lifelines pins pandas < 3) and stored in ``data/reference/survival_lifelines.csv``,
  on pbc and on a seeded data set with many ties and about half of the units censored (``survival_ties.csv``).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import abkit
from abkit.stats import survival as sv

REF = Path(__file__).parents[1] / "data" / "reference"

# survRM2 vignette, print(rmst2(time, status, arm, tau = 10)): estimate, se, lower .95, upper .95 (and p)
SURVRM2_ARMS = {"treatment": (7.146, 0.283, 6.592, 7.701), "control": (7.283, 0.295, 6.704, 7.863)}
SURVRM2_RMTL = {"treatment": (2.854, 0.283, 2.299, 3.408), "control": (2.717, 0.295, 2.137, 3.296)}
SURVRM2_CONTRASTS = {
    "rmst difference": (-0.137, -0.939, 0.665, 0.738),
    "rmst ratio": (0.981, 0.878, 1.096, 0.738),
    "rmtl ratio": (1.050, 0.787, 1.402, 0.738),
}


def pbc() -> pd.DataFrame:
    raw = pd.read_csv(REF / "pbc312.csv")
    assert len(raw) == 312 and (raw.trt == 1).sum() == 158  # the vignette's 158 D-penicillamine, 154 placebo
    return pd.DataFrame(
        {
            "variant": np.where(raw.trt == 1, "treatment", "control"),
            "years": raw.time / 365.25,
            "death": (raw.status == 2).astype(int),
        }
    )


def test_restricted_means_reproduce_survrm2_documented_output():
    res = abkit.analyze_time_to_event(
        pbc(), abkit.TimeToEvent("years", "death", horizon=10, name="survival", better="higher", time_unit="years")
    )
    table = res.restricted_means()
    for arm, (est, se, lo, hi) in SURVRM2_ARMS.items():
        row = table[(table.arm == arm) & (table.measure == "rmst")].iloc[0]
        assert (round(row.estimate, 3), round(row.se, 3), round(row.ci_lower, 3), round(row.ci_upper, 3)) == (
            est,
            se,
            lo,
            hi,
        )
        lost = table[(table.arm == arm) & (table.measure == "rmtl")].iloc[0]
        assert (
            round(lost.estimate, 3),
            round(lost.se, 3),
            round(lost.ci_lower, 3),
            round(lost.ci_upper, 3),
        ) == SURVRM2_RMTL[arm]
    for measure, (est, lo, hi, p) in SURVRM2_CONTRASTS.items():
        row = table[table.measure == measure].iloc[0]
        assert (round(row.estimate, 3), round(row.ci_lower, 3), round(row.ci_upper, 3), round(row.p_value, 3)) == (
            est,
            lo,
            hi,
            p,
        ), measure


def test_analyze_on_pbc_is_survrm2_up_to_the_pseudo_observation_df_factor():
    # abkit.analyze reads the metric through the pseudo-observation moments: the same estimate, the variance
    # n / (n - 1) times Greenwood's and Welch t instead of z; both differences are O(1/n).
    row = abkit.analyze(pbc(), abkit.TimeToEvent("years", "death", horizon=10, better="higher")).to_frame().iloc[0]
    assert round(row.effect, 3) == -0.137 and round(row.control_value, 3) == 7.283
    assert row.se == pytest.approx(np.sqrt(154 / 153 * 0.2954780922**2 + 158 / 157 * 0.2827748496**2), rel=1e-8)
    assert row.ci_lower == pytest.approx(-0.939, abs=0.01) and row.ci_upper == pytest.approx(0.665, abs=0.01)
    assert row.p_value == pytest.approx(0.738, abs=0.002)


@pytest.fixture(scope="module")
def lifelines_ref():
    return pd.read_csv(REF / "survival_lifelines.csv")


def _data(name):
    if name == "pbc":
        d = pbc()
        return d.rename(columns={"variant": "arm", "years": "time", "death": "event"}), 10.0
    return pd.read_csv(REF / "survival_ties.csv"), 12.0


@pytest.mark.parametrize("name", ["pbc", "ties"])
def test_kaplan_meier_band_median_and_rmst_equal_lifelines(lifelines_ref, name):
    data, tau = _data(name)
    ref = lifelines_ref[lifelines_ref.dataset == name]
    for arm, part in data.groupby("arm"):
        r = ref[ref.arm == arm]
        km = sv.kaplan_meier(sv.EventTable.from_durations(part.time, part.event))
        curve = r[r.quantity == "survival"]
        times = curve.time.to_numpy()
        times = times[times > 0]  # lifelines starts its timeline at 0 with S = 1
        got = np.array([km.at(t).value for t in times])
        np.testing.assert_allclose(got, curve[curve.time > 0].value.to_numpy(), rtol=1e-12)
        lo, hi = km.band(0.05, "log-log")
        idx = np.searchsorted(km.time, times, side="right") - 1
        ok = km.survival[idx] > 0
        for quantity, mine in (("ci_lower", lo[idx]), ("ci_upper", hi[idx])):
            theirs = r[(r.quantity == quantity) & (r.time > 0)].value.to_numpy()
            np.testing.assert_allclose(mine[ok], theirs[ok], rtol=1e-10, atol=1e-12)
        value, low, high = sv.quantile_time(km, 0.5, 0.05, "log-log")
        q = r.set_index("quantity").value
        assert value == pytest.approx(q["median"], rel=1e-12)
        assert (low, high) == (
            pytest.approx(q["median_ci_lower"], rel=1e-12),
            pytest.approx(q["median_ci_upper"], rel=1e-12),
        )
        rmst = sv.restricted_mean(sv.EventTable.from_durations(part.time, part.event), tau)
        assert rmst.value == pytest.approx(q["rmst"], rel=1e-12)


def test_the_ties_data_is_what_the_reference_script_generates():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_ref", REF / "make_survival_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    stored = pd.read_csv(REF / "survival_ties.csv")
    fresh = mod.ties_data()
    assert (stored.event.mean() < 0.6) and stored.groupby("arm").time.apply(lambda t: t.duplicated().mean()).min() > 0.8
    pd.testing.assert_frame_equal(stored, fresh, check_dtype=False)
