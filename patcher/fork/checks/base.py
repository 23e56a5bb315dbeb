"""The contract every check of `ultrapatch verify` keeps.

A check is a class with a `name`, a one-line `description`, `applies` (which models it is for: a reason to skip the
others), and `run`, which works on one model and its `ModelContext`. It returns a sentence (empty for a plain pass),
raises `Finding` for a fault of the model, `Skipped` when it does not apply after all, or `KnownLimit` for a limit of
the release in this environment; any other exception is an error, explained by `explain` (which knows one such limit
by its exception: a release's loader under torch >= 2.6). The session turns that into a `Verdict`: a `Status`, the
reason for the person, and a `Cause` for the code. Retries, the stock control's attribution to the environment, and
the table's cells are decided from the status and cause, never from the words of a reason.

What a check learns for a later one is a typed field of the context (`observed` for `strides`, `wrapper` for `val`,
`checkpoint` for `export`); `needs` names the checks whose fields a check reads, so that the stock control runs them
first. `control` is the stock control of a failure: the same check on a fresh stock model, unless the check says
otherwise (build, forward and strides ask the stock model's yardstick, measured once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..verdicts import Cause, Status, Verdict

__all__ = ["Cause", "Check", "Finding", "KnownLimit", "ModelContext", "Skipped", "Status", "Verdict"]


class Finding(Exception):
    """A fault of the model a check found, with the sentence that explains it."""


class Skipped(Exception):
    """A check that does not apply here, with the reason."""


class KnownLimit(Exception):
    """What the check needs cannot be had in this environment with this release (its loader and torch's), with the
    reason: on the stock model, it skips a check that `skips_on_known_limit`."""


@dataclass
class ModelContext:
    """One model under verification, and what the checks learned of it, in their order."""

    spec: dict  # the model: name, yaml, family, task, builder, variant, stock (None: no control), own, nc once built
    doc: Any = None  # the YAML as parse_model reads it, with its lines (yaml)
    scale: str | None = None  # the scale it is built at (yaml)
    wrapper: Any = None  # the fork's YOLO/RTDETR object that holds the model (build)
    model: Any = None  # the model itself (build)
    layers: int | None = None  # (build)
    params: int | None = None  # (build)
    gflops: float | None = None  # (build)
    observed: dict | None = None  # output shapes and head strides at every size and mode (forward)
    loss: float | None = None  # (train)
    checkpoint: Path | None = None  # the .pt file the checkpoint check wrote (checkpoint)
    reloaded: Any = None  # the model the checkpoint check loaded back from it (checkpoint)
    fused_params: int | None = None  # parameters after model.fuse() (fuse)
    notes: dict = field(default_factory=dict)


class Check:
    """One check of the table in `checks/__init__.py`."""

    name: ClassVar[str]
    description: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()  # checks whose context fields `run` reads
    skips_on_known_limit: ClassVar[bool] = False  # a known limit of the release seen on the stock model skips the check

    def applies(self, ctx: ModelContext, session) -> str | None:
        """None when the check is for this model; otherwise why not (the verdict is a skip with that reason)."""
        return None

    def run(self, ctx: ModelContext, session) -> str:
        """Check the model; a sentence for the report ('' for a plain pass). Raises Finding or Skipped."""
        raise NotImplementedError

    def control(self, ctx: ModelContext, session) -> Verdict:
        """The stock control of a failure: by default the same check on a fresh stock model."""
        return session.stock_verdict(ctx.spec, self)
