"""``Idempotency-Key`` on the batch import and on import job creation, both databases;
the races run against a real uvicorn server with threads."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update

from kasar.app import create_app
from kasar.db import tables
from kasar.db.engine import read_transaction, write_transaction
from kasar.schema.repository import now_utc

BATCH = "/api/v1/import/contacts"
JOBS = "/api/v1/import-jobs"
BODY = {
    "records": [
        {"first_name": "Ada", "email": "ada@x.com"},
        {"first_name": "Bob", "email": "b@x.com"},
    ]
}


@pytest.fixture
def api(engine: Engine) -> Iterator[TestClient]:
    yield TestClient(create_app(engine), raise_server_exceptions=False)


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def count(engine: Engine, table: str) -> int:
    with read_transaction(engine) as conn:
        t = tables.jobs if table == "jobs" else tables.idempotency
        if table == "contacts":
            from kasar.schema.repository import load_workspace

            t = load_workspace(conn).table("contacts")
        return int(conn.execute(select(func.count()).select_from(t)).scalar_one())


def test_a_retry_replays_the_first_answer_without_writing(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    first = api.post(BATCH, headers=keyed(admin_headers, "k-1"), json=BODY)
    assert first.status_code == 200, first.json()
    assert "Idempotent-Replayed" not in first.headers
    again = api.post(BATCH, headers=keyed(admin_headers, "k-1"), content=json.dumps(BODY, indent=2))
    assert again.status_code == 200, again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert count(engine, "contacts") == 2


def test_the_same_key_with_another_body_or_query_is_a_conflict(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    api.post(BATCH, headers=keyed(admin_headers, "k-2"), json=BODY)
    other = {"records": [{"first_name": "Cy"}]}
    for kwargs in ({"json": other}, {"json": BODY, "params": {"dry_run": "true"}}):
        r = api.post(BATCH, headers=keyed(admin_headers, "k-2"), **kwargs)  # type: ignore[arg-type]
        assert (r.status_code, r.json()["code"]) == (409, "CONFLICT")
        assert r.json()["message"] == (
            "Idempotency-Key 'k-2' was already used with another request; "
            "use a new key for a new request"
        )
    assert count(engine, "contacts") == 2


def test_keys_are_scoped_by_user_and_object(
    api: TestClient, engine: Engine, admin_headers: dict[str, str], make_token: Any
) -> None:
    other_admin = {"Authorization": f"Bearer {make_token('admin')}"}
    api.post(BATCH, headers=keyed(admin_headers, "k-3"), json=BODY)
    r = api.post(BATCH, headers=keyed(other_admin, "k-3"), json=BODY)
    assert "Idempotent-Replayed" not in r.headers
    r = api.post("/api/v1/import/companies", headers=keyed(admin_headers, "k-3"), json=BODY)
    assert "Idempotent-Replayed" not in r.headers
    assert count(engine, "contacts") == 2  # the second admin's records were duplicates


def test_a_failed_request_leaves_no_key(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    r = api.post(BATCH, headers=keyed(admin_headers, "k-4"), json={"records": []})
    assert r.status_code == 400
    assert count(engine, "keys") == 0
    r = api.post(BATCH, headers=keyed(admin_headers, "k-4"), json=BODY)
    assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers


def test_keys_older_than_a_day_are_forgotten(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    api.post(BATCH, headers=keyed(admin_headers, "k-5"), json=BODY)
    with write_transaction(engine) as conn:
        conn.execute(update(tables.idempotency).values(created_at=now_utc() - timedelta(hours=25)))
    r = api.post(
        BATCH, headers=keyed(admin_headers, "k-5"), json={"records": [{"first_name": "Cy"}]}
    )
    assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers
    assert count(engine, "keys") == 1 and count(engine, "contacts") == 3


@pytest.mark.parametrize("key", ["", "a b", "x" * 201])
def test_a_malformed_key_is_refused(
    api: TestClient, admin_headers: dict[str, str], key: str
) -> None:
    r = api.post(BATCH, headers=keyed(admin_headers, key), json=BODY)
    assert (r.status_code, r.json()["message"]) == (
        400,
        "Idempotency-Key must be 1 to 200 visible ASCII characters",
    )


def upload(api: TestClient, headers: dict[str, str], content: bytes) -> Any:
    return api.post(
        JOBS,
        headers=headers,
        files={"file": ("c.csv", content, "text/csv")},
        data={"options": json.dumps({"object": "contacts"})},
    )


def test_a_job_upload_is_replayed_whatever_the_multipart_boundary(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    first = upload(api, keyed(admin_headers, "j-1"), b"first_name\nAda\n")
    assert first.status_code == 202
    again = upload(api, keyed(admin_headers, "j-1"), b"first_name\nAda\n")
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (202, "true")
    assert again.json()["id"] == first.json()["id"]
    other = upload(api, keyed(admin_headers, "j-1"), b"first_name\nBob\n")
    assert (other.status_code, other.json()["code"]) == (409, "CONFLICT")
    body = {"object": "contacts", "records": [{"first_name": "Cy"}]}
    records = api.post(JOBS, headers=keyed(admin_headers, "j-2"), json=body)
    assert api.post(JOBS, headers=keyed(admin_headers, "j-2"), json=body).json() == records.json()
    assert count(engine, "jobs") == 2


class Server:
    """The app on a real uvicorn server, in a thread, on a free port."""

    def __init__(self, engine: Engine) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(
            create_app(engine),
            host="127.0.0.1",
            port=self.port,
            lifespan="off",
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def race(url: str, n: int, send: Any) -> list[httpx.Response]:
    barrier = threading.Barrier(n)

    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=60) as client:
            barrier.wait()
            return send(client)  # type: ignore[no-any-return]

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_concurrent_batches_with_one_key_execute_once(
    engine: Engine, admin_headers: dict[str, str]
) -> None:
    records = {"records": [{"first_name": f"P{i}", "email": f"p{i}@x.com"} for i in range(40)]}
    with Server(engine) as url:
        answers = race(
            url, 8, lambda c: c.post(BATCH, headers=keyed(admin_headers, "race-1"), json=records)
        )
    assert [a.status_code for a in answers] == [200] * 8
    assert sum("idempotent-replayed" not in a.headers for a in answers) == 1
    assert all(a.json() == answers[0].json() for a in answers)
    assert answers[0].json()["created"] == 40
    assert count(engine, "contacts") == 40


def test_concurrent_job_creations_with_one_key_make_one_job(
    engine: Engine, admin_headers: dict[str, str]
) -> None:
    content = b"first_name\n" + b"".join(b"P%d\n" % i for i in range(5000))

    def send(client: httpx.Client) -> httpx.Response:
        return client.post(
            JOBS,
            headers=keyed(admin_headers, "race-2"),
            files={"file": ("c.csv", content, "text/csv")},
            data={"options": json.dumps({"object": "contacts"})},
        )

    with Server(engine) as url:
        answers = race(url, 6, send)
    assert [a.status_code for a in answers] == [202] * 6
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum("idempotent-replayed" not in a.headers for a in answers) == 1
    assert count(engine, "jobs") == 1
