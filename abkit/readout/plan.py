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

The HTML pieces escape every user string; :func:`to_json` is what
``abkit power --json`` prints.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..results import format_number
from .render import _e, _text_block, figure_data_uri

__all__ = ["Recommendation", "PlanBundle", "make_plan", "recommend", "header_html", "recommendation_html",
           "details_html", "assumptions_html", "curves_html", "power_curve_figure", "power_curve_html",
           "simulation_count", "simulation_check", "simulation_text", "durations_html", "guardrails_html",
           "methodology_html", "summary", "to_json", "EXTRA_MDES", "MAX_SIMULATIONS"]

EXTRA_MDES = (0.02, 0.03, 0.05, 0.10)
MAX_SIMULATIONS = 20_000
_BLUE, _AMBER = "#0969da", "#9a6700"


@dataclass(frozen=True)
class PlanBundle:
    """The power plans behind a test-plan readout."""

    main: object                 # abkit.power.PowerPlan of the primary and secondary metrics
    guardrails: dict             # guardrail name -> PowerPlan with its non-inferiority margin


@dataclass(frozen=True)
class Recommendation:
    label: str                   # "Run 25 days" / "Not feasible" / "MDE 4.1% in 28 days"
    headline: str
    reasons: tuple[str, ...]
    feasible: bool
    days: int | None             # recommended duration
    units: float | None          # units enrolled by then (all arms)
    mde: float | None            # the relative MDE at that duration

    @property
    def colour(self) -> str:
        return _BLUE if self.feasible else _AMBER


def _plan_kwargs(spec) -> dict:
    return dict(variant=spec.variant, control=spec.control, alpha=spec.alpha, power=spec.power, ratio=spec.ratio,
                arms=spec.arms, correction=spec.correction, daily_units=spec.daily_units,
                population=spec.population, traffic_share=spec.traffic_share,
                sequential=bool(getattr(spec, "sequential", False)))


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
    data = spec.open_data()   # the file path, or the table opened in its engine
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
            headline = (f"Run the test for {need} days ({units:,.0f} units) to detect a {spec.mde:.1%} change in "
                        f"{p} with {spec.power:.0%} power.")
            days, feasible, mde_at = need, True, spec.mde
        else:
            label = "Not feasible"
            why = (f"more than the traffic brings in {spec.max_days} days" if need is not None
                   else "more than the eligible population holds")
            headline = (f"A {spec.mde:.1%} change in {p} is out of reach: it needs {units:,.0f} units, {why}. "
                        f"In {horizon} days the test can detect a {mde_h:.1%} change.")
            days, feasible, mde_at = horizon, False, mde_h
            units = float(at_h.units) if at_h is not None else math.nan
    else:
        units = float(at_h.units) if at_h is not None else math.nan
        label = f"MDE {mde_h:.1%} in {horizon} days"
        headline = (f"In {horizon} days ({units:,.0f} units) the test can detect a {mde_h:.1%} change in {p} with "
                    f"{spec.power:.0%} power.")
        days, feasible, mde_at = horizon, True, mde_h
    if getattr(spec, "sequential", False):
        from scipy import stats

        from .. import power

        zp = stats.norm.ppf(spec.power)
        k_av, k_fixed = stats.norm.isf(power.always_valid_alpha(spec.alpha) / 2), stats.norm.isf(spec.alpha / 2)
        factor = ((k_av + zp) / (k_fixed + zp)) ** 2
        reasons.insert(0, "planned for always-valid intervals (the test will be read while it runs, and may stop "
                          f"early): they need about {factor:.1f}x the units of a test read once at its planned end; "
                          f"give the readout's spec sequential: true and planned_units: {units:,.0f}")
    design = next(d for d in main.metrics if d.metric == p)
    if design.covariates:
        reasons.append(f"CUPED on {', '.join(design.covariates)} removes {design.variance_reduction:.0%} of the "
                       f"variance of {p}; without it the same test would need "
                       f"{1 / (1 - design.variance_reduction):.2f}x the units.")
    for g, gplan in bundle.guardrails.items():
        row = _row_at(gplan, g, days)
        if row is None:
            continue
        pw = float(row.power_noninferiority)
        margin = float(row.margin)
        text = (f"guardrail {g}: {pw:.0%} power to show it stays within its {margin:.1%} margin in {days} days "
                "(if the change truly does nothing to it)")
        if pw < spec.power:
            text += f"; below the planned {spec.power:.0%}: expect an unclear guardrail, or widen the margin"
        reasons.append(text)
    if spec.arms > 2:
        reasons.append(f"{spec.arms} arms: each comparison with control is tested at alpha "
                       f"{spec.alpha:g} split {spec.correction or 'not'} ({spec.arms - 1} comparisons).")
    return Recommendation(label, headline, tuple(reasons), feasible, days, units, mde_at)


