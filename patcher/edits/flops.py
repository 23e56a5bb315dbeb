"""`get_flops` profiles at the full image size, so models with these backbones do not report 0 GFLOPs.

Releases up to 8.4.100 first profile a stride-sized image inside a nested `try:`, and fall back to the full size in
its `except`; the nested `try` is replaced by its own fallback, keeping each release's lines (device, dtype). 8.4.190
passes `stride=` (and `min_cells=`) to thop, which then extrapolates from small proxy images; dropping them makes thop
profile the full image.
"""

from __future__ import annotations

import libcst as cst
from patcher.edits import match as m

from patcher.edits.base import AnchorMissing, Context, SourceEdit
from patcher.edits.shapes import assigns, find_all, replace, top_level_function

TORCH_UTILS = "ultralytics/utils/torch_utils.py"
THOP_PROFILE = m.Call(func=m.Attribute(value=m.Name("thop"), attr=m.Name("profile")))
PROXY_KEYWORDS = ("stride", "min_cells")
# `im = torch.empty((1, p.shape[1], stride, stride), ...)`, a stride-sized image
STRIDE_IMAGE = assigns(
    "im",
    m.Call(
        func=m.Attribute(value=m.Name("torch"), attr=m.Name("empty")),
        args=[m.Arg(m.Tuple(elements=[m.ZeroOrMore(), m.Element(m.Name("stride")), m.Element(m.Name("stride"))])), m.ZeroOrMore()],
    ),
)
# the nested `try:` whose body profiles that image
STRIDE_TRY = m.Try(body=m.IndentedBlock(body=[m.ZeroOrMore(), STRIDE_IMAGE, m.ZeroOrMore()]), handlers=[m.ExceptHandler()])


class FullSizeFlops(SourceEdit):
    name = "flops"
    target = TORCH_UTILS
    description = "get_flops: profile at the full image size"

    def transform(self, module: cst.Module, ctx: Context) -> cst.Module:
        func = top_level_function(module, "get_flops")
        if func is None:
            raise AnchorMissing(self.target, "module level", "def get_flops(...)")
        calls = find_all(func, THOP_PROFILE)
        if not calls:
            raise AnchorMissing(self.target, "get_flops", "a call of `thop.profile(...)`")
        new = module
        for node in find_all(func, m.IndentedBlock()):
            statements = list(node.body)
            for i, stmt in enumerate(statements):
                if m.matches(stmt, STRIDE_TRY):
                    fallback = list(stmt.handlers[0].body.body)  # type: ignore[attr-defined]
                    lines = (*stmt.leading_lines, *fallback[0].leading_lines)
                    statements[i : i + 1] = [fallback[0].with_changes(leading_lines=lines), *fallback[1:]]
                    return replace(module, node, node.with_changes(body=statements))  # type: ignore[return-value]
        for call in calls:
            kept = [arg for arg in call.args if not (arg.keyword and arg.keyword.value in PROXY_KEYWORDS)]
            if len(kept) != len(call.args):
                kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
                new = replace(new, call, call.with_changes(args=kept))  # type: ignore[assignment]
        return new
