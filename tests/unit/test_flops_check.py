"""The flops check's second count, torch's flop counter, layer by layer; and a layer whose work thop (the fork's
profiler) cannot see, named with both figures."""

from __future__ import annotations

import torch
from torch import nn

from patcher.fork.checks.flops import Flops, _torch_count


class DynamicConv(nn.Module):
    """Its work is a functional convolution with a weight of its own, as dynamic convolutions and upsamplers do:
    thop counts modules and some functions (einsum, matmul), not `F.conv2d`."""

    def __init__(self, c: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c, c, 1, 1))

    def forward(self, x):
        return torch.nn.functional.conv2d(x, self.weight)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.ModuleList([nn.Conv2d(3, 32, 3, padding=1), DynamicConv(32), nn.Conv2d(32, 8, 1)])
        for i, layer in enumerate(self.model):
            layer.i = i

    def forward(self, x):
        for layer in self.model:
            x = layer(x)
        return x


def test_the_uncounted_layer_is_named():
    model = Tiny().eval()
    inputs: dict[int, object] = {}
    hooks = [layer.register_forward_pre_hook(lambda m, args: inputs.setdefault(m.i, args)) for layer in model.model]
    counted = _torch_count(torch, model, torch.rand(1, 3, 64, 64))
    for hook in hooks:
        hook.remove()
    conv = 2 * 3 * 32 * 9 * 64 * 64 / 1e9
    mixing = 2 * 32 * 32 * 64 * 64 / 1e9
    assert abs(counted["0"] - conv) < 1e-9 and abs(counted["1"] - mixing) < 1e-9
    assert abs(counted[""] - (conv + mixing + 2 * 32 * 8 * 64 * 64 / 1e9)) < 1e-9
    missed = Flops().uncounted(model, inputs, counted, counted[""])
    assert [name.split(" ")[:3] for name, _ in missed] == [["layer", "1", "(DynamicConv)"]], missed
    assert missed[0][1] == counted["1"]  # thop counts none of it
