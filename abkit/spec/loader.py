"""The entry points: :func:`load_spec` (a YAML file) and :func:`spec_from_dict` (a mapping), any kind."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from .models import SYNTHETIC_METHODS
from .problems import Problems
from .validated import ExperimentSpec, PowerSpec, RolloutSpec, SyntheticSpec, _build
from .yaml_loading import parse_spec_text, read_spec_file

__all__ = ["load_spec", "spec_from_dict"]

_CLASS: dict[str, type[ExperimentSpec] | type[RolloutSpec] | type[SyntheticSpec] | type[PowerSpec]] = {
    "did": RolloutSpec,
    "synthetic": SyntheticSpec,
    "power": PowerSpec,
}


def _kind_of(raw) -> str:
    """The spec's kind; a rollout spec (``kind: did``) with a synthetic ``method`` (sdid, sc, synthetic) is a
    one-market launch: ``synthetic``."""
    kind = raw.get("kind") if isinstance(raw, Mapping) else None
    if kind == "did" and raw.get("method") in SYNTHETIC_METHODS:
        return "synthetic"
    return kind if kind in _CLASS else "ab"


def spec_from_dict(raw: Mapping, **kwargs) -> ExperimentSpec | RolloutSpec | SyntheticSpec | PowerSpec:
    """Validate a spec mapping of any kind: ``ab`` -> ExperimentSpec, ``did`` -> RolloutSpec, ``synthetic`` ->
    SyntheticSpec, ``power`` -> PowerSpec.

    Keyword arguments as for :meth:`ExperimentSpec.from_dict` (``base_dir``, ``origin``, ``check_data``).
    """
    return _CLASS.get(_kind_of(raw), ExperimentSpec).from_dict(raw, **kwargs)


def load_spec(
    path: str | os.PathLike, *, check_data: bool = True
) -> ExperimentSpec | RolloutSpec | SyntheticSpec | PowerSpec:
    """Read and validate one YAML spec file; nothing in it is executed.

    ``kind: ab`` (the default) gives an :class:`ExperimentSpec`, ``kind: did`` a
    :class:`RolloutSpec`, ``kind: synthetic`` a :class:`SyntheticSpec`, ``kind: power`` a :class:`PowerSpec`. A relative
    ``data`` path is taken from the spec file's directory. The file is read as
    untrusted input (:mod:`abkit.spec.yaml_loading`: size, alias expansion and
    nesting are bounded). Every problem raises one :class:`abkit.SpecError`.
    """
    p = Path(path)
    origin = str(path)
    problems = Problems(origin)
    raw = parse_spec_text(read_spec_file(p, problems), problems)
    if raw is None:
        problems.add("", "the file is empty; a spec needs at least name, data and metrics")
        problems.raise_if_any()
    kind = _kind_of(raw)
    spec = _build(
        _CLASS.get(kind, ExperimentSpec),
        raw,
        origin=origin,
        base_dir=p.resolve().parent,
        check_data=check_data,
        allow_source=False,
        kind=kind,
    )
    return replace(spec, source=str(p.resolve()))
