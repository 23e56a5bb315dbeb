"""The edits' node patterns (patcher/edits/match.py) mean what libcst's matchers mean, and the fast walk and replace
in shapes.py agree with libcst's own `children` and `deep_replace`.

Every pattern the edit modules hold is translated into libcst.matchers and both are asked about every node of real
release files (tasks.py, torch_utils.py and a trainer of the oldest and newest cached releases): they must agree on
each. The walk must visit every node of code libcst's `children` reach, and `replace` must generate the same text as
`deep_replace` for any node of code.
"""

from __future__ import annotations

import importlib
import pkgutil
import random

import libcst as cst
import libcst.matchers as lm
import pytest

import patcher.edits
from conftest import pristine_tree
from patcher.edits import match as m
from patcher.edits.shapes import LAYOUT, find_all, replace, walk

FILES = ("ultralytics/nn/tasks.py", "ultralytics/utils/torch_utils.py", "ultralytics/models/yolo/detect/train.py")
RELEASES = ("8.1.47", "8.4.190")


def to_libcst(pattern):
    """The same pattern in libcst.matchers."""
    if pattern is m.DoNotCare():
        return lm.DoNotCare()
    if isinstance(pattern, m.Pattern):
        return getattr(lm, pattern.node_type.__name__)(**{k: to_libcst(v) for k, v in pattern.fields})
    if isinstance(pattern, m.OneOf):
        return lm.OneOf(*map(to_libcst, pattern.options))
    if isinstance(pattern, m.MatchIfTrue):
        return lm.MatchIfTrue(pattern.test)
    if isinstance(pattern, m.ZeroOrMore):
        return lm.ZeroOrMore(to_libcst(pattern.matcher))
    if isinstance(pattern, (list, tuple)):
        return [to_libcst(p) for p in pattern]
    return pattern


def edit_patterns() -> dict[str, m.Pattern]:
    """Every node pattern held at module level by the edit modules."""
    found = {}
    for info in pkgutil.iter_modules(patcher.edits.__path__):
        module = importlib.import_module(f"patcher.edits.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, m.Pattern):
                found[f"{info.name}.{name}"] = value
    return found


@pytest.fixture(scope="module")
def modules() -> list[cst.Module]:
    return [cst.parse_module((pristine_tree(v) / f).read_text(encoding="utf-8")) for v in RELEASES for f in FILES]


def libcst_walk(node: cst.CSTNode):
    yield node
    for child in node.children:
        yield from libcst_walk(child)


def test_the_edits_hold_many_patterns():
    assert len(edit_patterns()) >= 30


def test_every_edit_pattern_agrees_with_libcst_on_every_node(modules):
    patterns = {name: (p, to_libcst(p)) for name, p in edit_patterns().items()}
    hits = dict.fromkeys(patterns, 0)
    for module in modules:
        for node in libcst_walk(module):
            for name, (ours, theirs) in patterns.items():
                got = m.matches(node, ours)
                assert got == lm.matches(node, theirs), (name, cst.Module(body=[]).code_for_node(node)[:200])
                hits[name] += got
    assert sum(v > 0 for v in hits.values()) >= 10, hits  # the agreement covers matches, not only misses


def test_sequence_patterns_and_alternatives():
    call = cst.parse_expression("f(a, b, c)")
    name = lambda v: m.Arg(m.Name(v))  # noqa: E731
    assert m.matches(call, m.Call(args=[m.ZeroOrMore(), name("c")]))
    assert m.matches(call, m.Call(args=[name("a"), m.ZeroOrMore(), name("c")]))
    assert m.matches(call, m.Call(args=[m.ZeroOrMore(), name("b"), m.ZeroOrMore()]))
    assert not m.matches(call, m.Call(args=[name("a"), name("b")]))  # a sequence matches whole
    assert not m.matches(call, m.Call(args=[m.ZeroOrMore(name("a")), name("c")]))  # b is not an a
    assert m.matches(call, m.Call(func=m.Name("g") | m.Name("f")))
    assert m.matches(call, m.Call(func=m.Name(m.MatchIfTrue(lambda v: v.isalpha()))))
    assert not m.matches(call, m.Name("f"))  # another node type
    with pytest.raises(TypeError, match="unknown or repeated field"):
        m.Call(nonsense=1)
    with pytest.raises(AttributeError, match="no node type"):
        m.NoSuchNode()


def test_the_walk_reaches_every_node_of_code_libcst_reaches(modules):
    layout = (cst.BaseParenthesizableWhitespace, cst.EmptyLine, cst.TrailingWhitespace, cst.Comment, cst.Newline)
    for module in modules:
        ours = {id(n) for n in walk(module)}
        for node in libcst_walk(module):
            if id(node) not in ours:  # only what LAYOUT fields hold: whitespace, parentheses, separators
                assert isinstance(node, (*layout, cst.LeftParen, cst.RightParen, cst.Comma, cst.Semicolon)), type(node)
    assert LAYOUT


@pytest.mark.parametrize("seed", range(3))
def test_replace_generates_what_deep_replace_does(modules, seed):
    rng = random.Random(seed)
    for module in modules:
        candidates = [n for n in walk(module) if isinstance(n, (cst.Name, cst.Integer, cst.SimpleString, cst.Arg))]
        for old in rng.sample(candidates, 5):
            new = cst.Name("REPLACED") if not isinstance(old, cst.Arg) else old.with_changes(value=cst.Name("REPLACED"))
            assert replace(module, old, new).code == module.deep_replace(old, new).code
    with pytest.raises(ValueError, match="is not inside"):
        replace(modules[0], cst.Name("elsewhere"), cst.Name("x"))


def test_find_all_finds_what_libcst_finds(modules):
    for pattern in (m.Call(func=m.Name("isinstance")), m.IndentedBlock(), m.FunctionDef(name=m.Name("forward"))):
        theirs = to_libcst(pattern)
        for module in modules:
            expected = {id(n) for n in libcst_walk(module) if lm.matches(n, theirs)}
            assert {id(n) for n in find_all(module, pattern)} == expected
