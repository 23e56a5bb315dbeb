"""In parse_model's layer loop, a backbone's maps get layer indices of their own.

A backbone returns a list of feature maps, the last of P1 to P5. The tutorials' YAMLs number it as five layers (0-4
when it is the first row; the head takes P3, P4 and P5 as 2, 3 and 4). The tutorials kept one layer for it and
shifted every later layer's index 4 places on (`i + 4 if backbone else i`), so a layer's place in the model stopped
being its index, and everything in Ultralytics that takes one for the other went wrong: `embed`'s default layer,
`freeze=N`, distillation's hooks, the table parse_model prints. Here the backbone takes the first of its five places
and a zero-parameter `BackboneMap` layer takes each of the other four, handing on one map, so a layer's place is its
YAML index for every layer of every model, and no consumer of indices needs to know about backbones. Ultralytics'
own `TorchVision` + `Index` rows (8.3.59+) use the same representation. Five changes, each skipped when there:

1. place: the loop's first statement is `i = len(layers)`, the index the next layer gets (the row number plus 4 per
   backbone before it, which is the YAML's numbering);
2. build: `if isinstance(m, torch.nn.Module): m_ = m; t = <the YAML name>`, with the release's own construction
   (and, in 8.4.190, its SPPF fix-up and type name) kept on the `else` path. The test is whether the backbone branch
   built the layer (every other row's `m` is a class), never the shape of `c2`: YOLOv9's CBLinear has a list of
   channels too. The tutorials' `isinstance(c2, list)` is repaired to it, and their `m_.backbone = True` taken out
   (that attribute sends a layer down the forward loops' path for checkpoints of the old layout);
3. index: the tutorials' `i + 4 if backbone else i` becomes `i`, which is that already;
4. save list: likewise `x % (i + 4 if backbone else i)` becomes `x % i`;
5. maps: for a backbone, `ch.extend(...)` with its channels padded at the front to five, its own index in the save
   list, and four `BackboneMap` layers after it; `ch.append(c2)` otherwise.
"""

from __future__ import annotations

import libcst as cst
from patcher.edits import match as m

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
    if_else,
    index_of,
    parse,
    parse_model_parts,
    replace,
    replace_within,
    statement,
    with_body,
)

PLACE = assigns("i", m.Call(func=m.Name("len"), args=[m.Arg(m.Name("layers"))]))
BUILD = assigns("m_")
TYPE_NAME = assigns("t")
BACKBONE_IF = m.If(test=ISINSTANCE_M_MODULE)
MISTAKEN_IF = m.If(test=ISINSTANCE_C2_LIST)
MARKS_BACKBONE = statement(
    m.Assign(targets=[m.AssignTarget(target=m.Attribute(value=m.Name("m_"), attr=m.Name("backbone")))])
)
ATTACH = statement(
    m.Assign(targets=[m.AssignTarget(target=m.Tuple(elements=[m.Element(m.Attribute(value=m.Name("m_"), attr=m.Name("i"))), m.ZeroOrMore()]))])
)
SHIFTED = m.IfExp(body=m.BinaryOperation(left=m.Name("i"), operator=m.Add()), orelse=m.Name("i"))
SAVE_EXTEND = statement(m.Expr(value=call_to("save.extend")))
SHIFTED_MOD = m.BinaryOperation(operator=m.Modulo(), right=SHIFTED)
CH_APPEND = statement(m.Expr(value=m.Call(func=m.Attribute(value=m.Name("ch"), attr=m.Name("append")), args=[m.Arg(m.Name("c2"))])))
CHANNELS_IF = m.If(test=ISINSTANCE_M_MODULE | ISINSTANCE_C2_LIST)

PLACE_LINE = "i = len(layers)  # this layer's index: a backbone's maps are the layers after it, as the YAML numbers them\n"
MAPS = (
    f"if {BUILT_IN_BRANCH}:  # a backbone: it and the 4 BackboneMap layers after it are P1 to P5\n"
    "    ch.extend([0] * (5 - len(c2)) + c2)  # their channels (0 for a map it does not return)\n"
    "    save.append(i)  # each BackboneMap reads the backbone's list of maps\n"
    "    layers.extend(BackboneMap(i, k) for k in range(1, 5))\n"
)

WHERE = "parse_model, layer loop"


