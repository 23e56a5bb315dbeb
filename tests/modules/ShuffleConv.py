"""A grouped convolution followed by a channel shuffle and a pointwise convolution (after ShuffleNet, Zhang et al.,
2018), as a drop-in for a strided Conv. The file carries its own `Conv` and `autopad`, as tutorial files do: they
stay its private helpers and must never replace Ultralytics' own.

Written for ultrapatch's tests of `apply --module`: a block with input and output channels (role base).
"""

import torch
from torch import nn


def autopad(k, p=None):
    return k // 2 if p is None else p


class Conv(nn.Module):
    """This file's own convolution, batch norm and activation (a helper, not registered)."""

    def __init__(self, c1, c2, k=1, s=1, g=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k), groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class ShuffleConv(nn.Module):
    """Grouped k x k convolution (stride s), channel shuffle, then a 1x1 convolution to c2 channels."""

    def __init__(self, c1, c2, k=3, s=1, groups=4):
        super().__init__()
        self.groups = groups if c1 % groups == 0 else 1
        self.spatial = Conv(c1, c1, k, s, g=self.groups)
        self.pointwise = Conv(c1, c2, 1)

    def forward(self, x):
        x = self.spatial(x)
        b, c, h, w = x.shape
        x = x.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)
        return self.pointwise(x)
