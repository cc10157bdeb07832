"""Bybit v5 payload parsers: each documented response (its sample in the docstring) -> Backstop records.
Pure functions over the decoded JSON; the adapter that calls the venue, pages the histories and explains
the decisions (pool ids, the list-level timestamp, one-side OI, the ADL signal) is ``collectors.bybit``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from collectors.base import AdlSignal, Batch, FundBalance, FundingRate, OpenInterest, PoolMember, Price
from collectors.errors import PayloadError
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

HOUR_MS = 3_600_000
PREFERRED_ANCHORS = ("BTCUSDT", "ETHUSDT", "BTCPERP", "ETHPERP", "BTCUSD", "ETHUSD", "SOLUSDT", "XRPUSDT")
LINEAR_QUOTES = (("USDT", "USDT"), ("USDC", "USDC"), ("PERP", "USDC"))  # symbol suffix -> settle coin


def pool_id_for(coin: str, symbols: list[str]) -> str:
    """Isolated pool: its symbol. Shared pool: ``shared:<coin>:<anchor>`` (see ``collectors.bybit``)."""
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


def v5_result(payload: Any, where: str) -> dict[str, Any]:
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
    result = v5_result(payload, "insurance")
    ts = _list_ts(result, "insurance")
    batch = Batch()
    for index, row in enumerate(require_list(require(result, "list", "insurance"), "insurance.list")):
        where = f"insurance.list[{index}]"
        _add_pool(batch, venue, row, where, ts, opt_dec(row.get("value"), f"{where}.value"))
    return batch


def _add_pool(batch: Batch, venue: str, row: Any, where: str, ts: datetime, usd_value: Decimal | None) -> None:
    """One pool row of REST or WS (same fields, same pool ids): its fund row and its member contracts."""
    coin = str(require(row, "coin", where))
    symbols = split_symbols(require(row, "symbols", where), where)
    pool_id = pool_id_for(coin, symbols)
    raw = require(row, "balance", where)
    batch.funds.append(FundBalance(
        venue=venue, pool_id=pool_id, asset=norm_asset(coin), ts=ts, balance=dec(raw, f"{where}.balance"),
        balance_raw=raw_text(raw), unit_raw=coin, usd_value=usd_value,
    ))
    batch.pool_members.extend(PoolMember(venue, pool_id, symbol, norm_asset(coin)) for symbol in symbols)


def parse_insurance_ws(venue: str, message: Any) -> Batch:
    """WS topic ``insurance.USDT|USDC|inverse`` (isolated pools only, pushed on change)::

        {"topic": "insurance.USDT", "type": "delta", "ts": 1747722930000,
         "data": [{"coin": "USDT", "symbols": "GRIFFAINUSDT", "balance": "25614.92972633",
                   "updateTime": "1747722930000"}]}

    Same pool ids as REST; no USD value is pushed."""
    batch = Batch()
    for index, row in enumerate(require_list(require(message, "data", "insurance_ws"), "insurance_ws.data")):
        where = f"insurance_ws.data[{index}]"
        _add_pool(batch, venue, row, where, ts_ms(require(row, "updateTime", where), f"{where}.updateTime"), None)
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
    result = v5_result(payload, "tickers")
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
    result = v5_result(payload, "mark-price-kline")
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

    One side per point (see ``collectors.bybit``); inverse USD -> base and linear base -> USD need the mark:
    each point's own hour from ``marks`` (``parse_mark_price_kline``) when given, else ``mark_price``; a
    point with no mark keeps the other side empty."""
    result = v5_result(payload, "open-interest")
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
    result = v5_result(payload, "funding/history")
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
    (<= 0: the drawdown condition is met); see ``collectors.bybit``."""
    result = v5_result(payload, "adlAlert")
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
