"""val: `yolo val` through the fork's own validator on two synthetic images, and an AP from the fork's metrics."""

from __future__ import annotations

import math
from pathlib import Path

from .base import Check, Finding, ModelContext
from ..i18n import _

VAL_SIZE = 160  # validation's image size: its rectangular batches of the two synthetic images are 160x192 and 192x160


class Val(Check):
    name = "val"
    description = "validation through the fork's validator on two synthetic images gives finite metrics; AP computes"

    def run(self, ctx: ModelContext, session) -> str:
        """Validate as `yolo val` does (dataset, rectangular batches, fuse, NMS, metrics), on a landscape and a
        portrait image; then an AP with the fork's own metrics on a known precision-recall curve: an untrained model
        finds no true positive, so validation alone never gets there, and a trained one would (that is where a missing
        np.trapz stops validation)."""
        from ..session import no_font_download

        wrapper, model, task = ctx.wrapper, ctx.model, ctx.spec["task"]
        wrapper.model = model
        kpt_shape = tuple(model.yaml.get("kpt_shape") or (17, 3)) if task == "pose" else None
        data = session.dataset(task, kpt_shape)
        device = "cpu" if session.device.type == "cpu" else str(session.device.index or 0)
        with no_font_download():
            metrics = wrapper.val(
                data=data, imgsz=VAL_SIZE, batch=1, workers=0, plots=False, device=device, verbose=False,
                project=str(Path.cwd() / "runs"), name="val", exist_ok=True,  # the scratch folder, not the fork's runs/
            )  # fmt: skip
        results = dict(getattr(metrics, "results_dict", {}) or {})
        if not results:
            raise Finding(_("validation returned no metrics ({kind})").format(kind=type(metrics).__name__))
        bad = sorted(k for k, v in results.items() if not math.isfinite(float(v)))
        if bad:
            raise Finding(_("validation's {metric} is {value}").format(metric=bad[0], value=results[bad[0]]))
        if task != "classify":
            from ultralytics.utils.metrics import compute_ap

            ap = float(compute_ap([0.0, 0.5, 1.0], [1.0, 1.0, 0.5])[0])
            if not 0.0 < ap <= 1.0:
                raise Finding(_("the fork's compute_ap gives {ap} for a curve whose AP lies in (0, 1]").format(ap=ap))
        return ""
