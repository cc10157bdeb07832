"""OKX ``liquidation-orders`` (SWAP and FUTURES, one connection each) through ccxt.pro.

OKX states the channel "doesn't represent the total number of liquidations": a lower bound. One message
can carry several ``details[]``; every one is a liquidation (ccxt's own parser reads only ``details[0]``,
reference §0.8, so frames are parsed here). ``posSide`` is the position side (long/short); in net mode
(``posSide`` net or empty) the order ``side`` tells it: sell closes a long. ``sz`` is in contracts; the
notional needs the instrument's ``ctVal``/``ctValCcy``/``ctType`` from /api/v5/public/instruments.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from collectors.errors import PayloadError
from collectors.http import JsonHttpClient
from collectors.liquidations.base import (
    LONG,
    SAMPLED,
    SHORT,
    ContractSpec,
    FeedInfo,
    LiquidationRecord,
    event_key,
    notional,
    raw_json,
    rebase_ws,
    utcnow,
    ws_base,
)
from collectors.liquidations.ccxt_stream import CcxtFeed
from collectors.parsing import dec, require, require_list, ts_ms

log = logging.getLogger(__name__)

VENUE = "okx"
NOTE = "sampled by OKX (\"doesn't represent the total number of liquidations\"): a lower bound"
FEEDS = {inst_type: FeedInfo(VENUE, f"liquidation-orders:{inst_type}", "ws", SAMPLED, NOTE)
         for inst_type in ("SWAP", "FUTURES")}
CCXT_TYPE = {"SWAP": "swap", "FUTURES": "future"}
SPEC_REFRESH_S = 60.0


def split_inst_id(inst_id: str) -> tuple[str, str]:
    """BTC-USDT-SWAP -> (BTC, USDT); BTC-USD-250926 -> (BTC, USD)."""
    parts = inst_id.split("-")
    if len(parts) < 2:
        raise PayloadError(f"liquidation-orders: unexpected instId {inst_id!r}")
    return parts[0], parts[1]


def parse_instruments(payload: Any) -> dict[str, ContractSpec]:
    """GET /api/v5/public/instruments?instType=SWAP: ``data[] {instId, ctVal, ctValCcy, ctType, ...}``.
    Linear: ctVal is base per contract; inverse: ctVal is USD per contract (ctValCcy USD)."""
    specs = {}
    for row in require_list(require(payload, "data", "instruments"), "instruments.data"):
        inst_id = str(require(row, "instId", "instruments.data"))
        ct_val = row.get("ctVal")
        if ct_val in (None, ""):
            continue
        base, quote = split_inst_id(inst_id)
        inverse = str(row.get("ctType", "")) == "inverse" or str(row.get("ctValCcy", "")).upper() == "USD"
        specs[inst_id] = ContractSpec(inst_id, base, "USD" if inverse else quote, dec(ct_val, "ctVal"), inverse)
    return specs


def position_side(detail: dict[str, Any], where: str) -> str:
    pos = str(detail.get("posSide") or "").lower()
    if pos in (LONG, SHORT):
        return pos
    side = str(require(detail, "side", where)).lower()
    if side not in ("buy", "sell"):
        raise PayloadError(f"{where}: unknown side {side!r}")
    return LONG if side == "sell" else SHORT


def parse_liquidation_orders(message: Any, feed: FeedInfo, received_at: datetime,
                             specs: dict[str, ContractSpec] | None = None) -> tuple[list[LiquidationRecord], set[str]]:
    """``liquidation-orders`` push (records, instIds without a contract spec)::

        {"arg":{"channel":"liquidation-orders","instType":"SWAP"},
         "data":[{"details":[{"bkLoss":"0","bkPx":"0.007831","ccy":"","posSide":"short","side":"buy",
                              "sz":"13","ts":"1692266434010"}],
                  "instFamily":"IOST-USDT","instId":"IOST-USDT-SWAP","instType":"SWAP","uly":"IOST-USDT"}]}"""
    envelope = {k: v for k, v in message.items() if k != "data"}
    records: list[LiquidationRecord] = []
    missing: set[str] = set()
    for item in require_list(require(message, "data", "liquidation-orders"), "liquidation-orders.data"):
        inst_id = str(require(item, "instId", "liquidation-orders.data"))
        where = f"liquidation-orders[{inst_id}]"
        spec = (specs or {}).get(inst_id)
        if spec is None:
            missing.add(inst_id)
            base, quote = split_inst_id(inst_id)
            inverse = quote == "USD"
        else:
            base, quote, inverse = spec.base, spec.quote, spec.inverse
        item_rest = {k: v for k, v in item.items() if k != "details"}
        for detail in require_list(require(item, "details", where), f"{where}.details"):
            side = position_side(detail, where)
            size = dec(require(detail, "sz", where), "sz")
            price = dec(require(detail, "bkPx", where), "bkPx")
            stamp = require(detail, "ts", where)
            qty_base, usd, how = notional(inverse, size, True, spec.contract_size if spec else None, price, quote)
            records.append(LiquidationRecord(
                venue=feed.venue, feed=feed.feed, source=feed.source,
                event_key=event_key(inst_id, stamp, detail.get("side", ""), detail.get("posSide", ""), size, price),
                ts=ts_ms(stamp, "ts"), symbol=inst_id, base_asset=base, quote_asset=quote, side=side,
                price=float(price), price_kind="bankruptcy", qty_base=qty_base, qty_contracts=float(size),
                contract_size=float(spec.contract_size) if spec else None, inverse=inverse,
                notional_usd=usd, notional_source=how, coverage=feed.coverage, lower_bound=feed.lower_bound,
                raw=raw_json({**envelope, "data": [{**item_rest, "details": [detail]}]}), received_at=received_at,
            ))
    return records, missing


class OkxLiquidationFeed(CcxtFeed):
    """``liquidation-orders`` for one instType (all instruments of that type)."""

    def __init__(self, inst_type: str, base_url: str | None, timeout_s: float = 20.0,
                 specs: dict[str, ContractSpec] | None = None) -> None:
        if inst_type not in FEEDS:
            raise ValueError(f"unknown OKX instType {inst_type!r}")
        super().__init__(FEEDS[inst_type], "okx", timeout_s)
        self.inst_type = inst_type
        self.base_url = base_url
        self.specs: dict[str, ContractSpec] = dict(specs or {})
        self._fixed_specs = specs is not None
        self._specs_loaded_at = 0.0
        self._refresh: asyncio.Task[None] | None = None

    def configure(self, exchange: Any) -> None:
        exchange.set_markets([])  # the channel covers every instrument of the type: no market list needed
        if self.base_url:
            exchange.urls["api"]["ws"] = rebase_ws(exchange.urls["api"]["ws"], ws_base(self.base_url))

    async def _load_specs(self) -> None:
        self._specs_loaded_at = time.monotonic()
        client = JsonHttpClient(self.base_url or "https://www.okx.com", self.timeout_s)
        try:
            self.specs.update(parse_instruments(
                await client.get("/api/v5/public/instruments", {"instType": self.inst_type})))
        except Exception as exc:  # noqa: BLE001 - rows keep contracts; notional stays NULL until specs load
            log.warning("okx %s: instruments unavailable (%s); notional unknown for now", self.inst_type, exc)
        finally:
            await client.close()

    async def prepare(self) -> None:
        if not self._fixed_specs and not self.specs:
            await self._load_specs()

    def watch_calls(self) -> list[Callable[[], Awaitable[Any]]]:
        params = {"type": CCXT_TYPE[self.inst_type]}
        return [lambda: self.exchange.watch_liquidations_for_symbols(None, None, None, params)]

    def is_ack(self, message: Any) -> bool:
        return isinstance(message, dict) and message.get("event") == "subscribe"

    def parse(self, message: Any) -> list[LiquidationRecord] | None:
        if not isinstance(message, dict) or "data" not in message:
            return None
        if (message.get("arg") or {}).get("channel") != "liquidation-orders":
            return None
        records, missing = parse_liquidation_orders(message, self.info, utcnow(), self.specs)
        if missing and not self._fixed_specs and time.monotonic() - self._specs_loaded_at > SPEC_REFRESH_S:
            if self._refresh is None or self._refresh.done():
                self._refresh = asyncio.ensure_future(self._load_specs())
        return records
