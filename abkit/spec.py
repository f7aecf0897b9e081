"""Experiment specs: a small YAML file <-> typed, frozen objects, strictly validated.

A spec says which data to read and what to analyse; ``abkit readout`` turns
each spec into a notebook and an HTML page, with the template of its
``kind``: ``ab`` (default; :class:`ExperimentSpec`) or ``did`` (a rollout
analysed by difference-in-differences; :class:`RolloutSpec`) or ``power`` (a
test plan; :class:`PowerSpec`). Everything is
checked *before* any notebook runs: unknown keys (with the closest valid key
suggested), wrong types, impossible values, and that the data file (or
table) exists and holds every column the spec names (only the schema is
read, never the rows).

A/B test (``kind: ab``), e.g. ``specs/instant_refunds.yaml``::

    name: Instant refunds for low-value returns     # required
    owner: Returns team                             # owner, description, hypothesis: optional text
    hypothesis: Refunding low-value returns at drop-off cuts refund contacts.
    start: 2026-09-01                               # optional dates (days run, when no `date` column)
    end: 2026-09-28
    data: ../data/aftersales_ab.parquet             # relative to this file; parquet or CSV
    variant: variant                                # default "variant"
    control: control                                # default "control"
    allocation: {control: 0.5, treatment: 0.5}      # planned split (sample-ratio check); default equal
    alpha: 0.05
    correction: holm                                # null | holm | bh
    mde: 0.05                 # planned minimum detectable effect, relative: "need N more days"
    power: 0.8                # planned power for the mde (default 0.8)
    planned_units: 40000      # planned units in all arms: "sample size reached vs planned"
    date: exposure_date       # each unit's first-exposure date: cumulative effect over time
    unit: buyer_id            # randomization-unit id: check one row per unit in one arm (leaks, duplicates)
    segments: [market, buyer_type]   # primary metric per segment (Holm/BH, Cochran's Q)
    balance: [pre_orders]     # pre-period balance columns (default: every metric covariate)
    metrics:
      - name: refund_rate
        type: ratio                        # mean | proportion | ratio
        numerator: refunds
        denominator: orders
        covariates: [pre_refunds, pre_orders]
        better: lower                      # higher (default) | lower
        primary: true                      # exactly one
      - name: abuse_loss_per_order
        type: ratio
        numerator: abuse_loss
        denominator: orders
        better: lower
        guardrail: true
        margin: 0.10                       # may get at most 10% worse (non-inferiority)

Rollout (``kind: did``), e.g. ``specs/refund_policy_rollout.yaml``: one row
per unit and period::

    name: Refund-policy rollout
    kind: did
    data: ../data/rollout_panel.parquet
    unit: market                           # the unit that launches
    time: week                             # period numbers (or dates)
    first_treated: launch_week             # launch period, empty = never; or `treatment: <0/1 column>`
    outcome: {name: contact_rate, numerator: contacts, denominator: orders, better: lower}
    secondary:                             # optional, same shape; `column:` for a plain outcome
      - {name: time_to_refund_hours, column: time_to_refund_hours, better: lower}
    control_group: never_treated           # never_treated | not_yet_treated
    method: dr                             # dr | reg | ipw (Callaway & Sant'Anna)
    covariates: []                         # time-invariant unit covariates
    cluster: market                        # TWFE / placebo clusters (default: unit)
    scale: log                             # log (relative effects) | level
    alpha: 0.05
    leads: 6                               # event study: periods before launch shown and tested
    lags: 12                               # periods after launch shown
    placebo_shifts: [4, 8]                 # fake launches this many periods early

Test plan (``kind: power``), e.g. ``specs/refund_emails_plan.yaml``: history
with the metrics' columns, the traffic and the target; ``abkit readout`` gives
the recommendation page, ``abkit power PLAN.yaml [--json]`` prints it::

    name: Proactive refund-status e-mails (test plan)
    kind: power
    data: ../data/aftersales_ab.parquet    # history (or a past test: give variant/control)
    daily_units: 1500                      # eligible units a day (required)
    population: 60000                      # eligible units in all (repeat visitors), optional
    traffic_share: 1.0                     # share of the traffic in the test
    alpha: 0.05
    power: 0.8
    arms: 2                                # control plus treatment arms
    ratio: 1                               # treatment units per control unit
    correction: bonferroni                 # bonferroni | sidak | null (several arms)
    days: [7, 14, 21, 28, 42, 56]          # durations to tabulate
    mde: 0.10                              # the change to detect in the primary metric
    max_days: 42                           # the longest acceptable run
    metrics: [...]                         # as for kind: ab (primary, guardrails with margin)

Any kind can read a warehouse table instead of a file: ``data`` is then a
mapping (the aggregation runs in that engine; only sums come back)::

    data: {engine: duckdb, table: refund_test, database: ../warehouse.duckdb}   # read-only
    data:
      engine: spark
      table: aftersales.refund_test     # db.table in the session's catalog
      conf: {spark.master: "local[4]"}  # settings for a new session (cluster defaults otherwise)

>>> spec = load_spec("specs/instant_refunds.yaml")           # doctest: +SKIP
>>> spec.primary.name, [g.name for g in spec.guardrails]      # doctest: +SKIP
('refund_rate', ['abuse_loss_per_order'])
>>> ExperimentSpec.from_dict(spec.to_dict()) == spec           # doctest: +SKIP
True

Every problem raises :class:`abkit.SpecError`; its message names the file,
the field (``metrics[2].numerator``), the value seen and the fix. All
problems of one file are reported together.
"""
from __future__ import annotations

import datetime as _dt
import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from .engines import TableRef
from .errors import AbkitError, SpecError
from .metrics import Mean, Metric, Proportion, Ratio

__all__ = ["ExperimentSpec", "MetricSpec", "OutcomeSpec", "RolloutSpec", "PowerSpec", "load_spec",
           "spec_from_dict", "data_columns"]

KINDS = ("ab", "did", "power")
PLANNED_KINDS = ()
METRIC_TYPES = ("mean", "proportion", "ratio")
CORRECTIONS = ("holm", "bh")
METHODS = ("cuped", "lin")
BETTER = ("higher", "lower")

TOP_KEYS = ("name", "kind", "owner", "description", "hypothesis", "start", "end", "data", "variant",
            "control", "allocation", "alpha", "correction", "metrics", "mde", "power", "planned_units", "date",
            "segments", "balance", "sequential", "unit")
METRIC_KEYS = ("name", "type", "column", "numerator", "denominator", "covariate", "covariates", "better",
               "primary", "guardrail", "margin", "dropna", "method", "description", "nonnegative")
# kind: did (difference-in-differences readout of a staggered rollout)
DID_KEYS = ("name", "kind", "owner", "description", "hypothesis", "start", "end", "data", "unit", "time",
            "first_treated", "treatment", "outcome", "secondary", "control_group", "method", "covariates",
            "cluster", "alpha", "scale", "leads", "lags", "placebo_shifts")
OUTCOME_KEYS = ("name", "column", "numerator", "denominator", "better", "description")
CONTROL_GROUPS = ("never_treated", "not_yet_treated")
DID_METHODS = ("dr", "reg", "ipw")
SCALES = ("log", "level")
# kind: power (a test plan from historical data)
POWER_KEYS = ("name", "kind", "owner", "description", "hypothesis", "start", "end", "data", "variant", "control",
              "alpha", "power", "arms", "ratio", "correction", "daily_units", "population", "traffic_share", "days",
              "mde", "max_days", "metrics", "simulate", "sequential")
POWER_CORRECTIONS = ("bonferroni", "sidak")
DEFAULT_PLAN_DAYS = (7, 14, 21, 28, 35, 42, 56)
# Keys only ExperimentSpec.to_dict() writes (never needed in YAML).
_DICT_ONLY_KEYS = ("source",)

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz")

Covariate = str | tuple[str, str]


# --------------------------------------------------------------------------- problems
class _Problems:
    """Collects every problem of one spec, then raises one SpecError."""

    def __init__(self, origin: str):
        self.origin = origin
        self.items: list[tuple[str, str]] = []

    def add(self, where: str, message: str) -> None:
        self.items.append((where, message))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        lines = [f"{where}: {msg}" if where else msg for where, msg in self.items]
        if len(lines) == 1:
            text = f"{self.origin}: {lines[0]}"
        else:
            text = f"{self.origin}: {len(lines)} problems:\n" + "\n".join(f"  - {ln}" for ln in lines)
        err = SpecError(text)
        err.origin = self.origin
        err.problems = list(self.items)
        raise err


