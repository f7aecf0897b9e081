"""Result objects: tidy frames, HTML for JupyterLab, plots."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._html import ALERT, MUTED, Cell, html_table
from .formatting import (
    ABSOLUTE,
    POINTS,
    RELATIVE_TO_SIZE,
    change_scale,
    format_number,
    format_p,
    format_pct,
    format_points,
    format_relative,
    interval_text,
    p_text,
    signed_interval,
)
from .metrics import Metric
from .stats.checks import SRMResult

if TYPE_CHECKING:
    from .integrity import Integrity
    from .stats.bayes import NormalPrior

__all__ = ["ExperimentResult", "format_p", "format_pct", "format_number", "p_text", "interval_text"]

COLUMNS = [
    "metric",
    "variant",
    "control_value",
    "treatment_value",
    "effect",
    "ci_lower",
    "ci_upper",
    "rel_effect",
    "rel_ci_lower",
    "rel_ci_upper",
    "p_value",
    "n_control",
    "n_treatment",
    "method",
]


@dataclass(frozen=True)
class ExperimentResult:
    """Effects of every treatment arm on every metric, plus health checks.

    Use :meth:`to_frame` for one tidy row per metric x comparison; the
    object renders as a table in JupyterLab; :meth:`plot` draws the relative
    lifts with their confidence intervals.

    ``sequential`` is True when every CI and p-value is always valid
    (``analyze(..., sequential=AlwaysValid(planned_n=...))``; ``sequential_note`` says how the
    confidence sequences were tuned). ``prior`` is the prior of the
    Bayesian columns (``analyze(..., bayesian=True)``; see :meth:`bayes`),
    or None. ``integrity`` is the unit-integrity check
    (:class:`abkit.integrity.Integrity`: assignment leaks, duplicated units,
    duplicate rows) when ``analyze(..., unit=...)`` was asked for, else None.
    """

    rows: tuple
    metrics: tuple[Metric, ...]
    arms: tuple
    control: Hashable
    alpha: float
    correction: str | None
    srm: SRMResult
    missing_variant: int = 0
    variant: str = "variant"
    sequential: bool = False
    sequential_note: str = ""
    prior: NormalPrior | None = None
    integrity: Integrity | None = None

    # ------------------------------------------------------------------ data
    def to_frame(self) -> pd.DataFrame:
        """One row per metric x treatment arm, with the columns of DESIGN.md first."""
        df = pd.DataFrame(list(self.rows))
        extra = [c for c in df.columns if c not in COLUMNS]
        return df[[*COLUMNS, *extra]]

    def bayes(self) -> pd.DataFrame:
        """The Bayesian reading, one row per metric x arm (needs ``analyze(..., bayesian=True)``).

        ``prob_better`` = P(treatment beats control in the metric's good
        direction); ``expected_loss`` / ``expected_loss_control`` = expected
        relative lift given up by shipping the treatment / keeping control;
        ``post_rel_*`` = posterior mean and credible interval of the relative
        lift under the prior ``prior_sd`` (see :mod:`abkit.stats.bayes`).
        NaN for a row whose control value is not distinguishable from zero
        (no bounded relative lift to update).
        """
        from .errors import AbkitError
        from .stats.bayes import BAYES_COLUMNS

        if self.prior is None:
            raise AbkitError("this result has no Bayesian columns; run abkit.analyze(..., bayesian=True)")
        return self.to_frame()[["metric", "variant", "rel_effect", "rel_se", *BAYES_COLUMNS]]

    @property
    def treatments(self) -> tuple:
        return tuple(a for a in self.arms if a != self.control)

    def metric(self, name: str) -> Metric:
        """The metric definition named ``name`` (e.g. ``result.metric("refund_rate").covariates``).

        Raises :class:`abkit.AbkitError` listing the metric names when there
        is none; :meth:`row` gives the metric's numbers.
        """
        for m in self.metrics:
            if m.name == name:
                return m
        from .errors import AbkitError

        raise AbkitError(f"no metric named '{name}'; metrics: {[m.name for m in self.metrics]}")

    def row(self, metric: str, variant: Hashable | None = None) -> dict:
        """The result row of one metric (and arm; default the only/first treatment)."""
        self.metric(metric)
        variant = self.treatments[0] if variant is None else variant
        for r in self.rows:
            if r["metric"] == metric and r["variant"] == variant:
                return dict(r)
        from .errors import AbkitError

        raise AbkitError(f"no result for metric '{metric}' and arm {variant!r}; arms: {list(self.treatments)}")

    def decision_p(self, row: dict) -> float:
        """The p-value decisions use: the adjusted one when a correction was asked for."""
        return row.get("p_value_adjusted", row["p_value"])

    def outcome(self, row: dict) -> str:
        """'better', 'worse' or 'neutral' for one row, given the metric's good direction."""
        if not (self.decision_p(row) < self.alpha):
            return "neutral"
        up = row["effect"] > 0
        good = up if row["better"] == "higher" else not up
        return "better" if good else "worse"

    def dropped_units(self) -> dict:
        """Units dropped for missing values, per metric (all arms together)."""
        out: dict = {}
        for r in self.rows:
            if r["metric"] not in out:
                out[r["metric"]] = r["dropped_control"]
            out[r["metric"]] += r["dropped_treatment"]
        return out

    def _notes(self, near_zero: bool = False) -> list[str]:
        """Plain-text notes under the rows: units left out (no arm; missing values), near-zero baselines."""
        notes = []
        if self.missing_variant:
            notes.append(
                f"{self.missing_variant:,} rows without a value in '{self.variant}' (no arm) were left out "
                "of every number"
            )
        for metric, dropped in self.dropped_units().items():
            if dropped:
                notes.append(f"{metric}: {dropped:,} units dropped for missing values")
        if near_zero:
            notes.append(
                "* relative lift n/a: control's value is not distinguishable from zero, so no relative "
                "change is bounded by the data; read the absolute effect"
            )
        if any(change_scale(r) == RELATIVE_TO_SIZE for r in self.rows):
            notes.append(
                "relative lifts of a negative control value are (treatment - control) / |control|: positive = up"
            )
        return notes

    # ------------------------------------------------------------------ show
    def summary(self) -> str:
        """The result as plain text (what ``print(result)`` shows).

        A header (metrics, arms, alpha, correction), the sample-ratio check,
        the unit-integrity check when asked for, then one line per metric x
        treatment arm: control -> treatment value, the relative lift with its
        (1 - alpha) CI, and the p-value decisions use (the adjusted one with a
        correction). NPS lines lead with the change in NPS points (its CI),
        then the relative lift. A negative control value's lift is relative
        to its size ("of |control|"); a control value not distinguishable
        from zero gets the absolute effect instead (no bounded relative lift;
        :mod:`abkit.stats.two_sample`). Notes at the end count the rows without an
        arm and the units dropped for missing values.
        """
        lines = [
            f"A/B result: {len(self.metrics)} metric(s), arms {list(self.arms)} "
            f"(control {self.control!r}), alpha {self.alpha}"
            + (f", {self.correction} correction" if self.correction else "")
            + (", always-valid (sequential) intervals" if self.sequential else "")
        ]
        lines.append(self.srm.summary())
        if self.integrity is not None:
            lines.append(("" if self.integrity.clean else "WARNING: ") + self.integrity.summary())
        kinds = {m.name: m.kind for m in self.metrics}
        near_zero = False
        for r in self.rows:
            p = self.decision_p(r)
            scale = change_scale(r, kinds.get(r["metric"]))
            rel_scale = change_scale(r)  # the relative lift as such (also for an NPS)
            if rel_scale == ABSOLUTE:
                near_zero = True
            if scale == POINTS:  # NPS is read in points: 19.9 -> 19.7 is -0.27 points
                rel = (
                    "relative n/a"
                    if rel_scale == ABSOLUTE
                    else f"{format_pct(r['rel_effect'], 2)} "
                    + ("of |control|" if rel_scale == RELATIVE_TO_SIZE else "relative")
                )
                change = (
                    f"{format_points(r['effect'])} points [{format_points(r['ci_lower'])}, "
                    f"{format_points(r['ci_upper'])}] ({rel})"
                )
            elif scale == ABSOLUTE:
                e, lo, hi = signed_interval(r["effect"], r["ci_lower"], r["ci_upper"])
                change = f"effect {e} [{lo}, {hi}] (relative n/a*)"
            else:
                change = (
                    f"{format_pct(r['rel_effect'], 2)} [{format_pct(r['rel_ci_lower'], 2)}, "
                    f"{format_pct(r['rel_ci_upper'], 2)}]" + (" of |control|" if scale == RELATIVE_TO_SIZE else "")
                )
            lines.append(
                f"  {r['metric']} [{r['variant']} vs {self.control}]: "
                f"{format_number(r['control_value'])} -> {format_number(r['treatment_value'])}, "
                f"{change}, p {format_p(p)}"
            )
        lines += [f"  {note}" for note in self._notes(near_zero)]
        return "\n".join(lines)

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return results_table_html(self)

    def plot(self, ax=None, variant: Hashable | None = None):
        """Forest plot of relative lifts with (1 - alpha) CIs, one row per metric."""
        # plots never imports results (no circle); matplotlib loads on use
        from .plots import plot_lifts

        return plot_lifts(self, ax=ax, variant=variant)


