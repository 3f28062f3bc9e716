"""Reading import files (CSV, XLSX, JSON, NDJSON) as lazy streams of records.

``open_rows`` picks the format and encoding from the first bytes, reads the header
(or the first record) at once so that errors about the file's shape come early,
and returns a ``RowSource`` whose ``rows`` are read lazily: memory stays flat
whatever the file's size (XLSX goes through openpyxl's read-only mode). Problems
met while iterating raise ``ValidationFailed`` naming the line, row or record.
The stream must stay open until ``rows`` is exhausted.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import itertools
import json
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, BinaryIO

import openpyxl

from kasar.errors import ValidationFailed
from kasar.exports.cells import unprotect_cell

FORMATS = ("csv", "xlsx", "json", "ndjson")
HEAD_SIZE = 64 * 1024
CHUNK_SIZE = 64 * 1024
MAX_JSON_VALUE_CHARS = 64 * 1024 * 1024
DELIMITERS = ",;\t|"
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}
_JSON_NON_SPACE = re.compile(r"[^ \t\n\r]")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")

Rows = Iterator[tuple[int, dict[str, object]]]


@dataclass
class RowSource:
    """The columns of a file and its records as ``(row number, record)`` pairs.

    Row numbers: for CSV and XLSX, the data row counted from the header (blank rows
    are skipped but keep their number); for JSON and NDJSON, the record's index + 1.
    For JSON and NDJSON, ``columns`` starts as the keys of the first record and grows
    (in place) as later records bring new keys; it is complete once ``rows`` is.
    """

    columns: list[str]
    rows: Rows
    format: str


def open_rows(
    stream: BinaryIO,
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
        return _open_xlsx(stream, start, head)
    enc, skip = _choose_encoding(head, encoding)
    byte_chunks = itertools.chain([head[skip:]], iter(lambda: stream.read(CHUNK_SIZE), b""))
    chunks = _text_chunks(byte_chunks, enc)
    if fmt == "csv":
        return _open_csv(chunks, delimiter)
    return _open_json(chunks) if fmt == "json" else _open_ndjson(chunks)


def detect_format(head: bytes, filename: str | None) -> str:
    """Content first (zip magic, JSON or NDJSON), then the file extension, else CSV."""
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    enc, skip = _choose_encoding(head, None)
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


def normalise_column_name(name: str) -> str:
    """``" Prénom-Nom.2 "`` -> ``"prenom_nom_2"``: lower case, no accents, ``_`` separators."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"[\s.\-_]+", "_", text).strip("_")


