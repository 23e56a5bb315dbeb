"""The forward-loop edits keep each release's own loop and signature; only the save line changes."""

from __future__ import annotations

from edit_helpers import assert_edit, assert_fails, assert_noop, run_edit
from patcher.edits import EDITS
from patcher.edits.base import Status
from patcher.edits.forward_loops import ListOutputs
from patcher.edits.shapes import TASKS

PREDICT_ONCE = ListOutputs("predict-once", "BaseModel", "_predict_once")
YOLOE = ListOutputs("yoloe-predict", "YOLOEModel", "predict", optional=True)

# 8.4.190: no `visualize`, `embed` as a frozenset
BEFORE = '''\
class BaseModel(torch.nn.Module):
    def _predict_once(self, x, profile=False, embed=None):
        y, dt, embeddings = [], [], []  # outputs
        embed = frozenset(embed) if embed else {-1}
        max_idx = max(embed)
        for m in self.model:
            if m.f != -1:  # if not from previous layer
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]  # from earlier layers
            if profile:
                self._profile_one_layer(m, x, dt)
            x = m(x)  # run
            y.append(x if m.i in self.save else None)  # save output
            if m.i in embed:
                embeddings.append(torch.nn.functional.adaptive_avg_pool2d(x, (1, 1)).squeeze(-1).squeeze(-1))  # flatten
                if m.i == max_idx:
                    return torch.unbind(torch.cat(embeddings, 1), dim=0)
        return x
'''

AFTER = BEFORE.replace(
    "            y.append(x if m.i in self.save else None)  # save output\n",
    '''            if hasattr(m, "backbone"):  # a checkpoint in the tutorials' layout: one layer holds all the maps
                x = [None] * (5 - len(x)) + list(x)  # pad at the front to five maps, P1 to P5
                for xi in x:
                    y.append(xi if len(y) in self.save else None)  # save output
                x = x[-1]  # the last map feeds the next layer
            else:
                y.append(x if m.i in self.save else None)  # save output
''',
)

# the tutorials' own `_predict_once` (seed 000 and 002)
TUTORIAL = '''\
class BaseModel(nn.Module):
    def _predict_once(self, x, profile=False, visualize=False, embed=None):
        y, dt, embeddings = [], [], []  # outputs
        for m in self.model:
            if m.f != -1:  # if not from previous layer
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]  # from earlier layers
            if profile:
                self._profile_one_layer(m, x, dt)
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
        return x
'''


def test_8_4_190_loop_keeps_its_signature_and_embed(tmp_path):
    assert_edit(tmp_path, PREDICT_ONCE, TASKS, BEFORE, AFTER)


def test_world_loop_keeps_its_call_chain(tmp_path):
    world = ListOutputs("world-predict", "WorldModel", "predict", optional=True)
    source = '''\
    class WorldModel(DetectionModel):
        def predict(self, x, profile=False, visualize=False, txt_feats=None, augment=False, embed=None):
            for m in self.model:  # except the head part
                if isinstance(m, C2fAttn):
                    x = m(x, txt_feats)
                else:
                    x = m(x)  # run

                y.append(x if m.i in self.save else None)  # save output
            return x
    '''
    plan, changed = run_edit(tmp_path, world, {TASKS: source})
    text = changed[TASKS]
    assert "                x = m(x, txt_feats)\n            else:\n                x = m(x)  # run\n\n            if hasattr(m, \"backbone\")" in text


def as_rtdetr(source: str) -> str:
    return (
        source.replace("class BaseModel(torch.nn.Module)", "class RTDETRDetectionModel(DetectionModel)")
        .replace("def _predict_once(self, x, profile=False, embed=None)", "def predict(self, x, profile=False, batch=None, augment=False, embed=None)")
        .replace("for m in self.model:", "for m in self.model[:-1]:  # except the head part")
    )


def test_rtdetr_loop_over_all_but_the_head(tmp_path):
    rtdetr = ListOutputs("rtdetr-predict", "RTDETRDetectionModel", "predict")
    assert_edit(tmp_path, rtdetr, TASKS, as_rtdetr(BEFORE), as_rtdetr(AFTER))


def test_tutorial_predict_once_is_recognised(tmp_path):
    assert_noop(tmp_path, PREDICT_ONCE, TASKS, TUTORIAL)


def test_yoloe_absent_is_not_in_this_release(tmp_path):
    plan, _ = run_edit(tmp_path, YOLOE, {TASKS: BEFORE})
    assert plan.reports[0].status is Status.NOT_IN_RELEASE
    assert "YOLOEModel" in plan.reports[0].detail


def test_missing_save_line_names_function_and_construct(tmp_path):
    source = BEFORE.replace("            y.append(x if m.i in self.save else None)  # save output\n", "")
    assert_fails(tmp_path, PREDICT_ONCE, TASKS, source, TASKS, "BaseModel._predict_once", "y.append(x if m.i in self.save else None)")


def test_missing_class_is_a_failure_when_required(tmp_path):
    assert_fails(tmp_path, PREDICT_ONCE, TASKS, "x = 1\n", "class BaseModel")


def test_every_forward_loop_is_in_the_table():
    names = {(e.cls, e.func) for e in EDITS if isinstance(e, ListOutputs)}
    assert names == {
        ("BaseModel", "_predict_once"),
        ("RTDETRDetectionModel", "predict"),
        ("WorldModel", "predict"),
        ("YOLOEModel", "predict"),
    }
