"""Maturity windows (issue 17.3) and the spec fields of time-to-event metrics (17.4).

* A windowed metric reads exactly the units whose window had closed by the data's end: it equals the same
  metric on the filtered rows, in memory, from a parquet path and in DuckDB; the counts per arm agree.
* Known truth: an early read of a change that only speeds refunds up. The naive "refunded so far" rate finds
  an effect on a rate the change did not move; the windowed rate ("refunded within 7 days", mature buyers
  only) covers the exact truth, like the censoring-aware share in tests/test_survival_calibration.py.
* The spec: `window`, `data_end`, `type: time_to_event` (duration/event or start/end), their problems worded
  with the field, round trip, JSON Schema; the readout's words (mature counts, units left out, the verdict
  line, the Kaplan-Meier section) on the sample spec.
"""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import abkit
from abkit import simulate
from abkit.errors import AbkitError, SpecError
from abkit.maturity import (
    data_cutoff,
    first_immature_day,
    maturity,
    parse_window,
    window_text,
    windowed,
)
from abkit.spec import ExperimentSpec, load_spec

ROOT = Path(__file__).resolve().parents[1]
AB_SPEC = ROOT / "specs" / "instant_refunds.yaml"
AB_DATA = ROOT / "data" / "aftersales_ab.parquet"


# --------------------------------------------------------------------------- the window rule
@pytest.mark.parametrize(
    "value, days",
    [("30d", 30), ("30 days", 30), ("12h", 0.5), ("2w", 14), (7, 7), (1.5, 1.5), (dt.timedelta(days=3), 3)],
)
def test_parse_window(value, days):
    assert parse_window(value) == pd.Timedelta(days=days)


@pytest.mark.parametrize("value", ["30", "thirty days", "-3d", "0d", 0, -1, True, None, float("nan")])
def test_parse_window_refuses(value):
    with pytest.raises(AbkitError, match="window"):
        parse_window(value)


def test_the_window_arithmetic_without_pandas_is_pandas_to_the_nanosecond():
    # A spec's windows are worked out in plain Python (checking a spec does not import pandas); the first
    # immature day and the window's words must be what pandas' Timestamp / Timedelta arithmetic gives.
    from abkit.maturity import _cutoff_ns, _window_ns

    rng = np.random.default_rng(7)
    windows = [f"{x:.3f}d" for x in rng.random(300) * 60] + [f"{h}h" for h in rng.integers(1, 200, 100)]
    windows += [float(x) for x in rng.random(200) * 45] + ["21d", "2w", "36h", "0.1d", "7.7h", 30]
    windows += [dt.timedelta(days=2, seconds=17, microseconds=3), pd.Timedelta(nanoseconds=86_400 * 10**9 + 1)]
    base = dt.datetime(2026, 10, 12, 0, 0)
    ends = [dt.date(2026, 10, 12), dt.date(1969, 12, 1), base, base + dt.timedelta(hours=13, microseconds=7)]
    ends += [dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))]
    ends += [base + dt.timedelta(seconds=float(s)) for s in rng.random(50) * 86_400 * 30]
    for window in windows:
        w = pd.Timedelta(window) if isinstance(window, dt.timedelta) else pd.Timedelta(parse_window(window))
        assert _window_ns(window) == w.value, window
        days = w / pd.Timedelta(days=1)
        words = f"{days:g}-day" if days >= 1 and float(days).is_integer() else f"{w / pd.Timedelta(hours=1):g}-hour"
        assert window_text(window) == words, window
        for end in ends:
            stamp = pd.Timestamp(end)
            cutoff = stamp + pd.Timedelta(days=1) if type(end) is dt.date else stamp
            if cutoff.tzinfo is not None:
                cutoff = cutoff.tz_convert("UTC").tz_localize(None)
            assert _cutoff_ns(end) == cutoff.value, end
            assert first_immature_day(window, end) == (cutoff - w).floor("D").date(), (window, end)


