"""Crash safety (issue 8, slow): ``kill -9`` of a real server at random moments
while a client thread imports batches in a loop and the server runs an import
job; 30 times on SQLite, 10 on PostgreSQL. After each kill: the database passes
its integrity check and Kasar's invariants (``checks.integrity_problems``), every
batch acknowledged before the kill is there, whole and exactly once, every batch
is all there or not at all, and retrying the interrupted request with the same
``Idempotency-Key`` leaves it there exactly once. The interrupted job resumes on
the next server; at the end every row of every job is there exactly once."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select, update

from kasar.db import tables
from kasar.db.engine import is_sqlite, read_transaction, write_transaction
from kasar.schema.repository import load_workspace, now_utc
from reliability.checks import bearer, integrity_problems
from reliability.live import LiveServer

pytestmark = pytest.mark.slow

BATCH = 50
JOB_ROWS = 30_000  # long enough (6 chunks) that a kill lands inside a job
JOB_EVERY = 5  # kills
COMPANIES = [f"Crash Co {i}" for i in range(8)]


def batch_records(b: int) -> list[dict[str, Any]]:
    """Batch ``b``: 50 new contacts, each unique (email, phone), naming a few companies."""
    return [
        {
            "first_name": f"K{b}",
            "last_name": f"N{i}",
            "email": f"crash{b}-{i}@kill.io",
            "phone": f"+336{b:06d}{i:02d}",
            "job_title": f"batch-{b}",
            "city": "Paris" if i % 2 else None,
            "company_name": COMPANIES[(b + i) % len(COMPANIES)].upper() if i % 3 else None,
        }
        for i in range(BATCH)
    ]


def job_file(j: int) -> bytes:
    rows = [f"J{j},R{r},job{j}-{r}@kill.io,job-{j}" for r in range(JOB_ROWS)]
    return ("first_name,last_name,email,job_title\n" + "\n".join(rows) + "\n").encode()


@dataclass
class Client:
    """Sends batch after batch until the server goes away; remembers what was
    acknowledged and the request that was cut."""

    url: str
    token: str
    next_batch: int
    acked: list[int] = field(default_factory=list)
    in_flight: int | None = None
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, headers=bearer(self.token), timeout=120) as http:
            while True:
                b = self.next_batch
                try:
                    r = send_batch(http, b)
                except httpx.TransportError:
                    self.in_flight = b
                    return
                if r.status_code != 200:
                    self.errors.append(f"batch {b}: {r.status_code} {r.text[:300]}")
                    return
                self.acked.append(b)
                self.next_batch += 1


def send_batch(http: httpx.Client, b: int) -> httpx.Response:
    return http.post(
        "/api/v1/import/contacts",
        json={"records": batch_records(b)},
        headers={"Idempotency-Key": f"batch-{b}"},
    )


def retry(http: httpx.Client, b: int) -> bool:
    """Send the cut batch again with its key: the first answer replayed (it had
    committed), or a fresh import that creates all of it (it had not)."""
    r = send_batch(http, b)
    assert r.status_code == 200, r.text
    if r.headers.get("Idempotent-Replayed") == "true":
        return True
    assert (r.json()["created"], r.json()["duplicates"]) == (BATCH, 0), r.text
    return False


def stored_batches(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Stored contacts by ``job_title`` (the batch or job they came from)."""
    with read_transaction(engine) as conn:
        ws = load_workspace(conn)
        contacts, companies = ws.table("contacts"), ws.table("companies")
        rows = conn.execute(
            select(contacts, companies.c.name.label("company_name")).outerjoin(
                companies, companies.c.id == contacts.c.company_id
            )
        ).mappings()
        out: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            out.setdefault(row["job_title"], []).append(dict(row))
    return out


def check_batch(rows: list[dict[str, Any]], b: int) -> None:
    """All 50 contacts of batch ``b``, once each, every field as it was sent."""
    sent = {r["email"]: r for r in batch_records(b)}
    assert sorted(r["email"] for r in rows) == sorted(sent), f"batch {b} is not whole"
    for row in rows:
        want = sent[row["email"]]
        got = {k: row[k] for k in ("first_name", "last_name", "phone", "city")}
        assert got == {k: want[k] for k in got}, (b, row)
        want_company = want["company_name"]
        assert (row["company_name"] or "").lower() == (want_company or "").lower(), (b, row)


def check_after_kill(engine: Engine, acked: list[int], in_flight: int | None) -> None:
    problems = integrity_problems(engine)
    assert not problems, problems
    stored = stored_batches(engine)
    for b in acked:
        check_batch(stored.get(f"batch-{b}", []), b)
    if in_flight is not None:
        partial = stored.get(f"batch-{in_flight}", [])
        assert len(partial) in (0, BATCH), f"batch {in_flight} half-written: {len(partial)}"
        if partial:
            check_batch(partial, in_flight)
    with read_transaction(engine) as conn:
        companies = load_workspace(conn).table("companies")
        names = Counter(n.lower() for n in conn.execute(select(companies.c.name)).scalars())
    assert all(n == 1 for n in names.values()), names


