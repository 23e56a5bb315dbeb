"""How long `ultrapatch verify` takes, and where the time goes: every installed model of one backbone, one release.

    python benchmarks/verify_speed.py [--version 8.4.190] [--backbone mobilenetv2|none] [--device cpu] [--model GLOB ...]
                                      [--yaml FILE ...] [--each-variant]

Fetches the release from PyPI (set ULTRAPATCH_SDIST_CACHE to keep the sdist), applies the backbone in a temporary
folder, runs `ultrapatch verify --json` as a user would, in its own process, and prints the wall time, the time per
model, the mean time of each check, and the share spent building and running the stock models it compares with.
With --each-variant, verify runs once per backbone variant (with the --model glob verify's own note names)
and the wall time of each run is printed: what a user who verifies the variant they train waits. With --yaml, verify
takes those model YAMLs of a user's too (`--backbone none --yaml tests/yamls/yolo11-p2.yaml`: one YAML of Ultralytics'
own modules, on the release as published): the time of the checks a hand-written YAML gets.
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

from patcher.backbones import BACKBONES
from patcher.verify import variant_glob


def ultrapatch(*args: str) -> subprocess.CompletedProcess:
    # from a neutral folder: `-m` puts the working folder first on sys.path
    return subprocess.run([sys.executable, "-m", "patcher", *args], capture_output=True, text=True, cwd=tempfile.gettempdir())


def patched_tree(tree: Path, version: str, backbone: str) -> bool:
    """`ultrapatch fetch` of `version` into `tree`, then `apply -b backbone` (none: no apply); False, with the output
    printed, where a step fails."""
    steps = [["fetch", str(tree), "--version", version]]
    steps += [["apply", str(tree), "-b", backbone]] if backbone != "none" else []
    for step in steps:
        done = ultrapatch(*step)
        if done.returncode != 0:
            print(done.stdout + done.stderr, file=sys.stderr)
            return False
    return True


def timed_verify(tree: Path, device: str, models: list[str]) -> tuple[float, subprocess.CompletedProcess, dict | None]:
    started = time.perf_counter()
    done = ultrapatch("verify", str(tree), "--device", device, "--json", *models)
    wall = time.perf_counter() - started
    if not done.stdout.strip():
        print(done.stderr, file=sys.stderr)
        return wall, done, None
    return wall, done, json.loads(done.stdout)


def each_variant(tree: Path, args: argparse.Namespace) -> int:
    """One verify run per variant of the backbone; the wall time of each."""
    variants = BACKBONES[args.backbone].variants
    print(f"ultrapatch verify: Ultralytics {args.version}, backbone {args.backbone}, one run per variant, device {args.device}")
    total = 0.0
    for variant in variants:
        wall, done, report = timed_verify(tree, args.device, ["--model", variant_glob(variant)])
        if report is None:
            return 1
        total += wall
        print(f"  {variant:<22} {len(report['models']):3d} models {wall:7.1f} s (exit {done.returncode})")
    print(f"  {'all variants':<22} {'':10} {total:7.1f} s")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="8.4.190")
    parser.add_argument("--backbone", default="mobilenetv2")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", action="append", default=[], help="verify only these (GLOB, repeatable)")
    parser.add_argument("--yaml", action="append", default=[], help="also verify this model YAML (FILE, repeatable)")
    parser.add_argument("--each-variant", action="store_true", help="one verify run per backbone variant, timed")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ultrapatch-bench-") as work:
        tree = Path(work) / "ultralytics"
        if not patched_tree(tree, args.version, args.backbone):
            return 1
        if args.each_variant:
            return each_variant(tree, args)
        models = [a for pattern in args.model for a in ("--model", pattern)]
        models += [a for file in args.yaml for a in ("--yaml", str(Path(file).resolve()))]
        wall, done, report = timed_verify(tree, args.device, models)
        if report is None:
            return 1

    rows = report["models"]
    print(
        f"ultrapatch verify: Ultralytics {report['release']}, backbone {args.backbone}, {len(rows)} models, "
        f"Python {report['python']}, torch {report['torch']}, device {report['device']}"
    )
    print(f"wall time                 {wall:7.1f} s (exit {done.returncode}; interpreter start and imports included)")
    print(f"per model, mean / max     {statistics.mean(m['seconds'] for m in rows):7.1f} / {max(m['seconds'] for m in rows):.1f} s")
    stock = sum(m.get("stock_seconds", 0.0) for m in rows)
    print(f"stock models (control)    {stock:7.1f} s in all")
    every = report.get("stock_models") or {}
    if every:  # the `stock` check: every stock YAML, in the patched fork and in the release
        print(f"stock check ({every.get('models', 0)} YAMLs)  {every.get('seconds', 0.0) + every.get('release_seconds', 0.0):7.1f} s of builds, "
              f"{every['status']}")
    for check in rows[0]["checks"]:
        seconds = [m["checks"][check]["seconds"] for m in rows]
        print(f"  {check:<22}  {statistics.mean(seconds):7.2f} s per model")
    print("slowest:")
    for m in sorted(rows, key=lambda m: -m["seconds"])[:5]:
        print(f"  {m['name']:<40} {m['seconds']:6.1f} s (stock {m['stock']['name']}: {m.get('stock_seconds', 0.0):.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
