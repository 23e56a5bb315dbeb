"""A tree where seed 000's tutorial was applied by hand, written as the seed shows it: apply adopts it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import seed_code, tree_digest, verify_json
from patcher.cli import cli

TASKS = "ultralytics/nn/tasks.py"

pytestmark = pytest.mark.e2e

# seed 000, 4.5: the branch before the final `else`
SEED_BRANCH = """\
        elif m in {MobileNetV3_large_n, MobileNetV3_large_s, MobileNetV3_large_m, MobileNetV3_small_n, MobileNetV3_small_s, MobileNetV3_small_m}:
            m = m(*args)
            c2 = m.width_list  # 返回通道列表
            backbone = True
"""

# seed 000, 4.6: the module construction and the shifted index
STOCK_BUILD = """\
        m_ = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)  # module
        t = str(m)[8:-2].replace("__main__.", "")  # module type
        m.np = sum(x.numel() for x in m_.parameters())  # number params
        m_.i, m_.f, m_.type = i, f, t  # attach index, 'from' index, type
"""
SEED_BUILD = """\
        if isinstance(c2, list):
            m_ = m
            m_.backbone = True
        else:
            m_ = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)  # module
        t = str(m)[8:-2].replace('__main__.', '')  # module type
        m.np = sum(x.numel() for x in m_.parameters())  # number params
        m_.i, m_.f, m_.type = i + 4 if backbone else i, f, t  # attach index, 'from' index, type
