"""Synthetic DiD speed: abkit vs azcausal, one estimate with its placebo SE (200 replications).

One seeded panel, ``abkit.simulate.one_market_panel(n_markets=50,
n_weeks=104, launch_week=79, seed=1)``: 50 markets x 104 weeks, one market
(DE) launched for the last 26 weeks, outcome the contact rate per order.
Timed in the same process on the same data (best of ``--repeat`` runs,
wall clock and process CPU time):

* abkit ``synthetic(panel, "contact_rate", "market", "week", "launched",
  reps=200)``: the SDID estimate (R synthdid's weights: Frank-Wolfe, 100
  steps, sparsify, up to 10,000 steps), the placebo SE from 200
  replications (with one launched market: the 49 distinct placebo problems
  solved at once, batched), the placebo distribution with its RMSPE rank
  test and the fit judgement;
* azcausal (a Python port of R synthdid): ``SDID().fit(panel)`` and
  ``SDID().error(result, Placebo(n_samples=200))``. Its placebo
  replications are slow; ``--az-reps k`` times ``k`` of them and scales the
  time to 200 (printed as such).

The SDID estimates, unit weights and time weights of both are checked equal
(to 1e-9) before any time is printed; the placebo SEs differ only by their
random draws. Run ``python benchmarks/bench_synthetic.py``
(``--markets``, ``--weeks``, ``--repeat``, ``--az-reps``).
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np

import abkit
from abkit.did import synthetic


def _timed(fn, repeat: int):
    best_wall, best_cpu, out = np.inf, np.inf, None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        best_wall = min(best_wall, time.perf_counter() - w)
        best_cpu = min(best_cpu, time.process_time() - c)
    return out, best_wall, best_cpu


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markets", type=int, default=50)
    ap.add_argument("--weeks", type=int, default=104)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reps", type=int, default=200, help="placebo replications")
    ap.add_argument(
        "--az-reps", type=int, default=200, help="azcausal placebo replications actually run (time scaled to --reps)"
    )
    args = ap.parse_args(argv)

    panel = abkit.simulate.one_market_panel(
        n_markets=args.markets, n_weeks=args.weeks, launch_week=args.weeks - 25, seed=1
    )
    panel["contact_rate"] = panel["contacts"] / panel["orders"]
    print(
        f"panel: {args.markets} markets x {args.weeks} weeks, 1 launched (26 post weeks); "
        f"placebo replications: {args.reps}"
    )
    print(f"machine: {platform.machine()}, python {platform.python_version()}, numpy {np.__version__}")

    def run_abkit():
        return synthetic(panel, "contact_rate", "market", "week", "launched", reps=args.reps, seed=1)

    res, ab_wall, ab_cpu = _timed(run_abkit, args.repeat)
    from abkit.did.one_market import _prepare
    from abkit.stats import synthdid as core

    prepared = _prepare(panel, "contact_rate", "market", "week", "launched", [])
    _, est_wall, est_cpu = _timed(
        lambda: core.fit(prepared.Y, prepared.n_control, args.weeks - 26, "sdid"), args.repeat
    )

    try:
        from azcausal.core.error import Placebo
        from azcausal.core.frame import CausalDataFrame
        from azcausal.estimators.panel.sdid import SDID
    except ImportError:
        print("azcausal is not installed (pip install azcausal): abkit only")
        print(f"abkit: estimate + placebo SE {ab_wall:.3f} s wall ({ab_cpu:.3f} s CPU); SE {res.se:.6g}")
        return 0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        az_panel = (
            CausalDataFrame(panel[["market", "week", "contact_rate", "launched"]].copy())
            .setup(outcome="contact_rate", time="week", unit="market", intervention="launched")
            .to_panel()
        )
        est = SDID()
        az_fit, az_est_wall, az_est_cpu = _timed(lambda: est.fit(az_panel), 1)
        # --- the estimates must agree before any time is reported
        omega = az_fit.effect["omega"].reindex(res.unit_weights.index).to_numpy()
        lam = az_fit.effect["lambd"].reindex(res.time_weights.index).to_numpy()
        d_est = abs(az_fit.effect.value - res.estimate)
        d_w = max(np.abs(omega - res.unit_weights.to_numpy()).max(), np.abs(lam - res.time_weights.to_numpy()).max())
        if d_est > 1e-9 * max(1.0, abs(res.estimate)) or d_w > 1e-9:
            raise SystemExit(f"estimates differ: |d estimate| = {d_est:.3g}, max |d weight| = {d_w:.3g}")
        print(
            f"check: estimate {res.estimate:.10g} (azcausal {az_fit.effect.value:.10g}), "
            f"max |d weight| {d_w:.1e}: equal"
        )
        w, c = time.perf_counter(), time.process_time()
        est.error(az_fit, Placebo(n_samples=args.az_reps))
        az_pl_wall, az_pl_cpu = time.perf_counter() - w, time.process_time() - c
    scale = args.reps / args.az_reps
    az_wall = az_est_wall + scale * az_pl_wall
    az_cpu = az_est_cpu + scale * az_pl_cpu
    scaled = "" if scale == 1 else f" (placebo: {args.az_reps} replications timed, scaled x{scale:g})"
    print()
    print(f"{'':34s} {'wall (s)':>10s} {'CPU (s)':>10s}")
    print(f"{'abkit estimate only':34s} {est_wall:10.3f} {est_cpu:10.3f}")
    print(f"{'abkit estimate + placebo SE':34s} {ab_wall:10.3f} {ab_cpu:10.3f}")
    print(f"{'azcausal estimate only':34s} {az_est_wall:10.3f} {az_est_cpu:10.3f}")
    print(f"{'azcausal estimate + placebo SE':34s} {az_wall:10.3f} {az_cpu:10.3f}{scaled}")
    print(
        f"ratio azcausal / abkit (estimate + placebo SE): {az_wall / ab_wall:.0f}x wall, "
        f"{az_cpu / ab_cpu:.0f}x CPU (target >= 5x)"
    )
    print(f"placebo SE: abkit {res.se:.6g}, azcausal {az_fit.effect.se:.6g} (different random draws)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
