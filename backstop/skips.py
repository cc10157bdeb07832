"""Polls the scheduler did not run are recorded, not just logged.

APScheduler skips a tick when the job's previous run is still going ("maximum number of running instances
reached") and drops a tick that is later than its misfire grace time. Each is stored as a ``skipped`` run
row (``collection_runs``: status ``skipped``, ``error_class`` MaxInstances | Missed, the reason as the
message), visible in ``backstop status``, the Collector health page and the ``runs`` export. The
scheduler's own warning for every tick (487 in 15 minutes in issue #14) is replaced by one log line per
job and kind, repeated at most every ``LOG_EVERY_S`` with the count since.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.base import BaseScheduler

from collectors.base import Batch
from storage.batch_writes import RunRecord
from storage.writer import Store

log = logging.getLogger(__name__)

SCHEDULER_LOGGERS = ("apscheduler.scheduler", "apscheduler.executors.default")
LOG_EVERY_S = 600.0
_NOISE = ("maximum number of running instances reached", "was missed by")


class _SchedulerNoise(logging.Filter):
    """Drops APScheduler's per-tick skip/miss warnings: ``SkipRecorder`` records and logs them."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not any(part in text for part in _NOISE)


@dataclass
class SkipRecorder:
    store: Store
    scheduler: BaseScheduler
    skipped: int = 0
    _logged: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)  # -> (when, unlogged)
    _filter: _SchedulerNoise = field(default_factory=_SchedulerNoise)

    def __post_init__(self) -> None:
        self.scheduler.add_listener(self._on_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        for name in SCHEDULER_LOGGERS:
            logging.getLogger(name).addFilter(self._filter)

    def close(self) -> None:
        for name in SCHEDULER_LOGGERS:
            logging.getLogger(name).removeFilter(self._filter)

    def _on_event(self, event: JobEvent) -> None:
        venue, sep, dataset = str(event.job_id).partition(":")
        if not sep:
            return  # not a poll job
        now = datetime.now(UTC)
        if event.code == EVENT_JOB_MAX_INSTANCES:
            kind, reason = "MaxInstances", "the previous poll of this job was still running"
            run_times = list(getattr(event, "scheduled_run_times", None) or [now])
        else:
            kind = "Missed"
            scheduled = getattr(event, "scheduled_run_time", None) or now
            reason = f"started {(now - scheduled).total_seconds():.1f} s late, past the misfire grace time"
            run_times = [scheduled]
        for scheduled_at in run_times:
            self.skipped += 1
            self.store.submit(Batch(), RunRecord(
                run_id=uuid.uuid4().hex, venue=venue, dataset=dataset, kind="poll", started_at=scheduled_at,
                finished_at=now, status="skipped", error_class=kind, error_message=reason, attempts=0))
        key = (str(event.job_id), kind)
        last, unlogged = self._logged.get(key, (float("-inf"), 0))
        unlogged += len(run_times)
        if time.monotonic() - last < LOG_EVERY_S:
            self._logged[key] = (last, unlogged)
            return
        self._logged[key] = (time.monotonic(), 0)
        log.warning("%s %s: %d poll(s) skipped (%s: %s); each is recorded as a skipped run, this is logged "
                    "at most every %.0f s", venue, dataset, unlogged, kind, reason, LOG_EVERY_S)
