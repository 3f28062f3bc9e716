"""The export engine as a library, on SQLite and PostgreSQL (spec §8).

The fast writers let each database format the cells (``COPY`` on PostgreSQL, SQL
expressions on SQLite); these tests hold them to the plain-Python reference and to
literal outputs that both databases must produce byte for byte.
"""

from __future__ import annotations

import json
import tracemalloc
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine

from kasar.db.engine import snapshot_transaction, write_transaction
from kasar.errors import InvalidObject, ValidationFailed
from kasar.exports import writers
from kasar.exports.service import (
    ExportRequest,
    export_rows,
    parse_request,
)
from kasar.records import repository as repo
from kasar.records.filters import parse_filters
from kasar.records.validation import validate_write
from kasar.schema.repository import Workspace, load_workspace
from kasar.schema.schemas import FieldIn, ObjectIn
from kasar.schema.service import create_object

T0 = datetime(2025, 1, 2, 3, 4, 5, 600000)


def rid(n: int) -> str:
    return f"00000000-0000-7000-8000-{n:012d}"


def put(conn: Connection, ws: Workspace, object_name: str, data: dict[str, Any], n: int) -> str:
    """Store one validated record with a fixed id and creation time (n minutes after T0)."""
    obj = ws.object(object_name)
    prepared = validate_write(obj, data)
    assert not repo.resolve_relations(conn, ws, obj, [prepared])
    stamp = T0 + timedelta(minutes=n)
    system = {"id": rid(n), "created_at": stamp, "updated_at": stamp}
    repo.insert_records(conn, ws, obj, [repo.new_row(prepared.values, system)])
    return rid(n)


def put_all(engine: Engine, object_name: str, records: list[dict[str, Any]]) -> None:
    with write_transaction(engine) as conn:
        ws = load_workspace(conn)
        for n, data in enumerate(records, 1):
            put(conn, ws, object_name, data, n)


def export(engine: Engine, fmt: str, object_name: str = "contacts", **params: Any) -> bytes:
    with snapshot_transaction(engine) as conn:
        ws = load_workspace(conn)
        req = parse_request(ws, object_name, **params)
        return b"".join(writers.WRITERS[fmt](conn, ws, req))


def reference(engine: Engine, fmt: str, object_name: str = "contacts", **params: Any) -> bytes:
    with snapshot_transaction(engine) as conn:
        ws = load_workspace(conn)
        req = parse_request(ws, object_name, **params)
        if fmt == "csv":
            return b"".join(writers.portable_csv(conn, ws, req))
        return b"".join(writers.portable_json(conn, ws, req, ndjson=True))


def records_of(body: bytes) -> list[dict[str, Any]]:
    doc = json.loads(body)
    assert list(doc) == ["format", "records", "total"] and doc["format"] == "json"
    return doc["records"]  # type: ignore[no-any-return]


DEALS = ObjectIn(
    name="deals",
    fields=[
        FieldIn(name="name", type="TEXT", required=True),
        FieldIn(name="seats", type="INTEGER"),
        FieldIn(name="score", type="NUMBER"),
        FieldIn(name="amount", type="CURRENCY"),
        FieldIn(name="won", type="BOOLEAN"),
        FieldIn(name="close_date", type="DATE"),
        FieldIn(name="signed_at", type="DATETIME"),
        FieldIn(name="stage", type="SELECT", options=["new", "won"]),
        FieldIn(name="tags", type="MULTI_SELECT", options=["red", "blue", "=sum"]),
        FieldIn(name="email", type="EMAILS"),
        FieldIn(name="phone", type="PHONES"),
        FieldIn(name="site", type="URL"),
        FieldIn(name="address", type="ADDRESS"),
        FieldIn(name="company", type="RELATION", relation="companies"),
        FieldIn(name="notes", type="TEXTAREA"),
    ],
)

