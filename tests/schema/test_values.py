"""Tests of kasar.schema.values: one value of a field, parsed, validated, normalised."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kasar.schema.types import NUMERIC_TYPES, FieldType
from kasar.schema.values import InvalidValue, _parse_phone, _phone, format_value, normalise_value

F = FieldType
OPTIONS = ("lead", "qualified", "customer", "churned")
HANDLED = [t for t in FieldType if t not in (F.RELATION, F.PIPELINE)]


def invalid_message(ftype: FieldType, raw: object, **kwargs: object) -> str:
    with pytest.raises(InvalidValue) as caught:
        normalise_value(ftype, raw, **kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == caught.value.message
    return caught.value.message


# Empty values and programming errors


@pytest.mark.parametrize("ftype", HANDLED)
@pytest.mark.parametrize("raw", [None, "", "   ", "\t\n", [], {}])
def test_empty_values_are_none_for_every_type(ftype: FieldType, raw: object) -> None:
    assert normalise_value(ftype, raw, options=OPTIONS) is None


@pytest.mark.parametrize("ftype", [F.RELATION, F.PIPELINE])
@pytest.mark.parametrize("raw", [None, "x", 1])
def test_relation_and_pipeline_are_programming_errors(ftype: FieldType, raw: object) -> None:
    with pytest.raises(ValueError) as caught:
        normalise_value(ftype, raw)
    assert not isinstance(caught.value, InvalidValue)


# TEXT and TEXTAREA


@pytest.mark.parametrize(
    ("ftype", "raw", "expected"),
    [
        (F.TEXT, "  Acme  ", "Acme"),
        (F.TEXT, "a  b", "a  b"),
        (F.TEXT, 42, "42"),
        (F.TEXT, 1.5, "1.5"),
        (F.TEXT, "\u00e9t\u00e9", "\u00e9t\u00e9"),
        (F.TEXTAREA, "\n  line one\nline two\n\n", "line one\nline two"),
        (F.TEXTAREA, "a\n\n\nb", "a\n\n\nb"),
    ],
)
def test_text(ftype: FieldType, raw: object, expected: str) -> None:
    assert normalise_value(ftype, raw) == expected


@pytest.mark.parametrize("ftype", [F.TEXT, F.TEXTAREA])
@pytest.mark.parametrize("raw", [True, False, ["a"], {"a": 1}, object(), b"bytes"])
def test_text_rejects_non_text(ftype: FieldType, raw: object) -> None:
    assert invalid_message(ftype, raw) == "must be text"


def test_text_max_length_counts_after_stripping() -> None:
    assert normalise_value(F.TEXT, "  abc  ", max_length=3) == "abc"
    assert invalid_message(F.TEXT, "abcd", max_length=3) == "must be at most 3 characters"
    assert invalid_message(F.TEXTAREA, "x" * 65536) == "must be at most 65535 characters"
    assert normalise_value(F.TEXTAREA, "x" * 65535) == "x" * 65535


# Numbers


@pytest.mark.parametrize("ftype", sorted(NUMERIC_TYPES))
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (12, 12.0),
        (12.5, 12.5),
        ("12.5", 12.5),
        (" -3 ", -3.0),
        ("1e3", 1000.0),
        ("+.5", 0.5),
        ("5.", 5.0),
        ("1E-2", 0.01),
        (Decimal("2.25"), 2.25),
        (1e15, 1e15),
        ("-1000000000000000", -1e15),
    ],
)
def test_numbers(ftype: FieldType, raw: object, expected: float) -> None:
    value = normalise_value(ftype, raw)
    assert type(value) is float
    assert value == expected


@pytest.mark.parametrize("ftype", sorted(NUMERIC_TYPES))
@pytest.mark.parametrize(
    "raw",
    [
        True,
        False,
        "1,5",
        "1 000",
        "1_000",
        "abc",
        "nan",
        "inf",
        "-Infinity",
        "0x10",
        "\u0661\u0662",  # Arabic-Indic digits, which float() would take
        "12abc",
        ".",
        "e3",
        math.nan,
        math.inf,
        -math.inf,
        1e15 + 1,
        10**16,
        10**400,
        "1e400",
        Decimal("NaN"),
        Decimal("sNaN"),
        [1],
        {"a": 1},
    ],
)
def test_numbers_reject(ftype: FieldType, raw: object) -> None:
    assert invalid_message(ftype, raw) == "must be a number"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (12, 12),
        (12.0, 12),
        ("12", 12),
        (" -7 ", -7),
        ("+7", 7),
        ("12.0", 12),
        ("1e3", 1000),
        (2**63 - 1, 2**63 - 1),
        (-(2**63), -(2**63)),
        ("9223372036854775807", 9223372036854775807),
        ("-9223372036854775808", -9223372036854775808),
        ("0e999999999", 0),
    ],
)
def test_integer(raw: object, expected: int) -> None:
    value = normalise_value(F.INTEGER, raw)
    assert type(value) is int
    assert value == expected


@pytest.mark.parametrize(
    "raw",
    [
        12.5,
        "12.5",
        True,
        False,
        math.nan,
        math.inf,
        2**63,
        -(2**63) - 1,
        "9223372036854775808",
        "1e999999999",
        "1e-999999999",
        "1,000",
        "1_000",
        "abc",
        "0x1F",
        1e19,
        [1],
    ],
)
def test_integer_rejects(raw: object) -> None:
    assert invalid_message(F.INTEGER, raw) == "must be an integer"


# BOOLEAN


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        *[(word, True) for word in ("true", "TRUE", "Yes", "y", "Y", "1", " true ")],
        *[(word, False) for word in ("false", "False", "NO", "n", "0", " no\n")],
    ],
)
def test_boolean(raw: object, expected: bool) -> None:
    assert normalise_value(F.BOOLEAN, raw) is expected


@pytest.mark.parametrize("raw", [2, -1, 1.0, 0.0, "on", "off", "t", "f", "oui", "2", [True]])
def test_boolean_rejects(raw: object) -> None:
    assert invalid_message(F.BOOLEAN, raw) == "must be true or false"


# DATE and DATETIME


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-01-02", date(2025, 1, 2)),
        (" 2024-02-29 ", date(2024, 2, 29)),
        ("2025-01-02T10:00:00Z", date(2025, 1, 2)),
        ("2025-01-02 10:00", date(2025, 1, 2)),
        # The calendar date as written, not the UTC date (2025-01-03T04:00Z).
        ("2025-01-02T23:00:00-05:00", date(2025, 1, 2)),
        (date(2025, 1, 2), date(2025, 1, 2)),
        (datetime(2025, 1, 2, 23, 59), date(2025, 1, 2)),
    ],
)
def test_date(raw: object, expected: date) -> None:
    value = normalise_value(F.DATE, raw)
    assert type(value) is date
    assert value == expected


@pytest.mark.parametrize(
    "raw",
    [
        "2025-02-30",
        "2023-02-29",
        "2025-13-01",
        "02/01/2025",
        "2025/01/02",
        "20250102",
        "2025-W01-1",
        "2025-1-2",
        "2025-01-02X",
        "2025-01-02T25:00",
        "yesterday",
        20250102,
        True,
    ],
)
def test_date_rejects(raw: object) -> None:
    assert invalid_message(F.DATE, raw) == "must be a date (YYYY-MM-DD)"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-01-02T10:00:00Z", datetime(2025, 1, 2, 10)),
        ("2025-01-02T10:00:00", datetime(2025, 1, 2, 10)),
        ("2025-01-02T10:00:00+02:00", datetime(2025, 1, 2, 8)),
        ("2025-01-01T23:30:00-05:00", datetime(2025, 1, 2, 4, 30)),
        ("2025-01-02T10:00:00.123456Z", datetime(2025, 1, 2, 10, 0, 0, 123456)),
        ("2025-01-02T10:00:00.5Z", datetime(2025, 1, 2, 10, 0, 0, 500000)),
        ("2025-01-02", datetime(2025, 1, 2)),
        (" 2025-01-02 10:00 ", datetime(2025, 1, 2, 10)),
        (date(2025, 1, 2), datetime(2025, 1, 2)),
        (datetime(2025, 1, 2, 10, tzinfo=timezone(timedelta(hours=1))), datetime(2025, 1, 2, 9)),
        (datetime(2025, 1, 2, 10, 0, 0, 7), datetime(2025, 1, 2, 10, 0, 0, 7)),
    ],
)
def test_datetime(raw: object, expected: datetime) -> None:
    value = normalise_value(F.DATETIME, raw)
    assert isinstance(value, datetime)
    assert value.tzinfo is None
    assert value == expected


@pytest.mark.parametrize(
    "raw",
    [
        "2025-01-02T24:01:00Z",
        "2025-02-30T10:00:00Z",
        "2025-01-02T10:00:60Z",
        "02/01/2025 10:00",
        "now",
        "0001-01-01T00:00:00+01:00",  # before year 1 once in UTC
        "9999-12-31T23:00:00-05:00",  # after year 9999 once in UTC
        1735812000,
        True,
    ],
)
def test_datetime_rejects(raw: object) -> None:
    assert invalid_message(F.DATETIME, raw) == "must be a date-time (ISO 8601)"


def test_format_dates() -> None:
    assert format_value(F.DATE, date(2025, 1, 2)) == "2025-01-02"
    assert format_value(F.DATE, date(5, 1, 2)) == "0005-01-02"
    assert format_value(F.DATETIME, datetime(2025, 1, 2, 10)) == "2025-01-02T10:00:00Z"
    assert format_value(F.DATETIME, datetime(2025, 1, 2, 10, 0, 0, 1500)) == (
        "2025-01-02T10:00:00.001500Z"
    )
    aware = datetime(2025, 1, 2, 10, tzinfo=timezone(timedelta(hours=2)))
    assert format_value(F.DATETIME, aware) == "2025-01-02T08:00:00Z"


@pytest.mark.parametrize(
    ("ftype", "value"),
    [
        (F.FLOAT, 12.0),
        (F.INTEGER, 3),
        (F.BOOLEAN, False),
        (F.TEXT, "x"),
        (F.EMAILS, ["a@b.com"]),
        (F.ADDRESS, {"city": "Paris"}),
        (F.DATE, None),
        (F.DATETIME, None),
    ],
)
def test_format_leaves_other_values_alone(ftype: FieldType, value: object) -> None:
    formatted = format_value(ftype, value)
    assert formatted == value
    assert type(formatted) is type(value)


# SELECT and MULTI_SELECT


@pytest.mark.parametrize("raw", ["lead", "LEAD", "  Lead ", "lEaD\t"])
def test_select_returns_canonical_option(raw: str) -> None:
    assert normalise_value(F.SELECT, raw, options=OPTIONS) == "lead"


def test_select_keeps_the_option_spelling() -> None:
    assert normalise_value(F.SELECT, "closed won", options=["Closed Won"]) == "Closed Won"
    assert normalise_value(F.SELECT, 2, options=["1", "2"]) == "2"


@pytest.mark.parametrize("raw", ["leads", "le ad", True, ["lead"], 1.0])
def test_select_rejects(raw: object) -> None:
    message = invalid_message(F.SELECT, raw, options=OPTIONS)
    assert message == "must be one of: lead, qualified, customer, churned"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("lead", ["lead"]),
        ("Lead, CUSTOMER", ["lead", "customer"]),
        ("customer,lead,customer", ["customer", "lead"]),
        ("lead,, ,", ["lead"]),
        (["Churned", "lead", "churned"], ["churned", "lead"]),
        (("lead",), ["lead"]),
        ([" ", None, ""], None),
        (" , ", None),
    ],
)
def test_multi_select(raw: object, expected: list[str] | None) -> None:
    assert normalise_value(F.MULTI_SELECT, raw, options=OPTIONS) == expected


def test_multi_select_option_with_a_comma() -> None:
    options = ["Paris, France", "Lyon"]
    assert normalise_value(F.MULTI_SELECT, "paris, france", options=options) == ["Paris, France"]
    assert normalise_value(F.MULTI_SELECT, "Lyon,lyon", options=options) == ["Lyon"]


@pytest.mark.parametrize("raw", ["lead,unknown", ["lead", "nope"], [["lead"]], 3.5, {"a": "lead"}])
def test_multi_select_rejects(raw: object) -> None:
    message = invalid_message(F.MULTI_SELECT, raw, options=OPTIONS)
    assert message == "must be one of: lead, qualified, customer, churned"


# EMAILS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("john@acme.com", ["john@acme.com"]),
        ("  John.Doe@ACME.com ", ["John.Doe@acme.com"]),
        (["a@x.com", "b@y.com"], ["a@x.com", "b@y.com"]),
        (["b@y.com", "a@x.com"], ["b@y.com", "a@x.com"]),
        (["A@x.com", "a@X.COM", "b@y.com", "a@x.com"], ["A@x.com", "b@y.com"]),
        (["a@x.com", "", "  ", None], ["a@x.com"]),
        (["", None], None),
        ("élodie@exemple.fr", ["élodie@exemple.fr"]),
        ("x@MÜNCHEN.de", ["x@münchen.de"]),
        ("first.last+tag@sub.domain.co.uk", ["first.last+tag@sub.domain.co.uk"]),
    ],
)
def test_emails(raw: object, expected: list[str] | None) -> None:
    assert normalise_value(F.EMAILS, raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "john",
        "john@",
        "@acme.com",
        "john@acme",
        "john@@acme.com",
        "john doe@acme.com",
        "a@b.com, c@d.com",
        "John <john@acme.com>",
        "john@localhost",
        "john..doe@acme.com",
        ["a@x.com", "bad"],
        ["a@x.com", 42],
        42,
        {"email": "a@x.com"},
    ],
)
def test_emails_reject(raw: object) -> None:
    assert invalid_message(F.EMAILS, raw) == "must be a valid email address"


# PHONES


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("06 12 34 56 78", "FR", ["+33612345678"]),
        ("+33 6 12 34 56 78", "FR", ["+33612345678"]),
        ("0033612345678", "FR", ["+33612345678"]),
        ("(415) 555-2671", "US", ["+14155552671"]),
        ("+1 415-555-2671", "FR", ["+14155552671"]),
        (612345678, "FR", ["+33612345678"]),
        (
            ["06.12.34.56.78", "+33612345678", "01 23 45 67 89"],
            "FR",
            ["+33612345678", "+33123456789"],
        ),
        (["+33612345678", ""], "FR", ["+33612345678"]),
        ("020 7946 0958", "GB", ["+442079460958"]),
        ("+39 06 1234 5678", "FR", ["+390612345678"]),  # Italy keeps its leading zero
    ],
)
def test_phones(raw: object, region: str, expected: list[str]) -> None:
    assert normalise_value(F.PHONES, raw, phone_region=region) == expected


def test_phones_default_region_is_fr() -> None:
    assert normalise_value(F.PHONES, "0612345678") == ["+33612345678"]


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("12", "FR"),
        ("not a phone", "FR"),
        ("+", "FR"),
        ("06 12 34 56 78 90 12 34", "FR"),
        ("000000", "DE"),  # "possible", but its E.164 form reads back as another number
        ("0612345678", "ZZ"),  # no region to read a national number in
        (True, "FR"),
        (6.12345678e8, "FR"),
        (["+33612345678", "123"], "FR"),
        ({"phone": "0612345678"}, "FR"),
    ],
)
def test_phones_reject(raw: object, region: str) -> None:
    message = invalid_message(F.PHONES, raw, phone_region=region)
    assert message == "must be a valid phone number"


# URL


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://acme.com/about?x=1", "https://acme.com/about?x=1"),
        ("  acme.com ", "acme.com"),
        ("john-doe", "john-doe"),
        ("https://www.linkedin.com/in/john-doe/", "https://www.linkedin.com/in/john-doe/"),
        ("https://exemple.fr/été", "https://exemple.fr/été"),
        ("x" * 2048, "x" * 2048),
    ],
)
def test_url(raw: str, expected: str) -> None:
    assert normalise_value(F.URL, raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["acme .com", "https://acme.com/a b", "a\tb", "a\u00a0b", "a\x00b", "x" * 2049, 42, ["a.com"]],
)
def test_url_rejects(raw: object) -> None:
    assert invalid_message(F.URL, raw) == "must be a valid URL"


# ADDRESS


def test_address() -> None:
    raw = {"city": " Paris ", "street": "1 rue de Rivoli", "street2": "", "country": "FR"}
    assert normalise_value(F.ADDRESS, raw) == {
        "street": "1 rue de Rivoli",
        "city": "Paris",
        "country": "FR",
    }
    assert normalise_value(F.ADDRESS, "  1 rue de Rivoli ") == {"street": "1 rue de Rivoli"}
    assert normalise_value(F.ADDRESS, {"city": " ", "state": None}) is None


@given(
    st.dictionaries(
        st.sampled_from(["street", "street2", "city", "postcode", "state", "country"]),
        st.text(min_size=1).filter(lambda t: t.strip() == t),
    )
)
def test_an_address_survives_a_csv_export(address: dict[str, str]) -> None:
    """A CSV export writes an address as its JSON object (``exports.service.csv_cell``);
    importing that cell gives the address back."""
    from kasar.exports.cells import unprotect_cell
    from kasar.exports.service import CellKind, csv_cell

    stored = normalise_value(F.ADDRESS, address)
    cell = unprotect_cell(csv_cell(CellKind.OBJECT, stored)) if stored else ""
    assert normalise_value(F.ADDRESS, cell) == stored


def test_address_text_that_is_not_a_json_object_is_a_street() -> None:
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    for text in ("{1 rue de Rivoli}", "{not json", '["a"]', "{}x", deep):
        assert normalise_value(F.ADDRESS, text) == {"street": text}
    assert normalise_value(F.ADDRESS, "{}") is None  # an empty address object
    assert invalid_message(F.ADDRESS, '{"zip": "75001"}') == "has unknown address part 'zip'"


def test_address_rejects() -> None:
    assert invalid_message(F.ADDRESS, {"zip": "75001"}) == "has unknown address part 'zip'"
    assert invalid_message(F.ADDRESS, {"city": "Paris", 1: "x"}) == "has unknown address part '1'"
    assert (
        invalid_message(F.ADDRESS, {"postcode": 75001})
        == "has an address part 'postcode' that is not text"
    )
    assert invalid_message(F.ADDRESS, ["Paris"]) == "must be an address"
    assert invalid_message(F.ADDRESS, 42) == "must be an address"


# Properties


def check_idempotent(ftype: FieldType, raw: object, **kwargs: object) -> None:
    """normalise(format(normalise(x))) == normalise(x) whenever x is valid."""
    try:
        value = normalise_value(ftype, raw, **kwargs)  # type: ignore[arg-type]
    except InvalidValue:
        return
    again = normalise_value(ftype, format_value(ftype, value), **kwargs)  # type: ignore[arg-type]
    assert again == value
    assert type(again) is type(value)


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
numeric_text = st.from_regex(r"\A\s*[+-]?[0-9]{0,20}(\.[0-9]{0,8})?([eE][+-]?[0-9]{1,3})?\s*\Z")
# Whole minutes: Python 3.11 misreads the sub-second offsets isoformat() can write.
offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timedelta(minutes=m))
zones = st.none() | offsets.map(timezone)


@given(st.sampled_from([F.TEXT, F.TEXTAREA, F.URL]), scalars)
def test_text_like_idempotent(ftype: FieldType, raw: object) -> None:
    check_idempotent(ftype, raw)


@given(st.sampled_from([*sorted(NUMERIC_TYPES), F.INTEGER]), scalars | numeric_text)
def test_numbers_idempotent(ftype: FieldType, raw: object) -> None:
    check_idempotent(ftype, raw)


@given(st.integers(min_value=-(10**15), max_value=10**15) | st.floats(-1e15, 1e15))
def test_numbers_accept_all_finite_values_in_range(raw: float) -> None:
    assert normalise_value(F.NUMBER, raw) == float(raw)
    assert normalise_value(F.NUMBER, repr(raw)) == float(raw)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_integer_accepts_every_int64(raw: int) -> None:
    assert normalise_value(F.INTEGER, raw) == raw
    assert normalise_value(F.INTEGER, str(raw)) == raw


@given(scalars | st.sampled_from(["yes", "No", "Y", "n", "TRUE", "0", "1"]))
def test_boolean_idempotent(raw: object) -> None:
    check_idempotent(F.BOOLEAN, raw)


@given(
    st.dates()
    | st.datetimes(timezones=zones)
    | st.dates().map(date.isoformat)
    | st.datetimes(timezones=zones).map(datetime.isoformat)
    | st.text(),
    st.sampled_from([F.DATE, F.DATETIME]),
)
def test_dates_idempotent(raw: object, ftype: FieldType) -> None:
    check_idempotent(ftype, raw)


@given(st.dates())
def test_date_round_trips_through_format(day: date) -> None:
    assert normalise_value(F.DATE, format_value(F.DATE, day)) == day


@given(st.datetimes())
def test_datetime_round_trips_through_format(stamp: datetime) -> None:
    text = format_value(F.DATETIME, stamp)
    assert isinstance(text, str) and text.endswith("Z")
    assert normalise_value(F.DATETIME, text) == stamp


@given(st.datetimes(timezones=offsets.map(timezone)))
def test_aware_datetime_is_the_same_instant(stamp: datetime) -> None:
    try:
        value = normalise_value(F.DATETIME, stamp.isoformat())
    except InvalidValue:
        assume(False)  # the instant falls outside years 1-9999 in UTC
        raise
    assert isinstance(value, datetime)
    assert value.replace(tzinfo=UTC) == stamp


option_lists = st.lists(st.text(min_size=1).filter(str.strip), min_size=1, max_size=5)


@given(option_lists, st.data())
def test_selects_idempotent(options: list[str], data: st.DataObject) -> None:
    choice = st.sampled_from(options) | st.text()
    raw = data.draw(choice | st.lists(choice, max_size=4))
    check_idempotent(F.SELECT, raw, options=options)
    check_idempotent(F.MULTI_SELECT, raw, options=options)


@given(st.emails() | st.text() | st.lists(st.emails() | st.text(), max_size=3))
def test_emails_idempotent(raw: object) -> None:
    check_idempotent(F.EMAILS, raw)


phone_text = st.from_regex(r"\A\+?[0-9 ().-]{1,20}\Z")


@given(
    phone_text | st.integers(0, 10**15) | st.lists(phone_text, max_size=3),
    st.sampled_from(["FR", "US", "GB", "DE", "BE"]),
)
def test_phones_idempotent(raw: object, region: str) -> None:
    check_idempotent(F.PHONES, raw, phone_region=region)


def _outcome(parse: Callable[[str, str], str], text: str, region: str) -> str:
    try:
        return parse(text, region)
    except InvalidValue as exc:
        return exc.message


# Digits with spaces, dots and hyphens around and between them, often many digits.
separated_phone = st.from_regex(r"\A[ .-]*\+?([0-9]{1,4}[ .-]{0,3}){1,6}\Z")


@settings(max_examples=1000)
@given(
    separated_phone | phone_text,
    st.sampled_from(["FR", "US", "GB", "DE", "BE", "IT", "RU", "BR", "CI", "SM", "JP", "IN"]),
)
def test_a_phone_parsed_without_its_separators_is_the_same_number(text: str, region: str) -> None:
    """``_phone`` drops spaces, dots and hyphens before parsing (faster), ``_parse_phone``
    gives phonenumbers the text as written: the same answer either way."""
    text = text.strip()
    assert _outcome(_phone, text, region) == _outcome(_parse_phone, text, region)


@given(
    st.text()
    | st.dictionaries(
        st.sampled_from(["street", "street2", "city", "postcode", "state", "country"]),
        st.none() | st.text(),
    )
)
def test_address_idempotent(raw: object) -> None:
    check_idempotent(F.ADDRESS, raw)
