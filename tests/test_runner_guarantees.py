"""What an `abkit readout` run guarantees a scheduler and a shared reports folder (issue 18).

- Experiments have a stable identity; two specs with one file name never
  overwrite each other, whatever the argument order or the run.
- Files abkit did not write (a folder's own files, a user's index.html) are
  never overwritten without --force.
- One process per experiment folder at a time (a lock), and a killed run's
  temporary files are swept by the next one.
- Ctrl-C stops a --jobs 2 batch within seconds: kernels shut down, temporary
  files removed, the index written and true to what is on disk.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from abkit.errors import ReadoutError, SpecError
from abkit.readout.runner import (
    GENERATOR_MARK,
    INDEX_NAME,
    LOCK_NAME,
    OWNER_NAME,
    _folder_lock,
    experiment_identity,
    run_readouts,
)

ROOT = Path(__file__).resolve().parent.parent
ABKIT = Path(sys.executable).with_name("abkit")


def _data(path: Path, n: int = 2000, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    treat = rng.random(n) < 0.5
    orders = rng.poisson(2, n) + 1
    pd.DataFrame(
        {
            "variant": np.where(treat, "treatment", "control"),
            "orders": orders,
            "refunds": rng.binomial(orders, np.where(treat, 0.08, 0.10)),
        }
    ).to_parquet(path)
    return path


def _spec(path: Path, data: Path, name: str, **extra) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = {
        "name": name,
        "data": str(data),
        **extra,
        "metrics": [
            {
                "name": "refund_rate",
                "type": "ratio",
                "numerator": "refunds",
                "denominator": "orders",
                "better": "lower",
                "primary": True,
            }
        ],
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def two_teams(tmp_path):
    data = _data(tmp_path / "buyers.parquet")
    a = _spec(tmp_path / "specs" / "teamA" / "refunds.yaml", data, "Team A refunds")
    b = _spec(tmp_path / "specs" / "teamB" / "refunds.yaml", data, "Team B refunds")
    return tmp_path, a, b


def _cli(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ABKIT), *map(str, args), "--no-progress"], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def test_identity_is_the_id_else_the_path_below_root_else_the_file_name(tmp_path):
    spec_path = tmp_path / "specs" / "teamA" / "refunds.yaml"
    assert experiment_identity(spec_path, None) == "refunds"
    assert experiment_identity(spec_path, None, root=tmp_path / "specs") == "teamA/refunds"
    assert experiment_identity(spec_path, type("S", (), {"id": "returns-42"})(), root=tmp_path) == "returns-42"
    with pytest.raises(SpecError, match="not under the root"):
        experiment_identity(spec_path, None, root=tmp_path / "elsewhere")


def test_two_specs_with_one_file_name_are_refused_in_any_order(two_teams):
    base, a, b = two_teams
    for order in ((a, b), (b, a)):
        with pytest.raises(SpecError, match=r"would both write .*refunds.*\n.*id:.*--root"):
            run_readouts(order, base / "out", progress=False)
    assert not (base / "out" / "refunds").exists()


def test_root_gives_each_team_its_own_folder_and_a_later_run_cannot_take_it(two_teams):
    base, a, b = two_teams
    outcomes = run_readouts([b, a], base / "out", jobs=2, progress=False, root=base / "specs")
    assert [o.slug for o in outcomes] == ["teamb-refunds", "teama-refunds"] and all(o.ok for o in outcomes)
    assert "Team A refunds" in (base / "out" / "teama-refunds" / "readout.html").read_text(encoding="utf-8")
    # Without --root, team A's spec alone reads out into out/refunds; team B's, run later, is refused there.
    first = _cli("readout", a, "--out", base / "out", cwd=base)
    assert first.returncode == 0, first.stderr
    page = (base / "out" / "refunds" / "readout.html").read_bytes()
    second = _cli("readout", b, "--out", base / "out", cwd=base)
    assert second.returncode == 2
    assert "another file with the same name" in second.stderr and "id:" in second.stderr
    assert (base / "out" / "refunds" / "readout.html").read_bytes() == page  # untouched
    forced = _cli("readout", b, "--out", base / "out", "--force", cwd=base)
    assert forced.returncode == 0, forced.stderr
    assert "Team B refunds" in (base / "out" / "refunds" / "readout.html").read_text(encoding="utf-8")


def test_files_abkit_did_not_write_are_not_overwritten(two_teams):
    base, a, _ = two_teams
    out = base / "out"
    out.mkdir()
    (out / INDEX_NAME).write_text("<html>my own dashboard</html>", encoding="utf-8")
    refused = _cli("readout", a, "--out", out, cwd=base)
    assert refused.returncode == 2 and "index.html was not written by abkit" in refused.stderr
    assert not (out / "refunds").exists()
    (out / INDEX_NAME).unlink()
    (out / "refunds").mkdir()
    (out / "refunds" / "notes.txt").write_text("mine", encoding="utf-8")
    refused = _cli("readout", a, "--out", out, cwd=base)
    assert refused.returncode == 2 and "holds files abkit did not write (notes.txt)" in refused.stderr
    assert _cli("readout", a, "--out", out, "--force", cwd=base).returncode == 0
    assert (out / "refunds" / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert GENERATOR_MARK in (out / INDEX_NAME).read_text(encoding="utf-8")
    assert _cli("readout", a, "--out", out, cwd=base).returncode == 0  # its own index: no --force needed


def test_a_killed_runs_leftovers_are_swept_and_a_busy_folder_is_left_alone(two_teams):
    base, a, _ = two_teams
    folder = base / "out" / "refunds"
    folder.mkdir(parents=True)
    for stale in (".readout.abc123.ipynb", ".kernel.stderr", ".readout.html.x1.tmp"):
        (folder / stale).write_text("left by a SIGKILLed run", encoding="utf-8")
    (outcome,) = run_readouts([a], base / "out", progress=False)
    assert outcome.ok
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [LOCK_NAME, OWNER_NAME, "readout.html", "readout.ipynb", "summary.md", "history.html"]
    )
    page = (folder / "readout.html").read_bytes()
    with _folder_lock(folder):  # another process is reading this experiment out
        (busy,) = run_readouts([a], base / "out", progress=False)
    assert busy.status == "failed" and "another abkit readout is writing" in busy.error
    assert (folder / "readout.html").read_bytes() == page and not (folder / "error.txt").exists()
    with _folder_lock(folder), pytest.raises(ReadoutError, match="another abkit readout"):
        with _folder_lock(folder):
            pass


def test_the_index_links_only_to_files_that_exist(two_teams):
    base, a, b = two_teams
    out = base / "out"
    out.mkdir()
    (out / "refunds").write_text("a file where the experiment's folder should be", encoding="utf-8")
    outcomes = run_readouts([a], out, progress=False, force=True)
    assert outcomes[0].status == "failed"
    index = (out / INDEX_NAME).read_text(encoding="utf-8")
    for href in re.findall(r'href="([^"]+)"', index):
        assert href.startswith("data:") or (out / href).exists(), href


def _kernels_of(pid: int) -> list[int]:
    """Kernel processes started by process ``pid`` (ipykernel's JPY_PARENT_PID)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"JPY_PARENT_PID={pid}".encode() in env:
            found.append(int(proc.name))
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_ctrl_c_stops_a_jobs_2_batch_within_seconds(tmp_path):
    data = _data(tmp_path / "buyers.parquet", n=4000)
    specs = [_spec(tmp_path / "specs" / f"exp{i}.yaml", data, f"Experiment {i}") for i in range(6)]
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [str(ABKIT), "readout", *map(str, specs), "--out", str(out), "--jobs", "2", "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob("*/.readout.*.ipynb")):
        time.sleep(0.05)  # wait until notebooks are running
    assert list(out.glob("*/.readout.*.ipynb")), "no readout started"
    time.sleep(0.5)
    kernels = _kernels_of(proc.pid)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert proc.returncode == 130, stderr
    assert took < 5, f"took {took:.1f} s to stop"
    assert "interrupted" in stderr
    time.sleep(0.5)
    assert not [k for k in kernels if Path(f"/proc/{k}").exists()], "kernels left running"
    assert not list(out.glob("*/.readout.*")) and not list(out.glob("*/.kernel.stderr"))
    index = (out / INDEX_NAME).read_text(encoding="utf-8")
    for href in re.findall(r'href="([^"]+)"', index):
        assert href.startswith("data:") or (out / href).exists(), href
    pages = [p.parent.name for p in out.glob("*/readout.html")]
    assert len(pages) < len(specs)  # the queue did not run on
    assert index.count("NOT FINISHED") == len(specs) - len(pages)
    # the store claims only what a page shows: a readout that was stopped recorded nothing
    from abkit import portfolio

    recorded = set(portfolio.load(out)["slug"]) if (out / "abkit.duckdb").exists() else set()
    assert recorded <= set(pages)


def test_an_id_in_the_spec_names_the_folder(two_teams):
    base, a, b = two_teams
    for path, ident in ((a, "team-a/refunds"), (b, "team-b/refunds")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        path.write_text(yaml.safe_dump({"id": ident, **spec}, sort_keys=False), encoding="utf-8")
    outcomes = run_readouts([a, b], base / "out", jobs=2, progress=False)
    assert [o.slug for o in outcomes] == ["team-a-refunds", "team-b-refunds"] and all(o.ok for o in outcomes)
    owner = (base / "out" / "team-a-refunds" / OWNER_NAME).read_text(encoding="utf-8")
    assert '"identity": "team-a/refunds"' in owner


def test_relative_spec_paths_with_jobs_2(tmp_path):
    """Threads never race on the working directory (papermill's cwd= would os.chdir the whole process)."""
    data = _data(tmp_path / "buyers.parquet")
    for i in range(4):
        _spec(tmp_path / "specs" / f"exp{i}.yaml", data, f"Experiment {i}")
    done = _cli("readout", *[f"specs/exp{i}.yaml" for i in range(4)], "--out", "out", "--jobs", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.parent.name for p in (tmp_path / "out").glob("*/readout.html")) == [f"exp{i}" for i in range(4)]


def test_a_cell_that_times_out_fails_its_readout_and_keeps_the_cells_run_so_far(tmp_path):
    # papermill writes the notebook only at the end (no per-cell saves, 0.24 s a readout); a run stopped by
    # a cell timeout still leaves its partially executed notebook (the runner's papermill engine writes it)
    import nbformat

    from abkit.readout.templates import notebook_for

    nb = nbformat.read(notebook_for("ab"), as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("import time\ntime.sleep(120)  # hangs"))
    (tmp_path / "tpl").mkdir()
    nbformat.write(nb, tmp_path / "tpl" / "ab_readout.ipynb")
    spec = _spec(tmp_path / "slow.yaml", _data(tmp_path / "buyers.parquet"), "Slow")
    started = time.monotonic()
    (outcome,) = run_readouts([spec], tmp_path / "out", progress=False, cell_timeout=20, templates=tmp_path / "tpl")
    assert time.monotonic() - started < 90  # a 120 s cell stopped at its 20 s timeout
    assert outcome.status == "failed" and "timed out" in outcome.error.lower()
    kept = nbformat.read(outcome.notebook, as_version=4)
    ran = [c for c in kept.cells if c.cell_type == "code" and c.execution_count is not None]
    assert len(ran) >= 3 and "time.sleep(120)" in ran[-1].source  # the parameters, the imports, the hung cell
    assert not list((tmp_path / "out").glob("*/.readout.*"))
