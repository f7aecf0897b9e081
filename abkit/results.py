"""Result objects: tidy frames, HTML for JupyterLab, plots."""
from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._html import ALERT, MUTED, Html, bold, esc, html_table
from .metrics import Metric
from .stats.checks import SRMResult

__all__ = ["ExperimentResult", "format_p", "format_pct", "format_number", "p_text", "interval_text"]

COLUMNS = [
    "metric", "variant", "control_value", "treatment_value", "effect", "ci_lower", "ci_upper",
    "rel_effect", "rel_ci_lower", "rel_ci_upper", "p_value", "n_control", "n_treatment", "method",
]


def format_p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "n/a"
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}"


def p_text(p: float | None, label: str = "p") -> str:
    """A p-value in a sentence: ``"p = 0.041"``, ``"p < 0.001"``, ``"Holm-adjusted p = 0.876"``.

    Three decimals (the tables' ``format_p``), and "< 0.001" below that: never
    ``p = <0.001`` nor a number like ``5.19e-33`` that only suggests precision.
    """
    if p is None or not np.isfinite(p):
        return f"{label} n/a"
    if p < 0.001:
        return f"{label} < 0.001"
    return f"{label} = {p:.3f}"


def _fixed(x: float, decimals: int) -> str:
    """``x`` with ``decimals`` decimals and thousands separators; never ``-0.000``."""
    if x is None or not np.isfinite(x):
        return "n/a"
    if round(x, decimals) == 0:
        x = 0.0
    return f"{x:,.{decimals}f}"


def _decimals_for(lo: float, hi: float, digits: int = 3) -> int | None:
    """Decimals that show an interval's width with about ``digits`` significant digits (None: no finite width)."""
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    width = abs(hi - lo)
    if width == 0:
        width = max(abs(lo), abs(hi))
    if width == 0:
        return 0
    return int(min(12, max(0, digits - 1 - np.floor(np.log10(width)))))


def interval_text(estimate: float, lower: float, upper: float) -> tuple[str, str]:
    """``(estimate, "[lower, upper]")`` with one number of decimals for all three, chosen from the width.

    ``[-0.00707, -0.000928]`` becomes ``[-0.00707, -0.00093]``: the interval's
    width is shown to about 3 significant digits and both bounds (and the
    estimate) get the same decimals, so they line up and compare at a glance.
    """
    d = _decimals_for(lower, upper)
    if d is None:
        return format_number(estimate, 3), f"[{format_number(lower, 3)}, {format_number(upper, 3)}]"
    return _fixed(estimate, d), f"[{_fixed(lower, d)}, {_fixed(upper, d)}]"


def format_pct(x: float, digits: int = 1, sign: bool = True) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x * 100:+.{digits}f}%" if sign else f"{x * 100:.{digits}f}%"


def format_number(x: float, sig: int = 4) -> str:
    """Round to ``sig`` significant digits, with thousands separators for big numbers."""
    if x is None or not np.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    mag = int(np.floor(np.log10(abs(x))))
    if mag >= sig - 1:
        return f"{x:,.0f}"
    decimals = max(sig - 1 - mag, 0)
    return f"{x:,.{decimals}f}"


def _points(x: float) -> str:
    """A signed change in NPS points, 2 decimals: ``+1.25``, ``-0.27``."""
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:+.2f}"


