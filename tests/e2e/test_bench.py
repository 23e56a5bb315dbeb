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
    args = [str(tree), "--model", "yolo11n-MobileNetV3_small_n", "--imgsz", "64", "--batch", "1,2", "--rounds", "3",
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
    for key in ("params", "gflops", "peak_memory_mb", *FIGURES):
        expected = pair["patched"][key] if key in ("params", "gflops", "peak_memory_mb") else pair["patched"][key]["median"]
        other = pair["stock"][key] if key in ("params", "gflops", "peak_memory_mb") else pair["stock"][key]["median"]
        assert pair["ratio"][key] == pytest.approx(expected / other, rel=1e-2), key
    assert "timing 1 model(s) against stock" in done.stderr and "ONNX timed" in done.stderr  # progress on stderr
    from PIL import Image

    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size[0] > 300


def test_bench_table_says_plainly_which_is_slower():
    from patcher.bench import format_table, verdict

    def stats(value):
        return {"median": value, "min": value, "max": value, "iqr": 0.0, "runs": 3}

    def figures(latency, throughput, train):
        return {"params": 2_000_000, "gflops": 5.0, "peak_memory_mb": 10.0, "latency_ms": stats(latency),
                "throughput": stats(throughput), "train_throughput": stats(train)}  # fmt: skip

    slow = {"name": "a.yaml", "stock_model": "s.yaml", "patched": figures(20.0, 50.0, 5.0), "stock": figures(10.0, 100.0, 10.0)}
    slow["ratio"] = {"latency_ms": 2.0, "throughput": 0.5, "train_throughput": 0.5, "params": 1.0}
    fast = {**slow, "name": "b.yaml", "ratio": {"latency_ms": 0.8, "throughput": 1.25, "train_throughput": 1.1}}
    assert verdict(slow) == "2.00x stock's latency: SLOWER than stock on this device in latency, throughput and training"
    assert verdict(fast) == "0.80x stock's latency: faster than stock on this device"
    table = format_table({"release": "8.4.190", "torch": "2", "device_name": "cpu", "precision": "fp32", "threads": 2,
                          "imgsz": 640, "rounds": 10, "batches": [1, 32], "pairs": [slow, fast], "plot": None})  # fmt: skip
    assert "a.yaml: 2.00x stock's latency: SLOWER" in table and "  stock s.yaml" in table
    assert table.rstrip().endswith("slower than stock on this device: a.yaml")


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
