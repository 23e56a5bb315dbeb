"""MobileOne backbones for Ultralytics, installed by ultrapatch into ``ultralytics/nn/AddModules/``.

The blocks are those of the YOLOv8 + MobileOne tutorial, after "MobileOne: An Improved One millisecond
Mobile Backbone" (https://arxiv.org/abs/2206.04861): a depthwise stage of k 3x3 branches, a 1x1 branch and a
BatchNorm identity, then a pointwise stage of k 1x1 branches and a BatchNorm identity, each followed by ReLU, with
the same attribute names (so the same state-dict keys) and parameter counts. ``switch_to_deploy`` folds every
block into one depthwise 3x3 and one pointwise 1x1 convolution; ultrapatch's ``fuse`` edit makes Ultralytics'
``model.fuse()`` (called before validation, prediction and export) do it.

``MobileOne_s0`` to ``MobileOne_s4`` use the paper's width multipliers and branch counts k in the seed's stage
layout. The paper's s4 adds squeeze-and-excitation, which the seed's block leaves unimplemented: s4 here has none.
Each returns four maps, the ends of the stages at strides 4, 8, 16 and 32, for any input whose sides are multiples
of 32. This file depends on torch only; it is copied verbatim into the user's tree.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MobileOne_s0", "MobileOne_s1", "MobileOne_s2", "MobileOne_s3", "MobileOne_s4"]

# the paper's width multipliers alpha1..alpha4 and branch counts k
PAPER = {
    "s0": ((0.75, 1.0, 1.0, 2.0), 4),
    "s1": ((1.5, 1.5, 2.0, 2.5), 1),
    "s2": ((1.5, 2.0, 2.5, 4.0), 1),
    "s3": ((2.0, 2.5, 3.0, 4.0), 1),
    "s4": ((3.0, 3.5, 3.5, 4.0), 1),
}
# the seed's stages: stem, then blocks per stage, stride of each stage's first block, base channels
BLOCKS = (1, 2, 8, 5, 5, 1)
STRIDES = (2, 2, 2, 2, 1, 2)
CHANNELS = (64, 64, 128, 256, 256, 512)
FEATURE_STAGES = (1, 2, 4, 5)  # the last stage at strides 4, 8, 16 and 32

class BatchNorm2d(nn.BatchNorm2d):
    """torch's BatchNorm2d under a type of its own. Ultralytics' `initialize_weights` sets eps 1e-3 and momentum 0.03
    on every module whose type *is* nn.BatchNorm2d, after the model is built: that would change the backbone's own
    normalisation (and a pretrained backbone's outputs, by up to 20%). This one keeps torch's 1e-5 and 0.1."""



def conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int, groups: int = 1) -> nn.Sequential:
    result = nn.Sequential()
    result.add_module("conv", nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False))
    result.add_module("bn", BatchNorm2d(out_channels))
    return result


class DepthWiseConv(nn.Module):
    def __init__(self, inc: int, kernel_size: int, stride: int = 1):
        super().__init__()
        self.conv = conv_bn(inc, inc, kernel_size, stride, 0 if kernel_size == 1 else 1, inc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class PointWiseConv(nn.Module):
    def __init__(self, inc: int, outc: int):
        super().__init__()
        self.conv = conv_bn(inc, outc, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class MobileOneBlock(nn.Module):
    """k-branch depthwise and pointwise stages, over-parameterised for training and foldable for inference."""

    def __init__(self, in_channels: int, out_channels: int, k: int, stride: int = 1, deploy: bool = False):
        super().__init__()
        self.deploy = deploy
        self.in_channels, self.out_channels, self.k = in_channels, out_channels, k
        self.nonlinearity = nn.ReLU()
        self.se = nn.Identity()
        if deploy:
            self.dw_reparam = nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=True)
            self.pw_reparam = nn.Conv2d(in_channels, out_channels, 1, 1, bias=True)
            return
        identity = out_channels == in_channels and stride == 1
        self.dw_bn_layer = BatchNorm2d(in_channels) if identity else None
        for k_idx in range(k):
            setattr(self, f"dw_3x3_{k_idx}", DepthWiseConv(in_channels, 3, stride=stride))
        self.dw_1x1 = DepthWiseConv(in_channels, 1, stride=stride)
        self.pw_bn_layer = BatchNorm2d(in_channels) if identity else None
        for k_idx in range(k):
            setattr(self, f"pw_1x1_{k_idx}", PointWiseConv(in_channels, out_channels))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            return self.nonlinearity(self.pw_reparam(self.nonlinearity(self.dw_reparam(inputs))))
        identity = 0 if self.dw_bn_layer is None else self.dw_bn_layer(inputs)
        x = identity + self.dw_1x1(inputs) + sum(getattr(self, f"dw_3x3_{i}")(inputs) for i in range(self.k))
        x = self.nonlinearity(self.se(x))
        identity = 0 if self.pw_bn_layer is None else self.pw_bn_layer(x)
        y = identity + sum(getattr(self, f"pw_1x1_{i}")(x) for i in range(self.k))
        return self.nonlinearity(y)

    def _fuse_bn_tensor(self, branch: nn.Module | None, groups: int = 1) -> tuple[torch.Tensor | int, torch.Tensor | int]:
        """The kernel and bias of a conv+BN branch, or of a BN identity branch, with the BN folded in."""
        if branch is None:
            return 0, 0
        if isinstance(branch, nn.Sequential):
            kernel, bn = branch.conv.weight, branch.bn
        else:  # a BatchNorm identity: the kernel of an identity convolution with these groups
            input_dim = self.in_channels // groups
            ks = 1 if groups == 1 else 3
            kernel = torch.zeros(self.in_channels, input_dim, ks, ks, device=branch.weight.device)
            kernel[torch.arange(self.in_channels), torch.arange(self.in_channels) % input_dim, ks // 2, ks // 2] = 1
            bn = branch
        std = (bn.running_var + bn.eps).sqrt()
        return kernel * (bn.weight / std).reshape(-1, 1, 1, 1), bn.bias - bn.running_mean * bn.weight / std

    def get_equivalent_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        dw = [self._fuse_bn_tensor(getattr(self, f"dw_3x3_{i}").conv) for i in range(self.k)]
        dw_1x1_kernel, dw_1x1_bias = self._fuse_bn_tensor(self.dw_1x1.conv)
        dw_id_kernel, dw_id_bias = self._fuse_bn_tensor(self.dw_bn_layer, self.in_channels)
        dw_kernel = sum(k for k, _ in dw) + nn.functional.pad(dw_1x1_kernel, [1, 1, 1, 1]) + dw_id_kernel
        dw_bias = sum(b for _, b in dw) + dw_1x1_bias + dw_id_bias
        pw = [self._fuse_bn_tensor(getattr(self, f"pw_1x1_{i}").conv) for i in range(self.k)]
        pw_id_kernel, pw_id_bias = self._fuse_bn_tensor(self.pw_bn_layer, 1)
        return dw_kernel, dw_bias, sum(k for k, _ in pw) + pw_id_kernel, sum(b for _, b in pw) + pw_id_bias

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fold the branches into `dw_reparam` and `pw_reparam` (eval-mode outputs stay the same)."""
        if self.deploy:
            return
        dw_kernel, dw_bias, pw_kernel, pw_bias = self.get_equivalent_kernel_bias()
        first = self.dw_3x3_0.conv.conv
        self.dw_reparam = nn.Conv2d(self.in_channels, self.in_channels, 3, first.stride, 1, groups=self.in_channels, bias=True)
        self.pw_reparam = nn.Conv2d(self.in_channels, self.out_channels, 1, 1, bias=True)
        self.dw_reparam.to(dw_kernel), self.pw_reparam.to(pw_kernel)  # same device and dtype as the model
        self.dw_reparam.weight.copy_(dw_kernel)
        self.dw_reparam.bias.copy_(dw_bias)
        self.pw_reparam.weight.copy_(pw_kernel)
        self.pw_reparam.bias.copy_(pw_bias)
        for name in ["dw_1x1", "dw_bn_layer", "pw_bn_layer"] + [f"{p}_{i}" for p in ("dw_3x3", "pw_1x1") for i in range(self.k)]:
            delattr(self, name)
        self.deploy = True


class MobileOne(nn.Module):
    """MobileOne feature extractor: a conv stem and five stages of MobileOne blocks; four maps, strides 4 to 32."""

    def __init__(self, config: str = "s0", deploy: bool = False):
        super().__init__()
        (a1, a2, a3, a4), k = PAPER[config]
        width_muls = (min(1.0, a1), a1, a2, a3, a3, a4)
        widths = [int(c * w) for c, w in zip(CHANNELS, width_muls)]
        self.stage0 = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), BatchNorm2d(widths[0]), nn.ReLU())
        in_channels = widths[0]
        for idx in range(1, len(BLOCKS)):
            stage = []
            for b_idx in range(BLOCKS[idx]):
                stage.append(MobileOneBlock(in_channels, widths[idx], k, STRIDES[idx] if b_idx == 0 else 1, deploy))
                in_channels = widths[idx]
            setattr(self, f"stage{idx}", nn.Sequential(*stage))
        self.width_list = [widths[i] for i in FEATURE_STAGES]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        x = self.stage0(x)
        for idx in range(1, len(BLOCKS)):
            x = getattr(self, f"stage{idx}")(x)
            if idx in FEATURE_STAGES:
                features.append(x)
        return features


class MobileOne_s0(MobileOne):
    """MobileOne-S0: widths (0.75, 1.0, 1.0, 2.0), k = 4."""

    def __init__(self, deploy: bool = False):
        super().__init__("s0", deploy)


class MobileOne_s1(MobileOne):
    """MobileOne-S1: widths (1.5, 1.5, 2.0, 2.5), k = 1."""

    def __init__(self, deploy: bool = False):
        super().__init__("s1", deploy)


class MobileOne_s2(MobileOne):
    """MobileOne-S2: widths (1.5, 2.0, 2.5, 4.0), k = 1."""

    def __init__(self, deploy: bool = False):
        super().__init__("s2", deploy)


class MobileOne_s3(MobileOne):
    """MobileOne-S3: widths (2.0, 2.5, 3.0, 4.0), k = 1."""

    def __init__(self, deploy: bool = False):
        super().__init__("s3", deploy)


class MobileOne_s4(MobileOne):
    """MobileOne-S4: widths (3.0, 3.5, 3.5, 4.0), k = 1 (without the paper's squeeze-and-excitation)."""

    def __init__(self, deploy: bool = False):
        super().__init__("s4", deploy)
