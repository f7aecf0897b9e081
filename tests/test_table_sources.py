"""A spec may name a warehouse table instead of a file: ``data: {engine, table, ...}``.

The readout from a DuckDB database table and from a Spark catalog table must
say exactly what the readout from the same rows in a parquet file says (same
summary numbers); bad table specs get one clear message each.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from conftest import require_spark

from abkit import SpecError
from abkit.engines import TableRef
from abkit.readout import plan, rollout
from abkit.readout.runner import _read_summary, run_readouts
from abkit.spec import ExperimentSpec, PowerSpec, RolloutSpec, load_spec

ROOT = Path(__file__).resolve().parents[1]
AB_SPEC = ROOT / "specs" / "instant_refunds.yaml"
AB_DATA = ROOT / "data" / "aftersales_ab.parquet"
PANEL = ROOT / "data" / "rollout_panel.parquet"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """A DuckDB database file holding the sample A/B data and the rollout panel in schema 'aftersales'."""
    path = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA aftersales")
    con.execute(f"CREATE TABLE aftersales.refund_test AS SELECT * FROM read_parquet('{AB_DATA}')")
    con.execute(f"CREATE TABLE aftersales.rollout AS SELECT * FROM read_parquet('{PANEL}')")
    con.close()
    return path


def _write(spec: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def _ab_spec(data) -> dict:
    raw = yaml.safe_load(AB_SPEC.read_text(encoding="utf-8"))
    raw["data"] = data
    return raw


# ---------------------------------------------------------------------------- the spec
def test_table_spec_round_trip_and_relative_database(warehouse):
    spec_path = _write(
        _ab_spec({"engine": "duckdb", "table": "aftersales.refund_test", "database": "warehouse.duckdb"}),
        warehouse.parent / "exp.yaml",
    )
    spec = load_spec(spec_path)
    assert spec.is_table
    assert spec.data == TableRef("duckdb", "aftersales.refund_test", str(warehouse))
    assert spec.data_label == "DuckDB table aftersales.refund_test in warehouse.duckdb"
    assert ExperimentSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(SpecError, match="not a file; use open_data"):
        _ = spec.data_path
    assert type(spec.open_data()).__module__.split(".")[0] in ("duckdb", "_duckdb")


@pytest.mark.parametrize(
    "data, where, fragment",
    [
        ({"table": "t", "database": "w.duckdb"}, "data.engine", "required key missing"),
        ({"engine": "duckdbb", "table": "t", "database": "w.duckdb"}, "data.engine", "Did you mean 'duckdb'"),
        ({"engine": "duckdb", "database": "w.duckdb"}, "data.table", "expected the table name"),
        ({"engine": "duckdb", "table": "t"}, "data.database", "expected the DuckDB database file"),
        ({"engine": "spark", "table": "t", "database": "db"}, "data.database", "table: aftersales.refunds"),
        ({"engine": "duckdb", "table": "t", "database": "w.duckdb", "conf": {"a": 1}}, "data.conf", "engine: spark"),
        ({"engine": "spark", "table": "t", "conf": ["spark.master"]}, "data.conf", "mapping of Spark settings"),
        ({"engine": "duckdb", "tabel": "t", "database": "w.duckdb"}, "data.tabel", "Did you mean 'table'"),
        (["a.parquet"], "data", "file path (text) or a table"),
    ],
)
def test_bad_table_specs_say_what_to_fix(data, where, fragment):
    with pytest.raises(SpecError) as info:
        ExperimentSpec.from_dict(_ab_spec(data), check_data=False)
    assert any(w == where and fragment in msg for w, msg in info.value.problems), info.value.problems


def test_missing_database_table_and_column_are_named(warehouse, tmp_path):
    with pytest.raises(SpecError, match=r"DuckDB database file 'nowhere.duckdb' \(resolved to"):
        load_spec(
            _write(_ab_spec({"engine": "duckdb", "table": "x", "database": "nowhere.duckdb"}), tmp_path / "a.yaml")
        )
    with pytest.raises(
        SpecError,
        match=r"'aftersales.refund_tset' not found .*tables there: "
        r"aftersales.refund_test, aftersales.rollout",
    ):
        load_spec(
            _write(
                _ab_spec({"engine": "duckdb", "table": "aftersales.refund_tset", "database": str(warehouse)}),
                tmp_path / "b.yaml",
            )
        )
    with pytest.raises(SpecError) as info:
        load_spec(_write(_ab_spec({"engine": "duckdb", "table": "x", "database": str(AB_DATA)}), tmp_path / "p.yaml"))
    assert [w for w, _ in info.value.problems] == ["data.database"]
    assert "a parquet or CSV file is not a database" in str(info.value)
    raw = _ab_spec({"engine": "duckdb", "table": "aftersales.rollout", "database": str(warehouse)})
    with pytest.raises(
        SpecError,
        match=r"column 'variant' not found in DuckDB table aftersales.rollout in "
        r"warehouse.duckdb",
    ):
        load_spec(_write(raw, tmp_path / "c.yaml"))


# ---------------------------------------------------------------------------- power and DiD from a table
def test_power_plan_and_did_panel_from_a_table_equal_the_file(warehouse, tmp_path):
    raw = yaml.safe_load((ROOT / "specs" / "refund_emails_plan.yaml").read_text(encoding="utf-8"))
    raw.pop("simulate", None)
    from_file = PowerSpec.from_dict({**raw, "data": str(AB_DATA)})
    from_table = PowerSpec.from_dict(
        {**raw, "data": {"engine": "duckdb", "table": "aftersales.refund_test", "database": str(warehouse)}}
    )
    a, b = plan.make_plan(from_file), plan.make_plan(from_table)
    assert a.main.to_frame().equals(b.main.to_frame())

    raw = yaml.safe_load((ROOT / "specs" / "refund_policy_rollout.yaml").read_text(encoding="utf-8"))
    p_file = rollout.load_panel(RolloutSpec.from_dict({**raw, "data": str(PANEL)}))
    p_table = rollout.load_panel(
        RolloutSpec.from_dict(
            {**raw, "data": {"engine": "duckdb", "table": "aftersales.rollout", "database": str(warehouse)}}
        )
    )
    key = [p_file.unit, p_file.time]
    left = p_file.frame.sort_values(key).reset_index(drop=True)
    right = p_table.frame.sort_values(key).reset_index(drop=True)
    assert left.shape == right.shape and p_file.n_rows == p_table.n_rows
    pd.testing.assert_frame_equal(left, right, check_dtype=False)


# ---------------------------------------------------------------------------- readouts
def _summaries(specs: dict[str, dict], folder: Path) -> dict[str, dict]:
    paths = [_write(s, folder / f"{name}.yaml") for name, s in specs.items()]
    outcomes = run_readouts(paths, folder / "out", jobs=1, progress=False)
    failed = [(o.name, o.error) for o in outcomes if not o.ok]
    assert not failed, failed
    summaries = {o.spec_path.stem: _read_summary(o.notebook) for o in outcomes}
    for summary in summaries.values():  # what each pinned (a parquet file, a database) differs by design
        assert summary.pop("data_snapshot")["fingerprint"]
    return summaries


_WHERE_FROM = ("data_snapshot", "data_fingerprint", "spec_path")  # which data and spec, not what they say


def _same(a, b) -> None:
    """Two readout summaries say the same (but for where they read from): equal words, numbers equal to 1e-9
    relative (engines sum in different orders)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            if key not in _WHERE_FROM:
                _same(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-12)
    else:
        assert a == b


