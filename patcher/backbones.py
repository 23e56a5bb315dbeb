"""The backbones ultrapatch ships, the model templates that use them, and where those land in a tree.

A backbone is one source file in `modules/` (copied into `ultralytics/nn/AddModules/`); its variants are the names in
that file's `__all__`, read without importing torch. A template is one YAML in `templates/` with the word BACKBONE
where the variant's name goes; it is installed once per variant, in the release's own config folder.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

from patcher.errors import UltrapatchError
from patcher.i18n import _
from patcher.tree import Version

ADDMODULES_DIR = "ultralytics/nn/AddModules"
PLACEHOLDER = "BACKBONE"


def _shipped(package: str, folder: str, file_name: str) -> str:
    """A file of `package` as installed (patcher.modules, patcher.templates), or of the checkout's top-level
    `folder` when ultrapatch runs from a source checkout without being installed."""
    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        root = Path(__file__).resolve().parent.parent / folder
    return (root / file_name).read_text(encoding="utf-8")


def module_text(file_name: str) -> str:
    """The text of a shipped backbone file."""
    return _shipped("patcher.modules", "modules", file_name)


def template_text(file_name: str) -> str:
    """The text of a shipped model template."""
    return _shipped("patcher.templates", "templates", file_name)


def public_names(source: str) -> tuple[str, ...]:
    """The names a module's `__all__` lists (a module without one exports nothing we rely on)."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    return ()


# How the detection head row becomes another task's: (the head and its arguments, an extra parameter line).
TASK_HEADS = {
    "segment": ("Segment, [nc, 32, 256]] # Segment", ""),
    "pose": ("Pose, [nc, kpt_shape]] # Pose", "kpt_shape: [17, 3] # number of keypoints, number of dims (x, y, visible)\n"),
    "obb": ("OBB, [nc, 1]] # OBB", ""),
}
DETECT_HEAD = "Detect, [nc]] # Detect"


@dataclass(frozen=True)
class Template:
    """A model YAML for one family and task, installed as `<stem>-<Variant>.yaml` in `cfg/models/<config_dir>/`.

    The template file holds the detection model (or the classification one); segment, pose and obb swap the last
    row's head, as the stock YAMLs of each family do.
    """

    file: str
    stem: str
    config_dir: str
    since: Version
    builder: str  # the Ultralytics class that builds it: "YOLO" or "RTDETR"
    task: str

    def installed_path(self, variant: str) -> str:
        return f"ultralytics/cfg/models/{self.config_dir}/{self.stem}-{variant}.yaml"

    def render(self, variant: str, row: str | None = None) -> str:
        """The YAML for `variant`; `row` replaces the backbone row's module and arguments (`Variant, []` by default)."""
        text = template_text(self.file).replace(f"{PLACEHOLDER}, []", row or f"{variant}, []").replace(PLACEHOLDER, variant)
        if self.task in TASK_HEADS:
            head, extra = TASK_HEADS[self.task]
            assert DETECT_HEAD in text, f"{self.file} has no detection head row to turn into {self.task}"
            text = text.replace(DETECT_HEAD, head).replace("\nscales:", f"\n{extra}scales:", 1)
        return text


TASK_SUFFIX = {"detect": "", "segment": "-seg", "pose": "-pose", "obb": "-obb", "classify": "-cls"}  # Ultralytics' names


def _family(stem: str, config_dir: str, since: Version, tasks: tuple[str, ...], file: str | None = None) -> dict:
    """The templates of one family: '<stem>-<task>' keys, with Ultralytics' own task suffixes in the file names."""
    return {
        f"{stem}-{task}": Template(
            "classify.yaml" if task == "classify" else file or f"{stem}.yaml",
            f"{stem}{TASK_SUFFIX[task]}",
            config_dir,
            since,
            "RTDETR" if stem.startswith("rtdetr") else "YOLO",
            task,
        )
        for task in tasks
    }


ALL_TASKS = ("detect", "segment", "pose", "obb", "classify")
TEMPLATES: dict[str, Template] = {
    **_family("yolov3", "v3", (8, 1, 0), ("detect",)),
    **_family("yolov8", "v8", (8, 1, 0), ALL_TASKS),
    **_family("yolo11", "11", (8, 3, 0), ALL_TASKS),  # C3k2 and C2PSA arrived with YOLO11
    **_family("yolo26", "26", (8, 4, 0), ("detect",)),
    **_family("rtdetr-l", "rt-detr", (8, 1, 0), ("detect",)),
}


