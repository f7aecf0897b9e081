"""Power calculations over a grid of 10,000 scenarios (MDE x power x allocation).

abkit solves every scenario in one vectorized pass (a bracketed regula-falsi
iteration over arrays). Two references, timed in the same run:

* the *floor*: one vectorized evaluation of the exact power function over the
  whole grid (no exact solver can do with fewer than one evaluation; abkit
  needs about six to reach 1e-12 relative precision);
* the *peer*: statsmodels' ``TTestIndPower().solve_power``, one call per
  scenario (timed on a subset and scaled to the grid).

Run ``python benchmarks/bench_power.py``. Not a timed test: the figures are
printed, and the target is well under a second for the 10,000-scenario grid.
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
    args = ap.parse_args(argv)

    rel_mde = np.linspace(0.005, 0.20, 25)[:, None, None]      # relative effects 0.5% .. 20%
    power = np.linspace(0.50, 0.95, 20)[None, :, None]
    ratio = np.linspace(0.25, 4.0, 20)[None, None, :]          # n_treatment / n_control
    sd, baseline, p_control = 2.5, 1.0, 0.12
    n_scen = np.broadcast(rel_mde, power, ratio).size
    print(f"grid: {n_scen:,} scenarios (25 MDEs x 20 power levels x 20 allocations)")

    rows = []
    t, res = best_of(lambda: P.sample_size_mean(sd, rel_mde, power=power, ratio=ratio, baseline=baseline,
                                                relative=True), args.repeat)
    rows.append(("sample_size_mean", t))
    n_c = res.n_control
    t, _ = best_of(lambda: P.mde_mean(sd, n_c, power=power, ratio=ratio), args.repeat)
    rows.append(("mde_mean", t))
    t, _ = best_of(lambda: P.power_mean(sd, rel_mde * baseline, n_c, ratio=ratio), args.repeat)
    rows.append(("power_mean", t))
    t, prop = best_of(lambda: P.sample_size_proportion(p_control, p_control * (1 + rel_mde), power=power,
                                                       ratio=ratio), args.repeat)
    rows.append(("sample_size_proportion (strict)", t))
    t, _ = best_of(lambda: P.mde_proportion(p_control, prop.n_control, power=power, ratio=ratio,
                                            unreachable="nan"), args.repeat)
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
    print(f"floor: one vectorized power evaluation over the grid: {floor:.3f} s "
          f"(sample_size_mean = {t_ss / floor:.1f}x the floor)")
    print(f"peer: statsmodels TTestIndPower.solve_power, one call per scenario: {peer:.1f} s for the grid "
          f"(extrapolated from {idx.size}); abkit is {peer / t_ss:.0f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