def _show(value: Any) -> str:
    """A short, unambiguous rendering of a value for an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, (_dt.date, _dt.datetime)):
        return "date"
    return type(value).__name__


def _suggest(word: Any, choices) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def _check_keys(raw: Mapping, allowed, where: str, problems: _Problems) -> None:
    for key in raw:
        if key in allowed:
            continue
        at = f"{where}.{key}" if where else str(key)
        if not isinstance(key, str):
            problems.add(at, f"key {_show(key)} is not text; keys are words like {', '.join(allowed[:4])}")
            continue
        problems.add(at, f"unknown key '{key}'.{_suggest(key, allowed)} Allowed keys: {', '.join(allowed)}")


# --------------------------------------------------------------------------- field readers
def _text(raw: Mapping, key: str, where: str, problems: _Problems, *, required: bool = False,
          default: str | None = None, example: str = "...") -> str | None:
    at = f"{where}.{key}" if where else key
    if key not in raw or raw[key] is None:
        if required:
            problems.add(at, f"required key missing; add e.g. `{key}: {example}`")
        return default
    value = raw[key]
    if not isinstance(value, str):
        if isinstance(value, (Mapping, list)):
            fix = "write it as one piece of text"
        else:
            fix = f"put it in quotes, e.g. `{key}: \"{value}\"`"
        problems.add(at, f"expected text, got {_show(value)} ({_type_name(value)}); {fix}")
        return default
    if required and not value.strip():
        problems.add(at, f"must not be empty; write e.g. `{key}: {example}`")
        return default
    return value


def _choice(raw: Mapping, key: str, where: str, problems: _Problems, choices, default: str | None,
            *, nullable: bool = False) -> str | None:
    at = f"{where}.{key}" if where else key
    if key not in raw:
        return default
    value = raw[key]
    if value is None:
        if nullable:
            return None
        problems.add(at, f"must be one of {', '.join(choices)}, got null")
        return default
    if isinstance(value, str) and value in choices:
        return value
    options = ", ".join(choices) + (" or null" if nullable else "")
    hint = _suggest(value, choices)
    if nullable and isinstance(value, str) and value.strip().lower() in ("none", "null", "no", "off", ""):
        hint = f" To switch it off write `{key}: null`."
    problems.add(at, f"{_show(value)} is not allowed; use one of {options}.{hint}")
    return default


def _flag(raw: Mapping, key: str, where: str, problems: _Problems, default: bool = False) -> bool:
    at = f"{where}.{key}" if where else key
    if key not in raw or raw[key] is None:
        return default
    value = raw[key]
    if not isinstance(value, bool):
        problems.add(at, f"expected true or false, got {_show(value)} ({_type_name(value)})")
        return default
    return value


def _column(raw: Mapping, key: str, where: str, problems: _Problems, *, required: bool) -> str | None:
    at = f"{where}.{key}"
    if key not in raw or raw[key] is None:
        if required:
            problems.add(at, f"required for this metric type; add `{key}: <column name>`")
        return None
    value = raw[key]
    if not isinstance(value, str) or not value:
        problems.add(at, f"expected a column name (text), got {_show(value)} ({_type_name(value)})")
        return None
    return value


def _date(raw: Mapping, key: str, problems: _Problems) -> _dt.date | None:
    if key not in raw or raw[key] is None:
        return None
    value = raw[key]
    if isinstance(value, _dt.datetime):
        problems.add(key, f"expected a date like 2026-09-01, got a timestamp {value.isoformat()}; drop the time")
        return None
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    problems.add(key, f"expected a date like 2026-09-01 (YYYY-MM-DD), got {_show(value)}")
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _arm_label(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _number(raw: Mapping, key: str, where: str, problems: _Problems, *, lo: float, hi: float,
            lo_open: bool = False, hi_open: bool = False, integer: bool = False, default=None,
            example: str = "...") -> Any:
    """An optional number in [lo, hi] (ends open when asked); ``default`` when absent or null."""
    at = f"{where}.{key}" if where else key
    if key not in raw or raw[key] is None:
        return default
    value = raw[key]
    ok = _is_number(value) and math.isfinite(value)
    if ok and integer and not float(value).is_integer():
        ok = False
    if ok:
        ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        what = "a whole number" if integer else "a number"
        rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        if math.isinf(hi):
            rng = f"{'above' if lo_open else 'at least'} {lo:g}"
        else:
            rng = f"in {rng}"
        problems.add(at, f"expected {what} {rng}, got {_show(value)} ({_type_name(value)}); e.g. `{key}: {example}`")
        return default
    return int(value) if integer else float(value)


def _column_list(raw: Mapping, key: str, where: str, problems: _Problems, *, example: str) -> tuple[str, ...] | None:
    """An optional list of column names (a single name is accepted as a list of one)."""
    at = f"{where}.{key}" if where else key
    if key not in raw or raw[key] is None:
        return None
    value = raw[key]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        problems.add(at, f"expected a list of column names, got {_show(value)} ({_type_name(value)}); "
                         f"e.g. `{key}: {example}`")
        return None
    out = []
    for i, item in enumerate(value):
        if isinstance(item, str) and item.strip():
            if item in out:
                problems.add(f"{at}[{i}]", f"column '{item}' is listed twice; list it once")
            else:
                out.append(item)
        else:
            problems.add(f"{at}[{i}]", f"expected a column name (text), got {_show(item)} ({_type_name(item)})")
    return tuple(out)


# --------------------------------------------------------------------------- metric spec
@dataclass(frozen=True)
class MetricSpec:
    """One metric of a spec, as written in YAML (see the module doc)."""

    name: str
    type: str                                   # mean | proportion | ratio
    column: str | None = None                   # mean / proportion
    numerator: str | None = None                # ratio
    denominator: str | None = None              # ratio
    covariates: tuple[Covariate, ...] = ()
    better: str = "higher"
    primary: bool = False
    guardrail: bool = False
    dropna: bool = False
    method: str | None = None
    description: str | None = None
    margin: float | None = None                 # guardrails: relative non-inferiority margin (0.02 = 2%)
    nonnegative: bool = True                    # ratio: numerators must not be negative (denominators always)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every data column the metric reads."""
        out: dict[str, None] = {}
        for c in (self.column, self.numerator, self.denominator):
            if c:
                out[c] = None
        for cov in self.covariates:
            for c in ((cov,) if isinstance(cov, str) else cov):
                out[c] = None
        return tuple(out)

    def column_fields(self) -> list[tuple[str, str]]:
        """(field name, column) for every column, e.g. ('covariates[1]', 'pre_orders')."""
        out = [(k, getattr(self, k)) for k in ("column", "numerator", "denominator") if getattr(self, k)]
        for i, cov in enumerate(self.covariates):
            if isinstance(cov, str):
                out.append((f"covariates[{i}]", cov))
            else:
                out += [(f"covariates[{i}][{j}]", c) for j, c in enumerate(cov)]
        return out

    def build(self) -> Metric:
        """The abkit metric object (:class:`abkit.Mean`, :class:`abkit.Proportion`, :class:`abkit.Ratio`)."""
        covs = _covariates_arg(self.covariates, self.type == "ratio")
        if self.type == "ratio":
            return Ratio(self.numerator, self.denominator, covariates=covs, name=self.name,
                         better=self.better, dropna=self.dropna, method=self.method, nonnegative=self.nonnegative)
        cls = Proportion if self.type == "proportion" else Mean
        return cls(self.column, covariate=covs, name=self.name, better=self.better,
                   dropna=self.dropna, method=self.method)

    @property
    def definition(self) -> str:
        """Human-readable definition, e.g. ``refunds / orders``."""
        if self.type == "ratio":
            text = f"{self.numerator} / {self.denominator}"
        else:
            text = f"mean of {self.column}" if self.type == "mean" else f"share with {self.column} = 1"
        return text

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.type == "ratio":
            d["numerator"], d["denominator"] = self.numerator, self.denominator
        else:
            d["column"] = self.column
        if self.covariates:
            d["covariates"] = [c if isinstance(c, str) else list(c) for c in self.covariates]
        d["better"] = self.better
        d["primary"] = self.primary
        d["guardrail"] = self.guardrail
        if self.margin is not None:
            d["margin"] = self.margin
        d["dropna"] = self.dropna
        if self.type == "ratio" and not self.nonnegative:
            d["nonnegative"] = False
        if self.method is not None:
            d["method"] = self.method
        if self.description is not None:
            d["description"] = self.description
        return d


