"""The checks of `ultrapatch verify`, run as a script in the fork's own interpreter.

    python runner.py SPEC.json < MODELS

SPEC names the tree, the device, whether to export and the threads; MODELS has one JSON model spec a line (the YAML
name, its family's stock model, ...), which the caller writes as earlier models finish. The script needs only the
standard library, torch and the fork. It prints one JSON event per line on its real stdout (the fork's own logging
goes to stderr): `environment` first, then `shadowed` and nothing more when another installation of ultralytics is
what this interpreter imports, or one `model` event per model as each one finishes, and `done` at the end of input.

Every check passes, fails with a reason, or is skipped with a reason. A failed check is repeated on the family's stock
model (built from the fork's own YAML at the same scale): if the stock model fails it too, the failure belongs to the
environment, not to the patch, and the reason names the cause where it is a known one. One such cause is a known
limit rather than a fault, and skips its check: a release whose loader can load no checkpoint under this torch.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import math
import os
import re
import sys
import tempfile
import time
import traceback
from copy import deepcopy
from pathlib import Path

from probe import SIZES, head_inputs, synthetic_batch, synthetic_dataset

CHECKS = ("build", "weights", "forward", "strides", "train", "embed", "freeze", "distill", "checkpoint", "fuse", "val", "export")
TRAIN_SIZE = (160, 160)  # the train step's images: the loss does not need 640, the forward check covers it
COMPARE_SIZE = (160, 128)  # the image whose outputs the checkpoint and fuse checks compare: any size shows a change
# (RT-DETR selects 300 queries among the anchors: 160x128 has 420)
FREEZE = 5  # layers 0-4: the backbone, in the YAML's numbering
DISTILL_SIZE = 160  # the image of DistillationModel's probe forward (it takes args.imgsz, 640 by default)
VAL_SIZE = 160  # validation's image size: its rectangular batches of the two synthetic images are 160x192 and 192x160
STOCK_SIZE = (640, 480)  # the size at which the stock model's output shapes are the yardstick
PREREQUISITES = {"export": ("checkpoint",)}  # a check that works on what an earlier one made
REL_TOL = {"checkpoint": 1e-4, "fuse": 1e-3, "export": 1e-3}
NO_CHECKPOINT_LOADS = "no .pt file loads here, stock or patched"  # a release's loader that torch >= 2.6 defeats


class CheckFailed(Exception):
    """A check's verdict, with the sentence that explains it."""


class Skipped(Exception):
    """A check that does not apply here, with the reason."""


class _SetUp(Exception):
    """Raised by a trainer callback once the trainer has set the model up: what the freeze check needs is there."""


def on_meta(torch, build: bool):
    """A context for measuring a model without arithmetic, on torch's `meta` device (shapes, no data).

    With `build`, the tensors the fork's constructors create without a device (parameters, buffers, the stride probe's
    image) are made on the meta device; `torch.tensor` stays on the CPU, since the fork turns such tensors into
    numbers (the strides it learns, the head's bias priors). Batch norm of a meta tensor returns its shape at once:
    torch's generic meta version of it is slow."""
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    factories = {torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.arange, torch.linspace}
    batch_norms = {F.batch_norm, torch.batch_norm}

    class OnMeta(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            first = args[0] if args else kwargs.get("input")
            if func in batch_norms and getattr(first, "is_meta", False):
                return torch.empty_like(first)
            if build and func in factories and kwargs.get("device") is None:
                kwargs["device"] = "meta"
            return func(*args, **kwargs)

    return OnMeta()


def inside(path: str | os.PathLike | None, root: Path) -> bool:
    return path is not None and Path(path).resolve().is_relative_to(root)


def release_of(init_file: str) -> str:
    match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)", Path(init_file).read_text(encoding="utf-8"), re.M)
    return match.group(1) if match else "unknown"


def shapes(out):
    """The nested shapes of a model's output: tensors by their shape, containers by their items."""
    if hasattr(out, "shape"):
        return list(out.shape)
    if isinstance(out, (list, tuple)):
        return [shapes(o) for o in out]
    if isinstance(out, dict):
        return {k: shapes(v) for k, v in out.items()}
    return type(out).__name__


def tensors(out) -> list:
    if hasattr(out, "shape"):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in tensors(o)]
    if isinstance(out, dict):
        return [t for v in out.values() for t in tensors(v)]
    return []


def relative_error(a, b) -> float:
    """The largest difference between two outputs' tensors, relative to the largest value of the first."""
    pairs = list(zip(tensors(a), tensors(b)))
    if not pairs or len(tensors(a)) != len(tensors(b)):
        return math.inf
    return max(float((x.float() - y.float()).abs().max() / x.float().abs().max().clamp(min=1e-12)) for x, y in pairs)


def where(exc: BaseException, tree: Path) -> str:
    """' (file.py:123)' for the innermost frame of the traceback inside the fork, or ''."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if inside(f.filename, tree)]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {Path(frame.filename).resolve().relative_to(tree)}:{frame.lineno})"


def forward_loop(exc: BaseException, tree: Path) -> str:
    """The fork's layer loop ('BaseModel._predict_once', 'RTDETRDetectionModel.predict', ...) the exception passed
    through, if it did."""
    loops = {"_predict_once": "BaseModel._predict_once", "predict": "the model's own predict loop"}
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if inside(frame.filename, tree) and frame.filename.endswith("tasks.py") and frame.name in loops:
            owner = _class_of(frame.filename, frame.lineno)
            name = f"{owner}.{frame.name}" if owner else loops[frame.name]
            return f"{name} (tasks.py:{frame.lineno})"
    return ""


def _class_of(file: str, line: int) -> str | None:
    """The name of the top-level class whose body holds `line` of `file`, if one does."""
    import ast

    tree = ast.parse(Path(file).read_text(encoding="utf-8"))
    classes = (n for n in tree.body if isinstance(n, ast.ClassDef))
    return next((n.name for n in classes if n.lineno <= line <= (n.end_lineno or n.lineno)), None)


def missing_package(exc: BaseException) -> str | None:
    """The top-level package a ModuleNotFoundError in `exc`'s chain names, unless it is the fork itself."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.split(".")[0] != "ultralytics":
            return exc.name.split(".")[0]
        exc = exc.__cause__ or exc.__context__
    return None


