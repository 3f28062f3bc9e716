"""The email fast path answers exactly as ``email_validator`` on every address."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kasar.schema.emails import normalise_email


def _library(text: str) -> str | None:
    try:
        checked = validate_email(text.strip(), check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return None
    return str(checked.normalized)


# Addresses built from the pieces that decide: atext and dots in the local part,
# labels with hyphens, digits, capitals, punycode, special-use and numeric TLDs,
# role mailboxes, quoting, display names, spaces, IP literals, long parts.
# Non-ASCII: accented (composed, and a combining accent: "a" + U+0301 is not NFC), other scripts,
# an emoji, a title-case letter, invisible and bidi controls, a lone surrogate.
_non_ascii = ["é", "\u0301", "ß", "İ", "ж", "漢", "😀", "ǅ", "\u200b", "\u202e", "\u00a0", "\ud800"]
_local_chars = st.sampled_from(
    [*"aZ09._-+=!#$%&'*/?^`{|}~", '"', " ", "@", "(", "<", "\\", *_non_ascii]
)
_locals = st.one_of(
    st.text(_local_chars, min_size=0, max_size=12),
    st.sampled_from(["Info", "POSTMASTER", "abuse", "x" * 64, "x" * 65, '"a b"', "a..b", ".a"]),
)
_labels = st.one_of(
    st.text(st.sampled_from([*"aZ09-", "é", "_", "<", ">", " "]), min_size=0, max_size=8),
    st.sampled_from(["xn--bcher-kva", "xn--zz", "a" * 63, "a" * 64, "-a", "a-", "ab--cd"]),
)
_tlds = st.sampled_from(["com", "org", "FR", "local", "localhost", "test", "onion", "123", "c0m"])
_domains = st.one_of(
    st.builds(lambda ls, tld: ".".join([*ls, tld]), st.lists(_labels, max_size=3), _tlds),
    st.sampled_from(["[127.0.0.1]", "localhost", "gmail.com", "a" * 240 + ".com", "", "."]),
)
_addresses = st.one_of(
    st.builds(lambda local, domain: f"{local}@{domain}", _locals, _domains),
    st.builds(lambda a, pad: f"{pad}Ann <{a}>{pad}", st.just("ann@example.com"), st.just(" ")),
    st.text(max_size=30),
)


@settings(max_examples=3000)
@given(_addresses)
@example("Jean.Dupont@Example.COM")
@example("  jean@example.com ")
@example("x" * 200 + "@" + "a" * 50 + ".com")
@example("a@xn--bcher-kva.de")
@example("chloé.martin@example.com")
@example("chloe\u0301@example.com")
@example("é" * 64 + "@" + "a" * 120 + ".com")
@example("zoë@bücher.de")
def test_the_fast_path_agrees_with_the_library(address: str) -> None:
    assert normalise_email(address) == _library(address)


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ("Jean.Dupont@Example.COM", "Jean.Dupont@example.com"),
        ("INFO@example.com", "info@example.com"),
        ("jean@bücher.de", "jean@bücher.de"),
        ("Chloé.Martin@Example.COM", "Chloé.Martin@example.com"),
        ("jean@xn--bcher-kva.de", "jean@bücher.de"),
        ("jean@localhost", None),
        ("jean@@example.com", None),
        ("jean", None),
    ],
)
def test_normalised_forms(given_: str, expected: str | None) -> None:
    assert normalise_email(given_) == expected
