"""Plan, then write: run every edit on in-memory text, and touch the disk only when all of them succeeded.

A dry run and `--diff` are the plan printed; `--check` is the plan's emptiness; a failure leaves every byte as it was.
"""

from __future__ import annotations

import atexit
import difflib
import errno
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from patcher.edits.base import Context, Edit, EditError, NotInRelease, Status, Workspace
from patcher.tree import Tree


@dataclass(frozen=True)
class Report:
    """What one edit did, or would do."""

    edit: Edit
    status: Status
    detail: str = ""
    kept: tuple[str, ...] = ()  # what of the user's the edit kept where its own text would go


@dataclass
class Plan:
    tree: Tree
    reports: list[Report] = field(default_factory=list)
    changes: list[tuple[str, str | None, str]] = field(default_factory=list)
    raw: dict[str, tuple[bytes | None, bytes]] = field(default_factory=dict)  # per change: the bytes before and after

    @property
    def failed(self) -> list[Report]:
        return [r for r in self.reports if r.status is Status.FAILED]

    @property
    def ok(self) -> bool:
        return not self.failed

    def count(self, status: Status) -> int:
        return sum(r.status is status for r in self.reports)

    def diff(self) -> str:
        """A unified diff of every planned change, with paths relative to the tree's root (`git apply` reads it)."""
        return "".join(file_diff(rel, old, new) for rel, old, new in self.changes)


def file_diff(rel: str, old: str | None, new: str | None) -> str:
    """A `git apply`-able unified diff of one file's texts; None on either side is a file that does not exist there."""
    encode = lambda text: None if text is None else text.encode("utf-8")  # noqa: E731
    return bytes_diff(rel, encode(old), encode(new)).decode("utf-8")


def bytes_diff(rel: str, old: bytes | None, new: bytes | None) -> bytes:
    """A `git apply`-able unified diff of one file's bytes, in the file's own encoding: git compares bytes, so a
    Latin-1 file's diff must carry Latin-1 bytes. Lines end at b"\n" only, as git's do (a form feed, U+2028 or a
    lone \r inside a line does not end it, as it would for str.splitlines)."""

    def lines(data: bytes | None) -> list[str]:
        if data is None:
            return []
        parts = data.split(b"\n")
        found = [part + b"\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
        return [line.decode("latin-1") for line in found]  # one character a byte: difflib compares the bytes

    name = rel.encode("utf-8").decode("latin-1")
    diff = difflib.unified_diff(
        lines(old), lines(new), "/dev/null" if old is None else f"a/{name}", "/dev/null" if new is None else f"b/{name}"
    )
    text = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in diff)
    return text.encode("latin-1")


def make_plan(
    tree: Tree, edits: Sequence[Edit], ctx: Context, overlay: dict[str, bytes | None] | None = None, texts: bool = True
) -> Plan:
    """Run `edits` in order on one in-memory copy of the tree; each sees the text the previous ones left. `overlay`
    gives texts to start from instead of the disk's; the plan's changes are then relative to those. `texts=False`:
    the reports alone (what `status` asks), without generating the edited files' texts."""
    files = Workspace(tree.root, overlay)
    plan = Plan(tree)
    for edit in edits:
        if not edit.asked(ctx):
            continue
        before = files.snapshot()
        try:
            edit.apply(files, ctx)
        except NotInRelease as exc:
            plan.reports.append(Report(edit, Status.NOT_IN_RELEASE, str(exc)))
            continue
        except EditError as exc:
            plan.reports.append(Report(edit, Status.FAILED, str(exc)))
            continue
        status = Status.APPLIED if files.changed_since(before) else Status.ALREADY
        plan.reports.append(Report(edit, status, kept=tuple(edit.kept(files, ctx))))
    if texts:
        plan.changes = files.changes()
        plan.raw = {rel: (files.raw[rel], files.encoded(rel)) for rel, _old, _new in plan.changes}
    return plan


