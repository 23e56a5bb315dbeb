"""`ultrapatch bench`: each patched model against its family's stock model at the same scale, timed in the fork's
own interpreter.

    python launch.py bench SPEC.json

SPEC names the tree, the device, precision, batch sizes, image size, rounds, whether to time ONNX, where to draw the
plot, and the models (each with its stock model). Events go to stdout, one JSON line each, as runner.py's do:
`environment`, then one `pair` per model as it finishes, then `done`; progress lines go to stderr.

Every figure is measured the same way for both models of a pair, and the two are interleaved: round after round,
one run of each, in alternating order, so that whatever the machine does meanwhile (another job, a clock that
throttles) lands on both and cancels out of their ratio. Times are medians of the rounds, after warm-up; on a GPU the
device is synchronised before every clock reading.

Each ratio comes with a 95% interval, from a bootstrap over the paired rounds (round k of the patched model with
round k of the stock one, resampled together), so that a verdict is said only where the rounds support it.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from .data import synthetic_batch
from .i18n import _
from .process import limit_memory, start

WARMUP = 2
RESAMPLES = 2000  # bootstrap resamples of the paired rounds, for each ratio's interval


PROGRESS = "[bench] "  # how this script's progress lines stand out from the fork's own logging on stderr


def say(line: str) -> None:
    print(PROGRESS + line, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, spec: dict, work: Path):
        import torch

        self.torch = torch
        self.spec = spec
        self.work = work
        self.device = torch.device("cpu" if spec["device"] == "cpu" else f"cuda:{spec['device']}")
        self.half = bool(spec.get("half")) and self.device.type == "cuda"
        self.dtype = torch.float16 if self.half else torch.float32
        self.imgsz = int(spec["imgsz"])
        self.batches = sorted(set(int(b) for b in spec["batches"]))
        self.default_rounds = int(spec.get("rounds") or 10)
        self.budget = spec.get("budget")  # seconds a pair may take with the default rounds (None: the user's rounds)
        self.use_rounds(self.default_rounds)

    def use_rounds(self, rounds: int) -> None:
        self.rounds = rounds
        self.few = max(3, rounds // 2)  # rounds at the large batch and of the training step

    # -- clocks ------------------------------------------------------------------------------------------------------
    def sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def clock(self, run) -> float:
        self.sync()
        start = time.perf_counter()
        run()
        self.sync()
        return time.perf_counter() - start

    def interleaved(self, runs: dict, rounds: int) -> dict:
        """{name: seconds of each round} for callables timed round after round, one run of each, alternating the
        order every round; after WARMUP runs of each."""
        for run in runs.values():
            for _warm in range(WARMUP):
                run()
        times = {name: [] for name in runs}
        names = list(runs)
        for r in range(rounds):
            for name in names if r % 2 == 0 else reversed(names):
                times[name].append(self.clock(runs[name]))
        return times

    # -- the models --------------------------------------------------------------------------------------------------
    def build(self, name: str, builder: str):
        import ultralytics

        wrapper = getattr(ultralytics, builder)(name)
        return wrapper, wrapper.model

    def images(self, n: int):
        generator = self.torch.Generator().manual_seed(n)
        return self.torch.rand(n, 3, self.imgsz, self.imgsz, generator=generator).to(self.device, self.dtype)

    def inference_model(self, model):
        """The model as predict runs it: fused, in eval mode, on the device, in the benchmark's precision."""
        import copy

        fused = copy.deepcopy(model).to(self.device).eval()
        if hasattr(fused, "fuse"):
            fused = fused.fuse(verbose=False)
        return fused.to(self.dtype)

    def peak_memory(self, model, image) -> float:
        """MB allocated at the peak of one inference: CUDA's own counter on a GPU; on the CPU, the running sum of the
        allocations and frees torch's profiler records for each operator."""
        torch = self.torch
        with torch.no_grad():
            if self.device.type == "cuda":
                self.sync()
                torch.cuda.reset_peak_memory_stats(self.device)
                base = torch.cuda.memory_allocated(self.device)
                model(image)
                self.sync()
                return (torch.cuda.max_memory_allocated(self.device) - base) / 2**20
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
                model(image)
        events = sorted(
            (e.time_range.start, e.self_cpu_memory_usage) for e in prof.events() if e.self_cpu_memory_usage
        )
        level = peak = 0
        for _start, change in events:
            level += change
            peak = max(peak, level)
        return peak / 2**20

    def training_step(self, model, task: str, builder: str, batch_size: int):
        """One optimiser step on a synthetic batch: forward with the loss, backward, SGD step."""
        import copy

        from ultralytics.cfg import get_cfg

        torch = self.torch
        trained = copy.deepcopy(model).to(self.device).float().train()
        trained.args = get_cfg()
        trained.nc = trained.yaml.get("nc", 80)
        batch = synthetic_batch(torch, task, (self.imgsz, self.imgsz), images=batch_size)
        batch = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in batch.items()}
        optimizer = torch.optim.SGD([p for p in trained.parameters() if p.requires_grad], lr=1e-6)

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = trained.loss(batch)[0]
            loss.sum().backward()
            optimizer.step()

        return step

    def onnx_session(self, wrapper, batch: int):
        """The fork's own ONNX export of the model (dynamic batch), in onnxruntime on the CPU (or CUDA when
        onnxruntime has it and the device is a GPU)."""
        import onnxruntime

        path = wrapper.export(format="onnx", imgsz=self.imgsz, dynamic=True, batch=batch, simplify=False, verbose=False)
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        session = onnxruntime.InferenceSession(str(path), providers=providers)
        name = session.get_inputs()[0].name
        return lambda array: session.run(None, {name: array})

    # -- one pair ----------------------------------------------------------------------------------------------------
    def pair(self, spec: dict) -> dict:
        from ultralytics.utils.torch_utils import get_flops

        torch = self.torch
        result = {"name": spec["name"], "stock_model": spec["stock"], "task": spec["task"], "builder": spec["builder"]}
        built = {}
        for role in ("patched", "stock"):
            name = spec["name"] if role == "patched" else spec["stock"]
            wrapper, model = self.build(name, spec["builder"])
            built[role] = (wrapper, model)
            result[role] = {
                "model": name,
                "params": sum(p.numel() for p in model.parameters()),
                "gflops": round(float(get_flops(model, self.imgsz) or 0.0), 3),
            }
        say(_("  {model} and {stock}: built").format(model=spec["name"], stock=spec["stock"]))
        inference = {role: self.inference_model(model) for role, (_, model) in built.items()}
        small, large = self.batches[0], self.batches[-1]
        with torch.no_grad():
            one, many = self.images(small), self.images(large)
            self.use_rounds(self.default_rounds)
            per_image = sum(self.clock(lambda m=m: m(one)) for m in inference.values()) / small  # both models, once
            estimate = self.estimate(per_image, small, large)
            if self.budget and estimate > self.budget:  # a large model: fewer rounds, down to 6, to stay near the budget
                self.use_rounds(max(6, int(self.default_rounds * self.budget / estimate)))
                estimate = self.estimate(per_image, small, large)
            result["rounds"] = self.rounds
            say(_("  {model}: about {seconds:.0f} s for this pair ({rounds} rounds)").format(model=spec["name"], seconds=estimate, rounds=self.rounds))
            for role, model in inference.items():
                result[role]["peak_memory_mb"] = round(self.peak_memory(model, one), 1)
            times = self.interleaved({role: (lambda m=m: m(one)) for role, m in inference.items()}, self.rounds)
            for role, t in times.items():
                result[role]["latency_ms"] = stats([1000 * x for x in t])
                result[role]["latency_batch"] = small
            say(_("  {model}: latency at batch {batch} timed").format(model=spec["name"], batch=small))
            if large != small:
                times = self.interleaved({role: (lambda m=m: m(many)) for role, m in inference.items()}, self.few)
            for role, t in times.items():
                result[role]["throughput"] = stats([large / x for x in t])
                result[role]["throughput_batch"] = large
        say(_("  {model}: throughput at batch {batch} timed").format(model=spec["name"], batch=large))
        train_batch = large
        steps = {role: self.training_step(model, spec["task"], spec["builder"], train_batch) for role, (_, model) in built.items()}
        times = self.interleaved(steps, self.few)
        for role, t in times.items():
            result[role]["train_throughput"] = stats([train_batch / x for x in t])
            result[role]["train_batch"] = train_batch
        say(_("  {model}: a training step at batch {batch} timed").format(model=spec["name"], batch=train_batch))
        if self.spec.get("onnx"):
            sessions = {role: self.onnx_session(wrapper, large) for role, (wrapper, _) in built.items()}
            one_np, many_np = self.images(small).float().cpu().numpy(), self.images(large).float().cpu().numpy()
            times = self.interleaved({r: (lambda s=s: s(one_np)) for r, s in sessions.items()}, self.rounds)
            for role, t in times.items():
                result[role]["onnx_latency_ms"] = stats([1000 * x for x in t])
            times = self.interleaved({r: (lambda s=s: s(many_np)) for r, s in sessions.items()}, self.few)
            for role, t in times.items():
                result[role]["onnx_throughput"] = stats([large / x for x in t])
            say(_("  {model}: ONNX timed").format(model=spec["name"]))
        result["ratio"] = ratios(result["patched"], result["stock"])
        result["interval"] = intervals(result["patched"], result["stock"])
        return result

    def estimate(self, per_image: float, small: int, large: int) -> float:
        """Seconds this pair's timing will take at the current rounds, from the seconds one image takes through both
        models: the rounds at both batch sizes, and training steps counted as three forward passes each."""
        inference_runs = (WARMUP + self.rounds) * small + (WARMUP + self.few) * large * (large != small)
        training_runs = (WARMUP + self.few) * large * 3
        onnx_runs = ((WARMUP + self.rounds) * small + (WARMUP + self.few) * large) if self.spec.get("onnx") else 0
        return per_image * (inference_runs + training_runs + onnx_runs)