def match_columns(
    columns: Sequence[str],
    field_names: Sequence[str],
    overrides: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """Map file columns to fields: ``(column -> field, unmatched columns)``.

    An override ``{column: field}`` wins; ``""`` ignores the column (it is then in
    neither result). Other columns match a field by exact or normalised name. A
    column whose field an override already took is unmatched; two overrides, or two
    matched columns, for one field are an error.
    """
    fields = set(field_names)
    by_norm: dict[str, str] = {}
    for name in field_names:
        by_norm.setdefault(normalise_column_name(name), name)

    def lookup(name: str) -> str | None:
        return name if name in fields else by_norm.get(normalise_column_name(name))

    overrides = dict(overrides or {})
    missing = [c for c in overrides if c not in columns]
    if missing:
        names = ", ".join(f"'{c}'" for c in missing)
        raise ValidationFailed(f"The mapping names columns not in the file: {names}", missing)
    taken: dict[str, str] = {}  # field -> column
    for column, target in overrides.items():
        field = lookup(target) if target else None
        if target and field is None:
            raise ValidationFailed(
                f"The mapping sends column '{column}' to unknown field '{target}'"
            )
        if field is not None:
            _take(taken, field, column)
    explicit = set(taken)
    unmatched = []
    for column in columns:
        if column in overrides:
            continue
        field = lookup(column)
        if field is None or field in explicit:
            unmatched.append(column)
        else:
            _take(taken, field, column)
    by_column = {column: field for field, column in taken.items()}
    return {c: by_column[c] for c in columns if c in by_column}, unmatched


def _take(taken: dict[str, str], field: str, column: str) -> None:
    if field in taken:
        raise ValidationFailed(
            f"Columns '{taken[field]}' and '{column}' both map to field '{field}'",
            {"field": field, "columns": [taken[field], column]},
        )
    taken[field] = column


def _choose_encoding(head: bytes, override: str | None) -> tuple[str, int]:
    """The codec to decode with and how many BOM bytes to skip first."""
    if override:
        try:
            name = codecs.lookup(override).name
        except LookupError:
            raise ValidationFailed(f"Unknown encoding '{override}'") from None
        return ("utf-8-sig" if name == "utf-8" else name), 0
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", 0
    for bom, name in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            return name, 2
    sample = head[:4096]
    half = len(sample) // 2
    evens, odds = sample[0::2].count(0), sample[1::2].count(0)
    if half and odds > 0.4 * half and evens == 0:  # ASCII-heavy UTF-16 without a BOM
        return "utf-16-le", 0
    if half and evens > 0.4 * half and odds == 0:
        return "utf-16-be", 0
    return "utf-8", 0


def _text_chunks(chunks: Iterable[bytes], encoding: str) -> Iterator[str]:
    """Decode strictly; an invalid byte is an error naming its line and column."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    line, column, last = 1, 1, ""
    for chunk in itertools.chain(chunks, [None]):
        try:
            text = decoder.decode(b"", True) if chunk is None else decoder.decode(chunk)
        except UnicodeDecodeError as e:
            before = e.object[: e.start].decode(encoding, "replace")
            line, column, last = _advance(before, line, column, last)
            label = encoding.upper().removesuffix("-SIG")
            raise ValidationFailed(
                f"Line {line}: the file is not valid {label} (byte 0x{e.object[e.start]:02x} "
                f"at column {column}); give its encoding, for example latin-1",
                {"line": line, "column": column, "encoding": label.lower()},
            ) from None
        if text:
            line, column, last = _advance(text, line, column, last)
            yield text


def _advance(text: str, line: int, column: int, last: str) -> tuple[int, int, str]:
    """Line and column after ``text``; ``last`` is the previous text's last character."""
    breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
    if last == "\r" and text.startswith("\n"):
        breaks -= 1
    cut = max(text.rfind("\n"), text.rfind("\r"))
    column = column + len(text) if cut < 0 else len(text) - cut
    return line + breaks, column, text[-1:] or last


def _lines(chunks: Iterable[str]) -> Iterator[str]:
    """Physical lines with their endings (``\\n``, ``\\r\\n`` or ``\\r``)."""
    pending = ""
    for text in chunks:
        pending += text
        end = len(pending) - 1 if pending.endswith("\r") else len(pending)
        cut = max(pending.rfind("\n", 0, end), pending.rfind("\r", 0, end))
        if cut >= 0:
            yield from (m.group() for m in _LINE.finditer(pending, 0, cut + 1))
            pending = pending[cut + 1 :]
    if pending:
        yield pending


def _check_header(names: list[str]) -> list[str]:
    names = [n.strip() for n in names]
    if names:
        names[0] = names[0].lstrip("\ufeff").strip()
    empty = [i for i, n in enumerate(names, 1) if not n]
    if empty:
        raise ValidationFailed(
            f"The header has no name for column {', '.join(map(str, empty))}", {"columns": empty}
        )
    seen: dict[str, list[str]] = {}
    for name in names:
        seen.setdefault(name.casefold(), []).append(name)
    repeated = [group for group in seen.values() if len(group) > 1]
    if repeated:
        text = "; ".join(", ".join(group) for group in repeated)
        raise ValidationFailed(f"The header repeats column names: {text}", {"repeated": repeated})
    return names


def sniff_delimiter(sample: str) -> str:
    """Pick among ``, ; tab |`` with csv.Sniffer, else by counting in the first line."""
    cut = max(sample.rfind("\n", 0, 16384), sample.rfind("\r", 0, 16384))
    sample = sample[:cut] if cut > 0 else sample[:16384]
    first_line = re.split(r"\r\n|\r|\n", sample, maxsplit=1)[0]
    try:
        found = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        found = ""
    if found and found in first_line:
        return found
    best = max(DELIMITERS, key=first_line.count)
    return best if best in first_line else ","


def _open_csv(chunks: Iterator[str], delimiter: str | None) -> RowSource:
    sample: list[str] = []
    for text in chunks:  # up to 16 KiB to sniff from, whatever the chunks' size
        sample.append(text)
        if sum(map(len, sample)) >= 16384:
            break
    first = "".join(sample)
    if delimiter:
        delimiter = {"\\t": "\t", "tab": "\t"}.get(delimiter.lower(), delimiter)
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise ValidationFailed(f"Invalid delimiter {delimiter!r}: use one character")
    else:
        delimiter = sniff_delimiter(first)
    reader = csv.reader(_lines(itertools.chain([first], chunks)), delimiter=delimiter, strict=True)
    records = _csv_records(reader)
    for _, cells in records:
        if any(c.strip() for c in cells):
            columns = _check_header(cells)
            return RowSource(columns, _csv_rows(records, columns), "csv")
    raise ValidationFailed("The file is empty")


def _csv_records(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """``(first physical line, cells)`` of each record, blank lines included."""
    line = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise ValidationFailed(f"Line {line}: malformed CSV ({e})", {"line": line}) from None
        yield line, cells
        line = reader.line_num + 1


def _csv_rows(records: Iterator[tuple[int, list[str]]], columns: list[str]) -> Rows:
    width = len(columns)
    for number, (line, cells) in enumerate(records, 1):
        if len(cells) > width:
            raise ValidationFailed(
                f"Line {line}: {len(cells)} cells but the header has {width} columns",
                {"line": line},
            )
        if any(cells):
            record: dict[str, object] = dict.fromkeys(columns)
            for name, cell in zip(columns, cells, strict=False):
                record[name] = unprotect_cell(cell) if cell else None
            yield number, record


def _open_xlsx(stream: BinaryIO, start: int | None, head: bytes) -> RowSource:
    spool: BinaryIO | None = None
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
                columns = _check_header(names)
            except ValidationFailed:
                _close(book, spool)
                raise
            return RowSource(columns, _xlsx_rows(book, spool, rows, columns, header_row), "xlsx")
    _close(book, spool)
    raise ValidationFailed("The file is empty")


def _close(book: Any, spool: BinaryIO | None) -> None:
    if book is not None:
        book.close()
    if spool is not None:
        spool.close()


def _xlsx_rows(
    book: Any, spool: BinaryIO | None, rows: Iterator[tuple[int, Any]], columns: list[str], top: int
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


def _as_record(value: object, number: int, where: str = "") -> dict[str, object]:
    if not isinstance(value, dict):
        raise ValidationFailed(f"Record {number} is not a JSON object{where}", {"record": number})
    return value


def _first_and_rest(records: Rows, fmt: str) -> RowSource:
    """Read the first record now, and let ``columns`` grow with the later ones."""
    first = next(records, None)
    columns = list(first[1]) if first else []

    def rows() -> Rows:
        known = set(columns)
        for number, record in itertools.chain([first] if first else [], records):
            new = [key for key in record if key not in known]
            known.update(new)
            columns.extend(new)
            yield number, record

    return RowSource(columns, rows(), fmt)


def _open_ndjson(chunks: Iterator[str]) -> RowSource:
    def records() -> Rows:
        number = 0
        for line_no, line in enumerate(_lines(chunks), 1):
            text = line.strip()
            if not text:
                continue
            number += 1
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                message = f"Line {line_no}: invalid JSON ({e.msg} at column {e.colno})"
                raise ValidationFailed(message, {"line": line_no}) from None
            yield number, _as_record(value, number, f" (line {line_no})")
        if not number:
            raise ValidationFailed("The file is empty")

    return _first_and_rest(records(), "ndjson")


def _open_json(chunks: Iterator[str]) -> RowSource:
    reader = _JsonReader(chunks)
    numbered = enumerate(reader.records(), 1)
    return _first_and_rest(((n, _as_record(v, n)) for n, v in numbered), "json")


class _JsonReader:
    """Just enough incremental JSON to walk a top-level array, or the "records" array
    of a top-level object, one value at a time: ``raw_decode`` over a window that
    holds the current value and grows only when a value does not fit in it."""

    def __init__(self, chunks: Iterator[str]) -> None:
        self._chunks = chunks
        self._buf, self._pos, self._offset, self._line = "", 0, 0, 1
        self._eof = False
        self._decoder = json.JSONDecoder()

    def records(self) -> Iterator[object]:
        start = self._peek()
        if not start:
            raise ValidationFailed("The file is empty")
        if start == "[":
            yield from self._array()
        elif start == "{":
            found = False
            self._expect("{")
            while self._peek() != "}":
                if self._peek() != '"':
                    raise self._error("Expecting property name enclosed in double quotes")
                key = self._value()
                self._expect(":")
                if key == "records":
                    if self._peek() != "[":
                        raise self._error('"records" must be a list')
                    found = True
                    yield from self._array()
                else:
                    self._value()
                if self._peek() != "}":
                    self._expect(",")
            self._expect("}")
            if not found:
                raise ValidationFailed('A JSON object file must hold its rows in a "records" list')
        else:
            raise self._error("Expecting '[' or '{'")
        if self._peek():
            raise self._error("Extra data after the JSON document")

    def _array(self) -> Iterator[object]:
        self._expect("[")
        if self._peek() == "]":
            self._pos += 1
            return
        while True:
            yield self._value()
            if self._peek() != ",":
                self._expect("]")
                return
            self._pos += 1

    def _fill(self, at_least: int = 0) -> bool:
        """Drop what was parsed and read at least one more chunk; False at the end."""
        self._offset += self._pos
        self._line += self._buf.count("\n", 0, self._pos)
        parts, size = [self._buf[self._pos :]], len(self._buf) - self._pos
        while not self._eof and (len(parts) == 1 or size < at_least):
            chunk = next(self._chunks, None)
            self._eof = chunk is None
            if chunk is not None:
                parts.append(chunk)
                size += len(chunk)
        self._buf, self._pos = "".join(parts), 0
        return len(parts) > 1

    def _peek(self) -> str:
        """The next non-space character, or "" at the end of the file."""
        while True:
            found = _JSON_NON_SPACE.search(self._buf, self._pos)
            if found:
                self._pos = found.start()
                return self._buf[self._pos]
            self._pos = len(self._buf)
            if not self._fill():
                return ""

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise self._error(f"Expecting '{char}'")
        self._pos += 1

    def _value(self) -> object:
        self._peek()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
                if end < len(self._buf) or self._eof:
                    self._pos = end
                    return value
            except json.JSONDecodeError as e:  # truncated by the window, or malformed?
                near_end = e.pos >= len(self._buf) - 16 or e.msg.startswith("Unterminated")
                if self._eof or not near_end:
                    raise self._error(e.msg, e.pos) from None
            size = len(self._buf) - self._pos
            if size > MAX_JSON_VALUE_CHARS:
                raise self._error("A record too large to read")
            self._fill(at_least=2 * size)

    def _error(self, message: str, pos: int | None = None) -> ValidationFailed:
        pos = self._pos if pos is None else pos
        line = self._line + self._buf.count("\n", 0, pos)
        offset = self._offset + pos
        return ValidationFailed(
            f"Invalid JSON: {message} at line {line} (char {offset})",
            {"line": line, "offset": offset},
        )
