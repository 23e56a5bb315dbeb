"""Any timm model as an Ultralytics backbone, installed by ultrapatch into ``ultralytics/nn/AddModules/``.

A YAML row ``[-1, 1, TimmBackbone, ["resnet18", True]]`` builds ``timm.create_model("resnet18", features_only=True)``
with the maps at strides 4, 8, 16 and 32 (the last of each stride; a model without a stride-4 map gives three), and
returns them as a list, as every backbone here does. The second argument says where the weights come from:

- ``True``: timm's own download and cache (ImageNet weights), on the user's machine. With the environment variable
  ``ULTRAPATCH_TIMM_PRETRAINED=0`` it starts from random weights instead: ``ultrapatch verify`` and the tests set it,
  so that nothing is ever downloaded behind the user's back;
- ``False``: random weights;
- a path: a local weights file of that model in timm's layout (``.pth``, ``.bin`` or ``.safetensors``), loaded
  strictly. A file that does not fit is refused with the counts of missing, unexpected and mis-shaped tensors.

What timm builds is kept as timm built it:

- Ultralytics' ``initialize_weights`` sets eps 1e-3 and momentum 0.03 on every module whose type *is*
  ``nn.BatchNorm2d`` (and, before 8.2, ``inplace=True`` on ReLU, SiLU, ...). A pretrained backbone's maps would then
  differ from timm's. Those modules get a type of their own here (a subclass, same behaviour), which that function
  passes over;
- a checkpoint holds the model's name, its tensors and their flags, never timm's classes: loading it rebuilds the
  backbone with timm (no download) and puts the tensors back. So a ``best.pt`` loads with any timm release that knows
  the model, and Ultralytics' safe loading (``ULTRALYTICS_SAFE_LOAD=1``) needs no class from timm.

This file depends on torch, and on timm only when a TimmBackbone is built (``pip install timm``): a fork without timm
still imports and builds every other model.
"""

from __future__ import annotations

import copy
import difflib
import logging
import os
import re
from typing import Any

import torch
from torch import nn

__all__ = ["TimmBackbone"]

PRETRAINED_ENV = "ULTRAPATCH_TIMM_PRETRAINED"
FEATURE_STRIDES = (4, 8, 16, 32)
REQUIRED_STRIDES = (8, 16, 32)  # what a YOLO or RT-DETR head reads: P3, P4, P5
NAME = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)?\Z")  # a timm model name, optionally with its weights tag
LOGGER = logging.getLogger("ultralytics")


def _own(base: type[nn.Module]) -> type[nn.Module]:
    return type(base.__name__, (base,), {"__module__": __name__, "__doc__": f"timm's {base.__name__}, kept as timm set it."})


# The types `initialize_weights` matches with `type(m) is ...`, and the subclass each becomes inside a TimmBackbone.
KEPT = {base: _own(base) for base in (nn.BatchNorm2d, nn.Hardswish, nn.LeakyReLU, nn.ReLU, nn.ReLU6, nn.SiLU)}


def _timm():
    try:
        import timm
    except ImportError as exc:
        raise ImportError("TimmBackbone needs timm in this Python environment: pip install timm") from exc
    return timm


