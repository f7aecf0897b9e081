"""Where the readout templates live, and how a template gets its spec.

The papermill notebooks and the HTML templates are in the project's top-level
``templates/`` folder; the wheel carries the same folder as ``abkit/templates``
(``[tool.hatch.build.targets.wheel.force-include]`` in ``pyproject.toml``), so
a source checkout and a ``pip install abkit`` find them the same way
(:func:`templates_dir`). An analyst's own edited copies are used with
``abkit readout --templates DIR``.

Every template's ``parameters`` cell takes ``spec_path`` (a YAML file; relative
data paths resolve from the spec's folder) or, for scripted use, ``spec`` (a
dict as :meth:`ExperimentSpec.to_dict` writes it), and nothing else: the
template reads everything from the spec. So plain papermill runs it::

    papermill templates/ab_readout.ipynb out.ipynb -p spec_path specs/instant_refunds.yaml

:func:`notebook_spec` is the first thing each template calls: it validates the
parameters exactly as ``abkit validate`` does and raises the same
:class:`~abkit.SpecError` when they are wrong.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import ReadoutError, SpecError
from ..spec import load_spec, spec_from_dict

__all__ = ["templates_dir", "notebook_for", "html_template_dir", "notebook_spec", "TEMPLATE_NAMES"]

#: The notebook template of each spec kind.
TEMPLATE_NAMES = {
    "ab": "ab_readout.ipynb",
    "did": "did_readout.ipynb",
    "synthetic": "one_market_readout.ipynb",
    "power": "power_plan.ipynb",
}


def templates_dir() -> Path:
    """The folder of the shipped templates: ``abkit/templates`` in a wheel, ``templates/`` in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "templates", package.parent / "templates"):
        if (candidate / TEMPLATE_NAMES["ab"]).is_file():
            return candidate
    raise ReadoutError(
        f"the readout templates were not found next to the abkit package ({package}); "
        "reinstall abkit, or pass your own folder with `abkit readout --templates DIR`"
    )


def notebook_for(kind: str, folder: str | os.PathLike | None = None) -> Path:
    """The template notebook for a spec ``kind`` ('ab', 'did', 'synthetic', 'power') in ``folder`` (default: the
    shipped ones)."""
    if kind not in TEMPLATE_NAMES:
        raise ReadoutError(f"no readout template for kind {kind!r}; kinds: {', '.join(TEMPLATE_NAMES)}")
    base = Path(folder) if folder is not None else templates_dir()
    path = base / TEMPLATE_NAMES[kind]
    if not path.is_file():
        raise ReadoutError(
            f"template folder '{base}' has no {TEMPLATE_NAMES[kind]} (needed for kind: {kind} "
            f"specs); copy it from {templates_dir()} and edit the copy"
        )
    return path


def html_template_dir(folder: str | os.PathLike | None = None) -> Path:
    """The folder holding the nbconvert template ``abkit`` (``<templates>/html``)."""
    base = Path(folder) if folder is not None else templates_dir()
    if (base / "html" / "abkit" / "conf.json").is_file():
        return base / "html"
    return templates_dir() / "html"  # an analyst's folder with notebooks only: the shipped page template


def notebook_spec(
    kind: str, spec_path: str | os.PathLike | None = None, spec: Mapping | None = None, *, check_data: bool = True
):
    """The validated spec a template was given: ``spec_path`` (YAML) or ``spec`` (a dict), exactly one.

    Raises :class:`~abkit.SpecError` with ``abkit validate``'s message when the
    spec is invalid, and when it is of another kind than the template's.
    ``check_data=False`` leaves out the checks against the data (columns,
    values, arms): ``abkit readout`` has run them just before it starts the
    notebook (template parameter ``data_checked``), and they scan the data.
    """
    has_path = spec_path not in (None, "")
    has_dict = spec not in (None, {}) and spec != ""
    if has_path == has_dict:
        got = "both" if has_path else "neither"
        raise SpecError(
            f"the {TEMPLATE_NAMES.get(kind, kind)} template needs exactly one parameter, spec_path "
            f"(a YAML spec file) or spec (a dict); got {got}. Example: papermill "
            f"templates/{TEMPLATE_NAMES.get(kind, 'ab_readout.ipynb')} out.ipynb -p spec_path "
            "specs/instant_refunds.yaml"
        )
    if has_path and spec_path is not None:  # (has_path implies the second; mypy needs it spelled out)
        loaded = load_spec(os.fspath(spec_path), check_data=check_data)
    else:
        if not isinstance(spec, Mapping):
            raise SpecError(
                f"parameter spec must be a dict (as ExperimentSpec.to_dict() writes it), got {type(spec).__name__}"
            )
        loaded = spec_from_dict(spec, check_data=check_data)
    if loaded.kind != kind:
        where = f"'{spec_path}'" if has_path else "the spec dict"
        raise SpecError(
            f"{where} is a kind: {loaded.kind} spec, but this is the {TEMPLATE_NAMES[kind]} template; "
            f"run it with templates/{TEMPLATE_NAMES[loaded.kind]} (or `abkit readout`, which "
            "picks the template by kind)"
        )
    return loaded