def _covariates_arg(covs: tuple[Covariate, ...], ratio: bool = False):
    """Covariates in the Python spelling of abkit.Mean / abkit.Ratio (a tuple is one ratio covariate, a list
    several covariates). On a ratio metric the spec's ``covariates: [num, den]`` is the pre-period ratio."""
    if not covs:
        return None
    if ratio and len(covs) == 2 and all(isinstance(c, str) for c in covs):
        return tuple(covs)
    if len(covs) == 1 and isinstance(covs[0], str):
        return covs[0]
    return [c if isinstance(c, str) else tuple(c) for c in covs]


def _parse_covariates(raw: Mapping, where: str, problems: _Problems) -> tuple[Covariate, ...]:
    if "covariate" in raw and "covariates" in raw:
        problems.add(f"{where}.covariate", "give either `covariate` or `covariates`, not both")
        return ()
    key = "covariate" if "covariate" in raw else "covariates"
    value = raw.get(key)
    at = f"{where}.{key}"
    if value is None:
        return ()
    if isinstance(value, str):
        if not value:
            problems.add(at, "empty column name; remove the key or name a column")
            return ()
        return (value,)
    if not isinstance(value, list):
        problems.add(at, f"expected a column name or a list of column names, got {_show(value)} "
                         f"({_type_name(value)})")
        return ()
    out: list[Covariate] = []
    for i, item in enumerate(value):
        if isinstance(item, str) and item:
            out.append(item)
        elif (isinstance(item, (list, tuple)) and len(item) == 2
              and all(isinstance(c, str) and c for c in item)):
            out.append((item[0], item[1]))
        else:
            problems.add(f"{at}[{i}]", f"expected a column name or a [numerator, denominator] pair of "
                                       f"column names, got {_show(item)}")
    return tuple(out)


def _parse_metric(raw: Any, i: int, problems: _Problems, named: list[tuple[str, str]]) -> MetricSpec | None:
    """Parse metrics[i]; every column it names is appended to ``named`` as (field, column),
    even when the metric has other problems, so missing columns are reported in the same pass."""
    where = f"metrics[{i}]"
    if not isinstance(raw, Mapping):
        problems.add(where, f"expected a mapping like `- name: refund_rate` / `  type: ratio`, got "
                            f"{_show(raw)} ({_type_name(raw)})")
        return None
    _check_keys(raw, METRIC_KEYS, where, problems)
    n_before = len(problems.items)
    mtype = None
    if "type" not in raw or raw["type"] is None:
        problems.add(f"{where}.type", f"required key missing; add `type: ` one of {', '.join(METRIC_TYPES)}")
    else:
        mtype = _choice(raw, "type", where, problems, METRIC_TYPES, None)
    column = numerator = denominator = None
    if mtype == "ratio":
        numerator = _column(raw, "numerator", where, problems, required=True)
        denominator = _column(raw, "denominator", where, problems, required=True)
        if "column" in raw:
            problems.add(f"{where}.column", "a ratio metric takes `numerator` and `denominator`, not "
                                            "`column`; use type: mean for a per-unit mean")
    elif mtype in ("mean", "proportion"):
        column = _column(raw, "column", where, problems, required=True)
        for k in ("numerator", "denominator"):
            if k in raw:
                problems.add(f"{where}.{k}", f"a {mtype} metric takes `column`, not `{k}`; use type: ratio "
                                             "for numerator / denominator")
    covariates = _parse_covariates(raw, where, problems)
    probe = MetricSpec(name="", type=mtype or "mean", column=column, numerator=numerator,
                       denominator=denominator, covariates=covariates)
    cov_key = "covariate" if "covariate" in raw else "covariates"   # name fields as the user wrote them

    def label(fld: str) -> str:
        if not fld.startswith("covariates["):
            return fld
        return cov_key if isinstance(raw.get(cov_key), str) else cov_key + fld[len("covariates"):]

    named += [(f"{where}.{label(fld)}", col) for fld, col in probe.column_fields()]
    default_name = column or (f"{numerator}/{denominator}" if numerator and denominator else None)
    name = _text(raw, "name", where, problems, default=default_name)
    if name is not None and not name.strip():
        problems.add(f"{where}.name", "must not be empty; give the metric a name like refund_rate")
    better = _choice(raw, "better", where, problems, BETTER, "higher")
    method = _choice(raw, "method", where, problems, METHODS, None, nullable=True)
    if method is not None and not covariates:
        problems.add(f"{where}.method", f"method '{method}' needs covariates; add `covariates: [...]` or "
                                        "remove `method`")
    primary = _flag(raw, "primary", where, problems)
    guardrail = _flag(raw, "guardrail", where, problems)
    if primary and guardrail:
        problems.add(f"{where}.guardrail", "a metric cannot be both primary and a guardrail; keep one")
    margin = _number(raw, "margin", where, problems, lo=0.0, hi=1.0, hi_open=True,
                     example="0.02 (the guardrail may get at most 2% worse)")
    if margin is not None and not guardrail:
        problems.add(f"{where}.margin", "a non-inferiority margin only applies to guardrail metrics; add "
                                        "`guardrail: true` or remove `margin`")
    dropna = _flag(raw, "dropna", where, problems)
    nonnegative = _flag(raw, "nonnegative", where, problems, default=True)
    if "nonnegative" in raw and mtype != "ratio":
        problems.add(f"{where}.nonnegative", "only ratio metrics check their numerators for negative values; "
                                             "remove `nonnegative`")
    description = _text(raw, "description", where, problems)
    if len(problems.items) > n_before or mtype is None or name is None:
        return None
    spec = MetricSpec(name=name, type=mtype, column=column, numerator=numerator, denominator=denominator,
                      covariates=covariates, better=better, primary=primary, guardrail=guardrail,
                      dropna=dropna, method=method, description=description, margin=margin,
                      nonnegative=nonnegative)
    try:
        spec.build()
    except AbkitError as exc:
        problems.add(where, str(exc))
        return None
    return spec


# --------------------------------------------------------------------------- what every kind shares
def _header(raw: Any, allow, problems: _Problems, body: str, example: str) -> dict:
    """The checks every kind shares: a mapping of known keys; name, owner, description, hypothesis,
    start <= end. Returns those fields for the spec's constructor."""
    if not isinstance(raw, Mapping):
        problems.add("", f"a spec must be a mapping of keys (name:, data:, {body}: ...), got "
                         f"{_type_name(raw)} {_show(raw)}")
        problems.raise_if_any()
    _check_keys(raw, allow, "", problems)
    name = _text(raw, "name", "", problems, required=True, example=example)
    owner = _text(raw, "owner", "", problems)
    description = _text(raw, "description", "", problems)
    hypothesis = _text(raw, "hypothesis", "", problems)
    start, end = _date(raw, "start", problems), _date(raw, "end", problems)
    if start and end and end < start:
        problems.add("end", f"{end.isoformat()} is before start {start.isoformat()}; swap them")
    return {"name": name, "owner": owner, "description": description, "hypothesis": hypothesis, "start": start,
            "end": end}


def _footer(raw: Mapping, allow, problems: _Problems, data, raw_data, named, check_data: bool,
            arm: tuple | None = None) -> str | None:
    """The ``source`` key (written by to_dict), the data check (``arm``: the variant column and the control
    label to find in it), then every problem raised at once."""
    source = raw.get("source") if "source" in allow else None
    if source is not None and not isinstance(source, str):
        problems.add("source", f"expected the spec file path (text), got {_show(source)}")
        source = None
    if data is not None and check_data:
        _check_data(data, raw_data, named, problems, arm)
    problems.raise_if_any()
    return source


# --------------------------------------------------------------------------- data: a file or a table
def _data_source(raw_data: Any, base_dir, problems: _Problems, example: str) -> "str | TableRef | None":
    """The data a spec reads: an absolute file path (relative paths from ``base_dir``) or a
    :class:`abkit.engines.TableRef` for ``data: {engine, table, ...}``; None with a problem recorded."""
    if raw_data is None:
        problems.add("data", f"required key missing; add e.g. `data: {example}, relative to the spec file) or "
                             "a table: `data: {engine: duckdb, table: refunds, database: warehouse.duckdb}`")
        return None
    if isinstance(raw_data, Mapping):
        return _table_ref(raw_data, base_dir, problems)
    if not isinstance(raw_data, str) or not raw_data.strip():
        problems.add("data", f"expected a file path (text) or a table ({{engine, table}}), got {_show(raw_data)} "
                             f"({_type_name(raw_data)})")
        return None
    return _absolute(raw_data, base_dir)


