"""Difference-in-differences speed: abkit vs peers and a numpy floor, 10,000 units x 100 periods (1M rows).

One balanced panel (seeded): 10,000 units, periods 1..100, eight launch
cohorts (periods 20, 30, ..., 90) and never-treated units, one ninth each;
``y`` = unit effect + period effect + an effect that grows with time since
launch + N(0, 1) noise. Timed in the same process on the same data (best of
``--repeat`` runs):

TWFE, ``y ~ treat | unit + time``, CRV1 clustered by unit:

* abkit ``did.twfe`` (everything it does by default: validation, exact
  two-way projection, CRV1 with fixest's small-sample K, the cohort trends
  and, the launches being staggered, the Goodman-Bacon decomposition);
* pyfixest ``feols("y ~ treat | unit + time", vcov={"CRV1": "unit"})``;
* the *floor*: factorize unit and period (hash), the two-way within
  transformation of a balanced panel by group means (``np.bincount``), one
  OLS slope and its CRV1 SE. No validation, no diagnostics; it is only right
  for a balanced panel.

Callaway & Sant'Anna, never-treated controls, doubly robust, no covariates
(792 ATT(g,t) cells), analytic standard errors and the dynamic aggregation:

* abkit ``did.staggered(...)`` + ``.aggregate("dynamic", reps=0)`` (and, for
  information, the default ``aggregate("dynamic")`` with its 999-draw
  multiplier bootstrap for the uniform band);
* csdid (Python port of R ``did``) ``ATTgt(...).fit(est_method="dr",
  bstrap=False)`` + ``aggte(typec="dynamic", bstrap=False)``, if installed
  (``pip install csdid``; not an abkit dependency);
* the *floor*: per cohort, the period means and the ``T x T`` cross-product
  of the outcomes: the sufficient statistics from which every ATT(g,t)
  (cohort-mean differences) and its analytic SE follow. One pass over the
  data and one small matrix product per cohort; no aggregation.

Randomization test (the test for few treated clusters): ``did.randomization_test``
with 999 random assignments of the launch timing to the units, the TWFE
coefficient of each; against the numpy floor's time for one TWFE fit times
1,000 (what refitting would cost at the floor's speed). Its observed
coefficient must equal ``did.twfe``'s.

The estimates of all implementations are checked against each other before
any time is reported. Run ``python benchmarks/bench_did.py`` (``--units``,
``--periods``, ``--repeat``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import time
import warnings

import numpy as np
import pandas as pd

import abkit.did as did


def make_panel(n_units: int, n_periods: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cohorts = np.array([0, *range(20, min(n_periods, 90) + 1, 10)])
    g = rng.choice(cohorts, size=n_units)
    unit = np.repeat(np.arange(1, n_units + 1), n_periods)
    period = np.tile(np.arange(1, n_periods + 1), n_units)
    first = g[unit - 1]
    e = period - first
    treat = ((first > 0) & (e >= 0)).astype(np.float64)
    y = (
        rng.normal(size=n_units)[unit - 1]
        + 0.01 * period
        + np.sin(period / 7.0)
        + treat * (0.05 + 0.002 * np.maximum(e, 0))
        + rng.normal(size=unit.size)
    )
    return pd.DataFrame({"unit": unit, "time": period, "first_treated": first, "treat": treat, "y": y})


def best_of(fn, repeat: int):
    out, times = None, []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


# ---------------------------------------------------------------- floors
def twfe_floor(df: pd.DataFrame) -> tuple[float, float]:
    """Balanced panel: two-way within transformation by group means, one OLS slope, CRV1 by unit."""
    u, _ = pd.factorize(df["unit"].to_numpy())
    t, _ = pd.factorize(df["time"].to_numpy())
    y = df["y"].to_numpy()
    d = df["treat"].to_numpy()
    n, G, T = y.size, int(u.max()) + 1, int(t.max()) + 1
    nu, nt = np.bincount(u, minlength=G), np.bincount(t, minlength=T)

    def within(v):
        return v - (np.bincount(u, v, G) / nu)[u] - (np.bincount(t, v, T) / nt)[t] + v.mean()

    dt, yt = within(d), within(y)
    sdd = dt @ dt
    beta = (dt @ yt) / sdd
    score = np.bincount(u, dt * (yt - beta * dt), G)
    K = 1 + T  # fixest: unit effects nested in the clusters
    c = G / (G - 1) * (n - 1) / (n - K)
    return float(beta), float(np.sqrt(c * score @ score) / sdd)


def cs_floor(df: pd.DataFrame) -> dict:
    """Per cohort: period means and the T x T outcome cross-product (all any ATT(g,t) and its SE need)."""
    u, _ = pd.factorize(df["unit"].to_numpy())
    t, _ = pd.factorize(df["time"].to_numpy(), sort=True)
    n, T = int(u.max()) + 1, int(t.max()) + 1
    Y = np.empty((n, T))
    Y[u, t] = df["y"].to_numpy()
    G = np.zeros(n)
    G[u] = df["first_treated"].to_numpy()
    out = {}
    for g in np.unique(G):  # loop over cohorts
        Yg = Y[G == g]
        out[g] = (Yg.shape[0], Yg.mean(axis=0), Yg.T @ Yg)
    return out


def cs_floor_att(stats_: dict, g: float, t_idx: int, b_idx: int) -> float:
    """ATT(g, t) vs never treated from the floor's sufficient statistics."""
    _, m1, _ = stats_[g]
    _, m0, _ = stats_[0.0]
    return float((m1[t_idx] - m1[b_idx]) - (m0[t_idx] - m0[b_idx]))


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=10_000)
    ap.add_argument("--periods", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    warnings.simplefilter("ignore")

    df = make_panel(args.units, args.periods)
    print(
        f"panel: {args.units:,} units x {args.periods} periods = {len(df):,} rows, "
        f"{df.first_treated[df.first_treated > 0].nunique()} launch cohorts; numpy {np.__version__}, "
        f"pandas {pd.__version__}, Python {platform.python_version()}"
    )

    # ------------------------------------------------------------ TWFE
    print("\nTWFE  y ~ treat | unit + time, CRV1 by unit")
    t_floor, (b_floor, se_floor) = best_of(lambda: twfe_floor(df), args.repeat)
    t_abkit, res = best_of(lambda: did.twfe(df, "y", "treat", "unit", "time"), args.repeat)
    assert abs(res.estimate - b_floor) < 1e-10 and abs(res.se / se_floor - 1) < 1e-8
    rows = [("numpy floor", t_floor), ("abkit did.twfe", t_abkit)]
    try:
        import pyfixest as pf
    except ImportError:
        pf = None
        print("  pyfixest not installed: pip install pyfixest to compare")
    if pf is not None:
        t_pf, fit = best_of(lambda: pf.feols("y ~ treat | unit + time", data=df, vcov={"CRV1": "unit"}), args.repeat)
        assert abs(fit.coef()["treat"] - res.estimate) < 1e-8 and abs(fit.se()["treat"] / res.se - 1) < 1e-6
        rows.append(("pyfixest feols", t_pf))
    for name, t in rows:
        print(f"  {name:<22} {t:7.3f} s   abkit / this = {t_abkit / t:5.2f}x")
    print(f"  estimate {res.estimate:.6f} (SE {res.se:.6f}); all implementations agree")

    # ------------------------------------------------------------ Callaway & Sant'Anna
    print("\nCallaway & Sant'Anna  never-treated controls, DR, analytic SEs, dynamic aggregation")
    t_csf, suff = best_of(lambda: cs_floor(df), args.repeat)

    def abkit_cs():
        r = did.staggered(df, "y", "unit", "time", "first_treated")
        return r, r.aggregate("dynamic", reps=0)

    t_cs, (cs, dyn) = best_of(abkit_cs, args.repeat)
    t_boot, _ = best_of(lambda: cs.aggregate("dynamic"), 1)
    tab = cs.att_gt
    for _, row in tab.sample(25, random_state=0).iterrows():
        ti, bi = int(row.time) - 1, int(row.base_period) - 1
        assert abs(row.att - cs_floor_att(suff, float(row.group), ti, bi)) < 1e-10
    rows = [("numpy floor (ATTs only)", t_csf), ("abkit did.staggered", t_cs)]
    try:
        from csdid.att_gt import ATTgt
    except ImportError:
        ATTgt = None
        print("  csdid not installed: pip install csdid to compare")
    if ATTgt is not None:

        def peer():
            with contextlib.redirect_stdout(io.StringIO()):
                a = ATTgt(yname="y", gname="first_treated", idname="unit", tname="time", data=df).fit(
                    est_method="dr", bstrap=False
                )
                return a, a.aggte(typec="dynamic", bstrap=False)

        t_peer, (att, agg) = best_of(peer, args.repeat)
        assert np.max(np.abs(np.asarray(att.results["att"]) - tab["att"].to_numpy())) < 1e-10
        assert np.nanmax(np.abs(np.asarray(att.results["se"]) / tab["se"].to_numpy() - 1)) < 1e-8
        assert abs(agg.atte["overall_att"] - dyn.estimate) < 1e-10
        assert abs(agg.atte["overall_se"] / dyn.se - 1) < 1e-8
        rows.append(("csdid ATTgt + aggte", t_peer))
    for name, t in rows:
        print(f"  {name:<24} {t:7.3f} s   abkit / this = {t_cs / t:5.2f}x")
    print(f"  + default aggregate('dynamic') with the 999-draw multiplier bootstrap: {t_boot:.3f} s")
    print(
        f"  {len(tab)} ATT(g,t) cells; dynamic overall {dyn.estimate:.6f} (SE {dyn.se:.6f}); all implementations agree"
    )

    # ------------------------------------------------------------ randomization inference
    print("\nRandomization test  TWFE coefficient, 999 random assignments of the launch timing to the units")
    t_ri, ri = best_of(lambda: did.randomization_test(df, "y", "unit", "time", "first_treated", reps=999), 1)
    assert abs(ri.estimate - res.estimate) < 1e-10 and ri.n_assignments == 1000
    print(
        f"  abkit did.randomization_test {t_ri:7.3f} s; 1,000 refits at the numpy floor's speed "
        f"{1000 * t_floor:7.3f} s ({1000 * t_floor / t_ri:.1f}x slower); p = {ri.p_value:.4f}"
    )


if __name__ == "__main__":
    main()
