"""Result objects of the regression DiD estimators (2x2, TWFE, placebo, event study) and the pre-trend test."""

from __future__ import annotations

import math
from collections.abc import Sequence  # noqa: F401
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import DataError
from ..stats.cluster_robust import quadratic_form_inverse
from ..stats.wild_bootstrap import WildTest
from .event_charts import _event_plot, _plot_trends
from .result_tables import _fmt_p, _table_html


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class PretrendTest:
    """Joint test that the pre-launch effects are zero.

    ``statistic`` is Hotelling's ``F = W (G - q) / (q (G - 1))`` referred to
    ``F(df1 = q, df2 = G - q)`` with ``G`` clusters, or the Wald ``W``
    referred to chi-square(q) when ``df2`` is infinite; ``event_times`` are
    the tested event times (for a binned TWFE event study the first one
    stands for its end bin).
    """

    statistic: float  # F (Hotelling-corrected) or chi-square
    df1: float
    df2: float
    p_value: float
    wald: float
    method: str
    wild_p_value: float = np.nan
    event_times: tuple = ()
    n_clusters: int = 0
    estimates: np.ndarray | None = field(default=None, repr=False, compare=False)
    vcov: np.ndarray | None = field(default=None, repr=False, compare=False)
    trend_pattern: np.ndarray | None = field(default=None, repr=False, compare=False)

    def detectable_trend(self, power: float = 0.8, alpha: float = 0.05) -> float:
        """The linear pre-launch drift per period that this test detects with probability ``power``.

        A drift of ``delta`` per period (on the analysis scale) shifts the
        tested coefficients by ``delta * s`` (``s = trend_pattern``: ``e + 1``
        for effects measured against ``e = -1``, 1 for period-on-period
        changes), so the Wald noncentrality is ``lambda = delta^2 s' V^{-1} s``
        and the power is ``P(F(q, G - q; lambda) > F_crit)`` (Hotelling's
        noncentral F; chi-square without clusters), with ``V`` the estimated
        covariance. A test that passes says little about drifts smaller
        than this (Roth 2022, "Pretest with caution: event-study estimates
        after testing for parallel trends", AER: Insights). An approximate,
        optimistic guide with few units: the covariance is treated as known
        up to Hotelling's correction, and in simulations with 20 markets the
        test detects the drift reported for 80% power about 65% of the time.
        NaN when the test has no covariance (e.g. the TWFE event study).
        """
        if (
            self.vcov is None or self.trend_pattern is None or not np.isfinite(self.p_value) or np.isnan(self.df2)
        ):  # a randomization test has no noncentral F
            return np.nan
        q, df2 = int(self.df1), self.df2
        if np.isfinite(df2):
            crit = stats.f.isf(alpha, q, df2)

            def pw(lam):
                return stats.ncf.sf(crit, q, df2, lam)
        else:
            crit = stats.chi2.isf(alpha, q)

            def pw(lam):
                return stats.ncx2.sf(crit, q, lam)

        hi = 1.0
        while pw(hi) < power and hi < 1e8:
            hi *= 2.0
        from scipy.optimize import brentq

        lam = brentq(lambda x: pw(x) - power, 1e-12, hi, xtol=1e-10)
        k = quadratic_form_inverse(np.asarray(self.trend_pattern, dtype=np.float64), self.vcov)
        return float(math.sqrt(lam / k)) if k > 0 else np.nan

    def summary(self) -> str:
        if not np.isfinite(self.p_value):
            return f"pre-trend test: not available ({self.method})"
        if np.isnan(self.df2):
            ref = "Wald W"
        else:
            ref = f"F({self.df1:g}, {self.df2:g})" if np.isfinite(self.df2) else f"chi2({self.df1:g})"
        wp = f", wild bootstrap p = {_fmt_p(self.wild_p_value)}" if np.isfinite(self.wild_p_value) else ""
        ev = ""
        if self.event_times:
            lo, hi = min(self.event_times), max(self.event_times)
            ev = f" of event times {lo:g}..{hi:g}" if lo != hi else f" of event time {lo:g}"
        return f"pre-trend test{ev}: {ref} = {self.statistic:.3f}, p = {_fmt_p(self.p_value)}{wp} ({self.method})"

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()


