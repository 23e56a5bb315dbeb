"""The edits, in the order they are made. `ultrapatch list` prints this table."""

from __future__ import annotations

from patcher.edits.addmodules import AddModulesPackage
from patcher.edits.base import Edit
from patcher.edits.flops import FullSizeFlops
from patcher.edits.forward_loops import ListOutputs
from patcher.edits.fuse import ReparameteriseOnFuse
from patcher.edits.model_yamls import ModelYamls
from patcher.edits.parse_model_branch import BackboneBranch
from patcher.edits.parse_model_index import IndexShift
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
    IndexShift(),
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
)

# The edits whose result depends on which backbones are chosen; the others are shared by every backbone.
PER_BACKBONE = frozenset({"addmodules", "tasks-import", "parse-model-branch", "model-yamls"})
