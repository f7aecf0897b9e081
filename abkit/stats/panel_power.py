"""Power of panel experiments and difference-in-differences rollouts with serially correlated outcomes.

Panels and difference-in-differences
====================================

Units (markets) observed ``m`` periods before and ``r`` periods after a
simultaneous launch, a share ``P`` of the ``J`` units treated. Let ``Sigma``
(``(m + r) x (m + r)``) be the covariance of one unit's outcomes over the
periods after removing common period effects. The estimators are
differences in means, between arms, of per-unit contrasts (Frison and
Pocock 1992, Stat. Med. 11; McKenzie 2012, "Beyond baseline and follow-up:
the case for more T in experiments", J. Dev. Econ. 99):

    POST:   c_i = ybar_post,i                        v = Var(ybar_post)
    DiD:    c_i = ybar_post,i - ybar_pre,i           v = a' Sigma a
    ANCOVA: c_i = ybar_post,i - theta ybar_pre,i     v = Var(ybar_post) - Cov(ybar_post, ybar_pre)^2 / Var(ybar_pre)

``Var(tau_hat) = v (1/n_c + 1/n_t) = v / (P (1 - P) J)``. For the DiD this is
Burlig, Preonas and Woerman's (2020, "Panel data and experimental design",
J. Dev. Econ. 144) serial-correlation-robust formula (they state it as an MDE
with t quantiles; here the exact noncentral t is used):

    v_DiD = (1/m + 1/r) sigma^2 + (m-1)/m psi_B + (r-1)/r psi_A - 2 psi_X

with ``psi_B`` / ``psi_A`` the average covariance between distinct pre / post
periods and ``psi_X`` the average pre-post covariance. With the
equicorrelated (constant-correlation ``rho``) ``Sigma = sigma^2 ((1 - rho) I
+ rho 1 1')``, McKenzie's (2012) factors follow:
``v_POST = sigma^2 (1 + (r-1) rho) / r``, ``v_DiD = v_POST + sigma^2 (1 + (m-1)
rho) / m - 2 rho sigma^2``, ``v_ANCOVA = v_POST - sigma^2 m rho^2 / (1 + (m-1)
rho)``. ``panel_covariance`` also builds a unit effect plus AR(1) noise,
``Sigma_ts = sigma^2 (rho + (1 - rho) phi^|t-s|)``, or takes any ``Sigma``.
Power is then the two-sample t-test on the ``c_i`` with ``df = J - 2``
(exact for normal outcomes; analysing the collapsed pre/post contrasts is
what makes inference robust to serial correlation, Bertrand, Duflo and
Mullainathan 2004). ANCOVA's estimated slope costs one further degree of
freedom, ignored here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import AbkitError
from .power_inputs import _arr, _check_alternative, _check_margin, _positive, _require
from .power_results import MDEResult, PowerResult, SampleSizeResult
from .t_test_power import _scale, mde_mean, power_mean, sample_size_mean


@dataclass(frozen=True, repr=False, eq=False)
class PanelVariance:
    """Per-unit variance of each estimator's contrast (``Var(tau_hat) = v (1/n_c + 1/n_t)``).

    ``did`` is Burlig, Preonas and Woerman's (2020) formula, ``post`` and
    ``ancova`` McKenzie's (2012); ``psi_pre``, ``psi_post`` and ``psi_cross``
    are BPW's average covariances between distinct pre periods, distinct post
    periods and pre-post pairs, ``sigma2`` the average variance.
    """

    pre_periods: int
    post_periods: int
    post: float
    did: float
    ancova: float
    sigma2: float
    psi_pre: float
    psi_post: float
    psi_cross: float
    covariance: np.ndarray

    def __repr__(self) -> str:
        return (
            f"PanelVariance(pre_periods={self.pre_periods}, post_periods={self.post_periods}: "
            f"post={self.post:.4g}, did={self.did:.4g}, ancova={self.ancova:.4g}; sigma2={self.sigma2:.4g}, "
            f"psi_pre={self.psi_pre:.4g}, psi_post={self.psi_post:.4g}, psi_cross={self.psi_cross:.4g})"
        )

    def of(self, estimator: str) -> float:
        if estimator not in ("did", "ancova", "post"):
            raise AbkitError(f"estimator={estimator!r} must be 'did', 'ancova' or 'post'")
        return getattr(self, estimator)


def _periods(pre_periods, post_periods) -> tuple[int, int]:
    for name, v, least in (("pre_periods", pre_periods, 0), ("post_periods", post_periods, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
            raise AbkitError(f"{name}={v!r} must be an integer >= {least}")
    return int(pre_periods), int(post_periods)


def panel_covariance(pre_periods: int, post_periods: int, sd=1.0, rho=0.0, ar1=0.0) -> np.ndarray:
    """Covariance of one unit's outcomes over ``pre + post`` periods (pre first).

    ``Sigma_ts = sd^2 (rho + (1 - rho) ar1^|t - s|)``: a persistent unit
    component (share ``rho`` of the variance) plus stationary AR(1) noise
    (autocorrelation ``ar1``). ``ar1 = 0`` is McKenzie's equicorrelated case
    (constant correlation ``rho`` between any two periods).
    """
    m, r = _periods(pre_periods, post_periods)
    s = float(_positive(sd, "sd"))
    rho_ = float(_arr(rho, "rho"))
    if not 0.0 <= rho_ <= 1.0:
        raise AbkitError(f"rho={rho_!r} must be in [0, 1] (share of variance from the persistent unit effect)")
    phi = float(_arr(ar1, "ar1"))
    if not -1.0 < phi < 1.0:
        raise AbkitError(f"ar1={phi!r} must be in (-1, 1) (AR(1) autocorrelation of the noise)")
    t = np.arange(m + r)
    lag = np.abs(t[:, None] - t[None, :])
    return s * s * (rho_ + (1.0 - rho_) * np.power(phi, lag))


def panel_variance(pre_periods: int, post_periods: int, sd=1.0, rho=0.0, ar1=0.0, covariance=None) -> PanelVariance:
    """Per-unit contrast variances of POST, DiD and ANCOVA (see the module docstring).

    Give ``covariance`` (``(pre + post)`` square, pre periods first), or
    ``sd``, ``rho`` and ``ar1`` for :func:`panel_covariance`.
    """
    m, r = _periods(pre_periods, post_periods)
    if covariance is None:
        S = panel_covariance(m, r, sd, rho, ar1)
    else:
        S = _arr(covariance, "covariance")
        if S.shape != (m + r, m + r):
            raise AbkitError(
                f"covariance has shape {S.shape}; it must be ({m + r}, {m + r}) for "
                f"{m} pre and {r} post periods (pre periods first)"
            )
        if not np.allclose(S, S.T, rtol=1e-10, atol=1e-12 * np.abs(S).max()):
            raise AbkitError("covariance must be symmetric")
        if np.linalg.eigvalsh(S).min() < -1e-10 * np.abs(S).max():
            raise AbkitError("covariance must be positive semi-definite")
    w_post = np.r_[np.zeros(m), np.full(r, 1.0 / r)]
    v_post = float(w_post @ S @ w_post)
    if m == 0:
        v_did = v_anc = np.nan
        psi_b = psi_x = np.nan
    else:
        w_pre = np.r_[np.full(m, 1.0 / m), np.zeros(r)]
        v_pre = float(w_pre @ S @ w_pre)
        c = float(w_post @ S @ w_pre)
        a = w_post - w_pre
        v_did = float(a @ S @ a)
        v_anc = v_post - (c * c / v_pre if v_pre > 0 else 0.0)
        pre = S[:m, :m]
        psi_b = float((pre.sum() - np.trace(pre)) / (m * (m - 1))) if m > 1 else 0.0
        psi_x = float(S[:m, m:].mean())
    post = S[m:, m:]
    psi_a = float((post.sum() - np.trace(post)) / (r * (r - 1))) if r > 1 else 0.0
    return PanelVariance(m, r, v_post, v_did, float(v_anc), float(np.trace(S) / (m + r)), psi_b, psi_a, psi_x, S)


def _panel(sd, pre_periods, post_periods, rho, ar1, covariance, estimator, treated_share):
    pv = panel_variance(pre_periods, post_periods, sd, rho, ar1, covariance)
    v = pv.of(estimator)
    if not np.isfinite(v):
        raise AbkitError(f"estimator={estimator!r} needs pre_periods >= 1")
    P = _arr(treated_share, "treated_share")
    _require((P > 0) & (P < 1), "treated_share", P, "must be in (0, 1) (share of units treated)")
    return np.sqrt(v), P / (1.0 - P), pv


def _panel_method(estimator: str, pv: PanelVariance) -> str:
    label = {
        "did": "difference-in-differences (Burlig, Preonas & Woerman 2020)",
        "ancova": "ANCOVA on the pre-period mean (McKenzie 2012)",
        "post": "post-period means only (McKenzie 2012)",
    }[estimator]
    return (
        f"panel, {pv.pre_periods} pre / {pv.post_periods} post periods, {label}; two-sample t-test on "
        "per-unit contrasts, df = units - 2"
    )


def _panel_rename(res, estimator, pv):
    from dataclasses import replace

    return replace(res, method=_panel_method(estimator, pv))


def _panel_absolute(mde, margin, baseline, relative: bool, alternative: str):
    """``(mde, margin)`` in the outcome's units: a panel keeps the difference test for a relative margin
    (``m x |baseline|``; the DiD readout has no Fieller ratio rule), so the mean functions get absolute ones."""
    if not relative:
        return mde, margin
    mg = _check_margin(margin, _check_alternative(alternative))
    eff, mg_abs, _ = _scale(_arr(mde, "mde"), mg, baseline, True)
    return eff, mg_abs


def sample_size_panel(
    sd,
    mde,
    pre_periods,
    post_periods,
    alpha=0.05,
    power=0.8,
    alternative="two-sided",
    *,
    rho=0.0,
    ar1=0.0,
    covariance=None,
    estimator="did",
    treated_share=0.5,
    baseline=None,
    relative=False,
    margin=0.0,
) -> SampleSizeResult:
    """Units (markets) needed for a panel experiment with serially correlated outcomes.

    ``n_control`` untreated and ``n_treatment`` treated units; the per-unit
    contrast variance comes from :func:`panel_variance` (``sd``/``rho``/``ar1``
    or ``covariance``) and the power from the t-test on the contrasts. A
    margin (relative ones as ``margin x |baseline|``) is the difference test.
    """
    sd_c, k, pv = _panel(sd, pre_periods, post_periods, rho, ar1, covariance, estimator, treated_share)
    mde, margin = _panel_absolute(mde, margin, baseline, relative, alternative)
    res = sample_size_mean(sd_c, mde, alpha, power, k, alternative, baseline=baseline, margin=margin)
    return _panel_rename(res, estimator, pv)


def power_panel(
    sd,
    mde,
    n_units,
    pre_periods,
    post_periods,
    alpha=0.05,
    alternative="two-sided",
    *,
    rho=0.0,
    ar1=0.0,
    covariance=None,
    estimator="did",
    treated_share=0.5,
    baseline=None,
    relative=False,
    margin=0.0,
) -> PowerResult:
    """Power of a panel design with ``n_units`` units, a share ``treated_share`` treated."""
    sd_c, k, pv = _panel(sd, pre_periods, post_periods, rho, ar1, covariance, estimator, treated_share)
    J = _positive(n_units, "n_units")
    mde, margin = _panel_absolute(mde, margin, baseline, relative, alternative)
    res = power_mean(sd_c, mde, J / (1.0 + k), alpha, k, alternative, baseline=baseline, margin=margin)
    return _panel_rename(res, estimator, pv)


def mde_panel(
    sd,
    n_units,
    pre_periods,
    post_periods,
    alpha=0.05,
    power=0.8,
    alternative="two-sided",
    *,
    rho=0.0,
    ar1=0.0,
    covariance=None,
    estimator="did",
    treated_share=0.5,
    baseline=None,
    margin=0.0,
) -> MDEResult:
    """Minimum detectable effect of a panel design with ``n_units`` units."""
    sd_c, k, pv = _panel(sd, pre_periods, post_periods, rho, ar1, covariance, estimator, treated_share)
    J = _positive(n_units, "n_units")
    res = mde_mean(sd_c, J / (1.0 + k), alpha, power, k, alternative, baseline=baseline, margin=margin)
    return _panel_rename(res, estimator, pv)
