"""What ultrapatch says is what the tree holds: status and apply judge the files on disk, never the record.

A file the user restored with `git checkout`, a YAML or module file they deleted, a probe size of their own, their
own imports in tasks.py, and a fork upgraded to a newer release: each is reported as it is, apply puts back what is
missing (or says what it kept), and revert still gives the tree back byte for byte.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import git_status, pristine_tree, tree_digest
from patcher.backbones import select_backbones
from patcher.cli import cli
from patcher.edits import EDITS
from patcher.edits.base import Context, Status
from patcher.planner import make_plan
from patcher.tree import find_tree

pytestmark = pytest.mark.e2e
TASKS = "ultralytics/nn/tasks.py"
YAML = "ultralytics/cfg/models/11/yolo11-MobileNetV2.yaml"
MODULE = "ultralytics/nn/AddModules/MobileNetV2.py"
GIT = ["git", "-c", "user.name=u", "-c", "user.email=u@example.com"]


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code != 3, result.output
    return result


def status(tree: Path) -> dict:
    result = invoke("status", str(tree), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def missing_on_disk(tree: Path, backbones: tuple[str, ...]) -> list[str]:
    """The edits that making them again on the disk's text would change: none, once apply is done."""
    found = find_tree(tree)
    plan = make_plan(found, EDITS, Context(found.release, select_backbones(backbones)), texts=False)
    assert plan.ok, [r.detail for r in plan.failed]
    return [r.edit.name for r in plan.reports if r.status is Status.APPLIED]


@pytest.mark.parametrize("version", ["8.3.40", "8.4.190"])
def test_a_restored_or_deleted_file_is_reported_and_put_back(release_tree, version):
    tree = release_tree(version)
    before = tree_digest(tree)
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    applied = {rel: (tree / rel).read_bytes() for rel in (TASKS, YAML, MODULE)}
    subprocess.run(["git", "-C", str(tree), "checkout", "--", TASKS], check=True)
    (tree / YAML).unlink()
    (tree / MODULE).unlink()

    report = status(tree)
    edits = {e["name"]: e["state"] for e in report["edits"]}
    assert edits["tasks-import"] == edits["parse-model-branch"] == edits["stride-probe"] == "not applied"
    assert edits["model-yamls"] == edits["addmodules"] == "not applied"
    assert edits["rect-detect"] == "applied"  # the trainer still holds its edit
    files = {f["path"]: f for f in report["files"]}
    assert files[TASKS]["state"] == "restored to its original" and files[TASKS]["apply"] == "puts ultrapatch's edits back"
    assert files[YAML]["state"] == files[MODULE]["state"] == "deleted"
    assert {b["name"]: b["state"] for b in report["backbones"]}["mobilenetv2"] == "partly installed"
    assert sorted(missing_on_disk(tree, ("mobilenetv2",))) == sorted(n for n, s in edits.items() if s == "not applied")

    check = invoke("apply", str(tree), "-b", "mobilenetv2", "--check")
    assert check.exit_code == 1 and "would change 3 file(s)" in check.output, check.output
    result = invoke("apply", str(tree), "-b", "mobilenetv2")
    assert result.exit_code == 0, result.output
    assert f"note: {TASKS} had lost some of ultrapatch's edits since apply: put back" in result.output
    assert f"note: {YAML} was deleted since apply: put back" in result.output
    assert "wrote 3 file(s)" in result.output
    assert {rel: (tree / rel).read_bytes() for rel in applied} == applied
    assert missing_on_disk(tree, ("mobilenetv2",)) == []
    assert status(tree)["files"] == []
    assert invoke("apply", str(tree), "-b", "mobilenetv2", "--check").exit_code == 0

    subprocess.run(["git", "-C", str(tree), "checkout", "--", TASKS], check=True)
    assert invoke("revert", str(tree)).exit_code == 0  # a restored file: nothing of ultrapatch's left to take out
    assert tree_digest(tree) == before and git_status(tree) == ""


def test_an_edit_that_keeps_a_users_value_says_so(release_tree):
    tree = release_tree("8.3.40")
    tasks = tree / TASKS
    text = tasks.read_text(encoding="utf-8")
    assert text.count("s = 256  # 2x min stride") == 1
    tasks.write_text(text.replace("s = 256  # 2x min stride", "s = 320  # 2x min stride"), encoding="utf-8")
    result = invoke("apply", str(tree), "-b", "mobilenetv2")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.strip().startswith("stride-probe"))
    assert "applied (kept your probe size s = 320, where ultrapatch probes a model with a backbone at 640)" in line
    assert "s = 320  # 2x min stride" in tasks.read_text(encoding="utf-8")
    probe = next(e for e in status(tree)["edits"] if e["name"] == "stride-probe")
    assert probe["state"] == "applied" and "kept your probe size s = 320" in probe["detail"]


