"""What an apply writes, and the record it leaves: the edits run on the tree's texts (their reports), and every file
ends as ultrapatch's text for all the recorded backbones plus the user's changes.

The first apply on a tree edits the files as they are; whatever they held becomes the originals. A later apply works
from the record: `ours` for the old backbones and for the new set are both made from the originals, and each file
becomes the new `ours` when it held the old one, or the three-way merge of the user's file onto the new `ours`
otherwise. So the disk is always `ours` plus the user's changes, which is what lets revert take out exactly
ultrapatch's part, however many applies came before.

What the edits report is judged on the disk (`judged_texts`), never on the record: a file the user restored with
`git checkout`, or a YAML they deleted, reports its edits as not applied, and apply puts them back. The record only
guides the merge. A file that lost some of ultrapatch's edits first gets them made again on the disk's text, as a
first apply makes them, and only then is merged (merged as it was, the loss would be carried over as a change of the
user's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from patcher import gitops
from patcher import records
from patcher.errors import EditFailed
from patcher.i18n import _
EditFailed
from patcher.backbones import Backbone, backbone_order, select_backbones
from patcher.edits import EDITS
from patcher.edits.addmodules import INIT
from patcher.edits.base import Context, ModuleFile
from patcher.merge import merge
from patcher.planner import Plan, edited_originals, make_plan
from patcher.transaction import Transaction, WritePlan
from patcher.tree import Tree


@dataclass
class ApplyPlan(WritePlan):
    """An apply's writes (WritePlan), with the edits' reports on the tree's current texts (`plan`)."""

    plan: Plan | None = None  # the edits on the tree's current texts: what each reports
    fresh: list[str] = field(default_factory=list)  # files this apply is the first to write: their text is the original
    restored: list[str] = field(default_factory=list)  # files that had lost ultrapatch's edits (or were deleted): put back
    upgraded: list[str] = field(default_factory=list)  # files whose originals are the newer release's (an upgraded fork)
    yamls: list[str] = field(default_factory=list)  # the user's YAMLs this apply installs (`--yaml`), by installed path
    modules: list[str] = field(default_factory=list)  # the user's module files this apply installs (`--module`), by name


def disk(tree: Tree, rel: str) -> bytes | None:
    path = tree.root / rel
    return path.read_bytes() if path.is_file() else None


def recorded_texts(tree: Tree, record: records.State | None) -> dict[str, bytes | None]:
    """What each file the record names holds on disk now (None: absent), read once per plan."""
    return {} if record is None else {rel: disk(tree, rel) for rel in record.files}


def judged_texts(
    tree: Tree, record: records.State | None, current: dict[str, bytes | None] | None = None
) -> dict[str, bytes | None]:
    """The overlay the edits are judged on: the disk, except a whole file ultrapatch created (a backbone's module, a
    YAML) that the user changed since: it is there, which is all its edit promises, and the changes are the user's
    (read as ultrapatch's own text, they are neither refused nor undone). AddModules/__init__.py is judged as it is:
    its edit is one import line per backbone."""
    if record is None:
        return {}
    current = recorded_texts(tree, record) if current is None else current
    return {
        rel: record.files[rel].ours
        for rel in record.created() - {INIT}
        if current[rel] is not None and current[rel] != record.files[rel].ours
    }


def plan_apply(
    tree: Tree, backbones: tuple[Backbone, ...], yamls: dict[str, str] | None = None, modules: tuple[ModuleFile, ...] = ()
) -> ApplyPlan:
    """Plan an apply of `backbones`, the user's `yamls` (installed path: text) and module files; writes nothing. The
    caller refuses a plan with failed edits or conflicts."""
    yamls = yamls or {}
    record = records.load(tree.root)
    upgraded = [] if record is None else take_upgrade(tree, record)
    created = frozenset() if record is None else record.created()
    current = recorded_texts(tree, record)
    overlay = judged_texts(tree, record, current)
    asked = Context(tree.release, backbones, created, tuple(sorted(yamls.items())), modules)
    plan = make_plan(tree, EDITS, asked, overlay=overlay)
    named = {"yamls": sorted(yamls), "modules": [f"{f.stem}.py" for f in modules]}
    if not plan.ok:
        return ApplyPlan(record=record or records.State(tree.release_text), plan=plan, **named)
    if record is None:  # the first apply: the files as they are now are the originals
        record = records.State(tree.release_text, [b.name for b in backbones], yamls=dict(yamls))
        record.modules = _module_entries(modules)
        record.exclude_added = records.excluded(tree.root, present=True) is not None  # else the line is the user's
        result = ApplyPlan(record=record, plan=plan, **named)
        for rel, (original, new) in plan.raw.items():
            record.note_original(tree.root, rel, original)
            result.fresh.append(rel)
            record.files[rel].ours = result.writes[rel] = new
            result.current[rel] = original
        return result
    result = ApplyPlan(record=record, plan=plan, upgraded=upgraded, **named)
    repaired = _repaired(tree, record, created, overlay, current)
    if isinstance(repaired, Plan):  # the recorded edits cannot be made again on the disk: its reports say why
        return ApplyPlan(record=record, plan=repaired)
    if not plan.changes and not repaired and not upgraded:
        return result
    for rel, (original, _new) in plan.raw.items():
        if rel not in record.files:
            record.note_original(tree.root, rel, original)
            result.fresh.append(rel)
    record.backbones = sorted({*record.backbones, *(b.name for b in backbones)}, key=backbone_order)
    record.yamls = {**record.yamls, **yamls}
    record.modules = {**record.modules, **_module_entries(modules)}
    new_ours = edited_originals(tree, record.originals(), record.backbones, record.yamls, record.module_files())
    for rel, file_record in record.files.items():
        now = current.get(rel, file_record.original)  # a file first noted by this apply holds its original
        if rel in repaired:
            result.restored.append(rel)
        have = repaired.get(rel, now)  # the disk, with any edit of ultrapatch's it lost made again
        new = new_ours[rel] or b""
        if have is None or have == file_record.ours:
            target = new
        else:  # the user's changes are what lies between ours and the file: carried onto the new text
            target, regions = merge(have, file_record.ours, new)
            if regions:
                result.conflicts[rel] = regions
                continue
            result.merged.append(rel)
        file_record.ours = new
        if target != now:
            result.writes[rel], result.current[rel] = target, now
    return result


