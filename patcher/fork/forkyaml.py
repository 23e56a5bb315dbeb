"""The model YAML of a model name as the fork itself resolves it, and the fork's answers the `yaml` check asks: which
module names it defines, which of them are backbones (five layer indices each), and how many maps a stock head reads."""

from __future__ import annotations

import importlib
import inspect
from functools import lru_cache
from pathlib import Path

from .yamlfile import ModelYaml, head_levels, layer_indices, parse


def resolve(name: str) -> Path:
    """The file the fork builds `name` from, as its own yaml_model_load finds it: `yolo11n-X.yaml` is `yolo11-X.yaml`
    in the fork's config folders; a path is itself or its scale-free sibling, in the order this release looks. The
    loader keeps only the name, so its file lookups (check_yaml) are watched: the first that finds one is the file."""
    tasks = importlib.import_module("ultralytics.nn.tasks")
    found: list = []
    original = tasks.check_yaml

    def watched(*args, **kwargs):
        result = original(*args, **kwargs)
        found.append(result)
        return result

    tasks.check_yaml = watched
    try:
        tasks.yaml_model_load(name)
    finally:
        tasks.check_yaml = original
    return Path(next(f for f in found if f))


def model_yaml(file: Path, name: str, backbones: frozenset[str] = frozenset()) -> ModelYaml:
    """The YAML `file` of the model `name`, parsed, with parse_model's layer numbering; its path is `name` (the scale
    letter is in it)."""
    doc = parse(file.read_text(encoding="utf-8"), name)
    doc.shown = str(file)
    layer_indices(doc, lambda module: is_backbone(module, backbones))
    return doc


def module_of(name: str):
    """What parse_model makes of a module name: torch.nn's for `nn.X`, torchvision.ops' for `torchvision.ops.X`,
    else a name of tasks.py's namespace; None when there is none."""
    import torch

    if name.startswith("nn."):
        return getattr(torch.nn, name[3:], None)
    if name.startswith("torchvision.ops."):
        return getattr(importlib.import_module("torchvision").ops, name[16:], None)
    return vars(importlib.import_module("ultralytics.nn.tasks")).get(name)


def defines(name: str) -> bool:
    return module_of(name) is not None


@lru_cache(maxsize=None)
def _sets_width_list(cls) -> bool:
    try:
        return "width_list" in inspect.getsource(cls)
    except (OSError, TypeError):
        return False


def is_backbone(name: str, backbones: frozenset[str] = frozenset()) -> bool:
    """A module whose row returns P1-P5 (ultrapatch's backbones, a TimmBackbone, a tutorial's class that sets
    `width_list` as the tutorials' branch reads it)."""
    if name in backbones:
        return True
    module = module_of(name)
    return isinstance(module, type) and _sets_width_list(module)


def missing_hint(name: str, installers: dict[str, str]) -> str:
    """How to get a module the fork lacks: the apply command of the backbone that ships it, or how to register one."""
    if name in installers:
        return f"; it is ultrapatch's: `{installers[name]}`"
    return "; register it in ultralytics/nn/tasks.py (import it there) or check its spelling"


def stock_levels(stock: str | None) -> int | None:
    """How many maps the stock model's head reads (3 for P3-P5), or None without a stock model."""
    if not stock:
        return None
    try:
        return head_levels(resolve(stock).read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - a stock name the fork cannot resolve: the default applies
        return None
