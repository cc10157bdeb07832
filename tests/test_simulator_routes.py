"""Every row of every simulated venue's ``ROUTES`` table is served by the real simulator: the path reaches
its module-level handler (never the router's 404/405), the handler finds the market through the app
(``simulator.routing.market_of``) and answers without raising, and a GET row also answers HEAD as
``web.get`` routes did before the tables were flat."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import aiohttp

from simulator.routing import Route
from simulator.server import SimulatorThread
from simulator.venues import SIM_VENUES, venue_module

ROUTER_MISS = ("404: Not Found", "405: Method Not Allowed")
CRASH = "500 Internal Server Error"  # aiohttp's answer when a handler raises (Bitfinex's own errors are 500s)


def _concrete(path: str, symbol: str) -> str:
    """The path with its placeholders filled: a settle currency for Gate, else one of the venue's symbols."""
    return re.sub(r"{(\w+)}", lambda m: "usdt" if m.group(1) == "settle" else symbol, path)


async def _answers(sim: SimulatorThread) -> list[tuple[str, Route, int, int | None, str]]:
    rows = []
    async with aiohttp.ClientSession() as session:
        for key in SIM_VENUES:
            symbol = next(iter(sim.market.venue(key).contracts))
            for route in venue_module(key).ROUTES:
                url = sim.base_url(key) + _concrete(route.path, symbol)
                async with session.request(route.method, url, data=b"{}") as resp:
                    status, body = resp.status, await resp.text()
                head = None
                if route.method == "GET":
                    async with session.head(url) as head_resp:
                        head = head_resp.status
                rows.append((key, route, status, head, body))
    return rows


def test_every_route_row_reaches_its_handler(sim_factory: Callable[..., SimulatorThread]) -> None:
    sim = sim_factory()
    rows = asyncio.run(_answers(sim))
    assert {key for key, *_ in rows} == set(SIM_VENUES)
    assert len(rows) == sum(len(venue_module(key).ROUTES) for key in SIM_VENUES)
    for key, route, status, head, body in rows:
        where = f"{key} {route.method} {route.path}"
        assert not body.startswith(ROUTER_MISS), f"{where}: not routed ({status} {body})"
        assert not body.startswith(CRASH), f"{where}: the handler raised ({body[:200]})"
        if route.method == "GET":
            assert head == status, f"{where}: HEAD {head} != GET {status}"
