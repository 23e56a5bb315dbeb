"""A cross-stage-partial block (after CSPNet, Wang et al., 2020, in YOLOv8's C2f arrangement) whose bottlenecks are
depthwise-separable: the input is split, one half goes through n light bottlenecks, and every intermediate map is
concatenated and fused by a 1x1 convolution.

Written for ultrapatch's tests of `apply --module`: a block with input and output channels and a repeat count (role
repeat).
"""

import torch
from torch import nn

from ultralytics.nn.modules import Conv


class LiteBottleneck(nn.Module):
    """Depthwise 3x3 then pointwise 1x1, with a residual connection."""

    def __init__(self, c, shortcut=True):
        super().__init__()
        self.dw = Conv(c, c, 3, 1, g=c)
        self.pw = Conv(c, c, 1, 1)
        self.add = shortcut

    def forward(self, x):
        y = self.pw(self.dw(x))
        return x + y if self.add else y


class C2fLite(nn.Module):
    """C2f with LiteBottleneck blocks."""

    def __init__(self, c1, c2, n=1, shortcut=False, e=0.5):
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(LiteBottleneck(self.c, shortcut) for _ in range(n))

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


__all__ = ["C2fLite"]
