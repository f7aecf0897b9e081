"""The spec format as typed models: what a person may write in a spec file, field by field.

Four documents, one per ``kind``: :class:`AbDocument` (``kind: ab``, the
default), :class:`RolloutDocument` (``kind: did``), :class:`SyntheticDocument`
(``kind: synthetic``, a launch in one or a few markets) and
:class:`PowerDocument` (``kind: power``), built from :class:`MetricDocument`,
:class:`OutcomeDocument` and :class:`TableDocument`. They describe the YAML as
written (shorthands included: one column for a list of one, an outcome given
as a column name), and pydantic (v2) checks it: unknown keys, types, allowed
values, ranges. Rules that tie fields together (``power`` larger than
``alpha``; a ratio needs ``numerator`` and ``denominator``; one primary
metric) are validators on the later field, so they are reported together with
every other problem of the file. :func:`spec_json_schema` gives the JSON Schema
editors use (``abkit schema``).

Validation is strict: a number in quotes is text, ``"yes"`` is not true. A key
written as null counts as absent (its default applies) unless null means
something for that key (``correction: null`` switches the correction off).
The resolved, frozen objects the readouts use are in
:mod:`abkit.spec.validated`; problems are worded in :mod:`abkit.spec.problems`.
"""

from __future__ import annotations

import copy
import datetime as _dt
import functools
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .problems import BLANK, CUSTOM, RULES, printable, show, suggest, type_name

__all__ = [
    "DOCUMENTS",
    "KINDS",
    "SPARK_CONF_ALLOWED",
    "AbDocument",
    "ImpactDocument",
    "MetricDocument",
    "OutcomeDocument",
    "PowerDocument",
    "RolloutDocument",
    "SyntheticDocument",
    "TableDocument",
    "spec_json_schema",
]

KINDS = ("ab", "did", "synthetic", "power")
DEFAULT_PLAN_DAYS = (7, 14, 21, 28, 35, 42, 56)

# Spark settings a spec may give (``data: {engine: spark, conf: {...}}``). Specs come from many
# authors and a scheduler runs them, so settings that load code or change the JVM (spark.jars*,
# spark.*.extraJavaOptions / extraClassPath / extraLibraryPath, spark.plugins, spark.sql.extensions,
# spark.sql.catalog.*, listeners, spark.pyspark.python, spark.executorEnv.*, resource discovery
# scripts, spark.hadoop.* ...) are refused: put those in spark-defaults.conf, which the platform owns.
SPARK_CONF_ALLOWED = (
    "spark.master",
    "spark.app.name",
    "spark.submit.deployMode",
    "spark.driver.memory",
    "spark.driver.cores",
    "spark.driver.maxResultSize",
    "spark.executor.memory",
    "spark.executor.cores",
    "spark.executor.instances",
    "spark.dynamicAllocation.enabled",
    "spark.dynamicAllocation.minExecutors",
    "spark.dynamicAllocation.maxExecutors",
    "spark.default.parallelism",
    "spark.sql.shuffle.partitions",
    "spark.sql.adaptive.enabled",
    "spark.sql.session.timeZone",
    "spark.sql.ansi.enabled",
    "spark.sql.catalogImplementation",
    "spark.sql.warehouse.dir",
    "spark.sql.execution.arrow.pyspark.enabled",
    "spark.ui.enabled",
)


# --------------------------------------------------------------------------- errors raised by validators
def _custom(message: str) -> PydanticCustomError:
    """An error whose message is final (worded here, shown as is)."""
    return PydanticCustomError(CUSTOM, "{message}", {"message": message})


def _rules(*problems: tuple[str | None, str], field_level: bool = True) -> PydanticCustomError:
    """Several problems at once, each at a path relative to the model the validator belongs to."""
    return PydanticCustomError(
        RULES, "{count} problems", {"problems": list(problems), "count": len(problems), "field_level": field_level}
    )


# --------------------------------------------------------------------------- field types
def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError(BLANK, "must not be empty")
    return value


_IDENTITY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*")


def _identity(value: Any) -> Any:
    """An experiment identity: letters, digits, '-', '_', '.', and '/' between parts; at most 120 characters."""
    if isinstance(value, str) and not (len(value) <= 120 and _IDENTITY.fullmatch(value) and ".." not in value):
        raise _custom(
            f"expected an identity like team-a/refunds-2026 (letters, digits, '-', '_', '.', '/' between "
            f"parts, at most 120 characters), got {show(value)}"
        )
    return value


