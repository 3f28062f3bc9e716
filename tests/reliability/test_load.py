"""Concurrency (issue 8, slow): 4 client processes import the same 4,000 records,
each in its own order and spelling, through 3 server processes on one database,
while exports (and two export jobs) run over and over. No duplicates, no 5xx, no
"database is locked" reaching a client, and every export is consistent: no record
twice, none of the records stored before the imports missing, ``total`` equal to
what it lists.
Also: the per-token rate limit is one count across server processes."""

from __future__ import annotations

import csv
import io
import multiprocessing
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from kasar.db.engine import read_transaction, write_transaction
from kasar.imports.service import import_records
from kasar.schema.repository import load_workspace
from reliability.checks import assert_error, bearer, integrity_problems
from reliability.live import live_servers
from reliability.loadclient import COMPANIES, run_client, shared_records

pytestmark = pytest.mark.slow

CLIENTS = 4
SERVERS = 3
RECORDS = 4000
PRELOADED = 2000


def preload(engine: Engine) -> set[str]:
    """Contacts stored before the imports start (none of them a duplicate of those)."""
    ids: set[str] = set()
    for start in range(0, PRELOADED, 1000):
        rows = [
            {"first_name": f"Old{i}", "last_name": "Before", "email": f"old{i}@before.example"}
            for i in range(start, start + 1000)
        ]
        with write_transaction(engine) as conn:
            result = import_records(conn, load_workspace(conn), "contacts", rows)
        assert result.created == 1000
        ids |= {r.id for r in result.results if r.id}
    return ids


class Exporter:
    """Exports again and again while the imports run, and checks each one."""

    def __init__(self, urls: list[str], token: str, before: set[str]) -> None:
        self.urls, self.token, self.before = urls, token, before
        self.done = threading.Event()
        self.count = 0
        self.sizes: list[int] = []
        self.failures: list[str] = []
        self.jobs: list[tuple[str, str]] = []  # (server, export job id)

    def run(self) -> None:
        """Every problem (a failed check, an error answer, a lost connection) is kept
        in ``failures``: an exception would only end this thread, not the test."""
        with httpx.Client(headers=bearer(self.token), timeout=300) as http:
            k = 0
            while not self.done.is_set():
                try:
                    self.export_once(http, k)
                except Exception as exc:
                    self.failures.append(f"{type(exc).__name__}: {str(exc)[:500]}")
                k += 1

    def export_once(self, http: httpx.Client, k: int) -> None:
        if k in (2, 8):  # export jobs too, in the middle of the imports
            url = self.urls[k % len(self.urls)]
            body = {"object": "contacts", "format": "json", "fields": ["id", "email"]}
            r = http.post(f"{url}/api/v1/export-jobs", json=body)
            assert r.status_code == 202, r.text
            self.jobs.append((url, r.json()["id"]))
        url = self.urls[k % len(self.urls)] + "/api/v1/export/contacts"
        fmt = "csv" if k % 3 == 2 else "json"
        params = {"format": fmt, "fields": "id,email", "limit": "10000"}
        self.check(http.get(url, params=params), fmt)

    def check_jobs(self) -> None:
        """Each export job, run while the imports were going on, is one snapshot."""
        with httpx.Client(headers=bearer(self.token), timeout=300) as http:
            for url, job_id in self.jobs:
                deadline = time.monotonic() + 300
                while (job := http.get(f"{url}/api/v1/export-jobs/{job_id}").json())["state"] in (
                    "queued",
                    "running",
                ):
                    assert time.monotonic() < deadline, job
                    time.sleep(0.5)
                assert job["state"] == "completed", job
                r = http.get(f"{url}/api/v1/export-jobs/{job_id}/download")
                ids = [x["id"] for x in r.json()["records"]]
                assert r.json()["total"] == len(ids)
                assert len(ids) == len(set(ids)), "an export job wrote a record twice"
                assert not self.before - set(ids), "an export job lost stored records"

    def check(self, r: httpx.Response, fmt: str) -> None:
        assert r.status_code == 200, r.text[:300]
        if fmt == "json":
            body = r.json()
            ids = [x["id"] for x in body["records"]]
            assert body["total"] == len(ids), (body["total"], len(ids))
        else:
            ids = [row[0] for row in list(csv.reader(io.StringIO(r.text)))[1:]]
        twice = [i for i, n in Counter(ids).items() if n > 1]
        assert not twice, f"exported twice: {twice[:5]}"
        missing = self.before - set(ids)
        assert not missing, f"{len(missing)} stored records missing from an export"
        assert not self.sizes or len(ids) >= self.sizes[-1], "an export lost records"
        self.sizes.append(len(ids))
        self.count += 1


