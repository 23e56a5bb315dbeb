"""`ultrapatch verify`: choose the models, run the checks in the fork's own interpreter, report.

The checks themselves live in `runner.py`, a script that runs under the interpreter the user trains with (ultrapatch's
own by default, or `--python`), with the fork first on `sys.path`. This side picks the installed YAMLs, starts the
runner, shows progress from the events it prints, and turns them into a table or a JSON report and an exit code.
"""

from __future__ import annotations

import fnmatch
import json
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from patcher import state
from patcher.backbones import BACKBONES, Backbone, Template, backbone_named, installed_timm_models
from patcher.errors import UltrapatchError
from patcher.tree import Tree

RUNNER = Path(__file__).with_name("runner.py")
STOCK_SCRIPT = Path(__file__).with_name("stock.py")
# The stock models' builds, all together, may take this much longer in the patched fork than in the release: the two
# run in separate processes at once, and measured 1.2-1.4x apart with the same code in each model (process state and
# load, not the edits). The exact part of "no slower" is the stride probe's size and the layer table, which must be
# the release's for every stock model; the clock catches only a gross slowdown.
SLOWER = 2.0
TIMM_PRETRAINED_ENV = "ULTRAPATCH_TIMM_PRETRAINED"  # modules/TimmBackbone.py reads it


@dataclass(frozen=True)
class ModelSpec:
    """One model to verify: an installed YAML at one scale, and the stock model it is compared with."""

    yaml: str  # the installed file, relative to the tree
    name: str  # what YOLO()/RTDETR() is given: the file name, with the scale letter where the family has scales
    template: Template
    variant: str
    stock: str

    def to_json(self) -> dict:
        return {
            "yaml": self.yaml,
            "name": self.name,
            "family": self.template.stem.split("-")[0] if self.template.builder == "YOLO" else self.template.stem,
            "task": self.template.task,
            "builder": self.template.builder,
            "variant": self.variant,
            "stock": self.stock,
        }


def scales_of(text: str) -> list[str]:
    """The scale letters a model YAML defines, in order (none for a YAML without `scales:`)."""
    block = re.search(r"^scales:.*\n((?:[ \t]+.*\n?)+)", text, re.M)
    return re.findall(r"^[ \t]+([a-z]):", block.group(1), re.M) if block else []


VERSION = r"^(yolo(?:v)?\d+)"  # the family's version at the start of a YOLO file name; the scale letter follows it


def scaled_name(file_name: str, scale: str) -> str:
    """`yolo11-seg-X.yaml` at scale n is `yolo11n-seg-X.yaml`: Ultralytics reads the letter after the version."""
    return re.sub(VERSION, rf"\g<1>{scale}", file_name, count=1)


def _stock(template: Template, scale: str | None) -> str:
    stem = template.stem
    return f"{scaled_name(stem, scale) if scale and stem.startswith('yolo') else stem}.yaml"


def installed_backbones(tree: Tree) -> list[Backbone]:
    """The backbones apply recorded, or, for a tree without a record, those whose module file is in place."""
    record = state.load(tree.root)
    if record is not None and record.backbones:
        return [backbone_named(name) for name in record.backbones]
    return [b for b in BACKBONES.values() if (tree.root / b.module_path).is_file()] + installed_timm_models(tree.root)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(name.removesuffix(".yaml"), p) for p in patterns)


