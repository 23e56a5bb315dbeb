"""The stride probe `s = 256` becomes 640 in DetectionModel for a model with a backbone, as the tutorials do.

DetectionModel builds a zero image of s x s to learn the head's strides; segment, pose, OBB, World and YOLOE models
inherit it, and RT-DETR sets its stride without probing. The tutorials write `s = 640` for every model, which makes
every stock model slower to build (yolo11n: 0.17 s -> 0.53 s); here the probe is 640 only where a layer is a
backbone, and a stock model probes exactly as the release does:

    s = 640 if any(hasattr(layer, "width_list") for layer in self.model) else 256  # 2x min stride

(a backbone is the layer whose `width_list` parse_model's branch read). A tutorial's plain `s = 640`, and ultrapatch
0.1's test of the `backbone` attribute, which the layers built now no longer carry, are repaired to that. Up to
8.3.100 the probe runs in training mode, so its zero image moves every BatchNorm's running statistics; a pretrained
backbone's must stay as loaded, so its layers are put in eval mode around the probe (a stock model has none: it
probes as the release does):

    probed = [layer.eval() for layer in self.model if hasattr(layer, "width_list")]
    m.stride = torch.tensor([...])  # forward
    for layer in probed:
        layer.train()

The probe in 8.4.100+'s SemanticSegmentationModel is for models ultrapatch installs no YAML for, and is left alone.
"""

from __future__ import annotations

import libcst as cst
from patcher.edits import match as m

from patcher.edits.base import AnchorMissing, Context, SourceEdit
from patcher.edits.shapes import TASKS, assigns, find_all, index_of, parse, replace, replace_within, statement, top_level_class

PROBE = assigns("s", m.Integer() | m.IfExp(body=m.Integer("640"), orelse=m.Integer("256")))
CONDITIONAL = 's = 640 if any(hasattr(layer, "width_list") for layer in self.model) else 256'
STRIDES = statement(m.Assign(targets=[m.AssignTarget(target=m.Attribute(value=m.Name("m"), attr=m.Name("stride")))]))
BEFORE = 'probed = [layer.eval() for layer in self.model if hasattr(layer, "width_list")]  # its statistics stay as loaded\n'
AFTER = "for layer in probed:\n    layer.train()\n"
GUARDED = assigns("probed")


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
            if isinstance(assign.value, cst.Integer) and assign.value.value not in ("256", "640"):
                continue  # a probe size of the user's
            if not assign.deep_equals(conditional):
                new = replace(new, line, line.with_changes(body=[conditional]))
        new = self._guard(new)
        return module if new is cls else replace_within(module, cls, cls, new)

    def kept_in(self, module: cst.Module, ctx: Context) -> list[str]:
        cls = top_level_class(module, "DetectionModel")
        sizes = [] if cls is None else [line.body[0].value for line in find_all(cls, PROBE)]  # type: ignore[attr-defined]
        return [
            f"kept your probe size s = {size.value}, where ultrapatch probes a model with a backbone at 640"
            for size in sizes
            if isinstance(size, cst.Integer) and size.value not in ("256", "640")
        ]

    def _guard(self, cls: cst.ClassDef) -> cst.ClassDef:
        """Eval mode for the backbone around `m.stride = ...`, in the block that holds the probe."""
        blocks = [n for n in find_all(cls, m.IndentedBlock()) if index_of(n.body, PROBE) is not None]
        if not blocks:
            raise AnchorMissing(self.target, "DetectionModel.__init__", "the block of the stride probe")
        block = blocks[0]
        statements = list(block.body)
        guarded = index_of(statements, GUARDED)
        if guarded is not None:
            line = parse(BEFORE)
            if statements[guarded].body[0].deep_equals(line.body[0]):  # type: ignore[attr-defined]
                return cls
            statements[guarded] = statements[guarded].with_changes(body=line.body)  # type: ignore[attr-defined]
            return replace(cls, block, block.with_changes(body=statements))  # type: ignore[return-value]
        at = index_of(statements, STRIDES)
        if at is None:
            raise AnchorMissing(self.target, "DetectionModel.__init__", "`m.stride = torch.tensor(...)  # forward`")
        statements[at : at + 1] = [parse(BEFORE), statements[at], parse(AFTER)]
        return replace(cls, block, block.with_changes(body=statements))  # type: ignore[return-value]
