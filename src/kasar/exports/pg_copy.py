"""PostgreSQL writes the export: cells formatted in SQL, CSV straight out of ``COPY``.

``COPY ... TO STDOUT`` runs at about 600,000 rows/s on this kind of machine; a
Python loop per row cannot come near it. So every cell is formatted in SQL exactly
as ``service.csv_cell`` would (the tests compare the two), and for CSV Python only
moves bytes: one ``COPY`` row is one record.

JSON is different: ``row_to_json`` on the server was measured slower than
streaming the same formatted cells to Python and letting ``orjson`` write them,
which also spreads the work over the database and the application. So JSON reads
rows in batches (``stream_rows``) and ``writers`` encodes them.

The cells are SQL text templates around the SQL of each key's stored value: the
key expressions hold only schema names and constants, and building the same cells
as SQLAlchemy constructs cost more to compile than the server took to run them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import psycopg
from sqlalchemy import Connection, Select

from kasar.exports.service import CellKind

CHUNK_SIZE = 64 * 1024
BATCH_ROWS = 100  # rows per chunk: as fast as larger ones, and less memory

# ``protect_cell`` in SQL, empty text as no value. Every trigger (= + - @ tab CR) and
# the quote sort below "A", so most cells pass one comparison; a signed run of digits
# (every E.164 phone) is a plain number, recognised without the regex.
_PROTECTED = (
    "CASE WHEN ascii({x}) > 64 THEN {x}"
    " WHEN ascii({x}) IN (9, 13, 39, 43, 45, 61, 64) THEN CASE"
    " WHEN ascii({x}) IN (43, 45) AND length({x}) > 1"
    " AND ltrim(substr({x}, 2), '0123456789') = '' THEN {x}"
    " WHEN ascii(ltrim({x}, '''')) IN (9, 13, 43, 45, 61, 64)"
    " AND {x} !~ '^[+-]?[0-9]+([.][0-9]+)?$' THEN '''' || {x}"
    " ELSE {x} END"
    " WHEN {x} <> '' THEN {x} END"
)
_INTEGRAL = "{x} = trunc({x}) AND abs({x}) < 1e18"
_DATE = "to_char({x}, 'YYYY-MM-DD')"
_DATETIME = 'to_char({x}, \'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\')'
_LIST = "(SELECT string_agg(value, ', ') FROM json_array_elements_text(({x})::json))"

_CSV = {
    CellKind.TEXT: _PROTECTED,
    CellKind.PLAIN: "NULLIF({x}, '')",
    CellKind.INTEGER: "{x}",
    CellKind.NUMBER: (
        f"CASE WHEN {_INTEGRAL} THEN trunc({{x}})::bigint::text ELSE ({{x}})::text END"
    ),
    CellKind.BOOLEAN: "CASE WHEN {x} THEN 'true' WHEN NOT {x} THEN 'false' END",
    CellKind.DATE: _DATE,
    CellKind.DATETIME: _DATETIME,
    CellKind.LIST: _PROTECTED.replace("{x}", _LIST),
    CellKind.OBJECT: _PROTECTED,
}
# Numbers, booleans and JSON values are finished in Python, as for SQLite.
_JSON = {
    **dict.fromkeys(CellKind, "{x}"),
    CellKind.TEXT: "NULLIF({x}, '')",
    CellKind.PLAIN: "NULLIF({x}, '')",
    CellKind.DATE: _DATE,
    CellKind.DATETIME: _DATETIME,
    CellKind.LIST: "({x})::text",
    CellKind.OBJECT: "({x})::text",
}


def csv_cell(x: str, kind: CellKind) -> str:
    """The SQL twin of ``service.csv_cell``: ``x`` is the SQL of the key's stored value."""
    return _CSV[kind].format(x=x)


def json_cell(x: str, kind: CellKind) -> str:
    """The SQL part of ``service.json_value`` (``writers`` finishes the values)."""
    return _JSON[kind].format(x=x)


def _session(conn: Connection) -> psycopg.Connection[Any]:
    # Shortest exact text for floats, whatever the session was configured with.
    conn.exec_driver_sql("SET LOCAL extra_float_digits = 1")
    return cast(psycopg.Connection[Any], conn.connection.dbapi_connection)


def _compiled(conn: Connection, stmt: Select[Any]) -> tuple[str, Any]:
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    return str(compiled), compiled.params


def copy_csv(conn: Connection, stmt: Select[Any]) -> Iterator[tuple[bytes, int]]:
    """RFC 4180 CSV with its header row, in chunks of about 64 KB, each with the
    number of records it holds (the header is none).

    libpq hands over one ``COPY`` row at a time. ``COPY`` ends rows with LF where
    the csv module (and RFC 4180) use CRLF, and for a one-column export writes an
    empty cell as an empty line (which readers skip) and quotes a lone ``\\.``; the
    loop turns each into the csv module's form.
    """
    sql, params = _compiled(conn, stmt)
    buf = bytearray()
    records = -1  # the first row is the header
    with (
        _session(conn).cursor() as cur,
        cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)", params) as copy,
    ):
        for row in copy:
            records += 1
            if len(row) == 1:
                buf += b'""\r\n'
            elif row == b'"\\."\n':
                buf += b"\\.\r\n"
            else:
                buf += row
                buf[-1:] = b"\r\n"
            if len(buf) >= CHUNK_SIZE:
                yield bytes(buf), records
                buf.clear()
                records = 0
    if buf:
        yield bytes(buf), records


def stream_rows(conn: Connection, stmt: Select[Any]) -> Iterator[list[tuple[Any, ...]]]:
    """The rows in batches, streamed: the server sends them without waiting for a
    ``FETCH`` per batch (libpq's chunked mode), so it formats the next rows while
    Python encodes these. Memory stays flat: libpq holds one chunk at a time."""
    sql, params = _compiled(conn, stmt)
    chunked = BATCH_ROWS if psycopg.pq.version() >= 170000 else 1  # chunks need libpq 17
    batch: list[tuple[Any, ...]] = []
    with _session(conn).cursor() as cur:
        for row in cur.stream(sql, params, size=chunked):
            batch.append(row)
            if len(batch) >= BATCH_ROWS:
                yield batch
                batch = []
    if batch:
        yield batch
