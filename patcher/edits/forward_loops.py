"""Every forward loop still runs a checkpoint trained in the tutorials' layout.

A model built by a patched parse_model gives each of a backbone's maps a layer of its own (`BackboneMap`, see
parse-model-index), so the release's forward loops run it as they run any model. A checkpoint trained before, in a
tree edited by hand from a tutorial or by ultrapatch 0.1, holds the old layout: one layer marked `backbone` whose
maps the loop itself must spread over five places. So that such a `best.pt` keeps working, the line that saves a
layer's output, `y.append(x if m.i in self.save else None)`, becomes

    if hasattr(m, "backbone"):
        x = [None] * (5 - len(x)) + list(x)  # pad at the front to five maps, P1 to P5
        for xi in x:
            y.append(xi if len(y) in self.save else None)
        x = x[-1]
    else:
        y.append(x if m.i in self.save else None)  # save output

No layer built by the patched fork has that attribute: the path is taken for old checkpoints only. The layer call
(`x = m(x)`, or World's `if isinstance(m, C2fAttn): ...` chain) and each release's signature, `profile`,
`visualize` and `embed` handling stay as the release wrote them. A loop that already tests `hasattr(m, "backbone")`
(the tutorials' `_predict_once`) is left alone: it runs old checkpoints the same way.
"""

from __future__ import annotations

import libcst as cst
from patcher.edits import match as m

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
from patcher.i18n import _

SELF_MODEL = m.Attribute(value=m.Name("self"), attr=m.Name("model"))
LAYER_LOOP = m.For(target=m.Name("m"), iter=SELF_MODEL | m.Subscript(value=SELF_MODEL))
SAVE_OUTPUT = statement(m.Expr(value=m.Call(func=m.Attribute(value=m.Name("y"), attr=m.Name("append")))))
HANDLES_BACKBONE = m.If(test=HASATTR_BACKBONE)

STORE_MAPS = (
    'if hasattr(m, "backbone"):  # a checkpoint in the tutorials\' layout: one layer holds all the maps\n'
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
        self.description = f"{cls}.{func}: run checkpoints of the tutorials' layout (a backbone layer holding five maps)"

    def transform(self, module: cst.Module, ctx: Context) -> cst.Module:
        where = f"{self.cls}.{self.func}"
        cls = top_level_class(module, self.cls)
        if cls is None:
            if self.optional:
                raise NotInRelease(_("no {target}").format(target=self.cls))
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
