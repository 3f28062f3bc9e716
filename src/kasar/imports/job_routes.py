"""Import jobs API (spec §11): create (upload or records), list, read, cancel,
report and undo. A thin HTTP shell over ``imports.jobs``, ``imports.undo`` and
``jobs.repository``; every route is admin-only and refuses a member (403) before
it reads a byte of the body.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, BinaryIO

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from kasar.auth.deps import admin_user
from kasar.auth.service import User
from kasar.db.engine import read_transaction, write_transaction
from kasar.errors import ValidationFailed
from kasar.imports import idempotency
from kasar.imports.columns import match_columns
from kasar.imports.files import HEAD_SIZE, detect_format, open_rows
from kasar.imports.job_options import ImportJobOptions, parse_job_options
from kasar.imports.job_report import report_csv, report_json
from kasar.imports.jobs import create_import_job
from kasar.imports.undo import undo_job
from kasar.jobs import repository as jobs_repo
from kasar.jobs.blobs import CHUNK_BYTES
from kasar.schema.repository import load_workspace
from kasar.web_common import engine_of, errors, read_json_object

router = APIRouter(tags=["import jobs"])

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "options"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "options": {
                            "type": "string",
                            "description": 'JSON: {"object": "contacts", "mapping": {...}, '
                            '"dry_run", "on_duplicate", "match_on", "encoding", "delimiter"}',
                        },
                    },
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["object", "records"],
                    "properties": {
                        "object": {"type": "string"},
                        "records": {"type": "array", "items": {"type": "object"}},
                    },
                    "additionalProperties": True,
                }
            },
        },
    }
}


@router.post(
    "/import-jobs",
    status_code=202,
    response_model=None,
    responses={202: {"description": "The job, queued"}, **errors(400, 401, 403, 409, 413)},
    openapi_extra=_UPLOAD_BODY,
)
async def post_import_job(request: Request, user: User = Depends(admin_user)) -> JSONResponse:
    """Queue an import of a file (multipart ``file`` + ``options``) or of a JSON
    body ``{"object", "records", ...options}``; honours ``Idempotency-Key``."""
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=1) as form:
            upload, options = form.get("file"), form.get("options")
            if not isinstance(upload, UploadFile):
                raise ValidationFailed("The upload needs a 'file' part")
            raw = await _options_part(options)
            return await run_in_threadpool(
                _create_from_file, request, user, upload.file, upload.filename, raw
            )
    body = await read_json_object(request)
    return await run_in_threadpool(_create_from_records, request, user, body)


async def _options_part(part: str | UploadFile | None) -> Any:
    if part is None:
        raise ValidationFailed("The upload needs an 'options' part (JSON)")
    text = part if isinstance(part, str) else (await part.read(1024 * 1024)).decode("utf-8")
    try:
        return orjson.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValidationFailed("The 'options' part is not valid JSON") from None


def _create_from_file(
    request: Request, user: User, file: BinaryIO, filename: str | None, raw: Any
) -> JSONResponse:
    with read_transaction(engine_of(request)) as conn:
        ws = load_workspace(conn)
    opts = parse_job_options(raw, ws, filename=filename)
    file.seek(0)
    head = file.read(HEAD_SIZE)
    if not head:
        raise ValidationFailed("The file is empty")
    opts = replace(opts, format=opts.format or detect_format(head, filename))
    _check_header(file, opts, ws.object(opts.object).all_keys())
    digest = hashlib.sha256(orjson.dumps([raw, filename], option=orjson.OPT_SORT_KEYS))
    file.seek(0)
    for block in iter(lambda: file.read(CHUNK_BYTES), b""):
        digest.update(block)
    key = idempotency.key_from_request(
        request, user.id, "import-jobs", opts.object, digest.hexdigest()
    )
    file.seek(0)
    return _store_job(request, user, opts, key, iter(lambda: file.read(CHUNK_BYTES), b""))


def _check_header(file: BinaryIO, opts: ImportJobOptions, keys: list[str]) -> None:
    """Refuse now a file whose start cannot be read, or whose header lacks a column
    the mapping names (JSON records may bring their keys later: checked by the job)."""
    file.seek(0)
    source = open_rows(file, **opts.reader_args())
    try:
        if source.format in ("csv", "xlsx"):
            match_columns(source.columns, keys, opts.mapping)
    finally:
        close = getattr(source.rows, "close", None)
        if close is not None:
            close()


def _create_from_records(request: Request, user: User, body: dict[str, Any]) -> JSONResponse:
    with read_transaction(engine_of(request)) as conn:
        options = {k: v for k, v in body.items() if k != "records"}
        opts = parse_job_options(options, load_workspace(conn), extra=("records",))
    records = body.get("records")
    if not isinstance(records, list) or not records:
        raise ValidationFailed("The body needs a non-empty 'records' list (or upload a file)")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValidationFailed(f"Record {i} must be a JSON object")
    opts = replace(opts, format="ndjson", encoding=None, delimiter=None)
    digest = idempotency.json_digest(body)
    key = idempotency.key_from_request(request, user.id, "import-jobs", opts.object, digest)
    lines = (orjson.dumps(r) + b"\n" for r in records)
    return _store_job(request, user, opts, key, lines)


def _store_job(
    request: Request,
    user: User,
    opts: ImportJobOptions,
    key: idempotency.IdempotencyKey | None,
    content: Iterator[bytes],
) -> JSONResponse:
    """The job and its file in one transaction, with the idempotency key's answer."""
    with write_transaction(engine_of(request)) as conn:
        if key and (stored := idempotency.claim(conn, key)):
            return idempotency.replay(stored)
        answer = create_import_job(conn, opts, content, created_by=user.id).to_api()
        if key:
            idempotency.finish(conn, key, 202, answer)
    return JSONResponse(answer, status_code=202)


