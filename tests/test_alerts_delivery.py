"""Delivery through apprise to a local HTTP receiver (``json://127.0.0.1:PORT/path``): the payload,
retries with backoff on a 500, every attempt recorded, secrets never shown, and collection that does not
wait for any of it."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from alerts.commands import alerts_test
from alerts.delivery import Deliverer, Notification, secret_fragments, target_label
from alerts.engine import AlertEngine
from backstop.config import load_settings
from backstop.integrations import alert_engine_for
from backstop.service import Collector
from storage import alert_store as A
from storage.alert_store import DeliveryAttempt
from storage.queries import query_df
from storage.writer import Store
from tests.conftest import settings_for

SECRET = "s3cr3t-T0KEN-9f8e"


class Receiver:
    """An aiohttp server on 127.0.0.1 in its own thread. ``/fail/...`` answers 500, anything else 200;
    ``delay_s`` slows every answer down."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, await request.json()))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if request.path.startswith("/fail/"):
            return web.Response(status=500, text="receiver broken")
        return web.json_response({"ok": True})

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            app = web.Application()
            app.router.add_post("/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001

        self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> Receiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def notification(severity: str = "critical") -> Notification:
    return Notification("a1", "fund_drawdown|okx|funds", "firing", severity, "[CRITICAL] fund_drawdown: OKX",
                        "OKX USDT pool −22.4 % in 8 h (max 412.1 M → 319.8 M USDT); peers median −0.3 %\nSince …")


def test_delivers_the_expected_json_payload(receiver: Receiver) -> None:
    recorded: list[DeliveryAttempt] = []
    deliverer = Deliverer([receiver.url(f"/hook/{SECRET}")], retries=2, backoff_base_s=0.01, record=recorded.extend)
    [result] = deliverer.deliver(notification())
    assert result.ok and result.attempts == 1 and result.target == "json://…"
    [(path, payload)] = receiver.requests
    assert path == f"/hook/{SECRET}"
    assert payload == {
        "version": "1.0", "title": "[CRITICAL] fund_drawdown: OKX", "type": "failure", "attachments": [],
        "message": "OKX USDT pool −22.4 % in 8 h (max 412.1 M → 319.8 M USDT); peers median −0.3 %\nSince …",
    }
    [attempt] = recorded
    assert attempt.ok and attempt.attempt == 1 and attempt.target == "json://…" and attempt.alert_id == "a1"


def test_500_is_retried_with_backoff_and_every_failure_recorded(
        receiver: Receiver, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    store = Store(tmp_path / "d.duckdb")
    waits: list[float] = []
    deliverer = Deliverer([receiver.url(f"/fail/{SECRET}"), receiver.url("/ok/second")], retries=2,
                          backoff_base_s=0.05, backoff_max_s=1.0, sleep=lambda s: waits.append(s) or time.sleep(s),
                          record=lambda rows: store.execute_write(lambda con: A.record_deliveries(con, rows)))
    with caplog.at_level(logging.DEBUG):
        failed, ok = deliverer.deliver(notification("warning"))
    assert not failed.ok and failed.attempts == 3 and "500" in (failed.error or "")
    assert ok.ok and ok.attempts == 1
    assert waits == [0.05, 0.1]  # exponential backoff between the three attempts
    assert [p for p, _ in receiver.requests].count(f"/fail/{SECRET}") == 3
    rows = A.deliveries_frame(tmp_path / "d.duckdb").sort_values(["target_index", "attempt"])
    assert rows[["target_index", "attempt", "ok"]].values.tolist() == [[0, 1, False], [0, 2, False], [0, 3, False],
                                                                      [1, 1, True]]
    assert set(rows["target"]) == {"json://…"} and set(rows["event"]) == {"firing"}
    # the secret is nowhere: not in the recorded errors, not in any log line (apprise logs URLs at debug)
    assert not rows["error"].fillna("").str.contains(SECRET).any()
    assert "second" not in " ".join(rows["error"].fillna(""))
    assert caplog.records and SECRET not in caplog.text and f"127.0.0.1:{receiver.port}" not in caplog.text


def test_invalid_target_fails_once_without_showing_it(caplog: pytest.LogCaptureFixture) -> None:
    recorded: list[DeliveryAttempt] = []
    deliverer = Deliverer([f"nosuchscheme://user:{SECRET}@host/x"], retries=3, backoff_base_s=0.01,
                          record=recorded.extend)
    with caplog.at_level(logging.DEBUG):
        [result] = deliverer.deliver(notification())
    assert not result.ok and result.attempts == 1 and result.error == "invalid or unsupported target URL"
    assert [a.attempt for a in recorded] == [1]
    assert SECRET not in caplog.text and SECRET not in repr(deliverer)


def test_labels_and_fragments() -> None:
    assert target_label("tgram://123456:ABCDEF/987") == "tgram://…"
    assert target_label("not a url") == "(invalid URL)…"
    assert {SECRET, "hooks.example.com"} <= secret_fragments(f"json://hooks.example.com/{SECRET}?x=1")


def test_alerts_test_command_reports_each_target_by_scheme(receiver: Receiver, tmp_path: Path) -> None:
    settings = load_settings(db_path=tmp_path / "t.duckdb", alerts={
        "targets": [receiver.url(f"/ok/{SECRET}"), receiver.url(f"/fail/{SECRET}")], "delivery_retries": 1},
        collector={"backoff_base_s": 0.01})
    lines: list[str] = []
    assert alerts_test(settings, echo=lines.append) == 1
    assert lines[0] == "target 1 json://…: ok"
    assert lines[1].startswith("target 2 json://…: failed after 2 attempt(s):")
    assert SECRET not in " ".join(lines)
    assert receiver.requests[0][1]["title"] == "[TEST] Backstop alerts"
    assert alerts_test(load_settings(db_path=tmp_path / "t.duckdb"), echo=lines.append) == 1
    assert lines[-1].startswith("no alert targets configured")


def test_failing_receiver_does_not_hold_up_collection(sim_factory: Any, tmp_path: Path) -> None:
    """A slow, failing target: the cycle returns while deliveries are still being retried in the
    background; the data is written; every attempt is recorded afterwards."""
    slow = Receiver(delay_s=0.4).start()
    try:
        sim = sim_factory(["binance"])
        sim.market.venue("binance").contracts["ETHUSDT"].extra["adl_risk"] = "high"
        settings = settings_for(sim, tmp_path / "c.duckdb", ["binance"], alerts={
            "targets": [slow.url(f"/fail/{SECRET}"), slow.url("/ok/x")], "delivery_retries": 2})

        async def cycle() -> tuple[bool, list[Any], AlertEngine]:
            collector = Collector.for_venues(settings)
            engine = alert_engine_for(collector)
            assert engine is not None
            collector.after_cycle.append(lambda outcomes: engine.after_cycle())
            async with collector.running():
                outcomes = await collector.run_cycle()
                # 3 attempts x 0.4 s (+ backoff) on target 0, then 0.4 s on target 1: still under way
                in_flight = not engine.wait_deliveries(timeout=0)
                return in_flight, outcomes, engine

        in_flight, outcomes, engine = asyncio.run(cycle())
        assert {o.status for o in outcomes} == {"ok"}
        assert in_flight
        assert engine.wait_deliveries(timeout=30)
        rows = query_df(settings.db, "SELECT target_index, attempt, ok, error FROM alert_deliveries "
                                     "ORDER BY target_index, attempt")
        assert rows[["target_index", "attempt", "ok"]].values.tolist() == [[0, 1, False], [0, 2, False],
                                                                          [0, 3, False], [1, 1, True]]
        alerts = query_df(settings.db, "SELECT rule, venue, status, message FROM alerts")
        assert alerts.values.tolist() == [["adl_near", "binance", "firing", "Binance USD-M ADL risk high: ETHUSDT"]]
        assert query_df(settings.db, "SELECT count(*) AS n FROM fund_balances")["n"][0] > 0
        assert json.dumps(slow.requests[-1][1]).count("ADL risk high") == 1
    finally:
        slow.stop()


def test_cli_alerts_test_and_list(receiver: Receiver, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from backstop.cli import main
    from metrics.alert_rows import Signal

    db = tmp_path / "cli.duckdb"
    monkeypatch.setenv("BACKSTOP_ALERTS__TARGETS", json.dumps([receiver.url(f"/ok/{SECRET}")]))
    assert main(["--db", str(db), "alerts", "test"]) == 0
    out = capsys.readouterr().out
    assert "target 1 json://…: ok" in out and SECRET not in out
    assert main(["--db", str(db), "alerts", "list"]) == 0
    assert "no alert fired" in capsys.readouterr().out
    signal = Signal("adl_near", "binance", "binance_adl_risk", "warning", "Binance ADL risk high: [bold]ETHUSDT[/bold]")
    Store(db).execute_write(lambda con: A.apply_changes(con, datetime.now(UTC), [A.AlertOpen("x", signal, True)], [], []))
    assert main(["--db", str(db), "alerts", "list"]) == 0
    out = capsys.readouterr().out
    assert "adl_near" in out and "[bold]" in out  # exchange text printed as text, not as console markup