DEAL_ROWS: list[dict[str, Any]] = [
    {
        "name": "Plain",
        "seats": 12,
        "score": 1500,
        "amount": "1200.50",
        "won": True,
        "close_date": "2025-03-01",
        "signed_at": "2025-03-01T10:00:00+02:00",
        "stage": "Won",
        "tags": ["red", "blue"],
        "email": ["a@example.com", "b@example.com"],
        "phone": "06 12 34 56 78",
        "site": "https://example.com",
        "address": {"street": "1 rue de la Paix", "city": "Paris"},
        "company_name": "Acme",
        "notes": 'line 1\nline 2, "quoted"',
    },
    {
        "name": '=HYPERLINK("x")',
        "seats": -3,
        "score": 0.1,
        "amount": -5,
        "won": False,
        "tags": "=sum",
        "company_name": "-Minus Corp",
        "notes": "'=already",
    },
    {"name": "@who", "score": 1e-05, "notes": "+33612345678"},
]

DEALS_CSV = (
    "id,name,seats,score,amount,won,close_date,signed_at,stage,tags,email,phone,site,address,"
    "company_name,notes,created_at,updated_at\r\n"
    f"{rid(3)},'@who,,1e-05,,,,,,,,,,,,+33612345678,"
    "2025-01-02T03:07:05.600000Z,2025-01-02T03:07:05.600000Z\r\n"
    f'{rid(2)},"\'=HYPERLINK(""x"")",-3,0.1,-5,false,,,,\'=sum,,,,,\'-Minus Corp,\'\'=already,'
    "2025-01-02T03:06:05.600000Z,2025-01-02T03:06:05.600000Z\r\n"
    f"{rid(1)},Plain,12,1500,1200.5,true,2025-03-01,2025-03-01T08:00:00.000000Z,won,"
    '"red, blue",a@example.com,+33612345678,https://example.com,'
    '"{""street"": ""1 rue de la Paix"", ""city"": ""Paris""}",Acme,'
    '"line 1\nline 2, ""quoted""",'
    "2025-01-02T03:05:05.600000Z,2025-01-02T03:05:05.600000Z\r\n"
)


@pytest.fixture
def deals(engine: Engine) -> Engine:
    with write_transaction(engine) as conn:
        create_object(conn, load_workspace(conn), DEALS)
    put_all(engine, "deals", DEAL_ROWS)
    return engine


def test_csv_of_every_field_type_is_pinned(deals: Engine) -> None:
    assert export(deals, "csv", "deals").decode() == DEALS_CSV
    assert reference(deals, "csv", "deals").decode() == DEALS_CSV


def test_json_of_every_field_type_is_pinned(deals: Engine) -> None:
    body = export(deals, "json", "deals", fields="name,seats,score,amount,won,tags,address")
    assert body == (
        b'{"format":"json","records":['
        b'{"name":"@who","seats":null,"score":1e-05,"amount":null,"won":null,"tags":null,'
        b'"address":null},'
        b'{"name":"=HYPERLINK(\\"x\\")","seats":-3,"score":0.1,"amount":-5,"won":false,'
        b'"tags":["=sum"],"address":null},'
        b'{"name":"Plain","seats":12,"score":1500,"amount":1200.5,"won":true,'
        b'"tags":["red", "blue"],"address":{"street": "1 rue de la Paix", "city": "Paris"}}'
        b'],"total":3}'
    )
    full = records_of(export(deals, "json", "deals"))
    assert full[2]["signed_at"] == "2025-03-01T08:00:00.000000Z"
    assert full[2]["close_date"] == "2025-03-01" and full[2]["company_name"] == "Acme"
    assert full[2]["email"] == "a@example.com" and full[2]["phone"] == "+33612345678"
    assert full[0]["created_at"] == "2025-01-02T03:07:05.600000Z"
    lines = [json.loads(line) for line in export(deals, "ndjson", "deals").splitlines()]
    assert lines == full
    assert lines == [json.loads(line) for line in reference(deals, "json", "deals").splitlines()]


AWKWARD = [
    "=1+1", "+x", "-x", "@SUM(A1)", "\tx", "-5", "+33612345678", "-0.5", "'=x", "''=x", "'",
    "a,b", 'say "hi"', "two\nlines", "cr\rhere", "Zoë 😀", "   ", "\\.", "-", "+1e5", "x\u2028y",
    "\x01ctl", "Ünïcödé", "12", "=", "'-5",
]  # fmt: skip


def company(text: str) -> str | None:
    """A company name to link by, when the text has something to match on."""
    return text if any(c.isalnum() for c in text) else None


