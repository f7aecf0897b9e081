"""Time to event (issue 17): abkit vs a numpy floor, DuckDB push-down vs in memory, vs statsmodels.

1. In memory: ``abkit.analyze(df, TimeToEvent(..., covariate=...))`` (validation, counts per arm x time,
   pseudo-observation moments, CUPED, Welch) vs the *floor*: per arm, ``np.unique`` of the times with
   ``return_inverse`` and the ``np.bincount`` of events and removals, the least any Kaplan-Meier needs.
2. Push-down: the same metric with ``resolution=1/24`` (hourly bins) on a parquet file through DuckDB vs
   in memory on the same rows (the DataFrame already loaded).
3. Peer: statsmodels ``SurvfuncRight`` (Kaplan-Meier and Greenwood only) on each arm.

The results are checked to agree before any time is printed. The data (``abkit.simulate.time_to_refund``)
is written on demand under benchmarks/_data/ (git-ignored).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import abkit
from abkit.stats import survival as sv

HERE = Path(__file__).parent
DATA = HERE / "_data"


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    df = abkit.simulate.time_to_refund(args.n, hazard_ratio=1.2, read_day=35, seed=1)
    df["variant"] = df["variant"].astype(str)
    DATA.mkdir(exist_ok=True)
    path = DATA / f"refunds_{args.n}.parquet"
    if not path.exists():
        df.to_parquet(path, index=False, row_group_size=1 << 20)
    rows = len(df)
    exact = abkit.TimeToEvent("days_to_refund", "refunded", horizon=30, covariate="pre_refund_days")
    hourly = abkit.TimeToEvent("days_to_refund", "refunded", horizon=30, covariate="pre_refund_days", resolution=1 / 24)
    arm = df["variant"].to_numpy()
    t, e = df["days_to_refund"].to_numpy(), df["refunded"].to_numpy(dtype=float)

    def floor():
        for a in ("control", "treatment"):
            sel = arm == a
            grid, inv = np.unique(np.minimum(t[sel], 30.0), return_inverse=True)
            np.bincount(inv, weights=e[sel], minlength=grid.size)
            np.bincount(inv, minlength=grid.size)

    def statsmodels_km():
        from statsmodels.duration.survfunc import SurvfuncRight

        for a in ("control", "treatment"):
            sel = arm == a
            SurvfuncRight(t[sel], e[sel])

    mem = abkit.analyze(df, exact).to_frame().iloc[0]
    mem_h = abkit.analyze(df, hourly).to_frame().iloc[0]
    duck_h = abkit.analyze(str(path), hourly).to_frame().iloc[0]
    assert abs(duck_h["effect"] - mem_h["effect"]) < 1e-9 * abs(mem_h["effect"])
    s = df[df.variant == "control"]
    ref = sv.restricted_mean(sv.EventTable.from_durations(s.days_to_refund, s.refunded), 30.0).value
    plain = abkit.analyze(df, abkit.TimeToEvent("days_to_refund", "refunded", horizon=30)).to_frame().iloc[0]
    assert abs(ref - plain["control_value"]) < 1e-9 * ref and np.isfinite(mem["effect"])

    timings = {
        "numpy floor (unique + bincount per arm)": best_of(floor, args.repeat),
        "abkit in memory, exact times, CUPED": best_of(lambda: abkit.analyze(df, exact), args.repeat),
        "abkit in memory, hourly bins, CUPED": best_of(lambda: abkit.analyze(df, hourly), args.repeat),
        "abkit DuckDB push-down (parquet), hourly bins, CUPED": best_of(
            lambda: abkit.analyze(str(path), hourly), args.repeat
        ),
        "statsmodels SurvfuncRight per arm (KM only)": best_of(statsmodels_km, args.repeat),
    }
    base = timings["numpy floor (unique + bincount per arm)"]
    print(f"{rows:,} buyers in the data (of {args.n:,} simulated), best of {args.repeat}")
    for name, sec in timings.items():
        print(f"  {name:<55} {sec:8.3f} s   {sec / base:5.2f}x floor")


if __name__ == "__main__":
    main()
