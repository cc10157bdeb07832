"""CSV export of any dataset: DuckDB writes the file itself (no round trip through pandas).

Timestamps are UTC ISO-8601; text cells that a spreadsheet would read as a formula (= + - @, tab, CR)
are prefixed with a quote; numbers stay numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from storage.db import read_connection


@dataclass(frozen=True)
class ExportSpec:
    table: str
    time_column: str
    order: str


EXPORTS: dict[str, ExportSpec] = {
    "funds": ExportSpec("fund_balances", "ts", "venue, pool_id, asset, ts"),
    "fund-flows": ExportSpec("fund_flows", "ts", "venue, pool_id, ts"),
    "pools": ExportSpec("fund_pool_members", "last_seen", "venue, pool_id, symbol"),
    "open-interest": ExportSpec("open_interest", "ts", "venue, symbol, ts"),
    "funding": ExportSpec("funding_rates", "ts", "venue, symbol, ts"),
    "prices": ExportSpec("prices", "ts", "venue, asset, ts"),
    "runs": ExportSpec("collection_runs", "started_at", "started_at, venue, dataset"),
    "adl": ExportSpec("adl_signals", "ts", "venue, scope, ts"),
    "liquidation-totals": ExportSpec("liquidation_totals", "ts", "venue, symbol, ts"),
}


def register_export(name: str, spec: ExportSpec) -> None:
    EXPORTS[name] = spec


def neutralise_sql(column: str) -> str:
    """SQL expression: a text cell starting with = + - @ TAB CR gets a leading apostrophe."""
    return (
        f"CASE WHEN regexp_matches(\"{column}\", '^[=+\\-@\\t\\r]') "
        f"THEN '''' || \"{column}\" ELSE \"{column}\" END AS \"{column}\""
    )


def export_csv(db: Path, dataset: str, out: Path | str, venue: str | None = None,
               since: datetime | None = None, until: datetime | None = None) -> int:
    """Write ``dataset`` as CSV to ``out`` ('/dev/stdout' for stdout). Returns rows written."""
    if dataset not in EXPORTS:
        raise KeyError(f"unknown dataset {dataset!r} (one of: {', '.join(EXPORTS)})")
    spec = EXPORTS[dataset]
    with read_connection(db) as con:
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position",
            [spec.table],
        ).fetchall()
        select = []
        for name, data_type in columns:
            if data_type.startswith("TIMESTAMP"):
                select.append(f"strftime(\"{name}\", '%Y-%m-%dT%H:%M:%S.%fZ') AS \"{name}\"")
            elif data_type == "VARCHAR":
                select.append(neutralise_sql(name))
            else:
                select.append(f'"{name}"')
        where, params = ["1 = 1"], []
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


def _quote(path: str) -> str:
    return path.replace("'", "''")