def _column_name(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise _custom(f"expected a column name, got {show(value)} (empty text); name a column or remove the key")
    return value


def _whole_number(value: Any) -> Any:
    """Whole floats (40000.0) count as whole numbers; everything else is left to the strict int check."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _date(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        raise _custom(f"expected a date like 2026-09-01, got a timestamp {value.isoformat()}; drop the time")
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _custom(f"expected a date like 2026-09-01 (YYYY-MM-DD), got {show(value)}")


def _arm_label(value: Any) -> Any:
    if (isinstance(value, str) and value != "") or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise _custom(
        f"expected the control arm's label (text, or a whole number when the variant column holds "
        f"numbers), got {show(value)} ({type_name(value)}); e.g. `control: control`"
    )


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _column_list(value: Any, info: ValidationInfo) -> Any:
    """A list of distinct column names (one name counts as a list of one)."""
    value = _one_or_many(value)
    if not isinstance(value, list):
        examples = {
            "segments": "[market, buyer_type]",
            "balance": "[pre_orders, pre_refunds]",
            "covariates": "[market_size]",
        }
        example = examples.get(info.field_name or "", "[a, b]")
        raise _custom(
            f"expected a list of column names, got {show(value)} ({type_name(value)}); "
            f"e.g. `{info.field_name}: {example}`"
        )
    problems = []
    seen: set = set()
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            problems.append(
                (f"{info.field_name}[{i}]", (f"expected a column name (text), got {show(item)} ({type_name(item)})"))
            )
        elif item in seen:
            problems.append((f"{info.field_name}[{i}]", f"column '{printable(item)}' is listed twice; list it once"))
        else:
            seen.add(item)
    if problems:
        raise _rules(*problems)
    return value


def _covariate(value: Any) -> Any:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(c, str) and c for c in value):
        return list(value)
    raise _custom(f"expected a column name or a [numerator, denominator] pair of column names, got {show(value)}")


def _covariates(value: Any) -> Any:
    if isinstance(value, str):
        if not value:
            raise _custom("empty column name; remove the key or name a column")
        return [value]
    if not isinstance(value, list):
        raise _custom(f"expected a column name or a list of column names, got {show(value)} ({type_name(value)})")
    return value


def _whole_numbers(what: str, example: str, lowest: int = 1):
    def check(value: Any) -> Any:
        value = [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        ok = (
            isinstance(value, list)
            and value
            and all(
                isinstance(v, (int, float))
                and not isinstance(v, bool)
                and math.isfinite(v)
                and float(v).is_integer()
                and v >= lowest
                for v in value
            )
        )
        if not ok:
            raise _custom(f"expected a list of whole numbers of {what}, got {show(value)}; e.g. `{example}`")
        return sorted({int(v) for v in value})

    return check


ColumnName = Annotated[str, BeforeValidator(_column_name), Field(min_length=1)]
Text = str
NonBlankText = Annotated[str, AfterValidator(_not_blank)]
WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
Date = Annotated[_dt.date, BeforeValidator(_date, json_schema_input_type=_dt.date)]
ArmLabel = Annotated[str | int, BeforeValidator(_arm_label)]
ColumnList = Annotated[
    list[ColumnName], BeforeValidator(_column_list, json_schema_input_type=ColumnName | list[ColumnName])
]
Covariate = Annotated[
    ColumnName | Annotated[list[ColumnName], Field(min_length=2, max_length=2)], BeforeValidator(_covariate)
]
Covariates = Annotated[
    list[Covariate], BeforeValidator(_covariates, json_schema_input_type=ColumnName | list[Covariate])
]
Better = Literal["higher", "lower"]
TIME_UNITS = ("seconds", "minutes", "hours", "days", "weeks")


def _window(value: Any) -> Any:
    """A maturity window: ``30d``, ``12h``, ``2w`` (or a number of days); kept as written."""
    from ..maturity import window_days

    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _custom(
            f"expected a window like 30d (days), 12h (hours) or 2w (weeks), got {show(value)} ({type_name(value)})"
        )
    try:
        window_days(value)
    except Exception:  # noqa: BLE001 - worded below
        raise _custom(
            f"expected a positive window like 30d (days), 12h (hours) or 2w (weeks), got {show(value)}"
        ) from None
    return value if isinstance(value, str) else f"{value:g}d"


def _moment(value: Any) -> Any:
    """``data_end``: a date (the data hold that whole day) or a timestamp (read at that instant)."""
    if isinstance(value, _dt.datetime):
        return value
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        for parse in (_dt.date.fromisoformat, _dt.datetime.fromisoformat):
            try:
                return parse(text)
            except ValueError:
                continue
    raise _custom(
        f"expected when the data was read: a date like 2026-10-12 (the data hold that whole day) or a "
        f"timestamp like 2026-10-12T06:00:00, got {show(value)}"
    )


Window = Annotated[str, BeforeValidator(_window, json_schema_input_type=str | Annotated[float, Field(gt=0)])]
Moment = Annotated[_dt.datetime | _dt.date, BeforeValidator(_moment, json_schema_input_type=_dt.date | _dt.datetime)]
_TTE_KEYS = ("duration", "event", "start", "end", "horizon", "time_unit")


# --------------------------------------------------------------------------- the base of every document
class Document(BaseModel):
    """Strict, closed (unknown keys are errors); null for a key that cannot be null means 'absent'."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    EXAMPLE: ClassVar[str] = ""
    MISSING: ClassVar[dict[str, str]] = {}  # wording for required keys that are missing, where the default is poor

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            nullable = _nullable_fields(cls)
            return {k: v for k, v in data.items() if v is not None or k in nullable}
        return data


@functools.cache
def _nullable_fields(cls: type[BaseModel]) -> frozenset:
    out = set()
    for name, field in cls.model_fields.items():
        annotation = field.annotation
        args = typing.get_args(annotation) if typing.get_origin(annotation) in (Union, types.UnionType) else ()
        if type(None) in args:
            out.add(field.alias or name)
    return frozenset(out)


def _text_field(description: str, example: str | None = None, **kw):
    return Field(description=description, examples=[example] if example is not None else None, **kw)


# --------------------------------------------------------------------------- metrics (kind: ab and power)
class MetricDocument(Document):
    """One metric: a mean or proportion of a column, or a ratio of two columns' sums."""

    EXAMPLE: ClassVar[str] = "`- name: refund_rate` / `  type: ratio`"
    MISSING: ClassVar[dict[str, str]] = {
        "type": "required key missing; add `type: ` one of mean, proportion, ratio, time_to_event"
    }

    type: Literal["mean", "proportion", "ratio", "time_to_event"] = Field(
        description="mean (of a column per unit), proportion (share of units with the column = 1), ratio "
        "(sum of numerator / sum of denominator, delta method) or time_to_event (time to a refund or a "
        "resolution with censoring: restricted mean up to the horizon, Kaplan-Meier)"
    )
    name: NonBlankText | None = _text_field(
        "name in the readout (default: the column, or numerator/denominator)", "refund_rate", default=None
    )
    column: ColumnName | None = Field(None, validate_default=True, description="the column (mean, proportion)")
    numerator: ColumnName | None = Field(None, validate_default=True, description="numerator column (ratio)")
    denominator: ColumnName | None = Field(None, validate_default=True, description="denominator column (ratio)")
    covariate: Covariates | None = Field(None, description="same as covariates (one column or a list)")
    covariates: Covariates | None = Field(
        None,
        description="pre-period columns for CUPED / regression adjustment; a ratio's covariate is a "
        "[numerator, denominator] pair",
    )
    method: Literal["cuped", "lin"] | None = Field(None, description="cuped (default with one covariate) or lin")
    better: Better = Field("higher", description="which direction is good")
    primary: bool = Field(False, description="the one metric the decision rests on (exactly one)")
    guardrail: bool = Field(False, description="must not get worse; a failing guardrail blocks Ship")
    margin: Annotated[float, Field(ge=0.0, lt=1.0)] | None = Field(
        None,
        examples=[0.02],
        description="guardrails: non-inferiority margin, relative (0.02: may get at most 2% worse)",
    )
    dropna: bool = Field(False, description="drop (and count) units with a missing value instead of failing")
    nonnegative: bool = Field(True, description="ratio: refuse negative numerators (false for net amounts)")
    description: Text | None = Field(None, description="what the metric means, for the readout")
    window: Window | None = Field(
        None,
        examples=["30d"],
        description=(
            "maturity window from each unit's exposure date (spec `date`): units whose window has not closed by "
            "`data_end` are left out and counted (time_to_event: censored there); e.g. 30d, 12h, 2w"
        ),
    )
    duration: ColumnName | None = Field(
        None,
        description="time_to_event: observed time to the event, or to the end "
        "of observation when it has not happened (in time_unit)",
    )
    event: ColumnName | None = Field(None, description="time_to_event: 1 when the event was observed, 0 when censored")
    start: ColumnName | None = Field(
        None,
        description="time_to_event: start timestamp column (instead of duration and event; needs the spec's data_end)",
    )
    end: ColumnName | None = Field(
        None, description="time_to_event: event timestamp column, empty while the event has not happened"
    )
    horizon: Annotated[float, Field(gt=0.0)] | None = Field(
        None,
        examples=[30],
        description="time_to_event: restricted mean up to this time, in time_unit (default: the window)",
    )
    time_unit: Literal[TIME_UNITS] = Field(  # type: ignore[valid-type]  # a tuple of literals, built once
        "days",
        description="time_to_event: unit of the times (seconds, minutes, hours, days, weeks)",
    )

    @model_validator(mode="after")
    def _time_to_event_keys(self):
        given = [k for k in _TTE_KEYS if k in self.model_fields_set]
        if self.type != "time_to_event":
            if given:
                raise _rules(
                    *(
                        (k, f"only time_to_event metrics take `{k}`; remove it or use type: time_to_event")
                        for k in given
                    ),
                    field_level=False,
                )
            return self
        problems = []
        pairs = {
            "duration": self.duration is not None or self.event is not None,
            "start": self.start is not None or self.end is not None,
        }
        if pairs["duration"] and pairs["start"]:
            problems.append(("start", "give either `duration` and `event` or `start` and `end`, not both"))
        elif not any(pairs.values()):
            problems.append(
                (
                    "",
                    "a time_to_event metric needs `duration:` and `event:` columns, or `start:` and "
                    "`end:` timestamp columns",
                )
            )
        else:
            first, second = ("duration", "event") if pairs["duration"] else ("start", "end")
            problems += [
                (k, f"required with `{first if k == second else second}`; add `{k}: <column name>`")
                for k in (first, second)
                if getattr(self, k) is None
            ]
        if self.horizon is None and self.window is None:
            problems.append(
                (
                    "horizon",
                    "required for a time_to_event metric: the time up to which the restricted "
                    "mean is taken, e.g. `horizon: 30` (days), or give a `window: 30d`",
                )
            )
        for cov in self.all_covariates:
            if not isinstance(cov, str):
                problems.append(
                    (
                        "covariates",
                        "time_to_event covariates are columns (CUPED on the "
                        "pseudo-observations), not [numerator, denominator] pairs",
                    )
                )
                break
        if problems:
            raise _rules(*problems, field_level=False)
        return self

    @field_validator("column", "numerator", "denominator")
    @classmethod
    def _columns_of_the_type(cls, value, info: ValidationInfo):
        mtype = info.data.get("type")
        field = info.field_name
        if mtype == "ratio":
            if field == "column" and value is not None:
                raise _custom(
                    "a ratio metric takes `numerator` and `denominator`, not `column`; use type: mean for "
                    "a per-unit mean"
                )
            if field != "column" and value is None:
                raise _custom(f"required for this metric type; add `{field}: <column name>`")
        elif mtype == "time_to_event":
            if value is not None:
                raise _custom(
                    f"a time_to_event metric takes `duration` and `event` (or `start` and `end`), not `{field}`"
                )
        elif mtype in ("mean", "proportion"):
            if field == "column" and value is None:
                raise _custom("required for this metric type; add `column: <column name>`")
            if field != "column" and value is not None:
                raise _custom(
                    f"a {mtype} metric takes `column`, not `{field}`; use type: ratio for numerator / denominator"
                )
        return value

    @field_validator("covariates")
    @classmethod
    def _one_covariate_key(cls, value, info: ValidationInfo):
        if value is not None and info.data.get("covariate") is not None:
            raise _rules(("covariate", "give either `covariate` or `covariates`, not both"))
        return value

    @field_validator("method")
    @classmethod
    def _method_needs_covariates(cls, value, info: ValidationInfo):
        known = "covariates" in info.data and "covariate" in info.data  # both validated
        if value is not None and known and not (info.data["covariates"] or info.data["covariate"]):
            raise _custom(f"method '{value}' needs covariates; add `covariates: [...]` or remove `method`")
        return value

    @field_validator("guardrail")
    @classmethod
    def _not_both(cls, value, info: ValidationInfo):
        if value and info.data.get("primary"):
            raise _custom("a metric cannot be both primary and a guardrail; keep one")
        return value

    @field_validator("margin")
    @classmethod
    def _margin_for_guardrails(cls, value, info: ValidationInfo):
        if value is not None and "guardrail" in info.data and not info.data["guardrail"]:
            raise _custom(
                "a non-inferiority margin only applies to guardrail metrics; add `guardrail: true` or remove `margin`"
            )
        return value

    @field_validator("nonnegative")
    @classmethod
    def _ratio_only(cls, value, info: ValidationInfo):
        if "type" in info.data and info.data["type"] != "ratio":
            raise _custom("only ratio metrics check their numerators for negative values; remove `nonnegative`")
        return value

    @property
    def metric_name(self) -> str:
        """The name, or the default: the column, ``numerator/denominator``, or ``time to <event column>``."""
        if self.name is not None:
            return self.name
        if self.type == "time_to_event":
            return f"time to {self.end}" if self.end else str(self.duration)
        return self.column or f"{self.numerator}/{self.denominator}"

    @property
    def all_covariates(self) -> list:
        return list(self.covariates or self.covariate or [])


def _metric_set(metrics: list[MetricDocument]) -> list[MetricDocument]:
    """Distinct names and exactly one primary metric."""
    problems = []
    seen: dict[str, int] = {}
    for i, m in enumerate(metrics):
        if m.metric_name in seen:
            problems.append(
                (
                    f"metrics[{i}].name",
                    (
                        f"'{printable(m.metric_name)}' is already the name of "
                        f"metrics[{seen[m.metric_name]}]; give each metric a distinct name"
                    ),
                )
            )
        else:
            seen[m.metric_name] = i
    primaries = [(i, m.metric_name) for i, m in enumerate(metrics) if m.primary]
    if not primaries:
        problems.append(("metrics", "no metric has `primary: true`; mark the one metric the decision rests on"))
    elif len(primaries) > 1:
        listed = ", ".join(f"metrics[{i}] ({n})" for i, n in primaries)
        problems.append(
            (
                "metrics",
                (
                    f"exactly one metric must have `primary: true`, found {len(primaries)}: "
                    f"{listed}; keep one and make the others guardrails or secondary metrics"
                ),
            )
        )
    if problems:
        raise _rules(*problems)
    return metrics


def _metric_list(value: Any) -> Any:
    if not isinstance(value, list) or not value:
        raise _custom(f"expected a non-empty list of metrics, got {show(value)}; each with name, type and columns")
    return value


Metrics = Annotated[
    list[MetricDocument], Field(min_length=1), BeforeValidator(_metric_list), AfterValidator(_metric_set)
]


# --------------------------------------------------------------------------- data: a file or a table
def _spark_conf(value: Any) -> Any:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in value.items()
    ):
        raise _custom(
            f"expected a mapping of Spark settings to values, e.g. `conf: {{spark.master: 'local[4]'}}`, "
            f"got {show(value)}"
        )
    return dict(value)


