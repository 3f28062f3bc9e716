"""Bytes to text for import files: the encoding (BOM, UTF-16 sniffing or the
caller's choice), strict decoding whose errors name the line and column, and
physical lines that keep their endings."""

from __future__ import annotations

import codecs
import itertools
import re
from collections.abc import Iterable, Iterator

from kasar.errors import ValidationFailed

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")


def choose_encoding(head: bytes, override: str | None) -> tuple[str, int]:
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


def text_chunks(chunks: Iterable[bytes], encoding: str) -> Iterator[str]:
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


def lines(chunks: Iterable[str]) -> Iterator[str]:
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
