"""What every edit is: a named unit with a target, a description, and an `apply` that works on in-memory text.

An edit never decides its own status. The planner compares the text before and after: changed means "applied",
unchanged means "already applied". An edit raises `NotInRelease` when the release lacks what it targets, and
`AnchorMissing` when the construct it needs is not where every release has it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import ClassVar

import libcst as cst

from patcher import textio
from patcher.edits import splice
from patcher.backbones import BACKBONE_MAP, Backbone
from patcher.i18n import NC_, _, pgettext
from patcher.tree import Version


class Status(str, Enum):
    """An edit's state. The values are what `--json` says; `shown` is what a person reads."""

    APPLIED = NC_("apply report", "applied")
    ALREADY = NC_("apply report", "already applied")
    NOT_IN_RELEASE = NC_("apply report", "not in this release")
    FAILED = NC_("apply report", "failed")

    @property
    def shown(self) -> str:
        return pgettext("apply report", self.value)


class NotInRelease(Exception):
    """The release has no such construct at all (e.g. no YOLOEModel before 8.3.100)."""


class EditError(Exception):
    """An edit that cannot be made; the message says what is wrong and what to do."""


class Refused(EditError):
    """The edit would overwrite a file of the user's."""


class AnchorMissing(EditError):
    """The construct an edit needs is not there: says which file, which function, and what it looked for."""

    def __init__(self, file: str, where: str, construct: str, hint: str = ""):
        self.file, self.where, self.construct, self.hint = file, where, construct, hint
        location = f"{file}, {where}" if where else file
        said = _("{location}: could not find {construct}").format(location=location, construct=construct)
        super().__init__(said + (f". {hint}" if hint else ""))


@dataclass(frozen=True)
class ModuleFile:
    """A module file of the user's (`apply --module`): installed as AddModules/<stem>.py, its classes registered by
    role (`patcher.user_modules`)."""

    stem: str
    text: str
    roles: tuple[tuple[str, str], ...]  # (class, role), in the file's order

    @property
    def path(self) -> str:
        return f"ultralytics/nn/AddModules/{self.stem}.py"

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(name for name, _role in self.roles)

    @property
    def import_line(self) -> str:
        return f"from .{self.stem} import {', '.join(self.classes)}"

    def having(self, *roles: str) -> tuple[str, ...]:
        return tuple(name for name, role in self.roles if role in roles)


@dataclass(frozen=True)
class Context:
    """What an apply asks for: the tree's release and the backbones to install."""

    release: Version
    backbones: tuple[Backbone, ...]
    ours: frozenset[str] = frozenset()  # files ultrapatch created: an older ultrapatch's text there is replaced
    yamls: tuple[tuple[str, str], ...] = ()  # model YAMLs of the user's to install (`apply --yaml`): (path, text)
    modules: tuple[ModuleFile, ...] = ()  # module files of the user's to install (`apply --module`)

    def registered(self, *roles: str) -> tuple[str, ...]:
        """The user's module classes of these roles (every role without any), in order."""
        return tuple(name for f in self.modules for name, role in f.roles if not roles or role in roles)

    @property
    def classes(self) -> tuple[str, ...]:
        """Every backbone class parse_model's backbone branch builds, once each (timm models share one): the chosen
        backbones', then the user's module files' backbones (`--module` with a class that sets `width_list`)."""
        shipped = (name for backbone in self.backbones for name in backbone.classes)
        return tuple(dict.fromkeys([*shipped, *self.registered("backbone")]))

    @property
    def has_backbone(self) -> bool:
        """Whether any backbone is installed: one of ultrapatch's, a timm model, or one of the user's module files."""
        return bool(self.classes)

    @property
    def shipped(self) -> tuple[Backbone, ...]:
        """The module files the chosen backbones need in AddModules/, once each: BackboneMap.py first, then theirs;
        none for no backbone (a module file's backbone needs BackboneMap.py alone)."""
        if not self.has_backbone:
            return ()
        files = {b.module_file: b for b in (BACKBONE_MAP, *self.backbones)}
        return tuple(files.values())


