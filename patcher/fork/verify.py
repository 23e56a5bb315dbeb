"""`ultrapatch verify`'s process in the fork's interpreter.

    python launch.py verify SPEC.json < MODELS

SPEC names the tree, the device, whether to export, the threads and the memory cap; MODELS has one JSON model spec a
line (the YAML name, its family's stock model, ...), which the parent writes as earlier models finish. One JSON event
a line goes to the real stdout (the fork's own logging to stderr): `environment` first (with the table's check names),
then `shadowed` and nothing more when another installation of ultralytics is what this interpreter imports, or, per
model, `checking` events as each check starts and one `model` event with its report; `done` at the end of input.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from .process import event_stream, limit_memory, open_fork
from .session import Session


def main(argv: list[str]) -> int:
    emit = event_stream()
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    tree = Path(spec["tree"]).resolve()
    if open_fork(spec, emit) is None:
        return 0
    limit_memory(spec.get("memory"))
    with tempfile.TemporaryDirectory(prefix="ultrapatch-verify-") as work:
        os.chdir(work)  # anything the fork writes (exports, settings of a run) lands here, not in the user's folder
        session = Session(tree, spec["device"], spec.get("export"), Path(work), emit, spec.get("installers"))
        try:
            for line in sys.stdin:  # one model a line, handed out as earlier ones finish; the end of input ends the run
                if line.strip():
                    emit(event="model", **session.verify(json.loads(line)))
        finally:
            session.close()
    emit(event="done")
    return 0
