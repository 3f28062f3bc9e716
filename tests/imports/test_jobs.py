"""The import job handler, run by the real worker code (``run_one``), on both databases."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine, func, select, update

from kasar.db import tables
from kasar.db.engine import is_sqlite, read_transaction, write_transaction
from kasar.imports import jobs as import_jobs
from kasar.imports import undo
from kasar.imports.files import detect_format
from kasar.imports.job_options import parse_job_options
from kasar.imports.jobs import create_import_job
from kasar.imports.undo import undo_job
from kasar.jobs import repository as jobs_repo
from kasar.jobs.blobs import UPLOAD, blob_size
from kasar.records import service as records
from kasar.schema.repository import load_workspace, now_utc
from support import job_of, run_jobs

HEADER = ["First Name", "Last Name", "Email", "Phone", "City", "Company"]
COMPANY = {"Company": "company_name"}


def contacts_csv(n: int) -> bytes:
    """``n`` deterministic rows: every 50th has an invalid email (2%), every 10th
    else repeats row i-5 in another form (8%): its email upper-cased and padded,
    or (every 20th) no email and its phone in national format."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for i in range(n):
        first, last, email, phone = f"F{i}", f"L{i}", f"p{i}@ex{i % 97}.com", f"+3361{i:07d}"
        if i % 50 == 49:
            email = "not-an-email"
        elif i % 20 == 19:
            j = i - 5
            first, last, email, phone = f"F{j}", f"L{j}", "", f"061{j:07d}"
        elif i % 10 == 9:
            j = i - 5
            first, last, email = f"F{j}", f"L{j}", f"  P{j}@EX{j % 97}.COM "
        writer.writerow([first, last, email, phone, "Paris", f"Co {i % 100}"])
    return out.getvalue().encode()


def expected(n: int) -> dict[str, int]:
    failed = sum(1 for i in range(n) if i % 50 == 49)
    dups = sum(1 for i in range(n) if i % 10 == 9 and i % 50 != 49)
    return {"rows_read": n, "created": n - failed - dups, "duplicates": dups, "failed": failed}


def make_job(engine: Engine, content: bytes, filename: str = "c.csv", **options: Any) -> str:
    with write_transaction(engine) as conn:
        opts = parse_job_options(
            {"object": "contacts", **options}, load_workspace(conn), filename=filename
        )
        opts = replace(opts, format=opts.format or detect_format(content[:65536], filename))
        return create_import_job(conn, opts, [content], created_by="tester").id


def import_now(
    engine: Engine, content: bytes, filename: str = "c.csv", **options: Any
) -> dict[str, Any]:
    job_id = make_job(engine, content, filename, **options)
    run_jobs(engine)
    return job_of(engine, job_id)


def stored(engine: Engine, object_name: str = "contacts") -> list[dict[str, Any]]:
    with read_transaction(engine) as conn:
        ws = load_workspace(conn)
        return [dict(r) for r in conn.execute(select(ws.table(object_name))).mappings()]


def job_rows(engine: Engine, job_id: str) -> list[dict[str, Any]]:
    t = tables.job_rows
    with read_transaction(engine) as conn:
        query = select(t).where(t.c.job_id == job_id).order_by(t.c.row_number)
        return [dict(r) for r in conn.execute(query).mappings()]


def upload_size(engine: Engine, job_id: str) -> int:
    with read_transaction(engine) as conn:
        return blob_size(conn, job_id, UPLOAD)


def make_contact(engine: Engine, **values: Any) -> str:
    with write_transaction(engine) as conn:
        return str(records.create_record(conn, load_workspace(conn), "contacts", values)["id"])


