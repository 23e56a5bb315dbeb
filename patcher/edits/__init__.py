"""The edits, in the order they are made. `ultrapatch list` prints this table."""

from __future__ import annotations

from patcher.edits.addmodules import AddModulesPackage
from patcher.edits.base import Edit
from patcher.edits.flops import FullSizeFlops
from patcher.edits.forward_loops import ListOutputs
from patcher.edits.fuse import ReparameteriseOnFuse
from patcher.edits.model_yamls import ModelYamls
from patcher.edits.module_roles import ModuleRoles
from patcher.edits.own_yamls import OwnYamls
from patcher.edits.parse_model_branch import BackboneBranch
from patcher.edits.parse_model_index import BackboneMapLayers
from patcher.edits.rect import RectFalse
from patcher.edits.safe_load import SafeLoadAllowList
from patcher.edits.stride_probe import StrideProbe
from patcher.edits.tasks_import import TasksImport
from patcher.edits.visualize import TensorsOnly
from patcher.edits.yaml_args import StringArguments

YOLO = "ultralytics/models/yolo"

EDITS: tuple[Edit, ...] = (
    AddModulesPackage(),
    TasksImport(),
    BackboneBranch(),
    BackboneMapLayers(),
    ModuleRoles(),
    StringArguments(),
    ListOutputs("predict-once", "BaseModel", "_predict_once"),
    ListOutputs("rtdetr-predict", "RTDETRDetectionModel", "predict"),
    ListOutputs("world-predict", "WorldModel", "predict", optional=True),
    ListOutputs("yoloe-predict", "YOLOEModel", "predict", optional=True),
    StrideProbe(),
    RectFalse("rect-detect", f"{YOLO}/detect/train.py", "DetectionTrainer"),
    RectFalse("rect-world", f"{YOLO}/world/train.py", "WorldTrainer", optional=True),
    RectFalse("rect-world-scratch", f"{YOLO}/world/train_world.py", "WorldTrainerFromScratch", optional=True),
    RectFalse("rect-yoloe", f"{YOLO}/yoloe/train.py", "YOLOETrainer", optional=True),
    FullSizeFlops(),
    TensorsOnly(),
    ReparameteriseOnFuse(),
    SafeLoadAllowList(),
    ModelYamls(),
    OwnYamls(),
)

# The edits whose result depends on which backbones are chosen; the others are shared by every backbone.
PER_BACKBONE = frozenset({"addmodules", "tasks-import", "parse-model-branch", "model-yamls"})


def list_edits() -> str:
    """What `ultrapatch list` prints: the edits in order, the backbones, and the releases."""
    from patcher import NEWEST_TESTED_RELEASE
    from patcher.backbones import BACKBONES
    from patcher.tree import COMPROMISED_RELEASES, format_version

    width = max(len(e.name) for e in EDITS)
    target_width = max(len(e.target) for e in EDITS)
    lines = ["edits, in order:"]
    lines += [f"{i:>3}. {edit.name:<{width}}  {edit.target:<{target_width}}  {edit.description}" for i, edit in enumerate(EDITS, 1)]
    lines.append("\nbackbones (--backbone NAME, or all):")
    for backbone in BACKBONES.values():
        lines += [f"  {backbone.name}: {backbone.summary}", f"    {', '.join(backbone.variants)}"]
    lines.append(
        "  timm:NAME: any timm model with maps at strides 8 to 32 (pip install timm), e.g. timm:resnet18,\n"
        "    timm:efficientnet_b0, timm:mobileone_s0; YAMLs yolo11-NAME.yaml... whose row is\n"
        '    [-1, 1, TimmBackbone, ["NAME", True]]: timm\'s ImageNet weights (True), random (False), or a local file (a path)'
    )
    lines.append(f"\nreleases: 8.1 to {NEWEST_TESTED_RELEASE}, except those compromised upstream (refused): "
                 f"{', '.join(map(format_version, COMPROMISED_RELEASES))}")  # fmt: skip
    return "\n".join(lines)
