"""Experiment specs: a small YAML file <-> typed, frozen objects, strictly validated.

A spec says which data to read and what to analyse; ``abkit readout`` turns
each spec into a notebook and an HTML page, with the template of its
``kind``: ``ab`` (default; :class:`ExperimentSpec`), ``did`` (a rollout
analysed by difference-in-differences; :class:`RolloutSpec`), ``synthetic`` (a
launch in one or a few markets, read by synthetic DiD or synthetic control;
:class:`SyntheticSpec`) or ``power`` (a test plan; :class:`PowerSpec`). Everything is checked *before* any notebook
runs: unknown keys (with the closest valid key suggested), wrong types,
impossible values, and that the data file (or table) exists and holds every
column the spec names, with numbers where numbers are needed.

One job per module:

* :mod:`~abkit.spec.models`: the spec format as typed pydantic models (every field, its type, range,
  default and description) and its JSON Schema (``abkit schema``);
* :mod:`~abkit.spec.yaml_loading`: reading a file as untrusted input (bounded size, alias
  expansion and nesting; repeated keys refused; ``yaml.safe_load``);
* :mod:`~abkit.spec.data_checks`: the spec against its data (columns, types, the control arm);
* :mod:`~abkit.spec.validated`: the frozen spec objects the readouts use;
* :mod:`~abkit.spec.problems`: every problem worded with its field, the value seen and the fix;
* :mod:`~abkit.spec.loader`: :func:`load_spec` and :func:`spec_from_dict`.

A/B test (``kind: ab``), e.g. ``specs/instant_refunds.yaml``::

    name: Instant refunds for low-value returns     # required
    owner: Returns team                             # owner, description, hypothesis: optional text
    hypothesis: Refunding low-value returns at drop-off cuts refund contacts.
    start: 2026-09-01                               # optional dates (days run, when no `date` column)
    end: 2026-09-28
    data: ../data/aftersales_ab.parquet             # relative to this file; parquet file or folder, or CSV
    variant: variant                                # default "variant"
    control: control                                # default "control"; a number when the column holds numbers
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
      conf: {spark.master: "local[4]"}  # an allow-listed setting (models.SPARK_CONF_ALLOWED)

>>> spec = load_spec("specs/instant_refunds.yaml")           # doctest: +SKIP
>>> spec.primary.name, [g.name for g in spec.guardrails]      # doctest: +SKIP
('refund_rate', ['abuse_loss_per_order'])
>>> ExperimentSpec.from_dict(spec.to_dict()) == spec           # doctest: +SKIP
True

Every problem raises :class:`abkit.SpecError`; its message names the file,
the field (``metrics[2].numerator``), the value seen and the fix, and its
``problems`` attribute lists (field, message) pairs. All problems of one file
are reported together.
"""

from __future__ import annotations

from .data_checks import data_columns
from .loader import load_spec, spec_from_dict
from .models import KINDS, SPARK_CONF_ALLOWED, spec_json_schema
from .validated import (
    AnySpec,
    ExperimentSpec,
    MetricSpec,
    OutcomeSpec,
    PowerSpec,
    RolloutSpec,
    SyntheticSpec,
)

__all__ = [
    "AnySpec",
    "KINDS",
    "SPARK_CONF_ALLOWED",
    "ExperimentSpec",
    "MetricSpec",
    "OutcomeSpec",
    "PowerSpec",
    "RolloutSpec",
    "SyntheticSpec",
    "data_columns",
    "load_spec",
    "spec_from_dict",
    "spec_json_schema",
]