def select_models(tree: Tree, patterns: tuple[str, ...] = (), backbones: list[Backbone] | None = None) -> list[ModelSpec]:
    """Every installed YAML at its first scale; with patterns, those whose file name (or a scaled name) matches."""
    chosen = backbones if backbones is not None else installed_backbones(tree)
    if not chosen:
        raise UltrapatchError(
            f"no ultrapatch backbone is installed in {tree.root}; run `ultrapatch apply {tree.root} --backbone NAME` first."
        )
    specs: list[ModelSpec] = []
    for backbone in chosen:
        for template, variant, rel in backbone.yamls(tree.release):
            path = tree.root / rel
            if not path.is_file():
                continue
            file_name = path.name
            scales = scales_of(path.read_text(encoding="utf-8")) if template.stem.startswith("yolo") else []
            first = scales[:1] or [None]
            if not patterns or _matches(file_name, patterns):  # a file's own name means its first scale
                wanted = first
            else:  # a scaled name (yolo11s-...) picks that scale
                wanted = [s for s in scales if _matches(scaled_name(file_name, s), patterns)]
            specs += [
                ModelSpec(rel, scaled_name(file_name, s) if s else file_name, template, variant, _stock(template, s))
                for s in wanted
            ]
    if not specs:
        wanted = f"matches {' or '.join(repr(p) for p in patterns)}" if patterns else "is in place"
        raise UltrapatchError(
            f"no installed model YAML {wanted} in {tree.root}; `ultrapatch status {shlex.quote(str(tree.root))} --yamls` "
            f"lists the installed YAMLs by name."
        )
    return specs


def unique_log(what: str) -> Path:
    """A new log file of this run's in the temporary folder (`ultrapatch-verify-1-XXXX.log`): two runs never share
    one, and every message that points to a log names its file."""
    fd, name = tempfile.mkstemp(prefix=f"ultrapatch-{what}-", suffix=".log")
    os.close(fd)
    return Path(name)


def variant_glob(variant: str) -> str:
    """The --model glob that selects one variant's models (`*-MobileNetV2` leaves out `...-MobileNetV2_tv`)."""
    return f"*-{variant}"


def variants_note(tree: Tree, specs: list[ModelSpec]) -> str | None:
    """A sentence for a selection that spans several variants of a backbone: each variant's models take about as long
    as a one-variant backbone's, and a user trains one of them; None for a selection of one variant."""
    variants = list(dict.fromkeys(spec.variant for spec in specs))
    if len(variants) < 2:
        return None
    return (
        f"note: {len(specs)} models of {len(variants)} backbone variants ({', '.join(variants)}); to verify only the "
        f"one you will train: ultrapatch verify {shlex.quote(str(tree.root))} --model '{variant_glob(variants[0])}'"
    )


def check_python(python: str) -> str:
    """The interpreter to run the checks with: an existing executable, else bad input."""
    found = shutil.which(python) if os.sep not in python else (python if os.access(python, os.X_OK) else None)
    if not found or not Path(found).is_file():
        raise UltrapatchError(f"--python {python}: no such interpreter; give the python of the environment you train with.")
    return found


@dataclass
class VerifyReport:
    environment: dict
    models: list[dict]
    stock: dict | None = None  # the `stock` check (every stock YAML of the release); None when not run

    @property
    def ok(self) -> bool:
        return all(m["ok"] for m in self.models) and (self.stock is None or self.stock["status"] != "fail")

    def to_json(self) -> dict:
        env = self.environment
        return {
            "release": env.get("release"),
            "python": env.get("python"),
            "torch": env.get("torch"),
            "device": env.get("device"),
            "threads": env.get("threads"),
            "executable": env.get("executable"),
            "ultralytics_file": env.get("ultralytics_file"),
            "ok": self.ok,
            "models": self.models,
            "stock_models": self.stock,
        }


# Rough relative cost of verifying one model, by family and by scale: the heaviest models are handed out first, so
# that no process is left with a long one at the end.
FAMILY_COST = {"yolov3": 4.0, "rtdetr-l": 3.5}
TASK_COST = {"classify": 0.6}
SCALE_COST = {"n": 1.0, "s": 2.0, "m": 4.0, "b": 5.0, "l": 6.0, "x": 9.0}


def cost(spec: ModelSpec) -> float:
    scale = re.match(VERSION + "([a-z])", spec.name)
    return (
        FAMILY_COST.get(spec.template.stem, 1.0)
        * TASK_COST.get(spec.template.task, 1.0)
        * SCALE_COST.get(scale.group(2) if scale else "n", 1.0)
    )


