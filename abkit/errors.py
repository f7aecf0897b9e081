"""abkit's one exception family.

Every error abkit raises on purpose is an :class:`AbkitError`. Messages name
the thing that is wrong, the value seen and what to do about it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AbkitError(Exception):
    """Base class of every error abkit raises on purpose."""


class DataError(AbkitError, ValueError):
    """The data cannot be analysed as asked (bad values, too few units...)."""


class ColumnNotFoundError(DataError, KeyError):
    """A column the analysis needs is not in the data."""

    def __str__(self) -> str:  # KeyError quotes its message; we do not want that
        return str(self.args[0]) if self.args else ""


class SpecError(AbkitError, ValueError):
    """An experiment spec (YAML) is invalid."""

    # Set on the errors raised by abkit.spec.problems.Problems: the spec's name or file, and every
    # problem as a (field, message) pair.
    origin: str
    problems: list[tuple[str, str]]


class ReadoutError(AbkitError, RuntimeError):
    """One or more readouts failed to execute or render."""


class StoreError(ReadoutError):
    """The results store (``<out>/abkit.duckdb``) cannot be read or written (locked too long, newer schema...)."""


def missing_column(column: str, available: Iterable[str], what: str = "data") -> ColumnNotFoundError:
    """Build the standard 'column not found' error, suggesting the closest name."""
    available = [str(c) for c in available]
    close = difflib.get_close_matches(column, available, n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    shown = ", ".join(available[:30]) + (", ..." if len(available) > 30 else "")
    return ColumnNotFoundError(f"column '{column}' not found in {what}; available: {shown}.{hint}")
