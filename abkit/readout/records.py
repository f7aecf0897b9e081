"""A readout's results as rows of the results store (:mod:`abkit.store`).

One function per readout kind turns what the notebook computed into plain,
JSON-able dicts (numbers or None, dates as ISO text) with the store's
columns: one row per metric x treatment arm. They travel from the notebook
to the runner in the output metadata, like :func:`abkit.readout.render.summary`,
and the runner appends them with the run's own columns::

    rows = records.ab_rows(experiment, result, verdicts)          # in the notebook
    abkit.store.record(out_dir, rows, slug=slug, spec_path=path)  # in the runner

``run_id``, ``run_time`` and ``slug`` are left to :func:`abkit.store.record`
(the runner knows them); everything else comes from the spec and the results.
The spec's ``impact:`` block (:class:`abkit.business_impact.ImpactSpec`),
when it has one, goes on the primary metric's rows.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence

from ..business_impact import ImpactSpec
from ..formatting import RELATIVE, change_scale
from ..verdict import p_label

__all__ = ["ab_rows", "rollout_rows", "plan_rows", "failed_rows"]


def _num(x) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _int(x) -> int | None:
    v = _num(x)
    return int(v) if v is not None else None


def _iso(d) -> str | None:
    if d is None:
        return None
    if isinstance(d, (_dt.date, _dt.datetime)):
        return d.isoformat()
    return str(d)


def _fingerprint(snapshot) -> str | None:
    """The fingerprint of a :class:`abkit.snapshot.DataSnapshot` (or of its ``to_dict()``), None without one."""
    if snapshot is None:
        return None
    value = snapshot.get("fingerprint") if isinstance(snapshot, dict) else getattr(snapshot, "fingerprint", None)
    return str(value) if value else None


def _base(spec, data_start=None, data_end=None, snapshot=None) -> dict:
    return {
        "experiment": spec.name,
        "kind": spec.kind,
        "owner": getattr(spec, "owner", None),
        "data_fingerprint": _fingerprint(snapshot),
        "spec_path": getattr(spec, "source", None),
        "status": "ok",
        "data_start": _iso(data_start if data_start is not None else getattr(spec, "start", None)),
        "data_end": _iso(data_end if data_end is not None else getattr(spec, "end", None)),
        "alpha": _num(getattr(spec, "alpha", None)),
    }


def _impact_columns(spec) -> dict:
    impact = ImpactSpec.coerce(getattr(spec, "impact", None))
    if impact is None:
        return {}
    return {
        "impact_volume": impact.volume,
        "impact_per": impact.per,
        "impact_unit": impact.unit,
        "impact_value": impact.value,
        "impact_currency": impact.currency,
    }


def _rel_se_from_interval(lo, hi, alpha) -> float | None:
    """``(upper - lower) / (2 z_{1-alpha/2})``: the standard error a symmetric normal interval implies."""
    from scipy.special import ndtri

    lo, hi, a = _num(lo), _num(hi), _num(alpha)
    if lo is None or hi is None or a is None or not 0 < a < 1:
        return None
    return (hi - lo) / (2.0 * float(ndtri(1.0 - a / 2.0)))


def _verdict_columns(v) -> dict:
    if v is None:
        return {}
    return {"verdict": v.label, "verdict_note": v.note, "headline": v.headline}


def ab_rows(spec, result, verdicts: Sequence = (), *, data_start=None, data_end=None, snapshot=None) -> list[dict]:
    """Rows of an A/B readout: every metric x treatment arm of ``result`` (an :class:`abkit.ExperimentResult`).

    ``verdicts``: the arms' :class:`abkit.verdict.Verdict` (from
    :func:`abkit.verdict.decide`); each row carries its arm's verdict.
    ``data_start``/``data_end`` default to the spec's ``start``/``end``;
    ``snapshot`` (:func:`abkit.snapshot.pin`'s snapshot of the data) gives
    ``data_fingerprint``. ``rel_se`` is the analysis' standard error of the
    relative lift (for a sequential test still the fixed-horizon one: the sampling spread of the
    estimate, which is what shrinkage weighs; the interval stored is the
    always-valid one); when a method gives none, it is backed out of the
    relative interval.
    """
    by_arm = {v.variant: v for v in verdicts}
    base = _base(spec, data_start, data_end, snapshot)
    guardrails = {g.name: g.margin for g in getattr(spec, "guardrails", ())}
    primary = spec.primary.name
    impact = _impact_columns(spec)
    sequential = bool(getattr(result, "sequential", False))
    label_of_p = p_label(result)
    rows = []
    for r in result.rows:
        kind = getattr(result.metric(r["metric"]), "kind", None)
        rel_se = _num(r.get("rel_se"))
        if rel_se is None and not sequential:
            rel_se = _rel_se_from_interval(r.get("rel_ci_lower"), r.get("rel_ci_upper"), result.alpha)
        row = {
            **base,
            "metric": r["metric"],
            "variant": str(r["variant"]),
            "control": str(result.control),
            "is_primary": r["metric"] == primary,
            "is_guardrail": r["metric"] in guardrails,
            "better": r.get("better"),
            "margin": _num(guardrails.get(r["metric"])),
            "control_value": _num(r.get("control_value")),
            "treatment_value": _num(r.get("treatment_value")),
            "effect": _num(r.get("effect")),
            "ci_lower": _num(r.get("ci_lower")),
            "ci_upper": _num(r.get("ci_upper")),
            "se": _num(r.get("se")),
            "rel_effect": _num(r.get("rel_effect")),
            "rel_ci_lower": _num(r.get("rel_ci_lower")),
            "rel_ci_upper": _num(r.get("rel_ci_upper")),
            "rel_se": rel_se,
            "change_scale": change_scale(r, kind),
            "p_value": _num(r.get("p_value")),
            "p_value_adjusted": _num(r.get("p_value_adjusted")),
            "p_label": label_of_p,
            "alpha": _num(result.alpha),
            "sequential": sequential,
            "n_control": _int(r.get("n_control")),
            "n_treatment": _int(r.get("n_treatment")),
            "unit": getattr(spec, "unit", None),
            "method": r.get("method"),
            **_verdict_columns(by_arm.get(r["variant"])),
        }
        if row["is_primary"]:
            row.update(impact)
        rows.append(row)
    return rows


def _effect_row(base: dict, spec, effect, outcome, *, primary: bool, verdict=None) -> dict:
    if spec.scale == "log":
        rel_se = (1.0 + effect.rel) * effect.se if _num(effect.rel) is not None and _num(effect.se) else None
    else:
        rel_se = effect.se / abs(effect.baseline) if _num(effect.baseline) and _num(effect.se) else None
    return {
        **base,
        "metric": outcome.name,
        "variant": "rollout",
        "control": spec.control_group,
        "is_primary": primary,
        "is_guardrail": False,
        "better": outcome.better,
        "control_value": _num(effect.baseline),
        "effect": _num(effect.estimate),
        "ci_lower": _num(effect.ci_lower),
        "ci_upper": _num(effect.ci_upper),
        "se": _num(effect.se),
        "rel_effect": _num(effect.rel),
        "rel_ci_lower": _num(effect.rel_ci_lower),
        "rel_ci_upper": _num(effect.rel_ci_upper),
        "rel_se": _num(rel_se),
        "change_scale": RELATIVE if _num(effect.rel) is not None else None,
        "p_value": _num(effect.p_value),
        "alpha": _num(effect.alpha),
        "sequential": False,
        "unit": spec.unit,
        "method": f"difference-in-differences (Callaway-Sant'Anna, {spec.method}, {spec.scale} scale)",
        **_verdict_columns(verdict),
    }


def rollout_rows(
    spec, verdict, main, secondary: Sequence = (), *, data_start=None, data_end=None, snapshot=None
) -> list[dict]:
    """Rows of a rollout (DiD) readout: the primary outcome (``main``, a :class:`abkit.readout.rollout.Effect`)
    and each secondary outcome that could be estimated (``secondary``: the ``(outcome, effect or None, error)``
    triples of :func:`abkit.readout.rollout.secondary_effects`).

    ``effect`` is on the analysis scale (the log of the outcome by default);
    the relative columns are the outcome's relative change. ``rel_se`` is
    the delta-method standard error of the relative change: ``(1 + rel) se``
    on the log scale, ``se / |baseline|`` on the level scale. The rollout's
    verdict goes on every row. ``snapshot``: as in :func:`ab_rows`.
    """
    base = _base(spec, data_start, data_end, snapshot)
    rows = [_effect_row(base, spec, main, spec.outcome, primary=True, verdict=verdict)]
    rows[0].update(_impact_columns(spec))
    for item in secondary:
        outcome, effect = item[0], item[1]
        if effect is not None:
            rows.append(_effect_row(base, spec, effect, outcome, primary=False, verdict=verdict))
    return rows


def synthetic_rows(spec, verdict, result, *, snapshot=None) -> list[dict]:
    """The row of a one-market launch readout (``kind: synthetic``): ``result`` an
    :class:`abkit.did.SyntheticResult`. The comparison is the launched market's synthetic twin:
    ``control_value`` is the twin's mean over the post-launch periods (the counterfactual) and the
    relative columns are the effect over it (NaN when it is not positive: no relative change is
    claimed). ``rel_se = se / counterfactual`` (the counterfactual treated as known)."""
    cf = _num(result.counterfactual)
    rel_se = result.se / cf if cf is not None and cf > 0 and _num(result.se) is not None else None
    row = {
        **_base(spec, snapshot=snapshot),
        "metric": result.outcome,
        "variant": "launch",
        "control": "synthetic twin",
        "is_primary": True,
        "is_guardrail": False,
        "better": spec.outcome.better,
        "control_value": cf,
        "treatment_value": None if cf is None or _num(result.estimate) is None else cf + float(result.estimate),
        "effect": _num(result.estimate),
        "ci_lower": _num(result.ci_lower),
        "ci_upper": _num(result.ci_upper),
        "se": _num(result.se),
        "rel_effect": _num(result.relative_effect),
        "rel_ci_lower": _num(result.rel_ci_lower),
        "rel_ci_upper": _num(result.rel_ci_upper),
        "rel_se": _num(rel_se),
        "change_scale": RELATIVE if _num(result.relative_effect) is not None else None,
        "p_value": _num(result.p_value),
        "alpha": _num(result.alpha),
        "sequential": False,
        "unit": spec.unit,
        "method": f"{result.method} ({result.inference} inference), launched: "
        + ", ".join(str(u) for u in result.launched_units),
        **_verdict_columns(verdict),
    }
    row.update(_impact_columns(spec))
    return [row]


def plan_rows(spec, recommendation, *, snapshot=None) -> list[dict]:
    """The one row of a test plan (``kind: power``): no effect yet, the recommendation as verdict.

    ``verdict_note`` says what the recommended duration detects ("MDE 8.9%
    in 42 days") when the label does not already say it.
    """
    mde, days = _num(getattr(recommendation, "mde", None)), getattr(recommendation, "days", None)
    note = f"MDE {mde:.1%} in {days} days" if mde is not None and days else None
    if note is not None and note == recommendation.label:
        note = None
    return [
        {
            **_base(spec, snapshot=snapshot),
            "metric": spec.primary.name,
            "variant": "plan",
            "is_primary": True,
            "is_guardrail": False,
            "better": spec.primary.better,
            "verdict": recommendation.label,
            "verdict_note": note,
            "headline": recommendation.headline,
            "method": "power plan",
        }
    ]


def failed_rows(spec, error: str, *, kind: str | None = None) -> list[dict]:
    """The one row of a readout that failed: ``status='failed'`` and its one-line error."""
    primary = getattr(spec, "primary", None)
    return [
        {
            **_base(spec),
            "kind": kind or spec.kind,
            "status": "failed",
            "error": str(error),
            "metric": getattr(primary, "name", None),
            "is_primary": True,
        }
    ]
