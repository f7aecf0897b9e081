"""One market launched first: synthetic control and synthetic difference-in-differences.

    >>> import abkit
    >>> from abkit.did import synthetic
    >>> panel = abkit.simulate.one_market_panel(seed=1)          # DE launches in week 79
    >>> res = synthetic(panel, ("contacts", "orders"), "market", "week", "launched")
    >>> res.estimate, res.ci_lower, res.ci_upper                  # doctest: +SKIP
    >>> res.plot("paths")                                         # doctest: +SKIP

Aftersales changes are often launched in one market first. Difference-in-
differences then leans on parallel trends between that market and the
average of all others; synthetic control (Abadie, Diamond & Hainmueller
2010) and synthetic difference-in-differences (Arkhangelsky, Athey,
Hirshberg, Imbens & Wager 2021) instead *weight* the comparison markets (and,
for SDID, the pre-launch periods) so that the weighted comparison tracks the
launched market before launch. :func:`synthetic` runs all three
(``method="sdid"``, ``"sc"``, ``"did"``) exactly as R's ``synthdid``
(formulas, defaults and references in :mod:`abkit.stats.synthdid`);
:func:`detectable_effect` plans a launch by pretending launches at past dates.

Data: a long panel, one row per unit and period (balanced: every unit in
every period), ``treatment`` a 0/1 column that switches on at launch and
stays on. Ratio outcomes ``outcome=(num, den)`` are analysed as the
unit-period ratio ``num / den`` (the ratio of the cell's sums; with one row
per cell that is the row's ratio; build the panel with
:func:`abkit.did.aggregate_panel` from finer rows); several launched markets
count equally, as in ``synthdid``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .._html import ALERT, bold, frame_table
from ..errors import AbkitError, DataError
from ..plots import style_axes
from ..sources import read_columns
from ..stats import synthdid as core

__all__ = ["SyntheticResult", "DetectableEffect", "synthetic", "detectable_effect", "FIT_GOOD", "FIT_POOR"]

INFERENCE = ("placebo", "bootstrap", "jackknife", "conformal")

FIT_GOOD = 1.5
"""Pre-launch fit is "good" when the launched market's pre-launch RMSPE is at most this multiple of the
median pre-launch RMSPE of the placebo (comparison) markets' own synthetic twins."""
FIT_POOR = 2.5
"""... and "poor" above this multiple (an MSPE ratio of about 6; Abadie, Diamond & Hainmueller 2010 set
aside placebo states whose pre-period MSPE exceeded 5 times California's)."""


# --------------------------------------------------------------------------
# Data preparation
# --------------------------------------------------------------------------
def _val(v) -> str:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, pd.Timestamp):
        return str(v.date()) if v == v.normalize() else str(v)
    return repr(v) if isinstance(v, str) else str(v)


def _label(periods: np.ndarray, i: int):
    """Period ``i`` as a plain value: a Python number, or a pandas Timestamp for dates."""
    x = pd.Index(periods)[i]
    return x.item() if isinstance(x, np.generic) else x


def _outcome_columns(outcome) -> tuple[list[str], str]:
    if isinstance(outcome, str):
        return [outcome], outcome
    if isinstance(outcome, (tuple, list)) and len(outcome) == 2 and all(isinstance(c, str) for c in outcome):
        return list(outcome), f"{outcome[0]}/{outcome[1]}"
    raise DataError(
        f"outcome must be a column name or a (numerator, denominator) pair of column names; got {outcome!r}"
    )


def _numeric_column(df: pd.DataFrame, col: str) -> np.ndarray:
    s = df[col]
    if isinstance(s, pd.DataFrame):
        raise DataError(f"column '{col}' appears more than once in the data; rename the duplicates")
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64").to_numpy()
    if not pd.api.types.is_numeric_dtype(s.dtype):
        conv = pd.to_numeric(s, errors="coerce")
        bad = s[conv.isna() & s.notna()]
        if len(bad):
            raise DataError(
                f"column '{col}' is not numeric (dtype {s.dtype}; e.g. value {bad.iloc[0]!r} in "
                f"{len(bad):,} rows); convert it to numbers before the analysis"
            )
        s = conv
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


@dataclass
class _Panel:
    Y: np.ndarray  # (N, T) outcome, never-launched units first (label order), then launched
    X: np.ndarray | None  # (N, T, C)
    units: np.ndarray  # labels in row order
    periods: np.ndarray  # labels in column order
    first: np.ndarray  # (N,) index of the first launched period, -1 never
    n_control: int
    outcome_name: str


def _period_codes(values: pd.Series, col: str) -> tuple[np.ndarray, np.ndarray]:
    if values.isna().any():
        i = int(np.argmax(values.isna().to_numpy()))
        raise DataError(
            f"column '{col}' has {int(values.isna().sum()):,} missing values (e.g. row {i}); every row needs its period"
        )
    kind = values.dtype
    if not (
        pd.api.types.is_numeric_dtype(kind)
        or pd.api.types.is_datetime64_any_dtype(kind)
        or isinstance(kind, pd.PeriodDtype)
    ) or pd.api.types.is_bool_dtype(kind):
        raise DataError(
            f"column '{col}' must hold period numbers or dates (so that the order of periods is "
            f"unambiguous); got dtype {kind}, e.g. {values.iloc[0]!r}. Map the periods to integers "
            "or dates first"
        )
    codes, labels = pd.factorize(values, sort=True)
    return codes.astype(np.intp), np.asarray(labels)


