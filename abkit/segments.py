"""Effects by segment (market, category, new vs repeat buyer), heterogeneity, forest plot.

:func:`analyze_segments` aggregates the moments once with ``by=`` the
segment column(s), analyses each segment with :func:`abkit.analyze` (so each
segment gets its own CUPED slope: the regression ``y ~ segment * (arm + x)``),
corrects the p-values of all segment comparisons for multiple testing, and
tests per metric x arm whether the effect differs between segments.

**Heterogeneity test** (Cochran 1954, "The combination of estimates from
different experiments", Biometrics 10). With segment effects ``d_s`` and
their variances ``v_s`` (independent segments), ``w_s = 1 / v_s``:

    d_w = sum w_s d_s / sum w_s,      Q = sum w_s (d_s - d_w)^2  ~  chi2(S - 1)

under the null of one common effect. For a Mean without covariates ``Q`` is
exactly the joint Wald test that all treatment x segment interactions are
zero in the OLS ``y ~ C(segment) * treat`` with HC2 standard errors
(the per-segment Welch variances are the HC2 variances of a saturated
model; the interactions are contrasts of the ``d_s``). ``I^2 = max(0, (Q -
(S - 1)) / Q)`` is the share of the spread of the segment effects that is
not sampling noise (Higgins and Thompson 2002, Stat. Med. 21).

Looking at many segments finds "significant" ones by chance: the segment
p-values are adjusted (Holm by default, or Benjamini-Hochberg) over every
segment x metric x arm comparison of the result, and the heterogeneity test,
not a significant segment, is the evidence that effects differ.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._html import Cell, html_table
from .errors import AbkitError, DataError
from .formatting import format_p, format_pct, format_relative
from .metrics import Metric
from .moments import MomentSet
from .results import ExperimentResult
from .stats.distributions import chi2_sf
from .stats.multiple import adjust

__all__ = ["analyze_segments", "SegmentResult", "cochran_q"]


def cochran_q(effects, variances) -> dict:
    """Cochran's Q test that independent estimates share one effect.

    Returns ``Q``, ``df = S - 1``, ``p_value`` (chi-square survival
    function), ``i2`` (Higgins' I^2), and the inverse-variance pooled
    ``pooled_effect`` with ``pooled_se``. Estimates with a non-finite or
    non-positive variance are left out.
    """
    d = np.asarray(effects, dtype=np.float64).ravel()
    v = np.asarray(variances, dtype=np.float64).ravel()
    ok = np.isfinite(d) & np.isfinite(v) & (v > 0)
    d, v = d[ok], v[ok]
    S = d.size
    if S < 2:
        return {
            "Q": np.nan,
            "df": max(S - 1, 0),
            "p_value": np.nan,
            "i2": np.nan,
            "pooled_effect": float(d[0]) if S else np.nan,
            "pooled_se": float(np.sqrt(v[0])) if S else np.nan,
            "n_segments": S,
        }
    w = 1.0 / v
    pooled = float(np.sum(w * d) / np.sum(w))
    Q = float(np.sum(w * (d - pooled) ** 2))
    df = S - 1
    return {
        "Q": Q,
        "df": df,
        "p_value": float(chi2_sf(Q, df)),
        "i2": float(max(0.0, (Q - df) / Q)) if Q > 0 else 0.0,
        "pooled_effect": pooled,
        "pooled_se": float(np.sqrt(1.0 / np.sum(w))),
        "n_segments": S,
    }


@dataclass(frozen=True)
class SegmentResult:
    """Per-segment effects of every metric x arm, heterogeneity tests, and the overall result.

    ``to_frame()``: the segment column(s) then the columns of
    :meth:`abkit.ExperimentResult.to_frame` (with ``p_value_adjusted`` when
    a correction was asked for). ``heterogeneity()``: one row per metric x
    arm (Cochran's Q, df, p-value, I^2). ``overall``: the pooled
    :class:`abkit.ExperimentResult`. ``plot()``: forest plot.
    """

    rows: tuple
    by: tuple[str, ...]
    metrics: tuple[Metric, ...]
    arms: tuple
    control: Hashable
    alpha: float
    correction: str | None
    overall: ExperimentResult
    tests: tuple
    segments: tuple
    skipped: tuple = field(default=())
    not_estimable: tuple = field(default=())
    no_segment: int = 0
    unadjusted: tuple = field(default=())
    """``{segment column(s): value, "metric", "covariates", "kept"}`` per segment x metric estimated without the
    ratio covariates named (their denominator is 0 for every unit of the segment: new buyers, no pre-period),
    adjusted for the ``kept`` ones only."""

    def to_frame(self) -> pd.DataFrame:
        df = pd.DataFrame(list(self.rows))
        first = [*self.by, "metric", "variant"]
        return df[[*first, *[c for c in df.columns if c not in first]]]

    def heterogeneity(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.tests))

    def segment(self, value) -> pd.DataFrame:
        """The rows of one segment."""
        df = self.to_frame()
        want = value if isinstance(value, tuple) else (value,)
        mask = np.ones(len(df), dtype=bool)
        for col, v in zip(self.by, want):
            mask &= (df[col] == v).to_numpy()
        if not mask.any():
            raise AbkitError(f"segment {value!r} not in the result; segments: {list(self.segments)[:20]}")
        return df[mask]

    def decision_p(self, row: dict) -> float:
        return row.get("p_value_adjusted", row["p_value"])

    def summary(self) -> str:
        lines = [
            f"Segment result by {', '.join(self.by)}: {len(self.segments)} segments, "
            f"{len(self.metrics)} metric(s)" + (f", {self.correction} correction" if self.correction else "")
        ]
        for t in self.tests:
            lines.append(
                f"  {t['metric']} [{t['variant']}]: heterogeneity Q = {t['Q']:.2f} on {t['df']} df, "
                f"p {format_p(t['p_value'])}, I2 {t['i2']:.0%}"
                if np.isfinite(t["Q"])
                else f"  {t['metric']} [{t['variant']}]: fewer than 2 segments with an estimate"
            )
        if self.not_estimable:
            lines.append(
                f"  not estimable: {len(self.not_estimable)} segment x metric x arm cell(s) (see not_estimable)"
            )
        elif self.skipped:
            lines.append(f"  skipped (too few units): {len(self.skipped)} segment x metric cell(s)")
        return "\n".join(lines)

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        corr = self.correction is not None
        head = (
            [
                *self.by,
                "Metric",
                "Arm",
                "Control",
                "Treatment",
                "Rel. lift",
                f"{1 - self.alpha:.0%} CI (rel.)",
                "p-value",
            ]
            + ([f"p ({self.correction})"] if corr else [])
            + ["n control", "n treatment"]
        )
        rows = [
            [
                *(r[b] for b in self.by),
                r["metric"],
                r["variant"],
                f"{r['control_value']:.4g}",
                f"{r['treatment_value']:.4g}",
                format_relative(r, 2, near_zero="n/a (control \u2248 0)"),
                f"[{format_pct(r['rel_ci_lower'], 2)}, {format_pct(r['rel_ci_upper'], 2)}]",
                format_p(r["p_value"]),
                *([format_p(r.get("p_value_adjusted", np.nan))] if corr else []),
                f"{r['n_control']:,}",
                f"{r['n_treatment']:,}",
            ]
            for r in self.rows
        ]
        tests = [
            [
                t["metric"],
                t["variant"],
                t["n_segments"],
                *(
                    [f"{t['Q']:.2f}", t["df"], format_p(t["p_value"]), f"{t['i2']:.0%}"]
                    if np.isfinite(t["Q"])
                    else [Cell("fewer than 2 segments", colspan=4)]
                ),
            ]
            for t in self.tests
        ]
        notes = []
        if self.not_estimable:
            cells = "; ".join(
                f"{' / '.join(str(r[b]) for b in self.by)} ({r['metric']}, {r['variant']}): {r['reason']}"
                for r in self.not_estimable[:20]
            )
            notes.append(f"Not estimable: {cells}" + (" ..." if len(self.not_estimable) > 20 else ""))
        elif self.skipped:
            cells = ", ".join(f"{s} / {m}" for s, m in self.skipped[:20])
            notes.append(
                f"Not estimated (an arm has fewer than 2 units): {cells}" + (" ..." if len(self.skipped) > 20 else "")
            )
        heterogeneity = ["Metric", "Arm", "Segments", "Cochran's Q", "df", "p (heterogeneity)", "I\u00b2"]
        return html_table(head, rows) + "\n" + html_table(heterogeneity, tests, notes=notes)

    def plot(self, metric: str | None = None, variant: Hashable | None = None, relative: bool = True, ax=None):
        """Forest plot per metric x arm: segment effects with CIs, the overall effect, Cochran's Q."""
        from .plots import plot_segments

        return plot_segments(self, metric=metric, variant=variant, relative=relative, ax=ax)


def _ready(ms: MomentSet, metric: Metric, arms: Sequence) -> bool:
    try:
        block = ms.block_for(metric.columns, metric.dropna)
    except AbkitError:
        return False
    pos = {g: i for i, g in enumerate(block.groups)}
    return all(a in pos and block.n[pos[a]] >= 2 for a in arms)


def _sort_key(v):
    return (v is None, str(type(v)), v) if not isinstance(v, tuple) else (False, "tuple", tuple(map(str, v)))


def analyze_segments(
    data,
    metrics: Sequence[Metric] | Metric,
    by: str | Sequence[str],
    variant: str = "variant",
    control: Hashable = "control",
    alpha: float = 0.05,
    correction: str | None = "holm",
    allocation: Mapping | Sequence[float] | None = None,
) -> SegmentResult:
    """Effects of every treatment arm on every metric within each segment of ``by``.

    Parameters
    ----------
    data : DataFrame, pyarrow Table, parquet/CSV path, or a MomentSet from
        ``abkit.moments(data, metrics, by=by)``.
    metrics : moment-based metrics (Mean, Proportion, Ratio, NPS; CUPED/Lin),
        or time-to-event ones (:class:`abkit.TimeToEvent`, then all of them:
        ``data`` must be the rows, not moments). A time-to-event metric's
        segment effect is what :func:`abkit.analyze` reports for it on the
        segment's rows (restricted-mean difference within the horizon, each
        arm's pseudo-observations from its own Kaplan-Meier curve in that
        segment), from one grouped count (:func:`abkit.time_to_event.event_counts_by`);
        a segment whose arm has fewer than 2 units, no event before the
        horizon or nobody at risk at it is listed in ``not_estimable`` with
        the reason (:func:`abkit.time_to_event.estimability`), and ``overall``
        is :func:`abkit.analyze` on all the rows.
    by : the segment column (``"market"``) or columns (``["market", "new_buyer"]``).
    variant, control, alpha : as in :func:`abkit.analyze`.
    correction : ``"holm"`` (default), ``"bh"`` or ``None``, over every
        segment x metric x arm comparison.
    allocation : planned shares, for the overall sample-ratio check.

    Returns
    -------
    :class:`SegmentResult` with ``to_frame()``, ``heterogeneity()``,
    ``overall``, ``plot()``. A segment in which an arm has fewer than 2
    units for a metric is skipped for that metric and listed in ``skipped``.
    """
    from .aggregation import check_metrics, moments, resolve_caps
    from .analysis import analyze

    metrics = check_metrics(metrics)
    by = (by,) if isinstance(by, str) else tuple(by)
    if not by:
        raise AbkitError("by= needs a segment column, e.g. by='market'")
    if isinstance(correction, str):
        correction = correction.strip().lower()
    if correction is not None and correction not in ("holm", "bh"):
        raise AbkitError(f"correction={correction!r} is not known; use 'holm', 'bh' or None")
    if any(m.kind == "time_to_event" for m in metrics):
        return _time_to_event_segments(data, metrics, by, variant, control, alpha, correction, allocation)
    if isinstance(data, MomentSet):
        if tuple(data.by) != by:
            raise AbkitError(
                f"these moments are split by {list(data.by)}, not {list(by)}; aggregate with "
                f"abkit.moments(data, metrics, by={list(by)!r})"
            )
        ms = data
    else:
        metrics = resolve_caps(data, metrics)  # winsorizing caps, once, on all segments pooled
        ms = moments(data, metrics, variant=variant, by=list(by))
    segments = sorted(ms.segments, key=_sort_key)
    rows, skipped, unadjusted, overall_ms = [], [], [], None
    for seg in segments:
        sub = ms.segment(seg)
        overall_ms = sub if overall_ms is None else overall_ms + sub
        arms = list(sub.rows)
        if control not in arms or len(arms) < 2:
            skipped += [(seg, m.name) for m in metrics]
            continue
        ready = [m for m in metrics if _ready(sub, m, arms)]
        skipped += [(seg, m.name) for m in metrics if m not in ready]
        if not ready:
            continue
        labels = seg if isinstance(seg, tuple) else (seg,)
        used = []
        for m in ready:
            sub, plain, note = _without_undefined_covariates(sub, m, arms)
            used.append(plain)
            if note:
                unadjusted.append({**dict(zip(by, labels)), "metric": m.name, **note})
        res = analyze(sub, used, control=control, alpha=alpha)
        for r in res.rows:
            rows.append({**dict(zip(by, labels)), **r})
    if not rows:
        raise DataError(f"no segment of {list(by)} has at least 2 units per arm for any metric")
    overall = analyze(overall_ms, metrics, control=control, alpha=alpha, allocation=allocation)
    _adjust_rows(rows, correction)
    tests = _heterogeneity(rows, metrics, overall.treatments)
    return SegmentResult(
        rows=tuple(rows),
        by=by,
        metrics=tuple(metrics),
        arms=overall.arms,
        control=control,
        alpha=float(alpha),
        correction=correction,
        overall=overall,
        tests=tuple(tests),
        segments=tuple(segments),
        skipped=tuple(skipped),
        unadjusted=tuple(unadjusted),
    )


def _without_undefined_covariates(ms: MomentSet, metric: Metric, arms: Sequence) -> tuple[MomentSet, Metric, dict]:
    """``ms`` and ``metric`` without the ratio covariates whose denominator is zero for every unit of every arm
    of this segment, and ``{"covariates": dropped, "kept": the others}`` (empty when none is dropped).

    A segment with no pre-period (new buyers: ``pre_orders`` is 0 for all of
    them) has nothing to adjust on: CUPED's covariate is undefined in every
    arm, and the segment's effect without it is the estimate (the adjustment
    only reduces variance; either way the effect is the same difference of
    arm means). A covariate undefined in some arms only is left in: the
    estimator then refuses, with the arm named. A metric read on complete
    cases (``dropna``, e.g. windowed) keeps its rows: the moments of its other
    columns over the same rows are added to ``ms``. Two covariates chosen Lin
    by default become CUPED when one is left.
    """
    from .stats.two_sample import linearize

    if not metric.covariates:
        return ms, metric, {}
    block = ms.block_for(metric.columns, metric.dropna)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = [linearize(block, a, metric.covariates)[0] for a in arms]
    gone = [i for i in range(len(metric.covariates)) if not any(np.isfinite(v[i]) for v in values)]
    if not gone:
        return ms, metric, {}
    kept = tuple(c for i, c in enumerate(metric.covariates) if i not in gone)
    options = dict(metric.options)
    by_default = options.pop("lin_by_default", False) if len(kept) < 2 else False
    plain = copy.copy(metric)
    object.__setattr__(plain, "covariates", kept)
    object.__setattr__(plain, "method", ("cuped" if by_default else metric.method) if kept else None)
    object.__setattr__(plain, "options", tuple(sorted(options.items())))
    if metric.dropna:  # the same complete cases, fewer columns
        blocks = {**ms.blocks, (tuple(plain.columns), True): block.select(columns=plain.columns)}
        ms = MomentSet(blocks, ms.variant, ms.by, ms.rows, ms.missing_variant)
    note = {"covariates": tuple(str(metric.covariates[i]) for i in gone), "kept": tuple(str(c) for c in kept)}
    return ms, plain, note


def _heterogeneity(rows: list, metrics, treatments) -> list[dict]:
    """Cochran's Q across the segments, per metric and treatment arm."""
    tests = []
    for m in metrics:
        for arm in treatments:
            mine = [r for r in rows if r["metric"] == m.name and r["variant"] == arm]
            q = cochran_q([r["effect"] for r in mine], [r["se"] ** 2 for r in mine])
            tests.append({"metric": m.name, "variant": arm, **q})
    return tests


def _adjust_rows(rows: list, correction: str | None) -> None:
    if correction:
        adjusted = adjust(np.array([r["p_value"] for r in rows]), correction)
        for r, p in zip(rows, adjusted):
            r["p_value_adjusted"] = float(p)


def _time_to_event_segments(data, metrics, by, variant, control, alpha, correction, allocation) -> SegmentResult:
    """:func:`analyze_segments` for time-to-event metrics (``by`` and ``correction`` already checked): grouped
    event counts, then each segment's rows."""
    from .analysis import analyze
    from .time_to_event import estimability, event_counts_by, event_rows

    if isinstance(data, MomentSet):
        raise AbkitError(
            "time-to-event metrics have no moments: pass the data itself (a DataFrame, a path, a table), "
            "not abkit.moments(...)"
        )
    other = [m.name for m in metrics if m.kind != "time_to_event"]
    if other:
        raise AbkitError(
            f"analyze_segments takes time-to-event metrics on their own; call it once for {other} and once for "
            "the time-to-event metric(s)"
        )
    overall = analyze(data, metrics, variant=variant, control=control, alpha=alpha, allocation=allocation)
    treatments = list(overall.treatments)
    grouped = [event_counts_by(data, m, by, variant) for m in metrics]
    segments = sorted({v for g in grouped for v in g.counts}, key=_sort_key)
    rows, skipped, not_estimable = [], [], []
    for seg in segments:
        labels = dict(zip(by, seg if isinstance(seg, tuple) else (seg,)))
        for m, g in zip(metrics, grouped):
            counts = g.counts.get(seg)
            arms = {} if counts is None else counts.arms
            why_control = None if counts is None else estimability(counts, control)
            ready = []
            for arm in treatments:
                why = why_control or (estimability(counts, arm) if counts is not None else "no units")
                if why is None:
                    ready.append(arm)
                    continue
                not_estimable.append(
                    {
                        **labels,
                        "metric": m.name,
                        "variant": arm,
                        "n_control": int(arms[control].units) if control in arms else 0,
                        "n_treatment": int(arms[arm].units) if arm in arms else 0,
                        "reason": why,
                    }
                )
                skipped.append((seg, m.name))
            if ready:
                out = event_rows(None, m, variant, control, ready, alpha, [control, *ready], counts=counts)
                rows += [{**labels, **r} for r, _ in out]
    if not rows:
        reasons = "; ".join(f"{r[by[0]]} / {r['variant']}: {r['reason']}" for r in not_estimable[:5])
        raise DataError(f"no segment of {list(by)} has an estimate for {[m.name for m in metrics]} ({reasons})")
    _adjust_rows(rows, correction)
    tests = _heterogeneity(rows, metrics, treatments)
    return SegmentResult(
        rows=tuple(rows),
        by=by,
        metrics=tuple(metrics),
        arms=overall.arms,
        control=control,
        alpha=float(alpha),
        correction=correction,
        overall=overall,
        tests=tuple(tests),
        segments=tuple(segments),
        skipped=tuple(dict.fromkeys(skipped)),
        not_estimable=tuple(not_estimable),
        no_segment=max(g.missing for g in grouped),
    )
