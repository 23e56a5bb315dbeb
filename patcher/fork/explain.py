"""A sentence, and its cause, for an exception a check raised: the known causes by name, anything else by its type and
message, with where in the fork it happened."""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path

from .verdicts import Cause
from .common import inside
from .layers import describe
from .i18n import _


def where(exc: BaseException, tree: Path) -> str:
    """' (at file.py:123)' for the innermost frame of the traceback inside the fork, or ''."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if inside(f.filename, tree)]
    if not frames:
        return ""
    frame = frames[-1]
    return _(" (at {file}:{line})").format(file=Path(frame.filename).resolve().relative_to(tree), line=frame.lineno)


def forward_loop(exc: BaseException, tree: Path) -> str:
    """The fork's layer loop ('BaseModel._predict_once', 'RTDETRDetectionModel.predict', ...) the exception passed
    through, if it did."""
    loops = {"_predict_once": "BaseModel._predict_once", "predict": "the model's own predict loop"}
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if inside(frame.filename, tree) and frame.filename.endswith("tasks.py") and frame.name in loops:
            owner = _class_of(frame.filename, frame.lineno)
            name = f"{owner}.{frame.name}" if owner else loops[frame.name]
            return f"{name} (tasks.py:{frame.lineno})"
    return ""


def _class_of(file: str, line: int) -> str | None:
    """The name of the top-level class whose body holds `line` of `file`, if one does."""
    import ast

    tree = ast.parse(Path(file).read_text(encoding="utf-8"))
    classes = (n for n in tree.body if isinstance(n, ast.ClassDef))
    return next((n.name for n in classes if n.lineno <= line <= (n.end_lineno or n.lineno)), None)


def missing_package(exc: BaseException) -> str | None:
    """The top-level package a ModuleNotFoundError in `exc`'s chain names, unless it is the fork itself."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.split(".")[0] != "ultralytics":
            return exc.name.split(".")[0]
        exc = exc.__cause__ or exc.__context__
    return None


def explain(exc: BaseException, tree: Path, variant: str = "", doc=None, condition: str = "") -> tuple[str, Cause]:
    """The sentence for an exception a check raised, and its cause: `known-limit` for a limit of the release in this
    environment (its loader and torch >= 2.6 load no checkpoint at all), `error` for anything else. A failure inside
    one of the model's layers is told in the terms of its YAML (`doc`, a parsed `yamlfile.ModelYaml`): the row, its
    line, and `condition` (the scale, the batch)."""
    text = f"{type(exc).__name__}: {exc}".strip()
    loop = forward_loop(exc, tree)
    if loop and "list" in text and "Sizes of tensors must match" not in text:
        return _(
            "{loop} hands the backbone's list of maps to the next layer as one input: parse_model gave its maps no "
            "BackboneMap layers (the parse-model-index edit is missing; run `ultrapatch apply`)"
        ).format(loop=loop), Cause.ERROR
    if "forward() missing 1 required positional argument" in text and any(
        f.name == "parse_model" for f in traceback.extract_tb(exc.__traceback__)
    ):
        return _(
            "parse_model calls the backbone its branch already built as if it were a class: the parse-model-index edit "
            "is missing (run `ultrapatch apply`){where}"
        ).format(where=where(exc, tree)), Cause.ERROR
    if isinstance(exc, KeyError) and variant and variant in str(exc):
        return _("parse_model does not know {variant}: ultralytics/nn/tasks.py does not import it (run `ultrapatch apply`){where}").format(
            variant=variant, where=where(exc, tree)
        ), Cause.ERROR
    if isinstance(exc, MemoryError) or "can't allocate memory" in text:
        return _("it ran out of memory{note}: {error}{where}").format(
            note=memory_limit_note(), error=text.splitlines()[0][:200], where=where(exc, tree)
        ), Cause.ERROR
    if "trapz" in text:
        import numpy

        return _("numpy {version} has no np.trapz, which this release calls (numpy < 2.4 has it){where}").format(
            version=numpy.__version__, where=where(exc, tree)
        ), Cause.ERROR
    if "Weights only load failed" in text or "weights_only" in text:
        import torch

        return _(
            "torch {version} loads checkpoints with weights_only=True, and this release's loader does not ask for full "
            "checkpoints: no .pt file loads here, stock or patched (torch < 2.6 can){where}"
        ).format(version=torch.__version__, where=where(exc, tree)), Cause.KNOWN_LIMIT
    in_layer = describe(exc, doc, condition)
    if in_layer is not None:
        return in_layer, Cause.ERROR
    first_line = text.splitlines()[0] if text else type(exc).__name__
    return f"{first_line[:300]}{where(exc, tree)}", Cause.ERROR


def reason_of(exc: BaseException, tree: Path, variant: str = "", doc=None, condition: str = "") -> str:
    """`explain`'s sentence alone, for a reason that is part of another check's sentence."""
    return explain(exc, tree, variant, doc, condition)[0]


def memory_limit_note() -> str:
    try:
        import resource
    except ImportError:
        return ""
    soft = resource.getrlimit(resource.RLIMIT_DATA)[0]
    if soft == resource.RLIM_INFINITY:
        return ""
    return _(
        " (this verification process may hold {gib:.1f} GiB: nine tenths of the machine's memory shared among the "
        "processes; `--jobs 1` gives one process all of it)"
    ).format(gib=soft / (1 << 30))


def thop_missing() -> str:
    """', because ...' when thop, which the fork's get_flops counts with, cannot be imported; else ''."""
    try:
        importlib.import_module("thop")  # imported, not only found: a broken install counts as missing
    except ImportError:
        return _(", because {python} cannot import thop (pip install ultralytics-thop)").format(python=sys.executable)
    return ""
