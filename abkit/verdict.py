"""The decision rules: one documented function per readout kind turns results into a verdict.

A/B tests: :func:`decide`
-------------------------

Per treatment arm, evaluated in this order:

1. **Invalid** (SRM or data problem): the sample-ratio-mismatch test fails
   (p < 0.001), or the arms already differed *before* the test (joint
   pre-period balance test p < 0.001), or, when the analysis checked unit
   integrity (``analyze(..., unit=...)``), more than :data:`LEAK_ALARM`
   (1%) of the units appear in more than one arm (an assignment leak) or
   more than :data:`DUPLICATE_ALARM` (1%) of the units have more than one
   row. Assignment or logging is broken, so no effect can be trusted.
   Smaller leaks or duplicates do not change the label; they are listed
   first among the reasons as a caution.
2. **Do not ship**: the primary metric moved significantly in the wrong
   direction, or a guardrail is *breached*.
3. **Ship**: the primary metric moved significantly in the right direction
   and every guardrail is *ok*.
4. **Inconclusive**: otherwise. When the days run so far are known, the
   verdict says how many more days are needed, e.g. "Inconclusive (need 9
   more days)": for a primary metric that is not significant, the days to
   detect the planned ``mde`` with ``power`` (:func:`days_to_detect`); for a
   significant primary with unclear guardrails, the days until their
   intervals fit within the margins (:func:`days_to_show_margin`); the
   longer of these.

"Significantly" means the decision p-value (Holm/BH-adjusted when the
analysis asked for a correction) is below alpha; the good direction is the
metric's ``better``. Texts name that p-value for what it is ("Holm-adjusted
p", "always-valid p"): see :func:`p_label`.

**Sequential (always-valid) results** (``analyze(..., sequential=...)``):
the same rules on the always-valid p-values and intervals, and the days
still needed use the always-valid interval's half-width ``h`` instead of
``z_{1-alpha/2} se``: with the mixture of the analysis (``tau^2`` fixed, as
:class:`abkit.sequential.AlwaysValid` tunes it) the units needed are the
smallest ``n`` with ``h(V(n)) + z_power se(n) <= mde``, ``V(n) = V_now n_now / n``,
found by bisection (:func:`days_to_detect`); for a guardrail, the smallest
``n`` with ``w + h(V(n)) <= m`` (:func:`days_to_show_margin`). This is the
power of one look at ``n``: a little conservative, since a sequential test
may also stop at an earlier look (simulated: the path reaches the power about
12% sooner).

**Caveats** (listed among the reasons, never a label): differential
missingness (:func:`missingness_checks`). For a metric that drops units
without a value (``dropna=True``, e.g. time to refund, defined only for
buyers with a refund), the share of units with a value is compared between
each treatment arm and control (two-proportion z-test, pooled variance;
the same as the 2x2 chi-square test). When it differs (p below the
analysis' alpha) the treatment changed *who is measured*, so the metric's
effect mixes a change in composition with a change in the metric, and the
reasons say so. The threshold is alpha, not the 0.001 of the SRM alarm:
the SRM alarm invalidates the whole readout and runs on every test, so it
must rarely fire by chance; this check only adds a caveat to one metric,
and a composition shift the readout would call significant by its own
standard should not pass unmentioned. In A/A data it flags about alpha of
the dropna metric x arm comparisons (tested).

**How a change is put in words** (:func:`change_words`): an NPS in points
("NPS up 7.9 points"); otherwise the relative lift ``(t - c) / |c|`` of
:mod:`abkit.stats.two_sample`, which has the sign of the absolute effect also when
the control value is negative (then the words say it is relative to the
size of the control value); and in the metric's absolute units, saying why,
when the control value is not distinguishable from zero (the relative
interval is unbounded; "near zero", :mod:`abkit.formatting`). The label
("up"/"down", "raised"/"lowered") always follows the absolute effect.

Guardrails (:func:`guardrail_status`). With a relative non-inferiority
``margin`` m (0.02 = "may get at most 2% worse") a guardrail is

* **ok** when the bad-side bound of its (1 - alpha) confidence interval of
  the relative change is within the margin (lower-is-better: upper bound
  <= +m; higher-is-better: lower bound >= -m). This is a one-sided
  non-inferiority test at level alpha/2, on the unadjusted interval the
  readout shows;
* **breached** when even the good-side bound is beyond the margin (the
  guardrail is worse by more than m with that confidence);
* **unclear** otherwise (the interval straddles the margin: more data needed).

Without a margin a guardrail is breached when it got significantly worse
(decision p-value below alpha) and ok otherwise.

The margin is relative to the control value's size, ``|c|``: for a negative
control value (a net amount, an NPS below zero) "at most 2% worse" means
worse by at most ``0.02 |c|`` in the metric's units, and the texts give that
amount. When the control value is not distinguishable from zero a relative
margin has no meaning (any absolute change is a huge relative one): the
guardrail is **unclear** (never ok, so the arm cannot ship on it) and the
text says to judge such a metric without a margin (must not get
significantly worse).

Rollouts (difference-in-differences): :func:`decide_rollout`
-------------------------------------------------------------

1. **Invalid (pre-trends fail)**: the joint pre-trend test rejects at alpha;
   launched and comparison units were already drifting apart before launch,
   so the comparison that DiD relies on does not hold.
2. **Worked**: the effect on the outcome is significant in the good
   direction, by *both* the analytic p-value and the bootstrap p-value (when
   given; with few units the bootstrap is the safer one).
3. **Made it worse**: significant, in the wrong direction.
4. **No detectable impact**: otherwise.

With too few launched (or never-launched) units (``few_treated``, fewer than
``abkit.did.FEW_TREATED_CLUSTERS``) the analytic and bootstrap p-values are
unreliable: "Worked" and "Made it worse" then rest on the randomization test
over which units launched (``randomization_p`` below alpha) instead; when the
usual p-values claim an effect that it does not confirm (or it cannot be
run), or the (equally unreliable) pre-trend test rejects, the label is
**Inconclusive**, pointing to a synthetic control. When the few are the
*launched* units, the reasons propose the synthetic estimators built for that
case: the same spec with ``method: synthetic`` (read as ``kind: synthetic``; :func:`decide_one_market`).

Failed placebo tests (a fake launch date with a significant "effect") do
not change the label; they are listed as a caution among the reasons.

A launch in one market (or a few): :func:`decide_one_market`
-------------------------------------------------------------

Read by synthetic difference-in-differences or synthetic control
(:func:`abkit.did.synthetic`, ``kind: synthetic`` specs), in this order:

1. **Inconclusive (poor pre-launch fit)**: before launch the synthetic twin
   missed the launched market by more than ``abkit.did.one_market.FIT_POOR``
   (2.5) times the typical miss of the comparison markets' own twins (the
   result's ``fit_quality`` is ``"poor"``). No mix of comparison markets
   reproduces its history, so the gap after launch may be the twin's error:
   never "Worked" (nor "Made it worse") on such a fit.
2. **Inconclusive (no interval)**: the uncertainty could not be estimated
   (the p-value or the interval is not finite).
3. **Inconclusive (fair pre-launch fit)**: the effect is significant, but
   the fit is only *fair* (between ``FIT_GOOD`` = 1.5 and ``FIT_POOR`` times
   the typical miss) and the placebo rank test does not confirm it (or, with
   too few comparison markets, cannot: it cannot go below ``1/(units
   ranked)``). The rank test (Abadie, Diamond & Hainmueller 2010) ranks the
   launched market among all markets by the ratio of its miss after launch to
   its miss before, so it discounts a gap that is no larger than the twin's
   own error; the placebo standard error does not.
4. **Worked**: the effect is significant (its p-value, from placebo
   launches in the comparison markets by default, below alpha) in the good
   direction.
5. **Made it worse**: significant, in the wrong direction.
6. **No detectable impact**: otherwise.

Why rules 1 and 3: on 24 simulated launches *without* effect in which the
launched market's trend lies outside what the comparison markets can mix
(:func:`abkit.simulate.one_market_panel`, trend loading 3 or 5 standard
deviations off, either sign; ``tests/test_one_market_readout.py``), the
placebo p-value alone claims an effect in 17; rule 1 leaves 9, rule 3 leaves
2 (both on a good fit). On the design panels (loading 1, a true -10%) the two
rules change no verdict. Cautions, listed among the reasons and never a
label: a fair fit; a rank test that does not confirm a significant effect on a
good fit (with ~30 markets it needs the launched one ranked first, so it
often cannot); staggered launches, whose fit is judged per cohort.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

from .formatting import (
    ABSOLUTE,
    POINTS,
    RELATIVE_TO_SIZE,
    change_scale,
    format_number,
    format_pct,
    p_text,
    signed_interval,
)  # p_text: re-exported, one formatter for sentences
from .results import ExperimentResult
from .stats.distributions import norm_isf, norm_ppf, norm_sf

__all__ = [
    "Verdict",
    "decide",
    "decide_rollout",
    "decide_one_market",
    "guardrail_status",
    "days_to_detect",
    "days_to_show_margin",
    "DaysEstimate",
    "MissingnessCheck",
    "missingness_test",
    "missingness_checks",
    "p_text",
    "p_label",
    "ci_label",
    "srm_sentence",
    "change_words",
    "change_interval_words",
    "BALANCE_ALARM",
    "LEAK_ALARM",
    "DUPLICATE_ALARM",
    "COLOURS",
]

COLOURS = {
    "Ship": "#1a7f37",
    "Do not ship": "#cf222e",
    "Inconclusive": "#9a6700",
    "Invalid": "#8250df",
    "Worked": "#1a7f37",
    "Made it worse": "#cf222e",
    "No detectable impact": "#9a6700",
}
BALANCE_ALARM = 0.001
"""Joint pre-period balance test p-value below which an A/B readout is Invalid (as the SRM alarm)."""
LEAK_ALARM = 0.01
"""Share of units seen in more than one arm above which an A/B readout is Invalid.

A leaked unit's rows count in every arm it appears in, so a leak share ``L``
pulls the effect towards zero by up to about ``L`` of its size and makes the
arms dependent samples. Below 1% (cross-device identities merged after
assignment, a few re-randomized buyers) that is small next to a typical
confidence interval and the readout only cautions; above it the assignment
itself is suspect."""
DUPLICATE_ALARM = 0.01
"""Share of units with more than one row above which an A/B readout is Invalid.

Duplicated rows of a unit are correlated, so the variance (which treats rows
as independent units) is too small and the unit weighs more than the others;
above 1% of the units the data are not one row per unit (a join fan-out, a
double load) and the numbers cannot be trusted."""

_CORRECTION_SHORT = {"holm": "Holm", "bh": "Benjamini-Hochberg"}


# --------------------------------------------------------------------------- words for numbers
def p_label(result: ExperimentResult) -> str:
    """What the decision p-value of ``result`` is: ``"p"``, ``"Holm-adjusted p"``, ``"always-valid p"``..."""
    words = []
    if result.correction:
        words.append(f"{_CORRECTION_SHORT.get(result.correction, result.correction)}-adjusted")
    if getattr(result, "sequential", False):
        words.append("always-valid")
    return " ".join([*words, "p"])


def ci_label(result: ExperimentResult) -> str:
    """``"95% CI"``, or ``"95% always-valid CI"`` for a sequential result."""
    return f"{1 - result.alpha:.0%} {'always-valid ' if getattr(result, 'sequential', False) else ''}CI"


def srm_sentence(srm) -> str:
    """The sample-ratio check in one sentence-case line, e.g. for a verdict's reasons."""
    obs = ", ".join(
        f"{a} {o:,} units ({s:.1%} vs {e:.1%} planned)"
        for a, o, s, e in zip(srm.arms, srm.observed, srm.observed_share, srm.expected_share)
    )
    head = "Sample ratio mismatch" if srm.mismatch else "No sample ratio mismatch"
    return f"{head}: {obs}; chi-square test {p_text(srm.p_value)}"


# --------------------------------------------------------------------------- differential missingness
@dataclass(frozen=True)
class MissingnessCheck:
    """Is the share of units with a value of a ``dropna`` metric the same in a treatment arm and control?"""

    metric: str
    variant: Hashable
    with_value_control: int
    units_control: int
    with_value_treatment: int
    units_treatment: int
    z: float
    p_value: float
    threshold: float

    @property
    def share_control(self) -> float:
        return self.with_value_control / self.units_control if self.units_control else math.nan

    @property
    def share_treatment(self) -> float:
        return self.with_value_treatment / self.units_treatment if self.units_treatment else math.nan

    @property
    def flagged(self) -> bool:
        return bool(math.isfinite(self.p_value) and self.p_value < self.threshold)

    def sentence(self, control: Hashable = "control", unit: str = "buyers") -> str:
        """``"15.4% of treatment's buyers have a value vs 16.4% of control's, p = 0.006"``."""
        return (
            f"{self.share_treatment:.1%} of {self.variant}'s {unit} have a value vs {self.share_control:.1%} "
            f"of {control}'s, {p_text(self.p_value)}"
        )


