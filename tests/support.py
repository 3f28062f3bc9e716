"""Helpers shared by the tests (importable as `support`)."""

from __future__ import annotations

import re
import socket
from typing import Any

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
