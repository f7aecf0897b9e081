"""Readout speed: kernels of a --jobs batch share the cores (BLAS threads); import abkit stays light."""

from __future__ import annotations

import asyncio
from pathlib import Path

from abkit.readout import kernels, runner
from abkit.readout.kernels import THREAD_VARIABLES, kernel_environment, threads_per_kernel

ROOT = Path(__file__).resolve().parents[1]


def test_threads_per_kernel_splits_the_cores_between_the_jobs():
    assert threads_per_kernel(1, cores=8) is None  # one readout: the libraries' own default
    assert threads_per_kernel(2, cores=8) == 4
    assert threads_per_kernel(3, cores=8) == 2
    assert threads_per_kernel(4, cores=2) == 1  # more jobs than cores: one thread each, never 0
    assert threads_per_kernel(2) == max(1, kernels._cores() // 2)


def test_kernel_environment_sets_every_limit_and_keeps_the_users():
    env = kernel_environment({"PATH": "/bin", "MKL_NUM_THREADS": "3"}, 2)
    assert env["PATH"] == "/bin" and env["MKL_NUM_THREADS"] == "3"  # the user's own limit is kept
    assert all(env[v] == "2" for v in THREAD_VARIABLES if v != "MKL_NUM_THREADS")
    assert kernel_environment({"PATH": "/bin"}, None) == {"PATH": "/bin"}  # no limit: unchanged


def test_the_kernel_manager_starts_kernels_with_the_limits(monkeypatch):
    # the env the kernel process is launched with (jupyter_client's launch, stubbed) carries the limits
    for v in THREAD_VARIABLES:
        monkeypatch.delenv(v, raising=False)
    seen = {}
    manager_class = runner._kernel_manager_class()

    async def launch(self, kernel_cmd, **kw):
        seen.update(kw)

    monkeypatch.setattr(manager_class.__mro__[1], "_async_launch_kernel", launch)
    monkeypatch.setattr(runner, "warm_imports", lambda **kw: None)
    cfg = runner._kernel_config(None, None, blas_threads=1)
    manager = manager_class(config=cfg)
    assert manager.blas_threads == 1
    asyncio.run(manager._async_launch_kernel(["python"], env={"PATH": "/bin"}))
    assert all(seen["env"][v] == "1" for v in THREAD_VARIABLES) and seen["env"]["PATH"] == "/bin"
    seen.clear()
    asyncio.run(manager_class(config=runner._kernel_config(None, None))._async_launch_kernel(["python"], env={}))
    assert not any(v in seen["env"] for v in THREAD_VARIABLES)  # --jobs 1: no limit


def test_run_readouts_gives_each_of_jobs_kernels_its_share(monkeypatch, tmp_path):
    seen = []

    def fake_execute(spec_path, spec, folder, **kw):
        seen.append(kw["blas_threads"])
        return runner.ReadoutOutcome(
            spec_path=spec_path,
            name=spec.name,
            slug=folder.name,
            folder=folder,
            primary=spec.primary.name,
            status="failed",
            error="not run in this test",
        )

    monkeypatch.setattr(runner, "execute_readout", fake_execute)
    monkeypatch.setattr(kernels, "_cores", lambda: 8)
    specs = [ROOT / "specs" / "instant_refunds.yaml", ROOT / "specs" / "chatbot_3arm.yaml"]
    runner.run_readouts(specs, tmp_path / "a", jobs=2, progress=False)
    runner.run_readouts(specs, tmp_path / "b", jobs=1, progress=False)
    runner.run_readouts(specs[:1], tmp_path / "c", jobs=4, progress=False)  # one spec: one kernel, no limit
    assert seen == [4, 4, None, None, None]


def test_import_abkit_does_not_load_the_analysis_stack():
    # `import abkit` and the CLI (abkit validate, abkit schema) load pandas / scipy.stats / matplotlib only
    # when an analysis needs them (about a second of CPU)
    import subprocess
    import sys

    code = (
        "import sys, abkit, abkit.cli; "
        "print(sorted(m for m in ('pandas', 'scipy.stats', 'matplotlib', 'abkit.analysis') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lazy_names_of_the_package_resolve():
    import abkit
    from abkit.aggregation import moments
    from abkit.analysis import analyze

    assert abkit.analyze is analyze and abkit.moments is moments  # the function, not the submodule
    assert {"analyze", "moments", "ExperimentResult", "analyze_segments"} <= set(dir(abkit))
    for name in abkit.__all__:
        assert getattr(abkit, name) is not None


def test_an_ab_readout_does_not_load_scipy_stats(tmp_path):
    # The A/B readout's statistics use abkit.stats.distributions (scipy.special): loading scipy.stats costs
    # each kernel about 0.4 s of CPU. The notebook's code, run in a fresh process, must not load it.
    import subprocess
    import sys

    import nbformat

    nb = nbformat.read(ROOT / "templates" / "ab_readout.ipynb", as_version=4)
    cells = [
        "\n".join(ln for ln in c.source.splitlines() if not ln.startswith("%"))
        for c in nb.cells
        if c.cell_type == "code"
    ]
    code = "import matplotlib\nmatplotlib.use('Agg')\n" + "\n".join(cells)
    code = code.replace('spec_path = ""', f"spec_path = {str(ROOT / 'specs' / 'instant_refunds.yaml')!r}", 1)
    code += "\nimport sys\nprint('LOADED', sorted(m for m in ('scipy.stats', 'scipy.optimize') if m in sys.modules))\n"
    script = tmp_path / "readout.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "LOADED []"


def test_the_warm_up_compiles_the_exporter_the_export_uses(tmp_path):
    import nbformat

    runner._warm_up()
    key = str(runner.html_template_dir(None))
    exporter = runner._EXPORTERS[key]
    nb = nbformat.v4.new_notebook()
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "x", outputs=[nbformat.v4.new_output("display_data", data={"text/html": "<p>a <b>verdict</b></p>"})]
        )
    )
    path = tmp_path / "readout.ipynb"
    nbformat.write(nb, path)
    page = runner.export_html(path, tmp_path / "readout.html", title="Label <test>").read_text(encoding="utf-8")
    assert runner._EXPORTERS[key] is exporter  # the warmed exporter, not a new one
    assert "<p>a <b>verdict</b></p>" in page and "Label &lt;test&gt;" in page and ">x<" not in page  # code hidden


def test_only_templates_that_take_it_are_told_the_data_were_checked(tmp_path):
    # abkit readout checks every spec against its data before any kernel starts; the shipped templates take
    # `data_checked` and skip the same scan; an analyst's older copy without the parameter is not sent it
    # (papermill would warn of an unknown parameter) and checks the data itself
    import nbformat

    from abkit.readout.runner import _data_checked
    from abkit.readout.templates import notebook_for

    for kind in ("ab", "did", "synthetic", "power"):
        assert _data_checked(notebook_for(kind)) == {"data_checked": True}
    nb = nbformat.read(notebook_for("ab"), as_version=4)
    for cell in nb.cells:
        cell.source = cell.source.replace("data_checked = False", "").replace(
            "check_data=not data_checked", "check_data=True"
        )
    nbformat.write(nb, tmp_path / "ab_readout.ipynb")
    assert _data_checked(tmp_path / "ab_readout.ipynb") == {}
