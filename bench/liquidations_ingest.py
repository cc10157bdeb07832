"""Liquidation ingest bench: the real feed code (ccxt.pro for Bybit/Binance/OKX, raw WebSocket for Gate/HTX)
against the simulator in a separate process, writing to DuckDB through the collector's Store.

    .venv/bin/python bench/liquidations_ingest.py                 # 60 s at ~3,000 liquidations/s generated
    .venv/bin/python bench/liquidations_ingest.py --duration 10   # quick run
    .venv/bin/python bench/liquidations_ingest.py --agg-rows 20000000   # aggregate speed on a big table

Counts: a *message* is one liquidation event received and parsed by the collector (Bybit and HTX push
every generated one, Binance/OKX/Gate at most one per symbol per second, so fewer of theirs reach us).
``lost`` = liquidations the simulator emitted minus those stored (duplicates can never be stored).
The last line is ``msgs_per_s=… duration_s=… rss_mb=… lost=…``; rss_mb is the collector process's peak RSS
(the simulator runs in its own process).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from simulator.market import Market

# generated liquidations per second per venue, and how many symbols they spread over
DEFAULT_RATES = {"bybit": 1500, "htx": 600, "binance": 400, "okx": 400, "gate": 400}
SYMBOLS = {"bybit": 50, "htx": 20, "binance": 400, "okx": 400, "gate": 400}


def symbol_name(venue: str, i: int) -> str:
    coin = f"C{i:03d}"
    return {"bybit": f"{coin}USDT", "htx": f"{coin}-USDT", "binance": f"{coin}USDT",
            "okx": f"{coin}-USDT-SWAP", "gate": f"{coin}_USDT"}[venue]


def bench_market() -> Market:
    from simulator.market import Market, SimContract, SimVenue

    market = Market(venues=["binance"], speed=0)
    for venue, count in SYMBOLS.items():
        state = market.venues.get(venue) or SimVenue(venue)
        market.venues[venue] = state
        size = {"okx": "0.01", "gate": "0.0001", "htx": "0.001"}.get(venue, "1")
        for i in range(count):
            name = symbol_name(venue, i)
            extra = {"category": "linear"} if venue == "bybit" else {}  # Bybit's tickers filter on it
            state.contracts[name] = SimContract(name, f"C{i:03d}", "USDT", "USDT", Decimal(size), False, Decimal(1),
                                                extra=extra)
    return market


# -- the simulator process ------------------------------------------------------------------------------------

async def generate(market: Market, rates: dict[str, int], duration: float, state: dict[str, Any]) -> None:
    """Append liquidations at ``rates`` (per second) for ``duration`` seconds, in 10 ms steps."""
    from simulator.market import SimLiquidation

    counter = itertools.count()
    names = {venue: [symbol_name(venue, i) for i in range(SYMBOLS[venue])] for venue in rates}
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < duration:
        now_ms = int(time.time() * 1000)
        for venue, rate in rates.items():
            target = int(elapsed * rate) - state["generated"].get(venue, 0)
            book = market.venue(venue).liquidations
            symbols = names[venue]
            for _ in range(max(0, target)):
                n = next(counter)
                price = Decimal(60_000) + Decimal(n % 100_000) / 100
                book.append(SimLiquidation(f"{venue}-{n}", symbols[n % len(symbols)], now_ms,
                                           "long" if n % 3 else "short", Decimal(1 + n % 7), price,
                                           price * Decimal("1.0005"), Decimal(0)))
            state["generated"][venue] = state["generated"].get(venue, 0) + max(0, target)
        await asyncio.sleep(0.01)
    state["done"] = True


async def serve(port: int) -> None:
    """The simulator process (kept out of the collector process so its memory and CPU are not counted)."""
    from aiohttp import web

    from simulator.faults import FaultBook
    from simulator.server import create_app

    market = bench_market()
    app = create_app(market, FaultBook())
    state: dict[str, Any] = {"generated": {}, "done": False}
    tasks: list[asyncio.Task[None]] = []

    async def start(request: web.Request) -> web.Response:
        body = await request.json()
        tasks.append(asyncio.create_task(generate(market, body["rates"], float(body["duration"]), state)))
        return web.json_response({"ok": True})

    async def status(_: web.Request) -> web.Response:
        return web.json_response(state)

    app.router.add_post("/_bench/start", start)
    app.router.add_get("/_bench/status", status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - the port when 0 was asked
    print(f"PORT={bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


# -- the collector side -----------------------------------------------------------------------------------------

def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run_bench(duration: float, rates: dict[str, int], flush_s: float, verbose: bool = False) -> int:
    from backstop.config import load_settings
    from backstop.service import Collector
    from collectors.liquidations.base import ContractSpec
    from collectors.liquidations.binance import BinanceForceOrderFeed
    from collectors.liquidations.bybit import BybitAllLiquidationFeed
    from collectors.liquidations.gate import GateLiquidatesFeed
    from collectors.liquidations.htx import HtxLiquidationFeed
    from collectors.liquidations.integration import make_service
    from collectors.liquidations.okx import OkxLiquidationFeed
    from storage.db import read_connection

    child = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    workdir: Path | None = None
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        if not line.startswith("PORT="):
            raise RuntimeError(f"simulator did not start: {line!r}")
        root = f"http://127.0.0.1:{line[5:]}"
        base = lambda venue: f"{root}/{venue}"  # noqa: E731
        workdir = Path(tempfile.mkdtemp(prefix="liq-bench-"))
        settings = load_settings(db_path=workdir / "bench.duckdb")
        collector = Collector(settings=settings)
        okx_specs = {symbol_name("okx", i): ContractSpec(symbol_name("okx", i), f"C{i:03d}", "USDT", Decimal("0.01"), False)
                     for i in range(SYMBOLS["okx"])}
        gate_specs = {symbol_name("gate", i): ContractSpec(symbol_name("gate", i), f"C{i:03d}", "USDT",
                                                           Decimal("0.0001"), False) for i in range(SYMBOLS["gate"])}
        feeds = [
            BybitAllLiquidationFeed("linear", base("bybit"), [symbol_name("bybit", i) for i in range(SYMBOLS["bybit"])]),
            BinanceForceOrderFeed("usdm", base("binance")),
            OkxLiquidationFeed("SWAP", base("okx"), specs=okx_specs),
            GateLiquidatesFeed("usdt", base("gate"), specs=gate_specs),
            HtxLiquidationFeed(base("htx")),
        ]
        service = make_service(collector, feeds, flush_s=flush_s)
        tasks = [asyncio.create_task(service.sink.run())] + [asyncio.create_task(r.run()) for r in service.runners]
        await asyncio.wait_for(asyncio.gather(*(r.started.wait() for r in service.runners)), 60)
        if verbose:
            print(f"subscribed; rss_mb={rss_mb():.0f}", flush=True)

        def received() -> int:
            return sum(r.stats.records + r.stats.duplicates for r in service.runners)

        async with aiohttp.ClientSession() as http:
            async with http.post(f"{root}/_bench/start", json={"rates": rates, "duration": duration}) as resp:
                resp.raise_for_status()
            began = time.monotonic()
            start_count = received()
            peak_rss = rss_mb()
            samples: list[float] = []
            windows: list[float] = []
            last_count, last_t = start_count, began
            while time.monotonic() - began < duration:
                await asyncio.sleep(1.0)
                now, count = time.monotonic(), received()
                windows.append((count - last_count) / (now - last_t))
                last_count, last_t = count, now
                samples.append(rss_mb())
                peak_rss = max(peak_rss, samples[-1])
                if verbose:
                    print(f"t={now - began:5.1f}s rate={windows[-1]:6.0f}/s rss_mb={rss_mb():.0f} "
                          f"pending={service.sink.pending}", flush=True)
            elapsed = time.monotonic() - began
            in_window = received() - start_count
            # drain: the simulator's last pushes, then the writer
            stable_since, seen = time.monotonic(), received()
            while time.monotonic() - stable_since < 3.0 and time.monotonic() - began < duration + 60:
                await asyncio.sleep(0.25)
                if received() != seen or service.sink.pending:
                    seen, stable_since = received(), time.monotonic()
                peak_rss = max(peak_rss, rss_mb())
                if verbose:
                    print(f"drain rss_mb={rss_mb():.0f} pending={service.sink.pending}", flush=True)
            async with http.get(f"{root}/_control/liquidation-streams") as resp:
                emitted_by_feed = (await resp.json())["feeds"]
            async with http.get(f"{root}/_bench/status") as resp:
                generated = (await resp.json())["generated"]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        peak_rss = max(peak_rss, rss_mb())  # the collector's peak; what follows is the bench's own check
        if verbose:
            print(f"stopped rss_mb={rss_mb():.0f}", flush=True)
        with read_connection(settings.db) as con:
            stored_rows = con.execute("SELECT venue, count(*), count(DISTINCT (feed, event_key)) FROM liquidations "
                                      "GROUP BY venue ORDER BY venue").fetchall()
        stored = {venue: n for venue, n, _ in stored_rows}
        duplicates = sum(n - d for _, n, d in stored_rows)
        emitted = {key.split(":")[0]: 0 for key in emitted_by_feed}
        for key, info in emitted_by_feed.items():
            emitted[key.split(":")[0]] += int(info["events"])
        lost = sum(emitted.values()) - sum(stored.values())
        stats = service.stats()
        print(f"generated per venue: {generated}")
        print(f"emitted by the simulator: {emitted}")
        print(f"stored: {stored}  duplicate rows stored: {duplicates}")
        print("per feed: " + ", ".join(f"{k} frames={v.frames} records={v.records} dups={v.duplicates} "
                                       f"errors={v.parse_errors} gaps={v.gaps}" for k, v in stats["feeds"].items()))
        print(f"writer: flushes={service.sink.flushes} written={service.sink.written}; "
              f"per-second rate min={min(windows):.0f} median={sorted(windows)[len(windows) // 2]:.0f} "
              f"max={max(windows):.0f}; db={settings.db.stat().st_size / 1e6:.1f} MB")
        print(f"collector RSS sampled every second: median {sorted(samples)[len(samples) // 2]:.0f} MB, "
              f"peak {peak_rss:.0f} MB (rss_mb below is the peak)")
        print(f"msgs_per_s={in_window / elapsed:.0f} duration_s={elapsed:.1f} rss_mb={peak_rss:.0f} lost={lost}")
        return 0 if lost == 0 and duplicates == 0 else 1
    finally:
        child.terminate()
        child.wait(10)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


# -- aggregate speed on a big table ----------------------------------------------------------------------------

def agg_bench(rows: int) -> int:
    """Load ``rows`` synthetic liquidations (one year, 6 venues), rebuild the rollup, time the aggregates."""
    from datetime import UTC, datetime, timedelta

    from metrics.cascades import CascadeParams
    from storage import liquidations as liq
    from storage.db import write_connection

    workdir = Path(tempfile.mkdtemp(prefix="liq-agg-"))
    db = workdir / "agg.duckdb"
    end = datetime(2026, 1, 1, tzinfo=UTC)
    clock = time.monotonic()
    with write_connection(db) as con:
        con.execute(
            """
            INSERT INTO liquidations
            SELECT ['binance','bybit','okx','gate','htx','bitmex'][1 + i % 6], 'bench', 'ws', 'k' || i,
                   ?::TIMESTAMPTZ - INTERVAL 365 DAY + to_microseconds(i * (31536000000000 // ?)),
                   'BTCUSDT', 'BTC', 'USDT', CASE WHEN i % 3 = 0 THEN 'short' ELSE 'long' END, 60000.0, 'bankruptcy',
                   0.01 * (1 + i % 9), NULL, NULL, false, 600.0 * (1 + i % 9), 'base_x_price', 'sampled', true,
                   '{}', ?::TIMESTAMPTZ, ?::TIMESTAMPTZ
            FROM range(?) AS t(i)
            """,
            [end, rows, end, end, rows],
        )
        load_s = time.monotonic() - clock
        clock = time.monotonic()
        liq.rebuild_minutes(con)
        rollup_s = time.monotonic() - clock
        minutes = con.execute("SELECT count(*) FROM liquidation_minutes").fetchall()[0][0]
        timings = {}
        for label, bucket, since in (("1d over the year", "1d", None), ("1h over 30 days", "1h", end - timedelta(days=30)),
                                     ("1m over 1 day", "1m", end - timedelta(days=1))):
            clock = time.monotonic()
            frame = liq.volumes(con, bucket, since, end)
            timings[label] = (time.monotonic() - clock, len(frame))
        clock = time.monotonic()
        liq.detect_and_store(con, CascadeParams(), end)  # a 7-hour window
        cascade_s = time.monotonic() - clock
    shutil.rmtree(workdir, ignore_errors=True)
    print(f"rows={rows} load_s={load_s:.1f} rollup_rebuild_s={rollup_s:.1f} rollup_rows={minutes}")
    for label, (seconds, n) in timings.items():
        print(f"aggregate {label}: {seconds * 1000:.0f} ms ({n} rows)")
    print(f"cascade detection (7 h window, all venues + market): {cascade_s * 1000:.0f} ms")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", action="store_true", help="(internal) run the simulator process")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every generation rate")
    parser.add_argument("--flush-s", type=float, default=1.0)
    parser.add_argument("--verbose", action="store_true", help="print rate and RSS every second")
    parser.add_argument("--agg-rows", type=int, default=0, help="instead: aggregate speed on N synthetic rows")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(0))
        return 0
    if args.agg_rows:
        return agg_bench(args.agg_rows)
    rates = {venue: int(rate * args.scale) for venue, rate in DEFAULT_RATES.items()}
    return asyncio.run(run_bench(args.duration, rates, args.flush_s, args.verbose))


if __name__ == "__main__":
    sys.exit(main())