def _allow_listed(conf: dict) -> dict:
    refused = [k for k in conf if k not in SPARK_CONF_ALLOWED]
    if refused:
        raise _rules(
            *(
                (
                    f"conf.{printable(k)}",
                    (
                        f"Spark setting '{printable(k)}' is not allowed in a spec: a spec "
                        f"may only set {', '.join(SPARK_CONF_ALLOWED)}."
                        f"{suggest(k, SPARK_CONF_ALLOWED)} Settings that load code or "
                        "change the JVM (spark.jars, extraJavaOptions, plugins, catalogs "
                        "...) belong in the cluster's spark-defaults.conf"
                    ),
                )
                for k in refused
            )
        )
    return conf


SparkValue = str | int | float | bool
SparkConf = Annotated[
    dict[str, SparkValue],
    BeforeValidator(
        _spark_conf,
        json_schema_input_type=dict[Literal[SPARK_CONF_ALLOWED], SparkValue],  # type: ignore[valid-type]
    ),
]


class TableDocument(Document):
    """A warehouse table instead of a file: the aggregation runs in its engine, only sums come back."""

    EXAMPLE: ClassVar[str] = "{engine: duckdb, table: refunds, database: warehouse.duckdb}"
    MISSING: ClassVar[dict[str, str]] = {
        "engine": "required key missing; add `engine: duckdb` (a DuckDB database file) or `engine: spark` (a table "
        "in the Spark catalog)",
        "table": "expected the table name (text, e.g. `refunds` or `aftersales.refunds`), got nothing",
    }

    engine: Literal["duckdb", "spark"] = Field(description="duckdb (a database file, opened read-only) or spark")
    table: NonBlankText = Field(
        description="the table; schema.table (DuckDB) or db.table (Spark catalog)", examples=["aftersales.refunds"]
    )
    database: NonBlankText | None = Field(
        None,
        validate_default=True,
        examples=["warehouse.duckdb"],
        description="DuckDB: the database file, relative to the spec file",
    )
    conf: SparkConf | None = Field(
        None, description="Spark: settings for a new session (an allow-list: " + ", ".join(SPARK_CONF_ALLOWED) + ")"
    )

    @field_validator("database")
    @classmethod
    def _database_for_duckdb(cls, value, info: ValidationInfo):
        engine = info.data.get("engine")
        if engine == "duckdb" and value is None:
            raise _custom(
                "expected the DuckDB database file (text, relative to the spec file, e.g. "
                "`warehouse.duckdb`), got nothing"
            )
        if engine == "spark" and value is not None:
            raise _custom(
                "Spark names the database in the table: write `table: aftersales.refunds` and remove `database`"
            )
        return value

    @field_validator("conf")
    @classmethod
    def _conf_for_spark(cls, value, info: ValidationInfo):
        if value is not None and "engine" in info.data and info.data["engine"] != "spark":
            raise _custom("Spark settings apply to `engine: spark` only; remove `conf`")
        return _allow_listed(value) if value is not None else value


