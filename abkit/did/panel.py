"""Data preparation for the DiD estimators: columns to clean arrays, integer codes, each unit's
launch period, cohorts, raw trends and one-row-per-unit-period checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import DataError
from ..sources import read_columns
from ..stats.fixed_effects import codes_of


def _val(v) -> str:
    """A data value for an error message: 8019, 2005.5, 'M01' (no numpy reprs)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return repr(v) if isinstance(v, str) else str(v)


def _as_list(x) -> list[str]:
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    return list(x)


def _outcome_columns(outcome) -> tuple[list[str], str]:
    if isinstance(outcome, str):
        return [outcome], outcome
    if isinstance(outcome, (tuple, list)) and len(outcome) == 2 and all(isinstance(c, str) for c in outcome):
        return list(outcome), f"{outcome[0]}/{outcome[1]}"
    raise DataError(
        f"outcome must be a column name or a (numerator, denominator) pair of column names; got {outcome!r}"
    )


def _numeric(df: pd.DataFrame, col: str) -> np.ndarray:
    s = df[col]
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64").to_numpy()
    if not pd.api.types.is_numeric_dtype(s.dtype):
        conv = pd.to_numeric(s, errors="coerce")
        bad = s[conv.isna() & s.notna()]
        if len(bad):
            raise DataError(
                f"column '{col}' is not numeric (dtype {s.dtype}; e.g. value {_val(bad.iloc[0])} in "
                f"{len(bad):,} rows); convert it to numbers before the analysis"
            )
        s = conv
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


@dataclass
class _Frame:
    """The cleaned long frame: arrays, with the count of dropped rows by reason."""

    y: np.ndarray
    w: np.ndarray | None
    cols: dict
    keys: dict
    dropped: dict
    outcome_name: str
    n_rows_in: int
    extra: dict = field(default_factory=dict)


def _prepare(
    data,
    outcome,
    numeric_columns: Sequence[str | None],
    key_columns: Sequence[str | None],
    weights: str | None,
    extra: Sequence[str | None] = (),
) -> _Frame:
    """Read and clean the columns; ``extra`` columns are returned as is (missing values allowed).

    Column lists may hold None (an optional column not given, e.g. ``cluster=None``): it is skipped.
    """
    out_cols, name = _outcome_columns(outcome)
    numeric = [c for c in dict.fromkeys(numeric_columns) if c is not None]
    keys = [c for c in dict.fromkeys(key_columns) if c is not None]
    extra_names = [c for c in dict.fromkeys(extra) if c is not None]
    wanted = list(dict.fromkeys([*out_cols, *numeric, *keys, *extra_names, *([weights] if weights else [])]))
    df = read_columns(data, wanted)
    n_in = len(df)
    if n_in == 0:
        raise DataError("the data has no rows")
    arrays = {c: _numeric(df, c) for c in dict.fromkeys([*out_cols, *numeric, *([weights] if weights else [])])}
    keep = np.ones(n_in, bool)
    dropped: dict[str, int] = {}
    for c, a in arrays.items():
        bad = ~np.isfinite(a) & keep
        if bad.any():
            dropped[f"missing {c}"] = int(bad.sum())
            keep &= ~bad
    for c in keys:
        bad = df[c].isna().to_numpy() & keep
        if bad.any():
            dropped[f"missing {c}"] = int(bad.sum())
            keep &= ~bad
    if len(out_cols) == 2:
        den = arrays[out_cols[1]]
        bad = keep & (den <= 0)
        if bad.any():
            dropped[f"{out_cols[1]} <= 0"] = int(bad.sum())
            keep &= ~bad
    w = None
    if weights:
        wv = arrays[weights]
        bad = keep & (wv <= 0)
        if bad.any():
            dropped[f"{weights} <= 0"] = int(bad.sum())
            keep &= ~bad
    if not keep.any():
        raise DataError(f"no rows left after dropping rows with missing values ({dropped}); check the data")
    arrays = {c: a[keep] for c, a in arrays.items()}
    if len(out_cols) == 2:
        y = arrays[out_cols[0]] / arrays[out_cols[1]]
        w = arrays[out_cols[1]] if not weights else arrays[weights]
    else:
        y = arrays[out_cols[0]]
        if weights:
            w = arrays[weights]
    keyvals = {c: df[c].to_numpy()[keep] for c in keys}
    extras = {}
    for c in extra_names:
        s = df[c]
        if s.dtype.kind in "mM":
            raise DataError(
                f"column '{c}' holds dates; it must hold the first treated period in the units of "
                "the period column (e.g. a week number), missing if never treated"
            )
        v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = s.notna().to_numpy() & np.isnan(v)
        if bad.any():
            raise DataError(
                f"column '{c}' must hold a period number (missing for never treated); got e.g. "
                f"{_val(s[bad].iloc[0])} in {int(bad.sum()):,} row(s)"
            )
        extras[c] = v[keep]
    return _Frame(y=y, w=w, cols=arrays, keys=keyvals, dropped=dropped, outcome_name=name, n_rows_in=n_in, extra=extras)


