"""The duplicate rules of spec §7, over match keys and without a database.

A record is a duplicate of another when they share a strong key (``id``, ``email``,
``phone``, ``linkedin``, ``domain``) or, for contacts and companies only, a name key
that the homonym exception does not veto: two people called John Smith whose emails
(or phones) are all different are two people. The caller looks the candidates up
(indexed, batched) and feeds them to a ``Matcher``, which then answers for one record
after another and remembers each, so that later records of the same batch are matched
against earlier ones too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from typing import NamedTuple

from kasar.dedup.keys import STRONG_KINDS, match_keys_for
from kasar.schema.model import ObjectDef

MatchKey = tuple[str, str]

#: The order in which ``matched_on`` lists the kinds of key two records share.
KIND_ORDER = ("id", *STRONG_KINDS, "name")
#: Objects for which a shared name alone can make a duplicate.
NAME_RULE_OBJECTS = frozenset({"contacts", "companies"})
#: Kinds whose values, all different on both sides, veto a name match.
HOMONYM_KINDS = ("email", "phone")


def record_keys(
    obj: ObjectDef,
    values: Mapping[str, object],
    record_id: str | None,
    stored: Set[MatchKey] | None = None,
) -> set[MatchKey]:
    """The keys one record is matched on, from its column values.

    A contact's name counts only when it has both a first and a last name ("first
    name plus last name"): a lone "Bob" says too little to merge two people. The
    name key of other objects without the name rule is dropped. A record that
    brings its own id (an export imported back) is matched on it first. ``stored``
    is ``match_keys_for(obj, values)`` when the caller has it already.
    """
    keys = set(match_keys_for(obj, values) if stored is None else stored)
    if obj.name not in NAME_RULE_OBJECTS or (
        obj.name == "contacts" and not all(_filled(values.get(n)) for n in obj.name_fields())
    ):
        keys = {k for k in keys if k[0] != "name"}
    if record_id:
        keys.add(("id", record_id))
    return keys


def _filled(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def shared_kinds(object_name: str, mine: Set[MatchKey], theirs: Set[MatchKey]) -> tuple[str, ...]:
    """The kinds of key that make ``mine`` a duplicate of ``theirs``, in ``KIND_ORDER``;
    empty when they are not duplicates."""
    kinds = {kind for kind, _ in mine & theirs}
    if not kinds:
        return ()
    if kinds == {"name"} and (object_name not in NAME_RULE_OBJECTS or _homonyms(mine, theirs)):
        return ()
    return tuple(k for k in KIND_ORDER if k in kinds)


def _homonyms(mine: Set[MatchKey], theirs: Set[MatchKey]) -> bool:
    """Both sides have emails (or both have phones) and share none of them."""
    for kind in HOMONYM_KINDS:
        a = {v for k, v in mine if k == kind}
        b = {v for k, v in theirs if k == kind}
        if a and b and not a & b:
            return True
    return False


@dataclass(frozen=True)
class Match:
    """``target`` is the record a duplicate folds into; ``matched_on`` the kinds of
    key it shares with the record it was compared with (the target itself, or an
    earlier record of the batch that was already matched to the target)."""

    target: str
    matched_on: tuple[str, ...]


class _Entry(NamedTuple):  # a tuple: made in half the time of a frozen dataclass
    target: str
    keys: frozenset[MatchKey]
    order: int


class Matcher:
    """Answers "which record does this one duplicate?" for the records of one batch,
    in order, against stored candidates and the batch's earlier records.

    Among several candidates, a strong match beats a name-only match, then the
    earliest entry wins: stored records in id order (ids are time-ordered, so the
    oldest), then the batch's records in the order they were added.
    """

    def __init__(
        self,
        object_name: str,
        stored: Mapping[str, Set[MatchKey]] | None = None,
        *,
        kinds: Set[str] | None = None,
    ) -> None:
        """``kinds``: only these kinds of shared key make a duplicate (None: all)."""
        self.object_name = object_name
        self.kinds = kinds
        self._entries: list[_Entry] = []
        self._by_key: dict[MatchKey, list[_Entry]] = defaultdict(list)
        stored = stored or {}
        for record_id in sorted(stored):
            self.add(record_id, stored[record_id])

    def add(self, target: str, keys: Iterable[MatchKey]) -> None:
        """Remember a record (stored, created by the batch, or a duplicate of
        ``target``) so that later records can match it."""
        entry = _Entry(target, frozenset(keys), len(self._entries))
        self._entries.append(entry)
        for key in entry.keys:
            self._by_key[key].append(entry)

    def find(self, keys: Set[MatchKey]) -> Match | None:
        best: tuple[tuple[int, int], Match] | None = None
        seen: set[int] = set()
        for key in keys:
            for entry in self._by_key.get(key, ()):
                if entry.order in seen:
                    continue
                seen.add(entry.order)
                kinds = shared_kinds(self.object_name, keys, entry.keys)
                if self.kinds is not None:
                    kinds = tuple(k for k in kinds if k in self.kinds)
                if not kinds:
                    continue
                rank = (1 if kinds == ("name",) else 0, entry.order)
                if best is None or rank < best[0]:
                    best = (rank, Match(entry.target, kinds))
        return best[1] if best else None
