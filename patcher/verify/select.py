"""Which models `ultrapatch verify` and `bench` take: every installed YAML at its first scale, or those a `--model`
glob names (a scale letter in the name picks that scale), each with the stock model of its family it is compared with."""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from patcher import records
from patcher.backbones import BACKBONES, Backbone, Template, backbone_named, installed_timm_models, module_backbones
from patcher.errors import UltrapatchError
from patcher.i18n import _
from patcher.tree import Tree


@dataclass(frozen=True)
class ModelSpec:
    """One model to verify: a YAML at one scale, and the stock model it is compared with (None: no control)."""

    yaml: str  # the file: relative to the tree when it is inside it, else its absolute path
    name: str  # what YOLO()/RTDETR() is given: the file name, with the scale letter where the family has scales
    family: str  # yolo11, yolov8, rtdetr-l, ...: the cost of verifying it, and the report
    task: str
    builder: str  # "YOLO" or "RTDETR"
    variant: str  # the backbone variant of an installed YAML; the file's stem for a YAML of the user's
    stock: str | None
    own: bool = False  # a YAML of the user's (`verify --yaml`), not one ultrapatch installed
    label: str = ""  # how the report names it, where `name` is a path

    @classmethod
    def installed(cls, yaml: str, name: str, template: Template, variant: str, stock: str) -> ModelSpec:
        family = template.stem.split("-")[0] if template.builder == "YOLO" else template.stem
        return cls(yaml, name, family, template.task, template.builder, variant, stock)

    @property
    def shown(self) -> str:
        return self.label or self.name

    def to_json(self) -> dict:
        return {
            "yaml": self.yaml, "name": self.name, "label": self.shown, "family": self.family, "task": self.task,
            "builder": self.builder, "variant": self.variant, "stock": self.stock, "own": self.own,
        }  # fmt: skip


def scales_of(text: str) -> list[str]:
    """The scale letters a model YAML defines, in order (none for a YAML without `scales:`)."""
    block = re.search(r"^scales:.*\n((?:[ \t]+.*\n?)+)", text, re.M)
    return re.findall(r"^[ \t]+([a-z]):", block.group(1), re.M) if block else []


VERSION = r"^(yolo(?:v)?\d+)"  # the family's version at the start of a YOLO file name; the scale letter follows it


def scaled_name(file_name: str, scale: str) -> str:
    """`yolo11-seg-X.yaml` at scale n is `yolo11n-seg-X.yaml`: Ultralytics reads the letter after the version."""
    return re.sub(VERSION, rf"\g<1>{scale}", file_name, count=1)


def _stock(template: Template, scale: str | None) -> str:
    stem = template.stem
    return f"{scaled_name(stem, scale) if scale and stem.startswith('yolo') else stem}.yaml"


def installed_backbones(tree: Tree) -> list[Backbone]:
    """The backbones apply recorded, or, for a tree without a record, those whose module file is in place."""
    record = records.load(tree.root)
    if record is not None and (record.backbones or record.modules):
        return [backbone_named(name) for name in record.backbones] + module_backbones(record.module_files())
    return [b for b in BACKBONES.values() if (tree.root / b.module_path).is_file()] + installed_timm_models(tree.root)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(name.removesuffix(".yaml"), p) for p in patterns)


def select_models(tree: Tree, patterns: tuple[str, ...] = (), backbones: list[Backbone] | None = None) -> list[ModelSpec]:
    """Every installed YAML at its first scale; with patterns, those whose file name (or a scaled name) matches."""
    from patcher.verify.own import recorded_specs

    chosen = backbones if backbones is not None else installed_backbones(tree)
    record = records.load(tree.root) if backbones is None else None
    yours = recorded_specs(tree, sorted(record.yamls), lambda name: not patterns or _matches(name, patterns)) if record else []
    if not chosen and not yours:
        raise UltrapatchError(
            _(
                "no ultrapatch backbone or YAML of yours is installed in {root}; run `ultrapatch apply {root} --backbone "
                "NAME` first, or verify a YAML of yours with --yaml FILE."
            ).format(root=tree.root)
        )
    specs: list[ModelSpec] = []
    for backbone in chosen:
        for template, variant, rel in backbone.yamls(tree.release):
            path = tree.root / rel
            if not path.is_file():
                continue
            file_name = path.name
            scales = scales_of(path.read_text(encoding="utf-8")) if template.stem.startswith("yolo") else []
            first = scales[:1] or [None]
            if not patterns or _matches(file_name, patterns):  # a file's own name means its first scale
                wanted = first
            else:  # a scaled name (yolo11s-...) picks that scale
                wanted = [s for s in scales if _matches(scaled_name(file_name, s), patterns)]
            specs += [
                ModelSpec.installed(rel, scaled_name(file_name, s) if s else file_name, template, variant, _stock(template, s))
                for s in wanted
            ]
    specs += yours
    if not specs:
        command = f"ultrapatch status {shlex.quote(str(tree.root))} --yamls"
        if patterns:
            said = _("no installed model YAML matches {patterns} in {root}; `{command}` lists the installed YAMLs by name.")
        else:
            said = _("no installed model YAML is in place in {root}; `{command}` lists the installed YAMLs by name.")
        raise UltrapatchError(said.format(patterns=" or ".join(repr(p) for p in patterns), root=tree.root, command=command))
    return specs


def variant_glob(variant: str) -> str:
    """The --model glob that selects one variant's models (`*-MobileNetV2` leaves out `...-MobileNetV2_tv`)."""
    return f"*-{variant}"


def variants_note(tree: Tree, specs: list[ModelSpec]) -> str | None:
    """A sentence for a selection that spans several variants of a backbone: each variant's models take about as long
    as a one-variant backbone's, and a user trains one of them; None for a selection of one variant."""
    variants = list(dict.fromkeys(spec.variant for spec in specs))
    if len(variants) < 2:
        return None
    return (
        _(
            "note: {models} models of {count} backbone variants ({variants}); to verify only the one you will train: "
            "{command}"
        ).format(
            models=len(specs), count=len(variants), variants=", ".join(variants),
            command=f"ultrapatch verify {shlex.quote(str(tree.root))} --model '{variant_glob(variants[0])}'",
        )
    )


def check_python(python: str) -> str:
    """The interpreter to run the checks with: an existing executable, else bad input."""
    is_path = os.sep in python or bool(os.altsep and os.altsep in python)  # Windows takes / as well as \\
    found = (python if os.access(python, os.X_OK) else None) if is_path else shutil.which(python)
    if not found or not Path(found).is_file():
        raise UltrapatchError(_("--python {python}: no such interpreter; give the python of the environment you train with.").format(python=python))
    return found
