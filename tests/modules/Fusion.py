"""Fast normalised fusion (EfficientDet's BiFPN, Tan et al., 2020): the maps a layer joins are weighted by learned,
non-negative weights that sum to one. Two forms, as the improvement tutorials use them:

- WeightedFusion takes its inputs' channels as a list, projects each to c2 channels and adds them;
- WeightedConcat takes no channel argument and concatenates the weighted maps (its output: their channels summed).

Written for ultrapatch's tests of `apply --module`: modules that read several maps (role multi).
"""

import torch
from torch import nn

from ultralytics.nn.modules import Conv

__all__ = ["WeightedFusion", "WeightedConcat"]


class WeightedFusion(nn.Module):
    def __init__(self, c1: list, c2, eps=1e-4):
        super().__init__()
        self.project = nn.ModuleList(nn.Identity() if c == c2 else Conv(c, c2, 1) for c in c1)
        self.w = nn.Parameter(torch.ones(len(c1)))
        self.eps = eps
        self.fuse = Conv(c2, c2, 3)

    def forward(self, xs):
        w = torch.relu(self.w)
        w = w / (w.sum() + self.eps)
        return self.fuse(sum(wi * p(x) for wi, p, x in zip(w, self.project, xs)))


class WeightedConcat(nn.Module):
    def __init__(self, dimension=1, eps=1e-4):
        super().__init__()
        self.d = dimension
        self.w = nn.Parameter(torch.ones(2))
        self.eps = eps

    def forward(self, xs):
        w = torch.relu(self.w[: len(xs)])
        w = w / (w.sum() + self.eps)
        return torch.cat([wi * x for wi, x in zip(w, xs)], self.d)