def missingness_test(
    with_control: int, units_control: int, with_treatment: int, units_treatment: int
) -> tuple[float, float]:
    """Two-proportion z-test (pooled variance) of equal shares with a value: ``(z, two-sided p)``.

    ``z = (p_t - p_c) / sqrt(p (1 - p) (1/n_c + 1/n_t))`` with ``p`` the pooled
    share; ``z^2`` is the Pearson chi-square of the 2x2 table (no continuity
    correction). No variation (every unit, or none, has a value) gives
    ``(0, 1)``.
    """
    n_c, n_t = float(units_control), float(units_treatment)
    if n_c <= 0 or n_t <= 0:
        return math.nan, math.nan
    pooled = (with_control + with_treatment) / (n_c + n_t)
    var = pooled * (1.0 - pooled) * (1.0 / n_c + 1.0 / n_t)
    if var <= 0:
        return 0.0, 1.0
    z = (with_treatment / n_t - with_control / n_c) / math.sqrt(var)
    return float(z), float(2.0 * norm_sf(abs(z)))


def missingness_checks(result: ExperimentResult, threshold: float | None = None) -> list[MissingnessCheck]:
    """One :class:`MissingnessCheck` per ``dropna`` metric x treatment arm with any unit left out.

    The counts are the result's: ``n_control`` units with a value and
    ``dropped_control`` without (likewise for the treatment arm).
    ``threshold``: flag below this p-value; default the result's alpha (see
    the module docstring for why not the SRM alarm's 0.001).
    """
    threshold = result.alpha if threshold is None else float(threshold)
    out = []
    for m in result.metrics:
        if not getattr(m, "dropna", False):
            continue
        if getattr(m, "kind", None) == "quantile" and getattr(m, "unit", None) is not None:
            # rows are not units here (n counts units with a value, dropped counts rows): no unit-level share
            continue
        for r in result.rows:
            if r["metric"] != m.name:
                continue
            n_c, n_t = int(r.get("n_control", 0)), int(r.get("n_treatment", 0))
            d_c, d_t = int(r.get("dropped_control", 0) or 0), int(r.get("dropped_treatment", 0) or 0)
            if d_c + d_t == 0:
                continue
            z, p = missingness_test(n_c, n_c + d_c, n_t, n_t + d_t)
            out.append(MissingnessCheck(m.name, r["variant"], n_c, n_c + d_c, n_t, n_t + d_t, z, p, threshold))
    return out


@dataclass(frozen=True)
class Verdict:
    """A decision for one treatment arm (or one rollout), in plain words."""

    variant: Hashable
    label: str  # Ship / Do not ship / Inconclusive / Invalid; Worked / Made it worse / No detectable impact
    headline: str  # one sentence a leader can read
    reasons: tuple[str, ...]
    note: str | None = None  # the parenthesis after the label, e.g. "need 9 more days", "pre-trends fail"
    days_more: int | None = None  # Inconclusive A/B tests: more days needed to detect the planned MDE

    @property
    def colour(self) -> str:
        return COLOURS[self.label]

    @property
    def display_label(self) -> str:
        """The label as shown: ``Inconclusive (need 9 more days)``."""
        return f"{self.label} ({self.note})" if self.note else self.label


# --------------------------------------------------------------------------- guardrails
def _kind(result: ExperimentResult, metric: str) -> str | None:
    try:
        return getattr(result.metric(metric), "kind", None)
    except Exception:  # noqa: BLE001 - a row of a metric the result does not define: plain words
        return None


def _points_text(x: float, lo: float, hi: float) -> tuple[str, str, str]:
    """An NPS change and its bounds in points, signed; one decimal unless the interval is narrower than ~1."""
    from .formatting import _decimals_for, _fixed

    d = max(1, _decimals_for(lo, hi, 2) or 1)
    return _fixed(x, d, sign=True), _fixed(lo, d, sign=True), _fixed(hi, d, sign=True)


def _near_zero_words(row: dict) -> str:
    return (
        f"control's value ({format_number(row['control_value'])}) is not distinguishable from zero, so the "
        "change is given in absolute units, not relative"
    )


def change_interval_words(result: ExperimentResult, row: dict) -> str:
    """The change of one row with its interval, in the row's reading (:func:`abkit.formatting.change_scale`).

    ``"+4.1%, 95% CI +1.0% to +7.2%"``; an NPS ``"+7.9 points, 95% CI +4.9 to
    +10.9 points"``; a negative control value ``"+40.9% of the size of
    control's value -5.006, 95% CI ..."``; near zero the absolute change,
    ``"+0.0373, 95% CI +0.0124 to +0.0622 (absolute: control's value ...)"``.
    """
    scale = change_scale(row, _kind(result, row["metric"]))
    lab = ci_label(result)
    if scale == POINTS:
        e, lo, hi = _points_text(row["effect"], row["ci_lower"], row["ci_upper"])
        return f"{e} points, {lab} {lo} to {hi} points"
    if scale == ABSOLUTE:
        e, lo, hi = signed_interval(row["effect"], row["ci_lower"], row["ci_upper"])
        return f"{e}, {lab} {lo} to {hi} ({_near_zero_words(row)})"
    rel = f"{format_pct(row['rel_effect'])}"
    if scale == RELATIVE_TO_SIZE:
        rel += f" of the size of control's value {format_number(row['control_value'])}"
    return f"{rel}, {lab} {format_pct(row['rel_ci_lower'])} to {format_pct(row['rel_ci_upper'])}"


def change_words(result: ExperimentResult, row: dict) -> tuple[str, str, str]:
    """``(size, interval, caveat)`` of one row's change for a sentence, in the row's reading.

    ``size`` is unsigned (the sentence says "up"/"raised" from the sign of
    the absolute effect): ``"4.1%"``, ``"7.9 points"``, ``"40.9% of the size of
    control's value -5.006"``, ``"0.0373"``. ``interval`` is ``"+1.0% to
    +7.2%"`` (with ``points`` for an NPS). ``caveat`` is empty, or for a
    near-zero control value why the change is absolute.
    """
    scale = change_scale(row, _kind(result, row["metric"]))
    if scale == POINTS:
        e, lo, hi = _points_text(row["effect"], row["ci_lower"], row["ci_upper"])
        return f"{e.lstrip('+-')} points", f"{lo} to {hi} points", ""
    if scale == ABSOLUTE:
        e, lo, hi = signed_interval(row["effect"], row["ci_lower"], row["ci_upper"])
        return e.lstrip("+-"), f"{lo} to {hi}", _near_zero_words(row)
    size = format_pct(abs(row["rel_effect"]), 1, sign=False)
    interval = f"{format_pct(row['rel_ci_lower'])} to {format_pct(row['rel_ci_upper'])}"
    if scale == RELATIVE_TO_SIZE:
        size += f" of the size of control's value {format_number(row['control_value'])}"
    return size, interval, ""


