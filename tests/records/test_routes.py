"""The records API through the real app, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

H = dict[str, str]


def create(client: TestClient, headers: H, obj: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"/api/v1/records/{obj}", headers=headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_create_get_update_delete(client: TestClient, member_headers: H) -> None:
    rec = create(
        client,
        member_headers,
        "contacts",
        {
            "first_name": " Alice ",
            "last_name": "Martin",
            "email": ["Alice@Example.COM", "a2@example.com"],
            "phone": "06 12 34 56 78",
            "status": "Qualified",
            "company_name": "Acme Corp",
        },
    )
    assert rec["first_name"] == "Alice"
    assert rec["email"] == "Alice@example.com"
    assert rec["email_all"] == ["Alice@example.com", "a2@example.com"]
    assert rec["phone"] == "+33612345678"
    assert rec["status"] == "qualified"
    assert rec["company_name"] == "Acme Corp" and rec["company_id"]
    assert rec["created_at"].endswith("Z") and rec["created_at"] == rec["updated_at"]

    got = client.get(f"/api/v1/records/contacts/{rec['id']}", headers=member_headers).json()
    assert got == rec

    r = client.patch(
        f"/api/v1/records/contacts/{rec['id']}",
        headers=member_headers,
        json={"city": "Lyon", "last_name": None},
    )
    assert r.status_code == 200
    assert r.json()["city"] == "Lyon" and r.json()["last_name"] is None
    assert r.json()["updated_at"] >= rec["updated_at"]

    company = client.get(
        f"/api/v1/records/companies/{rec['company_id']}", headers=member_headers
    ).json()
    assert company["name"] == "Acme Corp"

    assert (
        client.delete(f"/api/v1/records/contacts/{rec['id']}", headers=member_headers).status_code
        == 204
    )
    r = client.get(f"/api/v1/records/contacts/{rec['id']}", headers=member_headers)
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    assert (
        client.delete(f"/api/v1/records/contacts/{rec['id']}", headers=member_headers).status_code
        == 404
    )


def test_company_name_links_case_and_accent_insensitively(
    client: TestClient, admin_headers: H
) -> None:
    a = create(
        client, admin_headers, "contacts", {"first_name": "A", "company_name": "Société Générale"}
    )
    b = create(
        client, admin_headers, "contacts", {"first_name": "B", "company_name": "societe  generale"}
    )
    assert a["company_id"] == b["company_id"]
    companies = client.get("/api/v1/records/companies", headers=admin_headers).json()
    assert companies["total"] == 1


def test_pipeline_defaults_and_step_by_name(client: TestClient, admin_headers: H) -> None:
    pipelines = client.get("/api/v1/pipelines", headers=admin_headers).json()["pipelines"]
    assert [p["name"] for p in pipelines] == ["Sales Pipeline"]
    steps = pipelines[0]["steps"]
    assert [s["name"] for s in steps] == [
        "Qualification",
        "Discovery",
        "Proposal",
        "Negotiation",
        "Closed Won",
    ]
    deal = create(client, admin_headers, "opportunities", {"name": "Deal", "amount": "1200.50"})
    assert deal["pipeline"] == "Sales Pipeline" and deal["pipeline_step"] == "Qualification"
    assert deal["pipeline_step_id"] == steps[0]["id"] and deal["amount"] == 1200.5
    other = create(
        client, admin_headers, "opportunities", {"name": "D2", "pipeline_step": "proposal"}
    )
    assert other["pipeline_step_id"] == steps[2]["id"]
    moved = client.put(
        f"/api/v1/pipelines/opportunities/{deal['id']}/move",
        headers=admin_headers,
        json={"pipeline_step_id": steps[4]["id"]},
    )
    assert moved.status_code == 200 and moved.json()["pipeline_step"] == "Closed Won"
    bad = client.post(
        "/api/v1/records/opportunities",
        headers=admin_headers,
        json={"name": "x", "pipeline_step": "Won?"},
    )
    assert bad.status_code == 400 and "Qualification" in bad.json()["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"last_name": "x"}, "Field 'first_name' is required"),
        ({"first_name": "A", "email": "nope"}, "Field 'email' must be a valid email address"),
        ({"first_name": "A", "phone": "12"}, "Field 'phone' must be a valid phone number"),
        (
            {"first_name": "A", "status": "vip"},
            "Field 'status' must be one of: lead, qualified, customer, churned",
        ),
        (
            {"first_name": "A", "id": "0190a0a0-0000-7000-8000-000000000000"},
            "Field 'id' is read-only",
        ),
        ({"first_name": "A", "created_at": "2020-01-01"}, "Field 'created_at' is read-only"),
        ({"first_name": "A", "shoe_size": 42}, "Unknown field 'shoe_size'"),
        ({"first_name": "A", "company_id": "nope"}, "company_id"),
    ],
)
def test_bad_writes_are_400_and_write_nothing(
    client: TestClient, admin_headers: H, body: dict[str, Any], message: str
) -> None:
    r = client.post("/api/v1/records/contacts", headers=admin_headers, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert message in r.json()["message"]
    assert client.get("/api/v1/records/contacts", headers=admin_headers).json()["total"] == 0
    assert client.get("/api/v1/records/companies", headers=admin_headers).json()["total"] == 0


def test_unknown_object_is_invalid_object(client: TestClient, member_headers: H) -> None:
    for r in (
        client.get("/api/v1/records/nope", headers=member_headers),
        client.post("/api/v1/records/nope", headers=member_headers, json={"a": 1}),
        client.get("/api/v1/records/nope/123", headers=member_headers),
    ):
        assert r.status_code == 400 and r.json()["code"] == "INVALID_OBJECT"


def test_paging_sort_and_projection(client: TestClient, admin_headers: H) -> None:
    names = ["delta", "Alpha", None, "charlie", "bravo", None, "alpha", "Echo"]
    for i, n in enumerate(names):
        body: dict[str, Any] = {"first_name": f"p{i}"}
        if n is not None:
            body["last_name"] = n
        create(client, admin_headers, "contacts", body)
    for direction in ("asc", "desc"):
        seen: list[Any] = []
        cursor = None
        while True:
            params: dict[str, Any] = {
                "sort_by": "last_name",
                "sort_dir": direction,
                "limit": 3,
                "fields": "last_name,first_name",
            }
            if cursor:
                params["cursor"] = cursor
            page = client.get(
                "/api/v1/records/contacts", headers=admin_headers, params=params
            ).json()
            assert page["total"] == len(names)
            assert all(list(row) == ["last_name", "first_name"] for row in page["data"])
            seen += [row["last_name"] for row in page["data"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        present = sorted(
            n for n in names if n is not None
        )  # code-point order, the same on both databases
        expected = (present if direction == "asc" else present[::-1]) + [None, None]
        assert seen == expected
    default = client.get(
        "/api/v1/records/contacts", headers=admin_headers, params={"limit": 100}
    ).json()["data"]
    created = [r["created_at"] for r in default]
    assert created == sorted(created, reverse=True)


@pytest.mark.parametrize(
    "params",
    [
        {"sort_by": "nope"},
        {"sort_dir": "up"},
        {"fields": "id,nope"},
        {"limit": 0},
        {"limit": 101},
        {"cursor": "garbage"},
        {"filter_field": "nope", "filter_operator": "eq", "filter_value": "x"},
        {"filter_field": "first_name", "filter_value": "x"},
        {"filters": '{"operator":"xor","conditions":[]}'},
        {"sort_by": "first_name; DROP TABLE obj_contacts"},
    ],
)
def test_bad_list_parameters_are_400(
    client: TestClient, member_headers: H, params: dict[str, Any]
) -> None:
    r = client.get("/api/v1/records/contacts", headers=member_headers, params=params)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"


def test_filters_through_the_api(client: TestClient, member_headers: H) -> None:
    a = create(
        client,
        member_headers,
        "contacts",
        {"first_name": "Ann", "status": "qualified", "company_name": "Acme"},
    )
    create(client, member_headers, "contacts", {"first_name": "Bob", "status": "lead"})
    simple = client.get(
        "/api/v1/records/contacts",
        headers=member_headers,
        params={"filter_field": "status", "filter_operator": "eq", "filter_value": "QUALIFIED"},
    ).json()
    assert [r["id"] for r in simple["data"]] == [a["id"]]
    adv = client.get(
        "/api/v1/records/contacts",
        headers=member_headers,
        params={
            "filters": '{"type":"OR","conditions":['
            '{"field":"company_name","operator":"contains","value":"acm"},'
            '{"field":"first_name","operator":"eq","value":"nobody"}]}'
        },
    ).json()
    assert [r["id"] for r in adv["data"]] == [a["id"]]
