"""A check is one file and one row: a check written only here, added to a copy of ultrapatch's fork side as a
developer adds one, runs on every model, appears in `--list-checks` and in the report, and its verdict's cause, not
its words, decides the stock control (a failure the stock model shares is the environment's; a known limit there
skips the check)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import REPO
from patcher.cli import cli

pytestmark = pytest.mark.e2e
MODEL = "yolov8n-cls-MobileNetV2"

CHECK = '''"""probe-check: a check written by a test, to show that a check is one file and one row."""

from __future__ import annotations

import os

from .base import Check, Finding, KnownLimit, ModelContext


class ProbeCheck(Check):
    name = "probe-check"
    description = "a check defined only in the tests"
    skips_on_known_limit = True

    def run(self, ctx: ModelContext, session) -> str:
        stock = ctx.spec["name"] == ctx.spec["stock"]
        mode = os.environ["PROBE_CHECK"]
        if mode == "pass":
            return f"saw {ctx.params} parameters"
        if not stock:
            raise Finding("zebra: the patched model")
        if mode == "limit":
            raise KnownLimit("quokka: the stock model cannot")
        raise Finding("okapi: the stock model too")
'''


def ultrapatch_with_a_new_check(root: Path) -> Path:
    """A copy of ultrapatch's source with the check's file and its row in the table; the folder to put first on
    PYTHONPATH."""
    source = root / "src"
    for folder in ("patcher", "modules", "templates"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    checks = source / "patcher" / "fork" / "checks"
    (checks / "probe_check.py").write_text(CHECK, encoding="utf-8")
    table = checks / "__init__.py"
    text = table.read_text(encoding="utf-8")
    text = text.replace("from .weights import Weights\n", "from .weights import Weights\nfrom .probe_check import ProbeCheck\n")
    text = text.replace("    Export(),\n)", "    Export(),\n    ProbeCheck(),\n)")
    assert "ProbeCheck()" in text
    table.write_text(text, encoding="utf-8")
    return source


def ultrapatch(source: Path, *args: str, mode: str = "pass") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(source), "PROBE_CHECK": mode, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "patcher", *args], capture_output=True, text=True, env=env,
                          cwd=source.parent, timeout=900)  # fmt: skip


def test_a_check_is_one_file_and_one_row(release_tree, tmp_path):
    source = ultrapatch_with_a_new_check(tmp_path)
    listed = ultrapatch(source, "verify", "--list-checks")
    assert listed.returncode == 0 and "probe-check  a check defined only in the tests" in listed.stdout, listed.stderr

    tree = release_tree("8.4.190")
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv2"]).exit_code == 0
    verdicts = {}
    for mode in ("pass", "finding", "limit"):
        done = ultrapatch(source, "verify", str(tree), "--model", MODEL, "--json", mode=mode)
        report = json.loads(done.stdout)
        assert list(report["models"][0]["checks"])[-1] == "probe-check", done.stderr[-2000:]
        verdicts[mode] = report["models"][0]["checks"]["probe-check"]
        assert done.returncode == (1 if mode == "finding" and verdicts[mode]["status"] == "fail" else 0)
    assert verdicts["pass"]["status"] == "pass" and verdicts["pass"]["reason"].startswith("saw ")
    # the stock model fails with a finding too: the environment's, with the stock model's own reason kept apart
    finding = verdicts["finding"]
    assert (finding["status"], finding["cause"], finding["control"]) == ("environment", "environment", "okapi: the stock model too")
    # a known limit on the stock model: skipped with its reason, whatever its words
    limit = verdicts["limit"]
    assert (limit["status"], limit["cause"], limit["reason"]) == ("skip", "known-limit", "quokka: the stock model cannot")

    table = ultrapatch(source, "verify", str(tree), "--model", MODEL, mode="finding")
    assert "probe-check" in table.stdout.splitlines()[1]  # a column of the table
    assert "  probe-check (1 model): okapi: the stock model too" in table.stdout
