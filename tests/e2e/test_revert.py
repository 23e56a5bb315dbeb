"""revert gives the tree back byte for byte, from the record apply keeps in .ultrapatch/, and never loses an edit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import git_status, tree_digest
from patcher.cli import cli

pytestmark = pytest.mark.e2e
TASKS = "ultralytics/nn/tasks.py"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("version", ["8.1.47", "8.4.190"])
def test_apply_then_revert_is_byte_identical(release_tree, version):
    tree = release_tree(version)
    before = tree_digest(tree)
    assert invoke("apply", str(tree), "-b", "mobilenetv3").exit_code == 0
    assert invoke("apply", str(tree), "-b", "all").exit_code == 0  # a second apply adds to the record
    assert (tree / ".ultrapatch" / "state.json").is_file()
    assert ".ultrapatch" not in git_status(tree)  # the record is in .git/info/exclude
    dry = invoke("revert", str(tree), "--dry-run")
    assert dry.exit_code == 0 and "+++ b/ultralytics/nn/tasks.py" in dry.stdout
    assert tree_digest(tree) != before  # the dry run wrote nothing
    result = invoke("revert", str(tree))
    assert result.exit_code == 0, result.output
    assert tree_digest(tree) == before
    assert git_status(tree) == ""
    assert not (tree / ".ultrapatch").exists()


def test_revert_with_nothing_recorded_is_bad_input(release_tree):
    tree = release_tree("8.4.190")
    result = invoke("revert", str(tree))
    assert result.exit_code == 2
    assert "nothing recorded" in result.output


def test_a_file_changed_after_apply_is_a_conflict_and_force_keeps_a_backup(release_tree):
    tree = release_tree("8.4.190")
    original = (tree / TASKS).read_bytes()
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    edited = (tree / TASKS).read_text() + "\n# my own change\n"
    (tree / TASKS).write_text(edited)
    digest = tree_digest(tree)
    refused = invoke("revert", str(tree))
    assert refused.exit_code == 1
    assert TASKS in refused.output and "Nothing was written" in refused.output
    assert tree_digest(tree) == digest
    forced = invoke("revert", str(tree), "--force")
    assert forced.exit_code == 0, forced.output
    assert f"saved your version as {TASKS}.ultrapatch-backup" in forced.stdout
    assert (tree / TASKS).read_bytes() == original
    assert (tree / f"{TASKS}.ultrapatch-backup").read_text() == edited


def test_a_created_file_the_user_changed_is_kept(release_tree):
    tree = release_tree("8.4.190")
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    mine = tree / "ultralytics/cfg/models/v8/yolov8-MobileNetV2.yaml"
    mine.write_text(mine.read_text().replace("nc: 80", "nc: 3"))
    result = invoke("revert", str(tree))
    assert result.exit_code == 0, result.output
    assert "kept ultralytics/cfg/models/v8/yolov8-MobileNetV2.yaml" in result.output
    assert mine.read_text().count("nc: 3") == 1
    assert git_status(tree) == "?? ultralytics/cfg/models/v8/yolov8-MobileNetV2.yaml\n"


def test_plain_directory_round_trip(release_tree):
    tree = release_tree("8.3.0")
    shutil.rmtree(tree / ".git")
    before = tree_digest(tree)
    assert invoke("apply", str(tree), "-b", "all").exit_code == 0
    assert (tree / ".ultrapatch" / "state.json").is_file()
    assert invoke("revert", str(tree)).exit_code == 0
    assert tree_digest(tree) == before
    assert not Path(tree / ".ultrapatch").exists()
