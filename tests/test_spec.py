"""Experiment specs: YAML <-> typed objects, and every way a spec can be wrong.

No kernel is started here; these tests are fast.
"""

from __future__ import annotations

import copy
import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from markupsafe import escape

import abkit
from abkit.errors import AbkitError, ReadoutError, SpecError
from abkit.readout import render
from abkit.readout.runner import _folders, _safe_folder, slugify, validate_specs
from abkit.spec import ExperimentSpec, MetricSpec, load_spec

COLUMNS = [
    "buyer_id",
    "variant",
    "orders",
    "refunds",
    "refund_amount",
    "time_to_refund_hours",
    "repeat_purchase_30d",
    "abuse_loss",
    "pre_orders",
    "pre_refunds",
    "pre_refund_amount",
]


def small_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    orders = rng.poisson(2, n) + 1
    refunds = rng.binomial(orders, 0.1)
    return pd.DataFrame(
        {
            "buyer_id": np.arange(n),
            "variant": pd.Categorical(np.where(rng.random(n) < 0.5, "control", "treatment")),
            "orders": orders,
            "refunds": refunds,
            "refund_amount": refunds * 20.0,
            "time_to_refund_hours": np.where(refunds > 0, 30.0, np.nan),
            "repeat_purchase_30d": rng.integers(0, 2, n),
            "abuse_loss": rng.random(n),
            "pre_orders": rng.poisson(2, n) + 1,
            "pre_refunds": rng.poisson(0.2, n),
            "pre_refund_amount": rng.random(n) * 10,
        }
    )


SPEC = {
    "name": "Instant refunds for low-value returns",
    "kind": "ab",
    "owner": "Returns team",
    "description": "Refund at drop-off.",
    "hypothesis": "Fewer contacts.",
    "start": "2026-09-01",
    "end": "2026-09-28",
    "data": "../data/ab.parquet",
    "variant": "variant",
    "control": "control",
    "allocation": {"control": 0.5, "treatment": 0.5},
    "alpha": 0.05,
    "correction": "holm",
    "metrics": [
        {
            "name": "refund_rate",
            "type": "ratio",
            "numerator": "refunds",
            "denominator": "orders",
            "covariates": ["pre_refunds", "pre_orders"],
            "better": "lower",
            "primary": True,
        },
        {"name": "refund_amount", "type": "mean", "column": "refund_amount", "covariate": "pre_refund_amount"},
        {"name": "time_to_refund", "type": "mean", "column": "time_to_refund_hours", "dropna": True, "better": "lower"},
        {"name": "repeat_purchase_30d", "type": "proportion", "column": "repeat_purchase_30d"},
        {
            "name": "abuse_loss_per_order",
            "type": "ratio",
            "numerator": "abuse_loss",
            "denominator": "orders",
            "better": "lower",
            "guardrail": True,
        },
    ],
}


