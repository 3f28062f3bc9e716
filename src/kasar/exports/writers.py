"""Export writers: CSV, JSON and NDJSON as streams of byte chunks (about 64 KB).

Each writer reads the rows as they come from the database and yields its first
chunk only once the query has run, so a shell that pulls the first chunk before
answering turns every error into a proper error response.

Formatting a row in Python costs more than the database takes to read it, so
the database formats the cells (storage notes, point 6): SQL templates per key,
whose rows go straight into the C ``csv`` writer or ``orjson`` -- and CSV on
PostgreSQL comes whole out of ``COPY`` (``pg_copy``). ``portable_*`` is the plain-Python
reference the tests compare both with, and the path for any other database.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, cast

import orjson
from sqlalchemy import Connection, Select
from sqlalchemy.sql import expression as sx
from sqlalchemy.sql.sqltypes import NullType

from kasar.exports import pg_copy
from kasar.exports.cells import protect_cell
from kasar.exports.service import (
    INT_RANGE,
    CellKind,
    ExportRequest,
    cell_kind,
    count_total,
    csv_cell,
    export_rows,
    key_kinds,
    select_rows,
)
from kasar.schema.repository import Workspace

CHUNK_SIZE = 64 * 1024
BATCH_ROWS = 100

Writer = Callable[[Connection, Workspace, ExportRequest], Iterator[bytes]]
Fixup = Callable[[Any], Any]
CellSQL = Callable[[str, CellKind], str]


def write_csv(conn: Connection, ws: Workspace, req: ExportRequest) -> Iterator[bytes]:
    """A header row of the keys, then one row per record (RFC 4180, CRLF)."""
    return (chunk for chunk, _ in write_csv_counted(conn, ws, req))


def write_csv_counted(
    conn: Connection, ws: Workspace, req: ExportRequest
) -> Iterator[tuple[bytes, int]]:
    """``write_csv``'s chunks, each with the number of records it holds (a job's
    progress; a cell may hold line ends, so the bytes alone do not tell)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        stmt, _ = _formatted(conn, ws, req, pg_copy.csv_cell)
        yield from pg_copy.copy_csv(conn, stmt)
    elif dialect == "sqlite":
        _register_protect(conn)
        stmt, _ = _formatted(conn, ws, req, _sqlite_csv_cell)
        yield from _csv_chunks(req.keys, _stream(conn, stmt))
    else:
        yield from _portable_csv(conn, ws, req)


def write_json(conn: Connection, ws: Workspace, req: ExportRequest) -> Iterator[bytes]:
    """``{"format":"json","records":[...],"total":N}``; ``total`` counts every match."""
    total = count_total(conn, ws, req)
    buf = b'{"format":"json","records":['
    for chunk in _json_records(conn, ws, req, ndjson=False):
        buf += chunk
        if len(buf) >= CHUNK_SIZE:
            yield buf
            buf = b""
    yield buf + b'],"total":' + str(total).encode() + b"}"


def write_ndjson(conn: Connection, ws: Workspace, req: ExportRequest) -> Iterator[bytes]:
    """One JSON object per line (for jobs: no total, no enclosing document)."""
    return _json_records(conn, ws, req, ndjson=True)


WRITERS: dict[str, Writer] = {"json": write_json, "csv": write_csv, "ndjson": write_ndjson}


def _json_records(
    conn: Connection, ws: Workspace, req: ExportRequest, *, ndjson: bool
) -> Iterator[bytes]:
    dialect = conn.dialect.name
    if dialect not in ("postgresql", "sqlite"):
        yield from _encode_records(_portable_records(conn, ws, req), ndjson)
        return
    pg = dialect == "postgresql"
    stmt, kinds = _formatted(conn, ws, req, pg_copy.json_cell if pg else _sqlite_json_cell)
    fixups = [(k, f) for k, kind in zip(req.keys, kinds, strict=True) if (f := _FIXUPS.get(kind))]
    rows = pg_copy.stream_rows(conn, stmt) if pg else _stream(conn, stmt)
    yield from _encode_records(_as_dicts(req.keys, rows, fixups), ndjson)


def portable_csv(conn: Connection, ws: Workspace, req: ExportRequest) -> Iterator[bytes]:
    """The reference CSV writer: ``export_rows`` then ``csv_cell`` on every value."""
    return (chunk for chunk, _ in _portable_csv(conn, ws, req))


