"""Bytes to text and back, keeping each file's encoding, and sentences for a file ultrapatch cannot read or parse.

A Python file is read in the encoding its PEP 263 declaration names (UTF-8 without one) and written back in the
same; anything else (the model YAMLs) is UTF-8.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

from patcher.errors import UltrapatchError
from patcher.i18n import N_, _

COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=]", re.M)  # PEP 263
RESTORE = N_("see what changed with `git diff -- {rel}`, and restore it with `git checkout -- {rel}`")


class UnreadableFile(UltrapatchError):
    """A file ultrapatch must edit cannot be decoded, or is not valid Python: exit 2, nothing written."""


def decode(rel: str, data: bytes) -> tuple[str, str]:
    """The text of `data`, the file at `rel`, and the encoding to write it back in."""
    encoding = "utf-8"
    if rel.endswith(".py"):
        try:
            encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
        except SyntaxError as exc:  # an unknown declared encoding, or no declaration and lines that are not UTF-8
            if COOKIE.search(b"\n".join(data.splitlines()[:2])):
                raise UnreadableFile(_("{file} declares an encoding Python does not know ({error}). Fix its coding line.").format(file=rel, error=exc)) from None
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        where = _("byte {byte} on line {line}").format(byte=f"0x{data[exc.start]:02x}", line=line)
        if rel.endswith(".py"):
            raise UnreadableFile(
                _(
                    "{file} is not valid {encoding} ({where}), the encoding it declares or Python's default. ultrapatch "
                    "keeps a file's encoding but must know it: declare it on the first line (`# -*- coding: latin-1 -*-`, "
                    "PEP 263), or convert the file to UTF-8 (`iconv -f latin1 -t utf-8`), then run the command again."
                ).format(file=rel, encoding=encoding, where=where)
            ) from None
        raise UnreadableFile(
            _(
                "{file} is not UTF-8 ({where}). ultrapatch reads its files as UTF-8: convert it (`iconv -f latin1 -t "
                "utf-8`) or move it aside, then run the command again."
            ).format(file=rel, where=where)
        ) from None


def newline_of(data: bytes) -> str | None:
    """"\r\n" for a file whose every line ends so (a Windows checkout, `core.autocrlf=true`), "\n" for one with any
    other ending, None for a file without one. A file of mixed endings is left as it is."""
    lines = data.count(b"\n")
    if not lines:
        return None
    return "\r\n" if data.count(b"\r\n") == lines else "\n"


TEXT_SUFFIXES = (".py", ".yaml", ".yml", ".md", ".txt", ".cfg", ".toml")


def folder_newline(root: Path, rel: str) -> str:
    """The line ending of the text files nearest to a file ultrapatch creates at `rel`: those of its folder, else of
    the nearest folder above that has any (a new `AddModules/` follows `ultralytics/nn/`). "\n" where none says."""
    folder = (root / rel).parent
    while True:
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.suffix in TEXT_SUFFIXES and path.is_file():
                    found = newline_of(path.read_bytes()[:65536])
                    if found:
                        return found
        if folder == root or root not in folder.parents:
            return "\n"
        folder = folder.parent


def encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding)


def syntax_error(rel: str, text: str, parser_message: str) -> UnreadableFile:
    """The sentence for a Python file that does not parse: Python's own message and line where it has one."""
    try:
        ast.parse(text)
    except SyntaxError as exc:
        detail = _("line {line}: {error}").format(line=exc.lineno, error=exc.msg)
    else:  # Python parses it and libcst does not: syntax newer than this libcst knows
        detail = _("libcst cannot parse it ({error}); upgrade libcst").format(error=parser_message.strip().splitlines()[0])
    return UnreadableFile(_("{file} is not valid Python ({detail}). ultrapatch edits valid source only: {restore}.").format(
        file=rel, detail=detail, restore=_(RESTORE).format(rel=rel)))  # fmt: skip
