"""The results store (abkit.store, re-exported by abkit.portfolio): history, the latest view, filters,
validation, transactions, schema versions, and writers in several processes and threads at once."""

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import types
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

import abkit
import abkit.verdict
from abkit import portfolio, store
from abkit.business_impact import ImpactSpec
from abkit.errors import StoreError
from abkit.readout import records

ROOT = Path(__file__).resolve().parent.parent


def _row(slug="exp-a", metric="contact_rate", **kw):
    base = {
        "experiment": slug.replace("-", " ").title(),
        "slug": slug,
        "kind": "ab",
        "metric": metric,
        "variant": "treatment",
        "rel_effect": -0.02,
        "rel_se": 0.01,
        "verdict": "Ship",
        "is_primary": True,
        "better": "lower",
    }
    base.update(kw)
    return base


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# --------------------------------------------------------------------------- round trip
def test_record_and_load_round_trip(tmp_path):
    n = portfolio.record(
        tmp_path,
        [
            _row(metric="contact_rate", data_start="2026-09-01", n_control=19_980, owner="Returns team"),
            _row(metric="csat", is_primary=False, rel_effect=float("nan"), rel_se=None),
        ],
    )
    assert n == 2
    assert (tmp_path / "abkit.duckdb").exists() and store.store_path(tmp_path) == tmp_path / "abkit.duckdb"
    portfolio.record(
        tmp_path / "abkit.duckdb",
        [_row(slug="exp-b")],
        run_id="run-b",
        run_time=dt.datetime(2026, 10, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    )
    df = portfolio.load(tmp_path)
    assert list(df.columns) == list(store.COLUMNS)
    assert len(df) == 3
    assert df["record_seq"].tolist() == [1, 1, 2] and df["position"].tolist() == [0, 1, 0]
    assert df["run_id"].iloc[0] == df["run_id"].iloc[1] != "run-b" and df["run_id"].iloc[2] == "run-b"
    assert df["run_time"].iloc[2] == pd.Timestamp("2026-10-01 10:00")  # stored in UTC
    assert df["abkit_version"].eq(abkit.__version__).all() and df["status"].eq("ok").all()
    assert df["data_start"].iloc[0] == pd.Timestamp("2026-09-01") and pd.isna(df["data_start"].iloc[1])
    assert df["n_control"].iloc[0] == 19_980 and pd.isna(df["n_control"].iloc[1])
    assert np.isnan(df["rel_effect"].iloc[1]) and np.isnan(df["rel_se"].iloc[1])  # NaN and None: NULL
    assert df["owner"].iloc[0] == "Returns team" and df["owner"].iloc[1] is None
    assert str(df["is_primary"].dtype) == "boolean" and df["is_primary"].tolist() == [True, False, True]
    assert df["metric"].tolist() == ["contact_rate", "csat", "contact_rate"]


def test_latest_is_the_last_written_run_of_each_experiment(tmp_path):
    portfolio.record(tmp_path, [_row("a", verdict="Inconclusive"), _row("a", "csat", is_primary=False)])
    portfolio.record(tmp_path, [_row("b")])
    # a rerun of "a" whose data ran earlier (older run_time) is still the latest written: its page replaced the old
    portfolio.record(tmp_path, [_row("a", verdict="Ship"), _row("a", "csat", is_primary=False)], run_time="2000-01-01")
    view = portfolio.latest(tmp_path)
    assert sorted(view["slug"]) == ["a", "a", "b"]
    assert view.loc[view.slug == "a", "verdict"].tolist() == ["Ship", "Ship"]
    assert view.loc[view.slug == "a", "metric"].tolist() == ["contact_rate", "csat"]  # the spec's order
    from_frame = portfolio.latest(portfolio.load(tmp_path))
    pd.testing.assert_frame_equal(
        view.sort_values(["slug", "position"]).reset_index(drop=True),
        from_frame.sort_values(["slug", "position"]).reset_index(drop=True),
    )
    hist = portfolio.history(tmp_path, "a")
    assert hist["record_seq"].tolist() == [1, 1, 3, 3]
    with pytest.raises(abkit.DataError, match="no experiment 'zzz'.*a, b"):
        portfolio.history(tmp_path, "zzz")


def test_latest_filters(tmp_path):
    portfolio.record(
        tmp_path,
        [
            _row("a", owner="Returns team", verdict="Ship"),
            _row("a", "csat", owner="Returns team", is_primary=False, verdict="Ship"),
        ],
        run_time="2026-09-01",
    )
    portfolio.record(tmp_path, [_row("b", owner="CS team", verdict="Inconclusive", kind="did")], run_time="2026-10-01")
    portfolio.record(
        tmp_path, [_row("c", owner="CS team", status="failed", error="boom", verdict=None)], run_time="2026-11-01"
    )
    portfolio.record(tmp_path, [_row("a", owner="Returns team", verdict="Inconclusive")], run_time="2026-12-01")

    def slugs(**kw):
        return sorted(set(portfolio.latest(tmp_path, **kw)["slug"]))

    assert slugs() == ["a", "b", "c"]
    assert slugs(owner="CS team") == ["b", "c"]
    assert slugs(owner=["CS team", "Returns team"]) == ["a", "b", "c"]
    assert slugs(kind="did") == ["b"]
    assert slugs(verdict="Ship") == []  # a's latest readout is Inconclusive, the old Ship is history
    assert slugs(verdict="Inconclusive") == ["a", "b"]
    assert slugs(status="failed") == ["c"]
    assert slugs(experiment="B") == ["b"] and slugs(experiment="b") == ["b"]
    assert slugs(since="2026-10-15") == ["a", "c"] and slugs(until="2026-10-15") == ["b"]
    assert len(portfolio.latest(tmp_path, metric="csat")) == 0  # a's latest run measured no csat
    assert len(portfolio.latest(tmp_path, primary_only=True)) == 3


# --------------------------------------------------------------------------- validation and transactions
def test_rows_are_validated_with_clear_messages(tmp_path):
    with pytest.raises(abkit.DataError, match=r"unknown column\(s\).*rel_efect \(did you mean rel_effect\?\)"):
        portfolio.record(tmp_path, [_row(rel_efect=0.1)])
    with pytest.raises(abkit.DataError, match="row 0 has no slug"):
        portfolio.record(tmp_path, [{k: v for k, v in _row().items() if k != "slug"}])
    with pytest.raises(abkit.DataError, match="status 'done' must be 'ok' or 'failed'"):
        portfolio.record(tmp_path, [_row(status="done")])
    with pytest.raises(abkit.DataError, match="record_seq are set by the store"):
        portfolio.record(tmp_path, [_row(record_seq=5)])
    with pytest.raises(abkit.DataError, match="column 'rel_effect': 'big' is not a number"):
        portfolio.record(tmp_path, [_row(rel_effect="big")])
    with pytest.raises(abkit.DataError, match="column 'is_primary': 'yes' is not true/false"):
        portfolio.record(tmp_path, [_row(is_primary="yes")])
    with pytest.raises(abkit.DataError, match="no rows to record"):
        portfolio.record(tmp_path, [])
    with pytest.raises(abkit.DataError, match="unknown keyword"):
        portfolio.record(tmp_path, [_row()], slugg="x")
    assert not (tmp_path / "abkit.duckdb").exists()  # nothing was even opened
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(StoreError, match="cannot create the folder"):
        portfolio.record(tmp_path / "a-file" / "out", [_row()])
    portfolio.record(tmp_path / "new" / "out", [_row()])  # a new output folder is created
    assert len(portfolio.load(tmp_path / "new" / "out")) == 1
    # keywords fill what the rows leave empty (the runner's slug and spec path)
    portfolio.record(
        tmp_path, [{k: v for k, v in _row().items() if k != "slug"}], slug="from-runner", spec_path="specs/x.yaml"
    )
    assert portfolio.load(tmp_path)[["slug", "spec_path"]].values.tolist() == [["from-runner", "specs/x.yaml"]]


def test_a_failed_write_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    real = store._arrow_table

    def broken(rows, seq, at):  # the insert fails inside the transaction, after the DDL
        return real(rows, seq, at).drop_columns(["slug"])

    monkeypatch.setattr(store, "_arrow_table", broken)
    with pytest.raises(StoreError, match="failed, nothing was written"):
        portfolio.record(tmp_path, [_row("a")])
    assert portfolio.load(tmp_path).empty  # even the table's creation was rolled back
    monkeypatch.setattr(store, "_arrow_table", real)
    portfolio.record(tmp_path, [_row("a")])
    monkeypatch.setattr(store, "_arrow_table", broken)
    with pytest.raises(StoreError, match=r"writing 2 row\(s\).*failed, nothing was written"):
        portfolio.record(tmp_path, [_row("b"), _row("b", "csat")])
    monkeypatch.setattr(store, "_arrow_table", real)
    assert portfolio.load(tmp_path)["slug"].tolist() == ["a"]
    portfolio.record(tmp_path, [_row("c")])  # and the store still works
    assert portfolio.load(tmp_path)["record_seq"].tolist() == [1, 2]


def test_schema_version_and_migration_of_an_older_store(tmp_path):
    portfolio.record(tmp_path, [_row("a", margin=0.02, impact_volume=1e6)])
    path = tmp_path / "abkit.duckdb"
    con = duckdb.connect(str(path))
    assert con.execute("SELECT max(version) FROM abkit_schema").fetchall()[0][0] == store.SCHEMA_VERSION
    # make it look like a store written before the impact columns existed (schema version 0)
    for col in ("impact_volume", "impact_per", "impact_unit", "impact_value", "impact_currency"):
        con.execute(f"ALTER TABLE readouts DROP COLUMN {col}")
    con.execute("DELETE FROM abkit_schema")
    con.execute("INSERT INTO abkit_schema VALUES (0, now(), '0.0.1')")
    con.close()
    old = portfolio.load(tmp_path)  # reading an older store: the missing columns are empty
    assert list(old.columns) == list(store.COLUMNS) and old["impact_volume"].isna().all()
    portfolio.record(tmp_path, [_row("b", impact_volume=2e6)])  # the next write migrates it
    df = portfolio.load(tmp_path)
    assert df["impact_volume"].tolist()[0] != df["impact_volume"].tolist()[0]  # NaN for the old row
    assert df["impact_volume"].tolist()[1] == 2e6 and df["margin"].tolist()[0] == 0.02
    con = duckdb.connect(str(path), read_only=True)
    assert [r[0] for r in con.execute("SELECT version FROM abkit_schema ORDER BY version").fetchall()] == [
        0,
        store.SCHEMA_VERSION,
    ]
    con.close()
    assert len(portfolio.latest(tmp_path)) == 2  # the view was re-created with the new columns


def test_a_store_from_a_newer_abkit_is_read_but_not_written(tmp_path):
    portfolio.record(tmp_path, [_row("a")])
    con = duckdb.connect(str(tmp_path / "abkit.duckdb"))
    con.execute("ALTER TABLE readouts ADD COLUMN future_column DOUBLE")
    con.execute(f"INSERT INTO abkit_schema VALUES ({store.SCHEMA_VERSION + 1}, now(), '9.0')")
    con.close()
    df = portfolio.load(tmp_path)
    assert len(df) == 1 and "future_column" in df.columns
    with pytest.raises(StoreError, match=f"schema version {store.SCHEMA_VERSION + 1}, written by a newer abkit"):
        portfolio.record(tmp_path, [_row("b")])
    assert len(portfolio.load(tmp_path)) == 1


def test_reading_a_missing_store_says_how_to_make_one(tmp_path):
    with pytest.raises(StoreError, match="no results store at .*abkit readout"):
        portfolio.load(tmp_path)
    duckdb.connect(str(tmp_path / "abkit.duckdb")).close()  # a file without the table: empty frame
    assert portfolio.load(tmp_path).empty and list(portfolio.load(tmp_path).columns) == list(store.COLUMNS)


# --------------------------------------------------------------------------- locks and concurrency
_HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
""")


def _hold_lock(path, seconds):
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_lock_held_too_long_fails_loudly(tmp_path):
    portfolio.record(tmp_path, [_row("a")])
    holder = _hold_lock(tmp_path / "abkit.duckdb", 30)
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match=rf"stayed locked for 1 s .*PID {holder.pid}.*Nothing was written"):
            portfolio.record(tmp_path, [_row("b")], timeout=1)
        assert 0.9 < time.monotonic() - started < 10
        with pytest.raises(StoreError, match="stayed locked"):
            portfolio.load(tmp_path, timeout=0.5)
    finally:
        holder.kill()
        holder.wait()
    assert portfolio.load(tmp_path)["slug"].tolist() == ["a"]


def test_a_writer_waits_for_the_lock_and_then_writes(tmp_path):
    portfolio.record(tmp_path, [_row("a")])
    holder = _hold_lock(tmp_path / "abkit.duckdb", 2)
    try:
        started = time.monotonic()
        portfolio.record(tmp_path, [_row("b")], timeout=120)
        assert time.monotonic() - started > 1.0  # it did wait
    finally:
        holder.wait(timeout=60)
    assert portfolio.load(tmp_path)["slug"].tolist() == ["a", "b"]


_WRITER = textwrap.dedent("""
    import sys
    from abkit import store
    out, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for i in range(n):
        store.record(out, [{"experiment": f"exp {who}", "slug": f"exp-{who}", "kind": "ab", "metric": m,
                            "variant": "treatment", "owner": f"{who}:{i}"} for m in ("a", "b", "c")], timeout=600)
""")


@pytest.mark.parametrize("processes, appends", [(4, 12), pytest.param(4, 60, marks=pytest.mark.slow)])
def test_concurrent_processes_lose_no_row(tmp_path, processes, appends):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path), str(w), str(appends)],
            env=_env(),
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(processes)
    ]
    errors = [p.communicate(timeout=900)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    df = portfolio.load(tmp_path)
    assert len(df) == processes * appends * 3
    assert df["run_id"].nunique() == processes * appends
    assert sorted(df["record_seq"].unique()) == list(range(1, processes * appends + 1))  # one write at a time
    for w in range(processes):  # every append of every writer, each whole (3 rows of one run)
        mine = df[df["slug"] == f"exp-{w}"]
        owners = sorted(mine["owner"].unique(), key=lambda s: int(s.split(":")[1]))
        assert owners == [f"{w}:{i}" for i in range(appends)]
        assert (mine.groupby("run_id").size() == 3).all()
    assert len(portfolio.latest(tmp_path)) == processes * 3


def test_threads_of_one_process_take_turns(tmp_path):
    failures = []

    def work(t):
        try:
            for i in range(5):
                portfolio.record(tmp_path, [_row(f"t{t}", owner=str(i))])
                portfolio.load(tmp_path)
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not failures
    df = portfolio.load(tmp_path)
    assert len(df) == 20 and df["record_seq"].nunique() == 20


# --------------------------------------------------------------------------- rows from readouts
def _instant_refunds():
    spec = abkit.load_spec(ROOT / "specs" / "instant_refunds.yaml")
    result = abkit.analyze(
        spec.open_data(),
        spec.build_metrics(),
        variant=spec.variant,
        control=spec.control,
        alpha=spec.alpha,
        correction=spec.correction,
        allocation=spec.planned_allocation,
    )
    verdicts = abkit.verdict.decide(result, primary=spec.primary.name, guardrails=spec.margins)
    return spec, result, verdicts


def _with_impact(spec, impact):
    """The spec with an ``impact:`` block."""
    return dataclasses.replace(spec, impact=ImpactSpec.coerce(impact))


def test_ab_rows_carry_the_result_and_the_verdict(tmp_path):
    spec, result, verdicts = _instant_refunds()
    spec = _with_impact(spec, {"volume": 2_000_000, "per": "orders", "unit": "refunds", "value": 30})
    rows = records.ab_rows(spec, result, verdicts)
    json.dumps(rows)  # plain data: travels in notebook metadata
    frame = result.to_frame()
    assert len(rows) == len(frame) == len(spec.metrics)
    for row, (_, ref) in zip(rows, frame.iterrows()):
        assert row["metric"] == ref["metric"] and row["variant"] == ref["variant"]
        for c in (
            "control_value",
            "treatment_value",
            "effect",
            "ci_lower",
            "ci_upper",
            "rel_effect",
            "rel_se",
            "rel_ci_lower",
            "rel_ci_upper",
            "p_value",
            "se",
        ):
            assert row[c] == pytest.approx(ref[c], rel=1e-15), c
        assert row["n_control"] == ref["n_control"] and row["method"] == ref["method"]
        assert row["verdict"] == verdicts[0].label and row["headline"] == verdicts[0].headline
    by_metric = {r["metric"]: r for r in rows}
    assert by_metric["refund_rate"]["is_primary"] and not by_metric["contact_rate"]["is_primary"]
    assert by_metric["repeat_purchase_30d"]["is_guardrail"] and by_metric["repeat_purchase_30d"]["margin"] == 0.02
    assert by_metric["refund_rate"]["impact_volume"] == 2e6 and "impact_volume" not in by_metric["csat"]
    assert rows[0]["data_start"] == "2026-09-01" and rows[0]["spec_path"].endswith("instant_refunds.yaml")
    assert rows[0]["owner"] == spec.owner and rows[0]["unit"] == "buyer_id" and rows[0]["alpha"] == 0.05
    assert {r["change_scale"] for r in rows} == {"relative"} and rows[0]["data_fingerprint"] is None
    assert {r["p_label"] for r in rows} == {"p"}  # no correction, fixed horizon
    pinned = records.ab_rows(spec, result, verdicts, snapshot={"fingerprint": "0123456789ab", "bytes": 1})
    assert {r["data_fingerprint"] for r in pinned} == {"0123456789ab"}  # the data the readout read
    portfolio.record(tmp_path, pinned, slug="instant_refunds")
    df = portfolio.load(tmp_path)
    assert df["metric"].tolist() == list(frame["metric"]) and df["verdict"].eq(verdicts[0].label).all()
    assert df["data_fingerprint"].eq("0123456789ab").all() and df["change_scale"].eq("relative").all()


def test_rollout_plan_and_failed_rows(tmp_path):
    from abkit.readout.rollout import Effect

    spec = abkit.load_spec(ROOT / "specs" / "refund_policy_rollout.yaml")
    main = Effect(
        outcome=spec.outcome.name,
        better=spec.outcome.better,
        scale="log",
        estimate=-0.0632,
        se=0.015,
        ci_lower=-0.0926,
        ci_upper=-0.0338,
        p_value=0.0001,
        bootstrap_p=0.002,
        rel=float(np.expm1(-0.0632)),
        rel_ci_lower=float(np.expm1(-0.0926)),
        rel_ci_upper=float(np.expm1(-0.0338)),
        baseline=float("nan"),
        alpha=0.05,
    )
    verdict = abkit.verdict.decide_rollout(
        spec.outcome.name,
        spec.outcome.better,
        main.rel,
        main.rel_ci_lower,
        main.rel_ci_upper,
        main.p_value,
        0.4,
        alpha=0.05,
    )
    rows = records.rollout_rows(spec, verdict, main, [(spec.outcome, None, "failed"), (spec.outcome, main, None)])
    json.dumps(rows)
    assert len(rows) == 2 and rows[0]["is_primary"] and not rows[1]["is_primary"]
    assert rows[0]["kind"] == "did" and rows[0]["variant"] == "rollout" and rows[0]["verdict"] == "Worked"
    # delta method: d exp(b) - 1 / db = exp(b) = 1 + rel
    assert rows[0]["rel_se"] == pytest.approx((1 + main.rel) * 0.015, rel=1e-15)
    plan = types.SimpleNamespace(
        name="Plan",
        kind="power",
        owner=None,
        source=None,
        alpha=0.05,
        primary=types.SimpleNamespace(name="refund_rate", better="lower"),
    )
    rec = types.SimpleNamespace(label="Run 28 days", headline="Run it for 28 days.", mde=0.0612, days=28)
    failed = records.failed_rows(spec, "KeyError: 'orders'")
    portfolio.record(tmp_path, rows, slug="rollout")
    portfolio.record(tmp_path, records.plan_rows(plan, rec), slug="plan")
    portfolio.record(tmp_path, failed, slug="broken")
    df = portfolio.latest(tmp_path)
    assert df.set_index("slug").loc["plan", "verdict"] == "Run 28 days"
    assert df.set_index("slug").loc["plan", "verdict_note"] == "MDE 6.1% in 28 days"  # what 28 days detect
    assert df.set_index("slug").loc["broken", "status"] == "failed"
    assert df.set_index("slug").loc["broken", "error"] == "KeyError: 'orders'"


def test_a_version_1_store_gains_the_snapshot_and_scale_columns(tmp_path):
    """Schema 2 adds data_fingerprint, change_scale and p_label; a store written by schema 1 is migrated."""
    portfolio.record(tmp_path, [_row("a")])
    path = tmp_path / "abkit.duckdb"
    con = duckdb.connect(str(path))
    con.execute("DROP VIEW latest")
    for col in ("data_fingerprint", "change_scale", "p_label"):
        con.execute(f"ALTER TABLE readouts DROP COLUMN {col}")
    con.execute("DELETE FROM abkit_schema")
    con.execute("INSERT INTO abkit_schema VALUES (1, now(), '0.1.0')")
    con.execute("CREATE VIEW latest AS SELECT * FROM readouts")
    con.close()
    portfolio.record(tmp_path, [_row("b", data_fingerprint="feedbeef0123", change_scale="relative")])
    df = portfolio.load(tmp_path)
    assert df["slug"].tolist() == ["a", "b"] and pd.isna(df.loc[0, "data_fingerprint"])
    assert df.loc[1, "data_fingerprint"] == "feedbeef0123" and df.loc[1, "change_scale"] == "relative"
    assert set(portfolio.latest(tmp_path)["slug"]) == {"a", "b"}
