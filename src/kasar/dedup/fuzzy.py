"""Fuzzy duplicate scoring: who is *probably* the same person or company.

Exact match keys (``matcher``) miss the duplicates people really type: "Jon Smith"
for "John Smith", "Bob" for "Robert", "Smith John", "J. Smith", "ACME, Inc." for
"Acme". A record becomes a ``Profile`` (folded names, nickname forms, a company's
core name without its legal suffix, emails, phones, links) and two profiles get a
score in [0, 1) with the reasons that made it, e.g. ``(0.98, ("name~0.98",
"nickname"))``. Exact duplicates score 1.0 elsewhere; a fuzzy score stays below.

Pure functions, no database: ``detect`` scores the pairs its blocking keys propose,
``candidates`` the stored records its index probes find. docs/duplicates.md gives
the rules and the measured precision and recall behind the weights.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler

from kasar.dedup.keys import listed
from kasar.dedup.names import company_core, first_name_forms, fold
from kasar.dedup.normalise import domain_key, email_key, linkedin_key, phone_key
from kasar.schema.model import ObjectDef
from kasar.schema.types import FieldType

#: Weights of the first and last name in a person's name score: the family name is
#: rarer, so agreeing on it says more.
W_FIRST, W_LAST = 0.4, 0.6
#: Token scores for one typo (one insertion, deletion, substitution or swap of two
#: neighbours) and for two typos in a long token; other pairs fall off steeply.
ONE_EDIT, TWO_EDITS = 0.9, 0.8
#: A nickname is nearly as good as the name; an initial much less ("J." is every James,
#: John and Julie): alone it stays under the threshold, with the same company over it.
NICKNAME, INITIAL, SWAPPED_PENALTY = 0.95, 0.55, 0.02
#: Conflicting evidence: both sides have emails (phones, ...) and share none.
DIFFERENT_EMAILS, DIFFERENT_PHONES, DIFFERENT_LINKEDIN, DIFFERENT_DOMAINS = 0.25, 0.2, 0.3, 0.25
COMPANY_DIFFERENT_PHONES = 0.1  # a company has many lines
#: A shared related record (the same company) is a hint; another one is evidence
#: against: similar names at two companies are more often two people than one person
#: who changed jobs (a typo'd name at another company falls under the threshold).
SAME_LINK, DIFFERENT_LINK, SIMILAR_DOMAIN = 0.05, 0.2, 0.05
#: The best score of two records whose emails all differ: for people under the default
#: threshold, so that detection never even pairs two people who both have emails.
BOTH_EMAILS_CEILING = {
    "person": 1.0 - DIFFERENT_EMAILS + SAME_LINK,
    "company": 1.0 - DIFFERENT_EMAILS + SAME_LINK + SIMILAR_DOMAIN,
}


@dataclass(frozen=True, slots=True)
class Profile:
    """What fuzzy matching knows of one record. ``kind`` is "person" (first and last
    name) or "company" (``last`` holds the core name); ``initial``: the first name is
    only initials ("J.", "J.-P.")."""

    kind: str
    first: str
    last: str
    forms: tuple[str, ...]
    initial: bool
    emails: frozenset[str]
    phones: frozenset[str]
    linkedin: frozenset[str]
    domains: frozenset[str]
    links: frozenset[str]
    sorted_name: str

    def evidence(self) -> tuple[frozenset[str], ...]:
        """The strong values that tell two homonyms apart (``grouping.conflict``), in
        the order of ``keys.STRONG_KINDS``."""
        return (self.emails, self.phones, self.linkedin, self.domains)


def fuzzy_kind(obj: ObjectDef) -> str | None:
    """Fuzzy rules apply where §7's name rule does: contacts and companies."""
    return {"contacts": "person", "companies": "company"}.get(obj.name)


def profile_of(obj: ObjectDef, values: Mapping[str, object]) -> Profile | None:
    """The profile of a record from its column values; None when it has no name (a
    contact needs a first and a last name) or its object has no fuzzy rule."""
    return profile_reader(obj)(values)


@lru_cache(maxsize=64)
def profile_reader(obj: ObjectDef) -> Callable[[Mapping[str, object]], Profile | None]:
    """``profile_of`` for one object, with the field plan worked out once: detection
    reads hundreds of thousands of rows."""
    kind = fuzzy_kind(obj)
    emails = [(f.column, f.list_column) for f in obj.fields if f.type is FieldType.EMAILS]
    phones = [(f.column, f.list_column) for f in obj.fields if f.type is FieldType.PHONES]
    relations = [(f.name, f.column) for f in obj.fields if f.type is FieldType.RELATION]
    urls = {f.name for f in obj.fields if f.type is FieldType.URL}

    def read(values: Mapping[str, object]) -> Profile | None:
        if kind is None:
            return None
        if kind == "person":
            first, last = _text(values.get("first_name")), _text(values.get("last_name"))
            if not first or not last:
                return None
            forms = first_name_forms(first)
            sorted_name = " ".join(sorted((forms[0], last)))
        else:
            first, last = "", company_core(_raw(values.get("name")))
            if not last:
                return None
            forms, sorted_name = (), last
        mails = frozenset(k for c, lc in emails for e in listed(values, c, lc) if (k := _email(e)))
        linkedin = _url(values, "linkedin", linkedin_key) if "linkedin" in urls else frozenset()
        return Profile(
            kind=kind,
            first=first,
            last=last,
            forms=forms,
            initial=bool(first) and all(len(w) == 1 for w in first.split()),
            emails=mails,
            phones=frozenset(
                k for c, lc in phones for p in listed(values, c, lc) if (k := phone_key(p))
            ),
            linkedin=linkedin,
            domains=_url(values, "domain", domain_key) if "domain" in urls else frozenset(),
            links=frozenset(
                f"{n}={v}" for n, c in relations if isinstance(v := values.get(c), str)
            ),
            sorted_name=sorted_name,
        )

    return read