def test_checking_a_windowed_spec_does_not_import_pandas():
    # `abkit readout` checks every spec before its kernel starts; pandas (0.25 s) is left to the kernel
    import subprocess
    import sys

    code = f"import sys; from abkit.spec import load_spec; load_spec({str(AB_SPEC)!r}); print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_window_words_and_the_cutoff():
    assert window_text("21d") == "21-day" and window_text("12h") == "12-hour" and window_text("2w") == "14-day"
    # a date holds that whole day: the data were read at the next midnight; a timestamp is taken as it is
    assert data_cutoff(dt.date(2026, 10, 12)) == pd.Timestamp("2026-10-13")
    assert data_cutoff("2026-10-12") == pd.Timestamp("2026-10-13")
    assert data_cutoff(dt.datetime(2026, 10, 12, 6)) == pd.Timestamp("2026-10-12 06:00")
    # exposed on day D: mature when D + 1 day + window <= cutoff, i.e. D < floor(cutoff - window)
    assert first_immature_day("30d", dt.date(2026, 10, 12)) == dt.date(2026, 9, 13)
    assert first_immature_day("30d", dt.datetime(2026, 10, 12, 6)) == dt.date(2026, 9, 12)
    assert first_immature_day("12h", dt.datetime(2026, 10, 12, 6)) == dt.date(2026, 10, 11)


@pytest.fixture(scope="module")
def sample():
    return pd.read_parquet(AB_DATA)


def _sources(df):
    import duckdb

    return {"memory": df, "path": AB_DATA, "duckdb": duckdb.read_parquet(str(AB_DATA))}


@pytest.mark.parametrize("source", ["memory", "path", "duckdb"])
def test_a_windowed_metric_is_the_metric_on_the_mature_rows(sample, source):
    ratio = abkit.Ratio("contacts", "orders", covariates=("pre_contacts", "pre_orders"), name="contact_rate")
    share = abkit.Proportion("repeat_purchase_30d", covariate="pre_repeat_purchase_30d", name="repeat")
    metrics = [
        windowed(ratio, "exposure_date", "21d", "2026-10-12"),
        windowed(share, "exposure_date", "30d", "2026-10-12"),
    ]
    got = abkit.analyze(_sources(sample)[source], metrics).to_frame().set_index("metric")
    for metric, first in ((ratio, "2026-09-22"), (share, "2026-09-13")):
        mature = sample[sample.exposure_date < first]
        want = abkit.analyze(mature, [metric]).to_frame().iloc[0]
        row = got.loc[metric.name]
        for col in ("control_value", "treatment_value", "effect", "ci_lower", "ci_upper", "p_value"):
            assert row[col] == pytest.approx(want[col], rel=1e-9, abs=1e-12), (metric.name, col)
        assert (row["n_control"], row["n_treatment"]) == (want["n_control"], want["n_treatment"])
        left_out = sample[sample.exposure_date >= first].variant.value_counts()
        assert row["dropped_control"] == left_out["control"] and row["dropped_treatment"] == left_out["treatment"]


def test_windowed_metrics_in_daily_moments_and_the_counts(sample):
    metric = windowed(abkit.Mean("refund_amount"), "exposure_date", "21d", "2026-10-12")
    ms = abkit.moments(sample, [metric], by="exposure_date")  # the date is both a key and read by the window
    days = sorted(ms.segments, key=pd.Timestamp)
    assert len(days) == 28
    late = ms.segment(days[-1]).block_for(metric.columns, True)
    assert late.n.sum() == 0  # exposed Sep 28: window still open
    counts = maturity(AB_DATA, "variant", "exposure_date", "21d", "2026-10-12")
    mature = sample[sample.exposure_date < "2026-09-22"].variant.value_counts()
    assert counts.mature == {"control": mature["control"], "treatment": mature["treatment"]}
    assert counts.total == len(sample) and counts.total_left_out == (sample.exposure_date >= "2026-09-22").sum()
    assert counts.sentence("buyers").startswith(
        f"{counts.total_mature:,} of 40,000 buyers (86%) were exposed by "
        "Sep 21, so their 21-day window had closed by the data's end (Oct 12)"
    )


def test_windows_refuse_what_they_cannot_window(sample):
    with pytest.raises(AbkitError, match="censored"):
        windowed(abkit.TimeToEvent("days_to_refund", "refunded", horizon=30), "exposure_date", "30d", "2026-10-12")
    with pytest.raises(AbkitError, match="name the date column"):
        windowed(abkit.Mean("refund_amount"), None, "30d", "2026-10-12")
    with pytest.raises(abkit.DataError, match="not dates"):
        maturity(sample, "variant", "orders", "30d", "2026-10-12")
    with pytest.raises(abkit.DataError, match="exposure_dat"):
        maturity(sample, "variant", "exposure_dat", "30d", "2026-10-12")