def test_a_csv_is_imported_with_mapping_dedup_and_a_row_per_outcome(engine: Engine) -> None:
    job = import_now(engine, contacts_csv(300), mapping=COMPANY)
    assert job["state"] == "completed", job["error"]
    assert job["counters"] == {**expected(300), "updated": 0}
    assert job["total_rows"] == 300
    assert job["options"]["columns"] == {
        "mapping": {
            "First Name": "first_name",
            "Last Name": "last_name",
            "Email": "email",
            "Phone": "phone",
            "City": "city",
            "Company": "company_name",
        },
        "unmatched": [],
    }
    assert len(stored(engine)) == expected(300)["created"]
    assert len(stored(engine, "companies")) == 90  # "Co 9", "Co 19"... only on duplicates
    rows = job_rows(engine, job["id"])
    assert [r["row_number"] for r in rows] == list(range(1, 301))
    by_number = {r["row_number"]: r for r in rows}
    assert by_number[10]["status"] == "duplicate"  # row i=9 repeats i=4 (row 5)
    assert by_number[10]["duplicate_of"] == by_number[5]["record_id"]
    assert by_number[10]["matched_on"] == "email,name"
    assert by_number[20]["matched_on"] == "phone,name"
    assert by_number[50]["status"] == "failed"
    assert by_number[50]["error_code"] == "VALIDATION_ERROR"
    assert "email" in by_number[50]["message"]


def test_unmapped_columns_are_ignored_and_reported(engine: Engine) -> None:
    content = b"first_name,Nickname,e mail\nAda,Countess,ada@x.com\n"
    job = import_now(engine, content, mapping={"e mail": "email"})
    assert job["state"] == "completed"
    assert job["options"]["columns"] == {
        "mapping": {"first_name": "first_name", "e mail": "email"},
        "unmatched": ["Nickname"],
    }
    [row] = stored(engine)
    assert (row["first_name"], row["email"]) == ("Ada", "ada@x.com")


def test_a_mapping_to_nothing_ignores_the_column(engine: Engine) -> None:
    job = import_now(engine, b"first_name,city\nAda,London\n", mapping={"city": ""})
    assert job["options"]["columns"] == {"mapping": {"first_name": "first_name"}, "unmatched": []}
    assert stored(engine)[0]["city"] is None


def test_a_file_whose_columns_match_no_field_fails_before_writing(engine: Engine) -> None:
    job = import_now(engine, b"foo,bar\n1,2\n")
    assert job["state"] == "failed"
    assert job["error"] == (
        "None of the file's columns ('foo', 'bar') is a field of 'contacts'; "
        "name the fields in a mapping. Nothing was imported"
    )
    assert stored(engine) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"first_name,last_name\nAda,Lovelace\nBob,Smith,extra\n",
            "Line 3: 3 cells but the header has 2 columns. Nothing was imported",
        ),
        (b'[{"first_name": "Ada"}, {"first_name": ', "Nothing was imported"),
        (b"first_name\n\xff\xfeAda\x80\n", "Nothing was imported"),
    ],
    ids=["ragged", "broken-json", "bad-encoding"],
)
def test_a_malformed_file_fails_with_one_clear_error_and_writes_nothing(
    engine: Engine, content: bytes, message: str
) -> None:
    job = import_now(engine, content, filename="f.csv" if content[:1] != b"[" else "f.json")
    assert job["state"] == "failed"
    assert job["error"].endswith(message)
    assert job["counters"]["rows_read"] == 0
    assert stored(engine) == []
    assert upload_size(engine, job["id"]) == 0  # the file goes with the job's end


def test_a_wrongly_declared_encoding_is_reported(engine: Engine) -> None:
    job = import_now(engine, "first_name\nZoé\n".encode("utf-16-le"), encoding="utf-8")
    assert job["state"] == "failed"
    assert "Nothing was imported" in job["error"]


def test_encoding_and_delimiter_options(engine: Engine) -> None:
    content = "first_name;city\nZoé;Besançon\n".encode("latin-1")
    job = import_now(engine, content, encoding="latin-1", delimiter=";")
    assert job["state"] == "completed", job["error"]
    assert [(r["first_name"], r["city"]) for r in stored(engine)] == [("Zoé", "Besançon")]


