"""embed: Model.embed() by default and by the YAML index of the second-to-last layer returns that layer's feature."""

from __future__ import annotations

from ..common import relative_error, shapes
from .base import Check, Finding, ModelContext, Skipped
from ..i18n import _

COMPARE_SIZE = (160, 128)


class Embed(Check):
    name = "embed"
    description = "embed() by default and embed=[its YAML index] return the second-to-last layer's pooled feature"

    def run(self, ctx: ModelContext, session) -> str:
        """`Model.embed()` with no layers given embeds layer `len(model.model) - 2`, a place in the layer list, and the
        forward loops compare it with each layer's index: the two must agree, so that the default embeds the
        second-to-last layer, the same as naming that layer's YAML index."""
        torch, model = session.torch, ctx.model
        rows = model.yaml["backbone"] + model.yaml["head"]
        backbones = sum(hasattr(layer, "width_list") for layer in model.model)
        yaml_index = len(rows) - 2 + 4 * backbones  # the second-to-last row, in the tutorials' numbering
        captured = []
        hook = model.model[-2].register_forward_hook(lambda _m, _i, out: captured.append(out))
        image = session.image(*COMPARE_SIZE)
        model.eval()
        try:
            with torch.no_grad():
                default = model.predict(image, embed=[len(model.model) - 2])
                named = model.predict(image, embed=[yaml_index])
        finally:
            hook.remove()
        if not captured or not hasattr(captured[0], "shape"):
            raise Skipped(_("the second-to-last layer gives no single feature map"))
        expected = torch.nn.functional.adaptive_avg_pool2d(captured[0], (1, 1)).flatten(1)
        for what, got in (("the default embed()", default), (f"embed=[{yaml_index}]", named)):
            if not isinstance(got, (list, tuple)) or not got or tuple(got[0].shape) != tuple(expected[0].shape):
                found = shapes(got[0] if isinstance(got, (list, tuple)) and got else got)
                raise Finding(
                    _(
                        "{what} returns a feature of shape {found}, not the second-to-last layer's {expected}: layer "
                        "indices and places in the model differ"
                    ).format(what=what, found=found, expected=list(expected[0].shape))
                )
            if relative_error(expected[0], got[0]) > 1e-5:
                raise Finding(_("{what} returns another layer's feature than the second-to-last layer's").format(what=what))
        return _("layer {index}, {values} values").format(index=yaml_index, values=expected.shape[1])