def _margin_words(result: ExperimentResult, row: dict, margin: float) -> str:
    """``"may get at most 2.0% worse"``, with the amount in the metric's units for a negative control value."""
    allowed = f"may get at most {margin:.1%} worse"
    c = float(row.get("control_value", math.nan))
    if c < 0 and math.isfinite(c):
        unit = " points" if _kind(result, row["metric"]) == "nps" else ""
        allowed += (
            f", i.e. by {format_number(margin * abs(c), 3)}{unit} ({margin:.1%} of the size of its negative "
            f"control value {format_number(c)})"
        )
    return allowed


def guardrail_status(result: ExperimentResult, row: dict, margin: float | None = None) -> tuple[str, str]:
    """``("ok" | "breached" | "unclear", explanation)`` for one guardrail row; the rule is in the module doc."""
    name = row["metric"]
    lo, hi = row["rel_ci_lower"], row["rel_ci_upper"]
    ci = change_interval_words(result, row)
    if margin is None:
        if result.outcome(row) == "worse":
            return "breached", (
                f"guardrail {name} got significantly worse: {ci} ({p_text(result.decision_p(row), p_label(result))})"
            )
        return "ok", f"guardrail {name} did not get significantly worse ({ci})"
    if not all(math.isfinite(x) for x in (row["rel_effect"], lo, hi)):
        c = row.get("control_value", math.nan)
        if all(math.isfinite(row.get(k, math.nan)) for k in ("control_value", "effect", "ci_lower", "ci_upper")):
            e, alo, ahi = signed_interval(row["effect"], row["ci_lower"], row["ci_upper"])
            return "unclear", (
                f"guardrail {name}: control's value ({format_number(c)}) is not distinguishable "
                f"from zero, so its relative margin ({margin:.1%}) cannot be checked (any change is a "
                f"huge relative one); its absolute change is {e}, {ci_label(result)} {alo} to {ahi}. "
                "Judge a metric that sits near zero without a margin (must not get significantly "
                "worse)"
            )
        return "unclear", f"guardrail {name}: no confidence interval, so the {margin:.1%} margin cannot be checked"
    lower_better = row["better"] == "lower"
    bad_bound, good_bound = (hi, lo) if lower_better else (-lo, -hi)  # "how much worse", positive = worse
    allowed = _margin_words(result, row, margin)
    if _kind(result, name) == "nps":  # the margin is relative: show the relative interval next to the points
        ci += f" (relative to the size of control's NPS: {format_pct(lo)} to {format_pct(hi)})"
    if bad_bound <= margin:
        return "ok", f"guardrail {name} is within its margin ({allowed}): {ci}"
    if good_bound > margin:
        return "breached", f"guardrail {name} got worse by more than its margin ({allowed}): {ci}"
    return "unclear", f"guardrail {name} may have got worse by more than its margin ({allowed}): {ci}"


# --------------------------------------------------------------------------- more days
@dataclass(frozen=True)
class DaysEstimate:
    """How long the test must run to detect the planned relative MDE, from the variance seen so far."""

    days_total: int | None  # days from the start until the planned MDE is detectable
    days_more: int | None  # days_total - days_elapsed (0 when already enough)
    units_needed: float  # units in all arms together
    units_now: int
    factor: float  # units_needed / units_now
    method: str  # how, for analysts (function and formula)
    words: str = ""  # how, for a leadership page (no function names)


def _relative_mixing_variance(row: dict, sequential, alpha: float, units_now: float) -> float:
    """``tau^2`` of the always-valid interval of the relative lift, as the analysis chose it.

    ``sequential`` is an :class:`abkit.sequential.AlwaysValid` (the design the
    analysis used) or ``True`` (take it from the row: ``always_valid_rows``
    keeps the effect-scale ``tau``, and the default rule mixes the relative
    lift with the same multiple of its variance, ``tau_rel^2 = tau^2 rel_se^2 / se^2``).
    Mirrors :func:`abkit.sequential.always_valid_rows`.
    """
    from .stats.confidence_sequences import AlwaysValid, optimal_mixing_ratio

    v_rel = float(row["rel_se"]) ** 2
    if isinstance(sequential, AlwaysValid):
        tau = sequential.tau_for(row["metric"])
        if tau is not None:
            cv = abs(float(row["control_value"]))
            return (tau / cv) ** 2 if cv > 0 else math.nan
        fraction = 1.0 if sequential.planned_n is None else float(units_now) / float(sequential.planned_n)
        return optimal_mixing_ratio(alpha) * v_rel * fraction
    tau, se = row.get("tau"), row.get("se")
    if tau is not None and se is not None and math.isfinite(tau) and math.isfinite(se) and tau > 0 and se > 0:
        return float(tau) ** 2 * v_rel / float(se) ** 2
    return optimal_mixing_ratio(alpha) * v_rel


def _always_valid_factor(variance: float, tau2: float, target: float, z_power: float, alpha: float) -> float:
    """The smallest ``f = n / n_now`` with ``h(V / f) + z_power sqrt(V / f) <= target``, by bisection.

    ``h`` is the always-valid half-width with the mixing variance ``tau2``
    held fixed (:func:`abkit.stats.confidence_sequences.always_valid_half_width`); it
    increases with ``V`` (``u (1 + u) (log(1 + 1/u) + 2 log(1/alpha))``,
    ``u = V / tau^2``, has derivative ``(1 + 2u)(log(1 + 1/u) + 2 log(1/alpha)) - 1 > 0``),
    so the left side decreases in ``f`` and the root is unique. NaN when it
    lies beyond a billion times the current units.
    """
    from .stats.confidence_sequences import always_valid_half_width

    def excess(log_f: float) -> float:
        v = variance / math.exp(log_f)
        return float(always_valid_half_width(v, tau2, alpha)) + z_power * math.sqrt(v) - target

    lo, hi = math.log(1e-9), math.log(1e9)
    if excess(hi) > 0:
        return math.nan
    if excess(lo) <= 0:
        return math.exp(lo)
    for _ in range(200):  # bisection on log f: the width halves every step
        mid = 0.5 * (lo + hi)
        if excess(mid) > 0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return math.exp(hi)


def _estimate(factor: float, days_elapsed: float, units_now: int, method: str, words: str) -> DaysEstimate:
    days_total = int(math.ceil(days_elapsed * factor - 1e-9))
    return DaysEstimate(
        days_total,
        max(0, days_total - int(math.ceil(days_elapsed))),
        factor * units_now,
        units_now,
        factor,
        method,
        words,
    )


