"""What fuzzy matching knows about names: folding, nicknames, legal suffixes.

Kept apart from the scoring (``fuzzy``) because the import's index probes
(``candidates``) need the same knowledge to write a name the ways a duplicate may
have been written. The tables are small on purpose: each entry is a form people
really write for another, and docs/duplicates.md lists them.
"""

from __future__ import annotations

import re
import unicodedata

#: Common short forms -> the given names they stand for. Kept small on purpose: each
#: entry is a name people really write for another; ambiguous forms list every name.
NICKNAMES: dict[str, tuple[str, ...]] = {
    "bob": ("robert",), "bobby": ("robert",), "rob": ("robert",), "robbie": ("robert",),
    "bill": ("william",), "billy": ("william",), "will": ("william",), "liam": ("william",),
    "liz": ("elizabeth",), "lizzie": ("elizabeth",), "beth": ("elizabeth",),
    "betty": ("elizabeth",), "jim": ("james",), "jimmy": ("james",), "jamie": ("james",),
    "mike": ("michael",), "mick": ("michael",), "kate": ("katherine", "catherine"),
    "katie": ("katherine", "catherine"), "kathy": ("katherine", "catherine"),
    "cathy": ("catherine", "katherine"), "tom": ("thomas",), "tommy": ("thomas",),
    "dick": ("richard",), "rick": ("richard",), "rich": ("richard",), "tony": ("anthony",),
    "dave": ("david",), "dan": ("daniel",), "danny": ("daniel",), "joe": ("joseph",),
    "ed": ("edward",), "ted": ("edward",), "sam": ("samuel", "samantha"), "sue": ("susan",),
    "jen": ("jennifer",), "jenny": ("jennifer",), "meg": ("margaret",), "maggie": ("margaret",),
    "peggy": ("margaret",), "chris": ("christopher", "christine", "christian", "christophe"),
    "alex": ("alexander", "alexandra", "alexandre"), "steve": ("steven", "stephen"),
    "andy": ("andrew",), "matt": ("matthew",), "nick": ("nicholas", "nicolas"),
    "pat": ("patrick", "patricia"), "greg": ("gregory",), "jeff": ("jeffrey",),
    "ben": ("benjamin",), "charlie": ("charles",), "harry": ("henry", "harold"),
    "jack": ("john",), "johnny": ("john",), "tim": ("timothy",), "phil": ("philip", "philippe"),
    # French
    "jean phi": ("jean philippe",), "jean mi": ("jean michel",), "jp": ("jean pierre",),
    "jb": ("jean baptiste",), "fred": ("frederic", "frederique"), "seb": ("sebastien",),
    "steph": ("stephane", "stephanie"), "nico": ("nicolas",), "manu": ("emmanuel", "emmanuelle"),
    "max": ("maxime", "maximilien"), "flo": ("florian", "florence"), "isa": ("isabelle",),
    "val": ("valerie", "valentin"), "domi": ("dominique",), "vero": ("veronique",),
    "caro": ("caroline",), "cath": ("catherine",),
}  # fmt: skip
#: Legal-form words dropped from the end of a company name ("S.A.S." folds to "sas").
LEGAL_SUFFIXES = frozenset(
    {
        "inc", "incorporated", "ltd", "limited", "llc", "llp", "plc", "corp", "corporation",
        "co", "company", "sas", "sasu", "sarl", "eurl", "sa", "sca", "snc", "gmbh", "ag", "kg",
        "bv", "nv", "spa", "srl", "oy", "ab", "as", "aps", "pty",
    }
)  # fmt: skip
_GLUE = str.maketrans("", "", "'’`.")  # O'Brien -> obrien, S.A.S. -> sas
_SEPARATORS = re.compile(r"[\W_]+")


def fold(text: str) -> str:
    """Lowercase words without accents or punctuation: "  Jean-Pierre O'Brien " ->
    "jean pierre obrien". Idempotent."""
    if text.isascii() and text.isalpha():
        return text.lower()
    text = text.casefold()
    if not text.isascii():
        # Compatibility forms can decompose to capitals ("🄰" -> "A"): fold again after.
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(_SEPARATORS.sub(" ", text.translate(_GLUE)).split())


def first_name_forms(first: str) -> tuple[str, ...]:
    """The given names a folded first name may stand for: itself, or what its
    nickname means ("kate" -> katherine, catherine)."""
    return NICKNAMES.get(first, (first,))


def company_core(name: str) -> str:
    """A company name without a leading "the", its legal suffixes and punctuation:
    "The ACME, Inc." -> "acme". Keeps at least one word."""
    words = fold(name.replace("&", " and ")).split()
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)