def explain(exc: BaseException, tree: Path, variant: str = "") -> str:
    """A sentence for an exception a check raised: the known causes by name, anything else by type and message."""
    text = f"{type(exc).__name__}: {exc}".strip()
    loop = forward_loop(exc, tree)
    if loop and "list" in text:
        return (
            f"{loop} hands the backbone's list of maps to the next layer as one input: parse_model gave its maps "
            f"no BackboneMap layers (the parse-model-index edit is missing; run `ultrapatch apply`)"
        )
    if "forward() missing 1 required positional argument" in text and any(
        f.name == "parse_model" for f in traceback.extract_tb(exc.__traceback__)
    ):
        return (
            f"parse_model calls the backbone its branch already built as if it were a class: the parse-model-index "
            f"edit is missing (run `ultrapatch apply`){where(exc, tree)}"
        )
    if isinstance(exc, KeyError) and variant and variant in str(exc):
        return (
            f"parse_model does not know {variant}: ultralytics/nn/tasks.py does not import it "
            f"(run `ultrapatch apply`){where(exc, tree)}"
        )
    if isinstance(exc, MemoryError) or "can't allocate memory" in text:
        return f"it ran out of memory{_memory_limit()}: {text.splitlines()[0][:200]}{where(exc, tree)}"
    if "trapz" in text:
        import numpy

        return f"numpy {numpy.__version__} has no np.trapz, which this release calls (numpy < 2.4 has it){where(exc, tree)}"
    if "Weights only load failed" in text or "weights_only" in text:
        import torch

        return (
            f"torch {torch.__version__} loads checkpoints with weights_only=True, and this release's loader does not "
            f"ask for full checkpoints: {NO_CHECKPOINT_LOADS} (torch < 2.6 can){where(exc, tree)}"
        )
    first_line = text.splitlines()[0] if text else type(exc).__name__
    return f"{first_line[:300]}{where(exc, tree)}"


def _memory_limit() -> str:
    try:
        import resource
    except ImportError:
        return ""
    soft = resource.getrlimit(resource.RLIMIT_DATA)[0]
    if soft == resource.RLIM_INFINITY:
        return ""
    return (
        f" (this verification process may hold {soft / (1 << 30):.1f} GiB: nine tenths of the machine's memory shared "
        f"among the processes; `--jobs 1` gives one process all of it)"
    )


