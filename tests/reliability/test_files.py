"""Files (issue 8): what import jobs make of awkward files. Each file gives the
right rows, or one clear error (at upload, or as the job's error) and nothing
imported. Encodings, delimiters, line endings, quoting, ragged rows, empty and
header-only files, repeated and unknown headers, JSON and NDJSON oddities."""

from __future__ import annotations

import codecs
import io
import json
from dataclasses import dataclass, field
from typing import Any

import openpyxl
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete

from kasar.db import tables
from kasar.db.engine import write_transaction
from kasar.imports.files import open_rows
from kasar.schema.repository import load_workspace
from reliability.checks import assert_error, integrity_problems
from support import run_jobs

JOBS = "/api/v1/import-jobs"
Row = tuple[str | None, str | None, str | None, str | None]  # first, last, email, notes

PEOPLE = "first_name,last_name,email\nÉloïse,Durand,eloise@x.io\nZoë,Ångström,zoe@x.io\n"
EXPECTED: list[Row] = [
    ("Éloïse", "Durand", "eloise@x.io", None),
    ("Zoë", "Ångström", "zoe@x.io", None),
]


@dataclass
class Case:
    name: str
    content: bytes
    rows: list[Row] | None = None  # the records the file makes
    error: str | None = None  # or: a piece of the one error message
    at_upload: bool = False  # the error comes at upload (400), not from the job
    options: dict[str, Any] = field(default_factory=dict)
    filename: str = "people.csv"


