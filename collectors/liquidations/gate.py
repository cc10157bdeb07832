"""Gate futures liquidations: WS ``futures.public_liquidates`` (``!all``, raw WebSocket: not in ccxt) and
REST ``/futures/{settle}/liq_orders``.

The WS pushes at most one liquidation per contract per second (a lower bound). ``size`` is the liquidated
POSITION size with its sign: > 0 a long, < 0 a short. Sizes are contracts: base = contracts x
``quanto_multiplier`` (USDT-settled) while BTC-settled inverse contracts are worth 1 USD each.
REST ``from``/``to`` are Unix SECONDS (ccxt sends ms here, reference §0.9) and a window is at most 3600 s.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from collectors.errors import PayloadError
from collectors.http import JsonHttpClient
from collectors.liquidations.base import (
    LONG,
    SAMPLED,
    SHORT,
    UNCONFIRMED,
    ContractSpec,
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
from collectors.parsing import dec, require, require_list, ts_ms, ts_s

log = logging.getLogger(__name__)

VENUE = "gate"
CHANNEL = "futures.public_liquidates"
WS_NOTE = "≤ 1 per contract per second: a lower bound"
REST_NOTE = "liq_orders history; completeness not documented: treated as a lower bound"
SETTLES = ("usdt", "btc")
WS_FEEDS = {s: FeedInfo(VENUE, f"public_liquidates:{s}", "ws", SAMPLED, WS_NOTE) for s in SETTLES}
REST_FEEDS = {s: FeedInfo(VENUE, f"liq_orders:{s}", "rest", UNCONFIRMED, REST_NOTE) for s in SETTLES}
DEFAULT_WS = "wss://fx-ws.gateio.ws"
DEFAULT_REST = "https://api.gateio.ws"
REST_WINDOW_S = 3600
REST_LIMIT = 1000
INVERSE_CONTRACT_USD = Decimal(1)


def split_contract(contract: str) -> tuple[str, str]:
    parts = contract.split("_")
    if len(parts) < 2:
        raise PayloadError(f"gate: unexpected contract {contract!r}")
    return parts[0], parts[1]


def parse_contracts(payload: Any) -> dict[str, ContractSpec]:
    """GET /api/v4/futures/{settle}/contracts: ``[{name, type: direct|inverse, quanto_multiplier}]``."""
    specs = {}
    for row in require_list(payload, "contracts"):
        name = str(require(row, "name", "contracts"))
        base, quote = split_contract(name)
        if str(row.get("type", "direct")) == "inverse":
            specs[name] = ContractSpec(name, base, "USD", INVERSE_CONTRACT_USD, True)
            continue
        multiplier = row.get("quanto_multiplier")
        if multiplier in (None, "", "0"):
            continue
        specs[name] = ContractSpec(name, base, quote, dec(multiplier, "quanto_multiplier"), False)
    return specs


def _spec_for(contract: str, specs: dict[str, ContractSpec] | None) -> tuple[ContractSpec | None, str, str, bool]:
    spec = (specs or {}).get(contract)
    if spec is not None:
        return spec, spec.base, spec.quote, spec.inverse
    base, quote = split_contract(contract)
    return None, base, quote, quote == "USD"


def _record(feed: FeedInfo, contract: str, stamp: datetime, key: str, size: Decimal, price: Decimal,
            price_kind: str, specs: dict[str, ContractSpec] | None, raw: Any,
            received_at: datetime) -> LiquidationRecord:
    if size == 0:
        raise PayloadError(f"gate {contract}: zero size")
    spec, base, quote, inverse = _spec_for(contract, specs)
    contracts = abs(size)
    qty_base, usd, how = notional(inverse, contracts, True, spec.contract_size if spec else None, price, quote)
    return LiquidationRecord(
        venue=feed.venue, feed=feed.feed, source=feed.source, event_key=key, ts=stamp, symbol=contract,
        base_asset=base, quote_asset=quote, side=LONG if size > 0 else SHORT, price=float(price),
        price_kind=price_kind, qty_base=qty_base, qty_contracts=float(contracts),
        contract_size=float(spec.contract_size) if spec else None, inverse=inverse, notional_usd=usd,
        notional_source=how, coverage=feed.coverage, lower_bound=feed.lower_bound, raw=raw_json(raw),
        received_at=received_at,
    )


def parse_public_liquidates(message: Any, feed: FeedInfo, received_at: datetime,
                            specs: dict[str, ContractSpec] | None = None) -> list[LiquidationRecord]:
    """WS update::

        {"channel":"futures.public_liquidates","event":"update","time":1541505434,"time_ms":1541505434123,
         "result":[{"price":215.1,"size":-124,"time_ms":1541486601123,"contract":"BTC_USD"}]}"""
    envelope = {k: v for k, v in message.items() if k != "result"}
    rows = require(message, "result", CHANNEL)
    rows = [rows] if isinstance(rows, dict) else require_list(rows, f"{CHANNEL}.result")
    records = []
    for row in rows:
        contract = str(require(row, "contract", CHANNEL))
        where = f"{CHANNEL}[{contract}]"
        size = dec(require(row, "size", where), "size")
        price = dec(require(row, "price", where), "price")
        stamp = require(row, "time_ms", where)
        records.append(_record(feed, contract, ts_ms(stamp, "time_ms"), event_key(contract, stamp, size, price),
                               size, price, "fill", specs, {**envelope, "result": [row]}, received_at))
    return records


def parse_liq_orders(payload: Any, feed: FeedInfo, received_at: datetime,
                     specs: dict[str, ContractSpec] | None = None) -> list[LiquidationRecord]:
    """GET /api/v4/futures/{settle}/liq_orders (``time`` in SECONDS)::

        [{"time":1548654951,"contract":"BTC_USDT","size":600,"order_size":-600,"order_price":"3405",
          "fill_price":"3424","left":0}]

    ``size`` is the position size (> 0 long); ``fill_price`` the liquidation's average fill, else the
    order price."""
    records = []
    for row in require_list(payload, "liq_orders"):
        contract = str(require(row, "contract", "liq_orders"))
        where = f"liq_orders[{contract}]"
        size = dec(require(row, "size", where), "size")
        fill = row.get("fill_price")
        fill_dec = dec(fill, "fill_price") if fill not in (None, "", "0") else Decimal(0)
        price = fill_dec if fill_dec > 0 else dec(require(row, "order_price", where), "order_price")
        stamp = require(row, "time", where)
        key = event_key(contract, stamp, size, row.get("order_size", ""), row.get("order_price", ""),
                        row.get("fill_price", ""))
        records.append(_record(feed, contract, ts_s(stamp, "time"), key, size, price,
                               "fill" if fill_dec > 0 else "order", specs, row, received_at))
    return records


class GateSpecs:
    """quanto_multiplier per contract of one settle currency, loaded once and on unknown contracts."""

    def __init__(self, settle: str, fixed: dict[str, ContractSpec] | None = None) -> None:
        self.settle = settle
        self.specs: dict[str, ContractSpec] = dict(fixed or {})
        self.fixed = fixed is not None
        self.loaded_at = 0.0

    async def ensure(self, client: JsonHttpClient, refresh_s: float = 600.0) -> None:
        if self.fixed or (self.specs and time.monotonic() - self.loaded_at < refresh_s):
            return
        self.loaded_at = time.monotonic()
        try:
            self.specs.update(parse_contracts(await client.get(f"/api/v4/futures/{self.settle}/contracts")))
        except Exception as exc:  # noqa: BLE001 - rows keep contracts; notional stays NULL until specs load
            log.warning("gate %s: contracts unavailable (%s); notional unknown for now", self.settle, exc)


class GateLiquidatesFeed(RawWsFeed):
    """``futures.public_liquidates`` with ``["!all"]`` on one settle currency's WebSocket."""

    ping_interval_s = 10.0

    def __init__(self, settle: str, base_url: str | None, timeout_s: float = 20.0,
                 specs: dict[str, ContractSpec] | None = None) -> None:
        if settle not in SETTLES:
            raise ValueError(f"unknown Gate settle currency {settle!r}")
        root = ws_base(base_url) if base_url else DEFAULT_WS
        super().__init__(WS_FEEDS[settle], f"{root}/v4/ws/{settle}", timeout_s)
        self.settle = settle
        self.rest_base = base_url or DEFAULT_REST
        self.specs = GateSpecs(settle, specs)

    async def prepare(self) -> None:
        client = JsonHttpClient(self.rest_base, self.timeout_s)
        try:
            await self.specs.ensure(client)
        finally:
            await client.close()

    def subscribe_frames(self) -> list[str]:
        return [json.dumps({"time": int(time.time()), "channel": CHANNEL, "event": "subscribe",
                            "payload": ["!all"]})]

    def ping_frame(self) -> str | None:
        return json.dumps({"time": int(time.time()), "channel": "futures.ping"})

    def handle(self, frame: Any, ctx: FeedSession) -> str | None:
        if not isinstance(frame, dict) or frame.get("channel") != CHANNEL:
            return None
        event = frame.get("event")
        if event == "subscribe":
            error = frame.get("error")
            if error:
                raise SubscriptionRefused(f"gate subscribe refused: {error}")
            ctx.subscribed()
        elif event in ("update", "all"):
            ctx.records(parse_public_liquidates(frame, self.info, utcnow(), self.specs.specs))
        return None


