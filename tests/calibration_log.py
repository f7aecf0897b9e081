"""The calibration record: what every slow calibration test measured, with its Monte Carlo band.

Each calibration test calls :func:`record` with a rate it measured over ``R``
simulated experiments (a false-positive rate, or a CI coverage) and the
nominal level. :func:`record` computes

* the Monte Carlo standard error under the nominal level,
  ``se = sqrt(nominal (1 - nominal) / R)`` (the spread a correct method's
  rate has from run to run);
* the band ``measured +- Z_BAND se`` with ``Z_BAND = 4``, and whether it
  contains the nominal level (``side="two"``), or, for methods that are
  conservative by design (always-valid inference), whether the measured
  rate is not above the nominal (``side="at most"``: the band's lower end
  is at most the nominal) or the coverage not below it (``side="at least"``).

Why 4: about 60 figures are recorded; with a band of 4 standard errors a
correct method fails one of them with probability about 60 x 6.3e-5 =
0.4%, while a variance 10% too small (a 95% CI that covers about 93.6%)
is 6 SE below the nominal level at R = 10,000 and fails.

The figures are merged (by key) into ``benchmarks/calibration.json`` and the
whole record is rendered to ``benchmarks/CALIBRATION.md``; both are
deterministic (seeded simulations, no dates or timings), so a re-run that
changes nothing leaves them unchanged. Running a subset of the calibration
tests updates its rows only.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JSON_PATH = ROOT / "benchmarks" / "calibration.json"
MD_PATH = ROOT / "benchmarks" / "CALIBRATION.md"
Z_BAND = 4.0

# order of the sections in CALIBRATION.md
SECTIONS = ["A/B, fixed horizon", "A/B, always-valid (sequential)", "Quantiles", "NPS", "Difference-in-differences"]


def mc_band(value: float, nominal: float, reps: int) -> tuple[float, float, float]:
    """``(se, lower, upper)``: the Monte Carlo SE under the nominal level and the +-Z_BAND band."""
    se = math.sqrt(nominal * (1.0 - nominal) / reps)
    return se, value - Z_BAND * se, value + Z_BAND * se


def passes(value: float, nominal: float, reps: int, side: str = "two") -> bool:
    _, lo, hi = mc_band(value, nominal, reps)
    if side == "two":
        return lo <= nominal <= hi
    if side == "at most":
        return lo <= nominal
    if side == "at least":
        return hi >= nominal
    raise ValueError(side)


def record(
    key: str,
    *,
    section: str,
    test: str,
    metric: str,
    method: str,
    statistic: str,
    value: float,
    nominal: float,
    reps: int,
    side: str = "two",
    note: str = "",
) -> bool:
    """Store one figure (see the module doc); returns whether its band is consistent with the nominal level."""
    se, lo, hi = mc_band(value, nominal, reps)
    ok = passes(value, nominal, reps, side)
    entry = {
        "section": section,
        "test": test,
        "metric": metric,
        "method": method,
        "statistic": statistic,
        "value": round(float(value), 6),
        "nominal": nominal,
        "reps": int(reps),
        "side": side,
        "mc_se": round(se, 6),
        "band": [round(lo, 4), round(hi, 4)],
        "ok": bool(ok),
        "note": note,
    }
    print(
        f"[calibration] {metric} / {method}: {statistic} {value:.4f} (nominal {nominal:g}, {reps:,} "
        f"experiments, MC SE {se:.4f}, band [{lo:.4f}, {hi:.4f}]) {'ok' if ok else 'FAIL'}"
    )
    data = {}
    if JSON_PATH.exists():
        try:
            data = json.loads(JSON_PATH.read_text(encoding="utf-8"))
        except ValueError:
            data = {}
    if data.get(key) != entry:
        data[key] = entry
        _write(JSON_PATH, json.dumps(data, indent=1, sort_keys=True) + "\n")
        _write(MD_PATH, render(data))
    return ok


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def render(data: dict) -> str:
    """The record as markdown: one table per section."""
    lines = [
        "# Calibration at scale",
        "",
        "Written by the slow calibration suites (`tests/test_calibration_scale.py`, `tests/test_calibration.py`,",
        "`tests/test_calibration_extra.py`, `tests/test_did_calibration.py`) through `tests/calibration_log.py`;",
        "regenerate with `.venv/bin/python -m pytest -m slow -q` (or `make test`). Every figure comes from",
        "seeded simulations with a known truth: a *false-positive rate* is the share of A/A experiments (no",
        "effect) whose p-value is below alpha = 0.05; a *coverage* is the share of experiments whose 95%",
        "confidence interval contains the true effect (0 in an A/A test).",
        "",
        "*MC SE* is the Monte Carlo standard error under the nominal level, sqrt(p (1 - p) / R). The *band* is",
        f"the measured rate +- {Z_BAND:g} MC SE; a test fails when its band excludes the nominal level (two-sided),",
        "or, for always-valid inference, which is conservative by design, when the false-positive rate is",
        "significantly *above* alpha (`<=`) or the coverage significantly *below* 95% (`>=`).",
        "",
    ]
    by_section: dict[str, list] = {}
    for key, e in data.items():
        by_section.setdefault(e["section"], []).append((key, e))
    for section in [s for s in SECTIONS if s in by_section] + sorted(set(by_section) - set(SECTIONS)):
        lines += [
            f"## {section}",
            "",
            "| metric | method | statistic | experiments | measured | nominal | MC SE | band | result | test |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for _key, e in sorted(by_section[section], key=lambda t: t[0]):
            nominal = {
                "two": f"{e['nominal']:g}",
                "at most": f"<= {e['nominal']:g}",
                "at least": f">= {e['nominal']:g}",
            }[e["side"]]
            lines.append(
                f"| {e['metric']} | {e['method']} | {e['statistic']} | {e['reps']:,} | {e['value']:.4f} | "
                f"{nominal} | {e['mc_se']:.4f} | [{e['band'][0]:.4f}, {e['band'][1]:.4f}] | "
                f"{'pass' if e['ok'] else '**FAIL**'} | `{e['test']}` |"
            )
        notes = sorted({e["note"] for _, e in by_section[section] if e["note"]})
        if notes:
            lines.append("")
            lines += [f"* {n}" for n in notes]
        lines.append("")
    return "\n".join(lines) + "\n"
