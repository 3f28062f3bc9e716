import pytest
from hypothesis import given
from hypothesis import strategies as st

from kasar.exports.cells import TRIGGERS, is_plain_number, protect_cell, unprotect_cell
from kasar.schema.types import FieldType
from kasar.schema.values import InvalidValue, normalise_value


@pytest.mark.parametrize(
    ("raw", "protected"),
    [
        ("=1+1", "'=1+1"),
        ("+x", "'+x"),
        ("-x", "'-x"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("=", "'="),
        ("-", "'-"),
        ("-5", "-5"),
        ("+33612345678", "+33612345678"),
        ("-0.5", "-0.5"),
        ("5", "5"),
        ("12.50", "12.50"),
        ("-5.", "'-5."),
        ("-.5", "'-.5"),
        ("- 5", "'- 5"),
        ("+1e5", "'+1e5"),
        ("-5\n", "'-5\n"),
        ("-٣", "'-٣"),  # non-ASCII digits are not a plain number
        ("'=x", "''=x"),
        ("''=x", "'''=x"),
        ("'-5", "''-5"),
        ("'hello", "'hello"),
        ("'", "'"),
        ("''", "''"),
        ("hello", "hello"),
        ("a=b", "a=b"),
        (" =1", " =1"),
        ("", ""),
    ],
)
def test_protect_cell(raw: str, protected: str) -> None:
    assert protect_cell(raw) == protected
    assert unprotect_cell(protected) == raw


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'=x", "=x"),
        ("''=x", "'=x"),
        ("'\tx", "\tx"),
        ("'hello", "'hello"),
        ("'5", "'5"),
        ("'", "'"),
        ("''", "''"),
        ("=x", "=x"),
        ("-5", "-5"),
        ("", ""),
    ],
)
def test_unprotect_cell(text: str, expected: str) -> None:
    assert unprotect_cell(text) == expected


@pytest.mark.parametrize("text", ["0", "-5", "+5", "007", "-0.5", "+33612345678"])
def test_plain_numbers(text: str) -> None:
    assert is_plain_number(text)


@pytest.mark.parametrize("text", ["", "-", "+-5", "5.", ".5", "1e5", "1,5", " 5", "5 ", "٣"])
def test_not_plain_numbers(text: str) -> None:
    assert not is_plain_number(text)


# Text weighted towards the characters that matter, plus any other text.
tricky = st.text(alphabet=st.sampled_from([*sorted(TRIGGERS), "'", "0", "5", ".", "a"]))
any_text = st.one_of(tricky, st.text())


@given(any_text)
def test_unprotect_inverts_protect(text: str) -> None:
    assert unprotect_cell(protect_cell(text)) == text


@given(any_text)
def test_protected_cells_never_start_with_a_trigger(text: str) -> None:
    protected = protect_cell(text)
    assert protected[:1] not in TRIGGERS or is_plain_number(protected)


@given(any_text)
def test_protect_adds_at_most_one_quote(text: str) -> None:
    protected = protect_cell(text)
    assert protected in (text, "'" + text)


@given(
    st.one_of(
        st.from_regex(r"\+?[0-9][0-9 .()-]{5,16}", fullmatch=True),
        st.from_regex(r"0[1-9]( ?[0-9]{2}){4}", fullmatch=True),
        st.text(),
    ),
    st.uuids(),
)
def test_plain_cells_are_what_protection_leaves_alone(phone: str, record_id: object) -> None:
    """Exports write ids and phones without the formula check (``CellKind.PLAIN``):
    every stored phone (E.164) and every id must be a cell protection keeps as is."""
    assert protect_cell(str(record_id)) == str(record_id)
    try:
        stored = normalise_value(FieldType.PHONES, phone)
    except InvalidValue:
        return
    for e164 in stored or []:
        assert protect_cell(e164) == e164
