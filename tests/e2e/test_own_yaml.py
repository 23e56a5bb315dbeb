"""A model YAML of the user's: `verify --yaml` runs every check that applies to it and names each mistake by the row
and line of the YAML, and `apply --yaml` installs it where Ultralytics finds it by name, recorded and reverted like
ultrapatch's own files.

The YAMLs are in `tests/yamls/`, written for these tests: three correct (an extra block after the SPPF, a P2 head,
and a user's copy of an installed backbone YAML with its own scales, made here) and six broken, one mistake each.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import tree_digest, verify, verify_json
from patcher.cli import cli

pytestmark = pytest.mark.e2e
YAMLS = Path(__file__).resolve().parent.parent / "yamls"
INSTALLED = "ultralytics/cfg/models/11/yolo11-MobileNetV3_small_n.yaml"
P2 = "ultralytics/cfg/models/11/yolo11-p2.yaml"


def line_of(name: str, text: str) -> int:
    """The line of the first row of tests/yamls/NAME that holds `text`."""
    lines = (YAMLS / name).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.lstrip().startswith("- ") and text in line)


def user_copy(tree: Path, folder: Path) -> Path:
    """What a user does first: copy an installed backbone YAML and give it a scale table of their own."""
    text = (tree / INSTALLED).read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^scales:.*?\n(?=\S)", "scales:\n  n: [0.33, 0.375, 768]\n  s: [0.50, 0.625, 768]\n\n", text)
    copy = folder / "yolo11-mnv3-wide.yaml"
    copy.write_text(text, encoding="utf-8")
    return copy


def checks(model: dict) -> dict[str, str]:
    return {name: verdict["status"] for name, verdict in model["checks"].items()}


@pytest.mark.parametrize("version", ["8.3.40", "8.4.190"])
def test_every_yaml_verified_and_each_mistake_named_by_its_row(release_tree, tmp_path, version):
    tree = release_tree(version)
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3"]).exit_code == 0
    files = [*sorted(YAMLS.glob("*.yaml")), user_copy(tree, tmp_path)]
    args = [a for f in files for a in ("--yaml", str(f))]
    report = verify_json(tree, *args, "--model", "yolo11n-MobileNetV3_small_n", code=1)  # --model and --yaml combine
    models = {m["name"]: m for m in report["models"]}
    assert set(models) == {f.name for f in files} | {"yolo11n-MobileNetV3_small_n.yaml"}
    for name in ("yolo11-sppf-block.yaml", "yolo11-p2.yaml", "yolo11-mnv3-wide.yaml", "yolo11n-MobileNetV3_small_n.yaml"):
        assert models[name]["ok"], (name, {c: v for c, v in models[name]["checks"].items() if v["status"] == "fail"})
    block, p2, wide = models["yolo11-sppf-block.yaml"], models["yolo11-p2.yaml"], models["yolo11-mnv3-wide.yaml"]
    assert block["stock"]["name"] == p2["stock"]["name"] == wide["stock"]["name"] == "yolo11n.yaml"  # guessed from the name
    assert block["checks"]["freeze"]["reason"].startswith("freeze=12:")  # the YAML's own backbone: layers 0-11
    assert p2["checks"]["strides"]["reason"] == "strides [4, 8, 16, 32] (the stock yolo11n.yaml: [8, 16, 32])"
    assert p2["checks"]["forward"]["reason"].startswith("output shapes not compared: the head reads strides [4, 8, 16, 32]")
    assert p2["checks"]["scales"]["reason"] == "s, m, l, x build and run too"
    assert wide["checks"]["scales"]["reason"] == "s build and run too" and wide["checks"]["weights"]["status"] == "skip"
    assert "GFLOPs; torch's flop counter" in p2["checks"]["flops"]["reason"]
    assert p2["checks"]["reload"]["reason"].startswith("in a new process")
    assert p2["checks"]["amp"] == {**p2["checks"]["amp"], "status": "skip", "reason": "AMP trains on CUDA only; on the CPU the fork's trainer turns it off"}

    hard = models["yolo11-hardcoded-channels.yaml"]
    assert [c for c, s in checks(hard).items() if s == "fail"] == ["scales"]  # scale n builds, trains, reloads
    assert hard["checks"]["scales"]["reason"] == (
        f"line {line_of('yolo11-hardcoded-channels.yaml', 'nn.Conv2d')}: layer 10 (nn.Conv2d, from -1, args [256, 256, 1]) "
        "expects 256 input channels and gets 512 at scale s (depth 0.50, width 0.50, max_channels 1024); scales m, l, x fail too"
    )
    norm = models["yolo11-cls-pooled-norm.yaml"]
    assert [c for c, s in checks(norm).items() if s == "fail"] == ["batch1"]  # batches of two train
    assert norm["stock"]["name"] == "yolo11n-cls.yaml"
    assert norm["checks"]["batch1"]["reason"].startswith(
        f"line {line_of('yolo11-cls-pooled-norm.yaml', 'nn.BatchNorm2d')}: layer 11 (nn.BatchNorm2d, from -1, args [256]) "
        "cannot train on a batch of one image: its BatchNorm2d normalises a 1x1 map"
    )
    concat = models["yolo11-concat-sizes.yaml"]
    assert concat["checks"]["build"]["status"] == "fail"
    assert concat["checks"]["build"]["reason"].startswith(
        f"line {line_of('yolo11-concat-sizes.yaml', '[[-1, 6], 1, Concat')}: layer 12 (Concat, from [-1, 6], args [1]) joins maps of sizes"
    ) and "must be at the same stride" in concat["checks"]["build"]["reason"]

    structural = {
        "yolo11-from-forward.yaml": f"line {line_of('yolo11-from-forward.yaml', '15]')}: layer 12 (Concat, from [-1, 15]): `from` 15 refers to a later layer",
        "yolo11-unknown-module.yaml": f"line {line_of('yolo11-unknown-module.yaml', 'EMA')}: layer 10 (EMA, from -1): the module EMA is not defined in this fork",
        "yolo11-two-inputs.yaml": f"line {line_of('yolo11-two-inputs.yaml', 'Detect')}: layer 23 (Detect, from [16, 19]): the head reads 2 map(s) where its family's stock head reads 3",
    }  # fmt: skip
    for name, words in structural.items():
        verdicts = models[name]["checks"]
        assert verdicts["yaml"]["status"] == "fail" and words in verdicts["yaml"]["reason"], verdicts["yaml"]
        assert str(YAMLS / name) in verdicts["yaml"]["reason"]  # the file, then the line
        assert {c: v["status"] for c, v in verdicts.items() if c != "yaml"} == {c: "skip" for c in verdicts if c != "yaml"}
        assert "nothing was built" in verdicts["build"]["reason"]


def test_a_yaml_of_ultralytics_modules_on_an_unpatched_tree(release_tree):
    """No apply at all: a YAML made of Ultralytics' own modules is verified, against the stock model --against names."""
    tree = release_tree("8.3.40")
    before = tree_digest(tree)
    report = verify_json(tree, "--yaml", str(YAMLS / "yolo11-p2.yaml"), "--against", "yolo11s.yaml")
    (model,) = report["models"]
    assert model["ok"] and model["stock"]["name"] == "yolo11s.yaml", model
    assert tree_digest(tree) == before
    result = verify(tree, "--yaml", str(YAMLS / "yolo11-p2.yaml"), "--against", "rtdetr-l.yaml")
    assert result.returncode == 2 and "compare a model with one of its own kind" in result.stderr, result.stderr
    result = verify(tree, "--yaml", str(YAMLS / "nothing.yaml"))
    assert result.returncode == 2 and "no such file" in result.stderr and "Traceback" not in result.stderr


