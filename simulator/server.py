"""The local venue server: a real aiohttp server on 127.0.0.1 answering every simulated venue at its real
paths under ``/<venue>/`` (so ``base_url = http://127.0.0.1:PORT/<venue>``), with fault injection and
a small control endpoint (``/_control/faults``, ``/_control/state``)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from simulator.faults import FaultBook, FaultRule, FaultSpecError
from simulator.market import Market
from simulator.respond import reply
from simulator.routing import MARKET_KEY, route_defs
from simulator.streams import mount_streams
from simulator.venues import venue_module


def _transform(node: Any, kind: str, arg: str) -> Any:
    """rename: ``old=new`` renames a key everywhere; stringify: ``field`` turns its value into text
    that is not a number; drop: ``field`` removes it."""
    if isinstance(node, list):
        return [_transform(v, kind, arg) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        value = _transform(value, kind, arg)
        if kind == "rename":
            old, _, new = arg.partition("=")
            out[new if key == old else key] = value
        elif kind == "stringify" and key == arg:
            out[key] = f"n/a:{value}"
        elif kind == "drop" and key == arg:
            continue
        else:
            out[key] = value
    return out


def _fault_middleware(venue: str, faults: FaultBook, market: Market) -> Callable[..., Awaitable[Any]]:
    @web.middleware
    async def middleware(request: web.Request,
                         handler: Callable[..., Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        path = request.path
        rel = path[len(venue) + 1:] if path.startswith(f"/{venue}/") else path
        market.advance()
        rules = faults.take(venue, rel)
        body_rules: list[FaultRule] = []
        for rule in rules:
            if rule.kind == "latency":
                await asyncio.sleep(float(rule.arg or 300) / 1000)
            elif rule.kind == "timeout":
                await asyncio.sleep(float(rule.arg or 120))
            elif rule.kind == "429":
                return web.Response(status=429, text='{"code":-1003,"msg":"Too many requests"}',
                                    headers={"Retry-After": rule.arg or "1"}, content_type="application/json")
            elif rule.kind == "410":  # the venue retired this path
                return web.Response(status=410, text="Gone", content_type="text/plain")
            elif rule.kind in ("500", "502", "503") or rule.kind == "error_rate":
                code = int(rule.kind) if rule.kind.isdigit() else 500
                return web.Response(status=code, text="upstream error", content_type="text/plain")
            elif rule.kind == "dark":
                return web.Response(status=503, text="service unavailable", content_type="text/plain")
            elif rule.kind == "malformed":
                return web.Response(status=200, text='{"code":0,"data":[{"oops"', content_type="application/json")
            elif rule.kind in ("rename", "stringify", "drop"):
                body_rules.append(rule)
        response = await handler(request)
        if body_rules and isinstance(response, web.Response) and response.text:
            data = json.loads(response.text)
            for rule in body_rules:
                data = _transform(data, rule.kind, rule.arg)
            return reply(data, status=response.status)
        return response

    return middleware


FAULTS_KEY = web.AppKey("faults", FaultBook)


def create_app(market: Market, faults: FaultBook | None = None) -> web.Application:
    faults = faults or FaultBook()
    app = web.Application()
    app[MARKET_KEY] = market
    app[FAULTS_KEY] = faults
    for key in market.venues:
        sub = web.Application(middlewares=[_fault_middleware(key, faults, market)])
        sub.add_routes(route_defs(venue_module(key).ROUTES))
        app.add_subapp(f"/{key}/", sub)
    mount_streams(app, market, faults)  # liquidation WebSocket streams + REST histories (simulator.streams)

    async def get_faults(_: web.Request) -> web.Response:
        return reply(faults.describe())

    async def post_faults(request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clear"):
            faults.clear(body.get("venue"))
        for spec in body.get("add", []):
            try:
                faults.add(spec)
            except FaultSpecError as exc:
                return reply({"error": str(exc)}, status=400)
        return reply(faults.describe())

    async def get_state(_: web.Request) -> web.Response:
        return reply({
            "now_ms": market.now_ms(), "scenario": market.scenario, "seed": market.seed, "speed": market.speed,
            "venues": {k: {p: str(pool.balance) for p, pool in v.pools.items()} for k, v in market.venues.items()},
            "simulated": True,
        })

    app.router.add_get("/_control/faults", get_faults)
    app.router.add_post("/_control/faults", post_faults)
    app.router.add_get("/_control/state", get_state)
    return app


class SimulatorThread:
    """Runs the server on its own event loop in a daemon thread (tests, benches, ``demo``)."""

    def __init__(self, market: Market, host: str = "127.0.0.1", port: int = 0,
                 faults: FaultBook | None = None) -> None:
        self.market = market
        self.faults = faults or FaultBook()
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulator", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._runner = web.AppRunner(create_app(self.market, self.faults), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server  # noqa: SLF001 - the bound port when port=0
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    def start(self) -> SimulatorThread:
        self._thread.start()
        self._ready.wait(30)
        if self._error:
            raise self._error
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def base_url(self, venue: str) -> str:
        return f"{self.url}/{venue}"

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def serve_forever(market: Market, host: str, port: int, faults: FaultBook,
                        stop: asyncio.Event) -> int:
    runner = web.AppRunner(create_app(market, faults), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    return port
