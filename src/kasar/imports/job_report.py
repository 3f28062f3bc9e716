"""An import job's report: one line per file row that was not simply created
(a duplicate, an update, a failure), read page by page so that memory stays flat
and no transaction stays open while the client downloads."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import Engine, Row, select

from kasar.db import tables
from kasar.db.engine import read_transaction
from kasar.exports.cells import protect_cell

PAGE = 5000
COLUMNS = ("row", "outcome", "record_id", "duplicate_of", "matched_on", "error_code", "message")
JR = tables.job_rows


def report_rows(engine: Engine, job_id: str) -> Iterator[dict[str, Any]]:
    last = 0
    while True:
        with read_transaction(engine) as conn:
            page = conn.execute(
                select(
                    JR.c.row_number,
                    JR.c.status,
                    JR.c.record_id,
                    JR.c.duplicate_of,
                    JR.c.matched_on,
                    JR.c.error_code,
                    JR.c.message,
                )
                .where(JR.c.job_id == job_id, JR.c.status != "created", JR.c.row_number > last)
                .order_by(JR.c.row_number)
                .limit(PAGE)
            ).all()
        if not page:
            return
        last = page[-1][0]
        yield from (_line(r) for r in page)


def _line(r: Row[Any, Any, Any, Any, Any, Any, Any]) -> dict[str, Any]:
    return {
        "row": r.row_number,
        "outcome": r.status,
        "record_id": r.record_id,
        "duplicate_of": r.duplicate_of,
        "matched_on": r.matched_on.split(",") if r.matched_on else [],
        "error_code": r.error_code,
        "message": r.message,
    }


def report_csv(engine: Engine, job_id: str) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for n, line in enumerate(report_rows(engine, job_id), 1):
        line["matched_on"] = " ".join(line["matched_on"])
        writer.writerow(
            protect_cell(str(line[c])) if isinstance(line[c], str) else line[c] for c in COLUMNS
        )
        if n % 1000 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def report_json(engine: Engine, job: dict[str, Any]) -> Iterator[bytes]:
    """``{"job": {...}, "rows": [...]}``, the job as it was when the report began."""
    yield b'{"job":' + orjson.dumps(job) + b',"rows":['
    for n, line in enumerate(report_rows(engine, str(job["id"]))):
        yield (b"," if n else b"") + orjson.dumps(line)
    yield b"]}"
