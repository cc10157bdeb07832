"""The store's queue: ``submit`` never waits on the database, a batch waits in memory while another
process holds the file and lands when it lets go; a batch that can never be written is recorded as a
storage-error run and does not block the batches behind it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from collectors.base import Batch, FundBalance
from simulator.harness import hold_reader
from storage.batch_writes import RunRecord
from storage.db import read_connection, write_connection
from storage.writer import Store
from tests.conftest import wait_until

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _run(run_id: str) -> RunRecord:
    now = datetime.now(UTC)
    return RunRecord(run_id, "v", "funds", "poll", now, now, "ok", None, None, 1)


def _funds(i: int) -> Batch:
    return Batch(funds=[FundBalance("v", "p", "USDT", T0.replace(minute=i), Decimal(i), str(i), "USDT")])


def test_submit_does_not_wait_while_another_process_holds_the_file(tmp_path: Path) -> None:
    db = tmp_path / "q.duckdb"
    with write_connection(db):
        pass
    store = Store(db)
    reader = hold_reader(db, 3.0)
    assert reader.stdout is not None and reader.stdout.readline().strip() == "holding"
    started = time.monotonic()
    futures = [store.submit(_funds(i), _run(f"r{i}")) for i in range(5)]
    assert time.monotonic() - started < 0.5  # handed over, not written
    assert not any(f.done() for f in futures)  # the file is still held
    assert reader.stdout.readline().strip() == "released"
    reader.wait(30)
    assert [f.result(timeout=60) for f in futures] == [{"fund_balances": 1}] * 5
    with read_connection(db) as con:
        assert con.execute("SELECT count(*), sum(rows_written) FROM collection_runs").fetchall() == [(5, 5)]
    assert store.close() == 0


def test_an_unwritable_batch_is_recorded_and_does_not_block_the_queue(tmp_path: Path) -> None:
    store = Store(tmp_path / "bad.duckdb")
    bad = store.submit(Batch(extra={"no_such_table": [object()]}), _run("bad"))
    good = store.submit(_funds(1), _run("good"))
    with pytest.raises(KeyError):
        bad.result(timeout=60)
    assert good.result(timeout=60) == {"fund_balances": 1}
    with read_connection(store.path) as con:
        rows = con.execute("SELECT run_id, status, error_class FROM collection_runs ORDER BY run_id").fetchall()
    assert rows == [("bad", "error", "StorageError:KeyError"), ("good", "ok", None)]
    assert store.close() == 0


def test_a_file_that_stops_taking_writes_keeps_every_batch_until_it_does_again(tmp_path: Path) -> None:
    """The file is replaced by something DuckDB cannot open for writing (a folder: this works as root too,
    where file modes do not apply) while the collector runs: the writer thread must neither die nor drop the
    batches; it measures how long the file refused writes, and writes everything once the file is back."""
    db = tmp_path / "swap.duckdb"
    store = Store(db)
    assert store.write(_funds(0), _run("before")) == {"fund_balances": 1}
    assert store.flush(timeout_s=60) == 0  # the writer is out of the file before it is swapped
    aside = tmp_path / "aside.duckdb"
    db.rename(aside)
    db.mkdir()  # the path no longer opens as a database
    futures = [store.submit(_funds(i), _run(f"during-{i}")) for i in range(1, 4)]
    wait_until(lambda: store.unusable_for() > 0, 60, "the writer to notice the file refuses writes")
    assert store.unusable_reason is not None and "directory" in store.unusable_reason
    assert not any(f.done() for f in futures)
    assert store._thread is not None and store._thread.is_alive()  # still trying, not dead
    db.rmdir()
    aside.rename(db)
    assert [f.result(timeout=60) for f in futures] == [{"fund_balances": 1}] * 3
    assert store.unusable_for() == 0 and store.unusable_reason is None
    with read_connection(db) as con:
        assert con.execute("SELECT count(*) FROM fund_balances").fetchall() == [(4,)]
        assert con.execute("SELECT count(*) FROM collection_runs WHERE status = 'ok'").fetchall() == [(4,)]
    assert store.close() == 0
