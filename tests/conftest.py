"""One database fixture, parametrised over SQLite and PostgreSQL.

Each test gets its own database: SQLite, a copy of a migrated template file;
PostgreSQL, ``CREATE DATABASE ... TEMPLATE`` of a migrated template database
(about 60 ms), dropped after the test. Under ``CI=true`` a PostgreSQL that cannot
be reached fails the run instead of skipping.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.testclient import TestClient as StarletteClient

from kasar.app import create_app
from kasar.auth.service import create_token, create_user
from kasar.db.engine import make_engine, write_transaction
from kasar.db.migrate import upgrade
from support import assert_error_shape, database_copy, free_port, pg_admin, pg_url

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RUN_ID = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    try:
        admin = pg_admin()
    except psycopg.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI and is not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    name = f"kasar_tpl_{RUN_ID}"
    admin.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(pg_url(name))
    upgrade(engine)
    engine.dispose()
    yield name
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_copy(request, request.param, tmp_path) as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def live_server(engine: Engine) -> Iterator[str]:
    """The real app under uvicorn on a free port, stopped after the test."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


TokenFactory = Callable[..., str]


@pytest.fixture
def make_token(engine: Engine) -> TokenFactory:
    """``make_token(role="admin")`` creates a user of that role and returns a token."""

    def factory(role: str = "admin", email: str | None = None) -> str:
        with write_transaction(engine) as conn:
            user = create_user(
                conn, email or f"{role}-{uuid.uuid4().hex[:8]}@example.com", role=role
            )
            return create_token(conn, user)

    return factory


@pytest.fixture
def admin_headers(make_token: TokenFactory) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token('admin')}"}


@pytest.fixture
def member_headers(make_token: TokenFactory) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token('member')}"}


@pytest.fixture(autouse=True)
def _check_every_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wrap TestClient so that every 4xx/5xx answer of any test is checked."""
    original = StarletteClient.request

    def checked(self: StarletteClient, *args: Any, **kwargs: Any) -> Any:
        response = original(self, *args, **kwargs)
        if response.status_code >= 400 and response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            assert_error_shape(response.status_code, response.json())
        return response

    monkeypatch.setattr(StarletteClient, "request", checked)
