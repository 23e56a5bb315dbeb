"""The model YAMLs, one per template and backbone variant, in the release's own config folders.

`YOLO("yolo11n-MobileNetV3_small_n.yaml")` finds `cfg/models/11/yolo11-MobileNetV3_small_n.yaml` by name from any
directory and builds scale n. A backbone class of the user's module files (`apply --module`) gets the same YAMLs, named
after the class. Families the release lacks (YOLO11 before 8.3.0) are skipped. A user's YAML of the same
name that differs from ours is never overwritten.
"""

from __future__ import annotations

from patcher.backbones import module_backbones
from patcher.edits.base import Context, Edit, NotInRelease, Refused, Workspace
from patcher.i18n import _


class ModelYamls(Edit):
    name = "model-yamls"
    target = "ultralytics/cfg/models/"
    description = "install a model YAML per family and backbone variant, where Ultralytics looks them up by name"

    def apply(self, files: Workspace, ctx: Context) -> None:
        chosen = [*ctx.backbones, *module_backbones(ctx.modules)]
        wanted = [(path, b.render(template, variant)) for b in chosen for template, variant, path in b.yamls(ctx.release)]
        if not wanted:
            raise NotInRelease(_("no family of these backbones' templates"))
        for path, text in wanted:
            current = files.read(path)
            if current is not None and current != text and path not in ctx.ours:
                raise Refused(f"{path} exists and differs from ultrapatch's; ultrapatch never overwrites it: rename it and apply again.")
            files.write(path, text)
