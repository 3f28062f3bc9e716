"""Many rows into one table at the driver's speed, inside the caller's transaction.

``conn.execute(insert(table), rows)`` costs 25-35 us a row before the database
sees it: SQLAlchemy builds and processes a parameter dictionary per row, and
psycopg's ``executemany`` sends one prepared statement per row through its
pipeline. An import job writes three rows or more per record (the record, its
match keys, the job's row), so that was most of its writing time. Here the rows
become tuples once, each value through its column type's own bind processor (the
conversion SQLAlchemy would apply: dates to text on SQLite, say), and go to the
driver in one call: ``COPY ... FROM STDIN`` on PostgreSQL, ``executemany`` on
SQLite (docs/performance.md has the figures).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (column name -> value; a column left out is NULL) into
    ``table``. A driver error is raised as SQLAlchemy's (``IntegrityError``,
    ``OperationalError``...), as ``conn.execute`` would; the transaction must then
    roll back."""
    if not rows:
        return
    if not conn.in_transaction():
        conn.begin()  # what the first ``conn.execute`` would do: the rows belong to it
    dialect = conn.dialect
    names = [c.name for c in table.c]
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    for i, column in enumerate(table.c):
        found = column.type.dialect_impl(dialect).bind_processor(dialect)
        if found is not None:
            processors.append((i, found))
    values = [[row.get(name) for name in names] for row in rows]
    for i, process in processors:
        last: Any = None
        converted: Any = None
        for row_values in values:
            value = row_values[i]
            if value is None:
                continue
            if value is not last:  # a batch's rows often share one value (a timestamp)
                last, converted = value, process(value)
            row_values[i] = converted
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name in names)
    driver: Any = conn.connection.driver_connection
    postgresql = dialect.name == "postgresql"
    if postgresql:
        statement = f"COPY {quote(table.name)} ({columns}) FROM STDIN"
    else:
        marks = ", ".join("?" * len(names))
        statement = f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({marks})"
    error = dialect.loaded_dbapi.Error
    try:
        if not postgresql:
            driver.executemany(statement, values)
            return
        with driver.cursor() as cur, cur.copy(statement) as copy:
            for row_values in values:
                copy.write_row(row_values)
    except error as exc:
        raise DBAPIError.instance(statement, None, exc, error) from exc
