"""CSV export of any dataset: DuckDB writes the file itself (no round trip through pandas).

Timestamps are UTC ISO-8601; text cells that a spreadsheet would read as a formula (= + - @, tab, CR)
are prefixed with a quote unless the cell is a plain number (metrics.csv_safe holds the one rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from metrics.csv_safe import FORMULA_START_PATTERN, PLAIN_NUMBER_PATTERN
from records.vocabulary import DATASET_TABLES
from storage.db import read_connection


@dataclass(frozen=True)
class ExportSpec:
    table: str
    time_column: str
    order: str


def _table(dataset: str) -> str:
    return DATASET_TABLES[dataset][0]


EXPORTS: dict[str, ExportSpec] = {
    "funds": ExportSpec(_table("funds"), "ts", "venue, pool_id, asset, ts"),
    "fund-flows": ExportSpec("fund_flows", "ts", "venue, pool_id, ts"),
    "pools": ExportSpec("fund_pool_members", "last_seen", "venue, pool_id, symbol"),
    "open-interest": ExportSpec(_table("open_interest"), "ts", "venue, symbol, ts"),
    "funding": ExportSpec(_table("funding"), "ts", "venue, symbol, ts"),
    "prices": ExportSpec(_table("prices"), "ts", "venue, asset, ts"),
    "runs": ExportSpec("collection_runs", "started_at", "started_at, venue, dataset"),
    "adl": ExportSpec(_table("adl"), "ts", "venue, scope, ts"),
    "liquidation-totals": ExportSpec("liquidation_totals", "ts", "venue, symbol, ts"),
    "backstop-positions": ExportSpec("backstop_positions", "ts", "venue, holder, ts, contract"),
    # rows plus ``incomplete`` (their minute overlaps a gap of the venue), from migration 006's view
    "liquidations": ExportSpec("liquidations_export", "ts", "venue, feed, ts, event_key"),
    "liquidation-gaps": ExportSpec("liquidation_gaps", "start_ts", "venue, feed, start_ts"),
    "cascades": ExportSpec("cascades", "start_ts", "venue, start_ts"),
    "alerts": ExportSpec("alerts", "fired_at", "fired_at, rule, venue"),
    "alert-deliveries": ExportSpec("alert_deliveries", "attempted_at", "attempted_at, target_index"),
}


def neutralise_sql(column: str) -> str:
    """SQL expression: the metrics.csv_safe rule (formula-looking text gets a leading apostrophe, a plain
    number never does), built from the same two patterns so the CLI export and dashboard downloads agree."""
    col = f'"{column}"'
    return (
        f"CASE WHEN regexp_matches({col}, '{_quote(FORMULA_START_PATTERN)}') "
        f"AND NOT regexp_full_match({col}, '{_quote(PLAIN_NUMBER_PATTERN)}') "
        f"THEN '''' || {col} ELSE {col} END AS {col}"
    )


def _dataset_query(con: duckdb.DuckDBPyConnection, dataset: str, venue: str | None, since: datetime | None,
                   until: datetime | None, spreadsheet: bool) -> tuple[str, list[Any]]:
    """The SELECT of one dataset with its filters. ``spreadsheet``: ISO-8601 text timestamps and formula
    neutralisation (CSV); otherwise typed columns as stored (Parquet)."""
    if dataset not in EXPORTS:
        raise KeyError(f"unknown dataset {dataset!r} (one of: {', '.join(EXPORTS)})")
    spec = EXPORTS[dataset]
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = ? ORDER BY ordinal_position",
        [spec.table],
    ).fetchall()
    select = []
    for name, data_type in columns:
        if spreadsheet and data_type.startswith("TIMESTAMP"):
            select.append(f"strftime(\"{name}\", '%Y-%m-%dT%H:%M:%S.%fZ') AS \"{name}\"")
        elif spreadsheet and data_type == "VARCHAR":
            select.append(neutralise_sql(name))
        else:
            select.append(f'"{name}"')
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if venue:
        where.append("venue = ?")
        params.append(venue)
    if since:
        where.append(f"{spec.time_column} >= ?")
        params.append(since)
    if until:
        where.append(f"{spec.time_column} < ?")
        params.append(until)
    query = (
        f"SELECT {', '.join(select)} FROM {spec.table} "  # noqa: S608 - identifiers from EXPORTS/catalog
        f"WHERE {' AND '.join(where)} ORDER BY {spec.order}"
    )
    return query, params


def export_csv(db: Path, dataset: str, out: Path | str, venue: str | None = None,
               since: datetime | None = None, until: datetime | None = None) -> int:
    """Write ``dataset`` as CSV to ``out`` ('/dev/stdout' for stdout). Returns rows written."""
    with read_connection(db) as con:
        query, params = _dataset_query(con, dataset, venue, since, until, spreadsheet=True)
        count = con.execute(f"SELECT count(*) FROM ({query})", params).fetchall()[0][0]  # noqa: S608
        con.execute(f"COPY ({query}) TO '{_quote(str(out))}' (HEADER, DELIMITER ',')", params)
    return int(count)


def write_frame_csv(frame: pd.DataFrame, out: Path | str) -> int:
    """A computed frame as CSV, written by DuckDB with the same conventions as ``export_csv`` (UTC
    ISO-8601 times, formula-like text neutralised, numbers intact). Returns rows written."""
    con = duckdb.connect()
    try:
        con.register("computed", frame)
        columns = con.execute("DESCRIBE computed").fetchall()
        select = []
        for name, data_type, *_ in columns:
            if data_type.startswith("TIMESTAMP"):
                select.append(f"strftime(timezone('UTC', \"{name}\"), '%Y-%m-%dT%H:%M:%S.%fZ') AS \"{name}\""
                              if "TIME ZONE" in data_type else
                              f"strftime(\"{name}\", '%Y-%m-%dT%H:%M:%S.%fZ') AS \"{name}\"")
            elif data_type == "VARCHAR":
                select.append(neutralise_sql(name))
            else:
                select.append(f'"{name}"')
        query = f"SELECT {', '.join(select)} FROM computed"  # noqa: S608 - column names from the frame
        con.execute(f"COPY ({query}) TO '{_quote(str(out))}' (HEADER, DELIMITER ',')")
    finally:
        con.close()
    return len(frame)


def export_parquet(db: Path, dataset: str, out: Path, venue: str | None = None,
                   since: datetime | None = None, until: datetime | None = None) -> int:
    """Write ``dataset`` as one Parquet file with typed columns (timestamps stay UTC timestamps)."""
    with read_connection(db) as con:
        query, params = _dataset_query(con, dataset, venue, since, until, spreadsheet=False)
        count = con.execute(f"SELECT count(*) FROM ({query})", params).fetchall()[0][0]  # noqa: S608
        con.execute(f"COPY ({query}) TO '{_quote(str(out))}' (FORMAT parquet)", params)
    return int(count)


def write_frame_parquet(frame: pd.DataFrame, out: Path | str) -> int:
    """A computed frame as one Parquet file (typed columns, as ``export_parquet``). Returns rows written."""
    con = duckdb.connect()
    try:
        con.register("computed", frame)
        con.execute(f"COPY computed TO '{_quote(str(out))}' (FORMAT parquet)")
    finally:
        con.close()
    return len(frame)


def _quote(path: str) -> str:
    return path.replace("'", "''")
