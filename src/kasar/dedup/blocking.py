"""Which pairs of records fuzzy detection scores: blocking, so that cost stays close
to linear in the number of records.

Every record gets a few blocking keys; only records sharing a key are compared, and
within a block a cheap pre-filter (rapidfuzz, in C++, a row of the block at a time)
drops the pairs whose names are too far apart to matter. Each kind of block looks at
what its key leaves open, and leaves to an earlier kind the pairs that kind already
covers, so that a pair is scored once:

====  =========================================  =====================================
key   members share                              compared (pre-filter on)
====  =========================================  =====================================
n:    sorted canonical name ("john smith")       every pair
l:    last name and first initial                the first names
p:    first name and last name's first 2 chars   the last names
s:    first name and last name's last 2 chars    the last names (unless p: had them)
====  =========================================  =====================================

Companies: ``n:`` core name, ``p:``/``s:`` its first/last four letters, ``d:`` the
label of its domain ("acme" for acme.fr), compared on the core name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator

from rapidfuzz import fuzz, process

from kasar.dedup.fuzzy import BOTH_EMAILS_CEILING, Profile, score
from kasar.dedup.grouping import FUZZY_KIND, Link

#: Blocks larger than this are skipped: a blocking key that common (every "Martin"
#: whose first name starts with "J", in a huge base) would cost quadratic time, and the
#: other keys of its records still bring their likely duplicates together.
MAX_BLOCK = 1000
#: rapidfuzz ``ratio`` (0-100) of the compared part under which a pair is not scored
#: (one typo in a 3-letter name still scores 67).
PREFILTER = 60


def blocking_keys(p: Profile) -> set[str]:
    """Keys under which two likely duplicates meet at least once, so that only records
    sharing one are compared. A person: the sorted canonical names (catches case,
    accents, nicknames, swapped names); the last name with the first initial (typos in
    the first name, initials); the first name with the last name's first or last two
    letters (one typo in a last name of four letters or more leaves one pair intact).
    A company: its core name, the first or last four letters of it, its domain's label."""
    keys: set[str] = set()
    if p.kind == "person":
        for f in p.forms:
            keys.add("n:" + " ".join(sorted((f, p.last))))
            keys.add(f"l:{p.last}|{f[0]}")
            keys.add(f"p:{f}|{p.last[:2]}")
            keys.add(f"s:{f}|{p.last[-2:]}")
    else:
        compact = p.last.replace(" ", "")
        keys.update(("n:" + p.last, "p:" + compact[:4], "s:" + compact[-4:]))
        keys.update("d:" + d.split(".")[0] for d in p.domains)
    return keys


def fuzzy_links(
    ids: list[str],
    profiles: list[Profile],
    threshold: float,
    skip: set[tuple[str, str]] | frozenset[tuple[str, str]] = frozenset(),
) -> list[Link]:
    """Links of score >= ``threshold`` between the records (``ids[i]`` has
    ``profiles[i]``; ids ascending), but not for the pairs in ``skip``."""
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(profiles):
        for key in blocking_keys(p):
            blocks[key].append(i)
    best: dict[tuple[int, int], Link] = {}
    for key, members in blocks.items():
        if not 2 <= len(members) <= MAX_BLOCK:
            continue
        every = threshold <= BOTH_EMAILS_CEILING[profiles[members[0]].kind]
        for i, j in candidate_pairs(key, members, profiles, every=every):
            if (i, j) in best or (ids[i], ids[j]) in skip:
                continue
            value, reasons = score(profiles[i], profiles[j], floor=threshold)
            if value >= threshold:
                best[(i, j)] = Link(ids[i], ids[j], value, (FUZZY_KIND,), reasons)
    return list(best.values())


def candidate_pairs(
    key: str, members: list[int], profiles: list[Profile], *, every: bool = False
) -> Iterator[tuple[int, int]]:
    """The pairs ``(i, j)``, ``i < j``, of one block worth scoring (see the table).
    Two records that both have emails, none shared, never score over
    ``BOTH_EMAILS_CEILING``: unless ``every``, a pair needs a record without email."""
    kind = key[0]
    anchors = [x for x, m in enumerate(members) if every or not profiles[m].emails]
    if not anchors:
        return
    if kind in "nd" or len(members) == 2:
        pairs = _all_pairs(anchors, members)
    else:
        texts = [_PARTS[kind](profiles[m]) for m in members]
        pairs = _prefiltered(anchors, members, texts, _distinct_emails(members, profiles))
    for i, j in pairs:
        a, b = profiles[i], profiles[j]
        if kind != "n" and a.sorted_name == b.sorted_name:
            continue  # the n: block of their shared name has them
        if kind == "s" and _prefix(a) == _prefix(b):
            continue  # so has the p: block
        yield i, j


def _all_pairs(anchors: list[int], members: list[int]) -> Iterator[tuple[int, int]]:
    anchored = set(anchors)
    for x in anchors:
        for y in range(len(members)):
            if y != x and (y not in anchored or y > x):
                yield members[min(x, y)], members[max(x, y)]


def _distinct_emails(members: list[int], profiles: list[Profile]) -> bool:
    """Whether two members have emails, none shared: two different people."""
    first: frozenset[str] | None = None
    for m in members:
        emails = profiles[m].emails
        if emails and first is None:
            first = emails
        elif emails and first is not None and first.isdisjoint(emails):
            return True
    return False


def _prefiltered(
    anchors: list[int], members: list[int], texts: list[str], crowded: bool
) -> Iterator[tuple[int, int]]:
    """Pairs of an anchor and a member whose texts are close, or of which one text has
    two letters or less (an initial: "j" against "john"). An initial in a block where
    two people are told apart by their emails (``crowded``) matches both equally well:
    it is ambiguous (``grouping``) and left out here, which saves most of the work on
    common names ("J. Martin")."""
    anchored = set(anchors)
    short = [x for x, t in enumerate(texts) if len(t.replace(" ", "")) <= 2]
    for x in anchors:
        if x in short and crowded:
            continue
        if x in short:
            ys: set[int] = set(range(len(members)))
        else:
            found = process.extract(
                texts[x], texts, scorer=fuzz.ratio, score_cutoff=PREFILTER, limit=None
            )
            ys = {y for _, _, y in found} | set(short)
        for y in ys:
            if y != x and (y not in anchored or y > x):
                yield members[min(x, y)], members[max(x, y)]


def _prefix(p: Profile) -> str:
    return p.last[:2] if p.kind == "person" else p.last.replace(" ", "")[:4]


def _first(p: Profile) -> str:
    return p.forms[0] if p.forms else p.first


def _last(p: Profile) -> str:
    return p.last


_PARTS: dict[str, Callable[[Profile], str]] = {"l": _first, "p": _last, "s": _last}
