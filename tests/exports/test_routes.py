"""``GET /api/v1/export/{object}`` through the real app, on both databases (spec §8)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kasar.app import create_app
from kasar.db.engine import write_transaction
from kasar.records import repository as repo
from kasar.records.validation import validate_write
from kasar.schema.repository import load_workspace

H = dict[str, str]
URL = "/api/v1/export/contacts"
ALICE = {"first_name": "Alice", "last_name": "Martin", "email": "alice@example.com"}
BOB = {"first_name": "Bob", "last_name": "Dupont", "email": "bob@startup.io"}


def create(client: TestClient, headers: H, body: dict[str, Any], obj: str = "contacts") -> None:
    r = client.post(f"/api/v1/records/{obj}", headers=headers, json=body)
    assert r.status_code == 201, r.text


def get(client: TestClient, headers: H, query: str = "", url: str = URL) -> Any:
    return client.get(f"{url}?{query}" if query else url, headers=headers)


@pytest.fixture
def seed(client: TestClient, admin_headers: H) -> TestClient:
    """The seed's two contacts, Bob first so that Alice is the newest (listed first)."""
    create(client, admin_headers, {**BOB, "status": "lead"})
    create(client, admin_headers, {**ALICE, "status": "qualified"})
    return client


def test_seed_example_export_as_json(seed: TestClient, admin_headers: H) -> None:
    r = get(seed, admin_headers, "format=json&fields=first_name,last_name,email&limit=500")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == {"format": "json", "records": [ALICE, BOB], "total": 2}
    assert "content-disposition" not in r.headers


def test_seed_example_export_as_csv(seed: TestClient, admin_headers: H) -> None:
    r = get(seed, admin_headers, "format=csv&fields=first_name,last_name,email")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="contacts_export.csv"'
    assert r.text == (
        "first_name,last_name,email\r\n"
        "Alice,Martin,alice@example.com\r\n"
        "Bob,Dupont,bob@startup.io\r\n"
    )


def test_seed_example_export_with_filters(seed: TestClient, admin_headers: H) -> None:
    create(seed, admin_headers, {"first_name": "Zoé", "last_name": "Abadie", "status": "qualified"})
    query = (
        "format=json&filter_field=status&filter_operator=eq&filter_value=qualified"
        "&sort_by=last_name&sort_dir=asc"
    )
    body = get(seed, admin_headers, query).json()
    assert [r["last_name"] for r in body["records"]] == ["Abadie", "Martin"]
    assert body["total"] == 2 and body["records"][1]["email"] == "alice@example.com"


def test_seed_example_export_with_a_filter_group(seed: TestClient, admin_headers: H) -> None:
    # curl -G --data-urlencode 'format=json' --data-urlencode 'filters={...}'
    filters = (
        '{"operator":"and","conditions":[{"field":"status","operator":"eq","value":"qualified"},'
        '{"field":"created_at","operator":"gte","value":"2025-01-01"}]}'
    )
    r = seed.get(URL, headers=admin_headers, params={"format": "json", "filters": filters})
    assert r.status_code == 200
    body = r.json()
    assert [x["first_name"] for x in body["records"]] == ["Alice"] and body["total"] == 1


def test_default_fields_and_or_groups(seed: TestClient, admin_headers: H) -> None:
    create(
        seed, admin_headers, {"first_name": "Carl", "company_name": "Acme", "status": "customer"}
    )
    filters = json.dumps({"type": "OR", "conditions": [
        {"field": "status", "operator": "eq", "value": "customer"},
        {"type": "and", "conditions": [
            {"field": "first_name", "operator": "starts_with", "value": "b"},
            {"field": "email", "operator": "ends_with", "value": ".io"},
        ]},
    ]})  # fmt: skip
    body = get(seed, admin_headers, f"filters={filters}").json()
    assert [r["first_name"] for r in body["records"]] == ["Carl", "Bob"]
    assert list(body["records"][0]) == [
        "id", "first_name", "last_name", "email", "phone", "linkedin", "job_title", "status",
        "company_name", "city", "notes", "created_at", "updated_at",
    ]  # fmt: skip
    assert body["records"][0]["company_name"] == "Acme"


