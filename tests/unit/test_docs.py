"""The Chinese pages keep step with the English ones: the same commands in the same order in their console blocks,
the same tables (rows, columns, and the code of each row's first cell), and every relative link of every page
leads to a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
PAIRS = [("README.md", "README.zh-CN.md"), ("docs/main-job.md", "docs/zh-CN/main-job.md")]
CONSOLE = re.compile(r"```console\n(.*?)```", re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def commands(text: str) -> list[str]:
    """Every command of the page's console blocks, in order: the `$ ` lines, or every line of a block without
    output, without its comment."""
    found = []
    for block in CONSOLE.findall(text):
        lines = block.splitlines()
        prompted = [line[2:] for line in lines if line.startswith("$ ")]
        found += prompted or [re.sub(r"\s+#.*$", "", line) for line in lines if line.strip()]
    return found


def tables(text: str) -> list[tuple[int, int, list[str]]]:
    """Per table: its rows, its columns, and the code spans of each row's first cell."""
    found, rows = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            body = rows[2:]
            found.append((len(body), len(rows[0]), ["".join(re.findall(r"`[^`]*`", row[0])) for row in body]))
            rows = []
    return found


@pytest.mark.parametrize("english, chinese", PAIRS)
def test_the_chinese_page_has_the_english_pages_commands_and_tables(english, chinese):
    en, zh = ((REPO / page).read_text(encoding="utf-8") for page in (english, chinese))
    assert commands(zh) == commands(en)
    assert tables(zh) == tables(en)
    assert chinese.rsplit("/", 1)[-1] in en.split("\n\n", 2)[1] and english.rsplit("/", 1)[-1] in zh.split("\n\n", 2)[1]  # linked both ways, at the top


@pytest.mark.parametrize("page", [p.relative_to(REPO).as_posix() for p in [REPO / "README.md", *REPO.glob("README.*.md"), *(REPO / "docs").rglob("*.md")]])
def test_every_relative_link_leads_somewhere(page):
    path = REPO / page
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "#", "mailto:")):
            continue
        assert (path.parent / target.split("#")[0]).exists(), f"{page}: {target}"


def test_test_files_have_unique_names():
    """pytest imports tests/unit and tests/e2e by basename: two files of one name stop the whole collection."""
    names = [p.name for p in (REPO / "tests").rglob("test_*.py")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