def _data_shape(value: Any) -> Any:
    if isinstance(value, (str, Mapping)):
        return value
    raise _custom(f"expected a file path (text) or a table ({{engine, table}}), got {show(value)} ({type_name(value)})")


def _data_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "path"
    if isinstance(value, Mapping):
        return "table"
    return None


DataSource = Annotated[
    Annotated[NonBlankText, Tag("path")] | Annotated[TableDocument, Tag("table")],
    Discriminator(_data_kind),
    BeforeValidator(_data_shape),
]
DATA_DESCRIPTION = (
    "a parquet file, a folder of parquet files or a CSV file (relative to the spec file), or a table "
    "{engine, table, database, conf}"
)


# --------------------------------------------------------------------------- impact in business terms
class ImpactDocument(Document):
    """The yearly volume behind the primary metric: the verdict turns its effect into units (and money) a year.

    The primary metric counts ``unit`` per ``per`` (contacts per order); the
    change meets ``volume`` ``per`` a year once shipped, so an effect ``d``
    is ``volume * d`` ``unit`` a year, worth ``value`` each
    (:mod:`abkit.business_impact`).
    """

    EXAMPLE: ClassVar[str] = "`{volume: 12000000, per: orders, unit: contacts, value: 4.50}`"
    MISSING: ClassVar[dict[str, str]] = {
        "volume": "required key missing; add e.g. `volume: 12000000` (how many `per` a year the change applies to "
        "once shipped)",
        "unit": "required key missing; name what the primary metric counts, e.g. `unit: contacts`",
    }

    volume: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] = Field(
        description="a year: how many `per` (orders, buyers) the change applies to once shipped", examples=[12_000_000]
    )
    per: NonBlankText = Field(
        "units",
        description="what the volume counts: the primary metric's denominator (orders, buyers)",
        examples=["orders"],
    )
    unit: NonBlankText = Field(
        description="what the primary metric counts per `per` (contacts, refunds)", examples=["contacts"]
    )
    value: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = Field(
        None, description="money per unit (a contact costs 4.50); omit for units only", examples=[4.5]
    )
    currency: NonBlankText = Field("EUR", description="currency of value", examples=["EUR"])


IMPACT_DESCRIPTION = (
    "the yearly volume behind the primary metric, for the impact in business terms: "
    "{volume, per, unit, value, currency}"
)


# --------------------------------------------------------------------------- what every kind shares
class _Header(Document):
    name: NonBlankText = _text_field(
        "the experiment's name (the readout's title)", "Instant refunds for low-value returns"
    )
    kind: str = Field("ab", description="ab (default), did, synthetic or power")  # each kind narrows it
    id: Annotated[str, AfterValidator(_identity)] | None = Field(
        None,
        description="the experiment's stable identity: its readout folder and its rows in the results store "
        "(default: the spec file's path below --root, else its file name)",
        examples=["returns/instant-refunds-2026"],
    )
    owner: Text | None = Field(None, description="team or person")
    description: Text | None = Field(None, description="what changed, for whom")
    hypothesis: Text | None = Field(None, description="what the change should do, and why")
    start: Date | None = Field(None, description="first day (YYYY-MM-DD)")
    end: Date | None = Field(None, description="last day (YYYY-MM-DD)")
    source: Text | None = Field(None, description="the spec file (written by to_dict; not for YAML files)")
    if TYPE_CHECKING:
        data: DataSource  # every kind declares it, each with its own description and examples

    @field_validator("source")
    @classmethod
    def _only_in_the_dict_form(cls, value, info: ValidationInfo):
        if value is not None and not (info.context or {}).get("allow_source", True):
            raise _custom("unknown key 'source'; abkit records the spec file's path itself: remove it")
        return value

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, value, info: ValidationInfo):
        start = info.data.get("start")
        if value is not None and start is not None and value < start:
            raise _custom(f"{value.isoformat()} is before start {start.isoformat()}; swap them")
        return value


def _power_above_alpha(cls, value, info: ValidationInfo):
    alpha = info.data.get("alpha", 0.05)
    if value is not None and "alpha" in info.data and value <= alpha:
        raise _custom(f"must be larger than alpha ({alpha:g}), got {value:g}; e.g. `power: 0.8`")
    return value


# --------------------------------------------------------------------------- kind: ab
def _ab_kind(value: Any) -> Any:
    if value is None or value == "ab":
        return "ab"
    if value in ("did", "synthetic", "power"):
        raise _custom(f"a kind: {value} spec is read with abkit.spec.load_spec or spec_from_dict, not as an A/B spec")
    raise _custom(f"{show(value)} is not allowed; use one of {', '.join(KINDS)}.{suggest(value, KINDS)}")


