"""Render every dashboard page against a database and time it: server time per page, cold and warm,
next to the bare DuckDB time of exactly the queries that page ran.

Each page is measured in a fresh process (AppTest, no browser):
  startup  first run of the app in the process (imports + the Overview page)
  cold     first render of the page in that process (st.cache_data empty, DuckDB/OS caches as they are)
  warm     a later render with st.cache_data cleared (median of --repeat)
  cached   a later render with st.cache_data kept (what most reruns cost)
  bare     the same storage.analytics calls the page made, run directly (median of --repeat)
  ratio    warm / bare
The last line is ``max_warm_s=… max_ratio=… rss_mb=…`` (rss = peak resident set of the worst process).

    .venv/bin/python bench/dashboard.py --db bench/out/history.duckdb [--range 30d]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
PAGES = {
    "overview": "views/overview.py",
    "funds": "views/funds.py",
    "coverage": "views/coverage.py",
    "divergence": "views/divergence.py",
    "health": "views/health.py",
    "stress": "views/stress.py",
}
QUERY_FUNCTIONS = ("database_overview", "known_venues", "fund_span", "fund_series", "oi_series",
                   "fund_pools_latest", "oi_latest", "liquidations_summary",
                   "firing_alerts", "collector_health")
# module -> named queries (not analytics); the assessments' own nested queries count inside them
OTHER_QUERY_FUNCTIONS = {"storage.stress_inputs": ("load_inputs",), "alerts.judgement": ("assessments_for",)}


def _child(db: str, page: str, range_key: str, repeat: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    os.environ["BACKSTOP_DB"] = db
    import importlib

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from storage import analytics

    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    recording = {"on": False, "depth": 0}

    def recorder(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if recording["on"] and not recording["depth"]:  # a query's own nested queries count once
                calls.append((name, args, kwargs))
            recording["depth"] += 1
            try:
                return fn(*args, **kwargs)
            finally:
                recording["depth"] -= 1
        return wrapped

    originals = {name: getattr(analytics, name) for name in QUERY_FUNCTIONS}
    for name, fn in originals.items():
        setattr(analytics, name, recorder(name, fn))
    for module_name, names in OTHER_QUERY_FUNCTIONS.items():
        module = importlib.import_module(module_name)
        for name in names:
            originals[name] = getattr(module, name)
            setattr(module, name, recorder(name, originals[name]))

    at = AppTest.from_file(str(APP), default_timeout=600)
    at.query_params["range"] = range_key

    def render(clear: bool) -> float:
        if clear:
            st.cache_data.clear()
        t0 = time.perf_counter()
        at.run()
        elapsed = time.perf_counter() - t0
        if at.exception:
            raise RuntimeError(f"{page}: {at.exception[0].message}")
        return elapsed

    startup = render(clear=False)
    if page == "overview":
        cold = startup
    else:
        at.switch_page(PAGES[page])
        cold = render(clear=True)
    warm = []
    for i in range(repeat):
        recording["on"] = i == 0
        warm.append(render(clear=True))
        recording["on"] = False
    cached = render(clear=False)
    bare = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for name, args, kwargs in calls:
            originals[name](*args, **kwargs)
        bare.append(time.perf_counter() - t0)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"page": page, "startup_s": startup, "cold_s": cold, "warm_s": statistics.median(warm),
            "cached_s": cached, "bare_s": statistics.median(bare), "queries": len(calls), "rss_mb": rss_mb}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True)
    parser.add_argument("--range", default="30d", help="time range of the pages (URL value: 24h, 7d, 30d, … all)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--page", choices=list(PAGES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.page:  # child process
        print(json.dumps(_child(args.db, args.page, args.range, args.repeat)), flush=True)
        return 0
    if not Path(args.db).exists():
        print(f"no database at {args.db} (make one with bench/make_history.py)", file=sys.stderr)
        return 2
    results = []
    for page in PAGES:
        out = subprocess.run(
            [sys.executable, __file__, "--db", args.db, "--range", args.range, "--repeat", str(args.repeat),
             "--page", page], capture_output=True, text=True, check=False, cwd=ROOT)
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            return 1
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"database {args.db}, range {args.range}, repeat {args.repeat}")
    print(f"{'page':<12}{'startup s':>10}{'cold s':>9}{'warm s':>9}{'cached s':>10}{'bare s':>9}{'ratio':>7}"
          f"{'queries':>9}{'rss MB':>8}")
    for r in results:
        ratio = r["warm_s"] / r["bare_s"] if r["bare_s"] > 0 else float("inf")
        print(f"{r['page']:<12}{r['startup_s']:>10.2f}{r['cold_s']:>9.2f}{r['warm_s']:>9.2f}{r['cached_s']:>10.3f}"
              f"{r['bare_s']:>9.2f}{ratio:>7.2f}{r['queries']:>9}{r['rss_mb']:>8.0f}")
    max_warm = max(r["warm_s"] for r in results)
    max_ratio = max(r["warm_s"] / r["bare_s"] for r in results if r["bare_s"] > 0)
    rss = max(r["rss_mb"] for r in results)
    print(f"max_warm_s={max_warm:.2f} max_ratio={max_ratio:.2f} rss_mb={rss:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
