"""Nothing of the user's is lost: files ultrapatch cannot read or parse, a damaged record, links and the lock."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from conftest import git_status, tree_digest
from patcher.cli import cli

pytestmark = pytest.mark.e2e
TASKS = "ultralytics/nn/tasks.py"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def tree(release_tree):
    return release_tree("8.4.190")


def test_a_syntax_error_is_one_sentence_with_its_line(tree):
    path = tree / TASKS
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join([*lines, "\n", "def broken(:\n", "    pass\n"]))
    line = len(lines) + 2
    before = tree_digest(tree)
    result = invoke("apply", str(tree), "-b", "mobilenetv3")
    assert result.exit_code == 2, result.output
    assert result.output.count("is not valid Python") == 1
    assert f"{TASKS} is not valid Python (line {line}: " in result.output
    assert f"`git diff -- {TASKS}`" in result.output and f"`git checkout -- {TASKS}`" in result.output
    assert "Traceback" not in result.output and tree_digest(tree) == before


def latin1(tree, cookie: bool) -> bytes:
    """tasks.py with a Latin-1 comment, declared by a PEP 263 line or not."""
    path = tree / TASKS
    text = path.read_text(encoding="utf-8")
    head = "# -*- coding: latin-1 -*-\n" if cookie else ""
    data = (head + "# Réglages de l'équipe\n" + text).encode("latin-1", errors="replace")  # its emoji: ?
    path.write_bytes(data)
    return data


def test_a_declared_encoding_is_kept(tree):
    data = latin1(tree, cookie=True)
    before = tree_digest(tree)
    result = invoke("apply", str(tree), "-b", "mobilenetv2")
    assert result.exit_code == 0, result.output
    written = (tree / TASKS).read_bytes()
    assert written.startswith(data[:60]) and "MobileNetV2" in written.decode("latin-1")
    assert "équipe".encode("latin-1") in written and "équipe".encode("utf-8") not in written
    again = invoke("apply", str(tree), "-b", "mobilenetv2")
    assert again.exit_code == 0 and "nothing to change" in again.output
    assert invoke("revert", str(tree)).exit_code == 0
    assert tree_digest(tree) == before


def test_an_undeclared_non_utf8_file_is_refused(tree):
    latin1(tree, cookie=False)
    before = tree_digest(tree)
    for args in (["apply", str(tree), "-b", "mobilenetv2"], ["apply", str(tree), "-b", "mobilenetv2", "--dry-run"]):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert f"{TASKS} is not valid utf-8 (byte 0xe9 on line 1)" in result.output
        assert "coding: latin-1" in result.output and len(result.output) < 1000
        assert tree_digest(tree) == before


def test_a_non_utf8_yaml_at_an_install_path_is_refused(tree):
    yaml = tree / "ultralytics/cfg/models/v8/yolov8-MobileNetV2.yaml"
    yaml.write_bytes("# modèle\nnc: 80\n".encode("latin-1"))
    before = tree_digest(tree)
    result = invoke("apply", str(tree), "-b", "mobilenetv2")
    assert result.exit_code == 2, result.output
    assert "yolov8-MobileNetV2.yaml is not UTF-8 (byte 0xe8 on line 1)" in result.output
    assert tree_digest(tree) == before


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda text: text[: len(text) // 2], "is not JSON"),
        (lambda text: "not json at all", "is not JSON"),
        (lambda text: json.dumps({"schema": 2, "files": 3}), "its content is not a record"),
        (lambda text: json.dumps({**json.loads(text), "schema": 99, "ultrapatch": "9.0"}), "written by a newer ultrapatch (9.0"),
    ],
)
def test_a_damaged_record_is_a_sentence_and_status_still_shows_the_tree(tree, damage, words):
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    record = tree / ".ultrapatch/state.json"
    record.write_text(damage(record.read_text()))
    before = tree_digest(tree)
    for args in (["revert", str(tree)], ["revert", str(tree), "--dry-run"], ["apply", str(tree), "-b", "mobilenetv3"]):
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert words in result.output and "Traceback" not in result.output
        assert tree_digest(tree) == before
    status = invoke("status", str(tree))
    assert status.exit_code == 0, status.output
    assert "record: damaged: .ultrapatch/state.json" in status.output
    assert "mobilenetv2         installed" in status.output  # read from the tree's text
    assert git_status(tree).count("??") > 0  # nothing was taken out


def test_a_linked_folder_pointing_outside_is_never_written_through(tree, tmp_path):
    outside = tmp_path / "outside-v8"
    folder = tree / "ultralytics/cfg/models/v8"
    shutil.move(folder, outside)
    folder.symlink_to(outside)
    before, elsewhere = tree_digest(tree), tree_digest(outside)
    result = invoke("apply", str(tree), "-b", "mobilenetv2")
    assert result.exit_code == 2, result.output
    assert "ultralytics/cfg/models/v8 is a symbolic link (to " in result.output and "Nothing was changed" in result.output
    assert tree_digest(outside) == elsewhere and tree_digest(tree) == before and folder.is_symlink()


def test_a_linked_file_stays_a_link(tree):
    real = tree / "ultralytics/nn/tasks_real.py"
    shutil.copy(tree / TASKS, real)
    (tree / TASKS).unlink()
    (tree / TASKS).symlink_to("tasks_real.py")
    before = tree_digest(tree)
    result = invoke("apply", str(tree), "-b", "mobilenetv2")
    assert result.exit_code == 2 and f"{TASKS} is a symbolic link (to tasks_real.py)" in result.output, result.output
    assert (tree / TASKS).is_symlink() and tree_digest(tree) == before


def test_a_link_made_after_apply_is_left_to_revert_refusing(tree, tmp_path):
    train = tree / "ultralytics/models/yolo/detect/train.py"
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    kept = tmp_path / "train.py"
    shutil.move(train, kept)
    train.symlink_to(kept)
    before = tree_digest(tree)
    result = invoke("revert", str(tree))
    assert result.exit_code == 2 and "detect/train.py is a symbolic link" in result.output, result.output
    assert train.is_symlink() and tree_digest(tree) == before


def test_a_dry_run_diff_carries_each_files_own_bytes(tree, release_tree):
    """`apply --dry-run | git apply` and `revert --dry-run | git apply` make the files apply and revert write, byte for
    byte, for a Latin-1 tasks.py with a comment holding a form feed and the byte 0x85 (str.splitlines cuts lines at
    both; git cuts them at \\n only)."""
    data = latin1(tree, cookie=True)
    probe = b"            s = 256  # 2x min stride\n"  # the stride-probe edit changes this line: the comment is in its hunk
    assert probe in data
    data = data.replace(probe, b"            # page\x0c break \x85 and \xe9\n" + probe, 1)
    (tree / TASKS).write_bytes(data)
    subprocess.run(["git", "commit", "-qam", "latin-1 tasks.py"], cwd=tree, check=True)
    twin = release_tree("8.4.190", "twin")
    (twin / TASKS).write_bytes(data)
    dry = invoke("apply", str(tree), "-b", "mobilenetv2", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "\\ No newline at end of file" not in dry.stdout
    subprocess.run(["git", "apply", "-"], cwd=tree, input=dry.stdout_bytes, check=True, capture_output=True)
    assert invoke("apply", str(twin), "-b", "mobilenetv2").exit_code == 0
    assert (tree / TASKS).read_bytes() == (twin / TASKS).read_bytes()
    assert "équipe".encode("latin-1") in (twin / TASKS).read_bytes()
    undo = invoke("revert", str(twin), "--dry-run")
    assert undo.exit_code == 0, undo.output
    subprocess.run(["git", "apply", "-"], cwd=twin, input=undo.stdout_bytes, check=True, capture_output=True)
    assert (twin / TASKS).read_bytes() == data