def _allocation(value: Any) -> Any:
    """A mapping arm -> share, a list of shares (control first) or a list of [arm, share] pairs."""

    def share_ok(share):
        return isinstance(share, (int, float)) and not isinstance(share, bool) and math.isfinite(share) and share > 0

    problems = []
    if isinstance(value, list) and value and all(isinstance(p, (list, tuple)) for p in value):
        if not all(len(p) == 2 for p in value):
            raise _custom(f"expected [arm, share] pairs, got {show(value)}")
        value = {p[0]: p[1] for p in value} if len({repr(p[0]) for p in value}) == len(value) else value
        if isinstance(value, list):
            raise _custom(f"an arm is listed twice in {show(value)}")
    if isinstance(value, Mapping):
        for arm, share in value.items():
            if not ((isinstance(arm, str) and arm) or (isinstance(arm, int) and not isinstance(arm, bool))):
                problems.append((f"allocation.{arm}", f"arm name {show(arm)} must be text; quote it"))
            elif not share_ok(share):
                problems.append((f"allocation.{arm}", f"expected a positive share like 0.5, got {show(share)}"))
        if len(value) < 2:
            problems.append(("allocation", "needs at least two arms, e.g. `{control: 0.5, treatment: 0.5}`"))
        if problems:
            raise _rules(*problems)
        return {arm: float(share) for arm, share in value.items()}
    if isinstance(value, list):
        for i, share in enumerate(value):
            if not share_ok(share):
                problems.append((f"allocation[{i}]", f"expected a positive share like 0.5, got {show(share)}"))
        if len(value) < 2:
            problems.append(("allocation", "needs a share for at least two arms, e.g. [0.5, 0.5]"))
        if problems:
            raise _rules(*problems)
        return [float(s) for s in value]
    raise _custom(
        f"expected a mapping like {{control: 0.5, treatment: 0.5}} or a list of shares (control first), "
        f"got {show(value)} ({type_name(value)})"
    )


PositiveShare = Annotated[float, Field(gt=0)]
Allocation = Annotated[
    dict[str | int, float] | list[float],
    BeforeValidator(_allocation, json_schema_input_type=dict[str, PositiveShare] | list[PositiveShare]),
]


def _missing_data(example: str) -> str:
    return (
        f"required key missing; add e.g. `data: {example}, relative to the spec file) or a table: "
        "`data: {engine: duckdb, table: refunds, database: warehouse.duckdb}`"
    )


_MISSING_METRICS = "required key missing; add a list of metrics, each with name, type and columns"


class AbDocument(_Header):
    """An A/B test (``kind: ab``, the default): randomized arms, metrics, health checks, a verdict."""

    EXAMPLE: ClassVar[str] = "name:, data:, metrics: ..."
    MISSING: ClassVar[dict[str, str]] = {
        "data": _missing_data("../data/aftersales_ab.parquet` (a parquet or CSV file"),
        "metrics": _MISSING_METRICS,
    }

    kind: Annotated[Literal["ab"], BeforeValidator(_ab_kind)] = Field(
        "ab", description="ab (default), did, synthetic or power"
    )
    data: DataSource = Field(
        description=DATA_DESCRIPTION,
        examples=[
            "../data/aftersales_ab.parquet",
            {"engine": "duckdb", "table": "refunds", "database": "warehouse.duckdb"},
        ],
    )
    variant: ColumnName = Field("variant", description="the column holding each unit's arm")
    control: ArmLabel = Field(
        "control", description="the control arm's label in the variant column (a number when the column holds numbers)"
    )
    allocation: Allocation | None = Field(
        None,
        description="planned split for the sample-ratio check: {arm: share} or a list of shares, control "
        "first (default: equal)",
    )
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = Field(0.05, examples=[0.05], description="significance level")
    correction: Literal["holm", "bh"] | None = Field(
        None, description="multiple-comparison correction: holm, bh or null"
    )
    mde: Annotated[float, Field(gt=0.0, lt=1.0)] | None = Field(
        None, examples=[0.02], description="planned minimum detectable effect, relative (0.02 = 2%): 'need N more days'"
    )
    power: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(0.8, examples=[0.8], description="planned power for the mde")
    planned_units: Annotated[WholeNumber, Field(ge=2)] | None = Field(
        None, examples=[40000], description="units planned in all arms together: 'sample size reached vs planned'"
    )
    sequential: bool = Field(
        False, description="always-valid CIs and p-values, safe to look daily (needs planned_units)"
    )
    date: ColumnName | None = Field(None, description="each unit's first-exposure date: cumulative effect over time")
    segments: ColumnList | None = Field(
        None, examples=[["market", "buyer_type"]], description="columns to break the primary metric down by"
    )
    balance: ColumnList | None = Field(
        None,
        examples=[["pre_orders"]],
        description="pre-period columns for the balance check (default: every metric covariate)",
    )
    metrics: Metrics = Field(description="the metrics, exactly one with primary: true")
    unit: ColumnName | None = Field(
        None, description="randomization-unit id: one row per unit in one arm is checked (leaks, duplicates)"
    )
    window: Window | None = Field(
        None,
        examples=["30d"],
        description=("maturity window of every metric (a metric's own `window` wins): counted from each unit's `date`"),
    )
    data_end: Moment | None = Field(
        None,
        examples=["2026-10-12"],
        description=(
            "when the data was read: a date (the data hold that whole day) or a timestamp; needed by windows and by "
            "time_to_event metrics built from start/end timestamps"
        ),
    )
    impact: ImpactDocument | None = Field(None, description=IMPACT_DESCRIPTION)

    _power_above_alpha = field_validator("power")(classmethod(_power_above_alpha))

    @model_validator(mode="after")
    def _windows_need_dates(self):
        windowed = ["window"] if self.window is not None else []
        windowed += [f"metrics[{i}].window" for i, m in enumerate(self.metrics) if m.window is not None]
        problems = []
        if windowed and self.date is None:
            problems.append(
                (
                    "date",
                    f"{windowed[0]} counts from each unit's exposure date: add `date: <column>` (e.g. exposure_date)",
                )
            )
        if windowed and self.data_end is None:
            problems.append(
                (
                    "data_end",
                    f"{windowed[0]} needs to know when the data was read: add e.g. "
                    "`data_end: 2026-10-12` (the data hold that whole day)",
                )
            )
        stamps = [i for i, m in enumerate(self.metrics) if m.type == "time_to_event" and m.start is not None]
        if stamps and self.data_end is None and not windowed:
            problems.append(
                (
                    "data_end",
                    f"metrics[{stamps[0]}] reads start/end timestamps: add `data_end:` (when "
                    "the data was read; events after it are censored there)",
                )
            )
        if problems:
            raise _rules(*problems, field_level=False)
        return self

    @field_validator("allocation")
    @classmethod
    def _names_the_control(cls, value, info: ValidationInfo):
        control = info.data.get("control")
        if isinstance(value, dict) and control is not None and control not in value:
            shown = ", ".join(show(a) for a in value)
            hint = ""
            if any(str(a) == str(control) for a in value):
                hint = (
                    " The labels differ in type: write them all as numbers (unquoted) or all as text (quoted)"
                    " as the variant column holds them."
                )
            raise _custom(f"does not name the control arm {show(control)}; arms given: {shown}.{hint}")
        return value

    @field_validator("sequential")
    @classmethod
    def _sequential_needs_a_plan(cls, value, info: ValidationInfo):
        if value and "planned_units" in info.data and info.data["planned_units"] is None:
            raise _custom(
                "always-valid intervals need their mixture fixed before the data are seen: add "
                "`planned_units:` (the units planned in all arms, e.g. 40000)"
            )
        return value

    @field_validator("date", "segments", "balance")
    @classmethod
    def _not_the_variant(cls, value, info: ValidationInfo):
        variant = info.data.get("variant")
        if value is None or variant is None:
            return value
        names = [value] if isinstance(value, str) else value
        where = [info.field_name] if isinstance(value, str) else [f"{info.field_name}[{i}]" for i in range(len(names))]
        bad = [
            (w, f"'{printable(c)}' is the variant column; name another column")
            for w, c in zip(where, names)
            if c == variant
        ]
        if bad:
            raise _rules(*bad)
        return value

    @field_validator("unit")
    @classmethod
    def _unit_is_an_id(cls, value, info: ValidationInfo):
        if value is None:
            return value
        if value == info.data.get("variant"):
            raise _custom(f"'{printable(value)}' is the variant column; name another column")
        for m in info.data.get("metrics") or ():
            columns = [
                m.column,
                m.numerator,
                m.denominator,
                m.duration,
                m.event,
                m.start,
                m.end,
                *_flat(m.all_covariates),
            ]
            if value in columns and m.type == "time_to_event":
                continue  # rows that are events of units: the unit column clusters them (TimeToEvent unit=)
            if value in columns:
                raise _custom(
                    f"'{printable(value)}' is also a column of metric '{printable(m.metric_name)}'; "
                    "`unit` names the column with each row's randomization-unit id (e.g. buyer_id)"
                )
        return value