def _absolute(path: str, base_dir) -> str:
    """``path`` made absolute against ``base_dir`` (normalising '..' without following symlinks)."""
    p = Path(os.path.expanduser(path))
    if not p.is_absolute():
        p = Path(base_dir if base_dir is not None else os.getcwd()) / p
    return str(Path(os.path.abspath(p)))


TABLE_KEYS = ("engine", "table", "database", "conf")
ENGINES = ("duckdb", "spark")


def _table_ref(raw: Mapping, base_dir, problems: _Problems) -> TableRef | None:
    """``data: {engine, table, database, conf}``: a warehouse table instead of a file."""
    before = len(problems.items)
    _check_keys(raw, TABLE_KEYS, "data", problems)
    engine = _choice(raw, "engine", "data", problems, ENGINES, None)
    if "engine" not in raw:
        problems.add("data.engine", "required key missing; add `engine: duckdb` (a DuckDB database file) or "
                                    "`engine: spark` (a table in the Spark catalog)")
    table = raw.get("table")
    if not isinstance(table, str) or not table.strip():
        problems.add("data.table", f"expected the table name (text, e.g. `refunds` or `aftersales.refunds`), got "
                                   f"{_show(table)}")
    database = raw.get("database")
    if engine == "duckdb":
        if not isinstance(database, str) or not database.strip():
            problems.add("data.database", f"expected the DuckDB database file (text, relative to the spec file, "
                                          f"e.g. `warehouse.duckdb`), got {_show(database)}")
        else:
            database = _absolute(database, base_dir)
    elif engine == "spark" and database is not None:
        problems.add("data.database", "Spark names the database in the table: write `table: aftersales.refunds` "
                                      "and remove `database`")
    conf = raw.get("conf")
    if conf is not None:
        if engine != "spark":
            problems.add("data.conf", "Spark settings apply to `engine: spark` only; remove `conf`")
        elif not isinstance(conf, Mapping) or not all(
                isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in conf.items()):
            problems.add("data.conf", f"expected a mapping of Spark settings to values, e.g. "
                                      f"`conf: {{spark.master: 'local[4]'}}`, got {_show(conf)}")
    if len(problems.items) > before:
        return None
    return TableRef(engine=engine, table=table.strip(), database=database if engine == "duckdb" else None,
                    conf=tuple(sorted((str(k), v) for k, v in (conf or {}).items())))


class _Data:
    """What every spec kind does with its ``data`` (a file path or a :class:`abkit.engines.TableRef`)."""

    data: "str | TableRef"

    @property
    def is_table(self) -> bool:
        """True when the spec names a warehouse table rather than a file."""
        return isinstance(self.data, TableRef)

    @property
    def data_path(self) -> Path:
        """Absolute path of the data file (an error for a table: use :meth:`open_data`)."""
        if self.is_table:
            raise SpecError(f"spec '{self.name}' reads the {self.data.label}, not a file; use open_data()")
        return Path(self.data)

    @property
    def data_label(self) -> str:
        """The data for people: the file name or e.g. 'DuckDB table refunds in warehouse.duckdb'."""
        return self.data.label if self.is_table else Path(self.data).name

    def open_data(self):
        """What abkit's functions take: the file path, or the table opened in its engine (lazy)."""
        return self.data.open() if self.is_table else Path(self.data)

    def _data_dict(self):
        return self.data.to_dict() if self.is_table else self.data


