"""`export-checkpoint` and `import-checkpoint`: a trained checkpoint carried to another tree, through a file that
holds no class (it loads with weights_only=True anywhere), the old layout's checkpoints renumbered on the way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from patcher.cli import cli

pytestmark = pytest.mark.e2e
RELEASE = "8.4.190"
YAML = "yolo11n-MobileNetV3_small_n.yaml"

# In the fork: build the model (in the tutorials' layout with "old"), save it as the trainer saves best.pt, and the
# outputs it gives for a seeded image.
SAVE = """
import json, sys, torch
sys.path[:0] = [sys.argv[1], sys.argv[5]]
from legacy_probe import to_tutorial_layout
from ultralytics.nn.tasks import DetectionModel
torch.manual_seed(0)
model = DetectionModel(sys.argv[2], verbose=False).eval()
if sys.argv[4] == "old":  # one backbone layer numbered 4, its maps spread by the forward loops
    to_tutorial_layout(model)
image = torch.rand(1, 3, 160, 128, generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    out = model(image)[0]
torch.save({"model": model.half(), "ema": None, "train_args": {"imgsz": 160, "data": "coco8.yaml"}}, sys.argv[3])
torch.save({"image": image, "out": out}, sys.argv[3] + ".io")
"""

# In the other fork: YOLO() loads the imported checkpoint; its outputs for the same image.
LOAD = """
import json, sys, torch
sys.path.insert(0, sys.argv[1])
from ultralytics import YOLO
io = torch.load(sys.argv[3], weights_only=True)
model = YOLO(sys.argv[2]).model.float().eval()
with torch.no_grad():
    out = model(io["image"])[0]
print(json.dumps({"layers": len(model.model), "error": float((out - io["out"]).abs().max() / io["out"].abs().max())}))
"""


def run_in(tree: Path, script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", script, str(tree), *args], capture_output=True, text=True,
                          env={**os.environ, "YOLO_OFFLINE": "1"}, cwd=tree.parent, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("layout", ["new", "old"])
def test_a_checkpoint_is_carried_to_another_tree(release_tree, tmp_path, layout):
    trained, other = release_tree(RELEASE), release_tree(RELEASE, "colleague")
    assert invoke("apply", trained, "-b", "mobilenetv3").exit_code == 0
    best = trained / "runs/detect/train/weights/best.pt"
    best.parent.mkdir(parents=True)
    run_in(trained, SAVE, YAML, str(best), layout, str(Path(__file__).resolve().parents[1]))

    portable = tmp_path / "portable.pt"
    exported = invoke("export-checkpoint", best, portable, "--tree", trained)
    assert exported.exit_code == 0, exported.output
    assert ("renumbered from the tutorials' layout" in exported.output) == (layout == "old")
    carried = torch.load(portable, weights_only=True)  # no class in it: this process has no fork to import
    assert carried["model_class"] == "DetectionModel" and carried["yaml"]["backbone"][0][2] == "MobileNetV3_small_n"
    assert "model.5.cv1.conv.weight" in carried["state_dict"]  # SPPF under its YAML index, in either layout

    assert invoke("revert", trained).exit_code == 0  # the tree it was trained in is stock again

    refused = invoke("import-checkpoint", portable, tmp_path / "x.pt", "--tree", other)
    assert refused.exit_code == 2 and "apply the backbone first" in refused.output, refused.output
    assert invoke("apply", other, "-b", "mobilenetv3").exit_code == 0
    imported = invoke("import-checkpoint", portable, tmp_path / "best.pt", "--tree", other)
    assert imported.exit_code == 0, imported.output
    seen = json.loads(run_in(other, LOAD, str(tmp_path / "best.pt"), str(best) + ".io"))
    assert seen["layers"] == 20 and seen["error"] < 1e-3, seen  # half precision, as the trainer saves


def test_bad_input_is_a_sentence(release_tree, tmp_path):
    tree = release_tree(RELEASE)
    assert invoke("apply", tree, "-b", "mobilenetv3").exit_code == 0
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    for command in ("export-checkpoint", "import-checkpoint"):
        result = invoke(command, junk, tmp_path / "out.pt", "--tree", tree)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "not a portable checkpoint" in invoke("import-checkpoint", junk, tmp_path / "o.pt", "--tree", tree).output
    assert "already exists" in invoke("export-checkpoint", junk, junk, "--tree", tree).output
    assert not (tmp_path / "out.pt").exists()
