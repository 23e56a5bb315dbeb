"""`BaseModel.fuse()` reparameterises backbone blocks that know how (MobileOne's `switch_to_deploy`).

Ultralytics calls `model.fuse()` before validation, prediction and export, and folds its own Conv+BN and RepConv
there; backbone blocks from AddModules are folded in the same call, just before the release's own loop, which is
left as it is (8.4.0 guards it with `if True:`, the others with `if not self.is_fused():`):

    if not self.is_fused():
        for m in self.model.modules():  # reparameterise backbone blocks that carry their own (MobileOne)
            if hasattr(m, "switch_to_deploy") and not getattr(m, "deploy", False):
                m.switch_to_deploy()
        for m in self.model.modules():
            ...
"""

from __future__ import annotations

import libcst as cst
from patcher.edits import match as m

from patcher.edits.base import AnchorMissing, Context, SourceEdit
from patcher.edits.shapes import TASKS, find_all, index_of, method, parse, replace_within, top_level_class

# the release's own loop: `for m in self.model.modules():` (under `if not self.is_fused():`, or 8.4.0's `if True:`)
MODULES_LOOP = m.For(
    target=m.Name("m"),
    iter=m.Call(func=m.Attribute(value=m.Attribute(value=m.Name("self"), attr=m.Name("model")), attr=m.Name("modules"))),
)
SWITCH_CALL = m.Call(func=m.Attribute(attr=m.Name("switch_to_deploy")))

REPARAMETERISE = (
    "for m in self.model.modules():  # reparameterise backbone blocks that carry their own (MobileOne)\n"
    '    if hasattr(m, "switch_to_deploy") and not getattr(m, "deploy", False):\n'
    "        m.switch_to_deploy()\n"
)


class ReparameteriseOnFuse(SourceEdit):
    name = "fuse"
    target = TASKS
    description = "BaseModel.fuse: also reparameterise backbone blocks with switch_to_deploy (MobileOne)"

    def transform(self, module: cst.Module, ctx: Context) -> cst.Module:
        cls = top_level_class(module, "BaseModel")
        if cls is None:
            raise AnchorMissing(self.target, "module level", "class BaseModel")
        func = method(cls, "fuse")
        if func is None:
            raise AnchorMissing(self.target, "BaseModel", "def fuse(...)")
        if find_all(func, SWITCH_CALL):
            return module
        for block in find_all(func, m.IndentedBlock()):
            at = index_of(block.body, MODULES_LOOP)
            if at is not None:
                statements = [*block.body[:at], parse(REPARAMETERISE), *block.body[at:]]
                return replace_within(module, cls, block, block.with_changes(body=statements))
        raise AnchorMissing(self.target, "BaseModel.fuse", "the loop `for m in self.model.modules():`")
