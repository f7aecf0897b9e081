"""The pages built from the results store: the portfolio (``index.html``), the programme
(``programme.html``) and each experiment's history (``<slug>/history.html``).

Python computes the numbers and the words here; the Jinja2 templates in
``templates/html/pages/`` (``index.html.j2``, ``programme.html.j2``,
``history.html.j2``, on ``_page.html.j2``) lay them out, through
:func:`abkit.readout.pages.render_page` (autoescaped). Every page is one
self-contained file with the readouts' Content-Security-Policy: no script, no
network; images are data URIs.

**What the index lists.** Every experiment ever read out into the folder, by
any process (:func:`abkit.portfolio.overview` of the store
``<out>/abkit.duckdb``): the latest readout of each, its verdict, its primary
metric's change, and links to its page and its history, only to files that
exist. The readouts of the current run that are not in the store (stopped
before they finished, or whose rows could not be recorded) are listed from
the run itself, marked. Filters by team (owner), KPI (primary metric) and
verdict are radio buttons and CSS rules (``:checked ~``): no script.

**Concurrent runs.** :func:`write_pages` reads the store and writes both
pages under a lock on ``<out>/.abkit-pages.lock``; each run records its
rows before it takes the lock, so whichever run writes last has read every
row recorded before it: the index never loses an experiment another process
finished.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
from markupsafe import Markup

from .. import store
from ..business_impact import impact_sentence
from ..errors import StoreError
from ..formatting import POINTS, RELATIVE, RELATIVE_TO_SIZE, format_pct, p_text, signed_interval
from ..verdict import COLOURS
from .files import HISTORY_NAME, INDEX_NAME, PAGES_LOCK_NAME, PROGRAMME_NAME, atomic_write_text
from .pages import render_page
from .templates import html_template_dir

__all__ = [
    "write_pages",
    "write_history",
    "index_context",
    "programme_context",
    "history_context",
    "INDEX_NAME",
    "PROGRAMME_NAME",
    "HISTORY_NAME",
    "PAGES_LOCK_NAME",
]

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

KIND_WORDS = {"ab": "A/B test", "did": "Rollout (DiD)", "synthetic": "One-market launch", "power": "Power plan"}
_PLAN_BLUE, _GREY, _AMBER = "#0969da", "#57606a", "#9a6700"
_VERDICT_ORDER = (
    "Ship",
    "Do not ship",
    "Inconclusive",
    "Invalid",
    "Worked",
    "Made it worse",
    "No detectable impact",
    "Test plan",
    "Failed",
    "Not finished",
)
_NO_OWNER = "(no owner)"


# --------------------------------------------------------------------------- small helpers
def _finite(x) -> bool:
    try:
        return x is not None and x is not pd.NA and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _text(x) -> str | None:
    if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)):
        return None
    s = str(x)
    return s if s else None


def _when(ts) -> str:
    if ts is None or ts is pd.NaT or (isinstance(ts, float) and math.isnan(ts)):
        return "n/a"
    return pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M UTC")


def _day(d) -> str | None:
    if d is None or d is pd.NaT or (isinstance(d, float) and math.isnan(d)):
        return None
    return pd.Timestamp(d).strftime("%Y-%m-%d")


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _css(templates=None) -> Markup:
    return Markup((html_template_dir(templates) / "abkit" / "abkit.css").read_text(encoding="utf-8"))


def _page_vars(title: str, templates=None) -> dict:
    return {"title": title, "csp": CSP, "css": _css(templates), "generated": _now()}


def _colour(kind, verdict) -> str:
    label = _text(verdict) or ""
    if kind == "power":
        return _AMBER if label == "Not feasible" else _PLAN_BLUE
    return COLOURS.get(label, _GREY)


def _display(verdict, note) -> str:
    label, extra = _text(verdict) or "n/a", _text(note)
    return f"{label} ({extra})" if extra else label


def _change(row) -> tuple[str, str | None, str | None]:
    """(change, interval, p) of a store row, read as its readout read it (``change_scale``): a relative change,
    "% of |control|", NPS points, or absolute units when the control value is too close to zero."""
    scale = _text(row.get("change_scale"))
    relative = _finite(row.get("rel_effect")) and scale in (None, RELATIVE, RELATIVE_TO_SIZE)
    if relative:
        of = " of |control|" if scale == RELATIVE_TO_SIZE else ""
        change = format_pct(row["rel_effect"], 2) + of
        ci = (
            f"[{format_pct(row['rel_ci_lower'])}, {format_pct(row['rel_ci_upper'])}]"
            if _finite(row.get("rel_ci_lower")) and _finite(row.get("rel_ci_upper"))
            else None
        )
    elif _finite(row.get("effect")):
        est, lo, hi = signed_interval(
            float(row["effect"]), float(_num_or_nan(row.get("ci_lower"))), float(_num_or_nan(row.get("ci_upper")))
        )
        change = f"{est} points" if scale == POINTS else f"{est} (absolute: control near zero)"
        ci = f"[{lo}, {hi}]" if _finite(row.get("ci_lower")) and _finite(row.get("ci_upper")) else None
    else:
        return "n/a", None, None
    adjusted = _finite(row.get("p_value_adjusted"))  # the p-value the decision used, as the readout named it
    p = row.get("p_value_adjusted") if adjusted else row.get("p_value")
    label = _text(row.get("p_label")) or " ".join(
        w for w in ("adjusted" if adjusted else "", "always-valid" if row.get("sequential") is True else "", "p") if w
    )
    return change, ci, (p_text(float(p), label) if _finite(p) else None)


def _num_or_nan(x) -> float:
    return float(x) if _finite(x) else math.nan


def _verdict_group(kind, status, verdict) -> str:
    if status == "failed":
        return "Failed"
    if kind == "power":
        return "Test plan"
    return _text(verdict) or "n/a"


def _exists(folder: Path, name: str) -> str | None:
    return f"{folder.name}/{name}" if (folder / name).is_file() else None


# --------------------------------------------------------------------------- load
def _load(out_dir: Path, timeout: float) -> tuple[pd.DataFrame | None, str | None]:
    """(every row of the store, None), or (None, why not) when there is no store or it cannot be read."""
    if not store.store_path(out_dir).exists():
        return None, None
    try:
        return store.load(out_dir, timeout=timeout), None
    except StoreError as exc:
        return None, str(exc)


@contextlib.contextmanager
def _pages_lock(out_dir: Path, timeout: float) -> Iterator[bool]:
    """Hold ``out_dir/.abkit-pages.lock`` while the store is read and the pages written (True when held)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: pages are still written atomically
        yield False
        return
    fd = os.open(out_dir / PAGES_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    held = False  # write anyway: at worst an older view, never a broken page
                    break
                time.sleep(0.05)
        yield held
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- index
def _arm_from_row(row) -> dict:
    change, ci, p = _change(row)
    kind = row.get("kind")
    if kind == "power":
        change, ci, p = _text(row.get("verdict_note")) or _text(row.get("headline")) or "n/a", None, None
    # a plan's note (what the duration detects) goes in the change column, not in its label
    label = (
        (_text(row.get("verdict")) or "n/a")
        if kind == "power"
        else _display(row.get("verdict"), row.get("verdict_note"))
    )
    return {
        "variant": str(row.get("variant")),
        "label": label,
        "colour": _colour(kind, row.get("verdict")),
        "headline": _text(row.get("headline")) or "",
        "change": change,
        "ci": ci,
        "p": p,
    }


def _arm_from_summary(arm: dict, kind) -> dict:
    """An arm of this run's summary (the notebook's metadata) for a readout the store does not hold."""
    row = {
        "rel_effect": arm.get("rel_effect"),
        "rel_ci_lower": arm.get("rel_ci_lower"),
        "rel_ci_upper": arm.get("rel_ci_upper"),
        "p_value": arm.get("p_value"),
        "p_label": arm.get("p_label"),
    }
    change, ci, p = _change(row)
    if kind == "power" or arm.get("text"):
        change, ci, p = str(arm.get("text") or arm.get("label") or "n/a"), None, None
    return {
        "variant": str(arm.get("variant")),
        "label": str(arm.get("label") or "n/a"),
        "colour": str(arm.get("colour") or _GREY),
        "headline": str(arm.get("headline") or ""),
        "change": change,
        "ci": ci,
        "p": p,
    }


def _entry(
    out_dir: Path,
    slug: str,
    *,
    name,
    owner,
    kind,
    status,
    primary,
    error=None,
    arms=(),
    runs=None,
    run_time=None,
    note=None,
    verdicts=(),
) -> dict:
    folder = out_dir / slug
    page = _exists(folder, "readout.html") if status == "ok" else None
    error_file = _exists(folder, "error.txt") if status == "failed" else None
    if status == "ok" and page is None:
        note = note or "its page is not in the folder (removed?)"
    return {
        "slug": slug,
        "name": name,
        "owner": owner,
        "kind": kind,
        "kind_words": KIND_WORDS.get(kind, kind or ""),
        "status": status,
        "error": error,
        "primary": primary,
        "arms": list(arms),
        "runs": runs,
        "run_time": _when(run_time) if run_time is not None else None,
        "note": note,
        "href": page or error_file,
        "history": _exists(folder, HISTORY_NAME),
        "pdf": _exists(folder, "readout.pdf") if page else None,
        "groups": {"team": owner or _NO_OWNER, "kpi": primary or "n/a", "verdict": list(dict.fromkeys(verdicts))},
    }


def index_entries(out_dir: str | os.PathLike, frame: pd.DataFrame | None, outcomes: Sequence = ()) -> list[dict]:
    """One entry per experiment: the store's latest readout, then this run's readouts the store does not hold."""
    from ..portfolio import overview

    out_dir = Path(out_dir)
    entries: dict[str, dict] = {}
    if frame is not None and len(frame):
        rows = overview(frame)
        for slug, group in rows.groupby("slug", sort=False):
            first = group.iloc[0].to_dict()
            failed = first["status"] == "failed"
            arms = [] if failed else [_arm_from_row(r) for r in group.to_dict(orient="records")]
            entries[str(slug)] = _entry(
                out_dir,
                str(slug),
                name=first["experiment"],
                owner=_text(first["owner"]),
                kind=first["kind"],
                status="failed" if failed else "ok",
                primary=_text(first["metric"]),
                error=_text(first["error"]),
                arms=arms,
                runs=int(first["runs"]) if _finite(first["runs"]) else None,
                run_time=first["run_time"],
                verdicts=[
                    _verdict_group(first["kind"], first["status"], r["verdict"])
                    for r in group.to_dict(orient="records")
                ],
            )
    for o in outcomes:
        kind, owner = getattr(o, "kind", None), getattr(o, "owner", None)
        known = entries.get(o.slug)
        if o.status in ("interrupted", "not run"):
            if known is not None:
                known["note"] = f"this run {o.error or 'did not finish'}"
                continue
            entries[o.slug] = _entry(
                out_dir,
                o.slug,
                name=o.name,
                owner=owner,
                kind=kind,
                status="not finished",
                primary=o.primary,
                error=o.error,
                verdicts=["Not finished"],
            )
            continue
        store_problem = getattr(o, "store_error", None)
        if known is not None and not store_problem:
            continue
        note = f"not in the results store: {store_problem}" if store_problem else None
        if o.status == "ok":
            arms = [_arm_from_summary(a, kind) for a in o.verdicts]
            entries[o.slug] = _entry(
                out_dir,
                o.slug,
                name=o.name,
                owner=owner,
                kind=kind,
                status="ok",
                primary=o.primary,
                arms=arms,
                note=note,
                verdicts=[_verdict_group(kind, "ok", a.get("label", "").split(" (")[0]) for a in o.verdicts],
            )
        else:
            entries[o.slug] = _entry(
                out_dir,
                o.slug,
                name=o.name,
                owner=owner,
                kind=kind,
                status="failed",
                primary=o.primary,
                error=o.error,
                note=note,
                verdicts=["Failed"],
            )
    return list(entries.values())


def _filters(entries: list[dict]) -> list[dict]:
    """The three filter groups, each option with a CSS-safe id; entries get their ``classes``."""
    groups = [
        ("team", "Team", sorted({e["groups"]["team"] for e in entries}, key=str.lower)),
        ("kpi", "KPI", sorted({e["groups"]["kpi"] for e in entries}, key=str.lower)),
        (
            "verdict",
            "Verdict",
            sorted(
                {v for e in entries for v in e["groups"]["verdict"]},
                key=lambda v: (_VERDICT_ORDER.index(v) if v in _VERDICT_ORDER else len(_VERDICT_ORDER), v),
            ),
        ),
    ]
    out, ids = [], {}
    for key, title, values in groups:
        options = []
        for i, value in enumerate(values):
            ident = f"abkit-{key}-{i}"
            ids[(key, value)] = ident
            options.append(
                {
                    "id": ident,
                    "label": value,
                    "count": sum(
                        1 for e in entries if value in (e["groups"][key] if key == "verdict" else [e["groups"][key]])
                    ),
                }
            )
        out.append({"key": key, "title": title, "all_id": f"abkit-{key}-all", "options": options})
    for e in entries:
        classes = [ids[("team", e["groups"]["team"])], ids[("kpi", e["groups"]["kpi"])]]
        classes += [ids[("verdict", v)] for v in e["groups"]["verdict"]]
        e["classes"] = " ".join(classes)
    return out


def index_context(
    out_dir: str | os.PathLike,
    frame: pd.DataFrame | None,
    outcomes: Sequence = (),
    store_problem: str | None = None,
    templates=None,
) -> dict:
    """What ``index.html.j2`` needs (see the module doc)."""
    out_dir = Path(out_dir)
    entries = index_entries(out_dir, frame, outcomes)
    filters = _filters(entries)
    return {
        **_page_vars("Experiment readouts", templates),
        "entries": entries,
        "filters": filters,
        "store_problem": store_problem,
        "store_name": store.STORE_NAME,
        "programme": PROGRAMME_NAME if (out_dir / PROGRAMME_NAME).is_file() else None,
    }


# --------------------------------------------------------------------------- programme
def _pct_ci(mid, lo, hi, level) -> str:
    return f"{format_pct(mid)} ({level:.0%} CI {format_pct(lo)} to {format_pct(hi)})"


def _business(row, level: float, which: str) -> str | None:
    """The business total of one KPI summary row, ``which`` = 'naive' or 'shrunk', in words (None: not there)."""
    if not _text(row.get("impact_unit")) or not _finite(row.get(f"impact_{which}")):
        return None
    has_money = _finite(row.get(f"money_{which}"))
    return impact_sentence(
        float(row[f"impact_{which}"]),
        float(row[f"impact_{which}_lower"]),
        float(row[f"impact_{which}_upper"]),
        unit=str(row["impact_unit"]),
        level=level,
        better=_text(row.get("better")) or "lower",
        money=float(row[f"money_{which}"]) if has_money else None,
        money_lower=float(row[f"money_{which}_lower"]) if has_money else None,
        money_upper=float(row[f"money_{which}_upper"]) if has_money else None,
        currency=_text(row.get("currency")) if has_money else None,
    )


PAGE_TEMPLATES = ("index.html.j2", "programme.html.j2", "history.html.j2")


def compile_templates() -> None:
    """Compile the store pages' templates ahead of their first use (the runner does it while a kernel works)."""
    from .._html import environment

    env = environment()
    for name in PAGE_TEMPLATES:
        env.get_template(name)


FOREST_MIN_ROWS = 2
"""A KPI's forest plot is drawn from this many shipped experiments: one experiment's interval is already
in the table below the plot, and a chart of one row says nothing more."""


def _forest_chart(rows: pd.DataFrame, metric: str, level: float, prior_mean) -> dict | None:
    """The forest plot of a KPI's shipped experiments (raw and shrunk) for the page, drawn once
    (:func:`abkit.readout.render.chart_image`); None below :data:`FOREST_MIN_ROWS` experiments."""
    if len(rows) < FOREST_MIN_ROWS:
        return None
    from matplotlib.figure import Figure

    from ..portfolio import plot_forest
    from .render import chart_image

    fig = Figure(figsize=(7.5, 0.6 * len(rows) + 1.9), dpi=110)
    ax = fig.subplots()
    plot_forest(rows, ax=ax, level=level, title=metric, prior_mean=prior_mean if _finite(prior_mean) else None)
    return chart_image(fig, _forest_alt(rows, metric, level))


def _forest_alt(rows: pd.DataFrame, metric: str, level: float) -> str:
    parts = []
    for r in rows.to_dict(orient="records"):
        shrunk = f", corrected {format_pct(r['shrunk'])}" if _finite(r["shrunk"]) else ""
        parts.append(f"{r['experiment']}: measured {format_pct(r['estimate'])}{shrunk}")
    return (
        f"Forest plot of the shipped experiments on {metric}, relative lift with {level:.0%} intervals, as "
        "measured (grey) and corrected for the winner's curse (blue): " + "; ".join(parts) + "."
    )


def _kpi_context(row: dict, exp: pd.DataFrame, excluded: pd.DataFrame, level: float, out_dir: Path) -> dict:
    from ..portfolio import programme_sentence
    from ..stats.shrinkage import MIN_EXPERIMENTS

    metric = row["metric"]
    n, n_ship = int(row["experiments"]), int(row["shipped"])
    corrected = _finite(row.get("shrunk_total"))
    shipped = exp[(exp["metric"] == metric) & exp["shipped"]].reset_index(drop=True)
    left = excluded[excluded["metric"] == metric]
    sentence, note = programme_sentence(row, level), _text(row.get("note"))
    if n_ship and corrected:
        head = (
            "Corrected for the winner's curse: "
            f"{_pct_ci(row['shrunk_total'], row['shrunk_lower'], row['shrunk_upper'], level)}"
        )
    elif n_ship:
        head = (
            f"As measured: {_pct_ci(row['naive_total'], row['naive_lower'], row['naive_upper'], level)}. "
            f"Too few experiments ({n}) to correct for the winner's curse: it needs at least {MIN_EXPERIMENTS}."
        )
    elif n:
        head = "Nothing shipped yet."
    else:
        head = "No readout with a usable estimate."
    experiments = []
    for r in shipped.to_dict(orient="records"):
        folder = out_dir / str(r["slug"])
        experiments.append(
            {
                "name": r["experiment"],
                "variant": r["variant"],
                "verdict": _text(r["verdict"]) or "",
                "href": _exists(folder, "readout.html"),
                "measured": _pct_ci(r["estimate"], r["lower"], r["upper"], level)
                if _finite(r["lower"]) and _finite(r["upper"])
                else format_pct(r["estimate"]),
                "corrected": _pct_ci(r["shrunk"], r["shrunk_lower"], r["shrunk_upper"], level)
                if _finite(r["shrunk"])
                else None,
            }
        )
    chart = _forest_chart(shipped, metric, level, row.get("prior_mean"))
    return {
        "metric": metric,
        "better": _text(row.get("better")) or "n/a",
        "experiments": n,
        "shipped": n_ship,
        "win_rate": f"{row['win_rate']:.0%}" if _finite(row.get("win_rate")) else "n/a",
        "label": f"{n_ship} of {n} shipped" if n else "none usable",
        "head": head,
        "colour": "#1a7f37" if n_ship else _GREY,
        "sentence": sentence,
        "naive": _pct_ci(row["naive_total"], row["naive_lower"], row["naive_upper"], level) if n_ship else None,
        "shrunk": _pct_ci(row["shrunk_total"], row["shrunk_lower"], row["shrunk_upper"], level)
        if n_ship and corrected
        else None,
        "overstatement": format_pct(row["overstatement"]) if n_ship and _finite(row.get("overstatement")) else None,
        "prior": (
            f"{format_pct(row['prior_mean'])}, spread {format_pct(row['prior_sd'], sign=False)}"
            if corrected or _finite(row.get("prior_mean"))
            else None
        ),
        "too_few": n < MIN_EXPERIMENTS,
        "min_experiments": MIN_EXPERIMENTS,
        "note": note if note and note[1:] not in sentence else None,  # the sentence may already say it
        "business_naive": _business(row, level, "naive") if n_ship else None,
        "business_shrunk": _business(row, level, "shrunk") if n_ship else None,
        "business_of": int(row["impact_experiments"]) if _finite(row.get("impact_experiments")) else 0,
        "chart": chart,
        "rows": experiments,
        "left_out": [
            {"reason": reason, "count": int(count)} for reason, count in left.groupby("reason").size().items()
        ],
    }


def programme_context(
    out_dir: str | os.PathLike,
    frame: pd.DataFrame | None,
    store_problem: str | None = None,
    templates=None,
    level: float = 0.95,
) -> dict:
    """What ``programme.html.j2`` needs: per KPI the run / shipped / win rate and the totals, naive and corrected."""
    from ..portfolio import programme

    out_dir = Path(out_dir)
    kpis: list[dict] = []
    others: list[dict] = []
    experiments, shipped_total = 0, 0
    if frame is not None and len(frame):
        prog = programme(frame, level=level)
        latest = store.latest_rows(frame)
        primaries = set(latest.loc[latest["is_primary"].fillna(False).astype(bool), "metric"].dropna())
        for row in prog.summary.to_dict(orient="records"):
            ctx = _kpi_context(row, prog.experiments, prog.excluded, level, out_dir)
            (kpis if row["metric"] in primaries else others).append(ctx)
        usable = prog.experiments.drop_duplicates(["slug", "variant"])
        experiments, shipped_total = len(usable), int(usable["shipped"].sum())
    return {
        **_page_vars("Programme: what the experiments delivered", templates),
        "kpis": kpis,
        "others": others,
        "level": f"{level:.0%}",
        "store_problem": store_problem,
        "experiments": experiments,
        "shipped": shipped_total,
        "index": INDEX_NAME,
    }


# --------------------------------------------------------------------------- history
def history_context(out_dir: str | os.PathLike, slug: str, frame: pd.DataFrame, templates=None) -> dict:
    """What ``history.html.j2`` needs: every recorded readout of one experiment, newest first."""
    rows = store.history(frame, slug)
    rows = rows[rows["slug"] == slug]
    folder = Path(out_dir) / slug
    runs = []
    order = rows.groupby("run_id", sort=False)["record_seq"].max().sort_values(ascending=False).index
    for run_id in order:
        group = rows[rows["run_id"] == run_id]
        first = group.iloc[0].to_dict()
        primary = group[group["is_primary"].fillna(False).astype(bool)]
        arms = [] if first["status"] == "failed" else [_arm_from_row(r) for r in primary.to_dict(orient="records")]
        window = " to ".join(d for d in (_day(first["data_start"]), _day(first["data_end"])) if d) or None
        runs.append(
            {
                "when": _when(first["run_time"]),
                "status": first["status"],
                "error": _text(first["error"]),
                "arms": arms,
                "metric": _text(primary.iloc[0]["metric"]) if len(primary) else None,
                "window": window,
                "fingerprint": _text(first["data_fingerprint"]),
                "version": _text(first["abkit_version"]),
                "metrics": int(group["metric"].nunique()),
            }
        )
    latest = rows.iloc[-1] if len(rows) else None
    name = str(latest["experiment"]) if latest is not None else slug
    return {
        **_page_vars(f"History: {name}", templates),
        "experiment": name,
        "slug": slug,
        "runs": runs,
        "owner": _text(latest["owner"]) if latest is not None else None,
        "kind_words": KIND_WORDS.get(latest["kind"], "") if latest is not None else "",
        "page": "readout.html" if (folder / "readout.html").is_file() else None,
        "error_file": "error.txt" if (folder / "error.txt").is_file() else None,
        "pdf": "readout.pdf" if (folder / "readout.pdf").is_file() else None,
        "summary": "summary.md" if (folder / "summary.md").is_file() else None,
        "index": f"../{INDEX_NAME}",
        "programme": f"../{PROGRAMME_NAME}",
    }


# --------------------------------------------------------------------------- writing
def write_history(
    out_dir: str | os.PathLike,
    slug: str,
    *,
    frame: pd.DataFrame | None = None,
    timeout: float = store.DEFAULT_TIMEOUT,
    templates=None,
) -> Path:
    """Write ``<out_dir>/<slug>/history.html`` from the store (or ``frame``); :class:`StoreError` if unreadable."""
    out_dir = Path(out_dir)
    if frame is None:
        frame = store.load(out_dir, timeout=timeout)
    html = render_page("history.html.j2", **history_context(out_dir, slug, frame, templates))
    return atomic_write_text(out_dir / slug / HISTORY_NAME, str(html))


def write_pages(
    out_dir: str | os.PathLike, outcomes: Sequence = (), *, timeout: float = store.DEFAULT_TIMEOUT, templates=None
) -> tuple[Path, Path, str | None]:
    """Write ``programme.html`` and ``index.html`` of ``out_dir`` from its store and this run's ``outcomes``.

    Returns ``(index, programme, problem)``: ``problem`` says why the store
    could not be read (the index then lists this run's readouts only, with a
    banner saying so), None when it could. The pages are written whatever
    happens to the store: a reader always has an index.
    """
    out_dir = Path(out_dir)
    with _pages_lock(out_dir, timeout):
        frame, problem = _load(out_dir, timeout)
        try:
            programme_html = render_page("programme.html.j2", **programme_context(out_dir, frame, problem, templates))
        except Exception as exc:  # noqa: BLE001 - the programme could not be computed: say so, keep the index
            problem = problem or f"the programme could not be computed: {type(exc).__name__}: {exc}"
            programme_html = render_page("programme.html.j2", **programme_context(out_dir, None, problem, templates))
        programme = atomic_write_text(out_dir / PROGRAMME_NAME, str(programme_html))
        index_html = render_page("index.html.j2", **index_context(out_dir, frame, outcomes, problem, templates))
        index = atomic_write_text(out_dir / INDEX_NAME, str(index_html))
    return index, programme, problem
