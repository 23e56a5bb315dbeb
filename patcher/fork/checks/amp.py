"""amp: on CUDA, a training step under autocast (as the trainer's AMP runs it) gives a finite loss and gradients."""

from __future__ import annotations

import math

from .base import Check, Finding, ModelContext
from ..i18n import _


class Amp(Check):
    name = "amp"
    description = "on CUDA: a training step under autocast (fp16) gives a finite loss and finite gradients"

    def applies(self, ctx: ModelContext, session) -> str | None:
        if session.device.type != "cuda":
            return _("AMP trains on CUDA only; on the CPU the fork's trainer turns it off")
        return None

    def run(self, ctx: ModelContext, session) -> str:
        torch, model, spec = session.torch, ctx.model, ctx.spec
        batch = session.training_step(model, spec["task"])
        try:
            with torch.autocast("cuda", dtype=torch.float16):
                loss, _items = model.loss(batch)
            total = loss.sum()
            if not math.isfinite(float(total.detach())):
                raise Finding(_("under autocast (fp16) the loss is {loss}, where fp32 gives {fp32}").format(loss=float(total), fp32=ctx.loss))
            total.backward()
            bad = [n for n, p in model.named_parameters() if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
            if bad:
                raise Finding(_("under autocast (fp16), {count} gradient(s) are not finite, e.g. {name}").format(count=len(bad), name=bad[0]))
        finally:
            model.zero_grad(set_to_none=True)
            model.eval()
        return _("loss {loss:.4g} under autocast").format(loss=float(total))
