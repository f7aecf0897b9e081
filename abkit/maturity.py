"""Maturity windows: read each unit's outcome only once its window has closed (issue 17.3).

Refunds, contacts and repeat purchases arrive days or weeks after a unit's
exposure. Read before its window has closed, a unit shows only part of its
outcome: the refund rate of buyers exposed yesterday is near zero. When the
change also moves *when* outcomes arrive (instant refunds), an early read
mixes the speed-up with the effect on the rate itself. A metric with a
**window** ``w`` (``"30d"``) counts a unit only when its whole window lies
before the data's end::

    mature  <=>  day(exposure) + 1 day + w  <=  cutoff
            <=>  day(exposure)  <  day_floor(cutoff - w)

where ``cutoff`` is when the data was read: a ``data_end`` date means the
data hold everything up to the end of that day (``cutoff`` = the next
midnight); a datetime is taken as it is. The window counts from the *end* of
the exposure day, so a date column (no time of day) never makes a unit
mature too early; with timestamps the rule is conservative by less than a
day. Units that are not mature yet are left out of the metric and counted
(:func:`maturity`). Time-to-event metrics do not drop them: their follow-up
simply ends at the data's end, where they are censored
(:class:`abkit.TimeToEvent`), and the same counts say how many were followed
for the full window.

The rule is one narwhals expression (``cast(Date) < literal``), so it runs
where the data lies (pandas, pyarrow, DuckDB, Spark, files) like every other
derived column (:class:`abkit.metrics.Derived`): :func:`windowed` returns the
metric reading its columns through it, with ``dropna=True`` so immature units
are left out of that metric only (the sample-ratio check still sees every
unit). Because the exposure date is fixed before treatment, the immature
share is the same in every arm under randomization: leaving them out does
not change the mix of units compared.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import AbkitError, DataError, missing_column
from .metrics import Derived, Metric, Statistic

if TYPE_CHECKING:  # pandas is imported where used: a spec's window is checked without it
    import pandas as pd

__all__ = [
    "Maturity",
    "data_cutoff",
    "first_immature_day",
    "mature_expression",
    "maturity",
    "parse_window",
    "window_days",
    "window_text",
    "windowed",
]

_UNITS = {"d": ("days", 1.0), "h": ("hours", 1.0 / 24.0), "w": ("weeks", 7.0)}
_WINDOW = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(d|h|w|days?|hours?|weeks?)\s*", re.IGNORECASE)


def window_days(value) -> float:
    """A window's length in days: ``"30d"``, ``"12h"``, ``"2w"`` (or ``"30 days"``), a number of days, or a
    timedelta. Must be positive. Plain Python: a spec's windows are checked without importing pandas."""
    if isinstance(value, _dt.timedelta):  # a pandas.Timedelta is one
        days = value.total_seconds() / 86400.0
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        days = float(value)
    elif isinstance(value, str) and (m := _WINDOW.fullmatch(value)):
        days = float(m.group(1)) * _UNITS[m.group(2)[0].lower()][1]
    else:
        raise AbkitError(f"window={value!r} is not a window; write e.g. '30d' (days), '12h' (hours) or '2w' (weeks)")
    if not (math.isfinite(days) and days > 0):
        raise AbkitError(f"window={value!r} must be a positive length of time, e.g. '30d'")
    return days


def parse_window(value) -> pd.Timedelta:
    """A window as a :class:`pandas.Timedelta` (the forms and checks of :func:`window_days`)."""
    import pandas as pd

    days = window_days(value)
    return pd.Timedelta(value) if isinstance(value, _dt.timedelta) else pd.Timedelta(days=days)


def window_text(window) -> str:
    """``"30-day"``, ``"12-hour"``: the window's length as an adjective ("a 30-day window")."""
    ns = _window_ns(window)
    days = ns / _NS_PER_DAY
    if days >= 1 and days.is_integer():
        return f"{days:g}-day"
    return f"{ns / _NS_PER_HOUR:g}-hour"


_NS_PER_DAY = 86_400_000_000_000
_NS_PER_HOUR = 3_600_000_000_000
_EPOCH = _dt.datetime(1970, 1, 1)


def _window_ns(window) -> int:
    """The window's length in nanoseconds, as :func:`parse_window`'s ``pandas.Timedelta`` holds it (pandas'
    own float steps for ``Timedelta(days=x)``: ``int(x * 24 * 3600 * 1e9)``), without importing pandas."""
    if isinstance(window, _dt.timedelta):
        window_days(window)  # positive
        value = getattr(window, "value", None)  # a pandas.Timedelta: its nanoseconds
        if value is not None:
            return int(value)
        return (window.days * 86_400 + window.seconds) * 1_000_000_000 + window.microseconds * 1_000
    return int(window_days(window) * 24 * 3600 * 1_000_000_000)


