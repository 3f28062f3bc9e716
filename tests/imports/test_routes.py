"""POST /api/v1/import/{object} through the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from kasar.app import create_app
from kasar.db.locks import key_hash
from kasar.dedup.keys import lock_names
from kasar.settings import get_settings

H = dict[str, str]
URL = "/api/v1/import/contacts"
SEED_BODY = {
    "records": [
        {"first_name": "Alice", "last_name": "Martin", "email": "alice@example.com"},
        {"first_name": "Bob", "last_name": "Dupont", "email": "bob@startup.io"},
    ]
}


def contacts(client: TestClient, headers: H) -> list[dict[str, Any]]:
    r = client.get("/api/v1/records/contacts?sort_dir=asc&limit=100", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def post(client: TestClient, headers: H, body: Any, url: str = URL) -> httpx.Response:
    return client.post(url, headers=headers, json=body)


def test_seed_curl_example_with_bob_stored(client: TestClient, admin_headers: H) -> None:
    bob = post(client, admin_headers, {"records": [SEED_BODY["records"][1]]})
    assert bob.status_code == 200, bob.text
    r = client.post(
        URL,
        headers={**admin_headers, "Content-Type": "application/json"},
        content=b"""{
"records": [
{
"first_name": "Alice",
"last_name": "Martin",
"email": "alice@example.com"
},
{
"first_name": "Bob",
"last_name": "Dupont",
"email": "bob@startup.io"
}
]
}""",
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body)[:5] == ["object_name", "created", "duplicates", "failed", "errors"]
    results = body.pop("results")
    assert body == {
        "object_name": "contacts",
        "created": 1,
        "duplicates": 1,
        "failed": 0,
        "errors": [],
    }
    assert results[1] == {
        "index": 1,
        "status": "duplicate",
        "duplicate_of": bob.json()["results"][0]["id"],
        "matched_on": ["email", "name"],
    }
    assert [c["email"] for c in contacts(client, admin_headers)] == [
        "bob@startup.io",
        "alice@example.com",
    ]


def test_seed_error_example(client: TestClient, admin_headers: H) -> None:
    records = [SEED_BODY["records"][0], {**SEED_BODY["records"][1], "email": "bob at startup"}]
    r = post(client, admin_headers, {"records": records})
    assert r.status_code == 200
    body = r.json()
    body.pop("results")
    assert body == {
        "object_name": "contacts",
        "created": 1,
        "duplicates": 0,
        "failed": 1,
        "errors": [
            {
                "index": 1,
                "code": "VALIDATION_ERROR",
                "message": "Field 'email' must be a valid email address",
            }
        ],
    }


def test_member_gets_403_before_the_body_is_read(client: TestClient, member_headers: H) -> None:
    r = client.post(URL, headers=member_headers, content=b"{not json")
    assert r.status_code == 403
    assert r.json() == {
        "code": "PERMISSION_DENIED",
        "message": "This action requires an admin token",
    }
    assert client.post(URL, json=SEED_BODY).json()["code"] == "UNAUTHENTICATED"


def test_unknown_object(client: TestClient, admin_headers: H) -> None:
    r = client.post(
        "/api/v1/import/unicorns?on_duplicate=nope", headers=admin_headers, content=b"{"
    )
    assert r.status_code == 400
    assert r.json() == {"code": "INVALID_OBJECT", "message": "Object 'unicorns' does not exist"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"records": []}, "'records' must hold 1 to 50 records; it holds 0"),
        (
            {"records": [{"first_name": f"P{i}"} for i in range(51)]},
            "'records' must hold 1 to 50 records; it holds 51",
        ),
        ({"records": [{"first_name": "A"}, "Bob"]}, "Record 1 must be a JSON object"),
        ({"records": [{"first_name": "A"}, None]}, "Record 1 must be a JSON object"),
        ({"records": {"first_name": "A"}}, "The body must have a 'records' list"),
        ({}, "The body must have a 'records' list"),
        (
            {"records": [{"first_name": "A"}], "dry_run": True},
            "Unknown key 'dry_run' in the body: it takes only 'records' "
            "(dry_run and on_duplicate go in the query string)",
        ),
        ([{"first_name": "A"}], "The body must be a JSON object"),
    ],
)
def test_request_level_400_writes_nothing(
    client: TestClient, admin_headers: H, body: Any, message: str
) -> None:
    r = post(client, admin_headers, body)
    assert r.status_code == 400
    assert r.json() == {"code": "VALIDATION_ERROR", "message": message}
    assert contacts(client, admin_headers) == []


def test_fifty_records_is_fine(client: TestClient, admin_headers: H) -> None:
    r = post(
        client,
        admin_headers,
        {"records": [{"first_name": f"P{i}", "last_name": "X"} for i in range(50)]},
    )
    assert r.status_code == 200 and r.json()["created"] == 50


@pytest.mark.parametrize("raw", [b"{not json", b"", b'{"records": [1,]}'])
def test_malformed_body(client: TestClient, admin_headers: H, raw: bytes) -> None:
    r = client.post(URL, headers={**admin_headers, "Content-Type": "application/json"}, content=raw)
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR"


def test_body_over_the_cap(
    client: TestClient, admin_headers: H, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "max_body_bytes", 1000)
    r = post(client, admin_headers, {"records": [{"first_name": "A", "notes": "x" * 2000}]})
    assert r.status_code == 413 and r.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert contacts(client, admin_headers) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("dry_run=maybe", "dry_run must be true or false"),
        ("on_duplicate=merge", "on_duplicate must be one of: skip, update, overwrite"),
    ],
)
def test_bad_options(client: TestClient, admin_headers: H, query: str, message: str) -> None:
    r = post(client, admin_headers, SEED_BODY, f"{URL}?{query}")
    assert r.status_code == 400 and r.json() == {"code": "VALIDATION_ERROR", "message": message}


def test_dry_run_writes_nothing(client: TestClient, admin_headers: H) -> None:
    body = {"records": [*SEED_BODY["records"], {"first_name": "C", "company_name": "NewCo"}]}
    r = post(client, admin_headers, body, f"{URL}?dry_run=true")
    assert r.status_code == 200 and r.json()["created"] == 3
    assert contacts(client, admin_headers) == []
    assert client.get("/api/v1/records/companies", headers=admin_headers).json()["total"] == 0


def test_on_duplicate_update_answers_updated(client: TestClient, admin_headers: H) -> None:
    post(client, admin_headers, SEED_BODY)
    bob = {**SEED_BODY["records"][1], "city": "Nantes"}
    body = post(client, admin_headers, {"records": [bob]}, f"{URL}?on_duplicate=update").json()
    assert (body["duplicates"], body["updated"], body["results"][0]["updated"]) == (1, 1, True)
    assert contacts(client, admin_headers)[1]["city"] == "Nantes"


def test_pipeline_defaults_and_company_name(client: TestClient, admin_headers: H) -> None:
    recs = [{"name": "Deal", "company_name": "Acme"}, {"name": "Deal 2", "company_name": "ACME"}]
    r = post(client, admin_headers, {"records": recs}, "/api/v1/import/opportunities")
    assert r.json()["created"] == 2
    data = client.get("/api/v1/records/opportunities", headers=admin_headers).json()["data"]
    assert {(d["pipeline"], d["pipeline_step"], d["company_name"]) for d in data} == {
        ("Sales Pipeline", "Qualification", "Acme")
    }


def test_custom_object_matches_on_emails_and_phones(client: TestClient, admin_headers: H) -> None:
    spec = {
        "name": "tickets",
        "label": "Tickets",
        "fields": [
            {"name": "subject", "type": "TEXT", "required": True},
            {"name": "requester", "type": "EMAILS"},
            {"name": "callback", "type": "PHONES"},
        ],
    }
    assert (
        client.post("/api/v1/schema/objects", headers=admin_headers, json=spec).status_code == 201
    )
    url = "/api/v1/import/tickets"
    first = post(
        client,
        admin_headers,
        {"records": [{"subject": "A", "requester": "x@y.io", "callback": "0612345678"}]},
        url,
    )
    ticket_id = first.json()["results"][0]["id"]
    recs = [
        {"subject": "B", "requester": " X@Y.IO "},
        {"subject": "C", "callback": "+33 6 12 34 56 78"},
        {"subject": "A"},
    ]
    results = post(client, admin_headers, {"records": recs}, url).json()["results"]
    assert [(r["status"], r.get("duplicate_of"), r.get("matched_on")) for r in results] == [
        ("duplicate", ticket_id, ["email"]),
        ("duplicate", ticket_id, ["phone"]),
        ("created", None, None),
    ]


def test_openapi_documents_the_route(client: TestClient) -> None:
    op = client.get("/openapi.json").json()["paths"]["/api/v1/import/{object_name}"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["records"]["maxItems"] == 50
    assert {p["name"] for p in op["parameters"]} == {
        "object_name",
        "dry_run",
        "on_duplicate",
        "on_possible_duplicate",
    }
    assert {"200", "400", "401", "403", "413"} <= set(op["responses"])


def _post_outside_test_client(engine: Engine, headers: H, body: Any) -> httpx.Response:
    """Through httpx's ASGI transport: the autouse check of TestClient answers rejects
    every 5xx, and a timed-out import deliberately answers 500."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.post(URL, headers=headers, json=body)

    return asyncio.run(go())