def _time_numeric(values: np.ndarray, col: str) -> np.ndarray:
    if np.asarray(values).dtype.kind in "mM":
        raise DataError(
            f"column '{col}' holds dates or durations; this estimator measures event time in periods, "
            f"so give it period numbers, e.g. weeks since the start: "
            f"(df['{col}'] - df['{col}'].min()).dt.days // 7"
        )
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(
            f"column '{col}' must hold numbers (e.g. week or year numbers) for this "
            f"estimator; got values like {_val(values[0])}. Map the periods to integers first"
        ) from None


def _number(x: float) -> str:
    """A period number for a message: 7, 2004, 2.5, inf (no numpy repr)."""
    x = float(x)
    if np.isnan(x):
        return "missing"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return str(int(x)) if x.is_integer() else f"{x:g}"


def classify_first_treated(first, periods, column: str = "first_treated", time: str = "time", units=None) -> np.ndarray:
    """Each unit's first treated period with ``inf`` for never treated: the one rule of every DiD path.

    ``first``: the first-treated values (per row or per unit; float, NaN for
    missing); ``periods``: the numeric periods of the panel; ``units``: the
    unit of each value (only to count units in messages). The rule, used by
    :func:`staggered`, :func:`event_study`, :func:`placebo`, :func:`bacon`,
    TWFE's launch diagnostics and the rollout readout:

    * missing (NaN / None) or ``+inf``: never treated;
    * ``0``: never treated only when 0 is not a period of the panel (R did's
      convention, so mpdta's ``first.treat = 0`` keeps working); when 0 *is* a
      period (weeks numbered from 0) a 0 could mean "launched in period 0" or
      "never launched", and is refused with an error;
    * a negative value: a period like any other when the panel has negative
      periods; when every period is >= 0 it is refused (it could be a
      "never" code such as -1, or a launch before the data starts);
    * ``-inf``: refused;
    * anything else: the first treated period (before the first period:
      treated throughout the panel; after the last: treated only after it).

    Returns float64 values of the same shape, ``inf`` for never treated.
    """
    f = np.asarray(first, dtype=np.float64)
    periods = np.asarray(periods, dtype=np.float64)
    lo_p, hi_p = float(np.min(periods)), float(np.max(periods))
    span = f"'{time}' runs from {_number(lo_p)} to {_number(hi_p)}"

    def count(mask) -> str:
        if units is None:
            n, what = int(mask.sum()), "value"
        else:
            n, what = len(pd.unique(np.asarray(units)[mask])), "unit"
        return f"{n:,} {what}{'' if n == 1 else 's'}"

    neg_inf = np.isneginf(f)
    if neg_inf.any():
        raise DataError(
            f"column '{column}' holds -inf for {count(neg_inf)}; a first treated period must be a "
            "period number, or missing (NaN) for never-treated units"
        )
    zero = f == 0
    if zero.any() and bool(np.any(periods == 0)):
        raise DataError(
            f"column '{column}' is 0 for {count(zero)}, and 0 is also a period of the panel ({span}): "
            "0 could mean 'first treated in period 0' or 'never treated'. Code never-treated units as "
            f"missing (NaN / None) and treated units by their first treated period, or number the "
            f"periods from 1"
        )
    negative = f < 0
    if negative.any() and lo_p >= 0:
        eg = _number(f[negative][0])
        raise DataError(
            f"column '{column}' is negative for {count(negative)} (e.g. {eg}) while every period of the "
            f"panel is >= 0 ({span}): a negative value could be a 'never treated' code or a launch "
            "before the data starts. Code never-treated units as missing (NaN / None) and treated "
            "units by their first treated period"
        )
    return np.where(np.isnan(f) | zero, np.inf, f)


def _first_treated_per_unit(
    ucode: np.ndarray,
    n_units: int,
    first: np.ndarray,
    col: str,
    ulab: np.ndarray | None = None,
    unit: str | None = None,
    *,
    periods: np.ndarray,
    time: str = "time",
) -> np.ndarray:
    """One first-treated period per unit (``inf`` = never, by :func:`classify_first_treated`); must be constant
    within unit."""
    f = classify_first_treated(first, periods, col, time, units=ucode)
    lo = np.full(n_units, np.inf)
    hi = np.full(n_units, -np.inf)
    np.minimum.at(lo, ucode, f)
    np.maximum.at(hi, ucode, f)
    if np.any(lo != hi):
        i = int(np.argmax(lo != hi))
        shown = (
            ""
            if ulab is None
            else f", e.g. {unit}={_val(ulab[i])} has {_number(lo[i])} and {_number(hi[i])} (inf = never treated)"
        )
        raise DataError(
            f"column '{col}' must be constant within each unit (the unit's first treated "
            f"period, missing if never treated); {int((lo != hi).sum())} unit(s) have "
            f"several values{shown}"
        )
    return lo