def test_format_option_overrides_the_name(engine: Engine) -> None:
    content = b'{"first_name": "Ada"}\n{"first_name": "Bob"}\n'
    job = import_now(engine, content, filename="data.txt", format="ndjson")
    assert job["counters"]["created"] == 2


def test_json_ndjson_and_xlsx_files(engine: Engine) -> None:
    as_json = json.dumps([{"first_name": "A", "email": "a@x.com"}, {"first_name": "B"}]).encode()
    as_ndjson = b'{"first_name": "C"}\n{"first_name": "D", "Last Name": "E"}\n'
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["First name", "Email"])
    sheet.append(["F", "f@x.com"])
    xlsx = io.BytesIO()
    book.save(xlsx)
    for content, name in (
        (as_json, "a.json"),
        (as_ndjson, "b.ndjson"),
        (xlsx.getvalue(), "c.xlsx"),
    ):
        assert import_now(engine, content, name)["state"] == "completed"
    names = sorted((r["first_name"], r["last_name"]) for r in stored(engine))
    assert names == [("A", None), ("B", None), ("C", None), ("D", "E"), ("F", None)]


def test_on_duplicate_update_fills_empty_fields_and_keeps_a_before_image(engine: Engine) -> None:
    rid = make_contact(engine, first_name="Ada", email="ada@x.com", city="Paris")
    content = b"first_name,email,city,job_title\nAda,ADA@x.com,London,Countess\n"
    job = import_now(engine, content, on_duplicate="update")
    assert job["counters"] == {
        "rows_read": 1,
        "created": 0,
        "updated": 1,
        "duplicates": 1,
        "failed": 0,
    }
    [row] = stored(engine)
    assert (row["city"], row["job_title"]) == ("Paris", "Countess")
    [jr] = job_rows(engine, job["id"])
    assert (jr["status"], jr["record_id"], jr["duplicate_of"]) == ("updated", rid, rid)
    assert json.loads(jr["before_image"]) == {
        "before": {"job_title": None},
        "after": {"job_title": "Countess"},
    }


def test_on_duplicate_overwrite_replaces_the_fields_given(engine: Engine) -> None:
    make_contact(engine, first_name="Ada", email="ada@x.com", city="Paris", job_title="Countess")
    content = b"first_name,email,city\nAda,ada@x.com,London\n"
    job = import_now(engine, content, on_duplicate="overwrite")
    assert job["counters"]["updated"] == 1
    [row] = stored(engine)
    assert (row["city"], row["job_title"]) == ("London", "Countess")


def test_on_duplicate_skip_changes_nothing(engine: Engine) -> None:
    make_contact(engine, first_name="Ada", email="ada@x.com", city="Paris")
    job = import_now(engine, b"first_name,email,city\nAda,ada@x.com,London\n")
    assert job["counters"]["duplicates"] == 1 and job["counters"]["updated"] == 0
    assert stored(engine)[0]["city"] == "Paris"


def test_match_on_limits_the_keys_used(engine: Engine) -> None:
    make_contact(engine, first_name="Ada", last_name="Lovelace", phone="+33612345678")
    content = b"first_name,last_name,phone,email\nAda,Lovelace,+33 6 12 34 56 78,new@x.com\n"
    by_email = import_now(engine, content, match_on=["email"])
    assert by_email["counters"]["created"] == 1
    by_phone = import_now(engine, content, match_on=["phone"])
    assert by_phone["counters"]["duplicates"] == 1
    [jr] = job_rows(engine, by_phone["id"])
    assert jr["matched_on"] == "phone"


def test_a_dry_run_writes_no_record_but_reports_every_row(engine: Engine) -> None:
    job = import_now(engine, contacts_csv(120), mapping=COMPANY, dry_run=True)
    assert job["state"] == "completed"
    assert job["counters"] == {**expected(120), "updated": 0}
    assert stored(engine) == [] and stored(engine, "companies") == []
    with read_transaction(engine) as conn:
        assert conn.execute(select(func.count()).select_from(tables.match_keys)).scalar() == 0
    assert len(job_rows(engine, job["id"])) == 120


