"""Jobs (bulk import/export), their files and per-row outcomes, idempotency keys,
merges and the duplicate review queue, rate-limit counters.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kasar_jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("object_name", sa.String(63), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("rows_read", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("duplicates", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("failed", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_row", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("total_rows", sa.BigInteger, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=True),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("heartbeat_at", sa.DateTime, nullable=True),
        sa.Column("worker_id", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("undone_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_jobs_state_created", "kasar_jobs", ["state", "created_at"])
    op.create_index("ix_jobs_kind_created", "kasar_jobs", ["kind", "created_at", "id"])
    op.create_table(
        "kasar_job_blobs",
        sa.Column(
            "job_id",
            sa.String(36),
            sa.ForeignKey("kasar_jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("role", sa.String(8), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "kasar_job_rows",
        sa.Column(
            "job_id",
            sa.String(36),
            sa.ForeignKey("kasar_jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("row_number", sa.BigInteger, primary_key=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("record_id", sa.String(36), nullable=True),
        sa.Column("duplicate_of", sa.String(36), nullable=True),
        sa.Column("matched_on", sa.String(200), nullable=True),
        sa.Column("error_code", sa.String(32), nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("before_image", sa.Text, nullable=True),
    )
    op.create_index("ix_job_rows_record", "kasar_job_rows", ["record_id"])
    op.create_table(
        "kasar_idempotency",
        sa.Column("scope", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("response", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_idempotency_created", "kasar_idempotency", ["created_at"])
    op.create_table(
        "kasar_merges",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("object_name", sa.String(63), nullable=False),
        sa.Column("master_id", sa.String(36), nullable=False),
        sa.Column("snapshot", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("undone_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_merges_master", "kasar_merges", ["object_name", "master_id"])
    op.create_table(
        "kasar_review_queue",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("object_name", sa.String(63), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=True),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("candidates", sa.Text, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("resolution", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("resolved_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_review_state", "kasar_review_queue", ["object_name", "state", "created_at"])
    op.create_table(
        "kasar_rate_limits",
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("window_start", sa.BigInteger, primary_key=True),
        sa.Column("hits", sa.Integer, nullable=False),
    )
