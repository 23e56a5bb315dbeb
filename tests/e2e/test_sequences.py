"""Random sequences of applies, reverts, user edits and commits (hypothesis' stateful testing) against a model of
what the user intends: after every step, the tree is exactly ultrapatch's text for the backbones applied and not
reverted, with every edit of the user's in it; where the two overlap, revert exits 1 and writes nothing.

The model's expected tree is made without ultrapatch's apply or revert: ultrapatch's text for a set of backbones is
the edits' plan on the pristine release (in memory), and the user's edits are replayed on it. A user edit is a
comment line inserted, a line changed (a comment appended) or a comment line deleted, at a line that ultrapatch
never edits, in a file it edits (tasks.py, the detect trainer), a file it creates (a model YAML) or one it does not
touch; the overlapping edit changes the `rect=False` line ultrapatch wrote. The user also takes ultrapatch's part out:
tasks.py restored to the release's text with their own edits in it, or a created file deleted; status must then name
the missing edits, as their detection on the disk does, and apply must put them back.

Module files of the user's (`apply --module`, `revert --module`) are applied and reverted among the backbones.

A few examples run by default; `pytest -m exhaustive tests/e2e/test_sequences.py` runs 300.
"""

from __future__ import annotations

import difflib
import hashlib
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from conftest import pristine_tree, tree_digest
from patcher.backbones import select_backbones
from patcher.cli import cli
from patcher.edits import EDITS
from patcher.edits.base import Context
from patcher.planner import make_plan
from patcher.tree import find_tree

pytestmark = pytest.mark.e2e
RELEASE = "8.4.190"
BACKBONES = ("mobilenetv2", "mobilenetv2-tv", "mobilenetv3")
# module files of the user's (`apply --module`), by their names in the model: one keeps its channels, one repeats
MODULE_FILES = Path(__file__).resolve().parent.parent / "modules"
MODULES = {"module:SEBlock": ("SEBlock", "keep"), "module:C2fLite": ("C2fLite", "repeat")}
ITEMS = BACKBONES + tuple(MODULES)
TASKS = "ultralytics/nn/tasks.py"
TRAIN = "ultralytics/models/yolo/detect/train.py"
UNTOUCHED = "ultralytics/utils/ops.py"
OVERLAP = ("rect=False, stride=gs)", "rect=False, stride=gs)  # mine: overlaps ultrapatch's edit")


def context(tree, items: frozenset[str], created: frozenset[str] = frozenset()) -> Context:
    """What ultrapatch is asked for `items`: backbones by name, module files as `module:NAME`."""
    from patcher.edits.base import ModuleFile

    files = tuple(
        ModuleFile(stem, (MODULE_FILES / f"{stem}.py").read_text(encoding="utf-8"), ((stem, role),))
        for stem, role in sorted(MODULES[item] for item in items if item in MODULES)
    )
    backbones = select_backbones(tuple(sorted(item for item in items if item not in MODULES)))
    return Context(tree.release, backbones, created, modules=files)


def apply_args(item: str) -> list[str]:
    return ["--module", str(MODULE_FILES / f"{MODULES[item][0]}.py")] if item in MODULES else ["-b", item]


@lru_cache(maxsize=None)
def ours(backbones: frozenset[str]) -> dict[str, bytes]:
    """ultrapatch's text of every file it writes for `backbones` (and module files), planned in memory on the
    pristine release."""
    if not backbones:
        return {}
    tree = find_tree(pristine_tree(RELEASE))
    plan = make_plan(tree, EDITS, context(tree, backbones))
    assert plan.ok
    return {rel: new.encode("utf-8") for rel, _old, new in plan.changes}


