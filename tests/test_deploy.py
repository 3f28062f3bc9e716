"""docs/deploy.md, done on this machine: two ``kasar serve`` processes and two
``kasar worker`` processes on one PostgreSQL database; two overlapping import jobs
and concurrent batch imports through both servers; every row lands exactly once."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from kasar.auth.service import create_token, create_user
from kasar.db.engine import make_engine, write_transaction
from support import database_copy, free_port

KASAR = str(Path(sys.executable).with_name("kasar"))


@pytest.fixture
def deploy_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_copy(request, "postgresql", tmp_path) as url:
        yield url


def people(start: int, stop: int) -> list[dict[str, str]]:
    return [
        {"first_name": f"F{i}", "last_name": f"L{i}", "email": f"p{i}@ex.com"}
        for i in range(start, stop)
    ]


def as_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, ["first_name", "last_name", "email"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def test_two_servers_and_two_workers_on_one_postgresql(deploy_url: str, tmp_path: Path) -> None:
    engine = make_engine(deploy_url)
    with write_transaction(engine) as conn:
        token = create_token(conn, create_user(conn, "ops@example.com", role="admin"))
    engine.dispose()
    headers = {"Authorization": f"Bearer {token}"}
    env = {**os.environ, "KASAR_DATABASE_URL": deploy_url, "KASAR_RUN_JOBS": "false"}
    log = tmp_path / "processes.log"
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for _ in range(2):
            port = free_port()
            cmd = [KASAR, "serve", "--port", str(port)]
            procs.append(
                subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
            )
            urls.append(f"http://127.0.0.1:{port}")
        for _ in range(2):
            cmd = [KASAR, "worker", "--poll", "0.2"]
            procs.append(
                subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
            )
        for url, proc in zip(urls, procs, strict=False):
            wait_healthy(url, proc, log)

        # job A: rows 0..11999, job B: rows 8000..19999, batches: rows 18000..21999
        jobs = []
        for url, (start, stop) in zip(urls, [(0, 12_000), (8_000, 20_000)], strict=True):
            r = httpx.post(
                f"{url}/api/v1/import-jobs",
                headers=headers,
                files={"file": ("people.csv", as_csv(people(start, stop)), "text/csv")},
                data={"options": json.dumps({"object": "contacts"})},
                timeout=60,
            )
            assert r.status_code == 202, r.text
            jobs.append(r.json()["id"])

        created: list[int] = []
        failures: list[str] = []

        def send_batches(url: str, first: int) -> None:
            with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
                for start in range(first, 22_000, 100):
                    body = {"records": people(start, start + 50)}
                    r = client.post("/api/v1/import/contacts", json=body)
                    if r.status_code != 200:
                        failures.append(r.text)
                    else:
                        created.append(r.json()["created"])

        threads = [
            threading.Thread(target=send_batches, args=(urls[0], 18_000)),
            threading.Thread(target=send_batches, args=(urls[1], 18_050)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []

        deadline = time.monotonic() + 300
        states: list[dict[str, object]] = []
        while True:
            states = [
                httpx.get(f"{urls[i % 2]}/api/v1/import-jobs/{j}", headers=headers).json()
                for i, j in enumerate(jobs)
            ]
            if all(s["state"] not in ("queued", "running") for s in states):
                break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        assert [s["state"] for s in states] == ["completed", "completed"], states

        with psycopg.connect(deploy_url.replace("+psycopg", "")) as conn:
            total, emails = conn.execute(
                "SELECT count(*), count(DISTINCT email) FROM obj_contacts"
            ).fetchone() or (0, 0)
        assert (total, emails) == (22_000, 22_000)
        job_created = sum(int(s["counters"]["created"]) for s in states)  # type: ignore[index]
        assert job_created + sum(created) == 22_000
        for s in states:
            counters = s["counters"]
            assert counters["rows_read"] == 12_000  # type: ignore[index]
            assert counters["created"] + counters["duplicates"] == 12_000  # type: ignore[index]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