def stats(values: list[float]) -> dict:
    """The median, with the spread: the lowest and highest value, the quartiles and the interquartile range; and the
    rounds themselves, in order (round k of a pair's two models ran back to back)."""
    ordered = sorted(values)
    quartiles = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else [ordered[0]] * 3
    return {
        "median": round(statistics.median(ordered), 4),
        "min": round(ordered[0], 4),
        "max": round(ordered[-1], 4),
        "q1": round(quartiles[0], 4),
        "q3": round(quartiles[2], 4),
        "iqr": round(quartiles[2] - quartiles[0], 4),
        "runs": len(ordered),
        "rounds": [round(v, 5) for v in values],
    }


def interval(patched: list[float], stock: list[float], resamples: int = RESAMPLES, seed: int = 0) -> list[float]:
    """The 95% bootstrap interval of median(patched) / median(stock) over paired rounds: the rounds are resampled
    with replacement as pairs (round k of both), so that what the machine did in round k stays with both."""
    pairs = list(zip(patched, stock))
    generator = random.Random(seed)
    found = []
    for _resample in range(resamples):
        sample = [pairs[generator.randrange(len(pairs))] for _ in pairs]
        found.append(statistics.median(p for p, _s in sample) / statistics.median(s for _p, s in sample))
    found.sort()
    return [round(found[int(0.025 * (resamples - 1))], 3), round(found[int(0.975 * (resamples - 1))], 3)]


