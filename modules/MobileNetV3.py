"""MobileNetV3 backbones for Ultralytics, installed by ultrapatch into ``ultralytics/nn/AddModules/``.

The architecture is layer for layer the one of the YOLO11 + MobileNetV3 tutorial, itself based on
"Searching for MobileNetV3" (https://arxiv.org/abs/1905.02244): the same blocks, attribute names (so the same
state-dict keys) and parameter counts. What differs is how it is built:

- every variant is a class, so ``parse_model`` accepts it under restricted loading (Ultralytics 8.4.100+);
- ``width_list`` is worked out from the configuration, not from a 640x640 forward pass;
- the four returned maps are the last layer at strides 4, 8, 16 and 32, picked by position, so any input whose sides
  are multiples of 32 (640x640, 640x480, ...) gives maps at those strides.

This file depends on torch only; it is copied verbatim into the user's tree.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "MobileNetV3_large_n",
    "MobileNetV3_large_s",
    "MobileNetV3_large_m",
    "MobileNetV3_small_n",
    "MobileNetV3_small_s",
    "MobileNetV3_small_m",
]

RE, HS = nn.ReLU, nn.Hardswish

# in channels, kernel size, expansion size, out channels, squeeze-excitation, activation, stride
CONFIGS = {
    "small": (
        (16, 3, 16, 16, True, RE, 2),
        (16, 3, 72, 24, False, RE, 2),
        (24, 3, 88, 24, False, RE, 1),
        (24, 5, 96, 40, True, HS, 2),
        (40, 5, 240, 40, True, HS, 1),
        (40, 5, 240, 40, True, HS, 1),
        (40, 5, 120, 48, True, HS, 1),
        (48, 5, 144, 48, True, HS, 1),
        (48, 5, 288, 96, True, HS, 2),
        (96, 5, 576, 96, True, HS, 1),
        (96, 5, 576, 96, True, HS, 1),
    ),
    "large": (
        (16, 3, 16, 16, False, RE, 1),
        (16, 3, 64, 24, False, RE, 2),
        (24, 3, 72, 24, False, RE, 1),
        (24, 5, 72, 40, True, RE, 2),
        (40, 5, 120, 40, True, RE, 1),
        (40, 5, 120, 40, True, RE, 1),
        (40, 3, 240, 80, False, HS, 2),
        (80, 3, 200, 80, False, HS, 1),
        (80, 3, 184, 80, False, HS, 1),
        (80, 3, 184, 80, False, HS, 1),
        (80, 3, 480, 112, True, HS, 1),
        (112, 3, 672, 112, True, HS, 1),
        (112, 5, 672, 160, True, HS, 2),
        (160, 5, 960, 160, True, HS, 1),
        (160, 5, 960, 160, True, HS, 1),
    ),
}
LAST_CONV_CHANNELS = {"small": 576, "large": 960}
FEATURE_STRIDES = (4, 8, 16, 32)

class BatchNorm2d(nn.BatchNorm2d):
    """torch's BatchNorm2d under a type of its own. Ultralytics' `initialize_weights` sets eps 1e-3 and momentum 0.03
    on every module whose type *is* nn.BatchNorm2d, after the model is built: that would change the backbone's own
    normalisation (and a pretrained backbone's outputs, by up to 20%). This one keeps torch's 1e-5 and 0.1."""



class SqueezeExitationBlock(nn.Module):
    """Squeeze-and-excitation with a reduction of 4 (paper, section 5.3) and a hard-sigmoid gate."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.pool1 = nn.AdaptiveAvgPool2d(1)
        self.linear1 = nn.Linear(in_channels, in_channels // 4)
        self.act1 = nn.ReLU()
        self.linear2 = nn.Linear(in_channels // 4, in_channels)
        self.act2 = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.flatten(self.pool1(x), 1)
        s = self.act2(self.linear2(self.act1(self.linear1(s))))
        return x * s[:, :, None, None]


class ConvNormActivationBlock(nn.Module):
    """Convolution, batch normalisation and activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        bias: bool = False,
        activation: type[nn.Module] = nn.Hardswish,
    ):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, groups=groups, bias=bias
        )
        self.norm = BatchNorm2d(out_channels)
        self.activation = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv(x)))


class InverseResidualBlock(nn.Module):
    """MobileNetV3 bottleneck: 1x1 expansion (when the widths differ), depthwise conv, optional SE, 1x1 projection."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        expansion_size: int = 6,
        stride: int = 1,
        squeeze_exitation: bool = True,
        activation: type[nn.Module] = nn.Hardswish,
    ):
        super().__init__()
        self.residual = in_channels == out_channels and stride == 1
        self.squeeze_exitation = squeeze_exitation
        self.conv1 = (
            ConvNormActivationBlock(in_channels, expansion_size, (1, 1), activation=activation)
            if in_channels != expansion_size
            else nn.Identity()
        )
        self.depthwise_conv = ConvNormActivationBlock(
            expansion_size,
            expansion_size,
            (kernel_size, kernel_size),
            stride=stride,
            padding=kernel_size // 2,
            groups=expansion_size,
            activation=activation,
        )
        if squeeze_exitation:
            self.se = SqueezeExitationBlock(expansion_size)
        self.conv2 = nn.Conv2d(expansion_size, out_channels, (1, 1), bias=False)
        self.norm = BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.depthwise_conv(self.conv1(x))
        if self.squeeze_exitation:
            y = self.se(y)
        y = self.norm(self.conv2(y))
        return y + x if self.residual else y


class MobileNetV3(nn.Module):
    """MobileNetV3 feature extractor returning four maps, at strides 4, 8, 16 and 32.

    ``depth_multiplier`` scales the stem and every block's input and output widths (not the expansion widths), exactly
    as the tutorial does; ``width_list`` holds the channels of the four returned maps.
    """

    def __init__(self, input_channel: int = 3, config: str = "small", depth_multiplier: float = 1.0):
        super().__init__()
        if config not in CONFIGS:
            raise ValueError(f"MobileNetV3 config must be one of {sorted(CONFIGS)}, not {config!r}")
        scaled = lambda c: int(c * depth_multiplier)  # noqa: E731
        layers: list[nn.Module] = [
            ConvNormActivationBlock(input_channel, scaled(16), (3, 3), stride=2, padding=1, activation=nn.Hardswish)
        ]
        widths, strides = [scaled(16)], [2]
        for c_in, k, expansion, c_out, se, act, s in CONFIGS[config]:
            layers.append(InverseResidualBlock(scaled(c_in), scaled(c_out), k, expansion, s, se, act))
            widths.append(scaled(c_out))
            strides.append(strides[-1] * s)
        layers.append(
            ConvNormActivationBlock(scaled(c_out), scaled(LAST_CONV_CHANNELS[config]), (1, 1), activation=nn.Hardswish)
        )
        widths.append(scaled(LAST_CONV_CHANNELS[config]))
        strides.append(strides[-1])
        self.model = nn.Sequential(*layers)
        # the last layer at each feature stride is the one whose output is returned
        self.taps = [max(i for i, s in enumerate(strides) if s == stride) for stride in FEATURE_STRIDES]
        self.width_list = [widths[i] for i in self.taps]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for i, layer in enumerate(self.model):
            x = layer(x)
            if i in self.taps:
                features.append(x)
        return features


class MobileNetV3_small_n(MobileNetV3):
    """MobileNetV3-small at width 0.25 (pairs with YOLO scale n)."""

    def __init__(self, input_channel: int = 3):
        super().__init__(input_channel, "small", 0.25)


class MobileNetV3_small_s(MobileNetV3):
    """MobileNetV3-small at width 0.5 (pairs with YOLO scale s)."""

    def __init__(self, input_channel: int = 3):
        super().__init__(input_channel, "small", 0.5)


class MobileNetV3_small_m(MobileNetV3):
    """MobileNetV3-small at width 1.0 (pairs with YOLO scale m)."""

    def __init__(self, input_channel: int = 3):
        super().__init__(input_channel, "small", 1.0)


class MobileNetV3_large_n(MobileNetV3):
    """MobileNetV3-large at width 0.25 (pairs with YOLO scale n)."""

    def __init__(self, input_channel: int = 3):
        super().__init__(input_channel, "large", 0.25)


class MobileNetV3_large_s(MobileNetV3):
    """MobileNetV3-large at width 0.5 (pairs with YOLO scale s)."""

    def __init__(self, input_channel: int = 3):
        super().__init__(input_channel, "large", 0.5)


class MobileNetV3_large_m(MobileNetV3):
    """MobileNetV3-large at width 1.0 (pairs with YOLO scale m)."""

    def __init__(self, input_channel: int = 3):
        super().__init__(input_channel, "large", 1.0)
