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
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
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
from collectors.ccxt_client import ccxt_call, ccxt_request, make_exchange
from collectors.errors import PayloadError
from collectors.exact_json import use_exact_numbers
from collectors.parsing import (
    dec,
    norm_asset,
    num,
    opt_dec,
    opt_num,
    raw_text,
    require,
    require_list,
    to_json,
    ts_ms,
)
from records.config import VenueConfig

HOUR_MS = 3_600_000
KLINE_PAGE = 1000  # mark-price-kline bars per call (Bybit's maximum)
# OI history resolution: 4-hourly (Bybit keeps 5min..1d; 4 h keeps 90 days to 3 calls per symbol and the
# coverage history needs no finer step), valued with the 4-hour mark closes
OI_HISTORY_INTERVAL, OI_HISTORY_MS, KLINE_INTERVAL = "4h", 4 * HOUR_MS, "240"

PREFERRED_ANCHORS = ("BTCUSDT", "ETHUSDT", "BTCPERP", "ETHPERP", "BTCUSD", "ETHUSD", "SOLUSDT", "XRPUSDT")
LINEAR_QUOTES = (("USDT", "USDT"), ("USDC", "USDC"), ("PERP", "USDC"))  # symbol suffix -> settle coin


def pool_id_for(coin: str, symbols: list[str]) -> str:
    """Isolated pool: its symbol. Shared pool: ``shared:<coin>:<anchor>`` (see module docstring)."""
    if len(symbols) == 1:
        return symbols[0]
    anchor = next((s for s in PREFERRED_ANCHORS if s in symbols), None) or min(symbols)
    return f"shared:{coin}:{anchor}"


def split_symbols(text: Any, where: str) -> list[str]:
    if not isinstance(text, str):
        raise PayloadError(f"{where}: symbols: expected text, got {type(text).__name__}")
    symbols = [s.strip() for s in text.split(",") if s.strip()]
    if not symbols:
        raise PayloadError(f"{where}: empty symbols")
    return symbols


def _result(payload: Any, where: str) -> dict[str, Any]:
    """``result`` of a v5 envelope ``{retCode, retMsg, result, retExtInfo, time}`` (retCode 0 only)."""
    code = require(payload, "retCode", where)
    if str(code) != "0":
        raise PayloadError(f"{where}: retCode {code}: {payload.get('retMsg')!r}")
    result = require(payload, "result", where)
    if not isinstance(result, dict):
        raise PayloadError(f"{where}: result: expected an object, got {type(result).__name__}")
    return result


def _list_ts(result: dict[str, Any], where: str) -> datetime:
    """List-level update time: ``updatedTime`` (English docs) or ``updateTime`` (zh-TW docs, tables)."""
    for key in ("updatedTime", "updateTime"):
        if result.get(key) not in (None, ""):
            return ts_ms(result[key], f"{where}.{key}")
    raise PayloadError(f"{where}: missing field 'updatedTime'")


def parse_insurance(venue: str, payload: Any) -> Batch:
    """GET /v5/market/insurance::

        {"retCode": 0, "retMsg": "OK", "result": {"updatedTime": "1714003200000", "list": [
          {"coin": "USDT", "symbols": "MERLUSDT,10000000AIDOGEUSDT,ZEUSUSDT",
           "balance": "902178.57602476", "value": "901898.0963091522"}]}, "retExtInfo": {}, "time": 1714028451228}

    One fund row per pool (``balance`` in ``coin``, ``value`` = venue-stated USD) + membership rows."""
    result = _result(payload, "insurance")
    ts = _list_ts(result, "insurance")
    batch = Batch()
    for index, row in enumerate(require_list(require(result, "list", "insurance"), "insurance.list")):
        where = f"insurance.list[{index}]"
        coin = str(require(row, "coin", where))
        symbols = split_symbols(require(row, "symbols", where), where)
        pool_id = pool_id_for(coin, symbols)
        raw = require(row, "balance", where)
        batch.funds.append(FundBalance(
            venue=venue, pool_id=pool_id, asset=norm_asset(coin), ts=ts, balance=dec(raw, f"{where}.balance"),
            balance_raw=raw_text(raw), unit_raw=coin, usd_value=opt_dec(row.get("value"), f"{where}.value"),
        ))
        batch.pool_members.extend(PoolMember(venue, pool_id, symbol, norm_asset(coin)) for symbol in symbols)
    return batch


