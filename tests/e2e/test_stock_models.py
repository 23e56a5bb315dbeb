"""Patching changes nothing else: every stock model YAML of a release builds in the patched fork with the same layer
table (type, index, from, parameters), save list, strides, stride probe and seeded outputs as in the release."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from patcher.launcher import command

from conftest import RELEASES
from patcher.cli import cli

pytestmark = pytest.mark.e2e


def start(tree: Path, skip: list[str] = ()) -> subprocess.Popen:
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tree.parent / "settings"), "OMP_NUM_THREADS": "1"}
    skip_file = tree.parent / f"skip-{tree.name}.json"
    skip_file.write_text(json.dumps(list(skip)))
    return subprocess.Popen(command(sys.executable, "stock", tree, skip_file), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tree.parent)


def report(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=1200)
    assert process.returncode == 0, err[-3000:]
    report = json.loads(out)
    for model in report.values():  # the build's seconds vary from run to run; verify's stock check compares them
        model.pop("seconds", None)
    return report


@pytest.mark.parametrize("version", RELEASES)
def test_every_stock_model_is_the_releases(release_tree, version):
    stock, patched = release_tree(version), release_tree(version, "patched")
    result = CliRunner().invoke(cli, ["apply", str(patched), "-b", "all"])
    assert result.exit_code == 0, result.output
    ours = [p.relative_to(patched).as_posix() for p in (patched / "ultralytics/cfg/models").rglob("*-Mobile*.yaml")]
    processes = [start(stock), start(patched, ours)]  # one core each
    before, after = (report(p) for p in processes)
    assert len(before) > 30 and sum("error" not in r for r in before.values()) > 25
    differ = {name: after.get(name) for name in before if after.get(name) != before[name]}
    assert not differ, json.dumps(differ)[:3000]
    assert set(after) == set(before)
