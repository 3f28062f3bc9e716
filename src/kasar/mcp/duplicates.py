"""Exact duplicates among stored records, by the import's rules (spec §7).

Candidates are the records that share a ``(kind, value)`` in ``kasar_match_keys``
with another record of the object (one grouped index scan). Their keys are then
recomputed from their values with ``dedup.matcher.record_keys`` and every pair that
shares a key is judged by ``shared_kinds`` (so a name shared by two people with
different emails is not a match); linked records form a group.

This belongs in ``dedup`` once a detect service exists there (``POST
/api/v1/duplicates``); the MCP tool is its only user today.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any

from sqlalchemy import Connection, and_, func, select

from kasar.db import tables
from kasar.dedup.matcher import KIND_ORDER, MatchKey, record_keys, shared_kinds
from kasar.records import repository as repo
from kasar.records.query import RecordQuery, build_select
from kasar.records.render import render
from kasar.schema.repository import Workspace

#: Keys held by more records than this are left out: a value that common (a shared
#: switchboard number, say) says nothing about who is who.
MAX_RECORDS_PER_KEY = 100


def detect_duplicates(
    conn: Connection, ws: Workspace, object_name: str, *, keys: list[str], limit: int
) -> dict[str, Any]:
    obj = ws.object(object_name)
    holders = _shared_keys(conn, object_name)
    ids = {rid for rids in holders.values() for rid in rids}
    rows = repo.rows_by_id(conn, ws, obj, ids)
    mine = {rid: record_keys(obj, row, None) for rid, row in rows.items()}
    parent = {rid: rid for rid in rows}
    kinds: dict[str, set[str]] = defaultdict(set)  # root -> kinds matched on

    def root(rid: str) -> str:
        while parent[rid] != rid:
            parent[rid] = parent[parent[rid]]
            rid = parent[rid]
        return rid

    for key, rids in holders.items():
        present = [r for r in rids if r in mine and key in mine[r]]
        for a, b in combinations(present, 2):
            shared = shared_kinds(object_name, mine[a], mine[b])
            if not shared:
                continue
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
                kinds[min(ra, rb)] |= kinds.pop(max(ra, rb), set())
            kinds[root(a)].update(shared)
    members: dict[str, list[str]] = defaultdict(list)
    for rid in sorted(rows):
        members[root(rid)].append(rid)
    groups = sorted((m for m in members.values() if len(m) > 1), key=lambda m: m[0])
    shown = groups[:limit]
    rendered = _render(conn, ws, object_name, keys, [rid for g in shown for rid in g])
    return {
        "object_name": object_name,
        "duplicate_groups": [
            {
                "records": [rendered[rid] for rid in group],
                "matched_on": [k for k in KIND_ORDER if k in kinds[root(group[0])]],
            }
            for group in shown
        ],
        "total_groups": len(groups),
    }


def _shared_keys(conn: Connection, object_name: str) -> dict[MatchKey, list[str]]:
    mk = tables.match_keys
    shared = (
        select(mk.c.kind, mk.c.value)
        .where(mk.c.object_name == object_name)
        .group_by(mk.c.kind, mk.c.value)
        .having(and_(func.count() > 1, func.count() <= MAX_RECORDS_PER_KEY))
        .subquery()
    )
    stmt = (
        select(mk.c.kind, mk.c.value, mk.c.record_id)
        .join(shared, and_(mk.c.kind == shared.c.kind, mk.c.value == shared.c.value))
        .where(mk.c.object_name == object_name)
        .order_by(mk.c.kind, mk.c.value, mk.c.record_id)
    )
    holders: dict[MatchKey, list[str]] = defaultdict(list)
    for kind, value, record_id in conn.execute(stmt):
        holders[(kind, value)].append(record_id)
    return holders


def _render(
    conn: Connection, ws: Workspace, object_name: str, keys: list[str], ids: list[str]
) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    obj = ws.object(object_name)
    stmt, cols = build_select(conn, ws, obj, RecordQuery(keys))
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in conn.execute(stmt.where(cols.table.c.id.in_(chunk))).mappings():
            out[row["_id"]] = render(cols, keys, row)
    return out
