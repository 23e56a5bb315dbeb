"""A small star-operation backbone, written for ultrapatch's tests from the description in "Rewrite the Stars"
(Ma et al., CVPR 2024): a stride-2 stem, then four stages, each a stride-2 convolution and blocks that multiply two
pointwise branches element-wise ("the star operation") between two depthwise 7x7 convolutions, with a residual.

It returns the four stages' maps (strides 4, 8, 16 and 32) and sets `width_list` from its configuration, as a
tutorial's backbone file does. It has no `__all__`: `StarBlock` and `ConvBN` are parts that StarLite builds, so
apply registers StarLite alone.
"""

from torch import nn


class ConvBN(nn.Sequential):
    def __init__(self, c1, c2, k=1, s=1, groups=1, bn=True):
        super().__init__(nn.Conv2d(c1, c2, k, s, k // 2, groups=groups, bias=not bn))
        if bn:
            self.append(nn.BatchNorm2d(c2))


class StarBlock(nn.Module):
    def __init__(self, dim, ratio=3):
        super().__init__()
        self.dw1 = ConvBN(dim, dim, 7, groups=dim)
        self.f1 = ConvBN(dim, ratio * dim, bn=False)
        self.f2 = ConvBN(dim, ratio * dim, bn=False)
        self.g = ConvBN(ratio * dim, dim)
        self.dw2 = ConvBN(dim, dim, 7, groups=dim, bn=False)
        self.act = nn.ReLU6()

    def forward(self, x):
        y = self.dw1(x)
        y = self.act(self.f1(y)) * self.f2(y)  # the star operation
        return x + self.dw2(self.g(y))


class StarLite(nn.Module):
    def __init__(self, base=16, depths=(1, 1, 2, 1)):
        super().__init__()
        self.stem = nn.Sequential(ConvBN(3, base, 3, 2), nn.ReLU6())
        stages, c = [], base
        for i, depth in enumerate(depths):
            width = base * 2**i
            stages.append(nn.Sequential(ConvBN(c, width, 3, 2), *(StarBlock(width) for _ in range(depth))))
            c = width
        self.stages = nn.ModuleList(stages)
        self.width_list = [base * 2**i for i in range(len(depths))]

    def forward(self, x):
        x = self.stem(x)
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps
