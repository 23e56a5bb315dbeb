"""The command line on real trees: exit codes, sentences for mistakes, and the tree untouched when anything fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import REPO, git_status, pristine_tree, tree_digest
from patcher.cli import cli

pytestmark = pytest.mark.e2e
RELEASE = "8.4.190"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def tree(release_tree) -> Path:
    return release_tree(RELEASE)


def test_package_folder_is_accepted_as_path(tree):
    result = invoke("apply", str(tree / "ultralytics"), "-b", "mobilenetv3", "--check")
    assert result.exit_code == 1  # work to do: --check says so
    assert f"Ultralytics {RELEASE} at {tree}" in result.output


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: p, "is not an Ultralytics source tree"),
    ],
)
def test_not_a_tree_is_bad_input(tmp_path, make, words):
    result = invoke("apply", str(make(tmp_path)), "-b", "mobilenetv3")
    assert result.exit_code == 2
    assert words in result.output
    assert "Traceback" not in result.output


def test_unsupported_release_is_bad_input(tree):
    init = tree / "ultralytics/__init__.py"
    init.write_text(init.read_text().replace(f'__version__ = "{RELEASE}"', '__version__ = "8.0.200"'))
    result = invoke("apply", str(tree), "-b", "mobilenetv3")
    assert result.exit_code == 2
    assert "supports 8.1 to" in result.output


def test_unknown_backbone_is_bad_input(tree):
    before = tree_digest(tree)
    result = invoke("apply", str(tree), "-b", "resnet9000")
    assert result.exit_code == 2
    assert "unknown backbone 'resnet9000'" in result.output
    assert tree_digest(tree) == before


def test_backbone_is_required(tree):
    assert invoke("apply", str(tree)).exit_code == 2


def test_a_failed_edit_writes_nothing(tree):
    tasks = tree / "ultralytics/nn/tasks.py"
    tasks.write_text(tasks.read_text().replace("s = 256  # 2x min stride", "s = probe_size()"))
    before = tree_digest(tree)
    result = invoke("apply", str(tree), "-b", "all")
    assert result.exit_code == 1
    assert "stride-probe: ultralytics/nn/tasks.py, DetectionModel.__init__: could not find the stride probe" in result.output
    assert "nothing was written" in result.output
    assert tree_digest(tree) == before


def test_a_users_different_module_file_is_never_overwritten(tree):
    mine = tree / "ultralytics/nn/AddModules/MobileNetV3.py"
    mine.parent.mkdir()
    mine.write_text("# my own MobileNetV3\n")
    before = tree_digest(tree)
    result = invoke("apply", str(tree), "-b", "mobilenetv3")
    assert result.exit_code == 1
    assert "MobileNetV3.py exists and differs from ultrapatch's" in result.output
    assert tree_digest(tree) == before


def test_dry_run_prints_a_diff_git_can_apply(tree):
    result = invoke("apply", str(tree), "-b", "mobilenetv3", "--dry-run")
    assert result.exit_code == 0
    assert git_status(tree) == ""
    check = subprocess.run(["git", "apply", "--check", "-"], cwd=tree, input=result.stdout, text=True, capture_output=True)
    assert check.returncode == 0, check.stderr
    subprocess.run(["git", "apply", "-"], cwd=tree, input=result.stdout, text=True, check=True)
    assert invoke("apply", str(tree), "-b", "mobilenetv3", "--check").exit_code == 0  # the diff is the whole edit


def test_status_json(tree):
    before = json.loads(invoke("status", str(tree), "--json").stdout)
    assert before["release"] == RELEASE
    states = {e["name"]: e["state"] for e in before["edits"]}
    assert states.pop("rect-world-scratch") == "applied"  # 8.4.190's own code already passes rect=False there
    assert states.pop("visualize") == "not in this release"  # 8.4.x draws only tensors, in another module
    assert set(states.values()) == {"not applied"}
    assert before["backbones"][0] == {
        "name": "mobilenetv3",
        "state": "not installed",
        "detail": "",
        "variants": before["backbones"][0]["variants"],
    }
    assert invoke("apply", str(tree), "-b", "mobilenetv3").exit_code == 0
    after = json.loads(invoke("status", str(tree), "--json").stdout)
    states = {e["name"]: e["state"] for e in after["edits"]}
    assert states["predict-once"] == "applied" and states["yoloe-predict"] == "applied"
    assert after["backbones"][0]["state"] == "installed"
    assert "6 variants, 78 YAMLs" in after["backbones"][0]["detail"]  # 13 families and tasks on 8.4.190


def test_status_of_an_old_release_says_what_it_lacks(release_tree):
    tree = release_tree("8.1.47")
    report = json.loads(invoke("status", str(tree), "--json").stdout)
    states = {e["name"]: (e["state"], e["detail"]) for e in report["edits"]}
    assert states["yoloe-predict"] == ("not in this release", "no YOLOEModel")


def test_fetch_refuses_an_existing_folder(tmp_path):
    result = invoke("fetch", str(tmp_path))
    assert result.exit_code == 2
    assert "already exists" in result.output


def test_fetch_refuses_a_malformed_version(tmp_path):
    result = invoke("fetch", str(tmp_path / "u"), "--version", "latest")
    assert result.exit_code == 2
    assert "not a release number" in result.output
    assert not (tmp_path / "u").exists()


def test_fetch_says_when_pypi_cannot_be_reached(tmp_path, monkeypatch):
    monkeypatch.delenv("ULTRAPATCH_SDIST_CACHE", raising=False)
    for name, value in {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",  # nothing listens on the discard port
        "PIP_EXTRA_INDEX_URL": "",
        "PIP_FIND_LINKS": "",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "2",
    }.items():
        monkeypatch.setenv(name, value)
    result = invoke("fetch", str(tmp_path / "u"), "--version", "8.3.0")
    assert result.exit_code == 2
    assert "could not reach PyPI" in result.output
    assert not (tmp_path / "u").exists()


def test_fetch_says_when_a_release_does_not_exist(tmp_path, monkeypatch):
    monkeypatch.delenv("ULTRAPATCH_SDIST_CACHE", raising=False)
    result = invoke("fetch", str(tmp_path / "u"), "--version", "8.2.999")  # never released
    assert result.exit_code == 2
    assert "PyPI has no Ultralytics 8.2.999 source release" in result.output


def test_fetch_makes_a_git_repository_with_one_commit(release_tree):
    tree = release_tree("8.3.0")
    log = subprocess.run(["git", "log", "--format=%s"], cwd=tree, capture_output=True, text=True, check=True).stdout
    assert log == "Ultralytics 8.3.0 (PyPI source release)\n"
    assert git_status(tree) == ""
    tracked = subprocess.run(["git", "ls-files"], cwd=tree, capture_output=True, text=True, check=True).stdout
    assert "ultralytics.egg-info/" not in tracked and "ultralytics/nn/tasks.py" in tracked
    assert (tree / "ultralytics.egg-info/PKG-INFO").is_file()  # still there, for pip, but not in git's way
    (tree / "ultralytics.egg-info/SOURCES.txt").write_text("rewritten by pip install -e\n")  # what pip does
    (tree / "ultralytics/__pycache__").mkdir()
    (tree / "ultralytics/__pycache__/__init__.cpython-311.pyc").write_bytes(b"\0")  # what an import does
    (tree / "runs/detect/train/weights").mkdir(parents=True)
    (tree / "runs/detect/train/weights/best.pt").write_bytes(b"\0")  # what `yolo train` in the fork's folder writes
    assert git_status(tree) == ""


def test_console_script_and_module_entry_points(tmp_path):
    listed = subprocess.run([sys.executable, "-m", "patcher", "list"], cwd=tmp_path, capture_output=True, text=True)
    assert listed.returncode == 0
    assert " 1. addmodules" in listed.stdout and "20. model-yamls" in listed.stdout and "21. own-yamls" in listed.stdout
    script = Path(sys.executable).with_name("ultrapatch")  # the console script beside this interpreter
    version = subprocess.run([str(script), "--version"], cwd=tmp_path, capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("ultrapatch, version ")


def test_wheel_ships_modules_and_templates(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("ultrapatch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"patcher/modules/MobileNetV3.py", "patcher/templates/yolo11.yaml", "patcher/fork/launch.py", "patcher/fork/checks/build.py",
            "patcher/locale/zh/LC_MESSAGES/ultrapatch.mo", "patcher/locale/zh/LC_MESSAGES/ultrapatch.po"} <= names  # fmt: skip
    assert not any(name.startswith(("modules/", "templates/", "tests/")) for name in names)


def test_a_closed_stdout_ends_quietly_with_0(tmp_path):
    """`ultrapatch list | head -1`: the reader goes away; like git, end with 0 and say nothing."""
    script = Path(sys.executable).with_name("ultrapatch")
    process = subprocess.Popen([str(script), "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    process.stdout.close()  # before it writes anything
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert err == b""


def test_fetch_resolves_a_partial_release_and_notes_an_old_one(tmp_path):
    pristine_tree("8.3.0")  # its sdist is in the test cache
    result = invoke("fetch", str(tmp_path / "u"), "--version", "8.3")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("fetched Ultralytics 8.3.0 into")
    assert '__version__ = "8.3.0"' in (tmp_path / "u/ultralytics/__init__.py").read_text()
    old = invoke("fetch", str(tmp_path / "old"), "--version", "8.0.200")
    assert old.exit_code == 0, old.output
    assert "note: Ultralytics 8.0.200 is older than 8.1.0" in old.stderr and "apply will refuse it" in old.stderr
    refused = invoke("apply", str(tmp_path / "old"), "-b", "mobilenetv2")
    assert refused.exit_code == 2 and "supports 8.1 to" in refused.output


def test_the_fork_extra_covers_the_oldest_release(release_tree):
    """`pip install '.[fork]'` (the tests install it) is enough to import the oldest supported release from its
    folder: 8.1.0 imports hub_sdk unconditionally."""
    tree = release_tree("8.1.0")
    code = "import ultralytics, ultralytics.nn.tasks; from ultralytics import YOLO, RTDETR; print(ultralytics.__version__)"
    env = {**os.environ, "PYTHONPATH": str(tree), "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tree.parent / "cfg")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tree.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("8.1.0")


def test_a_dry_run_through_git_apply_makes_the_same_files_and_records_nothing(release_tree):
    """What the README says of `apply --dry-run | git apply`: the same files as applying, and no record, so revert has
    nothing to undo (git does: `git checkout`)."""
    piped, applied = release_tree(RELEASE), release_tree(RELEASE, "applied")
    dry = invoke("apply", str(piped), "-b", "mobilenetv2", "--dry-run")
    assert dry.exit_code == 0
    subprocess.run(["git", "apply"], input=dry.stdout, cwd=piped, check=True, text=True)
    assert invoke("apply", str(applied), "-b", "mobilenetv2").exit_code == 0
    assert tree_digest(piped) == {k: v for k, v in tree_digest(applied).items() if not k.startswith(".ultrapatch/")}
    reverted = invoke("revert", str(piped))
    assert reverted.exit_code == 2 and "nothing recorded" in reverted.output