def default_jobs(device: str, models: int) -> int:
    """Parallel processes: one per core on the CPU (each with one thread, the small models scale badly across
    threads), at most four; one on a GPU."""
    return 1 if device != "cpu" else max(1, min(4, os.cpu_count() or 1, models))


def run(
    tree: Tree,
    specs: list[ModelSpec],
    python: str = sys.executable,
    device: str = "cpu",
    export: str | None = None,
    jobs: int | None = None,
    progress: Callable[[str], None] = lambda line: None,
    threads: int | None = None,
) -> VerifyReport:
    """Run the checks on `specs` in `jobs` subprocesses of `python`, each taking the next model (heaviest first) as it
    finishes one; stop with a sentence when the fork is not what it imports, the device is missing, or a process
    dies."""
    cores = jobs or os.cpu_count() or 1  # `--jobs N`: N cores at most, unless `threads` says otherwise
    jobs = min(jobs or default_jobs(device, len(specs)), len(specs))
    threads = threads or (max(1, cores // jobs) if device == "cpu" else 0)
    waiting = deque(sorted(range(len(specs)), key=lambda i: -cost(specs[i])))
    running: list[deque] = [deque() for _ in range(jobs)]  # per process, the models it was handed and not reported
    events: queue.Queue = queue.Queue()
    results: dict[int, dict] = {}
    environment: dict = {}
    with tempfile.TemporaryDirectory(prefix="ultrapatch-verify-") as scratch:
        env = fork_env(scratch)
        spec_file = Path(scratch) / "spec.json"
        memory = memory_limit(jobs) if device == "cpu" else None
        spec_file.write_text(
            json.dumps({"tree": str(tree.root), "device": device, "export": export, "threads": threads, "memory": memory}),
            encoding="utf-8",
        )
        processes: list[subprocess.Popen] = []
        logs = [unique_log(f"verify-{k + 1}") for k in range(jobs)]
        progress_of: list[dict] = [{} for _ in range(jobs)]  # per process: the check under way, and the verdicts so far
        started = [False] * jobs  # per process: whether it got past start-up (its environment event)

        def start(k: int, mode: str = "w") -> None:
            with open(logs[k], mode, encoding="utf-8") as log:
                process = subprocess.Popen(
                    [python, str(RUNNER), str(spec_file)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=scratch,
                )  # fmt: skip
            if k < len(processes):
                processes[k] = process
            else:
                processes.append(process)
            started[k], progress_of[k] = False, {}
            threading.Thread(target=_pump, args=(k, process, events), daemon=True).start()
            _hand_out(process, waiting, running[k], specs)

        for k in range(jobs):
            start(k)
        try:
            alive = len(processes)
            while alive:
                k, event = events.get()
                if event is None:
                    if running[k] and started[k]:  # it died during a model: that model fails, a fresh process goes on
                        processes[k].wait()
                        index = running[k].popleft()
                        results[index] = died(specs[index], processes[k].returncode, progress_of[k], environment, logs[k], memory)
                        progress(_progress_line(len(results), len(specs), results[index]))
                        if waiting:
                            with open(logs[k], "a", encoding="utf-8") as log:
                                log.write(f"\n--- a fresh process after {specs[index].name} ---\n")
                            start(k, "a")
                            continue
                    alive -= 1
                    continue
                kind = event.pop("event")
                if kind == "environment":
                    started[k] = True
                    if not environment:
                        environment = event
                        progress(
                            f"verifying {len(specs)} model(s) in {jobs} process(es) with {event['executable']} "
                            f"(Python {event['python']}, torch {event['torch']}, Ultralytics {event['release']}, "
                            f"device {device})"
                        )
                elif kind == "shadowed":
                    raise UltrapatchError(_shadow_message(tree, python, event))
                elif kind == "error":
                    raise UltrapatchError(event["message"] + ".")
                elif kind == "checking":
                    progress_of[k] = event
                elif kind == "model":
                    results[running[k].popleft()] = event
                    progress_of[k] = {}
                    progress(_progress_line(len(results), len(specs), event))
                    _hand_out(processes[k], waiting, running[k], specs)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                process.wait()
        for k, process in enumerate(processes):
            if running[k]:
                tail = logs[k].read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
                raise UltrapatchError(
                    f"a verification process in {python} stopped (exit {process.returncode}) while verifying "
                    f"{specs[running[k][0]].name}; the last lines of its log ({logs[k]}):\n  " + "\n  ".join(tail)
                )
    return VerifyReport(environment, [results[i] for i in range(len(specs))])


def memory_limit(jobs: int) -> int | None:
    """Bytes of data one verification process may hold on the CPU: nine tenths of the machine's memory shared among
    the processes, at least 6 GiB. A check that asks for more gets an allocation error, which fails that check with a
    reason, where the kernel's out-of-memory killer would end the process (and maybe another program). None where
    the machine's memory is unknown (no /proc/meminfo)."""
    try:
        meminfo = Path("/proc/meminfo").read_text(encoding="ascii")
    except OSError:
        return None
    found = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.MULTILINE)
    if found is None:
        return None
    return max(6 << 30, int(int(found.group(1)) * 1024 * 0.9 / max(1, jobs)))


def died(spec: ModelSpec, code: int | None, under_way: dict, environment: dict, log: Path, memory: int | None) -> dict:
    """The report of a model whose process ended in the middle of it: the checks it finished keep their verdicts, the
    one under way fails with how the process ended, and the rest are skipped."""
    if code is not None and code < 0:
        how = f"was killed by signal {-code}"
        if -code == 9:
            how += " (SIGKILL: most likely the kernel's out-of-memory killer"
            how += f"; each process may hold {memory / (1 << 30):.1f} GiB, and `--jobs 1` gives one process more)" if memory else ")"
    else:
        how = f"exited with code {code}"
    tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:] if log.exists() else []
    current = under_way.get("check")
    checks = {name: dict(verdict) for name, verdict in (under_way.get("checks") or {}).items()}
    order = list(environment.get("checks") or []) or list(checks) + ([current] if current else [])
    for name in order:
        if name in checks:
            continue
        if name == current or (current is None and not checks):
            reason = f"the verification process {how} during this check" + (f"; its log ends: {tail[-1][:200]}" if tail else "")
            checks[name] = {"status": "fail", "reason": reason, "seconds": 0.0}
            current = name
        else:
            checks[name] = {"status": "skip", "reason": f"the verification process {how} during {current}", "seconds": 0.0}
    return {
        **{k: v for k, v in spec.to_json().items() if k in ("name", "yaml", "family", "task")},
        "backbone": spec.variant,
        "ok": False,
        "layers": None,
        "params": None,
        "gflops": None,
        "stock": {"name": spec.stock},
        "checks": checks,
        "seconds": under_way.get("seconds", 0.0),
    }


DDP_SCRIPT = Path(__file__).with_name("ddp.py")
DDP_SIZE = 128  # the training batches' image size: DDP's bookkeeping does not depend on it
# how a ddp reason that is an error, not a finding, begins: a rank's exception (ddp.py), or the launcher's failure
DDP_ERRORS = ("rank ", "torch.distributed.run exited")


def check_ddp(tree: Tree, spec: ModelSpec, ranks: int, python: str, device: str, name: str | None = None) -> dict:
    """verify's `ddp` check on one model: `ranks` processes under torch.distributed.run in the fork's interpreter
    (ddp.py); the verdict of the first rank that fails, or a pass. A run that ended in an error rather than a finding
    (a rank's exception, or the launcher's failure) is run once more, and the verdict says so (`retried`): the
    check's findings are facts of the model, while a connection or a launch can fail once."""
    import time

    started = time.perf_counter()
    verdict = _launch_ddp(tree, spec, ranks, python, device, name)
    if verdict["status"] == "fail" and verdict["reason"].startswith(DDP_ERRORS):
        first = verdict["reason"]
        verdict = {**_launch_ddp(tree, spec, ranks, python, device, name), "retried": first}
    return {**verdict, "seconds": round(time.perf_counter() - started, 2)}


def _launch_ddp(tree: Tree, spec: ModelSpec, ranks: int, python: str, device: str, name: str | None) -> dict:
    """One run of the ddp check: its status and reason."""
    with tempfile.TemporaryDirectory(prefix="ultrapatch-ddp-") as scratch:
        report = Path(scratch) / "ranks"
        report.mkdir()
        spec_file = Path(scratch) / "spec.json"
        spec_file.write_text(json.dumps({
            "tree": str(tree.root), "device": device, "name": name or spec.name, "builder": spec.template.builder,
            "task": spec.template.task, "imgsz": DDP_SIZE, "report": str(report),
        }), encoding="utf-8")  # fmt: skip
        env = {**fork_env(scratch), "OMP_NUM_THREADS": "1"}
        # --standalone: the launcher's own store binds a port the system picks and keeps it (a port found free
        # beforehand can be taken before the launcher binds it)
        command = [python, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node",
                   str(ranks), str(DDP_SCRIPT), str(spec_file)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=scratch, timeout=1800)
        verdicts = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(report.glob("rank-*.json"))]
    # a rank's own finding before a rank's crash ("rank K: ..."), which may only echo another rank's exit
    failed = sorted((v for v in verdicts if v["status"] != "pass"), key=lambda v: v["reason"].startswith(DDP_ERRORS))
    if failed:
        return {"status": "fail", "reason": failed[0]["reason"]}
    if done.returncode != 0 or len(verdicts) != ranks:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        return {"status": "fail", "reason": f"torch.distributed.run exited {done.returncode}: {tail[:400]}"}
    return {"status": "pass", "reason": verdicts[0]["reason"]}


