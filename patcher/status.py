"""`ultrapatch status`: the state of every edit and backbone, read from the tree's text alone.

An edit is "applied" when making it again would change nothing: the same comparison apply makes, so status and
apply can never disagree. Shared edits are judged for the backbones found installed (or all of them, when none is).
"""

from __future__ import annotations

from typing import Any

from patcher import __version__
from patcher.backbones import BACKBONES, Backbone, backbone_named, installed_timm_models
from patcher.edits import EDITS, PER_BACKBONE
from patcher.edits.base import Context, Status
from patcher import records
from patcher.applying import _repaired, judged_texts, recorded_texts, take_upgrade
from patcher.planner import Plan
from patcher.planner import make_plan
from patcher.i18n import N_, NC_, _, pgettext
from patcher.transaction import pending
from patcher.tree import Tree

EDIT_STATE = {
    Status.ALREADY: NC_("edit state", "applied"),
    Status.APPLIED: NC_("edit state", "not applied"),
    Status.NOT_IN_RELEASE: NC_("edit state", "not in this release"),
    Status.FAILED: NC_("edit state", "cannot apply"),
}


def backbone_state(
    tree: Tree, backbone: Backbone, overlay: dict | None = None, ours: frozenset[str] = frozenset(), recorded: bool = False
) -> tuple[str, str]:
    """'installed', 'partly installed', 'not installed' or 'conflict', with a detail. A backbone the record names
    with every edit of its missing is 'partly installed': its files were taken out since apply, which puts them back."""
    edits = [e for e in EDITS if e.name in PER_BACKBONE]
    plan = make_plan(tree, edits, Context(tree.release, (backbone,), ours), overlay, texts=False)
    if plan.failed:
        return N_("conflict"), plan.failed[0].detail
    states = {r.status for r in plan.reports if r.status is not Status.NOT_IN_RELEASE}
    if states == {Status.ALREADY}:
        variants, yamls = len(backbone.variants), len(backbone.yamls(tree.release))
        said = _("{variants} variant, {yamls} YAMLs") if variants == 1 else _("{variants} variants, {yamls} YAMLs")
        return N_("installed"), said.format(variants=variants, yamls=yamls)
    if states == {Status.APPLIED} and not recorded:
        return N_("not installed"), ""
    missing = [r.edit.name for r in plan.reports if r.status is Status.APPLIED]
    return N_("partly installed"), _("missing: {names}").format(names=", ".join(missing))


def tree_status(tree: Tree) -> dict[str, Any]:
    """The report `status --json` prints."""
    try:
        record, damaged = records.load(tree.root), None
    except records.DamagedRecord as exc:  # status still shows what the tree's text says
        record, damaged = None, exc.format_message()
    applied_on = None if record is None else record.release
    if record is not None:
        take_upgrade(tree, record)  # an upgraded fork: judged against the release it is now
    texts = recorded_texts(tree, record)
    overlay = judged_texts(tree, record, texts)  # the disk, as apply judges it
    ours = frozenset() if record is None else record.created()
    timm_models = (
        [backbone_named(n) for n in record.backbones if n not in BACKBONES]
        if record is not None
        else installed_timm_models(tree.root)
    )
    named = set() if record is None else set(record.backbones)
    backbones = [
        (b, *backbone_state(tree, b, overlay, ours, b.name in named)) for b in (*BACKBONES.values(), *timm_models)
    ]
    installed = tuple(b for b, state, _detail in backbones if state in ("installed", "partly installed"))
    yamls = () if record is None else tuple(sorted(record.yamls.items()))
    modules = () if record is None else record.module_files()
    judged = installed or (() if yamls or modules else tuple(BACKBONES.values()))  # a tree of the user's files only
    ctx = Context(tree.release, judged, ours, yamls, modules)
    plan = make_plan(tree, EDITS, ctx, overlay, texts=False)
    return {
        "release": tree.release_text,
        "root": str(tree.root),
        "compromised": tree.compromised,
        "ultrapatch": __version__,
        "record": None
        if record is None
        else {
            "backbones": record.backbones,
            "yamls": sorted(record.yamls),
            "modules": {f"{stem}.py": dict(entry["roles"]) for stem, entry in sorted(record.modules.items())},
            "applied_on": applied_on,
            "edited": sorted(rel for rel, r in record.files.items() if r.original is not None),
            "created": sorted(rel for rel, r in record.files.items() if r.original is None),
            "commit": record.commit,
        },
        "damaged_record": damaged,
        "interrupted": pending(tree.root),
        "files": [] if record is None else file_states(tree, record, overlay, texts),
        "edits": [
            {"name": r.edit.name, "target": r.edit.target, "state": EDIT_STATE[r.status],
             "detail": "; ".join(filter(None, (r.detail, *r.kept)))}
            for r in plan.reports
        ],
        "backbones": [
            {"name": b.name, "state": state, "detail": detail, "variants": list(b.variants)}
            for b, state, detail in backbones
        ],
    }


