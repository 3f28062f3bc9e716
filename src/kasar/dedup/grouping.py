"""From links between records to groups of duplicates, without chaining strangers.

Union-find alone would let one weak link join two different people: a "Jean
Martin" typed without an email matches, by name, every stored Jean Martin, and the
group would then hold them all. Two guards keep groups to one person each:

* a record whose weak links (a shared name only, or a fuzzy score) reach two records
  that are *in conflict* (both have emails, or phones, ..., and share none: §7's
  homonyms) within ``MARGIN`` of each other is ambiguous: those links are dropped,
  since nothing says which of the two it duplicates;
* a weak link never joins two groups holding records in conflict.

Strong links (a shared email, phone, LinkedIn profile, domain or id) always join:
one person may well have two emails. Links are taken strongest first (Kruskal), so
a group's ``score`` is the weakest link it needed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kasar.dedup.matcher import KIND_ORDER

#: The kind ``matched_on`` shows for a fuzzy link.
FUZZY_KIND = "fuzzy_name"
#: Two weak links of one record whose scores differ by less than this are a tie.
MARGIN = 0.05
#: Groups this large are joined by a weak link without checking every cross pair.
MAX_CHECKED_PAIRS = 10_000

#: Per record: its emails, phones, LinkedIn profiles and domains (as match keys).
Evidence = Mapping[str, tuple[frozenset[str], ...]]


@dataclass(frozen=True)
class Link:
    """Two records judged duplicates (``a`` < ``b``), how sure (1.0: exact) and why."""

    a: str
    b: str
    score: float
    kinds: tuple[str, ...]
    reasons: tuple[str, ...]

    @property
    def weak(self) -> bool:
        return self.kinds == ("name",) or FUZZY_KIND in self.kinds

    @property
    def rank(self) -> float:
        """Strong exact links first, then exact name links, then fuzzy ones by score."""
        if not self.weak:
            return 2.0
        return 1.5 if self.score >= 1.0 else self.score

    def to_api(self) -> dict[str, Any]:
        return {"ids": [self.a, self.b], "score": self.score, "reasons": list(self.reasons)}


@dataclass
class Group:
    ids: list[str]
    score: float
    kinds: set[str] = field(default_factory=set)
    links: list[Link] = field(default_factory=list)

    @property
    def matched_on(self) -> list[str]:
        return [k for k in (*KIND_ORDER, FUZZY_KIND) if k in self.kinds]

    @property
    def reasons(self) -> list[str]:
        return list(dict.fromkeys(r for link in self.links for r in link.reasons))


def conflict(evidence: Evidence, x: str, y: str) -> bool:
    """Both records have values of one kind (emails, phones, ...) and share none."""
    ex, ey = evidence.get(x), evidence.get(y)
    if ex is None or ey is None:
        return False
    return any(a and b and not a & b for a, b in zip(ex, ey, strict=True))


def group_links(links: list[Link], evidence: Evidence) -> list[Group]:
    """Groups of two or more records, each sorted by id, in order of their first id."""
    parent: dict[str, str] = {}
    groups: dict[str, Group] = {}

    def root(rid: str) -> str:
        parent.setdefault(rid, rid)
        while parent[rid] != rid:
            parent[rid] = parent[parent[rid]]
            rid = parent[rid]
        return rid

    for link in sorted(_unambiguous(links, evidence), key=lambda k: (-k.rank, k.a, k.b)):
        ra, rb = root(link.a), root(link.b)
        if ra != rb:
            ga = groups.get(ra) or Group([ra], 1.0)
            gb = groups.get(rb) or Group([rb], 1.0)
            if link.weak and _in_conflict(ga.ids, gb.ids, evidence):
                continue
            groups.pop(ra, None)
            groups.pop(rb, None)
            keep, gone = min(ra, rb), max(ra, rb)
            parent[gone] = keep
            merged = Group(ga.ids + gb.ids, min(ga.score, gb.score, link.score))
            merged.kinds, merged.links = ga.kinds | gb.kinds, ga.links + gb.links
            groups[keep] = merged
        group = groups[root(link.a)]
        group.kinds.update(link.kinds)
        group.links.append(link)
    for g in groups.values():
        g.ids.sort()
    return sorted(groups.values(), key=lambda g: g.ids[0])


def _in_conflict(xs: list[str], ys: list[str], evidence: Evidence) -> bool:
    if len(xs) * len(ys) > MAX_CHECKED_PAIRS:
        return False
    return any(conflict(evidence, x, y) for x in xs for y in ys)


def _unambiguous(links: list[Link], evidence: Evidence) -> list[Link]:
    """The links without those of ambiguous records (see the module docstring)."""
    weak: dict[str, list[Link]] = defaultdict(list)
    for link in links:
        if link.weak:
            weak[link.a].append(link)
            weak[link.b].append(link)
    dropped: set[int] = set()
    for rid, mine in weak.items():
        if len(mine) < 2:
            continue
        mine.sort(key=lambda k: -k.rank)
        best = mine[0]
        partner = best.b if best.a == rid else best.a
        rivals = [
            k
            for k in mine[1:]
            if round(best.rank - k.rank, 6) < MARGIN
            and conflict(evidence, partner, k.b if k.a == rid else k.a)
        ]
        if rivals:
            dropped.update(id(k) for k in (best, *rivals))
    return [k for k in links if id(k) not in dropped]