@lru_cache(maxsize=None)
def anchors(rel: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Lines of `rel` that ultrapatch never edits (unique before and after every edit, three lines from any change):
    the lines a user edit is made at; and those of them that are whole-line comments (which a user may delete)."""
    original = (pristine_tree(RELEASE) / rel).read_text(encoding="utf-8").splitlines()
    edited = ours(frozenset(BACKBONES)).get(rel, "\n".join(original).encode()).decode("utf-8").splitlines()
    near = set()
    for tag, i1, i2, _j1, _j2 in difflib.SequenceMatcher(None, original, edited, autojunk=False).get_opcodes():
        if tag != "equal":
            near.update(range(i1 - 3, i2 + 3))
    usable = [
        line
        for number, line in enumerate(original)
        if number not in near and line.strip() and not line.rstrip().endswith("\\")
        and original.count(line) == 1 and edited.count(line) == 1
    ]
    return tuple(usable), tuple(line for line in usable if line.strip().startswith("#"))


def edit_text(text: str, kind: str, anchor: str, mark: str) -> str:
    """One user edit at the line that reads `anchor`, as a person makes it in an editor."""
    lines = text.splitlines(keepends=True)
    at = [number for number, line in enumerate(lines) if line.rstrip("\n") == anchor]
    assert len(at) == 1, (kind, anchor)
    indent = anchor[: len(anchor) - len(anchor.lstrip())]
    lines[at[0] : at[0] + 1] = {
        "insert": [lines[at[0]], f"{indent}# {mark}\n"],
        "change": [f"{anchor}  # {mark}\n"],
        "delete": [],
    }[kind]
    return "".join(lines)


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code != 3 and not isinstance(result.exception, AssertionError), result.output
    return result


class Sequences(RuleBasedStateMachine):
    """The model: the backbones applied and not reverted; the user's edits, in order, per file; the created files
    the user changed and revert therefore kept (the user's now); and whether the overlapping edit is in."""

    def __init__(self) -> None:
        super().__init__()
        self.applied: set[str] = set()
        self.edits: list[tuple[str, str, str, str]] = []  # (file, kind, anchor, mark)
        self.kept: dict[str, bytes] = {}
        self.overlap = False
        self.count = 0

    @initialize()
    def tree(self) -> None:
        self.root = _tmp[-1] / "ultralytics"
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.copytree(pristine_tree(RELEASE), self.root, symlinks=True)
        self.pristine = tree_digest(pristine_tree(RELEASE))

    # the model's tree
    def expected(self) -> dict[str, str]:
        texts = dict(ours(frozenset(self.applied)))
        files = dict(self.pristine)
        for rel, data in texts.items():
            files[rel] = digest_of(data)
        for rel in {rel for rel, *_ in self.edits}:
            data = texts.get(rel) or (pristine_tree(RELEASE) / rel).read_bytes()
            text = data.decode("utf-8")
            for file, kind, anchor, mark in self.edits:
                if file == rel:
                    text = edit_text(text, kind, anchor, mark)
            if self.overlap and rel == TRAIN:
                text = text.replace(*OVERLAP)
            files[rel] = digest_of(text.encode("utf-8"))
        if self.overlap and TRAIN not in {rel for rel, *_ in self.edits}:
            files[TRAIN] = digest_of(texts[TRAIN].decode().replace(*OVERLAP).encode())
        for rel, data in self.kept.items():
            files[rel] = digest_of(data)
        return files

    def actual(self) -> dict[str, str]:
        return {
            rel: digest
            for rel, digest in tree_digest(self.root).items()
            if not rel.startswith(".ultrapatch/") and "__pycache__" not in rel
        }

    @invariant()
    def tree_is_what_the_user_intends(self) -> None:
        if hasattr(self, "root"):
            actual, expected = self.actual(), self.expected()
            differ = sorted(rel for rel in actual.keys() | expected.keys() if actual.get(rel) != expected.get(rel))
            assert not differ, differ

    # ultrapatch
    def yamls_of(self, backbone: str) -> set[str]:
        return {rel for rel in ours(frozenset({backbone})) if rel.endswith(".yaml")}

    @rule(action=st.sampled_from(["apply", "apply", "revert_one", "revert_all"]), backbone=st.sampled_from(ITEMS))
    def ultrapatch(self, action: str, backbone: str) -> None:
        """One rule for every command, so that hypothesis draws them evenly."""
        getattr(self, action)(*(() if action == "revert_all" else (backbone,)))

    @rule(
        action=st.sampled_from(["edit", "edit", "edit", "edit_yaml", "overlap", "take_back", "delete_kept", "commit"]),
        file=st.sampled_from([TASKS, TRAIN, UNTOUCHED]),
        kind=st.sampled_from(["insert", "change", "delete"]),
        data=st.data(),
    )
    def user(self, action: str, file: str, kind: str, data) -> None:
        """One rule for everything the user does; an action that does not fit the state does nothing."""
        draw = lambda options: data.draw(st.sampled_from(options))  # noqa: E731
        if action == "edit":
            self.user_edits(file, kind, draw)
        elif action == "edit_yaml" and self.applied:
            self.user_edits_a_created_yaml(draw)
        elif action == "overlap" and self.applied - MODULES.keys() and not self.overlap:
            self.user_edits_ultrapatchs_line()
        elif action == "take_back" and self.overlap:
            self.user_takes_the_overlap_back()
        elif action == "delete_kept" and self.kept:
            self.user_deletes_a_kept_yaml(draw)
        elif action == "commit":
            self.user_commits_everything()

    @rule(kind=st.sampled_from(["restore", "delete"]), data=st.data())
    def user_takes_out_ultrapatchs_part(self, kind: str, data) -> None:
        """The user restores tasks.py to the release's text (their own edits kept, as `git checkout` of a commit of
        theirs does) or deletes a file ultrapatch created. status must say which edits are missing, and agree with
        the edits' detection on the disk; apply must put them all back (the invariant then checks every byte)."""
        if not self.applied:
            return
        if kind == "restore":
            text = (pristine_tree(RELEASE) / TASKS).read_text(encoding="utf-8")
            for file, kind_, anchor, mark in self.edits:
                if file == TASKS:
                    text = edit_text(text, kind_, anchor, mark)
            (self.root / TASKS).write_text(text, encoding="utf-8")
            missing = {"tasks-import"} | ({"parse-model-branch", "stride-probe"} if self.applied - MODULES.keys() else set())
            missing |= {"module-roles"} if self.applied & MODULES.keys() else set()
        else:
            created = sorted(rel for rel in ours(frozenset(self.applied)) if rel not in self.pristine)
            rel = data.draw(st.sampled_from([r for r in created if r not in self.yaml_edits()]))
            (self.root / rel).unlink()
            missing = {"model-yamls" if rel.endswith(".yaml") else "addmodules"}
        states = {e["name"]: e["state"] for e in self.status()["edits"]}
        assert {name for name in missing if states[name] != "not applied"} == set(), states
        assert {n for n, state in states.items() if state == "not applied"} == set(self.detected()), states
        result = invoke("apply", str(self.root), *apply_args(sorted(self.applied)[0]))
        assert result.exit_code == 0 and "put back" in result.output, result.output
        assert self.detected() == []

    def status(self) -> dict:
        import json

        result = invoke("status", str(self.root), "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def detected(self) -> list[str]:
        """The edits that making them again on the disk's text would change (a created file the user changed is
        judged present: apply keeps their changes)."""
        from patcher import records
        from patcher.applying import judged_texts

        tree = find_tree(self.root)
        record = records.load(self.root)
        overlay = judged_texts(tree, record)
        plan = make_plan(tree, EDITS, context(tree, frozenset(self.applied), record.created()), overlay, texts=False)
        assert plan.ok, [r.detail for r in plan.failed]
        return [r.edit.name for r in plan.reports if r.status.value == "applied"]

    def apply(self, backbone: str) -> None:
        result = invoke("apply", str(self.root), *apply_args(backbone))
        if backbone not in self.applied and self.yamls_of(backbone) & self.kept.keys():
            assert result.exit_code == 1 and "never overwrites" in result.output, result.output  # the user's YAML
            return
        assert result.exit_code == 0, result.output
        self.applied.add(backbone)

    def revert_one(self, backbone: str) -> None:
        result = invoke("revert", str(self.root), *(("--module", MODULES[backbone][0]) if backbone in MODULES else ("-b", backbone)))
        if backbone not in self.applied:
            assert result.exit_code == 2, result.output
            return
        self._reverted(result, self.applied - {backbone})

    def revert_all(self) -> None:
        result = invoke("revert", str(self.root))
        if not self.applied:
            assert result.exit_code == 2 and "nothing recorded" in result.output, result.output
            return
        self._reverted(result, set())

    def _reverted(self, result, remaining: set[str]) -> None:
        if self.overlap and not remaining - MODULES.keys():  # the rect=False line goes with the last backbone: the user's is on it
            assert result.exit_code == 1 and f"{TRAIN} (lines" in result.output, result.output
            return
        assert result.exit_code == 0, result.output
        for rel in list(self.yaml_edits()):
            if not any(rel in self.yamls_of(b) for b in remaining):  # a created file the user changed: kept
                self.kept[rel] = (self.root / rel).read_bytes()
                self.edits = [e for e in self.edits if e[0] != rel]
        self.applied = remaining

    def yaml_edits(self) -> set[str]:
        return {rel for rel, *_ in self.edits if rel.endswith(".yaml")}

    # the user
    def user_edits(self, file: str, kind: str, draw) -> None:
        usable, comments = anchors(file)
        taken = {anchor for rel, _kind, anchor, _mark in self.edits if rel == file}
        choices = [line for line in (comments if kind == "delete" else usable) if line not in taken]
        if not choices:
            return
        anchor = draw(choices)
        self.count += 1
        mark = f"user edit {self.count}"
        path = self.root / file
        path.write_text(edit_text(path.read_text(encoding="utf-8"), kind, anchor, mark), encoding="utf-8")
        self.edits.append((file, kind, anchor, mark))

    def user_edits_a_created_yaml(self, draw) -> None:
        yamls = sorted(set().union(*(self.yamls_of(b) for b in self.applied)) - self.yaml_edits())
        rel = draw(yamls)
        self.count += 1
        path = self.root / rel
        text = path.read_text(encoding="utf-8")
        anchor = text.splitlines()[0]
        path.write_text(edit_text(text, "insert", anchor, f"user edit {self.count}"), encoding="utf-8")
        self.edits.append((rel, "insert", anchor, f"user edit {self.count}"))

    def user_edits_ultrapatchs_line(self) -> None:
        path = self.root / TRAIN
        text = path.read_text(encoding="utf-8")
        assert text.count(OVERLAP[0]) == 1
        path.write_text(text.replace(*OVERLAP), encoding="utf-8")
        self.overlap = True
        assert self.detected() == []  # the edit is still there, with the user's comment on its line
        assert {e["name"]: e["state"] for e in self.status()["edits"]}["rect-detect"] == "applied"

    def user_takes_the_overlap_back(self) -> None:
        path = self.root / TRAIN
        path.write_text(path.read_text(encoding="utf-8").replace(OVERLAP[1], OVERLAP[0]), encoding="utf-8")
        self.overlap = False

    def user_deletes_a_kept_yaml(self, draw) -> None:
        rel = draw(sorted(self.kept))
        (self.root / rel).unlink()
        del self.kept[rel]

    def user_commits_everything(self) -> None:
        git = ["git", "-c", "user.name=u", "-c", "user.email=u@x", "-C", str(self.root)]
        subprocess.run([*git, "add", "-A"], check=True, capture_output=True)
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "mine"], check=True, capture_output=True)


_tmp: list[Path] = []  # the running test's temporary folder: the machine has no other way to be given one


def run(tmp_path: Path, examples: int, steps: int) -> None:
    _tmp.append(tmp_path)
    Sequences.TestCase.settings = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=examples < 20,  # the default run is the same every time; the exhaustive one explores
        suppress_health_check=list(HealthCheck),
    )
    Sequences.TestCase("runTest").runTest()


def test_operation_sequences(tmp_path):
    run(tmp_path, examples=6, steps=10)


@pytest.mark.exhaustive
def test_operation_sequences_exhaustive(tmp_path):
    run(tmp_path, examples=300, steps=12)
