"""The dead-letter file: records not delivered, buried to be kicked back later.

The beanstalkd lesson: a record rejected for good, failed after its retries or
(when asked) dropped goes to a file of its own, never to the program's log, and
``logdrain replay`` can send it again. This package is the storage only.

Modules: ``_format`` (the file format and its version marker: the header, one
JSON line per entry, the tolerant reader), ``logdrain._files`` (the operating
system's part, shared with the spool: locks on POSIX and Windows, files opened
0600, whole writes), ``_store``
(:class:`DeadLetter`: bury, rotation into parts under a size cap, the locking
around them, fork safety, and the :class:`Claim` of a part for replay).
"""

from ._format import (
    MARKER,
    MAX_ANSWER,
    MAX_REASON,
    VERSION,
    Buried,
    DeadLetterFormatError,
    Reader,
    read,
)
from ._store import MIN_BYTES, PARTS, Claim, DeadLetter

__all__ = [
    "MARKER",
    "MAX_ANSWER",
    "MAX_REASON",
    "MIN_BYTES",
    "PARTS",
    "VERSION",
    "Buried",
    "Claim",
    "DeadLetter",
    "DeadLetterFormatError",
    "Reader",
    "read",
]
