"""Problems of one spec: collected, worded for people, raised together as one :class:`abkit.SpecError`.

Every message names the field (``metrics[2].numerator``), the value seen and
the fix. :func:`add_validation_errors` words pydantic's errors this way:
it walks the document models along each error's location to find the field
(its allowed values, range, examples and the keys its model allows), so the
wording lives here once instead of in every field check.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import math
import types
import typing
import unicodedata
from collections.abc import Mapping
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ..errors import SpecError

__all__ = ["CUSTOM", "RULES", "Problems", "add_validation_errors", "printable", "show", "suggest", "type_name"]

# Error types raised by the validators in models.py (see there): CUSTOM carries a finished message,
# RULES a list of (path relative to the model, message) pairs, BLANK an empty text.
CUSTOM = "abkit"
RULES = "abkit_rules"
BLANK = "abkit_blank"


class Problems:
    """Collects every problem of one spec, then raises one SpecError (``.problems``: (field, message) pairs)."""

    def __init__(self, origin: str):
        self.origin = origin
        self.items: list[tuple[str, str]] = []

    def add(self, where: str, message: str) -> None:
        self.items.append((where, message))

    def __len__(self) -> int:
        return len(self.items)

    def fields(self) -> set[str]:
        return {where for where, _ in self.items}

    def raise_if_any(self) -> None:
        if not self.items:
            return
        lines = [f"{printable(where)}: {msg}" if where else msg for where, msg in self.items]
        if len(lines) == 1:
            text = f"{printable(self.origin)}: {lines[0]}"
        else:
            text = f"{printable(self.origin)}: {len(lines)} problems:\n" + "\n".join(f"  - {ln}" for ln in lines)
        err = SpecError(text)
        err.origin = self.origin
        err.problems = list(self.items)
        raise err


# --------------------------------------------------------------------------- showing values
_BIDI = {
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200e",
    "\u200f",
    "\u061c",
}


def printable(text: Any, *, keep_newlines: bool = False) -> str:
    """``text`` safe to print in a terminal: control and bidi characters written as escapes (``\\x1b``,
    ``\\u202e``), so a name cannot move the cursor, clear the screen or reverse the line it is shown in."""
    out = []
    for ch in str(text):
        if keep_newlines and ch == "\n":
            out.append(ch)
        elif ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def show(value: Any) -> str:
    """A short, unambiguous rendering of a value for an error message (control characters escaped)."""
    text = printable(repr(value))
    return text if len(text) <= 80 else text[:77] + "..."


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, (_dt.date, _dt.datetime)):
        return "date"
    return type(value).__name__


def suggest(word: Any, choices) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices`` (also case-insensitively), or ''."""
    if not isinstance(word, str):
        return ""
    choices = [str(c) for c in choices]
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(word.lower(), choices, n=1, cutoff=0.6)
    return f" Did you mean '{printable(close[0])}'?" if close else ""


