"""``abkit.sequential``: look at an experiment every day without inflating false positives.

Two tools (formulas and references in :mod:`abkit.stats.confidence_sequences`
and :mod:`abkit.stats.group_sequential`):

* **Always-valid inference** for continuous monitoring: the normal-mixture
  confidence sequence / mixture SPRT (Robbins 1970; Johari et al. 2017;
  Howard et al. 2021; Waudby-Smith et al. 2024) on any abkit estimator
  (Mean, Proportion, Ratio, NPS, with CUPED or Lin), the mixture fixed in
  advance by the planned size (:class:`AlwaysValid`). ``abkit.analyze(...,
  sequential=AlwaysValid(planned_n=...))`` turns every CI and p-value of a
  result into always-valid ones; :func:`monitor` computes the whole path from daily moments: the
  estimate, its always-valid interval, the naive interval, and whether
  stopping was allowed, day by day.
* **Group-sequential boundaries** for a planned number of looks:
  :func:`group_sequential_bounds` (Lan-DeMets alpha spending, O'Brien-Fleming
  or Pocock type).

    >>> import abkit
    >>> from abkit import sequential
    >>> sequential.group_sequential_bounds(5).z.round(4)
    array([4.8769, 3.357 , 2.6803, 2.2898, 2.031 ])
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._html import Html, frame_table, html_table
from .aggregation import check_metrics, moments, resolve_caps
from .analysis import analyze
from .errors import AbkitError, DataError
from .metrics import Metric
from .moments import MomentSet
from .stats.confidence_sequences import AlwaysValid, always_valid_rows
from .stats.distributions import norm_sf
from .stats.group_sequential import crossing_probabilities, group_sequential_z

__all__ = [
    "AlwaysValid",
    "GroupSequentialBounds",
    "SequentialPath",
    "always_valid_rows",
    "group_sequential_bounds",
    "monitor",
]
# AlwaysValid and always_valid_rows live in abkit.stats.confidence_sequences (below abkit.analyze, which
# uses them) and are re-exported here, where analysts look for them.


# --------------------------------------------------------------------------- group sequential
@dataclass(frozen=True)
class GroupSequentialBounds:
    """Two-sided symmetric group-sequential boundaries: stop at look k if ``|Z_k| >= z[k]``.

    ``np.asarray(bounds)`` and indexing give the z boundaries.
    """

    z: np.ndarray
    information_fractions: np.ndarray
    alpha: float
    spending: str
    alpha_spent: np.ndarray  # cumulative two-sided alpha through each look

    @property
    def nominal_p(self) -> np.ndarray:
        """Two-sided nominal p-value thresholds per look, ``2 Phi(-z)``."""
        return 2.0 * norm_sf(self.z)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.z, dtype=dtype)

    def __len__(self) -> int:
        return len(self.z)

    def __getitem__(self, k):
        return self.z[k]

    def __iter__(self):
        return iter(self.z)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "look": np.arange(1, len(self.z) + 1),
                "information_fraction": self.information_fractions,
                "z_boundary": self.z,
                "nominal_p": self.nominal_p,
                "alpha_spent": self.alpha_spent,
            }
        )

    def power(self, drift: float) -> float:
        """Probability of crossing at some look when ``E[Z at full information] = drift``."""
        return float(crossing_probabilities(self.z, self.information_fractions, drift).sum())

    def first_crossing(self, z_observed: Sequence[float]) -> int | None:
        """1-based look at which ``|z|`` first reaches its boundary, or None."""
        z_obs = np.abs(np.asarray(z_observed, dtype=np.float64))
        k = min(len(z_obs), len(self.z))
        hit = np.nonzero(z_obs[:k] >= self.z[:k])[0]
        return int(hit[0]) + 1 if hit.size else None

    def _repr_html_(self) -> str:
        return frame_table(self.to_frame(), lambda _, v: f"{v:.4g}" if isinstance(v, float) else str(v))


def group_sequential_bounds(
    n_looks: int,
    alpha: float = 0.05,
    spending: str = "obrien_fleming",
    information_fractions: Sequence[float] | None = None,
) -> GroupSequentialBounds:
    """Lan-DeMets alpha-spending boundaries for ``n_looks`` planned looks (two-sided).

    Parameters
    ----------
    n_looks : number of planned analyses, the last one final.
    alpha : two-sided significance level; ``alpha/2`` is spent per side.
    spending : ``"obrien_fleming"`` (conservative early, close to the fixed
        1.96 at the end) or ``"pocock"`` (about equal boundaries).
    information_fractions : share of the final information (units, for
        means; variance ratio in general) at each look; default equally
        spaced ``k / n_looks``.

    Returns
    -------
    :class:`GroupSequentialBounds` (``.z``, ``.to_frame()``, ``.power(drift)``,
    ``.first_crossing(z_values)``). For 5 equal looks at alpha 0.05:
    O'Brien-Fleming 4.8769, 3.3570, 2.6803, 2.2898, 2.0310; Pocock 2.4380,
    2.4268, 2.4102, 2.3966, 2.3860 (as R gsDesign / ldbounds).
    """
    if isinstance(n_looks, bool) or int(n_looks) != n_looks or n_looks < 1:
        raise AbkitError(f"n_looks={n_looks!r} must be a positive whole number of planned looks")
    n_looks = int(n_looks)
    t = (
        np.arange(1, n_looks + 1) / n_looks
        if information_fractions is None
        else np.asarray(information_fractions, dtype=np.float64)
    )
    if t.shape != (n_looks,):
        raise AbkitError(f"{t.size} information fractions for n_looks={n_looks}; give one per look")
    z, spent = group_sequential_z(t, alpha, spending)
    return GroupSequentialBounds(z=z, information_fractions=t, alpha=float(alpha), spending=spending, alpha_spent=spent)


# --------------------------------------------------------------------------- monitoring
_PATH_COLUMNS = [
    "day",
    "metric",
    "variant",
    "n_control",
    "n_treatment",
    "effect",
    "ci_lower",
    "ci_upper",
    "rel_effect",
    "rel_ci_lower",
    "rel_ci_upper",
    "p_value",
    "p_value_running",
    "stop_allowed",
    "ci_lower_fixed",
    "ci_upper_fixed",
    "rel_ci_lower_fixed",
    "rel_ci_upper_fixed",
    "p_value_fixed",
    "se",
    "tau",
    "method",
]


@dataclass(frozen=True)
class SequentialPath:
    """The day-by-day path of every metric x arm: estimate, always-valid and naive intervals.

    Columns of :meth:`to_frame`: ``day, metric, variant, n_control,
    n_treatment, effect, ci_lower, ci_upper`` (always valid), ``rel_effect,
    rel_ci_lower, rel_ci_upper`` (always valid), ``p_value`` (always valid,
    at that look), ``p_value_running`` (its running minimum, the always-valid
    p-value of Johari et al. 2017), ``stop_allowed`` (the always-valid test
    has rejected by that day: stopping and declaring the effect keeps the
    false-positive rate at alpha), the naive fixed-horizon
    ``ci_lower_fixed, ci_upper_fixed, rel_ci_*_fixed, p_value_fixed`` (valid
    only for one pre-planned look), ``se``, ``tau``, ``method``.
    """

    frame: pd.DataFrame
    alpha: float
    control: Hashable
    planned_n: float | None  # None when the mixture was set by tau instead
    metrics: tuple
    note: str = ""
    skipped: tuple = field(default=())

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    def stopping(self) -> pd.DataFrame:
        """Per metric x arm: the first day stopping was allowed (NaN if never) and the last look."""
        out = []
        for (metric, variant), g in self.frame.groupby(["metric", "variant"], sort=False):
            allowed = g[g.stop_allowed]
            naive = g[g.p_value_fixed < self.alpha]
            first = allowed.iloc[0] if len(allowed) else None
            last = g.iloc[-1]
            out.append(
                {
                    "metric": metric,
                    "variant": variant,
                    "first_stop_day": first["day"] if first is not None else None,
                    "effect_at_stop": first["effect"] if first is not None else np.nan,
                    "first_naive_significant_day": naive.iloc[0]["day"] if len(naive) else None,
                    "last_day": last["day"],
                    "effect": last["effect"],
                    "ci_lower": last["ci_lower"],
                    "ci_upper": last["ci_upper"],
                    "p_value_running": last["p_value_running"],
                    "stop_allowed": bool(last["stop_allowed"]),
                }
            )
        return pd.DataFrame(out)

    def summary(self) -> str:
        lines = [self.note]
        for r in self.stopping().itertuples():
            if r.stop_allowed:
                lines.append(
                    f"  {r.metric} [{r.variant}]: stopping allowed since {r.first_stop_day} "
                    f"(always-valid p {r.p_value_running:.3g})"
                )
            else:
                lines.append(f"  {r.metric} [{r.variant}]: keep running; always-valid p {r.p_value_running:.3g}")
        return "\n".join(lines)

    __str__ = summary

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        head = [
            "Metric",
            "Arm",
            "Last look",
            "Effect",
            f"Always-valid {1 - self.alpha:.0%} CI",
            "Always-valid p",
            "Stopping allowed",
            "Since",
            "Naive test first significant",
        ]
        rows = [
            [
                r.metric,
                r.variant,
                r.last_day,
                f"{r.effect:.4g}",
                f"[{r.ci_lower:.4g}, {r.ci_upper:.4g}]",
                f"{r.p_value_running:.3g}",
                "yes" if r.stop_allowed else "no",
                r.first_stop_day or Html("&ndash;"),
                r.first_naive_significant_day or "never",
            ]
            for r in self.stopping().itertuples()
        ]
        return html_table(head, rows, caption=self.note)

    def plot(self, metric: str | None = None, variant: Hashable | None = None, relative: bool = False, ax=None):
        """Estimate over time with its always-valid band (shaded) and the naive CI (dashed)."""
        from .plots import plot_sequential_path

        return plot_sequential_path(self, metric=metric, variant=variant, relative=relative, ax=ax)


def _daily_sets(data, metrics, variant, by, labels) -> tuple[list, list[MomentSet]]:
    if isinstance(data, MomentSet):
        if not data.by:
            raise AbkitError(
                "these moments are not split by day; aggregate with "
                "abkit.moments(data, metrics, by='<date column>') or pass a list of daily moments"
            )
        days = sorted(data.segments, key=lambda v: (v is None, v))
        return days, [data.segment(d) for d in days]
    if isinstance(data, Mapping):
        days = sorted(data)
        return days, [data[d] for d in days]
    if isinstance(data, (list, tuple)):
        if not data or not all(isinstance(m, MomentSet) for m in data):
            raise AbkitError(
                "monitor() needs a list of abkit.MomentSet (one per day), a MomentSet aggregated "
                "by a date column, or data with by='<date column>'"
            )
        days = list(labels) if labels is not None else list(range(1, len(data) + 1))
        if len(days) != len(data):
            raise AbkitError(f"{len(days)} labels for {len(data)} daily moment sets; give one label per day")
        return days, list(data)
    if by is None:
        raise AbkitError("pass by='<date column>' to monitor raw data day by day")
    metrics = resolve_caps(data, metrics)
    return _daily_sets(moments(data, metrics, variant=variant, by=by), metrics, variant, by, labels)


def _ready(ms: MomentSet, metric: Metric, arms: Sequence) -> bool:
    """Every arm has at least 2 units with data for ``metric`` in ``ms``."""
    try:
        block = ms.block_for(metric.columns, metric.dropna)
    except AbkitError:
        return False
    pos = {g: i for i, g in enumerate(block.groups)}
    return all(a in pos and block.n[pos[a]] >= 2 for a in arms)


def monitor(
    moments_by_day,
    metrics: Sequence[Metric] | Metric,
    *,
    control: Hashable = "control",
    alpha: float = 0.05,
    planned_n: float | None = None,
    tau: float | Mapping | None = None,
    cumulative: bool = False,
    variant: str = "variant",
    by: str | None = None,
    labels: Sequence | None = None,
) -> SequentialPath:
    """The sequential path of every metric: always-valid intervals day by day.

    Parameters
    ----------
    moments_by_day : daily :class:`abkit.MomentSet` s as a list (days
        ``1..D`` or ``labels``) or a mapping day -> MomentSet; or one
        MomentSet aggregated with ``by="<date column>"``; or raw data
        (DataFrame, table, path) with ``by="<date column>"``.
    metrics : moment-based metrics (Mean, Proportion, Ratio, NPS; with CUPED
        or Lin). Quantiles need values and are not supported here.
    cumulative : ``False`` (default): each day's moments hold that day's new
        units, and are added up; ``True``: each day is already a cumulative
        snapshot (all units to date, with their outcomes to date).
    planned_n : units (all arms) at the planned end, to tune the mixture
        (:class:`AlwaysValid`), fixed before the data are seen. Required
        (or ``tau``): a mixture tuned to the units of the latest look would
        move as days are added, and the path would lose its guarantee.
    tau : mixing sd on the effect scale instead of ``planned_n``.

    Returns
    -------
    :class:`SequentialPath`: ``.to_frame()``, ``.stopping()``, ``.plot()``.
    Days on which an arm has fewer than 2 units for a metric are skipped.
    """
    metrics = check_metrics(metrics)
    if any(m.kind == "quantile" for m in metrics):
        raise AbkitError(
            "monitor() works from moments; quantile metrics need the values: analyse them "
            "with abkit.analyze(data, ..., sequential=AlwaysValid(planned_n=...)) at each look"
        )
    if any(m.kind == "time_to_event" for m in metrics):
        raise AbkitError(
            "monitor() works from moments; time-to-event metrics need event counts by time: analyse "
            "them with abkit.analyze(data, ..., sequential=AlwaysValid(planned_n=...)) at each look"
        )
    if planned_n is None and tau is None:
        raise AbkitError(
            "monitor() needs planned_n= (the units planned in all arms at the end, fixed before the "
            "data are seen; abkit.power.plan(..., sequential=True) gives it) or tau= (the mixing sd "
            "on the effect scale): a mixture tuned to the units of the latest look would move as days "
            "are added, and the always-valid path would lose its guarantee"
        )
    design = AlwaysValid(planned_n=planned_n, tau=tau)
    days, daily = _daily_sets(moments_by_day, metrics, variant, by, labels)
    if not cumulative:
        acc, snapshots = None, []
        for ms in daily:
            acc = ms if acc is None else acc + ms
            snapshots.append(acc)
        daily = snapshots
    rows, skipped = [], []
    for day, ms in zip(days, daily):
        arms = list(ms.rows)
        if control not in ms.rows or len(arms) < 2:
            skipped.append(day)
            continue
        ready = [m for m in metrics if _ready(ms, m, arms)]
        if len(ready) < len(metrics):
            skipped.append(day)
        if not ready:
            continue
        res = analyze(ms, ready, control=control, alpha=alpha, sequential=design)
        rows += [{"day": day, **r} for r in res.rows]
    if not rows:
        raise DataError("no day has at least 2 units per arm for any metric; nothing to monitor")
    frame = pd.DataFrame(rows)
    frame["p_value_running"] = frame.groupby(["metric", "variant"], sort=False)["p_value"].cummin()
    frame["stop_allowed"] = frame["p_value_running"] <= alpha
    extra = [c for c in frame.columns if c not in _PATH_COLUMNS]
    frame = frame[[c for c in _PATH_COLUMNS if c in frame.columns] + extra]
    note = design.describe(alpha)
    return SequentialPath(
        frame=frame,
        alpha=float(alpha),
        control=control,
        planned_n=design.planned_n,
        metrics=tuple(metrics),
        note=note,
        skipped=tuple(skipped),
    )
