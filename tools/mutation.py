"""Mutation testing: how many small deliberate bugs in a module its unit tests catch.

Run: .venv/bin/python tools/mutation.py [--target NAME] [--sample N | --index N] [--jobs N] [--list]

A small runner of our own rather than mutmut: mutmut copies the whole tree and
needs its own configuration per project layout, while this walks one module's
syntax tree, makes one mutant per (place, operator), and runs only that
module's tests in a child process whose import system serves the mutated
source. Targets are (module file, test paths) pairs, so another module is one
line in TARGETS.

Operators: comparison flips (< <=, == !=, in / not in, is / is not), + and -,
and / or, dropping `not`, integer constants +1, True / False, and a changed
character in string constants that are not docstrings (regex patterns
included). A mutant survives when the tests still pass; equivalent mutants (no
observable change) are listed with their reasons in docs/filter.md.
"""
from __future__ import annotations

import argparse
import ast
import importlib.abc
import importlib.util
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILTER_TESTS = ("tests/filter",)
TARGETS = {
    "pii": ("app/filter/pii.py", FILTER_TESTS),
    "phones": ("app/filter/phones.py", FILTER_TESTS),
    "secrets": ("app/filter/secrets.py", FILTER_TESTS),
    "validators": ("app/filter/validators.py", FILTER_TESTS),
    "normalize": ("app/filter/normalize.py", FILTER_TESTS),
    "stream": ("app/filter/stream.py", FILTER_TESTS),
    "buffer": ("app/filter/buffer.py", FILTER_TESTS),
    "json_args": ("app/filter/json_args.py", FILTER_TESTS),
    "reach": ("app/filter/reach.py", FILTER_TESTS),
}
_FLIPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
          ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}


