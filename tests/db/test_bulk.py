"""``insert_rows`` stores exactly what SQLAlchemy's ``insert`` would, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from kasar.db.bulk import insert_rows
from kasar.db.engine import read_transaction, write_transaction


@pytest.fixture
def pair(engine: Engine) -> Iterator[tuple[Table, Table]]:
    """Two tables of the same shape: one filled by ``insert``, one by ``insert_rows``."""
    md = MetaData()
    made = tuple(
        Table(
            name,
            md,
            Column("id", String(36), primary_key=True),
            Column("note", Text),
            Column("amount", Double),
            Column("count", BigInteger),
            Column("active", Boolean),
            Column("day", Date),
            Column("stamp", DateTime),
        )
        for name in ("bulk_reference", "bulk_tested")
    )
    md.create_all(engine)
    yield made  # type: ignore[misc]
    md.drop_all(engine)


ROWS = [
    {
        "id": "a",
        # What COPY's text format must escape, and what a CSV cell may hold.
        "note": "tab\there, new\nline, back\\slash, \\N, quote \" ' , é 漢 😀, \r end",
        "amount": 1234.5678,
        "count": 2**62,
        "active": True,
        "day": date(2026, 11, 30),
        "stamp": datetime(2026, 11, 30, 4, 5, 6, 789),
    },
    {"id": "b", "note": "", "amount": -0.0, "count": 0, "active": False},  # the rest NULL
    {
        "id": "c",
        "note": None,
        "stamp": datetime(2026, 1, 1),  # no microseconds
        "day": date(1, 1, 1),
        "extra": "a key that is no column is left out",
    },
]


def _stored(engine: Engine, table: Table) -> list[tuple[object, ...]]:
    with read_transaction(engine) as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(table.c.id))]


def test_the_rows_read_back_as_an_insert_writes_them(
    engine: Engine, pair: tuple[Table, Table]
) -> None:
    reference, tested = pair
    with write_transaction(engine) as conn:
        full = [{c.name: r.get(c.name) for c in reference.c} for r in ROWS]
        conn.execute(insert(reference), full)
        insert_rows(conn, tested, ROWS)
    expected = _stored(engine, reference)
    assert _stored(engine, tested) == expected
    assert expected[0][1] == ROWS[0]["note"]
    assert expected[2][1:] == (None, None, None, None, date(1, 1, 1), datetime(2026, 1, 1))


def test_a_constraint_error_is_sqlalchemys_and_the_transaction_writes_nothing(
    engine: Engine, pair: tuple[Table, Table]
) -> None:
    _, tested = pair
    with pytest.raises(IntegrityError), write_transaction(engine) as conn:
        insert_rows(conn, tested, [{"id": "x"}])
        insert_rows(conn, tested, [{"id": "y"}, {"id": "x"}])
    assert _stored(engine, tested) == []


def test_no_rows_is_no_statement(engine: Engine, pair: tuple[Table, Table]) -> None:
    _, tested = pair
    with write_transaction(engine) as conn:
        insert_rows(conn, tested, [])
    assert _stored(engine, tested) == []


def test_rows_are_written_in_the_connections_transaction(
    engine: Engine, pair: tuple[Table, Table]
) -> None:
    """Called first on a connection that has not begun (SQLAlchemy would begin one
    at its first statement), the rows still belong to a transaction: a rollback
    removes them, a commit keeps them."""
    _, tested = pair
    with engine.connect() as conn:
        insert_rows(conn, tested, [{"id": "gone"}])
        conn.rollback()
        insert_rows(conn, tested, [{"id": "kept"}])
        conn.commit()
    assert [r[0] for r in _stored(engine, tested)] == ["kept"]
