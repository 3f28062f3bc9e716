"""Tokens (issue 8): only hashes are stored, the raw token shows nowhere after its
creation (database file and WAL, logs, answers, the CLI), revoked and unknown
tokens are refused alike, and the per-token rate limit answers 429 with
``Retry-After``."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text, update
from typer.testing import CliRunner

from kasar.auth import ratelimit
from kasar.auth.service import hash_token
from kasar.cli import app as cli
from kasar.db import tables
from kasar.db.engine import is_sqlite, read_transaction, write_transaction
from kasar.schema.repository import load_workspace
from kasar.settings import get_settings
from reliability.checks import assert_error, bearer, table_counts

TOKEN = re.compile(r"ksr_[A-Za-z0-9_-]{32,}")


def database_bytes(db_url: str, engine: Engine) -> bytes:
    """Everything the database holds: the SQLite file, its WAL and shared memory as
    bytes; on PostgreSQL, every row of every table as text."""
    if is_sqlite(engine):
        path = Path(db_url.removeprefix("sqlite:///"))
        parts = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
        assert Path(f"{path}-wal") in parts, "the test wants a WAL to look into"
        return b"".join(p.read_bytes() for p in parts)
    out = []
    with read_transaction(engine) as conn:
        names = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).scalars()
        for name in list(names):
            for row in conn.execute(text(f'SELECT * FROM "{name}"')):
                out.append(repr(tuple(row)))
    return "\n".join(out).encode()


def test_only_hashes_are_stored_and_the_token_shows_nowhere_after_creation(
    db_url: str,
    engine: Engine,
    client: TestClient,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="kasar")
    runner = CliRunner()
    env = {"KASAR_DATABASE_URL": db_url}
    r = runner.invoke(cli, ["users", "create", "sec@example.com", "--role", "admin"], env=env)
    assert r.exit_code == 0, r.output
    tokens = []
    for name in ("laptop", "ci", "old"):
        r = runner.invoke(cli, ["tokens", "create", "sec@example.com", "--name", name], env=env)
        assert r.exit_code == 0, r.output
        tokens.append(r.output.strip().splitlines()[-1])
        assert TOKEN.fullmatch(tokens[-1]), r.output
    caplog.clear()
    capfd.readouterr()
    laptop, ci, old = tokens
    outputs: list[str] = []
    r = runner.invoke(cli, ["tokens", "revoke", old], env=env)
    assert r.exit_code == 0, r.output
    outputs.append(r.output)
    outputs.append(runner.invoke(cli, ["tokens", "list"], env=env).output)
    answers = [
        client.get("/api/v1/me", headers=bearer(laptop)),
        client.post(
            "/api/v1/import/contacts",
            headers=bearer(ci),
            json={"records": [{"first_name": "Tok", "notes": "not a token"}]},
        ),
        client.get("/api/v1/export/contacts", headers=bearer(ci), params={"format": "csv"}),
        client.get("/api/v1/records/contacts", headers=bearer(laptop)),
        client.get("/api/v1/me", headers=bearer(old)),
        client.get("/api/v1/me", headers=bearer(laptop + "x")),
        client.get("/api/v1/me", headers=bearer(laptop.upper())),
        client.get("/api/v1/nowhere", headers=bearer(laptop)),
        client.get("/api/v1/records/contacts", headers=bearer(laptop), params={"limit": "0"}),
    ]
    with write_transaction(engine) as conn:  # make sure the WAL holds fresh pages too
        conn.execute(update(tables.tokens).values(last_used_at=None))
    data = database_bytes(db_url, engine)
    for token in tokens:
        secret = token[12:]  # the first 12 characters are the prefix `list` shows
        assert secret.encode() not in data and token.encode() not in data
        assert hash_token(token).encode() in data  # the scan does see the table
    captured = capfd.readouterr()
    texts = [
        caplog.text,
        captured.out,
        captured.err,
        *outputs,
        *(a.text for a in answers),
        *(repr(dict(a.headers)) for a in answers),
    ]
    for where in texts:
        for token in tokens:
            assert token[12:] not in where
            assert token[12:].upper() not in where
    assert tokens[0][:12] in outputs[1]  # `list` shows prefixes


def unauthorized(client: TestClient, headers: dict[str, str], method: str, path: str) -> Any:
    r = client.request(method, path, headers=headers, json={"records": [{"first_name": "X"}]})
    body = assert_error(r, 401, "UNAUTHENTICATED")
    visible = {k: v for k, v in r.headers.items() if k not in ("x-request-id", "date")}
    return body, visible


def test_revoked_unknown_and_inactive_tokens_get_the_same_401(
    db_url: str, engine: Engine, client: TestClient, make_token: Any
) -> None:
    revoked, inactive, good = make_token("admin"), make_token("admin"), make_token("admin")
    with write_transaction(engine) as conn:
        conn.execute(
            update(tables.tokens)
            .where(tables.tokens.c.token_hash == hash_token(revoked))
            .values(revoked_at=tables.tokens.c.created_at)
        )
        user_id = conn.execute(
            select(tables.tokens.c.user_id).where(
                tables.tokens.c.token_hash == hash_token(inactive)
            )
        ).scalar_one()
        conn.execute(update(tables.users).where(tables.users.c.id == user_id).values(active=False))
    unknown = "ksr_" + "A" * 43
    variants = [
        bearer(revoked),
        bearer(inactive),
        bearer(unknown),
        bearer(good[:-1]),
        bearer(good + " extra"),
        bearer(revoked.replace("ksr_", "KSR_")),
        {"Authorization": f"Basic {good}"},
        {"Authorization": good},
        {"Authorization": "Bearer"},
        {},
    ]
    before = None
    for method, path in (
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/records/contacts"),
        ("POST", "/api/v1/import/contacts"),
        ("GET", "/api/v1/export/contacts"),
        ("POST", "/api/v1/records/contacts"),
        ("DELETE", "/api/v1/records/contacts/x"),
        ("POST", "/api/v1/import/no_such_object"),
    ):
        for headers in variants:
            answer = unauthorized(client, headers, method, path)
            before = before or answer
            assert answer == before, (method, path, headers)
    with read_transaction(engine) as conn:
        assert not conn.execute(select(load_workspace(conn).table("contacts"))).first()
    assert client.get("/api/v1/me", headers=bearer(good)).status_code == 200


def test_the_rate_limit_answers_429_with_retry_after(
    client: TestClient, engine: Engine, make_token: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 5
    monkeypatch.setattr(get_settings(), "rate_limit_per_minute", limit)
    clock = SimpleNamespace(now=1_800_000_000.0 - 1_800_000_000 % 60 + 15)
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: clock.now))
    admin, other = make_token("admin"), make_token("member")
    routes = [("GET", "/api/v1/me"), ("GET", "/api/v1/records/contacts")]
    for i in range(limit):
        method, path = routes[i % 2]
        assert client.request(method, path, headers=bearer(admin)).status_code == 200
    for method, path, body in (
        ("GET", "/api/v1/me", None),
        ("POST", "/api/v1/import/contacts", {"records": [{"first_name": "Late"}]}),
        ("GET", "/api/v1/export/contacts", None),
    ):
        r = client.request(method, path, headers=bearer(admin), json=body)
        assert_error(r, 429, "RATE_LIMITED")
        assert r.headers["Retry-After"] == "45"  # seconds to the end of the window
    assert table_counts(engine)["contacts"] == 0  # the refused import wrote nothing
    # Unknown tokens are refused (401) before they are counted, and other tokens
    # have their own count.
    assert_error(
        client.get("/api/v1/me", headers=bearer("ksr_" + "B" * 43)), 401, "UNAUTHENTICATED"
    )
    assert client.get("/api/v1/me", headers=bearer(other)).status_code == 200
    clock.now += 45
    assert client.get("/api/v1/me", headers=bearer(admin)).status_code == 200
