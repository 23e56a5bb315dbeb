"""The opt-in safe loading of 8.4.100+ (`ULTRALYTICS_SAFE_LOAD=1`) accepts the AddModules classes.

`_SafeLoad` reconstructs only allow-listed classes from a checkpoint, so a `best.pt` holding a backbone pickled as
`ultralytics.nn.AddModules.<file>.<Class>` is refused. The allow-list has had two shapes:

- 8.4.100 scans packages for `nn.Module` subclasses in `_build`; the edit adds one scan of the AddModules package:

      _scan(ul_tasks)  # ultralytics task models
      _scan(importlib.import_module("ultralytics.nn.AddModules"))  # backbones installed by ultrapatch

- later releases admit the `nn.Module` subclasses of a checkpoint's modules by package, in `loading`; the edit adds
  the AddModules package to that set:

      or module.rpartition(".")[0] in {"torch.nn.modules", "ultralytics.nn.modules", "ultralytics.nn.AddModules"}

Only `nn.Module` subclasses are admitted either way, which is all the backbone files define. Releases without
`_SafeLoad` have no safe loading: "not in this release".
"""

from __future__ import annotations

import libcst as cst
from patcher.edits import match as m

from patcher.edits.base import AnchorMissing, Context, NotInRelease, SourceEdit
from patcher.edits.shapes import TASKS, find_all, index_of, method, parse, replace_within, statement, top_level_class
from patcher.i18n import _

PACKAGE = "ultralytics.nn.AddModules"
# `module.rpartition(".")[0] in {"torch.nn.modules", "ultralytics.nn.modules"}`
BY_PACKAGE = m.Comparison(
    left=m.Subscript(value=m.Call(func=m.Attribute(value=m.Name("module"), attr=m.Name("rpartition")))),
    comparisons=[m.ComparisonTarget(operator=m.In(), comparator=m.Set())],
)
SCAN_TASKS = statement(m.Expr(m.Call(func=m.Name("_scan"), args=[m.Arg(m.Name("ul_tasks"))])))
SCAN_ADDMODULES = f'_scan(importlib.import_module("{PACKAGE}"))  # backbones installed by ultrapatch\n'


class SafeLoadAllowList(SourceEdit):
    name = "safe-load"
    target = TASKS
    for_modules = True
    description = "_SafeLoad (8.4.100+): ULTRALYTICS_SAFE_LOAD=1 accepts the AddModules backbone classes"

    def transform(self, module: cst.Module, ctx: Context) -> cst.Module:
        cls = top_level_class(module, "_SafeLoad")
        if cls is None:
            raise NotInRelease(_("no _SafeLoad: opt-in safe loading arrived in 8.4.100"))
        if any(s.evaluated_value == PACKAGE for s in find_all(cls, m.SimpleString())):
            return module
        loading = method(cls, "loading")
        for comparison in find_all(loading, BY_PACKAGE) if loading is not None else []:
            packages = comparison.comparisons[0].comparator
            if "ultralytics.nn.modules" in {getattr(e.value, "evaluated_value", None) for e in packages.elements}:
                elements = list(packages.elements)
                comma = elements[0].comma if len(elements) > 1 else cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
                elements[-1] = elements[-1].with_changes(comma=comma)
                new = packages.with_changes(elements=[*elements, cst.Element(cst.SimpleString(f'"{PACKAGE}"'))])
                return replace_within(module, cls, packages, new)
        build = method(cls, "_build")
        if build is not None:
            for block in find_all(build, m.IndentedBlock()):
                at = index_of(block.body, SCAN_TASKS)
                if at is not None:
                    statements = [*block.body[: at + 1], parse(SCAN_ADDMODULES), *block.body[at + 1 :]]
                    return replace_within(module, cls, block, block.with_changes(body=statements))
        raise AnchorMissing(
            self.target,
            "_SafeLoad",
            '`module.rpartition(".")[0] in {..., "ultralytics.nn.modules"}` in loading, or `_scan(ul_tasks)` in _build',
        )
