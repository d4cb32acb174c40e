"""``logdrain replay FILE``: send the records of a dead-letter file again.

Kick after bury: each part of the file is claimed in turn (oldest first; see
:class:`logdrain.deadletter.Claim`), its entries that pass the filters are
sent again as they were sent the first time (``Drain.resend``: no mapping,
the drain's framing, retries and ledger), and the claim is settled only once
each of them is accounted for:

* delivered: gone from the file;
* rejected or failed again: buried again by the drain itself, with the new
  reason, status and answer (the drain's ``dead_letter`` is this file);
* not chosen (``--limit``, ``--older-than``, ``--newer-than``, ``--max-age``,
  another preset): buried again unchanged.

Records are submitted in rounds of at most half the queue and each round is
flushed before the next, so the queue never overflows (``overflow="block"``
besides). A round whose records are not all accounted for (a close deadline,
a dead-letter write that failed) is buried again whole: a record may then be
sent twice, never lost. A crash mid-replay leaves the claim, which the next
``claim()`` puts back: at-least-once, as the collector was promised.

The entries' time is their first attempt (the file keeps no other time apart
from the record itself): ``--older-than 1h`` means first tried over an hour ago.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..config.parse import as_duration
from ..deadletter import Buried, DeadLetter
from ..drain import Drain
from ..errors import ConfigError
from ._options import add_settings_arguments, explicit_settings, positive_int

#: A round: at most this many records between two flushes (and half the queue).
ROUND = 2000
#: How long one round may take to be accounted for before it is buried again.
ROUND_TIMEOUT = 600.0


@dataclasses.dataclass
class Result:
    """What a replay did, in records."""

    claimed: int = 0  # entries read from the file
    sent: int = 0  # chosen and submitted
    delivered: int = 0
    buried_again: int = 0  # rejected or failed again (the drain buried them)
    kept: int = 0  # not chosen: buried again unchanged
    unsettled: int = 0  # of ``sent``: not accounted for in time, buried again whole
    skipped_lines: int = 0  # lines of the file that were not entries (torn)
    too_old: int = 0  # sent, though older than the preset's collector takes

    @property
    def ok(self) -> bool:
        return self.sent == self.delivered and not self.unsettled


@dataclasses.dataclass(frozen=True)
class Filters:
    """Which entries are sent; every other one stays buried."""

    limit: int | None = None
    older_than: float | None = None  # seconds: first tried at least this long ago
    newer_than: float | None = None  # seconds: first tried at most this long ago
    max_age: float | None = None  # seconds: same as newer_than, named as the drain's setting
    preset: str = ""  # only entries sent with this preset

    def chosen(self, entry: Buried, now: float, taken: int) -> bool:
        if self.limit is not None and taken >= self.limit:
            return False
        if self.preset and entry.preset != self.preset:
            return False
        age = now - entry.first_attempt
        if self.older_than is not None and age < self.older_than:
            return False
        newest = min(x for x in (self.newer_than, self.max_age, float("inf")) if x is not None)
        return age <= newest


def replay(
    path: str,
    options: Mapping[str, Any],
    filters: Filters = Filters(),
    *,
    progress: Callable[[Result], None] | None = None,
) -> Result:
    """Send the entries of the dead-letter file ``path`` again through a
    Drain built from ``options`` (its settings, as for ``Drain(**options)``;
    the preset defaults to the entries' own). Raises ConfigError for wrong
    settings, OSError / DeadLetterFormatError for a file it cannot read."""
    options = dict(options)
    dead = DeadLetter(path, options.get("dead_letter_max_bytes", 64 * 2**20))
    result = Result()
    try:
        dead.reclaim()  # a replay that crashed left its claim: its records come first
        parts = len(dead.paths())
        drain: Drain | None = None
        for _ in range(parts):
            if filters.limit is not None and result.sent >= filters.limit:
                break
            claim = dead.claim()
            if claim is None:
                break
            result.claimed += len(claim.entries)
            result.skipped_lines += claim.skipped
            if drain is None and claim.entries:
                drain = _drain(path, options, claim.entries[0].preset)
                filters = dataclasses.replace(filters, preset=drain.settings.preset.name)
            if drain is None:
                claim.done()
                continue
            keep = _send(drain, claim.entries, filters, result, progress)
            if keep:
                written = dead.bury(keep)
                if written < len(keep):  # the file refused them: the claim stays whole
                    claim.release()
                    raise OSError(f"{path}: could not bury {len(keep) - written} record(s) again")
            claim.done()
        if drain is not None:
            drain.close()
    finally:
        dead.close()
    return result


def _drain(path: str, options: dict[str, Any], preset: str) -> Drain:
    """The replaying drain: the user's settings, the entries' preset unless
    one is given, nothing dropped, and this file as its dead letter."""
    options.setdefault("preset", preset)
    options.update(
        dead_letter=path,
        overflow="block",
        block_timeout=ROUND_TIMEOUT,
        max_age=0,  # the filters chose already; the drain sends what it is given
        capture_crashes=False,
    )
    return Drain(**options)


def _send(
    drain: Drain,
    entries: list[Buried],
    filters: Filters,
    result: Result,
    progress: Callable[[Result], None] | None,
) -> list[Buried]:
    """Send the chosen entries in rounds; the entries to bury again unchanged."""
    now = time.time()
    keep: list[Buried] = []
    chosen: list[Buried] = []
    for entry in entries:
        if filters.chosen(entry, now, result.sent + len(chosen)):
            chosen.append(entry)
        else:
            keep.append(entry)
    result.kept += len(keep)
    limit = _preset_max_age(drain)
    if limit:
        result.too_old += sum(now - e.first_attempt > limit for e in chosen)
    size = max(1, min(ROUND, drain.settings.queue_size // 2))
    for start in range(0, len(chosen), size):
        batch = chosen[start : start + size]
        before = drain.stats()
        for entry in batch:
            drain.resend(_part(entry), entry.first_attempt)
        settled = drain.flush(ROUND_TIMEOUT)
        after = drain.stats()
        delivered = after.delivered - before.delivered
        buried = after.dead_lettered - before.dead_lettered
        result.sent += len(batch)
        result.delivered += delivered
        result.buried_again += buried
        if not settled or delivered + buried != len(batch):
            result.unsettled += len(batch)
            keep.extend(batch)  # never lost: sent again next time, perhaps twice
        if progress is not None:
            progress(result)
    return keep


def _part(entry: Buried) -> bytes | tuple[bytes, bytes]:
    """The entry's record as it was sent: JSON bytes, with its key when it had one."""
    data = json.dumps(entry.record, ensure_ascii=False, separators=(",", ":")).encode()
    return data if entry.key is None else (entry.key.encode("utf-8"), data)


def _preset_max_age(drain: Drain) -> float:
    value = drain.settings.preset.defaults.get("max_age", 0)
    return float(value) if isinstance(value, (int, float)) else 0.0


# -- the command line ----------------------------------------------------------------

EXAMPLES = """\
examples:
  logdrain replay /var/log/app/dead-letter.jsonl --url https://collector.example/ingest
  LOGDRAIN_TOKEN=... logdrain replay dead.jsonl --preset loki --url https://loki:3100
  logdrain replay dead.jsonl --config myapp.settings:LOGGING --newer-than 6h --limit 1000

The preset defaults to the one the records were sent with. Records rejected
again stay buried with the new reason; only delivered ones leave the file.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``logdrain replay``'s arguments: the file, the filters, and the
    drain's settings (the shared flags, ``LOGDRAIN_*``, ``--config``)."""
    parser.epilog = EXAMPLES
    add_settings_arguments(parser)
    parser.add_argument("file", help="the dead-letter file (the drain's dead_letter=)")
    parser.add_argument("--limit", type=positive_int, help="send at most N records")
    parser.add_argument(
        "--older-than", type=_duration, metavar="AGE", help="only records first tried AGE ago"
    )
    parser.add_argument(
        "--newer-than", type=_duration, metavar="AGE", help="only records first tried within AGE"
    )
    parser.add_argument(
        "--max-age",
        type=_duration,
        metavar="AGE",
        help="leave records older than AGE buried (default: send them regardless)",
    )


def run(args: argparse.Namespace) -> int:
    """Replay ``args.file``; 0 when every chosen record was delivered, 1 when
    some were buried again, 2 for wrong settings or an unreadable file."""
    options = explicit_settings(args)[0]
    filters = Filters(args.limit, args.older_than, args.newer_than, args.max_age)
    show = _progress_line if sys.stderr.isatty() else None
    try:
        result = replay(args.file, options, filters, progress=show)
    except ConfigError as exc:
        print(f"logdrain replay: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"logdrain replay: {args.file}: {exc}", file=sys.stderr)
        return 2
    if show is not None:
        sys.stderr.write("\n")
    print(summary(result))
    if result.too_old and args.max_age is None:
        print(
            f"logdrain replay: warning: {result.too_old} record(s) were older than this "
            "collector accepts; it may have refused them (--max-age leaves such records buried)",
            file=sys.stderr,
        )
    return 0 if result.ok else 1


def summary(result: Result) -> str:
    text = (
        f"replayed {result.sent} of {result.claimed} buried record(s): "
        f"{result.delivered} delivered, {result.buried_again} buried again, "
        f"{result.kept} left buried by the filters"
    )
    if result.unsettled:
        text += f", {result.unsettled} not accounted for in time (kept, may be sent twice)"
    if result.skipped_lines:
        text += f"; {result.skipped_lines} torn line(s) skipped"
    return text


def _progress_line(result: Result) -> None:
    sys.stderr.write(
        f"\rreplay: {result.sent} sent, {result.delivered} delivered, "
        f"{result.buried_again} buried again"
    )
    sys.stderr.flush()


def _duration(text: str) -> float:
    try:
        return as_duration("age", text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(f"{exc.problem}; {exc.fix}") from None
