"""The import job (spec §11): a stored file imported in chunks, exactly once.

The worker reads the uploaded file twice, as a stream both times. The first pass
counts the rows and reads the columns, so that a malformed file (bad encoding, a
ragged row, broken JSON) fails the job before anything is written, and the
progress has a total. The second pass cuts the rows into chunks of ``CHUNK_ROWS``;
each chunk is one ``commit_chunk`` transaction that imports the records, writes
one ``kasar_job_rows`` row per file row and advances ``last_row``: a killed
worker's successor skips the rows up to ``last_row`` and never imports a row
twice. On big files, when a core is idle, the next chunk is validated in another
process while this one is written (``CHUNK_ROWS``, ``POOL_MIN_BYTES`` and
``spare_core`` come from measurements, see docs/import-jobs.md).
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from sqlalchemy import Connection

from kasar.db import tables
from kasar.db.bulk import insert_rows
from kasar.db.engine import is_sqlite, read_transaction
from kasar.db.statistics import GrowthStatistics
from kasar.errors import ValidationFailed
from kasar.imports.columns import match_columns
from kasar.imports.files import open_rows
from kasar.imports.job_options import ImportJobOptions
from kasar.imports.service import Prepared, RecordResult, import_records, prepare_records
from kasar.imports.undo import dump_changes
from kasar.jobs import repository as jobs_repo
from kasar.jobs.blobs import UPLOAD, blob_size, open_blob, write_blob
from kasar.jobs.collector import for_a_job_process
from kasar.jobs.runtime import JobContext, register
from kasar.schema.model import ObjectDef
from kasar.schema.repository import load_workspace

CHUNK_ROWS = 5000
POOL_MIN_BYTES = 4 * 1024 * 1024
# Chunks given to the pool before this process waits for the first of them: with
# two, one chunk slower to validate (or to write) than the next does not leave the
# other process idle.
AHEAD = 2
# SQLite has one write lock and no queue: after each SQLITE_HOLD seconds of writing,
# the job leaves the lock free for SQLITE_PAUSE, so that a writer polling in its busy
# handler (every 100 ms at worst) gets a turn within about a second.
SQLITE_HOLD = 0.8
SQLITE_PAUSE = 0.1


@dataclass
class _Chunk:
    numbers: list[int]
    records: list[dict[str, object]]


def create_import_job(
    conn: Connection, opts: ImportJobOptions, content: Iterable[bytes], *, created_by: str
) -> jobs_repo.Job:
    """Queue an import of ``content`` (the file's bytes, in pieces of any size)."""
    job = jobs_repo.create_job(
        conn,
        kind="import",
        object_name=opts.object,
        options=opts.to_dict(),
        created_by=created_by,
    )
    write_blob(conn, job.id, UPLOAD, content)
    return job


@register("import")
def run_import_job(ctx: JobContext) -> None:
    job = ctx.job
    opts = ImportJobOptions.from_stored(job.options)
    with read_transaction(ctx.engine) as conn:
        ws = load_workspace(conn)
        size = blob_size(conn, job.id, UPLOAD)
    obj = ws.object(job.object_name)
    with ExitStack() as stack:
        # Started first: the pool's process boots while the first pass reads the file.
        pool = stack.enter_context(_pool()) if size >= POOL_MIN_BYTES and spare_core() else None
        if opts.columns is None or job.row["total_rows"] is None:
            opts = _first_pass(ctx, obj, opts)
        mapping: dict[str, str] = (opts.columns or {})["mapping"]
        committed = int(job.row["rows_read"])
        # The tables that the next chunks query (a dry run writes only its job rows,
        # which are read only by their primary key: nothing to analyse).
        grown = [] if opts.dry_run else [ws.table(obj.name).name, tables.match_keys.name]
        statistics = GrowthStatistics(ctx.engine, grown)
        held = 0.0  # seconds of SQLite's write lock since the last pause
        stream = stack.enter_context(open_blob(ctx.engine, job.id, UPLOAD))
        try:
            source = open_rows(stream, **opts.reader_args())
            rows = ((n, r) for n, r in source.rows if n > job.last_row)
            for chunk, prepared in _prepared(_chunks(rows, mapping), obj, pool):
                started = time.monotonic()
                ctx.commit_chunk(
                    partial(
                        _write_chunk,
                        ctx=ctx,
                        opts=opts,
                        chunk=chunk,
                        prepared=prepared,
                        version=ws.version,
                    )
                )
                committed += len(chunk.numbers)
                statistics.grew(len(chunk.numbers))
                held += time.monotonic() - started
                if pool is not None and is_sqlite(ctx.engine) and held >= SQLITE_HOLD:
                    # Without a pool the next chunk is read and validated here, which
                    # leaves the lock free for longer than this; with one, it is ready.
                    time.sleep(SQLITE_PAUSE)
                    held = 0.0
        except ValidationFailed as exc:
            raise ValidationFailed(
                f"{exc.message}. The {committed} rows before it were imported and stay; "
                "undo the job to remove them",
                exc.details,
            ) from None


def _first_pass(ctx: JobContext, obj: ObjectDef, opts: ImportJobOptions) -> ImportJobOptions:
    """Count the rows, check the file's shape and match its columns to fields; the
    result is stored with the job (its options' ``columns`` and ``total_rows``)."""
    try:
        with open_blob(ctx.engine, ctx.job.id, UPLOAD) as stream:
            source = open_rows(stream, **opts.reader_args())
            total = sum(1 for _ in source.rows)
            columns = list(source.columns)
    except ValidationFailed as exc:
        raise ValidationFailed(f"{exc.message}. Nothing was imported", exc.details) from None
    matched, unmatched = match_columns(columns, obj.all_keys(), opts.mapping)
    if total and not matched:
        shown = ", ".join(f"'{c}'" for c in columns[:10])
        raise ValidationFailed(
            f"None of the file's columns ({shown}) is a field of '{obj.name}'; "
            "name the fields in a mapping. Nothing was imported"
        )
    opts = replace(opts, columns={"mapping": matched, "unmatched": unmatched})
    stored = {**ctx.job.options, "columns": opts.columns}

    def save(conn: Connection) -> None:
        jobs_repo.set_fields(conn, ctx.job.id, options=json.dumps(stored), total_rows=total)

    ctx.commit_chunk(save)
    return opts


def _chunks(
    rows: Iterator[tuple[int, dict[str, object]]], mapping: dict[str, str]
) -> Iterator[_Chunk]:
    """Rows renamed from columns to fields, ``CHUNK_ROWS`` at a time. A column not in
    ``mapping`` (ignored, or met only in a later JSON record) is left out."""
    while True:
        batch = list(itertools.islice(rows, CHUNK_ROWS))
        if not batch:
            return
        records = [
            {mapping[c]: v for c, v in record.items() if c in mapping} for _, record in batch
        ]
        yield _Chunk([n for n, _ in batch], records)


def spare_core() -> bool:
    """Whether a core is idle. Validating in another process costs about 30% more CPU
    in all (pickling, a second interpreter) and takes 35-40% off this process: it
    pays only when the other core would otherwise wait (docs/import-jobs.md).

    Measured over a quarter of a second where Linux tells (``/proc/stat``): the load
    average lags by a minute, long enough to keep the pool off right after a burst."""
    cores = os.cpu_count() or 1
    if cores < 2:
        return False
    idle = _idle_cores(cores, 0.25)
    if idle is not None:
        return idle >= 0.8
    try:
        return os.getloadavg()[0] <= cores - 1
    except OSError:
        return False


def _idle_cores(cores: int, seconds: float) -> float | None:
    """How many cores were idle over the next ``seconds``; None where unknown."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            ticks = [int(t) for t in f.readline().split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait, all

    try:
        idle_0, total_0 = sample()
        time.sleep(seconds)
        idle_1, total_1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total_1 <= total_0:
        return None
    return cores * (idle_1 - idle_0) / (total_1 - total_0)


def _pool() -> ProcessPoolExecutor:
    """One process, started now (it takes about a second to import Kasar)."""
    # spawn, not fork: the worker runs threads (heartbeats, maybe a web server)
    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=for_a_job_process,
    )
    pool.submit(int)  # a process is started on the first submit
    return pool


def _prepared(
    chunks: Iterator[_Chunk], obj: ObjectDef, pool: ProcessPoolExecutor | None
) -> Iterator[tuple[_Chunk, list[Prepared] | None]]:
    """Each chunk with its records validated outside the write transaction (which
    then holds its locks for less time): in this process, or in ``pool`` for the
    next chunk while the caller writes this one (None: the engine validates)."""
    if pool is None:
        yield from ((chunk, prepare_records(obj, chunk.records)) for chunk in chunks)
        return
    pending: deque[tuple[_Chunk, Future[list[Prepared]] | None]] = deque()
    for chunk in chunks:
        pending.append((chunk, _submit(pool, obj, chunk)))
        if len(pending) > AHEAD:
            done, future = pending.popleft()
            yield done, _result(future, obj, done)
    while pending:
        done, future = pending.popleft()
        yield done, _result(future, obj, done)


def _submit(
    pool: ProcessPoolExecutor, obj: ObjectDef, chunk: _Chunk
) -> Future[list[Prepared]] | None:
    try:
        return pool.submit(prepare_records, obj, chunk.records)
    except BrokenProcessPool:
        return None


def _result(future: Future[list[Prepared]] | None, obj: ObjectDef, chunk: _Chunk) -> list[Prepared]:
    """The pool's answer; if the pool died (killed, out of memory), this process
    validates instead."""
    if future is not None:
        try:
            return future.result()
        except BrokenProcessPool:
            pass
    return prepare_records(obj, chunk.records)


def _write_chunk(
    conn: Connection,
    ctx: JobContext,
    opts: ImportJobOptions,
    chunk: _Chunk,
    prepared: Sequence[Prepared] | None,
    version: str,
) -> None:
    """Import one chunk, record each row's outcome and the progress, together."""
    ws = load_workspace(conn)
    if ws.version != version:  # the schema changed since the rows were validated
        prepared = None
    result = import_records(conn, ws, opts.object, chunk.records, opts.import_options(), prepared)
    rows = [
        job_row(ctx.job.id, number, r, keep_changes=not opts.dry_run)
        for number, r in zip(chunk.numbers, result.results, strict=True)
    ]
    insert_rows(conn, tables.job_rows, rows)
    linked = [
        {"job_id": ctx.job.id, "object_name": name, "record_id": rid}
        for name, ids in result.linked.items()
        for rid in ids
    ]
    if linked and not opts.dry_run:
        insert_rows(conn, tables.job_linked, linked)
    jobs_repo.add_progress(
        conn,
        ctx.job.id,
        last_row=chunk.numbers[-1],
        rows_read=len(rows),
        created=result.created,
        updated=result.updated,
        duplicates=result.duplicates,
        failed=result.failed,
    )


def job_row(job_id: str, number: int, r: RecordResult, *, keep_changes: bool) -> dict[str, Any]:
    """The ``kasar_job_rows`` row of one file row. ``record_id``: the record created,
    or the one a duplicate updated; ``before_image``: what the update replaced."""
    status = "updated" if r.updated else r.status
    return {
        "job_id": job_id,
        "row_number": number,
        "status": status,
        "record_id": r.id if r.status == "created" else (r.duplicate_of if r.updated else None),
        "duplicate_of": r.duplicate_of,
        "matched_on": ",".join(r.matched_on) if r.matched_on else None,
        "error_code": r.error["code"] if r.error else None,
        "message": r.error["message"] if r.error else None,
        "before_image": dump_changes(r.changes) if r.updated and keep_changes else None,
    }
