"""Engines side by side, in one run: abkit vs hand-written DuckDB SQL vs tea-tasting, and the metric-count curve.

Part A, 10M buyers, six CUPED metrics (``bench_ab.METRICS``: four ratios with
their pre-period ratio, a mean, a proportion), 14 columns, two arms:

1. in memory (a pandas DataFrame): ``abkit.analyze(df, METRICS)`` against a
   hand-written DuckDB query over the same frame that computes only the
   needed sums (per arm: the count, the 14 column sums and the 37
   cross-products the metrics' estimators read), nothing else. abkit does
   everything on top (missing-value and sign checks, shifts, the
   estimators, SRM). Target: <= 1.2x. Also shown: abkit's numpy kernel
   (what small frames use) and tea-tasting on the same frame;
2. a parquet file: ``abkit.analyze(path)`` against the same hand-written
   sums over the file.

Part B, the metric-count curve: 1M buyers, 5, 10, 20, 40 and 80 CUPED
ratio metrics (``y_i / orders`` with ``pre_y_i / pre_orders``; every metric
shares the two denominators) on every engine: the numpy kernel, an
in-memory frame (abkit's automatic choice), DuckDB over parquet, Spark in
local mode over parquet, the hand-written DuckDB sums, tea-tasting. Target:
40 metrics at most 10x the time of 5 on every engine. The curve is also
drawn (``--plot``, SVG). ``--baseline DIR`` runs the same curve with
another abkit checkout (e.g. the code before this change) in a child
process, for a before/after figure.

Timings are the best of ``--repeat`` runs in one process; the machine's load
average is printed before and after, because the ratios are what matter
on a shared machine. Data are generated on demand under benchmarks/_data/
(git-ignored) and reused.

    python benchmarks/bench_engines.py                   # everything
    python benchmarks/bench_engines.py --part scaling --no-spark
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import abkit
import abkit.sources

HERE = Path(__file__).parent
DATA = HERE / "_data"
sys.path.insert(0, str(HERE))

from bench_ab import METRICS  # noqa: E402 - the six CUPED metrics of the in-memory benchmark

COUNTS = (5, 10, 20, 40, 80)


# ---------------------------------------------------------------------------- helpers
def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def machine() -> str:
    import duckdb

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {mem:.0f} GiB, {platform.machine()}, Python {platform.python_version()}, "
        f"numpy {np.__version__}, pandas {pd.__version__}, duckdb {duckdb.__version__}"
    )


def load() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg())


def jvm_cpu_seconds(session) -> float:
    """CPU seconds (user + system) the local Spark JVM has used so far (Linux /proc; NaN elsewhere).

    Unlike wall time, this hardly moves with other jobs' load on a shared machine.
    """
    try:
        pid = session.sparkContext._gateway.proc.pid
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (AttributeError, OSError, ValueError, IndexError):
        return float("nan")


def needed_pairs(metrics) -> list[tuple[str, str]]:
    """The column pairs the metrics declare (what the hand-written query multiplies)."""
    pairs: dict = {}
    for m in metrics:
        for block in m.covariance_blocks:
            for i, a in enumerate(block):
                for b in block[i:]:
                    pairs[(a, b)] = None
    return list(pairs)


def hand_written_sql(source: str, metrics, variant: str = "variant") -> str:
    """Count, column sums and the declared cross-products per arm: the sums any exact analysis needs."""
    columns = list(dict.fromkeys(c for m in metrics for c in m.columns))
    sums = [f"sum({c}::DOUBLE)" for c in columns]
    cross = [f"sum({a}::DOUBLE * {b}::DOUBLE)" for a, b in needed_pairs(metrics)]
    return f"SELECT {variant}, count(*), {', '.join(sums + cross)} FROM {source} GROUP BY {variant}"


def on_numpy_kernel(fn):
    saved = abkit.sources.ENGINE_MIN_ROWS
    abkit.sources.ENGINE_MIN_ROWS = float("inf")
    try:
        return fn()
    finally:
        abkit.sources.ENGINE_MIN_ROWS = saved


def tea_metrics_ab():
    import tea_tasting as tt

    return {
        "refund_rate": tt.RatioOfMeans("refunds", "orders", "pre_refunds", "pre_orders"),
        "contact_rate": tt.RatioOfMeans("contacts", "orders", "pre_contacts", "pre_orders"),
        "return_rate": tt.RatioOfMeans("returns", "orders", "pre_returns", "pre_orders"),
        "refund_amount": tt.Mean("refund_amount", "pre_refund_amount"),
        "repeat": tt.Mean("repeat_purchase_30d", "pre_repeat_purchase_30d"),
        "abuse": tt.RatioOfMeans("abuse_loss", "orders", "pre_abuse_loss", "pre_orders"),
    }


# ---------------------------------------------------------------------------- part A
def ab_sample(n: int) -> Path:
    DATA.mkdir(exist_ok=True)
    path = DATA / f"ab_{n}.parquet"
    if not path.exists():
        df = abkit.simulate.ab_data(n, effects={"refund_rate": -0.05}, seed=1)
        df["variant"] = df["variant"].astype(str)
        tmp = path.with_suffix(".tmp")
        df.to_parquet(tmp, index=False, row_group_size=1 << 20)
        tmp.replace(path)
    return path


def part_a(n: int, repeat: int) -> dict:
    import duckdb

    path = ab_sample(n)
    columns = list(dict.fromkeys(c for m in METRICS for c in m.columns))
    df = pd.read_parquet(path, columns=["variant", *columns])
    print(
        f"\nA. {n:,} buyers, {len(METRICS)} CUPED metrics, {len(columns)} columns, "
        f"{len(needed_pairs(METRICS))} declared pairs ({load()})"
    )
    con = duckdb.connect()
    con.register("frame", df)
    frame_sql = hand_written_sql("frame", METRICS)
    file_sql = hand_written_sql(f"read_parquet('{path}')", METRICS)
    out = {}
    out["hand_frame"] = best_of(lambda: con.sql(frame_sql).fetchall(), repeat)
    out["abkit_frame"] = best_of(lambda: abkit.analyze(df, METRICS), repeat)
    out["abkit_numpy"] = best_of(lambda: on_numpy_kernel(lambda: abkit.analyze(df, METRICS)), repeat)
    out["hand_file"] = best_of(lambda: con.sql(file_sql).fetchall(), repeat)
    out["abkit_file"] = best_of(lambda: abkit.analyze(path, METRICS), repeat)
    try:
        import tea_tasting as tt

        experiment = tt.Experiment(tea_metrics_ab())
        out["tea_frame"] = best_of(lambda: experiment.analyze(df, control="control"), repeat)
    except ImportError:
        out["tea_frame"] = float("nan")
    print(f"   in memory  hand-written DuckDB sums over the frame : {out['hand_frame']:7.3f} s")
    print(
        f"              abkit.analyze(DataFrame)                : {out['abkit_frame']:7.3f} s   "
        f"{out['abkit_frame'] / out['hand_frame']:.2f}x the hand-written sums (target <= 1.2x)"
    )
    print(f"              abkit, numpy kernel forced              : {out['abkit_numpy']:7.3f} s")
    print(
        f"              tea-tasting Experiment.analyze          : {out['tea_frame']:7.3f} s   "
        f"abkit {out['tea_frame'] / out['abkit_frame']:.1f}x faster"
    )
    print(f"   parquet    hand-written DuckDB sums over the file  : {out['hand_file']:7.3f} s")
    print(
        f"              abkit.analyze(path)                     : {out['abkit_file']:7.3f} s   "
        f"{out['abkit_file'] / out['hand_file']:.2f}x"
    )
    return out


# ---------------------------------------------------------------------------- part B
def scaling_metrics(k: int):
    return [abkit.Ratio(f"y{i}", "orders", covariates=(f"pre_y{i}", "pre_orders"), name=f"rate_{i}") for i in range(k)]


def tea_scaling_metrics(k: int):
    import tea_tasting as tt

    return {f"rate_{i}": tt.RatioOfMeans(f"y{i}", "orders", f"pre_y{i}", "pre_orders") for i in range(k)}


def scaling_sample(n: int, k: int) -> Path:
    """``n`` buyers with orders, pre_orders and ``k`` count columns y_i / pre_y_i, seeded, as parquet."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"scaling_{n}_{k}.parquet"
    if not path.exists():
        import pyarrow as pa
        import pyarrow.parquet as pq

        rng = np.random.default_rng(7)
        activity = rng.exponential(1.0, n)
        cols = {
            "variant": np.where(rng.random(n) < 0.5, "control", "treatment"),
            "orders": 1 + rng.poisson(2.0 * activity),
            "pre_orders": 1 + rng.poisson(2.0 * activity),
        }
        for i in range(k):
            rate = 0.05 + 0.3 * rng.random()
            cols[f"y{i}"] = rng.poisson(rate * activity)
            cols[f"pre_y{i}"] = rng.poisson(rate * activity)
        tmp = path.with_suffix(".tmp")
        pq.write_table(pa.table(cols), tmp, row_group_size=1 << 18)
        tmp.replace(path)
    return path