def xlsx(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


ENCODINGS = [
    Case("utf-8", PEOPLE.encode(), EXPECTED),
    Case("utf-8 with BOM", codecs.BOM_UTF8 + PEOPLE.encode(), EXPECTED),
    Case("utf-16 (LE, BOM)", PEOPLE.encode("utf-16"), EXPECTED),
    Case("utf-16-be with BOM", codecs.BOM_UTF16_BE + PEOPLE.encode("utf-16-be"), EXPECTED),
    Case("utf-16-le without BOM", PEOPLE.encode("utf-16-le"), EXPECTED),
    Case("latin-1, declared", PEOPLE.encode("latin-1"), EXPECTED, options={"encoding": "latin-1"}),
    Case(
        "cp1252, declared",
        b"first_name,last_name\n\x80uro,Dupr\xe9\n",
        [("€uro", "Dupré", None, None)],
        options={"encoding": "cp1252"},
    ),
    # A problem in the first 64 KiB is found at upload; a later one by the job's
    # first pass, before anything is written.
    Case(
        "latin-1, undeclared",
        PEOPLE.encode("latin-1"),
        error="Line 2: the file is not valid UTF-8",
        at_upload=True,
    ),
    Case(
        "invalid byte on line 3",
        b"first_name,last_name\nAda,Lovelace\nBad\xff\xfe,Byte\nCy,Last\n",
        error="Line 3: the file is not valid UTF-8 (byte 0xff at column 4)",
        at_upload=True,
    ),
    Case(
        "invalid byte on line 5002",
        b"first_name,last_name\n" + b"Ada,Lovelace\n" * 6000 + b"Bad\xff,Byte\nCy,Last\n",
        error="Line 6002: the file is not valid UTF-8 (byte 0xff at column 4)",
    ),
    Case(
        "truncated UTF-8 at the end",
        b"first_name,last_name\n" + b"Ada,Lovelace\n" * 6000 + b"Zo\xc3",
        error="Line 6002: the file is not valid UTF-8",
    ),
    Case(
        "unknown encoding",
        PEOPLE.encode(),
        error="encoding",
        at_upload=True,
        options={"encoding": "klingon-8"},
    ),
]

SHAPES = [
    *[
        Case(f"delimiter {d!r}", PEOPLE.replace(",", d).encode(), EXPECTED)
        for d in (";", "\t", "|")
    ],
    Case(
        "delimiter declared",
        PEOPLE.replace(",", ";").encode(),
        EXPECTED,
        options={"delimiter": ";"},
    ),
    Case(
        "tab declared as 'tab'",
        PEOPLE.replace(",", "\t").encode(),
        EXPECTED,
        options={"delimiter": "tab"},
    ),
    Case("CRLF", PEOPLE.replace("\n", "\r\n").encode(), EXPECTED),
    Case("CR only", PEOPLE.replace("\n", "\r").encode(), EXPECTED),
    Case("no final newline", PEOPLE.rstrip("\n").encode(), EXPECTED),
    Case(
        "mixed endings and blank lines",
        b"first_name,last_name,email\r\n\r\nZo\xc3\xab,\xc3\x85ngstr\xc3\xb6m,zoe@x.io\r"
        b"\n\n\xc3\x89lo\xc3\xafse,Durand,eloise@x.io\n\n",
        EXPECTED,
    ),
    Case(
        "embedded newlines and quotes",
        b'first_name,last_name,notes\r\n"Ada","Love, ""the"" lace","line 1\r\nline 2\nline 3"\r\n'
        b'Bob,"B""ob",""\r\n',
        [
            ("Ada", 'Love, "the" lace', None, "line 1\r\nline 2\nline 3"),
            ("Bob", 'B"ob', None, None),
        ],
    ),
    Case(
        "short rows are filled with empty cells",
        b"first_name,last_name,email\nAda\nBob,Martin\n",
        [("Ada", None, None, None), ("Bob", "Martin", None, None)],
    ),
    Case(
        "a long row is an error naming its line",
        b"first_name,last_name\nAda,Lovelace\nBob,Martin,extra\nCy,Last\n",
        error="Line 3: 3 cells but the header has 2 columns",
    ),
    Case(
        "an unclosed quote is an error",
        b'first_name,last_name\nAda,"Love\nlace\n',
        error="malformed CSV",
    ),
    Case(
        "spreadsheet-protected cells lose their one quote",
        b"first_name,last_name,notes\nAda,'=1+1,''-x\n",
        [("Ada", "=1+1", None, "'-x")],
    ),
    Case("header only", b"first_name,last_name,email\r\n", []),
    Case("empty file", b"", error="empty", at_upload=True),
    Case("blank lines only", b"\n\r\n  \n", error="empty", at_upload=True),
    Case(
        "repeated header",
        b"first_name,Email,email\nAda,a@x.io,b@x.io\n",
        error="repeats column names",
        at_upload=True,
    ),
    Case(
        "empty header name",
        b"first_name,,email\nAda,x,a@x.io\n",
        error="no name for column 2",
        at_upload=True,
    ),
    Case(
        "two columns for one field",
        b"First Name,first_name\nAda,Ada\n",
        error="both map to field 'first_name'",
        at_upload=True,
    ),
    Case(
        "unknown headers are ignored",
        b"first_name,shoe_size,Last-Name\nAda,42,Lovelace\n",
        [("Ada", "Lovelace", None, None)],
    ),
    Case(
        "only unknown headers",
        b"shoe,size\n1,2\n",
        error="None of the file's columns ('shoe', 'size') is a field",
    ),
    Case(
        "mapping a column that is not there",
        PEOPLE.encode(),
        error="not in the file",
        at_upload=True,
        options={"mapping": {"Nom": "last_name"}},
    ),
]

OTHER_FORMATS = [
    Case(
        "JSON array",
        json.dumps([{"first_name": "Ada", "last_name": "Lovelace"}]).encode(),
        [("Ada", "Lovelace", None, None)],
        filename="p.json",
    ),
    Case(
        "JSON records object",
        json.dumps({"records": [{"first_name": "Ada", "email": "ADA@x.io"}]}).encode(),
        [("Ada", None, "ADA@x.io", None)],
        filename="p.json",
    ),
    Case(
        "NDJSON with CRLF and blank lines",
        b'{"first_name": "Ada"}\r\n\r\n{"first_name": "Bob", "notes": "a\\nb"}\r\n',
        [("Ada", None, None, None), ("Bob", None, None, "a\nb")],
        filename="p.ndjson",
    ),
    Case("empty JSON array", b"[]", [], filename="p.json"),
    Case(
        "broken NDJSON line",
        b'{"first_name": "Ada"}\n{"first_name": \n{"first_name": "Cy"}\n',
        error="Line 2: invalid JSON",
        filename="p.ndjson",
    ),
    Case(
        "JSON record that is not an object",
        b'[{"first_name": "Ada"}, 42]',
        error="Record 2 is not a JSON object",
        filename="p.json",
    ),
    Case(
        "deeply nested JSON",
        b'[{"first_name": "Ada", "notes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]",
        error="Invalid JSON: a value nested too deep at line 1",
        at_upload=True,
        filename="p.json",
    ),
    Case(
        "deeply nested JSON, past the first rows",
        b"["
        + b'{"first_name": "Ada"},' * 5000
        + b'{"notes": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}]",
        error="Invalid JSON: a value nested too deep at line 1",
        filename="p.json",
    ),
    Case(
        "deeply nested NDJSON",
        b'{"first_name": "Ada"}\n{"notes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
        error="Line 2: invalid JSON (a value nested too deep)",
        filename="p.ndjson",
    ),
    Case(
        "JSON with a 5000-digit number",
        b'[{"first_name": "Ada"}, {"first_name": "Bob", "notes": ' + b"9" * 5000 + b"}]",
        error="Invalid JSON: a number too long",
        filename="p.json",
    ),
    Case(
        "NDJSON with a 5000-digit number",
        b'{"first_name": "Ada"}\n{"first_name": "Bob", "notes": ' + b"9" * 5000 + b"}\n",
        error="Line 2: invalid JSON (a number too long)",
        filename="p.ndjson",
    ),
    Case(
        "JSON with a lone surrogate",
        b'[{"first_name": "Ada\\ud800"}]',
        error="Record 1 holds an invalid \\u escape (a lone surrogate)",
        at_upload=True,
        filename="p.json",
    ),
    Case(
        "NDJSON with a lone surrogate in a key, line 3",
        b'{"first_name": "Ada"}\n{"first_name": "Bob"}\n{"first_name": "Cy", "\\udfff": 1}\n',
        error="Record 3 holds an invalid \\u escape (a lone surrogate) (line 3)",
        filename="p.ndjson",
    ),
    Case(
        "JSON with an emoji written as a surrogate pair",
        b'[{"first_name": "Ada \\ud83d\\ude00"}]',
        [("Ada \U0001f600", None, None, None)],
        filename="p.json",
    ),
    Case(
        "XLSX",
        xlsx([["First Name", "Last Name", "Email"], ["Ada", "Lovelace", "ada@x.io"], [None, None]]),
        [("Ada", "Lovelace", "ada@x.io", None)],
        filename="p.xlsx",
    ),
    Case("XLSX header only", xlsx([["first_name"]]), [], filename="p.xlsx"),
    Case(
        "not really XLSX",
        b"PK\x03\x04garbage",
        error="not a readable XLSX workbook",
        at_upload=True,
        filename="p.xlsx",
    ),
]


def in_order(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: [x or "" for x in r])


def contacts(engine: Engine) -> list[Row]:
    with write_transaction(engine) as conn:
        table = load_workspace(conn).table("contacts")
        got = conn.execute(table.select()).mappings()
        return in_order([(r["first_name"], r["last_name"], r["email"], r["notes"]) for r in got])


def wipe(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        conn.execute(delete(load_workspace(conn).table("contacts")))
        conn.execute(delete(tables.match_keys))


def run_case(api: TestClient, engine: Engine, headers: dict[str, str], case: Case) -> None:
    wipe(engine)
    r = api.post(
        JOBS,
        headers=headers,
        files={"file": (case.filename, case.content, "application/octet-stream")},
        data={"options": json.dumps({"object": "contacts", **case.options})},
    )
    if case.at_upload:
        body = assert_error(r, 400, "VALIDATION_ERROR")
        assert case.error is not None and case.error in body["message"], (case.name, body)
        assert contacts(engine) == []
        return
    assert r.status_code == 202, (case.name, r.text)
    run_jobs(engine)
    job = api.get(f"{JOBS}/{r.json()['id']}", headers=headers).json()
    if case.error is not None:
        assert job["state"] == "failed", (case.name, job)
        assert job["error"] and case.error in job["error"], (case.name, job["error"])
        assert "Internal error" not in job["error"], (case.name, job["error"])
        assert "Nothing was imported" in job["error"], (case.name, job["error"])
        assert contacts(engine) == [], case.name
        return
    assert job["state"] == "completed", (case.name, job)
    assert case.rows is not None
    assert job["counters"]["created"] == len(case.rows), (case.name, job)
    assert contacts(engine) == in_order(case.rows), case.name


def test_encodings(api: TestClient, engine: Engine, admin_headers: dict[str, str]) -> None:
    for case in ENCODINGS:
        run_case(api, engine, admin_headers, case)
    assert not integrity_problems(engine)


def test_delimiters_line_endings_quotes_and_headers(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    for case in SHAPES:
        run_case(api, engine, admin_headers, case)
    assert not integrity_problems(engine)


def test_json_ndjson_and_xlsx_files(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    for case in OTHER_FORMATS:
        run_case(api, engine, admin_headers, case)
    assert not integrity_problems(engine)


def test_the_library_reader_agrees() -> None:
    """``open_rows``, which the CLI uses, reads the same rows as the jobs (no database)."""
    for case in ENCODINGS + SHAPES:
        if case.error is not None or case.options.get("mapping"):
            continue
        source = open_rows(
            io.BytesIO(case.content),
            filename=case.filename,
            encoding=case.options.get("encoding"),
            delimiter=case.options.get("delimiter"),
        )
        rows = [r for _, r in source.rows]
        assert len(rows) == len(case.rows or []), case.name
