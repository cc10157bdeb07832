"""Liquidations written to DuckDB: idempotent row writes with a per-minute rollup, feed coverage, gap
rows, and the detected cascades upserted; the reading side is ``storage.liquidation_reads``.

Writes happen only in the collector process, through ``Store.execute_write`` (``BACKEND`` below is what
``collectors.liquidations.integration`` calls). A batch is written in transactions of at most 2,000 rows,
each atomic: new rows (their event keys anti-joined on venue x feed x event key within the batch's time
range), the rollup minutes they touch recomputed from the rows, feed coverage rows, and gap opens/closes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from metrics.cascades import MINUTE, Cascade, CascadeParams, detect_cascades, floor_minute, pct_move
from storage import coverage
from storage.db import scalar
from storage.liquidation_reads import dominant_asset, fund_change, minute_series, newest_ts, price_move

_TS = pa.timestamp("us", tz="UTC")
# column -> Arrow type; the order and names are collectors.liquidations.base.LiquidationRecord's fields
LIQUIDATION_COLUMNS: dict[str, pa.DataType] = {
    "venue": pa.string(), "feed": pa.string(), "source": pa.string(), "event_key": pa.string(), "ts": _TS,
    "symbol": pa.string(), "base_asset": pa.string(), "quote_asset": pa.string(), "side": pa.string(),
    "price": pa.float64(), "price_kind": pa.string(), "qty_base": pa.float64(), "qty_contracts": pa.float64(),
    "contract_size": pa.float64(), "inverse": pa.bool_(), "notional_usd": pa.float64(),
    "notional_source": pa.string(), "coverage": pa.string(), "lower_bound": pa.bool_(), "raw": pa.string(),
    "received_at": _TS,
}
CASCADE_LOOKBACK = timedelta(hours=6)  # longest cascade re-examined after it started
CHUNK_ROWS = 2_000  # rows per write transaction


# -- writing ---------------------------------------------------------------------------------------------

def records_table(records: Sequence[Any], fetched_at: datetime) -> pa.Table:
    """Liquidation records (any objects with the LIQUIDATION_COLUMNS attributes) -> Arrow."""
    arrays = {
        name: pa.array([getattr(record, name) for record in records], type=kind)
        for name, kind in LIQUIDATION_COLUMNS.items()
    }
    arrays["fetched_at"] = pa.array([fetched_at] * len(records), type=_TS)
    return pa.table(arrays)


def _insert_rows(con: duckdb.DuckDBPyConnection, records: Sequence[Any], fetched_at: datetime) -> list[Any]:
    """Insert the records whose (venue, feed, event_key) is not stored yet; returns them.

    Only the keys go through the anti-join (limited to the batch's time range, so zone maps prune the
    scan); the new rows are then a plain append. Cheaper in time and memory than joining full rows."""
    unique: dict[tuple[str, str, str], Any] = {}
    for record in records:
        unique.setdefault((record.venue, record.feed, record.event_key), record)
    keys = pa.table({
        "venue": pa.array([k[0] for k in unique], pa.string()),
        "feed": pa.array([k[1] for k in unique], pa.string()),
        "event_key": pa.array([k[2] for k in unique], pa.string()),
    })
    stamps = [record.ts for record in unique.values()]
    con.register("incoming_keys", keys)
    try:
        stored = con.execute(
            """
            SELECT stored.venue, stored.feed, stored.event_key
            FROM liquidations AS stored
            SEMI JOIN incoming_keys AS k
              ON stored.venue = k.venue AND stored.feed = k.feed AND stored.event_key = k.event_key
            WHERE stored.ts BETWEEN ? AND ?
            """,
            [min(stamps), max(stamps)],
        ).fetchall()
    finally:
        con.unregister("incoming_keys")
    known = set(stored)
    fresh = [record for key, record in unique.items() if key not in known]
    if fresh:
        con.register("incoming_liquidations", records_table(fresh, fetched_at))
        try:
            con.execute("INSERT INTO liquidations BY NAME SELECT * FROM incoming_liquidations")
        finally:
            con.unregister("incoming_liquidations")
    return fresh


def refresh_minutes(con: duckdb.DuckDBPyConnection, venue: str, source: str, first: datetime, last: datetime) -> None:
    """Recompute the rollup of venue x source for the minutes [first, last] from the rows (idempotent)."""
    lo, hi = floor_minute(first), floor_minute(last)
    con.execute("DELETE FROM liquidation_minutes WHERE venue = ? AND source = ? AND minute BETWEEN ? AND ?",
                [venue, source, lo, hi])
    con.execute(
        """
        INSERT INTO liquidation_minutes
        SELECT venue, source, date_trunc('minute', ts) AS minute, side,
               coalesce(sum(notional_usd), 0), coalesce(sum(qty_base), 0), count(*),
               count(*) FILTER (WHERE notional_usd IS NULL), bool_or(lower_bound)
        FROM liquidations
        WHERE venue = ? AND source = ? AND ts >= ? AND ts < ?
        GROUP BY ALL
        """,
        [venue, source, lo, hi + MINUTE],
    )


def _upsert_feeds(con: duckdb.DuckDBPyConnection, feeds: Iterable[Any], records: Sequence[Any]) -> None:
    seen: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for record in records:
        seen[(record.venue, record.feed)].append(record.ts)
    for info in feeds:
        stamps = seen.get((info.venue, info.feed))
        if not stamps:
            continue
        con.execute(
            """
            INSERT INTO liquidation_feeds VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (venue, feed) DO UPDATE SET
                source = excluded.source, coverage = excluded.coverage, lower_bound = excluded.lower_bound,
                note = excluded.note,
                first_seen = least(liquidation_feeds.first_seen, excluded.first_seen),
                last_seen = greatest(liquidation_feeds.last_seen, excluded.last_seen)
            """,
            [info.venue, info.feed, info.source, info.coverage, info.lower_bound, info.note,
             min(stamps), max(stamps)],
        )


def _apply_gap(con: duckdb.DuckDBPyConnection, op: tuple[Any, ...], now: datetime) -> None:
    """("open", gap) inserts a gap row; ("close", venue, feed, end) ends every open gap of that feed."""
    if op[0] == "open":
        gap = op[1]
        con.execute(
            "INSERT INTO liquidation_gaps VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (venue, feed, start_ts) DO NOTHING",
            [gap.venue, gap.feed, gap.start_ts, gap.end_ts, gap.reason, now],
        )
    elif op[0] == "close":
        _, venue, feed, end = op
        con.execute(
            "UPDATE liquidation_gaps SET end_ts = greatest(?, start_ts) "
            "WHERE venue = ? AND feed = ? AND end_ts IS NULL",
            [end, venue, feed],
        )
    elif op[0] in coverage.COVERAGE_OPS:
        coverage.apply(con, op, now)
    else:
        raise ValueError(f"unknown gap operation {op[0]!r}")


def write_batch(con: duckdb.DuckDBPyConnection, records: Sequence[Any], gap_ops: Sequence[tuple[Any, ...]] = (),
                feeds: Iterable[Any] = (), fetched_at: datetime | None = None) -> int:
    """Rows, their rollup minutes, feed coverage and gaps, in transactions of at most CHUNK_ROWS rows
    (bounded memory when the writer catches up on a backlog). Returns rows inserted."""
    fetched_at = fetched_at or datetime.now(UTC)
    feeds = list(feeds)
    inserted = 0
    for start in range(0, max(len(records), 1), CHUNK_ROWS):
        last = start + CHUNK_ROWS >= len(records)
        inserted += _write_chunk(con, records[start:start + CHUNK_ROWS], gap_ops if last else (), feeds, fetched_at)
    return inserted


def _write_chunk(con: duckdb.DuckDBPyConnection, records: Sequence[Any], gap_ops: Sequence[tuple[Any, ...]],
                 feeds: Sequence[Any], fetched_at: datetime) -> int:
    con.execute("BEGIN TRANSACTION")
    try:
        inserted = _insert_rows(con, records, fetched_at) if records else []
        spans: dict[tuple[str, str], list[datetime]] = {}
        for row in inserted:
            span = spans.setdefault((row.venue, row.source), [row.ts, row.ts])
            span[0], span[1] = min(span[0], row.ts), max(span[1], row.ts)
        for (venue, source), (first, last) in spans.items():
            refresh_minutes(con, venue, source, first, last)
        if records:
            _upsert_feeds(con, feeds, records)
        for op in gap_ops:
            _apply_gap(con, op, fetched_at)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return len(inserted)


def rebuild_minutes(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute the whole rollup (after a bulk load)."""
    con.execute("DELETE FROM liquidation_minutes")
    con.execute(
        """
        INSERT INTO liquidation_minutes
        SELECT venue, source, date_trunc('minute', ts), side, coalesce(sum(notional_usd), 0),
               coalesce(sum(qty_base), 0), count(*), count(*) FILTER (WHERE notional_usd IS NULL),
               bool_or(lower_bound)
        FROM liquidations GROUP BY ALL
        """
    )


