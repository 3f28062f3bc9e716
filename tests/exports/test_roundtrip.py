"""What export writes imports back unchanged (spec §8, issue 4).

Records with awkward text are imported into one workspace, exported (JSON, and CSV
read back with ``open_rows``, which removes the formula-protection quote), imported
into an empty workspace and exported again: both exports must be the same bytes,
ids, timestamps and company names included.
"""

from __future__ import annotations

import io
import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from kasar.db.engine import make_engine, snapshot_transaction, write_transaction
from kasar.exports import writers
from kasar.exports.service import parse_request
from kasar.imports.files import open_rows
from kasar.imports.service import ImportOptions, import_records
from kasar.schema.repository import load_workspace
from support import database_copy

AWKWARD = [
    "=1+1", "+x", "-x", "@x", "\tx", "'=x", "''=x", "'-5", "-5", "+33612345678", "'", "a,b",
    'say "hi"', "two\nlines", "cr\rin\r\nside", "Zoë 😀", "\\.", "Émile-Zoé", "1e5", " padded ",
    "x\u2028y", "\x01ctl", "=", "-", "@", "'''", "\"", ",", "Ünïcödé «»", "tab\tinside",
]  # fmt: skip

texts = st.one_of(
    st.sampled_from(AWKWARD),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
    st.builds(
        lambda head, tail: head + tail,
        st.sampled_from(AWKWARD),
        st.text(
            st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6
        ),
    ),
)
contacts = st.lists(
    st.fixed_dictionaries({
        "first_name": texts, "last_name": texts, "job_title": texts, "city": texts,
        "notes": texts, "company_name": texts,
        "status": st.sampled_from([None, "lead", "qualified", "customer"]),
        "phone": st.booleans(),
    }),
    min_size=1,
    max_size=6,
)  # fmt: skip


def as_records(drawn: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every record gets its own email and phone (so that none is a duplicate of
    another) and a first name that survives trimming (it is required)."""
    out = []
    for i, rec in enumerate(drawn):
        first = rec["first_name"] if rec["first_name"].strip() else f"X{i}"
        phone = f"06 12 34 56 {i:02d}" if rec["phone"] else None
        out.append({**rec, "first_name": first, "email": f"user{i}@example.com", "phone": phone})
    return out


def load(engine: Engine, records: list[dict[str, Any]]) -> int:
    with write_transaction(engine) as conn:
        result = import_records(conn, load_workspace(conn), "contacts", records, ImportOptions())
    assert result.duplicates == 0, result.to_api()
    return result.created


def restore(engine: Engine, records: list[dict[str, Any]]) -> None:
    """Import an export: every record must come back, none failed nor a duplicate."""
    with write_transaction(engine) as conn:
        result = import_records(conn, load_workspace(conn), "contacts", records, ImportOptions())
    assert (result.created, result.failed, result.duplicates) == (len(records), 0, 0), result.errors


def export(engine: Engine, fmt: str) -> bytes:
    with snapshot_transaction(engine) as conn:
        ws = load_workspace(conn)
        req = parse_request(ws, "contacts", default_limit=None)
        return b"".join(writers.WRITERS[fmt](conn, ws, req))


def csv_records(body: bytes) -> list[dict[str, Any]]:
    source = open_rows(io.BytesIO(body), format="csv")
    return [record for _, record in source.rows]


def check_round_trip(source: Engine, via_json: Engine, via_csv: Engine) -> None:
    json_body, csv_body = export(source, "json"), export(source, "csv")
    records = json.loads(json_body)["records"]
    restore(via_json, records)
    restore(via_csv, csv_records(csv_body))
    assert export(via_json, "json") == json_body
    assert export(via_csv, "csv") == csv_body
    assert export(via_csv, "json") == json_body
    assert export(via_json, "csv") == csv_body


@pytest.fixture
def fresh_sqlite(sqlite_template: Path, tmp_path: Path) -> Iterator[Any]:
    """A factory of empty workspaces: copies of the migrated template file."""
    engines: list[Engine] = []

    def make() -> Engine:
        path = tmp_path / f"{uuid.uuid4().hex}.db"
        shutil.copyfile(sqlite_template, path)
        engines.append(make_engine(f"sqlite:///{path}"))
        return engines[-1]

    yield make
    for engine in engines:
        engine.dispose()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=contacts)
def test_export_then_import_gives_the_same_records(
    fresh_sqlite: Any, drawn: list[dict[str, Any]]
) -> None:
    source = fresh_sqlite()
    load(source, as_records(drawn))
    check_round_trip(source, fresh_sqlite(), fresh_sqlite())


@pytest.fixture
def empty_workspace(
    engine: Engine, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Any]:
    """More empty workspaces on the database of ``engine``."""
    with ExitStack() as stack:

        def make() -> Engine:
            url = stack.enter_context(database_copy(request, engine.dialect.name, tmp_path))
            made = make_engine(url)
            stack.callback(made.dispose)
            return made

        yield make


def test_awkward_contacts_round_trip_on_both_databases(
    engine: Engine, empty_workspace: Any
) -> None:
    drawn = [
        {"first_name": text, "last_name": AWKWARD[-1 - i], "job_title": text, "city": text,
         "notes": text, "company_name": text, "status": "lead", "phone": None}
        for i, text in enumerate(AWKWARD)
    ]  # fmt: skip
    # A company name with nothing to link by ("=", "-") fails its record; the rest load.
    assert load(engine, as_records(drawn)) >= len(drawn) - 10
    check_round_trip(engine, empty_workspace(), empty_workspace())
