"""MobileNetV2 backbone for Ultralytics, installed by ultrapatch into ``ultralytics/nn/AddModules/``.

The architecture is layer for layer the one of the RT-DETR + MobileNetV2 tutorial, after "MobileNetV2:
Inverted Residuals and Linear Bottlenecks" (https://arxiv.org/abs/1801.04381): the same blocks, attribute names
(so the same state-dict keys) and 1,811,712 parameters, returning the 24, 32, 96 and 320-channel maps. What
differs is how it is built:

- it is a class whose ``width_list`` is known from the configuration, not from a 640x640 forward pass;
- the four returned maps are the last layer at strides 4, 8, 16 and 32, picked by position rather than by channel
  count, so any input whose sides are multiples of 32 gives maps at those strides.

This file depends on torch only; it is copied verbatim into the user's tree.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MobileNetV2"]

# in channels, expansion factor, out channels, repeats, stride of the first repeat
CONFIG = (
    (32, 1, 16, 1, 1),
    (16, 6, 24, 2, 2),
    (24, 6, 32, 3, 2),
    (32, 6, 64, 4, 2),
    (64, 6, 96, 3, 1),
    (96, 6, 160, 3, 2),
    (160, 6, 320, 1, 1),
)
FEATURE_STRIDES = (4, 8, 16, 32)

class BatchNorm2d(nn.BatchNorm2d):
    """torch's BatchNorm2d under a type of its own. Ultralytics' `initialize_weights` sets eps 1e-3 and momentum 0.03
    on every module whose type *is* nn.BatchNorm2d, after the model is built: that would change the backbone's own
    normalisation (and a pretrained backbone's outputs, by up to 20%). This one keeps torch's 1e-5 and 0.1."""



class ConvNormReLUBlock(nn.Module):
    """Convolution, batch normalisation and activation (ReLU6 unless told otherwise)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        bias: bool = False,
        activation: type[nn.Module] = nn.ReLU6,
    ):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, groups=groups, bias=bias
        )
        self.bn = BatchNorm2d(out_channels)
        self.activation = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.bn(self.conv(x)))


class InverseResidualBlock(nn.Module):
    """1x1 expansion (an identity when the expansion factor is 1), 3x3 depthwise, linear 1x1 projection."""

    def __init__(self, in_channels: int, out_channels: int, expansion_factor: int = 6, stride: int = 1):
        super().__init__()
        hidden_channels = in_channels * expansion_factor
        self.residual = in_channels == out_channels and stride == 1
        self.conv1 = (
            ConvNormReLUBlock(in_channels, hidden_channels, (1, 1)) if in_channels != hidden_channels else nn.Identity()
        )
        self.depthwise_conv = ConvNormReLUBlock(
            hidden_channels, hidden_channels, (3, 3), stride=stride, padding=1, groups=hidden_channels
        )
        self.conv2 = ConvNormReLUBlock(hidden_channels, out_channels, (1, 1), activation=nn.Identity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.depthwise_conv(self.conv1(x)))
        return y + x if self.residual else y


class MobileNetV2(nn.Module):
    """MobileNetV2 feature extractor returning four maps, at strides 4, 8, 16 and 32 (24, 32, 96, 320 channels)."""

    def __init__(self, input_channel: int = 3):
        super().__init__()
        self.model = nn.Sequential(ConvNormReLUBlock(input_channel, 32, (3, 3), stride=2, padding=1))
        widths, strides = [32], [2]
        for c_in, expansion, c_out, repeats, stride in CONFIG:
            for _ in range(repeats):
                self.model.append(InverseResidualBlock(c_in, c_out, expansion, stride))
                widths.append(c_out)
                strides.append(strides[-1] * stride)
                c_in, stride = c_out, 1
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
