"""Binance COIN-M (inverse) perpetuals: OI and funding only. Binance publishes no COIN-M insurance fund.

``/dapi/v1/openInterest`` counts **contracts** of a fixed USD face value (100 USD for BTC, 10 USD for the
others, read from ``exchangeInfo.contractSize``): USD notional = contracts x face value, base = USD / mark.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from collectors.base import FUNDING, OPEN_INTEREST, Batch, Capability, FundingRate, OpenInterest, VenueAdapter
from collectors.ccxt_client import ccxt_call, make_exchange
from collectors.exact_json import use_exact_numbers
from collectors.parsing import dec, num, raw_text, require, require_list, ts_ms
from records.config import VenueConfig

PREFERRED = ("BTCUSD_PERP", "ETHUSD_PERP", "SOLUSD_PERP", "BNBUSD_PERP", "XRPUSD_PERP", "DOGEUSD_PERP")


@dataclass(frozen=True, slots=True)
class CoinmContract:
    symbol: str  # BTCUSD_PERP
    base: str
    margin_asset: str  # settles in the coin
    contract_size: Decimal  # USD per contract


def parse_exchange_info(payload: Any) -> dict[str, CoinmContract]:
    """GET /dapi/v1/exchangeInfo::

        {"symbols": [{"symbol": "BTCUSD_PERP", "pair": "BTCUSD", "contractType": "PERPETUAL",
                      "contractSize": 100, "baseAsset": "BTC", "marginAsset": "BTC",
                      "contractStatus": "TRADING", ...}]}

    Perpetuals that trade, with their USD face value per contract."""
    contracts = {}
    for row in require_list(require(payload, "symbols", "exchangeInfo"), "exchangeInfo.symbols"):
        symbol = str(require(row, "symbol", "exchangeInfo.symbols"))
        if row.get("contractType") != "PERPETUAL" or row.get("contractStatus", "TRADING") != "TRADING":
            continue
        contracts[symbol] = CoinmContract(
            symbol=symbol, base=str(require(row, "baseAsset", symbol)),
            margin_asset=str(require(row, "marginAsset", symbol)),
            contract_size=dec(require(row, "contractSize", symbol), "contractSize"),
        )
    return contracts


def parse_premium_index(venue: str, payload: Any) -> list[FundingRate]:
    """GET /dapi/v1/premiumIndex::

        [{"symbol": "BTCUSD_PERP", "pair": "BTCUSD", "markPrice": "11029.69574559", "indexPrice": "10979.14437500",
          "lastFundingRate": "0.00071003", "nextFundingTime": 1596096000000, "time": 1596094042000},
         {"symbol": "BTCUSD_200925", ..., "lastFundingRate": "", "nextFundingTime": 0, ...}]

    Funding rows for perpetuals; delivery contracts (empty ``lastFundingRate``) are skipped."""
    rows = [payload] if isinstance(payload, dict) else require_list(payload, "premiumIndex")
    result = []
    for row in rows:
        symbol = str(require(row, "symbol", "premiumIndex"))
        rate_raw = row.get("lastFundingRate")
        if rate_raw in (None, ""):
            continue
        next_ts = row.get("nextFundingTime")
        result.append(FundingRate(
            venue=venue, symbol=symbol, ts=ts_ms(require(row, "time", symbol), "time"),
            funding_rate=num(rate_raw, "lastFundingRate"), funding_rate_raw=raw_text(rate_raw),
            next_funding_ts=ts_ms(next_ts, "nextFundingTime") if next_ts else None,
            mark_price=num(require(row, "markPrice", symbol), "markPrice"),
        ))
    return result


def parse_open_interest(venue: str, payload: Any, contract_size: Decimal, mark_price: float | None,
                        base: str | None = None) -> OpenInterest:
    """GET /dapi/v1/openInterest?symbol=BTCUSD_PERP::

        {"symbol": "BTCUSD_200626", "pair": "BTCUSD", "openInterest": "15004", "contractType": "CURRENT_QUARTER",
         "time": 1591261042378}

    ``openInterest`` in contracts; USD = contracts x ``contract_size``; base = USD / mark."""
    symbol = str(require(payload, "symbol", "openInterest"))
    raw = require(payload, "openInterest", symbol)
    usd = float(dec(raw, "openInterest") * contract_size)
    asset = base or str(payload.get("pair") or symbol).split("_")[0].removesuffix("USD")
    return OpenInterest(
        venue=venue, symbol=symbol, ts=ts_ms(require(payload, "time", symbol), "time"), base_asset=asset,
        settle_asset=asset, oi_raw=raw_text(raw), oi_unit="contracts", contract_size=float(contract_size),
        inverse=True, oi_base=usd / mark_price if mark_price else None, oi_usd=usd,
    )


class BinanceCoinmAdapter(VenueAdapter):
    key = "binancecoinm"
    display_name = "Binance COIN-M"
    default_base_url = "https://dapi.binance.com"
    fund_label = "no published fund"
    capabilities = (
        Capability(OPEN_INTEREST, "/dapi/v1/openInterest", 300, "none", "contracts (100 USD BTC, 10 USD others)",
                   "inverse: USD = contracts x face value, base = USD / mark"),
        Capability(FUNDING, "/dapi/v1/premiumIndex", 600, "none", "rate per interval"),
    )

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
        self.exchange = use_exact_numbers(make_exchange("binancecoinm", self.config.base_url_str(), self.config.timeout_s))
        self._contracts: dict[str, CoinmContract] = {}
        self._contracts_lock = asyncio.Lock()

    async def close(self) -> None:
        await self.exchange.close()

    async def _exchange_info(self) -> dict[str, CoinmContract]:
        """Face values never change for a listed contract: read once per process."""
        async with self._contracts_lock:
            if not self._contracts:
                self._contracts = parse_exchange_info(
                    await ccxt_call(self.exchange, self.exchange.dapiPublicGetExchangeInfo()))
            return self._contracts

    async def _funding(self) -> list[FundingRate]:
        rows = parse_premium_index(self.key, await ccxt_call(self.exchange, self.exchange.dapiPublicGetPremiumIndex()))
        return [r for r in rows if not self.config.symbols or r.symbol in self.config.symbols]

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        contracts = await self._exchange_info()
        marks = {f.symbol: f.mark_price for f in await self._funding()}
        wanted = self.config.symbols or sorted(contracts, key=lambda s: (s not in PREFERRED, s))
        batch = Batch()
        for symbol in [s for s in wanted if s in contracts][: self.config.max_symbols]:
            contract = contracts[symbol]
            payload = await ccxt_call(self.exchange, self.exchange.dapiPublicGetOpenInterest({"symbol": symbol}))
            batch.open_interest.append(
                parse_open_interest(self.key, payload, contract.contract_size, marks.get(symbol), contract.base))
        return batch

    async def fetch_funding(self, since: datetime | None) -> Batch:
        return Batch(funding=await self._funding())
