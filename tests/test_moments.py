"""The moments layer: exact merges, precision, sources agree, missing values."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import abkit
from abkit.moments import Moments


def _frame(n=5000, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "variant": rng.choice(["control", "treatment", "other"], n),
            "seg": rng.choice(["new", "repeat"], n),
            "a": rng.lognormal(2, 1, n),
            "b": rng.poisson(3, n).astype(float),
            "c": rng.normal(0, 1, n),
        }
    )


def _direct(df, cols, arm):
    """Independent reference: numpy on the arm's rows."""
    x = df.loc[df.variant == arm, cols].to_numpy()
    return len(x), x.mean(0), np.cov(x, rowvar=False, ddof=0) * len(x)


def test_moments_match_numpy_per_arm():
    df = _frame()
    # c (normal) may be negative: a ratio numerator only with nonnegative=False
    metrics = [abkit.Mean("a"), abkit.Ratio("c", "b", nonnegative=False)]
    m = abkit.moments(df, metrics, joint=[("a", "c", "b")]).blocks[(("a", "c", "b"), False)]
    assert m.complete
    for arm in ["control", "treatment", "other"]:
        n, mean, com = _direct(df, ["a", "c", "b"], arm)
        g = m.group_index(arm)
        assert m.n[g] == n
        np.testing.assert_allclose(m.mean[g], mean, rtol=1e-12)
        np.testing.assert_allclose(m.comoment[g], com, rtol=1e-10)


def test_moments_hold_only_the_declared_pairs():
    # Mean(a) and Ratio(c / b) declare (a, a) and the pairs of {c, b}: the cross pairs of a with c and b are
    # neither computed nor invented, and asking for them is an error naming the pair
    df = _frame()
    metrics = [abkit.Mean("a"), abkit.Ratio("c", "b", nonnegative=False)]
    m = abkit.moments(df, metrics).blocks[(("a", "c", "b"), False)]
    assert not m.complete
    assert {(m.columns[i], m.columns[j]) for i, j in m.pairs} == {("a", "a"), ("c", "c"), ("c", "b"), ("b", "b")}
    for arm in ["control", "treatment", "other"]:
        n, mean, com = _direct(df, ["c", "b"], arm)
        g = m.group_index(arm)
        np.testing.assert_allclose(m.comoment_matrix(g, [1, 2]), com, rtol=1e-10)
    with pytest.raises(abkit.AbkitError, match="no co-moment of columns 'a' and 'c'"):
        _ = m.comoment
    with pytest.raises(abkit.AbkitError, match="no co-moment of columns 'a' and 'b'"):
        abkit.moments(df, metrics).block_for(("a", "b"), False)
    with pytest.raises(abkit.AbkitError, match="no co-moment"):
        m.covariance("control")
    # each metric's own block is complete and equals a dense aggregation of just its columns
    for metric in metrics:
        own = abkit.moments(df, metrics).block_for(metric.columns, False)
        alone = abkit.moments(df, [metric]).block_for(metric.columns, False)
        assert own.complete
        np.testing.assert_allclose(own.comoment, alone.comoment, rtol=1e-12)
        np.testing.assert_allclose(own.mean, alone.mean, rtol=1e-14)


def test_merge_rejects_moments_of_other_pairs():
    df = _frame()
    metrics = [abkit.Mean("a"), abkit.Ratio("c", "b", nonnegative=False)]
    sparse = abkit.moments(df, metrics)
    dense = abkit.moments(df, metrics, joint=[("a", "c", "b")])
    with pytest.raises(abkit.AbkitError, match="different column pairs"):
        sparse + dense


def test_merge_of_partitions_equals_whole():
    df = _frame()
    metrics = [abkit.Mean("a", "c"), abkit.Ratio("b", "a")]
    whole = abkit.moments(df, metrics)
    parts = [abkit.moments(df.iloc[i::3], metrics) for i in range(3)]
    merged = parts[0] + parts[1] + parts[2]
    for key, m in whole.blocks.items():
        mm = merged.blocks[key].select(groups=m.groups)
        np.testing.assert_allclose(mm.n, m.n)
        np.testing.assert_allclose(mm.mean, m.mean, rtol=1e-12)
        assert mm.pairs == m.pairs
        np.testing.assert_allclose(mm.pair_comoment, m.pair_comoment, rtol=1e-10)
    assert merged.rows == whole.rows
    r1 = abkit.analyze(whole, metrics).to_frame()
    r2 = abkit.analyze(merged, metrics).to_frame()
    pd.testing.assert_frame_equal(r1, r2, rtol=1e-10)


