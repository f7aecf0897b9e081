"""Test-plan readouts (``kind: power``): the recommendation first, then assumptions and curves.

:func:`make_plan` runs :func:`abkit.power.plan` on the spec's history: once
for the primary and secondary metrics (two-sided MDE by duration, days
needed per target effect) and once per guardrail with a ``margin`` (power to
show non-inferiority by duration). :func:`recommend` turns that into one
sentence; the rule:

* with a target ``mde``: the days the traffic needs to detect it on the
  primary metric with the planned power. Feasible when that is within
  ``max_days`` (if given): "Run 25 days". Otherwise "Not feasible", with
  the MDE reachable in ``max_days`` (or the longest listed duration);
* without ``mde``: the MDE after ``max_days`` (or the longest listed duration).

Guardrails with a margin add their power to show non-inferiority at the
recommended duration (a caution when it is below the planned power).

:func:`power_curve_html` shows the power by the size of the true change at
the recommended duration. On request (the notebook parameter ``simulate``,
or a spec's ``simulate: 500`` where the spec format has it)
:func:`simulation_check` re-checks the recommendation by simulation: it
resamples the history's units at the recommended size, injects the
recommended change into the primary metric (outcome / numerator multiplied
by ``1 + change``) and runs abkit's own analysis on every simulated test
(:func:`abkit.power.simulate_power`); the readout reports the share of
tests that detected it with its Monte Carlo interval next to the closed
form. Off by default (it costs a few seconds).

What each section of the page says is plain data (``*_context``); its ``*_html``
twin renders a template of ``templates/html/pages/`` (``plan_*.html.j2`` and the
shared header, verdict and details templates), which escapes every value.
:func:`to_json` is what ``abkit power --json`` prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..power.planning import PowerPlan
from ..results import format_number
from .pages import render_page
from .render import _text, chart_image

__all__ = [
    "Recommendation",
    "PlanBundle",
    "make_plan",
    "recommend",
    "header_html",
    "recommendation_html",
    "details_html",
    "assumptions_html",
    "curves_html",
    "power_curve_figure",
    "power_curve_html",
    "simulation_count",
    "simulation_check",
    "simulation_text",
    "durations_html",
    "guardrails_html",
    "methodology_html",
    "summary",
    "to_json",
    "EXTRA_MDES",
    "MAX_SIMULATIONS",
    "header_context",
    "recommendation_context",
    "details_context",
    "assumptions_context",
    "curves_context",
    "power_curve_context",
    "durations_context",
    "guardrails_context",
    "methodology_context",
]

EXTRA_MDES = (0.02, 0.03, 0.05, 0.10)
MAX_SIMULATIONS = 20_000
_BLUE, _AMBER = "#0969da", "#9a6700"


@dataclass(frozen=True)
class PlanBundle:
    """The power plans behind a test-plan readout."""

    main: PowerPlan  # the power plan of the primary and secondary metrics
    guardrails: dict[str, PowerPlan]  # guardrail name -> power plan with its non-inferiority margin


@dataclass(frozen=True)
class Recommendation:
    label: str  # "Run 25 days" / "Not feasible" / "MDE 4.1% in 28 days"
    headline: str
    reasons: tuple[str, ...]
    feasible: bool
    days: int | None  # recommended duration
    units: float | None  # units enrolled by then (all arms)
    mde: float | None  # the relative MDE at that duration

    @property
    def colour(self) -> str:
        return _BLUE if self.feasible else _AMBER


def _plan_kwargs(spec) -> dict:
    return dict(
        variant=spec.variant,
        control=spec.control,
        alpha=spec.alpha,
        power=spec.power,
        ratio=spec.ratio,
        arms=spec.arms,
        correction=spec.correction,
        daily_units=spec.daily_units,
        population=spec.population,
        traffic_share=spec.traffic_share,
        sequential=bool(getattr(spec, "sequential", False)),
    )


def _level(spec, guardrail: bool = False) -> float:
    """The level of the readout's test, by the one rule of :func:`abkit.power.planning.readout_level`: alpha
    (two-sided), or for a sequential test the always-valid level; half of it for a guardrail's margin."""
    from ..power.planning import readout_level

    return readout_level(spec.alpha, sequential=bool(getattr(spec, "sequential", False)), guardrail=guardrail)


def _horizon(spec) -> int:
    return int(spec.max_days or max(spec.days))


