"""freeze: `freeze=N`, N the layers of the YAML's own backbone section, freezes exactly layers 0 to N-1 in the fork's
trainer."""

from __future__ import annotations

from .base import Check, Finding, ModelContext, Skipped
from ..i18n import _


def backbone_length(ctx: ModelContext) -> int:
    """The layer indices the YAML's `backbone:` section takes (a backbone row takes five): what `freeze=N` names."""
    head = [row.index for row in ctx.doc.rows if row.section == "head"] if ctx.doc is not None else []
    return head[0] if head else len(ctx.model.yaml.get("backbone", []))


class Freeze(Check):
    name = "freeze"
    description = "freeze=N (N = the YAML's backbone layers) in the fork's trainer freezes exactly layers 0 to N-1"

    def run(self, ctx: ModelContext, session) -> str:
        """`freeze=N` leaves exactly the layers the YAML numbers 0 to N-1 without gradients. (`freeze=[0, ..., N-1]`
        names the same layers: the trainer turns an int N into range(N) before it looks at a single name.) The
        trainer is stopped once it has set the model up."""
        model, count = ctx.model, backbone_length(ctx)
        yaml_layers = [p for p, layer in enumerate(model.model) if getattr(layer, "i", count) < count]
        backbone = {f"model.{p}.{n}" for p in yaml_layers for n, _ in model.model[p].named_parameters()}
        if not backbone:
            raise Skipped(_("the model has no parameters in layers 0-{last}").format(last=count - 1))
        frozen = session.frozen_by_trainer(ctx.spec, count)
        extra = sorted(n for n in frozen - backbone if ".dfl" not in n)  # the trainer always freezes DFL's conv
        left = sorted(backbone - frozen)
        if extra or left:
            what = [f"{len(extra)} parameter(s) outside layers 0-{count - 1} (e.g. {extra[0]})"] if extra else []
            what += [f"left {len(left)} of the backbone's (e.g. {left[0]}) trainable"] if left else []
            raise Finding(_("freeze={count} froze {what}: the trainer's layer numbers are not the YAML's").format(count=count, what=" and ".join(what)))
        return _("freeze={count}: {frozen} parameters of layers 0-{last} frozen, nothing else").format(count=count, frozen=len(frozen & backbone), last=count - 1)