# --------------------------------------------------------------------------- experiment spec
@dataclass(frozen=True)
class ExperimentSpec(_Data):
    """A validated experiment spec. Build it with :func:`load_spec` or :meth:`from_dict`.

    ``data`` is the absolute path of the data file (the YAML's relative
    path resolved against the spec file's directory); ``source`` is the
    spec file it came from, if any.
    """

    name: str
    data: "str | TableRef"
    metrics: tuple[MetricSpec, ...]
    kind: str = "ab"
    owner: str | None = None
    description: str | None = None
    hypothesis: str | None = None
    start: _dt.date | None = None
    end: _dt.date | None = None
    variant: str = "variant"
    control: str | int = "control"
    allocation: tuple | None = None   # ((arm, share), ...) for a mapping, (share, ...) for a list
    alpha: float = 0.05
    correction: str | None = None
    source: str | None = None
    mde: float | None = None          # planned minimum detectable effect, relative (0.02 = 2%)
    power: float = 0.8                # planned power for the mde
    planned_units: int | None = None  # planned units, all arms together
    date: str | None = None           # column with each unit's first-exposure date (cumulative chart)
    segments: tuple[str, ...] = ()    # columns to break the primary metric down by
    unit: str | None = None           # randomization-unit id column: unit-integrity check (leaks, duplicates)
    balance: tuple[str, ...] | None = None   # pre-period columns for the balance check (None: covariates)
    sequential: bool = False          # always-valid CIs and p-values (safe to look daily)

    # ----------------------------------------------------------------- views
    @property
    def primary(self) -> MetricSpec:
        """The one metric the decision rests on."""
        return next(m for m in self.metrics if m.primary)

    @property
    def guardrails(self) -> tuple[MetricSpec, ...]:
        """Metrics that must not get significantly worse."""
        return tuple(m for m in self.metrics if m.guardrail)

    @property
    def planned_allocation(self) -> dict | list | None:
        """The allocation as :func:`abkit.analyze` takes it (mapping, list of shares or None)."""
        if self.allocation is None:
            return None
        if self.allocation and isinstance(self.allocation[0], tuple):
            return {arm: share for arm, share in self.allocation}
        return list(self.allocation)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every data column the spec names (variant first)."""
        out: dict[str, None] = {self.variant: None}
        for m in self.metrics:
            for c in m.columns:
                out[c] = None
        for c in (self.date, self.unit, *self.segments, *self.balance_columns):
            if c:
                out[c] = None
        return tuple(out)

    @property
    def balance_columns(self) -> tuple[str, ...]:
        """Pre-period columns compared between arms: ``balance`` or else every metric covariate."""
        if self.balance is not None:
            return self.balance
        out: dict[str, None] = {}
        for m in self.metrics:
            for cov in m.covariates:
                for c in ((cov,) if isinstance(cov, str) else cov):
                    out[c] = None
        return tuple(out)

    @property
    def margins(self) -> dict[str, float | None]:
        """Guardrail name -> its relative non-inferiority margin (None = none given)."""
        return {g.name: g.margin for g in self.guardrails}

    def build_metrics(self) -> list[Metric]:
        """The abkit metric objects, in spec order."""
        return [m.build() for m in self.metrics]

    # ----------------------------------------------------------------- dict form
    def to_dict(self) -> dict:
        """Plain JSON-able data (str, numbers, booleans, None, lists, dicts).

        ``ExperimentSpec.from_dict(spec.to_dict()) == spec``. Dates become
        ISO strings and ``data`` the absolute path.
        """
        alloc = self.planned_allocation
        return {
            "name": self.name,
            "kind": self.kind,
            "owner": self.owner,
            "description": self.description,
            "hypothesis": self.hypothesis,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "data": self._data_dict(),
            "variant": self.variant,
            "control": self.control,
            "allocation": alloc,
            "alpha": self.alpha,
            "correction": self.correction,
            "mde": self.mde,
            "power": self.power,
            "planned_units": self.planned_units,
            "date": self.date,
            "segments": list(self.segments),
            "unit": self.unit,
            "balance": list(self.balance) if self.balance is not None else None,
            "sequential": self.sequential,
            "metrics": [m.to_dict() for m in self.metrics],
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, raw: Mapping, *, base_dir: str | os.PathLike | None = None, origin: str | None = None,
                  check_data: bool = True) -> "ExperimentSpec":
        """Validate a spec given as a mapping (e.g. from :meth:`to_dict` or parsed YAML).

        ``base_dir`` anchors a relative ``data`` path (default: the current
        directory). With ``check_data`` the data file must exist and hold
        every column named in the spec (only its schema is read).
        """
        origin = origin or (str(raw.get("source")) if isinstance(raw, Mapping) and raw.get("source") else "spec")
        return _parse_spec(raw, origin=origin, base_dir=base_dir, check_data=check_data,
                           allow=TOP_KEYS + _DICT_ONLY_KEYS)


def _parse_allocation(value: Any, control, problems: _Problems) -> tuple | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        pairs = []
        for arm, share in value.items():
            if not _arm_label(arm):
                problems.add(f"allocation.{arm}", f"arm name {_show(arm)} must be text; quote it")
            elif not _is_number(share) or not math.isfinite(share) or share <= 0:
                problems.add(f"allocation.{arm}", f"expected a positive share like 0.5, got {_show(share)}")
            else:
                pairs.append((arm, float(share)))
        if len(value) < 2:
            problems.add("allocation", "needs at least two arms, e.g. `{control: 0.5, treatment: 0.5}`")
        elif control is not None and control not in value:
            problems.add("allocation", f"does not name the control arm {_show(control)}; arms given: "
                                       f"{', '.join(map(str, value))}")
        return tuple(pairs)
    if isinstance(value, list):
        shares = []
        for i, share in enumerate(value):
            if not _is_number(share) or not math.isfinite(share) or share <= 0:
                problems.add(f"allocation[{i}]", f"expected a positive share like 0.5, got {_show(share)}")
            else:
                shares.append(float(share))
        if len(value) < 2:
            problems.add("allocation", "needs a share for at least two arms, e.g. [0.5, 0.5]")
        return tuple(shares)
    problems.add("allocation", f"expected a mapping like {{control: 0.5, treatment: 0.5}} or a list of "
                               f"shares (control first), got {_show(value)} ({_type_name(value)})")
    return None


def _parse_spec(raw: Any, *, origin: str, base_dir, check_data: bool, allow) -> ExperimentSpec:
    problems = _Problems(origin)
    head = _header(raw, allow, problems, "metrics", "Instant refunds for low-value returns")
    kind = "ab"
    if raw.get("kind") is not None:
        if raw["kind"] in KINDS and raw["kind"] != "ab":
            problems.add("kind", f"a kind: {raw['kind']} spec is read with abkit.spec.load_spec or "
                                 f"spec_from_dict, not as an A/B spec")
        else:
            kind = _choice(raw, "kind", "", problems, KINDS, "ab")
    elif any(k in raw for k in ("outcome", "unit", "first_treated")) and "metrics" not in raw:
        problems.add("kind", "this looks like a rollout (difference-in-differences) spec; add `kind: did`")
    variant = _text(raw, "variant", "", problems, default="variant") or "variant"
    control = raw.get("control", "control")
    if not _arm_label(control) or control == "":
        problems.add("control", f"expected the control arm's label (text), got {_show(control)} "
                                f"({_type_name(control)}); e.g. `control: control`")
        control = None
    allocation = _parse_allocation(raw.get("allocation"), control, problems)

    alpha = raw.get("alpha", 0.05)
    if alpha is None:
        alpha = 0.05
    if not _is_number(alpha) or not (0.0 < alpha < 0.5):
        problems.add("alpha", f"expected a number between 0 and 0.5, got {_show(alpha)}; e.g. `alpha: 0.05`")
        alpha = 0.05
    correction = _choice(raw, "correction", "", problems, CORRECTIONS, None, nullable=True)
    mde = _number(raw, "mde", "", problems, lo=0.0, hi=1.0, lo_open=True, hi_open=True,
                  example="0.02 (a 2% relative change)")
    power = _number(raw, "power", "", problems, lo=0.0, hi=1.0, lo_open=True, hi_open=True, default=0.8,
                    example="0.8")
    if power is not None and power <= alpha:
        problems.add("power", f"must be larger than alpha ({alpha:g}), got {power:g}; e.g. `power: 0.8`")
    planned_units = _number(raw, "planned_units", "", problems, lo=2, hi=math.inf, integer=True,
                            example="40000 (units in all arms together)")
    date = _text(raw, "date", "", problems)
    if date is not None and not date.strip():
        problems.add("date", "must not be empty; name the column with each unit's first-exposure date")
        date = None
    segments = _column_list(raw, "segments", "", problems, example="[market, buyer_type]") or ()
    balance = _column_list(raw, "balance", "", problems, example="[pre_orders, pre_refunds]")
    sequential = _flag(raw, "sequential", "", problems)
    if sequential and planned_units is None and "planned_units" not in raw:
        problems.add("sequential", "always-valid intervals need their mixture fixed before the data are seen: add "
                                   "`planned_units:` (the units planned in all arms, e.g. 40000)")
    unit = _text(raw, "unit", "", problems)
    if unit is not None and not unit.strip():
        problems.add("unit", "must not be empty; name the column with each row's randomization-unit id "
                             "(e.g. buyer_id), or remove the key")
        unit = None

    raw_data = raw.get("data")
    data = _data_source(raw_data, base_dir, problems, "../data/aftersales_ab.parquet` (a parquet or CSV file")

    named: list[tuple[str, str]] = [("variant", variant)]
    if date:
        named.append(("date", date))
    if unit:
        named.append(("unit", unit))
    named += [(f"segments[{i}]", c) for i, c in enumerate(segments)]
    named += [(f"balance[{i}]", c) for i, c in enumerate(balance or ())]
    for where, c in named[1:]:
        if c == variant:
            problems.add(where, f"'{c}' is the variant column; name another column")
    metrics = _parse_metrics(raw.get("metrics"), problems, named)
    for m in metrics:
        if unit and unit in m.columns:
            problems.add("unit", f"'{unit}' is also a column of metric '{m.name}'; `unit` names the column "
                                 "with each row's randomization-unit id (e.g. buyer_id)")

    source = _footer(raw, allow, problems, data, raw_data, named, check_data,
                     arm=(variant, control) if control is not None else None)
    return ExperimentSpec(**head, data=data, metrics=tuple(metrics), kind=kind, variant=variant, control=control,
                          allocation=allocation, alpha=float(alpha),
                          correction=correction, source=source, mde=mde, power=float(power or 0.8),
                          planned_units=planned_units, date=date, segments=tuple(segments), balance=balance,
                          unit=unit, sequential=sequential)


def _parse_metrics(raw_metrics: Any, problems: _Problems, named: list[tuple[str, str]]) -> list[MetricSpec]:
    """The ``metrics:`` list of an A/B or power spec (their columns appended to ``named``)."""
    if raw_metrics is None:
        problems.add("metrics", "required key missing; add a list of metrics, each with name, type and columns")
        return []
    if not isinstance(raw_metrics, list) or not raw_metrics:
        problems.add("metrics", f"expected a non-empty list of metrics, got {_show(raw_metrics)}")
        return []
    parsed = [_parse_metric(m, i, problems, named) for i, m in enumerate(raw_metrics)]
    metrics = [m for m in parsed if m is not None]
    if len(metrics) == len(parsed):
        _check_metric_set(metrics, problems)
    return metrics


def _check_metric_set(metrics: list[MetricSpec], problems: _Problems) -> None:
    seen: dict[str, int] = {}
    for i, m in enumerate(metrics):
        if m.name in seen:
            problems.add(f"metrics[{i}].name", f"'{m.name}' is already the name of metrics[{seen[m.name]}]; "
                                               "give each metric a distinct name")
        else:
            seen[m.name] = i
    primaries = [(i, m.name) for i, m in enumerate(metrics) if m.primary]
    if not primaries:
        problems.add("metrics", "no metric has `primary: true`; mark the one metric the decision rests on")
    elif len(primaries) > 1:
        listed = ", ".join(f"metrics[{i}] ({n})" for i, n in primaries)
        problems.add("metrics", f"exactly one metric must have `primary: true`, found {len(primaries)}: "
                                f"{listed}; keep one and make the others guardrails or secondary metrics")


# --------------------------------------------------------------------------- rollout (kind: did)
@dataclass(frozen=True)
class OutcomeSpec:
    """One outcome of a rollout: a column, or a ratio ``numerator / denominator`` of unit-period sums."""

    name: str
    column: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    better: str = "higher"
    description: str | None = None

    @property
    def is_ratio(self) -> bool:
        return self.numerator is not None

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.numerator, self.denominator) if self.is_ratio else (self.column,)

    @property
    def definition(self) -> str:
        return f"{self.numerator} / {self.denominator}" if self.is_ratio else f"column {self.column}"

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"name": self.name}
        if self.is_ratio:
            d["numerator"], d["denominator"] = self.numerator, self.denominator
        else:
            d["column"] = self.column
        d["better"] = self.better
        if self.description is not None:
            d["description"] = self.description
        return d


@dataclass(frozen=True)
class RolloutSpec(_Data):
    """A validated ``kind: did`` spec: a non-randomized, staggered rollout analysed by difference-in-differences.

    ``first_treated`` names the column with each unit's launch period (missing
    or 0 = never launched); alternatively ``treatment`` names a 0/1 column
    that switches on at launch and stays on. The ``outcome`` is the primary
    outcome; ``secondary`` outcomes are reported alongside.

    Example ``specs/refund_policy_rollout.yaml``::

        name: Refund-policy rollout
        kind: did
        data: ../data/rollout_panel.parquet
        unit: market
        time: week
        first_treated: launch_week
        outcome: {name: contact_rate, numerator: contacts, denominator: orders, better: lower}
        control_group: never_treated        # or not_yet_treated
        method: dr                          # dr | reg | ipw
        scale: log                          # log (relative effects) | level
    """

    name: str
    data: "str | TableRef"
    unit: str
    time: str
    outcome: OutcomeSpec
    first_treated: str | None = None
    treatment: str | None = None
    secondary: tuple[OutcomeSpec, ...] = ()
    kind: str = "did"
    owner: str | None = None
    description: str | None = None
    hypothesis: str | None = None
    start: _dt.date | None = None
    end: _dt.date | None = None
    control_group: str = "never_treated"
    method: str = "dr"
    covariates: tuple[str, ...] = ()
    cluster: str | None = None
    alpha: float = 0.05
    scale: str = "log"
    leads: int = 6
    lags: int = 12
    placebo_shifts: tuple[int, ...] = (4, 8)
    source: str | None = None

    @property
    def primary(self) -> OutcomeSpec:
        """The outcome the verdict rests on."""
        return self.outcome

    @property
    def outcomes(self) -> tuple[OutcomeSpec, ...]:
        return (self.outcome, *self.secondary)

    @property
    def metrics(self) -> tuple[OutcomeSpec, ...]:
        """Alias of :attr:`outcomes` (what the runner and the CLI count)."""
        return self.outcomes

    @property
    def columns(self) -> tuple[str, ...]:
        out: dict[str, None] = {}
        for c in (self.unit, self.time, self.first_treated, self.treatment, self.cluster, *self.covariates):
            if c:
                out[c] = None
        for o in self.outcomes:
            for c in o.columns:
                out[c] = None
        return tuple(out)

    def to_dict(self) -> dict:
        """Plain JSON-able data; ``RolloutSpec.from_dict(spec.to_dict()) == spec``."""
        return {
            "name": self.name, "kind": self.kind, "owner": self.owner, "description": self.description,
            "hypothesis": self.hypothesis,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "data": self._data_dict(), "unit": self.unit, "time": self.time, "first_treated": self.first_treated,
            "treatment": self.treatment, "outcome": self.outcome.to_dict(),
            "secondary": [o.to_dict() for o in self.secondary], "control_group": self.control_group,
            "method": self.method, "covariates": list(self.covariates), "cluster": self.cluster,
            "alpha": self.alpha, "scale": self.scale, "leads": self.leads, "lags": self.lags,
            "placebo_shifts": list(self.placebo_shifts), "source": self.source,
        }

    @classmethod
    def from_dict(cls, raw: Mapping, *, base_dir: str | os.PathLike | None = None, origin: str | None = None,
                  check_data: bool = True) -> "RolloutSpec":
        """Validate a rollout spec given as a mapping (see :meth:`ExperimentSpec.from_dict`)."""
        origin = origin or (str(raw.get("source")) if isinstance(raw, Mapping) and raw.get("source") else "spec")
        return _parse_rollout(raw, origin=origin, base_dir=base_dir, check_data=check_data,
                              allow=DID_KEYS + _DICT_ONLY_KEYS)


def _parse_outcome(raw: Any, where: str, problems: _Problems, named: list[tuple[str, str]]) -> OutcomeSpec | None:
    if isinstance(raw, str) and raw.strip():
        raw = {"column": raw}
    if not isinstance(raw, Mapping):
        problems.add(where, f"expected a column name or a mapping like `{{name: contact_rate, numerator: contacts, "
                            f"denominator: orders}}`, got {_show(raw)} ({_type_name(raw)})")
        return None
    _check_keys(raw, OUTCOME_KEYS, where, problems)
    n_before = len(problems.items)
    column = numerator = denominator = None
    if "column" in raw and ("numerator" in raw or "denominator" in raw):
        problems.add(f"{where}.column", "give either `column` or `numerator` and `denominator`, not both")
    elif "numerator" in raw or "denominator" in raw:
        numerator = _column(raw, "numerator", where, problems, required=True)
        denominator = _column(raw, "denominator", where, problems, required=True)
    else:
        column = _column(raw, "column", where, problems, required=False)
        if column is None and "column" not in raw:
            problems.add(where, "needs `column: <name>` or `numerator:` and `denominator:` (a ratio of sums such as "
                                "contacts / orders)")
    for fld, c in (("column", column), ("numerator", numerator), ("denominator", denominator)):
        if c:
            named.append((f"{where}.{fld}", c))
    default_name = column or (f"{numerator}/{denominator}" if numerator and denominator else None)
    name = _text(raw, "name", where, problems, default=default_name)
    if name is not None and not name.strip():
        problems.add(f"{where}.name", "must not be empty; give the outcome a name like contact_rate")
    better = _choice(raw, "better", where, problems, BETTER, "higher")
    description = _text(raw, "description", where, problems)
    if len(problems.items) > n_before or name is None:
        return None
    return OutcomeSpec(name=name, column=column, numerator=numerator, denominator=denominator, better=better,
                       description=description)


def _parse_rollout(raw: Any, *, origin: str, base_dir, check_data: bool, allow) -> RolloutSpec:
    problems = _Problems(origin)
    head = _header(raw, allow, problems, "outcome", "Refund-policy rollout")
    if raw.get("kind") != "did":
        problems.add("kind", f"expected `kind: did` for a rollout spec, got {_show(raw.get('kind'))}")
    named: list[tuple[str, str]] = []
    unit = _text(raw, "unit", "", problems, required=True, example="market")
    time = _text(raw, "time", "", problems, required=True, example="week")
    first_treated = _text(raw, "first_treated", "", problems)
    treatment = _text(raw, "treatment", "", problems)
    if first_treated and treatment:
        problems.add("treatment", "give either `first_treated` (the launch period of each unit) or `treatment` "
                                  "(a 0/1 column that switches on at launch), not both")
    elif not first_treated and not treatment:
        problems.add("first_treated", "required key missing; add e.g. `first_treated: launch_week` (each unit's "
                                      "launch period, empty for never launched) or `treatment: launched` (0/1)")
    cluster = _text(raw, "cluster", "", problems)
    for key, col in (("unit", unit), ("time", time), ("first_treated", first_treated), ("treatment", treatment),
                     ("cluster", cluster)):
        if col:
            named.append((key, col))
    outcome = None
    if raw.get("outcome") is None:
        problems.add("outcome", "required key missing; add e.g. `outcome: {name: contact_rate, numerator: "
                                "contacts, denominator: orders, better: lower}`")
    else:
        outcome = _parse_outcome(raw["outcome"], "outcome", problems, named)
    secondary: list[OutcomeSpec] = []
    raw_sec = raw.get("secondary")
    if raw_sec is not None:
        if not isinstance(raw_sec, list):
            problems.add("secondary", f"expected a list of outcomes, got {_show(raw_sec)} ({_type_name(raw_sec)})")
        else:
            for i, item in enumerate(raw_sec):
                o = _parse_outcome(item, f"secondary[{i}]", problems, named)
                if o is not None:
                    secondary.append(o)
    names = [o.name for o in ([outcome] if outcome else []) + secondary]
    for i, o in enumerate(secondary):
        if names.count(o.name) > 1:
            problems.add(f"secondary[{i}].name", f"'{o.name}' is already the name of another outcome; give each "
                                                 "outcome a distinct name")
    control_group = _choice(raw, "control_group", "", problems, CONTROL_GROUPS, "never_treated")
    method = _choice(raw, "method", "", problems, DID_METHODS, "dr")
    covariates = _column_list(raw, "covariates", "", problems, example="[market_size]") or ()
    named += [(f"covariates[{i}]", c) for i, c in enumerate(covariates)]
    alpha = _number(raw, "alpha", "", problems, lo=0.0, hi=0.5, lo_open=True, hi_open=True, default=0.05,
                    example="0.05")
    scale = _choice(raw, "scale", "", problems, SCALES, "log")
    leads = _number(raw, "leads", "", problems, lo=2, hi=1000, integer=True, default=6, example="6")
    lags = _number(raw, "lags", "", problems, lo=0, hi=1000, integer=True, default=12, example="12")
    shifts: tuple[int, ...] = (4, 8)
    if raw.get("placebo_shifts") is not None:
        value = raw["placebo_shifts"]
        value = [value] if _is_number(value) else value
        if not isinstance(value, list) or not all(_is_number(v) and float(v).is_integer() and v >= 1 for v in value):
            problems.add("placebo_shifts", f"expected a list of whole numbers of periods >= 1, got {_show(value)}; "
                                           "e.g. `placebo_shifts: [4, 8]`")
        else:
            shifts = tuple(sorted({int(v) for v in value}))
    raw_data = raw.get("data")
    data = _data_source(raw_data, base_dir, problems, "../data/rollout_panel.parquet` (one row per unit and period")
    source = _footer(raw, allow, problems, data, raw_data, named, check_data)
    return RolloutSpec(**head, data=data, unit=unit, time=time, outcome=outcome, first_treated=first_treated,
                       treatment=treatment, secondary=tuple(secondary), control_group=control_group, method=method,
                       covariates=tuple(covariates), cluster=cluster, alpha=float(alpha), scale=scale,
                       leads=int(leads), lags=int(lags), placebo_shifts=shifts, source=source)


# --------------------------------------------------------------------------- test plan (kind: power)
@dataclass(frozen=True)
class PowerSpec(_Data):
    """A validated ``kind: power`` spec: plan an A/B test from historical data (:func:`abkit.power.plan`).

    ``data`` is history (or an A/A test) with the columns the metrics need;
    the traffic is ``daily_units`` eligible units a day (``population`` for
    repeat visitors, ``traffic_share`` in the test). ``mde`` is the relative
    effect the test must detect on the primary metric; ``max_days`` the
    longest acceptable run. Guardrails with a ``margin`` get the power to show
    non-inferiority.
    """

    name: str
    data: "str | TableRef"
    metrics: tuple[MetricSpec, ...]
    daily_units: float
    kind: str = "power"
    owner: str | None = None
    description: str | None = None
    hypothesis: str | None = None
    start: _dt.date | None = None
    end: _dt.date | None = None
    variant: str | None = None
    control: str | int = "control"
    alpha: float = 0.05
    power: float = 0.8
    arms: int = 2
    ratio: float = 1.0
    correction: str | None = "bonferroni"
    population: float | None = None
    traffic_share: float = 1.0
    days: tuple[int, ...] = DEFAULT_PLAN_DAYS
    mde: float | None = None
    max_days: int | None = None
    source: str | None = None
    simulate: int = 0                 # simulated tests checking the recommendation (0 = off)
    sequential: bool = False          # plan for always-valid intervals (the test will be read while it runs)

    @property
    def primary(self) -> MetricSpec:
        return next(m for m in self.metrics if m.primary)

    @property
    def guardrails(self) -> tuple[MetricSpec, ...]:
        return tuple(m for m in self.metrics if m.guardrail)

    @property
    def columns(self) -> tuple[str, ...]:
        out: dict[str, None] = {self.variant: None} if self.variant else {}
        for m in self.metrics:
            for c in m.columns:
                out[c] = None
        return tuple(out)

    def build_metrics(self) -> list[Metric]:
        return [m.build() for m in self.metrics]

    def to_dict(self) -> dict:
        """Plain JSON-able data; ``PowerSpec.from_dict(spec.to_dict()) == spec``."""
        return {
            "name": self.name, "kind": self.kind, "owner": self.owner, "description": self.description,
            "hypothesis": self.hypothesis, "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None, "data": self._data_dict(), "variant": self.variant,
            "control": self.control, "alpha": self.alpha, "power": self.power, "arms": self.arms,
            "ratio": self.ratio, "correction": self.correction, "daily_units": self.daily_units,
            "population": self.population, "traffic_share": self.traffic_share, "days": list(self.days),
            "mde": self.mde, "max_days": self.max_days, "metrics": [m.to_dict() for m in self.metrics],
            "source": self.source, "simulate": self.simulate, "sequential": self.sequential,
        }

    @classmethod
    def from_dict(cls, raw: Mapping, *, base_dir: str | os.PathLike | None = None, origin: str | None = None,
                  check_data: bool = True) -> "PowerSpec":
        origin = origin or (str(raw.get("source")) if isinstance(raw, Mapping) and raw.get("source") else "spec")
        return _parse_power(raw, origin=origin, base_dir=base_dir, check_data=check_data,
                            allow=POWER_KEYS + _DICT_ONLY_KEYS)


def _parse_power(raw: Any, *, origin: str, base_dir, check_data: bool, allow) -> PowerSpec:
    problems = _Problems(origin)
    head = _header(raw, allow, problems, "metrics", "Proactive refund e-mails: test plan")
    if raw.get("kind") != "power":
        problems.add("kind", f"expected `kind: power` for a test plan, got {_show(raw.get('kind'))}")
    variant = _text(raw, "variant", "", problems)
    control = raw.get("control", "control")
    if not _arm_label(control) or control == "":
        problems.add("control", f"expected the control arm's label (text), got {_show(control)}")
        control = "control"
    alpha = _number(raw, "alpha", "", problems, lo=0.0, hi=0.5, lo_open=True, hi_open=True, default=0.05,
                    example="0.05")
    power = _number(raw, "power", "", problems, lo=0.0, hi=1.0, lo_open=True, hi_open=True, default=0.8,
                    example="0.8")
    if power <= alpha:
        problems.add("power", f"must be larger than alpha ({alpha:g}), got {power:g}; e.g. `power: 0.8`")
    arms = _number(raw, "arms", "", problems, lo=2, hi=100, integer=True, default=2, example="2")
    ratio = _number(raw, "ratio", "", problems, lo=0.0, hi=100.0, lo_open=True, default=1.0,
                    example="1 (treatment units per control unit)")
    correction = _choice(raw, "correction", "", problems, POWER_CORRECTIONS, "bonferroni", nullable=True)
    daily_units = _number(raw, "daily_units", "", problems, lo=0.0, hi=math.inf, lo_open=True,
                          example="1500 (eligible units a day)")
    if "daily_units" not in raw or raw["daily_units"] is None:
        problems.add("daily_units", "required key missing; add the traffic, e.g. `daily_units: 1500` (eligible "
                                    "units a day)")
    population = _number(raw, "population", "", problems, lo=0.0, hi=math.inf, lo_open=True,
                         example="60000 (eligible units in all; repeat visitors count once)")
    traffic_share = _number(raw, "traffic_share", "", problems, lo=0.0, hi=1.0, lo_open=True, default=1.0,
                            example="0.5 (half of the traffic enters the test)")
    days = DEFAULT_PLAN_DAYS
    if raw.get("days") is not None:
        value = raw["days"]
        if (not isinstance(value, list) or not value
                or not all(_is_number(v) and float(v).is_integer() and v >= 1 for v in value)):
            problems.add("days", f"expected a list of whole numbers of days, got {_show(value)}; e.g. "
                                 "`days: [7, 14, 28]`")
        else:
            days = tuple(sorted({int(v) for v in value}))
    mde = _number(raw, "mde", "", problems, lo=0.0, hi=1.0, lo_open=True, hi_open=True,
                  example="0.05 (detect a 5% change)")
    max_days = _number(raw, "max_days", "", problems, lo=1, hi=10_000, integer=True, example="42")
    sequential = _flag(raw, "sequential", "", problems)
    simulate = _number(raw, "simulate", "", problems, lo=0, hi=20_000, integer=True, default=0,
                       example="500 (simulated tests checking the recommendation; 0 = off)")
    raw_data = raw.get("data")
    data = _data_source(raw_data, base_dir, problems, "../data/aftersales_ab.parquet` (history")
    named: list[tuple[str, str]] = [("variant", variant)] if variant else []
    metrics = _parse_metrics(raw.get("metrics"), problems, named)
    source = _footer(raw, allow, problems, data, raw_data, named, check_data,
                     arm=(variant, control) if variant else None)
    return PowerSpec(**head, data=data, metrics=tuple(metrics), daily_units=float(daily_units), variant=variant,
                     control=control, alpha=float(alpha), power=float(power), arms=int(arms), ratio=float(ratio),
                     correction=correction, population=population, traffic_share=float(traffic_share),
                     days=days, mde=mde, max_days=max_days, source=source, simulate=int(simulate or 0),
                     sequential=bool(sequential))


def spec_from_dict(raw: Mapping, **kwargs) -> "ExperimentSpec | RolloutSpec | PowerSpec":
    """Validate a spec mapping of any kind: ``ab`` -> ExperimentSpec, ``did`` -> RolloutSpec, ``power`` -> PowerSpec."""
    kind = raw.get("kind") if isinstance(raw, Mapping) else None
    if kind == "did":
        return RolloutSpec.from_dict(raw, **kwargs)
    if kind == "power":
        return PowerSpec.from_dict(raw, **kwargs)
    return ExperimentSpec.from_dict(raw, **kwargs)


# --------------------------------------------------------------------------- data schema
def data_columns(path: str | os.PathLike) -> list[str]:
    """Column names of a parquet file / directory or CSV file, from its schema only."""
    p = Path(path)
    name = p.name.lower()
    if p.is_dir() or name.endswith(PARQUET_SUFFIXES):
        if p.is_dir():
            import pyarrow.dataset as ds

            return list(ds.dataset(p, format="parquet").schema.names)
        import pyarrow.parquet as pq

        return list(pq.read_schema(p).names)
    if name.endswith(CSV_SUFFIXES):
        import pyarrow.csv as pacsv

        reader = pacsv.open_csv(p)  # reads the header and infers types from the first block only
        try:
            return list(reader.schema.names)
        finally:
            reader.close()
    raise ValueError(f"unknown file type '{p.suffix}'")


def _check_data(data, raw_data, named: list[tuple[str, str]], problems: _Problems, arm=None) -> None:
    """The data exists and holds every named column, with numbers in the metric columns and the
    control label in the variant column (``arm``: (variant, control); a DISTINCT query on one column)."""
    if isinstance(data, TableRef):
        _check_table(data, raw_data, named, problems, arm)
        return
    p = Path(data)
    if not p.exists():
        if raw_data != data:
            problems.add("data", f"file '{raw_data}' (resolved to '{data}') does not exist; fix the path "
                                 "(a relative path is taken from the spec file's directory)")
        else:
            problems.add("data", f"file '{data}' does not exist; fix the path")
        return
    name = p.name.lower()
    if not (p.is_dir() or name.endswith(PARQUET_SUFFIXES + CSV_SUFFIXES)):
        problems.add("data", f"'{raw_data}' is not a parquet (.parquet, .pq, or a directory of them) or CSV "
                             "(.csv, .csv.gz) file; convert it or point `data` at one")
        return
    try:
        available = data_columns(p)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        problems.add("data", f"could not read the schema of '{data}': {type(exc).__name__}: {exc}. Is it a "
                             "valid parquet/CSV file?")
        return
    if _need_columns(named, available, f"data file '{p.name}'", problems):
        _check_contents(p, f"data file '{p.name}'", named, arm, problems)


def _need_columns(named, available, what: str, problems: _Problems) -> bool:
    """Record every named column missing from ``available``; True if none is."""
    listing = ", ".join(available[:40]) + (", ..." if len(available) > 40 else "")
    ok = True
    for where, column in named:
        if column not in available:
            ok = False
            problems.add(where, f"column '{column}' not found in {what}.{_suggest(column, available)}"
                                f" Available columns: {listing}")
    return ok


# Fields whose columns must hold numbers (or true/false): metric and outcome values, covariates, balance.
NUMERIC_FIELDS = ("metrics[", "outcome.", "secondary[", "covariates[", "balance[")
ARMS_SHOWN = 20


def _check_contents(source, what: str, named, arm, problems: _Problems) -> None:
    """Metric columns hold numbers; the control label is one of the variant column's values."""
    import narwhals as nw

    from .engines import to_lazy

    try:
        lf = to_lazy(source)
        schema = lf.collect_schema()
        for where, column in named:
            dtype = schema[column]
            if where.startswith(NUMERIC_FIELDS) and not (dtype.is_numeric() or dtype == nw.Boolean):
                problems.add(where, f"column '{column}' of {what} holds {dtype}, not numbers; a metric needs "
                                    "numeric (or true/false) values: convert the column or name another one")
        if arm is None:
            return
        variant, control = arm
        values = (lf.select(nw.col(variant)).filter(~nw.col(variant).is_null()).unique()
                  .head(ARMS_SHOWN + 1).collect().to_arrow().column(0).to_pylist())
    except AbkitError as exc:
        problems.add("data", str(exc))
        return
    if control not in values:
        shown = ", ".join(repr(v) for v in sorted(values, key=str)[:ARMS_SHOWN])
        if any(str(v) == str(control) for v in values):
            hint = (" The column holds numbers: write the label unquoted." if isinstance(control, str) else
                    " The column holds text: quote the label.")
        else:
            hint = _suggest(control, [str(v) for v in values])
        problems.add("control", f"arm {control!r} is not a value of column '{variant}' in {what}; values there: "
                                f"{shown}{', ...' if len(values) > ARMS_SHOWN else ''}. Set `control:` to the "
                                f"control arm's label.{hint}")


