"""Model YAMLs of the user's (`apply --yaml FILE`), installed in their family's config folder.

`YOLO("yolo11n-p2-ema.yaml")` then finds the file by name from any directory, as it finds the stock models and the
backbones' YAMLs, and the record keeps the text as given: revert takes it out, and the user's later edits to the
installed copy are kept across a re-apply (merged onto a newer text given with `--yaml` again). A file of that name
that is not ultrapatch's is never overwritten.
"""

from __future__ import annotations

from patcher.edits.base import Context, Edit, Refused, Workspace


class OwnYamls(Edit):
    name = "own-yamls"
    target = "ultralytics/cfg/models/"
    description = "install the model YAMLs given with --yaml in their family's config folder, where Ultralytics finds them by name"

    def asked(self, ctx: Context) -> bool:
        return bool(ctx.yamls)

    def apply(self, files: Workspace, ctx: Context) -> None:
        for path, text in ctx.yamls:
            current = files.read(path)
            if current is not None and current != text and path not in ctx.ours:
                raise Refused(
                    f"{path} exists and differs from your --yaml file; ultrapatch never overwrites it: give your YAML "
                    f"another name and apply again."
                )
            files.write(path, text)
