"""Power calculations over a grid of 10,000 scenarios (MDE x power x allocation).

abkit solves every scenario in one vectorized pass (a bracketed regula-falsi
iteration over arrays). Two references, timed in the same run:

* the *floor*: one vectorized evaluation of the exact power function over the
  whole grid (no exact solver can do with fewer than one evaluation; abkit
  needs about six to reach 1e-12 relative precision);
* the *peer*: statsmodels' ``TTestIndPower().solve_power``, one call per
  scenario (timed on a subset and scaled to the grid).

Simulation power (``abkit.power.simulate_power``): 1,000 simulated tests of
20,000 buyers resampled from ``abkit.simulate.ab_data`` history, analysed
with abkit's own estimator. Two references, timed in the same run:

* the *floor*: the unavoidable work in numpy alone: draw the indices, gather
  the metric's columns, and reduce each simulated arm to its sufficient
  statistics (means and centred cross-products, by reshaping: no sort, no
  validation, no inference);
* the *naive* way: one ``abkit.analyze`` call per simulated test on a
  DataFrame (timed on a subset and scaled to the 1,000 tests).

Run ``python benchmarks/bench_power.py``. Not a timed test: the figures are
printed, and the targets are well under a second for the 10,000-scenario grid
and a few seconds for the 1,000 simulated tests.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from abkit import power as P


def best_of(fn, repeat):
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peer-scenarios", type=int, default=200)
    ap.add_argument("--sims", type=int, default=1000, help="simulated tests (simulation benchmark)")
    ap.add_argument("--units", type=int, default=20_000, help="units per simulated test, both arms")
    ap.add_argument("--naive-sims", type=int, default=30, help="tests timed for the naive analyze loop")
    ap.add_argument("--skip-simulation", action="store_true")
    args = ap.parse_args(argv)

    rel_mde = np.linspace(0.005, 0.20, 25)[:, None, None]  # relative effects 0.5% .. 20%
    power = np.linspace(0.50, 0.95, 20)[None, :, None]
    ratio = np.linspace(0.25, 4.0, 20)[None, None, :]  # n_treatment / n_control
    sd, baseline, p_control = 2.5, 1.0, 0.12
    n_scen = np.broadcast(rel_mde, power, ratio).size
    print(f"grid: {n_scen:,} scenarios (25 MDEs x 20 power levels x 20 allocations)")

    rows = []
    t, res = best_of(
        lambda: P.sample_size_mean(sd, rel_mde, power=power, ratio=ratio, baseline=baseline, relative=True), args.repeat
    )
    rows.append(("sample_size_mean", t))
    n_c = res.n_control
    t, _ = best_of(lambda: P.mde_mean(sd, n_c, power=power, ratio=ratio), args.repeat)
    rows.append(("mde_mean", t))
    t, _ = best_of(lambda: P.power_mean(sd, rel_mde * baseline, n_c, ratio=ratio), args.repeat)
    rows.append(("power_mean", t))
    t, prop = best_of(
        lambda: P.sample_size_proportion(p_control, p_control * (1 + rel_mde), power=power, ratio=ratio), args.repeat
    )
    rows.append(("sample_size_proportion (strict)", t))
    t, _ = best_of(
        lambda: P.mde_proportion(p_control, prop.n_control, power=power, ratio=ratio, unreachable="nan"), args.repeat
    )
    rows.append(("mde_proportion", t))

    d = np.broadcast_to(rel_mde * baseline / sd, n_c.shape)
    k = np.broadcast_to(ratio, n_c.shape)
    n2 = n_c * k
    floor, _ = best_of(lambda: P.t_power(d * np.sqrt(n_c * n2 / (n_c + n2)), n_c + n2 - 2, 0.05, 2), args.repeat)

    from statsmodels.stats.power import TTestIndPower

    tt = TTestIndPower()
    rng = np.random.default_rng(0)
    idx = rng.choice(n_scen, size=min(args.peer_scenarios, n_scen), replace=False)
    flat_d, flat_p, flat_k = d.ravel()[idx], np.broadcast_to(power, n_c.shape).ravel()[idx], k.ravel()[idx]
    t0 = time.perf_counter()
    for es, pw, kk in zip(flat_d, flat_p, flat_k):
        tt.solve_power(effect_size=es, nobs1=None, alpha=0.05, power=pw, ratio=kk)
    peer = (time.perf_counter() - t0) / idx.size * n_scen

    width = max(len(r[0]) for r in rows)
    for name, t in rows:
        print(f"  {name:<{width}}  {t:7.3f} s   ({t / n_scen * 1e6:6.1f} us/scenario)")
    t_ss = rows[0][1]
    print(
        f"floor: one vectorized power evaluation over the grid: {floor:.3f} s "
        f"(sample_size_mean = {t_ss / floor:.1f}x the floor)"
    )
    print(
        f"peer: statsmodels TTestIndPower.solve_power, one call per scenario: {peer:.1f} s for the grid "
        f"(extrapolated from {idx.size}); abkit is {peer / t_ss:.0f}x faster"
    )
    if not args.skip_simulation:
        bench_simulation(args)
    return 0


def bench_simulation(args) -> None:
    import pandas as pd

    import abkit

    hist = abkit.simulate.ab_data(20_000, seed=3)
    n_c = args.units // 2
    print(
        f"\nsimulation power: {args.sims:,} simulated tests of {2 * n_c:,} units resampled from "
        f"{len(hist):,} history units"
    )
    metrics = [
        abkit.Mean("refund_amount", name="refund_amount"),
        abkit.Proportion("repeat_purchase_30d", name="repeat_purchase"),
        abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"), name="refund_rate_cuped"),
    ]
    for m in metrics:
        t, sim = best_of(lambda m=m: P.simulate_power(hist, m, 0.05, n_per_arm=n_c, n_sims=args.sims, seed=1), 1)
        table = np.column_stack([hist[c].to_numpy(np.float64) for c in m.columns])

        def floor(table=table):
            rng = np.random.default_rng(1)
            for start in range(0, args.sims, 100):
                b = min(100, args.sims - start)
                x = table[rng.integers(0, len(hist), size=(b, 2, n_c))]  # (tests, arms, units, columns)
                centred = x - x.mean(axis=2, keepdims=True)
                np.matmul(centred.transpose(0, 1, 3, 2), centred)  # co-moments per test and arm

        t_floor, _ = best_of(floor, 1)

        def naive(m=m):
            rng = np.random.default_rng(1)
            arm = pd.Categorical.from_codes(np.repeat([0, 1], n_c), ["control", "treatment"])
            for _ in range(args.naive_sims):
                df = hist.iloc[rng.integers(0, len(hist), 2 * n_c)].reset_index(drop=True)
                df["variant"] = arm
                abkit.analyze(df, m)

        t_naive, _ = best_of(naive, 1)
        t_naive *= args.sims / args.naive_sims
        print(
            f"  {m.name:<18} ({len(m.columns)} columns): simulate_power {t:6.2f} s "
            f"({t / args.sims * 1e3:5.2f} ms/test; power {sim.power:.3f}); numpy floor {t_floor:5.2f} s "
            f"(abkit = {t / t_floor:4.1f}x); one analyze() per test {t_naive:7.1f} s "
            f"(abkit {t_naive / t:4.0f}x faster)"
        )
    q = abkit.Quantile("time_to_refund_hours", 0.9, dropna=True, name="p90 hours")
    n_q = min(args.sims, 200)
    t, sim = best_of(lambda: P.simulate_power(hist, q, 0.1, n_per_arm=n_c, n_sims=n_q, seed=1), 1)
    print(f"  {q.name:<18} (quantile, one test at a time): {n_q} tests in {t:.2f} s ({t / n_q * 1e3:.1f} ms/test)")


if __name__ == "__main__":
    raise SystemExit(main())