# -- cascades --------------------------------------------------------------------------------------------

def _store_cascade(con: duckdb.DuckDBPyConnection, cascade: Cascade, params: CascadeParams, now: datetime) -> None:
    asset = dominant_asset(con, cascade.scope, cascade.start, cascade.last_minute + MINUTE)
    price_before = price_after = None
    price_source = None
    if asset is not None:
        price_before, price_after, price_source = price_move(con, cascade.scope, asset, cascade)
    fund_before, fund_after, fund_pools = fund_change(con, cascade.scope, cascade)
    fund_change_usd = None if fund_before is None or fund_after is None else fund_after - fund_before
    con.execute(
        """
        INSERT INTO cascades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (venue, start_ts) DO UPDATE SET
            end_ts = excluded.end_ts, last_minute = excluded.last_minute, peak_ts = excluded.peak_ts,
            peak_usd = excluded.peak_usd, total_long_usd = excluded.total_long_usd,
            total_short_usd = excluded.total_short_usd, baseline_usd = excluded.baseline_usd,
            threshold_usd = excluded.threshold_usd, minutes = excluded.minutes, ongoing = excluded.ongoing,
            incomplete = excluded.incomplete, lower_bound = excluded.lower_bound,
            dominant_asset = excluded.dominant_asset, price_before = excluded.price_before,
            price_after = excluded.price_after, price_move_pct = excluded.price_move_pct,
            price_source = excluded.price_source, fund_before_usd = excluded.fund_before_usd,
            fund_after_usd = excluded.fund_after_usd, fund_change_usd = excluded.fund_change_usd,
            fund_pools = excluded.fund_pools, params = excluded.params, updated_at = excluded.updated_at
        """,
        [cascade.scope, cascade.start, cascade.end, cascade.last_minute, cascade.peak_minute, cascade.peak_usd,
         cascade.total_long_usd, cascade.total_short_usd, cascade.baseline_usd, cascade.threshold_usd,
         cascade.minutes, cascade.ongoing, cascade.incomplete, cascade.lower_bound, asset, price_before,
         price_after, pct_move(price_before, price_after), price_source, fund_before, fund_after, fund_change_usd,
         fund_pools, json.dumps(asdict(params), sort_keys=True), now, now],
    )


