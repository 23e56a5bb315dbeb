"""verify's `--ddp N` check, the parent's half: the fork-side ranks (`patcher/fork/ddp.py`) started under
torch.distributed.run, their verdicts read back, an error (not a finding) run once more, and a failure of the stock
model in the same ranks attributed to the environment."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

from patcher.launcher import ddp_command, fork_env, tail
from patcher.tree import Tree
from patcher.verify.report import VerifyReport, cell
from patcher.verify.select import ModelSpec
from patcher.i18n import _


DDP_SIZE = 128  # the training batches' image size: DDP's bookkeeping does not depend on it


def check_ddp(tree: Tree, spec: ModelSpec, ranks: int, python: str, device: str, name: str | None = None) -> dict:
    """verify's `ddp` check on one model: `ranks` processes under torch.distributed.run in the fork's interpreter
    (ddp.py); the verdict of the first rank that fails, or a pass. A run that ended in an error rather than a finding
    (a rank's exception, or the launcher's failure) is run once more, and the verdict says so (`retried`): the
    check's findings are facts of the model, while a connection or a launch can fail once."""
    started = time.perf_counter()
    verdict = _launch_ddp(tree, spec, ranks, python, device, name)
    if verdict["status"] == "fail" and verdict["cause"] == "error":
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
            "tree": str(tree.root), "device": device, "name": name or spec.name, "builder": spec.builder,
            "task": spec.task, "imgsz": DDP_SIZE, "report": str(report),
        }), encoding="utf-8")  # fmt: skip
        env = {**fork_env(scratch), "OMP_NUM_THREADS": "1"}
        done = subprocess.run(ddp_command(python, ranks, spec_file), capture_output=True, text=True, env=env, cwd=scratch,
                              timeout=1800)  # fmt: skip
        verdicts = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(report.glob("rank-*.json"))]
    # a rank's own finding before a rank's crash, which may only echo another rank's exit
    failed = sorted((v for v in verdicts if v["status"] != "pass"), key=lambda v: v["cause"] != "finding")
    if failed:
        return {"status": "fail", "reason": failed[0]["reason"], "cause": failed[0]["cause"]}
    if done.returncode != 0 or len(verdicts) != ranks:
        said = _("torch.distributed.run exited {code}: {tail}").format(code=done.returncode, tail=tail(done.stderr, width=400))
        return {"status": "fail", "reason": said,
                "cause": "error"}  # fmt: skip
    return {"status": "pass", "reason": verdicts[0]["reason"], "cause": "none"}


def add_ddp(report: VerifyReport, tree: Tree, specs: list[ModelSpec], ranks: int, python: str, device: str,
            progress: Callable[[str], None] = lambda line: None) -> None:
    """Run the ddp check on every model that built, and put it in the report beside the other checks."""
    for spec, model in zip(specs, report.models):
        if model["checks"].get("build", {}).get("status") != "pass":
            model["checks"]["ddp"] = {"status": "skip", "reason": _("the model did not build"), "cause": "not-applicable", "seconds": 0.0}
            continue
        model["checks"]["ddp"] = verdict = check_ddp(tree, spec, ranks, python, device)
        if verdict["status"] == "fail":  # the stock model in the same ranks: a failure of both is the environment's
            stock = check_ddp(tree, spec, ranks, python, device, name=spec.stock)
            if stock["status"] == "fail":
                verdict.update(status="environment", reason=f"the stock {spec.stock} fails this check too: {stock['reason']}",
                               cause="environment", control=stock["reason"])  # fmt: skip
        model["ok"] = model["ok"] and verdict["status"] != "fail"
        outcome = cell(verdict["status"])
        line = f"ddp {spec.shown}: {outcome} in {verdict['seconds']} s"
        progress(line if verdict["status"] == "pass" else f"{line}: {verdict['reason']}")
