"""Group-time average treatment effects ATT(g, t) and their aggregations (Callaway & Sant'Anna 2021).

Pure numpy: balanced ``(n_units, T)`` outcome arrays in, arrays and small frozen dataclasses out;
:func:`abkit.did.staggered` turns data frames into these arrays.

:func:`att_gt` and :func:`aggregate_att_gt` implement the group-time ATTs of
Callaway & Sant'Anna (2021, "Difference-in-Differences with multiple time
periods", J. Econometrics 225) for balanced panels, as R ``did`` does: for
each cell ``(g, t)`` the two-period estimator on ``dY = Y_t - Y_base`` (base
``g - 1 - anticipation`` for post periods; the previous period ("varying")
or ``g - 1`` ("universal") for pre periods) compares the cohort ``g`` with
the never-treated or the not-yet-treated units, by

* ``reg``: outcome regression (Heckman, Ichimura & Todd 1997),
* ``ipw``: normalised (Hajek) inverse probability weighting with a logit
  propensity score (Abadie 2005),
* ``dr``: the doubly robust estimator of Sant'Anna & Zhao (2020, "Doubly
  robust difference-in-differences estimators", J. Econometrics 219), eq.
  (3.1), logit propensity score and OLS outcome regression on the
  controls, with the influence function of their Proposition 3.1 including
  the estimation effects of both nuisance models (this is
  ``DRDID::drdid_panel``, what R ``did::att_gt(est_method = "dr")`` calls).

Standard errors come from the influence functions, ``se = sqrt(mean(psi^2) / n)``;
aggregations (simple, group, dynamic/event time, calendar) add the influence
function of the estimated cohort shares (the "wif" term of R did, applied
to the cell effects in ``O(n)`` without forming its ``n x cells`` matrix).
Without covariates the three estimators coincide and all cells are
computed by cohort blocks of a panel sorted by cohort (no per-cell logit or
regression): 10,000 units x 100 periods x 8 cohorts (792 cells) take about
0.15 s. R ``did`` drops the periods from the last cohort's launch on when
there are no never-treated units and ``control_group="notyettreated"``; so
does :func:`abkit.did.staggered` (and it says so in ``notes``).

With few units (20 markets is the normal case for a rollout) three things
change, in :mod:`abkit.did` (each checked by simulation in ``tests/test_did.py``):
CIs and p-values use ``t(G - 1)``; the uniform band uses the sup-t critical
value of a multivariate ``t(G - 1)`` (:func:`abkit.stats.uniform_bands.sup_t_critical_t`) rather than the
Rademacher multiplier bootstrap, whose band under-covers with 20 units; and the
pre-trend test is the joint Wald test of the event-time effects in a window of
leads (by default the 4 periods before launch, :data:`abkit.did.PRETREND_LEADS`;
never all pre-period cells, whose covariance is singular when they
outnumber the units), with the cluster-jackknife covariance
(:func:`dynamic_leave_one_out`, :func:`abkit.stats.cluster_robust.jackknife_vcov`) and
Hotelling's ``F(q, G - q)`` (:func:`abkit.stats.cluster_robust.wald_test`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .drdid import TRIM_LEVEL, OverlapError, did_panel_2x2

__all__ = ["AttGt", "Aggregation", "att_gt", "aggregate_att_gt", "dynamic_leave_one_out"]


@dataclass(frozen=True)
class AttGt:
    """Group-time ATTs with their influence functions (``n_units x n_cells``)."""

    group: np.ndarray
    time: np.ndarray
    base: np.ndarray
    att: np.ndarray
    se: np.ndarray
    inf: np.ndarray
    n_units: int
    n_treated: np.ndarray
    n_control: np.ndarray
    unit_group: np.ndarray  # first-treated period per unit (inf = never)
    unit_weights: np.ndarray
    n_trimmed: np.ndarray | None = None  # comparison units trimmed (propensity score >= trim_level) per cell


def _cells(
    periods: np.ndarray,
    G: np.ndarray,
    base_period: str,
    anticipation: int,
    event_window: tuple[float, float] | None = None,
):
    """The (g, t) cells in R did's order: ``(g, t index, base index, is the universal reference)``.

    ``event_window = (lo, hi)`` keeps only the cells with ``lo <= t - g <= hi``.
    """
    T = periods.size
    lo, hi = (-np.inf, np.inf) if event_window is None else event_window
    out = []
    for g in np.unique(G[np.isfinite(G)]):  # loop over cohorts x periods, never rows
        pre_idx = np.nonzero(periods + anticipation < g)[0]
        if pre_idx.size == 0:
            continue
        gbase = int(pre_idx[-1])
        for ti in range(1 if base_period == "varying" else 0, T):
            if not lo <= periods[ti] - g <= hi:
                continue
            post = bool(periods[ti] >= g)
            bi = gbase if (post or base_period == "universal") else ti - 1
            out.append((float(g), ti, bi, base_period == "universal" and ti == gbase))
    return out


def _att_gt_unconditional(Y, periods, G, cells, control_group, anticipation, w, trim_level=None):
    """All cells without covariates: ATT = difference of the weighted mean changes.

    Without covariates the ``reg``, ``ipw`` and ``dr`` estimators coincide
    (the propensity score is the cohort share, the outcome regression the
    comparison mean), with influence function (zero outside the cell)
    ``psi_i = n [D_i w_i (dY_i - mu_1) / W_1 - C_i w_i (dY_i - mu_0) / W_0]``,
    ``W_1, W_0`` the total weights of the cohort and of its comparison units.

    Units are sorted by cohort (never treated last) once, so that every
    cell's cohort is one contiguous block of rows and its comparison units
    one or two blocks (the never treated, plus for not-yet-treated controls
    the later cohorts). Cells that share the cohort and the comparison
    blocks (all cells of a cohort with never-treated controls) are computed
    together as one ``rows x cells`` block, written straight into the
    callers' unit order: the Python loop runs over cohorts x comparison
    sets, never over units or single cells, and each unit's influence is
    touched only in the cells it belongs to.
    """
    n = Y.shape[0]
    C = len(cells)
    key = G  # inf = never treated: sorted last
    order = np.argsort(key, kind="stable")
    ks = key[order]
    Ys = Y[order]
    ws = w[order]
    never_start = int(np.searchsorted(ks, np.inf, side="left"))
    att = np.zeros(C)
    inf = np.zeros((n, C), order="F")
    n_tr = np.zeros(C, dtype=np.int64)
    n_co = np.zeros(C, dtype=np.int64)
    blocks: dict[tuple, list[int]] = {}
    for j, (g, ti, bi, is_ref) in enumerate(cells):  # group the cells by (cohort rows, comparison rows)
        if is_ref:
            continue
        a, b = int(np.searchsorted(ks, g, "left")), int(np.searchsorted(ks, g, "right"))
        if control_group == "never_treated":
            spans = ((never_start, n),)
        else:
            h = int(np.searchsorted(ks, periods[max(ti, bi)] + anticipation, "right"))
            spans = ((h, n),) if h >= b else ((h, a), (b, n))  # later cohorts and never, minus g
        spans = tuple((lo, hi) for lo, hi in spans if hi > lo)
        if not spans:
            raise DataError(
                f"no comparison units for cohort {g:g} in period {periods[ti]:g} with "
                f"control_group='{control_group}'; use 'not_yet_treated' or drop the cell"
            )
        blocks.setdefault((a, b, spans), []).append(j)
    ti_all = np.array([c[1] for c in cells], dtype=np.intp)
    bi_all = np.array([c[2] for c in cells], dtype=np.intp)
    for (a, b, spans), js in blocks.items():  # one vectorized block per cohort x comparison set
        js = np.asarray(js, dtype=np.intp)
        tcol, bcol = ti_all[js], bi_all[js]
        YT = Ys[a:b]
        dT = YT[:, tcol] - YT[:, bcol]  # (cohort rows, cells)
        wT = ws[a:b]
        W1 = wT.sum()
        mu1 = (wT @ dT) / W1
        parts = []
        W0 = 0.0
        s0 = np.zeros(js.size)
        for lo, hi in spans:
            YC = Ys[lo:hi]
            dC = YC[:, tcol] - YC[:, bcol]
            wC = ws[lo:hi]
            W0 += wC.sum()
            s0 += wC @ dC
            parts.append((lo, hi, wC, dC))
        mu0 = s0 / W0
        if trim_level is not None and W1 / (W1 + W0) >= trim_level:
            raise DataError(
                f"cohort {cells[js[0]][0]:g} in period {periods[tcol[0]]:g}: "
                f"the comparison units hold {W0 / (W1 + W0):.2%} of the "
                f"cell's weight, so the propensity score of every one is at or above "
                f"trim_level={trim_level:g} and DRDID's trimming leaves no comparison. Use "
                "method='reg' (no propensity score) or trim_level=1"
            )
        att[js] = mu1 - mu0
        # written straight into the callers' unit order (rows order[a:b] of the sorted panel)
        inf[np.ix_(order[a:b], js)] = (n / W1) * wT[:, None] * (dT - mu1[None, :])
        for lo, hi, wC, dC in parts:
            inf[np.ix_(order[lo:hi], js)] = (-n / W0) * wC[:, None] * (dC - mu0[None, :])
        n_tr[js] = b - a
        n_co[js] = sum(hi - lo for lo, hi in spans)
    return att, inf, n_tr, n_co


def att_gt(
    Y: np.ndarray,
    periods: np.ndarray,
    G: np.ndarray,
    X: np.ndarray | None = None,
    control_group: str = "never_treated",
    method: str = "dr",
    base_period: str = "varying",
    anticipation: int = 0,
    weights: np.ndarray | None = None,
    event_window: tuple[float, float] | None = None,
    trim_level: float = TRIM_LEVEL,
) -> AttGt:
    """Callaway & Sant'Anna (2021) ATT(g, t) on a balanced panel.

    ``Y``: ``(n_units, T)`` outcomes at the sorted ``periods``; ``G``:
    first-treated period per unit (``inf`` = never treated; units treated in or
    before the first period must have been removed); ``X``: ``(n_units, T, p)``
    covariates or None (the covariates of the base period enter each cell).
    ``control_group``: ``"never_treated"`` (``G = inf``) or ``"not_yet_treated"``
    (``G = inf`` or ``G > max(t, base) + anticipation``, excluding ``g``).
    The influence function of each cell is scaled by ``n / n_cell`` and set to
    zero outside the cell, as in R did, so ``se = sqrt(mean(psi^2)/n)``.
    Without covariates all cells are computed at once (``reg = ipw = dr``,
    see :func:`_att_gt_unconditional`); with covariates cell by cell with
    :func:`did_panel_2x2`. ``event_window = (lo, hi)``: estimate only the cells
    with event time ``lo <= t - g <= hi`` (the event-time aggregation of those
    event times is unchanged; used by the leave-one-unit-out refits of the
    pre-trend test). ``trim_level``: the propensity-score trimming of the
    ``ipw`` and ``dr`` cells (:mod:`abkit.stats.drdid`; without covariates the
    score is the cohort's share of the cell, and a cell whose comparison units
    would all be trimmed is an error); ``AttGt.n_trimmed`` counts the trimmed
    comparison units per cell.
    """
    n, T = Y.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    G = np.asarray(G, dtype=np.float64)
    if np.any(np.isnan(G) | np.isneginf(G)):
        raise DataError(
            "first-treated periods must be period numbers, or inf for never-treated units; got NaN "
            "or -inf (classify them with abkit.did.panel.classify_first_treated)"
        )
    cells = _cells(periods, G, base_period, anticipation, event_window)
    if not cells and event_window is not None:
        raise DataError(f"no group-time cell has an event time in {event_window[0]:g}..{event_window[1]:g}")
    if not cells:
        raise DataError(
            "no group-time cell can be estimated: every treated cohort starts in the first "
            "period, so it has no pre-treatment period"
        )
    if X is None:
        att, inf, n_tr, n_co = _att_gt_unconditional(
            Y, periods, G, cells, control_group, anticipation, w, trim_level if method in ("dr", "ipw") else None
        )
        n_trim = np.zeros(len(cells), dtype=np.int64)
    else:
        C = len(cells)
        att = np.zeros(C)
        inf = np.zeros((n, C))
        n_tr = np.zeros(C, dtype=np.int64)
        n_co = np.zeros(C, dtype=np.int64)
        n_trim = np.zeros(C, dtype=np.int64)
        never = np.isinf(G)
        for j, (g, ti, bi, is_ref) in enumerate(cells):  # loop over cells, not rows
            if is_ref:
                continue
            if control_group == "never_treated":
                ctrl = never
            else:
                horizon = periods[max(ti, bi)] + anticipation
                ctrl = never | ((G > horizon) & (G != g))
            treat = G == g
            sel = treat | ctrl
            n1 = int(sel.sum())
            if not ctrl.any():
                raise DataError(
                    f"no comparison units for cohort {g:g} in period {periods[ti]:g} with "
                    f"control_group='{control_group}'; use 'not_yet_treated' or drop the cell"
                )
            dy = Y[sel, ti] - Y[sel, bi]
            D = treat[sel].astype(np.float64)
            Xc = np.column_stack([np.ones(n1), X[sel, bi, :]])
            try:
                att[j], psi, n_trim[j] = did_panel_2x2(dy, D, Xc, method, w[sel], trim_level)
            except OverlapError as exc:
                raise OverlapError(
                    f"cohort {g:g} in period {periods[ti]:g}: {exc}. Use method='reg' (no "
                    "propensity score), fewer covariates, or control_group='not_yet_treated' "
                    "(more comparison units)"
                ) from None
            inf[sel, j] = (n / n1) * psi
            n_tr[j], n_co[j] = int(treat.sum()), int(ctrl.sum())
    se = np.sqrt(np.einsum("nc,nc->c", inf, inf) / n / n)
    se[~np.any(inf != 0, axis=0)] = np.nan
    return AttGt(
        group=np.array([c[0] for c in cells]),
        time=periods[[c[1] for c in cells]].astype(np.float64),
        base=periods[[c[2] for c in cells]].astype(np.float64),
        att=att,
        se=se,
        inf=inf,
        n_units=n,
        n_treated=n_tr,
        n_control=n_co,
        unit_group=G,
        unit_weights=w,
        n_trimmed=n_trim,
    )


@dataclass(frozen=True)
class Aggregation:
    """An aggregation of ATT(g, t): per-row effects and the overall effect, with influence functions."""

    kind: str
    labels: np.ndarray  # event time / group / calendar period (empty for "simple")
    att: np.ndarray
    se: np.ndarray
    inf: np.ndarray  # (n, rows)
    overall_att: float
    overall_se: float
    overall_inf: np.ndarray  # (n,)
    reference: np.ndarray | None = None  # per row: the universal base period's reference (0 by construction)

    @property
    def is_reference(self) -> np.ndarray:
        """Rows fixed at 0 by construction (``e = -1 - anticipation`` with a universal base period)."""
        return np.zeros(self.att.size, bool) if self.reference is None else self.reference


def _wif(
    keep: np.ndarray, pg: np.ndarray, w: np.ndarray, unit_group: np.ndarray, cell_group: np.ndarray, a: np.ndarray
) -> np.ndarray:
    """``wif @ a``: the estimated weights' influence function applied to the cell effects ``a``.

    With ``s = sum_j pg_j`` over the kept cells and ``ind_ij = w_i 1{G_i = g_j} - pg_j``, the
    influence function of the weights ``pg_j / s`` is ``wif_ij = ind_ij / s - (sum_k ind_ik) pg_j / s^2``
    (R did's "wif"). Its product with ``a`` needs, per unit, only the sum of ``a`` and the number
    of kept cells of the unit's own group: ``O(n + cells)``, no ``n x cells`` matrix.
    """
    pk, gk = pg[keep], cell_group[keep]
    s = pk.sum()
    pa = float(pk @ a)
    groups, inv = np.unique(gk, return_inverse=True)
    A = np.bincount(inv.ravel(), weights=a, minlength=groups.size)
    m = np.bincount(inv.ravel(), minlength=groups.size).astype(np.float64)
    pos = np.minimum(np.searchsorted(groups, unit_group), groups.size - 1)
    hit = groups[pos] == unit_group
    ind_a = w * np.where(hit, A[pos], 0.0) - pa
    ind_sum = w * np.where(hit, m[pos], 0.0) - s
    return ind_a / s - ind_sum * (pa / s**2)


def _combine(att, inf, keep, wts, wif: bool = False, pg=None, w=None, ug=None, cg=None):
    """Weighted combination of cells ``keep``: the estimate and its influence function (plus, with
    ``wif``, the influence of the estimated weights)."""
    est = float(att[keep] @ wts)
    psi = inf[:, keep] @ wts
    if wif:
        psi = psi + _wif(keep, pg, w, ug, cg, att[keep])
    return est, psi


def aggregate_att_gt(
    res: AttGt, kind: str = "simple", min_e: float = -np.inf, max_e: float = np.inf, balance_e: int | None = None
) -> Aggregation:
    """Aggregate ATT(g, t) as R ``did::aggte`` (Callaway & Sant'Anna 2021, sec. 3).

    Cohort shares ``pg = mean(w 1{G = g})``;

    * ``simple``: post cells (``t >= g``), weights ``pg``;
    * ``group``: ``theta(g)`` = mean over the post cells of ``g``; overall =
      ``sum_g pg theta(g) / sum pg``;
    * ``dynamic``: ``theta(e)`` = ``pg``-weighted mean of cells with
      ``t - g = e``; overall = mean of ``theta(e)`` over ``e >= 0``;
    * ``calendar``: ``theta(t)`` = ``pg``-weighted mean of post cells in
      period ``t``; overall = mean over ``t``.

    Influence functions are the weighted cell influence functions plus the
    influence of the estimated shares (``_wif``) wherever the weights are
    estimated shares; ``se = sqrt(mean(psi^2) / n)``.
    """
    n = res.n_units
    w = res.unit_weights
    ug = res.unit_group
    cg, ct, att, inf = res.group, res.time, res.att, res.inf
    glist = np.unique(cg)
    pg_by_group = np.array([np.mean(w * (ug == g)) for g in glist])
    pgg = pg_by_group[np.searchsorted(glist, cg)]
    e_all = ct - cg
    post = (cg <= ct) & (ct <= cg + max_e)

    def se_of(psi):
        return float(np.sqrt(np.mean(psi**2) / n))

    labels, atts, psis = [], [], []
    if kind == "simple":
        keep = np.nonzero(post)[0]
        wts = pgg[keep] / pgg[keep].sum()
        est, psi = _combine(att, inf, keep, wts, True, pgg, w, ug, cg)
        return Aggregation(kind, np.array([]), np.array([]), np.array([]), np.zeros((n, 0)), est, se_of(psi), psi)
    if kind == "group":
        for g in glist:
            keep = np.nonzero((cg == g) & post)[0]
            if keep.size == 0:
                continue
            wts = pgg[keep] / pgg[keep].sum()
            est, psi = _combine(att, inf, keep, wts)
            labels.append(g)
            atts.append(est)
            psis.append(psi)
        A = np.array(atts)
        Pm = np.column_stack(psis)
        pgl = pg_by_group[np.searchsorted(glist, np.array(labels))]
        idx = np.arange(len(labels))
        wts = pgl / pgl.sum()
        est, psi = _combine(A, Pm, idx, wts, True, pgl, w, ug, np.array(labels))
    elif kind == "dynamic":
        if balance_e is not None:
            # keep cohorts observed for at least balance_e periods after treatment
            last = ct.max()
            ok_groups = glist[glist + balance_e <= last]
            mask = np.isin(cg, ok_groups) & (e_all <= balance_e)
        else:
            mask = np.ones(cg.size, bool)
        mask &= (e_all >= min_e) & (e_all <= max_e)
        is_ref_cell = res.time == res.base  # the universal base period's reference cells
        refs = []
        for e in np.unique(e_all[mask]):
            keep = np.nonzero(mask & (e_all == e))[0]
            wts = pgg[keep] / pgg[keep].sum()
            est, psi = _combine(att, inf, keep, wts, True, pgg, w, ug, cg)
            labels.append(e)
            atts.append(est)
            psis.append(psi)
            refs.append(bool(np.all(is_ref_cell[keep])))
        A = np.array(atts)
        Pm = np.column_stack(psis)
        idx = np.nonzero(np.array(labels) >= 0)[0]
        if idx.size == 0:
            raise DataError("no post-treatment event time in the requested window")
        est, psi = _combine(A, Pm, idx, np.full(idx.size, 1.0 / idx.size))
    elif kind == "calendar":
        for t in np.unique(ct[ct >= cg.min()]):
            keep = np.nonzero((ct == t) & post)[0]
            if keep.size == 0:
                continue
            wts = pgg[keep] / pgg[keep].sum()
            est, psi = _combine(att, inf, keep, wts, True, pgg, w, ug, cg)
            labels.append(t)
            atts.append(est)
            psis.append(psi)
        A = np.array(atts)
        Pm = np.column_stack(psis)
        idx = np.arange(len(labels))
        est, psi = _combine(A, Pm, idx, np.full(idx.size, 1.0 / idx.size))
    else:
        raise DataError(f"unknown aggregation '{kind}'; use 'simple', 'group', 'dynamic' or 'calendar'")
    se_rows = np.sqrt(np.mean(Pm**2, axis=0) / n)
    reference = np.array(refs, bool) if kind == "dynamic" else np.zeros(len(labels), bool)
    return Aggregation(kind, np.array(labels, dtype=np.float64), A, se_rows, Pm, est, se_of(psi), psi, reference)


def dynamic_leave_one_out(
    Y: np.ndarray,
    periods: np.ndarray,
    G: np.ndarray,
    event_times: np.ndarray,
    X: np.ndarray | None = None,
    *,
    control_group: str = "never_treated",
    method: str = "dr",
    base_period: str = "varying",
    anticipation: int = 0,
    weights: np.ndarray | None = None,
    trim_level: float = TRIM_LEVEL,
) -> np.ndarray:
    """Event-time effects ``theta(e)``, ``e`` in ``event_times``, re-estimated without each unit in turn.

    Returns an ``(n_units, k)`` array: row ``i`` is the dynamic aggregation
    of :func:`att_gt` on all units but ``i`` (the leave-one-cluster-out
    estimates behind the cluster jackknife, :func:`jackknife_vcov`). Only the
    cells with event times in the window are re-estimated (``event_window``),
    so ``n`` refits cost about ``n`` times the cells of the window. Raises
    :class:`~abkit.errors.DataError` when leaving a unit out removes an event
    time or the comparison group.
    """
    n = Y.shape[0]
    ev = np.asarray(event_times, dtype=np.float64)
    lo, hi = float(ev.min()), max(float(ev.max()), 0.0)  # the dynamic aggregation needs e = 0
    out = np.empty((n, ev.size))
    keep = np.ones(n, bool)
    for i in range(n):  # loop over units (the clusters): n refits
        keep[i] = False
        cells = att_gt(
            Y[keep],
            periods,
            G[keep],
            None if X is None else X[keep],
            control_group=control_group,
            method=method,
            base_period=base_period,
            anticipation=anticipation,
            weights=None if weights is None else weights[keep],
            event_window=(lo, hi),
            trim_level=trim_level,
        )
        agg = aggregate_att_gt(cells, "dynamic", min_e=lo, max_e=hi)
        pos = np.searchsorted(agg.labels, ev)
        if np.any(pos >= agg.labels.size) or np.any(agg.labels[np.minimum(pos, agg.labels.size - 1)] != ev):
            raise DataError(f"without unit {i} some event time in {lo:g}..{hi:g} has no cohort left")
        out[i] = agg.att[pos]
        keep[i] = True
    return out