# --------------------------------------------------------------------------- known truth: an early read
def test_an_early_read_biases_the_naive_rate_but_not_the_windowed_rate():
    # Refunds 1.5x faster in treatment, the same eventual refund share (85%): the change does not move the
    # refund rate. Read 10 days in, the naive "refunded so far" rate says it did; the rate of refunds within
    # 7 days of the scan, on buyers whose 7 days had passed, estimates exactly that (known) quantity.
    df = simulate.time_to_refund(150_000, hazard_ratio=1.5, read_day=10, seed=21)
    truth = simulate.time_to_refund_truth(7.0, 7.0, hazard_ratio=1.5)
    assert truth["treatment"]["refund_share"] == truth["control"]["refund_share"]
    df["refunded_7d"] = ((df.refunded == 1) & (df.days_to_refund <= 7.0)).astype(int)
    naive = abkit.analyze(df, abkit.Proportion("refunded", name="naive")).row("naive")
    assert naive["p_value"] < 1e-6 and naive["ci_lower"] > 0.02
    rate = windowed(abkit.Proportion("refunded_7d", name="rate_7d"), "exposure_time", "7d", df.attrs["data_end"])
    row = abkit.analyze(df, rate).row("rate_7d")
    target = truth["treatment"]["share_by"] - truth["control"]["share_by"]
    assert row["ci_lower"] < target < row["ci_upper"]
    for arm, value in (("control", row["control_value"]), ("treatment", row["treatment_value"])):
        assert value == pytest.approx(truth[arm]["share_by"], abs=4 * row["se"])
    # the same column without the window is biased low in both arms (buyers scanned < 7 days ago)
    unwindowed = abkit.analyze(df, abkit.Proportion("refunded_7d", name="all")).row("all")
    assert unwindowed["control_value"] < truth["control"]["share_by"] - 10 * row["se"]
    counts = maturity(df, "variant", "exposure_time", "7d", df.attrs["data_end"])
    assert counts.total_mature == row["n_control"] + row["n_treatment"]


@pytest.mark.slow
def test_early_reads_windowed_rate_bias_and_coverage():
    from calibration_log import record

    reps = 1000
    truth = simulate.time_to_refund_truth(7.0, 7.0, hazard_ratio=1.5)
    target = truth["treatment"]["share_by"] - truth["control"]["share_by"]
    eff, cov, naive_rej = [], [], []
    for r in range(reps):
        df = simulate.time_to_refund(4000, hazard_ratio=1.5, read_day=10, seed=70_000 + r)
        df["refunded_7d"] = ((df.refunded == 1) & (df.days_to_refund <= 7.0)).astype(int)
        rate = windowed(abkit.Proportion("refunded_7d", name="w"), "exposure_time", "7d", df.attrs["data_end"])
        res = abkit.analyze(df, [rate, abkit.Proportion("refunded", name="naive")])
        row = res.row("w")
        eff.append(row["effect"] - target)
        cov.append(row["ci_lower"] <= target <= row["ci_upper"])
        naive_rej.append(res.row("naive")["p_value"] < 0.05)
    print(
        f"[tte] windowed early read: bias {np.mean(eff):+.5f}, coverage {np.mean(cov):.3f}; naive rate "
        f"rejects {np.mean(naive_rej):.0%}"
    )
    assert abs(np.mean(eff)) < 3 * np.std(eff) / np.sqrt(reps)
    assert record(
        "tte/early/windowed",
        section="Time to event",
        test="test_maturity.py::test_early_reads_windowed_rate_bias_and_coverage",
        metric="refunded within 7 days, read on day 10",
        method="maturity window 7d (mature buyers only)",
        statistic="coverage",
        value=float(np.mean(cov)),
        nominal=0.95,
        reps=reps,
        note=f"the naive refunded-so-far rate rejects a true null in {np.mean(naive_rej):.0%}",
    )


# --------------------------------------------------------------------------- the spec
def _raw(**changes):
    import yaml

    raw = yaml.safe_load(AB_SPEC.read_text(encoding="utf-8"))
    raw["data"] = str(AB_DATA)
    raw.update(changes)
    return raw


def _problems(raw):
    with pytest.raises(SpecError) as info:
        ExperimentSpec.from_dict(raw, check_data=False)
    return dict(info.value.problems)


