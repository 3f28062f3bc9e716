"""Limits (issue 8): every cap answers its 4xx at once, writes nothing, and leaves
the server healthy. Body size (declared and chunked), batch size, field length,
filter depth and size, JSON nesting and huge numbers, ``limit`` out of range, and
a member's 50 MB import refused before its body is read."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kasar.settings import get_settings
from reliability.checks import assert_error, bearer, integrity_problems, table_counts
from reliability.live import LiveServer

IMPORT = "/api/v1/import/contacts"
MB = 1024 * 1024


def body_of_size(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes (padded with trailing spaces)."""
    head = b'{"records": [{"first_name": "Ada", "notes": "'
    tail = b'"}]}'
    filler = max(0, min(size - len(head) - len(tail), 60_000))
    body = head + b"n" * filler + tail
    return body + b" " * (size - len(body))


def routes_with_a_body(api: TestClient, headers: dict[str, str]) -> list[tuple[str, str]]:
    """Every route that reads a JSON body, with real ids where its path needs one."""
    contact = api.post("/api/v1/records/contacts", headers=headers, json={"first_name": "Cap"})
    deal = api.post("/api/v1/records/opportunities", headers=headers, json={"name": "Cap deal"})
    assert contact.status_code == deal.status_code == 201
    cid, oid = contact.json()["id"], deal.json()["id"]
    return [
        ("POST", "/api/v1/records/contacts"),
        ("PATCH", f"/api/v1/records/contacts/{cid}"),
        ("POST", IMPORT),
        ("POST", "/api/v1/import-jobs"),
        ("POST", "/api/v1/duplicates"),
        ("POST", "/api/v1/duplicates/review/00000000-0000-0000-0000-000000000000"),
        ("POST", "/api/v1/schema/objects"),
        ("POST", "/api/v1/schema/contacts/fields"),
        ("PUT", f"/api/v1/pipelines/opportunities/{oid}/move"),
    ]


def assert_healthy(api: Any, headers: dict[str, str]) -> None:
    """The server still answers, and a normal import still works."""
    assert api.get("/api/v1/health").status_code == 200
    email = f"healthy-{time.monotonic_ns()}@example.com"
    r = api.post(IMPORT, headers=headers, json={"records": [{"first_name": "Ok", "email": email}]})
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1


def test_the_body_cap_is_exact_on_every_route_that_reads_a_body(
    api: TestClient, engine: Engine, admin_headers: dict[str, str], small_cap: int
) -> None:
    routes = routes_with_a_body(api, admin_headers)
    json_headers = {**admin_headers, "Content-Type": "application/json"}
    for method, path in routes:
        before = table_counts(engine)
        over = api.request(method, path, headers=json_headers, content=body_of_size(small_cap + 1))
        assert_error(over, 413, "PAYLOAD_TOO_LARGE")
        assert table_counts(engine) == before, path
        at_cap = api.request(method, path, headers=json_headers, content=body_of_size(small_cap))
        assert at_cap.status_code != 413, (path, at_cap.text)  # read (and maybe imported)
    before = table_counts(engine)
    for method, path in routes:
        over = api.request(method, path, headers=json_headers, content=body_of_size(10 * MB))
        assert_error(over, 413, "PAYLOAD_TOO_LARGE")
    assert table_counts(engine) == before
    assert_healthy(api, admin_headers)


def chunks(total: int, size: int = 16 * 1024) -> Iterator[bytes]:
    """``total`` bytes of a JSON body, sent without a Content-Length."""
    body = body_of_size(total)
    for start in range(0, total, size):
        yield body[start : start + size]


def test_a_chunked_body_over_the_cap_is_refused_through_the_app(
    api: TestClient, engine: Engine, admin_headers: dict[str, str], small_cap: int
) -> None:
    routes = routes_with_a_body(api, admin_headers)
    before = table_counts(engine)
    json_headers = {**admin_headers, "Content-Type": "application/json"}
    for method, path in routes:
        r = api.request(method, path, headers=json_headers, content=chunks(small_cap + 1))
        assert "content-length" not in {k.lower() for k in r.request.headers}
        assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    assert table_counts(engine) == before
    r = api.post(IMPORT, headers=json_headers, content=chunks(small_cap))
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1


