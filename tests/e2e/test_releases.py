"""apply on every release of the test matrix, then build, run and train the models in the patched fork itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import RELEASES, git_status, run_probe, tree_digest
from patcher.backbones import select_backbones
from patcher.cli import cli
from patcher.edits import EDITS
from patcher.edits.base import Context
from patcher.planner import Plan, make_plan
from patcher.tree import find_tree

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
UPDATE_GOLDEN = os.environ.get("ULTRAPATCH_UPDATE_GOLDEN") == "1"

# one variant per release, so that the matrix covers all six
VARIANT = dict(
    zip(
        RELEASES,
        ["MobileNetV3_small_n", "MobileNetV3_large_n", "MobileNetV3_small_s", "MobileNetV3_large_s",
         "MobileNetV3_small_m", "MobileNetV3_large_m", "MobileNetV3_small_n"],
    )
)

pytestmark = pytest.mark.e2e


def golden_diff(tree: Path) -> str:
    """The dry-run diff of the release's own files (new files are the same on every release)."""
    found = find_tree(tree)
    plan = make_plan(found, EDITS, Context(found.release, select_backbones(("all",))))
    return Plan(found, changes=[c for c in plan.changes if c[1] is not None]).diff()


def models_for(release: tuple[int, ...], variant: str) -> list[str]:
    models = [f"rtdetr-l-{variant}.yaml:RTDETR"]
    if release >= (8, 3, 0):  # YOLO11 arrived in 8.3.0
        models.insert(0, f"yolo11n-{variant}.yaml:YOLO")
    return models


@pytest.mark.parametrize("version", RELEASES)
def test_apply_build_and_train(release_tree, version):
    tree = release_tree(version)
    runner = CliRunner()

    golden = GOLDEN / f"{version}.diff"
    expected = golden_diff(tree)
    if UPDATE_GOLDEN:
        golden.write_text(expected, encoding="utf-8")
    assert expected == golden.read_text(encoding="utf-8"), f"behaviour changed on {version}: review, then regenerate"

    dry = runner.invoke(cli, ["apply", str(tree), "--backbone", "all", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "+++ b/ultralytics/nn/tasks.py" in dry.stdout
    assert git_status(tree) == "", "a dry run wrote something"
    assert runner.invoke(cli, ["apply", str(tree), "-b", "all", "--check"]).exit_code == 1

    applied = runner.invoke(cli, ["apply", str(tree), "--backbone", "mobilenetv3"])
    assert applied.exit_code == 0, applied.output
    assert "failed" not in applied.output
    patched = tree_digest(tree)

    again = runner.invoke(cli, ["apply", str(tree), "--backbone", "all"])
    assert again.exit_code == 0, again.output
    assert "0 applied" in again.stdout and "nothing to change" in again.stdout
    assert tree_digest(tree) == patched, "applying twice changed bytes"
    assert runner.invoke(cli, ["apply", str(tree), "-b", "all", "--check"]).exit_code == 0

    release = find_tree(tree).release
    report = run_probe(tree, *models_for(release, VARIANT[version]))
    assert Path(report["ultralytics_file"]).resolve().is_relative_to(tree.resolve()), "the fork was not the one imported"
    assert report["release"] == version
    for model in report["models"]:
        assert "error" not in model, model.get("traceback")
        assert model["backbone_type"] == VARIANT[version]  # the layer table shows the YAML name
        assert model["backbone_index"] == 4  # the backbone is layers 0-4
        assert model["gflops"] > 0
        for mode, strides in model["head_strides"].items():
            assert strides == [8.0, 16.0, 32.0], mode
        assert set(model["head_strides"]) == {f"{m} {s}" for m in ("eval", "train") for s in ("640x640", "640x480", "480x640")}
        if model["builder"] == "YOLO":
            assert model["stride"] == [8.0, 16.0, 32.0]
        assert model["loss_finite"] and model["grads_finite"]
        assert model["backbone_params_without_grad"] == 0
