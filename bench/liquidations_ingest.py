"""Collector memory and liquidation ingest bench: the whole ``backstop collect`` daemon (REST jobs, the real
feed code - ccxt.pro for Bybit/Binance/OKX, raw WebSocket for Gate/HTX -, alerts, rollups) in its own
process against the simulator in another, a burst of liquidations, then an idle period.

    .venv/bin/python bench/liquidations_ingest.py                 # 60 s burst at ~3,300/s generated, 10 min idle
    .venv/bin/python bench/liquidations_ingest.py --duration 10 --idle-s 30   # quick run
    .venv/bin/python bench/liquidations_ingest.py --agg-rows 20000000   # aggregate speed on a big table

Counts: a *message* is one liquidation event the simulator pushed on a stream during the burst (Bybit and
HTX push every generated one, Binance/OKX/Gate at most one per symbol per second).
``lost`` = stream events the simulator emitted minus stream rows stored (duplicates can never be stored).
Memory is the RSS of the collector's whole process tree, sampled every second (the simulator is not in it).
The last line is ``msgs_per_s=… duration_s=… rss_mb=… lost=… collector_peak_mb=… collector_idle_growth_mb=…``
(rss_mb = collector_peak_mb; idle growth = the median RSS of the idle period's last minute minus that of
its first minute: a leak moves the level, a poll that happens to run at the last sample does not).
Targets: msgs_per_s >= 2000, lost = 0, collector_peak_mb <= 350, collector_idle_growth_mb <= 5.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import signal
import statistics
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
    from simulator.market import Market
    from simulator.market_state import SimContract, SimVenue

    market = Market(venues=list(SYMBOLS), speed=0)  # the venues' REST state too: the whole collector polls it
    for venue, count in SYMBOLS.items():
        state = market.venues.get(venue) or SimVenue(venue)
        market.venues[venue] = state
        size = {"okx": "0.01", "gate": "0.0001", "htx": "0.001"}.get(venue, "1")
        template = next(iter(state.contracts.values()))
        for i in range(count):
            name = symbol_name(venue, i)
            # the venue's own first (linear USDT) contract is the template: its modules filter on these fields
            extra = dict(template.extra) | ({"family": f"C{i:03d}-USDT"} if venue == "okx" else {})
            if template.symbol in state.pools:  # HTX keeps one fund per contract: the template's serves
                state.pools[name] = state.pools[template.symbol]
            state.contracts[name] = SimContract(name, f"C{i:03d}", "USDT", "USDT", Decimal(size), False, Decimal(1),
                                                extra=extra)
    return market


# -- the simulator process ------------------------------------------------------------------------------------

async def generate(market: Market, rates: dict[str, int], duration: float, state: dict[str, Any]) -> None:
    """Append liquidations at ``rates`` (per second) for ``duration`` seconds, in 10 ms steps."""
    from simulator.market_state import SimLiquidation

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

def tree_rss_mb(pid: int) -> float:
    """RSS of ``pid`` and all its descendants (the whole collector, however many processes it runs)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total_kb, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            status = (Path("/proc") / str(current) / "status").read_text()
        except OSError:
            continue
        total_kb += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total_kb / 1024


def write_config(path: Path, db: Path, root: str) -> None:
    """A backstop.toml with the five stream venues pointed at the bench simulator (streams on, their REST
    datasets at the default intervals, REST liquidation pollers off: ``lost`` compares stream events)."""
    from collectors.registry import venue_keys

    lines = [f'db = "{db.as_posix()}"', "simulated = true", ""]
    for key in venue_keys():
        lines.append(f"[venues.{key}]")
        if key in SYMBOLS:
            lines.append(f'base_url = "{root}/{key}"')
            lines.append("intervals.liquidations = 0")
            if key == "bybit":
                names = ", ".join(f'"{symbol_name(key, i)}"' for i in range(SYMBOLS[key]))
                lines.append(f"symbols = [{names}]")
        else:
            lines.append("enabled = false")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


