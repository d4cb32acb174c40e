"""The operating system's part of the on-disk stores (the dead-letter file, the
spool): locks, modes, whole writes.

Modes: files are created 0600; an existing one readable by others is tightened
(it holds records), never loosened. No fsync here: an entry survives its
process, not a power cut (the spool's ``fsync`` setting is SQLite's).

Locks: ``flock`` on POSIX. On Windows (untested) they are ``msvcrt.locking`` on
a byte past the data, as those locks are mandatory; modes mean little there:
keep the file in a private directory.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys

_O_BINARY = getattr(os, "O_BINARY", 0)

if sys.platform == "win32":
    import msvcrt

    _WIN_LOCK_AT = 1 << 30  # the locks are mandatory: lock a byte no one reads

    def try_lock(fd: int) -> bool:
        os.lseek(fd, _WIN_LOCK_AT, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def unlock(fd: int) -> None:
        os.lseek(fd, _WIN_LOCK_AT, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

    def pread(fd: int, size: int, at: int) -> bytes:
        os.lseek(fd, at, os.SEEK_SET)
        return os.read(fd, size)

else:
    import fcntl

    def try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

    pread = os.pread


def open_private(path: str, flags: int) -> int:
    """``os.open`` with mode 0600; a regular file readable by others is tightened."""
    fd = os.open(path, flags | _O_BINARY, 0o600)
    mode = os.fstat(fd).st_mode
    if sys.platform != "win32" and stat.S_ISREG(mode) and mode & 0o077:
        with contextlib.suppress(PermissionError):  # not ours: leave it be
            os.fchmod(fd, stat.S_IMODE(mode) & 0o700)
    return fd


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:  # one write, unless the disk fills or a signal cuts it
        view = view[os.write(fd, view) :]
