"""apply on every release of the test matrix, then build, run and train the models in the patched fork itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from click.testing import CliRunner

from conftest import RELEASES, git_status, run_probe, tree_digest, verify_json
from patcher.backbones import BACKBONES, select_backbones
from patcher.cli import cli
from patcher.edits import EDITS
from patcher.edits.base import Context
from patcher.planner import Plan, make_plan
from patcher.tree import find_tree, parse_version
from patcher.verify import scaled_name

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
UPDATE_GOLDEN = os.environ.get("ULTRAPATCH_UPDATE_GOLDEN") == "1"

pytestmark = pytest.mark.e2e
# The releases verified: the test matrix, and 8.4.120, whose distillation hooks the teacher at the student's layer
# indices (the distill check pairs the model with a copy of itself there).
MATRIX = (*RELEASES, "8.4.120")


def golden_diff(tree: Path) -> str:
    """The dry-run diff of the release's own files (new files are the same on every release)."""
    found = find_tree(tree)
    plan = make_plan(found, EDITS, Context(found.release, select_backbones(("all",))))
    assert plan.ok, [r.detail for r in plan.failed]
    return Plan(found, changes=[c for c in plan.changes if c[1] is not None]).diff()


def models_for(version: str) -> dict[str, str]:
    """NAME:BUILDER specs to probe on `version`, each with the backbone class the layer table must show.

    Every backbone runs every family and task the release has, with one variant per release, rotating, so that the
    matrix covers every variant. ULTRAPATCH_FULL_MATRIX=1 runs every variant of every backbone instead (every
    installed model: 169 on the newest release).
    """
    release, position = parse_version(version), MATRIX.index(version)
    full = os.environ.get("ULTRAPATCH_FULL_MATRIX") == "1"
    models = {}
    for backbone in BACKBONES.values():
        variant = backbone.variants[position % len(backbone.variants)]
        for template, installed, _path in backbone.yamls(release):
            if full or installed == variant:
                scaled = template.stem if template.stem == "yolov3" else scaled_name(template.stem, "n")
                models[f"{scaled}-{installed}.yaml:{template.builder}"] = installed
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

    *first, last = BACKBONES  # every backbone but one, then that one merged in
    applied = runner.invoke(cli, ["apply", str(tree), *(arg for name in first for arg in ("--backbone", name))])
    assert applied.exit_code == 0, applied.output
    assert "failed" not in applied.output
    merged = runner.invoke(cli, ["apply", str(tree), "--backbone", last])  # a later backbone merges
    assert merged.exit_code == 0, merged.output
    assert "4 applied" in merged.stdout  # addmodules, tasks-import, parse-model-branch, model-yamls
    tasks = (tree / "ultralytics/nn/tasks.py").read_text()
    assert tasks.count("c2 = m.width_list") == 1 and tasks.count("from ultralytics.nn.AddModules import") == 1
    patched = tree_digest(tree)

    again = runner.invoke(cli, ["apply", str(tree), "--backbone", "all"])
    assert again.exit_code == 0, again.output
    assert "0 applied" in again.stdout and "nothing to change" in again.stdout
    assert tree_digest(tree) == patched, "applying twice changed bytes"
    assert runner.invoke(cli, ["apply", str(tree), "-b", "all", "--check"]).exit_code == 0

    models = models_for(version)
    built = run_probe(tree, *models)
    assert Path(built["ultralytics_file"]).resolve().is_relative_to(tree.resolve()), "the fork was not the one imported"
    for model in built["models"]:
        assert "error" not in model, model.get("traceback")
        assert model["backbone_type"] == models[f"{model['name']}:{model['builder']}"]  # the YAML name, not a repr
        assert model["backbone_index"] == 0 and model["map_layers"] == ["BackboneMap"] * 4  # layers 0-4, as the YAML
        assert model["indices_are_places"], model  # every layer's index is its place in the model



DEFAULT_MATRIX = ("8.1.47", "8.3.40", "8.4.190")  # the inline sets, the last release before the frozensets, the newest
VERIFIED = [v if v in DEFAULT_MATRIX else pytest.param(v, marks=pytest.mark.release_matrix) for v in MATRIX]


@pytest.mark.parametrize("version", VERIFIED)  # the other five releases: `-m release_matrix`
def test_every_check_on_the_matrix(release_tree, version):
    """verify on the matrix of the release (every backbone on every family and task, one variant each)."""
    tree = release_tree(version)
    assert CliRunner().invoke(cli, ["apply", str(tree), "--backbone", "all"]).exit_code == 0
    models = models_for(version)
    # Every check of `verify`: forward at three sizes in eval and train, strides, loss and backward with gradients
    # for every backbone parameter, the checkpoint round trip, model.fuse() (MobileOne: reparameterised), validation.
    report = verify_json(tree, *(arg for spec in models for arg in ("--model", spec.partition(":")[0])))
    assert report["release"] == version
    assert sorted(m["name"] for m in report["models"]) == sorted(spec.partition(":")[0] for spec in models)
    has_distill = (tree / "ultralytics/nn/distill_model.py").is_file()
    old_loader = parse_version(version) < (8, 2, 51)  # torch.load without weights_only=False: nothing loads
    calls_trapz = parse_version(version) <= (8, 3, 100) and not hasattr(numpy, "trapz")  # AP: np.trapz, gone in 2.4
    for model in report["models"]:
        assert model["gflops"] > 0 and model["stock"]["gflops"] > 0
        for check, result in model["checks"].items():
            where = (model["name"], check, result["reason"])
            if check == "export":
                assert result["status"] == "skip" and "--export onnx" in result["reason"], where
            elif check == "distill" and not (has_distill and model["task"] == "detect" and model["family"] != "rtdetr-l"):
                assert result["status"] == "skip", where  # 8.4.x detection models only
            elif check == "weights":  # no weights file given: tests/e2e/test_pretrained.py gives one
                assert result["status"] == "skip" and "given no weights" in result["reason"], where
            elif check == "checkpoint" and old_loader:
                assert result["status"] == "skip" and "weights_only=True" in result["reason"], where
            elif check == "reload" and old_loader:  # no checkpoint loaded in the verifying process either
                assert result["status"] == "skip" and "no checkpoint loaded" in result["reason"], where
            elif check == "amp":  # on CUDA only
                assert result["status"] == "skip" and "CUDA only" in result["reason"], where
            elif check == "scales" and model["family"] in ("yolov3", "rtdetr-l"):  # one scale only
                assert result["status"] == "skip" and "no other scale" in result["reason"], where
            elif check == "val" and model["task"] != "classify" and calls_trapz:  # the stock model fails it too
                assert result["status"] == "environment" and "has no np.trapz" in result["reason"], where
            else:
                assert result["status"] == "pass", where
        if model["backbone"].startswith("MobileOne"):
            assert model["fused_params"] < model["params"], "model.fuse() left MobileOne's branches unfolded"
    assert {m["task"] for m in report["models"]} >= {"detect", "segment", "pose", "obb", "classify"}


