"""Moments: the sufficient statistics every A/B estimator works from.

For each group (an arm, or an arm within a segment) and a fixed list of
columns, a :class:`Moments` holds

* ``n``: the number of units,
* the column means, kept as a per-column **shift** ``K_i`` (one number per
  column, the same for every group) plus per-group **offsets**
  ``mean_i - K_i``: ``mean = shift + offset``;
* the centred co-moments ``C_ij = sum_u (x_ui - mean_i) (x_uj - mean_j)``
  of the **declared column pairs** only.

Only what the metrics need. Each metric declares the column sets whose
covariance its estimator reads (:attr:`abkit.Metric.covariance_blocks`: for
a ratio with CUPED the four columns num, den, pre_num, pre_den). The
moments hold the co-moments of the union of those pairs, not of every pair
of every column: 40 CUPED ratio metrics need about 400 pairs of their 160
columns, not 12,880, so the cost grows linearly with the number of metrics.
Asking for a pair nobody declared raises :class:`abkit.AbkitError` (never a
silent zero): :meth:`Moments.comoment` and :meth:`MomentSet.block_for` check.

Digits far from zero. Centred co-moments (not raw sums of squares) keep
every digit of a variance when values are large (refund totals of 1e12).
The shift does the same for means and effects: a mean near 1e12 is stored
as ``K + offset`` with ``K`` near the data and a small offset that holds
all its digits, and the estimators (:func:`abkit.stats.two_sample.compare`) take
differences of offsets, so an effect on data near 1e12 equals the effect
on the same data shifted to zero to about 1e-15 relative, on every path.

Two moment sets over disjoint rows merge exactly with the pairwise update
of Chan, Golub and LeVeque (1979, "Updating formulae and a pairwise
algorithm for computing sample variances"), pair by pair:

    n     = n_a + n_b
    d     = offset_b - offset_a             (both on the same shift)
    mean  = mean_a + d * n_b / n
    C_ij  = C_a,ij + C_b,ij + (n_a n_b / n) d_i d_j

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

__all__ = ["BlockKey", "MomentSet", "Moments", "declared_pairs"]


def _all_pairs(k: int) -> tuple[tuple[int, int], ...]:
    return tuple((i, j) for i in range(k) for j in range(i, k))


def declared_pairs(columns: Sequence[str], blocks: Sequence[Sequence[str]] | None) -> tuple[tuple[int, int], ...]:
    """The sorted ``(i, j)`` (``i <= j``) index pairs of ``columns`` inside any of ``blocks``.

    ``blocks`` are column sets whose every pair is needed (a metric's
    :attr:`~abkit.Metric.covariance_blocks`); ``None`` means every pair.
    Every column gets at least its own pair ``(i, i)`` (its variance).
    """
    columns = tuple(columns)
    if blocks is None:
        return _all_pairs(len(columns))
    index = {c: i for i, c in enumerate(columns)}
    out = {(i, i) for i in range(len(columns))}
    for block in blocks:
        try:
            idx = sorted({index[c] for c in block})
        except KeyError as exc:
            raise AbkitError(
                f"covariance block {list(block)} names column {exc.args[0]!r}, which is not among "
                f"the aggregated columns {list(columns)}"
            ) from None
        out.update((a, b) for x, a in enumerate(idx) for b in idx[x:])
    return tuple(sorted(out))


def _cliques(pairs: tuple[tuple[int, int], ...], k: int, blocks) -> list[np.ndarray] | None:
    """Column-index sets whose Gram matrices cover ``pairs``; None when one dense product is cheaper."""
    if blocks is None or len(pairs) == k * (k + 1) // 2:
        return None
    sets: list[tuple[int, ...]] = []
    for s in sorted({tuple(sorted(set(b))) for b in blocks}, key=len, reverse=True):
        if not any(set(s) <= set(t) for t in sets):
            sets.append(s)
    # cost per row: a gather and a Gram per set, against one k x k Gram
    if sum(len(s) * (len(s) + 2) for s in sets) >= 0.7 * k * (k + 2):
        return None
    return [np.array(s, dtype=np.intp) for s in sets]


@dataclass(frozen=True, eq=False, init=False)
class Moments:
    """Per-group counts, means and centred co-moments of the declared column pairs.

    Build with dense arrays, ``Moments(groups, columns, n, mean, comoment)``
    (every pair; ``comoment`` of shape (G, k, k)), or sparse,
    ``Moments(groups, columns, n, shift=..., offset=..., pairs=...,
    pair_comoment=...)``.

    Attributes
    ----------
    groups : tuple of group labels (arm names, or ``(segment, arm)`` tuples).
    columns : tuple of column names, the order of the means' last axis.
    n : float64 array, shape (G,)
    shift : float64 array, shape (k,): one reference value per column.
    offset : float64 array, shape (G, k): ``mean - shift`` per group.
    pairs : tuple of ``(i, j)`` column-index pairs (``i <= j``, sorted).
    pair_comoment : float64 array, shape (G, P): ``C_ij`` for each pair.
    dropped : float64 array, shape (G,): rows of the group dropped because
        a column of this block was missing (only for ``dropna`` blocks).

    ``mean`` (G, k) and, when every pair is held, ``comoment`` (G, k, k)
    are derived views.
    """

    groups: tuple
    columns: tuple[str, ...]
    n: np.ndarray
    shift: np.ndarray
    offset: np.ndarray
    pairs: tuple
    pair_comoment: np.ndarray
    dropped: np.ndarray

    def __init__(
        self,
        groups,
        columns,
        n,
        mean=None,
        comoment=None,
        dropped=None,
        *,
        shift=None,
        offset=None,
        pairs=None,
        pair_comoment=None,
    ):
        groups, columns = tuple(groups), tuple(str(c) for c in columns)
        G, k = len(groups), len(columns)
        n = np.asarray(n, dtype=np.float64).reshape(G)
        if offset is None:
            if mean is None:
                raise AbkitError("Moments needs the means (mean=) or a shift and offsets (shift=, offset=)")
            offset = np.asarray(mean, dtype=np.float64).reshape(G, k)
            shift = np.zeros(k) if shift is None else np.asarray(shift, dtype=np.float64)
            offset = offset - shift
        else:
            offset = np.asarray(offset, dtype=np.float64).reshape(G, k)
            shift = np.zeros(k) if shift is None else np.asarray(shift, dtype=np.float64).reshape(k)
        if pair_comoment is None:
            if comoment is None:
                raise AbkitError("Moments needs the co-moments (comoment=) or pairs and their co-moments")
            com = np.asarray(comoment, dtype=np.float64).reshape(G, k, k)
            pairs = _all_pairs(k)
            ii, jj = (np.array([p[0] for p in pairs], dtype=np.intp), np.array([p[1] for p in pairs], dtype=np.intp))
            pair_comoment = com[:, ii, jj]
        else:
            pairs = tuple((int(i), int(j)) for i, j in pairs)
            pair_comoment = np.asarray(pair_comoment, dtype=np.float64).reshape(G, len(pairs))
        dropped = np.zeros(G) if dropped is None else np.asarray(dropped, dtype=np.float64).reshape(G)
        for name, value in (
            ("groups", groups),
            ("columns", columns),
            ("n", n),
            ("shift", shift),
            ("offset", offset),
            ("pairs", pairs),
            ("pair_comoment", pair_comoment),
            ("dropped", dropped),
        ):
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ build
    @classmethod
    def from_arrays(
        cls,
        codes: np.ndarray,
        values: np.ndarray,
        groups: Sequence[Hashable],
        columns: Sequence[str],
        dropped: np.ndarray | None = None,
        *,
        blocks: Sequence[Sequence[str]] | None = None,
        sorted_codes: bool = False,
    ) -> Moments:
        """Moments of ``values`` (rows x columns, float64) grouped by ``codes``.

        ``codes[i]`` in ``0..len(groups)-1`` is row i's group. ``blocks``
        are the column sets whose co-moments are needed (every pair inside
        each set; default: one set of every column). One stable (radix)
        sort puts each group's rows together, column by column; each group
        is then centred on its own mean and each block reduced with one
        symmetric matrix product (BLAS) over just its columns, so the work
        is one pass over the data per block plus a Python loop over groups
        and blocks, never over rows. ``sorted_codes=True`` says the rows are
        already in group order (the caller gathered them sorted), which
        skips the sort.

        The mean is the corrected two-pass mean (Chan, Golub and LeVeque
        1983): the mean of the centred values, which holds the rounding
        error of the first mean in small numbers, is added back, and the
        co-moment is corrected with it (``C = sum c c^T - n e e^T``). The
        shift is the rows' overall mean and each group's offset is
        ``(m_g - K) + e_g``, so offsets keep every digit whatever the size
        of the values.
        """
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        G, k = len(groups), values.shape[1]
        pairs = declared_pairs(columns, blocks)
        ii = np.array([p[0] for p in pairs], dtype=np.intp)
        jj = np.array([p[1] for p in pairs], dtype=np.intp)
        index = {c: i for i, c in enumerate(columns)}
        cliques = _cliques(pairs, k, None if blocks is None else [[index[c] for c in b] for b in blocks])
        plan = []
        if cliques is not None:
            where = {p: x for x, p in enumerate(pairs)}
            for idx in cliques:
                li, lj = np.triu_indices(len(idx))
                plan.append((idx, li, lj, np.array([where[(idx[a], idx[b])] for a, b in zip(li, lj)], np.intp)))
        n = np.bincount(codes, minlength=G).astype(np.float64)[:G]
        first = np.zeros((G, k))
        error = np.zeros((G, k))
        pc = np.zeros((G, len(pairs)))
        if G == 1:
            parts = [values]
        else:
            ordered = values
            if not sorted_codes:
                order = np.argsort(codes, kind="stable")
                ordered = np.empty(values.shape, order="F")
                for j in range(k):  # column by column, so each column stays contiguous
                    np.take(values[:, j], order, out=ordered[:, j])
            bounds = np.concatenate(([0], np.cumsum(n).astype(np.int64)))
            parts = [ordered[bounds[g] : bounds[g + 1]] for g in range(G)]
        for g, part in enumerate(parts):
            rows = len(part)
            if rows == 0:
                continue
            # column sums as BLAS matrix-vector products (cheaper than mean(axis=0))
            ones = np.ones(rows)
            m = (ones @ part) / rows
            first[g] = m
            if cliques is None:
                centred = part - m
                e = (ones @ centred) / rows
                pc[g] = (centred.T @ centred)[ii, jj] - rows * e[ii] * e[jj]
                error[g] = e
                continue
            for idx, li, lj, pos in plan:
                sub = part[:, idx] - m[idx]
                e = (ones @ sub) / rows
                pc[g, pos] = (sub.T @ sub)[li, lj] - rows * e[li] * e[lj]
                error[g, idx] = e
        total = n.sum()
        shift = (n @ first) / total if total > 0 else np.zeros(k)
        offset = np.where(n[:, None] > 0, (first - shift) + error, 0.0)
        return cls(
            tuple(groups), tuple(columns), n, dropped=dropped, shift=shift, offset=offset, pairs=pairs, pair_comoment=pc
        )

    # ------------------------------------------------------------------ derived views
    @cached_property
    def mean(self) -> np.ndarray:
        """Column means per group, shape (G, k): ``shift + offset``."""
        return self.shift + self.offset

    @cached_property
    def _pair_table(self) -> np.ndarray:
        """k x k table of pair positions (-1 where the pair is not held), symmetric."""
        k = len(self.columns)
        table = np.full((k, k), -1, dtype=np.intp)
        for x, (i, j) in enumerate(self.pairs):
            table[i, j] = table[j, i] = x
        return table

    @property
    def complete(self) -> bool:
        """True when the co-moment of every pair of columns is held."""
        k = len(self.columns)
        return len(self.pairs) == k * (k + 1) // 2

    def _missing_pair_error(self, positions: np.ndarray, idx) -> AbkitError:
        a, b = np.argwhere(positions < 0)[0]
        ca, cb = self.columns[idx[a]], self.columns[idx[b]]
        return AbkitError(
            f"no co-moment of columns '{ca}' and '{cb}' in these moments: no metric aggregated with them declared "
            "that pair (see Metric.covariance_blocks). Aggregate the data with the metrics you analyse "
            "(abkit.moments(data, metrics)), or pass joint=[...] for extra column sets"
        )

    @cached_property
    def comoment(self) -> np.ndarray:
        """Dense co-moments, shape (G, k, k); an error unless every pair is held (:attr:`complete`)."""
        k = len(self.columns)
        table = self._pair_table
        if (table < 0).any():
            raise self._missing_pair_error(table, list(range(k)))
        return self.pair_comoment[:, table]

    def comoment_matrix(self, g: int, idx: Sequence[int]) -> np.ndarray:
        """The co-moment matrix of the columns at positions ``idx`` in the group at position ``g``.

        Raises :class:`abkit.AbkitError` when a pair among them was not declared.
        """
        positions = self._pair_table[np.ix_(idx, idx)]
        if (positions < 0).any():
            raise self._missing_pair_error(positions, list(idx))
        return self.pair_comoment[g][positions]

    def has_pairs(self, columns: Sequence[str]) -> bool:
        """True when the co-moments of every pair of ``columns`` are held."""
        idx = [self.column_index(c) for c in columns]
        return bool((self._pair_table[np.ix_(idx, idx)] >= 0).all())

    # ------------------------------------------------------------------ merge
    def merge(self, other: Moments) -> Moments:
        """Moments of the union of the rows behind ``self`` and ``other``.

        Groups are aligned by label (a group missing on one side counts as
        empty); the columns and the pairs must be the same. When the shifts
        differ, ``other``'s offsets are moved onto ``self``'s shift first.
        """
        if tuple(self.columns) != tuple(other.columns):
            raise AbkitError(
                f"cannot merge moments of different columns: {list(self.columns)} "
                f"vs {list(other.columns)}; aggregate both with the same metrics"
            )
        if self.pairs != other.pairs:
            raise AbkitError(
                "cannot merge moments of different column pairs; aggregate both with the same metrics "
                "(and the same joint= column sets)"
            )
        mine = self._group_positions
        groups = list(self.groups) + [g for g in other.groups if g not in mine]
        a, b = self._aligned(groups), other._aligned(groups)
        shift = a.shift if a.n.sum() > 0 else b.shift
        a_off = a.offset if shift is a.shift else a.offset + (a.shift - shift)
        b_off = b.offset if np.array_equal(b.shift, shift) else b.offset + (b.shift - shift)
        n = a.n + b.n
        safe = np.where(n > 0, n, 1.0)
        d = b_off - a_off
        offset = a_off + d * (b.n / safe)[:, None]
        ii, jj = self._pair_index
        w = (a.n * b.n / safe)[:, None]
        pc = a.pair_comoment + b.pair_comoment + w * d[:, ii] * d[:, jj]
        return Moments(
            tuple(groups),
            self.columns,
            n,
            dropped=a.dropped + b.dropped,
            shift=shift,
            offset=offset,
            pairs=self.pairs,
            pair_comoment=pc,
        )

    __add__ = merge

    @cached_property
    def _pair_index(self) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.array([p[0] for p in self.pairs], dtype=np.intp),
            np.array([p[1] for p in self.pairs], dtype=np.intp),
        )

    def _replace(self, **changes) -> Moments:
        fields = {
            "groups": self.groups,
            "columns": self.columns,
            "n": self.n,
            "dropped": self.dropped,
            "shift": self.shift,
            "offset": self.offset,
            "pairs": self.pairs,
            "pair_comoment": self.pair_comoment,
        }
        fields.update(changes)
        groups, columns, n = fields.pop("groups"), fields.pop("columns"), fields.pop("n")
        return Moments(groups, columns, n, **fields)

    def _aligned(self, groups: Sequence[Hashable]) -> Moments:
        if tuple(groups) == self.groups:
            return self
        index = self._group_positions
        take = np.array([index.get(g, -1) for g in groups], dtype=np.intp)
        have = take >= 0
        safe = np.where(have, take, 0)

        def pick(a):
            out = a[safe] if len(a) else np.zeros((len(groups),) + a.shape[1:])
            out = np.array(out, dtype=np.float64)
            out[~have] = 0.0
            return out

        return self._replace(
            groups=tuple(groups),
            n=pick(self.n),
            offset=pick(self.offset),
            pair_comoment=pick(self.pair_comoment),
            dropped=pick(self.dropped),
        )

    # ------------------------------------------------------------------ views
    def select(self, groups: Sequence[Hashable] | None = None, columns: Sequence[str] | None = None) -> Moments:
        """A sub-view: some groups and/or some columns, in the order given.

        Selected columns keep the pairs held among them (see :attr:`complete`).
        """
        m = self
        if groups is not None:
            missing = [g for g in groups if g not in self._group_positions]
            if missing:
                raise AbkitError(f"group(s) {missing} not in moments; have {list(self.groups)}")
            m = m._aligned(list(groups))
        if columns is not None:
            columns = tuple(columns)
            idx = [m.column_index(c) for c in columns]
            if columns == m.columns:
                return m
            table = m._pair_table
            new_pairs, take = [], []
            for a in range(len(idx)):
                for b in range(a, len(idx)):
                    x = table[idx[a], idx[b]]
                    if x >= 0:
                        new_pairs.append((a, b))
                        take.append(x)
            m = Moments(
                m.groups,
                columns,
                m.n,
                dropped=m.dropped,
                shift=m.shift[idx],
                offset=m.offset[:, idx],
                pairs=tuple(new_pairs),
                pair_comoment=m.pair_comoment[:, np.array(take, dtype=np.intp)],
            )
        return m

    def relabel(self, groups: Sequence[Hashable]) -> Moments:
        """The same moments with new group labels (one per group, in order)."""
        if len(groups) != len(self.groups):
            raise AbkitError(f"relabel needs {len(self.groups)} labels, got {len(groups)}")
        return self._replace(groups=tuple(groups))

    def pooled(self, groups: Sequence[Hashable] | None = None, label: Hashable = "pooled") -> Moments:
        """Merge several groups into one (e.g. all arms of a comparison).

        The pooled co-moment is the within-group sum plus the between-group
        term ``sum_g n_g (o_g - o)_i (o_g - o)_j`` (Chan et al.'s update for
        many parts at once, ``o`` the offsets).
        """
        m = self.select(groups=list(self.groups if groups is None else groups))
        total = m.n.sum()
        safe = total if total > 0 else 1.0
        centre = (m.n @ m.offset) / safe
        d = m.offset - centre
        ii, jj = self._pair_index
        pc = m.pair_comoment.sum(axis=0) + (m.n[:, None] * d[:, ii] * d[:, jj]).sum(axis=0)
        return Moments(
            (label,),
            m.columns,
            [total],
            dropped=[m.dropped.sum()],
            shift=m.shift,
            offset=centre[None, :],
            pairs=m.pairs,
            pair_comoment=pc[None, :],
        )

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
        """Sample covariance matrix of the columns within one group (every pair must be held)."""
        g = self.group_index(group)
        return self.comoment_matrix(g, list(range(len(self.columns)))) / max(self.n[g] - ddof, 1.0)

    def __repr__(self) -> str:
        k = len(self.columns)
        held = "" if self.complete else f", pairs={len(self.pairs)} of {k * (k + 1) // 2}"
        return (
            f"Moments(groups={list(self.groups)}, columns={list(self.columns)}, n={self.n.astype(int).tolist()}{held})"
        )


# A block is identified by its columns and whether rows with a missing value
# in any of them were dropped (complete cases) before aggregation.
BlockKey = tuple[tuple[str, ...], bool]


@dataclass(frozen=True, eq=False)
class MomentSet:
    """The moments a list of metrics needs, for every arm (and segment).

    ``blocks`` maps a :data:`BlockKey` to its :class:`Moments`. Metrics whose
    columns have no missing values share one block (``dropna=False``) that
    holds the co-moments of the pairs the metrics declare; each metric
    declared with ``dropna=True`` has a block of its own, aggregated over
    its complete cases, with the dropped rows counted per group.

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
        """The moments of ``columns`` (every pair among them held), from the block of that missing-value policy.

        Raises :class:`abkit.AbkitError` when no block has the columns, or when
        a pair among them was not declared by the metrics that were aggregated.
        """
        key = (tuple(columns), bool(dropna)) if dropna else None
        if dropna:
            try:
                return self.blocks[key]
            except KeyError:
                raise AbkitError(
                    f"no moments for columns {list(columns)} (dropna=True); aggregate the data with the same metrics"
                ) from None
        for (cols, dn), m in self.blocks.items():
            if not dn and all(c in cols for c in columns):
                sub = m.select(columns=columns)
                if not sub.complete:
                    table = sub._pair_table
                    raise sub._missing_pair_error(table, list(range(len(columns))))
                return sub
        raise AbkitError(f"no moments for columns {list(columns)}; aggregate the data with the same metrics")

    @property
    def groups(self) -> tuple:
        return tuple(self.rows)

    def merge(self, other: MomentSet) -> MomentSet:
        if set(self.blocks) != set(other.blocks) or self.variant != other.variant or self.by != other.by:
            raise AbkitError("cannot merge moment sets built for different metrics, variant or segment columns")
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

    def segment(self, value: Hashable) -> MomentSet:
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
            present = [g for g in arms if g in m._group_positions]
            blocks[k] = m.select(groups=present).relabel([rename[g] for g in present])
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
