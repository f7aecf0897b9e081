"""The house reads in one direction (issue 15.5): unique module names, no import circles, and the
pure-math layer (abkit/stats) never imports the layers above it."""

from __future__ import annotations

import ast
from pathlib import Path

import abkit

PKG = Path(abkit.__file__).parent
# What abkit/stats may use besides itself: the error family, and the two layers below it.
STATS_MAY_USE = {"abkit.errors", "abkit.moments", "abkit.metrics"}
THIRD_PARTY_NOT_IN_STATS = {"matplotlib", "papermill", "nbconvert", "duckdb", "pyspark", "jinja2"}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the abkit modules it imports anywhere (top level or inside a function: a lazy import
    is still an arrow). ``from pkg import name`` points at pkg.name when that is a module, else at pkg."""
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        base = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parent = base[: len(base) - (node.level - 1)]
                    origin = ".".join(parent + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in mods else origin for a in node.names]
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != mod:
                    edges[mod].add(target)
    return edges


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan 1972), iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_every_module_name_is_used_once():
    names = [p.stem for p in PKG.rglob("*.py") if p.name != "__init__.py"]
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"module names used twice in abkit/ (a reader cannot tell which to open): {twice}"


def test_no_module_imports_a_module_that_imports_it_back():
    circles = _circles(_imports(_modules()))
    assert not circles, f"import circles: {circles}"


def test_the_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_stats_is_pure_math():
    mods = _modules()
    edges = _imports(mods)
    for mod, path in mods.items():
        if not mod.startswith("abkit.stats"):
            continue
        upward = sorted(t for t in edges[mod] if not t.startswith("abkit.stats") and t not in STATS_MAY_USE)
        assert not upward, f"{mod} imports {upward}: move the shared piece down into abkit/stats"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            heavy = sorted({n.split(".")[0] for n in names} & THIRD_PARTY_NOT_IN_STATS)
            assert not heavy, f"{mod} imports {heavy}: abkit/stats holds pure math only"
