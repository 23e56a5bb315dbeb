"""forward: in eval and train mode, at every probe size, the outputs have the stock model's shapes."""

from __future__ import annotations

from ..common import fmt
from .base import Check, Finding, ModelContext, Status, Verdict
from ..i18n import _


class Forward(Check):
    name = "forward"
    description = "eval and train forwards at 640x640, 640x480 and 480x640 give the stock model's output shapes"

    def run(self, ctx: ModelContext, session) -> str:
        spec = ctx.spec
        ctx.observed = seen = session.observe_model(ctx)
        stock = session.stock_of(spec).get("observed")
        if stock is None:
            return _("no stock model to compare output shapes with")
        levels = self.levels_differ(seen, stock)
        if spec.get("own") and levels:
            return _("output shapes not compared: the head reads strides {ours}, the stock {stock} {theirs}").format(ours=levels[0], stock=spec["stock"], theirs=levels[1])
        differ = False
        for key, expected in stock["shapes"].items():
            got = seen["shapes"].get(key)
            if got == expected:
                continue
            if not spec.get("own") or not same_structure(got, expected):
                raise Finding(_("{key}: output shapes {got}, where the stock {stock} gives {expected}").format(key=key, got=got, stock=spec["stock"], expected=expected))
            differ = True
        return _("the outputs are the stock model's, in sizes of the YAML's own widths") if differ else ""

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


def same_structure(got, expected) -> bool:
    """The same nesting of outputs, tensors of the same rank and batch: what a YAML of the user's must keep of the
    stock model's outputs (its widths may change the channels of the maps it returns)."""
    if isinstance(expected, dict):
        return isinstance(got, dict) and got.keys() == expected.keys() and all(same_structure(got[k], v) for k, v in expected.items())
    if isinstance(expected, list) and all(isinstance(v, int) for v in expected):  # a tensor's shape
        return isinstance(got, list) and all(isinstance(v, int) for v in got) and len(got) == len(expected) and got[:1] == expected[:1]
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(same_structure(g, e) for g, e in zip(got, expected))
    return got == expected
