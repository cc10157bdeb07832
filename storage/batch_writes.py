"""One batch in one transaction: records -> Arrow -> idempotent inserts (anti-join on each table's natural
key), the pool-member upsert, fund rows valued in USD from the nearest collected price, and the batch's
run row, all committed together or not at all. ``storage.writer.Store`` is the only caller in the
collector; ``bench/make_history.py`` uses the same functions to build its history."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute

from records.batch import Batch
from records.vocabulary import DATASET_TABLES, STABLE_ASSETS
from storage.db import scalar

DECIMAL_SCALE = 18  # fund_balances / fund_flows decimals (migration 008): full venue precision
DECIMAL_QUANTUM = Decimal(1).scaleb(-DECIMAL_SCALE)
PRICE_MAX_AGE = "INTERVAL 36 HOUR"  # the nearest price before/after within this; else NULL (flagged)


@dataclass(frozen=True)
class TableSpec:
    """How one table is written: its natural key and its time column (for zone-map pruning)."""

    name: str
    key: tuple[str, ...]
    ts_column: str = "ts"
    decimals: tuple[str, ...] = ()


def _table(dataset: str) -> str:
    return DATASET_TABLES[dataset][0]


TABLES: dict[str, TableSpec] = {
    "funds": TableSpec(_table("funds"), ("venue", "pool_id", "asset", "ts"),
                       decimals=("balance", "usd_value")),
    "fund_flows": TableSpec("fund_flows", ("venue", "pool_id", "asset", "ts", "flow_type"),
                            decimals=("amount", "balance_after")),
    "open_interest": TableSpec(_table("open_interest"), ("venue", "symbol", "ts")),
    "funding": TableSpec(_table("funding"), ("venue", "symbol", "ts")),
    "prices": TableSpec(_table("prices"), ("venue", "asset", "source", "ts")),
    "adl": TableSpec(_table("adl"), ("venue", "scope", "signal_type", "ts")),
    "liquidation_totals": TableSpec("liquidation_totals", ("venue", "symbol", "interval_s", "ts")),
    "backstop_positions": TableSpec("backstop_positions", ("venue", "holder", "contract", "ts")),
}


@dataclass
class RunRecord:
    run_id: str
    venue: str
    dataset: str
    kind: str
    started_at: datetime
    finished_at: datetime
    status: str
    error_class: str | None
    error_message: str | None
    attempts: int
    rows_written: int = 0


def records_to_arrow(records: Sequence[Any], fetched_at: datetime, decimals: Sequence[str] = ()) -> pa.Table:
    """Dataclass records -> Arrow table (+ fetched_at), decimals kept exact as DECIMAL(38,18) (the venues
    publish up to 10 decimals; migration 008)."""
    names = [f.name for f in dataclasses.fields(records[0])]
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for record in records:
        for name in names:
            columns[name].append(getattr(record, name))
    arrays = {}
    for name, values in columns.items():
        if name in decimals:
            arrays[name] = pa.array(
                [None if v is None else Decimal(v).quantize(DECIMAL_QUANTUM) for v in values],
                type=pa.decimal128(38, DECIMAL_SCALE),
            )
        else:
            arrays[name] = pa.array(values)
    arrays["fetched_at"] = pa.array([fetched_at] * len(records), type=pa.timestamp("us", tz="UTC"))
    return pa.table(arrays)


def insert_idempotent(con: duckdb.DuckDBPyConnection, spec: TableSpec, rows: pa.Table) -> int:
    """Insert rows whose natural key is not stored yet; returns how many were inserted.

    The anti-join is limited to the batch's time range so DuckDB prunes by zone maps instead of
    scanning years of history (no ART index needed on tens of millions of rows)."""
    if rows.num_rows == 0:
        return 0
    con.register("incoming_rows", rows)
    try:
        ts_min, ts_max = con.execute(
            f"SELECT min({spec.ts_column}), max({spec.ts_column}) FROM incoming_rows"  # noqa: S608 - internal identifiers
        ).fetchall()[0]
        key_list = ", ".join(spec.key)
        match = " AND ".join(f"stored.{col} = fresh.{col}" for col in spec.key)
        before = scalar(con, f"SELECT count(*) FROM {spec.name}")  # noqa: S608
        con.execute(
            f"""
            INSERT INTO {spec.name} BY NAME
            SELECT fresh.* FROM (SELECT DISTINCT ON ({key_list}) * FROM incoming_rows) AS fresh
            WHERE NOT EXISTS (
                SELECT 1 FROM {spec.name} AS stored
                WHERE stored.{spec.ts_column} BETWEEN ? AND ? AND {match}
            )
            """,  # noqa: S608 - identifiers come from TABLES, values are parameters
            [ts_min, ts_max],
        )
        after = scalar(con, f"SELECT count(*) FROM {spec.name}")  # noqa: S608
        return int(after - before)
    finally:
        con.unregister("incoming_rows")


def _upsert_pool_members(con: duckdb.DuckDBPyConnection, batch: Batch, fetched_at: datetime) -> None:
    if not batch.pool_members:
        return
    seen_at: dict[tuple[str, str], datetime] = {}
    for fund in batch.funds:
        key = (fund.venue, fund.pool_id)
        seen_at[key] = max(seen_at.get(key, fund.ts), fund.ts)
    rows = pa.table({
        "venue": [m.venue for m in batch.pool_members],
        "pool_id": [m.pool_id for m in batch.pool_members],
        "symbol": [m.symbol for m in batch.pool_members],
        "asset": [m.asset for m in batch.pool_members],
        "seen": pa.array([seen_at.get((m.venue, m.pool_id), fetched_at) for m in batch.pool_members],
                         type=pa.timestamp("us", tz="UTC")),
    })
    con.register("incoming_members", rows)
    try:
        con.execute(
            """
            INSERT INTO fund_pool_members
            SELECT venue, pool_id, symbol, asset, min(seen), max(seen)
            FROM incoming_members GROUP BY ALL
            ON CONFLICT (venue, pool_id, symbol, asset) DO UPDATE SET
                first_seen = least(fund_pool_members.first_seen, excluded.first_seen),
                last_seen = greatest(fund_pool_members.last_seen, excluded.last_seen)
            """
        )
    finally:
        con.unregister("incoming_members")


def revalue_funds(con: duckdb.DuckDBPyConnection, ts_from: datetime, ts_to: datetime) -> None:
    """Give fund rows in [ts_from, ts_to] without a USD value one: venue-stated > stablecoin = 1 >
    nearest collected price before or after (at most PRICE_MAX_AGE away). Rows with no price stay NULL."""
    con.execute(
        """
        UPDATE fund_balances SET usd_value = balance, usd_source = 'stable'
        WHERE usd_source IS NULL AND ts BETWEEN ? AND ? AND list_contains(?, asset)
        """,
        [ts_from, ts_to, sorted(STABLE_ASSETS)],
    )
    con.execute(
        f"""
        UPDATE fund_balances AS f
        SET usd_value = CAST(f.balance AS DECIMAL(38, 10)) * CAST(m.price_usd AS DECIMAL(38, 8)),  -- scale 18, 20 integer digits
            usd_source = 'price'
        FROM (
            WITH todo AS (
                SELECT venue, pool_id, asset, ts FROM fund_balances
                WHERE usd_source IS NULL AND ts BETWEEN ? AND ?
            ), px AS (SELECT asset, ts, avg(price_usd) AS price_usd FROM prices GROUP BY asset, ts)
            SELECT t.venue, t.pool_id, t.asset, t.ts,
                   CASE WHEN b.ts IS NULL THEN a.price_usd
                        WHEN a.ts IS NULL THEN b.price_usd
                        WHEN t.ts - b.ts <= a.ts - t.ts THEN b.price_usd
                        ELSE a.price_usd END AS price_usd
            FROM todo AS t
            ASOF LEFT JOIN px AS b ON t.asset = b.asset AND t.ts >= b.ts
            ASOF LEFT JOIN px AS a ON t.asset = a.asset AND t.ts <= a.ts
            WHERE (b.ts IS NOT NULL AND b.ts >= t.ts - {PRICE_MAX_AGE})
               OR (a.ts IS NOT NULL AND a.ts <= t.ts + {PRICE_MAX_AGE})
        ) AS m
        WHERE f.venue = m.venue AND f.pool_id = m.pool_id AND f.asset = m.asset AND f.ts = m.ts
          AND m.price_usd IS NOT NULL
        """,  # noqa: S608 - interval constants only
        [ts_from, ts_to],
    )


def write_batch(con: duckdb.DuckDBPyConnection, batch: Batch, fetched_at: datetime,
                run: RunRecord | None = None) -> dict[str, int]:
    """Write one batch (and its run row) in a single transaction. Returns rows inserted per table."""
    inserted: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        tables: list[tuple[str, Sequence[Any] | pa.Table]] = [
            ("funds", batch.funds), ("fund_flows", batch.fund_flows),
            ("open_interest", batch.open_interest), ("funding", batch.funding),
            ("prices", batch.prices), ("adl", batch.adl), *batch.extra.items(),
        ]
        for batch_key, records in tables:
            if not records:
                continue
            spec = TABLES[batch_key]
            rows = records if isinstance(records, pa.Table) else records_to_arrow(records, fetched_at, spec.decimals)
            if batch_key == "funds" and "usd_source" not in rows.column_names:
                stated = pa.compute.is_valid(rows.column("usd_value"))
                rows = rows.append_column("usd_source", pa.compute.if_else(stated, "venue", pa.scalar(None, pa.string())))
            inserted[spec.name] = insert_idempotent(con, spec, rows)
        _upsert_pool_members(con, batch, fetched_at)
        stamps = [f.ts for f in batch.funds] + [p.ts for p in batch.prices]
        if stamps:
            margin = timedelta(hours=48)
            revalue_funds(con, min(stamps) - margin, max(stamps) + margin)
        if run is not None:
            run.rows_written += sum(inserted.values())
            con.execute(
                "INSERT INTO collection_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run.run_id, run.venue, run.dataset, run.kind, run.started_at, run.finished_at,
                 run.status, run.error_class, run.error_message, run.attempts, run.rows_written],
            )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return inserted
