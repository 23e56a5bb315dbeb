"""Edit 4: index shift and channel list at the end of parse_model's layer loop.

A backbone returns up to five feature maps. The forward loops pad its list at the front to five (P1 to P5) and store
every map, so the backbone occupies layers 0-4 and each later layer sits 4 places after its position in the YAML: the
tutorials' numbering, which this keeps. Four independent changes, each skipped when already there:

1. build: `if isinstance(m, torch.nn.Module): m_ = m; m_.backbone = True; t = <the YAML name>`, with the release's
   own construction (and, in 8.4.190, its SPPF fix-up and type name) kept on the `else` path. The test is whether
   the backbone branch built the layer (every other row's `m` is a class), never the shape of `c2`: YOLOv9's
   CBLinear has a list of channels too. The tutorials' `isinstance(c2, list)`, in a tree applied by hand or by an
   older ultrapatch, is repaired to it;
2. index: `m_.i, m_.f, m_.type = i + 4 if backbone else i, f, t`;
3. save list: `save.extend(x % (i + 4 if backbone else i) for x in ...)`;
4. channels: `ch.extend([0] * (5 - len(c2)) + c2)` for a backbone (the same test), `ch.append(c2)` otherwise, so any
   backbone with 1 to 5 maps lines up with the five places it occupies.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from patcher.edits.base import AnchorMissing, Context, SourceEdit
from patcher.edits.shapes import (
    BUILT_IN_BRANCH,
    ISINSTANCE_C2_LIST,
    ISINSTANCE_M_MODULE,
    TASKS,
    assigns,
    body_of,
    call_to,
    find_all,
    flag_name,
    if_else,
    index_of,
    parse_model_parts,
    replace_within,
    statement,
    with_body,
)

BUILD = assigns("m_")
TYPE_NAME = assigns("t")
BACKBONE_IF = m.If(test=ISINSTANCE_M_MODULE)
MISTAKEN_IF = m.If(test=ISINSTANCE_C2_LIST)
ATTACH = statement(
    m.Assign(targets=[m.AssignTarget(target=m.Tuple(elements=[m.Element(m.Attribute(value=m.Name("m_"), attr=m.Name("i"))), m.ZeroOrMore()]))])
)
SAVE_EXTEND = statement(m.Expr(value=call_to("save.extend")))
MOD_I = m.BinaryOperation(operator=m.Modulo(), right=m.Name("i"))
CH_APPEND = statement(m.Expr(value=m.Call(func=m.Attribute(value=m.Name("ch"), attr=m.Name("append")), args=[m.Arg(m.Name("c2"))])))

WHERE = "parse_model, layer loop"


class IndexShift(SourceEdit):
    name = "parse-model-index"
    target = TASKS
    description = "parse_model: keep a backbone whole, shift later indices by 4, pad its channel list to five"

    def transform(self, module: cst.Module, ctx: Context) -> cst.Module:
        func, at, loop = parse_model_parts(module, self.target)
        flag = flag_name(func)
        if flag is None:
            raise AnchorMissing(self.target, "parse_model", "the backbone flag `backbone = False` before the layer loop")
        statements = self._repair(list(body_of(loop)))
        statements = self._build(statements)
        shifted = cst.parse_expression(f"i + 4 if {flag} else i")
        statements = self._index(statements, shifted)
        statements = self._save(statements, shifted)
        statements = self._channels(statements)
        if statements == list(body_of(loop)):
            return module
        return replace_within(module, func, loop, with_body(loop, statements))

    @staticmethod
    def _repair(statements: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        """`if isinstance(c2, list):` becomes `if isinstance(m, torch.nn.Module):`, comments and bodies kept."""
        test = cst.parse_expression(BUILT_IN_BRANCH)
        return [
            stmt.with_changes(test=test) if m.matches(stmt, MISTAKEN_IF) else stmt  # type: ignore[attr-defined]
            for stmt in statements
        ]

    def _build(self, statements: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        if index_of(statements, BACKBONE_IF) is not None:
            return statements
        start = index_of(statements, BUILD)
        if start is None:
            raise AnchorMissing(self.target, WHERE, "`m_ = ... if n > 1 else m(*args)`")
        end = index_of(statements, TYPE_NAME, start)
        if end is None:
            raise AnchorMissing(self.target, WHERE, '`t = str(m)[8:-2].replace("__main__.", "")` after `m_ = ...`')
        branch = if_else(
            f"if {BUILT_IN_BRANCH}:  # a backbone, already built in its branch\n"
            "    m_ = m\n"
            "    m_.backbone = True  # the forward loops store each of its maps\n"
            "    t = type(m).__name__  # its YAML name\n",
            statements[start : end + 1],
        )
        return [*statements[:start], branch, *statements[end + 1 :]]

    def _index(self, statements: list[cst.BaseStatement], shifted: cst.BaseExpression) -> list[cst.BaseStatement]:
        at = index_of(statements, ATTACH)
        if at is None:
            raise AnchorMissing(self.target, WHERE, "`m_.i, m_.f, m_.type = i, f, t`")
        assign = statements[at].body[0]  # type: ignore[attr-defined]
        first = assign.value.elements[0]
        if not m.matches(first.value, m.Name("i")):
            return statements
        value = assign.value.with_changes(elements=[first.with_changes(value=shifted), *assign.value.elements[1:]])
        return self._replace(statements, at, assign, assign.with_changes(value=value))

    def _save(self, statements: list[cst.BaseStatement], shifted: cst.BaseExpression) -> list[cst.BaseStatement]:
        at = index_of(statements, SAVE_EXTEND)
        if at is None:
            raise AnchorMissing(self.target, WHERE, "`save.extend(x % i for x in ...)`")
        plain = find_all(statements[at], MOD_I)
        if not plain:
            return statements
        new = statements[at]
        for node in plain:
            right = shifted.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
            new = new.deep_replace(node, node.with_changes(right=right))  # type: ignore[assignment]
        return [*statements[:at], new, *statements[at + 1 :]]

    def _channels(self, statements: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        at = index_of(statements, CH_APPEND)
        if at is None:
            if any(find_all(stmt, CH_APPEND) for stmt in statements if m.matches(stmt, BACKBONE_IF)):
                return statements  # already inside `if isinstance(m, torch.nn.Module): ... else: ch.append(c2)`
            raise AnchorMissing(self.target, WHERE, "`ch.append(c2)`")
        branch = if_else(
            f"if {BUILT_IN_BRANCH}:  # pad at the front to five maps, P1 to P5, as the forward loops do\n"
            "    ch.extend([0] * (5 - len(c2)) + c2)\n",
            statements[at : at + 1],
        )
        return [*statements[:at], branch, *statements[at + 1 :]]

    @staticmethod
    def _replace(statements, at, old, new):
        return [*statements[:at], statements[at].deep_replace(old, new), *statements[at + 1 :]]