def _relative_bounded(row: dict) -> bool:
    """The row's relative lift has a bounded fixed-horizon interval (its control value is distinguishable
    from zero): relative MDEs and margins only make sense then."""
    keys = (
        "rel_effect",
        "rel_ci_lower_fixed" if "rel_ci_lower_fixed" in row else "rel_ci_lower",
        "rel_ci_upper_fixed" if "rel_ci_upper_fixed" in row else "rel_ci_upper",
    )
    return all(math.isfinite(float(row.get(k, math.nan))) for k in keys)


def _sequential_on(sequential) -> bool:
    return sequential is not None and sequential is not False


def days_to_detect(
    row: dict,
    mde: float,
    days_elapsed: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    units_now: int | None = None,
    sequential=False,
) -> DaysEstimate:
    """Days needed until a relative effect of ``mde`` would be detected with ``power``.

    Fixed horizon (``sequential=False``): the unit-level standard deviation
    of the relative lift is backed out of the observed standard error,
    ``sd = rel_se / sqrt(1/n_c + 1/n_t)``; the units per arm needed for
    ``mde`` come from :func:`abkit.power.sample_size_mean` (two-sample
    t-test, the arms' current ratio); if that is unavailable, from the normal
    approximation ``n = (z_{1-alpha/2} + z_power)^2 (v_t + v_c) / mde^2``
    scaled from the current n.

    Always valid (``sequential=True`` or the
    :class:`abkit.sequential.AlwaysValid` design of the analysis): the
    decision is "the always-valid interval excludes 0", whose half-width
    ``h(V)`` is wider than ``z_{1-alpha/2} sqrt(V)``. With ``V(n) = V_now n_now / n``
    (``V_now = rel_se^2``) and the analysis' mixing variance held fixed, the
    units needed are the smallest ``n`` with ``h(V(n)) + z_power sqrt(V(n)) <= mde``
    (then a true effect of ``mde`` gives an interval clear of 0 with
    probability ``power`` at that look, normal approximation), found by
    bisection. ``units_now`` (all arms) must be the count the analysis tuned
    the mixture with (``planned_n`` rule); default ``n_c + n_t``.

    Units are assumed to keep arriving at the average rate so far
    (``units_now / days_elapsed``), so
    ``days_total = ceil(days_elapsed * units_needed / units_now)``.
    """
    n_c, n_t = float(row["n_control"]), float(row["n_treatment"])
    units_now = int(units_now if units_now is not None else n_c + n_t)
    se = float(row.get("rel_se", math.nan))
    if not _relative_bounded(row):
        return DaysEstimate(
            None,
            None,
            math.nan,
            units_now,
            math.nan,
            "no relative MDE: the control value is not distinguishable from zero",
        )
    if not (math.isfinite(se) and se > 0 and n_c > 1 and n_t > 1 and mde > 0 and days_elapsed > 0):
        return DaysEstimate(None, None, math.nan, units_now, math.nan, "not enough information")
    if _sequential_on(sequential):
        tau2 = _relative_mixing_variance(row, sequential, alpha, units_now)
        factor = (
            _always_valid_factor(se * se, tau2, mde, float(norm_ppf(power)), alpha)
            if math.isfinite(tau2) and tau2 > 0
            else math.nan
        )
        method = (
            "always-valid radius: smallest n with h(V(n)) + z_power se(n) <= mde, V(n) = V_now n_now / n, "
            "mixing variance of the analysis (bisection)"
        )
        if not math.isfinite(factor):
            return DaysEstimate(None, None, math.nan, units_now, math.nan, method)
        return _estimate(
            factor,
            days_elapsed,
            units_now,
            method,
            "from the planned MDE and power, for the always-valid interval (it is wider than a "
            "fixed-horizon one), with the variance observed so far",
        )
    sd = se / math.sqrt(1.0 / n_c + 1.0 / n_t)
    k = n_t / n_c
    try:
        from .stats.t_test_power import sample_size_mean

        need_c = float(sample_size_mean(sd=sd, mde=mde, alpha=alpha, power=power, ratio=k).n_control)
        method = "abkit.power.sample_size_mean (two-sample t-test) with the observed variance"
    except Exception:  # noqa: BLE001 - the power module is optional here; fall back to the closed form
        z = norm_isf(alpha / 2) + norm_ppf(power)
        need_c = n_c * (z * se / mde) ** 2
        method = "normal approximation n = (z_{1-a/2} + z_power)^2 (v_t + v_c) / mde^2, scaled from the current n"
    return _estimate(
        need_c / n_c,
        days_elapsed,
        units_now,
        method,
        "from the planned MDE and power, two-sided t-test, with the variance observed so far",
    )


def days_to_show_margin(
    row: dict,
    margin: float,
    days_elapsed: float,
    *,
    alpha: float = 0.05,
    units_now: int | None = None,
    sequential=False,
) -> DaysEstimate:
    """Days needed until an *unclear* guardrail's interval fits within its margin, if its estimate stays put.

    With ``w`` = how much worse the estimate is (relative, positive = worse)
    and ``m`` the margin, the bad-side bound ``w + z se`` is within ``m`` once
    ``se <= (m - w) / z``, ``z = z_{1-alpha/2}``; standard errors shrink as
    ``1/sqrt(n)``, so the units (and, at the same accrual, the days) scale by
    ``(se / se_needed)^2``. Always valid (``sequential``, as in
    :func:`days_to_detect`): the smallest ``n`` with ``w + h(V(n)) <= m``, by
    bisection. No estimate when ``w >= m`` (more data would not help).
    """
    n_c, n_t = float(row["n_control"]), float(row["n_treatment"])
    units_now = int(units_now if units_now is not None else n_c + n_t)
    se = float(row.get("rel_se", math.nan))
    worse = row["rel_effect"] if row["better"] == "lower" else -row["rel_effect"]
    method = "guardrail interval shrinking as 1/sqrt(n) with the estimate unchanged"
    words = "the guardrail's interval shrinking as the test runs on, if its estimate stays where it is"
    if not (
        _relative_bounded(row)
        and math.isfinite(se)
        and se > 0
        and days_elapsed > 0
        and math.isfinite(worse)
        and worse < margin
    ):
        return DaysEstimate(None, None, math.nan, units_now, math.nan, method, words)
    if _sequential_on(sequential):
        tau2 = _relative_mixing_variance(row, sequential, alpha, units_now)
        factor = (
            _always_valid_factor(se * se, tau2, margin - worse, 0.0, alpha)
            if math.isfinite(tau2) and tau2 > 0
            else math.nan
        )
        method = "always-valid " + method
        if not math.isfinite(factor):
            return DaysEstimate(None, None, math.nan, units_now, math.nan, method, words)
        return _estimate(factor, days_elapsed, units_now, method, words)
    need_se = (margin - worse) / norm_isf(alpha / 2)
    return _estimate((se / need_se) ** 2, days_elapsed, units_now, method, words)