def test_sample_spec_fields_and_round_trip():
    spec = load_spec(AB_SPEC)
    assert spec.data_end == dt.date(2026, 10, 12) and spec.windows == {"contact_rate": "21d"}
    tte = next(m for m in spec.metrics if m.name == "time_to_refund")
    assert (tte.type, tte.duration, tte.event, tte.time_horizon, tte.time_unit) == (
        "time_to_event",
        "days_to_refund",
        "refunded",
        30.0,
        "days",
    )
    built = {m.name: m for m in spec.build_metrics()}
    assert isinstance(built["time_to_refund"], abkit.TimeToEvent) and built["time_to_refund"].horizon == 30
    assert built["contact_rate"].option("window") == "21-day" and built["contact_rate"].dropna
    assert not built["refund_rate"].derived
    assert ExperimentSpec.from_dict(spec.to_dict()) == spec
    spec_window = ExperimentSpec.from_dict(_raw(window="14d"), check_data=False)
    assert spec_window.windows["refund_rate"] == "14d" and spec_window.windows["contact_rate"] == "21d"
    assert spec_window.metrics[3].time_horizon == 30  # its own horizon wins over the window
    assert ExperimentSpec.from_dict(spec_window.to_dict(), check_data=False) == spec_window
    assert "window" not in spec_window.to_dict()["metrics"][0]  # the spec's, written once


def test_time_to_event_from_timestamps_in_a_spec():
    df = simulate.time_to_refund(3000, hazard_ratio=1.5, seed=3)
    df["exposure_date"] = df.exposure_time.dt.normalize()
    raw = {
        "name": "t",
        "data": "x.parquet",
        "date": "exposure_date",
        "data_end": "2026-10-01T12:00:00",
        "metrics": [
            {
                "name": "time_to_refund",
                "type": "time_to_event",
                "start": "exposure_time",
                "end": "refund_time",
                "window": "30d",
                "primary": True,
            }
        ],
    }
    spec = ExperimentSpec.from_dict(raw, check_data=False)
    assert spec.data_end == dt.datetime(2026, 10, 1, 12) and spec.metrics[0].time_horizon == 30
    (metric,) = spec.build_metrics()
    by_hand = abkit.TimeToEvent.from_timestamps(
        "exposure_time", "refund_time", "2026-10-01 12:00", horizon=30, name="time_to_refund"
    )
    a = abkit.analyze(df, [metric]).to_frame().iloc[0]
    b = abkit.analyze(df, [by_hand]).to_frame().iloc[0]
    assert a["effect"] == b["effect"] and a["ci_lower"] == b["ci_lower"]


@pytest.mark.parametrize(
    "change, where, fragment",
    [
        ({"data_end": None, "metrics": None}, "data_end", "needs to know when the data was read"),
        ({"date": None}, "date", "counts from each unit's exposure date"),
        ({"window": "thirty"}, "window", "expected a positive window like 30d"),
        ({"windw": "30d"}, "windw", "Did you mean 'window'"),
        ({"data_end": "yesterday"}, "data_end", "expected when the data was read"),
    ],
)
def test_spec_window_problems(change, where, fragment):
    raw = _raw(**{k: v for k, v in change.items() if v is not None})
    for k, v in change.items():
        if v is None and k != "metrics":
            raw.pop(k, None)
    problems = _problems(raw)
    assert where in problems and fragment in problems[where], problems


@pytest.mark.parametrize(
    "metric, where, fragment",
    [
        ({"type": "time_to_event", "duration": "d"}, "metrics[0].event", "required with `duration`"),
        ({"type": "time_to_event", "duration": "d", "event": "e", "start": "s"}, "metrics[0].start", "not both"),
        (
            {"type": "time_to_event", "duration": "d", "event": "e", "horizon": 30, "column": "c"},
            "metrics[0].column",
            "not `column`",
        ),
        ({"type": "time_to_event", "horizon": 30}, "metrics[0]", "needs `duration:` and `event:`"),
        ({"type": "time_to_event", "duration": "d", "event": "e"}, "metrics[0].horizon", "e.g. `horizon: 30`"),
        (
            {"type": "time_to_event", "duration": "d", "event": "e", "horizon": 30, "time_unit": "dayz"},
            "metrics[0].time_unit",
            "Did you mean 'days'",
        ),
        (
            {"type": "time_to_event", "duration": "d", "event": "e", "horizon": 30, "covariates": [["a", "b"]]},
            "metrics[0].covariates",
            "not [numerator, denominator] pairs",
        ),
        ({"type": "mean", "column": "c", "horizon": 30}, "metrics[0].horizon", "only time_to_event metrics"),
        ({"type": "mean", "column": "c", "windov": "3d"}, "metrics[0].windov", "Did you mean 'window'"),
        ({"type": "time_to_event", "start": "s", "end": "e", "horizon": 30}, "data_end", "reads start/end timestamps"),
    ],
)
def test_spec_time_to_event_problems(metric, where, fragment):
    raw = {"name": "t", "data": "x.parquet", "metrics": [{"name": "m", "primary": True, **metric}]}
    problems = _problems(raw)
    assert where in problems and fragment in problems[where], problems


