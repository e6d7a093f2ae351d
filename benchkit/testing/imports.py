"""The package's import graph (module-level AND function-level imports) and its layering rule.

Layers, one direction (docs/architecture.md)::

    0 ops          pure math (may import only benchkit.errors)
    0 foundation   errors, config, params, seeding, fsio, images, manifest, registry, runner, embedded, safety
    1 generators
    2 builders, methods, metrics, datasets, degrade, faces
    3 harness
    4 commands, cli, bench, testing, __main__

A module may import modules of its own layer or lower ones, never higher ones; the graph of benchkit's
modules has no cycle (a package's ``__init__`` importing its own submodules excepted, since Python
resolves that direction by design).
"""

from __future__ import annotations

import ast
from pathlib import Path

FOUNDATION = {"errors", "config", "params", "seeding", "fsio", "images", "manifest", "registry", "runner",
              "embedded", "safety"}
LAYER2 = {"builders", "methods", "metrics", "datasets", "degrade", "faces"}
LAYER4 = {"commands", "cli", "bench", "testing", "__main__"}


def layer_of(module: str) -> int:
    """Layer number of ``benchkit.x.y`` (``benchkit`` itself: 0)."""
    parts = module.split(".")
    if len(parts) == 1:
        return 0
    top = parts[1]
    if top == "ops" or top in FOUNDATION:
        return 0
    if top == "generators":
        return 1
    if top in LAYER2:
        return 2
    if top == "harness":
        return 3
    if top in LAYER4:
        return 4
    raise ValueError(f"module {module} is in no layer: add its top-level name to benchkit/testing/imports.py")


def module_files(root: Path | None = None) -> dict:
    """{module name: path} of every .py file of the package."""
    root = Path(root) if root else Path(__file__).resolve().parents[1]
    out = {}
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _resolve(name: str, modules: set) -> str | None:
    """The benchkit module ``name`` refers to (a function or class import resolves to its module)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(root: Path | None = None) -> dict:
    """{module: {imported benchkit module: first line number}} over every import statement, at any depth."""
    files = module_files(root)
    mods = set(files)
    graph = {}
    for mod, path in files.items():
        edges = {}
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                targets = [f"{prefix}.{a.name}" for a in node.names] + [prefix]
            for t in targets:
                if not t.startswith("benchkit"):
                    continue
                r = _resolve(t, mods)
                if r and r != mod:
                    edges.setdefault(r, node.lineno)
        graph[mod] = edges
    return graph


def layer_violations(graph: dict) -> list:
    """['a (layer i) imports b (layer j > i) at line n', ...]."""
    out = []
    for mod, edges in sorted(graph.items()):
        la = layer_of(mod)
        for dep, line in sorted(edges.items()):
            lb = layer_of(dep)
            if lb > la:
                out.append(f"{mod} (layer {la}) imports {dep} (layer {lb}) at line {line}")
            elif mod.startswith("benchkit.ops") and not (dep.startswith("benchkit.ops") or dep == "benchkit.errors"):
                out.append(f"{mod} (ops: pure math) imports {dep} at line {line}")
    return out


def cycles(graph: dict) -> list:
    """Strongly connected components of size > 1 (a package importing its own submodules excepted)."""
    def ignored(a, b):
        return b.startswith(a + ".")  # package __init__ -> its submodule

    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if ignored(v, w):
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    import sys

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 10000))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(old)
    return out
