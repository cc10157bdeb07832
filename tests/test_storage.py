"""Storage: migrations, idempotent bulk writes, USD valuation, and two real processes on one file."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from collectors.base import Batch, FundBalance, OpenInterest, PoolMember, Price
from storage.batch_writes import RunRecord
from storage.db import migrate, migrations, read_connection, scalar, write_connection
from storage.export import export_csv
from storage.writer import Store

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def fund(ts: datetime, balance: str, asset: str = "BTC", pool: str = "p1") -> FundBalance:
    return FundBalance("bitmex", pool, asset, ts, Decimal(balance), balance, asset)


def test_migrate_from_empty_and_from_each_earlier_version(tmp_path: Path) -> None:
    versions = [m.version for m in migrations()]
    latest = versions[-1]
    for start in [0, *versions]:
        path = tmp_path / f"from{start}.duckdb"
        con = duckdb.connect(str(path))
        try:
            assert migrate(con, target=start) == start
            assert migrate(con) == latest
            assert scalar(con, "SELECT count(*) FROM schema_version") == len(versions)
            assert migrate(con) == latest  # re-running is a no-op
        finally:
            con.close()


def test_failed_migration_leaves_no_partial_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from storage import db as db_module

    broken = db_module.Migration(99, "099_broken.sql", "CREATE TABLE half_done (x INT); SELECT * FROM nope;")
    monkeypatch.setattr(db_module, "migrations", lambda: [*migrations(), broken])
    con = duckdb.connect(str(tmp_path / "m.duckdb"))
    with pytest.raises(duckdb.Error):
        db_module.migrate(con)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert "half_done" not in tables
    assert scalar(con, "SELECT max(version) FROM schema_version") == migrations()[-1].version
    con.close()


def test_writes_are_idempotent_and_valued(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.duckdb")
    batch = Batch(
        funds=[fund(T0, "33491"), fund(T0, "1000", asset="USDT", pool="p2")],
        prices=[Price("binance", "BTC", T0 + timedelta(minutes=5), 60000.0, "index")],
        pool_members=[PoolMember("bitmex", "p1", "XBTUSD", "BTC")],
    )
    first = store.write(batch)
    second = store.write(batch)
    assert first == {"fund_balances": 2, "prices": 1}
    assert second == {"fund_balances": 0, "prices": 0}
    with read_connection(store.path) as con:
        rows = con.execute("SELECT asset, usd_value, usd_source FROM fund_balances ORDER BY asset").fetchall()
    assert rows == [("BTC", Decimal("2009460000.00000000"), "price"), ("USDT", Decimal("1000.00000000"), "stable")]


def test_fund_without_price_is_null_and_flagged(tmp_path: Path) -> None:
    store = Store(tmp_path / "n.duckdb")
    store.write(Batch(funds=[fund(T0, "5", asset="ETH")],
                      prices=[Price("x", "ETH", T0 + timedelta(days=3), 3000.0, "index")]))
    with read_connection(store.path) as con:
        assert con.execute("SELECT usd_value, usd_source FROM fund_balances").fetchall() == [(None, None)]


def test_failed_batch_writes_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "f.duckdb")
    bad = Batch(funds=[fund(T0, "1")], open_interest=[
        OpenInterest("v", "S", T0, "BTC", "USDT", "1", "base", 1.0, False, 1.0, 1.0)])
    bad.extra["no_such_table"] = [object()]
    with pytest.raises(KeyError):
        store.write(bad)
    store.pending.clear()
    with write_connection(store.path) as con:
        assert scalar(con, "SELECT count(*) FROM fund_balances") == 0
        assert scalar(con, "SELECT count(*) FROM open_interest") == 0


def test_run_row_written_with_batch(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.duckdb")
    run = RunRecord("run-1", "bitmex", "funds", "poll", T0, T0, "ok", None, None, 1)
    store.write(Batch(funds=[fund(T0, "1"), fund(T0 + timedelta(days=1), "2")]), run)
    with read_connection(store.path) as con:
        assert con.execute("SELECT status, rows_written FROM collection_runs").fetchall() == [("ok", 2)]


def test_export_neutralises_formulas_and_keeps_numbers(tmp_path: Path) -> None:
    store = Store(tmp_path / "e.duckdb")
    store.write(Batch(funds=[FundBalance("bitmex", "=HYPERLINK(\"x\")", "BTC", T0, Decimal("-1.5"), "-1.5", "@XBt")]))
    out = tmp_path / "funds.csv"
    assert export_csv(store.path, "funds", out, venue="bitmex") == 1
    header, line = out.read_text().splitlines()
    assert header.startswith("venue,pool_id,asset,ts,balance")
    assert "'=HYPERLINK" in line and ",'@XBt," in line
    assert ",-1.500000000000000000," in line  # full precision (migration 008); a negative number is a number, not a formula
    assert ",-1.5,'@XBt," in line  # ... and so is a raw number kept as text (balance_raw), never "'-1.5"
    assert ",2025-03-01T00:00:00.000000Z," in line



@pytest.mark.parametrize(
    "text",
    ["-0.00081069", "-7.5e-07", "+1", "-.5", "1E+10", "-2+3+cmd|' /C calc'!A0", "=1+1", "@x", "\tx", "\rx",
     "-inf", "+-1", "-1-", "plain"],
)
def test_sql_export_neutralises_exactly_like_python(tmp_path: Path, text: str) -> None:
    """storage.export (DuckDB COPY) and metrics.csv_safe (dashboard downloads) make the same call on a cell."""
    from metrics.csv_safe import neutralise_cell

    store = Store(tmp_path / "n.duckdb")
    store.write(Batch(funds=[FundBalance("bitmex", "p", "BTC", T0, Decimal("1"), text, "XBt")]))
    out = tmp_path / "funds.csv"
    assert export_csv(store.path, "funds", out) == 1
    with out.open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["balance_raw"] == neutralise_cell(text)


WRITER = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime, timedelta, UTC
    from decimal import Decimal
    from pathlib import Path
    from collectors.base import Batch, FundBalance
    from storage.writer import Store
    store = Store(Path(sys.argv[1]), lock_budget_s=0.5)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    n = int(sys.argv[2])
    for i in range(n):
        rows = [FundBalance("v", f"p{j}", "USDT", t0 + timedelta(minutes=i), Decimal(i), str(i), "USDT")
                for j in range(20)]
        store.write(Batch(funds=rows))
        time.sleep(0.01)
    while store.flush():
        time.sleep(0.1)
    print("pending", len(store.pending))
    """
)

