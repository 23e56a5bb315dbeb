"""reload: the checkpoint the checkpoint check wrote loads in a new process of the fork's interpreter, not the one
that built it, with equal outputs (and, on releases that have it, with the loader ULTRALYTICS_SAFE_LOAD=1 selects)."""

from __future__ import annotations

from .base import Check, Finding, ModelContext, Skipped
from .checkpoint import REL_TOL
from .embed import COMPARE_SIZE
from ..i18n import _


class Reload(Check):
    name = "reload"
    description = "the saved checkpoint loads in a new process (and with ULTRALYTICS_SAFE_LOAD=1) with equal outputs"
    needs = ("checkpoint",)

    def run(self, ctx: ModelContext, session) -> str:
        if ctx.checkpoint is None or not ctx.checkpoint.is_file():
            raise Skipped(_("no checkpoint loaded in the verifying process (the checkpoint check)"))
        torch = session.torch
        image = session.image(*COMPARE_SIZE)
        reference = ctx.reloaded.float().eval()  # what this process loaded from it (the checkpoint check)
        with torch.no_grad():
            expected = reference(image)
        answer = session.reloader().ask(ctx.checkpoint, image, expected, ctx.spec["builder"])
        if answer.get("error"):
            raise Finding(_("in a new process: {error}").format(error=answer["error"]))
        if answer["difference"] > REL_TOL:
            raise Finding(_("in a new process, the reloaded model's outputs differ by {error:.2g} (relative)").format(error=answer["difference"]))
        if answer.get("safe_error"):
            raise Finding(_("in a new process with ULTRALYTICS_SAFE_LOAD=1: {error}").format(error=answer["safe_error"]))
        safe = answer.get("safe_difference")
        if safe is not None and safe > REL_TOL:
            raise Finding(_("in a new process with ULTRALYTICS_SAFE_LOAD=1, the outputs differ by {error:.2g} (relative)").format(error=safe))
        return _("in a new process, also with ULTRALYTICS_SAFE_LOAD=1") if safe is not None else _("in a new process")
