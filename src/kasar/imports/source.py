"""What every file reader returns: the file's columns and a lazy stream of rows."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

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


def first_and_rest(records: Rows, fmt: str) -> RowSource:
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
