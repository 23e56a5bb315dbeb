"""Errors as sentences for a person, each with a stable exit code.

Exit codes: 0 success (including "already applied"); 1 an edit could not be made (or `--check` found work to do);
2 bad input or usage; 3 an unexpected internal error.
"""

from __future__ import annotations

import click

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
