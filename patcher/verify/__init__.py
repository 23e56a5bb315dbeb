"""`ultrapatch verify`, ultrapatch's side: choose the models, run the checks in the fork's own interpreter, report.

The checks themselves are `patcher/fork/checks/`, one module per check in one table, run by `patcher/fork/verify.py`
under the interpreter the user trains with (ultrapatch's own by default, or `--python`), started by the one launcher
(`patcher/launcher.py`). This side is one module per job:

- `select`: which installed YAMLs, at which scale, against which stock model;
- `pool`: the processes, each taking the next model as it finishes one, and the report of a process that died;
- `ddp`: `--ddp N`, the ranks under torch.distributed.run;
- `stock`: the stock check, every stock YAML built in the patched fork and in the unpatched one;
- `report`: the JSON report, the progress lines and the table.
"""

from __future__ import annotations

from patcher.fork.checks import CHECKS
from patcher.launcher import absolute_pythonpath, fork_env
from patcher.verify.ddp import add_ddp, check_ddp
from patcher.verify.pool import died, memory_limit, run, unique_log
from patcher.verify.report import VerifyReport, cell, render_table, shadow_message
from patcher.verify.select import (
    ModelSpec,
    check_python,
    installed_backbones,
    scaled_name,
    scales_of,
    select_models,
    variant_glob,
    variants_note,
)
from patcher.verify.stock import check_stock_models, compare_stock, originals_not_published, unpatched_release

__all__ = [
    "CHECKS", "ModelSpec", "VerifyReport", "absolute_pythonpath", "add_ddp", "cell", "check_ddp", "check_python",
    "check_stock_models", "compare_stock", "died", "fork_env", "installed_backbones", "list_checks", "memory_limit",
    "originals_not_published", "render_table", "run", "scaled_name", "scales_of", "select_models", "shadow_message",
    "unique_log", "unpatched_release", "variant_glob", "variants_note", "verify_tree",
]  # fmt: skip


def verify_tree(
    tree, specs: list[ModelSpec], python: str, device: str, export: str | None, jobs: int | None, whole: bool,
    threads: int | None, stock: bool | None, ddp: int | None, progress,
) -> VerifyReport:
    """A verify run: the checks on `specs`, then `--ddp`, then the stock check (by default only for a run over the
    whole tree, `whole`); progress lines through `progress`."""
    python = check_python(python)
    note = variants_note(tree, specs) if whole else None  # a --model selection is the user's own choice
    if note:
        progress(note)
    report = run(tree, specs, python, device, export, jobs, progress=progress, threads=threads)
    if ddp:
        add_ddp(report, tree, specs, ddp, python, device, progress)
    if whole if stock is None else stock:  # by default, a run over the whole tree checks every stock model too
        report.stock = check_stock_models(tree, python, progress)
    return report


def list_checks() -> str:
    """The checks' table, as `verify --list-checks` prints it: in order, with what each proves."""
    width = max(len(check.name) for check in CHECKS)
    lines = ["checks, in the order verify runs them on each model:"]
    lines += [f"{i:>3}. {check.name:<{width}}  {check.description}" for i, check in enumerate(CHECKS, 1)]
    lines.append(f"{len(CHECKS) + 1:>3}. {'ddp':<{width}}  with --ddp N: two training steps in N ranks under DDP; every parameter gets a gradient, and the ranks agree")
    lines.append(f"  +  {'stock':<{width}}  once per run: every stock YAML builds in the patched fork exactly as in the unpatched one")
    return "\n".join(lines)
