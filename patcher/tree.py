"""Find and check an Ultralytics source tree, and read its release."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from patcher import NEWEST_TESTED_RELEASE
from patcher.errors import UltrapatchError
from patcher.i18n import _

OLDEST_SUPPORTED = (8, 1, 0)
# Files every supported release has, relative to the repository root; their absence means "not an Ultralytics tree".
REQUIRED_FILES = ("ultralytics/__init__.py", "ultralytics/nn/tasks.py")

Version = tuple[int, ...]

# Releases published to PyPI in December 2024 from Ultralytics' compromised build pipeline: they download and run an
# XMRig cryptocurrency miner when a model is built. PyPI has since removed them; 8.3.47 is the first clean release
# after them. Source: Ultralytics' own advisory ("Affected Versions: 8.3.41, 8.3.42, 8.3.45, 8.3.46; Clean versions:
# >=8.3.47", github.com/ultralytics/ultralytics pull request 18018) and issue 18027 ("Discrepancy between what's in
# GitHub and what's been published to PyPI for v8.3.41").
COMPROMISED_RELEASES: tuple[Version, ...] = ((8, 3, 41), (8, 3, 42), (8, 3, 45), (8, 3, 46))
FIRST_CLEAN_AFTER_COMPROMISE = "8.3.47"


def parse_version(text: str) -> Version:
    """'8.3.40' -> (8, 3, 40). Raises ValueError for anything else."""
    if not re.fullmatch(r"\d+(\.\d+){1,3}", text):
        raise ValueError(f"not a release number: {text!r}")
    return tuple(int(part) for part in text.split("."))


def format_version(version: Version) -> str:
    return ".".join(map(str, version))


@dataclass(frozen=True)
class Tree:
    """A checked Ultralytics tree: `root` holds the `ultralytics/` package."""

    root: Path
    release: Version

    @property
    def release_text(self) -> str:
        return format_version(self.release)

    @property
    def package(self) -> Path:
        return self.root / "ultralytics"

    @property
    def is_newer_than_tested(self) -> bool:
        return self.release > parse_version(NEWEST_TESTED_RELEASE)

    @property
    def compromised(self) -> str | None:
        """The sentence for a release that was compromised upstream, or None for any other."""
        return compromised_notice(self.release_text)

    def refuse_if_compromised(self) -> None:
        """apply and verify will not patch or run a compromised release (revert and status still work on it)."""
        notice = self.compromised
        if notice:
            raise UltrapatchError(notice)


def compromised_notice(version: str) -> str | None:
    """What happened to `version`, and what to do, when it is one of COMPROMISED_RELEASES."""
    try:
        release = parse_version(version)
    except ValueError:
        return None
    if release not in COMPROMISED_RELEASES:
        return None
    return (
        _(
            "Ultralytics {version} is one of the releases ({releases}) published in December 2024 from Ultralytics' "
            "compromised build pipeline: they run a cryptocurrency miner when a model is built, and PyPI has removed "
            "them. Move to {clean} or later (`ultrapatch fetch DIR --version {clean}`), and check this machine for a "
            "process named ultralytics_runner or xmrig."
        ).format(
            version=version, releases=", ".join(map(format_version, COMPROMISED_RELEASES)), clean=FIRST_CLEAN_AFTER_COMPROMISE
        )
    )


def read_release(init_file: Path) -> str:
    """The `__version__` string assigned in `ultralytics/__init__.py`, read without importing it."""
    try:
        module = ast.parse(init_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        raise UltrapatchError(_("cannot read {file}: {error}").format(file=init_file, error=exc)) from exc
    for node in module.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return node.value.value
    raise UltrapatchError(_("{file} assigns no __version__ string; is this an Ultralytics source tree?").format(file=init_file))


def find_tree(path: str | Path) -> Tree:
    """Accept the repository root or the `ultralytics` package directory itself; check it and read its release."""
    given = Path(path)
    if not given.exists():
        raise UltrapatchError(_("{path} does not exist. Give the folder of an Ultralytics checkout.").format(path=given))
    if not given.is_dir():
        raise UltrapatchError(_("{path} is not a folder. Give the folder of an Ultralytics checkout.").format(path=given))
    given = given.resolve()
    candidates = [given, given.parent] if given.name == "ultralytics" else [given]
    for root in candidates:
        if all((root / rel).is_file() for rel in REQUIRED_FILES):
            break
    else:
        raise UltrapatchError(
            _(
                "{path} is not an Ultralytics source tree: expected ultralytics/__init__.py and ultralytics/nn/tasks.py "
                "inside it. Give the repository root or its ultralytics/ package folder (`ultrapatch fetch DIR` "
                "downloads one)."
            ).format(path=given)
        )
    text = read_release(root / "ultralytics" / "__init__.py")
    try:
        release = parse_version(text)
    except ValueError:
        raise UltrapatchError(
            _("{file} has __version__ = {text}, not a release number.").format(file=root / "ultralytics" / "__init__.py", text=repr(text))
        )
    if release < OLDEST_SUPPORTED or release[0] != 8:
        raise UltrapatchError(
            _(
                "{root} holds Ultralytics {version}; ultrapatch supports 8.1 to {newest}. Fetch a supported release "
                "with `ultrapatch fetch DIR --version {newest}`."
            ).format(root=root, version=text, newest=NEWEST_TESTED_RELEASE)
        )
    return Tree(root=root, release=release)
