"""Validated specs: the frozen objects the readouts, the notebooks and the CLI use.

:class:`ExperimentSpec` (``kind: ab``), :class:`RolloutSpec` (``kind: did``),
:class:`SyntheticSpec` (``kind: synthetic``) and :class:`PowerSpec`
(``kind: power``), with :class:`MetricSpec` and
:class:`OutcomeSpec`, are built from a validated document
(:mod:`abkit.spec.models`) with everything resolved: the data path made
absolute (or a :class:`abkit.engines.TableRef`), default names filled in,
shorthands expanded. Arm labels keep their type: ``control: 0`` is the
number 0, ``control: "0"`` the text "0".

``from_dict`` validates a mapping (the dict form written by ``to_dict``, or
parsed YAML): every problem of the document, and of its data against it
(:mod:`abkit.spec.data_checks`), is raised together as one
:class:`abkit.SpecError`.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..business_impact import ImpactSpec
from ..engines import TableRef
from ..errors import AbkitError, SpecError
from ..metrics import Mean, Metric, Proportion, Ratio, TimeToEvent
from .data_checks import check_data as check_against_data
from .data_checks import named_columns
from .models import (
    DEFAULT_PLAN_DAYS,
    DOCUMENTS,
    SYNTHETIC_METHODS,
    AbDocument,
    DataSource,
    ImpactDocument,
    MetricDocument,
    OutcomeDocument,
    PowerDocument,
    RolloutDocument,
    SyntheticDocument,
    TableDocument,
)
from .problems import Problems, add_validation_errors, show, type_name

__all__ = ["Covariate", "ExperimentSpec", "MetricSpec", "OutcomeSpec", "PowerSpec", "RolloutSpec", "SyntheticSpec"]

Covariate = str | tuple[str, str]


# --------------------------------------------------------------------------- metric spec
@dataclass(frozen=True)
class MetricSpec:
    """One metric of a spec, as written in YAML (see the module doc)."""

    name: str
    type: str  # mean | proportion | ratio
    column: str | None = None  # mean / proportion
    numerator: str | None = None  # ratio
    denominator: str | None = None  # ratio
    covariates: tuple[Covariate, ...] = ()
    better: str = "higher"
    primary: bool = False
    guardrail: bool = False
    dropna: bool = False
    method: str | None = None
    description: str | None = None
    margin: float | None = None  # guardrails: relative non-inferiority margin (0.02 = 2%)
    nonnegative: bool = True  # ratio: numerators must not be negative (denominators always)
    window: str | None = None  # maturity window (its own, or the spec's), e.g. "30d"
    duration: str | None = None  # time_to_event: observed time and 0/1 event columns ...
    event: str | None = None
    start: str | None = None  # ... or start / event timestamps (censored at data_end)
    end: str | None = None
    horizon: float | None = None  # time_to_event: restricted mean up to it (None: the window)
    time_unit: str = "days"

    @property
    def is_time_to_event(self) -> bool:
        return self.type == "time_to_event"

    @property
    def time_horizon(self) -> float | None:
        """time_to_event: the horizon in ``time_unit`` (the window's length when no horizon is given)."""
        if self.horizon is not None or self.window is None:
            return self.horizon
        from ..maturity import parse_window

        seconds = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}[self.time_unit]
        return parse_window(self.window).total_seconds() / seconds

    @property
    def columns(self) -> tuple[str, ...]:
        """Every data column the metric reads."""
        out: dict[str, None] = {}
        for c in (self.column, self.numerator, self.denominator, self.duration, self.event, self.start, self.end):
            if c:
                out[c] = None
        for cov in self.covariates:
            for c in (cov,) if isinstance(cov, str) else cov:
                out[c] = None
        return tuple(out)

    def column_fields(self) -> list[tuple[str, str]]:
        """(field name, column) for every column, e.g. ('covariates[1]', 'pre_orders')."""
        out = [
            (k, getattr(self, k))
            for k in ("column", "numerator", "denominator", "duration", "event", "start", "end")
            if getattr(self, k)
        ]
        for i, cov in enumerate(self.covariates):
            if isinstance(cov, str):
                out.append((f"covariates[{i}]", cov))
            else:
                out += [(f"covariates[{i}][{j}]", c) for j, c in enumerate(cov)]
        return out

    def _needs(self, field: str) -> str:
        """A column field this metric's type requires (the model's validation guarantees it)."""
        value = getattr(self, field)
        if value is None:
            raise SpecError(f"metric '{self.name}' of type {self.type} needs `{field}:`")
        return value

    def build(self, date: str | None = None, data_end=None) -> Metric:
        """The abkit metric object (:class:`abkit.Mean`, :class:`abkit.Proportion`, :class:`abkit.Ratio`,
        :class:`abkit.TimeToEvent`).

        With a ``window`` and the spec's exposure ``date`` column and
        ``data_end``, a mean / proportion / ratio reads mature units only
        (:func:`abkit.maturity.windowed`); a time to event keeps every unit,
        censored at the data's end. Without them (checking a metric alone) the
        window is not applied.
        """
        covs = _covariates_arg(self.covariates, self.type == "ratio")
        if self.type == "time_to_event":
            common = dict(
                covariate=covs,
                name=self.name,
                better=self.better,
                dropna=self.dropna,
                method=self.method,
                time_unit=self.time_unit,
            )
            if self.start is not None:
                if data_end is None:
                    raise AbkitError(
                        f"metric '{self.name}' reads start/end timestamps: the spec needs `data_end:` "
                        "(when the data was read)"
                    )
                from ..maturity import data_cutoff

                return TimeToEvent.from_timestamps(
                    self._needs("start"), self._needs("end"), data_cutoff(data_end), self.time_horizon, **common
                )
            return TimeToEvent(self._needs("duration"), self._needs("event"), self.time_horizon, **common)
        metric: Metric
        if self.type == "ratio":
            metric = Ratio(
                self._needs("numerator"),
                self._needs("denominator"),
                covariates=covs,
                name=self.name,
                better=self.better,
                dropna=self.dropna,
                method=self.method,
                nonnegative=self.nonnegative,
            )
        else:
            cls = Proportion if self.type == "proportion" else Mean
            metric = cls(
                self._needs("column"),
                covariate=covs,
                name=self.name,
                better=self.better,
                dropna=self.dropna,
                method=self.method,
            )
        if self.window is not None and date is not None and data_end is not None:
            from ..maturity import windowed

            metric = windowed(metric, date, self.window, data_end)
        return metric

    @property
    def definition(self) -> str:
        """Human-readable definition, e.g. ``refunds / orders``."""
        if self.type == "time_to_event":
            what = f"{self.start} to {self.end}" if self.start else f"{self.duration} (event: {self.event})"
            text = f"time from {what}, restricted mean to {self.time_horizon:g} {self.time_unit}, censoring-aware"
        elif self.type == "ratio":
            text = f"{self.numerator} / {self.denominator}"
        else:
            text = f"mean of {self.column}" if self.type == "mean" else f"share with {self.column} = 1"
        return text

    def to_dict(self, spec_window: str | None = None) -> dict:
        d: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.type == "time_to_event":
            for k in ("duration", "event", "start", "end", "horizon"):
                if getattr(self, k) is not None:
                    d[k] = getattr(self, k)
            d["time_unit"] = self.time_unit
        elif self.type == "ratio":
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
        if self.window is not None and self.window != spec_window:
            d["window"] = self.window
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


