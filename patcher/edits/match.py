"""Patterns of libcst nodes, matched by shape: the part of `libcst.matchers` the edits use, without importing it.

`libcst.matchers` defines a matcher class for every node type, and importing it takes about 0.13 s: a third of an
apply's floor (Python, libcst, and parsing the three files the edits centre on), for the fifty patterns the edits
hold. The edits write `m.Call(func=m.Name("print"))` as they would with libcst's module; `m.<NodeType>(...)` here
builds a `Pattern` of that node type instead, with the same meaning:

- a node pattern matches a node of exactly that type whose named fields match (positional arguments name the
  node's fields in order, as libcst's matcher classes do); fields not named match anything;
- a field's pattern is another pattern, a plain value (compared with ==), `DoNotCare()`, `a | b` (either),
  `MatchIfTrue(f)` (f(value) is true), or a list for a sequence field, matched whole, element by element, where
  `ZeroOrMore()` stands for any number of elements.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import libcst as cst


class BaseMatcherNode:
    """Anything that can stand where a node or a field's value is expected."""

    __slots__ = ()

    def __or__(self, other: BaseMatcherNode) -> OneOf:
        return OneOf(self, other)


BaseExpressionMatcher = BaseMatcherNode  # the name libcst's matchers give patterns of expressions


class DoNotCareSentinel(BaseMatcherNode):
    __slots__ = ()

    def __repr__(self) -> str:
        return "DoNotCare()"


_DO_NOT_CARE = DoNotCareSentinel()


def DoNotCare() -> DoNotCareSentinel:  # noqa: N802 - libcst's name
    return _DO_NOT_CARE


class OneOf(BaseMatcherNode):
    __slots__ = ("options",)

    def __init__(self, *options: Any):
        self.options = options

    def __repr__(self) -> str:
        return " | ".join(map(repr, self.options))


class MatchIfTrue(BaseMatcherNode):
    __slots__ = ("test",)

    def __init__(self, test: Callable[[Any], object]):
        self.test = test

    def __repr__(self) -> str:
        return f"MatchIfTrue({self.test!r})"


class ZeroOrMore:
    """In a sequence pattern: any number of elements, each matching `matcher`."""

    __slots__ = ("matcher",)

    def __init__(self, matcher: Any = _DO_NOT_CARE):
        self.matcher = matcher

    def __repr__(self) -> str:
        return "ZeroOrMore()" if self.matcher is _DO_NOT_CARE else f"ZeroOrMore({self.matcher!r})"


class Pattern(BaseMatcherNode):
    """A node of type `node_type` whose `fields` match."""

    __slots__ = ("node_type", "fields")

    def __init__(self, node_type: type[cst.CSTNode], args: Sequence[Any], kwargs: dict[str, Any]):
        names = field_names(node_type)
        if len(args) > len(names):
            raise TypeError(f"{node_type.__name__} has {len(names)} fields, not {len(args)}")
        fields = dict(zip(names, args))
        for name, value in kwargs.items():
            if name not in names or name in fields:
                raise TypeError(f"{node_type.__name__} pattern: unknown or repeated field {name!r}")
            fields[name] = value
        self.node_type = node_type
        self.fields = tuple((name, value) for name, value in fields.items() if value is not _DO_NOT_CARE)

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in self.fields)
        return f"{self.node_type.__name__}({inner})"


@cache
def field_names(node_type: type) -> tuple[str, ...]:
    """A node type's fields, in the order of its dataclass (as libcst's matcher classes take them)."""
    return tuple(f.name for f in dataclasses.fields(node_type))


@cache
def _factory(name: str) -> Callable[..., Pattern]:
    node_type = getattr(cst, name, None)
    if not (isinstance(node_type, type) and issubclass(node_type, cst.CSTNode)):
        raise AttributeError(f"libcst has no node type {name}")

    def pattern(*args: Any, **kwargs: Any) -> Pattern:
        return Pattern(node_type, args, kwargs)

    pattern.__name__ = name
    return pattern


def __getattr__(name: str) -> Callable[..., Pattern]:
    """`m.Call`, `m.Name`, ...: a pattern factory for libcst's node type of that name."""
    if name.startswith("__"):
        raise AttributeError(name)
    return _factory(name)


def matches(node: object, pattern: Any) -> bool:
    """Whether `node` (a libcst node, or a field's value) has the shape `pattern` describes."""
    if pattern is _DO_NOT_CARE:
        return True
    if isinstance(pattern, Pattern):
        if type(node) is not pattern.node_type:
            return False
        return all(matches(getattr(node, name), want) for name, want in pattern.fields)
    if isinstance(pattern, OneOf):
        return any(matches(node, option) for option in pattern.options)
    if isinstance(pattern, MatchIfTrue):
        return bool(pattern.test(node))
    if isinstance(pattern, (list, tuple)):
        return isinstance(node, (list, tuple)) and _sequence(tuple(node), 0, tuple(pattern), 0)
    return node == pattern


def _sequence(values: tuple, i: int, patterns: tuple, j: int) -> bool:
    """Whether values[i:] match patterns[j:] whole; a ZeroOrMore takes as many elements as lets the rest match."""
    if j == len(patterns):
        return i == len(values)
    want = patterns[j]
    if isinstance(want, ZeroOrMore):
        for k in range(i, len(values) + 1):
            if _sequence(values, k, patterns, j + 1):
                return True
            if k < len(values) and not matches(values[k], want.matcher):
                return False
        return False
    return i < len(values) and matches(values[i], want) and _sequence(values, i + 1, patterns, j + 1)
