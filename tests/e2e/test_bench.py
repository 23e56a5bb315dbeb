"""`ultrapatch bench` on a real release at a small size: every figure present and positive for the patched model and
its stock model, the ratios, the verdict, JSON, and a PNG that opens. Timing targets live in benchmarks/, not here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from patcher.cli import cli

pytestmark = pytest.mark.e2e

FIGURES = ("latency_ms", "throughput", "train_throughput", "onnx_latency_ms", "onnx_throughput")


def test_bench_reports_every_figure_against_stock(release_tree, tmp_path):
    tree = release_tree("8.4.190")
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3"]).exit_code == 0
    plot = tmp_path / "bench.png"
    args = [str(tree), "--model", "yolo11n-MobileNetV3_small_n", "--imgsz", "64", "--batch", "1,2", "--rounds", "4",
            "--onnx", "--plot", str(plot)]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "patcher", "bench", *args, "--json"], capture_output=True, text=True,
                          cwd=tmp_path, env={**__import__("os").environ, "YOLO_CONFIG_DIR": str(tmp_path / "cfg")},
                          timeout=1200)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["release"] == "8.4.190" and report["device"] == "cpu" and report["torch"] and report["precision"] == "fp32"
    assert report["batches"] == [1, 2] and report["imgsz"] == 64
    (pair,) = report["pairs"]
    assert pair["name"] == "yolo11n-MobileNetV3_small_n.yaml" and pair["stock_model"] == "yolo11n.yaml"
    for role in ("patched", "stock"):
        figures = pair[role]
        assert figures["params"] > 0 and figures["gflops"] > 0 and figures["peak_memory_mb"] > 0, (role, figures)
        for key in FIGURES:
            stats = figures[key]
            assert 0 < stats["min"] <= stats["median"] <= stats["max"] and stats["iqr"] >= 0 and stats["runs"] >= 3, (role, key, stats)
    assert pair["patched"]["params"] != pair["stock"]["params"]
    for key in FIGURES:  # every timed ratio has its interval, around the ratio itself
        low, high = pair["interval"][key]
        assert low <= pair["ratio"][key] * 1.01 and pair["ratio"][key] <= high * 1.01, (key, low, high)
    for key in ("params", "gflops", "peak_memory_mb", *FIGURES):
        expected = pair["patched"][key] if key in ("params", "gflops", "peak_memory_mb") else pair["patched"][key]["median"]
        other = pair["stock"][key] if key in ("params", "gflops", "peak_memory_mb") else pair["stock"][key]["median"]
        assert pair["ratio"][key] == pytest.approx(expected / other, rel=1e-2), key
    assert "timing 1 model(s) against stock" in done.stderr and "ONNX timed" in done.stderr  # progress on stderr
    assert " s for this pair" in done.stderr  # the estimate, before the timing starts
    assert report["memory_ceiling_gb"] and report["memory_ceiling_gb"] > 0  # from the free memory, on the CPU
    from PIL import Image

    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size[0] > 300


def test_bench_says_slower_or_faster_only_where_the_interval_supports_it():
    from patcher.bench import format_table, verdict
    from patcher.fork.bench import intervals, ratios, stats

    def figures(rounds: dict) -> dict:
        return {"params": 2_000_000, "gflops": 5.0, "peak_memory_mb": 10.0, **{k: stats(v) for k, v in rounds.items()}}

    import random

    noise = random.Random(1)
    base = [100 + noise.gauss(0, 10) for _ in range(16)]  # a shared machine: ±10% from round to round

    def pair(name: str, factor: float) -> dict:
        stock = {"latency_ms": base, "throughput": [1000 / t for t in base], "train_throughput": [300 / t for t in base]}
        patched = {k: [v * (factor if k == "latency_ms" else 1 / factor) * (1 + noise.gauss(0, 0.03)) for v in vs]
                   for k, vs in stock.items()}  # fmt: skip
        p, s = figures(patched), figures(stock)
        return {"name": name, "stock_model": "s.yaml", "patched": {**p, "model": name}, "stock": {**s, "model": "s.yaml"},
                "ratio": ratios(p, s), "interval": intervals(p, s)}  # fmt: skip

    slow, same, fast = pair("a.yaml", 1.3), pair("b.yaml", 0.99), pair("c.yaml", 0.7)
    assert "SLOWER than stock in latency, throughput and training" in verdict(slow)
    assert verdict(same).endswith("no clear difference in latency, throughput and training (on this device)"), verdict(same)
    assert "faster in latency, throughput and training" in verdict(fast) and "SLOWER" not in verdict(fast)
    low, high = same["interval"]["latency_ms"]
    assert low < 1 < high and same["ratio"]["latency_ms"] == pytest.approx(0.99, abs=0.05)
    table = format_table({"release": "8.4.190", "torch": "2", "device_name": "cpu", "precision": "fp32", "threads": 2,
                          "imgsz": 640, "rounds": 16, "batches": [1, 4], "pairs": [slow, same, fast], "plot": None})  # fmt: skip
    assert f"x{slow['ratio']['latency_ms']:.2f} [{slow['interval']['latency_ms'][0]:.2f}," in table and "  stock s.yaml" in table
    assert "slower than stock on this device: a.yaml\n" in table


def test_identical_models_are_almost_never_called_different():
    """Two models that are the same, timed on a noisy machine: the verdict says no clear difference in at least 95 of
    100 benchmarks (the interval's coverage, with the margin)."""
    import random

    from patcher.bench import direction
    from patcher.fork.bench import interval

    noise = random.Random(7)
    called = 0
    for _ in range(100):
        shared = [noise.lognormvariate(0, 0.2) for _ in range(16)]  # what the machine does in each round, to both
        patched = [t * noise.lognormvariate(0, 0.05) for t in shared]
        stock = [t * noise.lognormvariate(0, 0.05) for t in shared]
        called += direction(*interval(patched, stock, resamples=400), higher_is_faster=False) is not None
    assert called <= 5, called


@pytest.mark.parametrize(
    "args, message",
    [
        (["--half"], "--half times fp16 on a GPU"),
        (["--batch", "one"], "give batch sizes as positive whole numbers"),
        (["--batch", "0,2"], "give batch sizes as positive whole numbers"),
        (["--plot", "figure.jpg"], "give a .png file name"),
        (["--device", "gpu"], "give cpu or a CUDA device index"),
    ],
)
def test_bench_bad_input_is_one_sentence(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["bench", str(tmp_path), *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda(), reason="no CUDA device here: --half, CUDA synchronisation and CUDA peak memory run only on a GPU")
def test_bench_on_a_gpu_in_half_precision(release_tree, tmp_path):
    """On a GPU: fp16 inference, the device synchronised around every clock reading, and the peak memory from CUDA's
    own counter: every figure present and positive, the precision reported."""
    tree = release_tree("8.4.190")
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3"]).exit_code == 0
    args = [str(tree), "--model", "yolo11n-MobileNetV3_small_n", "--device", "0", "--half", "--imgsz", "320", "--rounds", "4"]
    done = subprocess.run([sys.executable, "-m", "patcher", "bench", *args, "--json"], capture_output=True, text=True,
                          cwd=tmp_path, env={**__import__("os").environ, "YOLO_CONFIG_DIR": str(tmp_path / "cfg")},
                          timeout=1200)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["precision"] == "fp16" and report["batches"] == [1, 32] and report["memory_ceiling_gb"] is None
    (pair,) = report["pairs"]
    for role in ("patched", "stock"):
        assert pair[role]["peak_memory_mb"] > 0 and all(pair[role][k]["median"] > 0 for k in FIGURES[:3]), pair[role]