_PARSED: dict[str, cst.Module] = {}  # text -> module, for every plan of this process: libcst's trees are immutable
_PARSED_KEPT = 16


def parsed(rel: str, text: str) -> cst.Module:
    """`text` (the content of `rel`) parsed by libcst, once per process: `status` plans once per backbone and then
    for all of them, and each plan reads the same files. UnreadableFile, with the line, when it is not valid Python."""
    module = _PARSED.get(text)
    if module is None:
        try:
            module = cst.parse_module(text)
        except cst.ParserSyntaxError as exc:
            raise textio.syntax_error(rel, text, exc.message) from None
        if len(_PARSED) >= _PARSED_KEPT:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[text] = module
    return module


class Edited:
    """A file's text as a libcst module an edit returned, generated only when something reads it as text: the
    edits of one file hand its tree on to each other, and the file is generated once, not once per edit. It is
    generated from `text`, the text whose parse `original` the edits started from, and the statements they changed
    (splice.py): generating the whole of tasks.py costs a quarter of its parse."""

    __slots__ = ("module", "original", "text", "_code")

    def __init__(self, module: cst.Module, original: cst.Module | None, text: str):
        self.module, self.original, self.text, self._code = module, original, text, None

    @property
    def code(self) -> str:
        if self._code is None:
            if self.original is None:  # the parse the edits started from is no longer held
                self._code = self.module.code
            else:
                self._code = splice.code(self.module, self.original, self.text)
        return self._code


class Workspace:
    """The tree's files as in-memory text. Edits read and write here; only the planner touches the disk."""

    def __init__(self, root: Path, overlay: dict[str, bytes | None] | None = None):
        self.root = root
        self._overlay = overlay or {}  # contents to read instead of the disk's (None: absent), e.g. a file's original
        self._texts: dict[str, str | Edited | None] = {}
        self._originals: dict[str, str | None] = {}
        self.raw: dict[str, bytes | None] = {}  # each file's bytes as read
        self.encodings: dict[str, str] = {}  # each file's encoding, to write it back in
        self.newlines: dict[str, str] = {}  # each file's line ending ("\r\n" in a Windows checkout), to write it back in
        self._folder_newlines: dict[str, str] = {}  # a new file's line ending, per folder: read from disk once

    def read(self, rel: str) -> str | None:
        """The current text of `rel` (a repository-relative path with forward slashes), or None if it is absent."""
        if rel not in self._texts:
            path = self.root / rel
            data = self._overlay[rel] if rel in self._overlay else path.read_bytes() if path.is_file() else None
            text = None
            if data is not None:
                text, self.encodings[rel] = textio.decode(rel, data)
                self.newlines[rel] = textio.newline_of(data)
                text = text.replace("\r\n", "\n") if self.newlines[rel] == "\r\n" else text  # edits see "\n" only
            self.raw[rel] = data
            self._texts[rel] = self._originals[rel] = text
        current = self._texts[rel]
        return current.code if isinstance(current, Edited) else current

    def encoded(self, rel: str) -> bytes:
        """The current text of `rel` in the file's own encoding and line endings (for a new file: UTF-8, and the line
        endings of the files beside it, so a Windows checkout's new files have CRLF like the others)."""
        text = self.read(rel)
        assert text is not None
        newline = self.newlines.get(rel) or self._folder_newline(rel)
        return textio.encode(text.replace("\n", "\r\n") if newline == "\r\n" else text, self.encodings.get(rel, "utf-8"))

    def _folder_newline(self, rel: str) -> str:
        folder = rel.rpartition("/")[0]
        if folder not in self._folder_newlines:
            self._folder_newlines[folder] = textio.folder_newline(self.root, rel)
        return self._folder_newlines[folder]

    def write(self, rel: str, text: str) -> None:
        """Replace the text of `rel` (an edited libcst tree goes through `edit`)."""
        self.read(rel)  # remember the original first
        self._texts[rel] = text

    def present(self, rel: str) -> bool:
        """Whether `rel` exists (on disk, in the overlay, or written here), without generating an edited text."""
        if rel not in self._texts:
            self.read(rel)
        return self._texts[rel] is not None

    def edit(self, rel: str, module: cst.Module) -> None:
        """Make `module` (an edited tree of `rel`'s current module) the file's content; its text is generated when
        first read."""
        self.present(rel)  # remember the original first
        current = self._texts[rel]
        if isinstance(current, Edited):  # the tree edits started from stays the base of the text
            self._texts[rel] = Edited(module, current.original, current.text)
        else:
            assert current is not None
            self._texts[rel] = Edited(module, _PARSED.get(current), current)  # None: no longer held, generate whole

    def module(self, rel: str) -> cst.Module:
        """The current text of `rel` parsed by libcst; UnreadableFile, with the line, when it is not valid Python."""
        if isinstance(current := self._texts.get(rel), Edited):
            return current.module
        text = self.read(rel)
        assert text is not None
        return parsed(rel, text)

    def snapshot(self) -> dict[str, str | None]:
        return dict(self._texts)

    def changed_since(self, snapshot: dict) -> bool:
        """Whether any file differs from `snapshot` (a file first read after it counts as it was on disk). An edited
        module is a change when it is another tree than before: an edit returns the very module it was given when it
        has nothing to do."""
        for rel, now in self._texts.items():
            then = snapshot.get(rel, self._originals[rel])
            if isinstance(now, Edited) or isinstance(then, Edited):
                if now is not then:
                    return True
            elif now != then:
                return True
        return False

    def changes(self) -> list[tuple[str, str | None, str]]:
        """(path, original text or None for a new file, new text) for every file that differs from the disk."""
        result = []
        for rel in sorted(self._texts):
            text = self.read(rel)
            if text is not None and text != self._originals[rel]:
                result.append((rel, self._originals[rel], text))
        return result


