"""Duplicate detection over every record of an object (spec §7, issue 7).

Two passes, both close to linear in the number of records:

* **exact**: the records that share a ``(kind, value)`` in ``kasar_match_keys`` (one
  grouped scan of its primary-key index), with their stored keys, are judged pair by
  pair with the import's rules (``matcher.shared_kinds``: a name shared by two people
  with different emails is no link); score 1.0;
* **fuzzy** (opt-in): one streamed read of the columns that matter, a ``Profile`` per
  record, and scores only for the pairs that ``blocking`` proposes; links at or over
  the threshold (``KASAR_FUZZY_THRESHOLD`` or the request's) are kept.

``grouping`` then turns the links into groups without chaining different people.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import combinations
from typing import Any

from sqlalchemy import Connection, Select, Subquery, and_, func, or_, select

from kasar.db import tables
from kasar.dedup.blocking import fuzzy_links
from kasar.dedup.fuzzy import Profile, fuzzy_kind, profile_reader, score
from kasar.dedup.grouping import Group, Link, group_links
from kasar.dedup.keys import STRONG_KINDS
from kasar.dedup.matcher import NAME_RULE_OBJECTS, MatchKey, shared_kinds
from kasar.errors import ValidationFailed
from kasar.records.query import RecordQuery, build_select
from kasar.records.render import render
from kasar.schema.model import ObjectDef
from kasar.schema.repository import Workspace
from kasar.schema.types import FieldType
from kasar.settings import get_settings

MODES = ("exact", "fuzzy")
#: Keys held by more records than this are left out: a value that common (a shared
#: switchboard number, say) says nothing about who is who.
MAX_RECORDS_PER_KEY = 100
MAX_LINKS_SHOWN = 50
# The strong kinds, in the order of ``fuzzy.Profile.evidence()`` (``grouping``
# compares the two position by position).
_EVIDENCE_KINDS = STRONG_KINDS
_EVIDENCE_AT = {kind: at for at, kind in enumerate(_EVIDENCE_KINDS)}
_CHUNK = 500


def detect_duplicates(
    conn: Connection,
    ws: Workspace,
    object_name: str,
    *,
    keys: list[str],
    limit: int,
    mode: str = "exact",
    threshold: float | None = None,
) -> dict[str, Any]:
    """The answer of ``detect``: the first ``limit`` groups with their records shown
    under ``keys``, and ``total_groups``."""
    groups = find_groups(conn, ws, object_name, mode=mode, threshold=threshold)
    shown = groups[:limit]
    rendered = render_records(conn, ws, object_name, keys, [rid for g in shown for rid in g.ids])
    return {
        "object_name": object_name,
        "mode": mode,
        "duplicate_groups": [
            {
                "records": [rendered[rid] for rid in g.ids if rid in rendered],
                "matched_on": g.matched_on,
                "score": g.score,
                "reasons": g.reasons,
                "links": [link.to_api() for link in g.links[:MAX_LINKS_SHOWN]],
            }
            for g in shown
        ],
        "total_groups": len(groups),
    }


def find_groups(
    conn: Connection,
    ws: Workspace,
    object_name: str,
    *,
    mode: str = "exact",
    threshold: float | None = None,
) -> list[Group]:
    """Every group of duplicates of the object: exact mode in id order (the oldest
    record first), fuzzy mode strongest first."""
    if mode not in MODES:
        raise ValidationFailed("mode must be one of: " + ", ".join(MODES))
    cut = get_settings().fuzzy_threshold if threshold is None else threshold
    if not 0.5 <= cut <= 1.0:
        raise ValidationFailed("threshold must be between 0.5 and 1.0")
    obj = ws.object(object_name)
    with _collector_paused():
        links, evidence = exact_links(conn, ws, obj)
        if mode == "fuzzy" and fuzzy_kind(obj) is not None:
            ids, profiles = scan_profiles(conn, ws, obj)
            exact = {(k.a, k.b) for k in links}
            links = _rescore_names(links, dict(zip(ids, profiles, strict=True)), cut)
            links += fuzzy_links(ids, profiles, cut, skip=exact)
            for rid, p in zip(ids, profiles, strict=True):
                evidence.setdefault(rid, p.evidence())
        groups = group_links(links, evidence)
    if mode == "fuzzy":
        groups.sort(key=lambda g: (-g.score, g.ids[0]))
    return groups


def _rescore_names(links: list[Link], profiles: dict[str, Profile], cut: float) -> list[Link]:
    """Fuzzy mode judges a pair that shares only its name as it judges any pair, with
    all the evidence: the same name at two companies, say, falls under the threshold.
    (Exact mode keeps §7's verdict: a duplicate.)"""
    out = []
    for link in links:
        a, b = profiles.get(link.a), profiles.get(link.b)
        if link.kinds != ("name",) or a is None or b is None:
            out.append(link)
            continue
        value, reasons = score(a, b)
        if value >= cut:
            out.append(Link(link.a, link.b, value, link.kinds, (*link.reasons, *reasons[1:])))
    return out


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Detection builds a few hundred thousand small objects and no reference cycles;
    the cyclic garbage collector would rescan them again and again (measured: a
    quarter of the time at 200,000 contacts), so it waits until detection is done."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def exact_links(
    conn: Connection, ws: Workspace, obj: ObjectDef
) -> tuple[list[Link], dict[str, tuple[frozenset[str], ...]]]:
    """Links between records that share a match key §7 accepts, and the strong keys
    of the linked records."""
    shared = _shared(obj.name)
    holders: dict[MatchKey, list[str]] = defaultdict(list)
    for kind, value, record_id in conn.execute(_holding(obj.name, shared)).all():
        holders[(kind, value)].append(record_id)
    mine = _usable_keys(conn, ws, obj, {rid for rids in holders.values() for rid in rids})
    emailed = {rid for rid, keys in mine.items() if any(k[0] == "email" for k in keys)}
    links: dict[tuple[str, str], Link] = {}
    for key, rids in holders.items():
        present = [r for r in rids if key in mine.get(r, ())]
        pairs = _name_pairs(present, emailed) if key[0] == "name" else combinations(present, 2)
        for a, b in pairs:
            if (a, b) not in links and (kinds := shared_kinds(obj.name, mine[a], mine[b])):
                links[(a, b)] = Link(a, b, 1.0, kinds, tuple(f"same {k}" for k in kinds))
    linked = {rid for pair in links for rid in pair}
    return list(links.values()), {rid: _evidence_of(mine[rid]) for rid in linked}


