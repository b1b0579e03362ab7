"""The package's rooms: no import cycles, no lower room importing a higher one, no Flask in the core.

Imports are read with ``ast`` (function-level ones included), so a cycle hidden
inside a function fails here too. ``ROOMS`` is the order of the rooms, lowest
first; a module may import its own room and any room below it.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from support import ROOT

# Lowest first. "config.py" is the top-level settings module for entry points; "app" is create_app.
ROOMS = ("errors", "config", "ops", "filter", "storage", "upstream", "access", "core", "api", "openapi", "cli",
         "services", "app", "config.py")
FLASK_FREE = ("errors", "config", "filter", "storage", "upstream", "core")
FLASK = ("flask", "werkzeug", "flask_cors")


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package plus the top-level config.py."""
    found = {"config": Path(ROOT) / "config.py"}
    for path in sorted((Path(ROOT) / "app").rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if "migrations" in parts:
            continue  # Alembic scripts: run by Alembic, imported by nothing
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules (and top-level ``config``) that the module ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # "from pkg import sub" imports the submodule pkg.sub when there is one.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def room(module: str) -> str:
    """The room a module lives in."""
    if module == "config":
        return "config.py"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "app"


def graph() -> dict[str, set[str]]:
    """Module -> modules it imports, inside the package."""
    files = module_files()
    return {name: imports(name, path, set(files)) for name, path in files.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_module_is_in_a_known_room():
    assert {room(m) for m in module_files()} <= set(ROOMS)


def test_there_are_no_import_cycles():
    assert cycles(graph()) == []


def test_no_room_imports_a_higher_one():
    rank = {name: i for i, name in enumerate(ROOMS)}
    upward = sorted((a, b) for a, targets in graph().items() for b in targets if rank[room(b)] > rank[room(a)])
    assert upward == []


def test_the_lower_rooms_import_no_flask():
    offenders = []
    for name, path in module_files().items():
        if room(name) not in FLASK_FREE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [(name, n) for n in names if n.split(".")[0] in FLASK]
    assert offenders == []


@pytest.mark.parametrize("source, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
    ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["a", "b"], ["c", "d"]]),
])
def test_the_cycle_finder_finds_cycles(source, expected):
    assert sorted(cycles(source)) == expected


def test_a_function_level_import_counts(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from .other import thing\n    import app.errors\n", encoding="utf-8")
    assert imports("app.core.m", path, {"app.core.other", "app.errors", "app.core.m"}) == {
        "app.core.other", "app.errors"}


def test_the_rooms_follow_the_package_folders():
    folders = {p.name for p in (Path(ROOT) / "app").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(ROOMS) - {"errors", "services", "app", "config.py"}
    assert os.path.isfile(os.path.join(ROOT, "app", "errors.py"))
