"""MobileNetV2 in torchvision's layout, for Ultralytics, installed by ultrapatch into ``ultralytics/nn/AddModules/``.

The architecture is the one of the YOLOv3 + MobileNetV2 tutorial, itself torchvision's ``mobilenet_v2``:
``_make_divisible`` channel rounding, a ``width_mult``, and the same module tree, so torchvision's ImageNet state
dict loads into it key for key. What differs:

- it returns four maps, the last layer at strides 4, 8, 16 and 32 (24, 32, 96 and 320 channels at width 1.0), for any
  input whose sides are multiples of 32; the tutorial returns the last three;
- the final 1x1 convolution to 1280 channels (``features.18``) and the classifier feed none of those maps, so they
  are left out: every parameter gets a gradient, as multi-GPU training needs;
- ImageNet weights come from a local file of torchvision's ``mobilenet_v2`` state dict, named by the ``weights``
  argument (the YAML row's second argument) or the ``ULTRAPATCH_MOBILENETV2_WEIGHTS`` environment variable, never
  downloaded. Without either it starts from random weights.

This file depends on torch only; it is copied verbatim into the user's tree.
"""

from __future__ import annotations

import logging
import os

import torch
from torch import nn

__all__ = ["MobileNetV2_tv"]

WEIGHTS_ENV = "ULTRAPATCH_MOBILENETV2_WEIGHTS"
# expansion t, channels c, repeats n, stride s of the first repeat: torchvision's table
INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
FEATURE_STRIDES = (4, 8, 16, 32)
# torchvision keys this backbone has no use for: the 1280-channel head convolution and the classifier
UNUSED_PREFIXES = ("features.18.", "classifier.")
LOGGER = logging.getLogger("ultralytics")

class BatchNorm2d(nn.BatchNorm2d):
    """torch's BatchNorm2d under a type of its own. Ultralytics' `initialize_weights` sets eps 1e-3 and momentum 0.03
    on every module whose type *is* nn.BatchNorm2d, after the model is built: that would change the backbone's own
    normalisation (and a pretrained backbone's outputs, by up to 20%). This one keeps torch's 1e-5 and 0.1."""



def _make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """Round `v` to a multiple of `divisor`, never more than 10% below it (torchvision's rule)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNReLU(nn.Sequential):
    """Conv, BatchNorm, ReLU6, numbered 0, 1, 2 as in torchvision."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size: int = 3, stride: int = 1, groups: int = 1):
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, groups=groups, bias=False),
            BatchNorm2d(out_planes),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand (when t > 1), depthwise 3x3, linear 1x1 projection; a residual when shapes allow."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        self.stride = stride
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(inp, hidden_dim, kernel_size=1))
        layers.extend(
            [
                ConvBNReLU(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
                nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
                BatchNorm2d(oup),
            ]
        )
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2_tv(nn.Module):
    """torchvision's MobileNetV2 feature extractor, four maps at strides 4 to 32, optional ImageNet weights."""

    def __init__(self, width_mult: float = 1.0, weights: str | None = None, round_nearest: int = 8):
        super().__init__()
        input_channel = _make_divisible(32 * width_mult, round_nearest)
        features: list[nn.Module] = [ConvBNReLU(3, input_channel, stride=2)]
        widths, strides = [input_channel], [2]
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            output_channel = _make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                stride = s if i == 0 else 1
                features.append(InvertedResidual(input_channel, output_channel, stride, expand_ratio=t))
                widths.append(output_channel)
                strides.append(strides[-1] * stride)
                input_channel = output_channel
        self.features = nn.Sequential(*features)
        self.taps = [max(i for i, s in enumerate(strides) if s == stride) for stride in FEATURE_STRIDES]
        self.width_list = [widths[i] for i in self.taps]
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        weights = weights or os.environ.get(WEIGHTS_ENV)
        self.pretrained = self.load_torchvision_weights(weights) if weights else None

    def load_torchvision_weights(self, path: str) -> str:
        """Load torchvision's `mobilenet_v2` state dict from `path`; a line saying how many tensors matched.

        Refuses (ValueError, nothing loaded) a file whose keys or shapes do not fit this width.
        """
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - OSError, RuntimeError or UnpicklingError, by torch version
            raise ValueError(f"MobileNetV2_tv: cannot read weights from {path}: {exc}") from exc
        if not isinstance(state, dict):
            raise ValueError(f"MobileNetV2_tv: {path} holds a {type(state).__name__}, not a state dict")
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
        foreign = [k for k in state if k not in own and not k.startswith(UNUSED_PREFIXES)]
        if missing or wrong or foreign:
            examples = ", ".join((missing + wrong + foreign)[:3])
            raise ValueError(
                f"MobileNetV2_tv: {path} does not fit torchvision's mobilenet_v2 at width_mult matching "
                f"{self.width_list}: {len(missing)} tensors missing, {len(wrong)} of another shape, {len(foreign)} "
                f"unknown (e.g. {examples}). Use torchvision.models.mobilenet_v2(...).state_dict() of the same width."
            )
        self.load_state_dict({k: state[k] for k in own})
        skipped = len(state) - len(own)
        message = f"MobileNetV2_tv: loaded {len(own)}/{len(own)} tensors from {path} ({skipped} head tensors unused)"
        LOGGER.info(message)
        return message

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out
