"""System tables, the standard objects and the Sales Pipeline.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kasar_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "kasar_objects",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("is_standard", sa.Boolean, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "kasar_fields",
        sa.Column(
            "object_name",
            sa.String(63),
            sa.ForeignKey("kasar_objects.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("required", sa.Boolean, nullable=False),
        sa.Column("options", sa.Text, nullable=True),
        sa.Column("relation_object", sa.String(63), nullable=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("is_standard", sa.Boolean, nullable=False),
    )
    op.create_table(
        "kasar_pipelines",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "object_name",
            sa.String(63),
            sa.ForeignKey("kasar_objects.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "kasar_pipeline_steps",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "pipeline_id",
            sa.String(36),
            sa.ForeignKey("kasar_pipelines.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("order_index", sa.Integer, nullable=False),
        sa.UniqueConstraint("pipeline_id", "name", name="uq_pipeline_step_name"),
    )
    op.create_table(
        "kasar_users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "kasar_tokens",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("kasar_users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False, index=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
        sa.Column("last_used_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "kasar_match_keys",
        sa.Column("object_name", sa.String(63), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(400), primary_key=True),
        sa.Column("record_id", sa.String(36), primary_key=True),
    )
    op.create_index("ix_match_keys_record", "kasar_match_keys", ["record_id"])

    # The standard objects use the same code path as custom ones (schema.service).
    from kasar.schema.service import seed_standard_workspace

    seed_standard_workspace(op.get_bind())
