"""parse_model learns the classes of the user's module files (`apply --module`), each by its role, with the release's
own constructs:

- base and repeat: added to the base set (input channels from `from`, `c2` scaled by width and `max_channels`), and a
  repeat class to the repeat set too (the row's repeats passed as `n`). Those are the inline literals of 8.1 to 8.3's
  first releases (`if m in {Classify, Conv, ...}:` and its inner `if m in {BottleneckCSP, ...}:`), and the
  `base_modules` and `repeat_modules` frozensets of later releases;
- keep: one branch before the chain's last `else`, as the tutorials write it by hand:

      elif m in {SE, EMA}:  # modules installed by ultrapatch: they keep their input's channels
          c2 = ch[f]
          args = [c2, *args]

- c3k2: a subclass of C3k2, registered as repeat, and given C3k2's own m/l/x rule (`c3k=True`, and on 8.4 the
  `legacy = False` of its head): `if m is C3k2:` becomes `if m in {C3k2, C3k2_EMA}:`. Registered as plain repeat, a
  subclass would miss both;
- free: nothing; the last `else: c2 = ch[f]` is their case;
- multi: a branch that gives the module its inputs' channels as a list, and its output channels by the rule the
  probe measured (BRANCHES); a module that takes no channels at all (a weighted concatenation) gets only the rule.

A class already registered (in either set, or in a branch of that shape: a tutorial applied by hand) is left where it
is; a hand-written branch of that shape gets the other keep classes too, so there is one branch, never two. The one
hand registration that is repaired: a class of another role (an attention block, most often) in the base or repeat set,
where parse_model hands it `(c1, c2, ...)`: it is taken out of them and registered by its role. A backbone class
(role backbone) is parse-model-branch's, not this edit's.
"""

from __future__ import annotations

import libcst as cst
from patcher.edits import match as m

from patcher.edits.base import AnchorMissing, Context, SourceEdit
from patcher.edits.parse_model_branch import (
    CHAIN_START,
    FALLBACK,
    _branch_head,
    _chain,
    _rebuild_chain,
    _set_members,
    add_names,
)
from patcher.edits.shapes import (
    LAYER_LOOP,
    TASKS,
    assigns,
    body_of,
    find_all,
    index_of,
    parse,
    parse_model_parts,
    replace_within,
    with_body,
)

KEEP_BODY = [
    assigns("c2", m.Subscript(value=m.Name("ch"))),
    assigns("args", m.List(elements=[m.Element(m.Name("c2")), m.StarredElement(m.Name("args"))])),
]
LISTED = "    args = [[ch[x] for x in f], *args]\n"  # a multi-input module takes its inputs' channels first
# Per kind of branch: what its comment says, and its body. A multi-input module's output channels follow one rule,
# which apply's probe measured: the sum of its inputs' channels, the first input's, the last's, or its first argument's
# (scaled by width and max_channels as a base module's `c2` is).
BRANCHES = {
    "keep": ("they keep their input's channels", "    c2 = ch[f]\n    args = [c2, *args]\n"),
    "multi-sum": ("they join several maps, their channels summed", "    c2 = sum(ch[x] for x in f)\n" + LISTED),
    "multi-first": ("they join several maps, with the first one's channels", "    c2 = ch[f[0]]\n" + LISTED),
    "multi-last": ("they join several maps, with the last one's channels", "    c2 = ch[f[-1]]\n" + LISTED),
    "multi-arg": ("they join several maps into c2 channels", "    c2 = make_divisible(min(args[0], max_channels) * width, 8)\n"
                  "    args = [[ch[x] for x in f], c2, *args[1:]]\n"),
    "join-sum": ("they join several maps, their channels summed", "    c2 = sum(ch[x] for x in f)\n"),
    "join-first": ("they join several maps, with the first one's channels", "    c2 = ch[f[0]]\n"),
}
C3K2_TEST = m.Comparison(
    left=m.Name("m"),
    comparisons=[
        m.ComparisonTarget(operator=m.Is(), comparator=m.Name("C3k2"))
        | m.ComparisonTarget(operator=m.In(), comparator=m.Set(elements=[m.Element(m.Name("C3k2")), m.ZeroOrMore()]))
    ],
)
INSERTS_REPEATS = m.Expr(m.Call(func=m.Attribute(value=m.Name("args"), attr=m.Name("insert"))))


def _frozenset_named(func: cst.FunctionDef, name: str) -> cst.Set | None:
    """The set literal of `name = frozenset({...})` in parse_model's body, or None (the releases before them)."""
    at = index_of(body_of(func), assigns(name, m.Call(func=m.Name("frozenset"), args=[m.Arg(m.Set())])))
    return None if at is None else body_of(func)[at].body[0].value.args[0].value  # type: ignore[attr-defined]


def _code(block: cst.BaseSuite) -> str:
    """An indented block's statements as text, indented by four spaces (BRANCHES' form)."""
    return "".join("    " + cst.Module([]).code_for_node(stmt).strip() + "\n" for stmt in getattr(block, "body", ()))