def _portable_csv(
    conn: Connection, ws: Workspace, req: ExportRequest
) -> Iterator[tuple[bytes, int]]:
    kinds = list(zip(req.keys, key_kinds(conn, ws, req), strict=True))
    rows = (
        [csv_cell(kind, record[k]) for k, kind in kinds] for record in export_rows(conn, ws, req)
    )
    yield from _csv_chunks(req.keys, _batched(rows))


def portable_json(
    conn: Connection, ws: Workspace, req: ExportRequest, *, ndjson: bool = False
) -> Iterator[bytes]:
    """The reference JSON records (comma-separated, or NDJSON lines)."""
    return _encode_records(_portable_records(conn, ws, req), ndjson)


def json_number(value: Any) -> Any:
    """Integral numbers as integers, others as their shortest exact text (``1e-05``),
    which is what PostgreSQL writes, so that both databases give the same bytes."""
    if value is None or isinstance(value, int):
        return value
    if value.is_integer() and abs(value) < INT_RANGE:
        return int(value)
    return orjson.Fragment(repr(value))


def _portable_records(
    conn: Connection, ws: Workspace, req: ExportRequest
) -> Iterator[list[dict[str, Any]]]:
    kinds = key_kinds(conn, ws, req)
    numbers = [k for k, kind in zip(req.keys, kinds, strict=True) if kind is CellKind.NUMBER]
    batch: list[dict[str, Any]] = []
    for record in export_rows(conn, ws, req):
        for k in numbers:
            record[k] = json_number(record[k])
        batch.append(record)
        if len(batch) >= BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def _formatted(
    conn: Connection, ws: Workspace, req: ExportRequest, cell: CellSQL
) -> tuple[Select[Any], list[CellKind]]:
    """The export's query with each key's column replaced by its formatted cell.

    A key's expression holds only schema names and constants (never user input),
    so it is rendered to SQL text and wrapped in the cell's template; the filter
    values stay bound parameters of the WHERE clause. (The same cells built as
    SQLAlchemy constructs took longer to compile than PostgreSQL took to run them.)
    The columns are untyped, so values arrive exactly as the database wrote them.
    """
    stmt, cols = select_rows(conn, ws, req)
    kinds = [cell_kind(cols, k) for k in req.keys]
    literal = {"literal_binds": True}
    cells = []
    for key, kind in zip(req.keys, kinds, strict=True):
        x = str(cols.expr(key).compile(dialect=conn.dialect, compile_kwargs=literal))
        cells.append(sx.literal_column(cell(x, kind), NullType()).label(key))
    return cast(Select[Any], stmt.with_only_columns(*cells)), kinds


def _stream(conn: Connection, stmt: Select[Any]) -> Iterator[Sequence[Any]]:
    """Plain DBAPI rows in batches: the columns are untyped, so SQLAlchemy's rows
    would add nothing but their cost. SQLite reads them lazily from the file;
    ``stream_results`` off keeps SQLAlchemy from buffering rows ahead of us."""
    result = conn.execute(stmt, execution_options={"stream_results": False})
    cursor = result.cursor
    try:
        while batch := cursor.fetchmany(BATCH_ROWS):
            yield batch
    finally:
        result.close()


def _batched(rows: Iterable[list[str]]) -> Iterator[list[list[str]]]:
    batch: list[list[str]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def _csv_chunks(keys: list[str], batches: Iterable[Sequence[Any]]) -> Iterator[tuple[bytes, int]]:
    """The csv module writes each batch into a list (a ``StringIO`` would hold up to
    four bytes per character of the whole chunk); batches gather into ~64 KB, each
    given with its number of records."""
    lines: list[str] = []
    writer = csv.writer(cast(Any, _ListSink(lines)), lineterminator="\r\n")
    writer.writerow(keys)
    buf = bytearray()
    records = 0
    for batch in batches:
        writer.writerows(batch)
        records += len(batch)
        buf += "".join(lines).encode()
        lines.clear()
        if len(buf) >= CHUNK_SIZE:
            yield bytes(buf), records
            buf.clear()
            records = 0
    buf += "".join(lines).encode()
    if buf:
        yield bytes(buf), records


class _ListSink:
    """A file-like ``write`` that keeps the lines the csv writer hands it."""

    def __init__(self, lines: list[str]) -> None:
        self.write = lines.append


def _as_dicts(
    keys: list[str], batches: Iterable[Sequence[Any]], fixups: list[tuple[str, Fixup]]
) -> Iterator[list[dict[str, Any]]]:
    for batch in batches:
        dicts = [dict(zip(keys, row, strict=True)) for row in batch]
        if fixups:
            for d in dicts:
                for k, fix in fixups:
                    d[k] = fix(d[k])
        yield dicts


def _encode_records(batches: Iterable[list[dict[str, Any]]], ndjson: bool) -> Iterator[bytes]:
    buf = bytearray()
    first = True
    for dicts in batches:
        if not dicts:
            continue
        if ndjson:
            buf += b"".join(orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE) for d in dicts)
        else:
            if not first:
                buf += b","
            buf += orjson.dumps(dicts)[1:-1]
            first = False
        if len(buf) >= CHUNK_SIZE:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)


