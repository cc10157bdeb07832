"""The simulated venues' REST liquidation histories (the streams' companions, over the same
``venue.liquidations``): Gate ``liq_orders``, HTX v3 ``swap_liquidation_orders`` (retired with the fault
``htx:/linear-swap-api/v3/*:410``) and v5 ``liquidation_orders``, Bitfinex ``liquidations/hist``. Module-level
handlers for the route table in ``simulator.streams``; rows reuse the stream payload builders."""

from __future__ import annotations

from aiohttp import web

from simulator.respond import reply
from simulator.stream_hub import hub_of, num
from simulator.stream_venues import bitfinex_entry, htx_row
from simulator.venues.bitfinex import error as bitfinex_error
from simulator.venues.bitfinex import hist_query

HTX_PAGE = 100
BITFINEX_LIQ_MAX = 500


async def gate_liq_orders(request: web.Request) -> web.Response:
    """GET /api/v4/futures/{settle}/liq_orders: ``from``/``to`` in seconds (at most an hour apart),
    ``contract``, ``limit``; newest first; HTTP 400 with Gate's label on bad parameters."""
    hub = hub_of(request)
    venue = hub.venue("gate")
    settle = request.match_info["settle"]
    if venue is None or settle not in ("usdt", "btc"):
        return reply({"label": "INVALID_PARAM_VALUE", "message": "invalid settle"}, status=400)
    try:
        start = int(request.query.get("from", "0"))
        end = int(request.query.get("to", str(hub.market.now_ms() // 1000)))
        limit = min(int(request.query.get("limit", "100")), 1000)
    except ValueError:
        return reply({"label": "INVALID_PARAM_VALUE", "message": "from/to/limit must be integers"}, status=400)
    if end - start > 3600:
        return reply({"label": "INVALID_PARAM_VALUE", "message": "time range can not exceed 3600 seconds"},
                     status=400)
    hub.market.advance()
    wanted = request.query.get("contract")
    rows = []
    for liq in reversed(venue.liquidations):
        contract = venue.contracts.get(liq.symbol)
        if contract is None or contract.inverse != (settle == "btc") or (wanted and liq.symbol != wanted):
            continue
        if not start <= liq.ts_ms // 1000 <= end:
            continue
        size = liq.qty_contracts if liq.position_side == "long" else -liq.qty_contracts
        rows.append({"time": liq.ts_ms // 1000, "contract": liq.symbol, "size": size, "order_size": -size,
                     "order_price": num(liq.bankruptcy_price), "fill_price": num(liq.fill_price), "left": 0})
        if len(rows) >= limit:
            break
    return reply(rows)


async def htx_liquidation_orders(request: web.Request) -> web.Response:
    """GET /linear-swap-api/v3/swap_liquidation_orders: a 2 h window, ``trade_type`` (5 sell, 6 buy),
    pages of ``HTX_PAGE`` walked back with ``from_id`` (query ids stable in arrival order)."""
    hub = hub_of(request)
    venue = hub.venue("htx")
    now = hub.market.now_ms()
    if hub.take_fault("htx", "/linear-swap-api/v3/swap_liquidation_orders", ("410",)):
        return web.Response(status=410, text="Gone", content_type="text/plain")  # v3 retired
    if venue is None:
        return reply({"code": 1010, "msg": "no such venue", "data": None, "ts": now})
    try:
        start = int(request.query.get("start_time", str(now - 7_200_000)))
        end = int(request.query.get("end_time", str(now)))
        from_id = int(request.query["from_id"]) if "from_id" in request.query else None
        trade_type = int(request.query.get("trade_type", "0"))
    except ValueError:
        return reply({"code": 1067, "msg": "invalid parameter", "data": None, "ts": now})
    if end - start > 7_200_000:
        return reply({"code": 1067, "msg": "the query window cannot exceed 2 hours", "data": None, "ts": now})
    hub.market.advance()
    for liq in venue.liquidations:  # stable query ids in arrival order
        if liq.liq_id not in hub.htx_ids:
            hub.htx_ids[liq.liq_id] = len(hub.htx_ids) + 1
    wanted = request.query.get("contract")
    rows = []
    for liq in sorted(venue.liquidations, key=lambda item: hub.htx_ids[item.liq_id], reverse=True):
        contract = venue.contracts.get(liq.symbol)
        query_id = hub.htx_ids[liq.liq_id]
        if contract is None or contract.inverse or (wanted and liq.symbol != wanted):
            continue
        if from_id is not None and query_id >= from_id:
            continue
        if not start <= liq.ts_ms <= end:
            continue
        direction = "sell" if liq.position_side == "long" else "buy"
        if (trade_type == 5 and direction != "sell") or (trade_type == 6 and direction != "buy"):
            continue
        row = htx_row(contract, liq)
        row.update({"query_id": query_id, "symbol": "USDT", "pair": "-".join(liq.symbol.split("-")[:2])})
        rows.append(row)
        if len(rows) >= HTX_PAGE:
            break
    return reply({"code": 200, "msg": "", "data": rows, "ts": now})


async def bitfinex_liquidations_hist(request: web.Request) -> web.Response:
    """``/v2/liquidations/hist?start&end&limit&sort``: each entry wrapped in its own list; HTTP 500 with
    ``["error", CODE, "text"]`` on bad parameters, as Bitfinex answers."""
    hub = hub_of(request)
    venue = hub.venue("bitfinex")
    query = hist_query(request, hub.market.now_ms(), BITFINEX_LIQ_MAX)
    if isinstance(query, web.Response):
        return query
    if venue is None:
        return bitfinex_error(10020, "limit: invalid")
    hub.market.advance()
    chosen = [(venue.contracts[liq.symbol], liq) for liq in venue.liquidations
              if liq.symbol in venue.contracts and query.start <= liq.ts_ms <= query.end]
    return reply([[bitfinex_entry(contract, liq)] for contract, liq in query.pick(chosen)])


async def htx_liquidation_orders_v5(request: web.Request) -> web.Response:
    """GET /v5/market/liquidation_orders (ccxt's shape): ``contract_code``, ``start_time``, ``end_time``,
    ``limit``; newest first; texts for numbers."""
    hub = hub_of(request)
    venue = hub.venue("htx")
    now = hub.market.now_ms()
    if venue is None:
        return reply({"code": 1010, "message": "no such venue", "data": None, "ts": now})
    try:
        start = int(request.query.get("start_time", str(now - 7_200_000)))
        end = int(request.query.get("end_time", str(now)))
        limit = min(int(request.query.get("limit", str(HTX_PAGE))), HTX_PAGE)
    except ValueError:
        return reply({"code": 1067, "message": "invalid parameter", "data": None, "ts": now})
    hub.market.advance()
    wanted = request.query.get("contract_code")
    rows = []
    for liq in sorted(venue.liquidations, key=lambda item: (item.ts_ms, item.liq_id), reverse=True):
        contract = venue.contracts.get(liq.symbol)
        if contract is None or contract.inverse or (wanted and liq.symbol != wanted):
            continue
        if not start <= liq.ts_ms <= end:
            continue
        row = htx_row(contract, liq)
        rows.append({"id": liq.liq_id, "contract_code": liq.symbol,
                     "liquidation_time": str(liq.ts_ms), "side": row["direction"],
                     "position_side": liq.position_side, "volume": str(row["volume"]),
                     "amount": str(row["volume"]), "bankrupt_price": str(row["price"]),
                     "trade_turnover": str(row["trade_turnover"])})
        if len(rows) >= limit:
            break
    return reply({"code": 200, "message": "Success", "data": rows, "ts": now})
