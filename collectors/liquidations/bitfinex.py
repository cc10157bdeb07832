"""Bitfinex liquidations: WS ``status`` channel key ``liq:global`` (raw WebSocket: ccxt.pro has no stream
for it) and REST ``/v2/liquidations/hist`` (3 requests a minute).

Both carry the same entry: ``["pos", POS_ID, MTS, _, SYMBOL, AMOUNT, BASE_PRICE, _, IS_MATCH,
IS_MARKET_SOLD, _, PRICE_ACQUIRED]`` (positions kept as data in ``ENTRY``). ``AMOUNT`` is the liquidated
POSITION with its sign (> 0 a long) in base units (a derivative contract is one base unit); ``BASE_PRICE``
is the position's entry price, so the price stored is ``PRICE_ACQUIRED`` (where the system took the
position over or sold it into the market). The feed covers margin pairs too (the documented WS example is
``tBSVUSD``). One record per position: the event key is ``POS_ID`` (a trigger notice and its execution
share it). An entry without ``PRICE_ACQUIRED`` cannot be valued and is skipped (counted, logged); whether
Bitfinex ever sends one is UNCONFIRMED. Completeness of either source is not documented: a lower bound.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from collectors.errors import PayloadError
from collectors.http import JsonHttpClient
from collectors.liquidations.base import (
    LONG,
    SHORT,
    UNCONFIRMED,
    FeedInfo,
    LiquidationRecord,
    event_key,
    notional,
    raw_json,
    utcnow,
    ws_base,
)
from collectors.liquidations.runner import FeedSession
from collectors.liquidations.transport import RawWsFeed, RestPollFeed, SubscriptionRefused
from collectors.parsing import dec, require_list, ts_ms

log = logging.getLogger(__name__)

VENUE = "bitfinex"
LIQ_KEY = "liq:global"
WS_FEED = FeedInfo(VENUE, LIQ_KEY, "ws", UNCONFIRMED, "status liq:global; completeness not documented: a lower bound")
REST_FEED = FeedInfo(VENUE, "liquidations/hist", "rest", UNCONFIRMED,
                     "liquidations/hist; completeness not documented: a lower bound")
DEFAULT_WS = "wss://api-pub.bitfinex.com/ws/2"
DEFAULT_REST = "https://api-pub.bitfinex.com"
ENTRY: dict[str, int] = {"type": 0, "pos_id": 1, "mts": 2, "symbol": 4, "amount": 5, "base_price": 6,
                         "is_match": 8, "is_market_sold": 9, "price_acquired": 11}
QUOTE_CODES = {"UST": "USDT", "EUT": "EURT"}  # Bitfinex currency codes
REST_LIMIT = 500  # rows per call (ccxt pages by 500; the documented maximum is UNCONFIRMED)
REST_MIN_INTERVAL_S = 20.0  # 3 requests per minute
REST_WINDOW_S = 6 * 3600
REST_LOOKBACK_S = 3600
RECONNECT_INFO_CODES = frozenset({20051, 20060})  # "please reconnect" / maintenance start


def split_symbol(symbol: str) -> tuple[str, str, bool]:
    """(base, quote, derivative) of ``tBTCF0:USTF0``, ``tBSVUSD`` or ``tDOGE:USD``."""
    body = symbol[1:] if symbol.startswith("t") else symbol
    if ":" in body:
        base, quote = body.split(":", 1)
    elif len(body) == 6:
        base, quote = body[:3], body[3:]
    else:
        raise PayloadError(f"bitfinex: unexpected symbol {symbol!r}")
    derivative = base.endswith("F0") and quote.endswith("F0")
    base, quote = base.removesuffix("F0"), quote.removesuffix("F0")
    return base, QUOTE_CODES.get(quote, quote), derivative


def parse_entry(entry: Any, feed: FeedInfo, received_at: datetime) -> LiquidationRecord | None:
    """One ``pos`` entry -> a record; None for an entry without PRICE_ACQUIRED (cannot be valued)."""
    values = require_list(entry, "liquidation entry")
    if len(values) <= ENTRY["price_acquired"] or values[ENTRY["type"]] != "pos":
        raise PayloadError(f"bitfinex: not a liquidation entry: {str(values)[:120]}")
    acquired = values[ENTRY["price_acquired"]]
    if acquired in (None, ""):
        return None
    symbol = str(values[ENTRY["symbol"]])
    base, quote, derivative = split_symbol(symbol)
    amount = dec(values[ENTRY["amount"]], "AMOUNT")
    if amount == 0:
        raise PayloadError(f"bitfinex {symbol}: zero amount")
    price = dec(acquired, "PRICE_ACQUIRED")
    qty = abs(amount)
    qty_base, usd, how = notional(False, qty, False, None, price, quote)
    return LiquidationRecord(
        venue=feed.venue, feed=feed.feed, source=feed.source, event_key=event_key("pos", values[ENTRY["pos_id"]]),
        ts=ts_ms(values[ENTRY["mts"]], "MTS"), symbol=symbol, base_asset=base, quote_asset=quote,
        side=LONG if amount > 0 else SHORT, price=float(price), price_kind="acquired", qty_base=qty_base,
        qty_contracts=float(qty) if derivative else None, contract_size=1.0 if derivative else None,
        inverse=False, notional_usd=usd, notional_source=how, coverage=feed.coverage,
        lower_bound=feed.lower_bound, raw=raw_json(values), received_at=received_at,
    )


def _entries(payload: Any, where: str) -> list[Any]:
    """A list of entries, each possibly wrapped in its own list (``[["pos", ...]]``)."""
    items = require_list(payload, where)
    if items and items[0] == "pos":  # a single bare entry
        return [items]
    return [item[0] if isinstance(item, list) and item and isinstance(item[0], list) else item for item in items]


def parse_entries(payload: Any, feed: FeedInfo, received_at: datetime, where: str) -> tuple[list[LiquidationRecord], int]:
    """(records, entries skipped for lack of PRICE_ACQUIRED)."""
    records, skipped = [], 0
    for entry in _entries(payload, where):
        record = parse_entry(entry, feed, received_at)
        if record is None:
            skipped += 1
        else:
            records.append(record)
    return records, skipped


def parse_liquidations_hist(payload: Any, feed: FeedInfo, received_at: datetime) -> list[LiquidationRecord]:
    """GET /v2/liquidations/hist?start&end&limit&sort (ccxt comment)::

        [[["pos", 171085137, 1706395919788, null, "tAVAXF0:USTF0", -8, 32.868, null, 1, 1, null, 33.255]]]

    Each item is one entry wrapped in a list."""
    records, skipped = parse_entries(payload, feed, received_at, "liquidations/hist")
    if skipped:
        log.info("bitfinex liquidations/hist: %d entries without PRICE_ACQUIRED skipped", skipped)
    return records


def parse_liq_update(frame: Any, feed: FeedInfo, received_at: datetime) -> tuple[list[LiquidationRecord], int]:
    """WS ``status`` / ``liq:global`` update (docs example)::

        [91684, [["pos", 142397657, 1574697680828.2002, null, "tBSVUSD", -2.62932, 91.583875238719, null,
                  1, 1, null, 112.27]]]

    ``[CHAN_ID, "hb"]`` heartbeats carry nothing."""
    values = require_list(frame, "liq:global frame")
    if len(values) < 2 or values[1] == "hb":
        return [], 0
    return parse_entries(values[1], feed, received_at, "liq:global")


class BitfinexLiqFeed(RawWsFeed):
    """``{"event": "subscribe", "channel": "status", "key": "liq:global"}`` on the public WS v2."""

    def __init__(self, base_url: str | None, timeout_s: float = 20.0) -> None:
        super().__init__(WS_FEED, f"{ws_base(base_url)}/ws/2" if base_url else DEFAULT_WS, timeout_s)
        self.chan_id: int | None = None
        self.skipped = 0

    def subscribe_frames(self) -> list[str]:
        self.chan_id = None
        return [json.dumps({"event": "subscribe", "channel": "status", "key": LIQ_KEY})]

    def handle(self, frame: Any, ctx: FeedSession) -> str | None:
        if isinstance(frame, dict):
            event = frame.get("event")
            if event == "subscribed" and frame.get("key") == LIQ_KEY:
                self.chan_id = int(frame["chanId"])
                ctx.subscribed()
            elif event == "error":
                raise SubscriptionRefused(f"bitfinex subscribe refused: {frame.get('code')} {frame.get('msg')}")
            elif event == "info" and frame.get("code") in RECONNECT_INFO_CODES:
                raise ConnectionError(f"bitfinex asks to reconnect (info {frame.get('code')})")
            return None
        if isinstance(frame, list) and frame and self.chan_id is not None and frame[0] == self.chan_id:
            records, skipped = parse_liq_update(frame, self.info, utcnow())
            if skipped:
                self.skipped += skipped
                log.info("bitfinex liq:global: %d entries without PRICE_ACQUIRED skipped (%d so far)", skipped,
                         self.skipped)
            ctx.records(records)
        return None


class BitfinexLiquidationsHistFeed(RestPollFeed):
    """REST ``/v2/liquidations/hist`` read oldest first (``sort=1``) in pages of ``REST_LIMIT``."""

    def __init__(self, base_url: str | None, interval_s: float, timeout_s: float = 20.0,
                 min_interval_s: float = REST_MIN_INTERVAL_S, **kwargs: Any) -> None:
        base = base_url or DEFAULT_REST
        super().__init__(REST_FEED, base, timeout_s, interval_s, lookback_s=REST_LOOKBACK_S,
                         window_s=REST_WINDOW_S, max_history_s=None, **kwargs)
        self._client = JsonHttpClient(base, timeout_s, min_interval_s=min_interval_s)

    async def fetch_window(self, client: JsonHttpClient, start: datetime, end: datetime) -> list[LiquidationRecord]:
        start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        records: list[LiquidationRecord] = []
        while True:
            payload = await client.get("/v2/liquidations/hist", {"start": str(start_ms), "end": str(end_ms),
                                                                 "limit": str(REST_LIMIT), "sort": "1"})
            page = parse_liquidations_hist(payload, self.info, utcnow())
            records.extend(page)
            if len(payload) < REST_LIMIT or not page:
                return records
            newest = int(max(r.ts for r in page).timestamp() * 1000)
            if newest <= start_ms:  # a full page within one millisecond: stop rather than loop
                log.warning("bitfinex liquidations/hist: %d rows at one ms; later rows of it may be missed", REST_LIMIT)
                return records
            start_ms = newest  # rows of that ms are read again: the event key drops the repeats

