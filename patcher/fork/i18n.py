"""The fork side's sentences in the user's language: `patcher/i18n.py` itself, loaded by its path (it needs only the
standard library), with the catalogs beside it. The fork's processes inherit the environment that chose the
language of the command that started them; `--json` sets English there (`patcher.i18n.machine_readable`). Where the
file or a catalog is missing, English."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PARENT = Path(__file__).resolve().parent.parent / "i18n.py"


def _load():
    try:
        spec = importlib.util.spec_from_file_location("ultrapatch_i18n", PARENT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    except Exception:  # noqa: BLE001 - no catalog machinery: English
        return None


# In ultrapatch's own process (which imports some fork modules: the checks' table, yamlfile), the one catalog it
# already has, so that `--json`'s English holds for these sentences too; in the fork's processes, the file loaded.
_i18n = sys.modules.get("patcher.i18n") or _load()


def _(message: str) -> str:
    """`message` in the user's language."""
    return _i18n._(message) if _i18n is not None else message


def N_(message: str) -> str:
    """Marks a constant for translation; `_()` translates it where it is shown."""
    return message
