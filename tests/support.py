"""Helpers shared by the tests (importable as `support`)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine

from kasar.db.engine import read_transaction
from kasar.jobs import repository as jobs_repo
from kasar.jobs.runtime import run_one

PG_ADMIN_URL = os.environ.get("KASAR_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

LEAKS = re.compile(
    r"Traceback|\bSELECT\b.*\bFROM\b|sqlalchemy|psycopg|sqlite3|/site-packages/|File \""
)

ALLOWED_CODES = {
    "INVALID_OBJECT",
    "VALIDATION_ERROR",
    "UNAUTHENTICATED",
    "PERMISSION_DENIED",
    "NOT_FOUND",
    "CONFLICT",
    "PAYLOAD_TOO_LARGE",
    "RATE_LIMITED",
    "INTERNAL_ERROR",
    "METHOD_NOT_ALLOWED",
}


def assert_error_shape(status: int, body: Any) -> None:
    assert isinstance(body, dict), body
    assert set(body) <= {"code", "message", "details"}, body
    assert body["code"] in ALLOWED_CODES, body
    assert isinstance(body["message"], str) and body["message"], body
    text = str(body)
    assert not LEAKS.search(text), body
    assert status < 500, body


def free_port() -> int:
    """A TCP port nobody listens on now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_admin() -> psycopg.Connection:
    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)


def pg_url(dbname: str) -> str:
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{dbname}"


@contextmanager
def database_copy(request: pytest.FixtureRequest, kind: str, tmp: Path) -> Iterator[str]:
    """A migrated database of its own, copied from the session's template (a SQLite
    file in ``tmp``, or a PostgreSQL database made from the template and dropped at
    the end): what ``db_url`` gives each test, for fixtures that need more."""
    if kind == "sqlite":
        path = tmp / f"kasar_{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"kasar_t_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield pg_url(name)
    finally:
        with pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_jobs(engine: Engine) -> None:
    """Run every queued job to its end, here, with the worker's own ``run_one``."""
    while run_one(engine, "test-worker"):
        pass


def job_of(engine: Engine, job_id: str) -> dict[str, Any]:
    """A job as the API shows it."""
    with read_transaction(engine) as conn:
        return jobs_repo.get_job(conn, job_id).to_api()