def _raw(value: object) -> str:
    return value if isinstance(value, str) else ""


def _text(value: object) -> str:
    return fold(value) if isinstance(value, str) else ""


def _email(value: str) -> str | None:
    """``normalise.email_key``, with a fast path for the usual address: ASCII (which
    NFKC leaves alone) and no longer than an address may be (254 characters)."""
    if value.isascii() and len(value) <= 254:
        return value.strip().lower() or None
    return email_key(value)


def _url(
    values: Mapping[str, object], column: str, key: Callable[[str], str | None]
) -> frozenset[str]:
    value = values.get(column)
    return frozenset(k for k in (key(value),) if k) if isinstance(value, str) else frozenset()


def token_similarity(a: str, b: str) -> float:
    """1 for equal words (spaces aside: "jean pierre"/"jeanpierre"), ``ONE_EDIT``
    for one typo in a word of 3+ letters (what keyboards do), ``TWO_EDITS`` for two
    in 7+ letters, else a steep fall from Jaro-Winkler 0.8 (which alone rates
    "Jean"/"Jane" 0.85, "Paul"/"Pauline" 0.91)."""
    if a == b or a.replace(" ", "") == b.replace(" ", ""):
        return 1.0
    edits = OSA.distance(a, b, score_cutoff=2)
    shortest = min(len(a), len(b))
    if edits == 1 and shortest >= 3:
        return ONE_EDIT
    if edits == 2 and shortest >= 7:
        return TWO_EDITS
    jaro_winkler = JaroWinkler.normalized_similarity(a, b)
    return max(0.0, (jaro_winkler - 0.8) / 0.2) * TWO_EDITS


def _initials(name: str) -> str:
    return "".join(word[0] for word in name.split())


def _first_similarity(
    a: str,
    a_initial: bool,
    forms_a: tuple[str, ...],
    b: str,
    b_initial: bool,
    forms_b: tuple[str, ...],
) -> tuple[float, str | None]:
    if a == b and not a_initial:
        return 1.0, None
    if a_initial or b_initial:
        short, other = (a, b) if a_initial else (b, a)
        ok = _initials(other).startswith(short.replace(" ", ""))
        return (INITIAL, "initial") if ok else (0.0, None)
    nicknamed = forms_a != (a,) or forms_b != (b,)
    if nicknamed and set(forms_a) & set(forms_b):
        return NICKNAME, "nickname"
    return token_similarity(a, b), None


def _name_score(a: Profile, b: Profile) -> tuple[float, list[str]]:
    first, why = _first_similarity(a.first, a.initial, a.forms, b.first, b.initial, b.forms)
    best = W_FIRST * first + W_LAST * token_similarity(a.last, b.last)
    reasons = [why] if why else []
    if best < 0.9:  # first and last name may have been entered the other way round
        forms = first_name_forms(b.last)
        first, why = _first_similarity(a.first, a.initial, a.forms, b.last, False, forms)
        swapped = W_FIRST * first + W_LAST * token_similarity(a.last, b.first) - SWAPPED_PENALTY
        if swapped > best:
            best, reasons = swapped, [*([why] if why else []), "swapped names"]
    return best, reasons


def score(a: Profile, b: Profile, floor: float = 0.0) -> tuple[float, tuple[str, ...]]:
    """How likely two profiles of the same kind are one person or company, in [0, 1),
    with the reasons. Shared names push up, conflicting emails, phones or profiles
    pull down (the fuzzy form of §7's homonym rule). When the evidence alone keeps the
    score under ``floor`` (homonyms, mostly), the names are not compared and the
    answer is that upper bound."""
    evidence = _evidence(a, b)
    bound = 1.0 + sum(adjust for adjust, _ in evidence)
    if bound < floor:
        return round(bound, 3), tuple(why for _, why in evidence)
    if a.kind == "person":
        name, extra = _name_score(a, b)
    else:
        name = fuzz.token_sort_ratio(a.last, b.last) / 100
        if name < 0.97 and a.last.replace(" ", "") == b.last.replace(" ", ""):
            name = 0.97
        extra = []
    total, reasons = name, [f"name~{name:.2f}", *extra]
    for adjust, why in evidence:
        total += adjust
        reasons.append(why)
    return round(min(max(total, 0.0), 0.99), 3), tuple(reasons)


def _evidence(a: Profile, b: Profile) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    if a.links and b.links:
        mine = dict(link.split("=", 1) for link in a.links)
        for field, target in sorted(link.split("=", 1) for link in b.links):
            if field in mine:
                same = mine[field] == target
                out.append(
                    (SAME_LINK, f"same {field}")
                    if same
                    else (-DIFFERENT_LINK, f"different {field}")
                )
    if a.emails and b.emails and a.emails.isdisjoint(b.emails):
        out.append((-DIFFERENT_EMAILS, "different emails"))
    if a.phones and b.phones and not a.phones & b.phones:
        penalty = DIFFERENT_PHONES if a.kind == "person" else COMPANY_DIFFERENT_PHONES
        out.append((-penalty, "different phones"))
    if a.linkedin and b.linkedin and not a.linkedin & b.linkedin:
        out.append((-DIFFERENT_LINKEDIN, "different linkedin"))
    if a.domains and b.domains and not a.domains & b.domains:
        labels_a = {d.split(".")[0] for d in a.domains}
        if labels_a & {d.split(".")[0] for d in b.domains}:
            out.append((SIMILAR_DOMAIN, "domain~"))
        else:
            out.append((-DIFFERENT_DOMAINS, "different domains"))
    return out