def parse_insurance_ws(venue: str, message: Any) -> Batch:
    """WS topic ``insurance.USDT|USDC|inverse`` (isolated pools only, pushed on change)::

        {"topic": "insurance.USDT", "type": "delta", "ts": 1747722930000,
         "data": [{"coin": "USDT", "symbols": "GRIFFAINUSDT", "balance": "25614.92972633",
                   "updateTime": "1747722930000"}]}

    Same pool ids as REST; no USD value is pushed."""
    batch = Batch()
    for index, row in enumerate(require_list(require(message, "data", "insurance_ws"), "insurance_ws.data")):
        where = f"insurance_ws.data[{index}]"
        coin = str(require(row, "coin", where))
        symbols = split_symbols(require(row, "symbols", where), where)
        pool_id = pool_id_for(coin, symbols)
        raw = require(row, "balance", where)
        batch.funds.append(FundBalance(
            venue=venue, pool_id=pool_id, asset=norm_asset(coin),
            ts=ts_ms(require(row, "updateTime", where), f"{where}.updateTime"),
            balance=dec(raw, f"{where}.balance"), balance_raw=raw_text(raw), unit_raw=coin,
        ))
        batch.pool_members.extend(PoolMember(venue, pool_id, symbol, norm_asset(coin)) for symbol in symbols)
    return batch


def contract_of(category: str, symbol: str) -> tuple[str, str] | None:
    """(base, settle) of a perpetual; dated futures (``BTCUSDT-26DEC25``, ``BTCUSDH25``) -> None."""
    if "-" in symbol:
        return None
    if category == "inverse":
        if symbol.endswith("USD") and len(symbol) > 3:
            base = symbol[:-3]
            return base, base
        return None
    for suffix, settle in LINEAR_QUOTES:
        if symbol.endswith(suffix) and len(symbol) > len(suffix):
            return symbol[: -len(suffix)], settle
    return None


def _one_side(row: dict[str, Any], field: str, where: str) -> tuple[float | None, str | None, str]:
    """(one-side amount, raw text, source) for ``openInterest``-like ``field``: ``single<Field>`` if served,
    else half the documented both-sides figure."""
    single = "single" + field[0].upper() + field[1:]
    if row.get(single) not in (None, ""):
        return num(row[single], f"{where}.{single}"), str(row[single]), single
    if row.get(field) not in (None, ""):
        return num(row[field], f"{where}.{field}") / 2, str(row[field]), f"{field}/2"
    return None, None, field


def parse_tickers(venue: str, payload: Any, symbols: set[str] | None = None) -> Batch:
    """GET /v5/market/tickers?category=linear|inverse (perpetuals only)::

        {"retCode": 0, "result": {"category": "inverse", "list": [{"symbol": "BTCUSD",
          "indexPrice": "114890.92", "markPrice": "114898.43", "openInterest": "240113967",
          "openInterestValue": "2089.79", "fundingRate": "0.0001", "nextFundingTime": "1760371200000",
          "deliveryTime": "0", "fundingIntervalHour": "8", ...}]}, "time": 1760352369814}

    Linear: ``openInterest`` in base, ``openInterestValue`` in USD. Inverse: ``openInterest`` in USD,
    ``openInterestValue`` in coin. Rows carry no timestamp: the envelope ``time`` stamps them all.
    Returns OI, funding and one index price per base asset (``symbols`` restricts to those)."""
    result = _result(payload, "tickers")
    category = str(require(result, "category", "tickers"))
    ts = ts_ms(require(payload, "time", "tickers"), "time")
    batch = Batch()
    priced: set[str] = set()
    for index, row in enumerate(require_list(require(result, "list", "tickers"), "tickers.list")):
        symbol = str(require(row, "symbol", f"tickers.list[{index}]"))
        contract = contract_of(category, symbol)
        if contract is None or str(row.get("deliveryTime") or "0") != "0":
            continue
        if symbols and symbol not in symbols:
            continue
        base, settle = contract
        mark = opt_num(row.get("markPrice"), f"{symbol}.markPrice")
        index_price = opt_num(row.get("indexPrice"), f"{symbol}.indexPrice")
        amount, raw, source = _one_side(row, "openInterest", symbol)
        if amount is not None and raw is not None:
            if category == "inverse":
                oi_usd: float | None = amount
                oi_base = amount / mark if mark else None
                unit = f"usd:{source}"
            else:
                value, _, _ = _one_side(row, "openInterestValue", symbol)
                oi_base = amount
                oi_usd = value if value is not None else (amount * mark if mark else None)
                unit = f"base:{source}"
            batch.open_interest.append(OpenInterest(
                venue=venue, symbol=symbol, ts=ts, base_asset=base, settle_asset=settle, oi_raw=raw,
                oi_unit=unit, contract_size=1.0, inverse=category == "inverse", oi_base=oi_base, oi_usd=oi_usd,
            ))
        rate_raw = row.get("fundingRate")
        if rate_raw not in (None, ""):
            next_ts = row.get("nextFundingTime")
            batch.funding.append(FundingRate(
                venue=venue, symbol=symbol, ts=ts, funding_rate=num(rate_raw, f"{symbol}.fundingRate"),
                funding_rate_raw=raw_text(rate_raw),
                next_funding_ts=ts_ms(next_ts, f"{symbol}.nextFundingTime") if next_ts not in (None, "", "0") else None,
                interval_h=opt_num(row.get("fundingIntervalHour"), f"{symbol}.fundingIntervalHour"),
                mark_price=mark,
            ))
        if index_price and base not in priced and not base[0].isdigit():  # 1000PEPE is not an asset
            priced.add(base)
            batch.prices.append(Price(venue, base, ts, index_price, "index"))
    return batch


