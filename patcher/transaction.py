"""All the writes of one apply or revert, made so that a process killed at any instant leaves a tree the next run
can finish: a journal first, then the files, then the record, then the journal is removed.

The journal (`.ultrapatch/journal.json`) holds, per file, the bytes it must end with (or its removal) and the hash
of what it held before; the record apply keeps (or its removal, for a full revert); and the folders to remove. It is
written atomically before the first file is touched. A run that finds a journal completes it (every step is
idempotent), unless a file holds neither its before nor its after bytes: someone changed it since, and ultrapatch
stops rather than overwrite that.

One run at a time: the process working on the tree holds a lock on `.git/ultrapatch.lock` (`.ultrapatch/lock` outside
git; `patcher/locking.py`: flock, msvcrt on Windows) and writes its pid there for the message a second run gets
(exit 2). The OS releases the lock when a process dies, so a lock left by a killed run is simply taken.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from patcher import locking, records
from patcher.errors import UltrapatchError, WriteFailed, os_reason
from patcher.i18n import _
from patcher.planner import TEMP_SUFFIX, crash_point, replace, stage, start_write_points, write_atomic, write_point

JOURNAL = f"{records.STATE_DIR}/journal.json"
LOCK = f"{records.STATE_DIR}/lock"
GIT_LOCK = ".git/ultrapatch.lock"  # in a git repository, beside git's own locks: nothing shows in the tree meanwhile


def lock_path(root: Path) -> Path:
    return root / GIT_LOCK if (root / ".git").is_dir() else root / LOCK


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


@dataclass
class WritePlan:
    """What an apply or a revert will write, planned before anything is: the shape both share.

    `writes` maps a file to its new bytes (None: remove it), `current` each file looked at to what it holds now (None:
    absent); `merged` are files with changes of the user's carried over, `conflicts` files where those overlap
    ultrapatch's edits (the regions, as "lines a-b"), and `record` the record afterwards (None: forget it)."""

    writes: dict[str, bytes | None] = field(default_factory=dict)
    current: dict[str, bytes | None] = field(default_factory=dict)
    merged: list[str] = field(default_factory=list)
    conflicts: dict[str, list[str]] = field(default_factory=dict)
    record: records.State | None = None

    @property
    def before(self) -> dict[str, str | None]:
        """The sha256 of what each file looked at holds now (None: absent): what the journal checks."""
        return {rel: None if data is None else records.sha256(data) for rel, data in self.current.items()}

    def diff(self) -> bytes:
        """A `git apply`-able unified diff of the writes, each file's in its own encoding."""
        from patcher.planner import bytes_diff

        return b"".join(bytes_diff(rel, self.current.get(rel), data) for rel, data in sorted(self.writes.items()))


