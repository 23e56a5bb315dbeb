"""`ultrapatch export-checkpoint` and `import-checkpoint`: carry a trained model to another tree, run as a script in the
fork's own interpreter (it unpickles the fork's classes), with the fork first on sys.path.

    python launch.py carry export TREE CHECKPOINT OUT     # a trained best.pt -> a portable checkpoint
    python launch.py carry import TREE PORTABLE OUT       # a portable checkpoint -> a best.pt of this tree

A trained `best.pt` pickles the model's classes, `ultralytics.nn.AddModules.*` among them, so it loads only where
those files are. The portable checkpoint holds no class at all: the model's YAML (a dict), the name of its model class
(`DetectionModel`, `RTDETRDetectionModel`, ...), its weights as a state dict, its class names and its training
arguments, so `torch.load(OUT, weights_only=True)` reads it anywhere. The weights are keyed by the YAML's numbering;
a checkpoint of the tutorials' layout (one backbone layer, its maps spread by the forward loops, every later layer 4
places before its index) is renumbered on the way. `import` rebuilds the model from the YAML in a tree where the
backbone is installed, loads the weights strictly, and writes a checkpoint that the tree's `YOLO(...)` loads.

Needs only the standard library, torch and the fork. Prints one JSON line: what was done, or the error.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

FORMAT = "ultrapatch-portable-checkpoint"
VERSION = 1
LAYER_KEY = re.compile(r"^model\.(\d+)\.(.*)$")


class CarryError(Exception):
    """What is wrong with the input, as a sentence for the user."""


def _plain(value):
    """`value` as JSON types (Paths and other objects as strings), so that a weights_only load accepts it."""
    return json.loads(json.dumps(value, default=str))


def yaml_keys(model) -> dict[str, str]:
    """Map each state-dict key of `model` to its key in the YAML's numbering: the same, except in the tutorials'
    layout, where a layer after a backbone layer (one marked `backbone`) sits 4 places before its index."""
    shift, renumber = 0, {}
    for place, layer in enumerate(model.model):
        renumber[place] = place + shift
        if hasattr(layer, "backbone"):
            shift += 4
    keys = {}
    for key in model.state_dict():
        match = LAYER_KEY.match(key)
        keys[key] = f"model.{renumber[int(match.group(1))]}.{match.group(2)}" if match else key
    return keys


def export(source: Path, out: Path) -> dict:
    import torch

    try:
        ckpt = torch.load(source, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - a file that is no checkpoint of this fork
        raise CarryError(f"{source} does not load as a checkpoint here ({type(exc).__name__}: {str(exc)[:200]})") from None
    model = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else None
    if model is None or not hasattr(model, "yaml") or not hasattr(model, "model"):
        raise CarryError(f"{source} holds no Ultralytics model (no 'ema' or 'model' with a YAML)")
    model = model.float()
    renamed = yaml_keys(model)
    state = {renamed[k]: v.detach().clone() for k, v in model.state_dict().items()}
    portable = {
        "format": FORMAT,
        "version": VERSION,
        "model_class": type(model).__name__,
        "yaml": _plain(model.yaml),
        "names": _plain(getattr(model, "names", None)),
        "train_args": _plain(ckpt.get("train_args") or {}),
        "source_release": str(ckpt.get("version", "")),
        "state_dict": state,
    }
    torch.save(portable, out)
    torch.load(out, weights_only=True)  # what the format promises
    return {"layers": len(model.model), "tensors": len(state), "renumbered": sum(k != v for k, v in renamed.items())}


def import_(source: Path, out: Path) -> dict:
    import torch
    import ultralytics
    from ultralytics.nn import tasks

    try:
        portable = torch.load(source, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a pickle of classes, or no checkpoint at all
        raise CarryError(
            f"{source} is not a portable checkpoint: it does not load with weights_only=True (make one with "
            f"`ultrapatch export-checkpoint`)"
        ) from None
    if not isinstance(portable, dict) or portable.get("format") != FORMAT:
        raise CarryError(f"{source} is not a portable checkpoint (make one with `ultrapatch export-checkpoint`)")
    cls = getattr(tasks, portable["model_class"], None)
    if cls is None:
        raise CarryError(f"this Ultralytics ({ultralytics.__version__}) has no {portable['model_class']}")
    yaml = dict(portable["yaml"])
    try:
        model = cls(yaml, nc=yaml.get("nc"), verbose=False)
    except KeyError as exc:
        raise CarryError(
            f"this tree cannot build the model: it does not know {exc} (apply the backbone first: "
            f"`ultrapatch apply TREE --backbone NAME`)"
        ) from None
    missing, unexpected = model.load_state_dict(portable["state_dict"], strict=False)
    wrong = [k for k, v in portable["state_dict"].items() if k in model.state_dict() and model.state_dict()[k].shape != v.shape]
    if missing or unexpected or wrong:
        raise CarryError(
            f"the weights do not fit the model this tree builds from the YAML: {len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(wrong)} of another shape"
        )
    if portable.get("names") is not None:
        model.names = portable["names"]
    model.args = {**portable.get("train_args", {})}
    ckpt = {
        "epoch": -1,
        "best_fitness": None,
        "model": model.half(),
        "ema": None,
        "updates": None,
        "optimizer": None,
        "train_args": portable.get("train_args", {}),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "version": ultralytics.__version__,
    }
    torch.save(ckpt, out)
    return {"layers": len(model.model), "tensors": len(portable["state_dict"])}


def main(argv: list[str]) -> int:
    report = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the fork logs to stdout
    action, tree, source, out = argv
    sys.path.insert(0, tree)
    try:
        done = (export if action == "export" else import_)(Path(source), Path(out))
        report.write(json.dumps({"ok": True, **done}) + "\n")
    except CarryError as exc:
        report.write(json.dumps({"ok": False, "error": str(exc)}) + "\n")
    report.flush()
    return 0

