"""forward: in eval and train mode, at every probe size, the outputs have the stock model's shapes."""

from __future__ import annotations

from .base import Check, Finding, ModelContext, Status, Verdict


class Forward(Check):
    name = "forward"
    description = "eval and train forwards at 640x640, 640x480 and 480x640 give the stock model's output shapes"

    def run(self, ctx: ModelContext, session) -> str:
        spec = ctx.spec
        ctx.observed = seen = session.observe(ctx.model, spec["builder"], spec["task"])
        stock = session.stock_of(spec).get("observed")
        if stock is None:
            return "no stock model to compare output shapes with"
        for key, expected in stock["shapes"].items():
            got = seen["shapes"].get(key)
            if got != expected:
                raise Finding(f"{key}: output shapes {got}, where the stock {spec['stock']} gives {expected}")
        return ""

    def control(self, ctx: ModelContext, session) -> Verdict:
        """The stock model's yardstick answers: it was observed."""
        stock = session.stock_baseline(ctx.spec)
        if "error" in stock:
            return Verdict(Status.FAIL, stock["error"], stock["cause"])
        return Verdict(Status.PASS)