def parse_mark_price_kline(payload: Any) -> dict[int, float]:
    """GET /v5/market/mark-price-kline?category&symbol&interval=60&start&end&limit (newest first)::

        {"retCode": 0, "result": {"symbol": "BTCUSDT", "category": "linear", "list": [
          ["1670608800000", "17164.16", "17164.16", "17121.5", "17131.64"]]}}

    Bar start (ms) -> close, to value the hourly OI history at its own time."""
    result = _result(payload, "mark-price-kline")
    closes: dict[int, float] = {}
    for index, bar in enumerate(require_list(require(result, "list", "mark-price-kline"), "mark-price-kline.list")):
        if not isinstance(bar, list) or len(bar) < 5:
            raise PayloadError(f"mark-price-kline.list[{index}]: expected [start, open, high, low, close], got {bar!r}")
        closes[int(dec(bar[0], "mark-price-kline.start"))] = num(bar[4], "mark-price-kline.close")
    return closes


def mark_at(closes: Mapping[int, float], ts: datetime, bar_ms: int = HOUR_MS) -> float | None:
    """The mark at ``ts``: the close of the bar (``bar_ms`` long) ending there, else of the bar starting there."""
    ms = int(ts.timestamp() * 1000) // bar_ms * bar_ms
    return closes.get(ms - bar_ms, closes.get(ms))


def parse_open_interest_history(venue: str, payload: Any, mark_price: float | None = None,
                                marks: Mapping[int, float] | None = None, bar_ms: int = HOUR_MS) -> list[OpenInterest]:
    """GET /v5/market/open-interest?category&symbol&intervalTime::

        {"retCode": 0, "result": {"symbol": "BTCUSD", "category": "inverse", "list": [
          {"openInterest": "63910691.00000000", "singleOpenInterest": "31955346", "timestamp": "1780963200000"}],
          "nextPageCursor": "..."}, "time": 1780994051392}

    One side per point (see module docstring); inverse USD -> base and linear base -> USD need the mark:
    each point's own hour from ``marks`` (``parse_mark_price_kline``) when given, else ``mark_price``; a
    point with no mark keeps the other side empty."""
    result = _result(payload, "open-interest")
    symbol = str(require(result, "symbol", "open-interest"))
    category = str(require(result, "category", "open-interest"))
    contract = contract_of(category, symbol)
    base, settle = contract if contract else (symbol, "USD" if category == "inverse" else "USDT")
    rows = []
    for index, row in enumerate(require_list(require(result, "list", "open-interest"), "open-interest.list")):
        where = f"open-interest.list[{index}]"
        amount, raw, source = _one_side(row, "openInterest", where)
        if amount is None or raw is None:
            raise PayloadError(f"{where}: missing field 'openInterest'")
        inverse = category == "inverse"
        ts = ts_ms(require(row, "timestamp", where), f"{where}.timestamp")
        mark = mark_at(marks, ts, bar_ms) if marks is not None else mark_price
        rows.append(OpenInterest(
            venue=venue, symbol=symbol, ts=ts,
            base_asset=base, settle_asset=settle, oi_raw=raw,
            oi_unit=f"{'usd' if inverse else 'base'}:{source}", contract_size=1.0, inverse=inverse,
            oi_base=(amount / mark if mark else None) if inverse else amount,
            oi_usd=amount if inverse else (amount * mark if mark else None),
            oi_usd_note=None if inverse or mark else "no mark price for this hour in the kline",
        ))
    return rows


