"""Overlapping imports from several real server processes never create two records
that share a strong key (spec §7). PostgreSQL serialises them with advisory locks on
the match keys; SQLite with its single write lock (``BEGIN IMMEDIATE``)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import Engine, select

from kasar.db.engine import read_transaction
from kasar.schema.repository import load_workspace
from support import free_port

SERVERS = 3
REQUESTS_PER_SERVER = 3


@contextmanager
def servers(db_url: str, count: int) -> Iterator[list[str]]:
    """``count`` uvicorn processes serving the app on ``db_url``; killed on exit."""
    env = {**os.environ, "KASAR_DATABASE_URL": db_url, "KASAR_LOG_LEVEL": "WARNING"}
    procs: list[tuple[subprocess.Popen[bytes], Any]] = []
    urls: list[str] = []
    try:
        for _ in range(count):
            port = free_port()
            log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
            cmd = [sys.executable, "-m", "uvicorn", "kasar.app:create_app", "--factory"]
            cmd += ["--port", str(port), "--log-level", "warning"]
            procs.append((subprocess.Popen(cmd, env=env, stdout=log, stderr=log), log))
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        for (proc, log), url in zip(procs, urls, strict=True):
            while True:
                try:
                    if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"server did not start: {log.read().decode()[-2000:]}")
                time.sleep(0.1)
        yield urls
    finally:
        for proc, log in procs:
            proc.kill()
            proc.wait()
            log.close()


def people() -> list[dict[str, Any]]:
    """50 contacts: 40 with an email (some with a phone, all naming one of 5 companies
    in varying case and accents), 10 known by their name alone."""
    rng = random.Random(0)
    out: list[dict[str, Any]] = []
    for i in range(40):
        rec: dict[str, Any] = {
            "first_name": f"P{i}",
            "last_name": "Concurrent",
            "email": f"p{i}@race.io",
        }
        rec["company_name"] = rng.choice([f"Société {i % 5}", f"SOCIETE {i % 5}"])
        if i % 4 == 0:
            rec["phone"] = f"+3361234{i:04d}"
        out.append(rec)
    out += [{"first_name": f"Solo{i}", "last_name": "Name"} for i in range(10)]
    return out


def test_overlapping_imports_from_several_servers(
    db_url: str, engine: Engine, make_token: Any
) -> None:
    headers = {"Authorization": f"Bearer {make_token('admin')}"}
    base = people()
    answers: list[httpx.Response] = []
    lock = threading.Lock()
    start = threading.Barrier(SERVERS * REQUESTS_PER_SERVER)

    def fire(url: str, seed: int) -> None:
        batch = base[:]
        random.Random(seed).shuffle(batch)
        with httpx.Client(timeout=60) as client:
            start.wait()
            r = client.post(
                f"{url}/api/v1/import/contacts", headers=headers, json={"records": batch}
            )
        with lock:
            answers.append(r)

    with servers(db_url, SERVERS) as urls:
        threads = [
            threading.Thread(target=fire, args=(url, n * SERVERS + k))
            for n in range(REQUESTS_PER_SERVER)
            for k, url in enumerate(urls)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    assert [r.status_code for r in answers] == [200] * len(threads), [r.text for r in answers]
    bodies = [r.json() for r in answers]
    assert sum(b["created"] for b in bodies) == len(base)
    assert sum(b["duplicates"] for b in bodies) == len(base) * (len(threads) - 1)
    assert all(b["failed"] == 0 for b in bodies)
    with read_transaction(engine) as conn:
        ws = load_workspace(conn)
        contacts = ws.table("contacts")
        rows = conn.execute(select(contacts.c.email, contacts.c.first_name, contacts.c.phone)).all()
        companies = conn.execute(select(ws.table("companies").c.name)).scalars().all()
    emails = Counter(r.email for r in rows if r.email)
    assert emails == Counter({f"p{i}@race.io": 1 for i in range(40)})
    assert Counter(r.first_name for r in rows) == Counter(r["first_name"] for r in base)
    phones = [r.phone for r in rows if r.phone]
    assert len(phones) == len(set(phones)) == 10
    assert len(companies) == 5