def add_ddp(report: VerifyReport, tree: Tree, specs: list[ModelSpec], ranks: int, python: str, device: str,
            progress: Callable[[str], None] = lambda line: None) -> None:
    """Run the ddp check on every model that built, and put it in the report beside the other checks."""
    for spec, model in zip(specs, report.models):
        if model["checks"].get("build", {}).get("status") != "pass":
            model["checks"]["ddp"] = {"status": "skip", "reason": "the model did not build", "seconds": 0.0}
            continue
        model["checks"]["ddp"] = verdict = check_ddp(tree, spec, ranks, python, device)
        if verdict["status"] == "fail":  # the stock model in the same ranks: a failure of both is the environment's
            stock = check_ddp(tree, spec, ranks, python, device, name=spec.stock)
            if stock["status"] == "fail":
                verdict.update(status="environment", reason=f"the stock {spec.stock} fails this check too: {stock['reason']}")
        model["ok"] = model["ok"] and verdict["status"] != "fail"
        outcome = {"pass": "ok", "fail": "FAIL"}.get(verdict["status"], verdict["status"])
        line = f"ddp {spec.name}: {outcome} in {verdict['seconds']} s"
        progress(line if verdict["status"] == "pass" else f"{line}: {verdict['reason']}")


def fork_env(scratch: str) -> dict:
    """The environment of a process that runs in the fork: offline (no timm download either), its own settings
    folder, no bytecode written."""
    env = {**os.environ, "YOLO_OFFLINE": os.environ.get("YOLO_OFFLINE", "1"), "PYTHONDONTWRITEBYTECODE": "1"}
    # a timm backbone row that asks for timm's weights builds with random ones: verify never downloads
    env[TIMM_PRETRAINED_ENV] = os.environ.get(TIMM_PRETRAINED_ENV, "0")
    if env.get("PYTHONPATH"):  # the processes start in a scratch folder: keep relative entries pointing where they did
        env["PYTHONPATH"] = absolute_pythonpath(env["PYTHONPATH"])
    env["YOLO_CONFIG_DIR"] = str(Path(scratch) / "settings")  # the user's Ultralytics settings stay as they are
    return env


