"""Moments: the sufficient statistics every A/B estimator works from.

For each group (an arm, or an arm within a segment) and a fixed list of
columns, a :class:`Moments` holds

* ``n``: the number of units,
* ``mean``: the column means,
* ``comoment``: the centred sums of cross-products
  ``C[i, j] = sum_u (x_ui - mean_i) (x_uj - mean_j)``.

Centred co-moments (not raw sums of squares) keep every digit when values
are large: refund totals of 1e12 lose nothing. Two moment sets over
disjoint rows merge exactly with the pairwise update of Chan, Golub and
LeVeque (1979, "Updating formulae and a pairwise algorithm for computing
sample variances"):

    n    = n_a + n_b
    d    = mean_b - mean_a
    mean = mean_a + d * n_b / n
    C    = C_a + C_b + (n_a n_b / n) d d^T

so partitions, files and days can be aggregated separately and added.

A :class:`MomentSet` bundles the moments that a list of metrics needs
(one block for the metrics without missing values, one block per metric
that drops missing rows) and is what :func:`abkit.analyze` consumes.
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .errors import AbkitError, DataError

__all__ = ["Moments", "MomentSet", "BlockKey"]


@dataclass(frozen=True, eq=False)
class Moments:
    """Per-group counts, means and centred co-moments of a set of columns.

    Attributes
    ----------
    groups : tuple of group labels (arm names, or ``(segment, arm)`` tuples).
    columns : tuple of column names, the order of ``mean``'s last axis.
    n : float64 array, shape (G,)
    mean : float64 array, shape (G, k)
    comoment : float64 array, shape (G, k, k)
    dropped : float64 array, shape (G,): rows of the group dropped because
        a column of this block was missing (only for ``dropna`` blocks).
    """

    groups: tuple
    columns: tuple[str, ...]
    n: np.ndarray
    mean: np.ndarray
    comoment: np.ndarray
    dropped: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.dropped is None:
            object.__setattr__(self, "dropped", np.zeros(len(self.groups)))

    # ------------------------------------------------------------------ build
    @classmethod
    def from_arrays(
        cls,
        codes: np.ndarray,
        values: np.ndarray,
        groups: Sequence[Hashable],
        columns: Sequence[str],
        dropped: np.ndarray | None = None,
    ) -> "Moments":
        """Moments of ``values`` (rows x columns, float64) grouped by ``codes``.

        ``codes[i]`` in ``0..len(groups)-1`` is row i's group. One stable
        (radix) sort puts each group's rows together; each group is then
        centred on its own mean and reduced with one symmetric matrix
        product (BLAS), so the work is one pass over the data plus a
        Python loop over groups, never over rows.

        The mean is the corrected two-pass mean (Chan, Golub and LeVeque
        1983): the mean of the centred values, which holds the rounding
        error of the first mean in small numbers, is added back, and the
        co-moment is corrected with it (``C = sum c c^T - n e e^T``). Means
        of values near 1e12 are then right to an ulp of 1e12 whatever the
        number of rows, so effects do not depend on the order of the rows.
        """
        G, k = len(groups), values.shape[1]
        n = np.bincount(codes, minlength=G).astype(np.float64)[:G]
        mean = np.zeros((G, k))
        com = np.zeros((G, k, k))
        if G == 1:
            blocks = [values]
        else:
            order = np.argsort(codes, kind="stable")
            sorted_values = values[order]
            bounds = np.concatenate(([0], np.cumsum(n).astype(np.int64)))
            blocks = [sorted_values[bounds[g]: bounds[g + 1]] for g in range(G)]
        for g, block in enumerate(blocks):
            if len(block) == 0:
                continue
            # column sums as BLAS matrix-vector products (cheaper than mean(axis=0) on row-major blocks)
            ones = np.ones(len(block))
            m = (ones @ block) / len(block)
            centred = block - m
            error = (ones @ centred) / len(block)
            mean[g] = m + error
            com[g] = centred.T @ centred - len(block) * np.outer(error, error)
        if dropped is None:
            dropped = np.zeros(G)
        return cls(tuple(groups), tuple(columns), n, mean, com, np.asarray(dropped, float))

    # ------------------------------------------------------------------ merge
    def merge(self, other: "Moments") -> "Moments":
        """Moments of the union of the rows behind ``self`` and ``other``.

        Groups are aligned by label (a group missing on one side counts as
        empty); the columns must be the same.
        """
        if tuple(self.columns) != tuple(other.columns):
            raise AbkitError(
                f"cannot merge moments of different columns: {list(self.columns)} "
                f"vs {list(other.columns)}; aggregate both with the same metrics"
            )
        mine = self._group_positions
        groups = list(self.groups) + [g for g in other.groups if g not in mine]
        a, b = self._aligned(groups), other._aligned(groups)
        n = a.n + b.n
        safe = np.where(n > 0, n, 1.0)
        d = b.mean - a.mean
        mean = a.mean + d * (b.n / safe)[:, None]
        w = (a.n * b.n / safe)[:, None, None]
        com = a.comoment + b.comoment + w * d[:, :, None] * d[:, None, :]
        return Moments(tuple(groups), self.columns, n, mean, com, a.dropped + b.dropped)

    __add__ = merge

    def _aligned(self, groups: Sequence[Hashable]) -> "Moments":
        if tuple(groups) == self.groups:
            return self
        index = self._group_positions
        G, k = len(groups), len(self.columns)
        n, mean, com, dropped = np.zeros(G), np.zeros((G, k)), np.zeros((G, k, k)), np.zeros(G)
        for j, g in enumerate(groups):
            i = index.get(g)
            if i is not None:
                n[j], mean[j], com[j], dropped[j] = self.n[i], self.mean[i], self.comoment[i], self.dropped[i]
        return Moments(tuple(groups), self.columns, n, mean, com, dropped)

    # ------------------------------------------------------------------ views
    def select(self, groups: Sequence[Hashable] | None = None, columns: Sequence[str] | None = None) -> "Moments":
        """A sub-view: some groups and/or some columns, in the order given."""
        m = self
        if groups is not None:
            missing = [g for g in groups if g not in self._group_positions]
            if missing:
                raise AbkitError(f"group(s) {missing} not in moments; have {list(self.groups)}")
            m = m._aligned(list(groups))
        if columns is not None:
            idx = [m.column_index(c) for c in columns]
            m = Moments(m.groups, tuple(columns), m.n, m.mean[:, idx],
                        m.comoment[:, idx][:, :, idx], m.dropped)
        return m

    def pooled(self, groups: Sequence[Hashable] | None = None, label: Hashable = "pooled") -> "Moments":
        """Merge several groups into one (e.g. all arms of a comparison)."""
        groups = list(self.groups if groups is None else groups)
        out = None
        for g in groups:
            one = self.select([g])
            one = Moments((label,), one.columns, one.n, one.mean, one.comoment, one.dropped)
            out = one if out is None else out.merge(one)
        assert out is not None
        return out

    def column_index(self, column: str) -> int:
        try:
            return self.columns.index(column)
        except ValueError:
            raise AbkitError(f"column '{column}' is not in these moments; have {list(self.columns)}") from None

    @cached_property
    def _group_positions(self) -> dict:
        return {g: i for i, g in enumerate(self.groups)}

    def group_index(self, group: Hashable) -> int:
        try:
            return self._group_positions[group]
        except KeyError:
            raise AbkitError(f"group {group!r} is not in these moments; have {list(self.groups)}") from None

    def covariance(self, group: Hashable, ddof: int = 1) -> np.ndarray:
        """Sample covariance matrix of the columns within one group."""
        g = self.group_index(group)
        return self.comoment[g] / max(self.n[g] - ddof, 1.0)

    def __repr__(self) -> str:
        return (f"Moments(groups={list(self.groups)}, columns={list(self.columns)}, "
                f"n={self.n.astype(int).tolist()})")


# A block is identified by its columns and whether rows with a missing value
# in any of them were dropped (complete cases) before aggregation.
BlockKey = tuple[tuple[str, ...], bool]


@dataclass(frozen=True, eq=False)
class MomentSet:
    """The moments a list of metrics needs, for every arm (and segment).

    ``blocks`` maps a :data:`BlockKey` to its :class:`Moments`. Metrics whose
    columns have no missing values share one block (``dropna=False``); each
    metric declared with ``dropna=True`` has a block of its own, aggregated
    over its complete cases, with the dropped rows counted per group.

    ``rows`` counts every row seen per group (before any drop) and is what
    the sample-ratio-mismatch check uses. MomentSets over disjoint rows add
    up with ``+`` (partitions, days).

    ``integrity`` is the unit-integrity check (:class:`abkit.integrity.Integrity`)
    when the moments were aggregated with ``unit=``, else None. It does not
    survive ``+`` or :meth:`segment`: a unit whose rows sit in two
    partitions cannot be seen from per-partition counts, so a sum of moment
    sets carries no integrity claim (check the combined data instead).
    """

    blocks: dict
    variant: str
    by: tuple[str, ...] = ()
    rows: dict = field(default_factory=dict)
    missing_variant: int = 0
    integrity: object = None

    def block_for(self, columns: Sequence[str], dropna: bool) -> Moments:
        key = (tuple(columns), bool(dropna)) if dropna else None
        if dropna:
            try:
                return self.blocks[key]
            except KeyError:
                raise AbkitError(
                    f"no moments for columns {list(columns)} (dropna=True); "
                    "aggregate the data with the same metrics"
                ) from None
        for (cols, dn), m in self.blocks.items():
            if not dn and all(c in cols for c in columns):
                return m.select(columns=columns)
        raise AbkitError(
            f"no moments for columns {list(columns)}; aggregate the data with the same metrics"
        )

    @property
    def groups(self) -> tuple:
        return tuple(self.rows)

    def merge(self, other: "MomentSet") -> "MomentSet":
        if set(self.blocks) != set(other.blocks) or self.variant != other.variant or self.by != other.by:
            raise AbkitError(
                "cannot merge moment sets built for different metrics, variant or segment columns"
            )
        blocks = {k: self.blocks[k].merge(other.blocks[k]) for k in self.blocks}
        rows = dict(self.rows)
        for g, r in other.rows.items():
            rows[g] = rows.get(g, 0) + r
        return MomentSet(blocks, self.variant, self.by, rows, self.missing_variant + other.missing_variant)

    __add__ = merge

    @cached_property
    def _segment_groups(self) -> dict:
        """Segment value -> its (segment..., arm) group labels, built once."""
        index: dict = {}
        for g in self.rows:
            index.setdefault(g[:-1], []).append(g)
        return index

    def segment(self, value: Hashable) -> "MomentSet":
        """The moments of one segment (``by`` value), with arm names as groups."""
        if not self.by:
            raise DataError("these moments were not aggregated by a segment column (by=None)")
        want = value if isinstance(value, tuple) else (value,)
        arms = self._segment_groups.get(want, [])
        if not arms:
            segs = sorted({g[:-1] if len(g) > 2 else g[0] for g in self.rows}, key=str)
            raise DataError(f"segment {value!r} not found; segments: {segs[:20]}")
        rename = {g: g[-1] for g in arms}
        blocks = {}
        for k, m in self.blocks.items():
            present = [g for g in arms if g in m.groups]
            sub = m.select(groups=present)
            blocks[k] = Moments(tuple(rename[g] for g in present), sub.columns, sub.n,
                                sub.mean, sub.comoment, sub.dropped)
        rows = {rename[g]: self.rows[g] for g in arms}
        return MomentSet(blocks, self.variant, (), rows, 0)

    @property
    def segments(self) -> list:
        seen: dict = {}
        for g in self.rows:
            seen[g[:-1] if len(g) > 2 else g[0]] = True
        return list(seen)

    def __repr__(self) -> str:
        blocks = ", ".join(f"{list(c)}{' dropna' if d else ''}" for c, d in self.blocks)
        return f"MomentSet(variant={self.variant!r}, rows={self.rows}, blocks=[{blocks}])"
