"""Parse, validate and normalise one value of a field (spec §3).

`normalise_value` turns what a client sent into the one canonical Python value that is
stored; `format_value` turns a stored value back into what JSON output shows. Both are
pure: no database, no network. RELATION and PIPELINE values are resolved by the record
service, so asking for them here is a programming error (`ValueError`).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

import phonenumbers

from kasar.schema.emails import normalise_email
from kasar.schema.types import NUMERIC_TYPES, FieldType

__all__ = ["ADDRESS_PARTS", "InvalidValue", "format_value", "normalise_value"]

ADDRESS_PARTS = ("street", "street2", "city", "postcode", "state", "country")
MAX_NUMBER = 1e15
MAX_URL_LENGTH = 2048
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Plain decimal notation only: float() would also take "1_000", "inf" and non-ASCII digits.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})


class InvalidValue(Exception):
    """A value a field cannot hold; `message` is the tail of a user message,
    e.g. 'must be a valid email address' (the caller prefixes the field name)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _is_empty(raw: object) -> bool:
    if raw is None:
        return True
    if isinstance(raw, str):
        return not raw.strip()
    return isinstance(raw, list | tuple | dict) and not raw


def normalise_value(
    ftype: FieldType,
    raw: object,
    *,
    options: Sequence[str] = (),
    phone_region: str = "FR",
    max_length: int = 65535,
) -> object:
    """The canonical stored value of `raw` for a field of type `ftype`; None when empty.

    Raises InvalidValue when `raw` cannot be a value of that type.
    """
    if ftype in (FieldType.RELATION, FieldType.PIPELINE):
        raise ValueError(f"{ftype} values are resolved by the record service")
    if _is_empty(raw):
        return None
    if ftype in (FieldType.TEXT, FieldType.TEXTAREA):
        return _text(raw, max_length)
    if ftype in NUMERIC_TYPES:
        return _number(raw)
    if ftype == FieldType.SELECT:
        return _option(raw, options)
    if ftype == FieldType.MULTI_SELECT:
        return _multi_select(raw, options)
    if ftype == FieldType.PHONES:
        return _phones(raw, phone_region)
    return _SIMPLE[ftype](raw)


def format_value(ftype: FieldType, value: object) -> object:
    """The JSON-ready form of a stored value: dates and date-times become ISO strings."""
    if ftype == FieldType.DATETIME and isinstance(value, datetime):
        return _to_utc(value).isoformat() + "Z"
    if ftype == FieldType.DATE and isinstance(value, date):
        day = value.date() if isinstance(value, datetime) else value
        return day.isoformat()
    return value


def _text(raw: object, max_length: int) -> str:
    # Both TEXT and TEXTAREA strip the ends only; inner newlines and spaces are content.
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise InvalidValue("must be text")
    text = str(raw).strip()
    if "\x00" in text:
        raise InvalidValue("must not contain NUL characters")
    if len(text) > max_length:
        raise InvalidValue(f"must be at most {max_length} characters")
    return text


def _number(raw: object) -> float:
    error = InvalidValue("must be a number")
    if isinstance(raw, bool):
        raise error
    try:
        if isinstance(raw, str):
            if not _NUMBER.fullmatch(raw.strip()):
                raise error
            number = float(raw.strip())
        elif isinstance(raw, int | float | Decimal):
            number = float(raw)
        else:
            raise error
    except (OverflowError, ValueError):
        raise error from None
    if not math.isfinite(number) or abs(number) > MAX_NUMBER:
        raise error
    return number


def _integer(raw: object) -> int:
    error = InvalidValue("must be an integer")
    if isinstance(raw, bool):
        raise error
    if isinstance(raw, int):
        number = raw
    elif isinstance(raw, float):
        if not raw.is_integer():  # also False for NaN and infinities
            raise error
        number = int(raw)
    elif isinstance(raw, str):
        # Exact decimal arithmetic, so "9223372036854775807" and "12.0" (a spreadsheet's
        # integer) both come through without float rounding.
        if not _NUMBER.fullmatch(raw.strip()):
            raise error
        exact = Decimal(raw.strip())
        # Range first (comparisons are exact), so "1e999999999" never reaches arithmetic.
        if not INT64_MIN <= exact <= INT64_MAX or exact != exact.to_integral_value():
            raise error
        number = int(exact)
    else:
        raise error
    if not INT64_MIN <= number <= INT64_MAX:
        raise error
    return number