@pytest.fixture()
def project(tmp_path):
    """tmp/specs/ for spec files, tmp/data/ab.parquet for data."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "data").mkdir()
    small_frame().to_parquet(tmp_path / "data" / "ab.parquet")
    return tmp_path


def write_spec(project: Path, spec: dict, name: str = "exp.yaml") -> Path:
    path = project / "specs" / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def spec_error(path) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return str(info.value)


def mutated(**changes) -> dict:
    spec = copy.deepcopy(SPEC)
    spec.update(changes)
    return spec


# --------------------------------------------------------------------------- valid specs
def test_valid_spec_loads_and_round_trips(project, monkeypatch):
    monkeypatch.chdir(project / "data")  # the data path must not depend on the working directory
    path = write_spec(project, SPEC)
    spec = load_spec(path)

    assert spec.name == SPEC["name"]
    assert spec.data_path == (project / "data" / "ab.parquet").resolve()
    assert spec.data_path.is_absolute()
    assert spec.source == str(path.resolve())
    assert spec.start.isoformat() == "2026-09-01" and spec.end.isoformat() == "2026-09-28"
    assert spec.primary.name == "refund_rate"
    assert [g.name for g in spec.guardrails] == ["abuse_loss_per_order"]
    assert spec.planned_allocation == {"control": 0.5, "treatment": 0.5}
    assert spec.correction == "holm" and spec.alpha == 0.05

    d = spec.to_dict()
    assert json.loads(json.dumps(d)) == d  # plain JSON-able data
    assert ExperimentSpec.from_dict(d) == spec
    assert ExperimentSpec.from_dict(json.loads(json.dumps(d))) == spec
    # and the dict form validates just like YAML does
    broken = copy.deepcopy(d)
    broken["metrics"][0]["numerator"] = "refundz"
    with pytest.raises(SpecError, match=r"metrics\[0\]\.numerator"):
        ExperimentSpec.from_dict(broken)


def test_build_metrics_maps_every_field(project):
    spec = load_spec(write_spec(project, SPEC))
    rate, amount, ttr, repeat, abuse = spec.build_metrics()
    assert isinstance(rate, abkit.Ratio) and rate.better == "lower"
    assert rate.columns == ("refunds", "orders", "pre_refunds", "pre_orders")
    assert rate.method == "cuped" and len(rate.covariates) == 1  # the pre-period (num, den) pair
    assert isinstance(amount, abkit.Mean) and amount.columns == ("refund_amount", "pre_refund_amount")
    assert ttr.dropna and ttr.better == "lower" and ttr.name == "time_to_refund"
    assert isinstance(repeat, abkit.Proportion) and repeat.better == "higher"
    assert isinstance(abuse, abkit.Ratio) and abuse.covariates == ()


def test_spec_drives_analyze(project):
    """The objects a spec builds are what abkit.analyze takes (as in the readout notebook)."""
    spec = load_spec(write_spec(project, SPEC))
    result = abkit.analyze(
        spec.data_path,
        spec.build_metrics(),
        variant=spec.variant,
        control=spec.control,
        alpha=spec.alpha,
        correction=spec.correction,
        allocation=spec.planned_allocation,
    )
    assert [r["metric"] for r in result.rows] == [m.name for m in spec.metrics]
    assert "p_value_adjusted" in result.rows[0]


def test_defaults_and_optional_fields(project):
    minimal = {
        "name": "x",
        "data": "../data/ab.parquet",
        "metrics": [{"type": "ratio", "numerator": "refunds", "denominator": "orders", "primary": True}],
    }
    spec = load_spec(write_spec(project, minimal))
    assert (spec.kind, spec.variant, spec.control, spec.alpha, spec.correction) == (
        "ab",
        "variant",
        "control",
        0.05,
        None,
    )
    assert spec.metrics[0].name == "refunds/orders" and spec.metrics[0].better == "higher"
    assert spec.start is None and spec.allocation is None and spec.guardrails == ()
    assert ExperimentSpec.from_dict(spec.to_dict()) == spec


def test_allocation_as_list_and_csv_data(project):
    small_frame().to_csv(project / "data" / "ab.csv", index=False)
    spec = load_spec(write_spec(project, mutated(data="../data/ab.csv", allocation=[0.6, 0.4])))
    assert spec.planned_allocation == [0.6, 0.4]
    assert ExperimentSpec.from_dict(spec.to_dict()) == spec


def test_metric_spec_is_frozen(project):
    spec = load_spec(write_spec(project, SPEC))
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
    assert isinstance(spec.metrics[0], MetricSpec) and isinstance(spec.metrics, tuple)


# --------------------------------------------------------------------------- errors
def test_unknown_keys_suggest_the_closest(project):
    spec = mutated(alpah=0.05)
    spec["metrics"] = copy.deepcopy(SPEC["metrics"])
    spec["metrics"][0]["numerater"] = spec["metrics"][0].pop("numerator")
    msg = spec_error(write_spec(project, spec, "typos.yaml"))
    assert "typos.yaml" in msg  # names the file
    assert "alpah" in msg and "Did you mean 'alpha'?" in msg
    assert "metrics[0].numerater" in msg and "Did you mean 'numerator'?" in msg
    assert "2 problems" not in msg and "problems" in msg  # every problem of the file, together


@pytest.mark.parametrize(
    "changes, field, shown",
    [
        ({"alpha": "five"}, "alpha", "'five'"),
        ({"alpha": True}, "alpha", "True"),
        ({"alpha": 0.7}, "alpha", "0.7"),
        ({"name": 123}, "name", "123"),
        ({"owner": ["a", "b"]}, "owner", "['a', 'b']"),
        ({"correction": "bonferroni"}, "correction", "'bonferroni'"),
        ({"correction": "none"}, "correction", "correction: null"),
        ({"start": "next monday"}, "start", "'next monday'"),
        ({"end": "2026-08-01"}, "end", "before start"),
        ({"metrics": "refund_rate"}, "metrics", "'refund_rate'"),
        ({"metrics": []}, "metrics", "non-empty"),
        ({"allocation": {"treatment": 0.5, "other": 0.5}}, "allocation", "control"),
        ({"allocation": {"control": -1, "treatment": 1}}, "allocation.control", "-1"),
        ({"allocation": "50/50"}, "allocation", "'50/50'"),
        ({"kind": "dd"}, "kind", "use one of ab, did, synthetic, power"),
        ({"mde": 5}, "mde", "5"),
        ({"mde": "2%"}, "mde", "'2%'"),
        ({"power": 0.01}, "power", "larger than alpha"),
        ({"planned_units": 1000.5}, "planned_units", "whole number"),
        ({"planned_units": -3}, "planned_units", "-3"),
        ({"segments": {"market": 1}}, "segments", "list of column names"),
        ({"segments": ["variant"]}, "segments[0]", "variant column"),
        ({"segments": ["orders", "orders"]}, "segments[1]", "listed twice"),
        ({"date": 20260901}, "date", "20260901"),
        ({"control": True}, "control", "True"),
        ({"variant": 7}, "variant", "7"),
    ],
)
def test_wrong_types_and_values(project, changes, field, shown):
    msg = spec_error(write_spec(project, mutated(**changes)))
    assert f"{field}:" in msg, msg
    assert shown in msg, msg


@pytest.mark.parametrize(
    "metric_changes, field, shown",
    [
        ({"type": "ratioo"}, "metrics[0].type", "Did you mean 'ratio'?"),
        ({"primary": "yes please"}, "metrics[0].primary", "'yes please'"),
        ({"better": "Lower"}, "metrics[0].better", "Did you mean 'lower'?"),
        ({"covariates": 5}, "metrics[0].covariates", "5"),
        ({"covariates": ["pre_refunds", 3]}, "metrics[0].covariates[1]", "3"),
        ({"numerator": None}, "metrics[0].numerator", "required"),
        ({"column": "refunds"}, "metrics[0].column", "numerator"),
        ({"method": "lin", "covariates": None}, "metrics[0].method", "needs covariates"),
        ({"name": ""}, "metrics[0].name", "empty"),
        ({"dropna": "true"}, "metrics[0].dropna", "'true'"),
        ({"guardrail": True}, "metrics[0].guardrail", "both primary and a guardrail"),
        ({"margin": 0.02}, "metrics[0].margin", "only applies to guardrail"),
    ],
)
def test_wrong_metric_fields(project, metric_changes, field, shown):
    spec = copy.deepcopy(SPEC)
    spec["metrics"][0].update(metric_changes)
    msg = spec_error(write_spec(project, spec))
    assert f"{field}:" in msg, msg
    assert shown in msg, msg


def test_missing_column_names_it_and_lists_available(project):
    spec = copy.deepcopy(SPEC)
    spec["metrics"][1]["covariate"] = "pre_refund_amnt"
    spec["metrics"][4]["denominator"] = "order_count"
    spec["variant"] = "arm"
    msg = spec_error(write_spec(project, spec))
    assert "metrics[1].covariate: column 'pre_refund_amnt' not found" in msg
    assert "Did you mean 'pre_refund_amount'?" in msg
    assert "metrics[4].denominator: column 'order_count' not found" in msg
    assert "variant: column 'arm' not found" in msg
    spec["metrics"][1]["covariate"] = ["pre_refund_amount", "pre_refundz"]
    assert "metrics[1].covariate[1]: column 'pre_refundz'" in spec_error(write_spec(project, spec))
    assert "Available columns: " + ", ".join(COLUMNS) in msg


def test_metric_columns_must_hold_numbers(project):
    frame = small_frame()
    frame["refund_amount"] = [f"{x:.2f} EUR" for x in frame["refund_amount"]]
    frame.to_parquet(project / "data" / "ab.parquet")
    msg = spec_error(write_spec(project, copy.deepcopy(SPEC)))
    assert "metrics[1].column: column 'refund_amount' of data file 'ab.parquet' holds String, not numbers" in msg
    assert msg.count("not numbers") == 1  # the text variant and the date-free spec are fine


@pytest.mark.parametrize(
    "control, fragment",
    [
        ("Control", "Did you mean 'control'?"),
        ("placebo", "values there: 'control', 'treatment'"),
    ],
)
def test_control_arm_must_be_in_the_data(project, control, fragment):
    spec = mutated(control=control)
    spec.pop("allocation")  # without an allocation only the data can tell
    msg = spec_error(write_spec(project, spec))
    assert f"control: arm '{control}' is not a value of column 'variant'" in msg
    assert "Set `control:` to the control arm's label" in msg and fragment in msg


def test_numeric_arm_labels_say_how_to_quote(project):
    frame = small_frame()
    frame["variant"] = (frame["variant"] == "treatment").astype(int)
    frame.to_parquet(project / "data" / "ab.parquet")
    spec = mutated(control="0")
    spec.pop("allocation")
    assert "The column holds numbers: write the label unquoted" in spec_error(write_spec(project, spec))
    spec["control"] = 0
    load_spec(write_spec(project, spec))


def test_data_file_must_exist_relative_to_the_spec(project, monkeypatch):
    monkeypatch.chdir(project)  # 'data/ab.parquet' would exist from here, but not from specs/
    msg = spec_error(write_spec(project, mutated(data="data/ab.parquet")))
    assert "data:" in msg and str(project / "specs" / "data" / "ab.parquet") in msg
    assert "does not exist" in msg
    msg = spec_error(write_spec(project, mutated(data="../data/ab.xlsx")))
    assert "does not exist" in msg
    (project / "data" / "ab.xlsx").write_bytes(b"PK")
    assert "not a parquet" in spec_error(write_spec(project, mutated(data="../data/ab.xlsx")))
    (project / "data" / "junk.parquet").write_bytes(b"not parquet at all")
    msg = spec_error(write_spec(project, mutated(data="../data/junk.parquet")))
    assert "data: could not read" in msg and "junk.parquet" in msg and "Is it a valid" in msg


def test_exactly_one_primary(project):
    spec = copy.deepcopy(SPEC)
    spec["metrics"][3]["primary"] = True
    msg = spec_error(write_spec(project, spec))
    assert "exactly one metric must have `primary: true`, found 2" in msg
    assert "metrics[0] (refund_rate)" in msg and "metrics[3] (repeat_purchase_30d)" in msg
    spec["metrics"][0]["primary"] = spec["metrics"][3]["primary"] = False
    assert "no metric has `primary: true`" in spec_error(write_spec(project, spec))


def test_duplicate_metric_names(project):
    spec = copy.deepcopy(SPEC)
    spec["metrics"][1]["name"] = "refund_rate"
    assert "metrics[1].name: 'refund_rate' is already the name of metrics[0]" in spec_error(write_spec(project, spec))


def test_yaml_level_problems(project):
    p = project / "specs" / "broken.yaml"
    p.write_text("name: [unclosed\n", encoding="utf-8")
    assert "broken.yaml: line 2" in spec_error(p) and "not valid YAML" in spec_error(p)
    p.write_text("name: a\nname: b\n", encoding="utf-8")
    assert "name: key repeated on line 2" in spec_error(p)
    p.write_text("", encoding="utf-8")
    assert "empty" in spec_error(p)
    p.write_text("- just\n- a list\n", encoding="utf-8")
    assert "must be a mapping" in spec_error(p)
    p.write_text("name: x\nstart: 2026-13-45\n", encoding="utf-8")
    assert "not valid YAML" in spec_error(p)
    assert "spec file not found" in spec_error(project / "specs" / "nope.yaml")


def test_yaml_is_never_executed(project):
    p = project / "specs" / "evil.yaml"
    p.write_text("name: !!python/object/apply:os.system ['touch pwned']\n", encoding="utf-8")
    assert "not valid YAML" in spec_error(p)
    assert not (project / "pwned").exists() and not Path("pwned").exists()


def test_spec_errors_are_abkit_errors():
    assert issubclass(SpecError, AbkitError) and issubclass(SpecError, ValueError)


# --------------------------------------------------------------------------- hostile names
HOSTILE = [
    "../../etc/x",
    "/etc/passwd",
    "..",
    "name with \"quotes\" and 'single'",
    "<script>alert(1)</script>",
    "x\ny\r\n\tz",
    "Rückerstattung ✓",
    "C:\\Windows\\x",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_round_trip_and_escape(project, name):
    spec = copy.deepcopy(SPEC)
    spec["name"] = name
    spec["description"] = name
    spec["metrics"][1]["name"] = name
    loaded = load_spec(write_spec(project, spec))
    assert loaded.name == name and loaded.metrics[1].name == name
    assert ExperimentSpec.from_dict(loaded.to_dict()) == loaded
    page = render.header_html(loaded)
    assert "<script>" not in page
    if name.strip():
        assert str(escape(name.strip())) in page  # the page templates' escaping (markupsafe)
    methodology = render.methodology_html(loaded)
    assert "<script>" not in methodology


@pytest.mark.parametrize(
    "text, slug",
    [
        ("../../etc/x", "etc-x"),
        ("..", "experiment"),
        ("", "experiment"),
        ("/etc/passwd", "etc-passwd"),
        ("Instant Refunds (v2)", "instant-refunds-v2"),
        ("<script>alert(1)</script>", "script-alert-1-script"),
        ("Rückerstattung", "ruckerstattung"),
        ("日本", "experiment"),
        ("a" * 200, "a" * 80),
        ("__init__", "init"),
        ("CON", "con"),
    ],
)
def test_slugify_only_keeps_safe_characters(text, slug):
    assert slugify(text) == slug


def test_output_folders_stay_inside_out_dir(project, tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    out = out.resolve()
    for bad in ("../x", "a/b", "..", "", "A"):
        with pytest.raises(ReadoutError):
            _safe_folder(out, bad)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (out / "linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ReadoutError, match="outside"):
        _safe_folder(out, "linked")
    assert _safe_folder(out, "ok-name_1") == out / "ok-name_1"

    # folders come from the spec file stem (or the name when the stem has no usable character); two specs
    # with one stem are refused (see tests/test_runner_guarantees.py), --root tells them apart
    spec = load_spec(write_spec(project, mutated(name="../../etc/x")))
    paths = [project / "a/exp.yaml", project / "b/exp.yaml", project / "c/.._.yaml"]
    with pytest.raises(SpecError, match="would both write"):
        _folders(out, paths, [spec] * 3, None)
    assert [f.name for _, f in _folders(out, paths, [spec] * 3, project)] == ["a-exp", "b-exp", "c"]
    assert [f.name for _, f in _folders(out, paths[2:], [spec], None)] == ["etc-x"]


def test_validate_specs_reports_every_bad_file(project):
    good = write_spec(project, SPEC, "good.yaml")
    bad1 = write_spec(project, mutated(alpha="x"), "bad1.yaml")
    bad2 = write_spec(project, mutated(data="../data/missing.parquet"), "bad2.yaml")
    with pytest.raises(SpecError) as info:
        validate_specs([good, bad1, bad2])
    msg = str(info.value)
    assert "2 of 3 spec files are invalid; nothing was run" in msg
    assert "bad1.yaml: alpha:" in msg and "bad2.yaml: data:" in msg and "good.yaml" not in msg
    assert len(validate_specs([good])) == 1
    with pytest.raises(SpecError):
        validate_specs([])


def test_cwd_does_not_leak_into_from_dict(project, monkeypatch):
    """from_dict without base_dir resolves a relative path from the working directory."""
    monkeypatch.chdir(project / "specs")
    spec = ExperimentSpec.from_dict(mutated())
    assert spec.data == os.path.abspath(project / "data" / "ab.parquet")
    spec2 = ExperimentSpec.from_dict(mutated(), base_dir=project / "specs")
    assert spec2 == spec


# --------------------------------------------------------------------------- readout plan fields (A/B)
def test_plan_segments_and_margins_round_trip(project):
    spec = copy.deepcopy(SPEC)
    spec.update(
        mde=0.03,
        power=0.9,
        planned_units=40_000,
        date="exposure_date",
        segments=["market", "orders"],
        balance=["pre_orders"],
    )
    spec["metrics"][4]["margin"] = 0.05
    frame = small_frame()
    frame["exposure_date"] = pd.Timestamp("2026-09-01").date()
    frame["market"] = "DE"
    frame.to_parquet(project / "data" / "ab.parquet")
    loaded = load_spec(write_spec(project, spec))
    assert (loaded.mde, loaded.power, loaded.planned_units, loaded.date) == (0.03, 0.9, 40_000, "exposure_date")
    assert loaded.segments == ("market", "orders") and loaded.balance == ("pre_orders",)
    assert loaded.margins == {"abuse_loss_per_order": 0.05}
    assert loaded.balance_columns == ("pre_orders",)
    assert "exposure_date" in loaded.columns and "market" in loaded.columns
    d = loaded.to_dict()
    assert json.loads(json.dumps(d)) == d and ExperimentSpec.from_dict(d) == loaded
    # without `balance`, the balance check uses every covariate column of the metrics
    del spec["balance"]
    assert load_spec(write_spec(project, spec)).balance_columns == ("pre_refunds", "pre_orders", "pre_refund_amount")
    # a single segment column may be written without a list
    spec["segments"] = "market"
    assert load_spec(write_spec(project, spec)).segments == ("market",)


def test_plan_columns_must_exist(project):
    spec = mutated(date="exposure_day", segments=["markt"], balance=["pre_order"])
    msg = spec_error(write_spec(project, spec))
    assert "date: column 'exposure_day' not found" in msg
    assert "segments[0]: column 'markt' not found" in msg
    assert "balance[0]: column 'pre_order' not found" in msg and "Did you mean 'pre_orders'?" in msg


# --------------------------------------------------------------------------- rollout specs (kind: did)
def rollout_frame() -> pd.DataFrame:
    rows = []
    for m, launch in [("A", 5), ("B", 7), ("C", None), ("D", None)]:
        for w in range(1, 11):
            rows.append(
                {
                    "market": m,
                    "week": w,
                    "launch_week": launch,
                    "orders": 100 + w,
                    "contacts": 10 + w % 3,
                    "refunds": 5,
                    "time_to_refund_hours": 50.0,
                }
            )
    df = pd.DataFrame(rows)
    df["launch_week"] = df["launch_week"].astype("Int64")
    return df


DID = {
    "name": "Refund-policy rollout",
    "kind": "did",
    "owner": "Refunds team",
    "data": "../data/panel.parquet",
    "unit": "market",
    "time": "week",
    "first_treated": "launch_week",
    "outcome": {"name": "contact_rate", "numerator": "contacts", "denominator": "orders", "better": "lower"},
    "secondary": [{"name": "time_to_refund", "column": "time_to_refund_hours", "better": "lower"}],
    "control_group": "not_yet_treated",
    "method": "reg",
    "alpha": 0.1,
    "placebo_shifts": [2],
}


@pytest.fixture()
def rollout_project(project):
    rollout_frame().to_parquet(project / "data" / "panel.parquet")
    return project


def test_rollout_spec_loads_and_round_trips(rollout_project):
    from abkit.spec import RolloutSpec, spec_from_dict

    spec = load_spec(write_spec(rollout_project, DID, "rollout.yaml"))
    assert isinstance(spec, RolloutSpec) and spec.kind == "did"
    assert (spec.unit, spec.time, spec.first_treated, spec.treatment) == ("market", "week", "launch_week", None)
    assert spec.primary.name == "contact_rate" and spec.outcome.is_ratio
    assert spec.outcome.columns == ("contacts", "orders") and spec.secondary[0].columns == ("time_to_refund_hours",)
    assert (spec.control_group, spec.method, spec.scale, spec.alpha) == ("not_yet_treated", "reg", "log", 0.1)
    assert (spec.leads, spec.lags, spec.placebo_shifts) == (6, 12, (2,))
    d = spec.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert RolloutSpec.from_dict(d) == spec and spec_from_dict(d) == spec
    # an outcome may be just a column name
    short = dict(DID, outcome="contacts")
    assert load_spec(write_spec(rollout_project, short, "short.yaml")).outcome.column == "contacts"


@pytest.mark.parametrize(
    "changes, field, shown",
    [
        ({"unit": None}, "unit", "required"),
        ({"treatment": "launched"}, "treatment", "not both"),
        ({"first_treated": None}, "first_treated", "treatment: launched"),
        ({"control_group": "never_treatd"}, "control_group", "Did you mean 'never_treated'?"),
        ({"method": "ols"}, "method", "dr, reg, ipw"),
        ({"scale": "logarithmic"}, "scale", "log, level"),
        ({"leads": 1}, "leads", "whole number in [2, 1000]"),
        ({"placebo_shifts": [0]}, "placebo_shifts", "[4, 8]"),
        ({"outcome": {"name": "x"}}, "outcome", "numerator"),
        ({"outcome": {"numerator": "contacts"}}, "outcome.denominator", "required"),
        ({"outcome": {"column": "contacts", "numerator": "x", "denominator": "y"}}, "outcome.column", "not both"),
        ({"outcome": {"column": "contact"}}, "outcome.column", "column 'contact' not found"),
        ({"secondary": [{"column": "refundz"}]}, "secondary[0].column", "Did you mean 'refunds'?"),
        ({"time": "weak"}, "time", "Did you mean 'week'?"),
        ({"metrics": []}, "metrics", "unknown key"),
        ({"alpha": 0.9}, "alpha", "0.9"),
    ],
)
def test_rollout_spec_errors(rollout_project, changes, field, shown):
    spec = dict(DID, **changes)
    spec = {k: v for k, v in spec.items() if v is not None}
    msg = spec_error(write_spec(rollout_project, spec, "rollout.yaml"))
    assert f"{field}:" in msg, msg
    assert shown in msg, msg


def test_forgotten_kind_did_is_pointed_out(rollout_project):
    spec = {k: v for k, v in DID.items() if k != "kind"}
    msg = spec_error(write_spec(rollout_project, spec, "rollout.yaml"))
    assert "kind: this looks like a rollout" in msg and "`kind: did`" in msg


@pytest.mark.parametrize("name", HOSTILE)
def test_rollout_pages_escape_hostile_names(rollout_project, name):
    from abkit.readout import rollout

    spec = dict(DID, name=name, description=name, hypothesis=name, owner=name)
    spec["outcome"] = dict(DID["outcome"], name=name)
    loaded = load_spec(write_spec(rollout_project, spec, "rollout.yaml"))
    panel = rollout.load_panel(loaded)
    page = rollout.header_html(loaded, panel) + rollout.details_html(loaded, panel)
    assert "<script>" not in page
    if name.strip():
        assert str(escape(name.strip())) in page  # the page templates' escaping (markupsafe)


def test_rollout_panel_preparation(rollout_project):
    from abkit.readout import rollout

    spec = load_spec(write_spec(rollout_project, DID, "rollout.yaml"))
    panel = rollout.load_panel(spec)
    f = panel.frame
    assert panel.cohorts == {5: 1, 7: 1} and panel.n_never == 2 and panel.n_units == 4
    assert f.loc[(f.market == "A") & (f.week == 5), rollout.LAUNCHED].item() == 1.0
    assert f.loc[(f.market == "A") & (f.week == 4), rollout.LAUNCHED].item() == 0.0
    assert f.loc[f.market == "C", rollout.FIRST].isna().all()
    y = panel.column("contact_rate")
    assert y == "log contact_rate"
    expected = np.log((10 + 3 % 3) / 103)
    assert f.loc[(f.market == "A") & (f.week == 3), y].item() == pytest.approx(expected)
    # a 0/1 treatment column gives the same launch periods
    df = rollout_frame()
    df["launched"] = (df.week >= df.launch_week.fillna(99)).astype(int)
    df.to_parquet(rollout_project / "data" / "panel.parquet")
    spec2 = load_spec(
        write_spec(
            rollout_project,
            {**{k: v for k, v in DID.items() if k != "first_treated"}, "treatment": "launched"},
            "r2.yaml",
        )
    )
    assert rollout.load_panel(spec2).cohorts == {5: 1, 7: 1}
    df.loc[(df.market == "A") & (df.week == 9), "launched"] = 0  # switches off again
    df.to_parquet(rollout_project / "data" / "panel.parquet")
    with pytest.raises(abkit.DataError, match="switches back to 0"):
        rollout.load_panel(spec2)


# --------------------------------------------------------------------------- test plans (kind: power)
PLAN = {
    "name": "Refund e-mails (plan)",
    "kind": "power",
    "data": "../data/ab.parquet",
    "daily_units": 500,
    "population": 20_000,
    "days": [14, 7, 28],
    "mde": 0.1,
    "max_days": 28,
    "metrics": [
        {
            "name": "refund_rate",
            "type": "ratio",
            "numerator": "refunds",
            "denominator": "orders",
            "covariates": ["pre_refunds", "pre_orders"],
            "better": "lower",
            "primary": True,
        },
        {"name": "repeat", "type": "proportion", "column": "repeat_purchase_30d", "guardrail": True, "margin": 0.05},
    ],
}


def test_plan_spec_loads_and_round_trips(project):
    from abkit.spec import PowerSpec, spec_from_dict

    spec = load_spec(write_spec(project, PLAN, "plan.yaml"))
    assert isinstance(spec, PowerSpec) and spec.kind == "power"
    assert (spec.daily_units, spec.population, spec.days, spec.mde, spec.max_days) == (
        500,
        20_000,
        (7, 14, 28),
        0.1,
        28,
    )
    assert (spec.arms, spec.ratio, spec.correction, spec.power) == (2, 1.0, "bonferroni", 0.8)
    assert spec.primary.name == "refund_rate" and spec.guardrails[0].margin == 0.05
    d = spec.to_dict()
    assert json.loads(json.dumps(d)) == d and PowerSpec.from_dict(d) == spec and spec_from_dict(d) == spec


@pytest.mark.parametrize(
    "changes, field, shown",
    [
        ({"daily_units": None}, "daily_units", "required"),
        ({"daily_units": -5}, "daily_units", "-5"),
        ({"days": [0, 7]}, "days", "whole numbers of days"),
        ({"mde": 10}, "mde", "0.05"),
        ({"arms": 1}, "arms", "whole number"),
        ({"correction": "holm"}, "correction", "bonferroni, sidak"),
        ({"traffic_share": 1.5}, "traffic_share", "1.5"),
        ({"segments": ["x"]}, "segments", "unknown key"),
    ],
)
def test_plan_spec_errors(project, changes, field, shown):
    spec = {k: v for k, v in dict(PLAN, **changes).items() if v is not None}
    msg = spec_error(write_spec(project, spec, "plan.yaml"))
    assert f"{field}:" in msg, msg
    assert shown in msg, msg


def test_plan_recommendation(project):
    """The recommended days are abkit.power's days for the target; the MDE at that duration is the target."""
    from abkit import power
    from abkit.readout import plan as planning

    frame = small_frame(4000, seed=3)
    frame.to_parquet(project / "data" / "ab.parquet")
    spec = load_spec(write_spec(project, PLAN, "plan.yaml"))
    bundle = planning.make_plan(spec)
    rec = planning.recommend(spec, bundle)
    metric = spec.build_metrics()[0]
    direct = power.plan(spec.data_path, metric, daily_units=500, population=20_000, mdes=[0.1], days=[7])
    days = int(direct.sample_sizes().days_needed.iloc[0])
    assert rec.days == days and rec.feasible == (days <= 28)
    if rec.feasible:
        assert rec.label == f"Run {days} days" and "to detect a 10.0% change in refund_rate" in rec.headline
        mde_at = bundle.main.to_frame().query("metric == 'refund_rate' and days == @days").relative_mde.abs()
        assert mde_at.iloc[0] == pytest.approx(0.1, abs=0.01)
    assert any("guardrail repeat" in r for r in rec.reasons)
    data = planning.to_json(spec, bundle, rec)
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    # an unreachable target says so, with what is reachable instead
    far = load_spec(write_spec(project, dict(PLAN, mde=0.005), "far.yaml"))
    rec2 = planning.recommend(far, planning.make_plan(far))
    assert rec2.label == "Not feasible" and "out of reach" in rec2.headline and rec2.days == 28


