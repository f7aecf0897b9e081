"""Push-down engines give the same results as the in-memory path (1e-9 relative).

numpy (pandas/Arrow in memory) is the reference; DuckDB (parquet/CSV
paths, relations) and Spark (local mode) must agree on every number of
every metric type, with CUPED, dropped rows, derived columns and segments.
"""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_moments import FAR_METRICS, assert_same_effects, far_from_zero

import abkit
import abkit.sources

METRICS = [
    abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"), name="refund_rate", better="lower"),
    abkit.Ratio("contacts", "orders", name="contact_rate", better="lower"),
    abkit.Mean("refund_amount", "pre_refund_amount"),
    abkit.Mean("refund_amount", ["pre_refund_amount", "pre_orders"], name="refund_amount_lin"),
    abkit.Mean("time_to_refund_hours", dropna=True, better="lower"),
    abkit.Proportion("repeat_purchase_30d", "pre_repeat_purchase_30d"),
    abkit.NPS("nps_score"),  # a derived column
    abkit.Mean("refund_amount", "pre_refund_amount", cap=400.0, name="refund_amount_capped"),
]


@pytest.fixture(scope="module")
def sample():
    df = abkit.simulate.ab_data(30_000, arms=("control", "a", "b"), effects={"refund_rate": -0.05}, seed=4)
    df["variant"] = df["variant"].astype(str)
    df["market"] = np.where(df.buyer_id % 3 == 0, "DE", "FR")
    return df


@pytest.fixture(scope="module")
def parquet(sample, tmp_path_factory):
    path = tmp_path_factory.mktemp("eng") / "ab.parquet"
    pq.write_table(pa.Table.from_pandas(sample, preserve_index=False), path, row_group_size=4096)
    return path


def assert_same(got: pd.DataFrame, ref: pd.DataFrame, rtol=1e-9):
    key = ["metric", "variant"]
    got = got.sort_values(key).reset_index(drop=True)
    ref = ref.sort_values(key).reset_index(drop=True)
    assert list(got.columns) == list(ref.columns)
    for c in ref.columns:
        if pd.api.types.is_numeric_dtype(ref[c]):
            np.testing.assert_allclose(
                got[c].to_numpy(float), ref[c].to_numpy(float), rtol=rtol, atol=1e-14, equal_nan=True, err_msg=c
            )
        else:
            assert got[c].tolist() == ref[c].tolist(), c


def test_duckdb_parquet_equals_numpy(sample, parquet):
    ref = abkit.analyze(sample, METRICS, correction="holm").to_frame()
    got = abkit.analyze(parquet, METRICS, correction="holm").to_frame()
    assert_same(got, ref)


def test_winsorize_cap_is_computed_in_the_engine(sample, parquet):
    metric = [abkit.Mean("refund_amount", "pre_refund_amount", winsorize=0.99)]
    assert_same(abkit.analyze(parquet, metric).to_frame(), abkit.analyze(sample, metric).to_frame())
    assert abkit.sources.quantile(parquet, "pre_refund_amount", 0.99) == pytest.approx(
        np.quantile(sample.pre_refund_amount, 0.99), rel=1e-12
    )


def test_duckdb_csv_and_relation_equal_numpy(sample, parquet, tmp_path):
    import duckdb

    ref = abkit.analyze(sample, METRICS).to_frame()
    csv = tmp_path / "ab.csv"
    sample.to_csv(csv, index=False)
    assert_same(abkit.analyze(csv, METRICS).to_frame(), ref)
    rel = duckdb.connect().read_parquet(str(parquet))
    assert_same(abkit.analyze(rel, METRICS).to_frame(), ref)


def test_duckdb_segments_and_srm(sample, parquet):
    a = abkit.moments(parquet, METRICS, by="market")
    b = abkit.moments(sample, METRICS, by="market")
    for seg in ["DE", "FR"]:
        assert_same(
            abkit.analyze(a.segment(seg), METRICS).to_frame(), abkit.analyze(b.segment(seg), METRICS).to_frame()
        )
    assert abkit.analyze(parquet, METRICS).srm.p_value == pytest.approx(
        abkit.analyze(sample, METRICS).srm.p_value, rel=1e-12
    )


