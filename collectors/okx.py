"""OKX v5: insurance ("security") fund per instType x instFamily with its full published history, open
interest, funding (current + settled history) and mark prices. Reference: shared/exchange-api §3.3.

Decisions, each because of what OKX publishes:

* **Pools.** One fund per ``instType`` x ``instFamily``: ``pool_id = "SWAP:BTC-USDT"``. The families come
  from ``config.symbols`` (``BTC-USDT`` = that family's SWAP and FUTURES funds, ``BTC-USDT-SWAP`` = SWAP
  only, ``BTC-USD-250926`` = FUTURES only) or ``DEFAULT_FAMILIES``, kept only where the venue lists
  instruments (``/api/v5/public/instruments``), so a family OKX does not trade is never queried (it would
  be an error). Members of a pool are its live contracts of that instType.
* **Rows.** ``details[].type``: ``regular_update`` -> FundBalance (``balance`` in ``ccy``, source
  "history"); ``liquidation_balance_deposit`` / ``bankruptcy_loss`` / ``platform_revenue`` -> FundFlow
  (``amount`` = ``amt`` as served, sign included: the reference does not say whether a loss is served
  negative, so no sign is imposed; ``balance_after`` = ``balance``); ``adl`` -> FundFlow("adl") *and* an
  AdlSignal("okx_adl", level = ``adlType``, value = ``balance``, detail with ``maxBal``/``maxBalTs``).
  Unknown types are kept as flows under their own name rather than dropped.
* **``total`` is not stored.** It is "total balance of security fund, in USD", but the only example has a
  total far above its family's balance (platform-wide, UNCONFIRMED) and carries no timestamp of its own.
  Stored as a ``platform:total`` fund row it would be summed with the per-family pools by any venue total
  (double counting the whole fund), and its time would be invented. Per-pool USD values come from
  the writer's price valuation instead (USDT = 1, BTC/ETH from collected prices).
* **History.** Rows are newest first with ts cursors: ``after`` = older than ts, ``before`` = newer than
  ts, ``limit`` <= 100. Polling asks ``before = since - 1`` (the newest stored ts is asked again, so
  rows sharing it are not lost; the writer drops repeats) and walks older pages with ``after`` while a
  page is full. Backfill walks ``after`` from the newest row back to ``since``. OKX stamps the daily
  deposit/loss/revenue rows and the snapshot at ~08:00 UTC, so several rows can share one ts and a
  strict ``after = oldest`` could skip those cut off by a page end: the walk asks ``after = oldest + 1``
  (the oldest ts again) and keeps only rows it has not seen; a page with nothing new ends the walk.
  A venue-wide ``since`` means a newly configured family starts from the newest row: run a backfill.
* **OI.** ``oi`` is contracts (kept raw, unit "contracts"); ``oi_base`` from ``oiCcy`` (base coin);
  ``oi_usd`` from ``oiUsd``. ``contract_size`` is the instrument's ``ctVal`` (base per contract for
  linear, USD per contract for inverse/coin-margined such as BTC-USD-SWAP = 100 USD); for an instrument
  missing from the instrument list it is derived (``oiCcy/oi`` linear, ``oiUsd/oi`` inverse). Backfill
  reads the rubik daily bars (``period=1Dutc``, ``[ts, oi, oiCcy, oiUsd]``, walked back with ``end``)
  of each configured swap; they land in the same table at the bar's 00:00 UTC start.
* **Funding.** One ``/public/funding-rate?instId=`` call per configured swap (``instId=ANY`` is
  UNCONFIRMED); the row is stamped at the response ``ts`` (like the other venues' current funding) with
  ``next_funding_ts`` = ``fundingTime`` (when this rate settles). Backfilled history rows are stamped at
  their ``fundingTime`` with the settled ``realizedRate`` (``fundingRate`` when absent).
* **Prices.** One ``/public/mark-price?instType=SWAP`` call: one USD price per base asset, from its
  USDT-margined swap (else its coin-margined USD swap).

The parsers (each with its documented sample payload) are in ``collectors.okx_parsers``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

from collectors.base import (
    FUNDING,
    FUNDS,
    OPEN_INTEREST,
    PRICES,
    Batch,
    Capability,
    FundingRate,
    OpenInterest,
    PoolMember,
    Price,
    VenueAdapter,
)
from collectors.ccxt_client import ccxt_call, make_exchange
from collectors.exact_json import use_exact_numbers
from collectors.okx_parsers import (
    Instrument,
    family_of,
    inst_type_of,
    insurance_entries,
    parse_fund_details,
    parse_funding_history,
    parse_funding_rate,
    parse_instruments,
    parse_mark_prices,
    parse_open_interest,
    parse_open_interest_history,
    pool_id_of,
)
from collectors.parsing import require
from records.config import VenueConfig

INST_TYPES = ("SWAP", "FUTURES")
DEFAULT_FAMILIES = ("BTC-USDT", "ETH-USDT", "SOL-USDT", "BTC-USD", "ETH-USD")
FUND_PAGE_LIMIT = 100  # OKX maximum for /public/insurance-fund
FUNDING_PAGE_LIMIT = 100  # /public/funding-rate-history allows up to 400
OI_HISTORY_LIMIT = 100  # rubik open-interest-history maximum
OI_HISTORY_PERIOD = "1Dutc"  # daily bars opening 00:00 UTC (OKX keeps the latest 1,440 rows)
INSTRUMENTS_TTL_S = 3_600.0  # futures are listed and expire: refresh the instrument list hourly


def _detail_key(pool_id: str, row: dict[str, Any]) -> tuple[str, ...]:
    return (pool_id, *(str(row.get(k, "")) for k in ("ts", "type", "ccy", "balance", "amt", "adlType")))


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


class OkxAdapter(VenueAdapter):
    key = "okx"
    display_name = "OKX"
    default_base_url = "https://www.okx.com"
    capabilities = (
        Capability(FUNDS, "/api/v5/public/insurance-fund", 86_400, "full (ts cursors; depth UNCONFIRMED)",
                   "per ccy (USDT, BTC, ETH, ...)",
                   "one fund per instType x instFamily; daily snapshot ~08:00 UTC since 2026-06-09; "
                   "typed deposit/loss/revenue/adl rows; ADL rows also stored as adl signals"),
        Capability(OPEN_INTEREST, "/api/v5/public/open-interest", 300, "daily bars (rubik, latest 1,440)",
                   "contracts (+ base, USD)"),
        Capability(FUNDING, "/api/v5/public/funding-rate", 600, "3 months (funding-rate-history)",
                   "rate per interval"),
        Capability(PRICES, "/api/v5/public/mark-price", 300, "none", "USD(T)"),
    )

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
        self.exchange = use_exact_numbers(make_exchange("okx", self.config.base_url_str(), self.config.timeout_s))
        self._instrument_cache: dict[str, Instrument] = {}
        self._instruments_at = float("-inf")
        self._instrument_lock = asyncio.Lock()

    async def close(self) -> None:
        await self.exchange.close()

    # -- instruments and the configured set ---------------------------------------------------------
    async def _instruments(self) -> dict[str, Instrument]:
        """SWAP + FUTURES instruments, cached for ``INSTRUMENTS_TTL_S`` (jobs run concurrently: one load)."""
        async with self._instrument_lock:
            if time.monotonic() - self._instruments_at > INSTRUMENTS_TTL_S:
                loaded: dict[str, Instrument] = {}
                for inst_type in INST_TYPES:
                    payload = await ccxt_call(self.exchange, self.exchange.publicGetPublicInstruments(
                        {"instType": inst_type}))
                    loaded.update(parse_instruments(payload))
                self._instrument_cache = loaded
                self._instruments_at = time.monotonic()
            return self._instrument_cache

    def _wanted(self) -> set[tuple[str | None, str]]:
        """(instType or None = both, instFamily) pairs from the config, else the default families."""
        if not self.config.symbols:
            return {(None, family) for family in DEFAULT_FAMILIES}
        return {(inst_type_of(symbol), family_of(symbol)) for symbol in self.config.symbols}

    def _is_wanted(self, inst_type: str | None, family: str) -> bool:
        wanted = self._wanted()
        return (None, family) in wanted or (inst_type, family) in wanted

    async def _pools(self) -> dict[str, list[str]]:
        """pool_id -> member contracts, for the wanted families OKX actually lists."""
        pools: dict[str, list[str]] = {}
        for instrument in (await self._instruments()).values():
            if self._is_wanted(instrument.inst_type, instrument.family):
                pools.setdefault(f"{instrument.inst_type}:{instrument.family}", []).append(instrument.inst_id)
        return {pool_id: sorted(members) for pool_id, members in sorted(pools.items())}

    async def _swaps(self) -> list[str]:
        instruments = await self._instruments()
        swaps = [i.inst_id for i in instruments.values() if i.inst_type == "SWAP" and self._is_wanted("SWAP", i.family)]
        return sorted(swaps, key=lambda s: (not s.startswith("BTC-"), not s.startswith("ETH-"), s))[
            : self.config.max_symbols]

    # -- insurance fund -----------------------------------------------------------------------------
    async def _fund_pages(self, pool_id: str, newer_than_ms: int | None, older_limit_ms: int | None,
                          one_page: bool = False, in_walk: bool = False,
                          ) -> AsyncIterator[list[tuple[str, dict[str, Any]]]]:
        """Walk one pool newest -> oldest; yields the rows not seen on earlier pages, as (pool_id, row).
        A backfill (``in_walk``) retries each page at its cursor; a poll is retried whole by the runner."""
        inst_type, family = pool_id.split(":", 1)
        seen: set[tuple[str, ...]] = set()
        cursor: int | None = None
        while True:
            params = {"instType": inst_type, "instFamily": family, "limit": str(FUND_PAGE_LIMIT)}
            if newer_than_ms is not None:
                params["before"] = str(newer_than_ms)
            if cursor is not None:
                params["after"] = str(cursor)
            async def request(params: dict[str, str] = params) -> Any:
                return await ccxt_call(self.exchange, self.exchange.publicGetPublicInsuranceFund(params))

            payload = await (self.page(request) if in_walk else request())
            rows = [(pool_id_of(entry), row) for entry in insurance_entries(payload) for row in entry["details"]]
            fresh = [(pid, row) for pid, row in rows if _detail_key(pid, row) not in seen]
            if not fresh:
                return
            seen.update(_detail_key(pid, row) for pid, row in fresh)
            yield fresh
            oldest = min(int(require(row, "ts", pool_id)) for _, row in rows)
            if one_page or len(rows) < FUND_PAGE_LIMIT or (older_limit_ms is not None and oldest < older_limit_ms):
                return
            next_cursor = oldest + 1  # ask for the oldest ts again: rows sharing it may be cut by the page end
            cursor = oldest if next_cursor == cursor else next_cursor  # a full page of one ts: step past it

    def _fund_batch(self, rows: list[tuple[str, dict[str, Any]]], members: dict[str, list[str]]) -> Batch:
        batch = Batch()
        by_pool: dict[str, list[dict[str, Any]]] = {}
        for pool_id, row in rows:
            by_pool.setdefault(pool_id, []).append(row)
        for pool_id, details in by_pool.items():
            parsed = parse_fund_details(self.key, pool_id, details)
            assets = sorted({f.asset for f in parsed.funds} | {f.asset for f in parsed.fund_flows})
            parsed.pool_members = [PoolMember(self.key, pool_id, symbol, asset)
                                   for asset in assets for symbol in members.get(pool_id, [])]
            batch.merge(parsed)
        return batch

    async def fetch_funds(self, since: datetime | None) -> Batch:
        """First poll: the newest page per pool. Later polls: every row at or after ``since``."""
        pools = await self._pools()
        batch = Batch()
        for pool_id in pools:  # sequential: OKX allows 10 req / 2 s and ccxt's limiter paces them anyway
            pages = self._fund_pages(pool_id, _ms(since) - 1 if since else None, None, one_page=since is None)
            async for rows in pages:
                batch.merge(self._fund_batch(rows, pools))
        return batch

    async def backfill_funds(self, since: datetime) -> AsyncIterator[Batch]:
        """Every pool's history back to ``since`` through the ``after`` cursor, one batch per page."""
        pools = await self.page(self._pools)
        for pool_id in pools:
            async for rows in self._fund_pages(pool_id, None, _ms(since), in_walk=True):
                yield self._fund_batch(rows, pools)

    # -- open interest, prices, funding ---------------------------------------------------------------
    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        instruments = await self._instruments()
        batch = Batch()
        for inst_type in INST_TYPES:  # one call per instType returns every contract of it
            payload = await ccxt_call(self.exchange, self.exchange.publicGetPublicOpenInterest({"instType": inst_type}))
            batch.open_interest += [
                oi for oi in parse_open_interest(self.key, payload, instruments)
                if self._is_wanted(inst_type_of(oi.symbol), family_of(oi.symbol))
            ]
        return batch

    async def _marks(self) -> tuple[list[Price], dict[str, float]]:
        payload = await ccxt_call(self.exchange, self.exchange.publicGetPublicMarkPrice({"instType": "SWAP"}))
        return parse_mark_prices(self.key, payload)

    async def fetch_prices(self, since: datetime | None) -> Batch:
        prices, _ = await self._marks()
        return Batch(prices=prices)

    async def fetch_funding(self, since: datetime | None) -> Batch:
        prices, marks = await self._marks()
        batch = Batch(prices=prices)
        for inst_id in await self._swaps():  # one call per swap: ccxt's limiter paces them
            payload = await ccxt_call(self.exchange, self.exchange.publicGetPublicFundingRate({"instId": inst_id}))
            batch.funding += parse_funding_rate(self.key, payload, marks)
        return batch

    async def backfill_funding(self, since: datetime) -> AsyncIterator[Batch]:
        """Settled funding of each configured swap back to ``since`` (OKX keeps about 3 months)."""
        for inst_id in await self.page(self._swaps):
            async def page(cursor: int | None, inst_id: str = inst_id) -> list[FundingRate]:
                params = {"instId": inst_id, "limit": str(FUNDING_PAGE_LIMIT)}
                if cursor is not None:
                    params["after"] = str(cursor)
                payload = await self.page(lambda: ccxt_call(
                    self.exchange, self.exchange.publicGetPublicFundingRateHistory(params)))
                return parse_funding_history(self.key, payload)

            async for rows in _walk_back(page, _ms(since), FUNDING_PAGE_LIMIT):
                yield Batch(funding=rows)

    async def backfill_open_interest(self, since: datetime) -> AsyncIterator[Batch]:
        """Daily OI of each configured swap back to ``since`` (rubik statistics, ``end`` cursor)."""
        instruments = await self.page(self._instruments)
        for inst_id in await self.page(self._swaps):
            async def page(cursor: int | None, inst_id: str = inst_id) -> list[OpenInterest]:
                params = {"instId": inst_id, "period": OI_HISTORY_PERIOD, "limit": str(OI_HISTORY_LIMIT)}
                if cursor is not None:
                    params["end"] = str(cursor)
                payload = await self.page(lambda: ccxt_call(
                    self.exchange, self.exchange.publicGetRubikStatContractsOpenInterestHistory(params)))
                return parse_open_interest_history(self.key, inst_id, payload, instruments)

            async for rows in _walk_back(page, _ms(since), OI_HISTORY_LIMIT):
                yield Batch(open_interest=rows)


async def _walk_back(fetch: Callable[[int | None], Awaitable[list[Any]]], since_ms: int,
                     limit: int) -> AsyncIterator[list[Any]]:
    """Pages of a newest-first series with one row per ts (funding, OI bars), walked back with a strict
    "older than" cursor until ``since_ms``, a short page, or a cursor the venue did not honour."""
    cursor: int | None = None
    while True:
        rows = await fetch(cursor)
        if not rows:
            return
        yield rows
        oldest = min(_ms(row.ts) for row in rows)
        if len(rows) < limit or oldest < since_ms or (cursor is not None and oldest >= cursor):
            return
        cursor = oldest