@dataclass(frozen=True)
class CascadeRun:
    cascades: list[Cascade]
    examined_to: datetime  # exclusive end of the series examined (pass it back as ``since`` next time)


def detect_and_store(con: duckdb.DuckDBPyConnection, params: CascadeParams, now: datetime | None = None,
                     since: datetime | None = None) -> CascadeRun:
    """Detect cascades for every venue and the market over the last CASCADE_LOOKBACK, or from ``since``
    (the previous run's end) when that is earlier, plus the trailing window; upsert them (an ongoing
    cascade is updated until it ends). The series ends at the later of the wall clock and the newest
    liquidation (a simulated clock may run ahead of real time)."""
    now = now or datetime.now(UTC)
    newest = scalar(con, "SELECT max(minute) FROM liquidation_minutes")
    end = floor_minute(now) + MINUTE
    if newest is not None and newest + MINUTE > end:
        end = newest + MINUTE
    first = end - CASCADE_LOOKBACK
    if since is not None and floor_minute(since) < first:
        first = floor_minute(since)
    start = first - timedelta(minutes=params.window_min)
    found: list[Cascade] = []
    con.execute("BEGIN TRANSACTION")
    try:
        for scope, series in minute_series(con, start, end).items():
            for cascade in detect_cascades(scope, series, params):
                _store_cascade(con, cascade, params, now)
                found.append(cascade)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return CascadeRun(found, end)


# -- the backend the collector-side integration calls ------------------------------------------------------

class StoreBackend:
    """Everything ``collectors.liquidations.integration`` needs from storage, run through the collector's
    ``Store`` (its lock and lock-retry discipline; no second connection in the writer process)."""

    def write(self, store: Any, records: Sequence[Any], gap_ops: Sequence[tuple[Any, ...]],
              feeds: Iterable[Any]) -> int:
        feeds = list(feeds)
        return int(store.execute_write(lambda con: write_batch(con, records, gap_ops, feeds)))

    def newest_ts(self, store: Any, venue: str, feed: str) -> datetime | None:
        newest: datetime | None = store.execute_write(lambda con: newest_ts(con, venue, feed))
        return newest

    def detect_cascades(self, store: Any, params: CascadeParams, now: datetime | None = None,
                        since: datetime | None = None) -> CascadeRun:
        run: CascadeRun = store.execute_write(lambda con: detect_and_store(con, params, now, since))
        return run


BACKEND = StoreBackend()
