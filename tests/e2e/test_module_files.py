"""Module files of the user's (`apply --module`): each role registered with the release's own constructs, proven by a
YAML that uses them, trained for an epoch with the fork's own `yolo train`, and reverted byte for byte; every refusal
is one sentence, exit 2, and the tree as it was.

The module files are in `tests/modules/`, written for these tests from the papers' descriptions: SEBlock (keep),
ShuffleConv (base, with its own `Conv` and `autopad` as tutorial files have them), C2fLite (repeat), SimAM (free),
WeightedFusion and WeightedConcat (multi: one takes its inputs' channels and a c2, one only joins them);
`tests/yamls/yolov8-modules.yaml` uses them all.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import tree_digest, verify_json
from patcher.cli import cli

pytestmark = pytest.mark.e2e
# The releases a module file is proven on: the newest by default, the inline sets and the last release before the
# frozensets with `-m module_matrix`.
MATRIX = [pytest.param("8.1.47", marks=pytest.mark.module_matrix), pytest.param("8.3.40", marks=pytest.mark.module_matrix), "8.4.190"]
MODULES = Path(__file__).resolve().parent.parent / "modules"
YAMLS = Path(__file__).resolve().parent.parent / "yamls"
FILES = ("SEBlock", "ShuffleConv", "C2fLite", "SimAM", "Fusion")
TASKS = "ultralytics/nn/tasks.py"
YOLO_CLI = "import sys; from ultralytics.cfg import entrypoint; sys.argv = ['yolo', *sys.argv[1:]]; entrypoint()"
LOADS = (
    "import sys, torch; from ultralytics import YOLO; model = YOLO(sys.argv[1]).model.float().eval(); "
    "out = model(torch.rand(1, 3, 64, 64)); print('LOADED', type(model.model[10]).__name__, type(model.model[7]).__name__)"
)


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code != 3, result.output
    return result


def modules(*names: str) -> list[str]:
    return [a for name in names for a in ("--module", str(MODULES / f"{name}.py"))]


def fork_env(tree: Path, tmp_path: Path) -> dict:
    import os

    return {**os.environ, "PYTHONPATH": str(tree), "YOLO_CONFIG_DIR": str(tmp_path / "cfg"), "YOLO_OFFLINE": "1", "OMP_NUM_THREADS": "2"}


def train_one_epoch(tree: Path, tmp_path: Path, model: str = "yolov8n-modules.yaml") -> Path:
    """`yolo train` of an installed YAML, by name, for one epoch on a tiny synthetic set; its best.pt."""
    from patcher.fork.data import synthetic_dataset

    data = synthetic_dataset(tmp_path / "data", "detect")
    args = ["train", f"model={model}", f"data={data}", "epochs=1", "batch=2", "imgsz=64", "device=cpu",
            "workers=0", "plots=False", "amp=False", f"project={tmp_path / 'runs'}", "name=train", "exist_ok=True"]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", YOLO_CLI, *args], capture_output=True, text=True,
                          env=fork_env(tree, tmp_path), cwd=tmp_path, timeout=900)  # fmt: skip
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    best = tmp_path / "runs" / "train" / "weights" / "best.pt"
    assert best.is_file()
    return best


@pytest.mark.parametrize("version", MATRIX)
def test_each_role_applied_verified_trained_and_reverted(release_tree, tmp_path, version):
    tree = release_tree(version)
    pristine = tree_digest(tree)
    result = invoke("apply", str(tree), *modules(*FILES))
    assert result.exit_code == 0, result.output
    for line in (
        "module SEBlock.py: SEBlock as keep (__init__(c1, r): input channels only: its output keeps them)",
        "module ShuffleConv.py: ShuffleConv as base (__init__(c1, c2, k, s, groups): input and output channels)",
        "module ShuffleConv.py: Conv stays the file's own helper",
        "module C2fLite.py: C2fLite as repeat (__init__(c1, c2, n, shortcut, e): input channels, output channels, repeats)",
        "module SimAM.py: SimAM as free (__init__(e_lambda): no channel argument)",
        "module Fusion.py: WeightedFusion as multi (__init__(c1, c2, eps): its first argument is a list of input channels; "
        "tried: its inputs' channels as a list, then c2 (scaled by width); its output: c2)",
        "module Fusion.py: WeightedConcat as multi (__init__(dimension, eps): no channel argument, and its name says it "
        "joins maps; tried: no channel argument; its output: its inputs' channels summed)",
    ):
        assert line in result.output, result.output
    tasks = (tree / TASKS).read_text(encoding="utf-8")
    assert "elif m in {SEBlock}:  # modules installed by ultrapatch: they keep their input's channels" in tasks
    assert "import Conv" not in tasks.split("from ultralytics.nn.AddModules import")[1].split(")")[0]  # never the helper
    assert invoke("apply", str(tree), "--yaml", str(YAMLS / "yolov8-modules.yaml")).exit_code == 0
    again = invoke("apply", str(tree), *modules(*FILES), "--yaml", str(YAMLS / "yolov8-modules.yaml"))
    assert again.exit_code == 0 and again.output.rstrip().endswith("nothing to change"), again.output  # idempotent

    report = verify_json(tree)  # every installed YAML that uses the modules, and every stock model beside
    (model,) = report["models"]
    assert model["name"] == "yolov8-modules.yaml" and model["ok"], {c: v for c, v in model["checks"].items() if v["status"] == "fail"}
    assert model["stock"]["name"] == "yolov8n.yaml" and model["checks"]["scales"]["reason"] == "s, m build and run too"
    assert report["stock_models"]["status"] == "pass", report["stock_models"]  # the file's own Conv changed no stock model

    if version != "8.1.47":  # 8.1.47's loader loads no checkpoint under torch >= 2.6, so its trainer's last step cannot
        best = train_one_epoch(tree, tmp_path)
        done = subprocess.run([sys.executable, "-c", LOADS, str(best)], capture_output=True, text=True,
                              env=fork_env(tree, tmp_path), cwd=tmp_path)  # a fresh process  # fmt: skip
        assert "LOADED SEBlock ShuffleConv" in done.stdout, done.stderr[-3000:]

    partial = invoke("revert", str(tree), "--module", "SimAM")
    assert partial.exit_code == 0 and "took out SimAM" in partial.output, partial.output
    assert not (tree / "ultralytics/nn/AddModules/SimAM.py").exists() and "SimAM" not in (tree / TASKS).read_text(encoding="utf-8")
    assert invoke("revert", str(tree)).exit_code == 0
    assert tree_digest(tree) == pristine


@pytest.mark.parametrize("version", MATRIX)
def test_a_backbone_file_gets_what_a_shipped_backbone_gets(release_tree, tmp_path, version):
    """StarLite (tests/modules/StarLite.py) sets width_list: registered in parse_model's backbone branch, with a YAML
    for every family and task, verified (weights, freeze of its backbone section), trained, reloaded, and taken out
    alone by `revert --module`, which leaves the other module file in place."""
    tree = release_tree(version)
    pristine = tree_digest(tree)
    result = invoke("apply", str(tree), *modules("StarLite", "SEBlock"))
    assert result.exit_code == 0, result.output
    assert "module StarLite.py: StarLite as backbone (it sets width_list: it returns its maps as a list)" in result.output
    assert "module StarLite.py: StarBlock stays a part of StarLite, not registered" in result.output
    folders = ("v3", "v8", "rt-detr") + (("11",) if version >= "8.3" else ()) + (("26",) if version >= "8.4" else ())
    installed = sorted(p.relative_to(tree / "ultralytics/cfg/models").as_posix() for p in (tree / "ultralytics/cfg/models").glob("*/*StarLite.yaml"))
    assert {p.split("/")[0] for p in installed} == set(folders) and "v8/yolov8-seg-StarLite.yaml" in installed
    assert "StarLite.py (StarLite backbone)" in invoke("status", str(tree)).output

    families = ("yolo11-StarLite", "yolov8-cls-StarLite", "rtdetr-l-StarLite") if version >= "8.3" else ("yolov8-pose-StarLite",)
    report = verify_json(tree, *(a for f in families for a in ("--model", f)))
    assert [m["name"].split("-")[0] for m in report["models"]] and all(m["ok"] for m in report["models"]), [
        (m["name"], {c: v["reason"] for c, v in m["checks"].items() if v["status"] == "fail"}) for m in report["models"]
    ]
    assert all(m["checks"]["freeze"]["status"] == "pass" for m in report["models"])
    if version != "8.1.47":  # 8.1.47's loader loads no checkpoint under torch >= 2.6 (see the test above)
        best = train_one_epoch(tree, tmp_path, "yolov8n-StarLite.yaml")
        loads = LOADS.replace("type(model.model[10]).__name__, type(model.model[7]).__name__", "type(model.model[0]).__name__")
        done = subprocess.run([sys.executable, "-c", loads, str(best)], capture_output=True, text=True, env=fork_env(tree, tmp_path), cwd=tmp_path)
        assert "LOADED StarLite" in done.stdout, done.stderr[-3000:]

    alone = invoke("revert", str(tree), "--module", "StarLite")
    assert alone.exit_code == 0, alone.output
    assert not list((tree / "ultralytics/cfg/models").glob("*/*StarLite.yaml"))
    assert not (tree / "ultralytics/nn/AddModules/BackboneMap.py").exists() and (tree / "ultralytics/nn/AddModules/SEBlock.py").is_file()
    assert invoke("revert", str(tree)).exit_code == 0
    assert tree_digest(tree) == pristine


def test_the_role_guess_is_overridden_and_every_bad_file_refused(release_tree, tmp_path):
    tree = release_tree("8.4.190")
    pristine = tree_digest(tree)

    def write(name: str, text: str) -> str:
        (tmp_path / name).write_text(text, encoding="utf-8")
        return str(tmp_path / name)

    header = "import torch\nfrom torch import nn\n\n"
    cases = {
        f"{MODULES / 'SEBlock.py'}:SEBlock=base": "SEBlock as base (named on the command line): SEBlock(16, 32) fails",
        write("Odd.py", header + "class Odd(nn.Module):\n    def __init__(self, k):\n        super().__init__()\n"
              "        self.k = k\n\n    def forward(self, x):\n        return x\n"): "the role of Odd cannot be told from __init__(k)",
        write("Broken.py", "class Broken(:\n"): "line 1: it does not parse",
        write("Plain.py", "def helper():\n    return 1\n"): "it defines no nn.Module class",
        write("Needs.py", "import not_a_package_of_anyones\n" + header + "class Needs(nn.Module):\n    def __init__(self, c1):\n"
              "        super().__init__()\n"): "imports not_a_package_of_anyones, which",
        write("Shadow.py", header + '__all__ = ["CBAM"]\n\nclass CBAM(nn.Module):\n    def __init__(self, c1):\n'
              "        super().__init__()\n"): "CBAM is a name Ultralytics already uses",
        write("OnlyConv.py", header + "class Conv(nn.Module):\n    def __init__(self, c1, c2):\n        super().__init__()\n"): "nothing left to register",
        write("my-se.py", "x = 1\n"): "is not a Python name",
        write("Head.py", "from ultralytics.nn.modules import Detect\n\nclass MyDetect(Detect):\n    pass\n"): "MyDetect is a head",
        write("Losses.py", header + "class WIoULoss(nn.Module):\n    def __init__(self):\n        super().__init__()\n"): "WIoULoss is a loss",
        write("C3k2Old.py", "from ultralytics.nn.modules import C3k2\n\nclass C3k2Old(C3k2):\n    def __init__(self, c1, c2, n=1, "
              "c3k=False, e=0.5, g=1, shortcut=True):\n        super().__init__(c1, c2, n, c3k, e, g, shortcut)\n"):
            "C3k2Old passes g to C3k2.__init__ by position, where C3k2 in this release",  # 8.3's signature, on 8.4
        write("Star.py", header + '__all__ = ["star_s"]\n\nclass Star(nn.Module):\n    def __init__(self, base):\n'
              "        super().__init__()\n        self.width_list = [base] * 4\n\ndef star_s():\n    return Star(8)\n"):
            "star_s is a function",
        write("Flat.py", header + "class Flat(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
              "        self.width_list = [3]\n\n    def forward(self, x):\n        return [x]\n"): "Flat as backbone",
    }  # fmt: skip
    for spec, words in cases.items():
        result = invoke("apply", str(tree), "--module", spec)
        assert result.exit_code == 2 and words in result.output and "Traceback" not in result.output, (spec, result.output)
    twice = write("SEBlock2.py", (MODULES / "SEBlock.py").read_text(encoding="utf-8"))
    result = invoke("apply", str(tree), "--module", str(MODULES / "SEBlock.py"), "--module", twice)
    assert result.exit_code == 2 and "both define SEBlock" in result.output, result.output
    assert tree_digest(tree) == pristine

    named = invoke("apply", str(tree), "--module", f"{MODULES / 'SEBlock.py'}:SEBlock=keep", "--dry-run")
    assert named.exit_code == 0 and "SEBlock as keep (named on the command line)" in named.output, named.output
    assert "+        elif m in {SEBlock}:" in named.output and tree_digest(tree) == pristine

    assert invoke("apply", str(tree), *modules("SEBlock")).exit_code == 0  # then the user edits the installed file
    installed = tree / "ultralytics/nn/AddModules/SEBlock.py"
    installed.write_text(installed.read_text(encoding="utf-8") + "# tuned: r=8 works better here\n", encoding="utf-8")
    again = invoke("apply", str(tree), *modules("SEBlock"))
    assert again.exit_code == 0 and installed.read_text(encoding="utf-8").endswith("# tuned: r=8 works better here\n")
    reverted = invoke("revert", str(tree))
    assert reverted.exit_code == 0 and "kept ultralytics/nn/AddModules/SEBlock.py: created by ultrapatch, changed by you since" in reverted.output


def test_a_hand_registration_is_adopted_and_given_back(release_tree):
    """A tutorial applied by hand: the file copied into AddModules, imported into tasks.py from its submodule, and an
    `elif` branch of the keep shape. apply registers nothing twice, and revert gives back the hand-made tree."""
    tree = release_tree("8.3.40")
    folder = tree / "ultralytics/nn/AddModules"
    folder.mkdir()
    (folder / "SEBlock.py").write_text((MODULES / "SEBlock.py").read_text(encoding="utf-8"), encoding="utf-8")
    tasks = tree / TASKS
    text = tasks.read_text(encoding="utf-8")
    text = text.replace("from ultralytics.utils import", "from ultralytics.nn.AddModules.SEBlock import SEBlock\nfrom ultralytics.utils import", 1)
    text = text.replace("        elif m is AIFI:", "        elif m in {SEBlock}:\n            c2 = ch[f]\n            args = [c2, *args]\n        elif m is AIFI:", 1)
    tasks.write_text(text, encoding="utf-8")
    hand = tree_digest(tree)
    result = invoke("apply", str(tree), *modules("SEBlock"))
    assert result.exit_code == 0, result.output
    assert "  tasks-import  already applied" in result.output and "  module-roles  already applied" in result.output
    assert tasks.read_text(encoding="utf-8").count("SEBlock") == text.count("SEBlock")  # registered once, by the user
    report = verify_json(tree, "--yaml", str(YAMLS / "yolo11-p2.yaml"))  # the fork still imports and builds
    assert report["models"][0]["ok"]
    assert invoke("revert", str(tree)).exit_code == 0
    assert tree_digest(tree) == hand


BUILT_AT_M = (
    "import sys; from ultralytics import YOLO; model = YOLO('yolo11m-c3k2se.yaml').model; block = model.model[8]; "
    "print('BLOCK', type(block).__name__, type(block.m[0]).__name__)"
)


@pytest.mark.parametrize("version", [pytest.param("8.3.40", marks=pytest.mark.module_matrix), "8.4.190"])
def test_a_c3k2_subclass_gets_c3k2s_own_rule(release_tree, tmp_path, version):
    """C3k2SE subclasses C3k2: registered as one (`if m in {C3k2, C3k2SE}:`), it gets `c3k=True` from scale m on, as
    C3k2 does; as a plain repeat module it would build C3k2's light blocks at every scale."""
    tree = release_tree(version)
    pristine = tree_digest(tree)
    result = invoke("apply", str(tree), *modules("C3k2SE"), "--yaml", str(YAMLS / "yolo11-c3k2se.yaml"))
    assert result.exit_code == 0, result.output
    assert "module C3k2SE.py: C3k2SE as c3k2 (a subclass of C3k2: registered as one, with its m/l/x rule)" in result.output
    assert "if m in {C3k2, C3k2SE}:  # for M/L/X sizes" in (tree / TASKS).read_text(encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", BUILT_AT_M], capture_output=True, text=True, env=fork_env(tree, tmp_path), cwd=tmp_path)
    assert "BLOCK C3k2SE C3k" in done.stdout, done.stderr[-3000:]  # C3k blocks at scale m: the rule reached it
    report = verify_json(tree, "--model", "yolo11*-c3k2se*")
    assert report["models"][0]["ok"] and report["models"][0]["checks"]["scales"]["reason"] == "s, m build and run too"
    best = train_one_epoch(tree, tmp_path, "yolo11n-c3k2se.yaml")
    loads = LOADS.replace("type(model.model[10]).__name__, type(model.model[7]).__name__", "type(model.model[8]).__name__")
    done = subprocess.run([sys.executable, "-c", loads, str(best)], capture_output=True, text=True, env=fork_env(tree, tmp_path), cwd=tmp_path)
    assert "LOADED C3k2SE" in done.stdout, done.stderr[-3000:]  # the trained checkpoint, in a fresh process
    assert invoke("revert", str(tree)).exit_code == 0
    assert tree_digest(tree) == pristine
