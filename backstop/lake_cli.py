"""`backstop lake sync`: the Parquet lake from the command line, and the collector's scheduled sync."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from backstop.config import LakeConfig

if TYPE_CHECKING:
    from backstop.service import BackgroundTask, Collector
    from storage.lake import LakeLocation, SyncReport

log = logging.getLogger(__name__)

lake_app = typer.Typer(help="The Parquet lake: hive-partitioned copies that DuckDB, ClickHouse, Trino or Spark "
                       "query in place.", no_args_is_help=True)


def location_for(config: LakeConfig, dest: str | None) -> LakeLocation:
    from storage.lake import LakeLocation

    target = dest or config.dest
    if not target:
        raise ValueError("no lake destination: give --to PATH|s3://bucket/prefix or set lake.dest in the config")
    endpoint = str(config.s3_endpoint).rstrip("/") if config.s3_endpoint else None
    return LakeLocation.parse(target, s3_endpoint=endpoint, s3_region=config.s3_region)


def sync_from_file(db: Path, location: LakeLocation, datasets: list[str] | None) -> SyncReport:
    """A sync from another process than the collector: each dataset read on a brief read-only connection."""
    from storage.db import read_connection
    from storage.lake import sync

    def read(fn: Callable[[Any], Any]) -> Any:
        with read_connection(db) as con:
            return fn(con)

    return sync(read, location, datasets)


@lake_app.command("sync")
def sync_command(
    ctx: typer.Context,
    to: Annotated[str | None, typer.Option("--to", help="folder or s3://bucket/prefix (default: the lake.dest setting)")] = None,
    dataset: Annotated[list[str] | None, typer.Option("--dataset", help="only this dataset (repeatable)")] = None,
    s3_endpoint: Annotated[str | None, typer.Option("--s3-endpoint", help="S3 endpoint URL, e.g. http://127.0.0.1:9000")] = None,
) -> None:
    """Copy every dataset into the lake incrementally: only partitions that changed are rewritten."""
    from backstop.cli_args import CliError
    from backstop.cli_context import console, settings_from
    from storage.db import DatabaseMissing
    from storage.export import EXPORTS
    from storage.lake import LakeError

    settings = settings_from(ctx)
    config = settings.lake.model_copy(update={"s3_endpoint": s3_endpoint}) if s3_endpoint else settings.lake
    unknown = [name for name in dataset or [] if name not in EXPORTS]
    if unknown:
        raise CliError(f"--dataset: unknown dataset {unknown[0]!r} (one of: {', '.join(EXPORTS)})")
    try:
        location = location_for(config, to)
        report = sync_from_file(settings.db, location, list(dataset or config.datasets) or None)
    except (ValueError, LakeError, DatabaseMissing) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:  # S3 unreachable, permissions: pyarrow's message names the path, never keys
        raise CliError(f"lake {to or config.dest}: {exc}") from None
    for item in report.datasets:
        console.print(f"{item.dataset}: {item.partitions_written}/{item.partitions_total} partitions, "
                      f"{item.rows_written} rows written", soft_wrap=True)
    console.print(f"synced to {report.location}: {report.partitions_written} partitions, "
                  f"{report.rows_written} rows in {report.seconds:.2f} s", soft_wrap=True)


def scheduled_sync(config: LakeConfig) -> BackgroundTask:
    """A collector background task: sync the lake every ``sync_every_s`` through the writer's own
    connection (this process is the writer and must not open a second handle). A failure is logged and
    retried next time; it never stops collection."""
    from storage.lake import sync

    async def run(collector: Collector) -> None:
        location = location_for(config, None)
        while True:
            try:
                report = await asyncio.to_thread(sync, collector.store.read, location, config.datasets or None)
                log.info("lake sync to %s: %d partitions, %d rows", report.location,
                         report.partitions_written, report.rows_written)
            except Exception:  # noqa: BLE001 - a lake failure must never stop collection
                log.exception("lake sync to %s failed; retrying in %.0f s", config.dest, config.sync_every_s)
            await asyncio.sleep(config.sync_every_s)

    return run
