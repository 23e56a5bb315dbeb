"""scales: every scale the YAML declares builds and runs a forward, with the failing layer named in the YAML's terms."""

from __future__ import annotations

from copy import deepcopy

from ..common import on_meta
from ..explain import reason_of
from ..layers import scale_words
from .base import Check, Finding, ModelContext
from ..i18n import _

REAL_SIZE = 320  # the image of a real forward, where the meta device lacks an operation a module uses


class Scales(Check):
    name = "scales"
    description = "every scale the YAML declares (n to x) builds and runs a forward; a failure names the layer and scale"
    needs = ("yaml",)

    def applies(self, ctx: ModelContext, session) -> str | None:
        if ctx.doc is None or len(ctx.doc.scales) < 2:
            return _("the YAML declares no other scale")
        return None

    def run(self, ctx: ModelContext, session) -> str:
        """Each scale other than the one verified above is built and run at 640x640 on the meta device (shapes, no
        arithmetic: a mismatch of channels or sizes shows there as it would for real), and for real at 320x320
        where the meta device lacks an operation."""
        others = [s for s in ctx.doc.scales if s != ctx.scale]
        failed = [(scale, reason) for scale in others for reason in [self.one(ctx, session, scale)] if reason]
        if failed:
            rest = [s for s, _ in failed[1:]]
            also = f"; scale{'s' if len(rest) > 1 else ''} {', '.join(rest)} fail{'' if len(rest) > 1 else 's'} too" if rest else ""
            raise Finding(failed[0][1] + also)
        return _("{scales} build and run too").format(scales=", ".join(others))

    def one(self, ctx: ModelContext, session, scale: str) -> str:
        """'' when the scale builds and runs; else why not, in the YAML's terms."""
        torch = session.torch
        cfg = deepcopy(ctx.model.yaml)
        cfg["scale"] = scale
        try:
            with on_meta(torch, build=True):
                model = type(ctx.model)(cfg, nc=cfg.get("nc"), verbose=False)
            with on_meta(torch, build=False), torch.no_grad():
                model.eval()(torch.empty(1, 3, 640, 640, device="meta"))
            return ""
        except Exception:  # noqa: BLE001 - the meta device's own gaps: the real run below decides
            pass
        try:
            model = type(ctx.model)(deepcopy(cfg), nc=cfg.get("nc"), verbose=False)
            with torch.no_grad():
                model.eval()(torch.rand(1, 3, REAL_SIZE, REAL_SIZE))
        except Exception as exc:  # noqa: BLE001 - the reason is the report
            return reason_of(exc, session.tree, doc=ctx.doc, condition=scale_words(ctx.doc, scale))
        return ""
