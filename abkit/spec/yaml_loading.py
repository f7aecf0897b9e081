"""Read a spec file as untrusted input: bounded, safe YAML.

A spec file is small text written by a person, but a scheduler runs specs
from many authors, so the reader refuses in well under a second what no
person writes: files over :data:`MAX_BYTES`; documents that, with every
alias (``*name``) expanded, hold more than :data:`MAX_NODES` values (a
600-byte "billion laughs" file expands to 10^9 strings); nesting deeper than
:data:`MAX_DEPTH`; keys repeated within one mapping (YAML would silently
keep the last). These are counted on the parser's event stream, before
anything is built, so a hostile file costs at most its own size in work.
Then the document is built by YAML's safe loader (plain data only: no tags
that construct Python objects; libyaml's ``CSafeLoader`` when installed).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from ..errors import SpecError
from .problems import Problems

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "parse_spec_text", "read_spec_file"]

MAX_BYTES = 256 * 1024  # the sample specs are 1-3 KB
MAX_NODES = 10_000  # values after alias expansion; a spec with 100 metrics has about 1,500
MAX_DEPTH = 16  # the deepest sample path, metrics[0].covariates[0][1], is 4 levels down

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when available (same safe constructor)


def read_spec_file(path: str | os.PathLike, problems: Problems) -> str:
    """The text of a spec file (UTF-8, at most MAX_BYTES); problems raised at once.

    Only a regular file is opened: a named pipe would block the reader and ``/dev/zero`` never ends.
    """
    p = Path(path)
    try:
        info = p.stat()
    except FileNotFoundError:
        problems.add("", f"spec file not found (looked for {p.resolve()}); check the path")
        problems.raise_if_any()
    except (OSError, RuntimeError) as exc:
        problems.add("", f"cannot read the spec file: {exc}")
        problems.raise_if_any()
    if stat.S_ISDIR(info.st_mode):
        problems.add("", f"'{p}' is a folder, not a spec file; pass the YAML files, e.g. {p}/*.yaml")
        problems.raise_if_any()
    if not stat.S_ISREG(info.st_mode):
        problems.add("", f"'{p}' is not a regular file (a device, pipe or socket); a spec is a YAML file")
        problems.raise_if_any()
    if info.st_size > MAX_BYTES:
        _too_large(problems)
    try:
        with open(p, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        problems.add("", f"cannot read the spec file: {exc}")
        problems.raise_if_any()
    if len(data) > MAX_BYTES:
        _too_large(problems)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.add("", f"cannot read the spec file: it is not UTF-8 text ({exc}); save it as UTF-8")
        problems.raise_if_any()
    raise AssertionError("unreachable")


def _too_large(problems: Problems) -> None:
    problems.add(
        "",
        f"the file is larger than {MAX_BYTES // 1024} KB; a spec is a short YAML file (name, data, "
        "metrics). Is this the data file?",
    )
    problems.raise_if_any()


class _Frame:
    """An open mapping or sequence while the events stream by."""

    __slots__ = ("anchor", "depth_below", "expecting_key", "index", "key", "keys", "mapping", "values_at_start")

    def __init__(self, mapping: bool, anchor: str | None, values_at_start: int, depth: int):
        self.mapping = mapping
        self.expecting_key = True
        self.keys: set[str] = set()
        self.anchor = anchor
        self.values_at_start = values_at_start
        self.depth_below = depth  # the deepest level reached inside, aliases expanded
        self.key: str | None = None
        self.index = 0

    def value_done(self) -> None:
        """A node ended: in a mapping a key is followed by its value and a value by the next key."""
        if self.mapping:
            self.expecting_key = not self.expecting_key
        else:
            self.index += 1


def _path(stack: list[_Frame]) -> str:
    out = ""
    for frame in stack[:-1]:
        if frame.mapping:
            out = f"{out}.{frame.key}" if out else str(frame.key)
        else:
            out += f"[{frame.index}]"
    return out


def _check_events(text: str, problems: Problems) -> None:
    """Size after alias expansion, depth and repeated keys, from the event stream (nothing is built)."""
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (values, levels) of its node, aliases expanded
    stack: list[_Frame] = []
    values = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(
            event, (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentStartEvent, yaml.DocumentEndEvent)
        ):
            continue
        depth = len(stack)
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            frame = stack.pop()
            if frame.anchor is not None:
                anchors[frame.anchor] = (values - frame.values_at_start, frame.depth_below - depth + 1)
            if stack:
                stack[-1].depth_below = max(stack[-1].depth_below, frame.depth_below)
                stack[-1].value_done()
            continue
        top = stack[-1] if stack else None
        if top is not None and top.mapping and top.expecting_key and isinstance(event, yaml.ScalarEvent):
            if event.value in top.keys:
                where = _path(stack)
                where = f"{where}.{event.value}" if where else event.value
                problems.add(
                    where,
                    f"key repeated on line {event.start_mark.line + 1}; YAML would silently keep "
                    "only the last one. Remove the duplicate",
                )
            top.keys.add(event.value)
            top.key = event.value
        if isinstance(event, yaml.AliasEvent):
            size, levels = anchors.get(event.anchor, (1, 1))
            values += size
            reach = depth + levels
        elif isinstance(event, yaml.ScalarEvent):
            values += 1
            reach = depth + 1
            if event.anchor is not None:
                anchors[event.anchor] = (1, 1)
        else:  # the start of a mapping or a sequence
            values += 1
            reach = depth + 1
            stack.append(_Frame(isinstance(event, yaml.MappingStartEvent), event.anchor, values - 1, depth + 1))
        if values > MAX_NODES:
            _too_big(problems)
        if reach > MAX_DEPTH:
            _too_deep(event, problems)
        if top is not None:
            top.depth_below = max(top.depth_below, reach)
            if not isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                top.value_done()


def _too_big(problems: Problems) -> None:
    problems.items.clear()
    problems.add(
        "",
        f"the document holds more than {MAX_NODES:,} values once its aliases (*name) are expanded; a "
        "spec is a short list of settings. Refused (aliases that multiply, or a huge list)",
    )
    problems.raise_if_any()


def _too_deep(event, problems: Problems) -> None:
    problems.items.clear()
    problems.add(
        "",
        f"line {event.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep (counting what "
        "aliases bring in); a spec needs four at most. Refused",
    )
    problems.raise_if_any()


def _safe_load(text: str) -> Any:
    """``yaml.safe_load`` with libyaml's parser when available (the same safe constructor: plain data only),
    which builds a 10,000-value document in milliseconds where the pure-Python parser takes seconds."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def parse_spec_text(text: str, problems: Problems) -> Any:
    """The YAML document as plain data (mappings, lists, text, numbers, booleans, dates); problems raised at once."""
    try:
        _check_events(text, problems)
        if not len(problems):
            return _safe_load(text)
    except SpecError:
        raise
    except ValueError as exc:  # e.g. a date-like scalar that is no date: 2026-13-01
        problems.add("", f"not valid YAML: {exc}; quote the value or fix it (dates are YYYY-MM-DD)")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        problems.add("", f"{where}not valid YAML ({problem}); check the indentation and quoting around there")
    except RecursionError:
        problems.add("", "nested too deeply to read; a spec needs four levels at most")
    problems.raise_if_any()
    return None
