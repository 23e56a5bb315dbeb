"""What an apply writes, and the record it leaves: the edits run on the tree's texts (their reports), and every file
ends as ultrapatch's text for all the recorded backbones plus the user's changes.

The first apply on a tree edits the files as they are; whatever they held becomes the originals. A later apply works
from the record: `ours` for the old backbones and for the new set are both made from the originals, and each file
becomes the new `ours` when it held the old one, or the three-way merge of the user's file onto the new `ours`
otherwise. So the disk is always `ours` plus the user's changes, which is what lets revert take out exactly
ultrapatch's part, however many applies came before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from patcher import state as records
from patcher.backbones import Backbone, backbone_order
from patcher.edits import EDITS
from patcher.edits.base import Context
from patcher.merge import merge
from patcher.planner import Plan, bytes_diff, edited_originals, make_plan
from patcher.tree import Tree


@dataclass
class ApplyPlan:
    plan: Plan  # the edits on the tree's current texts: what each reports
    record: records.State  # the record after the apply
    writes: dict[str, bytes] = field(default_factory=dict)  # what each changed file becomes
    current: dict[str, bytes | None] = field(default_factory=dict)  # what each of them holds now (None: absent)
    merged: list[str] = field(default_factory=list)  # files with changes of the user's, merged onto the new text
    fresh: list[str] = field(default_factory=list)  # files this apply is the first to write: their text is the original
    conflicts: dict[str, list[str]] = field(default_factory=dict)  # file: the regions where the user's changes overlap

    def diff(self) -> bytes:
        """A `git apply`-able unified diff of the writes, each file's in its own encoding."""
        return b"".join(bytes_diff(rel, self.current[rel], data) for rel, data in sorted(self.writes.items()))

    @property
    def before(self) -> dict[str, str | None]:
        return {rel: None if data is None else records.sha256(data) for rel, data in self.current.items()}


def plan_apply(tree: Tree, backbones: tuple[Backbone, ...]) -> ApplyPlan:
    """Plan an apply of `backbones`; writes nothing. The caller refuses a plan with failed edits or conflicts."""
    record = records.load(tree.root)
    # The edits run on ultrapatch's own text of the files it wrote: a user's change there (a YAML it created, say) is
    # carried over by the merge below, never taken for a file of the user's that the edits must refuse to overwrite.
    ours = None if record is None else record.ours_texts()
    created = frozenset() if record is None else record.created()
    plan = make_plan(tree, EDITS, Context(tree.release, backbones, created), overlay=ours)
    if not plan.ok:
        return ApplyPlan(plan, record or records.State(tree.release_text))
    if record is None:  # the first apply: the files as they are now are the originals
        record = records.State(tree.release_text, [b.name for b in backbones])
        record.exclude_added = records.excluded(tree.root, present=True) is not None  # else the line is the user's
        result = ApplyPlan(plan, record)
        for rel, (original, new) in plan.raw.items():
            record.note_original(tree.root, rel, original)
            result.fresh.append(rel)
            record.files[rel].ours = result.writes[rel] = new
            result.current[rel] = original
        return result
    result = ApplyPlan(plan, record)
    if not plan.changes:
        return result
    for rel, (original, _new) in plan.raw.items():
        if rel not in record.files:
            record.note_original(tree.root, rel, original)
            result.fresh.append(rel)
    record.backbones = sorted({*record.backbones, *(b.name for b in backbones)}, key=backbone_order)
    new_ours = edited_originals(tree, record.originals(), record.backbones)
    planned = plan.raw.keys()
    for rel, file_record in record.files.items():
        path = tree.root / rel
        current = path.read_bytes() if path.is_file() else None
        new = new_ours[rel] or b""
        if current is None and rel not in planned:  # a file of ultrapatch's the user removed, and these edits do not need
            file_record.ours = new
            continue
        if current is None or current == file_record.ours:
            target = new
        else:
            target, regions = merge(current, file_record.ours, new)
            if regions:
                result.conflicts[rel] = regions
                continue
            result.merged.append(rel)
        file_record.ours = new
        if target != current:
            result.writes[rel], result.current[rel] = target, current
    return result