def intervals(patched: dict, stock: dict) -> dict:
    """The interval of every timed figure's ratio, patched / stock."""
    return {
        key: interval(value["rounds"], stock[key]["rounds"])
        for key, value in patched.items()
        if isinstance(value, dict) and "rounds" in value and isinstance(stock.get(key), dict)
    }


def ratios(patched: dict, stock: dict) -> dict:
    """Patched over stock for every figure both have (a time above 1 is slower, a throughput below 1 is slower)."""
    result = {}
    for key, value in patched.items():
        other = stock.get(key)
        if isinstance(value, dict) and isinstance(other, dict):
            value, other = value["median"], other["median"]
        if isinstance(value, (int, float)) and isinstance(other, (int, float)) and other and key.endswith(
            ("params", "gflops", "memory_mb", "latency_ms", "throughput")
        ):
            result[key] = round(value / other, 3)
    return result


def failure(exc: BaseException, ceiling: int | None) -> str:
    """Why a pair could not be timed: running out of memory said as such, with the ceiling and what to do."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MemoryError) or "can't allocate memory" in text or "out of memory" in text.lower():
        limit = _(" (this process may hold {gib:.1f} GiB, from the memory free when bench started)").format(gib=ceiling / 2**30) if ceiling else ""
        return _("out of memory{limit}: give smaller batch sizes with --batch").format(limit=limit)
    return text[:400]


def plot(pairs: list[dict], path: str, device: str) -> None:
    """Two panels. Left: each model's latency beside its stock twin's, both named, as the median and the interquartile
    range (one stall does not stretch the scale, which spans the quartiles, so the medians stand apart). Right: latency
    against parameters for every model, patched (filled) and stock (open) joined by a line: the trade-off."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batch = pairs[0]["patched"]["latency_batch"] if pairs else 1
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 1.6 + 0.9 * max(2, len(pairs))), gridspec_kw={"width_ratios": [3, 2]})
    labels, lows, highs = [], [], []
    for k, pair in enumerate(pairs):
        colour = f"C{k % 10}"
        for j, role in enumerate(("patched", "stock")):
            figures = pair[role]["latency_ms"]
            y = 2 * k + j * 0.8
            name = Path(pair[role]["model"]).stem + ("" if role == "patched" else " (stock)")
            labels.append((y, name))
            q1, q3 = figures.get("q1", figures["median"]), figures.get("q3", figures["median"])
            left.plot([q1, q3], [y, y], color=colour, linewidth=6, alpha=0.35 if role == "stock" else 0.6, solid_capstyle="butt")
            left.plot(figures["median"], y, marker="o" if role == "patched" else "s", color=colour,
                      markerfacecolor=colour if role == "patched" else "white", markersize=8)  # fmt: skip
            left.annotate(f"{figures['median']:.1f} ms", (figures["median"], y), xytext=(0, 7), textcoords="offset points",
                          ha="center", fontsize=7)  # fmt: skip
            lows.append(q1)
            highs.append(q3)
        ratio, low_high = pair["ratio"].get("latency_ms"), pair.get("interval", {}).get("latency_ms")
        if ratio is not None:
            said = f"x{ratio:.2f}" + (f" [{low_high[0]:.2f}, {low_high[1]:.2f}]" if low_high else "")
            left.annotate(said, (1.0, 2 * k + 0.4), xycoords=("axes fraction", "data"), xytext=(4, 0),
                          textcoords="offset points", va="center", fontsize=8, color=colour)  # fmt: skip
    if lows:
        span = max(highs) - min(lows) or max(highs) * 0.1 or 1.0
        left.set_xlim(max(0.0, min(lows) - 0.15 * span), max(highs) + 0.15 * span)
    left.set_yticks([y for y, _ in labels], [name for _, name in labels], fontsize=8)
    left.margins(y=0.2)  # room for the median's label above the top row
    left.invert_yaxis()
    left.set_xlabel(f"latency at batch {batch}, ms (median; bar: interquartile range)")
    left.set_title("each model beside its stock twin (ratio and 95% interval at the right)", fontsize=9)
    left.grid(True, axis="x", alpha=0.3)
    for k, pair in enumerate(pairs):
        colour = f"C{k % 10}"
        p, s = pair["patched"], pair["stock"]
        xs, ys = [p["params"] / 1e6, s["params"] / 1e6], [p["latency_ms"]["median"], s["latency_ms"]["median"]]
        right.plot(xs, ys, color=colour, linestyle=":", linewidth=1)
        right.scatter(xs[:1], ys[:1], color=colour, marker="o", zorder=3)
        right.scatter(xs[1:], ys[1:], edgecolors=colour, facecolors="white", marker="s", zorder=3)
        right.annotate(Path(p["model"]).stem, (xs[0], ys[0]), xytext=(4, 4), textcoords="offset points", fontsize=7, color=colour)
    right.set_xlim(left=0)
    right.set_ylim(bottom=0)  # the trade-off at its true proportions: from zero
    right.set_xlabel("parameters (millions)")
    right.set_ylabel(f"latency at batch {batch}, ms")
    right.set_title("trade-off: filled patched, open stock", fontsize=9)
    right.grid(True, alpha=0.3)
    figure.suptitle(f"ultrapatch bench on {device}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str]) -> int:
    emit, spec, environment = start(argv)
    if environment is None:
        return 0
    limit_memory(spec.get("memory"))
    pairs = []
    with tempfile.TemporaryDirectory(prefix="ultrapatch-bench-") as work:
        import os

        os.chdir(work)  # the ONNX exports, and anything else the fork writes, land here
        bench = Bench(spec, Path(work))
        for model in spec["models"]:
            say(_("{model} against {stock}").format(model=model["name"], stock=model["stock"]))
            try:
                result = bench.pair(model)
            except Exception as exc:  # noqa: BLE001 - a model that cannot be timed is reported, the others go on
                result = {"name": model["name"], "stock_model": model["stock"], "error": failure(exc, spec.get("memory"))}
            pairs.append(result)
            emit(event="pair", **result)
    if spec.get("plot"):
        plot([p for p in pairs if "error" not in p], spec["plot"], environment.get("device_name", spec["device"]))
    emit(event="done")
    return 0