def test_csv_quoting_and_formula_protection(client: TestClient, admin_headers: H) -> None:
    for first, last, phone in [
        ("=cmd|' /C calc'!A0", 'Dupont, "Jr"', "+33612345678"),
        ("@SUM(1)", "-5", None),
        ("Zoë", "multi\nline", None),
        ("'+x", "-x", None),
    ]:
        create(client, admin_headers, {"first_name": first, "last_name": last, "phone": phone})
    r = get(client, admin_headers, "format=csv&fields=first_name,last_name,phone&sort_dir=asc")
    assert r.content.decode() == (
        "first_name,last_name,phone\r\n"
        '\'=cmd|\' /C calc\'!A0,"Dupont, ""Jr""",+33612345678\r\n'
        "'@SUM(1),-5,\r\n"
        'Zoë,"multi\nline",\r\n'
        "''+x,'-x,\r\n"
    )


def test_limit_cuts_the_list_and_total_counts_all(seed: TestClient, admin_headers: H) -> None:
    body = get(seed, admin_headers, "limit=1&fields=first_name").json()
    assert body == {"format": "json", "records": [{"first_name": "Alice"}], "total": 2}
    assert get(seed, admin_headers, "format=CSV&limit=1&fields=first_name").text == (
        "first_name\r\nAlice\r\n"
    )


def nested(depth: int) -> str:
    node: dict[str, Any] = {"field": "city", "operator": "eq", "value": "x"}
    for _ in range(depth):
        node = {"conditions": [node]}
    return json.dumps(node)


UNKNOWN_NOPE = "Unknown field 'nope' for object 'contacts'"
BAD_LIMIT = "limit must be an integer between 1 and 10000"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("format=xml", "Unknown format 'xml': use json or csv"),
        ("format=ndjson", "Unknown format 'ndjson': use json or csv"),
        ("fields=first_name,nope", UNKNOWN_NOPE),
        ("filter_field=status&filter_operator=like&filter_value=x",
         "Unknown filter operator 'like'"),
        ("filter_field=nope&filter_operator=eq&filter_value=x", UNKNOWN_NOPE),
        ("filter_field=created_at&filter_operator=gte&filter_value=yesterday",
         "Filter value for 'created_at' must be a date-time (ISO 8601)"),
        ("filter_field=status&filter_operator=eq", "Operator 'eq' needs filter_value"),
        ("filter_field=created_at&filter_operator=contains&filter_value=x",
         "Operator 'contains' does not apply to field 'created_at'"),
        ("sort_by=nope", "Unknown sort field 'nope' for object 'contacts'"),
        ("sort_dir=up", "sort_dir must be 'asc' or 'desc'"),
        ("limit=0", BAD_LIMIT),
        ("limit=10001", BAD_LIMIT),
        ("limit=x", BAD_LIMIT),
        ("limit=-1", BAD_LIMIT),
        ("filters={", "'filters' is not valid JSON"),
        (f"filters={nested(6)}", "Filters are nested too deep (at most 5 levels)"),
        ("filter_field=status&filter_operator=eq&filter_value=lead&filters="
         '{"operator":"and","conditions":[{"field":"city","operator":"eq","value":"x"}]}',
         "Use either filter_field/filter_operator/filter_value or filters"),
    ],
)  # fmt: skip
def test_bad_parameters_are_400_validation_errors(
    client: TestClient, admin_headers: H, query: str, message: str
) -> None:
    r = client.get(
        URL, headers=admin_headers, params=dict(p.split("=", 1) for p in query.split("&"))
    )
    assert r.status_code == 400
    assert r.json() == {"code": "VALIDATION_ERROR", "message": message}


