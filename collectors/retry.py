"""Bounded retry of one request: transient errors (network, 5xx, 429) back off and retry, permanent ones
stop at once. Used around a whole poll (``runner.run_job``) and around each page of a history walk
(``VenueAdapter.page``), never around ``anext()`` of a walk: a generator that raised is finished, so
"retrying" it reads as a normal end and silently drops the rest of the history."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from collectors.errors import classify

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0

    def delay(self, attempt: int, retry_after_s: float | None) -> float:
        if retry_after_s is not None:
            return min(retry_after_s, self.backoff_max_s)
        base = min(self.backoff_base_s * 2.0 ** (attempt - 1), self.backoff_max_s)
        return base * (0.5 + random.random() / 2)


async def fetch_with_retry(
    call: Callable[[], Awaitable[T]], policy: RetryPolicy
) -> tuple[T | None, BaseException | None, int]:
    """(result, last error, attempts). Transient errors retry with backoff; permanent ones stop at once."""
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


async def retry_call(call: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """``call()`` under ``policy``; raises the last error once the policy gives up."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            kind = classify(exc)
            if not kind.transient or attempt > policy.max_retries:
                raise
            delay = policy.delay(attempt, kind.retry_after_s)
            log.info("transient %s, page retry %d in %.1fs", kind.name, attempt, delay)
            await asyncio.sleep(delay)