def _repaired(
    tree: Tree, record: records.State, created: frozenset[str], overlay: dict[str, bytes | None],
    current: dict[str, bytes | None],
) -> dict[str, bytes] | Plan:
    """The recorded files that lost some of ultrapatch's edits for the recorded backbones (restored with `git
    checkout`, deleted, a line taken out), each with those edits made again on its disk text, as a first apply makes
    them; the failed plan when they cannot be made there. Only files that differ
    from ultrapatch's text are looked at; a file whose edits are all there is not in the result."""
    differ = [rel for rel, r in record.files.items() if rel not in overlay and current[rel] != r.ours]
    if not differ:
        return {}
    ctx = Context(tree.release, select_backbones(tuple(record.backbones)), created, tuple(sorted(record.yamls.items())),
                  record.module_files())  # fmt: skip
    plan = make_plan(tree, EDITS, ctx, overlay)
    if not plan.ok:
        return plan
    return {rel: new for rel, (_old, new) in plan.raw.items()}


def _module_entries(modules: tuple[ModuleFile, ...]) -> dict[str, dict]:
    return {f.stem: {"text": f.text, "roles": [list(pair) for pair in f.roles]} for f in modules}


def take_upgrade(tree: Tree, record: records.State) -> list[str]:
    """A fork upgraded since apply (a newer release's files copied over it, or upstream merged): the record's
    originals become the new release's, wherever a file no longer holds ultrapatch's text. Per file ultrapatch edited:
    ultrapatch's part taken out of the disk's text (revert's merge) is the new original; where that merge cannot
    separate them (the release changed the lines around an edit), the disk's text is (a copied-over file holds no
    edit of ultrapatch's); a file the new release lacks leaves the record. The files whose originals changed."""
    if record.release == tree.release_text:
        return []
    taken = []
    for rel, file_record in list(record.files.items()):
        current = disk(tree, rel)
        if file_record.original is None or current == file_record.ours:
            continue
        taken.append(rel)
        if current is None:
            del record.files[rel]
            continue
        unedited, regions = merge(current, file_record.ours, file_record.original)
        file_record.original = file_record.ours = current if regions else unedited
    record.release = tree.release_text
    return taken


def refuse(planned: ApplyPlan) -> None:
    """EditFailed, before anything is written, when an edit failed or a merge of the user's changes conflicts."""
    if not planned.plan.ok:
        raise EditFailed(_("{count} edit(s) could not be made; nothing was written.").format(count=len(planned.plan.failed)))
    if planned.conflicts:
        regions = "; ".join(f"{rel} ({', '.join(where)})" for rel, where in planned.conflicts.items())
        raise EditFailed(
            _(
                "your changes overlap ultrapatch's edits in: {regions}. Nothing was written. Move or commit your changes "
                "there (`git diff` shows them), or revert ultrapatch first, then apply again."
            ).format(regions=regions)
        )


def notes(tree: Tree, planned: ApplyPlan) -> list[str]:
    """What apply says of the files it is about to write that held something of the user's, or lost something of its
    own."""
    said = [
        _("note: {file} had uncommitted changes: they are kept (ultrapatch edited the file as it was)").format(file=rel)
        for rel in gitops.uncommitted(tree.root, sorted(planned.writes))
        if rel in planned.fresh
    ]
    for rel in planned.restored:
        if planned.current.get(rel, b"") is None:
            said.append(_("note: {file} was deleted since apply: put back").format(file=rel))
        else:
            said.append(_("note: {file} had lost some of ultrapatch's edits since apply: put back").format(file=rel))
    said += [_("note: {file} has changes of yours: they are kept, merged with ultrapatch's new edits").format(file=rel) for rel in planned.merged]
    return said


def write(tree: Tree, planned: ApplyPlan) -> None:
    """Carry out the plan as one transaction (nothing when there is nothing to write)."""
    if planned.writes:
        Transaction("apply", dict(planned.writes), planned.before, planned.record).commit(tree.root)


def commit(tree: Tree, planned: ApplyPlan, backbones: tuple[Backbone, ...]) -> str:
    """`apply --commit`: the written files as one git commit, which the record then names; the commit's hash."""
    from patcher import __version__
    from patcher.edits.base import Status

    changed, plan, record = sorted(planned.writes), planned.plan, planned.record
    asked = [f"{b.name} backbone" for b in backbones] + planned.modules + [rel.rsplit("/", 1)[-1] for rel in planned.yamls]
    sha = gitops.commit(
        tree.root,
        changed,
        f"ultrapatch: {', '.join(asked)} for Ultralytics {tree.release_text}\n\n"
        f"Applied by ultrapatch {__version__}: {plan.count(Status.APPLIED)} edit(s), {len(changed)} file(s).\n"
        f"Backbones installed: {', '.join(record.backbones) or 'none'}"
        + (f"; your modules: {', '.join(f'{stem}.py' for stem in sorted(record.modules))}" if record.modules else "")
        + (f"; your YAMLs: {', '.join(sorted(record.yamls))}" if record.yamls else "")
        + ". Undo with `ultrapatch revert`.",
    )
    record.commit = sha
    records.save(tree.root, record)
    return sha
