"""How big Backstop's data gets: rows and bytes per venue per day, in DuckDB and in the Parquet lake, and
the year-scale extrapolation used in the README's "Scaling out".

    python bench/sizes.py [--days 14] [--venues 10] [--contracts 100]

Writes a history with ``bench/make_history.py`` (5-minute OI per contract, funds at each venue's cadence,
funding, prices, run rows), syncs it to a lake, and measures per dataset: rows per venue per day, DuckDB
bytes per venue per day (file size shared out by row share), Parquet bytes per venue per day.
Last line: ``rows_per_venue_day= duckdb_bytes_per_venue_day= parquet_bytes_per_venue_day= year_gb_duckdb=
year_gb_parquet=`` (the year figures for the measured number of venues).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backstop.lake_cli import sync_from_file  # noqa: E402
from storage.db import read_connection  # noqa: E402
from storage.lake import LakeLocation  # noqa: E402

DATASETS = {"open-interest": "open_interest", "funds": "fund_balances", "funding": "funding_rates",
            "prices": "prices", "runs": "collection_runs"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--venues", type=int, default=10)
    parser.add_argument("--contracts", type=int, default=100)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="backstop-bench-sizes-"))
    try:
        db = work / "history.duckdb"
        subprocess.run([sys.executable, str(Path(__file__).with_name("make_history.py")), "--db", str(db),
                        "--days", str(args.days), "--venues", str(args.venues), "--contracts", str(args.contracts),
                        "--run-days", str(args.days)], check=True, stdout=subprocess.DEVNULL)
        lake = work / "lake"
        sync_from_file(db, LakeLocation.parse(str(lake)), list(DATASETS))
        with read_connection(db) as con:
            counts = {name: int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])  # noqa: S608
                      for name, table in DATASETS.items()}
        total_rows = sum(counts.values())
        db_bytes = db.stat().st_size
        venue_days = args.venues * args.days
        print(f"{'dataset':<14} {'rows/venue/day':>15} {'parquet B/venue/day':>20}")
        parquet_total = 0
        for name, rows in counts.items():
            parquet = sum(p.stat().st_size for p in (lake / f"dataset={name}").rglob("*.parquet"))
            parquet_total += parquet
            print(f"{name:<14} {rows / venue_days:>15,.0f} {parquet / venue_days:>20,.0f}")
        per_rows = total_rows / venue_days
        per_db = db_bytes / venue_days
        per_parquet = parquet_total / venue_days
        year = 365 * args.venues
        print(f"DuckDB file {db_bytes / 1e6:,.1f} MB for {total_rows:,} rows over {args.days} days x {args.venues} venues")
        print(f"rows_per_venue_day={per_rows:.0f} duckdb_bytes_per_venue_day={per_db:.0f} "
              f"parquet_bytes_per_venue_day={per_parquet:.0f} year_gb_duckdb={per_db * year / 1e9:.2f} "
              f"year_gb_parquet={per_parquet * year / 1e9:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
