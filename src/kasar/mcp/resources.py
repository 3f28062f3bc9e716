"""The MCP resources: the workspace's schema and pipelines, as the REST API shows them."""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from sqlalchemy import Engine

from kasar.db.engine import read_transaction
from kasar.errors import KasarError
from kasar.mcp.tools import current_user
from kasar.schema.repository import count_records, load_workspace


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _rest_errors(exc: KasarError) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=exc.message, data=exc.to_body())


def register_resources(server: MCPServer, engine: Engine) -> None:
    @server.resource(
        "kasar://schema",
        name="schema",
        description="Every object with its label, field count and record count.",
        mime_type="application/json",
    )
    def schema() -> str:
        try:
            current_user()
            with read_transaction(engine) as conn:
                ws = load_workspace(conn)
                objects = [
                    {
                        "name": o.name,
                        "label": o.label,
                        "fieldCount": len(o.fields),
                        "recordCount": count_records(conn, ws.tables[o.name]),
                    }
                    for o in ws.objects.values()
                ]
        except KasarError as exc:
            raise _rest_errors(exc) from None
        return _json({"objects": objects})

    @server.resource(
        "kasar://schema/{object}",
        name="object-schema",
        description="One object's fields: name, label, type, required, options, relation.",
        mime_type="application/json",
    )
    def object_schema(object: str) -> str:
        try:
            current_user()
            with read_transaction(engine) as conn:
                return _json(load_workspace(conn).object(object).to_api())
        except KasarError as exc:
            raise _rest_errors(exc) from None

    @server.resource(
        "kasar://pipelines",
        name="pipelines",
        description="The pipelines of every object, with their steps in order.",
        mime_type="application/json",
    )
    def pipelines() -> str:
        try:
            current_user()
            with read_transaction(engine) as conn:
                ws = load_workspace(conn)
                found = [p.to_api() for o in ws.objects.values() for p in o.pipelines]
        except KasarError as exc:
            raise _rest_errors(exc) from None
        return _json({"pipelines": found})
