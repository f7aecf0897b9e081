"""Metric definitions: what to measure, in the analyst's words.

A metric is a *target statistic* of unit-level columns (a mean, or a ratio
of two means) plus optional *covariate statistics* for variance reduction.
Metrics only declare what they need; :mod:`abkit.sources` aggregates the
moments of all requested metrics in one pass and :mod:`abkit.stats.two_sample`
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

__all__ = ["Metric", "Mean", "Proportion", "Ratio", "NPS", "Quantile", "TimeToEvent", "Statistic", "Derived"]

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
    reads: tuple[str, ...] = ()  # other columns the expression reads, not as numbers (e.g. a date: windows)


def _spellings(items, ratio: bool) -> str:
    """The two unambiguous spellings of covariates ``items`` (two column names) on a Ratio or a Mean."""
    a, b = (repr(x) for x in items)
    as_ratio = f"({a}, {b})" if ratio else f"[({a}, {b})]"
    as_two = f"[({a},), ({b},)]" if ratio else f"[{a}, {b}]"
    return (
        f"write covariates={as_ratio} for one covariate, the pre-period ratio {items[0]} / {items[1]}, "
        f"or covariates={as_two} for two covariates (the mean of each)"
    )


def _as_statistics(covariates, ratio: bool, owner: str = "metric") -> tuple[Statistic, ...]:
    """Normalise the user's covariates to Statistics: one spelling per meaning.

    * a string: one covariate, the column's mean (``"pre_amount"``);
    * a tuple: one covariate statistic: ``("num", "den")`` the ratio of
      their means (e.g. the pre-period refund rate), ``("x",)`` the mean of x;
    * a list: several covariates, each a string or a tuple as above (a
      two-item list inside the list is a ratio too: YAML has no tuples).

    Two spellings used to mean different things on different metrics and
    are refused with both correct spellings: a list of exactly two strings
    on a :class:`Ratio` (it meant the pre-period ratio; on a Mean, two
    covariates) and a tuple of exactly two strings on a :class:`Mean` (it
    meant two covariates; on a Ratio, the pre-period ratio). Every other
    spelling keeps its meaning.
    """
    if covariates is None:
        return ()
    if isinstance(covariates, str):
        return (Statistic(covariates),)
    if isinstance(covariates, Statistic):
        return (covariates,)
    items = list(covariates)
    pair = len(items) == 2 and all(isinstance(c, str) for c in items)
    if isinstance(covariates, tuple) and pair:
        if ratio:
            return (Statistic(items[0], items[1]),)
        raise AbkitError(
            f"{owner}: covariates={covariates!r} is ambiguous (a tuple of two columns is one covariate, "
            f"their ratio; on a Mean it used to mean two covariates); {_spellings(items, False)}"
        )
    if isinstance(covariates, tuple) and len(items) == 1 and isinstance(items[0], str):
        return (Statistic(items[0]),)
    if ratio and pair:
        raise AbkitError(
            f"{owner}: covariates={covariates!r} is ambiguous (a list holds several covariates, but on "
            f"a Ratio a list of two columns used to mean their ratio); {_spellings(items, True)}"
        )
    out = []
    for c in items:
        if isinstance(c, str):
            out.append(Statistic(c))
        elif isinstance(c, Statistic):
            out.append(c)
        elif isinstance(c, (tuple, list)) and len(c) == 2 and all(isinstance(x, str) for x in c):
            out.append(Statistic(c[0], c[1]))
        elif isinstance(c, tuple) and len(c) == 1 and isinstance(c[0], str):
            out.append(Statistic(c[0]))
        else:
            raise AbkitError(
                f"{owner}: covariate {c!r} not understood; give a column name, or a "
                "(numerator, denominator) pair of column names"
            )
    return tuple(out)


def _alias(owner: str, keyword: str, value, alias: str, alias_value):
    """``value``, or ``alias_value`` when the covariates were given under the other spelling (not both)."""
    if alias_value is None:
        return value
    if value is not None:
        raise AbkitError(
            f"{owner}: covariates given twice, as {keyword}={value!r} and {alias}={alias_value!r}; "
            f"give them once, as {keyword}="
        )
    return alias_value


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
    # Kind-specific settings as sorted (key, value) pairs (a Quantile's q,
    # a Mean's winsorizing cap): compared and hashed with the rest.
    options: tuple = ()

    def _init(self, name, target, covariates, method, better, dropna, derived=(), options=()):
        if better not in ("higher", "lower"):
            raise AbkitError(f"metric '{name}': better={better!r} must be 'higher' or 'lower'")
        if method not in _METHODS:
            raise AbkitError(f"metric '{name}': method={method!r} must be one of 'cuped', 'lin' or None")
        if method is not None and not covariates:
            raise AbkitError(f"metric '{name}': method={method!r} needs covariates")
        if covariates and method is None:
            method = "cuped" if len(covariates) == 1 else "lin"
            if method == "lin":  # chosen, not asked for: method_label says so
                options = {**dict(options), "lin_by_default": True}
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "covariates", covariates)
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "better", better)
        object.__setattr__(self, "dropna", bool(dropna))
        object.__setattr__(self, "derived", tuple(derived))
        object.__setattr__(self, "options", tuple(sorted(dict(options).items())))

    def option(self, key: str, default=None):
        """A kind-specific setting (see :attr:`options`), or ``default``."""
        return dict(self.options).get(key, default)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every data column the metric reads, without repeats, in order."""
        seen: dict[str, None] = {}
        for s in (self.target, *self.covariates):
            for c in s.columns:
                seen[c] = None
        return tuple(seen)

    @property
    def covariance_blocks(self) -> tuple[tuple[str, ...], ...]:
        """The column sets whose co-moments the estimator reads: every pair inside each set.

        The delta method, CUPED and Lin (:func:`abkit.stats.two_sample.compare`) need
        the joint covariance of the target and covariate statistics, i.e. of
        all of :attr:`columns` (for a ratio with CUPED the 4 x 4 block of
        num, den, pre_num, pre_den). The aggregation holds the union of the
        metrics' pairs and nothing more (:mod:`abkit.moments`), so its cost
        grows linearly with the number of metrics.
        """
        return (self.columns,)

    @property
    def nonnegative_columns(self) -> tuple[tuple[str, str], ...]:
        """``(column, role)`` pairs of the columns that must not hold negative values.

        Every ratio denominator (role ``"denominator"``: orders, responses,
        any count or exposure), in the target and in the covariates; and, for
        a :class:`Ratio` declared ``nonnegative=True`` (the default), every
        ratio numerator (role ``"numerator"``: refunds, contacts, returns).
        Means and proportions are not checked (amounts may be negative;
        proportions are checked to be 0/1). :func:`abkit.analyze` raises
        :class:`abkit.DataError` naming the column and its smallest value.
        """
        out: dict[str, str] = {}
        for s in (self.target, *self.covariates):
            if s.denominator is not None:
                out[s.denominator] = "denominator"
        if self.option("nonnegative", False):
            for s in (self.target, *self.covariates):
                if s.denominator is not None:
                    out.setdefault(s.numerator, "numerator")
        return tuple(out.items())

    @property
    def source_columns(self) -> tuple[str, ...]:
        """The raw data columns the metric reads (inputs of derived columns included)."""
        made = {d.name: d for d in self.derived}
        seen: dict[str, None] = {}
        for c in self.columns:
            for raw in made[c].inputs if c in made else (c,):
                seen[raw] = None
        return tuple(seen)

    @property
    def method_label(self) -> str:
        base = {"mean": "Welch", "proportion": "Welch", "ratio": "delta", "nps": "Welch (multinomial)"}[self.kind]
        if self.method == "cuped":
            base = f"{base} + CUPED"
        elif self.method == "lin":
            if self.option("lin_by_default"):
                base = (
                    f"{base} + regression adjustment (Lin: slopes per arm, the default for "
                    f"{len(self.covariates)} covariates; method='cuped' for one pooled slope)"
                )
            else:
                base = f"{base} + regression adjustment (Lin)"
        cap = self.option("cap")
        if cap is not None:
            level = self.option("winsorize")
            source = self.option("cap_from")
            where = f" (p{level * 100:g} of {source})" if level is not None else ""
            base = f"{base}, capped at {cap:.6g}{where}"
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
        (Lin 2013; the default with two or more covariates, and ``method``
        says so; ``method="cuped"`` keeps one pooled slope). A tuple
        ``("num", "den")`` is one covariate, the ratio of the two columns'
        means; in a list, ``["pre_amount", ("pre_refunds", "pre_orders")]``.
        A bare tuple of two columns is refused as ambiguous (it used to mean
        two covariates). ``covariates=`` is accepted as another spelling (as
        in :class:`Ratio`).
    name : the name shown in results (default: the column).
    better : ``"higher"`` or ``"lower"``: which direction is good news.
    dropna : drop units with a missing value in any of the metric's columns
        (they are counted and reported) instead of raising an error.
    method : force ``"cuped"`` (one pooled slope) or ``"lin"`` (slopes per arm).
    winsorize : cap the outcome at this quantile (e.g. ``0.99``) of ``cap_from``
        before analysis, for heavy-tailed amounts. The cap is computed from
        the data by :func:`abkit.analyze` (one quantile pass) and reported in
        the result's ``method``.
    cap : cap the outcome at this fixed value instead (no pass over the data;
        use it to aggregate moments day by day with one cap).
    cap_from : the column whose quantile is the cap: default the CUPED
        covariate when there is exactly one covariate column (the pre-period:
        the cap is then independent of treatment), else the outcome itself,
        pooled over arms.

    Winsorizing changes the estimand: the effect is on ``min(y, cap)``, not
    on ``y``. It trades a bias (the part of the effect above the cap is
    lost; nothing is lost if treatment does not move the top percentile)
    for a smaller variance (Kohavi, Tang and Xu 2020, "Trustworthy Online
    Controlled Experiments", ch. 22). With one covariate column the
    covariate is capped at the same value, so CUPED compares like with
    like; with several covariates only the outcome is capped. A cap taken
    from the pre-period is fixed before treatment, so the test stays exact;
    a cap from the pooled post-period data moves a little with treatment
    (a second-order effect, symmetric in the arms).
    """

    kind = "mean"

    def __init__(
        self,
        column: str,
        covariate: str | Sequence[str | Statistic] | None = None,
        name: str | None = None,
        *,
        better: str = "higher",
        dropna: bool = False,
        method: str | None = None,
        winsorize: float | None = None,
        cap: float | None = None,
        cap_from: str | None = None,
        covariates: str | Sequence[str | Statistic] | None = None,
    ):
        owner = f"{type(self).__name__} '{name or column}'"
        covariate = _alias(owner, "covariate", covariate, "covariates", covariates)
        covariate_stats = _as_statistics(covariate, False, owner)
        target, derived, options = Statistic(column), (), ()
        if winsorize is not None or cap is not None or cap_from is not None:
            target, covariate_stats, derived, options = _capping(
                name or column, column, covariate_stats, winsorize, cap, cap_from
            )
        self._init(name or column, target, covariate_stats, method, better, dropna, derived, options)

    @property
    def needs_cap(self) -> bool:
        """True when the cap is a quantile of the data that has not been computed yet."""
        return self.option("winsorize") is not None and self.option("cap") is None

    def with_cap(self, cap: float) -> Mean:
        """This metric with its winsorizing cap fixed at ``cap`` (what :func:`abkit.analyze` does)."""
        if not self.needs_cap:
            raise AbkitError(f"metric '{self.name}' has no cap to compute (winsorize=None or cap already set)")
        new = object.__new__(type(self))
        Mean.__init__(
            new,
            self.option("column"),
            list(self.covariates),
            self.name,
            better=self.better,
            dropna=self.dropna,
            method=None if self.option("lin_by_default") else self.method,
            winsorize=self.option("winsorize"),
            cap=cap,
            cap_from=self.option("cap_from"),
        )
        return new

    def _cap_repr(self) -> str:
        if self.option("cap") is not None:
            return f", capped at {self.option('cap'):.6g}"
        if self.needs_cap:
            return f", capped at p{self.option('winsorize') * 100:g} of {self.option('cap_from')}"
        return ""

    def __repr__(self) -> str:
        target = self.option("column", self.target)
        return f"Mean({self.name!r}: {target}{self._cov_repr()}{self._cap_repr()})"


def _capped_column(column: str, cap: float) -> Derived:
    """``min(x, cap)`` as a narwhals expression; missing values (null or NaN) stay missing."""
    import narwhals as nw

    x = nw.col(column)
    return Derived(f"min({column}, {cap:.10g})", (column,), nw.when(x > cap).then(float(cap)).otherwise(x))


def _capping(name, column, covariates, winsorize, cap, cap_from):
    """Target, covariates, derived columns and options of a capped (winsorized) Mean."""
    if winsorize is not None:
        if isinstance(winsorize, bool) or not isinstance(winsorize, (int, float)) or not 0.5 < winsorize < 1.0:
            raise AbkitError(
                f"metric '{name}': winsorize={winsorize!r} must be a quantile level between "
                "0.5 and 1 (e.g. 0.99 caps at the 99th percentile)"
            )
        winsorize = float(winsorize)
    if cap is not None:
        if isinstance(cap, bool) or not isinstance(cap, (int, float, np.floating, np.integer)) or not np.isfinite(cap):
            raise AbkitError(f"metric '{name}': cap={cap!r} must be a finite number")
        cap = float(cap)
    one_column = len(covariates) == 1 and covariates[0].denominator is None
    if cap_from is None:
        cap_from = covariates[0].numerator if one_column else column
    elif winsorize is None:
        raise AbkitError(f"metric '{name}': cap_from={cap_from!r} needs winsorize= (the quantile level)")
    options = {"column": column, "winsorize": winsorize, "cap_from": cap_from if winsorize is not None else None}
    if cap is None:
        return Statistic(column), covariates, (), options
    options["cap"] = cap
    target = _capped_column(column, cap)
    derived = [target]
    if one_column:
        capped_cov = _capped_column(covariates[0].numerator, cap)
        derived.append(capped_cov)
        covariates = (Statistic(capped_cov.name),)
    return Statistic(target.name), covariates, tuple(derived), options


class Proportion(Mean):
    """Difference in a proportion: the mean of a 0/1 column (e.g. repeat purchase).

    The arithmetic is that of :class:`Mean`; the column is checked to hold
    only 0 and 1.
    """

    kind = "proportion"

    def __repr__(self) -> str:
        return f"Proportion({self.name!r}: {self.target}{self._cov_repr()})"


def _nps_score(column: str) -> Derived:
    """+100 promoter (9-10), -100 detractor (0-6), 0 passive (7-8); missing or out of 0-10 -> null."""
    import narwhals as nw

    x = nw.col(column)
    expr = (
        nw.when((x >= 9) & (x <= 10))
        .then(100.0)
        .when((x >= 0) & (x <= 6))
        .then(-100.0)
        .when((x > 6) & (x < 9))
        .then(0.0)
    )
    return Derived(f"nps({column})", (column,), expr)


def _nps_covariates(column: str) -> tuple[Derived, Derived]:
    """Pre-period NPS as two never-missing covariates: the score (0 if not surveyed) and 'surveyed'."""
    import narwhals as nw

    x = nw.col(column)
    valid = (x >= 0) & (x <= 10)
    score = nw.when(valid & (x >= 9)).then(100.0).when(valid & (x <= 6)).then(-100.0).otherwise(0.0)
    return (
        Derived(f"nps({column}) or 0", (column,), score),
        Derived(f"surveyed({column})", (column,), nw.when(valid).then(1.0).otherwise(0.0)),
    )


class NPS(Mean):
    """Net promoter score: % promoters (9-10) minus % detractors (0-6), in points.

    NPS is the mean of the per-respondent score ``d = +100`` (promoter),
    ``-100`` (detractor), ``0`` (passive), so the effect, its CI and the
    CUPED adjustment are those of a :class:`Mean` of ``d`` (a
    :class:`Derived` column: one narwhals expression, pushed down to every
    engine). Results are in NPS *points* (``NPS = 32`` means 32% more
    promoters than detractors; an effect of ``+1.5`` is 1.5 points). The
    variance of ``mean(d)`` is the multinomial delta-method variance

        Var(NPS) = 100^2 (p_p + p_d - (p_p - p_d)^2) / n

    (``p_p``, ``p_d`` the promoter and detractor shares among the ``n``
    respondents; abkit's sample variance has the ``n / (n - 1)`` factor).

    Parameters
    ----------
    column : the 0-10 score; missing for buyers who were not surveyed.
    covariate : the pre-period score column, for CUPED. It enters as two
        covariates that are never missing, the pre-period score (0 when not
        surveyed) and a "surveyed in the pre-period" indicator, so buyers
        without a pre-period answer keep their post-period answer.
        ``covariates=`` is accepted as another spelling.
    dropna : default True: buyers without a (valid 0-10) score are not
        respondents; they are dropped and counted. A score outside 0-10
        counts as missing.
    """

    kind = "nps"

    def __init__(
        self,
        column: str,
        covariate: str | None = None,
        name: str | None = None,
        *,
        better: str = "higher",
        dropna: bool = True,
        method: str | None = None,
        covariates: str | None = None,
    ):
        covariate = _alias(f"NPS '{name or column}'", "covariate", covariate, "covariates", covariates)
        score = _nps_score(column)
        derived: list = [score]
        covariate_stats: tuple[Statistic, ...] = ()
        if covariate is not None:
            if not isinstance(covariate, str):
                raise AbkitError(
                    f"NPS '{name or column}': covariate={covariate!r} must be the pre-period score column (one name)"
                )
            pre = _nps_covariates(covariate)
            derived += list(pre)
            covariate_stats = tuple(Statistic(d.name) for d in pre)
            method = method or "cuped"
        self._init(
            name or column, Statistic(score.name), covariate_stats, method, better, dropna, derived, {"column": column}
        )

    def __repr__(self) -> str:
        cov = f", CUPED on pre-period score {self.derived[1].inputs[0]}" if self.covariates else ""
        return f"NPS({self.name!r}: {self.option('column')}{cov})"


class Quantile(Metric):
    """Treatment effect on a quantile (p50, p90) of a column, e.g. time to refund.

    Quantiles do not come from moments: :func:`abkit.analyze` reads the
    metric's columns and uses :func:`abkit.stats.quantile_inference.quantile_delta`
    (the cluster-aware order-statistic delta method of Deng, Knoblich and Lu
    2018) or a bootstrap over units. The relative effect is ``Q_t / Q_c - 1``.

    Parameters
    ----------
    column : the values (one per row).
    q : the quantile level, e.g. ``0.5`` or ``0.9``.
    unit : when the rows are not the randomization units (refund-level rows,
        buyer-level randomization), the column naming each row's unit; the
        variance then accounts for the correlation of rows within a unit.
    method : ``"delta"`` (default) or ``"bootstrap"`` (resample units; ``n_boot``
        draws, reproducible with ``seed``).
    dropna : drop rows with a missing value (counted) instead of raising.
    """

    kind = "quantile"

    def __init__(
        self,
        column: str,
        q: float = 0.5,
        name: str | None = None,
        *,
        unit: str | None = None,
        better: str = "higher",
        dropna: bool = False,
        method: str = "delta",
        n_boot: int = 2000,
        seed: int | None = 0,
    ):
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0.0 < q < 1.0:
            raise AbkitError(
                f"Quantile '{name or column}': q={q!r} must be strictly between 0 and 1 "
                "(e.g. 0.5 for the median, 0.9 for p90)"
            )
        if method not in ("delta", "bootstrap"):
            raise AbkitError(f"Quantile '{name or column}': method={method!r} must be 'delta' or 'bootstrap'")
        if unit is not None and unit == column:
            raise AbkitError(
                f"Quantile '{name or column}': unit={unit!r} is the value column; give the "
                "column naming each row's randomization unit"
            )
        self._init(
            name or f"{column} p{float(q) * 100:g}",
            Statistic(column),
            (),
            None,
            better,
            dropna,
            (),
            {"q": float(q), "unit": unit, "quantile_method": method, "n_boot": int(n_boot), "seed": seed},
        )

    @property
    def q(self) -> float:
        return self.option("q")

    @property
    def unit(self) -> str | None:
        return self.option("unit")

    @property
    def column(self) -> str:
        return self.target.numerator

    @property
    def method_label(self) -> str:
        where = f" by {self.unit}" if self.unit else ""
        if self.option("quantile_method") == "bootstrap":
            return f"quantile, bootstrap{where} (B={self.option('n_boot')})"
        return f"quantile, {'cluster ' if self.unit else ''}delta method (order statistics)"

    def __repr__(self) -> str:
        unit = f", rows clustered by {self.unit}" if self.unit else ""
        return f"Quantile({self.name!r}: p{self.q * 100:g} of {self.column}{unit})"


class Ratio(Metric):
    """A ratio of two per-unit sums, e.g. refund rate = refunds / orders per buyer.

    The unit of randomization (the buyer) is not the unit of the ratio (the
    order), so the variance comes from the delta method on the two per-unit
    means (Deng, Knoblich and Lu 2018, "Applying the Delta Method in Metric
    Analytics", KDD).

    Parameters
    ----------
    numerator, denominator : unit-level columns.
    covariates : the pre-period ``(numerator, denominator)`` tuple for CUPED
        on the ratio, or a list of columns / tuples for regression adjustment
        (``[("pre_refunds", "pre_orders"), "pre_contacts"]``). A list of
        exactly two column names is refused as ambiguous (it used to mean
        their ratio; a list is several covariates): write the tuple for the
        ratio, or ``[("a",), ("b",)]`` for two covariates. ``covariate=`` is
        accepted as another spelling (as in :class:`Mean`).
    nonnegative : the numerators are counts or amounts that cannot be
        negative (default True): a negative value is an error naming the
        column. Pass False for a numerator that may be negative (a net
        amount). Denominators are always checked.
    """

    kind = "ratio"

    def __init__(
        self,
        numerator: str,
        denominator: str,
        covariates=None,
        name: str | None = None,
        *,
        better: str = "higher",
        dropna: bool = False,
        method: str | None = None,
        nonnegative: bool = True,
        covariate=None,
    ):
        covariates = _alias(
            f"Ratio '{name or f'{numerator}/{denominator}'}'", "covariates", covariates, "covariate", covariate
        )
        if not isinstance(nonnegative, bool):
            raise AbkitError(
                f"Ratio '{name or f'{numerator}/{denominator}'}': nonnegative={nonnegative!r} must be True or False"
            )
        self._init(
            name or f"{numerator}/{denominator}",
            Statistic(numerator, denominator),
            _as_statistics(covariates, True, f"Ratio '{name or f'{numerator}/{denominator}'}'"),
            method,
            better,
            dropna,
            (),
            {"nonnegative": nonnegative},
        )

    def __repr__(self) -> str:
        return f"Ratio({self.name!r}: {self.target}{self._cov_repr()})"


# ---------------------------------------------------------------- time to event (issue 17)
_SECONDS = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0, "days": 86400.0, "weeks": 604800.0}


def _epoch_seconds(x):
    """Seconds since 1970-01-01 of a timestamp expression, from its calendar fields (proleptic Gregorian).

    Every engine narwhals drives has year, day-of-year, hour, minute, second
    and microsecond, not all have ``total_seconds`` (Spark): days before the
    year are ``365 (Y - 1970)`` plus the leap days of 1970..Y-1,
    ``L(Y - 1) - L(1969)`` with ``L(y) = y // 4 - y // 100 + y // 400``.
    Integer arithmetic (Int64), exact to the microsecond.
    """
    import narwhals as nw

    year = x.dt.year().cast(nw.Int64)
    before = year - 1
    days = (
        365 * (year - 1970)
        + (before // 4 - before // 100 + before // 400)
        - 477
        + x.dt.ordinal_day().cast(nw.Int64)
        - 1
    )
    seconds = (
        days * 86400
        + x.dt.hour().cast(nw.Int64) * 3600
        + x.dt.minute().cast(nw.Int64) * 60
        + x.dt.second().cast(nw.Int64)
    )
    return seconds.cast(nw.Float64) + x.dt.microsecond().cast(nw.Float64) / 1e6


def _positive(owner: str, key: str, value, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not (np.isfinite(value) and value > 0)
    ):
        raise AbkitError(f"{owner}: {key}={value!r} must be a positive number")
    return float(value)


class TimeToEvent(Metric):
    """Time to an event with censoring (time to refund, to resolve a contact): every unit stays in.

    A unit whose event has not happened by the end of its observation is
    *censored* there, not dropped. The metric is the **restricted mean time
    to event up to** ``horizon``, ``E[min(T, horizon)]``, the area under the
    arm's Kaplan-Meier curve (Royston and Parmar 2013): in
    :func:`abkit.analyze` ``control_value`` / ``treatment_value`` are the arms'
    restricted means and ``effect`` their difference. The other effects
    (ratio, share with the event by a time, medians, the curves) are in
    :func:`abkit.time_to_event.analyze_time_to_event`. Formulas:
    :mod:`abkit.stats.survival`; data path: :mod:`abkit.time_to_event`.

    Parameters
    ----------
    duration : column of observed times: time to the event, or to the end
        of observation for units without it (>= 0, in ``time_unit``).
    event : column of 0/1 (or boolean): 1 when the event was observed.
    horizon : the time up to which to average (e.g. ``30`` days); required.
        Every arm needs follow-up up to it (or a curve that reached 0).
    name, better : as for every metric; ``better="lower"`` (the default)
        means sooner is better (refunds, resolutions).
    covariate : pre-period column(s) for CUPED (one) or Lin (several) on
        the pseudo-observations (``covariates=`` is another spelling).
    resolution : time bins (e.g. ``1/24`` day) for engines (DuckDB, Spark,
        files): times are rounded up to a multiple of it and only counts per
        arm x bin come back. ``None``: exact times (in an engine, one group
        per distinct time). A ``horizon`` must be a multiple of it.
    unit : when rows are events (refunds) of randomized units (buyers), the
        unit column: variances are clustered by unit (pseudo-observations are
        summed per unit; covariates are averaged per unit).
    dropna : drop (and count) rows with a missing duration, event or
        covariate instead of raising.
    time_unit : the unit of the times, in words (``"days"``, ``"hours"``).

    Build it from timestamps with :meth:`from_timestamps`.
    """

    kind = "time_to_event"

    def __init__(
        self,
        duration: str,
        event: str,
        horizon: float | None = None,
        name: str | None = None,
        *,
        better: str = "lower",
        covariate=None,
        covariates=None,
        method: str | None = None,
        resolution: float | None = None,
        unit: str | None = None,
        dropna: bool = False,
        time_unit: str = "days",
        _derived: tuple = (),
    ):
        label = name or f"{duration}"
        owner = f"TimeToEvent '{label}'"
        if horizon is None:
            raise AbkitError(
                f"{owner}: horizon= is required: the time up to which the restricted mean is taken "
                "(e.g. horizon=30 for the mean time to event within the first 30 days)"
            )
        horizon = _positive(owner, "horizon", horizon)
        resolution = _positive(owner, "resolution", resolution, allow_none=True)
        if resolution is not None:
            bins = horizon / resolution
            if abs(bins - round(bins)) > 1e-9 * max(1.0, bins):
                raise AbkitError(
                    f"{owner}: horizon={horizon:g} is not a multiple of resolution={resolution:g}; "
                    "choose a horizon on the bins (e.g. 30 days with resolution 1/24)"
                )
        if duration == event:
            raise AbkitError(
                f"{owner}: duration and event are the same column '{duration}'; give the observed "
                "time and the 0/1 event indicator"
            )
        if not isinstance(time_unit, str) or not time_unit.strip():
            raise AbkitError(f"{owner}: time_unit={time_unit!r} must be a word such as 'days' or 'hours'")
        covariate = _alias(owner, "covariate", covariate, "covariates", covariates)
        covs = _as_statistics(covariate, False)
        if any(c.denominator is not None for c in covs):
            raise AbkitError(f"{owner}: covariates must be columns (CUPED on the pseudo-observations), not ratios")
        if unit is not None and unit in (duration, event, *(c.numerator for c in covs)):
            raise AbkitError(
                f"{owner}: unit={unit!r} is also a metric column; give the column naming each "
                "row's randomization unit (e.g. buyer_id)"
            )
        self._init(
            label,
            Statistic(event),
            covs,
            method,
            better,
            dropna,
            _derived,
            {
                "duration": duration,
                "event": event,
                "horizon": horizon,
                "resolution": resolution,
                "unit": unit,
                "time_unit": time_unit.strip(),
            },
        )

    @classmethod
    def from_timestamps(
        cls,
        start: str,
        end: str,
        data_end,
        horizon: float | None = None,
        name: str | None = None,
        *,
        time_unit: str = "days",
        **kwargs,
    ) -> TimeToEvent:
        """The metric from a start timestamp (exposure, return drop-off) and an event timestamp.

        ``end`` is missing while the event has not happened. ``data_end`` (a
        datetime, date or ISO string) is when the data was read: units
        without an event by then, and events stamped after it, are censored
        at ``data_end`` (a re-read "as of" an earlier date censors there).
        Units that left observation earlier (an account closed) need their
        own end: give ``duration`` and ``event`` columns instead. Durations are ``(min(end, data_end) - start)`` in
        ``time_unit`` (``seconds`` .. ``weeks``), computed by one narwhals
        expression in every engine (from the timestamps' calendar fields: naive
        timestamps, or a Spark session in UTC, so no daylight-saving hour is
        gained or lost). Other keywords as for the constructor.
        """
        import datetime as _dt

        import narwhals as nw
        import pandas as pd

        owner = f"TimeToEvent '{name or end}'"
        if time_unit not in _SECONDS:
            raise AbkitError(f"{owner}: time_unit={time_unit!r} must be one of {', '.join(_SECONDS)} for timestamps")
        try:
            stamp = pd.Timestamp(data_end)
        except (TypeError, ValueError):
            stamp = pd.NaT
        if pd.isna(stamp):
            raise AbkitError(f"{owner}: data_end={data_end!r} must be a date or datetime (when the data was read)")
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        until = _dt.datetime(
            stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second, stamp.microsecond
        )
        s, e = nw.col(start), nw.col(end)
        open_ = e.is_null() | (e > nw.lit(until))
        stop = nw.when(open_).then(nw.lit(until)).otherwise(e)
        duration = Derived(
            f"{time_unit} from {start} to {end}",
            (start, end),
            (_epoch_seconds(stop) - _epoch_seconds(s)) / _SECONDS[time_unit],
        )
        event = Derived(f"{end} by {stamp.isoformat()}", (end,), nw.when(open_).then(0.0).otherwise(1.0))
        metric = cls(
            duration.name,
            event.name,
            horizon,
            name or f"time to {end}",
            time_unit=time_unit,
            _derived=(duration, event),
            **kwargs,
        )
        object.__setattr__(
            metric,
            "options",
            tuple(sorted({**dict(metric.options), "start": start, "end": end, "data_end": stamp.isoformat()}.items())),
        )
        return metric

    @property
    def columns(self) -> tuple[str, ...]:
        """The event and duration columns (raw or derived), then the covariates."""
        return tuple(dict.fromkeys((self.event, self.duration, *(c.numerator for c in self.covariates))))

    @property
    def duration(self) -> str:
        return self.option("duration")

    @property
    def event(self) -> str:
        return self.option("event")

    @property
    def horizon(self) -> float:
        return self.option("horizon")

    @property
    def resolution(self) -> float | None:
        return self.option("resolution")

    @property
    def unit(self) -> str | None:
        return self.option("unit")

    @property
    def time_unit(self) -> str:
        return self.option("time_unit")

    @property
    def method_label(self) -> str:
        base = f"restricted mean to {self.horizon:g} {self.time_unit} (Kaplan-Meier pseudo-observations)"
        if self.method == "cuped":
            base += " + CUPED"
        elif self.method == "lin":
            base += " + regression adjustment (Lin)"
        if self.unit:
            base += f", clustered by {self.unit}"
        return base

    def __repr__(self) -> str:
        src = (
            f"{self.option('start')} -> {self.option('end')} until {self.option('data_end')}"
            if self.option("start")
            else f"{self.duration}, event {self.event}"
        )
        return (
            f"TimeToEvent({self.name!r}: {src}, restricted mean to {self.horizon:g} {self.time_unit}{self._cov_repr()})"
        )
