"""Hardening (issue 8): bad data is refused loudly, unit integrity is checked, readouts are safe to share.

Every item of the issue's list has a test here, or the docstring of the
section names the test that already covers it. Each error must be an
``abkit.AbkitError`` whose message names the column / value and the fix;
the tests match on those words, so a vaguer message fails them.

Covered elsewhere (not repeated here):

* specs with unknown keys or wrong types: ``test_spec.py::test_unknown_keys_suggest_the_closest``,
  ``test_wrong_types_and_values``, ``test_wrong_metric_fields``, ``test_yaml_level_problems``;
* a notebook parameter with quotes, newlines and ``"); import os`` arrives as the same string:
  ``test_readout.py::test_parameters_arrive_as_data``;
* every user string of a readout page is escaped: ``test_readout.py::test_user_strings_are_escaped``,
  ``test_spec.py::test_hostile_names_round_trip_and_escape``, ``test_browser.py::test_hostile_name_is_shown_as_text``;
* experiment names cannot escape ``--out``: ``test_spec.py::test_slugify_only_keeps_safe_characters``,
  ``test_output_folders_stay_inside_out_dir``.
"""

from __future__ import annotations

import copy
import math
import re
import warnings
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from markupsafe import escape

import abkit
from abkit.errors import AbkitError, ColumnNotFoundError, DataError, SpecError
from abkit.integrity import Integrity
from abkit.readout import ab as readout_ab
from abkit.readout import render
from abkit.results import ExperimentResult, results_table_html
from abkit.spec import ExperimentSpec, load_spec
from abkit.stats.checks import srm_test
from abkit.verdict import DUPLICATE_ALARM, LEAK_ALARM, decide

ROOT = Path(__file__).resolve().parent.parent


def buyers(n: int = 2_000, seed: int = 0) -> pd.DataFrame:
    """One row per buyer, two arms, counts, amounts and pre-period columns."""
    rng = np.random.default_rng(seed)
    orders = rng.poisson(2, n) + 1
    pre_orders = rng.poisson(2, n) + 1
    return pd.DataFrame(
        {
            "buyer_id": np.arange(n),
            "variant": np.where(rng.random(n) < 0.5, "control", "treatment"),
            "orders": orders,
            "refunds": rng.binomial(orders, 0.1),
            "refund_amount": rng.gamma(2.0, 15.0, n),
            "pre_refund_amount": rng.gamma(2.0, 15.0, n),
            "pre_orders": pre_orders,
            "pre_refunds": rng.binomial(pre_orders, 0.1),
            "repeat": rng.integers(0, 2, n).astype(float),
            "market": rng.choice(["DE", "FR"], n),
        }
    )


RATIO = abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"), name="refund_rate")
MEAN = abkit.Mean("refund_amount", "pre_refund_amount")


def sources(df: pd.DataFrame, tmp_path: Path) -> dict:
    """The same rows as pandas, Arrow, parquet (DuckDB) and CSV (DuckDB)."""
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "d.parquet")
    df.to_csv(tmp_path / "d.csv", index=False)
    return {
        "pandas": df,
        "arrow": pa.Table.from_pandas(df, preserve_index=False),
        "parquet": tmp_path / "d.parquet",
        "csv": tmp_path / "d.csv",
    }


def error_of(data, metrics, **kw) -> str:
    with pytest.raises(AbkitError) as info:
        abkit.analyze(data, metrics, **kw)
    return str(info.value)


# =========================================================================== columns and values
@pytest.mark.parametrize("kind", ["pandas", "arrow", "parquet", "csv"])
def test_misspelled_column_suggests_the_closest_name(tmp_path, kind):
    data = sources(buyers(), tmp_path)[kind]
    with pytest.raises(ColumnNotFoundError) as info:
        abkit.analyze(data, [abkit.Ratio("refund", "orders")])
    msg = str(info.value)
    assert "column 'refund' not found" in msg and "Did you mean 'refunds'" in msg and "available:" in msg
    assert isinstance(info.value, DataError) and isinstance(info.value, KeyError)  # catchable either way


@pytest.mark.parametrize("kind", ["pandas", "arrow", "parquet", "csv"])
def test_non_numeric_metric_column(tmp_path, kind):
    df = buyers()
    df["refund_amount"] = [f"{x:.2f} EUR" for x in df["refund_amount"]]
    msg = error_of(sources(df, tmp_path)[kind], [abkit.Mean("refund_amount")])
    assert "column 'refund_amount' is not numeric" in msg and "convert it to numbers" in msg


