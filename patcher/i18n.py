"""What ultrapatch says, in the user's language: English, or Chinese where the locale is Chinese.

The language is chosen as git and other gettext programs choose it: the first of `LANGUAGE`, `LC_ALL`,
`LC_MESSAGES` and `LANG` that is set (a `zh...` value: Chinese; `C`, `en_US...` or anything without a catalog:
English). The catalogs are the standard library's gettext `.mo` files in `patcher/locale/<lang>/LC_MESSAGES/`,
compiled from the `.po` files beside them, which are the ones edited (docs/translating.md has the commands). A
missing or unreadable catalog means English, never an error.

A sentence is marked `_("... {name} ...").format(name=...)`: the placeholders are named, so a translation may put
them in its own order. What machines read stays English: `--json` keys and values, exit codes, edit and check names.
"""

from __future__ import annotations

import gettext
import os
from pathlib import Path

DOMAIN = "ultrapatch"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
ENVIRONMENT = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")

_catalog: gettext.NullTranslations | None = None


def languages() -> list[str]:
    """The languages the environment asks for, in order (`LANGUAGE` may list several, `zh_CN:en`)."""
    for name in ENVIRONMENT:
        value = os.environ.get(name)
        if value:
            return [] if value in ("C", "POSIX") or value.startswith("C.") else [v for v in value.split(":") if v]
    return []


def catalog() -> gettext.NullTranslations:
    """The translations for the environment's language, read once; English (no translation) where there is none."""
    global _catalog
    if _catalog is None:
        try:
            _catalog = gettext.translation(DOMAIN, LOCALE_DIR, languages=languages() or ["en"], fallback=True)
        except Exception:  # noqa: BLE001 - a damaged catalog (struct.error, OSError, ...): English, never an error
            _catalog = gettext.NullTranslations()
    return _catalog


def machine_readable() -> None:
    """English from here on, in this process and in every process it starts (the fork's, which choose their language
    from the same environment): for `--json`, which programs read."""
    os.environ["LANGUAGE"] = "en"
    reset()


def reset() -> None:
    """Choose the catalog again from the environment (tests change it within one process)."""
    global _catalog
    _catalog = None


def _(message: str) -> str:
    """`message` in the user's language."""
    return catalog().gettext(message)


def pgettext(context: str, message: str) -> str:
    """`message` in the user's language, where the same English words say different things in `context`."""
    return catalog().pgettext(context, message)


def NC_(context: str, message: str) -> str:
    """Marks `message` for translation in `context`; `pgettext(context, message)` translates it where it is shown."""
    return message


def N_(message: str) -> str:
    """Marks `message` for translation where it is defined (a constant); `_()` translates it where it is shown."""
    return message
