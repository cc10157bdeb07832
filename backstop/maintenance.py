"""Storage upkeep wired from config: ``backstop compact`` and the collector's hourly size sample and
optional scheduled compaction (``[retention] compact_every_h``). The SQL lives in ``storage.retention``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from backstop.config import Settings
from metrics.formatting import fmt_bytes
from storage.retention import RETENTION_TABLES, CompactReport, RetentionRule, compact, record_size

log = logging.getLogger(__name__)

SIZE_SAMPLE_EVERY_S = 3600.0


def retention_rules(settings: Settings) -> dict[str, RetentionRule]:
    """The [retention] section as storage rules, one per dataset storage knows how to trim."""
    return {name: RetentionRule(getattr(settings.retention, name).keep_days, getattr(settings.retention, name).action)
            for name in RETENTION_TABLES}


def describe(report: CompactReport) -> list[str]:
    """Human lines for a compaction: rows let go per dataset, then bytes before/after."""
    lines = [f"{name}: {count} raw rows removed" for name, count in report.deleted.items()]
    saved = report.bytes_before - report.bytes_after
    lines.append(f"size: {report.bytes_before} bytes before, {report.bytes_after} bytes after "
                 f"({fmt_bytes(report.bytes_before)} -> {fmt_bytes(report.bytes_after)}, "
                 f"{fmt_bytes(saved)} reclaimed, {report.seconds:.1f} s)")
    return lines


def run_compact(settings: Settings, echo: Callable[[str], None]) -> int:
    """``backstop compact``: apply retention and rewrite the file; the collector may keep running (it
    buffers its writes while the file is being rewritten)."""
    from storage.db import check_writable

    if not settings.db.exists():
        from storage.db import DatabaseMissing

        raise DatabaseMissing(f"no database at {settings.db} (nothing to compact)")
    check_writable(settings.db)
    for line in describe(compact(settings.db, retention_rules(settings))):
        echo(line)
    return 0


async def storage_upkeep_forever(collector: Any, sample_every_s: float = SIZE_SAMPLE_EVERY_S) -> None:
    """In the collector: a size sample every hour (the growth rate on Collector health) and, when
    ``compact_every_h`` > 0, a compaction on that schedule. A failure is logged and retried next time;
    it never stops collection."""
    settings: Settings = collector.settings
    every_h = settings.retention.compact_every_h
    next_compact = time.monotonic() + every_h * 3600 if every_h > 0 else None
    while True:
        try:
            if next_compact is not None and time.monotonic() >= next_compact:
                report = await asyncio.to_thread(compact, settings.db, retention_rules(settings),
                                                 None, collector.store.execute_write)
                log.info("scheduled compaction: %s", "; ".join(describe(report)))
                next_compact = time.monotonic() + every_h * 3600
            else:
                await asyncio.to_thread(collector.store.execute_write,
                                        lambda con: record_size(con, settings.db))
        except Exception:  # noqa: BLE001 - upkeep never stops collection
            log.exception("storage upkeep failed; retrying in %.0f s", sample_every_s)
        wait = sample_every_s if next_compact is None else min(sample_every_s,
                                                               max(1.0, next_compact - time.monotonic()))
        await asyncio.sleep(wait)
