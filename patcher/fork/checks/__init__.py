"""The checks of `ultrapatch verify`, in the order they run on each model: the only list of them. A new check is one
module here and one row below; `ultrapatch verify --list-checks` prints this table."""

from __future__ import annotations

from .amp import Amp
from .base import Check
from .batch1 import Batch1
from .build import Build
from .checkpoint import Checkpoint
from .distill import Distill
from .embed import Embed
from .export import Export
from .forward import Forward
from .freeze import Freeze
from .flops import Flops
from .fuse import Fuse
from .reload import Reload
from .scales import Scales
from .strides import Strides
from .train import Train
from .val import Val
from .weights import Weights
from .yaml_rows import YamlRows

CHECKS: tuple[Check, ...] = (
    YamlRows(),
    Build(),
    Weights(),
    Forward(),
    Strides(),
    Scales(),
    Flops(),
    Train(),
    Batch1(),
    Amp(),
    Embed(),
    Freeze(),
    Distill(),
    Checkpoint(),
    Reload(),
    Fuse(),
    Val(),
    Export(),
)


def by_name(name: str) -> Check:
    return next(check for check in CHECKS if check.name == name)
