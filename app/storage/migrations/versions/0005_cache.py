"""The response cache, and the cached flag of usage rows.

Revision ID: 0005_cache
Revises: 0004_spend
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_cache"
down_revision = "0004_spend"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create response_cache; add usage.cached (false for earlier rows)."""
    op.create_table(
        "response_cache",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_response_cache")),
    )
    op.create_index("ix_response_cache_expires_at", "response_cache", ["expires_at"])
    op.create_index("ix_response_cache_created_at", "response_cache", ["created_at"])
    with op.batch_alter_table("usage") as batch:
        batch.add_column(sa.Column("cached", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("usage") as batch:
        batch.drop_column("cached")
    op.drop_index("ix_response_cache_created_at", table_name="response_cache")
    op.drop_index("ix_response_cache_expires_at", table_name="response_cache")
    op.drop_table("response_cache")
