"""Always-valid inference for continuous monitoring: normal-mixture confidence sequences.

(The other sequential design, a planned number of looks with Lan-DeMets
boundaries, is :mod:`abkit.stats.group_sequential`; the facade of both is
:mod:`abkit.sequential`.)

A *confidence sequence* (CS) is a
sequence of intervals ``C_n`` that contain the true effect *at every look
simultaneously* with probability ``1 - alpha``, so the experiment may be
looked at daily and stopped whenever the CS excludes zero (Howard, Ramdas,
McAuliffe and Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic
confidence sequences", Ann. Statist. 49; Johari, Koomen, Pekelis and Walsh
2017, "Peeking at A/B tests: why it matters, and what to do about it", KDD,
and Johari et al. 2022, Oper. Res. 70).

Let ``S`` be a Gaussian martingale with variance process (intrinsic time)
``I``. Mixing the likelihood ratio ``exp(lambda S - lambda^2 I / 2)`` over
``lambda ~ N(0, 1/rho)`` gives the nonnegative martingale (Robbins 1970)

    M = sqrt(rho / (I + rho)) exp(S^2 / (2 (I + rho)))

and Ville's inequality ``P(sup M >= 1/alpha) <= alpha`` gives the two-sided
*normal-mixture boundary* of Howard et al. (2021, eq. (14)),

    |S| < sqrt((I + rho) log((I + rho) / (rho alpha^2)))     for all I.

abkit applies it to an effect estimate ``theta_hat`` that is asymptotically
normal with variance ``V`` (a difference in means, a delta-method ratio, a
CUPED or Lin estimate: all are averages of per-unit influence values up to
``o_p(n^-1/2)``). On the information scale ``I = 1/V``, ``S = I (theta_hat -
theta)``; writing the mixing distribution on the *effect* scale,
``theta ~ N(0, tau^2)`` with ``tau^2 = 1/rho``, the boundary becomes the
always-valid interval

    theta_hat +/- sqrt( V (V + tau^2) / tau^2 * ( log((V + tau^2) / V) + 2 log(1/alpha) ) )

and the mixture likelihood ratio against ``theta = 0`` is the mSPRT
statistic of Johari et al. (2017, eq. (6) with a normal mixture)

    Lambda = sqrt(V / (V + tau^2)) exp( tau^2 theta_hat^2 / (2 V (V + tau^2)) ).

The always-valid p-value is ``min(1, 1 / Lambda)``: the smallest alpha at
which the CS excludes 0 (at one look; Johari et al. report its running
minimum over looks, which :func:`abkit.sequential.monitor` also gives).
With a plug-in variance the guarantee is asymptotic, exactly as for the
fixed-horizon CI: this is the *asymptotic confidence sequence* of
Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas (2024, "Time-uniform central
limit theory and asymptotic confidence sequences", Ann. Statist. 52,
Theorem 2.2), whose boundary is the one above with ``V = sigma^2 / n``.

*Relative lift (Fieller).* The always-valid interval of ``r = t / c - 1``
(``t``, ``c`` the arm values, ``d = t - c`` the effect) is Fieller's
construction (see :mod:`abkit.stats.two_sample`) on top of the confidence
sequence: ``r`` is in the set while the always-valid test of the linear
contrast ``D(r) = d - r c = t - (1 + r) c = 0`` does not reject, i.e.
``|d - r c| <= h(V(r))`` with ``V(r) = Var(d - r c) = V_d - 2 r K + r^2 C``
(``K = Cov(d, c)``, ``C = Var(c)``) and ``h`` the half-width above. Each
contrast ``D(r)`` is mixed with the variance ``tau^2(r) = tau^2 V(r) / V_d``
(the effect's ``tau^2`` at ``r = 0``). Then ``tau^2(r) / V(r)`` does not
depend on ``r``, ``h(V(r)) = k sqrt(V(r))`` with the single factor
``k = h(V_d) / sqrt(V_d) = sqrt((1 + V_d / tau^2) (log(1 + tau^2 / V_d) +
2 log(1/alpha)))``, and the set is Fieller's interval with ``q = k``, in
closed form (:func:`always_valid_relative_interval`). For abkit's default
tuning this is no approximation: the planned-size rule gives every contrast
``tau^2(r) = x V_planned(r)``, proportional to ``V(r)`` by construction.
With a ``tau`` given on the effect scale it is a choice: a fixed ``tau^2``
for every contrast makes ``h`` grow like ``V(r)`` in the tails and the set
is then never bounded (far rays, at lifts of thousands of percent), while
scaling the mixture with the contrast's variance keeps one interval, valid
at every ``r`` (each ``tau^2(r)`` is fixed in advance up to the same
plug-in of per-unit variances as the default rule), and its coverage is
tested by simulation. Either way the relative interval excludes 0 exactly
when the effect's always-valid interval does (at ``r = 0`` the inequality
is the effect's), and it is unbounded, reported as ``(-inf, inf)``, when
``c^2 <= k^2 C``.

*Choice of the mixing variance.* ``tau^2`` must be fixed in advance (not
re-tuned at every look: tuned to the units analysed at each look, the
interval is ``estimate +/- 3.03 se`` at every look, a repeated fixed test at
level 0.0024 whose false-positive rate grows without bound with the number
of looks, so :class:`AlwaysValid` requires the planned size or ``tau``).
The boundary at intrinsic time ``m`` is narrowest for ``rho`` with
``x = m / rho`` solving ``x = log(1 + x) + 2 log(1/alpha)`` (set the
derivative of ``(m + rho) log((m + rho) / (rho alpha^2))`` in ``rho`` to
zero; Howard et al. 2021, Section 3.5, give the approximation
``x ~= 2 log(1/alpha) + log(1 + 2 log(1/alpha))``). On the effect scale:
``tau^2 = x V_planned``, the variance the estimate will have at the planned
sample size; abkit estimates it as ``V_now n_now / n_planned`` (per-unit
variance over planned units; :func:`mixing_variance`). ``x = 8.20`` for
``alpha = 0.05``; at the planned size the always-valid half-width is then
``sqrt((1 + x) V) = 3.03 sd`` instead of 1.96, and being wrong about the
planned size by a factor 10 costs only ~7% of width.

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import AbkitError
from .two_sample import fieller_relative

__all__ = [
    "AlwaysValid",
    "FIELLER_PIECES",
    "optimal_mixing_ratio",
    "mixing_variance",
    "always_valid_half_width",
    "always_valid_interval",
    "always_valid_radius_factor",
    "always_valid_relative_interval",
    "always_valid_p_value",
    "always_valid_rows",
    "log_mixture_likelihood_ratio",
]

# Row key of the pieces of the relative lift's Fieller interval, (Var(control value), Cov(effect, control
# value)), set by the estimators that know them (abkit.analyze's moment metrics, quantile rows) and read by
# always_valid_rows; the facades drop it before building a result.
FIELLER_PIECES = "_fieller"


# --------------------------------------------------------------------------- always valid
def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise AbkitError(f"alpha={alpha!r} must be between 0 and 1 (e.g. 0.05)")
    return alpha


def optimal_mixing_ratio(alpha: float = 0.05) -> float:
    """``x = tau^2 / V`` at which the normal-mixture boundary is narrowest.

    Solves ``x = log(1 + x) + 2 log(1/alpha)`` (Howard et al. 2021, Sec. 3.5);
    ``x = 8.20`` at alpha = 0.05. The right side is increasing and concave in
    ``x`` with slope below 1, so the fixed point is unique.
    """
    alpha = _check_alpha(alpha)
    from scipy import optimize  # loaded when a sequential design is planned

    c = 2.0 * np.log(1.0 / alpha)
    return float(optimize.brentq(lambda x: np.log1p(x) + c - x, c, 10.0 * c + 10.0, xtol=1e-14))


def mixing_variance(variance, n, planned_n, alpha: float = 0.05):
    """Mixing variance ``tau^2`` tuned so the CS is narrowest at ``planned_n`` units.

    ``tau^2 = x(alpha) * V_planned`` with ``V_planned = V n / planned_n`` (the
    effect's variance scales as 1/n: ``V n`` estimates the per-unit variance).
    Arrays broadcast.
    """
    x = optimal_mixing_ratio(alpha)
    variance, n, planned_n = (np.asarray(a, dtype=np.float64) for a in (variance, n, planned_n))
    if np.any(planned_n <= 0):
        raise AbkitError(f"planned_n={planned_n!r} must be a positive number of units")
    return x * variance * n / planned_n


def always_valid_half_width(variance, tau2, alpha: float = 0.05):
    """Half-width of the normal-mixture confidence sequence for an effect of variance ``V``.

    ``sqrt(V (V + tau^2) / tau^2 * (log((V + tau^2) / V) + 2 log(1/alpha)))``;
    zero variance gives a zero half-width. Vectorized.
    """
    alpha = _check_alpha(alpha)
    V = np.asarray(variance, dtype=np.float64)
    t2 = np.asarray(tau2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log1p(t2 / V)  # log((V + tau^2) / V)
        hw = np.sqrt(V * (V + t2) / t2 * (ratio + 2.0 * np.log(1.0 / alpha)))
    return np.where(V == 0.0, 0.0, hw)


def always_valid_radius_factor(variance, tau2, alpha: float = 0.05):
    """``k = h(V) / sqrt(V) = sqrt((1 + V / tau^2) (log(1 + tau^2 / V) + 2 log(1/alpha)))``. Vectorized.

    The always-valid half-width in standard errors; it depends on ``V`` and
    ``tau^2`` only through ``tau^2 / V``. Zero variance gives 0 (the
    half-width is 0).
    """
    alpha = _check_alpha(alpha)
    V = np.asarray(variance, dtype=np.float64)
    t2 = np.asarray(tau2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.sqrt((1.0 + V / t2) * (np.log1p(t2 / V) + 2.0 * np.log(1.0 / alpha)))
    return np.where(V == 0.0, 0.0, k)


def always_valid_relative_interval(
    effect, control, var_effect, cov_effect_control, var_control, tau2, alpha: float = 0.05
):
    """Always-valid Fieller interval ``(lower, upper)`` of ``r = treatment / control - 1``. Vectorized.

    ``effect = t - c``, ``control = c``, ``var_effect = Var(t - c)``,
    ``cov_effect_control = Cov(t - c, c)``, ``var_control = Var(c)``, and
    ``tau2`` the effect's mixing variance (as in :func:`always_valid_interval`).
    Fieller's interval (:func:`abkit.stats.two_sample.fieller_relative`) with the
    critical value ``k`` of :func:`always_valid_radius_factor`; the mixture of
    each contrast ``t - (1 + r) c`` scales with its variance (module
    docstring). ``(-inf, inf)`` when the set is unbounded (``c^2 <= k^2 Var(c)``).
    """
    k = always_valid_radius_factor(var_effect, tau2, alpha)
    return fieller_relative(effect, control, var_effect, cov_effect_control, var_control, k)


def log_mixture_likelihood_ratio(effect, variance, tau2, null: float = 0.0):
    """``log Lambda`` of the normal-mixture SPRT of ``effect = null`` (Johari et al. 2017).

    ``log Lambda = 0.5 log(V / (V + tau^2)) + tau^2 (effect - null)^2 / (2 V (V + tau^2))``.
    """
    d = np.asarray(effect, dtype=np.float64) - null
    V = np.asarray(variance, dtype=np.float64)
    t2 = np.asarray(tau2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -0.5 * np.log1p(t2 / V) + t2 * d * d / (2.0 * V * (V + t2))


def always_valid_p_value(effect, variance, tau2):
    """Always-valid p-value ``min(1, 1/Lambda)`` of ``effect = 0`` at one look.

    Computed on the log scale (``exp(-max(log Lambda, 0))``), so it does not
    overflow; a zero variance gives 0 for a non-zero effect and 1 otherwise.
    """
    llr = log_mixture_likelihood_ratio(effect, variance, tau2)
    p = np.exp(-np.maximum(llr, 0.0))
    e = np.asarray(effect, dtype=np.float64)
    V = np.asarray(variance, dtype=np.float64)
    return np.where(V == 0.0, np.where(e == 0.0, 1.0, 0.0), p)


def always_valid_interval(effect, variance, tau2, alpha: float = 0.05):
    """``(lower, upper, p_value)`` of the normal-mixture confidence sequence. Vectorized.

    The interval excludes 0 exactly when the p-value is below ``alpha``.
    """
    e = np.asarray(effect, dtype=np.float64)
    hw = always_valid_half_width(variance, tau2, alpha)
    return e - hw, e + hw, always_valid_p_value(e, variance, tau2)


# --------------------------------------------------------------------------- the design and result rows
NEEDS_PLANNED_SIZE = (
    "always-valid intervals need their mixture fixed before the data are seen: pass "
    "sequential=abkit.sequential.AlwaysValid(planned_n=<units planned in all arms at the end>) (the size "
    "abkit.power.plan(..., sequential=True) gives; in a spec, `planned_units:`), or tau=<mixing sd on the "
    "effect scale>. Tuned to the units analysed at each look instead, the interval would be the estimate "
    "+/- about 3 standard errors at every look, and its false-positive rate would grow with the number of looks"
)


@dataclass(frozen=True)
class AlwaysValid:
    """How the always-valid (normal-mixture) intervals are tuned: fixed before the data are seen.

    The mixing variance ``tau^2`` must not depend on the looks (module
    docstring). abkit's rule (Howard et al. 2021, Sec. 3.5; Waudby-Smith et
    al. 2024): make the interval narrowest when the experiment reaches
    ``planned_n`` units (all arms), i.e. ``tau^2 = x(alpha) V_now n_now /
    planned_n`` with ``x(0.05) = 8.20`` (:func:`mixing_variance`; ``V_now
    n_now`` estimates the per-unit variance, which does not shrink as units
    arrive). Give ``planned_n`` or ``tau``; there is no default, because the
    only data-free default, the units analysed now, re-tunes the mixture at
    every look and loses the time-uniform guarantee.

    Parameters
    ----------
    planned_n : the planned number of units at the end of the experiment, all
        arms together (e.g. from :func:`abkit.power.plan` with
        ``sequential=True``). Being wrong by a factor 10 costs about 7% of
        width; the guarantee holds at every look, before and after it.
    tau : the mixing standard deviation on the effect scale instead, one
        number (every metric) or a mapping metric name -> number; the
        relative lift then uses ``tau / |control value|``.
    """

    planned_n: float | None = None
    tau: float | Mapping | None = None

    def __post_init__(self):
        if self.planned_n is None and self.tau is None:
            raise AbkitError(NEEDS_PLANNED_SIZE)
        if self.planned_n is not None and (
            isinstance(self.planned_n, bool) or not (np.isfinite(self.planned_n) and self.planned_n > 0)
        ):
            raise AbkitError(f"planned_n={self.planned_n!r} must be a positive number of units (all arms)")

    @classmethod
    def coerce(cls, sequential) -> AlwaysValid:
        """``sequential=`` of :func:`abkit.analyze` as a design (``True`` alone is refused: no planned size)."""
        if isinstance(sequential, AlwaysValid):
            return sequential
        if sequential is True:
            raise AbkitError("sequential=True: " + NEEDS_PLANNED_SIZE)
        raise AbkitError(f"sequential={sequential!r} must be False or abkit.sequential.AlwaysValid(planned_n=...)")

    def tau_for(self, metric: str) -> float | None:
        if self.tau is None:
            return None
        t = self.tau.get(metric) if isinstance(self.tau, Mapping) else self.tau
        if t is not None and not (np.isfinite(t) and t > 0):
            raise AbkitError(f"tau={t!r} for metric '{metric}' must be a positive number (effect scale)")
        if t is None and self.planned_n is None:
            raise AbkitError(
                f"tau has no value for metric '{metric}' and no planned_n is given; give every "
                "metric a tau, or planned_n="
            )
        return t

    def describe(self, alpha: float) -> str:
        target = (
            f"tuned to the planned {self.planned_n:,.0f} units"
            if self.planned_n is not None
            else "with the mixing sd given (tau)"
        )
        return (
            f"Always-valid {1 - alpha:.0%} confidence sequences and p-values (normal-mixture SPRT, "
            f"Johari et al. 2017; Howard et al. 2021), {target}, fixed before the data: safe to look at "
            "every day and to stop as soon as an interval excludes zero."
        )


@lru_cache(maxsize=16)
def _mixing_ratio(alpha: float) -> float:
    return optimal_mixing_ratio(alpha)


def always_valid_rows(rows: Sequence[dict], design: AlwaysValid, alpha: float, units_now: float) -> list[dict]:
    """Replace the CIs and p-values of result rows by always-valid ones. Vectorized over the rows.

    Each row needs ``metric, effect, se, rel_effect, rel_se, control_value,
    ci_lower, ci_upper, rel_ci_lower, rel_ci_upper, p_value, method``.
    The mixing variance of a row is ``tau^2 = x(alpha) se^2 units_now /
    planned_n`` (:class:`AlwaysValid`; ``units_now`` = the units analysed,
    all arms) or the design's ``tau^2``. The effect gets
    :func:`always_valid_interval`; the relative lift gets the always-valid
    Fieller interval (:func:`always_valid_relative_interval`, the same
    mixture) when the row carries its :data:`FIELLER_PIECES`, else
    ``rel_effect +/- h`` on the delta-method variance. The fixed-horizon
    values move to ``ci_lower_fixed``, ``ci_upper_fixed``,
    ``rel_ci_lower_fixed``, ``rel_ci_upper_fixed``, ``p_value_fixed``; ``tau``
    (the mixing sd on the effect scale) is added and ``method`` suffixed
    with ``" + always-valid"``.
    """
    rows = [dict(r) for r in rows]
    if not rows:
        return rows

    def col(key):
        return np.array([r[key] for r in rows], dtype=np.float64)

    x = _mixing_ratio(float(alpha))
    effect, rel_effect, control = col("effect"), col("rel_effect"), col("control_value")
    V, Vr = col("se") ** 2, col("rel_se") ** 2
    given = np.array([np.nan if (t := design.tau_for(r["metric"])) is None else t for r in rows], dtype=np.float64)
    fraction = np.nan if design.planned_n is None else float(units_now) / float(design.planned_n)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = np.abs(control)
        tau2 = np.where(np.isnan(given), x * V * fraction, given**2)
        tau2_rel = np.where(np.isnan(given), x * Vr * fraction, np.where(cv > 0, (given / cv) ** 2, np.nan))
    lo, hi, p = always_valid_interval(effect, V, tau2, alpha)
    rlo, rhi, _ = always_valid_interval(rel_effect, Vr, tau2_rel, alpha)
    idx = np.array(
        [i for i, r in enumerate(rows) if FIELLER_PIECES in r and np.isfinite(r["control_value"])], dtype=np.int64
    )
    if idx.size:
        pieces = np.array([rows[i][FIELLER_PIECES] for i in idx], dtype=np.float64).reshape(idx.size, 2)
        flo, fhi = always_valid_relative_interval(
            effect[idx], control[idx], V[idx], pieces[:, 1], pieces[:, 0], tau2[idx], alpha
        )
        rlo[idx], rhi[idx] = flo, fhi
    for j, r in enumerate(rows):
        r.update(
            {
                "ci_lower_fixed": r["ci_lower"],
                "ci_upper_fixed": r["ci_upper"],
                "rel_ci_lower_fixed": r["rel_ci_lower"],
                "rel_ci_upper_fixed": r["rel_ci_upper"],
                "p_value_fixed": r["p_value"],
                "ci_lower": float(lo[j]),
                "ci_upper": float(hi[j]),
                "rel_ci_lower": float(rlo[j]),
                "rel_ci_upper": float(rhi[j]),
                "p_value": float(p[j]),
                "tau": float(np.sqrt(tau2[j])),
                "method": f"{r['method']} + always-valid",
            }
        )
    return rows
