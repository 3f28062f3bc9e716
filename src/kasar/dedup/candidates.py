"""Possible duplicates of the records an import is about to create, and the review
queue they wait in (import option ``on_possible_duplicate=hold``).

An import must cost the same whatever the number of stored records (spec §6), so
the stored candidates of a batch are found by probing the ``name`` keys of
``kasar_match_keys`` with the forms a duplicate's name is likely to take: swapped
first and last names, nickname forms, an initial, a company name with or without
its legal suffix, and every string one typo away (a SymSpell-style neighbourhood:
one insertion, deletion, substitution or swap). Each probe is an index look-up,
batched. The candidates found are then scored with ``fuzzy.score``; the batch's own
earlier records are compared in memory through the blocking keys of ``blocking``.

A typo on *both* names, or an initial on the incoming side, is beyond these probes:
``detect`` with ``mode=fuzzy`` finds those afterwards.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, insert

from kasar.db import tables
from kasar.db.ids import new_id
from kasar.dedup.blocking import blocking_keys
from kasar.dedup.fuzzy import Profile, profile_of, score
from kasar.dedup.names import LEGAL_SUFFIXES, NICKNAMES, company_core, fold
from kasar.dedup.normalise import name_key
from kasar.records import repository as repo
from kasar.schema.model import ObjectDef
from kasar.schema.repository import Workspace, now_utc
from kasar.settings import get_settings

MAX_CANDIDATES = 5
#: Probes sent to ``find_keys`` at a time: PostgreSQL answers up to a few thousand
#: with index look-ups, but plans a scan of the whole key table for more (measured:
#: 200 ms a query at 5,000 probes and 200,000 contacts, against 10 ms at 1,000).
PROBES_PER_QUERY = 1000
#: Names longer than this get no typo variants (their neighbourhood grows with length).
MAX_TYPO_LENGTH = 40
_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz -")
#: The suffixes a company's name is probed with: every legal suffix ``company_core``
#: drops, as written plainly, and the usual dotted spellings (name keys keep dots).
SUFFIX_FORMS = (
    *sorted(LEGAL_SUFFIXES),
    "inc.", "ltd.", "corp.", "co.", "s.a.", "s.a.s.", "s.a.r.l.", "b.v.",
)  # fmt: skip
_NICKNAMES_OF: dict[str, set[str]] = defaultdict(set)
for _nick, _names in NICKNAMES.items():
    for _name in _names:
        _NICKNAMES_OF[_name].add(_nick)

Candidate = dict[str, Any]  # {"id", "score", "reasons"}


def typo_variants(text: str) -> set[str]:
    """Every string one insertion, deletion, substitution or swap away from ``text``."""
    if len(text) > MAX_TYPO_LENGTH:
        return set()
    letters = _ALPHABET | set(text)
    out: set[str] = set()
    for i in range(len(text) + 1):
        left, right = text[:i], text[i:]
        out.update(left + c + right for c in letters)
        if right:
            out.add(left + right[1:])
            out.update(left + c + right[1:] for c in letters)
        if len(right) > 1:
            out.add(left + right[1] + right[0] + right[2:])
    return {v for v in out if v and v == " ".join(v.split())}


def _drops_and_swaps(text: str) -> set[str]:
    """The strings one deletion or one swap of neighbours away: the typos whose
    variants stay few enough to combine with every legal suffix."""
    out = {text[:i] + text[i + 1 :] for i in range(len(text))}
    out |= {text[:i] + text[i + 1] + text[i] + text[i + 2 :] for i in range(len(text) - 1)}
    return {v for v in out if v.strip()} if len(text) <= MAX_TYPO_LENGTH else set()


def first_name_variants(first: str) -> set[str]:
    """A first name in the forms people write for it: nicknames both ways, with
    hyphens or spaces, its initial."""
    folded = fold(first)
    names = {folded, *NICKNAMES.get(folded, ())}
    forms = set(names)
    for name in names:
        forms |= _NICKNAMES_OF.get(name, set())
    forms |= {f.replace(" ", "-") for f in forms}
    if folded:
        forms |= {folded[0], folded[0] + "."}
    return forms


def probe_keys(obj: ObjectDef, values: Mapping[str, object]) -> set[str]:
    """The ``name`` key values under which a likely duplicate of this record is stored."""
    text = {n: v for n in obj.name_fields() if isinstance(v := values.get(n), str) and v.strip()}
    out: set[str] = set()
    if obj.name == "contacts" and len(text) == 2:
        first, last = text["first_name"], text["last_name"]
        own = name_key(first, last)
        out |= {name_key(last, first) or "", *typo_variants(own or "")}
        out |= {name_key(form, last) or "" for form in first_name_variants(first)}
    elif obj.name == "companies" and "name" in text:
        own, core = name_key(text["name"]) or "", company_core(text["name"])
        out |= {core, "the " + core, *typo_variants(own), *typo_variants(core)}
        cores = {core, *_drops_and_swaps(core)}  # "acmee" finds "acme, inc." too
        out |= {
            f"{c}{sep}{suffix}" for c in cores for suffix in SUFFIX_FORMS for sep in (" ", ", ")
        }
    return {v for v in out if v}


class PossibleDuplicates:
    """Answers "which records may this one duplicate?" for the records of one batch,
    in order: the stored candidates were looked up once, up front; the batch's
    earlier records are added as they are created."""

    def __init__(
        self,
        conn: Connection,
        ws: Workspace,
        obj: ObjectDef,
        rows: Mapping[int, Mapping[str, object]],
        threshold: float | None = None,
    ) -> None:
        self.threshold = get_settings().fuzzy_threshold if threshold is None else threshold
        self.profiles = {i: p for i, values in rows.items() if (p := profile_of(obj, values))}
        self.stored = self._stored(conn, ws, obj, rows)
        self._created: list[tuple[str, Profile]] = []
        self._blocks: dict[str, list[int]] = defaultdict(list)

    def _stored(
        self,
        conn: Connection,
        ws: Workspace,
        obj: ObjectDef,
        rows: Mapping[int, Mapping[str, object]],
    ) -> dict[int, list[Candidate]]:
        probes = {i: probe_keys(obj, rows[i]) for i in self.profiles}
        wanted = sorted({("name", v) for values in probes.values() for v in values})
        found: dict[tuple[str, str], list[str]] = {}
        for start in range(0, len(wanted), PROBES_PER_QUERY):
            found.update(repo.find_keys(conn, obj.name, wanted[start : start + PROBES_PER_QUERY]))
        ids = {rid for rids in found.values() for rid in rids}
        stored = repo.rows_by_id(conn, ws, obj, ids)
        theirs = {rid: p for rid, row in stored.items() if (p := profile_of(obj, row))}
        out: dict[int, list[Candidate]] = {}
        for i, keys in probes.items():
            hits = {rid for v in keys for rid in found.get(("name", v), ())}
            out[i] = self._scored(
                self.profiles[i], ((rid, theirs[rid]) for rid in hits if rid in theirs)
            )
        return out

    def _scored(self, mine: Profile, others: Iterable[tuple[str, Profile]]) -> list[Candidate]:
        out = []
        for rid, theirs in others:
            value, reasons = score(mine, theirs)
            if value >= self.threshold:
                out.append({"id": rid, "score": value, "reasons": list(reasons)})
        return out

    def candidates(self, index: int) -> list[Candidate]:
        """The best candidates of record ``index`` (empty: it is not a possible duplicate)."""
        mine = self.profiles.get(index)
        if mine is None:
            return []
        near = {j for key in blocking_keys(mine) for j in self._blocks.get(key, ())}
        found = self.stored.get(index, []) + self._scored(mine, (self._created[j] for j in near))
        best: dict[str, Candidate] = {}
        for c in sorted(found, key=lambda c: (-c["score"], c["id"])):
            best.setdefault(c["id"], c)
        return list(best.values())[:MAX_CANDIDATES]

    def created(self, index: int, record_id: str) -> None:
        """Record ``index`` of the batch is created as ``record_id``: later ones may match it."""
        mine = self.profiles.get(index)
        if mine is None:
            return
        for key in blocking_keys(mine):
            self._blocks[key].append(len(self._created))
        self._created.append((record_id, mine))


def enqueue(
    conn: Connection,
    object_name: str,
    held: list[tuple[Mapping[str, object], list[Candidate]]],
    job_id: str | None = None,
) -> list[str]:
    """Put held records in the review queue; their ids, in order."""
    ids = [new_id() for _ in held]
    if held:
        stamp = now_utc()
        conn.execute(
            insert(tables.review_queue),
            [
                {
                    "id": rid,
                    "object_name": object_name,
                    "job_id": job_id,
                    "record": json.dumps(dict(record), ensure_ascii=False, default=str),
                    "candidates": json.dumps(candidates),
                    "state": "pending",
                    "created_at": stamp,
                }
                for rid, (record, candidates) in zip(ids, held, strict=True)
            ],
        )
    return ids
