"""Spend: the cost of every ledger row, and dollar budgets on client keys.

Revision ID: 0004_spend
Revises: 0003_hardening
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_spend"
down_revision = "0003_hardening"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add usage.cost_micros (0 for earlier rows) and the two budget columns of client_keys."""
    with op.batch_alter_table("usage") as batch:
        batch.add_column(sa.Column("cost_micros", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("client_keys") as batch:
        batch.add_column(sa.Column("budget_day_micros", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("budget_month_micros", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("client_keys") as batch:
        batch.drop_column("budget_month_micros")
        batch.drop_column("budget_day_micros")
    with op.batch_alter_table("usage") as batch:
        batch.drop_column("cost_micros")