def _docstrings(tree: ast.AST) -> set:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def mutation_points(tree: ast.AST) -> list[tuple[int, str]]:
    """(node index in ast.walk order, description) of every mutation the operators offer."""
    skip = _docstrings(tree)
    points = []
    for i, node in enumerate(ast.walk(tree)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare) and type(node.ops[0]) in _FLIPS:
            points.append((i, f"line {line}: flip {type(node.ops[0]).__name__}"))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)) and not _is_str_concat(node):
            points.append((i, f"line {line}: swap + and -"))
        elif isinstance(node, ast.BoolOp):
            points.append((i, f"line {line}: swap and/or"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            points.append((i, f"line {line}: drop not"))
        elif isinstance(node, ast.Constant) and id(node) not in skip:
            if isinstance(node.value, bool):
                points.append((i, f"line {line}: negate {node.value}"))
            elif isinstance(node.value, int):
                points.append((i, f"line {line}: {node.value} -> {node.value + 1}"))
            elif isinstance(node.value, str) and node.value:
                points.append((i, f"line {line}: change string {node.value[:30]!r}"))
    return points


def _is_str_concat(node: ast.BinOp) -> bool:
    return any(isinstance(side, (ast.Constant, ast.JoinedStr)) and isinstance(getattr(side, "value", ""), str)
               for side in (node.left, node.right))


def mutate(source: str, index: int) -> str:
    """The source with the mutation at node `index` applied."""
    tree = ast.parse(source)
    for i, node in enumerate(ast.walk(tree)):
        if i != index:
            continue
        if isinstance(node, ast.Compare):
            node.ops[0] = _FLIPS[type(node.ops[0])]()
        elif isinstance(node, ast.BinOp):
            node.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
        elif isinstance(node, ast.BoolOp):
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        elif isinstance(node, ast.UnaryOp):
            return _replace(source, tree, node, node.operand)
        elif isinstance(node.value, bool):
            node.value = not node.value
        elif isinstance(node.value, int):
            node.value += 1
        else:
            text = node.value
            pos = len(text) // 2
            node.value = text[:pos] + ("X" if text[pos] != "X" else "Y") + text[pos + 1:]
        return ast.unparse(tree)
    raise IndexError(index)


def _replace(source: str, tree: ast.AST, old: ast.AST, new: ast.AST) -> str:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return ast.unparse(tree)
            if isinstance(value, list) and old in value:
                value[value.index(old)] = new
                return ast.unparse(tree)
    raise ValueError("node has no parent")


class _MutantFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the mutated source for one module name (used in the child process)."""

    def __init__(self, name: str, path: str, source: str):
        self.name, self.path, self.source = name, path, source

    def find_spec(self, fullname, path=None, target=None):
        """A spec for the mutated module only."""
        if fullname == self.name:
            return importlib.util.spec_from_loader(fullname, self, origin=self.path)
        return None

    def create_module(self, spec):
        """Default module creation."""
        return None

    def exec_module(self, module):
        """Run the mutated source as the module."""
        module.__file__ = self.path
        exec(compile(self.source, self.path, "exec"), module.__dict__)


def _child(module_file: str, index: int, tests: list[str]) -> int:
    import pytest

    # The child is started as a script, so its path holds tools/, not the project the tests import.
    sys.path.insert(0, str(ROOT))
    if index >= 0:  # -1: the module as it is, to check that its tests pass before any mutant counts
        source = mutate((ROOT / module_file).read_text(encoding="utf-8"), index)
        name = module_file[:-3].replace("/", ".")
        sys.meta_path.insert(0, _MutantFinder(name, str(ROOT / module_file), source))
    args = [*tests, "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--noconftest", "-W", "ignore"]
    return pytest.main(args, plugins=[])


def run_mutant(module_file: str, index: int, tests, timeout: int) -> str:
    """'killed', 'survived' or 'timeout' for one mutant."""
    cmd = [sys.executable, __file__, "--child", module_file, str(index), *tests]
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=timeout,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    except subprocess.TimeoutExpired:
        return "timeout"
    return "survived" if done.returncode == 0 else "killed"


def main() -> None:
    """Run the chosen targets and print the score and every survivor."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.exit(_child(sys.argv[2], int(sys.argv[3]), sys.argv[4:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", choices=sorted(TARGETS), help="default: all")
    parser.add_argument("--sample", type=int, default=0, help="run N random mutants per target (0: all)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=300)
    parser.add_argument("--list", action="store_true", help="list the mutants without running them")
    parser.add_argument("--index", type=int, action="append",
                        help="run only the mutant(s) with this number (as listed), e.g. to recheck survivors")
    args = parser.parse_args()
    killed = total = 0
    for name in args.target or sorted(TARGETS):
        module_file, tests = TARGETS[name]
        points = mutation_points(ast.parse((ROOT / module_file).read_text(encoding="utf-8")))
        if args.index:
            points = [p for p in points if p[0] in args.index]
        elif args.sample:
            points = sorted(random.Random(args.seed).sample(points, min(args.sample, len(points))))
        if not points:
            continue
        if args.list:
            for index, what in points:
                print(f"{module_file} #{index}: {what}")
            continue
        # A mutant is killed when its tests fail, so they must pass without one: otherwise an import
        # error or a missing fixture would count every mutant as killed.
        if run_mutant(module_file, -1, tests, args.timeout) != "survived":
            sys.exit(f"{module_file}: its tests {' '.join(tests)} fail without any mutant; fix them first")
        with ThreadPoolExecutor(args.jobs) as pool:
            verdicts = list(pool.map(lambda p: run_mutant(module_file, p[0], tests, args.timeout), points))
        # A mutant that makes the tests hang is caught too (the suite never passes), as in mutmut.
        survivors = [(p, v) for p, v in zip(points, verdicts) if v == "survived"]
        killed += len(points) - len(survivors)
        total += len(points)
        print(f"{module_file}: {len(points) - len(survivors)}/{len(points)} killed", flush=True)
        for (index, what), verdict in zip(points, verdicts):
            if verdict != "killed":
                print(f"  {verdict}: #{index} {what}", flush=True)
    if total:
        print(f"\nmutation score: {killed}/{total} = {killed / total:.3f}")


if __name__ == "__main__":
    main()