def test_duckdb_keeps_digits_of_huge_values(tmp_path):
    rng = np.random.default_rng(0)
    n = 100_000
    dev = rng.normal(0, 3.0, n)
    df = pd.DataFrame({"variant": np.repeat(["control", "treatment"], n // 2), "x": 1e12 + dev})
    df.to_parquet(tmp_path / "big.parquet")
    ms = abkit.moments(tmp_path / "big.parquet", [abkit.Mean("x")])
    m = ms.blocks[(("x",), False)]
    assert m.covariance("control")[0, 0] == pytest.approx(np.var(dev[: n // 2], ddof=1), rel=1e-6)


def test_duckdb_missing_values_error_and_dropna(sample, tmp_path):
    df = sample.copy()
    df.loc[::7, "refund_amount"] = np.nan
    df.to_parquet(tmp_path / "nan.parquet")
    with pytest.raises(abkit.DataError, match="column 'refund_amount' has .* missing"):
        abkit.analyze(tmp_path / "nan.parquet", [abkit.Mean("refund_amount")])
    got = abkit.analyze(tmp_path / "nan.parquet", [abkit.Mean("refund_amount", dropna=True)]).to_frame()
    ref = abkit.analyze(df, [abkit.Mean("refund_amount", dropna=True)]).to_frame()
    assert_same(got, ref)
    assert got.dropped_control.iloc[0] == df[df.variant == "control"].refund_amount.isna().sum()


def test_duckdb_errors_name_the_problem(parquet, tmp_path):
    with pytest.raises(abkit.DataError, match=r"column 'refundz' not found in .*ab.parquet.*Did you mean 'refunds'"):
        abkit.analyze(parquet, [abkit.Ratio("refundz", "orders")])
    with pytest.raises(abkit.DataError, match="column 'market' is not numeric"):
        abkit.analyze(parquet, [abkit.Mean("market")])
    bad = tmp_path / "corrupt.parquet"
    bad.write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(abkit.DataError, match="could not read .*corrupt.parquet"):
        abkit.analyze(bad, [abkit.Mean("x")])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(abkit.DataError, match="empty.csv"):
        abkit.analyze(empty, [abkit.Mean("x")])
    with pytest.raises(abkit.DataError, match="does not exist"):
        abkit.analyze(tmp_path / "nope.parquet", [abkit.Mean("x")])


def test_merged_partition_moments_equal_whole(sample, tmp_path):
    for i in range(3):
        sample.iloc[i::3].to_parquet(tmp_path / f"part{i}.parquet")
    merged = sum(
        (abkit.moments(tmp_path / f"part{i}.parquet", METRICS) for i in range(1, 3)),
        abkit.moments(tmp_path / "part0.parquet", METRICS),
    )
    assert_same(abkit.analyze(merged, METRICS).to_frame(), abkit.analyze(sample, METRICS).to_frame())
    assert_same(abkit.analyze(tmp_path, METRICS).to_frame(), abkit.analyze(sample, METRICS).to_frame())


def test_duckdb_effects_near_1e12_equal_the_shifted_data(tmp_path):
    # The push-down keeps the shift K and the offset S / n apart: the effect on values near 1e12 equals the
    # effect on the same data shifted to zero to 1e-9 (before: ~1e-4 relative, the ulp of a mean near 1e12).
    import duckdb

    far, shifted = far_from_zero()
    ref = abkit.analyze(shifted, FAR_METRICS).to_frame()
    far.to_parquet(tmp_path / "far.parquet")
    assert_same_effects(abkit.analyze(tmp_path / "far.parquet", FAR_METRICS).to_frame(), ref)
    con = duckdb.connect()
    assert_same_effects(abkit.analyze(con.from_df(far), FAR_METRICS).to_frame(), ref)


def test_the_push_down_centres_a_column_only_where_its_mean_dwarfs_its_spread():
    # K is the first rows' mean where mean^2 > variance (raw sums would lose digits there: the test above);
    # elsewhere K = 0 and the engine's sums skip the subtraction, at a loss of under a third of a digit.
    import duckdb
    import narwhals as nw

    from abkit.engines import _shifts

    df = pd.DataFrame(
        {
            "flag": np.arange(1000) % 2 * 1.0,  # mean 0.5, sd 0.5: mean^2 = var, not centred
            "counts": np.arange(1000) % 5 * 1.0,  # mean 2, var 2: centred
            "far": 1e12 + np.arange(1000.0),
            "empty": np.full(1000, np.nan),
        }
    )
    shift = _shifts(nw.from_native(duckdb.connect().from_df(df)), list(df.columns))
    assert shift == {"flag": 0.0, "counts": 2.0, "far": 1e12 + 499.5, "empty": 0.0}


# ---------------------------------------------------------------------------- in-memory frames through DuckDB
@pytest.fixture
def through_duckdb(monkeypatch):
    """Send every eligible in-memory frame to DuckDB, and count how many went."""
    calls = []
    real = abkit.sources.frame_relation

    def counting(frame, columns):
        calls.append(len(columns))
        return real(frame, columns)

    monkeypatch.setattr(abkit.sources, "ENGINE_MIN_ROWS", 0)
    monkeypatch.setattr(abkit.sources, "frame_relation", counting)
    return calls


def _numpy_kernel(fn):
    """``fn()`` with every in-memory frame on the numpy kernel."""
    saved = abkit.sources.ENGINE_MIN_ROWS
    abkit.sources.ENGINE_MIN_ROWS = float("inf")
    try:
        return fn()
    finally:
        abkit.sources.ENGINE_MIN_ROWS = saved


def test_large_frames_through_duckdb_equal_the_numpy_kernel(sample, through_duckdb):
    df = sample.copy()
    df.loc[::11, "variant"] = None  # missing arms are counted on both paths
    for data in (
        df,
        df.assign(variant=df.variant.astype("category")),
        pa.Table.from_pandas(df),
        pa.Table.from_pandas(df.assign(variant=df.variant.astype("category"))),
    ):
        ref = _numpy_kernel(lambda data=data: abkit.analyze(data, METRICS, correction="holm"))
        n_calls = len(through_duckdb)
        got = abkit.analyze(data, METRICS, correction="holm")
        assert len(through_duckdb) == n_calls + 1
        # the same rows in the same order (arms in the numpy kernel's order), the same numbers
        pd.testing.assert_frame_equal(got.to_frame(), ref.to_frame(), rtol=1e-9)
        assert got.missing_variant == ref.missing_variant > 0
        assert got.srm.p_value == pytest.approx(ref.srm.p_value, rel=1e-12)
        seg = abkit.moments(data, METRICS, by="market")
        seg_ref = _numpy_kernel(lambda data=data: abkit.moments(data, METRICS, by="market"))
        assert list(seg.rows) == list(seg_ref.rows) and seg.rows == seg_ref.rows
        for s in seg_ref.segments:
            pd.testing.assert_frame_equal(
                abkit.analyze(seg.segment(s), METRICS).to_frame(),
                abkit.analyze(seg_ref.segment(s), METRICS).to_frame(),
                rtol=1e-9,
            )
    far, shifted = far_from_zero()
    assert_same_effects(abkit.analyze(far, FAR_METRICS).to_frame(), abkit.analyze(shifted, FAR_METRICS).to_frame())


def test_frames_duckdb_cannot_read_like_numpy_stay_on_the_numpy_kernel(sample, through_duckdb):
    df = sample.head(2000).copy()
    # unit=, object keys and object values keep the numpy kernel (its conversions and messages)
    abkit.analyze(df, METRICS[:2], unit="buyer_id")
    abkit.analyze(df.assign(variant=df.variant.astype(object)), METRICS[:2])
    abkit.analyze(df.assign(orders=df.orders.astype(str).astype(object)), METRICS[:2])
    assert through_duckdb == []
    # bad data found by DuckDB is reported by the numpy kernel, in its words
    bad = df.copy()
    bad.loc[::10, "refund_amount"] = np.nan
    with pytest.raises(abkit.DataError, match=r"column 'refund_amount' has 200 missing \(NaN/null\) values out of"):
        abkit.analyze(bad, [abkit.Mean("refund_amount")])
    assert len(through_duckdb) == 1
    neg = df.assign(orders=np.where(np.arange(len(df)) % 100 == 3, -2, df.orders))
    with pytest.raises(abkit.DataError, match="column 'orders' has 20 negative values"):
        abkit.analyze(neg, METRICS[1:2])


# ---------------------------------------------------------------------------- Spark
def test_spark_effects_near_1e12_equal_the_shifted_data(spark):
    far, shifted = far_from_zero()
    ref = abkit.analyze(shifted, FAR_METRICS).to_frame()
    assert_same_effects(abkit.analyze(spark.createDataFrame(far), FAR_METRICS).to_frame(), ref)


def test_spark_equals_numpy(spark, sample, parquet):
    sdf = spark.read.parquet(str(parquet))
    ref = abkit.analyze(sample, METRICS, correction="bh").to_frame()
    assert_same(abkit.analyze(sdf, METRICS, correction="bh").to_frame(), ref)
    seg = abkit.moments(sdf, METRICS, by="market").segment("DE")
    assert_same(
        abkit.analyze(seg, METRICS).to_frame(),
        abkit.analyze(abkit.moments(sample, METRICS, by="market").segment("DE"), METRICS).to_frame(),
    )


def test_spark_table_by_name(spark, parquet):
    spark.read.parquet(str(parquet)).createOrReplaceTempView("ab_buyers")
    got = abkit.analyze(abkit.engines.table("ab_buyers", engine="spark"), METRICS[:2]).to_frame()
    ref = abkit.analyze(parquet, METRICS[:2]).to_frame()
    assert_same(got, ref)


def test_spark_unit_integrity_missing_and_negative_checks(spark, sample, tmp_path):
    """The integrity query, the entirely-missing and the negative-value checks run inside Spark too."""
    df = sample.head(3000).copy()
    df["buyer_id"] = "b" + df["buyer_id"].astype(str)
    other = df.head(40).assign(variant=lambda d: np.where(d.variant == "control", "a", "control"))
    leaky = pd.concat([df, other, df.iloc[100:107]], ignore_index=True)
    leaky.to_parquet(tmp_path / "leaky.parquet")
    sdf = spark.read.parquet(str(tmp_path / "leaky.parquet"))
    got = abkit.analyze(sdf, METRICS[:3], unit="buyer_id").integrity
    ref = abkit.analyze(leaky, METRICS[:3], unit="buyer_id").integrity
    assert got == ref and got.leaked_units == 40 and got.duplicate_rows == 7
    bad = df.assign(orders=np.where(np.arange(len(df)) == 5, -1, df.orders), pre_refund_amount=np.nan)
    bad.to_parquet(tmp_path / "bad.parquet")
    sbad = spark.read.parquet(str(tmp_path / "bad.parquet"))
    with pytest.raises(abkit.DataError, match="column 'orders' has 1 negative value"):
        abkit.analyze(sbad, METRICS[1:2])
    with pytest.raises(abkit.DataError, match="column 'pre_refund_amount' is entirely missing"):
        abkit.analyze(sbad, [abkit.Mean("refund_amount", "pre_refund_amount", dropna=True)])


def test_spark_aggregation_runs_with_jit_sized_generated_code(spark, parquet, monkeypatch):
    """The one aggregation statement runs with spark.sql.codegen.hugeMethodLimit <= 8000 (issue 16.1).

    Above HotSpot's 8,000-byte limit a generated method is never JIT-compiled and runs interpreted: with
    the default 65,535 the push-down grew 11-24x from 5 to 40 metrics. The user's setting comes back:
    unset stays unset, an explicit value is restored, a lower one is kept.
    """
    key = "spark.sql.codegen.hugeMethodLimit"
    seen = []
    collect = abkit.engines._collect

    def spy(frame, source):
        seen.append(spark.conf.get(key))
        return collect(frame, source)

    monkeypatch.setattr(abkit.engines, "_collect", spy)
    sdf = spark.read.parquet(str(parquet))
    ref = abkit.analyze(parquet, METRICS[:3]).to_frame()
    for user_setting, during in ((None, "8000"), ("20000", "8000"), ("4000", "4000")):
        if user_setting is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, user_setting)
        seen.clear()
        assert_same(abkit.analyze(sdf, METRICS[:3]).to_frame(), ref)
        assert seen[-1] == during  # the aggregation's collect: the last one
        assert spark.conf.get(key, None) == user_setting
    spark.conf.unset(key)


# ---------------------------------------------------------------------------- layering
def _imports_of(module: str) -> set[str]:
    """Every abkit module ``abkit/<module>.py`` imports, at the top or inside a function."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(abkit.__file__).parent / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.update([node.module] if node.module else [a.name for a in node.names])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("abkit."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("abkit."))
    return {m.split(".")[0] for m in found}


def test_data_layer_imports_point_one_way():
    # sources -> engines -> integrity -> columns -> errors, data_paths and moments below them all: no module imports one
    # above it, not even lazily inside a function (the circle engines <-> integrity <-> sources is gone)
    allowed = {
        "errors": set(),
        "columns": {"errors"},
        "data_paths": {"errors"},
        "moments": {"errors"},
        "integrity": {"columns", "errors"},
        "engines": {"columns", "data_paths", "errors", "integrity", "moments"},
        "sources": {"columns", "engines", "errors", "integrity", "metrics", "moments"},
    }
    for module, below in allowed.items():
        assert _imports_of(module) <= below, (module, _imports_of(module) - below)