def test_clients_importing_the_same_records_through_several_servers(
    db_url: str, engine: Engine, make_token: Any
) -> None:
    token = make_token("admin")
    before = preload(engine)
    started = time.monotonic()
    with live_servers(db_url, SERVERS, env={"KASAR_RUN_JOBS": "true"}) as servers:
        urls = [s.url for s in servers]
        exporter = Exporter(urls, token, before)
        thread = threading.Thread(target=exporter.run)
        thread.start()
        try:
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(CLIENTS, mp_context=spawn) as pool:
                futures = [
                    pool.submit(run_client, urls, token, seed, RECORDS) for seed in range(CLIENTS)
                ]
                reports = [f.result(timeout=900) for f in futures]
        finally:
            exporter.done.set()
            thread.join(timeout=300)
        assert not thread.is_alive(), "the exporter did not stop"
        exporter.check_jobs()
        logs = "\n".join(s.log_text() for s in servers)
    elapsed = time.monotonic() - started
    problems = [p for r in reports for p in r["problems"]]
    assert not problems, problems[:5]
    assert not exporter.failures, exporter.failures[:5]
    assert exporter.count >= 3, "too few exports ran during the imports"
    assert "database is locked" not in logs.lower()
    assert sum(r["created"] for r in reports) == RECORDS
    assert all(r["created"] + r["duplicates"] == RECORDS and not r["failed"] for r in reports)
    created = [i for r in reports for i in r["created_ids"]]
    assert len(created) == len(set(created)) == RECORDS
    with read_transaction(engine) as conn:
        ws = load_workspace(conn)
        contacts, companies = ws.table("contacts"), ws.table("companies")
        rows = conn.execute(select(contacts)).mappings().all()
        company_names = conn.execute(select(companies.c.name)).scalars().all()
        total = conn.execute(select(func.count()).select_from(contacts)).scalar_one()
    assert total == PRELOADED + RECORDS
    assert {r["id"] for r in rows} == before | set(created)
    loads = [r for r in rows if r["job_title"] == "load"]
    assert sorted(r["first_name"].lower() for r in loads) == sorted(
        x["first_name"].lower() for x in shared_records(RECORDS)
    )
    for key in ("email", "phone"):
        values = Counter((r[key] or "").lower() for r in rows if r[key])
        assert all(n == 1 for n in values.values()), [v for v, n in values.items() if n > 1][:5]
    assert len(company_names) == len(COMPANIES), company_names
    assert not integrity_problems(engine)
    statuses = Counter()
    for r in reports:
        statuses.update(r["statuses"])
    print(
        f"\nload ({engine.dialect.name}): {CLIENTS} clients x {RECORDS} records through "
        f"{SERVERS} servers, {sum(statuses.values())} import requests {dict(statuses)}, "
        f"{exporter.count} consistent exports (sizes {exporter.sizes[0]}..{exporter.sizes[-1]}) "
        f"and {len(exporter.jobs)} export jobs, "
        f"{elapsed:.0f} s"
    )


def test_the_rate_limit_is_one_count_across_server_processes(
    db_url: str, engine: Engine, make_token: Any
) -> None:
    limit = 6
    token = make_token("member")
    with live_servers(db_url, 2, env={"KASAR_RATE_LIMIT_PER_MINUTE": str(limit)}) as servers:
        while time.time() % 60 > 45:  # all the requests in one window
            time.sleep(1)
        answers = []
        for k in range(limit + 2):
            url = servers[k % 2].url + "/api/v1/me"
            answers.append(httpx.get(url, headers=bearer(token), timeout=30))
    assert [a.status_code for a in answers[:limit]] == [200] * limit
    for a in answers[limit:]:
        assert_error(a, 429, "RATE_LIMITED")
        assert 1 <= int(a.headers["Retry-After"]) <= 60
