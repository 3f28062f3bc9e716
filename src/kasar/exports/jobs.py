"""The export job (spec §11): the export engine without a row cap, written into the
job's ``output`` blob as it goes, in csv, json, ndjson or xlsx.

The rows are read in one snapshot (so ``total_rows``, the JSON ``total`` and the
rows agree) while a second thread gzips the output and commits it, at most
``CHUNK_BYTES`` at a time, in short ``commit_chunk`` transactions with the progress
(``rows_read``), at least every ``PROGRESS_SECONDS``: storing overlaps reading,
and rows/s, the ETA and a cancel stay live. Memory stays flat: a few pieces at
most. ``read_output`` gives the file back, decompressed.

A snapshot cannot be resumed in another process, so a job whose worker died
starts again from scratch: the next worker deletes the partial output and
exports everything anew (docs/export-jobs.md, "Restarts").
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from isal import isal_zlib
from sqlalchemy import Connection, Engine, delete, select

from kasar.db import tables
from kasar.db.engine import snapshot_transaction, write_transaction
from kasar.errors import Conflict
from kasar.exports.service import (
    ExportRequest,
    count_total,
    parse_request,
)
from kasar.exports.writers import write_csv_counted, write_ndjson
from kasar.exports.xlsx import MEDIA_TYPE as XLSX_MEDIA_TYPE
from kasar.exports.xlsx import write_xlsx
from kasar.jobs import repository as jobs_repo
from kasar.jobs.blobs import CHUNK_BYTES, delete_blob, read_blob, write_blob
from kasar.jobs.runtime import JobContext, register
from kasar.schema.repository import Workspace, load_workspace, now_utc
from kasar.settings import get_settings

log = logging.getLogger("kasar.exports")

OUTPUT = "output"
FORMATS = ("csv", "json", "ndjson", "xlsx")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "xlsx": XLSX_MEDIA_TYPE,
}
PROGRESS_SECONDS = 1.0
PIECE_BYTES = 256 * 1024  # handed to the storing thread at a time
QUEUED = 1  # pieces waiting while the next one fills
# ISA-L's deflate (gzip, level 1 of 0-3): 600 MB/s of CSV, 4.7x smaller; zlib's
# level 1 ran at 150 MB/s (4.3x) and was the largest cost an export job added.
GZIP_LEVEL = 1
# An expired file is deleted only this long after it expired, so that a download
# begun just before the expiry is not cut short.
PURGE_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class ExportJobOptions:
    """An export job's parameters as stored with the job: the keys of spec §8, with
    ``fields`` resolved to the keys in output order and ``filters`` a FilterGroup
    object. ``job_routes.parse_export_job`` checks a request's."""

    object: str
    format: str = "json"
    fields: list[str] = field(default_factory=list)
    filter_field: str | None = None
    filter_operator: str | None = None
    filter_value: str | None = None
    filters: Any = None
    sort_by: str = "created_at"
    sort_dir: str = "desc"
    limit: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> ExportJobOptions:
        return cls(**{k: v for k, v in stored.items() if k in OPTIONS})

    def request(self, ws: Workspace) -> ExportRequest:
        """The engine's request; raises if the schema changed so that it no longer holds."""
        return parse_request(
            ws,
            self.object,
            fields=",".join(self.fields) or None,
            filter_field=self.filter_field,
            filter_operator=self.filter_operator,
            filter_value=self.filter_value,
            filters=None if self.filters is None else json.dumps(self.filters),
            sort_by=self.sort_by,
            sort_dir=self.sort_dir,
            limit=self.limit,
            default_limit=None,
            max_limit=None,
        )


OPTIONS = tuple(f.name for f in fields(ExportJobOptions))  # the keys a request may give


def create_export_job(
    conn: Connection, opts: ExportJobOptions, *, created_by: str
) -> jobs_repo.Job:
    """Queue the job; the files of jobs that expired are deleted on the way."""
    _purge_expired(conn)
    return jobs_repo.create_job(
        conn, kind="export", object_name=opts.object, options=opts.to_dict(), created_by=created_by
    )


