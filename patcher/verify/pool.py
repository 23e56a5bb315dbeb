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
from patcher.launcher import command, fork_env
from patcher.tree import Tree
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
                    command(python, "verify", spec_file),
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
                        progress(progress_line(len(results), len(specs), results[index]))
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
                    raise UltrapatchError(shadow_message(tree, python, event))
                elif kind == "error":
                    raise UltrapatchError(event["message"] + ".")
                elif kind == "checking":
                    progress_of[k] = event
                elif kind == "model":
                    results[running[k].popleft()] = event
                    progress_of[k] = {}
                    progress(progress_line(len(results), len(specs), event))
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
