"""`feature_visualization` draws tensors only (8.1.x), as every later release does.

A backbone's layer returns its list of maps, which its `BackboneMap` layers hand on one by one (see
parse-model-index); `predict(visualize=...)` draws each layer's output. From 8.2.0 on, `feature_visualization`
draws only a tensor (`if isinstance(x, torch.Tensor):`), so the list is skipped and each map is drawn under its own
index. 8.1.x reads `x.shape` of whatever it is given; this adds, after its loop over the head types,

    if not isinstance(x, torch.Tensor):  # a backbone's list of maps: its BackboneMap layers draw each
        return

A release whose function already tests for a tensor, or that has none here, is "not in this release".
"""

from __future__ import annotations

import re

import libcst as cst
from patcher.edits import match as m

from patcher.edits.base import AnchorMissing, Context, NotInRelease, SourceEdit, Workspace
from patcher.edits.shapes import body_of, find_all, index_of, parse, replace_within, top_level_function, with_body
from patcher.i18n import _

PLOTTING = "ultralytics/utils/plotting.py"
TENSOR_TEST = m.Call(
    func=m.Name("isinstance"),
    args=[m.Arg(m.Name("x")), m.Arg(m.Attribute(value=m.Name("torch"), attr=m.Name("Tensor")))],
)
OURS = m.If(test=m.UnaryOperation(operator=m.Not(), expression=TENSOR_TEST))
GUARD = "if not isinstance(x, torch.Tensor):  # a backbone's list of maps: its BackboneMap layers draw each\n    return\n"
HEADS_LOOP = m.For(target=m.Name("m"))
# A top-level `def feature_visualization(` starts a line: a file without one needs no parse (plotting.py is ~1,500
# lines, and 8.4.x has no such function).
DEFINED = re.compile(r"^(?:async[ \t]+)?def[ \t]+feature_visualization\b", re.MULTILINE)


class TensorsOnly(SourceEdit):
    name = "visualize"
    target = PLOTTING
    description = "feature_visualization: draw tensors only, skip a backbone's list of maps (8.1.x)"

    def apply(self, files: Workspace, ctx: Context) -> None:
        text = files.read(self.target)
        if text is not None and not DEFINED.search(text):
            raise NotInRelease(_("no feature_visualization in {target}").format(target=self.target))
        super().apply(files, ctx)

    def transform(self, module: cst.Module, ctx: Context) -> cst.Module:
        func = top_level_function(module, "feature_visualization")
        if func is None:  # 8.4.x draws feature maps elsewhere, and tests for tensors there
            raise NotInRelease(_("no feature_visualization in {target}").format(target=self.target))
        statements = list(body_of(func))
        if index_of(statements, OURS) is not None:
            return module
        if find_all(func, TENSOR_TEST):
            raise NotInRelease(_("feature_visualization draws tensors only"))
        loop = index_of(statements, HEADS_LOOP)
        if loop is None:
            raise AnchorMissing(self.target, "feature_visualization", '`for m in ["Detect", ...]:` over the head types')
        statements.insert(loop + 1, parse(GUARD))
        return replace_within(module, func, func, with_body(func, statements))
