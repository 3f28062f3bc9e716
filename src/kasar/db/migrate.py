"""Bring a database to the latest schema (``kasar serve`` does this on start)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from kasar.db.engine import is_sqlite

MIGRATIONS = Path(__file__).parent / "migrations"


def upgrade(engine: Engine) -> None:
    _run(engine, command.upgrade, "head")


def downgrade(engine: Engine, revision: str) -> None:
    """Back to ``revision`` (to run a previous release's code, or to test a migration)."""
    _run(engine, command.downgrade, revision)


def _run(engine: Engine, action: Callable[[Config, str], None], revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        if not is_sqlite(conn):
            # Several processes may start at once: one migrates, the others wait.
            conn.exec_driver_sql("SELECT pg_advisory_lock(7236001)")
        try:
            cfg.attributes["connection"] = conn.execution_options(kasar_write=True)
            action(cfg, revision)
            conn.commit()
        finally:
            if not is_sqlite(conn):
                conn.exec_driver_sql("SELECT pg_advisory_unlock(7236001)")
                conn.commit()