# =========================================================================== HTML
def header_html(spec) -> str:
    bits = []
    if spec.owner:
        bits.append(f"<span><b>Owner</b> {_e(spec.owner)}</span>")
    if spec.start:
        bits.append(f"<span><b>Planned start</b> {_e(spec.start.isoformat())}</span>")
    p = spec.primary
    bits.append(f"<span><b>Primary metric</b> {_e(f'{p.name} ({p.definition}; {p.better} is better)')}</span>")
    parts = ['<header class="abkit-header">', '<div class="abkit-kicker">Test plan &middot; power and duration</div>',
             f"<h1>{_e(spec.name)}</h1>", f'<p class="abkit-sub">{"".join(bits)}</p>']
    if spec.hypothesis and spec.hypothesis.strip():
        parts.append(f'<div class="abkit-note"><b>Hypothesis.</b> {_text_block(spec.hypothesis)}</div>')
    parts.append("</header>")
    return "\n".join(parts)


def recommendation_html(rec: Recommendation, spec, simulation=None) -> str:
    extra = (simulation_text(simulation, spec, rec),) if simulation is not None else ()
    reasons = "".join(f"<li>{_e(r)}</li>" for r in (*rec.reasons, *extra))
    rule = ("<b>How this was decided.</b> The days the traffic needs to detect the target change on the primary "
            f"metric with {spec.power:.0%} power at alpha {spec.alpha:g} (two-sided), from the metric's baseline "
            "and unit-level variance in the history; feasible when within the longest acceptable run.")
    return ('<section class="abkit-section" id="abkit-verdict"><h2>Recommendation</h2><div class="abkit-verdicts">'
            f'<div class="abkit-verdict" style="border-left-color:{rec.colour}">'
            f'<div class="abkit-verdict-top"><span class="abkit-label" style="background:{rec.colour}">'
            f'{_e(rec.label)}</span><span class="abkit-arm">{_e(spec.primary.name)}</span></div>'
            f'<p class="abkit-headline">{_e(rec.headline)}</p><ul class="abkit-reasons">{reasons}</ul></div></div>'
            f'<p class="abkit-rule">{rule}</p></section>')


def details_html(spec, bundle: PlanBundle) -> str:
    rows = [("History", _e(f"{spec.data_label}" + (f" (a past test: variances pooled within the arms of column "
                                                        f"{spec.variant})" if spec.variant else ""))),
            ("Traffic", _e(bundle.main.traffic)),
            ("Design", _e(f"{spec.arms} arms, treatment/control = {spec.ratio:g}, alpha {spec.alpha:g} "
                          f"(two-sided), power {spec.power:.0%}")),
            ("Target", _e(f"detect a {spec.mde:.1%} change in {spec.primary.name}" if spec.mde else
                          "none given: the MDE by duration is shown")),
            ("Longest acceptable run", _e(f"{spec.max_days} days" if spec.max_days else "not given"))]
    if spec.guardrails:
        rows.append(("Guardrails", "<br>".join(
            _e(f"{g.name}: " + (f"may get at most {g.margin:.1%} worse" if g.margin is not None else
                                "no margin given (MDE shown with the other metrics)")) for g in spec.guardrails)))
    meta = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    desc = ""
    if spec.description and spec.description.strip():
        desc = f'<div class="abkit-description"><b>What will change.</b> {_text_block(spec.description)}</div>'
    return f'<section class="abkit-section"><h2>The plan</h2><dl class="abkit-meta">{meta}</dl>{desc}</section>'


def assumptions_html(bundle: PlanBundle) -> str:
    designs = [d for d in bundle.main.metrics] + [d for g in bundle.guardrails.values() for d in g.metrics]
    rows = "".join(
        f"<tr><td><b>{_e(d.metric)}</b></td><td>{_e(d.kind)}</td><td>{format_number(d.baseline)}</td>"
        f"<td>{format_number(d.sd)}</td><td>{_e(', '.join(d.covariates)) or '&ndash;'}</td>"
        f"<td>{d.variance_reduction:.0%}</td><td>{d.n_units:,}</td></tr>" for d in designs)
    return ('<section class="abkit-section"><h2>Assumptions, from the history</h2>'
            '<p class="abkit-muted">Each metric\'s baseline, its unit-level standard deviation (delta method for '
            "ratios) and the share of its variance CUPED removes with the listed pre-period covariates. The plan "
            "holds if the test population behaves like the history.</p>"
            '<div class="abkit-table-wrap"><table class="abkit-table abkit-narrow"><thead><tr><th>Metric</th>'
            "<th>Type</th><th>Baseline</th><th>Unit sd</th><th>CUPED covariates</th><th>Variance removed</th>"
            f"<th>Units in history</th></tr></thead><tbody>{rows}</tbody></table></div></section>")


