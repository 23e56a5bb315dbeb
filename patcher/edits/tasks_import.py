"""Edit 2: import the backbone classes, and `BackboneMap`, into `ultralytics/nn/tasks.py`.

`parse_model` resolves a YAML module name with `globals()[m]`, so every variant must be a module-level name of
tasks.py. The import goes right after `from ultralytics.nn.modules import (...)`, which every release has and which
comes after any `from __future__` line. A tutorial's `from ultralytics.nn.AddModules import *` already provides every
name; an explicit import from an earlier apply gets the missing names added to it.
"""

from __future__ import annotations

import libcst as cst
from patcher.edits import match as m

from patcher.edits.base import AnchorMissing, Context, SourceEdit
from patcher.edits.shapes import TASKS, parse

ADDMODULES = "ultralytics.nn.AddModules"


def _dotted(node: cst.BaseExpression | None) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _imported_from_addmodules(stmt: cst.CSTNode) -> tuple[bool, list[str]] | None:
    """For `from ultralytics.nn.AddModules[.x] import ...`: (is a star import, the names); otherwise None."""
    if not m.matches(stmt, m.SimpleStatementLine(body=[m.ImportFrom()])):
        return None
    node = stmt.body[0]  # type: ignore[attr-defined]
    source = "." * len(node.relative) + _dotted(node.module)
    if not (source == ADDMODULES or source.startswith(ADDMODULES + ".") or source.lstrip(".").startswith("AddModules")):
        return None
    if isinstance(node.names, cst.ImportStar):
        return True, []
    return False, [alias.evaluated_alias or alias.evaluated_name for alias in node.names]


def _has_aliases(stmt: cst.CSTNode) -> bool:
    names = stmt.body[0].names  # type: ignore[attr-defined]
    return not isinstance(names, cst.ImportStar) and any(alias.asname for alias in names)


def import_statement(names: list[str]) -> cst.BaseStatement:
    lines = "".join(f"    {name},\n" for name in names)
    return parse(f"from {ADDMODULES} import (  # backbones installed by ultrapatch\n{lines})\n")


class TasksImport(SourceEdit):
    name = "tasks-import"
    target = TASKS
    description = "import the backbone classes into tasks.py, where parse_model looks names up"

    def transform(self, module: cst.Module, ctx: Context) -> cst.Module:
        body = list(module.body)
        existing = [(i, found) for i, stmt in enumerate(body) if (found := _imported_from_addmodules(stmt))]
        if any(star for _, (star, _) in existing):
            return module
        have = {name for _, (_, names) in existing for name in names}
        missing = [name for b in ctx.shipped for name in b.classes if name not in have]
        if not missing:
            return module
        if existing:
            at, (_, names) = existing[-1]
            if _has_aliases(body[at]):  # keep the user's `as` names as written; add ours beside them
                body.insert(at + 1, import_statement(missing))
            else:  # one import of every backbone name, in place
                body[at] = import_statement(names + missing).with_changes(leading_lines=body[at].leading_lines)
            return module.with_changes(body=body)
        anchor = next(
            (
                i
                for i, stmt in enumerate(body)
                if m.matches(stmt, m.SimpleStatementLine(body=[m.ImportFrom(module=m.Attribute(attr=m.Name("modules")))]))
                and _dotted(stmt.body[0].module) == "ultralytics.nn.modules"  # type: ignore[attr-defined]
            ),
            None,
        )
        if anchor is None:
            raise AnchorMissing(self.target, "module level", "`from ultralytics.nn.modules import (...)`")
        body.insert(anchor + 1, import_statement(missing))
        return module.with_changes(body=body)
