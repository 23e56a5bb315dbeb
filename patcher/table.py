"""`ultrapatch table RUN [RUN ...]`: the table users publish, from their Ultralytics training runs.

Each RUN is a training folder (`runs/detect/train3`). From its `args.yaml` (model, image size, task), `results.csv`
(the best epoch's metrics, chosen by Ultralytics' own fitness, and the training time) and `weights/best.pt`
(parameters, GFLOPs and speed, measured now in the fork's interpreter by `patcher/fork/table.py`, every row
interleaved on one device) it makes one row; the baseline row (the first RUN, or `--baseline`) anchors each figure's
change. Markdown, LaTeX (booktabs) or CSV, with a footnote that states the conditions; `--plot` draws mAP50-95
against latency with the best trade-offs marked.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from patcher.errors import UltrapatchError
from patcher.i18n import _
from patcher.launcher import run_entry, tail

# Ultralytics' fitness: the weights of (precision, recall, mAP50, mAP50-95) per metric suffix, summed over the
# suffixes of the task (segment: boxes and masks; pose: boxes and keypoints); classification: the mean of top-1 and
# top-5 accuracy. The best epoch is the one with the highest fitness, as best.pt is.
SUFFIXES = {"detect": ("B",), "obb": ("B",), "segment": ("B", "M"), "pose": ("B", "P")}
WEIGHTS = (0.0, 0.0, 0.1, 0.9)
METRICS = ("precision", "recall", "mAP50", "mAP50-95")
CLASSIFY = ("accuracy_top1", "accuracy_top5")


@dataclass
class Run:
    """One training run, as read from its folder."""

    folder: Path
    model: str
    task: str
    imgsz: int
    data: str
    epochs: int  # rows of results.csv
    best_epoch: int
    metrics: dict[str, float]  # the best epoch's: precision, recall, mAP50, mAP50-95 (of the boxes); or top1, top5
    seconds: float | None  # the training's time, from results.csv's `time` column (None in releases without it)
    measured: dict = field(default_factory=dict)  # params, gflops, latency_ms (stats), fps: from the fork

    @property
    def best(self) -> Path:
        return self.folder / "weights" / "best.pt"

    @property
    def name(self) -> str:
        return Path(self.model).stem


def read_args(path: Path) -> dict[str, str]:
    """The top-level `key: value` lines of an args.yaml (Ultralytics writes it flat), as text."""
    found = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = re.match(r"^(\w+):\s*(.*?)\s*$", line)
        if match:
            found[match[1]] = match[2].strip("'\"")
    return found


def read_results(path: Path) -> list[dict[str, float]]:
    """results.csv's rows, with the column names as Ultralytics writes them (older releases pad them with spaces)."""
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            parsed = {}
            for key, value in row.items():
                try:
                    parsed[(key or "").strip()] = float(value)
                except (TypeError, ValueError):
                    continue
            rows.append(parsed)
    return rows


def fitness(row: dict[str, float], task: str) -> float:
    """Ultralytics' fitness of one epoch's metrics (what picks best.pt)."""
    if task == "classify":
        return (row.get("metrics/accuracy_top1", 0.0) + row.get("metrics/accuracy_top5", 0.0)) / 2
    return sum(
        w * row.get(f"metrics/{m}({s})", 0.0) for s in SUFFIXES.get(task, ("B",)) for w, m in zip(WEIGHTS, METRICS)
    )


def read_run(folder: Path) -> Run:
    """A training folder, read; bad input (one sentence) for a folder that is not one, or lacks what the table needs."""
    if not folder.is_dir():
        raise UltrapatchError(_("{run}: no such folder; give a training run's folder, such as runs/detect/train3.").format(run=folder))
    if not (folder / "args.yaml").is_file():
        raise UltrapatchError(
            _("{run} is not an Ultralytics training run (it has no args.yaml); give a folder such as runs/detect/train3.").format(run=folder)
        )
    if not (folder / "results.csv").is_file():
        raise UltrapatchError(_("{run} has no results.csv: its training logged no epoch; train it again, or leave it out.").format(run=folder))
    if not (folder / "weights" / "best.pt").is_file():
        raise UltrapatchError(_("{run} has no weights/best.pt: its training saved no model; train it again, or leave it out.").format(run=folder))
    args = read_args(folder / "args.yaml")
    rows = read_results(folder / "results.csv")
    if not rows:
        raise UltrapatchError(_("{run}: its results.csv holds no epoch; train it again, or leave it out.").format(run=folder))
    task = args.get("task", "detect")
    best = max(range(len(rows)), key=lambda k: (fitness(rows[k], task), -k))  # the first of equals, as Ultralytics
    row = rows[best]
    if task == "classify":
        metrics = {m: row.get(f"metrics/{m}", 0.0) for m in CLASSIFY}
    else:
        metrics = {m: row.get(f"metrics/{m}(B)", 0.0) for m in METRICS}
    try:
        imgsz = int(float(args.get("imgsz", "640")))
    except ValueError:
        imgsz = 640
    seconds = rows[-1].get("time")
    epoch = int(row.get("epoch", best + 1))
    return Run(folder, args.get("model", folder.name), task, imgsz, args.get("data", ""), len(rows), epoch, metrics, seconds)


