"""Push-down and peers, in one run (ratios are what matter).

1. DuckDB path: ``abkit.analyze(path.parquet, 6 CUPED metrics)`` vs a
   hand-written DuckDB query of the same sums (count, sums and all
   cross-products of the 14 columns per arm) on the same parquet file.
   Target: <= 1.2x.
2. abkit vs tea-tasting on the same metrics and in-memory data.
3. abkit vs statsmodels OLS for the CUPED estimate of one metric.

The parquet file (10M buyers by default) is generated on demand under
benchmarks/_data/ (git-ignored) and reused.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import abkit

HERE = Path(__file__).parent
DATA = HERE / "_data"

from bench_ab import METRICS  # the same six CUPED metrics as the in-memory benchmark  # noqa: E402


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def sample(n: int) -> Path:
    DATA.mkdir(exist_ok=True)
    path = DATA / f"ab_{n}.parquet"
    if not path.exists():
        df = abkit.simulate.ab_data(n, effects={"refund_rate": -0.05}, seed=1)
        df["variant"] = df["variant"].astype(str)
        tmp = path.with_suffix(".tmp")
        df.to_parquet(tmp, index=False, row_group_size=1 << 20)
        tmp.replace(path)
    return path


def hand_written_duckdb(path: Path, columns: list[str]):
    import duckdb

    sums = [f"sum({c})" for c in columns]
    cross = [f"sum({a} * {b})" for i, a in enumerate(columns) for b in columns[i:]]
    sql = (f"SELECT variant, count(*), {', '.join(sums + cross)} "
           f"FROM read_parquet('{path}') GROUP BY variant")
    return duckdb.connect().sql(sql).fetchall()


def tea_tasting(df):
    import tea_tasting as tt

    metrics = {
        "refund_rate": tt.RatioOfMeans("refunds", "orders", "pre_refunds", "pre_orders"),
        "contact_rate": tt.RatioOfMeans("contacts", "orders", "pre_contacts", "pre_orders"),
        "return_rate": tt.RatioOfMeans("returns", "orders", "pre_returns", "pre_orders"),
        "refund_amount": tt.Mean("refund_amount", "pre_refund_amount"),
        "repeat": tt.Mean("repeat_purchase_30d", "pre_repeat_purchase_30d"),
        "abuse": tt.RatioOfMeans("abuse_loss", "orders", "pre_abuse_loss", "pre_orders"),
    }
    return tt.Experiment(metrics).analyze(df, control="control")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    path = sample(args.n)
    columns = list(dict.fromkeys(c for m in METRICS for c in m.columns))
    print(f"{args.n:,} buyers, {len(METRICS)} CUPED metrics, {len(columns)} columns; parquet {path}")

    hand = best_of(lambda: hand_written_duckdb(path, columns), args.repeat)
    ours = best_of(lambda: abkit.analyze(path, METRICS), args.repeat)
    print("\n1. DuckDB push-down on parquet")
    print(f"   hand-written DuckDB query of the same sums : {hand:7.3f} s")
    print(f"   abkit.analyze(path)                        : {ours:7.3f} s")
    print(f"   ratio                                      : {ours / hand:7.2f}x (target <= 1.2x)")

    import pandas as pd

    df = pd.read_parquet(path)
    df["variant"] = df["variant"].astype("category")
    mem = best_of(lambda: abkit.analyze(df, METRICS), args.repeat)
    print("\n2. In memory (pandas), same metrics")
    print(f"   abkit.analyze(DataFrame)                   : {mem:7.3f} s")
    try:
        tea = best_of(lambda: tea_tasting(df), args.repeat)
        print(f"   tea-tasting Experiment.analyze             : {tea:7.3f} s")
        print(f"   abkit is {tea / mem:.1f}x faster than tea-tasting")
    except ImportError:
        print("   tea-tasting not installed (pip install -e '.[bench]')")

    import statsmodels.formula.api as smf

    one = [METRICS[3]]
    sub = df[["variant", "refund_amount", "pre_refund_amount"]].copy()
    sub["treat"] = (sub["variant"] == "treatment").astype(np.float64)
    sub["prec"] = sub["pre_refund_amount"] - sub["pre_refund_amount"].mean()
    ols = best_of(lambda: smf.ols("refund_amount ~ treat + prec", sub).fit(cov_type="HC1"), 1)
    ab1 = best_of(lambda: abkit.analyze(df, one), args.repeat)
    print("\n3. One CUPED mean: abkit vs statsmodels OLS y ~ treat + x (HC1)")
    print(f"   statsmodels OLS                            : {ols:7.3f} s")
    print(f"   abkit.analyze                              : {ab1:7.3f} s")
    print(f"   abkit is {ols / ab1:.1f}x faster")


if __name__ == "__main__":
    main()
