"""Edit 6: the stride probe `s = 256` becomes `s = 640` in DetectionModel, as the tutorials do.

DetectionModel builds a zero image of s x s to learn the head's strides; segment, pose, OBB, World and YOLOE models
inherit it, and RT-DETR sets its stride without probing. The probe in 8.4.100+'s SemanticSegmentationModel is for
models ultrapatch installs no YAML for, and is left alone.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from patcher.edits.base import AnchorMissing, Context, SourceEdit
from patcher.edits.shapes import TASKS, assigns, find_all, replace_within, top_level_class

PROBE = assigns("s", m.Integer())


class StrideProbe(SourceEdit):
    name = "stride-probe"
    target = TASKS
    description = "DetectionModel: probe strides with a 640x640 image (s = 640), not 256x256"

    def transform(self, module: cst.Module, ctx: Context) -> cst.Module:
        cls = top_level_class(module, "DetectionModel")
        if cls is None:
            raise AnchorMissing(self.target, "module level", "class DetectionModel")
        probes = find_all(cls, PROBE)
        if not probes:
            raise AnchorMissing(self.target, "DetectionModel.__init__", "the stride probe `s = 256  # 2x min stride`")
        new = cls
        for line in probes:
            assign = line.body[0]  # type: ignore[attr-defined]
            if assign.value.value == "256":
                new = new.deep_replace(line, line.with_changes(body=[assign.with_changes(value=cst.Integer("640"))]))
        return module if new is cls else replace_within(module, cls, cls, new)
