"""The reload check's second process: checkpoints loaded by a fresh interpreter of the fork, which never built them.

    python launch.py reload SPEC.json < REQUESTS

SPEC names the tree and the device. Each request line names a checkpoint, the file of an input image and of the
outputs the verifying process got from the same checkpoint; the answer line gives the relative difference of this
process's outputs (or the error that stopped the load), and the same through the loader that ULTRALYTICS_SAFE_LOAD=1
selects, on releases that have it. `Reloader` is the verifying process's end of it: started at its first request,
once per verification process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .common import relative_error
from .explain import reason_of
from .process import event_stream, open_fork


def main(argv: list[str]) -> int:
    emit = event_stream()
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    if open_fork(spec, emit) is None:
        return 0
    import torch

    device = torch.device("cpu" if spec["device"] == "cpu" else f"cuda:{spec['device']}")
    tree = Path(spec["tree"]).resolve()
    for line in sys.stdin:
        if line.strip():
            emit(event="reloaded", **answer(json.loads(line), torch, device, tree))
    return 0


def answer(request: dict, torch, device, tree: Path) -> dict:
    import ultralytics

    image = torch.load(request["image"], weights_only=True).to(device)
    expected = torch.load(request["expected"], weights_only=True)
    try:
        model = getattr(ultralytics, request["builder"])(request["checkpoint"]).model.to(device).float().eval()
        with torch.no_grad():
            result = {"difference": relative_error(expected, _cpu(model(image)))}
    except Exception as exc:  # noqa: BLE001 - the reason is the report
        return {"error": reason_of(exc, tree)}
    tasks = sys.modules["ultralytics.nn.tasks"]
    safe = getattr(tasks, "_SafeLoad", None)
    if safe is None or not safe.SUPPORTED:
        return result
    try:
        restricted, _ = tasks.torch_safe_load(request["checkpoint"], safe_only=True)
        model = (restricted.get("ema") or restricted["model"]).to(device).float().eval()
        with torch.no_grad():
            result["safe_difference"] = relative_error(expected, _cpu(model(image)))
    except Exception as exc:  # noqa: BLE001
        result["safe_error"] = reason_of(exc, tree)
    return result


def _cpu(out):
    if hasattr(out, "cpu"):
        return out.cpu()
    if isinstance(out, (list, tuple)):
        return [_cpu(o) for o in out]
    if isinstance(out, dict):
        return {k: _cpu(v) for k, v in out.items()}
    return out


class Reloader:
    """The verifying process's end: one `reload` process, started at the first request and ended with `close`."""

    def __init__(self, tree: Path, device: str, workdir: Path):
        self.workdir = workdir
        spec = workdir / "reload.json"
        spec.write_text(json.dumps({"tree": str(tree), "device": device, "threads": 1}), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k != "ULTRALYTICS_SAFE_LOAD"}
        launch = Path(__file__).resolve().with_name("launch.py")
        self.process = subprocess.Popen(
            [sys.executable, str(launch), "reload", str(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr, text=True, env=env, cwd=workdir,
        )  # fmt: skip
        self.ready = self._read()  # its `environment` event (or why it could not start)
        self.count = 0

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            return {"event": "error", "message": f"the new process ended (exit {self.process.wait()})"}
        return json.loads(line)

    def ask(self, checkpoint: Path, image, expected, builder: str) -> dict:
        import torch

        if self.ready.get("event") != "environment":
            return {"error": self.ready.get("message") or f"the new process did not import the fork ({self.ready})"}
        self.count += 1
        files = {name: self.workdir / f"reload-{self.count}-{name}.pt" for name in ("image", "expected")}
        torch.save(image.cpu(), files["image"])
        torch.save(_cpu(expected), files["expected"])
        request = {"checkpoint": str(checkpoint), "builder": builder, **{k: str(v) for k, v in files.items()}}
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return {"error": f"the new process ended (exit {self.process.wait()})"}
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
