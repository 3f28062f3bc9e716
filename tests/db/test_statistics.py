"""Import jobs refresh PostgreSQL's planner statistics as they grow tables."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from kasar.db.engine import is_sqlite, write_transaction
from kasar.db.statistics import FLOOR_ROWS, GrowthStatistics


def _estimated(engine: Engine, table: str) -> float:
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
        ).scalar()
    return float(found or 0)


def test_analyse_after_a_fifth_more_rows(engine: Engine) -> None:
    if is_sqlite(engine):
        pytest.skip("SQLite keeps no statistics (see the test below)")
    stats = GrowthStatistics(engine, ["obj_contacts", "kasar_match_keys"])
    with write_transaction(engine) as conn:
        conn.execute(
            text(
                "INSERT INTO obj_contacts (id, first_name, created_at, updated_at)"
                " SELECT 'id-' || g, 'x', now(), now() FROM generate_series(1, :n) AS g"
            ),
            {"n": FLOOR_ROWS},
        )
    assert _estimated(engine, "obj_contacts") < FLOOR_ROWS  # not analysed yet
    assert not stats.grew(FLOOR_ROWS - 1)
    assert stats.grew(1)
    assert _estimated(engine, "obj_contacts") == FLOOR_ROWS
    assert not stats.grew(1)  # the next one after max(a fifth, FLOOR_ROWS) more
    assert stats.base == FLOOR_ROWS


def test_sqlite_is_never_analysed(engine: Engine) -> None:
    if not is_sqlite(engine):
        pytest.skip("PostgreSQL is (see above)")
    assert not GrowthStatistics(engine, ["obj_contacts"]).grew(10 * FLOOR_ROWS)
