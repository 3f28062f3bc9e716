"""Export jobs (spec §11) on SQLite and PostgreSQL: the handler run by the worker's
own ``run_one``, the routes through the real app (without its background worker),
and every download compared with the direct export of the same request."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import string
import threading
import tracemalloc
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, update

from kasar.app import create_app
from kasar.db import tables
from kasar.db.engine import read_transaction, snapshot_transaction, write_transaction
from kasar.exports import jobs as export_jobs
from kasar.exports import pg_copy, writers, xlsx
from kasar.exports.job_routes import accepts_gzip, parse_export_job
from kasar.exports.jobs import OUTPUT, read_output
from kasar.exports.service import parse_request
from kasar.exports.writers import WRITERS
from kasar.imports.files import open_rows
from kasar.jobs import repository as jobs_repo
from kasar.jobs import runtime
from kasar.jobs.blobs import CHUNK_BYTES, blob_size, read_blob, write_blob
from kasar.jobs.runtime import JobContext, run_one
from kasar.records import repository as repo
from kasar.records.validation import validate_write
from kasar.schema.repository import Workspace, load_workspace, now_utc
from kasar.schema.schemas import FieldIn, ObjectIn
from kasar.schema.service import create_object
from kasar.settings import get_settings
from support import job_of, run_jobs

JOBS = "/api/v1/export-jobs"
T0 = datetime(2025, 1, 2, 3, 4, 5, 600000)
LAST = ["Martin", "-Martin", 'O"Neil, Jr', "Zoë", "=SUM(A1)", "Durand"]


def rid(n: int) -> str:
    return f"00000000-0000-7000-8000-{n:012d}"


# Random letters: notes that neither the database nor zip (XLSX) can shrink much.
NOISE = "".join(random.Random(0).choices(string.ascii_letters + "  ", k=1 << 20))


def contact(i: int, notes: int) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "first_name": f"Émilie {i}",
        "last_name": LAST[i % len(LAST)],
        "email": f"c{i}@example{i % 7}.com",
        "status": ["lead", "qualified", "customer", "churned"][i % 4],
        "city": ["Paris", "Lyon", "Montréal"][i % 3],
    }
    if i % 2:
        rec["phone"] = f"+336{i:08d}"
    if i % 5 == 0 or notes:
        start = i * 7919 % (len(NOISE) - notes)
        rec["notes"] = f'Met at "Salon {i}", Lyon\nfollow up ' + NOISE[start : start + notes]
    return rec


def fill(engine: Engine, count: int, *, notes: int = 0) -> None:
    """``count`` contacts with fixed ids and creation times, three companies."""
    with write_transaction(engine) as conn:
        ws = load_workspace(conn)
        companies = ws.object("companies")
        firms = [repo.new_row({"name": f"Co {n}"}) for n in range(3)]
        repo.insert_records(conn, ws, companies, firms)
        obj = ws.object("contacts")
        rows = []
        for i in range(count):
            values = validate_write(obj, contact(i, notes)).values
            values["company_id"] = firms[i % 3]["id"] if i % 4 else None
            stamp = T0 + timedelta(seconds=i)
            rows.append(repo.new_row(values, {"id": rid(i), "created_at": stamp}))
        repo.insert_records(conn, ws, obj, rows)


def direct(engine: Engine, fmt: str, object_name: str = "contacts", **params: Any) -> bytes:
    """The export engine's own output for the same request, without a cap."""
    with snapshot_transaction(engine) as conn:
        ws = load_workspace(conn)
        req = parse_request(ws, object_name, default_limit=None, max_limit=None, **params)
        return b"".join(WRITERS[fmt](conn, ws, req))


def queue(engine: Engine, **body: Any) -> str:
    with write_transaction(engine) as conn:
        opts = parse_export_job(conn, load_workspace(conn), {"object": "contacts", **body})
        return export_jobs.create_export_job(conn, opts, created_by="tester").id


def output(engine: Engine, job_id: str) -> bytes:
    """The exported file (stored gzip-compressed), read back as the download does."""
    data = b"".join(read_output(engine, job_id))
    assert data == gzip.decompress(b"".join(read_blob(engine, job_id, OUTPUT)))
    return data


