"""Edit 5: every forward loop stores each map of a list-returning backbone.

The layer call itself (`x = m(x)`, or World's `if isinstance(m, C2fAttn): ...` chain) is left as the release wrote
it; only the line that saves the output, `y.append(x if m.i in self.save else None)`, becomes

    if hasattr(m, "backbone"):
        x = [None] * (5 - len(x)) + list(x)  # pad at the front to five maps, P1 to P5
        for xi in x:
            y.append(xi if len(y) in self.save else None)
        x = x[-1]
    else:
        y.append(x if m.i in self.save else None)  # save output

so each release keeps its own signature, `profile`, `visualize` and `embed` handling, and ordinary layers behave as
before. A loop that already tests `hasattr(m, "backbone")` (the tutorials' `_predict_once`) is left alone.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from patcher.edits.base import AnchorMissing, Context, NotInRelease, SourceEdit
from patcher.edits.shapes import (
    HASATTR_BACKBONE,
    TASKS,
    body_of,
    if_else,
    index_of,
    method,
    replace_within,
    statement,
    top_level_class,
    with_body,
)

SELF_MODEL = m.Attribute(value=m.Name("self"), attr=m.Name("model"))
LAYER_LOOP = m.For(target=m.Name("m"), iter=SELF_MODEL | m.Subscript(value=SELF_MODEL))
SAVE_OUTPUT = statement(m.Expr(value=m.Call(func=m.Attribute(value=m.Name("y"), attr=m.Name("append")))))
HANDLES_BACKBONE = m.If(test=HASATTR_BACKBONE)

STORE_MAPS = (
    'if hasattr(m, "backbone"):  # a backbone returns a list of feature maps\n'
    "    x = [None] * (5 - len(x)) + list(x)  # pad at the front to five maps, P1 to P5\n"
    "    for xi in x:\n"
    "        y.append(xi if len(y) in self.save else None)  # save output\n"
    "    x = x[-1]  # the last map feeds the next layer\n"
)


class ListOutputs(SourceEdit):
    """One forward loop, `cls.func`; `optional` classes may be absent from a release (World, YOLOE)."""

    target = TASKS

    def __init__(self, name: str, cls: str, func: str, optional: bool = False):
        self.name, self.cls, self.func, self.optional = name, cls, func, optional
        self.description = f"{cls}.{func}: store every map of a list-returning backbone"

    def transform(self, module: cst.Module, ctx: Context) -> cst.Module:
        where = f"{self.cls}.{self.func}"
        cls = top_level_class(module, self.cls)
        if cls is None:
            if self.optional:
                raise NotInRelease(f"no {self.cls}")
            raise AnchorMissing(self.target, "module level", f"class {self.cls}")
        func = method(cls, self.func)
        if func is None:
            raise AnchorMissing(self.target, self.cls, f"def {self.func}(...)")
        at = index_of(body_of(func), LAYER_LOOP)
        if at is None:
            raise AnchorMissing(self.target, where, "the layer loop `for m in self.model`")
        loop = body_of(func)[at]
        statements = list(body_of(loop))
        if index_of(statements, HANDLES_BACKBONE) is not None:
            return module
        save = index_of(statements, SAVE_OUTPUT)
        if save is None:
            raise AnchorMissing(self.target, where, "`y.append(x if m.i in self.save else None)` in the layer loop")
        statements[save : save + 1] = [if_else(STORE_MAPS, statements[save : save + 1])]
        return replace_within(module, cls, loop, with_body(loop, statements))
