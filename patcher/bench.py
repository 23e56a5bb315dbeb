"""`ultrapatch bench`: how fast each patched model is against its family's stock model, on this device.

The timing runs in the fork's own interpreter (`patcher/fork/bench.py`, as verify's checks do); this side picks the
models, starts it, shows its progress, and turns its figures into a table, a JSON report, and the plot's file.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Callable

from patcher.errors import UltrapatchError
from patcher.i18n import N_, _
from patcher.launcher import command, fork_env
from patcher.tree import Tree
from patcher.verify import ModelSpec, shadow_message, unique_log

PROGRESS = "[bench] "  # the prefix of the script's progress lines


def run(
    tree: Tree,
    specs: list[ModelSpec],
    python: str,
    device: str,
    half: bool,
    batches: list[int],
    imgsz: int,
    onnx: bool,
    rounds: int,
    plot: Path | None,
    progress: Callable[[str], None] = lambda line: None,
    auto_rounds: bool = False,
) -> dict:
    """Time every model of `specs` against its stock model; the report `--json` prints."""
    memory = memory_ceiling(device)
    models = [{"name": s.name, "stock": s.stock, "task": s.task, "builder": s.builder} for s in specs]
    spec = {
        "tree": str(tree.root),
        "device": device,
        "half": half,
        "batches": batches,
        "imgsz": imgsz,
        "onnx": onnx,
        "rounds": rounds,
        "plot": str(plot.resolve()) if plot else None,
        "models": models,
        "memory": memory,
        "budget": PAIR_BUDGET if auto_rounds else None,
    }
    with tempfile.TemporaryDirectory(prefix="ultrapatch-bench-") as scratch:
        spec_file = Path(scratch) / "spec.json"
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        log = unique_log("bench")
        with open(log, "w", encoding="utf-8") as stderr_log:
            process = subprocess.Popen(
                command(python, "bench", spec_file),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=fork_env(scratch), cwd=scratch,
            )  # fmt: skip

            def relay() -> None:  # the script's progress lines, as they come; the fork's own logging to the log file
                for line in process.stderr:
                    stderr_log.write(line)
                    if line.startswith(PROGRESS):
                        progress(line[len(PROGRESS) :].rstrip())

            relay_thread = threading.Thread(target=relay, daemon=True)
            relay_thread.start()
            environment, pairs = {}, []
            for line in process.stdout:
                event = json.loads(line)
                kind = event.pop("event")
                if kind == "environment":
                    environment = event
                    progress(
                        _("timing {count} model(s) against stock with {executable} (torch {torch}, Ultralytics {release}, device {device})").format(
                            count=len(models), executable=event["executable"], torch=event["torch"], release=event["release"],
                            device=event.get("device_name", device),
                        )
                    )  # fmt: skip
                elif kind == "shadowed":
                    process.kill()
                    raise UltrapatchError(shadow_message(tree, python, event))
                elif kind == "error":
                    process.kill()
                    raise UltrapatchError(event["message"] + ".")
                elif kind == "pair":
                    pairs.append(event)
            process.wait()
            relay_thread.join(timeout=5)
        if process.returncode != 0 or len(pairs) != len(models):
            tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
            raise UltrapatchError(
                _("the benchmark process in {python} stopped (exit {code}); the last lines of its log ({log}):").format(
                    python=python, code=process.returncode, log=log
                )
                + "\n  "
                + "\n  ".join(tail)
            )
    return {
        "release": environment.get("release"),
        "torch": environment.get("torch"),
        "python": environment.get("python"),
        "device": device,
        "device_name": environment.get("device_name", "cpu" if device == "cpu" else device),
        "threads": environment.get("threads"),
        "precision": "fp16" if half and device != "cpu" else "fp32",
        "imgsz": imgsz,
        "batches": batches,
        "rounds": rounds,
        "memory_ceiling_gb": round(memory / 2**30, 1) if memory else None,
        "pairs": pairs,
        "plot": str(plot) if plot else None,
    }


# A ratio's 95% interval must clear 1 by this much before a difference is called one: closer than 3%, two models are
# not told apart by a benchmark of a few rounds on a shared machine.
MARGIN = 0.03
CPU_BATCHES, GPU_BATCHES = [1, 4], [1, 32]  # the defaults: under a minute per model pair on a 2-core CPU at 640
CPU_ROUNDS, GPU_ROUNDS = 16, 10
PAIR_BUDGET = 60  # seconds: with the default rounds, a heavier pair (RT-DETR-l) gets fewer, down to 6
TIMED = (("latency_ms", N_("latency"), False), ("throughput", N_("throughput"), True), ("train_throughput", N_("training"), True))


def direction(low: float, high: float, higher_is_faster: bool) -> str | None:
    """'faster', 'slower', or None (no clear difference) for a ratio whose interval is [low, high]."""
    if low > 1 + MARGIN:
        return "faster" if higher_is_faster else "slower"
    if high < 1 - MARGIN:
        return "slower" if higher_is_faster else "faster"
    return None


def judged(pair: dict) -> dict[str | None, list[str]]:
    """What the intervals of latency, throughput and training support: {'slower': [...], 'faster': [...], None: [...]}
    (None: no clear difference), each with the figures' names."""
    ratio, bounds = pair.get("ratio", {}), pair.get("interval", {})
    found: dict[str | None, list[str]] = {}
    for key, what, higher_is_faster in TIMED:
        if key in ratio and key in bounds:
            found.setdefault(direction(*bounds[key], higher_is_faster), []).append(what)
    return found


