"""Each simulated venue's liquidation stream protocol as the venue documents it: how a client subscribes
(and the venue's error answers), its pings, and the messages it pushes (one payload builder per venue,
shared with the REST histories in ``simulator.liquidation_history``). A venue's protocol is a pair
``(on_text, push)`` run by ``simulator.stream_hub.Connection``.

Throttling as the venues document it: Binance and Gate push at most the latest liquidation per symbol per
second, OKX is sampled the same way (several ``details[]`` per message when a push spans seconds), Bybit
pushes everything in 500 ms batches, HTX pushes everything (gzip-compressed frames); the cadence and
sampling of each endpoint are in ``simulator.streams.FEEDS``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from simulator.market_state import SimContract, SimLiquidation
from simulator.stream_hub import Connection, Handlers, base_qty, num

BITFINEX_HB_S = 5.0  # Bitfinex heartbeats every 15 s; shorter here so short tests see them


# -- Binance -----------------------------------------------------------------------------------------------

def binance_event(contract: SimContract, liq: SimLiquidation, now_ms: int) -> dict[str, Any]:
    qty = liq.qty_contracts if contract.inverse else liq.qty_contracts * contract.contract_size
    pair = {"ps": contract.symbol.split("_", 1)[0]} if contract.inverse else {}  # COIN-M adds the pair
    order: dict[str, Any] = {
        "s": contract.symbol, **pair, "S": "SELL" if liq.position_side == "long" else "BUY", "o": "LIMIT",
        "f": "IOC", "q": num(qty), "p": num(liq.bankruptcy_price), "ap": num(liq.fill_price), "X": "FILLED",
        "l": num(qty), "z": num(qty), "T": liq.ts_ms,
    }
    return {"e": "forceOrder", "E": now_ms, "o": order}


def binance_handlers(inverse: bool) -> Handlers:
    async def on_text(conn: Connection, payload: Any) -> None:
        if not isinstance(payload, dict) or payload.get("method") != "SUBSCRIBE":
            return
        for stream in payload.get("params") or []:
            if stream == "!forceOrder@arr":
                conn.all_symbols = True
            elif str(stream).endswith("@forceOrder"):
                conn.symbols.add(str(stream).split("@", 1)[0].upper())
        conn.subscribed = True
        await conn.send({"result": None, "id": payload.get("id")}, record=False)

    async def push(conn: Connection) -> None:
        items = conn.pending(lambda c: c.inverse == inverse)
        now = conn.hub.market.now_ms()
        for contract, liq in items:
            await conn.send(binance_event(contract, liq, now))
        conn.note(items, len(items))

    return on_text, push


# -- Bybit -------------------------------------------------------------------------------------------------

def bybit_row(contract: SimContract, liq: SimLiquidation) -> dict[str, Any]:
    qty = liq.qty_contracts if contract.inverse else liq.qty_contracts * contract.contract_size
    return {"T": liq.ts_ms, "s": contract.symbol, "S": "Buy" if liq.position_side == "long" else "Sell",
            "v": num(qty), "p": num(liq.bankruptcy_price)}


def bybit_handlers(inverse: bool) -> Handlers:
    async def on_text(conn: Connection, payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        op = payload.get("op")
        if op == "ping":
            await conn.send({"success": True, "ret_msg": "pong", "conn_id": conn.conn_id,
                             "req_id": payload.get("req_id"), "op": "ping"}, record=False)
            return
        if op != "subscribe":
            return
        venue = conn.hub.venue(conn.venue)
        contracts = venue.contracts if venue else {}
        bad = []
        for topic in payload.get("args") or []:
            name, _, symbol = str(topic).partition(".")
            contract = contracts.get(symbol)
            if name != "allLiquidation" or contract is None or contract.inverse != inverse:
                bad.append(str(topic))
            else:
                conn.symbols.add(symbol)
        if bad:
            await conn.send({"success": False, "ret_msg": f"Invalid symbol :[{','.join(bad)}]",
                             "conn_id": conn.conn_id, "req_id": payload.get("req_id"), "op": "subscribe"},
                            record=False)
            return
        conn.subscribed = True
        await conn.send({"success": True, "ret_msg": "", "conn_id": conn.conn_id,
                         "req_id": payload.get("req_id"), "op": "subscribe"}, record=False)

    async def push(conn: Connection) -> None:
        items = conn.pending(lambda c: c.inverse == inverse)
        by_symbol: dict[str, list[dict[str, Any]]] = {}
        for contract, liq in items:
            by_symbol.setdefault(contract.symbol, []).append(bybit_row(contract, liq))
        now = conn.hub.market.now_ms()
        for symbol, rows in by_symbol.items():
            await conn.send({"topic": f"allLiquidation.{symbol}", "type": "snapshot", "ts": now, "data": rows})
        conn.note(items, len(by_symbol))

    return on_text, push


# -- OKX ---------------------------------------------------------------------------------------------------

def okx_inst_type(contract: SimContract) -> str:
    return str(contract.extra.get("inst_type") or ("SWAP" if contract.symbol.endswith("-SWAP") else "FUTURES"))


def okx_detail(liq: SimLiquidation) -> dict[str, Any]:
    """One ``details[]`` entry of a ``liquidation-orders`` push (size in contracts)."""
    return {"bkLoss": "0", "bkPx": num(liq.bankruptcy_price), "ccy": "", "posSide": liq.position_side,
            "side": "sell" if liq.position_side == "long" else "buy", "sz": num(liq.qty_contracts),
            "ts": str(liq.ts_ms)}


def okx_handlers() -> Handlers:
    async def on_text(conn: Connection, payload: Any) -> None:
        if payload == "ping":
            await conn.send("pong", record=False)
            return
        if not isinstance(payload, dict) or payload.get("op") != "subscribe":
            return
        for arg in payload.get("args") or []:
            inst_type = str(arg.get("instType", ""))
            if arg.get("channel") != "liquidation-orders" or inst_type not in ("SWAP", "FUTURES"):
                await conn.send({"event": "error", "code": "60018",
                                 "msg": f"Wrong URL or channel:{arg.get('channel')},instType:{inst_type} doesn't exist",
                                 "connId": conn.conn_id}, record=False)
                continue
            conn.scopes.add(inst_type)
            conn.all_symbols = True
            conn.subscribed = True
            await conn.send({"event": "subscribe", "arg": {"channel": "liquidation-orders", "instType": inst_type},
                             "connId": conn.conn_id}, record=False)

    async def push(conn: Connection) -> None:
        items = conn.pending(lambda c: okx_inst_type(c) in conn.scopes)
        groups: dict[tuple[str, str], list[tuple[SimContract, SimLiquidation]]] = {}
        for contract, liq in items:
            groups.setdefault((okx_inst_type(contract), contract.symbol), []).append((contract, liq))
        frames = 0
        for (inst_type, inst_id), members in groups.items():
            contract = members[0][0]
            family = "-".join(inst_id.split("-")[:2])
            details = [okx_detail(liq) for _, liq in members]
            await conn.send({"arg": {"channel": "liquidation-orders", "instType": inst_type},
                             "data": [{"details": details, "instFamily": family, "instId": contract.symbol,
                                       "instType": inst_type, "uly": family}]})
            frames += 1
        conn.note(items, frames)

    return on_text, push


# -- Gate --------------------------------------------------------------------------------------------------

def gate_row(contract: SimContract, liq: SimLiquidation) -> dict[str, Any]:
    """One ``futures.public_liquidates`` result row (signed size in contracts: + long)."""
    return {"price": liq.fill_price, "size": liq.qty_contracts if liq.position_side == "long" else -liq.qty_contracts,
            "time_ms": liq.ts_ms, "contract": contract.symbol}


def gate_handlers(inverse: bool) -> Handlers:
    channel = "futures.public_liquidates"

    async def on_text(conn: Connection, payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        now = conn.hub.market.now_ms()
        if payload.get("channel") == "futures.ping":
            await conn.send({"time": now // 1000, "time_ms": now, "channel": "futures.pong", "event": "",
                             "result": None}, record=False)
            return
        if payload.get("channel") != channel or payload.get("event") != "subscribe":
            return
        for contract in payload.get("payload") or []:
            if contract == "!all":
                conn.all_symbols = True
            else:
                conn.symbols.add(str(contract))
        conn.subscribed = True
        await conn.send({"time": now // 1000, "time_ms": now, "channel": channel, "event": "subscribe",
                         "error": None, "result": {"status": "success"}}, record=False)

    async def push(conn: Connection) -> None:
        items = conn.pending(lambda c: c.inverse == inverse)
        if not items:
            return
        now = conn.hub.market.now_ms()
        rows = [gate_row(contract, liq) for contract, liq in items]
        await conn.send({"channel": channel, "event": "update", "time": now // 1000, "time_ms": now, "result": rows})
        conn.note(items, 1)

    return on_text, push


# -- HTX ---------------------------------------------------------------------------------------------------

def htx_row(contract: SimContract, liq: SimLiquidation) -> dict[str, Any]:
    amount = base_qty(contract, liq)
    return {"symbol": contract.base, "contract_code": contract.symbol,
            "direction": "sell" if liq.position_side == "long" else "buy", "offset": "close",
            "volume": liq.qty_contracts, "price": liq.bankruptcy_price, "created_at": liq.ts_ms, "amount": amount,
            "trade_turnover": amount * liq.fill_price, "contract_type": "swap", "pair": contract.symbol,
            "business_type": "swap"}


def htx_handlers() -> Handlers:
    async def on_text(conn: Connection, payload: Any) -> None:
        if not isinstance(payload, dict) or payload.get("op") != "sub":
            return
        topic = str(payload.get("topic", ""))
        parts = topic.split(".")
        now = conn.hub.market.now_ms()
        if len(parts) != 3 or parts[0] != "public" or parts[2] != "liquidation_orders":
            await conn.send({"op": "sub", "cid": payload.get("cid"), "topic": topic, "ts": now, "err-code": 2001,
                             "err-msg": "invalid topic"}, record=False)
            return
        if parts[1] == "*":
            conn.all_symbols = True
        else:
            conn.symbols.add(parts[1])
        conn.subscribed = True
        await conn.send({"op": "sub", "cid": payload.get("cid"), "topic": topic, "ts": now, "err-code": 0},
                        record=False)

    async def push(conn: Connection) -> None:
        items = conn.pending(lambda c: not c.inverse)
        by_code: dict[str, list[dict[str, Any]]] = {}
        for contract, liq in items:
            by_code.setdefault(contract.symbol, []).append(htx_row(contract, liq))
        now = conn.hub.market.now_ms()
        for code, rows in by_code.items():
            await conn.send({"op": "notify", "topic": f"public.{code}.liquidation_orders", "ts": now, "data": rows})
        conn.note(items, len(by_code))

    return on_text, push


async def htx_ping(conn: Connection) -> None:
    await conn.send({"op": "ping", "ts": str(conn.hub.market.now_ms())}, record=False)


# -- Bitfinex --------------------------------------------------------------------------------------------

def bitfinex_entry(contract: SimContract, liq: SimLiquidation) -> list[Any]:
    """``["pos", POS_ID, MTS, _, SYMBOL, ±AMOUNT, BASE_PRICE, _, IS_MATCH, IS_MARKET_SOLD, _, PRICE_ACQUIRED]``:
    the position (base units, + long), its entry price (about one margin away from bankruptcy), acquired
    at the fill price by a market execution."""
    amount = base_qty(contract, liq)
    entry = liq.bankruptcy_price * (Decimal("1.05") if liq.position_side == "long" else Decimal("0.95"))
    return ["pos", 100_000_000 + liq.seq, liq.ts_ms, None, contract.symbol,
            amount if liq.position_side == "long" else -amount, entry.quantize(liq.bankruptcy_price), None, 1, 1,
            None, liq.fill_price]


def bitfinex_handlers() -> Handlers:
    async def on_text(conn: Connection, payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        now = conn.hub.market.now_ms()
        if payload.get("event") == "ping":
            await conn.send({"event": "pong", "ts": now, "cid": payload.get("cid")}, record=False)
            return
        if payload.get("event") != "subscribe":
            return
        if payload.get("channel") != "status" or payload.get("key") != "liq:global":
            await conn.send({"event": "error", "msg": "subscribe: invalid", "code": 10300,
                             "channel": payload.get("channel"), "key": payload.get("key")}, record=False)
            return
        conn.chan_id = 91684 + conn.hub.next_id()
        conn.all_symbols = True
        conn.subscribed = True
        await conn.send({"event": "subscribed", "channel": "status", "chanId": conn.chan_id, "key": "liq:global"},
                        record=False)

    async def push(conn: Connection) -> None:
        items = conn.pending(lambda c: not c.inverse)
        if not items:
            return
        await conn.send([conn.chan_id, [bitfinex_entry(contract, liq) for contract, liq in items]])
        conn.note(items, 1)

    return on_text, push


async def bitfinex_greeting(conn: Connection) -> None:
    conn.ping_s = BITFINEX_HB_S
    await conn.send({"event": "info", "version": 2, "serverId": "sim-bitfinex", "platform": {"status": 1}},
                    record=False)


async def bitfinex_heartbeat(conn: Connection) -> None:
    if conn.subscribed:
        await conn.send([conn.chan_id, "hb"], record=False)

