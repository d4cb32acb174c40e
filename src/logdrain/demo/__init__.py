"""``python -m logdrain demo``: watch logdrain ride out a collector outage.

What it does, in order:

1. starts the embedded collector (:class:`logdrain.testing.Collector`) on
   127.0.0.1 at an ephemeral port;
2. creates ONE :class:`logdrain.Drain` with a deliberately small queue and
   fast retries, and feeds it from both front ends: stdlib ``logging``
   (configured through ``logging.config.dictConfig`` with a
   :class:`logdrain.DrainHandler`) and, when it is installed, ``structlog``
   (through :class:`logdrain.DrainProcessor`; nothing is printed locally);
3. runs a small workload (gradient descent on synthetic data, with numpy when
   it is importable, pure Python otherwise) that makes exactly one log call
   per step, spread evenly over a few seconds;
4. takes the collector down in the middle of the run and brings it back, so
   batches are retried and, once the queue is full, the oldest records are
   evicted (``overflow='drop_oldest'``);
5. flushes and closes the drain and checks the accounting: every log call
   reached the drain; ``submitted == delivered + pending + dropped + rejected
   + failed``; the collector stored exactly the records the drain counts as
   delivered (a batch it stored but could not acknowledge before the outage
   cut the connection comes back as a retry under the same batch id: such
   repeats are reported and set apart, as a collector deduplicating on the
   batch id header would); and nothing was rejected, failed or abandoned at
   close (the outage is meant to cost only queue-full drops).

Every wait is bounded, so the demo cannot hang. It configures process-global
state (``dictConfig`` on the ``demo`` logger, ``structlog.configure``); it
detaches and resets both when it ends.
"""

from ._report import DemoResult
from ._run import DEFAULT_OUTAGE, DEFAULT_RECORDS, MAX_OUTAGE, run_demo

__all__ = ["DEFAULT_OUTAGE", "DEFAULT_RECORDS", "MAX_OUTAGE", "DemoResult", "run_demo"]
