"""Synthetic data for the checks and bench: the maps a head receives, training batches as the fork's dataloader
collates them, and small validation sets on disk in the layout the fork's loaders read."""

from __future__ import annotations

import json
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


# A validation set: a landscape and a portrait image (H x W), so detection validation runs two rectangular batches.
VAL_IMAGES = ((256, 320), (320, 256))
# One object per image as the task's label line (normalised): a box, a polygon, a box with keypoints, four corners.
VAL_LABELS = {
    "detect": "0 0.5 0.5 0.6 0.6",
    "segment": "0 0.2 0.2 0.8 0.2 0.8 0.8 0.2 0.8",
    "obb": "0 0.2 0.3 0.8 0.2 0.8 0.7 0.2 0.8",
}


def synthetic_dataset(root: Path, task: str, kpt_shape: tuple[int, int] | None = None) -> str:
    """Write a two-image validation set for `task` under `root` in the layout the fork's loaders read, and return
    what its `val(data=...)` takes: a data YAML, or for classification the dataset folder (train/ and val/, one
    class folder each). `kpt_shape` is the pose model's (keypoints, 2 or 3)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    images = [(rng.random((h, w, 3)) * 255).astype(np.uint8) for h, w in VAL_IMAGES]
    if task == "classify":
        for split in ("train", "val"):
            for k, image in enumerate(images):
                folder = root / split / f"class{k}"
                folder.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(folder / "0.jpg"), image)
        return str(root)
    label = VAL_LABELS.get(task, VAL_LABELS["detect"])
    lines = ["path: " + json.dumps(str(root)), "train: images", "val: images", "names:", "  0: object"]
    if task == "pose":
        points, dims = kpt_shape
        kpts = rng.random((points, 2)) * 0.5 + 0.25
        label += "".join(f" {x:.4f} {y:.4f}" + (" 2" if dims == 3 else "") for x, y in kpts)
        lines.append(f"kpt_shape: [{points}, {dims}]")
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    for k, image in enumerate(images):
        cv2.imwrite(str(root / "images" / f"{k}.jpg"), image)
        (root / "labels" / f"{k}.txt").write_text(label + "\n", encoding="utf-8")
    (root / "data.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(root / "data.yaml")