@pytest.mark.parametrize("fields", [None, "last_name", "last_name,notes"])
def test_fast_writers_match_the_reference_on_awkward_text(
    engine: Engine, fields: str | None
) -> None:
    put_all(engine, "contacts", [
        {"first_name": f"P{i}", "last_name": text, "notes": text, "company_name": company(text)}
        for i, text in enumerate(AWKWARD)
    ] + [{"first_name": "Empty"}])  # fmt: skip
    csv_body = export(engine, "csv", fields=fields, limit="100")
    assert csv_body == reference(engine, "csv", fields=fields, limit="100")
    lines = [
        json.loads(line)
        for line in reference(engine, "json", fields=fields, limit="100").splitlines()
    ]
    assert records_of(export(engine, "json", fields=fields, limit="100")) == lines
    assert [
        json.loads(line) for line in export(engine, "ndjson", fields=fields).splitlines()
    ] == lines


def test_formula_protection_and_quoting(engine: Engine) -> None:
    put_all(
        engine, "contacts", [{"first_name": f"P{i}", "last_name": t} for i, t in enumerate(AWKWARD)]
    )
    body = export(
        engine, "csv", fields="last_name", sort_by="first_name", sort_dir="asc", limit="100"
    )
    # Sorted by first name P0, P1, P10.. P19, P2, P20..: code point order.
    order = sorted(range(len(AWKWARD)), key=lambda i: f"P{i}")
    cells = {
        "=1+1": "'=1+1", "+x": "'+x", "-x": "'-x", "@SUM(A1)": "'@SUM(A1)", "\tx": "x",
        "-5": "-5", "+33612345678": "+33612345678", "-0.5": "-0.5", "'=x": "''=x",
        "''=x": "'''=x", "'": "'", "a,b": '"a,b"', 'say "hi"': '"say ""hi"""',
        "two\nlines": '"two\nlines"', "cr\rhere": '"cr\rhere"', "Zoë 😀": "Zoë 😀", "   ": '""',
        "\\.": "\\.", "-": "'-", "+1e5": "'+1e5", "x\u2028y": "x\u2028y", "\x01ctl": "\x01ctl",
        "Ünïcödé": "Ünïcödé", "12": "12", "=": "'=", "'-5": "''-5",
    }  # fmt: skip
    expected = "last_name\r\n" + "".join(cells[AWKWARD[i]] + "\r\n" for i in order)
    assert body.decode() == expected


def test_default_keys_and_relation_names(engine: Engine) -> None:
    put_all(engine, "contacts", [{"first_name": "Alice", "company_name": "Acme"}])
    (record,) = records_of(export(engine, "json"))
    assert list(record) == [
        "id", "first_name", "last_name", "email", "phone", "linkedin", "job_title", "status",
        "company_name", "city", "notes", "created_at", "updated_at",
    ]  # fmt: skip
    assert record["company_name"] == "Acme" and record["id"] == rid(1)
    assert records_of(export(engine, "json", "opportunities", fields="name")) == []


def test_pipelines_and_relations_export_as_names(engine: Engine) -> None:
    put_all(engine, "contacts", [{"first_name": "Ann", "last_name": "Lee"}, {"first_name": "=Bo"}])
    with write_transaction(engine) as conn:
        ws = load_workspace(conn)
        for n, contact in ((3, rid(1)), (4, rid(2))):
            put(conn, ws, "opportunities", {
                "name": f"Deal {n}", "amount": 10, "pipeline_step": "proposal",
                "company_name": "Acme", "contact_id": contact,
            }, n)  # fmt: skip
    (deal, _) = records_of(export(engine, "json", "opportunities"))
    assert list(deal) == [
        "id", "name", "amount", "status", "close_date", "company_name", "contact_name",
        "pipeline", "pipeline_step", "created_at", "updated_at",
    ]  # fmt: skip
    assert deal["pipeline"] == "Sales Pipeline" and deal["pipeline_step"] == "Proposal"
    assert deal["contact_name"] == "=Bo" and deal["amount"] == 10
    fields = "name,company_name,contact_name,pipeline_step"
    body = export(engine, "csv", "opportunities", fields=fields, sort_dir="asc")
    assert body == (
        b"name,company_name,contact_name,pipeline_step\r\n"
        b"Deal 3,Acme,Ann Lee,Proposal\r\nDeal 4,Acme,'=Bo,Proposal\r\n"
    )
    assert body == reference(engine, "csv", "opportunities", fields=fields, sort_dir="asc")