def verdict(pair: dict) -> str:
    """The headline of a row: the latency ratio with its interval, and what the intervals support: slower, faster, or
    no clear difference."""
    if "error" in pair:
        return _("could not be timed: {error}").format(error=pair["error"])
    ratio, bounds, found = pair["ratio"], pair.get("interval", {}), judged(pair)
    head = _("{ratio:.2f}x stock's latency").format(ratio=ratio.get("latency_ms"))
    head += f" [{bounds['latency_ms'][0]:.2f}, {bounds['latency_ms'][1]:.2f}]" if "latency_ms" in bounds else ""
    said = []
    if found.get("slower"):
        said.append(_("SLOWER than stock in {figures}").format(figures=_listed(found["slower"])))
    if found.get("faster"):
        said.append(_("faster in {figures}").format(figures=_listed(found["faster"])))
    if found.get(None):
        said.append(_("no clear difference in {figures}").format(figures=_listed(found[None])))
    return _("{head}: {said} (on this device)").format(head=head, said=_("; ").join(said) or _("no clear difference"))


def _rounds(report: dict) -> str:
    """The rounds the pairs were timed with: the same for all, or per pair where a heavy one got fewer."""
    used = [p.get("rounds", report["rounds"]) for p in report["pairs"] if "error" not in p]
    return str(used[0]) if len(set(used)) == 1 else f"{min(used)}-{max(used)}" if used else str(report["rounds"])


def _listed(words: list[str]) -> str:
    words = [_(w) for w in words]
    return words[0] if len(words) == 1 else _("{first} and {last}").format(first=_(", ").join(words[:-1]), last=words[-1])


def defaults(device: str, batches: list[int] | None, rounds: int | None) -> tuple[list[int], int]:
    """The batch sizes and rounds for `device` where the user gave none: small on the CPU, larger on a GPU."""
    cpu = device == "cpu"
    return batches or (CPU_BATCHES if cpu else GPU_BATCHES), rounds or (CPU_ROUNDS if cpu else GPU_ROUNDS)


def free_memory() -> int | None:
    """Bytes of memory available now (Linux: MemAvailable), or None where that is unknown."""
    import re

    try:
        found = re.search(r"^MemAvailable:\s+(\d+) kB", Path("/proc/meminfo").read_text(encoding="ascii"), re.MULTILINE)
    except OSError:
        return None
    return int(found.group(1)) * 1024 if found else None


def memory_ceiling(device: str) -> int | None:
    """What the benchmark process may hold on the CPU: four fifths of the memory free when it starts, so that a
    batch too large fails its pair with a sentence instead of swapping the machine to a halt. None on a GPU, and where
    the free memory is unknown."""
    free = free_memory() if device == "cpu" else None
    return int(free * 0.8) if free else None


