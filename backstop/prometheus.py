"""Prometheus `/metrics` of the collector (prometheus-client), off unless a port is configured.

Two kinds of series:
- live counters and histograms fed by every run outcome (runs and failures by error class, rows written,
  poll duration, last success / attempt times), kept in process memory;
- a snapshot read from the database after each cycle through the writer's own connection (never on the
  scrape path, so a scrape never waits on the file): per venue × pool the fund balance (native and USD),
  coverage, 24 h change and assessment state from the one assessment (``storage.assessments``), and the
  liquidation streams' state and gap counts.
Names follow Prometheus conventions: base units (seconds, ratios), ``_total`` counters, labels for
dimensions. The server binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as PromCollector

from backstop.config import MetricsConfig

if TYPE_CHECKING:
    import duckdb

    from backstop.service import Collector
    from collectors.runner import RunOutcome

log = logging.getLogger(__name__)

POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
REFRESH_MIN_S = 10.0  # the DB snapshot is re-read at most this often (after cycles)


@dataclass(frozen=True)
class FundPoint:
    venue: str
    pool: str
    asset: str
    balance: float | None
    balance_usd: float | None
    coverage_ratio: float | None
    change_24h_ratio: float | None
    state: str


@dataclass(frozen=True)
class StreamPoint:
    venue: str
    feed: str
    connected: bool  # no open gap
    gaps: int


@dataclass
class Snapshot:
    funds: list[FundPoint] = field(default_factory=list)
    streams: list[StreamPoint] = field(default_factory=list)
    states: tuple[str, ...] = ()


def read_snapshot(con: duckdb.DuckDBPyConnection) -> Snapshot:
    """Fund and stream figures for the exporter, from the one assessment and the liquidation tables."""
    from metrics.assessment import STATES
    from storage.assessments import load_assessments
    from storage.liquidation_reads import stream_states

    funds = []
    for item in load_assessments(con):
        day = next((w for w in item.windows if w.window == "24h"), None)
        funds.append(FundPoint(
            venue=item.venue, pool=item.pool_id, asset=item.asset, balance=item.fund_native,
            balance_usd=item.fund_usd,
            coverage_ratio=None if item.coverage_pct is None else item.coverage_pct / 100.0,
            change_24h_ratio=None if day is None or day.change_pct is None else day.change_pct / 100.0,
            state=item.state,
        ))
    streams = [StreamPoint(venue, feed, connected, gaps) for venue, feed, connected, gaps in stream_states(con)]
    return Snapshot(funds=funds, streams=streams, states=tuple(STATES))


class _SnapshotCollector(PromCollector):
    """Serves the latest snapshot; label sets follow the data (a pool that disappears disappears)."""

    def __init__(self) -> None:
        self.snapshot = Snapshot()
        self.refreshed_at: float | None = None

    def collect(self) -> Iterable[Metric]:
        snap = self.snapshot
        balance = GaugeMetricFamily("backstop_fund_balance", "Fund balance in the fund's native asset",
                                    labels=["venue", "pool", "asset"])
        usd = GaugeMetricFamily("backstop_fund_balance_usd", "Fund balance valued in USD",
                                labels=["venue", "pool", "asset"])
        coverage = GaugeMetricFamily("backstop_fund_coverage_ratio", "Fund ÷ open interest (USD)",
                                     labels=["venue", "pool"])
        change = GaugeMetricFamily("backstop_fund_change_24h_ratio",
                                   "Fund change over 24 h in native units, as a ratio of the start value",
                                   labels=["venue", "pool", "asset"])
        state = GaugeMetricFamily("backstop_assessment_state", "1 for the venue × pool's current state",
                                  labels=["venue", "pool", "state"])
        for point in snap.funds:
            if point.balance is not None:
                balance.add_metric([point.venue, point.pool, point.asset], point.balance)
            if point.balance_usd is not None:
                usd.add_metric([point.venue, point.pool, point.asset], point.balance_usd)
            if point.coverage_ratio is not None:
                coverage.add_metric([point.venue, point.pool], point.coverage_ratio)
            if point.change_24h_ratio is not None:
                change.add_metric([point.venue, point.pool, point.asset], point.change_24h_ratio)
            for name in snap.states:
                state.add_metric([point.venue, point.pool, name], 1.0 if name == point.state else 0.0)
        connected = GaugeMetricFamily("backstop_liquidation_stream_connected",
                                      "1 while the liquidation feed has no open gap", labels=["venue", "feed"])
        gaps = CounterMetricFamily("backstop_liquidation_stream_gaps", "Recorded liquidation feed gaps",
                                   labels=["venue", "feed"])
        for stream in snap.streams:
            connected.add_metric([stream.venue, stream.feed], 1.0 if stream.connected else 0.0)
            gaps.add_metric([stream.venue, stream.feed], float(stream.gaps))
        age = GaugeMetricFamily("backstop_snapshot_age_seconds", "Seconds since the fund snapshot was read")
        if self.refreshed_at is not None:
            age.add_metric([], time.monotonic() - self.refreshed_at)
        return [balance, usd, coverage, change, state, connected, gaps, age]


class _LockWaits(PromCollector):
    """``backstop_writer_lock_waits_total``: read from the store's own counter on each scrape."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def collect(self) -> Iterable[Metric]:
        waits = CounterMetricFamily("backstop_writer_lock_waits", "Times the writer found the database file "
                                    "held by another process (a reader) and kept its batches queued")
        waits.add_metric([], float(self.collector.store.lock_waits))
        return [waits]


