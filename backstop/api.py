"""A read-only JSON API over the same named queries the dashboard uses (FastAPI; OpenAPI at /openapi.json).

    GET /v1/venues        venue metadata: display name, fund label, datasets and cadences
    GET /v1/assessments   the one assessment per venue × pool (storage.assessments)
    GET /v1/funds         fund totals on an as-of grid (storage.analytics.fund_series, like the Funds page)
    GET /v1/alerts        alerts, firing first (storage.alert_store.alerts_frame, like the Alerts page)

Every read is a brief read-only connection; bad parameters get a 400 with one sentence. Binds 127.0.0.1
unless told otherwise (`backstop api --host`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from records.venue_catalog import catalog

MAX_RANGE = timedelta(days=3_650)
MAX_POINTS = 2_000


class Venue(BaseModel):
    key: str
    display_name: str
    fund_label: str
    cadence_s: dict[str, float]


def _jsonable(value: Any) -> Any:
    """DataFrame / dataclass values as JSON: ISO-8601 UTC times, NaN and NaT as null."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        ts = value.to_pydatetime() if isinstance(value, pd.Timestamp) else value
        return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return value


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    if frame is None or frame.empty:
        return []
    return [{str(k): _jsonable(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _parse_time(text: str | None, name: str, default: datetime) -> datetime:
    if text is None:
        return default
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"{name}: expected an ISO-8601 date or time, got {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def create_app(db: Path) -> FastAPI:
    """The API over one database file (the app holds no connection between requests)."""
    from storage.alert_store import alerts_frame
    from storage.analytics import FUND_GROUPS, Grid, fund_series
    from storage.assessments import load_assessments
    from storage.db import DatabaseBusy, DatabaseMissing

    app = FastAPI(title="Backstop", version="1", summary="Read-only insurance-fund data and assessments",
                  docs_url="/docs", redoc_url=None)
    venues = {info.key: info for info in catalog().values()}

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
        return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid')}"}, status_code=400)

    @app.exception_handler(DatabaseMissing)
    async def no_database(_: Request, exc: DatabaseMissing) -> JSONResponse:
        return JSONResponse({"detail": "no data yet: the collector has not written the database"}, status_code=503)

    @app.exception_handler(DatabaseBusy)
    async def busy(_: Request, exc: DatabaseBusy) -> JSONResponse:
        return JSONResponse({"detail": "the database is busy; retry shortly"}, status_code=503,
                            headers={"Retry-After": "5"})

    def _venues(requested: list[str] | None) -> list[str]:
        if not requested:
            return sorted(venues)
        unknown = [v for v in requested if v not in venues]
        if unknown:
            raise HTTPException(400, f"venue: unknown venue {unknown[0]!r} (known: {', '.join(sorted(venues))})")
        return requested

    @app.get("/v1/venues", response_model=list[Venue])
    def list_venues() -> list[Venue]:
        return [Venue(key=i.key, display_name=i.display_name, fund_label=i.fund_label, cadence_s=dict(i.cadence_s))
                for i in sorted(venues.values(), key=lambda i: i.key)]

    @app.get("/v1/assessments")
    def assessments(venue: Annotated[list[str] | None, Query(description="only these venues")] = None,
                    ) -> list[dict[str, Any]]:
        from metrics.assessment import as_row

        wanted = set(_venues(venue)) if venue else None
        return [{k: _jsonable(v) for k, v in as_row(a).items()} for a in load_assessments(db)
                if wanted is None or a.venue in wanted]

    @app.get("/v1/funds")
    def funds(
        venue: Annotated[list[str] | None, Query(description="only these venues (repeat)")] = None,
        since: Annotated[str | None, Query(description="ISO-8601 start (default: 7 days before until)")] = None,
        until: Annotated[str | None, Query(description="ISO-8601 end (default: now)")] = None,
        by: Annotated[Literal["venue", "pool", "asset", "pool_asset"], Query(description="grouping")] = "venue",
        points: Annotated[int, Query(ge=2, le=MAX_POINTS, description="at most this many grid points")] = 480,
    ) -> dict[str, Any]:
        end = _parse_time(until, "until", datetime.now(UTC))
        start = _parse_time(since, "since", end - timedelta(days=7))
        if start >= end:
            raise HTTPException(400, "since must be before until")
        if end - start > MAX_RANGE:
            raise HTTPException(400, "the range is longer than ten years")
        assert by in FUND_GROUPS
        grid = Grid.for_range(start, end, max_points=points)
        frame = fund_series(db, _venues(venue), grid, by=by)
        return {"since": _jsonable(grid.start), "until": _jsonable(grid.end),
                "step_s": grid.step.total_seconds(), "by": by, "rows": _records(frame)}

    @app.get("/v1/alerts")
    def alerts(
        status: Annotated[Literal["firing", "resolved"] | None, Query(description="only this status")] = None,
        venue: Annotated[list[str] | None, Query(description="only these venues")] = None,
        limit: Annotated[int, Query(ge=1, le=5_000)] = 500,
    ) -> list[dict[str, Any]]:
        frame = alerts_frame(db, status=status, venues=_venues(venue) if venue else None, limit=limit)
        return _records(frame.drop(columns=["dedup_key"], errors="ignore"))

    return app


def serve(db: Path, host: str, port: int) -> None:
    """Run the API with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(db), host=host, port=port, log_level="warning")


def serve_in_thread(db: Path, host: str, port: int) -> Any:
    """The API beside another main loop (``backstop run --api-port``): a uvicorn server on a daemon thread
    (it installs no signal handlers off the main thread); returns the server so the caller can stop it."""
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(create_app(db), host=host, port=port, log_level="warning"))
    threading.Thread(target=server.run, name="backstop-api", daemon=True).start()
    return server
