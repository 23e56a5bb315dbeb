"""MobileNetV2_tv loads torchvision's ImageNet state dict from a local file, and refuses one that does not fit."""

from __future__ import annotations

import logging

import pytest
import torch
import torchvision

from patcher.modules.MobileNetV2_tv import WEIGHTS_ENV, MobileNetV2_tv


@pytest.fixture(scope="module")
def state_file(tmp_path_factory):
    """A state dict as torchvision's `mobilenet_v2` has it (random weights: nothing here downloads)."""
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v2.pth"
    torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), path)
    return path


def test_no_file_means_random_initialisation(monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    assert MobileNetV2_tv().pretrained is None


def test_loads_every_tensor_from_an_argument(state_file, caplog):
    state = torch.load(state_file, weights_only=True)
    with caplog.at_level(logging.INFO, logger="ultralytics"):
        model = MobileNetV2_tv(1.0, str(state_file))
    assert model.pretrained == f"MobileNetV2_tv: loaded 306/306 tensors from {state_file} (8 head tensors unused)"
    assert model.pretrained in caplog.text
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_loads_from_the_environment(state_file, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(state_file))
    model = MobileNetV2_tv()
    assert model.pretrained.startswith("MobileNetV2_tv: loaded 306/306 tensors")


def test_refuses_another_width(state_file):
    with pytest.raises(ValueError, match=r"255 of another shape"):
        MobileNetV2_tv(0.5, str(state_file))


def test_refuses_foreign_keys(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match=r"tensors missing.*unknown"):
        MobileNetV2_tv(1.0, str(path))


def test_refuses_a_file_that_is_not_a_state_dict(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read weights"):
        MobileNetV2_tv(1.0, str(path))
