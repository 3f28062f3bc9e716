"""XLSX import files: the first sheet through openpyxl's read-only mode, so that
memory stays flat whatever the workbook's size."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from typing import IO, Any

import openpyxl

from kasar.errors import ValidationFailed
from kasar.exports.cells import unprotect_cell
from kasar.imports.columns import check_header
from kasar.imports.source import Rows, RowSource


def open_xlsx(stream: IO[bytes], start: int | None, head: bytes) -> RowSource:
    """``head`` was already read from ``stream``; ``start`` is where it began (None
    when the stream cannot seek)."""
    spool: IO[bytes] | None = None
    if start is None:  # openpyxl needs to seek: spool a pipe to disk
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the rows are done
        spool.write(head)
        shutil.copyfileobj(stream, spool)
        stream, start = spool, 0
    stream.seek(start)
    try:
        book = openpyxl.load_workbook(stream, read_only=True, data_only=True)
    except Exception:  # zipfile, XML and openpyxl errors alike mean "not a workbook"
        _close(None, spool)
        raise ValidationFailed("The file is not a readable XLSX workbook") from None
    rows: Iterator[tuple[int, Any]] = iter(())
    if book.worksheets:
        book.worksheets[0].reset_dimensions()  # trust the cells, not a wrong <dimension>
        rows = enumerate(book.worksheets[0].iter_rows(values_only=True), 1)
    for header_row, values in rows:
        names = ["" if v is None else str(v) for v in values]
        while names and not names[-1].strip():
            names.pop()
        if names:
            try:
                columns = check_header(names)
            except ValidationFailed:
                _close(book, spool)
                raise
            return RowSource(columns, _xlsx_rows(book, spool, rows, columns, header_row), "xlsx")
    _close(book, spool)
    raise ValidationFailed("The file is empty")


def _close(book: Any, spool: IO[bytes] | None) -> None:
    if book is not None:
        book.close()
    if spool is not None:
        spool.close()


def _xlsx_rows(
    book: Any,
    spool: IO[bytes] | None,
    rows: Iterator[tuple[int, Any]],
    columns: list[str],
    top: int,
) -> Rows:
    """Row numbers count from the header row, so row n is sheet row ``top + n``."""
    try:
        for sheet_row, values in rows:
            cells = [_xlsx_value(v) for v in values]
            if any(c is not None for c in cells[len(columns) :]):
                raise ValidationFailed(
                    f"Row {sheet_row}: a value beyond the header's {len(columns)} columns",
                    {"row": sheet_row},
                )
            if any(c is not None for c in cells):
                record: dict[str, object] = dict.fromkeys(columns)
                record.update(zip(columns, cells, strict=False))
                yield sheet_row - top, record
    finally:
        _close(book, spool)


def _xlsx_value(value: object) -> object:
    """Dates as ISO text (a midnight datetime as a date), empty text as None."""
    if isinstance(value, dt.datetime):
        midnight = value.time() == dt.time() and value.tzinfo is None
        return value.date().isoformat() if midnight else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, str):
        return unprotect_cell(value) if value else None
    return value
