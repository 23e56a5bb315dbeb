"""stride-probe, rect-*, flops and tasks-import: two tables each, "fixes" and "noop", plus the failures."""

from __future__ import annotations

import pytest

from edit_helpers import assert_edit, assert_fails, assert_noop, run_edit
from patcher.edits import EDITS
from patcher.edits.base import Status
from patcher.edits.flops import TORCH_UTILS, FullSizeFlops
from patcher.edits.rect import RectFalse
from patcher.edits.shapes import TASKS
from patcher.edits.stride_probe import StrideProbe
from patcher.textio import UnreadableFile
from patcher.edits.tasks_import import TasksImport
from patcher.edits.visualize import PLOTTING, TensorsOnly

RECT = RectFalse("rect-detect", "ultralytics/models/yolo/detect/train.py", "DetectionTrainer")
RECT_WORLD = RectFalse("rect-world", "ultralytics/models/yolo/world/train.py", "WorldTrainer", optional=True)

PROBE = '''\
class DetectionModel(BaseModel):
    def __init__(self, cfg="yolov8n.yaml", ch=3, nc=None, verbose=True):
        m = self.model[-1]  # Detect()
        if isinstance(m, Detect):
            s = 256  # 2x min stride
            m.inplace = self.inplace
            m.stride = torch.tensor([s / x.shape[-2] for x in _forward(torch.zeros(1, ch, s, s))])  # forward
            self.stride = m.stride
'''

DATASET = '''\
class DetectionTrainer(BaseTrainer):
    def build_dataset(self, img_path, mode="train", batch=None):
        gs = max(int(de_parallel(self.model).stride.max() if self.model else 0), 32)
        return build_yolo_dataset(self.args, img_path, batch, self.data, mode=mode, rect=mode == "val", stride=gs)
'''

# 8.1 to 8.4.100: a stride-sized estimate in a nested try, the full size in its except
FLOPS_NESTED = '''\
def get_flops(model, imgsz=640):
    try:
        model = de_parallel(model)
        p = next(model.parameters())
        try:
            # Use stride size for input tensor
            stride = max(int(model.stride.max()), 32) if hasattr(model, "stride") else 32  # max stride
            im = torch.empty((1, p.shape[1], stride, stride), device=p.device)  # input image in BCHW format
            flops = thop.profile(deepcopy(model), inputs=[im], verbose=False)[0] / 1e9 * 2  # stride GFLOPs
            return flops * imgsz[0] / stride * imgsz[1] / stride  # imgsz GFLOPs
        except Exception:
            # Use actual image size for input tensor (i.e. required for RTDETR models)
            im = torch.empty((1, p.shape[1], *imgsz), device=p.device)  # input image in BCHW format
            return thop.profile(deepcopy(model), inputs=[im], verbose=False)[0] / 1e9 * 2  # imgsz GFLOPs
    except Exception:
        return 0.0
'''
FLOPS_NESTED_AFTER = '''\
def get_flops(model, imgsz=640):
    try:
        model = de_parallel(model)
        p = next(model.parameters())
        # Use actual image size for input tensor (i.e. required for RTDETR models)
        im = torch.empty((1, p.shape[1], *imgsz), device=p.device)  # input image in BCHW format
        return thop.profile(deepcopy(model), inputs=[im], verbose=False)[0] / 1e9 * 2  # imgsz GFLOPs
    except Exception:
        return 0.0
'''
# 8.4.190: one try whose body computes `stride` too; thop extrapolates from proxies when given `stride=`
FLOPS_PROXY = '''\
def get_flops(model, imgsz=640):
    try:
        stride = max(int(model.stride.max()), 32) if hasattr(model, "stride") else 32
        im = torch.empty((1, p.shape[1], *imgsz), device=p.device, dtype=p.dtype)  # input image in BCHW format
        return thop.profile(model, inputs=[im], stride=stride, min_cells=min_cells, verbose=False)[0] / 1e9 * 2
    except Exception:
        return 0.0
'''

