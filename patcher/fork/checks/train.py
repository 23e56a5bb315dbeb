"""train: one training loss and backward on a synthetic batch: finite, and a gradient for every backbone parameter."""

from __future__ import annotations

import math

from .base import Check, Finding, ModelContext
from ..i18n import _

TRAIN_SIZE = (160, 160)  # the train step's images: the loss does not need 640, the forward check covers it


class Train(Check):
    name = "train"
    description = "a training loss and backward on a synthetic batch: finite, with a gradient for every backbone parameter"

    def run(self, ctx: ModelContext, session) -> str:
        torch, model, spec = session.torch, ctx.model, ctx.spec
        batch = session.training_step(model, spec["task"])
        loss, _items = model.loss(batch)
        total = loss.sum()
        if not math.isfinite(float(total.detach())):
            raise Finding(_("the loss on a synthetic {task} batch is {loss}").format(task=spec["task"], loss=float(total)))
        total.backward()
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        bad = [n for n, p in named if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
        if bad:
            raise Finding(_("{count} gradient(s) are not finite, e.g. {name}").format(count=len(bad), name=bad[0]))
        backbone = [n for n, p in named if n.startswith("model.0.")]
        missing = [n for n, p in named if n.startswith("model.0.") and p.grad is None]
        if missing:
            raise Finding(
                _(
                    "{missing} of {total} backbone parameters receive no gradient (e.g. {name}): multi-GPU training (DDP) "
                    "stops on unused parameters"
                ).format(missing=len(missing), total=len(backbone), name=missing[0])
            )
        ctx.loss = round(float(total), 4)
        model.zero_grad(set_to_none=True)
        model.eval()
        return ""