def resume_jobs(engine: Engine) -> None:
    """A killed worker's job is taken over once its heartbeat is ``STALE_AFTER`` old;
    make it that old now rather than wait."""
    with write_transaction(engine) as conn:
        conn.execute(
            update(tables.jobs)
            .where(tables.jobs.c.state == "running")
            .values(heartbeat_at=now_utc().replace(year=2000))
        )


def wait_for_jobs(engine: Engine, timeout: float = 600) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        with read_transaction(engine) as conn:
            jobs = [dict(r) for r in conn.execute(select(tables.jobs)).mappings()]
        if all(j["state"] in ("completed", "failed", "cancelled") for j in jobs):
            return jobs
        assert time.monotonic() < deadline, [(j["id"], j["state"]) for j in jobs]
        time.sleep(0.5)


def post_job(url: str, token: str, j: int) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/import-jobs",
        headers={**bearer(token), "Idempotency-Key": f"job-{j}"},
        files={"file": (f"job{j}.csv", job_file(j), "text/csv")},
        data={"options": '{"object": "contacts"}'},
        timeout=120,
    )


def test_kill_9_during_imports(db_url: str, engine: Engine, make_token: Any) -> None:
    kills = int(os.environ.get("KASAR_CRASH_KILLS", 30 if is_sqlite(engine) else 10))
    seed = int(os.environ.get("KASAR_CRASH_SEED", time.time()))
    rng = random.Random(seed)
    # Printed first: pytest shows a failed test's output, so the run can be replayed.
    print(f"\ncrash loop ({engine.dialect.name}): KASAR_CRASH_SEED={seed}")
    token = make_token("admin")
    env = {"KASAR_RUN_JOBS": "true", "KASAR_LOG_LEVEL": "WARNING"}
    acked: list[int] = []
    next_batch, jobs_posted, replayed, retried = 0, 0, 0, 0
    in_flight: int | None = None
    started = time.monotonic()
    for kill in range(kills):
        server = LiveServer(db_url, env=env).start()
        thread: threading.Thread | None = None
        try:
            with httpx.Client(base_url=server.url, headers=bearer(token), timeout=120) as http:
                if in_flight is not None:  # the request the last kill cut, same key
                    replayed += retry(http, in_flight)
                    retried += 1
                    acked.append(in_flight)
                    next_batch = max(next_batch, in_flight + 1)
                    in_flight = None
            if kill % JOB_EVERY == 0:  # a new job now and then; earlier ones resume
                r = post_job(server.url, token, jobs_posted)
                assert r.status_code == 202, r.text
                jobs_posted += 1
            client = Client(server.url, token, next_batch)
            thread = threading.Thread(target=client.run)
            thread.start()
            time.sleep(rng.uniform(0.3, 2.5))
        finally:
            server.kill()
            server.close()
        assert thread is not None
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert not client.errors, client.errors
        acked += client.acked
        next_batch, in_flight = client.next_batch, client.in_flight
        check_after_kill(engine, acked, in_flight)
        resume_jobs(engine)
    # A last server finishes the cut request and every job.
    server = LiveServer(db_url, env=env).start()
    try:
        if in_flight is not None:
            with httpx.Client(base_url=server.url, headers=bearer(token), timeout=120) as http:
                replayed += retry(http, in_flight)
                retried += 1
                acked.append(in_flight)
        jobs = wait_for_jobs(engine)
    finally:
        server.close()
    check_after_kill(engine, acked, None)
    assert sorted(acked) == list(range(len(acked))), "a batch was skipped"
    stored = stored_batches(engine)
    for j in range(jobs_posted):
        emails = [r["email"] for r in stored.get(f"job-{j}", [])]
        assert len(emails) == len(set(emails)) == JOB_ROWS, (j, len(emails), len(set(emails)))
    assert [j["state"] for j in jobs] == ["completed"] * jobs_posted, jobs
    for j in jobs:  # a chunk imported twice would show as duplicates and extra rows read
        assert (j["rows_read"], j["created"], j["duplicates"]) == (JOB_ROWS, JOB_ROWS, 0), j
    resumed = sum(j["attempts"] > 1 for j in jobs)
    assert resumed, "no job was cut by a kill: make them longer"
    with read_transaction(engine) as conn:
        contacts = load_workspace(conn).table("contacts")
        total = conn.execute(select(func.count()).select_from(contacts)).scalar_one()
    assert total == len(acked) * BATCH + jobs_posted * JOB_ROWS
    print(
        f"\ncrash loop ({engine.dialect.name}, seed {seed}): {kills} kills, "
        f"{len(acked)} batches ({len(acked) * BATCH} records) acknowledged, "
        f"{retried} cut requests retried ({replayed} replayed), "
        f"{jobs_posted} jobs of {JOB_ROWS} rows completed ({resumed} after being cut), "
        f"{total} contacts, {time.monotonic() - started:.0f} s"
    )
