"""The tables: conversations, their messages, /chat idempotency keys, the usage ledger, client keys (with their
metadata and the admin audit trail) and the response cache.

Text columns (``system``, ``content``, the cache's ``body``) hold Fernet tokens, never plaintext, the
conversation texts each bound to their row; see ``app.storage.crypto``. The usage ledger holds counts only,
no prompt text.
Changing a table here needs a migration: ``flask --app wsgi db revision --autogenerate -m "..."``.
"""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Named constraints, so later migrations can drop or alter them on every backend.
NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "ck": "ck_%(table_name)s_%(constraint_name)s",
          "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s", "pk": "pk_%(table_name)s"}


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime on every backend (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite compares these as text: one fixed, offset-free format keeps comparisons exact.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ConversationRow(Base):
    """One conversation, owned by one client; ``turns`` also allocates message sequence numbers."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128))
    system: Mapped[bytes | None] = mapped_column(LargeBinary)
    turns: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_conversations_client_recent", "client_id", "updated_at", "id"),
        Index("ix_conversations_updated_at", "updated_at"),
    )


class MessageRow(Base):
    """One message; the primary key (conversation_id, seq) makes sequence numbers unique."""

    __tablename__ = "messages"

    conversation_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    model: Mapped[str | None] = mapped_column(String(255))
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    filter_action: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IdempotencyRow(Base):
    """A /chat request made with an Idempotency-Key, and where its stored reply is. No text."""

    __tablename__ = "idempotency_keys"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    key_digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    request_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    conversation_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("conversations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)  # the reply's message
    response: Mapped[str] = mapped_column(Text)  # JSON: id, model, created, finish_reason, usage, filter
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),
                      Index("ix_idempotency_keys_conversation_id", "conversation_id"))


class LedgerRow(Base):
    """One upstream call: who, which model, how many tokens, how it ended. No text."""

    __tablename__ = "usage"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(128))
    # The UTC calendar day, kept as text so totals group the same way on every backend.
    day: Mapped[str] = mapped_column(String(10))
    model: Mapped[str] = mapped_column(String(255))
    endpoint: Mapped[str] = mapped_column(String(64))
    stream: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[int] = mapped_column(Integer)
    filter_action: Mapped[str] = mapped_column(String(16))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the call cost at the price table's prices, in whole micro-dollars (0 for an unpriced model).
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Answered from the response cache: no upstream call, so no tokens and no cost.
    cached: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Which upstream served the call, and the model it was asked for there (NULL: none served it).
    upstream: Mapped[str | None] = mapped_column(String(64), nullable=True)
    upstream_model: Mapped[str | None] = mapped_column(String(255), nullable=True)

    __table_args__ = (Index("ix_usage_client_day", "client_id", "day"),)


class ClientKeyRow(Base):
    """One client API key: its digest, never the key."""

    __tablename__ = "client_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    rate_limit: Mapped[str | None] = mapped_column(String(32), nullable=True)
    token_rate_limit: Mapped[str | None] = mapped_column(String(32), nullable=True)
    daily_token_quota: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Dollar budgets per UTC day and per calendar month, in micro-dollars.
    budget_day_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    budget_month_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Concurrent open streams this key may hold (NULL: MAX_STREAMS_PER_CLIENT).
    max_streams: Mapped[int | None] = mapped_column(Integer, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # After a rotation the replaced key's digest keeps working until previous_expires_at (the grace period).
    previous_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True, nullable=True)
    previous_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ClientKeyMetaRow(Base):
    """One metadata entry of a client key (e.g. user=42): a row each, so lists filter by value on every backend."""

    __tablename__ = "client_key_metadata"

    key_id: Mapped[int] = mapped_column(Integer, ForeignKey("client_keys.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))

    __table_args__ = (Index("ix_client_key_metadata_name_value", "name", "value"),)


class AdminAuditRow(Base):
    """One admin action: who (a fingerprint, never a token), what, on which key, when, from where. Never a key."""

    __tablename__ = "admin_audit"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Which fields changed (names only, never values that could hold a key), as a comma list.
    detail: Mapped[str | None] = mapped_column(String(512), nullable=True)

    __table_args__ = (Index("ix_admin_audit_key_id", "key_id"),)


class CacheRow(Base):
    """One response-cache entry: an upstream reply as a Fernet token, under the digest of its cache key."""

    __tablename__ = "response_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_response_cache_expires_at", "expires_at"),
        # Eviction takes the oldest first.
        Index("ix_response_cache_created_at", "created_at"),
    )
