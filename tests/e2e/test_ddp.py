"""verify's opt-in `ddp` check: two ranks under torch.distributed.run (gloo on the CPU) in the fork's interpreter,
one model per backbone; a backbone with a branch its forward never uses, which DDP without
find_unused_parameters cannot train: the check fails and names the parameter; and ranks that err once (as a lost
connection does): the check runs again and passes, saying so."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from conftest import verify_json
from patcher.cli import cli

pytestmark = pytest.mark.e2e

MODELS = {  # one model per backbone, in several families
    "mobilenetv3": "yolo11n-MobileNetV3_small_n",
    "mobilenetv2": "rtdetr-l-MobileNetV2",
    "mobileone": "yolov8n-seg-MobileOne_s0",
    "mobilenetv2-tv": "yolov8n-cls-MobileNetV2_tv",
    "timm:resnet18": "yolo11n-pose-resnet18",
}


def test_every_backbone_trains_under_ddp(release_tree):
    tree = release_tree("8.4.190")
    args = [a for name in MODELS for a in ("-b", name)]
    assert CliRunner().invoke(cli, ["apply", str(tree), *args]).exit_code == 0
    patterns = [a for model in MODELS.values() for a in ("--model", model)]
    report = verify_json(tree, *patterns, "--no-stock", "--ddp", "2")
    assert len(report["models"]) == len(MODELS)
    for model in report["models"]:
        ddp = model["checks"]["ddp"]
        assert ddp["status"] == "pass", (model["name"], ddp)
        assert ddp["reason"] == "2 ranks, 2 steps, parameters and buffers identical across ranks"


def test_an_unused_backbone_branch_fails_with_its_name(release_tree):
    tree = release_tree("8.4.190")
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3"]).exit_code == 0
    module = tree / "ultralytics/nn/AddModules/MobileNetV3.py"
    line = "        self.width_list = [widths[i] for i in self.taps]\n"
    text = module.read_text()
    assert line in text
    module.write_text(text.replace(line, line + "        self.unused_branch = nn.Conv2d(3, 8, 1)  # never called in forward\n"))
    report = verify_json(tree, "--model", "yolo11n-MobileNetV3_small_n", "--no-stock", "--ddp", "2", code=1)
    (model,) = report["models"]
    ddp = model["checks"]["ddp"]
    assert ddp["status"] == "fail", ddp
    assert "get no gradient on rank" in ddp["reason"] and "model.0.unused_branch.weight" in ddp["reason"], ddp
    assert "retried" not in ddp  # a finding is a fact of the model: not run again
    assert not model["ok"]


def test_ranks_that_err_once_are_run_again(release_tree, tmp_path):
    tree = release_tree("8.4.190")
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3"]).exit_code == 0
    module = tree / "ultralytics/nn/AddModules/MobileNetV3.py"
    line = "        self.width_list = [widths[i] for i in self.taps]\n"
    mark = str(tmp_path / "failed-rank-")
    once = (  # in a rank (RANK set), the first build raises; the marker file makes it the only one
        f"        if __import__('os').environ.get('RANK') and not __import__('os').path.exists({mark!r} + __import__('os').environ['RANK']):\n"
        f"            open({mark!r} + __import__('os').environ['RANK'], 'w').close()\n"
        f"            raise RuntimeError('injected: this rank errs once')\n"
    )
    text = module.read_text()
    assert line in text
    module.write_text(text.replace(line, line + once))
    report = verify_json(tree, "--model", "yolo11n-MobileNetV3_small_n", "--no-stock", "--ddp", "2")
    (model,) = report["models"]
    ddp = model["checks"]["ddp"]
    assert ddp["status"] == "pass", ddp
    assert ddp["retried"].startswith("rank 0: RuntimeError: injected: this rank errs once"), ddp
    assert (tmp_path / "failed-rank-0").exists() and (tmp_path / "failed-rank-1").exists()