def make_plan(spec) -> PlanBundle:
    """Run :func:`abkit.power.plan` for the spec (see the module doc)."""
    from .. import power

    built = {m.name: b for m, b in zip(spec.metrics, spec.build_metrics())}
    main_metrics = [built[m.name] for m in spec.metrics if not (m.guardrail and m.margin is not None)]
    days = sorted(set(spec.days) | {_horizon(spec)})
    mdes = sorted(set(EXTRA_MDES) | ({spec.mde} if spec.mde else set()))
    kw = _plan_kwargs(spec)
    data = spec.open_data()  # the file path, or the table opened in its engine
    main = power.plan(data, main_metrics, days=days, mdes=mdes, **kw)
    need = _days_for_target(spec, main)
    if need is not None and need not in days:
        days = sorted(set(days) | {need})
        main = power.plan(data, main_metrics, days=days, mdes=mdes, **kw)
    guards = {}
    for g in spec.guardrails:
        if g.margin is None:
            continue
        # plan() applies the readout's rule to a margin (one-sided at alpha/2, or at half the always-valid
        # level for a sequential test: abkit.power.planning.readout_level), as for a direct Python call
        guards[g.name] = power.plan(data, built[g.name], days=days, mdes=None, margin=g.margin, **kw)
    return PlanBundle(main, guards)


def _days_for_target(spec, main) -> int | None:
    if not spec.mde:
        return None
    sizes = main.sample_sizes()
    rows = sizes[(sizes.metric == spec.primary.name) & np.isclose(sizes.relative_mde.abs(), spec.mde)]
    if not len(rows) or not np.isfinite(rows.days_needed.iloc[0]):
        return None
    return int(rows.days_needed.iloc[0])


def _row_at(plan, metric: str, day: int) -> pd.Series | None:
    f = plan.to_frame()
    rows = f[(f.metric == metric) & (f.days == day)]
    return rows.iloc[0] if len(rows) else None


def recommend(spec, bundle: PlanBundle) -> Recommendation:
    """The recommendation sentence and its reasons; the rule is in the module doc."""
    p = spec.primary.name
    main = bundle.main
    horizon = _horizon(spec)
    at_h = _row_at(main, p, horizon)
    mde_h = abs(float(at_h.relative_mde)) if at_h is not None else math.nan
    reasons: list[str] = []
    need = _days_for_target(spec, main)
    if spec.mde:
        sizes = main.sample_sizes()
        target = sizes[(sizes.metric == p) & np.isclose(sizes.relative_mde.abs(), spec.mde)].iloc[0]
        units = float(target.total)
        if need is not None and (spec.max_days is None or need <= spec.max_days):
            label = f"Run {need} days"
            headline = (
                f"Run the test for {need} days ({units:,.0f} units) to detect a {spec.mde:.1%} change in "
                f"{p} with {spec.power:.0%} power."
            )
            days, feasible, mde_at = need, True, spec.mde
        else:
            label = "Not feasible"
            why = (
                f"more than the traffic brings in {spec.max_days} days"
                if need is not None
                else "more than the eligible population holds"
            )
            headline = (
                f"A {spec.mde:.1%} change in {p} is out of reach: it needs {units:,.0f} units, {why}. "
                f"In {horizon} days the test can detect a {mde_h:.1%} change."
            )
            days, feasible, mde_at = horizon, False, mde_h
            units = float(at_h.units) if at_h is not None else math.nan
    else:
        units = float(at_h.units) if at_h is not None else math.nan
        label = f"MDE {mde_h:.1%} in {horizon} days"
        headline = (
            f"In {horizon} days ({units:,.0f} units) the test can detect a {mde_h:.1%} change in {p} with "
            f"{spec.power:.0%} power."
        )
        days, feasible, mde_at = horizon, True, mde_h
    if getattr(spec, "sequential", False):
        from scipy import stats

        from .. import power

        zp = stats.norm.ppf(spec.power)
        k_av, k_fixed = stats.norm.isf(power.always_valid_alpha(spec.alpha) / 2), stats.norm.isf(spec.alpha / 2)
        factor = ((k_av + zp) / (k_fixed + zp)) ** 2
        reasons.insert(
            0,
            "planned for always-valid intervals (the test will be read while it runs, and may stop "
            f"early): they need about {factor:.1f}x the units of a test read once at its planned end; "
            f"give the readout's spec sequential: true and planned_units: {units:,.0f}",
        )
    design = next(d for d in main.metrics if d.metric == p)
    if design.covariates:
        reasons.append(
            f"CUPED on {', '.join(design.covariates)} removes {design.variance_reduction:.0%} of the "
            f"variance of {p}; without it the same test would need "
            f"{1 / (1 - design.variance_reduction):.2f}x the units."
        )
    for g, gplan in bundle.guardrails.items():
        row = _row_at(gplan, g, days)
        if row is None:
            continue
        pw = float(row.power_noninferiority)
        margin = float(row.margin)
        text = (
            f"guardrail {g}: {pw:.0%} power to show it stays within its {margin:.1%} margin in {days} days "
            "(if the change truly does nothing to it)"
        )
        if pw < spec.power:
            text += f"; below the planned {spec.power:.0%}: expect an unclear guardrail, or widen the margin"
        reasons.append(text)
    if spec.arms > 2:
        reasons.append(
            f"{spec.arms} arms: each comparison with control is tested at alpha "
            f"{spec.alpha:g} split {spec.correction or 'not'} ({spec.arms - 1} comparisons)."
        )
    return Recommendation(label, headline, tuple(reasons), feasible, days, units, mde_at)


