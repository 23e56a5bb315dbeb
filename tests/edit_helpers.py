"""Run edits on small dedented sources, as libcst's `assertCodemod` does: before, after, and "again, no change"."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

from patcher.backbones import select_backbones
from patcher.edits.base import Context, Edit, Status
from patcher.planner import Plan, make_plan
from patcher.tree import Tree, Version


def run_edit(
    root: Path, edit: Edit, files: dict[str, str], release: Version = (8, 3, 0), backbones=("mobilenetv3",)
) -> tuple[Plan, dict[str, str]]:
    """Write `files` under `root`, plan `edit` on them; the plan and the new text of every changed file."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text), encoding="utf-8")
    plan = make_plan(Tree(root, release), [edit], Context(release, select_backbones(backbones)))
    return plan, {rel: new for rel, _old, new in plan.changes}


def assert_edit(root: Path, edit: Edit, target: str, before: str, after: str, **kwargs) -> None:
    """`edit` turns `before` into `after`, and then finds nothing more to do on `after`."""
    plan, changed = run_edit(root, edit, {target: before}, **kwargs)
    assert plan.reports[0].status is Status.APPLIED, plan.reports[0].detail
    assert changed[target] == dedent(after)
    again, _ = run_edit(root, edit, {target: after}, **kwargs)
    assert again.reports[0].status is Status.ALREADY, again.reports[0].detail
    assert again.changes == []


def assert_noop(root: Path, edit: Edit, target: str, source: str, **kwargs) -> None:
    plan, _ = run_edit(root, edit, {target: source}, **kwargs)
    assert plan.reports[0].status is Status.ALREADY, plan.reports[0].detail
    assert plan.changes == []


def assert_fails(root: Path, edit: Edit, target: str, source: str, *fragments: str, **kwargs) -> str:
    """`edit` fails on `source`, naming every fragment (file, function, construct) in its message."""
    plan, _ = run_edit(root, edit, {target: source}, **kwargs)
    report = plan.reports[0]
    assert report.status is Status.FAILED, report.status
    for fragment in fragments:
        assert fragment in report.detail, report.detail
    return report.detail
