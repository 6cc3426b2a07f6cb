"""Architecture contracts: no import cycle in daemon/, small modules, and every log event documented."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DAEMON = ROOT / "daemon"
LEVELS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})
EVENT = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
MAX_LINES = 500


def _sccs(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative enough for ~100 modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_sccs_finds_a_cycle() -> None:
    """The cycle finder itself reports a two-module loop and ignores a chain."""
    assert _sccs({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert _sccs({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycle_in_daemon() -> None:
    """No module of daemon/ reaches itself through imports, function-level ones included (TYPE_CHECKING aside)."""
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (pip install -e '.[dev]')")
    graph = grimp.build_graph("daemon", exclude_type_checking_imports=True)
    edges = {
        m: {i for i in graph.find_modules_directly_imported_by(m) if i.startswith("daemon")}
        for m in graph.modules
        if m.startswith("daemon")
    }
    assert _sccs(edges) == []


def test_no_module_over_the_hard_limit() -> None:
    """Every module in daemon/ stays under 500 lines."""
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in DAEMON.rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}


def _log_events() -> dict[str, list[str]]:
    """Event names passed as the first argument of a logger call anywhere in daemon/."""
    events: dict[str, list[str]] = {}
    for path in sorted(DAEMON.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
                continue
            first = node.args[0]
            name = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""
            if node.func.attr in LEVELS and EVENT.match(name):
                events.setdefault(name, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return events


def test_every_log_event_is_documented() -> None:
    """Each structlog event name the daemon emits appears, in backticks, in docs/operations.md."""
    events = _log_events()
    assert "daemon_started" in events  # the scan finds events at all
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    missing = {name: where for name, where in events.items() if f"`{name}`" not in doc}
    assert missing == {}


def _is_dataclass_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return (isinstance(target, ast.Name) and target.id == "dataclass") or (
        isinstance(target, ast.Attribute) and target.attr == "dataclass"
    )


def test_every_dataclass_has_a_docstring() -> None:
    """Each dataclass in daemon/ has a docstring: without one, Python works out a signature for it at import."""
    found: list[str] = []
    missing: list[str] = []
    for path in sorted(DAEMON.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(_is_dataclass_decorator(d) for d in node.decorator_list):
                found.append(node.name)
                if ast.get_docstring(node) is None:
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert "Rule" in found  # the scan finds dataclasses at all
    assert missing == []
