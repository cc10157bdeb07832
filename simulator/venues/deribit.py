"""Simulated Deribit (JSON-RPC over GET under ``/api/v2/public/``): bankruptcy settlements per currency,
newest first, with an opaque ``continuation`` cursor (``get_last_settlements_by_currency``), and book
summaries with OI / funding_8h / index (``get_book_summary_by_currency``).

Bankruptcy events live in ``venue.flows`` (flow_type ``bankruptcy``, ``amount`` = funded, the other
fields in ``extra``), so a market model can append new ones."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from simulator.market import Market
from simulator.market_state import DAY_MS, MINUTE_MS, SimContract, SimFlow, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "deribit"
CURRENCIES = ("BTC", "ETH", "USDC", "USDT", "EURR")
# instrument, base, quote, contract size, inverse, OI contracts, funding_8h
CONTRACT_ROWS = [
    ("BTC-PERPETUAL", "BTC", "USD", "10", True, "99789112", "0.00012"),
    ("ETH-PERPETUAL", "ETH", "USD", "1", True, "412887310", "0.00009"),
    ("BTC_USDC-PERPETUAL", "BTC", "USDC", "1", False, "812.4471", "0.00011"),
    ("ETH_USDC-PERPETUAL", "ETH", "USDC", "1", False, "9120.55", "0.00008"),
    ("SOL_USDC-PERPETUAL", "SOL", "USDC", "1", False, "215004.2", "-0.00004"),
]
EVENTS = {"BTC": (40, Decimal("0.00000001")), "ETH": (25, Decimal("0.00000001")), "USDC": (15, Decimal("0.000001"))}
MAX_COUNT = 1000


def _quarterly_name(start_ms: int) -> str:
    expiry = datetime.fromtimestamp((start_ms + 45 * DAY_MS) / 1000, tz=UTC)
    return f"BTC-{expiry.day}{expiry.strftime('%b').upper()}{expiry.strftime('%y')}"


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for name, base, quote, size, inverse, oi, funding in CONTRACT_ROWS:
        venue.contracts[name] = SimContract(
            name, base, quote, base if inverse else quote, Decimal(size), inverse, Decimal(oi),
            funding_rate=Decimal(funding), extra={"currency": base if inverse else quote},
        )
    future = _quarterly_name(market.start_ms)
    venue.contracts[future] = SimContract(future, "BTC", "USD", "BTC", Decimal(10), True, Decimal("21004410"),
                                          extra={"currency": "BTC", "dated": True})
    span_ms = market.history_days * DAY_MS
    for currency, (count, quantum) in EVENTS.items():
        unit = Decimal(1) if currency == "USDC" else Decimal("0.00002")  # event size scale in the currency
        for i in range(count):
            ts = market.start_ms - span_ms + (i + 1) * span_ms // (count + 1) + market.rng.randrange(MINUTE_MS)
            funded = (Decimal(repr(market.rng.uniform(0.5, 400))) * unit).quantize(quantum)
            socialized = Decimal(0) if i % 5 else (funded * Decimal("0.1")).quantize(quantum)
            venue.flows.append(SimFlow(
                pool_id=currency, asset=currency, ts_ms=ts, flow_type="bankruptcy", amount=funded,
                balance_after=Decimal(0),  # Deribit publishes no balance
                extra={"socialized": socialized, "session_profit_loss": (funded * 37).quantize(quantum),
                       "session_tax": (funded * Decimal("0.0015")).quantize(quantum), "session_tax_rate": Decimal("0.0015")},
            ))
    return venue


def _token(ts_ms: int, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{ts_ms}:{seq}".encode()).decode().rstrip("=")


def _untoken(token: str) -> tuple[int, int]:
    ts, seq = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split(":")
    return int(ts), int(seq)


def current_funding(contract: SimContract) -> Decimal:
    """The current rate: 1.5 x the trailing one less 0.5 bp, so a small positive trailing rate turns negative."""
    return (contract.funding_rate * Decimal("1.5") - Decimal("0.00005")).quantize(Decimal("1e-8"))


def envelope(market: Market, result: Any) -> dict[str, Any]:
    us = market.now_ms() * 1000
    return {"jsonrpc": "2.0", "result": result, "usIn": us, "usOut": us + 450, "usDiff": 450, "testnet": False}


def invalid(market: Market, param: str, reason: str = "wrong format") -> web.Response:
    us = market.now_ms() * 1000
    return reply({"jsonrpc": "2.0", "error": {"message": "Invalid params", "data": {"reason": reason, "param": param},
                                              "code": -32602}, "usIn": us, "usOut": us + 100, "usDiff": 100,
                  "testnet": False}, status=400)


async def last_settlements(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    currency = request.query.get("currency", "")
    if currency not in CURRENCIES:
        return invalid(market, "currency")
    kind = request.query.get("type")
    try:
        count = int(request.query.get("count", "20"))
        start = int(request.query["search_start_timestamp"]) if "search_start_timestamp" in request.query else None
        cursor = _untoken(request.query["continuation"]) if request.query.get("continuation") else None
    except (ValueError, UnicodeDecodeError):
        return invalid(market, "count" if "count" in request.query else "continuation")
    if not 1 <= count <= MAX_COUNT:
        return invalid(market, "count", "must be between 1 and 1000")
    events = sorted(
        ((f.ts_ms, seq, f) for seq, f in enumerate(venue.flows)
         if f.flow_type == "bankruptcy" and f.pool_id == currency and (kind in (None, "bankruptcy"))),
        key=lambda e: (e[0], e[1]), reverse=True,
    )
    if start is not None:
        events = [e for e in events if e[0] <= start]
    if cursor is not None:
        events = [e for e in events if (e[0], e[1]) < cursor]
    page = events[:count]
    rows = []
    for ts, _, flow in page:
        socialized = flow.extra.get("socialized", Decimal(0))
        rows.append({
            "type": "bankruptcy", "timestamp": ts, "funded": flow.amount, "socialized": socialized,
            "session_bankruptcy": flow.amount + socialized,
            "session_profit_loss": flow.extra.get("session_profit_loss", Decimal(0)),
            "session_tax": flow.extra.get("session_tax", Decimal(0)),
            "session_tax_rate": flow.extra.get("session_tax_rate", Decimal(0)),
        })
    more = len(events) > len(page)
    return reply(envelope(market, {"settlements": rows, "continuation": _token(page[-1][0], page[-1][1]) if more else None}))


def summary(market: Market, contract: SimContract) -> dict[str, Any]:
    index = market.price(contract.base)
    mark = (index * (1 + contract.basis(Decimal("0.0002")))).quantize(Decimal("0.01"))
    row: dict[str, Any] = {
        "instrument_name": contract.symbol, "base_currency": contract.base, "quote_currency": contract.quote,
        "open_interest": contract.oi_usd(mark) if contract.inverse else contract.oi_base(mark),
        "mark_price": mark, "estimated_delivery_price": index, "creation_timestamp": market.now_ms(),
        "last": mark, "bid_price": mark - Decimal("0.5"), "ask_price": mark + Decimal("0.5"), "mid_price": mark,
        "high": mark, "low": mark, "price_change": Decimal("-3.2032"), "volume": Decimal("7377.18657991"),
        "volume_usd": Decimal("661040250.0"), "volume_notional": Decimal("661040250.0"),
    }
    if not contract.extra.get("dated"):
        # two figures on the same 8 h basis: the trailing one, and the current one which leads it and
        # can have the opposite sign (as in Deribit's own example: 1.2966e-4 vs -8.1069e-4)
        row["funding_8h"] = contract.funding_rate
        row["current_funding"] = current_funding(contract)
    return row


async def book_summary(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    currency = request.query.get("currency", "")
    if currency not in CURRENCIES:
        return invalid(market, "currency")
    kind = request.query.get("kind")
    if kind not in (None, "future", "option", "spot", "future_combo", "option_combo"):
        return invalid(market, "kind")
    rows = [summary(market, c) for c in venue.contracts.values()
            if c.extra["currency"] == currency and kind in (None, "future")]
    return reply(envelope(market, rows))


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v2/public/get_last_settlements_by_currency", last_settlements),
    Route("GET", "/api/v2/public/get_book_summary_by_currency", book_summary),
)
