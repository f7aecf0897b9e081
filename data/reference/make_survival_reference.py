"""Reference figures of lifelines for abkit's survival tests (tests/test_survival_reference.py).

lifelines pins pandas < 3 and abkit runs pandas 3, so lifelines is not a test
dependency: this script runs once in a separate virtualenv and writes small
CSV files next to it, which the tests read.

    python -m venv /tmp/survref && /tmp/survref/bin/pip install lifelines
    /tmp/survref/bin/python data/reference/make_survival_reference.py

Inputs (both in this folder): ``pbc312.csv`` (the 312 randomized patients of
the Mayo Clinic PBC trial, as survRM2's ``rmst2.sample.data``) and
``survival_ties.csv``, a small seeded data set with many ties and heavy
censoring written by this script on its first run (``--regenerate`` rewrites
it). Output: ``survival_lifelines.csv`` in long form, columns ``dataset, arm,
quantity, time, value``:

* ``survival``, ``ci_lower``, ``ci_upper`` at every time of lifelines'
  ``KaplanMeierFitter`` (95% exponential-Greenwood, i.e. log-log, band);
* ``median``, ``median_ci_lower``, ``median_ci_upper``
  (``median_survival_times(kmf.confidence_interval_)``);
* ``rmst`` (``restricted_mean_survival_time(kmf, t=tau)``, tau = 10 years
  for pbc, 12 days for ties).

lifelines has no standard error of the restricted mean: its
``return_variance=True`` is the variance of ``min(T, tau)`` itself, by
numerical quadrature. The standard errors are checked against R survRM2's
documented output on pbc instead (see tests/test_survival_reference.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
TAU = {"pbc": 10.0, "ties": 12.0}


def ties_data(seed: int = 20261201) -> pd.DataFrame:
    """Two arms of 150: integer-day times (many ties), about half censored, a faster treatment arm."""
    rng = np.random.default_rng(seed)
    rows = []
    for arm, scale in (("control", 12.0), ("treatment", 9.0)):
        event_time = np.ceil(rng.exponential(scale, size=150))
        censor_time = np.ceil(rng.uniform(0.0, 15.0, size=150))
        rows.append(
            pd.DataFrame(
                {
                    "arm": arm,
                    "time": np.minimum(event_time, censor_time),
                    "event": (event_time <= censor_time).astype(int),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def main(argv: list[str]) -> int:
    import lifelines
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times, restricted_mean_survival_time

    ties_path = HERE / "survival_ties.csv"
    if "--regenerate" in argv or not ties_path.exists():
        ties_data().to_csv(ties_path, index=False)
    pbc = pd.read_csv(HERE / "pbc312.csv")
    data = {
        "pbc": pd.DataFrame(
            {
                "arm": np.where(pbc.trt == 1, "treatment", "control"),
                "time": pbc.time / 365.25,
                "event": (pbc.status == 2).astype(int),
            }
        ),
        "ties": pd.read_csv(ties_path),
    }
    out = []
    for name, df in data.items():
        tau = TAU[name]
        for arm, part in df.groupby("arm"):
            kmf = KaplanMeierFitter(alpha=0.05).fit(part.time, part.event, label="S")
            sf = kmf.survival_function_["S"]
            ci = kmf.confidence_interval_
            for t, s, lo, hi in zip(sf.index, sf.to_numpy(), ci.iloc[:, 0].to_numpy(), ci.iloc[:, 1].to_numpy()):
                out += [(name, arm, "survival", t, s), (name, arm, "ci_lower", t, lo), (name, arm, "ci_upper", t, hi)]
            med = median_survival_times(ci)
            out += [
                (name, arm, "median", np.nan, float(kmf.median_survival_time_)),
                (name, arm, "median_ci_lower", np.nan, float(med.iloc[0, 0])),
                (name, arm, "median_ci_upper", np.nan, float(med.iloc[0, 1])),
            ]
            out.append((name, arm, "rmst", tau, float(restricted_mean_survival_time(kmf, t=tau))))
    frame = pd.DataFrame(out, columns=["dataset", "arm", "quantity", "time", "value"])
    frame.to_csv(HERE / "survival_lifelines.csv", index=False, float_format="%.17g")
    print(f"lifelines {lifelines.__version__}, pandas {pd.__version__}: wrote {len(frame)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