class Session:
    """The fork, the device, and what has been learned about each stock model."""

    def __init__(self, tree: Path, device: str, export: str | None, workdir: Path, emit=None):
        import torch
        import ultralytics

        self.torch = torch
        self.ultralytics = ultralytics
        self.tree = tree
        self.device = torch.device("cpu" if device == "cpu" else f"cuda:{device}")
        self.export = export
        self.workdir = workdir
        self.stock: dict[str, dict] = {}
        self.stock_checks: dict[tuple[str, str], tuple[str, str]] = {}
        self.datasets: dict[str, str] = {}  # the synthetic validation sets written so far: what val(data=...) takes
        self.emit = emit  # `checking` events go to the parent, which reports a model whose process dies in a check

    # -- building and running ---------------------------------------------------------------------------------------
    def build(self, name: str, builder: str):
        wrapper = getattr(self.ultralytics, builder)(name)
        for layer in wrapper.model.model:
            if type(layer).__name__ == "TimmBackbone" and layer.pretrained is None:
                self.settle_statistics(layer)
        return wrapper, wrapper.model.to(self.device)

    def settle_statistics(self, backbone) -> None:
        """Give a timm backbone with random weights the BatchNorm statistics of its own maps, as pretrained weights
        bring theirs. timm's random initialisation leaves running_mean 0 and running_var 1, and some models grow their
        activations by orders of magnitude through the stages in eval mode (mobileone_s0's maps reach ~1e9): every
        class then clears validation's confidence threshold and the OBB NMS compares ~25,000 boxes pairwise (GiBs),
        and an export's float rounding exceeds any tolerance. Statistics from two synthetic batches (a cumulative
        average) keep the maps near unit scale, as a trained or pretrained backbone has them. Only the statistics
        change: the weights check still compares with timm's own model holding the same state dict."""
        torch = self.torch
        norms = [m for m in backbone.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        momentum = [m.momentum for m in norms]
        was_training = backbone.training
        try:
            for m in norms:
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the batches below
            backbone.train()
            with torch.no_grad():
                for seed in (1, 2):
                    backbone(torch.rand(2, 3, *COMPARE_SIZE, generator=torch.Generator().manual_seed(seed)))
        finally:
            for m, value in zip(norms, momentum):
                m.momentum = value
            backbone.train(was_training)

    def image(self, h: int, w: int, n: int = 1, device=None):
        if str(device) == "meta":
            return self.torch.empty(n, 3, h, w, device="meta")
        return self.torch.rand(n, 3, h, w, generator=self.torch.Generator().manual_seed(h * 7 + w)).to(self.device)

    def to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device) if hasattr(v, "to") else v for k, v in batch.items()}

    def prepare_training(self, model) -> None:
        """What the trainer sets on a model before its first loss: the loss gains, and the class count."""
        from ultralytics.cfg import get_cfg

        model.args = get_cfg()
        model.nc = model.yaml["nc"]

    def train_forward(self, model, builder: str, task: str, h: int, w: int, device=None):
        """A training-mode forward: RT-DETR's needs targets, so its forward is its loss."""
        if builder == "RTDETR":
            batch = self.to_device(synthetic_batch(self.torch, task, (h, w), images=1))
            return lambda: model.loss(batch)
        image = self.image(h, w, device=device)
        return lambda: model(image)

    def observe(self, model, builder: str, task: str, sizes=SIZES, train: bool = True) -> dict:
        """Output shapes and the strides of the maps the head receives, at every size, in eval and (unless `train` is
        false) train mode."""
        torch = self.torch
        device = next(model.parameters()).device
        seen = {"stride": [float(s) for s in getattr(model, "stride", [])], "shapes": {}, "head_strides": {}}
        model.eval()
        with torch.no_grad():
            for h, w in sizes:
                image = self.image(h, w, device=device)
                out = []
                maps = head_inputs(model, lambda: out.append(model(image)))
                seen["shapes"][f"eval {h}x{w}"] = shapes(out[0])
                seen["head_strides"][f"eval {h}x{w}"] = [h / f.shape[-2] for f in maps]
        if not train:
            return seen
        model.train()
        self.prepare_training(model)
        for h, w in sizes:
            out = []
            run = self.train_forward(model, builder, task, h, w, device)
            with torch.no_grad():  # batch norm still runs on batch statistics; no graph to keep (10-15% faster)
                maps = head_inputs(model, lambda: out.append(run()))
            if builder != "RTDETR":  # RT-DETR's training forward returns its loss, not its predictions
                seen["shapes"][f"train {h}x{w}"] = shapes(out[0])
            seen["head_strides"][f"train {h}x{w}"] = [h / f.shape[-2] for f in maps]
        model.eval()
        return seen

    # -- the checks, each on one model -------------------------------------------------------------------------------
    def check_build(self, model, spec: dict, facts: dict) -> str:
        from ultralytics.utils.torch_utils import get_flops

        facts["layers"] = len(list(model.modules()))
        facts["params"] = sum(p.numel() for p in model.parameters())
        facts["gflops"] = round(float(get_flops(model, 640) or 0.0), 3)
        if not facts["gflops"]:
            try:  # get_flops swallows errors and says 0: a plain forward shows what went wrong
                with self.torch.no_grad():
                    model.eval()(self.image(640, 640))
            except Exception as exc:  # noqa: BLE001 - the reason is the report
                raise CheckFailed(f"GFLOPs is 0 because the model's forward fails: {explain(exc, self.tree)}") from exc
            raise CheckFailed(f"GFLOPs is 0: the fork's get_flops cannot profile the model{_thop_missing()}")
        return ""

    def check_weights(self, model, spec: dict, facts: dict) -> str:
        """A backbone given weights computes inside the model what it computes built alone from the same file: nothing
        of the model's construction (Ultralytics' initialize_weights setting every BatchNorm's eps and momentum, the
        stride probe's forward in training mode) changed it. Runs right after the build, before any training."""
        import ast
        import copy

        backbone = model.model[0]
        if type(backbone).__name__ == "TimmBackbone":
            return self.timm_weights(backbone)
        if not getattr(backbone, "pretrained", None):
            raise Skipped("the backbone was given no weights")
        args = []
        for arg in model.yaml["backbone"][0][-1]:  # as parse_model reads the row's arguments
            with contextlib.suppress(ValueError, SyntaxError):
                arg = ast.literal_eval(arg) if isinstance(arg, str) else arg
            args.append(arg)
        alone = type(backbone)(*args).to(self.device).eval()
        inside = copy.deepcopy(backbone).eval()
        image = self.image(160, 128)
        with self.torch.no_grad():
            difference = relative_error(alone(image), inside(image))  # relative to the backbone built alone
        if difference > 1e-5:
            norms = sorted({(m.eps, m.momentum) for m in backbone.modules() if isinstance(m, self.torch.nn.BatchNorm2d)})
            raise CheckFailed(
                f"the backbone's maps in the model differ from the same backbone built alone from the same weights by "
                f"up to {difference:.2%} of their largest value; its BatchNorm (eps, momentum) in the model: {norms}"
            )
        return f"{backbone.pretrained}; largest difference from the backbone built alone: {difference:.1e}"

    def timm_weights(self, backbone) -> str:
        """A TimmBackbone computes inside the model what timm's own model computes with the same weights (in eval
        mode): the model's construction changed none of timm's settings (BatchNorm eps and momentum, inplace
        activations)."""
        import timm

        torch = self.torch
        name = backbone.model_name
        own = timm.create_model(name, features_only=True, out_indices=backbone.out_indices, pretrained=False)
        own.load_state_dict(backbone.body.state_dict())
        own = own.to(self.device).eval()
        inside = deepcopy(backbone).eval()
        image = self.image(160, 128)
        with torch.no_grad():
            difference = relative_error(own(image), inside(image))  # relative to timm's own maps
        if difference > 1e-5:
            norms = sorted({(m.eps, m.momentum) for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)})
            theirs = sorted({(m.eps, m.momentum) for m in own.modules() if isinstance(m, torch.nn.BatchNorm2d)})
            raise CheckFailed(
                f"the backbone's maps in the model differ from timm's own {name} with the same weights by up to "
                f"{difference:.2%} of their largest value; BatchNorm (eps, momentum) in the model: {norms}, in timm's: "
                f"{theirs}"
            )
        settled = "; BatchNorm statistics from two synthetic batches" if backbone.pretrained is None else ""
        return (
            f"{backbone.weights}{settled}; maps equal timm's own {name} with the same weights "
            f"(largest difference {difference:.1e})"
        )

    def check_forward(self, model, spec: dict, facts: dict) -> str:
        facts["observed"] = seen = self.observe(model, spec["builder"], spec["task"])
        stock = self.stock_of(spec).get("observed")
        if stock is None:
            return "no stock model to compare output shapes with"
        for key, expected in stock["shapes"].items():
            got = seen["shapes"].get(key)
            if got != expected:
                raise CheckFailed(f"{key}: output shapes {got}, where the stock {spec['stock']} gives {expected}")
        return ""

    def check_strides(self, model, spec: dict, facts: dict) -> str:
        seen = facts.get("observed") or self.observe(model, spec["builder"], spec["task"])
        expected = [32.0] if spec["task"] == "classify" else [8.0, 16.0, 32.0]
        for key, got in seen["head_strides"].items():
            if got != expected:
                raise CheckFailed(
                    f"{key}: the head receives maps at strides {_fmt(got)}, not {_fmt(expected)}; the backbone must "
                    f"return four maps (strides 4, 8, 16, 32) and the head read P3-P5 as layers 2-4"
                )
        stock = self.stock_of(spec).get("observed")
        if stock is not None and seen["stride"] != stock["stride"]:
            raise CheckFailed(f"model.stride is {_fmt(seen['stride'])}, where the stock model has {_fmt(stock['stride'])}")
        return ""

    def check_train(self, model, spec: dict, facts: dict) -> str:
        torch = self.torch
        model.train()
        self.prepare_training(model)
        model.zero_grad(set_to_none=True)
        batch = self.to_device(synthetic_batch(torch, spec["task"], TRAIN_SIZE))
        loss, _items = model.loss(batch)
        total = loss.sum()
        if not math.isfinite(float(total.detach())):
            raise CheckFailed(f"the loss on a synthetic {spec['task']} batch is {float(total)}")
        total.backward()
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        bad = [n for n, p in named if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
        if bad:
            raise CheckFailed(f"{len(bad)} gradient(s) are not finite, e.g. {bad[0]}")
        backbone = [n for n, p in named if n.startswith("model.0.")]
        missing = [n for n, p in named if n.startswith("model.0.") and p.grad is None]
        if missing:
            raise CheckFailed(
                f"{len(missing)} of {len(backbone)} backbone parameters receive no gradient (e.g. {missing[0]}): "
                f"multi-GPU training (DDP) stops on unused parameters"
            )
        facts["loss"] = round(float(total), 4)
        model.zero_grad(set_to_none=True)
        model.eval()
        return ""

    def check_embed(self, model, spec: dict, facts: dict) -> str:
        """`Model.embed()` with no layers given embeds layer `len(model.model) - 2`, a place in the layer list, and the
        forward loops compare it with each layer's index: the two must agree, so that the default embeds the
        second-to-last layer, the same as naming that layer's YAML index."""
        torch = self.torch
        rows = model.yaml["backbone"] + model.yaml["head"]
        backbones = sum(hasattr(layer, "width_list") for layer in model.model)
        yaml_index = len(rows) - 2 + 4 * backbones  # the second-to-last row, in the tutorials' numbering
        captured = []
        hook = model.model[-2].register_forward_hook(lambda _m, _i, out: captured.append(out))
        image = self.image(*COMPARE_SIZE)
        model.eval()
        try:
            with torch.no_grad():
                default = model.predict(image, embed=[len(model.model) - 2])
                named = model.predict(image, embed=[yaml_index])
        finally:
            hook.remove()
        if not captured or not hasattr(captured[0], "shape"):
            raise Skipped("the second-to-last layer gives no single feature map")
        expected = torch.nn.functional.adaptive_avg_pool2d(captured[0], (1, 1)).flatten(1)
        for what, got in (("the default embed()", default), (f"embed=[{yaml_index}]", named)):
            if not isinstance(got, (list, tuple)) or not got or tuple(got[0].shape) != tuple(expected[0].shape):
                found = shapes(got[0] if isinstance(got, (list, tuple)) and got else got)
                raise CheckFailed(
                    f"{what} returns a feature of shape {found}, not the second-to-last layer's "
                    f"{list(expected[0].shape)}: layer indices and places in the model differ"
                )
            if relative_error(expected[0], got[0]) > 1e-5:
                raise CheckFailed(f"{what} returns another layer's feature than the second-to-last layer's")
        return f"layer {yaml_index}, {expected.shape[1]} values"

    def check_freeze(self, model, spec: dict, facts: dict) -> str:
        """`freeze=5` in the fork's own trainer leaves exactly the layers the YAML numbers 0-4 (the backbone) without
        gradients. (`freeze=[0, 1, 2, 3, 4]` names the same layers: the trainer turns an int N into range(N) before
        it looks at a single name.) The trainer is stopped once it has set the model up."""
        yaml_layers = [p for p, layer in enumerate(model.model) if getattr(layer, "i", FREEZE) < FREEZE]
        backbone = {f"model.{p}.{n}" for p in yaml_layers for n, _ in model.model[p].named_parameters()}
        if not backbone:
            raise Skipped("the model has no parameters in layers 0-4")
        frozen = self.frozen_by_trainer(spec, FREEZE)
        extra = sorted(n for n in frozen - backbone if ".dfl" not in n)  # the trainer always freezes DFL's conv
        left = sorted(backbone - frozen)
        if extra or left:
            what = [f"{len(extra)} parameter(s) outside layers 0-4 (e.g. {extra[0]})"] if extra else []
            what += [f"left {len(left)} of the backbone's (e.g. {left[0]}) trainable"] if left else []
            raise CheckFailed(f"freeze={FREEZE} froze {' and '.join(what)}: the trainer's layer numbers are not the YAML's")
        return f"{len(frozen & backbone)} backbone parameters frozen, nothing else"

    def frozen_by_trainer(self, spec: dict, freeze) -> set[str]:
        """The names of the parameters the fork's trainer freezes for `freeze`."""
        wrapper = getattr(self.ultralytics, spec["builder"])(spec["name"])
        found: set[str] = set()

        def grab(trainer):
            found.update(n for n, p in trainer.model.named_parameters() if not p.requires_grad)
            raise _SetUp

        wrapper.add_callback("on_pretrain_routine_end", grab)
        task = spec["task"]
        data = self.dataset(task, (17, 3) if task == "pose" else None)
        device = "cpu" if self.device.type == "cpu" else str(self.device.index or 0)
        with no_font_download(), contextlib.suppress(_SetUp):
            wrapper.train(
                data=data, imgsz=64, epochs=1, batch=2, workers=0, device=device, freeze=freeze, amp=False,
                plots=False, val=False, verbose=False, project=str(Path.cwd() / "runs"), name="freeze", exist_ok=True,
            )
        if not found:
            raise CheckFailed(f"the trainer froze nothing for freeze={freeze}")
        return found

    def check_distill(self, model, spec: dict, facts: dict) -> str:
        """Knowledge distillation (8.4.x, `distill_model=` in training) hooks the layers its Detect head reads, by
        index: with the patched model as the student and the family's stock model as the teacher, then the other way
        round, the fork's DistillationModel builds and gives a finite loss and gradients."""
        try:
            distill = importlib.import_module("ultralytics.nn.distill_model")
        except ImportError:
            raise Skipped("this release has no knowledge distillation (ultralytics.nn.distill_model)") from None
        if spec["builder"] != "YOLO" or spec["task"] != "detect":
            raise Skipped("distillation takes detection models")
        torch = self.torch
        patched = deepcopy(model)
        stock = self.build_stock(spec).model
        batch = self.to_device(synthetic_batch(torch, "detect", TRAIN_SIZE))
        for role, student, teacher in (("student", patched, stock), ("teacher", deepcopy(stock), deepcopy(patched))):
            for m in (student, teacher):
                self.prepare_training(m)
                m.args.imgsz = DISTILL_SIZE
            try:
                pair = distill.DistillationModel(teacher_model=teacher, student_model=student).train()
                loss, _items = pair.loss(batch)
            except Exception as exc:  # noqa: BLE001 - the reason is the report
                raise CheckFailed(f"as the {role}: {explain(exc, self.tree)}") from exc
            total = loss.sum()
            if not math.isfinite(float(total.detach())):
                raise CheckFailed(f"as the {role}: the distillation loss is {float(total)}")
            total.backward()
            trainable = [n for n, p in pair.student_model.named_parameters() if p.requires_grad]
            missing = [n for n, p in pair.student_model.named_parameters() if p.requires_grad and p.grad is None]
            if len(missing) == len(trainable):
                raise CheckFailed(f"as the {role}: no student parameter receives a gradient")
        return "as the student and as the teacher of the stock model"

    def check_checkpoint(self, model, spec: dict, facts: dict) -> str:
        """Save as the fork's trainer does (the EMA model in half precision), load with the fork's own classes."""
        torch = self.torch
        from ultralytics.cfg import get_cfg

        model.eval()
        ema = deepcopy(model)  # the trainer's EMA copy is made before the first loss: no criterion in it
        if getattr(ema, "criterion", None) is not None:
            ema.criterion = None
        path = self.workdir / f"{Path(spec['name']).stem}.pt"
        ckpt = {
            "epoch": -1,
            "best_fitness": None,
            "model": None,
            "ema": ema.half(),
            "updates": 0,
            "optimizer": None,
            "train_args": dict(vars(get_cfg())),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "version": self.ultralytics.__version__,
        }
        buffer = io.BytesIO()
        torch.save(ckpt, buffer)
        path.write_bytes(buffer.getvalue())
        facts["checkpoint"] = str(path)
        reference = ema.float().eval()  # once saved: the weights as the file holds them (half precision), in float32
        image = self.image(*COMPARE_SIZE)
        loaded = getattr(self.ultralytics, spec["builder"])(str(path)).model.to(self.device).eval()
        with torch.no_grad():
            expected = reference(image)
            error = relative_error(expected, loaded(image))
        if error > REL_TOL["checkpoint"]:
            raise CheckFailed(f"the reloaded model's outputs differ by {error:.2g} (relative)")
        notes = ""
        tasks = sys.modules["ultralytics.nn.tasks"]
        safe = getattr(tasks, "_SafeLoad", None)
        if safe is not None and safe.SUPPORTED:  # 8.4.100+: ULTRALYTICS_SAFE_LOAD=1 must load it too
            try:
                restricted, _ = tasks.torch_safe_load(str(path), safe_only=True)
            except Exception as exc:  # noqa: BLE001 - the reason is the report
                reason = explain(exc, self.tree)
                if "AddModules" in reason:
                    reason += "; the safe-load allow-list does not accept the AddModules classes (run `ultrapatch apply`)"
                raise CheckFailed(f"with ULTRALYTICS_SAFE_LOAD=1: {reason}") from exc
            safe_model = (restricted.get("ema") or restricted["model"]).to(self.device).float().eval()
            with torch.no_grad():
                error = relative_error(expected, safe_model(image))
            if error > REL_TOL["checkpoint"]:
                raise CheckFailed(f"with ULTRALYTICS_SAFE_LOAD=1, the outputs differ by {error:.2g} (relative)")
            notes = "also with ULTRALYTICS_SAFE_LOAD=1"
        return notes

    def check_fuse(self, model, spec: dict, facts: dict) -> str:
        torch = self.torch
        model.eval()
        image = self.image(*COMPARE_SIZE)
        with torch.no_grad():
            out = []
            before = head_inputs(model, lambda: out.append(model(image)))
            model.fuse(verbose=False)
            after = head_inputs(model, lambda: out.append(model(image)))
        error = relative_error(before, after)
        # The head's predictions too, unless it selects its top k (RT-DETR's queries, an end-to-end head's boxes):
        # there rounding picks other candidates, so what reaches the head is compared instead.
        if spec["builder"] != "RTDETR" and not getattr(model.model[-1], "end2end", False):
            error = max(error, relative_error(tensors(out[0])[:1], tensors(out[1])[:1]))
        if error > REL_TOL["fuse"]:
            raise CheckFailed(f"model.fuse() changes the outputs by {error:.2g} (relative)")
        unfused = sum(hasattr(m, "switch_to_deploy") and getattr(m, "deploy", True) is False for m in model.modules())
        if unfused:
            raise CheckFailed(
                f"model.fuse() left {unfused} reparameterisable block(s) in training form (the fuse edit is missing)"
            )
        facts["fused_params"] = sum(p.numel() for p in model.parameters())
        return ""

    def check_val(self, model, spec: dict, facts: dict) -> str:
        """Validate as `yolo val` does, through the fork's own validator (dataset, rectangular batches, fuse, NMS,
        metrics), on two synthetic images, a landscape and a portrait one; then an AP with the fork's own metrics on a
        known precision-recall curve: an untrained model finds no true positive, so validation alone never gets there,
        and a trained one would (that is where a missing np.trapz stops validation)."""
        wrapper = facts["wrapper"]
        wrapper.model = model
        task = spec["task"]
        kpt_shape = tuple(model.yaml.get("kpt_shape") or (17, 3)) if task == "pose" else None
        data = self.dataset(task, kpt_shape)
        device = "cpu" if self.device.type == "cpu" else str(self.device.index or 0)
        with no_font_download():
            metrics = wrapper.val(
                data=data, imgsz=VAL_SIZE, batch=1, workers=0, plots=False, device=device, verbose=False,
                project=str(Path.cwd() / "runs"), name="val", exist_ok=True,  # the scratch folder, not the fork's runs/
            )
        results = dict(getattr(metrics, "results_dict", {}) or {})
        if not results:
            raise CheckFailed(f"validation returned no metrics ({type(metrics).__name__})")
        bad = sorted(k for k, v in results.items() if not math.isfinite(float(v)))
        if bad:
            raise CheckFailed(f"validation's {bad[0]} is {results[bad[0]]}")
        if task != "classify":
            from ultralytics.utils.metrics import compute_ap

            ap = float(compute_ap([0.0, 0.5, 1.0], [1.0, 1.0, 0.5])[0])
            if not 0.0 < ap <= 1.0:
                raise CheckFailed(f"the fork's compute_ap gives {ap} for a curve whose AP lies in (0, 1]")
        return ""

    def dataset(self, task: str, kpt_shape) -> str:
        """The synthetic validation set for a task (and keypoint shape), written once per process."""
        name = task + ("-{}x{}".format(*kpt_shape) if kpt_shape else "")
        if name not in self.datasets:
            self.datasets[name] = synthetic_dataset(self.workdir / "data" / name, task, kpt_shape)
        return self.datasets[name]

    def check_export(self, model, spec: dict, facts: dict) -> str:
        if not self.export:
            raise Skipped("not asked for (--export onnx)")
        missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
        if missing:
            raise Skipped(f"{' and '.join(missing)} not installed in {sys.executable} (pip install onnx onnxruntime)")
        if "checkpoint" not in facts:
            raise Skipped("there is no checkpoint to export")
        import numpy
        import onnxruntime

        torch = self.torch
        wrapper = getattr(self.ultralytics, spec["builder"])(facts["checkpoint"])
        onnx_file = wrapper.export(format="onnx", imgsz=640, device="cpu", simplify=False, verbose=False)
        reference = wrapper.model.float().eval()
        image = self.image(640, 640).cpu()
        with torch.no_grad():
            expected = reference(image)
        session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: image.numpy()})
        expected = tensors(expected)[: len(got)]
        error = relative_error(expected, [torch.from_numpy(numpy.asarray(g)) for g in got])
        if error > REL_TOL["export"]:
            raise CheckFailed(f"the ONNX model's outputs differ by {error:.2g} (relative) from the PyTorch model's")
        return Path(onnx_file).name

    # -- stock models: the control ----------------------------------------------------------------------------------
    def build_stock(self, spec: dict, meta: bool = False):
        """The family's stock model from the fork's own YAML, with the class count of the model it is compared with;
        on the meta device (no data, no arithmetic) when only its size and shapes are wanted. Returns the fork's model
        wrapper (YOLO, RTDETR) holding it."""
        # Import the fork's modules outside the meta context: the class-level tensors they create at import time
        # (Detect.anchors = torch.empty(0)) would otherwise be meta tensors in every model built afterwards.
        builder = getattr(self.ultralytics, spec["builder"])
        importlib.import_module("ultralytics.nn.tasks")
        with on_meta(self.torch, build=True) if meta else contextlib.nullcontext():
            wrapper = builder(spec["stock"])
            model = wrapper.model
            nc = spec.get("nc")
            if nc is not None and model.yaml.get("nc") != nc:  # e.g. yolov8-pose.yaml has nc: 1
                model = type(model)(deepcopy(model.yaml), nc=nc, verbose=False)
        wrapper.model = model if meta else model.to(self.device)
        return wrapper

    def stock_of(self, spec: dict) -> dict:
        return self.stock.get(f"{spec['stock']} nc={spec.get('nc')}", {})

    def stock_baseline(self, spec: dict) -> dict:
        """Build the family's stock model once: its size, output shapes and strides are the yardstick."""
        key = f"{spec['stock']} nc={spec.get('nc')}"
        if key not in self.stock:
            info: dict = {"name": spec["stock"]}
            try:  # on the meta device: a yardstick of shapes needs no arithmetic (Darknet-53 is ~280 GFLOPs a pass)
                info.update(self.measure_stock(spec, meta=True))
            except Exception:  # noqa: BLE001 - an operation the meta device lacks: measure it for real
                try:
                    info.update(self.measure_stock(spec, meta=False))
                except Exception as exc:  # noqa: BLE001 - a stock model that will not build is reported, not raised
                    info["error"] = explain(exc, self.tree)
            self.stock[key] = info
        return self.stock[key]

    def measure_stock(self, spec: dict, meta: bool) -> dict:
        """The stock model's layers, parameters, GFLOPs, stride, and output shapes at STOCK_SIZE in eval and train mode
        (RT-DETR's training forward is its loss: eval only)."""
        model = self.build_stock(spec, meta=meta).model
        facts: dict = {}
        with on_meta(self.torch, build=False) if meta else contextlib.nullcontext():
            try:
                self.check_build(model, spec, facts)
            except CheckFailed:
                pass
            observed = self.observe(model, spec["builder"], spec["task"], sizes=[STOCK_SIZE], train=spec["builder"] != "RTDETR")
        return {**{k: facts.get(k) for k in ("layers", "params", "gflops")}, "observed": observed}

    def stock_verdict(self, spec: dict, check: str) -> tuple[str, str]:
        """Run one check on a fresh stock model: ('pass', '') or ('fail', reason)."""
        key = (f"{spec['stock']} nc={spec.get('nc')}", check)
        if key not in self.stock_checks:
            stock_spec = {**spec, "name": spec["stock"]}
            try:
                wrapper = self.build_stock(spec)
                model, facts = wrapper.model, {"wrapper": wrapper}
                for earlier in PREREQUISITES.get(check, ()):
                    getattr(self, f"check_{earlier}")(model, stock_spec, facts)
                getattr(self, f"check_{check}")(model, stock_spec, facts)
                self.stock_checks[key] = ("pass", "")
            except Skipped as exc:
                self.stock_checks[key] = ("skip", str(exc))
            except CheckFailed as exc:
                self.stock_checks[key] = ("fail", str(exc))
            except Exception as exc:  # noqa: BLE001
                self.stock_checks[key] = ("fail", explain(exc, self.tree))
        return self.stock_checks[key]

    # -- one model ---------------------------------------------------------------------------------------------------
    def verify(self, spec: dict) -> dict:
        started = time.perf_counter()
        self.torch.manual_seed(0)
        report = {
            "name": spec["name"],
            "yaml": spec["yaml"],
            "family": spec["family"],
            "task": spec["task"],
            "backbone": spec["variant"],
            "ok": True,
            "layers": None,
            "params": None,
            "gflops": None,
            "stock": None,
            "checks": {},
        }
        facts: dict = {}
        model = None
        for check in CHECKS:
            t = time.perf_counter()
            if self.emit is not None:
                self.emit(event="checking", check=check, checks=report["checks"], seconds=round(t - started, 2))
            if check == "build":
                status, reason = self.run_check(check, spec, facts, lambda: self.build(spec["name"], spec["builder"]))
                built = facts.pop("model", None)
                model = built if status != "fail" else None  # "environment" goes on: the stock model fails it too
                if model is not None:
                    spec = {**spec, "nc": model.yaml.get("nc")}
                t_stock = time.perf_counter()
                stock = self.stock_baseline(spec)  # after the build: the stock model gets the same class count
                report["stock_seconds"] = round(time.perf_counter() - t_stock, 2)
                t += time.perf_counter() - t_stock
            elif model is None:
                status, reason = "skip", "the model did not build"
            else:
                status, reason = self.run_check(check, spec, facts, lambda: model)
            report["checks"][check] = {"status": status, "reason": reason, "seconds": round(time.perf_counter() - t, 2)}
        report["stock"] = {k: stock.get(k) for k in ("name", "layers", "params", "gflops")}
        report.update({k: facts.get(k) for k in ("layers", "params", "gflops")})
        if "fused_params" in facts:
            report["fused_params"] = facts["fused_params"]
        report["ok"] = all(c["status"] != "fail" for c in report["checks"].values())
        report["seconds"] = round(time.perf_counter() - started, 2)
        return report

    def run_check(self, check: str, spec: dict, facts: dict, get_model) -> tuple[str, str]:
        try:
            model = get_model()
            if check == "build":
                facts["wrapper"], facts["model"] = model
                model = model[1]
                spec = {**spec, "nc": model.yaml.get("nc")}  # the stock control is built with the same class count
            reason = getattr(self, f"check_{check}")(model, spec, facts)
            return "pass", reason
        except Skipped as exc:
            return "skip", str(exc)
        except CheckFailed as exc:
            reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a reason
            package = missing_package(exc)
            if package:  # a dependency this interpreter lacks (timm for a TimmBackbone, onnxscript for an export): not the patch
                return "environment", (
                    f"{package} is not installed in {sys.executable}, and this check needs it: "
                    f"`{sys.executable} -m pip install {package}`"
                )
            reason = explain(exc, self.tree, spec["variant"])
        stock_status, stock_reason = self.stock_control(spec, check)
        if stock_status == "fail" and check == "checkpoint" and NO_CHECKPOINT_LOADS in stock_reason:
            return "skip", stock_reason  # this release cannot load any checkpoint under this torch: nothing to prove
        if stock_status == "fail":
            return "environment", f"the stock {spec['stock']} fails this check too: {stock_reason}"
        return "fail", reason

    def stock_control(self, spec: dict, check: str) -> tuple[str, str]:
        """The same check on the stock model: the baseline answers for build, forward and strides."""
        if check not in ("build", "forward", "strides"):
            return self.stock_verdict(spec, check)
        stock = self.stock_baseline(spec)
        if "error" in stock:
            return "fail", stock["error"]
        if check == "build" and not stock.get("gflops"):
            return "fail", f"the stock model's GFLOPs are 0 too: the fork's get_flops profiles no model here{_thop_missing()}"
        return "pass", ""


