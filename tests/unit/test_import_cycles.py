"""The stsfix package has no import cycles, counting imports inside functions and TYPE_CHECKING blocks.

grimp (installed with import-linter) reads every `import` statement of every module, wherever it
is: at the top, inside a function (a lazy import), or under `if TYPE_CHECKING:`. A cycle hidden
behind a lazy import is still a cycle: the two modules cannot be understood, moved or tested apart.
Python's implicit import of a package's `__init__` before its submodules is not an import statement
and is not counted; a re-export in an `__init__` is (`from stsfix.x.y import z`).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import grimp
import pytest


def import_cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """Every set of modules that import each other, directly or round a loop (Tarjan's SCCs)."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    edges = {m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i in modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges[v]:
                cycles.append(sorted(component))

    for m in modules:
        if m not in index:
            visit(m)
    return sorted(cycles)


def _describe(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    members = set(cycle)
    lines = [" <-> ".join(cycle)]
    for importer in cycle:
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
            for detail in graph.get_import_details(importer=importer, imported=imported):
                lines.append(f"  {importer}:{detail['line_number']}: {detail['line_contents']}")
    return "\n".join(lines)


def test_stsfix_has_no_import_cycles() -> None:
    graph = grimp.build_graph("stsfix", cache_dir=None)
    cycles = import_cycles(graph, "stsfix")
    assert cycles == [], "import cycles (move the shared piece down):\n" + "\n".join(
        _describe(graph, c) for c in cycles
    )


@pytest.fixture
def cyclic_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package whose only cycle runs through a lazy import and a TYPE_CHECKING import."""
    root = tmp_path / "cyclic_pkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text(
        textwrap.dedent(
            """
            def make():
                from cyclic_pkg.b import B  # lazy
                return B()
            """
        )
    )
    (root / "b.py").write_text(
        textwrap.dedent(
            """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from cyclic_pkg import a
            class B: ...
            """
        )
    )
    (root / "c.py").write_text("from cyclic_pkg import b\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "cyclic_pkg"


def test_the_check_sees_cycles_through_lazy_and_type_checking_imports(cyclic_package: str) -> None:
    graph = grimp.build_graph(cyclic_package, cache_dir=None)
    assert import_cycles(graph, cyclic_package) == [["cyclic_pkg.a", "cyclic_pkg.b"]]