def edited_originals(
    tree: Tree, originals: dict[str, bytes | None], backbones: Sequence[str], yamls: dict[str, str] | None = None,
    modules: tuple = (),
) -> dict[str, bytes | None]:
    """What ultrapatch's edits for `backbones`, the user's `yamls` and module files make of `originals` (path: bytes, None for an
    absent file), and nothing else: per file of `originals`, the text with ultrapatch's edits and nobody else's (the
    original where they leave it alone). Nothing asked: the originals. EditFailed when the edits cannot be made."""
    from patcher.backbones import select_backbones
    from patcher.edits import EDITS
    from patcher.errors import EditFailed

    if not backbones and not yamls and not modules:
        return dict(originals)
    ctx = Context(tree.release, select_backbones(tuple(backbones)), yamls=tuple(sorted((yamls or {}).items())), modules=modules)
    plan = make_plan(tree, EDITS, ctx, overlay=originals)
    if not plan.ok:
        raise EditFailed(
            f"ultrapatch's edits for {', '.join([*backbones, *(yamls or {})])} cannot be made on the original files it recorded: "
            + "; ".join(r.detail for r in plan.failed)
        )
    result = dict(originals)
    for rel, (_old, new) in plan.raw.items():
        result[rel] = new
    return result


def write_plan(plan: Plan) -> None:
    """Write every changed file by atomic replace. Refuses a plan with failures: all or nothing."""
    if not plan.ok:
        raise ValueError("a plan with failed edits is never written")
    for rel, (_old, new) in plan.raw.items():
        write_atomic(plan.tree.root / rel, new)


TEMP_SUFFIX = ".ultrapatch-tmp"
CRASH_AT = "ULTRAPATCH_TEST_CRASH_AT"  # tests: the process kills itself (SIGKILL) at this step of its writes
FAIL_AT = "ULTRAPATCH_TEST_FAIL_AT"  # tests: the N-th write point of a run raises OSError (ENOSPC, or N:ERRNO_NAME)
_steps = 0
_write_points = 0


def crash_point() -> None:
    """One step of a run's writes. With ULTRAPATCH_TEST_CRASH_AT=N set, the N-th step is a SIGKILL: how the tests
    show that a run killed at any instant leaves a tree the next run completes."""
    global _steps
    target = os.environ.get(CRASH_AT)
    if target:
        _steps += 1
        if target == "count" and _steps == 1:  # how many steps a run has: printed at exit
            atexit.register(lambda: print(f"ultrapatch steps: {_steps}", file=sys.stderr))
        elif target.isdigit() and _steps == int(target):
            os.kill(os.getpid(), signal.SIGKILL)


def start_write_points() -> None:
    """A run begins: its write points are counted from one."""
    global _write_points
    _write_points = 0


def write_point(path: Path) -> None:
    """Every place a run writes, creates, replaces or removes a file. With ULTRAPATCH_TEST_FAIL_AT=N set, the N-th
    raises the OSError a failing file system would: how the tests show that any failed write leaves the tree as it
    was. `count` prints how many a run has."""
    global _write_points
    target = os.environ.get(FAIL_AT)
    if not target:
        return
    _write_points += 1
    if target == "count":
        print(f"ultrapatch write point {_write_points}: {path}", file=sys.stderr)
        return
    number, _, name = target.partition(":")
    if _write_points == int(number):
        code = getattr(errno, name or "ENOSPC")
        raise OSError(code, os.strerror(code), str(path))


def stage(path: Path, data: bytes) -> Path:
    """Write `data` to a temporary file beside `path` and flush it to disk; the temporary file. `path` is untouched."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    write_point(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def replace(tmp: Path, path: Path) -> None:
    """Rename a staged file over `path`: the step that makes a write visible, all at once."""
    crash_point()
    try:
        write_point(path)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    crash_point()


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace(stage(path, data), path)
