"""The package's layout keeps the architecture visible (README "Architecture").

At most 8 modules at the top, no import cycles among approver's modules (imports under
``TYPE_CHECKING`` and inside functions count too), no module over 500 lines, Qt only under
``ui/``, and every source module's tests where its path says.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import approver

SOURCE = Path(approver.__file__).parent
TESTS = Path(__file__).parent
MAX_TOP_MODULES = 8
MAX_LINES = 500


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in SOURCE.rglob("*.py"):
        parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported_modules(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The approver modules that ``name`` imports anywhere in its file."""

    def resolve(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            # "from approver.cli import main" imports the module approver.cli.main
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            if target.startswith("approver"):
                module = resolve(target)
                if module is not None and module != name:
                    yield module


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imported_modules(name, path, known)) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_top_holds_at_most_eight_modules() -> None:
    top = sorted(path.name for path in SOURCE.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top


def test_no_import_cycle_among_the_packages_modules_counting_type_only_imports() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle_when_there_is_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_front_door_does_not_know_the_fast_path_and_the_gateway_not_the_front_door() -> None:
    graph = import_graph()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))
        return False

    assert not reaches("approver.gateway.front", "approver.gateway.fastcall")
    assert not reaches("approver.gateway.gateway", "approver.gateway.front")


def test_no_module_is_longer_than_500_lines() -> None:
    long = {
        str(path.relative_to(SOURCE)): lines
        for path in SOURCE.rglob("*.py")
        if (lines := len(path.read_text("utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_qt_is_imported_only_under_ui() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+(PySide6|qasync)\b", re.MULTILINE)
    outside = [
        str(path.relative_to(SOURCE))
        for path in SOURCE.rglob("*.py")
        if path.relative_to(SOURCE).parts[0] != "ui" and pattern.search(path.read_text("utf-8"))
    ]
    assert outside == []


def test_every_test_file_sits_where_the_module_it_tests_does() -> None:
    # A test folder mirrors a package: tests/policy/ holds the tests of approver/policy/.
    folders = {path.parent.relative_to(TESTS) for path in TESTS.rglob("test_*.py")}
    packages = {path.parent.relative_to(SOURCE) for path in SOURCE.rglob("__init__.py")}
    assert folders <= packages | {Path(".")}, folders - packages
