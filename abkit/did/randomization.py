"""Randomization inference over which units were treated: the test for few treated clusters."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from ..errors import DataError
from ..stats.fixed_effects import FixedEffects
from ..stats.randomization_inference import (
    assignments,
    count_assignments,
    randomization_p_value,
    twfe_coefficients,
    twfe_coefficients_balanced,
)
from .diagnostics import FewTreatedClustersWarning
from .panel import _as_list, _codes, _prepare, _unit_first, _unit_period_counts
from .randomization_results import RandomizationTest
from .staggered_estimator import staggered


def randomization_test(
    data,
    outcome,
    unit: str,
    time: str,
    first_treated: str | None = None,
    *,
    treatment: str | None = None,
    estimator: str = "twfe",
    covariates: Sequence[str] | None = None,
    weights: str | None = None,
    reps: int = 9999,
    seed=0,
    alpha: float = 0.05,
    kind: str = "simple",
    **staggered_options,
) -> RandomizationTest:
    """Randomization test of a DiD estimate over the assignment of units to treatment.

    Every assignment of the observed launch periods (``first_treated``) or treatment paths
    (``treatment``, a 0/1 column on a balanced panel) to the units that keeps the cohort sizes is
    equally likely under the design; the estimate's two-sided p-value is the share of
    assignments whose estimate is at least as far from zero (:mod:`abkit.stats.randomization_inference`;
    Fisher's sharp null of no effect on any unit). All assignments are enumerated when there
    are at most ``reps`` of them (one launched market among 27: 27 assignments, p-values in
    steps of 1/27), otherwise ``reps`` are drawn at random with ``seed``.

    ``estimator``: ``"twfe"`` (the coefficient of :func:`twfe`, with ``covariates`` and
    ``weights``; a ratio ``outcome=(num, den)`` is weighted by ``den`` as there) or
    ``"staggered"`` (the ``kind`` aggregation of :func:`staggered`, with ``staggered_options``
    such as ``control_group``, ``method``; same as ``staggered(...).randomization_test()``).

    This is the test to use when there are fewer than
    :data:`~abkit.did.diagnostics.FEW_TREATED_CLUSTERS` treated (or untreated) clusters, where
    cluster-robust and wild bootstrap p-values are unreliable. It assumes the units are
    exchangeable: with treated units much larger or noisier than the others it over- or
    under-rejects (MacKinnon & Webb 2020), and with one treated unit among ``G`` the smallest
    possible p-value is ``1 / G`` (with 19 or fewer units it cannot reject at 5%). Compare with a
    synthetic control (``abkit.did.synthetic``) in that case.
    """
    if estimator == "staggered":
        if treatment is not None:
            raise DataError("estimator='staggered' needs first_treated= (the launch period per unit), not treatment=")
        if first_treated is None:
            raise DataError(
                "estimator='staggered' needs first_treated= (the column with each unit's launch period, "
                "missing if never launched)"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewTreatedClustersWarning)  # this test is the remedy
            res = staggered(
                data,
                outcome,
                unit,
                time,
                first_treated,
                covariates=covariates,
                weights=weights,
                alpha=alpha,
                **staggered_options,
            )
        return res.randomization_test(kind, reps=reps, seed=seed)
    if estimator != "twfe":
        raise DataError(f"estimator must be 'twfe' or 'staggered'; got {estimator!r}")
    if staggered_options:
        raise DataError(f"unknown option(s) for estimator='twfe': {', '.join(sorted(staggered_options))}")
    covariates = _as_list(covariates)
    fr = _prepare(
        data, outcome, [*([treatment] if treatment else []), *covariates], [unit, time], weights, extra=[first_treated]
    )
    if (treatment is None) == (first_treated is None):
        raise DataError(
            "pass exactly one of first_treated= (launch period per unit, missing if never launched) "
            "or treatment= (a 0/1 treatment column)"
        )
    if treatment:
        ucode, ulab = _codes(fr.keys[unit])
        tcode, tlab = _codes(fr.keys[time])
    else:
        ucode, ulab, tcode, tlab, tnum, first = _unit_first(fr, unit, time, first_treated, None)
        t_rows = tnum[tcode]
    n_units, T = ulab.size, tlab.size
    if treatment:
        counts = _unit_period_counts(ucode, tcode, n_units, T, unit, time, ulab, tlab, error=True)
        if not counts.all():
            raise DataError(
                f"randomization over treatment paths needs every {unit} in every {time} (a balanced "
                f"panel); {int((~counts.all(axis=1)).sum())} unit(s) miss periods. Pass "
                "first_treated= instead, or balance the panel"
            )
        paths = np.zeros((n_units, T))
        paths[ucode, tcode] = fr.cols[treatment]
        _, labels = np.unique(paths, axis=0, return_inverse=True)
        labels = labels.ravel()

        def treatment_of_row(index_block):
            return paths[index_block[:, ucode], tcode[None, :]].T

        observed_d = fr.cols[treatment]
    else:
        labels = first

        def treatment_of_row(index_block):
            return (t_rows[None, :] >= first[index_block[:, ucode]]).T.astype(np.float64)

        observed_d = (t_rows >= first[ucode]).astype(np.float64)
    if np.all(observed_d == observed_d[0]):
        raise DataError("the treatment does not vary: nothing to test")
    index, exact = assignments(labels, reps, seed)
    fe = FixedEffects([ucode, tcode], fr.y.size, fr.w)
    Z = np.column_stack([fr.cols[c] for c in covariates]) if covariates else None
    observed = float(twfe_coefficients(fr.y, fe, lambda a, b: observed_d[:, None], 1, Z)[0])
    balanced = fr.y.size == n_units * T and np.bincount(ucode * T + tcode, minlength=n_units * T).min() == 1
    if balanced and fr.w is None:  # O(assignments x units): no projection per assignment
        Y = np.empty((n_units, T))
        Y[ucode, tcode] = fr.y
        Xb = None
        if Z is not None:
            Xb = np.empty((n_units, T, Z.shape[1]))
            Xb[ucode, tcode] = Z
        if treatment:
            upaths, path_code = np.unique(paths, axis=0, return_inverse=True)
        else:
            upaths, path_code = np.unique(first, return_inverse=True)
            upaths = (tnum[None, :] >= upaths[:, None]).astype(np.float64)
        est = twfe_coefficients_balanced(Y, upaths, path_code.ravel()[index], Xb)
    else:
        est = twfe_coefficients(fr.y, fe, lambda a, b: treatment_of_row(index[a:b]), index.shape[0], Z)
    treated_units = int(np.sum(np.bincount(ucode, weights=(observed_d != 0).astype(float), minlength=n_units) > 0))
    return RandomizationTest(
        "TWFE coefficient",
        fr.outcome_name,
        observed,
        randomization_p_value(observed, est, exact),
        alpha,
        exact,
        int(index.shape[0]),
        count_assignments(labels),
        n_units,
        treated_units,
        seed,
        int(np.sum(~np.isfinite(est))),
        est,
    )
