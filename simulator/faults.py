"""Fault injection per venue and path: 429 with Retry-After, 5xx, latency, timeouts, malformed JSON,
a field renamed or turned into a string, random errors, a venue gone dark for a while.

Spec text (CLI ``--fault`` and the control endpoint) is ``VENUE:PATH:KIND[:ARG][xCOUNT]``, e.g.
``binance:/fapi/v1/openInterest:429:2`` (Retry-After 2 s), ``okx:*:latency:300``,
``bybit:/v5/market/insurance:rename:balance=bal``, ``bitmex:*:dark:60``, ``okx:*:error_rate:0.2``,
``binance:*:malformed x3`` (only the next 3 matching requests).
"""

from __future__ import annotations

import fnmatch
import random
import threading
import time
from dataclasses import dataclass, field

KINDS = ("429", "410", "500", "502", "503", "latency", "timeout", "malformed", "rename", "stringify",
         "drop", "error_rate", "dark", "disconnect", "duplicate")


class FaultSpecError(ValueError):
    pass


@dataclass
class FaultRule:
    venue: str  # venue key or *
    path: str  # glob on the venue-relative path, e.g. /fapi/v1/* or *
    kind: str
    arg: str = ""
    count: int | None = None  # None = forever
    until_monotonic: float | None = None  # for ``dark``
    hits: int = 0

    def matches(self, venue: str, path: str) -> bool:
        if self.count is not None and self.hits >= self.count:
            return False
        if self.until_monotonic is not None and time.monotonic() > self.until_monotonic:
            return False
        return fnmatch.fnmatch(venue, self.venue) and fnmatch.fnmatch(path, self.path)


def parse_fault(spec: str) -> FaultRule:
    text = spec.strip()
    count = None
    if " x" in text:
        text, _, count_text = text.rpartition(" x")
        try:
            count = int(count_text)
        except ValueError:
            raise FaultSpecError(f"bad fault count in {spec!r}") from None
    parts = text.split(":", 3)
    if len(parts) < 3:
        raise FaultSpecError(f"fault {spec!r}: expected VENUE:PATH:KIND[:ARG]")
    venue, path, kind = parts[0], parts[1], parts[2]
    arg = parts[3] if len(parts) > 3 else ""
    if kind not in KINDS:
        raise FaultSpecError(f"fault {spec!r}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    rule = FaultRule(venue or "*", path or "*", kind, arg, count)
    if kind == "dark":
        rule.until_monotonic = time.monotonic() + float(arg or 60)
    return rule


@dataclass
class FaultBook:
    rules: list[FaultRule] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, rule: FaultRule | str) -> FaultRule:
        parsed = parse_fault(rule) if isinstance(rule, str) else rule
        if parsed.kind == "dark" and parsed.until_monotonic is None:
            parsed.until_monotonic = time.monotonic() + float(parsed.arg or 60)
        with self._lock:
            self.rules.append(parsed)
        return parsed

    def clear(self, venue: str | None = None) -> None:
        with self._lock:
            self.rules = [r for r in self.rules if venue is not None and r.venue != venue]

    def take(self, venue: str, path: str) -> list[FaultRule]:
        """Rules that apply to this request (their hit counters advance)."""
        hit = []
        with self._lock:
            for rule in self.rules:
                if not rule.matches(venue, path):
                    continue
                if rule.kind == "error_rate" and self.rng.random() >= float(rule.arg or 0.5):
                    continue
                rule.hits += 1
                hit.append(rule)
        return hit

    def describe(self) -> list[dict[str, object]]:
        return [
            {"venue": r.venue, "path": r.path, "kind": r.kind, "arg": r.arg, "count": r.count, "hits": r.hits}
            for r in self.rules
        ]
