"""Cycle time of all venues vs the slowest venue alone, against the local simulator with injected
latency on every request. Venues are polled concurrently, so the ratio should stay close to 1.

    python bench/collect_cycle.py [--latency-ms 300] [--warm-cycles 2]

Each measurement is one long-lived collector: the first (cold) cycle also loads market metadata; the
figures on the last line are steady-state (warm) cycles, what the daemon pays every interval.
Last line: ``all_s=… slowest_s=… ratio=…``
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backstop.config import load_settings  # noqa: E402
from backstop.service import Collector  # noqa: E402
from collectors.registry import venue_keys  # noqa: E402
from simulator.market import Market  # noqa: E402
from simulator.server import SimulatorThread  # noqa: E402
from simulator.venues import SIM_VENUES  # noqa: E402


async def timed_cycles(settings: Any, venues: list[str], warm_cycles: int) -> tuple[float, float, list[str]]:
    """(cold, warm) cycle seconds for one long-lived collector: the first cycle also loads market
    metadata (ccxt markets, contract sizes); later cycles are what a daemon pays in steady state."""
    collector = Collector.for_venues(settings, venues)
    failed: list[str] = []
    async with collector.running():
        times = []
        for _ in range(1 + warm_cycles):
            started = time.perf_counter()
            outcomes = await collector.run_cycle()
            times.append(time.perf_counter() - started)
            failed += [f"{o.venue}/{o.dataset}: {o.error_class}" for o in outcomes if o.status != "ok"]
    return times[0], min(times[1:]), failed


def _serve(venues: list[str], latency_ms: int, ports: Any, stop: Any) -> None:
    """The simulator in its own process, as real venues are: its CPU work does not share our GIL."""
    with SimulatorThread(Market(venues=venues, speed=0)) as sim:
        sim.faults.add(f"*:*:latency:{latency_ms}")
        ports.put(sim.port)
        stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--warm-cycles", type=int, default=2, help="steady-state cycles after the first (best of)")
    args = parser.parse_args()
    venues = [key for key in venue_keys() if key in SIM_VENUES]
    ports: Any = multiprocessing.Queue()
    stop = multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(venues, args.latency_ms, ports, stop), daemon=True)
    server.start()
    port = ports.get(timeout=60)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = {key: {"enabled": key in venues,
                     **({"base_url": f"http://127.0.0.1:{port}/{key}"} if key in venues else {})}
               for key in venue_keys()}

        def settings_for(name: str):
            return load_settings(db_path=Path(tmp) / f"{name}.duckdb", venues=cfg,
                                 collector={"max_retries": 0})

        def measure(venue_list: list[str], name: str) -> tuple[float, float]:
            cold, warm, failed = asyncio.run(timed_cycles(settings_for(name), venue_list, args.warm_cycles))
            if failed:
                print(f"  failures: {sorted(set(failed))}")
            return cold, warm

        per_venue: dict[str, tuple[float, float]] = {}
        for key in venues:
            per_venue[key] = measure([key], key)
            print(f"{key:<14} alone: cold {per_venue[key][0]:.2f} s, warm {per_venue[key][1]:.2f} s")
        all_cold, all_s = measure(venues, "all")
        slowest_key = max(per_venue, key=lambda k: per_venue[k][1])
        slowest_s = per_venue[slowest_key][1]
        cold_slowest = max(cold for cold, _ in per_venue.values())
        print(f"{len(venues)} venues together: cold {all_cold:.2f} s (slowest venue cold {cold_slowest:.2f} s), "
              f"warm {all_s:.2f} s; slowest alone (warm): {slowest_key} {slowest_s:.2f} s "
              f"(latency {args.latency_ms} ms per request, simulator in its own process)")
    stop.set()
    server.join(10)
    print(f"all_s={all_s:.2f} slowest_s={slowest_s:.2f} ratio={all_s / slowest_s:.2f}")


if __name__ == "__main__":
    main()