class GateLiqOrdersFeed(RestPollFeed):
    """REST ``/api/v4/futures/{settle}/liq_orders`` polled in windows of at most 3600 s."""

    def __init__(self, settle: str, base_url: str | None, interval_s: float, timeout_s: float = 20.0,
                 specs: dict[str, ContractSpec] | None = None, **kwargs: Any) -> None:
        if settle not in SETTLES:
            raise ValueError(f"unknown Gate settle currency {settle!r}")
        super().__init__(REST_FEEDS[settle], base_url or DEFAULT_REST, timeout_s, interval_s,
                         lookback_s=REST_WINDOW_S, window_s=REST_WINDOW_S, max_history_s=None, **kwargs)
        self.settle = settle
        self.specs = GateSpecs(settle, specs)

    async def prepare(self, client: JsonHttpClient) -> None:
        await self.specs.ensure(client)

    async def fetch_window(self, client: JsonHttpClient, start: datetime, end: datetime) -> list[LiquidationRecord]:
        return await self._fetch(client, int(start.timestamp()), int(end.timestamp()), depth=0)

    async def _fetch(self, client: JsonHttpClient, start_s: int, end_s: int, depth: int) -> list[LiquidationRecord]:
        params = {"from": str(start_s), "to": str(end_s), "limit": str(REST_LIMIT)}
        payload = await client.get(f"/api/v4/futures/{self.settle}/liq_orders", params)
        records = parse_liq_orders(payload, self.info, utcnow(), self.specs.specs)
        if len(payload) >= REST_LIMIT and end_s - start_s > 1 and depth < 12:
            middle = (start_s + end_s) // 2  # a full page may hide more rows: split the window
            return (await self._fetch(client, start_s, middle, depth + 1)
                    + await self._fetch(client, middle, end_s, depth + 1))
        return records