def file_states(
    tree: Tree, record: records.State, overlay: dict[str, bytes | None], texts: dict[str, bytes | None]
) -> list[dict[str, str]]:
    """Every recorded file that no longer holds ultrapatch's text as written (`texts`: what each holds now): what it
    holds, and what apply and revert will do with it."""
    repaired = _repaired(tree, record, record.created(), overlay, texts)
    lost = set() if isinstance(repaired, Plan) else set(repaired)
    states = []
    for rel, file_record in sorted(record.files.items()):
        current = texts[rel]
        created = file_record.original is None
        if current == file_record.ours:
            continue
        if current is None:
            state, apply, revert = N_("deleted"), N_("puts it back"), (
                N_("has nothing to remove") if created else N_("refuses until the file is back (or --force restores it)"))
        elif rel in overlay:
            state, apply, revert = N_("changed by you"), N_("keeps your changes"), N_("keeps the file (yours now)")
        elif current == file_record.original:
            state, apply, revert = N_("restored to its original"), N_("puts ultrapatch's edits back"), N_("has nothing to take out")
        elif rel in lost:
            state, apply, revert = (
                N_("changed by you, some of ultrapatch's edits taken out"), N_("puts the missing edits back, keeps your changes"),
                N_("takes out the rest of ultrapatch's edits, keeps your changes"))
        else:
            state, apply, revert = N_("changed by you"), N_("keeps your changes"), N_("takes out ultrapatch's edits, keeps your changes")
        states.append({"path": rel, "state": state, "apply": apply, "revert": revert})
    return states


def installed_yamls(tree: Tree) -> list[dict[str, Any]]:
    """Every model YAML of ultrapatch's in the tree (those the record's backbones install, or, without a record, any
    backbone's): its file name, its path, and the scales its name takes (`yolo11n-...`)."""
    from patcher.verify import scales_of, scaled_name

    try:
        record = records.load(tree.root)
    except records.DamagedRecord:
        record = None
    chosen = (
        [backbone_named(n) for n in record.backbones]
        if record is not None
        else [*BACKBONES.values(), *installed_timm_models(tree.root)]
    )
    found = []
    for backbone in chosen:
        for template, _variant, rel in backbone.yamls(tree.release):
            path = tree.root / rel
            if not path.is_file():
                continue
            scales = scales_of(path.read_text(encoding="utf-8")) if template.stem.startswith("yolo") else []
            found.append({"name": path.name, "path": rel, "scales": scales,
                          "scaled": " ".join(scaled_name(path.name, s) for s in scales)})  # fmt: skip
    for rel in sorted(record.yamls) if record is not None else []:
        path = tree.root / rel
        if path.is_file():
            scales = scales_of(path.read_text(encoding="utf-8")) if path.name.startswith("yolo") else []
            found.append({"name": path.name, "path": rel, "scales": scales, "yours": True,
                          "scaled": " ".join(scaled_name(path.name, s) for s in scales)})  # fmt: skip
    return found


