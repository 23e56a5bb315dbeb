"""freeze: `freeze=5` in the fork's own trainer freezes exactly layers 0-4, the backbone."""

from __future__ import annotations

from .base import Check, Finding, ModelContext, Skipped

FREEZE = 5  # layers 0-4: the backbone, in the YAML's numbering


class Freeze(Check):
    name = "freeze"
    description = f"freeze={FREEZE} in the fork's trainer freezes exactly layers 0-4 (the backbone), nothing else"

    def run(self, ctx: ModelContext, session) -> str:
        """`freeze=5` leaves exactly the layers the YAML numbers 0-4 without gradients. (`freeze=[0, 1, 2, 3, 4]`
        names the same layers: the trainer turns an int N into range(N) before it looks at a single name.) The
        trainer is stopped once it has set the model up."""
        model = ctx.model
        yaml_layers = [p for p, layer in enumerate(model.model) if getattr(layer, "i", FREEZE) < FREEZE]
        backbone = {f"model.{p}.{n}" for p in yaml_layers for n, _ in model.model[p].named_parameters()}
        if not backbone:
            raise Skipped("the model has no parameters in layers 0-4")
        frozen = session.frozen_by_trainer(ctx.spec, FREEZE)
        extra = sorted(n for n in frozen - backbone if ".dfl" not in n)  # the trainer always freezes DFL's conv
        left = sorted(backbone - frozen)
        if extra or left:
            what = [f"{len(extra)} parameter(s) outside layers 0-4 (e.g. {extra[0]})"] if extra else []
            what += [f"left {len(left)} of the backbone's (e.g. {left[0]}) trainable"] if left else []
            raise Finding(f"freeze={FREEZE} froze {' and '.join(what)}: the trainer's layer numbers are not the YAML's")
        return f"{len(frozen & backbone)} backbone parameters frozen, nothing else"
