"""The one error shape of Kasar, raised by every layer and rendered by every shell.

Hierarchy::

    KasarError(code, message, status, details)
    ├── InvalidObject        400 INVALID_OBJECT
    ├── ValidationFailed     400 VALIDATION_ERROR
    ├── Unauthenticated      401 UNAUTHENTICATED
    ├── PermissionDenied     403 PERMISSION_DENIED
    ├── NotFound             404 NOT_FOUND
    ├── Conflict             409 CONFLICT
    ├── PayloadTooLarge      413 PAYLOAD_TOO_LARGE
    ├── RateLimited          429 RATE_LIMITED
    └── InternalError        500 INTERNAL_ERROR

HTTP routes render ``to_body()``; the CLI maps ``status`` to an exit code; the MCP
server returns the same code and message as a tool error.
"""

from __future__ import annotations

from typing import Any


class KasarError(Exception):
    code = "INTERNAL_ERROR"
    status = 500

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class InvalidObject(KasarError):
    code = "INVALID_OBJECT"
    status = 400

    def __init__(self, object_name: str) -> None:
        super().__init__(f"Object '{object_name}' does not exist")


class ValidationFailed(KasarError):
    code = "VALIDATION_ERROR"
    status = 400


class Unauthenticated(KasarError):
    code = "UNAUTHENTICATED"
    status = 401

    def __init__(self, message: str = "A valid API token is required") -> None:
        super().__init__(message)


class PermissionDenied(KasarError):
    code = "PERMISSION_DENIED"
    status = 403

    def __init__(self, message: str = "This action requires an admin token") -> None:
        super().__init__(message)


class NotFound(KasarError):
    code = "NOT_FOUND"
    status = 404


class Conflict(KasarError):
    code = "CONFLICT"
    status = 409


class PayloadTooLarge(KasarError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413


class RateLimited(KasarError):
    code = "RATE_LIMITED"
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many requests; retry in {retry_after} s")
        self.retry_after = retry_after


class InternalError(KasarError):
    code = "INTERNAL_ERROR"
    status = 500

    def __init__(self, message: str = "Internal error") -> None:
        super().__init__(message)
