"""Runs one venue x dataset job: fetch with bounded retries, then hand the batch and its run row to a
sink (storage) in one write. A failure is recorded as a run row too; it never raises to the scheduler,
so one failing venue never stops the others."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from collectors.base import Batch, VenueAdapter
from collectors.errors import classify, error_message

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    """What one job run did; ``storage.writer.RunRecord`` is built from it."""

    run_id: str
    venue: str
    dataset: str
    kind: str
    started_at: datetime
    finished_at: datetime
    status: str  # ok | error
    error_class: str | None
    error_message: str | None
    attempts: int
    batch: Batch
    rows_written: int = 0
    duration_s: float = 0.0


# the sink writes a batch + run row and returns rows inserted (None = buffered, written later)
Sink = Callable[[RunOutcome], Awaitable[int | None]]
SinceLookup = Callable[[str, str], Awaitable[datetime | None]]


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0

    def delay(self, attempt: int, retry_after_s: float | None) -> float:
        if retry_after_s is not None:
            return min(retry_after_s, self.backoff_max_s)
        base = min(self.backoff_base_s * (2 ** (attempt - 1)), self.backoff_max_s)
        return float(base * (0.5 + random.random() / 2))


async def fetch_with_retry(
    call: Callable[[], Awaitable[Batch]], policy: RetryPolicy
) -> tuple[Batch | None, BaseException | None, int]:
    """(batch, last error, attempts). Transient errors retry with backoff; permanent ones stop at once."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call(), None, attempt
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every error is classified and recorded
            kind = classify(exc)
            if not kind.transient or attempt > policy.max_retries:
                return None, exc, attempt
            delay = policy.delay(attempt, kind.retry_after_s)
            log.info("transient %s, retry %d in %.1fs", kind.name, attempt, delay)
            await asyncio.sleep(delay)


async def run_job(
    adapter: VenueAdapter,
    dataset: str,
    sink: Sink,
    policy: RetryPolicy,
    since_lookup: SinceLookup | None = None,
) -> RunOutcome:
    started = datetime.now(UTC)
    clock = time.monotonic()
    since = await since_lookup(adapter.key, dataset) if since_lookup else None
    batch, exc, attempts = await fetch_with_retry(lambda: adapter.fetch(dataset, since), policy)
    outcome = RunOutcome(
        run_id=uuid.uuid4().hex,
        venue=adapter.key,
        dataset=dataset,
        kind="poll",
        started_at=started,
        finished_at=datetime.now(UTC),
        status="ok" if exc is None else "error",
        error_class=None if exc is None else classify(exc).name,
        error_message=None if exc is None else error_message(exc),
        attempts=attempts,
        batch=batch if batch is not None else Batch(),  # a failed run writes no data row at all
    )
    if exc is not None:
        log.warning("%s %s failed: %s: %s", adapter.key, dataset, outcome.error_class, outcome.error_message)
    written = await sink(outcome)
    outcome.rows_written = written or 0
    outcome.duration_s = time.monotonic() - clock
    return outcome
