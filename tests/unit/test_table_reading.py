"""The table's reading of a training run: the best epoch is the one Ultralytics' fitness picks (what best.pt holds),
for every task's metrics and for the padded column names of older releases."""

from __future__ import annotations

from pathlib import Path

import pytest

from patcher.errors import UltrapatchError
from patcher.table import change, read_run, shown

HEADER = "epoch,time,metrics/precision(B),metrics/recall(B),metrics/mAP50(B),metrics/mAP50-95(B)"


def run(folder: Path, results: str, task: str = "detect") -> Path:
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "best.pt").write_bytes(b"")
    (folder / "args.yaml").write_text(f"task: {task}\nmodel: yolo11n-X.yaml\nimgsz: 320\ndata: d.yaml\n", encoding="utf-8")
    (folder / "results.csv").write_text(results, encoding="utf-8")
    return folder


def test_the_best_epoch_is_the_one_ultralytics_fitness_picks(tmp_path):
    """Epoch 3 has the highest mAP50, epoch 2 the highest 0.1 mAP50 + 0.9 mAP50-95: best.pt is epoch 2's."""
    found = read_run(run(tmp_path, f"{HEADER}\n1,10,0.5,0.4,0.30,0.10\n2,20,0.6,0.5,0.40,0.30\n3,30,0.7,0.6,0.60,0.20\n"))
    assert found.best_epoch == 2 and found.metrics == {"precision": 0.6, "recall": 0.5, "mAP50": 0.4, "mAP50-95": 0.3}
    assert found.seconds == 30 and found.epochs == 3 and found.imgsz == 320 and found.name == "yolo11n-X"


def test_older_releases_padded_column_names_and_segment_fitness(tmp_path):
    padded = ("               epoch,   metrics/precision(B),      metrics/recall(B),       metrics/mAP50(B),    metrics/mAP50-95(B),"
              "   metrics/mAP50(M),    metrics/mAP50-95(M)\n"
              "                   1,        0.9,        0.9,        0.50,        0.40,        0.10,        0.05\n"
              "                   2,        0.5,        0.5,        0.45,        0.35,        0.40,        0.30\n")  # fmt: skip
    found = read_run(run(tmp_path, padded, task="segment"))
    assert found.best_epoch == 2  # the masks' fitness counts too: 0.385 + 0.31 against 0.41 + 0.055
    assert found.seconds is None  # no time column before 8.3


def test_a_folder_without_epochs_is_refused(tmp_path):
    with pytest.raises(UltrapatchError, match="holds no epoch"):
        read_run(run(tmp_path, HEADER + "\n"))


def test_changes_are_points_for_scores_and_percent_for_the_rest():
    assert change("mAP50-95", 41.5, 40.0) == "+1.5" and change("params", 2.0, 2.5) == "-20.0%"
    assert change("fps", 120.0, 100.0) == "+20.0%" and change("params", None, 2.0) == ""
    assert shown("seconds", 59) == "59 s" and shown("seconds", 600) == "10.0 min" and shown("seconds", 36000) == "10.0 h"
    assert shown("gflops", 0.06) == "0.06" and shown("gflops", 6.7) == "6.7" and shown("mAP50", None) == "-"
