"""Venue route tables as data: each ``simulator.venues.<key>`` module declares ``ROUTES`` (method, path,
module-level handler) and its handlers find the market through the app (``market_of``), so a venue's
endpoints read as one flat table and no handler closes over per-app state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Final, NamedTuple

from aiohttp import web

from simulator.market import Market

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MARKET_KEY: Final = web.AppKey("market", Market)


class Route(NamedTuple):
    """One endpoint of a venue: HTTP method, path under ``/<venue>/``, handler."""

    method: str
    path: str
    handler: Handler


def market_of(request: web.Request) -> Market:
    """The market the serving app was built for (stored on the root app; venues are sub-apps)."""
    return request.config_dict[MARKET_KEY]


def route_defs(routes: Iterable[Route]) -> list[web.RouteDef]:
    """aiohttp route definitions; a GET also answers HEAD, as ``web.get`` does."""
    return [web.get(r.path, r.handler) if r.method == "GET" else web.route(r.method, r.path, r.handler)
            for r in routes]
