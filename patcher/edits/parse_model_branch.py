"""The branch of parse_model's module-type chain that builds a backbone.

Before the final `else: c2 = ch[f]` of the chain, a branch that builds the backbone and sets `c2` to its list of
channels, as the tutorials add it:

    elif m in {MobileNetV3_small_n, ...}:
        m = m(*args)
        c2 = m.width_list

A branch that already sets `c2 = m.width_list` (from an earlier apply, or a tutorial applied by hand) gets the
missing names merged into its set; a second branch is never added. The tutorials also add a flag (`backbone = False`
before the loop, `backbone = True` in the branch) for their index shift; parse-model-index gives every layer its
YAML index without one, so none is added, and a hand-applied one is left as it is, unused.
"""

from __future__ import annotations

import libcst as cst
from patcher.edits import match as m

from patcher.edits.base import AnchorMissing, Context, SourceEdit
from patcher.edits.shapes import (
    TASKS,
    assigns,
    body_of,
    index_of,
    parse,
    parse_model_parts,
    replace,
    replace_within,
    with_body,
)

# The module-type chain starts `if m in {...}:` (or `m in base_modules`) and ends `else: c2 = ch[f]`.
CHAIN_START = m.If(test=m.Comparison(left=m.Name("m"), comparisons=[m.ComparisonTarget(operator=m.In())]))
FALLBACK = m.Else(body=m.IndentedBlock(body=[assigns("c2", m.Subscript(value=m.Name("ch")))]))
SETS_WIDTH_LIST = assigns("c2", m.Attribute(value=m.Name("m"), attr=m.Name("width_list")))


def _chain(loop: cst.For) -> list[cst.If]:
    """The `if`/`elif` nodes of the module-type chain, in order."""
    start = index_of(body_of(loop), CHAIN_START)
    if start is None:
        return []
    links = [body_of(loop)[start]]
    while isinstance(links[-1].orelse, cst.If):  # type: ignore[union-attr]
        links.append(links[-1].orelse)  # type: ignore[union-attr]
    return links  # type: ignore[return-value]


def _container(test: cst.BaseExpression) -> cst.Set | cst.Tuple | cst.List | None:
    """The literal in `m in {A, B}`, `m in (A, B)` or `m in frozenset({A, B})`."""
    container = test.comparisons[0].comparator  # type: ignore[attr-defined]
    if m.matches(container, m.Call(func=m.Name("frozenset"), args=[m.Arg()])):
        container = container.args[0].value
    return container if isinstance(container, (cst.Set, cst.Tuple, cst.List)) else None


def _set_members(test: cst.BaseExpression) -> list[str] | None:
    """The names in the branch's literal; None for any other shape."""
    container = _container(test)
    if container is None:
        return None
    names = [el.value.value for el in container.elements if isinstance(el.value, cst.Name)]
    return names if len(names) == len(container.elements) else None


def _with_names(test: cst.BaseExpression, names: list[str]) -> cst.BaseExpression:
    """`test` with `names` appended to its literal, in its own layout: one a line stays one a line, comments stay."""
    container = _container(test)
    assert container is not None
    return replace(test, container, add_names(container, names))  # type: ignore[return-value]


def add_names(container: cst.Set | cst.Tuple | cst.List, names: list[str]) -> cst.Set | cst.Tuple | cst.List:
    """A set, tuple or list literal with `names` appended, in its own layout: one a line stays one a line, comments
    stay."""
    assert container.elements
    elements = list(container.elements)
    opening = container.lbrace if isinstance(container, cst.Set) else container.lpar[0] if isinstance(container, cst.Tuple) else container.lbracket
    first = opening.whitespace_after
    if len(elements) >= 2:
        between = elements[-2].comma
    elif isinstance(first, cst.ParenthesizedWhitespace):  # one name a line: the same indent, without the comment
        between = cst.Comma(whitespace_after=first.with_changes(first_line=cst.TrailingWhitespace()))
    else:
        between = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    closing = elements[-1].comma
    elements[-1] = elements[-1].with_changes(comma=between)
    elements += [cst.Element(cst.Name(name), comma=between) for name in names]
    elements[-1] = elements[-1].with_changes(comma=closing)
    return container.with_changes(elements=elements)


def _set_literal(names: list[str]) -> str:
    """`{A, B}` on one line, or one name a line when that would be long, as black lays it out."""
    one_line = f"{{{', '.join(names)}}}"
    if len(one_line) <= 80:
        return one_line
    return "{\n" + "".join(f"    {name},\n" for name in names) + "}"


def _branch_head(names: list[str], comment: str) -> str:
    literal = _set_literal(names)
    if "\n" in literal:  # the comment goes on the first line
        return f"if m in {{  # {comment}{literal[1:]}:\n"
    return f"if m in {literal}:  # {comment}\n"


def _rebuild_chain(links: list[cst.If], at: int, replacement: cst.If) -> cst.If:
    """The chain's first `if`, with link `at` replaced (each link holds the rest of the chain as its `orelse`)."""
    node = replacement
    for link in reversed(links[:at]):
        node = link.with_changes(orelse=node)
    return node


class BackboneBranch(SourceEdit):
    name = "parse-model-branch"
    target = TASKS
    description = "parse_model: an `elif m in {...}` branch that builds a backbone and takes its channels"

    def transform(self, module: cst.Module, ctx: Context) -> cst.Module:
        func, _, loop = parse_model_parts(module, self.target)
        new = self._with_branch(loop, ctx.classes)
        return module if new is loop else replace_within(module, func, loop, new)

    def _with_branch(self, loop: cst.For, variants: tuple[str, ...]) -> cst.For:
        links = _chain(loop)
        if not links or not m.matches(links[-1].orelse, FALLBACK):
            raise AnchorMissing(
                self.target, "parse_model", "the module-type chain `if m in ...: ... else: c2 = ch[f]` in the layer loop"
            )
        for i, link in enumerate(links):
            if index_of(body_of(link), SETS_WIDTH_LIST) is None:
                continue
            names = _set_members(link.test)
            if names is None:
                raise AnchorMissing(
                    self.target, "parse_model", "a set of names in the existing backbone branch `elif m in {...}:`"
                )
            missing = [v for v in variants if v not in names]
            if not missing:
                return loop
            merged = link.with_changes(test=_with_names(link.test, missing))
            return self._replace_chain(loop, _rebuild_chain(links, i, merged))
        branch = parse(
            _branch_head(list(variants), "backbones: built here, they return a list of feature maps")
            + "    m = m(*args)\n"
            + "    c2 = m.width_list  # the channels of each returned map\n"
        )
        last = links[-1].with_changes(orelse=branch.with_changes(orelse=links[-1].orelse))
        return self._replace_chain(loop, _rebuild_chain(links, len(links) - 1, last))

    @staticmethod
    def _replace_chain(loop: cst.For, first: cst.If) -> cst.For:
        statements = list(body_of(loop))
        statements[index_of(statements, CHAIN_START)] = first  # type: ignore[index]
        return with_body(loop, statements)  # type: ignore[return-value]
