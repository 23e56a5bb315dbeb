"""`apply --module`'s probe: the user's module file imported in the fork's interpreter, and each class built and run by
the role it is to be registered with, to confirm what the role predicts of its output channels.

    python launch.py roles SPEC.json

SPEC names the tree and, per module file, its path, its name in AddModules and its classes with their roles (a role
of null: every role is tried, to name the candidates). After the `environment` event, one `roles` event: per file,
`import_error` and `missing` (a package the interpreter lacks) when it does not import, else per class and tried role
`ok`, the output channels, and the error.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path

from .process import event_stream, open_fork
from .explain import missing_package
from .i18n import _

ROLES = ("base", "repeat", "keep", "free", "multi", "c3k2", "backbone")
SIDE = 256  # a backbone's probe image: strides 8, 16 and 32 give maps of 32, 16 and 8
ARG = 48  # the c2 a multi-input module is offered, distinct from every rule on inputs of 16 and 24 (or 16 and 16)
C1, C2 = 16, 32  # small channel counts: every role's prediction differs between them


def main(argv: list[str]) -> int:
    emit = event_stream()
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    if open_fork(spec, emit) is None:
        return 0
    emit(event="roles", files={entry["stem"]: probe_file(entry) for entry in spec["modules"]})
    return 0


def _package() -> None:
    """`ultralytics.nn.AddModules`, for the file's relative imports: the tree's own package, or an empty stand-in."""
    name = "ultralytics.nn.AddModules"
    try:
        importlib.import_module(name)
    except ImportError:
        stand_in = types.ModuleType(name)
        stand_in.__path__ = []
        sys.modules[name] = stand_in


def probe_file(entry: dict) -> dict:
    import torch

    _package()
    name = f"ultralytics.nn.AddModules.{entry['stem']}"
    spec = importlib.util.spec_from_file_location(name, entry["file"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the reason is the answer
        return {"import_error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300], "missing": missing_package(exc)}
    classes = {}
    for cls_name, role in entry["classes"]:
        cls = getattr(module, cls_name)
        classes[cls_name] = {r: try_role(torch, cls, r) for r in ([role] if role else ROLES)}
    return {"classes": classes}


def try_role(torch, cls, role: str) -> dict:
    """Build `cls` as `role` predicts its constructor, run it on a batch of two 16-channel maps: its output channels,
    and whether they are what the role says."""
    if role == "multi":
        return try_multi(torch, cls)
    if role == "backbone":
        return try_backbone(torch, cls)
    if role == "c3k2":
        return {**try_plain(torch, cls, role), "params": c3k2_params()}
    return try_plain(torch, cls, role)


def c3k2_params() -> list[str]:
    """The names of this release's `C3k2.__init__` parameters after self: what a subclass's positional call meets."""
    import inspect

    from ultralytics.nn.modules.block import C3k2

    return list(inspect.signature(C3k2.__init__).parameters)[1:]


def try_plain(torch, cls, role: str) -> dict:
    args = {"base": (C1, C2), "repeat": (C1, C2, 1), "c3k2": (C1, C2, 1), "keep": (C1,), "free": ()}[role]
    expected = {"base": C2, "repeat": C2, "c3k2": C2, "keep": C1, "free": C1}[role]
    shown = f"{cls.__name__}({', '.join(map(str, args))})"
    try:
        block = cls(*args).eval()
        with torch.no_grad():
            out = block(torch.rand(2, C1, 32, 32))
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "built": shown, "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
    if not hasattr(out, "shape") or out.dim() != 4:
        return {"ok": False, "built": shown, "error": _("its output is {kind}, not one map").format(kind=type(out).__name__)}
    channels = int(out.shape[1])
    return {"ok": channels == expected, "built": shown, "channels": channels, "expected": expected}


def try_multi(torch, cls) -> dict:
    """A module that joins several maps: built with its inputs' channels as a list (and a c2 of 48) or with nothing,
    run on two maps of 16 and 24 channels (or 16 and 16, for one that adds them): the kind of registration that gives
    its output channels (the sum, the first input's, the last's, or c2)."""
    error = _("it builds and runs in no form apply knows")
    for channels in ((16, 24), (16, 16)):
        for listed, extra in ((True, (ARG,)), (True, ()), (False, ())):
            args = ([list(channels)] if listed else []) + list(extra)
            shown = f"{cls.__name__}({', '.join(map(str, args))})"
            try:
                block = cls(*args).eval()
                with torch.no_grad():
                    out = block([torch.rand(2, c, 32, 32) for c in channels])
            except Exception as exc:  # noqa: BLE001 - the next form may fit
                error = f"{shown}: {type(exc).__name__}: {exc}".splitlines()[0][:300]
                continue
            got = int(out.shape[1]) if hasattr(out, "shape") and out.dim() == 4 else None
            rules = [("arg", extra and got == ARG), ("sum", got == sum(channels)), ("first", got == channels[0]), ("last", got == channels[-1])]
            rule = next((name for name, fits in rules if fits), None)
            if rule is None or not listed and rule not in ("sum", "first"):
                error = _("{shown}: its output has {got} channels, which follow from no rule apply knows").format(shown=shown, got=got)
                continue
            return {"ok": True, "built": shown, "channels": got, "kind": f"{'multi' if listed else 'join'}-{rule}"}
    return {"ok": False, "built": cls.__name__, "error": error}


def try_backbone(torch, cls) -> dict:
    """Build `cls()` as parse_model's backbone branch does and run it on one 256x256 image: its `width_list` must be
    the channels of the maps it returns, a list of two to four whose last three are at strides 8, 16 and 32 (P3-P5,
    what every head reads), each the previous one's stride doubled."""
    shown = f"{cls.__name__}()"
    try:
        block = cls().eval()
        widths = [int(w) for w in block.width_list]
        with torch.no_grad():
            maps = block(torch.rand(1, 3, SIDE, SIDE))
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "built": shown, "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
    if not isinstance(maps, (list, tuple)) or not all(hasattr(x, "shape") and x.dim() == 4 for x in maps):
        return {"ok": False, "built": shown, "error": _("it returns {kind}, not a list of maps").format(kind=type(maps).__name__)}
    channels = [int(x.shape[1]) for x in maps]
    strides = [SIDE // int(x.shape[-1]) for x in maps]
    if channels != widths:
        error = _("its width_list is {widths} but its maps have {channels} channels").format(widths=widths, channels=channels)
    elif not 3 <= len(maps) <= 4 or strides[-3:] != [8, 16, 32] or strides != [strides[-1] >> (len(maps) - 1 - i) for i in range(len(maps))]:
        error = _("its maps are at strides {strides}; a backbone returns the last maps of P2 (optional) to P5: strides 4, 8, 16, 32").format(strides=strides)
    else:
        return {"ok": True, "built": shown, "channels": channels, "strides": strides}
    return {"ok": False, "built": shown, "error": error, "channels": channels}