def export_now(engine: Engine, **body: Any) -> tuple[dict[str, Any], bytes]:
    job_id = queue(engine, **body)
    run_jobs(engine)
    return job_of(engine, job_id), output(engine, job_id)


@pytest.fixture
def api(engine: Engine) -> Iterator[TestClient]:
    yield TestClient(create_app(engine), raise_server_exceptions=False)


def through_http(
    api: TestClient, engine: Engine, headers: dict[str, str], body: dict[str, Any]
) -> tuple[dict[str, Any], Any]:
    r = api.post(JOBS, headers=headers, json={"object": "contacts", **body})
    assert r.status_code == 202, r.json()
    assert r.json()["state"] == "queued"
    run_jobs(engine)
    job = api.get(f"{JOBS}/{r.json()['id']}", headers=headers).json()
    return job, api.get(f"{JOBS}/{job['id']}/download", headers=headers)


@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson"])
def test_each_format_downloads_what_the_direct_export_writes(
    api: TestClient, engine: Engine, admin_headers: dict[str, str], fmt: str
) -> None:
    fill(engine, 300)
    job, r = through_http(api, engine, admin_headers, {"format": fmt})
    assert job["state"] == "completed", job["error"]
    assert (job["kind"], job["object"], job["options"]["format"]) == ("export", "contacts", fmt)
    assert job["counters"]["rows_read"] == job["total_rows"] == 300
    assert job["rows_per_second"] > 0 and job["eta_seconds"] is None
    assert r.status_code == 200
    assert r.headers["content-type"] == export_jobs.MEDIA_TYPES[fmt]
    assert r.headers["content-disposition"] == f'attachment; filename="contacts_export.{fmt}"'
    assert r.content == direct(engine, fmt)
    if fmt == "csv":
        source = open_rows(io.BytesIO(r.content), filename="x.csv")
        rows = {record["id"]: record for _, record in source.rows}
        assert len(rows) == 300 and b"'-Martin" in r.content and b"'=SUM(A1)" in r.content
        assert (rows[rid(1)]["last_name"], rows[rid(4)]["last_name"]) == ("-Martin", "=SUM(A1)")
    elif fmt == "json":
        doc = json.loads(r.content)
        assert doc["total"] == 300 and len(doc["records"]) == 300
        assert doc["records"][0]["id"] == rid(299)  # newest first by default
    else:
        lines = r.content.decode().splitlines()
        assert [json.loads(line)["id"] for line in lines] == [rid(i) for i in range(299, -1, -1)]


def test_fields_filters_sort_and_limit_are_those_of_the_direct_export(engine: Engine) -> None:
    fill(engine, 400)
    filters = {
        "operator": "or",
        "conditions": [
            {"field": "status", "operator": "eq", "value": "lead"},
            {"field": "city", "operator": "eq", "value": "Lyon"},
        ],
    }
    params = {"fields": "last_name,email,company_name,id", "sort_by": "last_name"}
    job, body = export_now(
        engine, format="csv", fields=params["fields"].split(","), filters=filters,
        sort_by="last_name", sort_dir="asc", limit=150,
    )  # fmt: skip
    expected = direct(
        engine, "csv", filters=json.dumps(filters), sort_dir="asc", limit=150, **params
    )
    assert body == expected
    assert body.startswith(b"last_name,email,company_name,id\r\n")
    assert job["counters"]["rows_read"] == job["total_rows"] == 150
    assert job["options"]["fields"] == ["last_name", "email", "company_name", "id"]
    simple, body = export_now(
        engine, format="ndjson", filter_field="city", filter_operator="eq", filter_value="Paris"
    )
    paris = direct(
        engine, "ndjson", filter_field="city", filter_operator="eq", filter_value="Paris"
    )
    assert body == paris and simple["total_rows"] == 134


def test_more_than_ten_thousand_rows_are_exported(engine: Engine) -> None:
    fill(engine, 12_000)
    job, body = export_now(engine, format="csv")
    assert job["state"] == "completed", job["error"]
    assert job["counters"]["rows_read"] == job["total_rows"] == 12_000
    assert body == direct(engine, "csv")
    assert sum(1 for _ in csv.reader(io.StringIO(body.decode()))) == 12_001
    with read_transaction(engine) as conn:  # stored compressed
        assert 0 < blob_size(conn, job["id"], OUTPUT) < len(body) / 3