def test_apply_yaml_records_keeps_the_users_edits_and_reverts_exactly(release_tree, tmp_path):
    tree = release_tree("8.4.190")
    pristine = tree_digest(tree)
    source = tmp_path / "yolo11-p2.yaml"
    shutil.copy(YAMLS / "yolo11-p2.yaml", source)
    runner = CliRunner()

    refused = runner.invoke(cli, ["apply", str(tree), "--yaml", str(YAMLS / "yolo11-unknown-module.yaml")])
    assert refused.exit_code == 2 and "EMA (no backbone of ultrapatch's" in refused.output and "Nothing was written" in refused.output
    donor = release_tree("8.4.190", "donor")
    assert runner.invoke(cli, ["apply", str(donor), "-b", "mobilenetv3"]).exit_code == 0
    wide = user_copy(donor, tmp_path)  # a backbone YAML, given to a tree without the backbone
    refused = runner.invoke(cli, ["apply", str(tree), "--yaml", str(wide)])
    assert refused.exit_code == 2, refused.output
    assert f"MobileNetV3_small_n (`ultrapatch apply {tree} --backbone mobilenetv3 --yaml {wide}` installs it)" in refused.output
    nameless = tmp_path / "mine.yaml"
    shutil.copy(YAMLS / "yolo11-p2.yaml", nameless)
    refused = runner.invoke(cli, ["apply", str(tree), "--yaml", str(nameless)])
    assert refused.exit_code == 2 and "names no model family" in refused.output
    assert tree_digest(tree) == pristine

    result = runner.invoke(cli, ["apply", str(tree), "--yaml", str(source), "-b", "mobilenetv3", "--yaml", str(wide)])
    assert result.exit_code == 0, result.output
    assert "  own-yamls           applied" in result.output
    assert (tree / P2).read_text(encoding="utf-8") == source.read_text(encoding="utf-8")
    status = runner.invoke(cli, ["status", str(tree)]).output
    assert "record: mobilenetv3; your YAMLs: yolo11-mnv3-wide.yaml, yolo11-p2.yaml;" in status
    assert "  own-yamls           applied" in status
    assert "yolo11-p2.yaml  (scales n, s, m, l, x; yolo11n-p2.yaml is scale n)  yours (apply --yaml)" in runner.invoke(
        cli, ["status", str(tree), "--yamls"]).output  # fmt: skip

    with (tree / P2).open("a", encoding="utf-8") as handle:
        handle.write("# my note: trained as run 7\n")
    source.write_text(source.read_text(encoding="utf-8").replace("nc: 80", "nc: 3"), encoding="utf-8")
    assert runner.invoke(cli, ["apply", str(tree), "-b", "mobilenetv3"]).exit_code == 0  # the record's YAMLs stay
    assert (tree / P2).read_text(encoding="utf-8").endswith("# my note: trained as run 7\n")
    again = runner.invoke(cli, ["apply", str(tree), "--yaml", str(source)])  # a newer text of the user's file
    assert again.exit_code == 0 and "has changes of yours: they are kept" in again.output, again.output
    installed = (tree / P2).read_text(encoding="utf-8")
    assert "nc: 3" in installed and installed.endswith("# my note: trained as run 7\n")

    report = verify_json(tree, "--model", "yolo11n-p2*")  # found by name, at the scale its name asks for
    assert [(m["name"], m["ok"], m["stock"]["name"]) for m in report["models"]] == [("yolo11n-p2.yaml", True, "yolo11n.yaml")]

    (tree / P2).write_text((tree / P2).read_text(encoding="utf-8").replace("# my note: trained as run 7\n", ""), encoding="utf-8")
    partial = runner.invoke(cli, ["revert", str(tree), "-b", "mobilenetv3"])  # the backbone goes, the user's YAMLs stay
    assert partial.exit_code == 0, partial.output
    assert (tree / P2).is_file() and not (tree / INSTALLED).exists()
    reverted = runner.invoke(cli, ["revert", str(tree)])
    assert reverted.exit_code == 0, reverted.output
    assert tree_digest(tree) == pristine


def test_amp_on_cuda_where_there_is_one(release_tree):
    """The amp check trains one step under autocast on CUDA; on the CPU it is skipped with that reason (above)."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here: the amp check runs on CUDA only")
    tree = release_tree("8.4.190")
    report = verify_json(tree, "--yaml", str(YAMLS / "yolo11-p2.yaml"), "--device", "0")
    (model,) = report["models"]
    assert model["checks"]["amp"]["status"] == "pass" and "under autocast" in model["checks"]["amp"]["reason"], model["checks"]["amp"]
