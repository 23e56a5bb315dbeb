"""The layers that give each feature map of a backbone a layer index of its own, installed by ultrapatch into
``ultralytics/nn/AddModules/``.

A backbone built by ``parse_model`` returns a list of maps, the last ones of P1 to P5 (strides 2 to 32). In the
tutorials' YAML numbering the backbone occupies five indices, 0-4 when it is the first row, one a map, and the head
refers to P3, P4 and P5 as 2, 3 and 4. ``parse_model`` (as ultrapatch edits it) places the backbone at the first of
its five indices and a ``BackboneMap`` at each of the other four, so every layer's place in the model is its index in
the YAML. Everything in Ultralytics that reads layer indices (``embed``, ``freeze``, distillation hooks,
``profile``, ``visualize``, the forward loops themselves) then works unchanged, and the maps cost no parameters.

This file depends on torch only; it is copied verbatim into the user's tree.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BackboneMap"]

MAPS = 5  # P1 to P5: the places a backbone occupies in the YAML's numbering


class BackboneMap(nn.Module):
    """Hands on map P``k + 1`` of the backbone at layer ``source``: the layer at index ``source + k`` (k = 1 to 4).

    The backbone's list holds its last maps (MobileNetV3: P2-P5), so P5 is its last item, P4 the one before, and so
    on; a map the backbone does not produce is None, as its channel count in ``parse_model`` is 0.
    """

    def __init__(self, source: int, k: int):
        super().__init__()
        if not 1 <= k < MAPS:
            raise ValueError(f"a BackboneMap hands on P2 to P5 (k = 1 to {MAPS - 1}), not k = {k}")
        self.k = k
        self.from_end = MAPS - k  # P5 is the last map, P2 the fourth from the end
        # what parse_model attaches to every layer it builds
        self.i, self.f, self.type, self.np = source + k, source, "BackboneMap", 0

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor | None:
        return maps[-self.from_end] if self.from_end <= len(maps) else None

    def extra_repr(self) -> str:
        return f"P{self.k + 1} of layer {self.f}"