def curves_html(fig, bundle: PlanBundle, spec) -> str:
    f = bundle.main.to_frame()
    p = f[f.metric == spec.primary.name]
    alt = (f"Chart of the minimum detectable effect by duration; {spec.primary.name}: "
           + "; ".join(f"{int(r.days)} days {abs(r.relative_mde):.1%}" for r in p.itertuples()))
    return ('<section class="abkit-section abkit-chart"><h2>What the test can detect, by duration</h2>'
            '<p class="abkit-muted">Minimum detectable effect (relative to the baseline) with '
            f"{spec.power:.0%} power, by how long the test runs; solid with CUPED, dashed without. Longer tests "
            "detect smaller changes, but with repeat visitors the curve flattens: new units run out.</p>"
            f'<figure class="abkit-figure"><img src="{figure_data_uri(fig)}" alt="{_e(alt)}"></figure></section>')


def simulation_count(spec, override=None) -> int:
    """Simulated tests for the check: ``override`` (the notebook parameter) if given, else the spec's
    ``simulate`` (0 when the spec format has no such key): 0 means no simulation."""
    n = override if override is not None else getattr(spec, "simulate", None)
    if n is None or n is False:
        return 0
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= MAX_SIMULATIONS:
        from ..errors import AbkitError

        raise AbkitError(f"simulate={n!r} must be a whole number of simulated tests between 0 (off) and "
                         f"{MAX_SIMULATIONS:,}, e.g. 500")
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
    return power.simulate_power(spec.open_data(), built[spec.primary.name], _direction(spec) * rec.mde,
                                n_per_arm=float(row.n_control), ratio=spec.ratio, alpha=alpha, n_sims=int(n_sims),
                                seed=seed, variant=spec.variant, control=spec.control)


def simulation_text(sim, spec, rec: Recommendation) -> str:
    """One sentence: what the simulation found, against the power the plan promises (``spec.power``).

    The plan's power at the recommendation is at least ``spec.power`` (the
    recommended duration is rounded up to whole days), so the check asks
    whether the simulated power reaches it.
    """
    r = sim.to_frame().iloc[0]
    change = f"{abs(r.relative_effect):.1%} {'increase' if r.relative_effect > 0 else 'decrease'}"
    text = (f"Simulation check: in {int(r.n_sims):,} simulated {rec.days}-day tests on resampled history, the "
            f"analysis detected a {change} in {sim.metric} {r.power:.0%} of the time ({sim.ci_level:.0%} "
            f"Monte Carlo interval {r.ci_lower:.0%} to {r.ci_upper:.0%})")
    if r.ci_upper < spec.power:
        return text + (f", short of the planned {spec.power:.0%}: the formula is optimistic for this metric; "
                       "consider running longer.")
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


def power_curve_html(fig, bundle: PlanBundle, spec, rec: Recommendation, simulation=None) -> str:
    day = rec.days or _horizon(spec)
    mdes = sorted({0.02, 0.05, 0.10, 0.20} | ({round(rec.mde, 4)} if rec.mde and math.isfinite(rec.mde) else set()))
    curve = bundle.main.power_curve(day, metric=spec.primary.name, effects=mdes)
    alt = (f"Chart of the power by the size of the true change after {day} days; {spec.primary.name}: "
           + "; ".join(f"a {r.change:.1%} change detected with {r.power:.0%} power" for r in curve.itertuples()))
    sim = ""
    if simulation is not None:
        r = simulation.to_frame().iloc[0]
        whose = " of the history's control arm" if spec.variant else " of the history"
        sim = f'<p class="abkit-muted"><b>{_e(simulation_text(simulation, spec, rec))}</b> ' + _e(
            f"Each simulated test draws {int(r.n_control):,} + {int(r.n_treatment):,} units with replacement from "
            f"the {simulation.history_units:,} units{whose}, multiplies the "
            f"{'numerator' if simulation.kind == 'ratio' else 'outcome'} of the treatment units by one plus the "
            "change, and is analysed exactly as the real test will be (black square: the simulated power, bar: "
            f"its Monte Carlo interval). The formula on this resampled population gives {r.closed_form:.0%}. "
            "Simulation and plan differ where the formula's assumptions do not hold: a multiplied outcome also "
            "scales the treatment arm's spread (decreases become slightly easier to detect, increases slightly "
            "harder), and the plan pools the variance of every arm of the history.") + "</p>"
    return ('<section class="abkit-section abkit-chart"><h2>Power by the size of the true change</h2>'
            f'<p class="abkit-muted">The chance that a {day}-day test detects a true change of each size (relative '
            "to the baseline, in the metric's good direction); solid with CUPED, dashed without. The dot marks the "
            f"MDE, the change detected with the planned {spec.power:.0%} power. Smaller changes are often missed: "
            "a test that finds nothing has not shown that nothing changed.</p>"
            f'<figure class="abkit-figure"><img src="{figure_data_uri(fig)}" alt="{_e(alt)}"></figure>{sim}</section>')


