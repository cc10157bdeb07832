"""Write a large, realistic history into a Backstop database, through the project's bulk write path.

Default: 2 years x 10 venues x 100 contracts of 5-minute open interest (210 M rows), funds at each
venue's own cadence (Bybit-like isolated pools every minute), 8-hourly funding, 5-minute prices and
collection-run rows for the last 30 days, liquidations for the last 90 days (complete feeds, ~4 per venue
and minute, with the per-minute rollup), then the dashboard's hourly rollups (``refresh_rollups``). Rows are built as Arrow tables with numpy (no Python object
per row) and go through ``storage.batch_writes.insert_idempotent`` in multi-day chunks, in time order, so
DuckDB's zone maps stay tight (the dashboard's range scans depend on that).

    .venv/bin/python bench/make_history.py --db bench/out/history.duckdb
    .venv/bin/python bench/make_history.py --db /tmp/small.duckdb --days 60 --contracts 20
    .venv/bin/python bench/make_history.py --db bench/out/history.duckdb --add-liquidations   # to an older one
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.base import Batch, PoolMember  # noqa: E402
from storage.analytics import refresh_rollups  # noqa: E402
from storage.batch_writes import TABLES, insert_idempotent, revalue_funds, write_batch  # noqa: E402
from storage.db import write_connection  # noqa: E402
from storage.liquidation_writes import rebuild_minutes  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling module
from history_specs import (  # noqa: E402
    ASSETS,
    DEC,
    STABLES,
    TS,
    US,
    Contract,
    PoolSpec,
    VenueSpec,
    make_contracts,
    price_paths,
    venue_specs,
)


def _ts_array(start_us: int, step_s: int, idx: np.ndarray) -> pa.Array:
    return pa.array(start_us + idx.astype(np.int64) * step_s * US, type=TS)


def oi_table(contracts: list[Contract], state: np.ndarray, rng: np.random.Generator, start_us: int,
             first: int, count: int, step_s: int, prices: dict[str, np.ndarray],
             ) -> tuple[pa.Table, np.ndarray]:
    """``count`` 5-minute OI points of every contract from step ``first``: log-OI is an AR(1) walk."""
    n = len(contracts)
    shocks = rng.normal(0, 0.004, (count, n))
    log_oi = np.empty((count, n))
    x = state
    for k in range(count):  # AR(1) towards 0, vectorised over contracts
        x = 0.9995 * x + shocks[k]
        log_oi[k] = x
    oi_usd = np.exp(log_oi) * np.array([c.oi_usd0 for c in contracts])[None, :]
    idx = np.arange(first, first + count)
    px = np.stack([prices[c.base][idx] for c in contracts], axis=1)
    oi_base = oi_usd / px
    size = np.array([c.contract_size for c in contracts])[None, :]
    inverse = np.array([c.inverse for c in contracts])[None, :]
    unit_contracts = np.array([c.oi_unit == "contracts" for c in contracts])[None, :]
    raw = np.where(inverse, oi_usd / size, np.where(unit_contracts, oi_base / size, oi_base))
    raw = np.round(raw, 3)
    flat = count * n
    table = pa.table({
        "venue": pa.array(np.repeat([[c.venue for c in contracts]], count, axis=0).ravel()),
        "symbol": pa.array(np.repeat([[c.symbol for c in contracts]], count, axis=0).ravel()),
        "ts": _ts_array(start_us, step_s, np.repeat(idx, n)),
        "base_asset": pa.array(np.repeat([[c.base for c in contracts]], count, axis=0).ravel()),
        "settle_asset": pa.array(np.repeat([[c.settle for c in contracts]], count, axis=0).ravel()),
        "oi_raw": pc.cast(pa.array(raw.ravel()), pa.string()),
        "oi_unit": pa.array(np.repeat([[c.oi_unit for c in contracts]], count, axis=0).ravel()),
        "contract_size": pa.array(np.broadcast_to(size, (count, n)).ravel()),
        "inverse": pa.array(np.broadcast_to(inverse, (count, n)).ravel()),
        "oi_base": pa.array(oi_base.ravel()),
        "oi_usd": pa.array(oi_usd.ravel()),
        "fetched_at": _ts_array(start_us, step_s, np.repeat(idx, n)),
    })
    assert table.num_rows == flat
    return table, x


def fund_rows(spec: VenueSpec, pool: PoolSpec, level: np.ndarray, start_us: int, idx: np.ndarray,
              step_s: int) -> pa.Table:
    """Fund rows of one pool at the given minute indexes (balance in native units)."""
    balance = pc.cast(pa.array(np.round(level, 8)), DEC, safe=False)
    ts = _ts_array(start_us, step_s, idx)
    n = len(idx)
    stable = pool.asset in STABLES
    return pa.table({
        "venue": pa.array([spec.key] * n),
        "pool_id": pa.array([pool.pool_id] * n),
        "asset": pa.array([pool.asset] * n),
        "ts": ts,
        "balance": balance,
        "balance_raw": pc.cast(pa.array(np.round(level, 8)), pa.string()),
        "unit_raw": pa.array([pool.asset] * n),
        "usd_value": pa.array([None] * n, type=DEC) if not stable else balance,
        "usd_source": pa.array(["stable" if stable else None] * n, type=pa.string()),
        "kind": pa.array([pool.kind] * n),
        "source": pa.array(["history"] * n),
        "fetched_at": ts,
    })


def fund_level(pool: PoolSpec, venue: str, minutes: np.ndarray, total_minutes: int, start: datetime,
               rng: np.random.Generator) -> np.ndarray:
    """A fund that mostly grows (fees, liquidation surpluses) with small dips and the known stress days."""
    drift = 0.35 / (365 * 1440)  # ~35 %/year growth
    vol = 0.003 / np.sqrt(1440)
    walk = np.cumsum(rng.normal(drift, vol, total_minutes))
    level = np.exp(walk - walk[-1]) * pool.balance
    recent = [(start + timedelta(minutes=total_minutes - 1 - 20 * 60), -0.18, {"gate"})]
    for when, hit, venues in [*STRESS_DROPS, *recent]:
        k = int((when - start).total_seconds() // 60)
        if 0 <= k < total_minutes and (venues is None or venue in venues):
            level[k:] *= 1 + hit  # the drop stays: later growth starts from the lower level
    return level[minutes]


# (when, relative move, venues or None for all): HLP JELLY and the 10-11 Oct 2025 cascade; ``fund_level``
# adds one fresh venue-specific drop (Gate, 20 h ago) so the divergence page has something to explain.
STRESS_DROPS: list[tuple[datetime, float, set[str] | None]] = [
    (datetime(2025, 3, 26, 14, 0, tzinfo=UTC), -0.035, {"hyperliquid"}),
    (datetime(2025, 10, 10, 21, 15, tzinfo=UTC), -0.06, {"binance", "bybit", "okx", "hyperliquid", "gate"}),
]


def run_rows(venues: list[str], start: datetime, end: datetime, rng: np.random.Generator) -> pa.Table:
    """Poll-run rows (funds/open_interest/prices every 5 min, funding/adl every 10 min), ~1 % errors."""
    rows: dict[str, list] = {k: [] for k in ("run_id", "venue", "dataset", "kind", "started_at", "finished_at",
                                              "status", "error_class", "error_message", "attempts",
                                              "rows_written")}
    for venue in venues:
        for dataset, every in (("funds", 300), ("open_interest", 300), ("prices", 300), ("funding", 600),
                               ("adl", 600)):
            t = start
            while t < end:
                ok = rng.random() > 0.01
                rows["run_id"].append(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | len(rows["run_id"])).hex)
                rows["venue"].append(venue)
                rows["dataset"].append(dataset)
                rows["kind"].append("poll")
                rows["started_at"].append(t)
                rows["finished_at"].append(t + timedelta(seconds=float(rng.uniform(0.2, 3))))
                rows["status"].append("ok" if ok else "error")
                rows["error_class"].append(None if ok else "VenueTimeout")
                rows["error_message"].append(None if ok else "GET timed out after 20 s")
                rows["attempts"].append(1 if ok else 4)
                rows["rows_written"].append(100 if ok else 0)
                t += timedelta(seconds=every)
    return pa.table(rows)


def liquidation_rows(venue: str, symbols: list[tuple[str, str]], day: datetime, per_min: float,
                     prices: dict[str, float], rng: np.random.Generator) -> pa.Table:
    """One day of one venue's liquidations from a complete feed: Poisson arrivals, lognormal sizes
    (median ~$4k, a heavy tail), 60 % longs, spread over the venue's largest contracts."""
    n = int(rng.poisson(per_min * 1440))
    offsets = np.sort(rng.integers(0, 86_400 * US, n))
    ts = pa.array(int(day.timestamp() * US) + offsets, type=TS)
    pick = np.minimum(rng.geometric(0.25, n) - 1, len(symbols) - 1)
    notional = np.round(rng.lognormal(np.log(4_000), 1.6, n), 2)
    base = [symbols[i][1] for i in pick]
    price = np.array([prices.get(b, 1.0) for b in base]) * rng.uniform(0.98, 1.02, n)
    qty = notional / price
    return pa.table({
        "venue": pa.array([venue] * n), "feed": pa.array(["bench"] * n), "source": pa.array(["ws"] * n),
        "event_key": pa.array([f"{venue}-{day:%Y%m%d}-{i}" for i in range(n)]), "ts": ts,
        "symbol": pa.array([symbols[i][0] for i in pick]), "base_asset": pa.array(base),
        "quote_asset": pa.array(["USDT"] * n), "side": pa.array(np.where(rng.random(n) < 0.6, "long", "short")),
        "price": pa.array(price), "price_kind": pa.array(["average_fill"] * n), "qty_base": pa.array(qty),
        "qty_contracts": pa.array(qty), "contract_size": pa.array(np.ones(n)), "inverse": pa.array(np.zeros(n, bool)),
        "notional_usd": pa.array(notional), "notional_source": pa.array(["qty_x_price"] * n),
        "coverage": pa.array(["complete"] * n), "lower_bound": pa.array(np.zeros(n, bool)),
        "raw": pa.array(["{}"] * n), "received_at": ts, "fetched_at": ts,
    })


