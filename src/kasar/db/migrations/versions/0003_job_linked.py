"""The records an import job created besides its own object's: the companies a
contact's ``company_name`` created, so that undoing the job removes them too.

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kasar_job_linked",
        sa.Column(
            "job_id",
            sa.String(36),
            sa.ForeignKey("kasar_jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("object_name", sa.String(63), primary_key=True),
        sa.Column("record_id", sa.String(36), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("kasar_job_linked")
