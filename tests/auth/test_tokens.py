"""Users, roles and tokens: through the API and the CLI, on both databases."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from kasar.cli import app as cli
from kasar.db import tables
from kasar.db.engine import read_transaction


def test_me(client: TestClient, make_token: object) -> None:
    token = make_token("admin", "boss@example.com")  # type: ignore[operator]
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"userId", "isAdmin", "scopes", "profile"}
    assert body["isAdmin"] is True and body["profile"] == {
        "full_name": "boss",
        "email": "boss@example.com",
    }
    member = make_token("member")  # type: ignore[operator]
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {member}"}).json()["isAdmin"]
        is False
    )


def test_unknown_malformed_and_missing_tokens_get_the_same_401(client: TestClient) -> None:
    bodies = []
    for header in (
        {},
        {"Authorization": "Bearer ksr_nope"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
    ):
        r = client.get("/api/v1/me", headers=header)
        assert r.status_code == 401
        bodies.append(r.json())
    assert all(b == bodies[0] for b in bodies)
    assert bodies[0]["code"] == "UNAUTHENTICATED"


def test_health_needs_no_token(client: TestClient) -> None:
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_cli_users_and_tokens(db_url: str, client: TestClient, engine: Engine) -> None:
    runner = CliRunner()
    env = {"KASAR_DATABASE_URL": db_url}
    r = runner.invoke(
        cli, ["users", "create", "ops@example.com", "--role", "admin", "--name", "Ops"], env=env
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["tokens", "create", "ops@example.com", "--name", "laptop"], env=env)
    assert r.exit_code == 0, r.output
    token = r.stdout.strip().splitlines()[-1]
    assert token.startswith("ksr_") and len(token) >= 36
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).json()["profile"]["full_name"] == "Ops"

    with read_transaction(engine) as conn:
        stored = [tuple(row) for row in conn.execute(select(tables.tokens))]
    assert stored and all(token not in str(row) for row in stored), "only a hash may be stored"

    listing = runner.invoke(cli, ["tokens", "list", "ops@example.com"], env=env)
    assert listing.exit_code == 0 and token[:12] in listing.stdout and token not in listing.stdout
    assert "active" in listing.stdout

    r = runner.invoke(cli, ["tokens", "revoke", token[:12]], env=env)
    assert r.exit_code == 0, r.output
    revoked = client.get("/api/v1/me", headers=headers)
    unknown = client.get("/api/v1/me", headers={"Authorization": "Bearer ksr_" + "x" * 43})
    assert revoked.status_code == unknown.status_code == 401
    assert revoked.json() == unknown.json()
    assert "revoked" in runner.invoke(cli, ["tokens", "list"], env=env).stdout


def test_cli_errors_are_clear(db_url: str) -> None:
    runner = CliRunner()
    env = {"KASAR_DATABASE_URL": db_url}
    r = runner.invoke(cli, ["users", "create", "not-an-email"], env=env)
    assert r.exit_code == 2 and "VALIDATION_ERROR" in r.output
    r = runner.invoke(cli, ["tokens", "create", "ghost@example.com"], env=env)
    assert r.exit_code == 4 and "No user" in r.output
    r = runner.invoke(cli, ["users", "create", "x@example.com", "--role", "owner"], env=env)
    assert r.exit_code == 2 and "Role" in r.output
