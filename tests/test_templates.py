"""The readout templates as a scheduler and an analyst use them.

- They live in the top-level ``templates/`` folder and ship inside the wheel
  (build configuration, not a copy kept by hand).
- Plain papermill runs them, from the command line and from Python, with the
  one parameter ``spec_path`` (or ``spec``, a dict); ``abkit export`` turns the
  executed notebook into the same page ``abkit readout`` writes.
- Bad parameters fail with ``abkit validate``'s own message.
- ``abkit readout --templates DIR`` uses an analyst's edited copies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from abkit.errors import SpecError
from abkit.readout.runner import execute_readout
from abkit.readout.templates import TEMPLATE_NAMES, notebook_for, notebook_spec, templates_dir
from abkit.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
AB_SPEC = ROOT / "specs" / "instant_refunds.yaml"
DID_SPEC = ROOT / "specs" / "refund_policy_rollout.yaml"


def _summary(notebook: Path) -> dict:
    """The readout's summary, without the time its data snapshot was taken (the fingerprint stays)."""
    nb = nbformat.read(str(notebook), as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", ()):
            if "abkit" in (out.get("metadata") or {}):
                summary = dict(out["metadata"]["abkit"])
                summary["data_snapshot"] = {k: v for k, v in summary["data_snapshot"].items() if k != "taken_at"}
                return summary
    raise AssertionError(f"no readout summary in {notebook}")


def _run(args, cwd, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env, timeout=600, **kw)


def test_templates_live_at_the_top_level():
    assert templates_dir() == ROOT / "templates"
    assert not (ROOT / "abkit" / "templates").exists()  # one home, no copy kept by hand
    for kind, name in TEMPLATE_NAMES.items():
        assert notebook_for(kind) == ROOT / "templates" / name
    assert (ROOT / "templates" / "html" / "abkit" / "conf.json").is_file()


def test_the_wheel_carries_the_templates(tmp_path):
    built = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("abkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in TEMPLATE_NAMES.values():
        assert f"abkit/templates/{name}" in names
    assert "abkit/templates/html/abkit/conf.json" in names and "abkit/readout/templates.py" in names
    # Installed from the wheel (no checkout around it), abkit finds its own copy.
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    probe = subprocess.run(
        [sys.executable, "-c", "from abkit.readout.templates import templates_dir; print(templates_dir())"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site)},
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    assert Path(probe.stdout.strip()) == site / "abkit" / "templates"


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """`papermill templates/ab_readout.ipynb out.ipynb -p spec_path specs/instant_refunds.yaml`, from the repo root."""
    out = tmp_path_factory.mktemp("papermill") / "out.ipynb"
    done = _run(
        [
            str(BIN / "papermill"),
            "templates/ab_readout.ipynb",
            str(out),
            "-p",
            "spec_path",
            "specs/instant_refunds.yaml",
            "--no-progress-bar",
        ],
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_plain_papermill_cli_gives_the_readout_abkit_readout_gives(cli_run, tmp_path):
    reference = execute_readout(AB_SPEC, load_spec(AB_SPEC), tmp_path / "instant_refunds")
    assert reference.ok, reference.error
    assert _summary(cli_run) == _summary(reference.notebook)
    page = cli_run.with_suffix(".html")
    exported = _run([str(BIN / "abkit"), "export", str(cli_run), "--title", "Instant refunds"], cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert Path(exported.stdout.strip()) == page
    text = page.read_text(encoding="utf-8")
    assert "Instant refunds for low-value returns" in text and "<script src=" not in text
    assert "abkit.analyze(" not in text  # code hidden, as on abkit readout's page


def test_plain_papermill_from_python_with_a_path_or_a_dict(tmp_path):
    import papermill

    nb = tmp_path / "did.ipynb"
    papermill.execute_notebook(
        str(notebook_for("did")),
        str(nb),
        parameters={"spec_path": str(DID_SPEC)},
        cwd=str(tmp_path),
        progress_bar=False,
        log_output=False,
    )
    assert _summary(nb)["kind"] == "did"
    # scripted use: the spec as a dict (what ExperimentSpec.to_dict() writes), e.g. built by a scheduler
    nb2 = tmp_path / "did_dict.ipynb"
    papermill.execute_notebook(
        str(notebook_for("did")),
        str(nb2),
        parameters={"spec": load_spec(DID_SPEC).to_dict()},
        cwd=str(tmp_path),
        progress_bar=False,
        log_output=False,
    )
    assert _summary(nb2) == _summary(nb)


def test_bad_parameters_fail_with_the_validate_message(tmp_path):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        AB_SPEC.read_text(encoding="utf-8")
        .replace("better: lower\n    primary: true", "better: lowr\n    primary: true")
        .replace("../data/", str(ROOT / "data") + "/"),
        encoding="utf-8",
    )
    with pytest.raises(SpecError) as expected:
        load_spec(bad)
    with pytest.raises(PapermillExecutionError) as raised:
        papermill.execute_notebook(
            str(notebook_for("ab")),
            str(tmp_path / "o.ipynb"),
            parameters={"spec_path": str(bad)},
            cwd=str(tmp_path),
            progress_bar=False,
            log_output=False,
        )
    assert raised.value.ename == "SpecError"
    assert raised.value.evalue == str(expected.value)
    assert "lowr" in raised.value.evalue


def test_notebook_spec_refuses_missing_both_and_the_wrong_kind():
    with pytest.raises(SpecError, match="exactly one parameter, spec_path .* got neither"):
        notebook_spec("ab", "", {})
    with pytest.raises(SpecError, match="got both"):
        notebook_spec("ab", str(AB_SPEC), {"name": "x"})
    with pytest.raises(
        SpecError,
        match=r"kind: did spec, but this is the ab_readout.ipynb template.*"
        r"templates/did_readout.ipynb",
    ):
        notebook_spec("ab", str(DID_SPEC))
    with pytest.raises(SpecError, match="must be a dict"):
        notebook_spec("ab", None, ["not", "a", "dict"])


def test_readout_uses_an_analysts_own_templates(tmp_path):
    mine = tmp_path / "my_templates"
    shutil.copytree(templates_dir(), mine)
    nb = nbformat.read(mine / "ab_readout.ipynb", as_version=4)
    nb.cells.insert(
        3,
        nbformat.v4.new_code_cell(
            'display(HTML("<p class=\\"team-note\\">Reviewed by the Returns analytics team</p>"))'
        ),
    )
    nbformat.write(nb, mine / "ab_readout.ipynb")
    done = _run(
        [
            str(BIN / "abkit"),
            "readout",
            str(AB_SPEC),
            "--out",
            str(tmp_path / "out"),
            "--templates",
            str(mine),
            "--no-progress",
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "out" / "instant_refunds" / "readout.html").read_text(encoding="utf-8")
    assert "Reviewed by the Returns analytics team" in page
    # a folder without the template a spec needs fails the batch before anything runs, with the fix
    (mine / "did_readout.ipynb").unlink()
    failed = _run(
        [
            str(BIN / "abkit"),
            "readout",
            str(DID_SPEC),
            "--out",
            str(tmp_path / "out2"),
            "--templates",
            str(mine),
            "--no-progress",
        ],
        cwd=tmp_path,
    )
    assert failed.returncode == 2 and "has no did_readout.ipynb" in failed.stderr
    assert not (tmp_path / "out2" / "refund_policy_rollout").exists()


def test_templates_are_stored_clean_with_one_parameters_cell():
    for name in TEMPLATE_NAMES.values():
        nb = json.loads((ROOT / "templates" / name).read_text(encoding="utf-8"))
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