@dataclass(frozen=True)
class ExperimentResult:
    """Effects of every treatment arm on every metric, plus health checks.

    Use :meth:`to_frame` for one tidy row per metric x comparison; the
    object renders as a table in JupyterLab; :meth:`plot` draws the relative
    lifts with their confidence intervals.

    ``sequential`` is True when every CI and p-value is always valid
    (``analyze(..., sequential=True)``; ``sequential_note`` says how the
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
    prior: object = None
    integrity: object = None

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

    # ------------------------------------------------------------------ show
    def summary(self) -> str:
        """The result as plain text (what ``print(result)`` shows).

        A header (metrics, arms, alpha, correction), the sample-ratio check,
        the unit-integrity check when asked for, then one line per metric x
        treatment arm: control -> treatment value, the relative lift with its
        (1 - alpha) CI, and the p-value decisions use (the adjusted one with a
        correction). NPS lines lead with the change in NPS points (its CI),
        then the relative lift.
        """
        lines = [f"A/B result: {len(self.metrics)} metric(s), arms {list(self.arms)} "
                 f"(control {self.control!r}), alpha {self.alpha}"
                 + (f", {self.correction} correction" if self.correction else "")
                 + (", always-valid (sequential) intervals" if self.sequential else "")]
        lines.append(self.srm.summary())
        if self.integrity is not None:
            lines.append(("" if self.integrity.clean else "WARNING: ") + self.integrity.summary())
        kinds = {m.name: m.kind for m in self.metrics}
        for r in self.rows:
            p = self.decision_p(r)
            if kinds.get(r["metric"]) == "nps":     # NPS is read in points: 19.9 -> 19.7 is -0.27 points
                change = (f"{_points(r['effect'])} points [{_points(r['ci_lower'])}, {_points(r['ci_upper'])}] "
                          f"({format_pct(r['rel_effect'], 2)} relative)")
            else:
                change = (f"{format_pct(r['rel_effect'], 2)} [{format_pct(r['rel_ci_lower'], 2)}, "
                          f"{format_pct(r['rel_ci_upper'], 2)}]")
            lines.append(
                f"  {r['metric']} [{r['variant']} vs {self.control}]: "
                f"{format_number(r['control_value'])} -> {format_number(r['treatment_value'])}, "
                f"{change}, p {format_p(p)}"
            )
        return "\n".join(lines)

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return results_table_html(self)

    def plot(self, ax=None, variant: Hashable | None = None):
        """Forest plot of relative lifts with (1 - alpha) CIs, one row per metric."""
        from .plots import plot_lifts

        return plot_lifts(self, ax=ax, variant=variant)


_COLOURS = {"better": "#1a7f37", "worse": "#cf222e", "neutral": "#57606a"}


def results_table_html(result: ExperimentResult, notes: bool = True) -> str:
    """The metric table as escaped HTML (used in JupyterLab and the readouts).

    With ``notes`` the SRM check and the dropped-units counts follow the table.
    """
    corr = result.correction is not None
    head = ["Metric", "Arm", "Control", "Treatment", "Abs. effect", f"{1 - result.alpha:.0%} CI",
            "Rel. lift", f"{1 - result.alpha:.0%} CI (rel.)", "p-value"]
    head += ([f"p ({result.correction})"] if corr else []) + ["n control", "n treatment", "Var. reduction"]
    rows = []
    for r in result.rows:
        vr = r.get("variance_reduction")
        rows.append([
            Html(f"{bold(r['metric'])}<br><small>{esc(r['better'])} is better</small>"), r["variant"],
            format_number(r["control_value"]), format_number(r["treatment_value"]),
            *interval_text(r["effect"], r["ci_lower"], r["ci_upper"]),
            Html(f'<span style="color:{_COLOURS[result.outcome(r)]};font-weight:600">'
                 f'{format_pct(r["rel_effect"], 2)}</span>'),
            f"[{format_pct(r['rel_ci_lower'], 2)}, {format_pct(r['rel_ci_upper'], 2)}]", format_p(r["p_value"]),
            *([format_p(r.get("p_value_adjusted", np.nan))] if corr else []), f"{r['n_control']:,}",
            f"{r['n_treatment']:,}",
            format_pct(vr, 1, sign=False) if vr is not None and np.isfinite(vr) else Html("&ndash;")])
    lines = []
    if notes:
        lines.append((result.srm.summary(), ALERT if result.srm.mismatch else MUTED))
        if result.integrity is not None:
            lines.append((result.integrity.summary(), MUTED if result.integrity.clean else ALERT))
        if result.sequential:
            lines.append(result.sequential_note)
        if result.prior is not None:
            lines.append(f"Bayesian reading ({result.prior.describe()}): " + "; ".join(
                f"{r['metric']} [{r['variant']}]: P(better) {r['prob_better']:.0%}, "
                f"expected loss {format_pct(r['expected_loss'], 2, False)}" for r in result.rows))
        dropped = [f"{m}: {d:,} units dropped for missing values" for m, d in result.dropped_units().items() if d]
        if result.missing_variant:
            dropped.append(f"{result.missing_variant:,} rows without a variant dropped")
        if dropped:
            lines.append("; ".join(dropped))
    return html_table(head, rows, notes=lines)
