"""parse-model-branch and parse-model-index on parse_model in the shapes of 8.1-8.3 and 8.4.190."""

from __future__ import annotations

from textwrap import dedent

import pytest

from edit_helpers import assert_edit, assert_fails, assert_noop, run_edit
from patcher.edits.parse_model_branch import BackboneBranch
from patcher.edits.parse_model_index import BackboneMapLayers
from patcher.edits.shapes import TASKS

V3 = "MobileNetV3_large_n, MobileNetV3_large_s, MobileNetV3_large_m, MobileNetV3_small_n, MobileNetV3_small_s, MobileNetV3_small_m"
V3_LINES = "".join(f"            {name},\n" for name in V3.split(", "))

STOCK = '''\
def parse_model(d, ch, verbose=True):  # model_dict, input_channels(3)
    ch = [ch]
    layers, save, c2 = [], [], ch[-1]  # layers, savelist, ch out
    for i, (f, n, m, args) in enumerate(d["backbone"] + d["head"]):  # from, number, module, args
        m = getattr(torch.nn, m[3:]) if "nn." in m else globals()[m]  # get module
        if m in {Conv, C2f}:
            c1, c2 = ch[f], args[0]
        elif m is Concat:
            c2 = sum(ch[x] for x in f)
        else:
            c2 = ch[f]

        m_ = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)  # module
        t = str(m)[8:-2].replace("__main__.", "")  # module type
        m.np = sum(x.numel() for x in m_.parameters())  # number params
        m_.i, m_.f, m_.type = i, f, t  # attach index, 'from' index, type
        save.extend(x % i for x in ([f] if isinstance(f, int) else f) if x != -1)  # append to savelist
        layers.append(m_)
        if i == 0:
            ch = []
        ch.append(c2)
    return nn.Sequential(*layers), sorted(save)
'''

WITH_BRANCH = f'''\
def parse_model(d, ch, verbose=True):  # model_dict, input_channels(3)
    ch = [ch]
    layers, save, c2 = [], [], ch[-1]  # layers, savelist, ch out
    for i, (f, n, m, args) in enumerate(d["backbone"] + d["head"]):  # from, number, module, args
        m = getattr(torch.nn, m[3:]) if "nn." in m else globals()[m]  # get module
        if m in {{Conv, C2f}}:
            c1, c2 = ch[f], args[0]
        elif m is Concat:
            c2 = sum(ch[x] for x in f)
        elif m in {{  # backbones: built here, they return a list of feature maps
{V3_LINES}        }}:
            m = m(*args)
            c2 = m.width_list  # the channels of each returned map
        else:
            c2 = ch[f]
''' + STOCK.split("            c2 = ch[f]\n", 1)[1]

WITH_INDEX = WITH_BRANCH.replace(
    "        m = getattr(torch.nn, m[3:])",
    "        i = len(layers)  # this layer's index: a backbone's maps are the layers after it, as the YAML numbers them\n"
    "        m = getattr(torch.nn, m[3:])",
).replace(
    '''        m_ = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)  # module
        t = str(m)[8:-2].replace("__main__.", "")  # module type
''',
    '''        if isinstance(m, torch.nn.Module):  # a backbone, already built in its branch
            m_ = m
            t = type(m).__name__  # its YAML name
        else:
            m_ = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)  # module
            t = str(m)[8:-2].replace("__main__.", "")  # module type
''',
).replace(
    "        ch.append(c2)\n",
    '''        if isinstance(m, torch.nn.Module):  # a backbone: it and the 4 BackboneMap layers after it are P1 to P5
            ch.extend([0] * (5 - len(c2)) + c2)  # their channels (0 for a map it does not return)
            save.append(i)  # each BackboneMap reads the backbone's list of maps
            layers.extend(BackboneMap(i, k) for k in range(1, 5))
        else:
            ch.append(c2)
''',
)

