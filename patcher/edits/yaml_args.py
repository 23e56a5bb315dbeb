"""`parse_model` keeps a YAML argument that is not a Python literal, such as a file path, as the string it is.

parse_model turns each string argument of a row into a value with `ast.literal_eval`, and keeps the string when that
raises ValueError (`"resnet18"`, `"weights/x.pth"`). A string that is not an expression at all raises SyntaxError
instead, and the build fails: an absolute path (`"/data/resnet18.pth"`, `"C:\\w\\x.pth"`) or `"./x.pth"`, which is
how a user names a local weights file for a TimmBackbone row. The edit adds SyntaxError to what is kept:

    with contextlib.suppress(ValueError, SyntaxError):  # a path is not a literal either: keep the string
        args[j] = locals()[a] if a in locals() else ast.literal_eval(a)

Every stock YAML builds as before: its arguments raised no SyntaxError, or it would not build.
"""

from __future__ import annotations

import libcst as cst
from patcher.edits import match as m

from patcher.edits.base import AnchorMissing, Context, SourceEdit
from patcher.edits.shapes import TASKS, find_all, parse_model_parts, replace_within

SUPPRESS = m.Call(func=m.Attribute(value=m.Name("contextlib"), attr=m.Name("suppress")))
LITERAL_EVAL = m.Call(func=m.Attribute(value=m.Name("ast"), attr=m.Name("literal_eval")), args=[m.Arg(m.Name("a"))])
COMMENT = "# a path is not a literal either: keep the string"


class StringArguments(SourceEdit):
    name = "yaml-args"
    target = TASKS
    description = "parse_model: a YAML argument that is no Python literal (a file path) stays a string"

    def transform(self, module: cst.Module, ctx: Context) -> cst.Module:
        func, _, loop = parse_model_parts(module, self.target)
        for block in find_all(loop, m.With()):
            call = block.items[0].item
            if not (m.matches(call, SUPPRESS) and find_all(block.body, LITERAL_EVAL)):
                continue
            names = [getattr(arg.value, "value", None) for arg in call.args]
            if "SyntaxError" in names:
                return module
            args = [*call.args[:-1], call.args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))]
            new_call = call.with_changes(args=[*args, cst.Arg(cst.Name("SyntaxError"))])
            header = block.body.header
            new = block.with_changes(
                items=[block.items[0].with_changes(item=new_call), *block.items[1:]],
                body=block.body.with_changes(
                    header=header.with_changes(whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment(COMMENT))
                    if header.comment is None
                    else header
                ),
            )
            return replace_within(module, func, block, new)
        raise AnchorMissing(
            self.target,
            "parse_model",
            "`with contextlib.suppress(ValueError): args[j] = ... ast.literal_eval(a)` in the layer loop",
        )
