"""reporting: every column documented, user_graph_stats exposed, gone users left out

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 15:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from schemas.views import REPORTING_SCHEMA, create_statements

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # CREATE OR REPLACE keeps every existing view's columns; the comments and the new
    # view come with the statements.
    for stmt in create_statements():
        op.execute(stmt)


def downgrade() -> None:
    op.execute(f"DROP VIEW IF EXISTS {REPORTING_SCHEMA}.user_graph_stats")
