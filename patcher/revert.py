"""`ultrapatch revert`: give the tree back as it was before the first apply, from the record in `.ultrapatch/`.

A file still holding what ultrapatch wrote is restored byte for byte (or removed, if apply created it). A file the
user edited since is a conflict: nothing is written unless `--force`, which first saves the user's version beside
it as `<file>.ultrapatch-backup`. A created file the user edited since is kept, and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from patcher import state as records
from patcher.errors import EditFailed, UltrapatchError
from patcher.planner import file_diff, write_atomic
from patcher.tree import Tree

BACKUP_SUFFIX = ".ultrapatch-backup"


@dataclass
class RevertPlan:
    restore: dict[str, bytes | None] = field(default_factory=dict)  # None: remove the file
    conflicts: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # created files the user changed: left in place
    dirs: list[str] = field(default_factory=list)

    def diff(self, root: Path) -> str:
        """The unified diff revert would make: each file from its current text back to its original."""
        chunks = []
        for rel, original in sorted(self.restore.items()):
            path = root / rel
            current = path.read_text(encoding="utf-8") if path.is_file() else None
            chunks.append(file_diff(rel, current, None if original is None else original.decode("utf-8")))
        return "".join(chunks)


def plan_revert(tree: Tree) -> RevertPlan:
    state = records.load(tree.root)
    if state is None:
        raise UltrapatchError(f"nothing recorded in {tree.root / records.STATE_FILE}: ultrapatch has not applied anything here.")
    plan = RevertPlan(dirs=sorted(state.created_dirs, key=lambda d: -d.count("/")))
    for rel, record in state.files.items():
        path = tree.root / rel
        current = path.read_bytes() if path.is_file() else None
        if current is not None and records.sha256(current) != record.written:
            if record.original is None:
                plan.kept.append(rel)
                continue
            plan.conflicts.append(rel)
        if current is None and record.original is None:
            continue  # created, and already gone
        plan.restore[rel] = record.original
    return plan


def write_revert(tree: Tree, plan: RevertPlan, force: bool) -> list[str]:
    """Carry out `plan`; the backups made. Refuses conflicts without `force`."""
    if plan.conflicts and not force:
        raise EditFailed(
            "these files changed since ultrapatch wrote them, and revert would lose those changes: "
            + ", ".join(plan.conflicts)
            + ". Nothing was written. Commit or move your changes, or revert with --force to restore the originals "
            f"and keep your versions as <file>{BACKUP_SUFFIX}."
        )
    backups = []
    for rel in plan.conflicts:
        backup = tree.root / f"{rel}{BACKUP_SUFFIX}"
        write_atomic(backup, (tree.root / rel).read_bytes())
        backups.append(backup.relative_to(tree.root).as_posix())
    for rel, original in plan.restore.items():
        if original is None:
            (tree.root / rel).unlink(missing_ok=True)
        else:
            write_atomic(tree.root / rel, original)
    for rel in plan.dirs:
        directory = tree.root / rel
        if directory.is_dir() and not any(p for p in directory.iterdir() if p.name != "__pycache__"):
            for cache in directory.glob("__pycache__"):
                for item in cache.iterdir():
                    item.unlink()
                cache.rmdir()
            directory.rmdir()
    records.forget(tree.root)
    return backups
