"""What the layer indices of a patched model mean to the fork's own code: run in a subprocess with the fork first on
sys.path, print JSON.

    python index_probe.py TREE MODEL.yaml VISUALIZE_DIR

- `table`: the index column parse_model prints, against the YAML's rows in the tutorials' numbering;
- `places`: each layer's `i` against its place in the model;
- `profile`: `predict(profile=True)` runs (it times and counts every layer);
- `visualize` (up to 8.3.x): the layers `predict(visualize=DIR)` saves feature maps for, by the index in the file name;
- `embed_default` / `embed_yaml`: `predict(embed=[len(model) - 2])` and `predict(embed=[second-to-last YAML index])`
  against the second-to-last layer's own output, pooled as embed pools it.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import re
import sys
from pathlib import Path


def main(tree: str, name: str, visualize: str) -> dict:
    sys.path.insert(0, tree)
    import torch
    from ultralytics.nn import tasks
    from ultralytics.utils import LOGGER

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    LOGGER.addHandler(handler)
    model = (tasks.RTDETRDetectionModel if "rtdetr" in name else tasks.DetectionModel)(name, verbose=True).eval()
    LOGGER.removeHandler(handler)
    table = [int(m.group(1)) for m in re.finditer(r"^\s*(\d+)\s+(?:-?\d+|\[[^\]]*\])\s+\d+\s+\d+\s", stream.getvalue(), re.M)]
    rows = model.yaml["backbone"] + model.yaml["head"]
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    result = {"table": table, "places": [layer.i for layer in model.model], "layers": len(model.model)}
    with torch.no_grad():
        model.predict(image, profile=True)
        result["profile"] = True
        if "visualize" in inspect.signature(model.predict).parameters:  # gone from 8.4.x's models
            model.predict(image, visualize=Path(visualize))
            result["visualize"] = sorted({
                int(m.group(1)) for p in Path(visualize).iterdir() if (m := re.match(r"stage(\d+)_", p.name))
            })
        captured = []
        hook = model.model[-2].register_forward_hook(lambda _m, _i, out: captured.append(out))
        default = model.predict(image, embed=[len(model.model) - 2])
        second_last = len(rows) - 2 + 4 * sum(hasattr(layer, "width_list") for layer in model.model)
        named = model.predict(image, embed=[second_last])
        hook.remove()
    pooled = torch.nn.functional.adaptive_avg_pool2d(captured[0], (1, 1)).flatten()
    result["embed_default"] = bool(default[0].shape == pooled.shape and torch.allclose(default[0], pooled))
    result["embed_yaml"] = bool(named[0].shape == pooled.shape and torch.allclose(named[0], pooled))
    result["second_last"] = second_last
    return result


if __name__ == "__main__":
    out = sys.stdout
    sys.stdout = sys.stderr  # the fork logs to stdout
    out.write(json.dumps(main(*sys.argv[1:])) + "\n")
