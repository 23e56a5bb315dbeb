"""Training datasets are built with `rect=False`, as the tutorials do.

`DetectionTrainer.build_dataset` passes `rect=mode == "val"` to `build_yolo_dataset` (segment, pose and OBB trainers
inherit it); the World and YOLOE trainers of releases that have them carry the same expression, which is edited the
same way. A trainer file without the expression is "not in this release".
"""

from __future__ import annotations

import libcst as cst
from patcher.edits import match as m

from patcher.edits.base import AnchorMissing, Context, NotInRelease, SourceEdit
from patcher.edits.shapes import call_to, find_all, replace
from patcher.i18n import _

RECT_VAL = m.Arg(keyword=m.Name("rect"), value=m.Comparison(left=m.Name("mode"), comparisons=[m.ComparisonTarget(operator=m.Equal(), comparator=m.SimpleString())]))
RECT_FALSE = m.Arg(keyword=m.Name("rect"), value=m.Name("False"))
BUILD_DATASET = m.FunctionDef(name=m.Name("build_dataset"))


class RectFalse(SourceEdit):
    """`rect=mode == "val"` -> `rect=False` in every `build_dataset` of one trainer file."""

    def __init__(self, name: str, target: str, trainer: str, optional: bool = False):
        self.name, self.target, self.trainer, self.optional = name, target, trainer, optional
        self.description = f"{trainer}.build_dataset: rect=False"

    def transform(self, module: cst.Module, ctx: Context) -> cst.Module:
        calls = [call for func in find_all(module, BUILD_DATASET) for call in find_all(func, call_to("build_yolo_dataset"))]
        to_edit = [arg for call in calls for arg in call.args if m.matches(arg, RECT_VAL)]
        if not to_edit:
            if any(m.matches(arg, RECT_FALSE) for call in calls for arg in call.args):
                return module
            if self.optional:
                raise NotInRelease(_('no `rect=mode == "val"` in {target}').format(target=self.target))
            raise AnchorMissing(self.target, f"{self.trainer}.build_dataset", '`build_yolo_dataset(..., rect=mode == "val", ...)`')
        new = module
        for arg in to_edit:
            new = replace(new, arg, arg.with_changes(value=cst.Name("False")))
        return new  # type: ignore[return-value]