# --- how long files are kept ------------------------------------------------------------
# A completed job's file can be downloaded for ``KASAR_EXPORT_RETENTION_DAYS`` after
# the job ends; then the download answers 409, and the next export job created deletes
# the file (as the next merge drops expired merge snapshots): nothing runs on a timer.


def _retention() -> timedelta:
    return timedelta(days=get_settings().export_retention_days)


def file_expires_at(job: jobs_repo.Job) -> datetime | None:
    """When a completed job's file stops being served; None for a job without one."""
    finished = job.row["finished_at"]
    return finished + _retention() if job.state == "completed" and finished else None


def export_job_api(job: jobs_repo.Job) -> dict[str, Any]:
    """The job as the API shows it: a job's fields and its file's expiry."""
    return {**job.to_api(), "file_expires_at": jobs_repo.iso(file_expires_at(job))}


def check_downloadable(job: jobs_repo.Job) -> None:
    """Conflict unless the job has completed and its file has not expired."""
    if job.state != "completed":
        raise Conflict(
            f"Export job '{job.id}' is {job.state}: its file can be downloaded "
            "once it has completed"
        )
    expires = file_expires_at(job)
    if expires is not None and now_utc() >= expires:
        days = get_settings().export_retention_days
        raise Conflict(
            f"The file of export job '{job.id}' expired at {jobs_repo.iso(expires)} "
            f"(files are kept {days:g} day{'' if days == 1 else 's'} after their job ends); "
            "run the export again"
        )


def _purge_expired(conn: Connection) -> None:
    J, B = tables.jobs, tables.job_blobs
    cutoff = now_utc() - _retention() - PURGE_GRACE
    ended = select(J.c.id).where(J.c.kind == "export", J.c.finished_at < cutoff)
    conn.execute(delete(B).where(B.c.role == OUTPUT, B.c.job_id.in_(ended)))


@register("export")
def run_export_job(ctx: JobContext) -> None:
    opts = ExportJobOptions.from_stored(ctx.job.options)
    ctx.commit_chunk(lambda conn: _restart(conn, ctx.job.id))
    try:
        with BlobOutput(ctx) as output, snapshot_transaction(ctx.engine) as conn:
            ws = load_workspace(conn)
            req = opts.request(ws)
            total = count_total(conn, ws, req)
            rows = total if req.limit is None else min(total, req.limit)
            ctx.commit_chunk(lambda c: jobs_repo.set_fields(c, ctx.job.id, total_rows=rows))
            if opts.format == "xlsx":
                write_xlsx(conn, ws, req, output, on_rows=output.add_rows)
            else:
                for chunk, n in _chunks(opts.format, conn, ws, req, total):
                    output.write(chunk, n)
            output.close()
    except Exception:  # cancelled, lost to another worker (its output kept), failed
        _discard(ctx)
        raise


def _restart(conn: Connection, job_id: str) -> None:
    """From scratch: a previous attempt's partial output and counts are dropped."""
    delete_blob(conn, job_id, OUTPUT)
    jobs_repo.set_fields(
        conn, job_id, rows_read=0, last_row=0, total_rows=None, started_at=now_utc()
    )


def _discard(ctx: JobContext) -> None:
    """Drop the partial output of a job that stops, unless another worker owns it now."""
    try:
        with write_transaction(ctx.engine) as conn:
            current = jobs_repo.get_job(conn, ctx.job.id, for_update=True)
            if current.row["worker_id"] == ctx.worker_id:
                delete_blob(conn, ctx.job.id, OUTPUT)
    except Exception:  # the job's own error matters more; the output is unreachable anyway
        log.warning("could not delete the partial output of job %s", ctx.job.id, exc_info=True)


def _chunks(
    fmt: str, conn: Connection, ws: Workspace, req: ExportRequest, total: int
) -> Iterator[tuple[bytes, int]]:
    """The output's bytes with the number of records each piece completes."""
    if fmt == "csv":
        yield from write_csv_counted(conn, ws, req)
        return
    if fmt == "ndjson":
        for chunk in write_ndjson(conn, ws, req):
            yield chunk, chunk.count(b"\n")
        return
    # JSON: the NDJSON lines are the same record objects; joined with commas inside
    # the document they are byte for byte what ``writers.write_json`` writes.
    yield b'{"format":"json","records":[', 0
    first = True
    for chunk in write_ndjson(conn, ws, req):
        records = chunk[:-1].replace(b"\n", b",")
        yield (records if first else b"," + records), chunk.count(b"\n")
        first = False
    yield b'],"total":' + str(total).encode() + b"}", 0


