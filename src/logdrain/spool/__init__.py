"""The disk spool: records the collector has not acknowledged, kept on disk
so that a process killed during an outage loses at most its last second.

This package is the storage; ``logdrain.spooling`` wires it into the Drain
(``spool_dir=``: the sender threads, the close deadline). See docs/durability.md.

Modules: ``_schema`` (the format and its version marker: one SQLite database
per part in WAL mode, the ``meta`` and ``records`` tables, opening and checking
a part), ``_part`` (one part: its database, its lock file, the rows taken and
not acknowledged), ``_dir`` (the names in the directory, its size, taking over
the parts of dead processes, moving damaged ones aside), ``_cap`` (the running
estimate the directory's cap is checked against), ``_read`` (the merge of the
parts for delivery, :class:`RowId`), ``_store`` (:class:`Spool`: put, take,
ack, release, adopt, counters, degrading to memory, fork safety). Locks and 0600 files are
``logdrain._files``'s, shared with the dead-letter file.
"""

from ._cap import STAT_EVERY
from ._read import RowId
from ._schema import APPLICATION_ID, FSYNC, MARKER, VERSION, Spooled, SpoolFormatError
from ._store import MIN_BYTES, Spool

__all__ = [
    "APPLICATION_ID",
    "FSYNC",
    "MARKER",
    "MIN_BYTES",
    "STAT_EVERY",
    "VERSION",
    "RowId",
    "Spool",
    "SpoolFormatError",
    "Spooled",
]
