"""checkpoint: saved as the fork's trainer saves it, the model loads with the fork's own loader (and, on 8.4.100+,
with ULTRALYTICS_SAFE_LOAD=1) and gives the same outputs."""

from __future__ import annotations

import io
import sys
import time
from copy import deepcopy
from pathlib import Path

from ..common import relative_error
from ..explain import reason_of
from .base import Check, Finding, ModelContext
from .embed import COMPARE_SIZE
from ..i18n import _

REL_TOL = 1e-4


class Checkpoint(Check):
    name = "checkpoint"
    description = "saved as the trainer saves it, the model reloads with the fork's loader (and safe loading) unchanged"
    skips_on_known_limit = True  # a release whose loader loads no checkpoint under this torch: nothing to prove

    def run(self, ctx: ModelContext, session) -> str:
        """Save as the fork's trainer does (the EMA model in half precision), load with the fork's own classes."""
        from ultralytics.cfg import get_cfg

        torch, model, spec = session.torch, ctx.model, ctx.spec
        model.eval()
        ema = deepcopy(model)  # the trainer's EMA copy is made before the first loss: no criterion in it
        if getattr(ema, "criterion", None) is not None:
            ema.criterion = None
        path = session.workdir / f"{Path(spec['name']).stem}.pt"
        ckpt = {
            "epoch": -1,
            "best_fitness": None,
            "model": None,
            "ema": ema.half(),
            "updates": 0,
            "optimizer": None,
            "train_args": dict(vars(get_cfg())),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "version": session.ultralytics.__version__,
        }
        buffer = io.BytesIO()
        torch.save(ckpt, buffer)
        path.write_bytes(buffer.getvalue())
        reference = ema.float().eval()  # once saved: the weights as the file holds them (half precision), in float32
        image = session.image(*COMPARE_SIZE)
        loaded = getattr(session.ultralytics, spec["builder"])(str(path)).model.to(session.device).eval()
        ctx.checkpoint, ctx.reloaded = path, loaded  # it loads: what reload and export take
        with torch.no_grad():
            expected = reference(image)
            error = relative_error(expected, loaded(image))
        if error > REL_TOL:
            raise Finding(_("the reloaded model's outputs differ by {error:.2g} (relative)").format(error=error))
        return self.safe_load(path, expected, image, session)

    def safe_load(self, path: Path, expected, image, session) -> str:
        """8.4.100+: ULTRALYTICS_SAFE_LOAD=1 must load the checkpoint too, with the same outputs."""
        tasks = sys.modules["ultralytics.nn.tasks"]
        safe = getattr(tasks, "_SafeLoad", None)
        if safe is None or not safe.SUPPORTED:
            return ""
        try:
            restricted, _file = tasks.torch_safe_load(str(path), safe_only=True)
        except Exception as exc:  # noqa: BLE001 - the reason is the report
            reason = reason_of(exc, session.tree)
            if "AddModules" in str(exc):  # the class the restricted unpickler refused
                reason += _("; the safe-load allow-list does not accept the AddModules classes (run `ultrapatch apply`)")
            raise Finding(_("with ULTRALYTICS_SAFE_LOAD=1: {reason}").format(reason=reason)) from exc
        safe_model = (restricted.get("ema") or restricted["model"]).to(session.device).float().eval()
        with session.torch.no_grad():
            error = relative_error(expected, safe_model(image))
        if error > REL_TOL:
            raise Finding(_("with ULTRALYTICS_SAFE_LOAD=1, the outputs differ by {error:.2g} (relative)").format(error=error))
        return _("also with ULTRALYTICS_SAFE_LOAD=1")
