"""Job files (an import's upload, an export's output) stored in the database in
1 MiB chunks, so that any server or worker on any machine can read them."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select

from kasar.db import tables
from kasar.db.engine import read_transaction

CHUNK_BYTES = 1024 * 1024
# An import's file: read while its job runs (again when a worker resumes it), then of
# no use to anyone; ``repository.finish`` deletes it with the job's final state.
UPLOAD = "upload"


def write_blob(
    conn: Connection, job_id: str, role: str, chunks: Iterable[bytes], *, start_seq: int = 0
) -> int:
    """Append chunks (re-cut to CHUNK_BYTES); returns the number of bytes written."""
    seq, size, buffer = start_seq, 0, bytearray()
    t = tables.job_blobs
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= CHUNK_BYTES:
            conn.execute(
                insert(t).values(
                    job_id=job_id, role=role, seq=seq, data=bytes(buffer[:CHUNK_BYTES])
                )
            )
            del buffer[:CHUNK_BYTES]
            seq += 1
            size += CHUNK_BYTES
    if buffer:
        conn.execute(insert(t).values(job_id=job_id, role=role, seq=seq, data=bytes(buffer)))
        size += len(buffer)
    return size


def delete_blob(conn: Connection, job_id: str, role: str) -> None:
    t = tables.job_blobs
    conn.execute(delete(t).where(t.c.job_id == job_id, t.c.role == role))


def blob_size(conn: Connection, job_id: str, role: str) -> int:
    t = tables.job_blobs
    size = conn.execute(
        select(func.coalesce(func.sum(func.length(t.c.data)), 0)).where(
            t.c.job_id == job_id, t.c.role == role
        )
    ).scalar_one()
    return int(size)


def read_blob(engine: Engine, job_id: str, role: str) -> Iterator[bytes]:
    """The chunks in order, one short read transaction per chunk (memory stays flat,
    and no transaction is held open while the caller works)."""
    t = tables.job_blobs
    seq = 0
    while True:
        with read_transaction(engine) as conn:
            data = conn.execute(
                select(t.c.data).where(t.c.job_id == job_id, t.c.role == role, t.c.seq == seq)
            ).scalar_one_or_none()
        if data is None:
            return
        yield bytes(data)
        seq += 1


class _BlobRaw(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._pos >= len(self._buffer):
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._buffer, self._pos = nxt, 0
        n = min(len(b), len(self._buffer) - self._pos)
        b[:n] = self._buffer[self._pos : self._pos + n]
        self._pos += n
        return n


def open_blob(engine: Engine, job_id: str, role: str) -> io.BufferedReader:
    """A binary stream over a stored blob (what ``imports.files.open_rows`` reads)."""
    return io.BufferedReader(_BlobRaw(read_blob(engine, job_id, role)), buffer_size=256 * 1024)
