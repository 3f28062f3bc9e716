"""Operations: request ids in headers and logs, the OpenAPI document, and
``kasar serve`` as a real server (several worker processes)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from support import free_port


def test_request_id_in_header_and_log_lines(
    client: TestClient, admin_headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    r = client.get("/api/v1/me", headers={**admin_headers, "X-Request-ID": "trace-123"})
    assert r.headers["x-request-id"] == "trace-123"
    other = client.get("/api/v1/me", headers={**admin_headers, "X-Request-ID": "bad id"})
    assert other.headers["x-request-id"] != "bad id"
    assert len(other.headers["x-request-id"]) == 32
    caplog.set_level(logging.INFO, logger="kasar")
    client.get("/api/v1/records/contacts", headers={**admin_headers, "X-Request-ID": "trace-456"})
    lines = [rec for rec in caplog.records if getattr(rec, "request_id", None) == "trace-456"]
    assert lines, "the access log line names the request id"
    assert "GET /api/v1/records/contacts -> 200" in lines[-1].getMessage()


def test_openapi_documents_errors(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert "ErrorBody" in doc["components"]["schemas"]
    for path, methods in doc["paths"].items():
        if path.endswith("/health"):
            continue
        for method, op in methods.items():
            assert "401" in op["responses"], (method, path)
            assert "500" in op["responses"], (method, path)
            is_action = path.endswith(("/move", "/cancel", "/undo"))
            if method in ("post", "patch", "put") and not is_action:
                assert "requestBody" in op, (method, path)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def test_kasar_serve_with_workers(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    kasar = str(Path(sys.executable).with_name("kasar"))
    proc = subprocess.Popen(
        [kasar, "serve", "--port", str(port), "--workers", "2", "--database-url", db_url],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        statuses = {
            httpx.get(f"http://127.0.0.1:{port}/api/v1/me", timeout=5).status_code
            for _ in range(10)
        }
        assert statuses == {401}
        deadline = time.monotonic() + 10
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_children(proc.pid)) >= 2
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert b"No admin user yet" in out
