"""Experiment specs: a small YAML file <-> typed, frozen objects, strictly validated.

A spec says which data to read, which arm is control and which metrics to
analyse; ``abkit readout`` turns each spec into a notebook and an HTML page.
Everything is checked *before* any notebook runs: unknown keys (with the
closest valid key suggested), wrong types, impossible values, and that the
data file exists and holds every column the spec names (only the file's
schema is read, never the rows).

Example ``specs/instant_refunds.yaml``::

    name: Instant refunds for low-value returns
    owner: Returns team
    hypothesis: Refunding low-value returns at drop-off cuts refund contacts.
    data: ../data/aftersales_ab.parquet    # relative to this file
    alpha: 0.05
    correction: holm                       # null | holm | bh
    metrics:
      - name: refund_rate
        type: ratio                        # mean | proportion | ratio
        numerator: refunds
        denominator: orders
        covariates: [pre_refunds, pre_orders]
        better: lower
        primary: true
      - name: abuse_loss_per_order
        type: ratio
        numerator: abuse_loss
        denominator: orders
        better: lower
        guardrail: true

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

from .errors import AbkitError, SpecError
from .metrics import Mean, Metric, Proportion, Ratio

__all__ = ["ExperimentSpec", "MetricSpec", "load_spec", "data_columns"]

KINDS = ("ab",)
PLANNED_KINDS = ("did", "power")
METRIC_TYPES = ("mean", "proportion", "ratio")
CORRECTIONS = ("holm", "bh")
METHODS = ("cuped", "lin")
BETTER = ("higher", "lower")

TOP_KEYS = ("name", "kind", "owner", "description", "hypothesis", "start", "end", "data", "variant",
            "control", "allocation", "alpha", "correction", "metrics")
METRIC_KEYS = ("name", "type", "column", "numerator", "denominator", "covariate", "covariates", "better",
               "primary", "guardrail", "dropna", "method", "description")
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
        covs = _covariates_arg(self.covariates)
        if self.type == "ratio":
            return Ratio(self.numerator, self.denominator, covariates=covs, name=self.name,
                         better=self.better, dropna=self.dropna, method=self.method)
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
        d["dropna"] = self.dropna
        if self.method is not None:
            d["method"] = self.method
        if self.description is not None:
            d["description"] = self.description
        return d


def _covariates_arg(covs: tuple[Covariate, ...]):
    """Covariates in the form abkit.Mean / abkit.Ratio accept."""
    if not covs:
        return None
    if len(covs) == 1:
        return covs[0] if isinstance(covs[0], str) else tuple(covs[0])
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
    dropna = _flag(raw, "dropna", where, problems)
    description = _text(raw, "description", where, problems)
    if len(problems.items) > n_before or mtype is None or name is None:
        return None
    spec = MetricSpec(name=name, type=mtype, column=column, numerator=numerator, denominator=denominator,
                      covariates=covariates, better=better, primary=primary, guardrail=guardrail,
                      dropna=dropna, method=method, description=description)
    try:
        spec.build()
    except AbkitError as exc:
        problems.add(where, str(exc))
        return None
    return spec


# --------------------------------------------------------------------------- experiment spec
@dataclass(frozen=True)
class ExperimentSpec:
    """A validated experiment spec. Build it with :func:`load_spec` or :meth:`from_dict`.

    ``data`` is the absolute path of the data file (the YAML's relative
    path resolved against the spec file's directory); ``source`` is the
    spec file it came from, if any.
    """

    name: str
    data: str
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

    # ----------------------------------------------------------------- views
    @property
    def data_path(self) -> Path:
        """Absolute path of the data file."""
        return Path(self.data)

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
        return tuple(out)

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
            "data": self.data,
            "variant": self.variant,
            "control": self.control,
            "allocation": alloc,
            "alpha": self.alpha,
            "correction": self.correction,
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
    if not isinstance(raw, Mapping):
        problems.add("", f"a spec must be a mapping of keys (name:, data:, metrics: ...), got "
                         f"{_type_name(raw)} {_show(raw)}")
        problems.raise_if_any()
    _check_keys(raw, allow, "", problems)

    name = _text(raw, "name", "", problems, required=True, example="Instant refunds for low-value returns")
    kind = "ab"
    if raw.get("kind") is not None:
        if raw["kind"] in PLANNED_KINDS:
            problems.add("kind", f"'{raw['kind']}' readouts are planned but not available yet; use kind: ab")
        else:
            kind = _choice(raw, "kind", "", problems, KINDS, "ab")
    owner = _text(raw, "owner", "", problems)
    description = _text(raw, "description", "", problems)
    hypothesis = _text(raw, "hypothesis", "", problems)
    start, end = _date(raw, "start", problems), _date(raw, "end", problems)
    if start and end and end < start:
        problems.add("end", f"{end.isoformat()} is before start {start.isoformat()}; swap them")
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

    data = None
    raw_data = raw.get("data")
    if raw_data is None:
        problems.add("data", "required key missing; add e.g. `data: ../data/aftersales_ab.parquet` (a parquet "
                             "or CSV file, relative to the spec file)")
    elif not isinstance(raw_data, str) or not raw_data.strip():
        problems.add("data", f"expected a file path (text), got {_show(raw_data)} ({_type_name(raw_data)})")
    else:
        p = Path(os.path.expanduser(raw_data))
        if not p.is_absolute():
            p = Path(base_dir if base_dir is not None else os.getcwd()) / p
        data = str(Path(os.path.abspath(p)))  # normalise '..' without following symlinks

    metrics: list[MetricSpec] = []
    named: list[tuple[str, str]] = [("variant", variant)]
    raw_metrics = raw.get("metrics")
    if raw_metrics is None:
        problems.add("metrics", "required key missing; add a list of metrics, each with name, type and columns")
    elif not isinstance(raw_metrics, list) or not raw_metrics:
        problems.add("metrics", f"expected a non-empty list of metrics, got {_show(raw_metrics)}")
    else:
        parsed = [_parse_metric(m, i, problems, named) for i, m in enumerate(raw_metrics)]
        metrics = [m for m in parsed if m is not None]
        if len(metrics) == len(parsed):
            _check_metric_set(metrics, problems)

    source = raw.get("source") if "source" in allow else None
    if source is not None and not isinstance(source, str):
        problems.add("source", f"expected the spec file path (text), got {_show(source)}")
        source = None

    if data is not None and check_data:
        _check_data(data, raw_data, named, problems)
    problems.raise_if_any()
    return ExperimentSpec(name=name, data=data, metrics=tuple(metrics), kind=kind, owner=owner,
                          description=description, hypothesis=hypothesis, start=start, end=end,
                          variant=variant, control=control, allocation=allocation, alpha=float(alpha),
                          correction=correction, source=source)


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


def _check_data(data: str, raw_data: str, named: list[tuple[str, str]], problems: _Problems) -> None:
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
    listing = ", ".join(available[:40]) + (", ..." if len(available) > 40 else "")

    def need(where: str, column: str) -> None:
        if column not in available:
            problems.add(where, f"column '{column}' not found in data file '{p.name}'.{_suggest(column, available)}"
                                f" Available columns: {listing}")

    for where, column in named:
        need(where, column)


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


def load_spec(path: str | os.PathLike, *, check_data: bool = True) -> ExperimentSpec:
    """Read and validate one YAML spec file (``yaml.safe_load``; nothing in it is executed).

    A relative ``data`` path is taken from the spec file's directory.
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
    spec = _parse_spec(raw, origin=origin, base_dir=p.resolve().parent, check_data=check_data, allow=TOP_KEYS)
    return _with_source(spec, str(p.resolve()))


def _with_source(spec: ExperimentSpec, source: str) -> ExperimentSpec:
    return replace(spec, source=source)
