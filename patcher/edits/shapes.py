"""Finders and matchers for the constructs the edits anchor on, shared by several edits.

Everything here matches code by its shape (node patterns, `match.py`), never by line numbers or exact text, so each release's
own formatting, comments and signatures are left alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cache

import libcst as cst

from patcher.edits import match as m
from patcher.edits.match import field_names

TASKS = "ultralytics/nn/tasks.py"


def parse(code: str) -> cst.BaseStatement:
    """One statement from source text; indentation is fitted to wherever it is inserted."""
    return cst.parse_statement(code)


def if_else(head: str, kept: Sequence[cst.BaseStatement]) -> cst.If:
    """`if ...: <new code> else: <kept>`: ultrapatch's lines in the `if`, the release's own lines kept in the `else`.

    `head` is the source of the `if` line and its body; blank lines and comments above `kept` stay above the `if`.
    """
    branch = parse(head + "else:\n    pass\n")
    assert isinstance(branch, cst.If) and isinstance(branch.orelse, cst.Else)
    moved = [kept[0].with_changes(leading_lines=()), *kept[1:]]
    orelse = branch.orelse.with_changes(body=branch.orelse.body.with_changes(body=moved))
    return branch.with_changes(leading_lines=kept[0].leading_lines, orelse=orelse)


def top_level_function(module: cst.Module, name: str) -> cst.FunctionDef | None:
    for node in module.body:
        if isinstance(node, cst.FunctionDef) and node.name.value == name:
            return node
    return None


def top_level_class(module: cst.Module, name: str) -> cst.ClassDef | None:
    for node in module.body:
        if isinstance(node, cst.ClassDef) and node.name.value == name:
            return node
    return None


def method(cls: cst.ClassDef, name: str) -> cst.FunctionDef | None:
    for node in cls.body.body:
        if isinstance(node, cst.FunctionDef) and node.name.value == name:
            return node
    return None


def body_of(node: cst.CSTNode) -> Sequence[cst.BaseStatement]:
    """The statements of a block-bearing node (function, loop, if, else)."""
    return node.body.body  # type: ignore[attr-defined]


def with_body(node: cst.CSTNode, statements: Sequence[cst.BaseStatement]) -> cst.CSTNode:
    return node.with_changes(body=node.body.with_changes(body=tuple(statements)))  # type: ignore[attr-defined]


def replace_within(module: cst.Module, top: cst.CSTNode, old: cst.CSTNode, new: cst.CSTNode) -> cst.Module:
    """`module` with `old` (a node inside the top-level statement `top`) replaced by `new`."""
    replaced = new if top is old else replace(top, old, new)
    return module.with_changes(body=tuple(replaced if stmt is top else stmt for stmt in module.body))


# Fields that hold only whitespace, comments, parentheses and separators: no edit looks for anything inside them.
LAYOUT = ("whitespace", "leading_lines", "lines_after_decorators", "lpar", "rpar", "header", "footer", "comma", "semicolon")


@cache
def code_fields(node_type: type) -> tuple[str, ...]:
    """A node type's fields that can hold code (not LAYOUT)."""
    return tuple(name for name in field_names(node_type) if not name.startswith(LAYOUT))


def children(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """The nodes of code `node` holds, field by field (whitespace, comments and separators left out). libcst's own
    `node.children` rebuilds `node` to list them: walking a module through it cost most of an apply's edits."""
    for name in code_fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            yield value
        elif isinstance(value, (tuple, list)):
            for item in value:
                if isinstance(item, cst.CSTNode):
                    yield item


def walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node of code under `node`, depth first, `node` included (children in field order)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(list(children(current))))


def find_all(node: cst.CSTNode, matcher: m.Pattern) -> list[cst.CSTNode]:
    """Every node under `node` (included) that `matcher`, a node pattern, matches."""
    wanted = matcher.node_type
    return [n for n in walk(node) if type(n) is wanted and m.matches(n, matcher)]


def path_to(root: cst.CSTNode, target: cst.CSTNode) -> list[tuple[cst.CSTNode, str, int | None]] | None:
    """How to reach `target` (the very node, of code) from `root`: (parent, field, index in the field or None) per
    step, from the root down; None when `target` is not under `root`."""
    if root is target:
        return []
    for name in code_fields(type(root)):
        value = getattr(root, name)
        if isinstance(value, cst.CSTNode):
            below = path_to(value, target)
            if below is not None:
                return [(root, name, None), *below]
        elif isinstance(value, (tuple, list)):
            for index, item in enumerate(value):
                if isinstance(item, cst.CSTNode):
                    below = path_to(item, target)
                    if below is not None:
                        return [(root, name, index), *below]
    return None


