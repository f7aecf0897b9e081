"""The regression DiD estimators: 2x2, two-way fixed effects (with the Goodman-Bacon check), event
study and placebo launches; cluster-robust (CRV1) and wild cluster bootstrap inference."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import DataError
from ..stats.cluster_robust import fit_linear, t_test, wald_test
from ..stats.fixed_effects import FixedEffects
from ..stats.goodman_bacon import bacon_decomposition
from ..stats.uniform_bands import sup_t_critical_t
from ..stats.wild_bootstrap import wild_cluster_test
from .diagnostics import (
    WILD_AUTO_CLUSTERS,
    DiDWarning,
    few_treated_message,
    treated_cluster_counts,
    warn_few_treated,
)
from .panel import (
    _as_list,
    _cluster_codes,
    _codes,
    _cohorts,
    _first_from_treatment,
    _prepare,
    _trends,
    _unit_first,
    _unit_period_counts,
    _val,
)
from .regression_results import BaconResult, DiDResult, EventStudyResult, PretrendTest


# --------------------------------------------------------------------------
# Shared regression path
# --------------------------------------------------------------------------
def _regress(y, X, names, fe, cluster, alpha, wild, wild_reps, wild_weights, seed, target=0):
    fit = fit_linear(y, X, fe, cluster, names)
    se = fit.se
    rows = []
    for i, nm in enumerate(names):
        p, lo, hi = t_test(fit.coef[i], se[i], fit.df, alpha)
        rows.append({"term": nm, "estimate": fit.coef[i], "se": se[i], "ci_lower": lo, "ci_upper": hi, "p_value": p})
    coefs = pd.DataFrame(rows)
    if wild is None:
        wild = cluster is not None and fit.n_clusters < WILD_AUTO_CLUSTERS
    wt = None
    if wild:
        if cluster is None:
            raise DataError("wild=True needs clusters (unit= or cluster=)")
        wt = wild_cluster_test(fit, fe, target, reps=wild_reps, weights=wild_weights, seed=seed, alpha=alpha)
    return fit, coefs, wt


def _few_treated(cluster, treated_rows, notes: list) -> dict:
    """Treated / untreated cluster counts, the few-treated-clusters warning and note; fields for the result."""
    n_t, n_u = treated_cluster_counts(cluster, treated_rows)
    msg = few_treated_message(n_t, n_u)
    warn_few_treated(msg, stacklevel=4)
    if msg:
        notes.append(msg)
    return dict(n_treated_clusters=n_t, n_untreated_clusters=n_u, few_treated_clusters=msg is not None)


def _small_sample_text(fit) -> str:
    if fit.vcov_type == "CRV1":
        return (
            f"CRV1: G/(G-1)*(N-1)/(N-K) with G={fit.n_clusters}, N={fit.n_obs}, K={fit.k} "
            f"(fixest's K for fixed effects nested in clusters); t({fit.n_clusters - 1}) reference"
        )
    return f"HC1: N/(N-K) with N={fit.n_obs}, K={fit.k}; t({fit.n_obs - fit.k}) reference"


# --------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------
def two_by_two(
    data,
    outcome,
    treated: str,
    post: str,
    unit: str | None = None,
    covariates: Sequence[str] | None = None,
    cluster: str | None = None,
    *,
    weights: str | None = None,
    alpha: float = 0.05,
    wild: bool | None = None,
    wild_reps: int = 9999,
    wild_weights: str = "rademacher",
    seed=0,
) -> DiDResult:
    """Classic DiD regression ``y = a + b1 treated + b2 post + beta treated*post + X'g + e``.

    ``treated`` and ``post`` are 0/1 columns; ``beta`` is the estimate. With
    ``outcome=(num, den)`` the ratio is analysed with weights ``den``.
    Standard errors are cluster-robust (CRV1: ``G/(G-1) (N-1)/(N-K)``, ``K``
    counting the intercept; t(G-1)), clustered by ``cluster``, else by
    ``unit``; with neither, heteroskedasticity-robust HC1 with t(N-K), with a
    :class:`DiDWarning` (and a note in the result): HC1 treats every row as
    independent, which misstates the standard error (too small or, when unit
    effects cancel in the difference, too large) when the same units appear
    before and after (a panel); it is right only for repeated cross sections
    of different individuals.
    Equal to statsmodels ``OLS(...).fit(cov_type="cluster")`` and Stata
    ``regress ..., vce(cluster)``. With fewer than 50 clusters (or
    ``wild=True``) the wild cluster restricted bootstrap p-value and CI are
    added (``wild_weights`` 'rademacher' or 'webb', ``wild_reps`` draws, ``seed``).
    """
    covariates = _as_list(covariates)
    fr = _prepare(data, outcome, [treated, post, *covariates], [unit, cluster], weights)
    Tr, Po = fr.cols[treated], fr.cols[post]
    for c, v in ((treated, Tr), (post, Po)):
        if not np.all((v == 0) | (v == 1)):
            raise DataError(f"column '{c}' must hold only 0 and 1 (found e.g. {_val(v[(v != 0) & (v != 1)][0])})")
    n = fr.y.size
    X = np.column_stack([Tr * Po, np.ones(n), Tr, Po, *[fr.cols[c] for c in covariates]])
    names = [f"{treated}:{post}", "intercept", treated, post, *covariates]
    fe = FixedEffects([], n, fr.w)
    cl = _cluster_codes(fr.keys, cluster, unit)
    fit, coefs, wt = _regress(fr.y, X, names, fe, cl, alpha, wild, wild_reps, wild_weights, seed)
    row = coefs.iloc[0]
    trends = _trends(fr.y, fr.w, Tr.astype(np.intp), ["control", "treated"], Po)
    n_units = len(np.unique(fr.keys[unit])) if unit else n
    notes: list[str] = []
    if cl is None:
        msg = (
            f"two_by_two without unit= or cluster=: every one of the {n:,} rows is treated as an independent "
            "observation (HC1 standard errors). If the same units (markets, buyers) appear in several rows, "
            "e.g. before and after, their rows are correlated and HC1 misstates the standard error: pass "
            "unit= (clusters by it) or cluster=. HC1 is right only for repeated cross sections of different "
            "individuals."
        )
        warnings.warn(msg, DiDWarning, stacklevel=2)
        notes.append(msg)
    few = _few_treated(cl, Tr == 1, notes)
    return DiDResult(
        method="2x2",
        outcome=fr.outcome_name,
        estimate=float(row.estimate),
        se=float(row.se),
        ci_lower=float(row.ci_lower),
        ci_upper=float(row.ci_upper),
        p_value=float(row.p_value),
        df=fit.df,
        alpha=alpha,
        n_obs=n,
        n_units=n_units,
        n_periods=2,
        n_clusters=fit.n_clusters,
        vcov_type=fit.vcov_type,
        small_sample=_small_sample_text(fit),
        coefficients=coefs,
        wild=wt,
        trends=trends,
        dropped=fr.dropped,
        notes=tuple(notes),
        **few,
    )


def _bacon_from_arrays(y, ucode, tcode, tlabels, first_unit) -> BaconResult | None:
    """The decomposition if the panel has exactly one row per unit and period, else None."""
    n_units, T = int(ucode.max()) + 1, int(tcode.max()) + 1
    if y.size != n_units * T:
        return None
    counts = np.bincount(ucode * T + tcode, minlength=n_units * T)
    if counts.min() != 1:  # same size, but a repeated unit-period hides a missing one
        return None
    Y = np.empty((n_units, T))
    Y[ucode, tcode] = y
    b = bacon_decomposition(Y, tlabels.astype(np.float64), first_unit)
    comp = pd.DataFrame(
        {"treated": b.treated, "control": b.control, "kind": b.kind, "estimate": b.estimate, "weight": b.weight}
    )
    return BaconResult(comparisons=comp, twfe=b.twfe)


def twfe(
    data,
    outcome,
    treatment: str,
    unit: str,
    time: str,
    cluster: str | None = None,
    *,
    covariates: Sequence[str] | None = None,
    weights: str | None = None,
    alpha: float = 0.05,
    wild: bool | None = None,
    wild_reps: int = 9999,
    wild_weights: str = "rademacher",
    seed=0,
) -> DiDResult:
    """Two-way fixed effects ``y_it = a_i + l_t + beta D_it + X_it'g + e_it``; returns ``beta``.

    The unit and period fixed effects are absorbed (exact projection, any
    unbalanced panel; see :class:`abkit.stats.fixed_effects.FixedEffects`), never built
    as dummies. SEs are CRV1 clustered by ``cluster`` (default ``unit``) with
    R fixest's small-sample correction; matches ``fixest::feols(y ~ D | unit + time,
    cluster = ~unit)``. ``weights`` (or ``outcome=(num, den)``) gives WLS.

    On staggered launches the TWFE coefficient is a weighted average of all
    2x2 comparisons, including "later vs earlier treated" ones that use
    already-treated units as controls; with effects that change over time
    those comparisons are biased and can even flip the sign (Goodman-Bacon
    2021; de Chaisemartin & D'Haultfoeuille 2020). On a balanced panel
    without covariates or weights the decomposition is computed
    (``result.bacon``) and a :class:`DiDWarning` is issued when those
    comparisons carry at least 5% of the weight and their average differs
    from the clean comparisons by more than one standard error: use
    :func:`staggered` instead.
    """
    covariates = _as_list(covariates)
    fr = _prepare(data, outcome, [treatment, *covariates], [unit, time, cluster], weights)
    ucode, ulab = _codes(fr.keys[unit])
    tcode, tlab = _codes(fr.keys[time])
    n = fr.y.size
    D = fr.cols[treatment]
    fe = FixedEffects([ucode, tcode], n, fr.w)
    cl = _cluster_codes(fr.keys, cluster, unit, ucode)
    X = np.column_stack([D, *[fr.cols[c] for c in covariates]])
    names = [treatment, *covariates]
    fit, coefs, wt = _regress(fr.y, X, names, fe, cl, alpha, wild, wild_reps, wild_weights, seed)
    row = coefs.iloc[0]
    notes: list[str] = []
    bacon_res = None
    trends = None
    binary = np.all((D == 0) | (D == 1))
    per_cell = np.bincount(ucode * tlab.size + tcode, minlength=ulab.size * tlab.size)
    if per_cell.max(initial=0) > 1:
        notes.append(
            f"{int((per_cell > 1).sum()):,} ('{unit}', '{time}') pairs have several rows: each row is one "
            "observation of the regression (e.g. orders within a market-week). For a unit x period "
            "panel, aggregate first with abkit.did.aggregate_panel."
        )
    try:
        tnum = tlab.astype(np.float64)
    except (TypeError, ValueError):
        tnum = None
        notes.append(
            f"column '{time}' is not numeric, so launch timing is not analysed (no raw trends, no "
            "Goodman-Bacon check); use period numbers for these diagnostics."
        )
    if binary and tnum is not None:
        try:
            first = _first_from_treatment(ucode, tnum[tcode], D, ulab.size, treatment)
        except DataError:
            first = None
        if first is not None:
            trends = _trends(fr.y, fr.w, *_cohorts(first, ucode), tnum[tcode], (tcode, tnum))
            launches = np.unique(first[np.isfinite(first) & (first > tnum[0])])
            if launches.size >= 2:
                if not covariates and fr.w is None:
                    bacon_res = _bacon_from_arrays(fr.y, ucode, tcode, tnum, first)
                if bacon_res is not None:
                    kinds = bacon_res.by_kind().set_index("kind")
                    bad = [k for k in ("later vs earlier treated", "later vs always treated") if k in kinds.index]
                    good = [k for k in kinds.index if k not in bad]
                    fw = bacon_res.forbidden_weight
                    if bad and good:

                        def avg(ks):
                            return float(
                                (kinds.loc[ks, "weight"] * kinds.loc[ks, "estimate"]).sum()
                                / kinds.loc[ks, "weight"].sum()
                            )

                        gap = avg(bad) - avg(good)
                        if fw >= 0.05 and abs(gap) > float(row.se):
                            msg = (
                                f"TWFE on staggered launches ({launches.size} launch cohorts): {fw:.0%} of the "
                                f"weight is on comparisons that use already-launched units as controls, and "
                                f"their average 2x2 estimate differs from the clean comparisons by {gap:.4g} "
                                f"(> 1 SE = {float(row.se):.4g}), a sign of effects that vary over time or "
                                "cohort. The TWFE coefficient is biased; use abkit.did.staggered (Callaway & "
                                "Sant'Anna). See result.bacon for the Goodman-Bacon decomposition."
                            )
                            warnings.warn(msg, DiDWarning, stacklevel=2)
                            notes.append(msg)
                else:
                    msg = (
                        f"TWFE on staggered launches ({launches.size} launch cohorts): with effects that vary "
                        "over time the coefficient can be biased (Goodman-Bacon 2021); compare with "
                        "abkit.did.staggered."
                    )
                    notes.append(msg)
    few = _few_treated(cl, D != 0, notes)
    return DiDResult(
        method="TWFE",
        outcome=fr.outcome_name,
        estimate=float(row.estimate),
        se=float(row.se),
        ci_lower=float(row.ci_lower),
        ci_upper=float(row.ci_upper),
        p_value=float(row.p_value),
        df=fit.df,
        alpha=alpha,
        n_obs=n,
        n_units=ulab.size,
        n_periods=tlab.size,
        n_clusters=fit.n_clusters,
        vcov_type=fit.vcov_type,
        small_sample=_small_sample_text(fit),
        coefficients=coefs,
        wild=wt,
        bacon=bacon_res,
        trends=trends,
        dropped=fr.dropped,
        notes=tuple(notes),
        **few,
    )


def bacon(
    data, outcome, unit: str, time: str, *, treatment: str | None = None, first_treated: str | None = None
) -> BaconResult:
    """Goodman-Bacon (2021) decomposition of the TWFE coefficient (balanced panel, no covariates).

    Give either a 0/1 absorbing ``treatment`` column or ``first_treated``
    (first treated period per unit, missing if never treated; the rule of
    :func:`abkit.did.panel.classify_first_treated`).
    """
    if (treatment is None) == (first_treated is None):
        raise DataError("pass exactly one of treatment= (a 0/1 column) or first_treated= (launch period)")
    fr = _prepare(data, outcome, [treatment] if treatment else [], [unit, time], None, extra=[first_treated])
    ucode, ulab, tcode, tlab, tnum, first = _unit_first(fr, unit, time, first_treated, treatment)
    _unit_period_counts(ucode, tcode, ulab.size, tlab.size, unit, time, ulab, tlab, error=True)
    res = _bacon_from_arrays(fr.y, ucode, tcode, tnum, first)
    if res is None:
        raise DataError(
            "the Goodman-Bacon decomposition needs a balanced panel (every unit in every period); "
            f"the data has {fr.y.size:,} rows for {ulab.size} units x {tlab.size} periods"
        )
    return res


def event_study(
    data,
    outcome,
    unit: str,
    time: str,
    first_treated: str | None = None,
    *,
    treatment: str | None = None,
    leads: int = 4,
    lags: int = 8,
    bin_endpoints: bool = True,
    covariates: Sequence[str] | None = None,
    cluster: str | None = None,
    weights: str | None = None,
    alpha: float = 0.05,
    wild: bool | None = None,
    wild_reps: int = 9999,
    wild_weights: str = "rademacher",
    band_draws: int = 100_000,
    seed=0,
) -> EventStudyResult:
    """Dynamic TWFE event study: effects at event times ``-leads..lags`` relative to launch.

    ``y_it = a_i + l_t + sum_{e != -1} beta_e 1{t - g_i = e} + X'g + e_it``,
    reference period ``e = -1``; never-launched units have no event dummies.
    With ``bin_endpoints`` (default) event times beyond the window are pooled
    into the end bins ``e <= -leads`` and ``e >= lags`` (Schmidheiny &
    Siegloch 2023), otherwise they are dropped from the sample.
    Event time is measured in the units of ``time`` (``t - first_treated``).

    * Pointwise CIs: CRV1 (clustered by ``cluster``, default ``unit``), t(G-1).
    * Uniform band: sup-t (Montiel Olea & Plagborg-Moller 2019): the critical
      value is the ``1 - alpha`` quantile of ``max_e |T_e|`` with ``T``
      multivariate t(G-1) with the CRV1 correlation of the estimates
      (``band_draws`` draws, ``seed``).
    * Pre-trend test: joint Wald test of all leads ``beta_e = 0, e <= -2``,
      Hotelling-corrected ``F(q, G-q)``; with few clusters also the wild
      cluster bootstrap p-value of the same Wald statistic.
    * ``estimate``: the average of the post-launch ``beta_e`` (``e = 0..lags``).

    With staggered launches and effects that differ across cohorts the
    coefficients mix cohorts (Sun & Abraham 2021); :func:`staggered` then
    gives clean event-time effects (``aggregate("dynamic")``).
    """
    covariates = _as_list(covariates)
    if leads < 2 or lags < 0:
        raise DataError(f"leads must be >= 2 (e = -1 is the reference) and lags >= 0; got leads={leads}, lags={lags}")
    fr = _prepare(
        data,
        outcome,
        [*([treatment] if treatment else []), *covariates],
        [unit, time, cluster],
        weights,
        extra=[first_treated],
    )
    ucode, ulab, tcode, tlab, tnum, first = _unit_first(fr, unit, time, first_treated, treatment)
    t = tnum[tcode]
    g = first[ucode]
    ever = np.isfinite(g)
    e = np.where(ever, t - g, 0.0)
    keep = np.ones(t.size, bool)
    if not bin_endpoints:
        keep = ~ever | ((e >= -leads) & (e <= lags))
    ec = np.clip(e, -leads, lags)
    etimes = [k for k in range(-leads, lags + 1) if k != -1]
    X = np.column_stack([(ever & (ec == k)).astype(np.float64) for k in etimes])
    present = X[keep].sum(axis=0) > 0
    etimes = [k for k, p in zip(etimes, present) if p]
    X = X[:, present]
    if not any(k >= 0 for k in etimes):
        raise DataError("no launched unit is observed at or after its launch; nothing to estimate")
    y = fr.y[keep]
    w = fr.w[keep] if fr.w is not None else None
    X = X[keep]
    if covariates:
        X = np.column_stack([X, *[fr.cols[c][keep] for c in covariates]])
    uc, _ = _codes(ucode[keep])
    tc, _ = _codes(tcode[keep])
    fe = FixedEffects([uc, tc], y.size, w)
    keys = {k: v[keep] for k, v in fr.keys.items()}
    cl = _cluster_codes(keys, cluster, unit, uc)
    names = [f"e{k:+d}" for k in etimes] + covariates
    fit = fit_linear(y, X, fe, cl, names)
    ne = len(etimes)
    b, V, se = fit.coef[:ne], fit.vcov[:ne, :ne], fit.se[:ne]
    G = fit.n_clusters
    df = fit.df
    # uniform band: sup-t over all displayed event times
    crit = sup_t_critical_t(V / np.outer(se, se), df, band_draws, alpha, seed)
    q = stats.t.isf(alpha / 2, df)
    pvals = 2 * stats.t.sf(np.abs(b) / se, df)
    if wild is None:
        wild = cl is not None and G < WILD_AUTO_CLUSTERS
    pre_idx = [i for i, k in enumerate(etimes) if k <= -2]
    post_idx = [i for i, k in enumerate(etimes) if k >= 0]
    wild_p = np.full(ne, np.nan)
    wild_lo = np.full(ne, np.nan)
    wild_hi = np.full(ne, np.nan)
    pre_wild = np.nan
    if wild:
        for i in range(ne):
            wt = wild_cluster_test(fit, fe, i, reps=wild_reps, weights=wild_weights, seed=seed, alpha=alpha)
            wild_p[i], wild_lo[i], wild_hi[i] = wt.p_value, wt.ci_lower, wt.ci_upper
        if pre_idx:
            pre_wild = wild_cluster_test(
                fit, fe, pre_idx, reps=wild_reps, weights=wild_weights, seed=seed, alpha=alpha, ci=False
            ).p_value
    if pre_idx:
        W, F, df2, pw = wald_test(b[pre_idx], V[np.ix_(pre_idx, pre_idx)], G)
        pretrend = PretrendTest(
            statistic=F,
            df1=float(len(pre_idx)),
            df2=df2,
            p_value=pw,
            wald=W,
            method="CRV1 Wald, Hotelling T2 F(q, G-q)" if G else "HC1 Wald, chi-square",
            wild_p_value=pre_wild,
            event_times=tuple(float(etimes[i]) for i in pre_idx),
            n_clusters=G,
        )
    else:
        pretrend = PretrendTest(np.nan, 0.0, np.nan, np.nan, np.nan, "no pre-launch event times")
    # average post effect
    a = np.zeros(ne)
    a[post_idx] = 1.0 / len(post_idx)
    avg = float(a @ b)
    avg_se = float(math.sqrt(a @ V @ a))
    avg_p, avg_lo, avg_hi = t_test(avg, avg_se, df, alpha)
    # per-event-time cell counts
    counts = {k: int((X[:, i] > 0).sum()) for i, k in enumerate(etimes)}
    rows = pd.DataFrame(
        {
            "event_time": etimes,
            "estimate": b,
            "se": se,
            "ci_lower": b - q * se,
            "ci_upper": b + q * se,
            "band_lower": b - crit * se,
            "band_upper": b + crit * se,
            "p_value": pvals,
            "wild_p_value": wild_p,
            "wild_ci_lower": wild_lo,
            "wild_ci_upper": wild_hi,
            "n_obs": [counts[k] for k in etimes],
        }
    )
    rows["reference"] = False
    ref = pd.DataFrame(
        [
            {
                "event_time": -1,
                "estimate": 0.0,
                "se": np.nan,
                "ci_lower": np.nan,
                "ci_upper": np.nan,
                "band_lower": np.nan,
                "band_upper": np.nan,
                "p_value": np.nan,
                "wild_p_value": np.nan,
                "wild_ci_lower": np.nan,
                "wild_ci_upper": np.nan,
                "n_obs": int((ever & (ec == -1)).sum()),
                "reference": True,
            }
        ]
    )
    table = pd.concat([rows, ref], ignore_index=True).sort_values("event_time", ignore_index=True)
    if bin_endpoints:
        table["binned"] = (table.event_time == -leads) | (table.event_time == lags)
    trends = _trends(fr.y, fr.w, *_cohorts(first, ucode), t)
    notes = []
    launches = np.unique(first[np.isfinite(first)])
    if launches.size >= 2:
        notes.append(
            f"{launches.size} launch cohorts: with effects that differ by cohort the TWFE event-time "
            "coefficients mix cohorts (Sun & Abraham 2021); compare with staggered(...).aggregate('dynamic')."
        )
    dropped = dict(fr.dropped)
    if not keep.all():
        dropped["outside the event window"] = int((~keep).sum())
    few = _few_treated(cl, ever[keep], notes)
    return EventStudyResult(
        outcome=fr.outcome_name,
        method="TWFE event study",
        table=table,
        pretrend=pretrend,
        estimate=avg,
        se=avg_se,
        ci_lower=avg_lo,
        ci_upper=avg_hi,
        p_value=avg_p,
        alpha=alpha,
        critical_value=crit,
        n_obs=int(y.size),
        n_units=ulab.size,
        n_clusters=G,
        trends=trends,
        dropped=dropped,
        notes=tuple(notes),
        **few,
    )


# --------------------------------------------------------------------------
# Placebo
# --------------------------------------------------------------------------
def placebo(
    data,
    outcome,
    unit: str,
    time: str,
    first_treated: str | None = None,
    *,
    treatment: str | None = None,
    shift: int = 4,
    cluster: str | None = None,
    weights: str | None = None,
    alpha: float = 0.05,
    wild: bool | None = None,
    wild_reps: int = 9999,
    wild_weights: str = "rademacher",
    seed=0,
) -> DiDResult:
    """Placebo test: a fake launch ``shift`` periods early, estimated on pre-launch data only.

    Every launched unit keeps only its periods before the real launch; its
    fake treatment switches on at ``launch - shift``; never-launched units
    keep all periods. The TWFE estimate of the fake effect should be zero
    under parallel trends (a significant placebo effect is evidence of
    diverging pre-trends or anticipation). Inference as :func:`twfe` (CRV1,
    and the wild cluster bootstrap with fewer than 50 clusters); the fake
    launches are not run through TWFE's staggered-launch diagnostics. Size
    and variance are checked by simulation in ``tests/test_did_calibration.py``.
    """
    if isinstance(shift, bool) or not isinstance(shift, (int, np.integer)) or shift < 1:
        raise DataError(f"shift must be a positive whole number of periods; got {shift!r}")
    fr = _prepare(
        data, outcome, [treatment] if treatment else [], [unit, time, cluster], weights, extra=[first_treated]
    )
    ucode, ulab, tcode, tlab, tnum, first = _unit_first(fr, unit, time, first_treated, treatment)
    t = tnum[tcode]
    g = first[ucode]
    keep = ~np.isfinite(g) | (t < g)
    D = (np.isfinite(g) & (t >= g - shift)).astype(np.float64)[keep]
    if D.sum() == 0 or (np.isfinite(g) & keep & (t < g - shift)).sum() == 0:
        raise DataError(
            f"no launched unit has periods both before and after its fake launch (shift={shift}); use a smaller shift"
        )
    y = fr.y[keep]
    w = fr.w[keep] if fr.w is not None else None
    uc, _ = _codes(ucode[keep])
    tc, tl = _codes(t[keep])
    fe = FixedEffects([uc, tc], y.size, w)
    cl = _cluster_codes({k: v[keep] for k, v in fr.keys.items()}, cluster, unit, uc)
    name = f"placebo {treatment or first_treated} - {shift}"
    fit, coefs, wt = _regress(y, D[:, None], [name], fe, cl, alpha, wild, wild_reps, wild_weights, seed)
    row = coefs.iloc[0]
    dropped = {**fr.dropped, "post-launch rows (placebo uses pre-launch data)": int((~keep).sum())}
    notes: list[str] = []
    few = _few_treated(cl, np.isfinite(g)[keep], notes)
    return DiDResult(
        method=f"placebo (fake launch {shift} periods early)",
        outcome=fr.outcome_name,
        estimate=float(row.estimate),
        se=float(row.se),
        ci_lower=float(row.ci_lower),
        ci_upper=float(row.ci_upper),
        p_value=float(row.p_value),
        df=fit.df,
        alpha=alpha,
        n_obs=int(y.size),
        n_units=ulab.size,
        n_periods=tl.size,
        n_clusters=fit.n_clusters,
        vcov_type=fit.vcov_type,
        small_sample=_small_sample_text(fit),
        coefficients=coefs,
        wild=wt,
        dropped=dropped,
        notes=tuple(notes),
        **few,
    )
