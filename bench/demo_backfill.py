"""How long `backstop demo` takes to backfill every simulated venue's published history (target: 60 s on a
quiet 2-core machine), and how many rows it stores.

    python bench/demo_backfill.py [--scenario venue-drain] [--seed 7]

Runs the demo headless (simulator in-process, no dashboard) on a scratch database until the backfill
finishes. Last line: ``backfill_s= rows= venues= failed=``
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backstop.config import load_settings  # noqa: E402
from backstop.demo import collect, start_demo  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="venue-drain")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="backstop-bench-demo-"))
    settings = load_settings(db_path=work / "user.duckdb")
    demo = start_demo(settings, work / "demo.duckdb", scenario=args.scenario, seed=args.seed)

    async def run() -> None:
        stop = asyncio.Event()

        async def stop_when_done() -> None:
            while demo.backfill_seconds is None:
                await asyncio.sleep(0.25)
            stop.set()

        watcher = asyncio.create_task(stop_when_done())
        await collect(demo, stop, lambda line: print(line, flush=True))
        await watcher

    try:
        asyncio.run(run())
    finally:
        demo.stop()
    failed = [f"{o.venue}:{o.dataset}" for o in demo.backfill_outcomes if o.status != "ok"]
    print(f"backfill_s={demo.backfill_seconds:.1f} rows={demo.backfill_rows} "
          f"venues={len(demo.settings.enabled_venues())} failed={len(failed)}")


if __name__ == "__main__":
    main()
