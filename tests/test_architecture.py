"""The layout the README describes: one folder per stage, imports flowing one way, small modules.

The import graph is read from the source (``ast``), counting imports inside functions too;
only imports under ``if TYPE_CHECKING:`` are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cirscope"
MAX_LINES = 420  # "no module over ~400 lines"

# Stages in data-flow order; a stage may import only from stages listed before it (and _core).
STAGES = ["_core", "gallery", "embedding", "neighbors", "projection", "query", "space",
          "datasets", "toy", "diagnostics", "eval", "analysis", "curation", "widgets", "cli"]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {id(n) for node in ast.walk(tree)
                 if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                 for n in ast.walk(node)}
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("cirscope.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("cirscope"):
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    out.add(sub if sub in MODULES else target)
    return {m for m in out if m in MODULES and m not in (name, "cirscope")}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_reader_sees_real_imports():
    # guards the test itself: a parser that found nothing would pass every check below
    assert len(MODULES) > 60
    assert sum(map(len, GRAPH.values())) > 100
    assert any(_stage(m) == "query" for m in GRAPH["cirscope.space._space"])


def test_no_module_imports_itself_through_others():
    assert _cycles(GRAPH) == []


def test_cycle_finder_finds_a_planted_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_stages_import_only_earlier_stages():
    order = {s: i for i, s in enumerate(STAGES)}
    backwards = sorted(
        (src, dst) for src, dsts in GRAPH.items() for dst in dsts
        if _stage(src) and _stage(dst) and order[_stage(dst)] > order[_stage(src)]
    )
    assert backwards == []


@pytest.mark.parametrize("stage", ["_core", "gallery", "embedding", "neighbors", "projection", "query"])
def test_core_stages_do_not_know_the_demo_data(stage):
    demo = [(src, dst) for src, dsts in GRAPH.items() if _stage(src) == stage
            for dst in dsts if _stage(dst) in ("datasets", "toy")]
    assert demo == []


def test_every_stage_is_a_folder_with_a_description():
    for stage in STAGES:
        init = PACKAGE / stage / "__init__.py"
        assert init.is_file(), stage
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 60, f"{stage}/__init__.py needs a docstring saying what the stage does"


def test_no_flat_modules_outside_the_stages():
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert flat == ["__init__.py", "__main__.py", "_version.py"]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_are_small(name):
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines"