def test_power_specs_refuse_time_to_event_and_windows():
    from abkit.spec import spec_from_dict

    raw = {
        "name": "p",
        "kind": "power",
        "data": "x.parquet",
        "daily_units": 100,
        "metrics": [
            {"name": "m", "type": "time_to_event", "duration": "d", "event": "e", "horizon": 3, "primary": True},
            {"name": "r", "type": "mean", "column": "c", "window": "3d"},
        ],
    }
    with pytest.raises(SpecError) as info:
        spec_from_dict(raw, check_data=False)
    problems = dict(info.value.problems)
    assert "simulate_power" in problems["metrics[0].type"] and "no maturity window" in problems["metrics[1].window"]


def test_json_schema_lists_the_new_fields():
    schema = abkit.spec.spec_json_schema()
    defs = schema["$defs"]
    ab = defs["AbDocument"]["properties"]
    assert "window" in ab and "data_end" in ab
    metric = defs["MetricDocument"]["properties"]
    for key in ("window", "duration", "event", "start", "end", "horizon", "time_unit"):
        assert key in metric, key
    assert "time_to_event" in str(metric["type"])


def test_a_missing_time_to_event_column_is_named_with_its_field():
    raw = _raw()
    raw["metrics"][3]["duration"] = "days_to_refnd"
    with pytest.raises(SpecError) as info:
        ExperimentSpec.from_dict(raw)
    problems = dict(info.value.problems)
    assert "days_to_refund" in problems["metrics[3].duration"]


# --------------------------------------------------------------------------- the readout's words
@pytest.fixture(scope="module")
def readout():
    from abkit.readout import ab

    spec = load_spec(AB_SPEC)
    data = spec.open_data()
    result = abkit.analyze(
        data,
        spec.build_metrics(),
        variant=spec.variant,
        control=spec.control,
        alpha=spec.alpha,
        allocation=spec.planned_allocation,
        unit=spec.unit,
    )
    return spec, data, result, ab.maturity_of(spec, data)


def test_readout_states_mature_units_and_why_units_are_left_out(readout):
    from abkit.readout import ab, render

    spec, data, result, maturity = readout
    assert set(maturity) == {"contact_rate", "time_to_refund"}
    ctx = render.metrics_context(result, spec, maturity)
    assert any(
        n.startswith("contact_rate (mature units only): 34,509 of 40,000 units (buyer_id) (86%)")
        for n in ctx["maturity"]
    )
    assert any(
        "time_to_refund (every unit counts, censoring-aware): 23,876 of 40,000" in n
        and "could be followed for the full 30 days" in n
        and "censored at the data's end" in n
        for n in ctx["maturity"]
    )
    kinds = {r["metric"]: r["kind"] for r in ctx["rows"]}
    assert kinds["contact_rate"] == "mature units only (21-day window)"
    assert "censoring-aware" in kinds["time_to_refund"] and kinds["refund_rate"] is None
    dropped = ab.dropped_units(result, spec, maturity=maturity)
    assert dropped.reason.tolist() == [
        "exposed on or after Sep 22: its 21-day window had not closed by the data's end, left out of contact_rate"
    ]
    assert dropped.units.tolist() == [5491]


