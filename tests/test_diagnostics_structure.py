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


def test_results_and_the_report_are_frozen_dataclasses_with_their_own_repr(toy_space):
    import dataclasses

    report = cs.audit(toy_space, attribute="color", k=(10,), progress=False,
                      weat=({"shape": "star"}, {"shape": "circle"}, ["a yellow shape"], ["a blue shape"]))
    assert dataclasses.is_dataclass(report) and report.space is toy_space
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.results = {}
    assert repr(report).startswith("AuditReport(300 images, attribute='color', results=['skew', ")
    for name, result in report.results.items():
        assert dataclasses.is_dataclass(result), name
        first = dataclasses.fields(result)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(result, first, None)
        # the repr is the headline numbers, not the arrays; equality is identity
        summary = result.summary()
        assert repr(result).startswith(f"{type(result).__name__}({next(iter(summary))}="), name
        assert len(repr(result)) < 2_000 and "array(" not in repr(result), name
        assert result == result and result != dataclasses.replace(result), name
    outliers = report["outliers"]
    assert outliers.flags.sum() == outliers.summary()["outliers"] and outliers.flags is outliers.flags
    assert report["duplicates"].edges[0] <= report["duplicates"].nearest.min()


def test_examples_are_skipped_only_with_a_reason():
    """An example that cannot run here (a dataset on disk) says why on its line; the others run."""
    import re

    skips = []
    for folder in ("diagnostics", "eval"):
        for path in sorted((ROOT / folder).glob("*.py")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if "+SKIP" in line:
                    skips.append(line)
                    assert re.search(r"#\s*\w[^#]*#\s*doctest:\s*\+SKIP\s*$", line), f"{path.name}: {line.strip()}"
    assert all("on disk" in line for line in skips), skips
