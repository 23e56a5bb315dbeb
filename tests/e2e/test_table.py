"""`ultrapatch table` on real runs: a stock YOLO11n and two patched ones (MobileNetV3, MobileNetV2), each trained for
two epochs with the fork's own `yolo train` on a tiny synthetic set on 8.4.190. Every column of every row in the
three formats, the figures equal to those read directly from results.csv and the checkpoint, the plot, and every
refusal: one sentence, exit 2, nothing written."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import pristine_tree
from patcher.cli import cli
from patcher.table import fitness, read_results

pytestmark = pytest.mark.e2e
YOLO_CLI = "import sys; from ultralytics.cfg import entrypoint; sys.argv = ['yolo', *sys.argv[1:]]; entrypoint()"
MODELS = ("yolo11n", "yolo11n-MobileNetV3_small_n", "yolo11n-MobileNetV2")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The patched tree and the three runs' folders, stock first."""
    from patcher.fork.data import synthetic_dataset

    work = tmp_path_factory.mktemp("table")
    tree = work / "ultralytics"
    shutil.copytree(pristine_tree("8.4.190"), tree, symlinks=True)
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3", "-b", "mobilenetv2"]).exit_code == 0
    data = synthetic_dataset(work / "data", "detect")
    env = {**os.environ, "PYTHONPATH": str(tree), "YOLO_CONFIG_DIR": str(work / "cfg"), "YOLO_OFFLINE": "1", "OMP_NUM_THREADS": "2"}
    runs = []
    for model in MODELS:
        args = ["train", f"model={model}.yaml", f"data={data}", "epochs=2", "batch=2", "imgsz=64", "device=cpu", "workers=0",
                "plots=False", "amp=False", f"project={work / 'runs'}", f"name={model}", "exist_ok=True"]  # fmt: skip
        done = subprocess.run([sys.executable, "-c", YOLO_CLI, *args], capture_output=True, text=True, env=env, cwd=work, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append(work / "runs" / model)
    return tree, runs


def table(*args: str):
    return CliRunner().invoke(cli, ["table", *args], catch_exceptions=False)


def test_every_format_gives_every_column_of_every_row(trained, tmp_path):
    tree, runs = trained
    plot = tmp_path / "table.png"
    markdown = table(*map(str, runs), "--tree", str(tree), "--rounds", "3", "--plot", str(plot))
    assert markdown.exit_code == 0, markdown.output
    lines = markdown.output.splitlines()
    assert lines[0] == "| Model | Params (M) | GFLOPs | P (%) | R (%) | mAP50 (%) | mAP50-95 (%) | FPS | Train time |"
    rows = [line for line in lines[2:] if line.startswith("| ")]
    assert [r.split(" | ")[0] for r in rows] == ["| yolo11n (baseline)", "| yolo11n-MobileNetV3_small_n", "| yolo11n-MobileNetV2"]
    assert all(len(r.strip("|").split("|")) == 9 and "-" not in r.split(" | ")[1:2] for r in rows)
    assert all("%)" in r.split(" | ")[1] for r in rows[1:])  # a change against the baseline in every later row
    assert "every row timed in one run, interleaved" in markdown.output and "Ultralytics 8.4.190" in markdown.output
    from PIL import Image

    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size[0] > 300

    latex = table(*map(str, runs), "--tree", str(tree), "--rounds", "3", "--format", "latex")
    assert latex.exit_code == 0 and "\\toprule" in latex.output and "\\bottomrule" in latex.output
    assert latex.output.count(" \\\\\n") == 4 and "yolo11n-MobileNetV3\\_small\\_n" in latex.output


def test_the_figures_are_those_of_results_csv_and_the_checkpoint(trained):
    tree, runs = trained
    done = table(*map(str, runs), "--tree", str(tree), "--rounds", "3", "--format", "csv", "--baseline", str(runs[1]))
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(io.StringIO(done.output)))
    assert [r["model"] for r in rows] == ["yolo11n-MobileNetV3_small_n", "yolo11n", "yolo11n-MobileNetV2"]  # --baseline first
    count = ("import sys, torch; from ultralytics.nn import tasks; from ultralytics.utils.torch_utils import get_flops; "
             "m = tasks.load_checkpoint(sys.argv[1], device='cpu')[0].float(); "
             "print(sum(p.numel() for p in m.parameters()), round(float(get_flops(m, 64)), 2))")  # fmt: skip
    for row in rows:
        run = Path(row["run"])
        results = read_results(run / "results.csv")
        best = max(results, key=lambda r: 0.1 * r["metrics/mAP50(B)"] + 0.9 * r["metrics/mAP50-95(B)"])
        assert int(row["best_epoch"]) == int(best["epoch"]) and fitness(best, "detect") == max(fitness(r, "detect") for r in results)
        for key in ("precision", "recall", "mAP50", "mAP50-95"):
            assert float(row[key]) == pytest.approx(100 * best[f"metrics/{key}(B)"], abs=1e-3), key
        assert float(row["seconds"]) == pytest.approx(results[-1]["time"], abs=1e-3) and int(row["epochs"]) == 2
        loaded = subprocess.run([sys.executable, "-c", count, str(run / "weights" / "best.pt")], capture_output=True, text=True,
                                env={**os.environ, "PYTHONPATH": str(tree)})  # fmt: skip
        params, gflops = loaded.stdout.split()
        assert float(row["params"]) == pytest.approx(int(params) / 1e6, abs=1e-4) and float(row["gflops"]) == pytest.approx(float(gflops))
        assert float(row["fps"]) > 0 and row["device"] == "cpu" and row["dtype"] == "fp32" and row["imgsz"] == "64"
    assert rows[0]["params_vs_baseline"] == "" and rows[1]["params_vs_baseline"].endswith("%")


def test_bad_runs_are_refused_with_one_sentence_and_nothing_written(trained, tmp_path):
    tree, runs = trained
    plot = tmp_path / "never.png"
    no_weights = tmp_path / "no-weights"
    shutil.copytree(runs[0], no_weights, ignore=shutil.ignore_patterns("*.pt"))
    no_results = tmp_path / "no-results"
    shutil.copytree(runs[0], no_results)
    (no_results / "results.csv").unlink()
    other_task = tmp_path / "segment-run"
    shutil.copytree(runs[0], other_task)
    args = (other_task / "args.yaml").read_text(encoding="utf-8").replace("task: detect", "task: segment")
    (other_task / "args.yaml").write_text(args, encoding="utf-8")
    (tmp_path / "empty").mkdir()
    cases = {
        (str(tmp_path / "empty"),): "is not an Ultralytics training run (it has no args.yaml)",
        (str(tmp_path / "nowhere"),): "no such folder",
        (str(runs[0]), str(no_weights)): "has no weights/best.pt",
        (str(runs[0]), str(no_results)): "has no results.csv",
        (str(runs[0]), str(other_task)): "is a segment run and",
    }
    for folders, words in cases.items():
        result = table(*folders, "--tree", str(tree), "--plot", str(plot))
        assert result.exit_code == 2 and words in result.output and "Traceback" not in result.output, (folders, result.output)
    unpatched = tmp_path / "unpatched"
    shutil.copytree(pristine_tree("8.4.190"), unpatched, symlinks=True)
    result = table(str(runs[0]), str(runs[1]), "--tree", str(unpatched), "--plot", str(plot))
    assert result.exit_code == 2, result.output
    assert "needs BackboneMap.py, MobileNetV3.py of ultralytics/nn/AddModules/, which the fork at" in result.output
    assert f"`ultrapatch apply {unpatched} -b mobilenetv3`" in result.output
    assert not plot.exists()