async def emitted_events(http: aiohttp.ClientSession, root: str) -> dict[str, int]:
    async with http.get(f"{root}/_control/liquidation-streams") as resp:
        feeds = (await resp.json())["feeds"]
    emitted: dict[str, int] = {}
    for key, info in feeds.items():
        emitted[key.split(":")[0]] = emitted.get(key.split(":")[0], 0) + int(info["events"])
    return emitted


async def run_bench(duration: float, idle_s: float, rates: dict[str, int], verbose: bool = False) -> int:
    """The real ``backstop collect`` daemon in its own process (REST jobs, liquidation streams, alerts,
    rollups), RSS of its whole process tree sampled every second through the burst and the idle period."""
    from storage.db import read_connection

    child = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    collector: subprocess.Popen[bytes] | None = None
    workdir = Path(tempfile.mkdtemp(prefix="liq-bench-"))
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        if not line.startswith("PORT="):
            raise RuntimeError(f"simulator did not start: {line!r}")
        root = f"http://127.0.0.1:{line[5:]}"
        db = workdir / "bench.duckdb"
        config = workdir / "backstop.toml"
        write_config(config, db, root)
        collector = subprocess.Popen([sys.executable, "-m", "backstop.cli", "--config", str(config),
                                      "--log-level", "WARNING", "collect"], cwd=ROOT, stdout=subprocess.DEVNULL)
        peak = 0.0

        def sample() -> float:
            nonlocal peak
            assert collector is not None
            if collector.poll() is not None:
                raise RuntimeError(f"the collector exited with {collector.returncode}")
            rss = tree_rss_mb(collector.pid)
            peak = max(peak, rss)
            return rss

        async with aiohttp.ClientSession() as http:
            # subscribed = every stream venue has a connection (and the first REST cycle had time to run)
            connected_by = time.monotonic() + 120
            while True:
                async with http.get(f"{root}/_control/liquidation-streams") as resp:
                    feeds = (await resp.json())["feeds"]
                live = {key.split(":")[0] for key, info in feeds.items() if info["connections"]}
                sample()
                if live >= set(rates):
                    break
                if time.monotonic() > connected_by:
                    raise RuntimeError(f"streams not connected after 120 s: {sorted(live)}")
                await asyncio.sleep(0.5)
            await asyncio.sleep(5.0)  # every subscription acknowledged; the first REST cycle done
            if verbose:
                print(f"subscribed; rss_mb={sample():.0f}", flush=True)
            async with http.post(f"{root}/_bench/start", json={"rates": rates, "duration": duration}) as resp:
                resp.raise_for_status()
            began = time.monotonic()
            before = sum((await emitted_events(http, root)).values())
            samples: list[float] = []
            while time.monotonic() - began < duration:
                await asyncio.sleep(1.0)
                samples.append(sample())
                if verbose:
                    print(f"t={time.monotonic() - began:5.1f}s rss_mb={samples[-1]:.0f}", flush=True)
            elapsed = time.monotonic() - began
            # drain: the simulator's last pushes reach the collector, its writer flushes (every second)
            stable_since, seen = time.monotonic(), -1
            while time.monotonic() - stable_since < 5.0:
                await asyncio.sleep(0.5)
                rss = sample()
                if verbose:
                    print(f"drain rss_mb={rss:.0f}", flush=True)
                total = sum((await emitted_events(http, root)).values())
                if total != seen:
                    seen, stable_since = total, time.monotonic()
            burst_events = seen - before
            idle_start = sample()
            idle_samples = [idle_start]
            idle_began = time.monotonic()
            while time.monotonic() - idle_began < idle_s:
                await asyncio.sleep(1.0)
                idle_samples.append(sample())
                if verbose and len(idle_samples) % (1 if idle_s <= 60 else 30) == 0:
                    print(f"idle t={time.monotonic() - idle_began:5.0f}s rss_mb={idle_samples[-1]:.0f}", flush=True)
            emitted = await emitted_events(http, root)
            async with http.get(f"{root}/_bench/status") as resp:
                generated = (await resp.json())["generated"]
        collector.send_signal(signal.SIGTERM)  # the daemon flushes what it holds and exits
        exit_code = collector.wait(60)
        with read_connection(db) as con:
            stored_rows = con.execute("SELECT venue, count(*), count(DISTINCT (feed, event_key)) FROM liquidations "
                                      "WHERE source = 'ws' GROUP BY venue ORDER BY venue").fetchall()
            runs = con.execute("SELECT status, count(*) FROM collection_runs GROUP BY status ORDER BY status").fetchall()
        stored = {venue: n for venue, n, _ in stored_rows}
        duplicates = sum(n - d for _, n, d in stored_rows)
        lost = sum(emitted.values()) - sum(stored.values())
        # growth = the level of the last idle minute minus that of the first (medians of their 1 s samples):
        # a single sample lands on a poll or rollup now and then (+13 MB for the second it runs), a leak moves
        # the whole minute
        window = min(60, max(1, len(idle_samples) // 4))
        idle_growth = statistics.median(idle_samples[-window:]) - statistics.median(idle_samples[:window])
        print(f"generated per venue: {generated}")
        print(f"emitted by the simulator: {emitted}")
        print(f"stored (stream rows): {stored}  duplicate rows stored: {duplicates}")
        print(f"REST runs by status: {dict(runs)}; collector exit code {exit_code}; "
              f"db={db.stat().st_size / 1e6:.1f} MB")
        print(f"collector tree RSS: burst median {sorted(samples)[len(samples) // 2]:.0f} MB, peak {peak:.0f} MB; "
              f"idle {idle_s:.0f} s: start {idle_start:.1f} MB, end {idle_samples[-1]:.1f} MB, "
              f"max {max(idle_samples):.1f} MB; first/last {window} s median "
              f"{statistics.median(idle_samples[:window]):.1f} / {statistics.median(idle_samples[-window:]):.1f} MB")
        print(f"msgs_per_s={burst_events / elapsed:.0f} duration_s={elapsed:.1f} rss_mb={peak:.0f} lost={lost} "
              f"collector_peak_mb={peak:.0f} collector_idle_growth_mb={idle_growth:.1f}")
        return 0 if lost == 0 and duplicates == 0 and exit_code == 0 else 1
    finally:
        if collector is not None and collector.poll() is None:
            collector.kill()
            collector.wait(10)
        child.terminate()
        child.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


# -- aggregate speed on a big table ----------------------------------------------------------------------------

def agg_bench(rows: int) -> int:
    """Load ``rows`` synthetic liquidations (one year, 6 venues), rebuild the rollup, time the aggregates."""
    from datetime import UTC, datetime, timedelta

    from metrics.cascades import CascadeParams
    from storage.db import write_connection
    from storage.liquidation_reads import volumes
    from storage.liquidation_writes import detect_and_store, rebuild_minutes

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
        rebuild_minutes(con)
        rollup_s = time.monotonic() - clock
        minutes = con.execute("SELECT count(*) FROM liquidation_minutes").fetchall()[0][0]
        timings = {}
        for label, bucket, since in (("1d over the year", "1d", None), ("1h over 30 days", "1h", end - timedelta(days=30)),
                                     ("1m over 1 day", "1m", end - timedelta(days=1))):
            clock = time.monotonic()
            frame = volumes(con, bucket, since, end)
            timings[label] = (time.monotonic() - clock, len(frame))
        clock = time.monotonic()
        detect_and_store(con, CascadeParams(), end)  # a 7-hour window
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
    parser.add_argument("--idle-s", type=float, default=600.0,
                        help="seconds of idling after the burst over which memory growth is measured")
    parser.add_argument("--verbose", action="store_true", help="print rate and RSS every second")
    parser.add_argument("--agg-rows", type=int, default=0, help="instead: aggregate speed on N synthetic rows")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(0))
        return 0
    if args.agg_rows:
        return agg_bench(args.agg_rows)
    rates = {venue: int(rate * args.scale) for venue, rate in DEFAULT_RATES.items()}
    return asyncio.run(run_bench(args.duration, args.idle_s, rates, args.verbose))


if __name__ == "__main__":
    sys.exit(main())
