"""Every layer's index is its place in the model and its number in the YAML, so that what Ultralytics does with layer
indices (the table parse_model prints, `profile`, `visualize`, `embed`) means on a patched model what it means on a
stock one; and the upstream project's own offline model tests pass on a patched tree. (`freeze` and distillation
are verify's checks, which tests/e2e/test_releases.py runs on the same matrix.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import RELEASES, REPO
from patcher.cli import cli
from patcher.tree import parse_version

pytestmark = pytest.mark.e2e
PROBE = REPO / "tests" / "index_probe.py"


def fork_env(tree: Path) -> dict:
    return {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tree.parent / "settings"), "OMP_NUM_THREADS": "2"}


@pytest.mark.parametrize("version", RELEASES)
def test_indices_are_places_and_yaml_numbers(release_tree, version):
    tree = release_tree(version)
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3", "-b", "mobilenetv2"]).exit_code == 0
    for name in ("yolov8n-MobileNetV3_small_n.yaml", "rtdetr-l-MobileNetV2.yaml"):
        visualize = tree.parent / f"visualize-{name}"
        visualize.mkdir()
        done = subprocess.run([sys.executable, str(PROBE), str(tree), name, str(visualize)], capture_output=True,
                              text=True, env=fork_env(tree), cwd=tree.parent, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        seen = json.loads(done.stdout)
        rows = seen["layers"] - 4  # one backbone row, five places
        assert seen["table"] == [0, *range(5, 5 + rows - 1)], (name, seen)  # the YAML's numbering: 0, then 5 on
        assert seen["places"] == list(range(seen["layers"])), (name, seen)
        assert seen["profile"]
        if "visualize" in seen and "rtdetr" not in name:  # RT-DETR's loop has no visualize
            # each map under its own index (the backbone's list is not drawn), every later layer but the head
            assert seen["visualize"] == list(range(1, seen["layers"] - 1)), seen
        assert seen["embed_default"] and seen["embed_yaml"], (name, seen)  # the second-to-last layer, both ways


@pytest.mark.parametrize("version", RELEASES)
def test_upstream_model_tests_pass_on_a_patched_tree(release_tree, version):
    """Ultralytics' own tests/test_python.py model forward and profile tests, offline, in the patched fork."""
    tree = release_tree(version)
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "all"]).exit_code == 0
    assert (tree / "tests/test_python.py").is_file(), "the release's sdist has no tests"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_python.py", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
         "-k", "test_model_forward or test_model_profile"],
        capture_output=True, text=True, env=fork_env(tree), cwd=tree, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
    assert parse_version(version) < (8, 2, 0) or "test_model_profile" in done.stdout or "passed" in done.stdout


@pytest.mark.parametrize("version", [RELEASES[0], RELEASES[-1]])
def test_a_model_in_the_tutorials_layout_still_runs(release_tree, version):
    """Checkpoints trained in a tutorial's tree, or with ultrapatch 0.1, hold one backbone layer numbered 4 whose
    maps the forward loops spread: the patched forward loops still run them, with the same outputs."""
    tree = release_tree(version)
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3", "-b", "mobilenetv2"]).exit_code == 0
    for name in ("yolov8n-MobileNetV3_small_n.yaml", "rtdetr-l-MobileNetV2.yaml"):
        done = subprocess.run([sys.executable, str(REPO / "tests" / "legacy_probe.py"), str(tree), name],
                              capture_output=True, text=True, env=fork_env(tree), cwd=tree.parent, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads(done.stdout)["same"], name
