"""The ``kasar`` command's client for a remote server (``--server URL --token T``).

It speaks the public HTTP API only, and turns an error answer back into a
``KasarError`` with the server's code and status, so that the command prints it and
exits exactly as it would have locally.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from kasar.errors import KasarError, ValidationFailed
from kasar.imports.service import ImportOptions
from kasar.schema.model import FieldDef, ObjectDef
from kasar.schema.types import FieldType

BATCH_SIZE = 50  # the most POST /api/v1/import/{object} takes
RETRIES = 5
TIMEOUT = httpx.Timeout(30.0, read=330.0)  # an import may run up to 300 s


class RemoteError(KasarError):
    """An error answer of the server (or no answer at all)."""

    def __init__(self, code: str, message: str, status: int, details: Any = None) -> None:
        super().__init__(message, details)
        self.code = code
        self.status = status


class Remote:
    def __init__(self, server: str, token: str | None) -> None:
        if not token:
            raise ValidationFailed("--server needs a token: --token or KASAR_TOKEN")
        self.server = server.rstrip("/")
        self.client = httpx.Client(
            base_url=self.server + "/api/v1",
            headers={"Authorization": f"Bearer {token}", "User-Agent": "kasar-cli"},
            timeout=TIMEOUT,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(RETRIES + 1):
            response = self._send(lambda: self.client.request(method, path, **kwargs))
            if response.status_code != 429 or attempt == RETRIES:
                break
            time.sleep(min(60.0, float(response.headers.get("retry-after", "1") or 1)))
        _raise_for_error(response)
        return response

    def field_names(self, object_name: str) -> list[str]:
        """Every key a record of the object can be written with (as ``ObjectDef.all_keys``)."""
        doc = self.request("GET", f"/schema/{object_name}").json()
        fields = tuple(
            FieldDef(f["name"], f.get("label", f["name"]), _field_type(f.get("type")))
            for f in doc.get("fields", [])
        )
        return ObjectDef(doc.get("name", object_name), doc.get("label", ""), fields).all_keys()

    def import_batch(
        self, object_name: str, records: list[dict[str, object]], options: ImportOptions
    ) -> dict[str, Any]:
        params = {"dry_run": str(options.dry_run).lower(), "on_duplicate": options.on_duplicate}
        response = self.request(
            "POST", f"/import/{object_name}", params=params, json={"records": records}
        )
        answer: dict[str, Any] = response.json()
        return answer

    @contextmanager
    def stream(self, path: str, params: dict[str, str]) -> Iterator[httpx.Response]:
        request = self.client.build_request("GET", path, params=params)
        response = self._send(lambda: self.client.send(request, stream=True))
        try:
            if response.status_code >= 400:
                response.read()
                _raise_for_error(response)
            yield response
        finally:
            response.close()

    def _send(self, call: Any) -> httpx.Response:
        try:
            response: httpx.Response = call()
        except httpx.TransportError as exc:
            raise RemoteError(
                "CONNECTION_ERROR", f"Cannot reach {self.server}: {exc or type(exc).__name__}", 0
            ) from None
        return response


def _field_type(raw: object) -> FieldType:
    try:
        return FieldType(str(raw))
    except ValueError:
        return FieldType.TEXT  # a type this client does not know is written as one key


def _raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "code" in body and "message" in body:
        raise RemoteError(
            str(body["code"]), str(body["message"]), response.status_code, body.get("details")
        )
    request, status = response.request, response.status_code
    reason = response.reason_phrase or "error"
    message = f"{request.method} {request.url} answered {status} {reason}"
    raise RemoteError("HTTP_ERROR", message, status)
