"""Which layer of the YAML an exception came from, and a sentence about it in the YAML's terms.

The fork's own loops hold the answer in their frames: parse_model's loop has `i` and the row it is building, the
forward loops (`_predict_once`, RT-DETR's `predict`) the layer `m` they are running and its input `x`. So a failure
anywhere below them is pinned to one row of the YAML without hooks or a second run: "line 31: layer 7 (EMA, from 6,
args [256]) expects 256 input channels and gets 128 at scale s (width 0.50, max_channels 1024)".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .yamlfile import ModelYaml, Row
from .i18n import _

FORWARD_LOOPS = {"_predict_once", "predict"}


@dataclass
class Culprit:
    """The layer a failure happened in: its index, the module (None when it was being built), and its input."""

    index: int
    module: Any = None
    inputs: Any = None
    building: bool = False
    inner: Any = None  # the innermost torch module the failure passed through, inside the layer


def culprit(exc: BaseException) -> Culprit | None:
    """The innermost layer of the fork's loops that `exc` passed through, or None."""
    found, inner = None, None
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        local = frame.f_locals
        name = frame.f_code.co_name
        if name == "parse_model" and isinstance(local.get("i"), int):
            found, inner = Culprit(local["i"], building=True), None
        elif name in FORWARD_LOOPS and "m" in local and hasattr(local["m"], "i"):
            layer = local.get("head") if "head" in local and _line_mentions(tb, "head(") else local["m"]
            found, inner = Culprit(layer.i, layer, local.get("x")), None
        elif found is not None and _is_module(local.get("self")):
            inner = local["self"]
        tb = tb.tb_next
    if found is not None:
        found.inner = inner
    return found


def _line_mentions(tb, text: str) -> bool:
    import linecache

    return text in linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno)


def _is_module(value) -> bool:
    try:
        import torch

        return isinstance(value, torch.nn.Module)
    except ImportError:
        return False


def describe(exc: BaseException, doc: ModelYaml | None, where: str = "") -> str | None:
    """The sentence for a failure inside a layer, in the YAML's terms; None when no layer of the loops is in it.
    `where` says under which condition it happened ('at scale s (width 0.50, max_channels 1024)')."""
    found = culprit(exc)
    if found is None:
        return None
    row = doc.row(found.index) if doc is not None else None
    named = _named(found, row)
    at = f" {where}" if where else ""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    if found.building:
        return _("{layer} cannot be built{at}: {error}").format(layer=named, at=at, error=text)
    channels = _channels(found, text)
    if channels is not None and channels[0] != channels[1]:
        return _("{layer} expects {expected} input channels and gets {got}{at}").format(layer=named, expected=channels[0], got=channels[1], at=at)
    if "Expected more than 1 value per channel" in text:
        inner = type(found.inner).__name__ if found.inner is not None else "a BatchNorm"
        return _(
            "{layer} cannot train on a batch of one image: its {inner} normalises a 1x1 map, which needs more than one "
            "value per channel (the trainer's last batch can hold one image; pool after the norm, or use a norm without "
            "batch statistics)"
        ).format(layer=named, inner=inner)
    sizes = _map_sizes(found.inputs)
    if type(found.module).__name__ == "Concat" and len(set(sizes)) > 1:
        return _(
            "{layer} joins maps of sizes {sizes}{at}: the layers it joins must be at the same stride (an Upsample or a "
            "stride-2 Conv is missing)"
        ).format(layer=named, sizes=", ".join(sizes), at=at)
    return _("{layer} fails{at}: {error}").format(layer=named, at=at, error=text)


def _named(found: Culprit, row: Row | None) -> str:
    if row is not None:
        return _("line {line}: {row}").format(line=row.line, row=row.describe())
    module = type(found.module).__name__ if found.module is not None else "?"
    return _("layer {index} ({module}, from {source})").format(index=found.index, module=module, source=getattr(found.module, "f", "?"))


CONV_CHANNELS = re.compile(r"to have (\d+) channels, but got (\d+) channels")


def _channels(found: Culprit, text: str) -> tuple[int, int] | None:
    """(the channels the layer takes, the channels it was given), when the failure is a mismatch of channels: torch's
    own numbers for a convolution, else the layer's first convolution, linear or norm against its input."""
    conv = CONV_CHANNELS.search(text)
    if conv:
        return int(conv.group(1)), int(conv.group(2))
    x = found.inputs
    if found.module is None or not hasattr(x, "shape") or x.dim() < 2:
        return None
    if not any(word in text for word in ("channel", "shape", "size", "running_mean", "mat1")):
        return None
    for sub in found.module.modules():
        for attribute in ("in_channels", "in_features", "num_features"):
            expected = getattr(sub, attribute, None)
            if isinstance(expected, int):
                return expected, int(x.shape[1])
    return None


def _map_sizes(inputs) -> list[str]:
    if not isinstance(inputs, (list, tuple)):
        return []
    return [f"{t.shape[-2]}x{t.shape[-1]}" for t in inputs if hasattr(t, "shape") and t.dim() >= 3]


def scale_words(doc: ModelYaml | None, scale: str | None) -> str:
    """'at scale s (width 0.50, max_channels 1024)', or '' when the YAML has no scales."""
    if doc is None or not scale or scale not in doc.scales:
        return ""
    values = doc.scales[scale]
    try:
        depth, width, max_channels = values
        return _("at scale {scale} (depth {depth:.2f}, width {width:.2f}, max_channels {max_channels})").format(
            scale=scale, depth=depth, width=width, max_channels=max_channels
        )
    except (TypeError, ValueError):
        return _("at scale {scale}").format(scale=scale)