class Edit(ABC):
    """One tutorial edit. Subclasses set `name`, `target` and `description`, and implement `apply`."""

    name: ClassVar[str]
    target: ClassVar[str]
    description: ClassVar[str]

    for_modules: ClassVar[bool] = False  # made for the user's module files too, not only for backbones

    def asked(self, ctx: Context) -> bool:
        """Whether this apply asks for the edit at all: the backbones' edits are not made for a YAML or a module file
        of the user's alone (`apply --yaml`, `apply --module` on a tree without a backbone)."""
        return ctx.has_backbone or (self.for_modules and bool(ctx.modules))

    @abstractmethod
    def apply(self, files: Workspace, ctx: Context) -> None:
        """Make the edit on `files`, or leave them as they are when it is already there."""

    def kept(self, files: Workspace, ctx: Context) -> list[str]:
        """After `apply`: what of the user's the edit found and kept where its own text would go (a probe size of
        theirs, say), one sentence each. "applied" then comes with these, never alone."""
        return []


class SourceEdit(Edit):
    """An edit of one Python file through libcst. `optional` files may be missing from a release."""

    optional: ClassVar[bool] = False

    def apply(self, files: Workspace, ctx: Context) -> None:
        if not files.present(self.target):
            if self.optional:
                raise NotInRelease(_("no {target}").format(target=self.target))
            raise AnchorMissing(self.target, "", "the file", "Is the tree complete?")
        module = files.module(self.target)
        new = self.transform(module, ctx)
        if new is not module:
            files.edit(self.target, new)

    @abstractmethod
    def transform(self, module: cst.Module, ctx: Context) -> cst.Module:
        """Return the edited module, or `module` itself when the edit is already there."""

    def kept(self, files: Workspace, ctx: Context) -> list[str]:
        if type(self).kept_in is SourceEdit.kept_in or not files.present(self.target):
            return []
        return self.kept_in(files.module(self.target), ctx)

    def kept_in(self, module: cst.Module, ctx: Context) -> list[str]:
        """`kept` for the edited module."""
        return []