def _name_pairs(present: list[str], emailed: set[str]) -> Iterator[tuple[str, str]]:
    """The pairs of a name's holders worth judging: those with a record without email.
    Two records with emails are either homonyms (no email shared) or linked through
    the email they share; common names make such pairs by the thousand."""
    for x, a in enumerate(present):
        for y in range(x + 1, len(present)):
            if a not in emailed or present[y] not in emailed:
                yield a, present[y]


def _evidence_of(keys: set[MatchKey]) -> tuple[frozenset[str], ...]:
    found: list[set[str]] = [set() for _ in _EVIDENCE_KINDS]
    for kind, value in keys:
        if (at := _EVIDENCE_AT.get(kind)) is not None:
            found[at].add(value)
    return tuple(frozenset(values) for values in found)


def _shared(object_name: str) -> Subquery:
    """The keys of the object held by 2 to ``MAX_RECORDS_PER_KEY`` records."""
    mk = tables.match_keys
    return (
        select(mk.c.kind, mk.c.value)
        .where(mk.c.object_name == object_name)
        .group_by(mk.c.kind, mk.c.value)
        .having(and_(func.count() > 1, func.count() <= MAX_RECORDS_PER_KEY))
        .subquery()
    )


def _holding(object_name: str, shared: Subquery) -> Select[Any]:
    """(kind, value, record_id) of the shared keys, by key then record id."""
    mk = tables.match_keys
    return (
        select(mk.c.kind, mk.c.value, mk.c.record_id)
        .join(shared, and_(mk.c.kind == shared.c.kind, mk.c.value == shared.c.value))
        .where(mk.c.object_name == object_name)
        .order_by(mk.c.kind, mk.c.value, mk.c.record_id)
    )


def _usable_keys(
    conn: Connection, ws: Workspace, obj: ObjectDef, holders: set[str]
) -> dict[str, set[MatchKey]]:
    """Every stored key of ``holders``, as §7 matches on them: ``matcher.record_keys``
    without recomputing them, i.e. a name only for contacts and companies, and for a
    contact only when it has both a first and a last name. One pass over the
    object's keys rather than a probe per holder: holders are commonly a large share
    of the records (not measured against ``keys_of_records`` probes)."""
    mk = tables.match_keys
    stmt = select(mk.c.kind, mk.c.value, mk.c.record_id).where(mk.c.object_name == obj.name)
    stored: dict[str, set[MatchKey]] = defaultdict(set)
    for kind, value, record_id in conn.execute(stmt).all():
        if record_id in holders:
            stored[record_id].add((kind, value))
    if obj.name not in NAME_RULE_OBJECTS:
        return {rid: {k for k in keys if k[0] != "name"} for rid, keys in stored.items()}
    if obj.name == "contacts":
        table = ws.table(obj.name)
        first, last = (table.c[n] for n in obj.name_fields())
        partial = or_(
            first.is_(None), last.is_(None), func.trim(first) == "", func.trim(last) == ""
        )
        for rid in conn.execute(select(table.c.id).where(partial)).scalars():
            if rid in stored:
                stored[rid] = {k for k in stored[rid] if k[0] != "name"}
    return stored


def scan_profiles(
    conn: Connection, ws: Workspace, obj: ObjectDef
) -> tuple[list[str], list[Profile]]:
    """Every record's id and profile, from one streamed read of the columns that
    profiles use, in id order (records without a usable name are left out)."""
    table = ws.table(obj.name)
    names = [n for n in _profile_columns(obj) if n in table.c]
    stmt = select(table.c.id, *[table.c[n] for n in names]).order_by(table.c.id)
    ids: list[str] = []
    profiles: list[Profile] = []
    read = profile_reader(obj)
    for row in conn.execution_options(yield_per=20_000).execute(stmt):
        p = read(dict(zip(names, row[1:], strict=True)))
        if p is not None:
            ids.append(row[0])
            profiles.append(p)
    return ids, profiles


def _profile_columns(obj: ObjectDef) -> list[str]:
    out = list(obj.name_fields())
    for f in obj.fields:
        if f.type in (FieldType.EMAILS, FieldType.PHONES):
            out.append(f.list_column)
        elif f.type is FieldType.RELATION or (
            f.type is FieldType.URL and f.name in ("linkedin", "domain")
        ):
            out.append(f.column)
    return list(dict.fromkeys(out))


def render_records(
    conn: Connection, ws: Workspace, object_name: str, keys: list[str], ids: list[str]
) -> dict[str, dict[str, Any]]:
    """Records by id, shown under ``keys`` as the records API shows them."""
    if not ids:
        return {}
    obj = ws.object(object_name)
    stmt, cols = build_select(conn, ws, obj, RecordQuery(keys))
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for row in conn.execute(stmt.where(cols.table.c.id.in_(chunk))).mappings():
            out[row["_id"]] = render(cols, keys, row)
    return out