# =========================================================================== HTML
def header_context(spec) -> dict:
    """The title block (``header.html.j2``): name, owner, planned start, primary metric and hypothesis."""
    facts = []
    if spec.owner:
        facts.append(("Owner", spec.owner))
    if spec.start:
        facts.append(("Planned start", spec.start.isoformat()))
    p = spec.primary
    facts.append(("Primary metric", f"{p.name} ({p.definition}; {p.better} is better)"))
    return {
        "kicker": "Test plan \u00b7 power and duration",
        "name": spec.name,
        "facts": facts,
        "hypothesis": _text(spec.hypothesis),
    }


def header_html(spec) -> str:
    return render_page("header.html.j2", **header_context(spec))


def recommendation_context(rec: Recommendation, spec, simulation=None) -> dict:
    """The recommendation card (``verdict.html.j2``): label, headline, reasons and how it was decided."""
    extra = (simulation_text(simulation, spec, rec),) if simulation is not None else ()
    card = {
        "label": rec.label,
        "colour": rec.colour,
        "arm": spec.primary.name,
        "headline": rec.headline,
        "reasons": [*rec.reasons, *extra],
        "timing": None,
    }
    rule = (
        f"The days the traffic needs to detect the target change on the primary metric with {spec.power:.0%} "
        f"power at alpha {spec.alpha:g} (two-sided), from the metric's baseline and unit-level variance in the "
        "history; feasible when within the longest acceptable run."
    )
    return {
        "title": "Recommendation",
        "cards": [card],
        "empty": "",
        "rule_title": "How this was decided.",
        "rule": rule,
    }


def recommendation_html(rec: Recommendation, spec, simulation=None) -> str:
    return render_page("verdict.html.j2", **recommendation_context(rec, spec, simulation))


def details_context(spec, bundle: PlanBundle) -> dict:
    """The plan (``details.html.j2``): history, traffic, design, target, longest run, guardrails, what changes."""
    history = f"{spec.data_label}" + (
        f" (a past test: variances pooled within the arms of column {spec.variant})" if spec.variant else ""
    )
    rows = [
        ("History", [history]),
        ("Traffic", [bundle.main.traffic]),
        (
            "Design",
            [
                f"{spec.arms} arms, treatment/control = {spec.ratio:g}, alpha {spec.alpha:g} (two-sided), "
                f"power {spec.power:.0%}"
            ],
        ),
        (
            "Target",
            [
                f"detect a {spec.mde:.1%} change in {spec.primary.name}"
                if spec.mde
                else "none given: the MDE by duration is shown"
            ],
        ),
        ("Longest acceptable run", [f"{spec.max_days} days" if spec.max_days else "not given"]),
    ]
    if spec.guardrails:
        rows.append(
            (
                "Guardrails",
                [
                    f"{g.name}: "
                    + (
                        f"may get at most {g.margin:.1%} worse"
                        if g.margin is not None
                        else "no margin given (MDE shown with the other metrics)"
                    )
                    for g in spec.guardrails
                ],
            )
        )
    return {
        "title": "The plan",
        "rows": rows,
        "description_title": "What will change.",
        "description": _text(spec.description),
    }


def details_html(spec, bundle: PlanBundle) -> str:
    return render_page("details.html.j2", **details_context(spec, bundle))


