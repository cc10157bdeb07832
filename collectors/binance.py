"""Binance USDⓈ-M futures: insurance-fund groups (snapshot only), per-symbol OI, funding, marks, ADL risk.

Binance publishes no fund history: Backstop's history of it exists only because we record it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from collectors.base import (
    ADL,
    FUNDING,
    FUNDS,
    OPEN_INTEREST,
    PRICES,
    AdlSignal,
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
from collectors.parsing import dec, num, raw_text, require, require_list, to_json, ts_ms
from records.config import VenueConfig

QUOTES = ("USDT", "USDC")
PREFERRED_GROUP_IDS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT")


def base_of(symbol: str) -> str | None:
    """BTCUSDT -> BTC; delivery contracts (ETHUSDT_250926) and unknown quotes -> None."""
    if "_" in symbol:
        return None
    for quote in QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)]
    return None


def group_id(symbols: list[str]) -> str:
    """Binance gives fund groups no id: name a group by its best-known member (stable over time)."""
    for symbol in PREFERRED_GROUP_IDS:
        if symbol in symbols:
            return symbol
    return min(symbols)


def parse_insurance_balance(venue: str, payload: Any) -> Batch:
    """GET /fapi/v1/insuranceBalance, with or without ``symbol``::

        [{"symbols": ["BNBUSDT", "BTCUSDT", ...],
          "assets": [{"asset": "USDT", "marginBalance": "793930579.315848", "updateTime": 1745366402000}, ...]}]

    One fund row per group x asset at its ``updateTime``; membership rows for every symbol."""
    groups = [payload] if isinstance(payload, dict) else require_list(payload, "insuranceBalance")
    batch = Batch()
    for index, group in enumerate(groups):
        where = f"insuranceBalance[{index}]"
        symbols = [str(s) for s in require_list(require(group, "symbols", where), f"{where}.symbols")]
        if not symbols:
            raise PayloadError(f"{where}: empty symbols list")
        pool_id = group_id(symbols)
        for asset_row in require_list(require(group, "assets", where), f"{where}.assets"):
            asset = str(require(asset_row, "asset", f"{where}.assets"))
            raw = require(asset_row, "marginBalance", f"{where}.assets[{asset}]")
            batch.funds.append(FundBalance(
                venue=venue, pool_id=pool_id, asset=asset,
                ts=ts_ms(require(asset_row, "updateTime", f"{where}.assets[{asset}]"), "updateTime"),
                balance=dec(raw, "marginBalance"), balance_raw=raw_text(raw), unit_raw=asset,
            ))
            batch.pool_members.extend(PoolMember(venue, pool_id, symbol, asset) for symbol in symbols)
    return batch


def parse_premium_index(venue: str, payload: Any) -> Batch:
    """GET /fapi/v1/premiumIndex (all symbols)::

        [{"symbol": "BTCUSDT", "markPrice": "11793.63104562", "indexPrice": "11781.80495970",
          "lastFundingRate": "0.00038246", "nextFundingTime": 1597392000000, "time": 1597370495002}]

    Funding rows per perpetual, and one USD price per base asset (the USDT-margined index price)."""
    rows = [payload] if isinstance(payload, dict) else require_list(payload, "premiumIndex")
    batch = Batch()
    priced: set[str] = set()
    for row in rows:
        symbol = str(require(row, "symbol", "premiumIndex"))
        base = base_of(symbol)
        if base is None:
            continue
        ts = ts_ms(require(row, "time", symbol), "time")
        rate_raw = require(row, "lastFundingRate", symbol)
        mark = num(require(row, "markPrice", symbol), "markPrice")
        next_ts = row.get("nextFundingTime")
        batch.funding.append(FundingRate(
            venue=venue, symbol=symbol, ts=ts, funding_rate=num(rate_raw, "lastFundingRate"),
            funding_rate_raw=raw_text(rate_raw), next_funding_ts=ts_ms(next_ts) if next_ts else None,
            interval_h=None, mark_price=mark,
        ))
        if symbol.endswith("USDT") and base not in priced:
            priced.add(base)
            index_price = num(row.get("indexPrice") or row["markPrice"], "indexPrice")
            batch.prices.append(Price(venue, base, ts, index_price, "index"))
    return batch


def parse_open_interest(venue: str, payload: Any, mark_price: float | None) -> OpenInterest:
    """GET /fapi/v1/openInterest?symbol=BTCUSDT::

        {"openInterest": "10659.509", "symbol": "BTCUSDT", "time": 1589437530011}

    ``openInterest`` is in base coin for USDⓈ-M; USD notional = base x mark."""
    symbol = str(require(payload, "symbol", "openInterest"))
    raw = require(payload, "openInterest", symbol)
    oi_base = num(raw, "openInterest")
    base = base_of(symbol) or symbol
    settle = "USDC" if symbol.endswith("USDC") else "USDT"
    return OpenInterest(
        venue=venue, symbol=symbol, ts=ts_ms(require(payload, "time", symbol), "time"), base_asset=base,
        settle_asset=settle, oi_raw=raw_text(raw), oi_unit="base", contract_size=1.0, inverse=False,
        oi_base=oi_base, oi_usd=oi_base * mark_price if mark_price else None,
    )


def parse_adl_risk(venue: str, payload: Any) -> list[AdlSignal]:
    """GET /fapi/v1/symbolAdlRisk::

        [{"symbol": "BTCUSDT", "adlRisk": "low", "updateTime": 1597370495002}]"""
    rows = [payload] if isinstance(payload, dict) else require_list(payload, "symbolAdlRisk")
    return [
        AdlSignal(venue=venue, scope=str(require(r, "symbol", "symbolAdlRisk")),
                  ts=ts_ms(require(r, "updateTime", "symbolAdlRisk"), "updateTime"),
                  signal_type="binance_adl_risk", level=str(require(r, "adlRisk", "symbolAdlRisk")).lower(),
                  detail=to_json(r))
        for r in rows
    ]


def parse_klines(venue: str, asset: str, payload: Any) -> list[Price]:
    """GET /fapi/v1/klines (1d): ``[[openTime, open, high, low, close, volume, closeTime, ...]]``;
    the close is stamped at the candle's open time (00:00 UTC), where daily funds are stamped."""
    return [
        Price(venue, asset, ts_ms(row[0], "openTime"), num(row[4], "close"), "ohlcv_1d")
        for row in require_list(payload, "klines")
    ]