def test_an_empty_export_is_a_header_or_an_empty_list(engine: Engine) -> None:
    job, body = export_now(engine, format="csv", fields=["first_name", "email"])
    assert (job["state"], body, job["total_rows"]) == ("completed", b"first_name,email\r\n", 0)
    assert export_now(engine, format="json")[1] == b'{"format":"json","records":[],"total":0}'
    assert export_now(engine, format="ndjson")[1] == b""
    book = openpyxl.load_workbook(io.BytesIO(export_now(engine, format="xlsx")[1]))
    assert [list(r) for r in book.active.values] == [[*direct_keys(engine)]]


def direct_keys(engine: Engine) -> list[str]:
    with read_transaction(engine) as conn:
        return load_workspace(conn).object("contacts").default_export_keys()


DEALS = ObjectIn(
    name="deals",
    fields=[
        FieldIn(name="name", type="TEXT", required=True),
        FieldIn(name="seats", type="INTEGER"),
        FieldIn(name="amount", type="CURRENCY"),
        FieldIn(name="won", type="BOOLEAN"),
        FieldIn(name="close_date", type="DATE"),
        FieldIn(name="signed_at", type="DATETIME"),
        FieldIn(name="tags", type="MULTI_SELECT", options=["red", "blue", "=sum"]),
        FieldIn(name="address", type="ADDRESS"),
        FieldIn(name="notes", type="TEXTAREA"),
    ],
)
DEAL_ROWS: list[dict[str, Any]] = [
    {
        "name": "Plain", "seats": 12, "amount": "1200.50", "won": True,
        "close_date": "2025-03-01", "signed_at": "2025-03-01T10:00:00+02:00",
        "tags": ["red", "blue"], "address": {"city": "Paris"}, "notes": 'a, "b"\nc',
    },
    {"name": '=HYPERLINK("x")', "seats": -3, "amount": -5, "won": False, "tags": ["=sum"]},
    {"name": "@who", "amount": 0.1, "notes": "bell\x07 +33612345678"},
    {"name": "'=quoted", "notes": "+33612345678"},
]  # fmt: skip


def put_deals(conn: Connection, ws: Workspace, count: int) -> None:
    obj = ws.object("deals")
    rows = []
    for i in range(count):
        values = validate_write(obj, DEAL_ROWS[i % len(DEAL_ROWS)]).values
        rows.append(repo.new_row(values, {"id": rid(i), "created_at": T0 + timedelta(seconds=i)}))
    repo.insert_records(conn, ws, obj, rows)