@dataclass(frozen=True)
class Backbone:
    """One `--backbone` choice: a module file and its variants, each installed with every family's templates.

    `tutorial_fingerprints` identify the tutorials' own versions of the same file, which apply may replace: they are
    the same architecture, and a user who followed a tutorial by hand has nothing of their own in them. They are
    `patcher.structure` fingerprints (what the file defines and builds, whatever its layout) of the seeds' code as
    re-indented in the shared reference folder; a test recomputes them from there.
    """

    name: str
    module_file: str
    tutorial_fingerprints: frozenset[str] = frozenset()
    summary: str = ""

    @cached_property
    def source(self) -> str:
        return module_text(self.module_file)

    @cached_property
    def classes(self) -> tuple[str, ...]:
        """The classes tasks.py imports and parse_model's backbone branch builds."""
        return public_names(self.source)

    @cached_property
    def variants(self) -> tuple[str, ...]:
        """The names in the installed YAMLs' file names, one YAML per family and task each: the classes themselves,
        except for a timm model (one class, TimmBackbone, and the model's name)."""
        return self.classes

    def row(self, variant: str) -> str:
        """The module and arguments of a YAML's backbone row."""
        return f"{variant}, []"

    def render(self, template: Template, variant: str) -> str:
        return template.render(variant, self.row(variant))

    @property
    def module_path(self) -> str:
        return f"{ADDMODULES_DIR}/{self.module_file}"

    @property
    def import_line(self) -> str:
        """The line of `AddModules/__init__.py` that exports this backbone."""
        return f"from .{self.module_file.removesuffix('.py')} import *"

    def yamls(self, release: Version) -> list[tuple[Template, str, str]]:
        """(template, variant, installed path) for every YAML this backbone installs on `release`."""
        return [
            (template, variant, template.installed_path(variant))
            for template in TEMPLATES.values()
            if release >= template.since
            for variant in self.variants
        ]


BACKBONES = {
    b.name: b
    for b in (
        Backbone(
            name="mobilenetv3",
            module_file="MobileNetV3.py",
            tutorial_fingerprints=frozenset({"e49c1fa15565a7ac"}),  # the YOLO11 + MobileNetV3 tutorial
            summary="MobileNetV3 small/large at widths n, s, m (YOLO11 + MobileNetV3 tutorial)",
        ),
        Backbone(
            name="mobilenetv2",
            module_file="MobileNetV2.py",
            tutorial_fingerprints=frozenset({"08bb94885ce6114c"}),  # the RT-DETR + MobileNetV2 tutorial
            summary="MobileNetV2 (RT-DETR + MobileNetV2 tutorial)",
        ),
        Backbone(
            name="mobileone",
            module_file="MobileOne.py",
            tutorial_fingerprints=frozenset({"99b2112e746d34e6"}),  # the YOLOv8 + MobileOne tutorial
            summary="MobileOne s0-s4, reparameterised by model.fuse() (YOLOv8 + MobileOne tutorial)",
        ),
        Backbone(
            name="mobilenetv2-tv",
            module_file="MobileNetV2_tv.py",
            summary="MobileNetV2 in torchvision's layout: width_mult, local ImageNet weights (YOLOv3 + MobileNetV2 tutorial)",
        ),
    )
}


# Not a `--backbone` choice: the file every backbone needs, installed with the first and taken out with the last.
BACKBONE_MAP = Backbone(
    name="backbone-map",
    module_file="BackboneMap.py",
    summary="the zero-parameter layers that give each of a backbone's maps its YAML index",
)


TIMM_PREFIX = "timm:"
# Ultralytics' own model YAMLs whose names a timm model's YAML would take (tests/unit checks them on the releases).
STOCK_STEMS = frozenset({"yolov8-cls-resnet50", "yolov8-cls-resnet101", "yolo11-cls-resnet18"})
TIMM_NAME = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)?\Z")  # timm's model names, optionally with a weights tag


@dataclass(frozen=True)
class TimmModel(Backbone):
    """`--backbone timm:NAME`: the one TimmBackbone class, and YAMLs named after the timm model, whose backbone row
    is `TimmBackbone, ["NAME", True]` (timm's ImageNet weights; a path instead of True names a local file)."""

    model: str = ""

    @cached_property
    def variants(self) -> tuple[str, ...]:
        return (self.model,)

    def row(self, variant: str) -> str:
        return f'TimmBackbone, ["{self.model}", True]'

    def yamls(self, release: Version) -> list[tuple[Template, str, str]]:
        """As for any backbone, except where Ultralytics ships a YAML of the same name (its own TorchVision or
        ResNet classifiers): there the file is `<family>-timm_NAME.yaml`, so that neither hides the other."""
        result = []
        for template, variant, _path in super().yamls(release):
            if f"{template.stem}-{variant}" in STOCK_STEMS:
                variant = f"timm_{variant}"
            result.append((template, variant, template.installed_path(variant)))
        return result


