"""``abkit.analyze``: the A/B entry point (data -> moments -> effects -> result)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from .aggregation import check_metrics, moments, resolve_caps
from .errors import AbkitError, DataError
from .metrics import Metric, Quantile, TimeToEvent
from .moments import MomentSet
from .quantile import arms_present, quantile_rows, unit_srm
from .results import ExperimentResult
from .sources import aggregate
from .stats.checks import normalise_allocation, srm_test
from .stats.confidence_sequences import FIELLER_PIECES, AlwaysValid, always_valid_rows
from .stats.multiple import adjust
from .stats.two_sample import check_binary, compare
from .time_to_event import event_rows, time_to_event_part

__all__ = ["analyze", "moments"]  # moments: abkit.aggregation.moments, re-exported (abkit.moments)


def analyze(
    data,
    metrics: Sequence[Metric] | Metric,
    variant: str = "variant",
    control: Hashable = "control",
    alpha: float = 0.05,
    correction: str | None = None,
    allocation: Mapping | Sequence[float] | None = None,
    *,
    sequential=False,
    bayesian=False,
    unit: str | None = None,
) -> ExperimentResult:
    """Analyse an A/B(/n) test: every metric, every treatment arm against ``control``.

    Parameters
    ----------
    data : pandas DataFrame, pyarrow Table, parquet/CSV path, or a
        :class:`abkit.MomentSet` from :func:`abkit.moments`. One row per
        randomization unit (e.g. buyer).
    metrics : :class:`abkit.Mean`, :class:`abkit.Proportion`, :class:`abkit.Ratio`.
    variant : column holding each unit's arm.
    control : the arm every other arm is compared with.
    alpha : significance level of the two-sided tests and (1 - alpha) CIs.
    correction : ``None``, ``"holm"`` (family-wise error rate) or ``"bh"``
        (false discovery rate), applied across every metric x arm
        comparison of the result; adds ``p_value_adjusted``.
    allocation : planned share per arm (mapping arm -> share, or shares in
        the order control, then the other arms as they appear); default
        equal. Used by the sample-ratio-mismatch check.
    sequential : :class:`abkit.sequential.AlwaysValid` ``(planned_n=...)``
        (the units planned in all arms, fixed before the data are seen)
        makes every CI and p-value always valid: the normal-mixture
        confidence sequence / mixture SPRT (Johari et al. 2017; Howard et al.
        2021), safe to look at daily and to stop as soon as an interval
        excludes zero. ``True`` alone is refused: without a planned size the
        mixture would follow the data look by look. ``method`` gets the suffix
        ``" + always-valid"``, the fixed-horizon values move to
        ``*_fixed`` columns, and the result has ``sequential=True``.
    bayesian : ``True`` (default prior: relative lift ~ N(0, 5%^2)), a number
        (the prior sd of the relative lift) or a
        :class:`abkit.stats.bayes.NormalPrior`: adds the columns
        ``prob_better``, ``expected_loss``, ``expected_loss_control``,
        ``post_rel_effect``, ``post_rel_lower``, ``post_rel_upper`` (see
        :meth:`abkit.ExperimentResult.bayes`). Off by default; the
        frequentist result stays the primary one.
    unit : the randomization-unit id column (e.g. ``"buyer_id"``). Checks, in
        the same aggregation, that every unit has one row in one arm:
        units in several arms (an assignment leak), units with several
        rows, exact duplicate rows, rows without a unit id. The counts are
        in ``result.integrity`` (:class:`abkit.integrity.Integrity`), shown
        in the summary and the HTML table; the rows are analysed as they
        are (abkit cannot know which arm or copy is right), and
        :func:`abkit.verdict.decide` calls a material leak Invalid. With a
        :class:`abkit.MomentSet` as ``data`` the moments must have been
        computed with the same ``unit=``.

    Metrics may also be :class:`abkit.NPS` (a Mean of promoter/detractor
    scores, in points), ``Mean(..., winsorize=0.99)`` (the cap is computed
    from ``data`` first) and :class:`abkit.Quantile` (read from ``data``
    with :func:`abkit.sources.read_columns`; not from a MomentSet).

    Returns
    -------
    :class:`abkit.ExperimentResult`: ``.to_frame()``, ``.srm``, ``.plot()``.
    """
    metrics = check_metrics(metrics)
    if not (0.0 < float(alpha) < 0.5):
        raise AbkitError(f"alpha={alpha!r} must be between 0 and 0.5 (e.g. 0.05)")
    if isinstance(correction, str):
        correction = correction.strip().lower()  # "BH", "Holm" are meant as the same methods
    if correction is not None and correction not in ("holm", "bh"):
        raise AbkitError(f"correction={correction!r} is not known; use 'holm', 'bh' or None")
    quantiles = [m for m in metrics if m.kind == "quantile"]
    events = [m for m in metrics if m.kind == "time_to_event"]  # issue 17: abkit.time_to_event
    if unit is not None and not isinstance(unit, str):
        raise AbkitError(f"unit={unit!r} must be a column name (e.g. 'buyer_id')")
    if isinstance(data, MomentSet):
        have = getattr(data.integrity, "unit", None)
        if unit is not None and have != unit:
            raise AbkitError(
                f"unit='{unit}': the unit-integrity check needs the rows, and these moments were aggregated "
                + (f"with unit='{have}'" if have else "without it (or were added up from parts)")
                + f"; pass the data itself, or compute abkit.moments(data, metrics, unit='{unit}')"
            )
        if quantiles:
            raise AbkitError(
                f"metric(s) {[m.name for m in quantiles]} are quantiles, which cannot be computed "
                "from moments; pass the data itself"
            )
        if events:
            raise AbkitError(
                f"metric(s) {[m.name for m in events]} are times to event, which need event counts "
                "by time, not moments; pass the data itself"
            )
        uncapped = [m.name for m in metrics if getattr(m, "needs_cap", False)]
        if uncapped:
            raise AbkitError(
                f"metric(s) {uncapped} winsorize at a quantile of the data, which moments do not "
                "hold; pass the data, or give the cap as a number (cap=...)"
            )
    elif any(getattr(m, "needs_cap", False) for m in metrics):
        metrics = resolve_caps(data, metrics)
    if events and all(m.kind in ("quantile", "time_to_event") for m in metrics):
        return _analyze_events_only(
            data, metrics, variant, control, alpha, correction, allocation, sequential, bayesian, unit
        )
    if quantiles and len(quantiles) == len(metrics):
        return _analyze_quantiles_only(
            data, metrics, variant, control, alpha, correction, allocation, sequential, bayesian, unit
        )
    ms = (
        data
        if isinstance(data, MomentSet)
        else aggregate(
            data, [m for m in metrics if m.kind not in ("quantile", "time_to_event")], variant=variant, unit=unit
        )
    )
    if ms.by:
        raise AbkitError("these moments are split by segment; analyse one with moments.segment(value)")
    arms = list(ms.rows)
    if control not in arms:
        raise DataError(
            f"control arm {control!r} not found in column '{ms.variant}'; arms present: {arms}. "
            "Pass control= with one of them"
        )
    if len(arms) < 2:
        raise DataError(
            f"only one arm ({arms[0]!r}) in column '{ms.variant}'; an experiment needs at "
            "least a control and a treatment"
        )
    arms = _arms_as_written(arms, control)
    control = arms[0]
    treatments = arms[1:]
    if allocation is not None and not isinstance(allocation, Mapping):
        allocation = dict(zip(arms, normalise_allocation(arms, allocation)))
    srm = srm_test({a: ms.rows[a] for a in arms}, allocation)

    frame = _quantile_frame(data, quantiles, ms.variant) if quantiles else None
    rows = []
    for metric in metrics:
        if isinstance(metric, Quantile):
            rows += quantile_rows(frame, metric, ms.variant, control, treatments, alpha)
            continue
        if isinstance(metric, TimeToEvent):
            rows += [
                {**r, FIELLER_PIECES: f}
                for r, f in event_rows(data, metric, ms.variant, control, treatments, alpha, arms)
            ]
            continue
        block = ms.block_for(metric.columns, metric.dropna)
        if metric.kind == "proportion":
            check_binary(block, metric.target.numerator, metric.name)
        for arm in (control, *treatments):
            if arm not in block.groups or block.n[block.group_index(arm)] == 0:
                dropped_here = int(block.dropped[block.group_index(arm)]) if arm in block.groups else 0
                why = (
                    (
                        f": all its {dropped_here:,} rows have a missing value in "
                        f"{', '.join(repr(c) for c in metric.columns)} (dropna=True drops them); check those "
                        "columns for this arm"
                    )
                    if dropped_here
                    else ""
                )
                raise DataError(f"arm {arm!r} has no units with data for metric '{metric.name}'{why}")
        dropped = dict(zip(block.groups, block.dropped))
        for arm in treatments:
            c = compare(block, metric, control, arm, alpha, arms=arms)
            rows.append(
                {
                    "metric": metric.name,
                    "variant": arm,
                    "control_value": c.control_value,
                    "treatment_value": c.treatment_value,
                    "effect": c.effect,
                    "ci_lower": c.ci_lower,
                    "ci_upper": c.ci_upper,
                    "rel_effect": c.rel_effect,
                    "rel_ci_lower": c.rel_ci_lower,
                    "rel_ci_upper": c.rel_ci_upper,
                    "p_value": c.p_value,
                    "n_control": int(c.n_control),
                    "n_treatment": int(c.n_treatment),
                    "method": metric.method_label,
                    "se": c.se,
                    "rel_se": c.rel_se,
                    "df": c.df,
                    "variance_reduction": c.variance_reduction,
                    "dropped_control": int(dropped.get(control, 0)),
                    "dropped_treatment": int(dropped.get(arm, 0)),
                    "better": metric.better,
                    # Var(control value) and Cov(effect, control value): for the always-valid Fieller
                    # interval of the relative lift (always_valid_rows; dropped before the result is built)
                    FIELLER_PIECES: (c.control_se**2, c.cov_effect_control),
                }
            )
            if metric.option("cap") is not None:
                rows[-1]["cap"] = metric.option("cap")
    return _finish(
        rows,
        metrics,
        arms,
        control,
        alpha,
        correction,
        srm,
        ms.missing_variant,
        ms.variant,
        float(sum(ms.rows[a] for a in arms)),
        sequential,
        bayesian,
        ms.integrity,
    )


def _quantile_frame(data, quantiles, variant, unit=None):
    from .sources import read_columns

    cols = [variant] + [c for m in quantiles for c in (m.column, m.unit) if c is not None]
    return read_columns(data, list(dict.fromkeys(cols + ([unit] if unit else []))))


def _analyze_quantiles_only(
    data, metrics, variant, control, alpha, correction, allocation, sequential, bayesian, check_unit=None
):
    """:func:`analyze` when every metric is a quantile: no moments, the values only."""
    frame = _quantile_frame(data, metrics, variant, check_unit)
    if len(frame) == 0:
        raise DataError("the data has no rows (an empty table); check the query or file that produced it")
    integrity = None
    if check_unit is not None:
        from .integrity import check_frame
        from .sources import _key_codes

        integrity = check_frame(frame, check_unit, _key_codes(frame, variant)[0], list(frame.columns))
    arms = _arms_as_written(arms_present(frame, variant, control), control)
    control = arms[0]
    units = {m.unit for m in metrics}
    unit = units.pop() if len(units) == 1 else None
    srm = unit_srm(frame, variant, arms, unit, allocation)
    rows = [r for m in metrics for r in quantile_rows(frame, m, variant, control, arms[1:], alpha)]
    return _finish(
        rows,
        metrics,
        arms,
        control,
        alpha,
        correction,
        srm,
        int(frame[variant].isna().sum()),
        variant,
        float(sum(srm.observed)),
        sequential,
        bayesian,
        integrity,
    )


def _analyze_events_only(
    data, metrics, variant, control, alpha, correction, allocation, sequential, bayesian, unit=None
):
    """:func:`analyze` when every metric is a time to event (or a quantile): arms and checks from the counts."""
    part = time_to_event_part(
        data, [m for m in metrics if m.kind == "time_to_event"], variant, control, alpha, allocation, unit
    )
    arms = part["arms"]
    quantiles = [m for m in metrics if m.kind == "quantile"]
    frame = _quantile_frame(data, quantiles, variant) if quantiles else None
    rows = []
    for metric in metrics:
        if metric.kind == "quantile":
            rows += quantile_rows(frame, metric, variant, control, arms[1:], alpha)
        else:
            rows += [{**r, FIELLER_PIECES: f} for r, f in part["rows"][metric.name]]
    return _finish(
        rows,
        metrics,
        arms,
        control,
        alpha,
        correction,
        part["srm"],
        part["missing_variant"],
        variant,
        part["units"],
        sequential,
        bayesian,
        part["integrity"],
    )


def _arms_as_written(labels, control) -> list:
    """The arm labels as the user wrote them, control first (never ``[0, 1.0]``).

    A column of integer labels with a missing value is read as floats (pandas
    turns ``[0, 1, None]`` into ``0.0, 1.0, NaN``): when every numeric label
    is a whole number they are shown as integers again, so ``control=0``
    gives ``[0, 1]``, not ``[0, 1.0]``; genuine fractional labels (``0.5``)
    stay floats. numpy scalars become Python ones (``np.str_('a')`` prints as
    ``'a'``). The control is the data's label equal to ``control``. Labels
    stay equal (and hash equal) to the data's, so lookups are unchanged.
    """

    def plain(a):
        return a.item() if isinstance(a, np.generic) else a

    labels = [plain(a) for a in labels]
    numbers = [a for a in labels if isinstance(a, float)]
    if numbers and all(np.isfinite(a) and float(a).is_integer() for a in numbers):
        labels = [int(a) if isinstance(a, float) else a for a in labels]
    control_label = next((a for a in labels if a == control), control)
    return [control_label] + [a for a in labels if a != control_label]


def _finish(
    rows,
    metrics,
    arms,
    control,
    alpha,
    correction,
    srm,
    missing_variant,
    variant,
    units_now,
    sequential,
    bayesian,
    integrity=None,
) -> ExperimentResult:
    """Always-valid intervals, the Bayesian columns and the multiple-testing correction, then the result.

    With ``sequential``, the relative lift's always-valid interval is Fieller's
    (:func:`abkit.stats.confidence_sequences.always_valid_rows`), like the
    fixed-horizon one (:func:`abkit.stats.two_sample.compare`).
    """
    design = prior = None
    if sequential is not False and sequential is not None:
        design = AlwaysValid.coerce(sequential)
        rows = always_valid_rows(rows, design, alpha, units_now)
    rows = [{k: v for k, v in r.items() if k != FIELLER_PIECES} if FIELLER_PIECES in r else r for r in rows]
    if bayesian is not False and bayesian is not None:
        from .stats.bayes import add_bayes_columns, as_prior

        prior = as_prior(bayesian)
        rows = add_bayes_columns(rows, prior, alpha)
    if correction:
        adjusted = adjust(np.array([r["p_value"] for r in rows]), correction)
        for r, p in zip(rows, adjusted):
            r["p_value_adjusted"] = float(p)
    return ExperimentResult(
        rows=tuple(rows),
        metrics=tuple(metrics),
        arms=tuple(arms),
        control=control,
        alpha=float(alpha),
        correction=correction,
        srm=srm,
        missing_variant=missing_variant,
        variant=variant,
        sequential=design is not None,
        sequential_note=design.describe(alpha) if design is not None else "",
        prior=prior,
        integrity=integrity,
    )
