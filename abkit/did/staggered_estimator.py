"""Staggered adoption: Callaway & Sant'Anna (2021) group-time effects from a unit x period panel."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ..stats.callaway_santanna import att_gt
from ..stats.drdid import TRIM_LEVEL
from .diagnostics import WILD_AUTO_CLUSTERS, few_treated_message, warn_few_treated
from .panel import (
    _as_list,
    _codes,
    _cohorts,
    _first_treated_per_unit,
    _prepare,
    _time_numeric,
    _trends,
    _unit_period_counts,
    _val,
)
from .staggered_results import StaggeredResult, _critical, _CsData, _two_sided_p


# --------------------------------------------------------------------------
# Staggered adoption: Callaway & Sant'Anna
# --------------------------------------------------------------------------
def staggered(
    data,
    outcome,
    unit: str,
    time: str,
    first_treated: str,
    control_group: str = "never_treated",
    method: str = "dr",
    covariates: Sequence[str] | None = None,
    *,
    base_period: str = "varying",
    anticipation: int = 0,
    weights: str | None = None,
    trim_level: float = TRIM_LEVEL,
    small_sample: bool | None = None,
    alpha: float = 0.05,
) -> StaggeredResult:
    """Callaway & Sant'Anna (2021) group-time average treatment effects ATT(g, t).

    ``first_treated``: the first treated period of each unit (constant within
    unit); missing = never treated, and 0 too when 0 is not a period of the
    panel (R did's convention); an ambiguous 0 or negative value is an error
    (:func:`abkit.did.panel.classify_first_treated`, the rule every DiD
    estimator and the rollout readout share). Units first treated after the
    last period count as never treated; units treated in or before the first
    period (no pre-period) are dropped and counted, as are units not observed
    in every period (the estimator needs a balanced panel), as in R ``did``.

    One row per unit and period: a repeated (unit, period) pair, a
    ``first_treated`` that varies within a unit, dates instead of period
    numbers, or a non-numeric outcome are errors naming the column and an
    offending value.

    ``control_group``: ``"never_treated"`` or ``"not_yet_treated"`` (without
    never-treated units, as R ``did``: the last cohort is only a comparison
    group and the periods from its launch on are dropped, see ``notes``);
    ``method``: ``"dr"`` (doubly robust, Sant'Anna & Zhao 2020), ``"ipw"`` or
    ``"reg"``; ``covariates``: pre-treatment covariates (the base-period
    values enter each cell's propensity score and outcome regression);
    ``base_period``: ``"varying"`` (pre-period cells compare consecutive
    periods) or ``"universal"`` (all cells against ``g - 1``).

    Reproduces R ``did::att_gt`` / ``aggte`` (analytic SEs) to machine
    precision on mpdta (and csdid on scenarios R's reference files lack).
    Use ``result.aggregate("simple" | "dynamic" | "group" | "calendar")``;
    with fewer than :data:`WILD_AUTO_CLUSTERS` units its CIs use ``t(G - 1)``
    (see :meth:`StaggeredResult.aggregate`). The pre-trend test,
    ``result.pretrend_test(leads=...)`` or
    ``result.aggregate("dynamic").pretrend(leads=...)`` (default 4 leads, as
    ``result.pretrend`` and the summary), is the
    joint test of the pre-launch event-time effects within ``leads`` periods
    of launch, Hotelling ``F(q, G - q)``, with a jackknife covariance when
    units are few (see :meth:`StaggeredResult.pretrend_test`; ``q >= G`` is
    refused). ``base_period="universal"`` measures every event time against
    ``g - 1`` (pre and post effects are then comparable on one plot; Roth
    2024): the reference ``e = -1`` is 0 by construction and has no band.
    Calibration (95% CI coverage, variance of the
    estimates) is checked by simulation in ``tests/test_did_calibration.py``.

    ``weights``: a column of unit weights (constant within each unit; R
    ``did``'s ``weightsname``): each cell's means, propensity score and
    outcome regression are weighted, and so are the cohort shares of the
    aggregations; checked against csdid with ``weights_name`` on mpdta.
    Ratio outcomes (``outcome=(num, den)``) are analysed as the unit-period
    ratio with equal unit weights unless ``weights`` is given (weights that
    vary over time are an error). ``trim_level``: propensity-score trimming of
    the ``ipw`` and ``dr`` cells as DRDID (comparison units with a score at or
    above it get weight zero; 1 = none); ``att_gt["n_trimmed"]`` counts them.
    ``small_sample``: CIs and p-values of the ATT(g, t) cells use ``t(G - 1)``
    (default: with fewer than :data:`WILD_AUTO_CLUSTERS` units, as the
    aggregations; ``att_gt["df"]`` says which, ``inf`` = normal).
    """
    if control_group not in ("never_treated", "not_yet_treated"):
        raise DataError(f"control_group must be 'never_treated' or 'not_yet_treated'; got {control_group!r}")
    if method not in ("dr", "ipw", "reg"):
        raise DataError(f"method must be 'dr', 'ipw' or 'reg'; got {method!r}")
    if base_period not in ("varying", "universal"):
        raise DataError(f"base_period must be 'varying' or 'universal'; got {base_period!r}")
    if isinstance(anticipation, bool) or not isinstance(anticipation, (int, np.integer)) or anticipation < 0:
        raise DataError(f"anticipation must be a non-negative whole number of periods; got {anticipation!r}")
    covariates = _as_list(covariates)
    if weights is not None and not isinstance(weights, str):
        raise DataError(f"weights must be the name of a column of unit weights; got {weights!r}")
    fr = _prepare(data, outcome, covariates, [unit, time], weights, extra=[first_treated])
    ft = fr.extra[first_treated]
    ucode, ulab = _codes(fr.keys[unit])
    tcode, tlab = _codes(fr.keys[time])
    periods = _time_numeric(tlab, time)
    n_units, T = ulab.size, tlab.size
    G = _first_treated_per_unit(ucode, n_units, ft, first_treated, ulab, unit, periods=periods, time=time)
    G = np.where(G > periods[-1], np.inf, G)  # inf = never treated
    dropped = dict(fr.dropped)
    counts = _unit_period_counts(ucode, tcode, n_units, T, unit, time, ulab, tlab, error=True)
    row_w = fr.w if weights else None  # the weights column (fr.w holds a ratio's denominator otherwise)
    unit_w = (
        _unit_weights(row_w, ucode, n_units, weights, unit, ulab) if row_w is not None and weights else np.ones(n_units)
    )
    complete = counts.all(axis=1)
    always = np.isfinite(G) & (G <= periods[0] + anticipation)
    keep_units = complete & ~always
    if (~complete).any():
        dropped["units not observed in every period"] = int((~complete).sum())
    if (always & complete).any():
        dropped["units treated in the first period"] = int((always & complete).sum())
    if keep_units.sum() < 2:
        raise DataError(
            f"fewer than 2 units are left after dropping incomplete and always-treated units "
            f"({dropped}); staggered() needs a balanced panel of '{unit}' x '{time}'"
        )
    Y = np.full((n_units, T), np.nan)
    Y[ucode, tcode] = fr.y
    Xc = None
    if covariates:
        Xc = np.full((n_units, T, len(covariates)), np.nan)
        for j, c in enumerate(covariates):
            Xc[ucode, tcode, j] = fr.cols[c]
        Xc = Xc[keep_units]
    Y, Gk, Wk = Y[keep_units], G[keep_units], unit_w[keep_units]
    notes: list[str] = []
    est_periods = periods
    if np.all(np.isfinite(Gk)):
        if control_group == "never_treated":
            raise DataError(
                f"no never-treated units (every unit has a '{first_treated}' within the data): use "
                "control_group='not_yet_treated'"
            )
        # as R did: without never-treated units the last cohort is the comparison group, and the periods
        # from its launch (less anticipation) on, which have no comparison units, are dropped
        last = float(Gk.max())
        in_window = periods < last - anticipation
        if not np.any(periods + anticipation < Gk[Gk < last].min(initial=np.inf)):
            raise DataError(
                f"no never-treated units, and no cohort launched before the last one ({last:g}) has a "
                "pre-launch period: nothing can be estimated"
            )
        dropped[
            f"periods from {last - anticipation:g} on (no never-treated units: the last cohort, "
            f"launched {last:g}, is the comparison)"
        ] = int(keep_units.sum() * (~in_window).sum())
        notes.append(
            f"No never-treated units: as R did, the last launch cohort ({last:g}) serves only as a "
            f"not-yet-treated comparison, and periods from {last - anticipation:g} on are not used."
        )
        Y = Y[:, in_window]
        if Xc is not None:
            Xc = Xc[:, in_window]
        est_periods = periods[in_window]
        Gk = np.where(Gk == last, np.inf, Gk)
    cells = att_gt(
        Y,
        est_periods,
        Gk,
        Xc,
        control_group=control_group,
        method=method,
        base_period=base_period,
        anticipation=anticipation,
        weights=Wk if weights else None,
        trim_level=trim_level,
    )
    n_kept = int(keep_units.sum())
    if small_sample is None:
        small_sample = n_kept < WILD_AUTO_CLUSTERS
    df = float(n_kept - 1) if small_sample and n_kept > 1 else math.inf
    q = _critical(alpha, df)
    n_treated, n_never = int(np.isfinite(Gk).sum()), int(np.isinf(Gk).sum())
    few_msg = few_treated_message(n_treated, n_never, treated="launched", untreated="never-treated", clusters="units")
    warn_few_treated(few_msg)
    if few_msg:
        notes.append(few_msg.replace("abkit.did.randomization_test", "result.randomization_test()"))
    n_trimmed = cells.n_trimmed
    trimmed = int(n_trimmed.sum()) if n_trimmed is not None else 0
    if n_trimmed is not None and trimmed:
        n_cells = int(np.count_nonzero(n_trimmed))
        notes.append(
            f"Propensity-score trimming (as DRDID): {trimmed} comparison unit-cells with a score of "
            f"{trim_level:g} or more got weight zero, in {n_cells} of {cells.att.size} ATT(g,t) cells "
            "(att_gt['n_trimmed']); those units look almost exactly like the launched ones."
        )

    def whole(a):
        return a.astype(np.int64) if np.all(a == np.round(a)) else a

    tab = pd.DataFrame(
        {
            "group": whole(cells.group),
            "time": whole(cells.time),
            "att": cells.att,
            "se": cells.se,
            "ci_lower": cells.att - q * cells.se,
            "ci_upper": cells.att + q * cells.se,
            "p_value": _two_sided_p(cells.att / cells.se, df),
            "df": df,
            "base_period": whole(cells.base),
            "post": cells.time >= cells.group,
            "n_treated": cells.n_treated,
            "n_control": cells.n_control,
            "n_trimmed": cells.n_trimmed,
        }
    )
    in_panel = keep_units[ucode]
    trends = _trends(
        fr.y[in_panel],
        row_w[in_panel] if row_w is not None else None,
        *_cohorts(G, ucode[in_panel]),
        periods[tcode[in_panel]],
    )
    data = _CsData(
        Y=Y,
        periods=est_periods,
        G=Gk,
        X=Xc,
        control_group=control_group,
        method=method,
        base_period=base_period,
        anticipation=anticipation,
        weights=Wk if weights else None,
        trim_level=trim_level,
    )
    return StaggeredResult(
        outcome=fr.outcome_name,
        method=method,
        control_group=control_group,
        base_period=base_period,
        att_gt=tab,
        alpha=alpha,
        n_units=n_kept,
        n_periods=int(est_periods.size),
        cells=cells,
        trends=trends,
        dropped=dropped,
        notes=tuple(notes),
        data=data,
        df=df,
        weights=weights,
        n_treated_clusters=n_treated,
        n_untreated_clusters=n_never,
        few_treated_clusters=few_msg is not None,
    )


def _unit_weights(w: np.ndarray, ucode: np.ndarray, n_units: int, col: str, unit: str, ulab) -> np.ndarray:
    """One weight per unit from the rows of the weights column; it must not vary within a unit."""
    lo = np.full(n_units, np.inf)
    hi = np.full(n_units, -np.inf)
    np.minimum.at(lo, ucode, w)
    np.maximum.at(hi, ucode, w)
    varies = np.isfinite(lo) & (hi - lo > 1e-12 * np.maximum(np.abs(hi), 1.0))
    if varies.any():
        i = int(np.argmax(varies))
        raise DataError(
            f"weights column '{col}' must be constant within each unit (unit weights, as R did's "
            f"weightsname); {int(varies.sum())} unit(s) have several values, e.g. {unit}="
            f"{_val(ulab[i])} has {lo[i]:g} and {hi[i]:g}. Use one weight per unit (e.g. its "
            "pre-launch size)"
        )
    return np.where(np.isfinite(lo), lo, 1.0)
