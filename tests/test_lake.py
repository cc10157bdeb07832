"""The Parquet lake: filled from a collector run against the simulator, synced incrementally to a folder and
to a real S3 endpoint (moto's server mode in its own process), and read by two existing engines (DuckDB and
ClickHouse's chdb) that must compute the same per-venue daily aggregates as Backstop's own tables."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from backstop.lake_cli import sync_from_file
from backstop.service import Collector, backfill_pairs
from collectors.base import Batch, FundBalance
from simulator.market import Market
from simulator.server import SimulatorThread
from storage.db import read_connection
from storage.export import EXPORTS
from storage.lake import LakeLocation, load_manifest
from storage.writer import Store
from tests.conftest import settings_for

VENUES = ["okx", "gate", "hyperliquid", "bitmex"]
FUND_DAILY = """
    SELECT venue, CAST(ts AS DATE) AS day, count(*) AS n, round(sum(balance), 6) AS total,
           round(max(balance), 6) AS top
    FROM {src} GROUP BY ALL ORDER BY venue, day
"""
OI_DAILY = """
    SELECT venue, CAST(ts AS DATE) AS day, count(*) AS n, sum(oi_usd) AS total
    FROM {src} GROUP BY ALL ORDER BY venue, day
"""


@pytest.fixture(scope="module")
def filled_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A database with a few weeks of fund history and a cycle of OI from four simulated venues."""
    db = tmp_path_factory.mktemp("lake") / "backstop.duckdb"
    sim = SimulatorThread(Market(venues=VENUES, speed=0.0)).start()
    try:
        settings = settings_for(sim, db, VENUES)

        async def fill() -> None:
            collector = Collector.for_venues(settings)
            async with collector.running():
                await collector.run_cycle()
                since = datetime.now(UTC) - timedelta(days=20)
                for venue, dataset in backfill_pairs(collector):
                    await collector.backfill(venue, dataset, since)

        asyncio.run(fill())
    finally:
        sim.stop()
    yield db


def _fund_rows_by_partition(db: Path) -> dict[str, int]:
    with read_connection(db) as con:
        rows = con.execute("SELECT venue || '|' || strftime(CAST(ts AS DATE), '%Y-%m-%d'), count(*) "
                           "FROM fund_balances GROUP BY ALL").fetchall()
    return {key: int(count) for key, count in rows}