ENGINES = ("numpy kernel", "in memory", "DuckDB (parquet)", "Spark local[2]", "hand-written DuckDB sums", "tea-tasting")


def part_b(n: int, repeat: int, spark: bool, tea: bool, counts=COUNTS, only=None) -> dict:
    import duckdb

    path = scaling_sample(n, max(counts))
    df = pd.read_parquet(path)
    print(f"\nB. metric-count curve: {n:,} buyers, CUPED ratio metrics sharing orders / pre_orders ({load()})")
    con = duckdb.connect()
    con.register("frame", df)
    session = None
    if spark:
        session = abkit.engines.spark_session(
            {
                "spark.master": "local[2]",
                "spark.ui.enabled": "false",
                "spark.sql.shuffle.partitions": "2",
                "spark.driver.memory": "4g",
            }
        )
        sdf = session.read.parquet(str(path)).cache()
        sdf.count()
    times = {e: {} for e in ENGINES}
    spark_cpu: dict[int, float] = {}  # JVM CPU seconds, best of the repeats
    spark_first: dict[int, float] = {}  # the first run of each count: code generation and JIT compilation included
    runs = {}
    for k in counts:
        metrics = scaling_metrics(k)
        sql = hand_written_sql("frame", metrics)
        run = {
            "numpy kernel": lambda m=metrics: on_numpy_kernel(lambda: abkit.analyze(df, m)),
            "in memory": lambda m=metrics: abkit.analyze(df, m),
            "DuckDB (parquet)": lambda m=metrics: abkit.analyze(path, m),
            "hand-written DuckDB sums": lambda q=sql: con.sql(q).fetchall(),
        }
        if session is not None:
            run["Spark local[2]"] = lambda m=metrics: abkit.analyze(sdf, m)
        if tea:
            experiment = _tea_experiment(k)
            run["tea-tasting"] = lambda e=experiment: e.analyze(df, control="control")
        runs[k] = run
    # the repeats go round every metric count (5, 10, ..., 80, 5, 10, ...), so that a burst of other jobs'
    # load on a shared machine hits every count alike instead of one; the best of the repeats is kept
    for rep in range(repeat):
        for k in counts:
            for engine in ENGINES:
                if only and engine not in only:
                    continue
                slow = engine == "tea-tasting" and k >= 40
                if engine in runs[k] and not (slow and rep > 0):
                    cpu = jvm_cpu_seconds(session) if engine == "Spark local[2]" else 0.0
                    t = best_of(runs[k][engine], 1)
                    times[engine][k] = min(t, times[engine].get(k, t))
                    if engine == "Spark local[2]":
                        cpu = jvm_cpu_seconds(session) - cpu
                        spark_cpu[k] = min(cpu, spark_cpu.get(k, cpu))
                        spark_first.setdefault(k, t)
            if rep == repeat - 1:
                print(
                    f"   {k:3d} metrics: " + ", ".join(f"{e} {times[e][k]:.3f} s" for e in ENGINES if k in times[e]),
                    flush=True,
                )
    print(
        "   40 / 5 metrics: "
        + ", ".join(f"{e} {times[e][40] / times[e][5]:.1f}x" for e in ENGINES if 40 in times[e] and 5 in times[e])
        + " (target <= 10x)"
    )
    if spark_cpu:
        print("   Spark JVM CPU seconds: " + ", ".join(f"{k}: {v:.2f}" for k, v in spark_cpu.items()), end="")
        print(f" (40 / 5: {spark_cpu[40] / spark_cpu[5]:.1f}x)" if 40 in spark_cpu and 5 in spark_cpu else "")
        print("   Spark first run of each count: " + ", ".join(f"{k}: {v:.2f} s" for k, v in spark_first.items()))
    if tea and 40 in times["tea-tasting"] and 40 in times["in memory"]:
        print(
            f"   tea-tasting / abkit in memory at 40 metrics: "
            f"{times['tea-tasting'][40] / times['in memory'][40]:.1f}x (target >= 3x)"
        )
    print(f"   ({load()})")
    return {e: t for e, t in times.items() if t}


