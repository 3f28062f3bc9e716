"""Every error response the suite provokes has the spec's shape: conftest.py checks
each one; these tests make sure the check itself bites, and cover the framework's
own errors (unknown route, wrong method, malformed JSON, bad query types)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from support import assert_error_shape


def test_checker_rejects_other_shapes() -> None:
    with pytest.raises(AssertionError):
        assert_error_shape(400, {"detail": "x"})
    with pytest.raises(AssertionError):
        assert_error_shape(500, {"code": "INTERNAL_ERROR", "message": "boom"})
    with pytest.raises(AssertionError):
        assert_error_shape(400, {"code": "VALIDATION_ERROR", "message": "x", "extra": 1})


def test_framework_errors_use_the_shape(client: TestClient, admin_headers: dict[str, str]) -> None:
    cases = [
        client.get("/api/v1/nowhere", headers=admin_headers),
        client.delete("/api/v1/me", headers=admin_headers),
        client.post("/api/v1/records/contacts", headers=admin_headers, content=b"{not json"),
        client.post("/api/v1/records/contacts", headers=admin_headers, content=b"[1, 2]"),
        client.get("/api/v1/records/contacts", headers=admin_headers, params={"limit": "many"}),
        client.get("/api/v1/records/contacts"),
    ]
    statuses = [r.status_code for r in cases]
    assert statuses == [404, 405, 400, 400, 400, 401]
    codes = [r.json()["code"] for r in cases]
    assert codes == [
        "NOT_FOUND",
        "METHOD_NOT_ALLOWED",
        "VALIDATION_ERROR",
        "VALIDATION_ERROR",
        "VALIDATION_ERROR",
        "UNAUTHENTICATED",
    ]
    for r in cases:
        assert r.headers["x-request-id"]