def as_csv_text(value: Any) -> str:
    """An XLSX cell as the CSV export writes the same value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat()
    return str(value)


def test_xlsx_holds_the_csv_values_typed_and_formula_protected(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        create_object(conn, load_workspace(conn), DEALS)
        put_deals(conn, load_workspace(conn), 8)
    job_id = queue(engine, object="deals", format="xlsx")
    run_jobs(engine)
    assert job_of(engine, job_id)["counters"]["rows_read"] == 8
    book = openpyxl.load_workbook(io.BytesIO(output(engine, job_id)))
    assert book.sheetnames == ["deals"]
    cells = [list(r) for r in book.active.values]
    text = [[as_csv_text(v) for v in row] for row in cells]
    raw_csv = direct(engine, "csv", "deals").decode().replace("bell\x07", "bell")
    assert text == list(csv.reader(io.StringIO(raw_csv)))
    header = cells[0]
    plain = dict(zip(header, cells[-1], strict=True))  # oldest last
    assert (plain["seats"], plain["amount"], plain["won"]) == (12, 1200.5, True)
    assert plain["close_date"] == datetime(2025, 3, 1)  # a date cell
    assert plain["signed_at"] == "2025-03-01T08:00:00.000000Z"
    formula = dict(zip(header, cells[-2], strict=True))
    assert formula["name"] == '\'=HYPERLINK("x")' and formula["tags"] == "'=sum"
    assert formula["amount"] == -5 and formula["won"] is False
    # Kasar's own reader gets back what was stored
    records = [r for _, r in open_rows(io.BytesIO(output(engine, job_id)), format="xlsx").rows]
    assert records[-2]["name"] == '=HYPERLINK("x")' and records[-4]["name"] == "'=quoted"
    assert records[-1]["close_date"] == date(2025, 3, 1).isoformat()


def test_xlsx_continues_on_a_new_sheet_past_excel_row_limit(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xlsx, "MAX_SHEET_ROWS", 5)  # 4 records per sheet + the header
    fill(engine, 10)
    job, body = export_now(engine, format="xlsx", fields=["first_name"], sort_dir="asc")
    book = openpyxl.load_workbook(io.BytesIO(body))
    assert book.sheetnames == ["contacts", "contacts 2", "contacts 3"]
    names = [[r[0] for r in sheet.values] for sheet in book.worksheets]
    assert [n[0] for n in names] == ["first_name"] * 3
    assert [v for n in names for v in n[1:]] == [f"Émilie {i}" for i in range(10)]
    assert job["counters"]["rows_read"] == 10


@pytest.mark.parametrize("fields", [None, "notes"])
def test_each_csv_chunk_counts_the_records_it_holds(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, fields: str | None
) -> None:
    """A job's progress is the CSV writer's own count: with cells that hold line ends
    and quotes (every fifth note), empty cells alone on their line ("notes" only),
    and chunks cut small, each chunk's count is the records it completes."""
    monkeypatch.setattr(pg_copy, "CHUNK_SIZE", 30)
    monkeypatch.setattr(writers, "CHUNK_SIZE", 30)
    monkeypatch.setattr(writers, "BATCH_ROWS", 3)
    fill(engine, 40)
    with snapshot_transaction(engine) as conn:
        ws = load_workspace(conn)
        req = parse_request(ws, "contacts", fields=fields, default_limit=None, max_limit=None)
        body, counted, chunks = b"", 0, 0
        for chunk, records in writers.write_csv_counted(conn, ws, req):
            body, counted, chunks = body + chunk, counted + records, chunks + 1
            rows = list(csv.reader(io.StringIO(body.decode(), newline="")))
            assert counted == len(rows) - 1  # the header
    assert counted == 40 and chunks > 5
    assert body.count(b"\n") > 40  # notes with line ends were among them


class CancelMidway(JobContext):
    """The real context, except that right after the first piece of output is
    committed, an admin asks to cancel (as ``POST .../cancel`` does)."""

    def commit_chunk(self, work: Any) -> Any:
        result = super().commit_chunk(work)
        with write_transaction(self.engine) as conn:
            if blob_size(conn, self.job.id, OUTPUT) and not self.job.row["cancel_requested"]:
                jobs_repo.request_cancel(conn, self.job.id, "export")
        return result