@pytest.mark.parametrize("page", [1000, 1])  # 1: every record in a page of its own
def test_undo_deletes_created_restores_updated_and_leaves_changed_records(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, page: int
) -> None:
    monkeypatch.setattr(undo, "PAGE", page)
    kept = make_contact(engine, first_name="Ada", email="ada@x.com", city="Paris")
    touched = make_contact(engine, first_name="Bob", email="bob@x.com")
    content = (
        b"first_name,email,city,job_title\n"
        b"Ada,ada@x.com,,Countess\n"  # updates Ada (job_title)
        b"Bob,bob@x.com,,Builder\n"  # updates Bob, who is then edited
        b"Cy,cy@x.com,Rome,\n"  # created, then left alone
        b"Di,di@x.com,Oslo,\n"  # created, then edited
    )
    job = import_now(engine, content, on_duplicate="update")
    assert job["counters"]["created"] == 2 and job["counters"]["updated"] == 2
    by_name = {r["first_name"]: r for r in stored(engine)}
    time.sleep(0.01)
    with write_transaction(engine) as conn:
        ws = load_workspace(conn)
        records.update_record(conn, ws, "contacts", touched, {"city": "Berlin"})
        records.update_record(conn, ws, "contacts", by_name["Di"]["id"], {"city": "Lima"})
    with write_transaction(engine) as conn:
        result = undo_job(conn, load_workspace(conn), job["id"])
    assert (result.deleted, result.restored) == (1, 1)
    assert sorted(s["id"] for s in result.skipped) == sorted([touched, by_name["Di"]["id"]])
    after = {r["first_name"]: r for r in stored(engine)}
    assert sorted(after) == ["Ada", "Bob", "Di"]
    assert after["Ada"]["id"] == kept and after["Ada"]["job_title"] is None
    assert after["Bob"]["job_title"] == "Builder"
    assert job_of(engine, job["id"])["undone_at"] is not None


@pytest.mark.parametrize("page", [1000, 1])
def test_undo_deletes_the_companies_the_job_created_that_nothing_else_links_to(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, page: int
) -> None:
    monkeypatch.setattr(undo, "PAGE", page)
    with write_transaction(engine) as conn:
        old = records.create_record(conn, load_workspace(conn), "companies", {"name": "Old Co"})
    content = (
        b"first_name,email,company\n"
        b"Ada,ada@x.com,Old Co\n"  # an existing company: never deleted
        b"Bob,bob@x.com,New Co\n"  # created by the job, then only Bob's: deleted
        b"Cy,cy@x.com,Kept Co\n"  # created, then linked to by someone else: kept
        b"Di,di@x.com,Edited Co\n"  # created, then edited: kept
        b"Ed,ed@x.com,New Co\n"
    )
    job = import_now(engine, content)
    companies = {r["name"]: r["id"] for r in stored(engine, "companies")}
    assert sorted(companies) == ["Edited Co", "Kept Co", "New Co", "Old Co"]
    with read_transaction(engine) as conn:
        linked = conn.execute(
            select(tables.job_linked.c.record_id).where(tables.job_linked.c.job_id == job["id"])
        ).scalars()
        assert sorted(linked) == sorted(companies[n] for n in ("Edited Co", "Kept Co", "New Co"))
    time.sleep(0.01)
    make_contact(engine, first_name="Zoe", company_id=companies["Kept Co"])
    with write_transaction(engine) as conn:
        ws = load_workspace(conn)
        records.update_record(conn, ws, "companies", companies["Edited Co"], {"domain": "e.com"})
    with write_transaction(engine) as conn:
        result = undo_job(conn, load_workspace(conn), job["id"])
    assert result.deleted == 5 and result.deleted_linked == {"companies": 1}
    assert sorted(s["reason"] for s in result.skipped) == [
        "companies record changed since the import",
        "companies record still linked to by other records",
    ]
    assert sorted(r["name"] for r in stored(engine, "companies")) == [
        "Edited Co", "Kept Co", "Old Co"
    ]  # fmt: skip
    assert old["id"] in {r["id"] for r in stored(engine, "companies")}
    assert [r["first_name"] for r in stored(engine)] == ["Zoe"]


