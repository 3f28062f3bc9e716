"""The system tables (everything but the per-object record tables).

Their history lives in ``db/migrations``; these definitions are what the code queries.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

meta = Table(
    "kasar_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

objects = Table(
    "kasar_objects",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("label", String(200), nullable=False),
    Column("is_standard", Boolean, nullable=False, default=False),
    Column("position", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

fields = Table(
    "kasar_fields",
    metadata,
    Column(
        "object_name",
        String(63),
        ForeignKey("kasar_objects.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("name", String(63), primary_key=True),
    Column("label", String(200), nullable=False),
    Column("type", String(20), nullable=False),
    Column("required", Boolean, nullable=False, default=False),
    Column("options", Text, nullable=True),
    Column("relation_object", String(63), nullable=True),
    Column("position", Integer, nullable=False),
    Column("is_standard", Boolean, nullable=False, default=False),
)

pipelines = Table(
    "kasar_pipelines",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "object_name",
        String(63),
        ForeignKey("kasar_objects.name", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(200), nullable=False),
    Column("position", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

pipeline_steps = Table(
    "kasar_pipeline_steps",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "pipeline_id",
        String(36),
        ForeignKey("kasar_pipelines.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(200), nullable=False),
    Column("order_index", Integer, nullable=False),
    UniqueConstraint("pipeline_id", "name", name="uq_pipeline_step_name"),
)

users = Table(
    "kasar_users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("role", String(10), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime, nullable=False),
)

tokens = Table(
    "kasar_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("kasar_users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
    Column("last_used_at", DateTime, nullable=True),
)

match_keys = Table(
    "kasar_match_keys",
    metadata,
    Column("object_name", String(63), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("value", String(400), primary_key=True),
    Column("record_id", String(36), primary_key=True),
    Index("ix_match_keys_record", "record_id"),
)
