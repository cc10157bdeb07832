"""Lake sync speed against DuckDB's own partitioned Parquet COPY of the same rows.

    python bench/lake.py [--venues 10] [--contracts 100] [--days 14] [--every-min 5]

Fills a fresh database (real schema, migrations applied) with open-interest rows at the given shape, then
times (1) ``backstop lake sync`` of that dataset into an empty folder — fingerprints, partitioned COPY,
publish, manifest — and (2) a bare ``COPY (SELECT …) TO … (FORMAT parquet, PARTITION_BY (venue, date))`` of
the same rows, and (3) a re-sync, which must write nothing. Target: ratio = sync ÷ bare copy ≤ 1.5.
Last line: ``rows= sync_s= rows_per_s= ratio=``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb  # noqa: E402

from backstop.lake_cli import sync_from_file  # noqa: E402
from storage.db import ensure_database, write_connection  # noqa: E402
from storage.lake import LakeLocation  # noqa: E402

FILL = """
INSERT INTO open_interest BY NAME
SELECT 'venue' || v AS venue, 'C' || c || '-PERP' AS symbol,
       TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_minutes(CAST(step * ? AS BIGINT)) AS ts,
       'BTC' AS base_asset, 'USDT' AS settle_asset, CAST(1000 + c + step AS VARCHAR) AS oi_raw,
       'contracts' AS oi_unit, 1.0 AS contract_size, false AS inverse,
       1000.0 + c + step AS oi_base, (1000.0 + c + step) * 50000 AS oi_usd, now() AS fetched_at
FROM range(?) AS a(v), range(?) AS b(c), range(?) AS s(step)
"""


def fill(db: Path, venues: int, contracts: int, steps: int, every_min: int) -> int:
    ensure_database(db)
    with write_connection(db) as con:
        con.execute(FILL, [every_min, venues, contracts, steps])
        return int(con.execute("SELECT count(*) FROM open_interest").fetchall()[0][0])


def bare_copy(db: Path, folder: Path) -> float:
    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    started = time.perf_counter()
    con.execute(
        "COPY (SELECT t.* EXCLUDE (venue), t.venue AS venue, strftime(CAST(t.ts AS DATE), '%Y-%m-%d') AS date "  # noqa: S608 - a temp folder
        f"FROM open_interest t) TO '{folder}' (FORMAT parquet, PARTITION_BY (venue, date))"
    )
    elapsed = time.perf_counter() - started
    con.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venues", type=int, default=10)
    parser.add_argument("--contracts", type=int, default=100)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--every-min", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="backstop-bench-lake-"))
    try:
        db = work / "bench.duckdb"
        steps = args.days * 24 * 60 // args.every_min
        rows = fill(db, args.venues, args.contracts, steps, args.every_min)
        print(f"filled {rows} open-interest rows ({args.venues} venues x {args.contracts} contracts x "
              f"{steps} steps)", flush=True)
        timings: dict[str, Any] = {}
        bare = bare_copy(db, work / "bare")
        location = LakeLocation.parse(str(work / "lake"))
        started = time.perf_counter()
        report = sync_from_file(db, location, ["open-interest"])
        timings["sync"] = time.perf_counter() - started
        started = time.perf_counter()
        again = sync_from_file(db, location, ["open-interest"])
        timings["resync"] = time.perf_counter() - started
        assert report.rows_written == rows, (report.rows_written, rows)
        assert again.rows_written == 0
        print(f"bare COPY {bare:.2f} s; sync {timings['sync']:.2f} s ({report.partitions_written} partitions); "
              f"re-sync {timings['resync']:.2f} s writing {again.rows_written} rows", flush=True)
        print(f"rows={rows} sync_s={timings['sync']:.2f} rows_per_s={rows / timings['sync']:.0f} "
              f"ratio={timings['sync'] / bare:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
