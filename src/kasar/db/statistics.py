"""Fresh planner statistics while a job grows tables (PostgreSQL).

Autovacuum analyses a table after it has changed by a fraction of its size, but it
runs on its own schedule: during a million-row import PostgreSQL planned the
duplicate look-ups on statistics taken at a tenth of the rows, and picked scans
of whole tables (parallel sequential scans of the match keys, merge joins that
sort them on disk) where index probes take milliseconds: the import slowed from
1,800 to 230 rows/s. A job that writes many rows therefore runs ``ANALYZE`` itself
each time it has grown its tables by a fifth, and at least every ``FLOOR_ROWS``
rows (the storage notes, point 4: look-ups took 16-78 ms before an ``ANALYZE``).
SQLite keeps no statistics unless asked, and plans these look-ups by their indexes.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, text

from kasar.db.engine import is_sqlite

GROWTH = 0.2
FLOOR_ROWS = 10_000


class GrowthStatistics:
    """Call ``grew(n)`` after each committed chunk of ``n`` rows."""

    def __init__(self, engine: Engine, tables: Sequence[str]) -> None:
        self.engine = engine
        self.tables = list(tables)
        self.enabled = not is_sqlite(engine) and bool(self.tables)
        self.base = self._estimated_rows() if self.enabled else 0
        self.added = 0

    def grew(self, rows: int) -> bool:
        """Count ``rows`` more; True when this call ran ``ANALYZE``."""
        if not self.enabled:
            return False
        self.added += rows
        if self.added < max(GROWTH * self.base, FLOOR_ROWS):
            return False
        with self.engine.connect() as conn:
            quoted = ", ".join(conn.dialect.identifier_preparer.quote(t) for t in self.tables)
            conn.exec_driver_sql(f"ANALYZE {quoted}")
            conn.commit()
        self.base += self.added
        self.added = 0
        return True

    def _estimated_rows(self) -> int:
        """The planner's idea of the first table's size (0 if never analysed)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"),
                {"t": self.tables[0]},
            ).scalar()
        return max(int(found or 0), 0)
