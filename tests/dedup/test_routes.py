"""The duplicates API through the real app: detect, merge, unmerge, the review queue,
the import option, permissions and error bodies."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

DUPLICATES = "/api/v1/duplicates"
REVIEW = "/api/v1/duplicates/review"


def create(
    client: TestClient, headers: dict[str, str], object_name: str, record: dict[str, Any]
) -> str:
    r = client.post(f"/api/v1/records/{object_name}", json=record, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def post(client: TestClient, headers: dict[str, str], body: Any) -> tuple[int, Any]:
    r = client.post(DUPLICATES, json=body, headers=headers)
    return r.status_code, r.json()


@pytest.fixture
def pair(client: TestClient, admin_headers: dict[str, str]) -> list[str]:
    """John Smith twice (one email), his company, and a deal on the copy."""
    company = create(client, admin_headers, "companies", {"name": "Acme"})
    ids = [
        create(
            client,
            admin_headers,
            "contacts",
            {"first_name": "John", "last_name": "Smith", "email": "js@acme.com"},
        ),
        create(
            client,
            admin_headers,
            "contacts",
            {"first_name": "john", "last_name": "SMITH", "company_id": company},
        ),
    ]
    deal = create(client, admin_headers, "opportunities", {"name": "Deal", "contact_id": ids[1]})
    return [*ids, company, deal]


def test_detect(client: TestClient, admin_headers: dict[str, str], pair: list[str]) -> None:
    body = {"action": "detect", "object_name": "contacts", "fields": ["id", "email"]}
    status, answer = post(client, admin_headers, body)
    assert status == 200
    assert answer == {
        "object_name": "contacts",
        "mode": "exact",
        "duplicate_groups": [
            {
                "records": [
                    {"id": pair[0], "email": "js@acme.com"},
                    {"id": pair[1], "email": None},
                ],
                "matched_on": ["name"],
                "score": 1.0,
                "reasons": ["same name"],
                "links": [{"ids": pair[:2], "score": 1.0, "reasons": ["same name"]}],
            }
        ],
        "total_groups": 1,
    }
    create(client, admin_headers, "contacts", {"first_name": "Jon", "last_name": "Smith"})
    fuzzy = {**body, "mode": "fuzzy", "fields": "id", "limit": 1, "threshold": 0.8}
    status, answer = post(client, admin_headers, fuzzy)
    assert status == 200 and answer["total_groups"] == 1 and answer["mode"] == "fuzzy"
    (group,) = answer["duplicate_groups"]
    assert len(group["records"]) == 3 and group["matched_on"] == ["name", "fuzzy_name"]


def test_merge_and_unmerge(
    client: TestClient, admin_headers: dict[str, str], pair: list[str]
) -> None:
    master, dup, company, deal = pair
    body = {
        "action": "merge",
        "object_name": "contacts",
        "master_id": master,
        "duplicate_ids": [dup],
    }
    status, answer = post(client, admin_headers, body)
    assert status == 200, answer
    assert answer["master"]["company_id"] == company and answer["merged_ids"] == [dup]
    assert client.get(f"/api/v1/records/contacts/{dup}", headers=admin_headers).status_code == 404
    deal_now = client.get(f"/api/v1/records/opportunities/{deal}", headers=admin_headers).json()
    assert deal_now["contact_id"] == master
    undo = {"action": "unmerge", "merge_id": answer["merge_id"]}
    status, undone = post(client, admin_headers, undo)
    assert status == 200 and undone["restored_ids"] == [dup]
    assert undone["master"]["company_id"] is None
    deal_now = client.get(f"/api/v1/records/opportunities/{deal}", headers=admin_headers).json()
    assert deal_now["contact_id"] == dup
    assert post(client, admin_headers, undo) == (
        409,
        {"code": "CONFLICT", "message": f"Merge '{answer['merge_id']}' was already undone"},
    )


def test_bad_merges_give_clear_errors(
    client: TestClient, admin_headers: dict[str, str], pair: list[str]
) -> None:
    master, dup, company, _ = pair
    base = {"action": "merge", "object_name": "contacts", "master_id": master}
    cases = [
        (
            {**base, "duplicate_ids": []},
            400,
            "duplicate_ids must name at least one record to merge",
        ),
        (
            {**base, "duplicate_ids": [master]},
            400,
            f"A record cannot be merged into itself: '{master}' is both master_id "
            "and one of duplicate_ids",
        ),
        ({**base, "duplicate_ids": ["nope"]}, 404, "No contacts record with id 'nope'"),
        (
            {**base, "master_id": "nope", "duplicate_ids": [dup]},
            404,
            "No contacts record with id 'nope'",
        ),
        (
            {**base, "duplicate_ids": [company]},
            400,
            f"Record '{company}' is a companies record, not a contacts record: "
            "a merge folds records of one object",
        ),
        ({"action": "unmerge", "merge_id": "nope"}, 404, "No merge with id 'nope'"),
    ]
    for body, status, message in cases:
        got_status, got = post(client, admin_headers, body)
        assert (got_status, got["message"]) == (status, message), body
    status, got = post(client, admin_headers, {**base, "duplicate_ids": [company]})
    assert got["details"] == {"id": company, "object_name": "companies"}


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({}, "VALIDATION_ERROR", "action must be one of: detect, merge, unmerge"),
        ({"action": "dedupe"}, "VALIDATION_ERROR", "action must be one of: detect, merge, unmerge"),
        ({"action": "detect"}, "VALIDATION_ERROR", "object_name is required and must be text"),
        (
            {"action": "detect", "object_name": "nope"},
            "INVALID_OBJECT",
            "Object 'nope' does not exist",
        ),
        (
            {"action": "detect", "object_name": "contacts", "limit": 1001},
            "VALIDATION_ERROR",
            "limit: Input should be less than or equal to 1000",
        ),
        (
            {"action": "detect", "object_name": "contacts", "mode": "soundex"},
            "VALIDATION_ERROR",
            "mode: Input should be 'exact' or 'fuzzy'",
        ),
        (
            {"action": "detect", "object_name": "contacts", "threshold": 2},
            "VALIDATION_ERROR",
            "threshold: Input should be less than or equal to 1",
        ),
        (
            {"action": "detect", "object_name": "contacts", "fields": ["nope"]},
            "VALIDATION_ERROR",
            "Unknown field 'nope' for object 'contacts'",
        ),
        (
            {"action": "detect", "object_name": "contacts", "treshold": 0.9},
            "VALIDATION_ERROR",
            "treshold: Extra inputs are not permitted",
        ),
        (
            {"action": "merge", "object_name": "contacts", "master_id": "x"},
            "VALIDATION_ERROR",
            "duplicate_ids: Field required",
        ),
        (
            {"action": "unmerge", "merge_id": "m", "object_name": "nope"},
            "INVALID_OBJECT",
            "Object 'nope' does not exist",
        ),
    ],
)
def test_bad_bodies(
    client: TestClient, admin_headers: dict[str, str], body: Any, code: str, message: str
) -> None:
    status, answer = post(client, admin_headers, body)
    assert (status, answer["code"], answer["message"]) == (400, code, message)


def test_admin_only(client: TestClient, member_headers: dict[str, str]) -> None:
    body = {"action": "detect", "object_name": "contacts"}
    denied = {"code": "PERMISSION_DENIED", "message": "This action requires an admin token"}
    assert post(client, member_headers, body) == (403, denied)
    assert client.post(DUPLICATES, content=b"not json", headers=member_headers).status_code == 403
    assert client.get(REVIEW, headers=member_headers).json() == denied
    r = client.post(f"{REVIEW}/x", json={"action": "discard"}, headers=member_headers)
    assert (r.status_code, r.json()) == (403, denied)
    assert client.post(DUPLICATES, json=body).status_code == 401
    assert client.get(REVIEW).status_code == 401


def test_review_queue_over_http(
    client: TestClient, admin_headers: dict[str, str], pair: list[str]
) -> None:
    recs = {
        "records": [
            {"first_name": "Jon", "last_name": "Smith"},
            {"first_name": "Ada", "last_name": "Byron"},
        ]
    }
    r = client.post(
        "/api/v1/import/contacts?on_possible_duplicate=hold", json=recs, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["created"], answer["duplicates"], answer["failed"], answer["held"]) == (
        1,
        0,
        0,
        1,
    )
    review_id = answer["results"][0]["review_id"]
    page = client.get(
        f"{REVIEW}?object_name=contacts&state=pending&limit=10", headers=admin_headers
    ).json()
    assert [e["id"] for e in page["data"]] == [review_id] and page["nextCursor"] is None
    assert {c["id"] for c in page["data"][0]["candidates"]} == set(pair[:2])
    r = client.post(
        f"{REVIEW}/{review_id}",
        json={"action": "merge", "target_id": pair[0]},
        headers=admin_headers,
    )
    assert r.status_code == 200 and r.json()["state"] == "merged"
    r = client.post(f"{REVIEW}/{review_id}", json={"action": "create"}, headers=admin_headers)
    assert r.status_code == 409
    bad = [
        (
            "/api/v1/import/contacts?on_possible_duplicate=ask",
            recs,
            "on_possible_duplicate must be one of: create, hold",
        ),
        (
            f"{REVIEW}/{review_id}",
            {"action": "keep"},
            "action: Input should be 'create', 'merge' or 'discard'",
        ),
    ]
    for url, body, message in bad:
        r = client.post(url, json=body, headers=admin_headers)
        assert (r.status_code, r.json()["message"]) == (400, message)
    for query, message in [
        ("?limit=x", "limit must be a whole number between 1 and 100"),
        ("?state=done", "state must be one of: pending, created, merged, discarded, all"),
        ("?object_name=nope", "Object 'nope' does not exist"),
    ]:
        r = client.get(REVIEW + query, headers=admin_headers)
        assert (r.status_code, r.json()["message"]) == (400, message)
    r = client.post(f"{REVIEW}/nope", json={"action": "discard"}, headers=admin_headers)
    assert (r.status_code, r.json()["message"]) == (404, "No review entry with id 'nope'")


def test_openapi_documents_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    op = paths["/api/v1/duplicates"]["post"]
    assert {"200", "400", "401", "403", "404", "409"} <= set(op["responses"])
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert "$defs" not in str(schema) and "detect" in str(schema)
    assert "get" in paths["/api/v1/duplicates/review"]
    assert "post" in paths["/api/v1/duplicates/review/{review_id}"]
    params = paths["/api/v1/import/{object_name}"]["post"]["parameters"]
    assert "on_possible_duplicate" in {p["name"] for p in params}
