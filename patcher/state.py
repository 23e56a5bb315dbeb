"""The record of what apply did, kept inside the tree in `.ultrapatch/state.json`, so that revert can undo it.

Per file: its original bytes (base64; none for a file apply created) and the sha256 of what ultrapatch wrote.
Revert restores a file only while it still holds what ultrapatch wrote; a file the user changed since is a
conflict. `.ultrapatch/` goes into the repository's `.git/info/exclude`, not `.gitignore`: the record belongs to
this checkout, not to the project, and `git status` stays clean without touching a tracked file.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from patcher import __version__
from patcher.planner import write_atomic

STATE_DIR = ".ultrapatch"
STATE_FILE = f"{STATE_DIR}/state.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class FileRecord:
    original: bytes | None  # None: ultrapatch created the file
    written: str  # sha256 of what ultrapatch last wrote
    written_bytes: bytes | None = None  # what ultrapatch last wrote: the base of revert's three-way merge


@dataclass
class State:
    release: str
    backbones: list[str] = field(default_factory=list)
    files: dict[str, FileRecord] = field(default_factory=dict)
    created_dirs: list[str] = field(default_factory=list)
    commit: str | None = None  # the commit `apply --commit` made

    def record(self, root: Path, rel: str, original: bytes | None, written: bytes) -> None:
        """Note a write; a file written before keeps its first original, so revert goes back to before any apply."""
        if rel in self.files:
            self.files[rel].written, self.files[rel].written_bytes = sha256(written), written
        else:
            self.files[rel] = FileRecord(original, sha256(written), written)
        parent = Path(rel).parent
        while parent != Path(".") and not (root / parent).exists():
            self.created_dirs.append(parent.as_posix())
            parent = parent.parent

    def to_json(self) -> str:
        return json.dumps(
            {
                "ultrapatch": __version__,
                "release": self.release,
                "backbones": self.backbones,
                "files": {
                    rel: {
                        "original": None if r.original is None else base64.b64encode(r.original).decode(),
                        "written_sha256": r.written,
                        "written": None if r.written_bytes is None else base64.b64encode(r.written_bytes).decode(),
                    }
                    for rel, r in sorted(self.files.items())
                },
                "created_dirs": sorted(set(self.created_dirs)),
                "commit": self.commit,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> State:
        data = json.loads(text)
        def decode(text: str | None) -> bytes | None:
            return None if text is None else base64.b64decode(text)

        files = {
            rel: FileRecord(decode(r["original"]), r["written_sha256"], decode(r.get("written")))
            for rel, r in data["files"].items()
        }
        return cls(data["release"], data["backbones"], files, data.get("created_dirs", []), data.get("commit"))


def load(root: Path) -> State | None:
    path = root / STATE_FILE
    return State.from_json(path.read_text(encoding="utf-8")) if path.is_file() else None


def save(root: Path, state: State) -> None:
    write_atomic(root / STATE_FILE, state.to_json().encode("utf-8"))


EXCLUDE_LINE = f"/{STATE_DIR}/"


def _exclude_file(root: Path) -> Path | None:
    return root / ".git" / "info" / "exclude" if (root / ".git").is_dir() else None


def exclude_from_git(root: Path) -> None:
    """Add `/.ultrapatch/` to the repository's `.git/info/exclude` (a plain folder has none)."""
    exclude = _exclude_file(root)
    if exclude is None:
        return
    lines = exclude.read_text(encoding="utf-8").splitlines() if exclude.is_file() else []
    if EXCLUDE_LINE not in lines:
        write_atomic(exclude, ("\n".join([*lines, EXCLUDE_LINE]) + "\n").encode("utf-8"))


def unexclude_from_git(root: Path) -> None:
    exclude = _exclude_file(root)
    if exclude is not None and exclude.is_file():
        lines = exclude.read_text(encoding="utf-8").splitlines()
        if EXCLUDE_LINE in lines:
            kept = [line for line in lines if line != EXCLUDE_LINE]
            write_atomic(exclude, ("\n".join(kept) + "\n" if kept else "").encode("utf-8"))


def forget(root: Path, keep_dir: bool = False) -> None:
    """Remove the record; unless `keep_dir`, also the empty folder and its exclude line."""
    (root / STATE_FILE).unlink(missing_ok=True)
    if not keep_dir and (root / STATE_DIR).is_dir() and not any((root / STATE_DIR).iterdir()):
        (root / STATE_DIR).rmdir()
        unexclude_from_git(root)
