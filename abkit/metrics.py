"""Metric definitions: what to measure, in the analyst's words.

A metric is a *target statistic* of unit-level columns (a mean, or a ratio
of two means) plus optional *covariate statistics* for variance reduction.
Metrics only declare what they need; :mod:`abkit.sources` aggregates the
moments of all requested metrics in one pass and :mod:`abkit.stats.ab`
turns them into effects.

Examples
--------
>>> import abkit
>>> abkit.Ratio("refunds", "orders", covariates=("pre_refunds", "pre_orders"),
...             name="refund_rate", better="lower")
Ratio('refund_rate': refunds / orders, CUPED on pre_refunds / pre_orders)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import AbkitError

__all__ = ["Metric", "Mean", "Proportion", "Ratio", "Statistic", "Derived"]

_METHODS = (None, "cuped", "lin")


@dataclass(frozen=True)
class Statistic:
    """A smooth function of per-unit column means: ``mean(a)`` or ``mean(a) / mean(b)``.

    ``value`` and ``gradient`` (with respect to the column means) are what
    the delta method needs: Var(f(xbar)) ~= grad' Cov(x) grad / n.
    """

    numerator: str
    denominator: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.numerator,) if self.denominator is None else (self.numerator, self.denominator)

    def value_and_gradient(self, means: np.ndarray) -> tuple[float, np.ndarray]:
        """``means`` are the means of :attr:`columns`, in that order."""
        if self.denominator is None:
            return float(means[0]), np.array([1.0])
        num, den = float(means[0]), float(means[1])
        if den == 0.0:
            return float("nan"), np.array([np.nan, np.nan])
        return num / den, np.array([1.0 / den, -num / den**2])

    def __str__(self) -> str:
        return self.numerator if self.denominator is None else f"{self.numerator} / {self.denominator}"


@dataclass(frozen=True)
class Derived:
    """A per-unit column computed from other columns by one narwhals expression.

    The same expression runs on every engine (pandas, pyarrow, DuckDB,
    Spark), so a derived column (an NPS promoter-minus-detractor score, a
    winsorized amount) has one definition. ``inputs`` lists the raw columns
    the expression reads; ``name`` is how statistics refer to the result.
    The expression must give a float column with nulls where the value is
    missing.
    """

    name: str
    inputs: tuple[str, ...]
    expr: object = field(compare=False, hash=False)


def _as_statistics(covariates, ratio: bool) -> tuple[Statistic, ...]:
    """Normalise the user's covariates to Statistics.

    A string is a column (its mean). A 2-tuple on a Ratio metric is the
    pre-period (numerator, denominator) pair; a list holds several of either.
    """
    if covariates is None:
        return ()
    if isinstance(covariates, str):
        return (Statistic(covariates),)
    if isinstance(covariates, Statistic):
        return (covariates,)
    items = list(covariates)
    if ratio and len(items) == 2 and all(isinstance(c, str) for c in items):
        return (Statistic(items[0], items[1]),)
    out = []
    for c in items:
        if isinstance(c, str):
            out.append(Statistic(c))
        elif isinstance(c, Statistic):
            out.append(c)
        elif isinstance(c, (tuple, list)) and len(c) == 2 and all(isinstance(x, str) for x in c):
            out.append(Statistic(c[0], c[1]))
        else:
            raise AbkitError(
                f"covariate {c!r} not understood; give a column name, or a "
                "(numerator, denominator) pair of column names"
            )
    return tuple(out)


@dataclass(frozen=True, init=False)
class Metric:
    """Base of all metrics. Use :class:`Mean`, :class:`Proportion` or :class:`Ratio`."""

    name: str
    target: Statistic
    covariates: tuple[Statistic, ...]
    method: str | None
    better: str
    dropna: bool
    kind: str = "metric"
    derived: tuple[Derived, ...] = ()

    def _init(self, name, target, covariates, method, better, dropna, derived=()):
        if better not in ("higher", "lower"):
            raise AbkitError(f"metric '{name}': better={better!r} must be 'higher' or 'lower'")
        if method not in _METHODS:
            raise AbkitError(f"metric '{name}': method={method!r} must be one of 'cuped', 'lin' or None")
        if method is not None and not covariates:
            raise AbkitError(f"metric '{name}': method={method!r} needs covariates")
        if covariates and method is None:
            method = "cuped" if len(covariates) == 1 else "lin"
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "covariates", covariates)
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "better", better)
        object.__setattr__(self, "dropna", bool(dropna))
        object.__setattr__(self, "derived", tuple(derived))

    @property
    def columns(self) -> tuple[str, ...]:
        """Every data column the metric reads, without repeats, in order."""
        seen: dict[str, None] = {}
        for s in (self.target, *self.covariates):
            for c in s.columns:
                seen[c] = None
        return tuple(seen)

    @property
    def source_columns(self) -> tuple[str, ...]:
        """The raw data columns the metric reads (inputs of derived columns included)."""
        made = {d.name: d for d in self.derived}
        seen: dict[str, None] = {}
        for c in self.columns:
            for raw in (made[c].inputs if c in made else (c,)):
                seen[raw] = None
        return tuple(seen)

    @property
    def method_label(self) -> str:
        base = {"mean": "Welch", "proportion": "Welch", "ratio": "delta"}[self.kind]
        if self.method == "cuped":
            return f"{base} + CUPED"
        if self.method == "lin":
            return f"{base} + regression adjustment (Lin)"
        return base

    def _cov_repr(self) -> str:
        if not self.covariates:
            return ""
        word = "CUPED" if self.method == "cuped" else "regression adjustment"
        return f", {word} on " + ", ".join(str(c) for c in self.covariates)


class Mean(Metric):
    """Difference in means of a unit-level column (e.g. refund amount per buyer).

    Parameters
    ----------
    column : the unit-level outcome.
    covariate : a pre-period column for CUPED (Deng et al. 2013), or a list of
        columns for regression adjustment with treatment interactions
        (Lin 2013).
    name : the name shown in results (default: the column).
    better : ``"higher"`` or ``"lower"``: which direction is good news.
    dropna : drop units with a missing value in any of the metric's columns
        (they are counted and reported) instead of raising an error.
    method : force ``"cuped"`` (one pooled slope) or ``"lin"`` (slopes per arm).
    """

    kind = "mean"

    def __init__(self, column: str, covariate: str | Sequence[str] | None = None, name: str | None = None,
                 *, better: str = "higher", dropna: bool = False, method: str | None = None):
        self._init(name or column, Statistic(column), _as_statistics(covariate, False), method, better, dropna)

    def __repr__(self) -> str:
        return f"Mean({self.name!r}: {self.target}{self._cov_repr()})"


class Proportion(Mean):
    """Difference in a proportion: the mean of a 0/1 column (e.g. repeat purchase).

    The arithmetic is that of :class:`Mean`; the column is checked to hold
    only 0 and 1.
    """

    kind = "proportion"

    def __repr__(self) -> str:
        return f"Proportion({self.name!r}: {self.target}{self._cov_repr()})"


class Ratio(Metric):
    """A ratio of two per-unit sums, e.g. refund rate = refunds / orders per buyer.

    The unit of randomization (the buyer) is not the unit of the ratio (the
    order), so the variance comes from the delta method on the two per-unit
    means (Deng, Knoblich and Lu 2018, "Applying the Delta Method in Metric
    Analytics", KDD).

    Parameters
    ----------
    numerator, denominator : unit-level columns.
    covariates : the pre-period ``(numerator, denominator)`` pair for CUPED
        on the ratio, or a list of columns / pairs for regression adjustment.
    """

    kind = "ratio"

    def __init__(self, numerator: str, denominator: str, covariates=None, name: str | None = None,
                 *, better: str = "higher", dropna: bool = False, method: str | None = None):
        self._init(name or f"{numerator}/{denominator}", Statistic(numerator, denominator),
                   _as_statistics(covariates, True), method, better, dropna)

    def __repr__(self) -> str:
        return f"Ratio({self.name!r}: {self.target}{self._cov_repr()})"
