"""Bitget USDT-margined perpetuals: OI and funding only (no public insurance-fund endpoint was found).

OI (``/api/v2/mix/market/open-interest``) is in **base coin** per symbol; the USD notional uses the mark
from the all-symbol tickers. Funding for every symbol comes from one ``current-fund-rate`` call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from collectors.base import FUNDING, OPEN_INTEREST, Batch, Capability, FundingRate, OpenInterest, VenueAdapter
from collectors.ccxt_client import ccxt_call, make_exchange
from collectors.errors import PayloadError
from collectors.exact_json import use_exact_numbers
from collectors.parsing import num, opt_num, raw_text, require, require_list, ts_ms

PRODUCT_TYPE = "USDT-FUTURES"
PREFERRED = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT")


def _ok_data(payload: Any, where: str) -> Any:
    """Bitget v2: ``{"code": "00000", "msg": "success", "requestTime": ..., "data": ...}``."""
    if str(require(payload, "code", where)) != "00000":
        raise PayloadError(f"{where}: code {payload.get('code')!r}: {payload.get('msg')!r}")
    return require(payload, "data", where)


def base_of(symbol: str) -> str:
    return symbol.removesuffix("USDT") if symbol.endswith("USDT") and len(symbol) > 4 else symbol


def parse_tickers(payload: Any) -> dict[str, float]:
    """GET /api/v2/mix/market/tickers?productType=USDT-FUTURES::

        {"code": "00000", "data": [{"symbol": "BTCUSDT", "markPrice": "104824.2", "indexPrice": "104881.95",
          "fundingRate": "-0.000014", "holdingAmount": "7452.6421", "ts": "1750332210370", ...}]}

    Mark price per symbol (for OI and funding rows)."""
    marks = {}
    for row in require_list(_ok_data(payload, "tickers"), "tickers.data"):
        symbol = str(require(row, "symbol", "tickers.data"))
        mark = opt_num(row.get("markPrice"), "markPrice")
        if mark:
            marks[symbol] = mark
    return marks


def parse_open_interest(venue: str, payload: Any, mark_price: float | None) -> list[OpenInterest]:
    """GET /api/v2/mix/market/open-interest?symbol=BTCUSDT&productType=USDT-FUTURES::

        {"code": "00000", "requestTime": 1695796780343,
         "data": {"openInterestList": [{"symbol": "BTCUSDT", "size": "34278.06"}], "ts": "1695796781616"}}

    ``size`` is the platform's total open interest in **base coin** (one side or both UNCONFIRMED: stored
    as served)."""
    data = _ok_data(payload, "open-interest")
    ts = ts_ms(require(data, "ts", "open-interest.data"), "ts")
    result = []
    for row in require_list(require(data, "openInterestList", "open-interest.data"), "openInterestList"):
        symbol = str(require(row, "symbol", "openInterestList"))
        raw = require(row, "size", symbol)
        base = num(raw, "size")
        result.append(OpenInterest(
            venue=venue, symbol=symbol, ts=ts, base_asset=base_of(symbol), settle_asset="USDT",
            oi_raw=raw_text(raw), oi_unit="base", contract_size=1.0, inverse=False, oi_base=base,
            oi_usd=base * mark_price if mark_price else None,
        ))
    return result


def parse_current_fund_rate(venue: str, payload: Any, marks: dict[str, float] | None = None) -> list[FundingRate]:
    """GET /api/v2/mix/market/current-fund-rate?productType=USDT-FUTURES[&symbol=BTCUSDT]::

        {"code": "00000", "requestTime": 1743054548546,
         "data": [{"symbol": "BTCUSDT", "fundingRate": "0.000068", "fundingRateInterval": "8",
                   "nextUpdate": "1743062400000", "minFundingRate": "-0.003", "maxFundingRate": "0.003"}]}

    Rows are stamped with ``requestTime``; ``fundingRateInterval`` is in hours."""
    data = _ok_data(payload, "current-fund-rate")
    ts = ts_ms(require(payload, "requestTime", "current-fund-rate"), "requestTime")
    rows = [data] if isinstance(data, dict) else require_list(data, "current-fund-rate.data")
    result = []
    for row in rows:
        symbol = str(require(row, "symbol", "current-fund-rate.data"))
        rate_raw = require(row, "fundingRate", symbol)
        next_update = row.get("nextUpdate")
        result.append(FundingRate(
            venue=venue, symbol=symbol, ts=ts, funding_rate=num(rate_raw, "fundingRate"),
            funding_rate_raw=raw_text(rate_raw),
            next_funding_ts=ts_ms(next_update, "nextUpdate") if next_update not in (None, "") else None,
            interval_h=opt_num(row.get("fundingRateInterval"), "fundingRateInterval"),
            mark_price=(marks or {}).get(symbol),
        ))
    return result


class BitgetAdapter(VenueAdapter):
    key = "bitget"
    display_name = "Bitget USDT-M"
    default_base_url = "https://api.bitget.com"
    fund_label = "no published fund"
    capabilities = (
        Capability(OPEN_INTEREST, "/api/v2/mix/market/open-interest", 300, "none", "base coin",
                   "USDT-FUTURES; one side or both UNCONFIRMED (stored as served)"),
        Capability(FUNDING, "/api/v2/mix/market/current-fund-rate", 600, "none", "rate per interval"),
    )

    async def open(self) -> None:
        self.exchange = use_exact_numbers(make_exchange("bitget", self.config.base_url_str(), self.config.timeout_s))

    async def close(self) -> None:
        await self.exchange.close()

    async def _marks(self) -> dict[str, float]:
        return parse_tickers(await ccxt_call(self.exchange, self.exchange.publicMixGetV2MixMarketTickers(
            {"productType": PRODUCT_TYPE})))

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        marks = await self._marks()
        wanted = self.config.symbols or sorted(marks, key=lambda s: (s not in PREFERRED, s))
        batch = Batch()
        for symbol in wanted[: self.config.max_symbols]:  # one call per symbol, paced by ccxt
            payload = await ccxt_call(self.exchange, self.exchange.publicMixGetV2MixMarketOpenInterest(
                {"symbol": symbol, "productType": PRODUCT_TYPE}))
            batch.open_interest.extend(parse_open_interest(self.key, payload, marks.get(symbol)))
        return batch

    async def fetch_funding(self, since: datetime | None) -> Batch:
        marks = await self._marks()
        payload = await ccxt_call(self.exchange, self.exchange.publicMixGetV2MixMarketCurrentFundRate(
            {"productType": PRODUCT_TYPE}))
        rows = parse_current_fund_rate(self.key, payload, marks)
        return Batch(funding=[r for r in rows if not self.config.symbols or r.symbol in self.config.symbols])
