"""The schema API: standard objects, custom objects and fields, admin only."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

H = dict[str, str]


def test_standard_objects(client: TestClient, member_headers: H) -> None:
    listing = client.get("/api/v1/schema", headers=member_headers).json()["objects"]
    assert [o["name"] for o in listing] == ["companies", "contacts", "opportunities"]
    assert all(o["recordCount"] == 0 for o in listing)
    contacts = client.get("/api/v1/schema/contacts", headers=member_headers).json()
    names = [f["name"] for f in contacts["fields"]]
    assert names == [
        "first_name",
        "last_name",
        "email",
        "phone",
        "linkedin",
        "job_title",
        "status",
        "company",
        "city",
        "notes",
    ]
    company = next(f for f in contacts["fields"] if f["name"] == "company")
    assert company["type"] == "RELATION"
    assert company["relation"] == {
        "type": "BELONGS_TO_ONE",
        "target": "companies",
        "foreign_key": "company_id",
    }
    assert next(f for f in contacts["fields"] if f["name"] == "first_name")["required"] is True
    assert (
        client.get("/api/v1/schema/nope", headers=member_headers).json()["code"] == "INVALID_OBJECT"
    )


def test_custom_object_and_fields(client: TestClient, admin_headers: H) -> None:
    r = client.post(
        "/api/v1/schema/objects",
        headers=admin_headers,
        json={
            "name": "projects",
            "label": "Projects",
            "fields": [
                {"name": "name", "type": "TEXT", "required": True},
                {"name": "budget", "type": "CURRENCY"},
                {"name": "tags", "type": "MULTI_SELECT", "options": ["red", "blue"]},
                {"name": "owner", "type": "RELATION", "relation": "contacts"},
                {"name": "site", "type": "ADDRESS"},
                {
                    "name": "stage",
                    "type": "PIPELINE",
                    "pipeline": {"name": "Delivery", "steps": ["Plan", "Build", "Ship"]},
                },
            ],
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "projects"
    r = client.post(
        "/api/v1/schema/projects/fields",
        headers=admin_headers,
        json={"name": "due", "type": "DATE"},
    )
    assert r.status_code == 201 and r.json() == {
        "name": "due",
        "label": "Due",
        "type": "DATE",
        "required": False,
    }
    rec = client.post(
        "/api/v1/records/projects",
        headers=admin_headers,
        json={
            "name": "Apollo",
            "budget": 10,
            "tags": "red, blue",
            "due": "2026-01-31",
            "site": {"city": "Paris", "country": "FR"},
        },
    )
    assert rec.status_code == 201, rec.text
    body = rec.json()
    assert body["tags"] == ["red", "blue"] and body["due"] == "2026-01-31"
    assert body["stage"] == "Delivery" and body["stage_step"] == "Plan"
    assert body["site"] == {"city": "Paris", "country": "FR"}
    found = client.get(
        "/api/v1/records/projects",
        headers=admin_headers,
        params={
            "filter_field": "due",
            "filter_operator": "date_after",
            "filter_value": "2026-01-01",
        },
    ).json()
    assert found["total"] == 1
    r = client.post(
        "/api/v1/schema/contacts/fields",
        headers=admin_headers,
        json={"name": "tier", "type": "SELECT", "options": ["gold"]},
    )
    assert r.status_code == 201
    c = client.post(
        "/api/v1/records/contacts", headers=admin_headers, json={"first_name": "A", "tier": "GOLD"}
    ).json()
    assert c["tier"] == "gold"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/v1/schema/objects", {"name": "Bad Name"}, "snake_case"),
        ("/api/v1/schema/objects", {"name": "contacts"}, "already exists"),
        (
            "/api/v1/schema/objects",
            {"name": "x", "fields": [{"name": "a", "type": "NOPE"}]},
            "type",
        ),
        ("/api/v1/schema/contacts/fields", {"name": "email", "type": "TEXT"}, "clashes"),
        ("/api/v1/schema/contacts/fields", {"name": "company_id", "type": "TEXT"}, "clashes"),
        ("/api/v1/schema/contacts/fields", {"name": "created_at", "type": "TEXT"}, "clashes"),
        ("/api/v1/schema/contacts/fields", {"name": "s", "type": "SELECT"}, "needs options"),
        (
            "/api/v1/schema/contacts/fields",
            {"name": "r", "type": "RELATION", "relation": "nope"},
            "existing object",
        ),
        ("/api/v1/schema/contacts/fields", {"name": "p", "type": "PIPELINE"}, "needs 'pipeline'"),
        (
            "/api/v1/schema/contacts/fields",
            {"name": "x", "type": "TEXT", "surprise": 1},
            "surprise",
        ),
    ],
)
def test_bad_schema_changes_are_400(
    client: TestClient, admin_headers: H, path: str, body: dict[str, Any], message: str
) -> None:
    r = client.post(path, headers=admin_headers, json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["message"] or message in str(r.json().get("details"))


def test_schema_changes_are_admin_only(client: TestClient, member_headers: H) -> None:
    for r in (
        client.post("/api/v1/schema/objects", headers=member_headers, json={"name": "x"}),
        client.post(
            "/api/v1/schema/contacts/fields",
            headers=member_headers,
            json={"name": "x", "type": "TEXT"},
        ),
        client.post(
            "/api/v1/schema/contacts/fields", headers=member_headers, content=b"not even json"
        ),
    ):
        assert r.status_code == 403 and r.json()["code"] == "PERMISSION_DENIED"
    assert client.post("/api/v1/schema/objects", json={"name": "x"}).status_code == 401


def test_relation_to_an_object_without_a_name_shows_the_id(
    client: TestClient, admin_headers: H
) -> None:
    r = client.post(
        "/api/v1/schema/objects",
        headers=admin_headers,
        json={"name": "widgets", "fields": [{"name": "size", "type": "INTEGER"}]},
    )
    assert r.status_code == 201
    widget = client.post("/api/v1/records/widgets", headers=admin_headers, json={"size": 3}).json()
    field = {"name": "widget", "type": "RELATION", "relation": "widgets"}
    assert (
        client.post("/api/v1/schema/contacts/fields", headers=admin_headers, json=field).status_code
        == 201
    )
    contact = client.post(
        "/api/v1/records/contacts",
        headers=admin_headers,
        json={"first_name": "A", "widget_id": widget["id"]},
    ).json()
    assert contact["widget_name"] == widget["id"]
    by_name = client.post(
        "/api/v1/records/contacts",
        headers=admin_headers,
        json={"first_name": "B", "widget_name": "nothing"},
    )
    assert by_name.status_code == 400 and "no widgets record named" in by_name.json()["message"]
