"""JSON and NDJSON import files, read one record at a time.

A JSON file is a top-level array of objects, or an object whose "records" key
holds that array; ``JsonReader`` walks it incrementally, so a file of any size is
never held in memory (only the record being read). NDJSON is one object a line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from kasar.errors import ValidationFailed
from kasar.imports.decoding import lines
from kasar.imports.source import Rows, RowSource, first_and_rest

MAX_JSON_VALUE_CHARS = 64 * 1024 * 1024
_JSON_NON_SPACE = re.compile(r"[^ \t\n\r]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _as_record(value: object, number: int, where: str = "") -> dict[str, object]:
    if not isinstance(value, dict):
        raise ValidationFailed(f"Record {number} is not a JSON object{where}", {"record": number})
    if _has_lone_surrogate(value):  # "\ud800" is valid JSON but not text anything can store
        raise ValidationFailed(
            f"Record {number} holds an invalid \\u escape (a lone surrogate){where}",
            {"record": number},
        )
    return value


def _has_lone_surrogate(value: object) -> bool:
    """Whether a decoded value holds a lone surrogate anywhere (without recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _unreadable(exc: Exception) -> str:
    """Why a well-formed value cannot be read: Python's parser recurses, and refuses
    integers of more than ``sys.get_int_max_str_digits()`` digits."""
    return "a value nested too deep" if isinstance(exc, RecursionError) else "a number too long"


def open_ndjson(chunks: Iterator[str]) -> RowSource:
    def records() -> Rows:
        number = 0
        for line_no, line in enumerate(lines(chunks), 1):
            text = line.strip()
            if not text:
                continue
            number += 1
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                message = f"Line {line_no}: invalid JSON ({e.msg} at column {e.colno})"
                raise ValidationFailed(message, {"line": line_no}) from None
            except (RecursionError, ValueError) as e:
                message = f"Line {line_no}: invalid JSON ({_unreadable(e)})"
                raise ValidationFailed(message, {"line": line_no}) from None
            yield number, _as_record(value, number, f" (line {line_no})")
        if not number:
            raise ValidationFailed("The file is empty")

    return first_and_rest(records(), "ndjson")


def open_json(chunks: Iterator[str]) -> RowSource:
    reader = JsonReader(chunks)
    numbered = enumerate(reader.records(), 1)
    return first_and_rest(((n, _as_record(v, n)) for n, v in numbered), "json")


class JsonReader:
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
            except (RecursionError, ValueError) as e:  # too deep or too long, cut or not
                raise self._error(_unreadable(e)) from None
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
