"""The Chinese catalog: every sentence marked in the source has a translation with the same placeholders, the compiled
catalog is the source catalog compiled, and the language follows the environment as gettext programs decide it,
falling back to English, never to an error."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from patcher import i18n

REPO = Path(__file__).resolve().parent.parent.parent
PO = REPO / "patcher" / "locale" / "zh" / "LC_MESSAGES" / "ultrapatch.po"
MO = PO.with_suffix(".mo")
KEYWORDS = {"_": None, "N_": None, "NC_": ((1, "c"), 2), "pgettext": ((1, "c"), 2)}
PLACEHOLDER = re.compile(r"\{(\w*)[^{}]*\}")


def source_messages() -> dict[tuple[str | None, str], str]:
    """(context, message) -> where, for every message marked in patcher/ (what `pybabel extract -k N_ -k NC_:1c,2`
    finds)."""
    found = {}
    for file, line, message, _comments, context in extract_from_dir(REPO / "patcher", keywords=KEYWORDS):
        if isinstance(message, str) and message:
            found[(context, message)] = f"patcher/{file}:{line}"
    return found


def catalog():
    with PO.open("rb") as f:
        return read_po(f)


def test_every_marked_message_has_a_chinese_entry_with_the_same_placeholders():
    translated = {(m.context, m.id): m.string for m in catalog() if m.id}
    messages = source_messages()
    assert len(messages) > 150  # the extraction found the marked sentences at all
    missing = [f"{where}: {message!r}" for (context, message), where in messages.items() if not translated.get((context, message))]
    assert not missing, "not translated (docs/translating.md says how):\n" + "\n".join(missing)
    for (context, message), where in messages.items():
        chinese = translated[(context, message)]
        assert sorted(PLACEHOLDER.findall(chinese)) == sorted(PLACEHOLDER.findall(message)), (where, message, chinese)
        assert re.search(r"[\u4e00-\u9fff]", chinese) or not re.search(r"[a-z]{3}", PLACEHOLDER.sub("", message)), (where, chinese)
    stale = [message for key, message in ((k, k[1]) for k in translated) if key not in messages]
    assert not stale, f"entries no message of the source has any more (pybabel update drops them): {stale}"


def test_the_compiled_catalog_is_the_source_catalog_compiled():
    compiled = io.BytesIO()
    write_mo(compiled, catalog())
    assert MO.read_bytes() == compiled.getvalue(), "patcher/locale/zh/LC_MESSAGES/ultrapatch.mo is stale: pybabel compile -d patcher/locale -D ultrapatch"


@pytest.mark.parametrize(
    "environment, chinese",
    [
        ({"LANG": "zh_CN.UTF-8"}, True),
        ({"LANG": "zh_TW.UTF-8"}, True),
        ({"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, True),  # LC_ALL before LANG
        ({"LANGUAGE": "zh_CN:en", "LANG": "en_US.UTF-8"}, True),  # LANGUAGE first of all
        ({"LC_MESSAGES": "zh_CN.UTF-8"}, True),
        ({"LANG": "C"}, False),
        ({"LANG": "C.UTF-8"}, False),
        ({"LANG": "en_US.UTF-8"}, False),
        ({"LANG": "fr_FR.UTF-8"}, False),  # no catalog: English
        ({}, False),
    ],
)
def test_the_language_follows_the_environment(tmp_path, environment, chinese):
    env = {k: v for k, v in os.environ.items() if k not in i18n.ENVIRONMENT} | environment
    done = subprocess.run([sys.executable, "-m", "patcher", "status", str(tmp_path / "nowhere")], capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    if chinese:
        assert "不存在。请给出 Ultralytics 代码的目录。" in done.stderr, done.stderr
    else:
        assert "does not exist. Give the folder of an Ultralytics checkout." in done.stderr, done.stderr


def test_a_missing_or_damaged_catalog_means_english(tmp_path, monkeypatch):
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    sentence = "{path} does not exist. Give the folder of an Ultralytics checkout."
    try:
        i18n.reset()
        assert i18n._(sentence) != sentence  # the shipped catalog is Chinese
        monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path / "no-such-folder")
        i18n.reset()
        assert i18n._(sentence) == sentence
        damaged = tmp_path / "damaged" / "zh" / "LC_MESSAGES"
        damaged.mkdir(parents=True)
        (damaged / "ultrapatch.mo").write_bytes(b"\xde\x12\x04\x95 not a catalog")
        monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path / "damaged")
        i18n.reset()
        assert i18n._(sentence) == sentence
    finally:
        monkeypatch.undo()
        i18n.reset()


def test_json_stays_english_in_a_chinese_locale(monkeypatch):
    """What programs read is the same in every locale: `--json` sets English for the command and for the fork's
    processes it starts, which read the same environment."""
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    monkeypatch.delenv("LANGUAGE", raising=False)
    i18n.reset()
    try:
        assert i18n._("nothing to change") != "nothing to change"
        i18n.machine_readable()
        assert i18n._("nothing to change") == "nothing to change" and os.environ["LANGUAGE"] == "en"
        done = subprocess.run([sys.executable, "-c", "from patcher.i18n import _; print(_('nothing to change'))"],
                              capture_output=True, text=True, cwd=REPO)  # fmt: skip
        assert done.stdout.strip() == "nothing to change"
    finally:
        monkeypatch.undo()
        i18n.reset()


def test_every_marked_sentence_is_formatted_with_exactly_its_placeholders():
    """`_("... {name} ...").format(name=...)`: a placeholder without its keyword is a KeyError in the middle of a
    command, in one language or another; a keyword without its placeholder is a figure that was meant to be shown."""
    import ast

    wrong = []
    for path in sorted((REPO / "patcher").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"):
                continue
            inner = node.func.value
            if not (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and inner.func.id in ("_", "pgettext")):
                continue
            literal = inner.args[-1]
            if not (isinstance(literal, ast.Constant) and isinstance(literal.value, str)) or any(k.arg is None for k in node.keywords):
                continue
            wanted = set(PLACEHOLDER.findall(literal.value))
            given = {k.arg for k in node.keywords}
            if wanted != given or node.args:
                wrong.append(f"{path.relative_to(REPO)}:{node.lineno}: {sorted(wanted)} formatted with {sorted(given)}")
    assert not wrong, "\n".join(wrong)
