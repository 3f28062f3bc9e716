"""Tests of kasar.dedup.normalise: the match keys of duplicate detection (spec §7)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.provisional import domains

from kasar.dedup.normalise import domain_key, email_key, linkedin_key, name_key, phone_key

# email_key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("john@acme.com", "john@acme.com"),
        ("  John.Doe@ACME.com\n", "john.doe@acme.com"),
        ("\u00a0john@acme.com\u00a0", "john@acme.com"),  # NFKC turns NBSP into a space
        ("ｊｏｈｎ@ａｃｍｅ.com", "john@acme.com"),  # fullwidth letters
        ("STRASSE@acme.de", "strasse@acme.de"),
        ("Straße@acme.de", "strasse@acme.de"),  # case folding, not just lower()
        ("ÉLOÏSE@exemple.fr", "éloïse@exemple.fr"),  # accents are kept
        ("E\u0301loi\u0308se@exemple.fr", "éloïse@exemple.fr"),  # composed by NFKC
        ("ﬁnance@acme.com", "finance@acme.com"),  # the "fi" ligature
    ],
)
def test_email_key(raw: str, expected: str) -> None:
    assert email_key(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "\t\n", "\u00a0", "\u3000"])
def test_email_key_empty(raw: str) -> None:
    assert email_key(raw) is None


def test_email_keys_match_across_forms() -> None:
    assert email_key(" John@Acme.COM") == email_key("john@acme.com ") == email_key("JOHN@ACME.COM")
    assert email_key("john@acme.com") != email_key("jon@acme.com")


# phone_key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+33612345678", "+33612345678"),
        (" +33612345678 ", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+1 (415) 555-2671", "+14155552671"),
        ("33612345678", "+33612345678"),
        ("+390612345678", "+390612345678"),
    ],
)
def test_phone_key(raw: str, expected: str) -> None:
    assert phone_key(raw) == expected


@pytest.mark.parametrize("raw", ["", "  ", "+", "n/a", "\u0661\u0662\u0663"])
def test_phone_key_empty(raw: str) -> None:
    assert phone_key(raw) is None


# linkedin_key


@pytest.mark.parametrize(
    "raw",
    [
        "https://www.linkedin.com/in/John-Doe/",
        "https://www.linkedin.com/in/john-doe",
        "linkedin.com/in/john-doe?trk=x",
        "http://fr.linkedin.com/in/john-doe",
        "HTTPS://WWW.LINKEDIN.COM/IN/JOHN-DOE",
        "www.linkedin.com/in/john-doe/",
        "//linkedin.com/in/john-doe",
        "https://linkedin.com./in/john-doe",
        "https://www.linkedin.com:443/in/john-doe#about",
        "https://www.linkedin.com/in/john-doe/details/experience/",
        "https://www.linkedin.com/in/john-doe/fr",
        "https://www.linkedin.com//in//john-doe",
        "https://www.linkedin.com/in/john%2Ddoe",
        "  john-doe  ",
        "John-Doe",
        "@john-doe",
        "in/john-doe",
        "/in/john-doe/",
        "IN/John-Doe?trk=x",
    ],
)
def test_linkedin_profile_forms(raw: str) -> None:
    assert linkedin_key(raw) == "in/john-doe"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("linkedin.com/company/acme", "company/acme"),
        ("https://www.linkedin.com/company/Acme/about/", "company/acme"),
        ("https://www.linkedin.com/company/12345", "company/12345"),
        ("company/acme", "company/acme"),
        ("https://www.linkedin.com/school/mit/", "school/mit"),
        ("https://www.linkedin.com/showcase/acme-labs", "showcase/acme-labs"),
        ("https://www.linkedin.com/in/jean-fran%C3%A7ois", "in/jean-françois"),
        ("https://www.linkedin.com/in/Jean-Fran%C3%87ois", "in/jean-françois"),
        ("https://www.linkedin.com/in/jean-françois", "in/jean-françois"),
        ("jean-fran%C3%A7ois", "in/jean-françois"),
        ("https://www.linkedin.com/in/john.doe", "in/john.doe"),
        ("https://www.linkedin.com/in/ＪＯＨＮ", "in/john"),
    ],
)
def test_linkedin_key(raw: str, expected: str) -> None:
    assert linkedin_key(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "@",
        "https://acme.com/in/john-doe",  # not LinkedIn
        "https://notlinkedin.com/in/john-doe",
        "https://linkedin.com.evil.io/in/john-doe",
        "https://lnkd.in/abc123",  # a short link: the profile is unknown
        "ftp://linkedin.com/in/john-doe",
        "https://www.linkedin.com/",
        "https://www.linkedin.com/in/",
        "https://www.linkedin.com/feed/",
        "https://www.linkedin.com/jobs/view/123",
        "https://www.linkedin.com/in/john%20doe",
        "https://www.linkedin.com/in/john%2Fdoe",  # an encoded slash
        "https://www.linkedin.com/in/100%25",
        "John Doe",
        "john.doe",  # a dot makes it a host, and not LinkedIn's
        "acme.com",
        "john@acme.com",
        "http://[::1",
    ],
)
def test_linkedin_key_unrecognised(raw: str) -> None:
    assert linkedin_key(raw) is None


# name_key


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("  Éloïse   DURAND ",), "eloise durand"),
        (("eloise durand",), "eloise durand"),
        (("Éloïse", "Durand"), "eloise durand"),
        (("Éloïse", None, "Durand"), "eloise durand"),
        (("  Éloïse ", "", "  ", "DURAND\u00a0"), "eloise durand"),
        (("Jean\u00a0Pierre\u2003\tMartin",), "jean pierre martin"),
        (("E\u0301loi\u0308se",), "eloise"),  # decomposed accents
        (("Groß",), "gross"),
        (("François", "Müller-Lüdenscheidt"), "francois muller-ludenscheidt"),
        (("İlkay",), "ilkay"),  # casefold adds a combining dot, stripped afterwards
        (("ＡＣＭＥ Corp",), "acme corp"),
        (("Jean-Pierre",), "jean-pierre"),  # punctuation is kept
        (("O'Brien",), "o'brien"),
        (("Søren",), "søren"),  # ø is a letter, not o + accent
    ],
)
def test_name_key(parts: tuple[str | None, ...], expected: str) -> None:
    assert name_key(*parts) == expected


@pytest.mark.parametrize(
    "parts", [(), (None,), ("",), ("  ",), (None, " ", "\u00a0"), ("\u0301",), ("\u3000",)]
)
def test_name_key_empty(parts: tuple[str | None, ...]) -> None:
    assert name_key(*parts) is None


def test_name_keys_match_across_forms() -> None:
    assert (
        name_key("  Éloïse   DURAND ") == name_key("eloise durand") == name_key("ELOISE", "Durand")
    )
    assert name_key("Jean-Pierre") != name_key("Jean Pierre")


# domain_key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("acme.com", "acme.com"),
        ("https://www.Acme.com/about", "acme.com"),
        ("http://acme.com", "acme.com"),
        ("ACME.COM", "acme.com"),
        ("  www.acme.com  ", "acme.com"),
        ("acme.com.", "acme.com"),
        ("https://acme.com.:8443/x", "acme.com"),
        ("https://user:secret@www.acme.com:8080/path?q=1#top", "acme.com"),
        ("acme.com/about?ref=http://other.com", "acme.com"),
        ("//acme.com/x", "acme.com"),
        ("john@acme.com", "acme.com"),  # an email gives its domain
        ("shop.acme.co.uk", "shop.acme.co.uk"),
        ("www.www.acme.com", "acme.com"),
        ("www.com", "www.com"),  # "www." stays when nothing else would be left
        ("wwwacme.com", "wwwacme.com"),
        ("münchen.de", "xn--mnchen-3ya.de"),
        ("https://www.MÜNCHEN.de/", "xn--mnchen-3ya.de"),
        ("xn--mnchen-3ya.de", "xn--mnchen-3ya.de"),
        ("ＡＣＭＥ．ＣＯＭ", "acme.com"),  # fullwidth letters and dot
        ("例え.jp", "xn--r8jz45g.jp"),
        ("ftp://files.acme.com", "files.acme.com"),
        ("192.168.1.10", "192.168.1.10"),
    ],
)
def test_domain_key(raw: str, expected: str) -> None:
    assert domain_key(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "localhost",
        "https://localhost:8000/",
        "acme",
        "https://",
        "/about",
        "http://[::1]/",
        "http://[2001:db8::1]:80/",
        "http://[::1",
        "acme .com",
        "ex\u00e4mple..com",  # an empty label cannot be IDNA-encoded
        "☃" * 70 + ".com",  # a label longer than 63 octets
    ],
)
def test_domain_key_none(raw: str) -> None:
    assert domain_key(raw) is None


# Idempotence: a key is its own key


def check_idempotent(key: Callable[[str], str | None], raw: str) -> None:
    once = key(raw)
    if once is not None:
        assert key(once) == once


urlish = st.from_regex(
    r"\A(https?://)?(www\.|fr\.)?(linkedin\.com|acme\.com|ＬＩＮＫＥＤＩＮ\.com)?/?"
    r"(in|company|school|IN|feed)?/[^\s]{0,12}\Z"
)


@given(st.text() | st.emails())
def test_email_key_idempotent(raw: str) -> None:
    check_idempotent(email_key, raw)


@given(st.text() | st.from_regex(r"\A\+?[0-9 ()-]{0,16}\Z"))
def test_phone_key_idempotent(raw: str) -> None:
    check_idempotent(phone_key, raw)


@given(st.text() | urlish | st.text().map(lambda s: "@" + s))
def test_linkedin_key_idempotent(raw: str) -> None:
    check_idempotent(linkedin_key, raw)


@given(st.text() | urlish | st.emails() | domains())
def test_domain_key_idempotent(raw: str) -> None:
    check_idempotent(domain_key, raw)


@given(st.lists(st.none() | st.text(), max_size=4))
def test_name_key_idempotent(parts: list[str | None]) -> None:
    once = name_key(*parts)
    if once is not None:
        assert name_key(once) == once


ACCENTED = "àâäéèêëîïôöùûüÿçñ"
PLAIN = "aaaeeeeiioouuuycn"


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz -'" + ACCENTED))
def test_name_key_ignores_case_accents_and_spacing(raw: str) -> None:
    plain = raw.translate(str.maketrans(ACCENTED, PLAIN))
    assert name_key(raw.upper()) == name_key(raw) == name_key(plain)
    assert name_key(" \u00a0" + raw.replace(" ", "\t \u2009") + "\n") == name_key(raw)


@given(domains())
def test_domain_key_of_a_website_is_the_domain(domain: str) -> None:
    key = domain_key(domain)
    assert domain_key(f"https://www.{domain}/some/path?x=1") == key
    assert domain_key(f"http://{domain.upper()}:8080") == key