def test_readout_from_a_duckdb_table_equals_the_file_readout(warehouse, tmp_path):
    got = _summaries(
        {
            "file": _ab_spec(str(AB_DATA)),
            "table": _ab_spec({"engine": "duckdb", "table": "aftersales.refund_test", "database": str(warehouse)}),
        },
        tmp_path,
    )
    assert got["file"]["arms"][0]["label"] == "Ship", got["file"]
    _same(got["file"], got["table"])
    page = (tmp_path / "out" / "table" / "readout.html").read_text(encoding="utf-8")
    assert "DuckDB table aftersales.refund_test in warehouse.duckdb" in page


SPARK_TABLE = textwrap.dedent("""
    import sys
    from pyspark.sql import SparkSession
    conf, parquet = eval(sys.argv[1]), sys.argv[2]
    builder = SparkSession.builder
    for k, v in conf.items():
        builder = builder.config(k, v)
    s = builder.getOrCreate()
    s.sql("CREATE DATABASE IF NOT EXISTS aftersales")
    s.read.parquet(parquet).write.mode("overwrite").saveAsTable("aftersales.refund_test")
    s.stop()
""")


@pytest.mark.slow
def test_readout_from_a_spark_table_equals_the_file_readout(tmp_path, monkeypatch):
    """A Hive-catalog table written by one Spark job, read by the readout's kernel through the spec's conf.

    The spec sets only allow-listed settings; where the metastore lives (a JDBC URL, JVM options) is
    the platform's spark-defaults.conf, found through SPARK_CONF_DIR as for any Spark job."""
    require_spark()
    conf = {
        "spark.master": "local[2]",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "2",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(tmp_path / "warehouse"),
    }
    platform = {
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={tmp_path / 'metastore_db'};create=true"
        ),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={tmp_path}",
    }
    (tmp_path / "spark-conf").mkdir()
    (tmp_path / "spark-conf" / "spark-defaults.conf").write_text(
        "".join(f"{k} {v}\n" for k, v in platform.items()), encoding="utf-8"
    )
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path / "spark-conf"))  # the kernels inherit it
    made = subprocess.run(
        [sys.executable, "-c", SPARK_TABLE, repr(conf), str(AB_DATA)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    got = _summaries(
        {
            "file": _ab_spec(str(AB_DATA)),
            "spark": _ab_spec({"engine": "spark", "table": "aftersales.refund_test", "conf": conf}),
        },
        tmp_path,
    )
    _same(got["file"], got["spark"])
    page = (tmp_path / "out" / "spark" / "readout.html").read_text(encoding="utf-8")
    assert "Spark table aftersales.refund_test" in page
