"""What ultrapatch asks of git: which files have uncommitted changes, and one commit of its own files.

ultrapatch never stashes, resets or checks out anything. A tree that is not in a git repository (an unpacked sdist)
has no uncommitted changes to report and cannot take `--commit`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from patcher.errors import UltrapatchError
from patcher.i18n import _

if TYPE_CHECKING:  # GitPython takes ~30 ms to import: only the commands that run git import it
    import git


def repository(root: Path) -> git.Repo | None:
    import git

    try:
        return git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None


def _pathspecs(repo: git.Repo, root: Path, rels: list[str]) -> list[str]:
    base = Path(repo.working_tree_dir).resolve()
    return [(root.resolve() / rel).relative_to(base).as_posix() for rel in rels]


def uncommitted(root: Path, rels: list[str]) -> list[str]:
    """Those of `rels` (tree-relative) whose working copy differs from the last commit. Asked of git directly (two
    short commands, ~10 ms): every apply asks, and GitPython's import and repository set-up cost 7 times that."""
    if not rels:
        return []
    prefix = _git(root, "rev-parse", "--show-prefix")  # the tree's folder inside its repository ("" at the top)
    if prefix is None:  # not in a repository, or no git: nothing is uncommitted
        return []
    out = _git(root, "status", "--porcelain", "-z", "--untracked-files=all", "--", *rels)
    changed = {entry[3:] for entry in (out or "").split("\0") if len(entry) > 3}
    base = prefix.strip()
    return [rel for rel in rels if base + rel in changed]


def _git(root: Path, *args: str) -> str | None:
    """git's output for `args` run in `root`; None when git fails there (not a repository) or is not installed."""
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, encoding="utf-8")
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def committed(root: Path, rev: str, rel: str) -> bytes | None:
    """The bytes of `rel` (tree-relative) in commit `rev`; None outside a repository, or where it has no such file."""
    import git

    repo = repository(root)
    if repo is None:
        return None
    try:
        spec = f"{rev}:{_pathspecs(repo, root, [rel])[0]}"
        return repo.git.show(spec, stdout_as_string=False, strip_newline_in_stdout=False)
    except git.GitCommandError:
        return None


def check_can_commit(root: Path, rels: list[str]) -> None:
    """Bad input, before anything is written, when `--commit` cannot make a commit of ultrapatch's files alone."""
    import git

    repo = repository(root)
    if repo is None:
        raise UltrapatchError(_("--commit needs a git repository, and {root} is not in one; apply without --commit.").format(root=root))
    try:
        repo.git.var("GIT_AUTHOR_IDENT")
    except git.GitCommandError as exc:
        raise UltrapatchError(
            _("--commit needs a git identity: set it with `git config user.name ...` and `git config user.email ...`.")
        ) from exc
    dirty = uncommitted(root, rels)
    if dirty:
        raise UltrapatchError(
            _(
                "--commit would also commit your uncommitted changes in {files}; commit or move them first, or apply "
                "without --commit."
            ).format(files=", ".join(dirty))
        )


def commit(root: Path, rels: list[str], message: str) -> str:
    """Commit exactly `rels` (added, changed or removed), whatever else is staged; the new commit's hash."""
    repo = repository(root)
    assert repo is not None
    specs = _pathspecs(repo, root, rels)
    repo.git.add("-A", "--", *specs)
    repo.git.commit("-q", "--no-verify", "-m", message, "--", *specs)
    return repo.head.commit.hexsha