@dataclass(frozen=True)
class DiDResult:
    """A single DiD coefficient (2x2, TWFE or placebo) with cluster-robust and wild-bootstrap inference."""

    method: str
    outcome: str
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    p_value: float
    df: float
    alpha: float
    n_obs: int
    n_units: int
    n_periods: int
    n_clusters: int
    vcov_type: str
    small_sample: str
    coefficients: pd.DataFrame
    wild: WildTest | None = None
    bacon: BaconResult | None = None
    trends: pd.DataFrame | None = None
    dropped: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    n_treated_clusters: int = 0  # clusters with a treated row (0 without clusters)
    n_untreated_clusters: int = 0
    few_treated_clusters: bool = False  # fewer than FEW_TREATED_CLUSTERS of either: CRV1 and wild unreliable

    @property
    def wild_p_value(self) -> float:
        return self.wild.p_value if self.wild else np.nan

    @property
    def wild_ci_lower(self) -> float:
        return self.wild.ci_lower if self.wild else np.nan

    @property
    def wild_ci_upper(self) -> float:
        return self.wild.ci_upper if self.wild else np.nan

    def to_frame(self) -> pd.DataFrame:
        """One tidy row: the effect, its CRV1 inference and the wild bootstrap inference."""
        return pd.DataFrame(
            [
                {
                    "metric": self.outcome,
                    "method": self.method,
                    "effect": self.estimate,
                    "se": self.se,
                    "ci_lower": self.ci_lower,
                    "ci_upper": self.ci_upper,
                    "p_value": self.p_value,
                    "wild_p_value": self.wild_p_value,
                    "wild_ci_lower": self.wild_ci_lower,
                    "wild_ci_upper": self.wild_ci_upper,
                    "df": self.df,
                    "n_obs": self.n_obs,
                    "n_units": self.n_units,
                    "n_periods": self.n_periods,
                    "n_clusters": self.n_clusters,
                    "vcov": self.vcov_type,
                    "n_treated_clusters": self.n_treated_clusters,
                    "few_treated_clusters": self.few_treated_clusters,
                    "dropped_rows": int(sum(self.dropped.values())),
                }
            ]
        )

    def summary(self) -> str:
        lvl = f"{1 - self.alpha:.0%}"
        s = (
            f"{self.method} DiD on {self.outcome}: {self.estimate:.6g} (SE {self.se:.5g}, {self.vcov_type}, "
            f"{self.n_clusters} clusters), {lvl} CI [{self.ci_lower:.5g}, {self.ci_upper:.5g}], "
            f"p = {_fmt_p(self.p_value)}"
        )
        if self.wild:
            s += (
                f"; wild cluster bootstrap ({self.wild.weights}, {self.wild.reps} draws): "
                f"p = {_fmt_p(self.wild.p_value)}, CI [{self.wild.ci_lower:.5g}, {self.wild.ci_upper:.5g}]"
            )
        return "\n".join([s, *self.notes])

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        notes = [self.small_sample, *self.notes]
        if self.dropped:
            notes.append("dropped rows: " + ", ".join(f"{k}: {v:,}" for k, v in self.dropped.items()))
        return _table_html(self.to_frame().drop(columns=["vcov"]), f"{self.method} DiD: {self.outcome}", notes)

    def plot_trends(self, ax=None):
        """Raw trends: mean outcome per launch cohort (or treated/control group) and period."""
        if self.trends is None:
            raise DataError("this result has no trend data to plot")
        return _plot_trends(self.trends, self.outcome, ax)

    plot = plot_trends


@dataclass(frozen=True)
class BaconResult:
    """Goodman-Bacon (2021) decomposition: the 2x2 comparisons behind a TWFE estimate."""

    comparisons: pd.DataFrame  # treated, control, kind, estimate, weight
    twfe: float

    def to_frame(self) -> pd.DataFrame:
        return self.comparisons.copy()

    def by_kind(self) -> pd.DataFrame:
        """Total weight and weighted-average estimate per kind of comparison."""
        c = self.comparisons.assign(we=self.comparisons.weight * self.comparisons.estimate)
        g = c.groupby("kind", sort=False)[["weight", "we"]].sum()
        return pd.DataFrame({"weight": g["weight"], "estimate": g["we"] / g["weight"]}).reset_index()

    @property
    def forbidden_weight(self) -> float:
        """Weight on comparisons that use already-treated units as controls."""
        k = self.comparisons.kind
        return float(self.comparisons.weight[k.isin(["later vs earlier treated", "later vs always treated"])].sum())

    def _repr_html_(self) -> str:
        return _table_html(self.by_kind(), f"Goodman-Bacon decomposition (TWFE = {self.twfe:.6g})")

    def plot(self, ax=None):
        """Scatter of 2x2 estimates against their weights, by kind of comparison."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 4))
        for kind, part in self.comparisons.groupby("kind"):
            ax.scatter(part["weight"], part["estimate"], label=kind, s=30)
        ax.axhline(self.twfe, color="black", lw=0.8, ls="--", label="TWFE")
        ax.set_xlabel("weight")
        ax.set_ylabel("2x2 DiD estimate")
        ax.legend(fontsize=8, frameon=False)
        ax.set_title("Goodman-Bacon decomposition", loc="left", fontsize=11)
        ax.figure.tight_layout()
        return ax


@dataclass(frozen=True)
class EventStudyResult:
    """Event-time effects (leads and lags of the launch) with pointwise and uniform bands."""

    outcome: str
    method: str
    table: pd.DataFrame  # event_time, estimate, se, ci_lower, ci_upper, band_lower, band_upper, p_value, ...
    pretrend: PretrendTest
    estimate: float  # average of the post-launch event-time effects
    se: float
    ci_lower: float
    ci_upper: float
    p_value: float
    alpha: float
    critical_value: float  # sup-t critical value of the uniform band
    n_obs: int
    n_units: int
    n_clusters: int
    trends: pd.DataFrame | None = None
    dropped: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    n_treated_clusters: int = 0
    n_untreated_clusters: int = 0
    few_treated_clusters: bool = False

    def to_frame(self) -> pd.DataFrame:
        """One row per event time (the reference period has estimate 0 and no SE)."""
        return self.table.copy()

    def summary(self) -> str:
        return "\n".join(
            [
                f"event study ({self.method}) on {self.outcome}: average post-launch effect "
                f"{self.estimate:.5g} (SE {self.se:.4g}), p = {_fmt_p(self.p_value)}",
                self.pretrend.summary(),
                *self.notes,
            ]
        )

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return _table_html(
            self.table,
            f"Event study ({self.method}): {self.outcome}",
            [self.pretrend.summary(), f"uniform band critical value {self.critical_value:.3f}", *self.notes],
        )

    def plot(self, ax=None):
        """Event-study plot: estimates, pointwise CIs and the uniform (simultaneous) band."""
        return _event_plot(
            self.table,
            "event_time",
            f"{self.method}: effect on {self.outcome} by periods since launch",
            ax,
            self.alpha,
            self.outcome,
        )

    def plot_trends(self, ax=None):
        if self.trends is None:
            raise DataError("this result has no trend data to plot")
        return _plot_trends(self.trends, self.outcome, ax)