def assumptions_context(bundle: PlanBundle) -> dict:
    """Each metric's design from the history (``plan_assumptions.html.j2``)."""
    designs = [d for d in bundle.main.metrics] + [d for g in bundle.guardrails.values() for d in g.metrics]
    return {
        "designs": [
            {
                "metric": d.metric,
                "kind": d.kind,
                "baseline": format_number(d.baseline),
                "sd": format_number(d.sd),
                "covariates": ", ".join(d.covariates) or None,
                "variance_removed": f"{d.variance_reduction:.0%}",
                "units": f"{d.n_units:,}",
            }
            for d in designs
        ]
    }


def assumptions_html(bundle: PlanBundle) -> str:
    return render_page("plan_assumptions.html.j2", **assumptions_context(bundle))


def curves_context(fig, bundle: PlanBundle, spec) -> dict:
    """The MDE-by-duration chart (``plan_curves.html.j2``) and its alt text."""
    f = bundle.main.to_frame()
    p = f[f.metric == spec.primary.name]
    alt = f"Chart of the minimum detectable effect by duration; {spec.primary.name}: " + "; ".join(
        f"{int(r.days)} days {abs(r.relative_mde):.1%}" for r in p.itertuples()
    )
    return {"power": f"{spec.power:.0%}", "chart": chart_image(fig, alt)}


def curves_html(fig, bundle: PlanBundle, spec) -> str:
    return render_page("plan_curves.html.j2", **curves_context(fig, bundle, spec))


def simulation_count(spec, override=None) -> int:
    """Simulated tests for the check: ``override`` (the notebook parameter) if given, else the spec's
    ``simulate`` (0 when the spec format has no such key): 0 means no simulation."""
    n = override if override is not None else getattr(spec, "simulate", None)
    if n is None or n is False:
        return 0
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= MAX_SIMULATIONS:
        from ..errors import AbkitError

        raise AbkitError(
            f"simulate={n!r} must be a whole number of simulated tests between 0 (off) and "
            f"{MAX_SIMULATIONS:,}, e.g. 500"
        )
    return int(n)


def _direction(spec) -> float:
    return 1.0 if spec.primary.better == "higher" else -1.0


def simulation_check(spec, bundle: PlanBundle, rec: Recommendation, n_sims: int, seed: int = 0):
    """Simulated power of the recommendation (:func:`abkit.power.simulate_power`), or None.

    At the recommended duration's units (the plan's control arm, ``ratio``
    x that per treatment arm), the recommended change in the primary
    metric's good direction, injected multiplicatively, the per-comparison
    alpha of the plan; only the history's control arm is resampled when
    the spec names a ``variant``.
    """
    from .. import power

    if not n_sims or rec.days is None or rec.mde is None or not math.isfinite(rec.mde) or rec.mde <= 0:
        return None
    row = _row_at(bundle.main, spec.primary.name, rec.days)
    if row is None or not np.isfinite(row.n_control):
        return None
    built = {m.name: b for m, b in zip(spec.metrics, spec.build_metrics())}
    alpha = float(power.comparison_alpha(_level(spec), spec.arms, spec.correction))
    return power.simulate_power(
        spec.open_data(),
        built[spec.primary.name],
        _direction(spec) * rec.mde,
        n_per_arm=float(row.n_control),
        ratio=spec.ratio,
        alpha=alpha,
        n_sims=int(n_sims),
        seed=seed,
        variant=spec.variant,
        control=spec.control,
    )


def simulation_text(sim, spec, rec: Recommendation) -> str:
    """One sentence: what the simulation found, against the power the plan promises (``spec.power``).

    The plan's power at the recommendation is at least ``spec.power`` (the
    recommended duration is rounded up to whole days), so the check asks
    whether the simulated power reaches it.
    """
    r = sim.to_frame().iloc[0]
    change = f"{abs(r.relative_effect):.1%} {'increase' if r.relative_effect > 0 else 'decrease'}"
    text = (
        f"Simulation check: in {int(r.n_sims):,} simulated {rec.days}-day tests on resampled history, the "
        f"analysis detected a {change} in {sim.metric} {r.power:.0%} of the time ({sim.ci_level:.0%} "
        f"Monte Carlo interval {r.ci_lower:.0%} to {r.ci_upper:.0%})"
    )
    if r.ci_upper < spec.power:
        return text + (
            f", short of the planned {spec.power:.0%}: the formula is optimistic for this metric; "
            "consider running longer."
        )
    if r.ci_lower > spec.power:
        return text + f", above the planned {spec.power:.0%}: the plan is on the safe side."
    return text + f", consistent with the planned {spec.power:.0%}."