# --------------------------------------------------------------------------- A/B
def _direction_words(row: dict) -> str:
    return "up" if row["effect"] > 0 else "down"


def decide(
    result: ExperimentResult,
    primary: str,
    guardrails: Sequence[str] | Mapping[str, float | None] = (),
    *,
    balance_p: float | None = None,
    mde: float | None = None,
    power: float = 0.8,
    days_elapsed: float | None = None,
    sequential=None,
    missingness_threshold: float | None = None,
) -> list[Verdict]:
    """Verdicts (one per treatment arm) from the primary metric, the guardrails and the health checks.

    ``guardrails``: names, or a mapping name -> relative non-inferiority
    margin (None for "must not get significantly worse").
    ``balance_p``: p-value of the joint pre-period balance test (optional).
    ``mde``, ``power``, ``days_elapsed``: the planned relative MDE and power and
    the days run so far, for "Inconclusive (need N more days)".
    ``sequential``: the :class:`abkit.sequential.AlwaysValid` design of an
    always-valid analysis, for the days still needed; default: the result's
    own (``result.sequential``; the mixture is read from the rows).
    ``missingness_threshold``: p-value below which a dropna metric's share of
    units with a value is called different between arms (default alpha).
    The rule is in the module docstring.
    """
    result.metric(primary)
    margins = dict(guardrails) if isinstance(guardrails, Mapping) else {g: None for g in guardrails}
    for g in margins:
        result.metric(g)
    imbalance = balance_p is not None and math.isfinite(balance_p) and balance_p < BALANCE_ALARM
    integrity = getattr(result, "integrity", None)
    leak = integrity is not None and integrity.leak_share > LEAK_ALARM
    duplicated = integrity is not None and integrity.duplicate_share > DUPLICATE_ALARM
    integrity_notes = integrity.problems() if integrity is not None else []
    seq = getattr(result, "sequential", False) if sequential is None else sequential
    units_now = int(sum(result.srm.observed))  # all arms: the count the always-valid mixture was tuned with
    skewed = [c for c in missingness_checks(result, missingness_threshold) if c.flagged]
    verdicts = []
    for arm in result.treatments:
        row = result.row(primary, arm)
        p = result.decision_p(row)
        size, interval, caveat = change_words(result, row)
        lift = (
            f"{primary} {_direction_words(row)} {size} ({ci_label(result)} {interval}, "
            f"{p_text(p, p_label(result))}{'; ' + caveat if caveat else ''})"
        )
        reasons = [lift]
        status = {g: guardrail_status(result, result.row(g, arm), m) for g, m in margins.items()}
        breached = [g for g, (s, _) in status.items() if s == "breached"]
        unclear = [g for g, (s, _) in status.items() if s == "unclear"]
        reasons += [text for s, text in status.values() if s != "ok"]
        outcome = result.outcome(row)
        note = None
        days_more = None
        if integrity_notes and not (leak or duplicated):
            reasons.insert(0, "caution: " + "; ".join(integrity_notes))
        if result.srm.mismatch or imbalance or leak or duplicated:
            label = "Invalid"
            if leak or duplicated:
                assert integrity is not None
                what = []
                if leak:
                    what.append(
                        f"{integrity.leak_share:.1%} of the units appear in more than one arm (an assignment leak)"
                    )
                if duplicated:
                    what.append(f"{integrity.duplicate_share:.1%} of the units have more than one row")
                note = "assignment leak" if leak else "duplicate units"
                headline = (
                    f"Do not trust these numbers: {' and '.join(what)}, so each unit is not in exactly "
                    f"one arm exactly once. Fix the assignment or the data (one row per "
                    f"'{integrity.unit}') and rerun."
                )
                reasons[0:0] = integrity_notes + ([srm_sentence(result.srm)] if result.srm.mismatch else [])
            elif result.srm.mismatch:
                note = "sample ratio mismatch"
                headline = (
                    f"Do not trust these numbers: the split of units between arms is not the planned "
                    f"one (sample ratio mismatch, {p_text(result.srm.p_value)}). Fix the "
                    "assignment or logging and rerun."
                )
                reasons.insert(0, srm_sentence(result.srm))
            else:
                note = "arms differ before the test"
                headline = (
                    f"Do not trust these numbers: the arms already differed before the test started "
                    f"(pre-period balance test {p_text(balance_p)}). Check the assignment and the "
                    "pre-period data."
                )
                reasons.insert(0, f"pre-period balance test {p_text(balance_p)} (alarm below {BALANCE_ALARM:g})")
        elif outcome == "worse" or breached:
            label = "Do not ship"
            why = []
            if outcome == "worse":
                why.append(f"{primary} got worse")
            if breached:
                why.append(
                    f"guardrail{'s' if len(breached) > 1 else ''} {', '.join(breached)} "
                    f"{'were' if len(breached) > 1 else 'was'} breached"
                )
            headline = f"{arm} should not ship: {' and '.join(why)}."
        elif outcome == "better" and not unclear:
            label = "Ship"
            moved = "lowered" if row["effect"] < 0 else "raised"
            guard = " and every guardrail held" if margins else ""
            headline = f"{arm} {moved} {primary} by {size} ({row['better']} is better){guard}."
        else:
            label = "Inconclusive"
            if outcome == "better":
                headline = (
                    f"{arm} improved {primary}, but guardrail{'s' if len(unclear) > 1 else ''} "
                    f"{', '.join(unclear)} cannot yet be shown to stay within {'their' if len(unclear) > 1 else 'its'} "
                    "margin."
                )
            else:
                lo_text, hi_text = interval.split(" to ")
                if change_scale(row, _kind(result, primary)) == RELATIVE_TO_SIZE:
                    hi_text += f" of the size of control's value {format_number(row['control_value'])}"
                headline = (
                    f"No detectable effect of {arm} on {primary}: the change is between {lo_text} and "
                    f"{hi_text}{' (' + caveat + ')' if caveat else ''}."
                )
            needs = []
            if days_elapsed and outcome == "better":
                for g in unclear:
                    margin = margins[g]
                    if margin is None:  # without a margin a guardrail is never unclear
                        continue
                    est = days_to_show_margin(
                        result.row(g, arm),
                        margin,
                        days_elapsed,
                        alpha=result.alpha,
                        units_now=units_now,
                        sequential=seq,
                    )
                    if est.days_more:
                        needs.append((est.days_more, est.days_total, f"to show {g} stays within its margin"))
            if mde and days_elapsed and outcome != "better":
                est = days_to_detect(
                    row, mde, days_elapsed, alpha=result.alpha, power=power, units_now=units_now, sequential=seq
                )
                if est.days_more:
                    needs.append(
                        (
                            est.days_more,
                            est.days_total,
                            f"to detect a {mde:.1%} change with {power:.0%} power"
                            + (" on the always-valid interval" if _sequential_on(seq) else ""),
                        )
                    )
                elif est.days_more == 0:
                    headline += (
                        f" The test already had {power:.0%} power for a {mde:.1%} change, so any effect "
                        "is probably smaller than that."
                    )
            if needs:
                days_more, total, purpose = max(needs)
                plural = "s" if days_more != 1 else ""
                note = f"need {days_more} more day{plural}"
                headline += f" It needs about {days_more} more day{plural} ({total} in total) {purpose}."
        for c in skewed:
            if c.variant == arm:
                reasons.append(
                    f"caution: {c.metric} is measured on a different mix of buyers in each arm "
                    f"({c.sentence(result.control)}): read its effect with care"
                )
        verdicts.append(Verdict(arm, label, headline, tuple(reasons), note, days_more))
    return verdicts


