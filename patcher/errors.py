"""Errors as sentences for a person, each with a stable exit code.

Exit codes: 0 success (including "already applied"); 1 an edit could not be made (or `--check` found work to do);
2 bad input or usage; 3 an unexpected internal error.
"""

from __future__ import annotations

import errno

import click

from patcher.i18n import N_, _

EXIT_OK = 0
EXIT_EDIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


class UltrapatchError(click.ClickException):
    """A problem with what the user asked for or pointed at: exit 2."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file=None) -> None:
        click.echo(f"ultrapatch: {self.format_message()}", err=True)


class EditFailed(UltrapatchError):
    """One or more edits could not be made: exit 1. Nothing was written."""

    exit_code = EXIT_EDIT_FAILED


REASONS = {  # errno -> why, marked for translation (EDQUOT: not on Windows)
    errno.EACCES: N_("permission denied (the file or its folder is not writable for you: `ls -l`)"),
    errno.EPERM: N_("operation not permitted (the file or its folder may be immutable: `lsattr` shows an i)"),
    errno.EROFS: N_("the file system is read-only"),
    errno.ENOSPC: N_("no space left on the device"),
    getattr(errno, "EDQUOT", -2): N_("your disk quota is used up"),
}


def os_reason(exc: OSError | None) -> str:
    """Why a write failed, in words that say what to look at (the system's own where there are none)."""
    if exc is None:
        return _("failed")
    return _(REASONS[exc.errno]) if exc.errno in REASONS else str(exc.strerror)


class WriteFailed(UltrapatchError):
    """A file could not be written; everything this run wrote was undone: exit 2."""

    def __init__(self, what: str, exc: OSError | None = None, reason: str = ""):
        reason = reason or os_reason(exc)
        super().__init__(
            _(
                "could not write {what}: {reason}. Nothing was changed: the tree is as it was before this command. "
                "Make it writable (`chmod u+w`, `chattr -i`) or free some space, then run the command again."
            ).format(what=what, reason=reason)
        )
