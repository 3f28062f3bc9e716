"""The uploaded files of import jobs that ended are deleted.

An import job's file is needed only while the job runs; from this release
``jobs.repository.finish`` deletes it with the job's final state. This deletes
the files of the jobs that ended before (a million-row CSV is about 80 MB). Nothing
comes back on downgrade.

Revision ID: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM kasar_job_blobs WHERE role = 'upload' AND job_id IN"
        " (SELECT id FROM kasar_jobs WHERE state IN ('completed', 'failed', 'cancelled'))"
    )


def downgrade() -> None:
    """The files are gone for good; nothing to undo."""