def _tea_experiment(k):
    import tea_tasting as tt

    return tt.Experiment(tea_scaling_metrics(k))


BASELINE_CHILD = """
import json, sys, time
sys.path.insert(0, {here!r})
import duckdb, pandas as pd, abkit
from bench_engines import scaling_metrics, best_of
df = pd.read_parquet({path!r})
rel = duckdb.connect().from_df(df)
out = {{"in memory": {{}}, "DuckDB (parquet)": {{}}}}
for k in {counts!r}:
    m = scaling_metrics(k)
    out["in memory"][k] = best_of(lambda: abkit.analyze(df, m), 1)
    out["DuckDB (parquet)"][k] = best_of(lambda: abkit.analyze({path!r}, m), 1)
    print(k, out["in memory"][k], out["DuckDB (parquet)"][k], file=sys.stderr, flush=True)
print(json.dumps(out))
"""


def baseline(checkout: str, n: int, counts) -> dict:
    """The curve of another abkit checkout (in a child process with that checkout first on the path)."""
    path = scaling_sample(n, max(COUNTS))
    code = BASELINE_CHILD.format(here=str(HERE), path=str(path), counts=tuple(counts))
    env = dict(os.environ, PYTHONPATH=checkout)
    # -P: PYTHONPATH, not the working directory (a checkout of its own), decides which abkit the child imports
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True, env=env)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return {f"{e} (before)": {int(k): v for k, v in t.items()} for e, t in res.items()}