def test_past_the_maximum_duration_nothing_is_stored(
    client: TestClient, engine: Engine, admin_headers: H, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "import_max_seconds", 0.0)
    r = _post_outside_test_client(engine, admin_headers, SEED_BODY)
    assert r.status_code == 500
    assert r.json() == {
        "code": "INTERNAL_ERROR",
        "message": "The import ran past the maximum duration of 0 s and was rolled back; "
        "nothing was stored",
    }
    assert contacts(client, admin_headers) == []


def test_postgresql_stops_a_statement_at_the_deadline(
    client: TestClient, engine: Engine, admin_headers: H, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import stuck behind another transaction's lock is cancelled by
    ``statement_timeout`` at the deadline, not left waiting."""
    if engine.dialect.name != "postgresql":
        pytest.skip("statement_timeout is PostgreSQL's")
    monkeypatch.setattr(get_settings(), "import_max_seconds", 1.0)
    (lock,) = lock_names("contacts", {("email", "alice@example.com")})
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with engine.connect() as conn, conn.begin():
            conn.execute(text("SELECT pg_advisory_xact_lock(:h)"), {"h": key_hash(lock)})
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        held.wait(5)
        r = _post_outside_test_client(engine, admin_headers, SEED_BODY)
    finally:
        release.set()
        thread.join()
    assert r.status_code == 500 and "maximum duration of 1 s" in r.json()["message"]
    assert contacts(client, admin_headers) == []
