"""Larger than memory: 200 million buyers in parquet, 6 CUPED metrics, peak memory.

The dataset (about 200M rows x 15 columns) is generated on demand by DuckDB
straight into parquet under benchmarks/_data/ (git-ignored; several GB), so
it never exists as a DataFrame. The analysis runs in a child process, and
the child's peak resident memory (ru_maxrss) is reported. Target: < 2 GB.

    python benchmarks/bench_scale.py            # 200M rows
    python benchmarks/bench_scale.py --rows 20000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
DATA = HERE / "_data"

# Buyer-level columns with a pre-period correlated through a latent activity.
GENERATE = """
COPY (
  WITH base AS (
    SELECT i AS buyer_id,
           CASE WHEN hash(i, 1) % 2 = 0 THEN 'control' ELSE 'treatment' END AS variant,
           -ln(random()) AS activity, random() AS u1, random() AS u2, random() AS u3, random() AS u4
    FROM range({rows}) t(i)
  )
  SELECT buyer_id, variant,
         1 + floor(activity * 2.5 * -ln(u1))::INTEGER                                  AS orders,
         1 + floor(activity * 2.5 * -ln(u2))::INTEGER                                  AS pre_orders,
         floor(activity * 0.4 * -ln(u3))::INTEGER                                      AS returns,
         floor(activity * 0.4 * -ln(u4))::INTEGER                                      AS pre_returns,
         floor(activity * 0.25 * -ln(random()))::INTEGER                                AS refunds,
         floor(activity * 0.25 * -ln(random()))::INTEGER                                AS pre_refunds,
         floor(activity * 0.3 * -ln(random()))::INTEGER                                 AS contacts,
         floor(activity * 0.3 * -ln(random()))::INTEGER                                 AS pre_contacts,
         round(activity * 20 * -ln(random()), 2)                                        AS refund_amount,
         round(activity * 20 * -ln(random()), 2)                                        AS pre_refund_amount,
         (random() < 0.3 + 0.1 * least(activity, 2))::INTEGER                          AS repeat_purchase_30d,
         (random() < 0.3 + 0.1 * least(activity, 2))::INTEGER                          AS pre_repeat_purchase_30d,
         CASE WHEN random() < 0.01 THEN round(50 * -ln(random()), 2) ELSE 0 END         AS abuse_loss,
         CASE WHEN random() < 0.01 THEN round(50 * -ln(random()), 2) ELSE 0 END         AS pre_abuse_loss
  FROM base
) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 1000000, COMPRESSION zstd)
"""

CHILD = """
import json, resource, sys, time
import abkit
sys.path.insert(0, {here!r})
from bench_engines import METRICS
t0 = time.perf_counter()
result = abkit.analyze({path!r}, METRICS)
elapsed = time.perf_counter() - t0
print(json.dumps({{"seconds": elapsed, "rows": sum(result.srm.observed),
                   "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "summary": result.summary()}}))
"""


def generate(rows: int) -> Path:
    import duckdb

    DATA.mkdir(exist_ok=True)
    path = DATA / f"scale_{rows}.parquet"
    if not path.exists():
        tmp = path.with_suffix(".tmp.parquet")
        t0 = time.perf_counter()
        duckdb.connect().execute(GENERATE.format(rows=rows, path=tmp))
        tmp.replace(path)
        print(
            f"generated {rows:,} rows in {time.perf_counter() - t0:.0f} s -> {path} "
            f"({path.stat().st_size / 2**30:.1f} GiB)"
        )
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000_000)
    args = ap.parse_args()
    path = generate(args.rows)
    code = CHILD.format(here=str(HERE), path=str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(res["summary"])
    print(
        f"\n{res['rows']:,} rows, 6 CUPED metrics: {res['seconds']:.1f} s, "
        f"peak memory {max(child_peak, res['peak_mb']):,.0f} MB (target < 2,048 MB)"
    )


if __name__ == "__main__":
    main()