class CollectorMetrics:
    """Every series of one collector process, in a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ["venue", "dataset"]
        self.runs = Counter("backstop_runs", "Collection runs by status", [*labels, "status"], registry=self.registry)
        self.failures = Counter("backstop_run_failures", "Failed collection runs by error class",
                                [*labels, "error_class"], registry=self.registry)
        self.rows = Counter("backstop_rows_written", "Rows stored", labels, registry=self.registry)
        self.duration = Histogram("backstop_poll_duration_seconds", "Duration of a poll (fetch and store)",
                                  labels, buckets=POLL_BUCKETS, registry=self.registry)
        self.last_success = Gauge("backstop_last_success_timestamp_seconds", "Unix time of the last ok run",
                                  labels, registry=self.registry)
        self.last_attempt = Gauge("backstop_last_attempt_timestamp_seconds", "Unix time of the last run",
                                  labels, registry=self.registry)
        self.interval = Gauge("backstop_poll_interval_seconds", "Configured poll interval", labels,
                              registry=self.registry)
        self.queue = Gauge("backstop_writer_queue_batches", "Batches waiting for the database file",
                           registry=self.registry)
        self.busy = Gauge("backstop_writer_busy_seconds", "Seconds the database file has been held by another "
                          "process (0 = writable)", registry=self.registry)
        self.unwritable = Gauge("backstop_writer_unwritable_seconds", "Seconds the database file has refused "
                                "writes (read-only, disk full; 0 = fine)", registry=self.registry)
        self.snapshot = _SnapshotCollector()
        self.registry.register(self.snapshot)
        self._refresh_lock = threading.Lock()

    def observe(self, outcomes: Sequence[RunOutcome]) -> None:
        for outcome in outcomes:
            key = (outcome.venue, outcome.dataset)
            self.runs.labels(*key, outcome.status).inc()
            if outcome.status == "error":
                self.failures.labels(*key, outcome.error_class or "unknown").inc()
            self.rows.labels(*key).inc(max(outcome.rows_written, 0))
            self.duration.labels(*key).observe(max(outcome.duration_s, 0.0))
            finished = outcome.finished_at.timestamp()
            self.last_attempt.labels(*key).set(finished)
            if outcome.status == "ok":
                self.last_success.labels(*key).set(finished)

    def refresh(self, read: Any, force: bool = False) -> bool:
        """Re-read the snapshot through ``read`` (the writer's ``Store.read``) unless it is fresh."""
        with self._refresh_lock:
            last = self.snapshot.refreshed_at
            if not force and last is not None and time.monotonic() - last < REFRESH_MIN_S:
                return False
            self.snapshot.snapshot = read(read_snapshot)
            self.snapshot.refreshed_at = time.monotonic()
            return True


def serve(config: MetricsConfig, collector: Collector) -> CollectorMetrics:
    """Start `/metrics` on ``config.host:config.port`` and hook the exporter into ``collector``."""
    import asyncio

    assert config.port is not None
    metrics = CollectorMetrics()
    metrics.queue.set_function(lambda: float(len(collector.store.pending)))
    metrics.busy.set_function(lambda: 0.0 if collector.store.busy_since is None
                              else time.monotonic() - collector.store.busy_since)
    metrics.unwritable.set_function(collector.store.unusable_for)
    metrics.registry.register(_LockWaits(collector))
    for venue, dataset in collector.jobs():
        metrics.interval.labels(venue, dataset).set(getattr(collector.settings.venues[venue].intervals, dataset))

    async def after_cycle(outcomes: list[RunOutcome]) -> None:
        metrics.observe(outcomes)
        try:
            await asyncio.to_thread(metrics.refresh, collector.store.read)
        except Exception:  # noqa: BLE001 - metrics never stop collection
            log.exception("metrics snapshot refresh failed")

    collector.after_cycle.insert(0, after_cycle)
    start_http_server(config.port, addr=config.host, registry=metrics.registry)
    log.info("metrics on http://%s:%d/metrics", config.host, config.port)
    return metrics