def parse_funding_history(venue: str, payload: Any) -> list[FundingRate]:
    """GET /v5/market/funding/history?category&symbol[&startTime&endTime&limit<=200] (newest first)::

        {"retCode": 0, "result": {"category": "linear", "list": [
          {"symbol": "ETHPERP", "fundingRate": "0.0001", "fundingRateTimestamp": "1672041600000"}]}}"""
    result = _result(payload, "funding/history")
    rows = []
    for index, row in enumerate(require_list(require(result, "list", "funding/history"), "funding/history.list")):
        where = f"funding/history.list[{index}]"
        raw = require(row, "fundingRate", where)
        rows.append(FundingRate(
            venue=venue, symbol=str(require(row, "symbol", where)),
            ts=ts_ms(require(row, "fundingRateTimestamp", where), f"{where}.fundingRateTimestamp"),
            funding_rate=num(raw, f"{where}.fundingRate"), funding_rate_raw=raw_text(raw),
        ))
    return rows


def adl_level(balance: Decimal, pnl_ratio: Decimal, insurance_pnl_ratio: Decimal, trigger_balance: Decimal) -> str:
    """Which of Bybit's documented ADL trigger conditions holds now (no memory of the stop condition)."""
    if balance <= 0:
        return "equity_adl"
    if balance > trigger_balance and pnl_ratio < insurance_pnl_ratio:
        return "pnl_drawdown_adl"
    return "normal"


def parse_adl_alert(venue: str, payload: Any) -> list[AdlSignal]:
    """GET /v5/market/adlAlert[?symbol] (1-minute snapshots)::

        {"retCode": 0, "result": {"updatedTime": "1757733960000", "list": [
          {"coin": "USDT", "symbol": "BTCUSDT", "balance": "92203504694.99632", "maxBalance": "92231510324.75948",
           "insurancePnlRatio": "-0.3", "pnlRatio": "-0.560973", "adlTriggerThreshold": "10000",
           "adlStopRatio": "-0.25"}]}, "retExtInfo": {}, "time": 1757734022014}

    ``value`` = pnlRatio, ``threshold`` = insurancePnlRatio, ``distance`` = pnlRatio - insurancePnlRatio
    (<= 0: the drawdown condition is met); see the module docstring."""
    result = _result(payload, "adlAlert")
    ts = _list_ts(result, "adlAlert")
    signals = []
    for index, row in enumerate(require_list(require(result, "list", "adlAlert"), "adlAlert.list")):
        where = f"adlAlert.list[{index}]"
        symbol = str(require(row, "symbol", where))
        balance = dec(require(row, "balance", where), f"{where}.balance")
        pnl_ratio = dec(require(row, "pnlRatio", where), f"{where}.pnlRatio")
        trigger_ratio = dec(require(row, "insurancePnlRatio", where), f"{where}.insurancePnlRatio")
        trigger_balance = dec(require(row, "adlTriggerThreshold", where), f"{where}.adlTriggerThreshold")
        detail = {key: row.get(key) for key in ("coin", "balance", "maxBalance", "insurancePnlRatio",
                                                "adlTriggerThreshold", "adlStopRatio", "pnlRatio")}
        signals.append(AdlSignal(
            venue=venue, scope=symbol, ts=ts, signal_type="bybit_adl_alert",
            level=adl_level(balance, pnl_ratio, trigger_ratio, trigger_balance),
            value=float(pnl_ratio), threshold=float(trigger_ratio), distance=float(pnl_ratio - trigger_ratio),
            detail=to_json(detail),
        ))
    return signals


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
                cursor = str(_result(payload, "open-interest").get("nextPageCursor") or "")
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
