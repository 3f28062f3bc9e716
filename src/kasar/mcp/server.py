"""Kasar's MCP server (spec §9): the tools of ``tools`` and three resources, over
stdio (``kasar mcp``) or streamable HTTP (mounted by ``create_app`` at ``/mcp``).

Authentication uses the API tokens. Over HTTP, ``BearerGate`` answers 401 (in the
REST error shape) before the SDK sees a request without a valid token; over stdio,
the token given to ``kasar mcp`` is checked at start. Either way, every tool call and
resource read authenticates again (a revoked token stops working at once) and runs
with the caller in ``tools.caller``; admin-only tools check the role themselves.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, TextContent
from pydantic import BaseModel
from sqlalchemy import Engine
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from kasar import __version__
from kasar.auth.service import User, authenticate
from kasar.db.engine import read_transaction
from kasar.errors import InternalError, KasarError
from kasar.mcp.resources import register_resources
from kasar.mcp.tools import caller, register_tools

INSTRUCTIONS = (
    "Kasar is a CRM. Read kasar://schema for its objects and kasar://schema/{object} for "
    "an object's fields before writing records. crm_find_records lists records; "
    "crm_import adds up to 50 at a time with duplicate detection; crm_export and "
    "crm_detect_duplicates are for admins. Errors are JSON: {code, message}."
)
_USER_KEY = "kasar.user"
_SDK_PREFIX = re.compile(r"^Error executing tool [^:\s]+:?")
_INTERNAL = {"code": "INTERNAL_ERROR", "message": "Internal error"}


def build_server(engine: Engine, *, token: str | None = None) -> MCPServer:
    """The MCP server over ``engine``; ``token`` authenticates a stdio session (over
    HTTP each request brings its own)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    server: MCPServer = MCPServer("kasar", instructions=INSTRUCTIONS, version=__version__)
    # MCPServer() calls logging.basicConfig (a rich handler on the root logger), which
    # would print every line of Kasar's own logging twice: undo it.
    root.handlers[:], root.level = handlers, level
    register_tools(server, engine)
    register_resources(server, engine)
    server.middleware.append(_Authenticate(engine, token))
    return server


def check_token(engine: Engine, token: str | None) -> User:
    with read_transaction(engine) as conn:
        return authenticate(conn, token)


def _bearer(headers: Any) -> str | None:
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


class _Authenticate:
    """MCP middleware: who is calling, for each tool call and resource read."""

    def __init__(self, engine: Engine, token: str | None) -> None:
        self.engine, self.token = engine, token

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.method not in ("tools/call", "resources/read"):
            return await call_next(ctx)
        request = ctx.request
        try:
            if request is None:
                user = await anyio.to_thread.run_sync(check_token, self.engine, self.token)
            else:
                user = request.scope.get(_USER_KEY) or await anyio.to_thread.run_sync(
                    check_token, self.engine, _bearer(request.headers)
                )
        except KasarError as exc:
            if ctx.method == "resources/read":
                raise MCPError(
                    code=INVALID_PARAMS, message=exc.message, data=exc.to_body()
                ) from None
            return _tool_error(exc.to_body())
        reset = caller.set(user)
        try:
            result = await call_next(ctx)
        finally:
            caller.reset(reset)
        return _error_shape(result) if ctx.method == "tools/call" else result


def _tool_error(body: dict[str, Any]) -> CallToolResult:
    text = json.dumps(body, ensure_ascii=False)
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=body, is_error=True
    )


def _error_shape(result: HandlerResult) -> HandlerResult:
    """A failed call's text is "Error executing tool <name>: <what>"; keep only the
    REST error body (our tools' errors), or make one (the SDK's own: an unknown tool,
    arguments that do not fit the input schema)."""
    if isinstance(result, BaseModel):
        result = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    if not isinstance(result, dict) or not result.get("isError"):
        return result
    texts = [c.get("text", "") for c in result.get("content", []) if c.get("type") == "text"]
    what = _SDK_PREFIX.sub("", texts[0] if texts else "", count=1)
    what = "\n".join(x for x in what.splitlines() if "errors.pydantic.dev" not in x).strip()
    try:
        body = json.loads(what)
    except ValueError:
        body = None
    if not (isinstance(body, dict) and {"code", "message"} <= body.keys()):
        body = {"code": "VALIDATION_ERROR", "message": what} if what else _INTERNAL
    text = json.dumps(body, ensure_ascii=False)
    return {**result, "content": [{"type": "text", "text": text}], "structuredContent": body}


async def run_stdio(engine: Engine, token: str) -> None:
    await build_server(engine, token=token).run_stdio_async()


class BearerGate:
    """ASGI app at ``/mcp``: the API token first (401 in the REST shape), then the
    SDK's streamable HTTP transport. Stateless with JSON answers, so that any server
    process can answer any request."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.server = build_server(engine)
        self.running = False

    @asynccontextmanager
    async def lifespan(self, _: Any) -> AsyncIterator[None]:
        # A fresh session manager each time the app starts (one can run only once).
        # No DNS-rebinding check: every request needs a token, which a rebinding
        # page cannot have.
        self.server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        async with self.server.session_manager.run():
            self.running = True
            try:
                yield
            finally:
                self.running = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        token = _bearer(headers)
        try:
            user = await anyio.to_thread.run_sync(check_token, self.engine, token)
            if not self.running:
                raise InternalError("The MCP endpoint is not running: start the app's lifespan")
        except KasarError as exc:
            extra = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            await JSONResponse(exc.to_body(), exc.status, headers=extra)(scope, receive, send)
            return
        scope[_USER_KEY] = user
        # Binds any SDK session to the user that opened it.
        scope["user"] = AuthenticatedUser(
            AccessToken(token=token or "", client_id=user.id, scopes=[], subject=user.id)
        )
        await self.server.session_manager.handle_request(scope, receive, send)


def mount(app: FastAPI, engine: Engine) -> None:
    """Serve MCP at ``/mcp`` on ``app`` and run its session manager in the app's lifespan."""
    gate = BearerGate(engine)
    app.include_router(APIRouter(lifespan=gate.lifespan))
    app.router.routes.append(Route("/mcp", gate, include_in_schema=False))