def check_stock_models(tree: Tree, python: str = sys.executable, progress: Callable[[str], None] = lambda line: None) -> dict:
    """verify's `stock` check: every stock model YAML of the release builds in the patched fork with the same layer
    table, parameters, save list, strides, stride probe and seeded outputs as in the unpatched release, which is
    rebuilt from the record's originals in a temporary folder, and its build takes no longer (all builds together,
    within SLOWER for timer noise). Both run at once, one core each, in `python`."""
    record = state.load(tree.root)
    if record is None:
        return {"status": "skip", "reason": "no record of an apply here: the unpatched release cannot be rebuilt", "models": 0}
    created = sorted(rel for rel, original in record.originals().items() if original is None)
    with tempfile.TemporaryDirectory(prefix="ultrapatch-stock-") as scratch:
        release = Path(scratch) / "release"
        try:
            baseline = unpatched_release(tree, record, release, progress)
        except UltrapatchError as exc:
            return {"status": "skip", "reason": str(exc), "models": 0}
        skip = Path(scratch) / "skip.json"
        skip.write_text(json.dumps(created), encoding="utf-8")
        env = {**fork_env(scratch), "OMP_NUM_THREADS": "1"}
        progress(f"stock models: building every stock YAML of the release in the patched fork and in the release itself")
        processes = [
            subprocess.Popen([python, str(STOCK_SCRIPT), str(root), str(skip)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=scratch)
            for root in (tree.root, release)
        ]  # fmt: skip
        outputs = [process.communicate() for process in processes]
    for process, (out, err) in zip(processes, outputs):
        if process.returncode != 0:
            tail = " | ".join(err.strip().splitlines()[-3:])
            return {"status": "fail", "reason": f"the stock-model probe stopped (exit {process.returncode}): {tail}", "models": 0}
    patched, stock = (json.loads(out) for out, _ in outputs)
    result = {**compare_stock(patched, stock, baseline), "baseline": baseline}
    changed = originals_not_published(tree, record)
    if changed:
        result["reason"] += (
            f"; the recorded originals are not Ultralytics {tree.release_text}'s published text in "
            f"{', '.join(changed)} (changes made before ultrapatch's apply)"
        )
    return result


def originals_not_published(tree: Tree, record: state.State) -> list[str]:
    """The recorded originals that differ from the release's published text, where the tree says what that is: a
    tree `ultrapatch fetch` made has it as its first commit. Elsewhere nothing is known, and none is named."""
    root = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=tree.root, capture_output=True, text=True)
    first = root.stdout.split()[:1]
    if root.returncode != 0 or not first:
        return []
    subject = subprocess.run(["git", "log", "-1", "--format=%s", first[0]], cwd=tree.root, capture_output=True, text=True)
    if subject.stdout.strip() != f"Ultralytics {tree.release_text} (PyPI source release)":
        return []
    from patcher.gitops import committed

    return sorted(
        rel for rel, original in record.originals().items()
        if original is not None and committed(tree.root, first[0], rel) != original
    )  # fmt: skip


