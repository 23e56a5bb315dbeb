"""Shared fixtures: real Ultralytics releases, fetched from PyPI by `ultrapatch fetch` into a cache, then copied.

The cache lives in `.cache/` at the repository root (or `ULTRAPATCH_TEST_CACHE`): sdists in `sdist/`, pristine git
trees in `trees/<release>/`. Each test gets its own copy, so tests never see each other's edits.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from patcher.fetch import CACHE_ENV, fetch
from patcher.launcher import command

# The tests read ultrapatch's English, whatever the machine's locale (tests of the Chinese set their own).
for _name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
    os.environ.pop(_name, None)
os.environ["LANG"] = "C.UTF-8"

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("ULTRAPATCH_TEST_CACHE", REPO / ".cache"))
# The tutorials' own backbone code, re-indented: third-party files that live beside the repository, never in it.
SEED_CODE = REPO.parent / "shared" / "reference" / "seed-code"

# The releases the end-to-end tests run on: the oldest supported, each group of the edit map, and the newest.
RELEASES = ("8.1.47", "8.2.103", "8.3.0", "8.3.40", "8.3.253", "8.4.0", "8.4.190")


def seed_code(file: str) -> str:
    """A tutorial's backbone file as a user copies it from the blog; the test skips, saying why, without it."""
    path = SEED_CODE / file
    if not path.is_file():
        pytest.skip(f"{path} is absent: the tutorials' code is not part of this repository (see its README)")
    return path.read_text(encoding="utf-8")


def pristine_tree(version: str) -> Path:
    """A cached, never-modified git tree of `version`, fetched on first use."""
    tree = CACHE / "trees" / version
    if not (tree / ".git").is_dir():
        shutil.rmtree(tree, ignore_errors=True)
        tree.parent.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault(CACHE_ENV, str(CACHE / "sdist"))
        fetch(tree, version)
    return tree


@pytest.fixture
def release_tree(tmp_path: Path):
    """Factory: a private copy of a release's git tree, in this test's temporary folder."""

    def make(version: str, name: str = "ultralytics") -> Path:
        dest = tmp_path / f"{name}-{version}"
        shutil.copytree(pristine_tree(version), dest, symlinks=True)
        return dest

    return make


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` outside .git: byte-for-byte comparisons of whole trees."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def git_status(root: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True).stdout


def run_probe(tree: Path, *models: str, timeout: int = 2400) -> dict:
    """Build and run `models` (NAME:BUILDER) with `tree` first on sys.path, in one subprocess per CPU core (each
    takes every n-th model); the probe's report, the models in the order given."""
    import json

    env = {**os.environ, "YOLO_CONFIG_DIR": str(tree.parent / "yolo-config"), "YOLO_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    jobs = max(1, min(os.cpu_count() or 1, 4, len(models)))
    processes = [
        subprocess.Popen(
            command(sys.executable, "probe", tree, *models[k::jobs]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tree.parent,
        )  # fmt: skip
        for k in range(jobs)
    ]
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=timeout)
        assert process.returncode == 0, err[-3000:]
        reports.append(json.loads(out))
    report = reports[0]
    report["models"] = [reports[i % jobs]["models"][i // jobs] for i in range(len(models))]
    return report


def verify(tree: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`ultrapatch verify` as a user runs it: its own process, stdout and stderr apart."""
    return subprocess.run(
        [sys.executable, "-m", "patcher", "verify", str(tree), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "YOLO_CONFIG_DIR": str(tree.parent / "yolo-config"), **(env or {})},
        cwd=tree.parent,  # not the checkout: `-m` puts the working folder first on sys.path
        timeout=2400,
    )


def verify_json(tree: Path, *args: str, env: dict | None = None, code: int = 0) -> dict:
    """`verify --json`, which must exit with `code`: its report."""
    import json

    result = verify(tree, *args, "--json", env=env)
    assert result.returncode == code, result.stderr[-3000:]
    return json.loads(result.stdout)


def verify_table(output: str) -> dict[str, dict[str, str]]:
    """verify's table as printed: model name -> {check: cell}, by the header's column names."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("model "))
    header = lines[start].split()
    checks = header[1 : header.index("params")]
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = dict(zip(checks, cells[1:]))
    return rows
