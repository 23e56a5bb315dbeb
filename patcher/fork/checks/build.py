"""build: the YAML builds in the fork, and its size is counted: layers, parameters and GFLOPs at 640."""

from __future__ import annotations

from ..explain import reason_of, thop_missing
from .base import Check, Finding, ModelContext, Status, Verdict
from ..i18n import _


class Build(Check):
    name = "build"
    description = "the YAML builds in the fork; layers, parameters, and GFLOPs at 640 (0 GFLOPs fails)"

    def run(self, ctx: ModelContext, session) -> str:
        ctx.wrapper, ctx.model = session.build(ctx.spec["name"], ctx.spec["builder"])
        ctx.spec = {**ctx.spec, "nc": ctx.model.yaml.get("nc")}  # the stock control is built with the same class count
        self.measure(ctx, session)
        return ""

    def measure(self, ctx: ModelContext, session) -> None:
        """The model's size; Finding when the fork's profiler counts 0 GFLOPs (with why, where a forward shows it)."""
        from ultralytics.utils.torch_utils import get_flops

        model = ctx.model
        ctx.layers = len(list(model.modules()))
        ctx.params = sum(p.numel() for p in model.parameters())
        ctx.gflops = round(float(get_flops(model, 640) or 0.0), 3)
        if not ctx.gflops:
            try:  # get_flops swallows errors and says 0: a plain forward shows what went wrong
                with session.torch.no_grad():
                    model.eval()(session.image(640, 640))
            except Exception as exc:  # noqa: BLE001 - the reason is the report
                raise Finding(_("GFLOPs is 0 because the model's forward fails: {reason}").format(reason=reason_of(exc, session.tree))) from exc
            raise Finding(_("GFLOPs is 0: the fork's get_flops cannot profile the model{why}").format(why=thop_missing()))

    def control(self, ctx: ModelContext, session) -> Verdict:
        """The stock model's yardstick answers: it built, and its GFLOPs are not 0."""
        stock = session.stock_baseline(ctx.spec)
        if "error" in stock:
            return Verdict(Status.FAIL, stock["error"], stock["cause"])
        if not stock.get("gflops"):
            return Verdict(Status.FAIL, (
                f"the stock model's GFLOPs are 0 too: the fork's get_flops profiles no model here{thop_missing()}"
            ))  # fmt: skip
        return Verdict(Status.PASS)