def _prepare(
    data,
    outcome,
    unit: str,
    time: str,
    treatment: str | None,
    covariates: Sequence[str],
    launched: Sequence | None = None,
) -> _Panel:
    out_cols, name = _outcome_columns(outcome)
    for c, what in ((unit, "unit"), (time, "time")):
        if not isinstance(c, str):
            raise DataError(f"{what} must be a column name; got {c!r}")
    covariates = [covariates] if isinstance(covariates, str) else list(covariates or [])
    wanted = list(dict.fromkeys([*out_cols, unit, time, *([treatment] if treatment else []), *covariates]))
    df = read_columns(data, wanted)
    if len(df) == 0:
        raise DataError("the data has no rows")
    if df[unit].isna().any():
        raise DataError(f"column '{unit}' has {int(df[unit].isna().sum()):,} missing values; every row needs its unit")
    ucode, ulab = pd.factorize(df[unit], sort=True)
    ulab = np.asarray(ulab)
    tcode, tlab = _period_codes(df[time], time)
    N, T = ulab.size, tlab.size
    cell = ucode * T + tcode
    counts = np.bincount(cell, minlength=N * T).reshape(N, T)
    if counts.max() > 1:
        i, j = map(int, np.unravel_index(int(np.argmax(counts)), counts.shape))
        raise DataError(
            f"{int((counts > 1).sum()):,} ('{unit}', '{time}') pair(s) appear more than once, e.g. "
            f"{unit}={_val(ulab[i])} in {time}={_val(tlab[j])} ({int(counts[i, j])} rows); synthetic "
            "control needs one row per unit and period: aggregate first (abkit.did.aggregate_panel) "
            "or drop the duplicates"
        )
    if counts.min() == 0:
        i, j = map(int, np.unravel_index(int(np.argmin(counts)), counts.shape))
        raise DataError(
            f"the panel is unbalanced: {int((counts == 0).sum()):,} unit-period(s) have no row, e.g. "
            f"{unit}={_val(ulab[i])} in {time}={_val(tlab[j])}; synthetic control needs every unit "
            "in every period: fill the gaps or drop the incomplete units or periods"
        )

    def matrix(col: str) -> np.ndarray:
        v = _numeric_column(df, col)
        bad = ~np.isfinite(v)
        if bad.any():
            r = int(np.argmax(bad))
            raise DataError(
                f"column '{col}' has {int(bad.sum()):,} missing or infinite values, e.g. {unit}="
                f"{_val(ulab[ucode[r]])} in {time}={_val(tlab[tcode[r]])}; synthetic control needs a "
                "complete panel: fill them or drop the unit"
            )
        m = np.empty(N * T)
        m[cell] = v
        return m.reshape(N, T)

    if len(out_cols) == 2:
        num, den = matrix(out_cols[0]), matrix(out_cols[1])
        if (den <= 0).any():
            i, j = np.argwhere(den <= 0)[0]
            raise DataError(
                f"column '{out_cols[1]}' is 0 or negative in {int((den <= 0).sum()):,} unit-period(s), "
                f"e.g. {unit}={_val(ulab[i])} in {time}={_val(tlab[j])}, so the ratio "
                f"{out_cols[0]}/{out_cols[1]} is undefined there; drop that unit or aggregate periods"
            )
        Y = num / den
    else:
        Y = matrix(out_cols[0])
    X = np.stack([matrix(c) for c in covariates], axis=2) if covariates else None
    if treatment is not None:
        D = matrix(treatment)
        if not np.isin(D, (0.0, 1.0)).all():
            bad = D[~np.isin(D, (0.0, 1.0))][0]
            raise DataError(f"column '{treatment}' must be 0 (not launched) or 1 (launched); got e.g. {_val(bad)}")
        on = D > 0.5
        first = np.where(on.any(axis=1), on.argmax(axis=1), -1)
        # once launched, every later period must be launched too
        after = np.arange(T)[None, :] >= np.where(first < 0, T, first)[:, None]
        off_again = (after & ~on).any(axis=1)
        if off_again.any():
            i = int(np.argmax(off_again))
            j = int(np.argmax(after[i] & ~on[i]))
            raise DataError(
                f"treatment column '{treatment}' switches off again in {int(off_again.sum())} unit(s), "
                f"e.g. {unit}={_val(ulab[i])} is launched from {time}={_val(tlab[first[i]])} but not in "
                f"{time}={_val(tlab[j])}; synthetic control needs a launch that stays on (drop the unit "
                "or fix the column)"
            )
    else:
        chosen = [launched] if isinstance(launched, (str, int, np.integer)) else list(launched or [])
        missing = [m for m in chosen if m not in set(ulab.tolist())]
        if missing:
            raise DataError(
                f"unit(s) {', '.join(_val(m) for m in missing)} not found in column '{unit}'; e.g. "
                f"{', '.join(_val(u) for u in ulab[:5])}"
            )
        first = np.where(np.isin(ulab, chosen), T, -1)  # planning: 'launched' after the history
    if (first == 0).any():
        i = int(np.argmax(first == 0))
        raise DataError(
            f"{int((first == 0).sum())} unit(s) are launched in the first period "
            f"({time}={_val(tlab[0])}), e.g. {unit}={_val(ulab[i])}: there are no pre-launch periods to "
            "build a synthetic comparison from; drop those units or add earlier periods"
        )
    if treatment is not None and not (first > 0).any():
        raise DataError(f"no unit is ever launched (column '{treatment}' is 0 everywhere); nothing to estimate")
    n_control = int((first < 0).sum())
    if n_control < 2:
        raise DataError(
            f"synthetic control needs at least 2 never-launched comparison units; the data has "
            f"{n_control} (of {N} units)"
        )
    order = np.r_[np.nonzero(first < 0)[0], np.nonzero(first >= 0)[0]]
    return _Panel(
        Y=Y[order],
        X=None if X is None else X[order],
        units=ulab[order],
        periods=tlab,
        first=first[order],
        n_control=n_control,
        outcome_name=name,
    )


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------
def _fmt(x, digits: int = 4) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}"


def _fmt_p(p) -> str:
    if p is None or not np.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _pct(x) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:+.1f}%"


_METHOD_NAMES = {
    "sdid": "synthetic difference-in-differences",
    "sc": "synthetic control",
    "did": "difference-in-differences",
}