def _cutoff_ns(data_end) -> int | None:
    """:func:`data_cutoff` in nanoseconds since 1970 (naive UTC) for a ``datetime.date`` or ``datetime.datetime``
    (what a spec holds), without pandas; None for other values (strings, pandas Timestamps)."""
    if type(data_end) is _dt.date:
        return ((data_end - _EPOCH.date()).days + 1) * _NS_PER_DAY
    if type(data_end) is _dt.datetime:
        if data_end.tzinfo is not None:
            data_end = data_end.astimezone(_dt.UTC).replace(tzinfo=None)
        return (data_end - _EPOCH) // _dt.timedelta(microseconds=1) * 1_000
    return None


def data_cutoff(data_end) -> pd.Timestamp:
    """When the data was read: a date means "up to the end of that day" (the next midnight), a datetime itself."""
    import pandas as pd

    if isinstance(data_end, _dt.date) and not isinstance(data_end, _dt.datetime):
        return pd.Timestamp(data_end) + pd.Timedelta(days=1)
    try:
        stamp = pd.Timestamp(data_end)
    except (TypeError, ValueError):
        stamp = pd.NaT
    if pd.isna(stamp):
        raise AbkitError(f"data_end={data_end!r} must be a date or datetime (when the data was read)")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    if isinstance(data_end, str) and len(data_end.strip()) == 10:  # "2026-10-12": a day, read after it closed
        stamp += pd.Timedelta(days=1)
    return stamp


