"""Routing: which upstream served each ledger row, and the model it was asked for there.

Revision ID: 0006_upstream
Revises: 0005_cache
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_upstream"
down_revision = "0005_cache"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add usage.upstream and usage.upstream_model (NULL for earlier rows: nobody recorded them)."""
    with op.batch_alter_table("usage") as batch:
        batch.add_column(sa.Column("upstream", sa.String(64), nullable=True))
        batch.add_column(sa.Column("upstream_model", sa.String(255), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("usage") as batch:
        batch.drop_column("upstream_model")
        batch.drop_column("upstream")
