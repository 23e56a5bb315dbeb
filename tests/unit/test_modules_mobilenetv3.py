"""The shipped MobileNetV3 is the tutorial's architecture (seed 000), built as classes with known widths."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from patcher.modules import MobileNetV3 as ours

SEED = Path(__file__).resolve().parent.parent / "seeds" / "seed000_MobileNetV3.py"

# parameters and widths of the seed's own code, counted once from it (tests/seeds/seed000_MobileNetV3.py)
EXPECTED = {
    "MobileNetV3_large_n": (1_930_390, [6, 10, 28, 240]),
    "MobileNetV3_large_s": (2_257_862, [12, 20, 56, 480]),
    "MobileNetV3_large_m": (2_970_118, [24, 40, 112, 960]),
    "MobileNetV3_small_n": (613_374, [4, 6, 12, 144]),
    "MobileNetV3_small_s": (709_230, [8, 12, 24, 288]),
    "MobileNetV3_small_m": (921_390, [16, 24, 48, 576]),
}


@pytest.fixture(scope="module")
def seed():
    spec = importlib.util.spec_from_file_location("seed000_MobileNetV3", SEED)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_exports_the_six_variants():
    assert set(ours.__all__) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameters_and_widths(name):
    params, widths = EXPECTED[name]
    model = getattr(ours, name)()
    assert sum(p.numel() for p in model.parameters()) == params
    assert model.width_list == widths


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_same_layers_keys_and_outputs_as_the_seed(seed, name):
    mine, theirs = getattr(ours, name)(), getattr(seed, name)()
    assert [(k, v.shape) for k, v in mine.state_dict().items()] == [(k, v.shape) for k, v in theirs.state_dict().items()]
    assert sum(p.numel() for p in theirs.parameters()) == EXPECTED[name][0]
    mine.load_state_dict(theirs.state_dict())
    mine.eval(), theirs.eval()
    image = torch.rand(1, 3, 320, 256)
    with torch.no_grad():
        for a, b in zip(mine(image), theirs(image), strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_variant_is_a_module_class(name):
    cls = getattr(ours, name)
    assert isinstance(cls, type) and issubclass(cls, nn.Module)


def test_width_list_needs_no_forward_pass(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("forward called during construction")

    monkeypatch.setattr(ours.MobileNetV3, "forward", refuse)
    assert ours.MobileNetV3_large_m().width_list == [24, 40, 112, 960]


@pytest.mark.parametrize("size", [(640, 640), (640, 480), (480, 640), (320, 320), (32, 64)])
@pytest.mark.parametrize("name", ["MobileNetV3_small_n", "MobileNetV3_large_s"])
def test_four_maps_at_strides_4_to_32(name, size):
    model = getattr(ours, name)().eval()
    with torch.no_grad():
        maps = model(torch.zeros(1, 3, *size))
    assert [(size[0] // m.shape[2], size[1] // m.shape[3]) for m in maps] == [(4, 4), (8, 8), (16, 16), (32, 32)]
    assert [m.shape[1] for m in maps] == model.width_list


def test_module_file_depends_on_torch_only():
    source = Path(ours.__file__).read_text(encoding="utf-8")
    imports = {line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"__future__", "torch"}
