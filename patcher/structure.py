"""Recognise a module by what it defines and builds, not by its text.

A user who followed a tutorial by hand has its backbone file with their own layout: re-indented, docstrings or type
annotations dropped, a call joined onto one line, `x = self.bn(self.conv(x))` written as two statements. The
fingerprint here is a hash of the module's syntax tree after the changes that cannot alter the network are undone:
comments and formatting are not in the tree; docstrings and annotations are removed; and a temporary that is
assigned and then used once, by the very next simple statement, is put back into that use, so that a nested
expression and its split into statements read the same. Every class, function, layer construction, argument, number
and forward step stays in it, so anything that builds a different network hashes differently. Two things that
cannot build anything are left out as well: a module-level `if __name__ == "__main__":` block (a tutorial's test
run), and an assignment to a name that nothing reads (no name, attribute or string of that spelling anywhere in the
file) whose value is a pure expression: literals, names, arithmetic, and calls of `int`, `round`, `min` and the like.
"""

from __future__ import annotations

import ast
import hashlib

SIMPLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Return)


def structure_fingerprint(source: str) -> str | None:
    """The structural hash of a Python module, or None when it does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    tree = _Normalise().visit(_without_dead_code(tree))
    text = ast.dump(tree, annotate_fields=False, include_attributes=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class _Normalise(ast.NodeTransformer):
    def visit_Module(self, node: ast.Module) -> ast.Module:
        self.generic_visit(node)
        node.body = _without_docstring(node.body)
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        self.generic_visit(node)
        node.body = _without_docstring(node.body) or [ast.Pass()]
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        self.generic_visit(node)
        node.returns = None
        node.body = _inline(_without_docstring(node.body) or [ast.Pass()], node)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.annotation = None
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST | None:
        self.generic_visit(node)
        if node.value is None:  # a bare declaration: no code
            return None
        return ast.Assign(targets=[node.target], value=node.value)


def _without_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return body[1:]
    return body


def _loads(node: ast.AST, name: str) -> list[ast.Name]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)]


def _stores(node: ast.AST, name: str) -> bool:
    targets = node.targets if isinstance(node, ast.Assign) else []
    return any(isinstance(t, ast.Name) and t.id == name for t in targets)


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.Name, value: ast.expr):
        self.target, self.value = target, value

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return self.value if node is self.target else node


def _inline(body: list[ast.stmt], function: ast.AST) -> list[ast.stmt]:
    """Put single-use temporaries back into their use, in this statement list and every nested one."""
    for statement in body:
        for name in ("body", "orelse", "finalbody"):
            nested = getattr(statement, name, None)
            if isinstance(nested, list) and nested and not isinstance(statement, (ast.FunctionDef, ast.ClassDef)):
                setattr(statement, name, _inline(nested, function))
    changed = True
    while changed:
        changed = False
        for i in range(len(body) - 1):
            first, then = body[i], body[i + 1]
            if not (isinstance(first, ast.Assign) and len(first.targets) == 1 and isinstance(first.targets[0], ast.Name)):
                continue
            name = first.targets[0].id
            uses = _loads(then, name)
            if len(uses) != 1 or not isinstance(then, SIMPLE):
                continue
            dead_after = _stores(then, name) or isinstance(then, ast.Return) or len(_loads(function, name)) == 1
            if dead_after:
                body[i + 1] = _Replace(uses[0], first.value).visit(then)
                del body[i]
                changed = True
                break
    return body


PURE_CALLS = frozenset({"int", "float", "round", "min", "max", "abs", "len", "str", "bool", "pow", "divmod", "sum"})
PURE_NODES = (ast.Constant, ast.Name, ast.Load, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Tuple,
              ast.List, ast.Attribute, ast.Subscript, ast.Slice, ast.operator, ast.unaryop, ast.boolop, ast.cmpop)


def _pure(node: ast.expr) -> bool:
    """An expression that computes a value and does nothing else: no call but of PURE_CALLS, no lambda, no walrus."""
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            if not (isinstance(child.func, ast.Name) and child.func.id in PURE_CALLS) or child.keywords:
                return False
        elif not isinstance(child, PURE_NODES):
            return False
    return True


def _main_block(node: ast.stmt) -> bool:
    """`if __name__ == "__main__":`, either way round."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare) or len(node.test.ops) != 1:
        return False
    sides = [node.test.left, node.test.comparators[0]]
    names = [n.id for n in sides if isinstance(n, ast.Name)]
    texts = [n.value for n in sides if isinstance(n, ast.Constant)]
    return isinstance(node.test.ops[0], ast.Eq) and names == ["__name__"] and texts == ["__main__"]


def _without_dead_code(tree: ast.Module) -> ast.Module:
    """The module without its `__main__` block and its unread pure assignments (see the module's docstring)."""
    tree.body = [statement for statement in tree.body if not _main_block(statement)]
    read = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Load, ast.Del)):
            read.add(node.id)
        elif isinstance(node, ast.Attribute):
            read.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            read.add(node.value)

    def dead(statement: ast.stmt) -> bool:
        return (
            isinstance(statement, ast.Assign)
            and all(isinstance(t, ast.Name) and t.id not in read for t in statement.targets)
            and _pure(statement.value)
        )

    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            block = getattr(node, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                kept = [statement for statement in block if not dead(statement)]
                setattr(node, name, kept or [ast.Pass()])
    return tree
