"""One step's result, and the report: text (colored only on a terminal and
never with ``NO_COLOR``) or JSON, with every form of every secret redacted."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, TextIO

from ...__about__ import __version__
from ...report import Reporter

Status = Literal["PASS", "WARN", "FAIL", "SKIP"]
STATUSES: tuple[Status, ...] = ("PASS", "WARN", "FAIL", "SKIP")
_COLORS = {"PASS": "32", "WARN": "33", "FAIL": "31", "SKIP": "2"}


@dataclass
class Check:
    """One step: its status, one line of evidence, and on WARN/FAIL the fix
    in the user's own settings; ``details`` (lines) for the settings table
    and the certificate chain."""

    step: str
    status: Status
    evidence: str
    fix: str = ""
    details: list[str] = field(default_factory=list)


def skipped(step: str, why: str) -> Check:
    return Check(step, "SKIP", why)


class Report:
    """The checks so far, and the secrets none of them may show."""

    def __init__(self) -> None:
        self.checks: list[Check] = []
        self._redactor = Reporter("doctor", 0.0)

    def add_secret(self, value: str) -> None:
        self._redactor.add_secret(value)

    def redact(self, text: str) -> str:
        return self._redactor.redact(text)

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    def counts(self) -> dict[str, int]:
        found = Counter(c.status for c in self.checks)
        return {status: found.get(status, 0) for status in STATUSES}

    @property
    def failed(self) -> bool:
        return any(c.status == "FAIL" for c in self.checks)

    def summary(self) -> str:
        counts = self.counts()
        text = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s] or s != "SKIP")
        verdict = "some steps FAILED" if self.failed else "the path to the collector works"
        return f"summary: {text}: {verdict}"

    # -- output --

    def as_json(self) -> str:
        doc = {
            "logdrain": __version__,
            "steps": [
                {
                    "step": c.step,
                    "status": c.status,
                    "evidence": c.evidence,
                    "fix": c.fix or None,
                    "details": c.details,
                }
                for c in self.checks
            ],
            "counts": self.counts(),
            "exit": 1 if self.failed else 0,
        }
        return self.redact(json.dumps(doc, ensure_ascii=False, default=str))

    def write_check(self, check: Check, out: TextIO, color: bool) -> None:
        label = f"\x1b[{_COLORS[check.status]}m{check.status}\x1b[0m" if color else check.status
        lines = [f"{label} {check.step:<9} {check.evidence}"]
        lines += [f"     {'':<9}   {line}" for line in check.details]
        if check.fix and check.status in ("WARN", "FAIL"):
            lines.append(f"     {'':<9}   fix: {check.fix}")
        out.write(self.redact("\n".join(lines)) + "\n")
        out.flush()


def use_color(stream: TextIO) -> bool:
    """Color only on a terminal, and never with ``NO_COLOR`` set (to anything)."""
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