def _flat(covariates) -> list[str]:
    return [c for cov in covariates for c in ([cov] if isinstance(cov, str) else cov)]


# --------------------------------------------------------------------------- kind: did
def _outcome_shorthand(value: Any) -> Any:
    if isinstance(value, str) and value.strip():
        return {"column": value}
    if not isinstance(value, Mapping):
        raise _custom(
            f"expected a column name or a mapping like `{{name: contact_rate, numerator: contacts, "
            f"denominator: orders}}`, got {show(value)} ({type_name(value)})"
        )
    return value


class OutcomeDocument(Document):
    """One outcome of a rollout: a column, or a ratio numerator / denominator of unit-period sums."""

    EXAMPLE: ClassVar[str] = "`{name: contact_rate, numerator: contacts, denominator: orders}`"

    name: NonBlankText | None = _text_field("name in the readout (default: the column)", "contact_rate", default=None)
    column: ColumnName | None = Field(None, description="the outcome column")
    numerator: ColumnName | None = Field(None, description="ratio: numerator column (summed per unit and period)")
    denominator: ColumnName | None = Field(None, description="ratio: denominator column")
    better: Better = Field("higher", description="which direction is good")
    description: Text | None = Field(None, description="what the outcome means, for the readout")

    @model_validator(mode="after")
    def _column_or_ratio(self):
        if self.column is not None and (self.numerator is not None or self.denominator is not None):
            raise _rules(
                ("column", "give either `column` or `numerator` and `denominator`, not both"), field_level=False
            )
        if self.column is None and self.numerator is None and self.denominator is None:
            raise _rules(
                (
                    "",
                    (
                        "needs `column: <name>` or `numerator:` and `denominator:` (a ratio of sums such as "
                        "contacts / orders)"
                    ),
                ),
                field_level=False,
            )
        missing = [k for k in ("numerator", "denominator") if self.column is None and getattr(self, k) is None]
        if missing:
            raise _rules(
                *((k, f"required for a ratio outcome; add `{k}: <column name>`") for k in missing), field_level=False
            )
        return self

    @property
    def outcome_name(self) -> str:
        return self.name if self.name is not None else (self.column or f"{self.numerator}/{self.denominator}")


Outcome = Annotated[
    OutcomeDocument, BeforeValidator(_outcome_shorthand, json_schema_input_type=ColumnName | OutcomeDocument)
]


PeriodCount = Annotated[int, Field(ge=1)]


def _launch_column(cls, value, info: ValidationInfo):
    """``first_treated`` or ``treatment``: exactly one (kinds did and synthetic)."""
    if "treatment" not in info.data:
        return value
    treatment = info.data["treatment"]
    if value is not None and treatment is not None:
        raise _rules(
            (
                "treatment",
                (
                    "give either `first_treated` (the launch period of each unit) or `treatment` "
                    "(a 0/1 column that switches on at launch), not both"
                ),
            )
        )
    if value is None and treatment is None:
        raise _custom(
            "required key missing; add e.g. `first_treated: launch_week` (each unit's launch period, "
            "empty for never launched) or `treatment: launched` (0/1)"
        )
    return value


def _distinct_outcome_names(cls, value, info: ValidationInfo):
    """The primary and secondary outcomes have distinct names (kinds did and synthetic)."""
    outcome = info.data.get("outcome")
    names = ([outcome.outcome_name] if outcome is not None else []) + [o.outcome_name for o in value or ()]
    bad = [
        (
            f"secondary[{i}].name",
            (
                f"'{printable(o.outcome_name)}' is already the name of another outcome; give each "
                "outcome a distinct name"
            ),
        )
        for i, o in enumerate(value or ())
        if names.count(o.outcome_name) > 1
    ]
    if bad:
        raise _rules(*bad, field_level=True)
    return value


SYNTHETIC_METHODS = ("synthetic", "sdid", "sc")
"""``method`` values that make a rollout spec (``kind: did``) a one-market launch read by synthetic control:
``load_spec`` and ``spec_from_dict`` read such a spec as ``kind: synthetic`` (``synthetic`` = ``sdid``)."""


def _did_method(value: Any) -> Any:
    if value in SYNTHETIC_METHODS:
        raise _custom(
            f"{show(value)} is a synthetic estimator: for a launch in one or a few markets write "
            "`kind: synthetic` (with `method: sdid` or `sc`); kind: did takes dr, reg or ipw "
            "(Callaway & Sant'Anna)"
        )
    return value


class RolloutDocument(_Header):
    """A rollout analysed by difference-in-differences (``kind: did``): one row per unit and period."""

    EXAMPLE: ClassVar[str] = "name:, kind: did, data:, unit:, time:, first_treated:, outcome: ..."
    MISSING: ClassVar[dict[str, str]] = {
        "kind": "expected `kind: did` for a rollout spec, got nothing",
        "data": _missing_data("../data/rollout_panel.parquet` (one row per unit and period"),
        "outcome": "required key missing; add e.g. `outcome: {name: contact_rate, numerator: contacts, denominator: "
        "orders, better: lower}`",
    }

    kind: Literal["did"] = Field(description="did: a rollout read by difference-in-differences")
    data: DataSource = Field(description=DATA_DESCRIPTION, examples=["../data/rollout_panel.parquet"])
    unit: ColumnName = Field(description="the unit that launches (market, warehouse...)", examples=["market"])
    time: ColumnName = Field(description="the period column (numbers or dates)", examples=["week"])
    treatment: ColumnName | None = Field(None, description="or: a 0/1 column that switches on at launch")
    first_treated: ColumnName | None = Field(
        None,
        validate_default=True,
        description="each unit's launch period (empty = never launched)",
        examples=["launch_week"],
    )
    cluster: ColumnName | None = Field(None, description="cluster for TWFE / placebo standard errors (default: unit)")
    outcome: Outcome = Field(description="the primary outcome: a column, or {name, numerator, denominator, better}")
    secondary: list[Outcome] | None = Field(None, description="more outcomes, reported alongside")
    control_group: Literal["never_treated", "not_yet_treated"] = Field("never_treated", description="comparison units")
    method: Annotated[Literal["dr", "reg", "ipw"], BeforeValidator(_did_method)] = Field(
        "dr", description="Callaway & Sant'Anna estimator (synthetic control / SDID: kind: synthetic)"
    )
    covariates: ColumnList | None = Field(
        None, examples=[["market_size"]], description="time-invariant unit covariates"
    )
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = Field(0.05, examples=[0.05], description="significance level")
    scale: Literal["log", "level"] = Field("log", description="log (relative effects) or level")
    leads: Annotated[WholeNumber, Field(ge=2, le=1000)] = Field(
        6, examples=[6], description="event study: periods before launch"
    )
    lags: Annotated[WholeNumber, Field(ge=0, le=1000)] = Field(12, examples=[12], description="periods after launch")
    placebo_shifts: Annotated[
        list[int],
        BeforeValidator(
            _whole_numbers("periods >= 1", "placebo_shifts: [4, 8]"),
            json_schema_input_type=PeriodCount | list[PeriodCount],
        ),
    ] = Field([4, 8], description="fake launches this many periods early")
    impact: ImpactDocument | None = Field(None, description=IMPACT_DESCRIPTION)

    _launch_column = field_validator("first_treated")(classmethod(_launch_column))
    _distinct_names = field_validator("secondary")(classmethod(_distinct_outcome_names))


