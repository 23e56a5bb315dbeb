"""verify's scheduler: the models handed out to a few fork-side processes, heaviest first, each taking the next as it
finishes one; a process that dies fails the model it was in, at the check under way, and a fresh one goes on."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Callable

from patcher.errors import UltrapatchError
from patcher.i18n import _
from patcher.launcher import command, fork_env
from patcher.tree import Tree
from patcher.user_yamls import installers
from patcher.verify.report import VerifyReport, progress_line, shadow_message
from patcher.verify.select import VERSION, ModelSpec


# Rough relative cost of verifying one model, by family and by scale: the heaviest models are handed out first, so
# that no process is left with a long one at the end.
FAMILY_COST = {"yolov3": 4.0, "rtdetr-l": 3.5}


TASK_COST = {"classify": 0.6}


SCALE_COST = {"n": 1.0, "s": 2.0, "m": 4.0, "b": 5.0, "l": 6.0, "x": 9.0}


def cost(spec: ModelSpec) -> float:
    scale = re.match(VERSION + "([a-z])", spec.name)
    return (
        FAMILY_COST.get(spec.family, 1.0)
        * TASK_COST.get(spec.task, 1.0)
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
    with tempfile.TemporaryDirectory(prefix="ultrapatch-verify-") as scratch:
        pool = Pool(tree, specs, python, device, jobs, Path(scratch), progress)
        pool.write_spec(export, threads)
        try:
            for k in range(jobs):
                pool.start(k)
            pool.serve()
        finally:
            pool.stop()
        pool.raise_if_stranded()
    return VerifyReport(pool.environment, [pool.results[i] for i in range(len(specs))])


class Pool:
    """The verification processes of one run: which model each was handed, what each reported, and its log."""

    def __init__(self, tree: Tree, specs: list[ModelSpec], python: str, device: str, jobs: int, scratch: Path,
                 progress: Callable[[str], None]) -> None:  # fmt: skip
        self.tree, self.specs, self.python, self.device, self.jobs = tree, specs, python, device, jobs
        self.scratch, self.progress = scratch, progress
        self.env = fork_env(str(scratch))
        self.spec_file = scratch / "spec.json"
        self.memory = memory_limit(jobs) if device == "cpu" else None
        self.waiting = deque(sorted(range(len(specs)), key=lambda i: -cost(specs[i])))
        self.running: list[deque] = [deque() for _ in range(jobs)]  # per process: handed out, not yet reported
        self.events: queue.Queue = queue.Queue()
        self.results: dict[int, dict] = {}
        self.environment: dict = {}
        self.processes: list[subprocess.Popen] = []
        self.logs = [unique_log(f"verify-{k + 1}") for k in range(jobs)]
        self.under_way: list[dict] = [{} for _ in range(jobs)]  # per process: the check under way, the verdicts so far
        self.started = [False] * jobs  # per process: whether it got past start-up (its environment event)

    def write_spec(self, export: str | None, threads: int) -> None:
        spec = {"tree": str(self.tree.root), "device": self.device, "export": export, "threads": threads,
                "memory": self.memory, "installers": installers(self.tree)}  # fmt: skip
        self.spec_file.write_text(json.dumps(spec), encoding="utf-8")

    def start(self, k: int, mode: str = "w") -> None:
        """Process k, new (or anew, its log appended to), with its first model."""
        with open(self.logs[k], mode, encoding="utf-8") as log:
            process = subprocess.Popen(
                command(self.python, "verify", self.spec_file),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=self.env, cwd=self.scratch,
            )  # fmt: skip
        if k < len(self.processes):
            self.processes[k] = process
        else:
            self.processes.append(process)
        self.started[k], self.under_way[k] = False, {}
        threading.Thread(target=_pump, args=(k, process, self.events), daemon=True).start()
        _hand_out(process, self.waiting, self.running[k], self.specs)

    def serve(self) -> None:
        """Every process's events, until every process has ended."""
        alive = len(self.processes)
        while alive:
            k, event = self.events.get()
            if event is None:
                alive -= not self.ended(k)
            else:
                self.on_event(k, event.pop("event"), event)

    def ended(self, k: int) -> bool:
        """Process k's output ended. If it died during a model, that model fails and, with models left, a fresh
        process goes on: whether one did."""
        if not (self.running[k] and self.started[k]):
            return False
        self.processes[k].wait()
        index = self.running[k].popleft()
        spec = self.specs[index]
        self.results[index] = died(spec, self.processes[k].returncode, self.under_way[k], self.environment, self.logs[k], self.memory)
        self.progress(progress_line(len(self.results), len(self.specs), self.results[index]))
        if not self.waiting:
            return False
        with open(self.logs[k], "a", encoding="utf-8") as log:
            log.write(f"\n--- a fresh process after {spec.name} ---\n")
        self.start(k, "a")
        return True

    def on_event(self, k: int, kind: str, event: dict) -> None:
        if kind == "environment":
            self.started[k] = True
            if not self.environment:
                self.environment = event
                self.progress(
                    _(
                        "verifying {models} model(s) in {jobs} process(es) with {executable} (Python {python}, torch "
                        "{torch}, Ultralytics {release}, device {device})"
                    ).format(
                        models=len(self.specs), jobs=self.jobs, executable=event["executable"], python=event["python"],
                        torch=event["torch"], release=event["release"], device=self.device,
                    )
                )
        elif kind == "shadowed":
            raise UltrapatchError(shadow_message(self.tree, self.python, event))
        elif kind == "error":
            raise UltrapatchError(event["message"] + ".")
        elif kind == "checking":
            self.under_way[k] = event
        elif kind == "model":
            self.results[self.running[k].popleft()] = event
            self.under_way[k] = {}
            self.progress(progress_line(len(self.results), len(self.specs), event))
            _hand_out(self.processes[k], self.waiting, self.running[k], self.specs)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()

    def raise_if_stranded(self) -> None:
        """A process that ended with models of its handed out and unreported (before it started up): a sentence."""
        for k, process in enumerate(self.processes):
            if self.running[k]:
                tail = self.logs[k].read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
                raise UltrapatchError(
                    _("a verification process in {python} stopped (exit {code}) while verifying {model}; the last lines of its log ({log}):").format(
                        python=self.python, code=process.returncode, model=self.specs[self.running[k][0]].name, log=self.logs[k]
                    )
                    + "\n  "
                    + "\n  ".join(tail)
                )


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
        how = _("was killed by signal {signal}").format(signal=-code)
        if -code == 9 and memory:
            how += _(" (SIGKILL: most likely the kernel's out-of-memory killer; each process may hold {gib:.1f} GiB, and `--jobs 1` gives one process more)").format(gib=memory / (1 << 30))
        elif -code == 9:
            how += _(" (SIGKILL: most likely the kernel's out-of-memory killer)")
    else:
        how = _("exited with code {code}").format(code=code)
    tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:] if log.exists() else []
    current = under_way.get("check")
    checks = {name: dict(verdict) for name, verdict in (under_way.get("checks") or {}).items()}
    order = list(environment.get("checks") or []) or list(checks) + ([current] if current else [])
    for name in order:
        if name in checks:
            continue
        if name == current or (current is None and not checks):
            reason = _("the verification process {how} during this check").format(how=how)
            reason += _("; its log ends: {line}").format(line=tail[-1][:200]) if tail else ""
            checks[name] = {"status": "fail", "reason": reason, "cause": "error", "seconds": 0.0}
            current = name
        else:
            checks[name] = {"status": "skip", "reason": _("the verification process {how} during {check}").format(how=how, check=current),
                            "cause": "not-applicable", "seconds": 0.0}  # fmt: skip
    return {
        **{k: v for k, v in spec.to_json().items() if k in ("yaml", "family", "task")},
        "name": spec.shown,
        "backbone": spec.variant,
        "ok": False,
        "layers": None,
        "params": None,
        "gflops": None,
        "stock": {"name": spec.stock},
        "checks": checks,
        "seconds": under_way.get("seconds", 0.0),
    }


def unique_log(what: str) -> Path:
    """A new log file of this run's in the temporary folder (`ultrapatch-verify-1-XXXX.log`): two runs never share
    one, and every message that points to a log names its file."""
    fd, name = tempfile.mkstemp(prefix=f"ultrapatch-{what}-", suffix=".log")
    os.close(fd)
    return Path(name)


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
