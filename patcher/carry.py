"""`ultrapatch export-checkpoint` and `import-checkpoint`, ultrapatch's side: the checkpoint carrier
(`patcher/fork/carry.py`) run in the fork's interpreter through the launcher, its report read back."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from patcher.errors import UltrapatchError
from patcher.launcher import command, fork_env, tail
from patcher.tree import find_tree
from patcher.verify.select import check_python


def carry(action: str, tree_path: Path, source: Path, out: Path, python: str) -> dict:
    """Run the checkpoint carrier (patcher/fork/carry.py) in the fork's interpreter; its report, or bad input with its
    sentence."""

    tree = find_tree(tree_path)
    python = check_python(python)
    if out.exists():
        raise UltrapatchError(f"{out} already exists; give a new file name (nothing is overwritten).")
    if not source.is_file():
        raise UltrapatchError(f"{source} is not a file.")
    with tempfile.TemporaryDirectory(prefix="ultrapatch-carry-") as scratch:
        done = subprocess.run(
            command(python, "carry", action, tree.root, source.resolve(), out.resolve()),
            capture_output=True, text=True, env=fork_env(scratch), cwd=scratch,
        )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise UltrapatchError(f"{python} could not run the fork at {tree.root}: {tail(done.stderr)}")
    report = json.loads(lines[-1])
    if not report["ok"]:
        raise UltrapatchError(report["error"] + ".")
    return report
