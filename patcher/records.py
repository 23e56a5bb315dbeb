"""The record of what apply did, kept inside the tree in `.ultrapatch/state.json`, so that revert can undo it.

Per file, two texts: its `original` (none for a file apply created) and `ours`, what ultrapatch's edits make of the
originals for the backbones the record lists, and nothing else. `ours` is worked out from the originals, never read
back from the disk: what the disk holds is `ours` plus whatever the user changed, so the user's changes are always
the difference between the two, across any number of applies, partial reverts, edits and commits. Revert merges
that difference onto its target (`patcher.revert`).

`.ultrapatch/` goes into the repository's `.git/info/exclude`, not `.gitignore`: the record belongs to this
checkout, not to the project, and `git status` stays clean without touching a tracked file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from patcher import __version__
from patcher.errors import UltrapatchError
from patcher.i18n import _
from patcher.planner import write_atomic

BACKUP_SUFFIX = ".ultrapatch-backup"  # `revert --force` keeps a user's version of a file under <file> + this
STATE_DIR = ".ultrapatch"
STATE_FILE = f"{STATE_DIR}/state.json"
SCHEMA = 2  # 1: `written` held the bytes last written, the user's changes included (the defect schema 2 fixes)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DamagedRecord(UltrapatchError):
    """`.ultrapatch/state.json` (or the journal's copy of it) cannot be read: exit 2, with what to do."""


@dataclass
class FileRecord:
    original: bytes | None  # None: ultrapatch created the file
    ours: bytes  # the original with ultrapatch's edits for the recorded backbones: the base of every merge


@dataclass
class State:
    release: str
    backbones: list[str] = field(default_factory=list)
    files: dict[str, FileRecord] = field(default_factory=dict)
    created_dirs: list[str] = field(default_factory=list)
    commit: str | None = None  # the commit `apply --commit` made
    exclude_added: bool = True  # ultrapatch added `/.ultrapatch/` to .git/info/exclude (False: the line was the user's)
    yamls: dict[str, str] = field(default_factory=dict)  # `apply --yaml`: installed path -> the user's text as given
    modules: dict[str, dict] = field(default_factory=dict)  # `apply --module`: stem -> {"text", "roles": [[class, role]]}

    def module_files(self) -> tuple:
        """The recorded module files, as the edits take them."""
        from patcher.edits.base import ModuleFile

        return tuple(
            ModuleFile(stem, entry["text"], tuple((c, r) for c, r in entry["roles"])) for stem, entry in sorted(self.modules.items())
        )

    def note_original(self, root: Path, rel: str, original: bytes | None) -> None:
        """A file apply is about to write: its first original is kept, so revert goes back to before any apply."""
        if rel in self.files:
            return
        self.files[rel] = FileRecord(original, b"" if original is None else original)
        parent = Path(rel).parent
        while parent != Path(".") and not (root / parent).exists():
            self.created_dirs.append(parent.as_posix())
            parent = parent.parent

    def originals(self) -> dict[str, bytes | None]:
        return {rel: r.original for rel, r in self.files.items()}

    def created(self) -> frozenset[str]:
        """The files ultrapatch created (none of the user's before it): a newer ultrapatch may replace its own text."""
        return frozenset(rel for rel, r in self.files.items() if r.original is None)

    def ours_texts(self) -> dict[str, bytes | None]:
        """ultrapatch's own text of every file it wrote: what the edits are run on, so a user's change there is
        neither refused nor taken for a conflict."""
        return {rel: r.ours for rel, r in self.files.items()}

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema": SCHEMA,
                "ultrapatch": __version__,
                "release": self.release,
                "backbones": self.backbones,
                "files": {
                    rel: {"original": _b64(r.original), "ours": _b64(r.ours)} for rel, r in sorted(self.files.items())
                },
                "created_dirs": sorted(set(self.created_dirs)),
                "commit": self.commit,
                "exclude_added": self.exclude_added,
                "yamls": dict(sorted(self.yamls.items())),
                "modules": dict(sorted(self.modules.items())),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str, where: str = STATE_FILE) -> State:
        """Parse a record; DamagedRecord, with what is wrong and what to do, for anything that is not one."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DamagedRecord(_damaged(where, f"it is not JSON: {exc}")) from None
        if not isinstance(data, dict):
            raise DamagedRecord(_damaged(where, "it holds no record"))
        schema = data.get("schema", 1)
        if not isinstance(schema, int) or schema > SCHEMA:
            raise DamagedRecord(
                f"{where} was written by a newer ultrapatch ({data.get('ultrapatch', '?')}, record schema {schema}); "
                f"this is ultrapatch {__version__}. Upgrade ultrapatch (`pip install -U .` in its checkout) and run "
                f"the command again."
            )
        try:
            files = {}
            for rel, r in data["files"].items():
                original = _unb64(r["original"])
                ours = _unb64(r["ours"] if schema >= 2 else r["written"])
                if not isinstance(rel, str) or ours is None:
                    raise ValueError(f"no text of ultrapatch's for {rel}")
                files[rel] = FileRecord(original, ours)
            state = cls(str(data["release"]), list(data["backbones"]), files, list(data.get("created_dirs", [])),
                        data.get("commit"), data.get("exclude_added", True))  # fmt: skip
            if not all(isinstance(b, str) for b in state.backbones) or not all(isinstance(d, str) for d in state.created_dirs):
                raise ValueError("backbones and created_dirs must be lists of names")
            if not isinstance(state.exclude_added, bool):
                raise ValueError("exclude_added must be true or false")
            state.yamls = dict(data.get("yamls") or {})
            state.modules = {str(k): {"text": str(v["text"]), "roles": [[str(c), str(r)] for c, r in v["roles"]]}
                             for k, v in (data.get("modules") or {}).items()}  # fmt: skip
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in state.yamls.items()):
                raise ValueError("yamls must map paths to texts")
        except (KeyError, TypeError, AttributeError, ValueError, binascii.Error) as exc:
            raise DamagedRecord(_damaged(where, f"its content is not a record ({type(exc).__name__}: {exc})")) from None
        return state


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError("a text must be base64")
    return base64.b64decode(text, validate=True)


def _damaged(where: str, what: str) -> str:
    return _(
        "{where} is damaged ({what}), so ultrapatch cannot tell its edits from yours. Restore the file from a backup if "
        "you have one; otherwise restore the tree with git (`git status`, then `git checkout -- FILE` for ultrapatch's "
        "files), delete {folder}/ and apply again."
    ).format(where=where, what=what, folder=STATE_DIR)


def load(root: Path) -> State | None:
    path = root / STATE_FILE
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DamagedRecord(_damaged(STATE_FILE, f"it cannot be read: {exc}")) from None
    return State.from_json(text)


def save(root: Path, state: State) -> None:
    write_atomic(root / STATE_FILE, state.to_json().encode("utf-8"))


EXCLUDE_LINE = f"/{STATE_DIR}/"
EXCLUDE_BYTES = EXCLUDE_LINE.encode("utf-8")


EXCLUDE_FILE = ".git/info/exclude"


def excluded(root: Path, present: bool) -> bytes | None:
    """The repository's `.git/info/exclude` with the line `/.ultrapatch/` added (`present`) or taken out, every
    other byte as it is; None when that changes nothing, or the tree is no git repository."""
    if not (root / ".git").is_dir():
        return None
    path = root / EXCLUDE_FILE
    data = path.read_bytes() if path.is_file() else b""
    lines = data.splitlines(keepends=True)
    ours = [line for line in lines if line.rstrip(b"\r\n") == EXCLUDE_BYTES]
    if present and not ours:
        return data + (b"\n" if data and not data.endswith(b"\n") else b"") + EXCLUDE_BYTES + b"\n"
    if not present and ours:
        return b"".join(line for line in lines if line not in ours)
    return None


def forget(root: Path) -> None:
    """Remove the record (its folder goes when the lock is released and nothing else is in it)."""
    (root / STATE_FILE).unlink(missing_ok=True)
