"""The analyst walkthroughs in notebooks/ run top to bottom, so they never rot.

Each notebook is executed with papermill from notebooks/ (the working
directory JupyterLab uses), two at a time; a cell that raises fails the test
and names the notebook and the cell. The notebooks are stored without outputs
and may only use the public API and data/.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _execute(path: Path, out_dir: Path):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out = out_dir / path.name
    try:
        # the kernel's working directory via nbclient's resources path: papermill's cwd= os.chdir()s the whole
        # process, which two threads would race on
        papermill.execute_notebook(
            str(path),
            str(out),
            resources={"metadata": {"path": str(path.parent)}},
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
            execution_timeout=600,
        )
    except PapermillExecutionError as exc:
        return path.name, f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
    return path.name, nbformat.read(out, as_version=4)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    out = tmp_path_factory.mktemp("notebooks")
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(lambda p: _execute(p, out), NOTEBOOKS))


def test_there_are_walkthroughs():
    names = [p.name for p in NOTEBOOKS]
    assert names == [
        "01_quick_start.ipynb",
        "02_cuped_and_ratio_metrics.ipynb",
        "03_planning_an_experiment.ipynb",
        "04_rollout_did.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_clean_and_portable(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code), "clear the outputs"
    source = "\n".join(c.source for c in code)
    assert "/work/" not in source and "sys.path" not in source  # no machine paths, no hacks
    for ref in re.findall(r"""["'](\.\./[^"']+)["']""", source):
        assert ref.startswith("../data/"), ref  # only data/ is read
        assert (path.parent / ref).resolve().exists(), ref
    assert not re.search(r"from abkit\.(stats\.(ab|did|power)|sources|moments)\b|abkit\._", source)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(executed, path):
    nb = executed[path.name]
    assert not isinstance(nb, str), f"{path.name} failed at {nb}"
    outputs = [o for c in nb.cells for o in c.get("outputs", ())]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "every walkthrough shows a chart"


def test_quick_start_reaches_the_truth(executed):
    nb = executed["01_quick_start.ipynb"]
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", ()))
    assert "no sample ratio mismatch" in text and "Ship - " in text
