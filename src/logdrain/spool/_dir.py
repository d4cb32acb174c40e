"""The spool directory: the names in it, its size, and taking over the parts
of processes that are gone.

Names: ``part-<pid>-<token>`` stems, each a ``.sqlite3`` database (with
``-wal``, ``-shm``) and a ``.lock`` file; a ``.lock.<hex>.tmp`` is a lock file
being created (its process died if its lock is free); ``*.corrupt`` files are
damaged parts moved aside, outside the spool (and its cap) from then on.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from typing import NamedTuple

from .._files import try_lock
from ..jsonsafe import describe
from ._part import Part, names
from ._schema import CorruptPart, SpoolFormatError, count_records, header_state

NAME = re.compile(
    r"(part-\d+-[0-9a-f]+)(\.sqlite3(?:-wal|-shm|-journal)?|\.lock(?:\.[0-9a-f]+\.tmp)?)"
)


class Found(NamedTuple):
    """What :func:`adopt_one` found: a part now held, or why none."""

    part: Part | None = None
    torn: int | None = 0  # records lost in a damaged part; None when uncountable
    torn_file: bool = False
    refused: str | None = None  # a part of another version: the reason, to print once
    error: str | None = None  # a failure to note in ``last_error``, to try again later
    message: str | None = None  # a line for stderr


def stems(directory: str) -> dict[str, set[str]]:
    """The parts in ``directory``: each stem and the suffixes present; {} when unreadable."""
    found: dict[str, set[str]] = {}
    try:
        listing = os.listdir(directory)
    except OSError:
        return found
    for name in listing:
        if match := NAME.fullmatch(name):
            found.setdefault(match[1], set()).add(match[2])
    return found


def dir_bytes(directory: str, own: str | None = None) -> int:
    """The bytes of every part's files in ``directory``; for the part ``own``,
    its database only (its WAL and shared memory are the caller's reserve)."""
    total = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        match = NAME.fullmatch(entry.name)
        if match is None or (match[1] == own and match[2] != ".sqlite3"):
            continue
        with contextlib.suppress(OSError):
            total += entry.stat().st_size
    return total


def drop_temp(temp: str) -> None:
    """Remove the temporary lock file of a process that died creating its part."""
    try:
        fd = os.open(temp, os.O_RDWR)
    except OSError:
        return
    try:
        if try_lock(fd):
            os.remove(temp)
    except OSError:
        pass
    finally:
        os.close(fd)


def adopt_one(directory: str, stem: str, fsync: str, wal_bytes: int) -> Found:
    """Take over the part ``stem`` if its owner is gone. Never raises."""
    lock_fd = Part.lock_dead(directory, stem)
    if lock_fd is None:
        return Found()  # its owner lives (or an adopter removed it meanwhile)
    path, lock_path = names(directory, stem)
    try:
        state = header_state(path) if os.path.exists(path) else "gone"
        if state in ("gone", "empty"):  # its writer died before writing, or it was removed
            for name in (path, path + "-wal", path + "-shm", lock_path):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(name)
            os.close(lock_fd)
            return Found()
        if state == "garbage":
            raise CorruptPart(f"{path}: not an SQLite database (wrong header)")
        part = Part.adopt(directory, stem, lock_fd, fsync, wal_bytes)
    except SpoolFormatError as exc:
        os.close(lock_fd)
        return Found(refused=f"spool: {exc}; left alone")
    except (CorruptPart, sqlite3.DatabaseError) as exc:
        lost = quarantine(path, lock_path, lock_fd)
        how = "records uncountable" if lost is None else f"{lost} record(s) lost"
        return Found(
            torn=lost,
            torn_file=True,
            error=f"spool: {exc}",
            message=f"spool: {path} is damaged ({exc}): moved aside as .corrupt, {how}",
        )
    except (OSError, sqlite3.Error) as exc:
        os.close(lock_fd)
        return Found(error=f"spool {path}: not adopted: {describe(exc)}")
    if part is not None and part.rows == 0:
        part.close(remove=True)
        part = None
    return Found(part=part)


def quarantine(path: str, lock_path: str, lock_fd: int) -> int | None:
    """Move a damaged part aside as ``*.corrupt``; the records it showed, if any."""
    lost = count_records(path)
    with contextlib.suppress(OSError):
        os.replace(path, path + ".corrupt")
    for name in (path + "-wal", path + "-shm", lock_path):
        with contextlib.suppress(OSError):
            os.remove(name)
    os.close(lock_fd)
    return lost
