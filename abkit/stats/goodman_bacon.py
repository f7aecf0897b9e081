"""The Goodman-Bacon (2021) decomposition of the two-way fixed effects DiD coefficient.

:func:`bacon_decomposition`: on a balanced panel with an absorbing binary
treatment, the TWFE coefficient is a weighted average of all 2x2 DiDs
between timing groups (Goodman-Bacon 2021, "Difference-in-differences with
variation in treatment timing", J. Econometrics 225, Theorem 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError

__all__ = ["Bacon", "bacon_decomposition"]


# --------------------------------------------------------------------------
# Goodman-Bacon decomposition
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Bacon:
    """The 2x2 comparisons of the Goodman-Bacon decomposition."""

    treated: np.ndarray  # timing (first-treated period) of the treated group; inf = never
    control: np.ndarray  # timing of the comparison group; inf = never, -inf = always
    kind: np.ndarray  # "treated vs never", "earlier vs later", "later vs earlier", ...
    estimate: np.ndarray
    weight: np.ndarray
    twfe: float  # the TWFE coefficient the weights reproduce


def bacon_decomposition(Y: np.ndarray, periods: np.ndarray, first: np.ndarray) -> Bacon:
    """Goodman-Bacon (2021) decomposition of the TWFE DiD coefficient.

    ``Y``: balanced ``(n_units, T)`` outcomes; ``first``: first treated period
    per unit (``inf`` for never treated; ``<= periods[0]`` = always treated).
    Timing groups ``k`` with shares ``n_k`` and treated fraction of periods
    ``Dbar_k``; for every pair ``k`` earlier than ``l`` (the never treated have
    ``Dbar = 0``, the always treated ``Dbar = 1``), with ``n_kl = n_k / (n_k + n_l)``:

    * ``k`` vs ``l`` before ``l`` is treated, weight
      ``((n_k + n_l)(1 - Dbar_l))^2 n_kl (1 - n_kl) (Dbar_k - Dbar_l)(1 - Dbar_k) / (1 - Dbar_l)^2``;
    * ``l`` vs ``k`` after ``k`` is treated, weight
      ``((n_k + n_l) Dbar_k)^2 n_kl (1 - n_kl) Dbar_l (Dbar_k - Dbar_l) / Dbar_k^2``,

    each divided by the variance of the two-way demeaned treatment
    ``V^D = mean(D~^2)`` (Theorem 1). The weights sum to one and
    ``sum(weight * estimate)`` equals the TWFE coefficient exactly.
    """
    n, T = Y.shape
    # every unit of a timing group has the same treatment path, so all of it is computed per group;
    # the only pass over the outcomes is one (groups x units) @ (units x T) product
    timing = np.where(first <= periods[0], -np.inf, np.where(first > periods[-1], np.inf, first))
    tk, inv = np.unique(timing, return_inverse=True)
    inv = inv.ravel()
    ng = np.bincount(inv, minlength=tk.size).astype(np.float64)
    share = ng / n
    onehot = (inv[None, :] == np.arange(tk.size)[:, None]).astype(np.float64)
    ybar = (onehot @ Y) / ng[:, None]  # (groups, T)
    Dg = (periods[None, :] >= tk[:, None]).astype(np.float64)  # (groups, T)
    Dbar = Dg.mean(axis=1)
    col = share @ Dg
    Dt = Dg - Dbar[:, None] - col[None, :] + share @ Dbar  # two-way demeaned treatment
    SDD = float(ng @ np.sum(Dt**2, axis=1))
    VD = SDD / (n * T)
    if VD <= 1e-15:
        raise DataError("the treatment does not vary within units and periods; nothing to decompose")
    beta = float(np.sum(Dt * ybar * ng[:, None]) / SDD)
    out = []
    for a in range(tk.size):
        for b in range(tk.size):
            if not Dbar[a] > Dbar[b]:
                continue
            k, ell = a, b  # k treated earlier (larger Dbar), ell (the paper's l) later
            nk, nl = share[k], share[ell]
            nkl = nk / (nk + nl)
            # (1) k treated, l control, window before l's treatment
            if Dbar[k] < 1 and Dbar[ell] < 1:
                win = periods < tk[ell]
                pre = win & (periods < tk[k])
                postk = win & (periods >= tk[k])
                if pre.any() and postk.any():
                    est = (ybar[k, postk].mean() - ybar[k, pre].mean()) - (
                        ybar[ell, postk].mean() - ybar[ell, pre].mean()
                    )
                    wt = (
                        ((nk + nl) * (1 - Dbar[ell])) ** 2
                        * nkl
                        * (1 - nkl)
                        * (Dbar[k] - Dbar[ell])
                        * (1 - Dbar[k])
                        / (1 - Dbar[ell]) ** 2
                    ) / VD
                    kind = "treated vs never treated" if np.isposinf(tk[ell]) else "earlier vs later treated"
                    out.append((tk[k], tk[ell], kind, est, wt))
            # (2) l treated, k (already treated) control, window after k's treatment
            if Dbar[ell] > 0:
                win = periods >= tk[k]
                pre = win & (periods < tk[ell])
                postl = win & (periods >= tk[ell])
                if pre.any() and postl.any():
                    est = (ybar[ell, postl].mean() - ybar[ell, pre].mean()) - (
                        ybar[k, postl].mean() - ybar[k, pre].mean()
                    )
                    wt = (
                        ((nk + nl) * Dbar[k]) ** 2 * nkl * (1 - nkl) * Dbar[ell] * (Dbar[k] - Dbar[ell]) / Dbar[k] ** 2
                    ) / VD
                    kind = "later vs always treated" if np.isneginf(tk[k]) else "later vs earlier treated"
                    out.append((tk[ell], tk[k], kind, est, wt))
    if not out:
        raise DataError("no 2x2 comparison exists (a single timing group)")
    return Bacon(
        treated=np.array([o[0] for o in out], dtype=np.float64),
        control=np.array([o[1] for o in out], dtype=np.float64),
        kind=np.array([o[2] for o in out], dtype=object),
        estimate=np.array([o[3] for o in out]),
        weight=np.array([o[4] for o in out]),
        twfe=beta,
    )