TUTORIAL_MARKS = (b"AddModules", b"width_list")  # in an original: a tutorial was applied by hand before apply


def unpatched_release(tree: Tree, record: state.State, dest: Path, progress: Callable[[str], None]) -> str:
    """The release's own `ultralytics/` package in `dest`: the fork's, with the record's originals put back (a file
    ultrapatch created removed). Where the originals hold a tutorial applied by hand (apply adopted it), they are not
    the release: the release's source is taken from PyPI instead (pip's download, or ULTRAPATCH_SDIST_CACHE).
    Returns what the baseline is; UltrapatchError when there is none to be had."""
    originals = record.originals()
    if any(mark in (text or b"") for text in originals.values() for mark in TUTORIAL_MARKS):
        from patcher.fetch import cached_sdist, unpack

        progress(f"stock models: the originals hold a hand-applied tutorial; taking Ultralytics {tree.release_text} from PyPI")
        try:
            with tempfile.TemporaryDirectory(dir=dest.parent) as download:
                unpack(cached_sdist(tree.release_text, Path(download)), dest)
        except UltrapatchError as exc:
            raise UltrapatchError(
                f"the record's originals hold a tutorial applied by hand, so they are not the release, and the release "
                f"could not be had from PyPI ({exc})"
            ) from None
        return f"Ultralytics {tree.release_text} from PyPI"
    shutil.copytree(tree.root / "ultralytics", dest / "ultralytics", ignore=shutil.ignore_patterns("__pycache__"))
    for rel, original in originals.items():
        if not rel.startswith("ultralytics/"):
            continue
        target = dest / rel
        if original is None:
            target.unlink(missing_ok=True)
        else:
            target.write_bytes(original)
    return "the unpatched fork (its files as they were before ultrapatch's apply, from the record)"


