"""A real, local HTTP log collector for tests, demos and benchmarks.

:class:`Collector` runs a small threaded HTTP/1.1 server bound to ``127.0.0.1``
that accepts batches of log records the way a real log collector would, and
records everything it receives so that callers can make assertions about it.
It can also be scripted to misbehave: answer with error statuses (optionally
with headers such as ``Retry-After``), hang without answering, answer slowly,
stop listening altogether and come back later on the same port, or play one of
the faults below on the socket.

Only the standard library is used.  Example::

    with Collector() as collector:
        ship_some_logs(collector.url)
        assert collector.wait_for_count(10)
        print(collector.records)

Faults
------
``collector.fault(kind, times=1, **params)`` queues ``times`` faults in the
same FIFO as :meth:`Collector.script`: each ingest request (a POST to the
collector's path, after ``hang``/``delay`` are applied) takes the next entry,
scripted answer or fault.  Every fault parameter is optional unless marked
*required*; ``status`` and ``headers`` (extra response headers) apply to every
kind but ``silent``, and ``body`` (where taken) defaults to the collector's
usual JSON answer (``{"accepted": n}`` or ``{"error": status}``).

==================  ==========================================================
``trickle_status``  After reading the request, send the status line and
                    headers one byte every ``interval`` s (default 1.0), then
                    the body at once.  Params: ``status``, ``body``.
``trickle_body``    Status and headers at once, then the body one byte every
                    ``interval`` s (default 1.0), with Content-Length, or as
                    1-byte chunks with ``chunked=True``.
``huge_body``       ``status`` with a body of ``size`` (*required*) bytes of
                    ``x`` and its Content-Length, written 64 KiB at a time.
``endless_body``    ``status`` with a chunked body that never ends (64 KiB
                    chunks, ``interval`` s apart, default 0).
``cut_chunked``     ``status`` (default 503) with a chunked body: one full
                    chunk (``body``), then a chunk announced as 1024 bytes of
                    which 10 are sent, and the connection is closed (FIN).
``reset``           Read the request, send the first ``after`` bytes (default
                    0) of a normal answer of ``status``, then reset the
                    connection (SO_LINGER 0: the client gets a RST).
``silent``          Never answer.  On a fresh connection the request is not
                    even read (the fault is taken when its first bytes
                    arrive); on a kept-alive one it is read, then ignored.
``partial``         Store the first ``keep`` (*required*) records of the
                    batch, then answer ``status`` (default 503).
``gzip_bomb``       ``status`` with ``Content-Encoding: gzip`` and a
                    Content-Length body that inflates to ``size`` (*required*)
                    bytes of zeros (1 GB: about 1 MB on the wire, compressed
                    once per size at ``fault()`` time, never inflated).
==================  ==========================================================

Accounting: each faulted request is appended to :attr:`Collector.requests`
before the fault starts, with the status it answers (0 for ``silent`` and for
``reset`` with ``after=0``).  Its records are stored (and its batch id noted)
when that status is 2xx, as a real collector ingests before it answers;
``partial`` stores its first ``keep`` records whatever the status, without a
batch id; the others store nothing.  After ``endless_body``, ``cut_chunked``,
``reset`` and ``silent`` the connection is closed; after the others (complete
answers) it is kept alive.

Every fault ends within about 50 ms of :meth:`Collector.stop` or
:meth:`Collector.down` (waits are sliced, blocked writes are cut by shutting
the socket) or of the client going away (on Linux, a peer close is seen while
waiting; elsewhere at the next write), quietly: no traceback on stderr.
:attr:`Collector.open_connections` counts the connections open right now and
:attr:`Collector.connections` those accepted so far, so tests can see a client
give up or reuse a connection.
"""

from __future__ import annotations

from ._collector import Collector
from ._http import BATCH_ID_HEADER, RequestInfo

__all__ = ["BATCH_ID_HEADER", "Collector", "RequestInfo"]