OLD_CONDITIONAL = 's = 640 if any(hasattr(layer, "backbone") for layer in self.model) else 256'  # ultrapatch 0.1
PROBE_AFTER = PROBE.replace("s = 256", 's = 640 if any(hasattr(layer, "width_list") for layer in self.model) else 256').replace(
    "            m.stride = torch.tensor([s / x.shape[-2] for x in _forward(torch.zeros(1, ch, s, s))])  # forward\n",
    '            probed = [layer.eval() for layer in self.model if hasattr(layer, "width_list")]  # its statistics stay as loaded\n'
    "            m.stride = torch.tensor([s / x.shape[-2] for x in _forward(torch.zeros(1, ch, s, s))])  # forward\n"
    "            for layer in probed:\n"
    "                layer.train()\n",
)
FIXES = [
    pytest.param(StrideProbe(), TASKS, PROBE, PROBE_AFTER, id="stride-probe"),
    # the tutorials' `s = 640` for every model: stock models built slower; repaired
    pytest.param(StrideProbe(), TASKS, PROBE.replace("s = 256", "s = 640"), PROBE_AFTER, id="stride-tutorial-640"),
    # ultrapatch 0.1's probe: the condition, without the backbone's eval mode around it
    pytest.param(
        StrideProbe(), TASKS, PROBE.replace("s = 256", OLD_CONDITIONAL), PROBE_AFTER, id="stride-guard-added",
    ),
    # ultrapatch 0.1's later probe: the `backbone` attribute it tests is no longer set on the layers built
    pytest.param(
        StrideProbe(), TASKS,
        PROBE_AFTER.replace('s = 640 if any(hasattr(layer, "width_list") for layer in self.model) else 256', OLD_CONDITIONAL)
        .replace('if hasattr(layer, "width_list")]', 'if hasattr(layer, "backbone")]'),
        PROBE_AFTER, id="stride-attribute-test-repaired",
    ),
    pytest.param(RECT, RECT.target, DATASET, DATASET.replace('rect=mode == "val"', "rect=False"), id="rect-detect"),
    pytest.param(FullSizeFlops(), TORCH_UTILS, FLOPS_NESTED, FLOPS_NESTED_AFTER, id="flops-nested-try"),
    pytest.param(
        FullSizeFlops(),
        TORCH_UTILS,
        FLOPS_PROXY,
        FLOPS_PROXY.replace("stride=stride, min_cells=min_cells, verbose=False", "verbose=False"),
        id="flops-8.4.190-proxy",
    ),
]


@pytest.mark.parametrize(("edit", "target", "before", "after"), FIXES)
def test_fixes(tmp_path, edit, target, before, after):
    assert_edit(tmp_path, edit, target, before, after)


NOOPS = [
    pytest.param(StrideProbe(), TASKS, PROBE_AFTER, id="stride-already-conditional"),
    pytest.param(RECT, RECT.target, DATASET.replace('rect=mode == "val"', "rect=False"), id="rect-already-false"),
    pytest.param(FullSizeFlops(), TORCH_UTILS, FLOPS_NESTED_AFTER, id="flops-already-full-size"),
]


@pytest.mark.parametrize(("edit", "target", "source"), NOOPS)
def test_noop(tmp_path, edit, target, source):
    assert_noop(tmp_path, edit, target, source)


def test_world_trainer_without_the_expression_is_not_in_this_release(tmp_path):
    plan, _ = run_edit(tmp_path, RECT_WORLD, {RECT_WORLD.target: "class WorldTrainer:\n    pass\n"})
    assert plan.reports[0].status is Status.NOT_IN_RELEASE


def test_missing_optional_file_is_not_in_this_release(tmp_path):
    plan, _ = run_edit(tmp_path, RECT_WORLD, {})
    assert plan.reports[0].status is Status.NOT_IN_RELEASE


