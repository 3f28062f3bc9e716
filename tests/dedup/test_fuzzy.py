"""Fuzzy scoring, blocking and index probes as pure functions: every rule, no database."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kasar.dedup.blocking import blocking_keys, candidate_pairs
from kasar.dedup.candidates import first_name_variants, probe_keys, typo_variants
from kasar.dedup.fuzzy import Profile, profile_of, score, token_similarity
from kasar.dedup.keys import STRONG_KINDS
from kasar.dedup.names import LEGAL_SUFFIXES, company_core, fold
from kasar.dedup.normalise import name_key
from kasar.schema.model import ObjectDef
from kasar.schema.standard import STANDARD_OBJECTS
from kasar.settings import Settings

# The score from which a pair is a possible duplicate, unless KASAR_FUZZY_THRESHOLD says.
DEFAULT_THRESHOLD = Settings.model_fields["fuzzy_threshold"].default

OBJECTS = {name: ObjectDef(name, label, tuple(fields)) for name, label, fields in STANDARD_OBJECTS}
CONTACTS, COMPANIES = OBJECTS["contacts"], OBJECTS["companies"]


def person(first: str, last: str, **kw: Any) -> Profile:
    values: dict[str, Any] = {"first_name": first, "last_name": last}
    for name in ("email", "phone"):
        if name in kw:
            items = kw.pop(name)
            items = items if isinstance(items, list) else [items]
            values[name], values[f"{name}_all"] = items[0], json.dumps(items)
    values.update(kw)
    p = profile_of(CONTACTS, values)
    assert p is not None
    return p


def company(name: str, **kw: Any) -> Profile:
    p = profile_of(COMPANIES, {"name": name, **kw})
    assert p is not None
    return p


def matches(a: Profile, b: Profile) -> tuple[float, tuple[str, ...]]:
    """The score both ways (it must not depend on the order), and that pair meets in
    some block (else detection would never score it)."""
    forward, backward = score(a, b), score(b, a)
    assert forward[0] == backward[0]
    assert blocking_keys(a) & blocking_keys(b), (a, b)
    return forward


def test_fold_drops_case_accents_punctuation_and_spaces() -> None:
    assert fold("  Jean-Pierre O'Brien ") == "jean pierre obrien"
    assert fold("ÉLOÏSE") == "eloise"
    assert fold("S.A.S.") == "sas"


@given(st.text(max_size=30))
def test_fold_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)


@pytest.mark.parametrize(
    ("raw", "core"),
    [
        ("ACME, Inc.", "acme"),
        ("The Acme Corporation", "acme"),
        ("Acme Co. Ltd", "acme"),
        ("Société Générale S.A.", "societe generale"),
        ("Müller GmbH", "muller"),
        ("Dupont & Fils SARL", "dupont and fils"),
        ("Inc", "inc"),  # a name that is only a suffix keeps it
    ],
)
def test_company_core_drops_legal_suffixes(raw: str, core: str) -> None:
    assert company_core(raw) == core


def test_token_similarity_rates_typos_not_other_names() -> None:
    assert token_similarity("smith", "smith") == 1.0
    assert token_similarity("smith", "smtih") == 0.9  # swapped neighbours: one edit
    assert token_similarity("john", "jon") == 0.9
    assert token_similarity("lefebvre", "lefevbre") == 0.9
    assert token_similarity("jean", "jane") < 0.5
    assert token_similarity("paul", "pauline") < 0.5
    assert token_similarity("jean pierre", "jeanpierre") == 1.0  # spaces aside, equal
    assert token_similarity("van der berg", "vanderberg") == 1.0


def test_an_initial_needs_more_than_the_name() -> None:
    """ "J." is every James, John and Julie: the same company makes it a match."""
    for full, short in [("John", "J."), ("Jean-Pierre", "J.-P.")]:
        alone = score(person(full, "Dupont"), person(short, "Dupont"))
        assert alone == (0.82, ("name~0.82", "initial"))
        value, reasons = matches(
            person(full, "Dupont", company_id="c1"), person(short, "Dupont", company_id="c1")
        )
        assert (value, reasons) == (0.87, ("name~0.82", "initial", "same company"))
    assert score(person("J.", "Dupont"), person("J.", "Dupont"))[0] == 0.82


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        (("John", "Smith"), ("Jon", "Smith"), None),  # typo in the first name
        (("John", "Smith"), ("John", "Smtih"), None),  # transposition in the last name
        (("Robert", "Brown"), ("Bob", "Brown"), "nickname"),
        (("Katherine", "Moss"), ("Kate", "Moss"), "nickname"),
        (("Catherine", "Moss"), ("Cathy", "Moss"), "nickname"),
        (("Jean-Philippe", "Dupont"), ("Jean-Phi", "Dupont"), "nickname"),
        (("John", "Smith"), ("Smith", "John"), "swapped names"),
        (("Éloïse", "Durand"), ("  ELOISE ", "durand"), None),  # case, accents, spaces
    ],
)
def test_person_rules_score_over_the_threshold(
    a: tuple[str, str], b: tuple[str, str], reason: str | None
) -> None:
    value, reasons = matches(person(*a), person(*b))
    assert DEFAULT_THRESHOLD <= value < 1.0, reasons
    assert reasons[0].startswith("name~")
    if reason:
        assert reason in reasons


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("John", "Smith"), ("Jane", "Smith")),
        (("Paul", "Martin"), ("Pauline", "Martin")),
        (("John", "Smith"), ("John", "Smithson")),
        (("J.", "Smith"), ("Mary", "Smith")),
    ],
)
def test_different_people_score_under_the_threshold(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert score(person(*a), person(*b))[0] < DEFAULT_THRESHOLD


def test_conflicting_evidence_is_the_fuzzy_homonym_rule() -> None:
    one, two = (
        person("John", "Smith", email="john@one.org"),
        person("John", "Smith", email="john@two.org"),
    )
    assert score(one, two) == (0.75, ("name~1.00", "different emails"))
    # under a floor, the names are not even compared: the evidence caps the score
    assert score(one, two, floor=DEFAULT_THRESHOLD) == (0.75, ("different emails",))
    value, reasons = score(one, person("Jon", "Smith", phone="+33612345678"))
    assert value > DEFAULT_THRESHOLD and "different emails" not in reasons
    phones = score(
        person("Ann", "Lee", phone="+33612345678"), person("Ann", "Lee", phone="+33700000000")
    )
    assert phones[0] < DEFAULT_THRESHOLD and "different phones" in phones[1]


def test_a_related_record_is_evidence_both_ways() -> None:
    a = person("Jon", "Smith", company_id="c1")
    assert score(a, person("John", "Smith", company_id="c1")) == (
        0.99,
        ("name~0.96", "same company"),
    )
    assert score(a, person("John", "Smith")) == (0.96, ("name~0.96",))
    assert score(a, person("John", "Smith", company_id="c2")) == (
        0.76,
        ("name~0.96", "different company"),
    )


def test_a_contact_needs_both_names_and_other_objects_have_no_profile() -> None:
    assert profile_of(CONTACTS, {"first_name": "Bob"}) is None
    assert profile_of(OBJECTS["opportunities"], {"name": "Renewal"}) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ACME, Inc.", "Acme"),
        ("The Acme Corporation", "ACME corp"),
        ("Société Générale S.A.", "Societe Generale"),
        ("Acme Industries", "Acme Industires"),
        ("Micro Soft", "Microsoft"),
    ],
)
def test_company_rules(a: str, b: str) -> None:
    value, _ = matches(company(a), company(b))
    assert DEFAULT_THRESHOLD <= value < 1.0


def test_companies_with_other_domains_or_names_are_apart() -> None:
    assert score(company("Orange"), company("Orange Business"))[0] < DEFAULT_THRESHOLD
    acme_fr, acme_com = company("Acme", domain="acme.fr"), company("Acme SA", domain="acme.com")
    assert "domain~" in score(acme_fr, acme_com)[1]
    other = company("Acme", domain="globex.com")
    assert score(acme_fr, other) == (0.75, ("name~1.00", "different domains"))


@given(
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=4, max_size=12),
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=8),
    st.integers(min_value=0),
    st.sampled_from(["sub", "del", "ins", "swap"]),
)
def test_one_typo_in_a_last_name_still_meets_in_a_block(
    last: str, first: str, at: int, op: str
) -> None:
    i = at % (len(last) - 1)
    typo = {
        "sub": last[:i] + "x" + last[i + 1 :],
        "del": last[:i] + last[i + 1 :],
        "ins": last[:i] + "x" + last[i:],
        "swap": last[:i] + last[i + 1] + last[i] + last[i + 2 :],
    }[op]
    if len(last) == 4 and op == "swap" and i == 1:
        return  # "king"/"knig": both two-letter ends change; documented
    assert blocking_keys(person(first, last)) & blocking_keys(person(first, typo))


def test_two_people_with_emails_are_never_paired() -> None:
    """Their score cannot reach the threshold, so detection does not even pair them."""
    profiles = [
        person("Jean", "Martin", email="a@x.org"),
        person("Jean", "Martin", email="b@x.org"),
        person("Jean", "Martn"),
    ]
    pairs = set(candidate_pairs("n:jean martin", [0, 1], profiles))
    assert pairs == set()
    assert set(candidate_pairs("l:martin|j", [0, 1, 2], profiles)) == {(0, 2), (1, 2)}
    assert set(candidate_pairs("n:jean martin", [0, 1], profiles, every=True)) == {(0, 1)}


def test_typo_variants_are_one_edit_away() -> None:
    variants = typo_variants("jon smith")
    assert {"john smith", "jo smith", "ojn smith", "jon smiht", "jonsmith"} <= variants
    assert "jon  smith" not in variants  # never a key: keys have single spaces
    assert typo_variants("x" * 41) == set()


def test_probe_keys_cover_the_forms_a_duplicate_takes() -> None:
    probes = probe_keys(CONTACTS, {"first_name": "Bob", "last_name": "Smith"})
    for first, last in [("Robert", "Smith"), ("Smith", "Bob"), ("B.", "Smith"), ("Bobb", "Smith")]:
        assert name_key(first, last) in probes
    assert {"jean-philippe", "jean phi"} <= first_name_variants("Jean-Phi")
    companies = probe_keys(COMPANIES, {"name": "ACME"})
    assert {"acme, inc.", "acme sas", "acme gmbh", "acm"} <= companies
    # Every suffix that company_core drops is probed: "Globex" finds "Globex Oy".
    assert {f"acme {suffix}" for suffix in LEGAL_SUFFIXES} <= companies
    assert name_key("Globex Oy") in probe_keys(COMPANIES, {"name": "Globex"})
    assert probe_keys(OBJECTS["opportunities"], {"name": "Renewal"}) == set()


def test_evidence_follows_the_strong_kinds() -> None:
    """``grouping`` pairs ``Profile.evidence()`` with the strong kinds by position."""
    values = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@x.io",
        "phone": "+33612345678",
        "linkedin": "https://linkedin.com/in/ada",
    }
    found = profile_of(CONTACTS, values)
    assert found is not None
    by_kind = dict(zip(STRONG_KINDS, found.evidence(), strict=True))
    assert by_kind["email"] == {"ada@x.io"} and by_kind["phone"] == {"+33612345678"}
    assert by_kind["linkedin"] == {"in/ada"} and by_kind["domain"] == frozenset()
