"""How long `ultrapatch verify` takes, and where the time goes: every installed model of one backbone, one release.

    python benchmarks/verify_speed.py [--version 8.4.190] [--backbone mobilenetv2] [--device cpu] [--model GLOB ...]

Fetches the release from PyPI (set ULTRAPATCH_SDIST_CACHE to keep the sdist), applies the backbone in a temporary
folder, runs `ultrapatch verify --json` as a user would, in its own process, and prints the wall time, the time per
model, the mean time of each check, and the share spent building and running the stock models it compares with.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def ultrapatch(*args: str) -> subprocess.CompletedProcess:
    # from a neutral folder: `-m` puts the working folder first on sys.path
    return subprocess.run([sys.executable, "-m", "patcher", *args], capture_output=True, text=True, cwd=tempfile.gettempdir())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="8.4.190")
    parser.add_argument("--backbone", default="mobilenetv2")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", action="append", default=[], help="verify only these (GLOB, repeatable)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ultrapatch-bench-") as work:
        tree = Path(work) / "ultralytics"
        for step in (["fetch", str(tree), "--version", args.version], ["apply", str(tree), "-b", args.backbone]):
            done = ultrapatch(*step)
            if done.returncode != 0:
                print(done.stdout + done.stderr, file=sys.stderr)
                return 1
        started = time.perf_counter()
        models = [a for pattern in args.model for a in ("--model", pattern)]
        done = ultrapatch("verify", str(tree), "--device", args.device, "--json", *models)
        wall = time.perf_counter() - started
        if not done.stdout.strip():
            print(done.stderr, file=sys.stderr)
            return 1
        report = json.loads(done.stdout)

    rows = report["models"]
    print(
        f"ultrapatch verify: Ultralytics {report['release']}, backbone {args.backbone}, {len(rows)} models, "
        f"Python {report['python']}, torch {report['torch']}, device {report['device']}"
    )
    print(f"wall time                 {wall:7.1f} s (exit {done.returncode}; interpreter start and imports included)")
    print(f"per model, mean / max     {statistics.mean(m['seconds'] for m in rows):7.1f} / {max(m['seconds'] for m in rows):.1f} s")
    stock = sum(m.get("stock_seconds", 0.0) for m in rows)
    print(f"stock models (control)    {stock:7.1f} s in all")
    for check in rows[0]["checks"]:
        seconds = [m["checks"][check]["seconds"] for m in rows]
        print(f"  {check:<22}  {statistics.mean(seconds):7.2f} s per model")
    print("slowest:")
    for m in sorted(rows, key=lambda m: -m["seconds"])[:5]:
        print(f"  {m['name']:<40} {m['seconds']:6.1f} s (stock {m['stock']['name']}: {m.get('stock_seconds', 0.0):.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
