"""Liquidation streams of the simulated venues as one flat route table: the WebSocket endpoints (each a
``Feed``: venue, path, cadence, throttling and the venue's protocol from ``simulator.stream_venues``, run
by ``simulator.stream_hub``), fed by ``market.venue(key).liquidations`` (read at push time: the market
model appends to it), plus the REST liquidation histories (``simulator.liquidation_history``).

Paths (under the simulator root; the venue prefix is the venue's base_url):
  /binance/market/ws[/{n}], /binance/ws[/{n}]   USDⓈ-M ``!forceOrder@arr``
  /binancecoinm/ws[/{n}]                        COIN-M ``!forceOrder@arr`` (venue binancecoinm)
  /bybit/v5/public/linear, /bybit/v5/public/inverse   ``allLiquidation.{symbol}``
  /okx/ws/v5/public                             ``liquidation-orders`` (SWAP: ids ending -SWAP; FUTURES)
  /gate/v4/ws/usdt, /gate/v4/ws/btc             ``futures.public_liquidates`` (linear / inverse)
  /htx/linear-swap-notification                 ``public.*.liquidation_orders``
  /bitfinex/ws/2                                ``status`` channel, key ``liq:global`` (every liquidation)
  GET /gate/api/v4/futures/{settle}/liq_orders, GET /htx/linear-swap-api/v3/swap_liquidation_orders,
  GET /htx/v5/market/liquidation_orders (v3 retired with the fault ``htx:/linear-swap-api/v3/*:410``)
  GET /bitfinex/v2/liquidations/hist
  GET /_control/liquidation-streams             what was emitted per feed (tests, bench)

Stream faults (``disconnect``, ``duplicate``) are described in ``simulator.stream_hub``.
"""

from __future__ import annotations

from aiohttp import web

from simulator.faults import FaultBook
from simulator.liquidation_history import (
    bitfinex_liquidations_hist,
    gate_liq_orders,
    htx_liquidation_orders,
    htx_liquidation_orders_v5,
)
from simulator.market import Market
from simulator.respond import reply
from simulator.routing import Route, route_defs
from simulator.stream_hub import Feed, StreamHub, hub_of, open_hub
from simulator.stream_venues import (
    binance_handlers,
    bitfinex_greeting,
    bitfinex_handlers,
    bitfinex_heartbeat,
    bybit_handlers,
    gate_handlers,
    htx_handlers,
    htx_ping,
    okx_handlers,
)

BINANCE_USDM = Feed("binance", "/market/ws", "binance:usdm", 0.1, True, binance_handlers(inverse=False))
BINANCE_COINM = Feed("binancecoinm", "/ws", "binancecoinm", 0.1, True, binance_handlers(inverse=True))
OKX = Feed("okx", "/ws/v5/public", "okx", 0.2, True, okx_handlers())
HTX = Feed("htx", "/linear-swap-notification", "htx", 0.2, False, htx_handlers(), gzip_frames=True,
           server_ping=htx_ping)
BITFINEX = Feed("bitfinex", "/ws/2", "bitfinex", 0.2, False, bitfinex_handlers(), server_ping=bitfinex_heartbeat,
                greeting=bitfinex_greeting)
BYBIT_LINEAR = Feed("bybit", "/v5/public/linear", "bybit:linear", 0.5, False, bybit_handlers(inverse=False))
BYBIT_INVERSE = Feed("bybit", "/v5/public/inverse", "bybit:inverse", 0.5, False, bybit_handlers(inverse=True))
GATE_USDT = Feed("gate", "/v4/ws/usdt", "gate:usdt", 0.2, True, gate_handlers(inverse=False))
GATE_BTC = Feed("gate", "/v4/ws/btc", "gate:btc", 0.2, True, gate_handlers(inverse=True))


async def control(request: web.Request) -> web.Response:
    """What each feed emitted so far (``StreamHub.describe``) and the simulated clock."""
    hub = hub_of(request)
    return reply({"feeds": hub.describe(), "now_ms": hub.market.now_ms()})


ROUTES: list[Route] = [
    Route("GET", "/binance/market/ws", BINANCE_USDM.serve),
    Route("GET", "/binance/market/ws/{n}", BINANCE_USDM.serve),
    Route("GET", "/binance/ws", BINANCE_USDM.serve),
    Route("GET", "/binance/ws/{n}", BINANCE_USDM.serve),
    Route("GET", "/binancecoinm/ws", BINANCE_COINM.serve),
    Route("GET", "/binancecoinm/ws/{n}", BINANCE_COINM.serve),
    Route("GET", "/okx/ws/v5/public", OKX.serve),
    Route("GET", "/htx/linear-swap-notification", HTX.serve),
    Route("GET", "/gate/api/v4/futures/{settle}/liq_orders", gate_liq_orders),
    Route("GET", "/htx/linear-swap-api/v3/swap_liquidation_orders", htx_liquidation_orders),
    Route("GET", "/bitfinex/ws/2", BITFINEX.serve),
    Route("GET", "/bitfinex/v2/liquidations/hist", bitfinex_liquidations_hist),
    Route("GET", "/htx/v5/market/liquidation_orders", htx_liquidation_orders_v5),
    Route("GET", "/bybit/v5/public/linear", BYBIT_LINEAR.serve),
    Route("GET", "/bybit/v5/public/inverse", BYBIT_INVERSE.serve),
    Route("GET", "/gate/v4/ws/usdt", GATE_USDT.serve),
    Route("GET", "/gate/v4/ws/btc", GATE_BTC.serve),
    Route("GET", "/_control/liquidation-streams", control),
]


def mount_streams(app: web.Application, market: Market, faults: FaultBook) -> StreamHub:
    """Add the liquidation stream routes to the simulator app (after the venue sub-apps: a venue module's
    own route of the same path wins). Venues are looked up per connection, so a venue added to
    ``market.venues`` later is served too."""
    hub = open_hub(app, market, faults)
    app.add_routes(route_defs(ROUTES))
    return hub
