"""HTX USDT-M liquidations: WS ``public.*.liquidation_orders`` on ``/linear-swap-notification`` (raw
WebSocket, gzip-compressed frames, app-level ``ping``/``pong``: not in ccxt) and REST
``/linear-swap-api/v3/swap_liquidation_orders`` (window ≤ 2 h, last 90 days).

``direction`` is the liquidation ORDER side: sell closes a long => long liquidated. ``volume`` is contracts,
``amount`` base units and ``trade_turnover`` the quote (USDT) value, so no contract spec is needed.
Completeness is not documented: treated as a lower bound.

The v5 endpoint ``/v5/market/liquidation_orders`` (what ccxt 4.5.90 calls) has another shape
(``parse_rest_v5``). The REST feed reads v3; when v3 answers 404/410 (retired) it switches to v5 for
good and logs it, so Backstop does not go blind when HTX retires v3.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

import ccxt

from collectors.errors import PayloadError
from collectors.http import JsonHttpClient
from collectors.liquidations.base import (
    LONG,
    SHORT,
    STABLES,
    UNCONFIRMED,
    FeedInfo,
    LiquidationRecord,
    event_key,
    raw_json,
    utcnow,
    ws_base,
)
from collectors.liquidations.runner import FeedSession
from collectors.liquidations.transport import RawWsFeed, RestPollFeed, SubscriptionRefused
from collectors.parsing import dec, require, require_list, ts_ms

log = logging.getLogger(__name__)

VENUE = "htx"
TOPIC = "public.*.liquidation_orders"
NOTE = "completeness not documented: treated as a lower bound"
WS_FEED = FeedInfo(VENUE, "liquidation_orders:linear-swap", "ws", UNCONFIRMED, NOTE)
REST_FEED = FeedInfo(VENUE, "swap_liquidation_orders:linear", "rest", UNCONFIRMED, NOTE)
DEFAULT_WS = "wss://api.hbdm.com"
DEFAULT_REST = "https://api.hbdm.com"
REST_PATH = "/linear-swap-api/v3/swap_liquidation_orders"
REST_V5_PATH = "/v5/market/liquidation_orders"
RETIRED = ("HTTP 404", "HTTP 410")  # how JsonHttpClient reports a path the venue no longer serves
REST_WINDOW_S = 2 * 3600
REST_HISTORY_S = 90 * 86_400
REST_PAGE = 100
MAX_PAGES = 50


def _pair(row: dict[str, Any]) -> tuple[str, str]:
    """(base, quote) from ``pair`` (BTC-USDT) or ``contract_code`` (BTC-USDT-211210)."""
    text = str(row.get("pair") or require(row, "contract_code", "liquidation_orders"))
    parts = text.split("-")
    if len(parts) < 2:
        raise PayloadError(f"htx: unexpected pair {text!r}")
    return parts[0], parts[1]


def parse_row(row: Any, feed: FeedInfo, raw: Any, received_at: datetime) -> LiquidationRecord:
    """One liquidation order row (WS ``data[]`` and REST ``data[]`` share these fields)."""
    contract = str(require(row, "contract_code", "liquidation_orders"))
    where = f"liquidation_orders[{contract}]"
    direction = str(require(row, "direction", where)).lower()
    if direction not in ("buy", "sell"):
        raise PayloadError(f"{where}: unknown direction {direction!r}")
    base, quote = _pair(row)
    volume = dec(require(row, "volume", where), "volume")
    price = dec(require(row, "price", where), "price")
    stamp = require(row, "created_at", where)
    amount = row.get("amount")
    turnover = row.get("trade_turnover")
    qty_base: Decimal | None = dec(amount, "amount") if amount not in (None, "") else None
    usd: Decimal | None = None
    how = "no_spec"
    if turnover not in (None, "") and quote.upper() in STABLES:
        usd, how = dec(turnover, "trade_turnover"), "quote_turnover"
    elif qty_base is not None and quote.upper() in STABLES:
        usd, how = qty_base * price, "base_x_price"
    elif quote.upper() not in STABLES:
        how = "non_usd_quote"
    return LiquidationRecord(
        venue=feed.venue, feed=feed.feed, source=feed.source,
        event_key=event_key(contract, stamp, direction, row.get("offset", ""), volume, price),
        ts=ts_ms(stamp, "created_at"), symbol=contract, base_asset=base, quote_asset=quote,
        side=LONG if direction == "sell" else SHORT, price=float(price), price_kind="bankruptcy",
        qty_base=float(qty_base) if qty_base is not None else None, qty_contracts=float(volume),
        contract_size=float(qty_base / volume) if qty_base is not None and volume else None, inverse=False,
        notional_usd=float(usd) if usd is not None else None, notional_source=how, coverage=feed.coverage,
        lower_bound=feed.lower_bound, raw=raw_json(raw), received_at=received_at,
    )


def parse_notify(message: Any, feed: FeedInfo, received_at: datetime) -> list[LiquidationRecord]:
    """WS push (after gunzip)::

        {"op":"notify","topic":"public.O3-USDT.liquidation_orders","ts":1639122193214,
         "data":[{"symbol":"O3","contract_code":"O3-USDT","direction":"sell","offset":"close","volume":432,
                  "price":0.7858,"created_at":1639122193172,"amount":432,"trade_turnover":339.4656, ...}]}"""
    envelope = {k: v for k, v in message.items() if k != "data"}
    rows = require_list(require(message, "data", "liquidation_orders"), "liquidation_orders.data")
    return [parse_row(row, feed, {**envelope, "data": [row]}, received_at) for row in rows]


def parse_rest(payload: Any, feed: FeedInfo, received_at: datetime) -> list[LiquidationRecord]:
    """GET /linear-swap-api/v3/swap_liquidation_orders::

        {"code":200,"msg":"","data":[{"query_id":452057,"contract_code":"BTC-USDT-211210","symbol":"USDT",
          "direction":"sell","offset":"close","volume":479,"price":51441.7,"created_at":1638593647864,
          "amount":0.479,"trade_turnover":24640.5743,"business_type":"futures","pair":"BTC-USDT"}],
         "ts":1604312615051}"""
    code = payload.get("code") if isinstance(payload, dict) else None
    if code not in (200, "200", None):
        raise PayloadError(f"swap_liquidation_orders: code {code}: {payload.get('msg')}")
    rows = require(payload, "data", "swap_liquidation_orders") or []
    return [parse_row(row, feed, row, received_at) for row in require_list(rows, "swap_liquidation_orders.data")]


def parse_v5_row(row: Any, feed: FeedInfo, received_at: datetime) -> LiquidationRecord:
    """One v5 row. ``position_side`` names the liquidated side (``side`` is the order side, its opposite);
    the price is the bankruptcy price; ``trade_turnover`` is the USDT value. ``amount`` equals ``volume``
    in the only example (2 and 2 at 125.957 USDT / 62978.5 = 0.002 BTC), so it is not read as base units
    (UNCONFIRMED): base = trade_turnover / bankrupt_price."""
    contract = str(require(row, "contract_code", "v5 liquidation_orders"))
    where = f"v5 liquidation_orders[{contract}]"
    position = str(row.get("position_side") or "").lower()
    order_side = str(require(row, "side", where)).lower()
    if position not in ("long", "short"):
        if order_side not in ("buy", "sell"):
            raise PayloadError(f"{where}: unknown side {order_side!r}")
        position = "long" if order_side == "sell" else "short"
    base, quote = _pair(row)
    volume = dec(require(row, "volume", where), "volume")
    price = dec(require(row, "bankrupt_price", where), "bankrupt_price")
    stamp = require(row, "liquidation_time", where)
    turnover = row.get("trade_turnover")
    usd = dec(turnover, "trade_turnover") if turnover not in (None, "") and quote.upper() in STABLES else None
    qty_base = usd / price if usd is not None and price else None
    return LiquidationRecord(
        venue=feed.venue, feed=feed.feed, source=feed.source,
        event_key=event_key(contract, stamp, order_side, "close", volume, price),
        ts=ts_ms(stamp, "liquidation_time"), symbol=contract, base_asset=base, quote_asset=quote,
        side=LONG if position == "long" else SHORT, price=float(price), price_kind="bankruptcy",
        qty_base=float(qty_base) if qty_base is not None else None, qty_contracts=float(volume),
        contract_size=float(qty_base / volume) if qty_base is not None and volume else None, inverse=False,
        notional_usd=float(usd) if usd is not None else None,
        notional_source="quote_turnover" if usd is not None else ("non_usd_quote" if quote.upper() not in STABLES
                                                                  else "no_spec"),
        coverage=feed.coverage, lower_bound=feed.lower_bound, raw=raw_json(row), received_at=received_at,
    )


def parse_rest_v5(payload: Any, feed: FeedInfo, received_at: datetime) -> list[LiquidationRecord]:
    """GET /v5/market/liquidation_orders?contract_code&start_time&end_time&limit (ccxt's source comment)::

        {"code": 200, "message": "Success", "data": [
            {"id": "150153038758", "contract_code": "BTC-USDT", "liquidation_time": "1781849094165",
             "side": "buy", "position_side": "short", "volume": "2", "amount": "2",
             "bankrupt_price": "62978.5", "trade_turnover": "125.957"}], "ts": 1781854869221}"""
    code = payload.get("code") if isinstance(payload, dict) else None
    if code not in (200, "200"):
        raise PayloadError(f"v5 liquidation_orders: code {code}: {payload.get('message') if isinstance(payload, dict) else payload!r}")
    rows = require(payload, "data", "v5 liquidation_orders") or []
    return [parse_v5_row(row, feed, received_at) for row in require_list(rows, "v5 liquidation_orders.data")]


class HtxLiquidationFeed(RawWsFeed):
    """``public.*.liquidation_orders`` (every USDT-M contract) on the notification WebSocket."""

    def __init__(self, base_url: str | None, timeout_s: float = 20.0) -> None:
        root = ws_base(base_url) if base_url else DEFAULT_WS
        super().__init__(WS_FEED, f"{root}/linear-swap-notification", timeout_s)

    def subscribe_frames(self) -> list[str]:
        return [json.dumps({"op": "sub", "cid": "backstop-liquidations", "topic": TOPIC})]

    def handle(self, frame: Any, ctx: FeedSession) -> str | None:
        if not isinstance(frame, dict):
            return None
        op = frame.get("op")
        if op == "ping":
            return json.dumps({"op": "pong", "ts": frame.get("ts")})
        if op == "sub":
            code = frame.get("err-code", 0)
            if str(code) != "0":
                raise SubscriptionRefused(f"htx sub refused: {code} {frame.get('err-msg')}")
            ctx.subscribed()
        elif op == "notify" and str(frame.get("topic", "")).endswith(".liquidation_orders"):
            ctx.records(parse_notify(frame, self.info, utcnow()))
        elif op in ("close", "error"):
            raise ConnectionError(f"htx closed the stream: {frame}")
        return None


class HtxLiquidationOrdersFeed(RestPollFeed):
    """REST v3 liquidation orders, windows of ≤ 2 h, paged with ``from_id`` (``direct=next``)."""

    def __init__(self, base_url: str | None, interval_s: float, contracts: list[str] | None = None,
                 timeout_s: float = 20.0, **kwargs: Any) -> None:
        super().__init__(REST_FEED, base_url or DEFAULT_REST, timeout_s, interval_s, lookback_s=REST_WINDOW_S,
                         window_s=REST_WINDOW_S, max_history_s=REST_HISTORY_S, **kwargs)
        self.contracts: list[str | None] = list(contracts or []) or [None]  # None: every contract (UNCONFIRMED)

    v3_retired = False  # set for good once v3 answers 404/410: v5 from then on

    async def fetch_window(self, client: JsonHttpClient, start: datetime, end: datetime) -> list[LiquidationRecord]:
        if not self.v3_retired:
            try:
                return await self._fetch_v3(client, start, end)
            except ccxt.BadRequest as exc:
                if not any(mark in str(exc) for mark in RETIRED):
                    raise
                self.v3_retired = True
                log.warning("htx: %s is gone (%s); reading %s from now on", REST_PATH, exc, REST_V5_PATH)
        return await self._fetch_v5(client, start, end)

    async def _fetch_v5(self, client: JsonHttpClient, start: datetime, end: datetime) -> list[LiquidationRecord]:
        """Newest first; pages back with ``end_time`` = the oldest row's time - 1 ms until a short page."""
        records: list[LiquidationRecord] = []
        for contract in self.contracts:
            end_ms = int(end.timestamp() * 1000)
            for _ in range(MAX_PAGES):
                params = {"start_time": str(int(start.timestamp() * 1000)), "end_time": str(end_ms),
                          "limit": str(REST_PAGE)}
                if contract:
                    params["contract_code"] = contract
                payload = await client.get(REST_V5_PATH, params)
                page = parse_rest_v5(payload, self.info, utcnow())
                records.extend(page)
                if len(page) < REST_PAGE:
                    break
                end_ms = int(min(r.ts for r in page).timestamp() * 1000) - 1
        return records

    async def _fetch_v3(self, client: JsonHttpClient, start: datetime, end: datetime) -> list[LiquidationRecord]:
        records: list[LiquidationRecord] = []
        for contract in self.contracts:
            from_id: Any = None
            for _ in range(MAX_PAGES):
                params = {"trade_type": "0", "start_time": str(int(start.timestamp() * 1000)),
                          "end_time": str(int(end.timestamp() * 1000)), "direct": "next"}
                if contract:
                    params["contract"] = contract
                if from_id is not None:
                    params["from_id"] = str(from_id)
                payload = await client.get(REST_PATH, params)
                page = parse_rest(payload, self.info, utcnow())
                records.extend(page)
                rows = payload.get("data") or []
                ids = [row.get("query_id") for row in rows if row.get("query_id") is not None]
                if len(rows) < REST_PAGE or not ids or min(ids) == from_id:
                    break
                from_id = min(ids)
        return records