# --------------------------------------------------------------------------- JSON Schema (abkit schema)
SAMPLE_SPECS = sorted((Path(__file__).resolve().parents[1] / "specs").glob("*.yaml"))


def _plain(doc):
    """A parsed YAML document as JSON data (dates as ISO text), the way an editor sees it."""
    return json.loads(json.dumps(doc, default=lambda o: o.isoformat()))


def _schema_errors(schema: dict, doc) -> list[str]:
    """Messages of the JSON Schema validator (jsonschema, which nbformat already requires); without it,
    the typed models the schema is generated from."""
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - nbformat depends on jsonschema
        from pydantic import ValidationError

        from abkit.spec.models import DOCUMENTS

        try:
            DOCUMENTS[doc.get("kind") if doc.get("kind") in ("did", "power") else "ab"].model_validate(doc)
        except ValidationError as exc:
            return [str(e["loc"]) for e in exc.errors()]
        return []
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


def test_schema_command_prints_the_json_schema_of_every_kind(capsys, tmp_path):
    from abkit.cli import main

    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"  # what editors support
    assert {"AbDocument", "RolloutDocument", "PowerDocument", "MetricDocument", "TableDocument"} <= set(schema["$defs"])
    assert schema["if"]["properties"]["kind"]["const"] == "did"  # discriminated by kind
    ab = schema["$defs"]["AbDocument"]
    assert ab["additionalProperties"] is False and ab["required"] == ["name", "data", "metrics"]
    assert ab["properties"]["correction"]["anyOf"][0]["enum"] == ["holm", "bh"]
    assert "description" in ab["properties"]["alpha"] and "source" not in ab["properties"]
    assert main(["schema", "--out", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text(encoding="utf-8")) == schema


@pytest.mark.parametrize("path", SAMPLE_SPECS, ids=lambda p: p.stem)
def test_sample_specs_validate_against_the_schema_and_typos_do_not(path):
    try:
        import jsonschema

        jsonschema.Draft7Validator.check_schema(abkit.spec.spec_json_schema())
    except ImportError:  # pragma: no cover
        pass
    schema = abkit.spec.spec_json_schema()
    doc = _plain(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert _schema_errors(schema, doc) == []
    typo = dict(doc, alpah=0.05)
    assert any("alpah" in e for e in _schema_errors(schema, typo))
    key = "metrics" if "metrics" in doc else "secondary"
    nested = copy.deepcopy(doc)
    nested[key][0]["numerater"] = nested[key][0].pop("numerator", "x")
    assert any("numerater" in e for e in _schema_errors(schema, nested))
    wrong = dict(doc, alpha="0.05")  # text where a number belongs: abkit refuses it, so does the schema
    assert _schema_errors(schema, wrong)


# --------------------------------------------------------------------------- untrusted spec files
def _timed_error(path) -> tuple[str, float]:
    import time

    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return str(info.value), time.perf_counter() - start


def billion_laughs() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\nname: *a9\ndata: x.parquet\nmetrics: []\n"


@pytest.mark.parametrize(
    "text, words",
    [
        (billion_laughs(), "once its aliases (*name) are expanded"),
        ("name: x\ndata: x.parquet\nsegments: [" + ",".join(["m"] * 60_000) + "]\n", "more than 10,000 values"),
        ("name: " + "[" * 5_000 + "]" * 5_000 + "\n", "nest"),  # libyaml stops at 1,000 levels itself
        ("name: " + "[" * 200 + "]" * 200 + "\n", "nested more than 16 levels"),
        ("a: &a [[[[[[[[[[x]]]]]]]]]]\nb: &b [[[[[[[[*a]]]]]]]]\nname: *b\n", "nested more than 16 levels"),
        ("# padding\n" * 40_000 + "name: x\n", "larger than 256 KB"),
    ],
    ids=["billion-laughs", "huge-list", "deep-1000", "deep-200", "deep-by-aliases", "oversized"],
)
def test_hostile_yaml_is_refused_quickly(project, text, words):
    """Issue 15: a 500-byte 'billion laughs' file kept `abkit validate` busy for ever; huge lists, deep
    nesting and oversized files are refused too, each well under a second."""
    p = project / "specs" / "hostile.yaml"
    p.write_text(text, encoding="utf-8")
    msg, seconds = _timed_error(p)
    assert words in msg and "hostile.yaml" in msg, msg
    assert seconds < 1.0, seconds


def test_spec_path_that_is_no_regular_file_is_refused_at_once(project):
    """A named pipe would block the reader for ever; /dev/zero would fill the memory."""
    fifo = project / "specs" / "pipe.yaml"
    os.mkfifo(fifo)
    msg, seconds = _timed_error(fifo)
    assert "not a regular file" in msg and seconds < 1.0
    if Path("/dev/zero").exists():
        (project / "specs" / "zero.yaml").symlink_to("/dev/zero")
        msg, seconds = _timed_error(project / "specs" / "zero.yaml")
        assert "not a regular file" in msg and seconds < 1.0
    msg, _ = _timed_error(project / "specs")
    assert "is a folder, not a spec file" in msg


def test_yaml_anchors_within_bounds_still_work(project):
    """Anchors and merge keys a person writes (shared metric settings) are fine."""
    text = textwrap.dedent("""\
        name: anchors
        data: ../data/ab.parquet
        metrics:
          - &ratio {name: refund_rate, type: ratio, numerator: refunds, denominator: orders, better: lower,
                    primary: true}
          - <<: *ratio
            name: abuse_loss_per_order
            numerator: abuse_loss
            primary: false
            guardrail: true
    """)
    p = project / "specs" / "anchors.yaml"
    p.write_text(text, encoding="utf-8")
    spec = load_spec(p)
    assert [m.name for m in spec.metrics] == ["refund_rate", "abuse_loss_per_order"]
    assert spec.guardrails[0].numerator == "abuse_loss" and spec.guardrails[0].better == "lower"


def test_repeated_keys_are_named_with_their_path(project):
    p = project / "specs" / "dupes.yaml"
    p.write_text(
        "name: x\ndata: ../data/ab.parquet\nmetrics:\n  - type: mean\n    column: orders\n"
        "    primary: true\n    column: refunds\n",
        encoding="utf-8",
    )
    assert "metrics[0].column: key repeated on line 7" in spec_error(p)


# --------------------------------------------------------------------------- arm labels keep their type
def test_integer_arms_with_an_allocation_load_and_analyse(project):
    """Issue 18: `control: 0` with `allocation: {0: 0.5, 1: 0.5}` passes validate, and must run too."""
    frame = small_frame(4000, seed=4)
    frame["variant"] = (frame["variant"] == "treatment").astype(int)
    frame.to_parquet(project / "data" / "ab.parquet")
    path = project / "specs" / "int_arms.yaml"
    path.write_text(yaml.safe_dump(dict(mutated(control=0, allocation={0: 0.5, 1: 0.5}))), encoding="utf-8")
    spec = load_spec(path)
    assert spec.control == 0 and type(spec.control) is int
    assert spec.planned_allocation == {0: 0.5, 1: 0.5} and all(type(a) is int for a in spec.planned_allocation)
    result = abkit.analyze(
        spec.open_data(),
        spec.build_metrics(),
        variant=spec.variant,
        control=spec.control,
        alpha=spec.alpha,
        allocation=spec.planned_allocation,
    )
    counts = frame["variant"].value_counts()
    assert result.control == 0 and result.arms == (0, 1)
    assert result.row("refund_rate")["n_control"] == counts[0] and result.row("refund_rate")["n_treatment"] == counts[1]
    assert result.srm.p_value == pytest.approx(
        __import__("scipy").stats.chisquare([counts[0], counts[1]]).pvalue, rel=1e-9
    )


def test_arm_labels_survive_json_and_papermill(project):
    """The dict form keeps 0 a number through JSON and papermill (whose mapping keys become text)."""
    import ast

    from papermill.translators import PythonTranslator

    frame = small_frame()
    frame["variant"] = (frame["variant"] == "treatment").astype(int)
    frame.to_parquet(project / "data" / "ab.parquet")
    spec = ExperimentSpec.from_dict(mutated(control=0, allocation={0: 0.4, 1: 0.6}), base_dir=project / "specs")
    injected = ast.literal_eval(PythonTranslator.translate(spec.to_dict()))  # what the notebook receives
    assert ExperimentSpec.from_dict(injected) == spec
    assert ExperimentSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    # text labels stay text: '0' is not 0
    frame["variant"] = frame["variant"].astype(str)
    frame.to_parquet(project / "data" / "ab.parquet")
    text = ExperimentSpec.from_dict(mutated(control="0", allocation={"0": 0.4, "1": 0.6}), base_dir=project / "specs")
    assert text.control == "0" and list(text.planned_allocation) == ["0", "1"]
    assert text.to_dict()["allocation"] == {"0": 0.4, "1": 0.6}
    assert ExperimentSpec.from_dict(ast.literal_eval(PythonTranslator.translate(text.to_dict()))) == text
    # a number for the control and text in the allocation: said, not guessed
    with pytest.raises(SpecError, match="differ in type"):
        ExperimentSpec.from_dict(mutated(control=0, allocation={"0": 0.5, "1": 0.5}), base_dir=project / "specs")
