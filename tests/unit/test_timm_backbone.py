"""TimmBackbone: any timm model's maps at strides 4 to 32, its weights from a local file checked strictly, timm's own
settings kept through Ultralytics' initialize_weights, and checkpoints that hold tensors rather than timm's classes.
Nothing here downloads: every model is built with random weights or from a file written here."""

from __future__ import annotations

import io
import logging
import sys
import zipfile
from copy import deepcopy

import pytest
import torch

timm = pytest.importorskip("timm")

from patcher.modules.TimmBackbone import KEPT, PRETRAINED_ENV, TimmBackbone, feature_plan  # noqa: E402

MODELS = ("mobilenetv3_large_100", "mobileone_s0", "efficientnet_b0", "resnet18")


def seeded_state(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """The state dict of timm's whole model `name`, random but fixed, with running statistics as small as a trained
    network's (where BatchNorm's eps matters)."""
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(1e-4, 1e-2)
                m.running_mean.uniform_(-0.5, 0.5)
    return model.state_dict()


def timm_maps(name: str, path, image: torch.Tensor, out_indices) -> list[torch.Tensor]:
    """The maps of timm's own features model, with the weights of `path` loaded by timm itself."""
    own = timm.create_model(
        name, features_only=True, out_indices=out_indices, pretrained=True, pretrained_cfg_overlay={"file": str(path)}
    ).eval()
    with torch.no_grad():
        return own(image)


def relative(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    assert len(a) == len(b)
    return max(float((x - y).abs().max() / y.abs().max().clamp_min(1e-12)) for x, y in zip(a, b))


@pytest.mark.parametrize("name", MODELS)
def test_maps_have_the_widths_and_strides_read_from_feature_info(name):
    backbone = TimmBackbone(name, False).eval()
    assert backbone.strides == [4, 8, 16, 32]
    with torch.no_grad():
        maps = backbone(torch.zeros(1, 3, 64, 96))
    assert [m.shape[1] for m in maps] == backbone.width_list
    assert [(64 // m.shape[2], 96 // m.shape[3]) for m in maps] == [(s, s) for s in backbone.strides]


@pytest.mark.parametrize("suffix", [".pth", ".bin", ".safetensors"])
def test_a_local_weights_file_in_each_format_gives_timms_maps(tmp_path, suffix):
    from safetensors.torch import save_file

    name = "efficientnet_b0"
    path = tmp_path / f"{name}{suffix}"
    state = seeded_state(name)
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    backbone = TimmBackbone(name, str(path)).eval()
    assert backbone.pretrained == f"weights from {path}"
    image = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        maps = backbone(image)
    assert relative(maps, timm_maps(name, path, image, backbone.out_indices)) < 1e-5


def test_a_file_of_another_model_is_refused_with_the_counts(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(seeded_state("resnet18"), path)
    with pytest.raises(ValueError) as refused:
        TimmBackbone("resnet34", str(path))
    message = str(refused.value)
    assert "does not fit timm's resnet34" in message
    own = timm.create_model("resnet34").state_dict()
    theirs = seeded_state("resnet18")
    missing = len([k for k in own if k not in theirs])
    unexpected = len([k for k in theirs if k not in own])
    misshaped = len([k for k in own if k in theirs and theirs[k].shape != own[k].shape])
    assert f"{missing} tensors missing, {unexpected} unexpected, {misshaped} of another shape" in message
    assert missing > 0


def test_a_truncated_file_is_refused(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(seeded_state("resnet18"), path)
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(ValueError, match="cannot read weights from"):
        TimmBackbone("resnet18", str(path))
    with pytest.raises(ValueError, match="no weights file"):
        TimmBackbone("resnet18", str(tmp_path / "absent.pth"))


def test_a_missing_tensor_is_counted(tmp_path):
    state = seeded_state("resnet18")
    del state["layer1.0.conv1.weight"]
    state["layer4.1.bn2.weight"] = torch.ones(3)
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match="1 tensors missing, 0 unexpected, 1 of another shape"):
        TimmBackbone("resnet18", str(path))


@pytest.mark.parametrize(
    "name, reason",
    [
        ("resnet81", "timm has no model named 'resnet81'; did you mean resnet18"),
        ("vit_tiny_patch16_224", "vit_tiny_patch16_224 needs a fixed input size (224x224)"),
        ("swin_tiny_patch4_window7_224", "needs a fixed input size"),
        ("convmixer_768_32", "feature maps are at strides [7]; a YOLO or RT-DETR head needs maps at strides 8, 16"),
        ("efficientvim_m1", "(missing 8)"),
        ("ResNet18", "is not a timm model name"),
    ],
)
def test_models_that_cannot_be_a_backbone_are_refused_with_the_reason(name, reason):
    with pytest.raises(ValueError) as refused:
        feature_plan(name)
    assert reason in str(refused.value)


def test_true_asks_timm_for_its_weights_unless_the_environment_says_not(monkeypatch):
    calls = []
    real = timm.create_model

    def spy(*args, **kwargs):
        calls.append(kwargs.get("pretrained"))
        return real(*args, **{**kwargs, "pretrained": False})  # never download in a test

    monkeypatch.setattr(timm, "create_model", spy)
    monkeypatch.setattr(sys.modules[TimmBackbone.__module__], "check_weights_reachable", lambda name: None)  # no network
    monkeypatch.delenv(PRETRAINED_ENV, raising=False)
    assert TimmBackbone("resnet18", True).pretrained == "timm's pretrained weights" and calls[-1] is True
    monkeypatch.setenv(PRETRAINED_ENV, "0")
    backbone = TimmBackbone("resnet18", True)
    assert backbone.pretrained is None and calls[-1] is False
    assert TimmBackbone("resnet18", False).pretrained is None and calls[-1] is False


def test_initialize_weights_leaves_timms_settings_alone():
    """Ultralytics' initialize_weights matches `type(m) is nn.BatchNorm2d` (and, before 8.2, ReLU, SiLU...): none of
    the backbone's modules has those exact types, so its eps, momentum and inplace flags stay timm's."""
    backbone = TimmBackbone("resnet18", False)
    before = {n: (m.eps, m.momentum) for n, m in backbone.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    matched = [m for m in backbone.modules() if type(m) in KEPT]  # what initialize_weights would change
    assert before and not matched
    assert all(isinstance(m, base) for base, kept in KEPT.items() for m in backbone.modules() if type(m) is kept)


def test_a_checkpoint_holds_tensors_and_the_name_never_timms_classes():
    backbone = TimmBackbone("mobileone_s0", False).eval()
    backbone.body.stem.requires_grad_(False)  # a frozen part stays frozen
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = backbone(image)
    buffer = io.BytesIO()
    torch.save(backbone.half(), buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        pickled = b"".join(archive.read(n) for n in archive.namelist() if n.endswith(".pkl"))
    assert b"TimmBackbone" in pickled and b"timm." not in pickled  # no class of timm's is named in the file
    buffer.seek(0)
    with torch.serialization.safe_globals([TimmBackbone]):  # what a weights-only (safe) load admits: only this class
        loaded = torch.load(buffer, weights_only=True)
    assert next(loaded.parameters()).dtype == torch.float16
    assert not any(p.requires_grad for p in loaded.body.stem.parameters())
    assert all(p.requires_grad for p in loaded.body.stages_1.parameters())
    assert not loaded.training and not any(m.training for m in loaded.modules())
    with torch.no_grad():
        assert relative(loaded.float()(image), expected) < 1e-2  # half precision


def test_a_reparameterised_backbone_round_trips():
    backbone = TimmBackbone("mobileone_s0", False).eval()
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = backbone(image)
        backbone.switch_to_deploy()
        fused = backbone(image)
    assert backbone.deploy and relative(fused, before) < 1e-4
    buffer = io.BytesIO()
    torch.save(backbone, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert loaded.deploy
    with torch.no_grad():
        assert relative(loaded(image), fused) < 1e-6


def test_deepcopy_is_an_ordinary_copy():
    backbone = TimmBackbone("resnet18", False)
    copied = deepcopy(backbone)
    assert type(copied.body) is type(backbone.body)
    assert all(torch.equal(a, b) for a, b in zip(copied.state_dict().values(), backbone.state_dict().values()))
    assert copied.body.conv1.weight is not backbone.body.conv1.weight


def test_a_checkpoint_naming_something_else_is_refused_on_load():
    backbone = TimmBackbone("resnet18", False)
    backbone.model_name = "hf-hub:someone/model"  # what a crafted file could say
    buffer = io.BytesIO()
    torch.save(backbone, buffer)
    buffer.seek(0)
    with pytest.raises(ValueError, match="is not a timm model name"):
        torch.load(buffer, weights_only=False)


def test_the_log_says_where_the_weights_came_from(caplog):
    with caplog.at_level(logging.INFO, logger="ultralytics"):
        TimmBackbone("resnet18", False)
    assert "TimmBackbone resnet18: maps of [64, 128, 256, 512] channels at strides [4, 8, 16, 32], random weights" in caplog.text


def test_timms_weights_offline_fail_at_once_with_what_to_do(tmp_path, monkeypatch):
    """`True` in a YAML row, with no weights in the cache and no network (this machine has none; HF_HUB_OFFLINE says
    so everywhere): one sentence, at once, naming the cache folder and every way to get the weights."""
    from patcher.modules.TimmBackbone import WeightsUnavailable

    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))  # read at import
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(PRETRAINED_ENV, raising=False)
    with pytest.raises(WeightsUnavailable) as raised:
        TimmBackbone("resnet18", True)
    message = str(raised.value)
    assert message.startswith("TimmBackbone resnet18: timm's pretrained weights are not in this machine's cache (")
    assert str(tmp_path / "hf" / "hub" / "models--timm--resnet18.a1_in1k") in message and "HF_HUB_OFFLINE is set" in message
    for way in ("HF_ENDPOINT", "huggingface-cli download timm/resnet18.a1_in1k", '["resnet18", "/path/to/model.safetensors"]', "False"):
        assert way in message

    # a copy of the cache folder from a machine that has the weights: the advice works offline
    from safetensors.torch import save_file

    snapshot = tmp_path / "hf" / "hub" / "models--timm--resnet18.a1_in1k" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    state = seeded_state("resnet18")
    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / "model.safetensors"))
    backbone = TimmBackbone("resnet18", True)
    assert torch.equal(backbone.body.conv1.weight, state["conv1.weight"])