def _first_from_treatment(ucode, tvals, D, n_units, col, ulab=None, unit=None) -> np.ndarray:
    """First period with D = 1 per unit (inf = never); raises unless treatment is absorbing."""
    first = np.full(n_units, np.inf)
    on = D > 0.5
    np.minimum.at(first, ucode[on], tvals[on])
    bad = (~on) & (tvals >= first[ucode])
    if bad.any():
        i = int(np.argmax(bad))
        eg = (
            ""
            if ulab is None
            else (f", e.g. {unit}={_val(ulab[ucode[i]])} is on from {first[ucode[i]]:g} but off in {tvals[i]:g}")
        )
        raise DataError(
            f"treatment column '{col}' switches off again after it switched on in "
            f"{len(np.unique(ucode[bad]))} unit(s){eg}; an event study / staggered analysis needs "
            "an absorbing treatment (once launched, always launched)"
        )
    return first


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..L-1 and the sorted labels.

    Integer ids with a compact range (unit numbers, periods) are coded by a
    presence table (two passes, no hashing, no sort); anything else by hash
    factorization and a sort of the labels only.
    """
    values = np.asarray(values)
    if values.dtype.kind in "iu" and values.size:
        lo, hi = int(values.min()), int(values.max())
        if hi - lo <= 4 * values.size + 1024:
            shifted = (values - lo).astype(np.intp, copy=False)
            present = np.bincount(shifted, minlength=hi - lo + 1) > 0
            remap = np.cumsum(present) - 1
            return remap[shifted], np.nonzero(present)[0].astype(values.dtype) + lo
    try:
        codes, labels = pd.factorize(values, sort=True)
    except TypeError:
        return codes_of(values)
    return codes.astype(np.intp, copy=False), np.asarray(labels)


def _cohorts(first_unit: np.ndarray, ucode: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Per-row cohort codes and labels ("launched 20", ..., "never treated" last) from per-unit timing."""
    f = np.where(np.isfinite(first_unit), first_unit, np.inf)  # inf = never (classify_first_treated)
    levels, ucoh = np.unique(f, return_inverse=True)  # per unit, not per row
    labels = [
        f"launched {int(v) if float(v).is_integer() else v}" if np.isfinite(v) else "never treated" for v in levels
    ]
    return ucoh.ravel()[ucode], labels


def _trends(y, w, cohort_codes: np.ndarray, cohort_labels: Sequence[str], tvals, tcodes=None) -> pd.DataFrame:
    """Weighted mean outcome per cohort x period (for the raw-trends plot); one bincount pass.

    ``tcodes``: optional ``(codes, labels)`` of ``tvals`` already computed by the caller.
    """
    tcode, tlab = _codes(tvals) if tcodes is None else tcodes
    T, L = tlab.size, len(cohort_labels)
    cell = cohort_codes * T + tcode
    ww = np.ones_like(y) if w is None else w
    sw = np.bincount(cell, weights=ww, minlength=L * T)
    swy = np.bincount(cell, weights=ww * y, minlength=L * T)
    cnt = np.bincount(cell, minlength=L * T)
    idx = np.nonzero(cnt)[0]
    cohort = pd.Categorical.from_codes(idx // T, categories=list(cohort_labels))
    return pd.DataFrame({"cohort": cohort, "time": tlab[idx % T], "mean": swy[idx] / sw[idx], "n": cnt[idx]})


def _unit_period_counts(ucode, tcode, n_units, T, unit, time, ulab, tlab, *, error: bool) -> np.ndarray:
    """Rows per (unit, period) ``(n_units, T)``; with ``error`` a repeated unit-period is an AbkitError."""
    counts = np.bincount(ucode * T + tcode, minlength=n_units * T).reshape(n_units, T)
    if error and counts.max(initial=0) > 1:
        i, j = np.unravel_index(int(np.argmax(counts)), counts.shape)
        raise DataError(
            f"{int((counts > 1).sum()):,} ('{unit}', '{time}') pair(s) appear more than once, e.g. "
            f"{unit}={_val(ulab[i])} in {time}={_val(tlab[j])} ({int(counts[i, j])} rows); this estimator "
            "needs one row per unit and period: aggregate first (abkit.did.aggregate_panel) or drop "
            "the duplicates"
        )
    return counts


def _cluster_codes(keys: dict, cluster: str | None, unit: str | None, unit_codes=None):
    """Cluster codes (``cluster``, else ``unit``; None without either); reuses ``unit_codes`` when given."""
    col = cluster or unit
    if col is None:
        return None
    if col == unit and unit_codes is not None:
        return unit_codes
    codes, _ = _codes(keys[col])
    return codes


def _unit_first(fr: _Frame, unit, time, first_treated, treatment):
    ucode, ulab = _codes(fr.keys[unit])
    tcode, tlab = _codes(fr.keys[time])
    tnum = _time_numeric(tlab, time)
    if (treatment is None) == (first_treated is None):
        raise DataError(
            "pass exactly one of first_treated= (launch period per unit, missing if never "
            "launched) or treatment= (a 0/1 absorbing treatment column)"
        )
    if treatment:
        first = _first_from_treatment(ucode, tnum[tcode], fr.cols[treatment], ulab.size, treatment, ulab, unit)
    else:
        first = _first_treated_per_unit(
            ucode, ulab.size, fr.extra[first_treated], first_treated, ulab, unit, periods=tnum, time=time
        )
    return ucode, ulab, tcode, tlab, tnum, first