def test_a_dry_run_records_no_linked_companies(engine: Engine) -> None:
    job = import_now(engine, b"first_name,email,company\nAda,ada@x.com,New Co\n", dry_run=True)
    assert job["state"] == "completed" and stored(engine, "companies") == []
    with read_transaction(engine) as conn:
        assert conn.execute(select(func.count()).select_from(tables.job_linked)).scalar() == 0


def test_undo_spots_a_change_made_while_the_job_ran(engine: Engine) -> None:
    rid = make_contact(engine, first_name="Ada", email="ada@x.com")
    content = b"first_name,email,job_title\nAda,ada@x.com,Countess\n"
    job = import_now(engine, content, on_duplicate="update")
    with write_transaction(engine) as conn:
        table = load_workspace(conn).table("contacts")
        # as if written between the job's chunk and its end: no newer stamp, another value
        conn.execute(update(table).where(table.c.id == rid).values(job_title="Queen"))
    with write_transaction(engine) as conn:
        result = undo_job(conn, load_workspace(conn), job["id"])
    assert result.restored == 0 and result.skipped == [
        {"id": rid, "reason": "changed since the import"}
    ]
    assert stored(engine)[0]["job_title"] == "Queen"


def test_cancelling_a_running_job_keeps_the_chunks_committed(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_jobs, "CHUNK_ROWS", 100)
    job_id = make_job(engine, contacts_csv(3000), mapping=COMPANY)
    worker = threading.Thread(target=run_jobs, args=(engine,))
    worker.start()
    deadline = time.monotonic() + 60
    while job_of(engine, job_id)["counters"]["rows_read"] < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    with write_transaction(engine) as conn:
        jobs_repo.request_cancel(conn, job_id, "import")
    worker.join()
    job = job_of(engine, job_id)
    assert job["state"] == "cancelled"
    assert 200 <= job["counters"]["rows_read"] < 3000
    assert job["counters"]["rows_read"] % 100 == 0
    assert len(stored(engine)) == job["counters"]["created"]
    assert len(job_rows(engine, job_id)) == job["counters"]["rows_read"]
    assert upload_size(engine, job_id) == 0


def test_a_queued_job_is_cancelled_at_once(engine: Engine) -> None:
    job_id = make_job(engine, contacts_csv(10))
    with write_transaction(engine) as conn:
        assert jobs_repo.request_cancel(conn, job_id, "import").state == "cancelled"
    run_jobs(engine)
    assert stored(engine) == []
    assert upload_size(engine, job_id) == 0


def check_every_row_once(engine: Engine, job: dict[str, Any], n: int) -> None:
    assert job["state"] == "completed", job["error"]
    assert job["counters"] == {**expected(n), "updated": 0}
    rows = job_rows(engine, job["id"])
    assert [r["row_number"] for r in rows] == list(range(1, n + 1))
    created = [r["record_id"] for r in rows if r["status"] == "created"]
    assert sorted(created) == sorted(r["id"] for r in stored(engine))
    emails = [r["email"] for r in stored(engine) if r["email"]]
    assert len(emails) == len(set(emails))
    assert upload_size(engine, job["id"]) == 0  # the file is of no use once the job ended


def test_ten_thousand_rows_end_to_end(engine: Engine) -> None:
    started = time.monotonic()
    job = import_now(engine, contacts_csv(10_000), mapping=COMPANY)
    check_every_row_once(engine, job, 10_000)
    print(f"\n10k rows: {10_000 / (time.monotonic() - started):.0f} rows/s ({engine.dialect.name})")


