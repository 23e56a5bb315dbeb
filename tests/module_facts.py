"""Facts about a backbone that a test can hold as data: parameter count, every state-dict key and shape, widths,
output shapes at 640x480, and an output fingerprint (the sum and absolute sum of each returned map for a fixed input,
with every tensor filled deterministically from its key name). `facts/make_module_facts.py` records them from the
tutorials' own code; `unit/test_modules.py` compares ultrapatch's modules with them."""

from __future__ import annotations

import hashlib

import torch

SIZE = (640, 480)


def fill(model: torch.nn.Module) -> None:
    """Give every parameter and buffer values that depend only on its key: the same in any two models with the same
    keys and shapes, whatever order or code built them. Weights are scaled by their fan-in so the maps stay finite;
    running variances are positive."""
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                tensor.zero_()
                continue
            generator = torch.Generator().manual_seed(int(hashlib.sha256(key.encode()).hexdigest()[:8], 16))
            values = torch.rand(tensor.shape, generator=generator, dtype=torch.float64)
            if key.endswith("running_var"):
                values = values + 0.5
            elif tensor.dim() > 1:
                values = (values * 2 - 1) / tensor[0].numel() ** 0.5
            else:
                values = values * 0.2 - 0.1
            tensor.copy_(values.to(tensor.dtype))


def image() -> torch.Tensor:
    return torch.rand(1, 3, *SIZE, generator=torch.Generator().manual_seed(0))


def facts(model: torch.nn.Module, forward=None) -> dict:
    """The facts of `model` (`forward(model, x)` where its maps are not what calling it returns)."""
    fill(model)
    model.eval()
    with torch.no_grad():
        maps = (forward or (lambda net, x: net(x)))(model, image())
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "state_dict": [[key, list(tensor.shape)] for key, tensor in model.state_dict().items()],
        "widths": [m.shape[1] for m in maps],
        "shapes": [list(m.shape) for m in maps],
        "sums": [[float(m.sum()), float(m.abs().sum())] for m in maps],
    }
