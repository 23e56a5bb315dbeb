"""Build and run models in a fork's own interpreter; print one JSON report on stdout.

Run as a script, never imported by ultrapatch itself: it needs only the standard library, torch and the fork, so it
works under any interpreter the user points at. The fork goes first on `sys.path`.

    python probe.py TREE MODEL:BUILDER [MODEL:BUILDER ...]

MODEL is a YAML name the fork finds by itself (e.g. yolo11n-MobileNetV3_small_n.yaml); BUILDER is YOLO or RTDETR.
For each model the report holds its layers, parameters and GFLOPs, the strides of the maps its head receives at each
input size in eval and train mode, and the loss on a synthetic batch with the gradients it leaves.
"""

from __future__ import annotations

import json
import math
import os
import sys
import traceback
from pathlib import Path

SIZES = ((640, 640), (640, 480), (480, 640))


def head_input_strides(model, height: int, run) -> list[float]:
    """Call `run()`; the stride of every map the model's last layer received (input height / map height)."""
    seen = []
    handle = model.model[-1].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        run()
    finally:
        handle.remove()
    return [height / f.shape[-2] for f in seen[0]]


def synthetic_batch(torch, size: tuple[int, int], boxes_per_image: int = 3, images: int = 2) -> dict:
    """Random normalised xywh boxes of class 0, as the detection losses read them."""
    n = boxes_per_image * images
    xy = torch.rand(n, 2) * 0.5 + 0.25
    wh = torch.rand(n, 2) * 0.2 + 0.1
    return {
        "img": torch.rand(images, 3, *size),
        "cls": torch.zeros(n, 1),
        "bboxes": torch.cat([xy, wh], 1),
        "batch_idx": torch.arange(images).repeat_interleave(boxes_per_image).float(),
    }


def probe(name: str, builder: str) -> dict:
    import torch
    import ultralytics
    from ultralytics.cfg import get_cfg

    cls = getattr(ultralytics, builder)
    report: dict = {"name": name, "builder": builder}
    wrapper = cls(name)
    model = wrapper.model
    report["layers"] = len(list(model.modules()))
    report["params"] = sum(p.numel() for p in model.parameters())
    from ultralytics.utils.torch_utils import get_flops

    report["gflops"] = round(get_flops(model, 640), 3)
    report["stride"] = [float(s) for s in model.stride]
    report["backbone_type"] = getattr(model.model[0], "type", "")
    report["backbone_index"] = getattr(model.model[0], "i", None)

    strides = {}
    model.eval()
    with torch.no_grad():
        for h, w in SIZES:
            image = torch.zeros(1, 3, h, w)
            strides[f"eval {h}x{w}"] = head_input_strides(model, h, lambda: model(image))
    model.train()
    model.args = get_cfg()  # as the trainer does: the losses read their gains from it,
    model.nc = model.yaml["nc"]  # and RT-DETR's its class count
    for h, w in SIZES:  # RT-DETR's training forward needs targets: its loss is that forward
        image, batch = torch.zeros(1, 3, h, w), synthetic_batch(torch, (h, w))
        run = (lambda: model(image)) if builder == "YOLO" else (lambda: model.loss(batch))
        strides[f"train {h}x{w}"] = head_input_strides(model, h, run)
    report["head_strides"] = strides

    batch = synthetic_batch(torch, (640, 640))
    loss, _items = model.loss(batch)
    total = loss.sum()
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    report["loss"] = float(total)
    report["loss_finite"] = math.isfinite(float(total))
    report["grads_finite"] = all(g is None or bool(torch.isfinite(g).all()) for g in grads)
    backbone_grads = [p.grad for p in model.model[0].parameters()]
    report["backbone_params_without_grad"] = sum(g is None for g in backbone_grads)
    return report


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
            result["models"].append(probe(name, builder or "YOLO"))
        except Exception as exc:  # noqa: BLE001 - reported, not raised: the caller decides
            result["models"].append({"name": name, "builder": builder, "error": repr(exc), "traceback": traceback.format_exc()})
    report_stream.write(json.dumps(result) + "\n")
    report_stream.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
