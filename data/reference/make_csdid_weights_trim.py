"""Reference figures for unit weights and propensity-score trimming in Callaway & Sant'Anna, from csdid.

Not part of abkit and not run by the tests: it needs csdid (the Python port of R ``did``; its DRDID
port trims propensity scores as R's DRDID does), which conflicts with nothing but is not a test
dependency. Run it in its own virtualenv from the repository root::

    python -m venv /tmp/csdid-venv && /tmp/csdid-venv/bin/pip install csdid==0.4.3
    /tmp/csdid-venv/bin/python data/reference/make_csdid_weights_trim.py

It writes, next to itself:

* ``trim_panel.csv``: a seeded simulated panel (710 units x 3 periods) where the logit propensity
  score of several comparison units is at or above 0.995 (DRDID's ``trim.level``): trimming binds;
* ``csdid_weights_trim_attgt.csv`` and ``csdid_weights_trim_aggte.csv``: ATT(g, t) with analytic
  SEs and the four aggregations (``bstrap=False``), in the layout of ``mpdta_csdid_*.csv``, for

  - ``mpdta_w_*``: mpdta with unit weights ``pop = exp(lpop)`` (county population), never- and
    not-yet-treated controls, doubly robust without covariates and DR / IPW / outcome regression
    with ``~lpop``;
  - ``trim_*``: ``trim_panel.csv`` with ``~x``, doubly robust and IPW (trimming binds), and outcome
    regression (no propensity score, nothing trimmed).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def trim_panel(seed: int = 20261201) -> pd.DataFrame:
    """710 units, periods 1..3, one cohort launched in period 3, and a covariate ``x`` that separates it.

    Comparison units: 300 with ``x ~ N(0, 1)`` and an outlying cluster of 10 at ``x`` = 4.6..4.7;
    treated: 400 with ``x ~ N(2, 1)``. The fitted logit score of the outlying comparison units is
    between 0.995 and 0.999: DRDID's trimming drops them, and R did's overlap check (no score at or
    above 0.999) still lets the cells be estimated. Outcomes have a unit level, a common trend, an
    ``x``-specific trend (parallel trends hold only conditional on ``x``) and an effect of
    ``1 + 0.5 x`` in period 3.
    """
    rng = np.random.default_rng(seed)
    x = np.r_[rng.normal(0, 1, 300), np.linspace(4.6, 4.7, 10), rng.normal(2, 1, 400)]
    first = np.r_[np.zeros(310), np.full(400, 3.0)]
    n, periods = x.size, np.arange(1, 4)
    level = rng.normal(0, 1, n) + 0.3 * x
    t = periods[None, :]
    y = (
        level[:, None]
        + 0.5 * t
        + 0.4 * x[:, None] * t
        + rng.normal(0, 1, (n, periods.size))
        + (t >= first[:, None]) * (first[:, None] > 0) * (1 + 0.5 * x[:, None])
    )
    return pd.DataFrame(
        {
            "id": np.repeat(np.arange(1, n + 1), periods.size),
            "period": np.tile(periods, n),
            "first_treated": np.repeat(first, periods.size).astype(int),
            "x": np.repeat(x, periods.size),
            "y": y.ravel(),
        }
    )


def run(data, yname, gname, idname, tname, control_group, method, xformla=None, weights_name=None):
    from csdid.att_gt import ATTgt

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ATTgt(
            yname=yname,
            gname=gname,
            idname=idname,
            tname=tname,
            data=data,
            control_group=control_group,
            xformla=xformla,
            weights_name=weights_name,
        ).fit(est_method=method, bstrap=False)
        attgt = pd.DataFrame(
            {
                "group": fit.results["group"],
                "t": fit.results["year"],
                "att": fit.results["att"],
                "se": fit.results["se"],
            }
        )
        rows = []
        for typec in ("simple", "group", "dynamic", "calendar"):
            a = fit.aggte(typec=typec, bstrap=False).atte
            if typec == "simple":
                rows.append(
                    dict(
                        type=typec,
                        egt=np.nan,
                        att_egt=np.nan,
                        se_egt=np.nan,
                        overall_att=a["overall_att"],
                        overall_se=a["overall_se"],
                    )
                )
            else:
                for e, att, se in zip(a["egt"], a["att_egt"], a["se_egt"]):
                    rows.append(
                        dict(
                            type=typec,
                            egt=e,
                            att_egt=att,
                            se_egt=se,
                            overall_att=a["overall_att"],
                            overall_se=a["overall_se"],
                        )
                    )
    return attgt, pd.DataFrame(rows)


def main() -> None:
    mpdta = pd.read_csv(HERE / "mpdta.csv")
    mpdta["pop"] = np.exp(mpdta["lpop"])
    panel = trim_panel()
    panel.to_csv(HERE / "trim_panel.csv", index=False, float_format="%.12g")
    panel = pd.read_csv(HERE / "trim_panel.csv")  # the figures are for the stored (rounded) values
    scenarios = {
        "mpdta_w_nev_dr": (mpdta, "nevertreated", "dr", None, "pop"),
        "mpdta_w_nyt_dr": (mpdta, "notyettreated", "dr", None, "pop"),
        "mpdta_w_nev_dr_cov": (mpdta, "nevertreated", "dr", "~lpop", "pop"),
        "mpdta_w_nyt_ipw_cov": (mpdta, "notyettreated", "ipw", "~lpop", "pop"),
        "mpdta_w_nev_reg_cov": (mpdta, "nevertreated", "reg", "~lpop", "pop"),
        "trim_nev_dr_cov": (panel, "nevertreated", "dr", "~x", None),
        "trim_nev_ipw_cov": (panel, "nevertreated", "ipw", "~x", None),
        "trim_nev_reg_cov": (panel, "nevertreated", "reg", "~x", None),
    }
    att_rows, agg_rows = [], []
    for name, (data, cg, method, xf, w) in scenarios.items():
        names = (
            ("lemp", "first.treat", "countyreal", "year") if data is mpdta else ("y", "first_treated", "id", "period")
        )
        attgt, agg = run(data, *names, cg, method, xf, w)
        att_rows.append(attgt.assign(scenario=name))
        agg_rows.append(agg.assign(scenario=name))
    att = pd.concat(att_rows)[["scenario", "group", "t", "att", "se"]]
    agg = pd.concat(agg_rows)[["scenario", "type", "egt", "att_egt", "se_egt", "overall_att", "overall_se"]]
    att.to_csv(HERE / "csdid_weights_trim_attgt.csv", index=False, float_format="%.15g")
    agg.to_csv(HERE / "csdid_weights_trim_aggte.csv", index=False, float_format="%.15g")


if __name__ == "__main__":
    main()