# --------------------------------------------------------------------------- rollouts
def _few_launched(few_treated: str) -> bool:
    """Whether ``few_treated`` (``"only 1 launched market"``, ``"only 3 never-launched markets"``, or both
    joined by "and", as :func:`abkit.readout.rollout.few_treated_words` writes it) counts few *launched* units."""
    return re.search(r"(^|\s)\d+ launched\b", few_treated) is not None


def decide_rollout(
    outcome: str,
    better: str,
    rel_effect: float,
    rel_ci_lower: float,
    rel_ci_upper: float,
    p_value: float,
    pretrend_p: float | None,
    *,
    alpha: float = 0.05,
    bootstrap_p: float | None = None,
    placebo_p: Sequence[float] = (),
    where: str = "launched units",
    what: str = "The launch",
    few_treated: str | None = None,
    randomization_p: float | None = None,
    randomization_how: str = "",
) -> Verdict:
    """The verdict of a rollout (difference-in-differences) readout; the rule is in the module docstring.

    Effects are relative changes (``-0.061`` = 6.1% lower) with their
    (1 - alpha) confidence interval; ``pretrend_p`` is the joint pre-trend
    test's p-value (None or NaN when there are no pre-launch periods).
    ``few_treated``: e.g. ``"only 1 launched market"`` when there are too few
    launched or never-launched units for the p-values; ``randomization_p`` and
    ``randomization_how``: the randomization test over which units launched.
    """
    level = f"{1 - alpha:.0%} CI"
    sig_analytic = p_value < alpha
    sig_boot = bootstrap_p is None or not math.isfinite(bootstrap_p) or bootstrap_p < alpha
    significant = sig_analytic and sig_boot
    up = rel_effect > 0
    good = up if better == "higher" else not up
    verb = "raised" if up else "cut"
    lo_mag, hi_mag = sorted((abs(rel_ci_lower), abs(rel_ci_upper)))
    ci_words = (
        f"{level} {format_pct(lo_mag, 1, sign=False)} to {format_pct(hi_mag, 1, sign=False)}"
        if (rel_ci_lower > 0) == (rel_ci_upper > 0)
        else f"{level} {format_pct(rel_ci_lower)} to {format_pct(rel_ci_upper)}"
    )
    boot = f", {p_text(bootstrap_p, 'bootstrap p')}" if bootstrap_p is not None and math.isfinite(bootstrap_p) else ""
    reasons = [
        f"{outcome} {'up' if up else 'down'} {format_pct(abs(rel_effect), 1, sign=False)} "
        f"({level} {format_pct(rel_ci_lower)} to {format_pct(rel_ci_upper)}, {p_text(p_value)}{boot})"
    ]
    pre_p = math.nan if pretrend_p is None else float(pretrend_p)
    has_pre = math.isfinite(pre_p)
    reasons.append(
        f"pre-trend test {p_text(pretrend_p)}" if has_pre else "no pre-launch periods to test parallel trends"
    )
    failed_placebos = [p for p in placebo_p if p is not None and math.isfinite(p) and p < alpha]
    if failed_placebos:
        reasons.append(
            f"caution: {len(failed_placebos)} of {len(placebo_p)} placebo launch dates show a significant fake effect"
        )
    note = None
    ri_ok = randomization_p is not None and math.isfinite(randomization_p) and randomization_p < alpha
    if few_treated and ri_ok:
        ci_words = p_text(randomization_p, "randomization p")  # the CI is not to be trusted here
    if few_treated:
        ri = (
            f"{p_text(randomization_p, 'randomization p')}" + (f", {randomization_how}" if randomization_how else "")
            if randomization_p is not None and math.isfinite(randomization_p)
            else "not available"
        )
        units = where.split()[-1]
        proposal = (
            "read this rollout with the synthetic estimators instead, built for one or a few launched "
            f"{units}: set `method: synthetic` in the spec (synthetic difference-in-differences, "
            "abkit.did.synthetic)"
            if _few_launched(few_treated)
            else "compare with a synthetic control (abkit.did.synthetic)"
        )
        reasons.append(
            f"{few_treated}: the p-values and intervals above are unreliable with so few (MacKinnon & "
            f"Webb); the randomization test over which {units} launched: {ri}; {proposal}"
        )
    if has_pre and pre_p < alpha and few_treated:
        label, note = "Inconclusive", few_treated.removeprefix("only ")
        headline = (
            f"Not established: the pre-trend test rejects ({p_text(pretrend_p)}), but with {few_treated} "
            f"neither it nor the effect's p-values can be trusted; {outcome} "
            f"{'rose' if up else 'fell'} {format_pct(abs(rel_effect), 1, sign=False)} in {where}."
        )
    elif has_pre and pre_p < alpha:
        label, note = "Invalid", "pre-trends fail"
        headline = (
            f"Do not trust this estimate: launched and comparison {where.split()[-1]} were already "
            f"drifting apart before launch (pre-trend test {p_text(pretrend_p)})."
        )
    elif few_treated and not ri_ok and (significant or sig_analytic):
        label, note = "Inconclusive", few_treated.removeprefix("only ")
        headline = (
            f"Not established: {outcome} {'rose' if up else 'fell'} "
            f"{format_pct(abs(rel_effect), 1, sign=False)} in {where}, but with {few_treated} the usual "
            "p-values cannot be trusted and the randomization test over which "
            f"{where.split()[-1]} launched does not confirm it."
        )
    elif (ri_ok if few_treated else significant) and good:
        label = "Worked"
        headline = (
            f"{what} {verb} {outcome} by {format_pct(abs(rel_effect), 1, sign=False)} ({ci_words}) on "
            f"average in {where}."
        )
    elif ri_ok if few_treated else significant:
        label = "Made it worse"
        headline = (
            f"{what} {verb} {outcome} by {format_pct(abs(rel_effect), 1, sign=False)} ({ci_words}) on "
            f"average in {where}: the wrong direction ({better} is better)."
        )
    else:
        label = "No detectable impact"
        headline = (
            f"No detectable impact on {outcome}: the change in {where} is between "
            f"{format_pct(rel_ci_lower)} and {format_pct(rel_ci_upper)} ({level})."
        )
        if sig_analytic and not sig_boot and not few_treated:
            reasons.append(
                f"the analytic p-value is below {alpha:g} but the bootstrap p-value is not; with few "
                "units the bootstrap is the safer guide"
            )
    return Verdict(outcome, label, headline, tuple(reasons), note)