@dataclass(frozen=True)
class SyntheticResult:
    """The effect of a launch in one (or a few) markets, with its synthetic comparison.

    ``estimate`` is the average effect over the post-launch periods in the
    outcome's units, with ``se``, ``ci_lower``, ``ci_upper``, ``p_value``
    from ``inference`` (normal approximation with the replication SE, as
    synthdid; for ``"conformal"`` the interval for a constant effect and the
    test of no effect). ``counterfactual`` is the synthetic comparison's
    mean over the post-launch periods (what the launched market would have
    shown without the launch) and ``relative_effect = estimate /
    counterfactual`` (with ``rel_ci_*``: the interval divided by the same
    counterfactual, treating it as fixed).

    ``unit_weights`` (Series over the comparison units, sum 1),
    ``time_weights`` (Series over the pre-launch periods, sum 1; ``None`` for
    synthetic control, which uses none), ``paths`` (DataFrame by period:
    ``treated``, ``synthetic`` = weighted comparison plus the time-weighted
    pre-launch gap, ``gap``, ``post``; the post-launch gaps average to the
    estimate). ``pre_rmspe`` / ``post_rmspe``: root mean squared gap before /
    after launch; ``placebo``: the placebo distribution (per comparison unit
    with one launched unit, per replication otherwise; the launched row
    first) with its RMSPE, and ``permutation_p_value`` its rank test
    (:func:`abkit.stats.synthdid.rmspe_p_value`). ``fit_quality``
    (``"good"``/``"fair"``/``"poor"``) and ``fit_message`` judge the
    pre-launch fit in words (see :data:`FIT_GOOD`, :data:`FIT_POOR`).
    Staggered launches: ``cohorts`` (one row per launch period) and
    ``cohort_results`` (a result per cohort, without inference); the
    top-level ``unit_weights`` are then the cohort-weighted average and
    ``paths``/``time_weights`` are ``None``.
    """

    method: str
    outcome: str
    unit: str
    time: str
    launched_units: tuple
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    p_value: float
    alpha: float
    inference: str
    reps: int
    seed: object
    unit_weights: pd.Series
    time_weights: pd.Series | None
    paths: pd.DataFrame | None
    counterfactual: float
    pre_rmspe: float
    post_rmspe: float
    placebo: pd.DataFrame | None
    permutation_p_value: float
    fit_quality: str
    fit_message: str
    n_control: int
    n_pre: int
    n_post: int
    launch_period: object
    noise_level: float
    zeta_omega: float
    zeta_lambda: float
    covariates: tuple = ()
    beta: pd.Series | None = None
    conformal: pd.DataFrame | None = None
    conformal_p_value: float = np.nan
    cohorts: pd.DataFrame | None = None
    cohort_results: dict = field(default_factory=dict)
    replicates: np.ndarray | None = field(default=None, repr=False)
    notes: tuple = ()

    # ---- derived numbers -------------------------------------------------
    @property
    def relative_effect(self) -> float:
        return self.estimate / self.counterfactual if self.counterfactual > 0 else np.nan

    @property
    def rel_ci_lower(self) -> float:
        return self.ci_lower / self.counterfactual if self.counterfactual > 0 else np.nan

    @property
    def rel_ci_upper(self) -> float:
        return self.ci_upper / self.counterfactual if self.counterfactual > 0 else np.nan

    @property
    def time_weight_label(self) -> str:
        return "none (synthetic control)" if self.time_weights is None else f"{int((self.time_weights > 0).sum())}"

    def top_weights(self, n: int = 10) -> pd.Series:
        """The ``n`` largest unit weights, the rest summed into one entry ``"other k units"`` (for the readout)."""
        w = self.unit_weights.sort_values(ascending=False, kind="stable")
        top = w.iloc[:n]
        rest = w.iloc[n:]
        if len(rest):
            top = pd.concat([top, pd.Series({f"other {len(rest)} units": float(rest.sum())})])
        top.name = "weight"
        return top

    # ---- tables and text -------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One tidy row: effect, interval, p-value (absolute and relative), fit and design sizes."""
        return pd.DataFrame(
            [
                {
                    "metric": self.outcome,
                    "method": self.method,
                    "launched": ", ".join(map(str, self.launched_units)),
                    "effect": self.estimate,
                    "se": self.se,
                    "ci_lower": self.ci_lower,
                    "ci_upper": self.ci_upper,
                    "p_value": self.p_value,
                    "counterfactual": self.counterfactual,
                    "rel_effect": self.relative_effect,
                    "rel_ci_lower": self.rel_ci_lower,
                    "rel_ci_upper": self.rel_ci_upper,
                    "permutation_p_value": self.permutation_p_value,
                    "pre_rmspe": self.pre_rmspe,
                    "fit_quality": self.fit_quality,
                    "inference": self.inference,
                    "n_control": self.n_control,
                    "n_pre": self.n_pre,
                    "n_post": self.n_post,
                }
            ]
        )

    def to_dict(self) -> dict:
        """The numbers and words a readout page needs, as plain Python values."""
        row = self.to_frame().iloc[0].to_dict()
        row.update(
            {
                "method_name": _METHOD_NAMES[self.method],
                "alpha": self.alpha,
                "reps": self.reps,
                "launch_period": self.launch_period,
                "post_rmspe": self.post_rmspe,
                "fit_message": self.fit_message,
                "top_weights": [(str(k), float(v)) for k, v in self.top_weights().items()],
                "conformal_p_value": self.conformal_p_value,
                "notes": list(self.notes),
            }
        )
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}

    def summary(self) -> str:
        lvl = f"{1 - self.alpha:.0%}"
        who = ", ".join(map(str, self.launched_units))
        s = (
            f"{_METHOD_NAMES[self.method]} on {self.outcome} ({who} vs {self.n_control} comparison units, "
            f"{self.n_pre} pre / {self.n_post} post periods): effect {self.estimate:.6g} "
            f"({_pct(self.relative_effect)} of the synthetic counterfactual {self.counterfactual:.5g}), "
            f"SE {_fmt(self.se, 5)} ({self.inference}), "
            f"{lvl} CI [{_fmt(self.ci_lower, 5)}, {_fmt(self.ci_upper, 5)}], "
            f"p = {_fmt_p(self.p_value)}"
        )
        lines = [s]
        if np.isfinite(self.permutation_p_value):
            lines.append(f"placebo rank test (post/pre RMSPE): p = {_fmt_p(self.permutation_p_value)}")
        lines.append(self.fit_message)
        return "\n".join([*lines, *self.notes])

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        notes = [self.fit_message if self.fit_quality != "poor" else (self.fit_message, ALERT), *self.notes]
        table = self.to_frame().drop(columns=["metric"])

        def cell(column, value):
            if isinstance(value, (float, np.floating)):
                if "p_value" in column:
                    return _fmt_p(value)
                if column.startswith("rel_"):
                    return _pct(value)
                return _fmt(value)
            return str(value)

        return frame_table(table, cell, caption=bold(f"{_METHOD_NAMES[self.method]}: {self.outcome}"), notes=notes)

    # ---- plots -----------------------------------------------------------
    def plot(self, kind: str = "paths", ax=None):
        """A labelled matplotlib figure: ``kind`` in ``"paths"`` (launched market and its synthetic twin,
        launch marked), ``"weights"`` (top ten comparison units, the rest summed), ``"placebo"`` (placebo
        estimates with the launched market marked), ``"fit"`` (the gap before and after launch, with the
        pre-launch RMSPE and the fit judgement). Returns the Axes."""
        kinds = {
            "paths": self._plot_paths,
            "weights": self._plot_weights,
            "placebo": self._plot_placebo,
            "fit": self._plot_fit,
        }
        if kind not in kinds:
            raise DataError(f"plot kind must be one of {', '.join(kinds)}; got {kind!r}")
        return kinds[kind](ax)

    def _axes(self, ax, size=(8, 4.2)):
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=size)
        return ax

    def _launch_x(self, periods: np.ndarray, n_pre: int):
        """Where the launch line goes: between the last pre- and the first post-launch period."""
        x = pd.Index(periods)
        if pd.api.types.is_numeric_dtype(x.dtype) and n_pre > 0:
            return (float(x[n_pre - 1]) + float(x[n_pre])) / 2
        return x[n_pre]

    def _plot_paths(self, ax=None):
        ax = self._axes(ax)
        who = ", ".join(map(str, self.launched_units))
        if self.paths is None:  # staggered: one pair of lines per cohort
            for label, res in self.cohort_results.items():
                line = ax.plot(res.paths.index, res.paths["treated"], lw=2, label=f"launched {label}")[0]
                ax.plot(
                    res.paths.index,
                    res.paths["synthetic"],
                    lw=1.6,
                    ls="--",
                    color=line.get_color(),
                    label=f"synthetic twin ({label})",
                )
                ax.axvline(
                    self._launch_x(res.paths.index.to_numpy(), res.n_pre), color=line.get_color(), lw=0.8, ls=":"
                )
        else:
            p = self.paths
            ax.plot(p.index, p["treated"], color="#0969da", lw=2.2, label=who)
            ax.plot(p.index, p["synthetic"], color="#57606a", lw=1.8, ls="--", label=f"synthetic twin ({self.method})")
            ax.axvline(self._launch_x(p.index.to_numpy(), self.n_pre), color="black", lw=1, ls=":")
            ax.annotate(
                f"launch ({self.launch_period})",
                (self._launch_x(p.index.to_numpy(), self.n_pre), 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(4, -12),
                textcoords="offset points",
                fontsize=8,
            )
        ax.set_xlabel(self.time)
        ax.set_ylabel(self.outcome)
        ax.set_title(
            f"{who} and its synthetic twin: effect {self.estimate:.4g} ({_pct(self.relative_effect)})",
            loc="left",
            fontsize=11,
        )
        ax.legend(fontsize=8, frameon=False)
        style_axes(ax, grid="y")
        return ax

    def _plot_weights(self, ax=None):
        w = self.top_weights(10)
        ax = self._axes(ax, size=(7, 0.32 * len(w) + 1.4))
        y = np.arange(len(w))[::-1]
        colours = ["#bbbbbb" if str(k).startswith("other ") else "#0969da" for k in w.index]
        ax.barh(y, w.to_numpy(), color=colours)
        ax.set_yticks(y)
        for text in ax.set_yticklabels([str(k) for k in w.index]):
            text.set_parse_math(False)
        for yi, v in zip(y, w.to_numpy()):
            ax.annotate(f"{v:.1%}", (v, yi), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        ax.set_xlabel("weight in the synthetic twin")
        ax.set_title(
            f"Comparison units behind the synthetic twin ({(self.unit_weights > 0).sum()} of {self.n_control} used)",
            loc="left",
            fontsize=11,
        )
        style_axes(ax, grid="x")
        return ax

    def _plot_placebo(self, ax=None):
        ax = self._axes(ax)
        if self.placebo is None or len(self.placebo) < 2:
            raise DataError("no placebo distribution: placebo runs need more comparison units than launched units")
        pl = self.placebo[~self.placebo["launched"]]
        values = pl["estimate"].to_numpy()
        bins = min(30, max(8, int(np.sqrt(values.size)) * 2))
        ax.hist(values, bins=bins, color="#bbbbbb", edgecolor="white", label="placebo launches")
        ax.axvline(
            self.estimate,
            color="#cf222e",
            lw=2,
            label=f"{', '.join(map(str, self.launched_units))}: {self.estimate:.4g}",
        )
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlabel(f"estimated effect on {self.outcome}")
        ax.set_ylabel("placebo runs")
        share = float(np.mean(np.abs(values) >= abs(self.estimate)))
        ax.set_title(
            f"Placebo launches in comparison units: {share:.0%} at least as large as the real one",
            loc="left",
            fontsize=11,
        )
        ax.legend(fontsize=8, frameon=False)
        style_axes(ax, grid="y")
        return ax

    def _plot_fit(self, ax=None):
        ax = self._axes(ax)
        results = self.cohort_results if self.paths is None else {"": self}
        for label, res in results.items():
            p = res.paths
            ax.plot(p.index, p["gap"], lw=1.8, label=f"gap {label}".strip())
            pre = p.index[~p["post"].to_numpy()]
            ax.fill_between(
                pre,
                -res.pre_rmspe,
                res.pre_rmspe,
                color="#bbbbbb",
                alpha=0.4,
                lw=0,
                label=f"pre-launch RMSPE {res.pre_rmspe:.3g}".strip(),
            )
            ax.axvline(self._launch_x(p.index.to_numpy(), res.n_pre), color="black", lw=1, ls=":")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xlabel(self.time)
        ax.set_ylabel(f"{self.outcome}: launched minus synthetic twin")
        colour = "#cf222e" if self.fit_quality == "poor" else "black"
        ax.set_title(f"Pre-launch fit: {self.fit_quality}", loc="left", fontsize=11, color=colour)
        ax.legend(fontsize=8, frameon=False)
        style_axes(ax, grid="y")
        return ax


# --------------------------------------------------------------------------
# The facade
# --------------------------------------------------------------------------
def _check_args(method, inference, reps, alpha):
    if method not in core.METHODS:
        raise DataError(f"method must be one of {', '.join(core.METHODS)}; got {method!r}")
    if inference is not None and inference not in INFERENCE:
        raise DataError(f"inference must be one of {', '.join(INFERENCE)} (or None for the default); got {inference!r}")
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 2:
        raise DataError(f"reps must be an integer >= 2 (the number of placebo/bootstrap replications); got {reps!r}")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise DataError(f"alpha must be between 0 and 1; got {alpha!r}")


def _fit_judgement(
    unit: str, pre_rmspe: float, placebo_pre: np.ndarray | None, estimate: float, level: float
) -> tuple[str, str]:
    """A label and a sentence on the pre-launch fit, from the pre-RMSPE relative to the placebo units'."""
    of_level = f" ({pre_rmspe / abs(level):.1%} of its pre-launch level)" if level and np.isfinite(level) else ""
    if placebo_pre is None or placebo_pre.size == 0 or not np.isfinite(pre_rmspe):
        return "not assessed", (
            f"Before launch the synthetic twin missed {unit} by {pre_rmspe:.3g} on average "
            f"(RMSPE){of_level}; no placebo runs to compare it with."
        )
    typical = float(np.median(placebo_pre))
    ratio = pre_rmspe / typical if typical > 0 else np.inf
    worse = float(np.mean(placebo_pre < pre_rmspe))
    size = (
        f" The estimated effect ({estimate:.3g}) is {abs(estimate) / pre_rmspe:.1f} times that pre-launch miss."
        if pre_rmspe > 0
        else ""
    )
    if ratio <= FIT_GOOD:
        return "good", (
            f"Good pre-launch fit: the synthetic twin tracked {unit} to within {pre_rmspe:.3g} on "
            f"average (RMSPE){of_level}, about as closely as twins track the comparison units "
            f"(median {typical:.3g}).{size}"
        )
    if ratio <= FIT_POOR:
        return "fair", (
            f"Fair pre-launch fit: the synthetic twin missed {unit} by {pre_rmspe:.3g} on average "
            f"(RMSPE){of_level}, {ratio:.1f} times the typical miss for the comparison units "
            f"(median {typical:.3g}); worse than {worse:.0%} of them.{size}"
        )
    return "poor", (
        f"Warning, poor pre-launch fit: the synthetic twin missed {unit} by {pre_rmspe:.3g} on "
        f"average (RMSPE){of_level}, {ratio:.1f} times the typical miss for the comparison units "
        f"(median {typical:.3g}). No mix of the comparison units reproduces {unit}'s history well, so "
        f"the estimate may be biased; read it with caution.{size}"
    )


def _block_result(panel: _Panel, fit: core.Fit, method: str, unit: str, time: str) -> dict:
    """Weights, paths and fit numbers of one block-design fit, as labelled pandas objects."""
    N0, T0 = fit.n_control, fit.n_pre
    Y = panel.Y
    ytr = Y[N0:].mean(axis=0)
    gap = fit.gap
    paths = pd.DataFrame(
        {"treated": ytr, "synthetic": ytr - gap, "gap": gap, "post": np.arange(Y.shape[1]) >= T0},
        index=pd.Index(panel.periods[: Y.shape[1]], name=time),
    )
    weights = pd.Series(fit.omega, index=pd.Index(panel.units[:N0], name=unit), name="weight")
    time_weights = (
        None if method == "sc" else pd.Series(fit.lam, index=pd.Index(panel.periods[:T0], name=time), name="weight")
    )
    paths["time_weight"] = np.r_[fit.lam, np.full(Y.shape[1] - T0, np.nan)] if method != "sc" else np.nan
    return dict(
        paths=paths,
        unit_weights=weights,
        time_weights=time_weights,
        counterfactual=float((ytr - gap)[T0:].mean()),
        level=float(ytr[:T0].mean()),
    )


def _placebo_fits(reps: core.Replications) -> core.BatchFit:
    """The solved placebo problems of ``reps`` (:func:`abkit.stats.synthdid.placebo_se` always keeps them)."""
    if reps.fits is None:
        raise AbkitError(
            f"{reps.method} replications carry no solved placebo fits; the placebo table needs "
            "the replications of abkit.stats.synthdid.placebo_se"
        )
    return reps.fits


def _placebo_frame(
    panel: _Panel,
    reps: core.Replications,
    fit_pre: float,
    fit_post: float,
    estimate: float,
    launched: str,
    n_control: int,
    unit: str,
) -> pd.DataFrame:
    fits = _placebo_fits(reps)
    if (
        reps.draws is not None
        and len(reps.pseudo_treated) == fits.estimate.size
        and all(len(p) == 1 for p in reps.pseudo_treated)
        and fits.estimate.size == n_control
    ):
        labels = [str(panel.units[p[0]]) for p in reps.pseudo_treated]
        est, pre, post = fits.estimate, fits.pre_rmspe, fits.post_rmspe
    else:
        d = reps.draws if reps.draws is not None else np.arange(reps.estimates.size)
        labels = [
            ", ".join(str(panel.units[i]) for i in reps.pseudo_treated[j])
            if reps.pseudo_treated
            else f"replication {j + 1}"
            for j in d
        ]
        est, pre, post = fits.estimate[d], fits.pre_rmspe[d], fits.post_rmspe[d]
    frame = pd.DataFrame(
        {
            unit: [launched, *labels],
            "launched": [True] + [False] * len(labels),
            "estimate": np.r_[estimate, est],
            "pre_rmspe": np.r_[fit_pre, pre],
            "post_rmspe": np.r_[fit_post, post],
        }
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["rmspe_ratio"] = frame["post_rmspe"] / frame["pre_rmspe"]
    return frame


def synthetic(
    data,
    outcome,
    unit: str,
    time: str,
    treatment: str,
    method: str = "sdid",
    *,
    covariates: Sequence[str] | str | None = None,
    inference: str | None = None,
    reps: int = 200,
    alpha: float = 0.05,
    seed: int | None = 0,
    conformal: bool = False,
) -> SyntheticResult:
    """Synthetic DiD (``method="sdid"``), synthetic control (``"sc"``) or DiD (``"did"``) on a long panel.

    ``data``: one row per ``unit`` and ``time`` period (balanced), a 0/1
    ``treatment`` column (launch; once on, stays on). ``outcome`` a column or
    a ``(numerator, denominator)`` pair (the unit-period ratio).
    ``covariates``: time-varying columns adjusted for as synthdid's ``X``
    (the effect is estimated on ``Y - X beta``). All launched units starting
    together is the block design of synthdid (exactly its estimator and
    defaults, :mod:`abkit.stats.synthdid`); several launch periods are
    estimated per cohort against the never-launched units and averaged with
    weights ``launched units x post periods`` (Clarke et al. 2023, Stata
    ``sdid``).

    ``inference``: ``"placebo"`` (default; Algorithm 4 of Arkhangelsky et
    al., valid with one launched unit), ``"bootstrap"`` and ``"jackknife"``
    (need at least two launched units; jackknife with staggered launches at
    least two per cohort), or ``"conformal"`` (Chernozhukov, Wuthrich & Zhu
    2021: the interval for a constant effect and the test of no effect;
    block design without covariates only). ``conformal=True`` adds the
    conformal interval of every post-launch period (``.conformal``) to any
    inference. ``reps`` replications, seeded by ``seed``; CIs are
    ``estimate +- z_(1-alpha/2) se``. Placebo runs are always made when
    there are more comparison than launched units: they give the placebo
    distribution, the RMSPE rank test (``permutation_p_value``) and the fit
    judgement.
    """
    _check_args(method, inference, reps, alpha)
    covs = [covariates] if isinstance(covariates, str) else list(covariates or [])
    panel = _prepare(data, outcome, unit, time, treatment, covs)
    starts = np.unique(panel.first[panel.first >= 0])
    if len(starts) > 1:
        return _staggered(panel, method, unit, time, covs, inference, int(reps), alpha, seed, conformal)
    Y, X = panel.Y, panel.X
    N, T = Y.shape
    N0, T0 = panel.n_control, int(starts[0])
    N1 = N - N0
    if T0 < 2:
        raise DataError(
            f"synthetic control needs at least 2 pre-launch periods; the launch is in {time}="
            f"{_val(panel.periods[T0])}, {T0} period(s) after the first"
        )
    if inference is None:
        inference = "placebo" if N0 > N1 else "bootstrap"
    if inference == "conformal" and X is not None:
        raise DataError("conformal inference is not available with covariates; use inference='placebo'")
    fit = core.fit(Y, N0, T0, method, X=X)
    launched = ", ".join(str(u) for u in panel.units[N0:])
    parts = _block_result(panel, fit, method, unit, time)
    notes: list[str] = []
    placebo = core.placebo_se(Y, fit, reps=reps, seed=seed, X=X) if N0 > N1 else None
    assert placebo is None or placebo.fits is not None
    if placebo is None:
        notes.append(f"no placebo runs: they need more comparison units ({N0}) than launched units ({N1})")
    se, replicates, conf_frame, conf_p = np.nan, None, None, np.nan
    if inference == "placebo":
        if placebo is None:
            raise DataError(
                f"placebo inference needs more comparison units than launched units; there are {N0} "
                f"comparison and {N1} launched units; use inference='bootstrap'"
            )
        se, replicates = placebo.se, placebo.estimates
    elif inference == "bootstrap":
        boot = core.bootstrap_se(Y, fit, reps=reps, seed=seed, X=X)
        se, replicates = boot.se, boot.estimates
    elif inference == "jackknife":
        jk = core.jackknife_se(Y, fit, X=X)
        se, replicates = jk.se, jk.estimates
    ci_lower, ci_upper, p_value = core.normal_inference(fit.estimate, se, alpha)
    if inference == "conformal" or conformal:
        if X is not None:
            raise DataError("conformal inference is not available with covariates")
        cr = core.conformal(Y, fit, alpha)
        conf_frame = pd.DataFrame(
            {"effect": cr.effect, "ci_lower": cr.ci_lower, "ci_upper": cr.ci_upper, "p_value": cr.p_value},
            index=pd.Index(panel.periods[T0:], name=time),
        )
        conf_p = cr.p_value_joint
        if inference == "conformal":
            ci_lower, ci_upper = cr.constant_ci
            p_value = cr.p_value_joint
            notes.append(
                "conformal inference (Chernozhukov, Wuthrich & Zhu 2021): interval for an effect constant "
                "over the post-launch periods, p-value of no effect in any post-launch period; interval "
                f"ends located to within {cr.resolution:.3g}"
            )
    pl_frame = None
    perm_p = np.nan
    placebo_pre = None
    if placebo is not None:
        pl_frame = _placebo_frame(panel, placebo, fit.pre_rmspe, fit.post_rmspe, fit.estimate, launched, N0, unit)
        others = pl_frame[~pl_frame["launched"]]
        ratio = fit.post_rmspe / fit.pre_rmspe if fit.pre_rmspe > 0 else np.inf
        perm_p = core.rmspe_p_value(ratio, others["rmspe_ratio"].to_numpy())
        placebo_pre = _placebo_fits(placebo).pre_rmspe
    quality, message = _fit_judgement(launched, fit.pre_rmspe, placebo_pre, fit.estimate, parts["level"])
    if parts["counterfactual"] <= 0:
        notes.append("relative effect not reported: the synthetic counterfactual is not positive")
    beta = pd.Series(fit.beta, index=pd.Index(covs, name="covariate"), name="beta") if covs else None
    return SyntheticResult(
        method=method,
        outcome=panel.outcome_name,
        unit=unit,
        time=time,
        launched_units=tuple(panel.units[N0:].tolist()),
        estimate=fit.estimate,
        se=se,
        ci_lower=ci_lower,
        ci_upper=ci_upper,
        p_value=p_value,
        alpha=alpha,
        inference=inference,
        reps=int(reps),
        seed=seed,
        unit_weights=parts["unit_weights"],
        time_weights=parts["time_weights"],
        paths=parts["paths"],
        counterfactual=parts["counterfactual"],
        pre_rmspe=fit.pre_rmspe,
        post_rmspe=fit.post_rmspe,
        placebo=pl_frame,
        permutation_p_value=perm_p,
        fit_quality=quality,
        fit_message=message,
        n_control=N0,
        n_pre=T0,
        n_post=T - T0,
        launch_period=_label(panel.periods, T0),
        noise_level=fit.reg.noise_level,
        zeta_omega=fit.reg.zeta_omega,
        zeta_lambda=fit.reg.zeta_lambda,
        covariates=tuple(covs),
        beta=beta,
        conformal=conf_frame,
        conformal_p_value=conf_p,
        replicates=replicates,
        notes=tuple(notes),
    )


def _staggered(panel: _Panel, method, unit, time, covs, inference, reps, alpha, seed, conformal) -> SyntheticResult:
    Y, X = panel.Y, panel.X
    N, T = Y.shape
    first = panel.first
    if (first[first >= 0] < 2).any():
        raise DataError(
            "every launch cohort needs at least 2 pre-launch periods; a cohort launches in "
            f"{time}={_val(panel.periods[int(first[first >= 0].min())])}"
        )
    if inference == "conformal" or conformal:
        raise DataError(
            "conformal inference is available for a single launch date only; use "
            "inference='placebo' with staggered launches"
        )
    specs, never = core.cohort_specs(Y, first, method)
    st = core.staggered(Y, specs, never, X=X)
    N0, N1 = never.size, N - never.size
    if inference is None:
        inference = "placebo" if N0 > N1 else "bootstrap"
    if inference == "placebo":
        reps_res = core.staggered_placebo_se(Y, st, reps=reps, seed=seed, X=X)
    elif inference == "bootstrap":
        reps_res = core.staggered_bootstrap_se(Y, st, reps=reps, seed=seed, X=X)
    else:
        reps_res = core.staggered_jackknife_se(Y, st, X=X)
    se = reps_res.se
    ci_lower, ci_upper, p_value = core.normal_inference(st.estimate, se, alpha)
    cohort_results: dict = {}
    rows = []
    cf_total = 0.0
    for a, spec in enumerate(specs):
        fits = st.fits
        label = _label(panel.periods, spec.start)
        rows_idx = np.r_[never, spec.treated]
        sub = _Panel(
            Y=Y[rows_idx],
            X=None,
            units=panel.units[rows_idx],
            periods=panel.periods,
            first=first[rows_idx],
            n_control=N0,
            outcome_name=panel.outcome_name,
        )
        f = core.Fit(
            estimate=float(fits.estimate[a]),
            omega=fits.omega[a, :N0].copy(),
            lam=fits.lam[a, : spec.start].copy(),
            beta=fits.beta[a].copy(),
            reg=spec.reg,
            gap=fits.gap[a].copy(),
            pre_rmspe=float(fits.pre_rmspe[a]),
            post_rmspe=float(fits.post_rmspe[a]),
            n_control=N0,
            n_pre=spec.start,
        )
        parts = _block_result(sub, f, method, unit, time)
        who = tuple(panel.units[spec.treated].tolist())
        quality, message = _fit_judgement(", ".join(map(str, who)), f.pre_rmspe, None, f.estimate, parts["level"])
        cohort_results[label] = SyntheticResult(
            method=method,
            outcome=panel.outcome_name,
            unit=unit,
            time=time,
            launched_units=who,
            estimate=f.estimate,
            se=np.nan,
            ci_lower=np.nan,
            ci_upper=np.nan,
            p_value=np.nan,
            alpha=alpha,
            inference="none (one cohort)",
            reps=0,
            seed=seed,
            unit_weights=parts["unit_weights"],
            time_weights=parts["time_weights"],
            paths=parts["paths"],
            counterfactual=parts["counterfactual"],
            pre_rmspe=f.pre_rmspe,
            post_rmspe=f.post_rmspe,
            placebo=None,
            permutation_p_value=np.nan,
            fit_quality=quality,
            fit_message=message,
            n_control=N0,
            n_pre=spec.start,
            n_post=T - spec.start,
            launch_period=label,
            noise_level=spec.reg.noise_level,
            zeta_omega=spec.reg.zeta_omega,
            zeta_lambda=spec.reg.zeta_lambda,
            covariates=tuple(covs),
        )
        cf_total += st.weights[a] * parts["counterfactual"]
        rows.append(
            {
                "launch_period": label,
                "launched": ", ".join(map(str, who)),
                "n_launched": spec.treated.size,
                "n_post": T - spec.start,
                "weight": st.weights[a],
                "estimate": f.estimate,
                "pre_rmspe": f.pre_rmspe,
            }
        )
    weights = pd.Series(
        st.weights @ st.fits.omega[:, :N0], index=pd.Index(panel.units[never], name=unit), name="weight"
    )
    pl_frame = None
    if inference == "placebo":
        pl_frame = pd.DataFrame(
            {
                unit: ["launched units"] + [f"replication {j + 1}" for j in range(reps)],
                "launched": [True] + [False] * reps,
                "estimate": np.r_[st.estimate, reps_res.estimates],
            }
        )
    worst = max(rows, key=lambda r: r["pre_rmspe"])
    quality, message = (
        "not assessed",
        (
            "Staggered launches: the pre-launch fit is shown per launch cohort "
            f"(largest pre-launch RMSPE {worst['pre_rmspe']:.3g}, cohort "
            f"{worst['launch_period']})."
        ),
    )
    beta = None
    if covs:
        beta = pd.Series(st.weights @ st.fits.beta, index=pd.Index(covs, name="covariate"), name="beta")
    return SyntheticResult(
        method=method,
        outcome=panel.outcome_name,
        unit=unit,
        time=time,
        launched_units=tuple(panel.units[N0:].tolist()),
        estimate=st.estimate,
        se=se,
        ci_lower=ci_lower,
        ci_upper=ci_upper,
        p_value=p_value,
        alpha=alpha,
        inference=inference,
        reps=reps,
        seed=seed,
        unit_weights=weights,
        time_weights=None,
        paths=None,
        counterfactual=cf_total,
        pre_rmspe=float(np.sqrt(np.sum(st.weights * st.fits.pre_rmspe**2))),
        post_rmspe=float(np.sqrt(np.sum(st.weights * st.fits.post_rmspe**2))),
        placebo=pl_frame,
        permutation_p_value=np.nan,
        fit_quality=quality,
        fit_message=message,
        n_control=N0,
        n_pre=int(min(s.start for s in specs)),
        n_post=int(T - min(s.start for s in specs)),
        launch_period=rows[0]["launch_period"],
        noise_level=float(np.mean([s.reg.noise_level for s in specs])),
        zeta_omega=np.nan,
        zeta_lambda=np.nan,
        covariates=tuple(covs),
        beta=beta,
        cohorts=pd.DataFrame(rows),
        cohort_results=cohort_results,
        replicates=reps_res.estimates,
        notes=(
            (
                f"staggered launches: {len(specs)} cohorts, each estimated against the {N0} never-launched units "
                "and averaged with weights launched units x post periods (Clarke et al. 2023)"
            ),
        ),
    )


# --------------------------------------------------------------------------
# Planning a one-market launch
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class DetectableEffect:
    """Detectable effect of a launch in ``market`` by post-launch length, from placebo launches in time.

    ``table``: one row per post-launch length ``post_periods``: the number
    of pretend launch dates, the root mean square of their estimates
    (``rmse``; no launch happened, so every estimate is error), the
    minimum detectable effect ``mde = (z_(1-alpha/2) + z_power) rmse`` in
    outcome units and relative to the market's mean level over its last
    ``post_periods`` periods (``mde_relative``).
    """

    market: tuple
    outcome: str
    method: str
    alpha: float
    power: float
    table: pd.DataFrame
    estimates: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def summary(self) -> str:
        who = ", ".join(map(str, self.market))
        lines = [
            (
                f"detectable effect ({self.power:.0%} power, alpha {self.alpha:g}, {self.method}) in {who} on "
                f"{self.outcome}, from placebo launches in its history:"
            )
        ]
        for r in self.table.itertuples():
            lines.append(
                f"  {r.post_periods:>3} periods after launch: {r.mde:.4g} ({r.mde_relative:.1%}), "
                f"{r.n_launch_dates} pretend launch dates"
            )
        return "\n".join(lines)

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return frame_table(
            self.table,
            lambda c, v: f"{v:.1%}" if c == "mde_relative" else (_fmt(v) if isinstance(v, float) else str(v)),
            caption=bold(f"Detectable effect in {', '.join(map(str, self.market))}: {self.outcome}"),
        )

    def plot(self, ax=None, relative: bool = True):
        """Detectable effect (relative by default) against the post-launch length."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        t = self.table
        y = 100 * t["mde_relative"] if relative else t["mde"]
        ax.plot(t["post_periods"], y, "o-", color="#0969da", lw=2)
        for x, v in zip(t["post_periods"], y):
            ax.annotate(
                f"{v:.1f}%" if relative else f"{v:.3g}",
                (x, v),
                xytext=(0, 7),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
        ax.set_xlabel("periods after launch")
        ax.set_ylabel("detectable effect (% of level)" if relative else f"detectable effect ({self.outcome})")
        ax.set_ylim(bottom=0)
        ax.set_title(
            f"What {self.method} could detect in {', '.join(map(str, self.market))} "
            f"({self.power:.0%} power, alpha {self.alpha:g})",
            loc="left",
            fontsize=11,
        )
        style_axes(ax, grid="y")
        return ax


def detectable_effect(
    data,
    outcome,
    unit: str,
    time: str,
    market,
    *,
    method: str = "sdid",
    post_periods: Sequence[int] | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    min_pre: int | None = None,
    max_dates: int | None = 20,
) -> DetectableEffect:
    """What effect could a launch in ``market`` be detected at, by post-launch length (placebo in time).

    On the history (no launch yet), pretend that ``market`` launched at every
    period ``s`` with at least ``min_pre`` periods before it and
    ``L = post_periods`` after it inside the data; estimate each pretend
    launch with ``method`` on the data up to ``s + L`` (the other units as
    comparison, R synthdid's defaults), and read off the spread: the
    root mean square of the placebo estimates (every one is pure error)
    gives ``mde = (z_(1-alpha/2) + z_power) rmse``. This is the in-time
    placebo of Abadie (2021, "Using synthetic controls", J. Econ. Lit.)
    turned into a power analysis; overlapping windows make the dates
    correlated, so few dates give a rough figure. Defaults: ``post_periods``
    4, 8, 13, 26 (those that fit), ``min_pre = max(8, T // 4)``, at most
    ``max_dates = 20`` pretend launch dates per length, evenly spaced and
    including the latest (``None``: every date).
    """
    if method not in core.METHODS:
        raise DataError(f"method must be one of {', '.join(core.METHODS)}; got {method!r}")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise DataError(f"alpha and power must be between 0 and 1; got alpha={alpha!r}, power={power!r}")
    panel = _prepare(data, outcome, unit, time, None, [], launched=market)
    Y = panel.Y
    N, T = Y.shape
    N0 = panel.n_control
    if N0 == N:
        raise DataError("choose the market(s) to plan for with market=...")
    min_pre = max(8, T // 4) if min_pre is None else int(min_pre)
    if min_pre < 2:
        raise DataError(f"min_pre must be at least 2; got {min_pre}")
    lengths = [4, 8, 13, 26] if post_periods is None else [int(x) for x in post_periods]
    lengths = [L for L in lengths if L >= 1 and min_pre + L <= T]
    if not lengths:
        raise DataError(
            f"the history has {T} periods: too short for min_pre={min_pre} plus the requested "
            "post-launch lengths; pass shorter post_periods or a smaller min_pre"
        )
    starts, ends = [], []
    for L in lengths:
        s = np.arange(min_pre, T - L + 1)
        if max_dates is not None and s.size > max_dates:
            s = s[np.unique(np.round(np.linspace(s.size - 1, 0, int(max_dates))).astype(int))]
        starts.append(s)
        ends.append(s + L)
    pre_end = np.concatenate(starts)
    post_end = np.concatenate(ends)
    B = pre_end.size
    controls = np.tile(np.arange(N0), (B, 1))
    treated = np.tile(np.arange(N0, N), (B, 1))
    regs = [core.regularization(Y[:N0, :s], N - N0, e - s, method) for s, e in zip(pre_end, post_end)]
    pr = core.Problems(controls=controls, treated=treated, pre_end=pre_end, post_end=post_end)
    res = core.solve(
        Y,
        pr,
        regs[0],
        zeta_omega=[r.zeta_omega for r in regs],
        zeta_lambda=[r.zeta_lambda for r in regs],
        min_decrease=[r.min_decrease for r in regs],
    )
    est = pd.DataFrame(
        {"post_periods": post_end - pre_end, "launch_period": panel.periods[pre_end], "estimate": res.estimate}
    )
    z = stats.norm.isf(alpha / 2) + stats.norm.ppf(power)
    ytr = Y[N0:].mean(axis=0)
    rows = []
    for L, part in est.groupby("post_periods", sort=True):
        rmse = float(np.sqrt(np.mean(part["estimate"] ** 2)))
        level = float(ytr[T - L :].mean())
        rows.append(
            {
                "post_periods": int(L),
                "n_launch_dates": len(part),
                "rmse": rmse,
                "sd": float(part["estimate"].std(ddof=1)) if len(part) > 1 else np.nan,
                "mde": z * rmse,
                "mde_relative": z * rmse / abs(level) if level else np.nan,
            }
        )
    return DetectableEffect(
        market=tuple(panel.units[N0:].tolist()),
        outcome=panel.outcome_name,
        method=method,
        alpha=alpha,
        power=power,
        table=pd.DataFrame(rows),
        estimates=est,
    )