# what ultrapatch 0.1 made of STOCK (the tutorials' layout: one layer for the backbone, later indices shifted by 4)
OLD_INDEX = STOCK.replace(
    "    for i, (f, n",
    "    backbone = False  # turns true at a backbone layer and stays true\n    for i, (f, n",
).replace(
    "        else:\n            c2 = ch[f]\n",
    f"""        elif m in {{  # backbones: built here, they return a list of feature maps
{V3_LINES}        }}:
            m = m(*args)
            c2 = m.width_list  # the channels of each returned map
            backbone = True
        else:
            c2 = ch[f]
""",
).replace(
    '''        m_ = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)  # module
        t = str(m)[8:-2].replace("__main__.", "")  # module type
''',
    '''        if isinstance(m, torch.nn.Module):  # a backbone, already built in its branch
            m_ = m
            m_.backbone = True  # the forward loops store each of its maps
            t = type(m).__name__  # its YAML name
        else:
            m_ = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)  # module
            t = str(m)[8:-2].replace("__main__.", "")  # module type
''',
).replace(
    "m_.i, m_.f, m_.type = i, f, t", "m_.i, m_.f, m_.type = i + 4 if backbone else i, f, t"
).replace(
    "save.extend(x % i for x", "save.extend(x % (i + 4 if backbone else i) for x"
).replace(
    "        ch.append(c2)\n",
    '''        if isinstance(m, torch.nn.Module):  # pad at the front to five maps, P1 to P5, as the forward loops do
            ch.extend([0] * (5 - len(c2)) + c2)
        else:
            ch.append(c2)
''',
)


def test_branch_is_added_without_a_flag(tmp_path):
    assert_edit(tmp_path, BackboneBranch(), TASKS, STOCK, WITH_BRANCH)


def test_maps_become_layers_and_indices_stay_the_positions(tmp_path):
    assert_edit(tmp_path, BackboneMapLayers(), TASKS, WITH_BRANCH, WITH_INDEX)
    assert_noop(tmp_path, BackboneMapLayers(), TASKS, WITH_INDEX)


def test_the_old_layout_is_repaired(tmp_path):
    """ultrapatch 0.1's (and the tutorials') layout: `i + 4 if backbone else i`, the `backbone` attribute the forward
    loops test, channels padded with no layers for the maps. It becomes the new one; the unused flag stays."""
    plan, changed = run_edit(tmp_path, BackboneMapLayers(), {TASKS: OLD_INDEX})
    after = changed[TASKS]
    expected = WITH_INDEX.replace(
        "    for i, (f, n", "    backbone = False  # turns true at a backbone layer and stays true\n    for i, (f, n"
    ).replace(
        "            c2 = m.width_list  # the channels of each returned map\n",
        "            c2 = m.width_list  # the channels of each returned map\n            backbone = True\n",
    )
    assert after == expected
    assert "i + 4" not in after and "m_.backbone" not in after


def test_8_4_190_sppf_block_and_frozensets_stay_on_the_ordinary_path(tmp_path):
    before = '''\
    def parse_model(d, ch, verbose=True):
        base_modules = frozenset({Conv, SPPF})
        for i, (f, n, m, args) in enumerate(d["backbone"] + d["head"]):  # from, number, module, args
            if m in base_modules:
                c1, c2 = ch[f], args[0]
            elif m in frozenset({TorchVision, Index}):
                c2 = args[0]
            else:
                c2 = ch[f]

            m_ = torch.nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)  # module
            if m is SPPF and len(args) <= 3:  # Legacy YAML rows predate the unactivated YOLO26 SPPF.
                for block in m_ if n > 1 else [m_]:
                    block.cv1.act = Conv.default_act
            t = str(m)[8:-2].replace("__main__.", "")  # module type
            m_.np = sum(x.numel() for x in m_.parameters())  # number params
            m_.i, m_.f, m_.type = i, f, t  # attach index, 'from' index, type
            save.extend(x % i for x in ([f] if isinstance(f, int) else f) if x != -1)  # append to savelist
            if i == 0:
                ch = []
            ch.append(c2)
        Conv.default_act = default_act
        return torch.nn.Sequential(*layers), sorted(save)
    '''
    plan, changed = run_edit(tmp_path, BackboneBranch(), {TASKS: before}, release=(8, 4, 190))
    plan, changed = run_edit(tmp_path, BackboneMapLayers(), {TASKS: changed[TASKS]}, release=(8, 4, 190))
    after = changed[TASKS]
    assert dedent(
        """\
        else:
            m_ = torch.nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)  # module
            if m is SPPF and len(args) <= 3:  # Legacy YAML rows predate the unactivated YOLO26 SPPF.
                for block in m_ if n > 1 else [m_]:
                    block.cv1.act = Conv.default_act
            t = str(m)[8:-2].replace("__main__.", "")  # module type
        m_.np = sum"""
    ).replace("\n", "\n        ") in after
    assert "        elif m in frozenset({TorchVision, Index}):\n            c2 = args[0]\n        elif m in {" in after
    assert "backbone = False" not in after and "i = len(layers)" in after


