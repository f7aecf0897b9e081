"""A Bayesian reading of an A/B effect: posterior of the lift, P(beat control), expected loss.

For readers who think in bets. The frequentist result stays the primary
one; this is a normal-normal update of the *relative lift* (the estimate's
sampling distribution is already asymptotically normal, so the likelihood is
``rel_hat ~ N(rel, se^2)`` with ``se`` the delta-method standard error of
:mod:`abkit.stats.two_sample`; Gelman et al. 2013, "Bayesian Data Analysis", 3rd ed.,
Section 2.5).

**Prior.** ``rel ~ N(m0, s0^2)``, by default ``m0 = 0`` and ``s0 = 0.05``: most
changes move a metric by a few percent, rarely by 10% or more (two prior
sds). Better: learn ``s0`` from past experiments with
:func:`prior_from_history`, the DerSimonian-Laird (1986, "Meta-analysis in
clinical trials", Control. Clin. Trials 7) estimate of the spread of true
lifts, ``s0^2 = max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w))`` with
``w = 1 / se_i^2`` and Cochran's ``Q = sum w (y_i - ybar_w)^2``. This is the
"empirical Bayes" prior of Deng (2015, "Objective Bayesian two sample
hypothesis testing for online controlled experiments", WWW) and Azevedo et
al. (2020, "A/B testing with fat tails", J. Polit. Econ.).

**Posterior.** Precision-weighted:

    1/s^2 = 1/s0^2 + 1/se^2,     m = s^2 (m0 / s0^2 + rel_hat / se^2).

With ``g = +1`` when higher is better and ``-1`` when lower is better, the
lift in the good direction is ``u = g rel ~ N(g m, s^2)``:

* ``P(treatment beats control) = Phi(g m / s)``;
* expected loss of shipping the treatment ``E[max(0, -u)] = s phi(g m / s) - g m Phi(-g m / s)``
  (how much lift, in the good direction, one expects to give up if the
  treatment is in fact worse; the "risk" of Stucchio 2015, "Bayesian A/B
  testing at VWO"), and of keeping control ``E[max(0, u)] = s phi(g m / s) + g m Phi(g m / s)``;
* the ``1 - alpha`` credible interval ``m +/- z_{1-alpha/2} s``.

All in relative-lift units (0.01 = one percent of the control value's size).
The relative lift is abkit's ``(treatment - control) / |control|``
(:mod:`abkit.stats.two_sample`): for a negative control value (an NPS below zero, a
net amount) it still has the sign of the absolute effect, so ``P(better)``
and the expected losses agree with the direction the metric moved (with
``t / c - 1`` an NPS going from -14.8 to -6.9 would get ``P(better)`` near 0).

**No reading near zero.** When the control value is not distinguishable from
zero (Fieller's fixed-horizon interval of the lift is unbounded, or the
control value is 0) the lift has no finite confidence bound and its
delta-method normal likelihood, on which this update rests, is not a
usable approximation: the Bayesian columns are NaN for that row (a refusal,
not a number), and the pages say why. The absolute effect and its p-value
are unaffected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import AbkitError
from .distributions import norm_cdf, norm_isf, norm_pdf, norm_sf

__all__ = [
    "NormalPrior",
    "posterior",
    "prob_better",
    "expected_loss",
    "prior_from_history",
    "as_prior",
    "add_bayes_columns",
    "relative_defined",
    "BAYES_COLUMNS",
]

BAYES_COLUMNS = [
    "prob_better",
    "expected_loss",
    "expected_loss_control",
    "post_rel_effect",
    "post_rel_lower",
    "post_rel_upper",
    "prior_sd",
]


@dataclass(frozen=True)
class NormalPrior:
    """Normal prior on the relative lift: ``N(mean, sd^2)`` (default centred at 0, sd 5%)."""

    mean: float = 0.0
    sd: float = 0.05

    def __post_init__(self):
        if not (np.isfinite(self.sd) and self.sd > 0):
            raise AbkitError(f"prior sd={self.sd!r} must be a positive number (a relative lift, e.g. 0.05)")
        if not np.isfinite(self.mean):
            raise AbkitError(f"prior mean={self.mean!r} must be a finite relative lift (e.g. 0.0)")

    def describe(self) -> str:
        return f"normal prior on the relative lift, mean {self.mean:+.1%}, sd {self.sd:.1%}"


def posterior(estimate, se, prior: NormalPrior = NormalPrior()):
    """Posterior mean and sd of the relative lift (normal-normal). Vectorized.

    A zero or missing ``se`` is handled: ``se = 0`` returns the estimate
    exactly, NaN propagates.
    """
    y = np.asarray(estimate, dtype=np.float64)
    se = np.asarray(se, dtype=np.float64)
    w0 = 1.0 / prior.sd**2
    with np.errstate(divide="ignore", invalid="ignore"):
        w = 1.0 / (se * se)
        prec = w0 + w
        mean = np.where(se == 0.0, y, (w0 * prior.mean + w * y) / prec)
        sd = np.where(se == 0.0, 0.0, 1.0 / np.sqrt(prec))
    return mean, sd


def _direction(better: str) -> float:
    if better not in ("higher", "lower"):
        raise AbkitError(f"better={better!r} must be 'higher' or 'lower'")
    return 1.0 if better == "higher" else -1.0


def relative_defined(rel_effect, rel_ci_lower, rel_ci_upper) -> bool:
    """True when a relative lift has a finite estimate and a bounded interval (the control value is
    distinguishable from zero); the Bayesian reading is given only then (module docstring)."""
    return bool(np.all(np.isfinite(np.asarray([rel_effect, rel_ci_lower, rel_ci_upper], dtype=np.float64))))


def prob_better(mean, sd, better: str = "higher"):
    """``P(treatment beats control)`` in the metric's good direction."""
    g = _direction(better)
    mean, sd = np.asarray(mean, dtype=np.float64), np.asarray(sd, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = g * mean / sd
    return np.where(sd == 0.0, np.where(g * mean > 0, 1.0, np.where(mean == 0, 0.5, 0.0)), norm_cdf(z))


def expected_loss(mean, sd, better: str = "higher", choose: str = "treatment"):
    """Expected relative lift given up by choosing ``"treatment"`` (or ``"control"``).

    ``E[max(0, -u)]`` (treatment) or ``E[max(0, u)]`` (control) for
    ``u = g rel ~ N(g m, s^2)``; see the module docstring.
    """
    if choose not in ("treatment", "control"):
        raise AbkitError(f"choose={choose!r} must be 'treatment' or 'control'")
    g = _direction(better)
    mu = g * np.asarray(mean, dtype=np.float64)
    if choose == "control":
        mu = -mu
    s = np.asarray(sd, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = mu / s
        loss = s * norm_pdf(z) - mu * norm_sf(z)
    return np.where(s == 0.0, np.maximum(-mu, 0.0), loss)


def prior_from_history(rel_effects, rel_ses, centre: bool = False, min_sd: float = 0.001) -> NormalPrior:
    """A prior learned from past experiments' relative lifts (DerSimonian-Laird).

    ``rel_effects``, ``rel_ses``: the relative lifts and their standard
    errors of comparable past experiments (e.g. ``to_frame()`` columns
    ``rel_effect`` and ``rel_se``). The prior sd is the estimated spread of
    the *true* lifts (their sampling noise removed), floored at ``min_sd``;
    its mean is 0, or the precision-weighted mean lift with ``centre=True``.
    """
    y = np.asarray(rel_effects, dtype=np.float64).ravel()
    se = np.asarray(rel_ses, dtype=np.float64).ravel()
    ok = np.isfinite(y) & np.isfinite(se) & (se > 0)
    if ok.sum() < 3:
        raise AbkitError(
            f"{int(ok.sum())} usable past experiment(s) (finite lift and positive se); "
            "at least 3 are needed to learn a prior, otherwise give NormalPrior(sd=...)"
        )
    y, se = y[ok], se[ok]
    w = 1.0 / se**2
    ybar = float(np.sum(w * y) / np.sum(w))
    Q = float(np.sum(w * (y - ybar) ** 2))
    tau2 = max(0.0, (Q - (y.size - 1)) / (np.sum(w) - np.sum(w**2) / np.sum(w)))
    return NormalPrior(mean=ybar if centre else 0.0, sd=max(float(np.sqrt(tau2)), float(min_sd)))


def as_prior(bayesian) -> NormalPrior:
    """``True`` -> the default prior; a number -> ``NormalPrior(sd=number)``; a NormalPrior as is."""
    if isinstance(bayesian, NormalPrior):
        return bayesian
    if bayesian is True:
        return NormalPrior()
    if isinstance(bayesian, (int, float)) and not isinstance(bayesian, bool):
        return NormalPrior(sd=float(bayesian))
    raise AbkitError(
        f"bayesian={bayesian!r} must be True, a prior sd of the relative lift (e.g. 0.05) "
        "or abkit.stats.bayes.NormalPrior(mean=..., sd=...)"
    )


def add_bayes_columns(rows, prior: NormalPrior, alpha: float = 0.05) -> list[dict]:
    """Result rows with the Bayesian columns (:data:`BAYES_COLUMNS`) added.

    Uses each row's ``rel_effect`` and ``rel_se`` (the fixed-horizon delta
    method standard error: the posterior does not depend on the stopping
    rule) and its ``better`` direction. A row whose fixed-horizon relative
    interval (``rel_ci_*_fixed`` of a sequential row, else ``rel_ci_*``) is
    unbounded gets NaN columns (module docstring: no reading near zero).
    """
    z = norm_isf(alpha / 2.0)
    out = []
    for r in rows:
        r = dict(r)
        bounds = (
            r.get("rel_ci_lower_fixed", r.get("rel_ci_lower", np.nan)),
            r.get("rel_ci_upper_fixed", r.get("rel_ci_upper", np.nan)),
        )
        if relative_defined(r["rel_effect"], *bounds):
            m, s = posterior(r["rel_effect"], r["rel_se"], prior)
        else:
            m = s = np.nan
        r.update(
            {
                "prob_better": float(prob_better(m, s, r["better"])),
                "expected_loss": float(expected_loss(m, s, r["better"], "treatment")),
                "expected_loss_control": float(expected_loss(m, s, r["better"], "control")),
                "post_rel_effect": float(m),
                "post_rel_lower": float(m - z * s),
                "post_rel_upper": float(m + z * s),
                "prior_sd": prior.sd,
            }
        )
        out.append(r)
    return out
