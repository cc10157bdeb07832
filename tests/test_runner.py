"""Error classification and the retry discipline, in one place."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import ccxt

from backstop.config import load_settings
from backstop.service import Collector
from collectors.base import FUNDS, Batch, Capability, FundBalance, VenueAdapter
from collectors.errors import PayloadError, RetryAfter, classify
from collectors.runner import RetryPolicy, fetch_with_retry
from storage.queries import query_df


def test_classification() -> None:
    assert classify(RetryAfter("429", 3.0)).transient and classify(RetryAfter("429", 3.0)).retry_after_s == 3.0
    assert classify(ccxt.RateLimitExceeded("x")).transient  # not a DDoSProtection subclass in ccxt 4.5
    assert classify(ccxt.DDoSProtection("x")).transient
    assert classify(ccxt.RequestTimeout("x")).transient
    assert classify(ccxt.ExchangeNotAvailable("x")).transient
    assert classify(TimeoutError()).transient
    assert not classify(ccxt.BadRequest("x")).transient
    assert not classify(ccxt.AuthenticationError("x")).transient
    assert not classify(ccxt.NotSupported("x")).transient
    assert classify(PayloadError("missing field")).name == "PayloadError"
    assert classify(KeyError("balance")).name == "PayloadError"


def test_transient_retried_with_retry_after_then_ok() -> None:
    calls = []

    async def flaky() -> Batch:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise RetryAfter("429", 0.2)
        return Batch()

    batch, error, attempts = asyncio.run(fetch_with_retry(flaky, RetryPolicy(3, 5.0, 10.0)))
    assert error is None and attempts == 3 and batch is not None
    assert calls[1] - calls[0] >= 0.19  # Retry-After honoured instead of the 5 s backoff
    assert calls[1] - calls[0] < 2


def test_permanent_not_retried_and_transient_bounded() -> None:
    async def bad() -> Batch:
        raise ccxt.BadRequest("nope")

    _, error, attempts = asyncio.run(fetch_with_retry(bad, RetryPolicy(5, 0.01, 0.01)))
    assert isinstance(error, ccxt.BadRequest) and attempts == 1

    async def down() -> Batch:
        raise ccxt.ExchangeNotAvailable("503")

    _, error, attempts = asyncio.run(fetch_with_retry(down, RetryPolicy(2, 0.01, 0.01)))
    assert isinstance(error, ccxt.ExchangeNotAvailable) and attempts == 3


class _SlowBroken(VenueAdapter):
    key = "binance"  # borrows a registered key for config purposes
    display_name = "broken"
    default_base_url = "http://127.0.0.1:9"
    capabilities = (Capability(FUNDS, "/x", 60),)

    async def fetch_funds(self, since: datetime | None) -> Batch:
        await asyncio.sleep(0.5)
        raise PayloadError("funds: missing field 'balance'")


class _Healthy(VenueAdapter):
    key = "bybit"
    display_name = "healthy"
    default_base_url = "http://127.0.0.1:9"
    capabilities = (Capability(FUNDS, "/y", 60),)

    async def fetch_funds(self, since: datetime | None) -> Batch:
        ts = datetime(2025, 1, 1, tzinfo=UTC)
        return Batch(funds=[FundBalance("bybit", "p", "USDT", ts, Decimal(5), "5", "USDT")])


def test_a_failing_venue_never_stops_the_others(tmp_path: Path) -> None:
    settings = load_settings(db_path=tmp_path / "c.duckdb")
    collector = Collector(settings=settings, adapters={
        "binance": _SlowBroken(settings.venues["binance"]), "bybit": _Healthy(settings.venues["bybit"])})

    async def cycle() -> list:
        async with collector.running():
            return await collector.run_cycle()

    outcomes = {o.venue: o for o in asyncio.run(cycle())}
    assert outcomes["bybit"].status == "ok" and outcomes["bybit"].rows_written == 1
    assert outcomes["binance"].status == "error" and outcomes["binance"].error_class == "PayloadError"
    runs = query_df(settings.db, "SELECT venue, status, coalesce(error_class, '') AS error_class, rows_written "
                    "FROM collection_runs ORDER BY venue")
    assert runs.to_dict("records") == [
        {"venue": "binance", "status": "error", "error_class": "PayloadError", "rows_written": 0},
        {"venue": "bybit", "status": "ok", "error_class": "", "rows_written": 1},
    ]
    funds = query_df(settings.db, "SELECT venue FROM fund_balances")
    assert list(funds["venue"]) == ["bybit"]
