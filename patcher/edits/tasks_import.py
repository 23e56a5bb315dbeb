"""Import the backbone classes, and `BackboneMap`, into `ultralytics/nn/tasks.py`.

`parse_model` resolves a YAML module name with `globals()[m]`, so every variant must be a module-level name of
tasks.py. ultrapatch's own import goes right after `from ultralytics.nn.modules import (...)`, which every release has
and which comes after any `from __future__` line:

    from ultralytics.nn.AddModules import (  # backbones installed by ultrapatch
        BackboneMap,
        MobileNetV2,
    )

A tutorial's `from ultralytics.nn.AddModules import *` already provides every name. A later apply adds the missing
names to ultrapatch's own line (the one with that comment) and never edits an import it did not write: rewritten as an
import from the package, a user's `from ultralytics.nn.AddModules.EnergyAttn import EnergyAttn` would bind the
submodule of that name instead of the class.
"""

from __future__ import annotations

import libcst as cst
from patcher.edits import match as m

from patcher.edits.base import AnchorMissing, Context, SourceEdit
from patcher.edits.shapes import TASKS, parse

ADDMODULES = "ultralytics.nn.AddModules"
MARK = "installed by ultrapatch"  # the comment on ultrapatch's own import line


def _dotted(node: cst.BaseExpression | None) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _imported_from_addmodules(stmt: cst.CSTNode, ctx: Context) -> tuple[bool, list[str]] | None:
    """For `from ultralytics.nn.AddModules[.x] import ...`: (a star import of the package itself, the names bound);
    otherwise None. A star import of one of its submodules binds that file's names only: a backbone's classes for
    the backbone's own file, none for a file of the user's."""
    if not m.matches(stmt, m.SimpleStatementLine(body=[m.ImportFrom()])):
        return None
    node = stmt.body[0]  # type: ignore[attr-defined]
    source = "." * len(node.relative) + _dotted(node.module)
    if not (source == ADDMODULES or source.startswith(ADDMODULES + ".") or source.lstrip(".").startswith("AddModules")):
        return None
    if isinstance(node.names, cst.ImportStar):
        stem = source.rpartition(".")[2]
        return source.lstrip(".") in (ADDMODULES, "AddModules"), [
            name for b in ctx.shipped if b.module_file == f"{stem}.py" for name in b.classes
        ] + [name for f in ctx.modules if f.stem == stem for name in f.classes]
    return False, [alias.evaluated_alias or alias.evaluated_name for alias in node.names]


def _ours(stmt: cst.CSTNode) -> bool:
    """ultrapatch's own import line: from the package, plain names, and its comment."""
    node = stmt.body[0]  # type: ignore[attr-defined]
    return (
        not node.relative
        and _dotted(node.module) == ADDMODULES
        and not isinstance(node.names, cst.ImportStar)
        and not any(alias.asname for alias in node.names)
        and MARK in cst.Module([]).code_for_node(stmt)
    )


def import_statement(names: list[str], what: str = "backbones") -> cst.BaseStatement:
    lines = "".join(f"    {name},\n" for name in names)
    return parse(f"from {ADDMODULES} import (  # {what} {MARK}\n{lines})\n")


class TasksImport(SourceEdit):
    name = "tasks-import"
    target = TASKS
    description = "import the backbone classes (and your modules' registered classes, by name) into tasks.py, where parse_model looks names up"
    for_modules = True

    def transform(self, module: cst.Module, ctx: Context) -> cst.Module:
        body = list(module.body)
        existing = [(i, found) for i, stmt in enumerate(body) if (found := _imported_from_addmodules(stmt, ctx))]
        if any(star for _, (star, _) in existing):
            return module
        have = {name for _, (_, names) in existing for name in names}
        wanted = [name for b in ctx.shipped for name in b.classes] + list(ctx.registered())
        missing = [name for name in dict.fromkeys(wanted) if name not in have]
        if not missing:
            return module
        own = [(i, names) for i, (_, names) in existing if _ours(body[i])]
        if own:  # one import of every backbone name, in place
            at, names = own[-1]
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
        body.insert(anchor + 1, import_statement(missing, "backbones" if ctx.has_backbone else "modules"))
        return module.with_changes(body=body)