CONTACTS = [
    {"first_name": "Alice", "last_name": "Martin", "status": "qualified", "city": "Paris"},
    {"first_name": "Bob", "last_name": "Dupont", "status": "lead", "city": "Lyon"},
    {"first_name": "Chloé", "last_name": "Martin", "status": "qualified", "city": "Lyon"},
    {"first_name": "Dan", "last_name": "Zed", "status": "customer"},
    {"first_name": "Eve", "status": "qualified", "city": "Paris"},
]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"filter_field": "status", "filter_operator": "eq", "filter_value": "QUALIFIED"}, "ECA"),
        ({"filters": '{"type":"OR","conditions":[{"field":"city","operator":"eq","value":"lyon"},'
                     '{"field":"last_name","operator":"eq","value":"zed"}]}'}, "DCB"),
        ({"filters": '{"operator":"and","conditions":[{"field":"status","operator":"eq","value":'
                     '"qualified"},{"type":"or","conditions":[{"field":"city","operator":"eq",'
                     '"value":"Paris"},{"field":"first_name","operator":"starts_with","value":"ch"}'
                     "]}]}"}, "ECA"),
        ({"filter_field": "city", "filter_operator": "is_null"}, "D"),
        ({"filter_field": "first_name", "filter_operator": "in", "filter_value": "bob,EVE"}, "EB"),
        ({"filter_field": "last_name", "filter_operator": "contains", "filter_value": "%"}, ""),
        ({"filter_field": "last_name", "filter_operator": "ends_with", "filter_value": "TIN"},
         "CA"),
        ({"filter_field": "created_at", "filter_operator": "gte",
          "filter_value": "2025-01-02T03:08:00Z"}, "ED"),
    ],
)  # fmt: skip
def test_filters_simple_and_nested(engine: Engine, params: dict[str, str], expected: str) -> None:
    put_all(engine, "contacts", CONTACTS)
    names = [r["first_name"][0] for r in records_of(export(engine, "json", **params))]
    assert "".join(names) == expected
    # The CSV path binds the filter values its own way (COPY on PostgreSQL).
    body = export(engine, "csv", fields="first_name", **params)
    assert "".join(line[:1] for line in body.decode().split("\r\n")[1:-1]) == expected
    assert body == reference(engine, "csv", fields="first_name", **params)


def test_limit_cuts_the_list_but_total_counts_every_match(engine: Engine) -> None:
    put_all(engine, "contacts", CONTACTS)
    doc = json.loads(export(engine, "json", limit="2"))
    assert [r["first_name"] for r in doc["records"]] == ["Eve", "Dan"] and doc["total"] == 5
    doc = json.loads(
        export(
            engine,
            "json",
            limit=1,
            filters='{"type":"or","conditions":[{"field":"city","operator":"eq","value":"Lyon"}]}',
        )
    )
    assert len(doc["records"]) == 1 and doc["total"] == 2
    assert export(engine, "csv", limit="2", fields="first_name") == b"first_name\r\nEve\r\nDan\r\n"


def test_ties_are_broken_by_id_and_empty_values_sort_last(engine: Engine) -> None:
    put_all(engine, "contacts", CONTACTS)
    # Lyon: B and C, Paris: A and E (ids grow with creation), no city: D, always last.
    for direction, expected in (("asc", "BCAED"), ("desc", "EACBD")):
        body = export(engine, "json", sort_by="city", sort_dir=direction, fields="first_name")
        assert "".join(r["first_name"][0] for r in records_of(body)) == expected


