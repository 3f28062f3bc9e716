"""The MCP server through the SDK's own client, on both databases: stdio (``kasar mcp``
as a subprocess), streamable HTTP (the app under uvicorn, at /mcp) and in-process.

(No ``__init__.py`` here: a ``tests/mcp`` package would shadow the SDK's ``mcp``.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from sqlalchemy import Engine

from kasar.db.engine import write_transaction
from kasar.mcp.server import build_server
from kasar.records.service import create_record
from kasar.schema.repository import load_workspace

KASAR = str(Path(sys.executable).with_name("kasar"))
TOOLS = ["crm_detect_duplicates", "crm_export", "crm_find_records", "crm_import"]
Session = Callable[[Client], Awaitable[None]]


def data(result: Any) -> Any:
    """A tool result's JSON (success or error alike)."""
    return json.loads(result.content[0].text)


async def admin_session(client: Client) -> None:
    """The walk an assistant takes: tools, schema, import, export, resources."""
    tools = (await client.list_tools()).tools
    assert sorted(t.name for t in tools) == TOOLS
    for tool in tools:
        assert tool.description and tool.input_schema["properties"]["object"]["description"]
    schema = json.loads((await client.read_resource("kasar://schema/contacts")).contents[0].text)
    assert schema["name"] == "contacts" and "email" in [f["name"] for f in schema["fields"]]
    records = [
        {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"},
        {"first_name": "Ada", "email": "ADA@example.org"},
        {"last_name": "Nameless"},
    ]
    result = await client.call_tool("crm_import", {"object": "contacts", "records": records})
    assert not result.is_error, result
    answer = data(result)
    assert (answer["created"], answer["duplicates"], answer["failed"]) == (1, 1, 1)
    assert answer["errors"][0]["code"] == "VALIDATION_ERROR"
    result = await client.call_tool(
        "crm_export",
        {
            "object": "contacts",
            "fields": ["first_name", "email"],
            "filters": {
                "operator": "and",
                "conditions": [
                    {"field": "email", "operator": "ends_with", "value": "@example.org"}
                ],
            },
        },
    )
    assert data(result) == {
        "format": "json",
        "records": [{"first_name": "Ada", "email": "ada@example.org"}],
        "total": 1,
    }
    result = await client.call_tool(
        "crm_export", {"object": "contacts", "format": "csv", "fields": ["last_name"]}
    )
    assert data(result) == {"format": "csv", "csv": "last_name\r\nLovelace\r\n", "total": 1}
    pipelines = json.loads((await client.read_resource("kasar://pipelines")).contents[0].text)
    assert [p["name"] for p in pipelines["pipelines"]] == ["Sales Pipeline"]
    objects = json.loads((await client.read_resource("kasar://schema")).contents[0].text)
    assert {"name": "contacts", "label": "Contacts"}.items() <= objects["objects"][1].items()


async def member_session(client: Client) -> None:
    refused = await client.call_tool(
        "crm_import", {"object": "contacts", "records": [{"first_name": "M"}]}
    )
    assert refused.is_error
    assert data(refused) == {
        "code": "PERMISSION_DENIED",
        "message": "This action requires an admin token",
    }
    found = await client.call_tool("crm_find_records", {"object": "contacts", "limit": 5})
    assert not found.is_error and data(found)["total"] == 1


def run_session(client: Client, session: Session) -> None:
    async def go() -> None:
        async with client:
            await session(client)

    anyio.run(go)


def stdio_client(db_url: str, token: str) -> Client:
    env = {"KASAR_TOKEN": token, "PATH": os.environ.get("PATH", "")}
    params = StdioServerParameters(command=KASAR, args=["mcp", "--database-url", db_url], env=env)
    return Client(params, mode="legacy")  # the initialize handshake


def test_stdio(db_url: str, make_token: Any) -> None:
    run_session(stdio_client(db_url, make_token("admin")), admin_session)
    run_session(stdio_client(db_url, make_token("member")), member_session)


def test_stdio_refuses_a_bad_token(db_url: str) -> None:
    env = {**os.environ, "KASAR_TOKEN": "ksr_" + "x" * 43}
    done = subprocess.run(
        [KASAR, "mcp", "--database-url", db_url],
        env=env,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert done.returncode == 3 and done.stdout == ""
    assert "Error (UNAUTHENTICATED): A valid API token is required" in done.stderr


def http_client(url: str, token: str, mode: str = "legacy") -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
    return Client(streamable_http_client(url + "/mcp", http_client=http), mode=mode)


def test_streamable_http(live_server: str, make_token: Any) -> None:
    for body in ({}, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}):
        refused = httpx.post(live_server + "/mcp", json=body)
        assert refused.status_code == 401
        assert refused.json() == {
            "code": "UNAUTHENTICATED",
            "message": "A valid API token is required",
        }
    run_session(http_client(live_server, make_token("admin")), admin_session)
    run_session(http_client(live_server, make_token("member"), mode="auto"), member_session)


def test_duplicates_and_errors_in_process(engine: Engine, make_token: Any) -> None:
    people = [
        {"first_name": "Ann", "last_name": "Lee", "email": "ann@example.org"},
        {
            "first_name": "Ann",
            "last_name": "Lee",
            "email": "ANN@example.org",
            "phone": "0612345678",
        },
        {"first_name": "A.", "last_name": "L.", "phone": "+33 6 12 34 56 78"},
        {"first_name": "John", "last_name": "Smith", "email": "john@one.org"},
        {"first_name": "John", "last_name": "Smith", "email": "john@two.org"},
        {"first_name": "Solo", "last_name": "Person"},
    ]
    ids = []
    with write_transaction(engine) as conn:
        for person in people:  # the records API does not check for duplicates
            ids.append(create_record(conn, load_workspace(conn), "contacts", person)["id"])
    client = Client(build_server(engine, token=make_token("admin")))

    async def session(c: Client) -> None:
        found = data(
            await c.call_tool(
                "crm_detect_duplicates", {"object": "contacts", "fields": ["id", "first_name"]}
            )
        )
        assert found["total_groups"] == 1
        (group,) = found["duplicate_groups"]
        assert sorted(r["id"] for r in group["records"]) == sorted(ids[:3])
        assert group["matched_on"] == ["email", "phone", "name"]
        errors = [
            ("crm_find_records", {"object": "nope"}, "INVALID_OBJECT"),
            ("crm_find_records", {"object": "contacts", "limit": 500}, "VALIDATION_ERROR"),
            ("crm_find_records", {"object": "contacts", "filter_field": "x"}, "VALIDATION_ERROR"),
            ("crm_export", {"object": "contacts", "limit": 20000}, "VALIDATION_ERROR"),
            ("crm_export", {"object": "contacts", "format": "xml"}, "VALIDATION_ERROR"),
            ("crm_import", {"object": "contacts", "records": []}, "VALIDATION_ERROR"),
            ("crm_import", {"records": "not a list"}, "VALIDATION_ERROR"),
            ("crm_nothing", {}, "VALIDATION_ERROR"),
        ]
        for tool, arguments, code in errors:
            result = await c.call_tool(tool, arguments)
            assert result.is_error and data(result)["code"] == code, (tool, arguments, result)
            assert set(data(result)) == {"code", "message"}
        with pytest.raises(MCPError) as caught:
            await c.read_resource("kasar://schema/nope")
        assert caught.value.error.data == {
            "code": "INVALID_OBJECT",
            "message": "Object 'nope' does not exist",
        }

    run_session(client, session)
