"""revert gives the tree back byte for byte, from the record apply keeps in .ultrapatch/, and never loses an edit."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import git

import pytest
from click.testing import CliRunner

from conftest import RELEASES, git_status, tree_digest, verify_json
from patcher.cli import cli
from patcher.planner import CRASH_AT

pytestmark = pytest.mark.e2e
TASKS = "ultralytics/nn/tasks.py"
TRAIN = "ultralytics/models/yolo/detect/train.py"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("version", RELEASES)
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


@pytest.mark.parametrize("theirs", [False, True], ids=["added-by-apply", "the-users-own"])
def test_revert_gives_back_the_exclude_file_as_it_was(release_tree, theirs):
    """apply adds `/.ultrapatch/` to .git/info/exclude so that git status stays clean; a full revert takes it out
    only where apply put it in: a user's own line (before any apply) stays, through partial and full reverts."""
    tree = release_tree("8.4.190")
    exclude = tree / ".git" / "info" / "exclude"
    if theirs:
        exclude.write_bytes(exclude.read_bytes() + b"/.ultrapatch/\n*.onnx\n")
    before = exclude.read_bytes()
    assert invoke("apply", str(tree), "-b", "mobilenetv3", "-b", "mobilenetv2").exit_code == 0
    assert exclude.read_bytes().count(b"/.ultrapatch/") == 1
    assert ".ultrapatch" not in git_status(tree)
    assert invoke("revert", str(tree), "--backbone", "mobilenetv2").exit_code == 0  # a partial revert keeps the line
    assert b"/.ultrapatch/" in exclude.read_bytes()
    assert invoke("revert", str(tree)).exit_code == 0
    assert exclude.read_bytes() == before
    assert git_status(tree) == ""


def test_revert_with_nothing_recorded_is_bad_input(release_tree):
    tree = release_tree("8.4.190")
    result = invoke("revert", str(tree))
    assert result.exit_code == 2
    assert "nothing recorded" in result.output
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    digest = tree_digest(tree)
    result = invoke("revert", str(tree), "--backbone", "mobileone")
    assert result.exit_code == 2 and "mobileone is not installed by ultrapatch here" in result.output
    assert tree_digest(tree) == digest


def test_revert_one_backbone_keeps_the_others_working(release_tree):
    tree = release_tree("8.4.190")
    before = tree_digest(tree)
    assert invoke("apply", str(tree), "-b", "mobilenetv3").exit_code == 0
    only_v3 = tree_digest(tree)
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    result = invoke("revert", str(tree), "--backbone", "mobilenetv2")
    assert result.exit_code == 0, result.output
    assert "took out mobilenetv2" in result.output
    assert tree_digest(tree) == only_v3  # exactly as if mobilenetv2 had never been applied
    tasks = (tree / TASKS).read_text()
    assert "MobileNetV2" not in tasks and "MobileNetV3_small_n" in tasks
    assert not (tree / "ultralytics/nn/AddModules/MobileNetV2.py").exists()
    assert "MobileNetV2" not in (tree / "ultralytics/nn/AddModules/__init__.py").read_text()
    assert not list(tree.rglob("*-MobileNetV2.yaml"))
    report = verify_json(tree, "--model", "yolo11n-MobileNetV3_small_n", "--model", "rtdetr-l-MobileNetV3_large_n")
    assert all(m["ok"] for m in report["models"]), report  # the other backbone still builds, runs and trains
    result = invoke("revert", str(tree), "--backbone", "mobilenetv3")  # the last one: the shared edits go too
    assert result.exit_code == 0, result.output
    assert tree_digest(tree) == before and git_status(tree) == ""


