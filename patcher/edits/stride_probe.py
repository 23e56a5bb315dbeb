"""Edit 6: the stride probe `s = 256` becomes 640 in DetectionModel for a model with a backbone, as the tutorials do.

DetectionModel builds a zero image of s x s to learn the head's strides; segment, pose, OBB, World and YOLOE models
inherit it, and RT-DETR sets its stride without probing. The tutorials write `s = 640` for every model, which makes
every stock model slower to build (yolo11n: 0.17 s -> 0.53 s); here the probe is 640 only where a layer is a
backbone, and a stock model probes exactly as the release does:

    s = 640 if any(hasattr(layer, "backbone") for layer in self.model) else 256  # 2x min stride

A tutorial's (or an older ultrapatch's) plain `s = 640` is repaired to that. The probe in 8.4.100+'s
SemanticSegmentationModel is for models ultrapatch installs no YAML for, and is left alone.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from patcher.edits.base import AnchorMissing, Context, SourceEdit
from patcher.edits.shapes import TASKS, assigns, find_all, replace_within, top_level_class

PROBE = assigns("s", m.Integer() | m.IfExp(body=m.Integer("640"), orelse=m.Integer("256")))
CONDITIONAL = 's = 640 if any(hasattr(layer, "backbone") for layer in self.model) else 256'


class StrideProbe(SourceEdit):
    name = "stride-probe"
    target = TASKS
    description = "DetectionModel: probe strides with a 640x640 image for a model with a backbone (256 otherwise)"

    def transform(self, module: cst.Module, ctx: Context) -> cst.Module:
        cls = top_level_class(module, "DetectionModel")
        if cls is None:
            raise AnchorMissing(self.target, "module level", "class DetectionModel")
        probes = find_all(cls, PROBE)
        if not probes:
            raise AnchorMissing(self.target, "DetectionModel.__init__", "the stride probe `s = 256  # 2x min stride`")
        conditional = cst.parse_statement(CONDITIONAL + "\n").body[0]  # type: ignore[attr-defined]
        new = cls
        for line in probes:
            assign = line.body[0]  # type: ignore[attr-defined]
            if isinstance(assign.value, cst.Integer) and assign.value.value in ("256", "640"):
                new = new.deep_replace(line, line.with_changes(body=[conditional]))
        return module if new is cls else replace_within(module, cls, cls, new)