def read_runs(folders: tuple[Path, ...], baseline: Path | None) -> list[Run]:
    """The runs in table order: the baseline first (the first RUN, or `--baseline`), each folder once; bad input for
    runs of different tasks."""
    ordered = [baseline, *folders] if baseline else list(folders)
    seen, runs = set(), []
    for folder in ordered:
        key = folder.resolve()
        if key not in seen:
            seen.add(key)
            runs.append(read_run(folder))
    first = runs[0]
    for run in runs[1:]:
        if run.task != first.task:
            raise UltrapatchError(
                _("{run} is a {task} run and {first} a {first_task} run: a table compares runs of one task; give runs of one task.").format(
                    run=run.folder, task=run.task, first=first.folder, first_task=first.task
                )
            )
    return runs


def measure(runs: list[Run], python: str, tree: Path | None, device: str, rounds: int, plot: Path | None) -> dict:
    """Parameters, GFLOPs and latency of every run's best.pt, measured in the fork's interpreter in one process (the
    rows interleaved); the plot drawn there. The environment the figures were measured in."""
    from patcher.revert import checkpoint_needs

    needs = {run.folder: checkpoint_needs(run.best) for run in runs}
    spec = {
        "tree": str(tree.resolve()) if tree else None,
        "device": device,
        "rounds": rounds,
        "plot": str(plot.resolve()) if plot else None,
        "runs": [
            {"name": r.name, "folder": str(r.folder), "best": str(r.best.resolve()), "imgsz": r.imgsz,
             "map": r.metrics.get("mAP50-95", r.metrics.get("accuracy_top1", 0.0)), "needs": list(needs[r.folder].modules)}
            for r in runs
        ],  # fmt: skip
    }
    by_kind, stderr = run_entry(python, "table", spec)
    if "missing" in by_kind:
        missing = by_kind["missing"]
        run = next(r for r in runs if str(r.folder) == missing["folder"])
        fix = needs[run.folder].command(Path(missing["root"]))
        raise UltrapatchError(
            _("{best} needs {modules} of ultralytics/nn/AddModules/, which the fork at {root} lacks: {fix}, then make the table again.").format(
                best=run.best, modules=", ".join(f"{m}.py" for m in missing["modules"]), root=missing["root"],
                fix=f"`{fix}`" if fix else _("install those module files in it"),
            )
        )  # fmt: skip
    for kind in ("error", "shadowed"):
        if kind in by_kind:
            said = by_kind[kind].get("message") or _("the fork at {tree} is not the Ultralytics {python} imports").format(tree=tree, python=python)
            raise UltrapatchError(said + ".")
    if "rows" not in by_kind:
        raise UltrapatchError(_("the table's measurement stopped in {python}: {said}").format(python=python, said=tail(stderr)))
    for run, measured in zip(runs, by_kind["rows"]["rows"]):
        run.measured = measured
    rows = by_kind["rows"]
    return {**by_kind.get("environment", {}), "rounds": rows["rounds"], "precision": rows["precision"], "device_name": rows["device_name"]}


# -- rendering ---------------------------------------------------------------------------------------------------


def columns(task: str) -> list[tuple[str, str]]:
    """(key, heading) of each figure, in order."""
    scores = [("accuracy_top1", "Top-1 (%)"), ("accuracy_top5", "Top-5 (%)")] if task == "classify" else [
        ("precision", "P (%)"), ("recall", "R (%)"), ("mAP50", "mAP50 (%)"), ("mAP50-95", "mAP50-95 (%)")]  # fmt: skip
    return [("params", "Params (M)"), ("gflops", "GFLOPs"), *scores, ("fps", "FPS"), ("seconds", "Train time")]


