"""The match-key look-ups probe their indexes whatever the planner's statistics say.

An import grows ``kasar_match_keys`` by millions of rows between two ANALYZEs (or,
on SQLite, with none at all); a look-up that the planner turns into a scan makes
the import quadratic (docs/performance.md, "Where the time goes").
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from kasar.db import tables
from kasar.db.engine import is_sqlite, read_transaction, write_transaction
from kasar.records import repository
from kasar.records.repository import find_keys, keys_of_records


def _store_keys(engine: Engine, count: int) -> None:
    rows = [
        {"object_name": obj, "kind": "email", "value": f"p{i}@x.org", "record_id": f"{obj}-{i}"}
        for obj in ("contacts", "companies")
        for i in range(count)
    ]
    with write_transaction(engine) as conn:
        conn.execute(tables.match_keys.insert(), rows)


def test_look_ups_find_the_keys_of_their_object_only(engine: Engine) -> None:
    _store_keys(engine, 50)
    with read_transaction(engine) as conn:
        found = find_keys(conn, "contacts", [("email", "p3@x.org"), ("email", "nobody@x.org")])
        assert dict(found) == {("email", "p3@x.org"): ["contacts-3"]}
        keys = keys_of_records(conn, "contacts", ["contacts-4", "companies-4", "contacts-99"])
        assert dict(keys) == {"contacts-4": {("email", "p4@x.org")}}


def test_keys_of_records_probe_the_record_index_on_sqlite(engine: Engine) -> None:
    """SQLite without statistics would otherwise walk the primary key, whose first
    column is the object's name: every key of the object for each call."""
    if not is_sqlite(engine):
        pytest.skip("PostgreSQL looks records up by LATERAL probes (tested below)")
    mk = tables.match_keys
    stmt = select(mk.c.kind).where(repository._keys_of("contacts", ["a", "b"]))
    with read_transaction(engine) as conn:
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = " ".join(str(r[3]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
        assert "USING COVERING INDEX ix_match_keys_record_keys" in plan


def test_find_keys_probe_the_primary_key_on_sqlite(engine: Engine) -> None:
    if not is_sqlite(engine):
        pytest.skip("PostgreSQL looks keys up by LATERAL probes (tested below)")
    sql, params = repository._find_keys_sqlite("contacts", "email", ["p1@x.org", "p2@x.org"])
    with read_transaction(engine) as conn:
        plan = " ".join(
            str(r[3]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
        )
    index = "sqlite_autoindex_kasar_match_keys_1 (object_name=? AND kind=? AND value=?)"
    assert index in plan, plan


def test_find_keys_on_sqlite_come_back_in_few_statement_forms(engine: Engine) -> None:
    """Lists padded to powers of two: long ones found whole, short ones not repeated."""
    _store_keys(engine, 40)
    wanted = [("email", f"p{i}@x.org") for i in range(0, 40, 2)] + [("phone", "+33612345678")]
    with read_transaction(engine) as conn:
        found = find_keys(conn, "contacts", wanted)
    assert dict(found) == {("email", f"p{i}@x.org"): [f"contacts-{i}"] for i in range(0, 40, 2)}
    if is_sqlite(engine):
        texts = {repository._find_keys_sqlite("c", "email", ["v"] * n)[0] for n in range(1, 300)}
        assert len(texts) == 6  # 16, 32, 64, 128, 256, 512


def test_find_keys_on_postgresql_is_a_probe_per_key_whatever_the_plan_costs(
    engine: Engine,
) -> None:
    """With nested loops priced out (as stale statistics make them look), the
    look-up must still be one index probe per wanted key, not a join of the table."""
    if is_sqlite(engine):
        pytest.skip("SQLite's form is one IN per kind (tested above)")
    _store_keys(engine, 200)
    with read_transaction(engine) as conn:
        conn.exec_driver_sql("SET LOCAL enable_nestloop = off")
        params = {
            "kinds": repository._json(["email"] * 3),
            "values": repository._json(["p1@x.org", "p2@x.org", "z"]),
            "object": "c",
        }
        sql = str(repository._FIND_KEYS_PG.compile(conn))
        plan = " ".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}", params))
        assert "Nested Loop" in plan and "Index" in plan, plan
        assert "Join" not in plan.replace("Nested Loop", ""), plan


def test_keys_of_records_on_postgresql_is_a_probe_per_id(engine: Engine) -> None:
    if is_sqlite(engine):
        pytest.skip("SQLite's keys_of_records is covered by the plan test above")
    _store_keys(engine, 200)
    with read_transaction(engine) as conn:
        conn.exec_driver_sql("SET LOCAL enable_nestloop = off")
        sql = str(repository._KEYS_OF_RECORDS_PG.compile(conn))
        params = {"ids": repository._json(["contacts-1", "contacts-2"]), "object": "contacts"}
        plan = " ".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}", params))
        assert "Nested Loop" in plan and "ix_match_keys_record" in plan, plan
        assert "Join" not in plan.replace("Nested Loop", ""), plan


def test_look_ups_find_keys_written_with_any_character(engine: Engine) -> None:
    """The wanted keys travel as JSON on PostgreSQL: quotes, backslashes, braces,
    commas and non-ASCII text must come back as they were stored."""
    odd = ['o\'brien "jr", {x}', "back\\slash\ttab", "élodie 漢字 😀", "NULL", ""]
    rows = [
        {"object_name": "contacts", "kind": "name", "value": v, "record_id": f"r{i}"}
        for i, v in enumerate(odd)
    ]
    with write_transaction(engine) as conn:
        conn.execute(tables.match_keys.insert(), rows)
    with read_transaction(engine) as conn:
        found = find_keys(conn, "contacts", [("name", v) for v in odd])
        assert dict(found) == {("name", v): [f"r{i}"] for i, v in enumerate(odd)}
        keys = keys_of_records(conn, "contacts", [f"r{i}" for i in range(len(odd))])
        assert dict(keys) == {f"r{i}": {("name", v)} for i, v in enumerate(odd)}
