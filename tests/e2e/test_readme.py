"""The README's console examples, and those of its reference pages in docs/, are real output: each block marked
`<!-- test: SESSION ... -->` is run again, in order, and compared with what the page shows, so a stale transcript
fails the suite.

A marker names a session (blocks of one session share a folder, in page order; sessions are per page) and, on the
session's first block,
what to set up, hidden from the reader: `<!-- test: main | cp -r "$TREES/8.4.190" ultralytics -->` runs the part after
`|` with bash in a new folder, where `$TREES` holds the cached pristine releases and `ultrapatch` is this checkout's.
In the README, a line `...` stands for any number of lines; the session's folder reads as `/tmp/readme`, and a
10-digit commit hash as any. Commands starting with `pip ` are shown, not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import CACHE, REPO, RELEASES, pristine_tree

pytestmark = pytest.mark.e2e
MARKER = re.compile(r"<!-- test: (\S+)(?: \| (.*?))? -->\n```console\n(.*?)```", re.S)
SHA = re.compile(r"\b[0-9a-f]{10}\b")
SHOWN = "/tmp/readme"


@dataclass
class Block:
    session: str
    setup: str | None
    line: int
    page: str = "README.md"
    steps: list[tuple[str, list[str]]] = field(default_factory=list)  # (command, the output the README shows)


def pages() -> list[Path]:
    """The README and every page of docs/ (the Chinese ones too)."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), *sorted(REPO.glob("README.*.md"))]


def page_name(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def blocks(path: Path = REPO / "README.md") -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in MARKER.finditer(text):
        block = Block(match[1], match[2], text.count("\n", 0, match.start()) + 1, page=page_name(path))
        for line in match[3].splitlines():
            if line.startswith("$ "):
                block.steps.append((line[2:], []))
            else:
                assert block.steps, f"{block.page} line {block.line}: output before any command"
                block.steps[-1][1].append(line)
        found.append(block)
    return found


def sessions() -> dict[str, list[Block]]:
    """'page:session' -> its blocks, in page order."""
    grouped: dict[str, list[Block]] = {}
    for path in pages():
        for block in blocks(path):
            grouped.setdefault(f"{block.page}:{block.session}", []).append(block)
    return grouped


def matches(shown: list[str], actual: list[str]) -> bool:
    """Whether the output equals what the README shows, a `...` line standing for any lines (none included)."""
    pattern = "".join(r"(?:.*\n)*?" if line.strip() == "..." else re.escape(SHA.sub("<sha>", line)) + r"\n" for line in shown)
    return re.fullmatch(pattern, "".join(SHA.sub("<sha>", line) + "\n" for line in actual)) is not None


def run(command: str, folder: Path, env: dict[str, str], status: int) -> tuple[list[str], int]:
    """One command as the README's shell runs it (`$?` is the previous command's exit status); its output, stdout
    and stderr as they came, and its exit status."""
    done = subprocess.run(["bash", "-c", f"(exit {status}); {command}"], cwd=folder, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=900)  # fmt: skip
    out = done.stdout
    for place in {str(folder.resolve()), str(folder)}:
        out = out.replace(place, SHOWN)
    return out.splitlines(), done.returncode


def environment(folder: Path, page: str = "README.md") -> dict[str, str]:
    """The shell's environment: the cached releases, this checkout's ultrapatch, and the page's language (Chinese for
    the Chinese pages, English for the others, whatever the machine's locale)."""
    trees = folder.parent / "trees"
    if not trees.exists():
        trees.mkdir()
        for version in (*RELEASES, "8.3.150"):
            (trees / version).symlink_to(pristine_tree(version))
    chinese = ".zh-CN." in page or "/zh-CN/" in page
    return {
        **{k: v for k, v in os.environ.items() if k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES")},
        "LANG": "zh_CN.UTF-8" if chinese else "C.UTF-8",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TREES": str(trees),
        "YAMLS": str(REPO / "tests" / "yamls"),  # the model YAMLs written for the tests
        "MODULES": str(REPO / "tests" / "modules"),  # and the module files
        "ULTRAPATCH_SDIST_CACHE": str(CACHE / "sdist"),
        "YOLO_CONFIG_DIR": str(folder.parent / "yolo-config"),
        "GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@example.com",
        "GIT_COMMITTER_NAME": "u", "GIT_COMMITTER_EMAIL": "u@example.com",
        "COLUMNS": "120",
    }  # fmt: skip


def test_every_block_is_marked_and_parsed():
    """The commands the README shows, outside the marked blocks, are those that need a trained model, a GPU, timm's
    download, or minutes: the marked ones are the cheap ones the issue names."""
    found = {key.partition(":")[2] for key in sessions()}
    assert {"start", "fetch", "main", "old", "upgrade", "status", "list", "refused", "timm", "own", "module"} <= found, found
    commands = [command for group in sessions().values() for block in group for command, _ in block.steps]
    for wanted in ("ultrapatch fetch", "ultrapatch apply", "ultrapatch revert", "ultrapatch status", "ultrapatch list"):
        assert any(command.startswith(wanted) for command in commands), wanted


@pytest.mark.parametrize("session", sorted(sessions()))
def test_the_readme_shows_real_output(tmp_path, session):
    folder = tmp_path / "readme"
    folder.mkdir()
    env = environment(folder, sessions()[session][0].page)
    status = 0
    for block in sessions()[session]:
        if block.setup:
            done = subprocess.run(["bash", "-c", block.setup], cwd=folder, env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
        for command, shown in block.steps:
            if command.startswith("pip "):
                continue
            actual, status = run(command, folder, env, status)
            assert matches(shown, actual), (
                f"{block.page} line {block.line}, `$ {command}` shows:\n" + "\n".join(shown) + "\nbut prints:\n" + "\n".join(actual)
            )
