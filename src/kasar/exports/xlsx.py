"""XLSX export (export jobs only): openpyxl's write-only mode, so memory stays flat.

Rows go one at a time into openpyxl's temporary sheet file on disk; ``save`` then
zips the workbook into ``out``, which only needs ``write`` (``zipfile`` streams to
an object that cannot seek), so the job hands it its blob writer directly.

Cells hold the same values as a CSV export: text formula-protected
(``protect_cell``: openpyxl would store ``=...`` as a formula), lists joined with
``", "``, addresses as JSON text, date-times as the export's UTC text (Excel knows
no time zones, and keeps only milliseconds); integers, numbers and booleans are
typed cells, dates are date cells. A sheet holds at most 1,048,576 rows: longer
exports continue on ``<object> 2``, ``<object> 3``..., each with the header row.
Excel limits a cell to 32,767 characters (openpyxl cuts longer text) and refuses
control characters other than tab, LF and CR (they are removed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.worksheet._writer import ALL_TEMP_FILES
from sqlalchemy import Connection

from kasar.exports.service import (
    INT_RANGE,
    CellKind,
    ExportRequest,
    csv_cell,
    export_rows,
    key_kinds,
)
from kasar.schema.repository import Workspace

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_SHEET_ROWS = 1_048_576  # Excel's limit, the header row included
PROGRESS_ROWS = 1000


class BinarySink(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


def xlsx_cell(kind: CellKind, value: Any) -> Any:
    """A JSON-ready value (``service.json_value``) as an XLSX cell value."""
    if value is None:
        return None
    if kind is CellKind.INTEGER or kind is CellKind.BOOLEAN:
        return value
    if kind is CellKind.NUMBER:
        number = float(value)
        return int(number) if number.is_integer() and abs(number) < INT_RANGE else number
    if kind is CellKind.DATE:
        return dt.date.fromisoformat(value)
    text = csv_cell(kind, value)
    return ILLEGAL_CHARACTERS_RE.sub("", text) if text else None


def write_xlsx(
    conn: Connection,
    ws: Workspace,
    req: ExportRequest,
    out: BinarySink,
    on_rows: Callable[[int], None] | None = None,
) -> int:
    """Write the workbook into ``out``; returns the number of records.

    ``on_rows(n)`` is called every ``PROGRESS_ROWS`` records (and for the rest at
    the end), so that a job can report progress and notice a cancel meanwhile.
    """
    kinds = list(zip(req.keys, key_kinds(conn, ws, req), strict=True))
    book = openpyxl.Workbook(write_only=True)
    try:
        sheet, used, count, pending = None, MAX_SHEET_ROWS, 0, 0
        for record in export_rows(conn, ws, req):
            if used >= MAX_SHEET_ROWS:
                sheet = _new_sheet(book, req, len(book.worksheets) + 1)
                used = 1
            assert sheet is not None
            sheet.append([xlsx_cell(kind, record[key]) for key, kind in kinds])
            used += 1
            count += 1
            pending += 1
            if on_rows is not None and pending >= PROGRESS_ROWS:
                on_rows(pending)
                pending = 0
        if sheet is None:
            _new_sheet(book, req, 1)
        if on_rows is not None and pending:
            on_rows(pending)
        book.save(out)
        return count
    finally:
        _remove_temporary_files(book)


def _new_sheet(book: Any, req: ExportRequest, number: int) -> Any:
    title = req.object_name[:25] if number == 1 else f"{req.object_name[:25]} {number}"
    sheet = book.create_sheet(title)
    sheet.append(list(req.keys))
    return sheet


def _remove_temporary_files(book: Any) -> None:
    """openpyxl removes a sheet's temporary file once saved; an export that stops
    before (an error, a cancel) must not leave it behind in a long-lived worker."""
    for sheet in book.worksheets:
        writer = getattr(sheet, "_writer", None)
        if writer is None:
            continue
        if not sheet.closed:
            sheet.close()
        if writer.out in ALL_TEMP_FILES:
            writer.cleanup()