# --------------------------------------------------------------------------- data: a file or a table
class _Data:
    """What every spec kind does with its ``data`` (a file path or a :class:`abkit.engines.TableRef`)."""

    name: str
    data: str | TableRef
    kind: str
    owner: str | None
    id: str | None
    description: str | None
    hypothesis: str | None
    start: _dt.date | None
    end: _dt.date | None

    @property
    def is_table(self) -> bool:
        """True when the spec names a warehouse table rather than a file."""
        return isinstance(self.data, TableRef)

    @property
    def data_path(self) -> Path:
        """Absolute path of the data file (an error for a table: use :meth:`open_data`)."""
        if isinstance(self.data, TableRef):
            raise SpecError(f"spec '{self.name}' reads the {self.data.label}, not a file; use open_data()")
        return Path(self.data)

    @property
    def data_label(self) -> str:
        """The data for people: the file name or e.g. 'DuckDB table refunds in warehouse.duckdb'."""
        return self.data.label if isinstance(self.data, TableRef) else Path(self.data).name

    def open_data(self):
        """What abkit's functions take: the file path, or the table opened in its engine (lazy)."""
        return self.data.open() if isinstance(self.data, TableRef) else Path(self.data)

    def _data_dict(self):
        return self.data.to_dict() if self.is_table else self.data

    def _header_dict(self) -> dict[str, Any]:
        """The fields every spec kind shares, as plain JSON-able data (the start of each ``to_dict``)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "owner": self.owner,
            "id": self.id,
            "description": self.description,
            "hypothesis": self.hypothesis,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "data": self._data_dict(),
        }


# --------------------------------------------------------------------------- experiment spec
@dataclass(frozen=True)
class ExperimentSpec(_Data):
    """A validated experiment spec. Build it with :func:`load_spec` or :meth:`from_dict`.

    ``data`` is the absolute path of the data file (the YAML's relative
    path resolved against the spec file's directory); ``source`` is the
    spec file it came from, if any.
    """

    name: str
    data: str | TableRef
    metrics: tuple[MetricSpec, ...]
    kind: str = "ab"
    owner: str | None = None
    id: str | None = None  # stable identity (readout folder, results store); None: from the file
    description: str | None = None
    hypothesis: str | None = None
    start: _dt.date | None = None
    end: _dt.date | None = None
    variant: str = "variant"
    control: str | int = "control"
    allocation: tuple | None = None  # ((arm, share), ...) for a mapping, (share, ...) for a list
    alpha: float = 0.05
    correction: str | None = None
    source: str | None = None
    mde: float | None = None  # planned minimum detectable effect, relative (0.02 = 2%)
    power: float = 0.8  # planned power for the mde
    planned_units: int | None = None  # planned units, all arms together
    date: str | None = None  # column with each unit's first-exposure date (cumulative chart)
    segments: tuple[str, ...] = ()  # columns to break the primary metric down by
    unit: str | None = None  # randomization-unit id column: unit-integrity check (leaks, duplicates)
    balance: tuple[str, ...] | None = None  # pre-period columns for the balance check (None: covariates)
    sequential: bool = False  # always-valid CIs and p-values (safe to look daily)
    window: str | None = None  # maturity window of every metric without its own (e.g. "30d")
    data_end: _dt.date | _dt.datetime | None = None  # when the data was read (windows, timestamp metrics)
    impact: ImpactSpec | None = None  # yearly volume behind the primary metric (impact in business terms)

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
        for extra in (self.date, self.unit, *self.segments, *self.balance_columns):
            if extra:
                out[extra] = None
        return tuple(out)

    @property
    def balance_columns(self) -> tuple[str, ...]:
        """Pre-period columns compared between arms: ``balance`` or else every metric covariate."""
        if self.balance is not None:
            return self.balance
        out: dict[str, None] = {}
        for m in self.metrics:
            for cov in m.covariates:
                for c in (cov,) if isinstance(cov, str) else cov:
                    out[c] = None
        return tuple(out)

    @property
    def margins(self) -> dict[str, float | None]:
        """Guardrail name -> its relative non-inferiority margin (None = none given)."""
        return {g.name: g.margin for g in self.guardrails}

    def build_metrics(self) -> list[Metric]:
        """The abkit metric objects, in spec order (windowed metrics read mature units only)."""
        return [m.build(self.date, self.data_end) for m in self.metrics]

    @property
    def windows(self) -> dict[str, str]:
        """Metric name -> its maturity window (the metric's own, else the spec's), for metrics with one."""
        return {m.name: m.window for m in self.metrics if m.window is not None}

    # ----------------------------------------------------------------- dict form
    def to_dict(self) -> dict:
        """Plain JSON-able data (str, numbers, booleans, None, lists, dicts).

        ``ExperimentSpec.from_dict(spec.to_dict()) == spec``. Dates become
        ISO strings and ``data`` the absolute path.
        """
        alloc = self.planned_allocation
        if isinstance(alloc, dict) and not all(isinstance(arm, str) for arm in alloc):
            alloc = [[arm, share] for arm, share in alloc.items()]  # JSON keys are text: pairs keep 0 a number
        return {
            **self._header_dict(),
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
            "window": self.window,
            "data_end": self.data_end.isoformat() if self.data_end is not None else None,
            "metrics": [m.to_dict(spec_window=self.window) for m in self.metrics],
            "impact": self.impact.to_dict() if self.impact is not None else None,
            "source": self.source,
        }

    @classmethod
    def from_dict(
        cls,
        raw: Mapping,
        *,
        base_dir: str | os.PathLike | None = None,
        origin: str | None = None,
        check_data: bool = True,
    ) -> ExperimentSpec:
        """Validate a spec given as a mapping (e.g. from :meth:`to_dict` or parsed YAML).

        ``base_dir`` anchors a relative ``data`` path (default: the current
        directory). With ``check_data`` the data file must exist and hold
        every column named in the spec (only its schema is read).
        """
        return _build(cls, raw, origin=origin, base_dir=base_dir, check_data=check_data, allow_source=True)


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
        return tuple(
            c for c in ((self.numerator, self.denominator) if self.is_ratio else (self.column,)) if c is not None
        )

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
    = never launched; 0 too, but only when 0 is not a period of the panel:
    :func:`abkit.did.classify_first_treated`); alternatively ``treatment`` names a 0/1 column
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
    data: str | TableRef
    unit: str
    time: str
    outcome: OutcomeSpec
    first_treated: str | None = None
    treatment: str | None = None
    secondary: tuple[OutcomeSpec, ...] = ()
    kind: str = "did"
    owner: str | None = None
    id: str | None = None  # stable identity (readout folder, results store); None: from the file
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
    impact: ImpactSpec | None = None  # yearly volume behind the primary outcome (impact in business terms)

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
            **self._header_dict(),
            "unit": self.unit,
            "time": self.time,
            "first_treated": self.first_treated,
            "treatment": self.treatment,
            "outcome": self.outcome.to_dict(),
            "secondary": [o.to_dict() for o in self.secondary],
            "control_group": self.control_group,
            "method": self.method,
            "covariates": list(self.covariates),
            "cluster": self.cluster,
            "alpha": self.alpha,
            "scale": self.scale,
            "leads": self.leads,
            "lags": self.lags,
            "placebo_shifts": list(self.placebo_shifts),
            "source": self.source,
            "impact": self.impact.to_dict() if self.impact is not None else None,
        }

    @classmethod
    def from_dict(
        cls,
        raw: Mapping,
        *,
        base_dir: str | os.PathLike | None = None,
        origin: str | None = None,
        check_data: bool = True,
    ) -> RolloutSpec:
        """Validate a rollout spec given as a mapping (see :meth:`ExperimentSpec.from_dict`)."""
        return _build(cls, raw, origin=origin, base_dir=base_dir, check_data=check_data, allow_source=True)


# --------------------------------------------------------------------------- one-market launch (kind: synthetic)
@dataclass(frozen=True)
class SyntheticSpec(_Data):
    """A validated ``kind: synthetic`` spec: a launch in one market (or a few) read by synthetic DiD or synthetic
    control (:func:`abkit.did.synthetic`; the readout ``templates/one_market_readout.ipynb``).

    The panel is as for ``kind: did`` (``treatment`` a 0/1 column, or
    ``first_treated`` each unit's launch period). ``method``: ``sdid``
    (default) or ``sc``; ``covariates`` are time-varying columns adjusted for
    as synthdid's ``X``; ``inference`` (None: placebo when there are more
    comparison than launched units, else bootstrap) with ``replications``
    seeded by ``seed``. ``impact``: the launched market's yearly volume behind the outcome
    (:class:`abkit.business_impact.ImpactSpec`; the effect in units and money a year,
    :func:`abkit.readout.digest.synthetic_impact`).

    Example ``specs/refund_tracker_germany.yaml``::

        name: Refund tracker, launched in Germany first
        kind: synthetic
        data: ../data/one_market_panel.parquet
        unit: market
        time: week
        treatment: launched
        outcome: {name: contact_rate, numerator: contacts, denominator: orders, better: lower}
        method: sdid                        # sdid | sc
    """

    name: str
    data: str | TableRef
    unit: str
    time: str
    outcome: OutcomeSpec
    first_treated: str | None = None
    treatment: str | None = None
    secondary: tuple[OutcomeSpec, ...] = ()
    kind: str = "synthetic"
    owner: str | None = None
    id: str | None = None  # stable identity (readout folder, results store); None: from the file
    description: str | None = None
    hypothesis: str | None = None
    start: _dt.date | None = None
    end: _dt.date | None = None
    method: str = "sdid"
    covariates: tuple[str, ...] = ()
    inference: str | None = None
    replications: int = 200
    seed: int = 0
    alpha: float = 0.05
    source: str | None = None
    impact: ImpactSpec | None = None  # the launched market's yearly volume (impact in business terms)

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
        for c in (self.unit, self.time, self.first_treated, self.treatment, *self.covariates):
            if c:
                out[c] = None
        for o in self.outcomes:
            for c in o.columns:
                out[c] = None
        return tuple(out)

    def to_dict(self) -> dict:
        """Plain JSON-able data; ``SyntheticSpec.from_dict(spec.to_dict()) == spec``."""
        return {
            **self._header_dict(),
            "unit": self.unit,
            "time": self.time,
            "first_treated": self.first_treated,
            "treatment": self.treatment,
            "outcome": self.outcome.to_dict(),
            "secondary": [o.to_dict() for o in self.secondary],
            "method": self.method,
            "covariates": list(self.covariates),
            "inference": self.inference,
            "replications": self.replications,
            "seed": self.seed,
            "alpha": self.alpha,
            "source": self.source,
            "impact": self.impact.to_dict() if self.impact is not None else None,
        }

    @classmethod
    def from_dict(
        cls,
        raw: Mapping,
        *,
        base_dir: str | os.PathLike | None = None,
        origin: str | None = None,
        check_data: bool = True,
    ) -> SyntheticSpec:
        """Validate a ``kind: synthetic`` spec given as a mapping (see :meth:`ExperimentSpec.from_dict`)."""
        return _build(cls, raw, origin=origin, base_dir=base_dir, check_data=check_data, allow_source=True)


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
    data: str | TableRef
    metrics: tuple[MetricSpec, ...]
    daily_units: float
    kind: str = "power"
    owner: str | None = None
    id: str | None = None  # stable identity (readout folder, results store); None: from the file
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
    simulate: int = 0  # simulated tests checking the recommendation (0 = off)
    sequential: bool = False  # plan for always-valid intervals (the test will be read while it runs)

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
            **self._header_dict(),
            "variant": self.variant,
            "control": self.control,
            "alpha": self.alpha,
            "power": self.power,
            "arms": self.arms,
            "ratio": self.ratio,
            "correction": self.correction,
            "daily_units": self.daily_units,
            "population": self.population,
            "traffic_share": self.traffic_share,
            "days": list(self.days),
            "mde": self.mde,
            "max_days": self.max_days,
            "metrics": [m.to_dict() for m in self.metrics],
            "source": self.source,
            "simulate": self.simulate,
            "sequential": self.sequential,
        }

    @classmethod
    def from_dict(
        cls,
        raw: Mapping,
        *,
        base_dir: str | os.PathLike | None = None,
        origin: str | None = None,
        check_data: bool = True,
    ) -> PowerSpec:
        return _build(cls, raw, origin=origin, base_dir=base_dir, check_data=check_data, allow_source=True)


# --------------------------------------------------------------------------- from a document
def _absolute(path: str, base_dir) -> str:
    """``path`` made absolute against ``base_dir`` (normalising '..' without following symlinks)."""
    p = Path(os.path.expanduser(path))
    if not p.is_absolute():
        p = Path(base_dir if base_dir is not None else os.getcwd()) / p
    return str(Path(os.path.abspath(p)))


def _resolve_data(data: str | TableDocument, base_dir) -> str | TableRef:
    if isinstance(data, str):
        return _absolute(data, base_dir)
    database = _absolute(data.database, base_dir) if data.engine == "duckdb" and data.database is not None else None
    return TableRef(
        engine=data.engine,
        table=data.table.strip(),
        database=database,
        conf=tuple(sorted((str(k), v) for k, v in (data.conf or {}).items())),
    )


def _metric(doc: MetricDocument, window: str | None = None) -> MetricSpec:
    covariates = tuple(c if isinstance(c, str) else (c[0], c[1]) for c in doc.all_covariates)
    return MetricSpec(
        name=doc.metric_name,
        type=doc.type,
        column=doc.column,
        numerator=doc.numerator,
        denominator=doc.denominator,
        covariates=covariates,
        better=doc.better,
        primary=doc.primary,
        guardrail=doc.guardrail,
        dropna=doc.dropna,
        method=doc.method,
        description=doc.description,
        margin=doc.margin,
        nonnegative=doc.nonnegative,
        window=doc.window if doc.window is not None else window,
        duration=doc.duration,
        event=doc.event,
        start=doc.start,
        end=doc.end,
        horizon=doc.horizon,
        time_unit=doc.time_unit,
    )


def _outcome(doc: OutcomeDocument) -> OutcomeSpec:
    return OutcomeSpec(
        name=doc.outcome_name,
        column=doc.column,
        numerator=doc.numerator,
        denominator=doc.denominator,
        better=doc.better,
        description=doc.description,
    )


def _impact(doc: ImpactDocument | None) -> ImpactSpec | None:
    if doc is None:
        return None
    return ImpactSpec(
        volume=float(doc.volume),
        unit=doc.unit.strip(),
        per=doc.per.strip(),
        value=float(doc.value) if doc.value is not None else None,
        currency=doc.currency.strip(),
    )


def _header(doc) -> dict:
    return {
        "name": doc.name,
        "owner": doc.owner,
        "id": doc.id,
        "description": doc.description,
        "hypothesis": doc.hypothesis,
        "start": doc.start,
        "end": doc.end,
        "source": doc.source,
    }


def _experiment(doc: AbDocument, data) -> ExperimentSpec:
    alloc = doc.allocation
    allocation = tuple(alloc.items()) if isinstance(alloc, dict) else tuple(alloc) if alloc is not None else None
    return ExperimentSpec(
        **_header(doc),
        data=data,
        metrics=tuple(_metric(m, doc.window) for m in doc.metrics),
        kind="ab",
        window=doc.window,
        data_end=doc.data_end,
        variant=doc.variant,
        control=doc.control,
        allocation=allocation,
        alpha=doc.alpha,
        correction=doc.correction,
        mde=doc.mde,
        power=doc.power,
        planned_units=doc.planned_units,
        date=doc.date,
        segments=tuple(doc.segments or ()),
        unit=doc.unit,
        balance=tuple(doc.balance) if doc.balance is not None else None,
        sequential=doc.sequential,
        impact=_impact(doc.impact),
    )


def _rollout(doc: RolloutDocument, data) -> RolloutSpec:
    return RolloutSpec(
        **_header(doc),
        data=data,
        unit=doc.unit,
        time=doc.time,
        outcome=_outcome(doc.outcome),
        first_treated=doc.first_treated,
        treatment=doc.treatment,
        secondary=tuple(_outcome(o) for o in doc.secondary or ()),
        control_group=doc.control_group,
        method=doc.method,
        covariates=tuple(doc.covariates or ()),
        cluster=doc.cluster,
        alpha=doc.alpha,
        scale=doc.scale,
        leads=doc.leads,
        lags=doc.lags,
        placebo_shifts=tuple(doc.placebo_shifts),
        impact=_impact(doc.impact),
    )


def _synthetic(doc: SyntheticDocument, data) -> SyntheticSpec:
    return SyntheticSpec(
        **_header(doc),
        data=data,
        unit=doc.unit,
        time=doc.time,
        outcome=_outcome(doc.outcome),
        first_treated=doc.first_treated,
        treatment=doc.treatment,
        secondary=tuple(_outcome(o) for o in doc.secondary or ()),
        method=doc.method,
        covariates=tuple(doc.covariates or ()),
        inference=doc.inference,
        replications=doc.replications,
        seed=doc.seed,
        alpha=doc.alpha,
        impact=_impact(doc.impact),
    )


def _plan(doc: PowerDocument, data) -> PowerSpec:
    return PowerSpec(
        **_header(doc),
        data=data,
        metrics=tuple(_metric(m) for m in doc.metrics),
        daily_units=float(doc.daily_units),
        variant=doc.variant,
        control=doc.control,
        alpha=doc.alpha,
        power=doc.power,
        arms=doc.arms,
        ratio=float(doc.ratio),
        correction=doc.correction,
        population=float(doc.population) if doc.population is not None else None,
        traffic_share=float(doc.traffic_share),
        days=tuple(doc.days),
        mde=doc.mde,
        max_days=doc.max_days,
        simulate=doc.simulate,
        sequential=doc.sequential,
    )


_KIND_OF = {"ExperimentSpec": "ab", "RolloutSpec": "did", "SyntheticSpec": "synthetic", "PowerSpec": "power"}

AnySpec = ExperimentSpec | RolloutSpec | SyntheticSpec | PowerSpec
"""Any validated spec (what :func:`abkit.spec.load_spec` returns)."""

_MAKE: dict[str, Callable[[Any, str | TableRef | None], _Data]] = {
    "ab": _experiment,
    "did": _rollout,
    "synthetic": _synthetic,
    "power": _plan,
}
_BODY = {"ab": "metrics", "did": "outcome", "synthetic": "outcome", "power": "metrics"}
_PANEL_KINDS = ("did", "synthetic")  # a unit x period panel with outcomes, no arms


@cache
def _data_adapter() -> TypeAdapter:
    return TypeAdapter(DataSource)


def _arm_to_check(raw: Mapping, kind: str, problems: Problems) -> tuple[str, Any] | None:
    """(variant column, control label) to look up in the data, when both are usable."""
    bad = problems.fields()
    if "variant" in bad or "control" in bad or kind in _PANEL_KINDS:
        return None
    variant = raw.get("variant", "variant" if kind == "ab" else None)
    if kind == "ab" and variant is None:
        variant = "variant"
    control = raw.get("control", "control")
    control = "control" if control is None else control
    if not isinstance(variant, str) or not variant.strip() or isinstance(control, bool):
        return None
    return (variant, control) if isinstance(control, (str, int)) else None


def _build(
    cls, raw: Any, *, origin: str | None, base_dir, check_data: bool, allow_source: bool, kind: str | None = None
):
    """Validate ``raw`` as a spec of ``cls`` (or of ``kind``), check its data, raise every problem at once."""
    kind = kind or _KIND_OF[cls.__name__]
    if origin is None:
        origin = str(raw.get("source")) if isinstance(raw, Mapping) and raw.get("source") else "spec"
    problems = Problems(origin)
    if not isinstance(raw, Mapping):
        problems.add(
            "", f"a spec must be a mapping of keys (name:, data:, {_BODY[kind]}: ...), got {type_name(raw)} {show(raw)}"
        )
        problems.raise_if_any()
    if kind == "synthetic" and raw.get("kind") == "did" and raw.get("method") in SYNTHETIC_METHODS:
        raw = {**raw, "kind": "synthetic"}  # a rollout spec that chose a synthetic method (issue 13.6)
    if (
        kind == "ab"
        and raw.get("kind") is None
        and "metrics" not in raw
        and any(k in raw for k in ("outcome", "unit", "first_treated"))
    ):
        problems.add("kind", "this looks like a rollout (difference-in-differences) spec; add `kind: did`")
    model = DOCUMENTS[kind]
    doc = None
    try:
        doc = model.model_validate(raw, context={"allow_source": allow_source})
    except ValidationError as exc:
        add_validation_errors(exc, model, problems, allow_source=allow_source)
    data = None
    if doc is not None:
        data = _resolve_data(doc.data, base_dir)
    elif raw.get("data") is not None and not any(w == "data" or w.startswith("data.") for w in problems.fields()):
        try:
            data = _resolve_data(_data_adapter().validate_python(raw["data"]), base_dir)
        except ValidationError:
            data = None
    spec = _MAKE[kind](doc, data) if doc is not None else None
    for i, m in enumerate(getattr(spec, "metrics", ()) if kind not in _PANEL_KINDS else ()):
        try:
            m.build(getattr(spec, "date", None), getattr(spec, "data_end", None))
        except AbkitError as exc:
            problems.add(f"metrics[{i}]", str(exc))
    if check_data and data is not None:
        check_against_data(
            data,
            raw.get("data"),
            named_columns(raw, kind),
            problems,
            arm=_arm_to_check(raw, kind, problems),
            two_arms=kind == "ab",
        )
    problems.raise_if_any()
    return spec
