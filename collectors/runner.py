"""Runs one venue x dataset job: fetch with bounded retries, then hand the batch and its run row to a
sink (storage) in one write. A failure is recorded as a run row too; it never raises to the scheduler,
so one failing venue never stops the others."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from collectors.base import Batch, VenueAdapter
from collectors.errors import classify, error_message
from collectors.retry import RetryPolicy, fetch_with_retry

log = logging.getLogger(__name__)

__all__ = ["RetryPolicy", "RunOutcome", "Sink", "fetch_with_retry", "run_job"]


@dataclass
class RunOutcome:
    """What one job run did; ``storage.batch_writes.RunRecord`` is built from it."""

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