def test_a_second_backbone_is_merged_into_the_existing_branch(tmp_path):
    one = WITH_BRANCH.replace(V3_LINES, "            MobileNetV3_small_n,\n")
    plan, changed = run_edit(tmp_path, BackboneBranch(), {TASKS: one})
    merged_order = ["MobileNetV3_small_n"] + [name for name in V3.split(", ") if name != "MobileNetV3_small_n"]
    assert changed[TASKS] == WITH_BRANCH.replace(V3_LINES, "".join(f"            {n},\n" for n in merged_order))
    assert changed[TASKS].count("c2 = m.width_list") == 1


SEED_002_BRANCH = '''\
def parse_model(d, ch, verbose=True):
    backbone = False
    for i, (f, n, m, args) in enumerate(d["backbone"] + d["head"]):
        t = m
        m = getattr(torch.nn, m[3:]) if "nn." in m else globals()[m]  # get module
        if m in {Conv}:
            c1, c2 = ch[f], args[0]
        elif m in {MobileNetV2}:
            m = m(*args)
            c2 = m.width_list
            backbone = True
        else:
            c2 = ch[f]
'''


def test_hand_applied_branch_is_adopted_and_merged_not_duplicated(tmp_path):
    plan, changed = run_edit(tmp_path, BackboneBranch(), {TASKS: SEED_002_BRANCH})
    after = changed[TASKS]
    assert f"        elif m in {{MobileNetV2, {V3}}}:\n" in after
    assert after.count("c2 = m.width_list") == 1
    assert after.count("backbone = False") == 1


def test_noop_on_a_seed_000_construction_with_its_type_line_outside(tmp_path):
    done = WITH_INDEX.replace(
        '''            t = type(m).__name__  # its YAML name
        else:
            m_ = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)  # module
            t = str(m)[8:-2].replace("__main__.", "")  # module type
''',
        '''        else:
            m_ = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)  # module
        t = str(m)[8:-2].replace('__main__.', '')  # module type
''',
    )
    assert_noop(tmp_path, BackboneMapLayers(), TASKS, done)


def test_missing_chain_end_names_the_construct(tmp_path):
    source = STOCK.replace("        else:\n            c2 = ch[f]\n", "")
    assert_fails(tmp_path, BackboneBranch(), TASKS, source, TASKS, "parse_model", "else: c2 = ch[f]")


def test_missing_parse_model(tmp_path):
    assert_fails(tmp_path, BackboneBranch(), TASKS, "x = 1\n", TASKS, "def parse_model")


def test_missing_layer_loop(tmp_path):
    assert_fails(tmp_path, BackboneMapLayers(), TASKS, "def parse_model(d, ch):\n    return d\n", "parse_model", "layer loop")


def test_missing_type_line(tmp_path):
    source = WITH_BRANCH.replace('        t = str(m)[8:-2].replace("__main__.", "")  # module type\n', "")
    assert_fails(tmp_path, BackboneMapLayers(), TASKS, source, "parse_model, layer loop", "t = str(m)")


def test_the_tutorials_list_test_is_repaired(tmp_path):
    """`isinstance(c2, list)` takes YOLOv9's CBLinear (a list of channels too) for a backbone: a tree with it (applied
    by hand, or by ultrapatch 0.1 at first) gets the branch test instead; the channels' `if` becomes ours."""
    tutorial = OLD_INDEX.replace("if isinstance(m, torch.nn.Module):", "if isinstance(c2, list):")
    assert tutorial.count("if isinstance(c2, list):") == 2
    plan, changed = run_edit(tmp_path, BackboneMapLayers(), {TASKS: tutorial})
    plan, repaired = run_edit(tmp_path, BackboneMapLayers(), {TASKS: OLD_INDEX})
    assert changed[TASKS] == repaired[TASKS] and "isinstance(c2, list)" not in changed[TASKS]