def test_checks_run_in_spec_order(client: TestClient, admin_headers: H, member_headers: H) -> None:
    r = client.get(URL)
    assert (r.status_code, r.json()["code"]) == (401, "UNAUTHENTICATED")
    r = client.get("/api/v1/export/nope?limit=x", headers={"Authorization": "Bearer ksr_nope"})
    assert r.status_code == 401
    r = get(client, member_headers, "format=csv")
    assert r.status_code == 403
    assert r.json() == {
        "code": "PERMISSION_DENIED",
        "message": "This action requires an admin token",
    }
    assert get(client, member_headers, "limit=x", url="/api/v1/export/nope").status_code == 403
    r = get(client, admin_headers, "limit=x&format=xml", url="/api/v1/export/nope")
    assert r.status_code == 400
    assert r.json() == {"code": "INVALID_OBJECT", "message": "Object 'nope' does not exist"}


def test_other_objects_export_too(client: TestClient, admin_headers: H) -> None:
    create(client, admin_headers, {"name": "Deal", "amount": "1200.50"}, "opportunities")
    r = get(client, admin_headers, "format=csv&fields=name,amount,pipeline,pipeline_step",
            url="/api/v1/export/opportunities")  # fmt: skip
    assert r.headers["content-disposition"] == 'attachment; filename="opportunities_export.csv"'
    assert (
        r.text
        == "name,amount,pipeline,pipeline_step\r\nDeal,1200.5,Sales Pipeline,Qualification\r\n"
    )


def fill(engine: Engine, count: int) -> None:
    with write_transaction(engine) as conn:
        ws = load_workspace(conn)
        obj = ws.object("contacts")
        values = validate_write(
            obj, {"first_name": "Ann", "last_name": "Lee", "city": "Lyon"}
        ).values
        repo.insert_records(conn, ws, obj, [repo.new_row(dict(values)) for _ in range(count)])


def test_a_large_export_streams_whole(client: TestClient, admin_headers: H, engine: Engine) -> None:
    fill(engine, 3000)
    with client.stream(
        "GET", URL, headers=admin_headers, params={"format": "csv", "limit": "5000"}
    ) as r:
        chunks = list(r.iter_raw())
    body = b"".join(chunks).decode()
    assert body.count("\r\n") == 3001 and body.startswith("id,first_name,")
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    doc = get(client, admin_headers, "limit=10000").json()
    assert len(doc["records"]) == doc["total"] == 3000


def test_a_client_that_goes_away_ends_the_stream(engine: Engine, admin_headers: H) -> None:
    fill(engine, 5000)
    app = create_app(engine)
    messages: list[dict[str, Any]] = []

    async def call() -> None:
        first_body = anyio.Event()

        async def receive() -> dict[str, Any]:
            await first_body.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)
            if message["type"] == "http.response.body":
                first_body.set()

        token = admin_headers["Authorization"].encode()
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": "GET", "scheme": "http", "root_path": "",
            "path": URL, "raw_path": URL.encode(), "query_string": b"format=csv&limit=5000",
            "headers": [(b"host", b"test"), (b"authorization", token)],
            "client": ("127.0.0.1", 1), "server": ("test", 80),
        }  # fmt: skip
        await app(scope, receive, send)

    anyio.run(call)
    assert messages[0]["type"] == "http.response.start" and messages[0]["status"] == 200
    bodies = [m for m in messages if m["type"] == "http.response.body"]
    assert bodies and all(m.get("more_body") for m in bodies)  # cut before the end
    assert sum(len(m["body"]) for m in bodies) < 5000 * 100
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_openapi_documents_the_parameters_and_errors(client: TestClient) -> None:
    op = client.get("/openapi.json").json()["paths"]["/api/v1/export/{object_name}"]["get"]
    names = [p["name"] for p in op["parameters"]]
    assert names == [
        "object_name", "format", "fields", "filter_field", "filter_operator", "filter_value",
        "filters", "sort_by", "sort_dir", "limit",
    ]  # fmt: skip
    assert {"200", "400", "401", "403"} <= set(op["responses"])
    assert set(op["responses"]["200"]["content"]) == {"application/json", "text/csv"}