def first_immature_day(window, data_end) -> _dt.date:
    """The first exposure day whose window has not closed by the data's end (see the module doc):
    ``day_floor(cutoff - w)``, in whole nanoseconds as pandas computes it (a spec's date or datetime is
    worked out without pandas, so that checking a spec does not import it)."""
    cutoff = _cutoff_ns(data_end)
    if cutoff is None:
        return (data_cutoff(data_end) - parse_window(window)).floor("D").date()
    return _EPOCH.date() + _dt.timedelta(days=(cutoff - _window_ns(window)) // _NS_PER_DAY)


def mature_expression(date: str, window, data_end):
    """The narwhals expression "this unit's window has closed": ``cast(date, Date) < first_immature_day``."""
    import narwhals as nw

    return nw.col(date).cast(nw.Date) < nw.lit(first_immature_day(window, data_end))


def windowed(metric: Metric, date: str, window, data_end) -> Metric:
    """``metric`` read on mature units only: its target columns are null for units whose window is still open.

    The returned metric has ``dropna=True`` (immature units are left out of
    this metric and counted as dropped; see :func:`maturity` for the counts
    by reason) and keeps its name, covariates and direction. Time-to-event
    metrics are not windowed this way (they censor at the data's end).
    """
    import narwhals as nw

    if getattr(metric, "kind", None) == "time_to_event":
        raise AbkitError(
            f"metric '{metric.name}' is a time to event: units still inside their window are censored "
            "at the data's end, not left out; give it a horizon instead of windowing it"
        )
    if metric.derived:
        raise AbkitError(
            f"metric '{metric.name}' reads derived columns ({', '.join(d.name for d in metric.derived)}); "
            "a window applies to plain column metrics (mean, proportion, ratio)"
        )
    if not isinstance(date, str) or not date:
        raise AbkitError("a window counts from each unit's exposure date: name the date column (spec `date:`)")
    first = first_immature_day(window, data_end)
    tag = f"{window_text(window)} window"
    mature = mature_expression(date, window, data_end)
    made: dict[str, Derived] = {}

    def through(s: Statistic) -> Statistic:
        def windowed_column(c: str) -> str:
            name = f"{c} ({tag})"
            made[name] = Derived(name, (c,), nw.when(mature).then(nw.col(c).cast(nw.Float64)), reads=(date,))
            return name

        return Statistic(
            windowed_column(s.numerator), None if s.denominator is None else windowed_column(s.denominator)
        )

    out = copy.copy(metric)
    object.__setattr__(out, "target", through(metric.target))
    object.__setattr__(out, "dropna", True)
    object.__setattr__(out, "derived", tuple(made.values()))
    object.__setattr__(
        out,
        "options",
        tuple(
            sorted(
                {
                    **dict(metric.options),
                    "window": window_text(window),
                    "window_date": date,
                    "mature_before": first.isoformat(),
                    "dropna_asked": bool(metric.dropna),
                }.items()
            )
        ),
    )
    return out


# --------------------------------------------------------------------------- counts
@dataclass(frozen=True)
class Maturity:
    """How many units' windows had closed by the data's end, per arm.

    ``mature[arm]`` / ``immature[arm]``: units exposed before / on or after
    :attr:`first_immature_day`; ``no_date[arm]``: units without an exposure
    date (never mature). ``cutoff``: when the data was read.
    """

    window: pd.Timedelta
    date: str
    cutoff: pd.Timestamp
    first_immature_day: _dt.date
    mature: dict
    immature: dict
    no_date: dict

    @property
    def total_mature(self) -> int:
        return int(sum(self.mature.values()))

    @property
    def total(self) -> int:
        return int(sum(self.mature.values()) + sum(self.immature.values()) + sum(self.no_date.values()))

    @property
    def total_left_out(self) -> int:
        return self.total - self.total_mature

    @property
    def last_mature_day(self) -> _dt.date:
        return self.first_immature_day - _dt.timedelta(days=1)

    def sentence(self, units: str = "units", censored: bool = False) -> str:
        """E.g. ``"23,876 of 40,000 units (60%) were exposed by Sep 12, so their 30-day window had closed by the
        data's end (Oct 12); the other 16,124 are left out until their window closes"``; with ``censored`` (a time
        to event): "... could be followed for the full 30 days (exposed by Sep 12); the other 16,124 are
        censored at the data's end (Oct 12) ..."."""
        import pandas as pd

        n, total = self.total_mature, self.total
        share = f" ({n / total:.0%})" if total else ""
        end = (self.cutoff - pd.Timedelta(microseconds=1)).strftime("%b %d")
        last = f"{self.last_mature_day:%b %d}"
        rest = self.total_left_out
        if censored:
            length = window_text(self.window).replace("-", " ") + "s"
            words = f"{n:,} of {total:,} {units}{share} could be followed for the full {length} (exposed by {last})"
            if rest:
                words += (
                    f"; the other {rest:,} are censored at the data's end ({end}): still in, with the time "
                    "they were followed"
                )
            return words
        words = (
            f"{n:,} of {total:,} {units}{share} were exposed by {last}, so their {window_text(self.window)} "
            f"window had closed by the data's end ({end})"
        )
        if rest:
            words += f"; the other {rest:,} are left out until their window closes"
        return words


def maturity(data, variant: str, date: str, window, data_end) -> Maturity:
    """Counts of mature / immature / undated units per arm: one ``group_by`` where the data lies.

    ``data``: anything :func:`abkit.analyze` reads (a DataFrame, a pyarrow
    table, a parquet/CSV path, a DuckDB relation, a Spark DataFrame). Rows
    without an arm are not counted.
    """
    import narwhals as nw

    from .engines import to_lazy

    w = parse_window(window)
    first = first_immature_day(w, data_end)
    lf = to_lazy(data)
    if isinstance(lf, nw.DataFrame):
        lf = lf.lazy()
    names = list(lf.collect_schema().names())
    for c in (variant, date):
        if c not in names:
            raise missing_column(c, names)
    dtype = lf.collect_schema()[date]
    if not (dtype == nw.Date or dtype == nw.Datetime):
        raise DataError(
            f"column '{date}' (each unit's exposure date) holds {dtype}, not dates; a window counts "
            "from a date or timestamp column"
        )
    state = (
        nw.when(nw.col(date).is_null())
        .then(nw.lit(2))
        .when(nw.col(date).cast(nw.Date) < nw.lit(first))
        .then(nw.lit(0))
        .otherwise(nw.lit(1))
    )
    counts = (
        lf.filter(~nw.col(variant).is_null())
        .with_columns(state.alias("__state"))
        .group_by(variant, "__state")
        .agg(nw.len().alias("__n"))
        .collect()
    )
    frame = counts.to_pandas() if hasattr(counts, "to_pandas") else nw.to_native(counts)
    out: dict[int, dict[Hashable, int]] = {0: {}, 1: {}, 2: {}}
    for arm, st, n in zip(frame[variant], frame["__state"], frame["__n"]):
        arm = arm.item() if isinstance(arm, np.generic) else arm
        for k in out:
            out[k].setdefault(arm, 0)
        out[int(st)][arm] += int(n)
    return Maturity(w, date, data_cutoff(data_end), first, out[0], out[1], out[2])
