"""Index finished jobs by status and last change, for the retention purge.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_jobs_finished", "jobs", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_finished", table_name="jobs")
