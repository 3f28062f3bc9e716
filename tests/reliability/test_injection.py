"""Injection (issue 8): SQL in every place a client names a column or gives a
value, LIKE wildcards, spreadsheet formulas in CSV exports, and writes to
read-only fields. The same assertions run on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import csv
import io
import itertools
import json
import logging
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from kasar.db.engine import read_transaction, write_transaction
from kasar.imports.files import open_rows
from kasar.schema.repository import load_workspace
from reliability.checks import assert_error, integrity_problems, table_counts

RECORDS = "/api/v1/records/contacts"
EXPORT = "/api/v1/export/contacts"
HOSTILE_NAMES = [
    "created_at; DROP TABLE obj_contacts; --",
    "first_name desc",
    "first_name) --",
    "(select token_hash from kasar_tokens)",  # echoed lowercase: not a SQL leak
    '"first_name"',
    "obj_contacts.first_name",
    "first_name' OR '1'='1",
    "*",
    "id\x00",
    "1",
    "FIRST_NAME",
    "first_name ",  # trimmed: a real key
]
HOSTILE_VALUES = [
    "' OR '1'='1",
    "x'); DROP TABLE obj_contacts; --",
    "1 OR 1=1",
    '" OR ""="',
    "\\'; select pg_sleep(5); --",
    "%' --",
    "Robert'); DROP TABLE kasar_tokens;--",
]


def seed(api: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    people = [
        {
            "first_name": "Alice",
            "last_name": "Martin",
            "email": "alice@example.com",
            "city": "Paris",
        },
        {"first_name": "Bob", "last_name": "Dupont", "email": "bob@example.com", "city": "Lyon"},
        {"first_name": "Robert'); DROP TABLE kasar_tokens;--", "last_name": "Tables"},
        {
            "first_name": "' OR '1'='1",
            "last_name": "Quote",
            "city": "x'); DROP TABLE obj_contacts; --",
        },
    ]
    r = api.post("/api/v1/import/contacts", headers=headers, json={"records": people})
    assert r.status_code == 200 and r.json()["created"] == len(people), r.text
    return [api.get(f"{RECORDS}/{x['id']}", headers=headers).json() for x in r.json()["results"]]


def names(response: Any, key: str = "data") -> list[str]:
    assert response.status_code == 200, response.text
    body = response.json()
    return sorted(r["first_name"] for r in body[key if key in body else "records"])


def test_sql_in_sort_by_fields_and_filter_fields_is_a_400(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    seed(api, admin_headers)
    before = table_counts(engine)
    for path in (RECORDS, EXPORT):
        for name in HOSTILE_NAMES:
            trimmed_key = name.strip() == "first_name"
            attempts = [
                {"sort_by": name},
                {"fields": f"id,{name}"},
                {"filter_field": name, "filter_operator": "eq", "filter_value": "x"},
                {
                    "filters": json.dumps(
                        {
                            "operator": "and",
                            "conditions": [{"field": name, "operator": "eq", "value": "x"}],
                        }
                    )
                },
            ]
            for params in attempts:
                r = api.get(path, headers=admin_headers, params=params)
                if trimmed_key and "filters" not in params and "filter_field" not in params:
                    assert r.status_code == 200, (params, r.text)
                    continue
                assert_error(r, 400, "VALIDATION_ERROR")
        for direction in ("asc; DROP TABLE obj_contacts", "desc, id", "ASC NULLS FIRST", "1"):
            r = api.get(path, headers=admin_headers, params={"sort_dir": direction})
            assert_error(r, 400, "VALIDATION_ERROR")
        for operator in ("eq; --", "= 'x' OR 1=1 --", "like", "~", "regexp"):
            params = {
                "filter_field": "first_name",
                "filter_operator": operator,
                "filter_value": "x",
            }
            assert_error(
                api.get(path, headers=admin_headers, params=params), 400, "VALIDATION_ERROR"
            )
        for fmt in ("csv; DROP", "json' --"):
            if path == EXPORT:
                r = api.get(path, headers=admin_headers, params={"format": fmt})
                assert_error(r, 400, "VALIDATION_ERROR")
    assert table_counts(engine) == before
    assert names(api.get(RECORDS, headers=admin_headers)) == sorted(
        ["Alice", "Bob", "Robert'); DROP TABLE kasar_tokens;--", "' OR '1'='1"]
    )
    assert api.get("/api/v1/me", headers=admin_headers).status_code == 200  # tokens table intact


def test_sql_in_filter_values_matches_literally(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    seed(api, admin_headers)
    before = table_counts(engine)
    for path in (RECORDS, EXPORT):
        check_hostile_values(api, admin_headers, path)
    assert table_counts(engine) == before


def check_hostile_values(api: TestClient, admin_headers: dict[str, str], path: str) -> None:
    for value in HOSTILE_VALUES:
        expected = sorted(
            n for n in ("Robert'); DROP TABLE kasar_tokens;--", "' OR '1'='1") if n == value
        )
        for op in ("eq", "contains", "starts_with", "in"):
            r = api.get(
                path,
                headers=admin_headers,
                params={"filter_field": "first_name", "filter_operator": op, "filter_value": value},
            )
            got = names(r)
            if op == "eq" or (op == "in" and "," not in value):
                assert got == expected, (op, value, got)
            else:
                assert all(value.lower() in g.lower() for g in got), (op, value, got)
        r = api.get(
            path,
            headers=admin_headers,
            params={"filter_field": "city", "filter_operator": "neq", "filter_value": value},
        )
        assert len(names(r)) == 4 - (value == "x'); DROP TABLE obj_contacts; --")
    r = api.get(
        path,
        headers=admin_headers,
        params={
            "filter_field": "city",
            "filter_operator": "eq",
            "filter_value": "x'); DROP TABLE obj_contacts; --",
        },
    )
    assert names(r) == ["' OR '1'='1"]
    for field, value in (("created_at", "2024-01-01' OR '1'='1"), ("id", 5)):
        params = {
            "filters": json.dumps(
                {
                    "operator": "and",
                    "conditions": [{"field": field, "operator": "gt", "value": value}],
                }
            )
        }
        assert_error(api.get(path, headers=admin_headers, params=params), 400, "VALIDATION_ERROR")
    params = {"filter_field": "employees", "filter_operator": "eq", "filter_value": "1 OR 1=1"}
    r = api.get(path.replace("contacts", "companies"), headers=admin_headers, params=params)
    assert_error(r, 400, "VALIDATION_ERROR")


def test_record_ids_and_object_names_in_paths(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    people = seed(api, admin_headers)
    before = table_counts(engine)
    hostile_ids = [
        "' OR '1'='1",
        "1; DROP TABLE obj_contacts",
        "%",
        "_",
        "*",
        people[0]["id"] + "' OR '1'='1",
        people[0]["id"].upper(),
        people[0]["id"] + " ",
        "x" * 5000,
    ]
    for rid in hostile_ids:
        url = f"{RECORDS}/{rid}"
        assert_error(api.get(url, headers=admin_headers), 404, "NOT_FOUND")
        assert_error(
            api.patch(url, headers=admin_headers, json={"city": "Hacked"}), 404, "NOT_FOUND"
        )
        assert_error(api.delete(url, headers=admin_headers), 404, "NOT_FOUND")
        assert_error(api.get(f"/api/v1/import-jobs/{rid}", headers=admin_headers), 404, "NOT_FOUND")
        merge = {
            "action": "merge",
            "object_name": "contacts",
            "master_id": people[0]["id"],
            "duplicate_ids": [rid],
        }
        r = api.post("/api/v1/duplicates", headers=admin_headers, json=merge)
        assert r.status_code in (400, 404), r.text
    for obj in ("contacts; DROP TABLE obj_contacts", "contacts'--", "obj_contacts", "kasar_tokens"):
        assert_error(
            api.get(f"/api/v1/records/{obj}", headers=admin_headers), 400, "INVALID_OBJECT"
        )
        assert_error(api.get(f"/api/v1/export/{obj}", headers=admin_headers), 400, "INVALID_OBJECT")
        r = api.post(f"/api/v1/import/{obj}", headers=admin_headers, json={"records": [{"a": 1}]})
        assert_error(r, 400, "INVALID_OBJECT")
    assert table_counts(engine) == before
    for person in people:
        again = api.get(f"{RECORDS}/{person['id']}", headers=admin_headers).json()
        assert again == person


LIKE_VALUES = ["%", "_", "\\", "%_", "\\%", "0%", "a_", "_b", "\\\\", "%%", "h\\", "\\s"]
LIKE_NAMES = [
    "100%",
    "100 percent",
    "a_b",
    "axb",
    "back\\slash",
    "backslash",
    "50%_off\\",
    "50x_off",
    "%",
    "_",
    "\\",
    "\\%",
]


def reference(op: str, value: str) -> list[str]:
    """What each LIKE-like operator means, in plain Python."""
    v = value.lower()
    tests = {
        "contains": lambda n: v in n.lower(),
        "not_contains": lambda n: v not in n.lower(),
        "starts_with": lambda n: n.lower().startswith(v),
        "ends_with": lambda n: n.lower().endswith(v),
    }
    return sorted(n for n in LIKE_NAMES if tests[op](n))


def test_like_wildcards_are_literal(api: TestClient, admin_headers: dict[str, str]) -> None:
    records = [{"first_name": n, "last_name": f"L{i}"} for i, n in enumerate(LIKE_NAMES)]
    r = api.post("/api/v1/import/contacts", headers=admin_headers, json={"records": records})
    assert r.json()["created"] == len(LIKE_NAMES), r.text
    ops = ("contains", "not_contains", "starts_with", "ends_with")
    for value, op in itertools.product(LIKE_VALUES, ops):
        # the simple form on the list, the FilterGroup form on the export
        params = {"filter_field": "first_name", "filter_operator": op, "filter_value": value}
        got = names(api.get(RECORDS, headers=admin_headers, params={**params, "limit": 100}))
        assert got == reference(op, value), (op, value)
        doc = {
            "operator": "and",
            "conditions": [{"field": "first_name", "operator": op, "value": value}],
        }
        got = names(api.get(EXPORT, headers=admin_headers, params={"filters": json.dumps(doc)}))
        assert got == reference(op, value), (op, value)


FORMULAS = {
    # stored text -> the CSV cell a spreadsheet must not run
    "=1+1": "'=1+1",
    "+cmd": "'+cmd",
    "-2+3": "'-2+3",
    "@SUM(A1:A9)": "'@SUM(A1:A9)",
    '=HYPERLINK("http://evil.example","x")': '\'=HYPERLINK("http://evil.example","x")',
    "\t=1+1": "'\t=1+1",
    "\r=1+1": "'\r=1+1",
    "'=1+1": "''=1+1",
    "-5": "-5",
    "-0.5": "-0.5",
    "+33612345678": "+33612345678",
    "42": "42",
    "plain": "plain",
    "-": "'-",
    "+1-2": "'+1-2",
}


def test_csv_exports_defuse_formulas(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    texts = list(FORMULAS)
    records = [{"first_name": f"F{i:02d}", "job_title": t} for i, t in enumerate(texts)]
    records.append({"first_name": "Phone", "phone": "+33 6 12 34 56 78", "company_name": "=evil()"})
    r = api.post("/api/v1/import/contacts", headers=admin_headers, json={"records": records})
    assert r.json()["created"] == len(records), r.text
    # Text is trimmed on write, so leading tabs and CRs are put in place directly:
    # the writer must defuse whatever is stored.
    with write_transaction(engine) as conn:
        table = load_workspace(conn).table("contacts")
        for i, text in enumerate(texts):
            if text[0] in "\t\r":
                conn.execute(
                    update(table).where(table.c.first_name == f"F{i:02d}").values(job_title=text)
                )
    params = {
        "format": "csv",
        "fields": "first_name,job_title,phone,company_name",
        "sort_by": "first_name",
        "sort_dir": "asc",
    }
    r = api.get(EXPORT, headers=admin_headers, params=params)
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8"), newline="")))
    assert rows[0] == ["first_name", "job_title", "phone", "company_name"]
    cells = {row[0]: row[1] for row in rows[1:]}
    for i, text in enumerate(texts):
        assert cells[f"F{i:02d}"] == FORMULAS[text], text
    phone_row = next(row for row in rows[1:] if row[0] == "Phone")
    assert phone_row[2:] == ["+33612345678", "'=evil()"]
    assert b"\r\nF00,'=1+1,,\r\n" in r.content  # pinned bytes, the same on both databases
    # JSON is never altered
    r = api.get(EXPORT, headers=admin_headers, params={**params, "format": "json"})
    by_name = {x["first_name"]: x["job_title"] for x in r.json()["records"]}
    assert [by_name[f"F{i:02d}"] for i in range(len(texts))] == texts
    # Kasar's own readers undo exactly the protection: the CSV imports back unchanged.
    r = api.get(EXPORT, headers=admin_headers, params=params)
    source = open_rows(io.BytesIO(r.content), filename="contacts.csv")
    back = {row["first_name"]: row["job_title"] for _, row in source.rows}
    assert [back[f"F{i:02d}"] for i in range(len(texts))] == texts


def test_read_only_and_unknown_fields_cannot_be_written_through_records(
    api: TestClient, engine: Engine, admin_headers: dict[str, str], member_headers: dict[str, str]
) -> None:
    record = api.post(RECORDS, headers=admin_headers, json={"first_name": "Mass"}).json()
    before = table_counts(engine)
    values: list[Any] = ["2000-01-01T00:00:00Z", record["id"], None]
    fields = ["id", "created_at", "updated_at", "email_all", "ID", " id", "_id", "company"]
    for field, headers, value in itertools.product(fields, (admin_headers, member_headers), values):
        r = api.post(RECORDS, headers=headers, json={"first_name": "Sneaky", field: value})
        body = assert_error(r, 400, "VALIDATION_ERROR")
        assert repr(field.strip()) in body["message"] or field in body["message"]
        r = api.patch(
            f"{RECORDS}/{record['id']}", headers=headers, json={"city": "Moved", field: value}
        )
        assert_error(r, 400, "VALIDATION_ERROR")
    assert table_counts(engine) == before
    after = api.get(f"{RECORDS}/{record['id']}", headers=admin_headers).json()
    assert after["city"] is None and after["id"] == record["id"]
    assert (after["created_at"], after["updated_at"]) == (
        record["created_at"],
        record["updated_at"],
    )
    with read_transaction(engine) as conn:
        table = load_workspace(conn).table("contacts")
        stored = conn.execute(table.select().where(table.c.id == record["id"])).mappings().one()
    assert stored["first_name"] == "Mass"
    assert not integrity_problems(engine)


def cursor(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


def test_tampered_cursors_and_lone_surrogates_are_400s(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    """A cursor is the server's, but it comes back from the client: any value in it,
    of any type, is a 400, the same on both databases. JSON escapes that decode to a
    lone surrogate (text no database can store) are refused wherever JSON comes in."""
    seed(api, admin_headers)
    r = api.get(RECORDS, headers=admin_headers, params={"limit": 1, "sort_by": "first_name"})
    assert r.json()["nextCursor"]
    base = {"s": "first_name", "d": "desc", "i": "00000000-0000-7000-8000-000000000000"}
    values: list[Any] = [123, 1.5, True, {"a": 1}, "a\x00b", "\ud800", 2**70]
    for sort_by, tag, bad in (
        ("first_name", "v", values),
        ("created_at", "dt", ["2020-13-45", 5, "abc"]),
        ("created_at", "v", ["2020-01-01T00:00:00", 5]),
        ("first_name", "d", ["2020-01-01"]),
    ):
        for value in bad:
            doc = {**base, "s": sort_by, "v": [tag, value]}
            params = {"limit": 2, "sort_by": sort_by, "cursor": cursor(doc)}
            r = api.get(RECORDS, headers=admin_headers, params=params)
            assert_error(r, 400, "VALIDATION_ERROR")
    for sort_by, value in (("employees", "12"), ("employees", 2**70), ("name", 7)):
        doc = {**base, "s": sort_by, "v": ["v", value]}
        params = {"limit": 2, "sort_by": sort_by, "cursor": cursor(doc)}
        r = api.get("/api/v1/records/companies", headers=admin_headers, params=params)
        assert_error(r, 400, "VALIDATION_ERROR")
    for path in ("/api/v1/import-jobs", "/api/v1/export-jobs", "/api/v1/duplicates/review"):
        for raw in ('["2020-01-01T00:00:00", "\\ud800"]', '["x", 1]', "[1, 2, 3]"):
            token = base64.urlsafe_b64encode(raw.encode()).decode()
            r = api.get(path, headers=admin_headers, params={"cursor": token})
            assert_error(r, 400, "VALIDATION_ERROR")
    lone = '{"operator": "and", "conditions": [{"field": "%s", "operator": "%s", "value": "%s"}]}'
    for doc in (
        lone % ("first_name", "eq", "\\ud800"),
        lone % ("\\udfff", "eq", "x"),
        lone % ("first_name", "in", "a\\udc00"),
        lone % ("first_name", "\\ud800", "x"),
    ):
        for path in (RECORDS, EXPORT):
            r = api.get(path, headers=admin_headers, params={"filters": doc})
            assert_error(r, 400, "VALIDATION_ERROR")
        r = api.post(
            "/api/v1/export-jobs",
            headers=admin_headers,
            json={"object": "contacts", "filters": doc},
        )
        assert_error(r, 400, "VALIDATION_ERROR")
    for options in ('{"object": "\\ud800"}', '{"object": "contacts", "mapping": {"\\ud800": "x"}}'):
        r = api.post(
            "/api/v1/import-jobs",
            headers=admin_headers,
            files={"file": ("a.csv", b"first_name\nA\n", "text/csv")},
            data={"options": options},
        )
        assert_error(r, 400, "VALIDATION_ERROR")
    assert table_counts(engine)["kasar_jobs"] == 0


def test_request_ids_cannot_inject_into_logs(
    api: TestClient, admin_headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    hostile = ("x y", "a" * 65, "<script>", "id\tfake")
    for rid in (*hostile, "ok-id_1.2"):
        r = api.get("/api/v1/me", headers={**admin_headers, "X-Request-ID": rid})
        expected = rid if rid == "ok-id_1.2" else None
        assert r.headers["x-request-id"] == expected or (
            expected is None and re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
        )
    # The id reaches the log through each record's ``request_id`` (the log format).
    logged = {getattr(rec, "request_id", None) for rec in caplog.records}
    assert "ok-id_1.2" in logged
    assert not logged & set(hostile)
    assert all(re.fullmatch(r"[0-9a-f]{32}|ok-id_1\.2|-", str(i)) for i in logged - {None})


def test_a_hostile_relation_value_fails_its_record_alone(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    """Relation names and ids reach lookups (and company creation) before the
    record is written: a NUL or an overlong name must fail that record only, with
    the same answer on both databases, and create nothing."""
    too_long = "C" * (65_535 + 1)
    for obj, bad in (
        ("contacts", {"company_name": "Acme\x00Corp"}),
        ("contacts", {"company_name": too_long}),
        ("contacts", {"company_id": "0190\x00"}),
        ("opportunities", {"company_name": "Evil\x00"}),
        ("opportunities", {"contact_name": "x\x00y"}),
        ("opportunities", {"contact_id": "' OR '1'='1"}),
    ):
        before = table_counts(engine)
        name = "first_name" if obj == "contacts" else "name"
        records = [{name: "Good one"}, {name: "Bad one", **bad}]
        r = api.post(f"/api/v1/import/{obj}", headers=admin_headers, json={"records": records})
        assert r.status_code == 200, (bad, r.text)
        body = r.json()
        assert (body["created"], body["failed"]) == (1, 1), (bad, body)
        assert body["errors"][0]["index"] == 1 and next(iter(bad)) in body["errors"][0]["message"]
        after = table_counts(engine)
        assert after[obj] == before[obj] + 1 and after["companies"] == before["companies"], bad
        one = api.post(f"/api/v1/records/{obj}", headers=admin_headers, json=records[1])
        assert_error(one, 400, "VALIDATION_ERROR")
    assert not integrity_problems(engine)
