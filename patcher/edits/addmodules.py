"""The `ultralytics/nn/AddModules/` package with the chosen backbones' files and `BackboneMap.py`.

No release has the package; many users already have one, often with modules of their own. So: create what is
missing, add a missing `from .<Backbone> import *` line to an existing `__init__.py` and keep everything else in it,
and never overwrite a backbone file that differs from ours, except the tutorial's own version of the same file,
recognised by what it defines and builds, whatever its layout (`patcher.structure`): the same architecture, nothing
of the user's in it.
"""

from __future__ import annotations

from patcher.backbones import ADDMODULES_DIR
from patcher.edits.base import Context, Edit, Refused, Workspace
from patcher.structure import structure_fingerprint

INIT = f"{ADDMODULES_DIR}/__init__.py"
INIT_HEADER = '"""Modules added to Ultralytics: backbones installed by ultrapatch."""\n\n'


class AddModulesPackage(Edit):
    name = "addmodules"
    target = f"{ADDMODULES_DIR}/"
    description = "create ultralytics/nn/AddModules/ with the backbone files and an __init__.py that imports them"
    for_modules = True

    def apply(self, files: Workspace, ctx: Context) -> None:
        for backbone in ctx.shipped:
            current = files.read(backbone.module_path)
            if current == backbone.source:
                continue
            if (
                current is not None
                and backbone.module_path not in ctx.ours
                and structure_fingerprint(current) not in backbone.tutorial_fingerprints
            ):
                raise Refused(
                    f"{backbone.module_path} exists and differs from ultrapatch's {backbone.module_file}. "
                    f"ultrapatch never overwrites it: move it aside (or rename it) and apply again."
                )
            files.write(backbone.module_path, backbone.source)
        for module in ctx.modules:
            current = files.read(module.path)
            if current is not None and current != module.text and module.path not in ctx.ours:
                raise Refused(
                    f"{module.path} exists and differs from your --module file {module.stem}.py. ultrapatch never "
                    f"overwrites it: move it aside (or give your file another name) and apply again."
                )
            files.write(module.path, module.text)
        init = files.read(INIT)
        lines = [] if init is None else [line.strip() for line in init.splitlines()]
        wanted = [b.import_line for b in ctx.shipped] + [
            f.import_line for f in ctx.modules if f"from .{f.stem} import *" not in lines
        ]
        missing = [line for line in wanted if line not in lines]
        if missing:
            head = INIT_HEADER if init is None else init + ("" if init.endswith("\n") or not init else "\n")
            files.write(INIT, head + "".join(f"{line}\n" for line in missing))
