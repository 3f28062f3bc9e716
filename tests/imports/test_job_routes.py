"""The import jobs API through the real app, on both databases. The app runs
without its lifespan here (no background worker), and each test runs the
queued jobs itself with the worker's own ``run_one``."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kasar.app import create_app
from kasar.db.engine import is_sqlite, write_transaction
from kasar.jobs import repository as jobs_repo
from support import run_jobs

JOBS = "/api/v1/import-jobs"
CSV = b"first_name,email\nAda,ada@x.com\nAda,ADA@x.com\nBob,bad-email\nCy,cy@x.com\n"


@pytest.fixture
def api(engine: Engine) -> Iterator[TestClient]:
    yield TestClient(create_app(engine), raise_server_exceptions=False)


def upload(
    api: TestClient,
    headers: dict[str, str],
    content: bytes = CSV,
    filename: str = "contacts.csv",
    **options: Any,
) -> Any:
    return api.post(
        JOBS,
        headers=headers,
        files={"file": (filename, content, "text/csv")},
        data={"options": json.dumps({"object": "contacts", **options})},
    )


def finished(api: TestClient, engine: Engine, headers: dict[str, str], job_id: str) -> Any:
    run_jobs(engine)
    return api.get(f"{JOBS}/{job_id}", headers=headers).json()


def test_an_upload_answers_202_with_the_queued_job(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    me = api.get("/api/v1/me", headers=admin_headers).json()
    r = upload(api, admin_headers, on_duplicate="update", match_on=["email"])
    assert r.status_code == 202
    job = r.json()
    assert set(job) >= {
        "id", "kind", "object", "state", "options", "counters", "rows_per_second",
        "eta_seconds", "created_by", "created_at", "started_at", "finished_at", "error",
    }  # fmt: skip
    assert (job["kind"], job["object"], job["state"]) == ("import", "contacts", "queued")
    assert job["created_by"] == me["userId"]
    assert job["counters"] == dict.fromkeys(jobs_repo.COUNTERS, 0)
    assert job["options"]["on_duplicate"] == "update"
    assert job["options"]["match_on"] == ["email"]
    assert (job["options"]["format"], job["options"]["filename"]) == ("csv", "contacts.csv")
    done = finished(api, engine, admin_headers, job["id"])
    assert done["state"] == "completed"
    assert done["counters"] == {
        "rows_read": 4, "created": 2, "updated": 0, "duplicates": 1, "failed": 1,
    }  # fmt: skip
    assert done["rows_per_second"] > 0 and done["eta_seconds"] is None


def test_the_format_is_found_by_content_whatever_the_name(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    content = b'[{"first_name": "Ada"}, {"first_name": "Bob"}]'
    job = upload(api, admin_headers, content, filename="export.csv").json()
    assert job["options"]["format"] == "json"
    assert finished(api, engine, admin_headers, job["id"])["counters"]["created"] == 2


def test_a_json_body_of_records_is_a_job_too(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    body = {"object": "contacts", "records": [{"first_name": "Ada"}, {"name": "x"}]}
    r = api.post(JOBS, headers=admin_headers, json={**body, "dry_run": True})
    assert r.status_code == 202
    done = finished(api, engine, admin_headers, r.json()["id"])
    assert done["counters"]["created"] == 1 and done["counters"]["failed"] == 1
    assert done["options"]["columns"]["unmatched"] == ["name"]
    assert api.get("/api/v1/records/contacts", headers=admin_headers).json()["total"] == 0


def test_a_member_gets_403_before_the_body_is_read(
    engine: Engine, member_headers: dict[str, str]
) -> None:
    app = create_app(engine)
    reads: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        reads.append(1)
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(k.lower().encode(), v.encode()) for k, v in member_headers.items()]
    headers += [
        (b"content-type", b"multipart/form-data; boundary=abc"),
        (b"content-length", str(10**10).encode()),
    ]
    scope = {
        "type": "http", "method": "POST", "path": JOBS, "raw_path": JOBS.encode(),
        "query_string": b"", "headers": headers, "http_version": "1.1", "scheme": "http",
        "server": ("test", 80), "client": ("test", 1), "root_path": "",
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 403
    assert json.loads(sent[1]["body"])["code"] == "PERMISSION_DENIED"
    assert reads == []


def test_without_a_token_every_route_is_401(api: TestClient) -> None:
    for method, path in [("post", JOBS), ("get", JOBS), ("get", f"{JOBS}/x/report")]:
        assert getattr(api, method)(path).status_code == 401


def test_an_unknown_object_is_invalid_object(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    r = api.post(
        JOBS,
        headers=admin_headers,
        files={"file": ("a.csv", CSV, "text/csv")},
        data={"options": json.dumps({"object": "planets", "on_duplicate": "nope"})},
    )
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_OBJECT")
    r = api.post(JOBS, headers=admin_headers, json={"object": "planets", "records": [{}]})
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_OBJECT")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"on_duplicate": "merge"}, "options.on_duplicate must be one of: skip, update, overwrite"),
        ({"dry_run": "yes"}, "options.dry_run must be true or false"),
        ({"match_on": ["mail"]},
         "options.match_on must be a list among: email, phone, linkedin, domain, name"),
        ({"mapping": {"email": "courriel"}},
         "The mapping sends column 'email' to unknown field 'courriel'"),
        ({"mapping": ["email"]}, "options.mapping must map column names to field names"),
        ({"mapping": {"nope": "email"}}, "The mapping names columns not in the file: 'nope'"),
        ({"encoding": "klingon"}, "options.encoding: unknown encoding 'klingon'"),
        ({"delimiter": ";;"}, "options.delimiter must be one character (or 'tab')"),
        ({"format": "pdf"}, "options.format must be one of: csv, xlsx, json, ndjson"),
        ({"chunk": 5}, "Unknown option 'chunk'; the options are: object, mapping, dry_run, "
                       "on_duplicate, match_on, encoding, delimiter, format"),
    ],
)  # fmt: skip
def test_bad_options_are_refused_before_a_job_exists(
    api: TestClient, admin_headers: dict[str, str], options: dict[str, Any], message: str
) -> None:
    r = upload(api, admin_headers, **options)
    assert (r.status_code, r.json()["code"], r.json()["message"]) == (
        400,
        "VALIDATION_ERROR",
        message,
    )
    assert api.get(JOBS, headers=admin_headers).json()["total"] == 0


def test_bad_requests_are_refused(api: TestClient, admin_headers: dict[str, str]) -> None:
    def post(**kwargs: Any) -> tuple[int, str]:
        r = api.post(JOBS, **{"headers": admin_headers, **kwargs})
        return r.status_code, r.json()["message"]

    file = {"file": ("a.csv", CSV, "text/csv")}
    options = {"options": json.dumps({"object": "contacts"})}
    assert post(files=file) == (400, "The upload needs an 'options' part (JSON)")
    assert post(files=file, data={"options": "{nope"}) == (
        400,
        "The 'options' part is not valid JSON",
    )
    assert post(files={"other": ("a", b"x")}, data=options) == (
        400,
        "The upload needs a 'file' part",
    )
    assert post(files={"file": ("a.csv", b"")}, data=options) == (400, "The file is empty")
    assert post(json={"object": "contacts", "records": []})[0] == 400
    assert post(json={"object": "contacts", "records": [1]}) == (
        400,
        "Record 0 must be a JSON object",
    )
    assert post(json={"records": [{}]}) == (
        400,
        "options.object is required: the object to import into",
    )
    assert post(content=b"[]", headers={**admin_headers, "content-type": "application/json"}) == (
        400,
        "The body must be a JSON object",
    )


def test_the_list_is_newest_first_and_cursor_paged(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    ids = [upload(api, admin_headers).json()["id"] for _ in range(3)]
    first = api.get(JOBS, headers=admin_headers, params={"limit": 2}).json()
    assert [j["id"] for j in first["data"]] == ids[::-1][:2]
    assert first["total"] == 3 and first["nextCursor"]
    second = api.get(
        JOBS, headers=admin_headers, params={"limit": 2, "cursor": first["nextCursor"]}
    ).json()
    assert [j["id"] for j in second["data"]] == [ids[0]] and second["nextCursor"] is None
    r = api.get(JOBS, headers=admin_headers, params={"cursor": "garbage"})
    assert r.status_code == 400
    # Well formed but with a NUL in the id: the same 400 on both databases.
    nul = base64.urlsafe_b64encode(b'["2026-01-01T00:00:00", "a\\u0000b"]').decode()
    r = api.get(JOBS, headers=admin_headers, params={"cursor": nul})
    assert r.status_code == 400 and "Invalid cursor" in r.json()["message"]


def test_an_unknown_or_export_job_is_not_found(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    with write_transaction(engine) as conn:
        export = jobs_repo.create_job(
            conn, kind="export", object_name="contacts", options={}, created_by="x"
        )
    for job_id in ("nope", export.id):
        for method, suffix in [("get", ""), ("post", "/cancel"), ("post", "/undo")]:
            r = getattr(api, method)(f"{JOBS}/{job_id}{suffix}", headers=admin_headers)
            assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")


def test_cancel_a_queued_job_then_a_finished_one(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    queued = upload(api, admin_headers).json()["id"]
    r = api.post(f"{JOBS}/{queued}/cancel", headers=admin_headers)
    assert (r.status_code, r.json()["state"]) == (200, "cancelled")
    assert api.post(f"{JOBS}/{queued}/cancel", headers=admin_headers).status_code == 200
    done = upload(api, admin_headers).json()["id"]
    run_jobs(engine)
    r = api.post(f"{JOBS}/{done}/cancel", headers=admin_headers)
    assert (r.status_code, r.json()["code"]) == (409, "CONFLICT")
    assert api.get("/api/v1/records/contacts", headers=admin_headers).json()["total"] == 2


def test_the_report_lists_every_row_not_simply_created(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    job_id = upload(api, admin_headers).json()["id"]
    run_jobs(engine)
    ada = api.get(
        "/api/v1/records/contacts", headers=admin_headers, params={"search": "ada"}
    ).json()["data"]
    ada_id = next(r["id"] for r in ada if r["first_name"] == "Ada")
    r = api.get(f"{JOBS}/{job_id}/report", headers=admin_headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text == (
        "row,outcome,record_id,duplicate_of,matched_on,error_code,message\r\n"
        f"2,duplicate,,{ada_id},email,,\r\n"
        "3,failed,,,,VALIDATION_ERROR,Field 'email' must be a valid email address\r\n"
    )
    r = api.get(f"{JOBS}/{job_id}/report", headers=admin_headers, params={"format": "json"})
    body = r.json()
    assert body["job"]["id"] == job_id
    assert body["rows"] == [
        {"row": 2, "outcome": "duplicate", "record_id": None, "duplicate_of": ada_id,
         "matched_on": ["email"], "error_code": None, "message": None},
        {"row": 3, "outcome": "failed", "record_id": None, "duplicate_of": None,
         "matched_on": [], "error_code": "VALIDATION_ERROR",
         "message": "Field 'email' must be a valid email address"},
    ]  # fmt: skip
    r = api.get(f"{JOBS}/{job_id}/report", headers=admin_headers, params={"format": "xml"})
    assert r.status_code == 400


def test_undo_over_http_then_refusals(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    job_id = upload(api, admin_headers).json()["id"]
    queued = upload(api, admin_headers, content=b"first_name\nZed\n").json()["id"]
    r = api.post(f"{JOBS}/{queued}/undo", headers=admin_headers)
    assert (r.status_code, r.json()["code"]) == (409, "CONFLICT")
    run_jobs(engine)
    r = api.post(f"{JOBS}/{job_id}/undo", headers=admin_headers)
    assert r.status_code == 200
    body = r.json()
    assert (body["deleted"], body["restored"], body["skipped"]) == (2, 0, 0)
    assert body["job"]["undone_at"] is not None
    r = api.post(f"{JOBS}/{job_id}/undo", headers=admin_headers)
    assert (r.status_code, r.json()["message"]) == (
        409,
        f"Import job '{job_id}' was already undone",
    )
    dry = upload(api, admin_headers, dry_run=True).json()["id"]
    run_jobs(engine)
    assert api.post(f"{JOBS}/{dry}/undo", headers=admin_headers).status_code == 409
    left = api.get("/api/v1/records/contacts", headers=admin_headers).json()["data"]
    assert [r["first_name"] for r in left] == ["Zed"]


def test_a_sqlite_server_runs_its_jobs_itself(
    engine: Engine, admin_headers: dict[str, str]
) -> None:
    if not is_sqlite(engine):
        pytest.skip("with PostgreSQL, `kasar worker` processes run the jobs")
    with TestClient(create_app(engine)) as api:
        job_id = upload(api, admin_headers).json()["id"]
        deadline = time.monotonic() + 30
        while api.get(f"{JOBS}/{job_id}", headers=admin_headers).json()["state"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
