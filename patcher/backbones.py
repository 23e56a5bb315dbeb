"""The backbones ultrapatch ships, the model templates that use them, and where those land in a tree.

A backbone is one source file in `modules/` (copied into `ultralytics/nn/AddModules/`); its variants are the names in
that file's `__all__`, read without importing torch. A template is one YAML in `templates/` with the word BACKBONE
where the variant's name goes; it is installed once per variant, in the release's own config folder.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

from patcher.errors import UltrapatchError
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

    def render(self, variant: str) -> str:
        text = template_text(self.file).replace(PLACEHOLDER, variant)
        if self.task in TASK_HEADS:
            head, extra = TASK_HEADS[self.task]
            assert DETECT_HEAD in text, f"{self.file} has no detection head row to turn into {self.task}"
            text = text.replace(DETECT_HEAD, head).replace("\nscales:", f"\n{extra}scales:", 1)
        return text


def _family(stem: str, config_dir: str, since: Version, tasks: tuple[str, ...], file: str | None = None) -> dict:
    """The templates of one family: '<stem>-<task>' keys, with Ultralytics' own task suffixes in the file names."""
    suffix = {"detect": "", "segment": "-seg", "pose": "-pose", "obb": "-obb", "classify": "-cls"}
    return {
        f"{stem}-{task}": Template(
            "classify.yaml" if task == "classify" else file or f"{stem}.yaml",
            f"{stem}{suffix[task]}",
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
    def variants(self) -> tuple[str, ...]:
        return public_names(self.source)

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
            tutorial_fingerprints=frozenset({"f60391a97bb030f9"}),  # seed 000
            summary="MobileNetV3 small/large at widths n, s, m (YOLO11 + MobileNetV3 tutorial)",
        ),
        Backbone(
            name="mobilenetv2",
            module_file="MobileNetV2.py",
            tutorial_fingerprints=frozenset({"36ef13308d7cee28"}),  # seed 002
            summary="MobileNetV2 (RT-DETR + MobileNetV2 tutorial)",
        ),
        Backbone(
            name="mobileone",
            module_file="MobileOne.py",
            tutorial_fingerprints=frozenset({"a1b6577e1507a2e3"}),  # seed 003
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


def select_backbones(names: tuple[str, ...]) -> tuple[Backbone, ...]:
    """Resolve `--backbone` values ('all' selects every one) in registry order, without duplicates."""
    wanted = set()
    for name in names:
        key = name.lower()
        if key == "all":
            wanted.update(BACKBONES)
        elif key in BACKBONES:
            wanted.add(key)
        else:
            raise UltrapatchError(
                f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)} or 'all' (`ultrapatch list` shows them)."
            )
    return tuple(b for key, b in BACKBONES.items() if key in wanted)
