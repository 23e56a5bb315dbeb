"""An edited module's text, from its original text and only the statements the edits changed.

`Module.code` generates a whole file, and apply's edits change a handful of statements in tasks.py's 2,000 lines:
generating tasks.py and torch_utils.py took 0.05 s of a 0.5 s apply. Since libcst's trees round-trip, a module's
text is the concatenation of its statements' texts, and the edits rebuild only the path to what they change (every
other node is the very object the original tree holds). So the edited text is the original text with the
statements that differ, found from the deepest block that holds them, replaced by their new code.

A statement's original code is located by searching the original text for it (generated with the indentation its
blocks give it): it is there, at its true place, so when it occurs exactly once, at the start of a line, that
occurrence is the statement. Anything less certain (a snippet found twice, a changed module header, an edit that
moved statements across blocks, libcst internals that moved) gives None, and the caller generates the whole module.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Sequence

import libcst as cst

try:  # libcst's code generator state; without it (another libcst layout), every file is generated whole
    from libcst._nodes.internal import CodegenState
except ImportError:  # pragma: no cover - depends on the installed libcst
    CodegenState = None

Pair = tuple[int, str, str]  # (place in the original text, original code, new code) of a statement or a run of them


def code(module: cst.Module, original: cst.Module, text: str) -> str:
    """`module.code`, where `module` is an edit of `original`, the parse of `text`."""
    spliced = splice(module, original, text)
    return module.code if spliced is None else spliced


def splice(module: cst.Module, original: cst.Module, text: str) -> str | None:
    """The text of `module` built from `text` (`original`'s code), or None when that cannot be done with certainty."""
    if module is original:
        return text
    if CodegenState is None or not same_except(original, module, "body"):
        return None
    pairs = Generator(original, text).block(original.body, module.body, [])
    if pairs is None:
        return None
    pieces, at = [], 0
    for start, old, new in sorted(pairs):
        if start < at:  # two runs sharing a statement: not a case to be clever about
            return None
        pieces += [text[at:start], new]
        at = start + len(old)
    pieces.append(text[at:])
    return "".join(pieces)


def same(a, b) -> bool:
    """Whether two field values are the same: the same node object, sequences of the same nodes, or equal scalars."""
    if a is b:
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, cst.CSTNode) or isinstance(b, cst.CSTNode):
        return False
    return type(a) is type(b) and a == b


def same_except(a: cst.CSTNode, b: cst.CSTNode, name: str) -> bool:
    """Whether `a` and `b` are nodes of one type whose fields other than `name` are the same."""
    return type(a) is type(b) and all(
        same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a) if f.name != name
    )


class Generator:
    """Finds the changed statements of an edited module and the original code of each, in one original text."""

    def __init__(self, original: cst.Module, text: str):
        self.indent, self.newline = original.default_indent, original.default_newline
        self.text = text

    def generate(self, statements: Sequence[cst.CSTNode], indents: list[str]) -> str:
        """The code of `statements` inside blocks that indent by `indents`, as the whole module's code has it."""
        state = CodegenState(default_indent=self.indent, default_newline=self.newline)
        state.indent_tokens = list(indents)
        for statement in statements:
            statement._codegen(state)
        return "".join(state.tokens)

    def pair(self, old: Sequence[cst.CSTNode], new: Sequence[cst.CSTNode], indents: list[str]) -> list[Pair] | None:
        """[(place, original code, new code)] of a run of statements, when the original code is found with
        certainty."""
        before = self.generate(old, indents)
        at = self.text.find(before)
        if (
            not before.endswith(("\n", "\r"))  # a whole line or lines: the file's last line has its newline
            or at < 0
            or (at > 0 and self.text[at - 1] not in "\r\n")
            or self.text.find(before, at + 1) >= 0
        ):
            return None
        return [(at, before, self.generate(new, indents))]

    def block(self, old: Sequence[cst.CSTNode], new: Sequence[cst.CSTNode], indents: list[str]) -> list[Pair] | None:
        """The pairs that turn the statements `old` of a block into `new`: unchanged statements keep their text."""
        pairs: list[Pair] = []
        matcher = difflib.SequenceMatcher(None, [id(s) for s in old], [id(s) for s in new], autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                continue
            if op == "replace" and i2 - i1 == j2 - j1:
                found = [self.statement(old[i], new[j], indents) for i, j in zip(range(i1, i2), range(j1, j2))]
                if any(f is None for f in found):
                    return None
                pairs += [p for f in found for p in f]
                continue
            if i1 == i2:  # statements inserted: anchor them on the unchanged statement before them
                if i1 > 0:
                    i1, j1 = i1 - 1, j1 - 1
                elif i2 < len(old):  # or, at the start of the block, after them
                    i2, j2 = i2 + 1, j2 + 1
                else:
                    return None
            found = self.pair(old[i1:i2], new[j1:j2], indents)
            if found is None:
                return None
            pairs += found
        return pairs

    def statement(self, old: cst.CSTNode, new: cst.CSTNode, indents: list[str]) -> list[Pair] | None:
        """The pairs that turn one statement into another: within its block when only the block's statements
        changed, else the whole statement."""
        body_old, body_new = getattr(old, "body", None), getattr(new, "body", None)
        if (
            isinstance(body_old, cst.IndentedBlock)
            and isinstance(body_new, cst.IndentedBlock)
            and body_old.body
            and body_new.body
            and same_except(old, new, "body")
            and same_except(body_old, body_new, "body")
        ):
            inner = self.block(body_old.body, body_new.body, [*indents, self.indent if body_old.indent is None else body_old.indent])
            if inner is not None:
                return inner
        return self.pair([old], [new], indents)
