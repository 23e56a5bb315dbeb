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
from ..i18n import N_, _

DISTILL_SIZE = 160  # the image of DistillationModel's probe forward (it takes args.imgsz, 640 by default)


class Distill(Check):
    name = "distill"
    description = "8.4.x knowledge distillation builds and trains with the model as student and as teacher"

    def applies(self, ctx: ModelContext, session) -> str | None:
        if importlib.util.find_spec("ultralytics.nn.distill_model") is None:
            return _("this release has no knowledge distillation (ultralytics.nn.distill_model)")
        if ctx.spec["builder"] != "YOLO" or ctx.spec["task"] != "detect":
            return _("distillation takes detection models")
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
        spec = ctx.spec
        patched = deepcopy(ctx.model)
        stock = session.build_stock(spec).model
        layers = distill.DistillationModel.get_distill_layers
        if not _pairs_by_level(distill) and layers(patched) != layers(stock):
            return self.with_itself(ctx, session, distill, patched, layers(patched), layers(stock))
        self.distil(session, distill, ((N_("student"), patched, stock), (N_("teacher"), deepcopy(stock), deepcopy(patched))))
        return _("as the student and as the teacher of the stock model")

    def with_itself(self, ctx: ModelContext, session, distill, patched, own: list[int], stock: list[int]) -> str:
        """A release whose DistillationModel hooks the teacher at the student's own layer indices: a teacher of
        another layout cannot be paired there (for stock models either), so the model is distilled from a copy."""
        self.distil(session, distill, ((N_("student"), patched, deepcopy(ctx.model)),))
        return (
            f"as the student of a copy of itself: this release hooks the teacher at the student's layer indices, and "
            f"the stock {ctx.spec['stock']} reads layers {stock[:-1]} where this model reads {own[:-1]}; a stock "
            f"teacher needs a release that pairs them by level (8.4.190 does)"
        )

    @staticmethod
    def distil(session, distill, pairs) -> None:
        """Each (role, student, teacher): the fork's DistillationModel builds, and gives a finite loss and gradients."""
        batch = session.to_device(synthetic_batch(session.torch, "detect", TRAIN_SIZE))
        for role, student, teacher in pairs:
            for m in (student, teacher):
                session.prepare_training(m)
                m.args.imgsz = DISTILL_SIZE
            try:
                pair = distill.DistillationModel(teacher_model=teacher, student_model=student).train()
                loss, _items = pair.loss(batch)
            except Exception as exc:  # noqa: BLE001 - the reason is the report
                raise Finding(_("as the {role}: {reason}").format(role=_(role), reason=reason_of(exc, session.tree))) from exc
            total = loss.sum()
            if not math.isfinite(float(total.detach())):
                raise Finding(_("as the {role}: the distillation loss is {loss}").format(role=_(role), loss=float(total)))
            total.backward()
            trainable = [n for n, p in pair.student_model.named_parameters() if p.requires_grad]
            missing = [n for n, p in pair.student_model.named_parameters() if p.requires_grad and p.grad is None]
            if len(missing) == len(trainable):
                raise Finding(_("as the {role}: no student parameter receives a gradient").format(role=_(role)))


def _pairs_by_level(distill) -> bool:
    """Whether the release's DistillationModel finds the teacher's layers on its own (`teacher_feats_idx`), rather
    than hooking the teacher at the student's indices (8.4.1xx releases before it)."""
    import inspect

    return "teacher_feats_idx" in inspect.getsource(distill.DistillationModel)
