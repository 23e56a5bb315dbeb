"""export: the checkpoint exported through the fork's exporter to ONNX gives the PyTorch model's outputs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from ..common import relative_error, tensors
from .base import Check, Finding, ModelContext, Skipped
from ..i18n import _

REL_TOL = 1e-3


class Export(Check):
    name = "export"
    description = "with --export onnx: the checkpoint exported by the fork runs in onnxruntime with the same outputs"
    needs = ("checkpoint",)

    def applies(self, ctx: ModelContext, session) -> str | None:
        if not session.export:
            return _("not asked for (--export onnx)")
        missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
        if missing:
            return f"{' and '.join(missing)} not installed in {sys.executable} (pip install onnx onnxruntime)"
        return None

    def run(self, ctx: ModelContext, session) -> str:
        if ctx.checkpoint is None:
            raise Skipped(_("there is no checkpoint to export"))
        import numpy
        import onnxruntime

        torch = session.torch
        wrapper = getattr(session.ultralytics, ctx.spec["builder"])(str(ctx.checkpoint))
        onnx_file = wrapper.export(format="onnx", imgsz=640, device="cpu", simplify=False, verbose=False)
        reference = wrapper.model.float().eval()
        image = session.image(640, 640).cpu()
        with torch.no_grad():
            expected = reference(image)
        runtime = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
        got = runtime.run(None, {runtime.get_inputs()[0].name: image.numpy()})
        expected = tensors(expected)[: len(got)]
        error = relative_error(expected, [torch.from_numpy(numpy.asarray(g)) for g in got])
        if error > REL_TOL:
            raise Finding(_("the ONNX model's outputs differ by {error:.2g} (relative) from the PyTorch model's").format(error=error))
        return Path(onnx_file).name