def _boolean(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if type(raw) is int and raw in (0, 1):
        return raw == 1
    if isinstance(raw, str):
        word = raw.strip().casefold()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise InvalidValue("must be true or false")


def _date(raw: object) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        # The calendar date as written: "2025-01-02T23:00:00-05:00" is 2 January.
        head, tail = text[:10], text[10:]
        if _DATE.fullmatch(head) and (not tail or tail[0] in "T "):
            try:
                return date.fromisoformat(head) if not tail else datetime.fromisoformat(text).date()
            except ValueError:
                pass
    raise InvalidValue("must be a date (YYYY-MM-DD)")


def _datetime(raw: object) -> datetime:
    error = InvalidValue("must be a date-time (ISO 8601)")
    if isinstance(raw, datetime):
        stamp = raw
    elif isinstance(raw, date):
        stamp = datetime(raw.year, raw.month, raw.day)
    elif isinstance(raw, str):
        try:
            stamp = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise error from None
    else:
        raise error
    try:
        return _to_utc(stamp)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise error from None


def _to_utc(stamp: datetime) -> datetime:
    """A naive datetime in UTC; a naive input is taken to be UTC already."""
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        return stamp.replace(tzinfo=None)
    return stamp.astimezone(UTC).replace(tzinfo=None)


def _option(raw: object, options: Sequence[str]) -> str:
    if isinstance(raw, str) or (isinstance(raw, int) and not isinstance(raw, bool)):
        wanted = str(raw).strip().casefold()
        for option in options:
            if option.strip().casefold() == wanted:
                return option
    raise InvalidValue("must be one of: " + ", ".join(options))


def _multi_select(raw: object, options: Sequence[str]) -> list[str] | None:
    if isinstance(raw, str):
        # A whole-string match first, so an option that contains a comma still works.
        try:
            return [_option(raw, options)]
        except InvalidValue:
            items: list[object] = list(raw.split(","))
    elif isinstance(raw, list | tuple):
        items = list(raw)
    else:
        raise InvalidValue("must be one of: " + ", ".join(options))
    chosen = [_option(item, options) for item in items if not _is_empty(item)]
    return list(dict.fromkeys(chosen)) or None


def _items(raw: object) -> list[object]:
    """The non-empty items of a compound value given as one item or a list of them."""
    items = list(raw) if isinstance(raw, list | tuple) else [raw]
    return [item for item in items if not _is_empty(item)]


def _emails(raw: object) -> list[str] | None:
    found: dict[str, str] = {}
    for item in _items(raw):
        if not isinstance(item, str):
            raise InvalidValue("must be a valid email address")
        normalised = normalise_email(item)
        if normalised is None:
            raise InvalidValue("must be a valid email address")
        found.setdefault(normalised.casefold(), normalised)
    return list(found.values()) or None


def _phones(raw: object, region: str) -> list[str] | None:
    found: list[str] = []
    for item in _items(raw):
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise InvalidValue("must be a valid phone number")
        e164 = _phone(str(item).strip(), region)
        if e164 not in found:
            found.append(e164)
    return found or None


_SEPARATORS = str.maketrans("", "", " .-")


def _phone(text: str, region: str) -> str:
    """One phone number in E.164. Digits separated by spaces, dots or hyphens only
    ("+33 6 12 34 56 78", "06.12.34.56.78") are parsed without them: the same number
    (tests/schema/test_values.py compares the two ways), found faster, and one given
    in E.164 with spaces is not read back a second time."""
    compact = text.translate(_SEPARATORS)
    digits = compact[1:] if compact[:1] == "+" else compact
    if len(digits) >= 6 and digits.isascii() and digits.isdigit():
        text = compact
    return _parse_phone(text, region)


def _parse_phone(text: str, region: str) -> str:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidValue("must be a valid phone number") from None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # A junk number such as "000000" can be "possible" yet have an E.164 form that
    # reads back as another number; keeping it would make the stored value unstable.
    # A number given in E.164 already was just read back (the region plays no part
    # after a "+").
    stable = text == e164 or _e164(e164) == e164
    if not phonenumbers.is_possible_number(number) or not stable:
        raise InvalidValue("must be a valid phone number")
    return e164


def _e164(text: str) -> str | None:
    try:
        number = phonenumbers.parse(text)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _url(raw: object) -> str:
    # Deliberately loose: LinkedIn vanity names and bare domains are what users paste.
    if isinstance(raw, str):
        url = raw.strip()
        allowed = not any(c.isspace() or unicodedata.category(c) == "Cc" for c in url)
        if allowed and len(url) <= MAX_URL_LENGTH:
            return url
    raise InvalidValue("must be a valid URL")


def _address(raw: object) -> dict[str, str] | None:
    if isinstance(raw, str):
        text = raw.strip()
        # A CSV export writes an address as its JSON object: read it back as one.
        parsed = _json_object(text) if text.startswith("{") and text.endswith("}") else None
        if parsed is None:
            return {"street": text}
        raw = parsed
    if not isinstance(raw, dict):
        raise InvalidValue("must be an address")
    for key in raw:
        if key not in ADDRESS_PARTS:
            raise InvalidValue(f"has unknown address part {str(key)!r}")
    parts: dict[str, str] = {}
    for key in ADDRESS_PARTS:
        part = raw.get(key)
        if part is None:
            continue
        if not isinstance(part, str):
            raise InvalidValue(f"has an address part {key!r} that is not text")
        if part.strip():
            parts[key] = part.strip()
    return parts or None


def _json_object(text: str) -> dict[str, object] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: deeply nested brackets
        return None
    return value if isinstance(value, dict) else None


_SIMPLE: dict[FieldType, Callable[[object], object]] = {
    FieldType.INTEGER: _integer,
    FieldType.BOOLEAN: _boolean,
    FieldType.DATE: _date,
    FieldType.DATETIME: _datetime,
    FieldType.EMAILS: _emails,
    FieldType.URL: _url,
    FieldType.ADDRESS: _address,
}
