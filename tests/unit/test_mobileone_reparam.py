"""MobileOne's switch_to_deploy folds every branch into two convolutions without changing eval-mode outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from patcher.modules.MobileOne import MobileOne_s0, MobileOne_s1, MobileOneBlock


def trained_like(model: nn.Module) -> nn.Module:
    """Give every BatchNorm the non-trivial statistics and affine terms a trained model has."""
    generator = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=generator) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=generator) - 0.5)
    return model.eval()


@pytest.mark.parametrize("variant", [MobileOne_s0, MobileOne_s1], ids=["s0-k4", "s1-k1"])
def test_deploy_outputs_match_training_outputs(variant):
    model = trained_like(variant()).double()  # float64: the comparison measures the folding, not rounding
    image = torch.rand(1, 3, 256, 192, dtype=torch.float64)
    with torch.no_grad():
        before = model(image)
        for m in model.modules():
            if isinstance(m, MobileOneBlock):
                m.switch_to_deploy()
        after = model(image)
    assert all(m.deploy for m in model.modules() if isinstance(m, MobileOneBlock))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules() if m is not model.stage0[1])
    for a, b in zip(before, after, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-4)


@pytest.mark.parametrize(("inc", "outc", "stride"), [(8, 8, 1), (8, 16, 1), (8, 8, 2)], ids=["identity", "widen", "stride"])
def test_each_block_shape_folds_exactly(inc, outc, stride):
    block = trained_like(MobileOneBlock(inc, outc, k=3, stride=stride)).double()
    x = torch.randn(2, inc, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        before = block(x)
        block.switch_to_deploy()
        block.switch_to_deploy()  # a second call changes nothing
        after = block(x)
    assert torch.allclose(before, after, rtol=0, atol=1e-9)
    assert sorted(name for name, _ in block.named_children()) == ["dw_reparam", "nonlinearity", "pw_reparam", "se"]


def test_deploy_built_model_has_the_folded_shape():
    folded = trained_like(MobileOne_s1())
    for m in folded.modules():
        if isinstance(m, MobileOneBlock):
            m.switch_to_deploy()
    built = MobileOne_s1(deploy=True)
    assert [(k, v.shape) for k, v in folded.state_dict().items()] == [(k, v.shape) for k, v in built.state_dict().items()]
