"""Response bodies of the admin API (built with jsonify in ``app.api.admin``), for /openapi.json."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, Field


class AdminKey(BaseModel):
    """A client key as the admin API shows it: never the key, only its prefix."""

    object: Literal["client_key"]
    id: int
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it by.")
    state: Literal["active", "expired", "revoked"]
    created_at: str
    last_used_at: Optional[str] = Field(description="To the minute.")
    expires_at: Optional[str]
    revoked_at: Optional[str]
    rotated_at: Optional[str]
    previous_key_expires_at: Optional[str] = Field(description="After a rotation: when the replaced key stops.")
    rate_limit: Optional[str]
    token_rate_limit: Optional[str]
    daily_token_quota: Optional[int]
    max_streams: Optional[int]
    budget_usd_day: Optional[float]
    budget_usd_month: Optional[float]
    metadata: dict[str, str]


class AdminKeyCreated(AdminKey):
    """A key just made or rotated, with the key itself: shown this once, never again."""

    key: str


class UsageTotals(BaseModel):
    """Requests, tokens and cost from the usage ledger."""

    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float


class KeyUsage(BaseModel):
    """A key's usage today and this calendar month (UTC)."""

    today: UsageTotals
    month: UsageTotals


class AdminKeyDetail(AdminKey):
    """One key with its usage."""

    usage: KeyUsage


class AdminKeyList(BaseModel):
    """One page of keys; pass next_after as `after` for the next."""

    object: Literal["list"]
    data: list[AdminKey]
    has_more: bool
    next_after: Optional[int]


class AuditEntry(BaseModel):
    """One admin action. Never holds a key or a token."""

    id: int
    at: str
    actor: str = Field(description="`admin:` and a fingerprint of the admin token, or `cli`.")
    action: Literal["create", "update", "rotate", "revoke"]
    key_id: Optional[int]
    address: Optional[str]
    detail: Optional[str] = Field(description="The fields given (names only), or the grace period.")


class AuditList(BaseModel):
    """One page of the audit trail, oldest first; pass next_after as `after` for the next."""

    object: Literal["list"]
    data: list[AuditEntry]
    has_more: bool
    next_after: Optional[int]


ADMIN_MODELS = (AdminKey, AdminKeyCreated, UsageTotals, KeyUsage, AdminKeyDetail, AdminKeyList, AuditEntry, AuditList)
