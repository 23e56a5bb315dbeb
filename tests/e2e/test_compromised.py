"""The releases compromised upstream (December 2024) are refused by apply, verify and fetch, named by status, and a
tree that says it is one of them can still be reverted."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import tree_digest
from patcher.cli import cli
from patcher.tree import COMPROMISED_RELEASES, compromised_notice, format_version

pytestmark = pytest.mark.e2e
BAD = [format_version(v) for v in COMPROMISED_RELEASES]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def say_release(tree, version: str) -> None:
    init = tree / "ultralytics/__init__.py"
    text = init.read_text()
    assert '__version__ = "8.3.40"' in text
    init.write_text(text.replace('__version__ = "8.3.40"', f'__version__ = "{version}"'))


def test_the_list_is_the_advisory():
    assert BAD == ["8.3.41", "8.3.42", "8.3.45", "8.3.46"]
    for clean in ("8.3.40", "8.3.43", "8.3.44", "8.3.47", "8.4.190", "8.3.4", "not a release"):
        assert compromised_notice(clean) is None


@pytest.mark.parametrize("version", BAD)
def test_apply_and_verify_refuse_status_names_it(release_tree, version):
    tree = release_tree("8.3.40")
    say_release(tree, version)
    before = tree_digest(tree)
    for args in (["apply", str(tree), "-b", "mobilenetv2"], ["apply", str(tree), "-b", "all", "--dry-run"], ["verify", str(tree)]):
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert f"Ultralytics {version} is one of the releases" in result.output
        assert "compromised build pipeline" in result.output and "--version 8.3.47" in result.output
        assert "Traceback" not in result.output
        assert tree_digest(tree) == before
    status = invoke("status", str(tree))
    assert status.exit_code == 0, status.output
    assert f"warning: Ultralytics {version} is one of the releases" in status.output
    report = json.loads(invoke("status", str(tree), "--json").output)
    assert report["compromised"].startswith(f"Ultralytics {version} is one of")
    assert tree_digest(tree) == before


def test_fetch_refuses_before_downloading(tmp_path):
    result = invoke("fetch", str(tmp_path / "u"), "--version", "8.3.45")
    assert result.exit_code == 2 and "compromised build pipeline" in result.output
    assert not (tmp_path / "u").exists()


def test_revert_still_works_on_such_a_tree(release_tree):
    """A tree patched while it said 8.3.40, then found to be 8.3.41 (a user's earlier apply): revert undoes it."""
    tree = release_tree("8.3.40")
    clean = tree_digest(tree)
    assert invoke("apply", str(tree), "-b", "mobilenetv2").exit_code == 0
    say_release(tree, "8.3.41")
    result = invoke("revert", str(tree))
    assert result.exit_code == 0, result.output
    say_back = tree / "ultralytics/__init__.py"
    say_back.write_text(say_back.read_text().replace('"8.3.41"', '"8.3.40"'))
    assert tree_digest(tree) == clean


def test_a_real_neighbour_is_untouched_by_the_rule(release_tree):
    tree = release_tree("8.3.40")
    result = invoke("apply", str(tree), "-b", "mobilenetv2", "--check")
    assert result.exit_code == 1 and "compromised" not in result.output  # work to do, nothing refused
    listing = invoke("list")
    assert "8.3.41, 8.3.42, 8.3.45, 8.3.46" in listing.output