def test_readout_time_to_event_words_and_no_composition_caution(readout):
    import matplotlib.pyplot as plt

    from abkit.readout import ab, render
    from abkit.verdict import decide, missingness_checks

    spec, data, result, maturity = readout
    verdicts = decide(result, primary=spec.primary.name, guardrails=spec.margins)
    card = render.verdict_context(verdicts, result, spec)["cards"][0]
    line = next(r for r in card["reasons"] if r.startswith("time_to_refund: "))
    assert line.startswith(
        "time_to_refund: refunds arrive 2.15 days sooner on average within the first 30 days, 95% CI 1.94 to 2.36"
    )
    # the sample's truth (data/README.md; parquet keeps no attrs, so it is recomputed from the generator's levers)
    truth = simulate.time_to_refund_truth(30.0, hazard_ratio=1.4, refund_share={"control": 0.85, "treatment": 0.88})
    row = result.row("time_to_refund", "treatment")
    assert row["ci_lower"] < truth["treatment"]["rmst"] - truth["control"]["rmst"] < row["ci_upper"]
    assert not any(c.flagged for c in missingness_checks(result))  # no "different mix of buyers" caution
    assert not any("different mix" in r for r in card["reasons"])
    (tte,) = ab.time_to_event(spec, data)
    fig = render.plot_time_to_event(tte, spec).figure
    ctx = render.time_to_event_context(fig, tte, spec, maturity)
    plt.close(fig)
    (arm,) = ctx["arms"]
    assert arm["sentence"] == line.removeprefix("time_to_refund: ")
    assert arm["share"].startswith("the share with a refund within 6 days rises from 54.4% to 65.0%")
    assert arm["median"].startswith("median 5.05 days in control, 3.26 in treatment")
    assert [c["units"] for c in ctx["counts"]] == ["19,980", "20,020"]
    assert ctx["chart"]["src"].startswith("data:image/svg+xml") and "Kaplan-Meier" in ctx["chart"]["alt"]
    html = render.time_to_event_html(fig, tte, spec, maturity)
    assert "when refunds arrive" in html and "censored" in html


def test_event_words():
    from abkit.readout.render import event_words

    def m(name):
        return abkit.TimeToEvent("d", "e", horizon=3, name=name)

    assert event_words(m("time_to_refund")) == "refunds"
    assert event_words(m("time to resolution")) == "resolutions"
    assert event_words(m("hours_to_first_contact")) == "first contacts"
    assert event_words(m("ttr")) == "events"


def test_the_dropna_mean_the_time_to_event_metric_replaces_is_flagged_on_the_same_data(readout):
    # before/after on the sample data: the old metric (hours to refund among buyers with a refund, dropna) is
    # measured on a different mix of buyers (instant refunds change who has a refund); the time-to-event
    # metric keeps every buyer, so the page has no caution for it
    from abkit.readout import render
    from abkit.verdict import decide, missingness_checks

    spec, data, result, maturity = readout
    old = abkit.analyze(
        data,
        [
            abkit.Ratio("refunds", "orders", name="refund_rate", better="lower"),
            abkit.Mean("time_to_refund_hours", dropna=True, better="lower"),
        ],
    )
    (check,) = missingness_checks(old)
    assert check.flagged and check.metric == "time_to_refund_hours"
    ctx = render.metrics_context(old)
    assert [r["skewed"] for r in ctx["rows"]] == [False, True]
    assert any(
        r.startswith("caution: time_to_refund_hours is measured on a different mix")
        for r in decide(old, "refund_rate")[0].reasons
    )
    assert not any(r["skewed"] for r in render.metrics_context(result, spec, maturity)["rows"])


def test_windowed_metric_and_counts_in_spark_equal_memory(spark, sample, tmp_path):
    # the window is one narwhals expression: Spark evaluates it where the data lie (session in UTC, naive dates)
    path = tmp_path / "ab.parquet"
    sample.assign(variant=sample.variant.astype(str)).to_parquet(path)
    sdf = spark.read.parquet(str(path))
    metric = windowed(
        abkit.Ratio("contacts", "orders", covariates=("pre_contacts", "pre_orders")),
        "exposure_date",
        "21d",
        "2026-10-12",
    )
    mem = abkit.analyze(sample, [metric]).to_frame().iloc[0]
    got = abkit.analyze(sdf, [metric]).to_frame().iloc[0]
    for c in ("control_value", "effect", "se", "n_control", "n_treatment", "dropped_control"):
        assert got[c] == pytest.approx(mem[c], rel=1e-9), c
    counts = maturity(sdf, "variant", "exposure_date", "21d", "2026-10-12")
    assert counts.mature == maturity(sample, "variant", "exposure_date", "21d", "2026-10-12").mature
