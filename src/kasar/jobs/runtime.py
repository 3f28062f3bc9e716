"""Running jobs: the worker loop, heartbeats, chunk commits that happen exactly once.

A handler (``HANDLERS[kind]``) does its work in chunks through
``JobContext.commit_chunk``: each chunk is one write transaction that first locks
the job row and checks that this worker still owns the job and that it was not
cancelled, then writes the records and the chunk's progress together. A worker
killed mid-chunk loses only an uncommitted transaction; the next worker resumes
after ``last_row``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine

from kasar.db.engine import write_transaction
from kasar.jobs import repository as repo
from kasar.jobs.collector import fewer_collections

log = logging.getLogger("kasar.jobs")
T = TypeVar("T")
HEARTBEAT_SECONDS = 5.0


class JobCancelled(Exception):
    """Raised inside a handler when the job was cancelled (or taken by another worker)."""


class JobContext:
    def __init__(self, engine: Engine, job: repo.Job, worker_id: str) -> None:
        self.engine = engine
        self.job = job
        self.worker_id = worker_id

    def commit_chunk(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction that holds the job row; the chunk is
        refused (JobCancelled) if the job was cancelled or claimed by someone else."""
        with write_transaction(self.engine) as conn:
            current = repo.get_job(conn, self.job.id, for_update=True)
            if current.row["worker_id"] != self.worker_id or current.state != "running":
                raise JobCancelled("the job is no longer this worker's")
            if current.row["cancel_requested"]:
                raise JobCancelled("cancelled")
            result = work(conn)
        return result

    def cancel_requested(self) -> bool:
        with write_transaction(self.engine) as conn:
            return bool(repo.get_job(conn, self.job.id).row["cancel_requested"])


Handler = Callable[[JobContext], None]
HANDLERS: dict[str, Handler] = {}


def register(kind: str) -> Callable[[Handler], Handler]:
    def wrap(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return wrap


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _heartbeat_loop(engine: Engine, job_id: str, worker_id: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            with write_transaction(engine) as conn:
                if not repo.heartbeat(conn, job_id, worker_id):
                    return
        except Exception:  # a missed beat is retried; the claim lasts STALE_AFTER
            log.warning("heartbeat failed for job %s", job_id, exc_info=True)


def run_one(engine: Engine, worker_id: str) -> bool:
    """Claim and run one job; False when there was none."""
    _load_handlers()
    with write_transaction(engine) as conn:
        job = repo.claim_next(conn, worker_id, kinds=tuple(HANDLERS))
    if job is None:
        return False
    stop = threading.Event()
    beat = threading.Thread(
        target=_heartbeat_loop, args=(engine, job.id, worker_id, stop), daemon=True
    )
    beat.start()
    state, error = "completed", None
    try:
        with fewer_collections():
            HANDLERS[job.kind](JobContext(engine, job, worker_id))
    except JobCancelled as exc:
        state = "cancelled" if str(exc) == "cancelled" else "lost"
    except Exception as exc:
        log.exception("job %s failed", job.id)
        state, error = "failed", _public_message(exc)
    finally:
        stop.set()
        beat.join()
    if state != "lost":
        with write_transaction(engine) as conn:
            owner = repo.get_job(conn, job.id, for_update=True).row["worker_id"]
            if owner == worker_id:
                repo.finish(conn, job.id, state, error)
    return True


def _public_message(exc: Exception) -> str:
    from kasar.errors import KasarError

    if isinstance(exc, KasarError):
        return exc.message
    return "Internal error while running the job (see the server log)"


def run_worker(
    engine: Engine,
    stop: threading.Event,
    *,
    poll_seconds: float = 1.0,
    worker_id: str | None = None,
) -> None:
    """Process jobs until ``stop`` is set."""
    worker_id = worker_id or new_worker_id()
    log.info("worker %s started", worker_id)
    while not stop.is_set():
        try:
            ran = run_one(engine, worker_id)
        except Exception:
            log.exception("worker loop error")
            ran = False
        if not ran:
            stop.wait(poll_seconds)


def _load_handlers() -> None:
    """Import the modules that register handlers (kept lazy to avoid import cycles)."""
    import importlib

    for module in ("kasar.imports.jobs", "kasar.exports.jobs"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def start_background_worker(engine: Engine) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker, args=(engine, stop), name="kasar-worker", daemon=True
    )
    thread.start()
    return thread, stop


__all__ = [
    "HANDLERS",
    "JobCancelled",
    "JobContext",
    "register",
    "run_one",
    "run_worker",
    "start_background_worker",
]
