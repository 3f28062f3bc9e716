"""Fixtures of the reliability battery: the app without its background worker
(tests run jobs themselves) and a tight body cap. Real server processes come from
``live.py``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kasar.app import create_app
from kasar.settings import get_settings

SMALL_CAP = 64 * 1024


@pytest.fixture
def api(engine: Engine) -> Iterator[TestClient]:
    """The real app, without its lifespan: no worker thread runs jobs behind the test."""
    yield TestClient(create_app(engine), raise_server_exceptions=False)


@pytest.fixture
def small_cap(monkeypatch: pytest.MonkeyPatch) -> int:
    """``max_body_bytes`` lowered to 64 KiB for this test (in this process)."""
    monkeypatch.setattr(get_settings(), "max_body_bytes", SMALL_CAP)
    return SMALL_CAP
