"""Windows, and anything not Linux, proven on this machine: the CLI, safety and revert tests again without the
POSIX-only modules (`fcntl`, `resource`), a console that writes GBK (Chinese Windows), and a checkout with CRLF line
endings (git's `core.autocrlf=true`, Windows' default) applied, verified and reverted byte for byte.

`.github/workflows/platforms.yml` runs the unit tests on windows-latest and macos-latest where the repository is
hosted on GitHub; nothing here needs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import git_status, tree_digest, verify_json
from patcher.cli import cli

pytestmark = pytest.mark.e2e
TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent
NO_POSIX = TESTS / "no_posix"  # its sitecustomize makes fcntl and resource unimportable
TEXT = (".py", ".yaml", ".yml", ".md", ".txt", ".toml", ".cfg", ".json")


def test_no_command_needs_fcntl_or_resource():
    """The lock falls back to an exclusive create (Windows' msvcrt is not here either), verify's memory cap is
    skipped, and the CLI, safety and revert tests pass as they do with them."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(NO_POSIX), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    shown = subprocess.run([sys.executable, "-c", "import fcntl"], capture_output=True, text=True, env=env)
    assert shown.returncode != 0 and "ModuleNotFoundError" in shown.stderr or "ImportError" in shown.stderr, shown.stderr
    kind = subprocess.run([sys.executable, "-c", "import patcher.locking as l; print(l.kind())"], capture_output=True, text=True, env=env, cwd=REPO)
    assert kind.stdout.strip() == "exclusive-create", kind.stderr
    files = [str(TESTS / "e2e" / name) for name in ("test_cli.py", "test_safety.py", "test_revert.py")]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *files],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=1800,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1] and "failed" not in done.stdout.splitlines()[-1], done.stdout[-500:]


def test_a_gbk_console_gets_no_unicode_error(release_tree, tmp_path):
    """A Chinese Windows console writes GBK: a character it cannot show (here an emoji in the tree's folder and a
    file name, as Ultralytics' own messages have them) is replaced, and the command says its sentence and exits as it
    would."""
    tree = release_tree("8.4.190", name="模型🙂")
    odd = tmp_path / "注意力🙂.py"
    odd.write_text("x = 1\n", encoding="utf-8")
    env = {**os.environ, "PYTHONIOENCODING": "gbk"}
    runs = {
        "refused": ([sys.executable, "-m", "patcher", "apply", str(tree), "--module", str(odd)], 2),
        "status": ([sys.executable, "-m", "patcher", "status", str(tree)], 0),
        "apply": ([sys.executable, "-m", "patcher", "apply", str(tree), "--backbone", "mobilenetv3"], 0),
        "revert": ([sys.executable, "-m", "patcher", "revert", str(tree)], 0),
    }
    for name, (command, code) in runs.items():
        done = subprocess.run(command, capture_output=True, env=env, cwd=REPO)
        out, err = done.stdout.decode("gbk"), done.stderr.decode("gbk")
        assert done.returncode == code, (name, out[-1000:], err[-2000:])
        assert "UnicodeEncodeError" not in err and "Traceback" not in err, (name, err)
        if name == "refused":
            assert "注意力" in err and "is not a Python name" in err, err  # the emoji escaped, the rest kept
        if name == "apply":
            assert "模型?-8.4.190" in out and "applied" in out, out  # the emoji replaced, the rest kept


def crlf_checkout(tree: Path) -> None:
    """The tree as `git clone` with `core.autocrlf=true` leaves it: every text file with CRLF, `git status` clean."""
    subprocess.run(["git", "config", "core.autocrlf", "true"], cwd=tree, check=True)
    for path in tree.rglob("*"):
        if path.is_file() and ".git" not in path.relative_to(tree).parts:
            path.unlink()
    subprocess.run(["git", "checkout", "--", "."], cwd=tree, check=True)


