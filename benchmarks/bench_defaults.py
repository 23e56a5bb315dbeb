"""What `ultrapatch bench` with its default settings costs on this machine: the wall time and peak memory of one run
per model pair, beside what bench itself estimated before timing.

    python benchmarks/bench_defaults.py [--version 8.4.190] [--backbone mobilenetv3] [--device cpu] [--model GLOB ...]

Fetches the release from PyPI (set ULTRAPATCH_SDIST_CACHE to keep the sdist), applies the backbone in a temporary
folder, and runs `ultrapatch bench --model GLOB --json` once per pattern (default: the first variant's YOLO11
detection model), as a user would, in its own process. The peak memory is the largest resident set of the processes
it started (the fork's benchmark process), read from the operating system after each run.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from verify_speed import patched_tree, ultrapatch  # the same steps as verify's benchmark: fetch, then apply


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="8.4.190")
    parser.add_argument("--backbone", default="mobilenetv3")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", action="append", default=[], help="one bench run per GLOB (repeatable)")
    args = parser.parse_args()
    patterns = args.model or ["yolo11n-MobileNetV3_small_n"]
    with tempfile.TemporaryDirectory(prefix="ultrapatch-bench-") as work:
        tree = Path(work) / "ultralytics"
        if not patched_tree(tree, args.version, args.backbone):
            return 1
        print(f"ultrapatch bench with its defaults: Ultralytics {args.version}, backbone {args.backbone}, device {args.device}")
        for pattern in patterns:
            started = time.perf_counter()
            done = ultrapatch("bench", str(tree), "--model", pattern, "--device", args.device, "--json")
            wall = time.perf_counter() - started
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # kB -> GiB, the largest so far
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
                return 1
            report = json.loads(done.stdout)
            estimate = next((line for line in done.stderr.splitlines() if "s for this pair" in line), "").strip()
            for pair in report["pairs"]:
                print(
                    f"  {pair['name']:<40} batches {','.join(map(str, report['batches']))}, {pair.get('rounds', report['rounds'])} rounds: "
                    f"{wall:6.1f} s wall, peak {peak:.1f} GiB (ceiling {report['memory_ceiling_gb']} GiB); bench said: {estimate}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
