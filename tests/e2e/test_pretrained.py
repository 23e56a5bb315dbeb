"""A pretrained backbone inside the built model computes what it computed alone: its BatchNorm settings survive
Ultralytics' `initialize_weights`, `model.fuse()`, a checkpoint round trip and the trainer's rebuild."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import verify_json
from patcher.cli import cli

pytestmark = pytest.mark.e2e

CHECK = r'''
import io, json, sys
import torch, torchvision
from ultralytics.nn.tasks import DetectionModel
from ultralytics.models.yolo.detect import DetectionTrainer

def check(width, weights, yaml):
    torch.manual_seed(0)
    reference = torchvision.models.mobilenet_v2(weights=None, width_mult=width)
    with torch.no_grad():  # a trained network's statistics: small running variances, where eps matters
        for m in reference.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(1e-4, 1e-2)
                m.running_mean.uniform_(-0.5, 0.5)
    torch.save(reference.state_dict(), weights)
    reference.eval()
    model = DetectionModel(yaml, verbose=False).eval()
    backbone = model.model[0]

    def norms(net):
        return sorted({(m.eps, m.momentum) for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)})

    def difference(backbone):
        image = torch.rand(1, 3, 224, 192, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            maps, x, expected = backbone(image), image, []
            for i, layer in enumerate(reference.features[:18]):
                x = layer(x)
                if i in backbone.taps:
                    expected.append(x)
        return max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(maps, expected, strict=True))

    report = {"backbone": norms(backbone), "head": norms(model.model[1:]), "difference": difference(backbone)}
    buffer = io.BytesIO()
    torch.save({"model": model}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)["model"].eval()
    report["checkpoint"] = [norms(loaded.model[0]), difference(loaded.model[0])]
    trainer = DetectionTrainer.__new__(DetectionTrainer)  # what train() does to the model, without a dataset to fetch
    trainer.data, trainer.args = {"nc": 80, "channels": 3, "names": {}}, type("Args", (), {"cls_remap": False})()
    rebuilt = trainer.get_model(cfg=yaml, weights=model, verbose=False)
    report["trainer"] = [norms(rebuilt.model[0]), difference(rebuilt.model[0].eval())]
    model.fuse()
    report["fused"] = norms(model.model[0])
    return report


for width, weights, yaml in json.loads(sys.argv[1]):
    print("REPORT " + json.dumps([width, check(width, weights, yaml)]))
'''


@pytest.mark.parametrize("version", ["8.1.47", "8.4.190"])
def test_mobilenetv2_tv_in_the_model_equals_torchvision(release_tree, tmp_path, version):
    """At width_mult 1.0 and 0.5, with a weights file saved from a seeded torchvision mobilenet_v2 (running variances
    as small as a trained network's): the backbone's four maps in the built model equal torchvision's, to 1e-5."""
    tree = release_tree(version)
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv2-tv"]).exit_code == 0
    installed = (tree / "ultralytics/cfg/models/v8/yolov8-MobileNetV2_tv.yaml").read_text()
    cases = []
    for width in (1.0, 0.5):
        weights, yaml = tmp_path / f"mobilenet_v2-{width}.pth", tmp_path / f"yolov8n-tv{int(width * 10)}.yaml"  # scale n
        # parse_model hands string arguments to ast.literal_eval, which a bare path with slashes breaks: quote it twice
        yaml.write_text(installed.replace("MobileNetV2_tv, []]", f"MobileNetV2_tv, [{width}, \"'{weights}'\"]]"))
        cases.append([width, str(weights), str(yaml)])
    env = {**os.environ, "PYTHONPATH": str(tree), "YOLO_CONFIG_DIR": str(tmp_path / "cfg"), "YOLO_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", CHECK, json.dumps(cases)], capture_output=True, text=True, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads(line[7:]) for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert [width for width, _ in reports] == [1.0, 0.5]
    torchs = [[1e-05, 0.1]]
    for width, report in reports:
        assert report["backbone"] == torchs, (width, report)  # torchvision's own, not Ultralytics' (0.001, 0.03)
        assert report["head"] == [[0.001, 0.03]], (width, report)  # the head keeps Ultralytics' settings
        assert report["difference"] < 1e-5, (width, report)
        assert report["checkpoint"][0] == torchs and report["checkpoint"][1] < 1e-5, (width, report)
        assert report["trainer"][0] == torchs and report["trainer"][1] < 1e-5, (width, report)
        assert report["fused"] == torchs, (width, report)


def test_verify_compares_a_pretrained_backbone_with_itself_alone(release_tree, tmp_path):
    """verify's `weights` check: the backbone in the built model against the same backbone built alone from the same
    weights file (named by the environment here); and, on a fork whose initialize_weights changes the backbone's
    BatchNorm (what Ultralytics does to a plain nn.BatchNorm2d), a failure with the difference."""
    import torch
    import torchvision

    tree = release_tree("8.4.190")
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv2-tv"]).exit_code == 0
    weights = tmp_path / "mobilenet_v2.pth"
    torch.manual_seed(0)
    reference = torchvision.models.mobilenet_v2(weights=None)
    with torch.no_grad():
        for m in reference.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(1e-4, 1e-2)
    torch.save(reference.state_dict(), weights)
    env = {"ULTRAPATCH_MOBILENETV2_WEIGHTS": str(weights)}
    report = verify_json(tree, "--model", "yolov8n-MobileNetV2_tv", env=env)
    check = report["models"][0]["checks"]["weights"]
    assert check["status"] == "pass" and "loaded 306/306 tensors" in check["reason"], check
    assert "largest difference from the backbone built alone: " in check["reason"]
    # a fork that sets eps on every BatchNorm subclass too: the check catches it
    utils = tree / "ultralytics/utils/torch_utils.py"
    utils.write_text(utils.read_text().replace("elif t is nn.BatchNorm2d:", "elif isinstance(m, nn.BatchNorm2d):"))
    report = verify_json(tree, "--model", "yolov8n-MobileNetV2_tv", env=env, code=1)
    check = report["models"][0]["checks"]["weights"]
    assert check["status"] == "fail" and "differ from the same backbone built alone" in check["reason"], check
    assert "(0.001, 0.03)" in check["reason"]
