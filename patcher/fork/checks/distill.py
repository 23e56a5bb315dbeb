"""distill: knowledge distillation (8.4.x) with the patched model as the student and as the teacher of the stock one."""

from __future__ import annotations

import importlib
import importlib.util
import math
from copy import deepcopy

from ..data import synthetic_batch
from ..explain import reason_of
from .base import Check, Finding, ModelContext
from .train import TRAIN_SIZE

DISTILL_SIZE = 160  # the image of DistillationModel's probe forward (it takes args.imgsz, 640 by default)


class Distill(Check):
    name = "distill"
    description = "8.4.x knowledge distillation builds and trains with the model as student and as teacher"

    def applies(self, ctx: ModelContext, session) -> str | None:
        if importlib.util.find_spec("ultralytics.nn.distill_model") is None:
            return "this release has no knowledge distillation (ultralytics.nn.distill_model)"
        if ctx.spec["builder"] != "YOLO" or ctx.spec["task"] != "detect":
            return "distillation takes detection models"
        levels = len(getattr(ctx.model.model[-1], "f", None) or [])
        stock = session.stock_levels(ctx.spec)
        if ctx.spec.get("own") and stock and levels != stock:
            return (
                f"distillation pairs heads that read the same number of levels: this one reads {levels}, the stock "
                f"{ctx.spec['stock']} {stock}"
            )
        return None

    def run(self, ctx: ModelContext, session) -> str:
        """Distillation hooks the layers its Detect head reads, by index: with the patched model as the student and
        the family's stock model as the teacher, then the other way round, the fork's DistillationModel builds and
        gives a finite loss and gradients."""
        distill = importlib.import_module("ultralytics.nn.distill_model")
        torch, spec = session.torch, ctx.spec
        patched = deepcopy(ctx.model)
        stock = session.build_stock(spec).model
        batch = session.to_device(synthetic_batch(torch, "detect", TRAIN_SIZE))
        for role, student, teacher in (("student", patched, stock), ("teacher", deepcopy(stock), deepcopy(patched))):
            for m in (student, teacher):
                session.prepare_training(m)
                m.args.imgsz = DISTILL_SIZE
            try:
                pair = distill.DistillationModel(teacher_model=teacher, student_model=student).train()
                loss, _items = pair.loss(batch)
            except Exception as exc:  # noqa: BLE001 - the reason is the report
                raise Finding(f"as the {role}: {reason_of(exc, session.tree)}") from exc
            total = loss.sum()
            if not math.isfinite(float(total.detach())):
                raise Finding(f"as the {role}: the distillation loss is {float(total)}")
            total.backward()
            trainable = [n for n, p in pair.student_model.named_parameters() if p.requires_grad]
            missing = [n for n, p in pair.student_model.named_parameters() if p.requires_grad and p.grad is None]
            if len(missing) == len(trainable):
                raise Finding(f"as the {role}: no student parameter receives a gradient")
        return "as the student and as the teacher of the stock model"
