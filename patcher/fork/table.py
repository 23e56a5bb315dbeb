"""`ultrapatch table`'s measurements: every run's best.pt loaded in the fork's interpreter, its parameters and GFLOPs
at the run's image size, and its latency at batch 1, every row interleaved with the others in one process, so that
the rows are timed under the same conditions; and the plot of mAP50-95 against latency.

    python launch.py table SPEC.json

SPEC names the tree (or null: the Ultralytics the interpreter imports), the device, the rounds, the plot's file, and
the runs (each with its best.pt, image size, score, and the AddModules files its pickle names). Events: `environment`,
then `missing` (a checkpoint needs module files the fork lacks: nothing is loaded), or `rows`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .bench import Bench, stats
from .process import start


def main(argv: list[str]) -> int:
    emit, spec, environment = start(argv)
    if environment is None:
        return 0
    for run in spec["runs"]:
        missing = [m for m in run["needs"] if not _importable(f"ultralytics.nn.AddModules.{m}")]
        if missing:
            emit(event="missing", folder=run["folder"], modules=missing, root=environment["root"])
            return 0
    import torch
    from ultralytics.nn import tasks
    from ultralytics.utils.torch_utils import get_flops

    load = getattr(tasks, "load_checkpoint", None) or tasks.attempt_load_one_weight  # renamed in 8.4

    bench = Bench({**spec, "imgsz": spec["runs"][0]["imgsz"], "batches": [1], "half": False}, Path("."))
    rows, runs = [], {}
    for k, run in enumerate(spec["runs"]):
        model, _checkpoint = load(run["best"], device="cpu")
        model = model.float()
        rows.append({"params": sum(p.numel() for p in model.parameters()), "gflops": round(float(get_flops(model, run["imgsz"]) or 0.0), 2)})
        inference = bench.inference_model(model)
        image = torch.rand(1, 3, run["imgsz"], run["imgsz"], generator=torch.Generator().manual_seed(k)).to(bench.device)
        runs[k] = lambda m=inference, x=image: m(x)
    with torch.no_grad():
        times = bench.interleaved(runs, bench.rounds)
    for k, row in enumerate(rows):
        row["latency_ms"] = stats([1000 * t for t in times[k]])
        row["fps"] = round(1000 / row["latency_ms"]["median"], 1)
    environment_extra = {"precision": "fp32", "device_name": environment.get("device_name", spec["device"])}
    emit(event="rows", rows=rows, rounds=bench.rounds, **environment_extra)
    if spec.get("plot"):
        plot(spec["runs"], rows, spec["plot"], environment_extra["device_name"])
    return 0


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its package is missing (a fork without AddModules/)
        return False


def pareto(points: list[tuple[float, float]]) -> set[int]:
    """The indices of the points no other point beats on both: lower latency and a higher score."""
    return {
        i
        for i, (latency, score) in enumerate(points)
        if not any((l2 <= latency and s2 >= score) and (l2 < latency or s2 > score) for l2, s2 in points)
    }


def plot(runs: list[dict], rows: list[dict], path: str, device: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(row["latency_ms"]["median"], 100 * run["map"]) for run, row in zip(runs, rows)]
    best = pareto(points)
    figure, axes = plt.subplots(figsize=(7, 5))
    front = sorted(points[i] for i in best)
    axes.plot([p[0] for p in front], [p[1] for p in front], color="C3", linewidth=1, linestyle="--", label="best trade-offs")
    for i, ((latency, score), run) in enumerate(zip(points, runs)):
        marker = "*" if i in best else "o"
        axes.scatter([latency], [score], marker=marker, s=140 if i in best else 50, color="C3" if i in best else "C0", zorder=3)
        axes.annotate(run["name"] + (" (baseline)" if i == 0 else ""), (latency, score), xytext=(5, 5), textcoords="offset points", fontsize=8)
    axes.margins(x=0.25, y=0.1)  # room for the names beside the points
    axes.set_xlabel(f"latency at batch 1, ms (median, {device})")
    axes.set_ylabel("mAP50-95 (%)")
    axes.set_title("accuracy against speed: stars are the best trade-offs", fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
