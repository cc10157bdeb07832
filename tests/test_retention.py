"""Retention and compaction on a real DuckDB file with months of old rows (issue #10 item 10): raw
high-frequency rows downsampled or dropped, the file shrinks, fund rows and rollups stay exactly as they
were (and recomputing a rollup from the downsampled rows gives the same values)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backstop.config import ConfigError, load_settings
from backstop.maintenance import retention_rules, storage_upkeep_forever
from storage.analytics import refresh_rollups
from storage.db import read_connection, write_connection
from storage.retention import RetentionRule, compact, database_size, file_bytes, record_size
from storage.writer import Store

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 60


def build_history(db: Path, days: int = DAYS, symbols: int = 12) -> None:
    """Two venues of 5-minute open interest, 10-minute funding, prices, hourly funds, liquidations over
    120 days and collection runs over 200 days - inserted in SQL, written into a real file."""
    start = NOW - timedelta(days=days)
    with write_connection(db) as con:
        con.execute("""
            INSERT INTO open_interest (venue, symbol, ts, base_asset, settle_asset, oi_raw, oi_unit, contract_size,
                                       inverse, oi_base, oi_usd, fetched_at)
            SELECT v.venue, 'S' || s.i, ?::TIMESTAMPTZ + to_minutes(5 * t.i), 'B' || s.i, 'USDT',
                   round(1e5 * (1 + random()), 4)::VARCHAR, 'contracts', 1.0, false, 1e5 * (1 + random()),
                   CASE WHEN (t.i + s.i) % 7 = 0 THEN NULL ELSE 1e9 * random() END,
                   ?::TIMESTAMPTZ + to_minutes(5 * t.i) + to_microseconds((random() * 3e6)::BIGINT)
            FROM (VALUES ('okx'), ('gate')) v(venue), range(?) s(i), range(?) t(i)
        """, [start, start, symbols, days * 288])
        con.execute("""
            INSERT INTO funding_rates (venue, symbol, ts, funding_rate, funding_rate_raw, next_funding_ts, interval_h,
                                       mark_price, fetched_at)
            SELECT v.venue, 'S' || s.i, ?::TIMESTAMPTZ + to_minutes(10 * t.i), r, r::VARCHAR, NULL, 8.0,
                   1e4 * (1 + random()), ?::TIMESTAMPTZ + to_minutes(10 * t.i) + to_microseconds((random() * 3e6)::BIGINT)
            FROM (VALUES ('okx'), ('gate')) v(venue), range(?) s(i), range(?) t(i),
                 LATERAL (SELECT round((random() - 0.6) * 1e-3, 8) AS r)
        """, [start, start, symbols, days * 144])
        con.execute("""
            INSERT INTO prices
            SELECT v.venue, a.asset, ?::TIMESTAMPTZ + to_minutes(5 * t.i), 1e4 * (1 + random()), 'index',
                   ?::TIMESTAMPTZ + to_minutes(5 * t.i) + to_microseconds((random() * 3e6)::BIGINT)
            FROM (VALUES ('okx'), ('gate')) v(venue), (VALUES ('BTC'), ('ETH'), ('SOL')) a(asset),
                 range(?) t(i)
        """, [start, start, days * 288])
        con.execute("""
            INSERT INTO fund_balances (venue, pool_id, asset, ts, balance, balance_raw, unit_raw, usd_value, usd_source,
                                       kind, source, fetched_at)
            SELECT v.venue, 'pool' || p.i, 'USDT', ?::TIMESTAMPTZ + to_hours(t.i), 1e6 + t.i, (1e6 + t.i)::VARCHAR,
                   'USDT', 1e6 + t.i, 'stable', 'balance', 'poll', ?::TIMESTAMPTZ + to_hours(t.i)
            FROM (VALUES ('okx'), ('gate')) v(venue), range(3) p(i), range(?) t(i)
        """, [start, start, days * 24])
        con.execute("""
            INSERT INTO liquidations
            SELECT 'okx', 'liq', 'ws', 'k' || t.i, ?::TIMESTAMPTZ + to_minutes(10 * t.i), 'S1', 'BTC', 'USDT',
                   'long', 100.0, 'fill', 1.0, 1.0, 1.0, false, 100.0, 'qty', 'sampled', true,
                   repeat('x', 200), ?::TIMESTAMPTZ + to_minutes(10 * t.i), ?::TIMESTAMPTZ + to_minutes(10 * t.i)
            FROM range(120 * 144) t(i)
        """, [NOW - timedelta(days=120)] * 3)
        con.execute("""
            INSERT INTO liquidation_minutes
            SELECT venue, source, date_trunc('minute', ts), side, sum(notional_usd), sum(qty_base), count(*),
                   0, true
            FROM liquidations GROUP BY ALL
        """)
        con.execute("""
            INSERT INTO collection_runs
            SELECT 'r' || t.i, 'okx', 'funds', 'poll', ?::TIMESTAMPTZ + to_hours(t.i),
                   ?::TIMESTAMPTZ + to_hours(t.i), 'ok', NULL, NULL, 1, 3
            FROM range(200 * 24) t(i)
        """, [NOW - timedelta(days=200)] * 2)
        refresh_rollups(con, now=NOW)


def rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with read_connection(db) as con:
        return con.execute(sql, params or []).fetchall()


ROLLUP_SNAPSHOTS = {
    "oi_hourly": "SELECT * FROM oi_hourly ORDER BY ALL",
    "fund_hourly": "SELECT * FROM fund_hourly ORDER BY ALL",
    "liquidation_minutes": "SELECT * FROM liquidation_minutes ORDER BY ALL",
    "fund_balances": "SELECT * FROM fund_balances ORDER BY ALL",
    "schema_version": "SELECT * FROM schema_version ORDER BY ALL",
}


# Summed as DECIMAL: a DOUBLE sum depends on the order of the parallel aggregation (CI saw ...922 vs ...014).
RECENT_OI_SQL = "SELECT count(*), sum(oi_base::DECIMAL(38, 9)) FROM open_interest WHERE ts >= ?"


@pytest.mark.e2e
def test_compact_shrinks_old_raw_rows_and_keeps_funds_and_rollups(tmp_path: Path) -> None:
    db = tmp_path / "history.duckdb"
    build_history(db)
    cutoff = NOW - timedelta(days=7)
    before = {name: rows(db, sql) for name, sql in ROLLUP_SNAPSHOTS.items()}
    expected_old_oi = rows(db, "SELECT count(DISTINCT (venue, symbol, oi_usd IS NULL, "
                               "time_bucket(INTERVAL 1 HOUR, ts - INTERVAL 1 MICROSECOND))) "
                               "FROM open_interest WHERE ts < ?", [cutoff])[0][0]
    recent_oi = rows(db, RECENT_OI_SQL, [cutoff])
    recent_liq = rows(db, "SELECT count(*) FROM liquidations WHERE ts >= ?", [NOW - timedelta(days=90)])[0][0]
    counts_before = {t: rows(db, f"SELECT count(*) FROM {t}")[0][0]  # noqa: S608 - constant names
                     for t in ("open_interest", "funding_rates", "prices", "liquidations", "collection_runs")}
    size_before = file_bytes(db)

    rules = {"open_interest": RetentionRule(7, "downsample"), "funding": RetentionRule(7, "downsample"),
             "prices": RetentionRule(7, "downsample"), "liquidations": RetentionRule(90, "drop"),
             "runs": RetentionRule(180, "drop")}
    report = compact(db, rules, now=NOW)

    assert report.bytes_before == size_before
    assert report.bytes_after < 0.6 * report.bytes_before, report  # 17.3 MB -> 8.7 MB here
    assert file_bytes(db) < 0.6 * size_before  # still so after the next write (one more block)
    assert not (tmp_path / "history.duckdb.compacting").exists()
    # old raw rows: one per series and hour; recent rows untouched
    assert rows(db, "SELECT count(*) FROM open_interest WHERE ts < ?", [cutoff])[0][0] == expected_old_oi
    assert rows(db, RECENT_OI_SQL, [cutoff]) == recent_oi
    assert report.deleted["open_interest"] == counts_before["open_interest"] - \
        rows(db, "SELECT count(*) FROM open_interest")[0][0] > 0
    assert rows(db, "SELECT max(n) FROM (SELECT count(*) AS n FROM funding_rates WHERE ts < ? "
                    "GROUP BY venue, symbol, time_bucket(INTERVAL 1 HOUR, ts - INTERVAL 1 MICROSECOND))",
                [cutoff])[0][0] == 1
    assert rows(db, "SELECT count(*) FROM prices")[0][0] < counts_before["prices"]
    assert rows(db, "SELECT count(*) FROM liquidations WHERE ts < ?", [NOW - timedelta(days=90)])[0][0] == 0
    assert rows(db, "SELECT count(*) FROM liquidations")[0][0] == recent_liq
    assert rows(db, "SELECT min(started_at) FROM collection_runs")[0][0] >= NOW - timedelta(days=180)
    # fund rows, rollups and the schema exactly as they were
    after = {name: rows(db, sql) for name, sql in ROLLUP_SNAPSHOTS.items()}
    for name in ROLLUP_SNAPSHOTS:
        assert after[name] == before[name], name
    # the rollup rebuilt from the downsampled raw rows is the same rollup
    with write_connection(db) as con:
        con.execute("DELETE FROM oi_hourly")
        con.execute("DELETE FROM rollup_state")
        refresh_rollups(con, now=NOW)
    rebuilt = rows(db, ROLLUP_SNAPSHOTS["oi_hourly"])
    assert [r[:4] + r[5:] for r in rebuilt] == [r[:4] + r[5:] for r in before["oi_hourly"]]
    assert [r[4] for r in rebuilt] == pytest.approx([r[4] for r in before["oi_hourly"]], rel=1e-12)  # sum order
    # both compaction events were recorded (the growth rate restarts after a compaction)
    events = rows(db, "SELECT event, bytes FROM db_size_samples ORDER BY ts, event")
    assert events == [("compact-after", report.bytes_after), ("compact-before", report.bytes_before)]


def test_growth_rate_from_size_samples(tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    store = Store(db)
    store.execute_write(lambda con: record_size(con, db, now=NOW - timedelta(days=2), size=10))
    store.execute_write(lambda con: record_size(con, db, now=NOW - timedelta(days=1), size=1_000))
    size = database_size(db, now=NOW)
    assert size is not None and size.bytes == file_bytes(db)
    assert size.growth_bytes_per_day == pytest.approx((file_bytes(db) - 10) / 2)
    assert size.measured_hours == pytest.approx(48)
    # a compaction restarts the measurement; under an hour of samples is "not measured yet"
    store.execute_write(lambda con: record_size(con, db, "compact-after", now=NOW - timedelta(minutes=10), size=5))
    fresh = database_size(db, now=NOW)
    assert fresh is not None and fresh.growth_bytes_per_day is None
    assert database_size(tmp_path / "absent.duckdb") is None


def test_retention_config(tmp_path: Path) -> None:
    settings = load_settings(db_path=tmp_path / "x.duckdb")
    rules = retention_rules(settings)
    assert rules["liquidations"] == RetentionRule(90, "drop") and rules["open_interest"].action == "downsample"
    bad = tmp_path / "bad.toml"
    bad.write_text("[retention.liquidations]\nkeep_days = 30\naction = 'downsample'\n")
    with pytest.raises(ConfigError, match="retention.liquidations"):
        load_settings(bad)
    good = tmp_path / "good.toml"
    good.write_text("[retention]\ncompact_every_h = 24\n[retention.prices]\nkeep_days = 0\n")
    assert retention_rules(load_settings(good))["prices"].keep_days == 0


@pytest.mark.e2e
def test_compact_command(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    build_history(db, days=40, symbols=5)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "backstop.cli", "compact", "--db", str(db)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "open_interest:" in result.stdout and "bytes before" in result.stdout
    before, after = (int(x) for x in
                     result.stdout.split("size: ")[1].replace(" bytes before,", "").split(" bytes after")[0].split())
    assert after < before
    missing = subprocess.run([sys.executable, "-m", "backstop.cli", "compact", "--db", str(tmp_path / "none.duckdb")],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1


async def test_collector_samples_size_and_compacts_on_schedule(tmp_path: Path) -> None:
    db = tmp_path / "sched.duckdb"
    settings = load_settings(db_path=db, retention={"compact_every_h": 0.0005})  # every 1.8 s
    store = Store(db)
    store.execute_write(lambda con: None)  # create and migrate

    class Owner:  # what the upkeep task uses of a Collector: its settings and its writer
        def __init__(self) -> None:
            self.settings, self.store = settings, store

    task = asyncio.create_task(storage_upkeep_forever(Owner(), sample_every_s=0.2))
    try:
        deadline = asyncio.get_running_loop().time() + 120
        events: list[str] = []
        while "compact-after" not in events:
            assert asyncio.get_running_loop().time() < deadline, events
            await asyncio.sleep(0.2)
            events = [e for (e,) in store.read(lambda con: con.execute(
                "SELECT event FROM db_size_samples ORDER BY ts").fetchall())]
        assert events[0] == "sample" and "compact-before" in events
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
