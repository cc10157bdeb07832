"""Bitget USDT-margined perpetuals: the risk reserve (Bitget's insurance fund), OI and funding.

OI (``/api/v2/mix/market/open-interest``) is in **base coin** per symbol; the USD notional uses the mark
from the all-symbol tickers. Funding for every symbol comes from one ``current-fund-rate`` call.

The risk reserve comes from the UTA v3 market API: ``risk-reserve-all`` lists every pool with its member
symbols and balance (polled hourly); ``risk-reserve`` (daily records) and ``risk-reserve-hour`` (hourly
records) give one symbol's pool history (backfill). A pool has no id of its own: it is named after its lead
member (``POOL_LEAD_ORDER``), which is also the symbol its history is read with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from collectors.base import (
    FUNDING,
    FUNDS,
    OPEN_INTEREST,
    Batch,
    Capability,
    FundBalance,
    FundingRate,
    OpenInterest,
    PoolMember,
    VenueAdapter,
)
from collectors.ccxt_client import ccxt_call, ccxt_request, make_exchange
from collectors.errors import PayloadError
from collectors.exact_json import use_exact_numbers
from collectors.parsing import dec, norm_asset, num, opt_num, raw_text, require, require_list, ts_ms
from records.config import VenueConfig

PRODUCT_TYPE = "USDT-FUTURES"
PREFERRED = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT")
RESERVE_CATEGORY = "USDT-FUTURES"  # the UTA v3 name of the same book
POOL_LEAD_ORDER = PREFERRED  # a pool is named after the first of these it covers, else its first symbol A-Z


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


def _lead_rank(symbol: str) -> tuple[bool, int, str]:
    return symbol not in POOL_LEAD_ORDER, POOL_LEAD_ORDER.index(symbol) if symbol in POOL_LEAD_ORDER else 0, symbol


def pool_lead(symbols: list[str]) -> str:
    """The member a pool is named after (stable while the pool keeps its major symbol)."""
    return min(symbols, key=_lead_rank)


def parse_risk_reserve_all(venue: str, payload: Any) -> Batch:
    """GET /api/v3/market/risk-reserve-all?category=USDT-FUTURES (Bitget publishes no example: shape from the
    endpoint's field list, UNCONFIRMED; parsed defensively)::

        {"code": "00000", "msg": "success", "requestTime": 1753793743942,
         "data": {"list": [{"symbols": ["BTCUSDT", "ETHUSDT"], "coin": "USDT", "balance": "95815.67734608"}]}}

    One fund per list entry covering ``symbols``; rows carry no timestamp, so they are stamped with
    ``requestTime`` (a row's own ``ts`` wins if Bitget adds one). ``symbols`` may also come as one
    comma-separated string; ``data`` may be the list itself."""
    data = _ok_data(payload, "risk-reserve-all")
    rows = require_list(require(data, "list", "risk-reserve-all.data") if isinstance(data, dict) else data,
                        "risk-reserve-all.list")
    request_ts = ts_ms(require(payload, "requestTime", "risk-reserve-all"), "requestTime")
    batch = Batch()
    for index, row in enumerate(rows):
        where = f"risk-reserve-all.list[{index}]"
        members = require(row, "symbols", where)
        symbols = [s.strip() for s in members.split(",")] if isinstance(members, str) else [
            str(s) for s in require_list(members, f"{where}.symbols")]
        symbols = [s for s in symbols if s]
        if not symbols:
            raise PayloadError(f"{where}: a pool without symbols")
        unit = str(require(row, "coin", where))
        raw = require(row, "balance", where)
        pool_id = pool_lead(symbols)
        asset = norm_asset(unit)
        stamp = row.get("ts")
        batch.funds.append(FundBalance(
            venue=venue, pool_id=pool_id, asset=asset,
            ts=ts_ms(stamp, "ts") if stamp not in (None, "") else request_ts,
            balance=dec(raw, "balance"), balance_raw=raw_text(raw), unit_raw=unit,
        ))
        batch.pool_members.extend(PoolMember(venue, pool_id, symbol, asset) for symbol in symbols)
    return batch


def parse_risk_reserve(venue: str, pool_id: str, payload: Any, since: datetime | None = None) -> list[FundBalance]:
    """GET /api/v3/market/risk-reserve?category=USDT-FUTURES&symbol=BTCUSDT (daily records) and
    ``/api/v3/market/risk-reserve-hour`` (hourly records, documented as the same record shape without an
    example: UNCONFIRMED)::

        {"code": "00000", "msg": "success", "requestTime": 1753793743942,
         "data": {"totalBalance": "", "coin": "USDT",
                  "riskReserveRecords": [{"type": "", "amount": "9.8470265278770000",
                                          "balance": "95815.6773460800020000", "ts": "1753718400000"}, ...]}}

    Each record's ``balance`` is the pool's balance at ``ts`` (``amount`` = the change over the period).
    An older revision of the endpoint had no per-record ``balance`` but a ``totalBalance`` (now deprecated):
    then the one point is ``totalBalance`` at ``requestTime``. Points older than ``since`` are dropped."""
    data = _ok_data(payload, "risk-reserve")
    unit = str(require(data, "coin", "risk-reserve.data"))
    asset = norm_asset(unit)
    result = []
    records = require_list(require(data, "riskReserveRecords", "risk-reserve.data"), "riskReserveRecords")
    unbalanced = 0
    for index, row in enumerate(records):
        where = f"riskReserveRecords[{index}]"
        stamp = ts_ms(require(row, "ts", where), "ts")
        raw = row.get("balance")
        if raw in (None, ""):
            unbalanced += 1
            continue
        if since is not None and stamp < since:
            continue
        result.append(FundBalance(venue=venue, pool_id=pool_id, asset=asset, ts=stamp, balance=dec(raw, "balance"),
                                  balance_raw=raw_text(raw), unit_raw=unit, source="history"))
    total = data.get("totalBalance")
    if unbalanced and unbalanced == len(records) and total in (None, ""):
        raise PayloadError("risk-reserve: records carry no balance and totalBalance is empty")
    if not result and unbalanced == len(records) and total not in (None, ""):
        stamp = ts_ms(require(payload, "requestTime", "risk-reserve"), "requestTime")
        if since is None or stamp >= since:
            result.append(FundBalance(venue=venue, pool_id=pool_id, asset=asset, ts=stamp,
                                      balance=dec(total, "totalBalance"), balance_raw=raw_text(total), unit_raw=unit))
    return result


class BitgetAdapter(VenueAdapter):
    key = "bitget"
    display_name = "Bitget USDT-M"
    default_base_url = "https://api.bitget.com"
    fund_label = "Risk reserve (Bitget's insurance fund)"
    capabilities = (
        Capability(FUNDS, "/api/v3/market/risk-reserve-all (+ risk-reserve, risk-reserve-hour)", 3_600,
                   "daily + hourly records per symbol's pool (depth UNCONFIRMED)", "pool coin (USDT)",
                   "pools and their member symbols from risk-reserve-all, named after a lead member; -all and -hour "
                   "shapes UNCONFIRMED (no published example)"),
        Capability(OPEN_INTEREST, "/api/v2/mix/market/open-interest", 300, "none", "base coin",
                   "USDT-FUTURES; one side or both UNCONFIRMED (stored as served)"),
        Capability(FUNDING, "/api/v2/mix/market/current-fund-rate", 600, "none", "rate per interval"),
    )

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
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

    def _keep_pool(self, symbols: list[str]) -> bool:
        return not self.config.symbols or any(s in self.config.symbols for s in symbols)

    async def fetch_funds(self, since: datetime | None) -> Batch:
        """Every pool with its members and balance in one call (3 requests/s per IP)."""
        batch = parse_risk_reserve_all(self.key, await ccxt_call(
            self.exchange, self.exchange.publicUtaGetV3MarketRiskReserveAll({"category": RESERVE_CATEGORY})))
        members: dict[str, list[str]] = {}
        for member in batch.pool_members:
            members.setdefault(member.pool_id, []).append(member.symbol)
        kept = {pool for pool, symbols in members.items() if self._keep_pool(symbols)}
        return Batch(funds=[f for f in batch.funds if f.pool_id in kept],
                     pool_members=[m for m in batch.pool_members if m.pool_id in kept])

    async def backfill_funds(self, since: datetime) -> AsyncIterator[Batch]:
        """Per pool (capped at ``max_symbols``): the hourly records, then the daily ones, each read with the
        pool's lead symbol; one page each (the endpoints take no time range: depth UNCONFIRMED)."""
        current = await self.page(lambda: self.fetch_funds(None))
        pools = sorted({f.pool_id for f in current.funds}, key=_lead_rank)
        yield current
        for pool_id in pools[: self.config.max_symbols]:
            params = {"category": RESERVE_CATEGORY, "symbol": pool_id}
            hourly = await self.page(ccxt_request(self.exchange, "publicUtaGetV3MarketRiskReserveHour", params))
            yield Batch(funds=parse_risk_reserve(self.key, pool_id, hourly, since))
            daily = await self.page(ccxt_request(self.exchange, "publicUtaGetV3MarketRiskReserve", params))
            yield Batch(funds=parse_risk_reserve(self.key, pool_id, daily, since))
