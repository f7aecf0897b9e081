"""One page, one version of the data (issue 18): abkit.snapshot pins the data a readout reads.

If the file is replaced while a readout runs (a scheduled export rewriting
it), the readout fails with a clear message and writes no page; otherwise the
page and its summary name the snapshot they were computed from.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml

from abkit.errors import DataError
from abkit.readout.runner import run_readouts
from abkit.readout.templates import templates_dir
from abkit.snapshot import DataChangedError, pin


def _frame(seed: int, n: int = 3000, effect: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    treat = rng.random(n) < 0.5
    orders = rng.poisson(2, n) + 1
    return pd.DataFrame(
        {
            "variant": np.where(treat, "treatment", "control"),
            "orders": orders,
            "refunds": rng.binomial(orders, np.where(treat, 0.10 * (1 + effect), 0.10)),
        }
    )


def _replace_atomically(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    df.to_parquet(tmp)
    os.replace(tmp, path)


def test_pin_and_verify_a_file_a_folder_and_a_glob(tmp_path):
    data = tmp_path / "buyers.parquet"
    _frame(1).to_parquet(data)
    snap = pin(data)
    snap.verify()
    assert len(snap.files) == 1 and snap.files[0].size == data.stat().st_size
    assert pin(data).fingerprint == snap.fingerprint  # same data, same fingerprint
    assert "buyers.parquet" in snap.describe() and snap.fingerprint in snap.describe()
    _replace_atomically(_frame(2), data)  # the export job ran again
    with pytest.raises(DataChangedError, match=r"the data changed while the readout ran: .*buyers.parquet"):
        snap.verify()
    assert pin(data).fingerprint != snap.fingerprint

    folder = tmp_path / "export"
    folder.mkdir()
    for part in range(3):
        _frame(part).to_parquet(folder / f"part-{part}.parquet")
    (folder / "README.md").write_text("not data", encoding="utf-8")
    snap = pin(folder)
    assert [Path(f.path).name for f in snap.files] == ["part-0.parquet", "part-1.parquet", "part-2.parquet"]
    snap.verify()
    (folder / "part-1.parquet").unlink()
    with pytest.raises(DataChangedError, match="part-1.parquet .it was removed"):
        snap.verify()
    assert [Path(f.path).name for f in pin(str(folder / "part-*.parquet")).files] == [
        "part-0.parquet",
        "part-2.parquet",
    ]
    with pytest.raises(DataError, match="no files to read"):
        pin(tmp_path / "nothing-*.parquet")


def test_an_in_place_rewrite_with_the_same_size_and_time_is_caught(tmp_path):
    data = tmp_path / "buyers.csv"
    _frame(1).to_csv(data, index=False)
    stat = data.stat()
    snap = pin(data)
    text = data.read_text(encoding="utf-8")
    data.write_text(text.replace("control", "CONTROL", 1), encoding="utf-8")  # same size
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same time (rsync -t)
    with pytest.raises(DataChangedError, match="its content changed"):
        snap.verify()


def test_a_large_parquet_file_is_fingerprinted_by_its_footer(tmp_path):
    data = tmp_path / "big.parquet"
    frame = pd.DataFrame({"refund_amount": np.random.default_rng(3).gamma(2.0, 20.0, 1_200_000)})
    frame.to_parquet(data, compression=None)
    assert data.stat().st_size > 8 * 1024 * 1024
    snap = pin(data)
    frame.assign(refund_amount=frame.refund_amount + 1).to_parquet(data, compression=None)  # same shape
    with pytest.raises(DataChangedError):
        snap.verify()


@pytest.fixture
def experiment(tmp_path):
    data = tmp_path / "buyers.parquet"
    _frame(1, effect=-0.3).to_parquet(data)
    spec = {
        "name": "Refund e-mails",
        "data": str(data),
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
    path = tmp_path / "refund_emails.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path, data


def test_the_page_names_its_snapshot(experiment, tmp_path):
    spec, data = experiment
    (outcome,) = run_readouts([spec], tmp_path / "out", progress=False)
    assert outcome.ok, outcome.error
    page = outcome.html.read_text(encoding="utf-8")
    fingerprint = pin(data).fingerprint
    assert "Computed from one snapshot of the data" in page and fingerprint in page
    nb = nbformat.read(outcome.notebook, as_version=4)
    summaries = [
        o["metadata"]["abkit"] for c in nb.cells for o in c.get("outputs", ()) if "abkit" in (o.get("metadata") or {})
    ]
    assert summaries[0]["data_snapshot"]["fingerprint"] == fingerprint


def test_data_replaced_during_a_readout_fails_it_clearly(experiment, tmp_path):
    """A template with one extra cell that plays the export job: it rewrites the file mid-readout."""
    spec, data = experiment
    mine = tmp_path / "templates"
    shutil.copytree(templates_dir(), mine)
    nb = nbformat.read(mine / "ab_readout.ipynb", as_version=4)
    audit = next(i for i, c in enumerate(nb.cells) if "abkit.analyze(" in c.source)
    rewrite = (
        f"import numpy as np, pandas as pd, os\n"
        f"_df = pd.read_parquet({str(data)!r})\n"
        f"_df['refunds'] = _df['orders']  # a different export\n"
        f"_df.to_parquet({str(data) + '.tmp'!r}); os.replace({str(data) + '.tmp'!r}, {str(data)!r})"
    )
    nb.cells.insert(audit + 1, nbformat.v4.new_code_cell(rewrite))
    nbformat.write(nb, mine / "ab_readout.ipynb")
    (outcome,) = run_readouts([spec], tmp_path / "out", progress=False, templates=mine)
    assert outcome.status == "failed"
    assert "DataChangedError" in outcome.error and "the data changed while the readout ran" in outcome.error
    folder = outcome.folder
    assert not (folder / "readout.html").exists()  # no page that contradicts itself
    assert "buyers.parquet" in (folder / "error.txt").read_text(encoding="utf-8")