def flow(value: Any) -> str:
    """A value as YAML flow text for an example: ``{engine: duckdb, table: refunds}``, ``[7, 14]``."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


# --------------------------------------------------------------------------- where an error is
class _Place:
    """What the walk along an error location found: the field and the model holding it."""

    def __init__(self):
        self.path = ""  # e.g. metrics[0].covariates[1]
        self.model: type[BaseModel] | None = None  # the model whose field this is
        self.key: Any = None  # the field name (or list index / mapping key) last stepped
        self.field: FieldInfo | None = None
        self.annotation: Any = None  # the type at the location
        self.parent_path = ""


def _unwrap(annotation: Any) -> tuple[Any, list]:
    """Strip Annotated and Optional; return (inner type, metadata)."""
    metadata: list = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            args = typing.get_args(annotation)
            annotation, metadata = args[0], metadata + list(args[1:])
            continue
        if origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation, metadata


def _join(base: str, step: Any) -> str:
    if isinstance(step, int) and not isinstance(step, bool):
        return f"{base}[{step}]"
    return f"{base}.{step}" if base else str(step)


def _walk(root: type[BaseModel], loc: tuple) -> _Place:
    place = _Place()
    place.annotation = root
    place.model = root
    current: Any = root
    i = 0
    while i < len(loc):
        step = loc[i]
        inner, _ = _unwrap(current)
        origin = typing.get_origin(inner)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            place.parent_path = place.path
            place.model = inner
            place.key = step
            place.path = _join(place.path, step)
            field = inner.model_fields.get(step) if isinstance(step, str) else None
            if field is None:  # an unknown key (or the alias of a field)
                field = next((f for f in inner.model_fields.values() if f.alias == step), None)
            place.field = field
            current = field.annotation if field is not None else None
            if field is not None:
                current = typing.Annotated[(current, *field.metadata)] if field.metadata else current
        elif origin in (list, tuple):
            place.parent_path, place.key = place.path, step
            place.path = _join(place.path, step)
            args = typing.get_args(inner)
            current = args[0] if args else None
        elif origin in (dict, Mapping):
            place.parent_path, place.key = place.path, step
            place.path = f"{place.path}.{printable(step)}"
            current = typing.get_args(inner)[1]
            if i + 1 < len(loc) and loc[i + 1] == "[key]":
                i += 1
        elif origin in (typing.Union, types.UnionType):
            # a tagged union: this step is the tag of the member that was validated
            members = {_tag_of(a): a for a in typing.get_args(inner)}
            current = members.get(step)
        else:
            current = None
            place.parent_path, place.key = place.path, step
            place.path = _join(place.path, step)
        place.annotation = current
        i += 1
    return place


def _tag_of(annotation: Any) -> Any:
    from pydantic import Tag

    for meta in typing.get_args(annotation)[1:] if typing.get_origin(annotation) is typing.Annotated else ():
        if isinstance(meta, Tag):
            return meta.tag
    return None


# --------------------------------------------------------------------------- wording
def _choices(annotation: Any) -> tuple[list, bool]:
    """The values a Literal field allows, and whether null is allowed too."""
    values: list = []
    nullable = False
    stack = [annotation]
    while stack:
        a = stack.pop()
        origin = typing.get_origin(a)
        if a is type(None):
            nullable = True
        elif origin is typing.Literal:
            values += list(typing.get_args(a))
        elif origin in (typing.Union, types.UnionType, typing.Annotated):
            args = typing.get_args(a)
            stack.extend(reversed(args if origin is not typing.Annotated else args[:1]))
    return values, nullable


def _range(place: _Place) -> str:
    inner, metadata = _unwrap(place.annotation)
    if place.field is not None and place.annotation is not None:
        metadata = metadata + list(place.field.metadata)
    metadata = [m for item in metadata for m in (item.metadata if isinstance(item, FieldInfo) else [item])]
    lo: Any = None  # the bound's value: any comparable (int, float, date...)
    hi: Any = None
    lo_open = hi_open = False
    for m in metadata:
        if isinstance(m, annotated_types.Gt):
            lo, lo_open = m.gt, True
        elif isinstance(m, annotated_types.Ge):
            lo, lo_open = m.ge, False
        elif isinstance(m, annotated_types.Lt):
            hi, hi_open = m.lt, True
        elif isinstance(m, annotated_types.Le):
            hi, hi_open = m.le, False
    what = "a whole number" if inner is int else "a number"
    if lo is None and hi is None:
        return what
    if hi is None or (isinstance(hi, float) and math.isinf(hi)):
        return f"{what} {'above' if lo_open else 'at least'} {lo:g}"
    if lo is None:
        return f"{what} {'below' if hi_open else 'at most'} {hi:g}"
    return f"{what} in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def _example(place: _Place) -> str | None:
    examples = place.field.examples if place.field is not None else None
    return flow(examples[0]) if examples else None


def _e_g(place: _Place) -> str:
    example = _example(place)
    return f"; e.g. `{place.key}: {example}`" if example is not None and isinstance(place.key, str) else ""


def _allowed_keys(model: type[BaseModel] | None, allow_source: bool) -> list[str]:
    if model is None:
        return []
    keys = [f.alias or name for name, f in model.model_fields.items()]
    return [k for k in keys if allow_source or k != "source"]


def _message(err: dict, place: _Place, allow_source: bool) -> str:
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    key = place.key
    if kind == CUSTOM:
        return ctx["message"]
    if kind == BLANK:
        example = _example(place)
        return "must not be empty" + (f"; write e.g. `{key}: {example}`" if example else "")
    if kind == "missing":
        custom = getattr(place.model, "MISSING", {}).get(key) if place.model is not None else None
        if custom:
            return custom
        examples = place.field.examples if place.field is not None and place.field.examples else []
        shown = " or ".join(f"`{key}: {flow(e)}`" for e in examples[:2]) or f"`{key}: ...`"
        return f"required key missing; add e.g. {shown}"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(place.model, allow_source)
        if not isinstance(key, str):
            return f"key {show(key)} is not text; keys are words like {', '.join(allowed[:4])}"
        if key == "source" and not allow_source:
            return (
                "unknown key 'source'; abkit records the spec file's path itself. Remove it. Allowed keys: "
                + ", ".join(allowed)
            )
        misplaced = getattr(place.model, "MISPLACED", {}).get(key) if place.model is not None else None
        if misplaced:  # a key of another kind: say whose, and what this kind does instead
            return f"'{printable(key)}' is {misplaced}"
        return f"unknown key '{printable(key)}'.{suggest(key, allowed)} Allowed keys: {', '.join(allowed)}"
    if kind == "literal_error":
        choices, nullable = _choices(place.annotation)
        options = ", ".join(map(str, choices)) + (" or null" if nullable else "")
        hint = suggest(value, choices)
        if nullable and isinstance(value, str) and value.strip().lower() in ("none", "null", "no", "off", ""):
            hint = f" To switch it off write `{key}: null`."
        return f"{show(value)} is not allowed; use one of {options}.{hint}"
    if kind == "string_type":
        fix = (
            "write it as one piece of text"
            if isinstance(value, (Mapping, list))
            else f'put it in quotes, e.g. `{key}: "{printable(value)}"`'
        )
        return f"expected text, got {show(value)} ({type_name(value)}); {fix}"
    if kind == "string_too_short":
        example = _example(place)
        return "must not be empty" + (f"; write e.g. `{key}: {example}`" if example else "")
    if kind == "bool_type":
        return f"expected true or false, got {show(value)} ({type_name(value)})"
    if kind in (
        "float_type",
        "int_type",
        "int_from_float",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "finite_number",
        "float_parsing",
        "int_parsing",
    ):
        return f"expected {_range(place)}, got {show(value)} ({type_name(value)}){_e_g(place)}"
    if kind in ("list_type", "tuple_type"):
        return f"expected a list, got {show(value)} ({type_name(value)}){_e_g(place)}"
    if kind == "too_short":
        return f"expected a non-empty list, got {show(value)}{_e_g(place)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        inner, _ = _unwrap(place.annotation)
        example = getattr(inner, "EXAMPLE", "") if isinstance(inner, type) else ""
        like = f" like {example}" if example else ""
        return f"expected a mapping{like}, got {show(value)} ({type_name(value)})"
    return f"{err.get('msg', kind)}; got {show(value)}"


def add_validation_errors(exc, root: type[BaseModel], problems: Problems, *, allow_source: bool = True) -> None:
    """Word every error of a pydantic ``ValidationError`` of model ``root`` and add it to ``problems``."""
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        if err["type"] == RULES:
            # paths relative to the model: a field validator's error sits at the field, a model
            # validator's at the model itself
            place = _walk(root, loc)
            base = place.parent_path if err["ctx"].get("field_level", True) and loc else place.path
            for where, message in err["ctx"]["problems"]:
                problems.add(f"{base}.{where}" if base and where else base or where, message)
            continue
        place = _walk(root, loc)
        problems.add(place.path, _message(err, place, allow_source))