@pytest.fixture
def capped_server(db_url: str, engine: Engine) -> Iterator[LiveServer]:
    server = LiveServer(db_url, env={"KASAR_MAX_BODY_BYTES": str(MB)}).start()
    try:
        yield server
    finally:
        server.close()


def raw_exchange(url: str, head: bytes, parts: Iterator[bytes], timeout: float) -> tuple[int, Any]:
    """Send ``head`` and as many ``parts`` as the server takes, then read its answer.

    The caller never finishes the body: an answer proves the server did not wait
    for it. Returns the status and the JSON body."""
    split = urlsplit(url)
    with socket.create_connection((split.hostname, split.port), timeout=timeout) as sock:
        sock.sendall(head)
        for part in parts:
            sock.sendall(part)
        data = b""
        while b"\r\n\r\n" not in data:
            got = sock.recv(65536)
            assert got, f"connection closed before an answer: {data!r}"
            data += got
        header, _, rest = data.partition(b"\r\n\r\n")
        status = int(header.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in header.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(rest) < length:
            got = sock.recv(65536)
            assert got, "connection closed in the middle of the answer"
            rest += got
    return status, json.loads(rest[:length])


def request_head(url: str, token: str, extra: str) -> bytes:
    host = urlsplit(url).netloc
    return (
        f"POST {IMPORT} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


def test_a_real_server_refuses_big_bodies_without_reading_them(
    capped_server: LiveServer, engine: Engine, make_token: Any
) -> None:
    """Through a real uvicorn process (1 MiB cap): a chunked body over the cap, and
    a member's 50 MB import, each refused at once, with nothing written."""
    chunked_body_over_the_cap(capped_server, engine, make_token("admin"))
    member_with_50_mb(capped_server, engine, make_token("member"), make_token("admin"))


def chunked_body_over_the_cap(server: LiveServer, engine: Engine, token: str) -> None:
    before = table_counts(engine)
    with httpx.Client(base_url=server.url, headers=bearer(token), timeout=30) as http:
        r = http.post(IMPORT, content=chunks(8 * MB, 64 * 1024))
        assert "content-length" not in {k.lower() for k in r.request.headers}
        assert_error(r, 413, "PAYLOAD_TOO_LARGE")
        # A chunked stream that never ends: the 413 comes once the cap is passed.
        started = time.monotonic()
        head = request_head(server.url, token, "Transfer-Encoding: chunked\r\n")
        parts = (b"%x\r\n%s\r\n" % (len(c), c) for c in chunks(MB + 64 * 1024, 64 * 1024))
        status, body = raw_exchange(server.url, head, parts, timeout=10)
        assert (status, body["code"]) == (413, "PAYLOAD_TOO_LARGE")
        assert time.monotonic() - started < 5
        # The other limits answer through a real server as through the app.
        answers = [
            http.post(IMPORT, json={"records": [contact(i) for i in range(51)]}),
            http.get("/api/v1/records/contacts", params={"limit": "0"}),
            http.get("/api/v1/export/contacts", params={"limit": "10001"}),
            http.post(IMPORT, content=nested(300), headers={"Content-Type": "application/json"}),
        ]
        for answer in answers:
            assert_error(answer, 400, "VALIDATION_ERROR")
        assert table_counts(engine) == before
        assert_healthy(http, bearer(token))


def member_with_50_mb(server: LiveServer, engine: Engine, member: str, admin: str) -> None:
    """A member's 50 MB import gets its 403 in well under a second: the wall time of
    that one request bounds the reading of the body (there is none)."""
    before = table_counts(engine)
    big = body_of_size(50 * MB)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        http.get("/api/v1/health")  # connect first: time only the request itself
        started = time.monotonic()
        r = http.post(
            IMPORT, headers={**bearer(member), "Content-Type": "application/json"}, content=big
        )
        elapsed = time.monotonic() - started
        assert_error(r, 403, "PERMISSION_DENIED")
        assert elapsed < 1.0, f"the 403 took {elapsed:.2f} s"
        # The same with a body that is announced but never sent past its first 64 KiB:
        # only a server that does not read it can answer.
        head = request_head(server.url, member, f"Content-Length: {50 * MB}\r\n")
        started = time.monotonic()
        status, body = raw_exchange(server.url, head, iter([big[: 64 * 1024]]), timeout=5)
        assert (status, body["code"]) == (403, "PERMISSION_DENIED")
        assert time.monotonic() - started < 1.0
        # An admin's 50 MB body is over the cap: 413, also without reading it.
        head = request_head(server.url, admin, f"Content-Length: {50 * MB}\r\n")
        status, body = raw_exchange(server.url, head, iter([big[: 64 * 1024]]), timeout=5)
        assert (status, body["code"]) == (413, "PAYLOAD_TOO_LARGE")
        assert table_counts(engine) == before
        assert_healthy(http, bearer(admin))


def contact(i: int) -> dict[str, Any]:
    return {"first_name": f"Batch{i}", "last_name": "Cap", "email": f"batch{i}@cap.io"}


def test_batch_cap(api: TestClient, engine: Engine, admin_headers: dict[str, str]) -> None:
    cap = get_settings().import_batch_max
    assert cap == 50
    before = table_counts(engine)
    for records in ([contact(i) for i in range(cap + 1)], [], [contact(0), "not a record"]):
        assert_error(
            api.post(IMPORT, headers=admin_headers, json={"records": records}),
            400,
            "VALIDATION_ERROR",
        )
    assert_error(
        api.post(
            "/api/v1/import-jobs", headers=admin_headers, json={"object": "contacts", "records": []}
        ),
        400,
        "VALIDATION_ERROR",
    )
    assert table_counts(engine) == before
    r = api.post(IMPORT, headers=admin_headers, json={"records": [contact(i) for i in range(cap)]})
    assert r.status_code == 200 and r.json()["created"] == cap


def test_field_length_cap(api: TestClient, engine: Engine, admin_headers: dict[str, str]) -> None:
    cap = get_settings().text_max_length
    too_long = "x" * (cap + 1)
    before = table_counts(engine)
    body = assert_error(
        api.post("/api/v1/records/contacts", headers=admin_headers, json={"first_name": too_long}),
        400,
        "VALIDATION_ERROR",
    )
    assert "first_name" in body["message"] and str(cap) in body["message"]
    r = api.post(IMPORT, headers=admin_headers, json={"records": [{"first_name": too_long}]})
    assert (r.status_code, r.json()["failed"], r.json()["created"]) == (200, 1, 0)
    assert table_counts(engine) == before
    # At the cap every text field is stored whole, on both databases, including the
    # ones that feed duplicate keys (names) and relations by name.
    longest = "é" * cap
    r = api.post(
        IMPORT,
        headers=admin_headers,
        json={
            "records": [
                {"first_name": longest, "last_name": longest, "company_name": longest},
                {"first_name": "Short", "last_name": "One"},
                {"first_name": longest, "last_name": longest, "email": "other@cap.io"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["duplicates"]) == (2, 1)
    saved = api.get(
        f"/api/v1/records/contacts/{r.json()['results'][0]['id']}", headers=admin_headers
    ).json()
    assert saved["first_name"] == saved["last_name"] == saved["company_name"] == longest
    patched = api.patch(
        f"/api/v1/records/contacts/{saved['id']}", headers=admin_headers, json={"notes": too_long}
    )
    assert_error(patched, 400, "VALIDATION_ERROR")
    long_url = "https://www.linkedin.com/in/" + "a" * 2000
    r = api.post(
        "/api/v1/records/companies",
        headers=admin_headers,
        json={"name": "Long Url", "linkedin": long_url, "domain": "https://" + "b" * 2000 + ".com"},
    )
    assert r.status_code == 201, r.text[:300]  # URLs up to 2,048 characters are kept
    assert not integrity_problems(engine)


def group(depth: int, width: int = 1) -> dict[str, Any]:
    """A filter ``depth`` groups deep whose innermost group holds ``width`` conditions."""
    node: dict[str, Any] = {
        "operator": "or",
        "conditions": [
            {"field": "first_name", "operator": "eq", "value": f"n{i}"} for i in range(width)
        ],
    }
    for _ in range(depth - 1):
        node = {"operator": "and", "conditions": [node]}
    return node


def test_filter_depth_and_size_caps(api: TestClient, admin_headers: dict[str, str]) -> None:
    for path in ("/api/v1/records/contacts", "/api/v1/export/contacts"):
        check_filter_caps(api, admin_headers, path)


def check_filter_caps(api: TestClient, admin_headers: dict[str, str], path: str) -> None:
    settings = get_settings()
    depth, size = settings.filter_max_depth, settings.filter_max_conditions
    assert (depth, size) == (5, 50)
    ok = [group(depth), group(1, size), group(depth, size)]
    for doc in ok:
        r = api.get(path, headers=admin_headers, params={"filters": json.dumps(doc)})
        assert r.status_code == 200, r.text
    for doc, word in (
        (group(depth + 1), "deep"),
        (group(1, size + 1), "many"),
        (group(200), "deep"),
    ):
        r = api.get(path, headers=admin_headers, params={"filters": json.dumps(doc)})
        assert word in assert_error(r, 400, "VALIDATION_ERROR")["message"]
    # Depth counts groups, however the conditions are spread over them.
    spread = {"operator": "or", "conditions": [group(2, 25), group(2, 25), group(1, 1)]}
    r = api.get(path, headers=admin_headers, params={"filters": json.dumps(spread)})
    assert "many" in assert_error(r, 400, "VALIDATION_ERROR")["message"]
    for raw in ("[" * 5000 + "]" * 5000, '{"operator":"and","conditions":' * 1000):
        assert_error(
            api.get(path, headers=admin_headers, params={"filters": raw}), 400, "VALIDATION_ERROR"
        )


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_deeply_nested_json_is_a_400_everywhere(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    """Nesting deep enough to break a recursive parser (past 1024 levels for orjson)
    or serializer (past 254) is refused, whether it is the whole body or a value
    inside a record, with or without an idempotency key (whose digest serialises)."""
    routes = routes_with_a_body(api, admin_headers)
    before = table_counts(engine)
    json_headers = {**admin_headers, "Content-Type": "application/json"}
    for depth in (300, 1000, 100_000):
        check_nesting(api, routes, json_headers, depth)
    assert table_counts(engine) == before
    assert_healthy(api, admin_headers)


def check_nesting(
    api: TestClient, routes: list[tuple[str, str]], json_headers: dict[str, str], depth: int
) -> None:
    deep = nested(depth)
    bodies = [
        deep,
        f'{{"records": [{{"first_name": {deep}}}]}}',
        f'{{"object": "contacts", "records": [{{"first_name": {deep}}}]}}',
        f'{{"action": "detect", "object_name": "contacts", "fields": {deep}}}',
        f'{{"first_name": "x", "notes": {deep}}}',
    ]
    for method, path in routes:
        for body in bodies:
            for extra in ({}, {"Idempotency-Key": f"deep-{depth}"}):
                r = api.request(method, path, headers={**json_headers, **extra}, content=body)
                assert 400 <= r.status_code < 500, (path, body[:60], r.text)


def test_huge_numbers(api: TestClient, engine: Engine, admin_headers: dict[str, str]) -> None:
    """Numbers that overflow a double or a 64-bit integer, as JSON numbers in a body
    and as filter values: a 400 (or a failed record in an import), nothing stored."""
    h = {**admin_headers, "Content-Type": "application/json"}
    before = table_counts(engine)
    for raw in ("1e400", "-1e400", str(2**70), str(-(2**70)), "1" + "0" * 5000):
        for path, body in (
            ("/api/v1/records/companies", f'{{"name": "N", "employees": {raw}}}'),
            ("/api/v1/records/opportunities", f'{{"name": "N", "amount": {raw}}}'),
        ):
            assert_error(api.post(path, headers=h, content=body), 400, "VALIDATION_ERROR")
        body = f'{{"records": [{{"name": "N", "employees": {raw}}}]}}'
        r = api.post("/api/v1/import/companies", headers=h, content=body)
        if r.status_code == 200:
            assert (r.json()["failed"], r.json()["created"]) == (1, 0), r.text
        else:
            assert_error(r, 400, "VALIDATION_ERROR")
        condition = f'{{"field": "amount", "operator": "lt", "value": {raw}}}'
        for path, params in (
            (
                "/api/v1/records/companies",
                {"filter_field": "employees", "filter_operator": "gt", "filter_value": raw},
            ),
            (
                "/api/v1/records/opportunities",
                {"filters": f'{{"operator": "and", "conditions": [{condition}]}}'},
            ),
            ("/api/v1/export/companies", {"limit": raw}),
        ):
            assert_error(
                api.get(path, headers=admin_headers, params=params), 400, "VALIDATION_ERROR"
            )
    assert table_counts(engine) == before
    assert_healthy(api, admin_headers)


LIMITS = [
    # path, accepted, refused
    (
        "/api/v1/records/contacts",
        ["1", "100"],
        ["0", "101", "-1", "abc", "1e2", "1.5", "", "2" * 25],
    ),
    (
        "/api/v1/export/contacts",
        ["1", "10000", ""],
        ["0", "10001", "-1", "1e3", "1.5", "٣", "2" * 25],
    ),
    ("/api/v1/import-jobs", ["1", "100"], ["0", "101", "abc", "2" * 25]),
    ("/api/v1/duplicates/review", ["1", "100"], ["0", "101", "abc", "2" * 25]),
]


def test_limit_out_of_range(api: TestClient, admin_headers: dict[str, str]) -> None:
    for path, good, bad in LIMITS:
        check_limits(api, admin_headers, path, good, bad)
    detect = {"action": "detect", "object_name": "contacts"}
    for value in (0, 1001, 2**70, -1, 1.5):
        r = api.post("/api/v1/duplicates", headers=admin_headers, json={**detect, "limit": value})
        assert_error(r, 400, "VALIDATION_ERROR")


def check_limits(
    api: TestClient, admin_headers: dict[str, str], path: str, good: list[str], bad: list[str]
) -> None:
    for value in good:
        r = api.get(path, headers=admin_headers, params={"limit": value})
        assert r.status_code == 200, (value, r.text)
    for value in bad:
        r = api.get(path, headers=admin_headers, params={"limit": value})
        assert_error(r, 400, "VALIDATION_ERROR")


def test_every_limit_answer_is_documented(api: TestClient) -> None:
    """The OpenAPI document lists the statuses these limits answer with: 413 on every
    operation that takes a body, 429 (the per-token rate limit) and 401 on every
    operation that needs a token, 400 on every one with a query parameter or a body."""
    doc = api.get("/openapi.json").json()
    missing = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            documented = set(op["responses"])
            wanted = set()
            if path != "/api/v1/health":
                wanted |= {"401", "429"}
            if "requestBody" in op:
                wanted |= {"413", "400"}
            if any(p["in"] == "query" for p in op.get("parameters", [])):
                wanted.add("400")
            missing += [f"{method.upper()} {path}: {s}" for s in sorted(wanted - documented)]
    assert not missing, "\n".join(missing)
