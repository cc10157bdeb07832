"""Bybit v5: insurance pools (snapshot only), OI + funding + prices from tickers, ADL alerts.

Bybit publishes no fund history: Backstop's history of it exists only because we record it. OI and funding
history are backfilled (``/v5/market/open-interest`` 4-hourly, ``/v5/market/funding/history``).

Pools. ``/v5/market/insurance`` lists pools, each with a comma-separated ``symbols``. One symbol = an
isolated pool (updated every minute), several = a shared pool (updated daily). Pool ids:

* isolated: the ``symbols`` text itself (``DOGEUSDT``) — what the venue uses to name it;
* shared: ``shared:<coin>:<anchor>`` where the anchor is the best-known member (BTCUSDT, ETHUSDT, ...),
  else the alphabetically first member. Bybit gives shared pools no id, and a name built from the whole
  member list would change whenever a symbol is moved in or out; the anchor rarely moves.

The only timestamp is list-level (``updatedTime``; some docs spell it ``updateTime``): every pool in one
response is stamped with it, shared pools included (their balance just repeats until the daily update).

Open interest. Bybit documents ``openInterest`` as the *sum of both sides*; ``singleOpenInterest`` (one side)
was added on 2026-06-11. We store one side: the ``single*`` fields when served, else half the both-sides
figure. ``oi_unit`` records which: ``<unit>:<field>``, e.g. ``base:singleOpenInterest`` or
``usd:openInterest/2``; ``oi_raw`` is that field's text exactly as served. Linear OI is in base coin;
inverse OI is in USD (1 USD contracts), so ``oi_usd`` = contracts and ``oi_base`` = USD / mark.

ADL. ``/v5/market/adlAlert`` per symbol: drawdown ADL triggers when ``balance > adlTriggerThreshold`` (a
balance gate, in the pool coin) *and* ``pnlRatio < insurancePnlRatio``; equity ADL when ``balance <= 0``.
So the signal is ``value = pnlRatio``, ``threshold = insurancePnlRatio`` and
``distance = pnlRatio - insurancePnlRatio``: positive = headroom left before the drawdown trigger,
zero or negative = the drawdown condition is met. ``adlTriggerThreshold`` (not a ratio) is kept in ``detail``.

The parsers (each with its documented sample payload) are in ``collectors.bybit_parsers``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from collectors.base import (
    ADL,
    FUNDING,
    FUNDS,
    OPEN_INTEREST,
    PRICES,
    Batch,
    Capability,
    FundingRate,
    OpenInterest,
    VenueAdapter,
)
from collectors.bybit_parsers import (
    HOUR_MS,
    parse_adl_alert,
    parse_funding_history,
    parse_insurance,
    parse_mark_price_kline,
    parse_open_interest_history,
    parse_tickers,
    v5_result,
)
from collectors.ccxt_client import ccxt_call, ccxt_request, make_exchange
from collectors.exact_json import use_exact_numbers
from records.config import VenueConfig

KLINE_PAGE = 1000  # mark-price-kline bars per call (Bybit's maximum)
# OI history resolution: 4-hourly (Bybit keeps 5min..1d; 4 h keeps 90 days to 3 calls per symbol and the
# coverage history needs no finer step), valued with the 4-hour mark closes
OI_HISTORY_INTERVAL, OI_HISTORY_MS, KLINE_INTERVAL = "4h", 4 * HOUR_MS, "240"


class BybitAdapter(VenueAdapter):
    key = "bybit"
    display_name = "Bybit v5"
    default_base_url = "https://api.bybit.com"
    capabilities = (
        Capability(FUNDS, "/v5/market/insurance", 60, "none (snapshot)", "pool coin (balance) + USD (value)",
                   "isolated pools update every minute, shared pools daily; one list-level timestamp"),
        Capability(OPEN_INTEREST, "/v5/market/tickers (linear + inverse)", 60,
                   "4-hourly backfill (/v5/market/open-interest, to listing)", "base (linear), USD (inverse)",
                   "one side: singleOpenInterest, else openInterest/2 (documented as both sides); "
                   "backfill valued with /v5/market/mark-price-kline 4-hour closes"),
        Capability(FUNDING, "/v5/market/tickers (linear + inverse)", 60, "full (/v5/market/funding/history)",
                   "rate per interval"),
        Capability(PRICES, "/v5/market/tickers (linear + inverse)", 60, "none", "USD(T) index"),
        Capability(ADL, "/v5/market/adlAlert", 60, "none", "pnlRatio vs insurancePnlRatio"),
    )

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
        self.exchange = use_exact_numbers(make_exchange("bybit", self.config.base_url_str(), self.config.timeout_s))

    async def close(self) -> None:
        await self.exchange.close()

    def _symbol_filter(self) -> set[str] | None:
        return set(self.config.symbols) or None

    async def _tickers(self) -> Batch:
        """Linear then inverse tickers (two calls); an asset priced by a linear perp keeps that price."""
        batch = Batch()
        for category in ("linear", "inverse"):
            payload = await ccxt_call(self.exchange, self.exchange.publicGetV5MarketTickers({"category": category}))
            part = parse_tickers(self.key, payload, self._symbol_filter())
            priced = {p.asset for p in batch.prices}
            part.prices = [p for p in part.prices if p.asset not in priced]
            batch.merge(part)
        return batch

    async def fetch_funds(self, since: datetime | None) -> Batch:
        payload = await ccxt_call(self.exchange, self.exchange.publicGetV5MarketInsurance())
        return parse_insurance(self.key, payload)

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        tickers = await self._tickers()
        return Batch(open_interest=tickers.open_interest, prices=tickers.prices)

    async def fetch_funding(self, since: datetime | None) -> Batch:
        tickers = await self._tickers()
        return Batch(funding=tickers.funding)

    async def fetch_prices(self, since: datetime | None) -> Batch:
        tickers = await self._tickers()
        return Batch(prices=tickers.prices)

    history_page = 200  # rows per open-interest / funding-history page (Bybit's maximum)

    async def _history_contracts(self) -> list[tuple[str, str]]:
        """(category, symbol) of the perpetuals the tickers list (symbols filter), capped at max_symbols."""
        found = []
        for category in ("linear", "inverse"):
            payload = await ccxt_call(self.exchange, self.exchange.publicGetV5MarketTickers({"category": category}))
            found += [(category, oi.symbol) for oi in parse_tickers(self.key, payload, self._symbol_filter()).open_interest]
        return found[: self.config.max_symbols]

    async def _marks(self, category: str, symbol: str, start_ms: int, end_ms: int) -> dict[int, float]:
        """4-hour mark closes over [start_ms, end_ms], 1000 bars per call (newest first, ``end`` paging)."""
        closes: dict[int, float] = {}
        while end_ms >= start_ms:
            params = {"category": category, "symbol": symbol, "interval": KLINE_INTERVAL, "start": start_ms,
                      "end": end_ms, "limit": KLINE_PAGE}
            payload = await self.page(ccxt_request(self.exchange, "publicGetV5MarketMarkPriceKline", params))
            page = parse_mark_price_kline(payload)
            closes.update(page)
            if len(page) < KLINE_PAGE:
                break
            end_ms = min(page) - 1
        return closes

    async def backfill_open_interest(self, since: datetime) -> AsyncIterator[Batch]:
        """4-hourly one-side OI per perpetual back to ``since`` (cursor paging), each point valued with the
        mark close of its own 4 hours (read once per symbol)."""
        since_ms, now_ms = int(since.timestamp() * 1000), int(datetime.now(UTC).timestamp() * 1000)
        for category, symbol in await self.page(self._history_contracts):
            marks = await self._marks(category, symbol, since_ms - OI_HISTORY_MS, now_ms)
            cursor = ""
            found: list[OpenInterest] = []  # one write per symbol: a write per 200-row page costs more than the read
            while True:
                params: dict[str, Any] = {"category": category, "symbol": symbol, "intervalTime": OI_HISTORY_INTERVAL,
                                          "startTime": since_ms, "endTime": now_ms, "limit": self.history_page}
                if cursor:
                    params["cursor"] = cursor
                payload = await self.page(ccxt_request(self.exchange, "publicGetV5MarketOpenInterest", params))
                page = parse_open_interest_history(self.key, payload, marks=marks, bar_ms=OI_HISTORY_MS)
                rows = [r for r in page if r.ts >= since]
                found += rows
                cursor = str(v5_result(payload, "open-interest").get("nextPageCursor") or "")
                if not cursor or not page or len(rows) < len(page):
                    break
            if found:
                yield Batch(open_interest=found)

    async def backfill_funding(self, since: datetime) -> AsyncIterator[Batch]:
        """Settled funding rates per perpetual back to ``since`` (newest first, ``endTime`` paging)."""
        for category, symbol in await self.page(self._history_contracts):
            end_ms = int(datetime.now(UTC).timestamp() * 1000)
            found: list[FundingRate] = []  # one write per symbol
            while True:
                params = {"category": category, "symbol": symbol, "endTime": end_ms, "limit": self.history_page}
                payload = await self.page(ccxt_request(self.exchange, "publicGetV5MarketFundingHistory", params))
                rows = parse_funding_history(self.key, payload)
                kept = [r for r in rows if r.ts >= since]
                found += kept
                if len(rows) < self.history_page or not kept or len(kept) < len(rows):
                    break
                end_ms = int(min(r.ts for r in rows).timestamp() * 1000) - 1
            if found:
                yield Batch(funding=found)

    async def fetch_adl(self, since: datetime | None) -> Batch:
        payload = await ccxt_call(self.exchange, self.exchange.publicGetV5MarketAdlAlert())
        signals = parse_adl_alert(self.key, payload)
        wanted = self._symbol_filter()
        return Batch(adl=[s for s in signals if not wanted or s.scope in wanted])