def replace(root: cst.CSTNode, old: cst.CSTNode, new: cst.CSTNode) -> cst.CSTNode:
    """`root` with the node `old` (the very node, found by identity) replaced by `new`: only the nodes on the path
    down to it are rebuilt, where libcst's `deep_replace` rebuilds every node of `root`."""
    path = path_to(root, old)
    if path is None:
        raise ValueError(f"{type(old).__name__} is not inside this {type(root).__name__}")
    node = new
    for parent, name, index in reversed(path):
        if index is None:
            node = parent.with_changes(**{name: node})
        else:
            items = getattr(parent, name)
            node = parent.with_changes(**{name: (*items[:index], node, *items[index + 1 :])})
    return node


def statement(matcher: m.BaseMatcherNode) -> m.SimpleStatementLine:
    """A line holding exactly the one small statement `matcher` describes."""
    return m.SimpleStatementLine(body=[matcher])


def assigns(name: str, value: m.BaseMatcherNode | m.DoNotCareSentinel = m.DoNotCare()) -> m.SimpleStatementLine:
    """`name = value` on a line of its own."""
    return statement(m.Assign(targets=[m.AssignTarget(target=m.Name(name))], value=value))


def index_of(statements: Sequence[cst.BaseStatement], matcher: m.BaseMatcherNode, start: int = 0) -> int | None:
    for i in range(start, len(statements)):
        if m.matches(statements[i], matcher):
            return i
    return None


def call_to(dotted: str) -> m.Call:
    """A call of `a.b.c(...)` or `name(...)`."""
    *owners, attr = dotted.split(".")
    func: m.BaseExpressionMatcher = m.Name(attr)
    if owners:
        owner: m.BaseExpressionMatcher = m.Name(owners[0])
        for part in owners[1:]:
            owner = m.Attribute(value=owner, attr=m.Name(part))
        func = m.Attribute(value=owner, attr=m.Name(attr))
    return m.Call(func=func)


# `for i, (f, n, m, args) in enumerate(d["backbone"] + d["head"]):`, the layer loop of parse_model.
LAYER_LOOP = m.For(
    iter=m.Call(
        func=m.Name("enumerate"),
        args=[m.Arg(m.BinaryOperation(left=m.Subscript(value=m.Name("d")), operator=m.Add()))],
    )
)

# `hasattr(m, "backbone")`, the test that marks a list-returning layer in a forward loop.
HASATTR_BACKBONE = m.Call(
    func=m.Name("hasattr"),
    args=[m.Arg(m.Name("m")), m.Arg(m.SimpleString(m.MatchIfTrue(lambda s: s.strip("'\"") == "backbone")))],
)

# `isinstance(c2, list)`: how the tutorials (and ultrapatch 0.1 at first) told a backbone in parse_model, wrongly: a
# CBLinear layer (YOLOv9) has a list of channels too.
ISINSTANCE_C2_LIST = m.Call(func=m.Name("isinstance"), args=[m.Arg(m.Name("c2")), m.Arg(m.Name("list"))])
# `isinstance(m, torch.nn.Module)`: the layer was built in the backbone branch (every other row's `m` is a class).
BUILT_IN_BRANCH = "isinstance(m, torch.nn.Module)"
ISINSTANCE_M_MODULE = m.Call(
    func=m.Name("isinstance"),
    args=[m.Arg(m.Name("m")), m.Arg(m.Attribute(value=m.Attribute(value=m.Name("torch"), attr=m.Name("nn")), attr=m.Name("Module")))],
)


def parse_model_parts(module: cst.Module, file: str = TASKS) -> tuple[cst.FunctionDef, int, cst.For]:
    """`parse_model`, the position of its layer loop in its body, and the loop; or AnchorMissing."""
    from patcher.edits.base import AnchorMissing

    func = top_level_function(module, "parse_model")
    if func is None:
        raise AnchorMissing(file, "module level", "def parse_model(...)")
    at = index_of(body_of(func), LAYER_LOOP)
    if at is None:
        raise AnchorMissing(file, "parse_model", 'the layer loop `for i, (f, n, m, args) in enumerate(d["backbone"] + ...)`')
    return func, at, body_of(func)[at]  # type: ignore[return-value]