def plot(times: dict, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for engine, t in times.items():
        ks = sorted(t)
        style = "--" if "before" in engine else ("-." if "hand-written" in engine else "-")
        ax.plot(ks, [t[k] for k in ks], style, marker="o", label=engine)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(COUNTS, [str(k) for k in COUNTS])
    ax.set_xlabel("CUPED ratio metrics")
    ax.set_ylabel("seconds (log scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, format=out.suffix.lstrip(".") or "svg", metadata={"Date": None} if out.suffix == ".svg" else None)
    print(f"   plot: {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("all", "memory", "scaling"), default="all")
    ap.add_argument("--n", type=int, default=10_000_000, help="buyers in part A")
    ap.add_argument("--scale-n", type=int, default=1_000_000, help="buyers in part B")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--no-tea", action="store_true")
    ap.add_argument("--counts", default=",".join(map(str, COUNTS)), help="metric counts of part B, e.g. 5,10,20,40")
    ap.add_argument("--engines", help=f"only these engines in part B, comma-separated, from: {', '.join(ENGINES)}")
    ap.add_argument("--baseline", help="another abkit checkout to run the curve with (before/after)")
    ap.add_argument("--baseline-counts", default="5,10,20,40")
    ap.add_argument("--plot", default=str(HERE / "metric_scaling.svg"))
    ap.add_argument("--json", help="write every figure to this file")
    args = ap.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}; {machine()}; {load()}")
    figures = {}
    if args.part in ("all", "memory"):
        figures["A"] = part_a(args.n, args.repeat)
    if args.part in ("all", "scaling"):
        only = [e.strip() for e in args.engines.split(",")] if args.engines else None
        if only and not set(only) <= set(ENGINES):
            ap.error(f"--engines: choose from {', '.join(ENGINES)}")
        counts = tuple(int(k) for k in args.counts.split(","))
        times = part_b(args.scale_n, args.repeat, not args.no_spark, not args.no_tea, counts, only)
        if args.baseline:
            counts = [int(k) for k in args.baseline_counts.split(",")]
            before = baseline(args.baseline, args.scale_n, counts)
            for e, t in before.items():
                print(f"   {e}: " + ", ".join(f"{k}: {v:.3f} s" for k, v in t.items()))
            times.update(before)
        figures["B"] = {e: {str(k): v for k, v in t.items()} for e, t in times.items()}
        if args.plot:
            plot(times, Path(args.plot), f"abkit.analyze, {args.scale_n:,} buyers: time vs number of metrics")
    print(f"\ndone; {load()}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
