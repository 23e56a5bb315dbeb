"""`ultrapatch revert`: take ultrapatch's edits out of the tree, from the record in `.ultrapatch/`, and keep the user's.

What each file should become is worked out, not remembered: the original (for a full revert), or what apply makes of
the originals with the backbones that stay (for `--backbone NAME`). Then, per file:

- still as ultrapatch wrote it: it becomes that target, byte for byte (a created file is removed);
- changed by the user since: a three-way merge (`git merge-file`) of the user's version, ultrapatch's version as
  the base, and the target keeps the user's changes and drops ultrapatch's; overlapping changes are conflicts, and
  nothing is written unless `--force`, which saves the user's version as `<file>.ultrapatch-backup` first;
- created by ultrapatch, changed by the user, and not needed any more: kept, and reported.
"""

from __future__ import annotations

import os
import re
import shlex
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from patcher import records
from patcher.applying import disk, take_upgrade
from patcher.backbones import ADDMODULES_DIR, select_backbones
from patcher.errors import EditFailed, UltrapatchError
from patcher.i18n import _
EditFailed, UltrapatchError
from patcher.merge import merge
from patcher.planner import edited_originals
from patcher import gitops
from patcher.transaction import Transaction, WritePlan
from patcher.tree import Tree

@dataclass
class RevertPlan(WritePlan):
    """A revert's writes (WritePlan: `current` holds every recorded file), and what it leaves of the user's."""

    forced: dict[str, bytes | None] = field(default_factory=dict)  # the target of each conflict, for --force
    kept: list[str] = field(default_factory=list)  # created files the user changed, no longer needed: left
    dirs: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # backbones taken out
    unbuilt: list[str] = field(default_factory=list)  # what revert says of the user's YAMLs that use what it takes out
    commit: str | None = None  # the commit of an `apply --commit`, if any
    exclude_added: bool = True  # the record's: apply added the exclude line, so taking out everything takes it out


def plan_revert(tree: Tree, backbone_names: tuple[str, ...] = (), module_names: tuple[str, ...] = ()) -> RevertPlan:
    state = records.load(tree.root)
    if state is None:
        raise UltrapatchError(
            _("nothing recorded in {file}: ultrapatch has not applied anything here.").format(file=tree.root / records.STATE_FILE)
        )
    unknown = [name for name in module_names if name not in state.modules]
    if unknown:
        raise UltrapatchError(
            _("{names}: no module file of that name installed by ultrapatch here; the record lists {listed}.").format(
                names=", ".join(unknown), listed=", ".join(sorted(state.modules)) or _("none")
            )
        )
    partial = bool(backbone_names or module_names)
    removed = [b.name for b in select_backbones(backbone_names)] if partial else list(state.backbones)
    missing = [name for name in removed if name not in state.backbones]
    if missing:
        raise UltrapatchError(
            (
                _("{names} is not installed by ultrapatch here; the record lists {listed}.")
                if len(missing) == 1
                else _("{names} are not installed by ultrapatch here; the record lists {listed}.")
            ).format(names=", ".join(missing), listed=", ".join(state.backbones) or _("none"))
        )
    take_upgrade(tree, state)  # an upgraded fork: its release's files are what revert gives back
    remaining = [name for name in state.backbones if name not in removed]
    kept_yamls = state.yamls if partial else {}  # taking out backbones or modules leaves the user's YAMLs
    kept_modules = {k: v for k, v in state.modules.items() if k not in module_names} if partial else {}
    kept = records.State(state.release, modules=kept_modules)
    wanted = edited_originals(tree, state.originals(), remaining, kept_yamls, kept.module_files())
    taken = list(module_names) if partial else sorted(state.modules)  # module files, by name
    plan = RevertPlan(removed=removed + [f"{stem}.py" for stem in taken], commit=state.commit, exclude_added=state.exclude_added)
    plan.unbuilt = _unbuilt(tree, kept_yamls, {c for stem in module_names for c, _ in state.modules[stem]["roles"]})
    if not partial and state.yamls:
        plan.removed += sorted(rel.rsplit("/", 1)[-1] for rel in state.yamls)
    final: dict[str, bytes | None] = {}
    for rel, record in state.files.items():
        current = disk(tree, rel)
        target = wanted[rel]
        plan.current[rel] = current
        if current == record.ours:
            result = target  # nothing of the user's in it
        elif current is None:
            if target is not None:
                plan.conflicts[rel] = ["deleted since apply"]
                plan.forced[rel] = target
            continue
        elif target is None:  # created by ultrapatch, changed by the user, not needed any more
            plan.kept.append(rel)
            final[rel] = current
            continue
        else:  # the user's changes are what lies between ours and the file: carry them onto the target
            result, regions = merge(current, record.ours, target)
            if regions:
                plan.conflicts[rel] = regions
                plan.forced[rel] = target
                continue
            plan.merged.append(rel)
        final[rel] = result
        if result != current:
            plan.writes[rel] = result
    if remaining or kept_yamls or kept_modules:
        record = records.State(state.release, remaining, commit=state.commit, exclude_added=state.exclude_added,
                               yamls=dict(kept_yamls), modules=kept_modules)  # fmt: skip
        for rel, old in state.files.items():
            if wanted[rel] != old.original and rel not in plan.kept:  # still edited (or created) by ultrapatch
                record.files[rel] = records.FileRecord(old.original, wanted[rel] or b"")
        record.created_dirs = [d for d in state.created_dirs if any(f.startswith(d + "/") for f in record.files)]
        plan.record = record
    plan.dirs = sorted(state.created_dirs, key=lambda d: -d.count("/"))
    return plan


