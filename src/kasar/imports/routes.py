"""Import API (spec §6, §11): a thin HTTP shell over ``imports.service``.

Checks come in the order of spec §1: token (401), admin (403, before the body is
read), the object (400 INVALID_OBJECT), then the query and the body (400). The
whole batch is one transaction, stopped and rolled back past ``import_max_seconds``.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool

from kasar.auth.deps import admin_user
from kasar.auth.service import User
from kasar.db.engine import is_sqlite, read_transaction, write_transaction
from kasar.errors import InternalError, ValidationFailed
from kasar.imports import idempotency
from kasar.imports.schemas import QUERY_PARAMETERS, ImportAnswer, ImportBody
from kasar.imports.service import (
    ON_DUPLICATE,
    ON_POSSIBLE_DUPLICATE,
    ImportOptions,
    import_records,
)
from kasar.schema.repository import load_workspace
from kasar.settings import get_settings
from kasar.web_common import engine_of, errors, json_body, read_json_object

router = APIRouter(tags=["imports"])

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
_QUERY_CANCELED = "57014"  # PostgreSQL: statement_timeout reached


class ImportTimedOut(InternalError):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"The import ran past the maximum duration of {seconds:g} s and was rolled back; "
            "nothing was stored"
        )


@router.post(
    "/import/{object_name}",
    response_model=None,
    responses={
        200: {"model": ImportAnswer, "description": "The batch was imported (or dry-run)"},
        **errors(400, 401, 403, 413),
    },
    openapi_extra={**json_body(ImportBody), "parameters": QUERY_PARAMETERS},
)
async def import_batch(
    object_name: str, request: Request, user: User = Depends(admin_user)
) -> dict[str, Any] | JSONResponse:
    """Import 1 to 50 records into an object, with duplicate detection (admin only)."""
    settings = get_settings()
    deadline = time.monotonic() + settings.import_max_seconds
    await run_in_threadpool(_check_object, request, object_name)
    options = _options(request)
    body = await read_json_object(request)
    records = _records(body, settings.import_batch_max)
    key = idempotency.key_from_request(
        request, user.id, "import", object_name, idempotency.json_digest(body)
    )

    def run() -> dict[str, Any] | JSONResponse:
        try:
            with write_transaction(engine_of(request)) as conn:
                _limit_statements(conn, deadline)
                if key and (stored := idempotency.claim(conn, key)):
                    return idempotency.replay(stored)
                ws = load_workspace(conn)
                answer = import_records(conn, ws, object_name, records, options).to_api()
                if time.monotonic() > deadline:
                    raise ImportTimedOut(settings.import_max_seconds)
                if key:
                    idempotency.finish(conn, key, 200, answer)
                return answer
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == _QUERY_CANCELED:
                raise ImportTimedOut(settings.import_max_seconds) from None
            raise

    return await run_in_threadpool(run)


def _check_object(request: Request, object_name: str) -> None:
    with read_transaction(engine_of(request)) as conn:
        load_workspace(conn).object(object_name)


def _options(request: Request) -> ImportOptions:
    params = request.query_params
    raw = params.get("dry_run", "false").strip().lower()
    if raw not in _TRUE + _FALSE:
        raise ValidationFailed("dry_run must be true or false")
    on_duplicate = params.get("on_duplicate", "skip").strip().lower()
    if on_duplicate not in ON_DUPLICATE:
        raise ValidationFailed("on_duplicate must be one of: " + ", ".join(ON_DUPLICATE))
    possible = params.get("on_possible_duplicate", "create").strip().lower()
    if possible not in ON_POSSIBLE_DUPLICATE:
        raise ValidationFailed(
            "on_possible_duplicate must be one of: " + ", ".join(ON_POSSIBLE_DUPLICATE)
        )
    return ImportOptions(
        dry_run=raw in _TRUE, on_duplicate=on_duplicate, on_possible_duplicate=possible
    )


def _records(body: dict[str, Any], batch_max: int) -> list[dict[str, Any]]:
    """The body's records, or a request-level 400 (nothing is written). Unknown keys
    are refused so that, say, a ``dry_run`` put in the body is never silently ignored."""
    unknown = sorted(set(body) - {"records"})
    if unknown:
        raise ValidationFailed(
            f"Unknown key '{unknown[0]}' in the body: it takes only 'records' "
            "(dry_run and on_duplicate go in the query string)"
        )
    records = body.get("records")
    if not isinstance(records, list):
        raise ValidationFailed("The body must have a 'records' list")
    if not 1 <= len(records) <= batch_max:
        raise ValidationFailed(
            f"'records' must hold 1 to {batch_max} records; it holds {len(records)}"
        )
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValidationFailed(f"Record {i} must be a JSON object")
    return records


def _limit_statements(conn: Connection, deadline: float) -> None:
    """PostgreSQL cancels any statement (a lock wait included) that would run past
    the deadline; SQLite has no such setting, and the check before commit covers it."""
    if is_sqlite(conn):
        return
    remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {remaining_ms}")
