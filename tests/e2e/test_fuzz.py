"""Fuzzed sources: a real tasks.py mutated as users' trees are (statements deleted or duplicated, variables renamed,
neighbouring statements or branches swapped, comments and blank lines added), then apply. Either apply succeeds, and
the result parses, a second apply changes nothing and revert gives the mutated tree back byte for byte; or it exits
1 or 2 and nothing changed. Never exit 3.

A few mutants run by default; `pytest -m exhaustive tests/e2e/test_fuzz.py` runs 500.
"""

from __future__ import annotations

import ast
import random
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import pristine_tree, tree_digest
from patcher.cli import cli

pytestmark = pytest.mark.e2e
RELEASE = "8.4.190"
TASKS = "ultralytics/nn/tasks.py"
# Where the edits land: most mutations go there, the rest anywhere in the file.
TARGETS = {"parse_model", "_predict_once", "predict", "__init__", "fuse", "find_class", "_apply"}


def statements(source: str) -> tuple[list[ast.stmt], list[ast.FunctionDef]]:
    """Every statement inside a function, those in the targeted functions first in weight; and the functions."""
    tree = ast.parse(source)
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    found = []
    for function in functions:
        weight = 4 if function.name in TARGETS else 1
        inner = [n for n in ast.walk(function) if isinstance(n, ast.stmt) and n is not function]
        found += inner * weight
    return found, functions


def mutate(source: str, rng: random.Random) -> tuple[str, str]:
    """One to three mutations of `source`; the mutated text and what was done."""
    lines = source.splitlines(keepends=True)
    done = []
    for _ in range(rng.randint(1, 3)):
        try:
            found, functions = statements("".join(lines))
        except SyntaxError:
            break
        kind = rng.choice(["delete", "duplicate", "rename", "swap", "comment", "blank"])
        node = rng.choice(found)
        start, end = node.lineno - 1, node.end_lineno
        indent = re.match(r"\s*", lines[start]).group(0)
        if kind == "delete":
            lines[start:end] = []
        elif kind == "duplicate":
            lines[end:end] = lines[start:end]
        elif kind == "rename":
            function = rng.choice(functions)
            names = sorted({n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)})
            if not names:
                continue
            old = rng.choice(names)
            first, last = function.lineno - 1, function.end_lineno
            lines[first:last] = [re.sub(rf"\b{re.escape(old)}\b", f"{old}_renamed", line) for line in lines[first:last]]
            node = function
        elif kind == "swap":
            siblings = [s for s in found if s is not node and s.lineno - 1 == end and s.col_offset == node.col_offset]
            if not siblings:
                continue
            after = siblings[0]
            lines[start : after.end_lineno] = lines[end : after.end_lineno] + lines[start:end]
        elif kind == "comment":
            lines[start:start] = [f"{indent}# a comment of the user's\n"]
        else:
            lines[start:start] = ["\n"]
        done.append(f"{kind} at line {start + 1} ({type(node).__name__})")
    return "".join(lines), "; ".join(done)


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code in (0, 1, 2), result.output
    return result


def reset(tree: Path) -> None:
    subprocess.run(["git", "checkout", "-q", "--", "."], cwd=tree, check=True)
    subprocess.run(["git", "clean", "-fdqx", "-e", ".git"], cwd=tree, check=True)


def check(tree: Path, seed: int) -> str:
    """One mutant: what happened to it."""
    reset(tree)
    rng = random.Random(seed)
    original = (tree / TASKS).read_text(encoding="utf-8")
    mutant, what = mutate(original, rng)
    (tree / TASKS).write_text(mutant, encoding="utf-8")
    before = tree_digest(tree)
    result = invoke("apply", str(tree), "-b", "mobilenetv2")
    if result.exit_code:
        assert tree_digest(tree) == before, (seed, what)
        return f"refused ({result.exit_code})"
    ast.parse((tree / TASKS).read_text(encoding="utf-8"))
    patched = tree_digest(tree)
    again = invoke("apply", str(tree), "-b", "mobilenetv2")
    assert again.exit_code == 0 and "nothing to change" in again.output, (seed, what, again.output)
    assert tree_digest(tree) == patched, (seed, what)
    reverted = invoke("revert", str(tree))
    assert reverted.exit_code == 0, (seed, what, reverted.output)
    assert tree_digest(tree) == before, (seed, what)
    return "applied"


def run(tmp_path: Path, seeds: range) -> dict[str, int]:
    tree = tmp_path / "ultralytics"
    subprocess.run(["git", "clone", "-q", str(pristine_tree(RELEASE)), str(tree)], check=True)
    outcomes: dict[str, int] = {}
    for seed in seeds:
        outcome = check(tree, seed)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def test_fuzzed_tasks_py(tmp_path):
    outcomes = run(tmp_path, range(6))
    assert sum(outcomes.values()) == 6


@pytest.mark.exhaustive
def test_fuzzed_tasks_py_exhaustive(tmp_path):
    outcomes = run(tmp_path, range(500))
    assert outcomes.get("applied", 0) > 100, outcomes  # most mutants leave the edits' anchors alone
    print(outcomes)
