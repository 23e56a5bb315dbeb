"""addmodules and model-yamls: create what is missing, merge into what the user has, never overwrite their files."""

from __future__ import annotations

from pathlib import Path

from edit_helpers import run_edit
from patcher.backbones import BACKBONES
from patcher.edits.addmodules import INIT, AddModulesPackage
from patcher.edits.base import Status
from patcher.edits.model_yamls import ModelYamls

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
V3 = BACKBONES["mobilenetv3"]


def test_creates_the_package(tmp_path):
    plan, changed = run_edit(tmp_path, AddModulesPackage(), {})
    assert plan.reports[0].status is Status.APPLIED
    assert changed[V3.module_path] == V3.source
    assert changed[INIT].endswith("from .MobileNetV3 import *\n")


def test_keeps_the_users_modules_and_imports(tmp_path):
    users = "from .MyBlock import *\nfrom .Other import Thing\n"
    plan, changed = run_edit(tmp_path, AddModulesPackage(), {INIT: users, "ultralytics/nn/AddModules/MyBlock.py": "X = 1\n"})
    assert changed[INIT] == users + "from .MobileNetV3 import *\n"
    assert "ultralytics/nn/AddModules/MyBlock.py" not in changed


def test_init_without_final_newline(tmp_path):
    plan, changed = run_edit(tmp_path, AddModulesPackage(), {INIT: "from .MyBlock import *"})
    assert changed[INIT] == "from .MyBlock import *\nfrom .MobileNetV3 import *\n"


def test_already_there(tmp_path):
    plan, changed = run_edit(tmp_path, AddModulesPackage(), {V3.module_path: V3.source, INIT: "from .MobileNetV3 import *\n"})
    assert plan.reports[0].status is Status.ALREADY and not changed


def test_a_different_file_of_the_users_is_never_overwritten(tmp_path):
    plan, changed = run_edit(tmp_path, AddModulesPackage(), {V3.module_path: "# my own MobileNetV3\n"})
    assert plan.reports[0].status is Status.FAILED
    assert "differs from ultrapatch's MobileNetV3.py" in plan.reports[0].detail
    assert "move it aside" in plan.reports[0].detail


def test_the_tutorials_own_file_is_replaced(tmp_path):
    seed = (SEEDS / "seed000_MobileNetV3.py").read_text(encoding="utf-8")
    reformatted = (  # comments, blank lines and line wrapping differ; the code is the same
        seed.replace("# 使用列表存储所有层", "# my note")
        .replace("\n\n\n", "\n\n")
        .replace("nn.Linear(\n            in_channels, in_channels // 4\n        )", "nn.Linear(in_channels, in_channels // 4)")
    )
    assert reformatted.count("\n") < seed.count("\n") - 10
    plan, changed = run_edit(tmp_path, AddModulesPackage(), {V3.module_path: reformatted})
    assert plan.reports[0].status is Status.APPLIED
    assert changed[V3.module_path] == V3.source


def test_yamls_land_in_each_familys_folder(tmp_path):
    plan, changed = run_edit(tmp_path, ModelYamls(), {}, release=(8, 3, 0))
    assert "ultralytics/cfg/models/11/yolo11-MobileNetV3_small_n.yaml" in changed
    assert "ultralytics/cfg/models/rt-detr/rtdetr-l-MobileNetV3_large_m.yaml" in changed
    assert "- [-1, 1, MobileNetV3_small_n, []]" in changed["ultralytics/cfg/models/11/yolo11-MobileNetV3_small_n.yaml"]
    assert len(changed) == 12


def test_no_yolo11_yamls_before_8_3(tmp_path):
    plan, changed = run_edit(tmp_path, ModelYamls(), {}, release=(8, 2, 103))
    assert sorted(changed) == sorted(f"ultralytics/cfg/models/rt-detr/rtdetr-l-{v}.yaml" for v in V3.variants)


def test_a_users_yaml_of_the_same_name_is_never_overwritten(tmp_path):
    path = "ultralytics/cfg/models/11/yolo11-MobileNetV3_small_n.yaml"
    plan, changed = run_edit(tmp_path, ModelYamls(), {path: "nc: 3\n"})
    assert plan.reports[0].status is Status.FAILED
    assert path in plan.reports[0].detail and "never overwrites" in plan.reports[0].detail
