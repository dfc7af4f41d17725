"""fleet block state, rediscovery interval, skipped list items

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fleet_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column(
            "blocked_since",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="start of the current bot-protection block episode",
        ),
        sa.Column(
            "block_until",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="end of the current block pause (the next try)",
        ),
        sa.Column(
            "block_level", sa.Integer(), server_default="0", nullable=False, comment="doublings"
        ),
        sa.Column("blocks", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("block_reason", sa.Text(), nullable=True),
        sa.Column(
            "last_discovery_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when the last client_id rediscovery was granted",
        ),
    )


def upgrade() -> None:
    for column in _fleet_columns():
        op.add_column("fleet_state", column)
    op.create_table_comment(
        "fleet_state",
        "One row: the fleet's politeness budget, block state and discovery lock.",
        existing_comment="One row: the fleet's politeness budget and the client_id discovery lock.",
    )
    op.create_table(
        "skipped_items",
        sa.Column(
            "page_url", sa.Text(), nullable=False, comment="the list page, without client_id"
        ),
        sa.Column("item_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "raw",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=True,
            comment="the item as the platform sent it",
        ),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("page_url", "item_index", name=op.f("pk_skipped_items")),
        comment="List items no model fits (a deleted user, an unknown kind): skipped, kept raw.",
    )


def downgrade() -> None:
    op.drop_table("skipped_items")
    op.create_table_comment(
        "fleet_state",
        "One row: the fleet's politeness budget and the client_id discovery lock.",
        existing_comment="One row: the fleet's politeness budget, block state and discovery lock.",
    )
    for column in reversed(_fleet_columns()):
        op.drop_column("fleet_state", column.name)