def write_revert(tree: Tree, plan: RevertPlan, force: bool) -> list[str]:
    """Carry out `plan` as one transaction; the backups made. Refuses conflicts without `force`."""
    if plan.conflicts and not force:
        regions = "; ".join(f"{rel} ({', '.join(where)})" for rel, where in plan.conflicts.items())
        raise EditFailed(
            _(
                "your changes overlap ultrapatch's edits in: {regions}. Nothing was written. Resolve them (or commit or "
                "move your changes), or revert with --force to restore ultrapatch's originals and keep your versions as "
                "<file>{suffix}."
            ).format(regions=regions, suffix=records.BACKUP_SUFFIX)
        )
    writes = dict(plan.writes)
    backups = []
    for rel, target in plan.forced.items():
        path = tree.root / rel
        if path.is_file():
            backup = f"{rel}{records.BACKUP_SUFFIX}"
            writes[backup] = path.read_bytes()
            backups.append(backup)
        writes[rel] = target
    before = dict(plan.before)
    for backup in backups:
        existing = tree.root / backup
        before[backup] = records.sha256(existing.read_bytes()) if existing.is_file() else None
    Transaction("revert", writes, before, plan.record, plan.dirs, exclude_ours=plan.exclude_added).commit(tree.root)
    return backups


def notes(plan: RevertPlan) -> list[str]:
    """What revert says before it writes: the files where the user's changes are kept, and the user's YAMLs that
    will not build without what it takes out."""
    return [f"merged {rel}: your changes kept, ultrapatch's taken out" for rel in plan.merged] + [
        f"kept {rel}: created by ultrapatch, changed by you since" for rel in plan.kept
    ] + plan.unbuilt


def _unbuilt(tree: Tree, yamls: dict[str, str], classes: set[str]) -> list[str]:
    from patcher.fork.yamlfile import parse

    said = []
    for rel, text in sorted(yamls.items()):
        used = [name for name in parse(text, rel).modules() if name in classes]
        if used:
            note = _(
                "note: {file} (yours) uses {names}, which this revert takes out: it will not build until `{command}` puts it back"
            ) if len(used) == 1 else _(
                "note: {file} (yours) uses {names}, which this revert takes out: it will not build until `{command}` puts them back"
            )  # fmt: skip
            said.append(note.format(file=rel, names=", ".join(used), command=f"ultrapatch apply {shlex.quote(str(tree.root))} --module FILE.py"))
    return said


def touched(plan: RevertPlan) -> list[str]:
    """The files a revert writes (with --force, the conflicting ones too)."""
    return sorted({*plan.writes, *plan.forced})


def uncommitted_notes(tree: Tree, plan: RevertPlan) -> list[str]:
    """After the writes: the files whose content now differs from what the user had committed before ultrapatch,
    through changes of theirs that revert kept."""
    before_ultrapatch = f"{plan.commit}^" if plan.commit else "HEAD"  # what the user had committed
    said = []
    for rel in gitops.uncommitted(tree.root, [r for r in touched(plan) if (tree.root / r).exists()]):
        restored = plan.record is None and rel in plan.writes
        if rel in plan.merged or (restored and plan.writes[rel] != gitops.committed(tree.root, before_ultrapatch, rel)):
            said.append(_("note: {file} has uncommitted changes of yours; they are kept").format(file=rel))
    return said


def commit(tree: Tree, plan: RevertPlan, backups: list[str]) -> str | None:
    """After an `apply --commit`: the reverse change as one commit, where revert wrote nothing of the user's; its hash."""
    from patcher import __version__

    files = touched(plan)
    if not (plan.commit and files) or plan.merged or plan.kept or backups:
        return None
    return gitops.commit(
        tree.root,
        files,
        f"ultrapatch: take out {', '.join(plan.removed)}\n\nReverts the files of {plan.commit[:10]} "
        f"(ultrapatch {__version__}).",
    )


def stranded_notes(tree: Tree, plan: RevertPlan) -> list[str]:
    """Before revert writes: the checkpoints under the tree that need a module it takes out, everything each needs,
    and the command that makes it load again."""
    stranded = stranded_checkpoints(tree.root, removed_modules(plan))
    if not stranded:
        return []
    said = [
        _(
            "note: {count} checkpoint(s) here hold classes of ultralytics/nn/AddModules/ that this revert takes out, "
            "and will not load without them:"
        ).format(count=len(stranded))
    ]
    for rel, needs in stranded.items():
        timm = f" ({', '.join(f'timm:{n}' for n in needs.timm)})" if needs.timm else ""
        command = needs.command(tree.root)
        needed = ", ".join(needs.modules) + timm
        if command:
            said.append(_("  {file} needs {needed}; it loads again after `{command}`").format(file=rel, needed=needed, command=command))
        else:
            said.append(_("  {file} needs {needed}").format(file=rel, needed=needed))
    said.append(
        _(
            "  To take out only some backbones, name the others with `revert -b`; to carry a checkpoint to a tree "
            "without its backbone, first `{command}`."
        ).format(command=f"ultrapatch export-checkpoint CHECKPOINT OUT.pt --tree {shlex.quote(str(tree.root))}")
    )
    return said


