"""verify's `stock` check, the parent's half: every stock YAML of the release built in the patched fork and in the
unpatched one (the record's originals put back in a temporary copy), by `patcher/fork/stock.py` in both at once, and
compared: layer tables, parameters, save lists, strides, the stride probe, seeded outputs, and build time."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from patcher import records
from patcher.errors import UltrapatchError
from patcher.launcher import command, fork_env, tail
from patcher.tree import Tree
from patcher.i18n import N_, _


# The stock models' builds, all together, may take this much longer in the patched fork than in the release: the two
# run in separate processes at once, and measured 1.2-1.4x apart with the same code in each model (process state and
# load, not the edits). The exact part of "no slower" is the stride probe's size and the layer table, which must be
# the release's for every stock model; the clock catches only a gross slowdown.
SLOWER = 2.0


def check_stock_models(tree: Tree, python: str = sys.executable, progress: Callable[[str], None] = lambda line: None) -> dict:
    """verify's `stock` check: every stock model YAML of the release builds in the patched fork with the same layer
    table, parameters, save list, strides, stride probe and seeded outputs as in the unpatched release, which is
    rebuilt from the record's originals in a temporary folder, and its build takes no longer (all builds together,
    within SLOWER for timer noise). Both run at once, one core each, in `python`."""
    record = records.load(tree.root)
    if record is None:
        return {"status": "skip", "reason": _("no record of an apply here: the unpatched release cannot be rebuilt"), "models": 0}
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
        progress(_("stock models: building every stock YAML of the release in the patched fork and in the release itself"))
        processes = [
            subprocess.Popen(command(python, "stock", root, skip), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env, cwd=scratch)
            for root in (tree.root, release)
        ]  # fmt: skip
        outputs = [process.communicate() for process in processes]
    for process, (out, err) in zip(processes, outputs):
        if process.returncode != 0:
            said = _("the stock-model probe stopped (exit {code}): {tail}").format(code=process.returncode, tail=tail(err))
            return {"status": "fail", "reason": said, "models": 0}
    patched, stock = (json.loads(out) for out, _ in outputs)
    result = {**compare_stock(patched, stock, baseline), "baseline": baseline}
    changed = originals_not_published(tree, record)
    if changed:
        result["reason"] += _(
            "; the recorded originals are not Ultralytics {release}'s published text in {files} (changes made before "
            "ultrapatch's apply)"
        ).format(release=tree.release_text, files=", ".join(changed))
    return result


def originals_not_published(tree: Tree, record: records.State) -> list[str]:
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


def unpatched_release(tree: Tree, record: records.State, dest: Path, progress: Callable[[str], None]) -> str:
    """The release's own `ultralytics/` package in `dest`: the fork's, with the record's originals put back (a file
    ultrapatch created removed). Where the originals hold a tutorial applied by hand (apply adopted it), they are not
    the release: the release's source is taken from PyPI instead (pip's download, or ULTRAPATCH_SDIST_CACHE).
    Returns what the baseline is; UltrapatchError when there is none to be had."""
    originals = record.originals()
    if any(mark in (text or b"") for text in originals.values() for mark in TUTORIAL_MARKS):
        from patcher.fetch import cached_sdist, unpack

        progress(_("stock models: the originals hold a hand-applied tutorial; taking Ultralytics {release} from PyPI").format(release=tree.release_text))
        try:
            with tempfile.TemporaryDirectory(dir=dest.parent) as download:
                unpack(cached_sdist(tree.release_text, Path(download)), dest)
        except UltrapatchError as exc:
            raise UltrapatchError(
                _(
                    "the record's originals hold a tutorial applied by hand, so they are not the release, and the release "
                    "could not be had from PyPI ({error})"
                ).format(error=exc)
            ) from None
        return _("Ultralytics {release} from PyPI").format(release=tree.release_text)
    shutil.copytree(tree.root / "ultralytics", dest / "ultralytics", ignore=shutil.ignore_patterns("__pycache__"))
    for rel, original in originals.items():
        if not rel.startswith("ultralytics/"):
            continue
        target = dest / rel
        if original is None:
            target.unlink(missing_ok=True)
        else:
            target.write_bytes(original)
    return _("the unpatched fork (its files as they were before ultrapatch's apply, from the record)")


def compare_stock(patched: dict, stock: dict, baseline: str = N_("the release rebuilt from the record's originals")) -> dict:
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
    baseline = _(baseline)
    if differ:
        shown = ", ".join(differ[:5]) + (_(" and {count} more").format(count=len(differ) - 5) if len(differ) > 5 else "")
        said = _("{count} of {total} stock models differ from {baseline}: {shown}")
        return {**result, "status": "fail", "reason": said.format(count=len(differ), total=len(stock), baseline=baseline, shown=shown)}
    if ratio > SLOWER:
        said = _("the stock models take {ratio:.2f}x as long to build as in {baseline} ({mine:.1f} s against {theirs:.1f} s)")
        return {**result, "status": "fail", "reason": said.format(ratio=ratio, baseline=baseline, mine=mine_s, theirs=theirs_s)}
    said = _(
        "all {total} stock models build as in {baseline} (layer table, parameters, outputs), in {ratio:.2f}x its build "
        "time ({mine:.1f} s against {theirs:.1f} s)"
    )
    return {**result, "status": "pass", "reason": said.format(total=len(stock), baseline=baseline, ratio=ratio, mine=mine_s, theirs=theirs_s)}
