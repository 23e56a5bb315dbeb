"""The three-way merge that carries a user's changes from one text of ultrapatch's onto another (`git merge-file`)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from patcher.errors import UltrapatchError
from patcher.i18n import _


def merge(current: bytes, base: bytes, other: bytes) -> tuple[bytes, list[str]]:
    """`git merge-file`: the changes from `base` to `other` made on `current`; the merged bytes and the conflicting
    regions ("lines a-b" of the merged text, where the markers are)."""
    with tempfile.TemporaryDirectory(prefix="ultrapatch-merge-") as scratch:
        paths = []
        for name, data in (("yours", current), ("ultrapatch", base), ("target", other)):
            path = Path(scratch) / name
            path.write_bytes(data)
            paths.append(str(path))
        try:
            done = subprocess.run(
                ["git", "merge-file", "-p", "-L", "yours", "-L", "ultrapatch", "-L", "without ultrapatch", *paths],
                capture_output=True,
            )
        except FileNotFoundError as exc:
            raise UltrapatchError(_("revert merges your changes with `git merge-file`, and git is not installed.")) from exc
    if done.returncode < 0 or done.returncode > 127:
        raise UltrapatchError(_("git merge-file failed: {error}").format(error=done.stderr.decode(errors="replace").strip()))
    if done.returncode == 0:
        return done.stdout, []
    regions, start = [], None
    for number, line in enumerate(done.stdout.decode("utf-8", errors="replace").splitlines(), 1):
        if line.startswith("<<<<<<< "):
            start = number
        elif line.startswith(">>>>>>> ") and start is not None:
            regions.append(f"lines {start}-{number}")
            start = None
    return done.stdout, regions