def test_validation_in_a_process_pool_gives_the_same_outcome(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """And on SQLite, whose write lock has no queue, the job leaves the lock free
    after every ``SQLITE_HOLD`` seconds of writing (here: after every chunk)."""
    monkeypatch.setattr(import_jobs, "POOL_MIN_BYTES", 0)
    monkeypatch.setattr(import_jobs, "spare_core", lambda: True)
    monkeypatch.setattr(import_jobs, "CHUNK_ROWS", 500)
    monkeypatch.setattr(import_jobs, "SQLITE_HOLD", 0.0)
    monkeypatch.setattr(import_jobs, "SQLITE_PAUSE", 0.0123)
    pauses: list[float] = []
    sleep = time.sleep
    monkeypatch.setattr(import_jobs.time, "sleep", lambda s: pauses.append(s) or sleep(s))
    job = import_now(engine, contacts_csv(3000), mapping=COMPANY)
    check_every_row_once(engine, job, 3000)
    assert pauses.count(0.0123) == (6 if is_sqlite(engine) else 0)


@pytest.mark.slow
def test_a_hundred_thousand_rows_end_to_end(engine: Engine) -> None:
    content = contacts_csv(100_000)
    started = time.monotonic()
    job = import_now(engine, content, mapping=COMPANY)
    elapsed = time.monotonic() - started
    check_every_row_once(engine, job, 100_000)
    print(f"\n100k rows: {100_000 / elapsed:.0f} rows/s in {elapsed:.1f} s ({engine.dialect.name})")
    assert elapsed < 180  # about 30 s on a quiet machine; a bound for regressions


def _worker(db_url: str, log: Path) -> subprocess.Popen[bytes]:
    kasar = Path(sys.executable).with_name("kasar")
    env = {**os.environ, "KASAR_DATABASE_URL": db_url}
    return subprocess.Popen(
        [str(kasar), "worker", "--poll", "0.1"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def test_a_killed_worker_is_resumed_by_another_and_every_row_lands_once(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    n = 3 * import_jobs.CHUNK_ROWS
    job_id = make_job(engine, contacts_csv(n), mapping=COMPANY)
    first = _worker(db_url, tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 90
        while job_of(engine, job_id)["counters"]["rows_read"] < import_jobs.CHUNK_ROWS:
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        first.kill()
    killed_at = job_of(engine, job_id)
    assert killed_at["state"] == "running" and killed_at["counters"]["rows_read"] < n
    assert upload_size(engine, job_id) > 0  # kept for the worker that resumes
    with write_transaction(engine) as conn:  # let the claim expire, as 30 s would
        conn.execute(
            update(tables.jobs)
            .where(tables.jobs.c.id == job_id)
            .values(heartbeat_at=now_utc() - jobs_repo.STALE_AFTER * 2)
        )
    second = _worker(db_url, tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 120
        while job_of(engine, job_id)["state"] == "running":
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            time.sleep(0.1)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    check_every_row_once(engine, job_of(engine, job_id), n)
    with read_transaction(engine) as conn:
        attempts = conn.execute(select(tables.jobs.c.attempts).where(tables.jobs.c.id == job_id))
        assert attempts.scalar_one() == 2


def test_random_fuzz_rows_never_break_the_job(engine: Engine) -> None:
    rnd = random.Random(3)
    lines = ["first_name,email,phone"]
    for i in range(200):
        junk = "".join(rnd.choice("ab@.+0 9é,\"'") for _ in range(rnd.randrange(12)))
        lines.append(f'F{i},"{junk.replace(chr(34), "")}",{rnd.choice(["", "+33612345678", "x"])}')
    job = import_now(engine, "\n".join(lines).encode())
    assert job["state"] == "completed", job["error"]
    c = job["counters"]
    assert c["created"] + c["duplicates"] + c["failed"] == c["rows_read"] == 200