def feature_plan(name: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(timm's out_indices, channels, strides) of the maps a TimmBackbone of `name` returns, read from timm's
    `feature_info` on the meta device (no weights, no forward pass).

    ValueError, with a sentence saying why and what to do, for a name timm does not know, a model that needs a fixed
    input size, and one without maps at strides 8, 16 and 32.
    """
    timm = _timm()
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(f"{name!r} is not a timm model name (lower-case letters, digits and _, e.g. 'resnet18').")
    base = name.split(".")[0]
    if not timm.is_model(base):
        close = difflib.get_close_matches(base, timm.list_models(), n=3, cutoff=0.7)
        hint = f"did you mean {', '.join(close)}?" if close else f"timm.list_models('*{base[:4]}*') lists similar names."
        raise ValueError(f"timm has no model named {base!r}; {hint}")
    cfg = timm.get_pretrained_cfg(name, allow_unregistered=True)
    if cfg is not None and getattr(cfg, "fixed_input_size", False):
        size = "x".join(map(str, cfg.input_size[1:]))
        raise ValueError(
            f"{name} needs a fixed input size ({size}): YOLO and RT-DETR train and predict at other sizes, so it "
            f"cannot be their backbone. Choose a convolutional or hierarchical model (resnet18, convnext_nano, ...)."
        )
    try:
        with torch.device("meta"):
            probe = timm.create_model(name, features_only=True, pretrained=False)
    except Exception as exc:  # noqa: BLE001 - timm raises RuntimeError or others for models without feature maps
        raise ValueError(f"timm cannot build {name} with features_only=True ({exc}); choose another model.") from None
    info = list(probe.feature_info.info)
    last = {d["reduction"]: i for i, d in enumerate(info) if d["reduction"] in FEATURE_STRIDES}
    missing = [s for s in REQUIRED_STRIDES if s not in last]
    if missing:
        have = sorted({int(d["reduction"]) for d in info})
        raise ValueError(
            f"{name}'s feature maps are at strides {have}; a YOLO or RT-DETR head needs maps at strides 8, 16 and 32 "
            f"(missing {', '.join(map(str, missing))}). Choose a hierarchical model (resnet18, efficientnet_b0, ...)."
        )
    indices = tuple(last[s] for s in FEATURE_STRIDES if s in last)
    return indices, tuple(int(info[i]["num_chs"]) for i in indices), tuple(int(info[i]["reduction"]) for i in indices)


def read_weights(name: str, path: str) -> dict[str, torch.Tensor]:
    """The state dict in `path` (timm's .pth/.bin/.safetensors of model `name`), checked against the whole timm model
    key by key and shape by shape. ValueError with the counts when it does not fit; nothing is loaded."""
    timm = _timm()
    path = os.path.expanduser(str(path))
    if not os.path.isfile(path):
        raise ValueError(f"TimmBackbone {name}: no weights file {path}; give an existing .pth, .bin or .safetensors.")
    try:
        from timm.models import load_state_dict

        state = load_state_dict(path, use_ema=False, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zip, bad safetensors header, a pickle of other objects...
        raise ValueError(f"TimmBackbone {name}: cannot read weights from {path}: {exc}") from None
    with torch.device("meta"):
        own = timm.create_model(name, pretrained=False).state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshaped = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or misshaped:
        examples = ", ".join((missing + unexpected + misshaped)[:3])
        raise ValueError(
            f"TimmBackbone {name}: {path} does not fit timm's {name}: {len(missing)} tensors missing, {len(unexpected)} "
            f"unexpected, {len(misshaped)} of another shape (e.g. {examples}). Give the state dict of "
            f"timm.create_model({name!r}) (e.g. saved with torch.save(model.state_dict(), ...))."
        )
    return state


def _keep_own_settings(body: nn.Module) -> None:
    for module in body.modules():
        kept = KEPT.get(type(module))
        if kept is not None:
            module.__class__ = kept


class WeightsUnavailable(RuntimeError):
    """timm's pretrained weights are neither in this machine's cache nor reachable."""


def check_weights_reachable(name: str) -> None:
    """Before timm's download of `name`'s pretrained weights: when they are not in the local cache and their host
    cannot be reached (no network, or HF_HUB_OFFLINE), fail at once with one sentence that says where they were
    looked for and how to get them, instead of a minute of retries and huggingface_hub's traceback."""
    import socket
    from urllib.parse import urlparse

    timm = _timm()
    try:
        from timm.models._builder import _resolve_pretrained_source

        cfg = timm.models.get_pretrained_cfg(name)
        source, where = _resolve_pretrained_source(cfg.to_dict() if cfg is not None else {})
    except Exception:  # noqa: BLE001 - a timm without these helpers: its own download says what happens
        return
    if source == "hf-hub":
        repo, _, revision = where.partition("@")
        try:
            from huggingface_hub import constants, try_to_load_from_cache
        except ImportError:
            return
        for filename in ("model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
            if isinstance(try_to_load_from_cache(repo, filename, revision=revision or None), str):
                return
        cache = os.path.join(constants.HF_HUB_CACHE, "models--" + repo.replace("/", "--"))
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
        fetch = f"`huggingface-cli download {repo}`"
    elif source == "url":
        cache = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(where).path))
        if os.path.isfile(cache):
            return
        endpoint, offline, fetch = where, False, f"a download of {where}"
    else:
        return
    host = urlparse(endpoint).hostname or endpoint
    if not offline:
        try:
            socket.create_connection((host, urlparse(endpoint).port or 443), timeout=3).close()
            return
        except OSError:
            pass
    why = "HF_HUB_OFFLINE is set" if offline else f"{host} cannot be reached (no network)"
    raise WeightsUnavailable(
        f"TimmBackbone {name}: timm's pretrained weights are not in this machine's cache ({cache}) and {why}. Get "
        f"them one of these ways: set HF_ENDPOINT to a mirror you can reach; copy that folder from a machine that has "
        f"the weights (there: `python -c \"import timm; timm.create_model('{name}', pretrained=True)\"` or {fetch}); "
        f"write a local weights file in the YAML row ([\"{name}\", \"/path/to/model.safetensors\"]); or write False "
        f"there for random weights"
    )


class TimmBackbone(nn.Module):
    """A timm model's feature maps at strides 4, 8, 16 and 32; `width_list` holds their channels."""

    def __init__(self, name: str, pretrained: bool | str = True):
        super().__init__()
        timm = _timm()
        self.model_name = name
        self.out_indices, widths, strides = feature_plan(name)
        self.width_list, self.strides = list(widths), list(strides)
        state = None
        if isinstance(pretrained, (str, os.PathLike)):
            state, source = read_weights(name, pretrained), f"weights from {pretrained}"
        elif pretrained and os.environ.get(PRETRAINED_ENV, "1") == "0":
            pretrained, source = False, f"random weights ({PRETRAINED_ENV}=0)"
        else:
            source = "timm's pretrained weights" if pretrained else "random weights"
            if pretrained:
                check_weights_reachable(name)
        # timm loads a features-only model leniently and warns of the classifier's tensors it leaves out; the file was
        # checked against the whole model above, so that warning says nothing here
        builder = logging.getLogger("timm.models._builder")
        level, builder.level = builder.level, logging.ERROR
        try:
            self.body = timm.create_model(
                name,
                features_only=True,
                out_indices=self.out_indices,
                pretrained=bool(pretrained),
                **({"pretrained_cfg_overlay": {"state_dict": state}} if state is not None else {}),
            )
        finally:
            builder.level = level
        _keep_own_settings(self.body)
        self.deploy = False
        self.weights = source
        self.pretrained = None if source.startswith("random") else source  # what verify's weights check reports
        LOGGER.info(f"TimmBackbone {name}: maps of {self.width_list} channels at strides {self.strides}, {source}")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x))

    def switch_to_deploy(self) -> None:
        """Reparameterise the blocks that know how (MobileOne, RepViT, FastViT...): Ultralytics' fuse() calls this."""
        from timm.utils.model import reparameterize_model

        reparameterize_model(self.body, inplace=True)
        self.deploy = True

    # A checkpoint holds the name and the tensors, not timm's classes (see the module's docstring).
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        modules = dict(state["_modules"])
        body = modules.pop("body")
        state["_modules"] = modules
        state["timm_body"] = {
            "parameters": dict(body.named_parameters()),
            "buffers": dict(body.named_buffers()),
            "eval": [name for name, module in body.named_modules() if not module.training],
        }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        saved = state.pop("timm_body")
        self.__dict__.update(state)
        feature_plan(self.model_name)  # the same checks as a build: a name from a file is never handed to timm unchecked
        # timm's structure without its weights (the meta device allocates nothing); a reparameterised one is built on
        # the CPU, since reparameterising computes new tensors
        with torch.device("cpu" if self.deploy else "meta"):
            body = _timm().create_model(self.model_name, features_only=True, out_indices=self.out_indices, pretrained=False)
        if self.deploy:
            from timm.utils.model import reparameterize_model

            reparameterize_model(body, inplace=True)
        _keep_own_settings(body)
        for kind, tensors in (("_parameters", saved["parameters"]), ("_buffers", saved["buffers"])):
            for name, tensor in tensors.items():
                owner, _, leaf = name.rpartition(".")
                getattr(body.get_submodule(owner), kind)[leaf] = tensor
        left = [n for n, t in (*body.named_parameters(), *body.named_buffers()) if t.is_meta]
        if left:
            raise ValueError(f"TimmBackbone {self.model_name}: the checkpoint lacks {len(left)} tensors (e.g. {left[0]}).")
        eval_names = set(saved["eval"])
        for name, module in body.named_modules():
            module.training = name not in eval_names
        self._modules["body"] = body

    def __deepcopy__(self, memo: dict) -> TimmBackbone:
        """An ordinary deep copy (EMA, checkpoint saving): the pickling above is for files only."""
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return new