def compare_stock(patched: dict, stock: dict, baseline: str = "the release rebuilt from the record's originals") -> dict:
    """The verdict of the stock check from the two probes' reports (YAML: what it built, and the seconds it took)."""
    differ = []
    for name in sorted(set(patched) | set(stock)):
        mine, theirs = dict(patched.get(name) or {}), dict(stock.get(name) or {})
        mine.pop("seconds", None), theirs.pop("seconds", None)
        if mine != theirs:
            what = next((k for k in ("error", "table", "params", "save", "stride", "probes", "outputs")
                         if mine.get(k) != theirs.get(k)), "presence")  # fmt: skip
            differ.append(f"{Path(name).name} ({what})")
    timed = [n for n in stock if "seconds" in stock[n] and "seconds" in (patched.get(n) or {})]
    mine_s, theirs_s = sum(patched[n]["seconds"] for n in timed), sum(stock[n]["seconds"] for n in timed)
    ratio = mine_s / theirs_s if theirs_s else 1.0
    result = {"models": len(stock), "differ": differ, "seconds": round(mine_s, 2), "release_seconds": round(theirs_s, 2),
              "ratio": round(ratio, 3)}  # fmt: skip
    if differ:
        shown = ", ".join(differ[:5]) + (f" and {len(differ) - 5} more" if len(differ) > 5 else "")
        return {**result, "status": "fail", "reason": f"{len(differ)} of {len(stock)} stock models differ from {baseline}: {shown}"}
    if ratio > SLOWER:
        return {**result, "status": "fail", "reason": (
            f"the stock models take {ratio:.2f}x as long to build as in {baseline} ({mine_s:.1f} s against {theirs_s:.1f} s)")}
    return {**result, "status": "pass", "reason": (
        f"all {len(stock)} stock models build as in {baseline} (layer table, parameters, outputs), in {ratio:.2f}x "
        f"its build time ({mine_s:.1f} s against {theirs_s:.1f} s)")}


def _hand_out(process: subprocess.Popen, waiting: deque, running: deque, specs: list[ModelSpec]) -> None:
    """Give a process its next model, or end its input when there is none."""
    assert process.stdin is not None
    try:
        if waiting:
            running.append(waiting.popleft())
            process.stdin.write(json.dumps(specs[running[-1]].to_json()) + "\n")
            process.stdin.flush()
        else:
            process.stdin.close()
    except (BrokenPipeError, OSError):  # the process is gone: its log tells why, once its events end
        pass


def _pump(k: int, process: subprocess.Popen, events: queue.Queue) -> None:
    """Forward one process's events to the queue, then None when its output ends."""
    assert process.stdout is not None
    for line in process.stdout:
        events.put((k, json.loads(line)))
    events.put((k, None))


def _shadow_message(tree: Tree, python: str, event: dict) -> str:
    how = "is imported at startup (a .pth file or sitecustomize)" if event["preloaded"] else "is what it imports"
    return (
        f"the fork at {tree.root} is shadowed: in {python}, ultralytics {event['release']} from {event['file']} {how}, "
        f"so scripts run outside the fork and the `yolo` command never see its edits. Install the fork in that "
        f"environment instead: `{python} -m pip install -e {tree.root}`"
        + (" (and remove what loads the other copy at startup)." if event["preloaded"] else ".")
    )