@dataclass
class Transaction:
    """What one run writes: `writes` maps a file to its new bytes (None: remove it); `before` to the sha256 of what
    it holds now (None: absent); `record` is the new state (None: forget it); `dirs` are folders to remove if empty."""

    operation: str
    writes: dict[str, bytes | None] = field(default_factory=dict)
    before: dict[str, str | None] = field(default_factory=dict)
    record: records.State | None = None
    dirs: list[str] = field(default_factory=list)
    exclude_ours: bool = True  # when `record` is None: the exclude line is apply's to take out (not journaled: the
    # exclude file's new bytes are among `writes` by then)

    def to_json(self) -> str:
        return json.dumps(
            {
                "operation": self.operation,
                "writes": {rel: _b64(data) for rel, data in self.writes.items()},
                "before": self.before,
                "record": None if self.record is None else json.loads(self.record.to_json()),
                "dirs": self.dirs,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Transaction:
        data = json.loads(text)
        record = None if data["record"] is None else records.State.from_json(json.dumps(data["record"]))
        writes = {rel: _unb64(b) for rel, b in data["writes"].items()}
        return cls(data["operation"], writes, data["before"], record, data["dirs"])

    def commit(self, root: Path) -> None:
        """All of the run's writes, or none of them.

        The journal goes first, so that a run killed at any later instant is completed by the next one. Then every
        new file is staged (written in full and flushed beside its target) and every target is checked to be
        replaceable: a failure there (permission, immutable flag, read-only file system, no space) removes what was
        staged and the journal, and the tree is as it was. Then the renames, which need no space: should one fail
        anyway, the files already replaced are put back."""
        # git status stays clean of our folder; a full revert takes the line out only where apply put it in
        present = self.record is not None
        exclude = records.excluded(root, present) if present or self.exclude_ours else None
        if exclude is not None:
            self.before[records.EXCLUDE_FILE] = _sha(_read(root / records.EXCLUDE_FILE))
            self.writes[records.EXCLUDE_FILE] = exclude
        _refuse_links(root, [*self.writes, records.STATE_FILE, JOURNAL])
        old = {rel: _read(root / rel) for rel in [*self.writes, records.STATE_FILE]}
        journal = self.to_json().encode("utf-8")
        record = None if self.record is None else self.record.to_json().encode("utf-8")
        _check_space(root, len(journal) + len(record or b"") + sum(len(d) for d in self.writes.values() if d))
        staged: dict[str, Path] = {}
        made: list[Path] = []
        rel = JOURNAL
        try:
            write_atomic(root / JOURNAL, journal)
            for rel, data in [*self.writes.items(), (records.STATE_FILE, record)]:
                path = root / rel
                if path.exists():
                    _check_replaceable(path)
                if data is not None:
                    made += _make_parents(path.parent)
                    staged[rel] = stage(path, data)
        except OSError as exc:
            _discard(staged, made, root / JOURNAL)
            raise WriteFailed(rel, exc) from None
        try:
            self._finish(root, staged)
        except OSError as exc:
            failed = Path(exc.filename).relative_to(root).as_posix() if exc.filename else "a file"
            try:
                for name, data in old.items():
                    if _read(root / name) != data:
                        if data is None:
                            (root / name).unlink()
                        else:
                            write_atomic(root / name, data)
                _discard(staged, made, root / JOURNAL)
            except OSError:
                raise WriteFailed(
                    failed,
                    exc,
                    _(
                        "{reason}, and putting back the files already written failed too; {journal} is kept, and the "
                        "next apply or revert completes this run"
                    ).format(reason=os_reason(exc), journal=JOURNAL),
                ) from None
            raise WriteFailed(failed, exc) from None

    def _finish(self, root: Path, staged: dict[str, Path] | None = None) -> None:
        staged = dict(staged or {})
        for rel, data in self.writes.items():
            path = root / rel
            if data is None:
                if path.exists():
                    crash_point()
                    write_point(path)
                    path.unlink()
            elif rel in staged:
                replace(staged.pop(rel), path)
            elif not path.is_file() or path.read_bytes() != data:
                write_atomic(path, data)
        for rel in self.dirs:
            _remove_if_empty(root / rel)
        if self.record is None:
            write_point(root / records.STATE_FILE)
            records.forget(root)
        elif records.STATE_FILE in staged:
            replace(staged.pop(records.STATE_FILE), root / records.STATE_FILE)
        else:
            records.save(root, self.record)
        crash_point()
        write_point(root / JOURNAL)
        (root / JOURNAL).unlink()
        crash_point()


def _refuse_links(root: Path, rels: list[str]) -> None:
    """Bad input when a file to write, or a folder on its way, is a symbolic link: writing through it could change a
    file outside the tree, and replacing it would lose the user's link. The tree's root itself may be a link."""
    for rel in rels:
        path = root
        for part in Path(rel).parts:
            path = path / part
            if path.is_symlink():
                raise UltrapatchError(
                    f"{path.relative_to(root).as_posix()} is a symbolic link (to {os.readlink(path)}), and ultrapatch "
                    f"writes {rel} there. It never writes through a link (that could change a file outside the tree) "
                    f"nor replaces one: put a copy of what the link points to in its place, or apply in the tree it "
                    f"points to, then run the command again. Nothing was changed."
                )
            if not path.exists():
                break


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _sha(data: bytes | None) -> str | None:
    return None if data is None else records.sha256(data)


def _check_space(root: Path, needed: int) -> None:
    """Refuse before the first write when the file system has not room for the run (with 1 MiB to spare)."""
    free = shutil.disk_usage(root).free
    if free < needed + 2**20:
        raise WriteFailed(
            f"{root}", reason=f"no space left on the device: this run needs {needed / 2**20:.1f} MiB and "
            f"{free / 2**20:.1f} MiB are free"
        )


def _check_replaceable(path: Path) -> None:
    """An OSError now, before anything is written, where replacing or removing `path` would fail later: an
    immutable or append-only file refuses to be opened for writing, even by root."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.close(fd)


def _make_parents(directory: Path) -> list[Path]:
    """Make `directory` and its missing parents; the folders made, deepest last."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for folder in reversed(missing):
        write_point(folder)
        folder.mkdir()
    return list(reversed(missing))


def _discard(staged: dict[str, Path], made: list[Path], journal: Path) -> None:
    """Undo a run's preparations: its staged files, the folders it made for them, and its journal."""
    for tmp in staged.values():
        tmp.unlink(missing_ok=True)
    for folder in reversed(made):
        _remove_if_empty(folder)
    journal.unlink(missing_ok=True)


def _remove_if_empty(directory: Path) -> None:
    """Remove a folder that holds nothing but Python's byte-code cache."""
    if directory.is_dir() and not any(p for p in directory.iterdir() if p.name != "__pycache__"):
        for cache in directory.glob("__pycache__"):
            for item in cache.iterdir():
                item.unlink()
            cache.rmdir()
        directory.rmdir()


def _remove_temporaries(path: Path) -> None:
    """The temporary files `write_atomic` makes beside `path`, left by a killed run."""
    if path.parent.is_dir():
        for temporary in path.parent.glob(f".{path.name}.*{TEMP_SUFFIX}"):
            temporary.unlink(missing_ok=True)


def recover(root: Path) -> Transaction | None:
    """Complete a run that was killed; that run's transaction, or None when there was nothing to complete."""
    journal = root / JOURNAL
    if not journal.is_file():
        return None
    try:
        transaction = Transaction.from_json(journal.read_text(encoding="utf-8"))
    except (ValueError, KeyError) as exc:
        raise UltrapatchError(f"{journal} is damaged ({exc}); restore the tree with git, then delete the file.") from exc
    changed = []
    for rel, data in transaction.writes.items():
        path = root / rel
        current = path.read_bytes() if path.is_file() else None
        if current != data and (None if current is None else records.sha256(current)) != transaction.before.get(rel):
            changed.append(rel)
    if changed:
        raise UltrapatchError(
            f"an interrupted {transaction.operation} left {journal}, and since then these files changed: "
            f"{', '.join(changed)}. ultrapatch will not overwrite them: restore them (or the whole tree) with git, "
            "then delete the journal."
        )
    for rel in transaction.writes:  # a kill between a temporary file's write and its rename leaves it behind
        _remove_temporaries(root / rel)
    transaction._finish(root)
    return transaction


def pending(root: Path) -> str | None:
    """The operation an interrupted run left unfinished, if any."""
    journal = root / JOURNAL
    if not journal.is_file():
        return None
    try:
        return json.loads(journal.read_text(encoding="utf-8")).get("operation", "run")
    except ValueError:
        return "run"


@contextmanager
def locked(root: Path, command: str) -> Iterator[None]:
    """Hold `.ultrapatch/lock` (`patcher.locking`: released by the OS when a holder dies) for the duration; another
    live holder is bad input (exit 2)."""
    lock = lock_path(root)
    start_write_points()
    try:
        fd = locking.take(lock)
    except OSError as exc:
        raise WriteFailed(lock.relative_to(root).as_posix(), exc) from None
    if fd is None:
        holder = locking.holder(lock)
        raise UltrapatchError(
            _(
                "another ultrapatch ({command}, pid {pid}, since {since}) is working on {root}; wait for it to finish, "
                "then run the command again."
            ).format(command=holder.get("command", "run"), pid=holder.get("pid", "?"), since=holder.get("since", "?"), root=root)
        )
    try:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(me).encode("utf-8"))
        for name in ("state.json", "journal.json"):  # what a killed run may have left half-written
            _remove_temporaries(root / records.STATE_DIR / name)
        yield
    finally:
        locking.release(lock, fd)
        try:
            state_dir = root / records.STATE_DIR
            if state_dir.is_dir() and not any(state_dir.iterdir()):
                state_dir.rmdir()
        except OSError:  # another process created its lock in the folder meanwhile: the folder stays
            pass
