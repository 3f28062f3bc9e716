"""A record's match keys read from the index alone: ``ix_match_keys_record`` on
``record_id`` becomes ``ix_match_keys_record_keys`` on ``(record_id, object_name,
kind, value)``.

An import reads every key of each stored record that shares a name with one of its
rows (the homonym rule needs their emails and phones); at a million contacts that
was 12% of an import job on SQLite, each key a second look-up into the table. Record
ids grow with time, so the wider index is appended to, not written all over.
On a big table the new index takes a few seconds to build (2.3 million keys: 3.6 s
on SQLite), during which writes wait.

Revision ID: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_match_keys_record_keys",
        "kasar_match_keys",
        ["record_id", "object_name", "kind", "value"],
    )
    op.drop_index("ix_match_keys_record", table_name="kasar_match_keys")


def downgrade() -> None:
    op.create_index("ix_match_keys_record", "kasar_match_keys", ["record_id"])
    op.drop_index("ix_match_keys_record_keys", table_name="kasar_match_keys")
