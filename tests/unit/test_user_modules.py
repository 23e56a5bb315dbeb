"""`apply --module`'s reading of a module file (roles guessed from the constructor, the classes registered, the parts
and helpers left alone) and the module-roles edit's repair of a tutorial's hand registration in the base set."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from patcher.edits.base import Context, ModuleFile
from patcher.edits.module_roles import ModuleRoles
from patcher.edits.shapes import TASKS
from patcher.errors import UltrapatchError
from patcher.planner import make_plan
from patcher.tree import Tree
from patcher.user_modules import read_module

MODULES = Path(__file__).resolve().parent.parent / "modules"
HEADER = "import torch\nfrom torch import nn\n\n\n"


def module_file(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + dedent(body), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    "init, role",
    [
        ("def __init__(self, c1, c2, k=3):", "base"),
        ("def __init__(self, c1, c2, n=1, e=0.5):", "repeat"),
        ("def __init__(self, c1, reduction=16):", "keep"),
        ("def __init__(self, e_lambda=1e-4):", "free"),
        ("def __init__(self, inc: list, c2):", "multi"),
        ("def __init__(self, k):", None),  # no channel name it knows: undecided, the probe names the candidates
    ],
)
def test_the_role_is_guessed_from_the_constructor(tmp_path, init, role):
    spec = module_file(tmp_path, "Block", f"class Block(nn.Module):\n    {init}\n        super().__init__()\n")
    (cls,) = read_module(spec, set()).classes
    assert cls.role == role, cls.why


def test_a_named_role_overrides_the_guess(tmp_path):
    spec = module_file(tmp_path, "Block", "class Block(nn.Module):\n    def __init__(self, c1, c2):\n        super().__init__()\n")
    (cls,) = read_module(spec + ":Block=keep", set()).classes
    assert (cls.role, cls.why) == ("keep", "named on the command line")


def test_a_backbone_file_registers_its_backbone_and_leaves_its_parts():
    module = read_module(str(MODULES / "StarLite.py"), {"Conv"})
    assert [(c.name, c.role) for c in module.classes] == [("StarLite", "backbone")]
    assert module.parts == {"ConvBN": "StarBlock", "StarBlock": "StarLite"}  # built by other classes: parts


def test_a_subclass_of_a_backbone_is_a_backbone_and_all_names_the_classes(tmp_path):
    spec = module_file(tmp_path, "Nets", """\
        __all__ = ["Net", "Net_s"]


        class Net(nn.Module):
            def __init__(self, width=16):
                super().__init__()
                self.width_list = [width] * 4


        class Net_s(Net):
            def __init__(self):
                super().__init__(8)
        """)  # fmt: skip
    assert [(c.name, c.role) for c in read_module(spec, set()).classes] == [("Net", "backbone"), ("Net_s", "backbone")]


def test_a_factory_function_is_refused_with_the_class_to_write(tmp_path):
    spec = module_file(tmp_path, "Star", """\
        __all__ = ["star_s050"]


        class Star(nn.Module):
            def __init__(self, base, depths):
                super().__init__()
                self.width_list = [base] * 4


        def star_s050(pretrained=False, **kwargs):
            model = Star(16, [1, 1, 3, 1], **kwargs)
            return model
        """)  # fmt: skip
    with pytest.raises(UltrapatchError, match=r"star_s050 is a function; .*`class star_s050\(Star\)`"):
        read_module(spec, set())


def test_helper_classes_without_all_stay_the_files_parts(tmp_path):
    """A coordinate-attention file of the tutorials' kind: two activation classes, used by the attention block."""
    spec = module_file(tmp_path, "CoordAttention", """\
        class HardSigmoid(nn.Module):
            def forward(self, x):
                return torch.nn.functional.relu6(x + 3) / 6


        class HardSwish(nn.Module):
            def __init__(self):
                super().__init__()
                self.sigmoid = HardSigmoid()

            def forward(self, x):
                return x * self.sigmoid(x)


        class CoordAttention(nn.Module):
            def __init__(self, c1, reduction=32):
                super().__init__()
                self.act = HardSwish()
        """)  # fmt: skip
    module = read_module(spec, set())
    assert [(c.name, c.role) for c in module.classes] == [("CoordAttention", "keep")]
    assert module.parts == {"HardSigmoid": "HardSwish", "HardSwish": "CoordAttention"}


INLINE = '''\
def parse_model(d, ch, verbose=True):
    for i, (f, n, m, args) in enumerate(d["backbone"] + d["head"]):  # from, number, module, args
        m = getattr(torch.nn, m[3:]) if "nn." in m else globals()[m]  # get module
        if m in {Conv, C2f, SEBlock, SPPF}:
            c1, c2 = ch[f], args[0]
            if m in {C2f, SEBlock}:
                args.insert(2, n)  # number of repeats
                n = 1
        elif m is Concat:
            c2 = sum(ch[x] for x in f)
        else:
            c2 = ch[f]
'''


def test_a_keep_module_a_tutorial_put_in_the_base_sets_is_moved_to_its_own_branch(tmp_path):
    """The tutorials' commonest hand registration of an attention block: in the base (and repeat) set, where it gets
    `(c1, c2)` for its `(c1, reduction)`. apply takes it out of both and registers it by its role."""
    (tmp_path / TASKS).parent.mkdir(parents=True)
    (tmp_path / TASKS).write_text(INLINE, encoding="utf-8")
    ctx = Context((8, 2, 103), (), modules=(ModuleFile("SEBlock", "", (("SEBlock", "keep"),)),))
    plan = make_plan(Tree(tmp_path, (8, 2, 103)), [ModuleRoles()], ctx)
    ((rel, _old, new),) = plan.changes
    assert "if m in {Conv, C2f, SPPF}:" in new and "if m in {C2f}:" in new
    assert "        elif m in {SEBlock}:  # modules installed by ultrapatch: they keep their input's channels\n" in new
    (tmp_path / TASKS).write_text(new, encoding="utf-8")
    assert make_plan(Tree(tmp_path, (8, 2, 103)), [ModuleRoles()], ctx).changes == []  # and then nothing more