def _progress_line(done: int, total: int, model: dict) -> str:
    bad = [f"{name}: {c['status']}" for name, c in model["checks"].items() if c["status"] in ("fail", "environment")]
    verdict = "ok" if model["ok"] and not bad else ("FAIL" if not model["ok"] else "ok")
    extra = f" ({'; '.join(bad)})" if bad else ""
    return f"[{done}/{total}] {model['name']}: {verdict} in {model['seconds']:.1f} s{extra}"


CELL = {"pass": "ok", "fail": "FAIL", "skip": "skip", "environment": "env"}


def _millions(n) -> str:
    return "-" if n is None else f"{n / 1e6:.2f}M"


def _gflops(g) -> str:
    return "-" if g is None else f"{g:.1f}"


def absolute_pythonpath(value: str) -> str:
    """PYTHONPATH with every entry made absolute against the working folder, as Python itself resolves them at
    startup; an empty entry means the working folder."""
    cwd = Path.cwd()
    return os.pathsep.join(str((cwd / entry) if entry else cwd) for entry in value.split(os.pathsep))


def _count(models) -> str:
    n = models if isinstance(models, int) else len(models)
    return f"{n} model{'s' if n != 1 else ''}"


def render_table(report: VerifyReport) -> str:
    """One row per model, one column per check; then every reason that is not a pass, and the verdict."""
    env = report.environment
    checks = list(report.models[0]["checks"]) if report.models else []  # in the order runner.py ran them
    header = ["model", *checks, "params (stock)", "GFLOPs (stock)"]
    rows = [header]
    for m in report.models:
        stock = m["stock"]
        rows.append(
            [
                m["name"],
                *(CELL[m["checks"][c]["status"]] for c in checks),
                f"{_millions(m['params'])} ({_millions(stock.get('params'))})",
                f"{_gflops(m['gflops'])} ({_gflops(stock.get('gflops'))})",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        f"Ultralytics {env.get('release')} with Python {env.get('python')}, torch {env.get('torch')}, "
        f"device {env.get('device')}; stock models in brackets"
    ]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    failures = [
        f"  {m['name']}: {name}: {c['reason']}"
        for m in report.models
        for name, c in m["checks"].items()
        if c["status"] == "fail"
    ]
    environment: dict[tuple[str, str], list[str]] = {}
    for m in report.models:
        for name, c in m["checks"].items():
            if c["status"] == "environment":
                cause = re.sub(r"^the stock \S+ fails this check too: ", "", c["reason"])
                environment.setdefault((name, cause), []).append(m["name"])
    skips: dict[str, tuple[list[str], set[str]]] = {}  # reason: (checks, models)
    for m in report.models:
        for name, c in m["checks"].items():
            if c["status"] == "skip":
                checks, models = skips.setdefault(c["reason"], ([], set()))
                if name not in checks:
                    checks.append(name)
                models.add(m["name"])
    if failures:
        lines += ["", "failed (the patch):", *failures]
    if environment:
        lines += ["", "environment (the stock model fails the same check, so the patch is not the cause):"]
        lines += [f"  {check} ({_count(models)}): {cause}" for (check, cause), models in environment.items()]
    if skips:
        lines += ["", "skipped:", *(f"  {', '.join(c)} ({_count(len(m))}): {reason}" for reason, (c, m) in skips.items())]
    if report.stock is not None:
        verdict = {"pass": "ok", "fail": "FAIL", "skip": "skipped"}[report.stock["status"]]
        lines += ["", f"stock models: {verdict}: {report.stock['reason']}"]
    failed = sum(not m["ok"] for m in report.models)
    lines += ["", f"{len(report.models) - failed} of {len(report.models)} model(s) pass" + (f"; {failed} fail" if failed else "")]
    return "\n".join(lines)
