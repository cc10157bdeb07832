"""A Parquet lake of every dataset, laid out so existing engines (DuckDB, ClickHouse/chdb, Trino, Spark)
query it in place.

Layout: ``{root}/dataset=NAME/venue=V/date=YYYY-MM-DD/part-<uuid>.parquet`` and ``{root}/_manifest.json``.
Every partition carries a fingerprint computed in SQL (row count and the XOR of the rows' hashes). A sync
rewrites only the partitions whose fingerprint changed since the manifest was written, so a re-run writes
nothing and a late row rewrites only its own partition. DuckDB writes the Parquet files (one
``COPY … PARTITION_BY`` per dataset into a local staging folder); pyarrow's filesystem layer moves them to a
local folder or to S3 (``s3://bucket/prefix`` with a configurable endpoint; credentials come from the
standard AWS environment variables and are never logged).

Order of a partition's rewrite: old files deleted, new files written, manifest saved last — a crash leaves
at worst a partition that the manifest does not vouch for, which the next sync rewrites.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs

from storage.export import EXPORTS, ExportSpec

T = TypeVar("T")
ReadFn = Callable[[Callable[[duckdb.DuckDBPyConnection], Any]], Any]
MANIFEST = "_manifest.json"
NO_VENUE = "_all"  # partition value for a dataset without a venue column
MANIFEST_VERSION = 1


class LakeError(RuntimeError):
    """A lake destination that cannot be used (bad URL, unreachable endpoint, unreadable manifest)."""


@dataclass(frozen=True)
class LakeLocation:
    """Where the lake lives: a pyarrow filesystem and the base path inside it."""

    fs: pafs.FileSystem
    base: str
    display: str  # for messages: never holds credentials

    @classmethod
    def parse(cls, dest: str, s3_endpoint: str | None = None, s3_region: str | None = None) -> LakeLocation:
        """``/path``, ``file:///path`` or ``s3://bucket/prefix`` (endpoint e.g. ``http://127.0.0.1:9000``)."""
        parsed = urlparse(dest)
        if parsed.scheme == "s3":
            if not parsed.netloc:
                raise LakeError(f"lake destination {dest!r} names no bucket (s3://bucket/prefix)")
            kwargs: dict[str, Any] = {"region": s3_region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
            if s3_endpoint:
                endpoint = urlparse(s3_endpoint)
                if endpoint.scheme not in {"http", "https"} or not endpoint.netloc:
                    raise LakeError(f"S3 endpoint {s3_endpoint!r} is not an http(s) URL")
                kwargs.update(endpoint_override=endpoint.netloc, scheme=endpoint.scheme)
            fs = pafs.S3FileSystem(**kwargs)  # access keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
            base = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
            return cls(fs, base, f"s3://{base}")
        if parsed.scheme not in {"", "file"}:
            raise LakeError(f"lake destination {dest!r}: only a folder or s3://bucket/prefix")
        path = Path(parsed.path if parsed.scheme == "file" else dest).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise LakeError(f"lake destination {path} is a file, not a folder")
        return cls(pafs.LocalFileSystem(), str(path), str(path))


@dataclass
class DatasetSync:
    dataset: str
    partitions_total: int = 0
    partitions_written: int = 0
    rows_written: int = 0


@dataclass
class SyncReport:
    location: str
    datasets: list[DatasetSync] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_written(self) -> int:
        return sum(d.rows_written for d in self.datasets)

    @property
    def partitions_written(self) -> int:
        return sum(d.partitions_written for d in self.datasets)


# -- manifest ------------------------------------------------------------------------------------------
def load_manifest(location: LakeLocation) -> dict[str, Any]:
    path = f"{location.base}/{MANIFEST}"
    try:
        with location.fs.open_input_stream(path) as stream:
            manifest: dict[str, Any] = json.loads(stream.read().decode())
    except FileNotFoundError:
        return {"version": MANIFEST_VERSION, "datasets": {}}
    except (OSError, ValueError) as exc:
        raise LakeError(f"cannot read the lake manifest at {location.display}/{MANIFEST}: {exc}") from None
    if manifest.get("version") != MANIFEST_VERSION:
        raise LakeError(f"lake manifest at {location.display} has version {manifest.get('version')!r}")
    return manifest


def _save_manifest(location: LakeLocation, manifest: dict[str, Any]) -> None:
    """Readers never see half a manifest: a local one is written aside and renamed over the old one; an
    S3 object appears whole when its upload completes."""
    final = f"{location.base}/{MANIFEST}"
    staged = f"{final}.tmp" if isinstance(location.fs, pafs.LocalFileSystem) else final
    with location.fs.open_output_stream(staged) as stream:
        stream.write(json.dumps(manifest, indent=1, sort_keys=True).encode())
    if staged != final:
        location.fs.move(staged, final)


# -- SQL -------------------------------------------------------------------------------------------------
def _has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = ? AND column_name = ?",
        [table, column],
    ).fetchall()
    return bool(rows[0][0])