def test_user_changes_after_apply_are_merged_or_reported_as_conflicts(release_tree):
    """tasks.py changed where ultrapatch did not edit: kept. train.py changed on the line ultrapatch edited: a
    conflict, nothing written; --force restores the original and keeps the user's version as a backup."""
    tree = release_tree("8.4.190")
    original_tasks, original_train = (tree / TASKS).read_text(), (tree / TRAIN).read_text()
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    mine = "# my own note about this module\n"
    (tree / TASKS).write_text(mine + (tree / TASKS).read_text())
    train = (tree / TRAIN).read_text()
    assert "rect=False" in train
    (tree / TRAIN).write_text(train.replace("rect=False", "rect=True  # mine"))
    digest = tree_digest(tree)
    refused = invoke("revert", str(tree))
    assert refused.exit_code == 1
    assert f"{TRAIN} (lines " in refused.output and "Nothing was written" in refused.output
    assert TASKS not in refused.output.split("overlap")[1]  # tasks.py merges cleanly: not a conflict
    assert tree_digest(tree) == digest
    dry = invoke("revert", str(tree), "--dry-run")
    assert f"conflict: {TRAIN}: lines " in dry.output
    forced = invoke("revert", str(tree), "--force")
    assert forced.exit_code == 0, forced.output
    assert f"merged {TASKS}: your changes kept" in forced.output
    assert f"saved your version as {TRAIN}.ultrapatch-backup" in forced.stdout
    assert (tree / TASKS).read_text() == mine + original_tasks  # ultrapatch's edits out, the user's line in
    assert (tree / TRAIN).read_text() == original_train
    assert "rect=True  # mine" in (tree / f"{TRAIN}.ultrapatch-backup").read_text()


def test_uncommitted_changes_before_apply_survive_apply_and_revert(release_tree):
    tree = release_tree("8.4.190")
    mine = (tree / TASKS).read_text().replace("def parse_model(", "# mine: uncommitted\ndef parse_model(", 1)
    (tree / TASKS).write_text(mine)
    applied = invoke("apply", str(tree), "-b", "mobilenetv3")
    assert applied.exit_code == 0, applied.output
    assert f"note: {TASKS} had uncommitted changes: they are kept" in applied.output
    assert "# mine: uncommitted\n" in (tree / TASKS).read_text()
    reverted = invoke("revert", str(tree))
    assert reverted.exit_code == 0, reverted.output
    assert f"note: {TASKS} has uncommitted changes of yours; they are kept" in reverted.output
    assert (tree / TASKS).read_text() == mine
    assert git_status(tree) == f" M {TASKS}\n"


