"""A write that fails leaves the tree as it was, byte for byte (the record, its folder and `.git/info/exclude`
included), exits 2 with a sentence naming the file and the cause, and the next run works.

Failures are injected at every write point of a run in turn (ULTRAPATCH_TEST_FAIL_AT=N: the N-th file written,
replaced, removed or folder made raises the OSError a failing file system raises), the way SQLite tests its I/O
errors; and made real where this machine allows it: an immutable file (chattr +i) and a full tmpfs. The default run
tries a spread of points; `pytest -m exhaustive tests/e2e/test_write_failures.py` tries every one.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import git_status, pristine_tree, tree_digest
from patcher.cli import cli
from patcher.planner import FAIL_AT

pytestmark = pytest.mark.e2e
TASKS = "ultralytics/nn/tasks.py"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def everything(tree: Path) -> dict[str, str]:
    """The tree, its `.ultrapatch/` and its `.git/info/exclude`, byte for byte."""
    exclude = tree / ".git/info/exclude"
    return {**tree_digest(tree), "exclude": hashlib.sha256(exclude.read_bytes()).hexdigest() if exclude.exists() else ""}


# Each operation: how to bring the tree to where it starts, and the command whose writes fail.
OPERATIONS = {
    "first apply": ([], ["apply", "-b", "mobilenetv2"]),
    "second apply": ([["apply", "-b", "mobilenetv2"]], ["apply", "-b", "mobilenetv2-tv"]),
    "revert one": ([["apply", "-b", "mobilenetv2", "-b", "mobilenetv2-tv"]], ["revert", "-b", "mobilenetv2-tv"]),
    "revert all": ([["apply", "-b", "mobilenetv2"]], ["revert"]),
}


def prepared(release_tree, operation: str) -> tuple[Path, list[str]]:
    tree = release_tree("8.4.190")
    setup, command = OPERATIONS[operation]
    for step in setup:
        assert invoke(step[0], str(tree), *step[1:]).exit_code == 0
    return tree, [command[0], str(tree), *command[1:]]


def write_points(tree: Path, command: list[str], monkeypatch) -> list[str]:
    """The files a run writes, in order: one entry per write point (it runs, and is undone by copying back)."""
    scratch = tree.parent / "count"
    shutil.copytree(tree, scratch, symlinks=True)
    monkeypatch.setenv(FAIL_AT, "count")
    result = CliRunner().invoke(cli, [command[0], str(scratch), *command[2:]])
    monkeypatch.delenv(FAIL_AT)
    assert result.exit_code == 0, result.output
    points = [line.split(": ", 1)[1] for line in result.stderr.splitlines() if line.startswith("ultrapatch write point")]
    shutil.rmtree(scratch)
    return points


def fails_cleanly_at(tree: Path, command: list[str], points: list[str], chosen, monkeypatch) -> None:
    before = everything(tree)
    for number in chosen:
        monkeypatch.setenv(FAIL_AT, str(number))
        result = invoke(*command)
        monkeypatch.delenv(FAIL_AT)
        assert result.exit_code == 2, (number, points[number - 1], result.output)
        assert "could not write" in result.output and "no space left on the device" in result.output, result.output
        assert "Nothing was changed" in result.output and "Traceback" not in result.output
        assert everything(tree) == before, (number, points[number - 1])
    assert "interrupted" not in invoke("status", str(tree)).output  # no journal was left behind
    done = invoke(*command)  # and the next run works
    assert done.exit_code == 0, done.output


def spread(count: int) -> list[int]:
    return sorted({1, 2, count - 1, count, *range(3, count, max(1, count // 6))})


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_failed_write_at_any_point_changes_nothing(release_tree, monkeypatch, operation):
    tree, command = prepared(release_tree, operation)
    points = write_points(tree, command, monkeypatch)
    named = {".ultrapatch/journal.json", ".ultrapatch/state.json", ".git/info/exclude"}
    assert any(p.endswith(TASKS) for p in points) and any(p.endswith(n) for n in named for p in points), points
    fails_cleanly_at(tree, command, points, [n for n in spread(len(points)) if n <= len(points)], monkeypatch)


@pytest.mark.exhaustive
@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_failed_write_at_every_point_changes_nothing(release_tree, monkeypatch, operation):
    tree, command = prepared(release_tree, operation)
    points = write_points(tree, command, monkeypatch)
    fails_cleanly_at(tree, command, points, range(1, len(points) + 1), monkeypatch)


def test_the_error_names_the_cause(release_tree, monkeypatch):
    tree, command = prepared(release_tree, "first apply")
    before = everything(tree)
    for name, words in (("EROFS", "the file system is read-only"), ("EACCES", "permission denied"), ("EPERM", "immutable")):
        monkeypatch.setenv(FAIL_AT, f"5:{name}")
        result = invoke(*command)
        assert result.exit_code == 2 and words in result.output, result.output
        assert everything(tree) == before
    assert errno.EROFS  # the names above are errno's


def chattr(flag: str, path: Path) -> bool:
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def test_an_immutable_file_is_found_before_the_first_write(release_tree):
    tree = release_tree("8.4.190")
    if not chattr("+i", tree / TASKS):
        pytest.skip("chattr +i is not allowed on this machine (it needs CAP_LINUX_IMMUTABLE)")
    try:
        before = everything(tree)
        result = invoke("apply", str(tree), "-b", "mobilenetv3")
        assert result.exit_code == 2, result.output
        assert f"could not write {TASKS}: operation not permitted (the file or its folder may be immutable" in result.output
        assert everything(tree) == before and git_status(tree) == ""
        assert "interrupted" not in invoke("status", str(tree)).output
    finally:
        chattr("-i", tree / TASKS)
    assert invoke("apply", str(tree), "-b", "mobilenetv3").exit_code == 0


def test_a_full_disk_is_found_before_the_first_write(tmp_path):
    """The tree on a tmpfs with 2.9 MiB to spare: mobilenetv2's run (1.6 MiB, with 1 MiB kept free) fits, and
    mobilenetv3's (78 YAMLs, 2.1 MiB) does not."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        tree = mount / "ultralytics"
        shutil.copytree(pristine_tree("8.4.190"), tree, symlinks=True)
        size = shutil.disk_usage(mount).used + int(2.9 * 2**20)
        subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True, capture_output=True)
        before = everything(tree)
        result = invoke("apply", str(tree), "-b", "mobilenetv3")
        assert result.exit_code == 2, result.output
        assert "no space left on the device: this run needs" in result.output and "Nothing was changed" in result.output
        assert everything(tree) == before
        small = invoke("apply", str(tree), "-b", "mobilenetv2")  # a backbone with fewer files fits
        assert small.exit_code == 0, small.output
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)
    assert not os.listdir(mount)
