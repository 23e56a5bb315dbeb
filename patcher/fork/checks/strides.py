"""strides: the head receives the maps of strides 8, 16 and 32 (32 for a classifier), and model.stride is the stock's."""

from __future__ import annotations

from ..common import fmt
from .base import Check, Finding, ModelContext
from .forward import Forward


class Strides(Check):
    name = "strides"
    description = "the head receives maps at strides 8, 16, 32 (32 for Classify); model.stride equals the stock model's"
    needs = ("forward",)

    def run(self, ctx: ModelContext, session) -> str:
        spec = ctx.spec
        seen = ctx.observed or session.observe(ctx.model, spec["builder"], spec["task"])
        expected = [32.0] if spec["task"] == "classify" else [8.0, 16.0, 32.0]
        for key, got in seen["head_strides"].items():
            if got != expected:
                raise Finding(
                    f"{key}: the head receives maps at strides {fmt(got)}, not {fmt(expected)}; the backbone must "
                    f"return four maps (strides 4, 8, 16, 32) and the head read P3-P5 as layers 2-4"
                )
        stock = session.stock_of(spec).get("observed")
        if stock is not None and seen["stride"] != stock["stride"]:
            raise Finding(f"model.stride is {fmt(seen['stride'])}, where the stock model has {fmt(stock['stride'])}")
        return ""

    control = Forward.control