class BinanceAdapter(VenueAdapter):
    key = "binance"
    display_name = "Binance USD-M"  # not "USDⓈ-M": the Ⓢ is missing from common fonts (a box on screen)
    default_base_url = "https://fapi.binance.com"
    capabilities = (
        Capability(FUNDS, "/fapi/v1/insuranceBalance", 86_400, "none (snapshot)", "per asset (USDT, USDC, BTC, BNFCR)",
                   "fund groups share one fund; update cadence UNCONFIRMED (looks daily)"),
        Capability(OPEN_INTEREST, "/fapi/v1/openInterest", 300, "none", "base coin"),
        Capability(FUNDING, "/fapi/v1/premiumIndex", 600, "none", "rate per interval"),
        Capability(PRICES, "/fapi/v1/premiumIndex + klines", 300, "daily candles", "USD(T)"),
        Capability(ADL, "/fapi/v1/symbolAdlRisk", 1_800, "none", "high/medium/low"),
    )

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
        self.exchange = use_exact_numbers(make_exchange("binanceusdm", self.config.base_url_str(), self.config.timeout_s))
        self._marks: dict[str, float] = {}

    async def close(self) -> None:
        await self.exchange.close()

    async def _premium(self) -> Batch:
        payload = await ccxt_call(self.exchange, self.exchange.fapiPublicGetPremiumIndex())
        batch = parse_premium_index(self.key, payload)
        self._marks = {f.symbol: f.mark_price for f in batch.funding if f.mark_price}
        return batch

    def _symbols(self) -> list[str]:
        wanted = self.config.symbols or sorted(self._marks, key=lambda s: (s != "BTCUSDT", s != "ETHUSDT", s))
        return [s for s in wanted if base_of(s)][: self.config.max_symbols]

    async def fetch_funds(self, since: datetime | None) -> Batch:
        payload = await ccxt_call(self.exchange, self.exchange.fapiPublicGetInsuranceBalance())
        return parse_insurance_balance(self.key, payload)

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        premium = await self._premium()
        batch = Batch(prices=premium.prices)
        for symbol in self._symbols():  # one call per symbol: ccxt's rate limiter paces them
            payload = await ccxt_call(self.exchange, self.exchange.fapiPublicGetOpenInterest({"symbol": symbol}))
            batch.open_interest.append(parse_open_interest(self.key, payload, self._marks.get(symbol)))
        return batch

    async def fetch_funding(self, since: datetime | None) -> Batch:
        return await self._premium()

    async def fetch_prices(self, since: datetime | None) -> Batch:
        premium = await self._premium()
        return Batch(prices=premium.prices)

    async def fetch_adl(self, since: datetime | None) -> Batch:
        payload = await ccxt_call(self.exchange, self.exchange.fapiPublicGetSymbolAdlRisk())
        return Batch(adl=parse_adl_risk(self.key, payload))

    async def backfill_prices(self, since: datetime) -> AsyncIterator[Batch]:
        """Daily candles of each base asset (for valuing other venues' fund history in USD)."""
        if not self._marks:
            await self.page(self._premium)
        assets = ["BTC", "ETH", "BNB", "SOL", "XRP", "DOGE"]
        start_ms = int(since.timestamp() * 1000)
        for asset in assets:
            symbol = f"{asset}USDT"
            if symbol not in self._marks:
                continue
            cursor = start_ms
            while True:
                params = {"symbol": symbol, "interval": "1d", "startTime": cursor, "limit": 500}
                payload = await self.page(
                    lambda params=params: ccxt_call(self.exchange, self.exchange.fapiPublicGetKlines(params)))
                prices = parse_klines(self.key, asset, payload)
                if not prices:
                    break
                yield Batch(prices=prices)
                last = prices[-1].ts + timedelta(days=1)
                if len(prices) < 500:
                    break
                cursor = int(last.timestamp() * 1000)


