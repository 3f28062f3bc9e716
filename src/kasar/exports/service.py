"""The export engine (spec §8): which rows, in which order, and what each cell says.

A library, no HTTP: the route, the CLI, the MCP tool and the export jobs parse
their input with ``parse_request`` and hand the ``ExportRequest`` to the writers in
``kasar.exports.writers``. This module also holds the *reference* formatting of
a cell (``json_value``, ``csv_cell``): the fast writers let the database format
cells in SQL, and the tests hold them to this reference byte for byte.

The caller owns the transaction. ``db.engine.snapshot_transaction`` gives one consistent
snapshot, so that the ``total`` of a JSON export counts the rows it streams.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Select

from kasar.errors import ValidationFailed
from kasar.exports.cells import protect_cell
from kasar.records.columns import KeyColumns
from kasar.records.filters import Group, parse_filters
from kasar.records.query import RecordQuery, build_select, count_matching, parse_keys, parse_sort
from kasar.schema.model import SYSTEM_KEYS, KeyRole
from kasar.schema.repository import Workspace
from kasar.schema.types import NUMERIC_TYPES, TEXT_LIKE_TYPES, FieldType

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
FORMATS = ("json", "csv", "ndjson")
STREAM_BATCH = 1000
# Integral numbers are written without ".0" while they fit a 64-bit integer.
INT_RANGE = 1e18


@dataclass(frozen=True)
class ExportRequest:
    """What to export; ``limit`` None means no cap (jobs and the CLI)."""

    object_name: str
    keys: list[str]
    filter: Group | None = None
    sort_by: str = "created_at"
    sort_dir: str = "desc"
    limit: int | None = None


class CellKind(StrEnum):
    """How a key's value is written, whatever its field type is called."""

    TEXT = "text"
    PLAIN = "plain"  # text that never needs formula protection: ids, E.164 phones
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    LIST = "list"  # MULTI_SELECT, stored as a JSON list
    OBJECT = "object"  # ADDRESS, stored as a JSON object


def parse_format(raw: str | None, allowed: Sequence[str] = ("json", "csv")) -> str:
    fmt = (raw or "").strip().lower() or "json"
    if fmt not in allowed:
        raise ValidationFailed(f"Unknown format '{raw}': use {' or '.join(allowed)}")
    return fmt


def parse_limit(raw: str | int, *, maximum: int = MAX_LIMIT) -> int:
    """The ``limit`` parameter: a plain decimal integer from 1 to ``maximum``."""
    message = f"limit must be an integer between 1 and {maximum}"
    if isinstance(raw, bool):
        raise ValidationFailed(message)
    if isinstance(raw, str):
        text = raw.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 12:
            raise ValidationFailed(message)
        raw = int(text)
    if not 1 <= raw <= maximum:
        raise ValidationFailed(message)
    return raw


def parse_request(
    ws: Workspace,
    object_name: str,
    *,
    fields: str | None = None,
    filter_field: str | None = None,
    filter_operator: str | None = None,
    filter_value: str | None = None,
    filters: str | None = None,
    sort_by: str | None = None,
    sort_dir: str | None = None,
    limit: str | int | None = None,
    default_limit: int | None = DEFAULT_LIMIT,
    max_limit: int | None = MAX_LIMIT,
) -> ExportRequest:
    """An ``ExportRequest`` from the textual parameters every shell receives.

    The object is checked first (``INVALID_OBJECT``), then the rest
    (``VALIDATION_ERROR``). ``max_limit`` None lifts the cap (export jobs);
    ``default_limit`` None exports every matching row when no limit is given.
    """
    obj = ws.object(object_name)
    keys = parse_keys(obj, fields, obj.default_export_keys())
    group = parse_filters(filter_field, filter_operator, filter_value, filters)
    key, direction = parse_sort(obj, sort_by, sort_dir)
    if limit is None or (isinstance(limit, str) and not limit.strip()):
        cap = default_limit
    else:
        cap = parse_limit(limit, maximum=max_limit if max_limit is not None else 2**62)
    return ExportRequest(object_name, keys, group, key, direction, cap)


def select_rows(
    conn: Connection, ws: Workspace, req: ExportRequest
) -> tuple[Select[Any], KeyColumns]:
    """The query of an export, with the keys' stored values as its columns.

    Building it converts every filter value, so a bad filter raises here, before
    anything is written. System keys are never empty, so they sort without the
    "empty last" term, which lets both databases walk the (created_at, id) index.
    """
    obj = ws.object(req.object_name)
    query = RecordQuery(req.keys, req.filter, req.sort_by, req.sort_dir)
    stmt, cols = build_select(conn, ws, obj, query)
    if req.sort_by in SYSTEM_KEYS:
        key, id_col = cols.ordered(req.sort_by), cols.table.c.id
        if req.sort_dir == "asc":
            stmt = stmt.order_by(None).order_by(key.asc(), id_col.asc())
        else:
            stmt = stmt.order_by(None).order_by(key.desc(), id_col.desc())
    if req.limit is not None:
        stmt = stmt.limit(req.limit)
    return stmt, cols