READER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from storage.db import read_connection, DatabaseBusy, DatabaseMissing
    path, seconds = Path(sys.argv[1]), float(sys.argv[2])
    end = time.monotonic() + seconds
    reads = 0
    while time.monotonic() < end:
        try:
            with read_connection(path, budget_s=5) as con:
                con.execute("SELECT venue, count(*), max(balance) FROM fund_balances GROUP BY venue").fetchall()
                time.sleep(0.02)  # hold the read lock a little, like a dashboard query
            reads += 1
        except (DatabaseMissing, DatabaseBusy):
            pass  # the writer held the file for longer than this reader waits: try again
        time.sleep(0.005)
    print("reads", reads)
    """
)


@pytest.mark.e2e
def test_writer_and_reader_processes_lose_no_row(tmp_path: Path) -> None:
    db = tmp_path / "shared.duckdb"
    with write_connection(db):
        pass
    batches = 150
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(batches)],
                              stdout=subprocess.PIPE, text=True)
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(db), "8"], stdout=subprocess.PIPE, text=True)
               for _ in range(2)]
    started = time.monotonic()
    writer_out, _ = writer.communicate(timeout=180)
    reader_outs = [r.communicate(timeout=60)[0] for r in readers]
    assert writer.returncode == 0 and "pending 0" in writer_out
    assert all(r.returncode == 0 for r in readers)
    assert all(int(out.split()[-1]) > 10 for out in reader_outs), reader_outs  # readers really ran
    with read_connection(db) as con:
        assert scalar(con, "SELECT count(*) FROM fund_balances") == batches * 20
        assert scalar(con, "SELECT count(DISTINCT ts) FROM fund_balances") == batches
    assert time.monotonic() - started < 180
