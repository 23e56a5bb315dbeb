"""verify hands out the models heaviest first, so that no process is left with a long one at the end; it names the
--model glob that narrows a many-variant selection to one variant."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from patcher.backbones import TEMPLATES
from patcher.verify import ModelSpec, scaled_name, scales_of, variants_note
from patcher.verify.pool import cost
from patcher.verify.select import _matches


def spec(template: str, scale: str | None, variant: str = "MobileNetV2") -> ModelSpec:
    t = TEMPLATES[template]
    name = f"{scaled_name(t.stem, scale) if scale else t.stem}-{variant}.yaml"
    return ModelSpec.installed(f"cfg/{name}", name, t, variant, "stock.yaml")


def test_heaviest_first():
    specs = [spec("yolov8-classify", "n"), spec("yolo11-detect", "n"), spec("yolov3-detect", None),
             spec("rtdetr-l-detect", None), spec("yolo11-detect", "x"), spec("yolov8-segment", "s")]  # fmt: skip
    order = [s.name for s in sorted(specs, key=lambda s: -cost(s))]
    assert order == [
        "yolo11x-MobileNetV2.yaml",  # the x scale of a small family outweighs YOLOv3 at its one scale
        "yolov3-MobileNetV2.yaml",
        "rtdetr-l-MobileNetV2.yaml",
        "yolov8s-seg-MobileNetV2.yaml",
        "yolo11n-MobileNetV2.yaml",
        "yolov8n-cls-MobileNetV2.yaml",
    ]


def test_scales_and_scaled_names():
    text = "nc: 80\nscales:\n  n: [0.50, 0.25, 1024]\n  s: [0.50, 0.50, 1024]\nbackbone:\n  - [-1, 1, X, []]\n"
    assert scales_of(text) == ["n", "s"]
    assert scales_of("nc: 80\nbackbone: []\n") == []
    assert scaled_name("yolo11-seg-MobileNetV2.yaml", "s") == "yolo11s-seg-MobileNetV2.yaml"
    assert scaled_name("yolov8-MobileOne_s0.yaml", "n") == "yolov8n-MobileOne_s0.yaml"


def test_variants_note_names_a_glob_for_one_variant():
    every = [
        spec(key, None if key.startswith(("yolov3", "rtdetr")) else "n", variant)
        for variant in ("MobileNetV2", "MobileNetV2_tv", "MobileOne_s0")
        for key in TEMPLATES
    ]
    tree = SimpleNamespace(root=Path("/work/ultralytics"))
    note = variants_note(tree, every)
    assert note is not None and f"{len(every)} models of 3 backbone variants" in note
    assert "ultrapatch verify /work/ultralytics --model '*-MobileNetV2'" in note
    glob = note.split("--model ")[1].strip("'")
    assert glob == "*-MobileNetV2"
    chosen = [s.name for s in every if _matches(s.name, (glob,))]
    assert chosen == [s.name for s in every if s.variant == "MobileNetV2"]  # not MobileNetV2_tv's
    assert variants_note(tree, [s for s in every if s.variant == "MobileOne_s0"]) is None


def test_a_model_whose_process_died_keeps_the_verdicts_it_had(tmp_path):
    from patcher.verify import died

    log = tmp_path / "verify.log"
    log.write_text("building...\nFatal Python error: Segmentation fault\n")
    order = ["build", "forward", "train", "val"]
    under_way = {"check": "train", "checks": {"build": {"status": "pass", "reason": "", "seconds": 1.0},
                                              "forward": {"status": "fail", "reason": "shapes", "seconds": 2.0}},
                 "seconds": 3.5}  # fmt: skip
    report = died(spec("yolo11-detect", "n"), -11, under_way, {"checks": order}, log, 6 << 30)
    assert list(report["checks"]) == order and not report["ok"] and report["seconds"] == 3.5
    assert report["checks"]["forward"] == {"status": "fail", "reason": "shapes", "seconds": 2.0}
    train = report["checks"]["train"]
    assert train["status"] == "fail" and train["reason"].startswith("the verification process was killed by signal 11")
    assert "SIGKILL" not in train["reason"] and "its log ends: Fatal Python error: Segmentation fault" in train["reason"]
    assert report["checks"]["val"] == {
        "status": "skip", "reason": "the verification process was killed by signal 11 during train",
        "cause": "not-applicable", "seconds": 0.0,
    }
    assert train["cause"] == "error"  # not a finding of the model: the process
    exited = died(spec("yolo11-detect", "n"), 3, {}, {"checks": order}, tmp_path / "missing.log", None)
    assert exited["checks"]["build"]["reason"] == "the verification process exited with code 3 during this check"
    assert {c["status"] for name, c in exited["checks"].items() if name != "build"} == {"skip"}
