import codecs
import csv
import datetime as dt
import io
import json
import tracemalloc
from pathlib import Path
from typing import Any
from unittest import mock

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kasar.errors import ValidationFailed
from kasar.exports.cells import protect_cell
from kasar.imports import files
from kasar.imports.files import (
    RowSource,
    detect_format,
    match_columns,
    normalise_column_name,
    open_rows,
)

Row = tuple[int, dict[str, object]]


class Pipe(io.RawIOBase):
    """A stream that cannot seek, like a socket or stdin."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(min(len(buffer), 1000))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def read(data: bytes, **options: Any) -> tuple[RowSource, list[Row]]:
    source = open_rows(io.BytesIO(data), **options)
    return source, list(source.rows)


def error_of(data: bytes, **options: Any) -> str:
    with pytest.raises(ValidationFailed) as caught:
        read(data, **options)
    return caught.value.message


def small_chunks(size: int = 7) -> Any:
    """Make every chunk boundary fall somewhere interesting."""
    return mock.patch.multiple(files, HEAD_SIZE=size, CHUNK_SIZE=size)


# --- CSV -----------------------------------------------------------------------------


def test_csv_basic() -> None:
    source, rows = read(b"name,email\nAda,ada@example.org\nBob,bob@example.org\n")
    assert source.format == "csv"
    assert source.columns == ["name", "email"]
    assert rows == [
        (1, {"name": "Ada", "email": "ada@example.org"}),
        (2, {"name": "Bob", "email": "bob@example.org"}),
    ]


TEXT = "name;city\nZoë;Köln\nŁukasz;Łódź\n"
EXPECTED = [(1, {"name": "Zoë", "city": "Köln"}), (2, {"name": "Łukasz", "city": "Łódź"})]


@pytest.mark.parametrize(
    "data",
    [
        TEXT.encode("utf-8"),
        codecs.BOM_UTF8 + TEXT.encode("utf-8"),
        codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"),
        codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"),
        TEXT.encode("utf-16-le"),
        TEXT.encode("utf-16-be"),
    ],
    ids=["utf8", "utf8-bom", "utf16le-bom", "utf16be-bom", "utf16le", "utf16be"],
)
def test_csv_encodings_are_detected(data: bytes) -> None:
    source, rows = read(data)
    assert source.columns == ["name", "city"]
    assert rows == EXPECTED


@pytest.mark.parametrize(
    "data",
    [codecs.BOM_UTF8 + TEXT.encode("utf-8"), codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le")],
)
def test_csv_bom_is_stripped_even_with_a_small_head(data: bytes) -> None:
    with small_chunks(3):
        source, rows = read(data)
    assert source.columns == ["name", "city"]
    assert rows == EXPECTED


def test_csv_invalid_utf8_names_the_line() -> None:
    data = "name,city\nAda,London\nZoë,Orléans\n".encode("latin-1")
    assert error_of(data) == (
        "Line 3: the file is not valid UTF-8 (byte 0xeb at column 3); "
        "give its encoding, for example latin-1"
    )


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_csv_invalid_byte_far_into_the_file(newline: str) -> None:
    lines = ["id,name"] + [f"{i},name {i}" for i in range(1, 5000)] + ["5000,Orléans"]
    data = newline.join(lines).encode("latin-1")
    source = open_rows(io.BytesIO(data))  # the head is valid: the error comes later
    with pytest.raises(ValidationFailed) as caught:
        list(source.rows)
    assert caught.value.message.startswith("Line 5001: the file is not valid UTF-8 (byte 0xe9")
    assert caught.value.details == {"line": 5001, "column": 9, "encoding": "utf-8"}


def test_csv_invalid_byte_split_across_chunks() -> None:
    data = "a,b\nxy,é\n".encode() + b"\xc3(\n"
    with small_chunks(10):
        message = error_of(data)
    assert message.startswith("Line 3: the file is not valid UTF-8 (byte 0xc3 at column 1)")


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "ISO-8859-1"])
def test_csv_encoding_override(encoding: str) -> None:
    data = "name;city\nZoë;Orléans\n".encode("latin-1")
    _, rows = read(data, encoding=encoding)
    assert rows == [(1, {"name": "Zoë", "city": "Orléans"})]


def test_csv_utf8_override_still_strips_the_bom() -> None:
    source, _ = read(codecs.BOM_UTF8 + b"name\nx\n", encoding="utf-8")
    assert source.columns == ["name"]


def test_csv_unknown_encoding() -> None:
    assert error_of(b"a\n1\n", encoding="klingon") == "Unknown encoding 'klingon'"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_delimiter_is_sniffed(delimiter: str) -> None:
    other = "; ,|"
    rows_text = [["name", "notes", "city"], ["Ada", f"likes {other}", "Paris"], ["Bob", "", "Rome"]]
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows_text)
    source, rows = read(buffer.getvalue().encode())
    assert source.columns == ["name", "notes", "city"]
    assert rows == [
        (1, {"name": "Ada", "notes": f"likes {other}", "city": "Paris"}),
        (2, {"name": "Bob", "notes": None, "city": "Rome"}),
    ]


@pytest.mark.parametrize(
    ("data", "columns"),
    [
        (b"email\nada@example.org\n", ["email"]),  # one column: nothing to sniff
        (b"first name;last name\nJean, Jr.;Dupont\n", ["first name", "last name"]),
        (b"a|b\n", ["a", "b"]),
        (b"a\tb", ["a", "b"]),
        (b"name;amount\nAda;2,5\nBob;1,25\n", ["name", "amount"]),  # decimal commas
    ],
)
def test_csv_delimiter_edge_cases(data: bytes, columns: list[str]) -> None:
    source, _ = read(data)
    assert source.columns == columns


@pytest.mark.parametrize(("given", "expected"), [(";", ";"), ("tab", "\t"), ("\\t", "\t")])
def test_csv_delimiter_override(given: str, expected: str) -> None:
    data = f"a{expected}b,c\n1{expected}2,3\n".encode()
    _, rows = read(data, delimiter=given)
    assert rows == [(1, {"a": "1", "b,c": "2,3"})]


@pytest.mark.parametrize("delimiter", ["ab", '"', "\n"])
def test_csv_bad_delimiter(delimiter: str) -> None:
    assert error_of(b"a,b\n", delimiter=delimiter).startswith("Invalid delimiter")


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_csv_line_endings(newline: str) -> None:
    data = newline.join(["name,n", "Ada,1", "Bob,2", ""]).encode()
    source, rows = read(data)
    assert source.columns == ["name", "n"]
    assert rows == [(1, {"name": "Ada", "n": "1"}), (2, {"name": "Bob", "n": "2"})]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_csv_embedded_newlines_and_quotes(newline: str) -> None:
    data = newline.join(
        ["name,notes", f'Ada,"first{newline}second ""quoted"", done"', 'Bob,"a,b"', ""]
    ).encode()
    _, rows = read(data)
    assert rows == [
        (1, {"name": "Ada", "notes": f'first{newline}second "quoted", done'}),
        (2, {"name": "Bob", "notes": "a,b"}),
    ]


def test_csv_embedded_newlines_across_chunks() -> None:
    data = b'name,notes\r\nAda,"one\r\ntwo\rthree\nfour"\r\nBob,x\r\n'
    with small_chunks(5):
        _, rows = read(data)
    assert rows == [
        (1, {"name": "Ada", "notes": "one\r\ntwo\rthree\nfour"}),
        (2, {"name": "Bob", "notes": "x"}),
    ]


def test_csv_more_cells_than_the_header() -> None:
    data = b"a,b,c,d\n1,2,3,4\n1,2,3,4,5\n"
    assert error_of(data) == "Line 3: 5 cells but the header has 4 columns"


def test_csv_error_lines_are_physical_lines() -> None:
    data = b'a,b\n1,"multi\nline\nvalue"\n\n1,2,3\n'
    source = open_rows(io.BytesIO(data))
    with pytest.raises(ValidationFailed) as caught:
        list(source.rows)
    assert caught.value.message == "Line 6: 3 cells but the header has 2 columns"
    assert caught.value.details == {"line": 6}


def test_csv_fewer_cells_are_none() -> None:
    _, rows = read(b"a,b,c\n1\n1,2\n")
    assert rows == [(1, {"a": "1", "b": None, "c": None}), (2, {"a": "1", "b": "2", "c": None})]


def test_csv_empty_cells_are_none_and_spaces_are_kept() -> None:
    _, rows = read(b"a,b,c\n,  ,x\n")
    assert rows == [(1, {"a": None, "b": "  ", "c": "x"})]


def test_csv_blank_rows_are_skipped_but_keep_their_number() -> None:
    _, rows = read(b"a,b\n1,2\n\n,\n3,4\n")
    assert rows == [(1, {"a": "1", "b": "2"}), (4, {"a": "3", "b": "4"})]


def test_csv_leading_blank_lines_before_the_header() -> None:
    source, rows = read(b"\n\nname\nAda\n")
    assert source.columns == ["name"]
    assert rows == [(1, {"name": "Ada"})]


@pytest.mark.parametrize("data", [b"", b"\n\n\r\n", codecs.BOM_UTF8, codecs.BOM_UTF16_LE])
def test_csv_empty_file(data: bytes) -> None:
    assert error_of(data) == "The file is empty"


@pytest.mark.parametrize("data", [b"name,email\n", b"name,email", b"name,email\r\n\r\n"])
def test_csv_header_only(data: bytes) -> None:
    source, rows = read(data)
    assert source.columns == ["name", "email"]
    assert rows == []


def test_csv_header_names_are_stripped() -> None:
    source, _ = read(codecs.BOM_UTF8 + b" name ,\temail\n")
    assert source.columns == ["name", "email"]


def test_csv_duplicate_header_names() -> None:
    message = error_of(b"Email,name,email ,NAME,x\n")
    assert message == "The header repeats column names: Email, email; name, NAME"


@pytest.mark.parametrize("header", [b"a,,b\n", b"a,b,\n", b"a, ,b\n"])
def test_csv_empty_header_name(header: bytes) -> None:
    assert error_of(header).startswith("The header has no name for column")


def test_csv_unterminated_quote() -> None:
    data = b'a,b\n1,2\n3,"open\n4,5\n'
    message = error_of(data)
    assert message.startswith("Line 3: malformed CSV")


def test_csv_cells_are_unprotected() -> None:
    _, rows = read(b"a,b,c,d\n'=SUM(A1),'hello,''+1,-5\n")
    assert rows == [(1, {"a": "=SUM(A1)", "b": "'hello", "c": "'+1", "d": "-5"})]


def test_csv_from_a_stream_that_cannot_seek() -> None:
    data = b"name\n" + b"".join(f"n{i}\n".encode() for i in range(5000))
    source = open_rows(Pipe(data))  # type: ignore[arg-type]
    assert sum(1 for _ in source.rows) == 5000


cell_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))


@settings(max_examples=200)
@given(st.lists(st.lists(cell_text, min_size=3, max_size=3), max_size=5))
def test_csv_export_then_import_gives_the_same_values(table: list[list[str]]) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["id", "b", "c"])
    for i, row in enumerate(table, 1):
        writer.writerow([str(i)] + [protect_cell(cell) for cell in row[1:]])
    with small_chunks(11):
        _, rows = read(buffer.getvalue().encode(), delimiter=",")
    expected = [
        (i, {"id": str(i), "b": row[1] or None, "c": row[2] or None})
        for i, row in enumerate(table, 1)
    ]
    assert rows == expected


def test_csv_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("id,first_name,last_name,email,phone,notes\n")
        for i in range(200_000):
            out.write(f"{i},Firstname{i},Lastname{i},person{i}@example.org,+336123{i:05d},")
            out.write(f'"Met at the fair, row {i};\nfollow up"\n')
    size = path.stat().st_size
    assert size > 20_000_000
    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            source = open_rows(stream)
            count = sum(1 for _ in source.rows)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 200_000
    assert peak < 5_000_000, f"peak {peak} bytes for a {size}-byte file"


# --- format detection ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "filename", "expected"),
    [
        (b"PK\x03\x04rest", None, "xlsx"),
        (b"PK\x03\x04rest", "x.csv", "xlsx"),
        (b"  \n[", None, "json"),
        (b'[{"a": 1}]', "x.csv", "json"),
        (b'{"records": [\n{"a": 1}]}', None, "json"),
        (b'{\n  "records": []\n}', None, "json"),
        (b'{"records": [{"a": 1}]}\n', None, "json"),
        (b'{"a": 1}\n{"a": 2}\n', None, "ndjson"),
        (b'{"a": 1}\r\n\r\n{"a": 2}', None, "ndjson"),
        (b'{"records": 1}\n{"records": 2}\n', None, "ndjson"),
        (b'{"a": 1}', None, "ndjson"),
        (b'{"a": 1, "b": "trunc', None, "json"),
        (codecs.BOM_UTF8 + b'{"records": []}', None, "json"),
        (codecs.BOM_UTF16_LE + "[]".encode("utf-16-le"), None, "json"),
        (b"name,email", None, "csv"),
        (b"name,email", "people.json", "json"),
        (b"name,email", "people.NDJSON", "ndjson"),
        (b"name,email", "people.jsonl", "ndjson"),
        (b"name,email", "people.xlsx", "xlsx"),
        (b"name,email", "people.tsv", "csv"),
        (b"name,email", "people", "csv"),
        (b"", None, "csv"),
    ],
)
def test_detect_format(head: bytes, filename: str | None, expected: str) -> None:
    assert detect_format(head, filename) == expected


def test_format_override() -> None:
    assert detect_format(b"name\nAda\n", "x.json") == "json"
    source, rows = read(b"name\nAda\n", format="CSV", filename="x.json")
    assert source.format == "csv"
    assert rows == [(1, {"name": "Ada"})]
    assert error_of(b"a\n", format="xml") == (
        "Unknown file format 'xml'; use one of csv, xlsx, json, ndjson"
    )


# --- JSON ----------------------------------------------------------------------------


def test_json_array_and_growing_columns() -> None:
    source = open_rows(io.BytesIO(b'[{"a": 1, "b": "x"}, {"a": 2, "c": null, "d": [1]}]'))
    assert source.format == "json"
    assert source.columns == ["a", "b"]
    rows = list(source.rows)
    assert rows == [(1, {"a": 1, "b": "x"}), (2, {"a": 2, "c": None, "d": [1]})]
    assert source.columns == ["a", "b", "c", "d"]


def test_json_records_object_like_an_export() -> None:
    data = {"format": "json", "records": [{"id": 1}, {"id": 2}], "total": 2}
    source, rows = read(json.dumps(data, indent=2).encode())
    assert source.format == "json"
    assert rows == [(1, {"id": 1}), (2, {"id": 2})]


@pytest.mark.parametrize(
    "data", [b"[]", b" [ ]\n", b'{"records": []}', b'{"x": {}, "records": []}']
)
def test_json_no_records(data: bytes) -> None:
    source, rows = read(data)
    assert (source.columns, rows) == ([], [])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        (b"  \n", "The file is empty"),
        (b'{"rows": []}', 'A JSON object file must hold its rows in a "records" list'),
        (b"{}", 'A JSON object file must hold its rows in a "records" list'),
        (b'{"records": 5}', 'Invalid JSON: "records" must be a list at line 1 (char 12)'),
        (b'[{"a": 1}, 5]', "Record 2 is not a JSON object"),
        (b"[5]", "Record 1 is not a JSON object"),
        (b'[{"a": 1}]\n[]', "Invalid JSON: Extra data after the JSON document at line 2 (char 11)"),
        (b'[{"a": 1}', "Invalid JSON: Expecting ']' at line 1 (char 9)"),
        (b'[{"a": 1},]', "Invalid JSON: Expecting value at line 1 (char 10)"),
        (b'[{"a": 1}\n,\n{"a" 2}]', "Invalid JSON: Expecting ':' delimiter at line 3 (char 17)"),
        (b'{"records": [], x}', "Invalid JSON: Expecting property name enclosed in double quotes"),
        (b'"text"', "Invalid JSON: Expecting '[' or '{' at line 1 (char 0)"),
        (b'[{"a": "unterminated}]', "Invalid JSON: Unterminated string starting at"),
    ],
)
def test_json_errors(data: bytes, message: str) -> None:
    assert error_of(data, format="json").startswith(message)
    with small_chunks(3):
        assert error_of(data, format="json").startswith(message)


def test_json_error_far_into_the_file() -> None:
    records = ",\n".join(json.dumps({"n": i, "text": "x" * 50}) for i in range(5000))
    data = f"[\n{records},\n{{bad}}\n]".encode()
    source = open_rows(io.BytesIO(data))
    with pytest.raises(ValidationFailed) as caught:
        list(source.rows)
    assert caught.value.message.startswith("Invalid JSON: Expecting property name")
    assert caught.value.details["line"] == 5002


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=150)
@given(
    st.lists(st.dictionaries(st.text(max_size=5), json_values, max_size=4), max_size=6),
    st.integers(1, 40),
    st.sampled_from([None, 2]),
    st.booleans(),
)
def test_json_reads_what_json_writes(
    records: list[dict[str, Any]], chunk: int, indent: int | None, wrapped: bool
) -> None:
    document: Any = {"records": records, "total": len(records)} if wrapped else records
    data = json.dumps(document, indent=indent, ensure_ascii=chunk % 2 == 0).encode()
    with small_chunks(chunk):
        source, rows = read(data, format="json")
    assert rows == list(enumerate(records, 1))
    keys = list(dict.fromkeys(key for record in records for key in record))
    assert source.columns == keys


def test_json_value_larger_than_a_chunk() -> None:
    big = "é" * 300_000
    _, rows = read(json.dumps([{"a": big}, {"b": 1}]).encode())
    assert rows == [(1, {"a": big}), (2, {"b": 1})]


def test_json_utf8_bom() -> None:
    _, rows = read(codecs.BOM_UTF8 + b'[{"a": 1}]')
    assert rows == [(1, {"a": 1})]


# --- NDJSON --------------------------------------------------------------------------


def test_ndjson_with_blank_lines_and_crlf() -> None:
    data = b'{"a": 1}\r\n\r\n  \r\n{"a": 2, "b": "x"}\r\n{"c": true}'
    source = open_rows(io.BytesIO(data))
    assert source.format == "ndjson"
    assert source.columns == ["a"]
    assert list(source.rows) == [(1, {"a": 1}), (2, {"a": 2, "b": "x"}), (3, {"c": True})]
    assert source.columns == ["a", "b", "c"]


def test_ndjson_malformed_line() -> None:
    data = b'{"a": 1}\n\n{"a": 2,}\n'
    assert error_of(data) == (
        "Line 3: invalid JSON (Expecting property name enclosed in double quotes at column 9)"
    )


def test_ndjson_two_values_on_one_line() -> None:
    assert error_of(b'{"a": 1}\n{"a": 1} {"a": 2}\n').startswith("Line 2: invalid JSON (Extra")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": 1}\n\n[1, 2]\n', "Record 2 is not a JSON object (line 3)"),
        (b'"x"\n', "Record 1 is not a JSON object (line 1)"),
        (b"\n\n", "The file is empty"),
    ],
)
def test_ndjson_errors(data: bytes, message: str) -> None:
    assert error_of(data, format="ndjson") == message


def test_ndjson_lines_longer_than_a_chunk() -> None:
    records = [{"i": i, "text": "x" * (i * 37)} for i in range(30)]
    data = "\n".join(json.dumps(r) for r in records).encode()
    with small_chunks(64):
        _, rows = read(data, format="ndjson")
    assert rows == list(enumerate(records, 1))


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_json_memory_does_not_grow_with_the_file(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"big.{fmt}"
    with path.open("w", encoding="utf-8") as out:
        out.write("[" if fmt == "json" else "")
        for i in range(50_000):
            separator = "," if fmt == "json" and i else ""
            out.write(
                separator + json.dumps({"id": i, "email": f"p{i}@example.org", "n": "x" * 40})
            )
            out.write("\n" if fmt == "ndjson" else "")
        out.write("]" if fmt == "json" else "")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            count = sum(1 for _ in open_rows(stream).rows)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 50_000
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte file"


# --- XLSX ----------------------------------------------------------------------------


def workbook_bytes(rows: list[list[Any]], *, sheets: int = 1, active: int = 0) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    for i in range(1, sheets):
        book.create_sheet(f"other{i}").append(["other"])
    book.active = active
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_xlsx_values() -> None:
    data = workbook_bytes(
        [
            ["name", "born", "seen", "score", "count", "vip", "note"],
            ["Ada", dt.datetime(1815, 12, 10), dt.datetime(2024, 1, 5, 9, 30), 1.5, 3, True, ""],
            [None, None, None, None, None, None, None],
            ["Bob", dt.date(2000, 1, 2), None, -2, 0, False, "'=x"],
        ],
        sheets=2,
        active=1,
    )
    source, rows = read(data)
    assert source.format == "xlsx"
    assert source.columns == ["name", "born", "seen", "score", "count", "vip", "note"]
    assert rows == [
        (
            1,
            {
                "name": "Ada",
                "born": "1815-12-10",
                "seen": "2024-01-05T09:30:00",
                "score": 1.5,
                "count": 3,
                "vip": True,
                "note": None,
            },
        ),
        (
            3,
            {
                "name": "Bob",
                "born": "2000-01-02",
                "seen": None,
                "score": -2,
                "count": 0,
                "vip": False,
                "note": "=x",
            },
        ),
    ]


def test_xlsx_header_below_empty_rows_and_trailing_empty_header_cells() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet["A3"], sheet["B3"], sheet["D3"] = "name", "email", ""
    sheet["A4"], sheet["B4"] = "Ada", "ada@example.org"
    sheet["A6"] = "Bob"
    sheet["E9"].number_format = "0.00"  # a styled but empty cell widens the sheet
    buffer = io.BytesIO()
    book.save(buffer)
    source, rows = read(buffer.getvalue())
    assert source.columns == ["name", "email"]
    assert rows == [
        (1, {"name": "Ada", "email": "ada@example.org"}),
        (3, {"name": "Bob", "email": None}),
    ]


def test_xlsx_header_with_an_empty_first_column_is_an_error() -> None:
    data = workbook_bytes([[None, "name"], [None, "Ada"]])
    assert error_of(data) == "The header has no name for column 1"


def test_xlsx_row_numbers_count_from_the_header() -> None:
    data = workbook_bytes([[], ["name", "email"], ["Ada", "a@x.org"], [], ["Bob", None]])
    source, rows = read(data)
    assert source.columns == ["name", "email"]
    assert rows == [
        (1, {"name": "Ada", "email": "a@x.org"}),
        (3, {"name": "Bob", "email": None}),
    ]


def test_xlsx_value_beyond_the_header() -> None:
    data = workbook_bytes([["a", "b"], [1, 2], [1, 2, 3]])
    assert error_of(data) == "Row 3: a value beyond the header's 2 columns"


def test_xlsx_header_errors() -> None:
    assert error_of(workbook_bytes([["a", "A"]])) == "The header repeats column names: a, A"
    assert error_of(workbook_bytes([])) == "The file is empty"
    assert error_of(workbook_bytes([[None, None], [None]])) == "The file is empty"


def test_xlsx_numbers_as_header_names() -> None:
    source, rows = read(workbook_bytes([["name", 2024], ["x", 1]]))
    assert source.columns == ["name", "2024"]
    assert rows == [(1, {"name": "x", "2024": 1})]


def test_xlsx_not_a_workbook() -> None:
    assert error_of(b"PK\x03\x04garbage") == "The file is not a readable XLSX workbook"
    assert error_of(b"name\n", format="xlsx") == "The file is not a readable XLSX workbook"


def test_xlsx_from_a_stream_that_cannot_seek() -> None:
    data = workbook_bytes([["name"]] + [[f"n{i}"] for i in range(100)])
    source = open_rows(Pipe(data))  # type: ignore[arg-type]
    rows = list(source.rows)
    assert rows[-1] == (100, {"name": "n99"})


def test_xlsx_at_an_offset_in_a_seekable_stream() -> None:
    stream = io.BytesIO(b"junk" + workbook_bytes([["name"], ["Ada"]]))
    stream.seek(4)
    rows = list(open_rows(stream).rows)
    assert rows == [(1, {"name": "Ada"})]


# --- column names and mapping --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("First Name", "first_name"),
        ("first-name", "first_name"),
        ("FIRST_NAME", "first_name"),
        ("first.name", "first_name"),
        (" E-mail. ", "e_mail"),
        ("Prénom", "prenom"),
        ("a  -- b", "a_b"),
        ("__x__", "x"),
        ("Ｆｕｌｌ　Name", "full_name"),
        ("", ""),
    ],
)
def test_normalise_column_name(name: str, expected: str) -> None:
    assert normalise_column_name(name) == expected


@given(st.text())
def test_normalise_column_name_is_idempotent(name: str) -> None:
    once = normalise_column_name(name)
    assert normalise_column_name(once) == once


FIELDS = ["first_name", "last_name", "email", "phone"]


def test_match_columns_by_normalised_name() -> None:
    mapping, unmatched = match_columns(["First Name", "LAST-NAME", "Email", "Notes"], FIELDS)
    assert mapping == {"First Name": "first_name", "LAST-NAME": "last_name", "Email": "email"}
    assert list(mapping) == ["First Name", "LAST-NAME", "Email"]
    assert unmatched == ["Notes"]


def test_match_columns_overrides() -> None:
    columns = ["Mail", "Fax", "Email", "Junk", "Nom"]
    overrides = {"Mail": "email", "Junk": "", "Nom": "Last Name"}
    mapping, unmatched = match_columns(columns, FIELDS, overrides)
    assert mapping == {"Mail": "email", "Nom": "last_name"}
    assert unmatched == ["Fax", "Email"]  # Email lost its field to the override; Junk ignored


@pytest.mark.parametrize(
    ("column", "key"),
    [
        ("E-mail", "email"),
        ("E-mail Address", "email"),
        ("FirstName", "first_name"),
        ("Given name", "first_name"),
        ("Surname", "last_name"),
        ("Tel.", "phone"),
        ("Mobile Phone", "phone"),
        ("Company", "company_name"),
        ("Organisation", "company_name"),
        ("Job Title", "job_title"),
        ("Title", "job_title"),
        ("LinkedIn URL", "linkedin"),
        ("Fax", None),
    ],
)
def test_match_columns_by_usual_headers(column: str, key: str | None) -> None:
    keys = [*FIELDS, "company_name", "job_title", "linkedin"]
    mapping, unmatched = match_columns([column], keys)
    assert mapping.get(column) == key and (key is not None or unmatched == [column])


@pytest.mark.parametrize(
    ("columns", "mapping", "unmatched"),
    [
        (["Phone", "Mobile"], {"Phone": "phone"}, ["Mobile"]),
        (["Mobile", "Phone"], {"Phone": "phone"}, ["Mobile"]),
        (["Email", "E-mail Address"], {"Email": "email"}, ["E-mail Address"]),
        (["Tel", "Mobile"], {"Tel": "phone"}, ["Mobile"]),
        (["Job Title", "Title"], {"Job Title": "job_title"}, ["Title"]),
    ],
)
def test_a_usual_header_never_competes_with_a_named_field(
    columns: list[str], mapping: dict[str, str], unmatched: list[str]
) -> None:
    """CRM exports often have both: the column named like the field wins, the other
    is left out (an error here would refuse the whole file)."""
    keys = [*FIELDS, "job_title"]
    assert match_columns(columns, keys) == (mapping, unmatched)


def test_usual_headers_only_for_keys_the_object_has() -> None:
    mapping, unmatched = match_columns(["Company", "Title", "Name"], ["name", "domain"])
    assert mapping == {"Name": "name"} and unmatched == ["Company", "Title"]


def test_a_field_named_like_an_alias_wins_over_the_alias() -> None:
    mapping, _ = match_columns(["Mobile", "Tel"], ["mobile", "phone"])
    assert mapping == {"Mobile": "mobile", "Tel": "phone"}


def test_match_columns_override_to_unknown_field() -> None:
    with pytest.raises(ValidationFailed, match="column 'Tel' to unknown field 'mobile'"):
        match_columns(["Tel"], FIELDS, {"Tel": "mobile"})


def test_match_columns_override_of_a_missing_column() -> None:
    with pytest.raises(ValidationFailed, match="columns not in the file: 'Phone'"):
        match_columns(["Tel"], FIELDS, {"Phone": "phone"})


def test_match_columns_field_taken_twice() -> None:
    with pytest.raises(ValidationFailed) as caught:
        match_columns(["First Name", "first_name"], FIELDS)
    assert caught.value.message == (
        "Columns 'First Name' and 'first_name' both map to field 'first_name'"
    )
    with pytest.raises(ValidationFailed, match="Columns 'A' and 'B' both map to field 'email'"):
        match_columns(["A", "B"], FIELDS, {"A": "email", "B": "email"})


def test_match_columns_prefers_the_exact_field_name() -> None:
    mapping, _ = match_columns(["Email"], ["email", "Email"])
    assert mapping == {"Email": "Email"}