def test_a_cancelled_export_stops_and_drops_its_partial_output(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(engine, 12_000)
    monkeypatch.setattr(runtime, "JobContext", CancelMidway)
    # Every piece is committed (the compressor holds back its first few hundred KB).
    monkeypatch.setattr(export_jobs, "PROGRESS_SECONDS", 0)
    monkeypatch.setattr(export_jobs, "PIECE_BYTES", 16 * 1024)
    job_id = queue(engine, format="csv")
    run_jobs(engine)
    job = job_of(engine, job_id)
    assert job["state"] == "cancelled"
    assert 0 < job["counters"]["rows_read"] < 12_000
    with read_transaction(engine) as conn:
        assert blob_size(conn, job_id, OUTPUT) == 0


def test_a_queued_export_is_cancelled_at_once_and_never_runs(engine: Engine) -> None:
    fill(engine, 10)
    job_id = queue(engine, format="csv")
    with write_transaction(engine) as conn:
        assert jobs_repo.request_cancel(conn, job_id, "export").state == "cancelled"
    assert not run_one(engine, "test-worker")


def test_a_job_whose_worker_died_restarts_from_scratch(engine: Engine) -> None:
    fill(engine, 3000, notes=400)
    job_id = queue(engine, format="json")
    with write_transaction(engine) as conn:  # a worker took it, wrote a bit, and died
        claimed = jobs_repo.claim_next(conn, "dead-worker")
        assert claimed is not None and claimed.id == job_id
        write_blob(conn, job_id, OUTPUT, [b"partial" * 300_000])
        jobs_repo.add_progress(conn, job_id, rows_read=900)
        stale = now_utc() - jobs_repo.STALE_AFTER - timedelta(seconds=1)
        conn.execute(update(tables.jobs).values(heartbeat_at=stale))
    assert run_one(engine, "second-worker")
    job = job_of(engine, job_id)
    assert job["state"] == "completed", job["error"]
    assert job["counters"]["rows_read"] == job["total_rows"] == 3000
    assert output(engine, job_id) == direct(engine, "json")
    with read_transaction(engine) as conn:
        assert jobs_repo.get_job(conn, job_id).row["attempts"] == 2
    # the first worker, had it only been slow, finds that the job is no longer its own
    with pytest.raises(runtime.JobCancelled, match="no longer"):
        JobContext(engine, claimed, "dead-worker").commit_chunk(lambda conn: None)


def peak_memory(engine: Engine, fmt: str, limit: int) -> int:
    job_id = queue(engine, format=fmt, limit=limit)
    tracemalloc.start()
    try:
        assert run_one(engine, "test-worker")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert job_of(engine, job_id)["counters"]["rows_read"] == limit
    return peak


def assert_flat(small: int, large: int) -> None:
    """The peak is a few pieces of output on their way into the database (filling,
    queued, being compressed, being stored), whatever the size: 40 MB of output
    would show far above. Which of them coincide depends on the two threads'
    timing, hence some slack."""
    assert large < small + 3 * CHUNK_BYTES and large < 10 * CHUNK_BYTES, (small, large)


def test_memory_stays_flat_whatever_the_number_of_rows(engine: Engine) -> None:
    fill(engine, 20_000, notes=2000)  # 4 MB of output for 2,000 rows, 40 MB for 20,000
    for fmt in ("csv", "json", "ndjson"):
        peak_memory(engine, fmt, 10)  # warm-up: imports, compiled statements
        assert_flat(peak_memory(engine, fmt, 2_000), peak_memory(engine, fmt, 20_000))


def test_memory_stays_flat_in_xlsx(engine: Engine) -> None:
    """Fewer, wider rows: openpyxl writes about 10,000 contacts a second, and ten
    times fewer under tracemalloc. 500 rows are 2 MB of zipped output, 5,000 rows
    20 MB."""
    fill(engine, 5_000, notes=5000)
    peak_memory(engine, "xlsx", 10)
    assert_flat(peak_memory(engine, "xlsx", 500), peak_memory(engine, "xlsx", 5_000))


# --- routes -----------------------------------------------------------------------------


def test_download_answers_409_until_completed_and_404_for_an_unknown_job(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    fill(engine, 5)
    job = api.post(JOBS, headers=admin_headers, json={"object": "contacts"}).json()
    r = api.get(f"{JOBS}/{job['id']}/download", headers=admin_headers)
    assert (r.status_code, r.json()["code"]) == (409, "CONFLICT")
    assert "queued" in r.json()["message"]
    run_jobs(engine)
    r = api.get(f"{JOBS}/{job['id']}/download", headers=admin_headers)
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert r.headers["content-type"] == "application/json"
    plain = api.get(
        f"{JOBS}/{job['id']}/download", headers={**admin_headers, "Accept-Encoding": "identity"}
    )
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert plain.content == r.content == output(engine, job["id"])
    assert json.loads(plain.content)["total"] == 5
    r = api.post(f"{JOBS}/{job['id']}/cancel", headers=admin_headers)
    assert (r.status_code, r.json()["code"]) == (409, "CONFLICT")
    for path in ("", "/download"):
        r = api.get(f"{JOBS}/nope{path}", headers=admin_headers)
        assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    assert api.post(f"{JOBS}/nope/cancel", headers=admin_headers).status_code == 404


def ended_ago(engine: Engine, job_id: str, age: timedelta) -> None:
    with write_transaction(engine) as conn:
        conn.execute(
            update(tables.jobs)
            .where(tables.jobs.c.id == job_id)
            .values(finished_at=now_utc() - age)
        )


def test_a_file_expires_after_the_retention_and_the_next_job_deletes_it(
    api: TestClient, engine: Engine, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "export_retention_days", 2)
    fill(engine, 5)
    queued = api.post(JOBS, headers=admin_headers, json={"object": "contacts"}).json()
    assert queued["file_expires_at"] is None  # no file yet
    old, grace, recent = (through_http(api, engine, admin_headers, {})[0] for _ in range(3))
    finished = datetime.fromisoformat(recent["finished_at"].removesuffix("Z"))
    assert recent["file_expires_at"] == jobs_repo.iso(finished + timedelta(days=2))
    ended_ago(engine, old["id"], timedelta(days=2, hours=2))
    ended_ago(engine, grace["id"], timedelta(days=2, minutes=30))  # expired, within the grace
    for job in (old, grace):
        r = api.get(f"{JOBS}/{job['id']}/download", headers=admin_headers)
        assert (r.status_code, r.json()["code"]) == (409, "CONFLICT")
        assert r.json()["message"].startswith(f"The file of export job '{job['id']}' expired at")
        assert r.json()["message"].endswith(
            "kept 2 days after their job ends); run the export again"
        )
        listed = api.get(f"{JOBS}/{job['id']}", headers=admin_headers).json()
        assert listed["file_expires_at"] < str(jobs_repo.iso(now_utc()))
    assert api.get(f"{JOBS}/{recent['id']}/download", headers=admin_headers).status_code == 200

    def sizes() -> list[int]:
        with read_transaction(engine) as conn:
            return [blob_size(conn, j["id"], OUTPUT) for j in (old, grace, recent)]

    assert all(sizes())
    queue(engine)  # the next export job deletes what expired more than PURGE_GRACE ago
    kept = sizes()
    assert kept[0] == 0 and kept[1] > 0 and kept[2] > 0


def test_an_import_job_is_not_an_export_job(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    with write_transaction(engine) as conn:
        other = jobs_repo.create_job(
            conn, kind="import", object_name="contacts", options={}, created_by="x"
        )
    assert api.get(f"{JOBS}/{other.id}", headers=admin_headers).status_code == 404
    assert api.get(f"{JOBS}/{other.id}/download", headers=admin_headers).status_code == 404
    assert api.get(JOBS, headers=admin_headers).json()["total"] == 0


def test_cancel_a_queued_job_through_the_api(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    job = api.post(JOBS, headers=admin_headers, json={"object": "contacts"}).json()
    r = api.post(f"{JOBS}/{job['id']}/cancel", headers=admin_headers)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert api.post(f"{JOBS}/{job['id']}/cancel", headers=admin_headers).status_code == 200
    r = api.get(f"{JOBS}/{job['id']}/download", headers=admin_headers)
    assert r.status_code == 409 and "cancelled" in r.json()["message"]


def test_members_get_403_everywhere(
    api: TestClient, engine: Engine, admin_headers: dict[str, str], member_headers: dict[str, str]
) -> None:
    job = api.post(JOBS, headers=admin_headers, json={"object": "contacts"}).json()
    calls = [
        api.post(JOBS, headers=member_headers, json={"object": "contacts"}),
        api.post(JOBS, headers=member_headers, content=b"not even json"),
        api.get(JOBS, headers=member_headers),
        api.get(f"{JOBS}/{job['id']}", headers=member_headers),
        api.post(f"{JOBS}/{job['id']}/cancel", headers=member_headers),
        api.get(f"{JOBS}/{job['id']}/download", headers=member_headers),
    ]
    assert [(r.status_code, r.json()["code"]) for r in calls] == [(403, "PERMISSION_DENIED")] * 6
    assert api.get(JOBS).status_code == 401


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"object": "nope"}, "INVALID_OBJECT", "nope"),
        ({"object": "nope", "format": "pdf"}, "INVALID_OBJECT", "nope"),
        ({}, "VALIDATION_ERROR", "object"),
        ({"object": "contacts", "format": "pdf"}, "VALIDATION_ERROR", "pdf"),
        ({"object": "contacts", "format": 3}, "VALIDATION_ERROR", "format"),
        ({"object": "contacts", "fields": ["first_name", "nope"]}, "VALIDATION_ERROR", "nope"),
        ({"object": "contacts", "fields": []}, "VALIDATION_ERROR", "fields"),
        ({"object": "contacts", "fields": {"a": 1}}, "VALIDATION_ERROR", "fields"),
        ({"object": "contacts", "sort_by": "nope"}, "VALIDATION_ERROR", "nope"),
        ({"object": "contacts", "sort_dir": "up"}, "VALIDATION_ERROR", "sort_dir"),
        ({"object": "contacts", "limit": 0}, "VALIDATION_ERROR", "limit"),
        ({"object": "contacts", "limit": True}, "VALIDATION_ERROR", "limit"),
        ({"object": "contacts", "limit": 1.5}, "VALIDATION_ERROR", "limit"),
        ({"object": "contacts", "filters": "{not json"}, "VALIDATION_ERROR", "JSON"),
        ({"object": "contacts", "filters": [1]}, "VALIDATION_ERROR", "filters"),
        (
            {"object": "contacts", "filters": {"conditions": [{"field": "nope", "operator": "eq",
                                                               "value": "x"}]}},
            "VALIDATION_ERROR", "nope",
        ),
        (
            {"object": "contacts", "filter_field": "created_at", "filter_operator": "gte",
             "filter_value": "not a date"},
            "VALIDATION_ERROR", "created_at",
        ),
        ({"object": "contacts", "filter_field": "city"}, "VALIDATION_ERROR", "filter_operator"),
        ({"object": "contacts", "row_cap": 5}, "VALIDATION_ERROR", "row_cap"),
    ],
)  # fmt: skip
def test_bad_parameters_are_refused_before_a_job_exists(
    api: TestClient, admin_headers: dict[str, str], body: dict[str, Any], code: str, words: str
) -> None:
    r = api.post(JOBS, headers=admin_headers, json=body)
    assert (r.status_code, r.json()["code"]) == (400, code), r.json()
    assert words in r.json()["message"]
    assert api.get(JOBS, headers=admin_headers).json()["total"] == 0