def endings(tree: Path, rels) -> dict[str, str]:
    """Per file: 'crlf' when every line ends with CRLF, 'lf' when none does, 'mixed' otherwise."""
    found = {}
    for rel in rels:
        data = (tree / rel).read_bytes()
        crlf, lf = data.count(b"\r\n"), data.count(b"\n")
        found[rel] = "crlf" if crlf == lf and lf else "lf" if not crlf else "mixed"
    return found


def test_a_crlf_checkout_keeps_its_line_endings(release_tree, tmp_path):
    """apply writes each edited file with its own CRLF and each file it creates with its neighbours' (the model
    YAMLs, AddModules/ and its files); verify builds a model from them; revert is byte for byte."""
    tree = release_tree("8.4.190")
    crlf_checkout(tree)
    assert git_status(tree) == "" and endings(tree, ["ultralytics/nn/tasks.py"]) == {"ultralytics/nn/tasks.py": "crlf"}
    pristine = tree_digest(tree)
    modules = TESTS / "modules"
    result = CliRunner().invoke(cli, ["apply", str(tree), "--backbone", "mobilenetv3", "--module", str(modules / "SEBlock.py")])
    assert result.exit_code == 0, result.output
    changed = [line[3:] for line in git_status(tree).splitlines()]
    written = [rel for rel in changed if not rel.endswith("/")] + [
        p.relative_to(tree).as_posix() for rel in changed if rel.endswith("/") for p in (tree / rel).rglob("*") if p.is_file()
    ]
    text_files = [rel for rel in written if rel.endswith(TEXT)]
    assert "ultralytics/nn/tasks.py" in text_files and "ultralytics/nn/AddModules/SEBlock.py" in text_files
    assert any(rel.endswith("yolo11-MobileNetV3_small_n.yaml") for rel in text_files)
    assert set(endings(tree, text_files).values()) == {"crlf"}, {k: v for k, v in endings(tree, text_files).items() if v != "crlf"}
    again = CliRunner().invoke(cli, ["apply", str(tree), "--backbone", "mobilenetv3", "--module", str(modules / "SEBlock.py")])
    assert again.exit_code == 0 and again.output.rstrip().endswith("nothing to change"), again.output
    assert "0 file(s) edited" not in CliRunner().invoke(cli, ["status", str(tree)]).output

    report = verify_json(tree, "--model", "yolo11-MobileNetV3_small_n")
    assert report["models"][0]["ok"], {c: v for c, v in report["models"][0]["checks"].items() if v["status"] == "fail"}
    assert CliRunner().invoke(cli, ["revert", str(tree)]).exit_code == 0
    assert tree_digest(tree) == pristine and git_status(tree) == ""


def test_apply_a_refusal_and_verify_speak_chinese_in_a_chinese_locale(release_tree):
    """Under LANG=zh_CN.UTF-8: apply's report, a refusal and verify's progress and summary are Chinese; the JSON of
    status stays English."""
    tree = release_tree("8.4.190")
    env = {k: v for k, v in os.environ.items() if k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES")} | {"LANG": "zh_CN.UTF-8"}

    def ultrapatch(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "patcher", *args], capture_output=True, text=True, env=env, cwd=REPO)

    applied = ultrapatch("apply", str(tree), "--backbone", "mobilenetv3")
    assert applied.returncode == 0 and "17 项本次应用，1 项此前已应用" in applied.stdout, applied.stdout + applied.stderr
    refused = ultrapatch("apply", str(tree), "--backbone", "mobilenetv9")
    assert refused.returncode == 2 and "未知的主干 'mobilenetv9'" in refused.stderr, refused.stderr
    verified = ultrapatch("verify", str(tree), "--model", "yolo11n-MobileNetV3_small_n")
    assert verified.returncode == 0, verified.stderr[-2000:]
    assert "在 1 个进程中验证 1 个模型" in verified.stderr and "1 个模型中 1 个通过" in verified.stdout, verified.stdout
    status = ultrapatch("status", str(tree), "--json")
    assert '"state": "applied"' in status.stdout and "已应用" not in status.stdout
