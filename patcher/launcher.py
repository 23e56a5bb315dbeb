"""The one launcher of the fork side: how ultrapatch starts `patcher/fork/` in the interpreter the user trains with.

Every process there is `python patcher/fork/launch.py ENTRY ARGS...` (`command`), or the same under
torch.distributed.run for DDP ranks (`ddp_command`), in the environment `fork_env` gives: offline, its own settings
folder, no bytecode, random weights for timm rows. `tail` is how a process's stderr is quoted when it stops.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

LAUNCH = Path(__file__).with_name("fork") / "launch.py"
TIMM_PRETRAINED_ENV = "ULTRAPATCH_TIMM_PRETRAINED"  # modules/TimmBackbone.py reads it


def command(python: str, entry: str, *args: object) -> list[str]:
    """The command line of one fork-side process: ENTRY (verify, probe, stock, bench, carry) with its arguments."""
    return [python, str(LAUNCH), entry, *map(str, args)]


def run_entry(python: str, entry: str, spec: dict) -> tuple[dict[str, dict], str]:
    """Run ENTRY once with `spec` (written to a JSON file in a scratch folder, its working folder) and wait for it:
    its events by kind (the last of each kind), and its stderr, for the message when an expected event is missing."""
    with tempfile.TemporaryDirectory(prefix=f"ultrapatch-{entry}-") as scratch:
        spec_file = Path(scratch) / f"{entry}.json"
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        done = subprocess.run(command(python, entry, spec_file), capture_output=True, text=True, env=fork_env(scratch), cwd=scratch)
    events = (json.loads(line) for line in done.stdout.splitlines() if line.startswith("{"))
    return {event["event"]: event for event in events}, done.stderr


def ddp_command(python: str, ranks: int, *args: object) -> list[str]:
    """The ddp entry in `ranks` processes under torch.distributed.run. --standalone: the launcher's own store binds a
    port the system picks and keeps it (a port found free beforehand can be taken before the launcher binds it)."""
    return [python, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", str(ranks),
            str(LAUNCH), "ddp", *map(str, args)]  # fmt: skip


def tail(stderr: str, lines: int = 3, width: int = 600) -> str:
    """The last lines of a process's stderr, on one line: what a message quotes when the process stopped."""
    return " | ".join(stderr.strip().splitlines()[-lines:])[:width]


def fork_env(scratch: str) -> dict:
    """The environment of a process that runs in the fork: offline (no timm download either), its own settings
    folder, no bytecode written."""
    env = {**os.environ, "YOLO_OFFLINE": os.environ.get("YOLO_OFFLINE", "1"), "PYTHONDONTWRITEBYTECODE": "1"}
    # a timm backbone row that asks for timm's weights builds with random ones: verify never downloads
    env[TIMM_PRETRAINED_ENV] = os.environ.get(TIMM_PRETRAINED_ENV, "0")
    if env.get("PYTHONPATH"):  # the processes start in a scratch folder: keep relative entries pointing where they did
        env["PYTHONPATH"] = absolute_pythonpath(env["PYTHONPATH"])
    env["YOLO_CONFIG_DIR"] = str(Path(scratch) / "settings")  # the user's Ultralytics settings stay as they are
    return env


def absolute_pythonpath(value: str) -> str:
    """PYTHONPATH with every entry made absolute against the working folder, as Python itself resolves them at
    startup; an empty entry means the working folder."""
    cwd = Path.cwd()
    return os.pathsep.join(str((cwd / entry) if entry else cwd) for entry in value.split(os.pathsep))
