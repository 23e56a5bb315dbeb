"""`--backbone timm:NAME` on the tool's side: names, the YAMLs it installs and their rows, one TimmBackbone class
for any number of timm models, and the yaml-args edit that lets a row name a weights file by its path."""

from __future__ import annotations

import ast

import pytest

from edit_helpers import assert_edit, assert_fails, assert_noop, run_edit
from patcher.backbones import STOCK_STEMS, TimmModel, backbone_named, select_backbones
from patcher.edits.base import Context
from patcher.edits.model_yamls import ModelYamls
from patcher.edits.shapes import TASKS
from patcher.edits.tasks_import import TasksImport
from patcher.edits.yaml_args import StringArguments
from patcher.errors import UltrapatchError


def test_timm_names_are_selected_beside_the_others_in_a_stable_order():
    chosen = select_backbones(("timm:resnet18", "mobilenetv3", "timm:efficientnet_b0", "TIMM:resnet18"))
    assert [b.name for b in chosen] == ["mobilenetv3", "timm:efficientnet_b0", "timm:resnet18"]
    assert isinstance(chosen[1], TimmModel) and chosen[1].variants == ("efficientnet_b0",)
    assert chosen[1].classes == chosen[2].classes == ("TimmBackbone",)
    assert backbone_named("timm:resnet18.a1_in1k").variants == ("resnet18.a1_in1k",)


@pytest.mark.parametrize("name", ["timm:", "timm:Bad/Name", "timm:hf-hub:x/y", "timm:resnet18 --x"])
def test_a_name_timm_cannot_have_is_refused_before_anything(name):
    with pytest.raises(UltrapatchError, match="is not a timm model name"):
        select_backbones((name,))


def test_unknown_plain_names_mention_the_timm_option():
    with pytest.raises(UltrapatchError, match="timm:NAME"):
        select_backbones(("resnet18",))


def test_yamls_are_named_after_the_model_and_their_row_builds_timmbackbone():
    (resnet,) = select_backbones(("timm:resnet18",))
    yamls = {path: (template, variant) for template, variant, path in resnet.yamls((8, 4, 190))}
    assert "ultralytics/cfg/models/11/yolo11-resnet18.yaml" in yamls
    assert "ultralytics/cfg/models/v8/yolov8-seg-resnet18.yaml" in yamls
    assert "ultralytics/cfg/models/rt-detr/rtdetr-l-resnet18.yaml" in yamls
    # Ultralytics ships yolo11-cls-resnet18.yaml (torchvision's ResNet18): ours never takes its name
    assert "ultralytics/cfg/models/11/yolo11-cls-timm_resnet18.yaml" in yamls
    assert "ultralytics/cfg/models/11/yolo11-cls-resnet18.yaml" not in yamls
    for template, variant in yamls.values():
        text = resnet.render(template, variant)
        rows = [line for line in text.splitlines() if "TimmBackbone" in line]
        assert rows == ['  - [-1, 1, TimmBackbone, ["resnet18", True]] # 0-4 P1/2, P2/4, P3/8, P4/16, P5/32'], rows
        assert "BACKBONE" not in text
    assert len(yamls) == 13  # every family and task of 8.4.190


def test_the_stock_names_a_timm_yaml_avoids_are_real_names():
    assert STOCK_STEMS == {"yolov8-cls-resnet50", "yolov8-cls-resnet101", "yolo11-cls-resnet18"}


def test_timm_models_share_one_class_and_one_module_file(tmp_path):
    backbones = select_backbones(("timm:resnet18", "timm:efficientnet_b0", "mobilenetv2"))
    ctx = Context((8, 4, 190), backbones)
    assert ctx.classes == ("MobileNetV2", "TimmBackbone")
    assert [b.module_file for b in ctx.shipped] == ["BackboneMap.py", "MobileNetV2.py", "TimmBackbone.py"]
    source = "from ultralytics.nn.modules import (\n    Conv,\n)\n"
    _, changed = run_edit(tmp_path, TasksImport(), {TASKS: source}, backbones=("timm:resnet18", "timm:efficientnet_b0"))
    assert changed[TASKS].count("TimmBackbone,") == 1


def test_model_yamls_install_one_file_per_family_for_each_timm_model(tmp_path):
    plan, changed = run_edit(tmp_path, ModelYamls(), {}, release=(8, 3, 40), backbones=("timm:resnet18", "timm:efficientnet_b0"))
    assert len([p for p in changed if p.endswith("resnet18.yaml")]) == len([p for p in changed if p.endswith("-efficientnet_b0.yaml")])
    assert 'TimmBackbone, ["efficientnet_b0", True]' in changed["ultralytics/cfg/models/v8/yolov8-efficientnet_b0.yaml"]


PARSE = '''\
def parse_model(d, ch, verbose=True):
    for i, (f, n, m, args) in enumerate(d["backbone"] + d["head"]):  # from, number, module, args
        m = getattr(torch.nn, m[3:]) if "nn." in m else globals()[m]  # get module
        for j, a in enumerate(args):
            if isinstance(a, str):
                with contextlib.suppress(ValueError):
                    args[j] = locals()[a] if a in locals() else ast.literal_eval(a)
'''
PARSE_AFTER = PARSE.replace(
    "with contextlib.suppress(ValueError):",
    "with contextlib.suppress(ValueError, SyntaxError):  # a path is not a literal either: keep the string",
)


def test_yaml_args_keeps_a_path_a_string(tmp_path):
    assert_edit(tmp_path, StringArguments(), TASKS, PARSE, PARSE_AFTER)


def test_yaml_args_is_already_there_when_syntax_errors_are_kept(tmp_path):
    assert_noop(tmp_path, StringArguments(), TASKS, PARSE.replace("(ValueError)", "(SyntaxError, ValueError)"))


def test_yaml_args_without_the_literal_eval_fails(tmp_path):
    source = PARSE.replace("ast.literal_eval(a)", "a")
    assert_fails(tmp_path, StringArguments(), TASKS, source, TASKS, "parse_model", "contextlib.suppress(ValueError)")


@pytest.mark.parametrize("text", ["/data/resnet18.pth", "./w/x.safetensors", "C:\\\\w\\\\x.bin", "~/x.pth"])
def test_the_paths_it_is_for_raise_syntax_errors(text):
    """What the edit is for: these raise SyntaxError, not ValueError, in ast.literal_eval."""
    with pytest.raises(SyntaxError):
        ast.literal_eval(text)
