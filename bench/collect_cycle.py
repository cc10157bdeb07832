"""Cycle time of all venues vs the slowest venue alone, against the local simulator with injected
latency on every request. Venues are polled concurrently, so the ratio should stay close to 1.

    python bench/collect_cycle.py [--latency-ms 300] [--repeat 2]

Last line: ``all_s=… slowest_s=… ratio=…``
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backstop.config import load_settings  # noqa: E402
from backstop.service import Collector  # noqa: E402
from collectors.registry import venue_keys  # noqa: E402
from simulator.market import Market  # noqa: E402
from simulator.server import SimulatorThread  # noqa: E402
from simulator.venues import SIM_VENUES  # noqa: E402


async def timed_cycle(settings, venues: list[str]) -> tuple[float, list[str]]:
    collector = Collector.for_venues(settings, venues)
    async with collector.running():
        started = time.perf_counter()
        outcomes = await collector.run_cycle()
        elapsed = time.perf_counter() - started
    failed = [f"{o.venue}/{o.dataset}: {o.error_class}" for o in outcomes if o.status != "ok"]
    return elapsed, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=2, help="best of N per measurement")
    args = parser.parse_args()
    venues = [key for key in venue_keys() if key in SIM_VENUES]
    with SimulatorThread(Market(venues=venues, speed=0)) as sim, tempfile.TemporaryDirectory() as tmp:
        sim.faults.add(f"*:*:latency:{args.latency_ms}")
        cfg = {key: {"enabled": key in venues, **({"base_url": sim.base_url(key)} if key in venues else {})}
               for key in venue_keys()}

        def settings_for(name: str):
            return load_settings(db_path=Path(tmp) / f"{name}.duckdb", venues=cfg,
                                 collector={"max_retries": 0})

        def best(venue_list: list[str], name: str) -> float:
            times = []
            for i in range(args.repeat):
                elapsed, failed = asyncio.run(timed_cycle(settings_for(f"{name}{i}"), venue_list))
                if failed:
                    print(f"  failures: {failed}")
                times.append(elapsed)
            return min(times)

        per_venue = {}
        for key in venues:
            per_venue[key] = best([key], key)
            print(f"{key:<14} alone: {per_venue[key]:.2f} s")
        all_s = best(venues, "all")
        slowest_key = max(per_venue, key=per_venue.get)
        slowest_s = per_venue[slowest_key]
        print(f"{len(venues)} venues together: {all_s:.2f} s; slowest alone: {slowest_key} {slowest_s:.2f} s "
              f"(latency {args.latency_ms} ms per request)")
        print(f"all_s={all_s:.2f} slowest_s={slowest_s:.2f} ratio={all_s / slowest_s:.2f}")


if __name__ == "__main__":
    main()