@pytest.mark.parametrize("kind", ["pandas", "parquet"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_errors_by_default_and_counted_when_dropped(tmp_path, kind, bad):
    df = buyers()
    df["refund_amount"] = df["refund_amount"].astype(float)
    df.loc[::50, "refund_amount"] = bad
    n_bad = len(df.loc[::50])
    data = sources(df, tmp_path)[kind]
    msg = error_of(data, [abkit.Mean("refund_amount")])
    assert "column 'refund_amount' has" in msg and "dropna=True" in msg
    if kind == "pandas":
        assert f"{n_bad:,} " in msg  # the count is in the message
    res = abkit.analyze(data, [abkit.Mean("refund_amount", dropna=True)])
    row = res.row("refund_amount")
    assert row["dropped_control"] + row["dropped_treatment"] == n_bad
    assert row["n_control"] + row["n_treatment"] == len(df) - n_bad
    # the count reaches every place a reader looks: the HTML table and the readout's "units left out"
    assert f"refund_amount: {n_bad:,} units dropped for missing values" in results_table_html(res)
    spec = SimpleNamespace(metrics=[SimpleNamespace(name="refund_amount", columns=("refund_amount",))])
    left_out = readout_ab.dropped_units(res, spec)
    assert left_out.units.tolist() == [n_bad] and "refund_amount" in left_out.reason[0]


def test_covariate_missing_for_some_units(tmp_path):
    df = buyers()
    df["pre_refund_amount"] = df["pre_refund_amount"].astype(float)
    df.loc[:9, "pre_refund_amount"] = np.nan
    for data in (df, sources(df, tmp_path)["parquet"]):
        msg = error_of(data, [MEAN])
        assert "column 'pre_refund_amount' has 10 missing" in msg and "dropna=True" in msg
        res = abkit.analyze(data, [abkit.Mean("refund_amount", "pre_refund_amount", dropna=True)])
        row = res.row("refund_amount")
        assert row["dropped_control"] + row["dropped_treatment"] == 10


@pytest.mark.parametrize("kind", ["pandas", "arrow", "parquet"])
@pytest.mark.parametrize("dropna", [False, True])
def test_pre_period_column_entirely_missing_is_named(tmp_path, kind, dropna):
    """Before: with dropna=True this was 'arm control has no units with data'; now it names the column."""
    df = buyers().assign(pre_refund_amount=np.nan)
    metric = abkit.Mean("refund_amount", "pre_refund_amount", dropna=dropna)
    msg = error_of(sources(df, tmp_path)[kind], [metric])
    assert "column 'pre_refund_amount' is entirely missing" in msg and "refund_amount" in msg
    assert "pre-period join" in msg


def test_column_missing_in_one_arm_only_names_the_arm_and_columns():
    df = buyers()
    df.loc[df.variant == "treatment", "pre_refund_amount"] = np.nan
    msg = error_of(df, [abkit.Mean("refund_amount", "pre_refund_amount", dropna=True)])
    assert "arm 'treatment' has no units with data for metric 'refund_amount'" in msg
    assert "'pre_refund_amount'" in msg and "missing value" in msg


# =========================================================================== negative counts
@pytest.mark.parametrize("kind", ["pandas", "arrow", "parquet"])
def test_negative_ratio_denominator_is_an_error(tmp_path, kind):
    df = buyers()
    df.loc[[3, 7], "orders"] = [-2, -5]
    msg = error_of(sources(df, tmp_path)[kind], [abkit.Ratio("refunds", "orders")])
    assert "column 'orders' has 2 negative values (smallest -5)" in msg
    assert "denominator of metric 'refunds/orders'" in msg and "fix the data" in msg


def test_negative_covariate_denominator_and_numerators(tmp_path):
    df = buyers()
    df.loc[0, "pre_orders"] = -1
    assert "column 'pre_orders' has 1 negative value" in error_of(df, [RATIO])
    df = buyers()
    df.loc[0, "refunds"] = -1
    for data in (df, sources(df, tmp_path)["parquet"]):
        msg = error_of(data, [abkit.Ratio("refunds", "orders")])
        assert "column 'refunds' has 1 negative value" in msg and "numerator" in msg
        assert "nonnegative=False" in msg  # the way out, for a net amount
        res = abkit.analyze(data, [abkit.Ratio("refunds", "orders", nonnegative=False)])  # declared: allowed
        assert math.isfinite(res.row("refunds/orders")["effect"])
    # a denominator has no way out, and means are not checked (amounts may be negative)
    df = buyers()
    df.loc[0, "orders"] = -1
    assert "denominator" in error_of(df, [abkit.Ratio("refunds", "orders", nonnegative=False)])
    df = buyers()
    df.loc[0, "refund_amount"] = -10.0
    assert math.isfinite(abkit.analyze(df, [abkit.Mean("refund_amount")]).row("refund_amount")["effect"])


def test_which_columns_must_not_be_negative_is_declared():
    assert RATIO.nonnegative_columns == (
        ("orders", "denominator"),
        ("pre_orders", "denominator"),
        ("refunds", "numerator"),
        ("pre_refunds", "numerator"),
    )
    assert abkit.Ratio("a", "b", nonnegative=False).nonnegative_columns == (("b", "denominator"),)
    assert abkit.Mean("x", [("pre_a", "pre_b")]).nonnegative_columns == (("pre_b", "denominator"),)
    assert abkit.Mean("x").nonnegative_columns == () and abkit.Proportion("x").nonnegative_columns == ()
    with pytest.raises(AbkitError, match="nonnegative"):
        abkit.Ratio("a", "b", nonnegative="yes")


# =========================================================================== degenerate designs
def test_ratio_denominator_zero_for_some_units():
    """Units without orders are fine (the ratio is of per-arm sums); an arm whose orders sum to 0 is not."""
    df = buyers()
    df.loc[df.index % 4 == 0, ["orders", "refunds"]] = 0
    row = abkit.analyze(df, [abkit.Ratio("refunds", "orders")]).row("refunds/orders")
    c = df[df.variant == "control"]
    assert row["control_value"] == pytest.approx(c.refunds.sum() / c.orders.sum(), rel=1e-12)
    assert row["n_control"] == len(c)  # zero-order buyers still count
    df.loc[df.variant == "control", ["orders", "refunds"]] = 0
    msg = error_of(df, [abkit.Ratio("refunds", "orders")])
    assert "undefined in arm 'control'" in msg and "'orders' sums to zero" in msg


def test_constant_metric_gives_no_division_by_zero():
    df = buyers()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would fail the test
        with np.errstate(all="raise"):
            row = abkit.analyze(df.assign(refund_amount=5.0), [abkit.Mean("refund_amount")]).row("refund_amount")
            assert (row["effect"], row["se"], row["p_value"], row["ci_lower"], row["ci_upper"]) == (0, 0, 1, 0, 0)
            # a constant covariate gets a zero CUPED slope: the unadjusted answer
            plain = abkit.analyze(df, [abkit.Mean("refund_amount")]).row("refund_amount")
            cuped = abkit.analyze(df.assign(pre_refund_amount=1.0), [MEAN]).row("refund_amount")
            assert cuped["effect"] == pytest.approx(plain["effect"], rel=1e-12)
            assert cuped["se"] == pytest.approx(plain["se"], rel=1e-12)
            # constant within each arm, different between them: the difference is known exactly
            row = abkit.analyze(
                df.assign(refund_amount=np.where(df.variant == "control", 1.0, 3.0)), [abkit.Mean("refund_amount")]
            ).row("refund_amount")
            assert row["effect"] == 2.0 and row["se"] == 0.0 and row["p_value"] == 0.0
            # all zeros: the relative lift is undefined (NaN), not an error
            row = abkit.analyze(df.assign(repeat=0.0), [abkit.Proportion("repeat")]).row("repeat")
            assert row["effect"] == 0.0 and math.isnan(row["rel_effect"])


@pytest.mark.parametrize("kind", ["pandas", "parquet"])
def test_arm_with_one_unit_control_missing_and_one_arm(tmp_path, kind):
    df = buyers()
    one = pd.concat([df[df.variant == "control"], df[df.variant == "treatment"].head(1)])
    data = sources(one, tmp_path)[kind]
    msg = error_of(data, [MEAN])
    assert "arm 'treatment' has 1 unit(s)" in msg and "at least 2 per arm" in msg
    data = sources(df, tmp_path)[kind]
    msg = error_of(data, [MEAN], control="ctrl")
    assert "control arm 'ctrl' not found in column 'variant'" in msg and "Pass control=" in msg
    data = sources(df.assign(variant="control"), tmp_path)[kind]
    assert "only one arm ('control')" in error_of(data, [MEAN])


def test_regression_adjustment_needs_more_units_than_slopes():
    df = buyers()
    few = pd.concat([df[df.variant == "control"], df[df.variant == "treatment"].head(3)])
    lin = abkit.Mean("refund_amount", ["pre_refund_amount", "pre_orders"])
    msg = error_of(few, [lin])
    assert "Lin" in msg and "at least 4 units in every arm; arm 'treatment' has 3" in msg and "cuped" in msg
    ok = pd.concat([df[df.variant == "control"], df[df.variant == "treatment"].head(4)])
    assert math.isfinite(abkit.analyze(ok, [lin]).row("refund_amount")["se"])


# =========================================================================== precision
def test_refund_totals_of_1e12_keep_their_digits_in_effects_and_variances(tmp_path):
    """Values around 1e12 with a spread of a few units and an effect of 0.5: exact arithmetic as reference.

    float64 holds 1e12 to about 1.2e-4, so the arm means cannot be better than
    that; the effect must be right to that resolution (far below its SE) and
    the variance to 1e-9, in memory and in DuckDB (shifted sums).
    """
    rng = np.random.default_rng(5)
    n = 40_000
    dev = rng.normal(0, 3.0, n)
    t = rng.random(n) < 0.5
    dev[t] += 0.5
    df = pd.DataFrame({"variant": np.where(t, "treatment", "control"), "x": 1e12 + dev})
    exact = {}
    for arm, sel in (("control", ~t), ("treatment", t)):
        vals = [Fraction(float(v)) for v in df.x[sel]]
        mean = sum(vals) / len(vals)
        exact[arm] = (mean, sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
    true_effect = float(exact["treatment"][0] - exact["control"][0])
    true_se = math.sqrt(float(exact["treatment"][1]) / t.sum() + float(exact["control"][1]) / (~t).sum())
    for data in (df, sources(df, tmp_path)["parquet"]):
        ms = abkit.moments(data, [abkit.Mean("x")])
        block = ms.blocks[(("x",), False)]
        for arm in ("control", "treatment"):
            assert block.covariance(arm)[0, 0] == pytest.approx(float(exact[arm][1]), rel=1e-9)
        row = abkit.analyze(ms, [abkit.Mean("x")]).row("x")
        assert abs(row["effect"] - true_effect) <= 5e-4  # four ulps of 1e12, 1/60,000 of the SE
        assert row["se"] == pytest.approx(true_se, rel=1e-9)


@pytest.mark.parametrize("min_rows, rel", [(float("inf"), 1e-12), (0, 1e-11)], ids=["numpy", "duckdb"])
def test_large_n_keeps_its_digits(monkeypatch, min_rows, rel):
    """Three million units with a mean of 1e9: the mean and the variance against exact references.

    On the numpy kernel (BLAS sums of centred values) and on DuckDB, where large frames go (its sums of
    1.5M shifted squares per arm carry about 2e-12 relative).
    """
    import abkit.sources

    monkeypatch.setattr(abkit.sources, "ENGINE_MIN_ROWS", min_rows)
    rng = np.random.default_rng(8)
    n = 3_000_000
    dev = rng.integers(-1000, 1001, n).astype(np.float64) / 8.0  # exact binary fractions
    df = pd.DataFrame({"variant": np.where(np.arange(n) % 2, "treatment", "control"), "x": 1e9 + dev})
    block = abkit.moments(df, [abkit.Mean("x")]).blocks[(("x",), False)]
    for arm, sl in (("control", slice(0, None, 2)), ("treatment", slice(1, None, 2))):
        k = (dev[sl] * 8).astype(np.int64)  # integers: exact sums in int64
        m = len(k)
        mean_exact = Fraction(int(k.sum()), 8 * m)
        ss_exact = Fraction(int((k * k).sum()), 64) - m * mean_exact**2
        g = block.group_index(arm)
        assert block.mean[g, 0] == pytest.approx(1e9 + float(mean_exact), abs=2.4e-7)  # two ulps of 1e9
        assert (block.shift[0] - 1e9) + block.offset[g, 0] == pytest.approx(float(mean_exact), abs=1e-12)
        assert block.comoment[g, 0, 0] == pytest.approx(float(ss_exact), rel=rel)
        # the test has teeth: raw sums of squares (no centring) lose about 1% here
        x = df.x.to_numpy()[sl]
        naive = float((x * x).sum() - x.sum() ** 2 / m)
        assert abs(naive / float(ss_exact) - 1) > 1e-6


# =========================================================================== files
def test_empty_and_corrupt_files(tmp_path):
    checks = {
        "empty.csv": (b"", "empty.csv"),
        "header.csv": (b"variant,x\n", "has no rows"),
        "zero.parquet": (None, "has no rows"),
        "empty.parquet": (b"", "empty.parquet"),
        "corrupt.parquet": (b"PAR1 this is not a parquet file at all PAR1", "could not read"),
    }
    pq.write_table(
        pa.table({"variant": pa.array([], pa.string()), "x": pa.array([], pa.float64())}), tmp_path / "zero.parquet"
    )
    for name, (content, words) in checks.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        msg = error_of(tmp_path / name, [abkit.Mean("x")])
        assert words in msg and name in msg, (name, msg)
    assert "the data has no rows" in error_of(pd.DataFrame({"variant": [], "x": []}), [abkit.Mean("x")])
    assert "no rows" in error_of(pd.DataFrame({"variant": [], "x": []}), [abkit.Quantile("x", 0.5)])


def test_csv_that_is_not_utf8_is_named_with_the_fix(tmp_path):
    df = buyers(500)
    df["market"] = np.where(df.index % 2, "Köln", "Zürich")
    early = tmp_path / "latin1.csv"
    df.to_csv(early, index=False, encoding="latin-1")
    msg = error_of(early, [MEAN])
    assert f"could not read '{early}'" in msg and "not UTF-8 encoded" in msg and "Re-encode it to UTF-8" in msg
    # a bad byte far beyond the part DuckDB samples when it opens the file: raised while aggregating
    big = buyers(60_000)
    big["market"] = "Koln"
    big.loc[55_000, "market"] = "Köln"
    late = tmp_path / "late.csv"
    big.to_csv(late, index=False, encoding="latin-1")
    with pytest.raises(DataError) as info:
        abkit.moments(late, [MEAN], by="market")
    assert "late.csv" in str(info.value) and "not UTF-8" in str(info.value) and "line 55002" in str(info.value)
    with pytest.raises(DataError, match="not UTF-8"):
        abkit.sources.read_columns(late, ["market"])
    # the fix the message suggests works
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(late.read_text(encoding="latin-1"), encoding="utf-8")
    assert "Köln" in abkit.moments(fixed, [MEAN], by="market").segments


def test_nothing_in_abkit_unpickles_or_evaluates_user_data():
    """No pickle / joblib / np.load(allow_pickle) / eval / exec / unsafe YAML anywhere in the package."""
    pattern = re.compile(
        r"\bpickle\b|\bjoblib\b|allow_pickle|read_pickle|\bnp\.load\(|\beval\(|\bexec\(|"
        r"yaml\.load\(|yaml\.unsafe_load|yaml\.full_load|Loader=yaml\.(Full|Unsafe)?Loader\b|"
        r"\bmarshal\b|\bshelve\b"
    )
    hits = []
    for path in sorted((ROOT / "abkit").rglob("*.py")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not hits, "\n".join(hits)


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object:abkit.metrics.Mean {column: x}",
        "!!python/object/new:os.system [echo pwned]",
        "!!python/name:os.system",
        "!!python/module:os",
    ],
)
def test_python_yaml_tags_are_rejected(tmp_path, tag):
    p = tmp_path / "evil.yaml"
    p.write_text(f"name: {tag}\ndata: x.parquet\nmetrics: []\n", encoding="utf-8")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(p)
    assert not (tmp_path / "pwned").exists()


# =========================================================================== unit integrity
def leaky(df: pd.DataFrame, leaks: int = 30, copies: int = 12, moved: int = 5) -> pd.DataFrame:
    """``leaks`` units get a second row in the other arm; ``copies`` rows are exact copies; ``moved``
    units get a second, different row in their own arm."""
    other = df.head(leaks).assign(variant=lambda d: np.where(d.variant == "control", "treatment", "control"))
    same = df.iloc[100 : 100 + moved].assign(refund_amount=lambda d: d.refund_amount + 1.0)
    return pd.concat([df, other, df.iloc[200 : 200 + copies], same], ignore_index=True)


def reference(df: pd.DataFrame, unit: str = "buyer_id", variant: str = "variant") -> dict:
    """The counts by pandas groupby (an independent implementation)."""
    d = df[df[variant].notna()]
    known = d[d[unit].notna()]
    g = known.groupby(unit)
    arms = g[variant].nunique()
    size = g.size()
    return {
        "rows": len(d),
        "units": int(known[unit].nunique()),
        "missing_unit": int(d[unit].isna().sum()),
        "leaked_units": int((arms > 1).sum()),
        "leaked_rows": int(size[arms > 1].sum()),
        "duplicated_units": int((size > 1).sum()),
        "extra_rows": int(len(known) - known[unit].nunique()),
        "duplicate_rows": int(known.duplicated().sum()),
    }


@pytest.mark.parametrize("ids", ["compact", "sparse", "text", "missing"])
def test_integrity_counts_match_pandas_in_every_source(tmp_path, ids):
    df = leaky(buyers())
    if ids == "sparse":
        df["buyer_id"] = df["buyer_id"] * 1_000_003 + 17
    elif ids in ("text", "missing"):
        df["buyer_id"] = "b" + df["buyer_id"].astype(str)
    if ids == "missing":
        df.loc[[5, 500, 900], "buyer_id"] = None
    ref = reference(df)
    assert ref["leaked_units"] == (29 if ids == "missing" else 30) and ref["duplicate_rows"] == 12
    metrics = [MEAN, RATIO]
    for kind, data in sources(df, tmp_path).items():
        got = abkit.analyze(data, metrics, unit="buyer_id").integrity
        counts = {k: v for k, v in got.to_dict().items() if k in ref}
        assert counts == ref, kind
        assert len(got.examples) == 5 and not got.clean
    leaked_ids = sorted(set(df.head(30).buyer_id.dropna()))
    assert list(got.examples) == leaked_ids[:5]  # the smallest ids, in every source


def test_clean_data_is_clean_and_integrity_changes_no_number():
    df = buyers()
    plain = abkit.analyze(df, [MEAN, RATIO])
    checked = abkit.analyze(df, [MEAN, RATIO], unit="buyer_id")
    assert checked.integrity.clean and checked.integrity.units == len(df)
    assert plain.integrity is None
    pd.testing.assert_frame_equal(plain.to_frame(), checked.to_frame())
    assert "each in one arm with one row" in checked.summary()


def test_a_unit_in_two_segments_is_not_a_leak():
    df = buyers()
    df = pd.concat([df, df.head(10).assign(market="XX")], ignore_index=True)  # moved market, same arm
    ms = abkit.moments(df, [MEAN], by="market", unit="buyer_id")
    assert ms.integrity.leaked_units == 0 and ms.integrity.duplicated_units == 10


def test_integrity_is_reported_in_summary_html_and_examples_are_escaped():
    df = leaky(buyers())
    df["buyer_id"] = "<script>" + df["buyer_id"].astype(str)
    res = abkit.analyze(df, [MEAN], unit="buyer_id")
    assert "WARNING: unit integrity" in res.summary() and "assignment leak: 30 of" in res.summary()
    page = res._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;0" in page and "assignment leak" in page
    block = render.health_html(res)
    assert "Unit integrity" in block and "<script>" not in block and "abkit-banner-bad" in block


def test_moment_sets_carry_integrity_only_when_computed_on_the_rows():
    df = leaky(buyers())
    ms = abkit.moments(df, [MEAN], unit="buyer_id")
    assert abkit.analyze(ms, [MEAN], unit="buyer_id").integrity == ms.integrity
    assert abkit.analyze(ms, [MEAN]).integrity == ms.integrity
    with pytest.raises(AbkitError, match="needs the rows.*added up from parts"):
        abkit.analyze(ms + abkit.moments(df, [MEAN]), [MEAN], unit="buyer_id")
    with pytest.raises(AbkitError, match="aggregated with unit='buyer_id'"):
        abkit.analyze(ms, [MEAN], unit="market")
    with pytest.raises(DataError, match="unit='refund_amount' is also"):
        abkit.analyze(df, [MEAN], unit="refund_amount")
    with pytest.raises(ColumnNotFoundError, match="column 'buyer' not found.*Did you mean 'buyer_id'"):
        abkit.analyze(df, [MEAN], unit="buyer")


def test_quantile_only_analysis_checks_integrity_too():
    df = leaky(buyers())
    res = abkit.analyze(df, [abkit.Quantile("refund_amount", 0.5)], unit="buyer_id")
    assert {k: v for k, v in res.integrity.to_dict().items() if k in reference(df)} == {
        k: v for k, v in reference(df[["buyer_id", "variant", "refund_amount"]]).items()
    }


def integrity_result(leaked: int, duplicated: int, units: int = 10_000) -> ExperimentResult:
    row = {
        "metric": "p",
        "variant": "treatment",
        "control_value": 0.1,
        "treatment_value": 0.09,
        "effect": -0.01,
        "ci_lower": -0.014,
        "ci_upper": -0.006,
        "rel_effect": -0.1,
        "rel_ci_lower": -0.14,
        "rel_ci_upper": -0.06,
        "p_value": 1e-6,
        "n_control": 5000,
        "n_treatment": 5000,
        "method": "test",
        "se": 0.002,
        "rel_se": 0.02,
        "df": np.inf,
        "variance_reduction": 0.0,
        "dropped_control": 0,
        "dropped_treatment": 0,
        "better": "lower",
    }
    integrity = Integrity(
        "buyer_id",
        rows=units + leaked + duplicated,
        units=units,
        leaked_units=leaked,
        leaked_rows=2 * leaked,
        duplicated_units=leaked + duplicated,
        extra_rows=leaked + duplicated,
        examples=(1, 2),
    )
    return ExperimentResult(
        rows=(row,),
        metrics=(abkit.Mean("p"),),
        arms=("control", "treatment"),
        control="control",
        alpha=0.05,
        correction=None,
        srm=srm_test({"control": 5000, "treatment": 5000}),
        integrity=integrity,
    )


def test_verdict_treats_a_material_leak_as_invalid():
    (v,) = decide(integrity_result(0, 0), "p")
    assert v.label == "Ship"
    small = int(LEAK_ALARM * 10_000) // 2
    (v,) = decide(integrity_result(small, 0), "p")
    assert v.label == "Ship" and v.reasons[0].startswith("caution: assignment leak")
    (v,) = decide(integrity_result(int(LEAK_ALARM * 10_000) + 1, 0), "p")
    assert v.label == "Invalid" and v.note == "assignment leak" and "more than one arm" in v.headline
    assert v.display_label == "Invalid (assignment leak)"
    (v,) = decide(integrity_result(0, int(DUPLICATE_ALARM * 10_000) + 1), "p")
    assert v.label == "Invalid" and v.note == "duplicate units" and "more than one row" in v.headline


def test_spec_unit_field_round_trips_and_is_validated(tmp_path):
    (tmp_path / "data").mkdir()
    buyers().to_parquet(tmp_path / "data" / "ab.parquet")
    spec = {
        "name": "x",
        "data": "data/ab.parquet",
        "unit": "buyer_id",
        "metrics": [
            {
                "name": "refund_rate",
                "type": "ratio",
                "numerator": "refunds",
                "denominator": "orders",
                "primary": True,
                "nonnegative": False,
            }
        ],
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    loaded = load_spec(path)
    assert loaded.unit == "buyer_id" and "buyer_id" in loaded.columns
    assert ExperimentSpec.from_dict(loaded.to_dict()) == loaded
    assert loaded.build_metrics()[0].nonnegative_columns == (("orders", "denominator"),)
    assert "Unit integrity" in render.methodology_html(loaded)
    for change, words in [
        ({"unit": "buyer"}, "unit: column 'buyer' not found.*Did you mean 'buyer_id'"),
        ({"unit": "variant"}, "unit: 'variant' is the variant column"),
        ({"unit": "orders"}, "'orders' is also a column of metric 'refund_rate'"),
        ({"unit": 7}, "unit: expected text"),
    ]:
        bad = copy.deepcopy(spec) | change
        path.write_text(yaml.safe_dump(bad), encoding="utf-8")
        with pytest.raises(SpecError, match=words):
            load_spec(path)
    bad = copy.deepcopy(spec)
    bad["metrics"][0] = {"name": "m", "type": "mean", "column": "refund_amount", "primary": True, "nonnegative": False}
    path.write_text(yaml.safe_dump(bad), encoding="utf-8")
    with pytest.raises(SpecError, match="only ratio metrics check their numerators"):
        load_spec(path)


def test_integrity_escapes_in_readout_health_block():
    res = integrity_result(500, 0)
    page = render.health_html(res)
    assert "do not trust the results below" in page and str(escape("'buyer_id'")) in page  # the engine's escaping


# =========================================================================== hostile or careless specs (issue 18)
def _spec_file(tmp_path: Path, data, name: str = "Refund test", **extra) -> Path:
    spec = {
        "name": name,
        "data": data,
        "metrics": [
            {"name": "refund_rate", "type": "ratio", "numerator": "refunds", "denominator": "orders", "primary": True}
        ],
        **extra,
    }
    path = tmp_path / f"spec-{abs(hash(str(data))) % 10_000}.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path


def _refused(path: Path, limit: float = 3.0) -> str:
    import time

    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert time.perf_counter() - start < limit, time.perf_counter() - start
    return str(info.value)


def test_data_folder_with_a_symlink_loop_is_refused_quickly(tmp_path):
    folder = tmp_path / "lake"
    (folder / "part=1").mkdir(parents=True)
    buyers(200).to_parquet(folder / "part=1" / "a.parquet")
    (folder / "part=1" / "again").symlink_to(folder, target_is_directory=True)
    msg = _refused(_spec_file(tmp_path, str(folder)))
    assert "data: data folder" in msg and "symbolic link loop" in msg and "again" in msg
    with pytest.raises(DataError, match="symbolic link loop"):  # the analysis refuses it too
        abkit.analyze(folder, [abkit.Ratio("refunds", "orders")])
    (folder / "part=1" / "again").unlink()
    assert load_spec(_spec_file(tmp_path, str(folder))).data_path == folder


def test_huge_trees_home_directories_and_devices_are_refused_quickly(tmp_path, monkeypatch):
    home = tmp_path / "home" / "analyst"
    (home / "Downloads").mkdir(parents=True)
    buyers(100).to_parquet(home / "Downloads" / "ab.parquet")
    monkeypatch.setenv("HOME", str(home))
    for data, words in [
        (str(home), "is a home directory"),
        ("~", "is a home directory"),
        (str(tmp_path / "home"), "a folder above the home directory"),
        ("/", "root of the file"),
    ]:
        assert words in _refused(_spec_file(tmp_path, data)), data
    big = tmp_path / "big"
    big.mkdir()
    for i in range(60):
        (big / f"f{i}.txt").write_text("x")
    from abkit import data_paths

    monkeypatch.setattr(data_paths, "MAX_ENTRIES", 50)
    assert "holds more than 50 files and folders" in _refused(_spec_file(tmp_path, str(big)))
    monkeypatch.setattr(data_paths, "MAX_ENTRIES", 10_000)
    if Path("/usr/share").is_dir():
        assert "data folder '/usr" in _refused(_spec_file(tmp_path, "/usr"), limit=3.0)
    assert "holds no .parquet file" in _refused(_spec_file(tmp_path, str(big)))
    if Path("/dev/zero").exists():
        (tmp_path / "zero.parquet").symlink_to("/dev/zero")
        assert "is a device" in _refused(_spec_file(tmp_path, str(tmp_path / "zero.parquet")))


def test_parquet_folder_with_a_readme_is_read_as_the_analysis_reads_it(tmp_path):
    folder = tmp_path / "export"
    df = buyers(400)
    for market, part in (("DE", df.iloc[:200]), ("FR", df.iloc[200:])):
        (folder / f"market={market}").mkdir(parents=True)
        part.drop(columns="market").to_parquet(folder / f"market={market}" / "part-0.parquet")
    (folder / "README.md").write_text("Exported nightly by the refunds job.\n", encoding="utf-8")
    (folder / "_SUCCESS").write_text("", encoding="utf-8")
    spec = load_spec(_spec_file(tmp_path, str(folder), segments=["market"]))  # hive column, like the analysis
    assert abkit.spec.data_columns(folder) == list(abkit.engines.to_lazy(folder).collect_schema().names())
    res = abkit.analyze(spec.open_data(), spec.build_metrics())
    assert res.row("refund_rate")["n_control"] + res.row("refund_rate")["n_treatment"] == 400


def test_spark_settings_from_a_spec_are_allow_listed():
    base = {
        "name": "x",
        "data": {"engine": "spark", "table": "aftersales.refunds"},
        "metrics": [{"name": "r", "type": "ratio", "numerator": "refunds", "denominator": "orders", "primary": True}],
    }
    ok = ExperimentSpec.from_dict(
        {**base, "data": {**base["data"], "conf": {"spark.master": "local[2]", "spark.sql.shuffle.partitions": 4}}},
        check_data=False,
    )
    assert dict(ok.data.conf) == {"spark.master": "local[2]", "spark.sql.shuffle.partitions": 4}
    for key in (
        "spark.jars",
        "spark.jars.packages",
        "spark.driver.extraJavaOptions",
        "spark.executor.extraClassPath",
        "spark.plugins",
        "spark.sql.extensions",
        "spark.sql.catalog.evil",
        "spark.pyspark.python",
        "spark.executorEnv.LD_PRELOAD",
        "spark.hadoop.fs.s3a.impl",
    ):
        with pytest.raises(SpecError) as info:
            ExperimentSpec.from_dict({**base, "data": {**base["data"], "conf": {key: "x"}}}, check_data=False)
        assert [w for w, _ in info.value.problems] == [f"data.conf.{key}"], key
        assert "not allowed in a spec" in str(info.value) and "spark-defaults.conf" in str(info.value)


def test_semicolon_csv(tmp_path):
    df = buyers(300)[["variant", "orders", "refunds", "refund_amount"]]
    df.to_csv(tmp_path / "semi.csv", sep=";", index=False)
    spec = load_spec(_spec_file(tmp_path, str(tmp_path / "semi.csv")))  # read as the analysis reads it: sniffed
    assert spec.data_label == "semi.csv"
    assert math.isfinite(abkit.analyze(spec.open_data(), spec.build_metrics()).row("refund_rate")["effect"])
    df.to_csv(tmp_path / "comma.csv", sep=";", decimal=",", index=False)  # a European spreadsheet export
    path = _spec_file(
        tmp_path,
        str(tmp_path / "comma.csv"),
        metrics=[{"name": "amount", "type": "mean", "column": "refund_amount", "primary": True}],
    )
    msg = _refused(path)
    assert "holds String, not numbers" in msg and "separated by ';'" in msg and "decimal=','" in msg


def test_single_arm_and_all_missing_metric_are_caught_by_validate(tmp_path):
    one_arm = buyers(300).assign(variant="control")
    one_arm.to_parquet(tmp_path / "one.parquet")
    msg = _refused(_spec_file(tmp_path, str(tmp_path / "one.parquet")))
    assert "variant: column 'variant' of data file 'one.parquet' holds one arm only ('control')" in msg
    missing = buyers(300).assign(refunds=np.nan, pre_orders=None)
    missing.to_parquet(tmp_path / "gone.parquet")
    msg = _refused(
        _spec_file(
            tmp_path,
            str(tmp_path / "gone.parquet"),
            metrics=[
                {
                    "name": "r",
                    "type": "ratio",
                    "numerator": "refunds",
                    "denominator": "orders",
                    "primary": True,
                    "dropna": True,
                },
                {"name": "o", "type": "mean", "column": "pre_orders"},
            ],
        )
    )
    assert "metrics[0].numerator: column 'refunds' of data file 'gone.parquet' has no value at all" in msg
    assert "metrics[1].column: column 'pre_orders'" in msg and "all 300 rows are missing" in msg


HOSTILE_TERMINAL = "Refunds \x1b[2J\x1b[31mSHIP IT\x1b[0m \u202eevil\u202c\x07"


def test_terminal_control_characters_are_printed_escaped(tmp_path, capsys, monkeypatch):
    from abkit.cli import main
    from abkit.readout import runner

    buyers(300).to_parquet(tmp_path / "d.parquet")
    good = _spec_file(tmp_path, str(tmp_path / "d.parquet"), name=HOSTILE_TERMINAL)
    assert main(["validate", str(good)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "Refunds \\x1b[2J\\x1b[31mSHIP IT" in out and "\\u202eevil" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "name": "x",
                "data": "d.parquet",
                f"k\x1b[2J{HOSTILE_TERMINAL}": 1,
                "metrics": [{"name": HOSTILE_TERMINAL, "type": "mean", "column": "orders\x1b]0;x", "primary": True}],
            }
        ),
        encoding="utf-8",
    )
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\u202e" not in err and "\\x1b[2J" in err
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        yaml.safe_dump(
            {
                "name": HOSTILE_TERMINAL,
                "kind": "power",
                "data": "d.parquet",
                "daily_units": 500,
                "mde": 0.2,
                "metrics": [
                    {
                        "name": HOSTILE_TERMINAL,
                        "type": "ratio",
                        "numerator": "refunds",
                        "denominator": "orders",
                        "primary": True,
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    assert main(["power", str(plan)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\\x1b[31mSHIP IT" in out

    def fake_readouts(paths, out_dir, **kw):
        folder = Path(out_dir) / "x"
        return [
            runner.ReadoutOutcome(
                spec_path=Path(paths[0]),
                name=HOSTILE_TERMINAL,
                slug="x",
                folder=folder,
                status="failed",
                error=f"DataError: column '{HOSTILE_TERMINAL}'",
            )
        ]

    monkeypatch.setattr(runner, "run_readouts", fake_readouts)
    assert main(["readout", str(good), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "FAILED Refunds \\x1b[2J" in err and "\x1b" not in err and "\u202e" not in err
