"""Builds the FastAPI app: routers, the one error shape, request ids."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kasar import __version__
from kasar.auth.routes import router as auth_router
from kasar.db.engine import is_sqlite, make_engine
from kasar.dedup.routes import router as duplicates_router
from kasar.errors import KasarError, RateLimited
from kasar.exports.job_routes import router as export_jobs_router
from kasar.exports.routes import router as exports_router
from kasar.imports.job_routes import router as import_jobs_router
from kasar.imports.routes import router as imports_router
from kasar.jobs.runtime import start_background_worker
from kasar.mcp.server import mount as mount_mcp
from kasar.pipelines.routes import router as pipelines_router
from kasar.records.routes import router as records_router
from kasar.schema.routes import router as schema_router
from kasar.settings import get_settings

log = logging.getLogger("kasar")
access_log = logging.getLogger("kasar.access")
request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
WEB_DIR = Path(__file__).parent / "web"  # the import/export page: static, public, no data

_HTTP_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED",
}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


def _install_record_factory() -> None:
    """Every log record, from any logger, carries the id of the request being served."""
    base = logging.getLogRecordFactory()
    if getattr(base, "kasar", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        record.request_id = request_id_var.get()
        return record

    factory.kasar = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class RequestIdMiddleware:
    """Every response carries ``X-Request-ID`` (the caller's, if sane, else a new one),
    and every log line written while serving it names it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            access_log.info(
                "%s %s -> %d (%.1f ms)", scope["method"], scope["path"], status[0], elapsed_ms
            )
            request_id_var.reset(token)


def error_response(exc: KasarError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return JSONResponse(exc.to_body(), status_code=exc.status, headers=headers)


async def _kasar_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KasarError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(
        exc.status_code, "INTERNAL_ERROR" if exc.status_code >= 500 else "VALIDATION_ERROR"
    )
    if exc.status_code == 404:
        message = f"No route {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return JSONResponse(
        {"code": code, "message": message}, status_code=exc.status_code, headers=exc.headers
    )


async def _request_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errs = exc.errors()
    first = errs[0] if errs else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
    details = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg"))} for e in errs]
    body = {
        "code": "VALIDATION_ERROR",
        "message": f"{where}: {first['msg']}" if where else str(first["msg"]),
        "details": details,
    }
    return JSONResponse(body, status_code=400)


async def _data_error(_: Request, exc: Exception) -> JSONResponse:
    """A value the database refused (e.g. out of its range): the client's input, not a 500."""
    log.warning("database refused a value: %s", exc)
    body = {"code": "VALIDATION_ERROR", "message": "A value is out of range or not storable"}
    return JSONResponse(body, status_code=400)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return JSONResponse({"code": "INTERNAL_ERROR", "message": "Internal error"}, status_code=500)


def configure_logging(level: str) -> None:
    _install_record_factory()
    root = logging.getLogger("kasar")
    if any(isinstance(f, RequestIdFilter) for h in root.handlers for f in h.filters):
        return
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level)


def _runs_jobs(engine: Engine) -> bool:
    choice = get_settings().run_jobs.lower()
    if choice == "auto":
        return is_sqlite(engine)
    return choice in ("1", "true", "yes")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """With SQLite (by default) the server runs queued jobs itself, in a thread."""
    worker = start_background_worker(app.state.engine) if _runs_jobs(app.state.engine) else None
    try:
        yield
    finally:
        if worker:
            thread, stop = worker
            stop.set()
            thread.join(timeout=30)


def create_app(engine: Engine | None = None) -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level)
    app = FastAPI(
        lifespan=_lifespan,
        title="Kasar data service",
        version=__version__,
        description=(
            "Objects, records, bulk import and export. Errors: `{code, message, details?}`."
        ),
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.engine = engine or make_engine(settings.database_url)
    api = APIRouter(prefix="/api/v1")

    @api.get("/health", tags=["health"])
    def health() -> dict[str, Any]:
        return {"status": "ok"}

    for router in (
        auth_router,
        schema_router,
        pipelines_router,
        records_router,
        imports_router,
        import_jobs_router,
        exports_router,
        export_jobs_router,
        duplicates_router,
    ):
        api.include_router(router)
    app.include_router(api)
    mount_mcp(app, app.state.engine)  # MCP over streamable HTTP at /mcp
    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")
    app.add_api_route("/", lambda: FileResponse(WEB_DIR / "index.html"), include_in_schema=False)
    app.add_exception_handler(KasarError, _kasar_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(RequestIdMiddleware)
    return app
