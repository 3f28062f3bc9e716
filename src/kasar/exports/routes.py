"""Export API (spec §8): ``GET /api/v1/export/{object}``, a thin shell over the engine.

The response streams, but every check runs before it starts: the route pulls the
first chunk itself, and the writers yield nothing until their query has run, so
a bad object, field, filter, sort, format or limit is an ordinary JSON error.
The stream reads in its own snapshot transaction, closed when the last chunk is
sent or as soon as the client goes away.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine

from kasar.auth.deps import admin_user
from kasar.auth.service import User
from kasar.db.engine import snapshot_transaction
from kasar.exports.service import MAX_LIMIT, parse_format, parse_request
from kasar.exports.writers import WRITERS
from kasar.schema.repository import load_workspace
from kasar.streaming import stream_in_thread
from kasar.web_common import engine_of, errors

router = APIRouter(tags=["exports"])

MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8"}
_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The records: a JSON document, or a CSV file (header row first)",
        "content": {
            "application/json": {
                "example": {
                    "format": "json",
                    "records": [{"first_name": "Alice", "last_name": "Martin"}],
                    "total": 1,
                }
            },
            "text/csv": {"schema": {"type": "string"}, "example": "first_name\r\nAlice\r\n"},
        },
    }
}


@dataclass(frozen=True)
class ExportParams:
    """The query parameters as received: the engine validates them, in spec order."""

    format: str | None
    fields: str | None
    filter_field: str | None
    filter_operator: str | None
    filter_value: str | None
    filters: str | None
    sort_by: str | None
    sort_dir: str | None
    limit: str | None


@router.get(
    "/export/{object_name}",
    summary="Export records as JSON or CSV (admin only)",
    response_class=StreamingResponse,
    responses={**_OK, **errors(400, 401, 403)},
)
def export_records(
    object_name: str,
    request: Request,
    format_: str | None = Query(None, alias="format", description="`json` (default) or `csv`"),
    fields: str | None = Query(
        None, description="Comma-separated keys, in output order (default: every field)"
    ),
    filter_field: str | None = Query(None, description="Field of a simple filter"),
    filter_operator: str | None = Query(None, description="Operator, e.g. eq, contains, gte"),
    filter_value: str | None = Query(None, description="Value of a simple filter"),
    filters: str | None = Query(
        None, description="A JSON-encoded FilterGroup (not with the simple filter)"
    ),
    sort_by: str | None = Query(None, description="Key to sort on (default created_at)"),
    sort_dir: str | None = Query(None, description="`asc` or `desc` (default)"),
    limit: str | None = Query(
        None, description=f"Maximum records, 1 to {MAX_LIMIT} (default 1000)", examples=["500"]
    ),
    _: User = Depends(admin_user),
) -> StreamingResponse:
    params = ExportParams(
        format_, fields, filter_field, filter_operator, filter_value, filters, sort_by, sort_dir,
        limit,
    )  # fmt: skip
    chunks = _export_chunks(engine_of(request), object_name, params)
    first = next(chunks, b"")  # runs every check and the query, inside this request
    fmt = parse_format(format_)
    headers = {}
    if fmt == "csv":
        headers["Content-Disposition"] = f'attachment; filename="{object_name}_export.csv"'
    return StreamingResponse(_body(first, chunks), media_type=MEDIA_TYPES[fmt], headers=headers)


def _export_chunks(
    engine: Engine, object_name: str, p: ExportParams
) -> Generator[bytes, None, None]:
    with snapshot_transaction(engine) as conn:
        ws = load_workspace(conn)
        req = parse_request(
            ws,
            object_name,
            fields=p.fields,
            filter_field=p.filter_field,
            filter_operator=p.filter_operator,
            filter_value=p.filter_value,
            filters=p.filters,
            sort_by=p.sort_by,
            sort_dir=p.sort_dir,
            limit=p.limit,
        )
        fmt = parse_format(p.format)
        yield from WRITERS[fmt](conn, ws, req)


async def _body(first: bytes, rest: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    """The chunks, read in one worker thread; however the stream ends (done, client
    gone, cancelled), the generator is closed, which ends its transaction."""
    started = False
    try:
        yield first
        started = True
        async with aclosing(stream_in_thread(rest)) as stream:
            async for chunk in stream:
                yield chunk
    finally:
        if not started:  # the thread never took the generator over
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(rest.close)