def power_curve_figure(bundle: PlanBundle, spec, rec: Recommendation, simulation=None):
    """The power by true change at the recommended duration (every main metric), as a matplotlib Figure."""
    day = rec.days or _horizon(spec)
    f = bundle.main.to_frame()
    prim = f[(f.metric == spec.primary.name) & (f.days == day)]
    top = abs(float(prim.relative_mde.iloc[0])) if len(prim) else math.nan
    if rec.mde is not None and math.isfinite(rec.mde):
        top = max(top, rec.mde) if math.isfinite(top) else rec.mde
    effects = np.linspace(0.0, 2.5 * top, 61) if math.isfinite(top) and top > 0 else None
    ax = bundle.main.plot("power", days=day, effects=effects, simulated=simulation)
    return ax.figure


def power_curve_context(fig, bundle: PlanBundle, spec, rec: Recommendation, simulation=None) -> dict:
    """The power curve (``plan_power_curve.html.j2``): the chart, its alt text and the simulation check's words."""
    day = rec.days or _horizon(spec)
    mdes = sorted({0.02, 0.05, 0.10, 0.20} | ({round(rec.mde, 4)} if rec.mde and math.isfinite(rec.mde) else set()))
    curve = bundle.main.power_curve(day, metric=spec.primary.name, effects=mdes)
    alt = f"Chart of the power by the size of the true change after {day} days; {spec.primary.name}: " + "; ".join(
        f"a {r.change:.1%} change detected with {r.power:.0%} power" for r in curve.itertuples()
    )
    sim = None
    if simulation is not None:
        r = simulation.to_frame().iloc[0]
        sim = {
            "sentence": simulation_text(simulation, spec, rec),
            "n_control": f"{int(r.n_control):,}",
            "n_treatment": f"{int(r.n_treatment):,}",
            "history_units": f"{simulation.history_units:,}",
            "whose": " of the history's control arm" if spec.variant else " of the history",
            "injected": "numerator" if simulation.kind == "ratio" else "outcome",
            "closed_form": f"{r.closed_form:.0%}",
        }
    return {"days": day, "power": f"{spec.power:.0%}", "chart": chart_image(fig, alt), "simulation": sim}


def power_curve_html(fig, bundle: PlanBundle, spec, rec: Recommendation, simulation=None) -> str:
    return render_page("plan_power_curve.html.j2", **power_curve_context(fig, bundle, spec, rec, simulation))


def durations_context(bundle: PlanBundle, spec) -> dict:
    """The MDE by duration and the units and days per change (``plan_durations.html.j2``)."""
    f = bundle.main.to_frame()
    metrics = list(dict.fromkeys(f.metric))
    rows = []
    for d in sorted(f.days.unique()):
        part = f[f.days == d].set_index("metric")
        mdes = [
            f"{abs(part.loc[m, 'relative_mde']):.1%}"
            if m in part.index and np.isfinite(part.loc[m, "relative_mde"])
            else None
            for m in metrics
        ]
        rows.append({"days": int(d), "units": f"{float(part.units.iloc[0]):,.0f}", "mdes": mdes})
    sizes = [
        {
            "metric": r.metric,
            "change": f"{abs(r.relative_mde):.1%}",
            "units": f"{r.total:,}",
            "days": int(r.days_needed) if np.isfinite(r.days_needed) else "not reachable",
        }
        for r in bundle.main.sample_sizes().itertuples()
    ]
    return {"metrics": metrics, "rows": rows, "sizes": sizes}


def durations_html(bundle: PlanBundle, spec) -> str:
    return render_page("plan_durations.html.j2", **durations_context(bundle, spec))


def guardrails_context(bundle: PlanBundle, spec) -> dict:
    """The power to show each guardrail within its margin, by duration (``plan_guardrails.html.j2``)."""
    guardrails = []
    for g, gplan in bundle.guardrails.items():
        f = gplan.to_frame()
        guardrails.append(
            {
                "name": g,
                "margin": f"{float(f.margin.iloc[0]):.1%}",
                "rows": [
                    {"days": int(r.days), "units": f"{r.units:,.0f}", "power": f"{r.power_noninferiority:.0%}"}
                    for r in f.itertuples()
                ],
            }
        )
    return {
        "level": f"{_level(spec, guardrail=True):.2g}",
        "confidence": f"{1 - spec.alpha:.0%}",
        "sequential": bool(getattr(spec, "sequential", False)),
        "guardrails": guardrails,
    }


