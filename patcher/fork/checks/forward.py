"""forward: in eval and train mode, at every probe size, the outputs have the stock model's shapes."""

from __future__ import annotations

from ..common import fmt
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
        levels = self.levels_differ(seen, stock)
        if spec.get("own") and levels:
            return f"output shapes not compared: the head reads strides {levels[0]}, the stock {spec['stock']} {levels[1]}"
        for key, expected in stock["shapes"].items():
            got = seen["shapes"].get(key)
            if got != expected:
                raise Finding(f"{key}: output shapes {got}, where the stock {spec['stock']} gives {expected}")
        return ""

    @staticmethod
    def levels_differ(seen: dict, stock: dict) -> tuple[str, str] | None:
        """The head's strides and the stock head's, at the stock's probe size, when they differ (a P2 head)."""
        key = next(iter(stock["head_strides"]), None)
        ours, theirs = seen["head_strides"].get(key), stock["head_strides"].get(key)
        if key is None or ours is None or ours == theirs:
            return None
        return fmt(ours), fmt(theirs)

    def control(self, ctx: ModelContext, session) -> Verdict:
        """The stock model's yardstick answers: it was observed."""
        stock = session.stock_baseline(ctx.spec)
        if "error" in stock:
            return Verdict(Status.FAIL, stock["error"], stock["cause"])
        return Verdict(Status.PASS)