def _figure(stats: dict | None, digits: int = 1) -> str:
    if not stats:
        return "-"
    return f"{stats['median']:.{digits}f} (±{stats['iqr'] / 2:.{digits}f})"


def format_table(report: dict) -> str:
    pairs = report["pairs"]
    small, large = report["batches"][0], report["batches"][-1]
    onnx = any("onnx_latency_ms" in p.get("patched", {}) for p in pairs)
    header = ["model", "params", "GFLOPs", "peak MB", f"ms b{small}", f"img/s b{large}", f"train img/s b{large}"]
    if onnx:
        header += [f"onnx ms b{small}", f"onnx img/s b{large}"]
    rows = []
    for pair in pairs:
        if "error" in pair:
            rows.append(([pair["name"], f"error: {pair['error']}"], None))
            continue
        for role in ("patched", "stock"):
            m, ratio = pair[role], pair["ratio"]

            bounds = pair.get("interval", {})

            def cell(key: str, text: str) -> str:
                if role != "patched" or key not in ratio:
                    return text
                return f"{text} x{ratio[key]:.2f}" + (f" [{bounds[key][0]:.2f}, {bounds[key][1]:.2f}]" if key in bounds else "")

            row = [
                pair["name"] if role == "patched" else f"  stock {pair['stock_model']}",
                cell("params", f"{m['params'] / 1e6:.2f}M"),
                cell("gflops", f"{m['gflops']:.1f}"),
                cell("peak_memory_mb", f"{m['peak_memory_mb']:.0f}"),
                cell("latency_ms", _figure(m.get("latency_ms"))),
                cell("throughput", _figure(m.get("throughput"))),
                cell("train_throughput", _figure(m.get("train_throughput"))),
            ]
            if onnx:
                row += [cell("onnx_latency_ms", _figure(m.get("onnx_latency_ms"))), cell("onnx_throughput", _figure(m.get("onnx_throughput")))]
            rows.append((row, verdict(pair) if role == "patched" else None))
    widths = [max(len(header[i]), *(len(r[i]) for r, _ in rows if len(r) > i)) for i in range(len(header))]
    head = _(
        "Ultralytics {release}, torch {torch}, device {device} ({precision}, {threads} threads), {size}x{size} images; "
        "medians of {rounds} interleaved rounds (± half the interquartile range); xN: patched / stock"
    ).format(release=report["release"], torch=report["torch"], device=report["device_name"], precision=report["precision"],
             threads=report["threads"], size=report["imgsz"], rounds=_rounds(report))  # fmt: skip
    if report.get("memory_ceiling_gb"):
        head += _("; memory ceiling {gib} GiB").format(gib=report["memory_ceiling_gb"])
    lines = [
        head,
        "  ".join(h.ljust(w) for h, w in zip(header, widths)),
    ]
    for row, headline in rows:
        if headline:
            lines.append(f"{row[0]}: {headline}")
            row = ["", *row[1:]]
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    slower = [p["name"] for p in pairs if judged(p).get("slower")]
    lines.append("")
    if slower:
        lines.append(_("slower than stock on this device: {models}").format(models=", ".join(slower)))
    else:
        lines.append(_("no patched model is clearly slower than its stock model on this device"))
    lines.append(
        _("[a, b]: the ratio's 95% interval over the paired rounds; a difference is called one where the interval clears 1 by {margin:.0%}").format(margin=MARGIN)
    )
    if report.get("plot"):
        lines.append(_("plot: {file}").format(file=report["plot"]))
    return "\n".join(lines)


def parse_batches(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        values = []
    if not values or values[0] < 1:
        raise UltrapatchError(_("--batch {text}: give batch sizes as positive whole numbers, e.g. 1,32.").format(text=text))
    return values


def check_plot_path(path: Path | None) -> None:
    if path is None:
        return
    if path.suffix.lower() != ".png":
        raise UltrapatchError(_("--plot {path}: give a .png file name.").format(path=path))
    if not path.resolve().parent.is_dir():
        raise UltrapatchError(_("--plot {path}: the folder {folder} does not exist.").format(path=path, folder=path.resolve().parent))