def guardrails_html(bundle: PlanBundle, spec) -> str:
    if not bundle.guardrails:
        return ""
    return render_page("plan_guardrails.html.j2", **guardrails_context(bundle, spec))


def methodology_context(spec, simulation=None) -> dict:
    """What the methodology section (``plan_methodology.html.j2``) needs to describe this plan."""
    from .render import footer_context

    seq = None
    if getattr(spec, "sequential", False):
        from .. import power

        seq = {"level": f"{power.always_valid_alpha(spec.alpha):.2g}"}
    sim = None
    if simulation is not None:
        first = simulation.rows[0]
        sim = {
            "seed": simulation.seed,
            "n_sims": f"{first['n_sims']:,}",
            "n_control": f"{first['n_control']:,}",
            "n_treatment": f"{first['n_treatment']:,}",
            "history_units": f"{simulation.history_units:,}",
            "rule": simulation.injection_rule,
            "method": simulation.method,
        }
    arms = {"comparisons": spec.arms - 1, "correction": spec.correction or "no correction"} if spec.arms > 2 else None
    return {"sequential": seq, "simulation": sim, "arms": arms, "footer": footer_context(spec, "history")}


def methodology_html(spec, simulation=None) -> str:
    return render_page("plan_methodology.html.j2", **methodology_context(spec, simulation))


def summary(spec, rec: Recommendation) -> dict:
    """Plain JSON data for the portfolio page."""
    return {
        "name": spec.name,
        "kind": "power",
        "primary": spec.primary.name,
        "better": spec.primary.better,
        "alpha": spec.alpha,
        "arms": [
            {
                "variant": "plan",
                "label": rec.label,
                "headline": rec.headline,
                "colour": rec.colour,
                "rel_effect": None,
                "rel_ci_lower": None,
                "rel_ci_upper": None,
                "p_value": None,
                "text": (
                    f"MDE {rec.mde:.1%} in {rec.days} days"
                    if rec.mde is not None and rec.days and math.isfinite(rec.mde)
                    else rec.label
                ),
            }
        ],
    }


def _records(df: pd.DataFrame) -> list[dict]:
    out = []
    for rec in df.to_dict(orient="records"):
        clean = {}
        for k, v in rec.items():
            if isinstance(v, (np.floating, float)):
                clean[k] = float(v) if math.isfinite(v) else None
            elif isinstance(v, np.integer):
                clean[k] = int(v)
            else:
                clean[k] = v
        out.append(clean)
    return out


def to_json(spec, bundle: PlanBundle, rec: Recommendation, simulation=None) -> dict:
    """Everything the plan says, as plain JSON data (``abkit power --json``)."""

    def fin(x):
        return float(x) if x is not None and math.isfinite(x) else None

    extra = {}
    if simulation is not None:
        extra["simulation"] = {
            "rule": simulation.injection_rule,
            "ci_method": simulation.ci_method,
            "seed": simulation.seed,
            "rows": _records(simulation.to_frame()),
        }
    out = {
        "name": spec.name,
        "spec": spec.source,
        "primary": spec.primary.name,
        "recommendation": {
            "label": rec.label,
            "headline": rec.headline,
            "reasons": list(rec.reasons),
            "feasible": rec.feasible,
            "days": rec.days,
            "units": None if rec.units is None or fin(rec.units) is None else math.ceil(rec.units),
            "mde": fin(rec.mde),
        },
        "settings": {
            "alpha": spec.alpha,
            "power": spec.power,
            "arms": spec.arms,
            "ratio": spec.ratio,
            "traffic": bundle.main.traffic,
            "target_mde": spec.mde,
            "max_days": spec.max_days,
        },
        "assumptions": _records(
            pd.concat([bundle.main.designs(), *(p.designs() for p in bundle.guardrails.values())], ignore_index=True)
        ),
        "mde_by_duration": _records(bundle.main.to_frame()),
        "sample_sizes": _records(bundle.main.sample_sizes()),
        "guardrails": {g: _records(p.to_frame()) for g, p in bundle.guardrails.items()},
    }
    out.update(extra)
    return out