def test_detection_trainer_without_the_expression_fails(tmp_path):
    assert_fails(tmp_path, RECT, RECT.target, "class DetectionTrainer:\n    pass\n", "DetectionTrainer.build_dataset", "rect=mode")


def test_missing_probe_fails(tmp_path):
    assert_fails(tmp_path, StrideProbe(), TASKS, "class DetectionModel:\n    pass\n", "DetectionModel", "s = 256")


def test_missing_get_flops_fails(tmp_path):
    assert_fails(tmp_path, FullSizeFlops(), TORCH_UTILS, "x = 1\n", TORCH_UTILS, "def get_flops")


def test_unparsable_file_is_one_sentence_with_its_line(tmp_path):
    with pytest.raises(UnreadableFile) as raised:
        run_edit(tmp_path, StrideProbe(), {TASKS: "x = 1\n\ndef broken(:\n"})
    message = raised.value.format_message()
    assert message.startswith(f"{TASKS} is not valid Python (line 3: ")
    assert f"`git checkout -- {TASKS}`" in message


IMPORTS = '''\
from __future__ import annotations

import torch
from ultralytics.nn.modules import (
    C2f,
    Conv,
)
from ultralytics.utils import LOGGER
'''
V3 = ["MobileNetV3_large_n", "MobileNetV3_large_s", "MobileNetV3_large_m", "MobileNetV3_small_n", "MobileNetV3_small_s", "MobileNetV3_small_m"]
OUR_IMPORT = (
    "from ultralytics.nn.AddModules import (  # backbones installed by ultrapatch\n"
    + "".join(f"    {n},\n" for n in ["BackboneMap", *V3]) + ")\n"
)


def test_import_goes_after_the_modules_import_and_future_stays_first(tmp_path):
    after = IMPORTS.replace(")\nfrom ultralytics.utils", ")\n" + OUR_IMPORT + "from ultralytics.utils")
    assert_edit(tmp_path, TasksImport(), TASKS, IMPORTS, after)
    assert after.startswith("from __future__ import annotations\n")


@pytest.mark.parametrize("line", ["from ultralytics.nn.AddModules import *", "from .AddModules import *"])
def test_a_tutorial_star_import_provides_every_name(tmp_path, line):
    assert_noop(tmp_path, TasksImport(), TASKS, IMPORTS + line + "\n")


def test_a_star_import_of_the_backbones_file_provides_its_classes_only(tmp_path):
    star = IMPORTS + "from ultralytics.nn.AddModules.MobileNetV3 import *\n"
    plan, changed = run_edit(tmp_path, TasksImport(), {TASKS: star})
    ours = "from ultralytics.nn.AddModules import (  # backbones installed by ultrapatch\n    BackboneMap,\n)\n"
    assert changed[TASKS] == IMPORTS.replace(")\nfrom ultralytics.utils", ")\n" + ours + "from ultralytics.utils") + star[len(IMPORTS):]


@pytest.mark.parametrize(
    "line",
    [
        "from ultralytics.nn.AddModules.EnergyAttn import EnergyAttn",  # a submodule import binds the class
        "from ultralytics.nn.AddModules.EnergyAttn import *",  # a star import of the user's own file
        "from ultralytics.nn.AddModules import EnergyAttn",  # a re-export from the package's __init__.py
        "from ultralytics.nn.AddModules import MyBlock as Block",
    ],
)
def test_a_users_own_import_is_never_edited(tmp_path, line):
    """Rewritten as an import from the package, `from ...AddModules.EnergyAttn import EnergyAttn` would bind the
    submodule EnergyAttn instead of the class: ultrapatch adds its own line and leaves the user's as written."""
    users = IMPORTS + line + "\n"
    plan, changed = run_edit(tmp_path, TasksImport(), {TASKS: users})
    assert changed[TASKS] == IMPORTS.replace(")\nfrom ultralytics.utils", ")\n" + OUR_IMPORT + "from ultralytics.utils") + line + "\n"


