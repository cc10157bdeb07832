"""MEXC futures: risk fund ("risk_reverse") per contract, current + paged history; OI and funding from the
all-contract ticker (``holdVol`` contracts x ``contractSize`` from the contract detail).

MEXC serves fund balances as long JSON numbers (``425018.32968325152473812``): the client decodes them as
``Decimal`` (``collectors.exact_json``) so the stored balance is exactly what MEXC wrote.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from collectors.base import (
    FUNDING,
    FUNDS,
    OPEN_INTEREST,
    PRICES,
    Batch,
    Capability,
    FundBalance,
    FundingRate,
    OpenInterest,
    PoolMember,
    Price,
    VenueAdapter,
)
from collectors.ccxt_client import ccxt_call, make_exchange
from collectors.errors import PayloadError
from collectors.exact_json import use_exact_numbers
from collectors.parsing import (
    dec,
    no_usd_rate_note,
    norm_asset,
    num,
    opt_num,
    raw_text,
    require,
    require_list,
    ts_ms,
    usd_quote,
)
from records.config import VenueConfig

HISTORY_PAGE_SIZE = 100  # MEXC's maximum
DETAIL_REFRESH_S = 3_600
PREFERRED = ("BTC_USDT", "ETH_USDT", "SOL_USDT", "BTC_USD", "ETH_USD")


def _ok_data(payload: Any, where: str) -> Any:
    """MEXC contract API: ``{"success": true, "code": 0, "data": ...}``."""
    if require(payload, "success", where) is not True:
        raise PayloadError(f"{where}: success={payload.get('success')!r} code={payload.get('code')!r}")
    return require(payload, "data", where)


@dataclass(frozen=True, slots=True)
class MexcContract:
    symbol: str  # BTC_USDT, BTC_USD
    base: str
    quote: str
    settle: str
    contract_size: Decimal  # base per contract (linear) / quote (USD) per contract (inverse)
    inverse: bool


def parse_contract_detail(payload: Any) -> dict[str, MexcContract]:
    """GET /api/v1/contract/detail::

        {"success": true, "code": 0, "data": [{"symbol": "BTC_USDT", "baseCoin": "BTC", "quoteCoin": "USDT",
          "settleCoin": "USDT", "contractSize": 0.0001, "state": 0, ...}]}

    Inverse when the settle coin is not the quote coin (BTC_USD settles in BTC; ``contractSize`` in USD).
    Contracts not in state 0 (enabled) are skipped."""
    data = _ok_data(payload, "contract/detail")
    rows = [data] if isinstance(data, dict) else require_list(data, "contract/detail.data")
    contracts = {}
    for row in rows:
        symbol = str(require(row, "symbol", "contract/detail.data"))
        if int(row.get("state", 0)) != 0:
            continue
        quote = norm_asset(str(require(row, "quoteCoin", symbol)))
        settle = norm_asset(str(require(row, "settleCoin", symbol)))
        contracts[symbol] = MexcContract(
            symbol=symbol, base=norm_asset(str(require(row, "baseCoin", symbol))), quote=quote, settle=settle,
            contract_size=dec(require(row, "contractSize", symbol), "contractSize"), inverse=settle != quote,
        )
    return contracts


def parse_risk_reverse(venue: str, payload: Any) -> Batch:
    """GET /api/v1/contract/risk_reverse (all contracts)::

        {"success": true, "code": 0, "data": [{"symbol": "BTC_USDT", "currency": "USDT",
          "available": 425018.32968325152473812, "timestamp": 1609831395734}, ...]}

    One fund per contract, ``available`` in ``currency`` (USDT; the coin for inverse contracts)."""
    data = _ok_data(payload, "risk_reverse")
    rows = [data] if isinstance(data, dict) else require_list(data, "risk_reverse.data")
    batch = Batch()
    for row in rows:
        symbol = str(require(row, "symbol", "risk_reverse.data"))
        unit = str(require(row, "currency", symbol))
        asset = norm_asset(unit)
        raw = require(row, "available", symbol)
        batch.funds.append(FundBalance(
            venue=venue, pool_id=symbol, asset=asset, ts=ts_ms(require(row, "timestamp", symbol), "timestamp"),
            balance=dec(raw, "available"), balance_raw=raw_text(raw), unit_raw=unit,
        ))
        batch.pool_members.append(PoolMember(venue, symbol, symbol, asset))
    return batch


@dataclass(frozen=True, slots=True)
class HistoryPage:
    rows: list[FundBalance]
    current_page: int
    total_page: int
    reached_since: bool

    @property
    def last(self) -> bool:
        return self.reached_since or self.current_page >= self.total_page or not self.rows


def parse_risk_reverse_history(venue: str, payload: Any, since: datetime | None = None) -> HistoryPage:
    """GET /api/v1/contract/risk_reverse/history?symbol=BTC_USDT&page_num=1&page_size=100::

        {"success": true, "code": 0, "data": {"pageSize": 2, "totalCount": 42, "totalPage": 21, "currentPage": 1,
          "resultList": [{"symbol": "BTC_USDT", "currency": "USDT", "available": 424288.053161046680168662,
                          "snapshotTime": 1609819200000}, ...]}}

    Snapshots (4-hourly in the documented example), newest first; points older than ``since`` dropped."""
    data = _ok_data(payload, "risk_reverse/history")
    rows = []
    reached_since = False
    for index, row in enumerate(require_list(require(data, "resultList", "risk_reverse/history"), "resultList")):
        where = f"resultList[{index}]"
        ts = ts_ms(require(row, "snapshotTime", where), "snapshotTime")
        if since is not None and ts < since:
            reached_since = True
            continue
        unit = str(require(row, "currency", where))
        raw = require(row, "available", where)
        rows.append(FundBalance(
            venue=venue, pool_id=str(require(row, "symbol", where)), asset=norm_asset(unit), ts=ts,
            balance=dec(raw, "available"), balance_raw=raw_text(raw), unit_raw=unit, source="history",
        ))
    return HistoryPage(rows, int(require(data, "currentPage", "risk_reverse/history")),
                       int(require(data, "totalPage", "risk_reverse/history")), reached_since)


def parse_ticker(venue: str, payload: Any, contracts: dict[str, MexcContract]) -> Batch:
    """GET /api/v1/contract/ticker (all contracts, or one with ``symbol``)::

        {"success": true, "code": 0, "data": {"symbol": "BTC_USDT", "lastPrice": 31199, "holdVol": 55102960,
          "indexPrice": 31016.3, "fairPrice": 31199.5, "fundingRate": 0.001, "timestamp": 1609831334016, ...}}

    ``holdVol`` is OI in **contracts** (x ``contractSize``: base for linear, USD for inverse); whether it
    counts one side or both is UNCONFIRMED (stored as served). ``fairPrice`` is the mark. One USD index
    price per base from the USDT-quoted contracts. Contracts missing from ``contracts`` get funding only."""
    data = _ok_data(payload, "contract/ticker")
    rows = [data] if isinstance(data, dict) else require_list(data, "contract/ticker.data")
    batch = Batch()
    priced: set[str] = set()
    for row in rows:
        symbol = str(require(row, "symbol", "contract/ticker.data"))
        ts = ts_ms(require(row, "timestamp", symbol), "timestamp")
        mark = opt_num(row.get("fairPrice"), "fairPrice")
        rate = row.get("fundingRate")
        if rate is not None:
            batch.funding.append(FundingRate(
                venue=venue, symbol=symbol, ts=ts, funding_rate=num(rate, "fundingRate"),
                funding_rate_raw=raw_text(rate), mark_price=mark,
            ))
        contract = contracts.get(symbol)
        hold = row.get("holdVol")
        if contract is not None and hold is not None:
            held = dec(hold, "holdVol")
            if contract.inverse:  # contracts x contractSize = quote units; / quote mark = base
                oi_quote = float(held * contract.contract_size)
                oi_base = oi_quote / mark if mark else None
                oi_usd: float | None = oi_quote
            else:
                oi_base = float(held * contract.contract_size)
                oi_usd = oi_base * mark if mark else None
            usd_quoted = usd_quote(contract.quote)  # a EUR/BTC-quoted mark is not a USD price
            batch.open_interest.append(OpenInterest(
                venue=venue, symbol=symbol, ts=ts, base_asset=contract.base, settle_asset=contract.settle,
                oi_raw=raw_text(hold), oi_unit="contracts", contract_size=float(contract.contract_size),
                inverse=contract.inverse, oi_base=oi_base, oi_usd=oi_usd if usd_quoted else None,
                oi_usd_note=None if usd_quoted else no_usd_rate_note(contract.quote),
            ))
        index = row.get("indexPrice")
        base = symbol.split("_")[0]
        if symbol.endswith("_USDT") and index not in (None, "") and base not in priced:
            priced.add(base)
            batch.prices.append(Price(venue, norm_asset(base), ts, num(index, "indexPrice"), "index"))
    return batch


class MexcAdapter(VenueAdapter):
    key = "mexc"
    display_name = "MEXC futures"
    default_base_url = "https://api.mexc.com"  # ccxt's contract host (also served as contract.mexc.com)
    fund_label = "Risk fund (MEXC's insurance fund)"
    capabilities = (
        Capability(FUNDS, "/api/v1/contract/risk_reverse (+ /history)", 14_400, "full (paged snapshots)",
                   "per contract: USDT, or the coin for inverse", "history snapshots 4-hourly (UNCONFIRMED cadence)"),
        Capability(OPEN_INTEREST, "/api/v1/contract/ticker holdVol x detail contractSize", 300, "none", "contracts",
                   "one side or both sides UNCONFIRMED: stored as served; a contract not quoted in "
                   "USD/USDT/USDC gets no USD value (reason in oi_usd_note)"),
        Capability(FUNDING, "/api/v1/contract/ticker", 600, "none", "rate per interval"),
        Capability(PRICES, "/api/v1/contract/ticker", 300, "none", "USD(T) index"),
    )

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
        self.exchange = use_exact_numbers(
            make_exchange("mexc", self.config.base_url_str(), self.config.timeout_s))
        self._contracts: dict[str, MexcContract] = {}
        self._detail_at = 0.0
        self._detail_lock = asyncio.Lock()

    async def close(self) -> None:
        await self.exchange.close()

    def _keep(self, symbol: str) -> bool:
        return not self.config.symbols or symbol in self.config.symbols

    async def _detail(self, refresh: bool = False) -> dict[str, MexcContract]:
        """Contract sizes never change for a listed contract: read once, and again (at most hourly) when a
        ticker names a contract we do not know yet. ccxt charges this call 100 units (MEXC limits it), so
        concurrent jobs share one fetch."""
        async with self._detail_lock:
            stale = time.monotonic() - self._detail_at > DETAIL_REFRESH_S
            if not self._contracts or (refresh and stale):
                self._contracts = parse_contract_detail(
                    await ccxt_call(self.exchange, self.exchange.contractPublicGetDetail()))
                self._detail_at = time.monotonic()
            return self._contracts

    async def _ticker(self, with_oi: bool) -> Batch:
        """All tickers; OI needs contract sizes (the detail call), funding and prices do not."""
        contracts = await self._detail() if with_oi else {}
        payload = await ccxt_call(self.exchange, self.exchange.contractPublicGetTicker())
        batch = parse_ticker(self.key, payload, contracts)
        if with_oi and {f.symbol for f in batch.funding} - contracts.keys():
            refreshed = await self._detail(refresh=True)
            if refreshed is not contracts:
                batch = parse_ticker(self.key, payload, refreshed)
        batch.open_interest = [r for r in batch.open_interest if self._keep(r.symbol)]
        batch.funding = [r for r in batch.funding if self._keep(r.symbol)]
        return batch

    async def fetch_funds(self, since: datetime | None) -> Batch:
        batch = parse_risk_reverse(self.key, await ccxt_call(self.exchange, self.exchange.contractPublicGetRiskReverse()))
        batch.funds = [f for f in batch.funds if self._keep(f.pool_id)]
        batch.pool_members = [m for m in batch.pool_members if self._keep(m.pool_id)]
        return batch

    async def backfill_funds(self, since: datetime) -> AsyncIterator[Batch]:
        """Walk each contract's history pages (newest first) back to ``since`` or the last page."""
        current = await self.page(lambda: self.fetch_funds(None))
        members = {m.pool_id: m for m in current.pool_members}
        symbols = sorted(members, key=lambda s: (s not in PREFERRED, PREFERRED.index(s) if s in PREFERRED else 0, s))
        for symbol in symbols[: self.config.max_symbols]:
            page = 1
            while True:
                params = {"symbol": symbol, "page_num": page, "page_size": HISTORY_PAGE_SIZE}
                payload = await self.page(lambda params=params: ccxt_call(
                    self.exchange, self.exchange.contractPublicGetRiskReverseHistory(params)))
                history = parse_risk_reverse_history(self.key, payload, since)
                yield Batch(funds=history.rows, pool_members=[members[symbol]])
                if history.last:
                    break
                page = history.current_page + 1

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        batch = await self._ticker(with_oi=True)
        return Batch(open_interest=batch.open_interest, prices=batch.prices)

    async def fetch_funding(self, since: datetime | None) -> Batch:
        return Batch(funding=(await self._ticker(with_oi=False)).funding)

    async def fetch_prices(self, since: datetime | None) -> Batch:
        return Batch(prices=(await self._ticker(with_oi=False)).prices)