def count_total(conn: Connection, ws: Workspace, req: ExportRequest) -> int:
    """How many records match the filter, whatever the limit."""
    return count_matching(conn, ws, ws.object(req.object_name), req.filter)


def cell_kind(cols: KeyColumns, key: str) -> CellKind:
    kind = cols.kind(key)
    ftype = kind.type
    # Ids (UUIDs) and phones (stored as E.164, "+" and digits: a number to a
    # spreadsheet) are what formula protection would leave as they are anyway;
    # skipping the check saves PostgreSQL a few per cent of a CSV export.
    if ftype is None or (ftype is FieldType.PHONES and kind.role is KeyRole.VALUE):
        return CellKind.PLAIN
    if ftype in TEXT_LIKE_TYPES:
        return CellKind.TEXT
    if ftype in NUMERIC_TYPES:
        return CellKind.NUMBER
    return {
        FieldType.INTEGER: CellKind.INTEGER,
        FieldType.BOOLEAN: CellKind.BOOLEAN,
        FieldType.DATE: CellKind.DATE,
        FieldType.DATETIME: CellKind.DATETIME,
        FieldType.MULTI_SELECT: CellKind.LIST,
        FieldType.ADDRESS: CellKind.OBJECT,
    }.get(ftype, CellKind.TEXT)


def key_kinds(conn: Connection, ws: Workspace, req: ExportRequest) -> list[CellKind]:
    cols = KeyColumns(ws, ws.object(req.object_name), conn.dialect.name)
    return [cell_kind(cols, k) for k in req.keys]


def export_rows(conn: Connection, ws: Workspace, req: ExportRequest) -> Iterator[dict[str, Any]]:
    """The records as JSON-ready dicts, read through a server-side cursor.

    This is the reference path (plain Python per cell): the CSV and JSON writers
    produce the same values faster by letting the database format the cells.
    """
    stmt, cols = select_rows(conn, ws, req)
    kinds = [(key, cell_kind(cols, key)) for key in req.keys]
    options = {"stream_results": True, "yield_per": STREAM_BATCH}
    result = conn.execute(stmt, execution_options=options)
    for row in result.mappings():
        yield {key: json_value(kind, row[key]) for key, kind in kinds}


def json_value(kind: CellKind, stored: Any) -> Any:
    """A stored value as the JSON export shows it (before number rendering)."""
    if stored is None:
        return None
    if kind in (CellKind.TEXT, CellKind.PLAIN):
        return str(stored) or None
    if kind is CellKind.INTEGER:
        return int(stored)
    if kind is CellKind.NUMBER:
        return float(stored)
    if kind is CellKind.BOOLEAN:
        return bool(stored)
    if kind is CellKind.DATE:
        day = stored.date() if isinstance(stored, datetime) else stored
        return day.isoformat() if isinstance(day, date) else str(day)
    if kind is CellKind.DATETIME:
        return datetime_text(stored)
    return json.loads(stored) if isinstance(stored, str) else stored


def datetime_text(stamp: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ``: always six fraction digits, so that a column
    of an export has one width and the database can produce the same text."""
    return stamp.isoformat(timespec="microseconds") + "Z"


def number_text(value: float) -> str:
    """A number as text: integral values without ``.0`` (``1500``), others as the
    shortest text that reads back exactly (``0.1``, ``1e-05``), as PostgreSQL does."""
    if value.is_integer() and abs(value) < INT_RANGE:
        return str(int(value))
    return repr(value)


def csv_cell(kind: CellKind, value: Any) -> str:
    """A JSON-ready value (``json_value``) as a CSV cell: empty for no value, text
    protected against formula injection, lists joined with ``", "``."""
    if value is None:
        return ""
    if kind is CellKind.TEXT:
        return protect_cell(value)
    if kind is CellKind.NUMBER:
        return number_text(value)
    if kind is CellKind.BOOLEAN:
        return "true" if value else "false"
    if kind is CellKind.LIST:
        return protect_cell(", ".join(value))
    if kind is CellKind.OBJECT:
        return protect_cell(json.dumps(value, ensure_ascii=False))
    return str(value)  # PLAIN, INTEGER, DATE, DATETIME
