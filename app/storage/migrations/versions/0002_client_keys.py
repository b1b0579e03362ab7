"""Client API keys, stored as keyed hashes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create client_keys."""
    op.create_table(
        "client_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rate_limit", sa.String(length=32), nullable=True),
        sa.Column("token_rate_limit", sa.String(length=32), nullable=True),
        sa.Column("daily_token_quota", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_client_keys_name")),
        sa.UniqueConstraint("digest", name=op.f("uq_client_keys_digest")),
    )


def downgrade() -> None:
    """Drop client_keys."""
    op.drop_table("client_keys")