def _check_table(ref: TableRef, raw_data: Mapping, named, problems: _Problems, arm=None) -> None:
    """The table exists and has the named columns. A DuckDB file is opened (read-only, schema only); a
    Spark table is checked only in a running SparkSession (the analysis checks it otherwise)."""
    if ref.engine == "duckdb" and not Path(ref.database).exists():
        raw_db = raw_data.get("database")
        shown = f"'{raw_db}' (resolved to '{ref.database}')" if raw_db != ref.database else f"'{ref.database}'"
        problems.add("data.database", f"DuckDB database file {shown} does not exist; fix the path (a relative "
                                      "path is taken from the spec file's directory)")
        return
    if ref.engine == "spark":
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            problems.add("data.engine", "engine 'spark' needs pyspark: pip install 'abkit[spark]' (and Java 17)")
            return
        if SparkSession.getActiveSession() is None:
            return
    try:
        available = ref.columns()
    except AbkitError as exc:
        problems.add("data.database" if str(exc).startswith("could not open") else "data.table", str(exc))
        return
    if _need_columns(named, available, ref.label, problems):
        _check_contents(ref.open(), ref.label, named, arm, problems)


# --------------------------------------------------------------------------- YAML
def _duplicate_keys(text: str) -> list[tuple[str, int]]:
    """(key, line) of every key repeated within one mapping (YAML would silently keep the last)."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)  # node graph only: nothing is constructed
    out: list[tuple[str, int]] = []
    stack = [node] if node is not None else []
    while stack:
        n = stack.pop()
        if isinstance(n, yaml.MappingNode):
            seen = set()
            for k, v in n.value:
                if isinstance(k, yaml.ScalarNode):
                    if k.value in seen:
                        out.append((k.value, k.start_mark.line + 1))
                    seen.add(k.value)
                stack.append(v)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
    return sorted(out, key=lambda t: t[1])


def load_spec(path: str | os.PathLike, *, check_data: bool = True) -> "ExperimentSpec | RolloutSpec":
    """Read and validate one YAML spec file (``yaml.safe_load``; nothing in it is executed).

    ``kind: ab`` (the default) gives an :class:`ExperimentSpec`, ``kind: did`` a
    :class:`RolloutSpec`. A relative ``data`` path is taken from the spec file's directory.
    """
    p = Path(path)
    origin = str(path)
    problems = _Problems(origin)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.add("", f"spec file not found (looked for {p.resolve()}); check the path")
        problems.raise_if_any()
    except (OSError, UnicodeDecodeError) as exc:
        problems.add("", f"cannot read the spec file: {exc}")
        problems.raise_if_any()
    try:
        raw = yaml.safe_load(text)
        dupes = _duplicate_keys(text)
    except ValueError as exc:  # e.g. a date-like scalar that is no date: 2026-13-01
        problems.add("", f"not valid YAML: {exc}; quote the value or fix it (dates are YYYY-MM-DD)")
        problems.raise_if_any()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        problems.add("", f"{where}not valid YAML ({problem}); check the indentation and quoting around there")
        problems.raise_if_any()
    for key, line in dupes:
        problems.add(key, f"key repeated on line {line}; YAML would silently keep only the last one. Remove "
                          "the duplicate")
    problems.raise_if_any()
    if raw is None:
        problems.add("", "the file is empty; a spec needs at least name, data and metrics")
        problems.raise_if_any()
    if isinstance(raw, Mapping) and raw.get("kind") == "did":
        spec = _parse_rollout(raw, origin=origin, base_dir=p.resolve().parent, check_data=check_data,
                              allow=DID_KEYS)
    elif isinstance(raw, Mapping) and raw.get("kind") == "power":
        spec = _parse_power(raw, origin=origin, base_dir=p.resolve().parent, check_data=check_data,
                            allow=POWER_KEYS)
    else:
        spec = _parse_spec(raw, origin=origin, base_dir=p.resolve().parent, check_data=check_data,
                           allow=TOP_KEYS)
    return _with_source(spec, str(p.resolve()))


def _with_source(spec, source: str):
    return replace(spec, source=source)
