"""Request bodies of the admin API: types and unknown fields here, values in ``app.access.key_fields``."""
from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field

from ..access.key_fields import MAX_GRACE_SECONDS, MAX_META_ENTRIES, MAX_QUOTA, MAX_STREAMS

_STRICT = ConfigDict(extra="forbid", strict=True)
_RATE = r"^\s*[0-9]*[1-9][0-9]*\s*(/|per)\s*([0-9]*[1-9][0-9]*\s*)?(second|minute|hour|day)s?\s*$"
_META = " ".join(("Up to 16 entries, e.g. {\"user\": \"42\"}: names of 1 to 40 letters, digits, '.', '_' or '-';",
                  "text values of at most 256 printable characters. Lists filter on them (`?metadata.user=42`)."))


class KeyFields(BaseModel):
    """What a key carries; each field is optional, and on PATCH null puts it back to the server's default."""

    model_config = _STRICT

    name: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                                description="Unique; made up (key-…) when not given on creation.")
    rate_limit: Optional[str] = Field(None, max_length=32, pattern=_RATE,
                                      description="Requests per window, e.g. 120/minute or 5 per 2 hours "
                                                  + "(default: RATE_LIMIT).")
    token_rate_limit: Optional[str] = Field(None, max_length=32, pattern=_RATE,
                                            description="Tokens per window (default: TOKEN_RATE_LIMIT).")
    daily_token_quota: Optional[int] = Field(None, ge=1, le=MAX_QUOTA,
                                             description="Tokens per UTC day (default: DAILY_TOKEN_QUOTA).")
    max_streams: Optional[int] = Field(None, ge=1, le=MAX_STREAMS,
                                       description="Open streams at once (default: MAX_STREAMS_PER_CLIENT).")
    budget_usd_day: Optional[float] = Field(None, ge=0.000001, lt=1e9,
                                            description="US dollars per UTC day, at most six decimals.")
    budget_usd_month: Optional[float] = Field(None, ge=0.000001, lt=1e9,
                                              description="US dollars per calendar month (UTC), at most six decimals.")
    expires_at: Optional[str] = Field(None, max_length=64,
                                      description="ISO 8601 with a zone, in the future; after it the key gets "
                                                  + "401 key_expired.")
    metadata: Optional[dict[str, str]] = Field(None, max_length=MAX_META_ENTRIES, description=_META)


class KeyCreateRequest(KeyFields):
    """Body of POST /admin/keys (every field optional; `{}` makes a key with the server's defaults)."""


class KeyUpdateRequest(KeyFields):
    """Body of PATCH /admin/keys/{key_id}: only the fields given change; null clears one (metadata: all)."""


class KeyRotateRequest(BaseModel):
    """Body of POST /admin/keys/{key_id}/rotate (optional)."""

    model_config = _STRICT

    grace_seconds: int = Field(0, ge=0, le=MAX_GRACE_SECONDS,
                               description="How long the replaced key keeps working: 0 (at once) to 7 days.")
