"""fuse: model.fuse() leaves the outputs as they were and no reparameterisable block in training form."""

from __future__ import annotations

from ..common import relative_error, tensors
from ..data import head_inputs
from .base import Check, Finding, ModelContext
from .embed import COMPARE_SIZE
from ..i18n import _

REL_TOL = 1e-3


class Fuse(Check):
    name = "fuse"
    description = "model.fuse() keeps the outputs and reparameterises every block that can be (MobileOne)"

    def run(self, ctx: ModelContext, session) -> str:
        model, spec = ctx.model, ctx.spec
        model.eval()
        image = session.image(*COMPARE_SIZE)
        with session.torch.no_grad():
            out = []
            before = head_inputs(model, lambda: out.append(model(image)))
            model.fuse(verbose=False)
            after = head_inputs(model, lambda: out.append(model(image)))
        error = relative_error(before, after)
        # The head's predictions too, unless it selects its top k (RT-DETR's queries, an end-to-end head's boxes):
        # there rounding picks other candidates, so what reaches the head is compared instead.
        if spec["builder"] != "RTDETR" and not getattr(model.model[-1], "end2end", False):
            error = max(error, relative_error(tensors(out[0])[:1], tensors(out[1])[:1]))
        if error > REL_TOL:
            raise Finding(_("model.fuse() changes the outputs by {error:.2g} (relative)").format(error=error))
        unfused = sum(hasattr(m, "switch_to_deploy") and getattr(m, "deploy", True) is False for m in model.modules())
        if unfused:
            raise Finding(_("model.fuse() left {count} reparameterisable block(s) in training form (the fuse edit is missing)").format(count=unfused))
        ctx.fused_params = sum(p.numel() for p in model.parameters())
        return ""