# A user's own blocks, registered by hand the three ways tutorials teach.
USERS_MODULES = {
    "TinyCSP.py": """
        import torch
        from torch import nn


        class TinyCSP(nn.Module):
            def __init__(self, c1):
                super().__init__()
                self.a, self.b = nn.Conv2d(c1 // 2, c1 // 2, 3, 1, 1), nn.Conv2d(c1, c1, 1)

            def forward(self, x):
                y, z = x.chunk(2, 1)
                return self.b(torch.cat((self.a(y), z), 1))
        """,
    "EnergyAttn.py": """
        import torch
        from torch import nn

        __all__ = ["EnergyAttn"]


        class EnergyAttn(nn.Module):
            def __init__(self, lam=1e-4):
                super().__init__()
                self.lam = lam

            def forward(self, x):
                d = (x - x.mean((2, 3), keepdim=True)).pow(2)
                energy = d / (4 * (d.sum((2, 3), keepdim=True) / (x.shape[2] * x.shape[3] - 1) + self.lam)) + 0.5
                return x * torch.sigmoid(energy)
        """,
    "GateBlock.py": """
        import torch
        from torch import nn


        class GateBlock(nn.Module):
            def forward(self, x):
                return x * torch.sigmoid(x.mean(1, keepdim=True))
        """,
}
USERS_IMPORTS = (
    "from ultralytics.nn.AddModules.TinyCSP import TinyCSP\n"  # a submodule import: binds the class
    "from ultralytics.nn.AddModules.EnergyAttn import *\n"  # a star import of the user's file
    "from ultralytics.nn.AddModules import GateBlock\n"  # a re-export from the package's __init__.py
)
USERS_BRANCH = "        elif m is TinyCSP:\n            c2 = ch[f]\n            args = [c2, *args]\n"
USERS_YAML = """\
nc: 10
backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, TinyCSP, []]
  - [-1, 1, EnergyAttn, []]
  - [-1, 1, GateBlock, []]
head:
  - [-1, 1, Classify, [nc]]
"""
BUILD = """
import sys
sys.path.insert(0, sys.argv[1])
import torch
from ultralytics import YOLO
for name in sys.argv[2:]:
    model = YOLO(name).model.eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64))
    print(name, [type(m).__name__ for m in model.model][:4])
"""


def hand_register(tree: Path) -> None:
    """The user's own modules, imports, parse_model branch and YAML, as a tutorial has them made, committed."""
    addmodules = tree / "ultralytics/nn/AddModules"
    addmodules.mkdir()
    for name, code in USERS_MODULES.items():
        (addmodules / name).write_text(textwrap.dedent(code).lstrip(), encoding="utf-8")
    (addmodules / "__init__.py").write_text("from .GateBlock import GateBlock\n", encoding="utf-8")
    tasks = tree / TASKS
    text = tasks.read_text(encoding="utf-8")
    at = text.index(")\n", text.index("from ultralytics.nn.modules import (")) + 2
    fallback = text.index("        else:\n            c2 = ch[f]\n")
    tasks.write_text(text[:at] + USERS_IMPORTS + text[at:fallback] + USERS_BRANCH + text[fallback:], encoding="utf-8")
    (tree / "mine.yaml").write_text(USERS_YAML, encoding="utf-8")
    subprocess.run([*GIT, "-C", str(tree), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(tree), "commit", "-qm", "my blocks"], check=True)


