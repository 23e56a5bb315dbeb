"""The lock file one ultrapatch process holds on a tree at a time, on every platform.

- POSIX: `flock` on the file. The OS drops it when the holder dies; the holder unlinks the file while still holding
  it, so a process that waited on it sees the path gone and starts over.
- Windows: `msvcrt.locking` on one byte past the holder's note (so the note stays readable), which the OS drops when
  the holder dies too. Windows cannot unlink an open file: the holder unlocks and closes it first.
- Neither (a Python without both, as the tests make one): the file's creation is the lock (`O_EXCL`), and a file left
  by a holder that died on this machine (its pid no longer runs) is taken over.

`take(path)` gives an open descriptor holding the lock, or None while another process holds it; `release(path, fd)`
lets go and removes the file.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows, or a Python without it
    fcntl = None  # type: ignore[assignment]
try:
    import msvcrt
except ImportError:  # anything but Windows
    msvcrt = None  # type: ignore[assignment]

WINDOWS_BYTE = 1 << 20  # the byte msvcrt locks: past any holder's note


def kind() -> str:
    return "flock" if fcntl is not None else "msvcrt" if msvcrt is not None else "exclusive-create"


def take(lock: Path) -> int | None:
    if fcntl is not None:
        return _take_flock(lock)
    if msvcrt is not None:
        return _take_msvcrt(lock)
    return _take_exclusive(lock)


def release(lock: Path, fd: int) -> None:
    """Let go of the lock and remove its file (a file another process opened meanwhile may stay: it is harmless)."""
    try:
        if msvcrt is not None and fcntl is None:
            try:
                os.lseek(fd, WINDOWS_BYTE, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
            finally:
                os.close(fd)
            lock.unlink(missing_ok=True)
            return
        try:
            lock.unlink(missing_ok=True)  # still holding it: a waiter then sees the path is gone
        finally:
            os.close(fd)
    except OSError:
        pass


def _open(lock: Path, flags: int = 0) -> int | None:
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        return os.open(lock, os.O_RDWR | os.O_CREAT | flags, 0o644)
    except FileNotFoundError:  # the holder removed the folder as we made or opened it
        return None


def _take_flock(lock: Path) -> int | None:
    while True:
        fd = _open(lock)
        if fd is None:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # locked a file its holder had already removed: try the new one


def _take_msvcrt(lock: Path) -> int | None:
    while True:
        try:
            fd = _open(lock)
        except PermissionError:  # the holder is removing it
            continue
        if fd is None:
            continue
        try:
            os.lseek(fd, WINDOWS_BYTE, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            os.close(fd)
            return None
        os.lseek(fd, 0, os.SEEK_SET)
        return fd


def _take_exclusive(lock: Path) -> int | None:
    while True:
        try:
            fd = _open(lock, os.O_EXCL)
        except FileExistsError:
            if not _abandoned(lock):
                return None
            lock.unlink(missing_ok=True)  # its holder died: take it over
            continue
        if fd is not None:
            return fd


def holder(lock: Path) -> dict:
    """What the holder wrote into the lock (its pid, host, command and start); empty while it has not written it yet,
    or where the file cannot be read."""
    try:
        note = json.loads(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}


def _abandoned(lock: Path) -> bool:
    """Whether the lock file's holder, by its note, was a process of this machine that no longer runs."""
    note = holder(lock)
    if not note:  # its holder is writing the note, or died before it could: a minute is plenty to write it
        try:
            return not lock.read_bytes() and time.time() - lock.stat().st_mtime > 60
        except OSError:
            return False
    try:
        pid, host = int(note["pid"]), note["host"]
    except (KeyError, TypeError, ValueError):
        return False
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False
