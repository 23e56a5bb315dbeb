"""strides: the head receives one map per level at strides that double from level to level (8, 16, 32 for the
installed YAMLs; a P2 head of the user's 4, 8, 16, 32), the same in every mode and size, and model.stride says so."""

from __future__ import annotations

from ..common import fmt
from .base import Check, Finding, ModelContext
from .forward import Forward
from ..i18n import _

CANONICAL = "eval 640x640"


class Strides(Check):
    name = "strides"
    description = "the head gets maps at strides doubling per level (8, 16, 32; or the YAML's own, e.g. 4-32); model.stride agrees"
    needs = ("forward",)

    def applies(self, ctx: ModelContext, session) -> str | None:
        if ctx.spec.get("own") and ctx.spec["task"] == "classify":
            return _("a classifier of yours predicts once per image, from whatever map its head pools: no levels to check")
        return None

    def run(self, ctx: ModelContext, session) -> str:
        spec = ctx.spec
        seen = ctx.observed or session.observe(ctx.model, spec["builder"], spec["task"])
        expected = self.expected(ctx, seen)
        for key, got in seen["head_strides"].items():
            if got != expected:
                raise Finding(_("{key}: the head receives maps at strides {got}, not {expected}{advice}").format(key=key, got=fmt(got), expected=fmt(expected), advice=self.advice(ctx)))
        stock = session.stock_of(spec).get("observed")
        if spec.get("own"):
            if spec["task"] != "classify" and seen["stride"] != expected:
                raise Finding(_("model.stride is {stride}, where the head receives maps at strides {expected}").format(stride=fmt(seen["stride"]), expected=fmt(expected)))
            if stock is not None and stock["stride"] != expected:
                return _("strides {expected} (the stock {stock}: {theirs})").format(expected=fmt(expected), stock=spec["stock"], theirs=fmt(stock["stride"]))
            return ""
        if stock is not None and seen["stride"] != stock["stride"]:
            raise Finding(_("model.stride is {stride}, where the stock model has {theirs}").format(stride=fmt(seen["stride"]), theirs=fmt(stock["stride"])))
        return ""

    def expected(self, ctx: ModelContext, seen: dict) -> list[float]:
        """The installed YAMLs: 8, 16, 32 (32 for a classifier). A YAML of the user's: its own levels, as the head
        receives them at 640x640 in eval mode, when they double from level to level."""
        if ctx.spec["task"] == "classify":
            return [32.0]
        if not ctx.spec.get("own"):
            return [8.0, 16.0, 32.0]
        got = seen["head_strides"].get(CANONICAL) or next(iter(seen["head_strides"].values()), [])
        if not got or any(b != 2 * a for a, b in zip(got, got[1:])):
            raise Finding(
                _(
                    "{probe}: the head receives maps at strides {got}; each level must have twice the stride of the one "
                    "before (8, 16, 32; or 4, 8, 16, 32 with a P2 level), in the order of its `from`"
                ).format(probe=CANONICAL, got=fmt(got))
            )
        return got

    def advice(self, ctx: ModelContext) -> str:
        if ctx.spec.get("own"):
            return _(": a layer between the image and the head changes the stride with the image's size or mode")
        return _("; the backbone must return four maps (strides 4, 8, 16, 32) and the head read P3-P5 as layers 2-4")

    control = Forward.control