def add_liquidations(con: duckdb.DuckDBPyConnection, days: int, per_min: float, seed: int) -> int:
    """The last ``days`` days of liquidations for every venue with open interest, then the per-minute
    rollup (as the writer keeps it). Symbols and prices come from the database's own newest rows."""
    rng = np.random.default_rng(seed + 1)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    newest = con.execute("SELECT max(ts) FROM open_interest").fetchall()[0][0]
    top = con.execute(
        """SELECT venue, symbol, base_asset FROM open_interest WHERE ts = ?
           QUALIFY row_number() OVER (PARTITION BY venue ORDER BY oi_usd DESC) <= 20 ORDER BY venue, oi_usd DESC""",
        [newest]).fetchall()
    prices = dict(con.execute("SELECT asset, arg_max(price_usd, ts) FROM prices GROUP BY asset").fetchall())
    by_venue: dict[str, list[tuple[str, str]]] = {}
    for venue, symbol, base in top:
        by_venue.setdefault(venue, []).append((symbol, base))
    written = 0
    con.execute("DELETE FROM liquidations WHERE feed = 'bench'")
    for k in range(days, 0, -1):
        day = end - timedelta(days=k)
        con.execute("BEGIN TRANSACTION")
        for venue, symbols in by_venue.items():
            table = liquidation_rows(venue, symbols, day, per_min, prices, rng)
            con.register("bench_liq", table)
            con.execute("INSERT INTO liquidations BY NAME SELECT * FROM bench_liq")
            con.unregister("bench_liq")
            written += table.num_rows
        con.execute("COMMIT")
    con.execute("DELETE FROM liquidation_feeds WHERE feed = 'bench'")
    con.execute("""INSERT INTO liquidation_feeds BY NAME
                   SELECT DISTINCT venue, 'bench' AS feed, 'ws' AS source, 'complete' AS coverage,
                          false AS lower_bound, 'bench history' AS note, min(ts) OVER (PARTITION BY venue) AS first_seen,
                          max(ts) OVER (PARTITION BY venue) AS last_seen
                   FROM liquidations WHERE feed = 'bench'""")
    rebuild_minutes(con)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--venues", type=int, default=10)
    parser.add_argument("--contracts", type=int, default=100)
    parser.add_argument("--oi-step-s", type=int, default=300)
    parser.add_argument("--chunk-days", type=int, default=5)
    parser.add_argument("--run-days", type=int, default=30, help="days of collection_runs rows")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--liq-days", type=int, default=90, help="days of liquidations (0 = none)")
    parser.add_argument("--liq-per-min", type=float, default=4.0, help="liquidations per venue and minute")
    parser.add_argument("--add-liquidations", action="store_true",
                        help="only (re)write the liquidations of an existing history database")
    args = parser.parse_args(argv)

    if args.add_liquidations:
        t0 = time.monotonic()
        with write_connection(args.db) as con:
            n = add_liquidations(con, args.liq_days, args.liq_per_min, args.seed)
            con.execute("CHECKPOINT")
        print(f"wrote {n:,} liquidations in {time.monotonic() - t0:.0f} s: {args.db}")
        return 0
    if args.db.exists():
        print(f"{args.db} exists: remove it first (this tool only writes a fresh history)", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    t_begin = time.monotonic()
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    end -= timedelta(minutes=end.minute % 5)
    start = end - timedelta(days=args.days)
    start_us = int(start.timestamp() * US)
    specs = venue_specs()[: args.venues]
    contracts = {s.key: make_contracts(s, args.contracts, rng) for s in specs}
    all_contracts = [c for cs in contracts.values() for c in cs]
    alts = sorted({c.base for c in all_contracts} - set(ASSETS))
    oi_steps = args.days * 86_400 // args.oi_step_s + 1
    prices = price_paths(start, oi_steps, args.oi_step_s, alts, rng)
    total_minutes = args.days * 1440 + 1
    rows_written: dict[str, int] = {}

    def add(table: str, n: int) -> None:
        rows_written[table] = rows_written.get(table, 0) + n

    with write_connection(args.db) as con:
        # Pool membership (small) through the ordinary batch path.
        members = Batch()
        for spec in specs:
            cs = contracts[spec.key]
            for p_index, pool in enumerate(spec.pools):
                if pool.asset in STABLES or pool.asset == spec.settle:
                    linear = [c for c in cs if not c.inverse]
                    share = linear[p_index::max(1, len(spec.pools))] or linear
                else:
                    share = [c for c in cs if c.inverse or c.base == pool.asset] or cs[:1]
                pool.members = [c.symbol for c in share]
                members.pool_members += [PoolMember(spec.key, pool.pool_id, s, pool.asset) for s in pool.members]
        write_batch(con, Batch(pool_members=members.pool_members), start)

        # Fund levels per pool, whole period at minute resolution (a few MB each), sampled at cadence.
        levels: dict[tuple[str, str, str], np.ndarray] = {}
        for spec in specs:
            for pool in spec.pools:
                levels[(spec.key, pool.pool_id, pool.asset)] = fund_level(
                    pool, spec.key, np.arange(total_minutes), total_minutes, start, rng)

        oi_state = {s.key: np.zeros(len(contracts[s.key])) for s in specs}
        chunk_steps = args.chunk_days * 86_400 // args.oi_step_s
        first = 0
        while first < oi_steps:
            count = min(chunk_steps, oi_steps - first)
            chunk_start_s = first * args.oi_step_s
            chunk_end_s = (first + count) * args.oi_step_s  # exclusive
            con.execute("BEGIN TRANSACTION")
            # prices: 5-minute index prices of the fund assets (alts only drive OI notional)
            idx = np.arange(first, first + count)
            for asset in ASSETS:
                path = prices[asset]
                table = pa.table({
                    "venue": pa.array([specs[0].key] * count), "asset": pa.array([asset] * count),
                    "ts": _ts_array(start_us, args.oi_step_s, idx), "price_usd": pa.array(path[idx]),
                    "source": pa.array(["index"] * count), "fetched_at": _ts_array(start_us, args.oi_step_s, idx),
                })
                add("prices", insert_idempotent(con, TABLES["prices"], table))
            # funds at each pool's cadence
            for spec in specs:
                for pool in spec.pools:
                    step_min = max(1, pool.cadence_s // 60)
                    lo = -(-chunk_start_s // 60 // step_min) * step_min
                    minutes = np.arange(lo, min(chunk_end_s // 60, total_minutes), step_min)
                    if len(minutes) == 0:
                        continue
                    level = levels[(spec.key, pool.pool_id, pool.asset)][minutes]
                    add("fund_balances", insert_idempotent(
                        con, TABLES["funds"], fund_rows(spec, pool, level, start_us, minutes, 60)))
            # funding every 8 h
            for spec in specs:
                cs = contracts[spec.key]
                steps8 = [k for k in range(first, first + count) if (k * args.oi_step_s) % 28_800 == 0]
                if steps8:
                    k = np.repeat(np.array(steps8), len(cs))
                    rate = np.round(rng.normal(0.0001, 0.00015, len(k)), 8)
                    table = pa.table({
                        "venue": pa.array([spec.key] * len(k)), "symbol": pa.array([c.symbol for c in cs] * len(steps8)),
                        "ts": _ts_array(start_us, args.oi_step_s, k), "funding_rate": pa.array(rate),
                        "funding_rate_raw": pc.cast(pa.array(rate), pa.string()),
                        "next_funding_ts": _ts_array(start_us + 28_800 * US, args.oi_step_s, k),
                        "interval_h": pa.array(np.full(len(k), 8.0)), "mark_price": pa.array(np.full(len(k), np.nan)),
                        "fetched_at": _ts_array(start_us, args.oi_step_s, k),
                    })
                    add("funding_rates", insert_idempotent(con, TABLES["funding"], table))
            # open interest: every venue's contracts in one Arrow table per chunk, in time order (as the
            # collector writes it: each row group then holds a few hours of every venue)
            parts = []
            for spec in specs:
                table, oi_state[spec.key] = oi_table(
                    contracts[spec.key], oi_state[spec.key], rng, start_us, first, count, args.oi_step_s, prices)
                parts.append(table)
            chunk = pa.concat_tables(parts).sort_by([("ts", "ascending"), ("venue", "ascending")])
            add("open_interest", insert_idempotent(con, TABLES["open_interest"], chunk))
            chunk_from = start + timedelta(seconds=chunk_start_s)
            revalue_funds(con, chunk_from - timedelta(hours=1), start + timedelta(seconds=chunk_end_s))
            con.execute("COMMIT")
            first += count
            done = first / oi_steps
            elapsed = time.monotonic() - t_begin
            print(f"  {done:6.1%}  {chunk_from:%Y-%m-%d}  {sum(rows_written.values()):>12,} rows  "
                  f"{elapsed:6.0f} s", flush=True)

        runs = run_rows([s.key for s in specs], end - timedelta(days=args.run_days), end, rng)
        con.register("bench_runs", runs)
        con.execute("INSERT INTO collection_runs BY NAME SELECT * FROM bench_runs")
        con.unregister("bench_runs")
        add("collection_runs", runs.num_rows)
        if args.liq_days > 0:
            add("liquidations", add_liquidations(con, args.liq_days, args.liq_per_min, args.seed))
        t_rollup = time.monotonic()
        for name, n in refresh_rollups(con, end).items():
            add(name, n)
        print(f"  rollups built in {time.monotonic() - t_rollup:.0f} s", flush=True)
        con.execute("CHECKPOINT")

    elapsed = time.monotonic() - t_begin
    for table, n in sorted(rows_written.items()):
        print(f"{table:>16}: {n:>12,}")
    size_mb = args.db.stat().st_size / 1e6
    print(f"wrote {sum(rows_written.values()):,} rows in {elapsed:.0f} s, {size_mb:,.0f} MB: {args.db}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