def test_a_body_that_is_not_a_json_object_is_refused(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    for content in (b"", b"[1]", b"{oops"):
        r = api.post(JOBS, headers=admin_headers, content=content)
        assert (r.status_code, r.json()["code"]) == (400, "VALIDATION_ERROR")


def test_the_list_is_newest_first_and_cursor_paged(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    ids = [
        api.post(JOBS, headers=admin_headers, json={"object": "contacts", "format": f}).json()["id"]
        for f in ("csv", "json", "ndjson", "xlsx", "csv")
    ]
    first = api.get(JOBS, headers=admin_headers, params={"limit": 2}).json()
    assert first["total"] == 5 and first["nextCursor"]
    seen = [j["id"] for j in first["data"]]
    cursor = first["nextCursor"]
    while cursor:
        page = api.get(JOBS, headers=admin_headers, params={"limit": 2, "cursor": cursor}).json()
        seen += [j["id"] for j in page["data"]]
        cursor = page["nextCursor"]
    assert seen == ids[::-1]
    assert all(j["kind"] == "export" for j in first["data"])
    r = api.get(JOBS, headers=admin_headers, params={"cursor": "garbage"})
    assert (r.status_code, r.json()["code"]) == (400, "VALIDATION_ERROR")


def test_progress_is_visible_while_the_job_runs(engine: Engine) -> None:
    fill(engine, 6000, notes=600)
    job_id = queue(engine, format="csv")
    seen: list[dict[str, Any]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            job = job_of(engine, job_id)
            if job["state"] == "running" and job["counters"]["rows_read"]:
                seen.append(job)
            done.wait(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run_jobs(engine)
    finally:
        done.set()
        watcher.join()
    assert seen, "no progress was committed before the end"
    assert all(j["total_rows"] == 6000 and j["rows_per_second"] for j in seen)
    assert all(0 < j["counters"]["rows_read"] <= 6000 for j in seen)
    assert job_of(engine, job_id)["counters"]["rows_read"] == 6000


def test_accept_encoding_is_read_as_http_says() -> None:
    for header, gzip_ok in [
        ("gzip, deflate, br", True), ("GZIP", True), ("*", True), ("br;q=1, gzip;q=0.5", True),
        ("", False), ("identity", False), ("gzip;q=0", False), ("deflate", False),
    ]:  # fmt: skip
        assert accepts_gzip(header) is gzip_ok, header
