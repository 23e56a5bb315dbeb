"""addmodules and model-yamls: create what is missing, merge into what the user has, never overwrite their files."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import seed_code
from edit_helpers import run_edit
from patcher.backbones import BACKBONE_MAP, BACKBONES
from patcher.edits.addmodules import INIT, AddModulesPackage
from patcher.edits.base import Status
from patcher.edits.model_yamls import ModelYamls
from patcher.structure import structure_fingerprint

V3 = BACKBONES["mobilenetv3"]


def test_creates_the_package(tmp_path):
    plan, changed = run_edit(tmp_path, AddModulesPackage(), {})
    assert plan.reports[0].status is Status.APPLIED
    assert changed[V3.module_path] == V3.source
    assert changed[BACKBONE_MAP.module_path] == BACKBONE_MAP.source  # every backbone's maps need it
    assert changed[INIT].endswith("from .BackboneMap import *\nfrom .MobileNetV3 import *\n")


def test_keeps_the_users_modules_and_imports(tmp_path):
    users = "from .MyBlock import *\nfrom .Other import Thing\n"
    plan, changed = run_edit(tmp_path, AddModulesPackage(), {INIT: users, "ultralytics/nn/AddModules/MyBlock.py": "X = 1\n"})
    assert changed[INIT] == users + "from .BackboneMap import *\nfrom .MobileNetV3 import *\n"
    assert "ultralytics/nn/AddModules/MyBlock.py" not in changed


def test_init_without_final_newline(tmp_path):
    plan, changed = run_edit(tmp_path, AddModulesPackage(), {INIT: "from .MyBlock import *"})
    assert changed[INIT] == "from .MyBlock import *\nfrom .BackboneMap import *\nfrom .MobileNetV3 import *\n"


def test_already_there(tmp_path):
    files = {V3.module_path: V3.source, BACKBONE_MAP.module_path: BACKBONE_MAP.source,
             INIT: "from .BackboneMap import *\nfrom .MobileNetV3 import *\n"}
    plan, changed = run_edit(tmp_path, AddModulesPackage(), files)
    assert plan.reports[0].status is Status.ALREADY and not changed


def test_a_different_file_of_the_users_is_never_overwritten(tmp_path):
    plan, changed = run_edit(tmp_path, AddModulesPackage(), {V3.module_path: "# my own MobileNetV3\n"})
    assert plan.reports[0].status is Status.FAILED
    assert "differs from ultrapatch's MobileNetV3.py" in plan.reports[0].detail
    assert "move it aside" in plan.reports[0].detail


def test_the_tutorials_own_file_is_replaced(tmp_path):
    seed = seed_code("seed000_MobileNetV3.py")
    reformatted = (  # comments, blank lines and line wrapping differ; the code is the same
        seed.replace("# 使用列表存储所有层", "# my note")
        .replace("\n\n\n", "\n\n")
        .replace("nn.Linear(\n            in_channels, in_channels // 4\n        )", "nn.Linear(in_channels, in_channels // 4)")
    )
    assert reformatted.count("\n") < seed.count("\n") - 10
    plan, changed = run_edit(tmp_path, AddModulesPackage(), {V3.module_path: reformatted})
    assert plan.reports[0].status is Status.APPLIED
    assert changed[V3.module_path] == V3.source


def _reindented(source: str) -> str:
    """Re-indented by hand: two spaces a level instead of four."""
    return "".join(re.sub(r"^( +)", lambda m: " " * (len(m.group(1)) // 2), line) for line in source.splitlines(True))


def _bare(source: str) -> str:
    """Docstrings and type annotations dropped, everything rewritten in one layout (ast.unparse)."""

    class Strip(ast.NodeTransformer):
        def visit_arg(self, node):
            node.annotation = None
            return node

        def visit_FunctionDef(self, node):
            self.generic_visit(node)
            node.returns = None
            if isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
                node.body = node.body[1:] or [ast.Pass()]
            return node

    return ast.unparse(Strip().visit(ast.parse(source)))


SPLIT = "        x = self.conv(x)\n        x = self.norm(x)\n        x = self.activation(x)\n        return x\n"
NESTED = "        return self.activation(self.norm(self.conv(x)))\n"
LAYOUTS = {
    "reindented": _reindented,
    "bare": _bare,
    "nested": lambda source: source.replace(SPLIT, NESTED),
    "split": lambda source: source.replace(
        "        result_list = list(unique_tensors.values())[-4:]\n        return result_list\n",
        "        values = unique_tensors.values()\n        everything = list(values)\n        return everything[-4:]\n",
    ),
}
NETWORKS = {  # the same layout, another network: the user's
    "a channel": lambda source: source.replace("in_channels, in_channels // 4", "in_channels, in_channels // 8", 1),
    "a layer": lambda source: source.replace(SPLIT, SPLIT.replace("x = self.norm(x)", "x = self.norm(self.norm(x))")),
    "a forward step": lambda source: source.replace("[-4:]", "[-3:]"),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_tutorials_file_is_recognised_in_any_layout(tmp_path, layout):
    seed = seed_code("seed000_MobileNetV3.py")
    mine = LAYOUTS[layout](seed)
    assert mine != seed
    plan, changed = run_edit(tmp_path, AddModulesPackage(), {V3.module_path: mine})
    assert plan.reports[0].status is Status.APPLIED, plan.reports[0].detail
    assert changed[V3.module_path] == V3.source


@pytest.mark.parametrize("network", NETWORKS)
def test_a_file_that_builds_another_network_stays_the_users(tmp_path, network):
    seed = seed_code("seed000_MobileNetV3.py")
    mine = NETWORKS[network](seed)
    assert mine != seed
    plan, _ = run_edit(tmp_path, AddModulesPackage(), {V3.module_path: mine})
    assert plan.reports[0].status is Status.FAILED and "differs from ultrapatch's" in plan.reports[0].detail


def tidied(source: str) -> str:
    """A user's tidy copy of the tutorial's file: its `__main__` test block and an unused assignment taken out."""
    main = source.index('if __name__ == "__main__":')
    unused = next(line for line in source.splitlines(keepends=True) if line.strip().startswith("_out_channel = "))
    return source[:main].replace(unused, "")


def test_a_tidied_copy_of_the_tutorials_file_is_still_the_tutorials(tmp_path):
    mine = tidied(seed_code("seed000_MobileNetV3.py"))
    assert "__main__" not in mine and "_out_channel =" not in mine
    plan, changed = run_edit(tmp_path, AddModulesPackage(), {V3.module_path: mine})
    assert plan.reports[0].status is Status.APPLIED, plan.reports[0].detail
    assert changed[V3.module_path] == V3.source


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.replace("_out_channel = int(", "self.width = int(", 1),  # an attribute: the module keeps it
        lambda s: s.replace("_out_channel = int(", "_out_channel = print(", 1),  # a call with an effect
        lambda s: s + "\nNAMES = ['_out_channel']\n",  # a string of its spelling may read it: kept
    ],
    ids=["attribute", "impure call", "read by name"],
)
def test_only_dead_code_is_left_out(tmp_path, change):
    seed = seed_code("seed000_MobileNetV3.py")
    mine = change(seed[: seed.index('if __name__ == "__main__":')])
    plan, _ = run_edit(tmp_path, AddModulesPackage(), {V3.module_path: mine})
    assert plan.reports[0].status is Status.FAILED and "differs from ultrapatch's" in plan.reports[0].detail


@pytest.mark.parametrize(("backbone", "file"), [("mobilenetv3", "seed000_MobileNetV3.py"),
                                                 ("mobilenetv2", "seed002_MobileNetV2.py"),
                                                 ("mobileone", "seed003_MobileOne.py")])
def test_the_recorded_fingerprints_are_the_seeds(backbone, file):
    assert structure_fingerprint(seed_code(file)) in BACKBONES[backbone].tutorial_fingerprints


def test_yamls_land_in_each_familys_folder(tmp_path):
    plan, changed = run_edit(tmp_path, ModelYamls(), {}, release=(8, 3, 0))
    assert "ultralytics/cfg/models/11/yolo11-MobileNetV3_small_n.yaml" in changed
    assert "ultralytics/cfg/models/rt-detr/rtdetr-l-MobileNetV3_large_m.yaml" in changed
    assert "- [-1, 1, MobileNetV3_small_n, []]" in changed["ultralytics/cfg/models/11/yolo11-MobileNetV3_small_n.yaml"]
    assert "ultralytics/cfg/models/11/yolo11-cls-MobileNetV3_large_s.yaml" in changed
    assert "ultralytics/cfg/models/v3/yolov3-MobileNetV3_small_s.yaml" in changed
    assert len(changed) == 6 * 12  # v3, v8 x 5 tasks, 11 x 5 tasks, RT-DETR; no YOLO26 before 8.4.0


def test_families_follow_the_release(tmp_path):
    stems = lambda changed: sorted({Path(p).name.split("-MobileNetV3")[0] for p in changed})  # noqa: E731
    _, old = run_edit(tmp_path / "a", ModelYamls(), {}, release=(8, 2, 103))
    assert stems(old) == ["rtdetr-l", "yolov3", "yolov8", "yolov8-cls", "yolov8-obb", "yolov8-pose", "yolov8-seg"]
    _, new = run_edit(tmp_path / "b", ModelYamls(), {}, release=(8, 4, 0))
    assert "yolo26" in stems(new) and "yolo11-pose" in stems(new)


def test_task_heads(tmp_path):
    _, changed = run_edit(tmp_path, ModelYamls(), {}, release=(8, 3, 0))
    pose = changed["ultralytics/cfg/models/v8/yolov8-pose-MobileNetV3_small_n.yaml"]
    assert "\nkpt_shape: [17, 3]" in pose and "1, Pose, [nc, kpt_shape]] # Pose(P3, P4, P5)" in pose
    assert "1, Segment, [nc, 32, 256]]" in changed["ultralytics/cfg/models/11/yolo11-seg-MobileNetV3_small_n.yaml"]
    assert "1, OBB, [nc, 1]]" in changed["ultralytics/cfg/models/11/yolo11-obb-MobileNetV3_small_n.yaml"]
    cls = changed["ultralytics/cfg/models/11/yolo11-cls-MobileNetV3_small_n.yaml"]
    assert cls.rstrip().endswith("- [-1, 1, Classify, [nc]] # Classify") and "Detect" not in cls


def test_a_users_yaml_of_the_same_name_is_never_overwritten(tmp_path):
    path = "ultralytics/cfg/models/11/yolo11-MobileNetV3_small_n.yaml"
    plan, changed = run_edit(tmp_path, ModelYamls(), {path: "nc: 3\n"})
    assert plan.reports[0].status is Status.FAILED
    assert path in plan.reports[0].detail and "never overwrites" in plan.reports[0].detail