"""

# seed 000, 4.7: the body of `_predict_once`, pasted over the release's
STOCK_LOOP_BODY = """\
            x = m(x)  # run
            y.append(x if m.i in self.save else None)  # save output
            if visualize:
                feature_visualization(x, m.type, m.i, save_dir=visualize)
            if embed and m.i in embed:
                embeddings.append(nn.functional.adaptive_avg_pool2d(x, (1, 1)).squeeze(-1).squeeze(-1))  # flatten
                if m.i == max(embed):
                    return torch.unbind(torch.cat(embeddings, 1), dim=0)
        return x

    def _predict_augment(self, x):"""
SEED_LOOP_BODY = """\
            if hasattr(m, 'backbone'):
                x = m(x)
                if len(x) != 5:  # 0 - 5
                    x.insert(0, None)
                for index, i in enumerate(x):
                    if index in self.save:
                        y.append(i)
                    else:
                        y.append(None)
                x = x[-1]  # 最后一个输出传给下一层
            else:
                x = m(x)  # run
                y.append(x if m.i in self.save else None)  # save output
            if visualize:
                feature_visualization(x, m.type, m.i, save_dir=visualize)
            if embed and m.i in embed:
                embeddings.append(nn.functional.adaptive_avg_pool2d(x, (1, 1)).squeeze(-1).squeeze(-1))  # flatten
                if m.i == max(embed):
                    return torch.unbind(torch.cat(embeddings, 1), dim=0)
        return x

    def _predict_augment(self, x):"""


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def apply_seed_000_by_hand(tree: Path) -> None:
    """Modifications 1-7 and the extra s = 640 and rect=False notes of seed 000, on an 8.3.0 tree."""
    addmodules = tree / "ultralytics/nn/AddModules"
    addmodules.mkdir()
    (addmodules / "MobileNetV3.py").write_text(seed_code("seed000_MobileNetV3.py"), encoding="utf-8")
    (addmodules / "__init__.py").write_text("from .MobileNetV3 import *\n", encoding="utf-8")

    tasks = (tree / TASKS).read_text(encoding="utf-8")
    tasks = replace_once(tasks, "    v10Detect,\n)\n", "    v10Detect,\n)\nfrom ultralytics.nn.AddModules import *\n")
    tasks = replace_once(
        tasks,
        "    for i, (f, n, m, args) in enumerate(d[\"backbone\"] + d[\"head\"]):",
        "    backbone = False\n    for i, (f, n, m, args) in enumerate(d[\"backbone\"] + d[\"head\"]):",
    )
    tasks = replace_once(tasks, "        else:\n            c2 = ch[f]\n", SEED_BRANCH + "        else:\n            c2 = ch[f]\n")
    tasks = replace_once(tasks, STOCK_BUILD, SEED_BUILD)
    tasks = replace_once(tasks, STOCK_LOOP_BODY, SEED_LOOP_BODY)
    tasks = replace_once(tasks, "            s = 256  # 2x min stride", "            s = 640  # 2x min stride")
    (tree / TASKS).write_text(tasks, encoding="utf-8")

    train = tree / "ultralytics/models/yolo/detect/train.py"
    train.write_text(replace_once(train.read_text(encoding="utf-8"), 'rect=mode == "val"', "rect=False"), encoding="utf-8")


def test_apply_adopts_a_hand_applied_tutorial(release_tree):
    tree = release_tree("8.3.0")
    apply_seed_000_by_hand(tree)
    addmodules = tree / "ultralytics/nn/AddModules"
    (addmodules / "MyBlock.py").write_text("import torch.nn as nn\n\n\nclass MyBlock(nn.Identity):\n    pass\n")
    (addmodules / "__init__.py").write_text((addmodules / "__init__.py").read_text() + "from .MyBlock import *\n")
    by_hand = tree_digest(tree)
    runner = CliRunner()

    result = runner.invoke(cli, ["apply", str(tree), "--backbone", "mobilenetv3"])
    assert result.exit_code == 0, result.output
    states = dict(line.split(None, 1) for line in result.stdout.splitlines()[1:-1])
    for adopted in ("tasks-import", "parse-model-branch", "predict-once", "rect-detect"):
        assert states[adopted] == "already applied", (adopted, result.output)
    assert states["stride-probe"] == "applied"  # the tutorial's `s = 640` for every model, repaired
    assert states["addmodules"] == "applied"  # the seed's factory functions become classes
    assert states["parse-model-index"] == "applied"  # the save list and channel list the seed shows only as images

    tasks = (tree / TASKS).read_text(encoding="utf-8")
    assert tasks.count("c2 = m.width_list") == 1, "a second backbone branch"
    assert tasks.count("backbone = False") == 1
    assert tasks.count("import *") == 1 and "from ultralytics.nn.AddModules import (" not in tasks
    assert tasks.count("hasattr(m, 'backbone')") == 1 and tasks.count('hasattr(m, "backbone")') == 2  # RT-DETR, World
    assert "isinstance(c2, list)" not in tasks  # the seed's test, which takes YOLOv9's CBLinear for a backbone, repaired
    assert tasks.count("if isinstance(m, torch.nn.Module):") == 2  # the seed's construction, and our channel list
    assert (addmodules / "__init__.py").read_text() == "from .MobileNetV3 import *\nfrom .MyBlock import *\nfrom .BackboneMap import *\n"

    digest = tree_digest(tree)
    again = runner.invoke(cli, ["apply", str(tree), "--backbone", "mobilenetv3"])
    assert again.exit_code == 0 and "0 applied" in again.stdout
    assert tree_digest(tree) == digest

    report = verify_json(tree, "--model", "yolo11n-MobileNetV3_small_n", "--model", "rtdetr-l-MobileNetV3_small_n", "--stock")
    stock = report["stock_models"]  # against the release itself: the originals hold the tutorial's edits
    assert stock["status"] == "pass" and stock["baseline"] == "Ultralytics 8.3.0 from PyPI", stock
    assert len(report["models"]) == 2
    for model in report["models"]:
        checks = model["checks"]
        assert checks["strides"]["status"] == "pass", checks  # the head receives 8, 16 and 32 at every size and mode
        assert checks["train"]["status"] == "pass", checks  # finite loss, and every backbone parameter gets a gradient
        assert model["ok"], checks

    reverted = runner.invoke(cli, ["revert", str(tree)])  # the tutorial's edits and the user's module, as they were
    assert reverted.exit_code == 0, reverted.output
    assert tree_digest(tree) == by_hand