@contextlib.contextmanager
def no_font_download():
    """The fork's dataset check downloads a font for its plots when the machine has none; validation here draws no
    plots, so it is not fetched (verify works offline and writes nothing to the user's settings folder)."""
    utils = importlib.import_module("ultralytics.data.utils")
    original = utils.check_font
    utils.check_font = lambda *args, **kwargs: None
    try:
        yield
    finally:
        utils.check_font = original


def _thop_missing() -> str:
    """', because ...' when thop, which the fork's get_flops counts with, cannot be imported; else ''."""
    try:
        import thop  # noqa: F401
    except ImportError:
        return f", because {sys.executable} cannot import thop (pip install ultralytics-thop)"
    return ""


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def event_stream():
    """`emit(**event)`: one JSON line on the real stdout. Ultralytics logs to stdout, so file descriptor 1 goes to
    stderr from here on and the events keep a copy of the original for themselves."""
    events = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def emit(**event) -> None:
        events.write(json.dumps(event) + "\n")
        events.flush()

    return emit


def open_fork(spec: dict, emit) -> dict | None:
    """Import torch and the fork at `spec["tree"]` (first on sys.path), check that it is the fork that was imported
    and that the device exists, and emit the `environment` event; None (with an `error` or `shadowed` event) when
    any of that fails."""
    tree = Path(spec["tree"]).resolve()
    # What a script outside the tree imports (or what was imported at startup, by a .pth file or sitecustomize).
    preloaded = sys.modules.get("ultralytics")
    found = importlib.util.find_spec("ultralytics") if preloaded is None else None
    outside = preloaded.__file__ if preloaded is not None else (found.origin if found is not None else None)
    sys.path.insert(0, str(tree))
    try:
        import torch
    except ImportError as exc:
        emit(event="error", kind="torch", message=f"{sys.executable} cannot import torch ({exc})")
        return None
    try:  # the fork and everything it imports at start-up: checked before any model runs
        import ultralytics
        import ultralytics.nn.tasks  # noqa: F401
        import ultralytics.models  # noqa: F401
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        emit(event="error", kind="import", message=(
            f"{sys.executable} cannot import the fork at {tree}: {exc} (the fork needs the module {missing!r}). "
            f"Install the fork with its requirements into that environment: `{sys.executable} -m pip install -e {tree}`"
        ))
        return None

    environment = {
        "release": ultralytics.__version__,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "torch": torch.__version__,
        "numpy": sys.modules["numpy"].__version__ if "numpy" in sys.modules else None,
        "device": spec["device"],
        "threads": spec.get("threads") or torch.get_num_threads(),
        "ultralytics_file": ultralytics.__file__,
        "installed": outside,
        "checks": list(CHECKS),
    }
    for candidate in (ultralytics.__file__, outside):
        if candidate is not None and not inside(candidate, tree):
            emit(event="shadowed", file=candidate, release=release_of(candidate), preloaded=preloaded is not None)
            return None
    if spec["device"] != "cpu":
        index = int(spec["device"])
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            emit(event="error", kind="device", message=f"CUDA device {index} is not available to torch {torch.__version__} in {sys.executable}")
            return None
        environment["device_name"] = torch.cuda.get_device_name(index)
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    emit(event="environment", **environment)
    return environment


def limit_memory(limit: int | None) -> None:
    """Cap this process's data (heap and anonymous mappings) at `limit` bytes: past it an allocation fails with an
    error the check reports, instead of the kernel killing the process. CPU only (the parent passes None for CUDA,
    whose driver maps memory of its own); never raises a limit that is already lower."""
    if not limit:
        return
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft == resource.RLIM_INFINITY or soft > limit:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def main(argv: list[str]) -> int:
    emit = event_stream()
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    tree = Path(spec["tree"]).resolve()
    if open_fork(spec, emit) is None:
        return 0
    limit_memory(spec.get("memory"))
    with tempfile.TemporaryDirectory(prefix="ultrapatch-verify-") as work:
        os.chdir(work)  # anything the fork writes (exports, settings of a run) lands here, not in the user's folder
        session = Session(tree, spec["device"], spec.get("export"), Path(work), emit)
        for line in sys.stdin:  # one model a line, handed out as earlier ones finish; the end of input ends the run
            if line.strip():
                emit(event="model", **session.verify(json.loads(line)))
    emit(event="done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
