"""SimAM (Yang et al., 2021): a parameter-free attention that weights each neuron by the inverse of its energy, an
estimate of how much it stands out from the other neurons of its channel.

Written for ultrapatch's tests of `apply --module`: no channel argument at all (role free).
"""

import torch
from torch import nn


class SimAM(nn.Module):
    def __init__(self, e_lambda=1e-4):
        super().__init__()
        self.e_lambda = e_lambda

    def forward(self, x):
        n = x.shape[2] * x.shape[3] - 1
        d = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
        v = d.sum(dim=(2, 3), keepdim=True) / max(n, 1)
        energy = d / (4 * (v + self.e_lambda)) + 0.5
        return x * torch.sigmoid(energy)
