"""Orderly Network liquidations: REST ``/v1/public/liquidated_positions`` (``start_t``/``end_t`` in ms, paged
with ``page``/``size``), one row per liquidated account with a leg per perpetual (``positions_by_perp``).

A leg's ``position_qty`` is the position transferred out of the liquidated account, signed (+ long, the sign
convention UNCONFIRMED by the docs), at ``transfer_price``. Legs with ``position_qty`` 0 transfer nothing
(the documented example is one) and are skipped. USD notional = |qty| x transfer price (USDC-settled).
Completeness is not documented: treated as a lower bound. How far back the endpoint reaches: UNCONFIRMED.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
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
    raw_json,
    utcnow,
)
from collectors.liquidations.transport import RestPollFeed
from collectors.parsing import dec, require, require_list, ts_ms

VENUE = "orderly"
NOTE = "completeness not documented: treated as a lower bound"
REST_FEED = FeedInfo(VENUE, "liquidated_positions", "rest", UNCONFIRMED, NOTE)
DEFAULT_REST = "https://api-evm.orderly.org"
REST_PATH = "/v1/public/liquidated_positions"
REST_WINDOW_S = 3_600
REST_PAGE = 100  # rows asked per page (the venue's maximum: UNCONFIRMED; paging stops on a short page)
MAX_PAGES = 50


def _pair(symbol: str) -> tuple[str, str]:
    """PERP_ETH_USDC -> (ETH, USDC)."""
    parts = symbol.split("_")
    if len(parts) != 3 or parts[0] != "PERP":
        raise PayloadError(f"orderly: unexpected symbol {symbol!r}")
    return parts[1], parts[2]


def parse_liquidated_positions(payload: Any, feed: FeedInfo, received_at: datetime) -> tuple[list[LiquidationRecord], int]:
    """GET /v1/public/liquidated_positions?start_t&end_t&page&size::

        {"success": true, "timestamp": 1702989203989, "data": {
          "meta": {"total": 9, "records_per_page": 25, "current_page": 1},
          "rows": [{"timestamp": 1683802462092, "liquidation_id": 29, "transfer_amount_to_insurance_fund": 0,
                    "type": "liquidated", "positions_by_perp": [{"symbol": "PERP_ETH_USDC", "position_qty": 0,
                    "transfer_price": 1860, "cost_position_transfer": 0, "liquidator_fee": 0.015, ...}]}]}}

    Returns the records and the number of account rows on the page (paging stops on a short page)."""
    if require(payload, "success", "liquidated_positions") is not True:
        raise PayloadError(f"liquidated_positions: success={payload.get('success')!r} code={payload.get('code')!r}")
    data = require(payload, "data", "liquidated_positions")
    rows = require_list(require(data, "rows", "liquidated_positions.data"), "liquidated_positions.rows")
    records = []
    for index, row in enumerate(rows):
        where = f"liquidated_positions.rows[{index}]"
        stamp = require(row, "timestamp", where)
        liquidation_id = require(row, "liquidation_id", where)
        for leg in require_list(require(row, "positions_by_perp", where), f"{where}.positions_by_perp"):
            symbol = str(require(leg, "symbol", where))
            qty = dec(require(leg, "position_qty", f"{where}.{symbol}"), "position_qty")
            if qty == 0:
                continue
            price = dec(require(leg, "transfer_price", f"{where}.{symbol}"), "transfer_price")
            base, quote = _pair(symbol)
            size = abs(qty)
            records.append(LiquidationRecord(
                venue=feed.venue, feed=feed.feed, source=feed.source, event_key=event_key(liquidation_id, symbol),
                ts=ts_ms(stamp, "timestamp"), symbol=symbol, base_asset=base, quote_asset=quote,
                side=LONG if qty > 0 else SHORT, price=float(price), price_kind="transfer",
                qty_base=float(size), qty_contracts=None, contract_size=None, inverse=False,
                notional_usd=float(size * price) if price > Decimal(0) else None, notional_source="base_x_price",
                coverage=feed.coverage, lower_bound=feed.lower_bound,
                raw=raw_json({**{k: v for k, v in row.items() if k != "positions_by_perp"}, "positions_by_perp": [leg]}),
                received_at=received_at,
            ))
    return records, len(rows)


class OrderlyLiquidatedPositionsFeed(RestPollFeed):
    """REST liquidated positions, windows of 1 h, paged until a short page."""

    def __init__(self, base_url: str | None, interval_s: float, timeout_s: float = 20.0, **kwargs: Any) -> None:
        super().__init__(REST_FEED, base_url or DEFAULT_REST, timeout_s, interval_s, lookback_s=REST_WINDOW_S,
                         window_s=REST_WINDOW_S, max_history_s=None, **kwargs)

    async def fetch_window(self, client: JsonHttpClient, start: datetime, end: datetime) -> list[LiquidationRecord]:
        records: list[LiquidationRecord] = []
        for page in range(1, MAX_PAGES + 1):
            payload = await client.get(REST_PATH, {
                "start_t": str(int(start.timestamp() * 1000)), "end_t": str(int(end.timestamp() * 1000)),
                "page": str(page), "size": str(REST_PAGE)})
            found, rows = parse_liquidated_positions(payload, self.info, utcnow())
            records.extend(found)
            if rows < REST_PAGE:
                break
        return records