def _register_protect(conn: Connection) -> None:
    """``kasar_protect`` for SQLite: SQL picks the rare risky cell, Python protects it."""
    dbapi = cast(sqlite3.Connection, conn.connection.dbapi_connection)
    dbapi.create_function("kasar_protect", 1, protect_cell, deterministic=True)


# Only a cell that begins with a quote or a trigger, and is not a plain signed
# integer (as every E.164 phone is), calls Python; every trigger sorts below "A".
_SQLITE_PROTECTED = (
    "CASE WHEN unicode({x}) > 64 THEN {x}"
    " WHEN unicode({x}) IN (9, 13, 39, 43, 45, 61, 64)"
    " AND NOT ({x} GLOB '[+-][0-9]*' AND substr({x}, 2) NOT GLOB '*[^0-9]*')"
    " THEN kasar_protect({x})"
    " WHEN {x} <> '' THEN {x} END"
)
# SQLAlchemy stores YYYY-MM-DD HH:MM:SS.ffffff (26 characters); any other length
# gets its fraction padded to six digits the long way.
_SQLITE_DATETIME = (
    "CASE WHEN length({x}) = 26 THEN replace({x}, ' ', 'T') || 'Z'"
    " ELSE substr({x}, 1, 10) || 'T' || substr({x}, 12, 8) || '.'"
    " || substr(substr({x}, 21) || '000000', 1, 6) || 'Z' END"
)
_SQLITE_CSV = {
    CellKind.TEXT: _SQLITE_PROTECTED,
    CellKind.PLAIN: "{x}",
    CellKind.INTEGER: "{x}",
    # The csv module writes floats with repr, as number_text does.
    CellKind.NUMBER: (
        "CASE WHEN {x} = CAST({x} AS INTEGER) AND abs({x}) < 1e18"
        " THEN CAST({x} AS INTEGER) ELSE {x} END"
    ),
    CellKind.BOOLEAN: "CASE {x} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END",
    CellKind.DATE: "{x}",
    CellKind.DATETIME: _SQLITE_DATETIME,
    CellKind.LIST: _SQLITE_PROTECTED.replace(
        "{x}", "(SELECT group_concat(value, ', ') FROM json_each({x}))"
    ),
    CellKind.OBJECT: _SQLITE_PROTECTED,
}
# Booleans, numbers and JSON values are finished in Python (_FIXUPS).
_SQLITE_JSON = {
    **dict.fromkeys(CellKind, "{x}"),
    CellKind.TEXT: "NULLIF({x}, '')",
    CellKind.PLAIN: "NULLIF({x}, '')",
    CellKind.DATETIME: _SQLITE_DATETIME,
}


def _sqlite_csv_cell(x: str, kind: CellKind) -> str:
    """The SQLite twin of ``service.csv_cell``."""
    return _SQLITE_CSV[kind].format(x=x)


def _sqlite_json_cell(x: str, kind: CellKind) -> str:
    return _SQLITE_JSON[kind].format(x=x)


def _json_text(value: Any) -> Any:
    return None if value is None else orjson.Fragment(value)


def _boolean(value: Any) -> Any:
    return None if value is None else bool(value)


_FIXUPS: dict[CellKind, Fixup] = {
    CellKind.NUMBER: json_number,
    CellKind.BOOLEAN: _boolean,
    CellKind.LIST: _json_text,
    CellKind.OBJECT: _json_text,
}
