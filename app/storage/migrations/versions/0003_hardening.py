"""Bind every stored text to its conversation and position; remember /chat Idempotency-Keys.

Each text was a Fernet token of the bare text; now it seals a header naming
where the text lives (``system:<conversation>`` or
``message:<conversation>:<seq>``) before the text, so a token moved to another
row no longer decrypts (see app/storage/crypto.py). Every row is re-encrypted
here, under the first DATA_ENCRYPTION_KEY, which this migration therefore
needs whenever there is text to convert. Running it again changes nothing;
the downgrade strips the headers again.

Revision ID: 0003_hardening
Revises: 0002
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from app.errors import ConfigError

revision = "0003_hardening"
down_revision = "0002"
branch_labels = None
depends_on = None

# The bound format as of this revision; written out here, since crypto.py may move on and this may not.
BOUND = b"\x00cg1\x00"
BATCH = 500

_conversations = sa.table("conversations", sa.column("id", sa.String), sa.column("system", sa.LargeBinary))
_messages = sa.table("messages", sa.column("conversation_id", sa.String), sa.column("seq", sa.Integer),
                     sa.column("content", sa.LargeBinary))


def upgrade() -> None:
    """Create idempotency_keys; bind every text to its row."""
    op.create_table(
        "idempotency_keys",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("key_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("request_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_idempotency_keys_conversation_id_conversations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("client_id", "key_digest", name=op.f("pk_idempotency_keys")),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    op.create_index("ix_idempotency_keys_conversation_id", "idempotency_keys", ["conversation_id"])
    _convert(bind=True)


def downgrade() -> None:
    """Unbind every text; drop idempotency_keys."""
    _convert(bind=False)
    op.drop_index("ix_idempotency_keys_conversation_id", table_name="idempotency_keys")
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")


def _convert(bind: bool) -> None:
    conn = op.get_bind()
    has_text = conn.execute(sa.select(_messages.c.seq).limit(1)).first() is not None or conn.execute(
        sa.select(_conversations.c.id).where(_conversations.c.system.is_not(None)).limit(1)).first() is not None
    if not has_text:
        return
    cipher = context.config.attributes.get("cipher")
    if cipher is None or not getattr(cipher, "key_count", 0):
        raise ConfigError("DATA_ENCRYPTION_KEY: migration 0003_hardening re-encrypts stored text and needs the key "
                          + "it was written with")
    _convert_systems(conn, cipher, bind)
    _convert_messages(conn, cipher, bind)


def _convert_systems(conn, cipher, bind: bool) -> None:
    after = ""
    while True:
        rows = conn.execute(sa.select(_conversations.c.id, _conversations.c.system)
                            .where(_conversations.c.id > after, _conversations.c.system.is_not(None))
                            .order_by(_conversations.c.id).limit(BATCH)).all()
        for row in rows:
            new = _token(cipher, row.system, f"system:{row.id}", bind)
            if new is not None:
                conn.execute(_conversations.update().where(_conversations.c.id == row.id).values(system=new))
        if len(rows) < BATCH:
            return
        after = rows[-1].id


def _convert_messages(conn, cipher, bind: bool) -> None:
    position: tuple[str, int] = ("", 0)
    while True:
        rows = conn.execute(sa.select(_messages.c.conversation_id, _messages.c.seq, _messages.c.content)
                            .where(sa.tuple_(_messages.c.conversation_id, _messages.c.seq) > sa.tuple_(*position))
                            .order_by(_messages.c.conversation_id, _messages.c.seq).limit(BATCH)).all()
        for row in rows:
            new = _token(cipher, row.content, f"message:{row.conversation_id}:{row.seq}", bind)
            if new is not None:
                conn.execute(_messages.update().where(_messages.c.conversation_id == row.conversation_id,
                                                      _messages.c.seq == row.seq).values(content=new))
        if len(rows) < BATCH:
            return
        position = (rows[-1].conversation_id, rows[-1].seq)


def _token(cipher, token: bytes, where: str, bind: bool) -> bytes | None:
    """The token re-encrypted bound to (or freed from) ``where``; None when it already is."""
    data = cipher.open_raw(token)
    if bind:
        return None if data.startswith(BOUND) else cipher.seal_raw(BOUND + where.encode("ascii") + b"\x00" + data)
    if not data.startswith(BOUND):
        return None
    head, _, text = data[len(BOUND):].partition(b"\x00")
    if head != where.encode("ascii"):
        raise ConfigError(f"DATA_ENCRYPTION_KEY: a stored text is not bound to its row ({where}); not downgrading")
    return cipher.seal_raw(text)
