"""The diagnostics and eval packages import in one direction: no module reaches back into what imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cirscope as cs

ROOT = Path(cs.__file__).parent


def _imports(path: Path, package: str) -> set[str]:
    """Modules of cirscope that ``path`` imports anywhere (functions included), except for type checking."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for n in ast.walk(node)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cirscope"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("cirscope"))
        assert not (isinstance(node, ast.ImportFrom) and node.level), f"{path.name}: relative import"
    return out


def _graph(package: str) -> dict[str, set[str]]:
    folder = ROOT / package.split(".")[-1]
    modules = {package if p.stem == "__init__" else f"{package}.{p.stem}": p for p in folder.glob("*.py")}
    return {m: {t for t in _imports(p, package) if t in modules and t != m} for m, p in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                return [*path[path.index(t):], t]
            if t not in state and (found := visit(t)):
                return found
        state[m] = 2
        path.pop()
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


@pytest.mark.parametrize("package", ["cirscope.diagnostics", "cirscope.eval"])
def test_no_import_circles(package):
    graph = _graph(package)
    assert len(graph) > 5
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_only_the_package_face_imports_the_audit_and_the_renderer_imports_no_diagnostics():
    graph = _graph("cirscope.diagnostics")
    assert graph["cirscope.diagnostics._html"] == set()
    assert {m for m, targets in graph.items() if "cirscope.diagnostics._audit" in targets} == {"cirscope.diagnostics"}
    assert not any("cirscope.diagnostics" in targets for targets in graph.values())
