"""CSV import files: sniff the delimiter, read the header, stream the rows.

Cells lose the one ``'`` that Kasar's CSV export adds in front of formula-like
text (``exports.cells``), so an exported file imports back unchanged.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Iterator
from typing import Any

from kasar.errors import ValidationFailed
from kasar.exports.cells import unprotect_cell
from kasar.imports.columns import check_header
from kasar.imports.decoding import lines
from kasar.imports.source import Rows, RowSource

DELIMITERS = ",;\t|"
SNIFF_CHARS = 16384


def sniff_delimiter(sample: str) -> str:
    """Pick among ``, ; tab |`` with csv.Sniffer, else by counting in the first line."""
    cut = max(sample.rfind("\n", 0, SNIFF_CHARS), sample.rfind("\r", 0, SNIFF_CHARS))
    sample = sample[:cut] if cut > 0 else sample[:SNIFF_CHARS]
    first_line = re.split(r"\r\n|\r|\n", sample, maxsplit=1)[0]
    try:
        found = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        found = ""
    if found and found in first_line:
        return found
    best = max(DELIMITERS, key=first_line.count)
    return best if best in first_line else ","


def open_csv(chunks: Iterator[str], delimiter: str | None) -> RowSource:
    sample: list[str] = []
    for text in chunks:  # up to 16 KiB to sniff from, whatever the chunks' size
        sample.append(text)
        if sum(map(len, sample)) >= SNIFF_CHARS:
            break
    first = "".join(sample)
    if delimiter:
        delimiter = {"\\t": "\t", "tab": "\t"}.get(delimiter.lower(), delimiter)
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise ValidationFailed(f"Invalid delimiter {delimiter!r}: use one character")
    else:
        delimiter = sniff_delimiter(first)
    reader = csv.reader(lines(itertools.chain([first], chunks)), delimiter=delimiter, strict=True)
    records = _csv_records(reader)
    for _, cells in records:
        if any(c.strip() for c in cells):
            columns = check_header(cells)
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
