"""The package's architecture as a test: every e3dge import (top level or inside a function) goes down the layer order, and no modules import each other in a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "e3dge"

LAYERS: list[tuple[str, ...]] = [
    ("e3dge.core",),  # errors, options, image conversion, cameras, safe Hub loading
    ("e3dge.rendering",),
    ("e3dge.backbones",),
    ("e3dge.faces",),
    ("e3dge.encoders",),
    ("e3dge.metrics",),
    ("e3dge.training",),
    ("e3dge.toy",),  # registers its sources with training (an entry point); training never imports it
    ("e3dge.editing",),
    ("e3dge.export",),
    ("e3dge.inversion",),
    ("e3dge.publish",),
    ("e3dge.demo", "e3dge.tutorials", "e3dge.app"),
    ("e3dge.cli", "e3dge.faces.__main__"),  # entry points (``python -m e3dge.faces`` is ``e3dge align``)
    ("e3dge",),  # the package root (lazy names only)
]
"""Lowest first: a module may import its own layer and the layers below it."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    best, best_len = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    assert best >= 0, f"{module} belongs to no layer: add it to LAYERS"
    return best


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported e3dge module: line}, resolving ``from pkg import submodule`` to the submodule."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]) if node.level else ""
                source = ".".join(x for x in (base, node.module or "") if x)
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
            for target in targets:
                if target.split(".")[0] == "e3dge" and target != name:
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def upward_imports(graph: dict[str, dict[str, int]]) -> list[str]:
    return sorted(
        f"{m}:{line} imports {t} (layer {layer_of(t)} above {layer_of(m)})"
        for m, edges in graph.items()
        for t, line in edges.items()
        if layer_of(t) > layer_of(m)
    )


def find_cycles(graph: dict[str, dict[str, int]]) -> list[str]:
    cycles: list[str] = []
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = "open"
        stack.append(m)
        for t in graph.get(m, {}):
            if state.get(t) == "open":
                cycles.append(" -> ".join(stack[stack.index(t) :] + [t]))
            elif t not in state and t in graph:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m)
    return cycles


def test_imports_follow_the_layer_order():
    wrong = upward_imports(import_graph())
    assert not wrong, "\n".join(wrong)


def test_no_module_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "\n".join(cycles)


def test_the_checks_catch_an_upward_import_and_a_cycle():
    graph = {
        "e3dge.training.stage1": {"e3dge.toy.heads": 12, "e3dge.core.cameras": 3},
        "e3dge.toy.heads": {"e3dge.training.stage1": 7},
        "e3dge.core.cameras": {},
    }
    assert upward_imports(graph) == ["e3dge.training.stage1:12 imports e3dge.toy.heads (layer 7 above 6)"]
    assert find_cycles(graph) == ["e3dge.training.stage1 -> e3dge.toy.heads -> e3dge.training.stage1"]
