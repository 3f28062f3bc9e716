"""Reading import files (CSV, XLSX, JSON, NDJSON) as lazy streams of records.

``open_rows`` picks the format and encoding from the first bytes, reads the header
(or the first record) at once so that errors about the file's shape come early,
and returns a ``RowSource`` whose ``rows`` are read lazily: memory stays flat
whatever the file's size (XLSX goes through openpyxl's read-only mode). Problems
met while iterating raise ``ValidationFailed`` naming the line, row or record.
The stream must stay open until ``rows`` is exhausted.

The readers live next door: ``decoding`` (bytes to text and lines), ``columns``
(headers and column-to-field mapping), ``csv_rows``, ``xlsx_rows`` and
``json_stream``. This module keeps their public names.
"""

from __future__ import annotations

import itertools
import json
from pathlib import PurePath
from typing import IO

from kasar.errors import ValidationFailed
from kasar.imports.columns import match_columns, normalise_column_name
from kasar.imports.csv_rows import DELIMITERS, open_csv, sniff_delimiter
from kasar.imports.decoding import choose_encoding, text_chunks
from kasar.imports.json_stream import MAX_JSON_VALUE_CHARS, open_json, open_ndjson
from kasar.imports.source import Rows, RowSource
from kasar.imports.xlsx_rows import open_xlsx

__all__ = [
    "CHUNK_SIZE",
    "DELIMITERS",
    "FORMATS",
    "HEAD_SIZE",
    "MAX_JSON_VALUE_CHARS",
    "RowSource",
    "Rows",
    "detect_format",
    "match_columns",
    "normalise_column_name",
    "open_rows",
    "sniff_delimiter",
]

FORMATS = ("csv", "xlsx", "json", "ndjson")
HEAD_SIZE = 64 * 1024
CHUNK_SIZE = 64 * 1024
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}


def open_rows(
    stream: IO[bytes],
    *,
    filename: str | None = None,
    format: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> RowSource:
    """Open an import file; ``format``, ``encoding`` and ``delimiter`` override detection."""
    start = stream.tell() if stream.seekable() else None
    head = stream.read(HEAD_SIZE)
    fmt = format.lower() if format else detect_format(head, filename)
    if fmt not in FORMATS:
        raise ValidationFailed(f"Unknown file format '{format}'; use one of {', '.join(FORMATS)}")
    if fmt == "xlsx":
        return open_xlsx(stream, start, head)
    enc, skip = choose_encoding(head, encoding)
    byte_chunks = itertools.chain([head[skip:]], iter(lambda: stream.read(CHUNK_SIZE), b""))
    chunks = text_chunks(byte_chunks, enc)
    if fmt == "csv":
        return open_csv(chunks, delimiter)
    return open_json(chunks) if fmt == "json" else open_ndjson(chunks)


def detect_format(head: bytes, filename: str | None) -> str:
    """Content first (zip magic, JSON or NDJSON), then the file extension, else CSV."""
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    enc, skip = choose_encoding(head, None)
    text = head[skip:].decode(enc, "replace").lstrip()
    if text.startswith("["):
        return "json"
    if text.startswith("{"):
        first, _, rest = text.partition("\n")
        try:
            value = json.loads(first)
        except json.JSONDecodeError:
            return "json"  # an object spread over lines: {"records": [...]}
        if isinstance(value, dict) and "records" in value and not rest.lstrip().startswith("{"):
            return "json"
        return "ndjson"
    return _EXTENSIONS.get(PurePath(filename or "").suffix.lower(), "csv")