def durations_html(bundle: PlanBundle, spec) -> str:
    f = bundle.main.to_frame()
    metrics = list(dict.fromkeys(f.metric))
    days = sorted(f.days.unique())
    head = "<th>Days</th><th>Units (all arms)</th>" + "".join(f"<th>{_e(m)}</th>" for m in metrics)
    rows = []
    for d in days:
        part = f[f.days == d].set_index("metric")
        units = float(part.units.iloc[0])
        cells = "".join(f"<td>{abs(part.loc[m, 'relative_mde']):.1%}</td>" if m in part.index and
                        np.isfinite(part.loc[m, "relative_mde"]) else "<td>&ndash;</td>" for m in metrics)
        rows.append(f"<tr><td>{int(d)}</td><td>{units:,.0f}</td>{cells}</tr>")
    sizes = bundle.main.sample_sizes()
    srows = "".join(
        f"<tr><td>{_e(r.metric)}</td><td>{abs(r.relative_mde):.1%}</td><td>{r.total:,}</td>"
        f"<td>{int(r.days_needed) if np.isfinite(r.days_needed) else 'not reachable'}</td></tr>"
        for r in sizes.itertuples())
    return ('<section class="abkit-section"><h2>Minimum detectable effect by duration</h2>'
            '<div class="abkit-table-wrap"><table class="abkit-table abkit-narrow"><thead><tr>'
            f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
            "<h3>Units and days for a given change</h3>"
            '<div class="abkit-table-wrap"><table class="abkit-table abkit-narrow"><thead><tr><th>Metric</th>'
            "<th>Change to detect</th><th>Units (all arms)</th><th>Days</th></tr></thead>"
            f"<tbody>{srows}</tbody></table></div></section>")


def guardrails_html(bundle: PlanBundle, spec) -> str:
    if not bundle.guardrails:
        return ""
    parts = []
    for g, gplan in bundle.guardrails.items():
        f = gplan.to_frame()
        rows = "".join(f"<tr><td>{int(r.days)}</td><td>{r.units:,.0f}</td><td>{r.power_noninferiority:.0%}</td></tr>"
                       for r in f.itertuples())
        parts.append(f"<h3>{_e(g)} (margin {float(f.margin.iloc[0]):.1%})</h3>"
                     '<div class="abkit-table-wrap"><table class="abkit-table abkit-narrow"><thead><tr><th>Days</th>'
                     "<th>Units (all arms)</th><th>Power to show non-inferiority</th></tr></thead>"
                     f"<tbody>{rows}</tbody></table></div>")
    return ('<section class="abkit-section"><h2>Guardrails</h2><p class="abkit-muted">The chance that the test '
            f"shows each guardrail stays within its margin (one-sided test at {_level(spec, guardrail=True):.2g}: "
            f"the readout calls a guardrail ok when the bad side of its {1 - spec.alpha:.0%}"
            f"{' always-valid' if getattr(spec, 'sequential', False) else ''} interval is within the margin), if "
            "the change truly does "
            "nothing to it. Below the planned power, expect the readout to call the guardrail unclear.</p>"
            + "".join(parts) + "</section>")


