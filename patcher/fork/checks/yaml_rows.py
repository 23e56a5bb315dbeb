"""yaml: the model YAML's structure, before anything is built: every row well formed, `from` indices that point back,
modules the fork defines, a head that reads a map per level, scale rows of three values. Each mistake has its line."""

from __future__ import annotations

from ..yamlfile import findings
from .base import Check, Finding, ModelContext, Status, Verdict

SHOWN = 6  # mistakes quoted in the verdict; the rest are counted


class YamlRows(Check):
    name = "yaml"
    description = "before anything is built: each row's `from`, module, repeats and args, the head's inputs, the scales"

    def run(self, ctx: ModelContext, session) -> str:
        ctx.doc = doc = session.model_yaml(ctx.spec)
        ctx.scale = doc.scale()
        found = findings(doc, session.defines, session.missing_hint, session.stock_levels(ctx.spec))
        if found:
            more = f" (and {len(found) - SHOWN} more)" if len(found) > SHOWN else ""
            raise Finding(f"{doc.shown}: " + "; ".join(found[:SHOWN]) + more)
        return ""

    def control(self, ctx: ModelContext, session) -> Verdict:
        """A YAML's own mistakes are never the environment's."""
        return Verdict(Status.PASS)