def test_apply_commit_and_revert_add_commits(release_tree, monkeypatch):
    tree = release_tree("8.4.190")
    for key, value in {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@x"}.items():
        monkeypatch.setenv(key, value)
    repo = git.Repo(tree)
    first = repo.head.commit.hexsha
    applied = invoke("apply", str(tree), "-b", "mobilenetv2", "--commit")
    assert applied.exit_code == 0, applied.output
    assert git_status(tree) == "" and repo.head.commit.parents[0].hexsha == first
    assert "mobilenetv2" in repo.head.commit.message and "8.4.190" in repo.head.commit.message
    reverted = invoke("revert", str(tree))
    assert reverted.exit_code == 0, reverted.output
    assert "committed the reverse change" in reverted.output
    assert "note:" not in reverted.output  # nothing of the user's in the files: no false "uncommitted changes of yours"
    assert [c.hexsha for c in repo.iter_commits()][2] == first  # history kept: the reverse is a new commit
    assert repo.git.diff(first, "HEAD") == "" and git_status(tree) == ""


def test_commit_refuses_what_it_would_sweep_in(release_tree, monkeypatch):
    tree = release_tree("8.4.190")
    (tree / TASKS).write_text((tree / TASKS).read_text() + "# mine\n")
    digest = tree_digest(tree)
    result = invoke("apply", str(tree), "-b", "mobilenetv2", "--commit")
    assert result.exit_code == 2
    assert "needs a git identity" in result.output or "would also commit your uncommitted changes" in result.output
    assert tree_digest(tree) == digest


HOLD = """
import sys, time
from pathlib import Path
from patcher.transaction import locked
with locked(Path(sys.argv[1]), "apply"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_concurrent_run_is_refused_and_a_dead_holders_lock_taken(release_tree):
    tree = release_tree("8.4.190")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tree), "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        refused = invoke("apply", str(tree), "-b", "mobilenetv2")
        assert refused.exit_code == 2
        assert f"another ultrapatch (apply, pid {holder.pid}" in refused.output
        assert git_status(tree) == ""  # nothing written (.ultrapatch/ is excluded)
    finally:
        holder.kill()  # SIGKILL: the lock file stays, and the OS drops its flock
        holder.wait()
    assert (tree / ".git" / "ultrapatch.lock").exists()  # in a git repository, the lock lies beside git's own
    applied = invoke("apply", str(tree), "-b", "mobilenetv2")
    assert applied.exit_code == 0, applied.output
    assert not (tree / ".git" / "ultrapatch.lock").exists()


CONTEND = """
import os, sys, time
from pathlib import Path
from patcher.errors import UltrapatchError
from patcher.transaction import locked
root, inside, stop = Path(sys.argv[1]), Path(sys.argv[2]), time.time() + float(sys.argv[3])
entered = refused = 0
while time.time() < stop:
    try:
        with locked(root, "apply"):
            fd = os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # fails if another process is inside too
            os.close(fd)
            time.sleep(0.001)
            os.unlink(inside)
            entered += 1
    except UltrapatchError:
        refused += 1
print(entered, refused)
"""


def test_the_lock_admits_one_process_at_a_time(tmp_path):
    """Eight processes take and release the lock in a loop for four seconds, the folder removed and made again each
    time (as a full revert does): never two inside at once, and nothing but the refusal escapes."""
    root = tmp_path / "tree"
    root.mkdir()
    inside = tmp_path / "inside"
    processes = [
        subprocess.Popen([sys.executable, "-c", CONTEND, str(root), str(inside), "4"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    results = [process.communicate(timeout=120) for process in processes]
    for process, (out, err) in zip(processes, results):
        assert process.returncode == 0, err[-2000:]
    entered = sum(int(out.split()[0]) for out, _err in results)
    assert entered > 50, results  # they did take turns
    assert not (root / ".ultrapatch").exists()


def run_until_killed(tree: Path, step: int | str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, CRASH_AT: str(step)}
    return subprocess.run(
        [sys.executable, "-m", "patcher", *args, str(tree)], env=env, capture_output=True, text=True, cwd=tree.parent
    )


def outside_state(tree: Path) -> dict[str, str]:
    """The tree's digest without ultrapatch's own excluded folder (a killed run leaves its lock there)."""
    return {rel: digest for rel, digest in tree_digest(tree).items() if not rel.startswith(".ultrapatch/")}


def steps_of(tree: Path, *args: str) -> int:
    """How many steps a run has (it runs, in counting mode)."""
    done = run_until_killed(tree, "count", *args)
    assert done.returncode == 0, done.stderr
    return int(done.stderr.rsplit("ultrapatch steps: ", 1)[1])


def test_a_run_killed_at_any_step_is_completed_by_the_next(release_tree):
    """SIGKILL at 24 points spread over every write of an apply and of a revert (the process kills itself at the
    N-th step: before and after each rename, each removal, the record, the journal). Right after, the tree is the
    original, the patched tree, or has a journal; the next run always ends with the tree it was asked for."""
    tree = release_tree("8.4.190")
    original = tree_digest(tree)
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    patched, patched_files = tree_digest(tree), outside_state(tree)
    assert invoke("revert", str(tree)).exit_code == 0
    total = steps_of(tree, "apply", "-b", "mobilenetv2")
    assert tree_digest(tree) == patched and total > 40  # 20 files, the journal, the record, the exclude line
    assert invoke("revert", str(tree)).exit_code == 0
    points = sorted({1, 2, 3, total - 1, total, *range(4, total, max(1, total // 20))})
    assert len(points) >= 24
    for step in points:  # apply killed, then apply again, or revert
        assert run_until_killed(tree, step, "apply", "-b", "mobilenetv2").returncode == -signal.SIGKILL, step
        journal = (tree / ".ultrapatch" / "journal.json").exists()
        assert journal or outside_state(tree) in (original, patched_files), step  # the journal, or one of the two trees
        if step % 2:
            assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
            assert tree_digest(tree) == patched, step
            assert invoke("revert", str(tree)).exit_code == 0
        else:
            result = invoke("revert", str(tree))
            # killed before its journal: the tree is the original, and nothing was recorded to revert
            assert result.exit_code == 0 or (not journal and "nothing recorded" in result.output), (step, result.output)
        assert outside_state(tree) == original and git_status(tree) == "", step
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    total = steps_of(tree, "revert")
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    for step in sorted({1, 2, total - 1, total, *range(3, total, max(1, total // 6))}):  # revert killed, then again
        assert run_until_killed(tree, step, "revert").returncode == -signal.SIGKILL, step
        result = invoke("revert", str(tree))  # killed after its last file: nothing is left to revert
        assert result.exit_code == 0 or "nothing recorded" in result.output, (step, result.output)
        assert tree_digest(tree) == original, step
        assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0


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


@pytest.mark.parametrize("partial", [False, True])
def test_a_user_edit_between_two_applies_survives_revert(release_tree, partial):
    """Issue 12, defect 1: the second apply recorded the user's text as ultrapatch's, and revert dropped the edit."""
    tree = release_tree("8.4.190")
    original = (tree / TASKS).read_text()
    assert invoke("apply", str(tree), "-b", "mobilenetv3").exit_code == 0
    lines = (tree / TASKS).read_text().splitlines(keepends=True)
    (tree / TASKS).write_text("".join([lines[0], "MY_USER_CONSTANT = 42\n", *lines[1:]]))
    applied = invoke("apply", str(tree), "-b", "mobilenetv2")
    assert applied.exit_code == 0, applied.output
    if partial:
        result = invoke("revert", str(tree), "-b", "mobilenetv2")
        assert result.exit_code == 0, result.output
        assert "MY_USER_CONSTANT = 42\n" in (tree / TASKS).read_text()
        assert "MobileNetV2," not in (tree / TASKS).read_text()
    result = invoke("revert", str(tree))
    assert result.exit_code == 0, result.output
    assert f"merged {TASKS}: your changes kept" in result.output
    wanted = original.splitlines(keepends=True)
    assert (tree / TASKS).read_text() == "".join([wanted[0], "MY_USER_CONSTANT = 42\n", *wanted[1:]])
    assert git_status(tree) == f" M {TASKS}\n"


def test_applies_in_either_order_revert_cleanly(release_tree):
    """The disk is always ultrapatch's text for the recorded backbones (made from the originals) plus the user's
    changes: applying mobilenetv2 then mobilenetv3 writes what applying both at once writes, and reverts cleanly."""
    tree, both = release_tree("8.4.190"), release_tree("8.4.190", "both")
    before = tree_digest(tree)
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    second = invoke("apply", str(tree), "-b", "mobilenetv3")
    assert second.exit_code == 0 and "note:" not in second.output, second.output  # nothing of the user's here
    assert invoke("apply", str(both), "-b", "mobilenetv3", "-b", "mobilenetv2").exit_code == 0
    assert outside_state(tree) == outside_state(both)
    result = invoke("revert", str(tree))
    assert result.exit_code == 0, result.output
    assert tree_digest(tree) == before


def test_a_second_apply_refuses_to_merge_over_an_overlapping_edit(release_tree):
    tree = release_tree("8.4.190")
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    tasks = (tree / TASKS).read_text()
    (tree / TASKS).write_text(tasks.replace("    MobileNetV2,\n)", "    MobileNetV2,  # mine\n)", 1))
    digest = tree_digest(tree)
    result = invoke("apply", str(tree), "-b", "mobilenetv3")
    assert result.exit_code == 1, result.output
    assert f"your changes overlap ultrapatch's edits in: {TASKS} (lines" in result.output
    assert tree_digest(tree) == digest


def test_check_with_diff_prints_the_diff_and_check_with_dry_run_is_a_usage_error(release_tree):
    tree = release_tree("8.4.190")
    digest = tree_digest(tree)
    result = CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv2", "--check", "--diff"])
    assert result.exit_code == 1 and result.stdout.startswith("--- ") and "+++ b/ultralytics/nn/tasks.py" in result.stdout
    result = invoke("apply", str(tree), "-b", "mobilenetv2", "--check", "--dry-run")
    assert result.exit_code == 2 and "give one of them" in result.output
    assert tree_digest(tree) == digest


def test_a_created_yaml_the_user_changed_does_not_stop_the_next_apply(release_tree):
    """Found by the operation sequences: ultrapatch's own YAML, changed by the user, was taken for a file of the
    user's that apply must not overwrite, and a second apply refused."""
    tree = release_tree("8.4.190")
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    mine = tree / "ultralytics/cfg/models/11/yolo11-obb-MobileNetV2.yaml"
    mine.write_text("# my note\n" + mine.read_text())
    for backbone in ("mobilenetv2", "mobilenetv2-tv"):
        result = invoke("apply", str(tree), "-b", backbone)
        assert result.exit_code == 0, result.output
    assert mine.read_text().startswith("# my note\n")
    assert invoke("revert", str(tree), "-b", "mobilenetv2-tv").exit_code == 0
    assert mine.read_text().startswith("# my note\n")


def test_status_takes_a_users_change_to_a_created_yaml_for_no_conflict(release_tree):
    tree = release_tree("8.4.190")
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    mine = tree / "ultralytics/cfg/models/11/yolo11-MobileNetV2.yaml"
    mine.write_text("# my note\n" + mine.read_text())
    status = invoke("status", str(tree))
    assert status.exit_code == 0 and "mobilenetv2         installed (1 variant, 13 YAMLs)" in status.output, status.output


SAVE_CHECKPOINT = """
import sys
sys.path.insert(0, sys.argv[1])
import torch
from ultralytics.nn.tasks import DetectionModel
torch.save({"model": DetectionModel(sys.argv[2], verbose=False).half()}, sys.argv[3])
"""


def test_revert_names_the_checkpoints_it_strands(release_tree):
    """A trained `best.pt` pickles the AddModules classes: before writing, revert lists the checkpoints that need a
    module it takes out, and how to keep them loading; one that needs only what stays is not listed."""
    tree = release_tree("8.4.190")
    assert invoke("apply", str(tree), "-b", "mobilenetv3", "-b", "mobilenetv2").exit_code == 0
    weights = tree / "runs/detect/train/weights"
    weights.mkdir(parents=True)
    for name, yaml in (("v3.pt", "yolo11n-MobileNetV3_small_n.yaml"), ("v2.pt", "yolo11n-MobileNetV2.yaml")):
        subprocess.run([sys.executable, "-c", SAVE_CHECKPOINT, str(tree), yaml, str(weights / name)], check=True,
                       capture_output=True, env={**os.environ, "YOLO_OFFLINE": "1"}, cwd=tree.parent, timeout=300)
    (weights / "notes.pt").write_bytes(b"not a checkpoint")

    partial = invoke("revert", str(tree), "-b", "mobilenetv2", "--dry-run")
    assert partial.exit_code == 0
    assert (f"runs/detect/train/weights/v2.pt needs BackboneMap, MobileNetV2; it loads again after "
            f"`ultrapatch apply {tree} -b mobilenetv2`\n") in partial.stderr
    assert "v3.pt" not in partial.stderr and "notes.pt" not in partial.stderr  # MobileNetV3 and BackboneMap stay

    full = invoke("revert", str(tree))
    assert full.exit_code == 0
    assert "note: 2 checkpoint(s) here hold classes of ultralytics/nn/AddModules/" in full.stderr
    assert "runs/detect/train/weights/v3.pt needs BackboneMap, MobileNetV3; it loads again after `ultrapatch apply" in full.stderr


LOAD_CHECKPOINT = """
import sys
sys.path.insert(0, sys.argv[1])
import torch
model = torch.load(sys.argv[2], weights_only=False)["model"]
print(type(model.model[0]).__name__)
"""


def test_reverts_advice_for_a_checkpoint_works_as_written(release_tree):
    """A checkpoint trained with a timm backbone, then revert, apply of another backbone only, revert again: the note
    names every module the checkpoint needs (TimmBackbone too, not only what this revert takes out) with the timm
    model, and its command, run as written, makes the checkpoint load."""
    import shlex

    tree = release_tree("8.4.190")
    env = {**os.environ, "YOLO_OFFLINE": "1", "ULTRAPATCH_TIMM_PRETRAINED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    assert invoke("apply", str(tree), "-b", "timm:resnet18").exit_code == 0
    best = tree / "runs/detect/train/weights/best.pt"
    best.parent.mkdir(parents=True)
    subprocess.run([sys.executable, "-c", SAVE_CHECKPOINT, str(tree), "yolo11n-resnet18.yaml", str(best)], check=True,
                   capture_output=True, env=env, cwd=tree.parent, timeout=300)  # fmt: skip
    assert invoke("revert", str(tree)).exit_code == 0
    assert invoke("apply", str(tree), "-b", "mobilenetv3").exit_code == 0
    again = invoke("revert", str(tree))
    assert again.exit_code == 0, again.output
    line = next(line for line in again.stderr.splitlines() if "best.pt" in line)
    assert line.startswith("  runs/detect/train/weights/best.pt needs BackboneMap, TimmBackbone (timm:resnet18); "), line
    command = line.split("it loads again after `")[1].rstrip("`")
    assert command == f"ultrapatch apply {shlex.quote(str(tree))} -b timm:resnet18"
    loading = [sys.executable, "-c", LOAD_CHECKPOINT, str(tree), str(best)]
    assert subprocess.run(loading, capture_output=True, env=env, cwd=tree.parent, timeout=300).returncode != 0
    applied = invoke(*shlex.split(command)[1:])
    assert applied.exit_code == 0, applied.output
    done = subprocess.run(loading, capture_output=True, text=True, env=env, cwd=tree.parent, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "TimmBackbone", done.stderr[-2000:]
