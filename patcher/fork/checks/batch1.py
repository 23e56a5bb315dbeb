"""batch1: a training step on a batch of one image, as the trainer's last batch can be, runs forward and backward."""

from __future__ import annotations

from ..explain import reason_of
from .base import Check, Finding, ModelContext
from ..i18n import _


class Batch1(Check):
    name = "batch1"
    description = "a training forward and backward at batch size 1 (the trainer's last batch can hold one image)"

    def run(self, ctx: ModelContext, session) -> str:
        model, spec = ctx.model, ctx.spec
        batch = session.training_step(model, spec["task"], images=1)
        try:
            loss, _items = model.loss(batch)
            loss.sum().backward()
        except Exception as exc:  # noqa: BLE001 - the reason is the report
            raise Finding(reason_of(exc, session.tree, doc=ctx.doc, condition=_("in a training step at batch size 1"))) from exc
        finally:
            model.zero_grad(set_to_none=True)
            model.eval()
        return ""
