"""The admin API: key expiry, per-key stream caps, rotation with a grace period, key metadata and the audit trail.

Revision ID: 0007_admin
Revises: 0006_upstream
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_admin"
down_revision = "0006_upstream"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the client_keys columns (NULL for earlier keys: no expiry, defaults), client_key_metadata, admin_audit."""
    with op.batch_alter_table("client_keys") as batch:
        batch.add_column(sa.Column("max_streams", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("previous_digest", sa.LargeBinary(length=32), nullable=True))
        batch.add_column(sa.Column("previous_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_unique_constraint("uq_client_keys_previous_digest", ["previous_digest"])
    op.create_table(
        "client_key_metadata",
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["client_keys.id"], ondelete="CASCADE",
                                name="fk_client_key_metadata_key_id_client_keys"),
        sa.PrimaryKeyConstraint("key_id", "name", name="pk_client_key_metadata"),
    )
    op.create_index("ix_client_key_metadata_name_value", "client_key_metadata", ["name", "value"])
    op.create_table(
        "admin_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.String(length=512), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_admin_audit"),
    )
    op.create_index("ix_admin_audit_key_id", "admin_audit", ["key_id"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_admin_audit_key_id", table_name="admin_audit")
    op.drop_table("admin_audit")
    op.drop_index("ix_client_key_metadata_name_value", table_name="client_key_metadata")
    op.drop_table("client_key_metadata")
    with op.batch_alter_table("client_keys") as batch:
        batch.drop_constraint("uq_client_keys_previous_digest", type_="unique")
        batch.drop_column("rotated_at")
        batch.drop_column("previous_expires_at")
        batch.drop_column("previous_digest")
        batch.drop_column("expires_at")
        batch.drop_column("max_streams")
