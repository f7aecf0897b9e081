"""Quantile effects (p50 / p90 time to refund): the analysis that needs values, not moments.

* :func:`quantile_effect` -- effect of every treatment arm on one or several
  quantiles of a column, with the cluster-aware delta method of Deng,
  Knoblich and Lu (2018) or a seeded bootstrap over units; works when the
  rows are refunds and randomization is by buyer (``unit="buyer_id"``).
* :func:`quantile_rows` -- the result rows of one :class:`abkit.Quantile`
  metric; :func:`abkit.analyze` calls it for Quantile metrics.

Both read only the columns they need with :func:`abkit.sources.read_columns`.
The estimators are in :mod:`abkit.stats.quantile_inference` (formulas
there). (``resolve_caps``, the winsorizing caps of ``Mean(...,
winsorize=q)``, lives in :mod:`abkit.aggregation` and is re-exported here.)

    >>> import abkit
    >>> refunds = ...  # one row per refund: buyer_id, variant, hours
    >>> abkit.quantile_effect(refunds, "hours", [0.5, 0.9], unit="buyer_id")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import cast

import numpy as np
import pandas as pd

from .aggregation import resolve_caps
from .errors import AbkitError, DataError
from .metrics import Quantile
from .results import ExperimentResult
from .sources import read_columns
from .stats.checks import normalise_allocation, srm_test
from .stats.confidence_sequences import FIELLER_PIECES
from .stats.quantile_inference import difference, quantile_bootstrap, quantile_delta

__all__ = ["arms_present", "quantile_effect", "quantile_rows", "resolve_caps", "unit_srm"]


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    s = frame[column]
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    converted = pd.to_numeric(s, errors="coerce")
    bad = s[converted.isna() & s.notna()]
    if len(bad):
        raise DataError(
            f"column '{column}' is not numeric (dtype {s.dtype}; e.g. value {bad.iloc[0]!r} in "
            f"{len(bad):,} rows); convert it to numbers before analysis"
        )
    return converted.to_numpy(dtype=np.float64, na_value=np.nan)


def _arm_labels(frame: pd.DataFrame, variant: str) -> np.ndarray:
    s = frame[variant]
    return np.asarray(s.astype(object).where(s.notna(), None))


def quantile_rows(
    frame: pd.DataFrame,
    metric: Quantile,
    variant: str,
    control: Hashable,
    treatments: Sequence[Hashable],
    alpha: float = 0.05,
) -> list[dict]:
    """Result rows (the columns of :func:`abkit.analyze`) of one Quantile metric.

    ``frame`` holds the variant column, the metric's column and its unit
    column. Rows without a variant are ignored; rows with a missing value
    are dropped and counted when ``metric.dropna``, else an error.
    """
    column, unit = metric.column, metric.unit
    values = _numeric(frame, column)
    arms = _arm_labels(frame, variant)
    has_arm = np.array([a is not None for a in arms], dtype=bool)
    bad = has_arm & ~np.isfinite(values)
    if bad.any() and not metric.dropna:
        raise DataError(
            f"column '{column}' has {int(bad.sum()):,} missing or infinite values out of {int(has_arm.sum()):,} "
            f"rows (used by metric '{metric.name}'); fill or remove them, or declare the metric with "
            "dropna=True to drop those rows (they are counted and reported)"
        )
    clusters = None
    if unit is not None:
        clusters = frame[unit].to_numpy()
        if pd.isna(frame[unit]).any():
            raise DataError(
                f"column '{unit}' (the unit of metric '{metric.name}') has missing values; "
                "every row needs its randomization unit"
            )
        pairs = pd.DataFrame({"u": frame[unit].to_numpy()[has_arm], "a": arms[has_arm]}).drop_duplicates()
        twice = pairs["u"].duplicated(keep=False)
        if twice.any():
            example = pairs.loc[twice, "u"].iloc[0]
            example = example.item() if hasattr(example, "item") else example
            raise DataError(
                f"unit {example!r} of column '{unit}' appears in several arms "
                f"({sorted(map(str, pairs.loc[pairs.u == example, 'a']))}); randomization must be by "
                f"'{unit}': check unit= and the variant column"
            )
    keep = has_arm & np.isfinite(values)
    estimates, dropped = {}, {}
    method = metric.option("quantile_method")
    seeds = np.random.SeedSequence(metric.option("seed")).spawn(1 + len(treatments))
    for i, arm in enumerate((control, *treatments)):
        in_arm = arms == arm
        dropped[arm] = int((in_arm & bad).sum())  # rows (= units when every row is a unit)
        sel = in_arm & keep
        if sel.sum() < 2:
            raise DataError(
                f"arm {arm!r} has {int(sel.sum())} row(s) with data for metric '{metric.name}'; at least 2 are needed"
            )
        cl = clusters[sel] if clusters is not None else None
        try:
            if method == "bootstrap":
                estimates[arm], _ = quantile_bootstrap(
                    values[sel], metric.q, cl, alpha, metric.option("n_boot"), seed=seeds[i]
                )
            else:
                estimates[arm] = quantile_delta(values[sel], metric.q, cl, alpha)
        except DataError as exc:
            raise DataError(f"metric '{metric.name}' (column '{column}'), arm {arm!r}: {exc}") from None
    rows = []
    c = estimates[control]
    for arm in treatments:
        t = estimates[arm]
        d = difference(t, c, alpha)
        rows.append(
            {
                "metric": metric.name,
                "variant": arm,
                "control_value": c.value,
                "treatment_value": t.value,
                "effect": d["effect"],
                "ci_lower": d["ci_lower"],
                "ci_upper": d["ci_upper"],
                "rel_effect": d["rel_effect"],
                "rel_ci_lower": d["rel_ci_lower"],
                "rel_ci_upper": d["rel_ci_upper"],
                "p_value": d["p_value"],
                "n_control": c.n_units,
                "n_treatment": t.n_units,
                "method": metric.method_label,
                "se": d["se"],
                "rel_se": d["rel_se"],
                "df": np.inf,
                "variance_reduction": np.nan,
                "dropped_control": dropped[control],
                "dropped_treatment": dropped[arm],
                "better": metric.better,
                # Var(control value), Cov(effect, control value) for the always-valid Fieller interval (independent
                # arms: -Var(control)); abkit.analyze uses it, then drops it (a private key)
                FIELLER_PIECES: (c.se**2, -(c.se**2)),
            }
        )
    return rows


def quantile_effect(
    data,
    column: str,
    q: float | Sequence[float] = 0.5,
    *,
    variant: str = "variant",
    control: Hashable = "control",
    unit: str | None = None,
    alpha: float = 0.05,
    method: str = "delta",
    n_boot: int = 2000,
    seed: int | None = 0,
    name: str | None = None,
    better: str = "higher",
    dropna: bool = True,
    allocation: Mapping | Sequence[float] | None = None,
) -> ExperimentResult:
    """Effect of every treatment arm on quantile(s) ``q`` of ``column``.

    Parameters
    ----------
    data : DataFrame, pyarrow Table or parquet/CSV path; one row per value
        (e.g. per refund).
    column : the values, e.g. ``"hours_to_refund"``.
    q : a level or a list of levels, e.g. ``[0.5, 0.9]``.
    unit : the randomization unit of each row (e.g. ``"buyer_id"``) when the
        rows are not the units; ``None``: every row is a unit.
    method : ``"delta"`` (cluster-aware order-statistic delta method, Deng
        et al. 2018) or ``"bootstrap"`` (``n_boot`` resamples of units per
        arm, reproducible with ``seed``).
    name : metric name (default ``"<column> p<100 q>"``, suffixed by the level
        when several are given).
    dropna : drop (and count) rows with a missing value (default True: e.g.
        buyers without a refund have no time to refund).
    allocation : planned share per arm, for the sample-ratio check on units.

    Returns
    -------
    :class:`abkit.ExperimentResult` with one row per quantile x treatment
    arm: ``control_value``/``treatment_value`` are the arms' quantiles,
    ``effect`` their difference, ``rel_effect`` their ratio minus one, with
    normal CIs from the standard errors, ``n_*`` the units with data.
    """
    # np.isscalar is no type guard: the casts say what each branch holds
    levels = [cast(float, q)] if np.isscalar(q) else list(cast(Sequence[float], q))
    if not levels:
        raise AbkitError("q is empty; give a level such as 0.5 or a list such as [0.5, 0.9]")
    if not (0.0 < float(alpha) < 0.5):
        raise AbkitError(f"alpha={alpha!r} must be between 0 and 0.5 (e.g. 0.05)")
    metrics = []
    for level in levels:
        label = None if name is None else (name if len(levels) == 1 else f"{name} p{float(level) * 100:g}")
        metrics.append(
            Quantile(
                column, level, label, unit=unit, better=better, dropna=dropna, method=method, n_boot=n_boot, seed=seed
            )
        )
    cols = list(dict.fromkeys([variant, column] + ([unit] if unit else [])))
    frame = read_columns(data, cols)
    arms = arms_present(frame, variant, control)
    treatments = arms[1:]
    rows = [
        {k: v for k, v in r.items() if k != FIELLER_PIECES}
        for m in metrics
        for r in quantile_rows(frame, m, variant, control, treatments, alpha)
    ]
    return ExperimentResult(
        rows=tuple(rows),
        metrics=tuple(metrics),
        arms=tuple(arms),
        control=control,
        alpha=float(alpha),
        correction=None,
        srm=unit_srm(frame, variant, arms, unit, allocation),
        missing_variant=int(frame[variant].isna().sum()),
        variant=variant,
    )


def arms_present(frame: pd.DataFrame, variant: str, control: Hashable) -> list:
    """The arms in ``frame[variant]``, control first; a clear error without the control or a second arm."""
    present = list(pd.unique(frame[variant].dropna()))
    if control not in present:
        raise DataError(
            f"control arm {control!r} not found in column '{variant}'; arms present: {present}. "
            "Pass control= with one of them"
        )
    if len(present) < 2:
        raise DataError(
            f"only one arm ({present[0]!r}) in column '{variant}'; an experiment needs at least a "
            "control and a treatment"
        )
    return [control] + [a for a in present if a != control]


def unit_srm(frame: pd.DataFrame, variant: str, arms: Sequence, unit: str | None, allocation):
    """Sample-ratio check on the units per arm (distinct ``unit`` values, or rows)."""
    if unit is None:
        counts = frame[variant].value_counts()
    else:
        counts = frame[[variant, unit]].dropna().drop_duplicates()[variant].value_counts()
    if allocation is not None and not isinstance(allocation, Mapping):
        allocation = dict(zip(arms, normalise_allocation(arms, allocation)))
    return srm_test({a: int(counts.get(a, 0)) for a in arms}, allocation)
