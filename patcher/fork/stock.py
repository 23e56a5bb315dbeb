"""verify's `stock` check, the half that runs in the fork's interpreter: build every stock model YAML of a fork and
print, as JSON, what must not change when the fork is patched: its layer table (type, index, from, parameters), save
list, strides, the size of the stride probe, its outputs for one seeded input with seeded weights, and (apart) the
seconds its build took.

    python launch.py stock TREE [SKIP.json]

SKIP.json lists YAMLs (paths relative to TREE) that are not the release's: the ones ultrapatch installed. Run with
the fork first on sys.path (the script puts TREE there). A YAML that fails to build is reported with its error (the
same error is expected of the unpatched release). Needs only the standard library, torch and the fork.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from .common import tensors


def probe(path: Path) -> dict:
    import torch
    from ultralytics.nn import tasks

    cfg = tasks.yaml_model_load(path)
    stem = path.stem
    if "rtdetr" in stem:
        cls = tasks.RTDETRDetectionModel
    else:
        task = tasks.guess_model_task(cfg)
        cls = {"detect": tasks.DetectionModel, "segment": tasks.SegmentationModel, "pose": tasks.PoseModel,
               "obb": getattr(tasks, "OBBModel", None), "classify": tasks.ClassificationModel}.get(task)
        if "world" in stem:
            cls = tasks.WorldModel
        elif "yoloe" in stem:
            cls = getattr(tasks, "YOLOESegModel" if "seg" in stem else "YOLOEModel", None)
    if cls is None:
        return {"error": "no model class"}
    probes = []
    zeros = torch.zeros

    def recording(*size, **kwargs):
        shape = size[0] if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
        if len(shape) == 4:
            probes.append(list(shape[2:]))
        return zeros(*size, **kwargs)

    torch.manual_seed(0)
    torch.zeros = recording
    started = time.perf_counter()
    try:
        model = cls(cfg, verbose=False)
    finally:
        torch.zeros = zeros
    seconds = time.perf_counter() - started
    model.eval()
    table = [[type(m).__name__, m.i, m.f if isinstance(m.f, int) else list(m.f), sum(p.numel() for p in m.parameters())]
             for m in model.model]
    with torch.no_grad():
        image = torch.rand(1, 3, 160, 128, generator=torch.Generator().manual_seed(1))  # RT-DETR: 420 anchors, 300 queries
        outputs = tensors(model(image))
    return {
        "table": table,
        "params": sum(p.numel() for p in model.parameters()),
        "save": list(model.save),
        "stride": [float(s) for s in getattr(model, "stride", torch.zeros(0)).flatten().tolist()],
        "probes": probes,
        "outputs": [[list(t.shape), round(float(t.double().sum()), 3)] for t in outputs],
        "seconds": round(seconds, 4),
    }


def main(argv: list[str]) -> int:
    tree = Path(argv[0]).resolve()
    sys.path.insert(0, str(tree))
    real_stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # Ultralytics logs to stdout
    import torch

    torch.set_num_threads(1)
    models = sorted((tree / "ultralytics" / "cfg" / "models").rglob("*.yaml"))
    skip = set(json.loads(Path(argv[1]).read_text(encoding="utf-8"))) if len(argv) > 1 else set()
    report = {}
    for path in models:
        name = path.relative_to(tree).as_posix()
        if name in skip:
            continue
        try:
            report[name] = probe(path)
        except Exception as exc:  # noqa: BLE001 - the unpatched fork must fail the same way
            report[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    real_stdout.write(json.dumps(report))
    real_stdout.flush()
    return 0

