"""`ultrapatch fetch`: an Ultralytics source release from PyPI, unpacked into a new git repository.

The download goes through pip (`pip download --no-deps --no-binary=:all:`), so the user's index, proxy and
certificate settings apply. `ULTRAPATCH_SDIST_CACHE`, when set, names a folder where downloaded sdists are kept and
looked up first (the test-suite uses it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from patcher.errors import UltrapatchError
from patcher.i18n import _
from patcher.tree import compromised_notice, format_version, parse_version

CACHE_ENV = "ULTRAPATCH_SDIST_CACHE"
AUTHOR = ("ultrapatch", "ultrapatch@localhost")  # name, email of the release commits


def sdist_name(version: str) -> str:
    return f"ultralytics-{version}.tar.gz"


def download_sdist(version: str, into: Path) -> Path:
    """Download the sdist of `version` into `into` with pip; UltrapatchError when PyPI says no or cannot be reached."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:"]
    command += ["--disable-pip-version-check", "-q", "-d", str(into), f"ultralytics=={version}"]
    result = subprocess.run(command, capture_output=True, text=True)
    found = into / sdist_name(version)
    if result.returncode != 0 or not found.is_file():
        output = result.stderr + result.stdout
        if "from versions: none" in output:  # pip saw no release of Ultralytics at all: it reached no index
            raise UltrapatchError(
                _(
                    "could not reach PyPI to download Ultralytics {version}: pip found no releases at all. Check the "
                    "network, or pip's index settings (pip config list)."
                ).format(version=version)
            )
        if "No matching distribution" in output:
            raise UltrapatchError(_("PyPI has no Ultralytics {version} source release. Check the version number.").format(version=version))
        errors = [line for line in output.splitlines() if line.startswith("ERROR")] or output.splitlines()[-1:]
        raise UltrapatchError(_("could not download Ultralytics {version} from PyPI: {errors}").format(version=version, errors=" ".join(errors)[:500]))
    return found


def cached_sdist(version: str, scratch: Path) -> Path:
    """The sdist of `version`, from the cache folder when there is one, downloading it otherwise."""
    cache = os.environ.get(CACHE_ENV)
    if cache:
        hit = Path(cache) / sdist_name(version)
        if hit.is_file():
            return hit
        Path(cache).mkdir(parents=True, exist_ok=True)
        found = download_sdist(version, scratch)
        shutil.copy2(found, hit)
        return hit
    return download_sdist(version, scratch)


def unpack(sdist: Path, dest: Path) -> None:
    """Unpack the sdist's single top folder (`ultralytics-X/`) as `dest`."""
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp, tarfile.open(sdist) as archive:
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(tmp, **kwargs)
        tops = list(Path(tmp).iterdir())
        if len(tops) != 1 or not (tops[0] / "ultralytics" / "__init__.py").is_file():
            raise UltrapatchError(_("{file} is not an Ultralytics source release (no ultralytics/ package inside).").format(file=sdist.name))
        tops[0].rename(dest)


# What installing or importing the release writes into it (`pip install -e` rewrites the sdist's egg-info), and what
# training, validating and predicting from the fork's folder write (`runs/`, Ultralytics' default project folder):
# neither committed nor shown by `git status`, so that revert can give back a clean tree. In `.git/info/exclude`: the
# repository's own files stay as the release has them.
ARTEFACTS = ("/*.egg-info/", "/build/", "/dist/", "__pycache__/", "*.py[cod]", "/runs/")


def commit_all(dest: Path, message: str) -> str:
    """`git init`, exclude the packaging artefacts, add everything else, commit; the new commit's hash."""
    import git  # GitPython takes ~30 ms to import: only the commands that run git import it

    repo = git.Repo.init(dest)
    exclude = dest / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with open(exclude, "a", encoding="utf-8") as handle:
        handle.write("# build and install artefacts (ultrapatch fetch)\n" + "".join(f"{line}\n" for line in ARTEFACTS))
    repo.git.add(A=True)
    env = {
        "GIT_AUTHOR_NAME": AUTHOR[0],
        "GIT_AUTHOR_EMAIL": AUTHOR[1],
        "GIT_COMMITTER_NAME": AUTHOR[0],
        "GIT_COMMITTER_EMAIL": AUTHOR[1],
    }
    with repo.git.custom_environment(**env):
        repo.git.commit("-q", "--no-verify", "-m", message)
    return repo.head.commit.hexsha


def exact_release(version: str) -> str:
    """`version` as the release pip resolves it to: 8.3 is 8.3.0 (PEP 440 pads with zeros). Bad input otherwise."""
    try:
        parts = parse_version(version)
    except ValueError:
        raise UltrapatchError(_("{version} is not a release number such as 8.3.40.").format(version=repr(version))) from None
    return format_version((*parts, 0, 0)[:3]) if len(parts) < 3 else version


def fetch(dest: Path, version: str) -> str:
    """Download, unpack and commit Ultralytics `version` (an exact release) into the new folder `dest`; the commit
    hash."""
    notice = compromised_notice(version)
    if notice:
        raise UltrapatchError(notice)
    if dest.exists():
        raise UltrapatchError(_("{dest} already exists. fetch makes a new folder: give a path that does not exist yet.").format(dest=dest))
    if not dest.parent.is_dir():
        raise UltrapatchError(_("{folder} does not exist. Create it first, or give another path.").format(folder=dest.parent))
    with tempfile.TemporaryDirectory() as scratch:
        unpack(cached_sdist(version, Path(scratch)), dest)
    return commit_all(dest, f"Ultralytics {version} (PyPI source release)")
