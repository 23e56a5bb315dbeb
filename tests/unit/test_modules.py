"""The shipped backbones are the tutorials' architectures, built as classes with known widths.

Each is compared with the seed's own code (tests/seeds/, re-indented from the tutorial): same state-dict keys and
shapes, same parameter count, same module count, and identical outputs given the same weights.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

from patcher.backbones import BACKBONES

SEEDS = Path(__file__).resolve().parent.parent / "seeds"

# (module, variant): (seed file, parameters, widths), the figures counted once from the seed's code
EXPECTED = {
    ("MobileNetV3", "MobileNetV3_large_n"): ("seed000_MobileNetV3.py", 1_930_390, [6, 10, 28, 240]),
    ("MobileNetV3", "MobileNetV3_large_s"): ("seed000_MobileNetV3.py", 2_257_862, [12, 20, 56, 480]),
    ("MobileNetV3", "MobileNetV3_large_m"): ("seed000_MobileNetV3.py", 2_970_118, [24, 40, 112, 960]),
    ("MobileNetV3", "MobileNetV3_small_n"): ("seed000_MobileNetV3.py", 613_374, [4, 6, 12, 144]),
    ("MobileNetV3", "MobileNetV3_small_s"): ("seed000_MobileNetV3.py", 709_230, [8, 12, 24, 288]),
    ("MobileNetV3", "MobileNetV3_small_m"): ("seed000_MobileNetV3.py", 921_390, [16, 24, 48, 576]),
    # seed 002's acceptance figure: 1,811,712 parameters, maps of 24, 32, 96 and 320 channels
    ("MobileNetV2", "MobileNetV2"): ("seed002_MobileNetV2.py", 1_811_712, [24, 32, 96, 320]),
    # seed 003's blocks and stage layout, with the MobileOne paper's width multipliers and k
    ("MobileOne", "MobileOne_s0"): ("seed003_MobileOne.py", 4_267_936, [48, 128, 256, 1024]),
    ("MobileOne", "MobileOne_s1"): ("seed003_MobileOne.py", 3_543_872, [96, 192, 512, 1280]),
    ("MobileOne", "MobileOne_s2"): ("seed003_MobileOne.py", 5_835_328, [96, 256, 640, 2048]),
    ("MobileOne", "MobileOne_s3"): ("seed003_MobileOne.py", 8_121_280, [128, 320, 768, 2048]),
    ("MobileOne", "MobileOne_s4"): ("seed003_MobileOne.py", 11_261_120, [192, 448, 896, 2048]),
}
# seed 004's MobileNetV2 is torchvision's own; it is compared with torchvision below, not with a seed file
TORCHVISION_LAYOUT = {("MobileNetV2_tv", "MobileNetV2_tv"): (1_811_712, [24, 32, 96, 320])}
CASES = sorted(EXPECTED)


def ours(module: str):
    return importlib.import_module(f"patcher.modules.{module}")


def seed(file: str):
    spec = importlib.util.spec_from_file_location(file.removesuffix(".py"), SEEDS / file)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def test_every_variant_of_every_backbone_is_covered():
    shipped = {(b.module_file.removesuffix(".py"), v) for b in BACKBONES.values() for v in b.variants}
    assert shipped == set(EXPECTED) | set(TORCHVISION_LAYOUT)


@pytest.mark.parametrize(("module", "name"), CASES)
def test_parameters_and_widths(module, name):
    _, params, widths = EXPECTED[module, name]
    model = getattr(ours(module), name)()
    assert sum(p.numel() for p in model.parameters()) == params
    assert model.width_list == widths


@pytest.mark.parametrize(("module", "name"), CASES)
def test_same_layers_keys_and_outputs_as_the_seed(module, name):
    file, params, _ = EXPECTED[module, name]
    mine, theirs = getattr(ours(module), name)(), getattr(seed(file), name)()
    assert [(k, v.shape) for k, v in mine.state_dict().items()] == [(k, v.shape) for k, v in theirs.state_dict().items()]
    assert len(list(mine.modules())) == len(list(theirs.modules()))
    assert sum(p.numel() for p in theirs.parameters()) == params
    mine.load_state_dict(theirs.state_dict())
    mine.eval(), theirs.eval()
    image = torch.rand(1, 3, 320, 256)
    reference = getattr(seed(file), "features", lambda net, x: net(x))  # MobileOne's seed ends in a classifier
    with torch.no_grad():
        for a, b in zip(mine(image), reference(theirs, image), strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize(("module", "name"), CASES)
def test_every_variant_is_a_module_class(module, name):
    cls = getattr(ours(module), name)
    assert isinstance(cls, type) and issubclass(cls, nn.Module)


@pytest.mark.parametrize("module", sorted({m for m, _ in CASES} | {m for m, _ in TORCHVISION_LAYOUT}))
def test_width_list_needs_no_forward_pass(module, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("forward called during construction")

    for name in ours(module).__all__:
        cls = getattr(ours(module), name)
        monkeypatch.setattr(cls, "forward", refuse)
        expected = EXPECTED.get((module, name)) or (None, *TORCHVISION_LAYOUT[module, name])
        assert cls().width_list == expected[2]


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
