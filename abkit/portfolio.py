"""The programme view: every readout kept, and what the shipped experiments delivered, corrected.

    >>> from abkit import portfolio
    >>> frame = portfolio.load("reports")                  # every readout ever recorded (reports/abkit.duckdb)
    >>> now = portfolio.latest("reports", owner="Returns & Refunds team")   # latest readout per experiment
    >>> page = portfolio.overview("reports", verdict="Ship")  # the index page's rows: one per experiment and arm
    >>> prog = portfolio.programme("reports")               # per KPI: run, shipped, win rate, impact
    >>> prog.summary                                        # doctest: +SKIP
    >>> prog.plot("contact_rate")                           # doctest: +SKIP  (forest plot, raw vs shrunk)
    >>> portfolio.shrink([0.031, -0.004, 0.012], [0.01, 0.008, 0.012])   # doctest: +SKIP

**The store** is :mod:`abkit.store` (``record``, ``load``, ``latest``,
``history``, re-exported here).

**The winner's curse.** Experiments ship *because* their estimates were
large, so the sum of the shipped experiments' estimates overstates what they
delivered (Lee and Shen 2018; Azevedo, Deng, Montiel Olea, Rao and Weyl
2020). :func:`programme` fits, per KPI, an empirical-Bayes normal prior to
*all* the experiments measured on that KPI (shipped or not: the prior is
what experiments on the KPI typically achieve) and sums the shipped
experiments' posterior means instead of their estimates; the interval of the
sum is the posterior interval of the sum of true effects (it accounts for
the prior being estimated, and for the shipped experiments sharing it). The
math is in :mod:`abkit.stats.shrinkage`, with its calibration (measured on
simulated portfolios with known true effects: see ``tests/test_portfolio_calibration.py``).

Effects are relative lifts (``rel_effect``, with ``rel_se``), so experiments
on populations of different size compare; the totals add relative lifts up
("the shipped lifts add up to -7.9%"), which reads as the combined change
when the experiments touched the same population, and as a sum of
percentages otherwise. The business view (:mod:`abkit.business_impact`)
turns each shipped primary lift into units a year with the spec's
``impact`` volume (``volume * |control_value| * lift``) and adds those up,
measured and corrected: that total is in the same units whatever the
populations.

**Which rows count.** The latest readout of each experiment (see
:func:`abkit.store.latest`); its readout must be ``ok``, of an A/B test, a
rollout or a one-market launch (its effect against the synthetic twin, relative
to the twin's level), not Invalid (a sample-ratio mismatch makes the numbers
untrustworthy), and have a relative effect with a standard error; the rows
left out are counted per KPI (``excluded``). "Shipped" is a verdict in
``shipped`` (default :data:`SHIPPED`: ``Ship`` for A/B tests, ``Worked`` for
rollouts and one-market launches); the win rate is shipped / experiments. Each treatment arm of a
multi-arm test counts as one experiment (their shared control is ignored).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from .business_impact import impact_sentence, money_sign
from .errors import DataError
from .formatting import format_pct
from .stats import shrinkage as _shrinkage
from .stats.shrinkage import MIN_EXPERIMENTS, PriorFit, fit_prior
from .store import COLUMNS, STORE_NAME, history, latest, latest_rows, load, record, store_path

__all__ = [
    "load",
    "record",
    "latest",
    "latest_rows",
    "history",
    "overview",
    "store_path",
    "COLUMNS",
    "STORE_NAME",
    "shrink",
    "fit_prior",
    "PriorFit",
    "MIN_EXPERIMENTS",
    "programme",
    "Programme",
    "SHIPPED",
    "plot_forest",
]

SHIPPED = ("Ship", "Worked")
"""Verdict labels that count as shipped: an A/B test's Ship, a rollout's or a one-market launch's Worked."""

_USABLE_KINDS = ("ab", "did", "synthetic")


# --------------------------------------------------------------------------- the index page's rows
OVERVIEW_COLUMNS = [
    "experiment",
    "slug",
    "owner",
    "kind",
    "status",
    "error",
    "metric",
    "better",
    "variant",
    "verdict",
    "verdict_note",
    "headline",
    "rel_effect",
    "rel_ci_lower",
    "rel_ci_upper",
    "p_value",
    "p_value_adjusted",
    "p_label",
    "alpha",
    "sequential",
    "change_scale",
    "control_value",
    "effect",
    "ci_lower",
    "ci_upper",
    "run_id",
    "run_time",
    "data_start",
    "data_end",
    "data_fingerprint",
    "spec_path",
    "runs",
]


