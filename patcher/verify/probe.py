"""Build and run models in a fork's own interpreter; print one JSON report on stdout.

Run as a script, never imported by ultrapatch itself: it needs only the standard library, torch and the fork, so it
works under any interpreter the user points at. The fork goes first on `sys.path`.

    python probe.py [--build-only] TREE MODEL:BUILDER [MODEL:BUILDER ...]

MODEL is a YAML name the fork finds by itself (e.g. yolo11n-MobileNetV3_small_n.yaml); BUILDER is YOLO or RTDETR.
For each model the report holds its layers, parameters and GFLOPs, the strides of the maps its head receives at each
input size in eval and train mode, the loss on a synthetic batch with the gradients it leaves, and what
`model.fuse()` changes. `--build-only` builds each model and runs one eval forward, for sweeping many YAMLs.
"""

from __future__ import annotations

import json
import math
import os
import sys
import traceback
from pathlib import Path

SIZES = ((640, 640), (640, 480), (480, 640))


def head_inputs(model, run) -> list:
    """Call `run()`; the maps the model's last layer received (Classify receives one)."""
    seen = []
    handle = model.model[-1].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        run()
    finally:
        handle.remove()
    return list(seen[0]) if isinstance(seen[0], (list, tuple)) else [seen[0]]


def head_input_strides(model, height: int, run) -> list[float]:
    """Call `run()`; the stride of every map the model's last layer received (input height / map height)."""
    return [height / f.shape[-2] for f in head_inputs(model, run)]


def synthetic_batch(torch, task: str, size: tuple[int, int], boxes_per_image: int = 2, images: int = 3) -> dict:
    """A training batch for `task` as the fork's dataloader collates it: random boxes of class 0 (or 1), with the
    masks, keypoints or angles the task needs; class labels for classification. Three images, not two: 8.4.0's
    segmentation loss takes a prototype tensor of length 2 for a (proto, semantic) pair."""
    h, w = size
    if task == "classify":
        return {"img": torch.rand(images, 3, h, w), "cls": torch.arange(images) % 2}
    n = boxes_per_image * images
    xy = torch.rand(n, 2) * 0.5 + 0.25
    wh = torch.rand(n, 2) * 0.2 + 0.1
    batch = {
        "img": torch.rand(images, 3, h, w),
        "cls": torch.zeros(n, 1),
        "bboxes": torch.cat([xy, wh], 1),
        "batch_idx": torch.arange(images).repeat_interleave(boxes_per_image).float(),
        "resized_shape": [(h, w)] * images,  # 8.4.0's OBB and pose losses read the image size from here
    }
    if task == "obb":
        batch["bboxes"] = torch.cat([xy, wh, torch.rand(n, 1) * 1.5], 1)  # xywh and an angle in radians
    elif task == "pose":
        offsets = (torch.rand(n, 17, 2) - 0.5) * wh[:, None]
        batch["keypoints"] = torch.cat([xy[:, None] + offsets, torch.full((n, 17, 1), 2.0)], 2)  # visible
    elif task == "segment":  # overlapping masks: each pixel holds the 1-based index of its box in the image
        masks = torch.zeros(images, h, w)
        for k in range(n):
            x0, y0 = ((xy[k] - wh[k] / 2) * torch.tensor([w, h])).int().tolist()
            x1, y1 = ((xy[k] + wh[k] / 2) * torch.tensor([w, h])).int().tolist()
            masks[k // boxes_per_image, y0:y1, x0:x1] = k % boxes_per_image + 1
        batch["masks"] = masks
    return batch


def probe(name: str, builder: str) -> dict:
    import torch
    import ultralytics
    from ultralytics.cfg import get_cfg

    cls = getattr(ultralytics, builder)
    wrapper = cls(name)
    model = wrapper.model
    task = wrapper.task
    report: dict = {"name": name, "builder": builder, "task": task}
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
        image, batch = torch.zeros(1, 3, h, w), synthetic_batch(torch, task, (h, w))
        run = (lambda: model(image)) if builder == "YOLO" else (lambda: model.loss(batch))
        strides[f"train {h}x{w}"] = head_input_strides(model, h, run)
    report["head_strides"] = strides

    batch = synthetic_batch(torch, task, (640, 640))
    loss, _items = model.loss(batch)
    total = loss.sum()
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    report["loss"] = float(total)
    report["loss_finite"] = math.isfinite(float(total))
    report["grads_finite"] = all(g is None or bool(torch.isfinite(g).all()) for g in grads)
    backbone_grads = [p.grad for p in model.model[0].parameters()]
    report["backbone_params_without_grad"] = sum(g is None for g in backbone_grads)

    model.eval()  # fuse, as Ultralytics does before validation and export: what reaches the head stays the same
    image = torch.rand(1, 3, 640, 480)
    with torch.no_grad():
        before = head_inputs(model, lambda: model(image))
        model.fuse(verbose=False)
        after = head_inputs(model, lambda: model(image))
    # the maps the head receives, not its output: RT-DETR's top-k query selection turns rounding into other queries
    report["fuse_relative_error"] = max(
        float((a - b).abs().max() / a.abs().max().clamp(min=1e-12)) for a, b in zip(before, after)
    )
    report["deploy_blocks"] = sum(getattr(m, "deploy", None) is True for m in model.modules())
    return report


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
        "head_strides": {"eval 640x480": strides},
    }


def main(argv: list[str]) -> int:
    # Ultralytics logs to stdout; keep stdout for the report alone by sending file descriptor 1 to stderr.
    report_stream = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    check = build_only if argv[0] == "--build-only" else probe
    argv = argv[1:] if check is build_only else argv
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
            result["models"].append(check(name, builder or "YOLO"))
        except Exception as exc:  # noqa: BLE001 - reported, not raised: the caller decides
            result["models"].append({"name": name, "builder": builder, "error": repr(exc), "traceback": traceback.format_exc()})
    report_stream.write(json.dumps(result) + "\n")
    report_stream.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
