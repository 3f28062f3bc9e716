"""``kasar export``: stream the export engine's writers to a file or standard
output, locally (no row cap) or through a server's export API (at most 10,000).

A file is written as ``FILE.part`` and renamed when complete, so that a failed
export never leaves a file that looks finished.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from rich.markup import escape

from kasar.cli import err, open_engine, out
from kasar.cli_import import progress_bar
from kasar.cli_remote import Remote
from kasar.db.engine import snapshot_transaction
from kasar.errors import ValidationFailed
from kasar.exports.service import (
    FORMATS,
    MAX_LIMIT,
    count_total,
    parse_request,
)
from kasar.exports.writers import WRITERS
from kasar.imports.files import open_rows
from kasar.records.filters import NULL_OPS, canonical_op
from kasar.schema.repository import load_workspace

_EXTENSIONS = {".csv": "csv", ".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson"}
_TOTAL = re.compile(rb'"total":(\d+)\}\s*$')


def export_format(raw: str | None, output: Path | None) -> str:
    """``--format``, else the output file's extension, else JSON."""
    if raw is None:
        return _EXTENSIONS.get(output.suffix.lower(), "json") if output else "json"
    fmt = raw.strip().lower()
    if fmt not in FORMATS:
        raise ValidationFailed(f"Unknown format '{raw}': use {', '.join(FORMATS)}")
    return fmt


def filter_option(text: str) -> dict[str, Any]:
    """``'status eq qualified'`` as a filter condition: a field, an operator (or one
    of its aliases) and the rest of the text as the value (one pair of surrounding
    quotes is removed). ``is_null`` and ``is_not_null`` take no value."""
    parts = text.strip().split(None, 2)
    if len(parts) < 2:
        raise ValidationFailed(f"--filter takes 'field operator value', not '{text}'")
    op = canonical_op(parts[1])
    value = parts[2].strip() if len(parts) == 3 else None
    if value and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    if op in NULL_OPS:
        if value is not None:
            raise ValidationFailed(f"--filter '{text}': operator '{op}' takes no value")
        return {"field": parts[0], "operator": op}
    if value is None:
        raise ValidationFailed(f"--filter '{text}': operator '{op}' needs a value")
    return {"field": parts[0], "operator": op, "value": value}


def filters_json(options: list[str] | None) -> str | None:
    """Repeated ``--filter`` options, ANDed, as a JSON FilterGroup."""
    if not options:
        return None
    conditions = [filter_option(text) for text in options]
    return json.dumps({"operator": "and", "conditions": conditions})


def export_local(
    database_url: str, object_name: str, fmt: str, output: Path | None, **params: Any
) -> None:
    engine = open_engine(database_url)
    try:
        with snapshot_transaction(engine) as conn:
            ws = load_workspace(conn)
            req = parse_request(ws, object_name, default_limit=None, max_limit=None, **params)
            total = count_total(conn, ws, req)
            expected = total if req.limit is None else min(total, req.limit)
            write_chunks(WRITERS[fmt](conn, ws, req), output, fmt, expected)
    finally:
        engine.dispose()
    _done(object_name, output, expected)


def export_remote(
    server: str,
    token: str | None,
    object_name: str,
    fmt: str,
    output: Path | None,
    **params: Any,
) -> None:
    """Through GET /api/v1/export (JSON or CSV; NDJSON is made here from the JSON)."""
    limit = params.pop("limit", None)
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(
            f"A remote export gives 1 to {MAX_LIMIT:,} records; to export more, "
            "run it locally (--database-url) or as an export job"
        )
    query = {k: str(v) for k, v in params.items() if v is not None}
    query |= {"format": "json" if fmt == "ndjson" else fmt, "limit": str(limit or MAX_LIMIT)}
    tail = bytearray()
    with Remote(server, token) as remote, remote.stream(f"/export/{object_name}", query) as got:
        chunks = _keep_tail(got.iter_bytes(), tail)
        if fmt == "ndjson":
            chunks = _ndjson(chunks)
        written = write_chunks(chunks, output, fmt, limit)
    found = _TOTAL.search(bytes(tail)) if fmt == "json" else None
    if limit is None and (int(found.group(1)) if found else written) >= MAX_LIMIT:
        err.print(
            f"[yellow]The server sends at most {MAX_LIMIT:,} records[/yellow] "
            f"({found.group(1).decode() + ' match' if found else 'there may be more'}); "
            "export locally or with an export job for all of them.",
            highlight=False,
        )
    _done(object_name, output, written)


def _keep_tail(chunks: Iterable[bytes], tail: bytearray) -> Iterator[bytes]:
    for chunk in chunks:
        tail[:] = (bytes(tail) + chunk)[-64:]
        yield chunk


def _ndjson(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """A JSON export document as NDJSON, one record at a time (the import reader
    walks the document lazily)."""
    source = open_rows(io.BufferedReader(_ChunkStream(chunks)), format="json")
    for _, record in source.rows:
        yield orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


class _ChunkStream(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks, self.pending = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            self.pending = next(self.chunks, b"")
            if not self.pending:
                return 0
        size = min(len(buffer), len(self.pending))
        buffer[:size], self.pending = self.pending[:size], self.pending[size:]
        return size


def write_chunks(
    chunks: Iterable[bytes], output: Path | None, fmt: str, expected: int | None
) -> int:
    """Write to ``output`` (or standard output); the number of records written,
    counted from the bytes (lines, or records of the JSON document)."""
    counter = _RecordCounter(fmt)
    if output is None:
        sink = sys.stdout.buffer
        try:
            for chunk in chunks:
                sink.write(chunk)
                counter.feed(chunk)
            sink.flush()
        except BrokenPipeError:  # `kasar export ... | head`: the reader has had enough
            pass
        return counter.count
    with _part_file(output) as sink, progress_bar() as bar:
        task = bar.add_task(f"Exporting to {escape(output.name)}", total=expected, rows=0)
        for chunk in chunks:
            sink.write(chunk)
            counter.feed(chunk)
            shown = min(counter.count, expected) if expected is not None else counter.count
            bar.update(task, completed=shown, rows=shown)
        bar.update(task, completed=expected or counter.count, rows=counter.count)
    return counter.count


@contextmanager
def _part_file(output: Path) -> Iterator[BinaryIO]:
    part = output.with_name(output.name + ".part")
    try:
        with part.open("wb") as sink:
            yield sink
        part.replace(output)
    finally:
        part.unlink(missing_ok=True)


class _RecordCounter:
    """Records in the bytes written so far: NDJSON lines, CSV lines after the header
    (a cell with a line break counts twice, which a progress bar can live with),
    JSON records by the ``},{`` between them."""

    def __init__(self, fmt: str) -> None:
        self.fmt, self.units, self.seen_any, self.last = fmt, 0, False, b""

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self.fmt == "json":
            joined = self.last + chunk
            self.units += joined.count(b'},{"') - self.last.count(b'},{"')
            self.seen_any = self.seen_any or b'"records":[{' in joined
            self.last = joined[-3:]
        else:
            self.units += chunk.count(b"\n")

    @property
    def count(self) -> int:
        if self.fmt == "json":
            return self.units + 1 if self.seen_any else 0
        return max(self.units - 1, 0) if self.fmt == "csv" else self.units


def _done(object_name: str, output: Path | None, written: int) -> None:
    if output is not None:
        noun = "record" if written == 1 else "records"
        text = f"Exported {written:,} {noun} of {object_name} to {escape(str(output))}"
        out.print(text, soft_wrap=True)