def test_missing_names_are_added_to_ultrapatchs_own_import(tmp_path):
    partial = IMPORTS + "from ultralytics.nn.AddModules import (  # backbones installed by ultrapatch\n    BackboneMap,\n    MobileNetV3_small_n,\n)\n"
    plan, changed = run_edit(tmp_path, TasksImport(), {TASKS: partial})
    text = changed[TASKS]
    assert text.count("from ultralytics.nn.AddModules import") == 1
    assert "    BackboneMap,\n    MobileNetV3_small_n,\n    MobileNetV3_large_n,\n" in text


def test_import_anchor_missing(tmp_path):
    assert_fails(tmp_path, TasksImport(), TASKS, "import torch\n", "from ultralytics.nn.modules import")


def test_table_order_is_the_tutorial_order():
    assert [e.name for e in EDITS][:4] == ["addmodules", "tasks-import", "parse-model-branch", "parse-model-index"]
    assert [e.name for e in EDITS][-2:] == ["model-yamls", "own-yamls"]  # the tutorial's YAMLs, then the user's
    assert len({e.name for e in EDITS}) == len(EDITS)


FUSE = """\
class BaseModel(nn.Module):
    def fuse(self, verbose=True):
        if not self.is_fused():
            for m in self.model.modules():
                if isinstance(m, RepConv):
                    m.fuse_convs()
            self.info(verbose=verbose)
        return self
"""
FUSE_AFTER = FUSE.replace(
    "        if not self.is_fused():\n",
    """        if not self.is_fused():
            for m in self.model.modules():  # reparameterise backbone blocks that carry their own (MobileOne)
                if hasattr(m, "switch_to_deploy") and not getattr(m, "deploy", False):
                    m.switch_to_deploy()
""",
)


def test_fuse_reparameterises_first_and_keeps_the_release_loop(tmp_path):
    from patcher.edits.fuse import ReparameteriseOnFuse

    assert_edit(tmp_path, ReparameteriseOnFuse(), TASKS, FUSE, FUSE_AFTER)


def test_fuse_without_the_guard_fails(tmp_path):
    from patcher.edits.fuse import ReparameteriseOnFuse

    source = "class BaseModel(nn.Module):\n    def fuse(self):\n        return self\n"
    assert_fails(tmp_path, ReparameteriseOnFuse(), TASKS, source, "BaseModel.fuse", "for m in self.model.modules()")


def test_fuse_of_8_4_0_guarded_by_if_true(tmp_path):
    from patcher.edits.fuse import ReparameteriseOnFuse

    guarded = FUSE.replace("if not self.is_fused():", "if True:")
    assert_edit(tmp_path, ReparameteriseOnFuse(), TASKS, guarded, FUSE_AFTER.replace("if not self.is_fused():", "if True:"))


VISUALIZE_8_1 = '''\
def feature_visualization(x, module_type, stage, n=32, save_dir=Path("runs/detect/exp")):
    """Visualize feature maps."""
    for m in ["Detect", "Pose", "Segment"]:
        if m in module_type:
            return
    _, channels, height, width = x.shape  # batch, channels, height, width
'''


def test_visualize_skips_a_list_of_maps_on_8_1(tmp_path):
    after = VISUALIZE_8_1.replace(
        "            return\n",
        "            return\n"
        "    if not isinstance(x, torch.Tensor):  # a backbone's list of maps: its BackboneMap layers draw each\n"
        "        return\n",
    )
    assert_edit(tmp_path, TensorsOnly(), PLOTTING, VISUALIZE_8_1, after)


def test_visualize_is_not_in_a_release_that_tests_for_tensors(tmp_path):
    later = VISUALIZE_8_1.replace("    _, channels", "    if isinstance(x, torch.Tensor):\n        _, channels")
    plan, changed = run_edit(tmp_path, TensorsOnly(), {PLOTTING: later})
    assert plan.reports[0].status is Status.NOT_IN_RELEASE and not changed