def figure(run: Run, key: str) -> float | None:
    if key in ("params", "gflops", "fps"):
        value = run.measured.get(key)
        return value / 1e6 if key == "params" and value is not None else value
    if key == "seconds":
        return run.seconds
    return 100 * run.metrics[key]


def shown(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key == "seconds":
        return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min" if value < 7200 else f"{value / 3600:.1f} h"
    return f"{value:.2f}" if key == "params" or (key == "gflops" and value < 1) else f"{value:.1f}"


def change(key: str, value: float | None, base: float | None) -> str:
    """The change against the baseline: points for a score, percent for the rest."""
    if value is None or base is None:
        return ""
    if key in ("params", "gflops", "fps", "seconds"):
        return f"{100 * (value - base) / base:+.1f}%" if base else ""
    return f"{value - base:+.1f}"


def row(run: Run, base: Run, cols: list[tuple[str, str]], first: bool) -> tuple[str, list[tuple[str, str]]]:
    """A row's label (the baseline's says so) and each figure as shown with its change against the baseline (none in
    the baseline's own row)."""
    label = _("{model} (baseline)").format(model=run.name) if first else run.name
    cells = []
    for key, _heading in cols:
        value = figure(run, key)
        cells.append((shown(key, value), "" if first else change(key, value, figure(base, key))))
    return label, cells


def footnote(runs: list[Run], environment: dict) -> str:
    sizes = sorted({r.imgsz for r in runs})
    return _(
        "Measured on {device} ({precision}), batch 1, {sizes} images (each run's own), torch {torch}, Ultralytics "
        "{release}; every row timed in one run, interleaved, median of {rounds} rounds. Scores: the best epoch by "
        "Ultralytics' fitness, from results.csv; changes against the baseline, {baseline} (points for scores, percent "
        "for the rest)."
    ).format(
        device=environment.get("device_name") or environment.get("device"), precision=environment.get("precision", "fp32"),
        sizes=", ".join(f"{s}x{s}" for s in sizes), torch=environment.get("torch"), release=environment.get("release"),
        rounds=environment.get("rounds"), baseline=runs[0].name,
    )  # fmt: skip


def markdown(runs: list[Run], environment: dict) -> str:
    cols = columns(runs[0].task)
    lines = ["| Model | " + " | ".join(h for _, h in cols) + " |", "|---|" + "---:|" * len(cols)]
    for k, run in enumerate(runs):
        label, cells = row(run, runs[0], cols, first=k == 0)
        lines.append(f"| {label} | " + " | ".join(text + (f" ({delta})" if delta else "") for text, delta in cells) + " |")
    return "\n".join(lines) + "\n\n" + footnote(runs, environment) + "\n"


def latex(runs: list[Run], environment: dict) -> str:
    def escape(text: str) -> str:
        return re.sub(r"([_%&#$])", r"\\\1", text)

    cols = columns(runs[0].task)
    lines = [
        "% \\usepackage{booktabs}",
        "\\begin{table}[t]",
        "\\centering",
        "\\begin{tabular}{l" + "r" * len(cols) + "}",
        "\\toprule",
        "Model & " + " & ".join(escape(h) for _, h in cols) + " \\\\",
        "\\midrule",
    ]
    for k, run in enumerate(runs):
        label, cells = row(run, runs[0], cols, first=k == 0)
        texts = [escape(text) + (f" \\small({escape(delta)})" if delta else "") for text, delta in cells]
        lines.append(escape(label) + " & " + " & ".join(texts) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{escape(footnote(runs, environment))}}}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def csv_text(runs: list[Run], environment: dict) -> str:
    cols = columns(runs[0].task)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    conditions = ["device", "dtype", "batch", "imgsz", "torch", "ultralytics", "rounds", "best_epoch", "epochs", "run"]
    writer.writerow(["model", *(k for key, _ in cols for k in (key, f"{key}_vs_baseline")), *conditions])
    base = runs[0]
    for k, run in enumerate(runs):
        values = []
        for key, _heading in cols:
            value = figure(run, key)
            values += ["" if value is None else round(value, 4), change(key, value, figure(base, key)) if k else ""]
        writer.writerow([run.name, *values, environment.get("device_name") or environment.get("device"),
                         environment.get("precision", "fp32"), 1, run.imgsz, environment.get("torch"),
                         environment.get("release"), environment.get("rounds"), run.best_epoch, run.epochs, str(run.folder)])  # fmt: skip
    return out.getvalue()


FORMATS = {"md": markdown, "latex": latex, "csv": csv_text}