def overview(
    source: str | os.PathLike | pd.DataFrame,
    *,
    kind=None,
    owner=None,
    metric=None,
    verdict=None,
    status=None,
    experiment=None,
    since=None,
    until=None,
    timeout: float | None = None,
) -> pd.DataFrame:
    """What the portfolio page lists: one row per experiment and treatment arm, its latest readout's primary metric.

    ``source``: a store (folder or ``.duckdb`` file) or a frame from
    :func:`load`. Filters as in :func:`abkit.store.latest`, except that
    ``metric`` selects experiments by their *primary* metric (the KPI they
    target). A failed readout has one row (``status`` ``failed``,
    ``error``); ``runs`` counts the experiment's recorded readouts (its
    history, :func:`history`). Sorted by the latest run, newest first.
    """
    frame = (
        source
        if isinstance(source, pd.DataFrame)
        else load(source, **({} if timeout is None else {"timeout": timeout}))
    )
    runs = frame.groupby("slug")["run_id"].nunique() if len(frame) else pd.Series(dtype="Int64")
    now = latest(
        frame, kind=kind, owner=owner, verdict=verdict, status=status, experiment=experiment, since=since, until=until
    )
    primary = now["is_primary"].fillna(False).astype(bool) | (now["status"] == "failed")
    rows = now.loc[primary.to_numpy()]
    if metric is not None:
        rows = rows[rows["metric"].isin([metric] if isinstance(metric, str) else list(metric))]
    rows = rows.drop_duplicates(["slug", "variant"])
    out = rows.assign(runs=rows["slug"].map(runs).astype("Int64"))
    out = out.sort_values(["run_time", "slug", "position"], ascending=[False, True, True], kind="stable")
    return out[OVERVIEW_COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------------- shrink
def shrink(estimate, se, *, level: float = 0.95, method: str = "bayes") -> pd.DataFrame:
    """Shrunk estimates of a portfolio's experiments on one KPI (empirical Bayes; :mod:`abkit.stats.shrinkage`).

    ``estimate``, ``se``: the experiments' estimates (e.g. relative lifts)
    and their standard errors; a pandas Series keeps its index. Returns a
    DataFrame with ``estimate, se, shrunk, shrunk_lower, shrunk_upper``
    (posterior mean and equal-tailed ``level`` interval of each true effect),
    plus ``shrunk_sd`` and ``shrinkage`` (0 = kept as measured, 1 = pulled
    all the way to the portfolio mean). ``frame.attrs["prior"]`` describes
    the fitted prior (REML mean and spread, the posterior interval of the
    spread). ``method="plugin"`` fixes the spread at its REML estimate
    instead of integrating over it (too narrow with few experiments).

    Needs at least :data:`MIN_EXPERIMENTS` experiments and positive standard
    errors (:class:`abkit.DataError` otherwise).
    """
    index = estimate.index if isinstance(estimate, pd.Series) else None
    fit = _shrinkage.shrink(estimate, se, level=level, method=method)
    frame = pd.DataFrame(
        {
            "estimate": fit.estimate,
            "se": fit.se,
            "shrunk": fit.shrunk,
            "shrunk_lower": fit.shrunk_lower,
            "shrunk_upper": fit.shrunk_upper,
            "shrunk_sd": fit.shrunk_sd,
            "shrinkage": fit.shrinkage,
        },
        index=index,
    )
    frame.attrs["prior"] = _prior_info(fit)
    return frame


def _prior_info(fit: _shrinkage.Shrinkage) -> dict:
    return {
        "mean": fit.prior.mean,
        "mean_se": fit.prior.mean_se,
        "tau": fit.prior.tau,
        "tau2": fit.prior.tau2,
        "tau2_se": fit.prior.tau2_se,
        "tau_median": fit.tau_median,
        "tau_lower": fit.tau_lower,
        "tau_upper": fit.tau_upper,
        "posterior_mean_of_mean": fit.prior_mean,
        "experiments": fit.prior.n,
        "level": fit.level,
        "method": fit.method,
    }


# --------------------------------------------------------------------------- programme
_SUMMARY_COLUMNS = [
    "metric",
    "better",
    "experiments",
    "shipped",
    "win_rate",
    "naive_total",
    "naive_lower",
    "naive_upper",
    "shrunk_total",
    "shrunk_lower",
    "shrunk_upper",
    "overstatement",
    "prior_mean",
    "prior_sd",
    "prior_sd_lower",
    "prior_sd_upper",
    "excluded",
    "note",
    "impact_unit",
    "impact_experiments",
    "impact_naive",
    "impact_naive_lower",
    "impact_naive_upper",
    "impact_shrunk",
    "impact_shrunk_lower",
    "impact_shrunk_upper",
    "currency",
    "money_naive",
    "money_naive_lower",
    "money_naive_upper",
    "money_shrunk",
    "money_shrunk_lower",
    "money_shrunk_upper",
]
_EXPERIMENT_COLUMNS = [
    "metric",
    "experiment",
    "slug",
    "variant",
    "owner",
    "verdict",
    "shipped",
    "is_primary",
    "run_time",
    "estimate",
    "se",
    "lower",
    "upper",
    "shrunk",
    "shrunk_lower",
    "shrunk_upper",
    "shrinkage",
]


@dataclass(frozen=True)
class Programme:
    """What a portfolio's experiments delivered, per KPI, as measured and corrected for the winner's curse.

    ``summary``: one row per KPI (columns in :func:`programme`);
    ``experiments``: one row per experiment (arm) and KPI with its raw and
    shrunk estimate; ``excluded``: the rows left out and why; ``level``: the
    intervals' confidence.
    """

    summary: pd.DataFrame
    experiments: pd.DataFrame
    excluded: pd.DataFrame
    level: float
    shipped_labels: tuple[str, ...]

    def to_frame(self) -> pd.DataFrame:
        """The per-KPI summary (a copy)."""
        return self.summary.copy()

    def kpi(self, metric: str) -> pd.Series:
        """The summary row of one KPI; :class:`abkit.DataError` listing the KPIs when there is none."""
        hit = self.summary[self.summary["metric"] == metric]
        if hit.empty:
            raise DataError(f"no KPI '{metric}' in the programme; KPIs: {', '.join(self.summary['metric'])}")
        return hit.iloc[0]

    def sentences(self) -> dict[str, str]:
        """Per KPI, the programme's result in words for leadership (:func:`programme_sentence`)."""
        return {row["metric"]: programme_sentence(row, self.level) for _, row in self.summary.iterrows()}

    def plot(self, metric: str, ax=None, *, shipped_only: bool = True):
        """Forest plot of one KPI's (shipped) experiments, as measured and shrunk (:func:`plot_forest`)."""
        self.kpi(metric)
        rows = self.experiments[self.experiments["metric"] == metric]
        if shipped_only:
            rows = rows[rows["shipped"]]
        return plot_forest(rows, ax=ax, level=self.level, title=metric, prior_mean=self.kpi(metric)["prior_mean"])


def _z(level: float) -> float:
    return float(special.ndtri(0.5 + level / 2.0))


def _excluded_reason(frame: pd.DataFrame) -> pd.Series:
    reason = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    status = frame["status"].astype(object)
    kind = frame["kind"].astype(object)
    verdict = frame["verdict"].astype(object)
    no_se = ~(np.isfinite(frame["rel_effect"].astype(float)) & (frame["rel_se"].astype(float) > 0))
    for mask, why in (
        (no_se, "no relative effect with a standard error"),
        (verdict == "Invalid", "verdict Invalid: its numbers cannot be trusted"),
        (~kind.isin(_USABLE_KINDS), "not an A/B test, rollout or one-market launch"),
        (status != "ok", "readout failed"),
    ):
        reason = reason.where(~mask.fillna(True).to_numpy(dtype=bool), why)
    return reason


def programme(
    source: str | os.PathLike | pd.DataFrame,
    *,
    metrics: Sequence[str] | str | None = None,
    shipped: Sequence[str] = SHIPPED,
    primary_only: bool = False,
    level: float = 0.95,
    method: str = "bayes",
    **filters,
) -> Programme:
    """Per KPI: experiments run, shipped, win rate, and the shipped experiments' total impact, naive and corrected.

    ``source``: a store (folder or ``.duckdb`` file) or a frame from
    :func:`load` / :func:`latest`; the latest readout of each experiment is
    used. ``metrics``: the KPIs (default every metric with a usable row);
    ``shipped``: the verdict labels that count as shipped;
    ``primary_only``: only rows where the KPI was the experiment's primary
    metric; ``filters``: passed to :func:`abkit.store.latest` (``owner``,
    ``kind``, ``since``, ``until``...). ``method``: see :func:`shrink`.

    ``summary`` columns, per KPI: ``experiments`` (usable estimates),
    ``shipped``, ``win_rate``; ``naive_total`` (sum of the shipped relative
    lifts, with the normal interval ``naive_lower, naive_upper``);
    ``shrunk_total`` with ``shrunk_lower, shrunk_upper`` (the posterior of
    the sum of their true lifts); ``overstatement``: how much more
    improvement the naive total claims than the corrected one (naive -
    shrunk, sign flipped for a lower-is-better KPI: positive = overstated);
    ``prior_mean``, ``prior_sd`` (REML fit) and ``prior_sd_lower``,
    ``prior_sd_upper`` (posterior interval of the spread); ``excluded``
    (rows left out) and ``note``. The business columns, from shipped primary
    rows whose spec declared an ``impact`` volume (``impact_experiments`` of
    them): ``impact_*`` in ``impact_unit`` a year, ``money_*`` in
    ``currency`` a year (gains: + is good), naive and shrunk. With fewer
    than :data:`MIN_EXPERIMENTS` usable experiments on a KPI the shrunk
    columns are NaN and ``note`` says why.
    """
    if not 0.0 < float(level) < 1.0:
        raise DataError(f"level={level!r} must be between 0 and 1, e.g. 0.95")
    shipped = tuple([shipped] if isinstance(shipped, str) else shipped)
    frame = latest(source, **filters)
    if primary_only:
        frame = frame[frame["is_primary"].fillna(False).astype(bool)]
    frame = frame[frame["metric"].notna()]
    wanted = [metrics] if isinstance(metrics, str) else (list(metrics) if metrics is not None else None)
    if wanted is not None:
        unknown = [m for m in wanted if m not in set(frame["metric"])]
        if unknown:
            raise DataError(
                f"no readout measured {', '.join(repr(m) for m in unknown)}; metrics in the store: "
                f"{', '.join(sorted(set(frame['metric'])))}"
            )
        frame = frame[frame["metric"].isin(wanted)]
    reason = _excluded_reason(frame)
    excluded = frame.loc[reason.notna(), ["metric", "experiment", "slug", "variant", "verdict", "status"]].copy()
    excluded["reason"] = reason[reason.notna()]
    usable = frame[reason.isna()]
    if wanted is not None:
        order = wanted
    else:  # KPIs that are some experiment's primary metric first
        primary = usable["is_primary"].fillna(False).astype(bool)
        order = list(dict.fromkeys([*usable.loc[primary, "metric"], *usable["metric"], *excluded["metric"]]))
    summaries, per_experiment = [], []
    for metric in order:
        rows = usable[usable["metric"] == metric].reset_index(drop=True)
        s, e = _kpi(metric, rows, shipped, level, method, int((excluded["metric"] == metric).sum()))
        summaries.append(s)
        per_experiment.append(e)
    summary = pd.DataFrame(summaries, columns=_SUMMARY_COLUMNS)
    experiments = (
        pd.concat(per_experiment, ignore_index=True) if per_experiment else pd.DataFrame(columns=_EXPERIMENT_COLUMNS)
    )
    return Programme(summary, experiments, excluded.reset_index(drop=True), float(level), shipped)


def _good_sign(better) -> float:
    """+1 when higher is better, -1 when lower is better (NaN when unknown)."""
    return {"higher": 1.0, "lower": -1.0}.get(better, math.nan)


def _kpi(metric: str, rows: pd.DataFrame, shipped_labels, level: float, method: str, n_excluded: int):
    y = rows["rel_effect"].to_numpy(dtype=float)
    s = rows["rel_se"].to_numpy(dtype=float)
    shipped = rows["verdict"].astype(object).isin(shipped_labels).to_numpy(dtype=bool)
    n, n_ship = len(rows), int(shipped.sum())
    better = rows["better"].dropna().astype(str)
    out: dict[str, Any] = dict.fromkeys(_SUMMARY_COLUMNS, math.nan)
    out.update(
        metric=metric,
        better=better.iloc[0] if len(better) else None,
        experiments=n,
        shipped=n_ship,
        win_rate=n_ship / n if n else math.nan,
        excluded=n_excluded,
        note=None,
        impact_unit=None,
        currency=None,
        impact_experiments=0,
    )
    z = _z(level)
    a = shipped.astype(float)
    out["naive_total"] = float(a @ y)
    naive_sd = math.sqrt(float(a @ (s * s)))
    out["naive_lower"], out["naive_upper"] = out["naive_total"] - z * naive_sd, out["naive_total"] + z * naive_sd
    exp = pd.DataFrame(
        {
            "metric": metric,
            "experiment": rows["experiment"],
            "slug": rows["slug"],
            "variant": rows["variant"],
            "owner": rows["owner"],
            "verdict": rows["verdict"],
            "shipped": shipped,
            "is_primary": rows["is_primary"].fillna(False).astype(bool),
            "run_time": rows["run_time"],
            "estimate": y,
            "se": s,
            "lower": rows["rel_ci_lower"].astype(float),
            "upper": rows["rel_ci_upper"].astype(float),
        }
    )
    for c in ("shrunk", "shrunk_lower", "shrunk_upper", "shrinkage"):
        exp[c] = math.nan
    notes = []
    fit = None
    if n < MIN_EXPERIMENTS:
        notes.append(
            f"the winner's curse cannot be corrected with {n} experiment{'s' if n != 1 else ''} on "
            f"{metric}: it needs at least {MIN_EXPERIMENTS} (10 or more for a usefully precise "
            "correction)"
        )
    else:
        fit = _shrinkage.shrink(y, s, level=level, method=method)
        exp["shrunk"], exp["shrunk_lower"], exp["shrunk_upper"] = fit.shrunk, fit.shrunk_lower, fit.shrunk_upper
        exp["shrinkage"] = fit.shrinkage
        tot = fit.total(a)
        out.update(
            shrunk_total=tot["shrunk"],
            shrunk_lower=tot["shrunk_lower"],
            shrunk_upper=tot["shrunk_upper"],
            overstatement=_good_sign(out["better"]) * (out["naive_total"] - tot["shrunk"]),
            prior_mean=fit.prior.mean,
            prior_sd=fit.prior.tau,
            prior_sd_lower=fit.tau_lower,
            prior_sd_upper=fit.tau_upper,
        )
    _business(out, rows, shipped, y, s, fit, z, notes)
    out["note"] = "; ".join(notes) or None
    return out, exp[_EXPERIMENT_COLUMNS]


def _business(out: dict, rows: pd.DataFrame, shipped: np.ndarray, y, s, fit, z: float, notes: list) -> None:
    """The business columns of one KPI: shipped primary rows with an impact volume, in units (and money) a year."""
    vol = rows["impact_volume"].to_numpy(dtype=float)
    base = np.abs(rows["control_value"].to_numpy(dtype=float))  # rel_effect is relative to |control|
    has = shipped & rows["is_primary"].fillna(False).to_numpy(dtype=bool) & np.isfinite(vol) & np.isfinite(base)
    missing_base = int((shipped & np.isfinite(vol) & ~np.isfinite(base)).sum())
    if missing_base:
        notes.append(
            f"{missing_base} shipped experiment(s) declare an impact volume but have no baseline value "
            "(a rollout on the log scale): left out of the business total"
        )
    if not has.any():
        return
    units = set(rows.loc[has, "impact_unit"].dropna().astype(str))
    if len(units) != 1:
        notes.append(f"the shipped experiments count different units ({', '.join(sorted(units))}): no business total")
        return
    out["impact_unit"] = units.pop()
    out["impact_experiments"] = int(has.sum())
    weight = np.where(has, vol * base, 0.0)  # units a year per unit of relative lift
    _fill(out, "impact", weight, y, s, fit, z)
    value = rows["impact_value"].to_numpy(dtype=float)
    currencies = set(rows.loc[has, "impact_currency"].dropna().astype(str))
    if np.all(np.isfinite(value[has])) and len(currencies) <= 1:
        signs = np.array([money_sign(b) if b in ("higher", "lower") else math.nan for b in rows["better"]])
        money_weight = np.where(has, weight * value * signs, 0.0)
        if np.all(np.isfinite(money_weight)):
            out["currency"] = currencies.pop() if currencies else None
            _fill(out, "money", money_weight, y, s, fit, z)
    elif np.any(np.isfinite(value[has])):
        notes.append(
            "not every shipped experiment with an impact volume gives a value (or they use different "
            "currencies): no money total"
        )


def _fill(out: dict, prefix: str, weight: np.ndarray, y, s, fit, z: float) -> None:
    naive = float(weight @ y)
    sd = math.sqrt(float((weight * weight) @ (s * s)))
    out[f"{prefix}_naive"], out[f"{prefix}_naive_lower"], out[f"{prefix}_naive_upper"] = (
        naive,
        naive - z * sd,
        naive + z * sd,
    )
    if fit is not None:
        tot = fit.total(weight)
        out[f"{prefix}_shrunk"], out[f"{prefix}_shrunk_lower"], out[f"{prefix}_shrunk_upper"] = (
            tot["shrunk"],
            tot["shrunk_lower"],
            tot["shrunk_upper"],
        )


# --------------------------------------------------------------------------- words
def _text(value) -> str | None:
    """A summary cell as text, or None for a missing one (None or NaN)."""
    return value if isinstance(value, str) and value else None


def _pct_interval(mid: float, lo: float, hi: float, level: float) -> str:
    return f"{format_pct(mid)} ({level:.0%} CI {format_pct(lo)} to {format_pct(hi)})"


def programme_sentence(row, level: float = 0.95) -> str:
    """One KPI's programme result in words, from a :attr:`Programme.summary` row.

    E.g. "contact_rate: 4 of 12 experiments shipped (win rate 33%). Their
    measured lifts add up to -7.9% (95% CI -11.0% to -4.8%); corrected for
    the winner's curse, -5.1% (95% CI -8.3% to -2.0%). In business terms,
    corrected: about 18,000 fewer contacts a year (95% CI 6,000 to 30,000),
    saving about EUR 81,000 a year (95% CI EUR 27,000 to EUR 135,000)."
    """
    metric, n, n_ship = row["metric"], int(row["experiments"]), int(row["shipped"])
    if n == 0:
        left = int(row["excluded"]) if np.isfinite(row["excluded"]) else 0
        return f"{metric}: no readout with a usable estimate" + (
            f" ({left} left out: failed, Invalid, plans or no standard error)." if left else "."
        )
    head = f"{metric}: {n_ship} of {n} experiment{'s' if n != 1 else ''} shipped" + (
        f" (win rate {row['win_rate']:.0%})." if n else "."
    )
    if n_ship == 0:
        return head + " Nothing shipped, so nothing to add up."
    text = (
        f"{head} Their measured lifts add up to "
        f"{_pct_interval(row['naive_total'], row['naive_lower'], row['naive_upper'], level)}"
    )
    if np.isfinite(row["shrunk_total"]):
        text += (
            f"; corrected for the winner's curse, "
            f"{_pct_interval(row['shrunk_total'], row['shrunk_lower'], row['shrunk_upper'], level)}."
        )
    else:
        note = _text(row.get("note"))
        text += f". {note[:1].upper()}{note[1:]}." if note else "."
    if _text(row.get("impact_unit")):
        which = "shrunk" if np.isfinite(row["impact_shrunk"]) else "naive"
        money = {}
        if np.isfinite(row[f"money_{which}"]):
            money = {
                "money": row[f"money_{which}"],
                "money_lower": row[f"money_{which}_lower"],
                "money_upper": row[f"money_{which}_upper"],
                "currency": _text(row.get("currency")),
            }
        words = impact_sentence(
            row[f"impact_{which}"],
            row[f"impact_{which}_lower"],
            row[f"impact_{which}_upper"],
            unit=row["impact_unit"],
            level=level,
            better=row["better"] or "lower",
            **money,
        )
        label = "corrected" if which == "shrunk" else "as measured"
        of = int(row["impact_experiments"])
        scope = f" ({of} of the {n_ship} shipped declare a yearly volume)" if of < n_ship else ""
        text += f" In business terms, {label}{scope}: {words}."
    return text


# --------------------------------------------------------------------------- forest plot
def plot_forest(
    rows: pd.DataFrame, ax=None, *, level: float = 0.95, title: str | None = None, prior_mean: float | None = None
):
    """Forest plot: each experiment's relative lift as measured (grey, its readout's interval) and shrunk
    (blue, the posterior interval), one row per experiment; a dashed line at the portfolio's mean lift.

    ``rows``: :attr:`Programme.experiments` rows (``experiment``, ``variant``,
    ``estimate``, ``lower``, ``upper``, ``shrunk``, ``shrunk_lower``,
    ``shrunk_upper``). Returns the Axes.
    """
    import matplotlib.pyplot as plt

    from .plots import style_axes

    rows = rows.reset_index(drop=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.6 * max(len(rows), 1) + 1.6))
    if rows.empty:
        ax.text(0.5, 0.5, "no shipped experiments", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    ypos = np.arange(len(rows))[::-1].astype(float)
    several = rows.groupby("slug")["variant"].transform("nunique") > 1 if "slug" in rows else None
    labels = []
    grey, blue = "#8c959f", "#0969da"
    for i, r in rows.iterrows():
        yi = ypos[i]
        lo, hi = 100 * float(r["lower"]), 100 * float(r["upper"])
        if not (np.isfinite(lo) and np.isfinite(hi)):
            half = _z(level) * 100 * float(r["se"])
            lo, hi = 100 * float(r["estimate"]) - half, 100 * float(r["estimate"]) + half
        ax.plot(
            [lo, hi],
            [yi + 0.14] * 2,
            color=grey,
            lw=2.2,
            solid_capstyle="round",
            label="as measured" if i == 0 else None,
        )
        ax.plot([100 * r["estimate"]], [yi + 0.14], "o", color=grey, ms=6)
        if np.isfinite(r["shrunk"]):
            ax.plot(
                [100 * r["shrunk_lower"], 100 * r["shrunk_upper"]],
                [yi - 0.14] * 2,
                color=blue,
                lw=2.2,
                solid_capstyle="round",
                label="corrected for the winner's curse" if i == 0 else None,
            )
            ax.plot([100 * r["shrunk"]], [yi - 0.14], "D", color=blue, ms=6)
            ax.annotate(
                f"{100 * r['shrunk']:+.1f}%",
                (100 * r["shrunk"], yi - 0.14),
                textcoords="offset points",
                xytext=(0, -11),
                ha="center",
                fontsize=7,
                color=blue,
            )
        ax.annotate(
            f"{100 * r['estimate']:+.1f}%",
            (100 * r["estimate"], yi + 0.14),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=7,
            color=grey,
        )
        name = str(r["experiment"])
        if several is not None and bool(several.iloc[i]):
            name += f"\n{r['variant']}"
        labels.append(name)
    ax.axvline(0, color="black", lw=0.8)
    if prior_mean is not None and np.isfinite(prior_mean):
        ax.axvline(100 * prior_mean, color=blue, lw=0.8, ls="--", label="portfolio mean lift")
    ax.set_yticks(ypos)
    for text in ax.set_yticklabels(labels):
        text.set_parse_math(False)
    ax.set_ylim(-0.8, len(rows) - 0.2)
    ax.set_xlabel(f"relative lift (%), with {level:.0%} intervals", parse_math=False)
    head = f"{title}: " if title else ""
    corrected = bool(np.isfinite(rows["shrunk"].astype(float)).any())
    ax.set_title(
        f"{head}shipped experiments, as measured"
        + (" and corrected" if corrected else " (too few experiments to correct)"),
        loc="left",
        fontsize=11,
        parse_math=False,
    )
    ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.16 - 0.5 / max(len(rows), 1)), ncol=3, fontsize=8, frameon=False
    )
    style_axes(ax, "x")
    return ax
