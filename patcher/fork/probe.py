"""Build models in a fork's own interpreter and print one JSON report on stdout.

    python launch.py probe TREE MODEL:BUILDER [MODEL:BUILDER ...]

MODEL is a YAML name the fork finds by itself (e.g. yolo11n-MobileNetV3_small_n.yaml); BUILDER is YOLO or RTDETR.
Each model is built and run once in eval mode at 640x480: the report holds its layers, parameters, the class name
the layer table shows for the backbone and its index, and the strides its head receives. The tests sweep every
installed YAML with it; `ultrapatch verify` is what runs, trains, reloads and fuses them.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from .data import head_input_strides


def build_only(name: str, builder: str) -> dict:
    """Build a model and run one eval forward at 640x480: its size, and the strides its head receives."""
    import torch
    import ultralytics

    wrapper = getattr(ultralytics, builder)(name)
    model = wrapper.model.eval()
    with torch.no_grad():
        strides = head_input_strides(model, 640, lambda: model(torch.zeros(1, 3, 640, 480)))
    return {
        "name": name,
        "builder": builder,
        "task": wrapper.task,
        "layers": len(list(model.modules())),
        "params": sum(p.numel() for p in model.parameters()),
        "backbone_type": getattr(model.model[0], "type", ""),
        "backbone_index": getattr(model.model[0], "i", None),
        "map_layers": [getattr(layer, "type", "") for layer in model.model[1:5]],
        "indices_are_places": all(getattr(layer, "i", None) == k for k, layer in enumerate(model.model)),
        "head_strides": {"eval 640x480": strides},
    }


def main(argv: list[str]) -> int:
    # Ultralytics logs to stdout; keep stdout for the report alone by sending file descriptor 1 to stderr.
    report_stream = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    tree = Path(argv[0]).resolve()
    sys.path.insert(0, str(tree))
    import torch
    import ultralytics

    result = {
        "ultralytics_file": ultralytics.__file__,
        "release": ultralytics.__version__,
        "torch": torch.__version__,
        "models": [],
    }
    for spec in argv[1:]:
        name, _, builder = spec.partition(":")
        try:
            result["models"].append(build_only(name, builder or "YOLO"))
        except Exception as exc:  # noqa: BLE001 - reported, not raised: the caller decides
            result["models"].append({"name": name, "builder": builder, "error": repr(exc), "traceback": traceback.format_exc()})
    report_stream.write(json.dumps(result) + "\n")
    report_stream.flush()
    return 0