class BlobOutput:
    """A write-only file over the job's output blob, stored gzip-compressed.

    Pieces of ``PIECE_BYTES`` go to a thread of their own, which compresses them
    (ISA-L works without the GIL) and commits the result with the rows done, in
    one short ``commit_chunk`` transaction per MiB of compressed output or per
    ``PROGRESS_SECONDS`` (``commit_chunk`` refuses it once the job is cancelled or
    taken over): the database stores while the export reads on. At most ``QUEUED``
    pieces wait; the thread's error (a cancel) is raised here, at the next write or
    at ``close``. Use it as a context manager: leaving it stops the thread, so that
    nothing is written after an error."""

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        self._buffer = bytearray()
        self._rows = 0
        self._due = time.monotonic() + PROGRESS_SECONDS
        self._pieces: queue.Queue[tuple[bytearray, int, bool] | None] = queue.Queue(QUEUED)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._store, name="kasar-export-output")

    def __enter__(self) -> BlobOutput:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            self._pieces.put(None)
            self._thread.join()

    def write(self, data: bytes, rows: int = 0, /) -> int:
        self._buffer += data
        self._rows += rows
        if len(self._buffer) >= PIECE_BYTES or time.monotonic() >= self._due:
            self._send(final=False)
        return len(data)

    def add_rows(self, rows: int) -> None:
        self.write(b"", rows)

    def flush(self) -> None:
        """Nothing to do: pieces are committed as they fill."""

    def close(self) -> None:
        """Commit the rest and wait for every piece to be stored."""
        self._send(final=True)
        self.__exit__()
        self._raise_error()

    def _send(self, *, final: bool) -> None:
        piece = (self._buffer, self._rows, final)  # handed over whole, not copied
        while True:
            self._raise_error()
            try:
                self._pieces.put(piece, timeout=0.1)
                break
            except queue.Full:
                continue
        self._buffer = bytearray()
        self._rows = 0
        self._due = time.monotonic() + PROGRESS_SECONDS

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _store(self) -> None:
        job_id = self._ctx.job.id
        gzip = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31)  # wbits 31: a gzip stream
        pending, rows, seq, due = bytearray(), 0, 0, 0.0
        while (piece := self._pieces.get()) is not None:
            data, n, final = piece
            if self._error is not None:
                continue
            pending += gzip.compress(data)
            pending += gzip.flush() if final else b""
            rows += n
            if not (final or len(pending) >= CHUNK_BYTES or time.monotonic() >= due):
                continue
            stored, pending = bytes(pending), bytearray()
            try:
                self._ctx.commit_chunk(partial(_store_piece, job_id, stored, rows, seq))
            except BaseException as exc:  # handed to the exporting thread
                self._error = exc
                continue
            seq += -(-len(stored) // CHUNK_BYTES)
            rows, due = 0, time.monotonic() + PROGRESS_SECONDS


def _store_piece(job_id: str, data: bytes, rows: int, seq: int, conn: Connection) -> None:
    # A piece needs no flush of its own: the job's final, synchronous commit
    # (completed) flushes the log up to it, and a job that never gets there is
    # exported again from scratch anyway.
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
    if data:
        write_blob(conn, job_id, OUTPUT, [data], start_seq=seq)
    jobs_repo.add_progress(conn, job_id, rows_read=rows)


def read_output(engine: Engine, job_id: str) -> Iterator[bytes]:
    """The exported file, decompressed as it is read (pieces of at most 256 KiB)."""
    gunzip = isal_zlib.decompressobj(31)
    for stored in read_blob(engine, job_id, OUTPUT):
        while stored:
            if data := gunzip.decompress(stored, 256 * 1024):
                yield data
            stored = gunzip.unconsumed_tail
    if tail := gunzip.flush():
        yield tail
