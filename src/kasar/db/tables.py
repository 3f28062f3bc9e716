"""The system tables (everything but the per-object record tables).

Their history lives in ``db/migrations``; these definitions are what the code queries.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
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
    # Covering: a record's keys are read from the index alone (migration 0004).
    Index("ix_match_keys_record_keys", "record_id", "object_name", "kind", "value"),
)

jobs = Table(
    "kasar_jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(10), nullable=False),
    Column("object_name", String(63), nullable=False),
    Column("state", String(12), nullable=False),
    Column("options", Text, nullable=False),
    Column("rows_read", BigInteger, nullable=False, server_default="0"),
    Column("created", BigInteger, nullable=False, server_default="0"),
    Column("updated", BigInteger, nullable=False, server_default="0"),
    Column("duplicates", BigInteger, nullable=False, server_default="0"),
    Column("failed", BigInteger, nullable=False, server_default="0"),
    Column("last_row", BigInteger, nullable=False, server_default="0"),
    Column("total_rows", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_by", String(36), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("started_at", DateTime, nullable=True),
    Column("finished_at", DateTime, nullable=True),
    Column("heartbeat_at", DateTime, nullable=True),
    Column("worker_id", String(64), nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("cancel_requested", Boolean, nullable=False, server_default=false()),
    Column("undone_at", DateTime, nullable=True),
    Index("ix_jobs_state_created", "state", "created_at"),
    Index("ix_jobs_kind_created", "kind", "created_at", "id"),
)

job_blobs = Table(
    "kasar_job_blobs",
    metadata,
    Column("job_id", String(36), ForeignKey("kasar_jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(8), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

job_rows = Table(
    "kasar_job_rows",
    metadata,
    Column("job_id", String(36), ForeignKey("kasar_jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("row_number", BigInteger, primary_key=True),
    Column("status", String(12), nullable=False),
    Column("record_id", String(36), nullable=True),
    Column("duplicate_of", String(36), nullable=True),
    Column("matched_on", String(200), nullable=True),
    Column("error_code", String(32), nullable=True),
    Column("message", Text, nullable=True),
    Column("before_image", Text, nullable=True),
    Index("ix_job_rows_record", "record_id"),
)

# Records an import job created in other objects (companies by name): undo deletes
# them too. Migration 0003.
job_linked = Table(
    "kasar_job_linked",
    metadata,
    Column("job_id", String(36), ForeignKey("kasar_jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("object_name", String(63), primary_key=True),
    Column("record_id", String(36), primary_key=True),
)

idempotency = Table(
    "kasar_idempotency",
    metadata,
    Column("scope", String(200), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(10), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Index("ix_idempotency_created", "created_at"),
)

merges = Table(
    "kasar_merges",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("object_name", String(63), nullable=False),
    Column("master_id", String(36), nullable=False),
    Column("snapshot", Text, nullable=False),
    Column("created_by", String(36), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("undone_at", DateTime, nullable=True),
    Index("ix_merges_master", "object_name", "master_id"),
)

review_queue = Table(
    "kasar_review_queue",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("object_name", String(63), nullable=False),
    Column("job_id", String(36), nullable=True),
    Column("record", Text, nullable=False),
    Column("candidates", Text, nullable=False),
    Column("state", String(12), nullable=False),
    Column("resolution", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("resolved_at", DateTime, nullable=True),
    Index("ix_review_state", "object_name", "state", "created_at"),
)

rate_limits = Table(
    "kasar_rate_limits",
    metadata,
    Column("subject", String(64), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("hits", Integer, nullable=False),
)