def test_sort_by_text_is_by_code_point_on_both_databases(engine: Engine) -> None:
    put_all(engine, "contacts", [{"first_name": n} for n in ["b", "B", "é", "a", "Z", "_x"]])
    body = export(engine, "csv", fields="first_name", sort_by="first_name", sort_dir="asc")
    assert body.decode().split("\r\n")[1:-1] == ["B", "Z", "_x", "a", "b", "é"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fields": "first_name,nope"}, "Unknown field 'nope' for object 'contacts'"),
        ({"sort_by": "nope"}, "Unknown sort field 'nope' for object 'contacts'"),
        ({"sort_dir": "up"}, "sort_dir must be 'asc' or 'desc'"),
        ({"limit": "0"}, "limit must be an integer between 1 and 10000"),
        ({"limit": 10001}, "limit must be an integer between 1 and 10000"),
        ({"limit": "1e3"}, "limit must be an integer between 1 and 10000"),
        ({"filter_field": "status", "filter_operator": "like", "filter_value": "x"},
         "Unknown filter operator 'like'"),
    ],
)  # fmt: skip
def test_parse_request_rejects_bad_parameters(
    engine: Engine, params: dict[str, Any], message: str
) -> None:
    with snapshot_transaction(engine) as conn:
        ws = load_workspace(conn)
        with pytest.raises(ValidationFailed) as err:
            parse_request(ws, "contacts", **params)
        assert err.value.message == message
        with pytest.raises(InvalidObject):
            parse_request(ws, "nope", **params)


def test_a_bad_filter_value_fails_before_the_first_chunk(engine: Engine) -> None:
    with snapshot_transaction(engine) as conn:
        ws = load_workspace(conn)
        group = parse_filters("created_at", "gte", "not a date", None)
        req = ExportRequest("contacts", ["id"], group)
        for write in writers.WRITERS.values():
            with pytest.raises(ValidationFailed, match="created_at"):
                next(write(conn, ws, req))


def test_no_limit_exports_everything_and_export_rows_is_typed(engine: Engine) -> None:
    put_all(engine, "contacts", CONTACTS)
    with snapshot_transaction(engine) as conn:
        ws = load_workspace(conn)
        req = parse_request(ws, "contacts", fields="first_name,created_at", default_limit=None)
        assert req.limit is None
        rows = list(export_rows(conn, ws, req))
    assert len(rows) == 5 and rows[0] == {
        "first_name": "Eve", "created_at": "2025-01-02T03:09:05.600000Z",
    }  # fmt: skip


def test_closing_the_stream_early_releases_the_connection(engine: Engine) -> None:
    fill(engine, 3000)
    for fmt in ("csv", "json", "ndjson"):

        def chunks(fmt: str = fmt) -> Any:
            with snapshot_transaction(engine) as conn:
                ws = load_workspace(conn)
                yield from writers.WRITERS[fmt](
                    conn, ws, parse_request(ws, "contacts", limit="5000")
                )

        stream = chunks()
        assert next(stream)
        assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]
        stream.close()
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert export(engine, "json", limit="1")  # the connection went back in a usable state


def fill(engine: Engine, count: int) -> None:
    """``count`` contacts, written in one transaction straight through the repository."""
    with write_transaction(engine) as conn:
        ws = load_workspace(conn)
        obj = ws.object("contacts")
        template = validate_write(obj, {
            "first_name": "Émilie", "last_name": 'O"Neil, Jr', "email": "x@example.com",
            "phone": "+33612345678", "job_title": "=Engineer", "status": "lead", "city": "Lyon",
            "notes": "some notes\nover two lines",
        }).values  # fmt: skip
        rows = [repo.new_row({**template, "first_name": f"Émilie {i}"}) for i in range(count)]
        repo.insert_records(conn, ws, obj, rows)


def peak_memory(engine: Engine, fmt: str, limit: int) -> int:
    with snapshot_transaction(engine) as conn:
        ws = load_workspace(conn)
        req = parse_request(ws, "contacts", limit=str(limit))
        tracemalloc.start()
        try:
            size = 0
            for chunk in writers.WRITERS[fmt](conn, ws, req):
                size += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert size > limit * 100
    return peak


def test_memory_does_not_grow_with_the_number_of_rows(engine: Engine) -> None:
    fill(engine, 10_000)
    for fmt in ("csv", "json", "ndjson"):
        peak_100 = peak_memory(engine, fmt, 100)
        peak_10k = peak_memory(engine, fmt, 10_000)
        # 10,000 rows are ~3 MB of output; holding them would show far above this bound.
        assert peak_10k < 2 * peak_100 + 256 * 1024, (fmt, peak_100, peak_10k)
