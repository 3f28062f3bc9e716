"""Fuzzing (issue 8): Schemathesis over the OpenAPI document with an admin token,
no 5xx and no answer outside the documented schema. The document is fuzzed as
published (any object name, any body) and specialised per standard object
(``fuzzdoc``), so that examples get past the object check into validation,
matching, filters and exports. The fast suite runs the specialised document on
SQLite with a modest budget; ``slow`` runs both, with more examples, on both
databases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine

from kasar.app import create_app
from kasar.auth.service import create_token, create_user
from kasar.db.engine import make_engine, write_transaction
from kasar.settings import get_settings
from reliability.checks import integrity_problems
from reliability.fuzzdoc import fuzz_document, seed_records
from support import assert_error_shape, database_copy

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
FAST_EXAMPLES = 20
SLOW_EXAMPLES = 150


# The document does not depend on the database: load it once, from an app whose
# engine is never used.
DOCUMENT = create_app(make_engine("sqlite://")).openapi()
raw = schemathesis.openapi.from_dict(DOCUMENT)
deep = schemathesis.openapi.from_dict(fuzz_document(DOCUMENT))
FAST = {"deadline": None, "suppress_health_check": list(HealthCheck), "derandomize": True}
SLOW = {"deadline": None, "suppress_health_check": list(HealthCheck)}
Target = tuple[FastAPI, Engine, dict[str, str]]


@contextmanager
def fuzz_app(request: pytest.FixtureRequest, kind: str) -> Iterator[Target]:
    """An app on a database of its own for the whole module (the fuzzer's state
    accumulates, as a real workspace's would), seeded with records the specialised
    document knows, with no job worker and no rate limit in the way."""
    settings_ = get_settings()
    saved = settings_.run_jobs, settings_.rate_limit_per_minute
    settings_.run_jobs, settings_.rate_limit_per_minute = "false", 0
    tmp = request.getfixturevalue("tmp_path_factory").mktemp("fuzz")
    with database_copy(request, kind, tmp) as url:
        engine = make_engine(url)
        try:
            with write_transaction(engine) as conn:
                token = create_token(conn, create_user(conn, "fuzz@example.com", role="admin"))
            headers = {"Authorization": f"Bearer {token}"}
            application = create_app(engine)
            client = TestClient(application)
            for name, records in seed_records().items():
                r = client.post(
                    f"/api/v1/import/{name}", headers=headers, json={"records": records}
                )
                assert r.status_code == 200 and r.json()["created"] == len(records), r.text
            yield application, engine, headers
        finally:
            engine.dispose()
            settings_.run_jobs, settings_.rate_limit_per_minute = saved


@pytest.fixture(scope="module")
def sqlite_app(request: pytest.FixtureRequest) -> Iterator[Target]:
    with fuzz_app(request, "sqlite") as app:
        yield app


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def any_app(request: pytest.FixtureRequest) -> Iterator[Target]:
    with fuzz_app(request, request.param) as app:
        yield app


def call(case: Case, target: Target) -> None:
    app, engine, headers = target
    response = case.call_and_validate(app=app, headers=headers, checks=CHECKS)
    if response.status_code >= 400 and "json" in response.headers.get("content-type", [""])[0]:
        assert_error_shape(response.status_code, response.json())
    if case.method != "GET" and "/import/" in case.operation.path:
        assert not integrity_problems(engine)


@deep.parametrize()
@settings(max_examples=FAST_EXAMPLES, **FAST)
def test_api_fuzz(case: Case, sqlite_app: Target) -> None:
    call(case, sqlite_app)


@pytest.mark.slow
@deep.parametrize()
@settings(max_examples=SLOW_EXAMPLES, **SLOW)
def test_api_fuzz_long(case: Case, any_app: Target) -> None:
    call(case, any_app)


@pytest.mark.slow
@raw.parametrize()
@settings(max_examples=SLOW_EXAMPLES // 3, **SLOW)
def test_api_fuzz_published_document_long(case: Case, any_app: Target) -> None:
    call(case, any_app)
