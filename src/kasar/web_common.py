"""What every HTTP route shares: the engine, the workspace, reading a JSON body
under the size cap, error responses for the OpenAPI document."""

from __future__ import annotations

from typing import Any, TypeVar

import anyio
import orjson
from fastapi import Request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError
from sqlalchemy import Engine

from kasar.errors import KasarError, PayloadTooLarge, ValidationFailed
from kasar.settings import get_settings

M = TypeVar("M", bound=BaseModel)
# Deeper JSON is refused: orjson parses up to 1024 levels but serialises only 254, and
# the idempotency digest and job files serialise what a client sent.
MAX_JSON_DEPTH = 64


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any | None = None


_DESCRIPTIONS = {
    400: "INVALID_OBJECT or VALIDATION_ERROR",
    401: "UNAUTHENTICATED: no, unknown or revoked token",
    403: "PERMISSION_DENIED: the token's user may not do this",
    404: "NOT_FOUND",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer; a route that
    takes a token (401) can also meet the per-token rate limit (429)."""
    if 401 in statuses and 429 not in statuses:
        statuses = (*statuses, 429)
    out: dict[int | str, dict[str, Any]] = {
        s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]} for s in statuses
    }
    out[500] = {"model": ErrorBody, "description": "INTERNAL_ERROR (never a traceback)"}
    return out


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body that the route reads itself (after
    the permission check, so that a refused request never has its body read)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def read_json(request: Request) -> Any:
    cap = get_settings().max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise PayloadTooLarge(f"The body is larger than {cap} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise PayloadTooLarge(f"The body is larger than {cap} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ValidationFailed("The request needs a JSON body")
    # In a worker thread: a 10 MB body takes about 0.2 s to parse and check, which
    # the event loop (every other request of this process) must not wait for.
    return await anyio.to_thread.run_sync(_parse_json, raw)


def _parse_json(raw: bytes) -> Any:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(f"The body is not valid JSON: {exc}") from None
    if _deeper_than(doc, MAX_JSON_DEPTH):
        raise ValidationFailed(f"The body is nested too deep (at most {MAX_JSON_DEPTH} levels)")
    return doc


def _deeper_than(doc: Any, limit: int) -> bool:
    """True when arrays and objects nest more than ``limit`` levels (no recursion)."""
    stack = [(doc, 1)] if isinstance(doc, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


async def read_json_object(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ValidationFailed("The body must be a JSON object")
    return body


def parse_model(model: type[M], body: Any) -> M:
    try:
        return model.model_validate(body)
    except PydanticError as exc:
        raise validation_error(exc) from None


def validation_error(exc: PydanticError) -> KasarError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    message = f"{where}: {first['msg']}" if where else str(first["msg"])
    return ValidationFailed(
        message,
        details=[
            {"loc": [str(p) for p in e.get("loc", ())], "msg": e["msg"]} for e in exc.errors()
        ],
    )
