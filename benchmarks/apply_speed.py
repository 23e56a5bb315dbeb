"""How far `ultrapatch apply` (and re-apply, `--check`, `status`) is from its floor, as whole processes.

    python benchmarks/apply_speed.py [--version 8.4.190] [--backbone mobilenetv3] [--runs 5]

The floor is what any libcst-based apply must do: start Python, import libcst, and parse and regenerate the three
files the edits centre on (tasks.py, torch_utils.py, the detection trainer). Each command runs `--runs` times on a
fresh copy of the release (apply) or on the applied copy (the others), alternating with the floor so that machine
drift lands on both; the medians and each command's ratio to the floor are printed. Issue 16's target: 1.5x.

Both run as an installed program runs, with Python's bytecode cache: PYTHONDONTWRITEBYTECODE is cleared for them
(a sandbox that sets it makes every run compile ultrapatch's sources anew, ~0.05 s, while libcst's were compiled
by pip at install), and one untimed run of each command fills the cache first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = """
import libcst
for rel in ("ultralytics/nn/tasks.py", "ultralytics/utils/torch_utils.py", "ultralytics/models/yolo/detect/train.py"):
    with open(rel, encoding="utf-8") as f:
        libcst.parse_module(f.read()).code
"""


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, env=ENV)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="8.4.190")
    parser.add_argument("--backbone", default="mobilenetv3")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ultrapatch = [sys.executable, "-m", "patcher"]
    with tempfile.TemporaryDirectory(prefix="ultrapatch-apply-speed-") as scratch:
        pristine = Path(scratch) / "pristine"
        subprocess.run([*ultrapatch, "fetch", str(pristine), "--version", args.version], check=True, capture_output=True)
        times: dict[str, list[float]] = {"floor": [], "apply": [], "re-apply": [], "apply --check": [], "status": []}
        applied = Path(scratch) / "applied"
        shutil.copytree(pristine, applied, symlinks=True)
        subprocess.run([*ultrapatch, "apply", str(applied), "-b", args.backbone], check=True, capture_output=True)
        for command in (["status", str(applied)], ["apply", str(applied), "-b", args.backbone, "--check"]):
            timed([*ultrapatch, *command], scratch)  # fills the bytecode cache of every module the commands import
        for run in range(args.runs):
            fresh = Path(scratch) / f"fresh-{run}"
            shutil.copytree(pristine, fresh, symlinks=True)
            times["floor"].append(timed([sys.executable, "-c", FLOOR], pristine))
            times["apply"].append(timed([*ultrapatch, "apply", str(fresh), "-b", args.backbone], scratch))
            times["re-apply"].append(timed([*ultrapatch, "apply", str(applied), "-b", args.backbone], scratch))
            times["apply --check"].append(timed([*ultrapatch, "apply", str(applied), "-b", args.backbone, "--check"], scratch))
            times["status"].append(timed([*ultrapatch, "status", str(applied)], scratch))
            shutil.rmtree(fresh)
    floor = statistics.median(times["floor"])
    print(f"Ultralytics {args.version}, --backbone {args.backbone}, medians of {args.runs} runs (whole processes)")
    for name, values in times.items():
        median = statistics.median(values)
        ratio = "" if name == "floor" else f"  {median / floor:.2f}x the floor"
        print(f"  {name:<14} {median:6.3f} s (min {min(values):.3f}, max {max(values):.3f}){ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