def methodology_html(spec, simulation=None) -> str:
    import datetime as _dt
    from pathlib import Path

    from .. import __version__

    items = [
        "Means and ratio metrics: two-sample t-test power (as statsmodels' TTestIndPower), with the delta-method "
        "unit-level standard deviation for ratios (Deng, Knoblich and Lu 2018) and CUPED's variance reduction "
        "(Deng et al. 2013) estimated from the history; proportions without covariates: the two-proportion z-test "
        "with unpooled variances, the test the readout runs (R's power.prop.test pools them under the null).",
        "Units enrolled by day from the traffic model of abkit.power.uniques_after (eligible units a day, repeat "
        "visitors counted once when a population is given), split between the arms as planned.",
        "Guardrails with a margin: one-sided non-inferiority test at alpha/2 (the rule the readout applies: the "
        "bad-side bound of the two-sided Fieller interval of the relative change within the margin m, i.e. the "
        "ratio test of treatment - (1 ± m) control), power when the true effect is zero; for a test read with "
        "always-valid intervals, at half the always-valid level.",
        "Power curves: the same formulas at the recommended duration's units, for every size of the true change.",
    ]
    if getattr(spec, "sequential", False):
        from .. import power

        items.append(
            "Planned for a test read while it runs (sequential: true): its always-valid intervals (a normal-mixture "
            "confidence sequence tuned to the planned units; Howard et al. 2021) are wider than fixed-horizon "
            f"ones, so every formula above runs at the level {power.always_valid_alpha(spec.alpha):.2g}, whose "
            "critical value equals the always-valid half-width at the planned size (about 3.03 standard errors "
            "instead of 1.96 for alpha 0.05): the power of the final look, a little conservative since the test "
            "may also stop earlier. The readout's spec needs `sequential: true` and `planned_units` as planned here.")
    if simulation is not None:
        items.append(
            f"Simulation check (abkit.power.simulate_power, seed {simulation.seed}): {simulation.rows[0]['n_sims']:,} "
            f"tests of {simulation.rows[0]['n_control']:,} + {simulation.rows[0]['n_treatment']:,} units drawn with "
            f"replacement from {simulation.history_units:,} history units; {simulation.injection_rule}; each "
            f"analysed with abkit's estimator ({simulation.method}); power = share of tests with p < alpha, with "
            "an exact Clopper-Pearson interval for the Monte Carlo error.")
    if spec.arms > 2:
        items.append(f"Several arms: alpha split over the {spec.arms - 1} comparisons with control "
                     f"({spec.correction or 'no correction'}).")
    glossary = [("MDE", "minimum detectable effect: the smallest true change the test detects with the planned "
                        "power."),
                ("Power", "the chance that the test detects a true change of that size."),
                ("CUPED", "a variance reduction that uses each unit's behaviour before the test."),
                ("Non-inferiority", "showing that a metric got at most a margin worse.")]
    gl = "".join(f"<dt>{k}</dt><dd>{_e(v)}</dd>" for k, v in glossary)
    src = Path(spec.source).name if spec.source else "(none)"
    footer = (f'<p class="abkit-footer">Generated by abkit {_e(__version__)} on '
              f"{_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} from spec {_e(src)} and history "
              f"{_e(spec.data_label)}. The executed notebook with all code is readout.ipynb next to this "
              "page.</p>")
    return ('<section class="abkit-section abkit-method"><h2>Methodology</h2><ul>'
            + "".join(f"<li>{_e(i)}</li>" for i in items) + f'</ul><h3>Glossary</h3><dl class="abkit-glossary">{gl}'
            "</dl></section>" + footer)


def summary(spec, rec: Recommendation) -> dict:
    """Plain JSON data for the portfolio page."""
    return {"name": spec.name, "kind": "power", "primary": spec.primary.name, "better": spec.primary.better,
            "alpha": spec.alpha,
            "arms": [{"variant": "plan", "label": rec.label, "headline": rec.headline, "colour": rec.colour,
                      "rel_effect": None, "rel_ci_lower": None, "rel_ci_upper": None, "p_value": None,
                      "text": (f"MDE {rec.mde:.1%} in {rec.days} days" if rec.mde is not None and rec.days
                               and math.isfinite(rec.mde) else rec.label)}]}


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
        extra["simulation"] = {"rule": simulation.injection_rule, "ci_method": simulation.ci_method,
                               "seed": simulation.seed, "rows": _records(simulation.to_frame())}
    out = {
        "name": spec.name, "spec": spec.source, "primary": spec.primary.name,
        "recommendation": {"label": rec.label, "headline": rec.headline, "reasons": list(rec.reasons),
                           "feasible": rec.feasible, "days": rec.days,
                           "units": None if fin(rec.units) is None else math.ceil(rec.units), "mde": fin(rec.mde)},
        "settings": {"alpha": spec.alpha, "power": spec.power, "arms": spec.arms, "ratio": spec.ratio,
                     "traffic": bundle.main.traffic, "target_mde": spec.mde, "max_days": spec.max_days},
        "assumptions": _records(pd.concat([bundle.main.designs(), *(p.designs() for p in bundle.guardrails.values())],
                                          ignore_index=True)),
        "mde_by_duration": _records(bundle.main.to_frame()),
        "sample_sizes": _records(bundle.main.sample_sizes()),
        "guardrails": {g: _records(p.to_frame()) for g, p in bundle.guardrails.items()},
    }
    out.update(extra)
    return out