def _keys_sql(con: duckdb.DuckDBPyConnection, spec: ExportSpec) -> tuple[str, str]:
    """SQL expressions of the two partition keys for a dataset's table."""
    venue = "t.venue" if _has_column(con, spec.table, "venue") else f"'{NO_VENUE}'"
    return venue, f"strftime(CAST(t.{spec.time_column} AS DATE), '%Y-%m-%d')"


def fingerprints(con: duckdb.DuckDBPyConnection, spec: ExportSpec) -> dict[str, list[int]]:
    """``venue|date`` -> [rows, xor of row hashes], aggregated in SQL."""
    venue, day = _keys_sql(con, spec)
    rows = con.execute(
        f"SELECT {venue} || '|' || {day} AS k, count(*), bit_xor(hash(t)) "  # noqa: S608 - internal identifiers
        f"FROM {spec.table} t WHERE t.{spec.time_column} IS NOT NULL GROUP BY ALL"
    ).fetchall()
    return {key: [int(count), int(digest)] for key, count, digest in rows}


def _stage(con: duckdb.DuckDBPyConnection, spec: ExportSpec, changed: Sequence[str], everything: bool,
           folder: Path) -> None:
    """Write the changed partitions' rows into ``folder`` (hive layout) with one partitioned COPY."""
    venue, day = _keys_sql(con, spec)
    columns = "t.* EXCLUDE (venue)" if _has_column(con, spec.table, "venue") else "t.*"
    query = (f"SELECT {columns}, {venue} AS venue, {day} AS date FROM {spec.table} t "  # noqa: S608
             f"WHERE t.{spec.time_column} IS NOT NULL")
    if not everything:
        con.register("_lake_changed", pa.table({"k": list(changed)}))
        query += f" AND {venue} || '|' || {day} IN (SELECT k FROM _lake_changed)"  # noqa: S608
    target = str(folder).replace("'", "''")
    try:
        con.execute(
            f"COPY ({query}) TO '{target}' (FORMAT parquet, PARTITION_BY (venue, date), "
            "FILENAME_PATTERN 'part-{uuid}', OVERWRITE_OR_IGNORE true)"
        )
    finally:
        if not everything:
            con.unregister("_lake_changed")


# -- sync ------------------------------------------------------------------------------------------------
def _publish(location: LakeLocation, dataset: str, staged: Path, keys: Sequence[str]) -> None:
    local = pafs.LocalFileSystem()
    for key in keys:
        venue, day = key.split("|", 1)
        relative = f"venue={venue}/date={day}"
        target = f"{location.base}/dataset={dataset}/{relative}"
        location.fs.delete_dir_contents(target, missing_dir_ok=True)
        source = staged / relative
        if not source.exists():  # every row of the partition is gone (retention): keep it empty
            continue
        location.fs.create_dir(target, recursive=True)
        for part in sorted(source.iterdir()):
            if isinstance(location.fs, pafs.LocalFileSystem):
                shutil.move(part, f"{target}/{part.name}")  # staged on local disk: a rename when it can
            else:
                pafs.copy_files(str(part), f"{target}/{part.name}", source_filesystem=local,
                                destination_filesystem=location.fs)


def sync_dataset(read: ReadFn, location: LakeLocation, dataset: str, manifest: dict[str, Any],
                 now: datetime | None = None) -> DatasetSync:
    """Bring one dataset's partitions up to date; updates ``manifest`` in place (saved by the caller)."""
    if dataset not in EXPORTS:
        raise LakeError(f"unknown dataset {dataset!r} (one of: {', '.join(EXPORTS)})")
    spec = EXPORTS[dataset]
    current: dict[str, list[int]] = read(lambda con: fingerprints(con, spec))
    known: dict[str, list[int]] = manifest["datasets"].get(dataset, {}).get("partitions", {})
    changed = sorted(key for key, print_ in current.items() if known.get(key) != print_)
    result = DatasetSync(dataset, partitions_total=len(current))
    if changed:
        staging = Path(tempfile.mkdtemp(prefix="backstop-lake-"))
        try:
            everything = len(changed) == len(current)
            read(lambda con: _stage(con, spec, changed, everything, staging))
            result.rows_written = sum(current[key][0] for key in changed)
            _publish(location, dataset, staging, changed)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        result.partitions_written = len(changed)
    manifest["datasets"][dataset] = {
        "partitions": current,
        "rows": sum(count for count, _ in current.values()),
        "synced_at": (now or datetime.now(UTC)).isoformat(),
        "table": spec.table,
        "time_column": spec.time_column,
    }
    return result


def sync(read: ReadFn, location: LakeLocation, datasets: Sequence[str] | None = None) -> SyncReport:
    """Sync ``datasets`` (default: every export dataset) to the lake; the manifest is saved per dataset so
    an interrupted sync keeps what it finished."""
    clock = time.monotonic()
    location.fs.create_dir(location.base, recursive=True)
    manifest = load_manifest(location)
    report = SyncReport(location.display)
    for dataset in datasets or list(EXPORTS):
        report.datasets.append(sync_dataset(read, location, dataset, manifest))
        _save_manifest(location, manifest)
    report.seconds = time.monotonic() - clock
    return report
