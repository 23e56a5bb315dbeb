"""The shipped backbones are the tutorials' architectures, built as classes with known widths.

Each variant is compared with facts recorded from the tutorial's own code (tests/facts/modules.json, made by
tests/facts/make_module_facts.py from the seeds' code; torchvision's mobilenet_v2 for MobileNetV2_tv): the
parameter count, every state-dict key and shape, the widths, the output shapes at 640x480, and the sums of every map
for one input with every tensor filled from its key name. Any changed layer, key, shape or output fails.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from module_facts import facts
from patcher.backbones import BACKBONES

RECORDED = json.loads((Path(__file__).resolve().parent.parent / "facts" / "modules.json").read_text(encoding="utf-8"))
FACTS = {tuple(key.split(".")): value for key, value in RECORDED["modules"].items()}
CASES = sorted(FACTS)


def ours(module: str):
    return importlib.import_module(f"patcher.modules.{module}")


def test_every_variant_of_every_backbone_is_covered():
    shipped = {(b.module_file.removesuffix(".py"), v) for b in BACKBONES.values() for v in b.variants}
    assert shipped == set(FACTS)


@pytest.mark.parametrize(("module", "name"), CASES)
def test_the_tutorials_network_exactly(module, name):
    expected, model = FACTS[module, name], getattr(ours(module), name)()
    assert model.width_list == expected["widths"]
    found = facts(model)
    assert found["parameters"] == expected["parameters"]
    assert found["state_dict"] == expected["state_dict"]
    assert found["shapes"] == expected["shapes"] and found["widths"] == expected["widths"]
    for (total, absolute), (want_total, want_absolute) in zip(found["sums"], expected["sums"], strict=True):
        assert math.isclose(absolute, want_absolute, rel_tol=1e-4), (absolute, want_absolute)
        assert math.isclose(total, want_total, rel_tol=1e-4, abs_tol=1e-3 * want_absolute), (total, want_total)


@pytest.mark.parametrize(("module", "name"), CASES)
def test_every_variant_is_a_module_class(module, name):
    cls = getattr(ours(module), name)
    assert isinstance(cls, type) and issubclass(cls, nn.Module)


@pytest.mark.parametrize("module", sorted({m for m, _ in CASES}))
def test_width_list_needs_no_forward_pass(module, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("forward called during construction")

    for name in ours(module).__all__:
        cls = getattr(ours(module), name)
        monkeypatch.setattr(cls, "forward", refuse)
        assert cls().width_list == FACTS[module, name]["widths"]


@pytest.mark.parametrize("size", [(640, 640), (640, 480), (480, 640), (320, 320), (32, 64)])
@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("MobileNetV3", "MobileNetV3_small_n"),
        ("MobileNetV3", "MobileNetV3_large_s"),
        ("MobileNetV2", "MobileNetV2"),
        ("MobileNetV2_tv", "MobileNetV2_tv"),
        ("MobileOne", "MobileOne_s1"),
    ],
)
def test_four_maps_at_strides_4_to_32(module, name, size):
    model = getattr(ours(module), name)().eval()
    with torch.no_grad():
        maps = model(torch.zeros(1, 3, *size))
    assert [(size[0] // m.shape[2], size[1] // m.shape[3]) for m in maps] == [(4, 4), (8, 8), (16, 16), (32, 32)]
    assert [m.shape[1] for m in maps] == model.width_list


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_module_file_depends_on_torch_only(backbone):
    source = BACKBONES[backbone].source
    imports = {line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"__future__", "torch", "os", "logging"}


@pytest.mark.parametrize("width", [1.0, 0.5])
def test_torchvision_layout_is_torchvisions_mobilenet_v2(width):
    import torchvision

    reference = torchvision.models.mobilenet_v2(weights=None, width_mult=width).eval()
    mine = ours("MobileNetV2_tv").MobileNetV2_tv(width_mult=width).eval()
    theirs = {k: v for k, v in reference.state_dict().items() if not k.startswith(("features.18.", "classifier."))}
    assert [(k, v.shape) for k, v in mine.state_dict().items()] == [(k, v.shape) for k, v in theirs.items()]
    mine.load_state_dict(theirs)
    image = torch.rand(1, 3, 224, 192)
    with torch.no_grad():
        maps, x = mine(image), image
        expected = []
        for i, layer in enumerate(reference.features[:18]):
            x = layer(x)
            if i in mine.taps:
                expected.append(x)
    for a, b in zip(maps, expected, strict=True):
        assert torch.equal(a, b)
    assert mine.taps == [3, 6, 13, 17]


def test_backbone_map_hands_on_one_map_under_its_yaml_index():
    BackboneMap = importlib.import_module("patcher.modules.BackboneMap").BackboneMap

    maps = [torch.full((1, c, 1, 1), float(c)) for c in (24, 40, 96, 576)]  # P2-P5, as MobileNetV3 returns them
    layers = [BackboneMap(3, k) for k in range(1, 5)]  # a backbone at index 3: its maps are layers 4-7
    assert [(m.i, m.f, m.type, m.np) for m in layers] == [(4, 3, "BackboneMap", 0), (5, 3, "BackboneMap", 0),
                                                         (6, 3, "BackboneMap", 0), (7, 3, "BackboneMap", 0)]
    assert [m(maps).shape[1] for m in layers] == [24, 40, 96, 576]
    assert BackboneMap(0, 1)(maps[1:]) is None  # a backbone with P3-P5 only has no P2
    assert not list(BackboneMap(0, 4).parameters())
    with pytest.raises(ValueError, match="k = 1 to 4"):
        BackboneMap(0, 5)