def build(tree: Path, *yamls: str) -> str:
    done = subprocess.run([sys.executable, "-c", BUILD, str(tree), *yamls], capture_output=True, text=True,
                          cwd=tree, env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "YOLO_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                                         "YOLO_CONFIG_DIR": str(tree.parent / "yolo-config")}, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("version", ["8.3.40", "8.4.190"])
def test_a_users_own_imports_stay_as_written_and_keep_building(release_tree, version):
    tree = release_tree(version)
    hand_register(tree)
    before = tree_digest(tree)
    assert "TinyCSP', 'EnergyAttn', 'GateBlock" in build(tree, "mine.yaml")
    result = invoke("apply", str(tree), "-b", "mobilenetv2")
    assert result.exit_code == 0, result.output
    text = (tree / TASKS).read_text(encoding="utf-8")
    assert USERS_IMPORTS in text and USERS_BRANCH in text
    assert "from ultralytics.nn.AddModules import (  # backbones installed by ultrapatch\n" in text
    init = (tree / "ultralytics/nn/AddModules/__init__.py").read_text(encoding="utf-8")
    assert init.startswith("from .GateBlock import GateBlock\n") and "from .MobileNetV2 import *" in init
    out = build(tree, "mine.yaml", "yolo11n-MobileNetV2.yaml" if version >= "8.3" else "yolov8n-MobileNetV2.yaml")
    assert "TinyCSP', 'EnergyAttn', 'GateBlock" in out and "MobileNetV2" in out
    assert invoke("revert", str(tree)).exit_code == 0
    assert tree_digest(tree) == before
    assert "TinyCSP', 'EnergyAttn', 'GateBlock" in build(tree, "mine.yaml")


def upgrade(tree: Path, version: str) -> str:
    """Copy a newer release's files over the fork, as the tutorials' users upgrade (ultrapatch's files stay), and
    commit; the commit."""
    new = pristine_tree(version)
    shutil.copytree(new / "ultralytics", tree / "ultralytics", dirs_exist_ok=True)
    for name in ("pyproject.toml", "setup.py", "setup.cfg"):
        if (new / name).is_file():
            shutil.copy2(new / name, tree / name)
    subprocess.run([*GIT, "-C", str(tree), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(tree), "commit", "-qm", f"upgrade to {version}"], check=True)
    return subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize("old,new", [("8.3.40", "8.3.150"), ("8.4.0", "8.4.190")])  # the first across the frozensets
def test_an_upgraded_fork_is_reapplied_and_reverted_exactly(release_tree, old, new):
    tree = release_tree(old)
    assert invoke("apply", str(tree), "-b", "mobilenetv2", "--commit").exit_code == 0
    created = set(status(tree)["record"]["created"])
    upgrade(tree, new)
    upgraded = {rel: digest for rel, digest in tree_digest(tree).items() if not rel.startswith(".ultrapatch/")}

    report = status(tree)
    assert report["release"] == new and report["record"]["applied_on"] == old
    text = invoke("status", str(tree)).output
    assert f"upgraded: applied on Ultralytics {old}; this tree is now {new}." in text
    assert {e["name"]: e["state"] for e in report["edits"]}["tasks-import"] == "not applied"

    result = invoke("apply", str(tree), "-b", "mobilenetv2")
    assert result.exit_code == 0, result.output
    assert "changes of yours" not in result.output
    assert missing_on_disk(tree, ("mobilenetv2",)) == []
    fresh = tree.parent / "fresh"
    shutil.copytree(pristine_tree(new), fresh, symlinks=True)
    assert invoke("apply", str(fresh), "-b", "mobilenetv2").exit_code == 0
    edited = status(fresh)["record"]["edited"]
    assert {rel: (tree / rel).read_bytes() for rel in edited} == {rel: (fresh / rel).read_bytes() for rel in edited}
    assert status(tree)["record"]["applied_on"] == new

    result = invoke("revert", str(tree))
    assert result.exit_code == 0, result.output
    expected = {rel: digest for rel, digest in upgraded.items() if rel not in created | set(status(fresh)["record"]["created"])}
    assert tree_digest(tree) == expected


def test_the_stock_check_names_originals_that_are_not_the_published_release(release_tree):
    """verify's stock check compares with the recorded originals; where those hold the user's changes from before
    apply, the tree's first commit (fetch's, the release as published) tells, and the verdict says which files."""
    from patcher import records
    from patcher.verify import compare_stock, originals_not_published

    tree = release_tree("8.4.190")
    train = tree / "ultralytics/models/yolo/detect/train.py"
    train.write_text(train.read_text(encoding="utf-8") + "# mine, before ultrapatch\n", encoding="utf-8")
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    record = records.load(tree)
    assert originals_not_published(find_tree(tree), record) == ["ultralytics/models/yolo/detect/train.py"]
    subprocess.run(["git", "-C", str(tree), "checkout", "--", "ultralytics/models/yolo/detect/train.py"], check=True)
    assert invoke("revert", str(tree), "--force").exit_code == 0
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    assert originals_not_published(find_tree(tree), records.load(tree)) == []
    verdict = compare_stock({"a.yaml": {"params": 1, "seconds": 1}}, {"a.yaml": {"params": 1, "seconds": 1}}, "the unpatched fork")
    assert verdict["reason"].startswith("all 1 stock models build as in the unpatched fork (")