def format_status(report: dict[str, Any]) -> str:
    """What `ultrapatch status` prints of `tree_status`'s report."""
    lines: list[str] = []
    lines.append(_("Ultralytics {release} at {root}").format(release=report["release"], root=report["root"]))
    if report["compromised"]:
        lines.append(_("warning: {what}").format(what=report["compromised"]))
    record = report["record"]
    if report["damaged_record"]:
        lines.append(_("record: damaged: {why}").format(why=report["damaged_record"]))
    elif record is None:
        lines.append(_("record: none (ultrapatch has not applied anything here)"))
    else:
        lines.append(_record_line(record))
    if record is not None and record["applied_on"] != report["release"]:
        lines.append(
            _(
                "upgraded: applied on Ultralytics {old}; this tree is now {new}. `ultrapatch apply` re-applies the "
                "edits to it; `ultrapatch revert` gives back {new}'s files."
            ).format(old=record["applied_on"], new=report["release"])
        )
    for file in report["files"]:
        lines.append(_("file {path}: {state}; apply {apply}; revert {revert}").format(
            path=file["path"], state=_(file["state"]), apply=_(file["apply"]), revert=_(file["revert"])))  # fmt: skip
    if report["interrupted"]:
        lines.append(_("interrupted: a {operation} was killed; the next apply or revert completes it").format(operation=report["interrupted"]))
    width = max(len(e["name"]) for e in report["edits"])
    lines.append(_("edits:"))
    for edit in report["edits"]:
        detail = _(" ({detail})").format(detail=edit["detail"]) if edit["detail"] else ""
        lines.append(f"  {edit['name']:<{width}}  {pgettext('edit state', edit['state'])}{detail}")
    lines.append(_("backbones:"))
    width = max(width, *(len(b["name"]) for b in report["backbones"]))
    for backbone in report["backbones"]:
        detail = _(" ({detail})").format(detail=backbone["detail"]) if backbone["detail"] else ""
        lines.append(f"  {backbone['name']:<{width}}  {_(backbone['state'])}{detail}")
    return "\n".join(lines)


def _record_line(record: dict[str, Any]) -> str:
    """The status line that says what the record holds."""
    parts = [", ".join(record["backbones"]) or _("no backbone")]
    if record["yamls"]:
        parts.append(_("your YAMLs: {names}").format(names=", ".join(p.rsplit("/", 1)[-1] for p in record["yamls"])))
    if record["modules"]:
        names = ", ".join(f"{file} ({', '.join(f'{c} {r}' for c, r in roles.items())})" for file, roles in record["modules"].items())
        parts.append(_("your modules: {names}").format(names=names))
    said = _("record: {what}; {edited} file(s) edited, {created} created (.ultrapatch/state.json; `ultrapatch revert` undoes it)")
    if record["commit"]:
        said = _("record: {what}; {edited} file(s) edited, {created} created, committed as {commit} (.ultrapatch/state.json; `ultrapatch revert` undoes it)")
    return said.format(what=_("; ").join(parts), edited=len(record["edited"]), created=len(record["created"]), commit=(record["commit"] or "")[:10])


def format_yamls(found: list[dict[str, Any]]) -> str:
    """What `ultrapatch status --yamls` prints: one installed YAML a line, with its scales."""
    lines = []
    for entry in found:
        first = entry["scaled"].split(" ")[0]
        scales = _("  (scales {scales}; {first} is scale {scale})").format(scales=", ".join(entry["scales"]), first=first, scale=entry["scales"][0]) if entry["scales"] else ""
        lines.append(f"{entry['name']}{scales}{_('  yours (apply --yaml)') if entry.get('yours') else ''}")
    return "\n".join(lines)