# --------------------------------------------------------------------------- kind: synthetic
def _synthetic_method(value: Any) -> Any:
    if value == "synthetic":  # the rollout spelling (kind: did, method: synthetic): the default estimator
        return "sdid"
    if value in ("dr", "reg", "ipw"):
        raise _custom(
            f"{show(value)} is a Callaway & Sant'Anna method of kind: did; kind: synthetic takes sdid "
            "(synthetic difference-in-differences, the default) or sc (synthetic control)"
        )
    if value == "did":
        raise _custom(
            "plain difference-in-differences is kind: did; kind: synthetic takes sdid (the default) or sc, "
            "and its readout shows the unweighted DiD next to them for comparison"
        )
    return value


_DID_ONLY = (
    "a Callaway & Sant'Anna key ({what}); a synthetic read (kind: synthetic, or method: sdid / sc) "
    "{instead}: remove it, or write `kind: did` with method dr, reg or ipw for a difference-in-differences "
    "readout"
)


class SyntheticDocument(_Header):
    """A launch in one market (or a few) read by synthetic DiD or synthetic control (``kind: synthetic``).

    One row per unit and period, as ``kind: did``; the launched units all
    start together (several launch dates are estimated per cohort). The
    comparison is a weighted mix of the never-launched units
    (:func:`abkit.did.synthetic`); so the keys of the Callaway & Sant'Anna
    design (``control_group``, ``scale``, ``leads``, ``lags``,
    ``placebo_shifts``, ``cluster``) have no meaning here and are refused,
    with the reason.
    """

    EXAMPLE: ClassVar[str] = "name:, kind: synthetic, data:, unit:, time:, treatment:, outcome: ..."
    MISSING: ClassVar[dict[str, str]] = {
        "kind": "expected `kind: synthetic` for a launch read by synthetic control, got nothing",
        "data": _missing_data("../data/one_market_panel.parquet` (one row per unit and period"),
        "outcome": "required key missing; add e.g. `outcome: {name: contact_rate, numerator: contacts, denominator: "
        "orders, better: lower}`",
    }
    MISPLACED: ClassVar[dict[str, str]] = {
        "control_group": _DID_ONLY.format(
            what="the Callaway & Sant'Anna comparison group",
            instead="compares with a weighted mix of the never-launched units",
        ),
        "scale": _DID_ONLY.format(
            what="log or level analysis",
            instead="reports the effect in the outcome's units and in percent of the synthetic twin",
        ),
        "leads": _DID_ONLY.format(
            what="event study", instead="shows the launched unit and its synthetic twin week by week instead"
        ),
        "lags": _DID_ONLY.format(
            what="event study", instead="shows the launched unit and its synthetic twin week by week instead"
        ),
        "placebo_shifts": _DID_ONLY.format(
            what="placebo launch dates", instead="runs placebo launches in the comparison units instead"
        ),
        "cluster": _DID_ONLY.format(
            what="clustered standard errors", instead="takes its uncertainty from placebo launches (see `inference`)"
        ),
    }

    kind: Literal["synthetic"] = Field(
        description="synthetic: a launch in one or a few units read by synthetic "
        "difference-in-differences or synthetic control"
    )
    data: DataSource = Field(description=DATA_DESCRIPTION, examples=["../data/one_market_panel.parquet"])
    unit: ColumnName = Field(description="the unit that launches (market, warehouse...)", examples=["market"])
    time: ColumnName = Field(description="the period column (numbers or dates)", examples=["week"])
    treatment: ColumnName | None = Field(
        None, description="a 0/1 column that switches on at launch", examples=["launched"]
    )
    first_treated: ColumnName | None = Field(
        None,
        validate_default=True,
        description="or: each unit's launch period (empty = never launched)",
        examples=["launch_week"],
    )
    outcome: Outcome = Field(
        description="the primary outcome: a column, or {name, numerator, denominator, better} (the unit-period ratio)"
    )
    secondary: list[Outcome] | None = Field(None, description="more outcomes, reported alongside")
    method: Annotated[
        Literal["sdid", "sc"], BeforeValidator(_synthetic_method, json_schema_input_type=Literal[SYNTHETIC_METHODS])
    ] = Field(
        "sdid",
        description="sdid (synthetic difference-in-differences, default; also: synthetic) or sc (synthetic control)",
    )
    covariates: ColumnList | None = Field(
        None, examples=[["avg_basket_value"]], description="time-varying covariates, adjusted for as R synthdid's X"
    )
    inference: Literal["placebo", "bootstrap", "jackknife", "conformal"] | None = Field(
        None,
        description="placebo (default with more comparison than launched units), bootstrap or jackknife "
        "(two or more launched units), or conformal",
    )
    replications: Annotated[WholeNumber, Field(ge=20, le=10_000)] = Field(
        200, examples=[200], description="placebo / bootstrap replications"
    )
    seed: Annotated[WholeNumber, Field(ge=0)] = Field(0, examples=[0], description="seed of the replications")
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = Field(0.05, examples=[0.05], description="significance level")
    impact: ImpactDocument | None = Field(
        None,
        description=IMPACT_DESCRIPTION + " (the launched market's own volume: the effect is measured there)",
    )

    _launch_column = field_validator("first_treated")(classmethod(_launch_column))
    _distinct_names = field_validator("secondary")(classmethod(_distinct_outcome_names))

    @field_validator("covariates")
    @classmethod
    def _not_the_outcome(cls, value, info: ValidationInfo):
        outcome = info.data.get("outcome")
        used = {outcome.column, outcome.numerator, outcome.denominator} - {None} if outcome is not None else set()
        bad = [
            (
                f"covariates[{i}]",
                (
                    f"'{printable(c)}' is a column of the outcome; a covariate adjusts the outcome "
                    "for something else that moves over time (e.g. basket value)"
                ),
            )
            for i, c in enumerate(value or ())
            if c in used
        ]
        if bad:
            raise _rules(*bad)
        return value