def _rel_cell(r: dict) -> str:
    """The relative lift of a table row (``n/a*`` near zero: see the table's notes)."""
    return format_relative(r, 2, near_zero="n/a*")


def results_table_html(result: ExperimentResult, notes: bool = True) -> str:
    """The metric table as escaped HTML (used in JupyterLab and the readouts).

    With ``notes`` the SRM check and the dropped-units counts follow the table.
    """
    corr = result.correction is not None
    head = [
        "Metric",
        "Arm",
        "Control",
        "Treatment",
        "Abs. effect",
        f"{1 - result.alpha:.0%} CI",
        "Rel. lift",
        f"{1 - result.alpha:.0%} CI (rel.)",
        "p-value",
    ]
    head += ([f"p ({result.correction})"] if corr else []) + ["n control", "n treatment", "Var. reduction"]
    rows = []
    for r in result.rows:
        vr = r.get("variance_reduction")
        rows.append(
            [
                Cell(strong=r["metric"], note=f"{r['better']} is better"),
                r["variant"],
                format_number(r["control_value"]),
                format_number(r["treatment_value"]),
                *interval_text(r["effect"], r["ci_lower"], r["ci_upper"]),
                Cell(_rel_cell(r), tone=result.outcome(r)),
                f"[{format_pct(r['rel_ci_lower'], 2)}, {format_pct(r['rel_ci_upper'], 2)}]",
                format_p(r["p_value"]),
                *([format_p(r.get("p_value_adjusted", np.nan))] if corr else []),
                f"{r['n_control']:,}",
                f"{r['n_treatment']:,}",
                format_pct(vr, 1, sign=False) if vr is not None and np.isfinite(vr) else "\u2013",
            ]
        )
    lines: list[str | tuple[str, str]] = []
    if notes:
        lines.append((result.srm.summary(), ALERT if result.srm.mismatch else MUTED))
        if result.integrity is not None:
            lines.append((result.integrity.summary(), MUTED if result.integrity.clean else ALERT))
        if result.sequential:
            lines.append(result.sequential_note)
        if result.prior is not None:
            lines.append(
                f"Bayesian reading ({result.prior.describe()}): "
                + "; ".join(
                    f"{r['metric']} [{r['variant']}]: "
                    + (
                        f"P(better) {r['prob_better']:.0%}, expected loss {format_pct(r['expected_loss'], 2, False)}"
                        if np.isfinite(r["prob_better"])
                        else "n/a (control's value is not distinguishable from zero: no relative lift to update)"
                    )
                    for r in result.rows
                )
            )
        lines += result._notes(any(change_scale(r) == ABSOLUTE for r in result.rows))
    return html_table(head, rows, notes=lines)