EVERY_YAML = [v if v in (RELEASES[0], RELEASES[-1]) else pytest.param(v, marks=pytest.mark.yaml_matrix) for v in RELEASES]


@pytest.mark.parametrize("version", EVERY_YAML)  # the releases between the oldest and the newest: `-m yaml_matrix`
def test_every_installed_yaml_builds(release_tree, version):
    """Every YAML apply installs, for every backbone and variant, builds in the fork's own parse_model and feeds its
    head the right strides (the matrix above verifies one variant per backbone and release): 105 YAMLs on 8.1.47 up
    to 169 on 8.4.190."""
    tree = release_tree(version)
    assert CliRunner().invoke(cli, ["apply", str(tree), "--backbone", "all"]).exit_code == 0
    release = parse_version(version)
    installed = {
        f"{Path(path).stem}.yaml:{template.builder}": (variant, template.task)
        for backbone in BACKBONES.values()
        for template, variant, path in backbone.yamls(release)
    }
    report = run_probe(tree, *installed)
    assert len(report["models"]) == len(installed)
    for model in report["models"]:
        assert "error" not in model, model.get("traceback")
        variant, task = installed[f"{model['name']}:{model['builder']}"]
        assert (model["backbone_type"], model["task"]) == (variant, task)
        expected = [32.0] if task == "classify" else [8.0, 16.0, 32.0]
        assert model["head_strides"]["eval 640x480"] == expected, model["name"]


def test_rtdetr_mobilenetv2_acceptance_figure(release_tree):
    """Seed 002's table: rtdetr-l with MobileNetV2 and nc: 1 has 594 layers and 20,263,651 parameters (here 598
    layers: the four BackboneMap layers, which hold no parameters, come on top)."""
    tree = release_tree("8.3.40")
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv2"]).exit_code == 0
    script = (
        "from ultralytics.nn.tasks import RTDETRDetectionModel\n"
        "m = RTDETRDetectionModel('rtdetr-l-MobileNetV2.yaml', nc=1, verbose=False)\n"
        "maps = sum(type(x).__name__ == 'BackboneMap' for x in m.modules())\n"
        "print(len(list(m.modules())) - maps, sum(p.numel() for p in m.parameters()), sum(p.numel() for p in m.model[0].parameters()), maps)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tree), "YOLO_CONFIG_DIR": str(tree.parent / "yolo-config")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tree.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1].split() == ["594", "20263651", "1811712", "4"]


def test_mobilenetv2_tv_loads_imagenet_weights_in_the_fork(release_tree, tmp_path):
    """The weights file named by the YAML's argument, or by the environment, reaches the backbone in the fork."""
    tree = release_tree("8.4.190")
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv2-tv"]).exit_code == 0
    weights = tmp_path / "mobilenet_v2.pth"
    yaml = tmp_path / "yolov8n-mine.yaml"
    installed = tree / "ultralytics/cfg/models/v8/yolov8-MobileNetV2_tv.yaml"
    # parse_model hands string arguments to ast.literal_eval, which a bare path with slashes breaks: quote it twice
    yaml.write_text(installed.read_text().replace("MobileNetV2_tv, []]", f"MobileNetV2_tv, [1.0, \"'{weights}'\"]]"))
    script = (
        "import sys, torch, torchvision\n"
        "from ultralytics import YOLO\n"
        "torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), sys.argv[2])\n"
        "state = torch.load(sys.argv[2], weights_only=True)\n"
        "for name in sys.argv[1], 'yolov8n-MobileNetV2_tv.yaml':\n"
        "    backbone = YOLO(name).model.model[0]\n"
        "    same = torch.equal(backbone.features[5].conv[0][0].weight, state['features.5.conv.0.0.weight'])\n"
        "    print(name.rsplit('/', 1)[-1], same, backbone.pretrained)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tree), "YOLO_CONFIG_DIR": str(tmp_path / "cfg")}
    env["ULTRAPATCH_MOBILENETV2_WEIGHTS"] = str(weights)  # the second build, by name, takes it from here
    result = subprocess.run([sys.executable, "-c", script, str(yaml), str(weights)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("yolov8n-")]  # not Ultralytics' log
    assert lines[0].startswith("yolov8n-mine.yaml True MobileNetV2_tv: loaded 306/306 tensors"), lines
    assert lines[1].startswith("yolov8n-MobileNetV2_tv.yaml True MobileNetV2_tv: loaded 306/306 tensors"), lines
