"""The spool's file format and its version marker; opening a part's database.

Format: one SQLite database per part, in WAL mode, ``auto_vacuum`` incremental
(acknowledged rows give their pages back, so a file's size is what it holds).
The marker is a row of the ``meta`` table, ``('logdrain_spool', 1)``, doubled
by ``PRAGMA user_version = 1`` and ``PRAGMA application_id`` (``ldsp``); a
reader refuses a version it does not know and never writes to it. A row of
``records`` is one part of a batch as the sender would have posted it:
``created`` (the record's epoch seconds, for expiry later), ``key`` (the
framing beside it, a Loki label set, an ES action line; NULL when none),
``part`` (the encoded bytes), ``count`` (records in it) and ``nbytes``
(``len(key) + len(part)``). Nothing else is stored: no settings, no tokens.

Files are created empty with mode 0600 before SQLite opens them, so that its
``-wal`` and ``-shm`` files (which take the database's mode) are 0600 too.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import NamedTuple

from .._files import open_private
from ..errors import LogdrainError

VERSION = 1
MARKER = "logdrain_spool"
APPLICATION_ID = 0x6C647370  # "ldsp"
FSYNC = {"off": "OFF", "normal": "NORMAL", "full": "FULL"}
_SQLITE_HEADER = b"SQLite format 3\x00"

_SCHEMA = f"""
BEGIN IMMEDIATE;
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta VALUES ('{MARKER}', {VERSION});
CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    key BLOB,
    part BLOB NOT NULL,
    count INTEGER NOT NULL,
    nbytes INTEGER NOT NULL
);
PRAGMA user_version = {VERSION};
PRAGMA application_id = {APPLICATION_ID};
COMMIT;
"""  # noqa: S608 - constants only


class SpoolFormatError(LogdrainError, ValueError):
    """A part of another version (or not a spool part at all): left alone."""


class CorruptPart(Exception):
    """A part that cannot be read: not a database, a wrong header, truncated."""


class Spooled(NamedTuple):
    """One piece of a batch, as stored: ``count`` records in ``part``. (A
    NamedTuple, as one is made per row read; its ``count`` field hides
    ``tuple.count``.)"""

    created: float  # the (oldest) record's epoch seconds
    key: bytes | None  # framing beside the part (Loki labels, an ES action line)
    part: bytes  # the encoded record bytes
    count: int = 1  # type: ignore[assignment]


def nbytes(item: Spooled) -> int:
    """The bytes a row holds: its part and its key."""
    return len(item.part) + (0 if item.key is None else len(item.key))


def valid(item: object) -> bool:
    """Whether ``item`` is a :class:`Spooled` whose fields have the types stored."""
    return (
        isinstance(item, Spooled)
        and type(item.part) is bytes
        and (item.key is None or type(item.key) is bytes)
        and type(item.count) is int
        and item.count >= 1
        and isinstance(item.created, (int, float))
    )


def connect(path: str) -> sqlite3.Connection:
    """A connection to the existing file ``path`` (never created by SQLite),
    autocommit (transactions are explicit), nothing written yet."""
    uri = Path(path).as_uri() + "?mode=rw"
    return sqlite3.connect(  # a busy part is not waited for long: the lock says it is ours
        uri, uri=True, timeout=1.0, isolation_level=None, check_same_thread=False
    )


def configure(conn: sqlite3.Connection, fsync: str, wal_bytes: int) -> None:
    """WAL mode, the ``fsync`` policy and the WAL's size, on a part that is ours."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"journal_mode is {mode}, not wal")
    conn.execute(f"PRAGMA synchronous = {FSYNC[fsync]}")
    conn.execute(f"PRAGMA journal_size_limit = {wal_bytes}")
    conn.execute(f"PRAGMA wal_autocheckpoint = {max(wal_bytes // 4096, 16)}")


def create(path: str, fsync: str, wal_bytes: int) -> sqlite3.Connection:
    """A new part at ``path`` (which must not exist), its schema written."""
    os.close(open_private(path, os.O_RDWR | os.O_CREAT | os.O_EXCL))
    conn = connect(path)
    try:
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before the first table
        configure(conn, fsync, wal_bytes)
        conn.executescript(_SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn


def check(conn: sqlite3.Connection, path: str) -> bool:
    """Whether the part holds a schema (False: its writer died before writing
    one). Raises :class:`SpoolFormatError` for another version or format,
    :class:`CorruptPart` when SQLite finds the file damaged."""
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if not tables:
            return False
        version = None
        if "meta" in tables:
            row = conn.execute("SELECT value FROM meta WHERE name = ?", (MARKER,)).fetchone()
            version = None if row is None else row[0]
        if version is None:
            raise SpoolFormatError(f"{path} is not a logdrain spool part (no {MARKER} marker)")
        if type(version) is not int or version != VERSION:
            raise SpoolFormatError(
                f"{path} is a spool part of version {version!r}; this logdrain reads version "
                f"{VERSION} only: use the logdrain that wrote it"
            )
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise CorruptPart(f"{path}: {exc}") from exc
    if result != "ok":
        raise CorruptPart(f"{path}: {result}")
    return True


def header_state(path: str) -> str:
    """``"empty"`` (0 bytes), ``"sqlite"`` or ``"garbage"``, from the first bytes."""
    with open(path, "rb") as file:
        start = file.read(len(_SQLITE_HEADER))
    if not start:
        return "empty"
    return "sqlite" if start == _SQLITE_HEADER else "garbage"


def count_records(path: str) -> int | None:
    """The records a damaged part still shows, read-only; None when uncountable."""
    try:
        conn = sqlite3.connect(Path(path).as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute("SELECT coalesce(sum(count), 0) FROM records").fetchone()
        return int(row[0])
    except sqlite3.Error:
        return None
    finally:
        conn.close()
