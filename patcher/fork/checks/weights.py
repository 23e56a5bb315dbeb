"""weights: a backbone given weights computes inside the model what it computes alone with the same weights."""

from __future__ import annotations

import contextlib
from copy import deepcopy

from ..common import relative_error
from .base import Check, Finding, ModelContext, Skipped
from ..i18n import _


class Weights(Check):
    name = "weights"
    description = "a backbone given weights computes inside the model what it computes built alone from them"

    def applies(self, ctx: ModelContext, session) -> str | None:
        if ctx.model is not None and not hasattr(ctx.model.model[0], "width_list"):
            return _("the model's first layer is no backbone that returns a list of maps")
        return None

    def run(self, ctx: ModelContext, session) -> str:
        """Nothing of the model's construction (Ultralytics' initialize_weights setting every BatchNorm's eps and
        momentum, the stride probe's forward in training mode) changed the backbone. Runs right after the build,
        before any training."""
        import ast

        model = ctx.model
        backbone = model.model[0]
        if type(backbone).__name__ == "TimmBackbone":
            return self.timm(backbone, session)
        if not getattr(backbone, "pretrained", None):
            raise Skipped(_("the backbone was given no weights"))
        args = []
        for arg in model.yaml["backbone"][0][-1]:  # as parse_model reads the row's arguments
            with contextlib.suppress(ValueError, SyntaxError):
                arg = ast.literal_eval(arg) if isinstance(arg, str) else arg
            args.append(arg)
        alone = type(backbone)(*args).to(session.device).eval()
        inside = deepcopy(backbone).eval()
        image = session.image(160, 128)
        with session.torch.no_grad():
            difference = relative_error(alone(image), inside(image))  # relative to the backbone built alone
        if difference > 1e-5:
            norms = sorted({(m.eps, m.momentum) for m in backbone.modules() if isinstance(m, session.torch.nn.BatchNorm2d)})
            raise Finding(
                f"the backbone's maps in the model differ from the same backbone built alone from the same weights by "
                f"up to {difference:.2%} of their largest value; its BatchNorm (eps, momentum) in the model: {norms}"
            )
        return f"{backbone.pretrained}; largest difference from the backbone built alone: {difference:.1e}"

    def timm(self, backbone, session) -> str:
        """A TimmBackbone computes inside the model what timm's own model computes with the same weights (in eval
        mode): the model's construction changed none of timm's settings (BatchNorm eps and momentum, inplace
        activations)."""
        import timm

        torch = session.torch
        name = backbone.model_name
        own = timm.create_model(name, features_only=True, out_indices=backbone.out_indices, pretrained=False)
        own.load_state_dict(backbone.body.state_dict())
        own = own.to(session.device).eval()
        inside = deepcopy(backbone).eval()
        image = session.image(160, 128)
        with torch.no_grad():
            difference = relative_error(own(image), inside(image))  # relative to timm's own maps
        if difference > 1e-5:
            norms = sorted({(m.eps, m.momentum) for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)})
            theirs = sorted({(m.eps, m.momentum) for m in own.modules() if isinstance(m, torch.nn.BatchNorm2d)})
            raise Finding(
                f"the backbone's maps in the model differ from timm's own {name} with the same weights by up to "
                f"{difference:.2%} of their largest value; BatchNorm (eps, momentum) in the model: {norms}, in timm's: "
                f"{theirs}"
            )
        settled = "; BatchNorm statistics from two synthetic batches" if backbone.pretrained is None else ""
        return (
            f"{backbone.weights}{settled}; maps equal timm's own {name} with the same weights "
            f"(largest difference {difference:.1e})"
        )
