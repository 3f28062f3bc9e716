"""The per-token rate limit, counted in the database (shared by every process)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from kasar.auth.ratelimit import check_rate, count_hit, enforce
from kasar.db import tables
from kasar.db.engine import read_transaction, write_transaction
from kasar.errors import RateLimited
from kasar.settings import get_settings


def test_429_with_retry_after_per_token(
    client: TestClient, make_token: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "rate_limit_per_minute", 5)
    first = {"Authorization": f"Bearer {make_token('member')}"}  # type: ignore[operator]
    second = {"Authorization": f"Bearer {make_token('member')}"}  # type: ignore[operator]
    statuses = [client.get("/api/v1/me", headers=first).status_code for _ in range(5)]
    assert statuses == [200] * 5
    limited = client.get("/api/v1/me", headers=first)
    assert limited.status_code == 429
    assert limited.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert client.get("/api/v1/me", headers=second).status_code == 200


def test_windows_roll_over(engine: Engine) -> None:
    start = 1_800_000_000.0 - (1_800_000_000 % 60)
    for _ in range(3):
        check_rate(engine, "subject", 3, now=start + 1)
    with pytest.raises(RateLimited) as caught:
        check_rate(engine, "subject", 3, now=start + 50)
    assert caught.value.retry_after == 10
    check_rate(engine, "subject", 3, now=start + 61)  # a new window


def test_unauthenticated_requests_are_not_counted(client: TestClient, engine: Engine) -> None:
    for header in ("Bearer nope", "Bearer kasar_" + "x" * 43, ""):
        answer = client.get("/api/v1/me", headers={"Authorization": header})
        assert answer.status_code == 401
    with read_transaction(engine) as conn:
        assert conn.execute(select(func.count()).select_from(tables.rate_limits)).scalar() == 0


def test_counting_inside_a_transaction(engine: Engine) -> None:
    start = 1_800_000_000.0 - (1_800_000_000 % 60)
    for expected in (1, 2, 3):
        with write_transaction(engine) as conn:
            assert count_hit(conn, "subject", now=start + 1) == expected
    enforce(3, 3, now=start + 1)
    with pytest.raises(RateLimited) as caught:
        enforce(4, 3, now=start + 50)
    assert caught.value.retry_after == 10
    with write_transaction(engine) as conn:
        assert count_hit(conn, "subject", now=start + 61) == 1  # a new window
