"""Squeeze-and-excitation (Hu et al., 2018): each channel is weighted by a gate computed from the whole map's mean.

Written for ultrapatch's tests of `apply --module`: a block whose output keeps its input's channels (role keep).
"""

import torch
from torch import nn

__all__ = ["SEBlock"]


class SEBlock(nn.Module):
    """Squeeze (global mean), excite (two 1x1 convolutions, a bottleneck of `c1 // r` channels), then scale."""

    def __init__(self, c1, r=16):
        super().__init__()
        hidden = max(8, c1 // r)
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.excite = nn.Sequential(nn.Conv2d(c1, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, c1, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.excite(self.squeeze(x))