def test_merge_with_an_arm_missing_on_one_side():
    df = _frame()
    left = df[df.variant != "other"]
    right = df[df.variant == "other"]
    metrics = [abkit.Mean("a")]
    merged = abkit.moments(left, metrics) + abkit.moments(right, metrics)
    whole = abkit.moments(df, metrics)
    key = (("a",), False)
    np.testing.assert_allclose(
        merged.blocks[key].select(groups=whole.blocks[key].groups).comoment, whole.blocks[key].comoment, rtol=1e-10
    )


def test_large_values_keep_their_digits():
    # Refund totals around 1e12 with unit-level spread of a few units: raw
    # sums of squares would lose every digit of the variance.
    rng = np.random.default_rng(3)
    n = 200_000
    base = 1e12
    dev = rng.normal(0, 3.0, n)
    df = pd.DataFrame({"variant": np.repeat(["control", "treatment"], n // 2), "x": base + dev})
    m = abkit.moments(df, [abkit.Mean("x")]).blocks[(("x",), False)]
    for arm, sl in (("control", slice(0, n // 2)), ("treatment", slice(n // 2, n))):
        exact_var = np.var(dev[sl], ddof=1)
        got = m.covariance(arm)[0, 0]
        assert got == pytest.approx(exact_var, rel=1e-6)


def test_parquet_csv_arrow_and_pandas_agree(tmp_path):
    df = _frame()
    metrics = [abkit.Mean("a", "c"), abkit.Ratio("b", "a", covariates=("c", "a"), nonnegative=False)]
    pq.write_table(pa.Table.from_pandas(df), tmp_path / "d.parquet", row_group_size=700)
    df.to_csv(tmp_path / "d.csv", index=False)
    ref = abkit.analyze(df, metrics).to_frame()
    for data in (tmp_path / "d.parquet", str(tmp_path / "d.csv"), pa.Table.from_pandas(df)):
        got = abkit.analyze(data, metrics).to_frame()
        pd.testing.assert_frame_equal(
            got.sort_values(["metric", "variant"]).reset_index(drop=True),
            ref.sort_values(["metric", "variant"]).reset_index(drop=True),
            rtol=1e-9,
        )


def test_segments_by_column_equal_filtered_frames():
    df = _frame()
    metrics = [abkit.Mean("a", "c")]
    ms = abkit.moments(df, metrics, by="seg")
    assert set(ms.segments) == {"new", "repeat"}
    for seg in ["new", "repeat"]:
        a = abkit.analyze(ms.segment(seg), metrics).to_frame()
        b = abkit.analyze(df[df.seg == seg], metrics).to_frame()
        pd.testing.assert_frame_equal(
            a.sort_values("variant").reset_index(drop=True), b.sort_values("variant").reset_index(drop=True), rtol=1e-10
        )


def test_missing_values_error_names_column_and_fix():
    df = _frame()
    df.loc[::10, "a"] = np.nan
    with pytest.raises(abkit.DataError, match=r"column 'a' has 500 missing.*dropna=True"):
        abkit.analyze(df, [abkit.Mean("a")])


def test_dropna_drops_and_counts_per_arm():
    df = _frame()
    df.loc[::10, "a"] = np.nan
    res = abkit.analyze(df, [abkit.Mean("a", dropna=True), abkit.Mean("b")]).to_frame()
    dropped_expected = df[df.a.isna()].variant.value_counts()
    row = res[(res.metric == "a") & (res.variant == "treatment")].iloc[0]
    assert row.dropped_control == dropped_expected["control"]
    assert row.dropped_treatment == dropped_expected["treatment"]
    assert row.n_control == ((df.variant == "control") & df.a.notna()).sum()
    ref = abkit.analyze(df.dropna(subset=["a"]), [abkit.Mean("a")]).to_frame()
    assert row.effect == pytest.approx(ref[ref.variant == "treatment"].effect.iloc[0], rel=1e-12)
    # the complete metric keeps every row
    rb = res[(res.metric == "b") & (res.variant == "treatment")].iloc[0]
    assert rb.n_control == (df.variant == "control").sum()


def test_missing_variant_rows_are_counted():
    df = _frame()
    df["variant"] = df["variant"].astype(object)
    df.loc[:9, "variant"] = None
    res = abkit.analyze(df, [abkit.Mean("a")])
    assert res.missing_variant == 10
    assert sum(res.srm.observed) == len(df) - 10


def test_moments_merge_rejects_different_columns():
    a = Moments.from_arrays(np.zeros(3, int), np.ones((3, 1)), ["x"], ["a"])
    b = Moments.from_arrays(np.zeros(3, int), np.ones((3, 1)), ["x"], ["b"])
    with pytest.raises(abkit.AbkitError, match="different columns"):
        a.merge(b)


# ---------------------------------------------------------------------------- digits far from zero
FAR_METRICS = [abkit.Mean("x"), abkit.Mean("x", "pre", name="x_cuped"), abkit.Mean("x", ["pre", "pre2"], name="x_lin")]
FAR_COLUMNS = ["metric", "variant", "effect", "se", "ci_lower", "ci_upper", "p_value", "variance_reduction"]


def far_from_zero(n=20_000, level=1e12, seed=5):
    """Epoch-millisecond-like values: a level of 1e12, a spread of a few units, an effect of +1.

    Returns the frame and the same frame shifted to zero (``x - level`` is exact in float64 here).
    """
    rng = np.random.default_rng(seed)

    def grid(v):  # multiples of 2^-8: exact in float64 both near 0 and near 1e12 (an ulp of 1e12 is 2^-13)
        return np.round(v * 256.0) / 256.0

    arm = rng.integers(0, 2, n)
    pre = grid(rng.normal(0, 3, n))
    x = grid(pre * 0.8 + rng.normal(0, 2, n) + 1.0 * arm)
    pre2 = grid(rng.normal(0, 1, n) + 0.3 * x)
    shifted = pd.DataFrame({"variant": np.where(arm == 1, "treatment", "control"), "x": x, "pre": pre, "pre2": pre2})
    far = shifted.assign(x=level + x, pre=level + pre, pre2=level + pre2)
    assert (far.x - level).equals(shifted.x)  # the shift is exact: both frames hold the same information
    return far, shifted


def assert_same_effects(got: pd.DataFrame, ref: pd.DataFrame, rtol=1e-9):
    got, ref = got[FAR_COLUMNS].reset_index(drop=True), ref[FAR_COLUMNS].reset_index(drop=True)
    for c in FAR_COLUMNS[2:]:
        np.testing.assert_allclose(got[c].to_numpy(float), ref[c].to_numpy(float), rtol=rtol, err_msg=c)


def test_effects_of_values_near_1e12_equal_those_of_the_shifted_data():
    # The mean of values near 1e12 rounds to 1.2e-4 (an ulp); an effect of about 1 computed as a difference of
    # such means is off by ~1e-4 relative. abkit keeps a per-column shift and takes differences of offsets, so
    # the effect, its SE, CI and p-value equal those of the same data shifted to zero.
    far, shifted = far_from_zero()
    ref = abkit.analyze(shifted, FAR_METRICS).to_frame()
    got = abkit.analyze(far, FAR_METRICS).to_frame()
    assert_same_effects(got, ref)
    np.testing.assert_allclose(got.control_value - 1e12, ref.control_value, atol=1e-3)
    # Arrow, merged partitions (days) and the DuckDB route for large frames agree too
    assert_same_effects(abkit.analyze(pa.Table.from_pandas(far), FAR_METRICS).to_frame(), ref)
    parts = sum(
        (abkit.moments(far.iloc[i::4], FAR_METRICS) for i in range(1, 4)), abkit.moments(far.iloc[0::4], FAR_METRICS)
    )
    assert_same_effects(abkit.analyze(parts, FAR_METRICS).to_frame(), ref)