CHECKPOINT_SUFFIXES = (".pt", ".pth")
ADDMODULES_CLASS = re.compile(rb"ultralytics\.nn\.AddModules\.(\w+)")
SKIPPED_DIRS = {".git", records.STATE_DIR, "__pycache__"}


def removed_modules(plan: RevertPlan) -> set[str]:
    """The AddModules module files (their stems) this revert removes."""
    return {
        Path(rel).stem
        for rel, data in plan.writes.items()
        if data is None and rel.startswith(ADDMODULES_DIR + "/") and rel.endswith(".py")
    }


@dataclass(frozen=True)
class Needs:
    """What a checkpoint needs of ultralytics/nn/AddModules/: its module files (stems) and the timm models its
    TimmBackbone layers were built from."""

    modules: tuple[str, ...]
    timm: tuple[str, ...]

    def command(self, root: Path) -> str | None:
        """The apply that makes the checkpoint load again; None when no backbone of ultrapatch's is among them."""
        from patcher.backbones import BACKBONES

        shipped = {b.module_file.removesuffix(".py") for b in BACKBONES.values()} | {"BackboneMap", "TimmBackbone"}
        names = [b.name for b in BACKBONES.values() if b.module_file.removesuffix(".py") in self.modules]
        names += [f"timm:{name}" for name in self.timm]
        if "TimmBackbone" in self.modules and not self.timm:
            names.append("timm:NAME")  # the model's name is not in the checkpoint's pickle as a plain string
        yours = [stem for stem in self.modules if stem not in shipped]  # module files of the user's (`--module`)
        if not names and not yours:
            return None
        return f"ultrapatch apply {shlex.quote(str(root))} " + " ".join(
            [f"-b {shlex.quote(n)}" for n in names] + [f"--module {stem}.py" for stem in yours]
        )


def stranded_checkpoints(root: Path, modules: set[str]) -> dict[str, Needs]:
    """Checkpoints under `root` (a `runs/.../best.pt`) whose pickled model names a class of one of `modules`: they
    stop loading once those files are gone. Each with everything it needs of AddModules/, not only what this revert
    takes out. Read without unpickling: the module paths are plain strings in the checkpoint's pickle."""
    found: dict[str, Needs] = {}
    if not modules:
        return found
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            if not name.endswith(CHECKPOINT_SUFFIXES):
                continue
            path = Path(folder) / name
            needs = checkpoint_needs(path)
            if set(needs.modules) & modules:
                found[path.relative_to(root).as_posix()] = needs
    return found


def checkpoint_needs(path: Path) -> Needs:
    """What the checkpoint at `path` needs of ultralytics/nn/AddModules/, read without unpickling it."""
    data = _pickle_bytes(path)
    needed = tuple(sorted(set(m.decode() for m in ADDMODULES_CLASS.findall(data))))
    return Needs(needed, _timm_names(data) if "TimmBackbone" in needed else ())


def _timm_names(data: bytes) -> tuple[str, ...]:
    """The `model_name` of each TimmBackbone in a pickle: the string that follows the key "model_name" in its state,
    read from the pickle's opcodes (memoised strings followed), never by unpickling."""
    import pickletools

    memo: dict[int, str] = {}
    strings: list[str | None] = []
    names: list[str] = []
    try:
        for opcode, arg, _pos in pickletools.genops(data):
            if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
                strings.append(arg)
            elif opcode.name == "MEMOIZE":
                memo[len(memo)] = strings[-1] if strings else None  # type: ignore[assignment]
                continue
            elif opcode.name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[int(arg)] = strings[-1] if strings else None  # type: ignore[assignment]
                continue
            elif opcode.name in ("BINGET", "LONG_BINGET", "GET"):
                strings.append(memo.get(int(arg)))
            else:
                strings.append(None)
            if len(strings) >= 2 and strings[-2] == "model_name" and isinstance(strings[-1], str):
                names.append(strings[-1])
    except Exception:  # noqa: BLE001 - a pickle this reader does not follow: no names, the note says NAME
        pass
    return tuple(dict.fromkeys(names))


def _pickle_bytes(path: Path) -> bytes:
    """The pickle of a torch checkpoint: `*/data.pkl` of the zip torch.save writes, else the file's own bytes (the
    legacy format, where the pickle comes first)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return b"".join(archive.read(n) for n in archive.namelist() if n.endswith("data.pkl"))
        with open(path, "rb") as handle:
            return handle.read(64 << 20)
    except (OSError, zipfile.BadZipFile):
        return b""
