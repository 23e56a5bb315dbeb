"""flops: the fork's GFLOPs agree with a second count, torch's own flop counter, within a factor of 2; a layer the
fork's profiler (thop) cannot count is named."""

from __future__ import annotations

import contextlib

from ..common import on_meta
from .base import Check, Finding, ModelContext, Skipped
from ..i18n import _

SIZE = 640  # the image get_flops is asked about in the build check
FACTOR = 2.0  # the two counts may differ by this much: thop counts norms and activations, torch's counter does not
NOTABLE = 0.05  # a layer whose uncounted GFLOPs exceed this share of the model's is named


class Flops(Check):
    name = "flops"
    description = "GFLOPs above 0 and within a factor of 2 of torch's flop counter; a layer thop cannot count is named"

    def run(self, ctx: ModelContext, session) -> str:
        if not ctx.gflops:
            raise Skipped(_("the build check counted no GFLOPs"))
        try:  # on the model's meta twin: both counts go by shapes (a real 640x640 forward of YOLOv3 takes seconds)
            counted, missed = self.count(session.meta_model(ctx), session.torch.empty(1, 3, SIZE, SIZE, device="meta"), on_meta(session.torch, build=False))
        except Exception:  # noqa: BLE001 - an operation the meta device lacks: counted for real
            counted, missed = self.count(ctx.model.eval(), session.image(SIZE, SIZE), contextlib.nullcontext())
        total = counted.get("", 0.0)
        if not total:
            raise Skipped(_("torch's flop counter counts no convolution or matrix product in this model"))
        shown = "; ".join(f"{name} ({gflops:.2f} GFLOPs)" for name, gflops in missed[:3])
        ratio = ctx.gflops / total
        if not 1 / FACTOR <= ratio <= FACTOR:
            why = f": the fork's profiler does not count {shown}" if missed else ""
            raise Finding(
                f"get_flops reports {ctx.gflops:.2f} GFLOPs at {SIZE} and torch's flop counter {total:.2f} (x{ratio:.2f}){why}"
            )
        note = f"; not counted by the fork's profiler: {shown}" if missed else ""
        return f"{ctx.gflops:.2f} GFLOPs; torch's flop counter {total:.2f}{note}"

    def count(self, model, image, context) -> tuple[dict[str, float], list[tuple[str, float]]]:
        """torch's count of one forward, by layer, and the layers thop counts at under half of it."""
        import torch

        inputs: dict[int, object] = {}
        hooks = [layer.register_forward_pre_hook(lambda m, args: inputs.setdefault(m.i, args)) for layer in model.model]
        try:
            with context:
                counted = _torch_count(torch, model, image)
                missed = self.uncounted(model, inputs, counted, counted.get("", 0.0))
        finally:
            for hook in hooks:
                hook.remove()
        return counted, missed

    def uncounted(self, model, inputs: dict, counted: dict, total: float) -> list[tuple[str, float]]:
        """The layers whose GFLOPs thop, layer by layer, counts at under half of torch's count: (name, GFLOPs)."""
        try:
            import thop
        except ImportError:
            return []
        from copy import deepcopy

        missed = []
        for layer in model.model:
            theirs = counted.get(str(layer.i), 0.0)
            if not total or theirs < NOTABLE * total or layer.i not in inputs:
                continue
            try:
                ours = thop.profile(deepcopy(layer), inputs=inputs[layer.i], verbose=False)[0] * 2 / 1e9
            except Exception:  # noqa: BLE001 - a layer thop cannot even run is one it cannot count
                ours = 0.0
            if ours < theirs / 2:
                missed.append((f"layer {layer.i} ({type(layer).__name__}) {ours:.2f} of {theirs:.2f}", theirs - ours))
        return sorted(missed, key=lambda item: -item[1])


def _torch_count(torch, model, image) -> dict[str, float]:
    """GFLOPs of one forward by torch.utils.flop_counter: '' for the model, str(i) for layer i."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(image)
    counts = {"": counter.get_total_flops() / 1e9}
    prefix = f"{type(model).__name__}.model."
    for name, ops in counter.get_flop_counts().items():
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            counts[name[len(prefix):]] = sum(ops.values()) / 1e9
    return counts