def _loop(func: cst.FunctionDef) -> cst.For:
    return body_of(func)[index_of(body_of(func), LAYER_LOOP)]  # type: ignore[index,return-value]


def _without(container: cst.Set, names: list[str]) -> cst.Set:
    """A set literal without `names`; the last element keeps the closing comma (or none) the literal had."""
    elements = list(container.elements)
    kept = [el for el in elements if not (isinstance(el.value, cst.Name) and el.value.value in names)]
    if kept and kept[-1] is not elements[-1]:
        kept[-1] = kept[-1].with_changes(comma=elements[-1].comma)
    return container.with_changes(elements=kept)


def _names(container: cst.BaseExpression) -> list[str]:
    return [el.value.value for el in getattr(container, "elements", ()) if isinstance(el.value, cst.Name)]


class ModuleRoles(SourceEdit):
    name = "module-roles"
    target = TASKS
    description = "parse_model: your modules' classes by role (base and repeat sets, a branch for those that keep their channels)"
    for_modules = True

    def asked(self, ctx: Context) -> bool:
        return bool(ctx.modules)

    def transform(self, module: cst.Module, ctx: Context) -> cst.Module:
        func, _, loop = parse_model_parts(module, self.target)
        links = _chain(loop)
        if not links or not m.matches(links[-1].orelse, FALLBACK):
            raise AnchorMissing(self.target, "parse_model", "the module-type chain `if m in ...: ... else: c2 = ch[f]`")
        misplaced = [n for n in self.in_sets(func) if n in ctx.registered() and n not in ctx.registered("base", "repeat", "c3k2")]
        if misplaced:  # a tutorial's hand edit put a keep (or free, multi, backbone) class in the base set: taken out
            func = self.without_in_sets(func, misplaced)
            links = _chain(_loop(func))
        known = self.registered(func, links)
        base = [n for n in ctx.registered("base", "repeat", "c3k2") if n not in known]
        repeat = [n for n in ctx.registered("repeat", "c3k2") if n not in known]
        c3k2 = [n for n in ctx.registered("c3k2") if n not in self.c3k2_rule(func)]
        branches = {kind: [n for n in ctx.registered(kind) if n not in known] for kind in BRANCHES}
        if not (base or repeat or c3k2 or any(branches.values()) or misplaced):
            return module
        new_func = func
        if base or repeat:
            new_func = self.with_sets(new_func, base, repeat)
        if c3k2:
            new_func = self.with_c3k2_rule(new_func, c3k2)
        for kind, names in branches.items():
            if names:
                new_func = self.with_branch(new_func, names, kind)
        original, _, _ = parse_model_parts(module, self.target)
        return replace_within(module, original, original, new_func)

    @staticmethod
    def _set_literals(func: cst.FunctionDef) -> list[cst.Set]:
        """The base and repeat sets: the frozensets of later releases, or the chain's first test and the repeat test
        inside it (8.1 to early 8.3)."""
        named = [_frozenset_named(func, name) for name in ("base_modules", "repeat_modules")]
        if all(literal is not None for literal in named):
            return named  # type: ignore[return-value]
        first = _chain(_loop(func))[0]
        literals = [first.test.comparisons[0].comparator]  # type: ignore[attr-defined]
        literals += [n.test.comparisons[0].comparator for n in find_all(first.body, m.If(test=m.Comparison(left=m.Name("m"), comparisons=[m.ComparisonTarget(comparator=m.Set())])))  # type: ignore[attr-defined]
                     if index_of(body_of(n), m.SimpleStatementLine(body=[INSERTS_REPEATS])) is not None]  # fmt: skip
        return [literal for literal in literals if isinstance(literal, cst.Set)]

    def in_sets(self, func: cst.FunctionDef) -> set[str]:
        return {name for literal in self._set_literals(func) for name in _names(literal)}

    def without_in_sets(self, func: cst.FunctionDef, names: list[str]) -> cst.FunctionDef:
        """The base and repeat sets without `names`, each in its own layout."""
        while True:  # one literal at a time: each replacement makes a new tree, in which the next is found again
            literal = next((lit for lit in self._set_literals(func) if set(_names(lit)) & set(names)), None)
            if literal is None:
                return func
            func = func.deep_replace(literal, _without(literal, names))  # type: ignore[assignment]

    @staticmethod
    def registered(func: cst.FunctionDef, links: list[cst.If]) -> set[str]:
        """Every name parse_model already treats by a role: the base and repeat sets, and the chain's literals."""
        found = set()
        for name in ("base_modules", "repeat_modules"):
            literal = _frozenset_named(func, name)
            found |= set(_names(literal)) if literal is not None else set()
        for link in links:
            found |= set(_set_members(link.test) or [])
            for inner in find_all(link.body, m.If(test=m.Comparison(left=m.Name("m")))):
                found |= set(_set_members(inner.test) or [])
        return found

    @staticmethod
    def _c3k2_test(func: cst.FunctionDef) -> cst.If | None:
        """parse_model's `if m is C3k2:` (or `if m in {C3k2, ...}:`, once it has subclasses), or None."""
        found = find_all(_loop(func), m.If(test=C3K2_TEST))
        return found[0] if found else None  # type: ignore[return-value]

    def c3k2_rule(self, func: cst.FunctionDef) -> set[str]:
        """The classes the m/l/x `c3k` rule (and 8.4's `legacy = False`) is for."""
        found = self._c3k2_test(func)
        if found is None:
            return set()
        return set(_set_members(found.test) or ["C3k2"])

    def with_c3k2_rule(self, func: cst.FunctionDef, names: list[str]) -> cst.FunctionDef:
        """`if m is C3k2:` becomes `if m in {C3k2, Subclass}:`: the subclass gets C3k2's m/l/x rule (`c3k=True`) and,
        on 8.4, the `legacy = False` of its head."""
        found = self._c3k2_test(func)
        if found is None:
            raise AnchorMissing(self.target, "parse_model", "C3k2's m/l/x rule `if m is C3k2:` (C3k2 arrived with YOLO11, 8.3.0)")
        test = found.test
        if _set_members(test) is None:  # `m is C3k2`
            new_test = parse(f"if m in {{C3k2, {', '.join(names)}}}:\n    pass\n").test  # type: ignore[attr-defined]
        else:
            literal = test.comparisons[0].comparator  # type: ignore[attr-defined]
            new_test = test.deep_replace(literal, add_names(literal, names))
        return func.deep_replace(found, found.with_changes(test=new_test))  # type: ignore[return-value]

    def with_sets(self, func: cst.FunctionDef, base: list[str], repeat: list[str]) -> cst.FunctionDef:
        """The base (and repeat) set with the names added: the frozensets, or the inline literals."""
        if _frozenset_named(func, "base_modules") is not None and _frozenset_named(func, "repeat_modules") is not None:
            for name, names in (("base_modules", base), ("repeat_modules", repeat)):
                literal = _frozenset_named(func, name)
                func = func.deep_replace(literal, add_names(literal, names)) if names else func  # type: ignore[assignment,arg-type]
            return func
        first = _chain(_loop(func))[0]
        container = first.test.comparisons[0].comparator  # type: ignore[attr-defined]
        if not isinstance(container, cst.Set):
            raise AnchorMissing(self.target, "parse_model", "the base set: `base_modules = frozenset({...})` or `if m in {Classify, Conv, ...}:`")
        new_first = first.deep_replace(container, add_names(container, base)) if base else first
        if repeat:
            inner = [n for n in find_all(new_first.body, m.If(test=m.Comparison(left=m.Name("m"), comparisons=[m.ComparisonTarget(comparator=m.Set())])))
                     if index_of(body_of(n), m.SimpleStatementLine(body=[INSERTS_REPEATS])) is not None]  # fmt: skip
            if not inner:
                raise AnchorMissing(self.target, "parse_model", "the repeat set: `if m in {BottleneckCSP, C1, ...}: args.insert(2, n)`")
            literal = inner[0].test.comparisons[0].comparator  # type: ignore[attr-defined]
            new_first = new_first.deep_replace(literal, add_names(literal, repeat))
        return func.deep_replace(first, new_first)  # type: ignore[return-value]

    def with_branch(self, func: cst.FunctionDef, names: list[str], kind: str) -> cst.FunctionDef:
        """The branch of `kind` (BRANCHES) with `names` added: merged into one of that body (a keep branch a tutorial
        wrote by hand included), or added before the chain's last `else`."""
        loop = _loop(func)
        links = _chain(loop)
        comment, body = BRANCHES[kind]
        for i, link in enumerate(links):
            if _set_members(link.test) is not None and (
                _code(link.body) == body or kind == "keep" and m.matches(link.body, m.IndentedBlock(body=KEEP_BODY))
            ):
                literal = link.test.comparisons[0].comparator  # type: ignore[attr-defined]
                merged = link.with_changes(test=link.test.deep_replace(literal, add_names(literal, names)))
                return self._with_chain(func, loop, _rebuild_chain(links, i, merged))
        branch = parse(_branch_head(names, f"modules installed by ultrapatch: {comment}") + body)
        last = links[-1].with_changes(orelse=branch.with_changes(orelse=links[-1].orelse))  # type: ignore[attr-defined]
        return self._with_chain(func, loop, _rebuild_chain(links, len(links) - 1, last))

    @staticmethod
    def _with_chain(func: cst.FunctionDef, loop: cst.For, first: cst.If) -> cst.FunctionDef:
        statements = list(body_of(loop))
        statements[index_of(statements, CHAIN_START)] = first  # type: ignore[index]
        return func.deep_replace(loop, with_body(loop, statements))  # type: ignore[return-value]