@router.get("/import-jobs", responses=errors(400, 401, 403))
def list_import_jobs(
    request: Request,
    limit: int = Query(20, ge=1, le=100),
    cursor: str | None = Query(None, description="nextCursor of the previous page"),
    _: User = Depends(admin_user),
) -> dict[str, Any]:
    """The import jobs, newest first: who, when, what, state and counters."""
    with read_transaction(engine_of(request)) as conn:
        page, total, next_cursor = jobs_repo.page_jobs(
            conn, kind="import", limit=limit, cursor=cursor
        )
    return {"data": [j.to_api() for j in page], "total": total, "nextCursor": next_cursor}


@router.get("/import-jobs/{job_id}", responses=errors(401, 403, 404))
def get_import_job(job_id: str, request: Request, _: User = Depends(admin_user)) -> dict[str, Any]:
    """The job's state, counters, rows per second and ETA."""
    with read_transaction(engine_of(request)) as conn:
        return jobs_repo.get_job(conn, job_id, kind="import").to_api()


@router.post("/import-jobs/{job_id}/cancel", responses=errors(401, 403, 404, 409))
def cancel_import_job(
    job_id: str, request: Request, _: User = Depends(admin_user)
) -> dict[str, Any]:
    """A queued job is cancelled at once; a running one after its current chunk
    (the chunks already committed stay)."""
    with write_transaction(engine_of(request)) as conn:
        job = jobs_repo.request_cancel(conn, job_id, "import")
    return job.to_api()


@router.get(
    "/import-jobs/{job_id}/report", response_model=None, responses=errors(400, 401, 403, 404)
)
def import_job_report(
    job_id: str,
    request: Request,
    report_format: str = Query("csv", alias="format", description="csv or json"),
    _: User = Depends(admin_user),
) -> StreamingResponse:
    """One line per row that was not simply created: row number, outcome, record
    id, duplicate of, matched on, error code and message. Streamed."""
    if report_format not in ("csv", "json"):
        raise ValidationFailed("format must be csv or json")
    engine = engine_of(request)
    with read_transaction(engine) as conn:
        job = jobs_repo.get_job(conn, job_id, kind="import")
    name = f"import-{job.id}-report.{report_format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if report_format == "csv":
        return StreamingResponse(
            report_csv(engine, job.id), media_type="text/csv; charset=utf-8", headers=headers
        )
    return StreamingResponse(
        report_json(engine, job.to_api()), media_type="application/json", headers=headers
    )


@router.post("/import-jobs/{job_id}/undo", responses=errors(401, 403, 404, 409))
def undo_import_job(job_id: str, request: Request, _: User = Depends(admin_user)) -> dict[str, Any]:
    """Delete what the job created and restore what it updated, except records
    changed since (listed in ``skipped_records``). Once only."""
    with write_transaction(engine_of(request)) as conn:
        result = undo_job(conn, load_workspace(conn), job_id)
        job = jobs_repo.get_job(conn, job_id)
    return {**result.to_api(), "job": job.to_api()}
