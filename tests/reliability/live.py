"""Real server processes for the reliability battery: uvicorn on a free port,
killed (``SIGKILL``) or stopped on exit, with its log kept in a file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from support import free_port

START_TIMEOUT = 60.0


class LiveServer:
    """One ``uvicorn kasar.app:create_app`` process on ``db_url``."""

    def __init__(
        self, db_url: str, *, env: dict[str, str] | None = None, log_level: str = "warning"
    ):
        self.db_url = db_url
        self.env = env or {}
        self.log_level = log_level
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        fd, name = tempfile.mkstemp(prefix="kasar-live-", suffix=".log")
        os.close(fd)
        self.log_path = Path(name)

    def start(self) -> LiveServer:
        for _ in range(3):  # a free port can be taken between the probe and the bind
            if self._try_start():
                return self
        raise RuntimeError(f"server did not start:\n{self.log_text()[-3000:]}")

    def _try_start(self) -> bool:
        port = free_port()
        env = {
            **os.environ,
            "KASAR_DATABASE_URL": self.db_url,
            "KASAR_LOG_LEVEL": self.log_level.upper(),
            **self.env,
        }
        cmd = [sys.executable, "-m", "uvicorn", "kasar.app:create_app", "--factory"]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", self.log_level]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not answer in time:\n{self.log_text()[-3000:]}")

    def kill(self) -> None:
        """``kill -9``: no shutdown handler, no flush, nothing."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        self.kill()
        self.log_path.unlink(missing_ok=True)


@contextmanager
def live_servers(
    db_url: str, count: int = 1, *, env: dict[str, str] | None = None, log_level: str = "warning"
) -> Iterator[list[LiveServer]]:
    servers: list[LiveServer] = []
    try:
        for _ in range(count):
            servers.append(LiveServer(db_url, env=env, log_level=log_level).start())
        yield servers
    finally:
        for s in servers:
            s.close()
