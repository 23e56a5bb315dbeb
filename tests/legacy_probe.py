"""A model in the tutorials' layout (and ultrapatch 0.1's) still runs in a patched fork: checkpoints trained before
keep working. Run with the fork first on sys.path; prints JSON.

    python legacy_probe.py TREE MODEL.yaml

The model is built in the patched fork, then put into the old layout as a tutorial's parse_model built it: one layer
for the backbone, marked with a `backbone` attribute and numbered 4, no BackboneMap layers, every later layer keeping
its YAML index. Its outputs must be the model's own.
"""

from __future__ import annotations

import json
import sys


def to_tutorial_layout(model) -> None:
    """Put a model built by the patched fork (backbone at 0, BackboneMap layers 1-4) into the tutorials' layout, as
    their parse_model built it: one backbone layer marked `backbone` and numbered 4, no BackboneMap layers, every
    later layer keeping its YAML index. The tests of old checkpoints share it."""
    import torch

    backbone = model.model[0]
    assert all(type(layer).__name__ == "BackboneMap" for layer in model.model[1:5])
    backbone.backbone, backbone.i = True, 4  # as the tutorials' `m_.backbone = True` and `i + 4 if backbone`
    model.model = torch.nn.Sequential(backbone, *model.model[5:])


def main(tree: str, name: str) -> dict:
    sys.path.insert(0, tree)
    import torch
    from ultralytics.nn import tasks

    model = (tasks.RTDETRDetectionModel if "rtdetr" in name else tasks.DetectionModel)(name, verbose=False).eval()
    image = torch.rand(1, 3, 256, 192, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(image)
        to_tutorial_layout(model)
        got = model(image)
    pairs = list(zip(expected if isinstance(expected, (list, tuple)) else [expected], got if isinstance(got, (list, tuple)) else [got]))
    first = [(a, b) for a, b in pairs if hasattr(a, "shape")]
    return {"layers": len(model.model), "same": bool(first) and all(torch.equal(a, b) for a, b in first)}


if __name__ == "__main__":
    out = sys.stdout
    sys.stdout = sys.stderr
    out.write(json.dumps(main(*sys.argv[1:])) + "\n")