def _parts(root: Path, dataset: str) -> dict[str, float]:
    """Every Parquet file of a dataset with its modification time."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in (root / f"dataset={dataset}").rglob("*.parquet")}


def test_sync_is_hive_partitioned_idempotent_and_rewrites_only_late_partitions(filled_db: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    location = LakeLocation.parse(str(lake))
    first = sync_from_file(filled_db, location, ["funds", "open-interest", "runs"])
    partitions = _fund_rows_by_partition(filled_db)
    assert len(partitions) > 20  # weeks of history from several venues
    funds = next(d for d in first.datasets if d.dataset == "funds")
    assert funds.partitions_written == funds.partitions_total == len(partitions)
    assert funds.rows_written == sum(partitions.values())
    for key in partitions:
        venue, day = key.split("|")
        assert list((lake / "dataset=funds" / f"venue={venue}" / f"date={day}").glob("part-*.parquet"))
    manifest = load_manifest(location)
    assert manifest["datasets"]["funds"]["rows"] == sum(partitions.values())

    before = _parts(lake, "funds")
    again = sync_from_file(filled_db, location, ["funds", "open-interest", "runs"])
    assert again.partitions_written == 0 and again.rows_written == 0
    assert _parts(lake, "funds") == before

    # a late row for an old day of one venue rewrites that partition only
    old_key = min(k for k in partitions if k.startswith("okx|"))
    day = datetime.fromisoformat(old_key.split("|")[1]).replace(tzinfo=UTC) + timedelta(hours=23, minutes=59)
    late = FundBalance(venue="okx", pool_id="late-pool", asset="USDT", ts=day, balance=Decimal("123.456"),
                       balance_raw="123.456", unit_raw="USDT", source="history")
    store = Store(filled_db)
    store.write(Batch(funds=[late]), None)
    store.flush()
    third = sync_from_file(filled_db, location, ["funds"])
    assert third.partitions_written == 1 and third.rows_written == partitions[old_key] + 1
    after = _parts(lake, "funds")
    changed = {path for path in set(before) | set(after) if before.get(path) != after.get(path)}
    assert changed and all(f"venue=okx/date={old_key.split('|')[1]}" in path for path in changed)


def test_engines_read_the_lake_as_backstop_reads_its_tables(filled_db: Path, tmp_path: Path) -> None:
    import chdb
    lake = tmp_path / "lake"
    sync_from_file(filled_db, LakeLocation.parse(str(lake)), ["funds", "open-interest"])
    with read_connection(filled_db) as con:
        own_funds = con.execute(FUND_DAILY.format(src="fund_balances")).fetchall()
        own_oi = con.execute(OI_DAILY.format(src="open_interest")).fetchall()
    assert own_funds and own_oi

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    funds_glob = f"read_parquet('{lake}/dataset=funds/*/*/*.parquet', hive_partitioning = true)"
    oi_glob = f"read_parquet('{lake}/dataset=open-interest/*/*/*.parquet', hive_partitioning = true)"
    assert con.execute(FUND_DAILY.format(src=funds_glob)).fetchall() == own_funds
    lake_oi = con.execute(OI_DAILY.format(src=oi_glob)).fetchall()
    assert [row[:3] for row in lake_oi] == [row[:3] for row in own_oi]
    assert [row[3] for row in lake_oi] == pytest.approx([row[3] for row in own_oi], rel=1e-12)

    def clickhouse(sql: str) -> list[tuple[Any, ...]]:
        text = str(chdb.query(f"{sql} SETTINGS use_hive_partitioning = 1, session_timezone = 'UTC'", "TabSeparated"))
        return [tuple(line.split("\t")) for line in text.strip().splitlines()]

    ch_funds = clickhouse(
        f"SELECT venue, toDate(ts) AS day, count() AS n, round(sum(balance), 6), round(max(balance), 6) "  # noqa: S608
        f"FROM file('{lake}/dataset=funds/*/*/*.parquet', Parquet) GROUP BY venue, day ORDER BY venue, day")
    assert [(v, datetime.fromisoformat(d).date(), int(n), Decimal(t), Decimal(m)) for v, d, n, t, m in ch_funds] == [
        (v, d, n, Decimal(t), Decimal(m)) for v, d, n, t, m in own_funds]
    ch_oi = clickhouse(
        f"SELECT venue, toDate(ts) AS day, count() AS n, sum(oi_usd) "  # noqa: S608
        f"FROM file('{lake}/dataset=open-interest/*/*/*.parquet', Parquet) GROUP BY venue, day ORDER BY venue, day")
    # float sums in another engine's order: equal to the last few ulps
    assert [(v, datetime.fromisoformat(d).date(), int(n)) for v, d, n, _ in ch_oi] == [(v, d, n) for v, d, n, _ in own_oi]
    assert [float(t) for *_, t in ch_oi] == pytest.approx([t for *_, t in own_oi], rel=1e-12)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def s3_server() -> Iterator[str]:
    """moto's S3 server in its own process (a real HTTP endpoint), until the test ends."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:  # wait until it answers
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)
    try:
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_sync_to_s3_and_read_back(filled_db: Path, s3_server: str, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "backstop-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "backstop-test-secret-do-not-print")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket="lake")
    location = LakeLocation.parse("s3://lake/backstop", s3_endpoint=s3_server)
    report = sync_from_file(filled_db, location, ["funds"])
    assert report.rows_written == sum(_fund_rows_by_partition(filled_db).values())
    assert sync_from_file(filled_db, location, ["funds"]).rows_written == 0  # idempotent on S3 too

    keys = [obj["Key"] for page in boto3.client("s3", endpoint_url=s3_server).get_paginator("list_objects_v2")
            .paginate(Bucket="lake", Prefix="backstop/") for obj in page.get("Contents", [])]
    assert "backstop/_manifest.json" in keys
    assert any(k.startswith("backstop/dataset=funds/venue=okx/date=") and k.endswith(".parquet") for k in keys)

    # the CLI against the same endpoint: summary line, no secret anywhere in its output
    proc = subprocess.run([sys.executable, "-m", "backstop.cli", "--db", str(filled_db), "lake", "sync",
                           "--to", "s3://lake/backstop", "--s3-endpoint", s3_server, "--dataset", "funds"],
                          capture_output=True, text=True, env={**os.environ}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "0 rows" in proc.stdout
    assert "backstop-test-secret" not in proc.stdout + proc.stderr


def test_export_parquet_and_bad_lake_input(filled_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "oi.parquet"
    proc = subprocess.run([sys.executable, "-m", "backstop.cli", "--db", str(filled_db), "export", "open-interest",
                           "--format", "parquet", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    con = duckdb.connect()
    rows, typ = con.execute("SELECT count(*), typeof(any_value(ts)) FROM read_parquet(?)", [str(out)]).fetchone() or (0, "")
    with read_connection(filled_db) as own:
        assert rows == own.execute("SELECT count(*) FROM open_interest").fetchall()[0][0]
    assert typ.startswith("TIMESTAMP")
    for args, needle in [
        (["export", "funds", "--format", "parquet"], "needs --out"),
        (["export", "funds", "--format", "xlsx", "--out", str(tmp_path / "x")], "--format"),
        (["lake", "sync"], "no lake destination"),
        (["lake", "sync", "--to", "ftp://host/x"], "only a folder or s3://"),
        (["lake", "sync", "--to", str(tmp_path / "lk"), "--dataset", "nope"], "unknown dataset"),
    ]:
        proc = subprocess.run([sys.executable, "-m", "backstop.cli", "--db", str(filled_db), *args],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0, args
        assert needle in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
    assert set(EXPORTS) >= {"funds", "open-interest", "liquidations", "alerts"}


def test_collector_syncs_the_lake_on_its_schedule(sim_factory: Any, tmp_path: Path) -> None:
    """`[lake] sync_every_s` makes the daemon sync through its own connection while it collects."""
    from backstop.integrations import attach

    sim = sim_factory(["okx"])
    lake = tmp_path / "lake"
    settings = settings_for(sim, tmp_path / "sched.duckdb", ["okx"],
                            lake={"dest": str(lake), "sync_every_s": 1, "datasets": ["funds", "runs"]})
    settings.venues["okx"].streams = False
    manifest = lake / "_manifest.json"

    async def run() -> dict[str, Any]:
        collector = Collector.for_venues(settings)
        attach(collector)
        stop = asyncio.Event()
        async with collector.running():
            serving = asyncio.create_task(collector.serve(stop))
            deadline = time.monotonic() + 120
            while True:  # until a sync has seen fund rows (the first may run before the first poll lands)
                if manifest.exists():
                    found = load_manifest(LakeLocation.parse(str(lake)))
                    if found["datasets"].get("funds", {}).get("rows", 0) > 0:
                        break
                assert time.monotonic() < deadline, "the collector never synced fund rows to the lake"
                await asyncio.sleep(0.2)
            stop.set()
            await serving
        return found

    found = asyncio.run(run())
    assert set(found["datasets"]) == {"funds", "runs"}
    assert list((lake / "dataset=funds" / "venue=okx").glob("date=*/part-*.parquet"))