@dataclass(frozen=True)
class ModuleBackbone(Backbone):
    """A backbone class of a module file of the user's (`apply --module`, a class that sets `width_list`): the same
    YAMLs as a shipped backbone's, named after the class. Its file is installed and imported as a module file is."""

    cls: str = ""

    @cached_property
    def classes(self) -> tuple[str, ...]:
        return (self.cls,)


def module_backbones(files) -> list[ModuleBackbone]:
    """The backbones of module files (`patcher.edits.base.ModuleFile`s, from a record or an apply)."""
    return [ModuleBackbone(name=f"{f.stem}.py:{name}", module_file=f"{f.stem}.py", cls=name) for f in files for name in f.having("backbone")]


def timm_backbone(model: str) -> TimmModel:
    if not TIMM_NAME.match(model):
        raise UltrapatchError(
            _(
                "{name} is not a timm model name: lower-case letters, digits and _ (with an optional '.tag'), e.g. "
                "timm:resnet18; `{command}` lists them."
            ).format(name=TIMM_PREFIX + repr(model), command="python -c \"import timm; print(timm.list_models('*net*'))\"")
        )
    return TimmModel(
        name=f"{TIMM_PREFIX}{model}",
        module_file="TimmBackbone.py",
        summary=f"timm's {model} (features_only), with timm's ImageNet weights or a local file",
        model=model,
    )


def backbone_named(name: str) -> Backbone:
    """The backbone a `--backbone` value or a record's entry names."""
    key = name.strip()
    if key.lower().startswith(TIMM_PREFIX):
        return timm_backbone(key[len(TIMM_PREFIX) :])
    if key.lower() in BACKBONES:
        return BACKBONES[key.lower()]
    raise UltrapatchError(
        _("unknown backbone {name}; choose from {names}, 'all', or timm:NAME for a timm model (`ultrapatch list` shows them).").format(
            name=repr(name), names=", ".join(BACKBONES)
        )
    )


def backbone_order(name: str) -> tuple[int, str]:
    """The order backbones are recorded and installed in: ultrapatch's own in registry order, then timm models."""
    return (list(BACKBONES).index(name), "") if name in BACKBONES else (len(BACKBONES), name)


def select_backbones(names: tuple[str, ...]) -> tuple[Backbone, ...]:
    """Resolve `--backbone` values ('all' selects ultrapatch's own) in their order, without duplicates."""
    wanted: dict[str, Backbone] = {}
    for name in names:
        chosen = BACKBONES.values() if name.strip().lower() == "all" else (backbone_named(name),)
        wanted.update((b.name, b) for b in chosen)
    return tuple(wanted[key] for key in sorted(wanted, key=backbone_order))


def load_module(backbone: Backbone):
    """The backbone's module file imported into this process (it needs torch): the shipped package's, or the
    checkout's `modules/` folder when ultrapatch runs from a source checkout."""
    import importlib
    import importlib.util

    name = backbone.module_file.removesuffix(".py")
    try:
        return importlib.import_module(f"patcher.modules.{name}")
    except ModuleNotFoundError:
        path = Path(__file__).resolve().parent.parent / "modules" / backbone.module_file
        spec = importlib.util.spec_from_file_location(f"ultrapatch_modules_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


def check_timm_models(backbones: tuple[Backbone, ...]) -> str | None:
    """Refuse (UltrapatchError) a timm model that cannot be a backbone: a name timm does not know (with close names),
    a model that needs a fixed input size, one without maps at strides 8, 16 and 32. The checks need torch and timm in
    this interpreter; without them, a note that `verify`'s build will make them, and None when they were made."""
    models = [b for b in backbones if isinstance(b, TimmModel)]
    if not models:
        return None
    try:
        module = load_module(models[0])
        module._timm()
    except ImportError:
        return (
            f"note: timm is not installed beside ultrapatch, so {', '.join(b.name for b in models)} could not be "
            f"checked here; `ultrapatch verify` builds it in the fork's interpreter (which needs `pip install timm`)."
        )
    for backbone in models:
        try:
            module.feature_plan(backbone.model)
        except ValueError as exc:
            raise UltrapatchError(f"{backbone.name}: {exc}") from None
    return None


TIMM_ROW = re.compile(r"TimmBackbone\s*,\s*\[\s*[\"']([a-z0-9_.]+)[\"']")


def installed_timm_models(root: Path) -> list[TimmModel]:
    """The timm models whose YAMLs are in the tree at `root` (for a tree without a record: a hand copy of one)."""
    if not (root / ADDMODULES_DIR / "TimmBackbone.py").is_file():
        return []
    names = set()
    for path in sorted((root / "ultralytics/cfg/models").glob("*/*.yaml")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if "TimmBackbone" in text:
            names.update(TIMM_ROW.findall(text))
    return [timm_backbone(name) for name in sorted(names)]
