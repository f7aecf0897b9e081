"""abkit.analyze vs a numpy floor: 10 million buyers, 6 metrics with CUPED, in memory.

The floor computes what any correct analysis must, the fastest way numpy
can: for each arm, the count, the column sums and the cross-products of the
14 columns the six metrics read (one gather of the arm's rows and one
matrix product per arm, X_a^T X_a, through BLAS: the 105 products include
the 37 the metrics declare and cost about as much). It does no validation,
no centring, no statistics. abkit does all of that: missing-value checks,
centred co-moments of the declared pairs, delta-method/CUPED estimators,
SRM. At this size ``abkit.analyze(df)`` hands the frame to DuckDB (which
scans it in place, on every core; see ``abkit.sources.ENGINE_MIN_ROWS``);
its numpy kernel, which smaller frames use, is timed too.

Both are timed in the same process on the same data (best of --repeat runs),
and the ratio is what matters; run ``python benchmarks/bench_ab.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import abkit
import abkit.sources

METRICS = [
    abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"), name="refund_rate"),
    abkit.Ratio("contacts", "orders", covariates=("pre_contacts", "pre_orders"), name="contact_rate"),
    abkit.Ratio("returns", "orders", covariates=("pre_returns", "pre_orders"), name="return_rate"),
    abkit.Mean("refund_amount", "pre_refund_amount"),
    abkit.Proportion("repeat_purchase_30d", "pre_repeat_purchase_30d"),
    abkit.Ratio("abuse_loss", "orders", covariates=("pre_abuse_loss", "pre_orders"), name="abuse_per_order"),
]


def numpy_floor(df, columns, chunk_rows=None):
    """Per arm: n, sums and X^T X of the needed columns. Nothing else.

    With ``chunk_rows`` the rows are processed in cache-friendlier chunks
    (the same chunking abkit uses); the benchmark takes the faster variant.
    """
    codes = df["variant"].cat.codes.to_numpy()
    arrays = [df[c].to_numpy(dtype=np.float64) for c in columns]
    n_arms = len(df["variant"].cat.categories)
    k = len(arrays)
    n = np.zeros(n_arms)
    sums = np.zeros((n_arms, k))
    cross = np.zeros((n_arms, k, k))
    step = chunk_rows or len(codes)
    for start in range(0, len(codes), step):
        c = codes[start : start + step]
        for a in range(n_arms):
            mask = c == a
            X = np.empty((int(mask.sum()), k), order="F")
            for j, v in enumerate(arrays):
                X[:, j] = v[start : start + step][mask]
            n[a] += len(X)
            sums[a] += X.sum(axis=0)
            cross[a] += X.T @ X
    return n, sums, cross


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000, help="buyers (default 10M)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    df = abkit.simulate.ab_data(args.n, effects={"refund_rate": -0.05}, seed=1)
    print(f"generated {args.n:,} buyers in {time.perf_counter() - t0:.1f} s")
    columns = list(dict.fromkeys(c for m in METRICS for c in m.columns))
    print(f"{len(METRICS)} metrics with CUPED over {len(columns)} columns")

    whole = best_of(lambda: numpy_floor(df, columns), args.repeat)
    chunked = best_of(lambda: numpy_floor(df, columns, chunk_rows=(1 << 24) // len(columns)), args.repeat)
    floor = min(whole, chunked)
    print(f"numpy floor, one gather per arm      : {whole:7.3f} s")
    print(f"numpy floor, chunked gather per arm  : {chunked:7.3f} s")
    ours = best_of(lambda: abkit.analyze(df, METRICS), args.repeat)
    saved = abkit.sources.ENGINE_MIN_ROWS
    abkit.sources.ENGINE_MIN_ROWS = float("inf")
    kernel = best_of(lambda: abkit.analyze(df, METRICS), args.repeat)
    abkit.sources.ENGINE_MIN_ROWS = saved
    print(f"numpy floor               : {floor:7.3f} s")
    print(f"abkit (DuckDB at this size): {ours:7.3f} s   {ours / floor:5.2f}x the floor (target <= 1.5x)")
    print(f"abkit, numpy kernel       : {kernel:7.3f} s   {kernel / floor:5.2f}x the floor")


if __name__ == "__main__":
    main()