class BackboneMapLayers(SourceEdit):
    name = "parse-model-index"
    target = TASKS
    description = "parse_model: a backbone's maps become layers of their own (BackboneMap), so each index is the YAML's"

    def transform(self, module: cst.Module, ctx: Context) -> cst.Module:
        func, _, loop = parse_model_parts(module, self.target)
        before = list(body_of(loop))
        statements = self._place(before)
        statements = self._build(statements)
        statements = self._index(statements)
        statements = self._save(statements)
        statements = self._maps(statements)
        if statements == before:
            return module
        return replace_within(module, func, loop, with_body(loop, statements))

    @staticmethod
    def _place(statements: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        if index_of(statements, PLACE) is not None:
            return statements
        first = statements[0]
        return [parse(PLACE_LINE).with_changes(leading_lines=first.leading_lines), first.with_changes(leading_lines=()), *statements[1:]]

    def _build(self, statements: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        test = cst.parse_expression(BUILT_IN_BRANCH)
        statements = [  # `isinstance(c2, list)` -> `isinstance(m, torch.nn.Module)`, comments and bodies kept
            stmt.with_changes(test=test) if m.matches(stmt, MISTAKEN_IF) and find_all(stmt, BUILD) else stmt  # type: ignore[attr-defined]
            for stmt in statements
        ]
        at = next((i for i, s in enumerate(statements) if m.matches(s, BACKBONE_IF) and find_all(s, BUILD)), None)
        if at is not None:
            branch = statements[at]
            body = [s for s in body_of(branch) if not m.matches(s, MARKS_BACKBONE)]
            if len(body) == len(body_of(branch)):
                return statements
            return [*statements[:at], with_body(branch, body), *statements[at + 1 :]]  # type: ignore[list-item]
        start = index_of(statements, BUILD)
        if start is None:
            raise AnchorMissing(self.target, WHERE, "`m_ = ... if n > 1 else m(*args)`")
        end = index_of(statements, TYPE_NAME, start)
        if end is None:
            raise AnchorMissing(self.target, WHERE, '`t = str(m)[8:-2].replace("__main__.", "")` after `m_ = ...`')
        branch = if_else(
            f"if {BUILT_IN_BRANCH}:  # a backbone, already built in its branch\n"
            "    m_ = m\n"
            "    t = type(m).__name__  # its YAML name\n",
            statements[start : end + 1],
        )
        return [*statements[:start], branch, *statements[end + 1 :]]

    def _index(self, statements: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        at = index_of(statements, ATTACH)
        if at is None:
            raise AnchorMissing(self.target, WHERE, "`m_.i, m_.f, m_.type = i, f, t`")
        assign = statements[at].body[0]  # type: ignore[attr-defined]
        first = assign.value.elements[0]
        if not m.matches(first.value, SHIFTED):
            return statements
        value = assign.value.with_changes(elements=[first.with_changes(value=cst.Name("i")), *assign.value.elements[1:]])
        return [*statements[:at], replace(statements[at], assign, assign.with_changes(value=value)), *statements[at + 1 :]]

    def _save(self, statements: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        at = index_of(statements, SAVE_EXTEND)
        if at is None:
            raise AnchorMissing(self.target, WHERE, "`save.extend(x % i for x in ...)`")
        new = statements[at]
        for node in find_all(new, SHIFTED_MOD):
            new = replace(new, node, node.with_changes(right=cst.Name("i")))  # type: ignore[assignment]
        return [*statements[:at], new, *statements[at + 1 :]]

    def _maps(self, statements: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        at = index_of(statements, CH_APPEND)
        if at is not None:
            return [*statements[:at], if_else(MAPS, statements[at : at + 1]), *statements[at + 1 :]]
        # already split on a backbone: by ultrapatch (this layout or the earlier one, which only padded the channels)
        # or by hand; the `else` (the release's `ch.append(c2)`) is kept and the backbone's side made ours
        at = next((i for i, s in enumerate(statements) if m.matches(s, CHANNELS_IF) and find_all(s.orelse, CH_APPEND)), None)
        if at is None:
            raise AnchorMissing(self.target, WHERE, "`ch.append(c2)`")
        old = statements[at]
        new = if_else(MAPS, body_of(old.orelse)).with_changes(leading_lines=old.leading_lines)  # type: ignore[attr-defined]
        if new.deep_equals(old):
            return statements
        return [*statements[:at], new, *statements[at + 1 :]]
