"""The session of `ultrapatch verify` in the fork's interpreter: the fork, the device, and what has been learned about
each stock model; it runs the table of checks (`checks/`) on one model after another, and the stock control.

Every check passes, fails with a reason, or is skipped with a reason. A failed check is repeated on the family's stock
model (built from the fork's own YAML at the same scale): if the stock model fails it too, the failure belongs to the
environment, not to the patch, and the verdict keeps the stock model's own reason (`control`). A check whose stock
model fails with a known limit of the release (the checkpoint check under a torch that the release's loader cannot
use) is skipped with that reason. These decisions read the verdicts' status and cause, never their words.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import time
from copy import deepcopy
from pathlib import Path

from .checks import CHECKS, by_name
from .checks.base import Cause, Check, Finding, KnownLimit, ModelContext, Skipped, Status, Verdict
from .checks.build import Build
from .checks.embed import COMPARE_SIZE
from .common import on_meta, shapes
from .data import SIZES, head_inputs, synthetic_batch, synthetic_dataset
from . import forkyaml
from .explain import explain, missing_package
from .layers import scale_words

STOCK_SIZE = (640, 480)  # the size at which the stock model's output shapes are the yardstick


class _SetUp(Exception):
    """Raised by a trainer callback once the trainer has set the model up: what the freeze check needs is there."""


class Session:
    """The fork, the device, and what has been learned about each stock model."""

    def __init__(self, tree: Path, device: str, export: str | None, workdir: Path, emit=None, installers=None):
        import torch
        import ultralytics

        self.torch = torch
        self.ultralytics = ultralytics
        self.tree = tree
        self.device = torch.device("cpu" if device == "cpu" else f"cuda:{device}")
        self.export = export
        self.workdir = workdir
        self.stock: dict[str, dict] = {}
        self.stock_checks: dict[tuple[str, str], Verdict] = {}
        self.datasets: dict[str, str] = {}  # the synthetic validation sets written so far: what val(data=...) takes
        self.emit = emit  # `checking` events go to the parent, which reports a model whose process dies in a check
        self.installers: dict[str, str] = installers or {}  # module name: the apply command that installs it
        self._reloader = None

    # -- the model's YAML, as the fork reads it -----------------------------------------------------------------------
    def model_yaml(self, spec: dict):
        """The YAML `spec`'s model is built from, parsed with parse_model's numbering (the file the fork resolves its
        name to; the spec's own file where the fork cannot read it, which the yaml check then explains)."""
        try:
            file = forkyaml.resolve(spec["name"])
        except Exception:  # noqa: BLE001 - not a YAML the fork reads: its problems are the finding
            file = self.tree / spec["yaml"]
        return forkyaml.model_yaml(file, spec["name"], frozenset(self.installers))

    def defines(self, name: str) -> bool:
        return forkyaml.defines(name)

    def missing_hint(self, name: str) -> str:
        return forkyaml.missing_hint(name, self.installers)

    def stock_levels(self, spec: dict) -> int | None:
        return forkyaml.stock_levels(spec.get("stock"))

    def reloader(self):
        """The reload check's new process of the fork's interpreter (one per verification process)."""
        if self._reloader is None:
            from .reload import Reloader

            self._reloader = Reloader(self.tree, "cpu" if self.device.type == "cpu" else str(self.device.index or 0), self.workdir)
        return self._reloader

    def close(self) -> None:
        if self._reloader is not None:
            self._reloader.close()

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

    def training_step(self, model, task: str, images: int = 3) -> dict:
        """Set `model` up for a training step as the trainer does, and give it a synthetic batch of `images`."""
        from .checks.train import TRAIN_SIZE

        model.train()
        self.prepare_training(model)
        model.zero_grad(set_to_none=True)
        return self.to_device(synthetic_batch(self.torch, task, TRAIN_SIZE, images=images))

    def train_forward(self, model, builder: str, task: str, h: int, w: int, device=None):
        """A training-mode forward of two images (one is the batch1 check's case): RT-DETR's needs targets, so its
        forward is its loss."""
        if builder == "RTDETR":
            batch = self.to_device(synthetic_batch(self.torch, task, (h, w), images=2))
            return lambda: model.loss(batch)
        image = self.image(h, w, n=2, device=device)
        return lambda: model(image)

    def meta_model(self, ctx: ModelContext):
        """The model built again from its YAML on torch's meta device (shapes, no data, no arithmetic), once per model:
        what the shape-only checks run on. Raises where a module cannot be built there."""
        if "meta" not in ctx.notes:
            model = ctx.model
            with on_meta(self.torch, build=True):
                ctx.notes["meta"] = type(model)(deepcopy(model.yaml), nc=model.yaml.get("nc"), verbose=False).eval()
        return ctx.notes["meta"]

    def observe_model(self, ctx: ModelContext) -> dict:
        """`observe` on the model's meta twin: the forward and strides checks compare shapes, which the meta device
        gives without the arithmetic (a 640x640 forward of YOLOv3 takes seconds; its shapes, milliseconds); the real
        model where the meta device cannot run it (RT-DETR's training forward computes its matching on data)."""
        builder, task = ctx.spec["builder"], ctx.spec["task"]
        try:
            meta = self.meta_model(ctx)
            with on_meta(self.torch, build=False):
                seen = self.observe(meta, builder, task, train=False)
        except Exception:  # noqa: BLE001 - what the meta device cannot do runs for real
            return self.observe(ctx.model, builder, task)
        try:
            with on_meta(self.torch, build=False):
                trained = self.observe(meta, builder, task, evaluate=False)
        except Exception:  # noqa: BLE001
            trained = self.observe(ctx.model, builder, task, evaluate=False)
        for key in ("shapes", "head_strides"):
            seen[key].update(trained[key])
        return seen

    def observe(self, model, builder: str, task: str, sizes=SIZES, train: bool = True, evaluate: bool = True) -> dict:
        """Output shapes and the strides of the maps the head receives, at every size, in eval (unless `evaluate` is
        false) and train mode (unless `train` is false)."""
        torch = self.torch
        device = next(model.parameters()).device
        seen = {"stride": [float(s) for s in getattr(model, "stride", [])], "shapes": {}, "head_strides": {}}
        model.eval()
        with torch.no_grad():
            for h, w in sizes if evaluate else ():
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
            raise Finding(f"the trainer froze nothing for freeze={freeze}")
        return found

    def dataset(self, task: str, kpt_shape) -> str:
        """The synthetic validation set for a task (and keypoint shape), written once per process."""
        name = task + ("-{}x{}".format(*kpt_shape) if kpt_shape else "")
        if name not in self.datasets:
            self.datasets[name] = synthetic_dataset(self.workdir / "data" / name, task, kpt_shape)
        return self.datasets[name]

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
        if not spec.get("stock"):
            return {}
        return self.stock.get(f"{spec['stock']} nc={spec.get('nc')}", {})

    def stock_baseline(self, spec: dict) -> dict:
        """Build the family's stock model once: its size, output shapes and strides are the yardstick."""
        if not spec.get("stock"):  # a YAML of the user's whose family has no stock model: no control
            return {}
        key = f"{spec['stock']} nc={spec.get('nc')}"
        if key not in self.stock:
            info: dict = {"name": spec["stock"]}
            try:  # on the meta device: a yardstick of shapes needs no arithmetic (Darknet-53 is ~280 GFLOPs a pass)
                info.update(self.measure_stock(spec, meta=True))
            except Exception:  # noqa: BLE001 - an operation the meta device lacks: measure it for real
                try:
                    info.update(self.measure_stock(spec, meta=False))
                except Exception as exc:  # noqa: BLE001 - a stock model that will not build is reported, not raised
                    info["error"], info["cause"] = explain(exc, self.tree)
            self.stock[key] = info
        return self.stock[key]

    def measure_stock(self, spec: dict, meta: bool) -> dict:
        """The stock model's layers, parameters, GFLOPs, stride, and output shapes at STOCK_SIZE in eval and train mode
        (RT-DETR's training forward is its loss: eval only)."""
        ctx = ModelContext(spec, model=self.build_stock(spec, meta=meta).model)
        with on_meta(self.torch, build=False) if meta else contextlib.nullcontext():
            with contextlib.suppress(Finding):
                Build().measure(ctx, self)
            observed = self.observe(ctx.model, spec["builder"], spec["task"], sizes=[STOCK_SIZE], train=spec["builder"] != "RTDETR")
        return {"layers": ctx.layers, "params": ctx.params, "gflops": ctx.gflops, "observed": observed}

    def stock_verdict(self, spec: dict, check: Check) -> Verdict:
        """Run one check on a fresh stock model (after the checks whose results it reads): its verdict."""
        if not spec.get("stock"):
            return Verdict(Status.PASS, "no stock model to compare with")
        key = (f"{spec['stock']} nc={spec.get('nc')}", check.name)
        if key not in self.stock_checks:
            ctx = ModelContext({**spec, "name": spec["stock"]})
            try:
                ctx.wrapper = self.build_stock(spec)
                ctx.model = ctx.wrapper.model
                for earlier in check.needs:
                    by_name(earlier).run(ctx, self)
                self.stock_checks[key] = Verdict(Status.PASS, check.run(ctx, self))
            except Skipped as exc:
                self.stock_checks[key] = Verdict(Status.SKIP, str(exc), Cause.NOT_APPLICABLE)
            except Finding as exc:
                self.stock_checks[key] = Verdict(Status.FAIL, str(exc), Cause.FINDING)
            except KnownLimit as exc:
                self.stock_checks[key] = Verdict(Status.FAIL, str(exc), Cause.KNOWN_LIMIT)
            except Exception as exc:  # noqa: BLE001
                self.stock_checks[key] = Verdict(Status.FAIL, *explain(exc, self.tree))
        return self.stock_checks[key]

    # -- one model ---------------------------------------------------------------------------------------------------
    def verify(self, spec: dict) -> dict:
        """Every check of the table on one model, in order: the model's report."""
        started = time.perf_counter()
        self.torch.manual_seed(0)
        ctx = ModelContext(spec)
        verdicts: dict[str, dict] = {}
        stock: dict = {}
        stock_seconds = 0.0
        blocked = None  # why the remaining checks cannot run (the YAML's structure, a model that did not build)
        for check in CHECKS:
            t = time.perf_counter()
            if self.emit is not None:
                self.emit(event="checking", check=check.name, checks=verdicts, seconds=round(t - started, 2))
            if blocked:
                verdict = Verdict(Status.SKIP, blocked, Cause.NOT_APPLICABLE)
            elif check.name == "build":
                verdict = self.judge(check, ctx)
                if verdict.status is Status.FAIL:  # "environment" goes on: the stock model fails it too
                    ctx.model, ctx.spec = None, spec
                t_stock = time.perf_counter()
                stock = self.stock_baseline(ctx.spec)  # after the build: the stock model gets the same class count
                stock_seconds = round(time.perf_counter() - t_stock, 2)
                t += time.perf_counter() - t_stock
                blocked = "the model did not build" if ctx.model is None else None
            else:
                verdict = self.judge(check, ctx)
                if check.name == "yaml" and verdict.status is Status.FAIL:
                    blocked = "the YAML has structural mistakes (see the yaml check): nothing was built"
            verdicts[check.name] = verdict.to_json(round(time.perf_counter() - t, 2))
        report = {
            "name": spec.get("label") or spec["name"], "yaml": spec["yaml"], "family": spec["family"], "task": spec["task"],
            "backbone": spec["variant"], "ok": all(v["status"] != "fail" for v in verdicts.values()),
            "layers": ctx.layers, "params": ctx.params, "gflops": ctx.gflops,
            "stock": {k: stock.get(k) for k in ("name", "layers", "params", "gflops")},
            "checks": verdicts, "stock_seconds": stock_seconds,
        }  # fmt: skip
        if ctx.fused_params is not None:
            report["fused_params"] = ctx.fused_params
        report["seconds"] = round(time.perf_counter() - started, 2)
        return report

    def judge(self, check: Check, ctx: ModelContext) -> Verdict:
        """One check on the model, and its verdict, with the stock control for a failure."""
        why = check.applies(ctx, self)
        if why is not None:
            return Verdict(Status.SKIP, why, Cause.NOT_APPLICABLE)
        try:
            return Verdict(Status.PASS, check.run(ctx, self))
        except Skipped as exc:
            return Verdict(Status.SKIP, str(exc), Cause.NOT_APPLICABLE)
        except Finding as exc:
            verdict = Verdict(Status.FAIL, str(exc), Cause.FINDING)
        except KnownLimit as exc:
            verdict = Verdict(Status.FAIL, str(exc), Cause.KNOWN_LIMIT)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a reason
            package = missing_package(exc)
            if package:  # a dependency this interpreter lacks (timm for a TimmBackbone, onnxscript for an export)
                return Verdict(Status.ENVIRONMENT, (
                    f"{package} is not installed in {sys.executable}, and this check needs it: "
                    f"`{sys.executable} -m pip install {package}`"
                ), Cause.ENVIRONMENT)  # fmt: skip
            condition = scale_words(ctx.doc, ctx.scale) if check.name == "build" else ""
            verdict = Verdict(Status.FAIL, *explain(exc, self.tree, ctx.spec["variant"], ctx.doc, condition))
        return self.controlled(check, ctx, verdict)

    def controlled(self, check: Check, ctx: ModelContext, verdict: Verdict) -> Verdict:
        """A failure seen again on the stock model is the environment's; a known limit there skips the check."""
        control = check.control(ctx, self)
        if control.status is not Status.FAIL:
            return verdict
        if control.cause is Cause.KNOWN_LIMIT and check.skips_on_known_limit:
            return Verdict(Status.SKIP, control.reason, Cause.KNOWN_LIMIT)
        stock = ctx.spec["stock"]
        return Verdict(Status.ENVIRONMENT, f"the stock {stock} fails this check too: {control.reason}", Cause.ENVIRONMENT,
                       control=control.reason)  # fmt: skip


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