# --------------------------------------------------------------------------- one market launched first
def _names(units: Sequence) -> str:
    """'DE' / 'DE and FR' / 'DE, FR and IT'."""
    names = [str(u) for u in units]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def decide_one_market(result, better: str = "higher", *, what: str = "The launch") -> Verdict:
    """The verdict of a launch in one market (or a few) read by synthetic DiD or synthetic control.

    ``result``: an :class:`abkit.did.SyntheticResult` (:func:`abkit.did.synthetic`); ``better``: the
    outcome's good direction. The rule is in the module docstring: never "Worked" on a poor pre-launch
    fit, nor on a fair one the placebo rank test does not confirm; otherwise the effect's p-value decides.
    Effects are put in words relative to the synthetic twin's level after launch
    (``result.relative_effect``), with the twin's and the market's levels, and in the outcome's units when
    that level is not positive.
    """
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower'; got {better!r}")
    outcome, alpha = result.outcome, float(result.alpha)
    where = _names(result.launched_units)
    its = "its" if len(result.launched_units) == 1 else "their"
    level = f"{1 - alpha:.0%} CI"
    est, lo, hi, p = (float(result.estimate), float(result.ci_lower), float(result.ci_upper), float(result.p_value))
    rel, rel_lo, rel_hi = (float(result.relative_effect), float(result.rel_ci_lower), float(result.rel_ci_upper))
    twin = float(result.counterfactual)
    relative = math.isfinite(rel) and twin > 0
    up = est > 0
    good = up if better == "higher" else not up
    verb = "raised" if up else "cut"
    if relative:
        size = format_pct(abs(rel), 1, sign=False)
        levels = f"from {format_number(twin, 3)} to {format_number(twin + est, 3)}"
        lo_mag, hi_mag = sorted((abs(rel_lo), abs(rel_hi)))
        interval = (
            f"{level} {format_pct(lo_mag, 1, sign=False)} to {format_pct(hi_mag, 1, sign=False)}"
            if (rel_lo > 0) == (rel_hi > 0)
            else f"{level} {format_pct(rel_lo)} to {format_pct(rel_hi)}"
        )
        change = f"{size} ({levels}; {interval})"
        between = f"{format_pct(rel_lo)} and {format_pct(rel_hi)}"
    else:
        e, a, b = signed_interval(est, lo, hi)
        size = e.lstrip("+-")
        change = f"{size} in {outcome}'s units ({level} {a} to {b}; the twin's level is not positive, so no %)"
        between = f"{a} and {b} in {outcome}'s units"
    reasons = [
        f"{outcome} {'up' if up else 'down'} {change} against the synthetic twin ({p_text(p)}, "
        f"{result.inference} inference)"
    ]
    fit = getattr(result, "fit_quality", "not assessed")
    fit_words = getattr(result, "fit_message", "")
    if fit_words:
        reasons.append(("caution: " if fit == "fair" else "") + fit_words)
    significant = math.isfinite(p) and p < alpha
    # the placebo rank test (Abadie et al. 2010): post/pre-launch miss ratio ranked among all units or runs
    rank_p = float(getattr(result, "permutation_p_value", math.nan))
    placebo = getattr(result, "placebo", None)
    n_ranked = int(len(placebo)) if placebo is not None else int(result.n_control) + 1  # launched row included
    ranked = "markets" if len(result.launched_units) == 1 else "runs (the launched markets' included)"
    has_rank = math.isfinite(rank_p)
    rank_can_confirm = has_rank and 1.0 / n_ranked < alpha
    rank_confirms = rank_can_confirm and rank_p < alpha
    if has_rank:
        detail = (
            f"by its miss after launch relative to its miss before, {where} ranks {round(rank_p * n_ranked)} "
            f"of {n_ranked} {ranked}"
        )
        if not rank_can_confirm:
            reasons.append(
                f"placebo rank test {p_text(rank_p)}: {detail}; with {n_ranked} it cannot go below {1.0 / n_ranked:.3f}"
            )
        elif significant and not rank_confirms and fit != "fair":
            reasons.append(f"caution: the placebo rank test does not confirm the effect ({p_text(rank_p)}: {detail})")
        else:
            reasons.append(f"placebo rank test {p_text(rank_p)}: {detail}")
    note = None
    fall = f"{'rise' if up else 'fall'} of {size} in {outcome}"
    if fit == "poor":
        label, note = "Inconclusive", "poor pre-launch fit"
        headline = (
            f"Not established: the synthetic twin did not track {where} before launch, so the {fall} "
            "since launch may be the twin's error rather than the launch's effect."
        )
    elif not (math.isfinite(p) and math.isfinite(lo) and math.isfinite(hi)):
        label, note = "Inconclusive", "no interval"
        headline = (
            f"Not established: {outcome} moved by {size} in {where} against {its} synthetic twin, but its "
            "uncertainty could not be estimated."
        )
    elif significant and fit == "fair" and not rank_confirms:
        label, note = "Inconclusive", "fair pre-launch fit"
        why = (
            "the placebo rank test does not confirm it"
            if rank_can_confirm
            else f"with {n_ranked} {ranked} the placebo rank test cannot confirm it"
        )
        headline = (
            f"Not established: the {fall} in {where} against {its} synthetic twin ({p_text(p)}) may be the "
            f"twin's error: it tracked {where} only fairly before launch, and {why}."
        )
    elif significant and good:
        label = "Worked"
        headline = f"{what} {verb} {outcome} in {where} by {change}, against {its} synthetic twin."
    elif significant:
        label = "Made it worse"
        headline = (
            f"{what} {verb} {outcome} in {where} by {change}, against {its} synthetic twin: the wrong "
            f"direction ({better} is better)."
        )
    else:
        label = "No detectable impact"
        headline = (
            f"No detectable impact on {outcome} in {where}: against {its} synthetic twin the change is "
            f"between {between} ({level})."
        )
    return Verdict(outcome, label, headline, tuple(reasons), note)
