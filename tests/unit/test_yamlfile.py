"""A model YAML's structural mistakes, found before anything is built, each with its line (`patcher/fork/yamlfile.py`),
and the guesses of family, task and scale that choose the stock model a YAML of the user's is compared with."""

from __future__ import annotations

import pytest

from patcher.fork import yamlfile

ROWS = """\
nc: 80
scales:
  n: [0.50, 0.25, 1024]
  s: [0.50, 0.50, 1024]
backbone:
  - [-1, 1, Conv, [64, 3, 2]] # 0
  - [-1, 1, Conv, [128, 3, 2]] # 1
  - [-1, 1, Conv, [256, 3, 2]] # 2
  - [-1, 1, Conv, [512, 3, 2]] # 3
head:
  - [-1, 1, Conv, [512, 3, 2]] # 4
  - [[2, 3, 4], 1, Detect, [nc]] # 5
"""
KNOWN = {"Conv", "Detect", "Classify", "Concat", "MobileNetV3_small_n"}


def findings(text: str, name: str = "yolo11-x.yaml", stock_levels: int | None = 3) -> list[str]:
    doc = yamlfile.parse(text, name)
    yamlfile.layer_indices(doc, lambda module: module == "MobileNetV3_small_n")
    return yamlfile.findings(doc, KNOWN.__contains__, lambda name: " (hint)", stock_levels)


def test_a_correct_yaml_has_no_findings():
    assert findings(ROWS) == []


@pytest.mark.parametrize(
    "old,new,expected",
    [
        ("[[2, 3, 4], 1, Detect", "[[2, 3, 9], 1, Detect", "line 12: layer 5 (Detect, from [2, 3, 9]): `from` 9 is out of range: the YAML has layers 0-5"),
        ("[-1, 1, Conv, [512, 3, 2]] # 4", "[5, 1, Conv, [512, 3, 2]] # 4", "line 11: layer 4 (Conv, from 5): `from` 5 refers to a later layer"),
        ("[-1, 1, Conv, [512, 3, 2]] # 4", "[4, 1, Conv, [512, 3, 2]] # 4", "`from` 4 refers to itself"),
        ("[-1, 1, Conv, [128, 3, 2]] # 1", "[-3, 1, Conv, [128, 3, 2]] # 1", "line 7: layer 1 (Conv, from -3): `from` -3 reaches before layer 0"),
        ("[-1, 1, Conv, [512, 3, 2]] # 3", "[-1, 1, EMA, [512]] # 3", "line 9: layer 3 (EMA, from -1): the module EMA is not defined in this fork (hint)"),
        ("[[2, 3, 4], 1, Detect", "[[3, 4], 1, Detect", "line 12: layer 5 (Detect, from [3, 4]): the head reads 2 map(s) where its family's stock head reads 3"),
        ("s: [0.50, 0.50, 1024]", "s: [0.50, 0.50]", "line 4: scale s has 2 value(s); a scale row is [depth, width, max_channels]"),
        ("[-1, 1, Conv, [64, 3, 2]] # 0", "[-1, 1, Conv] # 0", "line 6: layer 0: a row is [from, repeats, module, args]; this one has 3 item(s)"),
        ("[-1, 1, Conv, [64, 3, 2]] # 0", "[-1, 0, Conv, [64, 3, 2]] # 0", "repeats must be a whole number of at least 1, not 0"),
        ("[-1, 1, Conv, [64, 3, 2]] # 0", "[-1, 1, Conv, 64] # 0", "args must be a list, such as [256] or [], not 64"),
        ("[-1, 1, Conv, [64, 3, 2]] # 0", "[-1.5, 1, Conv, [64, 3, 2]] # 0", "`from` must be a layer index or a list of them, not -1.5"),
    ],
)
def test_each_mistake_is_found_with_its_line(old, new, expected):
    assert old in ROWS
    found = findings(ROWS.replace(old, new, 1))
    assert any(expected in f for f in found), found


def test_a_scale_letter_the_yaml_lacks_and_a_file_that_is_no_yaml():
    assert "the file name asks for scale x (yolo11x-mine.yaml), and the YAML's scales are n, s" in findings(ROWS, "yolo11x-mine.yaml")[0]
    assert findings("backbone: [\n", "yolo11-x.yaml")[0].startswith("line 2: the file is not valid YAML")
    assert findings("- 1\n- 2\n")[0] == "the file is not a model YAML: it has no `backbone:` and `head:` lists"


def test_a_backbone_row_takes_five_layer_indices():
    text = """\
backbone:
  - [-1, 1, MobileNetV3_small_n, []] # 0-4
  - [-1, 1, Conv, [512, 3, 2]] # 5
head:
  - [[2, 3, 5], 1, Detect, [nc]] # 6
"""
    assert findings(text) == []
    assert "`from` 6 refers to itself" in findings(text.replace("[[2, 3, 5]", "[[2, 3, 6]"))[0]


def test_a_p2_head_reads_four_and_a_classifier_one():
    assert findings(ROWS.replace("[[2, 3, 4], 1, Detect", "[[1, 2, 3, 4], 1, Detect")) == []
    classify = ROWS.replace("[[2, 3, 4], 1, Detect, [nc]]", "[[3, 4], 1, Classify, [nc]]")
    assert findings(classify) == ["line 12: layer 5 (Classify, from [3, 4]): a Classify head reads one map, not 2"]


@pytest.mark.parametrize(
    "name,head,family,task,scale,builder",
    [
        ("yolo11-p2.yaml", "Detect", "yolo11", "detect", "n", "YOLO"),
        ("yolo11s-p2.yaml", "Detect", "yolo11", "detect", "s", "YOLO"),
        ("yolov8-mine-seg.yaml", "Segment", "yolov8", "segment", "n", "YOLO"),
        ("yolo26m-obb-ema.yaml", "OBB", "yolo26", "obb", "m", "YOLO"),
        ("mine-cls.yaml", "MyHead", None, "classify", "n", "YOLO"),
        ("rtdetr-mnv3.yaml", "RTDETRDecoder", "rtdetr", "detect", "n", "RTDETR"),
    ],
)
def test_family_task_scale_and_builder_as_ultralytics_guesses_them(name, head, family, task, scale, builder):
    text = ROWS.replace("scales:\n  n:", "scales:\n  n:").replace("Detect, [nc]]", f"{head}, [nc]]")
    text = text.replace("  s: [0.50, 0.50, 1024]", "  s: [0.50, 0.50, 1024]\n  m: [0.50, 1.00, 512]")
    doc = yamlfile.parse(text, name)
    assert (doc.family(), doc.task(), doc.scale(), doc.builder()) == (family, task, scale, builder)