# --------------------------------------------------------------------------- kind: power
class PowerDocument(_Header):
    """A test plan (``kind: power``) from historical data: how many days, what MDE."""

    EXAMPLE: ClassVar[str] = "name:, kind: power, data:, daily_units:, metrics: ..."
    MISSING: ClassVar[dict[str, str]] = {
        "kind": "expected `kind: power` for a test plan, got nothing",
        "data": _missing_data("../data/aftersales_ab.parquet` (history"),
        "metrics": _MISSING_METRICS,
        "daily_units": "required key missing; add the traffic, e.g. `daily_units: 1500` (eligible units a day)",
    }

    kind: Literal["power"] = Field(description="power: a test plan")
    data: DataSource = Field(
        description="history (or a past test: give variant and control); " + DATA_DESCRIPTION,
        examples=["../data/aftersales_ab.parquet"],
    )
    variant: ColumnName | None = Field(None, description="the arm column, when the history is a past test")
    control: ArmLabel = Field("control", description="the control arm's label (with variant)")
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = Field(0.05, examples=[0.05], description="significance level")
    power: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(0.8, examples=[0.8], description="power to detect the mde")
    arms: Annotated[WholeNumber, Field(ge=2, le=100)] = Field(
        2, examples=[2], description="control plus treatment arms"
    )
    ratio: Annotated[float, Field(gt=0.0, le=100.0)] = Field(
        1.0, examples=[1], description="treatment units per control unit"
    )
    correction: Literal["bonferroni", "sidak"] | None = Field(
        "bonferroni", description="several arms: bonferroni, sidak or null"
    )
    daily_units: Annotated[float, Field(gt=0.0)] = Field(description="eligible units a day", examples=[1500])
    population: Annotated[float, Field(gt=0.0)] | None = Field(
        None, examples=[60000], description="eligible units in all (repeat visitors count once)"
    )
    traffic_share: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        1.0, examples=[0.5], description="share of the traffic in the test"
    )
    days: Annotated[
        list[int],
        BeforeValidator(
            _whole_numbers("days", "days: [7, 14, 28]"), json_schema_input_type=list[Annotated[int, Field(ge=1)]]
        ),
    ] = Field(list(DEFAULT_PLAN_DAYS), description="durations to tabulate")
    mde: Annotated[float, Field(gt=0.0, lt=1.0)] | None = Field(
        None, examples=[0.05], description="the relative change to detect"
    )
    max_days: Annotated[WholeNumber, Field(ge=1, le=10_000)] | None = Field(
        None, examples=[42], description="the longest acceptable run"
    )
    sequential: bool = Field(False, description="plan for always-valid intervals (a test read while it runs)")
    simulate: Annotated[WholeNumber, Field(ge=0, le=20_000)] = Field(
        0, examples=[500], description="simulated tests checking the recommendation (0 = off)"
    )
    metrics: Metrics = Field(description="the metrics, exactly one with primary: true")

    _power_above_alpha = field_validator("power")(classmethod(_power_above_alpha))

    @field_validator("metrics")
    @classmethod
    def _plannable(cls, value, info: ValidationInfo):
        problems = []
        for i, m in enumerate(value):
            if m.type == "time_to_event":
                problems.append(
                    (
                        f"metrics[{i}].type",
                        "a test plan reads moments of history; plan a time_to_event "
                        "metric with abkit.power.simulate_power (see the README) "
                        "and list a mean, proportion or ratio here",
                    )
                )
            elif m.window is not None:
                problems.append(
                    (
                        f"metrics[{i}].window",
                        "a test plan has no maturity window: plan on history "
                        "whose windows have closed, and remove `window`",
                    )
                )
        if problems:
            raise _rules(*problems)
        return value


DOCUMENTS: dict[str, type[_Header]] = {
    "ab": AbDocument,
    "did": RolloutDocument,
    "synthetic": SyntheticDocument,
    "power": PowerDocument,
}


# --------------------------------------------------------------------------- JSON Schema
_JSON_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _json_bounds(node: Any) -> None:
    """Bounds pydantic leaves in its own words (``ge``, ``le``: a range on a whole-number field, whose
    before-validator hides the integer from the schema generator) in JSON Schema's words, so an editor checks
    them too (``leads: 1``, ``replications: 3``)."""
    if isinstance(node, dict):
        for ours, theirs in _JSON_BOUNDS.items():
            if ours in node and theirs not in node:
                node[theirs] = node.pop(ours)
        for value in node.values():
            _json_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _json_bounds(value)


def spec_json_schema() -> dict:
    """The JSON Schema of a spec file: the four kinds, chosen by ``kind`` (absent: ab).

    ``if kind is did with a synthetic method (sdid, sc, synthetic) then the synthetic document, else if kind is
    did then RolloutDocument, else if synthetic then SyntheticDocument, else if power then PowerDocument, else
    AbDocument``, so an editor reports a misspelled key against the right kind instead
    of "matches none of four".
    """
    from pydantic.json_schema import models_json_schema

    refs, top = models_json_schema([(DOCUMENTS[k], "validation") for k in KINDS], ref_template="#/$defs/{model}")
    defs = top["$defs"]
    for definition in defs.values():
        props = definition.get("properties", {})
        props.pop("source", None)
        for prop in props.values():
            prop.pop("title", None)
            _json_bounds(prop)
    ref = {k: refs[(DOCUMENTS[k], "validation")]["$ref"] for k in KINDS}

    def kind_is(kind):
        return {"properties": {"kind": {"const": kind}}, "required": ["kind"]}

    # a rollout spec whose method is synthetic (sdid, sc) is read as kind: synthetic: its keys are those
    as_did = copy.deepcopy(defs[ref["synthetic"].rsplit("/", 1)[1]])
    as_did["properties"]["kind"] = {
        "const": "did",
        "description": "did with a synthetic method: read as kind: synthetic",
    }
    as_did["required"] = sorted(set(as_did.get("required", [])) | {"kind", "method"})
    defs["SyntheticRolloutDocument"] = as_did
    synthetic_did = {
        "properties": {"kind": {"const": "did"}, "method": {"enum": list(SYNTHETIC_METHODS)}},
        "required": ["kind", "method"],
    }

    return {
        "$schema": "http://json-schema.org/draft-07/schema#",  # what VS Code's YAML extension supports
        "title": "abkit experiment spec",
        "description": "One YAML file per experiment: kind ab (A/B test, the default), did (rollout), synthetic "
        "(a launch in one or a few markets) or power (test plan). Generated by `abkit schema`.",
        "type": "object",
        "if": synthetic_did,
        "then": {"$ref": "#/$defs/SyntheticRolloutDocument"},
        "else": {
            "if": kind_is("did"),
            "then": {"$ref": ref["did"]},
            "else": {
                "if": kind_is("synthetic"),
                "then": {"$ref": ref["synthetic"]},
                "else": {"if": kind_is("power"), "then": {"$ref": ref["power"]}, "else": {"$ref": ref["ab"]}},
            },
        },
        "$defs": defs,
    }
