"""`--backbone timm:NAME` on real releases: apply, every verify check on every family and task, weights files named
in a YAML row, refusals that leave the tree as it was, a fork without timm, and the fork's own `yolo` CLI training a
frozen pretrained backbone. Nothing downloads: verify builds `True` rows with random weights, and every weights file
is written here from a seeded timm model."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import git_status, tree_digest, verify_json
from patcher.cli import cli

timm = pytest.importorskip("timm")
pytestmark = pytest.mark.e2e

MODELS = ("mobilenetv3_large_100", "mobileone_s0", "efficientnet_b0", "resnet18")
# In the default run, one model a release gets every family and task; the others, YOLO11 detection.
# `pytest -m timm_matrix` runs every model on every family and task, with ONNX export.
WHOLE = {"8.3.40": "mobilenetv3_large_100", "8.4.190": "resnet18"}


def apply_timm(tree: Path, *models: str) -> None:
    args = [a for m in models for a in ("-b", f"timm:{m}")]
    result = CliRunner().invoke(cli, ["apply", str(tree), *args])
    assert result.exit_code == 0, result.output


def assert_every_check_passes(report: dict, version: str, export: bool) -> None:
    allowed_skips = {"distill", "weights", "amp", "scales", "export"} if not export else {"distill", "weights", "amp", "scales"}
    for model in report["models"]:
        for check, verdict in model["checks"].items():
            if verdict["status"] == "environment":  # releases to 8.3.100 call np.trapz, which numpy 2.4 lacks;
                # an export the stock model fails too, or one whose exporter needs onnxscript (8.3.40, torch 2.14)
                known = "np.trapz" in verdict["reason"] if check == "val" else check == "export" and (
                    "the stock" in verdict["reason"] or "onnxscript is not installed" in verdict["reason"]
                )
                assert known, (model["name"], check, verdict)
                continue
            assert verdict["status"] == "pass" or (verdict["status"] == "skip" and check in allowed_skips), (
                model["name"],
                check,
                verdict,
            )
        weights = model["checks"]["weights"]
        assert weights["status"] == "pass" and "maps equal timm's own" in weights["reason"], weights
        assert "random weights (ULTRAPATCH_TIMM_PRETRAINED=0)" in weights["reason"]  # verify downloaded nothing
        assert "BatchNorm statistics from two synthetic batches" in weights["reason"]
        frozen = re.search(r"^freeze=(\d+): \d+ parameters of layers 0-(\d+) frozen, nothing else$", model["checks"]["freeze"]["reason"])
        assert frozen and int(frozen[1]) == int(frozen[2]) + 1 >= 5, model["checks"]["freeze"]  # the YAML's backbone section
        if version == "8.4.190":
            assert model["checks"]["checkpoint"]["reason"] == "also with ULTRALYTICS_SAFE_LOAD=1", model["name"]


def run_matrix(release_tree, version: str, patterns: list[str], export: bool) -> dict:
    tree = release_tree(version)
    apply_timm(tree, *MODELS)
    args = [a for p in patterns for a in ("--model", p)] + ["--no-stock"] + (["--export", "onnx"] if export else [])
    report = verify_json(tree, *args)
    assert_every_check_passes(report, version, export)
    return report


@pytest.mark.parametrize("version", sorted(WHOLE))
def test_timm_backbones_pass_every_check(release_tree, version):
    whole = WHOLE[version]
    patterns = [f"*-{whole}", f"*-timm_{whole}"] + [f"yolo11n-{m}" for m in MODELS if m != whole]
    if version == "8.4.190":  # random-init mobileone_s0's maps reach ~1e9 in eval mode unless verify settles its
        patterns.append("yolo11n-obb-mobileone_s0")  # BatchNorm statistics: then OBB validation's NMS ran out of memory
    report = run_matrix(release_tree, version, patterns, export=False)
    names = {m["name"] for m in report["models"]}
    families = {"8.3.40": 12, "8.4.190": 13}[version]  # every family and task the release has
    assert len([n for n in names if n.endswith(f"{whole}.yaml")]) == families
    assert {f"yolo11n-{m}.yaml" for m in MODELS} <= names


@pytest.mark.timm_matrix
@pytest.mark.parametrize("version", sorted(WHOLE))
@pytest.mark.parametrize("model", MODELS)
def test_timm_matrix(release_tree, version, model):
    report = run_matrix(release_tree, version, [f"*-{model}", f"*-timm_{model}"], export=True)
    assert len(report["models"]) == {"8.3.40": 12, "8.4.190": 13}[version]


WEIGHTS_PROBE = r'''
import json, sys
import timm, torch
from ultralytics.nn.tasks import DetectionModel

results = {}
for yaml, weights in json.loads(sys.argv[1]):
    try:
        model = DetectionModel(yaml, verbose=False).eval()
    except Exception as exc:
        results[yaml] = {"error": f"{type(exc).__name__}: {exc}"}
        continue
    backbone = model.model[0]
    own = timm.create_model("efficientnet_b0", features_only=True, out_indices=backbone.out_indices, pretrained=True,
                            pretrained_cfg_overlay={"file": weights}).eval()
    image = torch.rand(1, 3, 160, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = backbone(image), own(image)
    results[yaml] = {
        "difference": max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(ours, theirs, strict=True)),
        "norms": sorted({(m.eps, m.momentum) for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)}),
        "pretrained": backbone.pretrained,
    }
print("REPORT " + json.dumps(results))
'''


def seeded_state(name: str) -> dict:
    import torch

    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False)
    with torch.no_grad():  # a trained network's statistics: small running variances, where eps matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(1e-4, 1e-2)
                m.running_mean.uniform_(-0.5, 0.5)
    return model.state_dict()


def fork_env(tree: Path, tmp_path: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(tree), "YOLO_CONFIG_DIR": str(tmp_path / "cfg"), "YOLO_OFFLINE": "1"}


def test_a_yaml_row_naming_a_weights_file_gives_timms_maps(release_tree, tmp_path):
    """Three formats, by absolute path (the yaml-args edit keeps it a string): the backbone in the built model gives
    timm's own maps with those weights (eval, float32, 1e-5) and keeps timm's BatchNorm settings. A file of another
    model and a truncated file are refused with the counts or the reason."""
    import torch
    from safetensors.torch import save_file

    tree = release_tree("8.4.190")
    apply_timm(tree, "efficientnet_b0")
    installed = (tree / "ultralytics/cfg/models/11/yolo11-efficientnet_b0.yaml").read_text()
    state = seeded_state("efficientnet_b0")
    files = {}
    for suffix in (".pth", ".bin", ".safetensors"):
        path = tmp_path / f"efficientnet_b0{suffix}"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path)) if suffix == ".safetensors" else torch.save(state, path)
        files[suffix] = path
    other = tmp_path / "resnet18.pth"
    torch.save(seeded_state("resnet18"), other)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(files[".pth"].read_bytes()[:200_000])
    cases = []
    for label, path in [*files.items(), ("other", other), ("truncated", truncated)]:
        yaml = tmp_path / f"yolo11n-{label.strip('.')}.yaml"
        yaml.write_text(installed.replace('["efficientnet_b0", True]', f'["efficientnet_b0", "{path}"]'))
        cases.append([str(yaml), str(files[".pth"])])
    done = subprocess.run([sys.executable, "-c", WEIGHTS_PROBE, json.dumps(cases)], capture_output=True, text=True,
                          env=fork_env(tree, tmp_path), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(next(line[7:] for line in done.stdout.splitlines() if line.startswith("REPORT ")))
    own_norms = sorted({(m.eps, m.momentum) for m in timm.create_model("efficientnet_b0").modules() if isinstance(m, torch.nn.BatchNorm2d)})
    for suffix in files:
        result = report[str(tmp_path / f"yolo11n-{suffix.strip('.')}.yaml")]
        assert result.get("difference", 1) < 1e-5, (suffix, result)
        assert [tuple(n) for n in result["norms"]] == own_norms and (0.001, 0.03) not in own_norms
        assert result["pretrained"] == f"weights from {files[suffix]}"
    refused = report[str(tmp_path / "yolo11n-other.yaml")]["error"]
    assert "does not fit timm's efficientnet_b0" in refused and "tensors missing" in refused and "unexpected" in refused
    assert "cannot read weights from" in report[str(tmp_path / "yolo11n-truncated.yaml")]["error"]


@pytest.mark.parametrize(
    "name, reason",
    [
        ("timm:resnet81", "timm has no model named 'resnet81'; did you mean resnet18"),
        ("timm:vit_tiny_patch16_224", "needs a fixed input size (224x224)"),
        ("timm:convmixer_768_32", "a YOLO or RT-DETR head needs maps at strides 8, 16 and 32"),
    ],
)
def test_models_that_cannot_be_backbones_are_refused_by_apply(release_tree, name, reason):
    tree = release_tree("8.4.190")
    before = tree_digest(tree)
    result = CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3", "-b", name])
    assert result.exit_code == 2, result.output
    assert reason in result.output and "Traceback" not in result.output
    assert tree_digest(tree) == before and git_status(tree) == ""


def test_a_fork_without_timm_is_the_environment_not_the_patch(release_tree, tmp_path):
    """timm importable beside ultrapatch, but not in the interpreter verify runs the fork with (here: a `timm`
    package first on its path that fails to import as a missing one does)."""
    tree = release_tree("8.4.190")
    apply_timm(tree, "resnet18")
    blocker = tmp_path / "no-timm" / "timm"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ModuleNotFoundError("No module named \'timm\'", name="timm")\n')
    report = verify_json(tree, "--model", "yolo11n-resnet18", "--no-stock", env={"PYTHONPATH": str(blocker.parent)})
    build = report["models"][0]["checks"]["build"]
    assert build["status"] == "environment", build
    assert "timm is not installed in" in build["reason"] and "-m pip install timm" in build["reason"]
    # the other models of the fork still build: AddModules imports timm only to build a TimmBackbone
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv2"]).exit_code == 0
    report = verify_json(tree, "--model", "yolov8n-MobileNetV2", "--no-stock", env={"PYTHONPATH": str(blocker.parent)})
    assert report["models"][0]["checks"]["build"]["status"] == "pass"


YOLO_CLI = "import sys; from ultralytics.cfg import entrypoint; sys.argv = ['yolo', *sys.argv[1:]]; entrypoint()"
FROZEN = r'''
import json, sys, torch
from safetensors.torch import load_file
ckpt = torch.load(sys.argv[1], weights_only=False)
model = ckpt["ema"] or ckpt["model"]
state = load_file(sys.argv[2])
body = model.model[0].body.state_dict()
# parameters and BatchNorm statistics: a backbone that trained, or whose BatchNorm ran in training mode, moves them
changed = [k for k, t in body.items() if k in state and not torch.allclose(t.float(), state[k].float(), atol=1e-3, rtol=1e-3)]
compared = len([k for k in body if k in state])
head = [k for k, p in model.named_parameters() if not k.startswith("model.0.")]
print("REPORT " + json.dumps({"changed": changed, "compared": compared, "head": len(head), "train_args_freeze": ckpt["train_args"]["freeze"],
                             "backbone": model.model[0].model_name}))
'''


def test_the_forks_yolo_cli_trains_a_frozen_pretrained_timm_backbone(release_tree, tmp_path):
    """`yolo train` from a local weights file with freeze=5 for one epoch on a tiny synthetic set, then `yolo val`
    and `yolo predict` with its best.pt. The backbone's parameters and BatchNorm statistics end as the file gave them
    (nbs=2: the one batch is an optimizer step): frozen is frozen."""
    import torch
    from safetensors.torch import save_file

    from patcher.fork.data import synthetic_dataset

    tree = release_tree("8.4.190")
    apply_timm(tree, "mobilenetv3_large_100")
    weights = tmp_path / "mobilenetv3_large_100.safetensors"
    save_file({k: v.contiguous() for k, v in seeded_state("mobilenetv3_large_100").items()}, str(weights))
    installed = (tree / "ultralytics/cfg/models/11/yolo11-mobilenetv3_large_100.yaml").read_text()
    yaml = tmp_path / "yolo11n-mnv3-local.yaml"
    yaml.write_text(installed.replace('["mobilenetv3_large_100", True]', f'["mobilenetv3_large_100", "{weights}"]'))
    data = synthetic_dataset(tmp_path / "data", "detect")
    env = {**fork_env(tree, tmp_path), "OMP_NUM_THREADS": "2"}

    def yolo(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-c", YOLO_CLI, *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=900)  # fmt: skip
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-3000:])
        return done

    common = ["imgsz=64", "device=cpu", "workers=0", "plots=False"]
    yolo("train", f"model={yaml}", f"data={data}", "epochs=1", "batch=2", "nbs=2", "freeze=5", "amp=False",
         f"project={tmp_path / 'runs'}", "name=train", "exist_ok=True", *common)  # fmt: skip
    best = tmp_path / "runs" / "train" / "weights" / "best.pt"
    assert best.is_file()
    done = subprocess.run([sys.executable, "-c", FROZEN, str(best), str(weights)], capture_output=True, text=True,
                          env=env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(next(line[7:] for line in done.stdout.splitlines() if line.startswith("REPORT ")))
    assert report["compared"] > 200 and report["changed"] == [] and report["head"] > 0 and report["train_args_freeze"] == 5, report
    assert report["backbone"] == "mobilenetv3_large_100"
    val = yolo("val", f"model={best}", f"data={data}", f"project={tmp_path / 'runs'}", "name=val", *common)
    assert "all" in val.stdout + val.stderr  # the metrics table's summary row
    image = next((tmp_path / "data" / "images").glob("*.jpg"))
    yolo("predict", f"model={best}", f"source={image}", "save=False", *common)


def test_one_timm_model_out_of_two_is_reverted_and_then_everything(release_tree):
    tree = release_tree("8.4.190")
    before = tree_digest(tree)
    apply_timm(tree, "resnet18", "efficientnet_b0")
    yamls = tree / "ultralytics/cfg/models/11"
    result = CliRunner().invoke(cli, ["revert", str(tree), "-b", "timm:resnet18"])
    assert result.exit_code == 0, result.output
    assert not (yamls / "yolo11-resnet18.yaml").exists() and not (yamls / "yolo11-cls-timm_resnet18.yaml").exists()
    assert (yamls / "yolo11-cls-resnet18.yaml").is_file()  # Ultralytics' own, never touched
    assert (yamls / "yolo11-efficientnet_b0.yaml").is_file()
    assert (tree / "ultralytics/nn/AddModules/TimmBackbone.py").is_file()  # efficientnet_b0 still needs it
    result = CliRunner().invoke(cli, ["revert", str(tree)])
    assert result.exit_code == 0, result.output
    assert tree_digest(tree) == before and git_status(tree) == ""


def test_a_newer_ultrapatch_replaces_the_module_file_an_older_one_wrote(release_tree):
    """A file ultrapatch created (TimmBackbone.py, a YAML) holds an older ultrapatch's text: re-applying replaces it
    with this version's, keeping a change of the user's in it, instead of refusing it as a file of the user's."""
    from patcher import records

    tree = release_tree("8.4.190")
    apply_timm(tree, "resnet18")
    rel = "ultralytics/nn/AddModules/TimmBackbone.py"
    ours = (tree / rel).read_text()
    older = ours.replace('LOGGER = logging.getLogger("ultralytics")', 'LOGGER = logging.getLogger("ultralytics")  # 0.2')
    record = records.load(tree)
    record.files[rel].ours = older.encode()  # as an older ultrapatch recorded and wrote it
    records.save(tree, record)
    (tree / rel).write_text(older.replace("__all__", "# a note of mine\n__all__", 1))  # and the user's note in it
    result = CliRunner().invoke(cli, ["apply", str(tree), "-b", "timm:resnet18"])
    assert result.exit_code == 0, result.output
    assert (tree / rel).read_text() == ours.replace("__all__", "# a note of mine\n__all__", 1)
    assert "has changes of yours: they are kept" in result.output


def test_a_recorded_timm_model_is_not_checked_again(release_tree, tmp_path):
    """Re-applying a timm model the record names does not import torch and timm to check its name again (~4 s); a
    new name beside it still is checked (here: it cannot be, timm being blocked, and the note names only it)."""
    tree = release_tree("8.4.190")
    apply_timm(tree, "resnet18")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\n\nsys.modules['timm'] = None  # `import timm` fails\n")
    env = {**os.environ, "PYTHONPATH": str(site)}

    def apply(*names: str) -> subprocess.CompletedProcess:
        args = [a for n in names for a in ("-b", f"timm:{n}")]
        return subprocess.run([sys.executable, "-m", "patcher", "apply", str(tree), *args], env=env, capture_output=True,
                              text=True, timeout=300)  # fmt: skip

    again = apply("resnet18")
    assert again.returncode == 0 and "nothing to change" in again.stdout, again.stderr
    assert "could not be checked" not in again.stderr
    more = apply("resnet18", "efficientnet_b0")
    assert more.returncode == 0, more.stderr
    assert "note: timm is not installed beside ultrapatch, so timm:efficientnet_b0 could not be checked" in more.stderr
